//! Reading the registry CSV files commune staff keep in Excel: the residents list (one row per
//! resident, with its household and hamlet) and the door-to-door survey answers. Pure: the
//! caller passes the file's bytes and today's date, and upserts the rows all-or-nothing, so
//! every problem in the file is reported at once, each on the line Excel shows.
//!
//! # Format
//!
//! - UTF-8 text; the byte-order mark Excel's "CSV UTF-8" writes is ignored. Comma-separated, or
//!   semicolon-separated when the header line has semicolons and no commas (Excel in locales
//!   whose decimal separator is a comma). Fields may be quoted, and a quoted field may span
//!   lines. Spaces around a field and rows that are entirely empty are ignored.
//! - The first row is the header. A column is found by its English or Vietnamese name,
//!   compared without case, diacritics, `_` or a trailing `?`/`:`, so `Mã xóm`, `MA XOM` and
//!   `hamlet_code` are one column. Columns may come in any order; unknown columns are ignored.
//! - Line 1 is the header; a row is numbered by the line it starts on.
//! - Yes/no cells take `có`/`không`, `yes`/`no`, `1`/`0` or `x` (yes); dates take `YYYY-MM-DD`
//!   or `DD/MM/YYYY` and may not be after the import day.
//!
//! Residents file columns. Required: `hamlet_code` (Mã xóm), `household_code` (Mã hộ),
//! `resident_code` (Mã nhân khẩu), `full_name` (Họ và tên, Họ tên), and `birth_year` (Năm sinh)
//! or `birth_date` (Ngày sinh) or both. Optional: `hamlet_name` (Tên xóm), `address` (Địa chỉ),
//! `head` (Chủ hộ), `gender` (Giới tính), `phone` (Số điện thoại, SĐT), `status` (Tình trạng,
//! living when empty), `left_on` (Ngày chuyển đi/mất; required unless living), `living_since`
//! (Cư trú từ ngày), `consent` (Đồng ý thống kê), `consent_on` (Ngày đồng ý).
//!
//! Survey file columns, all required but `channel`: `resident_code` (Mã nhân khẩu),
//! `surveyed_on` (Ngày khảo sát), `used_online_payment` (Có thanh toán trực tuyến 12 tháng
//! qua; an empty cell is refused, not read as no), `channel` (Kênh).

use std::collections::HashMap;
use std::fmt;

use chrono::{Datelike, NaiveDate};

use super::{
    parse_birth_year, parse_date, search_key, Code, FieldError, Gender, Name, ResidentStatus,
    EARLIEST_BIRTH_YEAR,
};
use crate::domain::csv_lines::{line_at, quoted, LineCounter};
use crate::domain::payee::parse_phone;

/// Longest address accepted, in characters.
pub const ADDRESS_MAX_CHARS: usize = 200;

/// Longest survey channel ("Ví MoMo", "chuyển khoản ngân hàng") accepted, in characters.
pub const CHANNEL_MAX_CHARS: usize = 50;

/// One problem in an imported file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line of the file as Excel shows it; the header is line 1.
    pub line: usize,
    /// The column, by its English name; `None` for a problem with the whole row or file.
    pub field: Option<&'static str>,
    pub problem: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "line {}: {field} {}", self.line, self.problem),
            None => write!(f, "line {}: {}", self.line, self.problem),
        }
    }
}

/// A resident's answer about consent to link their payments for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consent {
    pub given: bool,
    /// The `consent_on` column, or the import day when it is empty.
    pub effective_on: NaiveDate,
    /// Whether the file gave the day (`consent_on`), rather than the import's day.
    pub dated: bool,
}

/// One row of the residents file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentRow {
    pub line: usize,
    pub hamlet_code: Code,
    pub hamlet_name: Option<Name>,
    pub household_code: Code,
    pub address: Option<String>,
    /// Marked as the head of the household (at most one per household in a file).
    pub is_head: bool,
    pub resident_code: Code,
    pub full_name: Name,
    /// From `birth_year`, or from the year of `birth_date` when only the date is given.
    pub birth_year: i32,
    pub birth_date: Option<NaiveDate>,
    pub gender: Gender,
    pub phone: Option<String>,
    pub status: ResidentStatus,
    /// Set exactly when `status` is not living.
    pub left_on: Option<NaiveDate>,
    pub living_since: Option<NaiveDate>,
    /// `None` when the consent column is empty or absent: the file says nothing about it.
    pub consent: Option<Consent>,
}

