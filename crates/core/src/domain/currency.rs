use std::collections::BTreeMap;
use std::fmt;

/// A currency as the provider names it: by its numeric code (`"4"` = SGD) or by ISO 4217 code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Currency {
    /// A known ISO 4217 alphabetic code, e.g. `USD`.
    Iso(String),
    /// A code the currency table does not know: kept as received, shown as is.
    Unknown(String),
}

impl Currency {
    /// How many decimals its amounts are written with (ISO 4217's minor units): 0 for the yen
    /// or the won, 3 for the dinars of Bahrain, Kuwait and their neighbours, 2 for most;
    /// `None` for a code the table does not know.
    pub fn minor_units(&self) -> Option<u32> {
        let Self::Iso(code) = self else {
            return None;
        };
        Some(match code.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            "CLF" | "UYW" => 4,
            _ => 2,
        })
    }

    /// The ISO code if known, else the code as received.
    pub fn code(&self) -> &str {
        match self {
            Self::Iso(c) | Self::Unknown(c) => c,
        }
    }

    /// A currency from the code [`Currency::code`] gave (as stored): a three-letter code is
    /// ISO, anything else stays unknown.
    pub fn from_code(code: &str) -> Self {
        let code = code.trim();
        if is_iso_code(code) {
            Self::Iso(code.to_ascii_uppercase())
        } else {
            Self::Unknown(code.to_owned())
        }
    }

    /// Whether the code was understood.
    pub fn is_known(&self) -> bool {
        matches!(self, Self::Iso(_))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Maps the provider's numeric currency codes to ISO codes. Starts with the codes of the
/// provider's specification (1 = CNY, 2 = USD, 3 = EUR, 4 = SGD, 5 = TWD) and takes more from
/// configuration, since the provider says more may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyTable {
    codes: BTreeMap<String, String>,
}

impl Default for CurrencyTable {
    fn default() -> Self {
        let codes = [
            ("1", "CNY"),
            ("2", "USD"),
            ("3", "EUR"),
            ("4", "SGD"),
            ("5", "TWD"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self { codes }
    }
}

impl CurrencyTable {
    /// The provider's table plus `extra` (numeric code to ISO code); `extra` wins on a clash.
    /// Fails naming the first entry whose ISO code is not three letters.
    pub fn with_extra<'a>(
        extra: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut table = Self::default();
        for (code, iso) in extra {
            if !is_iso_code(iso.trim()) {
                return Err(format!(
                    "currency code {code:?} maps to {iso:?}, which is not a three-letter ISO 4217 code"
                ));
            }
            table
                .codes
                .insert(code.trim().to_owned(), iso.trim().to_ascii_uppercase());
        }
        Ok(table)
    }

    /// Parses a currency code: a numeric code from the table, or a three-letter ISO code in
    /// any case. Anything else is kept as [`Currency::Unknown`].
    pub fn parse(&self, raw: &str) -> Currency {
        let s = raw.trim();
        if let Some(iso) = self.codes.get(s) {
            return Currency::Iso(iso.clone());
        }
        if is_iso_code(s) {
            return Currency::Iso(s.to_ascii_uppercase());
        }
        Currency::Unknown(s.to_owned())
    }
}

fn is_iso_code(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_table() {
        let table = CurrencyTable::with_extra([("6", "jpy")]).expect("valid extra");
        let cases = [
            ("1", Currency::Iso("CNY".into())),
            ("2", Currency::Iso("USD".into())),
            ("3", Currency::Iso("EUR".into())),
            ("4", Currency::Iso("SGD".into())),
            ("5", Currency::Iso("TWD".into())),
            ("6", Currency::Iso("JPY".into())),
            ("usd", Currency::Iso("USD".into())),
            (" EUR ", Currency::Iso("EUR".into())),
            ("99", Currency::Unknown("99".into())),
            ("", Currency::Unknown("".into())),
            ("DOLLARS", Currency::Unknown("DOLLARS".into())),
        ];
        for (input, want) in cases {
            assert_eq!(table.parse(input), want, "{input:?}");
        }
        assert!(CurrencyTable::with_extra([("7", "yen!")]).is_err());
    }
}
