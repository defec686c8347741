//! Corrections of a posted run, which is never edited: a reversal (the whole run, or one
//! pupil's charges in it) or an adjustment (one charge up or down by a signed amount) is a new
//! ledger transaction, a correction row with its reason and who made it, and an audit record,
//! in one database transaction. Also: refunds of a pupil's credit, the pupil's QR for a run
//! kept asking for what the run still owes, and household parent links.
//!
//! What each correction books, for a school with payee code `C`:
//! - reversal of a pupil's charges in a run (C đồng charged, P of it paid, per fund):
//!   debit `uncollected` C − P and each charge's fund its part of P, credit the pupil's
//!   receivable C. The charges owe nothing; the P đồng paid on them are the pupil's credit.
//! - adjustment by +d: debit the pupil's receivable d, credit `uncollected` d (then the pupil's
//!   credit, if any, pays it as a run's posting does).
//! - adjustment by −d on a charge paid P of its amount A: the charge owes A − d; what was paid
//!   beyond that, R = max(0, P − (A − d)), is credit again: debit `uncollected` d − R and the
//!   charge's fund R, credit the pupil's receivable d.
//! - refund of credit: debit the pupil's receivable, credit `school:C:cash` (paid at the desk)
//!   or the school's payee account `payee:C` (a bank transfer; the bank feed's outgoing
//!   transfer then pays it out of that account, as a payout).

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::models::{HouseholdQrView, ParentOpenCharge, RunView};
use super::{
    again_after_deadlock, hold_open_run_intents, insert_school_intent, post_school_transaction,
    run_view, serialize_school, settle_pupil, text, token_hash, SchoolAccounts, SchoolError,
    SchoolService, MAX_AMOUNT, SCHOOL_USER_ID,
};
use crate::clock::{to_rfc3339, Clock};
use crate::domain::audit::AuditAction;
use crate::domain::payee::Payee;
use crate::domain::schools::Fund;
use crate::services::auth::Caller;
use crate::services::ledger::Reply;
use crate::store::school_corrections::{CorrectionRow, LinkKind, RunIntentsOf};
use crate::store::schools::{PupilRow, RunRow};
use crate::store::{IdempotencyClaim, StoreError, StoredResponse, UnitOfWork};

