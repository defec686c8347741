//! Bank-feed webhooks: verifying that a delivery really comes from the aggregator, and turning
//! its body into [`BankTransaction`]s. Pure: no I/O, no clock (the caller passes `now`).
//!
//! The receiving route calls [`verify`] on the exact bytes it read from the socket, and only
//! then [`parse`]. Each provider signs differently:
//!
//! | provider | credential | signed content | timestamp window |
//! |---|---|---|---|
//! | SePay | `Authorization: Apikey <key>`, or `X-SePay-Signature: sha256=<hex>` | HMAC-SHA256 over `X-SePay-Timestamp + "." + raw body` | 5 min (HMAC mode) |
//! | payOS | body field `signature` (hex) | HMAC-SHA256 over the body's `data` fields as sorted `k=v&k=v` | none |
//! | Casso v2 | `X-Casso-Signature: t=<ms>,v1=<hex>` | HMAC-SHA512 over `t + "." + ` the body as key-sorted JSON | 5 min |
//! | Casso v1 | `Secure-Token: <token>` | nothing (shared token) | none |
//! | Standard Webhooks | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> ...` | HMAC-SHA256 over `id.timestamp.raw body` | 5 min |
//!
//! payOS and Casso v2 sign a canonical form rebuilt from the parsed JSON, so for them a
//! re-serialized body still verifies; SePay and Standard Webhooks sign the raw bytes, so any
//! change to them fails. Every comparison of a secret-derived value is constant-time. One or two
//! secrets may be active for an account while a key is being rotated; a delivery signed with any
//! of them is accepted.

mod canonical;
mod casso;
mod fields;
pub mod matching;
mod payos;
pub mod posting;
pub mod resolution;
mod sepay;
pub mod sign;
mod standard;
pub mod test_delivery;

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::Mac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::payer::PayerAccount;

/// How far a signed timestamp may be from `now`, into the past or the future: 5 minutes, the
/// window every one of these schemes recommends. Replays inside the window are caught by
/// deduplicating on the provider's transaction id.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 5 * 60;

/// Transaction ids beginning with this are transfers recorded from a bank statement line
/// (`statement:<account>:<direction>:<bank reference>`); no feed may send one.
pub const STATEMENT_ID_PREFIX: &str = "statement:";

/// The bank-feed aggregators (and the generic Standard Webhooks route) we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    SePay,
    PayOs,
    Casso,
    /// Any other feed, signed per standardwebhooks.com and carrying our own body shape.
    Standard,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::SePay,
        Provider::PayOs,
        Provider::Casso,
        Provider::Standard,
    ];

    /// The name used in routes and in the feed configuration (`sepay`, `payos`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::SePay => "sepay",
            Provider::PayOs => "payos",
            Provider::Casso => "casso",
            Provider::Standard => "standard",
        }
    }

    pub fn parse(text: &str) -> Result<Self, UnknownProvider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| UnknownProvider(text.to_owned()))
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider {0:?} is not one of sepay, payos, casso, standard")]
pub struct UnknownProvider(pub String);

/// One active webhook secret, decoded into the key bytes its provider's scheme uses: the UTF-8
/// bytes of the configured string, except for Standard Webhooks, whose `whsec_<base64>` secret
/// is a base64-encoded key. For SePay the same string serves as the `Apikey` value or as the
/// HMAC key, whichever mode the account uses; for Casso as the v2 checksum key or the v1
/// `Secure-Token`.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

impl Secret {
    /// Decodes a configured secret. Surrounding whitespace is dropped because secrets are pasted
    /// from the providers' dashboards and a stray newline would otherwise make every delivery
    /// fail.
    pub fn new(provider: Provider, configured: &str) -> Result<Self, SecretError> {
        let configured = configured.trim();
        let key = match provider {
            Provider::Standard => {
                // The spec's libraries also accept the bare base64 part, without the prefix.
                let encoded = configured.strip_prefix("whsec_").unwrap_or(configured);
                LENIENT_BASE64
                    .decode(encoded)
                    .map_err(|_| SecretError::NotBase64)?
            }
            Provider::SePay | Provider::PayOs | Provider::Casso => configured.as_bytes().to_vec(),
        };
        if key.is_empty() {
            // An empty key would make `Authorization: Apikey ` (empty) a valid credential.
            return Err(SecretError::Empty);
        }
        Ok(Secret { key })
    }

    /// The key material, for signing a delivery as the provider would.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

/// Never prints key material, so a secret can sit in a logged struct.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the webhook secret is empty")]
    Empty,
    #[error("a Standard Webhooks secret is `whsec_` followed by base64")]
    NotBase64,
}

impl SecretError {
    /// Stable, machine-readable code for API error bodies.
    pub fn code(self) -> &'static str {
        match self {
            SecretError::Empty => "WEBHOOK_SECRET_EMPTY",
            SecretError::NotBase64 => "WEBHOOK_SECRET_NOT_BASE64",
        }
    }
}

