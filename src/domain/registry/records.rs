//! Hamlets, households and residents as the registry keeps them, and the rules a write must
//! pass: merging hamlets without rewriting history, a resident's status and leaving day, a
//! household's head. The API and the CSV import build the same records, so both obey them.

use chrono::{DateTime, Days, NaiveDate, Utc};
use uuid::Uuid;

use super::{Code, FieldError, Gender, Name, ResidentStatus};

/// The registry's days are the commune's calendar days, in Vietnam (UTC+7, no daylight time).
pub fn day_in_vietnam(at: DateTime<Utc>) -> NaiveDate {
    crate::domain::statistics::period::vietnam_local(at).date()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hamlet {
    pub code: Code,
    pub name: Name,
    pub valid_from: NaiveDate,
    /// The last day the hamlet existed; `None` while it exists.
    pub valid_to: Option<NaiveDate>,
    pub merged_into: Option<Code>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Hamlet {
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|last| day <= last)
    }

    /// The hamlet's last day, if it closed before `day`: households can no longer be placed
    /// in it. (One that opens later may already take them, as registers are drawn up early.)
    pub fn closed_before(&self, day: NaiveDate) -> Option<NaiveDate> {
        self.valid_to.filter(|last| *last < day)
    }
}

/// Why a hamlet may not be merged; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeRefusal {
    #[error("a hamlet cannot be merged into itself")]
    IntoItself,
    #[error("hamlet {code} closed on {last_day}; a closed hamlet cannot be merged again")]
    Closed { code: String, last_day: NaiveDate },
    #[error("hamlet {code} was not open on {on}; a hamlet can only be merged into one that is")]
    TargetNotOpen { code: String, on: NaiveDate },
    #[error("the merge day must come after the hamlet's first day, {valid_from}")]
    TooEarly { valid_from: NaiveDate },
}

/// Merges `hamlet` into `target` from the day `on`: `on` is the first day its households count
/// under `target`, so the hamlet's last day (`valid_to`) is the day before. Only the hamlet's
/// own row changes: households keep the code they had, and a report for a month before `on`
/// still finds them in the old hamlet.
pub fn merge(hamlet: &Hamlet, target: &Hamlet, on: NaiveDate) -> Result<Hamlet, MergeRefusal> {
    if hamlet.code == target.code {
        return Err(MergeRefusal::IntoItself);
    }
    if let Some(last_day) = hamlet.valid_to {
        return Err(MergeRefusal::Closed {
            code: hamlet.code.as_str().to_owned(),
            last_day,
        });
    }
    if !target.is_valid_on(on) {
        return Err(MergeRefusal::TargetNotOpen {
            code: target.code.as_str().to_owned(),
            on,
        });
    }
    let last_day = on
        .checked_sub_days(Days::new(1))
        .filter(|last| *last >= hamlet.valid_from)
        .ok_or(MergeRefusal::TooEarly {
            valid_from: hamlet.valid_from,
        })?;
    Ok(Hamlet {
        valid_to: Some(last_day),
        merged_into: Some(target.code.clone()),
        ..hamlet.clone()
    })
}

/// A free-text address: trimmed, inner runs of spaces made one, 1 to 200 characters.
pub fn parse_address(text: &str) -> Result<String, FieldError> {
    const ADDRESS_MAX_CHARS: usize = 200;
    let address = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if address.is_empty() || address.chars().count() > ADDRESS_MAX_CHARS {
        return Err(FieldError::new("address", "must be 1 to 200 characters"));
    }
    if address.chars().any(char::is_control) {
        return Err(FieldError::new(
            "address",
            "must not hold control characters",
        ));
    }
    Ok(address)
}

/// A phone number as payees write theirs: digits, optionally a leading +, 9 to 15 digits.
pub fn parse_phone(text: &str) -> Result<String, FieldError> {
    crate::domain::payee::parse_phone(text).map_err(|_| {
        FieldError::new(
            "phone",
            "must be a phone number: 9 to 15 digits, optionally a leading +",
        )
    })
}

