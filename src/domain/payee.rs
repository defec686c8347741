//! Payees (market vendors, schools, cooperatives) and the bank accounts they collect into.
//!
//! A payee's code is printed on its sticker and is the purpose text of its static VietQR
//! code, so a transfer made from the sticker names the payee it is for. It is also the tail of
//! the payee's ledger account code (`payee:<CODE>`).

use rand::Rng;
use uuid::Uuid;

use super::banks::{find_bank, Bank};
use super::reference::{PaymentReference, ALPHABET};
use super::text::HolderName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayeeKind {
    Vendor,
    School,
    Cooperative,
}

impl PayeeKind {
    pub const ALL: [PayeeKind; 3] = [PayeeKind::Vendor, PayeeKind::School, PayeeKind::Cooperative];

    pub fn as_str(self) -> &'static str {
        match self {
            PayeeKind::Vendor => "vendor",
            PayeeKind::School => "school",
            PayeeKind::Cooperative => "cooperative",
        }
    }

    pub fn parse(text: &str) -> Result<Self, PayeeFieldError> {
        PayeeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| PayeeFieldError::Kind(text.to_owned()))
    }

    /// First letter of generated codes, so a code says what kind of payee it names.
    fn code_prefix(self) -> char {
        match self {
            PayeeKind::Vendor => 'V',
            PayeeKind::School => 'S',
            PayeeKind::Cooperative => 'C',
        }
    }
}

/// Every way a payee field can be refused; [`PayeeFieldError::code`] gives the API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayeeFieldError {
    #[error("payee kind {0:?} is not one of vendor, school, cooperative")]
    Kind(String),
    #[error("payee code {found:?} is invalid: {rule}")]
    Code { found: String, rule: &'static str },
    #[error("{field} must be 1 to {max} characters")]
    Text { field: &'static str, max: usize },
    #[error("phone {0:?} is not a phone number (digits, optionally a leading +, 9 to 15 digits)")]
    Phone(String),
    #[error("bank BIN {0:?} is not in the bundled NAPAS bank list (see GET /v1/banks)")]
    UnknownBank(String),
    #[error("account number {found:?} is invalid: {rule}")]
    AccountNumber { found: String, rule: &'static str },
}

impl PayeeFieldError {
    /// Stable, machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            PayeeFieldError::Kind(_) => "INVALID_PAYEE_KIND",
            PayeeFieldError::Code { .. } => "INVALID_PAYEE_CODE",
            PayeeFieldError::Text { .. } => "INVALID_PAYEE_FIELD",
            PayeeFieldError::Phone(_) => "INVALID_PHONE",
            PayeeFieldError::UnknownBank(_) => "UNKNOWN_BANK",
            PayeeFieldError::AccountNumber { .. } => "INVALID_ACCOUNT_NUMBER",
        }
    }

    /// The request field at fault, for error details.
    pub fn field(&self) -> &'static str {
        match self {
            PayeeFieldError::Kind(_) => "kind",
            PayeeFieldError::Code { .. } => "code",
            PayeeFieldError::Text { field, .. } => field,
            PayeeFieldError::Phone(_) => "phone",
            PayeeFieldError::UnknownBank(_) => "collection_account.bank_bin",
            PayeeFieldError::AccountNumber { .. } => "collection_account.account_number",
        }
    }
}

/// A payee code: 2 to 16 ASCII letters or digits, kept uppercase ("V042", "THCSTUCTRANH").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PayeeCode(String);

impl PayeeCode {
    pub const MAX_LEN: usize = 16;
    /// Random characters after the kind letter in a generated code. With the kind letter that
    /// makes 7 characters, one short of a payment reference, so the two never look alike.
    const GENERATED_RANDOM_LEN: usize = 6;

    /// Reads a code a person chose; letter case does not matter.
    pub fn parse(text: &str) -> Result<Self, PayeeFieldError> {
        let refuse = |rule| {
            Err(PayeeFieldError::Code {
                found: text.to_owned(),
                rule,
            })
        };
        if !(2..=Self::MAX_LEN).contains(&text.len()) {
            return refuse("must be 2 to 16 characters");
        }
        if !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            // The code is the purpose text of the static QR, which allows no punctuation.
            return refuse("only ASCII letters and digits are allowed");
        }
        // A memo holding this code must not read as a payment reference (see reference.rs).
        if PaymentReference::parse(text).is_ok() {
            return refuse("reads as a payment reference; choose another");
        }
        Ok(Self(text.to_ascii_uppercase()))
    }

    /// A fresh code such as `V7KQ3MX`: the kind's letter and characters that are hard to
    /// misread. Uniqueness is the store's job; generate again on conflict.
    pub fn generate<R: Rng + ?Sized>(kind: PayeeKind, rng: &mut R) -> Self {
        let mut code = String::from(kind.code_prefix());
        for _ in 0..Self::GENERATED_RANDOM_LEN {
            code.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
        }
        Self(code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code of the payee's liability account in the ledger.
    pub fn ledger_account_code(&self) -> String {
        format!("payee:{}", self.0)
    }
}

/// Trims a free-text field and checks its length in characters.
pub fn bounded_text(
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<String, PayeeFieldError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(PayeeFieldError::Text { field, max });
    }
    Ok(trimmed.to_owned())
}

pub const NAME_MAX_CHARS: usize = 200;
pub const DETAIL_MAX_CHARS: usize = 100;

/// A phone number with the spaces, dots and dashes people type removed ("0912 345 678").
pub fn parse_phone(text: &str) -> Result<String, PayeeFieldError> {
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    if (9..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(compact)
    } else {
        Err(PayeeFieldError::Phone(text.to_owned()))
    }
}

