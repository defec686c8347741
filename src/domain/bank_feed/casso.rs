//! Casso. Webhook v2 signs each delivery: `X-Casso-Signature: t=<ms>,v1=<hex>`, where `v1` is
//! HMAC-SHA512 (hex) with the checksum key over `t + "." + ` the whole body re-serialized as
//! compact JSON with every object's keys sorted. The legacy v1 webhook only sends the
//! configured token back in a `Secure-Token` header, and its `data` is a list.
//!
//! Verified against the signed sample that Casso publishes with its verification code (the
//! fixture's `casso-v2-signature-sample`): separators `,` and `:` with no spaces, keys sorted at
//! every depth, integers as digits.

use hmac::Hmac;
use serde_json::Value;
use sha2::Sha512;

use super::canonical::{sorted_json, ESCAPE_LIKE_JAVASCRIPT, ESCAPE_LIKE_PHP, ESCAPE_LIKE_PYTHON};
use super::fields::{payer_account, Fields};
use super::{
    check_window_millis, mac_matches, parse_unix_timestamp, token_matches, BankTransaction,
    Direction, HeaderLookup, ParseError, Provider, Secret, VerifyError,
};
use crate::domain::payer::PayerAccount;

const SIGNATURE_HEADER: &str = "X-Casso-Signature";
const LEGACY_TOKEN_HEADER: &str = "Secure-Token";

pub(super) fn verify<H: HeaderLookup + ?Sized>(
    headers: &H,
    raw_body: &[u8],
    secrets: &[Secret],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), VerifyError> {
    // A v2 signature, when present, is what is checked: a token alongside it changes nothing.
    if let Some(header) = headers.header(SIGNATURE_HEADER) {
        return verify_v2(header, raw_body, secrets, now);
    }
    let token = headers
        .header(LEGACY_TOKEN_HEADER)
        .ok_or(VerifyError::SignatureMissing {
            expected: "X-Casso-Signature header",
        })?;
    if secrets
        .iter()
        .any(|secret| token_matches(token.trim(), secret))
    {
        Ok(())
    } else {
        Err(VerifyError::SignatureInvalid)
    }
}

fn verify_v2(
    header: &str,
    raw_body: &[u8],
    secrets: &[Secret],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), VerifyError> {
    let header = SignatureHeader::parse(header)?;
    let body: Value = serde_json::from_slice(raw_body)
        .map_err(|_| VerifyError::Malformed("the body is not JSON"))?;
    let messages = signed_messages(header.timestamp, &body);
    let matches = secrets.iter().any(|secret| {
        messages.iter().any(|message| {
            header.signatures.iter().any(|signature| {
                mac_matches::<Hmac<Sha512>>(secret.key(), &[message.as_bytes()], signature)
            })
        })
    });
    if !matches {
        return Err(VerifyError::SignatureInvalid);
    }
    check_window_millis(header.signed_at_millis, now)
}

/// The parts of `X-Casso-Signature`.
struct SignatureHeader<'a> {
    /// The `t` value exactly as sent: it is part of the signed message.
    timestamp: &'a str,
    signed_at_millis: i64,
    /// Every decodable `v1` value; one that is not hex cannot match and is dropped.
    signatures: Vec<Vec<u8>>,
}

impl<'a> SignatureHeader<'a> {
    fn parse(header: &'a str) -> Result<Self, VerifyError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        let mut has_v1 = false;
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", _)) if timestamp.is_some() => {
                    return Err(VerifyError::Malformed("X-Casso-Signature has two t values"));
                }
                Some(("t", value)) => timestamp = Some(value),
                Some(("v1", value)) => {
                    has_v1 = true;
                    signatures.extend(hex::decode(value).ok());
                }
                // Unknown parts (a future scheme version) are ignored, as with Stripe-style
                // headers, so that adding one does not break verification.
                _ => {}
            }
        }
        let timestamp =
            timestamp.ok_or(VerifyError::Malformed("X-Casso-Signature has no t value"))?;
        let signed_at_millis = parse_unix_timestamp(timestamp).ok_or(VerifyError::Malformed(
            "X-Casso-Signature t is not a millisecond timestamp",
        ))?;
        if !has_v1 {
            return Err(VerifyError::Malformed("X-Casso-Signature has no v1 value"));
        }
        Ok(SignatureHeader {
            timestamp,
            signed_at_millis,
            signatures,
        })
    }
}

