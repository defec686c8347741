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
    #[error("amount {0:?} must be digits only, with no sign, spaces or leading zeros, and a fraction only where the currency has minor units (e.g. \"150000\")")]
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
    /// Parses the API's amount string for the given currency. The string is strict: digits
    /// only, no sign, no surrounding whitespace, no leading zeros ("0" alone before a
    /// fraction), no trailing dot, and a fraction only where the currency has minor units, at
    /// most as many digits as it has ("12.50" USD; "5.0" is not a VND amount). A minus sign
    /// before an otherwise well-formed amount is refused as not positive, which says why.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, AmountError> {
        if text.strip_prefix('-').is_some_and(is_canonical) {
            return Err(AmountError::NotPositive);
        }
        if !is_canonical(text) {
            return Err(AmountError::NotANumber(text.to_owned()));
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let exponent = currency.exponent();
        if fraction.len() > exponent as usize {
            return Err(AmountError::TooPrecise {
                amount: text.to_owned(),
                currency,
                allowed: exponent,
            });
        }
        // Both parts are ASCII digits, so parsing fails only on magnitude.
        let padded = format!("{fraction:0<width$}", width = exponent as usize);
        let minor = whole
            .parse::<i64>()
            .ok()
            .and_then(|whole| whole.checked_mul(10i64.pow(exponent)))
            .and_then(|whole| whole.checked_add(padded.parse::<i64>().unwrap_or(0)))
            .ok_or(AmountError::TooLarge)?;
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

/// Digits without a leading zero (except "0" itself), then optionally a dot and at least one
/// digit: "150000", "0.01", "12.5"; not "+5", " 5", "05", "5.", ".5" or "1e5".
fn is_canonical(text: &str) -> bool {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && (whole == "0" || !whole.starts_with('0')) && fraction.is_none_or(digits)
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
        assert!(matches!(
            Amount::parse(&format!("7.{}", "0".repeat(40)), Currency::Vnd),
            Err(AmountError::TooPrecise { .. })
        ));
    }

    #[test]
    fn parses_whole_dong() {
        assert_eq!(
            Amount::parse("50000", Currency::Vnd).unwrap().minor(),
            50_000
        );
    }

    #[test]
    fn amount_strings_are_strict() {
        for text in [
            "+5", " 5", "5 ", "05", "00", "5.", ".5", "1e5", "1_000", "1,000", "5.0.0",
        ] {
            assert_eq!(
                Amount::parse(text, Currency::Usd),
                Err(AmountError::NotANumber(text.to_owned())),
                "{text:?}"
            );
        }
        // VND has no minor unit: any fraction is one place too many, even a zero one.
        for text in ["5.0", "50000.00"] {
            assert!(
                matches!(
                    Amount::parse(text, Currency::Vnd),
                    Err(AmountError::TooPrecise { .. })
                ),
                "{text:?}"
            );
        }
        assert_eq!(
            Amount::parse("-5", Currency::Vnd),
            Err(AmountError::NotPositive)
        );
        assert_eq!(Amount::parse("0.50", Currency::Usd).unwrap().minor(), 50);
        assert_eq!(Amount::parse("10.5", Currency::Usd).unwrap().minor(), 1_050);
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
