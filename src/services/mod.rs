//! Use cases, calling the store. Every error a use case returns carries a stable code and the
//! HTTP status it maps to, so replayed and batched results render exactly like direct ones.

pub mod auth;
pub mod bank_feed;
pub mod events;
pub mod group_commit;
pub mod ledger;
pub mod paging;
pub mod payers;
pub mod payments;
pub mod registry;
pub mod schools;
pub mod statistics;
pub mod users;
pub mod web;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::domain::password::WeakPassword;
use crate::domain::user::BindingError;
use crate::store::StoreError;
use auth::AuthError;
use ledger::LedgerError;

/// The error shape of every response: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable, e.g. `IDEMPOTENCY_KEY_REUSED`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// An error that may be shown to a client.
pub trait PublicError: std::fmt::Display {
    fn status(&self) -> u16;
    fn code(&self) -> &'static str;
    fn details(&self) -> Option<serde_json::Value> {
        None
    }
    /// What the client sees; internal failures are not described.
    fn public_message(&self) -> String {
        if self.status() == 503 {
            "the database is briefly unavailable (a failover or a restart); send the same \
             request again after Retry-After, with the same Idempotency-Key"
                .into()
        } else if self.status() >= 500 {
            "the service failed to handle this request; it has been logged".into()
        } else {
            self.to_string()
        }
    }
}

impl<E: PublicError> From<&E> for ErrorBody {
    fn from(error: &E) -> Self {
        ErrorBody {
            code: error.code().to_owned(),
            message: error.public_message(),
            details: error.details(),
        }
    }
}

impl PublicError for StoreError {
    fn status(&self) -> u16 {
        if self.is_unavailable() {
            503
        } else {
            500
        }
    }

    fn code(&self) -> &'static str {
        if self.is_unavailable() {
            "SERVICE_UNAVAILABLE"
        } else {
            "INTERNAL"
        }
    }
}

impl PublicError for LedgerError {
    fn status(&self) -> u16 {
        use LedgerError::*;
        match self {
            AccountNotFound(_) | TransactionNotFound(_) => 404,
            TransactionExists(_)
            | AlreadyReversed(_)
            | KeptElsewhere { .. }
            | AccountCodeTaken(_)
            | IdempotencyKeyInProgress
            | ConcurrentConflict => 409,
            Page(_) => 400,
            BatchRejected { .. } | IdempotencyKeyReused => 422,
            Store(store) => store.status(),
            _ => 422,
        }
    }

    fn code(&self) -> &'static str {
        use crate::domain::transaction::{PostingError, TransactionError};
        use LedgerError::*;
        match self {
            Amount(amount) => amount.code(),
            UnknownAccount(_) => "UNKNOWN_ACCOUNT",
            AccountNotFound(_) => "ACCOUNT_NOT_FOUND",
            TransactionNotFound(_) => "TRANSACTION_NOT_FOUND",
            Posting(PostingError::SameAccount(_)) => "SAME_ACCOUNT",
            Posting(PostingError::CurrencyMismatch { .. }) => "CURRENCY_MISMATCH",
            Posting(PostingError::Amount(_)) => "AMOUNT_INVALID",
            Transaction(TransactionError::NoPostings) => "NO_POSTINGS",
            Transaction(TransactionError::TooManyPostings(_)) => "TOO_MANY_POSTINGS",
            Transaction(TransactionError::InvalidDescription) => "INVALID_DESCRIPTION",
            Transaction(TransactionError::InvalidReference) => "INVALID_REFERENCE",
            MetadataTooLarge(_) => "METADATA_TOO_LARGE",
            EffectiveAtInFuture => "EFFECTIVE_AT_IN_FUTURE",
            DebitsExceedCredits { .. } => "DEBITS_EXCEED_CREDITS",
            CreditsExceedDebits { .. } => "CREDITS_EXCEED_DEBITS",
            BalanceOverflow { .. } => "BALANCE_OVERFLOW",
            TransactionExists(_) => "TRANSACTION_EXISTS",
            AlreadyReversed(_) => "ALREADY_REVERSED",
            ReversalNotReversible(_) => "REVERSAL_NOT_REVERSIBLE",
            KeptElsewhere { .. } => "TRANSACTION_KEPT_ELSEWHERE",
            InvalidAccountCode(_) => "INVALID_ACCOUNT_CODE",
            InvalidAccountKind(_) => "INVALID_ACCOUNT_KIND",
            InvalidAccountName => "INVALID_ACCOUNT_NAME",
            UnknownCurrency(_) => "UNKNOWN_CURRENCY",
            ConflictingFlags => "CONFLICTING_FLAGS",
            AccountCodeTaken(_) => "ACCOUNT_CODE_TAKEN",
            Page(page) => page.code(),
            BatchEmpty => "BATCH_EMPTY",
            BatchTooLarge(_) => "BATCH_TOO_LARGE",
            BatchRejected { .. } => "BATCH_REJECTED",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            IdempotencyKeyInProgress => "IDEMPOTENCY_KEY_IN_PROGRESS",
            ConcurrentConflict => "CONCURRENT_CONFLICT",
            Store(store) => store.code(),
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        use LedgerError::*;
        match self {
            DebitsExceedCredits { account }
            | CreditsExceedDebits { account }
            | BalanceOverflow { account } => Some(json!({ "account_id": account })),
            BatchRejected { index, cause } => {
                Some(json!({ "index": index, "cause": ErrorBody::from(cause.as_ref()) }))
            }
            _ => None,
        }
    }
}

