//! School fee collection: what a collection run charges each pupil, and how money received for
//! a pupil is split across the pupil's open charges. Pure decisions, no I/O.
//!
//! Ledger accounts of a school with payee code `C` (created on first use):
//! - `school:C:pupil:<pupil code>` (asset): what the pupil owes; a negative balance is credit.
//! - `school:C:uncollected` (liability): charges posted and not yet paid, the other side of
//!   the pupils' receivables.
//! - `school:C:fund:school`, `school:C:fund:parents_association`, `school:C:fund:pass_through`
//!   (liabilities): money collected for each fund, kept apart.
//! - `school:C:cash` (asset): cash taken at the school's desk, on hand.
//!
//! Posting a run: debit each pupil's receivable, credit uncollected. Receiving money: debit the
//! bank (the bank feed, through the school's payee account) or cash, credit the pupil's
//! receivable; for the part that pays charges, debit uncollected and credit each charge's fund.

use chrono::NaiveDate;
use uuid::Uuid;

use super::money::{Amount, Currency};
use super::transaction::{NewTransaction, Posting, TransactionDraft, MAX_DESCRIPTION_CHARS};

/// Whose money a fee item collects; each is its own liability account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fund {
    /// The school's own (meals, uniforms, clubs).
    School,
    /// The parents' association fund (quỹ ban đại diện cha mẹ học sinh).
    ParentsAssociation,
    /// Collected on behalf of others (health insurance, thu hộ).
    PassThrough,
}

impl Fund {
    pub const ALL: [Fund; 3] = [Fund::School, Fund::ParentsAssociation, Fund::PassThrough];

    pub fn as_str(self) -> &'static str {
        match self {
            Fund::School => "school",
            Fund::ParentsAssociation => "parents_association",
            Fund::PassThrough => "pass_through",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Fund::ALL.into_iter().find(|fund| fund.as_str() == text)
    }
}

/// What an item's amount is per: a run collects one unit, or the run's school days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeUnit {
    Month,
    Term,
    Year,
    SchoolDay,
}

impl FeeUnit {
    pub const ALL: [FeeUnit; 4] = [
        FeeUnit::Month,
        FeeUnit::Term,
        FeeUnit::Year,
        FeeUnit::SchoolDay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FeeUnit::Month => "month",
            FeeUnit::Term => "term",
            FeeUnit::Year => "year",
            FeeUnit::SchoolDay => "school_day",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        FeeUnit::ALL.into_iter().find(|unit| unit.as_str() == text)
    }
}

/// Miễn giảm of one item for one pupil.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// 1 to 100 percent off; the reduction is rounded up to the đồng, in the family's favour.
    Percent(u8),
    /// A fixed amount off, at most the whole charge.
    Fixed(i64),
}

impl Reduction {
    /// The part of `gross` this reduction takes off.
    pub fn of(self, gross: i64) -> i64 {
        match self {
            Reduction::Percent(percent) => {
                let share = i128::from(gross) * i128::from(percent);
                ((share + 99) / 100).min(i128::from(gross)) as i64
            }
            Reduction::Fixed(amount) => amount.min(gross),
        }
    }
}

/// A fee item as a run needs it.
#[derive(Debug, Clone)]
pub struct ItemFacts {
    pub id: Uuid,
    pub name: String,
    pub fund: Fund,
    pub mandatory: bool,
    pub unit: FeeUnit,
    /// (grade, amount per unit).
    pub grade_amounts: Vec<(i32, i64)>,
    /// (class, amount per unit): wins over the grade's.
    pub class_amounts: Vec<(Uuid, i64)>,
    /// Pupils taking the item, when it is optional.
    pub enrolled: Vec<Uuid>,
}

/// A pupil in a class on the run's due day.
#[derive(Debug, Clone)]
pub struct PupilFacts {
    pub id: Uuid,
    pub class_id: Uuid,
    pub grade: i32,
    /// (item, reduction).
    pub reductions: Vec<(Uuid, Reduction)>,
}

