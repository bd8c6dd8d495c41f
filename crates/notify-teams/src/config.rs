/// The `[notifiers.<name>]` section of a `teams` notifier: `webhook_url` (the Workflows
/// trigger's URL, `https://….logic.azure.com/workflows/…/invoke?…&sig=…` or an
/// `…environment.api.powerplatform.com` URL; a secret) and `timeout`.
pub type TeamsConfig = esim_courier_notify_http::IncomingWebhookConfig;

pub use esim_courier_notify_http::ConfigError;
