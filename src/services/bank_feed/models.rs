//! Request and response shapes of the bank-feed and reconciliation endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::clock::to_datetime;
use crate::domain::bank_feed::resolution::ResolutionAction;
use crate::domain::bank_feed::sign::Delivery;
use crate::domain::bank_feed::test_delivery;
pub use crate::services::ledger::PageQuery;
use crate::store::bank_feed::{
    CollectionAccountSummary, DeliveryRecord, Discrepancy, StoredBankTransaction,
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PayeeRef {
    pub id: Uuid,
    pub code: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedView {
    /// sepay, payos, casso or standard
    pub provider: String,
    /// How many secrets are active (1, or 2 while rotating). Secrets are never shown.
    pub secret_count: usize,
    pub updated_at: DateTime<Utc>,
    /// Where the provider must send its webhooks, relative to this service's base URL.
    pub webhook_path: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectionAccountView {
    pub id: Uuid,
    pub bank_bin: String,
    pub account_number: String,
    pub holder_name: String,
    /// The ledger asset account mirroring this bank account.
    pub ledger_account_id: Uuid,
    pub payees: Vec<PayeeRef>,
    pub feed: Option<FeedView>,
}

impl From<CollectionAccountSummary> for CollectionAccountView {
    fn from(account: CollectionAccountSummary) -> Self {
        Self {
            id: account.id,
            bank_bin: account.bank_bin,
            account_number: account.account_number,
            holder_name: account.holder_name,
            ledger_account_id: account.ledger_account_id,
            payees: account
                .payees
                .into_iter()
                .map(|(id, code)| PayeeRef { id, code })
                .collect(),
            feed: account.feed.map(|feed| FeedView {
                provider: feed.provider.as_str().to_owned(),
                secret_count: feed.secret_count,
                updated_at: to_datetime(feed.updated_at),
                webhook_path: format!("/v1/webhooks/{}", feed.provider),
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CollectionAccountList {
    pub data: Vec<CollectionAccountView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedRequest {
    /// sepay, payos, casso or standard
    #[schema(example = "sepay", pattern = "^(sepay|payos|casso|standard)$")]
    pub provider: String,
    /// One secret, or two while rotating (deliveries signed with either are accepted). SePay:
    /// the API key (`Authorization: Apikey ...`) or the HMAC secret; payOS: the checksum key;
    /// Casso: the webhook checksum key (v2) or Secure-Token (v1); standard: `whsec_<base64>`.
    #[schema(min_items = 1, max_items = 2)]
    pub secrets: Vec<String>,
}

/// What the webhook route answers a processed delivery. `success: true` is the shape SePay
/// and Casso wait for; payOS only needs a 2xx.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAck {
    pub success: bool,
    pub transactions: Vec<WebhookAckItem>,
    /// Why a verified delivery carried nothing to record (a provider test ping, another
    /// event type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAckItem {
    /// Our bank transaction id.
    pub id: Uuid,
    pub provider_transaction_id: String,
    pub matched_as: String,
    /// Already received before; nothing changed this time.
    pub duplicate: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResolutionView {
    pub id: Uuid,
    /// intent, payee, refund or duplicate
    pub action: String,
    pub payment_intent_id: Option<Uuid>,
    pub payee_id: Option<Uuid>,
    pub duplicate_of: Option<Uuid>,
    pub note: String,
    pub resolved_by: Uuid,
    pub resolved_by_username: String,
    pub resolved_at: DateTime<Utc>,
    /// The posting out of suspense; for a refund, set when the outgoing transfer arrives.
    pub ledger_transaction_id: Option<Uuid>,
    pub refunded_by_bank_transaction_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BankTransactionView {
    pub id: Uuid,
    pub provider: String,
    pub provider_transaction_id: String,
    pub collection_account_id: Uuid,
    /// in or out
    pub direction: String,
    #[schema(example = "150000")]
    pub amount: String,
    pub description: String,
    pub bank_reference: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// The bank's balance after this transaction, when the feed reports it.
    pub running_balance: Option<String>,
    /// intent, payee, suspense or refund
    pub matched_as: String,
    pub payee_id: Option<Uuid>,
    pub payment_intent_id: Option<Uuid>,
    /// The part parked in suspense (all of it when unmatched; an overpayment's excess).
    pub suspense_amount: String,
    /// overpaid, late_payment, intent_cancelled, intent_already_paid,
    /// wrong_collection_account, ambiguous_payee, unexplained_outgoing, payee_balance_short,
    /// possible_duplicate
    pub flags: Vec<String>,
    pub ledger_transaction_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub resolution: Option<ResolutionView>,
    /// The payer's bank account when the feed reports it (payOS, Casso): never the number,
    /// only its keyed hash (link it with `POST /v1/payer-accounts/{hash}/link`) and last 4
    /// digits.
    pub payer_account: Option<PayerAccountRef>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PayerAccountRef {
    pub account_hash: String,
    #[schema(example = "8888")]
    pub last4: String,
}

impl From<&StoredBankTransaction> for BankTransactionView {
    fn from(t: &StoredBankTransaction) -> Self {
        Self {
            id: t.id,
            provider: t.provider.as_str().to_owned(),
            provider_transaction_id: t.provider_transaction_id.clone(),
            collection_account_id: t.collection_account_id,
            direction: t.direction.as_str().to_owned(),
            amount: t.amount.to_string(),
            description: t.description.clone(),
            bank_reference: t.bank_reference.clone(),
            occurred_at: to_datetime(t.occurred_at),
            running_balance: t.running_balance.map(|b| b.to_string()),
            matched_as: t.matched_as.as_str().to_owned(),
            payee_id: t.payee_id,
            payment_intent_id: t.payment_intent_id,
            suspense_amount: t.suspense_amount.to_string(),
            flags: t.flags.iter().map(|f| f.as_str().to_owned()).collect(),
            ledger_transaction_id: t.ledger_transaction_id,
            received_at: to_datetime(t.created_at),
            resolution: t.resolution.as_ref().map(|r| ResolutionView {
                id: r.id,
                action: r.action.as_str().to_owned(),
                payment_intent_id: match r.action {
                    ResolutionAction::Intent(id) => Some(id),
                    _ => None,
                },
                payee_id: match r.action {
                    ResolutionAction::Payee(id) => Some(id),
                    _ => None,
                },
                duplicate_of: match r.action {
                    ResolutionAction::Duplicate(id) => Some(id),
                    _ => None,
                },
                note: r.note.clone(),
                resolved_by: r.resolved_by,
                resolved_by_username: r.resolved_by_username.clone(),
                resolved_at: to_datetime(r.resolved_at),
                ledger_transaction_id: r.ledger_transaction_id,
                refunded_by_bank_transaction_id: r.refunded_by_bank_transaction_id,
            }),
            payer_account: t
                .payer_account
                .as_ref()
                .map(|(account_hash, last4)| PayerAccountRef {
                    account_hash: account_hash.clone(),
                    last4: last4.clone(),
                }),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BankTransactionPage {
    /// Oldest first.
    pub data: Vec<BankTransactionView>,
    pub next_cursor: Option<String>,
}

/// Exactly one of `payment_intent_id`, `payee_id`, `refund: true` or `duplicate_of`, and a
/// note saying why.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// Credit the intent's payee and count the money towards the intent.
    pub payment_intent_id: Option<Uuid>,
    /// Credit this payee (incoming), or charge it (an outgoing transfer that was its payout).
    pub payee_id: Option<Uuid>,
    /// Pay the money back to the sender; the outgoing bank transfer of the same amount then
    /// clears it from suspense.
    pub refund: Option<bool>,
    /// The bank transaction this one duplicates (the same money recorded twice, e.g. a
    /// `possible_duplicate`): this record is taken back out of the ledger.
    pub duplicate_of: Option<Uuid>,
    /// Why: kept with the resolution, 1 to 500 characters.
    #[schema(min_length = 1, max_length = 500)]
    pub note: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscrepancyView {
    pub id: Uuid,
    pub collection_account_id: Uuid,
    /// The bank transaction whose reported running balance disagreed.
    pub bank_transaction_id: Uuid,
    pub bank_balance: String,
    pub ledger_balance: String,
    /// bank − ledger
    pub difference: String,
    pub detected_at: DateTime<Utc>,
}

impl From<&Discrepancy> for DiscrepancyView {
    fn from(d: &Discrepancy) -> Self {
        Self {
            id: d.id,
            collection_account_id: d.collection_account_id,
            bank_transaction_id: d.bank_transaction_id,
            bank_balance: d.bank_balance.to_string(),
            ledger_balance: d.ledger_balance.to_string(),
            difference: (i128::from(d.bank_balance) - i128::from(d.ledger_balance)).to_string(),
            detected_at: to_datetime(d.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscrepancyPage {
    /// Oldest first.
    pub data: Vec<DiscrepancyView>,
    pub next_cursor: Option<String>,
}

/// Which account and period an uploaded statement covers, and whether to record its lines
/// that no webhook brought.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// The collection account the statement is for.
    pub collection_account_id: Uuid,
    /// Start of the period, inclusive, RFC 3339 (e.g. `2024-03-01T00:00:00+07:00`).
    #[param(example = "2024-03-01T00:00:00+07:00")]
    pub from: String,
    /// End of the period, exclusive, RFC 3339; at most 366 days after `from`.
    #[param(example = "2024-04-01T00:00:00+07:00")]
    pub to: String,
    /// Record the statement's lines that no webhook brought (those with a bank reference) as
    /// bank transactions, matched and posted as a webhook would be. Default false: only
    /// compare.
    pub ingest: Option<bool>,
}

/// A statement line recorded as a bank transaction (`ingest=true`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IngestedLine {
    /// Line of the statement file.
    #[schema(example = 5)]
    pub line: usize,
    pub bank_transaction_id: Uuid,
    /// intent, payee, suspense or refund
    pub matched_as: String,
    /// The transfer was already recorded (an earlier import of the same line, or a webhook
    /// with the same bank reference); nothing changed this time.
    pub duplicate: bool,
}

/// A statement line no webhook brought that was not recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotIngestedLine {
    #[schema(example = 6)]
    pub line: usize,
    /// `NO_BANK_REFERENCE`
    pub code: String,
    pub reason: String,
}

/// An uploaded statement compared with the stored bank transactions and the ledger, and what
/// was recorded from it. The comparison is of the state before anything was recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatementImportView {
    pub collection_account_id: Uuid,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[serde(flatten)]
    pub report: crate::domain::statement::StatementReport,
    /// Whether `ingest=true` was asked.
    pub ingest: bool,
    /// With `ingest=true`: the missing-webhook lines recorded (or found already recorded).
    pub ingested: Vec<IngestedLine>,
    /// With `ingest=true`: the missing-webhook lines that could not be recorded, and why.
    pub not_ingested: Vec<NotIngestedLine>,
    /// With `ingest=true`: the ledger balance of the account's bank asset at the end of the
    /// period after recording; null otherwise.
    #[schema(example = "12650000")]
    pub ledger_closing_balance_after_ingest: Option<String>,
    /// Statement minus ledger after recording, where the statement gives a closing balance.
    #[schema(example = "0")]
    pub closing_balance_difference_after_ingest: Option<String>,
}

/// A provider's test delivery (payOS webhook URL confirmation, SePay "Gửi thử", Casso "Gọi
/// thử"): verified, acknowledged, and not recorded as money.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestDeliveryView {
    /// The stored delivery's id.
    pub id: Uuid,
    /// sepay, payos or casso
    pub provider: String,
    /// The collection account whose secret signed it, when exactly one did.
    pub collection_account_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    /// The id the sample carries (payOS `reference`, SePay `id`, Casso `id`).
    pub sample_id: String,
    /// The markers that identified it as the provider's test sample.
    #[schema(
        example = "payOS webhook confirmation sample: orderCode 123, description VQRIO123, reference TF230204212323"
    )]
    pub recognised_by: String,
    /// The body as the provider sent it (its signature included; credentials sent in headers
    /// are never stored).
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

impl From<&DeliveryRecord> for TestDeliveryView {
    fn from(d: &DeliveryRecord) -> Self {
        let recognised = test_delivery::recognise(d.provider, &d.body);
        Self {
            id: d.id,
            provider: d.provider.as_str().to_owned(),
            collection_account_id: d.collection_account_id,
            received_at: to_datetime(d.received_at),
            sample_id: d.provider_transaction_ids.clone(),
            recognised_by: recognised.map(|t| t.markers.to_owned()).unwrap_or_default(),
            body: serde_json::from_slice(&d.body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&d.body).into_owned())
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestDeliveryPage {
    /// Oldest first.
    pub data: Vec<TestDeliveryView>,
    pub next_cursor: Option<String>,
}

/// A transfer to deliver to a collection account as its feed's provider would.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendDeliveryRequest {
    /// Whole đồng ("50000"; a JSON integer is accepted).
    #[schema(example = "50000")]
    pub amount: crate::services::ledger::models::AmountText,
    /// The transfer memo, as a payer would type it (a payee code, an intent reference):
    /// 1 to 200 characters.
    #[schema(example = "V042 mua che")]
    pub memo: String,
}

/// What was delivered and how the service answered it, as the provider would have seen it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SentDeliveryView {
    pub provider: String,
    /// The delivery's headers, the signature included; an `Authorization` credential is
    /// redacted.
    pub headers: Vec<(String, String)>,
    /// The body exactly as signed.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub answer: WebhookAck,
}

impl SentDeliveryView {
    pub fn new(delivery: Delivery, answer: WebhookAck) -> Self {
        SentDeliveryView {
            provider: delivery.provider.to_owned(),
            headers: shown_headers(delivery.headers),
            body: serde_json::from_slice(&delivery.body).unwrap_or_default(),
            answer,
        }
    }
}

/// A delivery's headers fit to print: an `Authorization` credential is the feed's secret.
pub fn shown_headers(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(name, value)| {
            if name.eq_ignore_ascii_case("authorization") {
                (name, "Apikey <the configured key>".to_owned())
            } else {
                (name, value)
            }
        })
        .collect()
}
