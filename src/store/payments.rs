//! Storage of payees, collection accounts and payment intents. The SQL is written once, for
//! any [`Backend`]: reads on its pool, writes in a [`UnitOfWork`].

use async_trait::async_trait;
use uuid::Uuid;

use super::unit_of_work::{Backend, UnitOfWork};
use super::{id_at, IdempotencyClaim, StoreError, StoreResult, StoredResponse};
use crate::domain::account::{AccountFlags, AccountKind};
use crate::domain::audit::{audited_payee, AuditRecord};
use crate::domain::intent::{IntentStatus, PaymentIntent};
use crate::domain::money::Currency;
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
    pub owner_resident_id: Option<Uuid>,
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
    pub owner_resident_id: Option<Option<Uuid>>,
}

/// Why a payee write was refused; nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayeeRejection {
    NotFound,
    /// The owner it names is no resident.
    OwnerNotFound(Uuid),
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
    /// The audit record of the creation gets the payee as created.
    async fn create_payee(
        &self,
        payee: &NewPayee,
        audit: AuditRecord,
    ) -> StoreResult<Result<Payee, PayeeRejection>>;
    /// Applies the changes in one transaction, at the audit record's time and with it (it
    /// gets the payee before and after); deactivating a payee also cancels its pending
    /// intents.
    async fn update_payee(
        &self,
        id: Uuid,
        changes: &PayeeChanges,
        audit: AuditRecord,
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
    /// Cancels the intent if it is still pending, writing `audit` with the change in the same
    /// transaction; the intent as it is after.
    async fn cancel_intent(
        &self,
        id: Uuid,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Option<PaymentIntent>>;
    /// Writes `expired` on pending intents whose time is up; returns the ids it changed. One
    /// conditional statement: sweeps racing on several instances each get their own intents,
    /// none twice.
    async fn expire_intents(&self, now: i64) -> StoreResult<Vec<Uuid>>;
}

pub(super) const PAYEE_COLUMNS: &str = "p.id, p.code, p.kind, p.name, p.hamlet, p.stall, \
    p.phone, p.category, p.active, p.ledger_account_id, p.created_at, p.updated_at, \
    p.owner_resident_id, c.id AS collection_id, c.bank_bin, c.account_number, c.holder_name, \
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
    owner_resident_id: Option<Uuid>,
    collection_id: Uuid,
    bank_bin: String,
    account_number: String,
    holder_name: String,
    collection_ledger_account_id: Uuid,
}

