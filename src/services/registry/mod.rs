//! The commune's registry: hamlets, households, residents and their consent to statistics.
//!
//! Every write opens a unit of work, reads (and locks) the rows its rules need, asks the
//! domain, and writes; a refusal drops the unit, so nothing of the request is written.

mod error;
pub mod import;
pub mod models;

use std::sync::Arc;

use chrono::NaiveDate;
use uuid::Uuid;

pub use error::RegistryError;
use models::*;

use crate::clock::Clock;
use crate::domain::audit::AuditAction;
use crate::domain::registry::{
    self, birth_year, check_birth_date, check_head, check_household_dates, day_in_vietnam,
    parse_address, parse_date, parse_phone, residence, search_key, without_head, Code, Consent,
    ConsentState, FieldError, Gender, Hamlet, Household, HouseholdRecord, Name, ResidentRecord,
    ResidentStatus,
};
use crate::services::auth::Caller;
use crate::services::paging;
use crate::store::registry::{HouseholdFilter, ResidentFilter};
use crate::store::{Store, UnitOfWork};

#[derive(Clone)]
pub struct RegistryService {
    store: Arc<dyn Store>,
    clock: Clock,
}

/// An optional date field of a request.
fn date(field: &'static str, text: Option<&str>) -> Result<Option<NaiveDate>, FieldError> {
    text.map(|text| parse_date(field, text)).transpose()
}

/// A PATCH date field: absent keeps, `null` clears.
fn date_change(
    field: &'static str,
    change: Option<Option<String>>,
) -> Result<Option<Option<NaiveDate>>, FieldError> {
    change.map(|text| date(field, text.as_deref())).transpose()
}

