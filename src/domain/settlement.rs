//! What a bank transfer does to the payment it pays: how much goes to the payee, how much to
//! suspense, and the intent's new status. Pure; the store applies it in the same database
//! transaction that records the bank transaction.

use std::fmt;

use crate::domain::intent::IntentStatus;
use crate::domain::payee::PayeeCode;

/// Something about a bank transaction staff should know, kept with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// More than the intent still needed; the excess went to suspense.
    Overpaid,
    /// Arrived (by the bank's time) after the intent expired; credited anyway.
    LatePayment,
    /// Paid a cancelled intent; credited to the payee anyway, who may refund it.
    IntentCancelled,
    /// Paid an intent that was already paid in full; all of it went to suspense.
    IntentAlreadyPaid,
    /// The memo names an intent of another bank account than the one the money reached.
    WrongCollectionAccount,
    /// The memo names several payees of this account.
    AmbiguousPayee,
    /// An outgoing transfer nobody could attribute; taken from suspense.
    UnexplainedOutgoing,
    /// An outgoing transfer named a payee whose balance could not cover it.
    PayeeBalanceShort,
    /// A transfer of the same amount, account and direction was recorded from a bank statement
    /// within a day: maybe the same money under another reference, so it waits for staff.
    PossibleDuplicate,
}

impl Flag {
    pub const ALL: [Flag; 9] = [
        Flag::Overpaid,
        Flag::LatePayment,
        Flag::IntentCancelled,
        Flag::IntentAlreadyPaid,
        Flag::WrongCollectionAccount,
        Flag::AmbiguousPayee,
        Flag::UnexplainedOutgoing,
        Flag::PayeeBalanceShort,
        Flag::PossibleDuplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Overpaid => "overpaid",
            Flag::LatePayment => "late_payment",
            Flag::IntentCancelled => "intent_cancelled",
            Flag::IntentAlreadyPaid => "intent_already_paid",
            Flag::WrongCollectionAccount => "wrong_collection_account",
            Flag::AmbiguousPayee => "ambiguous_payee",
            Flag::UnexplainedOutgoing => "unexplained_outgoing",
            Flag::PayeeBalanceShort => "payee_balance_short",
            Flag::PossibleDuplicate => "possible_duplicate",
        }
    }

    pub fn parse(text: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An intent as the matcher sees it, locked for the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntentState {
    pub amount: i64,
    pub paid_amount: i64,
    pub stored_status: IntentStatus,
    pub expires_at: i64,
    /// A school pupil's intent: money beyond what it asks is the pupil's credit (kept by the
    /// school for the next charges), not suspense.
    pub keeps_overpayment: bool,
}

/// How one incoming amount is split, and what the intent becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub to_payee: i64,
    pub to_suspense: i64,
    pub paid_amount: i64,
    pub status: IntentStatus,
    pub flags: Vec<Flag>,
}

/// Settles `received` đồng against an intent. Lateness is judged by when the bank says the
/// money moved (`occurred_at`), not by when the webhook reached us: a provider retrying for an
/// hour does not make the customer late.
pub fn settle_intent(intent: IntentState, received: i64, occurred_at: i64) -> Settlement {
    let paid_amount = intent.paid_amount.saturating_add(received);
    if intent.stored_status == IntentStatus::Cancelled {
        return Settlement {
            to_payee: received,
            to_suspense: 0,
            paid_amount,
            status: IntentStatus::Cancelled,
            flags: vec![Flag::IntentCancelled],
        };
    }
    let remaining = intent.amount - intent.paid_amount;
    if intent.keeps_overpayment {
        let mut flags = Vec::new();
        if occurred_at >= intent.expires_at {
            flags.push(Flag::LatePayment);
        }
        if received > remaining {
            flags.push(Flag::Overpaid);
        }
        let status = if paid_amount >= intent.amount {
            IntentStatus::Paid
        } else {
            IntentStatus::PartiallyPaid
        };
        return Settlement {
            to_payee: received,
            to_suspense: 0,
            paid_amount,
            status,
            flags,
        };
    }
    if remaining <= 0 {
        return Settlement {
            to_payee: 0,
            to_suspense: received,
            paid_amount: intent.paid_amount,
            status: IntentStatus::Paid,
            flags: vec![Flag::IntentAlreadyPaid],
        };
    }
    let mut flags = Vec::new();
    if occurred_at >= intent.expires_at {
        flags.push(Flag::LatePayment);
    }
    let (to_payee, status) = if received < remaining {
        (received, IntentStatus::PartiallyPaid)
    } else {
        (remaining, IntentStatus::Paid)
    };
    let to_suspense = received - to_payee;
    if to_suspense > 0 {
        flags.push(Flag::Overpaid);
    }
    Settlement {
        to_payee,
        to_suspense,
        paid_amount: intent.paid_amount + to_payee,
        status,
        flags,
    }
}

