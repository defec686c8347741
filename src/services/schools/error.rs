//! What a school use case can refuse, with a stable code and an English sentence, as the rest
//! of the API (the school office's pages say it in Vietnamese by the code).

use serde_json::json;

use crate::domain::schools::RunError;
use crate::services::paging::PageError;
use crate::services::PublicError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SchoolError {
    #[error("school {0} not found")]
    SchoolNotFound(uuid::Uuid),
    #[error("{what} {id} not found at this school")]
    NotFound { what: &'static str, id: uuid::Uuid },
    #[error("{0}")]
    Invalid(String),
    #[error("{what} \"{name}\" already exists")]
    Taken { what: &'static str, name: String },
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("the run is posted and is never edited: correct it by adjustment or reversal")]
    RunPosted,
    #[error("receipt number {0} is cancelled")]
    ReceiptCancelled(i64),
    #[error("the link does not exist or was revoked")]
    LinkNotFound,
    #[error("household {0} not found")]
    HouseholdNotFound(uuid::Uuid),
    #[error("the household's pupils owe nothing")]
    HouseholdNothingOwing,
    #[error("the schools owing collect into different bank accounts and a QR pays one account: use each pupil's own QR")]
    HouseholdSchoolsCollectApart,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is in progress; retry with the same key")]
    IdempotencyKeyInProgress,
    #[error("{for_whom}: {amount} đồng is more than a VietQR code can ask for (at most {max} đồng, 13 digits); correct the fee item's amounts or the run's school days", max = crate::domain::vietqr::MAX_QR_AMOUNT)]
    AmountBeyondQr { for_whom: String, amount: i64 },
    #[error("the run is not posted: there is nothing to correct yet (change the run or its items and preview it again)")]
    RunNotPosted,
    #[error("this charge was reversed: it owes nothing and cannot be adjusted")]
    ChargeReversed,
    #[error("{0}")]
    AdjustmentOutOfRange(String),
    #[error("the pupil's credit is {credit} đồng: a refund cannot pay back more")]
    RefundExceedsCredit { credit: i64 },
    /// A document (PDF, workbook) could not be made from data that were read fine: a bug.
    #[error("the document could not be made: {0}")]
    Render(String),
    #[error(transparent)]
    Page(#[from] PageError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for SchoolError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::IdempotencyKeyReused => SchoolError::IdempotencyKeyReused,
            StoreError::IdempotencyKeyInProgress => SchoolError::IdempotencyKeyInProgress,
            other => SchoolError::Store(other),
        }
    }
}

impl SchoolError {
    pub fn invalid(message: impl Into<String>) -> Self {
        SchoolError::Invalid(message.into())
    }
}

impl PublicError for SchoolError {
    fn status(&self) -> u16 {
        use SchoolError::*;
        match self {
            SchoolNotFound(_) | NotFound { .. } | LinkNotFound | HouseholdNotFound(_) => 404,
            Taken { .. }
            | RunPosted
            | ReceiptCancelled(_)
            | IdempotencyKeyInProgress
            | HouseholdNothingOwing
            | HouseholdSchoolsCollectApart
            | RunNotPosted
            | ChargeReversed
            | RefundExceedsCredit { .. } => 409,
            Invalid(_)
            | Run(_)
            | IdempotencyKeyReused
            | AmountBeyondQr { .. }
            | AdjustmentOutOfRange(_) => 422,
            Page(_) => 400,
            Render(_) => 500,
            Store(store) => store.status(),
        }
    }

    fn code(&self) -> &'static str {
        use SchoolError::*;
        match self {
            SchoolNotFound(_) => "SCHOOL_NOT_FOUND",
            NotFound { .. } => "SCHOOL_RECORD_NOT_FOUND",
            LinkNotFound => "PARENT_LINK_NOT_FOUND",
            HouseholdNotFound(_) => "HOUSEHOLD_NOT_FOUND",
            HouseholdNothingOwing => "HOUSEHOLD_NOTHING_OWING",
            HouseholdSchoolsCollectApart => "HOUSEHOLD_SCHOOLS_COLLECT_APART",
            Taken { .. } => "SCHOOL_RECORD_TAKEN",
            RunPosted => "RUN_ALREADY_POSTED",
            ReceiptCancelled(_) => "RECEIPT_CANCELLED",
            Invalid(_) => "INVALID_SCHOOL_REQUEST",
            Run(RunError::SchoolDaysRequired(_)) => "SCHOOL_DAYS_REQUIRED",
            Run(RunError::AmountOverflow) => "AMOUNT_TOO_LARGE",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            IdempotencyKeyInProgress => "IDEMPOTENCY_KEY_IN_PROGRESS",
            AmountBeyondQr { .. } => "AMOUNT_BEYOND_QR_LIMIT",
            RunNotPosted => "RUN_NOT_POSTED",
            ChargeReversed => "CHARGE_REVERSED",
            AdjustmentOutOfRange(_) => "ADJUSTMENT_OUT_OF_RANGE",
            RefundExceedsCredit { .. } => "REFUND_EXCEEDS_CREDIT",
            Page(page) => page.code(),
            Render(_) => "INTERNAL",
            Store(store) => store.code(),
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            SchoolError::NotFound { what, id } => Some(json!({ "record": what, "id": id })),
            SchoolError::AmountBeyondQr { amount, .. } => Some(
                json!({ "amount": amount, "max_amount": crate::domain::vietqr::MAX_QR_AMOUNT }),
            ),
            SchoolError::RefundExceedsCredit { credit } => Some(json!({ "credit": credit })),
            _ => None,
        }
    }
}

/// A roster import refused: by the school rules, or by bad lines in the file (the registry
/// import's `IMPORT_INVALID`, with every line in `details.errors`).
#[derive(Debug, thiserror::Error)]
pub enum RosterImportError {
    #[error(transparent)]
    School(#[from] SchoolError),
    #[error(transparent)]
    Import(#[from] crate::services::registry::import::ImportError),
}

impl From<StoreError> for RosterImportError {
    fn from(error: StoreError) -> Self {
        RosterImportError::School(error.into())
    }
}

impl PublicError for RosterImportError {
    fn status(&self) -> u16 {
        match self {
            RosterImportError::School(e) => e.status(),
            RosterImportError::Import(e) => e.status(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            RosterImportError::School(e) => e.code(),
            RosterImportError::Import(e) => e.code(),
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            RosterImportError::School(e) => e.details(),
            RosterImportError::Import(e) => e.details(),
        }
    }
}
