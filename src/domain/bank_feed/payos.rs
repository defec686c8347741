//! payOS: the body carries its own signature, an HMAC-SHA256 (hex) over the `data` object.
//!
//! The signed string is `data`'s fields sorted by key, joined as `k=v&k=v`, with each value
//! printed the way payOS's SDKs print it: strings as they are (no escaping or URL-encoding),
//! numbers and booleans as JavaScript prints them, `null` and the strings `"null"` and
//! `"undefined"` as nothing, and an array of objects as `JSON.stringify` of it with each
//! object's keys sorted. Checked against payOS's documented sample (tests below).
//!
//! Only `data` is signed: the top-level `code`, `desc` and `success` are not, so nothing here
//! reads them.

use hmac::Hmac;
use serde_json::{Map, Value};
use sha2::Sha256;

use super::canonical::{javascript_number, sorted_json, sorted_keys, ESCAPE_LIKE_JAVASCRIPT};
use super::fields::{payer_account, Fields};
use super::{mac_matches, BankTransaction, Direction, ParseError, Provider, Secret, VerifyError};

pub(super) fn verify(raw_body: &[u8], secrets: &[Secret]) -> Result<(), VerifyError> {
    let body: Value = serde_json::from_slice(raw_body)
        .map_err(|_| VerifyError::Malformed("the body is not JSON"))?;
    let Value::Object(body) = &body else {
        return Err(VerifyError::Malformed("the body is not a JSON object"));
    };
    let signature = match body.get("signature") {
        None | Some(Value::Null) => {
            return Err(VerifyError::SignatureMissing {
                expected: "`signature` field",
            })
        }
        Some(Value::String(signature)) => signature,
        Some(_) => return Err(VerifyError::Malformed("`signature` is not a string")),
    };
    let data = body
        .get("data")
        .and_then(Value::as_object)
        .ok_or(VerifyError::Malformed("the body has no `data` object"))?;
    let signed = signing_string(data)?;
    // Text that is not hex cannot be the MAC of anything.
    let signature = hex::decode(signature.trim()).map_err(|_| VerifyError::SignatureInvalid)?;
    let matches = secrets
        .iter()
        .any(|secret| mac_matches::<Hmac<Sha256>>(secret.key(), &[signed.as_bytes()], &signature));
    if matches {
        Ok(())
    } else {
        Err(VerifyError::SignatureInvalid)
    }
}

/// `k=v&k=v` over `data`, keys in JavaScript sort order.
fn signing_string(data: &Map<String, Value>) -> Result<String, VerifyError> {
    let pairs = sorted_keys(data)
        .into_iter()
        .map(|key| Ok(format!("{key}={}", signed_value(&data[key.as_str()])?)))
        .collect::<Result<Vec<_>, VerifyError>>()?;
    Ok(pairs.join("&"))
}

fn signed_value(value: &Value) -> Result<String, VerifyError> {
    Ok(match value {
        Value::Null => String::new(),
        Value::String(text) if text == "null" || text == "undefined" => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => javascript_number(number),
        // The SDKs sort the keys of each element and JSON.stringify the array. They turn any
        // other element into `{}` (JS) or fail (PHP), so such an array's contents would not be
        // covered by the signature: refuse it rather than accept unsigned values.
        Value::Array(items) if items.iter().all(Value::is_object) => {
            sorted_json(value, ESCAPE_LIKE_JAVASCRIPT)
        }
        Value::Array(_) => {
            return Err(VerifyError::Malformed(
                "payOS `data` holds an array of non-objects, which its signing rule does not cover",
            ))
        }
        // The JS SDK prints a nested object as "[object Object]", which would sign none of its
        // contents: refuse it for the same reason.
        Value::Object(_) => {
            return Err(VerifyError::Malformed(
                "payOS `data` holds a nested object, which its signing rule does not cover",
            ))
        }
    })
}

