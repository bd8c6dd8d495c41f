//! Configuration: a TOML file, then environment overrides `ESIM_COURIER__SECTION__KEY`
//! (a double underscore nests: `ESIM_COURIER__DATABASE__URL`). Unknown keys are errors that
//! name the key. Every secret can come from the environment instead of the file.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use esim_courier_core::RouteTrigger;
use esim_courier_receiver::{SignatureAlgorithm, SignatureEncoding};
use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// The whole configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub webhook: WebhookSection,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub dispatcher: DispatcherSection,
    #[serde(default)]
    pub log: LogSection,
    /// Extra numeric currency codes of the provider: `"6" = "JPY"`.
    #[serde(default)]
    pub currencies: BTreeMap<String, String>,
    /// Notifier sections by name; each is checked against its type's own schema.
    #[serde(default)]
    pub notifiers: BTreeMap<String, Dict>,
    #[serde(default)]
    pub routes: Vec<RouteSection>,
    /// The provider's order API (`type = "yoni"` and that type's keys), if configured.
    #[serde(default)]
    pub provider: Option<Dict>,
    /// What reconciliation does with the provider's order API.
    #[serde(default)]
    pub reconcile: ReconcileSection,
    /// The operators' console under `/admin`.
    #[serde(default)]
    pub console: ConsoleSection,
    /// The keys that seal activation codes and customer data at rest. Without it, on SQLite
    /// a key file beside the database is made on first start; on PostgreSQL it is required.
    #[serde(default)]
    pub encryption: Option<EncryptionSection>,
    /// How long activation codes, receipt bodies and customer data are kept.
    #[serde(default)]
    pub retention: RetentionSection,
}

/// `[retention]`: each period unset keeps that data. A purge job runs every
/// `purge_interval` across the replicas and erases what is past its period.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Activation codes, after the activation email was delivered (then kept masked).
    #[serde(default, with = "humantime_serde")]
    pub activation_codes: Option<Duration>,
    /// Raw receipt bodies, after they arrived (replaced by a note saying they were redacted).
    #[serde(default, with = "humantime_serde")]
    pub receipt_bodies: Option<Duration>,
    /// After the order was created, its customer's data as `customers forget` erases it:
    /// address, name, language, recipients, codes (kept masked) and receipt bodies; its
    /// activation emails not yet sent are cancelled.
    #[serde(default, with = "humantime_serde")]
    pub customer_data: Option<Duration>,
    /// Between two purges.
    #[serde(default = "default_purge_interval", with = "humantime_serde")]
    pub purge_interval: Duration,
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            activation_codes: None,
            receipt_bodies: None,
            customer_data: None,
            purge_interval: default_purge_interval(),
        }
    }
}

fn default_purge_interval() -> Duration {
    Duration::from_secs(3600)
}

impl RetentionSection {
    /// The store's periods; `None` when nothing is kept for a limited time.
    pub fn periods(&self) -> Option<esim_courier_store::Retention> {
        let r = esim_courier_store::Retention {
            activation_codes: self.activation_codes,
            receipt_bodies: self.receipt_bodies,
            customer_data: self.customer_data,
        };
        (r != esim_courier_store::Retention::default()).then_some(r)
    }
}

/// `[encryption]`: the data keys by id, the one new values are sealed with, and the index
/// key of the blind index. Each can come from the environment
/// (`ESIM_COURIER__ENCRYPTION__KEYS__K2`, whose id is then lower case: `k2`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionSection {
    /// The id of the key new values are sealed with.
    pub active_key: String,
    /// Base64 of 32 random bytes each (`esim-courier keys generate`), by id.
    #[serde(default)]
    pub keys: BTreeMap<String, SecretString>,
    /// Base64 of 32 random bytes: keys the blind index (never rotated by `keys rotate`).
    #[serde(default)]
    pub index_key: Option<SecretString>,
}

/// `[console]`: the operators' web console under `/admin` on `server.bind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// Serve it (users are added with `esim-courier users add`).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A session unused this long is ended.
    #[serde(default = "default_session_idle", with = "humantime_serde")]
    pub session_idle: Duration,
    /// Failed logins allowed per client address and per user name within a minute; the
    /// next answers 429.
    #[serde(default = "default_login_attempts")]
    pub login_attempts_per_minute: u32,
    /// Mark the console's cookies `Secure` (the browser sends them over HTTPS only). Unset:
    /// when esim-courier serves TLS itself (`[server] tls`); set it to `true` behind a proxy
    /// that terminates TLS, where esim-courier itself is reached over plain HTTP.
    #[serde(default)]
    pub secure_cookies: Option<bool>,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            enabled: true,
            session_idle: default_session_idle(),
            login_attempts_per_minute: default_login_attempts(),
            secure_cookies: None,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_session_idle() -> Duration {
    Duration::from_secs(30 * 60)
}

