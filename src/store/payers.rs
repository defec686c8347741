//! Payer accounts (known by their keyed hash), their links to residents and households with
//! the audit of every change, and the cash payments payees record. Reads and writes only.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Backend, StoreResult, UnitOfWork};

/// A payer account as listed: its link and what the bank feed saw of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerAccountRecord {
    pub account_hash: String,
    pub last4: String,
    pub resident_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
    pub linked_at: Option<i64>,
    pub linked_by: Option<String>,
    pub transaction_count: i64,
    /// Booking times (microseconds) of the first and last transfer from it; `None` when none.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
}

type PayerAccountRow = (
    String,
    String,
    Option<Uuid>,
    Option<Uuid>,
    Option<i64>,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

fn payer_account_record(row: PayerAccountRow) -> PayerAccountRecord {
    let (
        account_hash,
        last4,
        resident_id,
        household_id,
        linked_at,
        linked_by,
        transaction_count,
        first_seen,
        last_seen,
    ) = row;
    PayerAccountRecord {
        account_hash,
        last4,
        resident_id,
        household_id,
        linked_at,
        linked_by,
        transaction_count,
        first_seen,
        last_seen,
    }
}

const PAYER_ACCOUNT_SELECT: &str = "SELECT p.account_hash, p.last4, p.resident_id, \
       p.household_id, p.linked_at, p.linked_by, \
       (SELECT COUNT(*) FROM bank_transactions b WHERE b.payer_account_hash = p.account_hash), \
       (SELECT MIN(b.occurred_at) FROM bank_transactions b \
          WHERE b.payer_account_hash = p.account_hash), \
       (SELECT MAX(b.occurred_at) FROM bank_transactions b \
          WHERE b.payer_account_hash = p.account_hash) \
     FROM payer_accounts p";

/// Which payer accounts to list: ordered by hash, after the cursor.
#[derive(Debug, Clone, Default)]
pub struct PayerAccountFilter {
    /// `Some(true)`: only linked ones; `Some(false)`: only unlinked ones.
    pub linked: Option<bool>,
    pub after: Option<String>,
    pub limit: u32,
}

/// Cash a payee recorded. Never posted to the ledger.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CashPayment {
    pub id: Uuid,
    pub payee_id: Uuid,
    pub amount: i64,
    pub payment_count: i32,
    pub occurred_at: i64,
    pub payer_resident_id: Option<Uuid>,
    pub payer_household_id: Option<Uuid>,
    pub note: Option<String>,
    pub recorded_by: Uuid,
    pub created_at: i64,
}

const CASH_COLUMNS: &str = "id, payee_id, amount, payment_count, occurred_at, \
     payer_resident_id, payer_household_id, note, recorded_by, created_at";