/// What a household is, as written; the key an import upserts on is `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HouseholdRecord {
    pub code: Code,
    pub hamlet_code: Code,
    pub address: String,
    pub head_resident_id: Option<Uuid>,
    pub moved_in_on: Option<NaiveDate>,
    pub moved_out_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Household {
    pub id: Uuid,
    pub record: HouseholdRecord,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The household's head must live in it: `head_household` is the household of the resident
/// named head (`None`: no such resident).
pub fn check_head(household_id: Uuid, head_household: Option<Uuid>) -> Result<(), FieldError> {
    if head_household == Some(household_id) {
        Ok(())
    } else {
        Err(FieldError::new(
            "head_resident_id",
            "must be a resident of this household",
        ))
    }
}

/// The household a resident leaves, if it loses its head by it: a head lives in the
/// household, so one who moves out is head no longer.
pub fn without_head(left: &HouseholdRecord, resident_id: Uuid) -> Option<HouseholdRecord> {
    (left.head_resident_id == Some(resident_id)).then(|| HouseholdRecord {
        head_resident_id: None,
        ..left.clone()
    })
}

/// A household may move out only after it moved in.
pub fn check_household_dates(record: &HouseholdRecord) -> Result<(), FieldError> {
    match (record.moved_in_on, record.moved_out_on) {
        (Some(moved_in), Some(moved_out)) if moved_out < moved_in => Err(FieldError::new(
            "moved_out_on",
            "must not be before moved_in_on",
        )),
        _ => Ok(()),
    }
}

/// What a resident is, as written; the key an import upserts on is `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentRecord {
    pub code: Code,
    pub household_id: Uuid,
    pub full_name: Name,
    pub birth_year: i32,
    pub birth_date: Option<NaiveDate>,
    pub gender: Gender,
    pub phone: Option<String>,
    pub status: ResidentStatus,
    pub living_since: Option<NaiveDate>,
    pub left_on: Option<NaiveDate>,
}

/// The consent in force from `effective_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentState {
    pub given: bool,
    pub effective_on: NaiveDate,
}