/// The residents file: its rows without problems, and every problem found. Import the rows only
/// when `errors` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidentImport {
    pub rows: Vec<ResidentRow>,
    /// In line order.
    pub errors: Vec<LineError>,
}

/// One answer of the survey file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyRow {
    pub line: usize,
    pub resident_code: Code,
    pub surveyed_on: NaiveDate,
    pub used_online_payment: bool,
    pub channel: Option<String>,
}

/// The survey file: its rows without problems, and every problem found. Import the rows only
/// when `errors` is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SurveyImport {
    pub rows: Vec<SurveyRow>,
    /// In line order.
    pub errors: Vec<LineError>,
}

/// A column as the header may name it.
pub(crate) struct Column {
    name: &'static str,
    /// As the commune's template writes it, for messages.
    vietnamese: &'static str,
    /// Other spellings, already folded as [`header_key`] folds a header cell.
    aliases: &'static [&'static str],
}

impl Column {
    pub(crate) const fn new(
        name: &'static str,
        vietnamese: &'static str,
        aliases: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            vietnamese,
            aliases,
        }
    }

    fn matches(&self, key: &str) -> bool {
        key == header_key(self.name)
            || key == header_key(self.vietnamese)
            || self.aliases.contains(&key)
    }

    fn both_names(&self) -> String {
        format!("{} ({})", self.name, self.vietnamese)
    }
}

fn header_key(text: &str) -> String {
    search_key(&text.replace('_', " "))
        .trim_end_matches(['?', ':'])
        .trim_end()
        .to_owned()
}

/// Positions into [`RESIDENT_COLUMNS`].
#[derive(Clone, Copy)]
enum R {
    HamletCode,
    HamletName,
    HouseholdCode,
    Address,
    Head,
    ResidentCode,
    FullName,
    BirthYear,
    BirthDate,
    Gender,
    Phone,
    Status,
    LeftOn,
    LivingSince,
    Consent,
    ConsentOn,
}

const RESIDENT_COLUMNS: [Column; 16] = [
    Column::new("hamlet_code", "Mã xóm", &[]),
    Column::new("hamlet_name", "Tên xóm", &[]),
    Column::new("household_code", "Mã hộ", &["ma ho gia dinh"]),
    Column::new("address", "Địa chỉ", &[]),
    Column::new("head", "Chủ hộ", &["la chu ho"]),
    Column::new("resident_code", "Mã nhân khẩu", &[]),
    Column::new("full_name", "Họ và tên", &["ho ten"]),
    Column::new("birth_year", "Năm sinh", &[]),
    Column::new("birth_date", "Ngày sinh", &[]),
    Column::new("gender", "Giới tính", &[]),
    Column::new("phone", "Số điện thoại", &["dien thoai", "sdt"]),
    Column::new("status", "Tình trạng", &[]),
    Column::new(
        "left_on",
        "Ngày chuyển đi/mất",
        &["ngay chuyen di", "ngay mat", "ngay chuyen di / mat"],
    ),
    Column::new("living_since", "Cư trú từ ngày", &["o tu ngay"]),
    Column::new("consent", "Đồng ý thống kê", &[]),
    Column::new("consent_on", "Ngày đồng ý", &[]),
];

/// Each group must have one of its columns in the header.
const RESIDENT_REQUIRED: &[&[R]] = &[
    &[R::HamletCode],
    &[R::HouseholdCode],
    &[R::ResidentCode],
    &[R::FullName],
    &[R::BirthYear, R::BirthDate],
];

/// Positions into [`SURVEY_COLUMNS`].
#[derive(Clone, Copy)]
enum S {
    ResidentCode,
    SurveyedOn,
    UsedOnlinePayment,
    Channel,
}

const SURVEY_COLUMNS: [Column; 4] = [
    Column::new("resident_code", "Mã nhân khẩu", &[]),
    Column::new("surveyed_on", "Ngày khảo sát", &[]),
    Column::new(
        "used_online_payment",
        "Có thanh toán trực tuyến 12 tháng qua",
        &["thanh toan truc tuyen", "co thanh toan truc tuyen"],
    ),
    Column::new("channel", "Kênh", &["kenh thanh toan"]),
];

