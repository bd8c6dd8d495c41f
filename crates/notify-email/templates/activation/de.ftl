# Aktivierungs-E-Mail an den Kunden, Deutsch. Die Nachrichten-IDs sind die von en.ftl.

subject-with-package = Ihre eSIM ist bereit: { $package }
subject-with-order = Ihre eSIM ist bereit (Bestellung { $order })
heading = Ihre eSIM ist bereit
greeting-named = Hallo { $name },
greeting = Guten Tag,
intro = vielen Dank für Ihre Bestellung. Installieren Sie Ihre eSIM auf eine der drei folgenden Arten; das dauert etwa zwei Minuten.

qr-heading = 1. QR-Code scannen
qr-steps = Öffnen Sie auf dem Telefon, das Sie auf die Reise mitnehmen, die <strong>Einstellungen</strong>, wählen Sie <strong>eSIM hinzufügen</strong> (auf dem iPhone unter Mobilfunk, auf Android unter SIMs) und scannen Sie diesen Code.
qr-alt = QR-Code zur Installation Ihrer eSIM
qr-in-html = Der QR-Code steht in der HTML-Version dieser E-Mail.

tap-heading = 2. Oder mit einem Fingertipp installieren
tap-intro = Sie lesen diese E-Mail bereits auf dem Telefon, mit dem Sie reisen? Dann tippen Sie auf die Schaltfläche für Ihr Gerät.
tap-ios = Auf dem iPhone installieren
tap-ios-note = Erfordert iOS 17.4 oder neuer.
tap-android = Auf Android installieren

manual-heading = 3. Oder die Angaben manuell eingeben
manual-steps = Wählen Sie in den Einstellungen „eSIM hinzufügen“, dann „Details manuell eingeben“ und geben Sie Folgendes ein:
smdp-label = SM-DP+-Adresse
code-label = Aktivierungscode
confirmation-note = Diese eSIM benötigt außerdem einen <strong>Bestätigungscode</strong>. Wir senden ihn Ihnen separat, und Ihr Telefon fragt während der Installation danach. Falls Sie ihn nicht haben, melden Sie sich bitte bei uns, bevor Sie beginnen.

order-heading = Ihre Bestellung
order-number = Bestellnummer
package = Tarif
iccid = ICCID
price-paid = Gezahlter Betrag

tips-heading = Vor der Reise
tip-wifi = <strong>Installieren Sie die eSIM jetzt im WLAN</strong>, noch vor der Abreise: Für die Installation ist eine Internetverbindung nötig.
tip-roaming = Schalten Sie nach der Ankunft <strong>für diese eSIM das Datenroaming ein</strong> und wählen Sie sie für mobile Daten aus.
tip-once = <strong>Der QR-Code funktioniert nur einmal.</strong> Sobald die eSIM installiert ist, lässt sich der Code nicht erneut verwenden, weder auf diesem noch auf einem anderen Telefon.
tip-keep = <strong>Löschen Sie die eSIM nicht</strong> von Ihrem Telefon: Eine gelöschte eSIM lässt sich mit diesem Code nicht erneut installieren.

help = Fragen? Antworten Sie auf diese E-Mail oder schreiben Sie uns an { $support }.
