//! Choosing the locale folder for a customer.
//!
//! Shops send whatever their storefront knows: `zh-Hans-CN`, `en-GB`, `zh-TW`, `ja`. The most
//! specific folder that exists wins: the full tag, then the tag with its last subtag dropped,
//! and so on. Chinese tags without a script pick one from the region (Taiwan, Hong Kong and
//! Macau write Traditional Chinese, everywhere else Simplified). Folder names match
//! case-insensitively. When nothing matches, the configured default locale is used.

/// The folder among `available` for `requested`, else the one matching `default`.
pub(crate) fn resolve<'a>(
    requested: Option<&str>,
    available: &'a [String],
    default: &str,
) -> Option<&'a str> {
    let find = |tag: &str| {
        available
            .iter()
            .find(|a| a.eq_ignore_ascii_case(tag))
            .map(String::as_str)
    };
    requested
        .into_iter()
        .flat_map(candidates)
        .find_map(|tag| find(&tag))
        .or_else(|| find(default))
}

/// The tags to try for `tag`, most specific first.
fn candidates(tag: &str) -> Vec<String> {
    let parts: Vec<&str> = tag.split(['-', '_']).filter(|p| !p.is_empty()).collect();
    let mut out: Vec<String> = (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("-"))
        .collect();
    if let Some(script) = chinese_script(&parts) {
        // Before the bare language: `zh-TW` means Traditional, not whatever `zh` holds.
        let at = out.len().saturating_sub(1);
        out.insert(at, format!("zh-{script}"));
    }
    out
}

/// The script a Chinese tag without one implies.
fn chinese_script(parts: &[&str]) -> Option<&'static str> {
    let (language, rest) = parts.split_first()?;
    if !language.eq_ignore_ascii_case("zh") {
        return None;
    }
    let has_script = rest
        .iter()
        .any(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_alphabetic()));
    if has_script {
        return None;
    }
    let traditional = rest
        .iter()
        .any(|p| ["TW", "HK", "MO"].iter().any(|r| p.eq_ignore_ascii_case(r)));
    Some(if traditional { "Hant" } else { "Hans" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn available() -> Vec<String> {
        ["en", "ja", "ms", "zh-Hans", "zh-Hant"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn the_most_specific_existing_folder_wins_else_the_default() {
        let available = available();
        let cases = [
            (Some("en"), "en"),
            (Some("en-GB"), "en"),
            (Some("zh-Hans-CN"), "zh-Hans"),
            (Some("zh-Hant-TW"), "zh-Hant"),
            (Some("zh-hant"), "zh-Hant"),
            (Some("zh-TW"), "zh-Hant"),
            (Some("zh-HK"), "zh-Hant"),
            (Some("zh-CN"), "zh-Hans"),
            (Some("zh-SG"), "zh-Hans"),
            (Some("zh"), "zh-Hans"),
            (Some("ms-MY"), "ms"),
            (Some("ja-JP"), "ja"),
            (Some("fr-FR"), "en"),
            (Some("de"), "en"),
            (None, "en"),
        ];
        for (requested, want) in cases {
            assert_eq!(
                resolve(requested, &available, "en"),
                Some(want),
                "{requested:?}"
            );
        }
        assert_eq!(resolve(Some("fr"), &available, "ja"), Some("ja"));
        assert_eq!(resolve(Some("fr"), &available, "pt"), None);
    }
}
