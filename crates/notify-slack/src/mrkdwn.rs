//! Slack's `mrkdwn` text: escaping and length limits.
//!
//! Lengths are counted in UTF-16 code units, which is never less than Slack's own count
//! (characters), so a text measured within a limit here is within it at Slack too.

pub(crate) use esim_courier_core::summary::{escape_clipped as escape, utf16_units as units};

/// `raw` as inline code (`` `B123` ``), escaped and at most `max` units long. A text holding a
/// backtick cannot be code in mrkdwn, so it is shown escaped but unformatted.
pub(crate) fn code(raw: &str, max: usize) -> String {
    if raw.contains('`') || max < 3 {
        escape(raw, max)
    } else {
        format!("`{}`", escape(raw, max - 2))
    }
}

/// `raw` as a code block, escaped and at most `max` units long.
pub(crate) fn code_block(raw: &str, max: usize) -> String {
    if raw.contains("```") || max < 7 {
        escape(raw, max)
    } else {
        format!("```{}```", escape(raw, max - 6))
    }
}

/// A plain-text (not mrkdwn) string of at most `max` units, ending in `…` when cut. Slack
/// shows plain text as is, so nothing is escaped.
pub(crate) fn plain(raw: &str, max: usize) -> String {
    if units(raw) <= max {
        return raw.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in raw.chars() {
        if used + c.len_utf16() + 1 > max {
            break;
        }
        out.push(c);
        used += c.len_utf16();
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_the_three_control_characters() {
        assert_eq!(escape("a<b>&c", 100), "a&lt;b&gt;&amp;c");
    }

    #[test]
    fn cuts_within_the_limit_and_never_inside_an_escape() {
        let s = escape(&"&".repeat(100), 12);
        assert_eq!(s, "&amp;&amp;…");
        assert!(units(&s) <= 12);
        assert_eq!(escape("abcdef", 6), "abcdef");
        assert_eq!(escape("abcdefg", 6), "abcde…");
        assert_eq!(units(&escape(&"😀".repeat(10), 5)), 5);
        assert_eq!(plain("abcdefg", 4), "abc…");
        assert_eq!(plain("abc", 4), "abc");
    }

    #[test]
    fn code_never_breaks_on_backticks() {
        assert_eq!(code("B123", 10), "`B123`");
        assert_eq!(code("a`b", 10), "a`b");
        assert_eq!(code_block("esim-courier x", 100), "```esim-courier x```");
        assert!(units(&code_block(&"y".repeat(5000), 3000)) <= 3000);
    }
}
