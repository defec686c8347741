//! Registry and survey imports from the commune's spreadsheets: a dry run that reports every
//! bad line, then an all-or-nothing apply in one database transaction. Rows are upserted by
//! code, and a row equal to what is stored is left alone, so importing the same file again
//! changes nothing.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::RegistryService;
use crate::domain::registry::import::{parse_residents, parse_survey, LineError, ResidentRow};
use crate::domain::registry::Consent as ConsentRecord;
use crate::domain::registry::{
    day_in_vietnam, ConsentState, Hamlet, HouseholdRecord, ResidentRecord,
};
use crate::services::auth::Caller;
use crate::services::PublicError;
use crate::store::registry::SurveyAnswerRecord;
use crate::store::StoreError;

/// The first day of a hamlet an import creates; `POST /v1/hamlets` gives a real one.
const HAMLET_OF_RECORD_SINCE: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(1900, 1, 1)
{
    Some(day) => day,
    None => panic!("1900-01-01 is a date"),
};

/// Most line errors an answer lists; a file with more is wrong throughout.
const MAX_REPORTED_ERRORS: usize = 200;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineErrorView {
    /// The file's line as Excel numbers it; the header is line 1.
    pub line: usize,
    /// The column at fault (English name), or null for the whole line or file.
    pub field: Option<String>,
    pub problem: String,
}

