# Email aktivasi pelanggan, Bahasa Indonesia. ID pesan sama dengan en.ftl.

subject-with-package = eSIM Anda sudah siap: { $package }
subject-with-order = eSIM Anda sudah siap (pesanan { $order })
heading = eSIM Anda sudah siap
greeting-named = Halo { $name },
greeting = Halo,
intro = Terima kasih atas pesanan Anda. Pasang eSIM Anda dengan salah satu dari tiga cara di bawah ini; hanya perlu waktu sekitar dua menit.

qr-heading = 1. Pindai kode QR
qr-steps = Di ponsel yang akan Anda bawa bepergian, buka <strong>Pengaturan</strong>, pilih <strong>Tambah eSIM</strong> (di iPhone pada menu Seluler, di Android pada menu SIM), lalu pindai kode ini.
qr-alt = Kode QR untuk memasang eSIM Anda
qr-in-html = Kode QR ada di versi HTML email ini.

tap-heading = 2. Atau pasang dengan sekali ketuk
tap-intro = Membaca email ini di ponsel tersebut? Ketuk tombol yang sesuai dengan ponsel Anda.
tap-ios = Pasang di iPhone
tap-ios-note = Memerlukan iOS 17.4 atau yang lebih baru.
tap-android = Pasang di Android

manual-heading = 3. Atau masukkan detailnya secara manual
manual-steps = Di Pengaturan, pilih Tambah eSIM, lalu Masukkan Detail Secara Manual, dan ketik:
smdp-label = Alamat SM-DP+
code-label = Kode aktivasi
confirmation-note = eSIM ini juga memerlukan <strong>kode konfirmasi</strong>. Kami mengirimkannya secara terpisah, dan ponsel Anda akan memintanya saat pemasangan. Jika Anda belum menerimanya, silakan hubungi kami sebelum memulai.

order-heading = Pesanan Anda
order-number = Nomor pesanan
package = Paket
iccid = ICCID
price-paid = Harga yang dibayar

tips-heading = Sebelum Anda bepergian
tip-wifi = <strong>Pasang sekarang melalui Wi-Fi</strong> sebelum berangkat: pemasangan memerlukan koneksi internet.
tip-roaming = Setibanya di tujuan, <strong>aktifkan roaming data</strong> untuk eSIM ini dan pilih eSIM ini untuk data seluler.
tip-once = <strong>Kode QR hanya bisa digunakan sekali.</strong> Setelah eSIM terpasang, kode ini tidak bisa digunakan lagi, baik di ponsel ini maupun di ponsel lain.
tip-keep = <strong>Jangan hapus eSIM</strong> dari ponsel Anda: eSIM yang sudah dihapus tidak bisa dipasang lagi dengan kode ini.

help = Ada pertanyaan? Balas email ini atau kirim email ke { $support }.
