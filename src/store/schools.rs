//! School fee collection: years, classes, pupils, fee items, runs, charges, payments and
//! receipts. Plain reads and writes in a use case's unit of work; every decision (what a run
//! charges, how money is split) is the domain's (`domain::schools`).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use uuid::Uuid;

use super::unit_of_work::Conn;
use super::{Backend, PostgresStore, StoreError, StoreResult, UnitOfWork};
use crate::domain::account::{AccountFlags, AccountKind};
use crate::domain::intent::IntentStatus;
use crate::domain::money::Currency;
use crate::domain::schools::{FeeUnit, Fund, ItemFacts, OpenCharge, PupilFacts, Reduction};
use crate::domain::transaction::NewTransaction;

#[async_trait]
pub trait SchoolStore {
    /// A read-only transaction on one consistent snapshot, for the school's reports.
    async fn school_snapshot(&self) -> StoreResult<UnitOfWork<'_>>;
}

#[async_trait]
impl<T: Backend> SchoolStore for T {
    async fn school_snapshot(&self) -> StoreResult<UnitOfWork<'_>> {
        self.begin_snapshot().await
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct YearRow {
    pub id: Uuid,
    pub school_id: Uuid,
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClassRow {
    pub id: Uuid,
    pub school_id: Uuid,
    pub year_id: Uuid,
    pub grade: i32,
    pub name: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PupilRow {
    pub id: Uuid,
    pub school_id: Uuid,
    pub code: String,
    pub full_name: String,
    pub household_id: Option<Uuid>,
    pub guardian_name: Option<String>,
    pub guardian_phone: Option<String>,
    pub receivable_account_id: Uuid,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipRow {
    pub class_id: Uuid,
    pub class_name: String,
    pub from_on: NaiveDate,
    pub until_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FeeItemRow {
    pub id: Uuid,
    pub school_id: Uuid,
    pub year_id: Uuid,
    pub name: String,
    pub fund: String,
    pub mandatory: bool,
    pub unit: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub school_id: Uuid,
    pub year_id: Uuid,
    pub name: String,
    pub due_on: NaiveDate,
    pub school_days: Option<i32>,
    pub posted_at: Option<i64>,
    /// When the whole run was reversed.
    pub reversed_at: Option<i64>,
}

/// A charge as stored, with its run's name and due day and its item's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChargeRow {
    pub id: Uuid,
    pub run_id: Uuid,
    pub run_name: String,
    pub due_on: NaiveDate,
    pub pupil_id: Uuid,
    pub class_id: Uuid,
    pub fee_item_id: Uuid,
    pub item_name: String,
    pub fund: String,
    pub mandatory: bool,
    pub gross: i64,
    pub exemption: i64,
    pub amount: i64,
    pub paid: i64,
    pub created_at: i64,
    /// When it was reversed: it owes nothing since.
    pub reversed_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: Uuid,
    pub pupil_id: Uuid,
    pub method: String,
    pub amount: i64,
    pub ledger_transaction_id: Uuid,
    pub receipt_id: Option<Uuid>,
    pub cancelled_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReceiptRow {
    pub id: Uuid,
    pub school_id: Uuid,
    pub year_id: Uuid,
    pub number: i64,
    pub pupil_id: Uuid,
    pub payer_name: String,
    pub amount: i64,
    pub payment_id: Uuid,
    pub created_by: String,
    pub created_at: i64,
    pub cancelled_at: Option<i64>,
    pub cancelled_by: Option<String>,
    pub cancel_reason: Option<String>,
}

/// One pupil's totals in a run: charged, paid.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PupilRunTotals {
    pub pupil_id: Uuid,
    pub code: String,
    pub full_name: String,
    pub class_id: Uuid,
    pub charged: i64,
    pub paid: i64,
    /// Every charge of the pupil in the run is reversed.
    pub reversed: bool,
}

/// A pupil naming a household, with the school's payee code, payee ledger account and the
/// bank collection account the school's QR codes send money to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HouseholdPupilRow {
    #[sqlx(flatten)]
    pub pupil: PupilRow,
    pub school_code: String,
    pub school_account_id: Uuid,
    pub collection_account_id: Uuid,
}

/// The pupil a school run's intent collects for, with the school's payee code and ledger
/// account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IntentPupilRow {
    pub intent_id: Uuid,
    #[sqlx(flatten)]
    pub pupil: PupilRow,
    pub school_code: String,
    pub school_account_id: Uuid,
}

/// A household QR: the intent, the household it pays for, the school payee it names and the
/// collection account the money lands in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HouseholdIntentRow {
    pub household_id: Uuid,
    pub household_code: String,
    pub payee_id: Uuid,
    pub collection_account_id: Uuid,
}

/// The household QR a parent's page shows: still open for payment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenHouseholdIntentRow {
    pub id: Uuid,
    pub reference: String,
    pub amount: i64,
    pub paid_amount: i64,
    pub qr_payload: String,
}

#[derive(Debug, Clone)]
pub struct NewPupil<'a> {
    pub id: Uuid,
    pub school_id: Uuid,
    pub code: &'a str,
    pub full_name: &'a str,
    pub household_id: Option<Uuid>,
    pub guardian_name: Option<&'a str>,
    pub guardian_phone: Option<&'a str>,
    pub receivable_account_id: Uuid,
    pub class_id: Uuid,
    pub joined_on: NaiveDate,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub struct NewCharge {
    pub id: Uuid,
    pub run_id: Uuid,
    pub pupil_id: Uuid,
    pub class_id: Uuid,
    pub fee_item_id: Uuid,
    pub gross: i64,
    pub exemption: i64,
    pub amount: i64,
    pub ledger_transaction_id: Uuid,
}

/// That a payment paid `amount` of a charge in a ledger transaction.
struct AllocationRow {
    payment_id: Uuid,
    charge_id: Uuid,
    amount: i64,
    ledger_transaction_id: Uuid,
}

#[derive(Debug, Clone)]
pub struct NewSchoolPayment {
    pub id: Uuid,
    pub school_id: Uuid,
    pub pupil_id: Uuid,
    pub cash: bool,
    pub amount: i64,
    pub ledger_transaction_id: Uuid,
    pub bank_transaction_id: Option<Uuid>,
    pub receipt_id: Option<Uuid>,
}

impl NewSchoolPayment {
    /// As stored in `school_payments.method`.
    pub(super) fn method(&self) -> &'static str {
        if self.cash {
            "cash"
        } else {
            "online"
        }
    }
}

const CHARGE_COLUMNS: &str = "c.id, c.run_id, r.name AS run_name, r.due_on, c.pupil_id, \
     c.class_id, c.fee_item_id, i.name AS item_name, i.fund, i.mandatory, c.gross, \
     c.exemption, c.amount, c.paid, c.created_at, c.reversed_at \
     FROM school_charges c JOIN collection_runs r ON r.id = c.run_id \
     JOIN fee_items i ON i.id = c.fee_item_id";

