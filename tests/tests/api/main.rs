//! Black-box suites over HTTP against the running app. Every test runs on SQLite and on
//! PostgreSQL.

mod auth_failures;
mod batched_writes;
mod console;
mod dispatch;
mod errors;
mod exact_input;
mod hardening;
mod intake;
mod malformed;
mod outbox;
mod placements;
mod protection;
mod reconcile;
mod registration;
mod registration_race;
