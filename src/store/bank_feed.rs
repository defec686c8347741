//! Bank feeds in the database: feed configuration, raw deliveries, bank transactions recorded
//! once per provider id, suspense resolutions and running-balance discrepancies. Reads and
//! writes only: how a transfer is matched and how suspense may be resolved are decided in
//! `domain::bank_feed::{matching, resolution}`, by the bank-feed service, which holds the
//! [`UnitOfWork`] these methods run in. The SQL is the same text on both backends.

use std::collections::HashSet;

use async_trait::async_trait;
use uuid::Uuid;

use super::payments::{IntentRow, INTENT_COLUMNS};
use super::schools::{IntentPupilRow, PupilRow};
use super::unit_of_work::{Backend, BackendRow, UnitOfWork};
use super::{StoreError, StoreResult};
use crate::domain::audit::AuditRecord;
use crate::domain::bank_feed::matching::{PayeeAccount, PayeeMatch, Plan};
use crate::domain::bank_feed::resolution::{OriginalRecord, SuspenseRecord};
use crate::domain::bank_feed::{BankTransaction, Direction, Provider};
use crate::domain::intent::{IntentStatus, PaymentIntent};
use crate::domain::settlement::{join_flags, split_flags, Flag};

pub use crate::domain::bank_feed::matching::{
    Credit, MatchedAs, BANK_FEED_USER_ID, SUSPENSE_ACCOUNT_ID,
};
pub use crate::domain::bank_feed::resolution::{ResolutionAction, ResolveRejection};
pub(super) use crate::domain::bank_feed::STATEMENT_ID_PREFIX;

/// Picks the statement lines out of `bank_transactions` ([`STATEMENT_ID_PREFIX`]). Written into
/// the SQL, not bound: it is the predicate of the partial index
/// `bank_transactions_statement_lines`, and a database uses a partial index only for a query
/// that states its predicate.
const STATEMENT_LINE: &str = "substr(provider_transaction_id, 1, 10) = 'statement:'";

/// A collection account with a configured feed, as the webhook route needs it.
#[derive(Debug, Clone)]
pub struct Feed {
    pub collection_account_id: Uuid,
    pub bank_bin: String,
    pub account_number: String,
    pub ledger_account_id: Uuid,
    pub provider: Provider,
    pub secrets: StoredSecrets,
}

/// A feed's secrets as stored: sealed under the key `key_id` names (see `domain::sealing`),
/// or readable when written before secrets were sealed (no key id).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredSecrets {
    pub key_id: Option<String>,
    pub values: Vec<String>,
}

impl std::fmt::Debug for StoredSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} secrets under key {:?}",
            self.values.len(),
            self.key_id
        )
    }
}

impl StoredSecrets {
    fn parse(json: &str, key_id: Option<String>) -> StoreResult<Self> {
        let values = serde_json::from_str(json)
            .map_err(|e| StoreError::Corrupt(format!("feed secrets: {e}")))?;
        Ok(Self { key_id, values })
    }

    fn json(&self) -> String {
        serde_json::to_string(&self.values).expect("strings serialize")
    }
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
    /// The payer's account as the feed reported it: its keyed hash and last 4 digits.
    pub payer_account: Option<(String, String)>,
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

#[async_trait]
pub trait BankFeedStore {
    /// Opens a write transaction for a use case that reads, decides and writes in one.
    async fn begin(&self) -> StoreResult<UnitOfWork<'_>>;
    /// [`Self::begin`] for the writer of webhook delivery groups (see
    /// `Backend::begin_group_unit`).
    async fn begin_group(&self) -> StoreResult<UnitOfWork<'_>>;
    async fn list_collection_accounts(&self) -> StoreResult<Vec<CollectionAccountSummary>>;
    /// Sets the provider and secrets of a collection account, with the audit
    /// record of the change (its `before` is filled here: the provider it replaces); false when
    /// there is no such account.
    async fn set_feed(
        &self,
        collection_account_id: Uuid,
        provider: Provider,
        secrets: &StoredSecrets,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    async fn feeds(&self, provider: Provider) -> StoreResult<Vec<Feed>>;
    /// Whether some collection account has this account number, feed or not.
    async fn account_number_known(&self, account_number: &str) -> StoreResult<bool>;
    async fn record_delivery(&self, delivery: &DeliveryRecord) -> StoreResult<()>;
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
    async fn list_discrepancies(
        &self,
        after: Option<(i64, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<Discrepancy>>;
    /// Stored deliveries with this outcome, oldest first.
    async fn list_deliveries(
        &self,
        outcome: &str,
        after: Option<(i64, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>>;
}

/// Rows per multi-row statement of a group of deliveries: a group is at most 64, so one
/// statement, well under both backends' bind limits.
const GROUP_CHUNK_ROWS: usize = 256;

/// The most payee codes looked up for one memo (a bound on the statement, not a rule).
pub const MAX_MEMO_CODES: usize = super::ledger::CHUNK_ROWS;
/// References [`UnitOfWork::lock_intents_by_reference`] (and `lock_named_intents`) look up at
/// most (one statement).
pub const MAX_INTENT_REFERENCES: usize = super::ledger::CHUNK_ROWS;

pub(super) const BANK_TRANSACTION_COLUMNS: &str = "b.id, b.provider, b.provider_transaction_id, \
    b.collection_account_id, b.direction, b.amount, b.description, b.bank_reference, \
    b.occurred_at, b.running_balance, b.matched_as, b.payee_id, b.payment_intent_id, \
    b.suspense_amount, b.flags, b.ledger_transaction_id, b.created_at, \
    r.id AS r_id, r.action AS r_action, r.payment_intent_id AS r_intent, r.payee_id AS r_payee, \
    r.note AS r_note, r.resolved_by AS r_by, r.resolved_by_username AS r_username, \
    r.resolved_at AS r_at, r.ledger_transaction_id AS r_ledger, \
    r.refunded_by_bank_transaction_id AS r_refunded_by, r.duplicate_of AS r_duplicate_of, \
    b.payer_account_hash, pa.last4 AS payer_last4";

pub(super) const BANK_TRANSACTION_FROM: &str =
    "bank_transactions b LEFT JOIN suspense_resolutions r ON r.bank_transaction_id = b.id \
     LEFT JOIN payer_accounts pa ON pa.account_hash = b.payer_account_hash";

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
    payer_account_hash: Option<String>,
    payer_last4: Option<String>,
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
            matched_as: MatchedAs::parse(&self.matched_as).ok_or_else(|| corrupt("matched_as"))?,
            payee_id: self.payee_id,
            payment_intent_id: self.payment_intent_id,
            suspense_amount: self.suspense_amount,
            flags: split_flags(&self.flags),
            ledger_transaction_id: self.ledger_transaction_id,
            created_at: self.created_at,
            resolution,
            payer_account: self.payer_account_hash.zip(self.payer_last4),
        })
    }
}

/// A fresh bank transaction, to claim its provider id with.
#[derive(Debug, Clone, Copy)]
pub struct NewBankRecord<'a> {
    pub id: Uuid,
    pub ledger_transaction_id: Uuid,
    pub delivery_id: Uuid,
    pub collection_account_id: Uuid,
    pub transfer: &'a BankTransaction,
    /// The keyed hash of the transfer's payer account, when the feed reported one.
    pub payer_account_hash: Option<&'a str>,
    pub now: i64,
    /// What it matched, when it is written once its plan is posted; without one it is written
    /// in suspense, and [`UnitOfWork::record_match`] writes the match.
    pub plan: Option<&'a Plan>,
}

impl NewBankRecord<'_> {
    /// The record as [`UnitOfWork::load_bank_transaction`] reads it back once written: what
    /// the group's answers are built from without reading it. `payer_last4` is the last 4
    /// digits of the payer account (the same for every transfer from it).
    pub fn stored(&self, payer_last4: Option<String>) -> StoredBankTransaction {
        let bank = self.transfer;
        let (matched_as, payee_id, payment_intent_id, suspense_amount, flags) =
            self.match_columns();
        StoredBankTransaction {
            id: self.id,
            provider: bank.provider,
            provider_transaction_id: bank.provider_transaction_id.clone(),
            collection_account_id: self.collection_account_id,
            direction: bank.direction,
            amount: bank.amount,
            description: bank.description.clone(),
            bank_reference: bank.reference.clone(),
            occurred_at: bank.occurred_at.timestamp_micros(),
            running_balance: bank.running_balance,
            matched_as,
            payee_id,
            payment_intent_id,
            suspense_amount,
            flags: split_flags(&flags),
            ledger_transaction_id: self.ledger_transaction_id,
            created_at: self.now,
            resolution: None,
            payer_account: self.payer_account_hash.map(str::to_owned).zip(payer_last4),
        }
    }

