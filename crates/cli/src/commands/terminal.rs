//! Stored provider and customer data as a terminal shows it.
//!
//! A package name, an order number or a customer's name comes from outside. Printed raw, an
//! ESC or BEL in it could clear the operator's screen, set the window title or draw a fake
//! OSC-8 link, a CR could overwrite the line, and a bidirectional override could reorder what
//! the operator reads. Every command that prints stored data escapes those characters
//! visibly instead (`\u{1b}`); the JSON output escapes them as JSON does (`\u001b`), so it
//! still parses to the exact stored text.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: control characters (C0, DEL, C1) and the
/// bidirectional formatting characters (marks, embeddings, overrides, isolates).
fn unsafe_for_terminals(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every character unsafe for terminals written as `\u{…}`.
pub fn printable(s: &str) -> Cow<'_, str> {
    escape(s, |c| format!("\\u{{{:x}}}", u32::from(c)))
}

/// Serialised JSON with every character unsafe for terminals written as a JSON escape
/// (`\u001b`). serde_json already escapes C0 controls inside strings; this also covers DEL,
/// C1 and the bidirectional characters, which JSON allows raw. Outside strings JSON has only
/// whitespace, which `pretty` layout needs: newlines there are kept.
pub fn printable_json(json: &str) -> Cow<'_, str> {
    let mut in_string = false;
    let mut escaped = false;
    let mut out: Option<String> = None;
    for (i, c) in json.char_indices() {
        let replace = in_string && unsafe_for_terminals(c);
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        }
        match (&mut out, replace) {
            (Some(o), true) => o.push_str(&format!("\\u{:04x}", u32::from(c))),
            (Some(o), false) => o.push(c),
            (None, true) => {
                let mut o = json[..i].to_owned();
                o.push_str(&format!("\\u{:04x}", u32::from(c)));
                out = Some(o);
            }
            (None, false) => {}
        }
    }
    out.map_or(Cow::Borrowed(json), Cow::Owned)
}

fn escape(s: &str, write: impl Fn(char) -> String) -> Cow<'_, str> {
    if !s.chars().any(unsafe_for_terminals) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if unsafe_for_terminals(c) {
                    write(c)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "Japan\u{1b}]0;owned\u{7}\r\u{1b}[2J\u{202e}txt.exe\u{85}\u{7f}";

    #[test]
    fn text_shows_every_unsafe_character_as_a_visible_escape() {
        let shown = printable(HOSTILE);
        assert_eq!(
            shown,
            "Japan\\u{1b}]0;owned\\u{7}\\u{d}\\u{1b}[2J\\u{202e}txt.exe\\u{85}\\u{7f}"
        );
        assert!(!shown.chars().any(unsafe_for_terminals));
        assert!(matches!(
            printable("Malaysia, 1 Day, 1GB"),
            Cow::Borrowed(_)
        ));
        assert_eq!(printable("東京 ✓ café"), "東京 ✓ café");
    }

    #[test]
    fn json_stays_json_of_the_exact_text_with_nothing_unsafe_left() {
        let value = serde_json::json!({"packageName": HOSTILE, "note": "a \"quoted\" \\ \u{202e}"});
        let pretty = serde_json::to_string_pretty(&value).expect("serialises");
        let shown = printable_json(&pretty);
        assert!(
            !shown.chars().any(|c| c != '\n' && unsafe_for_terminals(c)),
            "{shown}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).expect("still JSON");
        assert_eq!(back, value, "the exact stored text");
    }
}