/// A domestic bank account number: 6 to 19 digits, the range NAPAS transfers accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountNumber(String);

impl AccountNumber {
    pub fn parse(text: &str) -> Result<Self, PayeeFieldError> {
        let refuse = |rule| {
            Err(PayeeFieldError::AccountNumber {
                found: text.to_owned(),
                rule,
            })
        };
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return refuse("must be digits only");
        }
        if !(6..=19).contains(&text.len()) {
            return refuse("must be 6 to 19 digits");
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The bank account a payee's transfers land in, as a request names it, validated.
#[derive(Debug, Clone)]
pub struct CollectionAccountSpec {
    pub bank: &'static Bank,
    pub number: AccountNumber,
    pub holder_name: HolderName,
}

impl CollectionAccountSpec {
    pub fn parse_bank(bin: &str) -> Result<&'static Bank, PayeeFieldError> {
        find_bank(bin).ok_or_else(|| PayeeFieldError::UnknownBank(bin.to_owned()))
    }

    /// The code of the bank account's asset account in the ledger.
    pub fn ledger_account_code(&self) -> String {
        format!("bank:{}:{}", self.bank.bin, self.number.as_str())
    }

    /// The asset account's display name, e.g. "Vietcombank 0123456789 NGUYEN THI HONG".
    pub fn ledger_account_name(&self) -> String {
        format!(
            "{} {} {}",
            self.bank.short_name,
            self.number.as_str(),
            self.holder_name
        )
    }
}

/// A collection account as stored. Several payees may share one (a pooled market account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionAccount {
    pub id: Uuid,
    pub bank_bin: String,
    pub account_number: String,
    pub holder_name: String,
    pub ledger_account_id: Uuid,
}

/// What a payee is called and where to find it: free text people read, checked on the way in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayeeDetails {
    pub name: String,
    pub hamlet: Option<String>,
    pub stall: Option<String>,
    pub phone: Option<String>,
    pub category: Option<String>,
}

/// A payee as stored, with its collection account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payee {
    pub id: Uuid,
    pub code: String,
    pub kind: PayeeKind,
    pub details: PayeeDetails,
    pub active: bool,
    pub ledger_account_id: Uuid,
    pub collection_account: CollectionAccount,
    /// The resident who runs it (a vendor at the market), when known.
    pub owner_resident_id: Option<Uuid>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn payee_codes_are_uppercased_letters_and_digits() {
        assert_eq!(PayeeCode::parse("v042").unwrap().as_str(), "V042");
        assert_eq!(
            PayeeCode::parse("V042").unwrap().ledger_account_code(),
            "payee:V042"
        );
        for bad in ["", "V", "V-042", "V 042", "Vũ42", &"A".repeat(17)] {
            let error = PayeeCode::parse(bad).unwrap_err();
            assert_eq!(error.code(), "INVALID_PAYEE_CODE", "{bad:?}");
        }
    }

    #[test]
    fn a_payee_code_may_not_read_as_a_payment_reference() {
        assert!(PaymentReference::parse("8K2H9QX4").is_ok());
        assert_eq!(
            PayeeCode::parse("8k2h9qx4").unwrap_err(),
            PayeeFieldError::Code {
                found: "8k2h9qx4".into(),
                rule: "reads as a payment reference; choose another"
            }
        );
    }

    #[test]
    fn generated_codes_name_their_kind_and_parse_back() {
        let mut rng = StdRng::seed_from_u64(3);
        for kind in PayeeKind::ALL {
            let code = PayeeCode::generate(kind, &mut rng);
            assert_eq!(code.as_str().len(), 7);
            assert!(code.as_str().starts_with(kind.code_prefix()));
            assert_eq!(PayeeCode::parse(code.as_str()).unwrap(), code);
        }
    }

    #[test]
    fn account_numbers_are_6_to_19_digits() {
        assert!(AccountNumber::parse("123456").is_ok());
        assert!(AccountNumber::parse(&"9".repeat(19)).is_ok());
        for (bad, rule) in [
            ("12345", "must be 6 to 19 digits"),
            (&"9".repeat(20)[..], "must be 6 to 19 digits"),
            ("0123-456789", "must be digits only"),
            ("VQRQABRLS0448", "must be digits only"),
            ("", "must be 6 to 19 digits"),
        ] {
            assert_eq!(
                AccountNumber::parse(bad).unwrap_err(),
                PayeeFieldError::AccountNumber {
                    found: bad.into(),
                    rule
                }
            );
        }
    }

    #[test]
    fn phones_lose_their_separators() {
        assert_eq!(parse_phone("0912 345.678").unwrap(), "0912345678");
        assert_eq!(parse_phone("+84-912-345-678").unwrap(), "+84912345678");
        assert!(parse_phone("12345").is_err());
        assert!(parse_phone("09123x5678").is_err());
    }

    #[test]
    fn unknown_banks_are_refused() {
        assert_eq!(
            CollectionAccountSpec::parse_bank("970436")
                .unwrap()
                .short_name,
            "Vietcombank"
        );
        assert_eq!(
            CollectionAccountSpec::parse_bank("123456")
                .unwrap_err()
                .code(),
            "UNKNOWN_BANK"
        );
    }

    #[test]
    fn text_fields_are_trimmed_and_bounded() {
        assert_eq!(bounded_text("stall", "  Sạp 12 ", 100).unwrap(), "Sạp 12");
        assert!(bounded_text("stall", "   ", 100).is_err());
        assert!(bounded_text("stall", &"ư".repeat(101), 100).is_err());
    }
}