impl RegistryService {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self { store, clock }
    }

    fn today(&self) -> NaiveDate {
        day_in_vietnam(self.clock.now())
    }

    pub async fn create_hamlet(
        &self,
        request: NewHamletRequest,
    ) -> Result<HamletView, RegistryError> {
        let now = self.clock.now_micros();
        let hamlet = Hamlet {
            code: Code::parse_hamlet("code", &request.code)?,
            name: Name::parse("name", &request.name)?,
            valid_from: parse_date("valid_from", &request.valid_from)?,
            valid_to: None,
            merged_into: None,
            created_at: now,
            updated_at: now,
        };
        let mut unit = self.store.begin().await?;
        if !unit.insert_hamlet(&hamlet).await? {
            return Err(RegistryError::HamletCodeTaken(
                hamlet.code.as_str().to_owned(),
            ));
        }
        unit.commit().await?;
        Ok(HamletView::from(&hamlet))
    }

    pub async fn hamlets(&self, query: HamletQuery) -> Result<HamletList, RegistryError> {
        let on = date("on", query.on.as_deref())?;
        let hamlets = self.store.hamlets(on).await?;
        Ok(HamletList {
            data: hamlets.iter().map(HamletView::from).collect(),
        })
    }

    pub async fn hamlet(&self, code: &str) -> Result<HamletView, RegistryError> {
        match self.store.hamlet(code).await? {
            Some(hamlet) => Ok(HamletView::from(&hamlet)),
            None => Err(RegistryError::HamletNotFound(code.to_owned())),
        }
    }

    /// Corrects a hamlet's name in place. A rename that should show in reports from a day on
    /// is a new hamlet and a merge.
    pub async fn rename_hamlet(
        &self,
        code: &str,
        request: HamletPatchRequest,
    ) -> Result<HamletView, RegistryError> {
        let name = Name::parse("name", &request.name)?;
        let mut unit = self.store.begin().await?;
        let mut hamlet = locked_hamlet(&mut unit, code).await?;
        hamlet.name = name;
        hamlet.updated_at = self.clock.now_micros();
        unit.update_hamlet(&hamlet).await?;
        unit.commit().await?;
        Ok(HamletView::from(&hamlet))
    }

    pub async fn merge_hamlet(
        &self,
        code: &str,
        request: HamletMergeRequest,
    ) -> Result<HamletView, RegistryError> {
        let on = parse_date("on", &request.on)?;
        let mut unit = self.store.begin().await?;
        // Both rows locked in code order, so two merges of the same pair cannot deadlock.
        let (hamlet, target) = if code <= request.into.as_str() {
            let hamlet = locked_hamlet(&mut unit, code).await?;
            (hamlet, locked_hamlet(&mut unit, &request.into).await?)
        } else {
            let target = locked_hamlet(&mut unit, &request.into).await?;
            (locked_hamlet(&mut unit, code).await?, target)
        };
        let mut merged = registry::merge(&hamlet, &target, on)?;
        merged.updated_at = self.clock.now_micros();
        unit.update_hamlet(&merged).await?;
        unit.commit().await?;
        Ok(HamletView::from(&merged))
    }

    /// The hamlet named by a household write, locked, refused when it has closed: new
    /// households belong in its successor.
    async fn open_hamlet(
        &self,
        unit: &mut UnitOfWork<'_>,
        code: &Code,
    ) -> Result<(), RegistryError> {
        let hamlet = locked_hamlet(unit, code.as_str()).await?;
        match hamlet.closed_before(self.today()) {
            Some(last_day) => Err(RegistryError::HamletClosed {
                code: code.as_str().to_owned(),
                last_day,
            }),
            None => Ok(()),
        }
    }

    pub async fn create_household(
        &self,
        request: NewHouseholdRequest,
    ) -> Result<HouseholdView, RegistryError> {
        let record = HouseholdRecord {
            code: Code::parse("code", &request.code)?,
            hamlet_code: Code::parse("hamlet_code", &request.hamlet_code)?,
            address: parse_address(&request.address)?,
            head_resident_id: None,
            moved_in_on: date("moved_in_on", request.moved_in_on.as_deref())?,
            moved_out_on: None,
        };
        let mut unit = self.store.begin().await?;
        self.open_hamlet(&mut unit, &record.hamlet_code).await?;
        let written = unit
            .upsert_household(&record, self.clock.new_id(), self.clock.now_micros())
            .await?;
        if !written.created {
            // Dropping the unit undoes the update the upsert made instead.
            return Err(RegistryError::HouseholdCodeTaken(
                record.code.as_str().to_owned(),
            ));
        }
        unit.commit().await?;
        self.household(written.id).await
    }

    pub async fn households(&self, query: HouseholdQuery) -> Result<HouseholdPage, RegistryError> {
        let limit = paging::limit(query.limit)?;
        let filter = HouseholdFilter {
            hamlet: query.hamlet,
            code_prefix: query.q,
            after: paging::read_id_cursor(query.cursor.as_deref())?,
            limit,
        };
        let households = self.store.households(&filter).await?;
        Ok(HouseholdPage {
            next_cursor: paging::next_cursor(&households, limit, |h| h.id.to_string()),
            data: households.iter().map(HouseholdView::from).collect(),
        })
    }

    pub async fn household(&self, id: Uuid) -> Result<HouseholdView, RegistryError> {
        match self.store.household(id).await? {
            Some(household) => Ok(HouseholdView::from(&household)),
            None => Err(RegistryError::HouseholdNotFound(id)),
        }
    }

    pub async fn update_household(
        &self,
        id: Uuid,
        request: HouseholdPatchRequest,
    ) -> Result<HouseholdView, RegistryError> {
        let address = request.address.as_deref().map(parse_address).transpose()?;
        let hamlet_code = request
            .hamlet_code
            .as_deref()
            .map(|code| Code::parse("hamlet_code", code))
            .transpose()?;
        let moved_in_on = date_change("moved_in_on", request.moved_in_on)?;
        let moved_out_on = date_change("moved_out_on", request.moved_out_on)?;
        let mut unit = self.store.begin().await?;
        let mut record = unit
            .lock_household(id)
            .await?
            .ok_or(RegistryError::HouseholdNotFound(id))?
            .record;
        if let Some(address) = address {
            record.address = address;
        }
        if let Some(hamlet_code) = hamlet_code.filter(|code| *code != record.hamlet_code) {
            self.open_hamlet(&mut unit, &hamlet_code).await?;
            record.hamlet_code = hamlet_code;
        }
        if let Some(head) = request.head_resident_id {
            if let Some(resident_id) = head {
                check_head(id, unit.household_of_resident(resident_id).await?)?;
            }
            record.head_resident_id = head;
        }
        if let Some(moved_in_on) = moved_in_on {
            record.moved_in_on = moved_in_on;
        }
        if let Some(moved_out_on) = moved_out_on {
            record.moved_out_on = moved_out_on;
        }
        check_household_dates(&record)?;
        unit.upsert_household(&record, id, self.clock.now_micros())
            .await?;
        unit.commit().await?;
        self.household(id).await
    }

    pub async fn create_resident(
        &self,
        request: NewResidentRequest,
    ) -> Result<ResidentView, RegistryError> {
        let status = request
            .status
            .as_deref()
            .map(ResidentStatus::parse)
            .transpose()?;
        let left_on = date("left_on", request.left_on.as_deref())?;
        let (status, left_on) = residence((ResidentStatus::Living, None), status, Some(left_on))?;
        let record = ResidentRecord {
            code: Code::parse("code", &request.code)?,
            household_id: request.household_id,
            full_name: Name::parse("full_name", &request.full_name)?,
            birth_year: birth_year(request.birth_year, self.today())?,
            birth_date: date("birth_date", request.birth_date.as_deref())?,
            gender: Gender::parse(request.gender.as_deref().unwrap_or_default())?,
            phone: request.phone.as_deref().map(parse_phone).transpose()?,
            status,
            living_since: date("living_since", request.living_since.as_deref())?,
            left_on,
        };
        check_birth_date(&record)?;
        let mut unit = self.store.begin().await?;
        existing_household(&mut unit, record.household_id).await?;
        let written = unit
            .upsert_resident(&record, self.clock.new_id(), self.clock.now_micros())
            .await?;
        if !written.created {
            // Dropping the unit undoes the update the upsert made instead.
            return Err(RegistryError::ResidentCodeTaken(
                record.code.as_str().to_owned(),
            ));
        }
        unit.commit().await?;
        self.resident(written.id).await
    }

    pub async fn residents(&self, query: ResidentQuery) -> Result<ResidentPage, RegistryError> {
        let limit = paging::limit(query.limit)?;
        let filter = ResidentFilter {
            name_contains: query
                .q
                .as_deref()
                .map(search_key)
                .filter(|key| !key.is_empty()),
            household_id: query.household_id,
            hamlet: query.hamlet,
            after: paging::read_id_cursor(query.cursor.as_deref())?,
            limit,
        };
        let residents = self.store.residents(&filter).await?;
        Ok(ResidentPage {
            next_cursor: paging::next_cursor(&residents, limit, |r| r.id.to_string()),
            data: residents.iter().map(ResidentView::from).collect(),
        })
    }

    pub async fn resident(&self, id: Uuid) -> Result<ResidentView, RegistryError> {
        match self.store.resident(id).await? {
            Some(resident) => Ok(ResidentView::from(&resident)),
            None => Err(RegistryError::ResidentNotFound(id)),
        }
    }

    pub async fn update_resident(
        &self,
        id: Uuid,
        request: ResidentPatchRequest,
    ) -> Result<ResidentView, RegistryError> {
        let full_name = request
            .full_name
            .as_deref()
            .map(|name| Name::parse("full_name", name))
            .transpose()?;
        let year = request
            .birth_year
            .map(|year| birth_year(year, self.today()))
            .transpose()?;
        let birth_date = date_change("birth_date", request.birth_date)?;
        let gender = request.gender.as_deref().map(Gender::parse).transpose()?;
        let phone = request
            .phone
            .map(|phone| phone.as_deref().map(parse_phone).transpose())
            .transpose()?;
        let status = request
            .status
            .as_deref()
            .map(ResidentStatus::parse)
            .transpose()?;
        let living_since = date_change("living_since", request.living_since)?;
        let left_on = date_change("left_on", request.left_on)?;

        let mut unit = self.store.begin().await?;
        let mut record = unit
            .lock_resident(id)
            .await?
            .ok_or(RegistryError::ResidentNotFound(id))?
            .record;
        let now = self.clock.now_micros();
        if let Some(household_id) = request.household_id.filter(|h| *h != record.household_id) {
            existing_household(&mut unit, household_id).await?;
            let left = existing_household(&mut unit, record.household_id).await?;
            if let Some(headless) = without_head(&left.record, id) {
                unit.upsert_household(&headless, left.id, now).await?;
            }
            record.household_id = household_id;
        }
        (record.status, record.left_on) =
            residence((record.status, record.left_on), status, left_on)?;
        record.full_name = full_name.unwrap_or(record.full_name);
        record.birth_year = year.unwrap_or(record.birth_year);
        record.birth_date = birth_date.unwrap_or(record.birth_date);
        record.gender = gender.unwrap_or(record.gender);
        record.phone = phone.unwrap_or(record.phone);
        record.living_since = living_since.unwrap_or(record.living_since);
        check_birth_date(&record)?;
        unit.upsert_resident(&record, id, now).await?;
        unit.commit().await?;
        self.resident(id).await
    }

    /// Appends a consent decision, recorded as the caller's.
    pub async fn record_consent(
        &self,
        caller: &Caller,
        resident_id: Uuid,
        request: NewConsentRequest,
    ) -> Result<ConsentView, RegistryError> {
        let consent = Consent {
            state: ConsentState {
                given: request.given,
                effective_on: parse_date("effective_on", &request.effective_on)?,
            },
            recorded_by: caller.username.clone(),
            recorded_at: self.clock.now_micros(),
        };
        let mut unit = self.store.begin().await?;
        if unit.lock_resident(resident_id).await?.is_none() {
            return Err(RegistryError::ResidentNotFound(resident_id));
        }
        unit.append_consent(self.clock.new_id(), resident_id, &consent)
            .await?;
        let after = serde_json::json!({
            "given": consent.state.given,
            "effective_on": consent.state.effective_on.to_string(),
        });
        unit.append_audit(&crate::services::audit_record(
            &self.clock,
            caller,
            AuditAction::ConsentRecord,
            resident_id,
            None,
            Some(after),
        ))
        .await?;
        unit.commit().await?;
        Ok(ConsentView::from(&consent))
    }

    pub async fn consents(&self, resident_id: Uuid) -> Result<ConsentList, RegistryError> {
        self.resident(resident_id).await?;
        let consents = self.store.consents(resident_id).await?;
        Ok(ConsentList {
            data: consents.iter().map(ConsentView::from).collect(),
        })
    }
}

async fn locked_hamlet(unit: &mut UnitOfWork<'_>, code: &str) -> Result<Hamlet, RegistryError> {
    unit.lock_hamlet(code)
        .await?
        .ok_or_else(|| RegistryError::HamletNotFound(code.to_owned()))
}

async fn existing_household(
    unit: &mut UnitOfWork<'_>,
    id: Uuid,
) -> Result<Household, RegistryError> {
    unit.lock_household(id)
        .await?
        .ok_or(RegistryError::HouseholdNotFound(id))
}