fn default_login_attempts() -> u32 {
    5
}

/// `[reconcile]`: looking orders up at the provider's order API (with a `[provider]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSection {
    /// A registered order with no result this long after its registration is looked up.
    #[serde(default = "default_expect_within", with = "humantime_serde")]
    pub expect_within: Duration,
    /// A lookup that finds no result looks again after this long, doubling up to 30 minutes.
    #[serde(default = "default_lookup_interval", with = "humantime_serde")]
    pub lookup_interval: Duration,
    /// Still no result this long after the first lookup was due: alert `order_overdue`.
    #[serde(default = "default_give_up_after", with = "humantime_serde")]
    pub give_up_after: Duration,
    /// Confirm each COMPLETED webhook's ICCID and activation code at the provider before
    /// emailing its customer.
    #[serde(default)]
    pub verify_webhooks: bool,
    /// Between two sweeps, across every replica; `0s` turns sweeps off.
    #[serde(default = "default_sweep_interval", with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// How far back a sweep looks: longer than the interval, so one sweep covers an outage
    /// that swallowed the previous ones.
    #[serde(default = "default_sweep_window", with = "humantime_serde")]
    pub sweep_window: Duration,
}

impl Default for ReconcileSection {
    fn default() -> Self {
        Self {
            expect_within: default_expect_within(),
            lookup_interval: default_lookup_interval(),
            give_up_after: default_give_up_after(),
            verify_webhooks: false,
            sweep_interval: default_sweep_interval(),
            sweep_window: default_sweep_window(),
        }
    }
}

fn default_expect_within() -> Duration {
    Duration::from_secs(2 * 60)
}

fn default_lookup_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_give_up_after() -> Duration {
    Duration::from_secs(24 * 60 * 60)
}

fn default_sweep_interval() -> Duration {
    Duration::from_secs(10 * 60)
}

fn default_sweep_window() -> Duration {
    Duration::from_secs(48 * 60 * 60)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the HTTP listener.
    #[serde(default = "default_bind")]
    pub bind: String,
    /// HTTP worker threads; 0 = one per core.
    #[serde(default)]
    pub workers: usize,
    /// A second listener for `/metrics` (and health), e.g. on a monitoring-only address.
    /// When set, `/metrics` is not served on `bind`.
    #[serde(default)]
    pub admin_bind: Option<String>,
    /// Serve HTTPS directly (rustls) with this certificate chain and key, both PEM files.
    #[serde(default)]
    pub tls: Option<TlsSection>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            workers: 0,
            admin_bind: None,
            tls: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

fn default_bind() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://data/esim-courier.db` or `postgres://user@host/db`. May carry a password:
    /// give it by `ESIM_COURIER__DATABASE__URL` rather than in the file.
    pub url: SecretString,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    8
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Accepted path tokens (several at once during a rotation).
    #[serde(deserialize_with = "one_or_many")]
    pub tokens: Vec<SecretString>,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Only these networks (CIDR) may post webhooks; empty = any.
    #[serde(default)]
    pub allow_sources: Vec<ipnet::IpNet>,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Requests per source address: `{ per_second = 20, burst = 40 }`.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSection>,
    /// Verify an HMAC signature header, for providers that sign.
    #[serde(default)]
    pub signature: Option<SignatureSection>,
    /// Operators get the `auth_failures` alert when more requests than this with a wrong
    /// webhook token or API bearer token arrive within a minute; 0 turns the alert off.
    #[serde(default = "default_auth_failure_alert_per_minute")]
    pub auth_failure_alert_per_minute: u32,
}

fn default_auth_failure_alert_per_minute() -> u32 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    pub per_second: u32,
    #[serde(default)]
    pub burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSection {
    /// The header holding the signature, e.g. `X-Signature`.
    pub header: String,
    /// `sha256` (default), `sha512` or `sha1`.
    #[serde(default)]
    pub algorithm: SignatureAlgorithm,
    /// `hex` (default) or `base64`.
    #[serde(default)]
    pub encoding: SignatureEncoding,
    /// Text before the signature in the header value, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: String,
    /// The shared secret (better given by ESIM_COURIER__WEBHOOK__SIGNATURE__SECRET).
    pub secret: SecretString,
}