/// Read access to request headers, so this layer needs no HTTP types.
pub trait HeaderLookup {
    /// The value of the first header called `name`, matched case-insensitively as HTTP header
    /// names are.
    fn header(&self, name: &str) -> Option<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(key, _)| key.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_ref())
    }
}

/// Why a delivery was refused. Every variant means "do not process"; [`VerifyError::code`] is
/// the stable code for logs and the 401 body. Messages never echo request content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("no webhook secret is configured for this account")]
    NotConfigured,
    #[error("the delivery carries no {expected}")]
    SignatureMissing { expected: &'static str },
    #[error("the signature does not match any active secret")]
    SignatureInvalid,
    #[error(
        "the signed timestamp is {skew_seconds} s from now, outside the \
         {TIMESTAMP_TOLERANCE_SECONDS} s window"
    )]
    TimestampOutOfWindow { skew_seconds: i64 },
    #[error("malformed delivery: {0}")]
    Malformed(&'static str),
}

impl VerifyError {
    /// Stable, machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::NotConfigured => "WEBHOOK_NOT_CONFIGURED",
            VerifyError::SignatureMissing { .. } => "WEBHOOK_SIGNATURE_MISSING",
            VerifyError::SignatureInvalid => "WEBHOOK_SIGNATURE_INVALID",
            VerifyError::TimestampOutOfWindow { .. } => "WEBHOOK_TIMESTAMP_OUT_OF_WINDOW",
            VerifyError::Malformed(_) => "WEBHOOK_MALFORMED",
        }
    }
}

/// Checks that `raw_body` (exactly as received) with `headers` was sent by `provider` holding
/// one of `secrets`, and, where the scheme signs a timestamp, that it is within
/// [`TIMESTAMP_TOLERANCE_SECONDS`] of `now`.
///
/// The signature is checked before the timestamp, so `TimestampOutOfWindow` only ever reports
/// an authentic but stale (replayed) or clock-skewed delivery.
pub fn verify<H: HeaderLookup + ?Sized>(
    provider: Provider,
    headers: &H,
    raw_body: &[u8],
    secrets: &[Secret],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NotConfigured);
    }
    match provider {
        Provider::SePay => sepay::verify(headers, raw_body, secrets, now),
        Provider::PayOs => payos::verify(raw_body, secrets),
        Provider::Casso => casso::verify(headers, raw_body, secrets, now),
        Provider::Standard => standard::verify(headers, raw_body, secrets, now),
    }
}

/// Whether money entered or left the monitored account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Direction::In, Direction::Out]
            .into_iter()
            .find(|d| d.as_str() == text)
    }
}

/// One credit or debit on a monitored account, as reported by a feed, normalized across
/// providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankTransaction {
    pub provider: Provider,
    /// The provider's id for this transaction: the deduplication key together with `provider`.
    pub provider_transaction_id: String,
    /// The monitored account the money moved on; selects the collection account.
    pub account_number: String,
    pub direction: Direction,
    /// VND đồng, always > 0 and at most [`crate::domain::money::MAX_AMOUNT_MINOR`]; the sign
    /// lives in `direction`.
    pub amount: i64,
    /// The transfer memo as the bank reports it (often wrapped in the bank's own text); empty
    /// when the feed sends none, so such money still reaches suspense rather than being refused.
    pub description: String,
    /// When the bank booked it. Feeds that send a local time without an offset report Vietnam
    /// time (UTC+7, no daylight saving), which is how those are read.
    pub occurred_at: DateTime<Utc>,
    /// The account's balance after this transaction, where the feed reports it (SePay
    /// `accumulated`, Casso `runningBalance`); used for reconciliation.
    pub running_balance: Option<i64>,
    /// The bank's own reference for the transfer (e.g. "FT24364030863634"), where present.
    pub reference: Option<String>,
    /// The payer's account (bank BIN and number), where the feed reports one (payOS, Casso);
    /// only ever stored as its keyed hash and last four digits.
    pub payer: Option<PayerAccount>,
}

/// Why a verified body could not be turned into bank transactions. Field names are JSON paths
/// into the body (`data.amount`, `data[0].when`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not JSON")]
    NotJson,
    #[error("{field} is missing")]
    MissingField { field: String },
    #[error("{field} {problem}")]
    InvalidField {
        field: String,
        problem: &'static str,
    },
    #[error("{field} must be greater than zero")]
    AmountNotPositive { field: String },
    #[error("{field} has a fractional part; VND has no minor unit")]
    AmountFractional { field: String },
    #[error("{field} is beyond the largest amount a posting may carry")]
    AmountOutOfRange { field: String },
    #[error("the provider reports a failed event (code {code:?}), not a bank transaction")]
    ProviderReportedError { code: String },
    #[error("event type {event_type:?} is not bank_transaction")]
    UnsupportedEventType { event_type: String },
}

