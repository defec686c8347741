//! SePay. Two ways to authenticate a delivery, chosen per account in SePay's dashboard:
//!
//! - API key: `Authorization: Apikey <key>`; the configured secret is the key. Compared in
//!   constant time. There is no timestamp, so replays are only caught by deduplication.
//! - HMAC: `X-SePay-Timestamp: <unix seconds>` and `X-SePay-Signature: sha256=<hex>`, the
//!   HMAC-SHA256 with the secret over `timestamp + "." + raw body`, exactly as received. The
//!   timestamp must be within the window.
//!
//! API-key mode is the one SePay documents with a verification sample. SePay's developer pages
//! name the HMAC-SHA256 mode and its `X-SePay-Timestamp` header (5-minute window), but the
//! signed string and the `sha256=` form above come from third-party integrations: unverified
//! against SePay's own text (see the README, "SePay's two modes").
//!
//! When a signature header is present the HMAC mode is the one checked, whatever else is sent.
//! (SePay's OAuth 2 mode, a bearer token from our own token endpoint, is not supported.)

use chrono::{DateTime, Utc};
use hmac::Hmac;
use serde_json::Value;
use sha2::Sha256;

use super::fields::Fields;
use super::{
    check_window_seconds, mac_matches, parse_unix_timestamp, token_matches, BankTransaction,
    HeaderLookup, ParseError, Provider, Secret, VerifyError,
};

const SIGNATURE_HEADER: &str = "X-SePay-Signature";
const TIMESTAMP_HEADER: &str = "X-SePay-Timestamp";

pub(super) fn verify<H: HeaderLookup + ?Sized>(
    headers: &H,
    raw_body: &[u8],
    secrets: &[Secret],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    if let Some(signature) = headers.header(SIGNATURE_HEADER) {
        return verify_hmac(headers, signature, raw_body, secrets, now);
    }
    let authorization = headers
        .header("Authorization")
        .ok_or(VerifyError::SignatureMissing {
            expected: "Authorization: Apikey header or X-SePay-Signature header",
        })?;
    let key = api_key(authorization).ok_or(VerifyError::Malformed(
        "the Authorization header is not `Apikey <key>`",
    ))?;
    if secrets.iter().any(|secret| token_matches(key, secret)) {
        Ok(())
    } else {
        Err(VerifyError::SignatureInvalid)
    }
}

/// The key of an `Apikey <key>` credential. Authentication scheme names are case-insensitive
/// (RFC 9110 §11.1).
fn api_key(authorization: &str) -> Option<&str> {
    let (scheme, key) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("Apikey").then(|| key.trim())
}

fn verify_hmac<H: HeaderLookup + ?Sized>(
    headers: &H,
    signature: &str,
    raw_body: &[u8],
    secrets: &[Secret],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let timestamp = headers
        .header(TIMESTAMP_HEADER)
        .ok_or(VerifyError::SignatureMissing {
            expected: "X-SePay-Timestamp header",
        })?
        .trim();
    let signed_at = parse_unix_timestamp(timestamp).ok_or(VerifyError::Malformed(
        "X-SePay-Timestamp is not a Unix timestamp in seconds",
    ))?;
    let signature = signature.trim();
    // The `sha256=` prefix is the form integrations use; a bare hex value means the same.
    let signature = signature.strip_prefix("sha256=").unwrap_or(signature);
    let signature = hex::decode(signature).map_err(|_| VerifyError::SignatureInvalid)?;
    let message: [&[u8]; 3] = [timestamp.as_bytes(), b".", raw_body];
    if !secrets
        .iter()
        .any(|secret| mac_matches::<Hmac<Sha256>>(secret.key(), &message, &signature))
    {
        return Err(VerifyError::SignatureInvalid);
    }
    check_window_seconds(signed_at, now)
}

