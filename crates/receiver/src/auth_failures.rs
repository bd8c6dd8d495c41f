//! Requests with a wrong webhook token or API bearer token. Someone who does not know the
//! URL's token, or is guessing the API's, must not go unnoticed, nor flood the log:
//!
//! - every one is counted in `esim_courier_auth_failures_total{endpoint}`;
//! - a source address is logged at most once a minute, with how many it sent since its
//!   last line;
//! - when more than `auth_failure_alert_per_minute` arrive within any minute, operators get
//!   one `auth_failures` alert (at most one a minute; replicas that cross the line in the
//!   same minute make one between them, through the alert's key).
//!
//! Counting is per process: with several replicas behind a balancer, each sees its share.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use esim_courier_core::Alert;
use esim_courier_store::{now_ms, NewJob};

use crate::AppState;

const MINUTE_MS: i64 = 60_000;
/// Sources remembered for the once-a-minute log line; past it, new ones share one entry.
const MAX_SOURCES: usize = 10_000;
/// Sources named in the alert, the busiest first.
const NAMED_IN_ALERT: usize = 5;

/// Which credential was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// The token in `/webhooks/order/{token}`.
    Webhook,
    /// The order API's bearer token.
    Api,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Api => "api",
        }
    }
}

/// The counts behind the log lines and the alert.
#[derive(Debug)]
pub(crate) struct AuthFailures {
    per_minute: u32,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the latest failures came, oldest first: at most `per_minute + 1` of them, so
    /// "more than `per_minute` within a minute" is the span from the first to the last.
    recent: VecDeque<i64>,
    last_alert_at: Option<i64>,
    sources: HashMap<String, Source>,
}

#[derive(Debug)]
struct Source {
    /// When its last log line was written.
    logged_at: i64,
    /// Failures since that line, this one included.
    unlogged: u64,
    /// Failures within the minute that began at `minute_from`.
    in_minute: u64,
    minute_from: i64,
    /// Its latest failure.
    last_at: i64,
}

/// What one failure calls for, decided under the lock and acted on outside it.
struct Verdict {
    /// Write a log line saying this many came from the source since its last line.
    log: Option<u64>,
    /// Raise the alert with this reason.
    alert: Option<String>,
}

impl AuthFailures {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            state: Mutex::default(),
        }
    }

    fn record(&self, source: &str, now: i64) -> Verdict {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *state;
        if state.sources.len() >= MAX_SOURCES && !state.sources.contains_key(source) {
            state.sources.retain(|_, s| now - s.logged_at < MINUTE_MS);
        }
        let key = if state.sources.len() >= MAX_SOURCES && !state.sources.contains_key(source) {
            "other sources"
        } else {
            source
        };
        let entry = state.sources.entry(key.to_owned()).or_insert(Source {
            logged_at: i64::MIN,
            unlogged: 0,
            in_minute: 0,
            minute_from: now,
            last_at: now,
        });
        entry.unlogged += 1;
        entry.last_at = now;
        if now - entry.minute_from >= MINUTE_MS {
            entry.minute_from = now;
            entry.in_minute = 0;
        }
        entry.in_minute += 1;
        let log = (now.saturating_sub(entry.logged_at) >= MINUTE_MS).then(|| {
            entry.logged_at = now;
            std::mem::take(&mut entry.unlogged)
        });

        if self.per_minute == 0 {
            return Verdict { log, alert: None };
        }
        let limit = self.per_minute as usize + 1;
        state.recent.push_back(now);
        while state.recent.len() > limit {
            state.recent.pop_front();
        }
        let passed = state.recent.len() == limit
            && state
                .recent
                .front()
                .is_some_and(|first| now - first < MINUTE_MS);
        let quiet = state.last_alert_at.is_none_or(|at| now - at >= MINUTE_MS);
        let alert = (passed && quiet).then(|| {
            state.last_alert_at = Some(now);
            let mut busiest: Vec<(&String, u64)> = state
                .sources
                .iter()
                .filter(|(_, s)| now - s.last_at < MINUTE_MS)
                .map(|(k, s)| (k, s.in_minute))
                .collect();
            busiest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            let named: Vec<String> = busiest
                .iter()
                .take(NAMED_IN_ALERT)
                .map(|(k, n)| format!("{k} ({n})"))
                .collect();
            format!(
                "more than {} requests with a wrong webhook or API token within a minute, all refused with 401; from {}",
                self.per_minute,
                named.join(", ")
            )
        });
        Verdict { log, alert }
    }
}

/// Counts, logs and, past the rate, alerts about one refused request.
pub(crate) fn refused(state: &AppState, endpoint: Endpoint, source: Option<IpAddr>) {
    metrics::counter!("esim_courier_auth_failures_total", "endpoint" => endpoint.as_str())
        .increment(1);
    let source = source.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let now = now_ms();
    let verdict = state.auth_failures.record(&source, now);
    if let Some(refused) = verdict.log {
        tracing::warn!(
            %source,
            endpoint = endpoint.as_str(),
            refused_since_last_line = refused,
            "request with a wrong token refused (logged once a minute per source)"
        );
    }
    let Some(reason) = verdict.alert else {
        return;
    };
    tracing::error!(reason = %reason, "raising the auth_failures alert");
    let alert = Alert::auth_failures(reason, now);
    let jobs = NewJob::alerts(&state.config.routes, &alert);
    let store = state.store.clone();
    let key = format!("auth_failures:{}", now / MINUTE_MS);
    // Written off the request: a refused caller is answered at once, whatever the store does.
    tokio::spawn(async move {
        if let Err(e) = store.raise_alert(&key, jobs).await {
            tracing::error!(error = %e, "the auth_failures alert could not be stored");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_log_line_per_source_per_minute_with_the_count_since_the_last() {
        let f = AuthFailures::new(0);
        let logged: Vec<Option<u64>> = [0, 10, 59_999, 60_000, 60_001]
            .into_iter()
            .map(|t| f.record("198.51.100.7", t).log)
            .collect();
        assert_eq!(logged, [Some(1), None, None, Some(3), None]);
        assert_eq!(
            f.record("203.0.113.9", 60_002).log,
            Some(1),
            "another source"
        );
    }

    #[test]
    fn the_alert_fires_once_when_the_rate_is_passed_within_a_minute() {
        let f = AuthFailures::new(60);
        let alerts: Vec<i64> = (0..200)
            .filter_map(|i| f.record("198.51.100.7", i * 100).alert.map(|_| i))
            .collect();
        assert_eq!(
            alerts,
            [60],
            "the 61st within a minute, then quiet for a minute"
        );
        // Slow guessing never alerts.
        let slow = AuthFailures::new(60);
        assert!((0..200).all(|i| slow.record("198.51.100.7", i * 1_001).alert.is_none()));
        // A minute after the first alert, a burst that goes on alerts again.
        let reason = f.record("203.0.113.9", 6_000 + 60_000).alert;
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.contains("198.51.100.7") && r.contains("203.0.113.9 (1)")),
            "{reason:?}"
        );
    }

    #[test]
    fn sources_are_bounded() {
        let f = AuthFailures::new(0);
        for i in 0..(MAX_SOURCES as u32 + 500) {
            f.record(&std::net::Ipv4Addr::from(i).to_string(), 0);
        }
        let state = f.state.lock().expect("lock");
        assert!(state.sources.len() <= MAX_SOURCES + 1);
        assert!(state.sources.contains_key("other sources"));
    }
}
