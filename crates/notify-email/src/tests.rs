//! Rendering through the public API: what a customer or an operator would read.

use esim_courier_core::{
    ActivationCode, Alert, AlertKind, CompletedOrder, Content, Currency, Customer, EmailAddress,
    FailedOrder, Locale, Money, Notification, OrderNo,
};

use crate::{check_templates, EmailConfig, EmailNotifier, RenderError, RenderedEmail};

const LPA: &str = "LPA:1$rsp.demo$69C32E7Dxxxxxxxx";
const IOS: &str = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA%3A1%24rsp.demo%2469C32E7Dxxxxxxxx";
const ANDROID: &str =
    "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=LPA%3A1%24rsp.demo%2469C32E7Dxxxxxxxx";

fn config(toml_text: &str) -> EmailConfig {
    toml::from_str(toml_text).expect("valid section")
}

fn customer_notifier(extra: &str) -> EmailNotifier {
    EmailNotifier::new(
        "customer-email",
        config(&format!(
            r#"
            audience = "customer"
            template = "activation"
            from = "Wander eSIM <esim@wander.example>"
            transport = {{ type = "file", dir = "unused" }}
            {extra}
            "#
        )),
    )
    .expect("valid notifier")
}

fn operator_notifier(template: &str) -> EmailNotifier {
    EmailNotifier::new(
        "ops-email",
        config(&format!(
            r#"
            audience = "operator"
            template = "{template}"
            from = "esim-courier <courier@wander.example>"
            to = ["ops@wander.example"]
            transport = {{ type = "file", dir = "unused" }}
            "#
        )),
    )
    .expect("valid notifier")
}

fn sgd(amount: &str) -> Money {
    Money::parse(amount, Currency::Iso("SGD".into())).expect("price")
}

fn order(locale: Option<&str>) -> CompletedOrder {
    CompletedOrder {
        order_no: OrderNo::parse("B23120118131234").expect("order"),
        iccid: "89852000263355500023".into(),
        activation_code: ActivationCode::parse(LPA).expect("code"),
        package_code: Some("CKH491".into()),
        package_name: Some("Malaysia, 1 Day, 1GB, 256kbps".into()),
        contract_price: Some(sgd("4.87")),
        customer: Some(Customer {
            email: EmailAddress::parse("ana@traveller.example").expect("email"),
            name: Some("Ana <b>Lim</b> & Co".into()),
            locale: locale.map(|l| Locale::parse(l).expect("locale")),
            // As a shop may send it: shown with the currency's two decimals.
            retail_price: Some(sgd("12.9")),
        }),
        received_at_ms: 1_714_555_800_000,
    }
}

fn completed(order: CompletedOrder) -> Notification {
    Notification {
        key: format!("{}:customer-email", order.order_no),
        content: Content::OrderCompleted(order),
    }
}

fn render(notifier: &EmailNotifier, order: CompletedOrder) -> RenderedEmail {
    notifier.render(&completed(order)).expect("renders")
}

/// Each built-in locale: the start of its subject and its label of the activation code,
/// words only that language uses.
const LOCALES: [(&str, &str, &str); 15] = [
    ("en", "Your eSIM is ready: ", "Activation code"),
    ("zh-Hans", "您的 eSIM 已就绪：", "激活码"),
    ("zh-Hant", "您的 eSIM 已準備就緒：", "啟用碼"),
    ("ja", "eSIMの準備ができました：", "アクティベーションコード"),
    ("ko", "eSIM이 준비되었습니다: ", "활성화 코드"),
    ("ms", "eSIM anda sudah sedia: ", "Kod pengaktifan"),
    ("id", "eSIM Anda sudah siap: ", "Kode aktivasi"),
    ("th", "eSIM ของคุณพร้อมใช้งานแล้ว: ", "รหัสเปิดใช้งาน"),
    ("vi", "eSIM của bạn đã sẵn sàng: ", "Mã kích hoạt"),
    ("es", "Tu eSIM está lista: ", "Código de activación"),
    ("fr", "Votre eSIM est prête : ", "Code d'activation"),
    ("de", "Ihre eSIM ist bereit: ", "Aktivierungscode"),
    ("pt-BR", "Seu eSIM está pronto: ", "Código de ativação"),
    ("tr", "eSIM'iniz hazır: ", "Etkinleştirme kodu"),
    ("ar", "شريحة eSIM الخاصة بك جاهزة: ", "رمز التفعيل"),
];

