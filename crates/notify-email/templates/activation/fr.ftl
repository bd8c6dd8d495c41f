# E-mail d'activation destiné au client, en français. Les identifiants sont ceux de en.ftl.

subject-with-package = Votre eSIM est prête : { $package }
subject-with-order = Votre eSIM est prête (commande { $order })
heading = Votre eSIM est prête
greeting-named = Bonjour { $name },
greeting = Bonjour,
intro = Merci pour votre commande. Installez votre eSIM de l'une des trois façons ci-dessous ; cela prend environ deux minutes.

qr-heading = 1. Scannez le code QR
qr-steps = Sur le téléphone que vous emporterez en voyage, ouvrez <strong>Réglages</strong>, choisissez <strong>Ajouter une eSIM</strong> (sur iPhone dans Données cellulaires, sur Android dans Cartes SIM), puis scannez ce code.
qr-alt = Code QR pour installer votre eSIM
qr-in-html = Le code QR se trouve dans la version HTML de cet e-mail.

tap-heading = 2. Ou installez-la d'un simple toucher
tap-intro = Vous lisez cet e-mail sur ce téléphone ? Touchez le bouton correspondant à votre téléphone.
tap-ios = Installer sur iPhone
tap-ios-note = Nécessite iOS 17.4 ou version ultérieure.
tap-android = Installer sur Android

manual-heading = 3. Ou saisissez les informations manuellement
manual-steps = Dans Réglages, choisissez Ajouter une eSIM, puis Saisir les informations manuellement, et tapez :
smdp-label = Adresse SM-DP+
code-label = Code d'activation
confirmation-note = Cette eSIM nécessite aussi un <strong>code de confirmation</strong>. Nous vous l'envoyons séparément et votre téléphone vous le demandera pendant l'installation. Si vous ne l'avez pas, contactez-nous avant de commencer.

order-heading = Votre commande
order-number = Numéro de commande
package = Forfait
iccid = ICCID
price-paid = Prix payé

tips-heading = Avant de partir
tip-wifi = <strong>Installez-la dès maintenant, en Wi-Fi</strong>, avant votre départ : l'installation nécessite une connexion internet.
tip-roaming = À votre arrivée, <strong>activez l'itinérance des données</strong> pour la ligne de cette eSIM et choisissez-la pour les données cellulaires.
tip-once = <strong>Le code QR ne fonctionne qu'une seule fois.</strong> Une fois l'eSIM installée, le code ne peut plus servir, ni sur ce téléphone ni sur un autre.
tip-keep = <strong>Ne supprimez pas l'eSIM</strong> de votre téléphone : une eSIM supprimée ne peut pas être réinstallée avec ce code.

help = Des questions ? Répondez à cet e-mail ou écrivez-nous à { $support }.
