//! School fee collection: the school's years, classes and pupils, fee items and reductions,
//! collection runs posted to the ledger, payments (online through the bank feed, cash at the
//! desk with a gap-free receipt number), and what each pupil and class owes.
//!
//! A school user acts only for the school (payee) its token names: another school's records
//! answer "not found". Every money movement is one database transaction with its journal.
//! The ledger says who owes what: each pupil has a receivable account (see `domain::schools`).

pub mod corrections;
mod error;
pub mod exports;
pub mod models;
mod receipt_html;
mod receipt_pdf;
pub mod reminder_sender;
pub mod reminders;
mod slips;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use error::{RosterImportError, SchoolError};
use models::*;

use crate::clock::{to_rfc3339, Clock};
use crate::domain::account::AccountKind;
use crate::domain::audit::AuditAction;
use crate::domain::intent::{IntentStatus, PaymentIntent, MAX_EXPIRES_IN_SECONDS};
use crate::domain::payee::{bounded_text, parse_phone, Payee, PayeeKind};
use crate::domain::registry::import::LineError;
use crate::domain::schools::roster::parse_roster;
use crate::domain::schools::{
    allocate, compute_charges, fund_legs, merge_legs, parse_pupil_code, percent_text,
    school_transaction, FeeUnit, Fund, OpenCharge, PaidState, Reduction,
};
use crate::domain::transaction::{NewTransaction, MAX_POSTINGS};
use crate::domain::user::Role;
use crate::services::auth::Caller;
use crate::services::ledger::Reply;
use crate::services::paging;
use crate::services::payments::draft_intent;
use crate::services::registry::import::ImportError;
use crate::store::school_corrections::RunIntentsOf;
use crate::store::schools::{
    ClassRow, FeeItemRow, HouseholdIntentRow, HouseholdPupilRow, IntentPupilRow, NewCharge,
    NewPupil, NewSchoolPayment, PupilRow, ReceiptRow, RunRow, YearRow,
};
use crate::store::{IdempotencyClaim, LockedLedger, Store, StoreError, StoredResponse, UnitOfWork};

/// Who the school's automatic postings (runs, payments) are recorded as.
pub(crate) const SCHOOL_USER_ID: Uuid = Uuid::from_u128(0x5c_4001);
const NAME_MAX_CHARS: usize = 120;
/// A generated reference that is already taken is drawn again (as payment intents do).
const MAX_DRAWS: usize = 5;
/// Larger than any school charge; keeps sums far from overflow.
const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// A school's ledger accounts.
#[derive(Debug, Clone)]
pub struct SchoolAccounts {
    pub uncollected: Uuid,
    pub cash: Uuid,
    pub funds: Vec<(Fund, Uuid)>,
}

impl SchoolAccounts {
    fn fund(&self, fund: Fund) -> Uuid {
        self.funds
            .iter()
            .find(|(f, _)| *f == fund)
            .map(|(_, id)| *id)
            .expect("every fund has an account")
    }

    /// Finds or creates the accounts of the school with payee code `code`. They are created
    /// once and never change, so after the school's first run one read finds them all.
    pub async fn ensure(
        unit: &mut UnitOfWork<'_>,
        code: &str,
        now: i64,
    ) -> Result<Self, StoreError> {
        let mut specs = vec![
            (
                format!("school:{code}:uncollected"),
                format!("Khoản thu chưa thu được – {code}"),
                AccountKind::Liability,
            ),
            (
                format!("school:{code}:cash"),
                format!("Tiền mặt tại quỹ – {code}"),
                AccountKind::Asset,
            ),
        ];
        specs.extend(Fund::ALL.into_iter().map(|fund| {
            (
                fund_code(code, fund),
                format!("Quỹ {} – {code}", fund_name(fund)),
                AccountKind::Liability,
            )
        }));
        let wanted: Vec<(String, AccountKind)> = specs
            .iter()
            .map(|(account, _, kind)| (account.clone(), *kind))
            .collect();
        let found = unit.fitting_school_accounts(&wanted).await?;
        let mut ids = Vec::with_capacity(specs.len());
        for (account, name, kind) in &specs {
            ids.push(match found.get(account) {
                Some(id) => *id,
                None => {
                    unit.ensure_school_account(account, name, *kind, now)
                        .await?
                }
            });
        }
        Ok(Self {
            uncollected: ids[0],
            cash: ids[1],
            funds: Fund::ALL
                .into_iter()
                .zip(ids[2..].iter().copied())
                .collect(),
        })
    }
}

fn fund_code(school_code: &str, fund: Fund) -> String {
    format!("school:{school_code}:fund:{}", fund.as_str())
}

fn fund_name(fund: Fund) -> &'static str {
    match fund {
        Fund::School => "của trường",
        Fund::ParentsAssociation => "ban đại diện cha mẹ học sinh",
        Fund::PassThrough => "thu hộ",
    }
}

/// Money arriving for a pupil: from which account (the school's payee account for a bank
/// transfer, its cash account for cash), how much, and what records it.
struct Money {
    source_account: Uuid,
    amount: i64,
    cash: bool,
    bank_transaction_id: Option<Uuid>,
    receipt_id: Option<Uuid>,
}

/// Credits `money` (if any, with the description of its ledger transaction) to the pupil's
/// receivable and pays the pupil's open charges with it and any credit the pupil has, by the
/// split rule (`domain::schools::allocate`), in one ledger transaction in the caller's
/// database transaction. Returns the payment recorded.
async fn settle_pupil(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    accounts: &SchoolAccounts,
    pupil: &PupilRow,
    money: Option<(Money, String)>,
    gated: bool,
) -> Result<Option<Uuid>, StoreError> {
    let now = clock.now_micros();
    serialize_school(unit, pupil.school_id).await?;
    let (open, credit) = unit.lock_open_charges_and_credit(pupil.id).await?;
    let Some(settlement) =
        pupil_settlement(clock, accounts, pupil, &open, credit, money.as_ref(), now)?
    else {
        return Ok(None);
    };
    post_school_ledger_transaction(unit, &settlement.transaction, gated).await?;
    let payment_id = match settlement.payment {
        Some(payment) => {
            unit.insert_school_payment_with_allocations(&payment, &settlement.paid, now)
                .await?;
            payment.id
        }
        None => {
            let id = unit
                .latest_payment(pupil.id)
                .await?
                .ok_or_else(|| StoreError::Corrupt("credit without a payment".into()))?;
            unit.insert_allocations(id, &settlement.paid, settlement.transaction.id, now)
                .await?;
            id
        }
    };
    Ok(Some(payment_id))
}

/// What paying a pupil's open charges with `money` (if any) and the pupil's credit comes to.
struct PupilSettlement {
    /// The money credited to the pupil's receivable, and the charges paid out of it.
    transaction: NewTransaction,
    /// (charge, amount) paid.
    paid: Vec<(Uuid, i64)>,
    /// The payment that brought the money; `None` when only credit was used.
    payment: Option<NewSchoolPayment>,
}

/// Decides [`PupilSettlement`] from the pupil's `open` charges (locked) and `credit`, with
/// `money` (if any) and the description of its ledger transaction; `None` when there is
/// nothing to post.
fn pupil_settlement(
    clock: &Clock,
    accounts: &SchoolAccounts,
    pupil: &PupilRow,
    open: &[OpenCharge],
    credit: i64,
    money: Option<&(Money, String)>,
    now: i64,
) -> Result<Option<PupilSettlement>, StoreError> {
    let money_only = money.map(|(money, _)| money);
    let PupilShare { legs, paid } = pupil_share(accounts, pupil, open, credit, money_only);
    if legs.is_empty() {
        return Ok(None);
    }
    let transaction_id = clock.new_id();
    let description = money.map_or_else(
        || format!("Dùng tiền thừa của học sinh {}", pupil.code),
        |(_, description)| description.clone(),
    );
    let transaction = school_transaction(transaction_id, &description, &legs, now)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let payment = money_only.map(|money| school_payment(clock, pupil, money, transaction_id));
    Ok(Some(PupilSettlement {
        transaction,
        paid,
        payment,
    }))
}

/// One pupil's part of a settlement: the ledger legs (debit, credit, amount) and the charges
/// paid, (charge, amount).
struct PupilShare {
    legs: Vec<(Uuid, Uuid, i64)>,
    paid: Vec<(Uuid, i64)>,
}

/// Pays the pupil's `open` charges (locked) with `money` (if any, credited to the pupil's
/// receivable) and `credit`, by the split rule (`domain::schools::allocate`): the money's leg,
/// then one leg from uncollected to each fund the paid charges belong to.
fn pupil_share(
    accounts: &SchoolAccounts,
    pupil: &PupilRow,
    open: &[OpenCharge],
    credit: i64,
    money: Option<&Money>,
) -> PupilShare {
    let incoming = money.map_or(0, |m| m.amount);
    let (paid, _left) = allocate(open, credit.max(0) + incoming);
    let fund_of: HashMap<Uuid, Fund> = open.iter().map(|c| (c.id, c.fund)).collect();
    let mut legs = Vec::new();
    if let Some(money) = money {
        legs.push((
            money.source_account,
            pupil.receivable_account_id,
            money.amount,
        ));
    }
    legs.extend(fund_legs(
        &paid,
        |charge| fund_of[&charge],
        accounts.uncollected,
        |fund| accounts.fund(fund),
    ));
    PupilShare { legs, paid }
}

/// The payment record of `money` for the pupil, posted by `ledger_transaction_id`.
fn school_payment(
    clock: &Clock,
    pupil: &PupilRow,
    money: &Money,
    ledger_transaction_id: Uuid,
) -> NewSchoolPayment {
    NewSchoolPayment {
        id: clock.new_id(),
        school_id: pupil.school_id,
        pupil_id: pupil.id,
        cash: money.cash,
        amount: money.amount,
        ledger_transaction_id,
        bank_transaction_id: money.bank_transaction_id,
        receipt_id: money.receipt_id,
    }
}

/// Money a bank transfer credited to a school's payee account for a pupil's intent.
pub struct PupilTransfer<'a> {
    pub target: &'a IntentPupilRow,
    pub credited: i64,
    pub bank_transaction_id: Uuid,
}

