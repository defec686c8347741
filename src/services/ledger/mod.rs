//! Ledger use cases: accounts, posting, reversal, reading back, verification.

mod coalesce;
mod error;
pub mod models;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use coalesce::{SingleRequest, Singles};
pub use error::{LedgerError, RecordKeeper};
use models::*;

use crate::clock::{to_datetime, Clock};
use crate::domain::account::{
    Account, AccountCode, AccountFlags, AccountKind, AccountRef, NewAccount,
};
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::money::Currency;
use crate::domain::transaction::{NewTransaction, Posting, TransactionDraft};
use crate::services::auth::Caller;
use crate::services::paging;
use crate::services::ErrorBody;
use crate::store::{
    AccountFilter, IdempotencyClaim, Idempotent, PostRejection, SingleOutcome, Store, StoreError,
    StoredResponse, StoredTransaction, TransactionFilter, WriteMode,
};

pub const MAX_BATCH: usize = 1_000;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Clock skew tolerated on a client's `effective_at`.
const FUTURE_TOLERANCE_MICROS: i64 = 5 * 60 * 1_000_000;

/// A response as sent, and as stored for replays of the same idempotency key.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub replayed: bool,
}

impl Reply {
    /// An earlier request's stored response, sent again.
    pub fn replay(stored: crate::store::StoredResponse) -> Self {
        Self {
            status: stored.status,
            body: stored.body,
            replayed: true,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// asset, liability, equity, revenue or expense
    #[param(pattern = "^(asset|liability|equity|revenue|expense)$")]
    pub kind: Option<String>,
    #[param(pattern = "^(VND|USD|EUR)$")]
    pub currency: Option<String>,
    /// Only accounts whose code starts with this, e.g. `payee:`
    pub code_prefix: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransactionQuery {
    /// Only transactions with an entry on this account (id or code).
    pub account: Option<String>,
    /// Posted at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Posted before this time.
    pub to: Option<DateTime<Utc>>,
    pub reference: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchItemView {
    pub index: usize,
    /// `posted` or `rejected`
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchResponse {
    pub posted: usize,
    pub rejected: usize,
    pub results: Vec<BatchItemView>,
}

/// Accounts never change currency, kind or flags, so once read they can be kept.
#[derive(Default)]
struct AccountCache {
    by_id: RwLock<HashMap<Uuid, Account>>,
    by_code: RwLock<HashMap<String, Uuid>>,
}

const ACCOUNT_CACHE_LIMIT: usize = 100_000;

impl AccountCache {
    fn get(&self, reference: &AccountRef) -> Option<Account> {
        let id = match reference {
            AccountRef::Id(id) => *id,
            AccountRef::Code(code) => *self.by_code.read().expect("cache lock").get(code)?,
        };
        self.by_id.read().expect("cache lock").get(&id).cloned()
    }

    fn insert(&self, accounts: &[Account]) {
        let mut by_id = self.by_id.write().expect("cache lock");
        let mut by_code = self.by_code.write().expect("cache lock");
        if by_id.len() + accounts.len() > ACCOUNT_CACHE_LIMIT {
            by_id.clear();
            by_code.clear();
        }
        for account in accounts {
            by_code.insert(account.code.clone(), account.id);
            by_id.insert(account.id, account.clone());
        }
    }
}

#[derive(Clone)]
pub struct LedgerService {
    store: Arc<dyn Store>,
    cache: Arc<AccountCache>,
    singles: Singles,
    clock: Clock,
}

impl LedgerService {
    /// Must be called within a Tokio runtime: it starts the group-commit writers.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            singles: coalesce::start(store.clone()),
            store,
            cache: Arc::default(),
            clock: Clock::default(),
        }
    }

    /// Whether the database answers: what `/readyz` reports.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// The clock this service records and judges time by (the application's one clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    #[tracing::instrument(skip(self, request), fields(code = %request.code))]
    pub async fn create_account(
        &self,
        request: NewAccountRequest,
    ) -> Result<AccountView, LedgerError> {
        let name = request.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(LedgerError::InvalidAccountName);
        }
        let kind = AccountKind::parse(&request.kind)
            .ok_or_else(|| LedgerError::InvalidAccountKind(request.kind.clone()))?;
        if request.flags.debits_must_not_exceed_credits
            && request.flags.credits_must_not_exceed_debits
        {
            return Err(LedgerError::ConflictingFlags);
        }
        let account = NewAccount {
            code: AccountCode::parse(&request.code)?,
            name,
            kind,
            currency: Currency::parse(&request.currency)?,
            flags: AccountFlags {
                debits_must_not_exceed_credits: request.flags.debits_must_not_exceed_credits,
                credits_must_not_exceed_debits: request.flags.credits_must_not_exceed_debits,
            },
        };
        let created = self
            .store
            .create_account(&account, self.clock.new_id(), self.clock.now_micros())
            .await
            .map_err(|e| match e {
                StoreError::AccountCodeTaken => LedgerError::AccountCodeTaken(request.code.clone()),
                other => other.into(),
            })?;
        self.cache.insert(std::slice::from_ref(&created));
        Ok(AccountView::new(&created, &Default::default(), None))
    }

    /// Resolves ids and codes to accounts, from the cache where possible.
    async fn resolve(
        &self,
        references: &[AccountRef],
    ) -> Result<HashMap<AccountRef, Account>, LedgerError> {
        let mut found = HashMap::new();
        let (mut ids, mut codes) = (Vec::new(), Vec::new());
        for reference in references {
            if found.contains_key(reference) {
                continue;
            }
            match self.cache.get(reference) {
                Some(account) => {
                    found.insert(reference.clone(), account);
                }
                None => match reference {
                    AccountRef::Id(id) => ids.push(*id),
                    AccountRef::Code(code) => codes.push(code.clone()),
                },
            }
        }
        if !ids.is_empty() || !codes.is_empty() {
            ids.sort_unstable();
            ids.dedup();
            codes.sort_unstable();
            codes.dedup();
            let loaded = self.store.find_accounts(&ids, &codes).await?;
            self.cache.insert(&loaded);
            for account in loaded {
                found.insert(AccountRef::Id(account.id), account.clone());
                found.insert(AccountRef::Code(account.code.clone()), account);
            }
        }
        Ok(found)
    }

    async fn resolve_one(&self, reference: &str) -> Result<Account, LedgerError> {
        let reference = AccountRef::parse(reference);
        self.resolve(std::slice::from_ref(&reference))
            .await?
            .remove(&reference)
            .ok_or_else(|| LedgerError::AccountNotFound(reference.to_string()))
    }

    pub async fn account(
        &self,
        reference: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<AccountView, LedgerError> {
        let account = self.resolve_one(reference).await?;
        let found = self
            .store
            .account_with_balance(account.id, as_of.map(|t| t.timestamp_micros()))
            .await?
            .ok_or_else(|| LedgerError::AccountNotFound(reference.to_owned()))?;
        Ok(AccountView::new(&found.account, &found.balance, as_of))
    }

    pub async fn list_accounts(&self, query: AccountQuery) -> Result<AccountPage, LedgerError> {
        let limit = paging::limit(query.limit)?;
        let filter = AccountFilter {
            kind: match query.kind.as_deref() {
                Some(kind) => Some(
                    AccountKind::parse(kind)
                        .ok_or_else(|| LedgerError::InvalidAccountKind(kind.to_owned()))?,
                ),
                None => None,
            },
            currency: query.currency.as_deref().map(Currency::parse).transpose()?,
            code_prefix: query.code_prefix,
            after: paging::read_id_cursor(query.cursor.as_deref())?,
            limit,
        };
        let accounts = self.store.list_accounts(&filter).await?;
        let next_cursor = paging::next_cursor(&accounts, limit, |a| a.account.id.to_string());
        Ok(AccountPage {
            data: accounts
                .iter()
                .map(|a| AccountView::new(&a.account, &a.balance, None))
                .collect(),
            next_cursor,
        })
    }

    pub async fn entries(
        &self,
        reference: &str,
        query: PageQuery,
    ) -> Result<EntryPage, LedgerError> {
        let limit = paging::limit(query.limit)?;
        let account = self.resolve_one(reference).await?;
        let after = paging::read_cursor(query.cursor.as_deref(), |text| text.parse::<i64>().ok())?
            .unwrap_or(0);
        let entries = self.store.list_entries(account.id, after, limit).await?;
        let next_cursor = paging::next_cursor(&entries, limit, |e| e.account_seq.to_string());
        Ok(EntryPage {
            data: entries
                .iter()
                .map(|e| EntryView::new(&account, e))
                .collect(),
            next_cursor,
        })
    }

    pub async fn transaction(&self, id: Uuid) -> Result<TransactionView, LedgerError> {
        let stored = self
            .store
            .transaction(id)
            .await?
            .ok_or(LedgerError::TransactionNotFound(id))?;
        let mut views = self.stored_views(vec![stored]).await?;
        Ok(views.remove(0))
    }

    pub async fn list_transactions(
        &self,
        query: TransactionQuery,
    ) -> Result<TransactionPage, LedgerError> {
        let limit = paging::limit(query.limit)?;
        let account_id = match query.account.as_deref() {
            Some(reference) => Some(self.resolve_one(reference).await?.id),
            None => None,
        };
        let after = paging::read_cursor(query.cursor.as_deref(), paging::time_and_id)?;
        let filter = TransactionFilter {
            account_id,
            from: query.from.map(|t| t.timestamp_micros()),
            to: query.to.map(|t| t.timestamp_micros()),
            reference: query.reference,
            after,
            limit,
        };
        let stored = self.store.list_transactions(&filter).await?;
        let next_cursor = paging::next_cursor(&stored, limit, |t| {
            paging::time_and_id_key(t.created_at, t.id)
        });
        Ok(TransactionPage {
            data: self.stored_views(stored).await?,
            next_cursor,
        })
    }

    async fn stored_views(
        &self,
        stored: Vec<StoredTransaction>,
    ) -> Result<Vec<TransactionView>, LedgerError> {
        let references: Vec<AccountRef> = stored
            .iter()
            .flat_map(|t| t.entries.iter().map(|e| AccountRef::Id(e.account_id)))
            .collect();
        let accounts = self.resolve(&references).await?;
        stored
            .into_iter()
            .map(|t| {
                let postings = t
                    .entries
                    .chunks(2)
                    .map(|pair| match pair {
                        [debit, credit] if debit.is_debit && !credit.is_debit => {
                            let currency = accounts
                                .get(&AccountRef::Id(debit.account_id))
                                .map(|a| a.currency)
                                .ok_or_else(|| {
                                    StoreError::Corrupt(format!(
                                        "account {} missing",
                                        debit.account_id
                                    ))
                                })?;
                            Ok(PostingView {
                                debit: debit.account_id,
                                credit: credit.account_id,
                                amount: currency.format_minor(debit.amount),
                                currency: currency.code().to_owned(),
                            })
                        }
                        _ => Err(StoreError::Corrupt(format!(
                            "transaction {} has unpaired entries",
                            t.id
                        ))),
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok(TransactionView {
                    id: t.id,
                    description: t.description,
                    reference: t.reference,
                    metadata: parse_metadata(t.metadata.as_deref())?,
                    postings,
                    effective_at: to_datetime(t.effective_at),
                    created_at: to_datetime(t.created_at),
                    reversal_of: t.reversal_of,
                    reversed_by: t.reversed_by,
                })
            })
            .collect()
    }

    /// Turns requests into postable transactions; each fails on its own.
    async fn prepare(
        &self,
        requests: Vec<TransactionRequest>,
    ) -> Result<Vec<Result<NewTransaction, LedgerError>>, LedgerError> {
        let references: Vec<AccountRef> = requests
            .iter()
            .flat_map(|r| {
                r.postings
                    .iter()
                    .flat_map(|p| [AccountRef::parse(&p.debit), AccountRef::parse(&p.credit)])
            })
            .collect();
        let accounts = self.resolve(&references).await?;
        let now = self.clock.now_micros();
        Ok(requests
            .into_iter()
            .map(|request| {
                let postings = request
                    .postings
                    .iter()
                    .map(|p| {
                        let find = |text: &str| {
                            accounts
                                .get(&AccountRef::parse(text))
                                .ok_or_else(|| LedgerError::UnknownAccount(text.to_owned()))
                        };
                        Ok(Posting::new(
                            find(&p.debit)?,
                            find(&p.credit)?,
                            &p.amount.0,
                        )?)
                    })
                    .collect::<Result<Vec<_>, LedgerError>>()?;
                let metadata = request
                    .metadata
                    .map(|m| serde_json::to_string(&m).expect("JSON map serializes"));
                if metadata
                    .as_ref()
                    .is_some_and(|m| m.len() > MAX_METADATA_BYTES)
                {
                    return Err(LedgerError::MetadataTooLarge(MAX_METADATA_BYTES));
                }
                let effective_at = request.effective_at.map_or(now, |t| t.timestamp_micros());
                if effective_at > now + FUTURE_TOLERANCE_MICROS {
                    return Err(LedgerError::EffectiveAtInFuture);
                }
                let draft = TransactionDraft {
                    id: request.id.unwrap_or_else(|| self.clock.new_id()),
                    id_from_client: request.id.is_some(),
                    description: request.description,
                    reference: request.reference,
                    metadata,
                    effective_at,
                    created_at: now,
                    reversal_of: None,
                };
                Ok(NewTransaction::new(draft, postings)?)
            })
            .collect())
    }

    /// Posts one transaction: 201 with the transaction, or an error and no effect.
    #[tracing::instrument(skip_all, fields(user = %caller.username))]
    pub async fn post_one(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        request: TransactionRequest,
    ) -> Result<Reply, LedgerError> {
        let transaction = self.prepare(vec![request]).await?.remove(0)?;
        self.write_one(caller, claim, transaction, None).await
    }

    #[tracing::instrument(skip_all, fields(user = %caller.username, original = %id))]
    pub async fn reverse(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        id: Uuid,
        request: ReverseRequest,
    ) -> Result<Reply, LedgerError> {
        // A retry of a reversal that was done answers as it did, not ALREADY_REVERSED.
        match crate::services::earlier_answer(self.store.as_ref(), &claim).await {
            Ok(Some(reply)) => return Ok(reply),
            Ok(None) => {}
            Err(StoreError::IdempotencyKeyReused) => return Err(LedgerError::IdempotencyKeyReused),
            Err(StoreError::IdempotencyKeyInProgress) => {
                return Err(LedgerError::IdempotencyKeyInProgress)
            }
            Err(other) => return Err(other.into()),
        }
        let original = self
            .store
            .transaction(id)
            .await?
            .ok_or(LedgerError::TransactionNotFound(id))?;
        if original.reversal_of.is_some() {
            return Err(LedgerError::ReversalNotReversible(id));
        }
        if original.reversed_by.is_some() {
            return Err(LedgerError::AlreadyReversed(id));
        }
        if let Some(keeper) = RecordKeeper::of(original.created_by) {
            return Err(LedgerError::KeptElsewhere { id, keeper });
        }
        let view = self.stored_views(vec![original.clone()]).await?.remove(0);
        let references: Vec<AccountRef> = original
            .entries
            .iter()
            .map(|e| AccountRef::Id(e.account_id))
            .collect();
        let accounts = self.resolve(&references).await?;
        let postings = view
            .postings
            .iter()
            .map(|p| {
                let account = |id: Uuid| {
                    accounts
                        .get(&AccountRef::Id(id))
                        .ok_or_else(|| LedgerError::UnknownAccount(id.to_string()))
                };
                Ok(Posting::new(account(p.debit)?, account(p.credit)?, &p.amount)?.reversed())
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        let now = self.clock.now_micros();
        let draft = TransactionDraft {
            id: request.id.unwrap_or_else(|| self.clock.new_id()),
            id_from_client: request.id.is_some(),
            description: request.description.unwrap_or_else(|| {
                // Cut to the limit: an original at full length must stay reversible.
                format!("Reversal of {}", original.description)
                    .chars()
                    .take(crate::domain::transaction::MAX_DESCRIPTION_CHARS)
                    .collect()
            }),
            reference: original.reference.clone(),
            metadata: None,
            effective_at: now,
            created_at: now,
            reversal_of: Some(id),
        };
        let reversal_id = draft.id;
        let audit = crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::TransactionReverse,
            id,
            Some(json!({ "reference": original.reference, "description": original.description })),
            Some(json!({ "reversed_by": reversal_id, "description": draft.description })),
        );
        self.write_one(
            caller,
            claim,
            NewTransaction::new(draft, postings)?,
            Some(audit),
        )
        .await
    }

    /// `audit`, if any, is written in the transaction's own database transaction.
    async fn write_one(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        transaction: NewTransaction,
        audit: Option<AuditRecord>,
    ) -> Result<Reply, LedgerError> {
        let body = serde_json::to_string(&new_view(&transaction)).expect("views serialize");
        let response = StoredResponse { status: 201, body };
        let mut attempt = 0;
        loop {
            let request = SingleRequest {
                created_by: caller.user_id,
                claim: claim.clone(),
                transaction: transaction.clone(),
                response: response.clone(),
                audit: audit.clone(),
            };
            let outcome =
                self.singles.write(request).await.map_err(|stopped| {
                    LedgerError::Store(StoreError::Corrupt(stopped.to_string()))
                })?;
            match outcome {
                Ok(SingleOutcome::Posted) => {
                    metrics::counter!("ledger_transactions_posted_total", "source" => "api")
                        .increment(1);
                    return Ok(Reply {
                        status: response.status,
                        body: response.body,
                        replayed: false,
                    });
                }
                Ok(SingleOutcome::Replay(stored)) => {
                    metrics::counter!("ledger_idempotent_replays_total").increment(1);
                    return Ok(replayed(stored));
                }
                Ok(SingleOutcome::Rejected(rejection)) => return Err(rejection.into()),
                Ok(SingleOutcome::KeyReused) => return Err(LedgerError::IdempotencyKeyReused),
                Ok(SingleOutcome::KeyInProgress) => {
                    return Err(LedgerError::IdempotencyKeyInProgress)
                }
                // A concurrent write took this client-chosen id or reversal first; the retry
                // sees it and answers precisely.
                Err(StoreError::WriteConflict) if attempt == 0 => attempt += 1,
                Err(StoreError::WriteConflict) => return Err(LedgerError::ConcurrentConflict),
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Posts up to [`MAX_BATCH`] transactions in one database transaction.
    #[tracing::instrument(skip_all, fields(user = %caller.username, size = request.transactions.len(), atomic = request.atomic))]
    pub async fn post_batch(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        request: BatchRequest,
    ) -> Result<Reply, LedgerError> {
        let count = request.transactions.len();
        if count == 0 {
            return Err(LedgerError::BatchEmpty);
        }
        if count > MAX_BATCH {
            return Err(LedgerError::BatchTooLarge(MAX_BATCH));
        }
        let prepared = self.prepare(request.transactions).await?;
        let mode = if request.atomic {
            WriteMode::AllOrNothing
        } else {
            WriteMode::Independent
        };
        let mut invalid: Vec<(usize, LedgerError)> = Vec::new();
        let mut valid: Vec<(usize, NewTransaction)> = Vec::new();
        for (index, item) in prepared.into_iter().enumerate() {
            match item {
                Ok(transaction) => valid.push((index, transaction)),
                Err(error) => invalid.push((index, error)),
            }
        }
        if mode == WriteMode::AllOrNothing && !invalid.is_empty() {
            let (index, cause) = invalid.swap_remove(0);
            return Err(LedgerError::BatchRejected {
                index,
                cause: Box::new(cause),
            });
        }
        let transactions: Vec<NewTransaction> = valid.iter().map(|(_, t)| t.clone()).collect();
        let render = |results: &[Result<(), PostRejection>]| {
            let mut items: Vec<BatchItemView> = invalid
                .iter()
                .map(|(index, error)| BatchItemView {
                    index: *index,
                    status: "rejected".into(),
                    transaction: None,
                    error: Some(ErrorBody::from(error)),
                })
                .collect();
            for ((index, transaction), result) in valid.iter().zip(results) {
                items.push(match result {
                    Ok(()) => BatchItemView {
                        index: *index,
                        status: "posted".into(),
                        transaction: Some(new_view(transaction)),
                        error: None,
                    },
                    Err(rejection) => BatchItemView {
                        index: *index,
                        status: "rejected".into(),
                        transaction: None,
                        error: Some(ErrorBody::from(&LedgerError::from(*rejection))),
                    },
                });
            }
            items.sort_by_key(|item| item.index);
            let posted = items.iter().filter(|i| i.transaction.is_some()).count();
            let response = BatchResponse {
                posted,
                rejected: items.len() - posted,
                results: items,
            };
            StoredResponse {
                status: 200,
                body: serde_json::to_string(&response).expect("views serialize"),
            }
        };
        match self
            .write(caller, &claim, &transactions, mode, &render)
            .await?
        {
            Idempotent::Replay(stored) => Ok(replayed(stored)),
            Idempotent::Fresh(results) => {
                if mode == WriteMode::AllOrNothing {
                    if let Some((position, rejection)) = results
                        .iter()
                        .enumerate()
                        .find_map(|(i, r)| r.err().map(|e| (i, e)))
                    {
                        return Err(LedgerError::BatchRejected {
                            index: valid[position].0,
                            cause: Box::new(rejection.into()),
                        });
                    }
                }
                let stored = render(&results);
                Ok(Reply {
                    status: stored.status,
                    body: stored.body,
                    replayed: false,
                })
            }
        }
    }

    /// Writes through the store, retrying once when a concurrent write took a unique value
    /// first: the retry sees that value and answers precisely.
    async fn write(
        &self,
        caller: &Caller,
        claim: &IdempotencyClaim,
        transactions: &[NewTransaction],
        mode: WriteMode,
        respond: crate::store::Responder<'_>,
    ) -> Result<Idempotent<Vec<Result<(), PostRejection>>>, LedgerError> {
        let mut attempt = 0;
        loop {
            match self
                .store
                .post_transactions(
                    caller.user_id,
                    Some(claim),
                    transactions,
                    mode,
                    respond,
                    self.clock.now_micros(),
                )
                .await
            {
                Err(StoreError::WriteConflict) if attempt == 0 => attempt += 1,
                Err(StoreError::WriteConflict) => return Err(LedgerError::ConcurrentConflict),
                Err(StoreError::IdempotencyKeyReused) => {
                    return Err(LedgerError::IdempotencyKeyReused)
                }
                Err(StoreError::IdempotencyKeyInProgress) => {
                    return Err(LedgerError::IdempotencyKeyInProgress)
                }
                Err(other) => return Err(other.into()),
                Ok(outcome) => {
                    match &outcome {
                        Idempotent::Replay(_) => {
                            metrics::counter!("ledger_idempotent_replays_total").increment(1)
                        }
                        Idempotent::Fresh(results) => {
                            let posted = results.iter().filter(|r| r.is_ok()).count() as u64;
                            if mode == WriteMode::Independent || posted == results.len() as u64 {
                                metrics::counter!("ledger_transactions_posted_total", "source" => "api")
                                    .increment(posted);
                            }
                        }
                    }
                    return Ok(outcome);
                }
            }
        }
    }

    pub async fn verify(&self) -> Result<VerifyView, LedgerError> {
        let report = self.store.verify().await?;
        Ok(VerifyView {
            ok: report.violations.is_empty(),
            backend: self.store.backend().to_owned(),
            transactions_checked: report.transactions_checked,
            accounts_checked: report.accounts_checked,
            total_debits: report.total_debits,
            total_credits: report.total_credits,
            violations: report
                .violations
                .into_iter()
                .map(|v| ViolationView {
                    kind: v.kind.to_owned(),
                    detail: v.detail,
                })
                .collect(),
        })
    }
}

fn replayed(stored: StoredResponse) -> Reply {
    Reply {
        status: stored.status,
        body: stored.body,
        replayed: true,
    }
}

fn new_view(transaction: &NewTransaction) -> TransactionView {
    TransactionView {
        id: transaction.id,
        description: transaction.description.clone(),
        reference: transaction.reference.clone(),
        metadata: parse_metadata(transaction.metadata.as_deref()).unwrap_or(None),
        postings: transaction
            .postings
            .iter()
            .map(|p| PostingView {
                debit: p.debit,
                credit: p.credit,
                amount: p.currency.format_minor(p.amount.minor()),
                currency: p.currency.code().to_owned(),
            })
            .collect(),
        effective_at: to_datetime(transaction.effective_at),
        created_at: to_datetime(transaction.created_at),
        reversal_of: transaction.reversal_of,
        reversed_by: None,
    }
}

fn parse_metadata(text: Option<&str>) -> Result<Option<serde_json::Value>, StoreError> {
    text.map(|t| serde_json::from_str(t).map_err(|e| StoreError::Corrupt(format!("metadata: {e}"))))
        .transpose()
}