    /// (matched_as, payee, intent, suspense amount, flags) as written.
    fn match_columns(&self) -> (MatchedAs, Option<Uuid>, Option<Uuid>, i64, String) {
        match self.plan {
            Some(plan) => (
                plan.matched_as,
                plan.payee.map(|p| p.payee_id),
                plan.intent.as_ref().map(|(intent, _)| *intent),
                plan.suspense_amount,
                join_flags(&plan.flags),
            ),
            None => (MatchedAs::Suspense, None, None, 0, String::new()),
        }
    }
}

/// A staff resolution of money in suspense, as written.
#[derive(Debug, Clone, Copy)]
pub struct NewResolution<'a> {
    pub id: Uuid,
    pub bank_transaction_id: Uuid,
    pub action: ResolutionAction,
    pub payment_intent_id: Option<Uuid>,
    pub payee_id: Option<Uuid>,
    pub note: &'a str,
    pub resolved_by: (Uuid, &'a str),
    pub resolved_at: i64,
    pub ledger_transaction_id: Option<Uuid>,
    pub duplicate_of: Option<Uuid>,
}

type FeedRow = (Uuid, String, String, Uuid, String, Option<String>);

type CollectionAccountRow = (
    Uuid,
    String,
    String,
    String,
    Uuid,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn collection_account_summary(
    row: CollectionAccountRow,
    payees: &[(Uuid, Uuid, String)],
) -> StoreResult<CollectionAccountSummary> {
    let (id, bank_bin, account_number, holder_name, ledger, provider, secrets, at) = row;
    let feed = match (provider, secrets, at) {
        (Some(provider), Some(secrets), Some(updated_at)) => Some(FeedSummary {
            provider: Provider::parse(&provider).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            secret_count: StoredSecrets::parse(&secrets, None)?.values.len(),
            updated_at,
        }),
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
}

#[async_trait]
impl<T: Backend> BankFeedStore for T {
    async fn begin(&self) -> StoreResult<UnitOfWork<'_>> {
        self.begin_unit().await
    }

    async fn begin_group(&self) -> StoreResult<UnitOfWork<'_>> {
        self.begin_group_unit().await
    }

    async fn list_collection_accounts(&self) -> StoreResult<Vec<CollectionAccountSummary>> {
        let sql = "SELECT c.id, c.bank_bin, c.account_number, c.holder_name, \
                   c.ledger_account_id, f.provider, f.secrets, f.updated_at \
                   FROM collection_accounts c \
                   LEFT JOIN bank_feeds f ON f.collection_account_id = c.id \
                   ORDER BY c.bank_bin, c.account_number";
        let accounts: Vec<CollectionAccountRow> = pool_rows!(self, fetch_all, sql)?;
        let sql = "SELECT collection_account_id, id, code FROM payees ORDER BY code";
        let payees: Vec<(Uuid, Uuid, String)> = pool_rows!(self, fetch_all, sql)?;
        accounts
            .into_iter()
            .map(|row| collection_account_summary(row, &payees))
            .collect()
    }

    async fn set_feed(
        &self,
        collection_account_id: Uuid,
        provider: Provider,
        secrets: &StoredSecrets,
        mut audit: AuditRecord,
    ) -> StoreResult<bool> {
        let mut unit = self.begin_unit().await?;
        let sql = "SELECT id FROM collection_accounts WHERE id = $1";
        let exists: Option<(Uuid,)> = tx_rows!(unit, fetch_optional, sql, collection_account_id)?;
        if exists.is_none() {
            unit.rollback().await?;
            return Ok(false);
        }
        let sql = format!(
            "SELECT provider FROM bank_feeds WHERE collection_account_id = $1{}",
            unit.row_lock()
        );
        let replaced: Option<(String,)> =
            tx_rows!(unit, fetch_optional, &sql, collection_account_id)?;
        audit.before = replaced.map(|(provider,)| serde_json::json!({ "provider": provider }));
        let (now, by) = (audit.recorded_at, audit.actor.user_id);
        let sql = "INSERT INTO bank_feeds \
                   (collection_account_id, provider, secrets, secrets_key_id, updated_at, \
                    updated_by) \
                   VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (collection_account_id) DO UPDATE SET \
                     provider = excluded.provider, secrets = excluded.secrets, \
                     secrets_key_id = excluded.secrets_key_id, \
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by";
        execute!(
            unit,
            sql,
            collection_account_id,
            provider.as_str(),
            secrets.json(),
            &secrets.key_id,
            now,
            by
        )?;
        unit.append_audit(&audit).await?;
        unit.commit().await?;
        Ok(true)
    }

    async fn feeds(&self, provider: Provider) -> StoreResult<Vec<Feed>> {
        let sql = "SELECT c.id, c.bank_bin, c.account_number, c.ledger_account_id, f.secrets, \
                     f.secrets_key_id \
                   FROM bank_feeds f JOIN collection_accounts c ON c.id = f.collection_account_id \
                   WHERE f.provider = $1";
        let rows: Vec<FeedRow> = pool_rows!(self, fetch_all, sql, provider.as_str())?;
        rows.into_iter()
            .map(
                |(id, bank_bin, account_number, ledger_account_id, secrets, key_id)| {
                    Ok(Feed {
                        collection_account_id: id,
                        bank_bin,
                        account_number,
                        ledger_account_id,
                        provider,
                        secrets: StoredSecrets::parse(&secrets, key_id)?,
                    })
                },
            )
            .collect()
    }

    async fn account_number_known(&self, account_number: &str) -> StoreResult<bool> {
        let sql = "SELECT id FROM collection_accounts WHERE account_number = $1 LIMIT 1";
        let found: Option<(Uuid,)> = pool_rows!(self, fetch_optional, sql, account_number)?;
        Ok(found.is_some())
    }

    async fn record_delivery(&self, delivery: &DeliveryRecord) -> StoreResult<()> {
        let mut unit = self.begin_unit().await?;
        unit.insert_delivery(delivery).await?;
        unit.commit().await
    }

    async fn bank_transaction(&self, id: Uuid) -> StoreResult<Option<StoredBankTransaction>> {
        let sql = format!(
            "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} WHERE b.id = $1"
        );
        let row: Option<BankTransactionRow> = pool_rows!(self, fetch_optional, &sql, id)?;
        row.map(BankTransactionRow::into_domain).transpose()
    }

    async fn list_unmatched(
        &self,
        after: Option<(i64, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<StoredBankTransaction>> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, Uuid::nil()));
        let sql = format!(
            "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} \
             WHERE b.suspense_amount > 0 AND b.matched_as <> 'refund' AND r.id IS NULL \
               AND (b.created_at > $1 OR (b.created_at = $1 AND b.id > $2)) \
             ORDER BY b.created_at, b.id LIMIT $3"
        );
        let rows: Vec<BankTransactionRow> =
            pool_rows!(self, fetch_all, &sql, after_at, after_id, i64::from(limit))?;
        rows.into_iter()
            .map(BankTransactionRow::into_domain)
            .collect()
    }

    async fn bank_transactions_between(
        &self,
        collection_account_id: Uuid,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<StoredBankTransaction>> {
        let sql = format!(
            "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} \
             WHERE b.collection_account_id = $1 AND b.occurred_at >= $2 \
               AND b.occurred_at < $3 ORDER BY b.occurred_at, b.id"
        );
        let rows: Vec<BankTransactionRow> =
            pool_rows!(self, fetch_all, &sql, collection_account_id, from, to)?;
        rows.into_iter()
            .map(BankTransactionRow::into_domain)
            .collect()
    }

    async fn list_discrepancies(
        &self,
        after: Option<(i64, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<Discrepancy>> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, Uuid::nil()));
        let sql = "SELECT id, collection_account_id, bank_transaction_id, bank_balance, \
                     ledger_balance, created_at FROM bank_discrepancies \
                   WHERE created_at > $1 OR (created_at = $1 AND id > $2) \
                   ORDER BY created_at, id LIMIT $3";
        let rows: Vec<(Uuid, Uuid, Uuid, i64, i64, i64)> =
            pool_rows!(self, fetch_all, sql, after_at, after_id, i64::from(limit))?;
        Ok(rows
            .into_iter()
            .map(
                |(id, collection_account_id, bank_transaction_id, bank, ledger, at)| Discrepancy {
                    id,
                    collection_account_id,
                    bank_transaction_id,
                    bank_balance: bank,
                    ledger_balance: ledger,
                    created_at: at,
                },
            )
            .collect())
    }

    async fn list_deliveries(
        &self,
        outcome: &str,
        after: Option<(i64, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let (after_at, after_id) = after.unwrap_or((i64::MIN, Uuid::nil()));
        let sql = "SELECT id, provider, collection_account_id, received_at, headers, body, \
                     provider_transaction_ids, outcome FROM webhook_deliveries \
                   WHERE outcome = $1 \
                     AND (received_at > $2 OR (received_at = $2 AND id > $3)) \
                   ORDER BY received_at, id LIMIT $4";
        let rows: Vec<DeliveryRow> = pool_rows!(
            self,
            fetch_all,
            sql,
            outcome,
            after_at,
            after_id,
            i64::from(limit)
        )?;
        rows.into_iter().map(delivery_record).collect()
    }
}

