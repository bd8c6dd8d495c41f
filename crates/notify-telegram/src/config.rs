use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The `[notifiers.<name>]` section of a `telegram` notifier. Telegram notifiers write to
/// operators only, so there is no `audience` key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// The bot's token from @BotFather (`123456789:AA…`). A secret: whoever has it controls
    /// the bot. Its `Debug` is redacted.
    pub bot_token: SecretString,
    /// The chat to write to: a number (a group's is negative, e.g. `-1001234567890`), or a
    /// public channel's `@username`.
    pub chat_id: ChatId,
    /// The Bot API server; a local `telegram-bot-api` server, or a test double.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// How long one request may take.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_api_base() -> String {
    "https://api.telegram.org".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A Telegram chat: its number, or a public channel's `@username`. Configured as an integer
/// or a string (so that an environment variable, always a string, works too).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, try_from = "RawChatId")]
pub enum ChatId {
    /// A chat's number.
    Id(i64),
    /// A public channel's or supergroup's `@username`.
    Username(String),
}

impl ChatId {
    /// Parses `-1001234567890` or `@channel`.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let s = raw.trim();
        if let Ok(id) = s.parse::<i64>() {
            return Ok(Self::Id(id));
        }
        match s.strip_prefix('@') {
            Some(name)
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Ok(Self::Username(s.to_owned()))
            }
            _ => Err(ConfigError::ChatId),
        }
    }
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Username(name) => f.write_str(name),
        }
    }
}

impl fmt::Debug for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChatId({self})")
    }
}

/// `chat_id` as written: an integer or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawChatId {
    Integer(i64),
    Text(String),
}

impl TryFrom<RawChatId> for ChatId {
    type Error = ConfigError;

    fn try_from(raw: RawChatId) -> Result<Self, Self::Error> {
        match raw {
            RawChatId::Integer(id) => Ok(Self::Id(id)),
            RawChatId::Text(text) => Self::parse(&text),
        }
    }
}

/// A Telegram notifier's section is not usable. Never quotes the bot token.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The token is not `<bot id>:<secret>`.
    #[error(
        "bot_token is not of the form <digits>:<letters, digits, '_' or '-'> that @BotFather gives"
    )]
    BotToken,
    /// The chat is neither a number nor an `@username`.
    #[error(
        "chat_id must be a chat's number (e.g. -1001234567890) or a public channel's @username"
    )]
    ChatId,
    /// The API base URL does not parse or is not http(s).
    #[error("api_base: {0}")]
    ApiBase(String),
    /// The timeout is zero.
    #[error("timeout must be longer than 0s")]
    Timeout,
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}