impl ParseError {
    /// Stable, machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::NotJson => "WEBHOOK_BODY_NOT_JSON",
            ParseError::MissingField { .. } => "WEBHOOK_FIELD_MISSING",
            ParseError::InvalidField { .. } => "WEBHOOK_FIELD_INVALID",
            ParseError::AmountNotPositive { .. } => "WEBHOOK_AMOUNT_NOT_POSITIVE",
            ParseError::AmountFractional { .. } => "WEBHOOK_AMOUNT_FRACTIONAL",
            ParseError::AmountOutOfRange { .. } => "WEBHOOK_AMOUNT_OUT_OF_RANGE",
            ParseError::ProviderReportedError { .. } => "WEBHOOK_PROVIDER_ERROR",
            ParseError::UnsupportedEventType { .. } => "WEBHOOK_EVENT_UNSUPPORTED",
        }
    }
}

/// Normalizes a verified body. Most deliveries carry one transaction; Casso's legacy v1 format
/// carries a list (possibly empty).
pub fn parse(provider: Provider, raw_body: &[u8]) -> Result<Vec<BankTransaction>, ParseError> {
    let body: serde_json::Value =
        serde_json::from_slice(raw_body).map_err(|_| ParseError::NotJson)?;
    let transactions = match provider {
        Provider::SePay => sepay::parse(&body).map(|tx| vec![tx]),
        Provider::PayOs => payos::parse(&body).map(|tx| vec![tx]),
        Provider::Casso => casso::parse(&body),
        Provider::Standard => standard::parse(&body).map(|tx| vec![tx]),
    }?;
    for transaction in &transactions {
        let identifiers = [
            ("id", transaction.provider_transaction_id.as_str()),
            ("account number", transaction.account_number.as_str()),
            ("reference", transaction.reference.as_deref().unwrap_or("")),
        ];
        // They are keys the database indexes; real ones are a few dozen characters.
        if let Some((field, _)) = identifiers
            .iter()
            .find(|(_, text)| text.chars().count() > MAX_IDENTIFIER_CHARS)
        {
            return Err(ParseError::InvalidField {
                field: (*field).to_owned(),
                problem: "is longer than 128 characters",
            });
        }
    }
    Ok(transactions)
}

/// The longest transaction id, account number or bank reference accepted.
pub const MAX_IDENTIFIER_CHARS: usize = 128;

