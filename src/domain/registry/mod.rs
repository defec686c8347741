//! The commune's registry: hamlets, households and residents, as the adoption statistics count
//! them. Values here are parsed, so a resident cannot be built with a blank name, a birth year
//! from the future of the records or a gender the statistics do not know.

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;

use crate::domain::text::fold_to_ascii;

pub mod import;
mod records;
pub use records::*;

/// Why a registry field was refused; `field` names it as the API and the CSV import do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: &'static str,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

/// A code the commune gives a hamlet, household or resident ("KC", "HH-0042", "CD-000123"):
/// 1 to 32 letters, digits, `-`, `_` or `.`; kept as written, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(String);

pub const CODE_MAX_CHARS: usize = 32;

impl Code {
    pub fn parse(field: &'static str, text: &str) -> Result<Self, FieldError> {
        let text = text.trim();
        if text.is_empty() || text.len() > CODE_MAX_CHARS {
            return Err(FieldError::new(field, "must be 1 to 32 characters"));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(FieldError::new(
                field,
                "may hold only letters A-Z, digits and - _ .",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A hamlet's code: a [`Code`] that is not the name of a statistics table's own rows
    /// (`total`, `unplaced`), which a hamlet row would otherwise be mixed into.
    pub fn parse_hamlet(field: &'static str, text: &str) -> Result<Self, FieldError> {
        let code = Self::parse(field, text)?;
        if RESERVED_HAMLET_CODES
            .iter()
            .any(|reserved| code.0.eq_ignore_ascii_case(reserved))
        {
            return Err(FieldError::new(
                field,
                "total and unplaced name the statistics' own rows; choose another code",
            ));
        }
        Ok(code)
    }
}

/// Row keys of the adoption statistics that are not hamlets.
const RESERVED_HAMLET_CODES: [&str; 2] = [
    crate::domain::statistics::indicators::TOTAL,
    crate::domain::statistics::indicators::UNPLACED,
];

/// A person's or hamlet's name as written in Vietnamese: trimmed, inner runs of spaces made
/// one, NFC (so "Nguyễn" typed on any keyboard is stored one way), 1 to 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

pub const NAME_MAX_CHARS: usize = 100;

impl Name {
    pub fn parse(field: &'static str, text: &str) -> Result<Self, FieldError> {
        let normalized: String = text.nfc().collect();
        let words: Vec<&str> = normalized.split_whitespace().collect();
        let name = words.join(" ");
        if name.is_empty() || name.chars().count() > NAME_MAX_CHARS {
            return Err(FieldError::new(field, "must be 1 to 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldError::new(field, "must not hold control characters"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What name search compares: no diacritics, lower case ("Nguyễn Văn An" → "nguyen van an").
    pub fn search_key(&self) -> String {
        search_key(&self.0)
    }
}

/// Folds a name or a search query the same way, so "nguyen van an" finds "Nguyễn Văn An".
pub fn search_key(text: &str) -> String {
    fold_to_ascii(text)
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gender {
    Female,
    Male,
    Other,
    Unknown,
}

impl Gender {
    pub const ALL: [Gender; 4] = [Gender::Female, Gender::Male, Gender::Other, Gender::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }

    /// English codes, and the Vietnamese words a commune's spreadsheet uses ("Nữ", "Nam",
    /// "Khác"); an empty cell is unknown.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        match search_key(text).as_str() {
            "female" | "f" | "nu" => Ok(Gender::Female),
            "male" | "m" | "nam" => Ok(Gender::Male),
            "other" | "khac" => Ok(Gender::Other),
            "unknown" | "" | "khong ro" => Ok(Gender::Unknown),
            _ => Err(FieldError::new(
                "gender",
                "must be female, male, other or unknown (Nữ, Nam, Khác)",
            )),
        }
    }
}

/// Whether a resident still lives in the commune.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResidentStatus {
    Living,
    MovedAway,
    Deceased,
}

impl ResidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResidentStatus::Living => "living",
            ResidentStatus::MovedAway => "moved_away",
            ResidentStatus::Deceased => "deceased",
        }
    }

    pub fn parse(text: &str) -> Result<Self, FieldError> {
        match search_key(text).as_str() {
            "living" | "" | "dang o" | "thuong tru" => Ok(ResidentStatus::Living),
            "moved_away" | "chuyen di" => Ok(ResidentStatus::MovedAway),
            "deceased" | "da mat" | "qua doi" => Ok(ResidentStatus::Deceased),
            _ => Err(FieldError::new(
                "status",
                "must be living, moved_away or deceased (đang ở, chuyển đi, đã mất)",
            )),
        }
    }
}

/// Earliest birth year the registry accepts; anything before is a typing mistake.
pub const EARLIEST_BIRTH_YEAR: i32 = 1900;

/// A birth year between 1900 and the year of `today`.
pub fn parse_birth_year(text: &str, today: NaiveDate) -> Result<i32, FieldError> {
    let year: i32 = text
        .trim()
        .parse()
        .map_err(|_| FieldError::new("birth_year", "must be a year such as 1985"))?;
    birth_year(year, today)
}

/// A birth year given as a number (the API's JSON), checked as [`parse_birth_year`] checks text.
pub fn birth_year(year: i32, today: NaiveDate) -> Result<i32, FieldError> {
    use chrono::Datelike;
    if !(EARLIEST_BIRTH_YEAR..=today.year()).contains(&year) {
        return Err(FieldError::new(
            "birth_year",
            format!("must be between {EARLIEST_BIRTH_YEAR} and {}", today.year()),
        ));
    }
    Ok(year)
}

/// A calendar day as `YYYY-MM-DD`, or as Vietnamese spreadsheets write it, `DD/MM/YYYY`.
pub fn parse_date(field: &'static str, text: &str) -> Result<NaiveDate, FieldError> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%d/%m/%Y"))
        .map_err(|_| FieldError::new(field, "must be a date such as 2026-09-01 or 01/09/2026"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stored_nfc_with_single_spaces_and_searched_without_diacritics() {
        let decomposed = "Nguye\u{0302}\u{0303}n  Va\u{0306}n   An ";
        let name = Name::parse("full_name", decomposed).unwrap();
        assert_eq!(name.as_str(), "Nguyễn Văn An");
        assert_eq!(name.search_key(), "nguyen van an");
        assert_eq!(search_key("ĐẶNG thị  Hồng"), "dang thi hong");
        assert!(Name::parse("full_name", "   ").is_err());
        assert!(Name::parse("full_name", &"a".repeat(101)).is_err());
    }

    #[test]
    fn codes_are_short_and_plain() {
        assert_eq!(
            Code::parse("code", " HH-0042 ").unwrap().as_str(),
            "HH-0042"
        );
        assert!(Code::parse("code", "").is_err());
        assert!(Code::parse("code", "xóm 1").is_err());
        assert!(Code::parse("code", &"A".repeat(33)).is_err());
        assert!(Code::parse_hamlet("code", "Total").is_err());
        assert!(Code::parse_hamlet("code", "unplaced").is_err());
        assert_eq!(Code::parse_hamlet("code", "KC").unwrap().as_str(), "KC");
    }

    #[test]
    fn vietnamese_spreadsheet_words_are_understood() {
        assert_eq!(Gender::parse("Nữ").unwrap(), Gender::Female);
        assert_eq!(Gender::parse("NAM").unwrap(), Gender::Male);
        assert_eq!(Gender::parse("").unwrap(), Gender::Unknown);
        assert!(Gender::parse("x").is_err());
        assert_eq!(
            ResidentStatus::parse("Chuyển đi").unwrap(),
            ResidentStatus::MovedAway
        );
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(parse_birth_year("1985", today).unwrap(), 1985);
        assert!(parse_birth_year("2027", today).is_err());
        assert!(parse_birth_year("85", today).is_err());
        assert_eq!(
            parse_date("d", "01/09/2026").unwrap(),
            NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()
        );
        assert!(parse_date("d", "2026-13-01").is_err());
    }
}
