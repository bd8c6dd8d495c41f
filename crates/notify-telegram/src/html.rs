//! Telegram's HTML parse mode: escaping and length limits.
//!
//! Lengths are counted in UTF-16 code units over the whole HTML, tags included. Telegram
//! counts the text after parsing (tags and escapes excluded), in the same units, so a text
//! measured within a limit here is within it at Telegram too.

pub(crate) use esim_courier_core::summary::{escape_clipped as escape, utf16_units as units};

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
