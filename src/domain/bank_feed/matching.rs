//! How a bank transfer is matched: to the payment intent its memo names, to the payee whose
//! code is a word of the memo, to a refund staff decided on, or else to suspense. Pure: the
//! bank-feed service gathers the [`MatchFacts`] in its database transaction, calls [`plan`],
//! and writes what the [`Plan`] says.

use uuid::Uuid;

use super::{BankTransaction, Direction, STATEMENT_ID_PREFIX};
use crate::domain::intent::IntentStatus;
use crate::domain::reference::PaymentReference;
use crate::domain::settlement::{settle_intent, Flag, IntentState};

/// The ledger account that holds money nobody could match (created by migration 0003).
pub const SUSPENSE_ACCOUNT_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001);
/// `created_by` of the ledger transactions the bank feed posts.
pub const BANK_FEED_USER_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0002);

/// A feed record of the same amount on the same account this close (either side) to a
/// statement line's record may be the same money under another reference.
pub const POSSIBLE_DUPLICATE_WINDOW_MICROS: i64 = 86_400_000_000;

/// At most this many memo references are looked up (a memo is short; this bounds a hostile
/// one).
pub const MAX_MEMO_REFERENCES: usize = 500;

/// One ledger posting as (debit account, credit account, amount in đồng).
pub type Leg = (Uuid, Uuid, i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedAs {
    Intent,
    Payee,
    Suspense,
    /// An outgoing transfer that paid back money parked in suspense.
    Refund,
}

impl MatchedAs {
    pub const ALL: [MatchedAs; 4] = [
        MatchedAs::Intent,
        MatchedAs::Payee,
        MatchedAs::Suspense,
        MatchedAs::Refund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MatchedAs::Intent => "intent",
            MatchedAs::Payee => "payee",
            MatchedAs::Suspense => "suspense",
            MatchedAs::Refund => "refund",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        MatchedAs::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// A payee as a posting needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayeeAccount {
    pub payee_id: Uuid,
    pub ledger_account_id: Uuid,
}

/// Which payees of the collection account a memo names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayeeMatch {
    None,
    One(PayeeAccount),
    Several,
}

/// A payment intent whose reference appears in the memo, locked for the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedIntent {
    pub id: Uuid,
    pub reference: String,
    pub collection_account_id: Uuid,
    pub payee: PayeeAccount,
    pub state: IntentState,
}

/// Everything the matcher needs to know about the world, read in the database transaction
/// that records the transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchFacts {
    pub collection_account_id: Uuid,
    /// The bank's asset account in the ledger.
    pub bank_account: Uuid,
    /// A statement line recorded money of the same amount and direction on this account within
    /// [`possible_duplicate_window`].
    pub statement_record_nearby: bool,
    /// The payees of this collection account whose code is a word of the memo.
    pub payees: PayeeMatch,
    /// Outgoing only: the oldest refund staff decided on, not yet paid, of this amount.
    pub open_refund: Option<Uuid>,
    /// Incoming only: the intents the memo's references name, in any order.
    pub intents: Vec<NamedIntent>,
}

/// One way to post the transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub legs: Vec<Leg>,
    /// When this alternative is the one posted, the money went to suspense instead, for this
    /// reason.
    pub fallback_to_suspense: Option<Flag>,
}

/// What the matcher decided for one bank transaction: the ledger postings to try, in order
/// (the first whose accounts' rules allow it is posted; the last is the fallback), and what to
/// record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub matched_as: MatchedAs,
    pub payee: Option<PayeeAccount>,
    /// (id, reference) of the intent the memo names.
    pub intent: Option<(Uuid, String)>,
    /// (paid amount, status) the intent has after this transfer.
    pub intent_update: Option<(i64, IntentStatus)>,
    pub suspense_amount: i64,
    pub flags: Vec<Flag>,
    pub alternatives: Vec<Alternative>,
    /// The refund resolution this outgoing transfer pays.
    pub refund_resolution: Option<Uuid>,
}

/// Money a bank transaction credited to a payee, for the live notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub payee_id: Uuid,
    pub amount: i64,
    /// (id, reference, status after this payment)
    pub intent: Option<(Uuid, String, IntentStatus)>,
}

