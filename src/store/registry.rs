//! Storage of the commune's registry: hamlets, households, residents and their consents. The
//! SQL is written once, for any [`Backend`]: reads on its pool ([`RegistryStore`]), writes in
//! a [`UnitOfWork`]. Households and residents are written by code (`upsert_household`,
//! `upsert_resident`), so the API and a bulk import share one write each.

use async_trait::async_trait;
use chrono::NaiveDate;
use uuid::Uuid;

use super::unit_of_work::{Backend, UnitOfWork};
use super::{StoreError, StoreResult};
use crate::domain::registry::{
    Code, Consent, ConsentState, Gender, Hamlet, Household, HouseholdRecord, Name, Resident,
    ResidentRecord, ResidentStatus,
};

#[derive(Debug, Clone, Default)]
pub struct HouseholdFilter {
    pub hamlet: Option<String>,
    /// Households whose code starts with this, exactly (codes are compared as written).
    pub code_prefix: Option<String>,
    /// Keyset cursor: households with an id greater than this.
    pub after: Option<Uuid>,
    pub limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct ResidentFilter {
    /// A folded name fragment ([`crate::domain::registry::search_key`]) the resident's folded
    /// name contains; `%` and `_` in it are matched literally.
    pub name_contains: Option<String>,
    pub household_id: Option<Uuid>,
    pub hamlet: Option<String>,
    /// Keyset cursor: residents with an id greater than this.
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// The row a write by code landed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upserted {
    pub id: Uuid,
    /// False when a row with the code existed and was updated instead.
    pub created: bool,
}

#[async_trait]
pub trait RegistryStore: Send + Sync + 'static {
    /// Every hamlet, by code; with `on`, only those that existed that day.
    async fn hamlets(&self, on: Option<NaiveDate>) -> StoreResult<Vec<Hamlet>>;
    async fn hamlet(&self, code: &str) -> StoreResult<Option<Hamlet>>;
    /// By id (time-ordered), a page after the filter's cursor.
    async fn households(&self, filter: &HouseholdFilter) -> StoreResult<Vec<Household>>;
    async fn household(&self, id: Uuid) -> StoreResult<Option<Household>>;
    /// By id (time-ordered), a page after the filter's cursor.
    async fn residents(&self, filter: &ResidentFilter) -> StoreResult<Vec<Resident>>;
    async fn resident(&self, id: Uuid) -> StoreResult<Option<Resident>>;
    /// The resident's consent history, oldest effective day first.
    async fn consents(&self, resident_id: Uuid) -> StoreResult<Vec<Consent>>;
}

const HAMLET_COLUMNS: &str =
    "code, name, valid_from, valid_to, merged_into, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct HamletRow {
    code: String,
    name: String,
    valid_from: NaiveDate,
    valid_to: Option<NaiveDate>,
    merged_into: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// Stored text is parsed back through the domain's types: a row that no longer parses is
