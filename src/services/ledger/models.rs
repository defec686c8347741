//! The ledger's request and response shapes, as the API speaks them: amounts are decimal
//! strings, times RFC 3339, accounts named by id or code.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::clock::to_datetime;
use crate::domain::account::{Account, AccountFlags, Balance};
use crate::domain::money::Currency;
use crate::domain::transaction::Entry;

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagsView {
    /// Refuse any posting that would leave the account with more debits than credits
    /// (an overdraft guard for a liability or revenue account).
    #[serde(default)]
    pub debits_must_not_exceed_credits: bool,
    /// Refuse any posting that would leave the account with more credits than debits
    /// (an overdraft guard for an asset account).
    #[serde(default)]
    pub credits_must_not_exceed_debits: bool,
}

impl From<AccountFlags> for FlagsView {
    fn from(flags: AccountFlags) -> Self {
        Self {
            debits_must_not_exceed_credits: flags.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits: flags.credits_must_not_exceed_debits,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    /// Unique code, e.g. `bank:970436:0123456789` or `payee:V042`; not shaped like a UUID.
    #[schema(example = "payee:V042", pattern = "^[A-Za-z0-9:_.-]{1,64}$")]
    pub code: String,
    #[schema(example = "Bà Hoa, quầy chè số 12")]
    pub name: String,
    #[schema(
        example = "liability",
        pattern = "^(asset|liability|equity|revenue|expense)$"
    )]
    /// One of asset, liability, equity, revenue, expense.
    pub kind: String,
    #[schema(example = "VND", pattern = "^(VND|USD|EUR)$")]
    pub currency: String,
    #[serde(default)]
    pub flags: FlagsView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BalanceView {
    #[schema(example = "150000")]
    pub debits_posted: String,
    #[schema(example = "200000")]
    pub credits_posted: String,
    /// Debits minus credits for assets and expenses, credits minus debits otherwise.
    #[schema(example = "50000")]
    pub balance: String,
}

impl BalanceView {
    pub fn new(account: &Account, debits: i64, credits: i64) -> Self {
        let currency = account.currency;
        let balance = account.kind.balance(debits, credits);
        Self {
            debits_posted: currency.format_minor(debits),
            credits_posted: currency.format_minor(credits),
            balance: format_wide(currency, balance),
        }
    }
}

/// A balance can exceed i64 only in theory (debits and credits are each i64); render it exactly.
fn format_wide(currency: Currency, minor: i128) -> String {
    match i64::try_from(minor) {
        Ok(minor) => currency.format_minor(minor),
        Err(_) => minor.to_string(),
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub currency: String,
    pub flags: FlagsView,
    pub created_at: DateTime<Utc>,
    pub balance: BalanceView,
    /// Set when the balance was asked for at a past time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
}

impl AccountView {
    pub fn new(account: &Account, balance: &Balance, as_of: Option<DateTime<Utc>>) -> Self {
        Self {
            id: account.id,
            code: account.code.clone(),
            name: account.name.clone(),
            kind: account.kind.as_str().to_owned(),
            currency: account.currency.code().to_owned(),
            flags: account.flags.into(),
            created_at: to_datetime(account.created_at),
            balance: BalanceView::new(account, balance.debits_posted, balance.credits_posted),
            as_of,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountPage {
    pub data: Vec<AccountView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryView {
    pub transaction_id: Uuid,
    /// Position in the account's history, starting at 1.
    pub sequence: i64,
    /// `debit` or `credit`.
    pub direction: String,
    pub amount: String,
    /// The account's totals and balance right after this entry.
    pub balance_after: BalanceView,
    pub effective_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl EntryView {
    pub fn new(account: &Account, entry: &Entry) -> Self {
        Self {
            transaction_id: entry.transaction_id,
            sequence: entry.account_seq,
            direction: if entry.is_debit { "debit" } else { "credit" }.to_owned(),
            amount: account.currency.format_minor(entry.amount),
            balance_after: BalanceView::new(account, entry.debits_after, entry.credits_after),
            effective_at: to_datetime(entry.effective_at),
            created_at: to_datetime(entry.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryPage {
    pub data: Vec<EntryView>,
    pub next_cursor: Option<String>,
}

/// A decimal amount; a JSON string is preferred ("50000"), a JSON integer is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(value_type = String, example = "50000", pattern = "^(0|[1-9][0-9]*)(\\.[0-9]+)?$")]
pub struct AmountText(pub String);

impl<'de> Deserialize<'de> for AmountText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(serde_json::Number),
        }
        match Raw::deserialize(deserializer) {
            Ok(Raw::Text(text)) => Ok(Self(text)),
            // A fractional JSON number has already been rounded to binary floating point.
            Ok(Raw::Number(number)) if !number.is_f64() => Ok(Self(number.to_string())),
            _ => Err(serde::de::Error::custom(
                "amount must be a decimal string such as \"50000\"",
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostingRequest {
    /// Account id or code to debit.
    #[schema(example = "bank:970436:0123456789")]
    pub debit: String,
    /// Account id or code to credit.
    #[schema(example = "payee:V042")]
    pub credit: String,
    pub amount: AmountText,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionRequest {
    /// Optional client-chosen id; posting the same id twice is refused.
    pub id: Option<Uuid>,
    #[schema(example = "Bán chè 1kg, quầy 12")]
    pub description: String,
    pub postings: Vec<PostingRequest>,
    /// Free text to find the transaction by, e.g. an invoice or payment reference.
    pub reference: Option<String>,
    /// Any JSON object, stored as given.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// When the money moved in business terms; defaults to now, may not be in the future.
    pub effective_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseRequest {
    /// Defaults to "Reversal of <original description>".
    pub description: Option<String>,
    pub id: Option<Uuid>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub transactions: Vec<TransactionRequest>,
    /// When true, one rejected transaction rejects the whole batch and nothing is posted.
    #[serde(default)]
    pub atomic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostingView {
    pub debit: Uuid,
    pub credit: Uuid,
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TransactionView {
    pub id: Uuid,
    pub description: String,
    pub reference: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    pub postings: Vec<PostingView>,
    pub effective_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The transaction this one reverses.
    pub reversal_of: Option<Uuid>,
    /// The transaction that reversed this one.
    pub reversed_by: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransactionPage {
    pub data: Vec<TransactionView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViolationView {
    /// e.g. TRANSACTION_UNBALANCED, LEDGER_UNBALANCED, ACCOUNT_BALANCE_MISMATCH, ACCOUNT_FLAG_BROKEN
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VerifyView {
    pub ok: bool,
    pub backend: String,
    pub transactions_checked: i64,
    pub accounts_checked: i64,
    pub total_debits: String,
    pub total_credits: String,
    pub violations: Vec<ViolationView>,
}
