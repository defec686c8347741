//! The audit trail: one record for every change a person makes, written in the same database
//! transaction as the change, never updated or deleted.

use serde_json::Value;
use uuid::Uuid;

/// What was changed, as a stable code clients can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    UserCreate,
    UserUpdate,
    UserResetPassword,
    UserChangePassword,
    /// A collection account's bank feed (provider and secrets) set or replaced.
    FeedSet,
}

impl AuditAction {
    pub const ALL: [AuditAction; 5] = [
        AuditAction::UserCreate,
        AuditAction::UserUpdate,
        AuditAction::UserResetPassword,
        AuditAction::UserChangePassword,
        AuditAction::FeedSet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::UserCreate => "user.create",
            AuditAction::UserUpdate => "user.update",
            AuditAction::UserResetPassword => "user.reset_password",
            AuditAction::UserChangePassword => "user.change_password",
            AuditAction::FeedSet => "feed.set",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// The kind of thing the action changes.
    pub fn target_kind(self) -> &'static str {
        match self {
            AuditAction::UserCreate
            | AuditAction::UserUpdate
            | AuditAction::UserResetPassword
            | AuditAction::UserChangePassword => "user",
            AuditAction::FeedSet => "collection_account",
        }
    }
}

/// Who made a change, and in which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub username: String,
    pub request_id: Option<String>,
}

/// One change, as recorded. `before` and `after` hold what a reviewer needs to see the change,
/// never a secret or a full account number.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: Uuid,
    pub recorded_at: i64,
    pub actor: Actor,
    pub action: AuditAction,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}