/// The QR code of an email, read back from its PNG part as a mail client receives it.
fn qr_of(email: &RenderedEmail) -> String {
    let (_, _, png, _) = esim_courier_test_support::smtp::open_activation_email(&email.eml());
    esim_courier_test_support::smtp::read_qr(&png)
}

#[test]
fn every_built_in_template_renders_in_every_locale_in_strict_mode() {
    let check = check_templates(None).expect("built-in templates load");
    assert!(check.is_ok(), "{:#?}", check.errors);
    let mut want: Vec<String> = LOCALES
        .iter()
        .map(|(l, _, _)| format!("activation/{l}"))
        .collect();
    want.sort();
    want.extend(["order-failed/en".to_owned(), "alert/en".to_owned()]);
    assert_eq!(check.passed, want);
    assert!(customer_notifier("").check_templates().is_ok());
}

#[test]
fn every_locale_is_complete_in_its_language_with_a_readable_qr_code() {
    let notifier = customer_notifier("");
    let english = render(&notifier, order(Some("en")));
    for (locale, subject, code_label) in LOCALES {
        let email = render(&notifier, order(Some(locale)));
        assert_eq!(email.locale, locale);
        assert_eq!(
            email.subject,
            format!("{subject}Malaysia, 1 Day, 1GB, 256kbps"),
            "{locale}"
        );
        if locale != "en" {
            assert_ne!(email.subject, english.subject, "{locale}: translated");
        }
        assert!(
            email.html.contains(&format!("<html lang=\"{locale}\"")),
            "{locale}"
        );
        for body in [&email.html, &email.text] {
            assert!(body.contains(code_label), "{locale}: {code_label}");
            assert!(
                !body.contains("{ $") && !body.contains("{$"),
                "{locale}: an unresolved variable"
            );
            assert!(!body.contains("{{"), "{locale}: an unrendered expression");
            assert!(
                body.contains(IOS) && body.contains(ANDROID),
                "{locale}: both one-tap links"
            );
            assert!(
                body.contains("rsp.demo") && body.contains("69C32E7Dxxxxxxxx"),
                "{locale}: the manual codes"
            );
            assert!(
                body.contains("12.90 SGD"),
                "{locale}: the retail price and its currency"
            );
        }
        assert!(
            !email.text.contains("<strong>") && !email.text.contains("<bdi>"),
            "{locale}: plain text has no markup"
        );
        assert!(
            email.html.len() < 100 * 1024,
            "{locale}: {} bytes",
            email.html.len()
        );
        assert_eq!(qr_of(&email), LPA, "{locale}");
    }
}

