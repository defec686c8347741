//! Who paid: the payer's bank account as a feed reports it, known to us only by a keyed hash.
//!
//! A payer's account number is personal data. It is never stored or shown in full: only
//! `HMAC-SHA256(pepper, "<bank bin>:<account number>")` as lowercase hex (the same account
//! always gives the same hash under one pepper, so payments can be counted per payer) and its
//! last four digits, for staff to recognise it. The pepper is a server secret: without it the
//! hash cannot be brute-forced from the small space of account numbers.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest pepper accepted: 16 bytes.
pub const MIN_PEPPER_BYTES: usize = 16;

/// The secret key of the payer-account hash. Its bytes are never printed.
#[derive(Clone)]
pub struct Pepper(Vec<u8>);

impl Pepper {
    /// The pepper from its configured text (surrounding whitespace dropped); at least
    /// [`MIN_PEPPER_BYTES`] bytes.
    pub fn new(configured: &str) -> Result<Self, PepperTooShort> {
        let bytes = configured.trim().as_bytes();
        if bytes.len() < MIN_PEPPER_BYTES {
            return Err(PepperTooShort);
        }
        Ok(Pepper(bytes.to_vec()))
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the payer pepper must be at least {MIN_PEPPER_BYTES} bytes")]
pub struct PepperTooShort;

/// A payer's bank account: the bank's 6-digit BIN (NAPAS id) and the account number, digits
/// only. Only ever held in memory; what is stored is [`PayerAccount::hash`] and
/// [`PayerAccount::last4`].
#[derive(Clone, PartialEq, Eq)]
pub struct PayerAccount {
    pub bank_bin: String,
    pub account_number: String,
}

/// Shows the last four digits only, so a logged transaction never carries the number.
impl fmt::Debug for PayerAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PayerAccount {{ bank_bin: {:?}, account: \"…{}\" }}",
            self.bank_bin,
            self.last4()
        )
    }
}

/// The most digits an account number may have (card numbers are 19, accounts fewer).
const MAX_ACCOUNT_DIGITS: usize = 19;
/// Fewest digits of an account number: shorter is no account.
const MIN_ACCOUNT_DIGITS: usize = 4;

impl PayerAccount {
    /// Reads what a feed sent, leniently: both trimmed, spaces, dots and dashes inside dropped;
    /// `None` (never an error) when either is missing or empty, the bin is not 6 digits, or
    /// the account number is not 4 to 19 digits.
    pub fn parse(bank_bin: Option<&str>, account_number: Option<&str>) -> Option<Self> {
        let bank_bin = digits(bank_bin?)?;
        let account_number = digits(account_number?)?;
        if bank_bin.len() != 6
            || !(MIN_ACCOUNT_DIGITS..=MAX_ACCOUNT_DIGITS).contains(&account_number.len())
        {
            return None;
        }
        Some(PayerAccount {
            bank_bin,
            account_number,
        })
    }

    /// `HMAC-SHA256(pepper, "<bin>:<account number>")`, lowercase hex.
    pub fn hash(&self, pepper: &Pepper) -> PayerAccountHash {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&pepper.0).expect("any key length");
        mac.update(self.bank_bin.as_bytes());
        mac.update(b":");
        mac.update(self.account_number.as_bytes());
        PayerAccountHash(hex::encode(mac.finalize().into_bytes()))
    }

    /// The last four digits, what staff see.
    pub fn last4(&self) -> String {
        let start = self.account_number.len().saturating_sub(4);
        self.account_number[start..].to_owned()
    }
}

/// The text with separators (spaces, `.`, `-`) removed; `None` if empty or anything else is
/// not an ASCII digit.
fn digits(text: &str) -> Option<String> {
    let kept: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect();
    (!kept.is_empty() && kept.bytes().all(|b| b.is_ascii_digit())).then_some(kept)
}

/// A payer account's keyed hash: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayerAccountHash(String);

impl PayerAccountHash {
    /// Accepts exactly 64 hex digits (case-insensitive, stored lowercase).
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| PayerAccountHash(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PayerAccountHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper(text: &str) -> Pepper {
        Pepper::new(text).expect("long enough")
    }

    #[test]
    fn reads_what_feeds_send_leniently() {
        let account = PayerAccount::parse(Some(" 970415 "), Some("8888 888.888")).expect("valid");
        assert_eq!(account.bank_bin, "970415");
        assert_eq!(account.account_number, "8888888888");
        assert_eq!(account.last4(), "8888");
        for (bin, number) in [
            (None, Some("8888888888")),
            (Some("970415"), None),
            (Some(""), Some("8888888888")),
            (Some("970415"), Some("  ")),
            (Some("97041"), Some("8888888888")),
            (Some("9704150"), Some("8888888888")),
            (Some("VCB"), Some("8888888888")),
            (Some("970415"), Some("88a8")),
            (Some("970415"), Some("123")),
            (Some("970415"), Some("12345678901234567890")),
        ] {
            assert_eq!(PayerAccount::parse(bin, number), None, "{bin:?} {number:?}");
        }
    }

    #[test]
    fn the_same_account_gives_the_same_hash_and_another_pepper_another() {
        let one = PayerAccount::parse(Some("970415"), Some("8888888888")).expect("valid");
        let again = PayerAccount::parse(Some("970415"), Some(" 8888888888")).expect("valid");
        let key = pepper("a pepper of enough bytes");
        assert_eq!(one.hash(&key), again.hash(&key));
        assert_ne!(one.hash(&key), one.hash(&pepper("another pepper, as long")));
        let other_bank = PayerAccount::parse(Some("970436"), Some("8888888888")).expect("valid");
        assert_ne!(one.hash(&key), other_bank.hash(&key));
        let hash = one.hash(&key);
        assert_eq!(hash.as_str().len(), 64);
        assert!(hash
            .as_str()
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(PayerAccountHash::parse(hash.as_str()), Some(hash.clone()));
        assert_eq!(
            PayerAccountHash::parse(&hash.as_str().to_ascii_uppercase()),
            Some(hash)
        );
        assert_eq!(PayerAccountHash::parse("abc"), None);
    }

    #[test]
    fn the_hash_is_hmac_sha256_of_bin_colon_number() {
        let account = PayerAccount::parse(Some("970415"), Some("8888888888")).expect("valid");
        let key = pepper("0123456789abcdef");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"0123456789abcdef").expect("key");
        mac.update(b"970415:8888888888");
        assert_eq!(
            account.hash(&key).as_str(),
            hex::encode(mac.finalize().into_bytes())
        );
    }

    #[test]
    fn secrets_and_numbers_are_not_printed() {
        let key = pepper("a secret pepper value");
        assert!(!format!("{key:?}").contains("secret"));
        let account = PayerAccount::parse(Some("970415"), Some("1234567890")).expect("valid");
        let printed = format!("{account:?}");
        assert!(!printed.contains("1234567890"), "{printed}");
        assert!(printed.contains("7890"));
        assert_eq!(Pepper::new("short").unwrap_err(), PepperTooShort);
    }
}
