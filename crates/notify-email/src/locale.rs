//! Choosing the locale of a customer's email.
//!
//! Shops send whatever their storefront knows: one tag (`zh-Hans-CN`, `en-GB`, `zh-TW`, `ja`)
//! or the browser's `Accept-Language` list, read in the customer's order of preference. For
//! each tag in turn, the most specific locale that exists wins: the full tag, then the tag
//! with its last subtag dropped, and so on; Chinese tags without a script pick one from the
//! region (Taiwan, Hong Kong and Macau write Traditional Chinese, everywhere else
//! Simplified); failing that, another region of the same language (`pt-PT` and `pt` read the
//! `pt-BR` email rather than an English one). Names match case-insensitively. When no tag
//! matches, the configured default locale is used.

/// The locale among `available` for the customer's `preferences` (best first), else the one
/// matching `default`.
pub(crate) fn resolve<'a>(
    preferences: &[&str],
    available: &'a [String],
    default: &str,
) -> Option<&'a str> {
    let find = |tag: &str| {
        available
            .iter()
            .find(|a| a.eq_ignore_ascii_case(tag))
            .map(String::as_str)
    };
    let same_language = |tag: &str| {
        let language = tag.split(['-', '_']).next().unwrap_or_default();
        available
            .iter()
            .find(|a| {
                a.split('-')
                    .next()
                    .is_some_and(|l| l.eq_ignore_ascii_case(language))
            })
            .map(String::as_str)
    };
    preferences
        .iter()
        .find_map(|tag| {
            candidates(tag)
                .iter()
                .find_map(|c| find(c))
                .or_else(|| same_language(tag))
        })
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
        crate::templates::ACTIVATION_LOCALES
            .iter()
            .map(|l| (*l).to_owned())
            .collect()
    }

    #[test]
    fn the_negotiation_table() {
        let available = available();
        let cases: &[(&[&str], &str)] = &[
            (&["en"], "en"),
            (&["en-GB"], "en"),
            (&["en-US"], "en"),
            (&["zh-TW"], "zh-Hant"),
            (&["zh-HK"], "zh-Hant"),
            (&["zh-MO"], "zh-Hant"),
            (&["zh-CN"], "zh-Hans"),
            (&["zh-SG"], "zh-Hans"),
            (&["zh"], "zh-Hans"),
            (&["zh-Hans-CN"], "zh-Hans"),
            (&["zh-Hant-TW"], "zh-Hant"),
            (&["zh-hant"], "zh-Hant"),
            (&["pt"], "pt-BR"),
            (&["pt-PT"], "pt-BR"),
            (&["pt-BR"], "pt-BR"),
            (&["es-MX"], "es"),
            (&["fr-CA"], "fr"),
            (&["de-AT"], "de"),
            (&["ar-EG"], "ar"),
            (&["ms-MY"], "ms"),
            (&["id-ID"], "id"),
            (&["ja-JP"], "ja"),
            (&["ko-KR"], "ko"),
            (&["th-TH"], "th"),
            (&["vi-VN"], "vi"),
            (&["tr-TR"], "tr"),
            (&["nl-NL"], "en"),
            (&["nl-NL", "de"], "de"),
            (&["pt-PT", "en"], "pt-BR"),
            (&[], "en"),
        ];
        for (preferences, want) in cases {
            assert_eq!(
                resolve(preferences, &available, "en"),
                Some(*want),
                "{preferences:?}"
            );
        }
        assert_eq!(resolve(&["nl"], &available, "ja"), Some("ja"));
        assert_eq!(resolve(&["nl"], &available, "xx"), None);
    }

    #[test]
    fn an_accept_language_value_is_read_in_its_order_of_preference() {
        let available = available();
        let locale =
            esim_courier_core::Locale::parse("nl-BE, fr-BE;q=0.8, en;q=0.5").expect("a list");
        assert_eq!(resolve(&locale.preferences(), &available, "en"), Some("fr"));
        let locale = esim_courier_core::Locale::parse("en;q=0.4, zh-TW").expect("a list");
        assert_eq!(
            resolve(&locale.preferences(), &available, "en"),
            Some("zh-Hant")
        );
    }
}