fn default_max_body() -> usize {
    65536
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Bearer tokens of the order API. With none, the API refuses every call.
    #[serde(default, deserialize_with = "one_or_many")]
    pub tokens: Vec<SecretString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatcherSection {
    #[serde(default = "default_lease", with = "humantime_serde")]
    pub lease: Duration,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(default = "default_customer_wait", with = "humantime_serde")]
    pub customer_wait: Duration,
    #[serde(default = "default_shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for DispatcherSection {
    fn default() -> Self {
        Self {
            lease: default_lease(),
            concurrency: default_concurrency(),
            poll_interval: default_poll(),
            customer_wait: default_customer_wait(),
            shutdown_grace: default_shutdown_grace(),
        }
    }
}

fn default_lease() -> Duration {
    Duration::from_secs(60)
}
fn default_concurrency() -> usize {
    16
}
fn default_poll() -> Duration {
    Duration::from_secs(5)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(10)
}
fn default_customer_wait() -> Duration {
    Duration::from_secs(30 * 60)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `text` (readable) or `json`.
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `info,esim_courier_dispatch=debug`. `RUST_LOG` wins.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

fn default_log_format() -> LogFormat {
    LogFormat::Text
}
fn default_log_level() -> String {
    "info".into()
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// `COMPLETED`, `FAILED`, `alert` or `alert.<kind>`, parsed when the file is loaded.
    pub when: RouteTrigger,
    pub notify: Vec<String>,
}

/// A notifier's retry policy: `[notifiers.<name>.retry]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    #[serde(default = "default_initial_delay", with = "humantime_serde")]
    pub initial_delay: Duration,
    #[serde(default = "default_max_delay", with = "humantime_serde")]
    pub max_delay: Duration,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for RetrySection {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            max_age: default_max_age(),
            initial_delay: default_initial_delay(),
            max_delay: default_max_delay(),
            timeout: default_timeout(),
        }
    }
}

fn default_max_attempts() -> u32 {
    12
}
fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_initial_delay() -> Duration {
    Duration::from_secs(1)
}
fn default_max_delay() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// A list, or one string standing for a list of one (handy in environment variables).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![SecretString::from(s)],
        OneOrMany::Many(v) => v.into_iter().map(SecretString::from).collect(),
    })
}

/// The environment prefix of overrides.
pub const ENV_PREFIX: &str = "ESIM_COURIER__";

impl Config {
    /// Reads `path`, then the environment. Fails naming the file, the key and the reason.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            bail!(
                "configuration file {} does not exist (give another with --config PATH)",
                path.display()
            );
        }
        let figment = Figment::new()
            .merge(Toml::file(path))
            .merge(Env::prefixed(ENV_PREFIX).split("__"));
        let config: Config = figment
            .extract()
            .map_err(|e| anyhow::anyhow!(describe(&e)))
            .with_context(|| format!("configuration {} is not valid", path.display()))?;
        for (name, section) in &config.notifiers {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                bail!("notifier name {name:?} may only use letters, digits, '-' and '_'");
            }
            if !section.contains_key("type") {
                bail!("notifiers.{name}: key \"type\" is missing (log, webhook, ...)");
            }
        }
        Ok(config)
    }
}