/// What each transfer (to a different pupil each) settles, decided for each as if alone from
/// what is read with a few statements for all: each school's turn (in id order), its accounts,
/// every pupil's open charges (locked) and credit. The transfers to one school are settled
/// by one ledger transaction (up to [`PUPILS_PER_SETTLEMENT`] pupils): a leg to each pupil's
/// receivable and one leg per fund for all of them, which each payment names.
pub async fn settle_pupil_transfers(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    transfers: &[PupilTransfer<'_>],
) -> Result<PupilTransferSettlements, StoreError> {
    let now = clock.now_micros();
    let mut settlements = PupilTransferSettlements {
        transactions: Vec::with_capacity(transfers.len()),
        payments: Vec::with_capacity(transfers.len()),
        now,
    };
    if transfers.is_empty() {
        return Ok(settlements);
    }
    let mut pupils: Vec<Uuid> = transfers.iter().map(|t| t.target.pupil.id).collect();
    pupils.sort_unstable();
    pupils.dedup();
    assert_eq!(
        pupils.len(),
        transfers.len(),
        "transfers settled together pay different pupils"
    );
    let mut schools: Vec<(Uuid, &str)> = transfers
        .iter()
        .map(|t| (t.target.pupil.school_id, t.target.school_code.as_str()))
        .collect();
    schools.sort_unstable();
    schools.dedup();
    let mut turns: Vec<String> = schools.iter().map(|(id, _)| school_turn(*id)).collect();
    unit.serialize_on_all(&mut turns).await?;
    let mut accounts = HashMap::with_capacity(schools.len());
    for (school_id, code) in schools {
        accounts.insert(school_id, SchoolAccounts::ensure(unit, code, now).await?);
    }
    let mut open = unit.lock_open_charges_and_credits(&pupils).await?;
    let mut by_school: Vec<(Uuid, Vec<&PupilTransfer<'_>>)> = Vec::new();
    for transfer in transfers {
        let school_id = transfer.target.pupil.school_id;
        match by_school.iter_mut().find(|(id, _)| *id == school_id) {
            Some((_, of_school)) => of_school.push(transfer),
            None => by_school.push((school_id, vec![transfer])),
        }
    }
    for (school_id, of_school) in by_school {
        for batch in of_school.chunks(PUPILS_PER_SETTLEMENT) {
            let transaction_id = clock.new_id();
            let mut legs = Vec::with_capacity(batch.len() + Fund::ALL.len());
            let mut codes = Vec::with_capacity(batch.len());
            for transfer in batch {
                let pupil = &transfer.target.pupil;
                let (charges, credit) = open.remove(&pupil.id).unwrap_or_default();
                let money = Money {
                    source_account: transfer.target.school_account_id,
                    amount: transfer.credited,
                    cash: false,
                    bank_transaction_id: Some(transfer.bank_transaction_id),
                    receipt_id: None,
                };
                let share =
                    pupil_share(&accounts[&school_id], pupil, &charges, credit, Some(&money));
                legs.extend(share.legs);
                let payment = school_payment(clock, pupil, &money, transaction_id);
                settlements.payments.push((payment, share.paid));
                codes.push(pupil.code.as_str());
            }
            let legs = merge_legs(legs).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let transaction =
                school_transaction(transaction_id, &transfers_description(&codes), &legs, now)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            settlements.transactions.push(transaction);
        }
    }
    Ok(settlements)
}

/// How many pupils' transfers one ledger transaction settles at most: each adds its own leg
/// to the pupil's receivable, and the fund legs are shared.
const PUPILS_PER_SETTLEMENT: usize = MAX_POSTINGS - Fund::ALL.len();

/// The description of one settlement of bank transfers to these pupils (by code).
fn transfers_description(codes: &[&str]) -> String {
    match codes {
        [code] => format!("Chuyển khoản cho học sinh {code}"),
        _ => format!(
            "Chuyển khoản cho {} học sinh: {}",
            codes.len(),
            codes.join(", ")
        ),
    }
}

/// The school side of transfers to pupils' intents, decided: the ledger transactions to post
/// ([`Self::post`], or [`Self::write`] with the payments) and the payments to write after
/// them ([`Self::write_payments`]).
pub struct PupilTransferSettlements {
    transactions: Vec<NewTransaction>,
    payments: Vec<(NewSchoolPayment, Vec<(Uuid, i64)>)>,
    now: i64,
}

impl PupilTransferSettlements {
    /// The accounts the transactions post to, for the ledger to lock before [`Self::post`].
    pub fn account_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.transactions.iter().flat_map(|t| t.account_ids())
    }

    /// Posts the transactions to `ledger`, which locked [`Self::account_ids`].
    pub fn post(&self, ledger: &mut LockedLedger) -> Result<(), StoreError> {
        for transaction in &self.transactions {
            // Receivables and the school's accounts carry no balance rule, so these always fit.
            if ledger
                .post_first_that_fits(std::slice::from_ref(transaction), SCHOOL_USER_ID)
                .is_none()
            {
                return Err(StoreError::Corrupt(
                    "a school pupil's payment did not fit".into(),
                ));
            }
        }
        Ok(())
    }

    /// Posts the transactions (not gated: the bank feed's unit of work holds account rows
    /// already) and records the payments and what they paid, for a unit of work whose own
    /// postings are written already.
    pub async fn write(&self, unit: &mut UnitOfWork<'_>) -> Result<(), StoreError> {
        let mut ledger = unit.lock_ledger(self.account_ids()).await?;
        self.post(&mut ledger)?;
        unit.write_ledger(ledger).await?;
        self.write_payments(unit, &[]).await
    }

    /// Records the payments and what they paid, once the transactions are written, with
    /// the new (paid amount, status) of the intents the bank transfers paid.
    pub async fn write_payments(
        &self,
        unit: &mut UnitOfWork<'_>,
        paid_intents: &[(Uuid, i64, IntentStatus)],
    ) -> Result<(), StoreError> {
        if self.payments.is_empty() && paid_intents.is_empty() {
            return Ok(());
        }
        let payments: Vec<(&NewSchoolPayment, &[(Uuid, i64)])> = self
            .payments
            .iter()
            .map(|(payment, paid)| (payment, paid.as_slice()))
            .collect();
        unit.record_school_and_intent_payments(&payments, paid_intents, self.now)
            .await
    }
}

/// Posts one school ledger transaction of these legs in the caller's database transaction.
async fn post_school_transaction(
    unit: &mut UnitOfWork<'_>,
    id: Uuid,
    description: &str,
    legs: &[(Uuid, Uuid, i64)],
    now: i64,
    gated: bool,
) -> Result<(), StoreError> {
    let transaction = school_transaction(id, description, legs, now)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    post_school_ledger_transaction(unit, &transaction, gated).await
}

/// Posts a school ledger transaction in the caller's database transaction. Not `gated` when
/// the caller's unit of work may already hold account rows (the bank feed's, after its own
/// posting): waiting at the in-process account gate while holding rows the gate's holder
/// waits for would be a deadlock the database cannot see.
async fn post_school_ledger_transaction(
    unit: &mut UnitOfWork<'_>,
    transaction: &NewTransaction,
    gated: bool,
) -> Result<(), StoreError> {
    let candidates = std::slice::from_ref(transaction);
    let posted = if gated {
        unit.post_first_that_fits(candidates, SCHOOL_USER_ID)
            .await?
    } else {
        unit.post_first_that_fits_ungated(candidates, SCHOOL_USER_ID)
            .await?
    };
    // Receivables and the school's accounts carry no balance rule, so this always fits.
    match posted {
        Some(_) => Ok(()),
        None => Err(StoreError::Corrupt(format!(
            "a school posting did not fit: {}",
            transaction.description
        ))),
    }
}

/// Makes the school's money-moving use cases (run posting, payments, cash, cancellations) take
/// turns, before any account lock they take, so that a pupil's credit is read by one at a
/// time. They all post to the school's `uncollected` account anyway, so nothing runs slower.
async fn serialize_school(unit: &mut UnitOfWork<'_>, school_id: Uuid) -> Result<(), StoreError> {
    unit.serialize_on(&school_turn(school_id)).await
}

/// The key [`serialize_school`] takes turns on.
fn school_turn(school_id: Uuid) -> String {
    format!("school:{school_id}")
}

/// How many times a school use case runs when PostgreSQL keeps choosing it to break a deadlock.
const DEADLOCK_ATTEMPTS: usize = 3;
/// The pause before the second attempt (twice that before the third).
const DEADLOCK_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// Runs `attempt` (a whole use case in its own database transaction) again when PostgreSQL
/// aborted it to break a deadlock, so the accountant does not get SERVICE_UNAVAILABLE for a
/// wait the database resolved. A webhook group holds the school's turn from one delivery while
/// it locks the QR codes of the next, so no lock order rules every deadlock with the cash desk
/// and the corrections out; [`hold_open_run_intents`] makes them rare, this answers the rest.
async fn again_after_deadlock<T, Attempt>(
    mut attempt: impl FnMut() -> Attempt,
) -> Result<T, SchoolError>
where
    Attempt: std::future::Future<Output = Result<T, SchoolError>>,
{
    for tried in 1..DEADLOCK_ATTEMPTS {
        match attempt().await {
            Err(SchoolError::Store(error)) if error.is_deadlock() => {
                tracing::info!(%error, tried, "a school use case was chosen to break a deadlock; running it again");
                // The webhook group it met holds its locks until it commits: a moment later
                // the same locks are most likely free.
                tokio::time::sleep(DEADLOCK_PAUSE * tried as u32).await;
            }
            other => return other,
        }
    }
    attempt().await
}

/// For a use case that will close or renew open QR codes of some pupils (or of a run),
/// before it takes the school's turn: locks them, as the bank feed locks the intents a memo
/// names before it takes the turn; otherwise each would hold what the other waits for. For
/// pupils, it first waits for the pupils' other such use cases, which replace the very codes
/// it is about to lock: a second cash entry would lock the QR the first is cancelling, then
/// wait for the turn the first holds while the first waits for that QR.
///
/// Codes created after the lock and before the turn (by a run posted in those milliseconds)
/// are updated after the turn without this protection; one paid in the same milliseconds is a
/// deadlock PostgreSQL breaks (the use case runs again, see [`again_after_deadlock`], or the
/// webhook group is written again alone).
async fn hold_open_run_intents(
    unit: &mut UnitOfWork<'_>,
    of: RunIntentsOf,
    now: i64,
) -> Result<(), StoreError> {
    if let RunIntentsOf::Pupils(pupils) = &of {
        let mut keys = pupils
            .iter()
            .map(|(school, pupil)| format!("pupil-qrs:{school}:{pupil}"))
            .collect();
        unit.serialize_on_all(&mut keys).await?;
    }
    unit.lock_open_run_intents(&of, now).await
}

/// The bank feed's hook: when a transfer paid a school run's pupil intent or a household QR,
/// the money the school's payee account received (`credited`) settles the charges, in the
/// bank feed's own database transaction. Any other intent is left alone.
pub async fn settle_school_intent(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    intent_id: Uuid,
    credited: i64,
    bank_transaction_id: Uuid,
) -> Result<(), StoreError> {
    let Some(target) = unit.intent_pupil(intent_id).await? else {
        if let Some(household) = unit.household_of_intent(intent_id).await? {
            return settle_household(unit, clock, &household, credited, bank_transaction_id).await;
        }
        return Ok(());
    };
    let transfer = PupilTransfer {
        target: &target,
        credited,
        bank_transaction_id,
    };
    settle_pupil_transfers(unit, clock, std::slice::from_ref(&transfer))
        .await?
        .write(unit)
        .await
}

/// Whether the intent is a school run's pupil intent or a household QR: money paid on it
/// beyond its amount is kept as a pupil's credit, not parked in suspense.
pub async fn is_school_intent(
    unit: &mut UnitOfWork<'_>,
    intent_id: Uuid,
) -> Result<bool, StoreError> {
    unit.is_school_intent(intent_id).await
}

/// The pupils a household QR pays for: those naming the household at the schools that
/// collect into the QR's bank account (always including the school the QR names).
async fn household_qr_pupils(
    unit: &mut UnitOfWork<'_>,
    household: &HouseholdIntentRow,
) -> Result<Vec<HouseholdPupilRow>, StoreError> {
    Ok(unit
        .household_pupils(household.household_id)
        .await?
        .into_iter()
        .filter(|p| {
            p.collection_account_id == household.collection_account_id
                || p.pupil.school_id == household.payee_id
        })
        .collect())
}

/// Money a household QR brought in (`credited` to the payee account of the school the QR
/// names) pays the open charges of all the household's pupils at every school sharing the
/// QR's bank account, by the one split rule across them all (`domain::schools::allocate`);
/// what is left over is the credit of the household's first pupil (by pupil code) at the
/// school the QR names. One ledger transaction: the named school's payee account is debited
/// the whole amount, each pupil's receivable credited with what it got, and each school's
/// uncollected debited and funds credited for what its charges were paid. Each school gets
/// one payment row per pupil of its own, so it sees only its own lines.
async fn settle_household(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    household: &HouseholdIntentRow,
    credited: i64,
    bank_transaction_id: Uuid,
) -> Result<(), StoreError> {
    let now = clock.now_micros();
    let pupils = household_qr_pupils(unit, household).await?;
    let mut schools: Vec<(Uuid, String)> = pupils
        .iter()
        .map(|p| (p.pupil.school_id, p.school_code.clone()))
        .collect();
    // Always in school id order, so two households' payments never wait on each other.
    schools.sort();
    schools.dedup();
    // The split renews the pupils' open QR codes (below).
    let household_pupils = pupils
        .iter()
        .map(|p| (p.pupil.school_id, p.pupil.id))
        .collect();
    hold_open_run_intents(unit, RunIntentsOf::Pupils(household_pupils), now).await?;
    let mut accounts = HashMap::new();
    for (school_id, code) in &schools {
        serialize_school(unit, *school_id).await?;
        accounts.insert(*school_id, SchoolAccounts::ensure(unit, code, now).await?);
    }
    let mut open = Vec::new();
    let mut owner = HashMap::new();
    for p in &pupils {
        for charge in unit.lock_open_charges(p.pupil.id).await? {
            owner.insert(charge.id, (p.pupil.id, charge.fund));
            open.push(charge);
        }
    }
    let (paid, left) = allocate(&open, credited);
    let credit_pupil = pupils
        .iter()
        .find(|p| p.pupil.school_id == household.payee_id)
        .ok_or_else(|| StoreError::Corrupt("a household QR's school has no pupil".into()))?;
    let payee_account = credit_pupil.school_account_id;
    let mut legs = Vec::new();
    let mut received = Vec::new();
    for p in &pupils {
        let mine: Vec<(Uuid, i64)> = paid
            .iter()
            .filter(|(charge, _)| owner[charge].0 == p.pupil.id)
            .copied()
            .collect();
        let extra = if p.pupil.id == credit_pupil.pupil.id {
            left
        } else {
            0
        };
        let amount = mine.iter().map(|(_, a)| a).sum::<i64>() + extra;
        if amount == 0 {
            continue;
        }
        let school = &accounts[&p.pupil.school_id];
        legs.push((payee_account, p.pupil.receivable_account_id, amount));
        legs.extend(fund_legs(
            &mine,
            |charge| owner[&charge].1,
            school.uncollected,
            |fund| school.fund(fund),
        ));
        received.push((p, amount, mine));
    }
    assert_eq!(
        received.iter().map(|(_, amount, _)| amount).sum::<i64>(),
        credited.max(0),
        "a household payment hands each pupil exactly the money that came in"
    );
    if legs.is_empty() {
        return Ok(());
    }
    let transaction_id = clock.new_id();
    let description = format!(
        "Chuyển khoản của hộ {} cho {} học sinh",
        household.household_code,
        received.len()
    );
    post_school_transaction(unit, transaction_id, &description, &legs, now, false).await?;
    for (p, amount, mine) in received {
        unit.insert_school_payment_with_allocations(
            &NewSchoolPayment {
                id: clock.new_id(),
                school_id: p.pupil.school_id,
                pupil_id: p.pupil.id,
                cash: false,
                amount,
                ledger_transaction_id: transaction_id,
                bank_transaction_id: Some(bank_transaction_id),
                receipt_id: None,
            },
            &mine,
            now,
        )
        .await?;
        close_paid_run_intents(unit, clock, &p.pupil).await?;
    }
    Ok(())
}

/// Money that reached a pupil's charges from elsewhere than the pupil's own QR (a household
/// QR, the cash desk): the pupil's QR codes still open ask only for what their runs still owe,
/// in the same database transaction.
async fn close_paid_run_intents(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    pupil: &PupilRow,
) -> Result<(), StoreError> {
    corrections::refresh_open_run_intents(unit, clock, pupil)
        .await
        .map_err(|e| match e {
            SchoolError::Store(store) => store,
            other => StoreError::Corrupt(format!("a pupil's QR after a payment: {other}")),
        })
}

#[derive(Clone)]
pub struct SchoolService {
    store: Arc<dyn Store>,
    clock: Clock,
}

impl SchoolService {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self { store, clock }
    }

    fn today(&self) -> NaiveDate {
        crate::domain::registry::day_in_vietnam(self.clock.now())
    }

    /// The school, if it exists and the caller may act for it.
    async fn school(&self, caller: &Caller, id: Uuid) -> Result<Payee, SchoolError> {
        let allowed = !caller.role.is_payee_bound()
            || (caller.role == Role::School && caller.payee_id == Some(id));
        match self.store.payee(id).await? {
            Some(payee) if allowed && payee.kind == PayeeKind::School => Ok(payee),
            _ => Err(SchoolError::SchoolNotFound(id)),
        }
    }

    pub async fn create_year(
        &self,
        caller: &Caller,
        school_id: Uuid,
        request: NewYearRequest,
    ) -> Result<YearView, SchoolError> {
        self.school(caller, school_id).await?;
        let name = text("the year's name", &request.name, NAME_MAX_CHARS)?;
        if request.ends_on <= request.starts_on {
            return Err(SchoolError::invalid(
                "the school year must end after it starts (ends_on after starts_on)",
            ));
        }
        let year = YearRow {
            id: self.clock.new_id(),
            school_id,
            name,
            starts_on: request.starts_on,
            ends_on: request.ends_on,
        };
        let mut unit = self.store.begin().await?;
        if !unit
            .insert_school_year(&year, self.clock.now_micros())
            .await?
        {
            return Err(SchoolError::Taken {
                what: "school year",
                name: year.name,
            });
        }
        unit.commit().await?;
        Ok(year_view(year))
    }

    pub async fn list_years(
        &self,
        caller: &Caller,
        school_id: Uuid,
    ) -> Result<YearList, SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let years = unit.school_years(school_id).await?;
        unit.rollback().await?;
        Ok(YearList {
            data: years.into_iter().map(year_view).collect(),
        })
    }

    async fn year_of(
        unit: &mut UnitOfWork<'_>,
        school_id: Uuid,
        id: Uuid,
    ) -> Result<YearRow, SchoolError> {
        match unit.school_year(id).await? {
            Some(year) if year.school_id == school_id => Ok(year),
            _ => Err(SchoolError::NotFound {
                what: "school year",
                id,
            }),
        }
    }

    async fn class_of(
        unit: &mut UnitOfWork<'_>,
        school_id: Uuid,
        id: Uuid,
    ) -> Result<ClassRow, SchoolError> {
        match unit.school_class(id).await? {
            Some(class) if class.school_id == school_id => Ok(class),
            _ => Err(SchoolError::NotFound { what: "class", id }),
        }
    }

    async fn pupil_of(
        unit: &mut UnitOfWork<'_>,
        school_id: Uuid,
        id: Uuid,
    ) -> Result<PupilRow, SchoolError> {
        match unit.pupil(id).await? {
            Some(pupil) if pupil.school_id == school_id => Ok(pupil),
            _ => Err(SchoolError::NotFound { what: "pupil", id }),
        }
    }

    async fn fee_item_of(
        unit: &mut UnitOfWork<'_>,
        school_id: Uuid,
        id: Uuid,
    ) -> Result<FeeItemRow, SchoolError> {
        match unit.fee_item(id).await? {
            Some(item) if item.school_id == school_id => Ok(item),
            _ => Err(SchoolError::NotFound {
                what: "fee item",
                id,
            }),
        }
    }

    async fn run_of(
        unit: &mut UnitOfWork<'_>,
        school_id: Uuid,
        id: Uuid,
        lock: bool,
    ) -> Result<RunRow, SchoolError> {
        match unit.run(id, lock).await? {
            Some(run) if run.school_id == school_id => Ok(run),
            _ => Err(SchoolError::NotFound { what: "run", id }),
        }
    }

    pub async fn create_class(
        &self,
        caller: &Caller,
        school_id: Uuid,
        request: NewClassRequest,
    ) -> Result<ClassView, SchoolError> {
        self.school(caller, school_id).await?;
        let name = text("the class name", &request.name, NAME_MAX_CHARS)?;
        if !(1..=12).contains(&request.grade) {
            return Err(SchoolError::invalid("grade must be from 1 to 12"));
        }
        let mut unit = self.store.begin().await?;
        Self::year_of(&mut unit, school_id, request.year_id).await?;
        let class = ClassRow {
            id: self.clock.new_id(),
            school_id,
            year_id: request.year_id,
            grade: request.grade,
            name,
        };
        if !unit
            .insert_school_class(&class, self.clock.now_micros())
            .await?
        {
            return Err(SchoolError::Taken {
                what: "class",
                name: class.name,
            });
        }
        unit.commit().await?;
        Ok(class_view(class))
    }

    pub async fn list_classes(
        &self,
        caller: &Caller,
        school_id: Uuid,
    ) -> Result<ClassList, SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let classes = unit.school_classes(school_id).await?;
        unit.rollback().await?;
        Ok(ClassList {
            data: classes.into_iter().map(class_view).collect(),
        })
    }

    pub async fn create_pupil(
        &self,
        caller: &Caller,
        school_id: Uuid,
        request: NewPupilRequest,
    ) -> Result<PupilView, SchoolError> {
        let school = self.school(caller, school_id).await?;
        let code = pupil_code(&request.code)?;
        let full_name = text("the pupil's full_name", &request.full_name, NAME_MAX_CHARS)?;
        let guardian_name = request
            .guardian_name
            .as_deref()
            .map(|name| text("guardian_name", name, NAME_MAX_CHARS))
            .transpose()?;
        let guardian_phone = request
            .guardian_phone
            .as_deref()
            .map(|phone| {
                parse_phone(phone).map_err(|_| {
                    SchoolError::invalid("guardian_phone is not a Vietnamese phone number")
                })
            })
            .transpose()?;
        if request.household_id.is_none() && guardian_name.is_none() {
            return Err(SchoolError::invalid(
                "give the pupil's household_id or a guardian_name",
            ));
        }
        let now = self.clock.now_micros();
        let mut unit = self.store.begin().await?;
        Self::class_of(&mut unit, school_id, request.class_id).await?;
        if let Some(household) = request.household_id {
            if !unit.household_exists(household).await? {
                return Err(SchoolError::NotFound {
                    what: "household",
                    id: household,
                });
            }
        }
        let account_code = format!("school:{}:pupil:{code}", school.code);
        let receivable_account_id = unit
            .ensure_school_account(
                &account_code,
                &format!("Phải thu học sinh {full_name} ({code})"),
                AccountKind::Asset,
                now,
            )
            .await?;
        let pupil = NewPupil {
            id: self.clock.new_id(),
            school_id,
            code: &code,
            full_name: &full_name,
            household_id: request.household_id,
            guardian_name: guardian_name.as_deref(),
            guardian_phone: guardian_phone.as_deref(),
            receivable_account_id,
            class_id: request.class_id,
            joined_on: request.joined_on,
            now,
        };
        if !unit.insert_pupil(&pupil).await? {
            return Err(SchoolError::Taken {
                what: "pupil code",
                name: code,
            });
        }
        let view = pupil_view(&mut unit, pupil_row(&pupil)).await?;
        unit.commit().await?;
        Ok(view)
    }

    /// Reads a class roster (CSV) into the year's classes: new pupils are created, known ones
    /// in another class moved (from `joined_on`), all or nothing. A dry run does the
    /// same in a transaction it rolls back, so its counts are exactly what applying would do.
    pub async fn import_roster(
        &self,
        caller: &Caller,
        school_id: Uuid,
        query: RosterQuery,
        bytes: &[u8],
    ) -> Result<RosterSummary, RosterImportError> {
        let school = self.school(caller, school_id).await?;
        let apply = !query.dry_run.unwrap_or(true);
        let parsed = parse_roster(bytes);
        let mut errors = parsed.errors;
        let now = self.clock.now_micros();
        let today = self.today();
        let mut unit = self.store.begin().await?;
        let year = Self::year_of(&mut unit, school_id, query.year_id).await?;
        // A line without a date: a new pupil is in the class from the year's first day (the
        // roster is the year's class list, often imported after term began, and runs charge
        // the pupils in class when the run's period starts); a known pupil moves today, or
        // on the first day when the roster is for a year not yet begun.
        let (new_pupils_join, known_pupils_move) = (year.starts_on, today.max(year.starts_on));
        let classes: HashMap<String, Uuid> = unit
            .school_classes(school_id)
            .await?
            .into_iter()
            .filter(|c| c.year_id == query.year_id)
            .map(|c| (c.name.to_lowercase(), c.id))
            .collect();
        let mut summary = RosterSummary {
            rows: parsed.rows.len(),
            ..RosterSummary::default()
        };
        for row in &parsed.rows {
            let line_error = |field: &'static str, problem: String| LineError {
                line: row.line,
                field: Some(field),
                problem,
            };
            let Some(&class_id) = classes.get(&row.class_name.to_lowercase()) else {
                errors.push(line_error(
                    "class",
                    format!("{:?} is not a class of this school year", row.class_name),
                ));
                continue;
            };
            let household_id = match &row.household_code {
                Some(code) => match unit.household_id_by_code(code).await? {
                    Some(id) => Some(id),
                    None => {
                        errors.push(line_error(
                            "household_code",
                            format!("{code} is not a household of the registry"),
                        ));
                        continue;
                    }
                },
                None => None,
            };
            match unit.pupil_by_code(school_id, &row.pupil_code).await? {
                Some(pupil) => {
                    let joined_on = row.joined_on.unwrap_or(known_pupils_move);
                    let current = unit
                        .memberships(pupil.id)
                        .await?
                        .into_iter()
                        .rfind(|m| m.until_on.is_none());
                    if current.as_ref().is_some_and(|m| m.class_id == class_id) {
                        summary.unchanged += 1;
                        continue;
                    }
                    if current.is_some() && !unit.close_membership(pupil.id, joined_on).await? {
                        errors.push(line_error(
                            "joined_on",
                            "must be after the day the pupil joined the current class".into(),
                        ));
                        continue;
                    }
                    unit.open_membership(pupil.id, class_id, joined_on, now)
                        .await?;
                    summary.pupils_moved += 1;
                }
                None => {
                    let receivable_account_id = unit
                        .ensure_school_account(
                            &format!("school:{}:pupil:{}", school.code, row.pupil_code),
                            &format!("Phải thu học sinh {} ({})", row.full_name, row.pupil_code),
                            AccountKind::Asset,
                            now,
                        )
                        .await?;
                    unit.insert_pupil(&NewPupil {
                        id: self.clock.new_id(),
                        school_id,
                        code: &row.pupil_code,
                        full_name: &row.full_name,
                        household_id,
                        guardian_name: row.guardian_name.as_deref(),
                        guardian_phone: row.guardian_phone.as_deref(),
                        receivable_account_id,
                        class_id,
                        joined_on: row.joined_on.unwrap_or(new_pupils_join),
                        now,
                    })
                    .await?;
                    summary.pupils_created += 1;
                }
            }
        }
        if !errors.is_empty() {
            unit.rollback().await?;
            errors.sort_by_key(|e| e.line);
            let views = crate::services::registry::import::views(&errors);
            if apply {
                return Err(RosterImportError::Import(ImportError::Invalid {
                    count: errors.len(),
                    first: errors[0].to_string(),
                    errors: views,
                }));
            }
            return Ok(RosterSummary {
                rows: summary.rows,
                errors: views,
                ..RosterSummary::default()
            });
        }
        if apply {
            unit.commit().await?;
        } else {
            unit.rollback().await?;
        }
        summary.applied = apply;
        Ok(summary)
    }

    pub async fn pupil(
        &self,
        caller: &Caller,
        school_id: Uuid,
        pupil_id: Uuid,
    ) -> Result<PupilView, SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let pupil = Self::pupil_of(&mut unit, school_id, pupil_id).await?;
        let view = pupil_view(&mut unit, pupil).await?;
        unit.rollback().await?;
        Ok(view)
    }

    /// The school's pupils by code, a page at a time (the accountant's way to find a pupil's
    /// id for its statement, cash desk or QR).
    pub async fn pupils(
        &self,
        caller: &Caller,
        school_id: Uuid,
        query: PupilQuery,
    ) -> Result<PupilPage, SchoolError> {
        self.school(caller, school_id).await?;
        let limit = paging::limit(query.limit)?;
        let after = paging::read_cursor(query.cursor.as_deref(), |code| Some(code.to_owned()))?;
        let prefix = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
        let mut unit = self.store.school_snapshot().await?;
        if let Some(class_id) = query.class_id {
            Self::class_of(&mut unit, school_id, class_id).await?;
        }
        let rows = unit
            .school_pupils(school_id, query.class_id, prefix, after.as_deref(), limit)
            .await?;
        let mut data = Vec::with_capacity(rows.len());
        for row in rows {
            data.push(pupil_view(&mut unit, row).await?);
        }
        unit.rollback().await?;
        Ok(PupilPage {
            next_cursor: paging::next_cursor(&data, limit, |pupil| pupil.code.clone()),
            data,
        })
    }

    /// Moves the pupil to another class from `on`, or (no class) records that the pupil left
    /// the school on `on`. The old membership is closed, never rewritten.
    pub async fn move_pupil(
        &self,
        caller: &Caller,
        school_id: Uuid,
        pupil_id: Uuid,
        request: MovePupilRequest,
    ) -> Result<PupilView, SchoolError> {
        self.school(caller, school_id).await?;
        let now = self.clock.now_micros();
        let mut unit = self.store.begin().await?;
        let pupil = Self::pupil_of(&mut unit, school_id, pupil_id).await?;
        if let Some(class_id) = request.class_id {
            Self::class_of(&mut unit, school_id, class_id).await?;
        }
        if !unit.close_membership(pupil_id, request.on).await? {
            return Err(SchoolError::invalid(
                "the pupil is in no class before this day",
            ));
        }
        if let Some(class_id) = request.class_id {
            unit.open_membership(pupil_id, class_id, request.on, now)
                .await?;
        }
        let view = pupil_view(&mut unit, pupil).await?;
        unit.commit().await?;
        Ok(view)
    }

    pub async fn create_fee_item(
        &self,
        caller: &Caller,
        school_id: Uuid,
        request: NewFeeItemRequest,
    ) -> Result<FeeItemView, SchoolError> {
        self.school(caller, school_id).await?;
        let name = text("the fee item's name", &request.name, NAME_MAX_CHARS)?;
        let fund = Fund::parse(&request.fund).ok_or_else(|| {
            SchoolError::invalid("fund must be school, parents_association or pass_through")
        })?;
        let unit_of_fee = FeeUnit::parse(&request.unit)
            .ok_or_else(|| SchoolError::invalid("unit must be month, term, year or school_day"))?;
        if request.grade_amounts.is_empty() && request.class_amounts.is_empty() {
            return Err(SchoolError::invalid(
                "a fee item needs an amount for at least one grade or class",
            ));
        }
        let amounts_ok = request
            .grade_amounts
            .iter()
            .map(|g| g.amount)
            .chain(request.class_amounts.iter().map(|c| c.amount))
            .all(|amount| (0..=MAX_AMOUNT).contains(&amount));
        if !amounts_ok
            || request
                .grade_amounts
                .iter()
                .any(|g| !(1..=12).contains(&g.grade))
        {
            return Err(SchoolError::invalid(
                "amounts must be from 0 to 1,000,000,000,000 đồng and grades from 1 to 12",
            ));
        }
        let mut unit = self.store.begin().await?;
        Self::year_of(&mut unit, school_id, request.year_id).await?;
        for class in &request.class_amounts {
            Self::class_of(&mut unit, school_id, class.class_id).await?;
        }
        let mut grades: Vec<(i32, i64)> = request
            .grade_amounts
            .iter()
            .map(|g| (g.grade, g.amount))
            .collect();
        let mut classes: Vec<(Uuid, i64)> = request
            .class_amounts
            .iter()
            .map(|c| (c.class_id, c.amount))
            .collect();
        grades.sort();
        classes.sort();
        if grades.windows(2).any(|w| w[0].0 == w[1].0)
            || classes.windows(2).any(|w| w[0].0 == w[1].0)
        {
            return Err(SchoolError::invalid(
                "give each grade and each class one amount only",
            ));
        }
        let item = FeeItemRow {
            id: self.clock.new_id(),
            school_id,
            year_id: request.year_id,
            name,
            fund: fund.as_str().to_owned(),
            mandatory: request.mandatory,
            unit: unit_of_fee.as_str().to_owned(),
        };
        if !unit
            .insert_fee_item(&item, &grades, &classes, self.clock.now_micros())
            .await?
        {
            return Err(SchoolError::Taken {
                what: "fee item",
                name: item.name,
            });
        }
        unit.commit().await?;
        Ok(fee_item_view(item))
    }

    pub async fn list_fee_items(
        &self,
        caller: &Caller,
        school_id: Uuid,
    ) -> Result<FeeItemList, SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let items = unit.fee_items(school_id).await?;
        unit.rollback().await?;
        Ok(FeeItemList {
            data: items.into_iter().map(fee_item_view).collect(),
        })
    }

    /// Enrols pupils in an optional item (enrolling twice changes nothing).
    pub async fn enrol(
        &self,
        caller: &Caller,
        school_id: Uuid,
        item_id: Uuid,
        request: EnrolRequest,
    ) -> Result<EnrolView, SchoolError> {
        self.school(caller, school_id).await?;
        let now = self.clock.now_micros();
        let mut unit = self.store.begin().await?;
        let item = Self::fee_item_of(&mut unit, school_id, item_id).await?;
        if item.mandatory {
            return Err(SchoolError::invalid(
                "a mandatory item applies to every pupil: only optional items take enrolments",
            ));
        }
        for pupil in &request.pupil_ids {
            Self::pupil_of(&mut unit, school_id, *pupil).await?;
            unit.enrol(item_id, *pupil, now).await?;
        }
        unit.commit().await?;
        Ok(EnrolView {
            fee_item_id: item_id,
            enrolled: request.pupil_ids.len(),
        })
    }

    pub async fn create_exemption(
        &self,
        caller: &Caller,
        school_id: Uuid,
        request: NewExemptionRequest,
    ) -> Result<ExemptionView, SchoolError> {
        self.school(caller, school_id).await?;
        let reduction = match (request.percent, request.amount) {
            (Some(percent), None) if (1..=100).contains(&percent) => {
                Reduction::Percent(percent as u8)
            }
            (None, Some(amount)) if (1..=MAX_AMOUNT).contains(&amount) => Reduction::Fixed(amount),
            _ => {
                return Err(SchoolError::invalid(
                    "a reduction takes exactly one of percent (1 to 100) or amount (more than 0)",
                ))
            }
        };
        let category = text("category", &request.category, NAME_MAX_CHARS)?;
        let note = request
            .note
            .as_deref()
            .map(|note| text("note", note, 500))
            .transpose()?;
        let now = self.clock.now_micros();
        let mut unit = self.store.begin().await?;
        Self::pupil_of(&mut unit, school_id, request.pupil_id).await?;
        let item = Self::fee_item_of(&mut unit, school_id, request.fee_item_id).await?;
        if !unit
            .insert_exemption(
                self.clock.new_id(),
                (request.pupil_id, request.fee_item_id),
                reduction,
                (&category, note.as_deref()),
                &caller.username,
                now,
            )
            .await?
        {
            return Err(SchoolError::Taken {
                what: "reduction of fee item",
                name: item.name,
            });
        }
        unit.commit().await?;
        Ok(ExemptionView {
            pupil_id: request.pupil_id,
            fee_item_id: item.id,
            fee_item_name: item.name,
            percent: request.percent,
            amount: request.amount,
            category,
            note,
            approved_by: caller.username.clone(),
            approved_at: to_rfc3339(now),
        })
    }

    pub async fn create_run(
        &self,
        caller: &Caller,
        school_id: Uuid,
        request: NewRunRequest,
    ) -> Result<RunView, SchoolError> {
        self.school(caller, school_id).await?;
        let name = text("the run's name", &request.name, NAME_MAX_CHARS)?;
        if request
            .school_days
            .is_some_and(|days| !(1..=366).contains(&days))
        {
            return Err(SchoolError::invalid("school_days must be from 1 to 366"));
        }
        let mut items = request.fee_item_ids.clone();
        items.sort();
        items.dedup();
        if items.is_empty() {
            return Err(SchoolError::invalid("a run needs at least one fee item"));
        }
        let mut unit = self.store.begin().await?;
        Self::year_of(&mut unit, school_id, request.year_id).await?;
        for id in &items {
            let item = Self::fee_item_of(&mut unit, school_id, *id).await?;
            if item.year_id != request.year_id {
                return Err(SchoolError::invalid(format!(
                    "fee item \"{}\" belongs to another school year",
                    item.name
                )));
            }
            if item.unit == FeeUnit::SchoolDay.as_str() && request.school_days.is_none() {
                return Err(crate::domain::schools::RunError::SchoolDaysRequired(item.name).into());
            }
        }
        let run = RunRow {
            id: self.clock.new_id(),
            school_id,
            year_id: request.year_id,
            name,
            due_on: request.due_on,
            school_days: request.school_days,
            posted_at: None,
            reversed_at: None,
        };
        if !unit
            .insert_run(&run, &items, self.clock.now_micros())
            .await?
        {
            return Err(SchoolError::Taken {
                what: "run",
                name: run.name,
            });
        }
        unit.commit().await?;
        Ok(run_view(&run))
    }

    pub async fn list_runs(
        &self,
        caller: &Caller,
        school_id: Uuid,
    ) -> Result<RunList, SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let runs = unit.runs(school_id).await?;
        unit.rollback().await?;
        Ok(RunList {
            data: runs.iter().map(run_view).collect(),
        })
    }

    /// Every pupil's charges for the run, computed and not posted.
    pub async fn preview_run(
        &self,
        caller: &Caller,
        school_id: Uuid,
        run_id: Uuid,
    ) -> Result<RunPreview, SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let run = Self::run_of(&mut unit, school_id, run_id, false).await?;
        let charges = if run.posted_at.is_some() {
            unit.run_charges(run_id)
                .await?
                .into_iter()
                .map(|c| ChargeView {
                    pupil_id: c.pupil_id,
                    class_id: c.class_id,
                    fee_item_id: c.fee_item_id,
                    fund: c.fund,
                    mandatory: c.mandatory,
                    gross: c.gross,
                    exemption: c.exemption,
                    amount: c.amount,
                })
                .collect()
        } else {
            let (_, lines) = run_lines(&mut unit, &run).await?;
            lines.iter().map(charge_view).collect::<Vec<_>>()
        };
        unit.rollback().await?;
        let mut pupils: Vec<Uuid> = charges.iter().map(|c| c.pupil_id).collect();
        pupils.dedup();
        Ok(RunPreview {
            run: run_view(&run),
            pupils: pupils.len(),
            total: charges.iter().map(|c| c.amount).sum(),
            charges,
        })
    }

    /// Posts the run: every pupil's charges as receivables, credit the pupils had used on
    /// them, one VietQR intent per pupil still owing; all in one database transaction.
    /// Posting a posted run changes nothing and answers the same.
    pub async fn post_run(
        &self,
        caller: &Caller,
        school_id: Uuid,
        run_id: Uuid,
    ) -> Result<PostedRun, SchoolError> {
        let school = self.school(caller, school_id).await?;
        let now = self.clock.now_micros();
        let mut unit = self.store.begin().await?;
        serialize_school(&mut unit, school_id).await?;
        let run = Self::run_of(&mut unit, school_id, run_id, true).await?;
        if run.posted_at.is_some() {
            let posted = posted_run(&mut unit, &run).await?;
            unit.rollback().await?;
            return Ok(posted);
        }
        let accounts = SchoolAccounts::ensure(&mut unit, &school.code, now).await?;
        let (pupils, lines) = run_lines(&mut unit, &run).await?;
        let mut by_pupil: Vec<(&PupilRow, Vec<&crate::domain::schools::ChargeLine>)> = Vec::new();
        for pupil in &pupils {
            let mine: Vec<_> = lines.iter().filter(|l| l.pupil_id == pupil.id).collect();
            if !mine.is_empty() {
                by_pupil.push((pupil, mine));
            }
        }
        let mut transactions = Vec::with_capacity(by_pupil.len());
        let mut charges = Vec::with_capacity(lines.len());
        for (pupil, mine) in &by_pupil {
            let total: i64 = mine.iter().map(|l| l.amount).sum();
            let transaction_id = self.clock.new_id();
            let description = format!("{}: khoản thu của học sinh {}", run.name, pupil.code);
            transactions.push(
                school_transaction(
                    transaction_id,
                    &description,
                    &[(pupil.receivable_account_id, accounts.uncollected, total)],
                    now,
                )
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
            charges.extend(mine.iter().map(|line| NewCharge {
                id: self.clock.new_id(),
                run_id,
                pupil_id: line.pupil_id,
                class_id: line.class_id,
                fee_item_id: line.fee_item_id,
                gross: line.gross,
                exemption: line.exemption,
                amount: line.amount,
                ledger_transaction_id: transaction_id,
            }));
        }
        if !transactions.is_empty() && !unit.post_all(&transactions, SCHOOL_USER_ID).await? {
            return Err(StoreError::Corrupt("a run's postings did not fit".into()).into());
        }
        unit.insert_charges(&charges, now).await?;
        let run_charge_ids: std::collections::HashSet<Uuid> =
            charges.iter().map(|c| c.id).collect();
        for (pupil, _) in &by_pupil {
            settle_pupil(&mut unit, &self.clock, &accounts, pupil, None, true).await?;
            let owing: i64 = unit
                .lock_open_charges(pupil.id)
                .await?
                .iter()
                .filter(|c| run_charge_ids.contains(&c.id))
                .map(|c| c.outstanding)
                .sum();
            if owing > 0 {
                let description = corrections::pupil_intent_description(&run, pupil);
                let intent = insert_school_intent(
                    &mut unit,
                    &self.clock,
                    &school,
                    (owing, &description),
                    caller.user_id,
                    pupil.household_id,
                )
                .await?;
                unit.insert_run_intent(run_id, pupil.id, intent.id).await?;
            }
        }
        unit.mark_run_posted(run_id, now).await?;
        let posted = posted_run(
            &mut unit,
            &RunRow {
                posted_at: Some(now),
                ..run
            },
        )
        .await?;
        unit.commit().await?;
        metrics::counter!("school_run_charges_posted_total").increment(charges.len() as u64);
        Ok(posted)
    }

    /// One QR for a household: the sum of the open charges of every pupil naming it, at every
    /// school. The schools owing must collect into one bank account (the QR can name only
    /// one); the QR names the school whose charge the split rule pays first, and its payer is
    /// the household. Money arriving on it is split as `settle_household` says.
    pub async fn household_payment_request(
        &self,
        caller: &Caller,
        household_id: Uuid,
    ) -> Result<HouseholdPaymentView, SchoolError> {
        if caller.role.is_payee_bound() {
            return Err(SchoolError::HouseholdNotFound(household_id));
        }
        let mut unit = self.store.school_snapshot().await?;
        let household_code = unit
            .household_code(household_id)
            .await?
            .ok_or(SchoolError::HouseholdNotFound(household_id))?;
        let mut owing = Vec::new();
        for p in unit.household_pupils(household_id).await? {
            let open = unit.pupil_open_charges(p.pupil.id).await?;
            if !open.is_empty() {
                owing.push((p, open));
            }
        }
        unit.rollback().await?;
        let accounts: std::collections::BTreeSet<Uuid> =
            owing.iter().map(|(p, _)| p.collection_account_id).collect();
        if accounts.len() > 1 {
            return Err(SchoolError::HouseholdSchoolsCollectApart);
        }
        let all: Vec<_> = owing.iter().flat_map(|(_, open)| open.clone()).collect();
        let total: i64 = all.iter().map(|c| c.outstanding).sum();
        let (order, _) = allocate(&all, total);
        let Some((first_charge, _)) = order.first() else {
            return Err(SchoolError::HouseholdNothingOwing);
        };
        let (lead, _) = owing
            .iter()
            .find(|(_, open)| open.iter().any(|c| c.id == *first_charge))
            .expect("every charge belongs to a pupil");
        let school = self
            .store
            .payee(lead.pupil.school_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("pupil {} has no school", lead.pupil.id)))?;
        let mut unit = self.store.begin().await?;
        let intent = insert_school_intent(
            &mut unit,
            &self.clock,
            &school,
            (total, &format!("Các khoản thu của hộ {household_code}")),
            caller.user_id,
            Some(household_id),
        )
        .await?;
        unit.insert_household_intent(intent.id, household_id, intent.created_at)
            .await?;
        unit.commit().await?;
        Ok(HouseholdPaymentView {
            intent_id: intent.id,
            household_id,
            payee_id: intent.payee_id,
            reference: intent.reference,
            amount: intent.amount,
            qr_payload: intent.qr_payload,
            expires_at: to_rfc3339(intent.expires_at),
            lines: owing
                .into_iter()
                .map(|(p, open)| HouseholdPupilOwing {
                    school_id: p.pupil.school_id,
                    pupil_id: p.pupil.id,
                    pupil_code: p.pupil.code,
                    full_name: p.pupil.full_name,
                    owing: open.iter().map(|c| c.outstanding).sum(),
                })
                .collect(),
        })
    }

    /// Who paid a run, all, partly or not, with totals; of one class or the whole run.
    pub async fn run_status(
        &self,
        caller: &Caller,
        school_id: Uuid,
        run_id: Uuid,
        query: StatusQuery,
    ) -> Result<RunStatus, SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let run = Self::run_of(&mut unit, school_id, run_id, false).await?;
        if let Some(class_id) = query.class_id {
            Self::class_of(&mut unit, school_id, class_id).await?;
        }
        let totals = unit.run_totals(run_id, query.class_id).await?;
        unit.rollback().await?;
        let data: Vec<PupilStatus> = totals
            .into_iter()
            .map(|t| PupilStatus {
                status: if t.reversed {
                    "reversed".to_owned()
                } else {
                    PaidState::of(t.charged, t.paid).as_str().to_owned()
                },
                owing: t.charged - t.paid,
                pupil_id: t.pupil_id,
                code: t.code,
                full_name: t.full_name,
                class_id: t.class_id,
                charged: t.charged,
                paid: t.paid,
            })
            .collect();
        let count = |state: PaidState| data.iter().filter(|p| p.status == state.as_str()).count();
        let charged_total: i64 = data.iter().map(|p| p.charged).sum();
        let paid_total: i64 = data.iter().map(|p| p.paid).sum();
        Ok(RunStatus {
            run_id,
            class_id: query.class_id,
            pupils: data.len(),
            paid: count(PaidState::Paid),
            partly_paid: count(PaidState::Partly),
            unpaid: count(PaidState::Unpaid),
            reversed: data.iter().filter(|p| p.status == "reversed").count(),
            run_state: match (run.posted_at, run.reversed_at) {
                (_, Some(_)) => "reversed",
                (Some(_), None) => "posted",
                (None, None) => "not_posted",
            }
            .to_owned(),
            charged_total,
            paid_total,
            owing_total: charged_total - paid_total,
            paid_percent: percent_text(paid_total, charged_total),
            data,
        })
    }

    pub async fn statement(
        &self,
        caller: &Caller,
        school_id: Uuid,
        pupil_id: Uuid,
    ) -> Result<PupilStatement, SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let pupil = Self::pupil_of(&mut unit, school_id, pupil_id).await?;
        let statement = statement_of(&mut unit, pupil).await?;
        unit.rollback().await?;
        Ok(statement)
    }

    /// The balances of the school's funds, its uncollected charges and its cash on hand, as
    /// the ledger has them.
    pub async fn balances(
        &self,
        caller: &Caller,
        school_id: Uuid,
    ) -> Result<SchoolBalances, SchoolError> {
        let school = self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let mut funds = Vec::new();
        for fund in Fund::ALL {
            let code = fund_code(&school.code, fund);
            funds.push(FundBalance {
                fund: fund.as_str().to_owned(),
                balance: -unit.debit_balance_of_code(&code).await?,
                account_code: code,
            });
        }
        let uncollected = -unit
            .debit_balance_of_code(&format!("school:{}:uncollected", school.code))
            .await?;
        let cash_on_hand = unit
            .debit_balance_of_code(&format!("school:{}:cash", school.code))
            .await?;
        unit.rollback().await?;
        Ok(SchoolBalances {
            funds,
            uncollected,
            cash_on_hand,
        })
    }

    /// Records cash taken at the school's desk for a pupil, once per idempotency key: a
    /// receipt with the school year's next number, the posting to the school's cash account and
    /// the charges it pays, in one database transaction.
    pub async fn record_cash(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        school_id: Uuid,
        request: CashRequest,
    ) -> Result<Reply, SchoolError> {
        again_after_deadlock(|| {
            self.record_cash_once(caller, claim.clone(), school_id, request.clone())
        })
        .await
    }

    /// One attempt of [`Self::record_cash`].
    async fn record_cash_once(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        school_id: Uuid,
        request: CashRequest,
    ) -> Result<Reply, SchoolError> {
        if !(1..=MAX_AMOUNT).contains(&request.amount) {
            return Err(SchoolError::invalid(
                "amount must be from 1 to 1,000,000,000,000 đồng",
            ));
        }
        let payer_name = text("payer_name", &request.payer_name, NAME_MAX_CHARS)?;
        if let Some(reply) = crate::services::earlier_answer(self.store.as_ref(), &claim).await? {
            return Ok(reply);
        }
        let school = self.school(caller, school_id).await?;
        let now = self.clock.now_micros();
        let mut unit = self.store.begin().await?;
        if let Some(earlier) = unit.claim_key(&claim, None, now).await? {
            unit.rollback().await?;
            return Ok(Reply::replay(earlier?));
        }
        // The cash renews the pupil's open QR codes (below).
        hold_open_run_intents(
            &mut unit,
            RunIntentsOf::Pupils(vec![(school_id, request.pupil_id)]),
            now,
        )
        .await?;
        serialize_school(&mut unit, school_id).await?;
        let pupil = Self::pupil_of(&mut unit, school_id, request.pupil_id).await?;
        let year_id = current_year(&mut unit, &pupil, self.today()).await?;
        let accounts = SchoolAccounts::ensure(&mut unit, &school.code, now).await?;
        let number = unit.next_receipt_number(school_id, year_id).await?;
        let receipt_id = self.clock.new_id();
        let money = Money {
            source_account: accounts.cash,
            amount: request.amount,
            cash: true,
            bank_transaction_id: None,
            receipt_id: Some(receipt_id),
        };
        let description = format!("Biên lai số {number}: tiền mặt của học sinh {}", pupil.code);
        let received = Some((money, description));
        let payment_id = settle_pupil(&mut unit, &self.clock, &accounts, &pupil, received, true)
            .await?
            .ok_or_else(|| StoreError::Corrupt("cash recorded no payment".into()))?;
        corrections::refresh_open_run_intents(&mut unit, &self.clock, &pupil).await?;
        let receipt = ReceiptRow {
            id: receipt_id,
            school_id,
            year_id,
            number,
            pupil_id: pupil.id,
            payer_name,
            amount: request.amount,
            payment_id,
            created_by: caller.username.clone(),
            created_at: now,
            cancelled_at: None,
            cancelled_by: None,
            cancel_reason: None,
        };
        unit.insert_receipt(&receipt).await?;
        let response = StoredResponse {
            status: 201,
            body: serde_json::to_string(&receipt_view(&receipt)).expect("views serialize"),
        };
        unit.store_key_response(&claim, &response).await?;
        unit.commit().await?;
        Ok(Reply {
            status: response.status,
            body: response.body,
            replayed: false,
        })
    }

    async fn visible_receipt(
        &self,
        caller: &Caller,
        school_id: Uuid,
        receipt_id: Uuid,
    ) -> Result<(Payee, ReceiptRow, PupilRow), SchoolError> {
        let school = self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let receipt = match unit.receipt(receipt_id, false).await? {
            Some(receipt) if receipt.school_id == school_id => receipt,
            _ => {
                return Err(SchoolError::NotFound {
                    what: "receipt",
                    id: receipt_id,
                })
            }
        };
        let pupil = Self::pupil_of(&mut unit, school_id, receipt.pupil_id).await?;
        unit.rollback().await?;
        Ok((school, receipt, pupil))
    }

    pub async fn receipt(
        &self,
        caller: &Caller,
        school_id: Uuid,
        receipt_id: Uuid,
    ) -> Result<ReceiptView, SchoolError> {
        let (_, receipt, _) = self.visible_receipt(caller, school_id, receipt_id).await?;
        Ok(receipt_view(&receipt))
    }

    /// The receipt as a printable HTML page in Vietnamese.
    pub async fn receipt_html(
        &self,
        caller: &Caller,
        school_id: Uuid,
        receipt_id: Uuid,
    ) -> Result<String, SchoolError> {
        let (school, receipt, pupil) = self.visible_receipt(caller, school_id, receipt_id).await?;
        Ok(receipt_html::render(&school, &receipt, &pupil))
    }

    /// Cancels a receipt: it keeps its number and shows as cancelled; the cash and what it
    /// paid are taken back in one correcting ledger transaction. Cancelling again answers the
    /// same and changes nothing.
    pub async fn cancel_receipt(
        &self,
        caller: &Caller,
        school_id: Uuid,
        receipt_id: Uuid,
        request: CancelReceiptRequest,
    ) -> Result<ReceiptView, SchoolError> {
        let reason = text("reason", &request.reason, 500)?;
        let school = self.school(caller, school_id).await?;
        let now = self.clock.now_micros();
        let mut unit = self.store.begin().await?;
        serialize_school(&mut unit, school_id).await?;
        let mut receipt = match unit.receipt(receipt_id, true).await? {
            Some(receipt) if receipt.school_id == school_id => receipt,
            _ => {
                return Err(SchoolError::NotFound {
                    what: "receipt",
                    id: receipt_id,
                })
            }
        };
        if receipt.cancelled_at.is_some() {
            unit.rollback().await?;
            return Ok(receipt_view(&receipt));
        }
        let pupil = Self::pupil_of(&mut unit, school_id, receipt.pupil_id).await?;
        let accounts = SchoolAccounts::ensure(&mut unit, &school.code, now).await?;
        let mut legs = vec![(pupil.receivable_account_id, accounts.cash, receipt.amount)];
        for (fund, amount) in unit.payment_allocations_by_fund(receipt.payment_id).await? {
            let fund =
                Fund::parse(&fund).ok_or_else(|| StoreError::Corrupt(format!("fund {fund:?}")))?;
            legs.push((accounts.fund(fund), accounts.uncollected, amount));
        }
        let transaction_id = self.clock.new_id();
        let description = format!("Hủy biên lai số {}: {reason}", receipt.number);
        post_school_transaction(&mut unit, transaction_id, &description, &legs, now, true).await?;
        unit.cancel_payment(receipt.payment_id, now).await?;
        unit.mark_receipt_cancelled(receipt_id, (&caller.username, &reason), transaction_id, now)
            .await?;
        let receipt_state = |cancelled: bool| {
            serde_json::json!({
                "school_id": school_id, "number": receipt.number, "pupil_id": receipt.pupil_id,
                "amount": receipt.amount.to_string(), "cancelled": cancelled,
            })
        };
        let mut after = receipt_state(true);
        after["reason"] = reason.clone().into();
        after["ledger_transaction_id"] = transaction_id.to_string().into();
        unit.append_audit(&crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::SchoolReceiptCancel,
            receipt_id,
            Some(receipt_state(false)),
            Some(after),
        ))
        .await?;
        unit.commit().await?;
        receipt.cancelled_at = Some(now);
        receipt.cancelled_by = Some(caller.username.clone());
        receipt.cancel_reason = Some(reason);
        Ok(receipt_view(&receipt))
    }

    /// A read-only link for a pupil's parents: a random 256-bit token, shown once; only its
    /// SHA-256 is stored.
    pub async fn create_parent_link(
        &self,
        caller: &Caller,
        school_id: Uuid,
        request: NewParentLinkRequest,
    ) -> Result<ParentLinkView, SchoolError> {
        self.school(caller, school_id).await?;
        let token = new_token();
        let id = self.clock.new_id();
        let mut unit = self.store.begin().await?;
        Self::pupil_of(&mut unit, school_id, request.pupil_id).await?;
        unit.insert_parent_link(
            id,
            (school_id, request.pupil_id),
            &token_hash(&token),
            self.clock.now_micros(),
        )
        .await?;
        // The token is a credential: the trail names the link and pupil, never the token.
        let after = serde_json::json!({ "school_id": school_id, "pupil_id": request.pupil_id });
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
        Ok(ParentLinkView {
            id,
            pupil_id: request.pupil_id,
            token,
        })
    }

    pub async fn revoke_parent_link(
        &self,
        caller: &Caller,
        school_id: Uuid,
        link_id: Uuid,
    ) -> Result<(), SchoolError> {
        self.revoke_link(
            caller,
            school_id,
            (crate::store::school_corrections::LinkKind::Pupil, link_id),
        )
        .await
    }

    /// What a parent's link shows: the pupil's open charges, nothing else.
    pub async fn parent_view(&self, token: &str) -> Result<ParentView, SchoolError> {
        let mut unit = self.store.school_snapshot().await?;
        let Some(pupil_id) = unit.parent_link_pupil(&token_hash(token)).await? else {
            return Err(SchoolError::LinkNotFound);
        };
        let pupil = unit
            .pupil(pupil_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("link names no pupil {pupil_id}")))?;
        let charges = unit.pupil_charges(pupil_id).await?;
        let credit = unit.pupil_credit(pupil_id).await?;
        let household_payment = match pupil.household_id {
            Some(household) => unit
                .open_household_intent(household, self.clock.now_micros())
                .await?
                .map(household_qr_view),
            None => None,
        };
        unit.rollback().await?;
        let school = self
            .store
            .payee(pupil.school_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("pupil {pupil_id} has no school")))?;
        let open_charges = parent_open_charges(charges);
        Ok(ParentView {
            school_name: school.details.name,
            pupil_name: pupil.full_name,
            owing_total: open_charges.iter().map(|c| c.owing).sum(),
            open_charges,
            credit,
            household_payment,
        })
    }
}

