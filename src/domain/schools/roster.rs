//! A school's class roster as the accountant keeps it in Excel: one row per pupil, read with
//! the registry import's reader (`domain::registry::import`: UTF-8 with or without BOM, comma or
//! semicolon, English or Vietnamese headers, every bad line by its number).
//!
//! Columns. Required: `class` (Lớp), `pupil_code` (Mã học sinh), `full_name` (Họ và tên).
//! Optional: `household_code` (Mã hộ, a household of the commune registry), `guardian_name`
//! (Họ tên phụ huynh), `guardian_phone` (Số điện thoại phụ huynh), `joined_on` (Ngày vào lớp).
//! A row needs a household code or a guardian's name.

use chrono::NaiveDate;

use super::parse_pupil_code;
use crate::domain::payee::parse_phone;
use crate::domain::registry::import::{read_rows, Cells, Column, LineError};
use crate::domain::registry::{parse_date, Code, Name};

/// One pupil row, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    pub line: usize,
    pub class_name: String,
    pub pupil_code: String,
    pub full_name: String,
    pub household_code: Option<String>,
    pub guardian_name: Option<String>,
    pub guardian_phone: Option<String>,
    pub joined_on: Option<NaiveDate>,
}

/// The rows without problems and every problem; apply only when `errors` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterImport {
    pub rows: Vec<RosterRow>,
    pub errors: Vec<LineError>,
}

#[derive(Clone, Copy)]
enum C {
    Class,
    PupilCode,
    FullName,
    HouseholdCode,
    GuardianName,
    GuardianPhone,
    JoinedOn,
}

impl From<C> for usize {
    fn from(column: C) -> usize {
        column as usize
    }
}

const COLUMNS: [Column; 7] = [
    Column::new("class", "Lớp", &["ten lop"]),
    Column::new("pupil_code", "Mã học sinh", &["ma hs"]),
    Column::new("full_name", "Họ và tên", &["ho ten", "ho ten hoc sinh"]),
    Column::new("household_code", "Mã hộ", &["ma ho gia dinh"]),
    Column::new(
        "guardian_name",
        "Họ tên phụ huynh",
        &["phu huynh", "ten phu huynh"],
    ),
    Column::new(
        "guardian_phone",
        "Số điện thoại phụ huynh",
        &["sdt phu huynh", "dien thoai phu huynh"],
    ),
    Column::new("joined_on", "Ngày vào lớp", &[]),
];

const REQUIRED: &[&[C]] = &[&[C::Class], &[C::PupilCode], &[C::FullName]];

pub fn parse_roster(bytes: &[u8]) -> RosterImport {
    let mut import = RosterImport::default();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    read_rows(
        bytes,
        &COLUMNS,
        REQUIRED,
        "pupils",
        &mut import.errors,
        |line, cells: &Cells<'_>, errors| {
            let error = |field: &'static str, problem: String| LineError {
                line,
                field: Some(field),
                problem,
            };
            let optional = |column: C| Some(cells.get(column.into())).filter(|t| !t.is_empty());
            let before = errors.len();
            let class_name = cells.get(C::Class.into()).to_owned();
            if class_name.is_empty() {
                errors.push(error("class", "is empty".into()));
            }
            let pupil_code = parse_pupil_code(cells.get(C::PupilCode.into()))
                .map_err(|problem| errors.push(error("pupil_code", problem)))
                .ok();
            if let Some(code) = &pupil_code {
                if let Some(first) = seen.insert(code.to_ascii_uppercase(), line) {
                    errors.push(error(
                        "pupil_code",
                        format!("{code} is also on line {first}"),
                    ));
                }
            }
            let full_name = Name::parse("full_name", cells.get(C::FullName.into()))
                .map_err(|e| errors.push(error("full_name", e.to_string())))
                .ok();
            let household_code = optional(C::HouseholdCode).and_then(|text| {
                Code::parse("household_code", text)
                    .map_err(|e| errors.push(error("household_code", e.to_string())))
                    .ok()
            });
            let guardian_name = optional(C::GuardianName).and_then(|text| {
                Name::parse("guardian_name", text)
                    .map_err(|e| errors.push(error("guardian_name", e.to_string())))
                    .ok()
            });
            let guardian_phone = optional(C::GuardianPhone).and_then(|text| {
                parse_phone(text)
                    .map_err(|e| errors.push(error("guardian_phone", e.to_string())))
                    .ok()
            });
            let joined_on = optional(C::JoinedOn).and_then(|text| {
                parse_date("joined_on", text)
                    .map_err(|e| errors.push(error("joined_on", e.to_string())))
                    .ok()
            });
            if household_code.is_none()
                && guardian_name.is_none()
                && optional(C::HouseholdCode).is_none()
                && optional(C::GuardianName).is_none()
            {
                errors.push(LineError {
                    line,
                    field: None,
                    problem: "needs a household_code (Mã hộ) or a guardian_name (Họ tên phụ huynh)"
                        .into(),
                });
            }
            if errors.len() > before {
                return;
            }
            let (Some(pupil_code), Some(full_name)) = (pupil_code, full_name) else {
                return;
            };
            import.rows.push(RosterRow {
                line,
                class_name,
                pupil_code,
                full_name: full_name.as_str().to_owned(),
                household_code: household_code.map(|c| c.as_str().to_owned()),
                guardian_name: guardian_name.map(|n| n.as_str().to_owned()),
                guardian_phone,
                joined_on,
            });
        },
    );
    import.errors.sort_by_key(|e| e.line);
    import
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excel_roster_with_bom_semicolons_and_vietnamese_headers_reads() {
        let file = "\u{feff}Lớp;Mã học sinh;Họ và tên;Họ tên phụ huynh;Số điện thoại phụ huynh\n\
                    3A;HS01;Nguyễn  Văn An;Nguyễn Thị Bình;0912 345 678\n\
                    \n\
                    3B;HS02;Lê Thị Chi;Lê Văn Dũng;\n";
        let import = parse_roster(file.as_bytes());
        assert_eq!(import.errors, vec![]);
        assert_eq!(import.rows.len(), 2);
        assert_eq!(import.rows[0].full_name, "Nguyễn Văn An");
        assert_eq!(import.rows[0].guardian_phone.as_deref(), Some("0912345678"));
        assert_eq!(import.rows[1].line, 4);
        assert_eq!(import.rows[1].class_name, "3B");
    }

    #[test]
    fn every_bad_line_is_reported_by_its_number() {
        let file = "class,pupil_code,full_name,guardian_name,joined_on\n\
                    3A,HS01,An,Bình,2026-09-05\n\
                    3A,HS 02,Chi,Dũng,\n\
                    3A,HS01,Em,Gia,\n\
                    ,HS03,Hà,,31/02/2026\n";
        let import = parse_roster(file.as_bytes());
        let lines: Vec<(usize, Option<&str>)> =
            import.errors.iter().map(|e| (e.line, e.field)).collect();
        assert_eq!(
            lines,
            vec![
                (3, Some("pupil_code")),
                (4, Some("pupil_code")),
                (5, Some("class")),
                (5, Some("joined_on")),
                (5, None),
            ]
        );
        assert_eq!(import.rows.len(), 1);
    }
}