/// One recorded consent decision; the history is only ever appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub state: ConsentState,
    pub recorded_by: String,
    pub recorded_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resident {
    pub id: Uuid,
    pub record: ResidentRecord,
    /// The latest consent recorded (latest `effective_on`), if any.
    pub consent: Option<ConsentState>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A resident's status and leaving day after a change. A resident who moved away or died has
/// the day it happened; one who lives here has none, so going back to living clears it
/// (unless the same change names a leaving day, which contradicts it).
pub fn residence(
    current: (ResidentStatus, Option<NaiveDate>),
    status: Option<ResidentStatus>,
    left_on: Option<Option<NaiveDate>>,
) -> Result<(ResidentStatus, Option<NaiveDate>), FieldError> {
    let status = status.unwrap_or(current.0);
    match (status, left_on) {
        (ResidentStatus::Living, Some(Some(_))) => Err(FieldError::new(
            "left_on",
            "must be empty while the resident is living",
        )),
        (ResidentStatus::Living, _) => Ok((status, None)),
        (_, left_on) => match left_on.unwrap_or(current.1) {
            Some(day) => Ok((status, Some(day))),
            None => Err(FieldError::new(
                "left_on",
                "is required when the status is moved_away or deceased",
            )),
        },
    }
}

/// A birth date, when known, falls in the birth year.
pub fn check_birth_date(record: &ResidentRecord) -> Result<(), FieldError> {
    use chrono::Datelike;
    match record.birth_date {
        Some(date) if date.year() != record.birth_year => {
            Err(FieldError::new("birth_date", "must fall in birth_year"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn hamlet(code: &str, valid_from: &str, valid_to: Option<&str>) -> Hamlet {
        Hamlet {
            code: Code::parse("code", code).unwrap(),
            name: Name::parse("name", code).unwrap(),
            valid_from: day(valid_from),
            valid_to: valid_to.map(day),
            merged_into: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_merge_closes_the_hamlet_the_day_before_and_refuses_what_would_rewrite_history() {
        let old = hamlet("X1", "2020-01-01", None);
        let target = hamlet("X2", "2020-01-01", None);
        let merged = merge(&old, &target, day("2026-07-01")).unwrap();
        assert_eq!(merged.valid_to, Some(day("2026-06-30")));
        assert_eq!(merged.merged_into.as_ref().map(Code::as_str), Some("X2"));
        assert!(merged.is_valid_on(day("2026-06-30")) && !merged.is_valid_on(day("2026-07-01")));

        assert_eq!(
            merge(&old, &old, day("2026-07-01")),
            Err(MergeRefusal::IntoItself)
        );
        assert!(matches!(
            merge(&merged, &target, day("2026-08-01")),
            Err(MergeRefusal::Closed { .. })
        ));
        let closed_target = hamlet("X3", "2020-01-01", Some("2025-12-31"));
        assert!(matches!(
            merge(&old, &closed_target, day("2026-07-01")),
            Err(MergeRefusal::TargetNotOpen { .. })
        ));
        assert!(matches!(
            merge(&old, &target, day("2020-01-01")),
            Err(MergeRefusal::TooEarly { .. })
        ));
    }

    #[test]
    fn leaving_needs_a_day_and_coming_back_clears_it() {
        use ResidentStatus::*;
        let gone = day("2026-03-01");
        assert_eq!(residence((Living, None), None, None), Ok((Living, None)));
        assert!(residence((Living, None), Some(MovedAway), None).is_err());
        assert_eq!(
            residence((Living, None), Some(Deceased), Some(Some(gone))),
            Ok((Deceased, Some(gone)))
        );
        assert_eq!(
            residence((MovedAway, Some(gone)), Some(Living), None),
            Ok((Living, None))
        );
        assert!(residence((MovedAway, Some(gone)), Some(Living), Some(Some(gone))).is_err());
        assert!(residence((MovedAway, Some(gone)), None, Some(None)).is_err());
        assert_eq!(
            residence((MovedAway, Some(gone)), Some(Deceased), None),
            Ok((Deceased, Some(gone)))
        );
    }

    #[test]
    fn the_head_lives_in_the_household() {
        let (home, other) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(check_head(home, Some(home)).is_ok());
        assert!(check_head(home, Some(other)).is_err());
        assert!(check_head(home, None).is_err());
        let record = HouseholdRecord {
            code: Code::parse("code", "HH-1").unwrap(),
            hamlet_code: Code::parse("hamlet_code", "KC").unwrap(),
            address: "Nhà 1".into(),
            head_resident_id: Some(home),
            moved_in_on: None,
            moved_out_on: None,
        };
        assert_eq!(without_head(&record, other), None);
        assert_eq!(
            without_head(&record, home).map(|r| r.head_resident_id),
            Some(None)
        );
    }

    fn any_status() -> impl Strategy<Value = ResidentStatus> {
        prop_oneof![
            Just(ResidentStatus::Living),
            Just(ResidentStatus::MovedAway),
            Just(ResidentStatus::Deceased),
        ]
    }

    fn any_day() -> impl Strategy<Value = NaiveDate> {
        (0u64..20_000).prop_map(|n| day("1990-01-01") + Days::new(n))
    }

    proptest! {
        /// Whatever the change, what is accepted satisfies the table's CHECK: living exactly
        /// when there is no leaving day.
        #[test]
        fn an_accepted_residence_is_living_exactly_without_a_leaving_day(
            current_status in any_status(),
            current_left_on in proptest::option::of(any_day()),
            status in proptest::option::of(any_status()),
            left_on in proptest::option::of(proptest::option::of(any_day())),
        ) {
            if let Ok((status, left_on)) =
                residence((current_status, current_left_on), status, left_on)
            {
                prop_assert_eq!(status == ResidentStatus::Living, left_on.is_none());
            }
        }

        /// A merge that is accepted ends the hamlet the day before `on`, inside its own
        /// lifetime, and the target exists on `on`: no day is counted in both or in neither.
        #[test]
        fn an_accepted_merge_hands_over_on_the_day(
            from in any_day(), target_from in any_day(), on in any_day(),
        ) {
            let old = Hamlet { valid_from: from, ..hamlet("A", "2000-01-01", None) };
            let target = Hamlet { valid_from: target_from, ..hamlet("B", "2000-01-01", None) };
            if let Ok(merged) = merge(&old, &target, on) {
                prop_assert!(merged.valid_to.is_some_and(|last| last >= merged.valid_from));
                prop_assert!(!merged.is_valid_on(on) && target.is_valid_on(on));
                prop_assert!(merged.is_valid_on(on - Days::new(1)));
            }
        }
    }

    #[test]
    fn vietnam_days_start_at_17_utc() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            day_in_vietnam(at("2026-11-29T16:59:59Z")),
            day("2026-11-29")
        );
        assert_eq!(
            day_in_vietnam(at("2026-11-29T17:00:00Z")),
            day("2026-11-30")
        );
    }
}
