//! Bank feeds in the database: feed configuration, raw deliveries, bank transactions recorded
//! once per provider id and posted in the same database transaction, suspense resolutions and
//! running-balance discrepancies. `impl_bank_feed_store!` expands the SQL for each backend.

use async_trait::async_trait;
use uuid::Uuid;

use super::{IdempotencyClaim, Idempotent, StoreError, StoreResult, StoredResponse};
use crate::domain::bank_feed::{BankTransaction, Direction, Provider};
use crate::domain::intent::IntentStatus;
use crate::domain::money::{Amount, Currency};
use crate::domain::settlement::{split_flags, Flag};
use crate::domain::transaction::{
    NewTransaction, Posting, TransactionDraft, MAX_DESCRIPTION_CHARS, MAX_REFERENCE_CHARS,
};

/// The ledger account that holds money nobody could match (created by migration 0003).
pub const SUSPENSE_ACCOUNT_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001);
/// `created_by` of the ledger transactions the bank feed posts.
pub const BANK_FEED_USER_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0002);

/// A collection account with a configured feed, as the webhook route needs it.
#[derive(Debug, Clone)]
pub struct Feed {
    pub collection_account_id: Uuid,
    pub bank_bin: String,
    pub account_number: String,
    pub ledger_account_id: Uuid,
    pub provider: Provider,
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FeedSummary {
    pub provider: Provider,
    pub secret_count: usize,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct CollectionAccountSummary {
    pub id: Uuid,
    pub bank_bin: String,
    pub account_number: String,
    pub holder_name: String,
    pub ledger_account_id: Uuid,
    /// (id, code) of the payees collecting into it.
    pub payees: Vec<(Uuid, String)>,
    pub feed: Option<FeedSummary>,
}

/// A verified webhook delivery as received, for the audit trail.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: Uuid,
    pub provider: Provider,
    pub collection_account_id: Option<Uuid>,
    pub received_at: i64,
    /// JSON object of the headers, credentials redacted.
    pub headers: String,
    pub body: Vec<u8>,
    pub provider_transaction_ids: String,
    /// `accepted`, or the code the body was refused with.
    pub outcome: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedAs {
    Intent,
    Payee,
    Suspense,
    /// An outgoing transfer that paid back money parked in suspense.
    Refund,
}

impl MatchedAs {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedAs::Intent => "intent",
            MatchedAs::Payee => "payee",
            MatchedAs::Suspense => "suspense",
            MatchedAs::Refund => "refund",
        }
    }

    fn parse(text: &str) -> StoreResult<Self> {
        [
            MatchedAs::Intent,
            MatchedAs::Payee,
            MatchedAs::Suspense,
            MatchedAs::Refund,
        ]
        .into_iter()
        .find(|m| m.as_str() == text)
        .ok_or_else(|| StoreError::Corrupt(format!("matched_as {text:?}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionAction {
    Intent(Uuid),
    Payee(Uuid),
    Refund,
    /// The same money as this other bank transaction, recorded twice (a statement line and a
    /// webhook under different references): this record is taken back out of the ledger.
    Duplicate(Uuid),
}

impl ResolutionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionAction::Intent(_) => "intent",
            ResolutionAction::Payee(_) => "payee",
            ResolutionAction::Refund => "refund",
            ResolutionAction::Duplicate(_) => "duplicate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub id: Uuid,
    pub action: ResolutionAction,
    pub note: String,
    pub resolved_by: Uuid,
    pub resolved_by_username: String,
    pub resolved_at: i64,
    pub ledger_transaction_id: Option<Uuid>,
    pub refunded_by_bank_transaction_id: Option<Uuid>,
}

/// A bank transaction as recorded, with what it was matched to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBankTransaction {
    pub id: Uuid,
    pub provider: Provider,
    pub provider_transaction_id: String,
    pub collection_account_id: Uuid,
    pub direction: Direction,
    pub amount: i64,
    pub description: String,
    pub bank_reference: Option<String>,
    pub occurred_at: i64,
    pub running_balance: Option<i64>,
    pub matched_as: MatchedAs,
    pub payee_id: Option<Uuid>,
    pub payment_intent_id: Option<Uuid>,
    pub suspense_amount: i64,
    pub flags: Vec<Flag>,
    pub ledger_transaction_id: Uuid,
    pub created_at: i64,
    pub resolution: Option<Resolution>,
}

/// Money a bank transaction credited to a payee, for the live notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub payee_id: Uuid,
    pub amount: i64,
    /// (id, reference, status after this payment)
    pub intent: Option<(Uuid, String, IntentStatus)>,
}

#[derive(Debug, Clone)]
pub struct IngestOutcome {
    pub transaction: StoredBankTransaction,
    /// The provider sent this transaction before; nothing changed.
    pub duplicate: bool,
    pub credit: Option<Credit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResolveRejection {
    #[error("bank transaction {0} not found")]
    NotFound(Uuid),
    #[error("this bank transaction has no money in suspense")]
    NotInSuspense,
    #[error("this bank transaction was already resolved")]
    AlreadyResolved,
    #[error("payment intent {0} not found")]
    IntentNotFound(Uuid),
    #[error("payee {0} not found")]
    PayeeNotFound(Uuid),
    #[error("an outgoing transfer can only be assigned to a payee")]
    OutgoingNeedsPayee,
    #[error("the payee's balance cannot cover this outgoing transfer")]
    PayeeBalanceShort,
    #[error(
        "a duplicate must be wholly in suspense and name another bank transaction of the same \
         account, direction and amount"
    )]
    NotADuplicate,
    #[error(
        "the intent is cancelled, or needs less than this amount; assign it to the payee or \
         refund it"
    )]
    ExceedsIntent,
}

#[derive(Debug, Clone)]
pub struct Discrepancy {
    pub id: Uuid,
    pub collection_account_id: Uuid,
    pub bank_transaction_id: Uuid,
    pub bank_balance: i64,
    pub ledger_balance: i64,
    pub created_at: i64,
}

/// Renders the response stored with a resolution's idempotency key.
pub type ResolutionResponder<'a> =
    &'a (dyn Fn(&StoredBankTransaction) -> StoredResponse + Send + Sync);

