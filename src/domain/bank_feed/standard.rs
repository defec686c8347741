//! Standard Webhooks (standardwebhooks.com), for any feed other than the three aggregators.
//!
//! Headers `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`, a
//! space-separated list of `v1,<base64>` entries (several while the sender rotates keys). Each
//! is the HMAC-SHA256, keyed with the base64-decoded part of the `whsec_...` secret, over
//! `id + "." + timestamp + "." + raw body`, exactly as received. Entries of other versions
//! (`v1a,` asymmetric signatures) are ignored.
//!
//! The body is our own documented shape:
//! `{"type": "bank_transaction", "data": {"id", "account_number", "direction": "in"|"out",
//! "amount", "description", "occurred_at", "running_balance"?, "reference"?}}`, with
//! `occurred_at` in RFC 3339 including its offset, and `amount` in whole đồng.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::Hmac;
use serde_json::Value;
use sha2::Sha256;

use super::fields::Fields;
use super::{
    check_window_seconds, mac_matches, parse_unix_timestamp, BankTransaction, HeaderLookup,
    ParseError, Provider, Secret, VerifyError, LENIENT_BASE64,
};

const ID_HEADER: &str = "webhook-id";
const TIMESTAMP_HEADER: &str = "webhook-timestamp";
const SIGNATURE_HEADER: &str = "webhook-signature";

/// The only body type this route accepts.
const EVENT_TYPE: &str = "bank_transaction";

pub(super) fn verify<H: HeaderLookup + ?Sized>(
    headers: &H,
    raw_body: &[u8],
    secrets: &[Secret],
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let required = |name| {
        headers
            .header(name)
            .map(str::trim)
            .ok_or(VerifyError::SignatureMissing {
                expected: "webhook-id, webhook-timestamp and webhook-signature headers",
            })
    };
    let id = required(ID_HEADER)?;
    let timestamp = required(TIMESTAMP_HEADER)?;
    let signature_list = required(SIGNATURE_HEADER)?;
    let signed_at = parse_unix_timestamp(timestamp).ok_or(VerifyError::Malformed(
        "webhook-timestamp is not a Unix timestamp in seconds",
    ))?;
    let signatures: Vec<Vec<u8>> = signature_list
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| LENIENT_BASE64.decode(encoded).ok())
        .collect();
    let message: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", raw_body];
    let matches = secrets.iter().any(|secret| {
        signatures
            .iter()
            .any(|signature| mac_matches::<Hmac<Sha256>>(secret.key(), &message, signature))
    });
    if !matches {
        return Err(VerifyError::SignatureInvalid);
    }
    check_window_seconds(signed_at, now)
}

