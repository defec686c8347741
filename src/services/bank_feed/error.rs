//! Everything the bank-feed use cases can refuse, with stable API codes.

use serde_json::json;
use uuid::Uuid;

use crate::domain::bank_feed::posting::FeedPostingError;
use crate::domain::bank_feed::resolution::ResolveRejection;
use crate::domain::bank_feed::{ParseError, SecretError, UnknownProvider, VerifyError};
use crate::domain::statement::StatementError;
use crate::services::paging::PageError;
use crate::services::PublicError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BankFeedError {
    #[error(transparent)]
    UnknownProvider(#[from] UnknownProvider),
    /// A provider name in a request body (as opposed to the webhook route's path).
    #[error(transparent)]
    InvalidProvider(UnknownProvider),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("account {0} is not monitored with the secret that signed this delivery")]
    SignedForAnotherAccount(String),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("no collection account has account number {0:?}; register its payee first")]
    AccountUnknown(String),
    #[error(
        "account number {0:?} is registered at several banks under this secret; give each its \
         own secret"
    )]
    AccountAmbiguous(String),
    #[error("collection account {0} not found")]
    CollectionAccountNotFound(Uuid),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("give one or two secrets: two while rotating from the old one to the new one")]
    SecretCount,
    #[error("bank transaction {0} not found")]
    BankTransactionNotFound(Uuid),
    #[error("collection account {0} has no bank feed configured; set one first")]
    FeedNotConfigured(Uuid),
    #[error(transparent)]
    Amount(#[from] crate::domain::money::AmountError),
    #[error("memo must be 1 to 200 characters")]
    InvalidMemo,
    #[error(transparent)]
    Resolve(#[from] ResolveRejection),
    #[error("{0}")]
    InvalidResolution(&'static str),
    #[error(transparent)]
    Page(#[from] PageError),
    /// An uploaded bank statement (or its period) that cannot be read.
    #[error(transparent)]
    Statement(#[from] StatementError),
    #[error("this idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is still being processed; retry shortly")]
    IdempotencyKeyInProgress,
    /// A bank-feed posting the domain could not build: a bug, never bad input.
    #[error(transparent)]
    Posting(#[from] FeedPostingError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for BankFeedError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::IdempotencyKeyReused => BankFeedError::IdempotencyKeyReused,
            StoreError::IdempotencyKeyInProgress => BankFeedError::IdempotencyKeyInProgress,
            other => BankFeedError::Store(other),
        }
    }
}

impl PublicError for BankFeedError {
    fn status(&self) -> u16 {
        use BankFeedError::*;
        match self {
            Page(_) => 400,
            // Unreadable credentials included: the delivery is not authenticated.
            Verify(_) | SignedForAnotherAccount(_) => 401,
            UnknownProvider(_) | CollectionAccountNotFound(_) | BankTransactionNotFound(_) => 404,
            Resolve(
                ResolveRejection::NotFound(_)
                | ResolveRejection::IntentNotFound(_)
                | ResolveRejection::PayeeNotFound(_),
            ) => 404,
            Resolve(ResolveRejection::AlreadyResolved | ResolveRejection::NotInSuspense)
            | IdempotencyKeyInProgress
            | FeedNotConfigured(_) => 409,
            Store(store) => store.status(),
            Posting(_) => 500,
            _ => 422,
        }
    }

    fn code(&self) -> &'static str {
        use BankFeedError::*;
        match self {
            UnknownProvider(_) => "WEBHOOK_PROVIDER_UNKNOWN",
            InvalidProvider(_) => "INVALID_PROVIDER",
            Verify(verify) => verify.code(),
            SignedForAnotherAccount(_) => "WEBHOOK_SIGNATURE_INVALID",
            Parse(parse) => parse.code(),
            AccountUnknown(_) => "WEBHOOK_ACCOUNT_UNKNOWN",
            CollectionAccountNotFound(_) => "COLLECTION_ACCOUNT_NOT_FOUND",
            Secret(secret) => secret.code(),
            SecretCount => "WEBHOOK_SECRET_COUNT",
            BankTransactionNotFound(_) | Resolve(ResolveRejection::NotFound(_)) => {
                "BANK_TRANSACTION_NOT_FOUND"
            }
            Resolve(ResolveRejection::NotInSuspense) => "NOT_IN_SUSPENSE",
            Resolve(ResolveRejection::AlreadyResolved) => "SUSPENSE_ALREADY_RESOLVED",
            Resolve(ResolveRejection::IntentNotFound(_)) => "PAYMENT_INTENT_NOT_FOUND",
            Resolve(ResolveRejection::PayeeNotFound(_)) => "PAYEE_NOT_FOUND",
            Resolve(ResolveRejection::OutgoingNeedsPayee) => "RESOLUTION_NOT_APPLICABLE",
            Resolve(ResolveRejection::PayeeBalanceShort) => "PAYEE_BALANCE_SHORT",
            Resolve(ResolveRejection::ExceedsIntent) => "RESOLUTION_EXCEEDS_INTENT",
            Resolve(ResolveRejection::NotADuplicate) => "RESOLUTION_NOT_A_DUPLICATE",
            AccountAmbiguous(_) => "WEBHOOK_ACCOUNT_AMBIGUOUS",
            InvalidResolution(_) => "INVALID_RESOLUTION",
            FeedNotConfigured(_) => "FEED_NOT_CONFIGURED",
            Amount(amount) => amount.code(),
            InvalidMemo => "INVALID_MEMO",
            Page(page) => page.code(),
            Statement(statement) => statement.code(),
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            IdempotencyKeyInProgress => "IDEMPOTENCY_KEY_IN_PROGRESS",
            Store(store) => store.code(),
            Posting(_) => "INTERNAL",
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            BankFeedError::Verify(VerifyError::TimestampOutOfWindow { skew_seconds }) => {
                Some(json!({ "skew_seconds": skew_seconds }))
            }
            BankFeedError::Statement(statement) => {
                statement.line().map(|line| json!({ "line": line }))
            }
            _ => None,
        }
    }
}
