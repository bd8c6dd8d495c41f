# E-mail de ativação para o cliente, português do Brasil. Os IDs das mensagens são os de en.ftl.

subject-with-package = Seu eSIM está pronto: { $package }
subject-with-order = Seu eSIM está pronto (pedido { $order })
heading = Seu eSIM está pronto
greeting-named = Olá, { $name }!
greeting = Olá!
intro = Obrigado pelo seu pedido. Instale seu eSIM de uma das três formas abaixo; leva cerca de dois minutos.

qr-heading = 1. Escaneie o QR code
qr-steps = No celular que você vai levar na viagem, abra os <strong>Ajustes</strong>, escolha <strong>Adicionar eSIM</strong> (no iPhone, em Celular; no Android, em Chips) e escaneie este código.
qr-alt = QR code para instalar seu eSIM
qr-in-html = O QR code está na versão HTML deste e-mail.

tap-heading = 2. Ou instale com um toque
tap-intro = Está lendo este e-mail nesse celular? Toque no botão do seu aparelho.
tap-ios = Instalar no iPhone
tap-ios-note = Requer iOS 17.4 ou posterior.
tap-android = Instalar no Android

manual-heading = 3. Ou digite os dados manualmente
manual-steps = Nos Ajustes, escolha Adicionar eSIM, depois Inserir detalhes manualmente, e digite:
smdp-label = Endereço SM-DP+
code-label = Código de ativação
confirmation-note = Este eSIM também precisa de um <strong>código de confirmação</strong>. Nós o enviamos separadamente, e o celular vai pedi-lo durante a instalação. Se você não o recebeu, fale com a gente antes de começar.

order-heading = Seu pedido
order-number = Número do pedido
package = Plano
iccid = ICCID
price-paid = Valor pago

tips-heading = Antes de viajar
tip-wifi = <strong>Instale agora, no Wi-Fi</strong>, antes de sair: a instalação precisa de conexão com a internet.
tip-roaming = Ao chegar, <strong>ative o roaming de dados</strong> na linha deste eSIM e escolha-a para os dados móveis.
tip-once = <strong>O QR code só funciona uma vez.</strong> Depois que o eSIM for instalado, o código não pode ser usado de novo, nem neste celular nem em outro.
tip-keep = <strong>Não apague o eSIM</strong> do celular: um eSIM apagado não pode ser instalado de novo com este código.

help = Dúvidas? Responda a este e-mail ou escreva para { $support }.
