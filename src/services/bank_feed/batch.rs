//! Recording a group of webhook deliveries' bank transactions with a few statements for the
//! whole group instead of a dozen round trips each. Each transaction still gets exactly what
//! [`Recorder::record`] would give it, recorded alone in the group's order: the reads are
//! answered for all at once from rows no earlier member of the run can have written, and
//! what earlier members do change (the accounts' balances, the provider ids taken) is carried
//! from one to the next in memory.
//!
//! Incoming transfers from a feed take this way. The payment intents their memos name are
//! read (and locked) for the whole run first; a run names each intent, and each school pupil,
//! at most once, so no member reads an intent or a pupil's charges another member changes.
//! A transfer that would name one again starts the next run; one naming a household QR (whose
//! payment reads every pupil of the household) and every other transfer (outgoing ones, which
//! read open refunds; statement lines, which read the feed's records) are recorded one by one
//! between the runs, so the group keeps its order, and so is a run that would have one
//! transfer (see [`MIN_RUN`]).

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::record::{duplicate, Arrival, IngestOutcome, Recorder};
use super::BankFeedError;
use crate::domain::bank_feed::matching::{
    self, balance_discrepancy, MatchFacts, NamedIntent, PayeeAccount, PayeeMatch, Plan,
    BANK_FEED_USER_ID,
};
use crate::domain::bank_feed::{BankTransaction, Direction, Provider};
use crate::domain::payer::PayerAccountHash;
use crate::domain::settlement::{payee_code_candidates, IntentState};
use crate::services::schools::{settle_pupil_transfers, PupilTransfer};
use crate::store::bank_feed::{
    Discrepancy, NamedIntentRecord, NewBankRecord, MAX_INTENT_REFERENCES, MAX_MEMO_CODES,
};
use crate::store::schools::IntentPupilRow;
use crate::store::{Fitting, StoreError, UnitOfWork};

/// References one run's memos name at most: the intents are read with one statement.
const MAX_RUN_REFERENCES: usize = MAX_INTENT_REFERENCES;

/// A lone transfer is recorded by [`Recorder::record`], which claims its provider id before
/// it posts: a copy that another instance is writing is waited for, then answered as a
/// duplicate. A run looks for copies before it posts and writes its records after, so a copy
/// committed in between fails the run's group; the group is then written again one delivery
/// at a time, each a lone transfer, which cannot fail that way a second time.
const MIN_RUN: usize = 2;

/// Whether a transfer can be recorded in a run with others (see the module comment).
fn batchable(bank: &BankTransaction) -> bool {
    bank.direction == Direction::In && !matching::from_statement(bank)
}

/// The payment intents a run's memos name, locked, with what recording a payment needs.
#[derive(Default)]
struct NamedIntents {
    by_reference: HashMap<String, NamedIntent>,
    /// The pupil of each school run's intent among them.
    pupils: HashMap<Uuid, IntentPupilRow>,
    /// The household QRs among them.
    households: HashSet<Uuid>,
}

impl NamedIntents {
    /// Reads (and locks, in id order) the intents the arrivals' memos name.
    async fn read(unit: &mut UnitOfWork<'_>, references: &[String]) -> Result<Self, BankFeedError> {
        let mut named = Self::default();
        for record in unit.lock_named_intents(references).await? {
            let NamedIntentRecord {
                intent,
                payee_account_id,
                pupil,
                household,
            } = record;
            let school = pupil.is_some() || household;
            if let Some(pupil) = pupil {
                named.pupils.insert(intent.id, pupil);
            }
            if household {
                named.households.insert(intent.id);
            }
            named.by_reference.insert(
                intent.reference.clone(),
                NamedIntent {
                    id: intent.id,
                    reference: intent.reference,
                    collection_account_id: intent.collection_account_id,
                    payee: PayeeAccount {
                        payee_id: intent.payee_id,
                        ledger_account_id: payee_account_id,
                    },
                    state: IntentState {
                        keeps_overpayment: school,
                        amount: intent.amount,
                        paid_amount: intent.paid_amount,
                        stored_status: intent.stored_status,
                        expires_at: intent.expires_at,
                    },
                },
            );
        }
        Ok(named)
    }

