//! The emails' colours, light and dark (`prefers-color-scheme`), given to the templates as
//! `palette.light.*` and `palette.dark.*`: written once, so the contrast test below checks
//! the colours the emails really use. The QR code keeps a white quiet zone in both schemes
//! (dark modules on light), or phones would not scan it.

use serde::Serialize;

/// One colour scheme.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Scheme {
    /// Behind the card.
    pub(crate) page: &'static str,
    /// The card the email sits on.
    pub(crate) card: &'static str,
    /// Body text and the main heading.
    pub(crate) text: &'static str,
    /// Labels and notes.
    pub(crate) muted: &'static str,
    /// The boxes holding codes and commands.
    pub(crate) panel: &'static str,
    /// A highlighted note (the confirmation code, an alert's reason).
    pub(crate) note: &'static str,
    /// Separator lines.
    pub(crate) rule: &'static str,
    /// Section headings and links in the dark scheme (the light one uses the brand colour).
    pub(crate) link: &'static str,
    /// Operators' alarm colour.
    pub(crate) alarm: &'static str,
}

/// Both schemes.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Palette {
    pub(crate) light: Scheme,
    pub(crate) dark: Scheme,
}

pub(crate) const PALETTE: Palette = Palette {
    light: Scheme {
        page: "#f2f4f7",
        card: "#ffffff",
        text: "#1f2933",
        muted: "#52606d",
        panel: "#f5f7fa",
        note: "#fff8e1",
        rule: "#e4e7eb",
        link: "#0b63ce",
        alarm: "#b42318",
    },
    dark: Scheme {
        page: "#0f1419",
        card: "#1b2330",
        text: "#e6e9ee",
        muted: "#aab4c0",
        panel: "#243042",
        note: "#3a3116",
        rule: "#33404f",
        link: "#8ab8ff",
        alarm: "#ff9b8f",
    },
};

/// The WCAG contrast ratio of two `#rrggbb` colours (1 to 21).
#[cfg(test)]
pub(crate) fn contrast(a: &str, b: &str) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

#[cfg(test)]
fn luminance(hex: &str) -> f64 {
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap_or(0)) / 255.0;
        if v <= 0.039_28 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_colour_reads_at_4_5_to_1_on_what_it_sits_on_in_both_schemes() {
        for (name, s) in [("light", PALETTE.light), ("dark", PALETTE.dark)] {
            let pairs = [
                ("text on card", s.text, s.card),
                ("text on panel", s.text, s.panel),
                ("text on note", s.text, s.note),
                ("muted on card", s.muted, s.card),
                ("muted on panel", s.muted, s.panel),
                ("link on card", s.link, s.card),
                ("alarm on card", s.alarm, s.card),
            ];
            for (what, fg, bg) in pairs {
                let ratio = contrast(fg, bg);
                assert!(ratio >= 4.5, "{name}: {what} is {ratio:.2}:1");
            }
        }
        // The default brand colour: headings on white, white button text on it.
        assert!(contrast("#0b63ce", PALETTE.light.card) >= 4.5);
        assert!(contrast("#ffffff", "#0b63ce") >= 4.5);
    }

    #[test]
    fn the_contrast_formula_matches_known_values() {
        assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        assert!((contrast("#777777", "#ffffff") - 4.48).abs() < 0.01);
    }
}