impl PayeeRow {
    pub(super) fn into_domain(self) -> StoreResult<Payee> {
        let owner_resident_id = self.owner_resident_id;
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
            owner_resident_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub(super) const INTENT_COLUMNS: &str = "id, payee_id, collection_account_id, reference, \
    amount, description, status, qr_payload, expires_at, created_at, created_by, cancelled_at, paid_amount, \
    payer_resident_id, payer_household_id";

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
    payer_resident_id: Option<Uuid>,
    payer_household_id: Option<Uuid>,
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
            payer_resident_id: self.payer_resident_id,
            payer_household_id: self.payer_household_id,
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

#[async_trait]
impl<T: Backend + 'static> PaymentStore for T {
    async fn create_payee(
        &self,
        payee: &NewPayee,
        mut audit: AuditRecord,
    ) -> StoreResult<Result<Payee, PayeeRejection>> {
        let mut unit = self.begin_unit().await?;
        if let Some(owner) = payee.owner_resident_id {
            if !unit.resident_exists(owner).await? {
                unit.rollback().await?;
                return Ok(Err(PayeeRejection::OwnerNotFound(owner)));
            }
        }
        let collection = match unit
            .ensure_collection_account(&payee.collection_account, payee.now)
            .await?
        {
            Ok(collection) => collection,
            Err(rejection) => {
                unit.rollback().await?;
                return Ok(Err(rejection));
            }
        };
        // What the program holds for the payee may never go below zero.
        let guarded = AccountFlags {
            debits_must_not_exceed_credits: true,
            credits_must_not_exceed_debits: false,
        };
        let details = &payee.details;
        let account = (&*payee.code.ledger_account_code(), &*details.name);
        let ledger_account_id = match unit
            .ensure_ledger_account(account, AccountKind::Liability, guarded, payee.now)
            .await?
        {
            Ok(id) => id,
            Err(rejection) => {
                unit.rollback().await?;
                return Ok(Err(rejection));
            }
        };
        let sql = "INSERT INTO payees (id, code, kind, name, hamlet, stall, phone, category, \
                   active, ledger_account_id, collection_account_id, created_at, updated_at, \
                   owner_resident_id) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, $9, $10, $11, $11, $12) \
                   ON CONFLICT DO NOTHING";
        let inserted = execute!(
            unit,
            sql,
            payee.id,
            payee.code.as_str(),
            payee.kind.as_str(),
            &details.name,
            details.hamlet.as_deref(),
            details.stall.as_deref(),
            details.phone.as_deref(),
            details.category.as_deref(),
            ledger_account_id,
            collection.id,
            payee.now,
            payee.owner_resident_id,
        )?;
        if inserted == 0 {
            unit.rollback().await?;
            return Ok(Err(PayeeRejection::CodeTaken(
                payee.code.as_str().to_owned(),
            )));
        }
        let created = Payee {
            id: payee.id,
            code: payee.code.as_str().to_owned(),
            kind: payee.kind,
            details: details.clone(),
            active: true,
            ledger_account_id,
            collection_account: collection,
            owner_resident_id: payee.owner_resident_id,
            created_at: payee.now,
            updated_at: payee.now,
        };
        audit.after = Some(audited_payee(&created));
        unit.append_audit(&audit).await?;
        unit.commit().await?;
        Ok(Ok(created))
    }

    async fn update_payee(
        &self,
        id: Uuid,
        changes: &PayeeChanges,
        mut audit: AuditRecord,
    ) -> StoreResult<Result<Payee, PayeeRejection>> {
        let now = audit.recorded_at;
        let mut unit = self.begin_unit().await?;
        let Some(before) = unit.lock_payee(id).await? else {
            unit.rollback().await?;
            return Ok(Err(PayeeRejection::NotFound));
        };
        if let Some(Some(owner)) = changes.owner_resident_id {
            if !unit.resident_exists(owner).await? {
                unit.rollback().await?;
                return Ok(Err(PayeeRejection::OwnerNotFound(owner)));
            }
        }
        let mut collection_id = None;
        if let Some(spec) = &changes.collection_account {
            match unit.ensure_collection_account(spec, now).await? {
                Ok(collection) => collection_id = Some(collection.id),
                Err(rejection) => {
                    unit.rollback().await?;
                    return Ok(Err(rejection));
                }
            }
        }
        let updated = on_tx!(unit, |tx| {
            let mut query = sqlx::QueryBuilder::new("UPDATE payees SET updated_at = ");
            query.push_bind(now);
            if let Some(collection_id) = collection_id {
                query
                    .push(", collection_account_id = ")
                    .push_bind(collection_id);
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
            if let Some(owner) = changes.owner_resident_id {
                query.push(", owner_resident_id = ").push_bind(owner);
            }
            query.push(" WHERE id = ").push_bind(id);
            query
                .build()
                .execute(&mut **tx)
                .await
                .map(|done| done.rows_affected())
        })?;
        if updated == 0 {
            unit.rollback().await?;
            return Ok(Err(PayeeRejection::NotFound));
        }
        if changes.active == Some(false) {
            // A payee that leaves takes its outstanding codes with it: nobody should still pay
            // a stall that is no longer there.
            let sql = "UPDATE payment_intents SET status = 'cancelled', cancelled_at = $2 \
                       WHERE payee_id = $1 AND status = 'pending'";
            execute!(unit, sql, id, now)?;
        }
        let after = unit
            .lock_payee(id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("payee {id} vanished")))?;
        audit.before = Some(audited_payee(&before));
        audit.after = Some(audited_payee(&after));
        unit.append_audit(&audit).await?;
        unit.commit().await?;
        Ok(Ok(after))
    }

    async fn payee(&self, id: Uuid) -> StoreResult<Option<Payee>> {
        let sql = format!("SELECT {PAYEE_COLUMNS} FROM {PAYEE_FROM} WHERE p.id = $1");
        let row: Option<PayeeRow> = pool_rows!(self, fetch_optional, &sql, id)?;
        row.map(PayeeRow::into_domain).transpose()
    }

    async fn list_payees(&self, filter: &PayeeFilter) -> StoreResult<Vec<Payee>> {
        let rows: Vec<PayeeRow> = on_pool!(self, |pool| {
            let mut query = sqlx::QueryBuilder::new(format!(
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
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter().map(PayeeRow::into_domain).collect()
    }

    async fn create_intent(
        &self,
        claim: &IdempotencyClaim,
        intent: &PaymentIntent,
        response: &StoredResponse,
    ) -> StoreResult<IntentInsert> {
        let mut unit = self.begin_unit().await?;
        // The response is final if this transaction commits, so it is stored with the key
        // right away and a concurrent duplicate waits for it, then replays it.
        if let Some(earlier) = unit
            .claim_key(claim, Some(response), intent.created_at)
            .await?
        {
            unit.rollback().await?;
            return earlier.map(IntentInsert::Replay);
        }
        let inserted = unit.insert_intent(intent).await?;
        if !inserted {
            unit.rollback().await?;
            return Ok(IntentInsert::ReferenceTaken);
        }
        unit.commit().await?;
        Ok(IntentInsert::Created)
    }

    async fn intent(&self, id: Uuid) -> StoreResult<Option<PaymentIntent>> {
        let sql = format!("SELECT {INTENT_COLUMNS} FROM payment_intents WHERE id = $1");
        let row: Option<IntentRow> = pool_rows!(self, fetch_optional, &sql, id)?;
        row.map(IntentRow::into_domain).transpose()
    }

    async fn list_intents(&self, filter: &IntentFilter) -> StoreResult<Vec<PaymentIntent>> {
        let rows: Vec<IntentRow> = on_pool!(self, |pool| {
            let mut query = sqlx::QueryBuilder::new(format!(
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
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter().map(IntentRow::into_domain).collect()
    }

    async fn cancel_intent(
        &self,
        id: Uuid,
        now: i64,
        audit: &AuditRecord,
    ) -> StoreResult<Option<PaymentIntent>> {
        // One conditional statement: a payment or the expiry sweep racing with the cancel
        // either lands first (and the cancel changes nothing, so nothing is recorded) or finds
        // it cancelled.
        let mut unit = self.begin_unit().await?;
        let sql = "UPDATE payment_intents SET status = 'cancelled', cancelled_at = $2 \
                   WHERE id = $1 AND status = 'pending' AND expires_at > $2";
        if execute!(unit, sql, id, now)? == 1 {
            unit.append_audit(audit).await?;
        }
        unit.commit().await?;
        self.intent(id).await
    }

    async fn expire_intents(&self, now: i64) -> StoreResult<Vec<Uuid>> {
        let sql = "UPDATE payment_intents SET status = 'expired' \
                   WHERE status = 'pending' AND expires_at <= $1 RETURNING id";
        let expired: Vec<(Uuid,)> = pool_rows!(self, fetch_all, sql, now)?;
        Ok(expired.into_iter().map(|(id,)| id).collect())
    }
}

/// The payee writes of a use case's database transaction.
impl UnitOfWork<'_> {
    /// Writes a new intent; false (nothing written) when its reference is taken, for the caller
    /// to draw another.
    pub(crate) async fn insert_intent(&mut self, intent: &PaymentIntent) -> StoreResult<bool> {
        // DO NOTHING rather than an error: on PostgreSQL an error would abort the transaction,
        // and the caller only needs to know to draw another reference.
        let sql = format!(
            "INSERT INTO payment_intents ({INTENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             ON CONFLICT (reference) DO NOTHING"
        );
        let inserted = execute!(
            self,
            &sql,
            intent.id,
            intent.payee_id,
            intent.collection_account_id,
            &intent.reference,
            intent.amount,
            intent.description.as_deref(),
            intent.stored_status.as_str(),
            &intent.qr_payload,
            intent.expires_at,
            intent.created_at,
            intent.created_by,
            intent.cancelled_at,
            intent.paid_amount,
            intent.payer_resident_id,
            intent.payer_household_id,
        )?;
        Ok(inserted == 1)
    }

    /// The payee, locked until commit.
    pub async fn lock_payee(&mut self, id: Uuid) -> StoreResult<Option<Payee>> {
        let sql = format!(
            "SELECT {PAYEE_COLUMNS} FROM {PAYEE_FROM} WHERE p.id = $1{}",
            self.row_lock()
        );
        let row: Option<PayeeRow> = tx_rows!(self, fetch_optional, &sql, id)?;
        row.map(PayeeRow::into_domain).transpose()
    }

    /// The payee as this unit of work sees it, without a lock.
    pub async fn payee_in_unit(&mut self, id: Uuid) -> StoreResult<Option<Payee>> {
        let sql = format!("SELECT {PAYEE_COLUMNS} FROM {PAYEE_FROM} WHERE p.id = $1");
        let row: Option<PayeeRow> = tx_rows!(self, fetch_optional, &sql, id)?;
        row.map(PayeeRow::into_domain).transpose()
    }

    /// Finds the collection account for this bank account, or creates it and its asset
    /// account. A registered account must carry the same holder name.
    async fn ensure_collection_account(
        &mut self,
        spec: &CollectionAccountSpec,
        now: i64,
    ) -> StoreResult<Result<CollectionAccount, PayeeRejection>> {
        let account = (&*spec.ledger_account_code(), &*spec.ledger_account_name());
        let ledger_account_id = match self
            .ensure_ledger_account(account, AccountKind::Asset, AccountFlags::default(), now)
            .await?
        {
            Ok(id) => id,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let sql = "INSERT INTO collection_accounts \
                   (id, bank_bin, account_number, holder_name, ledger_account_id, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (bank_bin, account_number) DO NOTHING";
        let number = spec.number.as_str();
        let holder = spec.holder_name.as_str();
        execute!(
            self,
            sql,
            id_at(now),
            &spec.bank.bin,
            number,
            holder,
            ledger_account_id,
            now
        )?;
        let sql = "SELECT id, holder_name, ledger_account_id FROM collection_accounts \
                   WHERE bank_bin = $1 AND account_number = $2";
        let (id, holder_name, stored_ledger_account_id): (Uuid, String, Uuid) =
            tx_rows!(self, fetch_one, sql, &spec.bank.bin, number)?;
        if holder_name != holder {
            return Ok(Err(PayeeRejection::HolderNameMismatch {
                registered: holder_name,
            }));
        }
        Ok(Ok(CollectionAccount {
            id,
            bank_bin: spec.bank.bin.clone(),
            account_number: number.to_owned(),
            holder_name,
            ledger_account_id: stored_ledger_account_id,
        }))
    }

    /// Creates a VND ledger account with this (code, name), or adopts one that already has
    /// this code and the same kind and flags (e.g. made by hand before payees existed).
    pub(super) async fn ensure_ledger_account(
        &mut self,
        (code, name): (&str, &str),
        kind: AccountKind,
        flags: AccountFlags,
        now: i64,
    ) -> StoreResult<Result<Uuid, PayeeRejection>> {
        let sql = "INSERT INTO accounts (id, code, name, kind, currency, \
                   debits_must_not_exceed_credits, credits_must_not_exceed_debits, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (code) DO NOTHING";
        execute!(
            self,
            sql,
            id_at(now),
            code,
            name,
            kind.as_str(),
            Currency::Vnd.code(),
            flags.debits_must_not_exceed_credits,
            flags.credits_must_not_exceed_debits,
            now,
        )?;
        let sql = "SELECT id, kind, currency, debits_must_not_exceed_credits, \
                   credits_must_not_exceed_debits FROM accounts WHERE code = $1";
        let (id, stored_kind, currency, debits_guard, credits_guard): (
            Uuid,
            String,
            String,
            bool,
            bool,
        ) = tx_rows!(self, fetch_one, sql, code)?;
        let fits = stored_kind == kind.as_str()
            && currency == Currency::Vnd.code()
            && debits_guard == flags.debits_must_not_exceed_credits
            && credits_guard == flags.credits_must_not_exceed_debits;
        Ok(if fits {
            Ok(id)
        } else {
            Err(PayeeRejection::LedgerAccountTaken(code.to_owned()))
        })
    }
}
