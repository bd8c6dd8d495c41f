//! The notifier types this binary knows: a table of type name -> constructor, one
//! registration line per type. A notifier crate joins with that line (behind its Cargo
//! feature) and nothing else here changes; more types can be registered at run time (a
//! reseller's own binary registering theirs).
//!
//! The keys `type`, `retry` and `group_window` of a `[notifiers.<name>]` section belong to
//! esim-courier (which type, the dispatcher's retry policy, operator grouping); every other
//! key is the type's own configuration, deserialised into its config struct, which should
//! refuse unknown keys (`#[serde(deny_unknown_fields)]`) so a typo names itself.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use esim_courier_core::Notifier;
use figment::value::{Dict, Value};
use serde::de::DeserializeOwned;

use crate::config::describe;

/// The section keys that esim-courier reads itself; a notifier's config never sees them.
pub const RESERVED_KEYS: [&str; 3] = ["type", "retry", "group_window"];

/// Builds a notifier from its name and its whole section.
type Constructor = Box<dyn Fn(&str, &Dict) -> anyhow::Result<Arc<dyn Notifier>> + Send + Sync>;

/// Notifier types by name.
pub struct Registry {
    types: BTreeMap<String, Constructor>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.types.keys()).finish()
    }
}

impl Registry {
    /// No types at all.
    pub fn empty() -> Self {
        Self {
            types: BTreeMap::new(),
        }
    }

    /// The types built into this binary (each behind its default-on Cargo feature).
    pub fn builtin() -> Self {
        let mut registry = Self::empty();
        #[cfg(feature = "email")]
        registry.register("email", esim_courier_notify_email::EmailNotifier::new);
        #[cfg(feature = "log")]
        registry.register("log", |name: String, config| {
            Ok::<_, std::convert::Infallible>(esim_courier_notify_log::LogNotifier::new(
                name, config,
            ))
        });
        #[cfg(feature = "slack")]
        registry.register("slack", esim_courier_notify_slack::SlackNotifier::new);
        #[cfg(feature = "teams")]
        registry.register("teams", esim_courier_notify_teams::TeamsNotifier::new);
        #[cfg(feature = "telegram")]
        registry.register(
            "telegram",
            esim_courier_notify_telegram::TelegramNotifier::new,
        );
        #[cfg(feature = "webhook")]
        registry.register("webhook", esim_courier_notify_webhook::WebhookNotifier::new);
        registry
    }

    /// Registers `type_name`: its sections are deserialised into `C` (naming the notifier and
    /// the key on failure) and built by `new`. A later registration of the same name
    /// replaces the earlier one.
    pub fn register<C, N, E>(
        &mut self,
        type_name: &str,
        new: impl Fn(String, C) -> Result<N, E> + Send + Sync + 'static,
    ) -> &mut Self
    where
        C: DeserializeOwned,
        N: Notifier + 'static,
        E: fmt::Display,
    {
        let constructor: Constructor = Box::new(move |name, section| {
            let config = own_config::<C>(name, section)?;
            let notifier = new(name.to_owned(), config)
                .map_err(|e| anyhow::anyhow!("notifiers.{name}: {e}"))?;
            Ok(Arc::new(notifier) as Arc<dyn Notifier>)
        });
        self.types.insert(type_name.to_owned(), constructor);
        self
    }

    /// The registered type names, sorted.
    pub fn type_names(&self) -> Vec<&str> {
        self.types.keys().map(String::as_str).collect()
    }

    /// Builds the notifier `name` of `type_name` from its section.
    pub fn build(
        &self,
        type_name: &str,
        name: &str,
        section: &Dict,
    ) -> anyhow::Result<Arc<dyn Notifier>> {
        let Some(constructor) = self.types.get(type_name) else {
            anyhow::bail!(
                "notifiers.{name}: type {type_name:?} is not one of {}",
                self.type_names().join(", ")
            );
        };
        constructor(name, section)
    }
}

/// A notifier type's own configuration from its section: every key but the reserved ones,
/// naming the notifier and the key on failure.
pub fn own_config<C: DeserializeOwned>(name: &str, section: &Dict) -> anyhow::Result<C> {
    section_config(&format!("notifiers.{name}"), section, &RESERVED_KEYS)
}

/// A section deserialised into `C` without the keys esim-courier reads itself (`reserved`),
/// naming the section (`at`, e.g. `provider`) and the key on failure.
pub fn section_config<C: DeserializeOwned>(
    at: &str,
    section: &Dict,
    reserved: &[&str],
) -> anyhow::Result<C> {
    let mut own = section.clone();
    for key in reserved {
        own.remove(*key);
    }
    Value::from(own)
        .deserialize::<C>()
        .map_err(|e| anyhow::anyhow!("{at}: {}", describe(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use esim_courier_core::testing::RecordingNotifier;
    use esim_courier_core::Audience;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct CrmConfig {
        audience: Audience,
    }

    fn section(toml: &str) -> Dict {
        use figment::providers::Format;
        figment::Figment::from(figment::providers::Toml::string(toml))
            .extract::<Dict>()
            .expect("a table")
    }

    #[test]
    fn a_type_registered_at_run_time_is_built_from_its_own_keys_only() {
        let mut registry = Registry::builtin();
        registry.register("crm", |name: String, c: CrmConfig| {
            Ok::<_, String>(RecordingNotifier::new(name, c.audience))
        });
        assert!(registry.type_names().contains(&"crm"));
        let crm = registry
            .build(
                "crm",
                "my-crm",
                &section("type = \"crm\"\naudience = \"operator\"\ngroup_window = \"1s\"\nretry = { max_attempts = 3 }"),
            )
            .expect("built: the reserved keys are not the plugin's");
        assert_eq!(crm.name(), "my-crm");
        assert_eq!(crm.audience(), Audience::Operator);

        let err = registry
            .build("crm", "my-crm", &section("audiense = \"operator\""))
            .expect_err("a typo")
            .to_string();
        assert!(
            err.contains("notifiers.my-crm") && err.contains("audiense"),
            "{err}"
        );
        let err = registry
            .build("sms", "text", &section(""))
            .expect_err("unknown type")
            .to_string();
        assert!(err.contains("\"sms\"") && err.contains("crm"), "{err}");
    }
}