type DeliveryRow = (
    Uuid,
    String,
    Option<Uuid>,
    i64,
    String,
    Vec<u8>,
    String,
    String,
);

fn delivery_record(row: DeliveryRow) -> StoreResult<DeliveryRecord> {
    let (id, provider, collection_account_id, received_at, headers, body, ids, outcome) = row;
    Ok(DeliveryRecord {
        id,
        provider: Provider::parse(&provider)
            .map_err(|e| StoreError::Corrupt(format!("delivery {id}: {e}")))?,
        collection_account_id,
        received_at,
        headers,
        body,
        provider_transaction_ids: ids,
        outcome,
    })
}

/// The bank-feed reads and writes of a use case's database transaction.
impl UnitOfWork<'_> {
    /// The secrets of every feed not sealed under `key_id` (readable, or under an older key),
    /// locked until this transaction ends.
    pub async fn feed_secrets_not_under(
        &mut self,
        key_id: &str,
    ) -> StoreResult<Vec<(Uuid, StoredSecrets)>> {
        let sql = format!(
            "SELECT collection_account_id, secrets, secrets_key_id FROM bank_feeds \
             WHERE secrets_key_id IS NULL OR secrets_key_id <> $1 \
             ORDER BY collection_account_id{}",
            self.row_lock()
        );
        let rows: Vec<(Uuid, String, Option<String>)> = tx_rows!(self, fetch_all, &sql, key_id)?;
        rows.into_iter()
            .map(|(id, json, key_id)| Ok((id, StoredSecrets::parse(&json, key_id)?)))
            .collect()
    }

    /// Replaces a feed's secrets with the same secrets sealed again.
    pub async fn reseal_feed_secrets(
        &mut self,
        collection_account_id: Uuid,
        secrets: &StoredSecrets,
    ) -> StoreResult<()> {
        let sql = "UPDATE bank_feeds SET secrets = $1, secrets_key_id = $2 \
                   WHERE collection_account_id = $3";
        execute!(
            self,
            sql,
            secrets.json(),
            &secrets.key_id,
            collection_account_id
        )?;
        Ok(())
    }

    pub async fn insert_delivery(&mut self, delivery: &DeliveryRecord) -> StoreResult<()> {
        self.insert_deliveries(&[delivery]).await
    }

    /// Stores deliveries in one statement.
    pub async fn insert_deliveries(&mut self, deliveries: &[&DeliveryRecord]) -> StoreResult<()> {
        for chunk in deliveries.chunks(GROUP_CHUNK_ROWS) {
            on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(
                    "INSERT INTO webhook_deliveries (id, provider, collection_account_id, \
                       received_at, headers, body, provider_transaction_ids, outcome) ",
                );
                query.push_values(chunk, |mut row, delivery| {
                    row.push_bind(delivery.id)
                        .push_bind(delivery.provider.as_str())
                        .push_bind(delivery.collection_account_id)
                        .push_bind(delivery.received_at)
                        .push_bind(&delivery.headers)
                        .push_bind(&delivery.body)
                        .push_bind(&delivery.provider_transaction_ids)
                        .push_bind(&delivery.outcome);
                });
                query.build().execute(&mut **tx).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    /// The account's records in this direction whose bank reference, trimmed and uppercased,
    /// is `normalized_reference`; oldest first.
    pub async fn bank_transactions_with_reference(
        &mut self,
        collection_account_id: Uuid,
        direction: Direction,
        normalized_reference: &str,
    ) -> StoreResult<Vec<StoredBankTransaction>> {
        let sql = format!(
            "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} \
             WHERE b.collection_account_id = $1 AND b.direction = $2 \
               AND UPPER(TRIM(b.bank_reference)) = $3 \
             ORDER BY b.occurred_at, b.id"
        );
        let rows: Vec<BankTransactionRow> = tx_rows!(
            self,
            fetch_all,
            &sql,
            collection_account_id,
            direction.as_str(),
            normalized_reference
        )?;
        rows.into_iter()
            .map(BankTransactionRow::into_domain)
            .collect()
    }

    /// Inserts the record under its provider id (in suspense until matched, without a plan);
    /// false when the provider id is already recorded. A concurrent copy of the same delivery
    /// waits here on PostgreSQL (or behind the write lock on SQLite), then finds it taken.
    pub async fn claim_bank_transaction(&mut self, record: NewBankRecord<'_>) -> StoreResult<bool> {
        Ok(!self.claim_bank_transactions(&[record]).await?.is_empty())
    }

    /// [`Self::claim_bank_transaction`] for several records, in order, in one statement per
    /// chunk: the ids of those claimed. A record whose provider id is recorded already, or
    /// claimed by an earlier record of the list, is not.
    pub async fn claim_bank_transactions(
        &mut self,
        records: &[NewBankRecord<'_>],
    ) -> StoreResult<HashSet<Uuid>> {
        let mut claimed = HashSet::with_capacity(records.len());
        for chunk in records.chunks(GROUP_CHUNK_ROWS) {
            let ids: Vec<(Uuid,)> = on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(
                    "INSERT INTO bank_transactions (id, provider, provider_transaction_id, \
                       delivery_id, collection_account_id, direction, amount, description, \
                       bank_reference, occurred_at, running_balance, matched_as, payee_id, \
                       payment_intent_id, suspense_amount, flags, ledger_transaction_id, \
                       created_at, payer_account_hash) ",
                );
                query.push_values(chunk, |mut row, record| {
                    let bank = record.transfer;
                    row.push_bind(record.id)
                        .push_bind(bank.provider.as_str())
                        .push_bind(&bank.provider_transaction_id)
                        .push_bind(record.delivery_id)
                        .push_bind(record.collection_account_id)
                        .push_bind(bank.direction.as_str())
                        .push_bind(bank.amount)
                        .push_bind(&bank.description)
                        .push_bind(bank.reference.as_deref())
                        .push_bind(bank.occurred_at.timestamp_micros())
                        .push_bind(bank.running_balance);
                    let (matched_as, payee_id, payment_intent_id, suspense_amount, flags) =
                        record.match_columns();
                    row.push_bind(matched_as.as_str())
                        .push_bind(payee_id)
                        .push_bind(payment_intent_id)
                        .push_bind(suspense_amount)
                        .push_bind(flags)
                        .push_bind(record.ledger_transaction_id)
                        .push_bind(record.now)
                        .push_bind(record.payer_account_hash);
                });
                query.push(
                    " ON CONFLICT (provider, provider_transaction_id) DO NOTHING RETURNING id",
                );
                query.build_query_as().fetch_all(&mut **tx).await
            })?;
            claimed.extend(ids.into_iter().map(|(id,)| id));
        }
        Ok(claimed)
    }

    /// The (provider, provider id) pairs among these that are recorded already: which of a
    /// run's transfers are copies, before any is written. A copy recorded concurrently and
    /// not yet committed is not seen here; [`Self::claim_bank_transactions`] finds it.
    pub async fn recorded_provider_ids(
        &mut self,
        ids: &[(Provider, &str)],
    ) -> StoreResult<HashSet<(String, String)>> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(GROUP_CHUNK_ROWS) {
            let rows: Vec<(String, String)> = on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT provider, provider_transaction_id FROM bank_transactions \
                     WHERE (provider, provider_transaction_id) IN (",
                );
                query.push_values(chunk, |mut row, (provider, id)| {
                    row.push_bind(provider.as_str()).push_bind(*id);
                });
                query.push(")");
                query.build_query_as().fetch_all(&mut **tx).await
            })?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Records a payer account seen on a transfer, unlinked; an account already known (linked
    /// or not) is left as it is.
    pub async fn note_payer_account(&mut self, account_hash: &str, last4: &str) -> StoreResult<()> {
        self.note_payer_accounts(&[(account_hash, last4)]).await
    }

    /// [`Self::note_payer_account`] for several (hash, last 4 digits), in one statement.
    pub async fn note_payer_accounts(&mut self, accounts: &[(&str, &str)]) -> StoreResult<()> {
        for chunk in accounts.chunks(GROUP_CHUNK_ROWS) {
            on_tx!(self, |tx| {
                let mut query =
                    sqlx::QueryBuilder::new("INSERT INTO payer_accounts (account_hash, last4) ");
                query.push_values(chunk, |mut row, (hash, last4)| {
                    row.push_bind(*hash).push_bind(*last4);
                });
                query.push(" ON CONFLICT (account_hash) DO NOTHING");
                query.build().execute(&mut **tx).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    pub async fn bank_transaction_by_provider_id(
        &mut self,
        provider: Provider,
        provider_transaction_id: &str,
    ) -> StoreResult<StoredBankTransaction> {
        let sql = format!(
            "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} \
             WHERE b.provider = $1 AND b.provider_transaction_id = $2"
        );
        let row: BankTransactionRow = tx_rows!(
            self,
            fetch_one,
            &sql,
            provider.as_str(),
            provider_transaction_id
        )?;
        row.into_domain()
    }

    pub async fn load_bank_transaction(&mut self, id: Uuid) -> StoreResult<StoredBankTransaction> {
        self.load_bank_transactions(&[id])
            .await?
            .pop()
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// The records with these ids, in no particular order; ids not recorded are left out.
    pub async fn load_bank_transactions(
        &mut self,
        ids: &[Uuid],
    ) -> StoreResult<Vec<StoredBankTransaction>> {
        let select = format!(
            "SELECT {BANK_TRANSACTION_COLUMNS} FROM {BANK_TRANSACTION_FROM} WHERE b.id IN ("
        );
        let rows: Vec<BankTransactionRow> = self
            .rows_for_ids(&select, ids, ")", GROUP_CHUNK_ROWS)
            .await?;
        let found = rows
            .into_iter()
            .map(BankTransactionRow::into_domain)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(found)
    }

    /// Whether a statement line recorded money of this amount and direction on the account
    /// between `from` and `to` (inclusive).
    pub async fn statement_record_between(
        &mut self,
        collection_account_id: Uuid,
        direction: Direction,
        amount: i64,
        (from, to): (i64, i64),
    ) -> StoreResult<bool> {
        let sql = format!(
            "SELECT id FROM bank_transactions \
             WHERE collection_account_id = $1 AND direction = $2 AND amount = $3 \
               AND occurred_at >= $4 AND occurred_at <= $5 AND {STATEMENT_LINE} \
             LIMIT 1"
        );
        let found: Option<(Uuid,)> = tx_rows!(
            self,
            fetch_optional,
            &sql,
            collection_account_id,
            direction.as_str(),
            amount,
            from,
            to
        )?;
        Ok(found.is_some())
    }

    /// (collection account, direction, amount, occurred_at) of the statement lines recorded
    /// on these accounts with one of these amounts between `from` and `to` (inclusive): what
    /// [`Self::statement_record_between`] looks for, for several transfers at once.
    pub async fn statement_records_between(
        &mut self,
        collection_account_ids: &[Uuid],
        amounts: &[i64],
        (from, to): (i64, i64),
    ) -> StoreResult<Vec<(Uuid, String, i64, i64)>> {
        if collection_account_ids.is_empty() || amounts.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for amounts in amounts.chunks(GROUP_CHUNK_ROWS) {
            let rows: Vec<(Uuid, String, i64, i64)> = on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT collection_account_id, direction, amount, occurred_at \
                     FROM bank_transactions WHERE collection_account_id IN (",
                );
                let mut list = query.separated(", ");
                collection_account_ids.iter().for_each(|id| {
                    list.push_bind(*id);
                });
                query.push(") AND amount IN (");
                let mut list = query.separated(", ");
                amounts.iter().for_each(|amount| {
                    list.push_bind(*amount);
                });
                query
                    .push(") AND occurred_at >= ")
                    .push_bind(from)
                    .push(" AND occurred_at <= ")
                    .push_bind(to)
                    .push(" AND ")
                    .push(STATEMENT_LINE);
                query.build_query_as().fetch_all(&mut **tx).await
            })?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// (collection account, code, payee id, ledger account) of the payees with one of these
    /// codes, on any account: what [`Self::payees_with_codes`] looks for, for several
    /// transfers at once.
    pub async fn payees_with_any_code(
        &mut self,
        codes: &[&str],
    ) -> StoreResult<Vec<(Uuid, String, Uuid, Uuid)>> {
        let mut found = Vec::new();
        for codes in codes.chunks(super::ledger::CHUNK_ROWS) {
            let rows: Vec<(Uuid, String, Uuid, Uuid)> = on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT collection_account_id, code, id, ledger_account_id FROM payees \
                     WHERE code IN (",
                );
                let mut list = query.separated(", ");
                codes.iter().for_each(|code| {
                    list.push_bind(*code);
                });
                query.push(")");
                query.build_query_as().fetch_all(&mut **tx).await
            })?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// (id, collection account, direction, bank reference as compared, provider id, when) of
    /// the records with one of these references (trimmed, uppercased) on these accounts, oldest
    /// first: what [`Self::bank_transactions_with_reference`] looks for, for several transfers
    /// at once.
    pub async fn records_with_references(
        &mut self,
        collection_account_ids: &[Uuid],
        normalized_references: &[&str],
    ) -> StoreResult<Vec<(Uuid, Uuid, String, String, String, i64)>> {
        if collection_account_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        for references in normalized_references.chunks(GROUP_CHUNK_ROWS) {
            let rows: Vec<(Uuid, Uuid, String, String, String, i64)> = on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT id, collection_account_id, direction, UPPER(TRIM(bank_reference)), \
                       provider_transaction_id, occurred_at FROM bank_transactions \
                     WHERE collection_account_id IN (",
                );
                let mut list = query.separated(", ");
                collection_account_ids.iter().for_each(|id| {
                    list.push_bind(*id);
                });
                query.push(") AND UPPER(TRIM(bank_reference)) IN (");
                let mut list = query.separated(", ");
                references.iter().for_each(|reference| {
                    list.push_bind(*reference);
                });
                query.push(")");
                query.build_query_as().fetch_all(&mut **tx).await
            })?;
            found.extend(rows);
        }
        found.sort_by_key(|row| (row.5, row.0));
        Ok(found)
    }

    /// The payees of the collection account with one of these codes (at most two are read:
    /// enough to tell one from several).
    pub async fn payees_with_codes(
        &mut self,
        collection_account_id: Uuid,
        codes: &[String],
    ) -> StoreResult<PayeeMatch> {
        if codes.is_empty() {
            return Ok(PayeeMatch::None);
        }
        let found: Vec<(Uuid, Uuid)> = on_tx!(self, |tx| {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT id, ledger_account_id FROM payees WHERE collection_account_id = ",
            );
            query
                .push_bind(collection_account_id)
                .push(" AND code IN (");
            let mut list = query.separated(", ");
            codes.iter().take(MAX_MEMO_CODES).for_each(|code| {
                list.push_bind(code.as_str());
            });
            query.push(") LIMIT 2");
            query.build_query_as().fetch_all(&mut **tx).await
        })?;
        Ok(match found.as_slice() {
            [] => PayeeMatch::None,
            [(payee_id, ledger_account_id)] => PayeeMatch::One(PayeeAccount {
                payee_id: *payee_id,
                ledger_account_id: *ledger_account_id,
            }),
            _ => PayeeMatch::Several,
        })
    }

    /// The oldest refund staff decided on that no outgoing transfer has paid yet, of this
    /// amount on this account; locked.
    pub async fn oldest_open_refund(
        &mut self,
        collection_account_id: Uuid,
        amount: i64,
    ) -> StoreResult<Option<Uuid>> {
        let sql = format!(
            "SELECT r.id FROM suspense_resolutions r \
             JOIN bank_transactions b ON b.id = r.bank_transaction_id \
             WHERE r.action = 'refund' AND r.refunded_by_bank_transaction_id IS NULL \
               AND b.collection_account_id = $1 AND b.suspense_amount = $2 \
             ORDER BY r.resolved_at, r.id LIMIT 1{}",
            self.row_lock()
        );
        let found: Option<(Uuid,)> =
            tx_rows!(self, fetch_optional, &sql, collection_account_id, amount)?;
        Ok(found.map(|(id,)| id))
    }

    /// The payment intents with these references, locked in id order.
    pub async fn lock_intents_by_reference(
        &mut self,
        references: &[String],
    ) -> StoreResult<Vec<PaymentIntent>> {
        let columns = intent_columns("i");
        let rows: Vec<IntentRow> = self.lock_intents_with(&columns, "", references).await?;
        rows.into_iter().map(IntentRow::into_domain).collect()
    }

    /// [`Self::lock_intents_by_reference`] with what recording a payment on each needs (its
    /// payee's ledger account, the pupil of a school run's QR, whether it is a household QR),
    /// in the same statement: a run of webhook payments reads them all at once.
    pub async fn lock_named_intents(
        &mut self,
        references: &[String],
    ) -> StoreResult<Vec<NamedIntentRecord>> {
        let columns = format!(
            "{}, y.ledger_account_id AS payee_account_id, \
             EXISTS (SELECT 1 FROM household_payment_intents h WHERE h.intent_id = i.id) \
               AS household, \
             p.id AS pupil_id, p.school_id AS pupil_school_id, p.code AS pupil_code, \
             p.full_name AS pupil_full_name, p.household_id AS pupil_household_id, \
             p.guardian_name AS pupil_guardian_name, p.guardian_phone AS pupil_guardian_phone, \
             p.receivable_account_id AS pupil_receivable_account_id, \
             s.code AS school_code, s.ledger_account_id AS school_account_id",
            intent_columns("i")
        );
        // An intent is a run's QR or one a correction superseded, never both (each table
        // is unique on the intent), so each intent is one row. Joined rather than looked up
        // in subqueries: PostgreSQL then finds the pupil by its key instead of hashing the
        // whole pupils table for every group.
        let joins = "JOIN payees y ON y.id = i.payee_id \
             LEFT JOIN school_run_intents ri ON ri.intent_id = i.id \
             LEFT JOIN school_superseded_intents si ON si.intent_id = i.id \
             LEFT JOIN pupils p ON p.id = COALESCE(ri.pupil_id, si.pupil_id) \
             LEFT JOIN payees s ON s.id = p.school_id";
        let rows: Vec<NamedIntentRow> = self.lock_intents_with(&columns, joins, references).await?;
        rows.into_iter().map(NamedIntentRow::into_record).collect()
    }

    /// `SELECT columns FROM payment_intents i joins` of the intents with these references
    /// (at most [`MAX_INTENT_REFERENCES`]), the intents locked in id order.
    async fn lock_intents_with<T>(
        &mut self,
        columns: &str,
        joins: &str,
        references: &[String],
    ) -> StoreResult<Vec<T>>
    where
        T: BackendRow,
    {
        if references.is_empty() {
            return Ok(Vec::new());
        }
        let row_lock = if self.row_lock().is_empty() {
            ""
        } else {
            " FOR UPDATE OF i"
        };
        Ok(on_tx!(self, |tx| {
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {columns} FROM payment_intents i {joins} WHERE i.reference IN ("
            ));
            let mut list = query.separated(", ");
            references.iter().take(MAX_INTENT_REFERENCES).for_each(|r| {
                list.push_bind(r.as_str());
            });
            query.push(") ORDER BY i.id").push(row_lock);
            query.build_query_as().fetch_all(&mut **tx).await
        })?)
    }

    pub async fn lock_intent(&mut self, id: Uuid) -> StoreResult<Option<PaymentIntent>> {
        let sql = format!(
            "SELECT {INTENT_COLUMNS} FROM payment_intents WHERE id = $1{}",
            self.row_lock()
        );
        let row: Option<IntentRow> = tx_rows!(self, fetch_optional, &sql, id)?;
        row.map(IntentRow::into_domain).transpose()
    }

    /// What an intent has received and its status after it (the row is locked).
    pub async fn record_intent_payment(
        &mut self,
        intent_id: Uuid,
        paid_amount: i64,
        status: IntentStatus,
    ) -> StoreResult<()> {
        self.record_intent_payments(&[(intent_id, paid_amount, status)])
            .await
    }

    /// [`Self::record_intent_payment`] for several intents, in one statement per chunk.
    pub async fn record_intent_payments(
        &mut self,
        payments: &[(Uuid, i64, IntentStatus)],
    ) -> StoreResult<()> {
        for chunk in payments.chunks(GROUP_CHUNK_ROWS) {
            let updated = on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new("WITH p (id, paid_amount, status) AS (");
                query.push_values(chunk, |mut row, (id, paid_amount, status)| {
                    row.push_bind(*id)
                        .push_bind(*paid_amount)
                        .push_bind(status.as_str());
                });
                query.push(
                    ") UPDATE payment_intents SET paid_amount = p.paid_amount, \
                       status = p.status FROM p WHERE payment_intents.id = p.id",
                );
                query
                    .build()
                    .execute(&mut **tx)
                    .await
                    .map(|done| done.rows_affected())
            })?;
            if updated != chunk.len() as u64 {
                return Err(StoreError::Corrupt(format!(
                    "{updated} of {} intents updated",
                    chunk.len()
                )));
            }
        }
        Ok(())
    }

    pub async fn payee_account(&mut self, payee_id: Uuid) -> StoreResult<Option<PayeeAccount>> {
        Ok(self.payee_accounts(&[payee_id]).await?.into_iter().next())
    }

    /// The ledger accounts of these payees (those that exist), in one statement per chunk.
    pub async fn payee_accounts(&mut self, payee_ids: &[Uuid]) -> StoreResult<Vec<PayeeAccount>> {
        let select = "SELECT id, ledger_account_id FROM payees WHERE id IN (";
        let rows: Vec<(Uuid, Uuid)> = self
            .rows_for_ids(select, payee_ids, ")", super::ledger::CHUNK_ROWS)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(payee_id, ledger_account_id)| PayeeAccount {
                payee_id,
                ledger_account_id,
            })
            .collect())
    }

    /// Writes what a posted plan matched, for a record claimed without its plan.
    pub async fn record_match(&mut self, id: Uuid, plan: &Plan) -> StoreResult<()> {
        let sql = "UPDATE bank_transactions SET matched_as = $2, payee_id = $3, \
                     payment_intent_id = $4, suspense_amount = $5, flags = $6 \
                   WHERE id = $1";
        execute!(
            self,
            sql,
            id,
            plan.matched_as.as_str(),
            plan.payee.map(|p| p.payee_id),
            plan.intent.as_ref().map(|(intent, _)| *intent),
            plan.suspense_amount,
            join_flags(&plan.flags)
        )?;
        Ok(())
    }

    /// Marks a refund resolution as paid back by this outgoing transfer.
    pub async fn mark_refund_paid(
        &mut self,
        resolution_id: Uuid,
        bank_transaction_id: Uuid,
        ledger_transaction_id: Uuid,
    ) -> StoreResult<()> {
        let sql = "UPDATE suspense_resolutions SET refunded_by_bank_transaction_id = $2, \
                   ledger_transaction_id = $3 WHERE id = $1";
        execute!(
            self,
            sql,
            resolution_id,
            bank_transaction_id,
            ledger_transaction_id
        )?;
        Ok(())
    }

    /// (debits posted, credits posted) of a ledger account, as of this transaction.
    pub async fn account_totals(&mut self, account_id: Uuid) -> StoreResult<(i64, i64)> {
        let sql = "SELECT debits_posted, credits_posted FROM accounts WHERE id = $1";
        Ok(tx_rows!(self, fetch_one, sql, account_id)?)
    }

    pub async fn insert_discrepancy(&mut self, discrepancy: &Discrepancy) -> StoreResult<()> {
        let sql = "INSERT INTO bank_discrepancies (id, collection_account_id, \
                     bank_transaction_id, bank_balance, ledger_balance, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        execute!(
            self,
            sql,
            discrepancy.id,
            discrepancy.collection_account_id,
            discrepancy.bank_transaction_id,
            discrepancy.bank_balance,
            discrepancy.ledger_balance,
            discrepancy.created_at
        )?;
        Ok(())
    }

    /// The record a resolution names, locked so a concurrent resolution of the same money
    /// waits, then sees this one.
    pub async fn lock_suspense_record(&mut self, id: Uuid) -> StoreResult<Option<SuspenseRecord>> {
        let sql = format!(
            "SELECT direction, suspense_amount, matched_as, amount, collection_account_id \
             FROM bank_transactions WHERE id = $1{}",
            self.row_lock()
        );
        let row: Option<(String, i64, String, i64, Uuid)> =
            tx_rows!(self, fetch_optional, &sql, id)?;
        let Some((direction, suspense_amount, matched_as, amount, collection)) = row else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("bank transaction {id}: {what}"));
        Ok(Some(SuspenseRecord {
            id,
            collection_account_id: collection,
            direction: Direction::parse(&direction).ok_or_else(|| corrupt("direction"))?,
            amount,
            suspense_amount,
            matched_as: MatchedAs::parse(&matched_as).ok_or_else(|| corrupt("matched_as"))?,
        }))
    }

    pub async fn resolution_exists(&mut self, bank_transaction_id: Uuid) -> StoreResult<bool> {
        let sql = "SELECT id FROM suspense_resolutions WHERE bank_transaction_id = $1";
        let found: Option<(Uuid,)> = tx_rows!(self, fetch_optional, sql, bank_transaction_id)?;
        Ok(found.is_some())
    }

    /// The record a duplicate resolution names, with its account's ledger account.
    pub async fn original_record(&mut self, id: Uuid) -> StoreResult<Option<OriginalRecord>> {
        let sql = "SELECT b.collection_account_id, b.direction, b.amount, c.ledger_account_id \
                   FROM bank_transactions b \
                   JOIN collection_accounts c ON c.id = b.collection_account_id \
                   WHERE b.id = $1";
        let row: Option<(Uuid, String, i64, Uuid)> = tx_rows!(self, fetch_optional, sql, id)?;
        let Some((collection_account_id, direction, amount, bank_account)) = row else {
            return Ok(None);
        };
        let direction = Direction::parse(&direction)
            .ok_or_else(|| StoreError::Corrupt(format!("bank transaction {id}: direction")))?;
        Ok(Some(OriginalRecord {
            id,
            collection_account_id,
            direction,
            amount,
            bank_account,
        }))
    }

    pub async fn insert_resolution(&mut self, resolution: &NewResolution<'_>) -> StoreResult<()> {
        let sql = "INSERT INTO suspense_resolutions (id, bank_transaction_id, action, \
                     payment_intent_id, payee_id, note, resolved_by, resolved_by_username, \
                     resolved_at, ledger_transaction_id, duplicate_of) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        execute!(
            self,
            sql,
            resolution.id,
            resolution.bank_transaction_id,
            resolution.action.as_str(),
            resolution.payment_intent_id,
            resolution.payee_id,
            resolution.note,
            resolution.resolved_by.0,
            resolution.resolved_by.1,
            resolution.resolved_at,
            resolution.ledger_transaction_id,
            resolution.duplicate_of
        )?;
        Ok(())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_lines_are_picked_as_the_partial_index_states() {
        assert_eq!(
            STATEMENT_LINE,
            format!(
                "substr(provider_transaction_id, 1, {}) = '{STATEMENT_ID_PREFIX}'",
                STATEMENT_ID_PREFIX.len()
            )
        );
        for migration in [
            include_str!("../../migrations/postgres/0015_statement_line_index.sql"),
            include_str!("../../migrations/sqlite/0015_statement_line_index.sql"),
        ] {
            assert!(migration.contains(&format!("WHERE {STATEMENT_LINE};")));
        }
    }
}