    /// The intents the transfer's memo names, in memo order.
    fn named_by(&self, bank: &BankTransaction) -> Vec<&NamedIntent> {
        matching::memo_references(bank)
            .iter()
            .filter_map(|r| self.by_reference.get(r))
            .collect()
    }

    /// How many arrivals from the first can be recorded in one run: none names an intent or
    /// a pupil an earlier one names, nor a household QR. 0 when the first names a household
    /// QR.
    fn run_length(&self, arrivals: &[Arrival]) -> usize {
        let mut intents = HashSet::new();
        let mut pupils = HashSet::new();
        for (index, arrival) in arrivals.iter().enumerate() {
            for intent in self.named_by(&arrival.bank) {
                let pupil = self.pupils.get(&intent.id).map(|p| p.pupil.id);
                if self.households.contains(&intent.id)
                    || !intents.insert(intent.id)
                    || pupil.is_some_and(|pupil| !pupils.insert(pupil))
                {
                    return index;
                }
            }
        }
        arrivals.len()
    }
}

/// A batchable transfer of the run that is neither a copy nor a twin, with what recording it
/// needs.
struct Claimed<'a> {
    arrival: &'a Arrival,
    id: Uuid,
    ledger_transaction_id: Uuid,
    payer_account_hash: Option<PayerAccountHash>,
    now: i64,
}

impl Claimed<'_> {
    /// Its record, written once `plan` is posted.
    fn record<'a>(&'a self, plan: &'a Plan) -> NewBankRecord<'a> {
        NewBankRecord {
            id: self.id,
            ledger_transaction_id: self.ledger_transaction_id,
            delivery_id: self.arrival.delivery.id,
            collection_account_id: self.arrival.feed.collection_account_id,
            transfer: &self.arrival.bank,
            payer_account_hash: self
                .payer_account_hash
                .as_ref()
                .map(PayerAccountHash::as_str),
            now: self.now,
            plan: Some(plan),
        }
    }
}

/// What became of each arrival of a run.
enum Fate {
    /// A statement line recorded this transfer under another id: that record.
    Twin(Uuid),
    /// The provider id was recorded already (or earlier in the run).
    Duplicate,
    /// Recorded here; index into the claimed list.
    Claimed(usize),
}

impl Recorder {
    /// Records the group's bank transactions in `unit`, in order, each as [`Self::record`]
    /// would; runs of batchable ones together.
    pub(super) async fn record_all(
        &self,
        unit: &mut UnitOfWork<'_>,
        arrivals: &[Arrival],
    ) -> Result<Vec<IngestOutcome>, BankFeedError> {
        let mut outcomes = Vec::with_capacity(arrivals.len());
        let mut rest = arrivals;
        while let Some(first) = rest.first() {
            let mut length = 0;
            let mut references = Vec::new();
            if batchable(&first.bank) {
                for arrival in rest.iter().take_while(|a| batchable(&a.bank)) {
                    let named = matching::memo_references(&arrival.bank);
                    if length > 0 && references.len() + named.len() > MAX_RUN_REFERENCES {
                        break;
                    }
                    references.extend(named);
                    length += 1;
                }
            }
            if length >= MIN_RUN {
                // Queued on the references before the intents are locked, in the order
                // `Recorder::record` takes them (the bank's statement lines are recorded that
                // way beside this group).
                unit.serialize_on_all(&mut reference_keys(&rest[..length]))
                    .await?;
                references.sort_unstable();
                references.dedup();
                let named = NamedIntents::read(unit, &references).await?;
                let length = named.run_length(&rest[..length]);
                if length >= MIN_RUN {
                    let (run, later) = rest.split_at(length);
                    outcomes.extend(self.record_run(unit, run, &named).await?);
                    rest = later;
                    continue;
                }
            }
            outcomes.push(self.record(unit, first.parts()).await?);
            rest = &rest[1..];
        }
        Ok(outcomes)
    }

