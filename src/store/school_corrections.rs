//! Corrections of posted school runs (reversals, adjustments), refunds of a pupil's credit,
//! the pupils' QR codes a correction replaces, and household parent links. Plain reads and
//! writes in a use case's unit of work; the decisions are `services::schools::corrections`'.

use uuid::Uuid;

use super::unit_of_work::Conn;
use super::{StoreResult, UnitOfWork};

/// Whose run QR codes [`UnitOfWork::lock_open_run_intents`] locks.
#[derive(Debug, Clone)]
pub enum RunIntentsOf {
    /// Pupils, as (school id, pupil id).
    Pupils(Vec<(Uuid, Uuid)>),
    Run {
        school_id: Uuid,
        run_id: Uuid,
    },
}

/// A parent's read-only link: to one pupil, or to a household's pupils at one school.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Pupil,
    Household,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Pupil => "pupil",
            LinkKind::Household => "household",
        }
    }

    fn table(self) -> &'static str {
        match self {
            LinkKind::Pupil => "school_parent_links",
            LinkKind::Household => "school_household_links",
        }
    }
}

/// A charge as a correction needs it, with its fund and its run's school.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CorrectableCharge {
    pub id: Uuid,
    pub run_id: Uuid,
    pub school_id: Uuid,
    pub pupil_id: Uuid,
    pub fee_item_id: Uuid,
    pub fund: String,
    pub amount: i64,
    pub paid: i64,
    pub reversed_at: Option<i64>,
}

/// A correction as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CorrectionRow {
    pub id: Uuid,
    pub school_id: Uuid,
    pub kind: String,
    pub run_id: Option<Uuid>,
    pub pupil_id: Option<Uuid>,
    pub charge_id: Option<Uuid>,
    pub fee_item_id: Option<Uuid>,
    pub amount: i64,
    pub method: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub ledger_transaction_id: Option<Uuid>,
    pub created_at: i64,
}

/// A pupil's QR for a run, with what it asks and what it got.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunIntentRow {
    pub intent_id: Uuid,
    pub amount: i64,
    pub paid_amount: i64,
    pub status: String,
    pub expires_at: i64,
}

const CHARGE_COLUMNS: &str = "c.id, c.run_id, r.school_id, c.pupil_id, c.fee_item_id, i.fund, \
     c.amount, c.paid, c.reversed_at FROM school_charges c \
     JOIN collection_runs r ON r.id = c.run_id JOIN fee_items i ON i.id = c.fee_item_id";

const CORRECTION_COLUMNS: &str = "k.id, k.school_id, k.kind, k.run_id, k.pupil_id, \
     k.charge_id, c.fee_item_id, k.amount, k.method, k.reason, k.created_by, \
     k.ledger_transaction_id, k.created_at \
     FROM school_corrections k LEFT JOIN school_charges c ON c.id = k.charge_id";

