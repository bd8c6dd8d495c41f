use std::path::Path;
use std::process::ExitCode;

use crate::compose;
use crate::config::Config;

/// `esim-courier check`: one pass/fail line per check, non-zero exit on any failure.
pub async fn run(path: &Path, registry: &crate::plugins::Registry) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut line = |ok: bool, what: &str, detail: &str| {
        failed |= !ok;
        println!(
            "{} {what}{}",
            if ok { "PASS" } else { "FAIL" },
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        );
    };
    let config = match Config::load(path) {
        Ok(c) => {
            line(true, "configuration", &path.display().to_string());
            c
        }
        Err(e) => {
            line(false, "configuration", &format!("{e:#}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    let notifiers = match compose::notifiers(&config, registry)
        .and_then(|n| compose::routes(&config, &n).map(|r| (n, r)))
    {
        Ok((n, r)) => match compose::receiver_config(&config, r) {
            Ok(_) => {
                line(
                    true,
                    "notifiers and routes",
                    &format!("{} notifier(s)", n.len()),
                );
                Some(n)
            }
            Err(e) => {
                line(false, "receiver settings", &format!("{e:#}"));
                Some(n)
            }
        },
        Err(e) => {
            line(false, "notifiers and routes", &format!("{e:#}"));
            None
        }
    };
    if let Err(e) = compose::dispatcher_config(&config) {
        line(false, "dispatcher settings", &format!("{e:#}"));
    }
    if let Err(e) = compose::retention_settings(&config) {
        line(false, "retention settings", &format!("{e:#}"));
    }
    if config.console.enabled {
        if let Err(e) = compose::console_config(&config, false, Vec::new()) {
            line(false, "console settings", &format!("{e:#}"));
        }
    }
    match compose::provider(&config, None) {
        Ok(None) => {}
        Ok(Some(provider)) => match provider.healthcheck().await {
            Ok(()) => line(
                true,
                &format!("provider {}", provider.name()),
                "a signed call was accepted",
            ),
            Err(e) => line(
                false,
                &format!("provider {}", provider.name()),
                &e.to_string(),
            ),
        },
        Err(e) => line(false, "provider", &format!("{e:#}")),
    }
    // Nothing in the database is changed here: `check` is run before an upgrade, while
    // replicas of the older version serve, and a migration would make them refuse to start
    // again, as encrypting the values stored before encryption would leave what they write
    // after it unsealed. The next start (or `migrate`) does both; this says what it will do.
    match super::connect_unmigrated(&config).await {
        Ok(store) => {
            match store.ping().await {
                Ok(()) => line(true, "store", "reachable"),
                Err(e) => line(false, "store", &e.to_string()),
            }
            let migrated = match store.migration_status().await {
                Ok(status) if !status.unknown.is_empty() => {
                    line(
                        false,
                        "store schema",
                        &format!(
                            "the database was migrated by a newer esim-courier (migration(s) {:?} are not this version's): run that version",
                            status.unknown
                        ),
                    );
                    false
                }
                Ok(status) if status.pending.is_empty() => {
                    line(true, "store schema", "up to date");
                    true
                }
                Ok(status) => {
                    line(
                        true,
                        "store schema",
                        &format!(
                            "{} migration(s) to apply, by the next start or `esim-courier migrate` (stop the older version's replicas first); the newest: {}",
                            status.pending.len(),
                            status.pending.last().map_or("", String::as_str)
                        ),
                    );
                    false
                }
                Err(e) => {
                    line(false, "store schema", &e.to_string());
                    false
                }
            };
            // The keys are checked against what the database records, which every schema
            // since encryption holds: before an upgrade too, where a key the next start
            // refuses would leave no version able to start (the migration applied first).
            match store.verify_encryption().await {
                Err(e @ esim_courier_store::StoreError::Config(_)) => line(
                    false,
                    "encryption",
                    &format!("cannot start with the configured encryption keys: {e}"),
                ),
                // A schema from before encryption has nothing to check the keys against.
                Err(_) if !migrated => line(
                    true,
                    "encryption",
                    "checked once the database is migrated (run `check` again then)",
                ),
                Ok(None) => line(
                    true,
                    "encryption",
                    "the configured keys are the ones this database was encrypted and indexed with",
                ),
                Ok(Some(plaintext)) => line(
                    true,
                    "encryption",
                    &format!(
                        "the database is from before encryption: the next start encrypts its \
                         {plaintext} stored value(s), once every replica of the older version \
                         is stopped"
                    ),
                ),
                Err(e) => line(
                    false,
                    "encryption",
                    &format!("cannot start with the configured encryption keys: {e}"),
                ),
            }
            store.close().await;
        }
        Err(e) => line(false, "store", &format!("{e:#}")),
    }
    if let Some(notifiers) = notifiers {
        let mut names: Vec<_> = notifiers.keys().cloned().collect();
        names.sort();
        for name in names {
            let n = &notifiers[&name];
            match n.notifier.validate() {
                Ok(None) => {}
                Ok(Some(passed)) => line(true, &format!("notifier {name} (own checks)"), &passed),
                Err(problems) => {
                    for p in problems {
                        line(false, &format!("notifier {name} (own checks)"), &p);
                    }
                }
            }
            match n.notifier.healthcheck().await {
                Ok(()) => line(true, &format!("notifier {name}"), "healthy"),
                Err(e) => line(false, &format!("notifier {name}"), &e.to_string()),
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