/// True for a transfer recorded from a bank statement line rather than a feed.
pub fn from_statement(transfer: &BankTransaction) -> bool {
    transfer
        .provider_transaction_id
        .starts_with(STATEMENT_ID_PREFIX)
}

/// The bank reference two records of one transfer share, as compared: trimmed, uppercase.
/// `None` when the transfer has none.
pub fn dedupe_reference(transfer: &BankTransaction) -> Option<String> {
    transfer
        .reference
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_uppercase)
}

/// Whether an earlier record with the same account, direction and bank reference is this
/// transfer again: the same money can reach us from a statement line (a webhook that never
/// came) and from the feed. One of the two must come from a statement; two feed records under
/// one bank reference are told apart by the provider's own ids.
pub fn is_reference_twin(
    transfer: &BankTransaction,
    earlier_provider_transaction_id: &str,
) -> bool {
    from_statement(transfer) || earlier_provider_transaction_id.starts_with(STATEMENT_ID_PREFIX)
}

/// The period in which a statement line's record of the same amount makes a feed record a
/// possible duplicate, or `None` when the transfer itself comes from a statement.
pub fn possible_duplicate_window(transfer: &BankTransaction) -> Option<(i64, i64)> {
    if from_statement(transfer) {
        return None;
    }
    let at = transfer.occurred_at.timestamp_micros();
    Some((
        at.saturating_sub(POSSIBLE_DUPLICATE_WINDOW_MICROS),
        at.saturating_add(POSSIBLE_DUPLICATE_WINDOW_MICROS),
    ))
}

/// The payment references in the memo, in the order they appear.
pub fn memo_references(transfer: &BankTransaction) -> Vec<String> {
    PaymentReference::find_in_memo(&transfer.description)
        .into_iter()
        .take(MAX_MEMO_REFERENCES)
        .map(|r| r.as_str().to_owned())
        .collect()
}

/// Decides what a fresh bank transaction pays. Total: every transfer gets exactly one plan,
/// and whatever nothing explains goes to suspense.
pub fn plan(facts: &MatchFacts, transfer: &BankTransaction) -> Plan {
    // A feed's record of money a statement line already recorded under another reference
    // (the bank's FT number, the aggregator's own code) would count it twice: it waits for
    // staff.
    if facts.statement_record_nearby && !from_statement(transfer) {
        return to_suspense(facts, transfer, vec![Flag::PossibleDuplicate]);
    }
    match transfer.direction {
        Direction::Out => plan_outgoing(facts, transfer),
        Direction::In => plan_incoming(facts, transfer),
    }
}

fn plan_outgoing(facts: &MatchFacts, transfer: &BankTransaction) -> Plan {
    let amount = transfer.amount;
    if let PayeeMatch::One(payee) = facts.payees {
        // A payout the memo names; if the payee's balance cannot cover it, suspense pays.
        return Plan {
            alternatives: vec![
                Alternative {
                    legs: vec![(payee.ledger_account_id, facts.bank_account, amount)],
                    fallback_to_suspense: None,
                },
                Alternative {
                    legs: vec![(SUSPENSE_ACCOUNT_ID, facts.bank_account, amount)],
                    fallback_to_suspense: Some(Flag::PayeeBalanceShort),
                },
            ],
            ..matched(MatchedAs::Payee, payee)
        };
    }
    // Not a payout a memo names: paying back money parked in suspense (a refund staff decided
    // on) of this amount, oldest first.
    if let Some(resolution) = facts.open_refund {
        let mut plan = to_suspense(facts, transfer, Vec::new());
        plan.matched_as = MatchedAs::Refund;
        plan.refund_resolution = Some(resolution);
        return plan;
    }
    let flags = match facts.payees {
        PayeeMatch::Several => vec![Flag::AmbiguousPayee, Flag::UnexplainedOutgoing],
        _ => vec![Flag::UnexplainedOutgoing],
    };
    to_suspense(facts, transfer, flags)
}