/// `INTENT_COLUMNS` of the table aliased `alias`.
fn intent_columns(alias: &str) -> String {
    INTENT_COLUMNS
        .split(',')
        .map(|column| format!("{alias}.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A payment intent a run's memo names, locked, with what recording a payment on it needs.
pub struct NamedIntentRecord {
    pub intent: PaymentIntent,
    /// The ledger account of the intent's payee.
    pub payee_account_id: Uuid,
    /// The pupil, when the intent is a school run's QR (or one a correction superseded).
    pub pupil: Option<IntentPupilRow>,
    /// Whether the intent is a household QR.
    pub household: bool,
}

#[derive(sqlx::FromRow)]
struct NamedIntentRow {
    #[sqlx(flatten)]
    intent: IntentRow,
    payee_account_id: Uuid,
    household: bool,
    pupil_id: Option<Uuid>,
    pupil_school_id: Option<Uuid>,
    pupil_code: Option<String>,
    pupil_full_name: Option<String>,
    pupil_household_id: Option<Uuid>,
    pupil_guardian_name: Option<String>,
    pupil_guardian_phone: Option<String>,
    pupil_receivable_account_id: Option<Uuid>,
    school_code: Option<String>,
    school_account_id: Option<Uuid>,
}

impl NamedIntentRow {
    fn into_record(self) -> StoreResult<NamedIntentRecord> {
        let intent = self.intent.into_domain()?;
        let pupil = match self.pupil_id {
            None => None,
            Some(id) => {
                let missing = || {
                    StoreError::Corrupt(format!("pupil {id} of intent {} is incomplete", intent.id))
                };
                Some(IntentPupilRow {
                    intent_id: intent.id,
                    pupil: PupilRow {
                        id,
                        school_id: self.pupil_school_id.ok_or_else(missing)?,
                        code: self.pupil_code.ok_or_else(missing)?,
                        full_name: self.pupil_full_name.ok_or_else(missing)?,
                        household_id: self.pupil_household_id,
                        guardian_name: self.pupil_guardian_name,
                        guardian_phone: self.pupil_guardian_phone,
                        receivable_account_id: self
                            .pupil_receivable_account_id
                            .ok_or_else(missing)?,
                    },
                    school_code: self.school_code.ok_or_else(missing)?,
                    school_account_id: self.school_account_id.ok_or_else(missing)?,
                })
            }
        };
        Ok(NamedIntentRecord {
            intent,
            payee_account_id: self.payee_account_id,
            pupil,
            household: self.household,
        })
    }
}