pub(super) fn parse(body: &Value) -> Result<BankTransaction, ParseError> {
    let root = Fields::root(body)?;
    let event_type = root.required_text("type")?;
    if event_type != EVENT_TYPE {
        return Err(ParseError::UnsupportedEventType { event_type });
    }
    let data = root.object("data")?;
    let id = data.identifier("id")?;
    if id.starts_with(super::STATEMENT_ID_PREFIX) {
        return Err(ParseError::InvalidField {
            field: data.path_of("id"),
            problem: "may not begin with \"statement:\", which marks bank statement lines",
        });
    }
    Ok(BankTransaction {
        provider: Provider::Standard,
        provider_transaction_id: id,
        account_number: data.required_text("account_number")?,
        direction: data.direction("direction")?,
        amount: data.positive_amount("amount")?,
        description: data.text_or_empty("description")?,
        occurred_at: data.rfc3339_time("occurred_at")?,
        running_balance: data.optional_balance("running_balance")?,
        reference: data.optional_text("reference")?,
        payer: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bank_feed::test_support::{at_seconds, flip, flip_str, sign, utc};
    use crate::domain::bank_feed::{parse as parse_body, verify as verify_delivery, Direction};
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;

    // The specification's published example (also the test vector of its reference
    // libraries): verifying it shows this implementation interoperates with theirs.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: &str = "1614265330";
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    // Our own delivery, signed in the tests with the hmac crate.
    const OUR_KEY: &[u8] = b"commune-feed-key-0123456789abcdef";
    const OUR_ID: &str = "msg_2xQ7bank0001";
    const OUR_TIMESTAMP: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z

    fn our_secret() -> Secret {
        Secret::new(
            Provider::Standard,
            &format!("whsec_{}", STANDARD.encode(OUR_KEY)),
        )
        .expect("valid")
    }

    fn our_body() -> Vec<u8> {
        br#"{"type":"bank_transaction","data":{"id":"FT25001A7K","account_number":"0123456789","direction":"in","amount":150000,"description":"ND: TT8K2F9QX thanh toan hoc phi","occurred_at":"2025-01-01T06:59:30+07:00","running_balance":2150000,"reference":"FT25001A7K"}}"#
            .to_vec()
    }

    fn our_signature(id: &str, timestamp: &str, raw: &[u8]) -> String {
        let mac = sign::<Hmac<Sha256>>(
            OUR_KEY,
            &[id.as_bytes(), b".", timestamp.as_bytes(), b".", raw],
        );
        format!("v1,{}", STANDARD.encode(mac))
    }

    fn check(
        id: &str,
        timestamp: &str,
        signature: &str,
        raw: &[u8],
        secrets: &[Secret],
        now: i64,
    ) -> Result<(), VerifyError> {
        let headers = [
            ("webhook-id", id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        ];
        verify_delivery(
            Provider::Standard,
            &headers[..],
            raw,
            secrets,
            at_seconds(now),
        )
    }

    fn check_ours(
        id: &str,
        timestamp: &str,
        signature: &str,
        raw: &[u8],
    ) -> Result<(), VerifyError> {
        check(
            id,
            timestamp,
            signature,
            raw,
            &[our_secret()],
            OUR_TIMESTAMP,
        )
    }

    #[test]
    fn the_specification_example_verifies() {
        let now = SPEC_TIMESTAMP.parse().expect("number");
        for secret in [SPEC_SECRET, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
            let secrets = [Secret::new(Provider::Standard, secret).expect("valid")];
            assert_eq!(
                check(
                    SPEC_ID,
                    SPEC_TIMESTAMP,
                    SPEC_SIGNATURE,
                    SPEC_BODY,
                    &secrets,
                    now
                ),
                Ok(())
            );
        }
        // The same JSON without the space is different bytes.
        let secrets = [Secret::new(Provider::Standard, SPEC_SECRET).expect("valid")];
        assert_eq!(
            check(
                SPEC_ID,
                SPEC_TIMESTAMP,
                SPEC_SIGNATURE,
                br#"{"test":2432232314}"#,
                &secrets,
                now
            ),
            Err(VerifyError::SignatureInvalid)
        );
    }

    #[test]
    fn our_own_delivery_verifies_and_parses() {
        let raw = our_body();
        let timestamp = OUR_TIMESTAMP.to_string();
        let signature = our_signature(OUR_ID, &timestamp, &raw);
        assert_eq!(check_ours(OUR_ID, &timestamp, &signature, &raw), Ok(()));
        assert_eq!(
            parse_body(Provider::Standard, &raw),
            Ok(vec![BankTransaction {
                provider: Provider::Standard,
                provider_transaction_id: "FT25001A7K".to_owned(),
                account_number: "0123456789".to_owned(),
                direction: Direction::In,
                amount: 150_000,
                description: "ND: TT8K2F9QX thanh toan hoc phi".to_owned(),
                occurred_at: utc("2024-12-31T23:59:30Z"),
                running_balance: Some(2_150_000),
                reference: Some("FT25001A7K".to_owned()),
                payer: None,
            }])
        );
    }

    #[test]
    fn any_flipped_byte_of_body_id_timestamp_or_signature_fails() {
        let raw = our_body();
        let timestamp = OUR_TIMESTAMP.to_string();
        let signature = our_signature(OUR_ID, &timestamp, &raw);
        for index in 0..raw.len() {
            assert_eq!(
                check_ours(OUR_ID, &timestamp, &signature, &flip(&raw, index)),
                Err(VerifyError::SignatureInvalid),
                "body flip at {index}"
            );
        }
        for index in 0..OUR_ID.len() {
            let id = flip_str(OUR_ID, index);
            assert!(
                check_ours(&id, &timestamp, &signature, &raw).is_err(),
                "id flip {index}"
            );
        }
        for index in 0..timestamp.len() {
            let ts = flip_str(&timestamp, index);
            assert!(
                check_ours(OUR_ID, &ts, &signature, &raw).is_err(),
                "ts flip {index}"
            );
        }
        for index in 0..signature.len() {
            let sig = flip_str(&signature, index);
            assert!(
                check_ours(OUR_ID, &timestamp, &sig, &raw).is_err(),
                "sig flip {index}"
            );
        }
    }

    #[test]
    fn a_reserialized_body_fails() {
        let raw = our_body();
        let timestamp = OUR_TIMESTAMP.to_string();
        let signature = our_signature(OUR_ID, &timestamp, &raw);
        let value: Value = serde_json::from_slice(&raw).expect("JSON");
        for reserialized in [
            serde_json::to_vec_pretty(&value).expect("serializable"),
            serde_json::to_vec(&value).expect("serializable"), // keys in another order
        ] {
            assert_ne!(reserialized, raw);
            assert_eq!(
                check_ours(OUR_ID, &timestamp, &signature, &reserialized),
                Err(VerifyError::SignatureInvalid)
            );
        }
    }

    #[test]
    fn old_and_future_timestamps_fail() {
        let raw = our_body();
        for (offset, expected) in [
            (-300, Ok(())),
            (300, Ok(())),
            (
                -301,
                Err(VerifyError::TimestampOutOfWindow { skew_seconds: 301 }),
            ),
            (
                86_400,
                Err(VerifyError::TimestampOutOfWindow {
                    skew_seconds: -86_400,
                }),
            ),
        ] {
            let timestamp = (OUR_TIMESTAMP + offset).to_string();
            let signature = our_signature(OUR_ID, &timestamp, &raw);
            assert_eq!(
                check_ours(OUR_ID, &timestamp, &signature, &raw),
                expected,
                "{offset}"
            );
        }
    }

    #[test]
    fn signature_lists_rotation_and_retired_secrets() {
        let raw = our_body();
        let timestamp = OUR_TIMESTAMP.to_string();
        let right = our_signature(OUR_ID, &timestamp, &raw);
        let wrong = format!("v1,{}", STANDARD.encode([0u8; 32]));
        // The sender signs with several keys during its own rotation; any v1 entry may match.
        let list = format!("{wrong} v1a,aGVsbG8= {right}");
        assert_eq!(check_ours(OUR_ID, &timestamp, &list, &raw), Ok(()));
        let other_version = right.replacen("v1,", "v2,", 1);
        assert_eq!(
            check_ours(OUR_ID, &timestamp, &other_version, &raw),
            Err(VerifyError::SignatureInvalid)
        );
        // We hold two secrets during our rotation; a retired one alone fails.
        let retired = Secret::new(Provider::Standard, "whsec_cmV0aXJlZC1rZXktMDEyMzQ1Njc4OQ==")
            .expect("valid");
        let now = OUR_TIMESTAMP;
        assert_eq!(
            check(
                OUR_ID,
                &timestamp,
                &right,
                &raw,
                &[retired.clone(), our_secret()],
                now
            ),
            Ok(())
        );
        assert_eq!(
            check(OUR_ID, &timestamp, &right, &raw, &[retired], now),
            Err(VerifyError::SignatureInvalid)
        );
    }

    #[test]
    fn missing_headers_and_bad_timestamps() {
        let raw = our_body();
        let secrets = [our_secret()];
        let now = at_seconds(OUR_TIMESTAMP);
        let partial = [("webhook-id", OUR_ID), ("webhook-timestamp", "1735689600")];
        assert_eq!(
            verify_delivery(Provider::Standard, &partial[..], &raw, &secrets, now)
                .map_err(|e| e.code()),
            Err("WEBHOOK_SIGNATURE_MISSING")
        );
        let signature = our_signature(OUR_ID, "1735689600000", &raw);
        assert_eq!(
            check_ours(OUR_ID, "1735689600000", &signature, &raw),
            Err(VerifyError::TimestampOutOfWindow {
                skew_seconds: -(1_735_689_600_000 - 1_735_689_600)
            }),
            "milliseconds are not seconds"
        );
        assert_eq!(
            check_ours(OUR_ID, "2025-01-01", &signature, &raw).map_err(|e| e.code()),
            Err("WEBHOOK_MALFORMED")
        );
    }

    #[test]
    fn bodies_that_are_not_our_shape_are_refused() {
        let base = json!({"type": "bank_transaction", "data": {
            "id": "T1", "account_number": "0123456789", "direction": "out", "amount": 50_000,
            "description": "rut tien", "occurred_at": "2025-01-01T08:00:00+07:00",
        }});
        let parsed = parse_body(
            Provider::Standard,
            &serde_json::to_vec(&base).expect("json"),
        )
        .expect("parses");
        assert_eq!(parsed[0].direction, Direction::Out);
        assert_eq!(
            (parsed[0].running_balance, parsed[0].reference.clone()),
            (None, None)
        );

        let with = |path: &str, value: Value| {
            let mut body = base.clone();
            match path.strip_prefix("data.") {
                Some(field) => body["data"][field] = value,
                None => body[path] = value,
            }
            parse_body(
                Provider::Standard,
                &serde_json::to_vec(&body).expect("json"),
            )
        };
        assert_eq!(
            with("type", json!("payout")),
            Err(ParseError::UnsupportedEventType {
                event_type: "payout".to_owned()
            })
        );
        assert_eq!(
            with("data.account_number", Value::Null),
            Err(ParseError::MissingField {
                field: "data.account_number".to_owned()
            })
        );
        assert_eq!(
            with("data.direction", json!("credit")),
            Err(ParseError::InvalidField {
                field: "data.direction".to_owned(),
                problem: "must be \"in\" or \"out\""
            })
        );
        assert_eq!(
            with("data.occurred_at", json!("2025-01-01 08:00:00")).map_err(|e| e.code()),
            Err("WEBHOOK_FIELD_INVALID")
        );
        assert_eq!(
            with("data.amount", json!(1.5)),
            Err(ParseError::AmountFractional {
                field: "data.amount".to_owned()
            })
        );
        assert_eq!(
            with("data.amount", json!(u64::MAX)),
            Err(ParseError::AmountOutOfRange {
                field: "data.amount".to_owned()
            })
        );
    }
}