/// damaged, not a request's fault.
fn stored<T, E: std::fmt::Display>(what: &str, parsed: Result<T, E>) -> StoreResult<T> {
    parsed.map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

impl HamletRow {
    fn into_domain(self) -> StoreResult<Hamlet> {
        Ok(Hamlet {
            code: stored("hamlet code", Code::parse("code", &self.code))?,
            name: stored("hamlet name", Name::parse("name", &self.name))?,
            valid_from: self.valid_from,
            valid_to: self.valid_to,
            merged_into: self
                .merged_into
                .map(|code| stored("merged_into", Code::parse("merged_into", &code)))
                .transpose()?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const HOUSEHOLD_COLUMNS: &str = "h.id, h.code, h.hamlet_code, h.address, h.head_resident_id, \
    h.moved_in_on, h.moved_out_on, h.created_at, h.updated_at";

#[derive(sqlx::FromRow)]
struct HouseholdRow {
    id: Uuid,
    code: String,
    hamlet_code: String,
    address: String,
    head_resident_id: Option<Uuid>,
    moved_in_on: Option<NaiveDate>,
    moved_out_on: Option<NaiveDate>,
    created_at: i64,
    updated_at: i64,
}

impl HouseholdRow {
    fn into_domain(self) -> StoreResult<Household> {
        Ok(Household {
            id: self.id,
            record: HouseholdRecord {
                code: stored("household code", Code::parse("code", &self.code))?,
                hamlet_code: stored(
                    "household hamlet",
                    Code::parse("hamlet_code", &self.hamlet_code),
                )?,
                address: self.address,
                head_resident_id: self.head_resident_id,
                moved_in_on: self.moved_in_on,
                moved_out_on: self.moved_out_on,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The latest consent comes along as two columns of the same ordered subquery.
const RESIDENT_COLUMNS: &str = "r.id, r.code, r.household_id, r.full_name, r.birth_year, \
    r.birth_date, r.gender, r.phone, r.status, r.living_since, r.left_on, r.created_at, \
    r.updated_at, \
    (SELECT c.given FROM resident_consents c WHERE c.resident_id = r.id \
     ORDER BY c.effective_on DESC, c.recorded_at DESC, c.id DESC LIMIT 1) AS consent_given, \
    (SELECT c.effective_on FROM resident_consents c WHERE c.resident_id = r.id \
     ORDER BY c.effective_on DESC, c.recorded_at DESC, c.id DESC LIMIT 1) AS consent_effective_on";

#[derive(sqlx::FromRow)]
struct ResidentRow {
    id: Uuid,
    code: String,
    household_id: Uuid,
    full_name: String,
    birth_year: i32,
    birth_date: Option<NaiveDate>,
    gender: String,
    phone: Option<String>,
    status: String,
    living_since: Option<NaiveDate>,
    left_on: Option<NaiveDate>,
    created_at: i64,
    updated_at: i64,
    consent_given: Option<bool>,
    consent_effective_on: Option<NaiveDate>,
}

impl ResidentRow {
    fn into_domain(self) -> StoreResult<Resident> {
        Ok(Resident {
            id: self.id,
            record: ResidentRecord {
                code: stored("resident code", Code::parse("code", &self.code))?,
                household_id: self.household_id,
                full_name: stored("resident name", Name::parse("full_name", &self.full_name))?,
                birth_year: self.birth_year,
                birth_date: self.birth_date,
                gender: stored("gender", Gender::parse(&self.gender))?,
                phone: self.phone,
                status: stored("status", ResidentStatus::parse(&self.status))?,
                living_since: self.living_since,
                left_on: self.left_on,
            },
            consent: self.consent_given.zip(self.consent_effective_on).map(
                |(given, effective_on)| ConsentState {
                    given,
                    effective_on,
                },
            ),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `text` as a LIKE pattern that matches it literally (with `ESCAPE '\'`).
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[async_trait]
impl<T: Backend + 'static> RegistryStore for T {
    async fn hamlets(&self, on: Option<NaiveDate>) -> StoreResult<Vec<Hamlet>> {
        let rows: Vec<HamletRow> = on_pool!(self, |pool| {
            let mut query =
                sqlx::QueryBuilder::new(format!("SELECT {HAMLET_COLUMNS} FROM hamlets"));
            if let Some(day) = on {
                query
                    .push(" WHERE valid_from <= ")
                    .push_bind(day)
                    .push(" AND (valid_to IS NULL OR valid_to >= ")
                    .push_bind(day)
                    .push(")");
            }
            query.push(" ORDER BY code");
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter().map(HamletRow::into_domain).collect()
    }

    async fn hamlet(&self, code: &str) -> StoreResult<Option<Hamlet>> {
        let sql = format!("SELECT {HAMLET_COLUMNS} FROM hamlets WHERE code = $1");
        let row: Option<HamletRow> = pool_rows!(self, fetch_optional, &sql, code)?;
        row.map(HamletRow::into_domain).transpose()
    }

    async fn households(&self, filter: &HouseholdFilter) -> StoreResult<Vec<Household>> {
        let rows: Vec<HouseholdRow> = on_pool!(self, |pool| {
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {HOUSEHOLD_COLUMNS} FROM households h WHERE 1 = 1"
            ));
            if let Some(hamlet) = &filter.hamlet {
                query
                    .push(" AND h.hamlet_code = ")
                    .push_bind(hamlet.clone());
            }
            if let Some(prefix) = &filter.code_prefix {
                // substr, not LIKE: SQLite's LIKE ignores case, PostgreSQL's does not.
                query
                    .push(" AND substr(h.code, 1, ")
                    .push_bind(prefix.chars().count() as i32)
                    .push(") = ")
                    .push_bind(prefix.clone());
            }
            if let Some(after) = filter.after {
                query.push(" AND h.id > ").push_bind(after);
            }
            query
                .push(" ORDER BY h.id LIMIT ")
                .push_bind(i64::from(filter.limit));
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter().map(HouseholdRow::into_domain).collect()
    }

    async fn household(&self, id: Uuid) -> StoreResult<Option<Household>> {
        let sql = format!("SELECT {HOUSEHOLD_COLUMNS} FROM households h WHERE h.id = $1");
        let row: Option<HouseholdRow> = pool_rows!(self, fetch_optional, &sql, id)?;
        row.map(HouseholdRow::into_domain).transpose()
    }

    async fn residents(&self, filter: &ResidentFilter) -> StoreResult<Vec<Resident>> {
        let rows: Vec<ResidentRow> = on_pool!(self, |pool| {
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {RESIDENT_COLUMNS} FROM residents r \
                 JOIN households h ON h.id = r.household_id WHERE 1 = 1"
            ));
            if let Some(fragment) = &filter.name_contains {
                query
                    .push(" AND r.name_search LIKE ")
                    .push_bind(format!("%{}%", like_literal(fragment)))
                    .push(" ESCAPE '\\'");
            }
            if let Some(household_id) = filter.household_id {
                query.push(" AND r.household_id = ").push_bind(household_id);
            }
            if let Some(hamlet) = &filter.hamlet {
                query
                    .push(" AND h.hamlet_code = ")
                    .push_bind(hamlet.clone());
            }
            if let Some(after) = filter.after {
                query.push(" AND r.id > ").push_bind(after);
            }
            query
                .push(" ORDER BY r.id LIMIT ")
                .push_bind(i64::from(filter.limit));
            query.build_query_as().fetch_all(pool).await
        })?;
        rows.into_iter().map(ResidentRow::into_domain).collect()
    }

    async fn resident(&self, id: Uuid) -> StoreResult<Option<Resident>> {
        let sql = format!("SELECT {RESIDENT_COLUMNS} FROM residents r WHERE r.id = $1");
        let row: Option<ResidentRow> = pool_rows!(self, fetch_optional, &sql, id)?;
        row.map(ResidentRow::into_domain).transpose()
    }

    async fn consents(&self, resident_id: Uuid) -> StoreResult<Vec<Consent>> {
        let sql = "SELECT given, effective_on, recorded_by, recorded_at FROM resident_consents \
                   WHERE resident_id = $1 ORDER BY effective_on, recorded_at, id";
        let rows: Vec<(bool, NaiveDate, String, i64)> =
            pool_rows!(self, fetch_all, sql, resident_id)?;
        Ok(rows
            .into_iter()
            .map(|(given, effective_on, recorded_by, recorded_at)| Consent {
                state: ConsentState {
                    given,
                    effective_on,
                },
                recorded_by,
                recorded_at,
            })
            .collect())
    }
}

/// The registry writes of a use case's (or an import's) database transaction. Reads here lock
/// the row until commit, so a decision made on it still holds when it is written.
impl UnitOfWork<'_> {
    pub async fn lock_hamlet(&mut self, code: &str) -> StoreResult<Option<Hamlet>> {
        let sql = format!(
            "SELECT {HAMLET_COLUMNS} FROM hamlets WHERE code = $1{}",
            self.row_lock()
        );
        let row: Option<HamletRow> = tx_rows!(self, fetch_optional, &sql, code)?;
        row.map(HamletRow::into_domain).transpose()
    }

    /// Inserts the hamlet; false (and nothing written) when its code is taken.
    pub async fn insert_hamlet(&mut self, hamlet: &Hamlet) -> StoreResult<bool> {
        let sql = format!(
            "INSERT INTO hamlets ({HAMLET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT DO NOTHING"
        );
        let inserted = execute!(
            self,
            &sql,
            hamlet.code.as_str(),
            hamlet.name.as_str(),
            hamlet.valid_from,
            hamlet.valid_to,
            hamlet.merged_into.as_ref().map(Code::as_str),
            hamlet.created_at,
            hamlet.updated_at,
        )?;
        Ok(inserted == 1)
    }

    /// Writes the hamlet's name, closing day and successor (its code and first day never
    /// change).
    pub async fn update_hamlet(&mut self, hamlet: &Hamlet) -> StoreResult<()> {
        let sql = "UPDATE hamlets SET name = $2, valid_to = $3, merged_into = $4, \
                   updated_at = $5 WHERE code = $1";
        execute!(
            self,
            sql,
            hamlet.code.as_str(),
            hamlet.name.as_str(),
            hamlet.valid_to,
            hamlet.merged_into.as_ref().map(Code::as_str),
            hamlet.updated_at,
        )?;
        Ok(())
    }

    pub async fn lock_household(&mut self, id: Uuid) -> StoreResult<Option<Household>> {
        let sql = format!(
            "SELECT {HOUSEHOLD_COLUMNS} FROM households h WHERE h.id = $1{}",
            self.row_lock()
        );
        let row: Option<HouseholdRow> = tx_rows!(self, fetch_optional, &sql, id)?;
        row.map(HouseholdRow::into_domain).transpose()
    }

    /// Inserts the household with `new_id`, or, when its code exists, updates that row; the
    /// id of the row either way.
    pub async fn upsert_household(
        &mut self,
        record: &HouseholdRecord,
        new_id: Uuid,
        now: i64,
    ) -> StoreResult<Upserted> {
        let sql = "INSERT INTO households (id, code, hamlet_code, address, head_resident_id, \
                   moved_in_on, moved_out_on, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                   ON CONFLICT (code) DO UPDATE SET hamlet_code = excluded.hamlet_code, \
                   address = excluded.address, head_resident_id = excluded.head_resident_id, \
                   moved_in_on = excluded.moved_in_on, moved_out_on = excluded.moved_out_on, \
                   updated_at = excluded.updated_at \
                   RETURNING id";
        let (id,): (Uuid,) = tx_rows!(
            self,
            fetch_one,
            sql,
            new_id,
            record.code.as_str(),
            record.hamlet_code.as_str(),
            &record.address,
            record.head_resident_id,
            record.moved_in_on,
            record.moved_out_on,
            now,
        )?;
        Ok(Upserted {
            id,
            created: id == new_id,
        })
    }

    /// The household a resident lives in; `None` when there is no such resident.
    pub async fn household_of_resident(&mut self, resident_id: Uuid) -> StoreResult<Option<Uuid>> {
        let sql = "SELECT household_id FROM residents WHERE id = $1";
        let row: Option<(Uuid,)> = tx_rows!(self, fetch_optional, sql, resident_id)?;
        Ok(row.map(|(id,)| id))
    }

    /// Locks the resident's row, not its household's: a change locks no more rows than the
    /// ones it needs (a move, the household it goes to).
    pub async fn lock_resident(&mut self, id: Uuid) -> StoreResult<Option<Resident>> {
        let sql = format!(
            "SELECT {RESIDENT_COLUMNS} FROM residents r WHERE r.id = $1{}",
            self.row_lock()
        );
        let row: Option<ResidentRow> = tx_rows!(self, fetch_optional, &sql, id)?;
        row.map(ResidentRow::into_domain).transpose()
    }

    /// Inserts the resident with `new_id`, or, when its code exists, updates that row; the id
    /// of the row either way. The folded name that search compares is written with the name.
    pub async fn upsert_resident(
        &mut self,
        record: &ResidentRecord,
        new_id: Uuid,
        now: i64,
    ) -> StoreResult<Upserted> {
        let sql = "INSERT INTO residents (id, code, household_id, full_name, name_search, \
                   birth_year, birth_date, gender, phone, status, living_since, left_on, \
                   created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
                   ON CONFLICT (code) DO UPDATE SET household_id = excluded.household_id, \
                   full_name = excluded.full_name, name_search = excluded.name_search, \
                   birth_year = excluded.birth_year, birth_date = excluded.birth_date, \
                   gender = excluded.gender, phone = excluded.phone, status = excluded.status, \
                   living_since = excluded.living_since, left_on = excluded.left_on, \
                   updated_at = excluded.updated_at \
                   RETURNING id";
        let (id,): (Uuid,) = tx_rows!(
            self,
            fetch_one,
            sql,
            new_id,
            record.code.as_str(),
            record.household_id,
            record.full_name.as_str(),
            record.full_name.search_key(),
            record.birth_year,
            record.birth_date,
            record.gender.as_str(),
            record.phone.as_deref(),
            record.status.as_str(),
            record.living_since,
            record.left_on,
            now,
        )?;
        Ok(Upserted {
            id,
            created: id == new_id,
        })
    }

    /// Appends a consent decision to the resident's history.
    pub async fn append_consent(
        &mut self,
        id: Uuid,
        resident_id: Uuid,
        consent: &Consent,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO resident_consents \
                   (id, resident_id, given, effective_on, recorded_by, recorded_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        execute!(
            self,
            sql,
            id,
            resident_id,
            consent.state.given,
            consent.state.effective_on,
            &consent.recorded_by,
            consent.recorded_at,
        )?;
        Ok(())
    }
}

/// What an import compares a file against, read inside its unit of work, and the survey
/// answers it writes.
impl UnitOfWork<'_> {
    pub async fn all_hamlets(&mut self) -> StoreResult<Vec<Hamlet>> {
        let sql = format!("SELECT {HAMLET_COLUMNS} FROM hamlets");
        let rows: Vec<HamletRow> = tx_rows!(self, fetch_all, &sql)?;
        rows.into_iter().map(HamletRow::into_domain).collect()
    }

    pub async fn all_households(&mut self) -> StoreResult<Vec<Household>> {
        let sql = format!("SELECT {HOUSEHOLD_COLUMNS} FROM households h");
        let rows: Vec<HouseholdRow> = tx_rows!(self, fetch_all, &sql)?;
        rows.into_iter().map(HouseholdRow::into_domain).collect()
    }

    pub async fn all_residents(&mut self) -> StoreResult<Vec<Resident>> {
        let sql = format!("SELECT {RESIDENT_COLUMNS} FROM residents r");
        let rows: Vec<ResidentRow> = tx_rows!(self, fetch_all, &sql)?;
        rows.into_iter().map(ResidentRow::into_domain).collect()
    }

    /// The answers already recorded, by (resident, day): whether online payment was used and
    /// the channel named.
    pub async fn survey_answers(
        &mut self,
    ) -> StoreResult<Vec<(Uuid, NaiveDate, bool, Option<String>)>> {
        let sql = "SELECT resident_id, surveyed_on, used_online_payment, channel \
                   FROM survey_responses";
        Ok(tx_rows!(self, fetch_all, sql)?)
    }

    /// Records the resident's answer of that day, replacing an earlier import's.
    pub async fn upsert_survey_answer(
        &mut self,
        id: Uuid,
        answer: &SurveyAnswerRecord,
        now: i64,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO survey_responses \
                   (id, resident_id, surveyed_on, used_online_payment, channel, imported_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (resident_id, surveyed_on) DO UPDATE SET \
                   used_online_payment = excluded.used_online_payment, \
                   channel = excluded.channel, imported_at = excluded.imported_at";
        execute!(
            self,
            sql,
            id,
            answer.resident_id,
            answer.surveyed_on,
            answer.used_online_payment,
            answer.channel.as_deref(),
            now,
        )?;
        Ok(())
    }
}

/// One survey answer to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyAnswerRecord {
    pub resident_id: Uuid,
    pub surveyed_on: NaiveDate,
    pub used_online_payment: bool,
    pub channel: Option<String>,
}