/// Base64 as found in the wild: the standard alphabet, padding optional.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Whether `expected` is the MAC `M` of the concatenated `message` parts under `key`.
/// `verify_slice` compares in constant time.
fn mac_matches<M: Mac + hmac::digest::KeyInit>(
    key: &[u8],
    message: &[&[u8]],
    expected: &[u8],
) -> bool {
    let Ok(mut mac) = <M as Mac>::new_from_slice(key) else {
        return false;
    };
    for part in message {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

/// Compares a presented plain token (SePay `Apikey`, Casso `Secure-Token`) with a secret.
/// Comparing fixed-size digests in constant time leaks neither the content nor the length of
/// the secret through timing.
fn token_matches(presented: &str, secret: &Secret) -> bool {
    Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(secret.key()))
        .into()
}

/// A Unix timestamp as the schemes send it: ASCII digits only (no sign, no spaces), because the
/// exact text is part of the signed message and must mean one number.
fn parse_unix_timestamp(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Enforces [`TIMESTAMP_TOLERANCE_SECONDS`] on a timestamp in milliseconds since the epoch.
fn check_window_millis(signed_at_millis: i64, now: DateTime<Utc>) -> Result<(), VerifyError> {
    const TOLERANCE_MILLIS: u64 = TIMESTAMP_TOLERANCE_SECONDS.unsigned_abs() * 1000;
    let now_millis = now.timestamp_millis();
    if now_millis.abs_diff(signed_at_millis) > TOLERANCE_MILLIS {
        return Err(VerifyError::TimestampOutOfWindow {
            skew_seconds: now_millis.saturating_sub(signed_at_millis) / 1000,
        });
    }
    Ok(())
}

/// Enforces [`TIMESTAMP_TOLERANCE_SECONDS`] on a timestamp in seconds since the epoch.
fn check_window_seconds(signed_at_seconds: i64, now: DateTime<Utc>) -> Result<(), VerifyError> {
    // Saturating: an absurd timestamp simply lands far outside the window.
    check_window_millis(signed_at_seconds.saturating_mul(1000), now)
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn provider_names_round_trip() {
        for provider in Provider::ALL {
            assert_eq!(Provider::parse(provider.as_str()), Ok(provider));
        }
        assert_eq!(
            Provider::parse("PayOS"),
            Err(UnknownProvider("PayOS".to_owned()))
        );
    }

    #[test]
    fn secrets_are_trimmed_refused_when_empty_and_never_printed() {
        let secret = Secret::new(Provider::SePay, "  key-123\n").expect("valid");
        assert_eq!(secret.key(), b"key-123");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        for provider in Provider::ALL {
            let empty = Secret::new(provider, " \n").expect_err("empty secret refused");
            assert_eq!(empty.code(), "WEBHOOK_SECRET_EMPTY");
        }
    }

    #[test]
    fn standard_secrets_are_base64_with_or_without_prefix_or_padding() {
        let with_prefix = Secret::new(Provider::Standard, "whsec_c2VjcmV0").expect("valid");
        let without = Secret::new(Provider::Standard, "c2VjcmV0").expect("valid");
        assert_eq!(with_prefix.key(), b"secret");
        assert_eq!(without.key(), b"secret");
        let padded = Secret::new(Provider::Standard, "whsec_c2VjcmV0MQ==").expect("valid");
        let unpadded = Secret::new(Provider::Standard, "whsec_c2VjcmV0MQ").expect("valid");
        assert_eq!(padded.key(), b"secret1");
        assert_eq!(unpadded.key(), b"secret1");
        let bad = Secret::new(Provider::Standard, "whsec_not base64!").expect_err("refused");
        assert_eq!(bad.code(), "WEBHOOK_SECRET_NOT_BASE64");
        // The same text is a perfectly good plain key for the other providers.
        assert!(Secret::new(Provider::PayOs, "whsec_not base64!").is_ok());
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_takes_the_first() {
        let headers = [
            ("X-Casso-Signature", "first"),
            ("x-casso-signature", "second"),
        ];
        assert_eq!(headers.header("x-CASSO-signature"), Some("first"));
        assert_eq!(headers.header("Authorization"), None);
    }

    #[test]
    fn verify_refuses_everything_without_a_configured_secret() {
        let headers: [(&str, &str); 1] = [("Authorization", "Apikey anything")];
        for provider in Provider::ALL {
            assert_eq!(
                verify(provider, &headers[..], b"{}", &[], Utc::now()),
                Err(VerifyError::NotConfigured)
            );
        }
    }

    #[test]
    fn window_is_inclusive_at_five_minutes_either_way() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
        let now_ms = now.timestamp_millis();
        assert!(check_window_millis(now_ms - 300_000, now).is_ok());
        assert!(check_window_millis(now_ms + 300_000, now).is_ok());
        assert_eq!(
            check_window_millis(now_ms - 300_001, now),
            Err(VerifyError::TimestampOutOfWindow { skew_seconds: 300 })
        );
        assert_eq!(
            check_window_seconds(now.timestamp() + 301, now),
            Err(VerifyError::TimestampOutOfWindow { skew_seconds: -301 })
        );
        assert!(check_window_seconds(i64::MAX, now).is_err());
        assert!(check_window_millis(i64::MIN, now).is_err());
    }

    #[test]
    fn unix_timestamps_are_plain_digits() {
        assert_eq!(parse_unix_timestamp("1614265330"), Some(1_614_265_330));
        for bad in ["", "+1614265330", "-5", " 1", "1e9", "99999999999999999999"] {
            assert_eq!(parse_unix_timestamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn error_codes_are_distinct() {
        let verify_codes = [
            VerifyError::NotConfigured,
            VerifyError::SignatureMissing { expected: "x" },
            VerifyError::SignatureInvalid,
            VerifyError::TimestampOutOfWindow { skew_seconds: 0 },
            VerifyError::Malformed("x"),
        ]
        .map(|e| e.code());
        let field = || "f".to_owned();
        let parse_codes = [
            ParseError::NotJson,
            ParseError::MissingField { field: field() },
            ParseError::InvalidField {
                field: field(),
                problem: "p",
            },
            ParseError::AmountNotPositive { field: field() },
            ParseError::AmountFractional { field: field() },
            ParseError::AmountOutOfRange { field: field() },
            ParseError::ProviderReportedError { code: field() },
            ParseError::UnsupportedEventType {
                event_type: field(),
            },
        ]
        .map(|e| e.code());
        let secret_codes = [SecretError::Empty, SecretError::NotBase64].map(SecretError::code);
        let all: Vec<&str> = verify_codes
            .iter()
            .chain(&parse_codes)
            .chain(&secret_codes)
            .copied()
            .collect();
        let distinct: HashSet<&str> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len());
        assert!(all.iter().all(|code| code.starts_with("WEBHOOK_")));
    }

    #[test]
    fn parse_refuses_a_body_that_is_not_json() {
        for provider in Provider::ALL {
            assert_eq!(parse(provider, b"amount=5000"), Err(ParseError::NotJson));
        }
    }
}