/// What an import did, or on a dry run would do.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ImportSummary {
    /// False for a dry run: nothing was written.
    pub applied: bool,
    pub rows: usize,
    pub hamlets_created: usize,
    pub households_created: usize,
    pub households_updated: usize,
    pub residents_created: usize,
    pub residents_updated: usize,
    pub consents_recorded: usize,
    pub survey_answers_recorded: usize,
    /// Rows equal to what is already stored.
    pub unchanged: usize,
    /// Every bad line (at most 200); an import with any is not applied.
    pub errors: Vec<LineErrorView>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file has {count} bad lines; nothing was imported (first: {first})")]
    Invalid {
        count: usize,
        first: String,
        errors: Vec<LineErrorView>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PublicError for ImportError {
    fn status(&self) -> u16 {
        match self {
            ImportError::Invalid { .. } => 422,
            ImportError::Store(error) => error.status(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ImportError::Invalid { .. } => "IMPORT_INVALID",
            ImportError::Store(error) => error.code(),
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            ImportError::Invalid { errors, .. } => Some(json!({ "errors": errors })),
            ImportError::Store(_) => None,
        }
    }
}

pub(crate) fn views(errors: &[LineError]) -> Vec<LineErrorView> {
    errors
        .iter()
        .take(MAX_REPORTED_ERRORS)
        .map(|error| LineErrorView {
            line: error.line,
            field: error.field.map(str::to_owned),
            problem: error.problem.clone(),
        })
        .collect()
}

/// A dry run answers with the errors; an apply with errors is refused whole.
fn refuse_or_report(
    mut errors: Vec<LineError>,
    apply: bool,
    rows: usize,
) -> Result<Option<ImportSummary>, ImportError> {
    if errors.is_empty() {
        return Ok(None);
    }
    errors.sort_by_key(|e| e.line);
    let reported = views(&errors);
    if apply {
        return Err(ImportError::Invalid {
            count: errors.len(),
            first: errors[0].to_string(),
            errors: reported,
        });
    }
    Ok(Some(ImportSummary {
        rows,
        errors: reported,
        ..ImportSummary::default()
    }))
}

fn line_error(row: usize, field: &'static str, problem: String) -> LineError {
    LineError {
        line: row,
        field: Some(field),
        problem,
    }
}

impl RegistryService {
    /// Imports the residents file (one row per resident, with their household and hamlet).
    /// `apply: false` is the dry run: the same checks and counts, nothing written.
    #[tracing::instrument(skip(self, caller, bytes), fields(bytes = bytes.len()))]
    pub async fn import_residents(
        &self,
        caller: &Caller,
        bytes: &[u8],
        apply: bool,
    ) -> Result<ImportSummary, ImportError> {
        let now = self.clock.now_micros();
        let today = day_in_vietnam(self.clock.now());
        let parsed = parse_residents(bytes, today);
        let mut unit = self.store.begin().await?;
        let hamlets: HashMap<String, Hamlet> = unit
            .all_hamlets()
            .await?
            .into_iter()
            .map(|h| (h.code.as_str().to_owned(), h))
            .collect();
        let households: HashMap<String, (Uuid, HouseholdRecord)> = unit
            .all_households()
            .await?
            .into_iter()
            .map(|h| (h.record.code.as_str().to_owned(), (h.id, h.record)))
            .collect();
        let residents: HashMap<String, (Uuid, ResidentRecord, Option<ConsentState>)> = unit
            .all_residents()
            .await?
            .into_iter()
            .map(|r| {
                (
                    r.record.code.as_str().to_owned(),
                    (r.id, r.record, r.consent),
                )
            })
            .collect();

        // Hamlets the file names: known and open, or new with the name the file gives. Checked
        // for the rows that parsed even when others did not, so every bad line is reported.
        let mut errors = parsed.errors;
        let mut new_hamlets: HashMap<String, Hamlet> = HashMap::new();
        for row in &parsed.rows {
            let code = row.hamlet_code.as_str();
            match (hamlets.get(code), &row.hamlet_name) {
                (Some(hamlet), _) => {
                    if let Some(last_day) = hamlet.closed_before(today) {
                        errors.push(line_error(
                            row.line,
                            "hamlet_code",
                            format!("hamlet {code} closed on {last_day}; use the hamlet it became"),
                        ));
                    }
                }
                (None, Some(name)) => {
                    new_hamlets
                        .entry(code.to_owned())
                        .or_insert_with(|| Hamlet {
                            code: row.hamlet_code.clone(),
                            name: name.clone(),
                            // A hamlet named in a file existed before the registry did
                            // (as a resident without `living_since` lives here since
                            // before it), so reports for earlier months list it too.
                            valid_from: HAMLET_OF_RECORD_SINCE,
                            valid_to: None,
                            merged_into: None,
                            created_at: now,
                            updated_at: now,
                        });
                }
                (None, None) => errors.push(line_error(
                    row.line,
                    "hamlet_code",
                    format!("hamlet {code} does not exist; create it or give its name (Tên xóm)"),
                )),
            }
        }
        if let Some(report) = refuse_or_report(errors, apply, parsed.rows.len())? {
            return Ok(report);
        }

        let mut summary = ImportSummary {
            applied: apply,
            rows: parsed.rows.len(),
            hamlets_created: new_hamlets.len(),
            ..ImportSummary::default()
        };
        for hamlet in new_hamlets.values() {
            unit.insert_hamlet(hamlet).await?;
        }
        // Households first (heads are set once their residents have ids), then residents.
        // The first address a household's rows give (the parser refused conflicting ones).
        let mut addresses: HashMap<&str, &str> = HashMap::new();
        for row in &parsed.rows {
            if let Some(address) = &row.address {
                addresses
                    .entry(row.household_code.as_str())
                    .or_insert(address.as_str());
            }
        }
        let mut household_ids: HashMap<String, Uuid> = HashMap::new();
        let mut household_rows: Vec<(HouseholdRecord, Option<Uuid>)> = Vec::new();
        for row in &parsed.rows {
            let code = row.household_code.as_str();
            if household_ids.contains_key(code) {
                continue;
            }
            let existing = households.get(code);
            let record = HouseholdRecord {
                code: row.household_code.clone(),
                hamlet_code: row.hamlet_code.clone(),
                address: addresses
                    .get(code)
                    .map(|address| (*address).to_owned())
                    .or_else(|| existing.map(|(_, e)| e.address.clone()))
                    .unwrap_or_default(),
                head_resident_id: existing.and_then(|(_, e)| e.head_resident_id),
                moved_in_on: existing.and_then(|(_, e)| e.moved_in_on),
                moved_out_on: existing.and_then(|(_, e)| e.moved_out_on),
            };
            let id = match existing {
                Some((id, _)) => *id,
                None => {
                    let upserted = unit
                        .upsert_household(&record, self.clock.new_id(), now)
                        .await?;
                    summary.households_created += 1;
                    upserted.id
                }
            };
            household_ids.insert(code.to_owned(), id);
            household_rows.push((record, existing.map(|(id, _)| *id)));
        }
        let mut heads: HashMap<Uuid, Uuid> = HashMap::new();
        for row in &parsed.rows {
            let household_id = household_ids[row.household_code.as_str()];
            let record = resident_record(row, household_id);
            let existing = residents.get(row.resident_code.as_str());
            let id = match existing {
                Some((id, stored, _)) if *stored == record => {
                    summary.unchanged += 1;
                    *id
                }
                Some((id, _, _)) => {
                    unit.upsert_resident(&record, *id, now).await?;
                    summary.residents_updated += 1;
                    *id
                }
                None => {
                    let upserted = unit
                        .upsert_resident(&record, self.clock.new_id(), now)
                        .await?;
                    summary.residents_created += 1;
                    upserted.id
                }
            };
            if row.is_head {
                heads.insert(household_id, id);
            }
            let latest = existing.and_then(|(_, _, consent)| *consent);
            if let Some(consent) = row.consent.filter(|c| consent_is_news(c, latest)) {
                let record = ConsentRecord {
                    state: ConsentState {
                        given: consent.given,
                        effective_on: consent.effective_on,
                    },
                    recorded_by: caller.username.clone(),
                    recorded_at: now,
                };
                unit.append_consent(self.clock.new_id(), id, &record)
                    .await?;
                summary.consents_recorded += 1;
            }
        }
        for (mut record, existing_id) in household_rows {
            let id = household_ids[record.code.as_str()];
            if let Some(head) = heads.get(&id) {
                record.head_resident_id = Some(*head);
            }
            let stored = existing_id.and_then(|_| households.get(record.code.as_str()));
            match stored {
                Some((_, stored)) if *stored == record => {}
                Some(_) => {
                    unit.upsert_household(&record, id, now).await?;
                    summary.households_updated += 1;
                }
                // A new household's row exists already; only its head is new.
                None if record.head_resident_id.is_some() => {
                    unit.upsert_household(&record, id, now).await?;
                }
                None => {}
            }
        }
        if apply {
            unit.commit().await?;
        } else {
            unit.rollback().await?;
        }
        tracing::info!(
            applied = apply,
            rows = summary.rows,
            residents_created = summary.residents_created,
            residents_updated = summary.residents_updated,
            "registry import"
        );
        Ok(summary)
    }

    /// Imports a door-to-door survey: one answer per resident and day.
    #[tracing::instrument(skip(self, bytes), fields(bytes = bytes.len()))]
    pub async fn import_survey(
        &self,
        bytes: &[u8],
        apply: bool,
    ) -> Result<ImportSummary, ImportError> {
        let now = self.clock.now_micros();
        let today = day_in_vietnam(self.clock.now());
        let parsed = parse_survey(bytes, today);
        let mut unit = self.store.begin().await?;
        let residents: HashMap<String, Uuid> = unit
            .all_residents()
            .await?
            .into_iter()
            .map(|r| (r.record.code.as_str().to_owned(), r.id))
            .collect();
        // Unknown residents are reported with the lines that did not parse: every bad line.
        let mut errors = parsed.errors;
        let mut answers = Vec::with_capacity(parsed.rows.len());
        for row in &parsed.rows {
            match residents.get(row.resident_code.as_str()) {
                Some(resident_id) => answers.push(SurveyAnswerRecord {
                    resident_id: *resident_id,
                    surveyed_on: row.surveyed_on,
                    used_online_payment: row.used_online_payment,
                    channel: row.channel.clone(),
                }),
                None => errors.push(line_error(
                    row.line,
                    "resident_code",
                    format!("no resident has code {}", row.resident_code.as_str()),
                )),
            }
        }
        if let Some(report) = refuse_or_report(errors, apply, parsed.rows.len())? {
            return Ok(report);
        }
        let stored: HashMap<(Uuid, chrono::NaiveDate), (bool, Option<String>)> = unit
            .survey_answers()
            .await?
            .into_iter()
            .map(|(resident, day, used, channel)| ((resident, day), (used, channel)))
            .collect();
        let mut summary = ImportSummary {
            applied: apply,
            rows: parsed.rows.len(),
            ..ImportSummary::default()
        };
        for answer in &answers {
            let same = stored
                .get(&(answer.resident_id, answer.surveyed_on))
                .is_some_and(|(used, channel)| {
                    *used == answer.used_online_payment && *channel == answer.channel
                });
            if same {
                summary.unchanged += 1;
            } else {
                unit.upsert_survey_answer(self.clock.new_id(), answer, now)
                    .await?;
                summary.survey_answers_recorded += 1;
            }
        }
        if apply {
            unit.commit().await?;
        } else {
            unit.rollback().await?;
        }
        Ok(summary)
    }
}

fn resident_record(row: &ResidentRow, household_id: Uuid) -> ResidentRecord {
    ResidentRecord {
        code: row.resident_code.clone(),
        household_id,
        full_name: row.full_name.clone(),
        birth_year: row.birth_year,
        birth_date: row.birth_date,
        gender: row.gender,
        phone: row.phone.clone(),
        status: row.status,
        living_since: row.living_since,
        left_on: row.left_on,
    }
}

/// Whether a file's consent column records a decision the registry does not have yet. With no
/// history, any answer is new. Otherwise only a dated decision later than the latest recorded
/// one, saying something else, changes it: an undated "có" in a master file re-imported after
/// the resident withdrew must not give their consent back.
fn consent_is_news(
    file: &crate::domain::registry::import::Consent,
    latest: Option<ConsentState>,
) -> bool {
    match latest {
        None => true,
        Some(latest) => {
            file.dated && file.effective_on > latest.effective_on && file.given != latest.given
        }
    }
}
