//! The two use cases that move money on the bank feed's behalf, each in one database
//! transaction: recording a bank transaction (dedupe, gather facts, [`matching::plan`], post,
//! write) and resolving money in suspense (gather facts, [`decide_resolution`], post, write).
//! The store only reads and writes; every decision is a domain function.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use super::{BankFeedError, BankFeedService};
use crate::clock::Clock;
use crate::domain::audit::AuditAction;
use crate::domain::bank_feed::matching::{
    self, balance_discrepancy, Credit, MatchFacts, NamedIntent, PayeeMatch, Plan, BANK_FEED_USER_ID,
};
use crate::domain::bank_feed::posting::{resolution_transaction, transfer_transaction};
use crate::domain::bank_feed::resolution::{
    decide_resolution, IntentToPay, ResolutionAction, ResolutionFacts, ResolveRejection,
};
use crate::domain::bank_feed::BankTransaction;
use crate::domain::payer::{PayerAccountHash, Pepper};
use crate::domain::settlement::{payee_code_candidates, IntentState};
use crate::domain::transaction::NewTransaction;
use crate::services::auth::Caller;
use crate::store::bank_feed::{
    DeliveryRecord, Discrepancy, Feed, NewBankRecord, NewResolution, StoredBankTransaction,
};
use crate::store::{IdempotencyClaim, Idempotent, Store, StoreError, StoredResponse, UnitOfWork};

/// What recording one bank transaction did.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    pub transaction: StoredBankTransaction,
    /// The provider sent this transaction before (or a statement line recorded it); nothing
    /// changed.
    pub duplicate: bool,
    pub credit: Option<Credit>,
}

/// Renders the response stored with a resolution's idempotency key.
pub type ResolutionResponder<'a> =
    &'a (dyn Fn(&StoredBankTransaction) -> StoredResponse + Send + Sync);

/// What recording a bank transaction needs: shared by the service (statement lines) and the
/// group-commit writer of webhook deliveries (`group.rs`).
#[derive(Clone)]
pub(super) struct Recorder {
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Clock,
    /// Keys the payer-account hash written with each transaction.
    pub(super) pepper: Pepper,
}

/// One bank transaction of a webhook delivery, to record.
pub(super) struct Arrival {
    pub(super) delivery: Arc<DeliveryRecord>,
    /// Whether the delivery row is stored with this transaction (the first of its delivery).
    pub(super) insert_delivery: bool,
    pub(super) feed: Feed,
    pub(super) bank: BankTransaction,
}

impl Arrival {
    pub(super) fn parts(&self) -> Transfer<'_> {
        Transfer {
            delivery: &self.delivery,
            insert_delivery: self.insert_delivery,
            feed: &self.feed,
            bank: &self.bank,
        }
    }
}

/// A bank transaction to record, and the delivery (or statement) that brought it.
#[derive(Clone, Copy)]
pub(super) struct Transfer<'a> {
    pub(super) delivery: &'a DeliveryRecord,
    /// Whether the delivery row is stored with this transaction (the first of its delivery).
    pub(super) insert_delivery: bool,
    pub(super) feed: &'a Feed,
    pub(super) bank: &'a BankTransaction,
}

impl Recorder {
    /// Records the bank transaction in a database transaction of its own.
    pub(super) async fn ingest(
        &self,
        transfer: Transfer<'_>,
    ) -> Result<IngestOutcome, BankFeedError> {
        let mut unit = self.store.begin().await?;
        let outcome = self.record(&mut unit, transfer).await?;
        unit.commit().await?;
        Ok(outcome)
    }

