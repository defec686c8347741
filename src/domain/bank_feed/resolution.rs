//! How staff may resolve money waiting in suspense: to a payment intent, to a payee, as a
//! refund to the sender, or as a duplicate record of money already counted. Pure: the
//! bank-feed service gathers the [`ResolutionFacts`] with the record locked, calls
//! [`decide_resolution`], and writes what it says.

use uuid::Uuid;

use super::matching::{Leg, MatchedAs, PayeeAccount, SUSPENSE_ACCOUNT_ID};
use super::Direction;
use crate::domain::intent::IntentStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionAction {
    Intent(Uuid),
    Payee(Uuid),
    Refund,
    /// The same money as this other bank transaction, recorded twice (a statement line and a
    /// webhook under different references): this record is taken back out of the ledger.
    Duplicate(Uuid),
}

impl ResolutionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionAction::Intent(_) => "intent",
            ResolutionAction::Payee(_) => "payee",
            ResolutionAction::Refund => "refund",
            ResolutionAction::Duplicate(_) => "duplicate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResolveRejection {
    #[error("bank transaction {0} not found")]
    NotFound(Uuid),
    #[error("this bank transaction has no money in suspense")]
    NotInSuspense,
    #[error("this bank transaction was already resolved")]
    AlreadyResolved,
    #[error("payment intent {0} not found")]
    IntentNotFound(Uuid),
    #[error("payee {0} not found")]
    PayeeNotFound(Uuid),
    #[error("an outgoing transfer can only be assigned to a payee")]
    OutgoingNeedsPayee,
    #[error("the payee's balance cannot cover this outgoing transfer")]
    PayeeBalanceShort,
    #[error(
        "a duplicate must be wholly in suspense and name another bank transaction of the same \
         account, direction and amount"
    )]
    NotADuplicate,
    #[error(
        "the intent is cancelled, or needs less than this amount; assign it to the payee or \
         refund it"
    )]
    ExceedsIntent,
}

/// The bank transaction being resolved, as recorded (its row locked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuspenseRecord {
    pub id: Uuid,
    pub collection_account_id: Uuid,
    pub direction: Direction,
    pub amount: i64,
    pub suspense_amount: i64,
    pub matched_as: MatchedAs,
}

/// The intent staff name, locked for the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntentToPay {
    pub id: Uuid,
    pub payee: PayeeAccount,
    pub amount: i64,
    pub paid_amount: i64,
    pub stored_status: IntentStatus,
}

/// The other record a duplicate names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginalRecord {
    pub id: Uuid,
    pub collection_account_id: Uuid,
    pub direction: Direction,
    pub amount: i64,
    /// The ledger asset account of its collection account.
    pub bank_account: Uuid,
}

/// What the service read for a resolution: the record (if it exists), whether it was resolved
/// already, and whatever the action names (if it exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolutionFacts {
    pub record: Option<SuspenseRecord>,
    pub already_resolved: bool,
    pub intent: Option<IntentToPay>,
    pub payee: Option<PayeeAccount>,
    pub original: Option<OriginalRecord>,
}

/// What a permitted resolution writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolutionPlan {
    pub payee: Option<PayeeAccount>,
    /// Postings of the resolving ledger transaction; none for a refund (the outgoing transfer
    /// that pays it back posts).
    pub legs: Vec<Leg>,
    /// (intent, paid amount, status after)
    pub intent_update: Option<(Uuid, i64, IntentStatus)>,
    pub duplicate_of: Option<Uuid>,
}

