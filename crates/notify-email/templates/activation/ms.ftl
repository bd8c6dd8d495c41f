# E-mel pengaktifan pelanggan, Bahasa Melayu. ID mesej sama seperti en.ftl.

subject-with-package = eSIM anda sudah sedia: { $package }
subject-with-order = eSIM anda sudah sedia (pesanan { $order })
heading = eSIM anda sudah sedia
greeting-named = Hai { $name },
greeting = Hai,
intro = Terima kasih atas pesanan anda. Pasang eSIM anda dengan salah satu daripada tiga cara di bawah; ia hanya mengambil masa kira-kira dua minit.

qr-heading = 1. Imbas kod QR
qr-steps = Pada telefon yang akan anda bawa semasa melancong, buka <strong>Tetapan</strong>, pilih <strong>Tambah eSIM</strong> (pada iPhone di bawah Perkhidmatan Mudah Alih, pada Android di bawah SIM), kemudian imbas kod ini.
qr-alt = Kod QR untuk memasang eSIM anda
qr-in-html = Kod QR terdapat dalam versi HTML e-mel ini.

tap-heading = 2. Atau pasang dengan satu ketikan
tap-intro = Membaca e-mel ini pada telefon tersebut? Ketik butang untuk telefon anda.
tap-ios = Pasang pada iPhone
tap-ios-note = Memerlukan iOS 17.4 atau lebih baharu.
tap-android = Pasang pada Android

manual-heading = 3. Atau masukkan butiran secara manual
manual-steps = Dalam Tetapan, pilih Tambah eSIM, kemudian Masukkan butiran secara manual, dan taipkan:
smdp-label = Alamat SM-DP+
code-label = Kod pengaktifan
confirmation-note = eSIM ini juga memerlukan <strong>kod pengesahan</strong>. Kami akan menghantarnya kepada anda secara berasingan, dan telefon anda akan memintanya semasa pemasangan. Jika anda belum menerimanya, hubungi kami sebelum bermula.

order-heading = Pesanan anda
order-number = Nombor pesanan
package = Pakej
iccid = ICCID
price-paid = Harga dibayar

tips-heading = Sebelum anda melancong
tip-wifi = <strong>Pasang sekarang melalui Wi-Fi</strong>, sebelum anda berlepas: pemasangan memerlukan sambungan internet.
tip-roaming = Setibanya di destinasi, <strong>hidupkan perayauan data</strong> untuk talian eSIM ini dan pilihnya untuk data mudah alih.
tip-once = <strong>Kod QR hanya boleh digunakan sekali.</strong> Selepas eSIM dipasang, kod ini tidak boleh digunakan lagi, sama ada pada telefon ini atau telefon lain.
tip-keep = <strong>Jangan padam eSIM ini</strong> daripada telefon anda: eSIM yang telah dipadam tidak boleh dipasang semula dengan kod ini.

help = Ada soalan? Balas e-mel ini atau tulis kepada { $support }.
