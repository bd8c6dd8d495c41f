//! The migrations are embedded at compile time (`sqlx::migrate!` in lib.rs): without this, a
//! migration added or changed would not reach the binary until the crate's code changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