/// A payOS payment notification. payOS reports only money received, so the direction is
/// always in. Its `data.reference` (the bank's transaction reference) identifies the transfer:
/// one payment link can be paid by several transfers, each with its own reference, while
/// payOS retries of one transfer repeat it.
pub(super) fn parse(body: &Value) -> Result<BankTransaction, ParseError> {
    let data = Fields::root(body)?.object("data")?;
    if let Some(code) = data.optional_text("code")? {
        if code != "00" {
            return Err(ParseError::ProviderReportedError { code });
        }
    }
    if let Some(currency) = data.optional_text("currency")? {
        if currency != "VND" {
            return Err(ParseError::InvalidField {
                field: data.path_of("currency"),
                problem: "must be VND",
            });
        }
    }
    let reference = data.required_text("reference")?;
    Ok(BankTransaction {
        provider: Provider::PayOs,
        provider_transaction_id: reference.clone(),
        account_number: data.required_text("accountNumber")?,
        direction: Direction::In,
        amount: data.positive_amount("amount")?,
        description: data.text_or_empty("description")?,
        occurred_at: data.local_time("transactionDateTime")?,
        running_balance: None,
        reference: Some(reference),
        payer: payer_account(&data, "counterAccountBankId", "counterAccountNumber"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bank_feed::test_support::{compact, flip, pretty, sample, sign, utc};
    use crate::domain::bank_feed::{parse as parse_body, verify as verify_delivery};
    use chrono::Utc;
    use serde_json::json;

    const NO_HEADERS: [(&str, &str); 0] = [];

    fn official() -> (Value, Secret) {
        let sample = sample("payos", "payos-official-doc-sample");
        let key = sample["checksum_key"].as_str().expect("key").to_owned();
        (
            sample["body"].clone(),
            Secret::new(Provider::PayOs, &key).expect("valid"),
        )
    }

    fn check(raw: &[u8], secrets: &[Secret]) -> Result<(), VerifyError> {
        verify_delivery(Provider::PayOs, &NO_HEADERS[..], raw, secrets, Utc::now())
    }

    fn other_secret(text: &str) -> Secret {
        Secret::new(Provider::PayOs, text).expect("valid")
    }

    #[test]
    fn the_official_sample_verifies() {
        let (body, secret) = official();
        let secrets = [secret];
        assert_eq!(check(&compact(&body), &secrets), Ok(()));
        // payOS signs a canonical form, not the bytes: re-serializing does not matter.
        assert_eq!(check(&pretty(&body), &secrets), Ok(()));
    }

    #[test]
    fn the_signing_string_renders_values_as_payos_does() {
        let (body, _) = official();
        let data = body["data"].as_object().expect("object");
        assert_eq!(
            signing_string(data),
            Ok(
                "accountNumber=12345678&amount=3000&code=00&counterAccountBankId=\
                &counterAccountBankName=&counterAccountName=&counterAccountNumber=\
                &currency=VND&desc=Thành công&description=VQRIO123&orderCode=123\
                &paymentLinkId=124c33293c43417ab7879e14c8d9eb18&reference=TF230204212323\
                &transactionDateTime=2023-02-04 18:25:00&virtualAccountName=\
                &virtualAccountNumber="
                    .to_owned()
            )
        );
    }

    #[test]
    fn any_flipped_byte_of_data_or_signature_fails() {
        let (body, secret) = official();
        let raw = compact(&body);
        let span_of = |needle: &[u8]| {
            let start = raw
                .windows(needle.len())
                .position(|window| window == needle)
                .expect("present in the body");
            start..start + needle.len()
        };
        let data_span = span_of(&compact(&body["data"]));
        let signature_span = span_of(body["signature"].as_str().expect("string").as_bytes());
        for index in 0..raw.len() {
            let tampered = flip(&raw, index);
            let result = check(&tampered, std::slice::from_ref(&secret));
            if data_span.contains(&index) || signature_span.contains(&index) {
                assert!(result.is_err(), "flip at {index} verified");
            } else if result.is_ok() {
                // Only the top-level code/desc/success are outside the signature.
                let tampered: Value = serde_json::from_slice(&tampered).expect("verified as JSON");
                assert_eq!(tampered["data"], body["data"], "flip at {index}");
                assert_eq!(tampered["signature"], body["signature"], "flip at {index}");
            }
        }
    }

    #[test]
    fn unsigned_top_level_fields_change_nothing() {
        let (mut body, secret) = official();
        let original = parse_body(Provider::PayOs, &compact(&body)).expect("parses");
        body["code"] = json!("99");
        body["success"] = json!(false);
        let raw = compact(&body);
        assert_eq!(check(&raw, &[secret]), Ok(()));
        assert_eq!(parse_body(Provider::PayOs, &raw), Ok(original));
    }

    #[test]
    fn rotation_accepts_either_active_secret_and_refuses_a_retired_one() {
        let (body, secret) = official();
        let raw = compact(&body);
        let retired = other_secret("retired-checksum-key");
        assert_eq!(check(&raw, &[retired.clone(), secret.clone()]), Ok(()));
        assert_eq!(check(&raw, &[secret, retired.clone()]), Ok(()));
        assert_eq!(check(&raw, &[retired]), Err(VerifyError::SignatureInvalid));
    }

    #[test]
    fn missing_or_unusable_signatures_are_refused() {
        let (body, secret) = official();
        let secrets = [secret];
        let without = |edit: fn(&mut Value)| {
            let mut body = body.clone();
            edit(&mut body);
            check(&compact(&body), &secrets)
        };
        let missing = Err(VerifyError::SignatureMissing {
            expected: "`signature` field",
        });
        assert_eq!(
            without(|b| {
                b.as_object_mut().expect("object").remove("signature");
            }),
            missing
        );
        assert_eq!(without(|b| b["signature"] = Value::Null), missing);
        assert_eq!(
            without(|b| b["signature"] = json!("not hex")),
            Err(VerifyError::SignatureInvalid)
        );
        assert_eq!(
            without(|b| b["signature"] = json!(412)),
            Err(VerifyError::Malformed("`signature` is not a string"))
        );
        assert_eq!(
            without(|b| b["data"] = json!("x")),
            Err(VerifyError::Malformed("the body has no `data` object"))
        );
        assert_eq!(
            check(b"not json", &secrets),
            Err(VerifyError::Malformed("the body is not JSON"))
        );
    }

    #[test]
    fn nulls_booleans_doubles_and_arrays_render_per_the_sdk() {
        let secret = other_secret("k");
        let data = json!({
            "orderCode": 7,
            "amount": 5000.0,
            "cancel": false,
            "buyerName": null,
            "note": "undefined",
            "items": [{"quantity": 1, "name": "Chè Tân Cương"}],
        });
        let expected = "amount=5000&buyerName=&cancel=false\
                        &items=[{\"name\":\"Chè Tân Cương\",\"quantity\":1}]&note=&orderCode=7";
        assert_eq!(
            signing_string(data.as_object().expect("object")),
            Ok(expected.to_owned())
        );
        let signature = hex::encode(sign::<Hmac<Sha256>>(b"k", &[expected.as_bytes()]));
        let body = json!({ "data": data, "signature": signature });
        assert_eq!(check(&compact(&body), &[secret]), Ok(()));
    }

    #[test]
    fn values_the_signing_rule_cannot_cover_are_refused() {
        let secret = other_secret("k");
        for data in [json!({"buyer": {"name": "A"}}), json!({"items": [1, 2]})] {
            let body = json!({ "data": data, "signature": "00" });
            assert_eq!(
                check(&compact(&body), std::slice::from_ref(&secret)).map_err(|e| e.code()),
                Err("WEBHOOK_MALFORMED")
            );
        }
    }

    #[test]
    fn the_official_sample_parses() {
        let (body, _) = official();
        assert_eq!(
            parse_body(Provider::PayOs, &compact(&body)),
            Ok(vec![BankTransaction {
                provider: Provider::PayOs,
                provider_transaction_id: "TF230204212323".to_owned(),
                account_number: "12345678".to_owned(),
                direction: Direction::In,
                amount: 3000,
                description: "VQRIO123".to_owned(),
                occurred_at: utc("2023-02-04T18:25:00+07:00"),
                running_balance: None,
                reference: Some("TF230204212323".to_owned()),
                payer: None,
            }])
        );
    }

    #[test]
    fn the_counter_account_is_the_payer_and_a_malformed_one_is_ignored() {
        let (body, _) = official();
        let with = |bin: Value, number: Value| {
            let mut body = body.clone();
            body["data"]["counterAccountBankId"] = bin;
            body["data"]["counterAccountNumber"] = number;
            parse_body(Provider::PayOs, &compact(&body)).expect("parses")[0]
                .payer
                .clone()
        };
        let payer = with(json!("970415"), json!("8888888888")).expect("a payer");
        assert_eq!(
            (payer.bank_bin.as_str(), payer.account_number.as_str()),
            ("970415", "8888888888")
        );
        assert_eq!(payer.last4(), "8888");
        assert_eq!(with(json!(970415), json!(" 8888888888 ")), Some(payer));
        assert_eq!(with(json!("VietinBank"), json!("8888888888")), None);
        assert_eq!(with(json!("970415"), json!({"x": 1})), None);
        assert_eq!(with(Value::Null, json!("8888888888")), None);
    }

    #[test]
    fn failed_events_and_other_currencies_are_not_transactions() {
        let (body, _) = official();
        let with = |field: &str, value: Value| {
            let mut body = body.clone();
            body["data"][field] = value;
            parse_body(Provider::PayOs, &compact(&body))
        };
        assert_eq!(
            with("code", json!("01")),
            Err(ParseError::ProviderReportedError {
                code: "01".to_owned()
            })
        );
        assert_eq!(
            with("currency", json!("USD")),
            Err(ParseError::InvalidField {
                field: "data.currency".to_owned(),
                problem: "must be VND"
            })
        );
        assert_eq!(
            with("amount", json!(0)),
            Err(ParseError::AmountNotPositive {
                field: "data.amount".to_owned()
            })
        );
        assert_eq!(
            with("reference", json!("")),
            Err(ParseError::MissingField {
                field: "data.reference".to_owned()
            })
        );
    }
}
