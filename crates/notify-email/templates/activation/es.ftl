# Correo de activación para el cliente, en español. Los ID de mensaje son los de en.ftl.

subject-with-package = Tu eSIM está lista: { $package }
subject-with-order = Tu eSIM está lista (pedido { $order })
heading = Tu eSIM está lista
greeting-named = Hola, { $name }:
greeting = Hola:
intro = Gracias por tu pedido. Instala tu eSIM de una de estas tres formas; solo tardarás unos dos minutos.

qr-heading = 1. Escanea el código QR
qr-steps = En el teléfono que llevarás de viaje, abre <strong>Ajustes</strong>, elige <strong>Añadir eSIM</strong> (en iPhone, dentro de Datos móviles; en Android, dentro de SIM) y escanea este código.
qr-alt = Código QR para instalar tu eSIM
qr-in-html = El código QR está en la versión HTML de este correo.

tap-heading = 2. O instálala con un toque
tap-intro = ¿Estás leyendo este correo en ese teléfono? Toca el botón de tu teléfono.
tap-ios = Instalar en iPhone
tap-ios-note = Requiere iOS 17.4 o posterior.
tap-android = Instalar en Android

manual-heading = 3. O introduce los datos manualmente
manual-steps = En Ajustes, elige Añadir eSIM, después Introducir datos manualmente, y escribe:
smdp-label = Dirección SM-DP+
code-label = Código de activación
confirmation-note = Esta eSIM también necesita un <strong>código de confirmación</strong>. Te lo enviamos por separado y tu teléfono te lo pedirá durante la instalación. Si no lo tienes, escríbenos antes de empezar.

order-heading = Tu pedido
order-number = Número de pedido
package = Plan
iccid = ICCID
price-paid = Importe pagado

tips-heading = Antes de viajar
tip-wifi = <strong>Instálala ahora, con wifi</strong>, antes de salir: la instalación necesita conexión a internet.
tip-roaming = Al llegar, <strong>activa la itinerancia de datos</strong> en la línea de esta eSIM y elígela para los datos móviles.
tip-once = <strong>El código QR solo funciona una vez.</strong> Una vez instalada la eSIM, el código no se puede volver a usar, ni en este teléfono ni en otro.
tip-keep = <strong>No borres la eSIM</strong> del teléfono: una eSIM borrada no se puede volver a instalar con este código.

help = ¿Tienes alguna pregunta? Responde a este correo o escríbenos a { $support }.