/// The candidate signed messages `t + "." + sorted JSON`. Casso's published verifiers print the
/// sorted body with JSON.stringify (JavaScript), Jackson (Java), json.dumps (Python) or
/// json_encode (PHP); these agree on ASCII text without `/`, which is all the published sample
/// holds, and differ in escaping otherwise. Which one Casso's signer matches is not documented,
/// so each distinct rendering is tried. All are valid JSON for the same parsed body, so a match
/// on any of them still proves the key holder signed exactly these values.
fn signed_messages(timestamp: &str, body: &Value) -> Vec<String> {
    let mut messages: Vec<String> = Vec::with_capacity(3);
    for escaping in [ESCAPE_LIKE_JAVASCRIPT, ESCAPE_LIKE_PYTHON, ESCAPE_LIKE_PHP] {
        let message = format!("{timestamp}.{}", sorted_json(body, escaping));
        if !messages.contains(&message) {
            messages.push(message);
        }
    }
    messages
}

/// A v2 body (`data` is one transaction) or a legacy v1 body (`data` is a list). Casso reports
/// money out as a negative `amount`.
pub(super) fn parse(body: &Value) -> Result<Vec<BankTransaction>, ParseError> {
    let root = Fields::root(body)?;
    // `error` is 0 on every delivery that carries transactions.
    if let Some(error) = root.get("error") {
        if *error != 0 {
            return Err(ParseError::ProviderReportedError {
                code: error.to_string(),
            });
        }
    }
    match root.required("data")? {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| parse_v1(&Fields::at(item, format!("data[{index}]"))?))
            .collect(),
        data => Ok(vec![parse_v2(&Fields::at(data, "data".to_owned())?)?]),
    }
}

fn parse_v2(data: &Fields<'_>) -> Result<BankTransaction, ParseError> {
    let (direction, amount) = split_sign(data.nonzero_amount("amount")?);
    Ok(BankTransaction {
        provider: Provider::Casso,
        provider_transaction_id: data.identifier("id")?,
        account_number: data.required_text("accountNumber")?,
        direction,
        amount,
        description: data.text_or_empty("description")?,
        occurred_at: data.local_time("transactionDateTime")?,
        running_balance: data.optional_balance("runningBalance")?,
        reference: data.optional_text("reference")?,
        payer: casso_payer(data),
    })
}

/// Legacy v1 field names: `tid` is the bank's transaction id, `bank_sub_acc_id` the monitored
/// account, `cusum_balance` the running balance, `when` the booking time.
fn parse_v1(item: &Fields<'_>) -> Result<BankTransaction, ParseError> {
    let (direction, amount) = split_sign(item.nonzero_amount("amount")?);
    Ok(BankTransaction {
        provider: Provider::Casso,
        provider_transaction_id: item.identifier("id")?,
        account_number: item.required_text("bank_sub_acc_id")?,
        direction,
        amount,
        description: item.text_or_empty("description")?,
        occurred_at: item.local_time("when")?,
        running_balance: item.optional_balance("cusum_balance")?,
        reference: item.optional_text("tid")?,
        payer: casso_payer(item),
    })
}

/// The payer's account: Casso v2 names it `counterAccountBankId`/`counterAccountNumber`,
/// legacy v1 (and some v2 deliveries) `corresponsiveBankId`/`corresponsiveAccount`; whichever
/// pair reads as an account.
fn casso_payer(fields: &Fields<'_>) -> Option<PayerAccount> {
    payer_account(fields, "counterAccountBankId", "counterAccountNumber")
        .or_else(|| payer_account(fields, "corresponsiveBankId", "corresponsiveAccount"))
}

