# 客户激活邮件（简体中文）。消息 ID 与 en.ftl 相同。

subject-with-package = 您的 eSIM 已就绪：{ $package }
subject-with-order = 您的 eSIM 已就绪（订单 { $order }）
heading = 您的 eSIM 已就绪
greeting-named = { $name }，您好：
greeting = 您好：
intro = 感谢您的购买。请用以下三种方式之一安装 eSIM，整个过程大约只需两分钟。

qr-heading = 1. 扫描二维码
qr-steps = 在您出行时携带的手机上打开<strong>设置</strong>，选择<strong>添加 eSIM</strong>（iPhone 在“蜂窝网络”中，Android 在“SIM 卡”中），然后扫描下方二维码。
qr-alt = 用于安装 eSIM 的二维码
qr-in-html = 二维码在本邮件的 HTML 版本中。

tap-heading = 2. 或者一键安装
tap-intro = 正在这部手机上阅读本邮件？请点按与您手机对应的按钮。
tap-ios = 在 iPhone 上安装
tap-ios-note = 需要 iOS 17.4 或更高版本。
tap-android = 在 Android 上安装

manual-heading = 3. 或者手动输入
manual-steps = 在“设置”中选择“添加 eSIM”，再选择“手动输入详细信息”，然后填写：
smdp-label = SM-DP+ 地址
code-label = 激活码
confirmation-note = 安装此 eSIM 还需要输入<strong>确认码</strong>。确认码会另行发送给您，安装过程中手机会提示您输入。如果您还没有收到，请在安装前联系我们。

order-heading = 订单信息
order-number = 订单号
package = 套餐
iccid = ICCID
price-paid = 支付金额

tips-heading = 出行前须知
tip-wifi = <strong>请在出发前连接 Wi-Fi 完成安装</strong>：安装过程需要联网。
tip-roaming = 抵达目的地后，请开启此 eSIM 线路的<strong>数据漫游</strong>，并将其设为移动数据线路。
tip-once = <strong>二维码只能使用一次。</strong>eSIM 安装成功后，无论在这部手机还是其他手机上，都无法再次使用。
tip-keep = <strong>请勿删除此 eSIM</strong>：删除后无法用同一激活码重新安装。

help = 如有疑问，请直接回复本邮件，或发送邮件至 { $support }。
