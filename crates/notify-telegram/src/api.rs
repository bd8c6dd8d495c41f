//! The few Bot API calls the notifier makes, and what Telegram's answers mean for a retry.
//!
//! Every call is `POST {api_base}/bot{token}/{method}` with a JSON body. The answer is
//! `{"ok": true, "result": …}` or `{"ok": false, "error_code": 429, "description": "…",
//! "parameters": {"retry_after": 30}}`. The token is in every URL: nothing here shows a URL,
//! and every error message is scrubbed of the token before it leaves this module.

use std::fmt;
use std::time::Duration;

use esim_courier_core::NotifyError;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{ChatId, ConfigError, TelegramConfig};

/// Longest answer read: a `sendMessage` answer echoes the message, at most a few KiB.
const MAX_ANSWER: usize = 256 * 1024;

/// A client of one bot's Bot API.
pub(crate) struct BotApi {
    base: String,
    token: SecretString,
    client: reqwest::Client,
}

/// A `sendMessage` that was accepted.
#[derive(Debug)]
pub(crate) struct Sent {
    /// Telegram's id of the message in its chat.
    pub(crate) message_id: Option<i64>,
}

impl BotApi {
    /// Checks the token and base URL, and builds the HTTP client.
    pub(crate) fn new(config: &TelegramConfig) -> Result<Self, ConfigError> {
        let token = config.bot_token.expose_secret().trim();
        let valid = token.split_once(':').is_some_and(|(id, secret)| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && !secret.is_empty()
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if !valid {
            return Err(ConfigError::BotToken);
        }
        let base = reqwest::Url::parse(config.api_base.trim())
            .map_err(|e| ConfigError::ApiBase(format!("not a URL ({e})")))?;
        if !matches!(base.scheme(), "https" | "http") || base.host_str().is_none() {
            return Err(ConfigError::ApiBase("must be an http(s) URL".into()));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ConfigError::ApiBase(
                "must have no query or fragment".into(),
            ));
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::Timeout);
        }
        let client = esim_courier_notify_http::client(config.timeout)
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Self {
            base: base.as_str().trim_end_matches('/').to_owned(),
            token: SecretString::from(token.to_owned()),
            client,
        })
    }

    /// Sends one HTML message.
    pub(crate) async fn send_message(
        &self,
        chat_id: &ChatId,
        text: &str,
    ) -> Result<Sent, NotifyError> {
        let body = serde_json::json!({
            "chat_id": chat_id,
            "text": text,
            "parse_mode": "HTML",
            "disable_web_page_preview": true,
        });
        let result = self.call("sendMessage", &body).await?;
        Ok(Sent {
            message_id: result.get("message_id").and_then(Value::as_i64),
        })
    }

    /// Calls `method` and returns its `result`, or an error saying whether a retry can help.
    pub(crate) async fn call(&self, method: &str, body: &Value) -> Result<Value, NotifyError> {
        let url = format!("{}/bot{}/{method}", self.base, self.token.expose_secret());
        let response = self.client.post(url).json(body).send().await.map_err(|e| {
            // Timeouts, refused connections, resets: Telegram may be back soon.
            NotifyError::transient(self.scrub(&format!(
                "{method} failed: {}",
                esim_courier_notify_http::describe(&e)
            )))
        })?;
        let status = response.status().as_u16();
        let retry_after_header =
            esim_courier_notify_http::retry_after(response.headers()).map(|d| d.as_secs());
        let answer: Option<Answer> = serde_json::from_slice(&read(response).await).ok();
        let outcome = classify(status, answer, retry_after_header);
        outcome.map_err(|e| self.scrub_error(method, e))
    }

    /// `text` without the token, should any layer have quoted it.
    fn scrub(&self, text: &str) -> String {
        text.replace(self.token.expose_secret(), "[redacted]")
    }

    fn scrub_error(&self, method: &str, e: Failure) -> NotifyError {
        let message = self.scrub(&format!("{method}: {}", e.message));
        let error = if e.transient {
            NotifyError::transient(message)
        } else {
            NotifyError::permanent(message)
        };
        match e.retry_after {
            Some(after) => error.with_retry_after(after),
            None => error,
        }
    }
}

impl fmt::Debug for BotApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotApi")
            .field("base", &self.base)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// The Bot API's answer, read tolerantly: unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Value,
    error_code: Option<u16>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Debug, Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// A failed call, before the token is scrubbed from its message.
#[derive(Debug)]
struct Failure {
    transient: bool,
    message: String,
    retry_after: Option<Duration>,
}

/// What an HTTP status and answer come to.
fn classify(
    status: u16,
    answer: Option<Answer>,
    retry_after_header: Option<u64>,
) -> Result<Value, Failure> {
    match answer {
        Some(a) if a.ok && (200..300).contains(&status) => return Ok(a.result),
        // Not the Bot API's JSON (a proxy's page?): a 2xx still means it was taken.
        None if (200..300).contains(&status) => return Ok(Value::Null),
        _ => {}
    }
    let (code, description, parameters) = match answer {
        Some(a) => (a.error_code.unwrap_or(status), a.description, a.parameters),
        None => (status, None, None),
    };
    let description = description
        .map(|d| esim_courier_notify_http::peer_text(&d, 200))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "no description".to_owned());
    let retry_after = parameters
        .as_ref()
        .and_then(|p| p.retry_after)
        .or(retry_after_header)
        .map(Duration::from_secs);
    let message = format!("Telegram answered {code} ({description})");
    if let Some(new_id) = parameters.as_ref().and_then(|p| p.migrate_to_chat_id) {
        return Err(Failure {
            transient: false,
            message: format!("{message}: the group became a supergroup; set chat_id = {new_id}"),
            retry_after: None,
        });
    }
    let transient = esim_courier_notify_http::is_retryable(code)
        || esim_courier_notify_http::is_retryable(status);
    Err(Failure {
        transient,
        message: if code == 401 {
            format!("{message}: the bot token was refused")
        } else {
            message
        },
        retry_after: if transient { retry_after } else { None },
    })
}

/// At most [`MAX_ANSWER`] bytes of the body; what could not be read is left out.
async fn read(response: reqwest::Response) -> Vec<u8> {
    esim_courier_notify_http::read_body(response, MAX_ANSWER)
        .await
        .unwrap_or_else(esim_courier_notify_http::BodyError::into_partial)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Option<Answer> {
        serde_json::from_str(json).ok()
    }

    #[test]
    fn answers_say_whether_a_retry_can_help() {
        let ok = classify(
            200,
            answer(r#"{"ok":true,"result":{"message_id":7}}"#),
            None,
        );
        assert_eq!(ok.expect("sent")["message_id"], 7);

        let e = classify(
            429,
            answer(r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#),
            None,
        )
        .expect_err("429");
        assert!(e.transient);
        assert_eq!(e.retry_after, Some(Duration::from_secs(5)));

        let e = classify(502, None, Some(3)).expect_err("502");
        assert!(e.transient);
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));

        let e = classify(
            400,
            answer(r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#),
            None,
        )
        .expect_err("400");
        assert!(!e.transient);
        assert!(
            e.message.contains("set chat_id = -1001234"),
            "{}",
            e.message
        );

        let e = classify(
            401,
            answer(r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#),
            None,
        )
        .expect_err("401");
        assert!(!e.transient);
        assert!(e.message.contains("bot token was refused"));
    }
}
