//! A payee with a Standard Webhooks bank feed, and signed deliveries to it: what a bank-feed
//! aggregator sends. Shared by the load generator and the bank test.

use base64::Engine as _;
use hmac::Mac;
use rand::Rng;
use serde_json::{json, Value};

/// A payee whose collection account has a Standard Webhooks feed.
#[derive(Debug)]
pub struct StandardFeed {
    pub payee_code: String,
    /// The payee's liability account (`payee:<code>`).
    pub payee_account_code: String,
    /// The collection account's bank asset account.
    pub bank_account_id: String,
    pub account_number: String,
    /// The decoded key of the `whsec_` secret.
    pub key: Vec<u8>,
}

impl StandardFeed {
    /// Creates a vendor on a fresh bank account (at a bank in the NAPAS list) and configures a
    /// Standard Webhooks feed with a random secret for it.
    pub async fn create(
        http: &reqwest::Client,
        base: &str,
        token: &str,
    ) -> Result<StandardFeed, String> {
        let account_number = format!(
            "{:012}",
            rand::thread_rng().gen_range(0..1_000_000_000_000u64)
        );
        let payee = create_vendor(http, base, token, &account_number).await?;
        let field = |value: &Value| value.as_str().map(str::to_owned);
        let (Some(payee_code), Some(payee_account_code), Some(collection), Some(bank_account_id)) = (
            field(&payee["code"]),
            field(&payee["ledger_account_code"]),
            field(&payee["collection_account"]["id"]),
            field(&payee["collection_account"]["ledger_account_id"]),
        ) else {
            return Err(format!("the payee answer lacks a field: {payee}"));
        };
        let key: Vec<u8> = (0..32).map(|_| rand::thread_rng().gen()).collect();
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(&key)
        );
        answer(
            http.put(format!("{base}/v1/collection-accounts/{collection}/feed"))
                .bearer_auth(token)
                .json(&json!({ "provider": "standard", "secrets": [secret] })),
            "configuring the feed",
        )
        .await?;
        Ok(StandardFeed {
            payee_code,
            payee_account_code,
            bank_account_id,
            account_number,
            key,
        })
    }

    /// The body of a delivery of one incoming transfer to the payee, named by its code in the
    /// memo as a customer would write it.
    pub fn incoming_transfer(&self, id: &str, amount: i64) -> String {
        json!({
            "type": "bank_transaction",
            "data": {
                "id": id, "account_number": self.account_number, "direction": "in",
                "amount": amount,
                "description": format!("NGUYEN VAN A chuyen tien {} mua hang", self.payee_code),
                "occurred_at": chrono::Utc::now().to_rfc3339(),
            }
        })
        .to_string()
    }

    /// A delivery signed now, as the aggregator sends it (and signs it again on each retry).
    pub fn deliver(
        &self,
        http: &reqwest::Client,
        base: &str,
        id: &str,
        body: &str,
    ) -> reqwest::RequestBuilder {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("msg_{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        http.post(format!("{base}/v1/webhooks/standard"))
            .header("Content-Type", "application/json")
            .header("webhook-id", format!("msg_{id}"))
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", format!("v1,{signature}"))
            .body(body.to_owned())
    }
}

/// A vendor collecting into `account_number` at a bank that is in the NAPAS list.
pub async fn create_vendor(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    account_number: &str,
) -> Result<Value, String> {
    answer(
        http.post(format!("{base}/v1/payees"))
            .bearer_auth(token)
            .json(&json!({
                "kind": "vendor",
                "name": "test vendor",
                "collection_account": {
                    "bank_bin": "970436",
                    "account_number": account_number,
                    "holder_name": "Test Vendor",
                },
            })),
        "creating the payee",
    )
    .await
}

/// The JSON of a 2xx answer, or why there was none.
pub async fn answer(request: reqwest::RequestBuilder, what: &str) -> Result<Value, String> {
    let response = request
        .send()
        .await
        .map_err(|e| format!("{what} failed: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{what} answered {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|_| format!("{what} answered {text}"))
}
