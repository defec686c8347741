//! Currencies and amounts. Amounts are integers in the currency's minor unit; the decimal
//! strings of the API are parsed here and nowhere else, so no float ever touches money.

use std::fmt;

use rust_decimal::Decimal;

/// ISO 4217 currencies the ledger accepts, with their minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Currency {
    /// Vietnamese đồng: no minor unit, 1 đồng = 1.
    Vnd,
    Usd,
    Eur,
}

impl Currency {
    pub const ALL: [Currency; 3] = [Currency::Vnd, Currency::Usd, Currency::Eur];

    pub fn code(self) -> &'static str {
        match self {
            Currency::Vnd => "VND",
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
        }
    }

    /// Number of decimal places of the minor unit.
    pub fn exponent(self) -> u32 {
        match self {
            Currency::Vnd => 0,
            Currency::Usd | Currency::Eur => 2,
        }
    }

    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code() == code)
            .ok_or_else(|| UnknownCurrency(code.to_owned()))
    }

    /// Renders minor units as the decimal string the API speaks ("50000", "12.30").
    pub fn format_minor(self, minor: i64) -> String {
        Decimal::new(minor, self.exponent()).to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency {0:?}; supported: VND, USD, EUR")]
pub struct UnknownCurrency(pub String);

/// Largest amount one posting may carry. Keeps any realistic sum of postings far from i64
/// overflow while allowing 13-digit VietQR amounts.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;

/// A strictly positive amount in minor units. Cannot be built zero, negative or too large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {0:?} is not a decimal number")]
    NotANumber(String),
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount {amount:?} has more decimal places than {currency} allows ({allowed})")]
    TooPrecise {
        amount: String,
        currency: Currency,
        allowed: u32,
    },
    #[error("amount is larger than the maximum a posting may carry")]
    TooLarge,
}

impl AmountError {
    /// Stable, machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            AmountError::NotANumber(_) => "AMOUNT_INVALID",
            AmountError::NotPositive => "AMOUNT_NOT_POSITIVE",
            AmountError::TooPrecise { .. } => "AMOUNT_TOO_PRECISE",
            AmountError::TooLarge => "AMOUNT_TOO_LARGE",
        }
    }
}

impl Amount {
    /// Parses the API's decimal string for the given currency.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, AmountError> {
        let trimmed = text.trim();
        if !is_plain_decimal(trimmed) {
            return Err(AmountError::NotANumber(text.to_owned()));
        }
        // Syntax was checked above, so parsing fails only on magnitude or on more digits than
        // a Decimal holds (which `from_str` would silently round away).
        // Trailing fraction zeros carry no value but count against the Decimal's digits.
        let significant = if trimmed.contains('.') {
            trimmed.trim_end_matches('0').trim_end_matches('.')
        } else {
            trimmed
        };
        let value = Decimal::from_str_exact(significant).map_err(|_| {
            let fraction = trimmed.split_once('.').map_or("", |(_, f)| f);
            if fraction.trim_end_matches('0').len() > currency.exponent() as usize {
                AmountError::TooPrecise {
                    amount: text.to_owned(),
                    currency,
                    allowed: currency.exponent(),
                }
            } else {
                AmountError::TooLarge
            }
        })?;
        if value <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        let normalized = value.normalize();
        if normalized.scale() > currency.exponent() {
            return Err(AmountError::TooPrecise {
                amount: text.to_owned(),
                currency,
                allowed: currency.exponent(),
            });
        }
        let minor = normalized
            .checked_mul(Decimal::from(10i64.pow(currency.exponent())))
            .ok_or(AmountError::TooLarge)?;
        let minor = i64::try_from(minor).map_err(|_| AmountError::TooLarge)?;
        Self::from_minor(minor)
    }

    pub fn from_minor(minor: i64) -> Result<Self, AmountError> {
        if minor <= 0 {
            Err(AmountError::NotPositive)
        } else if minor > MAX_AMOUNT_MINOR {
            Err(AmountError::TooLarge)
        } else {
            Ok(Self(minor))
        }
    }

    pub fn minor(self) -> i64 {
        self.0
    }
}

/// An optional sign, digits, and at most one decimal point with digits on some side.
fn is_plain_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_beyond_decimal_precision_are_refused_not_rounded() {
        let long_fraction = format!("1.{}1", "0".repeat(30));
        assert!(matches!(
            Amount::parse(&long_fraction, Currency::Vnd),
            Err(AmountError::TooPrecise { .. })
        ));
        assert_eq!(
            Amount::parse(&"9".repeat(40), Currency::Vnd),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Amount::parse(&format!("7.{}", "0".repeat(40)), Currency::Vnd)
                .unwrap()
                .minor(),
            7
        );
    }

    #[test]
    fn parses_whole_dong() {
        assert_eq!(
            Amount::parse("50000", Currency::Vnd).unwrap().minor(),
            50_000
        );
        assert_eq!(
            Amount::parse("50000.00", Currency::Vnd).unwrap().minor(),
            50_000
        );
    }

    #[test]
    fn parses_cents() {
        assert_eq!(Amount::parse("12.3", Currency::Usd).unwrap().minor(), 1_230);
        assert_eq!(Amount::parse("0.01", Currency::Usd).unwrap().minor(), 1);
    }

    #[test]
    fn rejects_bad_amounts() {
        assert_eq!(
            Amount::parse("0", Currency::Vnd),
            Err(AmountError::NotPositive)
        );
        assert_eq!(
            Amount::parse("-5", Currency::Vnd),
            Err(AmountError::NotPositive)
        );
        assert!(matches!(
            Amount::parse("1.5", Currency::Vnd),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            Amount::parse("0.001", Currency::Usd),
            Err(AmountError::TooPrecise { .. })
        ));
        assert_eq!(
            Amount::parse("99999999999999999999999", Currency::Vnd),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Amount::parse("79228162514264337593543950336", Currency::Vnd),
            Err(AmountError::TooLarge)
        );
        assert!(matches!(
            Amount::parse("1e5", Currency::Vnd),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            Amount::parse("", Currency::Vnd),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            Amount::parse("12abc", Currency::Vnd),
            Err(AmountError::NotANumber(_))
        ));
    }

    #[test]
    fn formats_minor_units() {
        assert_eq!(Currency::Vnd.format_minor(50_000), "50000");
        assert_eq!(Currency::Usd.format_minor(1_230), "12.30");
        assert_eq!(Currency::Usd.format_minor(-5), "-0.05");
    }
}