/// A signed Casso amount as a direction and a positive amount. The amount was already bounded
/// by `MAX_AMOUNT_MINOR`, so `abs` cannot overflow.
fn split_sign(signed: i64) -> (Direction, i64) {
    let direction = if signed < 0 {
        Direction::Out
    } else {
        Direction::In
    };
    (direction, signed.abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bank_feed::test_support::{
        at_millis, compact, flip, flip_str, pretty, sample, sign, utc,
    };
    use crate::domain::bank_feed::{parse as parse_body, verify as verify_delivery};
    use serde_json::json;

    struct Signed {
        body: Value,
        header: String,
        secret: Secret,
        signed_at_millis: i64,
    }

    fn published() -> Signed {
        let sample = sample("casso_v2", "casso-v2-signature-sample");
        let header = sample["headers"]["X-Casso-Signature"]
            .as_str()
            .expect("header")
            .to_owned();
        let key = sample["checksum_key"].as_str().expect("key");
        Signed {
            body: sample["body"].clone(),
            header,
            secret: Secret::new(Provider::Casso, key).expect("valid"),
            signed_at_millis: 1_727_948_258_788,
        }
    }

    fn check(
        header: &str,
        raw: &[u8],
        secrets: &[Secret],
        now_millis: i64,
    ) -> Result<(), VerifyError> {
        let headers = [("x-casso-signature", header)];
        verify_delivery(
            Provider::Casso,
            &headers[..],
            raw,
            secrets,
            at_millis(now_millis),
        )
    }

    /// A header signing `message` (already `t.` prefixed) with `key` at `t`.
    fn header_for(key: &[u8], t: i64, message: &str) -> String {
        let mac = sign::<Hmac<Sha512>>(key, &[message.as_bytes()]);
        format!("t={t},v1={}", hex::encode(mac))
    }

    fn other_secret(text: &str) -> Secret {
        Secret::new(Provider::Casso, text).expect("valid")
    }

    #[test]
    fn the_published_sample_verifies() {
        let s = published();
        for raw in [compact(&s.body), pretty(&s.body)] {
            assert_eq!(
                check(
                    &s.header,
                    &raw,
                    std::slice::from_ref(&s.secret),
                    s.signed_at_millis
                ),
                Ok(())
            );
        }
        // Casso signs a canonical form: the key order of the raw body does not matter.
        let reordered = br#"{"error":0,"data":{"counterAccountBankName":"VietinBank","counterAccountBankId":"970415","counterAccountNumber":"8888888888","counterAccountName":"NGUYEN VAN A","virtualAccountName":"","virtualAccountNumber":"","bankAbbreviation":"VPB","bankName":"VPBank","accountNumber":"88888888","transactionDateTime":"2024-10-03 15:06:37","runningBalance":25000000,"amount":599000,"description":"giao dich thu nghiem","reference":"MA_GIAO_DICH_THU_NGHIEM","id":0}}"#;
        assert_eq!(
            check(&s.header, reordered, &[s.secret], s.signed_at_millis),
            Ok(())
        );
    }

    #[test]
    fn the_signed_message_is_compact_key_sorted_json() {
        let s = published();
        let messages = signed_messages("1727948258788", &s.body);
        assert_eq!(messages.len(), 1, "ASCII without '/' renders one way");
        assert_eq!(
            messages[0],
            "1727948258788.{\"data\":{\"accountNumber\":\"88888888\",\"amount\":599000,\
             \"bankAbbreviation\":\"VPB\",\"bankName\":\"VPBank\",\
             \"counterAccountBankId\":\"970415\",\"counterAccountBankName\":\"VietinBank\",\
             \"counterAccountName\":\"NGUYEN VAN A\",\"counterAccountNumber\":\"8888888888\",\
             \"description\":\"giao dich thu nghiem\",\"id\":0,\
             \"reference\":\"MA_GIAO_DICH_THU_NGHIEM\",\"runningBalance\":25000000,\
             \"transactionDateTime\":\"2024-10-03 15:06:37\",\"virtualAccountName\":\"\",\
             \"virtualAccountNumber\":\"\"},\"error\":0}"
        );
    }

    #[test]
    fn any_flipped_byte_of_body_or_header_fails() {
        let s = published();
        let secrets = [s.secret.clone()];
        for raw in [compact(&s.body), pretty(&s.body)] {
            for index in 0..raw.len() {
                let result = check(&s.header, &flip(&raw, index), &secrets, s.signed_at_millis);
                assert!(result.is_err(), "body flip at {index} verified");
            }
        }
        let raw = compact(&s.body);
        for index in 0..s.header.len() {
            let header = flip_str(&s.header, index);
            let result = check(&header, &raw, &secrets, s.signed_at_millis);
            assert!(result.is_err(), "header flip at {index} verified");
        }
    }

    #[test]
    fn old_and_future_timestamps_fail_after_the_signature_checks_out() {
        let s = published();
        let raw = compact(&s.body);
        let secrets = [s.secret.clone()];
        let t = s.signed_at_millis;
        assert_eq!(check(&s.header, &raw, &secrets, t + 300_000), Ok(()));
        assert_eq!(check(&s.header, &raw, &secrets, t - 300_000), Ok(()));
        assert_eq!(
            check(&s.header, &raw, &secrets, t + 300_001),
            Err(VerifyError::TimestampOutOfWindow { skew_seconds: 300 })
        );
        assert_eq!(
            check(&s.header, &raw, &secrets, t - 3_600_000),
            Err(VerifyError::TimestampOutOfWindow {
                skew_seconds: -3600
            })
        );
    }

    #[test]
    fn rotation_accepts_either_active_secret_and_refuses_a_retired_one() {
        let s = published();
        let raw = compact(&s.body);
        let retired = other_secret("retired-checksum-key");
        let t = s.signed_at_millis;
        assert_eq!(
            check(&s.header, &raw, &[retired.clone(), s.secret.clone()], t),
            Ok(())
        );
        assert_eq!(
            check(&s.header, &raw, &[retired], t),
            Err(VerifyError::SignatureInvalid)
        );
    }

    #[test]
    fn non_ascii_memos_verify_under_each_published_json_rendering() {
        let key = b"checksum-key";
        let secrets = [other_secret("checksum-key")];
        let t = 1_734_924_830_020;
        let body = json!({"error": 0, "data": {
            "id": 218_897, "amount": 150_000, "accountNumber": "123456789",
            "description": "Nguyễn Văn A chuyển tiền/ăn sáng",
            "transactionDateTime": "2024-12-23 07:00:00",
        }});
        let raw = compact(&body);
        for escaping in [ESCAPE_LIKE_JAVASCRIPT, ESCAPE_LIKE_PYTHON, ESCAPE_LIKE_PHP] {
            let message = format!("{t}.{}", sorted_json(&body, escaping));
            assert_eq!(
                check(&header_for(key, t, &message), &raw, &secrets, t),
                Ok(())
            );
        }
        // Any other serialization of the body is not Casso's signed form.
        let spaced = format!("{t}.{}", String::from_utf8(pretty(&body)).expect("UTF-8"));
        assert_eq!(
            check(&header_for(key, t, &spaced), &raw, &secrets, t),
            Err(VerifyError::SignatureInvalid)
        );
    }

    #[test]
    fn signature_header_forms() {
        let s = published();
        let raw = compact(&s.body);
        let secrets = [s.secret.clone()];
        let t = s.signed_at_millis;
        let v1 = s.header.split_once(",v1=").expect("v1").1;
        let malformed = |header: &str| check(header, &raw, &secrets, t).map_err(|e| e.code());
        for header in [
            format!("v1={v1}"),
            format!("t=,v1={v1}"),
            format!("t=-1727948258788,v1={v1}"),
            format!("t={t},t={t},v1={v1}"),
            format!("t={t}"),
        ] {
            assert_eq!(malformed(&header), Err("WEBHOOK_MALFORMED"), "{header}");
        }
        // Several v1 values (as during a key change) and unknown parts are fine.
        let several = format!("t={t}, v0=abc, v1=zz, v1={}, v1={v1}", "00".repeat(64));
        assert_eq!(check(&several, &raw, &secrets, t), Ok(()));
        let headers: [(&str, &str); 0] = [];
        assert_eq!(
            verify_delivery(Provider::Casso, &headers[..], &raw, &secrets, at_millis(t)),
            Err(VerifyError::SignatureMissing {
                expected: "X-Casso-Signature header"
            })
        );
    }

    #[test]
    fn legacy_secure_token() {
        let v1 = sample("casso_v1_legacy", "casso-v1-legacy");
        let raw = compact(&v1["body"]);
        let secrets = [other_secret("old-token"), other_secret("my-secure-token")];
        let now = utc("2022-11-15T15:25:00Z");
        let with_token = |token: &str| {
            let headers = [("Secure-Token", token)];
            verify_delivery(Provider::Casso, &headers[..], &raw, &secrets, now)
        };
        assert_eq!(with_token("my-secure-token"), Ok(()));
        assert_eq!(with_token("old-token"), Ok(()));
        assert_eq!(
            with_token("my-secure-tokeN"),
            Err(VerifyError::SignatureInvalid)
        );
        assert_eq!(with_token(""), Err(VerifyError::SignatureInvalid));
        // A v2 header present is what counts, even next to a correct token.
        let headers = [
            ("Secure-Token", "my-secure-token"),
            ("X-Casso-Signature", "t=1668525900000,v1=00"),
        ];
        assert_eq!(
            verify_delivery(Provider::Casso, &headers[..], &raw, &secrets, now),
            Err(VerifyError::SignatureInvalid)
        );
    }

    #[test]
    fn the_v2_sample_parses() {
        let s = published();
        assert_eq!(
            parse_body(Provider::Casso, &compact(&s.body)),
            Ok(vec![BankTransaction {
                provider: Provider::Casso,
                provider_transaction_id: "0".to_owned(),
                account_number: "88888888".to_owned(),
                direction: Direction::In,
                amount: 599_000,
                description: "giao dich thu nghiem".to_owned(),
                occurred_at: utc("2024-10-03T15:06:37+07:00"),
                running_balance: Some(25_000_000),
                reference: Some("MA_GIAO_DICH_THU_NGHIEM".to_owned()),
                payer: PayerAccount::parse(Some("970415"), Some("8888888888")),
            }])
        );
    }

    #[test]
    fn the_v1_legacy_sample_parses() {
        let v1 = sample("casso_v1_legacy", "casso-v1-legacy");
        let parsed = parse_body(Provider::Casso, &compact(&v1["body"])).expect("parses");
        assert_eq!(
            parsed,
            vec![BankTransaction {
                provider: Provider::Casso,
                provider_transaction_id: "1844887".to_owned(),
                account_number: "105877347307".to_owned(),
                direction: Direction::In,
                amount: 5000,
                description: "ND:CT DEN:231915042064 MBVCB.2707051024.042064.Bill 4.CT tu \
                              0451001536775 DAO QUOC DAI toi 105877347307 DO XUAN VIET Ngan \
                              hang Cong Thuong Viet Nam (VIETINBANK); tai Napas"
                    .to_owned(),
                occurred_at: utc("2022-11-15T22:25:00+07:00"),
                running_balance: Some(55_000),
                reference: Some("246745".to_owned()),
                payer: None,
            }]
        );
    }

    #[test]
    fn the_v1_corresponsive_account_is_the_payer() {
        let mut v1 = sample("casso_v1_legacy", "casso-v1-legacy");
        v1["body"]["data"][0]["corresponsiveBankId"] = json!("970436");
        v1["body"]["data"][0]["corresponsiveAccount"] = json!("0451001536775");
        let parsed = parse_body(Provider::Casso, &compact(&v1["body"])).expect("parses");
        assert_eq!(
            parsed[0].payer,
            PayerAccount::parse(Some("970436"), Some("0451001536775"))
        );
        assert_eq!(
            parsed[0].payer.as_ref().map(PayerAccount::last4).as_deref(),
            Some("6775")
        );
    }

    #[test]
    fn negative_amounts_are_money_out_and_errors_are_not_transactions() {
        let mut body = published().body;
        body["data"]["amount"] = json!(-120_000);
        let parsed = parse_body(Provider::Casso, &compact(&body)).expect("parses");
        assert_eq!(
            (parsed[0].direction, parsed[0].amount),
            (Direction::Out, 120_000)
        );

        body["data"]["amount"] = json!(0);
        assert_eq!(
            parse_body(Provider::Casso, &compact(&body)),
            Err(ParseError::AmountNotPositive {
                field: "data.amount".to_owned()
            })
        );
        assert_eq!(
            parse_body(Provider::Casso, br#"{"error": 1, "data": null}"#),
            Err(ParseError::ProviderReportedError {
                code: "1".to_owned()
            })
        );
        assert_eq!(
            parse_body(Provider::Casso, br#"{"error": 0, "data": []}"#),
            Ok(vec![])
        );
        assert_eq!(
            parse_body(Provider::Casso, br#"{"error": 0, "data": [{"id": 1}]}"#),
            Err(ParseError::MissingField {
                field: "data[0].amount".to_owned()
            })
        );
    }
}
