//! Deliveries as the aggregators send them, signed as their documentation and SDKs sign:
//! payOS (HMAC-SHA256 over `data`'s sorted fields), Casso v2 (HMAC-SHA512 over `t.` and the
//! sorted body), SePay (an `Apikey` header) and Standard Webhooks (HMAC-SHA256 over
//! `id.timestamp.body`). The test-delivery command and route and the simulation hand these
//! bytes to the same use case the webhook route calls.

use chrono::NaiveDateTime;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Sha256, Sha512};

use base64::Engine as _;

use super::{Provider, Secret};

/// One incoming transfer as a bank reports it.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// The aggregator's id for it, unique per provider.
    pub id: u64,
    /// Our collection account the money arrived on.
    pub account_number: String,
    pub amount: i64,
    pub memo: String,
    /// When the bank booked it, Vietnam time.
    pub booked_at: NaiveDateTime,
    /// The payer's bank BIN, account number and name, where the aggregator reports them.
    pub payer: Option<(String, String, String)>,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub provider: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The delivery `provider` would send for `transfer`, signed with `secret`, at `now_millis`.
pub fn delivery(
    provider: Provider,
    secret: &Secret,
    transfer: &Transfer,
    now_millis: i64,
) -> Delivery {
    let booked = transfer.booked_at.format("%Y-%m-%d %H:%M:%S").to_string();
    let reference = format!("FT{:014}", transfer.id);
    let (bin, number, name) = transfer.payer.clone().unwrap_or_default();
    match provider {
        Provider::PayOs => {
            let data = json!({
                "orderCode": transfer.id, "amount": transfer.amount,
                "description": transfer.memo, "accountNumber": transfer.account_number,
                "reference": reference, "transactionDateTime": booked, "currency": "VND",
                "paymentLinkId": format!("{:032x}", transfer.id), "code": "00", "desc": "Thành công",
                "counterAccountBankId": bin, "counterAccountBankName": "",
                "counterAccountName": name, "counterAccountNumber": number,
                "virtualAccountName": "", "virtualAccountNumber": "",
            });
            let signature =
                hex_hmac::<Hmac<Sha256>>(secret.key(), &[payos_signing_string(&data).as_bytes()]);
            let body = json!({
                "code": "00", "desc": "success", "success": true,
                "data": data, "signature": signature,
            });
            Delivery {
                provider: "payos",
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: serde_json::to_vec(&body).expect("JSON values serialize"),
            }
        }
        Provider::Casso => {
            let body = json!({
                "error": 0,
                "data": {
                    "id": transfer.id, "reference": reference, "description": transfer.memo,
                    "amount": transfer.amount, "transactionDateTime": booked,
                    "accountNumber": transfer.account_number, "bankName": "Vietcombank",
                    "bankAbbreviation": "VCB", "virtualAccountNumber": "",
                    "virtualAccountName": "", "counterAccountName": name,
                    "counterAccountNumber": number, "counterAccountBankId": bin,
                    "counterAccountBankName": "",
                }
            });
            // serde_json's map keeps keys sorted, which is the order Casso signs in.
            let bytes = serde_json::to_vec(&body).expect("JSON values serialize");
            let signature = hex_hmac::<Hmac<Sha512>>(
                secret.key(),
                &[format!("{now_millis}.").as_bytes(), &bytes],
            );
            Delivery {
                provider: "casso",
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    (
                        "X-Casso-Signature".into(),
                        format!("t={now_millis},v1={signature}"),
                    ),
                ],
                body: bytes,
            }
        }
        Provider::SePay => {
            let body = json!({
                "id": transfer.id, "gateway": "Vietcombank", "transactionDate": booked,
                "accountNumber": transfer.account_number, "code": null,
                "content": transfer.memo, "transferType": "in",
                "transferAmount": transfer.amount, "accumulated": null, "subAccount": null,
                "referenceCode": reference, "description": "",
            });
            Delivery {
                provider: "sepay",
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    (
                        "Authorization".into(),
                        format!("Apikey {}", String::from_utf8_lossy(secret.key())),
                    ),
                ],
                body: serde_json::to_vec(&body).expect("JSON values serialize"),
            }
        }
        Provider::Standard => {
            let body = json!({
                "type": "bank_transaction",
                "data": {
                    "id": transfer.id.to_string(), "account_number": transfer.account_number,
                    "direction": "in", "amount": transfer.amount, "description": transfer.memo,
                    "occurred_at": format!("{}+07:00", transfer.booked_at.format("%Y-%m-%dT%H:%M:%S")),
                    "reference": reference,
                }
            });
            let bytes = serde_json::to_vec(&body).expect("JSON values serialize");
            let id = format!("msg_{}", transfer.id);
            let seconds = now_millis / 1000;
            let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(secret.key())
                .expect("HMAC takes any key length");
            mac.update(format!("{id}.{seconds}.").as_bytes());
            mac.update(&bytes);
            let signature =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            Delivery {
                provider: "standard",
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("webhook-id".into(), id),
                    ("webhook-timestamp".into(), seconds.to_string()),
                    ("webhook-signature".into(), format!("v1,{signature}")),
                ],
                body: bytes,
            }
        }
    }
}

/// payOS signs `key=value` pairs of `data` sorted by key, joined by `&`; strings as they are,
/// null as nothing, other values as JSON.
fn payos_signing_string(data: &Value) -> String {
    let fields = data.as_object().expect("payOS data is an object");
    fields
        .iter()
        .map(|(key, value)| match value {
            Value::String(text) => format!("{key}={text}"),
            Value::Null => format!("{key}="),
            other => format!("{key}={other}"),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn hex_hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bank_feed;

    fn transfer(payer: bool) -> Transfer {
        Transfer {
            id: 4821,
            account_number: "1000000001".into(),
            amount: 45_000,
            memo: "V001".into(),
            booked_at: chrono::NaiveDate::from_ymd_opt(2026, 3, 5)
                .unwrap()
                .and_hms_opt(7, 30, 0)
                .unwrap(),
            payer: payer.then(|| ("970415".into(), "8888888888".into(), "NGUYEN VAN A".into())),
        }
    }

    /// Each delivery verifies and parses with the service's own code, as the real one would.
    #[test]
    fn deliveries_verify_and_parse_as_the_providers_own() {
        let now = chrono::Utc::now();
        for (provider, key) in [
            (Provider::PayOs, "simulated-feed-secret-0123456789abcdef"),
            (Provider::Casso, "simulated-feed-secret-0123456789abcdef"),
            (Provider::SePay, "simulated-feed-secret-0123456789abcdef"),
            (Provider::Standard, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ] {
            let secrets = [Secret::new(provider, key).unwrap()];
            let delivery = delivery(
                provider,
                &secrets[0],
                &transfer(true),
                now.timestamp_millis(),
            );
            let headers: Vec<(String, String)> = delivery.headers.clone();
            bank_feed::verify(provider, headers.as_slice(), &delivery.body, &secrets, now)
                .unwrap_or_else(|e| panic!("{provider:?}: {e}"));
            let parsed = bank_feed::parse(provider, &delivery.body).unwrap();
            assert_eq!(parsed[0].amount, 45_000);
            assert_eq!(parsed[0].description, "V001");
        }
    }
}