const SURVEY_REQUIRED: &[&[S]] = &[
    &[S::ResidentCode],
    &[S::SurveyedOn],
    &[S::UsedOnlinePayment],
];

/// A data row: its cells by column, empty for a column the header lacks or the row cut short.
pub(crate) struct Cells<'r> {
    record: &'r csv::StringRecord,
    positions: &'r [Option<usize>],
}

impl Cells<'_> {
    pub(crate) fn get(&self, column: usize) -> &str {
        self.positions[column]
            .and_then(|position| self.record.get(position))
            .unwrap_or("")
    }
}

/// Reads the header and calls `row` with each non-empty data row and its line, in file order.
/// File-level problems (not UTF-8, empty, missing columns) end up in `errors` and stop reading.
pub(crate) fn read_rows<C: Copy + Into<usize>>(
    bytes: &[u8],
    columns: &[Column],
    required: &[&[C]],
    what: &str,
    errors: &mut Vec<LineError>,
    mut row: impl FnMut(usize, &Cells<'_>, &mut Vec<LineError>),
) {
    let file_error = |line: usize, problem: String| LineError {
        line,
        field: None,
        problem,
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            errors.push(file_error(
                line_at(bytes, e.valid_up_to()),
                "is not UTF-8 text; save the file as \"CSV UTF-8\"".to_owned(),
            ));
            return;
        }
    };
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = if !first_line.contains(',') && first_line.contains(';') {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let mut lines_of = LineCounter::new(text);

    let missing_names = |present: &dyn Fn(usize) -> bool| -> Vec<String> {
        required
            .iter()
            .filter(|group| !group.iter().any(|&c| present(c.into())))
            .map(|group| {
                group
                    .iter()
                    .map(|&c| columns[c.into()].both_names())
                    .collect::<Vec<_>>()
                    .join(" or ")
            })
            .collect()
    };
    let header = match records.next() {
        Some(Ok(header)) => header,
        _ => {
            errors.push(file_error(
                1,
                format!(
                    "the file is empty; the first row must name the columns {}",
                    missing_names(&|_| false).join(", ")
                ),
            ));
            return;
        }
    };
    let header_line = lines_of.record(&header);

    let mut positions = vec![None; columns.len()];
    for (position, cell) in header.iter().enumerate() {
        let key = header_key(cell);
        if key.is_empty() {
            continue;
        }
        let Some(index) = columns.iter().position(|c| c.matches(&key)) else {
            continue;
        };
        if positions[index].is_some() {
            errors.push(LineError {
                line: header_line,
                field: Some(columns[index].name),
                problem: format!("appears twice in the header ({}); keep one", quoted(cell)),
            });
            return;
        }
        positions[index] = Some(position);
    }
    let missing = missing_names(&|index| positions[index].is_some());
    if !missing.is_empty() {
        errors.push(file_error(
            header_line,
            format!(
                "the header lacks the column{} {}; the first row must name the columns",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ),
        ));
        return;
    }

    let mut any_row = false;
    for record in records {
        // A safety net: with UTF-8 checked and rows of any length, the reader cannot fail.
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(header_line, |p| {
                    usize::try_from(p.line()).unwrap_or(usize::MAX)
                });
                errors.push(file_error(line, "could not be read as CSV".to_owned()));
                return;
            }
        };
        let line = lines_of.record(&record);
        if record.iter().all(str::is_empty) {
            continue;
        }
        any_row = true;
        if record.len() > header.len() {
            errors.push(file_error(
                line,
                format!(
                    "has {} cells but the header has {}; put a value that contains the \
                     delimiter in double quotes",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        if record.iter().any(|cell| cell.contains('\0')) {
            errors.push(file_error(line, "contains a NUL character".to_owned()));
            continue;
        }
        row(
            line,
            &Cells {
                record: &record,
                positions: &positions,
            },
            errors,
        );
    }
    if !any_row {
        errors.push(file_error(
            header_line + 1,
            format!("the file has no {what} below the header"),
        ));
    }
}

impl From<R> for usize {
    fn from(column: R) -> usize {
        column as usize
    }
}

impl From<S> for usize {
    fn from(column: S) -> usize {
        column as usize
    }
}

/// Collects the problems of one line, so a row reports all its bad cells at once.
struct LineCheck<'e> {
    line: usize,
    errors: &'e mut Vec<LineError>,
    failed: bool,
}

impl LineCheck<'_> {
    fn refuse(&mut self, error: FieldError) {
        self.failed = true;
        self.errors.push(LineError {
            line: self.line,
            field: Some(error.field),
            problem: error.problem,
        });
    }

    fn ok<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|error| self.refuse(error)).ok()
    }
}

