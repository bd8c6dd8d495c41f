//! The `esim-courier` binary as operators run it: separate processes, signals, kill -9,
//! two replicas on one PostgreSQL database.

mod harness;

mod cli;
mod console;
mod crash_recovery;
mod email;
mod faults;
mod grouping;
mod ops;
mod placement;
mod protection;
mod reconcile;
mod replicas;
