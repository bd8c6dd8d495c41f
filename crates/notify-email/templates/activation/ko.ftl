# 고객 활성화 이메일(한국어). 메시지 ID는 en.ftl과 같습니다.

subject-with-package = eSIM이 준비되었습니다: { $package }
subject-with-order = eSIM이 준비되었습니다(주문 번호 { $order })
heading = eSIM이 준비되었습니다
greeting-named = { $name }님, 안녕하세요.
greeting = 안녕하세요.
intro = 주문해 주셔서 감사합니다. 아래 세 가지 방법 중 하나로 eSIM을 설치해 주세요. 약 2분이면 끝납니다.

qr-heading = 1. QR 코드 스캔하기
qr-steps = 여행 중 사용할 휴대폰에서 <strong>설정</strong>을 열고 <strong>eSIM 추가</strong>를 선택한 다음(iPhone은 '셀룰러', Android는 'SIM' 메뉴에 있습니다) 이 코드를 스캔하세요.
qr-alt = eSIM 설치용 QR 코드
qr-in-html = QR 코드는 이 이메일의 HTML 버전에 있습니다.

tap-heading = 2. 또는 탭 한 번으로 설치하기
tap-intro = 이 이메일을 해당 휴대폰에서 보고 계신가요? 사용 중인 휴대폰에 맞는 버튼을 누르세요.
tap-ios = iPhone에 설치
tap-ios-note = iOS 17.4 이상이 필요합니다.
tap-android = Android에 설치

manual-heading = 3. 또는 직접 입력하기
manual-steps = 설정에서 'eSIM 추가'를 선택한 뒤 '세부사항 수동 입력'을 누르고 다음 정보를 입력하세요.
smdp-label = SM-DP+ 주소
code-label = 활성화 코드
confirmation-note = 이 eSIM은 <strong>확인 코드</strong>도 필요합니다. 확인 코드는 별도로 보내 드리며, 설치 중에 휴대폰이 입력을 요청합니다. 확인 코드를 받지 못하셨다면 설치를 시작하기 전에 문의해 주세요.

order-heading = 주문 정보
order-number = 주문 번호
package = 요금제
iccid = ICCID
price-paid = 결제 금액

tips-heading = 여행 전에 확인하세요
tip-wifi = 출발 전에 <strong>Wi-Fi에 연결된 상태에서 지금 설치</strong>하세요. 설치하려면 인터넷 연결이 필요합니다.
tip-roaming = 현지에 도착하면 이 eSIM 회선의 <strong>데이터 로밍을 켜고</strong> 모바일 데이터 회선으로 선택하세요.
tip-once = <strong>QR 코드는 한 번만 사용할 수 있습니다.</strong> eSIM을 설치한 후에는 이 휴대폰에서도, 다른 휴대폰에서도 코드를 다시 사용할 수 없습니다.
tip-keep = <strong>휴대폰에서 eSIM을 삭제하지 마세요.</strong> 삭제한 eSIM은 이 코드로 다시 설치할 수 없습니다.

help = 궁금한 점이 있으시면 이 이메일에 회신하시거나 { $support }(으)로 문의해 주세요.