/// Figment's errors, one line each, naming the key. A value of the wrong type is named by its
/// kind, never shown: figment reads an environment variable as a number or a boolean when it
/// looks like one, so a secret made of digits (`ESIM_COURIER__...__SECRET=84736251093847`)
/// fails as "found unsigned int `84736251093847`", and these lines reach the terminal and the
/// logs.
pub(crate) fn describe(e: &figment::Error) -> String {
    use figment::error::Kind;
    e.clone()
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let kind = match &e.kind {
                Kind::InvalidType(actual, expected) => {
                    format!(
                        "invalid type: found {}, expected {expected}",
                        kind_of(actual)
                    )
                }
                Kind::InvalidValue(actual, expected) => {
                    format!(
                        "invalid value: found {}, expected {expected}",
                        kind_of(actual)
                    )
                }
                kind => kind.to_string(),
            };
            if key.is_empty() {
                kind
            } else {
                format!("key {key}: {kind}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What kind of value figment found, without the value.
fn kind_of(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a number",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit | Actual::Option => "no value",
        Actual::Seq => "a list",
        Actual::Map | Actual::NewtypeStruct => "a table",
        Actual::Enum
        | Actual::UnitVariant
        | Actual::NewtypeVariant
        | Actual::TupleVariant
        | Actual::StructVariant => "a variant",
        Actual::Other(_) => "another kind of value",
    }
}

/// The keys of a `[notifiers.<name>]` section that esim-courier reads itself (see
/// `plugins::RESERVED_KEYS`); the others are the notifier type's own.
#[derive(Debug, Deserialize)]
pub struct NotifierCommon {
    /// The notifier type (`email`, `slack`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The dispatcher's retry policy for it.
    #[serde(default)]
    pub retry: RetrySection,
    /// Operator notifiers: what arrives within this window goes out as one message
    /// (`"0s"` sends each on its own). Unset: the default window.
    #[serde(default, with = "humantime_serde")]
    pub group_window: Option<Duration>,
}

impl NotifierCommon {
    /// The reserved keys of notifier `name`'s section, naming the notifier and key on failure.
    pub fn of(name: &str, section: &Dict) -> anyhow::Result<Self> {
        Value::from(section.clone())
            .deserialize::<Self>()
            .map_err(|e| anyhow::anyhow!("notifiers.{name}: {}", describe(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_file(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config")
            .join(name)
    }

    fn load_and_compose(path: &Path) {
        let name = path.display();
        let config = Config::load(path).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let notifiers = crate::compose::notifiers(&config, &crate::plugins::Registry::builtin())
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let routes =
            crate::compose::routes(&config, &notifiers).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        crate::compose::receiver_config(&config, routes)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        crate::compose::dispatcher_config(&config).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }

    #[test]
    fn the_shipped_configurations_load_and_compose() {
        load_and_compose(&repo_file("esim-courier.toml"));
        // The production example leaves its SMTP passwords to the environment; supply them in
        // a copy (the environment is shared by the tests running beside this one).
        let text = std::fs::read_to_string(repo_file("production.example.toml")).expect("read");
        let text = text
            .replace(
                "username = \"courier\"\n",
                "username = \"courier\"\npassword = \"from-the-environment\"\n",
            )
            .replace(
                "username = \"courier\" }",
                "username = \"courier\", password = \"from-the-environment\" }",
            );
        let dir = tempfile::tempdir().expect("temp dir");
        let copy = dir.path().join("production.toml");
        std::fs::write(&copy, text).expect("write");
        load_and_compose(&copy);
    }

    #[test]
    fn a_notifier_section_with_an_unknown_key_names_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[database]\nurl = \"sqlite://x.db\"\n[webhook]\ntokens = [\"t\"]\n[notifiers.ops]\ntype = \"log\"\naudiense = \"operator\"\n",
        )
        .expect("write");
        let config = Config::load(&path).expect("the top level is valid");
        let err = crate::compose::notifiers(&config, &crate::plugins::Registry::builtin())
            .expect_err("unknown key")
            .to_string();
        assert!(
            err.contains("notifiers.ops") && err.contains("audiense"),
            "{err}"
        );
    }

    #[test]
    fn the_reconcile_section_has_defaults_and_refuses_what_it_does_not_do() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        let base = "[database]\nurl = \"sqlite://x.db\"\n[webhook]\ntokens = [\"t\"]\n";
        std::fs::write(&path, base).expect("write");
        let config = Config::load(&path).expect("valid");
        assert_eq!(config.reconcile.sweep_interval, Duration::from_secs(600));
        assert_eq!(
            config.reconcile.sweep_window,
            Duration::from_secs(48 * 3600)
        );
        std::fs::write(
            &path,
            format!("{base}[reconcile]\nsweep_interval = \"0s\"\nsweep_window = \"2h\"\n"),
        )
        .expect("write");
        let config = Config::load(&path).expect("valid");
        assert!(config.reconcile.sweep_interval.is_zero());
        std::fs::write(&path, format!("{base}[reconcile]\nplace_orders = true\n")).expect("write");
        let err = format!("{:#}", Config::load(&path).expect_err("not built yet"));
        assert!(err.contains("place_orders"), "{err}");
    }

    #[test]
    fn a_lease_under_a_second_or_a_zero_poll_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        let base = "[database]\nurl = \"sqlite://x.db\"\n[webhook]\ntokens = [\"t\"]\n";
        for (dispatcher, named) in [
            ("lease = \"0s\"", "dispatcher.lease"),
            ("lease = \"500ms\"", "dispatcher.lease"),
            ("poll_interval = \"0s\"", "dispatcher.poll_interval"),
        ] {
            std::fs::write(&path, format!("{base}[dispatcher]\n{dispatcher}\n")).expect("write");
            let config = Config::load(&path).expect("loads");
            let err = crate::compose::dispatcher_config(&config)
                .expect_err(dispatcher)
                .to_string();
            assert!(err.contains(named), "{dispatcher}: {err}");
        }
        std::fs::write(&path, format!("{base}[dispatcher]\nlease = \"2s\"\n")).expect("write");
        let config = Config::load(&path).expect("loads");
        let composed = crate::compose::dispatcher_config(&config).expect("a valid lease");
        assert_eq!(composed.lease, Duration::from_secs(2));
    }

    #[test]
    fn a_console_nobody_could_use_is_refused_by_name_and_secure_cookies_follow_tls() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        let base = "[database]\nurl = \"sqlite://x.db\"\n[webhook]\ntokens = [\"t\"]\n";
        for (console, named) in [
            (
                "login_attempts_per_minute = 0",
                "console.login_attempts_per_minute",
            ),
            ("session_idle = \"0s\"", "console.session_idle"),
            ("session_idle = \"30s\"", "console.session_idle"),
        ] {
            std::fs::write(&path, format!("{base}[console]\n{console}\n")).expect("write");
            let config = Config::load(&path).expect("loads");
            let err = crate::compose::console_config(&config, false, Vec::new())
                .expect_err(console)
                .to_string();
            assert!(err.contains(named), "{console}: {err}");
        }
        for (console, tls, secure) in [
            ("", false, false),
            ("", true, true),
            ("secure_cookies = true", false, true),
            ("secure_cookies = false", true, false),
        ] {
            std::fs::write(&path, format!("{base}[console]\n{console}\n")).expect("write");
            let config = Config::load(&path).expect("loads");
            let composed = crate::compose::console_config(&config, tls, Vec::new()).expect("valid");
            assert_eq!(composed.secure_cookies, secure, "{console:?}, tls {tls}");
        }
    }

    #[test]
    fn the_signature_algorithm_and_encoding_are_typed_when_loaded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        let with = |signature: &str| {
            format!("[database]\nurl = \"sqlite://x.db\"\n[webhook]\ntokens = [\"t\"]\nsignature = {{ header = \"X-Sig\", secret = \"s\"{signature} }}\n")
        };
        std::fs::write(
            &path,
            with(", algorithm = \"SHA512\", encoding = \"base64\""),
        )
        .expect("write");
        let signature = Config::load(&path)
            .expect("loads")
            .webhook
            .signature
            .expect("a signature");
        assert_eq!(signature.algorithm, SignatureAlgorithm::Sha512);
        assert_eq!(signature.encoding, SignatureEncoding::Base64);
        std::fs::write(&path, with("")).expect("write");
        let signature = Config::load(&path)
            .expect("loads")
            .webhook
            .signature
            .expect("a signature");
        assert_eq!(
            (signature.algorithm, signature.encoding),
            (SignatureAlgorithm::Sha256, SignatureEncoding::Hex),
            "the defaults"
        );
        std::fs::write(&path, with(", algorithm = \"md5\"")).expect("write");
        let err = format!("{:#}", Config::load(&path).expect_err("refused"));
        assert!(err.contains("md5") && err.contains("algorithm"), "{err}");
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_named_by_its_key_never_shown() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        // As figment reads `ESIM_COURIER__WEBHOOK__SIGNATURE__SECRET=84736251093847`.
        for (secret, kind) in [("84736251093847", "an integer"), ("true", "a boolean")] {
            std::fs::write(
                &path,
                format!("[database]\nurl = \"sqlite://x.db\"\n[webhook]\ntokens = [\"t\"]\nsignature = {{ header = \"X-Sig\", secret = {secret} }}\n"),
            )
            .expect("write");
            let err = format!("{:#}", Config::load(&path).expect_err("refused"));
            assert!(
                err.contains("webhook.signature.secret")
                    && err.contains(&format!("found {kind}, expected a string")),
                "{err}"
            );
            assert!(!err.contains(secret), "{err}");
        }
    }

    #[test]
    fn routes_must_name_configured_notifiers_and_valid_triggers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("c.toml");
        let base = "[database]\nurl = \"sqlite://x.db\"\n[webhook]\ntokens = [\"t\"]\n[notifiers.ops]\ntype = \"log\"\n";
        // A notifier that is not configured: refused when the routes are composed.
        std::fs::write(
            &path,
            format!("{base}[[routes]]\nwhen = \"FAILED\"\nnotify = [\"nope\"]\n"),
        )
        .expect("write");
        let config = Config::load(&path).expect("loads");
        let notifiers = crate::compose::notifiers(&config, &crate::plugins::Registry::builtin())
            .expect("builds");
        let err = crate::compose::routes(&config, &notifiers)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("\"nope\""), "{err}");
        // A trigger that does not exist: refused when the file is loaded, naming it.
        std::fs::write(
            &path,
            format!("{base}[[routes]]\nwhen = \"REFUNDED\"\nnotify = [\"ops\"]\n"),
        )
        .expect("write");
        let err = format!("{:#}", Config::load(&path).expect_err("refused"));
        assert!(err.contains("REFUNDED") && err.contains("when"), "{err}");
    }
}
