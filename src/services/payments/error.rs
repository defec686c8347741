//! Everything the payee, QR and payment-intent use cases can refuse, with stable API codes.

use crate::services::payers::PayerError;
use serde_json::json;
use uuid::Uuid;

use super::qr_image::{MAX_SIZE, MIN_SIZE};
use crate::domain::intent::{IntentStatus, MAX_EXPIRES_IN_SECONDS, MIN_EXPIRES_IN_SECONDS};
use crate::domain::money::AmountError;
use crate::domain::payee::PayeeFieldError;
use crate::domain::text::HolderNameError;
use crate::domain::vietqr::{OtherScheme, VietQrError, AMOUNT_MAX_DIGITS};
use crate::services::ledger::LedgerError;
use crate::services::paging::PageError;
use crate::services::PublicError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error(transparent)]
    Field(#[from] PayeeFieldError),
    #[error(transparent)]
    HolderName(#[from] HolderNameError),
    /// A payload given to `/v1/qr/parse` breaks a VietQR rule.
    #[error(transparent)]
    Qr(#[from] VietQrError),
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error("VietQR amounts have at most {AMOUNT_MAX_DIGITS} digits")]
    AmountTooLargeForQr,
    #[error("description must be 1 to {0} characters")]
    InvalidDescription(usize),
    #[error(
        "expires_in_seconds must be between {MIN_EXPIRES_IN_SECONDS} and {MAX_EXPIRES_IN_SECONDS}"
    )]
    InvalidExpiry,
    #[error("size must be between {MIN_SIZE} and {MAX_SIZE} pixels")]
    ImageSizeOutOfRange,
    #[error("{0}")]
    InvalidQuery(String),
    #[error(transparent)]
    Page(#[from] PageError),
    #[error("payee {0} not found")]
    PayeeNotFound(Uuid),
    #[error("payee code {0:?} is already taken")]
    PayeeCodeTaken(String),
    #[error("ledger account {0:?} already exists with another kind, currency or flags")]
    LedgerAccountTaken(String),
    #[error(
        "this bank account is registered to {registered:?}; the holder name must match the bank's"
    )]
    HolderNameMismatch { registered: String },
    #[error("payee {0} is inactive: it gets no new QR codes or payment intents")]
    PayeeInactive(Uuid),
    #[error("payment intent {0} not found")]
    IntentNotFound(Uuid),
    #[error("payment intent is {}; only a pending intent can be cancelled", .0.as_str())]
    NotCancellable(IntentStatus),
    #[error("payment intent is {}; its QR code may no longer be paid", .0.as_str())]
    NotPayable(IntentStatus),
    #[error("this idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is still being processed; retry shortly")]
    IdempotencyKeyInProgress,
    #[error("owner_resident_id {0} is not a known resident")]
    OwnerNotFound(Uuid),
    /// The payer an intent names.
    #[error(transparent)]
    Payer(#[from] PayerError),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PaymentError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::IdempotencyKeyReused => PaymentError::IdempotencyKeyReused,
            StoreError::IdempotencyKeyInProgress => PaymentError::IdempotencyKeyInProgress,
            other => PaymentError::Store(other),
        }
    }
}

impl PublicError for PaymentError {
    fn status(&self) -> u16 {
        use PaymentError::*;
        match self {
            InvalidQuery(_) | Page(_) => 400,
            PayeeNotFound(_) | IntentNotFound(_) => 404,
            PayeeCodeTaken(_)
            | LedgerAccountTaken(_)
            | HolderNameMismatch { .. }
            | PayeeInactive(_)
            | NotCancellable(_)
            | NotPayable(_)
            | IdempotencyKeyInProgress => 409,
            Store(store) => store.status(),
            Payer(payer) => payer.status(),
            Field(_)
            | HolderName(_)
            | Qr(_)
            | Amount(_)
            | AmountTooLargeForQr
            | InvalidDescription(_)
            | InvalidExpiry
            | OwnerNotFound(_)
            | ImageSizeOutOfRange
            | IdempotencyKeyReused => 422,
        }
    }

    fn code(&self) -> &'static str {
        use PaymentError::*;
        match self {
            Field(field) => field.code(),
            HolderName(holder) => holder.code(),
            Qr(qr) => qr.code(),
            // The same codes the ledger gives the same amount mistakes.
            Amount(amount) => LedgerError::Amount(amount.clone()).code(),
            AmountTooLargeForQr => "AMOUNT_TOO_LARGE",
            InvalidDescription(_) => "INVALID_DESCRIPTION",
            InvalidExpiry => "INVALID_EXPIRY",
            OwnerNotFound(_) => "OWNER_RESIDENT_NOT_FOUND",
            ImageSizeOutOfRange => "IMAGE_SIZE_OUT_OF_RANGE",
            InvalidQuery(_) => "INVALID_QUERY",
            Page(page) => page.code(),
            PayeeNotFound(_) => "PAYEE_NOT_FOUND",
            PayeeCodeTaken(_) => "PAYEE_CODE_TAKEN",
            LedgerAccountTaken(_) => "ACCOUNT_CODE_TAKEN",
            HolderNameMismatch { .. } => "HOLDER_NAME_MISMATCH",
            PayeeInactive(_) => "PAYEE_INACTIVE",
            IntentNotFound(_) => "PAYMENT_INTENT_NOT_FOUND",
            NotCancellable(_) => "PAYMENT_INTENT_NOT_CANCELLABLE",
            NotPayable(_) => "PAYMENT_INTENT_NOT_PAYABLE",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            IdempotencyKeyInProgress => "IDEMPOTENCY_KEY_IN_PROGRESS",
            Store(store) => store.code(),
            Payer(payer) => payer.code(),
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        use PaymentError::*;
        match self {
            Field(field) => Some(json!({ "field": field.field() })),
            HolderName(_) | HolderNameMismatch { .. } => {
                Some(json!({ "field": "collection_account.holder_name" }))
            }
            Amount(_) | AmountTooLargeForQr => Some(json!({ "field": "amount" })),
            NotCancellable(status) | NotPayable(status) => {
                Some(json!({ "status": status.as_str() }))
            }
            Qr(VietQrError::NotABankTransfer(other)) => Some(other_scheme_details(other)),
            _ => None,
        }
    }
}

/// What could be read of a code from another scheme, for the `details` of
/// `QR_NOT_A_BANK_TRANSFER`.
fn other_scheme_details(other: &OtherScheme) -> serde_json::Value {
    let merchant_accounts: Vec<serde_json::Value> = other
        .merchant_accounts
        .iter()
        .map(|template| {
            json!({
                "tag": format!("{:02}", template.tag),
                "guid": template.guid,
                "scheme": template.scheme(),
            })
        })
        .collect();
    json!({
        "merchant_accounts": merchant_accounts,
        "amount": other.amount,
        "currency": other.currency,
        "purpose": other.purpose,
        "merchant_name": other.merchant_name,
        "merchant_city": other.merchant_city,
    })
}