/// A SePay transaction. `content` is the transfer memo and `description` the bank's whole
/// notification text; the memo is used, and the full text when the memo is empty, because the
/// payment reference is searched for inside it.
pub(super) fn parse(body: &Value) -> Result<BankTransaction, ParseError> {
    let tx = Fields::root(body)?;
    let content = tx.text_or_empty("content")?;
    let description = if content.trim().is_empty() {
        tx.text_or_empty("description")?
    } else {
        content
    };
    Ok(BankTransaction {
        provider: Provider::SePay,
        provider_transaction_id: tx.identifier("id")?,
        account_number: tx.required_text("accountNumber")?,
        direction: tx.direction("transferType")?,
        amount: tx.positive_amount("transferAmount")?,
        description,
        occurred_at: tx.local_time("transactionDate")?,
        running_balance: tx.optional_balance("accumulated")?,
        reference: tx.optional_text("referenceCode")?,
        payer: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bank_feed::test_support::{
        at_seconds, compact, flip, flip_str, pretty, sample, sign, utc,
    };
    use crate::domain::bank_feed::{parse as parse_body, verify as verify_delivery, Direction};
    use serde_json::json;

    // The SePay sample ships without a key or signature (SePay's docs show none), so these
    // tests supply their own key and sign the real body with it.
    const KEY: &str = "SEPAY-TEST-KEY-7f3a9c";
    const SIGNED_AT: i64 = 1_679_727_757; // 2023-03-25 14:02:37 +07:00

    fn body() -> Value {
        sample("sepay", "sepay-doc-sample")["body"].clone()
    }

    fn secret(text: &str) -> Secret {
        Secret::new(Provider::SePay, text).expect("valid")
    }

    fn check(headers: &[(&str, &str)], raw: &[u8], secrets: &[Secret]) -> Result<(), VerifyError> {
        verify_delivery(
            Provider::SePay,
            headers,
            raw,
            secrets,
            at_seconds(SIGNED_AT),
        )
    }

    fn signature_for(key: &str, timestamp: &str, raw: &[u8]) -> String {
        let mac = sign::<Hmac<Sha256>>(key.as_bytes(), &[timestamp.as_bytes(), b".", raw]);
        format!("sha256={}", hex::encode(mac))
    }

    fn hmac_check(
        signature: &str,
        timestamp: &str,
        raw: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let headers = [
            ("X-SePay-Timestamp", timestamp),
            ("X-SePay-Signature", signature),
        ];
        verify_delivery(
            Provider::SePay,
            &headers[..],
            raw,
            &[secret(KEY)],
            at_seconds(now),
        )
    }

    #[test]
    fn api_key_mode_accepts_the_sample_with_the_configured_key() {
        let raw = compact(&body());
        let auth = format!("Apikey {KEY}");
        assert_eq!(
            check(&[("Authorization", &auth)], &raw, &[secret(KEY)]),
            Ok(())
        );
        let lower = format!("apikey  {KEY} ");
        assert_eq!(
            check(&[("authorization", &lower)], &raw, &[secret(KEY)]),
            Ok(())
        );
    }

    #[test]
    fn api_key_mode_refuses_wrong_missing_and_other_credentials() {
        let raw = compact(&body());
        let secrets = [secret(KEY)];
        for index in 0..KEY.len() {
            let auth = format!("Apikey {}", flip_str(KEY, index));
            assert_eq!(
                check(&[("Authorization", &auth)], &raw, &secrets),
                Err(VerifyError::SignatureInvalid)
            );
        }
        let auth = format!("Apikey {KEY}x");
        assert_eq!(
            check(&[("Authorization", &auth)], &raw, &secrets),
            Err(VerifyError::SignatureInvalid)
        );
        assert_eq!(
            check(&[("Authorization", "Apikey ")], &raw, &secrets),
            Err(VerifyError::Malformed(
                "the Authorization header is not `Apikey <key>`"
            ))
        );
        let bearer = format!("Bearer {KEY}");
        assert_eq!(
            check(&[("Authorization", &bearer)], &raw, &secrets),
            Err(VerifyError::Malformed(
                "the Authorization header is not `Apikey <key>`"
            ))
        );
        assert_eq!(
            check(&[], &raw, &secrets).map_err(|e| e.code()),
            Err("WEBHOOK_SIGNATURE_MISSING")
        );
    }

    #[test]
    fn api_key_rotation() {
        let raw = compact(&body());
        let auth = format!("Apikey {KEY}");
        let headers = [("Authorization", auth.as_str())];
        let retired = secret("retired-key");
        assert_eq!(
            check(&headers, &raw, &[retired.clone(), secret(KEY)]),
            Ok(())
        );
        assert_eq!(
            check(&headers, &raw, &[retired]),
            Err(VerifyError::SignatureInvalid)
        );
    }

    #[test]
    fn hmac_mode_verifies_the_exact_raw_bytes() {
        let raw = compact(&body());
        let timestamp = SIGNED_AT.to_string();
        let signature = signature_for(KEY, &timestamp, &raw);
        assert_eq!(hmac_check(&signature, &timestamp, &raw, SIGNED_AT), Ok(()));
        let bare = signature.trim_start_matches("sha256=");
        assert_eq!(hmac_check(bare, &timestamp, &raw, SIGNED_AT), Ok(()));
        // The same JSON serialized differently is different bytes, so it fails.
        assert_eq!(
            hmac_check(&signature, &timestamp, &pretty(&body()), SIGNED_AT),
            Err(VerifyError::SignatureInvalid)
        );
    }

    #[test]
    fn hmac_mode_any_flipped_byte_fails() {
        let raw = compact(&body());
        let timestamp = SIGNED_AT.to_string();
        let signature = signature_for(KEY, &timestamp, &raw);
        for index in 0..raw.len() {
            let result = hmac_check(&signature, &timestamp, &flip(&raw, index), SIGNED_AT);
            assert_eq!(
                result,
                Err(VerifyError::SignatureInvalid),
                "body flip at {index}"
            );
        }
        for index in 0..signature.len() {
            let result = hmac_check(&flip_str(&signature, index), &timestamp, &raw, SIGNED_AT);
            assert!(result.is_err(), "signature flip at {index} verified");
        }
        for index in 0..timestamp.len() {
            let result = hmac_check(&signature, &flip_str(&timestamp, index), &raw, SIGNED_AT);
            assert!(result.is_err(), "timestamp flip at {index} verified");
        }
    }

    #[test]
    fn hmac_mode_enforces_the_window() {
        let raw = compact(&body());
        let old = (SIGNED_AT - 301).to_string();
        let future = (SIGNED_AT + 301).to_string();
        assert_eq!(
            hmac_check(&signature_for(KEY, &old, &raw), &old, &raw, SIGNED_AT),
            Err(VerifyError::TimestampOutOfWindow { skew_seconds: 301 })
        );
        assert_eq!(
            hmac_check(&signature_for(KEY, &future, &raw), &future, &raw, SIGNED_AT),
            Err(VerifyError::TimestampOutOfWindow { skew_seconds: -301 })
        );
        let edge = (SIGNED_AT - 300).to_string();
        assert_eq!(
            hmac_check(&signature_for(KEY, &edge, &raw), &edge, &raw, SIGNED_AT),
            Ok(())
        );
    }

    #[test]
    fn hmac_mode_rotation_and_required_headers() {
        let raw = compact(&body());
        let timestamp = SIGNED_AT.to_string();
        let signature = signature_for(KEY, &timestamp, &raw);
        let headers = [
            ("X-SePay-Timestamp", timestamp.as_str()),
            ("X-SePay-Signature", signature.as_str()),
        ];
        let retired = secret("retired-key");
        assert_eq!(
            check(&headers, &raw, &[retired.clone(), secret(KEY)]),
            Ok(())
        );
        assert_eq!(
            check(&headers, &raw, &[retired]),
            Err(VerifyError::SignatureInvalid)
        );
        // Signature present: the HMAC mode is checked even next to a valid API key.
        let auth = format!("Apikey {KEY}");
        let without_timestamp = [
            ("Authorization", auth.as_str()),
            ("X-SePay-Signature", signature.as_str()),
        ];
        assert_eq!(
            check(&without_timestamp, &raw, &[secret(KEY)]),
            Err(VerifyError::SignatureMissing {
                expected: "X-SePay-Timestamp header"
            })
        );
        let bad_timestamp = [
            ("X-SePay-Timestamp", "2023-03-25T07:02:37Z"),
            ("X-SePay-Signature", signature.as_str()),
        ];
        assert_eq!(
            check(&bad_timestamp, &raw, &[secret(KEY)]).map_err(|e| e.code()),
            Err("WEBHOOK_MALFORMED")
        );
    }

    #[test]
    fn the_sample_parses() {
        assert_eq!(
            parse_body(Provider::SePay, &compact(&body())),
            Ok(vec![BankTransaction {
                provider: Provider::SePay,
                provider_transaction_id: "92704".to_owned(),
                account_number: "0123499999".to_owned(),
                direction: Direction::In,
                amount: 2_277_000,
                description: "chuyen tien mua iphone".to_owned(),
                occurred_at: utc("2023-03-25T14:02:37+07:00"),
                running_balance: Some(19_077_000),
                reference: Some("MBVCB.3278907687".to_owned()),
                payer: None,
            }])
        );
    }

    #[test]
    fn outgoing_transfers_memo_fallback_and_bad_fields() {
        let mut body = body();
        body["transferType"] = json!("out");
        body["content"] = json!("");
        body["description"] = json!("BankAPINotify MBVCB.3278907687 rut tien");
        let tx = parse_body(Provider::SePay, &compact(&body)).expect("parses");
        assert_eq!(tx[0].direction, Direction::Out);
        assert_eq!(tx[0].description, "BankAPINotify MBVCB.3278907687 rut tien");

        body["transferType"] = json!("IN");
        assert_eq!(
            parse_body(Provider::SePay, &compact(&body)),
            Err(ParseError::InvalidField {
                field: "transferType".to_owned(),
                problem: "must be \"in\" or \"out\""
            })
        );
        body["transferType"] = json!("in");
        body["transferAmount"] = json!(2_277_000.5);
        assert_eq!(
            parse_body(Provider::SePay, &compact(&body)),
            Err(ParseError::AmountFractional {
                field: "transferAmount".to_owned()
            })
        );
        body["transferAmount"] = json!(-2_277_000);
        assert_eq!(
            parse_body(Provider::SePay, &compact(&body)),
            Err(ParseError::AmountNotPositive {
                field: "transferAmount".to_owned()
            })
        );
    }
}
