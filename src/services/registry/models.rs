//! Request and response shapes of the registry endpoints. Dates are `YYYY-MM-DD` (requests
//! also take `DD/MM/YYYY`, as commune spreadsheets write them).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::clock::to_datetime;
use crate::domain::registry::{Consent, ConsentState, Hamlet, Household, Resident};
use crate::services::present;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHamletRequest {
    /// 1 to 32 letters, digits, `-`, `_` or `.`; never changes.
    #[schema(example = "KC")]
    pub code: String,
    #[schema(example = "Khe Cốc")]
    pub name: String,
    /// The hamlet's first day.
    #[schema(example = "2020-01-01", format = Date)]
    pub valid_from: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HamletPatchRequest {
    #[schema(example = "Khe Cốc Thượng")]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HamletMergeRequest {
    /// The hamlet that takes this one's place.
    #[schema(example = "KC")]
    pub into: String,
    /// The first day the hamlet is part of `into`; this hamlet's `valid_to` becomes the day
    /// before.
    #[schema(example = "2026-07-01", format = Date)]
    pub on: String,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HamletQuery {
    /// Only the hamlets that existed on this day (`YYYY-MM-DD`).
    #[param(format = Date)]
    pub on: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HamletView {
    #[schema(example = "KC")]
    pub code: String,
    pub name: String,
    pub valid_from: NaiveDate,
    /// The last day the hamlet existed; null while it exists.
    pub valid_to: Option<NaiveDate>,
    /// The hamlet it was merged into.
    pub merged_into: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Hamlet> for HamletView {
    fn from(hamlet: &Hamlet) -> Self {
        Self {
            code: hamlet.code.as_str().to_owned(),
            name: hamlet.name.as_str().to_owned(),
            valid_from: hamlet.valid_from,
            valid_to: hamlet.valid_to,
            merged_into: hamlet.merged_into.as_ref().map(|c| c.as_str().to_owned()),
            created_at: to_datetime(hamlet.created_at),
            updated_at: to_datetime(hamlet.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HamletList {
    pub data: Vec<HamletView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHouseholdRequest {
    #[schema(example = "HH-0042")]
    pub code: String,
    /// An open hamlet.
    #[schema(example = "KC")]
    pub hamlet_code: String,
    #[schema(example = "Thôn Khe Cốc, nhà số 12")]
    pub address: String,
    #[schema(example = "2015-03-01", format = Date)]
    pub moved_in_on: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdPatchRequest {
    pub address: Option<String>,
    /// Moves the household to another open hamlet.
    pub hamlet_code: Option<String>,
    /// A resident of this household; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>, nullable)]
    pub head_resident_id: Option<Option<Uuid>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, format = Date)]
    pub moved_in_on: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, format = Date)]
    pub moved_out_on: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HouseholdQuery {
    /// Exact hamlet code
    pub hamlet: Option<String>,
    /// Code prefix, compared exactly (`HH-00` finds `HH-0042`)
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HouseholdView {
    pub id: Uuid,
    #[schema(example = "HH-0042")]
    pub code: String,
    pub hamlet_code: String,
    pub address: String,
    pub head_resident_id: Option<Uuid>,
    pub moved_in_on: Option<NaiveDate>,
    pub moved_out_on: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Household> for HouseholdView {
    fn from(household: &Household) -> Self {
        let record = &household.record;
        Self {
            id: household.id,
            code: record.code.as_str().to_owned(),
            hamlet_code: record.hamlet_code.as_str().to_owned(),
            address: record.address.clone(),
            head_resident_id: record.head_resident_id,
            moved_in_on: record.moved_in_on,
            moved_out_on: record.moved_out_on,
            created_at: to_datetime(household.created_at),
            updated_at: to_datetime(household.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HouseholdPage {
    pub data: Vec<HouseholdView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResidentRequest {
    #[schema(example = "CD-000123")]
    pub code: String,
    pub household_id: Uuid,
    #[schema(example = "Nguyễn Văn An")]
    pub full_name: String,
    #[schema(example = 1985)]
    pub birth_year: i32,
    #[schema(example = "1985-04-30", format = Date)]
    pub birth_date: Option<String>,
    /// female, male, other or unknown (also Nữ, Nam, Khác); unknown when absent.
    #[schema(example = "male", pattern = "^(female|male|other|unknown)$")]
    pub gender: Option<String>,
    #[schema(example = "0912345678")]
    pub phone: Option<String>,
    /// living (default), moved_away or deceased; the last two need `left_on`.
    #[schema(example = "living", pattern = "^(living|moved_away|deceased)$")]
    pub status: Option<String>,
    #[schema(format = Date)]
    pub living_since: Option<String>,
    #[schema(format = Date)]
    pub left_on: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentPatchRequest {
    /// Moves the resident to another household.
    pub household_id: Option<Uuid>,
    pub full_name: Option<String>,
    pub birth_year: Option<i32>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, format = Date)]
    pub birth_date: Option<Option<String>>,
    #[schema(pattern = "^(female|male|other|unknown)$")]
    pub gender: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub phone: Option<Option<String>>,
    /// moved_away and deceased need `left_on` (here or already recorded); living clears it.
    #[schema(pattern = "^(living|moved_away|deceased)$")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, format = Date)]
    pub living_since: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, format = Date)]
    pub left_on: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResidentQuery {
    /// Part of the name, with or without diacritics, any case (`nguyen van an` finds
    /// `Nguyễn Văn An`)
    pub q: Option<String>,
    pub household_id: Option<Uuid>,
    /// Exact hamlet code of the resident's household
    pub hamlet: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500, default 50
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentStateView {
    pub given: bool,
    pub effective_on: NaiveDate,
}

impl From<&ConsentState> for ConsentStateView {
    fn from(state: &ConsentState) -> Self {
        Self {
            given: state.given,
            effective_on: state.effective_on,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResidentView {
    pub id: Uuid,
    #[schema(example = "CD-000123")]
    pub code: String,
    pub household_id: Uuid,
    #[schema(example = "Nguyễn Văn An")]
    pub full_name: String,
    pub birth_year: i32,
    pub birth_date: Option<NaiveDate>,
    /// female, male, other or unknown
    pub gender: String,
    pub phone: Option<String>,
    /// living, moved_away or deceased
    pub status: String,
    pub living_since: Option<NaiveDate>,
    /// The day the resident moved away or died; null while living.
    pub left_on: Option<NaiveDate>,
    /// The latest consent recorded (by effective day); null when none was.
    pub consent: Option<ConsentStateView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Resident> for ResidentView {
    fn from(resident: &Resident) -> Self {
        let record = &resident.record;
        Self {
            id: resident.id,
            code: record.code.as_str().to_owned(),
            household_id: record.household_id,
            full_name: record.full_name.as_str().to_owned(),
            birth_year: record.birth_year,
            birth_date: record.birth_date,
            gender: record.gender.as_str().to_owned(),
            phone: record.phone.clone(),
            status: record.status.as_str().to_owned(),
            living_since: record.living_since,
            left_on: record.left_on,
            consent: resident.consent.as_ref().map(ConsentStateView::from),
            created_at: to_datetime(resident.created_at),
            updated_at: to_datetime(resident.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResidentPage {
    pub data: Vec<ResidentView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConsentRequest {
    pub given: bool,
    #[schema(example = "2026-11-01", format = Date)]
    pub effective_on: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    pub given: bool,
    pub effective_on: NaiveDate,
    /// Username of who recorded it.
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

impl From<&Consent> for ConsentView {
    fn from(consent: &Consent) -> Self {
        Self {
            given: consent.state.given,
            effective_on: consent.state.effective_on,
            recorded_by: consent.recorded_by.clone(),
            recorded_at: to_datetime(consent.recorded_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentList {
    /// Oldest effective day first.
    pub data: Vec<ConsentView>,
}