/// Decides whether `action` may resolve the record, and how. The checks run in a fixed order,
/// so the same request always gets the same refusal.
pub fn decide_resolution(
    bank_transaction_id: Uuid,
    facts: &ResolutionFacts,
    action: ResolutionAction,
) -> Result<ResolutionPlan, ResolveRejection> {
    let record = facts
        .record
        .ok_or(ResolveRejection::NotFound(bank_transaction_id))?;
    if record.suspense_amount == 0 || record.matched_as == MatchedAs::Refund {
        return Err(ResolveRejection::NotInSuspense);
    }
    if facts.already_resolved {
        return Err(ResolveRejection::AlreadyResolved);
    }
    let amount = record.suspense_amount;
    let outgoing = record.direction == Direction::Out;
    let plan = |payee, legs, intent_update, duplicate_of| ResolutionPlan {
        payee,
        legs,
        intent_update,
        duplicate_of,
    };
    match action {
        ResolutionAction::Refund | ResolutionAction::Intent(_) if outgoing => {
            Err(ResolveRejection::OutgoingNeedsPayee)
        }
        ResolutionAction::Refund => Ok(plan(None, Vec::new(), None, None)),
        ResolutionAction::Duplicate(original) => {
            let bank_account = facts
                .original
                .filter(|o| is_same_money(&record, o) && o.id == original)
                .map(|o| o.bank_account)
                .ok_or(ResolveRejection::NotADuplicate)?;
            // The reverse of what recording it posted: the money was counted once already.
            let leg = if outgoing {
                (bank_account, SUSPENSE_ACCOUNT_ID, amount)
            } else {
                (SUSPENSE_ACCOUNT_ID, bank_account, amount)
            };
            Ok(plan(None, vec![leg], None, Some(original)))
        }
        ResolutionAction::Intent(intent_id) => {
            let intent = facts
                .intent
                .filter(|i| i.id == intent_id)
                .ok_or(ResolveRejection::IntentNotFound(intent_id))?;
            let (paid_amount, status) = assign_to_intent(&intent, amount)?;
            let leg = (SUSPENSE_ACCOUNT_ID, intent.payee.ledger_account_id, amount);
            Ok(plan(
                Some(intent.payee),
                vec![leg],
                Some((intent_id, paid_amount, status)),
                None,
            ))
        }
        ResolutionAction::Payee(payee_id) => {
            let payee = facts
                .payee
                .filter(|p| p.payee_id == payee_id)
                .ok_or(ResolveRejection::PayeeNotFound(payee_id))?;
            let leg = if outgoing {
                (payee.ledger_account_id, SUSPENSE_ACCOUNT_ID, amount)
            } else {
                (SUSPENSE_ACCOUNT_ID, payee.ledger_account_id, amount)
            };
            Ok(plan(Some(payee), vec![leg], None, None))
        }
    }
}

/// A duplicate must be wholly in suspense and name another record of the same account,
/// direction and amount.
fn is_same_money(record: &SuspenseRecord, original: &OriginalRecord) -> bool {
    original.id != record.id
        && original.collection_account_id == record.collection_account_id
        && original.direction == record.direction
        && original.amount == record.amount
        && record.suspense_amount == record.amount
}

