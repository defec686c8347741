//! Storage of payees, collection accounts and payment intents. Like `shared.rs`, the SQL is
//! written once and expanded for each backend by `impl_payment_store!`; it needs only what
//! every backend has (`pool`, `begin_write`, `claim_key`).

use async_trait::async_trait;
use uuid::Uuid;

use super::{IdempotencyClaim, StoreError, StoreResult, StoredResponse};
use crate::domain::intent::{IntentStatus, PaymentIntent};
use crate::domain::payee::{
    CollectionAccount, CollectionAccountSpec, Payee, PayeeCode, PayeeDetails, PayeeKind,
};

/// A payee to create, validated.
#[derive(Debug, Clone)]
pub struct NewPayee {
    pub id: Uuid,
    pub code: PayeeCode,
    pub kind: PayeeKind,
    pub details: PayeeDetails,
    pub collection_account: CollectionAccountSpec,
    pub now: i64,
}

/// What a PATCH changes; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct PayeeChanges {
    pub name: Option<String>,
    pub hamlet: Option<Option<String>>,
    pub stall: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub category: Option<Option<String>>,
    pub active: Option<bool>,
    pub collection_account: Option<CollectionAccountSpec>,
}

/// Why a payee write was refused; nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayeeRejection {
    NotFound,
    CodeTaken(String),
    /// A ledger account with this code exists but is not the kind the payee needs.
    LedgerAccountTaken(String),
    /// The bank account is already registered under another holder name.
    HolderNameMismatch {
        registered: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct PayeeFilter {
    pub kind: Option<PayeeKind>,
    pub hamlet: Option<String>,
    pub category: Option<String>,
    pub active: Option<bool>,
    /// Only this payee: what a vendor or school user may see.
    pub only: Option<Uuid>,
    /// Keyset cursor: payees with an id greater than this.
    pub after: Option<Uuid>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct IntentFilter {
    pub payee_id: Uuid,
    /// Matched against the status at `now`, as [`PaymentIntent::status`] reads it.
    pub status: Option<IntentStatus>,
    pub now: i64,
    /// Keyset cursor: (created_at, id) of the last intent of the previous page; newest first.
    pub before: Option<(i64, Uuid)>,
    pub limit: u32,
}

pub enum IntentInsert {
    Created,
    /// The idempotency key was used before with the same request.
    Replay(StoredResponse),
    /// Another intent holds the reference; generate a new one and retry.
    ReferenceTaken,
}

#[async_trait]
pub trait PaymentStore: Send + Sync + 'static {
    /// Creates the payee, its liability account and, when the bank account is new, the
    /// collection account and its asset account, in one database transaction.
    async fn create_payee(&self, payee: &NewPayee) -> StoreResult<Result<Payee, PayeeRejection>>;
    /// Applies the changes in one transaction; deactivating a payee also cancels its pending
    /// intents.
    async fn update_payee(
        &self,
        id: Uuid,
        changes: &PayeeChanges,
        now: i64,
    ) -> StoreResult<Result<Payee, PayeeRejection>>;
    async fn payee(&self, id: Uuid) -> StoreResult<Option<Payee>>;
    async fn list_payees(&self, filter: &PayeeFilter) -> StoreResult<Vec<Payee>>;

    /// Inserts the intent and claims the idempotency key with `response` in one transaction.
    async fn create_intent(
        &self,
        claim: &IdempotencyClaim,
        intent: &PaymentIntent,
        response: &StoredResponse,
    ) -> StoreResult<IntentInsert>;
    async fn intent(&self, id: Uuid) -> StoreResult<Option<PaymentIntent>>;
    async fn list_intents(&self, filter: &IntentFilter) -> StoreResult<Vec<PaymentIntent>>;
    /// Cancels the intent if it is still pending at `now`; returns it as it is afterwards.
    async fn cancel_intent(&self, id: Uuid, now: i64) -> StoreResult<Option<PaymentIntent>>;
    /// Writes `expired` on pending intents whose time is up; returns how many.
    async fn expire_intents(&self, now: i64) -> StoreResult<u64>;
}

pub(super) const PAYEE_COLUMNS: &str = "p.id, p.code, p.kind, p.name, p.hamlet, p.stall, \
    p.phone, p.category, p.active, p.ledger_account_id, p.created_at, p.updated_at, \
    c.id AS collection_id, c.bank_bin, c.account_number, c.holder_name, \
    c.ledger_account_id AS collection_ledger_account_id";
pub(super) const PAYEE_FROM: &str =
    "payees p JOIN collection_accounts c ON c.id = p.collection_account_id";

#[derive(sqlx::FromRow)]
pub(super) struct PayeeRow {
    id: Uuid,
    code: String,
    kind: String,
    name: String,
    hamlet: Option<String>,
    stall: Option<String>,
    phone: Option<String>,
    category: Option<String>,
    active: bool,
    ledger_account_id: Uuid,
    created_at: i64,
    updated_at: i64,
    collection_id: Uuid,
    bank_bin: String,
    account_number: String,
    holder_name: String,
    collection_ledger_account_id: Uuid,
}

impl PayeeRow {
    pub(super) fn into_domain(self) -> StoreResult<Payee> {
        let kind = PayeeKind::parse(&self.kind)
            .map_err(|_| StoreError::Corrupt(format!("payee kind {:?}", self.kind)))?;
        Ok(Payee {
            id: self.id,
            code: self.code,
            kind,
            details: PayeeDetails {
                name: self.name,
                hamlet: self.hamlet,
                stall: self.stall,
                phone: self.phone,
                category: self.category,
            },
            active: self.active,
            ledger_account_id: self.ledger_account_id,
            collection_account: CollectionAccount {
                id: self.collection_id,
                bank_bin: self.bank_bin,
                account_number: self.account_number,
                holder_name: self.holder_name,
                ledger_account_id: self.collection_ledger_account_id,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(super) const INTENT_COLUMNS: &str = "id, payee_id, collection_account_id, reference, \
    amount, description, status, qr_payload, expires_at, created_at, created_by, cancelled_at, paid_amount";

#[derive(sqlx::FromRow)]
pub(super) struct IntentRow {
    id: Uuid,
    payee_id: Uuid,
    collection_account_id: Uuid,
    reference: String,
    amount: i64,
    description: Option<String>,
    status: String,
    qr_payload: String,
    expires_at: i64,
    created_at: i64,
    created_by: Uuid,
    cancelled_at: Option<i64>,
    paid_amount: i64,
}

impl IntentRow {
    pub(super) fn into_domain(self) -> StoreResult<PaymentIntent> {
        let stored_status = IntentStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("intent status {:?}", self.status)))?;
        Ok(PaymentIntent {
            id: self.id,
            payee_id: self.payee_id,
            collection_account_id: self.collection_account_id,
            reference: self.reference,
            amount: self.amount,
            description: self.description,
            stored_status,
            qr_payload: self.qr_payload,
            expires_at: self.expires_at,
            created_at: self.created_at,
            created_by: self.created_by,
            cancelled_at: self.cancelled_at,
            paid_amount: self.paid_amount,
        })
    }
}

/// Pushes the SQL condition for "status at `now` is `status`", mirroring
/// [`PaymentIntent::status`]: a pending intent past its expiry counts as expired.
pub(super) fn push_status_condition<'a, DB: sqlx::Database>(
    query: &mut sqlx::QueryBuilder<'a, DB>,
    status: IntentStatus,
    now: i64,
) where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    match status {
        IntentStatus::Pending => {
            query
                .push(" AND status = 'pending' AND expires_at > ")
                .push_bind(now);
        }
        IntentStatus::Expired => {
            query
                .push(" AND (status = 'expired' OR (status = 'pending' AND expires_at <= ")
                .push_bind(now)
                .push("))");
        }
        other => {
            query.push(" AND status = ").push_bind(other.as_str());
        }
    }
}

macro_rules! impl_payment_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::PaymentStore for $store {
            async fn create_payee(
                &self,
                payee: &$crate::store::NewPayee,
            ) -> $crate::store::StoreResult<
                Result<$crate::domain::payee::Payee, $crate::store::PayeeRejection>,
            > {
                use $crate::domain::account::{AccountFlags, AccountKind};
                use $crate::store::PayeeRejection;

                let (_write_guard, mut tx) = self.begin_write().await?;
                let collection = match Self::ensure_collection_account(
                    &mut tx,
                    &payee.collection_account,
                    payee.now,
                )
                .await?
                {
                    Ok(collection) => collection,
                    Err(rejection) => {
                        tx.rollback().await?;
                        return Ok(Err(rejection));
                    }
                };
                // What the program holds for the payee may never go below zero.
                let guarded = AccountFlags {
                    debits_must_not_exceed_credits: true,
                    credits_must_not_exceed_debits: false,
                };
                let details = &payee.details;
                let ledger_account_id = match Self::ensure_ledger_account(
                    &mut tx,
                    &payee.code.ledger_account_code(),
                    &details.name,
                    AccountKind::Liability,
                    guarded,
                    payee.now,
                )
                .await?
                {
                    Ok(id) => id,
                    Err(rejection) => {
                        tx.rollback().await?;
                        return Ok(Err(rejection));
                    }
                };
                let inserted = sqlx::query(
                    "INSERT INTO payees (id, code, kind, name, hamlet, stall, phone, category, \
                     active, ledger_account_id, collection_account_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, $9, $10, $11, $11) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(payee.id)
                .bind(payee.code.as_str())
                .bind(payee.kind.as_str())
                .bind(&details.name)
                .bind(details.hamlet.as_deref())
                .bind(details.stall.as_deref())
                .bind(details.phone.as_deref())
                .bind(details.category.as_deref())
                .bind(ledger_account_id)
                .bind(collection.id)
                .bind(payee.now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    tx.rollback().await?;
                    return Ok(Err(PayeeRejection::CodeTaken(payee.code.as_str().to_owned())));
                }
                tx.commit().await?;
                Ok(Ok($crate::domain::payee::Payee {
                    id: payee.id,
                    code: payee.code.as_str().to_owned(),
                    kind: payee.kind,
                    details: details.clone(),
                    active: true,
                    ledger_account_id,
                    collection_account: collection,
                    created_at: payee.now,
                    updated_at: payee.now,
                }))
            }

            async fn update_payee(
                &self,
                id: uuid::Uuid,
                changes: &$crate::store::PayeeChanges,
                now: i64,
            ) -> $crate::store::StoreResult<
                Result<$crate::domain::payee::Payee, $crate::store::PayeeRejection>,
            > {
                use $crate::store::PayeeRejection;

                let (_write_guard, mut tx) = self.begin_write().await?;
                let mut query = sqlx::QueryBuilder::<$db>::new("UPDATE payees SET updated_at = ");
                query.push_bind(now);
                if let Some(spec) = &changes.collection_account {
                    match Self::ensure_collection_account(&mut tx, spec, now).await? {
                        Ok(collection) => {
                            query.push(", collection_account_id = ").push_bind(collection.id);
                        }
                        Err(rejection) => {
                            tx.rollback().await?;
                            return Ok(Err(rejection));
                        }
                    }
                }
                if let Some(name) = &changes.name {
                    query.push(", name = ").push_bind(name.clone());
                }
                for (column, change) in [
                    ("hamlet", &changes.hamlet),
                    ("stall", &changes.stall),
                    ("phone", &changes.phone),
                    ("category", &changes.category),
                ] {
                    if let Some(value) = change {
                        query
                            .push(format!(", {column} = "))
                            .push_bind(value.clone());
                    }
                }
                if let Some(active) = changes.active {
                    query.push(", active = ").push_bind(active);
                }
                query.push(" WHERE id = ").push_bind(id);
                if query.build().execute(&mut *tx).await?.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(Err(PayeeRejection::NotFound));
                }
                if changes.active == Some(false) {
                    // A payee that leaves takes its outstanding codes with it: nobody should
                    // still pay a stall that is no longer there.
                    sqlx::query(
                        "UPDATE payment_intents SET status = 'cancelled', cancelled_at = $2 \
                         WHERE payee_id = $1 AND status = 'pending'",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                self.payee(id)
                    .await?
                    .map(Ok)
                    .ok_or_else(|| $crate::store::StoreError::Corrupt(format!("payee {id} vanished")))
            }

            async fn payee(
                &self,
                id: uuid::Uuid,
            ) -> $crate::store::StoreResult<Option<$crate::domain::payee::Payee>> {
                use $crate::store::payments::{PayeeRow, PAYEE_COLUMNS, PAYEE_FROM};
                let row: Option<PayeeRow> = sqlx::query_as(&format!(
                    "SELECT {PAYEE_COLUMNS} FROM {PAYEE_FROM} WHERE p.id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(PayeeRow::into_domain).transpose()
            }

            async fn list_payees(
                &self,
                filter: &$crate::store::PayeeFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::payee::Payee>> {
                use $crate::store::payments::{PayeeRow, PAYEE_COLUMNS, PAYEE_FROM};
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {PAYEE_COLUMNS} FROM {PAYEE_FROM} WHERE 1 = 1"
                ));
                if let Some(kind) = filter.kind {
                    query.push(" AND p.kind = ").push_bind(kind.as_str());
                }
                if let Some(hamlet) = &filter.hamlet {
                    query.push(" AND p.hamlet = ").push_bind(hamlet.clone());
                }
                if let Some(category) = &filter.category {
                    query.push(" AND p.category = ").push_bind(category.clone());
                }
                if let Some(active) = filter.active {
                    query.push(" AND p.active = ").push_bind(active);
                }
                if let Some(only) = filter.only {
                    query.push(" AND p.id = ").push_bind(only);
                }
                if let Some(after) = filter.after {
                    query.push(" AND p.id > ").push_bind(after);
                }
                query
                    .push(" ORDER BY p.id LIMIT ")
                    .push_bind(i64::from(filter.limit));
                let rows: Vec<PayeeRow> = query.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(PayeeRow::into_domain).collect()
            }

            async fn create_intent(
                &self,
                claim: &$crate::store::IdempotencyClaim,
                intent: &$crate::domain::intent::PaymentIntent,
                response: &$crate::store::StoredResponse,
            ) -> $crate::store::StoreResult<$crate::store::IntentInsert> {
                use $crate::store::IntentInsert;

                let (_write_guard, mut tx) = self.begin_write().await?;
                // The response is final if this transaction commits, so it is stored with the
                // key right away and a concurrent duplicate waits for it, then replays it.
                if let Some(earlier) = Self::claim_key(&mut tx, claim, Some(response), intent.created_at).await? {
                    tx.rollback().await?;
                    return earlier.map(IntentInsert::Replay);
                }
                // DO NOTHING rather than an error: on PostgreSQL an error would abort the
                // transaction, and the caller only needs to know to draw another reference.
                let inserted = sqlx::query(&format!(
                    "INSERT INTO payment_intents ({}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (reference) DO NOTHING",
                    $crate::store::payments::INTENT_COLUMNS
                ))
                .bind(intent.id)
                .bind(intent.payee_id)
                .bind(intent.collection_account_id)
                .bind(&intent.reference)
                .bind(intent.amount)
                .bind(intent.description.as_deref())
                .bind(intent.stored_status.as_str())
                .bind(&intent.qr_payload)
                .bind(intent.expires_at)
                .bind(intent.created_at)
                .bind(intent.created_by)
                .bind(intent.cancelled_at)
                .bind(intent.paid_amount)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    tx.rollback().await?;
                    return Ok(IntentInsert::ReferenceTaken);
                }
                tx.commit().await?;
                Ok(IntentInsert::Created)
            }

            async fn intent(
                &self,
                id: uuid::Uuid,
            ) -> $crate::store::StoreResult<Option<$crate::domain::intent::PaymentIntent>> {
                use $crate::store::payments::{IntentRow, INTENT_COLUMNS};
                let row: Option<IntentRow> = sqlx::query_as(&format!(
                    "SELECT {INTENT_COLUMNS} FROM payment_intents WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(IntentRow::into_domain).transpose()
            }

            async fn list_intents(
                &self,
                filter: &$crate::store::IntentFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::intent::PaymentIntent>> {
                use $crate::store::payments::{push_status_condition, IntentRow, INTENT_COLUMNS};
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {INTENT_COLUMNS} FROM payment_intents WHERE payee_id = "
                ));
                query.push_bind(filter.payee_id);
                if let Some(status) = filter.status {
                    push_status_condition(&mut query, status, filter.now);
                }
                if let Some((created_at, id)) = filter.before {
                    query
                        .push(" AND (created_at < ")
                        .push_bind(created_at)
                        .push(" OR (created_at = ")
                        .push_bind(created_at)
                        .push(" AND id < ")
                        .push_bind(id)
                        .push("))");
                }
                query
                    .push(" ORDER BY created_at DESC, id DESC LIMIT ")
                    .push_bind(i64::from(filter.limit));
                let rows: Vec<IntentRow> = query.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(IntentRow::into_domain).collect()
            }

            async fn cancel_intent(
                &self,
                id: uuid::Uuid,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::domain::intent::PaymentIntent>> {
                // One conditional statement: a payment or the expiry sweep racing with the
                // cancel either lands first (and the cancel changes nothing) or finds it
                // cancelled; no lock is held across round trips.
                sqlx::query(
                    "UPDATE payment_intents SET status = 'cancelled', cancelled_at = $2 \
                     WHERE id = $1 AND status = 'pending' AND expires_at > $2",
                )
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                self.intent(id).await
            }

            async fn expire_intents(&self, now: i64) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query(
                    "UPDATE payment_intents SET status = 'expired' \
                     WHERE status = 'pending' AND expires_at <= $1",
                )
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }
        }

        impl $store {
            /// Finds the collection account for this bank account, or creates it and its asset
            /// account. A registered account must carry the same holder name.
            async fn ensure_collection_account(
                tx: &mut sqlx::Transaction<'static, $db>,
                spec: &$crate::domain::payee::CollectionAccountSpec,
                now: i64,
            ) -> $crate::store::StoreResult<
                Result<$crate::domain::payee::CollectionAccount, $crate::store::PayeeRejection>,
            > {
                use $crate::domain::account::{AccountFlags, AccountKind};
                let ledger_account_id = match Self::ensure_ledger_account(
                    tx,
                    &spec.ledger_account_code(),
                    &spec.ledger_account_name(),
                    AccountKind::Asset,
                    AccountFlags::default(),
                    now,
                )
                .await?
                {
                    Ok(id) => id,
                    Err(rejection) => return Ok(Err(rejection)),
                };
                sqlx::query(
                    "INSERT INTO collection_accounts \
                     (id, bank_bin, account_number, holder_name, ledger_account_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (bank_bin, account_number) DO NOTHING",
                )
                .bind($crate::store::id_at(now))
                .bind(&spec.bank.bin)
                .bind(spec.number.as_str())
                .bind(spec.holder_name.as_str())
                .bind(ledger_account_id)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                let (id, holder_name, stored_ledger_account_id): (uuid::Uuid, String, uuid::Uuid) =
                    sqlx::query_as(
                        "SELECT id, holder_name, ledger_account_id FROM collection_accounts \
                         WHERE bank_bin = $1 AND account_number = $2",
                    )
                    .bind(&spec.bank.bin)
                    .bind(spec.number.as_str())
                    .fetch_one(&mut **tx)
                    .await?;
                if holder_name != spec.holder_name.as_str() {
                    return Ok(Err($crate::store::PayeeRejection::HolderNameMismatch {
                        registered: holder_name,
                    }));
                }
                Ok(Ok($crate::domain::payee::CollectionAccount {
                    id,
                    bank_bin: spec.bank.bin.clone(),
                    account_number: spec.number.as_str().to_owned(),
                    holder_name,
                    ledger_account_id: stored_ledger_account_id,
                }))
            }

            /// Creates a VND ledger account, or adopts one that already has this code and the
            /// same kind and flags (e.g. made by hand before payees existed).
            async fn ensure_ledger_account(
                tx: &mut sqlx::Transaction<'static, $db>,
                code: &str,
                name: &str,
                kind: $crate::domain::account::AccountKind,
                flags: $crate::domain::account::AccountFlags,
                now: i64,
            ) -> $crate::store::StoreResult<Result<uuid::Uuid, $crate::store::PayeeRejection>> {
                use $crate::domain::money::Currency;
                sqlx::query(
                    "INSERT INTO accounts (id, code, name, kind, currency, \
                     debits_must_not_exceed_credits, credits_must_not_exceed_debits, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (code) DO NOTHING",
                )
                .bind($crate::store::id_at(now))
                .bind(code)
                .bind(name)
                .bind(kind.as_str())
                .bind(Currency::Vnd.code())
                .bind(flags.debits_must_not_exceed_credits)
                .bind(flags.credits_must_not_exceed_debits)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                let (id, stored_kind, currency, debits_guard, credits_guard): (
                    uuid::Uuid,
                    String,
                    String,
                    bool,
                    bool,
                ) = sqlx::query_as(
                    "SELECT id, kind, currency, debits_must_not_exceed_credits, \
                     credits_must_not_exceed_debits FROM accounts WHERE code = $1",
                )
                .bind(code)
                .fetch_one(&mut **tx)
                .await?;
                let fits = stored_kind == kind.as_str()
                    && currency == Currency::Vnd.code()
                    && debits_guard == flags.debits_must_not_exceed_credits
                    && credits_guard == flags.credits_must_not_exceed_debits;
                Ok(if fits {
                    Ok(id)
                } else {
                    Err($crate::store::PayeeRejection::LedgerAccountTaken(code.to_owned()))
                })
            }
        }
    };
}
