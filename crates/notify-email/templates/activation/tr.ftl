# Müşteriye giden etkinleştirme e-postası, Türkçe. Mesaj kimlikleri en.ftl ile aynıdır.

subject-with-package = eSIM'iniz hazır: { $package }
subject-with-order = eSIM'iniz hazır (sipariş { $order })
heading = eSIM'iniz hazır
greeting-named = Merhaba { $name },
greeting = Merhaba,
intro = Siparişiniz için teşekkür ederiz. eSIM'inizi aşağıdaki üç yoldan biriyle yükleyin; yaklaşık iki dakika sürer.

qr-heading = 1. QR kodunu tarayın
qr-steps = Seyahatte kullanacağınız telefonda <strong>Ayarlar</strong>'ı açın, <strong>eSIM Ekle</strong>'yi seçin (iPhone'da Hücresel, Android'de SIM'ler altında) ve bu kodu tarayın.
qr-alt = eSIM'inizi yüklemek için QR kodu
qr-in-html = QR kodu bu e-postanın HTML sürümündedir.

tap-heading = 2. Ya da tek dokunuşla yükleyin
tap-intro = Bu e-postayı o telefonda mı okuyorsunuz? Telefonunuza uygun düğmeye dokunun.
tap-ios = iPhone'a yükle
tap-ios-note = iOS 17.4 veya üstü gerekir.
tap-android = Android'e yükle

manual-heading = 3. Ya da bilgileri elle girin
manual-steps = Ayarlar'da eSIM Ekle'yi, ardından Ayrıntıları Elle Gir'i seçin ve şunları yazın:
smdp-label = SM-DP+ adresi
code-label = Etkinleştirme kodu
confirmation-note = Bu eSIM için ayrıca bir <strong>onay kodu</strong> gerekir. Bu kodu size ayrı bir mesajla gönderiyoruz; telefonunuz yükleme sırasında kodu isteyecek. Kod elinizde değilse, başlamadan önce bizimle iletişime geçin.

order-heading = Siparişiniz
order-number = Sipariş numarası
package = Paket
iccid = ICCID
price-paid = Ödenen tutar

tips-heading = Yola çıkmadan önce
tip-wifi = <strong>Şimdi, Wi-Fi'dayken yükleyin</strong>, yola çıkmayı beklemeyin: yükleme için internet bağlantısı gerekir.
tip-roaming = Vardığınızda bu eSIM hattı için <strong>veri dolaşımını açın</strong> ve mobil veri için bu hattı seçin.
tip-once = <strong>QR kodu yalnızca bir kez çalışır.</strong> eSIM yüklendikten sonra kod ne bu telefonda ne de başka bir telefonda yeniden kullanılabilir.
tip-keep = <strong>eSIM'i telefonunuzdan silmeyin</strong>: silinen bir eSIM bu kodla yeniden yüklenemez.

help = Sorunuz mu var? Bu e-postayı yanıtlayın ya da { $support } adresine yazın.