fn plan_incoming(facts: &MatchFacts, transfer: &BankTransaction) -> Plan {
    // The first reference in the memo that names an intent wins.
    let named = memo_references(transfer)
        .into_iter()
        .find_map(|r| facts.intents.iter().find(|i| i.reference == r));
    if let Some(intent) = named {
        return plan_intent(facts, transfer, intent);
    }
    match facts.payees {
        PayeeMatch::One(payee) => Plan {
            alternatives: vec![Alternative {
                legs: vec![(facts.bank_account, payee.ledger_account_id, transfer.amount)],
                fallback_to_suspense: None,
            }],
            ..matched(MatchedAs::Payee, payee)
        },
        PayeeMatch::Several => to_suspense(facts, transfer, vec![Flag::AmbiguousPayee]),
        PayeeMatch::None => to_suspense(facts, transfer, Vec::new()),
    }
}

fn plan_intent(facts: &MatchFacts, transfer: &BankTransaction, intent: &NamedIntent) -> Plan {
    let named = Some((intent.id, intent.reference.clone()));
    if intent.collection_account_id != facts.collection_account_id {
        let mut plan = to_suspense(facts, transfer, vec![Flag::WrongCollectionAccount]);
        plan.intent = named;
        return plan;
    }
    let settlement = settle_intent(
        intent.state,
        transfer.amount,
        transfer.occurred_at.timestamp_micros(),
    );
    let mut legs = Vec::new();
    if settlement.to_payee > 0 {
        legs.push((
            facts.bank_account,
            intent.payee.ledger_account_id,
            settlement.to_payee,
        ));
    }
    if settlement.to_suspense > 0 {
        legs.push((
            facts.bank_account,
            SUSPENSE_ACCOUNT_ID,
            settlement.to_suspense,
        ));
    }
    Plan {
        intent: named,
        intent_update: Some((settlement.paid_amount, settlement.status)),
        suspense_amount: settlement.to_suspense,
        flags: settlement.flags,
        alternatives: vec![Alternative {
            legs,
            fallback_to_suspense: None,
        }],
        ..matched(MatchedAs::Intent, intent.payee)
    }
}

/// A plan matched to a payee, with nothing in suspense; the caller fills in the postings.
fn matched(matched_as: MatchedAs, payee: PayeeAccount) -> Plan {
    Plan {
        matched_as,
        payee: Some(payee),
        intent: None,
        intent_update: None,
        suspense_amount: 0,
        flags: Vec::new(),
        alternatives: Vec::new(),
        refund_resolution: None,
    }
}

/// All of the money to (or, outgoing, from) suspense.
fn to_suspense(facts: &MatchFacts, transfer: &BankTransaction, flags: Vec<Flag>) -> Plan {
    let amount = transfer.amount;
    let leg = match transfer.direction {
        Direction::In => (facts.bank_account, SUSPENSE_ACCOUNT_ID, amount),
        Direction::Out => (SUSPENSE_ACCOUNT_ID, facts.bank_account, amount),
    };
    Plan {
        matched_as: MatchedAs::Suspense,
        payee: None,
        intent: None,
        intent_update: None,
        suspense_amount: amount,
        flags,
        alternatives: vec![Alternative {
            legs: vec![leg],
            fallback_to_suspense: None,
        }],
        refund_resolution: None,
    }
}

impl Plan {
    /// The plan as recorded once alternative `posted` was the one the accounts allowed.
    pub fn posted(mut self, posted: usize, amount: i64) -> Plan {
        assert!(
            posted < self.alternatives.len(),
            "posted an alternative of the plan"
        );
        if let Some(flag) = self.alternatives[posted].fallback_to_suspense {
            self.matched_as = MatchedAs::Suspense;
            self.payee = None;
            self.suspense_amount = amount;
            self.flags.push(flag);
        }
        self
    }

    /// The money this (posted) plan credited to a payee, for the live notification.
    pub fn credit(&self, transfer: &BankTransaction) -> Option<Credit> {
        let credited = match (self.matched_as, transfer.direction) {
            (MatchedAs::Intent | MatchedAs::Payee, Direction::In) => {
                transfer.amount - self.suspense_amount
            }
            _ => 0,
        };
        let payee = self.payee.filter(|_| credited > 0)?;
        Some(Credit {
            payee_id: payee.payee_id,
            amount: credited,
            intent: self.intent.clone().map(|(intent, reference)| {
                let status = self
                    .intent_update
                    .map(|(_, s)| s)
                    .unwrap_or(IntentStatus::Paid);
                (intent, reference, status)
            }),
        })
    }
}

