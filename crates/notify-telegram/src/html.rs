//! Telegram's HTML parse mode: escaping and length limits.
//!
//! Lengths are counted in UTF-16 code units over the whole HTML, tags included. Telegram
//! counts the text after parsing (tags and escapes excluded), in the same units, so a text
//! measured within a limit here is within it at Telegram too.

/// The length of `s` as limits are checked here.
pub(crate) fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `raw` with `&`, `<` and `>` escaped, at most `max` units long, ending in `…` when cut.
/// Never cuts inside an escape.
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

/// `<tag>raw</tag>`, escaped, at most `max` units long in all.
pub(crate) fn tagged(tag: &str, raw: &str, max: usize) -> String {
    let room = max.saturating_sub(2 * tag.len() + 5);
    format!("<{tag}>{}</{tag}>", escape(raw, room))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_cuts_within_the_limit() {
        assert_eq!(escape("<b>&</b>", 100), "&lt;b&gt;&amp;&lt;/b&gt;");
        let s = escape(&"<".repeat(100), 10);
        assert_eq!(s, "&lt;&lt;…");
        assert_eq!(escape("abcdefg", 6), "abcde…");
        assert_eq!(tagged("code", "B1", 100), "<code>B1</code>");
        assert!(units(&tagged("pre", &"x".repeat(500), 100)) <= 100);
        assert_eq!(units(&escape(&"😀".repeat(10), 5)), 5);
    }
}