/// `None` for an empty cell.
fn optional<T>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, FieldError>,
) -> Result<Option<T>, FieldError> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

/// A date that has already happened: registry facts are recorded after the fact.
fn past_date(field: &'static str, text: &str, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    let date = parse_date(field, text)?;
    if date > today {
        return Err(FieldError::new(
            field,
            format!("{date} is after today ({today})"),
        ));
    }
    Ok(date)
}

/// The yes/no answers staff type: `có`/`không`, `yes`/`no`, `1`/`0`, or `x` for yes. `None` for
/// an empty cell.
fn yes_no(field: &'static str, text: &str) -> Result<Option<bool>, FieldError> {
    match search_key(text).as_str() {
        "" => Ok(None),
        "co" | "yes" | "y" | "x" | "1" | "true" => Ok(Some(true)),
        "khong" | "no" | "n" | "0" | "false" => Ok(Some(false)),
        _ => Err(FieldError::new(
            field,
            format!("{} is not có/không (yes/no, 1/0)", quoted(text)),
        )),
    }
}

/// Free text of at most `max` characters, on one line; `None` for an empty cell.
fn short_text(field: &'static str, text: &str, max: usize) -> Result<Option<String>, FieldError> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not hold control characters"));
    }
    Ok((!text.is_empty()).then_some(text))
}

/// Parses the residents file (the exact bytes of the upload). `today` is the import day: no
/// date may be after it, and consent without a date takes effect on it.
pub fn parse_residents(bytes: &[u8], today: NaiveDate) -> ResidentImport {
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    read_rows(
        bytes,
        &RESIDENT_COLUMNS,
        RESIDENT_REQUIRED,
        "residents",
        &mut errors,
        |line, cells, errors| {
            let mut check = LineCheck {
                line,
                errors,
                failed: false,
            };
            if let Some(row) = resident_row(&mut check, cells, today) {
                if !check.failed {
                    parsed.push(row);
                }
            }
        },
    );
    let rows = check_residents_across_rows(parsed, &mut errors);
    errors.sort_by_key(|error| error.line);
    ResidentImport { rows, errors }
}

