//! Request and response shapes of the payee, QR and payment-intent endpoints.

use crate::services::payers::PayerRef;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::clock::to_datetime;
use crate::domain::banks::{find_bank, Bank};
use crate::domain::intent::PaymentIntent;
use crate::domain::payee::Payee;
use crate::domain::vietqr::{Initiation, QrWarning, ReadQr, Service, TlvField};
use crate::services::ledger::models::AmountText;
use crate::services::present;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BankView {
    /// 6-digit NAPAS BIN, as VietQR codes carry it.
    #[schema(example = "970436")]
    pub bin: String,
    #[schema(example = "VCB")]
    pub code: String,
    #[schema(example = "Vietcombank")]
    pub short_name: String,
    #[schema(example = "Ngân hàng TMCP Ngoại Thương Việt Nam")]
    pub name: String,
    pub swift_code: Option<String>,
    /// Marked in the NAPAS list as receiving VietQR transfers.
    pub transfer_supported: bool,
    /// Marked in the NAPAS list as answering account-holder look-ups.
    pub lookup_supported: bool,
}

impl From<&Bank> for BankView {
    fn from(bank: &Bank) -> Self {
        Self {
            bin: bank.bin.clone(),
            code: bank.code.clone(),
            short_name: bank.short_name.clone(),
            name: bank.name.clone(),
            swift_code: bank.swift_code.clone(),
            transfer_supported: bank.transfer_supported,
            lookup_supported: bank.lookup_supported,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BankList {
    pub data: Vec<BankView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionAccountRequest {
    /// A BIN from `GET /v1/banks`.
    #[schema(example = "970436")]
    pub bank_bin: String,
    /// 6 to 19 digits.
    #[schema(example = "0123456789")]
    pub account_number: String,
    /// As the bank registered it; stored folded to uppercase ASCII ("NGUYEN THI HONG").
    #[schema(example = "Nguyễn Thị Hồng")]
    pub holder_name: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPayeeRequest {
    /// vendor, school or cooperative
    #[schema(example = "vendor", pattern = "^(vendor|school|cooperative)$")]
    pub kind: String,
    #[schema(example = "Bà Hoa, quầy chè")]
    pub name: String,
    /// 2 to 16 letters or digits, unique; generated (e.g. `V7KQ3MX`) when absent. Printed on
    /// the sticker and carried by the static QR, so it cannot be changed later.
    #[schema(example = "V042")]
    pub code: Option<String>,
    #[schema(example = "Khe Cốc")]
    pub hamlet: Option<String>,
    #[schema(example = "Sạp 12")]
    pub stall: Option<String>,
    #[schema(example = "0912345678")]
    pub phone: Option<String>,
    #[schema(example = "chè")]
    pub category: Option<String>,
    pub collection_account: CollectionAccountRequest,
    /// The resident who runs the payee (the vendor at the stall); must exist (else 422
    /// OWNER_RESIDENT_NOT_FOUND).
    pub owner_resident_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayeePatchRequest {
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub hamlet: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub stall: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub category: Option<Option<String>>,
    /// An inactive payee keeps its history but gets no new QR codes or payment intents;
    /// deactivating one cancels its pending intents.
    pub active: Option<bool>,
    /// Moves the payee to another bank account; intents already issued keep theirs.
    pub collection_account: Option<CollectionAccountRequest>,
    /// The resident who runs the payee; `null` clears it. Must exist (else 422
    /// OWNER_RESIDENT_NOT_FOUND).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>, nullable)]
    pub owner_resident_id: Option<Option<Uuid>>,
}

/// The bank account a payee collects into (the bank feed's `CollectionAccountView` is another
/// schema: a monitored account with its payees and feed).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = PayeeCollectionAccount)]
pub struct CollectionAccountView {
    pub id: Uuid,
    pub bank_bin: String,
    /// Absent only if the BIN has left the bundled bank list since.
    pub bank_short_name: Option<String>,
    pub bank_name: Option<String>,
    pub account_number: String,
    #[schema(example = "NGUYEN THI HONG")]
    pub holder_name: String,
    /// Its asset account in the ledger, `bank:<bin>:<account_number>`.
    pub ledger_account_id: Uuid,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PayeeView {
    pub id: Uuid,
    #[schema(example = "V042")]
    pub code: String,
    pub kind: String,
    pub name: String,
    pub hamlet: Option<String>,
    pub stall: Option<String>,
    pub phone: Option<String>,
    pub category: Option<String>,
    pub active: bool,
    /// Its liability account in the ledger, `payee:<code>`.
    pub ledger_account_id: Uuid,
    #[schema(example = "payee:V042")]
    pub ledger_account_code: String,
    pub collection_account: CollectionAccountView,
    /// The static VietQR payload (point of initiation 11, purpose = the payee code).
    pub static_qr_payload: String,
    #[schema(example = "/v1/payees/0190…/qr.svg")]
    pub qr_svg_url: String,
    pub qr_png_url: String,
    pub sticker_url: String,
    /// The resident who runs the payee, when recorded.
    pub owner_resident_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PayeeView {
    pub fn new(payee: &Payee, static_qr_payload: String) -> Self {
        let collection = &payee.collection_account;
        let bank = find_bank(&collection.bank_bin);
        let base = format!("/v1/payees/{}", payee.id);
        Self {
            id: payee.id,
            code: payee.code.clone(),
            kind: payee.kind.as_str().to_owned(),
            name: payee.details.name.clone(),
            hamlet: payee.details.hamlet.clone(),
            stall: payee.details.stall.clone(),
            phone: payee.details.phone.clone(),
            category: payee.details.category.clone(),
            active: payee.active,
            ledger_account_id: payee.ledger_account_id,
            ledger_account_code: format!("payee:{}", payee.code),
            collection_account: CollectionAccountView {
                id: collection.id,
                bank_bin: collection.bank_bin.clone(),
                bank_short_name: bank.map(|b| b.short_name.clone()),
                bank_name: bank.map(|b| b.name.clone()),
                account_number: collection.account_number.clone(),
                holder_name: collection.holder_name.clone(),
                ledger_account_id: collection.ledger_account_id,
            },
            static_qr_payload,
            qr_svg_url: format!("{base}/qr.svg"),
            qr_png_url: format!("{base}/qr.png"),
            sticker_url: format!("{base}/sticker.svg"),
            owner_resident_id: payee.owner_resident_id,
            created_at: to_datetime(payee.created_at),
            updated_at: to_datetime(payee.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PayeePage {
    pub data: Vec<PayeeView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayeeQuery {
    /// vendor, school or cooperative
    #[param(pattern = "^(vendor|school|cooperative)$")]
    pub kind: Option<String>,
    /// Exact hamlet name, e.g. `Khe Cốc`
    pub hamlet: Option<String>,
    /// Exact category
    pub category: Option<String>,
    pub active: Option<bool>,
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QrParseRequest {
    /// The text a QR scanner read.
    #[schema(
        example = "00020101021238560010A0000007270126000697041501121133666688880208QRIBFTTA53037045405790005802VN62220818Ung Ho Quy Vac Xin63043ACF"
    )]
    pub payload: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TlvFieldView {
    #[schema(example = "59")]
    pub tag: String,
    pub value: String,
}

impl From<&TlvField> for TlvFieldView {
    fn from(field: &TlvField) -> Self {
        Self {
            tag: format!("{:02}", field.tag),
            value: field.value.clone(),
        }
    }
}

/// Something unusual that EMVCo permits and the code was read despite; our own codes never do it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QrWarningView {
    /// `QR_PURPOSE_UNUSUAL_CHARACTERS`, `QR_PURPOSE_LONG`, `QR_AMOUNT_ZERO_FRACTION` or
    /// `QR_LENGTHS_COUNTED_IN_BYTES`.
    #[schema(example = "QR_AMOUNT_ZERO_FRACTION")]
    pub code: String,
    #[schema(
        example = "the amount (tag 54) \"10000.00\" has a zero fraction; VND has no minor unit, so it was read as whole đồng"
    )]
    pub message: String,
}

impl From<&QrWarning> for QrWarningView {
    fn from(warning: &QrWarning) -> Self {
        Self {
            code: warning.code().to_owned(),
            message: warning.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QrParseView {
    /// `static` (tag 01 = 11) or `dynamic` (12).
    pub initiation: String,
    #[schema(example = "970415")]
    pub bin: String,
    /// The bank of the bundled NAPAS list with that BIN; null when it is not listed.
    pub bank: Option<BankView>,
    #[schema(example = "113366668888")]
    pub account: String,
    /// `QRIBFTTA` (account) or `QRIBFTTC` (card); null on NAPAS QR Push merchant codes.
    pub service: Option<String>,
    /// `account` or `card`, when `service` is set.
    pub service_kind: Option<String>,
    /// Đồng, when the code fixes the amount.
    #[schema(example = "79000")]
    pub amount: Option<String>,
    pub currency: String,
    #[schema(example = "Ung Ho Quy Vac Xin")]
    pub purpose: Option<String>,
    /// Sub-fields of template 62 other than the purpose (e.g. 05 reference label).
    pub additional_data: Vec<TlvFieldView>,
    /// Top-level fields outside the NAPAS transfer profile (e.g. 52 MCC, 59 merchant name).
    pub other_fields: Vec<TlvFieldView>,
    /// What was unusual but readable (EMVCo permits it, our own codes never do it); always
    /// present, empty for a clean code.
    pub warnings: Vec<QrWarningView>,
}

impl From<&ReadQr> for QrParseView {
    fn from(read: &ReadQr) -> Self {
        let qr = &read.qr;
        Self {
            initiation: match qr.initiation() {
                Initiation::Static => "static",
                Initiation::Dynamic => "dynamic",
            }
            .to_owned(),
            bin: qr.bin().to_owned(),
            bank: find_bank(qr.bin()).map(BankView::from),
            account: qr.account().to_owned(),
            service: qr.service().map(|s| s.code().to_owned()),
            service_kind: qr.service().map(|s| {
                match s {
                    Service::Account => "account",
                    Service::Card => "card",
                }
                .to_owned()
            }),
            amount: qr.amount().map(|a| a.to_string()),
            currency: "VND".to_owned(),
            purpose: qr.purpose().map(str::to_owned),
            additional_data: qr.other_additional_data().iter().map(Into::into).collect(),
            other_fields: qr.other_fields().iter().map(Into::into).collect(),
            warnings: read.warnings.iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIntentRequest {
    pub payee_id: Uuid,
    /// Whole đồng, 1 to 13 digits ("50000"; a JSON integer is accepted).
    pub amount: AmountText,
    /// Shown to the vendor and payer; 1 to 200 characters. Not put in the QR: the QR's purpose
    /// is the reference, so the bank memo names this intent.
    #[schema(example = "Chè Thái Nguyên 1kg")]
    pub description: Option<String>,
    /// 60 to 7 776 000 (90 days); default 900.
    #[schema(minimum = 60, maximum = 7_776_000)]
    pub expires_in_seconds: Option<u32>,
    /// Who pays it (a pupil's household, a resident): exactly one of resident_id and
    /// household_id, which must exist (else 422 PAYER_NOT_FOUND).
    pub payer: Option<PayerRef>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntentView {
    pub id: Uuid,
    pub payee_id: Uuid,
    /// 8 characters, the purpose text of the QR and what a payer reads out if asked.
    #[schema(example = "8K2H9QX4")]
    pub reference: String,
    #[schema(example = "150000")]
    pub amount: String,
    pub currency: String,
    pub description: Option<String>,
    /// pending, paid, partially_paid, expired or cancelled: as of the moment of the answer.
    pub status: String,
    /// The dynamic VietQR payload (point of initiation 12, amount, purpose = reference).
    pub qr_payload: String,
    pub qr_svg_url: String,
    pub qr_png_url: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Đồng received so far, from matched bank transfers.
    #[schema(example = "0")]
    pub paid_amount: String,
    /// What is still to pay (never below zero; an overpayment's excess waits in suspense).
    #[schema(example = "150000")]
    pub remaining_amount: String,
    /// Who pays it, when the issuer named them.
    pub payer: Option<PayerRef>,
}

impl IntentView {
    pub fn new(intent: &PaymentIntent, now: i64) -> Self {
        let base = format!("/v1/payment-intents/{}", intent.id);
        Self {
            id: intent.id,
            payee_id: intent.payee_id,
            reference: intent.reference.clone(),
            amount: intent.amount.to_string(),
            currency: "VND".to_owned(),
            description: intent.description.clone(),
            status: intent.status(now).as_str().to_owned(),
            qr_payload: intent.qr_payload.clone(),
            qr_svg_url: format!("{base}/qr.svg"),
            qr_png_url: format!("{base}/qr.png"),
            expires_at: to_datetime(intent.expires_at),
            created_at: to_datetime(intent.created_at),
            cancelled_at: intent.cancelled_at.map(to_datetime),
            paid_amount: intent.paid_amount.to_string(),
            remaining_amount: (intent.amount - intent.paid_amount).max(0).to_string(),
            payer: PayerRef::from_columns(intent.payer_resident_id, intent.payer_household_id),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntentPage {
    /// Newest first.
    pub data: Vec<IntentView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IntentQuery {
    /// pending, paid, partially_paid, expired or cancelled (as of now)
    #[param(pattern = "^(pending|paid|partially_paid|expired|cancelled)$")]
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImageQuery {
    /// Width and height in pixels, 128 to 2048; default 512. The code is centred with at least
    /// the 4-module quiet zone around it.
    #[param(minimum = 128, maximum = 2048)]
    pub size: Option<u32>,
}
