//! Payers: the bank accounts payments come from (known only by their keyed hash and last four
//! digits), staff linking them to residents and households with an audit of every change, and
//! cash payments recorded by payees.
//!
//! Cash payments never touch the ledger: a vendor's cash never passes through the commune's
//! bank accounts, so there is nothing to post. They are recorded only so statistics can
//! compare cash with online payments.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::clock::{to_datetime, Clock};
use crate::domain::audit::{AuditAction, AuditRecord};
use crate::domain::money::{Amount, AmountError, Currency};
use crate::domain::payer::{PayerAccount, PayerAccountHash, Pepper};
use crate::domain::user::Role;
use crate::services::auth::Caller;
use crate::services::ledger::models::AmountText;
use crate::services::ledger::{PageQuery, Reply};
use crate::services::paging::{self, PageError};
use crate::services::PublicError;
use crate::store::statistics::PersonalDataAccess;
use crate::store::{
    AuditFilter, CashPayment, IdempotencyClaim, PayerAccountFilter, PayerAccountRecord, Store,
    StoreError, StoredResponse, UnitOfWork,
};

/// The longest link reason and cash-payment note, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// The most payments one cash record may sum.
pub const MAX_PAYMENT_COUNT: u32 = 100_000;
/// How far in the future a cash payment's time may be (clock skew of the vendor's phone).
const FUTURE_TOLERANCE_MINUTES: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum PayerError {
    #[error("payer account {0} not found")]
    PayerAccountNotFound(String),
    #[error("resident {0} not found")]
    ResidentNotFound(Uuid),
    #[error("household {0} not found")]
    HouseholdNotFound(Uuid),
    #[error("resident {0} has not given consent to link their payments")]
    ConsentNotGiven(Uuid),
    #[error("the payer account is already linked; unlink it first")]
    AlreadyLinked,
    #[error("the payer account is not linked")]
    NotLinked,
    #[error("give exactly one of resident_id and household_id")]
    InvalidLink,
    #[error("reason must be 1 to {MAX_REASON_CHARS} characters")]
    InvalidReason,
    #[error("bank_bin must be 6 digits and account_number 4 to 19 digits")]
    InvalidBankAccount,
    #[error("payer must name exactly one of resident_id and household_id")]
    InvalidPayer,
    #[error("the payer {0} is not a known resident or household")]
    PayerNotFound(Uuid),
    #[error("payee {0} not found")]
    PayeeNotFound(Uuid),
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error("payment_count must be 1 to {MAX_PAYMENT_COUNT}")]
    InvalidPaymentCount,
    #[error("occurred_at is in the future")]
    OccurredInFuture,
    #[error("note must be at most {MAX_REASON_CHARS} characters")]
    NoteTooLong,
    #[error(transparent)]
    Page(#[from] PageError),
    #[error("which resident's account paid is individual-level data; only admins list linked accounts (ask with linked=false)")]
    LinkedForAdminsOnly,
    #[error("this idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is still being processed; retry shortly")]
    IdempotencyKeyInProgress,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PayerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::IdempotencyKeyReused => PayerError::IdempotencyKeyReused,
            StoreError::IdempotencyKeyInProgress => PayerError::IdempotencyKeyInProgress,
            other => PayerError::Store(other),
        }
    }
}

impl PublicError for PayerError {
    fn status(&self) -> u16 {
        use PayerError::*;
        match self {
            Page(_) => 400,
            LinkedForAdminsOnly => 403,
            PayerAccountNotFound(_)
            | ResidentNotFound(_)
            | HouseholdNotFound(_)
            | PayeeNotFound(_) => 404,
            ConsentNotGiven(_) | AlreadyLinked | NotLinked | IdempotencyKeyInProgress => 409,
            Store(store) => store.status(),
            _ => 422,
        }
    }