/// The credit of pupil `$1`: what was received for the pupil and not (or no longer)
/// allocated to a charge, nor refunded. The allocations are summed charge by charge of the
/// pupil: as a join, PostgreSQL planned a scan of every allocation of the database for each
/// row (with the statistics of a table filling fast, as during a school's first payments).
const PUPIL_CREDIT: &str = "CAST((SELECT COALESCE(SUM(amount), 0) FROM school_payments \
     WHERE pupil_id = $1 AND cancelled_at IS NULL) \
     - (SELECT COALESCE(SUM(amount), 0) FROM school_corrections \
     WHERE pupil_id = $1 AND kind = 'refund') \
     - (SELECT COALESCE(SUM((SELECT COALESCE(SUM(a.amount), 0) FROM school_allocations a \
     WHERE a.charge_id = ac.id AND a.cancelled_at IS NULL)), 0) \
     FROM school_charges ac WHERE ac.pupil_id = $1) AS BIGINT)";

const RECEIPT_COLUMNS: &str = "id, school_id, year_id, number, pupil_id, payer_name, amount, \
     payment_id, created_by, created_at, cancelled_at, cancelled_by, cancel_reason";

/// (pupil, charge, due on, mandatory, posted at, fund, outstanding, the pupil's credit).
type PupilChargeRow = (Uuid, Uuid, NaiveDate, bool, i64, String, i64, i64);

/// An open charge from its row: (id, due on, mandatory, posted at, fund, outstanding).
fn open_charge(
    (id, due_on, mandatory, posted_at, fund, outstanding): (
        Uuid,
        NaiveDate,
        bool,
        i64,
        String,
        i64,
    ),
) -> StoreResult<OpenCharge> {
    Ok(OpenCharge {
        id,
        due_on,
        mandatory,
        posted_at,
        fund: Fund::parse(&fund).ok_or_else(|| StoreError::Corrupt(format!("fund {fund:?}")))?,
        outstanding,
    })
}

/// Each allocation raised one charge's paid amount.
fn charges_updated(updated: u64, allocations: usize) -> StoreResult<()> {
    all_updated(
        updated,
        allocations,
        "charges (an allocation names a missing or repeated one)",
    )
}

/// A statement changed exactly the `wanted` rows of `what` it names.
fn all_updated(updated: u64, wanted: usize, what: &str) -> StoreResult<()> {
    if updated == wanted as u64 {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "{updated} of {wanted} {what} updated"
        )))
    }
}

fn unique_taken(error: sqlx::Error) -> StoreResult<bool> {
    match error {
        sqlx::Error::Database(e) if e.is_unique_violation() => Ok(false),
        other => Err(other.into()),
    }
}

