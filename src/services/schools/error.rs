//! What a school use case can refuse, with a stable code and a Vietnamese sentence.

use serde_json::json;

use crate::domain::schools::RunError;
use crate::services::PublicError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SchoolError {
    #[error("không tìm thấy trường học {0}")]
    SchoolNotFound(uuid::Uuid),
    #[error("không tìm thấy {what} {id}")]
    NotFound { what: &'static str, id: uuid::Uuid },
    #[error("{0}")]
    Invalid(String),
    #[error("{what} “{name}” đã có")]
    Taken { what: &'static str, name: String },
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("đợt thu đã được ghi sổ, không sửa được nữa")]
    RunPosted,
    #[error("biên lai số {0} đã bị hủy")]
    ReceiptCancelled(i64),
    #[error("liên kết không tồn tại hoặc đã bị thu hồi")]
    LinkNotFound,
    #[error("không tìm thấy hộ gia đình {0}")]
    HouseholdNotFound(uuid::Uuid),
    #[error("các con của hộ không còn khoản thu nào phải nộp")]
    HouseholdNothingOwing,
    #[error("các trường của các con thu vào những tài khoản ngân hàng khác nhau: một mã QR chỉ chuyển vào một tài khoản, hãy dùng mã QR của từng học sinh")]
    HouseholdSchoolsCollectApart,
    #[error("khóa Idempotency-Key này đã dùng cho một yêu cầu khác")]
    IdempotencyKeyReused,
    #[error("một yêu cầu với khóa Idempotency-Key này đang được xử lý")]
    IdempotencyKeyInProgress,
    /// A document (PDF, workbook) could not be made from data that were read fine: a bug.
    #[error("không tạo được tệp: {0}")]
    Render(String),
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
            | HouseholdSchoolsCollectApart => 409,
            Invalid(_) | Run(_) | IdempotencyKeyReused => 422,
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
            Render(_) => "INTERNAL",
            Store(store) => store.code(),
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            SchoolError::NotFound { what, id } => Some(json!({ "record": what, "id": id })),
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
