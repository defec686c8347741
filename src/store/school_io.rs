//! Reads for the school's exports and the record of reminders sent. Plain SQL, the same on
//! both backends; what goes in a file or a message is the services' (`services::schools`).

use chrono::NaiveDate;
use uuid::Uuid;

use super::{StoreResult, UnitOfWork};

/// What one pupil paid towards a run's charges of one class by one method (`online` or `cash`), counting
/// only allocations still in force (a cancelled receipt's are not).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaidByMethod {
    pub pupil_id: Uuid,
    /// The class the charges paid were posted for.
    pub class_id: Uuid,
    pub method: String,
    pub amount: i64,
}

/// An unpaid charge of a run, with its pupil, class, item and the pupil's QR for the run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenChargeForReminder {
    pub charge_id: Uuid,
    pub pupil_id: Uuid,
    pub code: String,
    pub full_name: String,
    pub household_id: Option<Uuid>,
    pub guardian_name: Option<String>,
    pub guardian_phone: Option<String>,
    pub class_name: String,
    pub item_name: String,
    pub owed: i64,
    pub reference: Option<String>,
    pub qr_payload: Option<String>,
    pub bank_bin: Option<String>,
    pub account_number: Option<String>,
}

/// A charge claimed for a reminder on a day.
#[derive(Debug, Clone)]
pub struct ReminderClaim<'a> {
    pub charge_id: Uuid,
    pub day: NaiveDate,
    pub school_id: Uuid,
    pub notifier: &'a str,
    pub claimed_by: &'a str,
    pub now: i64,
}

impl UnitOfWork<'_> {
    /// The run's standing charges not fully paid (of one class, when given), by pupil code and
    /// item.
    pub async fn open_run_charges(
        &mut self,
        run_id: Uuid,
        class_id: Option<Uuid>,
    ) -> StoreResult<Vec<OpenChargeForReminder>> {
        let sql = "SELECT c.id AS charge_id, c.pupil_id, p.code, p.full_name, p.household_id, \
                   p.guardian_name, p.guardian_phone, cl.name AS class_name, \
                   i.name AS item_name, c.amount - c.paid AS owed, pi.reference, pi.qr_payload, \
                   ca.bank_bin, ca.account_number \
                   FROM school_charges c JOIN pupils p ON p.id = c.pupil_id \
                   JOIN school_classes cl ON cl.id = c.class_id \
                   JOIN fee_items i ON i.id = c.fee_item_id \
                   LEFT JOIN school_run_intents ri \
                   ON ri.run_id = c.run_id AND ri.pupil_id = c.pupil_id \
                   LEFT JOIN payment_intents pi ON pi.id = ri.intent_id \
                   LEFT JOIN collection_accounts ca ON ca.id = pi.collection_account_id \
                   WHERE c.run_id = $1 AND ($2 IS NULL OR c.class_id = $2) AND c.reversed_at IS NULL \
                   AND c.paid < c.amount \
                   ORDER BY p.code, i.created_at, i.id";
        Ok(tx_rows!(self, fetch_all, sql, run_id, class_id)?)
    }

    /// The run's charges already claimed for a reminder on `day` (being sent or sent).
    pub async fn reminded_charges(
        &mut self,
        run_id: Uuid,
        day: NaiveDate,
    ) -> StoreResult<Vec<Uuid>> {
        let sql = "SELECT r.charge_id FROM school_reminders r \
                   JOIN school_charges c ON c.id = r.charge_id \
                   WHERE c.run_id = $1 AND r.sent_on = $2";
        let rows: Vec<(Uuid,)> = tx_rows!(self, fetch_all, sql, run_id, day)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Claims a charge for a reminder on the claim's day; false when it is already claimed
    /// (reminded that day, or being reminded by a concurrent send).
    pub async fn claim_reminder(&mut self, claim: &ReminderClaim<'_>) -> StoreResult<bool> {
        let sql = "INSERT INTO school_reminders (charge_id, sent_on, school_id, message_id, \
                   notifier, state, claimed_by, claimed_at, sent_at) \
                   VALUES ($1, $2, $3, '', $4, 'sending', $5, $6, NULL) \
                   ON CONFLICT (charge_id, sent_on) DO NOTHING";
        let inserted = execute!(
            self,
            sql,
            claim.charge_id,
            claim.day,
            claim.school_id,
            claim.notifier,
            claim.claimed_by,
            claim.now
        )?;
        Ok(inserted == 1)
    }

    /// Names the message that carries the claimed charges.
    pub async fn label_reminders(
        &mut self,
        charge_ids: &[Uuid],
        day: NaiveDate,
        message_id: &str,
    ) -> StoreResult<()> {
        for charge_id in charge_ids {
            let sql = "UPDATE school_reminders SET message_id = $3 \
                       WHERE charge_id = $1 AND sent_on = $2";
            execute!(self, sql, *charge_id, day, message_id)?;
        }
        Ok(())
    }

    /// The claimed charges were given to the notifier.
    pub async fn mark_reminder_sent(
        &mut self,
        charge_ids: &[Uuid],
        day: NaiveDate,
        now: i64,
    ) -> StoreResult<()> {
        for charge_id in charge_ids {
            let sql = "UPDATE school_reminders SET state = 'sent', sent_at = $3 \
                       WHERE charge_id = $1 AND sent_on = $2 AND state = 'sending'";
            execute!(self, sql, *charge_id, day, now)?;
        }
        Ok(())
    }

    /// The notifier failed: the claims are given up, so a later send the same day tries again.
    pub async fn release_reminder(
        &mut self,
        charge_ids: &[Uuid],
        day: NaiveDate,
    ) -> StoreResult<()> {
        for charge_id in charge_ids {
            let sql = "DELETE FROM school_reminders \
                       WHERE charge_id = $1 AND sent_on = $2 AND state = 'sending'";
            execute!(self, sql, *charge_id, day)?;
        }
        Ok(())
    }

    pub async fn run_paid_by_method(&mut self, run_id: Uuid) -> StoreResult<Vec<PaidByMethod>> {
        let sql =
            "SELECT c.pupil_id, c.class_id, p.method, CAST(SUM(a.amount) AS BIGINT) AS amount \
                   FROM school_allocations a JOIN school_charges c ON c.id = a.charge_id \
                   JOIN school_payments p ON p.id = a.payment_id \
                   WHERE c.run_id = $1 AND a.cancelled_at IS NULL \
                   GROUP BY c.pupil_id, c.class_id, p.method";
        Ok(tx_rows!(self, fetch_all, sql, run_id)?)
    }
}