    /// Records the bank transaction (once per provider id), matches it and posts it, in
    /// `unit`; the delivery is stored in the same one when `insert_delivery`. Sees what
    /// earlier records of the same unit wrote (a copy of the same transfer earlier in a group
    /// is a duplicate here, as it would be after its commit). On an error the caller must
    /// roll `unit` back.
    pub(super) async fn record(
        &self,
        unit: &mut UnitOfWork<'_>,
        transfer: Transfer<'_>,
    ) -> Result<IngestOutcome, BankFeedError> {
        let Transfer {
            delivery,
            insert_delivery,
            feed,
            bank,
        } = transfer;
        let now = self.clock.now_micros();
        if insert_delivery {
            unit.insert_delivery(delivery).await?;
        }
        if let Some(twin) = reference_twin(unit, feed, bank).await? {
            return Ok(duplicate(twin));
        }
        let id = self.clock.new_id();
        let ledger_transaction_id = self.clock.new_id();
        let payer_hash = bank.payer.as_ref().map(|payer| payer.hash(&self.pepper));
        let claimed = unit
            .claim_bank_transaction(NewBankRecord {
                id,
                ledger_transaction_id,
                delivery_id: delivery.id,
                collection_account_id: feed.collection_account_id,
                transfer: bank,
                payer_account_hash: payer_hash.as_ref().map(PayerAccountHash::as_str),
                now,
                plan: None,
            })
            .await?;
        if !claimed {
            // The delivery row (if any) is kept: the audit trail shows every retry.
            let existing = unit
                .bank_transaction_by_provider_id(bank.provider, &bank.provider_transaction_id)
                .await?;
            return Ok(duplicate(existing));
        }

        if let (Some(payer), Some(hash)) = (&bank.payer, &payer_hash) {
            unit.note_payer_account(hash.as_str(), &payer.last4())
                .await?;
        }

        let facts = match_facts(unit, feed, bank).await?;
        let plan = matching::plan(&facts, bank);
        let candidates = candidates(&plan, ledger_transaction_id, bank, id, now)?;
        let Some(posted) = unit
            .post_first_that_fits_ungated(&candidates, BANK_FEED_USER_ID)
            .await?
        else {
            return Err(StoreError::Corrupt(
                "no posting fits a bank transaction, not even suspense".into(),
            )
            .into());
        };
        let plan = plan.posted(posted, bank.amount);

        unit.record_match(id, &plan).await?;
        if let (Some((intent_id, _)), Some((paid_amount, status))) =
            (&plan.intent, plan.intent_update)
        {
            unit.record_intent_payment(*intent_id, paid_amount, status)
                .await?;
            // A school pupil's or household's payment settles the charges in this same transaction.
            if let Some(credit) = plan.credit(bank) {
                crate::services::schools::settle_school_intent(
                    unit,
                    &self.clock,
                    *intent_id,
                    credit.amount,
                    id,
                )
                .await?;
            }
        }
        if let Some(resolution) = plan.refund_resolution {
            unit.mark_refund_paid(resolution, id, ledger_transaction_id)
                .await?;
        }
        if bank.running_balance.is_some() {
            let (debits, credits) = unit.account_totals(feed.ledger_account_id).await?;
            if let Some(ledger_balance) = balance_discrepancy(bank.running_balance, debits, credits)
            {
                let discrepancy = Discrepancy {
                    id: self.clock.new_id(),
                    collection_account_id: feed.collection_account_id,
                    bank_transaction_id: id,
                    bank_balance: bank.running_balance.unwrap_or_default(),
                    ledger_balance,
                    created_at: now,
                };
                unit.insert_discrepancy(&discrepancy).await?;
            }
        }
        let transaction = unit.load_bank_transaction(id).await?;
        Ok(IngestOutcome {
            transaction,
            duplicate: false,
            credit: plan.credit(bank),
        })
    }
}