/// A pending VietQR intent of `amount` into the school's collection account, naming the
/// household as payer when known; a reference already taken is drawn again. An amount no QR
/// can carry (more than 13 digits) is refused with what it was for, before anything is kept.
pub(super) async fn insert_school_intent(
    unit: &mut UnitOfWork<'_>,
    clock: &Clock,
    school: &Payee,
    (amount, description): (i64, &str),
    created_by: Uuid,
    household_id: Option<Uuid>,
) -> Result<PaymentIntent, SchoolError> {
    if amount > crate::domain::vietqr::MAX_QR_AMOUNT {
        return Err(SchoolError::AmountBeyondQr {
            for_whom: description.to_owned(),
            amount,
        });
    }
    let description: String = description.chars().take(200).collect();
    let now = clock.now_micros();
    let expires_at = now + i64::from(MAX_EXPIRES_IN_SECONDS) * 1_000_000;
    for _ in 0..MAX_DRAWS {
        let intent = draft_intent(
            clock,
            school,
            (amount, Some(description.clone())),
            (now, expires_at),
            created_by,
            (None, household_id),
        )
        .map_err(|e| StoreError::Corrupt(format!("school {}: {e}", school.id)))?;
        if unit.insert_intent(&intent).await? {
            return Ok(intent);
        }
    }
    Err(StoreError::WriteConflict.into())
}

