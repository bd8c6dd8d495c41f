/// The `[notifiers.<name>]` section of a `slack` notifier: `webhook_url`
/// (`https://hooks.slack.com/services/T…/B…/…`, a secret) and `timeout`.
pub type SlackConfig = esim_courier_notify_http::IncomingWebhookConfig;

pub use esim_courier_notify_http::ConfigError;
