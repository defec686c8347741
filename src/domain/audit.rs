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
    /// A resident's consent decision recorded; the target is the resident.
    ConsentRecord,
    /// A payer account linked to a resident or household; the target is the account's hash.
    PayerAccountLink,
    PayerAccountUnlink,
    /// A resident's own bank account registered (and linked to them); the target is its hash.
    PayerAccountRegister,
    PaymentIntentCancel,
    /// A school cash receipt cancelled; the target is the receipt.
    SchoolReceiptCancel,
    /// A parent's read-only link to a pupil's fees created or revoked; the target is the link.
    ParentLinkCreate,
    ParentLinkRevoke,
    /// A posted school run reversed, whole or for one pupil; the target is the run.
    SchoolRunReverse,
    /// A posted school charge adjusted by a signed amount; the target is the charge.
    SchoolChargeAdjust,
    /// A pupil's credit paid back; the target is the pupil.
    SchoolCreditRefund,
    /// A market board link created or revoked; the target is the link.
    BoardLinkCreate,
    BoardLinkRevoke,
}

impl AuditAction {
    pub const ALL: [AuditAction; 22] = [
        AuditAction::UserCreate,
        AuditAction::UserUpdate,
        AuditAction::UserResetPassword,
        AuditAction::UserChangePassword,
        AuditAction::FeedSet,
        AuditAction::PayeeCreate,
        AuditAction::PayeeUpdate,
        AuditAction::TransactionReverse,
        AuditAction::SuspenseResolve,
        AuditAction::ConsentRecord,
        AuditAction::PayerAccountLink,
        AuditAction::PayerAccountUnlink,
        AuditAction::PayerAccountRegister,
        AuditAction::PaymentIntentCancel,
        AuditAction::SchoolReceiptCancel,
        AuditAction::ParentLinkCreate,
        AuditAction::ParentLinkRevoke,
        AuditAction::SchoolRunReverse,
        AuditAction::SchoolChargeAdjust,
        AuditAction::SchoolCreditRefund,
        AuditAction::BoardLinkCreate,
        AuditAction::BoardLinkRevoke,
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
            AuditAction::ConsentRecord => "consent.record",
            AuditAction::PayerAccountLink => "payer_account.link",
            AuditAction::PayerAccountUnlink => "payer_account.unlink",
            AuditAction::PayerAccountRegister => "payer_account.register",
            AuditAction::PaymentIntentCancel => "payment_intent.cancel",
            AuditAction::SchoolReceiptCancel => "school_receipt.cancel",
            AuditAction::ParentLinkCreate => "parent_link.create",
            AuditAction::ParentLinkRevoke => "parent_link.revoke",
            AuditAction::SchoolRunReverse => "school_run.reverse",
            AuditAction::SchoolChargeAdjust => "school_charge.adjust",
            AuditAction::SchoolCreditRefund => "school_credit.refund",
            AuditAction::BoardLinkCreate => "board_link.create",
            AuditAction::BoardLinkRevoke => "board_link.revoke",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// Whether the record's before and after say whose a payer's bank account is: with the bank
    /// transactions' payer hashes, that is which resident paid, individual-level data that only
    /// admins read.
    pub fn names_a_payer(self) -> bool {
        matches!(
            self,
            AuditAction::PayerAccountLink
                | AuditAction::PayerAccountUnlink
                | AuditAction::PayerAccountRegister
        )
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
            AuditAction::ConsentRecord => "resident",
            AuditAction::PayerAccountLink
            | AuditAction::PayerAccountUnlink
            | AuditAction::PayerAccountRegister => "payer_account",
            AuditAction::PaymentIntentCancel => "payment_intent",
            AuditAction::SchoolReceiptCancel => "school_receipt",
            AuditAction::ParentLinkCreate | AuditAction::ParentLinkRevoke => "parent_link",
            AuditAction::SchoolRunReverse => "school_run",
            AuditAction::SchoolChargeAdjust => "school_charge",
            AuditAction::SchoolCreditRefund => "pupil",
            AuditAction::BoardLinkCreate | AuditAction::BoardLinkRevoke => "board_link",
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
