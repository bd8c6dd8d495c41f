//! The console's pages, in maud: escaped by default, checked when the crate compiles, one
//! small inline-free stylesheet-less layout readable on a phone and a desktop.

use esim_courier_store::{ConsoleSession, JobState};
use maud::{html, Markup, DOCTYPE};

fn layout(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · esim-courier" }
            }
            body {
                main { (body) }
            }
        }
    }
    .into_string()
}

/// The login form, with `error` above it after a failed attempt.
pub(crate) fn login(csrf_token: &str, error: Option<&str>) -> String {
    layout(
        "Log in",
        html! {
            h1 { "esim-courier console" }
            @if let Some(error) = error {
                p role="alert" { strong { (error) } }
            }
            form method="post" action="/admin/login" {
                input type="hidden" name="csrf_token" value=(csrf_token);
                p {
                    label for="username" { "User name" } br;
                    input id="username" name="username" autocomplete="username" required;
                }
                p {
                    label for="password" { "Password" } br;
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                }
                p { button type="submit" { "Log in" } }
            }
        },
    )
}

/// The overview: who is logged in, and the outbox by state.
pub(crate) fn overview(session: &ConsoleSession, counts: &[(JobState, i64)]) -> String {
    let count = |state: JobState| {
        counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    };
    layout(
        "Overview",
        html! {
            header {
                p {
                    "Logged in as " strong { (session.user) } " (" (session.role) ")"
                }
                form method="post" action="/admin/logout" {
                    input type="hidden" name="csrf_token" value=(session.csrf_token);
                    button type="submit" { "Log out" }
                }
            }
            h1 { "Overview" }
            h2 { "Outbox" }
            table {
                thead { tr { th { "State" } th { "Jobs" } } }
                tbody {
                    @for state in JobState::ALL {
                        tr { td { (state) } td { (count(state)) } }
                    }
                }
            }
            @if count(JobState::Dead) > 0 {
                p { strong { (count(JobState::Dead)) " dead letters" } ": " code { "esim-courier dead-letters list" } }
            }
        },
    )
}