    /// Records a run of batchable transfers (see the module comment). Each record is written
    /// once, matched, after its plan is posted, and answered from memory.
    async fn record_run(
        &self,
        unit: &mut UnitOfWork<'_>,
        run: &[Arrival],
        named: &NamedIntents,
    ) -> Result<Vec<IngestOutcome>, BankFeedError> {
        let deliveries: Vec<_> = run
            .iter()
            .filter(|a| a.insert_delivery)
            .map(|a| a.delivery.as_ref())
            .collect();
        unit.insert_deliveries(&deliveries).await?;

        let twins = reference_twins(unit, run).await?;
        let provider_ids: Vec<(Provider, &str)> = run
            .iter()
            .map(|a| (a.bank.provider, a.bank.provider_transaction_id.as_str()))
            .collect();
        let recorded = unit.recorded_provider_ids(&provider_ids).await?;
        let mut seen = HashSet::with_capacity(run.len());
        let mut fates = Vec::with_capacity(run.len());
        let mut claimed = Vec::with_capacity(run.len());
        for ((arrival, twin), (provider, id)) in run.iter().zip(&twins).zip(&provider_ids) {
            let key = (provider.as_str().to_owned(), (*id).to_owned());
            fates.push(match twin {
                Some(twin) => Fate::Twin(*twin),
                None if recorded.contains(&key) || !seen.insert(key) => Fate::Duplicate,
                None => {
                    claimed.push(Claimed {
                        arrival,
                        id: self.clock.new_id(),
                        ledger_transaction_id: self.clock.new_id(),
                        payer_account_hash: arrival
                            .bank
                            .payer
                            .as_ref()
                            .map(|payer| payer.hash(&self.pepper)),
                        now: self.clock.now_micros(),
                    });
                    Fate::Claimed(claimed.len() - 1)
                }
            });
        }

        let payers: Vec<(&str, String)> = claimed
            .iter()
            .filter_map(|claim| {
                Some((
                    claim.payer_account_hash.as_ref()?.as_str(),
                    claim.arrival.bank.payer.as_ref()?.last4(),
                ))
            })
            .collect();
        let payers: Vec<(&str, &str)> = payers.iter().map(|(h, l)| (*h, l.as_str())).collect();
        unit.note_payer_accounts(&payers).await?;

        let plans = self.plans(unit, &claimed, named).await?;
        let posted = self.post(unit, &claimed, plans, named).await?;

        let twin_ids: Vec<Uuid> = fates
            .iter()
            .filter_map(|fate| match fate {
                Fate::Twin(id) => Some(*id),
                _ => None,
            })
            .collect();
        let twins: HashMap<Uuid, _> = if twin_ids.is_empty() {
            HashMap::new()
        } else {
            unit.load_bank_transactions(&twin_ids)
                .await?
                .into_iter()
                .map(|t| (t.id, t))
                .collect()
        };
        let mut outcomes = Vec::with_capacity(run.len());
        for (arrival, fate) in run.iter().zip(fates) {
            outcomes.push(match fate {
                Fate::Twin(id) => duplicate(twins.get(&id).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!("bank transaction {id} found, then not"))
                })?),
                Fate::Duplicate => duplicate(
                    unit.bank_transaction_by_provider_id(
                        arrival.bank.provider,
                        &arrival.bank.provider_transaction_id,
                    )
                    .await?,
                ),
                Fate::Claimed(index) => {
                    let (claim, plan) = (&claimed[index], &posted[index]);
                    let last4 = arrival.bank.payer.as_ref().map(|payer| payer.last4());
                    IngestOutcome {
                        transaction: claim.record(plan).stored(last4),
                        duplicate: false,
                        credit: plan.credit(&arrival.bank),
                    }
                }
            });
        }
        Ok(outcomes)
    }

    /// The matcher's plan for each claimed transfer, from facts read for all at once.
    async fn plans(
        &self,
        unit: &mut UnitOfWork<'_>,
        claimed: &[Claimed<'_>],
        intents: &NamedIntents,
    ) -> Result<Vec<Plan>, BankFeedError> {
        let collections: Vec<Uuid> = claimed
            .iter()
            .map(|c| c.arrival.feed.collection_account_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let windows: Vec<Option<(i64, i64)>> = claimed
            .iter()
            .map(|c| matching::possible_duplicate_window(&c.arrival.bank))
            .collect();
        let span = windows
            .iter()
            .flatten()
            .copied()
            .reduce(|(from, to), (f, t)| (from.min(f), to.max(t)));
        let lines = match span {
            Some(span) => {
                let amounts: Vec<i64> = claimed
                    .iter()
                    .map(|c| c.arrival.bank.amount)
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                unit.statement_records_between(&collections, &amounts, span)
                    .await?
            }
            None => Vec::new(),
        };
        let codes: Vec<Vec<String>> = claimed
            .iter()
            .map(|c| {
                let mut codes = payee_code_candidates(&c.arrival.bank.description);
                codes.truncate(MAX_MEMO_CODES);
                codes
            })
            .collect();
        let all_codes: Vec<&str> = codes
            .iter()
            .flatten()
            .map(String::as_str)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let payees = if all_codes.is_empty() {
            Vec::new()
        } else {
            unit.payees_with_any_code(&all_codes).await?
        };

        Ok(claimed
            .iter()
            .zip(windows)
            .zip(codes)
            .map(|((claim, window), codes)| {
                let (feed, bank) = (&claim.arrival.feed, &claim.arrival.bank);
                let collection = feed.collection_account_id;
                let statement_record_nearby = window.is_some_and(|(from, to)| {
                    lines.iter().any(|(account, direction, amount, at)| {
                        *account == collection
                            && direction == bank.direction.as_str()
                            && *amount == bank.amount
                            && (from..=to).contains(at)
                    })
                });
                let named: Vec<PayeeAccount> = payees
                    .iter()
                    .filter(|(account, code, _, _)| *account == collection && codes.contains(code))
                    .map(|(_, _, payee_id, ledger_account_id)| PayeeAccount {
                        payee_id: *payee_id,
                        ledger_account_id: *ledger_account_id,
                    })
                    .collect();
                let payees = match named.as_slice() {
                    [] => PayeeMatch::None,
                    [payee] => PayeeMatch::One(*payee),
                    _ => PayeeMatch::Several,
                };
                let facts = MatchFacts {
                    collection_account_id: collection,
                    bank_account: feed.ledger_account_id,
                    statement_record_nearby,
                    payees,
                    open_refund: None,
                    intents: intents.named_by(bank).into_iter().cloned().collect(),
                };
                matching::plan(&facts, bank)
            })
            .collect())
    }

    /// Posts every claimed transfer's plan (the first alternative that fits, one after
    /// another) and then what the school pupils' payments among them settle, with one write;
    /// then writes each record with what it matched, the pupils' payments, the intents'
    /// payments and the discrepancies its running balance shows: the plans as posted.
    async fn post(
        &self,
        unit: &mut UnitOfWork<'_>,
        claimed: &[Claimed<'_>],
        plans: Vec<Plan>,
        named: &NamedIntents,
    ) -> Result<Vec<Plan>, BankFeedError> {
        let candidates = claimed
            .iter()
            .zip(&plans)
            .map(|(claim, plan)| {
                super::record::candidates(
                    plan,
                    claim.ledger_transaction_id,
                    &claim.arrival.bank,
                    claim.id,
                    claim.now,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let postings: Vec<Fitting<'_>> = claimed
            .iter()
            .zip(&candidates)
            .map(|(claim, candidates)| Fitting {
                candidates,
                watched: claim.arrival.feed.ledger_account_id,
            })
            .collect();
        let mut ledger = unit
            .lock_ledger(postings.iter().flat_map(Fitting::account_ids))
            .await?;
        let fitted = ledger.post_each_first_that_fits(&postings, BANK_FEED_USER_ID);
        let mut posted = Vec::with_capacity(plans.len());
        for ((claim, plan), fitted) in claimed.iter().zip(plans).zip(&fitted) {
            let Some(index) = fitted.posted else {
                return Err(StoreError::Corrupt(
                    "no posting fits a bank transaction, not even suspense".into(),
                )
                .into());
            };
            let plan = plan.posted(index, claim.arrival.bank.amount);
            // Only outgoing transfers pay refunds, and none is recorded in a run.
            if plan.refund_resolution.is_some() {
                return Err(StoreError::Corrupt(format!(
                    "bank transaction {} recorded in a run pays a refund",
                    claim.id
                ))
                .into());
            }
            posted.push(plan);
        }
        let pupil_transfers: Vec<PupilTransfer<'_>> = claimed
            .iter()
            .zip(&posted)
            .filter_map(|(claim, plan)| {
                let (intent, _) = plan.intent.as_ref()?;
                plan.intent_update?;
                Some(PupilTransfer {
                    target: named.pupils.get(intent)?,
                    credited: plan.credit(&claim.arrival.bank)?.amount,
                    bank_transaction_id: claim.id,
                })
            })
            .collect();
        // The school's turn after the accounts, as `Recorder::record` and the bank's statement
        // lines take them; then the accounts the settlements post to, and both sides of every
        // pupil's payment (the transfer to the school, the school's settlement) are written
        // with one write.
        let settlements = settle_pupil_transfers(unit, &self.clock, &pupil_transfers).await?;
        unit.lock_more(&mut ledger, settlements.account_ids())
            .await?;
        settlements.post(&mut ledger)?;
        unit.write_ledger(ledger).await?;
        // Written matched, now that the plans are posted: the school payments and
        // discrepancies below name them. A copy another group (or instance) recorded after
        // `recorded_provider_ids` looked takes the provider id first: this group is then
        // written again one transfer at a time, which answers it as a duplicate.
        let records: Vec<NewBankRecord<'_>> = claimed
            .iter()
            .zip(&posted)
            .map(|(claim, plan)| claim.record(plan))
            .collect();
        if unit.claim_bank_transactions(&records).await?.len() != records.len() {
            return Err(StoreError::WriteConflict.into());
        }
        let intent_payments: Vec<_> = posted
            .iter()
            .filter_map(|plan| {
                let (intent, _) = plan.intent.as_ref()?;
                let (paid_amount, status) = plan.intent_update?;
                Some((*intent, paid_amount, status))
            })
            .collect();
        settlements.write_payments(unit, &intent_payments).await?;
        for (claim, fitted) in claimed.iter().zip(&fitted) {
            let bank = &claim.arrival.bank;
            let (debits, credits) = fitted.totals;
            if let Some(ledger_balance) = balance_discrepancy(bank.running_balance, debits, credits)
            {
                unit.insert_discrepancy(&Discrepancy {
                    id: self.clock.new_id(),
                    collection_account_id: claim.arrival.feed.collection_account_id,
                    bank_transaction_id: claim.id,
                    bank_balance: bank.running_balance.unwrap_or_default(),
                    ledger_balance,
                    created_at: claim.now,
                })
                .await?;
            }
        }
        Ok(posted)
    }
}

/// The keys [`Recorder::record`] queues on before it looks for a transfer's twin, of the
/// arrivals that have a bank reference.
fn reference_keys(arrivals: &[Arrival]) -> Vec<String> {
    arrivals
        .iter()
        .filter_map(|a| {
            Some(format!(
                "{}|{}|{}",
                a.feed.collection_account_id,
                a.bank.direction.as_str(),
                matching::dedupe_reference(&a.bank)?
            ))
        })
        .collect()
}

/// Records of this very transfer under another provider id (one side from a bank statement),
/// for each arrival of the run that has a bank reference: what [`Recorder::record`]'s check
/// finds. The caller has queued on the run's [`reference_keys`].
async fn reference_twins(
    unit: &mut UnitOfWork<'_>,
    run: &[Arrival],
) -> Result<Vec<Option<Uuid>>, BankFeedError> {
    let references: Vec<Option<String>> = run
        .iter()
        .map(|a| matching::dedupe_reference(&a.bank))
        .collect();
    if references.iter().all(Option::is_none) {
        return Ok(vec![None; run.len()]);
    }
    let collections: Vec<Uuid> = run
        .iter()
        .map(|a| a.feed.collection_account_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let wanted: Vec<&str> = references.iter().flatten().map(String::as_str).collect();
    let earlier = unit.records_with_references(&collections, &wanted).await?;
    Ok(run
        .iter()
        .zip(&references)
        .map(|(arrival, reference)| {
            let reference = reference.as_ref()?;
            earlier
                .iter()
                .find(|(_, account, direction, stored, provider_id, _)| {
                    *account == arrival.feed.collection_account_id
                        && direction == arrival.bank.direction.as_str()
                        && stored == reference
                        && matching::is_reference_twin(&arrival.bank, provider_id)
                })
                .map(|(id, ..)| *id)
        })
        .collect())
}
