# رسالة التفعيل إلى العميل، بالعربية. معرّفات الرسائل هي نفسها في en.ftl.

subject-with-package = شريحة eSIM الخاصة بك جاهزة: { $package }
subject-with-order = شريحة eSIM الخاصة بك جاهزة (الطلب { $order })
heading = شريحة eSIM الخاصة بك جاهزة
greeting-named = مرحبًا { $name }،
greeting = مرحبًا،
intro = شكرًا لطلبك. ثبّت شريحة eSIM بإحدى الطرق الثلاث أدناه، ويستغرق ذلك نحو دقيقتين.

qr-heading = ١. امسح رمز QR
qr-steps = على الهاتف الذي ستسافر به، افتح <strong>الإعدادات</strong>، واختر <strong>إضافة eSIM</strong> (في iPhone ضمن «خلوي»، وفي Android ضمن شرائح SIM)، ثم امسح هذا الرمز.
qr-alt = رمز QR لتثبيت شريحة eSIM
qr-in-html = رمز QR موجود في نسخة HTML من هذه الرسالة.

tap-heading = ٢. أو ثبّتها بلمسة واحدة
tap-intro = هل تقرأ هذه الرسالة على ذلك الهاتف؟ اضغط على الزر المناسب لهاتفك.
tap-ios = التثبيت على iPhone
tap-ios-note = يتطلب iOS 17.4 أو أحدث.
tap-android = التثبيت على Android

manual-heading = ٣. أو أدخل البيانات يدويًا
manual-steps = في الإعدادات، اختر إضافة eSIM، ثم إدخال التفاصيل يدويًا، واكتب:
smdp-label = عنوان <bdi>SM-DP+</bdi>
code-label = رمز التفعيل
confirmation-note = تحتاج شريحة eSIM هذه أيضًا إلى <strong>رمز تأكيد</strong>. نرسله إليك بشكل منفصل، وسيطلبه هاتفك أثناء التثبيت. إن لم يصلك، تواصل معنا قبل أن تبدأ.

order-heading = طلبك
order-number = رقم الطلب
package = الباقة
iccid = ICCID
price-paid = المبلغ المدفوع

tips-heading = قبل أن تسافر
tip-wifi = <strong>ثبّتها الآن عبر Wi-Fi</strong> قبل مغادرتك: يحتاج التثبيت إلى اتصال بالإنترنت.
tip-roaming = عند وصولك، <strong>فعّل تجوال البيانات</strong> لخط eSIM هذا، واختره لبيانات الجوال.
tip-once = <strong>رمز QR يعمل مرة واحدة فقط.</strong> بعد تثبيت الشريحة لا يمكن استخدام الرمز مرة أخرى، لا على هذا الهاتف ولا على غيره.
tip-keep = <strong>لا تحذف شريحة eSIM</strong> من هاتفك: لا يمكن إعادة تثبيت الشريحة المحذوفة بهذا الرمز.

help = هل لديك أسئلة؟ ردّ على هذه الرسالة أو راسلنا على { $support }.
