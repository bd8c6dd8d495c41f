# The customer's activation email, English. Every other locale translates these messages.
# Variables: $package, $order, $name, $support (a link in HTML). <strong>…</strong> marks
# emphasis in HTML and is dropped in the plain-text part.

subject-with-package = Your eSIM is ready: { $package }
subject-with-order = Your eSIM is ready (order { $order })
heading = Your eSIM is ready
greeting-named = Hi { $name },
greeting = Hello,
intro = Thank you for your order. Install your eSIM in one of the three ways below; it takes about two minutes.

qr-heading = 1. Scan the QR code
qr-steps = On the phone you will travel with, open <strong>Settings</strong>, choose <strong>Add eSIM</strong> (on iPhone under Mobile Service, on Android under SIMs), and scan this code.
qr-alt = QR code to install your eSIM
qr-in-html = The QR code is in the HTML version of this email.

tap-heading = 2. Or install with one tap
tap-intro = Reading this email on that phone? Tap the button for your phone.
tap-ios = Install on iPhone
tap-ios-note = Needs iOS 17.4 or later.
tap-android = Install on Android

manual-heading = 3. Or enter the details manually
manual-steps = In Settings, choose Add eSIM, then Enter details manually, and type:
smdp-label = SM-DP+ address
code-label = Activation code
confirmation-note = This eSIM also needs a <strong>confirmation code</strong>. We send it to you separately, and your phone asks for it during installation. If you don't have it, contact us before you start.

order-heading = Your order
order-number = Order number
package = Package
iccid = ICCID
price-paid = Price paid

tips-heading = Before you travel
tip-wifi = <strong>Install now, on Wi-Fi</strong>, before you leave: installing needs an internet connection.
tip-roaming = <strong>Turn on data roaming</strong> for this eSIM line when you arrive, and choose it for mobile data.
tip-once = <strong>The QR code works only once.</strong> Once the eSIM is installed, the code cannot be used again, on this phone or another.
tip-keep = <strong>Don't delete the eSIM</strong> from your phone: a deleted eSIM cannot be installed again with this code.

help = Questions? Reply to this email or write to { $support }.