/// One pupil's charge for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeLine {
    pub pupil_id: Uuid,
    pub class_id: Uuid,
    pub fee_item_id: Uuid,
    pub fund: Fund,
    pub mandatory: bool,
    pub gross: i64,
    pub exemption: i64,
    /// gross - exemption; lines of 0 are not posted (a pupil exempt in full owes nothing).
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("fee item \"{0}\" is charged per school day: the run needs school_days")]
    SchoolDaysRequired(String),
    #[error("the run's amounts are too large")]
    AmountOverflow,
}

/// Every pupil's charges for a run of `items`: mandatory items for everyone whose grade or
/// class has an amount, optional ones for the enrolled; per school day items times
/// `school_days`; reductions taken off. In pupil order, then item order.
pub fn compute_charges(
    pupils: &[PupilFacts],
    items: &[ItemFacts],
    school_days: Option<u32>,
) -> Result<Vec<ChargeLine>, RunError> {
    let mut lines = Vec::new();
    for pupil in pupils {
        for item in items {
            if !item.mandatory && !item.enrolled.contains(&pupil.id) {
                continue;
            }
            let per_unit = item
                .class_amounts
                .iter()
                .find(|(class, _)| *class == pupil.class_id)
                .map(|(_, amount)| *amount)
                .or_else(|| {
                    item.grade_amounts
                        .iter()
                        .find(|(grade, _)| *grade == pupil.grade)
                        .map(|(_, amount)| *amount)
                });
            let Some(per_unit) = per_unit else { continue };
            let units = match item.unit {
                FeeUnit::SchoolDay => i64::from(
                    school_days.ok_or_else(|| RunError::SchoolDaysRequired(item.name.clone()))?,
                ),
                _ => 1,
            };
            let gross = per_unit
                .checked_mul(units)
                .ok_or(RunError::AmountOverflow)?;
            let exemption = pupil
                .reductions
                .iter()
                .find(|(id, _)| *id == item.id)
                .map_or(0, |(_, reduction)| reduction.of(gross));
            let amount = gross - exemption;
            debug_assert!((0..=gross).contains(&amount));
            if amount > 0 {
                lines.push(ChargeLine {
                    pupil_id: pupil.id,
                    class_id: pupil.class_id,
                    fee_item_id: item.id,
                    fund: item.fund,
                    mandatory: item.mandatory,
                    gross,
                    exemption,
                    amount,
                });
            }
        }
    }
    Ok(lines)
}

/// A charge that is not fully paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCharge {
    pub id: Uuid,
    pub due_on: NaiveDate,
    pub mandatory: bool,
    /// When it was posted; breaks ties after due day and mandatory.
    pub posted_at: i64,
    pub fund: Fund,
    pub outstanding: i64,
}

/// The split rule: money goes to the oldest due charge first; on the same due day mandatory
/// charges before optional ones; then in the order they were posted (and by id). Each charge
/// takes what it still owes; what is left over is the pupil's credit. Returns (charge, amount)
/// for the charges paid, and the credit left.
pub fn allocate(open: &[OpenCharge], available: i64) -> (Vec<(Uuid, i64)>, i64) {
    let mut order: Vec<&OpenCharge> = open.iter().filter(|c| c.outstanding > 0).collect();
    order.sort_by_key(|c| (c.due_on, !c.mandatory, c.posted_at, c.id));
    let mut left = available.max(0);
    let mut paid = Vec::new();
    for charge in order {
        if left == 0 {
            break;
        }
        let amount = charge.outstanding.min(left);
        paid.push((charge.id, amount));
        left -= amount;
    }
    debug_assert_eq!(
        paid.iter().map(|(_, a)| a).sum::<i64>() + left,
        available.max(0),
        "an allocation moves exactly the money available"
    );
    (paid, left)
}

/// Whether a pupil paid a run's charges: all, some, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaidState {
    Paid,
    Partly,
    Unpaid,
}

impl PaidState {
    pub fn of(charged: i64, paid: i64) -> Self {
        if paid >= charged {
            PaidState::Paid
        } else if paid > 0 {
            PaidState::Partly
        } else {
            PaidState::Unpaid
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaidState::Paid => "paid",
            PaidState::Partly => "partly_paid",
            PaidState::Unpaid => "unpaid",
        }
    }
}