#[async_trait]
pub trait PayerStore {
    /// Payer accounts ordered by hash.
    async fn list_payer_accounts(
        &self,
        filter: &PayerAccountFilter,
    ) -> StoreResult<Vec<PayerAccountRecord>>;
    async fn payer_account(&self, account_hash: &str) -> StoreResult<Option<PayerAccountRecord>>;
    /// The payee's cash payments, newest first (by occurred_at, then id), after the cursor.
    async fn list_cash_payments(
        &self,
        payee_id: Uuid,
        before: Option<(i64, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<CashPayment>>;
}

#[async_trait]
impl<T: Backend> PayerStore for T {
    async fn list_payer_accounts(
        &self,
        filter: &PayerAccountFilter,
    ) -> StoreResult<Vec<PayerAccountRecord>> {
        let linked = match filter.linked {
            None => "",
            Some(true) => " AND (p.resident_id IS NOT NULL OR p.household_id IS NOT NULL)",
            Some(false) => " AND p.resident_id IS NULL AND p.household_id IS NULL",
        };
        let sql = format!(
            "{PAYER_ACCOUNT_SELECT} WHERE p.account_hash > $1{linked} \
             ORDER BY p.account_hash LIMIT $2"
        );
        let after = filter.after.clone().unwrap_or_default();
        let rows: Vec<PayerAccountRow> =
            pool_rows!(self, fetch_all, &sql, after, i64::from(filter.limit))?;
        Ok(rows.into_iter().map(payer_account_record).collect())
    }

    async fn payer_account(&self, account_hash: &str) -> StoreResult<Option<PayerAccountRecord>> {
        let sql = format!("{PAYER_ACCOUNT_SELECT} WHERE p.account_hash = $1");
        let row: Option<PayerAccountRow> = pool_rows!(self, fetch_optional, &sql, account_hash)?;
        Ok(row.map(payer_account_record))
    }

    async fn list_cash_payments(
        &self,
        payee_id: Uuid,
        before: Option<(i64, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<CashPayment>> {
        let rows: Vec<CashPayment> = match before {
            None => {
                let sql = format!(
                    "SELECT {CASH_COLUMNS} FROM cash_payments WHERE payee_id = $1 \
                     ORDER BY occurred_at DESC, id DESC LIMIT $2"
                );
                pool_rows!(self, fetch_all, &sql, payee_id, i64::from(limit))?
            }
            Some((at, id)) => {
                let sql = format!(
                    "SELECT {CASH_COLUMNS} FROM cash_payments WHERE payee_id = $1 \
                       AND (occurred_at < $2 OR (occurred_at = $2 AND id < $3)) \
                     ORDER BY occurred_at DESC, id DESC LIMIT $4"
                );
                pool_rows!(self, fetch_all, &sql, payee_id, at, id, i64::from(limit))?
            }
        };
        Ok(rows)
    }
}

/// The payer reads and writes of a use case's database transaction.
impl UnitOfWork<'_> {
    /// The account's current link (resident, household), locked until commit; `None` when
    /// the account is unknown.
    pub async fn lock_payer_account(
        &mut self,
        account_hash: &str,
    ) -> StoreResult<Option<(Option<Uuid>, Option<Uuid>)>> {
        let sql = format!(
            "SELECT resident_id, household_id FROM payer_accounts WHERE account_hash = $1{}",
            self.row_lock()
        );
        let row: Option<(Option<Uuid>, Option<Uuid>)> =
            tx_rows!(self, fetch_optional, &sql, account_hash)?;
        Ok(row)
    }

    pub async fn resident_exists(&mut self, id: Uuid) -> StoreResult<bool> {
        let (count,): (i64,) = tx_rows!(
            self,
            fetch_one,
            "SELECT COUNT(*) FROM residents WHERE id = $1",
            id
        )?;
        Ok(count > 0)
    }

    pub async fn household_exists(&mut self, id: Uuid) -> StoreResult<bool> {
        let (count,): (i64,) = tx_rows!(
            self,
            fetch_one,
            "SELECT COUNT(*) FROM households WHERE id = $1",
            id
        )?;
        Ok(count > 0)
    }

    /// The resident's consent in force on `day`: the latest with effective_on on or before it
    /// (the last recorded, of one day); `None` when there is none. The day is bound as a date:
    /// a DATE on PostgreSQL, `YYYY-MM-DD` text on SQLite.
    pub async fn consent_on(
        &mut self,
        resident_id: Uuid,
        day: chrono::NaiveDate,
    ) -> StoreResult<Option<bool>> {
        let sql = "SELECT given FROM resident_consents \
                   WHERE resident_id = $1 AND effective_on <= $2 \
                   ORDER BY effective_on DESC, recorded_at DESC, id DESC LIMIT 1";
        let row: Option<(bool,)> = tx_rows!(self, fetch_optional, sql, resident_id, day)?;
        Ok(row.map(|(given,)| given))
    }

    /// Sets (or, with both `None`, clears) the account's link.
    pub async fn set_payer_link(
        &mut self,
        account_hash: &str,
        resident_id: Option<Uuid>,
        household_id: Option<Uuid>,
        at: Option<i64>,
        by: Option<&str>,
    ) -> StoreResult<()> {
        let sql = "UPDATE payer_accounts SET resident_id = $2, household_id = $3, \
                     linked_at = $4, linked_by = $5 \
                   WHERE account_hash = $1";
        execute!(self, sql, account_hash, resident_id, household_id, at, by)?;
        Ok(())
    }

    /// Records a payer account not seen before, unlinked.
    pub async fn insert_payer_account(
        &mut self,
        account_hash: &str,
        last4: &str,
    ) -> StoreResult<()> {
        execute!(
            self,
            "INSERT INTO payer_accounts (account_hash, last4) VALUES ($1, $2)",
            account_hash,
            last4
        )?;
        Ok(())
    }

    pub async fn insert_cash_payment(&mut self, cash: &CashPayment) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO cash_payments ({CASH_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        execute!(
            self,
            &sql,
            cash.id,
            cash.payee_id,
            cash.amount,
            cash.payment_count,
            cash.occurred_at,
            cash.payer_resident_id,
            cash.payer_household_id,
            cash.note.as_deref(),
            cash.recorded_by,
            cash.created_at
        )?;
        Ok(())
    }

    pub async fn payee_exists(&mut self, id: Uuid) -> StoreResult<bool> {
        let (count,): (i64,) = tx_rows!(
            self,
            fetch_one,
            "SELECT COUNT(*) FROM payees WHERE id = $1",
            id
        )?;
        Ok(count > 0)
    }
}
