//! Payees, their VietQR codes, and payment intents.
//!
//! Vendor and school users act only for the payee their token names. Another payee's records
//! answer them "not found", the same as records that do not exist, so ids cannot be probed.

mod error;
pub mod models;
pub mod qr_image;
pub mod received;

use crate::domain::audit::AuditAction;
use crate::services::audit_record;
use crate::services::payers::check_payer;
use std::sync::Arc;

use uuid::Uuid;

pub use error::PaymentError;
use models::*;
use qr_image::{ImageFormat, StickerText};

use crate::clock::Clock;
use crate::domain::banks::{banks, find_bank};
use crate::domain::intent::{
    IntentStatus, PaymentIntent, DEFAULT_EXPIRES_IN_SECONDS, MAX_EXPIRES_IN_SECONDS,
    MIN_EXPIRES_IN_SECONDS,
};
use crate::domain::money::{Amount, Currency};
use crate::domain::payee::{
    bounded_text, parse_phone, AccountNumber, CollectionAccountSpec, Payee, PayeeCode,
    PayeeDetails, PayeeKind, DETAIL_MAX_CHARS, NAME_MAX_CHARS,
};
use crate::domain::reference::PaymentReference;
use crate::domain::text::HolderName;
use crate::domain::vietqr::{Initiation, Service, VietQr, AMOUNT_MAX_DIGITS};
use crate::services::auth::Caller;
use crate::services::ledger::Reply;
use crate::services::paging;
use crate::store::{
    IdempotencyClaim, IntentFilter, IntentInsert, NewPayee, PayeeChanges, PayeeFilter,
    PayeeRejection, Store, StoreError, StoredResponse,
};

/// Whose code a QR image shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrSubject {
    /// The payee's static code.
    Payee(Uuid),
    /// The intent's dynamic code.
    Intent(Uuid),
}

/// A generated code or reference that is already taken is drawn again; with 23^6 codes and
/// 23^7 references, needing more than a few draws means something else is wrong.
const MAX_DRAWS: usize = 5;
const DESCRIPTION_MAX_CHARS: usize = 200;
/// The largest amount tag 54 can carry: 13 nines.
const MAX_QR_AMOUNT: i64 = 10_i64.pow(AMOUNT_MAX_DIGITS as u32) - 1;

#[derive(Clone)]
pub struct PaymentService {
    store: Arc<dyn Store>,
    clock: Clock,
}

