//! Everything the registry use cases can refuse, with stable API codes.

use chrono::NaiveDate;
use serde_json::json;
use uuid::Uuid;

use crate::domain::registry::{FieldError, MergeRefusal};
use crate::services::paging::PageError;
use crate::services::PublicError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{}: {}", .0.field, .0.problem)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Merge(#[from] MergeRefusal),
    #[error(transparent)]
    Page(#[from] PageError),
    #[error("hamlet {0:?} not found")]
    HamletNotFound(String),
    #[error("household {0} not found")]
    HouseholdNotFound(Uuid),
    #[error("resident {0} not found")]
    ResidentNotFound(Uuid),
    #[error("hamlet code {0:?} is already taken")]
    HamletCodeTaken(String),
    #[error("household code {0:?} is already taken")]
    HouseholdCodeTaken(String),
    #[error("resident code {0:?} is already taken")]
    ResidentCodeTaken(String),
    #[error("hamlet {code:?} closed on {last_day}; households can no longer be placed in it")]
    HamletClosed { code: String, last_day: NaiveDate },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PublicError for RegistryError {
    fn status(&self) -> u16 {
        use RegistryError::*;
        match self {
            Page(_) => 400,
            HamletNotFound(_) | HouseholdNotFound(_) | ResidentNotFound(_) => 404,
            HamletCodeTaken(_)
            | HouseholdCodeTaken(_)
            | ResidentCodeTaken(_)
            | HamletClosed { .. }
            | Merge(MergeRefusal::Closed { .. } | MergeRefusal::TargetNotOpen { .. }) => 409,
            Field(_) | Merge(MergeRefusal::IntoItself | MergeRefusal::TooEarly { .. }) => 422,
            Store(store) => store.status(),
        }
    }

    fn code(&self) -> &'static str {
        use RegistryError::*;
        match self {
            Field(_) => "REGISTRY_FIELD_INVALID",
            Merge(MergeRefusal::IntoItself) => "HAMLET_MERGE_INTO_ITSELF",
            Merge(MergeRefusal::Closed { .. }) | HamletClosed { .. } => "HAMLET_CLOSED",
            Merge(MergeRefusal::TargetNotOpen { .. }) => "HAMLET_MERGE_TARGET_NOT_OPEN",
            Merge(MergeRefusal::TooEarly { .. }) => "HAMLET_MERGE_TOO_EARLY",
            Page(page) => page.code(),
            HamletNotFound(_) => "HAMLET_NOT_FOUND",
            HouseholdNotFound(_) => "HOUSEHOLD_NOT_FOUND",
            ResidentNotFound(_) => "RESIDENT_NOT_FOUND",
            HamletCodeTaken(_) => "HAMLET_CODE_TAKEN",
            HouseholdCodeTaken(_) => "HOUSEHOLD_CODE_TAKEN",
            ResidentCodeTaken(_) => "RESIDENT_CODE_TAKEN",
            Store(store) => store.code(),
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            RegistryError::Field(field) => Some(json!({ "field": field.field })),
            _ => None,
        }
    }
}
