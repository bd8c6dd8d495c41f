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

/// `9.99 SGD`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
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
}