impl PaymentService {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            clock: Clock::default(),
        }
    }

    /// The clock this service records and judges expiry by (the application's one clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn banks(&self) -> BankList {
        BankList {
            data: banks().iter().map(BankView::from).collect(),
        }
    }

    /// Decodes any VietQR payload, e.g. the one a vendor's banking app shows, for onboarding;
    /// what was unusual but readable comes back as warnings.
    pub fn parse_qr(&self, request: &QrParseRequest) -> Result<QrParseView, PaymentError> {
        Ok(QrParseView::from(&VietQr::read(&request.payload)?))
    }

    #[tracing::instrument(skip_all, fields(kind = %request.kind))]
    pub async fn create_payee(
        &self,
        caller: &Caller,
        request: NewPayeeRequest,
    ) -> Result<PayeeView, PaymentError> {
        let kind = PayeeKind::parse(&request.kind)?;
        let chosen_code = request.code.as_deref().map(PayeeCode::parse).transpose()?;
        let mut payee = NewPayee {
            id: self.clock.new_id(),
            code: chosen_code
                .clone()
                .unwrap_or_else(|| PayeeCode::generate(kind, &mut rand::thread_rng())),
            kind,
            details: PayeeDetails {
                name: bounded_text("name", &request.name, NAME_MAX_CHARS)?,
                hamlet: optional_detail("hamlet", request.hamlet.as_deref())?,
                stall: optional_detail("stall", request.stall.as_deref())?,
                phone: request.phone.as_deref().map(parse_phone).transpose()?,
                category: optional_detail("category", request.category.as_deref())?,
            },
            collection_account: collection_account(&request.collection_account)?,
            owner_resident_id: request.owner_resident_id,
            now: self.clock.now_micros(),
        };
        for _ in 0..MAX_DRAWS {
            let audit = audit_record(
                &self.clock,
                caller,
                AuditAction::PayeeCreate,
                payee.id,
                None,
                None,
            );
            match self.store.create_payee(&payee, audit).await? {
                Ok(created) => return payee_view(&created),
                Err(PayeeRejection::CodeTaken(_)) if chosen_code.is_none() => {
                    payee.code = PayeeCode::generate(kind, &mut rand::thread_rng());
                }
                Err(rejection) => return Err(rejected(rejection, payee.id)),
            }
        }
        Err(StoreError::WriteConflict.into())
    }

    #[tracing::instrument(skip_all, fields(payee = %id))]
    pub async fn update_payee(
        &self,
        caller: &Caller,
        id: Uuid,
        request: PayeePatchRequest,
    ) -> Result<PayeeView, PaymentError> {
        let detail = |field, value: Option<Option<String>>| {
            value
                .map(|value| optional_detail(field, value.as_deref()))
                .transpose()
        };
        let changes = PayeeChanges {
            name: request
                .name
                .as_deref()
                .map(|name| bounded_text("name", name, NAME_MAX_CHARS))
                .transpose()?,
            hamlet: detail("hamlet", request.hamlet)?,
            stall: detail("stall", request.stall)?,
            phone: request
                .phone
                .map(|phone| phone.as_deref().map(parse_phone).transpose())
                .transpose()?,
            category: detail("category", request.category)?,
            active: request.active,
            collection_account: request
                .collection_account
                .as_ref()
                .map(collection_account)
                .transpose()?,
            owner_resident_id: request.owner_resident_id,
        };
        match self
            .store
            .update_payee(
                id,
                &changes,
                audit_record(
                    &self.clock,
                    caller,
                    AuditAction::PayeeUpdate,
                    id,
                    None,
                    None,
                ),
            )
            .await?
        {
            Ok(payee) => payee_view(&payee),
            Err(rejection) => Err(rejected(rejection, id)),
        }
    }

    /// The payee, if it exists and the caller may see it.
    async fn visible_payee(&self, caller: &Caller, id: Uuid) -> Result<Payee, PaymentError> {
        match self.store.payee(id).await? {
            Some(payee) if may_act_for(caller, id) => Ok(payee),
            _ => Err(PaymentError::PayeeNotFound(id)),
        }
    }

    pub async fn payee(&self, caller: &Caller, id: Uuid) -> Result<PayeeView, PaymentError> {
        payee_view(&self.visible_payee(caller, id).await?)
    }

    /// Fails unless the payee exists: `users create --payee` binds users only to real payees.
    pub async fn require_payee(&self, id: Uuid) -> Result<(), PaymentError> {
        match self.store.payee(id).await? {
            Some(_) => Ok(()),
            None => Err(PaymentError::PayeeNotFound(id)),
        }
    }

    pub async fn list_payees(
        &self,
        caller: &Caller,
        query: PayeeQuery,
    ) -> Result<PayeePage, PaymentError> {
        let limit = paging::limit(query.limit)?;
        let filter = PayeeFilter {
            kind: query.kind.as_deref().map(PayeeKind::parse).transpose()?,
            hamlet: query.hamlet,
            category: query.category,
            active: query.active,
            // Payee-bound users list only their own payee: a user without one sees nothing.
            only: caller
                .role
                .is_payee_bound()
                .then(|| caller.payee_id.unwrap_or(Uuid::nil())),
            after: paging::read_id_cursor(query.cursor.as_deref())?,
            limit,
        };
        let payees = self.store.list_payees(&filter).await?;
        Ok(PayeePage {
            next_cursor: paging::next_cursor(&payees, limit, |p| p.id.to_string()),
            data: payees.iter().map(payee_view).collect::<Result<_, _>>()?,
        })
    }

    /// A payee's static code or an intent's dynamic code as a picture. An inactive payee's
    /// code and the code of an intent that is no longer pending are not given out: a payer
    /// could still scan them.
    pub async fn qr_image(
        &self,
        caller: &Caller,
        subject: QrSubject,
        format: ImageFormat,
        size: Option<u32>,
    ) -> Result<qr_image::Image, PaymentError> {
        let size = match size.unwrap_or(qr_image::DEFAULT_SIZE) {
            size @ qr_image::MIN_SIZE..=qr_image::MAX_SIZE => size,
            _ => return Err(PaymentError::ImageSizeOutOfRange),
        };
        let payload = match subject {
            QrSubject::Payee(id) => static_payload(&self.active_payee(caller, id).await?)?,
            QrSubject::Intent(id) => {
                let intent = self.visible_intent(caller, id).await?;
                match intent.status(self.clock.now_micros()) {
                    IntentStatus::Pending => intent.qr_payload,
                    other => return Err(PaymentError::NotPayable(other)),
                }
            }
        };
        Ok(qr_image::render(&payload, format, size))
    }

    pub async fn payee_sticker(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<qr_image::Image, PaymentError> {
        let payee = self.active_payee(caller, id).await?;
        let account = &payee.collection_account;
        let bank = find_bank(&account.bank_bin);
        let text = StickerText {
            payee_name: &payee.details.name,
            payee_code: &payee.code,
            stall: payee.details.stall.as_deref(),
            hamlet: payee.details.hamlet.as_deref(),
            bank_short_name: bank.map_or(account.bank_bin.as_str(), |b| &b.short_name),
            bank_name: bank.map_or("", |b| &b.name),
            account_number: &account.account_number,
            holder_name: &account.holder_name,
        };
        Ok(qr_image::sticker(&static_payload(&payee)?, &text))
    }

    async fn active_payee(&self, caller: &Caller, id: Uuid) -> Result<Payee, PaymentError> {
        let payee = self.visible_payee(caller, id).await?;
        if !payee.active {
            return Err(PaymentError::PayeeInactive(id));
        }
        Ok(payee)
    }

    /// Creates a pending intent with a fresh reference; the key, the intent and its response
    /// are written in one transaction, so a retry replays instead of creating a second one.
    #[tracing::instrument(skip_all, fields(user = %caller.username, payee = %request.payee_id))]
    pub async fn create_intent(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        request: NewIntentRequest,
    ) -> Result<Reply, PaymentError> {
        let amount = Amount::parse(&request.amount.0, Currency::Vnd)?.minor();
        if amount > MAX_QR_AMOUNT {
            return Err(PaymentError::AmountTooLargeForQr);
        }
        let description = request
            .description
            .as_deref()
            .map(|text| {
                bounded_text("description", text, DESCRIPTION_MAX_CHARS)
                    .map_err(|_| PaymentError::InvalidDescription(DESCRIPTION_MAX_CHARS))
            })
            .transpose()?;
        let lifetime = request
            .expires_in_seconds
            .unwrap_or(DEFAULT_EXPIRES_IN_SECONDS);
        if !(MIN_EXPIRES_IN_SECONDS..=MAX_EXPIRES_IN_SECONDS).contains(&lifetime) {
            return Err(PaymentError::InvalidExpiry);
        }
        // A retry of an intent that was created answers as it did, also once the payee is
        // inactive.
        if let Some(reply) = crate::services::earlier_answer(self.store.as_ref(), &claim).await? {
            return Ok(reply);
        }
        let payee = self.active_payee(caller, request.payee_id).await?;
        let (payer_resident_id, payer_household_id) = {
            let mut unit = self.store.begin().await?;
            let checked = check_payer(&mut unit, request.payer).await;
            unit.rollback().await?;
            checked?
        };
        let now = self.clock.now_micros();
        for _ in 0..MAX_DRAWS {
            let intent = draft_intent(
                &self.clock,
                &payee,
                (amount, description.clone()),
                (now, now + i64::from(lifetime) * 1_000_000),
                caller.user_id,
                (payer_resident_id, payer_household_id),
            )?;
            let body =
                serde_json::to_string(&IntentView::new(&intent, now)).expect("views serialize");
            let response = StoredResponse { status: 201, body };
            match self.store.create_intent(&claim, &intent, &response).await? {
                IntentInsert::Created => {
                    metrics::counter!("payment_intents_created_total").increment(1);
                    return Ok(Reply {
                        status: response.status,
                        body: response.body,
                        replayed: false,
                    });
                }
                IntentInsert::Replay(stored) => {
                    return Ok(Reply {
                        status: stored.status,
                        body: stored.body,
                        replayed: true,
                    })
                }
                IntentInsert::ReferenceTaken => continue,
            }
        }
        Err(StoreError::WriteConflict.into())
    }

    /// The intent, if it exists and the caller may see it.
    async fn visible_intent(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<PaymentIntent, PaymentError> {
        match self.store.intent(id).await? {
            Some(intent) if may_act_for(caller, intent.payee_id) => Ok(intent),
            _ => Err(PaymentError::IntentNotFound(id)),
        }
    }

    pub async fn intent(&self, caller: &Caller, id: Uuid) -> Result<IntentView, PaymentError> {
        let intent = self.visible_intent(caller, id).await?;
        Ok(IntentView::new(&intent, self.clock.now_micros()))
    }

    pub async fn list_intents(
        &self,
        caller: &Caller,
        payee_id: Uuid,
        query: IntentQuery,
    ) -> Result<IntentPage, PaymentError> {
        let limit = paging::limit(query.limit)?;
        let status = query
            .status
            .as_deref()
            .map(|text| {
                IntentStatus::parse(text).ok_or_else(|| {
                    PaymentError::InvalidQuery(format!(
                        "status {text:?} is not one of pending, paid, partially_paid, expired, \
                         cancelled"
                    ))
                })
            })
            .transpose()?;
        let before = paging::read_cursor(query.cursor.as_deref(), paging::time_and_id)?;
        self.visible_payee(caller, payee_id).await?;
        let now = self.clock.now_micros();
        let intents = self
            .store
            .list_intents(&IntentFilter {
                payee_id,
                status,
                now,
                before,
                limit,
            })
            .await?;
        Ok(IntentPage {
            next_cursor: paging::next_cursor(&intents, limit, |i| {
                paging::time_and_id_key(i.created_at, i.id)
            }),
            data: intents.iter().map(|i| IntentView::new(i, now)).collect(),
        })
    }

    /// Cancels a pending intent. Cancelling a cancelled intent answers the same again, so a
    /// retried cancel is harmless.
    pub async fn cancel_intent(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<IntentView, PaymentError> {
        let pending = self.visible_intent(caller, id).await?;
        let now = self.clock.now_micros();
        let state = |status: &str| {
            serde_json::json!({
                "payee_id": pending.payee_id, "reference": pending.reference.as_str(),
                "amount": pending.amount.to_string(), "status": status,
            })
        };
        let audit = crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::PaymentIntentCancel,
            id,
            Some(state("pending")),
            Some(state("cancelled")),
        );
        let intent = self
            .store
            .cancel_intent(id, now, &audit)
            .await?
            .ok_or(PaymentError::IntentNotFound(id))?;
        match intent.status(now) {
            IntentStatus::Cancelled => Ok(IntentView::new(&intent, now)),
            other => Err(PaymentError::NotCancellable(other)),
        }
    }

    /// Writes `expired` on intents whose time is up (reads never depend on it), logging each
    /// once, whichever instance's sweep wrote it; returns their ids.
    pub async fn expire_intents(&self) -> Result<Vec<Uuid>, StoreError> {
        let expired = self.store.expire_intents(self.clock.now_micros()).await?;
        for intent_id in &expired {
            tracing::info!(%intent_id, "payment intent expired");
        }
        Ok(expired)
    }
}

/// A pending intent for (amount, description), made at `created_at`, into the payee's collection account, with a
/// freshly drawn reference and its dynamic VietQR, naming its payer (resident, household) when
/// known. Uniqueness of the reference is the store's: draft again when it is taken.
pub(crate) fn draft_intent(
    clock: &Clock,
    payee: &Payee,
    (amount, description): (i64, Option<String>),
    (created_at, expires_at): (i64, i64),
    created_by: Uuid,
    (payer_resident_id, payer_household_id): (Option<Uuid>, Option<Uuid>),
) -> Result<PaymentIntent, crate::domain::vietqr::VietQrError> {
    let account = &payee.collection_account;
    let reference = PaymentReference::generate(&mut rand::thread_rng());
    let qr = VietQr::new(
        Initiation::Dynamic,
        &account.bank_bin,
        &account.account_number,
        Service::Account,
        Some(amount as u64),
        Some(reference.as_str()),
    )?;
    Ok(PaymentIntent {
        id: clock.new_id(),
        payee_id: payee.id,
        collection_account_id: account.id,
        reference: reference.as_str().to_owned(),
        amount,
        description,
        stored_status: IntentStatus::Pending,
        qr_payload: qr.encode(),
        expires_at,
        created_at,
        created_by,
        cancelled_at: None,
        paid_amount: 0,
        payer_resident_id,
        payer_household_id,
    })
}

/// Staff act for every payee; vendor and school users only for their own.
fn may_act_for(caller: &Caller, payee_id: Uuid) -> bool {
    !caller.role.is_payee_bound() || caller.payee_id == Some(payee_id)
}

fn optional_detail(
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<String>, PaymentError> {
    Ok(text
        .map(|text| bounded_text(field, text, DETAIL_MAX_CHARS))
        .transpose()?)
}

fn collection_account(
    request: &CollectionAccountRequest,
) -> Result<CollectionAccountSpec, PaymentError> {
    Ok(CollectionAccountSpec {
        bank: CollectionAccountSpec::parse_bank(&request.bank_bin)?,
        number: AccountNumber::parse(&request.account_number)?,
        holder_name: HolderName::parse(&request.holder_name)?,
    })
}

/// The payee's static code: no amount, its code as the purpose, so a transfer made from the
/// sticker names the payee.
fn static_payload(payee: &Payee) -> Result<String, PaymentError> {
    let account = &payee.collection_account;
    VietQr::new(
        Initiation::Static,
        &account.bank_bin,
        &account.account_number,
        Service::Account,
        None,
        Some(&payee.code),
    )
    .map(|qr| qr.encode())
    // Codes and account numbers are validated on the way in, so only a damaged row fails here.
    .map_err(|e| StoreError::Corrupt(format!("payee {}: {e}", payee.id)).into())
}

fn payee_view(payee: &Payee) -> Result<PayeeView, PaymentError> {
    Ok(PayeeView::new(payee, static_payload(payee)?))
}

fn rejected(rejection: PayeeRejection, id: Uuid) -> PaymentError {
    match rejection {
        PayeeRejection::NotFound => PaymentError::PayeeNotFound(id),
        PayeeRejection::OwnerNotFound(owner) => PaymentError::OwnerNotFound(owner),
        PayeeRejection::CodeTaken(code) => PaymentError::PayeeCodeTaken(code),
        PayeeRejection::LedgerAccountTaken(code) => PaymentError::LedgerAccountTaken(code),
        PayeeRejection::HolderNameMismatch { registered } => {
            PaymentError::HolderNameMismatch { registered }
        }
    }
}