    fn code(&self) -> &'static str {
        use PayerError::*;
        match self {
            PayerAccountNotFound(_) => "PAYER_ACCOUNT_NOT_FOUND",
            ResidentNotFound(_) => "RESIDENT_NOT_FOUND",
            HouseholdNotFound(_) => "HOUSEHOLD_NOT_FOUND",
            ConsentNotGiven(_) => "CONSENT_NOT_GIVEN",
            AlreadyLinked => "PAYER_ALREADY_LINKED",
            NotLinked => "PAYER_NOT_LINKED",
            InvalidLink => "INVALID_PAYER_LINK",
            InvalidReason => "INVALID_REASON",
            InvalidBankAccount => "INVALID_BANK_ACCOUNT",
            InvalidPayer => "INVALID_PAYER",
            PayerNotFound(_) => "PAYER_NOT_FOUND",
            PayeeNotFound(_) => "PAYEE_NOT_FOUND",
            Amount(amount) => amount.code(),
            InvalidPaymentCount => "INVALID_PAYMENT_COUNT",
            OccurredInFuture => "OCCURRED_AT_IN_FUTURE",
            NoteTooLong => "NOTE_TOO_LONG",
            Page(page) => page.code(),
            LinkedForAdminsOnly => "FORBIDDEN",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            IdempotencyKeyInProgress => "IDEMPOTENCY_KEY_IN_PROGRESS",
            Store(store) => store.code(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayerAccountQuery {
    /// true: only accounts linked to a resident or household; false: only unlinked ones.
    pub linked: Option<bool>,
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// A payer's bank account. The number itself is never stored or shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PayerAccountView {
    /// HMAC-SHA256(pepper, "bin:account number"), lowercase hex.
    pub account_hash: String,
    /// The account number's last four digits.
    #[schema(example = "8888")]
    pub last4: String,
    pub resident_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
    pub linked_at: Option<DateTime<Utc>>,
    pub linked_by: Option<String>,
    /// Bank transactions from this account.
    pub transaction_count: i64,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
}

impl From<PayerAccountRecord> for PayerAccountView {
    fn from(record: PayerAccountRecord) -> Self {
        Self {
            account_hash: record.account_hash,
            last4: record.last4,
            resident_id: record.resident_id,
            household_id: record.household_id,
            linked_at: record.linked_at.map(to_datetime),
            linked_by: record.linked_by,
            transaction_count: record.transaction_count,
            first_seen: record.first_seen.map(to_datetime),
            last_seen: record.last_seen.map(to_datetime),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PayerAccountPage {
    /// Ordered by account_hash.
    pub data: Vec<PayerAccountView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Exactly one of resident_id and household_id.
    pub resident_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
    /// Why staff link it (1 to 500 characters), kept in the audit.
    #[schema(example = "bà Lan đưa sổ tiết kiệm, số tài khoản khớp")]
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlinkRequest {
    /// Why (1 to 500 characters), kept in the audit.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentBankAccountRequest {
    /// The bank's 6-digit BIN (NAPAS id), e.g. 970415.
    #[schema(example = "970415", pattern = "^[0-9]{6}$")]
    pub bank_bin: String,
    /// 4 to 19 digits; only its hash and last four digits are kept.
    #[schema(pattern = "^[0-9]{4,19}$")]
    pub account_number: String,
    /// Why (1 to 500 characters), kept in the audit.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PayerLinkAuditView {
    pub id: Uuid,
    pub account_hash: String,
    /// link or unlink
    pub action: String,
    pub resident_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
    /// The username of who did it.
    pub actor: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A link, unlink or registration as the audit trail holds it: an unlink's `before` names whom
/// the account was linked to, a link's `after` whom it is linked to now, with the reason.
impl From<AuditRecord> for PayerLinkAuditView {
    fn from(record: AuditRecord) -> Self {
        let unlinked = record.action == AuditAction::PayerAccountUnlink;
        let link = if unlinked {
            &record.before
        } else {
            &record.after
        };
        let id_of = |field: &str| {
            link.as_ref()
                .and_then(|link| link[field].as_str())
                .and_then(|id| Uuid::parse_str(id).ok())
        };
        let reason = record
            .after
            .as_ref()
            .and_then(|after| after["reason"].as_str());
        Self {
            id: record.id,
            account_hash: record.target_id.clone(),
            action: if unlinked { "unlink" } else { "link" }.to_owned(),
            resident_id: id_of("resident_id"),
            household_id: id_of("household_id"),
            actor: record.actor.username,
            reason: reason.unwrap_or_default().to_owned(),
            at: to_datetime(record.recorded_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PayerLinkAuditList {
    /// Oldest first.
    pub data: Vec<PayerLinkAuditView>,
}

/// A change of a payer account's link: to or from (resident, household).
#[derive(Clone, Copy)]
enum LinkChange<'a> {
    Link((Option<Uuid>, Option<Uuid>)),
    Unlink((Option<Uuid>, Option<Uuid>)),
    /// A resident's own account registered and linked to them.
    Register((Option<Uuid>, Option<Uuid>), &'a PayerAccount),
}

/// Who pays: exactly one of a resident and a household.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayerRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_id: Option<Uuid>,
}

impl PayerRef {
    /// `None` when both ids are absent; (resident, household) otherwise.
    pub fn from_columns(resident_id: Option<Uuid>, household_id: Option<Uuid>) -> Option<Self> {
        (resident_id.is_some() || household_id.is_some()).then_some(PayerRef {
            resident_id,
            household_id,
        })
    }
}

/// Checks that `payer` names exactly one resident or household that exists, in `unit`.
pub async fn check_payer(
    unit: &mut UnitOfWork<'_>,
    payer: Option<PayerRef>,
) -> Result<(Option<Uuid>, Option<Uuid>), PayerError> {
    match payer {
        None => Ok((None, None)),
        Some(PayerRef {
            resident_id: Some(resident),
            household_id: None,
        }) => {
            if unit.resident_exists(resident).await? {
                Ok((Some(resident), None))
            } else {
                Err(PayerError::PayerNotFound(resident))
            }
        }
        Some(PayerRef {
            resident_id: None,
            household_id: Some(household),
        }) => {
            if unit.household_exists(household).await? {
                Ok((None, Some(household)))
            } else {
                Err(PayerError::PayerNotFound(household))
            }
        }
        Some(_) => Err(PayerError::InvalidPayer),
    }
}

/// Cash a payee received, recorded for statistics. Not posted to the ledger: the cash never
/// passes through the commune's bank accounts.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashPaymentRequest {
    /// Whole đồng ("50000"; a JSON integer is accepted): one payment, or the total of
    /// `payment_count` payments.
    pub amount: AmountText,
    /// How many payments `amount` sums, 1 to 100 000; default 1.
    #[schema(minimum = 1, maximum = 100_000)]
    pub payment_count: Option<u32>,
    /// When the cash was received; default now. At most 5 minutes in the future.
    pub occurred_at: Option<DateTime<Utc>>,
    pub payer: Option<PayerRef>,
    /// At most 500 characters.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CashPaymentView {
    pub id: Uuid,
    pub payee_id: Uuid,
    #[schema(example = "50000")]
    pub amount: String,
    pub currency: String,
    pub payment_count: i32,
    pub occurred_at: DateTime<Utc>,
    pub payer: Option<PayerRef>,
    pub note: Option<String>,
    /// The user who recorded it.
    pub recorded_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<CashPayment> for CashPaymentView {
    fn from(cash: CashPayment) -> Self {
        Self {
            id: cash.id,
            payee_id: cash.payee_id,
            amount: cash.amount.to_string(),
            currency: "VND".to_owned(),
            payment_count: cash.payment_count,
            occurred_at: to_datetime(cash.occurred_at),
            payer: PayerRef::from_columns(cash.payer_resident_id, cash.payer_household_id),
            note: cash.note,
            recorded_by: cash.recorded_by,
            created_at: to_datetime(cash.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CashPaymentPage {
    /// Newest first (by occurred_at).
    pub data: Vec<CashPaymentView>,
    pub next_cursor: Option<String>,
}

#[derive(Clone)]
pub struct PayerService {
    store: Arc<dyn Store>,
    clock: Clock,
    pepper: Pepper,
}

fn check_reason(reason: &str) -> Result<String, PayerError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS || reason.contains('\0') {
        return Err(PayerError::InvalidReason);
    }
    Ok(reason.to_owned())
}

/// The account hash in a path: anything that is not 64 hex digits names no account.
fn parse_hash(text: &str) -> Result<PayerAccountHash, PayerError> {
    PayerAccountHash::parse(text).ok_or_else(|| PayerError::PayerAccountNotFound(text.to_owned()))
}

impl PayerService {
    pub fn new(store: Arc<dyn Store>, clock: Clock, pepper: Pepper) -> Self {
        Self {
            store,
            clock,
            pepper,
        }
    }

    /// Today in Vietnam.
    fn today(&self) -> NaiveDate {
        crate::domain::registry::day_in_vietnam(self.clock.now())
    }

    /// Staff see the accounts nobody is linked to yet (to link them; without a filter that is
    /// all they get); which resident's account paid how often is individual-level data, for
    /// admins, and each such read is written to the personal-data access log.
    pub async fn list(
        &self,
        caller: &Caller,
        mut query: PayerAccountQuery,
    ) -> Result<PayerAccountPage, PayerError> {
        let limit = paging::limit(query.limit)?;
        if caller.role != Role::Admin {
            if query.linked == Some(true) {
                return Err(PayerError::LinkedForAdminsOnly);
            }
            query.linked = Some(false);
        } else if query.linked != Some(false) {
            self.store
                .record_personal_data_access(&PersonalDataAccess {
                    id: self.clock.new_id(),
                    actor: caller.username.clone(),
                    what: "linked payer accounts and their payment counts".to_owned(),
                    subject: None,
                    at: self.clock.now_micros(),
                })
                .await?;
        }
        let after = paging::read_cursor(query.cursor.as_deref(), |text| {
            PayerAccountHash::parse(text).map(|hash| hash.as_str().to_owned())
        })?;
        let rows = self
            .store
            .list_payer_accounts(&PayerAccountFilter {
                linked: query.linked,
                after,
                limit,
            })
            .await?;
        let next_cursor = paging::next_cursor(&rows, limit, |row| row.account_hash.clone());
        Ok(PayerAccountPage {
            data: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })
    }

    /// Who linked an account to whom: for staff while it is unlinked (the history of their own
    /// work); the history of a linked account says whose account it is, individual-level data
    /// for admins, logged like the linked listing.
    pub async fn audit(
        &self,
        caller: &Caller,
        hash: &str,
    ) -> Result<PayerLinkAuditList, PayerError> {
        let hash = parse_hash(hash)?;
        let Some(account) = self.store.payer_account(hash.as_str()).await? else {
            return Err(PayerError::PayerAccountNotFound(hash.to_string()));
        };
        let linked = account.resident_id.is_some() || account.household_id.is_some();
        if linked {
            if caller.role != Role::Admin {
                return Err(PayerError::LinkedForAdminsOnly);
            }
            self.store
                .record_personal_data_access(&PersonalDataAccess {
                    id: self.clock.new_id(),
                    actor: caller.username.clone(),
                    what: "link history of a linked payer account".to_owned(),
                    subject: Some(hash.as_str().to_owned()),
                    at: self.clock.now_micros(),
                })
                .await?;
        }
        let records = self
            .store
            .list_audit(&AuditFilter {
                target_kind: Some(AuditAction::PayerAccountLink.target_kind().to_owned()),
                target_id: Some(hash.to_string()),
                limit: u32::MAX,
                ..AuditFilter::default()
            })
            .await?;
        Ok(PayerLinkAuditList {
            data: records.into_iter().map(Into::into).collect(),
        })
    }

    /// Checks that the resident or household exists (and a resident's consent is in force).
    async fn check_link_target(
        &self,
        unit: &mut UnitOfWork<'_>,
        resident_id: Option<Uuid>,
        household_id: Option<Uuid>,
    ) -> Result<(), PayerError> {
        match (resident_id, household_id) {
            (Some(resident), None) => {
                if !unit.resident_exists(resident).await? {
                    return Err(PayerError::ResidentNotFound(resident));
                }
                if unit.consent_on(resident, self.today()).await? != Some(true) {
                    return Err(PayerError::ConsentNotGiven(resident));
                }
                Ok(())
            }
            (None, Some(household)) => {
                if unit.household_exists(household).await? {
                    Ok(())
                } else {
                    Err(PayerError::HouseholdNotFound(household))
                }
            }
            _ => Err(PayerError::InvalidLink),
        }
    }

    /// Sets or clears the account's link, with its audit record: `before` the link it replaces
    /// and `after` the new one, the reason, and for a registration the bank and last four
    /// digits (never the number).
    async fn write_link(
        &self,
        unit: &mut UnitOfWork<'_>,
        caller: &Caller,
        hash: &PayerAccountHash,
        change: LinkChange<'_>,
        reason: String,
    ) -> Result<(), PayerError> {
        let now = self.clock.now_micros();
        let link = |(resident_id, household_id): (Option<Uuid>, Option<Uuid>)| serde_json::json!({ "resident_id": resident_id, "household_id": household_id });
        let unlinked = (None, None);
        let (action, before, set) = match change {
            LinkChange::Link(to) => (AuditAction::PayerAccountLink, unlinked, to),
            LinkChange::Register(to, _) => (AuditAction::PayerAccountRegister, unlinked, to),
            LinkChange::Unlink(from) => (AuditAction::PayerAccountUnlink, from, unlinked),
        };
        let linked = set != unlinked;
        unit.set_payer_link(
            hash.as_str(),
            set.0,
            set.1,
            linked.then_some(now),
            linked.then_some(caller.username.as_str()),
        )
        .await?;
        let mut after = link(set);
        after["reason"] = reason.into();
        if let LinkChange::Register(_, account) = change {
            after["bank_bin"] = account.bank_bin.clone().into();
            after["account_last4"] = account.last4().into();
        }
        let audit = crate::services::audit_record(
            &self.clock,
            caller,
            action,
            hash,
            Some(link(before)),
            Some(after),
        );
        unit.append_audit(&audit).await?;
        Ok(())
    }

    async fn view(&self, hash: &PayerAccountHash) -> Result<PayerAccountView, PayerError> {
        self.store
            .payer_account(hash.as_str())
            .await?
            .map(Into::into)
            .ok_or_else(|| PayerError::PayerAccountNotFound(hash.to_string()))
    }

    pub async fn link(
        &self,
        caller: &Caller,
        hash: &str,
        request: LinkRequest,
    ) -> Result<PayerAccountView, PayerError> {
        let hash = parse_hash(hash)?;
        let reason = check_reason(&request.reason)?;
        let mut unit = self.store.begin().await?;
        let Some(current) = unit.lock_payer_account(hash.as_str()).await? else {
            return Err(PayerError::PayerAccountNotFound(hash.to_string()));
        };
        if current != (None, None) {
            return Err(PayerError::AlreadyLinked);
        }
        self.check_link_target(&mut unit, request.resident_id, request.household_id)
            .await?;
        let to = (request.resident_id, request.household_id);
        self.write_link(&mut unit, caller, &hash, LinkChange::Link(to), reason)
            .await?;
        unit.commit().await?;
        tracing::info!(account_hash = %hash, "payer account linked");
        self.view(&hash).await
    }

    pub async fn unlink(
        &self,
        caller: &Caller,
        hash: &str,
        request: UnlinkRequest,
    ) -> Result<PayerAccountView, PayerError> {
        let hash = parse_hash(hash)?;
        let reason = check_reason(&request.reason)?;
        let mut unit = self.store.begin().await?;
        let Some((resident_id, household_id)) = unit.lock_payer_account(hash.as_str()).await?
        else {
            return Err(PayerError::PayerAccountNotFound(hash.to_string()));
        };
        if (resident_id, household_id) == (None, None) {
            return Err(PayerError::NotLinked);
        }
        let from = (resident_id, household_id);
        self.write_link(&mut unit, caller, &hash, LinkChange::Unlink(from), reason)
            .await?;
        unit.commit().await?;
        tracing::info!(account_hash = %hash, "payer account unlinked");
        self.view(&hash).await
    }

    /// Registers a resident's own bank account: its hash is linked to the resident (consent
    /// in force required). An account already linked to this resident is left as it is;
    /// linked to anyone else, refused.
    pub async fn register_resident_account(
        &self,
        caller: &Caller,
        resident_id: Uuid,
        request: ResidentBankAccountRequest,
    ) -> Result<PayerAccountView, PayerError> {
        let reason = check_reason(&request.reason)?;
        let account = PayerAccount::parse(Some(&request.bank_bin), Some(&request.account_number))
            .ok_or(PayerError::InvalidBankAccount)?;
        let hash = account.hash(&self.pepper);
        let mut unit = self.store.begin().await?;
        self.check_link_target(&mut unit, Some(resident_id), None)
            .await?;
        match unit.lock_payer_account(hash.as_str()).await? {
            Some((Some(linked), None)) if linked == resident_id => {
                unit.rollback().await?;
                return self.view(&hash).await;
            }
            Some((None, None)) => {}
            Some(_) => return Err(PayerError::AlreadyLinked),
            None => {
                unit.insert_payer_account(hash.as_str(), &account.last4())
                    .await?
            }
        }
        let change = LinkChange::Register((Some(resident_id), None), &account);
        self.write_link(&mut unit, caller, &hash, change, reason)
            .await?;
        unit.commit().await?;
        tracing::info!(account_hash = %hash, "resident bank account registered");
        self.view(&hash).await
    }

    /// Payee-bound callers (vendor, school) reach only their own payee; any other is "not
    /// found" to them.
    fn check_payee_access(caller: &Caller, payee_id: Uuid) -> Result<(), PayerError> {
        if caller.role.is_payee_bound() && caller.payee_id != Some(payee_id) {
            return Err(PayerError::PayeeNotFound(payee_id));
        }
        Ok(())
    }

    /// Records cash a payee received, once per idempotency key: the key, the record and its
    /// response are written in one transaction, so a retry replays the first answer. Nothing
    /// is posted to the ledger.
    pub async fn record_cash(
        &self,
        caller: &Caller,
        claim: IdempotencyClaim,
        payee_id: Uuid,
        request: CashPaymentRequest,
    ) -> Result<Reply, PayerError> {
        Self::check_payee_access(caller, payee_id)?;
        let amount = Amount::parse(&request.amount.0, Currency::Vnd)?.minor();
        let payment_count = request.payment_count.unwrap_or(1);
        if !(1..=MAX_PAYMENT_COUNT).contains(&payment_count) {
            return Err(PayerError::InvalidPaymentCount);
        }
        let now = self.clock.now();
        let occurred_at = request.occurred_at.unwrap_or(now);
        if occurred_at > now + Duration::minutes(FUTURE_TOLERANCE_MINUTES) {
            return Err(PayerError::OccurredInFuture);
        }
        let note = request
            .note
            .map(|note| note.trim().to_owned())
            .filter(|note| !note.is_empty());
        if note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_REASON_CHARS || n.contains('\0'))
        {
            return Err(PayerError::NoteTooLong);
        }
        if let Some(reply) = crate::services::earlier_answer(self.store.as_ref(), &claim).await? {
            return Ok(reply);
        }
        let mut unit = self.store.begin().await?;
        if !unit.payee_exists(payee_id).await? {
            return Err(PayerError::PayeeNotFound(payee_id));
        }
        let (payer_resident_id, payer_household_id) = check_payer(&mut unit, request.payer).await?;
        let cash = CashPayment {
            id: self.clock.new_id(),
            payee_id,
            amount,
            payment_count: i32::try_from(payment_count).expect("bounded above"),
            occurred_at: occurred_at.timestamp_micros(),
            payer_resident_id,
            payer_household_id,
            note,
            recorded_by: caller.user_id,
            created_at: now.timestamp_micros(),
        };
        let body =
            serde_json::to_string(&CashPaymentView::from(cash.clone())).expect("views serialize");
        let response = StoredResponse { status: 201, body };
        if let Some(earlier) = unit
            .claim_key(&claim, Some(&response), cash.created_at)
            .await?
        {
            unit.rollback().await?;
            return Ok(Reply::replay(earlier?));
        }
        unit.insert_cash_payment(&cash).await?;
        unit.commit().await?;
        Ok(Reply {
            status: response.status,
            body: response.body,
            replayed: false,
        })
    }

    pub async fn list_cash(
        &self,
        caller: &Caller,
        payee_id: Uuid,
        query: PageQuery,
    ) -> Result<CashPaymentPage, PayerError> {
        Self::check_payee_access(caller, payee_id)?;
        let limit = paging::limit(query.limit)?;
        let before = paging::read_cursor(query.cursor.as_deref(), paging::time_and_id)?;
        if self.store.payee(payee_id).await?.is_none() {
            return Err(PayerError::PayeeNotFound(payee_id));
        }
        let rows = self
            .store
            .list_cash_payments(payee_id, before, limit)
            .await?;
        let next_cursor = paging::next_cursor(&rows, limit, |row| {
            paging::time_and_id_key(row.occurred_at, row.id)
        });
        Ok(CashPaymentPage {
            data: rows.into_iter().map(Into::into).collect(),
            next_cursor,
        })
    }
}
