# A FAILED order, for operators, English. The headline and the reason come from the order.
order-number = Order number
package = Package
unknown = unknown
contract-price = Contract price
not-given = not given
received = Received
iccid = ICCID
activation-code = Activation code
customer = Customer
to-inspect = To inspect it:
run = run
footer = Sent by esim-courier for { $brand }. Contract prices are the cost with the provider: never forward this email to a customer.
