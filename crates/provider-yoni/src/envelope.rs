//! The answer envelope (**doc**): HTTP 200 with `{"code": 0, "msg": "success", "data": …}`;
//! a `code` other than 0 is an error with `data: null`. What each code means for the caller
//! is the table of `shared/provider-api.md`.

use esim_courier_core::{JsonScalar, ProviderError};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Envelope {
    code: i64,
    /// Its words, read as any JSON value: a `msg` that is a number or an object must not
    /// turn a documented error code into a garbled answer.
    #[serde(default)]
    msg: Option<Box<RawValue>>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

/// The `data` of a successful answer, as raw JSON (numbers keep their exact text), or the
/// error its code means.
pub(crate) fn read(body: &[u8]) -> Result<Box<RawValue>, ProviderError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        // A cut or garbled answer (a proxy's page, a broken connection) may pass.
        ProviderError::transient(format!(
            "the provider's answer is not its JSON envelope: {}",
            shape_error(&e)
        ))
    })?;
    if envelope.code == 0 {
        return envelope
            .data
            .ok_or_else(|| ProviderError::transient("the provider answered success without data"));
    }
    let said = envelope
        .msg
        .as_deref()
        .and_then(|m| JsonScalar::of(m).into_text())
        .unwrap_or_default();
    Err(error(envelope.code, &said))
}

/// What a JSON error says about an answer, without the answer's own text. serde quotes the
/// value it could not use (`invalid type: string "…"`), and that value may be a whole record
/// with its activation code (a provider that sends `data` as a JSON string): the error goes
/// into logs, the job's stored error and operator alerts, which never hold a code. Kept:
/// the kind of value, what was expected (our type's words) and where.
pub(crate) fn shape_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let Some(quoted) = text.find(['"', '`']) else {
        return text;
    };
    if text.starts_with("missing field") {
        // The field's name is ours.
        return text;
    }
    let what = text[..quoted].trim_end().trim_end_matches(':');
    match text.rfind(", expected ") {
        Some(expected) if expected > quoted => format!("{what}{}", &text[expected..]),
        _ => format!("{what} at line {} column {}", e.line(), e.column()),
    }
}

/// The error a non-zero `code` means.
pub(crate) fn error(code: i64, msg: &str) -> ProviderError {
    let said = esim_courier_notify_http::peer_text(msg, 200);
    let (meaning, error): (&str, fn(String) -> ProviderError) = match code {
        101 => ("still processing, retry shortly", ProviderError::transient),
        102 => ("server busy", ProviderError::transient),
        400 => (
            "the request was refused as a query error",
            ProviderError::permanent,
        ),
        501 => ("the account does not exist", account_permanent),
        502 => ("the account is inactive", account_permanent),
        503 => ("this server's IP address is not allowed", account_permanent),
        504 => ("the package does not exist", ProviderError::permanent),
        505 => (
            "the package's price is not available",
            ProviderError::permanent,
        ),
        506 => ("insufficient balance or credit", account_transient),
        // 9999 is "unknown error"; an undocumented code is treated the same way.
        _ => ("unknown error", ProviderError::transient),
    };
    let message = if said.is_empty() {
        format!("code {code}: {meaning}")
    } else {
        format!("code {code}: {meaning} ({said})")
    };
    error(message).with_code(code)
}

fn account_permanent(message: String) -> ProviderError {
    ProviderError::permanent(message).about_the_account()
}

fn account_transient(message: String) -> ProviderError {
    ProviderError::transient(message).about_the_account()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_says_whether_a_retry_helps_and_whether_operators_must_act() {
        // (code, transient, about the account)
        let table = [
            (101, true, false),
            (102, true, false),
            (400, false, false),
            (501, false, true),
            (502, false, true),
            (503, false, true),
            (504, false, false),
            (505, false, false),
            (506, true, true),
            (9999, true, false),
            (777, true, false),
        ];
        for (code, transient, account) in table {
            let e = error(code, "x");
            assert_eq!(e.is_transient(), transient, "{code}");
            assert_eq!(e.is_about_the_account(), account, "{code}");
            assert_eq!(e.code(), Some(code));
        }
    }

    #[test]
    fn success_gives_the_data_and_garbage_is_transient() {
        let data =
            read(br#"{"code": 0, "msg": "success", "data": {"orderNo": 202611300000000000001}}"#)
                .expect("success");
        assert_eq!(data.get(), r#"{"orderNo": 202611300000000000001}"#);
        assert!(read(br#"{"code": 0, "msg": "success"}"#).is_err());
        assert!(read(b"<html>").expect_err("garbage").is_transient());
        let e = read(br#"{"code": 504, "msg": "no such package\u001b[2J", "data": null}"#)
            .expect_err("an error code");
        assert!(!e.is_transient() && e.message().contains("package does not exist"));
        assert!(!e.message().contains('\u{1b}'), "{}", e.message());
    }

    #[test]
    fn a_json_error_names_the_shape_never_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Page {
            records: Vec<u8>,
        }
        let code = "LPA:1$smdp.example.com$K2-4KJ2T-1B6Q9X";
        for (json, said) in [
            (
                format!(r#""{{\"lpa\": \"{code}\"}}""#),
                "invalid type: string, expected struct Page at line 1 column ",
            ),
            (
                format!(r#"{{"records": "{code}"}}"#),
                "invalid type: string, expected a sequence at line 1 column ",
            ),
            (
                format!(r#"{{"records": ["{code}"]}}"#),
                "invalid type: string, expected u8 at line 1 column ",
            ),
            (
                "{}".to_owned(),
                "missing field `records` at line 1 column 2",
            ),
            (
                format!("{{\"records\": [1, {code}"),
                "expected value at line 1 column ",
            ),
        ] {
            let e = serde_json::from_str::<Page>(&json).expect_err(&json);
            let shown = shape_error(&e);
            assert!(shown.starts_with(said), "{json}: {shown}");
            assert!(!shown.contains("K2-4KJ2T"), "{json}: {shown}");
        }
        let e = read(format!(r#"{{"code": "{code}"}}"#).as_bytes()).expect_err("a string code");
        assert!(!e.message().contains("K2-4KJ2T"), "{}", e.message());
    }

    #[test]
    fn an_error_code_holds_whatever_its_msg_is() {
        for (body, said) in [
            (r#"{"code": 504, "msg": 504, "data": null}"#, Some("(504)")),
            (
                r#"{"code": 504, "msg": {"en": "no such package"}, "data": null}"#,
                None,
            ),
            (r#"{"code": 504, "msg": null}"#, None),
            (r#"{"code": 504}"#, None),
        ] {
            let e = read(body.as_bytes()).expect_err(body);
            assert!(
                !e.is_transient() && e.code() == Some(504),
                "{body}: {}",
                e.message()
            );
            assert_eq!(
                e.message().ends_with(')'),
                said.is_some(),
                "{body}: {}",
                e.message()
            );
            if let Some(said) = said {
                assert!(e.message().ends_with(said), "{body}: {}", e.message());
            }
        }
    }
}
