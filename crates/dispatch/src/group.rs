//! Grouping of operator notifications: what one notifier receives within its window goes out
//! as one digest, so a provider outage that fails 300 orders makes a handful of messages, not
//! 300.
//!
//! The first notification after a quiet period goes out at once (operators learn within
//! seconds) and opens a window; everything that arrives for that notifier while the window is
//! open is deferred to its end and sent there as one digest, which opens the next window.

use std::collections::HashSet;

use esim_courier_core::{Content, Notification};
use esim_courier_store::{duration_ms, now_ms, ClaimedJob};
use tokio_util::sync::CancellationToken;

use crate::{Dispatcher, Registered};

/// The most notifications one digest takes; the rest wait for the next window.
const MAX_DIGEST: i64 = 1000;

impl Dispatcher {
    /// Delivers the claimed jobs of one grouping notifier.
    #[tracing::instrument(skip_all, fields(notifier = %notifier, claimed = jobs.len()))]
    pub(crate) async fn process_group(
        &self,
        notifier: String,
        mut jobs: Vec<ClaimedJob>,
        shutdown: &CancellationToken,
    ) {
        if shutdown.is_cancelled() {
            for job in &jobs {
                self.release(job).await;
            }
            return;
        }
        let Some(registered) = self.notifiers.get(&notifier) else {
            for job in jobs {
                self.process(job, shutdown).await;
            }
            return;
        };
        let Some(window) = registered.group_window else {
            for job in jobs {
                self.process(job, shutdown).await;
            }
            return;
        };
        let now = now_ms();
        let open_until = self.window_until(&notifier);
        if let Some(until) = open_until.filter(|u| *u > now) {
            for job in &jobs {
                let deferred = self.store.job_defer(job, until).await;
                self.check_written(deferred);
            }
            tracing::debug!(until, "grouping window open: deferred to its end");
            return;
        }
        self.open_window(&notifier, now + duration_ms(window));
        // Gather everything else already due for this notifier into the same message.
        let lease_ms = duration_ms(self.config.lease);
        let room = MAX_DIGEST - i64::try_from(jobs.len()).unwrap_or(MAX_DIGEST);
        if room > 0 {
            match self
                .store
                .claim_for_notifier(&notifier, &self.config.worker_id, lease_ms, room)
                .await
            {
                Ok(more) => jobs.extend(more),
                Err(e) => {
                    tracing::warn!(error = %e, "gathering the window's other jobs failed; sending what was claimed")
                }
            }
        }
        let mut prepared: Vec<(ClaimedJob, Notification)> = Vec::with_capacity(jobs.len());
        for mut job in jobs {
            if let Some((_, n)) = self.prepare(&mut job).await {
                prepared.push((job, n));
            }
        }
        match prepared.len() {
            0 => {}
            1 => {
                let Some((job, notification)) = prepared.pop() else {
                    return;
                };
                self.deliver(registered, &[job], &notification, shutdown)
                    .await;
            }
            n => {
                let (jobs, items): (Vec<ClaimedJob>, Vec<Notification>) =
                    prepared.into_iter().unzip();
                let digest = Notification {
                    key: format!(
                        "digest:{notifier}:{}",
                        jobs.iter().map(|j| j.id).min().unwrap_or_default()
                    ),
                    content: Content::Digest(distinct(items)),
                };
                tracing::info!(notifications = n, "sending a digest");
                self.deliver(registered, &jobs, &digest, shutdown).await;
            }
        }
    }

    /// One call for all `jobs`, and the same outcome recorded for each.
    async fn deliver(
        &self,
        registered: &Registered,
        jobs: &[ClaimedJob],
        notification: &Notification,
        shutdown: &CancellationToken,
    ) {
        let started_at = now_ms();
        match self.call(registered, notification, jobs, shutdown).await {
            Some(outcome) => {
                for job in jobs {
                    self.settle(job, &registered.policy, started_at, None, &outcome)
                        .await;
                }
            }
            None => {
                for job in jobs {
                    self.release(job).await;
                }
            }
        }
    }

    fn window_until(&self, notifier: &str) -> Option<i64> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(notifier)
            .copied()
    }

    fn open_window(&self, notifier: &str, until: i64) {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(notifier.to_owned(), until);
    }
}

/// Drops repeats: the same alert (kind, order, reason) or the same failed order, once each.
fn distinct(items: Vec<Notification>) -> Vec<Notification> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|n| {
            let identity = match &n.content {
                Content::Alert(a) => format!(
                    "alert|{}|{}|{}",
                    a.kind,
                    a.order_no.as_deref().unwrap_or(""),
                    a.reason
                ),
                Content::OrderFailed(o) => format!("failed|{}", o.order_no),
                Content::OrderCompleted(o) => format!("completed|{}|{}", o.order_no, o.iccid),
                Content::Digest(_) => n.key.clone(),
            };
            seen.insert(identity)
        })
        .collect()
}