/// `part` of `whole` in percent with one decimal, as text ("62.5"); "0.0" of nothing.
pub fn percent_text(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "0.0".into();
    }
    let tenths = (i128::from(part) * 1000 + i128::from(whole) / 2) / i128::from(whole);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Longest pupil code: it is part of the pupil's ledger account code.
pub const PUPIL_CODE_MAX_CHARS: usize = 20;

/// A school's code for a pupil: 1 to 20 ASCII letters, digits, `-` or `_`, trimmed.
pub fn parse_pupil_code(text: &str) -> Result<String, String> {
    let code = text.trim();
    let valid = (1..=PUPIL_CODE_MAX_CHARS).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if valid {
        Ok(code.to_owned())
    } else {
        Err(format!(
            "must be 1 to {PUPIL_CODE_MAX_CHARS} letters without diacritics, digits, '-' or '_'"
        ))
    }
}

pub mod reminder;
pub mod roster;
#[cfg(test)]
mod tests;

/// A school posting that cannot be built: the legs it came from are wrong (a bug, never bad
/// input: amounts were checked on the way in).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("school posting: {0}")]
pub struct SchoolPostingError(String);

/// The legs with one leg per (debit, credit) pair, in the order each pair first appears, so
/// that one posting settling several pupils moves each fund's share once for all of them.
pub fn merge_legs(
    legs: Vec<(Uuid, Uuid, i64)>,
) -> Result<Vec<(Uuid, Uuid, i64)>, SchoolPostingError> {
    let mut merged: Vec<(Uuid, Uuid, i64)> = Vec::with_capacity(legs.len());
    for (debit, credit, amount) in legs {
        match merged
            .iter_mut()
            .find(|(d, c, _)| (*d, *c) == (debit, credit))
        {
            Some((_, _, total)) => {
                *total = total.checked_add(amount).ok_or_else(|| {
                    SchoolPostingError(format!("the legs from {debit} to {credit} overflow"))
                })?;
            }
            None => merged.push((debit, credit, amount)),
        }
    }
    Ok(merged)
}

/// A VND ledger transaction of these (debit, credit, amount) legs; legs of 0 are left out.
pub fn school_transaction(
    id: Uuid,
    description: &str,
    legs: &[(Uuid, Uuid, i64)],
    now: i64,
) -> Result<NewTransaction, SchoolPostingError> {
    let postings = legs
        .iter()
        .filter(|(_, _, amount)| *amount != 0)
        .map(|&(debit, credit, amount)| {
            Ok(Posting {
                debit,
                credit,
                amount: Amount::from_minor(amount)
                    .map_err(|e| SchoolPostingError(e.to_string()))?,
                currency: Currency::Vnd,
            })
        })
        .collect::<Result<Vec<_>, SchoolPostingError>>()?;
    let description: String = description.chars().take(MAX_DESCRIPTION_CHARS).collect();
    NewTransaction::new(
        TransactionDraft {
            id,
            id_from_client: false,
            description,
            reference: None,
            metadata: None,
            effective_at: now,
            created_at: now,
            reversal_of: None,
        },
        postings,
    )
    .map_err(|e| SchoolPostingError(e.to_string()))
}

/// The fund legs of an allocation: (uncollected, fund account, amount) per fund, in fund
/// order, `fund_account` naming each fund's account.
pub fn fund_legs(
    paid: &[(Uuid, i64)],
    fund_of: impl Fn(Uuid) -> Fund,
    uncollected: Uuid,
    fund_account: impl Fn(Fund) -> Uuid,
) -> Vec<(Uuid, Uuid, i64)> {
    Fund::ALL
        .into_iter()
        .filter_map(|fund| {
            let total: i64 = paid
                .iter()
                .filter(|(charge, _)| fund_of(*charge) == fund)
                .map(|(_, amount)| amount)
                .sum();
            (total > 0).then(|| (uncollected, fund_account(fund), total))
        })
        .collect()
}
