//! The provider's rate limit for the whole deployment: one row (`provider_gate.next_at`)
//! that every process moves on by one interval per call, in one statement. Whoever moved it
//! may call at the time it moved it from, so calls are spaced by the interval whatever the
//! number of replicas. The interval is a tenth longer than 1/rate: calls that leave evenly
//! spaced reach the provider a little unevenly, and 11 must never land in one second.
//!
//! A turn can pass before its caller gets to use it: the statement that took it waited on
//! the disk (a durable commit, which on a shared VM has stalled for 0.1–0.6 s) or the
//! caller's runtime was busy. Going late would put its call closer than the interval to the
//! turns taken after it, which go on time; so a caller more than [`LATE_MS`] past its turn
//! takes the next one instead, up to [`TURNS`] times.

use std::num::NonZeroU32;
use std::time::Duration;

use esim_courier_core::{async_trait, CallGate};
use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// How far past its turn a call may still go.
const LATE_MS: i64 = 20;
/// The furthest ahead a turn can be, in intervals, when every caller waits its turn: a few
/// replicas' dispatchers all calling at once. Further ahead (at least a minute), the gate was
/// moved by a clock that ran ahead (a replica's, or one corrected since): taken as is, every
/// caller on every replica would sleep that long, holding its dispatcher's slots. It starts
/// again from now instead; at worst a burst the provider answers "busy" to, which is retried.
const MAX_AHEAD_TURNS: i64 = 256;
const MAX_AHEAD_MIN_MS: i64 = 60_000;
/// How many turns a caller takes before it goes late anyway (with a warning): the database
/// is that slow, and the provider's answer to a burst ("busy") is transient and retried.
const TURNS: u32 = 5;

/// Turns for provider calls, shared through the database. See the module's documentation.
#[derive(Debug, Clone)]
pub struct ProviderGate {
    store: Store,
    interval_ms: i64,
}

impl Store {
    /// The deployment-wide gate for `per_second` provider calls.
    pub fn provider_gate(&self, per_second: NonZeroU32) -> ProviderGate {
        ProviderGate {
            store: self.clone(),
            interval_ms: 1100 / i64::from(per_second.get()),
        }
    }

    /// Takes the next turn: the Unix ms at which this call may go (see [`MAX_AHEAD_TURNS`]
    /// for a turn too far ahead).
    async fn take_turn(&self, interval_ms: i64) -> Result<i64, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "UPDATE provider_gate SET next_at = CASE WHEN next_at > $1 + $3 THEN $1 ELSE MAX(next_at, $1) END + $2
                  WHERE id = 1 RETURNING next_at"
            }
            Backend::Postgres => {
                "UPDATE provider_gate SET next_at = CASE WHEN next_at > $1 + $3 THEN $1 ELSE GREATEST(next_at, $1) END + $2
                  WHERE id = 1 RETURNING next_at"
            }
        };
        let max_ahead = (interval_ms * MAX_AHEAD_TURNS).max(MAX_AHEAD_MIN_MS);
        let next_at: i64 = sqlx::query(sql)
            .bind(crate::now_ms())
            .bind(interval_ms)
            .bind(max_ahead)
            .fetch_one(&self.write)
            .await?
            .try_get("next_at")?;
        Ok(next_at - interval_ms)
    }
}

#[async_trait]
impl CallGate for ProviderGate {
    async fn turn(&self) {
        let mut late = 0;
        for _ in 0..TURNS {
            match self.store.take_turn(self.interval_ms).await {
                Ok(at) => {
                    let wait = u64::try_from(at - crate::now_ms()).unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    late = crate::now_ms() - at;
                    if late <= LATE_MS {
                        return;
                    }
                    tracing::debug!(
                        late_ms = late,
                        "a provider call's turn passed before it could go; taking the next one"
                    );
                }
                // The process's own limiter still spaces its calls; the provider's answer to a
                // burst (a "busy" code) is transient and retried.
                Err(e) => {
                    tracing::warn!(error = %e, "the shared provider rate limit could not be read; this process's own applies");
                    return;
                }
            }
        }
        tracing::warn!(late_ms = late, turns = TURNS, "every provider call turn passed before it could go (the database is slow); calling late");
    }
}