impl UnitOfWork<'_> {
    /// The id of the VND account with this code, created (with `name` and `kind`) if missing;
    /// an account of that code with another kind is corrupt data for a school.
    pub async fn ensure_school_account(
        &mut self,
        code: &str,
        name: &str,
        kind: AccountKind,
        now: i64,
    ) -> StoreResult<Uuid> {
        self.ensure_ledger_account((code, name), kind, AccountFlags::default(), now)
            .await?
            .map_err(|_| StoreError::Corrupt(format!("account {code} exists with another kind")))
    }

    /// The ids of the accounts of these (code, kind) that exist as `ensure_school_account`
    /// would leave them (VND, that kind, no balance rule), by code; one read.
    pub async fn fitting_school_accounts(
        &mut self,
        wanted: &[(String, AccountKind)],
    ) -> StoreResult<HashMap<String, Uuid>> {
        let rows: Vec<(String, Uuid, String, String, bool, bool)> = on_tx!(self, |tx| {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT code, id, kind, currency, debits_must_not_exceed_credits, \
                 credits_must_not_exceed_debits FROM accounts WHERE code IN (",
            );
            let mut list = query.separated(", ");
            wanted.iter().for_each(|(code, _)| {
                list.push_bind(code.as_str());
            });
            query.push(")");
            query.build_query_as().fetch_all(&mut **tx).await
        })?;
        Ok(rows
            .into_iter()
            .filter(|(code, _, kind, currency, debits_guard, credits_guard)| {
                wanted
                    .iter()
                    .any(|(c, k)| c == code && k.as_str() == kind.as_str())
                    && currency == Currency::Vnd.code()
                    && !debits_guard
                    && !credits_guard
            })
            .map(|(code, id, ..)| (code, id))
            .collect())
    }

    /// Posts all of the transactions, or (false) none when an account's rule refuses one.
    pub async fn post_all(
        &mut self,
        transactions: &[NewTransaction],
        created_by: Uuid,
    ) -> StoreResult<bool> {
        let items: Vec<(&NewTransaction, Uuid)> =
            transactions.iter().map(|t| (t, created_by)).collect();
        let mut results = vec![Ok(()); items.len()];
        self.apply_and_write(&items, &mut results, true).await
    }

    /// False when the school already has a year of this name.
    pub async fn insert_school_year(&mut self, year: &YearRow, now: i64) -> StoreResult<bool> {
        let sql = "INSERT INTO school_years (id, school_id, name, starts_on, ends_on, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        execute!(
            self,
            sql,
            year.id,
            year.school_id,
            &year.name,
            year.starts_on,
            year.ends_on,
            now
        )
        .map_or_else(unique_taken, |_| Ok(true))
    }

    pub async fn school_years(&mut self, school_id: Uuid) -> StoreResult<Vec<YearRow>> {
        let sql = "SELECT id, school_id, name, starts_on, ends_on FROM school_years \
                   WHERE school_id = $1 ORDER BY starts_on, id";
        Ok(tx_rows!(self, fetch_all, sql, school_id)?)
    }

    pub async fn school_year(&mut self, id: Uuid) -> StoreResult<Option<YearRow>> {
        let sql = "SELECT id, school_id, name, starts_on, ends_on FROM school_years WHERE id = $1";
        Ok(tx_rows!(self, fetch_optional, sql, id)?)
    }

    pub async fn insert_school_class(&mut self, class: &ClassRow, now: i64) -> StoreResult<bool> {
        let sql = "INSERT INTO school_classes (id, school_id, year_id, grade, name, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        execute!(
            self,
            sql,
            class.id,
            class.school_id,
            class.year_id,
            class.grade,
            &class.name,
            now
        )
        .map_or_else(unique_taken, |_| Ok(true))
    }

    pub async fn school_classes(&mut self, school_id: Uuid) -> StoreResult<Vec<ClassRow>> {
        let sql = "SELECT id, school_id, year_id, grade, name FROM school_classes \
                   WHERE school_id = $1 ORDER BY year_id, grade, name";
        Ok(tx_rows!(self, fetch_all, sql, school_id)?)
    }

    pub async fn school_class(&mut self, id: Uuid) -> StoreResult<Option<ClassRow>> {
        let sql = "SELECT id, school_id, year_id, grade, name FROM school_classes WHERE id = $1";
        Ok(tx_rows!(self, fetch_optional, sql, id)?)
    }

    pub async fn household_id_by_code(&mut self, code: &str) -> StoreResult<Option<Uuid>> {
        let sql = "SELECT id FROM households WHERE code = $1";
        let found: Option<(Uuid,)> = tx_rows!(self, fetch_optional, sql, code)?;
        Ok(found.map(|(id,)| id))
    }

    pub async fn pupil_by_code(
        &mut self,
        school_id: Uuid,
        code: &str,
    ) -> StoreResult<Option<PupilRow>> {
        let sql = "SELECT id, school_id, code, full_name, household_id, guardian_name, \
                   guardian_phone, receivable_account_id FROM pupils \
                   WHERE school_id = $1 AND code = $2";
        Ok(tx_rows!(self, fetch_optional, sql, school_id, code)?)
    }

    /// The pupil and the first class membership; false when the code is taken at the school.
    pub async fn insert_pupil(&mut self, pupil: &NewPupil<'_>) -> StoreResult<bool> {
        let sql = "INSERT INTO pupils (id, school_id, code, full_name, household_id, \
                   guardian_name, guardian_phone, receivable_account_id, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING";
        let inserted = execute!(
            self,
            sql,
            pupil.id,
            pupil.school_id,
            pupil.code,
            pupil.full_name,
            pupil.household_id,
            pupil.guardian_name,
            pupil.guardian_phone,
            pupil.receivable_account_id,
            pupil.now
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        self.open_membership(pupil.id, pupil.class_id, pupil.joined_on, pupil.now)
            .await?;
        Ok(true)
    }

    pub async fn open_membership(
        &mut self,
        pupil_id: Uuid,
        class_id: Uuid,
        from_on: NaiveDate,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO class_memberships (id, pupil_id, class_id, from_on, until_on, \
                   created_at) VALUES ($1, $2, $3, $4, NULL, $5)";
        execute!(
            self,
            sql,
            super::id_at(now),
            pupil_id,
            class_id,
            from_on,
            now
        )?;
        Ok(())
    }

    /// Closes the pupil's open membership on `on`; false when none is open.
    pub async fn close_membership(&mut self, pupil_id: Uuid, on: NaiveDate) -> StoreResult<bool> {
        let sql = "UPDATE class_memberships SET until_on = $2 \
                   WHERE pupil_id = $1 AND until_on IS NULL AND from_on < $2";
        Ok(execute!(self, sql, pupil_id, on)? == 1)
    }

    pub async fn pupil(&mut self, id: Uuid) -> StoreResult<Option<PupilRow>> {
        let sql = "SELECT id, school_id, code, full_name, household_id, guardian_name, \
                   guardian_phone, receivable_account_id FROM pupils WHERE id = $1";
        Ok(tx_rows!(self, fetch_optional, sql, id)?)
    }

    /// At most `limit` of the school's pupils by code after `after`: those ever in `class_id`
    /// when given, and those whose code starts with `code_prefix` when given.
    pub async fn school_pupils(
        &mut self,
        school_id: Uuid,
        class_id: Option<Uuid>,
        code_prefix: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<PupilRow>> {
        // substr, not LIKE: a code may hold `%` or `_`.
        let sql = "SELECT p.id, p.school_id, p.code, p.full_name, p.household_id, \
                   p.guardian_name, p.guardian_phone, p.receivable_account_id \
                   FROM pupils p WHERE p.school_id = $1 \
                     AND ($2 IS NULL OR EXISTS (SELECT 1 FROM class_memberships m \
                          WHERE m.pupil_id = p.id AND m.class_id = $2)) \
                     AND ($3 IS NULL OR substr(p.code, 1, length($3)) = $3) \
                     AND ($4 IS NULL OR p.code > $4) \
                   ORDER BY p.code LIMIT $5";
        Ok(tx_rows!(
            self,
            fetch_all,
            sql,
            school_id,
            class_id,
            code_prefix,
            after,
            i64::from(limit)
        )?)
    }

    pub async fn memberships(&mut self, pupil_id: Uuid) -> StoreResult<Vec<MembershipRow>> {
        let sql = "SELECT m.class_id, c.name AS class_name, m.from_on, m.until_on \
                   FROM class_memberships m JOIN school_classes c ON c.id = m.class_id \
                   WHERE m.pupil_id = $1 ORDER BY m.from_on, m.id";
        Ok(tx_rows!(self, fetch_all, sql, pupil_id)?)
    }

    /// Pupils in a class on a day, by code.
    pub async fn class_pupils(
        &mut self,
        class_id: Uuid,
        on: NaiveDate,
    ) -> StoreResult<Vec<PupilRow>> {
        let sql = "SELECT p.id, p.school_id, p.code, p.full_name, p.household_id, \
                   p.guardian_name, p.guardian_phone, p.receivable_account_id \
                   FROM pupils p JOIN class_memberships m ON m.pupil_id = p.id \
                   WHERE m.class_id = $1 AND m.from_on <= $2 \
                     AND (m.until_on IS NULL OR m.until_on > $2) ORDER BY p.code";
        Ok(tx_rows!(self, fetch_all, sql, class_id, on)?)
    }

    pub async fn insert_fee_item(
        &mut self,
        item: &FeeItemRow,
        grade_amounts: &[(i32, i64)],
        class_amounts: &[(Uuid, i64)],
        now: i64,
    ) -> StoreResult<bool> {
        let sql = "INSERT INTO fee_items (id, school_id, year_id, name, fund, mandatory, unit, \
                   created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";
        let inserted = execute!(
            self,
            sql,
            item.id,
            item.school_id,
            item.year_id,
            &item.name,
            &item.fund,
            item.mandatory,
            &item.unit,
            now
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        for (grade, amount) in grade_amounts {
            let sql = "INSERT INTO fee_amounts (fee_item_id, grade, class_id, amount) \
                       VALUES ($1, $2, NULL, $3)";
            execute!(self, sql, item.id, *grade, *amount)?;
        }
        for (class_id, amount) in class_amounts {
            let sql = "INSERT INTO fee_amounts (fee_item_id, grade, class_id, amount) \
                       VALUES ($1, NULL, $2, $3)";
            execute!(self, sql, item.id, *class_id, *amount)?;
        }
        Ok(true)
    }

    pub async fn fee_item(&mut self, id: Uuid) -> StoreResult<Option<FeeItemRow>> {
        let sql = "SELECT id, school_id, year_id, name, fund, mandatory, unit FROM fee_items \
                   WHERE id = $1";
        Ok(tx_rows!(self, fetch_optional, sql, id)?)
    }

    pub async fn fee_items(&mut self, school_id: Uuid) -> StoreResult<Vec<FeeItemRow>> {
        let sql = "SELECT id, school_id, year_id, name, fund, mandatory, unit FROM fee_items \
                   WHERE school_id = $1 ORDER BY created_at, id";
        Ok(tx_rows!(self, fetch_all, sql, school_id)?)
    }

    /// (grade, class, amount) rows of an item.
    pub async fn fee_amounts(
        &mut self,
        item_id: Uuid,
    ) -> StoreResult<Vec<(Option<i32>, Option<Uuid>, i64)>> {
        let sql = "SELECT grade, class_id, amount FROM fee_amounts WHERE fee_item_id = $1 \
                   ORDER BY grade, class_id";
        Ok(tx_rows!(self, fetch_all, sql, item_id)?)
    }

    pub async fn enrol(&mut self, item_id: Uuid, pupil_id: Uuid, now: i64) -> StoreResult<()> {
        let sql = "INSERT INTO fee_enrolments (fee_item_id, pupil_id, created_at) \
                   VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        execute!(self, sql, item_id, pupil_id, now)?;
        Ok(())
    }

    /// False when the pupil already has a reduction of this item.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_exemption(
        &mut self,
        id: Uuid,
        (pupil_id, item_id): (Uuid, Uuid),
        reduction: Reduction,
        (category, note): (&str, Option<&str>),
        approved_by: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let (percent, amount) = match reduction {
            Reduction::Percent(p) => (Some(i32::from(p)), None),
            Reduction::Fixed(a) => (None, Some(a)),
        };
        let sql = "INSERT INTO fee_exemptions (id, pupil_id, fee_item_id, percent, amount, \
                   category, note, approved_by, approved_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING";
        Ok(execute!(
            self,
            sql,
            id,
            pupil_id,
            item_id,
            percent,
            amount,
            category,
            note,
            approved_by,
            now
        )? == 1)
    }

    /// (item id, item name, percent, amount, category, note, approved by, approved at) of a
    /// pupil's reductions.
    #[allow(clippy::type_complexity)]
    pub async fn pupil_exemptions(
        &mut self,
        pupil_id: Uuid,
    ) -> StoreResult<
        Vec<(
            Uuid,
            String,
            Option<i32>,
            Option<i64>,
            String,
            Option<String>,
            String,
            i64,
        )>,
    > {
        let sql = "SELECT e.fee_item_id, i.name, e.percent, e.amount, e.category, e.note, \
                   e.approved_by, e.approved_at FROM fee_exemptions e \
                   JOIN fee_items i ON i.id = e.fee_item_id WHERE e.pupil_id = $1 \
                   ORDER BY e.approved_at, e.id";
        Ok(tx_rows!(self, fetch_all, sql, pupil_id)?)
    }

    pub async fn insert_run(
        &mut self,
        run: &RunRow,
        items: &[Uuid],
        now: i64,
    ) -> StoreResult<bool> {
        let sql = "INSERT INTO collection_runs (id, school_id, year_id, name, due_on, \
                   school_days, posted_at, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, NULL, $7) ON CONFLICT DO NOTHING";
        let inserted = execute!(
            self,
            sql,
            run.id,
            run.school_id,
            run.year_id,
            &run.name,
            run.due_on,
            run.school_days,
            now
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        for item in items {
            let sql = "INSERT INTO collection_run_items (run_id, fee_item_id) VALUES ($1, $2)";
            execute!(self, sql, run.id, *item)?;
        }
        Ok(true)
    }

    /// The run; `lock` keeps it locked to the end of the unit (posting it).
    pub async fn run(&mut self, id: Uuid, lock: bool) -> StoreResult<Option<RunRow>> {
        let sql = format!(
            "SELECT id, school_id, year_id, name, due_on, school_days, posted_at, reversed_at \
             FROM collection_runs WHERE id = $1{}",
            if lock { self.row_lock() } else { "" }
        );
        Ok(tx_rows!(self, fetch_optional, &sql, id)?)
    }

    pub async fn runs(&mut self, school_id: Uuid) -> StoreResult<Vec<RunRow>> {
        let sql = "SELECT id, school_id, year_id, name, due_on, school_days, posted_at, \
                   reversed_at FROM collection_runs WHERE school_id = $1 ORDER BY due_on, created_at, id";
        Ok(tx_rows!(self, fetch_all, sql, school_id)?)
    }

    pub async fn mark_run_posted(&mut self, id: Uuid, now: i64) -> StoreResult<()> {
        execute!(
            self,
            "UPDATE collection_runs SET posted_at = $2 WHERE id = $1",
            id,
            now
        )?;
        Ok(())
    }

    /// The run's items with their amounts and enrolments.
    pub async fn run_items(&mut self, run_id: Uuid) -> StoreResult<Vec<ItemFacts>> {
        let sql = "SELECT i.id, i.school_id, i.year_id, i.name, i.fund, i.mandatory, i.unit \
                   FROM fee_items i JOIN collection_run_items ri ON ri.fee_item_id = i.id \
                   WHERE ri.run_id = $1 ORDER BY i.created_at, i.id";
        let rows: Vec<FeeItemRow> = tx_rows!(self, fetch_all, sql, run_id)?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let mut item = ItemFacts {
                id: row.id,
                fund: Fund::parse(&row.fund)
                    .ok_or_else(|| StoreError::Corrupt(format!("fund {:?}", row.fund)))?,
                mandatory: row.mandatory,
                unit: FeeUnit::parse(&row.unit)
                    .ok_or_else(|| StoreError::Corrupt(format!("unit {:?}", row.unit)))?,
                name: row.name,
                grade_amounts: Vec::new(),
                class_amounts: Vec::new(),
                enrolled: Vec::new(),
            };
            for (grade, class, amount) in self.fee_amounts(row.id).await? {
                match (grade, class) {
                    (Some(grade), _) => item.grade_amounts.push((grade, amount)),
                    (None, Some(class)) => item.class_amounts.push((class, amount)),
                    (None, None) => {}
                }
            }
            if !item.mandatory {
                let sql = "SELECT pupil_id FROM fee_enrolments WHERE fee_item_id = $1";
                let enrolled: Vec<(Uuid,)> = tx_rows!(self, fetch_all, sql, row.id)?;
                item.enrolled = enrolled.into_iter().map(|(id,)| id).collect();
            }
            items.push(item);
        }
        Ok(items)
    }

    /// The pupils in the year's classes on `on`, with their grade and reductions, by code.
    pub async fn run_pupils(
        &mut self,
        year_id: Uuid,
        on: NaiveDate,
    ) -> StoreResult<Vec<(PupilRow, PupilFacts)>> {
        let sql = "SELECT p.id, p.school_id, p.code, p.full_name, p.household_id, \
                   p.guardian_name, p.guardian_phone, p.receivable_account_id, \
                   c.id AS class_id, c.grade \
                   FROM pupils p JOIN class_memberships m ON m.pupil_id = p.id \
                   JOIN school_classes c ON c.id = m.class_id \
                   WHERE c.year_id = $1 AND m.from_on <= $2 \
                     AND (m.until_on IS NULL OR m.until_on > $2) ORDER BY c.name, p.code";
        let rows: Vec<RunPupilRow> = tx_rows!(self, fetch_all, sql, year_id, on)?;
        let sql = "SELECT e.pupil_id, e.fee_item_id, e.percent, e.amount FROM fee_exemptions e \
                   JOIN fee_items i ON i.id = e.fee_item_id WHERE i.year_id = $1";
        let reductions: Vec<(Uuid, Uuid, Option<i32>, Option<i64>)> =
            tx_rows!(self, fetch_all, sql, year_id)?;
        let mut by_pupil: std::collections::HashMap<Uuid, Vec<(Uuid, Reduction)>> =
            std::collections::HashMap::new();
        for (pupil, item, percent, amount) in reductions {
            let reduction = match (percent, amount) {
                (Some(p), _) => Reduction::Percent(u8::try_from(p).unwrap_or(100)),
                (None, Some(a)) => Reduction::Fixed(a),
                (None, None) => continue,
            };
            by_pupil.entry(pupil).or_default().push((item, reduction));
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let facts = PupilFacts {
                    id: row.id,
                    class_id: row.class_id,
                    grade: row.grade,
                    reductions: by_pupil.remove(&row.id).unwrap_or_default(),
                };
                (
                    PupilRow {
                        id: row.id,
                        school_id: row.school_id,
                        code: row.code,
                        full_name: row.full_name,
                        household_id: row.household_id,
                        guardian_name: row.guardian_name,
                        guardian_phone: row.guardian_phone,
                        receivable_account_id: row.receivable_account_id,
                    },
                    facts,
                )
            })
            .collect())
    }

    pub async fn insert_charges(&mut self, charges: &[NewCharge], now: i64) -> StoreResult<()> {
        for charge in charges {
            let sql = "INSERT INTO school_charges (id, run_id, pupil_id, class_id, fee_item_id, \
                       gross, exemption, amount, paid, ledger_transaction_id, created_at) \
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10)";
            execute!(
                self,
                sql,
                charge.id,
                charge.run_id,
                charge.pupil_id,
                charge.class_id,
                charge.fee_item_id,
                charge.gross,
                charge.exemption,
                charge.amount,
                charge.ledger_transaction_id,
                now
            )?;
        }
        Ok(())
    }

    pub async fn insert_run_intent(
        &mut self,
        run_id: Uuid,
        pupil_id: Uuid,
        intent_id: Uuid,
    ) -> StoreResult<()> {
        let sql =
            "INSERT INTO school_run_intents (run_id, pupil_id, intent_id) VALUES ($1, $2, $3)";
        execute!(self, sql, run_id, pupil_id, intent_id)?;
        Ok(())
    }

    /// (intent id, pupil id) of a run's QR codes.
    pub async fn run_intents(&mut self, run_id: Uuid) -> StoreResult<Vec<(Uuid, Uuid)>> {
        let sql = "SELECT intent_id, pupil_id FROM school_run_intents WHERE run_id = $1";
        Ok(tx_rows!(self, fetch_all, sql, run_id)?)
    }

    /// Whether the intent is (or was, before a correction replaced it) a school run's pupil
    /// intent, or is a household QR; one read.
    pub async fn is_school_intent(&mut self, intent_id: Uuid) -> StoreResult<bool> {
        let sql = "SELECT intent_id FROM school_run_intents WHERE intent_id = $1 \
                   UNION ALL SELECT intent_id FROM school_superseded_intents WHERE intent_id = $1 \
                   UNION ALL SELECT intent_id FROM household_payment_intents WHERE intent_id = $1 \
                   LIMIT 1";
        let found: Option<(Uuid,)> = tx_rows!(self, fetch_optional, sql, intent_id)?;
        Ok(found.is_some())
    }

    /// The pupil an intent collects for, when it is a school run's (or was, before a
    /// correction replaced it: money sent to it is still the pupil's), with the school's payee
    /// code and ledger account, in one read. The foreign keys make every join find its row.
    pub async fn intent_pupil(&mut self, intent_id: Uuid) -> StoreResult<Option<IntentPupilRow>> {
        Ok(self.intent_pupils(&[intent_id]).await?.into_iter().next())
    }

    /// [`Self::intent_pupil`] of each of these intents that is a pupil's, in one statement
    /// per chunk.
    pub async fn intent_pupils(&mut self, intent_ids: &[Uuid]) -> StoreResult<Vec<IntentPupilRow>> {
        let mut found = Vec::with_capacity(intent_ids.len());
        for chunk in intent_ids.chunks(super::ledger::CHUNK_ROWS / 2) {
            let rows: Vec<IntentPupilRow> = on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(
                    "SELECT k.intent_id, p.id, p.school_id, p.code, p.full_name, \
                     p.household_id, p.guardian_name, p.guardian_phone, \
                     p.receivable_account_id, s.code AS school_code, \
                     s.ledger_account_id AS school_account_id \
                     FROM (SELECT intent_id, pupil_id FROM school_run_intents WHERE intent_id IN (",
                );
                let mut list = query.separated(", ");
                chunk.iter().for_each(|id| {
                    list.push_bind(*id);
                });
                query.push(
                    ") UNION SELECT intent_id, pupil_id FROM school_superseded_intents \
                     WHERE intent_id IN (",
                );
                let mut list = query.separated(", ");
                chunk.iter().for_each(|id| {
                    list.push_bind(*id);
                });
                query.push(
                    ")) k JOIN pupils p ON p.id = k.pupil_id JOIN payees s ON s.id = p.school_id",
                );
                query.build_query_as().fetch_all(&mut **tx).await
            })?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// The household's code; None when there is no such household.
    pub async fn household_code(&mut self, id: Uuid) -> StoreResult<Option<String>> {
        let sql = "SELECT code FROM households WHERE id = $1";
        let found: Option<(String,)> = tx_rows!(self, fetch_optional, sql, id)?;
        Ok(found.map(|(code,)| code))
    }

    /// Every pupil naming the household, at every school, by school code then pupil code.
    pub async fn household_pupils(
        &mut self,
        household_id: Uuid,
    ) -> StoreResult<Vec<HouseholdPupilRow>> {
        let sql = "SELECT p.id, p.school_id, p.code, p.full_name, p.household_id, \
                   p.guardian_name, p.guardian_phone, p.receivable_account_id, \
                   s.code AS school_code, s.ledger_account_id AS school_account_id, \
                   s.collection_account_id \
                   FROM pupils p JOIN payees s ON s.id = p.school_id \
                   WHERE p.household_id = $1 ORDER BY s.code, p.code";
        Ok(tx_rows!(self, fetch_all, sql, household_id)?)
    }

    pub async fn insert_household_intent(
        &mut self,
        intent_id: Uuid,
        household_id: Uuid,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO household_payment_intents (intent_id, household_id, created_at) \
                   VALUES ($1, $2, $3)";
        execute!(self, sql, intent_id, household_id, now)?;
        Ok(())
    }

    /// The household an intent collects for, when it is a household QR.
    pub async fn household_of_intent(
        &mut self,
        intent_id: Uuid,
    ) -> StoreResult<Option<HouseholdIntentRow>> {
        let sql = "SELECT h.household_id, hh.code AS household_code, i.payee_id, \
                   i.collection_account_id FROM household_payment_intents h \
                   JOIN payment_intents i ON i.id = h.intent_id \
                   JOIN households hh ON hh.id = h.household_id WHERE h.intent_id = $1";
        Ok(tx_rows!(self, fetch_optional, sql, intent_id)?)
    }

    /// The household's newest QR that still takes payment at `now` (pending or partly paid,
    /// not cancelled or expired).
    pub async fn open_household_intent(
        &mut self,
        household_id: Uuid,
        now: i64,
    ) -> StoreResult<Option<OpenHouseholdIntentRow>> {
        let sql = "SELECT i.id, i.reference, i.amount, i.paid_amount, i.qr_payload \
                   FROM household_payment_intents h JOIN payment_intents i ON i.id = h.intent_id \
                   WHERE h.household_id = $1 AND i.status IN ('pending', 'partially_paid') \
                   AND i.cancelled_at IS NULL AND i.expires_at > $2 \
                   ORDER BY h.created_at DESC, i.id DESC LIMIT 1";
        Ok(tx_rows!(self, fetch_optional, sql, household_id, now)?)
    }

    /// The pupil's charges that are not fully paid, locked.
    pub async fn lock_open_charges(&mut self, pupil_id: Uuid) -> StoreResult<Vec<OpenCharge>> {
        self.open_charges(pupil_id, true).await
    }

    /// The pupil's charges that are not fully paid, locked, and the pupil's credit (as
    /// `pupil_credit`) when there is any such charge: with nothing open there is nothing for
    /// credit to pay, and the credit is 0.
    pub async fn lock_open_charges_and_credit(
        &mut self,
        pupil_id: Uuid,
    ) -> StoreResult<(Vec<OpenCharge>, i64)> {
        Ok(self
            .lock_open_charges_and_credits(&[pupil_id])
            .await?
            .remove(&pupil_id)
            .unwrap_or_default())
    }

    /// [`Self::lock_open_charges_and_credit`] of each of these pupils (those with an open
    /// charge), the charges locked in id order, in one statement per chunk. Each pupil's
    /// credit is computed once, in a materialized CTE, then joined to the pupil's charges: in
    /// the charges' select list its subqueries would run again for every charge row.
    pub async fn lock_open_charges_and_credits(
        &mut self,
        pupil_ids: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, (Vec<OpenCharge>, i64)>> {
        let row_lock = if self.row_lock().is_empty() {
            ""
        } else {
            " FOR UPDATE OF c"
        };
        let select = format!(
            "WITH credit AS MATERIALIZED (SELECT p.id AS pupil_id, {} AS credit \
             FROM pupils p WHERE p.id IN (",
            PUPIL_CREDIT.replace("$1", "p.id")
        );
        let tail = format!(
            ")) SELECT c.pupil_id, c.id, r.due_on, i.mandatory, c.created_at, i.fund, \
             c.amount - c.paid, k.credit FROM school_charges c \
             JOIN credit k ON k.pupil_id = c.pupil_id \
             JOIN collection_runs r ON r.id = c.run_id JOIN fee_items i ON i.id = c.fee_item_id \
             WHERE c.paid < c.amount AND c.reversed_at IS NULL ORDER BY c.id{row_lock}"
        );
        let rows: Vec<PupilChargeRow> = self
            .rows_for_ids(&select, pupil_ids, &tail, super::ledger::CHUNK_ROWS)
            .await?;
        let mut found: HashMap<Uuid, (Vec<OpenCharge>, i64)> = HashMap::new();
        for (pupil_id, id, due_on, mandatory, posted_at, fund, outstanding, credit) in rows {
            let (charges, pupil_credit) = found.entry(pupil_id).or_default();
            charges.push(open_charge((
                id,
                due_on,
                mandatory,
                posted_at,
                fund,
                outstanding,
            ))?);
            *pupil_credit = credit;
        }
        Ok(found)
    }

    /// The pupil's charges that are not fully paid, for reading.
    pub async fn pupil_open_charges(&mut self, pupil_id: Uuid) -> StoreResult<Vec<OpenCharge>> {
        self.open_charges(pupil_id, false).await
    }

    async fn open_charges(&mut self, pupil_id: Uuid, lock: bool) -> StoreResult<Vec<OpenCharge>> {
        let sql = format!(
            "SELECT c.id, r.due_on, i.mandatory, c.created_at, i.fund, c.amount - c.paid \
             FROM school_charges c JOIN collection_runs r ON r.id = c.run_id \
             JOIN fee_items i ON i.id = c.fee_item_id \
             WHERE c.pupil_id = $1 AND c.paid < c.amount AND c.reversed_at IS NULL \
             ORDER BY c.id{}",
            if !lock || self.row_lock().is_empty() {
                ""
            } else {
                " FOR UPDATE OF c"
            }
        );
        let rows: Vec<(Uuid, NaiveDate, bool, i64, String, i64)> =
            tx_rows!(self, fetch_all, &sql, pupil_id)?;
        rows.into_iter().map(open_charge).collect()
    }

    /// Money received for the pupil and not (or no longer) allocated to a charge, nor
    /// refunded.
    pub async fn pupil_credit(&mut self, pupil_id: Uuid) -> StoreResult<i64> {
        let sql = format!("SELECT {PUPIL_CREDIT}");
        let (credit,): (i64,) = tx_rows!(self, fetch_one, &sql, pupil_id)?;
        Ok(credit)
    }

    /// The payment, and that it paid these (charge, amount) in its ledger transaction: the
    /// allocation rows and each charge's paid amount raised.
    pub async fn insert_school_payment_with_allocations(
        &mut self,
        payment: &NewSchoolPayment,
        allocations: &[(Uuid, i64)],
        now: i64,
    ) -> StoreResult<()> {
        self.insert_school_payments_with_allocations(&[(payment, allocations)], now)
            .await
    }

    /// [`Self::insert_school_payment_with_allocations`] for several payments (of different
    /// pupils: no charge is paid by two of them), in one statement on PostgreSQL and three per
    /// chunk on SQLite.
    pub async fn insert_school_payments_with_allocations(
        &mut self,
        payments: &[(&NewSchoolPayment, &[(Uuid, i64)])],
        now: i64,
    ) -> StoreResult<()> {
        self.record_school_and_intent_payments(payments, &[], now)
            .await
    }

    /// [`Self::insert_school_payments_with_allocations`] and
    /// [`Self::record_intent_payments`]'s new (paid amount, status) of each intent, in one
    /// statement on PostgreSQL: a group of webhook deliveries writes both for its pupils.
    pub async fn record_school_and_intent_payments(
        &mut self,
        payments: &[(&NewSchoolPayment, &[(Uuid, i64)])],
        paid_intents: &[(Uuid, i64, IntentStatus)],
        now: i64,
    ) -> StoreResult<()> {
        let (charges, intents) = match &mut self.conn {
            Conn::Postgres(_, tx) => {
                PostgresStore::insert_school_payments_with_allocations(
                    tx,
                    payments,
                    paid_intents,
                    now,
                )
                .await?
            }
            Conn::Sqlite(..) => {
                self.insert_payment_rows(payments, now).await?;
                let allocations: Vec<AllocationRow> = payments
                    .iter()
                    .flat_map(|(payment, paid)| {
                        paid.iter().map(|&(charge_id, amount)| AllocationRow {
                            payment_id: payment.id,
                            charge_id,
                            amount,
                            ledger_transaction_id: payment.ledger_transaction_id,
                        })
                    })
                    .collect();
                self.insert_allocation_rows(&allocations, now).await?;
                return self.record_intent_payments(paid_intents).await;
            }
        };
        charges_updated(
            charges,
            payments
                .iter()
                .map(|(_, allocations)| allocations.len())
                .sum(),
        )?;
        all_updated(intents, paid_intents.len(), "intents")
    }

    /// Records that `payment_id` paid these (charge, amount) in ledger transaction
    /// `ledger_transaction_id`, and raises each charge's paid amount.
    pub async fn insert_allocations(
        &mut self,
        payment_id: Uuid,
        allocations: &[(Uuid, i64)],
        ledger_transaction_id: Uuid,
        now: i64,
    ) -> StoreResult<()> {
        let rows: Vec<AllocationRow> = allocations
            .iter()
            .map(|&(charge_id, amount)| AllocationRow {
                payment_id,
                charge_id,
                amount,
                ledger_transaction_id,
            })
            .collect();
        self.insert_allocation_rows(&rows, now).await
    }

    /// The payments' rows, one statement per chunk.
    async fn insert_payment_rows(
        &mut self,
        payments: &[(&NewSchoolPayment, &[(Uuid, i64)])],
        now: i64,
    ) -> StoreResult<()> {
        for chunk in payments.chunks(super::ledger::CHUNK_ROWS / 10) {
            on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(
                    "INSERT INTO school_payments (id, school_id, pupil_id, method, amount, \
                     ledger_transaction_id, bank_transaction_id, receipt_id, cancelled_at, \
                     created_at) ",
                );
                query.push_values(chunk, |mut row, (payment, _)| {
                    row.push_bind(payment.id)
                        .push_bind(payment.school_id)
                        .push_bind(payment.pupil_id)
                        .push_bind(payment.method())
                        .push_bind(payment.amount)
                        .push_bind(payment.ledger_transaction_id)
                        .push_bind(payment.bank_transaction_id)
                        .push_bind(payment.receipt_id)
                        .push("NULL")
                        .push_bind(now);
                });
                query.build().execute(&mut **tx).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    /// The allocation rows, and each charge's paid amount raised: two statements per chunk,
    /// not two per charge (a payment pays several charges, a run several payments).
    async fn insert_allocation_rows(
        &mut self,
        allocations: &[AllocationRow],
        now: i64,
    ) -> StoreResult<()> {
        for chunk in allocations.chunks(super::ledger::CHUNK_ROWS / 6) {
            on_tx!(self, |tx| {
                let mut query = sqlx::QueryBuilder::new(
                    "INSERT INTO school_allocations (id, payment_id, charge_id, amount, \
                     ledger_transaction_id, cancelled_at, created_at) ",
                );
                query.push_values(chunk, |mut row, allocation| {
                    row.push_bind(super::id_at(now))
                        .push_bind(allocation.payment_id)
                        .push_bind(allocation.charge_id)
                        .push_bind(allocation.amount)
                        .push_bind(allocation.ledger_transaction_id)
                        .push("NULL")
                        .push_bind(now);
                });
                query.build().execute(&mut **tx).await.map(|_| ())
            })?;
            let updated = on_tx!(self, |tx| {
                let mut query =
                    sqlx::QueryBuilder::new("UPDATE school_charges SET paid = paid + CASE id");
                chunk.iter().for_each(|allocation| {
                    query
                        .push(" WHEN ")
                        .push_bind(allocation.charge_id)
                        .push(" THEN ")
                        .push_bind(allocation.amount);
                });
                query.push(" END WHERE id IN (");
                let mut list = query.separated(", ");
                chunk.iter().for_each(|allocation| {
                    list.push_bind(allocation.charge_id);
                });
                query.push(")");
                query
                    .build()
                    .execute(&mut **tx)
                    .await
                    .map(|done| done.rows_affected())
            })?;
            charges_updated(updated, chunk.len())?;
        }
        Ok(())
    }

    /// The newest payment of the pupil that still has credit to give, for allocating credit:
    /// the allocation rows name a payment.
    pub async fn latest_payment(&mut self, pupil_id: Uuid) -> StoreResult<Option<Uuid>> {
        let sql = "SELECT id FROM school_payments WHERE pupil_id = $1 AND cancelled_at IS NULL \
                   ORDER BY created_at DESC, id DESC LIMIT 1";
        let found: Option<(Uuid,)> = tx_rows!(self, fetch_optional, sql, pupil_id)?;
        Ok(found.map(|(id,)| id))
    }

    /// Undoes a payment's allocations: each charge it paid owes that part again.
    pub async fn cancel_payment(&mut self, payment_id: Uuid, now: i64) -> StoreResult<()> {
        let sql = "SELECT charge_id, amount FROM school_allocations \
                   WHERE payment_id = $1 AND cancelled_at IS NULL";
        let allocations: Vec<(Uuid, i64)> = tx_rows!(self, fetch_all, sql, payment_id)?;
        for (charge_id, amount) in allocations {
            let sql = "UPDATE school_charges SET paid = paid - $2 WHERE id = $1";
            execute!(self, sql, charge_id, amount)?;
        }
        let sql = "UPDATE school_allocations SET cancelled_at = $2 \
                   WHERE payment_id = $1 AND cancelled_at IS NULL";
        execute!(self, sql, payment_id, now)?;
        let sql = "UPDATE school_payments SET cancelled_at = $2 WHERE id = $1";
        execute!(self, sql, payment_id, now)?;
        Ok(())
    }

    /// (fund, amount) a payment allocated, for undoing its fund postings.
    pub async fn payment_allocations_by_fund(
        &mut self,
        payment_id: Uuid,
    ) -> StoreResult<Vec<(String, i64)>> {
        let sql = "SELECT i.fund, CAST(SUM(a.amount) AS BIGINT) FROM school_allocations a \
                   JOIN school_charges c ON c.id = a.charge_id \
                   JOIN fee_items i ON i.id = c.fee_item_id \
                   WHERE a.payment_id = $1 AND a.cancelled_at IS NULL GROUP BY i.fund \
                   ORDER BY i.fund";
        Ok(tx_rows!(self, fetch_all, sql, payment_id)?)
    }

    /// The next receipt number of the school in the year: the counter row is locked and
    /// bumped in this transaction, so two receipts never share a number and none is skipped.
    pub async fn next_receipt_number(
        &mut self,
        school_id: Uuid,
        year_id: Uuid,
    ) -> StoreResult<i64> {
        let sql = "INSERT INTO school_receipt_counters (school_id, year_id, last_number) \
                   VALUES ($1, $2, 1) ON CONFLICT (school_id, year_id) \
                   DO UPDATE SET last_number = school_receipt_counters.last_number + 1 \
                   RETURNING last_number";
        let (number,): (i64,) = tx_rows!(self, fetch_one, sql, school_id, year_id)?;
        Ok(number)
    }

    pub async fn insert_receipt(&mut self, receipt: &ReceiptRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO school_receipts ({RECEIPT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, NULL)"
        );
        execute!(
            self,
            &sql,
            receipt.id,
            receipt.school_id,
            receipt.year_id,
            receipt.number,
            receipt.pupil_id,
            &receipt.payer_name,
            receipt.amount,
            receipt.payment_id,
            &receipt.created_by,
            receipt.created_at
        )?;
        Ok(())
    }

    pub async fn receipt(&mut self, id: Uuid, lock: bool) -> StoreResult<Option<ReceiptRow>> {
        let sql = format!(
            "SELECT {RECEIPT_COLUMNS} FROM school_receipts WHERE id = $1{}",
            if lock { self.row_lock() } else { "" }
        );
        Ok(tx_rows!(self, fetch_optional, &sql, id)?)
    }

    pub async fn receipts(&mut self, school_id: Uuid) -> StoreResult<Vec<ReceiptRow>> {
        let sql = format!(
            "SELECT {RECEIPT_COLUMNS} FROM school_receipts WHERE school_id = $1 \
             ORDER BY year_id, number"
        );
        Ok(tx_rows!(self, fetch_all, &sql, school_id)?)
    }

    pub async fn mark_receipt_cancelled(
        &mut self,
        id: Uuid,
        (by, reason): (&str, &str),
        cancel_transaction_id: Uuid,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "UPDATE school_receipts SET cancelled_at = $2, cancelled_by = $3, \
                   cancel_reason = $4, cancel_transaction_id = $5 WHERE id = $1";
        execute!(self, sql, id, now, by, reason, cancel_transaction_id)?;
        Ok(())
    }

    pub async fn payment(&mut self, id: Uuid) -> StoreResult<Option<PaymentRow>> {
        let sql = "SELECT id, pupil_id, method, amount, ledger_transaction_id, receipt_id, \
                   cancelled_at, created_at FROM school_payments WHERE id = $1";
        Ok(tx_rows!(self, fetch_optional, sql, id)?)
    }

    pub async fn pupil_payments(&mut self, pupil_id: Uuid) -> StoreResult<Vec<PaymentRow>> {
        let sql = "SELECT id, pupil_id, method, amount, ledger_transaction_id, receipt_id, \
                   cancelled_at, created_at FROM school_payments WHERE pupil_id = $1 \
                   ORDER BY created_at, id";
        Ok(tx_rows!(self, fetch_all, sql, pupil_id)?)
    }

    pub async fn pupil_charges(&mut self, pupil_id: Uuid) -> StoreResult<Vec<ChargeRow>> {
        let sql = format!("SELECT {CHARGE_COLUMNS} WHERE c.pupil_id = $1 ORDER BY r.due_on, c.created_at, i.created_at");
        Ok(tx_rows!(self, fetch_all, &sql, pupil_id)?)
    }

    pub async fn run_charges(&mut self, run_id: Uuid) -> StoreResult<Vec<ChargeRow>> {
        let sql = format!(
            "SELECT {CHARGE_COLUMNS} WHERE c.run_id = $1 ORDER BY c.pupil_id, i.created_at"
        );
        Ok(tx_rows!(self, fetch_all, &sql, run_id)?)
    }

    /// Each pupil's charged and paid totals in a run, optionally of one class, by class and
    /// code.
    pub async fn run_totals(
        &mut self,
        run_id: Uuid,
        class_id: Option<Uuid>,
    ) -> StoreResult<Vec<PupilRunTotals>> {
        let sql = "SELECT p.id AS pupil_id, p.code, p.full_name, c.class_id, \
                   CAST(SUM(CASE WHEN c.reversed_at IS NULL THEN c.amount ELSE 0 END) AS BIGINT) \
                   AS charged, CAST(SUM(c.paid) AS BIGINT) AS paid, \
                   CAST(MIN(CASE WHEN c.reversed_at IS NULL THEN 0 ELSE 1 END) AS BIGINT) = 1 \
                   AS reversed FROM school_charges c JOIN pupils p ON p.id = c.pupil_id \
                   WHERE c.run_id = $1 AND ($2 IS NULL OR c.class_id = $2) \
                   GROUP BY p.id, p.code, p.full_name, c.class_id ORDER BY c.class_id, p.code";
        Ok(tx_rows!(self, fetch_all, sql, run_id, class_id)?)
    }

    pub async fn insert_parent_link(
        &mut self,
        id: Uuid,
        (school_id, pupil_id): (Uuid, Uuid),
        token_hash: &str,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO school_parent_links (id, school_id, pupil_id, token_hash, \
                   created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL)";
        execute!(self, sql, id, school_id, pupil_id, token_hash, now)?;
        Ok(())
    }

    /// The pupil a link in force names.
    pub async fn parent_link_pupil(&mut self, token_hash: &str) -> StoreResult<Option<Uuid>> {
        let sql = "SELECT pupil_id FROM school_parent_links \
                   WHERE token_hash = $1 AND revoked_at IS NULL";
        let found: Option<(Uuid,)> = tx_rows!(self, fetch_optional, sql, token_hash)?;
        Ok(found.map(|(id,)| id))
    }

    /// Debits minus credits of the account with this code; 0 when it does not exist yet.
    pub async fn debit_balance_of_code(&mut self, code: &str) -> StoreResult<i64> {
        let sql = "SELECT debits_posted, credits_posted FROM accounts WHERE code = $1";
        let found: Option<(i64, i64)> = tx_rows!(self, fetch_optional, sql, code)?;
        Ok(found.map_or(0, |(debits, credits)| debits - credits))
    }

    /// The account's balance as debits minus credits.
    pub async fn debit_balance(&mut self, account_id: Uuid) -> StoreResult<i64> {
        let sql = "SELECT debits_posted, credits_posted FROM accounts WHERE id = $1";
        let (debits, credits): (i64, i64) = tx_rows!(self, fetch_one, sql, account_id)?;
        Ok(debits - credits)
    }
}

#[derive(sqlx::FromRow)]
struct RunPupilRow {
    id: Uuid,
    school_id: Uuid,
    code: String,
    full_name: String,
    household_id: Option<Uuid>,
    guardian_name: Option<String>,
    guardian_phone: Option<String>,
    receivable_account_id: Uuid,
    class_id: Uuid,
    grade: i32,
}