/// The words of a memo that could be a payee code (a static QR's purpose), uppercased, in
/// order, without repeats. Only whole words count, so "V042" never matches inside "XV0421".
pub fn payee_code_candidates(memo: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for word in memo.split(|c: char| !c.is_ascii_alphanumeric()) {
        if let Ok(code) = PayeeCode::parse(word) {
            let code = code.as_str().to_owned();
            if !found.contains(&code) {
                found.push(code);
            }
        }
    }
    found
}

/// Flags as stored: comma-separated names.
pub fn join_flags(flags: &[Flag]) -> String {
    flags
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn split_flags(text: &str) -> Vec<Flag> {
    text.split(',').filter_map(Flag::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPIRES: i64 = 1_000;

    fn intent(amount: i64, paid_amount: i64, stored_status: IntentStatus) -> IntentState {
        IntentState {
            keeps_overpayment: false,
            amount,
            paid_amount,
            stored_status,
            expires_at: EXPIRES,
        }
    }

    #[test]
    fn the_exact_amount_pays_the_intent() {
        let s = settle_intent(intent(150_000, 0, IntentStatus::Pending), 150_000, 10);
        assert_eq!(
            s,
            Settlement {
                to_payee: 150_000,
                to_suspense: 0,
                paid_amount: 150_000,
                status: IntentStatus::Paid,
                flags: vec![],
            }
        );
    }

    #[test]
    fn less_leaves_a_remainder_that_a_later_transfer_completes() {
        let first = settle_intent(intent(150_000, 0, IntentStatus::Pending), 100_000, 10);
        assert_eq!(first.status, IntentStatus::PartiallyPaid);
        assert_eq!((first.to_payee, first.paid_amount), (100_000, 100_000));
        let second = settle_intent(intent(150_000, first.paid_amount, first.status), 50_000, 20);
        assert_eq!(second.status, IntentStatus::Paid);
        assert_eq!((second.to_payee, second.to_suspense), (50_000, 0));
        assert_eq!(second.paid_amount, 150_000);
    }

    #[test]
    fn more_pays_the_intent_and_parks_the_excess() {
        let s = settle_intent(
            intent(150_000, 100_000, IntentStatus::PartiallyPaid),
            80_000,
            10,
        );
        assert_eq!((s.to_payee, s.to_suspense), (50_000, 30_000));
        assert_eq!(s.paid_amount, 150_000);
        assert_eq!(s.status, IntentStatus::Paid);
        assert_eq!(s.flags, vec![Flag::Overpaid]);
    }

    #[test]
    fn lateness_is_judged_by_the_bank_time() {
        // Stored as expired by the sweep, but the bank moved the money in time.
        let on_time = settle_intent(intent(5, 0, IntentStatus::Expired), 5, EXPIRES - 1);
        assert_eq!(on_time.flags, vec![]);
        assert_eq!(on_time.status, IntentStatus::Paid);
        let late = settle_intent(intent(5, 0, IntentStatus::Pending), 5, EXPIRES);
        assert_eq!(late.flags, vec![Flag::LatePayment]);
        assert_eq!((late.to_payee, late.status), (5, IntentStatus::Paid));
    }

    #[test]
    fn a_cancelled_intent_still_credits_the_payee() {
        let s = settle_intent(intent(5, 0, IntentStatus::Cancelled), 7, 10);
        assert_eq!((s.to_payee, s.to_suspense, s.paid_amount), (7, 0, 7));
        assert_eq!(s.status, IntentStatus::Cancelled);
        assert_eq!(s.flags, vec![Flag::IntentCancelled]);
    }

    #[test]
    fn paying_a_paid_intent_again_goes_to_suspense() {
        let s = settle_intent(intent(5, 5, IntentStatus::Paid), 5, 10);
        assert_eq!((s.to_payee, s.to_suspense, s.paid_amount), (0, 5, 5));
        assert_eq!(s.flags, vec![Flag::IntentAlreadyPaid]);
    }

    #[test]
    fn payee_codes_are_whole_words() {
        assert_eq!(
            payee_code_candidates("ND:CT DEN:231915 MBVCB.27.V042.CT tu v042 x"),
            vec!["ND", "CT", "DEN", "231915", "MBVCB", "27", "V042", "TU"]
        );
        assert!(!payee_code_candidates("XV0421").contains(&"V042".to_owned()));
    }

    #[test]
    fn flags_round_trip() {
        let flags = Flag::ALL.to_vec();
        assert_eq!(split_flags(&join_flags(&flags)), flags);
        assert_eq!(split_flags(""), vec![]);
    }
}