fn resident_row(
    check: &mut LineCheck<'_>,
    cells: &Cells<'_>,
    today: NaiveDate,
) -> Option<ResidentRow> {
    let cell = |column: R| cells.get(column as usize);
    let name = |column: R| RESIDENT_COLUMNS[column as usize].name;

    let hamlet_code = check.ok(Code::parse_hamlet(name(R::HamletCode), cell(R::HamletCode)));
    let hamlet_name = check.ok(optional(cell(R::HamletName), |text| {
        Name::parse(name(R::HamletName), text)
    }));
    let household_code = check.ok(Code::parse(name(R::HouseholdCode), cell(R::HouseholdCode)));
    let address = check.ok(short_text(
        name(R::Address),
        cell(R::Address),
        ADDRESS_MAX_CHARS,
    ));
    let is_head = check.ok(yes_no(name(R::Head), cell(R::Head)).map(|head| head == Some(true)));
    let resident_code = check.ok(Code::parse(name(R::ResidentCode), cell(R::ResidentCode)));
    let full_name = check.ok(Name::parse(name(R::FullName), cell(R::FullName)));

    let birth_date = check.ok(optional(cell(R::BirthDate), |text| {
        let date = past_date(name(R::BirthDate), text, today)?;
        if date.year() < EARLIEST_BIRTH_YEAR {
            return Err(FieldError::new(
                name(R::BirthDate),
                format!("{date} is before {EARLIEST_BIRTH_YEAR}"),
            ));
        }
        Ok(date)
    }));
    let birth_year = match (cell(R::BirthYear), birth_date) {
        ("", Some(Some(date))) => Some(date.year()),
        // The bad date was reported; a second error for the year would say nothing new.
        ("", None) => None,
        ("", Some(None)) => {
            check.refuse(FieldError::new(
                name(R::BirthYear),
                "is empty; give the birth year or the birth date",
            ));
            None
        }
        (year, date) => {
            check.ok(
                parse_birth_year(year, today).and_then(|year| match date.flatten() {
                    Some(date) if date.year() != year => Err(FieldError::new(
                        name(R::BirthYear),
                        format!("is {year} but the birth date {date} is in {}", date.year()),
                    )),
                    _ => Ok(year),
                }),
            )
        }
    };

    let gender = check.ok(Gender::parse(cell(R::Gender)));
    let phone = check.ok(optional(cell(R::Phone), |text| {
        parse_phone(text).map_err(|_| {
            FieldError::new(
                name(R::Phone),
                format!(
                    "{} is not a phone number (9 to 15 digits, optionally a leading +)",
                    quoted(text)
                ),
            )
        })
    }));

    let status = check.ok(ResidentStatus::parse(cell(R::Status)));
    let left_on = check.ok(optional(cell(R::LeftOn), |text| {
        past_date(name(R::LeftOn), text, today)
    }));
    // The schema holds left_on exactly for residents who left; say so before the database does.
    match (status, left_on) {
        (Some(ResidentStatus::Living), Some(Some(_))) => check.refuse(FieldError::new(
            name(R::LeftOn),
            "must be empty while the status is living",
        )),
        (Some(ResidentStatus::MovedAway | ResidentStatus::Deceased), Some(None)) => {
            check.refuse(FieldError::new(
                name(R::LeftOn),
                "is required when the status is moved_away or deceased",
            ))
        }
        _ => {}
    }
    let living_since = check.ok(optional(cell(R::LivingSince), |text| {
        past_date(name(R::LivingSince), text, today)
    }));
    if let (Some(Some(since)), Some(Some(left))) = (living_since, left_on) {
        if left < since {
            check.refuse(FieldError::new(
                name(R::LeftOn),
                format!("{left} is before living_since {since}"),
            ));
        }
    }

    let consent_given = check.ok(yes_no(name(R::Consent), cell(R::Consent)));
    let consent_on = check.ok(optional(cell(R::ConsentOn), |text| {
        past_date(name(R::ConsentOn), text, today)
    }));
    let consent = match (consent_given, consent_on) {
        (Some(Some(given)), Some(on)) => Some(Some(Consent {
            given,
            effective_on: on.unwrap_or(today),
            dated: on.is_some(),
        })),
        (Some(None), Some(Some(_))) => {
            check.refuse(FieldError::new(
                name(R::ConsentOn),
                "is given but consent is empty; write có or không in consent",
            ));
            None
        }
        (Some(None), Some(None)) => Some(None),
        _ => None,
    };

    Some(ResidentRow {
        line: check.line,
        hamlet_code: hamlet_code?,
        hamlet_name: hamlet_name?,
        household_code: household_code?,
        address: address?,
        is_head: is_head?,
        resident_code: resident_code?,
        full_name: full_name?,
        birth_year: birth_year?,
        birth_date: birth_date?,
        gender: gender?,
        phone: phone?,
        status: status?,
        left_on: left_on?,
        living_since: living_since?,
        consent: consent?,
    })
}

/// What the rows before say about a household, to compare the next rows of it with.
struct HouseholdSeen {
    line: usize,
    hamlet_code: Code,
    head_line: Option<usize>,
    address: Option<(String, usize)>,
}

