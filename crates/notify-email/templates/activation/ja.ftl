# お客様向けアクティベーションメール（日本語）。メッセージ ID は en.ftl と同じです。

subject-with-package = eSIMの準備ができました：{ $package }
subject-with-order = eSIMの準備ができました（注文番号 { $order }）
heading = eSIMの準備ができました
greeting-named = { $name } 様
greeting = お客様
intro = このたびはご注文いただきありがとうございます。以下の3つの方法のいずれかでeSIMをインストールしてください。所要時間は2分ほどです。

qr-heading = 1. QRコードを読み取る
qr-steps = 旅行中にお使いになるスマートフォンで<strong>設定</strong>を開き、<strong>eSIMを追加</strong>を選んで（iPhoneは「モバイル通信」、Androidは「SIM」から）、このQRコードを読み取ってください。
qr-alt = eSIMをインストールするためのQRコード
qr-in-html = QRコードはこのメールのHTML版に表示されています。

tap-heading = 2. ワンタップでインストール
tap-intro = このメールをそのスマートフォンでご覧の場合は、お使いの機種のボタンをタップしてください。
tap-ios = iPhoneにインストール
tap-ios-note = iOS 17.4以降が必要です。
tap-android = Androidにインストール

manual-heading = 3. 手動で入力する
manual-steps = 「設定」で「eSIMを追加」を選び、「詳細情報を手動で入力」をタップして、次の情報を入力してください：
smdp-label = SM-DP+アドレス
code-label = アクティベーションコード
confirmation-note = このeSIMのインストールには<strong>確認コード</strong>も必要です。確認コードは別途お送りします。インストール中に入力を求められます。お手元にない場合は、インストールを始める前にお問い合わせください。

order-heading = ご注文内容
order-number = 注文番号
package = プラン
iccid = ICCID
price-paid = お支払い金額

tips-heading = ご出発の前に
tip-wifi = <strong>ご出発前にWi-Fi接続でインストール</strong>してください。インストールにはインターネット接続が必要です。
tip-roaming = 現地に到着したら、このeSIMの回線で<strong>データローミングをオン</strong>にし、モバイルデータ通信に使う回線として選んでください。
tip-once = <strong>QRコードは一度しか使えません。</strong>eSIMのインストール後は、このスマートフォンでも他の端末でも再度使用できません。
tip-keep = <strong>eSIMは削除しないでください。</strong>削除したeSIMは、このコードで再インストールすることはできません。

help = ご不明な点がございましたら、このメールにご返信いただくか、{ $support } までお問い合わせください。