/// The ledger balance of a bank asset account when it differs from the balance the bank
/// reported after this transfer: a discrepancy to record.
pub fn balance_discrepancy(
    bank_balance: Option<i64>,
    debits_posted: i64,
    credits_posted: i64,
) -> Option<i64> {
    let bank_balance = bank_balance?;
    let ledger_balance = debits_posted - credits_posted;
    (ledger_balance != bank_balance).then_some(ledger_balance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::bank_feed::Provider;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    const BANK: Uuid = Uuid::from_u128(0xB);
    const COLLECTION: Uuid = Uuid::from_u128(0xC);
    const PAYEE: PayeeAccount = PayeeAccount {
        payee_id: Uuid::from_u128(0x1),
        ledger_account_id: Uuid::from_u128(0x11),
    };
    const EXPIRES: i64 = 1_700_000_000_000_000;

    fn transfer(direction: Direction, amount: i64, memo: &str) -> BankTransaction {
        BankTransaction {
            provider: Provider::SePay,
            provider_transaction_id: "92704".into(),
            account_number: "0123456789".into(),
            direction,
            amount,
            description: memo.into(),
            occurred_at: Utc.timestamp_micros(EXPIRES - 1).unwrap(),
            running_balance: None,
            reference: Some("FT24061234567890".into()),
            payer: None,
        }
    }

    fn facts() -> MatchFacts {
        MatchFacts {
            collection_account_id: COLLECTION,
            bank_account: BANK,
            statement_record_nearby: false,
            payees: PayeeMatch::None,
            open_refund: None,
            intents: Vec::new(),
        }
    }

    fn intent(reference: &str, amount: i64, paid: i64, status: IntentStatus) -> NamedIntent {
        NamedIntent {
            id: Uuid::from_u128(0x1D),
            reference: reference.into(),
            collection_account_id: COLLECTION,
            payee: PAYEE,
            state: IntentState {
                keeps_overpayment: false,
                amount,
                paid_amount: paid,
                stored_status: status,
                expires_at: EXPIRES,
            },
        }
    }

    /// A valid payment reference, the same every run.
    fn reference_in_memo() -> String {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        PaymentReference::generate(&mut rng).as_str().to_owned()
    }

    fn memo(rest: &str) -> String {
        format!("{} {rest}", reference_in_memo())
    }

    #[test]
    fn an_intent_named_in_the_memo_is_paid() {
        let reference = reference_in_memo();
        let facts = MatchFacts {
            intents: vec![intent(&reference, 150_000, 0, IntentStatus::Pending)],
            ..facts()
        };
        let plan = plan(
            &facts,
            &transfer(Direction::In, 150_000, &memo("thanh toan")),
        );
        assert_eq!(plan.matched_as, MatchedAs::Intent);
        assert_eq!(plan.intent_update, Some((150_000, IntentStatus::Paid)));
        assert_eq!(
            plan.alternatives[0].legs,
            vec![(BANK, PAYEE.ledger_account_id, 150_000)]
        );
    }

    #[test]
    fn an_overpaid_intent_parks_the_excess_in_suspense() {
        let reference = reference_in_memo();
        let facts = MatchFacts {
            intents: vec![intent(&reference, 100_000, 0, IntentStatus::Pending)],
            ..facts()
        };
        let plan = plan(&facts, &transfer(Direction::In, 130_000, &memo("")));
        assert_eq!(plan.suspense_amount, 30_000);
        assert_eq!(plan.flags, vec![Flag::Overpaid]);
        assert_eq!(
            plan.alternatives[0].legs,
            vec![
                (BANK, PAYEE.ledger_account_id, 100_000),
                (BANK, SUSPENSE_ACCOUNT_ID, 30_000)
            ]
        );
        let credit = plan.credit(&transfer(Direction::In, 130_000, "")).unwrap();
        assert_eq!(credit.amount, 100_000);
    }

    #[test]
    fn an_intent_of_another_account_waits_in_suspense() {
        let reference = reference_in_memo();
        let mut named = intent(&reference, 5, 0, IntentStatus::Pending);
        named.collection_account_id = Uuid::from_u128(0xCC);
        let facts = MatchFacts {
            intents: vec![named],
            ..facts()
        };
        let plan = plan(&facts, &transfer(Direction::In, 5, &memo("")));
        assert_eq!(plan.matched_as, MatchedAs::Suspense);
        assert_eq!(plan.flags, vec![Flag::WrongCollectionAccount]);
        assert!(plan.intent.is_some());
        assert_eq!(plan.credit(&transfer(Direction::In, 5, "")), None);
    }

    #[test]
    fn a_payee_code_in_the_memo_credits_the_payee() {
        let facts = MatchFacts {
            payees: PayeeMatch::One(PAYEE),
            ..facts()
        };
        let plan = plan(&facts, &transfer(Direction::In, 20_000, "V042 che"));
        assert_eq!(plan.matched_as, MatchedAs::Payee);
        assert_eq!(
            plan.credit(&transfer(Direction::In, 20_000, ""))
                .unwrap()
                .amount,
            20_000
        );
    }

    #[test]
    fn several_payees_or_none_means_suspense() {
        let several = MatchFacts {
            payees: PayeeMatch::Several,
            ..facts()
        };
        let plan_several = plan(&several, &transfer(Direction::In, 1, ""));
        assert_eq!(plan_several.flags, vec![Flag::AmbiguousPayee]);
        let plan_none = plan(&facts(), &transfer(Direction::In, 1, ""));
        assert_eq!(plan_none.matched_as, MatchedAs::Suspense);
        assert_eq!(plan_none.flags, vec![]);
    }

    #[test]
    fn a_possible_duplicate_waits_unless_it_comes_from_a_statement() {
        let facts = MatchFacts {
            statement_record_nearby: true,
            payees: PayeeMatch::One(PAYEE),
            ..facts()
        };
        let feed = plan(&facts, &transfer(Direction::In, 1, "V042"));
        assert_eq!(feed.flags, vec![Flag::PossibleDuplicate]);
        let mut line = transfer(Direction::In, 1, "V042");
        line.provider_transaction_id = format!("{STATEMENT_ID_PREFIX}x:in:FT1");
        assert_eq!(plan(&facts, &line).matched_as, MatchedAs::Payee);
        assert_eq!(possible_duplicate_window(&line), None);
    }

    #[test]
    fn a_payout_falls_back_to_suspense_when_the_payee_is_short() {
        let facts = MatchFacts {
            payees: PayeeMatch::One(PAYEE),
            ..facts()
        };
        let payout = transfer(Direction::Out, 7, "V042 rut");
        let plan = plan(&facts, &payout);
        assert_eq!(plan.alternatives.len(), 2);
        let fallen = plan.posted(1, payout.amount);
        assert_eq!(fallen.matched_as, MatchedAs::Suspense);
        assert_eq!(fallen.flags, vec![Flag::PayeeBalanceShort]);
        assert_eq!(fallen.suspense_amount, 7);
    }

    #[test]
    fn an_outgoing_transfer_pays_an_open_refund_or_is_unexplained() {
        let refund = Uuid::from_u128(0xEF);
        let facts_refund = MatchFacts {
            open_refund: Some(refund),
            ..facts()
        };
        let out = transfer(Direction::Out, 9, "hoan tien");
        let plan_refund = plan(&facts_refund, &out);
        assert_eq!(plan_refund.matched_as, MatchedAs::Refund);
        assert_eq!(plan_refund.refund_resolution, Some(refund));
        let plan_unexplained = plan(&facts(), &out);
        assert_eq!(plan_unexplained.flags, vec![Flag::UnexplainedOutgoing]);
        assert_eq!(
            plan_unexplained.alternatives[0].legs,
            vec![(SUSPENSE_ACCOUNT_ID, BANK, 9)]
        );
    }

    #[test]
    fn reference_twins_need_a_statement_on_one_side() {
        let feed = transfer(Direction::In, 1, "");
        assert!(!is_reference_twin(&feed, "other-feed-id"));
        assert!(is_reference_twin(&feed, "statement:c:in:FT1"));
        assert_eq!(dedupe_reference(&feed).as_deref(), Some("FT24061234567890"));
    }

    #[test]
    fn discrepancy_only_when_the_balances_differ() {
        assert_eq!(balance_discrepancy(None, 5, 0), None);
        assert_eq!(balance_discrepancy(Some(5), 5, 0), None);
        assert_eq!(balance_discrepancy(Some(6), 5, 0), Some(5));
    }

    fn any_status() -> impl Strategy<Value = IntentStatus> {
        proptest::sample::select(IntentStatus::ALL.to_vec())
    }

    fn any_payees() -> impl Strategy<Value = PayeeMatch> {
        prop_oneof![
            Just(PayeeMatch::None),
            Just(PayeeMatch::One(PAYEE)),
            Just(PayeeMatch::Several)
        ]
    }

    prop_compose! {
        fn any_case()(
            direction in prop_oneof![Just(Direction::In), Just(Direction::Out)],
            amount in 1i64..=1_000_000_000_000_000,
            intent_amount in 1i64..=1_000_000_000,
            paid_fraction in 0i64..=120,
            status in any_status(),
            named in any::<bool>(),
            other_account in any::<bool>(),
            nearby in any::<bool>(),
            statement in any::<bool>(),
            refund in any::<bool>(),
            payees in any_payees(),
            late in any::<bool>(),
        ) -> (MatchFacts, BankTransaction) {
            let reference = reference_in_memo();
            let mut named_intent = intent(
                &reference,
                intent_amount,
                intent_amount / 100 * paid_fraction,
                status,
            );
            if other_account {
                named_intent.collection_account_id = Uuid::from_u128(0xCC);
            }
            let facts = MatchFacts {
                statement_record_nearby: nearby,
                payees,
                open_refund: refund.then(|| Uuid::from_u128(0xEF)),
                intents: if named { vec![named_intent] } else { Vec::new() },
                ..facts()
            };
            let mut bank = transfer(direction, amount, &memo("V042"));
            if statement {
                bank.provider_transaction_id = format!("{STATEMENT_ID_PREFIX}c:in:FT1");
            }
            if late {
                bank.occurred_at = Utc.timestamp_micros(EXPIRES + 1).unwrap();
            }
            (facts, bank)
        }
    }

    proptest! {
        /// Every transfer gets exactly one plan, each alternative moves exactly the transfer's
        /// amount between the bank account and liabilities in the transfer's direction, and
        /// the fallback (the last alternative) of anything not explained is suspense.
        #[test]
        fn every_transfer_gets_one_balanced_plan((facts, bank) in any_case()) {
            let plan = plan(&facts, &bank);
            prop_assert!(!plan.alternatives.is_empty());
            for alternative in &plan.alternatives {
                prop_assert!(!alternative.legs.is_empty());
                let moved: i64 = alternative.legs.iter().map(|(_, _, a)| *a).sum();
                prop_assert_eq!(moved, bank.amount);
                for (debit, credit, amount) in &alternative.legs {
                    prop_assert!(*amount > 0);
                    prop_assert_ne!(debit, credit);
                    match bank.direction {
                        Direction::In => prop_assert_eq!(*debit, BANK),
                        Direction::Out => prop_assert_eq!(*credit, BANK),
                    }
                }
            }
            prop_assert!(plan.suspense_amount >= 0 && plan.suspense_amount <= bank.amount);
            let fallback = plan.alternatives.last().unwrap();
            let fallback_to_suspense = fallback
                .legs
                .iter()
                .all(|(d, c, _)| *d == SUSPENSE_ACCOUNT_ID || *c == SUSPENSE_ACCOUNT_ID);
            match plan.matched_as {
                MatchedAs::Suspense | MatchedAs::Refund => {
                    prop_assert!(fallback_to_suspense);
                    prop_assert_eq!(plan.suspense_amount, bank.amount);
                    prop_assert!(plan.payee.is_none());
                }
                MatchedAs::Intent => {
                    prop_assert!(plan.intent.is_some() && plan.intent_update.is_some());
                    prop_assert_eq!(bank.direction, Direction::In);
                }
                MatchedAs::Payee => {
                    prop_assert!(plan.payee.is_some());
                    prop_assert_eq!(
                        fallback_to_suspense,
                        bank.direction == Direction::Out
                    );
                }
            }
            // Whatever alternative posts, what a payee is credited never exceeds the transfer.
            for posted in 0..plan.alternatives.len() {
                let recorded = plan.clone().posted(posted, bank.amount);
                if let Some(credit) = recorded.credit(&bank) {
                    prop_assert!(credit.amount > 0 && credit.amount <= bank.amount);
                }
            }
        }
    }
}
