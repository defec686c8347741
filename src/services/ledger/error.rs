//! Everything the ledger use cases can refuse, one variant per stable API code.

use uuid::Uuid;

use crate::domain::account::{FlagViolation, InvalidAccountCode};
use crate::domain::money::{AmountError, UnknownCurrency};
use crate::domain::transaction::{ApplyError, PostingError, TransactionError};
use crate::store::{PostRejection, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error("account {0:?} does not exist")]
    UnknownAccount(String),
    #[error("account {0:?} not found")]
    AccountNotFound(String),
    #[error("transaction {0} not found")]
    TransactionNotFound(Uuid),
    #[error(transparent)]
    Posting(PostingError),
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    #[error("metadata must be a JSON object of at most {0} bytes")]
    MetadataTooLarge(usize),
    #[error("effective_at may not be in the future")]
    EffectiveAtInFuture,
    #[error("account {account} would have more debits than credits")]
    DebitsExceedCredits { account: Uuid },
    #[error("account {account} would have more credits than debits")]
    CreditsExceedDebits { account: Uuid },
    #[error("account {account} totals would overflow")]
    BalanceOverflow { account: Uuid },
    #[error("transaction {0} already exists")]
    TransactionExists(Uuid),
    #[error("transaction {0} has already been reversed")]
    AlreadyReversed(Uuid),
    #[error("transaction {0} is itself a reversal; post a new transaction instead")]
    ReversalNotReversible(Uuid),
    #[error(transparent)]
    InvalidAccountCode(#[from] InvalidAccountCode),
    #[error("account kind {0:?} is not one of asset, liability, equity, revenue, expense")]
    InvalidAccountKind(String),
    #[error("this idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is still being processed; retry shortly")]
    IdempotencyKeyInProgress,
    #[error("a concurrent request changed the same data; retry with the same idempotency key")]
    ConcurrentConflict,
    #[error("account name must be 1 to 200 characters")]
    InvalidAccountName,
    #[error(transparent)]
    UnknownCurrency(#[from] UnknownCurrency),
    #[error("an account may not carry both balance flags")]
    ConflictingFlags,
    #[error("account code {0:?} is already taken")]
    AccountCodeTaken(String),
    #[error(transparent)]
    Page(#[from] crate::services::paging::PageError),
    #[error("a batch needs at least one transaction")]
    BatchEmpty,
    #[error("a batch may hold at most {0} transactions")]
    BatchTooLarge(usize),
    #[error("the atomic batch was rejected: transaction {index} failed: {cause}")]
    BatchRejected {
        index: usize,
        cause: Box<LedgerError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PostingError> for LedgerError {
    fn from(error: PostingError) -> Self {
        match error {
            PostingError::Amount(amount) => LedgerError::Amount(amount),
            other => LedgerError::Posting(other),
        }
    }
}

impl From<PostRejection> for LedgerError {
    fn from(rejection: PostRejection) -> Self {
        match rejection {
            PostRejection::Apply(ApplyError::FlagViolated {
                account_id,
                violation: FlagViolation::DebitsExceedCredits,
            }) => LedgerError::DebitsExceedCredits {
                account: account_id,
            },
            PostRejection::Apply(ApplyError::FlagViolated {
                account_id,
                violation: FlagViolation::CreditsExceedDebits,
            }) => LedgerError::CreditsExceedDebits {
                account: account_id,
            },
            PostRejection::Apply(ApplyError::BalanceOverflow { account_id }) => {
                LedgerError::BalanceOverflow {
                    account: account_id,
                }
            }
            PostRejection::TransactionExists(id) => LedgerError::TransactionExists(id),
            PostRejection::AlreadyReversed(id) => LedgerError::AlreadyReversed(id),
        }
    }
}