impl BankFeedService {
    /// Moves money out of suspense as `action` says, once per idempotency key, in one
    /// database transaction: the key, the checks, the posting and the resolution record.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn resolve_once(
        &self,
        claim: &IdempotencyClaim,
        bank_transaction_id: Uuid,
        action: ResolutionAction,
        note: &str,
        caller: &Caller,
        respond: ResolutionResponder<'_>,
    ) -> Result<Idempotent<Result<StoredBankTransaction, ResolveRejection>>, BankFeedError> {
        let mut unit = self.store.begin().await?;
        let now = self.clock.now_micros();
        if let Some(earlier) = unit.claim_key(claim, None, now).await? {
            unit.rollback().await?;
            return Ok(Idempotent::Replay(earlier?));
        }
        let facts = resolution_facts(&mut unit, bank_transaction_id, action).await?;
        let plan = match decide_resolution(bank_transaction_id, &facts, action) {
            Ok(plan) => plan,
            Err(rejection) => {
                unit.rollback().await?;
                return Ok(Idempotent::Fresh(Err(rejection)));
            }
        };
        // A resolution moves exactly the money in suspense, once.
        assert!(
            plan.legs
                .iter()
                .all(|(_, _, amount)| Some(*amount) == facts.record.map(|r| r.suspense_amount)),
            "a resolution moves exactly the suspended amount"
        );
        let ledger_transaction_id = if plan.legs.is_empty() {
            None
        } else {
            let id = self.clock.new_id();
            let draft =
                resolution_transaction(id, bank_transaction_id, action, note, &plan.legs, now)?;
            let posted = unit
                .post_first_that_fits(std::slice::from_ref(&draft), BANK_FEED_USER_ID)
                .await?;
            if posted.is_none() {
                unit.rollback().await?;
                return Ok(Idempotent::Fresh(Err(ResolveRejection::PayeeBalanceShort)));
            }
            Some(id)
        };
        if let Some((intent_id, paid_amount, status)) = plan.intent_update {
            unit.record_intent_payment(intent_id, paid_amount, status)
                .await?;
            // Money assigned to a school pupil's intent settles the pupil's charges too.
            let to_payee = plan
                .legs
                .iter()
                .filter(|(_, credit, _)| plan.payee.is_some_and(|p| p.ledger_account_id == *credit))
                .map(|(_, _, amount)| amount)
                .sum();
            crate::services::schools::settle_school_intent(
                &mut unit,
                &self.clock,
                intent_id,
                to_payee,
                bank_transaction_id,
            )
            .await?;
        }
        unit.insert_resolution(&NewResolution {
            id: self.clock.new_id(),
            bank_transaction_id,
            action,
            payment_intent_id: plan.intent_update.map(|(intent, _, _)| intent),
            payee_id: plan.payee.map(|p| p.payee_id),
            note,
            resolved_by: (caller.user_id, &caller.username),
            resolved_at: now,
            ledger_transaction_id,
            duplicate_of: plan.duplicate_of,
        })
        .await?;
        unit.append_audit(&crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::SuspenseResolve,
            bank_transaction_id,
            Some(json!({ "suspense_amount": facts.record.map(|r| r.suspense_amount.to_string()) })),
            Some(json!({
                "action": action.as_str(),
                "payment_intent_id": plan.intent_update.map(|(intent, _, _)| intent),
                "payee_id": plan.payee.map(|p| p.payee_id),
                "duplicate_of": plan.duplicate_of,
                "ledger_transaction_id": ledger_transaction_id,
                "note": note,
            })),
        ))
        .await?;
        let resolved = unit.load_bank_transaction(bank_transaction_id).await?;
        unit.store_key_response(claim, &respond(&resolved)).await?;
        unit.commit().await?;
        Ok(Idempotent::Fresh(Ok(resolved)))
    }
}

