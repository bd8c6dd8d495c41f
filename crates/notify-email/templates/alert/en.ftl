# Operator alerts, English. The headline and the reason come from the alert itself.
kind-label = ALERT
order-number = Order number
none = none
package = Package
contract-price = Contract price
when = When
iccid = ICCID
activation-code = Activation code
customer = Customer
what-to-run = What to run:
run = run
footer = Sent by esim-courier for { $brand }. Contract prices are the cost with the provider: never forward this email to a customer.
