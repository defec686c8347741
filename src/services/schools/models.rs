//! Requests and answers of the school routes. Amounts are whole đồng (integers).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewYearRequest {
    /// e.g. "2026-2027"
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct YearView {
    pub id: Uuid,
    pub school_id: Uuid,
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct YearList {
    pub data: Vec<YearView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewClassRequest {
    pub year_id: Uuid,
    /// 1 to 12
    pub grade: i32,
    /// e.g. "3A"
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClassView {
    pub id: Uuid,
    pub year_id: Uuid,
    pub grade: i32,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClassList {
    pub data: Vec<ClassView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewPupilRequest {
    /// The school's code of the pupil: 1 to 20 letters, digits, `-` or `_`.
    pub code: String,
    pub full_name: String,
    pub class_id: Uuid,
    /// The day the pupil joins the class.
    pub joined_on: NaiveDate,
    /// The pupil's household in the commune registry, when there is one.
    pub household_id: Option<Uuid>,
    /// Otherwise (or as well) the guardian's name and phone.
    pub guardian_name: Option<String>,
    pub guardian_phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MembershipView {
    pub class_id: Uuid,
    pub class_name: String,
    pub from_on: NaiveDate,
    /// The day the pupil left the class (exclusive); none while the pupil is in it.
    pub until_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PupilView {
    pub id: Uuid,
    pub school_id: Uuid,
    pub code: String,
    pub full_name: String,
    pub household_id: Option<Uuid>,
    pub guardian_name: Option<String>,
    pub guardian_phone: Option<String>,
    /// Every class the pupil has been in, oldest first.
    pub classes: Vec<MembershipView>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PupilQuery {
    /// Only pupils who are or were in this class (its whole history: moved and left pupils too)
    pub class_id: Option<Uuid>,
    /// Code prefix, compared exactly (`HS-01` finds `HS-0123`)
    #[param(min_length = 1, max_length = 20)]
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PupilPage {
    /// By pupil code.
    pub data: Vec<PupilView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MovePupilRequest {
    /// The new class; none when the pupil leaves the school.
    pub class_id: Option<Uuid>,
    /// The first day in the new class, or the day the pupil left.
    pub on: NaiveDate,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct GradeAmount {
    pub grade: i32,
    pub amount: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ClassAmount {
    pub class_id: Uuid,
    pub amount: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewFeeItemRequest {
    pub year_id: Uuid,
    pub name: String,
    /// `school`, `parents_association` or `pass_through`
    pub fund: String,
    pub mandatory: bool,
    /// `month`, `term`, `year` or `school_day`
    pub unit: String,
    /// The amount per unit for each grade charged.
    #[serde(default)]
    pub grade_amounts: Vec<GradeAmount>,
    /// Per-class amounts, which win over the grade's.
    #[serde(default)]
    pub class_amounts: Vec<ClassAmount>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeeItemView {
    pub id: Uuid,
    pub year_id: Uuid,
    pub name: String,
    pub fund: String,
    pub mandatory: bool,
    pub unit: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeeItemList {
    pub data: Vec<FeeItemView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EnrolRequest {
    pub pupil_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnrolView {
    pub fee_item_id: Uuid,
    pub enrolled: usize,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewExemptionRequest {
    pub pupil_id: Uuid,
    pub fee_item_id: Uuid,
    /// 1 to 100; exactly one of percent and amount.
    pub percent: Option<i32>,
    pub amount: Option<i64>,
    /// The policy it applies, e.g. "hộ nghèo", "con thương binh".
    pub category: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExemptionView {
    pub pupil_id: Uuid,
    pub fee_item_id: Uuid,
    pub fee_item_name: String,
    pub percent: Option<i32>,
    pub amount: Option<i64>,
    pub category: String,
    pub note: Option<String>,
    pub approved_by: String,
    pub approved_at: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewRunRequest {
    pub year_id: Uuid,
    /// e.g. "Tháng 9/2026"
    pub name: String,
    pub fee_item_ids: Vec<Uuid>,
    /// Pupils in a class on this day are charged; the oldest due is paid first.
    pub due_on: NaiveDate,
    /// Needed when an item is charged per school day.
    pub school_days: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunView {
    pub id: Uuid,
    pub year_id: Uuid,
    pub name: String,
    pub due_on: NaiveDate,
    pub school_days: Option<i32>,
    /// When it was posted to the ledger; none for a run not posted yet.
    pub posted_at: Option<String>,
    /// When the whole run was reversed; none while it stands.
    pub reversed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunList {
    pub data: Vec<RunView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChargeView {
    pub pupil_id: Uuid,
    pub class_id: Uuid,
    pub fee_item_id: Uuid,
    pub fund: String,
    pub mandatory: bool,
    pub gross: i64,
    pub exemption: i64,
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunPreview {
    pub run: RunView,
    pub pupils: usize,
    pub total: i64,
    pub charges: Vec<ChargeView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PupilIntentView {
    pub pupil_id: Uuid,
    pub intent_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PostedRun {
    pub run: RunView,
    pub charges: usize,
    pub total: i64,
    /// One VietQR intent per pupil who owes something after credit.
    pub intents: Vec<PupilIntentView>,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
pub struct StatusQuery {
    /// Only this class.
    pub class_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PupilStatus {
    pub pupil_id: Uuid,
    pub code: String,
    pub full_name: String,
    pub class_id: Uuid,
    pub charged: i64,
    pub paid: i64,
    pub owing: i64,
    /// `paid`, `partly_paid`, `unpaid`, or `reversed` (the pupil's charges in the run were
    /// reversed: nothing is owed, what was paid became credit)
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunStatus {
    pub run_id: Uuid,
    pub class_id: Option<Uuid>,
    pub pupils: usize,
    pub paid: usize,
    pub partly_paid: usize,
    pub unpaid: usize,
    /// Pupils whose charges in the run were reversed.
    pub reversed: usize,
    /// `posted`, `reversed` (the whole run), or `not_posted`
    pub run_state: String,
    pub charged_total: i64,
    pub paid_total: i64,
    pub owing_total: i64,
    /// paid_total of charged_total, one decimal.
    pub paid_percent: String,
    pub data: Vec<PupilStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementCharge {
    pub run_id: Uuid,
    pub run_name: String,
    pub due_on: NaiveDate,
    pub fee_item_id: Uuid,
    pub fee_item_name: String,
    pub fund: String,
    pub gross: i64,
    pub exemption: i64,
    /// What the charge owes now: gross - exemption plus its adjustments; 0 once reversed.
    pub amount: i64,
    pub paid: i64,
    /// Reversed: the charge owes nothing, what had been paid on it went to the credit.
    pub reversed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementPayment {
    pub id: Uuid,
    /// `online` or `cash`
    pub method: String,
    pub amount: i64,
    pub at: String,
    pub receipt_id: Option<Uuid>,
    pub cancelled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PupilStatement {
    pub pupil: PupilView,
    pub charges: Vec<StatementCharge>,
    pub payments: Vec<StatementPayment>,
    pub exemptions: Vec<ExemptionView>,
    /// Reversals, adjustments and refunds, each its own line with its reason.
    pub corrections: Vec<super::corrections::CorrectionView>,
    pub charged_total: i64,
    pub paid_total: i64,
    /// The pupil's receivable in the ledger: what is owed; negative is credit.
    pub balance: i64,
    /// Money received and not yet used by a charge.
    pub credit: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CashRequest {
    pub pupil_id: Uuid,
    pub amount: i64,
    /// Who handed the cash over, printed on the receipt.
    pub payer_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceiptView {
    pub id: Uuid,
    pub school_id: Uuid,
    pub year_id: Uuid,
    /// Gap-free per school and school year, from 1.
    pub number: i64,
    pub pupil_id: Uuid,
    pub payer_name: String,
    pub amount: i64,
    pub payment_id: Uuid,
    pub created_by: String,
    pub created_at: String,
    pub cancelled: bool,
    pub cancelled_at: Option<String>,
    pub cancel_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CancelReceiptRequest {
    /// Why (1 to 500 characters), kept with the receipt.
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FundBalance {
    /// `school`, `parents_association` or `pass_through`
    pub fund: String,
    pub account_code: String,
    pub balance: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SchoolBalances {
    pub funds: Vec<FundBalance>,
    /// Charges posted and not yet paid.
    pub uncollected: i64,
    pub cash_on_hand: i64,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewParentLinkRequest {
    pub pupil_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParentLinkView {
    pub id: Uuid,
    pub pupil_id: Uuid,
    /// Shown once: only its hash is kept. The parent's read-only page is /v1/parent-links/{token}.
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParentOpenCharge {
    pub run_name: String,
    pub fee_item_name: String,
    pub due_on: NaiveDate,
    pub owing: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParentView {
    pub school_name: String,
    pub pupil_name: String,
    pub open_charges: Vec<ParentOpenCharge>,
    pub owing_total: i64,
    pub credit: i64,
    /// The pupil's household's newest QR still open for payment, which pays all its
    /// children's open charges at every school in one transfer; null when there is none.
    pub household_payment: Option<HouseholdQrView>,
}

/// A household QR as a parent's page shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HouseholdQrView {
    pub reference: String,
    /// What the QR asks for, in đồng.
    pub amount: i64,
    /// What is still to pay on it (less when it was paid in part).
    pub remaining: i64,
    /// The VietQR payload (EMVCo text) to draw as a QR code.
    pub qr_payload: String,
}

/// A household's QR for all its children's open charges at every school.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HouseholdPaymentView {
    pub intent_id: Uuid,
    pub household_id: Uuid,
    /// The school payee the intent names: the school whose charge the split rule pays first.
    pub payee_id: Uuid,
    pub reference: String,
    /// The sum of the open charges below, in đồng.
    pub amount: i64,
    pub qr_payload: String,
    pub expires_at: String,
    /// What each pupil owes, by school code then pupil code.
    pub lines: Vec<HouseholdPupilOwing>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HouseholdPupilOwing {
    pub school_id: Uuid,
    pub pupil_id: Uuid,
    pub pupil_code: String,
    pub full_name: String,
    pub owing: i64,
}

#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RosterQuery {
    /// The school year whose classes the file's `class` column names.
    pub year_id: Uuid,
    /// true (default): check the file and count what would change, write nothing; false:
    /// apply it, all or nothing
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RosterSummary {
    /// False for a dry run: nothing was written.
    pub applied: bool,
    pub rows: usize,
    pub pupils_created: usize,
    /// Pupils already known in another class: moved (their old class is kept in the history).
    pub pupils_moved: usize,
    pub unchanged: usize,
    /// Every bad line (at most 200); an import with any is not applied.
    pub errors: Vec<crate::services::registry::import::LineErrorView>,
}