/// A parent link's token: 256 random bits in hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A household QR as a parent's page shows it.
fn household_qr_view(qr: crate::store::schools::OpenHouseholdIntentRow) -> HouseholdQrView {
    HouseholdQrView {
        reference: qr.reference,
        amount: qr.amount,
        remaining: (qr.amount - qr.paid_amount).max(0),
        qr_payload: qr.qr_payload,
    }
}

/// The charges that still owe something, as a parent's page shows them.
fn parent_open_charges(charges: Vec<crate::store::schools::ChargeRow>) -> Vec<ParentOpenCharge> {
    charges
        .into_iter()
        .filter(|c| c.reversed_at.is_none() && c.paid < c.amount)
        .map(|c| ParentOpenCharge {
            run_name: c.run_name,
            fee_item_name: c.item_name,
            due_on: c.due_on,
            owing: c.amount - c.paid,
        })
        .collect()
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Trimmed text of 1 to `max` characters.
fn text(field: &str, value: &str, max: usize) -> Result<String, SchoolError> {
    bounded_text("text", value, max)
        .map_err(|_| SchoolError::invalid(format!("{field} must have 1 to {max} characters")))
}

/// A pupil code that fits the pupil's ledger account code.
fn pupil_code(value: &str) -> Result<String, SchoolError> {
    parse_pupil_code(value)
        .map_err(|problem| SchoolError::invalid(format!("the pupil code {problem}")))
}

/// The pupils charged by a run (in classes of its year on its due day) and their lines.
async fn run_lines(
    unit: &mut UnitOfWork<'_>,
    run: &RunRow,
) -> Result<(Vec<PupilRow>, Vec<crate::domain::schools::ChargeLine>), SchoolError> {
    let items = unit.run_items(run.id).await?;
    let pupils = unit.run_pupils(run.year_id, run.due_on).await?;
    let facts: Vec<_> = pupils.iter().map(|(_, f)| f.clone()).collect();
    let days = run.school_days.map(|d| d.max(0) as u32);
    let lines = compute_charges(&facts, &items, days)?;
    Ok((pupils.into_iter().map(|(row, _)| row).collect(), lines))
}

async fn posted_run(unit: &mut UnitOfWork<'_>, run: &RunRow) -> Result<PostedRun, SchoolError> {
    let charges = unit.run_charges(run.id).await?;
    let mut intents: Vec<PupilIntentView> = unit
        .run_intents(run.id)
        .await?
        .into_iter()
        .map(|(intent_id, pupil_id)| PupilIntentView {
            pupil_id,
            intent_id,
        })
        .collect();
    intents.sort_by_key(|i| i.pupil_id);
    Ok(PostedRun {
        run: run_view(run),
        charges: charges.len(),
        total: charges.iter().map(|c| c.amount).sum(),
        intents,
    })
}

/// The school year a cash receipt is numbered in: the year of the pupil's class today, or of
/// the pupil's latest class.
async fn current_year(
    unit: &mut UnitOfWork<'_>,
    pupil: &PupilRow,
    today: NaiveDate,
) -> Result<Uuid, SchoolError> {
    let memberships = unit.memberships(pupil.id).await?;
    let class = memberships
        .iter()
        .rev()
        .find(|m| m.from_on <= today && m.until_on.is_none_or(|until| until > today))
        .or(memberships.last())
        .ok_or_else(|| StoreError::Corrupt(format!("pupil {} has no class", pupil.id)))?;
    let class = unit
        .school_class(class.class_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("membership without class".into()))?;
    Ok(class.year_id)
}

async fn statement_of(
    unit: &mut UnitOfWork<'_>,
    pupil: PupilRow,
) -> Result<PupilStatement, SchoolError> {
    let charges = unit.pupil_charges(pupil.id).await?;
    let payments = unit.pupil_payments(pupil.id).await?;
    let exemptions = unit.pupil_exemptions(pupil.id).await?;
    let balance = unit.debit_balance(pupil.receivable_account_id).await?;
    let credit = unit.pupil_credit(pupil.id).await?;
    let corrections = unit.pupil_corrections(pupil.id).await?;
    let charged_total = charges
        .iter()
        .filter(|c| c.reversed_at.is_none())
        .map(|c| c.amount)
        .sum();
    let paid_total = payments
        .iter()
        .filter(|p| p.cancelled_at.is_none())
        .map(|p| p.amount)
        .sum();
    Ok(PupilStatement {
        charges: charges
            .into_iter()
            .map(|c| StatementCharge {
                run_id: c.run_id,
                run_name: c.run_name,
                due_on: c.due_on,
                fee_item_id: c.fee_item_id,
                fee_item_name: c.item_name,
                fund: c.fund,
                gross: c.gross,
                exemption: c.exemption,
                amount: if c.reversed_at.is_some() { 0 } else { c.amount },
                paid: c.paid,
                reversed: c.reversed_at.is_some(),
            })
            .collect(),
        payments: payments
            .into_iter()
            .map(|p| StatementPayment {
                id: p.id,
                method: p.method,
                amount: p.amount,
                at: to_rfc3339(p.created_at),
                receipt_id: p.receipt_id,
                cancelled: p.cancelled_at.is_some(),
            })
            .collect(),
        exemptions: exemptions
            .into_iter()
            .map(
                |(item, name, percent, amount, category, note, by, at)| ExemptionView {
                    pupil_id: pupil.id,
                    fee_item_id: item,
                    fee_item_name: name,
                    percent,
                    amount,
                    category,
                    note,
                    approved_by: by,
                    approved_at: to_rfc3339(at),
                },
            )
            .collect(),
        corrections: corrections
            .into_iter()
            .map(corrections::correction_view)
            .collect(),
        charged_total,
        paid_total,
        balance,
        credit,
        pupil: pupil_view(unit, pupil).await?,
    })
}

async fn pupil_view(unit: &mut UnitOfWork<'_>, pupil: PupilRow) -> Result<PupilView, SchoolError> {
    let classes = unit
        .memberships(pupil.id)
        .await?
        .into_iter()
        .map(|m| MembershipView {
            class_id: m.class_id,
            class_name: m.class_name,
            from_on: m.from_on,
            until_on: m.until_on,
        })
        .collect();
    Ok(PupilView {
        id: pupil.id,
        school_id: pupil.school_id,
        code: pupil.code,
        full_name: pupil.full_name,
        household_id: pupil.household_id,
        guardian_name: pupil.guardian_name,
        guardian_phone: pupil.guardian_phone,
        classes,
    })
}

fn pupil_row(pupil: &NewPupil<'_>) -> PupilRow {
    PupilRow {
        id: pupil.id,
        school_id: pupil.school_id,
        code: pupil.code.to_owned(),
        full_name: pupil.full_name.to_owned(),
        household_id: pupil.household_id,
        guardian_name: pupil.guardian_name.map(str::to_owned),
        guardian_phone: pupil.guardian_phone.map(str::to_owned),
        receivable_account_id: pupil.receivable_account_id,
    }
}

fn year_view(year: YearRow) -> YearView {
    YearView {
        id: year.id,
        school_id: year.school_id,
        name: year.name,
        starts_on: year.starts_on,
        ends_on: year.ends_on,
    }
}

fn class_view(class: ClassRow) -> ClassView {
    ClassView {
        id: class.id,
        year_id: class.year_id,
        grade: class.grade,
        name: class.name,
    }
}

fn fee_item_view(item: FeeItemRow) -> FeeItemView {
    FeeItemView {
        id: item.id,
        year_id: item.year_id,
        name: item.name,
        fund: item.fund,
        mandatory: item.mandatory,
        unit: item.unit,
    }
}

fn run_view(run: &RunRow) -> RunView {
    RunView {
        id: run.id,
        year_id: run.year_id,
        name: run.name.clone(),
        due_on: run.due_on,
        school_days: run.school_days,
        posted_at: run.posted_at.map(to_rfc3339),
        reversed_at: run.reversed_at.map(to_rfc3339),
    }
}

fn charge_view(line: &crate::domain::schools::ChargeLine) -> ChargeView {
    ChargeView {
        pupil_id: line.pupil_id,
        class_id: line.class_id,
        fee_item_id: line.fee_item_id,
        fund: line.fund.as_str().to_owned(),
        mandatory: line.mandatory,
        gross: line.gross,
        exemption: line.exemption,
        amount: line.amount,
    }
}

fn receipt_view(receipt: &ReceiptRow) -> ReceiptView {
    ReceiptView {
        id: receipt.id,
        school_id: receipt.school_id,
        year_id: receipt.year_id,
        number: receipt.number,
        pupil_id: receipt.pupil_id,
        payer_name: receipt.payer_name.clone(),
        amount: receipt.amount,
        payment_id: receipt.payment_id,
        created_by: receipt.created_by.clone(),
        created_at: to_rfc3339(receipt.created_at),
        cancelled: receipt.cancelled_at.is_some(),
        cancelled_at: receipt.cancelled_at.map(to_rfc3339),
        cancel_reason: receipt.cancel_reason.clone(),
    }
}
