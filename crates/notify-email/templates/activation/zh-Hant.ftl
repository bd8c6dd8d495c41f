# 客戶啟用郵件（繁體中文）。訊息 ID 與 en.ftl 相同。

subject-with-package = 您的 eSIM 已準備就緒：{ $package }
subject-with-order = 您的 eSIM 已準備就緒（訂單 { $order }）
heading = 您的 eSIM 已準備就緒
greeting-named = { $name }，您好：
greeting = 您好：
intro = 感謝您的購買。請使用以下三種方式之一安裝 eSIM，整個過程大約只需兩分鐘。

qr-heading = 1. 掃描 QR 碼
qr-steps = 在您旅行時攜帶的手機上開啟<strong>設定</strong>，選擇<strong>加入 eSIM</strong>（iPhone 在「行動服務」中，Android 在「SIM 卡」中），然後掃描下方 QR 碼。
qr-alt = 用於安裝 eSIM 的 QR 碼
qr-in-html = QR 碼位於本郵件的 HTML 版本中。

tap-heading = 2. 或一鍵安裝
tap-intro = 正在這支手機上閱讀本郵件嗎？請點選與您手機對應的按鈕。
tap-ios = 在 iPhone 上安裝
tap-ios-note = 需要 iOS 17.4 或以上版本。
tap-android = 在 Android 上安裝

manual-heading = 3. 或手動輸入
manual-steps = 在「設定」中選擇「加入 eSIM」，再選擇「手動輸入詳細資料」，然後填寫：
smdp-label = SM-DP+ 位址
code-label = 啟用碼
confirmation-note = 安裝此 eSIM 還需要輸入<strong>確認碼</strong>。確認碼會另行寄給您，安裝時手機會提示您輸入。若您尚未收到，請在安裝前與我們聯絡。

order-heading = 訂單資訊
order-number = 訂單編號
package = 方案
iccid = ICCID
price-paid = 付款金額

tips-heading = 出發前須知
tip-wifi = <strong>請在出發前連上 Wi-Fi 完成安裝</strong>：安裝過程需要網路連線。
tip-roaming = 抵達目的地後，請為此 eSIM 門號開啟<strong>數據漫遊</strong>，並將其設為行動數據門號。
tip-once = <strong>QR 碼只能使用一次。</strong>eSIM 安裝完成後，無論在這支手機或其他手機上都無法再次使用。
tip-keep = <strong>請勿刪除此 eSIM</strong>：刪除後便無法使用同一組啟用碼重新安裝。

help = 如有任何問題，請直接回覆本郵件，或寫信至 { $support }。