impl UnitOfWork<'_> {
    /// The pupil's charges in the run that stand (not reversed), locked, in id order.
    pub async fn lock_standing_charges(
        &mut self,
        run_id: Uuid,
        pupil_id: Uuid,
    ) -> StoreResult<Vec<CorrectableCharge>> {
        let sql = format!(
            "SELECT {CHARGE_COLUMNS} WHERE c.run_id = $1 AND c.pupil_id = $2 \
             AND c.reversed_at IS NULL ORDER BY c.id{}",
            self.row_lock()
        );
        Ok(tx_rows!(self, fetch_all, &sql, run_id, pupil_id)?)
    }

    /// The charge of the pupil for the item in the run, locked.
    pub async fn lock_charge_of(
        &mut self,
        run_id: Uuid,
        pupil_id: Uuid,
        fee_item_id: Uuid,
    ) -> StoreResult<Option<CorrectableCharge>> {
        let sql = format!(
            "SELECT {CHARGE_COLUMNS} WHERE c.run_id = $1 AND c.pupil_id = $2 \
             AND c.fee_item_id = $3{}",
            self.row_lock()
        );
        Ok(tx_rows!(
            self,
            fetch_optional,
            &sql,
            run_id,
            pupil_id,
            fee_item_id
        )?)
    }

    /// The pupils with a charge still standing in the run, in id order.
    pub async fn run_standing_pupils(&mut self, run_id: Uuid) -> StoreResult<Vec<Uuid>> {
        let sql = "SELECT DISTINCT pupil_id FROM school_charges \
                   WHERE run_id = $1 AND reversed_at IS NULL ORDER BY pupil_id";
        let rows: Vec<(Uuid,)> = tx_rows!(self, fetch_all, sql, run_id)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Takes back the allocations that paid the charge beyond `keep` đồng, newest first (a
    /// partly kept one is cancelled and written again for the part kept), and sets what the
    /// charge has been paid to what is kept. The money taken back is the pupil's credit again.
    pub async fn release_allocations(
        &mut self,
        charge_id: Uuid,
        keep: i64,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "SELECT id, payment_id, amount, ledger_transaction_id FROM school_allocations \
                   WHERE charge_id = $1 AND cancelled_at IS NULL ORDER BY created_at, id";
        let allocations: Vec<(Uuid, Uuid, i64, Uuid)> = tx_rows!(self, fetch_all, sql, charge_id)?;
        let mut kept = 0;
        for (id, payment_id, amount, ledger_transaction_id) in allocations {
            let stays = amount.min(keep - kept).max(0);
            kept += stays;
            if stays == amount {
                continue;
            }
            let sql = "UPDATE school_allocations SET cancelled_at = $2 WHERE id = $1";
            execute!(self, sql, id, now)?;
            if stays > 0 {
                let sql = "INSERT INTO school_allocations (id, payment_id, charge_id, amount, \
                           ledger_transaction_id, cancelled_at, created_at) \
                           VALUES ($1, $2, $3, $4, $5, NULL, $6)";
                execute!(
                    self,
                    sql,
                    super::id_at(now),
                    payment_id,
                    charge_id,
                    stays,
                    ledger_transaction_id,
                    now
                )?;
            }
        }
        let sql = "UPDATE school_charges SET paid = $2 WHERE id = $1";
        execute!(self, sql, charge_id, kept)?;
        Ok(())
    }

    pub async fn mark_charge_reversed(&mut self, charge_id: Uuid, now: i64) -> StoreResult<()> {
        let sql = "UPDATE school_charges SET reversed_at = $2 WHERE id = $1";
        execute!(self, sql, charge_id, now)?;
        Ok(())
    }

    pub async fn mark_run_reversed(&mut self, run_id: Uuid, now: i64) -> StoreResult<()> {
        let sql = "UPDATE collection_runs SET reversed_at = $2 WHERE id = $1";
        execute!(self, sql, run_id, now)?;
        Ok(())
    }

    /// Changes what the charge owes by `delta` đồng (its adjustment is a correction row).
    pub async fn adjust_charge_amount(&mut self, charge_id: Uuid, delta: i64) -> StoreResult<()> {
        let sql = "UPDATE school_charges SET amount = amount + $2 WHERE id = $1";
        execute!(self, sql, charge_id, delta)?;
        Ok(())
    }

    pub async fn insert_correction(&mut self, row: &CorrectionRow) -> StoreResult<()> {
        let sql = "INSERT INTO school_corrections (id, school_id, kind, run_id, pupil_id, \
                   charge_id, amount, method, reason, created_by, ledger_transaction_id, \
                   created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        execute!(
            self,
            sql,
            row.id,
            row.school_id,
            &row.kind,
            row.run_id,
            row.pupil_id,
            row.charge_id,
            row.amount,
            row.method.as_deref(),
            &row.reason,
            &row.created_by,
            row.ledger_transaction_id,
            row.created_at
        )?;
        Ok(())
    }

    /// The pupil's corrections, oldest first.
    pub async fn pupil_corrections(&mut self, pupil_id: Uuid) -> StoreResult<Vec<CorrectionRow>> {
        let sql = format!(
            "SELECT {CORRECTION_COLUMNS} WHERE k.pupil_id = $1 ORDER BY k.created_at, k.id"
        );
        Ok(tx_rows!(self, fetch_all, &sql, pupil_id)?)
    }

    /// What the pupil's standing charges in the run still owe.
    pub async fn run_outstanding(&mut self, run_id: Uuid, pupil_id: Uuid) -> StoreResult<i64> {
        let sql = "SELECT CAST(COALESCE(SUM(amount - paid), 0) AS BIGINT) FROM school_charges \
                   WHERE run_id = $1 AND pupil_id = $2 AND reversed_at IS NULL";
        let (owing,): (i64,) = tx_rows!(self, fetch_one, sql, run_id, pupil_id)?;
        Ok(owing)
    }

    /// The pupil's current QR for the run, if the run gave one.
    pub async fn run_intent(
        &mut self,
        run_id: Uuid,
        pupil_id: Uuid,
    ) -> StoreResult<Option<RunIntentRow>> {
        let sql = "SELECT i.id AS intent_id, i.amount, i.paid_amount, i.status, i.expires_at \
                   FROM school_run_intents s JOIN payment_intents i ON i.id = s.intent_id \
                   WHERE s.run_id = $1 AND s.pupil_id = $2";
        Ok(tx_rows!(self, fetch_optional, sql, run_id, pupil_id)?)
    }

    /// Locks (in id order) the run QR codes of some pupils, or of a run, that a school still
    /// takes payment on (for pupils: those not expired at `now`, the ones a payment from
    /// elsewhere renews; for a run: all open ones, which its reversal closes). The bank feed
    /// locks the intents a memo names before it takes the school's turn, so a use case that
    /// will update some of them locks them before the turn too, or the two would wait on each
    /// other. Only the named school's codes: a pupil id of another school locks nothing.
    /// No-op on SQLite (one writer at a time).
    pub async fn lock_open_run_intents(&mut self, of: &RunIntentsOf, now: i64) -> StoreResult<()> {
        let Conn::Postgres(_, tx) = &mut self.conn else {
            return Ok(());
        };
        let query = match of {
            RunIntentsOf::Pupils(pupils) => sqlx::query(
                "SELECT i.id FROM UNNEST($1::uuid[], $2::uuid[]) AS w(school_id, pupil_id) \
                 JOIN school_run_intents s ON s.pupil_id = w.pupil_id \
                 JOIN payment_intents i ON i.id = s.intent_id AND i.payee_id = w.school_id \
                 WHERE i.status IN ('pending', 'partially_paid') AND i.expires_at > $3 \
                 ORDER BY i.id FOR UPDATE OF i",
            )
            .bind(pupils.iter().map(|(school, _)| *school).collect::<Vec<_>>())
            .bind(pupils.iter().map(|(_, pupil)| *pupil).collect::<Vec<_>>())
            .bind(now),
            RunIntentsOf::Run { school_id, run_id } => sqlx::query(
                "SELECT i.id FROM school_run_intents s \
                 JOIN payment_intents i ON i.id = s.intent_id \
                 WHERE s.run_id = $1 AND i.payee_id = $2 \
                 AND i.status IN ('pending', 'partially_paid') \
                 ORDER BY i.id FOR UPDATE OF i",
            )
            .bind(*run_id)
            .bind(*school_id),
        };
        query.fetch_all(&mut **tx).await?;
        Ok(())
    }

    /// The runs in which the pupil has a QR that still takes payment at `now`.
    pub async fn runs_with_open_intent(
        &mut self,
        pupil_id: Uuid,
        now: i64,
    ) -> StoreResult<Vec<Uuid>> {
        let sql = "SELECT s.run_id FROM school_run_intents s \
                   JOIN payment_intents i ON i.id = s.intent_id \
                   WHERE s.pupil_id = $1 AND i.status IN ('pending', 'partially_paid') \
                   AND i.expires_at > $2 ORDER BY s.run_id";
        let rows: Vec<(Uuid,)> = tx_rows!(self, fetch_all, sql, pupil_id, now)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Closes an intent that still takes payment: it asks for nothing more. Money sent to it
    /// later is still credited to the payee (and, for a pupil's QR, to the pupil).
    pub async fn close_intent(&mut self, intent_id: Uuid, now: i64) -> StoreResult<()> {
        let sql = "UPDATE payment_intents SET status = 'cancelled', cancelled_at = $2 \
                   WHERE id = $1 AND status IN ('pending', 'partially_paid')";
        execute!(self, sql, intent_id, now)?;
        Ok(())
    }

    /// The run's QR for the pupil is now `new_intent_id`; the old one is kept as superseded.
    pub async fn supersede_run_intent(
        &mut self,
        run_id: Uuid,
        pupil_id: Uuid,
        new_intent_id: Uuid,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO school_superseded_intents (intent_id, run_id, pupil_id, \
                   superseded_at) SELECT intent_id, run_id, pupil_id, $3 \
                   FROM school_run_intents WHERE run_id = $1 AND pupil_id = $2";
        execute!(self, sql, run_id, pupil_id, now)?;
        let sql = "UPDATE school_run_intents SET intent_id = $3 \
                   WHERE run_id = $1 AND pupil_id = $2";
        if execute!(self, sql, run_id, pupil_id, new_intent_id)? == 0 {
            self.insert_run_intent(run_id, pupil_id, new_intent_id)
                .await?;
        }
        Ok(())
    }

    pub async fn insert_household_link(
        &mut self,
        id: Uuid,
        (school_id, household_id): (Uuid, Uuid),
        token_hash: &str,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO school_household_links (id, school_id, household_id, \
                   token_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL)";
        execute!(self, sql, id, school_id, household_id, token_hash, now)?;
        Ok(())
    }

    /// Revokes the school's link of this kind; false when it has no such link in force.
    pub async fn revoke_link(
        &mut self,
        kind: LinkKind,
        school_id: Uuid,
        id: Uuid,
        now: i64,
    ) -> StoreResult<bool> {
        let sql = format!(
            "UPDATE {} SET revoked_at = $3 \
             WHERE id = $1 AND school_id = $2 AND revoked_at IS NULL",
            kind.table()
        );
        Ok(execute!(self, &sql, id, school_id, now)? == 1)
    }

    /// (school, household) of a household link in force.
    pub async fn household_link(&mut self, token_hash: &str) -> StoreResult<Option<(Uuid, Uuid)>> {
        let sql = "SELECT school_id, household_id FROM school_household_links \
                   WHERE token_hash = $1 AND revoked_at IS NULL";
        Ok(tx_rows!(self, fetch_optional, sql, token_hash)?)
    }

    /// Whether a pupil of the school names the household.
    pub async fn school_has_household(
        &mut self,
        school_id: Uuid,
        household_id: Uuid,
    ) -> StoreResult<bool> {
        let sql = "SELECT COUNT(*) FROM pupils WHERE school_id = $1 AND household_id = $2";
        let (count,): (i64,) = tx_rows!(self, fetch_one, sql, school_id, household_id)?;
        Ok(count > 0)
    }
}