/// Staff assign money to an intent only where it fits: a cancelled intent, or more than it
/// still needs, goes to the payee instead (or back to the sender). Returns the paid amount and
/// status after.
pub fn assign_to_intent(
    intent: &IntentToPay,
    amount: i64,
) -> Result<(i64, IntentStatus), ResolveRejection> {
    if intent.stored_status == IntentStatus::Cancelled
        || amount > intent.amount - intent.paid_amount
    {
        return Err(ResolveRejection::ExceedsIntent);
    }
    let paid_amount = intent.paid_amount + amount;
    let status = if paid_amount == intent.amount {
        IntentStatus::Paid
    } else {
        IntentStatus::PartiallyPaid
    };
    Ok((paid_amount, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: Uuid = Uuid::from_u128(0xA);
    const COLLECTION: Uuid = Uuid::from_u128(0xC);
    const PAYEE: PayeeAccount = PayeeAccount {
        payee_id: Uuid::from_u128(0x1),
        ledger_account_id: Uuid::from_u128(0x11),
    };

    fn record(direction: Direction, amount: i64, suspense: i64) -> SuspenseRecord {
        SuspenseRecord {
            id: ID,
            collection_account_id: COLLECTION,
            direction,
            amount,
            suspense_amount: suspense,
            matched_as: MatchedAs::Suspense,
        }
    }

    fn facts(record: SuspenseRecord) -> ResolutionFacts {
        ResolutionFacts {
            record: Some(record),
            already_resolved: false,
            intent: None,
            payee: None,
            original: None,
        }
    }

    #[test]
    fn refusals_come_in_a_fixed_order() {
        let missing = ResolutionFacts {
            record: None,
            ..facts(record(Direction::In, 5, 5))
        };
        assert_eq!(
            decide_resolution(ID, &missing, ResolutionAction::Refund),
            Err(ResolveRejection::NotFound(ID))
        );
        let matched = facts(record(Direction::In, 5, 0));
        assert_eq!(
            decide_resolution(ID, &matched, ResolutionAction::Refund),
            Err(ResolveRejection::NotInSuspense)
        );
        let resolved = ResolutionFacts {
            already_resolved: true,
            ..facts(record(Direction::In, 5, 5))
        };
        assert_eq!(
            decide_resolution(ID, &resolved, ResolutionAction::Refund),
            Err(ResolveRejection::AlreadyResolved)
        );
        let outgoing = facts(record(Direction::Out, 5, 5));
        assert_eq!(
            decide_resolution(ID, &outgoing, ResolutionAction::Intent(ID)),
            Err(ResolveRejection::OutgoingNeedsPayee)
        );
    }

    #[test]
    fn a_payee_takes_incoming_money_and_covers_outgoing() {
        let incoming = ResolutionFacts {
            payee: Some(PAYEE),
            ..facts(record(Direction::In, 5, 5))
        };
        let plan = decide_resolution(ID, &incoming, ResolutionAction::Payee(PAYEE.payee_id));
        assert_eq!(
            plan.unwrap().legs,
            vec![(SUSPENSE_ACCOUNT_ID, PAYEE.ledger_account_id, 5)]
        );
        let outgoing = ResolutionFacts {
            payee: Some(PAYEE),
            ..facts(record(Direction::Out, 5, 5))
        };
        let plan = decide_resolution(ID, &outgoing, ResolutionAction::Payee(PAYEE.payee_id));
        assert_eq!(
            plan.unwrap().legs,
            vec![(PAYEE.ledger_account_id, SUSPENSE_ACCOUNT_ID, 5)]
        );
        assert_eq!(
            decide_resolution(
                ID,
                &facts(record(Direction::In, 5, 5)),
                ResolutionAction::Payee(ID)
            ),
            Err(ResolveRejection::PayeeNotFound(ID))
        );
    }

    #[test]
    fn an_intent_takes_only_what_it_still_needs() {
        let intent = IntentToPay {
            id: Uuid::from_u128(0x1D),
            payee: PAYEE,
            amount: 10,
            paid_amount: 4,
            stored_status: IntentStatus::PartiallyPaid,
        };
        let fits = ResolutionFacts {
            intent: Some(intent),
            ..facts(record(Direction::In, 6, 6))
        };
        let plan = decide_resolution(ID, &fits, ResolutionAction::Intent(intent.id)).unwrap();
        assert_eq!(
            plan.intent_update,
            Some((intent.id, 10, IntentStatus::Paid))
        );
        let too_much = ResolutionFacts {
            intent: Some(intent),
            ..facts(record(Direction::In, 7, 7))
        };
        assert_eq!(
            decide_resolution(ID, &too_much, ResolutionAction::Intent(intent.id)),
            Err(ResolveRejection::ExceedsIntent)
        );
        let cancelled = IntentToPay {
            stored_status: IntentStatus::Cancelled,
            ..intent
        };
        assert_eq!(
            assign_to_intent(&cancelled, 1),
            Err(ResolveRejection::ExceedsIntent)
        );
        assert_eq!(
            assign_to_intent(&intent, 1),
            Ok((5, IntentStatus::PartiallyPaid))
        );
    }

    #[test]
    fn a_duplicate_is_the_same_money_wholly_in_suspense() {
        let original = OriginalRecord {
            id: Uuid::from_u128(0x0F),
            collection_account_id: COLLECTION,
            direction: Direction::In,
            amount: 5,
            bank_account: Uuid::from_u128(0xB),
        };
        let same = ResolutionFacts {
            original: Some(original),
            ..facts(record(Direction::In, 5, 5))
        };
        let plan = decide_resolution(ID, &same, ResolutionAction::Duplicate(original.id));
        assert_eq!(
            plan.unwrap().legs,
            vec![(SUSPENSE_ACCOUNT_ID, original.bank_account, 5)]
        );
        for other in [
            OriginalRecord {
                amount: 6,
                ..original
            },
            OriginalRecord {
                direction: Direction::Out,
                ..original
            },
            OriginalRecord {
                collection_account_id: Uuid::from_u128(0xCC),
                ..original
            },
            OriginalRecord { id: ID, ..original },
        ] {
            let facts = ResolutionFacts {
                original: Some(other),
                ..facts(record(Direction::In, 5, 5))
            };
            assert_eq!(
                decide_resolution(ID, &facts, ResolutionAction::Duplicate(other.id)),
                Err(ResolveRejection::NotADuplicate)
            );
        }
        let partly = ResolutionFacts {
            original: Some(original),
            ..facts(record(Direction::In, 5, 3))
        };
        assert_eq!(
            decide_resolution(ID, &partly, ResolutionAction::Duplicate(original.id)),
            Err(ResolveRejection::NotADuplicate)
        );
    }
}