#[test]
fn arabic_reads_right_to_left_with_its_codes_left_to_right() {
    let email = render(&customer_notifier(""), order(Some("ar")));
    assert!(email.html.contains(r#"<html lang="ar" dir="rtl">"#));
    assert!(email.html.contains(r#"dir="rtl""#) && email.html.contains("text-align:right"));
    for code in [
        "rsp.demo",
        "69C32E7Dxxxxxxxx",
        "B23120118131234",
        "89852000263355500023",
    ] {
        let at = email
            .html
            .find(&format!(">{code}<"))
            .unwrap_or_else(|| panic!("{code} in a cell of its own"));
        let cell = &email.html[email.html[..at].rfind("<td").expect("its cell")..at];
        assert!(
            cell.contains(r#"dir="ltr""#),
            "{code} reads left to right: {cell}"
        );
    }
    let english = render(&customer_notifier(""), order(Some("en")));
    assert!(english.html.contains(r#"<html lang="en" dir="ltr">"#));
}

#[test]
fn both_colour_schemes_are_styled_and_the_qr_keeps_its_light_quiet_zone() {
    let email = render(&customer_notifier(""), order(Some("ja")));
    let html = &email.html;
    assert!(html.contains(r#"<meta name="color-scheme" content="light dark">"#));
    assert!(html.contains("@media (prefers-color-scheme: dark)"));
    assert!(html.contains(".qr { background-color: #ffffff !important; }"));
    assert!(html.contains(r#"class="qr""#) && html.contains("padding:12px;"));
    assert!(
        html.contains(r#"alt="eSIMをインストールするためのQRコード""#),
        "a translated alt text"
    );
}

#[test]
fn the_locale_is_negotiated_from_a_tag_or_an_accept_language_value() {
    let notifier = customer_notifier("");
    let cases = [
        (Some("zh-Hans-CN"), "zh-Hans"),
        (Some("zh-TW"), "zh-Hant"),
        (Some("zh-HK"), "zh-Hant"),
        (Some("zh-CN"), "zh-Hans"),
        (Some("zh-SG"), "zh-Hans"),
        (Some("pt"), "pt-BR"),
        (Some("pt-PT"), "pt-BR"),
        (Some("en-GB"), "en"),
        (Some("ms-MY"), "ms"),
        (Some("fr-FR"), "fr"),
        (Some("nl-NL"), "en"),
        (Some("nl-BE, fr-BE;q=0.8, en;q=0.5"), "fr"),
        (None, "en"),
    ];
    for (requested, want) in cases {
        assert_eq!(
            render(&notifier, order(requested)).locale,
            want,
            "{requested:?}"
        );
    }
    let japanese_default = customer_notifier(r#"default_locale = "ja""#);
    assert_eq!(render(&japanese_default, order(Some("nl"))).locale, "ja");
}

#[test]
fn the_activation_email_has_what_a_traveller_needs_and_nothing_it_must_not() {
    let notifier = customer_notifier("");
    for (locale, _, _) in LOCALES {
        let email = render(&notifier, order(Some(locale)));
        let html = &email.html;
        assert!(html.len() < 100 * 1024, "{locale}: {} bytes", html.len());
        for body in [html, &email.text] {
            assert!(body.contains(IOS), "{locale}: iPhone link");
            assert!(body.contains(ANDROID), "{locale}: Android link");
            assert!(body.contains("rsp.demo"), "{locale}: SM-DP+ address");
            assert!(
                body.contains("69C32E7Dxxxxxxxx"),
                "{locale}: activation code"
            );
            assert!(body.contains("B23120118131234"), "{locale}: order number");
            assert!(body.contains("89852000263355500023"), "{locale}: ICCID");
            assert!(body.contains("12.90 SGD"), "{locale}: retail price");
            assert!(
                !body.contains("4.87"),
                "{locale}: the contract price must never reach a customer"
            );
        }
        assert!(
            html.contains(r#"src="cid:qr-code@esim-courier""#),
            "{locale}"
        );
        assert!(
            !html.to_ascii_lowercase().contains("data:"),
            "{locale}: no data: URI"
        );
        let lower = html.to_ascii_lowercase();
        assert!(
            !lower.contains("src=\"http")
                && !lower.contains("src='http")
                && !lower.contains("url(http"),
            "{locale}"
        );
        assert!(
            html.contains("max-width:600px"),
            "{locale}: phone-width layout"
        );
        assert!(!email.subject.contains("4.87") && !email.subject.contains('\n'));
        let eml = String::from_utf8_lossy(&email.eml()).into_owned();
        assert!(!eml.contains("4.87"), "{locale}");
    }
}

#[test]
fn the_customer_name_is_escaped_in_html_and_the_greeting_has_a_fallback() {
    let notifier = customer_notifier("");
    let email = render(&notifier, order(Some("en")));
    assert!(
        email
            .html
            .contains("Hi Ana &lt;b&gt;Lim&lt;/b&gt; &amp; Co,"),
        "HTML-escaped name"
    );
    assert!(
        email.text.contains("\n\nHi Ana <b>Lim</b> & Co,\n"),
        "text is not escaped"
    );
    let mut anonymous = order(Some("en"));
    if let Some(c) = anonymous.customer.as_mut() {
        c.name = None;
        c.retail_price = None;
    }
    anonymous.package_name = None;
    let email = render(&notifier, anonymous);
    assert!(email.text.contains("\n\nHello,\n"));
    assert!(
        !email.html.contains("Price paid") && !email.text.contains("Price paid"),
        "no price without one"
    );
    assert_eq!(email.subject, "Your eSIM is ready (order B23120118131234)");
}

#[test]
fn a_confirmation_code_note_appears_only_when_one_is_required() {
    let notifier = customer_notifier("");
    let plain = render(&notifier, order(Some("en")));
    assert!(!plain.html.contains("confirmation code") && !plain.text.contains("confirmation code"));
    let mut needs_code = order(Some("en"));
    needs_code.activation_code =
        ActivationCode::parse("LPA:1$rsp.demo$69C32E7Dxxxxxxxx$$1").expect("code");
    let email = render(&notifier, needs_code);
    assert!(email.html.contains("<strong>confirmation code</strong>"));
    assert!(email.text.contains("also needs a confirmation code"));
    assert!(email
        .html
        .contains("carddata=LPA%3A1%24rsp.demo%2469C32E7Dxxxxxxxx%24%241"));
}

#[test]
fn retries_carry_the_same_message_id() {
    let notifier = customer_notifier("");
    let first = render(&notifier, order(Some("en")));
    let again = render(&notifier, order(Some("en")));
    assert_eq!(first.message_id, again.message_id);
    assert!(first.message_id.ends_with("@wander.example>"));
    let eml = String::from_utf8_lossy(&first.eml()).into_owned();
    assert!(
        eml.contains(&format!("Message-ID: {}", first.message_id)),
        "{eml:.600}"
    );
    assert!(eml.contains("Auto-Submitted: auto-generated"));
    let mut other = completed(order(Some("en")));
    other.key.push_str(":2");
    assert_ne!(
        notifier.render(&other).expect("renders").message_id,
        first.message_id
    );
}

#[test]
fn the_mime_tree_is_alternative_then_related_with_the_qr_png() {
    let email = render(&customer_notifier(""), order(Some("en")));
    let eml = String::from_utf8_lossy(&email.eml()).into_owned();
    let alternative = eml.find("multipart/alternative").expect("alternative");
    let plain = eml.find("text/plain").expect("plain");
    let related = eml.find("multipart/related").expect("related");
    let html = eml.find("text/html").expect("html");
    let png = eml.find("image/png").expect("png");
    assert!(
        alternative < plain && plain < related && related < html && html < png,
        "{eml:.2000}"
    );
    assert!(eml.contains("Content-ID: <qr-code@esim-courier>"));
    assert_eq!(email.recipients, ["ana@traveller.example"]);
    assert!(
        eml.len() < 150 * 1024,
        "whole message is {} bytes",
        eml.len()
    );
}

#[test]
fn a_customer_notifier_writes_only_about_completed_orders_with_a_customer() {
    let notifier = customer_notifier("");
    let failed = Notification {
        key: "k".into(),
        content: Content::OrderFailed(FailedOrder {
            order_no: OrderNo::parse("B1").expect("order"),
            package_code: None,
            package_name: None,
            contract_price: None,
            received_at_ms: 0,
        }),
    };
    assert_eq!(
        notifier.render(&failed).err(),
        Some(RenderError::NotForCustomers("order_failed"))
    );
    let mut orphan = order(None);
    orphan.customer = None;
    assert!(
        matches!(notifier.render(&completed(orphan)), Err(RenderError::NoCustomer(o)) if o == "B23120118131234")
    );
}

#[test]
fn operators_see_the_contract_price_the_time_and_the_command_but_never_the_matching_id() {
    let failed = Notification {
        key: "failed".into(),
        content: Content::OrderFailed(FailedOrder {
            order_no: OrderNo::parse("B23120118131234").expect("order"),
            package_code: Some("CKH491".into()),
            package_name: Some("Malaysia, 1 Day, 1GB, 256kbps".into()),
            contract_price: Some(sgd("4.87")),
            received_at_ms: 1_714_555_800_000,
        }),
    };
    let email = operator_notifier("order-failed")
        .render(&failed)
        .expect("renders");
    assert_eq!(
        email.subject,
        "[esim-courier] Order B23120118131234 failed at the provider"
    );
    assert_eq!(email.recipients, ["ops@wander.example"]);
    for body in [&email.html, &email.text] {
        for needle in [
            "B23120118131234",
            "Malaysia, 1 Day, 1GB, 256kbps",
            "CKH491",
            "4.87 SGD",
            "2024-05-01T09:30:00Z",
            "esim-courier orders show -- B23120118131234",
        ] {
            assert!(body.contains(needle), "{needle}");
        }
    }

    let alert = Notification {
        key: "alert".into(),
        content: Content::Alert(Alert {
            kind: AlertKind::DeadLetter,
            order_no: Some("B23120118131234".into()),
            reason: "customer-email gave up after 8 attempts".into(),
            package_name: None,
            price: Some("4.87 SGD".into()),
            occurred_at_ms: 1_714_555_800_000,
            command: Some("esim-courier dead-letters retry 17".into()),
        }),
    };
    let email = operator_notifier("alert").render(&alert).expect("renders");
    assert_eq!(
        email.subject,
        "[esim-courier] [dead_letter] Delivery gave up: order B23120118131234"
    );
    for body in [&email.html, &email.text] {
        for needle in [
            "gave up after 8 attempts",
            "4.87 SGD",
            "esim-courier dead-letters retry 17",
            "2024-05-01T09:30:00Z",
        ] {
            assert!(body.contains(needle), "{needle}");
        }
    }

    let email = operator_notifier("alert")
        .render(&completed(order(Some("en"))))
        .expect("renders");
    assert!(!email.html.contains("69C32E7Dxxxxxxxx") && !email.text.contains("69C32E7Dxxxxxxxx"));
    assert!(email.text.contains("LPA:1$rsp.demo$************xxxx"));
    assert!(email.text.contains("a***@traveller.example"));
}

#[test]
fn misconfigured_templates_fail_at_start_up_naming_the_key() {
    let build = |toml_text: &str| {
        EmailNotifier::new("n", config(toml_text))
            .err()
            .map(|e| e.key().to_owned())
    };
    let base = r#"from = "a@example.com"
        transport = { type = "file", dir = "d" }"#;
    assert_eq!(
        build(&format!(
            "audience = \"customer\"\ntemplate = \"welcome\"\n{base}"
        ))
        .as_deref(),
        Some("template")
    );
    // The activation template needs the customer context: never for operators.
    assert_eq!(
        build(&format!("audience = \"operator\"\ntemplate = \"activation\"\nto = [\"ops@example.com\"]\n{base}")).as_deref(),
        Some("template")
    );
    assert_eq!(
        build(&format!("audience = \"operator\"\ntemplate = \"alert\"\nto = [\"ops@example.com\"]\ndefault_locale = \"ja\"\n{base}"))
            .as_deref(),
        Some("default_locale")
    );
    assert_eq!(
        build(&format!("audience = \"customer\"\ntemplate = \"activation\"\ndefault_locale = \"english\"\n{base}")).as_deref(),
        Some("default_locale")
    );
}

#[test]
fn a_reseller_override_is_used_and_one_with_a_remote_image_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let activation = dir.path().join("activation");
    std::fs::create_dir_all(&activation).expect("mkdir");
    std::fs::write(
        activation.join("subject.hbs"),
        "{{brand.name}}: {{t \"heading\"}} ({{order_no}})",
    )
    .expect("write");
    std::fs::write(activation.join("en.ftl"), "heading = your eSIM\n").expect("write");
    let notifier = customer_notifier(&format!(
        "templates_dir = {:?}\nbrand_name = \"Wander\"",
        dir.path().display().to_string()
    ));
    let email = render(&notifier, order(Some("en")));
    assert_eq!(email.subject, "Wander: your eSIM (B23120118131234)");
    assert!(email.html.contains(IOS), "the built-in body is kept");
    let japanese = render(&notifier, order(Some("ja")));
    // A messages file named in another case overrides the built-in locale; a message with a
    // quote or markup stays inside its attribute.
    std::fs::write(activation.join("zh-hans.ftl"), "heading = 您的 eSIM 到了\n").expect("write");
    std::fs::write(
        activation.join("en.ftl"),
        "heading = your eSIM\nqr-alt = The \"QR\" <strong>code</strong>\n",
    )
    .expect("write");
    let notifier = customer_notifier(&format!(
        "templates_dir = {:?}\nbrand_name = \"Wander\"",
        dir.path().display().to_string()
    ));
    let chinese = render(&notifier, order(Some("zh-CN")));
    assert_eq!(chinese.locale, "zh-Hans");
    assert_eq!(chinese.subject, "Wander: 您的 eSIM 到了 (B23120118131234)");
    let english = render(&notifier, order(Some("en")));
    assert!(
        english.html.contains(r#"alt="The &quot;QR&quot; code""#),
        "escaped in its attribute"
    );
    assert_eq!(
        japanese.subject, "Wander: eSIMの準備ができました (B23120118131234)",
        "one markup, every locale"
    );

    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/activation/body.html.hbs"
    ))
    .expect("built-in body");
    let remote = body.replace(
        "{{/layout}}",
        r#"<img src="https://cdn.example/track.png">{{/layout}}"#,
    );
    std::fs::write(activation.join("body.html.hbs"), remote).expect("write");
    let error = EmailNotifier::new(
        "n",
        config(&format!(
            r#"
            audience = "customer"
            template = "activation"
            from = "a@example.com"
            templates_dir = {:?}
            transport = {{ type = "file", dir = "d" }}
            "#,
            dir.path().display().to_string()
        )),
    )
    .expect_err("remote image");
    assert_eq!(error.key(), "template");
    assert!(error.reason().contains("remote resource"), "{error}");
    let check = check_templates(Some(dir.path())).expect("loads");
    assert!(!check.is_ok());
    assert!(check
        .errors
        .iter()
        .all(|e| matches!(e, RenderError::Policy { template, .. } if template == "activation")));
}

#[test]
fn debug_output_never_shows_the_matching_id_or_the_password() {
    let notifier = EmailNotifier::new(
        "n",
        config(
            r#"
            audience = "customer"
            template = "activation"
            from = "a@example.com"
            transport = { type = "smtp", url = "smtps://smtp.example.com", username = "u", password = "pa55-w0rd-xyz" }
            "#,
        ),
    )
    .expect("valid");
    let email = render(&notifier, order(Some("en")));
    assert!(!format!("{notifier:?}").contains("pa55-w0rd-xyz"));
    assert!(!format!("{email:?}").contains("69C32E7Dxxxxxxxx"));
}

#[test]
fn a_digest_lists_every_notification_with_its_command_in_both_parts() {
    let failed = |n: u32| Notification {
        key: format!("f{n}"),
        content: Content::OrderFailed(FailedOrder {
            order_no: OrderNo::parse(&format!("DOWN-{n}")).expect("order"),
            package_code: Some("CKH491".into()),
            package_name: Some("Malaysia, 1 Day, 1GB, 256kbps".into()),
            contract_price: Some(sgd("4.87")),
            received_at_ms: 1_714_555_800_000,
        }),
    };
    let digest = Notification {
        key: "digest".into(),
        content: Content::Digest((0..3).map(failed).collect()),
    };
    for template in ["order-failed", "alert"] {
        let email = operator_notifier(template)
            .render(&digest)
            .expect("renders");
        for n in 0..3 {
            for body in [&email.html, &email.text] {
                assert!(body.contains(&format!("DOWN-{n}")), "{template}: DOWN-{n}");
            }
        }
        assert!(
            email.text.contains("run: esim-courier orders show"),
            "{template}: {}",
            email.text
        );
        assert!(
            email.subject.contains("3 orders failed"),
            "{}",
            email.subject
        );
    }
}

#[test]
fn an_operator_notifier_writes_in_its_locale_from_a_messages_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let alert = dir.path().join("alert");
    std::fs::create_dir_all(&alert).expect("mkdir");
    let german = include_str!("../templates/alert/en.ftl")
        .replace(
            "order-number = Order number",
            "order-number = Bestellnummer",
        )
        .replace("what-to-run = What to run:", "what-to-run = Auszuführen:");
    std::fs::write(alert.join("de.ftl"), german).expect("write");
    let notifier = EmailNotifier::new(
        "ops-email",
        config(&format!(
            r#"
            audience = "operator"
            template = "alert"
            locale = "de"
            templates_dir = {:?}
            from = "esim-courier <courier@wander.example>"
            to = ["ops@wander.example"]
            transport = {{ type = "file", dir = "unused" }}
            "#,
            dir.path().display().to_string()
        )),
    )
    .expect("valid notifier");
    let alert = Notification {
        key: "a".into(),
        content: Content::Alert(Alert::dead_letter(Some("B1"), "it failed".into(), 7, 0)),
    };
    let email = notifier.render(&alert).expect("renders");
    assert_eq!(email.locale, "de");
    assert!(email.html.contains(r#"<html lang="de" dir="ltr">"#));
    assert!(
        email.text.contains("Bestellnummer: B1") && email.text.contains("Auszuführen:"),
        "{}",
        email.text
    );
}