#[async_trait]
pub trait BankFeedStore {
    async fn list_collection_accounts(&self) -> StoreResult<Vec<CollectionAccountSummary>>;
    /// Sets the provider and secrets (a JSON array) of a collection account; false when there
    /// is no such account.
    async fn set_feed(
        &self,
        collection_account_id: Uuid,
        provider: Provider,
        secrets_json: &str,
        now: i64,
        by: Uuid,
    ) -> StoreResult<bool>;
    async fn feeds(&self, provider: Provider) -> StoreResult<Vec<Feed>>;
    /// Whether some collection account has this account number, feed or not.
    async fn account_number_known(&self, account_number: &str) -> StoreResult<bool>;
    async fn record_delivery(&self, delivery: &DeliveryRecord) -> StoreResult<()>;
    /// Records the bank transaction (once per provider id), matches it and posts it, all in one
    /// database transaction; `delivery` is stored in the same one.
    /// `insert_delivery` is true for the first transaction of a delivery (or statement).
    async fn ingest(
        &self,
        delivery: &DeliveryRecord,
        insert_delivery: bool,
        feed: &Feed,
        transaction: &BankTransaction,
        now: i64,
    ) -> StoreResult<IngestOutcome>;
    async fn bank_transaction(&self, id: Uuid) -> StoreResult<Option<StoredBankTransaction>>;
    /// Transactions with money in suspense and no resolution, oldest first.
    async fn list_unmatched(
        &self,
        after: Option<(i64, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<StoredBankTransaction>>;
    /// A collection account's transactions that occurred in [from, to), by time.
    async fn bank_transactions_between(
        &self,
        collection_account_id: Uuid,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<StoredBankTransaction>>;
    #[allow(clippy::too_many_arguments)]
    async fn resolve(
        &self,
        claim: &IdempotencyClaim,
        bank_transaction_id: Uuid,
        action: ResolutionAction,
        note: &str,
        by: (Uuid, &str),
        now: i64,
        respond: ResolutionResponder<'_>,
    ) -> StoreResult<Idempotent<Result<StoredBankTransaction, ResolveRejection>>>;
    async fn list_discrepancies(
        &self,
        after: Option<(i64, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<Discrepancy>>;
}

pub(super) const BANK_TRANSACTION_COLUMNS: &str = "b.id, b.provider, b.provider_transaction_id, \
    b.collection_account_id, b.direction, b.amount, b.description, b.bank_reference, \
    b.occurred_at, b.running_balance, b.matched_as, b.payee_id, b.payment_intent_id, \
    b.suspense_amount, b.flags, b.ledger_transaction_id, b.created_at, \
    r.id AS r_id, r.action AS r_action, r.payment_intent_id AS r_intent, r.payee_id AS r_payee, \
    r.note AS r_note, r.resolved_by AS r_by, r.resolved_by_username AS r_username, \
    r.resolved_at AS r_at, r.ledger_transaction_id AS r_ledger, \
    r.refunded_by_bank_transaction_id AS r_refunded_by, r.duplicate_of AS r_duplicate_of";

pub(super) const BANK_TRANSACTION_FROM: &str =
    "bank_transactions b LEFT JOIN suspense_resolutions r ON r.bank_transaction_id = b.id";

#[derive(sqlx::FromRow)]
pub(super) struct BankTransactionRow {
    id: Uuid,
    provider: String,
    provider_transaction_id: String,
    collection_account_id: Uuid,
    direction: String,
    amount: i64,
    description: String,
    bank_reference: Option<String>,
    occurred_at: i64,
    running_balance: Option<i64>,
    matched_as: String,
    payee_id: Option<Uuid>,
    payment_intent_id: Option<Uuid>,
    suspense_amount: i64,
    flags: String,
    ledger_transaction_id: Uuid,
    created_at: i64,
    r_id: Option<Uuid>,
    r_action: Option<String>,
    r_intent: Option<Uuid>,
    r_payee: Option<Uuid>,
    r_note: Option<String>,
    r_by: Option<Uuid>,
    r_username: Option<String>,
    r_at: Option<i64>,
    r_ledger: Option<Uuid>,
    r_refunded_by: Option<Uuid>,
    r_duplicate_of: Option<Uuid>,
}

impl BankTransactionRow {
    pub(super) fn into_domain(self) -> StoreResult<StoredBankTransaction> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("bank transaction {}: {what}", self.id));
        let provider = Provider::parse(&self.provider).map_err(|_| corrupt("provider"))?;
        let direction = Direction::parse(&self.direction).ok_or_else(|| corrupt("direction"))?;
        let resolution = match (self.r_id, self.r_action.as_deref()) {
            (Some(id), Some(action)) => {
                let action = match (action, self.r_intent, self.r_payee) {
                    ("intent", Some(intent), _) => ResolutionAction::Intent(intent),
                    ("payee", _, Some(payee)) => ResolutionAction::Payee(payee),
                    ("refund", _, _) => ResolutionAction::Refund,
                    ("duplicate", _, _) => match self.r_duplicate_of {
                        Some(original) => ResolutionAction::Duplicate(original),
                        None => return Err(corrupt("duplicate resolution without original")),
                    },
                    _ => return Err(corrupt("resolution action")),
                };
                Some(Resolution {
                    id,
                    action,
                    note: self.r_note.unwrap_or_default(),
                    resolved_by: self.r_by.unwrap_or_default(),
                    resolved_by_username: self.r_username.unwrap_or_default(),
                    resolved_at: self.r_at.unwrap_or_default(),
                    ledger_transaction_id: self.r_ledger,
                    refunded_by_bank_transaction_id: self.r_refunded_by,
                })
            }
            _ => None,
        };
        Ok(StoredBankTransaction {
            id: self.id,
            provider,
            provider_transaction_id: self.provider_transaction_id,
            collection_account_id: self.collection_account_id,
            direction,
            amount: self.amount,
            description: self.description,
            bank_reference: self.bank_reference,
            occurred_at: self.occurred_at,
            running_balance: self.running_balance,
            matched_as: MatchedAs::parse(&self.matched_as)?,
            payee_id: self.payee_id,
            payment_intent_id: self.payment_intent_id,
            suspense_amount: self.suspense_amount,
            flags: split_flags(&self.flags),
            ledger_transaction_id: self.ledger_transaction_id,
            created_at: self.created_at,
            resolution,
        })
    }
}

/// What the matcher decided for one bank transaction: the ledger postings to try, in order
/// (the first whose accounts' rules allow it is posted), and what to record.
pub(super) struct Plan {
    pub matched_as: MatchedAs,
    pub payee: Option<(Uuid, Uuid)>,
    pub intent: Option<(Uuid, String)>,
    pub intent_update: Option<(i64, IntentStatus)>,
    pub suspense_amount: i64,
    pub flags: Vec<Flag>,
    /// Alternatives as (debit, credit, amount) legs; the last is the fallback.
    pub alternatives: Vec<Alternative>,
    pub refund_resolution: Option<Uuid>,
}

pub(super) struct Alternative {
    pub legs: Vec<(Uuid, Uuid, i64)>,
    /// Replaces the plan's payee / suspense / flags when this alternative is the one posted.
    pub fallback_to_suspense: Option<Flag>,
}

/// The ledger transaction a bank transaction posts.
pub(super) fn ledger_transaction(
    id: Uuid,
    bank: &BankTransaction,
    bank_transaction_id: Uuid,
    reference: Option<&str>,
    legs: &[(Uuid, Uuid, i64)],
    now: i64,
) -> StoreResult<NewTransaction> {
    feed_transaction(
        TransactionDraft {
            id,
            id_from_client: false,
            description: format!(
                "Bank transfer {}: {}",
                bank.direction.as_str(),
                bank.description.trim()
            ),
            reference: reference
                .map(str::to_owned)
                .or_else(|| bank.reference.clone()),
            metadata: Some(
                serde_json::json!({
                    "bank_transaction_id": bank_transaction_id,
                    "provider": bank.provider.as_str(),
                    "provider_transaction_id": bank.provider_transaction_id,
                })
                .to_string(),
            ),
            effective_at: bank.occurred_at.timestamp_micros().min(now),
            created_at: now,
            reversal_of: None,
        },
        legs,
    )
}

/// The ledger transaction a suspense resolution posts.
pub(super) fn resolution_transaction(
    id: Uuid,
    bank: &StoredBankTransaction,
    action: ResolutionAction,
    note: &str,
    legs: &[(Uuid, Uuid, i64)],
    now: i64,
) -> StoreResult<NewTransaction> {
    feed_transaction(
        TransactionDraft {
            id,
            id_from_client: false,
            description: format!("Suspense resolved ({}): {}", action.as_str(), note.trim()),
            reference: None,
            metadata: Some(serde_json::json!({ "bank_transaction_id": bank.id }).to_string()),
            effective_at: now,
            created_at: now,
            reversal_of: None,
        },
        legs,
    )
}

/// Builds a VND transaction from (debit, credit, amount) legs. Text from the bank is cut to the
/// ledger's limits rather than refused: the money moved whatever the memo says.
fn feed_transaction(
    mut draft: TransactionDraft,
    legs: &[(Uuid, Uuid, i64)],
) -> StoreResult<NewTransaction> {
    let postings = legs
        .iter()
        .map(|&(debit, credit, amount)| {
            Ok(Posting {
                debit,
                credit,
                amount: Amount::from_minor(amount)
                    .map_err(|e| StoreError::Corrupt(format!("posting amount: {e}")))?,
                currency: Currency::Vnd,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    if let Some((cut, _)) = draft.description.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        draft.description.truncate(cut);
    }
    draft.reference = draft
        .reference
        .filter(|r| (1..=MAX_REFERENCE_CHARS).contains(&r.chars().count()));
    NewTransaction::new(draft, postings)
        .map_err(|e| StoreError::Corrupt(format!("bank-feed posting: {e}")))
}

/// Headers stored with a delivery: everything except credentials.
pub fn redacted_headers<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    const CREDENTIALS: [&str; 3] = ["authorization", "secure-token", "cookie"];
    let map: serde_json::Map<String, serde_json::Value> = headers
        .map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            let value = if CREDENTIALS.contains(&name.as_str()) {
                "[redacted]".to_owned()
            } else {
                value.to_owned()
            };
            (name, serde_json::Value::String(value))
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

macro_rules! impl_bank_feed_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::bank_feed::BankFeedStore for $store {
            async fn list_collection_accounts(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::bank_feed::CollectionAccountSummary>>
            {
                use $crate::store::bank_feed::{CollectionAccountSummary, FeedSummary};
                let accounts: Vec<(
                    uuid::Uuid,
                    String,
                    String,
                    String,
                    uuid::Uuid,
                    Option<String>,
                    Option<String>,
                    Option<i64>,
                )> = sqlx::query_as(
                    "SELECT c.id, c.bank_bin, c.account_number, c.holder_name, \
                     c.ledger_account_id, f.provider, f.secrets, f.updated_at \
                     FROM collection_accounts c \
                     LEFT JOIN bank_feeds f ON f.collection_account_id = c.id \
                     ORDER BY c.bank_bin, c.account_number",
                )
                .fetch_all(&self.pool)
                .await?;
                let payees: Vec<(uuid::Uuid, uuid::Uuid, String)> = sqlx::query_as(
                    "SELECT collection_account_id, id, code FROM payees ORDER BY code",
                )
                .fetch_all(&self.pool)
                .await?;
                accounts
                    .into_iter()
                    .map(
                        |(id, bank_bin, account_number, holder_name, ledger, provider, secrets, at)| {
                            let feed = match (provider, secrets, at) {
                                (Some(provider), Some(secrets), Some(updated_at)) => {
                                    Some(FeedSummary {
                                        provider: $crate::domain::bank_feed::Provider::parse(
                                            &provider,
                                        )
                                        .map_err(|e| {
                                            $crate::store::StoreError::Corrupt(e.to_string())
                                        })?,
                                        secret_count: $crate::store::bank_feed::parse_secrets(
                                            &secrets,
                                        )?
                                        .len(),
                                        updated_at,
                                    })
                                }
                                _ => None,
                            };
                            Ok(CollectionAccountSummary {
                                id,
                                bank_bin,
                                account_number,
                                holder_name,
                                ledger_account_id: ledger,
                                payees: payees
                                    .iter()
                                    .filter(|(account, _, _)| *account == id)
                                    .map(|(_, payee, code)| (*payee, code.clone()))
                                    .collect(),
                                feed,
                            })
                        },
                    )
                    .collect()
            }

            async fn set_feed(
                &self,
                collection_account_id: uuid::Uuid,
                provider: $crate::domain::bank_feed::Provider,
                secrets_json: &str,
                now: i64,
                by: uuid::Uuid,
            ) -> $crate::store::StoreResult<bool> {
                let (_write_guard, mut tx) = self.begin_write().await?;
                let exists: Option<(uuid::Uuid,)> =
                    sqlx::query_as("SELECT id FROM collection_accounts WHERE id = $1")
                        .bind(collection_account_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_none() {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO bank_feeds \
                     (collection_account_id, provider, secrets, updated_at, updated_by) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (collection_account_id) DO UPDATE SET \
                       provider = excluded.provider, secrets = excluded.secrets, \
                       updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                )
                .bind(collection_account_id)
                .bind(provider.as_str())
                .bind(secrets_json)
                .bind(now)
                .bind(by)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn feeds(
                &self,
                provider: $crate::domain::bank_feed::Provider,
            ) -> $crate::store::StoreResult<Vec<$crate::store::bank_feed::Feed>> {
                let rows: Vec<(uuid::Uuid, String, String, uuid::Uuid, String)> = sqlx::query_as(
                    "SELECT c.id, c.bank_bin, c.account_number, c.ledger_account_id, f.secrets \
                     FROM bank_feeds f JOIN collection_accounts c ON c.id = f.collection_account_id \
                     WHERE f.provider = $1",
                )
                .bind(provider.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(id, bank_bin, account_number, ledger_account_id, secrets)| {
                        Ok($crate::store::bank_feed::Feed {
                            collection_account_id: id,
                            bank_bin,
                            account_number,
                            ledger_account_id,
                            provider,
                            secrets: $crate::store::bank_feed::parse_secrets(&secrets)?,
                        })
                    })
                    .collect()
            }

            async fn account_number_known(
                &self,
                account_number: &str,
            ) -> $crate::store::StoreResult<bool> {
                let found: Option<(uuid::Uuid,)> = sqlx::query_as(
                    "SELECT id FROM collection_accounts WHERE account_number = $1 LIMIT 1",
                )
                .bind(account_number)
                .fetch_optional(&self.pool)
                .await?;
                Ok(found.is_some())
            }

            async fn record_delivery(
                &self,
                delivery: &$crate::store::bank_feed::DeliveryRecord,
            ) -> $crate::store::StoreResult<()> {
                let (_write_guard, mut tx) = self.begin_write().await?;
                Self::insert_delivery(&mut tx, delivery).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn ingest(
                &self,
                delivery: &$crate::store::bank_feed::DeliveryRecord,
                insert_delivery: bool,
                feed: &$crate::store::bank_feed::Feed,
                bank: &$crate::domain::bank_feed::BankTransaction,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::bank_feed::IngestOutcome> {
                use $crate::store::bank_feed::{Credit, IngestOutcome};

                let (_write_guard, mut tx) = self.begin_write().await?;
                if insert_delivery {
                    Self::insert_delivery(&mut tx, delivery).await?;
                }
                let delivery_id = delivery.id;
                // The same money can reach us twice under different ids: from a bank
                // statement line (a webhook that never came) and from the feed. Same account,
                // direction and bank reference, with one side from a statement, is a duplicate.
                if let Some(reference) = bank.reference.as_deref().filter(|r| !r.trim().is_empty()) {
                    use $crate::store::bank_feed::{
                        BankTransactionRow, BANK_TRANSACTION_COLUMNS, BANK_TRANSACTION_FROM,
                        STATEMENT_ID_PREFIX,
                    };
                    let from_statement = bank.provider_transaction_id.starts_with(STATEMENT_ID_PREFIX);
                    let normalized = reference.trim().to_uppercase();
                    // Two records of one transfer under different ids would both pass a plain
                    // read of each other's uncommitted rows: queue on the reference first.
                    Self::serialize_on(
                        &mut tx,
                        &format!(
                            "{}|{}|{normalized}",
                            feed.collection_account_id,
                            bank.direction.as_str()
                        ),
                    )
                    .await?;
                    let twin: Option<BankTransactionRow> = sqlx::query_as(&format!(
                        "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} \
                         WHERE b.collection_account_id = $1 AND b.direction = $2 \
                           AND UPPER(TRIM(b.bank_reference)) = $3 \
                           AND ($4 OR substr(b.provider_transaction_id, 1, {}) = '{STATEMENT_ID_PREFIX}') \
                         ORDER BY b.occurred_at, b.id LIMIT 1",
                        STATEMENT_ID_PREFIX.len()
                    ))
                    .bind(feed.collection_account_id)
                    .bind(bank.direction.as_str())
                    .bind(&normalized)
                    .bind(from_statement)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(twin) = twin {
                        tx.commit().await?;
                        return Ok(IngestOutcome {
                            transaction: twin.into_domain()?,
                            duplicate: true,
                            credit: None,
                        });
                    }
                }
                let id = uuid::Uuid::now_v7();
                let ledger_transaction_id = uuid::Uuid::now_v7();
                // Claims the provider's id first: a concurrent copy of this delivery waits here
                // on PostgreSQL (or behind the write lock on SQLite), then finds it taken.
                let claimed = sqlx::query(
                    "INSERT INTO bank_transactions (id, provider, provider_transaction_id, \
                       delivery_id, collection_account_id, direction, amount, description, \
                       bank_reference, occurred_at, running_balance, matched_as, \
                       suspense_amount, flags, ledger_transaction_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'suspense', 0, '', \
                       $12, $13) \
                     ON CONFLICT (provider, provider_transaction_id) DO NOTHING",
                )
                .bind(id)
                .bind(bank.provider.as_str())
                .bind(&bank.provider_transaction_id)
                .bind(delivery_id)
                .bind(feed.collection_account_id)
                .bind(bank.direction.as_str())
                .bind(bank.amount)
                .bind(&bank.description)
                .bind(bank.reference.as_deref())
                .bind(bank.occurred_at.timestamp_micros())
                .bind(bank.running_balance)
                .bind(ledger_transaction_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    // The delivery row (if any) is kept: the audit trail shows every retry.
                    let existing = Self::bank_transaction_by_provider_id(&mut tx, bank).await?;
                    tx.commit().await?;
                    return Ok(IngestOutcome {
                        transaction: existing,
                        duplicate: true,
                        credit: None,
                    });
                }

                let plan = self.plan(&mut tx, feed, bank).await?;
                let reference = plan.intent.as_ref().map(|(_, r)| r.as_str());
                let candidates = plan
                    .alternatives
                    .iter()
                    .map(|alternative| {
                        $crate::store::bank_feed::ledger_transaction(
                            ledger_transaction_id,
                            bank,
                            id,
                            reference,
                            &alternative.legs,
                            now,
                        )
                    })
                    .collect::<$crate::store::StoreResult<Vec<_>>>()?;
                let Some(posted) = self.post_first_that_fits(&mut tx, &candidates).await? else {
                    return Err($crate::store::StoreError::Corrupt(
                        "no posting fits a bank transaction, not even suspense".into(),
                    ));
                };
                let mut plan = plan;
                if let Some(flag) = plan.alternatives[posted].fallback_to_suspense {
                    plan.matched_as = $crate::store::bank_feed::MatchedAs::Suspense;
                    plan.payee = None;
                    plan.suspense_amount = bank.amount;
                    plan.flags.push(flag);
                }

                sqlx::query(
                    "UPDATE bank_transactions SET matched_as = $2, payee_id = $3, \
                       payment_intent_id = $4, suspense_amount = $5, flags = $6 WHERE id = $1",
                )
                .bind(id)
                .bind(plan.matched_as.as_str())
                .bind(plan.payee.map(|(payee, _)| payee))
                .bind(plan.intent.as_ref().map(|(intent, _)| *intent))
                .bind(plan.suspense_amount)
                .bind($crate::domain::settlement::join_flags(&plan.flags))
                .execute(&mut *tx)
                .await?;
                if let (Some((intent_id, _)), Some((paid_amount, status))) =
                    (&plan.intent, plan.intent_update)
                {
                    Self::record_intent_payment(&mut tx, *intent_id, paid_amount, status).await?;
                }
                if let Some(resolution) = plan.refund_resolution {
                    sqlx::query(
                        "UPDATE suspense_resolutions SET refunded_by_bank_transaction_id = $2, \
                         ledger_transaction_id = $3 WHERE id = $1",
                    )
                    .bind(resolution)
                    .bind(id)
                    .bind(ledger_transaction_id)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(bank_balance) = bank.running_balance {
                    let (debits, credits): (i64, i64) = sqlx::query_as(
                        "SELECT debits_posted, credits_posted FROM accounts WHERE id = $1",
                    )
                    .bind(feed.ledger_account_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let ledger_balance = debits - credits;
                    if ledger_balance != bank_balance {
                        sqlx::query(
                            "INSERT INTO bank_discrepancies (id, collection_account_id, \
                               bank_transaction_id, bank_balance, ledger_balance, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(uuid::Uuid::now_v7())
                        .bind(feed.collection_account_id)
                        .bind(id)
                        .bind(bank_balance)
                        .bind(ledger_balance)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                let transaction = Self::load_bank_transaction(&mut tx, id).await?;
                tx.commit().await?;

                let credited = match (plan.matched_as, bank.direction) {
                    (
                        $crate::store::bank_feed::MatchedAs::Intent
                        | $crate::store::bank_feed::MatchedAs::Payee,
                        $crate::domain::bank_feed::Direction::In,
                    ) => bank.amount - plan.suspense_amount,
                    _ => 0,
                };
                let credit = match plan.payee {
                    Some((payee_id, _)) if credited > 0 => Some(Credit {
                        payee_id,
                        amount: credited,
                        intent: plan.intent.map(|(intent, reference)| {
                            let status = plan.intent_update.map(|(_, s)| s).unwrap_or(
                                $crate::domain::intent::IntentStatus::Paid,
                            );
                            (intent, reference, status)
                        }),
                    }),
                    _ => None,
                };
                Ok(IngestOutcome {
                    transaction,
                    duplicate: false,
                    credit,
                })
            }

            async fn bank_transaction(
                &self,
                id: uuid::Uuid,
            ) -> $crate::store::StoreResult<
                Option<$crate::store::bank_feed::StoredBankTransaction>,
            > {
                use $crate::store::bank_feed::{
                    BankTransactionRow, BANK_TRANSACTION_COLUMNS, BANK_TRANSACTION_FROM,
                };
                let row: Option<BankTransactionRow> = sqlx::query_as(&format!(
                    "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} WHERE b.id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(BankTransactionRow::into_domain).transpose()
            }

            async fn list_unmatched(
                &self,
                after: Option<(i64, uuid::Uuid)>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::bank_feed::StoredBankTransaction>>
            {
                use $crate::store::bank_feed::{
                    BankTransactionRow, BANK_TRANSACTION_COLUMNS, BANK_TRANSACTION_FROM,
                };
                let (after_at, after_id) = after.unwrap_or((i64::MIN, uuid::Uuid::nil()));
                let rows: Vec<BankTransactionRow> = sqlx::query_as(&format!(
                    "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} \
                     WHERE b.suspense_amount > 0 AND b.matched_as <> 'refund' AND r.id IS NULL \
                       AND (b.created_at > $1 OR (b.created_at = $1 AND b.id > $2)) \
                     ORDER BY b.created_at, b.id LIMIT $3"
                ))
                .bind(after_at)
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(BankTransactionRow::into_domain).collect()
            }

            async fn bank_transactions_between(
                &self,
                collection_account_id: uuid::Uuid,
                from: i64,
                to: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::bank_feed::StoredBankTransaction>>
            {
                use $crate::store::bank_feed::{
                    BankTransactionRow, BANK_TRANSACTION_COLUMNS, BANK_TRANSACTION_FROM,
                };
                let rows: Vec<BankTransactionRow> = sqlx::query_as(&format!(
                    "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} \
                     WHERE b.collection_account_id = $1 AND b.occurred_at >= $2 \
                       AND b.occurred_at < $3 ORDER BY b.occurred_at, b.id"
                ))
                .bind(collection_account_id)
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(BankTransactionRow::into_domain).collect()
            }

            async fn resolve(
                &self,
                claim: &$crate::store::IdempotencyClaim,
                bank_transaction_id: uuid::Uuid,
                action: $crate::store::bank_feed::ResolutionAction,
                note: &str,
                by: (uuid::Uuid, &str),
                now: i64,
                respond: $crate::store::bank_feed::ResolutionResponder<'_>,
            ) -> $crate::store::StoreResult<
                $crate::store::Idempotent<
                    Result<
                        $crate::store::bank_feed::StoredBankTransaction,
                        $crate::store::bank_feed::ResolveRejection,
                    >,
                >,
            > {
                use $crate::domain::bank_feed::Direction;
                use $crate::store::bank_feed::{
                    ResolutionAction, ResolveRejection, SUSPENSE_ACCOUNT_ID,
                };
                use $crate::store::Idempotent;

                let (_write_guard, mut tx) = self.begin_write().await?;
                if let Some(earlier) = Self::claim_key(&mut tx, claim, None).await? {
                    tx.rollback().await?;
                    return earlier.map(Idempotent::Replay);
                }
                macro_rules! reject {
                    ($rejection:expr) => {{
                        tx.rollback().await?;
                        return Ok(Idempotent::Fresh(Err($rejection)));
                    }};
                }
                // Locks the row so a concurrent resolution of the same money waits, then sees
                // this one.
                let locked: Option<(String, i64, String, i64, uuid::Uuid)> =
                    sqlx::query_as(&format!(
                        "SELECT direction, suspense_amount, matched_as, amount, \
                           collection_account_id FROM bank_transactions WHERE id = $1{}",
                        Self::ROW_LOCK
                    ))
                    .bind(bank_transaction_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((direction, amount, matched_as, full_amount, collection)) = locked else {
                    reject!(ResolveRejection::NotFound(bank_transaction_id));
                };
                if amount == 0 || matched_as == "refund" {
                    reject!(ResolveRejection::NotInSuspense);
                }
                let resolved: Option<(uuid::Uuid,)> = sqlx::query_as(
                    "SELECT id FROM suspense_resolutions WHERE bank_transaction_id = $1",
                )
                .bind(bank_transaction_id)
                .fetch_optional(&mut *tx)
                .await?;
                if resolved.is_some() {
                    reject!(ResolveRejection::AlreadyResolved);
                }
                let outgoing = direction == Direction::Out.as_str();
                let ledger_transaction_id = uuid::Uuid::now_v7();
                let mut intent_update = None;
                let (payee, legs) = match action {
                    ResolutionAction::Refund if outgoing => {
                        reject!(ResolveRejection::OutgoingNeedsPayee)
                    }
                    ResolutionAction::Intent(_) if outgoing => {
                        reject!(ResolveRejection::OutgoingNeedsPayee)
                    }
                    ResolutionAction::Refund => (None, Vec::new()),
                    ResolutionAction::Duplicate(original) => {
                        let same: Option<(uuid::Uuid,)> = sqlx::query_as(
                            "SELECT c.ledger_account_id FROM bank_transactions b \
                             JOIN collection_accounts c ON c.id = b.collection_account_id \
                             WHERE b.id = $1 AND b.id <> $2 AND b.collection_account_id = $3 \
                               AND b.direction = $4 AND b.amount = $5",
                        )
                        .bind(original)
                        .bind(bank_transaction_id)
                        .bind(collection)
                        .bind(&direction)
                        .bind(full_amount)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let Some((bank_account,)) = same.filter(|_| amount == full_amount) else {
                            reject!(ResolveRejection::NotADuplicate);
                        };
                        // The reverse of what recording it posted: the money was counted once
                        // already.
                        let leg = if outgoing {
                            (bank_account, SUSPENSE_ACCOUNT_ID, amount)
                        } else {
                            (SUSPENSE_ACCOUNT_ID, bank_account, amount)
                        };
                        (None, vec![leg])
                    }
                    ResolutionAction::Intent(intent_id) => {
                        let Some(intent) = Self::lock_intent(&mut tx, intent_id).await? else {
                            reject!(ResolveRejection::IntentNotFound(intent_id));
                        };
                        // Staff assign money to an intent only where it fits: a cancelled or
                        // paid intent, or more than it still needs, goes to the payee instead
                        // (or back to the sender).
                        if intent.stored_status == $crate::domain::intent::IntentStatus::Cancelled
                            || amount > intent.amount - intent.paid_amount
                        {
                            reject!(ResolveRejection::ExceedsIntent);
                        }
                        let paid_amount = intent.paid_amount + amount;
                        let status = if paid_amount == intent.amount {
                            $crate::domain::intent::IntentStatus::Paid
                        } else {
                            $crate::domain::intent::IntentStatus::PartiallyPaid
                        };
                        intent_update = Some((intent_id, paid_amount, status));
                        let payee = Self::payee_ledger_account(&mut tx, intent.payee_id)
                            .await?
                            .ok_or_else(|| {
                                $crate::store::StoreError::Corrupt(format!(
                                    "intent {intent_id} has no payee"
                                ))
                            })?;
                        (Some(payee), vec![(SUSPENSE_ACCOUNT_ID, payee.1, amount)])
                    }
                    ResolutionAction::Payee(payee_id) => {
                        let Some(payee) = Self::payee_ledger_account(&mut tx, payee_id).await?
                        else {
                            reject!(ResolveRejection::PayeeNotFound(payee_id));
                        };
                        let leg = if outgoing {
                            (payee.1, SUSPENSE_ACCOUNT_ID, amount)
                        } else {
                            (SUSPENSE_ACCOUNT_ID, payee.1, amount)
                        };
                        (Some(payee), vec![leg])
                    }
                };
                let posted_ledger_transaction = if legs.is_empty() {
                    None
                } else {
                    let stored = Self::load_bank_transaction(&mut tx, bank_transaction_id).await?;
                    let draft = $crate::store::bank_feed::resolution_transaction(
                        ledger_transaction_id,
                        &stored,
                        action,
                        note,
                        &legs,
                        now,
                    )?;
                    if self
                        .post_first_that_fits(&mut tx, std::slice::from_ref(&draft))
                        .await?
                        .is_none()
                    {
                        reject!(ResolveRejection::PayeeBalanceShort);
                    }
                    Some(ledger_transaction_id)
                };
                if let Some((intent_id, paid_amount, status)) = intent_update {
                    Self::record_intent_payment(&mut tx, intent_id, paid_amount, status).await?;
                }
                sqlx::query(
                    "INSERT INTO suspense_resolutions (id, bank_transaction_id, action, \
                       payment_intent_id, payee_id, note, resolved_by, resolved_by_username, \
                       resolved_at, ledger_transaction_id, duplicate_of) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(uuid::Uuid::now_v7())
                .bind(bank_transaction_id)
                .bind(action.as_str())
                .bind(intent_update.map(|(intent, _, _)| intent))
                .bind(payee.map(|(payee, _)| payee))
                .bind(note)
                .bind(by.0)
                .bind(by.1)
                .bind(now)
                .bind(posted_ledger_transaction)
                .bind(match action {
                    ResolutionAction::Duplicate(original) => Some(original),
                    _ => None,
                })
                .execute(&mut *tx)
                .await?;
                let resolved = Self::load_bank_transaction(&mut tx, bank_transaction_id).await?;
                Self::store_key_response(&mut tx, claim, &respond(&resolved)).await?;
                tx.commit().await?;
                Ok(Idempotent::Fresh(Ok(resolved)))
            }

            async fn list_discrepancies(
                &self,
                after: Option<(i64, uuid::Uuid)>,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::bank_feed::Discrepancy>> {
                let (after_at, after_id) = after.unwrap_or((i64::MIN, uuid::Uuid::nil()));
                let rows: Vec<(uuid::Uuid, uuid::Uuid, uuid::Uuid, i64, i64, i64)> =
                    sqlx::query_as(
                        "SELECT id, collection_account_id, bank_transaction_id, bank_balance, \
                           ledger_balance, created_at FROM bank_discrepancies \
                         WHERE created_at > $1 OR (created_at = $1 AND id > $2) \
                         ORDER BY created_at, id LIMIT $3",
                    )
                    .bind(after_at)
                    .bind(after_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(id, collection_account_id, bank_transaction_id, bank, ledger, at)| {
                            $crate::store::bank_feed::Discrepancy {
                                id,
                                collection_account_id,
                                bank_transaction_id,
                                bank_balance: bank,
                                ledger_balance: ledger,
                                created_at: at,
                            }
                        },
                    )
                    .collect())
            }
        }

        impl $store {
            async fn insert_delivery(
                tx: &mut sqlx::Transaction<'static, $db>,
                delivery: &$crate::store::bank_feed::DeliveryRecord,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO webhook_deliveries (id, provider, collection_account_id, \
                       received_at, headers, body, provider_transaction_ids, outcome) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(delivery.id)
                .bind(delivery.provider.as_str())
                .bind(delivery.collection_account_id)
                .bind(delivery.received_at)
                .bind(&delivery.headers)
                .bind(&delivery.body)
                .bind(&delivery.provider_transaction_ids)
                .bind(&delivery.outcome)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            async fn bank_transaction_by_provider_id(
                tx: &mut sqlx::Transaction<'static, $db>,
                bank: &$crate::domain::bank_feed::BankTransaction,
            ) -> $crate::store::StoreResult<$crate::store::bank_feed::StoredBankTransaction> {
                use $crate::store::bank_feed::{
                    BankTransactionRow, BANK_TRANSACTION_COLUMNS, BANK_TRANSACTION_FROM,
                };
                let row: BankTransactionRow = sqlx::query_as(&format!(
                    "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} \
                     WHERE b.provider = $1 AND b.provider_transaction_id = $2"
                ))
                .bind(bank.provider.as_str())
                .bind(&bank.provider_transaction_id)
                .fetch_one(&mut **tx)
                .await?;
                row.into_domain()
            }

            async fn load_bank_transaction(
                tx: &mut sqlx::Transaction<'static, $db>,
                id: uuid::Uuid,
            ) -> $crate::store::StoreResult<$crate::store::bank_feed::StoredBankTransaction> {
                use $crate::store::bank_feed::{
                    BankTransactionRow, BANK_TRANSACTION_COLUMNS, BANK_TRANSACTION_FROM,
                };
                let row: BankTransactionRow = sqlx::query_as(&format!(
                    "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} WHERE b.id = $1"
                ))
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
                row.into_domain()
            }

            async fn lock_intent(
                tx: &mut sqlx::Transaction<'static, $db>,
                id: uuid::Uuid,
            ) -> $crate::store::StoreResult<Option<$crate::domain::intent::PaymentIntent>> {
                use $crate::store::payments::{IntentRow, INTENT_COLUMNS};
                let row: Option<IntentRow> = sqlx::query_as(&format!(
                    "SELECT {INTENT_COLUMNS} FROM payment_intents WHERE id = $1{}",
                    Self::ROW_LOCK
                ))
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
                row.map(IntentRow::into_domain).transpose()
            }

            /// What an intent has received and its status after it (the row is locked).
            async fn record_intent_payment(
                tx: &mut sqlx::Transaction<'static, $db>,
                intent_id: uuid::Uuid,
                paid_amount: i64,
                status: $crate::domain::intent::IntentStatus,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE payment_intents SET paid_amount = $2, status = $3 WHERE id = $1",
                )
                .bind(intent_id)
                .bind(paid_amount)
                .bind(status.as_str())
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// (payee id, its ledger account id)
            async fn payee_ledger_account(
                tx: &mut sqlx::Transaction<'static, $db>,
                payee_id: uuid::Uuid,
            ) -> $crate::store::StoreResult<Option<(uuid::Uuid, uuid::Uuid)>> {
                Ok(sqlx::query_as("SELECT id, ledger_account_id FROM payees WHERE id = $1")
                    .bind(payee_id)
                    .fetch_optional(&mut **tx)
                    .await?)
            }

            /// Decides what a fresh bank transaction pays, locking the intent or refund it
            /// settles.
            async fn plan(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                feed: &$crate::store::bank_feed::Feed,
                bank: &$crate::domain::bank_feed::BankTransaction,
            ) -> $crate::store::StoreResult<$crate::store::bank_feed::Plan> {
                use $crate::domain::bank_feed::Direction;
                use $crate::domain::reference::PaymentReference;
                use $crate::domain::settlement::{
                    settle_intent, Flag, IntentState,
                };
                use $crate::store::bank_feed::{
                    Alternative, MatchedAs, Plan, STATEMENT_ID_PREFIX, SUSPENSE_ACCOUNT_ID,
                };

                let bank_account = feed.ledger_account_id;
                let amount = bank.amount;
                let to_suspense = |flags: Vec<Flag>| Plan {
                    matched_as: MatchedAs::Suspense,
                    payee: None,
                    intent: None,
                    intent_update: None,
                    suspense_amount: amount,
                    flags,
                    alternatives: vec![Alternative {
                        legs: vec![match bank.direction {
                            Direction::In => (bank_account, SUSPENSE_ACCOUNT_ID, amount),
                            Direction::Out => (SUSPENSE_ACCOUNT_ID, bank_account, amount),
                        }],
                        fallback_to_suspense: None,
                    }],
                    refund_resolution: None,
                };

                // A feed's record of money a statement line already recorded under another
                // reference (the bank's FT number, the aggregator's own code) would count it
                // twice: the same amount on the same account within a day waits for staff.
                if !bank.provider_transaction_id.starts_with(STATEMENT_ID_PREFIX) {
                    const DAY_MICROS: i64 = 86_400_000_000;
                    let at = bank.occurred_at.timestamp_micros();
                    let recorded: Option<(uuid::Uuid,)> = sqlx::query_as(&format!(
                        "SELECT id FROM bank_transactions \
                         WHERE collection_account_id = $1 AND direction = $2 AND amount = $3 \
                           AND occurred_at >= $4 AND occurred_at <= $5 \
                           AND substr(provider_transaction_id, 1, {}) = '{STATEMENT_ID_PREFIX}' \
                         LIMIT 1",
                        STATEMENT_ID_PREFIX.len()
                    ))
                    .bind(feed.collection_account_id)
                    .bind(bank.direction.as_str())
                    .bind(amount)
                    .bind(at.saturating_sub(DAY_MICROS))
                    .bind(at.saturating_add(DAY_MICROS))
                    .fetch_optional(&mut **tx)
                    .await?;
                    if recorded.is_some() {
                        return Ok(to_suspense(vec![Flag::PossibleDuplicate]));
                    }
                }

                if bank.direction == Direction::Out {
                    let named = self.payee_named_in(tx, feed, bank).await?;
                    if let $crate::store::bank_feed::PayeeMatch::One(payee) = named {
                        return Ok(Plan {
                            matched_as: MatchedAs::Payee,
                            payee: Some(payee),
                            intent: None,
                            intent_update: None,
                            suspense_amount: 0,
                            flags: Vec::new(),
                            alternatives: vec![
                                Alternative {
                                    legs: vec![(payee.1, bank_account, amount)],
                                    fallback_to_suspense: None,
                                },
                                Alternative {
                                    legs: vec![(SUSPENSE_ACCOUNT_ID, bank_account, amount)],
                                    fallback_to_suspense: Some(Flag::PayeeBalanceShort),
                                },
                            ],
                            refund_resolution: None,
                        });
                    }
                    // Not a payout a memo names: paying back money parked in suspense (a
                    // refund staff decided on) of this amount, oldest first.
                    let refund: Option<(uuid::Uuid,)> = sqlx::query_as(&format!(
                        "SELECT r.id FROM suspense_resolutions r \
                         JOIN bank_transactions b ON b.id = r.bank_transaction_id \
                         WHERE r.action = 'refund' AND r.refunded_by_bank_transaction_id IS NULL \
                           AND b.collection_account_id = $1 AND b.suspense_amount = $2 \
                         ORDER BY r.resolved_at, r.id LIMIT 1{}",
                        Self::ROW_LOCK
                    ))
                    .bind(feed.collection_account_id)
                    .bind(amount)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if let Some((resolution,)) = refund {
                        let mut plan = to_suspense(Vec::new());
                        plan.matched_as = MatchedAs::Refund;
                        plan.refund_resolution = Some(resolution);
                        return Ok(plan);
                    }
                    return Ok(match named {
                        $crate::store::bank_feed::PayeeMatch::Several => {
                            to_suspense(vec![Flag::AmbiguousPayee, Flag::UnexplainedOutgoing])
                        }
                        _ => to_suspense(vec![Flag::UnexplainedOutgoing]),
                    });
                }

                let references: Vec<String> = PaymentReference::find_in_memo(&bank.description)
                    .into_iter()
                    .take($crate::store::shared::CHUNK_ROWS)
                    .map(|r| r.as_str().to_owned())
                    .collect();
                if !references.is_empty() {
                    use $crate::store::payments::{IntentRow, INTENT_COLUMNS};
                    let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {INTENT_COLUMNS} FROM payment_intents WHERE reference IN ("
                    ));
                    let mut list = query.separated(", ");
                    references.iter().for_each(|r| {
                        list.push_bind(r.as_str());
                    });
                    query.push(") ORDER BY id").push(Self::ROW_LOCK);
                    let rows: Vec<IntentRow> = query.build_query_as().fetch_all(&mut **tx).await?;
                    let intents = rows
                        .into_iter()
                        .map(IntentRow::into_domain)
                        .collect::<$crate::store::StoreResult<Vec<_>>>()?;
                    // The first reference in the memo that names an intent wins.
                    let named = references
                        .iter()
                        .find_map(|r| intents.iter().find(|i| &i.reference == r));
                    if let Some(intent) = named {
                        if intent.collection_account_id != feed.collection_account_id {
                            let mut plan = to_suspense(vec![Flag::WrongCollectionAccount]);
                            plan.intent = Some((intent.id, intent.reference.clone()));
                            return Ok(plan);
                        }
                        let payee = Self::payee_ledger_account(tx, intent.payee_id)
                            .await?
                            .ok_or_else(|| {
                                $crate::store::StoreError::Corrupt(format!(
                                    "intent {} has no payee",
                                    intent.id
                                ))
                            })?;
                        let settlement = settle_intent(
                            IntentState {
                                amount: intent.amount,
                                paid_amount: intent.paid_amount,
                                stored_status: intent.stored_status,
                                expires_at: intent.expires_at,
                            },
                            amount,
                            bank.occurred_at.timestamp_micros(),
                        );
                        let mut legs = Vec::new();
                        if settlement.to_payee > 0 {
                            legs.push((bank_account, payee.1, settlement.to_payee));
                        }
                        if settlement.to_suspense > 0 {
                            legs.push((bank_account, SUSPENSE_ACCOUNT_ID, settlement.to_suspense));
                        }
                        return Ok(Plan {
                            matched_as: MatchedAs::Intent,
                            payee: Some(payee),
                            intent: Some((intent.id, intent.reference.clone())),
                            intent_update: Some((settlement.paid_amount, settlement.status)),
                            suspense_amount: settlement.to_suspense,
                            flags: settlement.flags,
                            alternatives: vec![Alternative {
                                legs,
                                fallback_to_suspense: None,
                            }],
                            refund_resolution: None,
                        });
                    }
                }
                Ok(match self.payee_named_in(tx, feed, bank).await? {
                    $crate::store::bank_feed::PayeeMatch::One(payee) => Plan {
                        matched_as: MatchedAs::Payee,
                        payee: Some(payee),
                        intent: None,
                        intent_update: None,
                        suspense_amount: 0,
                        flags: Vec::new(),
                        alternatives: vec![Alternative {
                            legs: vec![(bank_account, payee.1, amount)],
                            fallback_to_suspense: None,
                        }],
                        refund_resolution: None,
                    },
                    $crate::store::bank_feed::PayeeMatch::Several => {
                        to_suspense(vec![Flag::AmbiguousPayee])
                    }
                    $crate::store::bank_feed::PayeeMatch::None => to_suspense(Vec::new()),
                })
            }

            /// The payee of this collection account whose code is a word of the memo.
            async fn payee_named_in(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                feed: &$crate::store::bank_feed::Feed,
                bank: &$crate::domain::bank_feed::BankTransaction,
            ) -> $crate::store::StoreResult<$crate::store::bank_feed::PayeeMatch> {
                use $crate::store::bank_feed::PayeeMatch;
                let words = $crate::domain::settlement::payee_code_candidates(&bank.description);
                if words.is_empty() {
                    return Ok(PayeeMatch::None);
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT id, ledger_account_id FROM payees WHERE collection_account_id = ",
                );
                query.push_bind(feed.collection_account_id).push(" AND code IN (");
                let mut list = query.separated(", ");
                words
                    .iter()
                    .take($crate::store::shared::CHUNK_ROWS)
                    .for_each(|w| {
                        list.push_bind(w.as_str());
                    });
                query.push(") LIMIT 2");
                let found: Vec<(uuid::Uuid, uuid::Uuid)> =
                    query.build_query_as().fetch_all(&mut **tx).await?;
                Ok(match found.as_slice() {
                    [] => PayeeMatch::None,
                    [one] => PayeeMatch::One(*one),
                    _ => PayeeMatch::Several,
                })
            }

            /// Locks the accounts of all candidates at once (in id order, behind the account
            /// gate, as every posting does), then posts the first candidate the accounts' rules
            /// allow. Taking every lock up front means falling back never locks out of order.
            async fn post_first_that_fits(
                &self,
                tx: &mut sqlx::Transaction<'static, $db>,
                candidates: &[$crate::domain::transaction::NewTransaction],
            ) -> $crate::store::StoreResult<Option<usize>> {
                use std::collections::BTreeSet;
                let account_ids: Vec<uuid::Uuid> = candidates
                    .iter()
                    .flat_map(|t| t.account_ids())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let _account_gates = self.gate_accounts(&account_ids).await;
                let mut accounts = Self::lock_accounts(tx, &account_ids).await?;
                if accounts.len() != account_ids.len() {
                    return Err($crate::store::StoreError::Corrupt(
                        "an account of a bank-feed posting does not exist".into(),
                    ));
                }
                for (index, candidate) in candidates.iter().enumerate() {
                    if let Ok(entries) =
                        $crate::domain::transaction::apply(&mut accounts, candidate)
                    {
                        let by = $crate::store::bank_feed::BANK_FEED_USER_ID;
                        Self::write_applied(tx, &account_ids, &accounts, &[(candidate, by)], &entries)
                            .await?;
                        return Ok(Some(index));
                    }
                }
                Ok(None)
            }
        }
    };
}

pub(super) use crate::domain::bank_feed::STATEMENT_ID_PREFIX;

/// The provider transaction id of a transfer recorded from a bank statement line. The bank
/// reference alone is not unique: a transfer between two monitored accounts, or a refund,
/// carries the same one on another account or in the other direction.
pub fn statement_transaction_id(
    collection_account_id: Uuid,
    direction: Direction,
    bank_reference: &str,
) -> String {
    format!(
        "{STATEMENT_ID_PREFIX}{collection_account_id}:{}:{}",
        direction.as_str(),
        bank_reference.trim()
    )
}

/// Which payees a memo names.
pub(super) enum PayeeMatch {
    None,
    /// (payee id, ledger account id)
    One((Uuid, Uuid)),
    Several,
}

/// Secrets as stored: a JSON array of strings.
pub(super) fn parse_secrets(json: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("feed secrets: {e}")))
}
