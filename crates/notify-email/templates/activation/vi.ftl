# Email kích hoạt gửi khách hàng, tiếng Việt. ID tin nhắn giống en.ftl.

subject-with-package = eSIM của bạn đã sẵn sàng: { $package }
subject-with-order = eSIM của bạn đã sẵn sàng (đơn hàng { $order })
heading = eSIM của bạn đã sẵn sàng
greeting-named = Xin chào { $name },
greeting = Xin chào,
intro = Cảm ơn bạn đã đặt hàng. Bạn có thể cài đặt eSIM theo một trong ba cách dưới đây, chỉ mất khoảng hai phút.

qr-heading = 1. Quét mã QR
qr-steps = Trên chiếc điện thoại bạn sẽ mang theo khi đi du lịch, mở <strong>Cài đặt</strong>, chọn <strong>Thêm eSIM</strong> (trên iPhone trong mục Di động, trên Android trong mục SIM), rồi quét mã này.
qr-alt = Mã QR để cài đặt eSIM của bạn
qr-in-html = Mã QR nằm trong phiên bản HTML của email này.

tap-heading = 2. Hoặc cài đặt chỉ với một chạm
tap-intro = Bạn đang đọc email này trên chính chiếc điện thoại đó? Hãy chạm vào nút dành cho điện thoại của bạn.
tap-ios = Cài đặt trên iPhone
tap-ios-note = Yêu cầu iOS 17.4 trở lên.
tap-android = Cài đặt trên Android

manual-heading = 3. Hoặc nhập thông tin thủ công
manual-steps = Trong Cài đặt, chọn Thêm eSIM, sau đó chọn Nhập chi tiết theo cách thủ công, rồi nhập:
smdp-label = Địa chỉ SM-DP+
code-label = Mã kích hoạt
confirmation-note = eSIM này còn cần <strong>mã xác nhận</strong>. Chúng tôi sẽ gửi riêng mã này cho bạn, và điện thoại sẽ yêu cầu bạn nhập mã trong quá trình cài đặt. Nếu bạn chưa nhận được mã, vui lòng liên hệ với chúng tôi trước khi bắt đầu.

order-heading = Đơn hàng của bạn
order-number = Mã đơn hàng
package = Gói cước
iccid = ICCID
price-paid = Số tiền đã thanh toán

tips-heading = Trước chuyến đi
tip-wifi = <strong>Cài đặt ngay bây giờ qua Wi-Fi</strong>, trước khi khởi hành: việc cài đặt cần có kết nối internet.
tip-roaming = Khi đến nơi, hãy <strong>bật chuyển vùng dữ liệu</strong> cho eSIM này và chọn eSIM này để dùng dữ liệu di động.
tip-once = <strong>Mã QR chỉ dùng được một lần.</strong> Sau khi eSIM đã được cài đặt, không thể dùng lại mã này, dù trên điện thoại này hay điện thoại khác.
tip-keep = <strong>Đừng xóa eSIM</strong> khỏi điện thoại: eSIM đã xóa không thể cài đặt lại bằng mã này.

help = Bạn có thắc mắc? Hãy trả lời email này hoặc liên hệ với chúng tôi qua { $support }.
