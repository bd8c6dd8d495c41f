use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::Currency;

/// An amount of money: a decimal (never a float) and its currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Parses an amount such as `9.99`. Fails on anything that is not a plain decimal number
    /// or is negative.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, String> {
        let text = amount.trim();
        let amount = Decimal::from_str(text)
            .or_else(|_| Decimal::from_scientific(text))
            .map_err(|_| format!("price {text:?} is not a decimal number"))?;
        if amount.is_sign_negative() {
            return Err(format!("price {text:?} is negative"));
        }
        Ok(Self { amount, currency })
    }

    /// The amount.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }
}

/// `9.99 SGD`: the amount with its currency's decimals, as a price is written (`14.9 USD`
/// shows as `14.90 USD`, `1500.00 JPY` as `1500 JPY`). Digits beyond them are shown, never
/// rounded away: the amount is what the shop or the provider said. A currency the table
/// does not know shows its amount as given.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut amount = self.amount;
        if let Some(units) = self.currency.minor_units() {
            let shortest = amount.normalize();
            if shortest.scale() <= units {
                amount = shortest;
                amount.rescale(units);
            }
        }
        write!(f, "{amount} {}", self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_decimals() {
        let usd = Currency::Iso("USD".into());
        let m = Money::parse("9.99", usd.clone()).expect("decimal");
        assert_eq!(m.amount(), Decimal::new(999, 2));
        assert_eq!(m.to_string(), "9.99 USD");
        // 0.1 + 0.2 is exact in decimal.
        let a = Money::parse("0.1", usd.clone()).expect("decimal").amount();
        let b = Money::parse("0.2", usd.clone()).expect("decimal").amount();
        assert_eq!(a + b, Decimal::new(3, 1));
        assert!(Money::parse("nine", usd.clone()).is_err());
        assert!(Money::parse("-1", usd.clone()).is_err());
        assert!(Money::parse("", usd).is_err());
    }

    #[test]
    fn a_price_is_shown_with_its_currencys_decimals_and_never_rounded() {
        let shown = |amount: &str, code: &str| {
            Money::parse(amount, Currency::from_code(code))
                .expect("decimal")
                .to_string()
        };
        assert_eq!(shown("14.9", "USD"), "14.90 USD");
        assert_eq!(shown("15", "EUR"), "15.00 EUR");
        assert_eq!(shown("1e3", "USD"), "1000.00 USD");
        assert_eq!(shown("1500.00", "JPY"), "1500 JPY");
        assert_eq!(shown("0.5", "KWD"), "0.500 KWD");
        assert_eq!(shown("14.999", "USD"), "14.999 USD");
        assert_eq!(shown("1500.5", "JPY"), "1500.5 JPY");
        assert_eq!(shown("9.9", "9"), "9.9 9", "an unknown code: as given");
        assert_eq!(shown("0", "USD"), "0.00 USD");
    }
}
