//! The audit trail: one record for every change a person makes, written in the same database
//! transaction as the change, never updated or deleted.

use serde_json::{json, Value};
use uuid::Uuid;

use super::payee::Payee;

/// What was changed, as a stable code clients can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    UserCreate,
    UserUpdate,
    UserResetPassword,
    UserChangePassword,
    /// A collection account's bank feed (provider and secrets) set or replaced.
    FeedSet,
    PayeeCreate,
    PayeeUpdate,
    /// A posted transaction reversed; the target is the original transaction.
    TransactionReverse,
    /// An unmatched bank transfer resolved from suspense; the target is the bank transaction.
    SuspenseResolve,
}

impl AuditAction {
    pub const ALL: [AuditAction; 9] = [
        AuditAction::UserCreate,
        AuditAction::UserUpdate,
        AuditAction::UserResetPassword,
        AuditAction::UserChangePassword,
        AuditAction::FeedSet,
        AuditAction::PayeeCreate,
        AuditAction::PayeeUpdate,
        AuditAction::TransactionReverse,
        AuditAction::SuspenseResolve,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::UserCreate => "user.create",
            AuditAction::UserUpdate => "user.update",
            AuditAction::UserResetPassword => "user.reset_password",
            AuditAction::UserChangePassword => "user.change_password",
            AuditAction::FeedSet => "feed.set",
            AuditAction::PayeeCreate => "payee.create",
            AuditAction::PayeeUpdate => "payee.update",
            AuditAction::TransactionReverse => "transaction.reverse",
            AuditAction::SuspenseResolve => "suspense.resolve",
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
            AuditAction::PayeeCreate | AuditAction::PayeeUpdate => "payee",
            AuditAction::TransactionReverse => "transaction",
            AuditAction::SuspenseResolve => "bank_transaction",
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

/// A payee as the audit trail shows it: its bank account only by bank and last four digits.
pub fn audited_payee(payee: &Payee) -> Value {
    let account = &payee.collection_account.account_number;
    let last4 = &account[account.len().saturating_sub(4)..];
    json!({
        "code": payee.code,
        "kind": payee.kind.as_str(),
        "name": payee.details.name,
        "hamlet": payee.details.hamlet,
        "stall": payee.details.stall,
        "phone": payee.details.phone,
        "category": payee.details.category,
        "active": payee.active,
        "owner_resident_id": payee.owner_resident_id,
        "collection_account": {
            "bank_bin": payee.collection_account.bank_bin,
            "account_last4": last4,
        },
    })
}
