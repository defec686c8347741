//! Everything the ledger use cases can refuse, one variant per stable API code.

use uuid::Uuid;

use crate::domain::account::{FlagViolation, InvalidAccountCode};
use crate::domain::money::{AmountError, UnknownCurrency};
use crate::domain::transaction::{ApplyError, PostingError, TransactionError};
use crate::store::{PostRejection, StoreError};

/// A poster inside the service whose own records name the ledger transactions it posts: a
/// school's payments, allocations and charges; a bank record and its suspense resolution.
/// Reversing one of those transactions by itself would leave its records saying the money
/// moved, so it is corrected where it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKeeper {
    Schools,
    BankFeed,
}

impl RecordKeeper {
    /// The keeper of transactions posted by `created_by`, if it is one.
    pub fn of(created_by: Uuid) -> Option<Self> {
        if created_by == crate::services::schools::SCHOOL_USER_ID {
            Some(Self::Schools)
        } else if created_by == crate::domain::bank_feed::matching::BANK_FEED_USER_ID {
            Some(Self::BankFeed)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Schools => "school fee collection",
            Self::BankFeed => "the bank feed",
        }
    }

    fn how_to_correct(self) -> &'static str {
        match self {
            Self::Schools => {
                "correct it there: reverse the run or adjust a pupil's charge \
                 (/v1/schools/{school}/runs/{run}/reverse, /adjustments), cancel the cash \
                 receipt, or refund a pupil's credit (/refunds)"
            }
            Self::BankFeed => {
                "the money really moved at the bank: resolve a transfer held in suspense \
                 (/v1/reconciliation/unmatched/{id}/resolve) or send the money back with a \
                 refund"
            }
        }
    }
}

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
    #[error("transaction {id} was posted by {}, whose records name it; {}", keeper.name(), keeper.how_to_correct())]
    KeptElsewhere { id: Uuid, keeper: RecordKeeper },
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