/// Checks what no single row can show: a resident listed twice, a household in two hamlets
/// or with two heads, a hamlet or household described two ways. Returns the rows that agree
/// with the rows before them.
fn check_residents_across_rows(
    parsed: Vec<ResidentRow>,
    errors: &mut Vec<LineError>,
) -> Vec<ResidentRow> {
    let mut residents: HashMap<Code, usize> = HashMap::new();
    let mut households: HashMap<Code, HouseholdSeen> = HashMap::new();
    let mut hamlet_names: HashMap<Code, (Name, usize)> = HashMap::new();
    let mut rows = Vec::with_capacity(parsed.len());
    for row in parsed {
        let before = errors.len();
        let mut refuse = |field: &'static str, problem: String| {
            errors.push(LineError {
                line: row.line,
                field: Some(field),
                problem,
            })
        };
        if let Some(first) = residents.get(&row.resident_code) {
            refuse(
                "resident_code",
                format!(
                    "{} is already on line {first}; each resident appears once",
                    row.resident_code.as_str()
                ),
            );
        }
        if let (Some(name), Some((first_name, first))) =
            (&row.hamlet_name, hamlet_names.get(&row.hamlet_code))
        {
            if name != first_name {
                refuse(
                    "hamlet_name",
                    format!(
                        "{} differs from {} for hamlet {} on line {first}",
                        quoted(name.as_str()),
                        quoted(first_name.as_str()),
                        row.hamlet_code.as_str()
                    ),
                );
            }
        }
        if let Some(seen) = households.get(&row.household_code) {
            if seen.hamlet_code != row.hamlet_code {
                refuse(
                    "hamlet_code",
                    format!(
                        "household {} is in hamlet {} on line {}; a household is in one hamlet",
                        row.household_code.as_str(),
                        seen.hamlet_code.as_str(),
                        seen.line
                    ),
                );
            }
            if let (true, Some(head_line)) = (row.is_head, seen.head_line) {
                refuse(
                    "head",
                    format!(
                        "household {} already has its head on line {head_line}; mark one head \
                         per household",
                        row.household_code.as_str()
                    ),
                );
            }
            if let (Some(address), Some((first_address, first))) = (&row.address, &seen.address) {
                if address != first_address {
                    refuse(
                        "address",
                        format!(
                            "{} differs from {} for household {} on line {first}",
                            quoted(address),
                            quoted(first_address),
                            row.household_code.as_str()
                        ),
                    );
                }
            }
        }
        if errors.len() > before {
            continue;
        }
        residents.insert(row.resident_code.clone(), row.line);
        if let Some(name) = &row.hamlet_name {
            hamlet_names
                .entry(row.hamlet_code.clone())
                .or_insert_with(|| (name.clone(), row.line));
        }
        let seen = households
            .entry(row.household_code.clone())
            .or_insert_with(|| HouseholdSeen {
                line: row.line,
                hamlet_code: row.hamlet_code.clone(),
                head_line: None,
                address: None,
            });
        if row.is_head {
            seen.head_line = Some(row.line);
        }
        if let (None, Some(address)) = (&seen.address, &row.address) {
            seen.address = Some((address.clone(), row.line));
        }
        rows.push(row);
    }
    rows
}

/// Parses the survey file (the exact bytes of the upload). `today` is the import day: no survey
/// may be dated after it.
pub fn parse_survey(bytes: &[u8], today: NaiveDate) -> SurveyImport {
    let mut rows: Vec<SurveyRow> = Vec::new();
    let mut errors = Vec::new();
    let mut answered: HashMap<(Code, NaiveDate), usize> = HashMap::new();
    read_rows(
        bytes,
        &SURVEY_COLUMNS,
        SURVEY_REQUIRED,
        "answers",
        &mut errors,
        |line, cells, errors| {
            let mut check = LineCheck {
                line,
                errors,
                failed: false,
            };
            let cell = |column: S| cells.get(column as usize);
            let name = |column: S| SURVEY_COLUMNS[column as usize].name;

            let resident_code = check.ok(Code::parse(name(S::ResidentCode), cell(S::ResidentCode)));
            let surveyed_on = check.ok(past_date(name(S::SurveyedOn), cell(S::SurveyedOn), today));
            // An empty answer is a question left unasked, not a no.
            let used = check.ok(
                yes_no(name(S::UsedOnlinePayment), cell(S::UsedOnlinePayment)).and_then(|answer| {
                    answer.ok_or_else(|| {
                        FieldError::new(name(S::UsedOnlinePayment), "is empty; write có or không")
                    })
                }),
            );
            let channel = check.ok(short_text(
                name(S::Channel),
                cell(S::Channel),
                CHANNEL_MAX_CHARS,
            ));
            let (Some(resident_code), Some(surveyed_on), Some(used_online_payment), Some(channel)) =
                (resident_code, surveyed_on, used, channel)
            else {
                return;
            };
            let key = (resident_code, surveyed_on);
            if let Some(first) = answered.get(&key) {
                check.refuse(FieldError::new(
                    name(S::ResidentCode),
                    format!(
                        "{} was already surveyed on {surveyed_on} on line {first}",
                        key.0.as_str()
                    ),
                ));
                return;
            }
            answered.insert(key.clone(), line);
            rows.push(SurveyRow {
                line,
                resident_code: key.0,
                surveyed_on,
                used_online_payment,
                channel,
            });
        },
    );
    errors.sort_by_key(|error| error.line);
    SurveyImport { rows, errors }
}

#[cfg(test)]
mod tests;
