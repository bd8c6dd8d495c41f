//! Slack's `mrkdwn` text: escaping and length limits.
//!
//! Lengths are counted in UTF-16 code units, which is never less than Slack's own count
//! (characters), so a text measured within a limit here is within it at Slack too.

/// The length of `s` as limits are checked here.
pub(crate) fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `raw` with `&`, `<` and `>` escaped (Slack would otherwise read `<...>` as a link or a
/// mention), at most `max` units long, ending in `…` when cut. Never cuts inside an escape.
pub(crate) fn escape(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max));
    let mut used = 0;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => "",
        };
        let width = if piece.is_empty() {
            c.len_utf16()
        } else {
            piece.len()
        };
        // Keep one unit for the ellipsis unless this is the last character.
        let reserve = usize::from(chars.peek().is_some());
        if used + width + reserve > max {
            if used < max {
                out.push('…');
            }
            return out;
        }
        if piece.is_empty() {
            out.push(c);
        } else {
            out.push_str(piece);
        }
        used += width;
    }
    out
}

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