impl PublicError for AuthError {
    fn status(&self) -> u16 {
        match self {
            AuthError::InvalidCredentials
            | AuthError::InvalidToken
            | AuthError::TokenRevoked
            | AuthError::Disabled => 401,
            AuthError::PasswordChangeRequired | AuthError::WrongCurrentPassword => 403,
            AuthError::UserNotFound(_) | AuthError::PayeeNotFound(_) => 404,
            AuthError::UsernameTaken | AuthError::LastAdmin => 409,
            AuthError::TooManyAttempts { .. } => 429,
            AuthError::Page(_) | AuthError::UnknownAuditAction => 400,
            AuthError::Store(store) => store.status(),
            AuthError::Keys(_) => 500,
            _ => 422,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AuthError::InvalidCredentials => "INVALID_CREDENTIALS",
            AuthError::TooManyAttempts { .. } => "TOO_MANY_LOGIN_ATTEMPTS",
            AuthError::InvalidToken => "UNAUTHENTICATED",
            AuthError::WeakPassword(WeakPassword::TooShort) => "WEAK_PASSWORD",
            AuthError::WeakPassword(WeakPassword::Common) => "COMMON_PASSWORD",
            AuthError::InvalidUsername(_) => "INVALID_USERNAME",
            AuthError::Binding(BindingError::PayeeRequired(_)) => "PAYEE_REQUIRED",
            AuthError::Binding(BindingError::PayeeNotAllowed) => "PAYEE_NOT_ALLOWED",
            AuthError::PayeeNotFound(_) => "PAYEE_NOT_FOUND",
            AuthError::Disabled => "USER_DISABLED",
            AuthError::TokenRevoked => "TOKEN_REVOKED",
            AuthError::PasswordChangeRequired => "PASSWORD_CHANGE_REQUIRED",
            AuthError::WrongCurrentPassword => "WRONG_CURRENT_PASSWORD",
            AuthError::UserNotFound(_) => "USER_NOT_FOUND",
            AuthError::UsernameTaken => "USERNAME_TAKEN",
            AuthError::LastAdmin => "LAST_ADMIN",
            AuthError::UnknownRole => "UNKNOWN_ROLE",
            AuthError::UnknownAuditAction => "UNKNOWN_AUDIT_ACTION",
            AuthError::Page(page) => page.code(),
            AuthError::Store(store) => store.code(),
            AuthError::Keys(_) => "INTERNAL",
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            AuthError::TooManyAttempts {
                retry_after_seconds,
            } => Some(json!({ "retry_after_seconds": retry_after_seconds })),
            _ => None,
        }
    }
}

/// Idempotency comes before every other rule: a request whose key was answered before gets
/// that answer again, whatever has changed since (the transaction reversed, the payee
/// deactivated). `Err` when the key belongs to another request, or to one still running.
/// Use cases whose refusals depend on state that changes call this before checking it; the
/// write still claims the key in its own database transaction, so a concurrent duplicate is
/// caught there.
pub(crate) async fn earlier_answer(
    store: &dyn crate::store::Store,
    claim: &crate::store::IdempotencyClaim,
) -> Result<Option<ledger::Reply>, crate::store::StoreError> {
    let Some(stored) = store.stored_response(claim).await? else {
        return Ok(None);
    };
    let stored = stored?;
    metrics::counter!("ledger_idempotent_replays_total").increment(1);
    Ok(Some(ledger::Reply {
        status: stored.status,
        body: stored.body,
        replayed: true,
    }))
}

/// The audit record of a change `caller` makes now to `target_id`; the one way every use case
/// builds one, to write in the database transaction of the change.
pub(crate) fn audit_record(
    clock: &crate::clock::Clock,
    caller: &auth::Caller,
    action: crate::domain::audit::AuditAction,
    target_id: impl ToString,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> crate::domain::audit::AuditRecord {
    crate::domain::audit::AuditRecord {
        id: clock.new_id(),
        recorded_at: clock.now_micros(),
        actor: caller.actor(),
        action,
        target_id: target_id.to_string(),
        before,
        after,
    }
}

/// A PATCH field that distinguishes absent (keep) from `null` (clear): use with
/// `#[serde(default, deserialize_with = "present")]`.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}