/// The ledger transactions that would carry out each alternative of `plan`, in order.
pub(super) fn candidates(
    plan: &Plan,
    ledger_transaction_id: Uuid,
    bank: &BankTransaction,
    bank_transaction_id: Uuid,
    now: i64,
) -> Result<Vec<NewTransaction>, BankFeedError> {
    // Every alternative moves exactly the transfer's money, no more and no less.
    assert!(
        plan.alternatives.iter().all(|a| a
            .legs
            .iter()
            .map(|(_, _, amount)| i128::from(*amount))
            .sum::<i128>()
            == i128::from(bank.amount)),
        "a bank-feed plan moves exactly the transferred amount"
    );
    let intent_reference = plan.intent.as_ref().map(|(_, r)| r.as_str());
    Ok(plan
        .alternatives
        .iter()
        .map(|a| {
            transfer_transaction(
                ledger_transaction_id,
                bank,
                bank_transaction_id,
                intent_reference,
                &a.legs,
                now,
            )
        })
        .collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn duplicate(transaction: StoredBankTransaction) -> IngestOutcome {
    IngestOutcome {
        transaction,
        duplicate: true,
        credit: None,
    }
}

/// An earlier record of this very transfer under another provider id (one side from a bank
/// statement), found after queueing on the reference: two records of one transfer would
/// otherwise both pass a plain read of each other's uncommitted rows.
async fn reference_twin(
    unit: &mut UnitOfWork<'_>,
    feed: &Feed,
    bank: &BankTransaction,
) -> Result<Option<StoredBankTransaction>, BankFeedError> {
    let Some(reference) = matching::dedupe_reference(bank) else {
        return Ok(None);
    };
    let key = format!(
        "{}|{}|{reference}",
        feed.collection_account_id,
        bank.direction.as_str()
    );
    unit.serialize_on(&key).await?;
    let earlier = unit
        .bank_transactions_with_reference(feed.collection_account_id, bank.direction, &reference)
        .await?;
    Ok(earlier
        .into_iter()
        .find(|t| matching::is_reference_twin(bank, &t.provider_transaction_id)))
}

/// What the matcher needs to know, read (and, for what it may update, locked) in the
/// transaction that records the transfer.
async fn match_facts(
    unit: &mut UnitOfWork<'_>,
    feed: &Feed,
    bank: &BankTransaction,
) -> Result<MatchFacts, BankFeedError> {
    let collection = feed.collection_account_id;
    let statement_record_nearby = match matching::possible_duplicate_window(bank) {
        Some(window) => {
            unit.statement_record_between(collection, bank.direction, bank.amount, window)
                .await?
        }
        None => false,
    };
    let codes = payee_code_candidates(&bank.description);
    let payees = unit.payees_with_codes(collection, &codes).await?;
    let (open_refund, intents) = match bank.direction {
        crate::domain::bank_feed::Direction::Out => {
            let refund = match payees {
                // A payout the memo names never pays a refund: leave its row unlocked.
                PayeeMatch::One(_) => None,
                _ => unit.oldest_open_refund(collection, bank.amount).await?,
            };
            (refund, Vec::new())
        }
        crate::domain::bank_feed::Direction::In => {
            let references = matching::memo_references(bank);
            let mut intents = Vec::new();
            for intent in unit.lock_intents_by_reference(&references).await? {
                let payee = unit.payee_account(intent.payee_id).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!("intent {} has no payee", intent.id))
                })?;
                intents.push(NamedIntent {
                    id: intent.id,
                    reference: intent.reference,
                    collection_account_id: intent.collection_account_id,
                    payee,
                    state: IntentState {
                        keeps_overpayment: crate::services::schools::is_school_intent(
                            unit, intent.id,
                        )
                        .await?,
                        amount: intent.amount,
                        paid_amount: intent.paid_amount,
                        stored_status: intent.stored_status,
                        expires_at: intent.expires_at,
                    },
                });
            }
            (None, intents)
        }
    };
    Ok(MatchFacts {
        collection_account_id: collection,
        bank_account: feed.ledger_account_id,
        statement_record_nearby,
        payees,
        open_refund,
        intents,
    })
}

/// The record (locked), whether it is resolved, and what the action names.
async fn resolution_facts(
    unit: &mut UnitOfWork<'_>,
    bank_transaction_id: Uuid,
    action: ResolutionAction,
) -> Result<ResolutionFacts, BankFeedError> {
    let record = unit.lock_suspense_record(bank_transaction_id).await?;
    let mut facts = ResolutionFacts {
        record,
        already_resolved: false,
        intent: None,
        payee: None,
        original: None,
    };
    if record.is_none() {
        return Ok(facts);
    }
    facts.already_resolved = unit.resolution_exists(bank_transaction_id).await?;
    match action {
        ResolutionAction::Refund => {}
        ResolutionAction::Duplicate(original) => {
            facts.original = unit.original_record(original).await?;
        }
        ResolutionAction::Payee(payee) => facts.payee = unit.payee_account(payee).await?,
        ResolutionAction::Intent(intent_id) => {
            if let Some(intent) = unit.lock_intent(intent_id).await? {
                let payee = unit.payee_account(intent.payee_id).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!("intent {intent_id} has no payee"))
                })?;
                facts.intent = Some(IntentToPay {
                    id: intent.id,
                    payee,
                    amount: intent.amount,
                    paid_amount: intent.paid_amount,
                    stored_status: intent.stored_status,
                });
            }
        }
    }
    Ok(facts)
}