const REASON_MAX_CHARS: usize = 500;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseRunRequest {
    /// Only this pupil's charges in the run (a pupil charged by mistake); the whole run when
    /// left out.
    pub pupil_id: Option<Uuid>,
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunReversalView {
    pub run: RunView,
    pub pupil_id: Option<Uuid>,
    /// Pupils whose charges this request reversed.
    pub pupils_reversed: usize,
    pub charges_reversed: usize,
    /// What the reversed charges had asked for, in đồng.
    pub amount_reversed: i64,
    /// What had been paid on them: now the pupils' credit.
    pub credited: i64,
    /// Nothing was left to reverse: an earlier reversal did it (and this one changed nothing).
    pub already_reversed: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    pub run_id: Uuid,
    pub pupil_id: Uuid,
    pub fee_item_id: Uuid,
    /// Signed đồng: more (positive) or less (negative) than the charge asks now.
    pub amount: i64,
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AdjustmentView {
    pub id: Uuid,
    pub run_id: Uuid,
    pub pupil_id: Uuid,
    pub fee_item_id: Uuid,
    pub amount: i64,
    /// What the charge asks now.
    pub charge_amount: i64,
    /// What the pupil's charges in the run still owe.
    pub run_owing: i64,
    /// The pupil's QR for the run, asking for `run_owing`; none when nothing is owed.
    pub intent_id: Option<Uuid>,
    pub ledger_transaction_id: Uuid,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub pupil_id: Uuid,
    pub amount: i64,
    /// `cash` (paid at the desk) or `bank_transfer`
    pub method: String,
    /// Why, and for a bank transfer the bank's reference.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    pub id: Uuid,
    pub pupil_id: Uuid,
    pub amount: i64,
    pub method: String,
    pub reason: String,
    /// The pupil's credit after the refund.
    pub credit_left: i64,
    pub ledger_transaction_id: Uuid,
}

/// A correction as a pupil's statement lists it, each its own line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CorrectionView {
    pub id: Uuid,
    /// `run_reversal`, `pupil_reversal`, `adjustment` or `refund`
    pub kind: String,
    pub run_id: Option<Uuid>,
    pub fee_item_id: Option<Uuid>,
    /// đồng: the charges reversed, the adjustment (signed), or the refund.
    pub amount: i64,
    /// A refund's `cash` or `bank_transfer`.
    pub method: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub at: String,
    pub ledger_transaction_id: Option<Uuid>,
}

pub(super) fn correction_view(row: CorrectionRow) -> CorrectionView {
    CorrectionView {
        id: row.id,
        kind: row.kind,
        run_id: row.run_id,
        fee_item_id: row.fee_item_id,
        amount: row.amount,
        method: row.method,
        reason: row.reason,
        created_by: row.created_by,
        at: to_rfc3339(row.created_at),
        ledger_transaction_id: row.ledger_transaction_id,
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHouseholdLinkRequest {
    /// A registry household that one of the school's pupils names.
    pub household_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HouseholdLinkView {
    pub id: Uuid,
    pub household_id: Uuid,
    /// Shown once: only its hash is kept. The parents' read-only page is
    /// /v1/household-links/{token}.
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HouseholdPupilCharges {
    pub pupil_name: String,
    pub open_charges: Vec<ParentOpenCharge>,
    pub owing: i64,
    pub credit: i64,
}

/// What a household link shows: the open charges of the household's pupils at the school
/// that made the link (never another school's), and the household's QR if one is open.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HouseholdParentView {
    pub school_name: String,
    pub pupils: Vec<HouseholdPupilCharges>,
    pub owing_total: i64,
    pub household_payment: Option<HouseholdQrView>,
}

/// One pupil's reversal in a run: what it took back.
#[derive(Default)]
struct PupilReversal {
    charges: usize,
    amount: i64,
    credited: i64,
}

/// The text of a pupil's QR for a run.
pub(super) fn pupil_intent_description(run: &RunRow, pupil: &PupilRow) -> String {
    format!("{} – {} ({})", run.name, pupil.full_name, pupil.code)
}

/// Makes the pupil's QR for the run ask for what the run's charges still owe: an open QR that
/// already does is kept; otherwise it is closed and, if anything is owed, replaced by a new
/// one (a QR's amount is in its code, so an intent is never changed). Money still sent to a
/// closed one is the pupil's (see `intent_pupil`). Returns the QR in force.
pub(super) async fn refresh_run_intent(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    (school, run, pupil): (&Payee, &RunRow, &PupilRow),
    created_by: Uuid,
) -> Result<Option<Uuid>, SchoolError> {
    let now = clock.now_micros();
    let owing = unit.run_outstanding(run.id, pupil.id).await?;
    let open = unit.run_intent(run.id, pupil.id).await?.filter(|intent| {
        matches!(intent.status.as_str(), "pending" | "partially_paid") && intent.expires_at > now
    });
    if let Some(intent) = &open {
        if intent.amount - intent.paid_amount == owing {
            return Ok(Some(intent.intent_id));
        }
        unit.close_intent(intent.intent_id, now).await?;
    }
    if owing == 0 {
        return Ok(None);
    }
    let description = pupil_intent_description(run, pupil);
    let intent = insert_school_intent(
        unit,
        clock,
        school,
        (owing, &description),
        created_by,
        pupil.household_id,
    )
    .await?;
    unit.supersede_run_intent(run.id, pupil.id, intent.id, now)
        .await?;
    Ok(Some(intent.id))
}

/// After money settled a pupil's charges from elsewhere (a household QR), each of the
/// pupil's QR codes still open is made to ask for what its run still owes.
pub(super) async fn refresh_open_run_intents(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    pupil: &PupilRow,
) -> Result<(), SchoolError> {
    let runs = unit
        .runs_with_open_intent(pupil.id, clock.now_micros())
        .await?;
    if runs.is_empty() {
        return Ok(());
    }
    let school = unit
        .payee_in_unit(pupil.school_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("pupil {} has no school", pupil.id)))?;
    for run_id in runs {
        let run = unit
            .run(run_id, false)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("run {run_id} vanished")))?;
        refresh_run_intent(unit, clock, (&school, &run, pupil), SCHOOL_USER_ID).await?;
    }
    Ok(())
}

/// Reverses the pupil's standing charges in the run (see the module's bookings), closes the
/// pupil's QR for it, and records the correction.
async fn reverse_pupil(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    (accounts, run, pupil): (&SchoolAccounts, &RunRow, &PupilRow),
    (reason, by): (&str, &str),
) -> Result<PupilReversal, SchoolError> {
    let now = clock.now_micros();
    let charges = unit.lock_standing_charges(run.id, pupil.id).await?;
    if charges.is_empty() {
        return Ok(PupilReversal::default());
    }
    let amount: i64 = charges.iter().map(|c| c.amount).sum();
    let credited: i64 = charges.iter().map(|c| c.paid).sum();
    let mut legs = vec![(
        accounts.uncollected,
        pupil.receivable_account_id,
        amount - credited,
    )];
    for fund in Fund::ALL {
        let paid: i64 = charges
            .iter()
            .filter(|c| c.fund == fund.as_str())
            .map(|c| c.paid)
            .sum();
        legs.push((accounts.fund(fund), pupil.receivable_account_id, paid));
    }
    assert_eq!(
        legs.iter().map(|(_, _, a)| a).sum::<i64>(),
        amount,
        "a reversal takes back exactly what the charges asked"
    );
    let transaction_id = clock.new_id();
    let description = format!(
        "Đảo khoản thu {} của học sinh {}: {reason}",
        run.name, pupil.code
    );
    post_school_transaction(unit, transaction_id, &description, &legs, now, true).await?;
    for charge in &charges {
        unit.release_allocations(charge.id, 0, now).await?;
        unit.mark_charge_reversed(charge.id, now).await?;
    }
    if let Some(intent) = unit.run_intent(run.id, pupil.id).await? {
        unit.close_intent(intent.intent_id, now).await?;
    }
    unit.insert_correction(&CorrectionRow {
        id: clock.new_id(),
        school_id: run.school_id,
        kind: "pupil_reversal".into(),
        run_id: Some(run.id),
        pupil_id: Some(pupil.id),
        charge_id: None,
        fee_item_id: None,
        amount,
        method: None,
        reason: reason.to_owned(),
        created_by: by.to_owned(),
        ledger_transaction_id: Some(transaction_id),
        created_at: now,
    })
    .await?;
    Ok(PupilReversal {
        charges: charges.len(),
        amount,
        credited,
    })
}

impl SchoolService {
    /// The school (when the caller may act for it) and a unit of work that holds the claimed
    /// key, the open QR codes the correction may close or renew (`qrs`, locked before the
    /// turn as the bank feed locks them) and the school's turn for moving money; or the answer
    /// an earlier request with the key was given.
    async fn begin_correction(
        &self,
        caller: &Caller,
        claim: &IdempotencyClaim,
        school_id: Uuid,
        qrs: Option<RunIntentsOf>,
    ) -> Result<Result<(Payee, UnitOfWork<'_>), Reply>, SchoolError> {
        let school = self.school(caller, school_id).await?;
        if let Some(reply) = crate::services::earlier_answer(self.store.as_ref(), claim).await? {
            return Ok(Err(reply));
        }
        let mut unit = self.store.begin().await?;
        if let Some(earlier) = unit.claim_key(claim, None, self.clock.now_micros()).await? {
            unit.rollback().await?;
            return Ok(Err(Reply::replay(earlier?)));
        }
        if let Some(qrs) = qrs {
            hold_open_run_intents(&mut unit, qrs, self.clock.now_micros()).await?;
        }
        serialize_school(&mut unit, school_id).await?;
        Ok(Ok((school, unit)))
    }

    /// The school's run, locked, when it is posted.
    async fn posted_run_row(
        unit: &mut UnitOfWork<'_>,
        school_id: Uuid,
        run_id: Uuid,
    ) -> Result<RunRow, SchoolError> {
        let run = Self::run_of(unit, school_id, run_id, true).await?;
        if run.posted_at.is_none() {
            return Err(SchoolError::RunNotPosted);
        }
        Ok(run)
    }

    /// Keeps `view` as the key's answer and commits.
    async fn answer_and_commit(
        mut unit: UnitOfWork<'_>,
        claim: &IdempotencyClaim,
        status: u16,
        view: &impl Serialize,
    ) -> Result<Reply, SchoolError> {
        let response = StoredResponse {
            status,
            body: serde_json::to_string(view).expect("views serialize"),
        };
        unit.store_key_response(claim, &response).await?;
        unit.commit().await?;
        Ok(Reply {
            status: response.status,
            body: response.body,
            replayed: false,
        })
    }

    /// Reverses a posted run, whole or one pupil's charges in it. Reversing what is already
    /// reversed changes nothing and says so.
    pub async fn reverse_run(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        (school_id, run_id): (Uuid, Uuid),
        request: ReverseRunRequest,
    ) -> Result<Reply, SchoolError> {
        again_after_deadlock(|| {
            self.reverse_run_once(caller, claim.clone(), (school_id, run_id), request.clone())
        })
        .await
    }

    /// One attempt of [`Self::reverse_run`].
    async fn reverse_run_once(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        (school_id, run_id): (Uuid, Uuid),
        request: ReverseRunRequest,
    ) -> Result<Reply, SchoolError> {
        let reason = text("reason", &request.reason, REASON_MAX_CHARS)?;
        let qrs = match request.pupil_id {
            Some(pupil_id) => RunIntentsOf::Pupils(vec![(school_id, pupil_id)]),
            None => RunIntentsOf::Run { school_id, run_id },
        };
        let started = self
            .begin_correction(caller, &claim, school_id, Some(qrs))
            .await?;
        let (school, mut unit) = match started {
            Ok(started) => started,
            Err(reply) => return Ok(reply),
        };
        let now = self.clock.now_micros();
        let mut run = Self::posted_run_row(&mut unit, school_id, run_id).await?;
        let accounts = SchoolAccounts::ensure(&mut unit, &school.code, now).await?;
        let pupils = match request.pupil_id {
            Some(pupil_id) => {
                let pupil = Self::pupil_of(&mut unit, school_id, pupil_id).await?;
                if !unit
                    .run_charges(run_id)
                    .await?
                    .iter()
                    .any(|c| c.pupil_id == pupil_id)
                {
                    return Err(SchoolError::NotFound {
                        what: "charge of this pupil in the run",
                        id: pupil_id,
                    });
                }
                vec![pupil]
            }
            None => {
                let mut pupils = Vec::new();
                for pupil_id in unit.run_standing_pupils(run_id).await? {
                    pupils.push(Self::pupil_of(&mut unit, school_id, pupil_id).await?);
                }
                pupils
            }
        };
        let mut view = RunReversalView {
            run: run_view(&run),
            pupil_id: request.pupil_id,
            pupils_reversed: 0,
            charges_reversed: 0,
            amount_reversed: 0,
            credited: 0,
            already_reversed: false,
        };
        let by = caller.username.as_str();
        for pupil in &pupils {
            let done = reverse_pupil(
                &mut unit,
                &self.clock,
                (&accounts, &run, pupil),
                (&reason, by),
            )
            .await?;
            if done.charges > 0 {
                view.pupils_reversed += 1;
            }
            view.charges_reversed += done.charges;
            view.amount_reversed += done.amount;
            view.credited += done.credited;
        }
        let whole_run_now = request.pupil_id.is_none() && run.reversed_at.is_none();
        if whole_run_now {
            unit.mark_run_reversed(run_id, now).await?;
            run.reversed_at = Some(now);
            unit.insert_correction(&CorrectionRow {
                id: self.clock.new_id(),
                school_id,
                kind: "run_reversal".into(),
                run_id: Some(run_id),
                pupil_id: None,
                charge_id: None,
                fee_item_id: None,
                amount: view.amount_reversed,
                method: None,
                reason: reason.clone(),
                created_by: by.to_owned(),
                ledger_transaction_id: None,
                created_at: now,
            })
            .await?;
        }
        view.run = run_view(&run);
        view.already_reversed = view.charges_reversed == 0 && !whole_run_now;
        if !view.already_reversed {
            unit.append_audit(&crate::services::audit_record(
                &self.clock,
                caller,
                AuditAction::SchoolRunReverse,
                run_id,
                Some(json!({ "school_id": school_id, "pupil_id": request.pupil_id })),
                Some(json!({
                    "school_id": school_id, "pupil_id": request.pupil_id, "reason": reason,
                    "pupils_reversed": view.pupils_reversed,
                    "amount_reversed": view.amount_reversed.to_string(),
                    "credited": view.credited.to_string(),
                })),
            ))
            .await?;
        }
        Self::answer_and_commit(unit, &claim, 200, &view).await
    }

    /// Adjusts one posted charge by a signed amount (see the module's bookings); the pupil's
    /// QR for the run then asks for the new remainder.
    pub async fn adjust_charge(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        school_id: Uuid,
        request: AdjustmentRequest,
    ) -> Result<Reply, SchoolError> {
        again_after_deadlock(|| {
            self.adjust_charge_once(caller, claim.clone(), school_id, request.clone())
        })
        .await
    }

    /// One attempt of [`Self::adjust_charge`].
    async fn adjust_charge_once(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        school_id: Uuid,
        request: AdjustmentRequest,
    ) -> Result<Reply, SchoolError> {
        let reason = text("reason", &request.reason, REASON_MAX_CHARS)?;
        let delta = request.amount;
        if delta == 0 || !(-MAX_AMOUNT..=MAX_AMOUNT).contains(&delta) {
            return Err(SchoolError::AdjustmentOutOfRange(
                "amount must be a signed number of đồng, not 0, at most 1,000,000,000,000 either way"
                    .into(),
            ));
        }
        let qrs = RunIntentsOf::Pupils(vec![(school_id, request.pupil_id)]);
        let started = self
            .begin_correction(caller, &claim, school_id, Some(qrs))
            .await?;
        let (school, mut unit) = match started {
            Ok(started) => started,
            Err(reply) => return Ok(reply),
        };
        let now = self.clock.now_micros();
        let run = Self::posted_run_row(&mut unit, school_id, request.run_id).await?;
        let pupil = Self::pupil_of(&mut unit, school_id, request.pupil_id).await?;
        let charge = unit
            .lock_charge_of(run.id, pupil.id, request.fee_item_id)
            .await?
            .ok_or(SchoolError::NotFound {
                what: "charge of this pupil and fee item in the run",
                id: request.fee_item_id,
            })?;
        if charge.reversed_at.is_some() {
            return Err(SchoolError::ChargeReversed);
        }
        let new_amount = charge.amount + delta;
        if !(1..=MAX_AMOUNT).contains(&new_amount) {
            return Err(SchoolError::AdjustmentOutOfRange(format!(
                "the charge asks {} đồng: an adjustment must leave it from 1 to 1,000,000,000,000 đồng (to take a pupil's charges back, reverse them)",
                charge.amount
            )));
        }
        let fund = Fund::parse(&charge.fund)
            .ok_or_else(|| StoreError::Corrupt(format!("fund {:?}", charge.fund)))?;
        let accounts = SchoolAccounts::ensure(&mut unit, &school.code, now).await?;
        let released = (charge.paid - new_amount).max(0);
        let legs = if delta > 0 {
            vec![(pupil.receivable_account_id, accounts.uncollected, delta)]
        } else {
            vec![
                (
                    accounts.uncollected,
                    pupil.receivable_account_id,
                    -delta - released,
                ),
                (accounts.fund(fund), pupil.receivable_account_id, released),
            ]
        };
        let transaction_id = self.clock.new_id();
        let description = format!(
            "Điều chỉnh khoản thu {} của học sinh {} ({delta:+} đồng): {reason}",
            run.name, pupil.code
        );
        post_school_transaction(&mut unit, transaction_id, &description, &legs, now, true).await?;
        // What was paid beyond the new amount is released first: a charge is never paid more
        // than it asks.
        if released > 0 {
            unit.release_allocations(charge.id, charge.paid - released, now)
                .await?;
        }
        unit.adjust_charge_amount(charge.id, delta).await?;
        let id = self.clock.new_id();
        unit.insert_correction(&CorrectionRow {
            id,
            school_id,
            kind: "adjustment".into(),
            run_id: Some(run.id),
            pupil_id: Some(pupil.id),
            charge_id: Some(charge.id),
            fee_item_id: Some(charge.fee_item_id),
            amount: delta,
            method: None,
            reason: reason.clone(),
            created_by: caller.username.clone(),
            ledger_transaction_id: Some(transaction_id),
            created_at: now,
        })
        .await?;
        if delta > 0 {
            // More is owed: the pupil's credit pays it first, as a run's posting does.
            settle_pupil(&mut unit, &self.clock, &accounts, &pupil, None, true).await?;
        }
        let intent_id = refresh_run_intent(
            &mut unit,
            &self.clock,
            (&school, &run, &pupil),
            caller.user_id,
        )
        .await?;
        let run_owing = unit.run_outstanding(run.id, pupil.id).await?;
        unit.append_audit(&crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::SchoolChargeAdjust,
            charge.id,
            Some(json!({ "school_id": school_id, "amount": charge.amount.to_string() })),
            Some(json!({
                "school_id": school_id, "amount": new_amount.to_string(),
                "adjustment": delta.to_string(), "reason": reason,
                "ledger_transaction_id": transaction_id,
            })),
        ))
        .await?;
        let view = AdjustmentView {
            id,
            run_id: run.id,
            pupil_id: pupil.id,
            fee_item_id: charge.fee_item_id,
            amount: delta,
            charge_amount: new_amount,
            run_owing,
            intent_id,
            ledger_transaction_id: transaction_id,
        };
        Self::answer_and_commit(unit, &claim, 201, &view).await
    }

    /// Pays back (part of) a pupil's credit, in cash at the desk or by bank transfer; never
    /// more than the credit.
    pub async fn refund_credit(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        school_id: Uuid,
        request: RefundRequest,
    ) -> Result<Reply, SchoolError> {
        again_after_deadlock(|| {
            self.refund_credit_once(caller, claim.clone(), school_id, request.clone())
        })
        .await
    }

    /// One attempt of [`Self::refund_credit`].
    async fn refund_credit_once(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        school_id: Uuid,
        request: RefundRequest,
    ) -> Result<Reply, SchoolError> {
        let reason = text("reason", &request.reason, REASON_MAX_CHARS)?;
        if !(1..=MAX_AMOUNT).contains(&request.amount) {
            return Err(SchoolError::invalid(
                "amount must be from 1 to 1,000,000,000,000 đồng",
            ));
        }
        let cash = match request.method.as_str() {
            "cash" => true,
            "bank_transfer" => false,
            _ => return Err(SchoolError::invalid("method must be cash or bank_transfer")),
        };
        // A refund changes no charge, so no QR code.
        let (school, mut unit) = match self
            .begin_correction(caller, &claim, school_id, None)
            .await?
        {
            Ok(started) => started,
            Err(reply) => return Ok(reply),
        };
        let now = self.clock.now_micros();
        let pupil = Self::pupil_of(&mut unit, school_id, request.pupil_id).await?;
        let credit = unit.pupil_credit(pupil.id).await?;
        if request.amount > credit {
            return Err(SchoolError::RefundExceedsCredit {
                credit: credit.max(0),
            });
        }
        let accounts = SchoolAccounts::ensure(&mut unit, &school.code, now).await?;
        let paid_from = if cash {
            accounts.cash
        } else {
            school.ledger_account_id
        };
        let transaction_id = self.clock.new_id();
        let description = format!("Trả lại tiền thừa cho học sinh {}: {reason}", pupil.code);
        post_school_transaction(
            &mut unit,
            transaction_id,
            &description,
            &[(pupil.receivable_account_id, paid_from, request.amount)],
            now,
            true,
        )
        .await?;
        let id = self.clock.new_id();
        unit.insert_correction(&CorrectionRow {
            id,
            school_id,
            kind: "refund".into(),
            run_id: None,
            pupil_id: Some(pupil.id),
            charge_id: None,
            fee_item_id: None,
            amount: request.amount,
            method: Some(request.method.clone()),
            reason: reason.clone(),
            created_by: caller.username.clone(),
            ledger_transaction_id: Some(transaction_id),
            created_at: now,
        })
        .await?;
        let credit_left = unit.pupil_credit(pupil.id).await?;
        assert_eq!(
            credit_left,
            credit - request.amount,
            "a refund takes only credit"
        );
        unit.append_audit(&crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::SchoolCreditRefund,
            pupil.id,
            Some(json!({ "school_id": school_id, "credit": credit.to_string() })),
            Some(json!({
                "school_id": school_id, "credit": credit_left.to_string(),
                "refund": request.amount.to_string(), "method": request.method,
                "reason": reason, "ledger_transaction_id": transaction_id,
            })),
        ))
        .await?;
        let view = RefundView {
            id,
            pupil_id: pupil.id,
            amount: request.amount,
            method: request.method,
            reason,
            credit_left,
            ledger_transaction_id: transaction_id,
        };
        Self::answer_and_commit(unit, &claim, 201, &view).await
    }

    /// A read-only link for a household's parents to the open charges of the household's
    /// pupils at this school: a random 256-bit token, shown once; only its SHA-256 is kept.
    pub async fn create_household_link(
        &self,
        caller: &Caller,
        school_id: Uuid,
        request: NewHouseholdLinkRequest,
    ) -> Result<HouseholdLinkView, SchoolError> {
        self.school(caller, school_id).await?;
        let token = super::new_token();
        let id = self.clock.new_id();
        let mut unit = self.store.begin().await?;
        // A school knows only the households its own pupils name.
        if !unit
            .school_has_household(school_id, request.household_id)
            .await?
        {
            return Err(SchoolError::HouseholdNotFound(request.household_id));
        }
        unit.insert_household_link(
            id,
            (school_id, request.household_id),
            &token_hash(&token),
            self.clock.now_micros(),
        )
        .await?;
        let after = json!({ "school_id": school_id, "household_id": request.household_id });
        unit.append_audit(&crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::ParentLinkCreate,
            id,
            None,
            Some(after),
        ))
        .await?;
        unit.commit().await?;
        Ok(HouseholdLinkView {
            id,
            household_id: request.household_id,
            token,
        })
    }

    pub async fn revoke_household_link(
        &self,
        caller: &Caller,
        school_id: Uuid,
        link_id: Uuid,
    ) -> Result<(), SchoolError> {
        self.revoke_link(caller, school_id, (LinkKind::Household, link_id))
            .await
    }

    /// Revokes one of the school's parent links (a pupil's or a household's), audited.
    pub(super) async fn revoke_link(
        &self,
        caller: &Caller,
        school_id: Uuid,
        (kind, link_id): (LinkKind, Uuid),
    ) -> Result<(), SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.begin().await?;
        if !unit
            .revoke_link(kind, school_id, link_id, self.clock.now_micros())
            .await?
        {
            return Err(SchoolError::LinkNotFound);
        }
        let state = |revoked: bool| json!({ "school_id": school_id, "link": kind.as_str(), "revoked": revoked });
        unit.append_audit(&crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::ParentLinkRevoke,
            link_id,
            Some(state(false)),
            Some(state(true)),
        ))
        .await?;
        unit.commit().await?;
        Ok(())
    }

    /// What a household link shows (see `HouseholdParentView`).
    pub async fn household_parent_view(
        &self,
        token: &str,
    ) -> Result<HouseholdParentView, SchoolError> {
        let mut unit = self.store.school_snapshot().await?;
        let Some((school_id, household_id)) = unit.household_link(&token_hash(token)).await? else {
            return Err(SchoolError::LinkNotFound);
        };
        let mut pupils = Vec::new();
        for p in unit.household_pupils(household_id).await? {
            if p.pupil.school_id != school_id {
                continue;
            }
            let open_charges = super::parent_open_charges(unit.pupil_charges(p.pupil.id).await?);
            pupils.push(HouseholdPupilCharges {
                pupil_name: p.pupil.full_name,
                owing: open_charges.iter().map(|c| c.owing).sum(),
                open_charges,
                credit: unit.pupil_credit(p.pupil.id).await?,
            });
        }
        let household_payment = unit
            .open_household_intent(household_id, self.clock.now_micros())
            .await?
            .map(super::household_qr_view);
        unit.rollback().await?;
        let school = self
            .store
            .payee(school_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("link names no school {school_id}")))?;
        Ok(HouseholdParentView {
            school_name: school.details.name,
            owing_total: pupils.iter().map(|p| p.owing).sum(),
            pupils,
            household_payment,
        })
    }
}
