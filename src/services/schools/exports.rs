//! A collection run as a spreadsheet for the school's accountant: CSV (as Excel on Windows
//! opens it) or an Excel workbook, the whole run or one class.
//!
//! One row per pupil charged in the run: class, pupil code, name, what each of the run's fee
//! items charged before reductions, the reductions, what is to pay, what was paid online and in
//! cash towards the run's charges (cancelled receipts not counted), what is still owed and the
//! status; then a total row. A class's export is the same rows filtered to the class the
//! charges were posted for, so its totals are that class's share of the run's.

use std::collections::HashMap;

use rust_xlsxwriter::{Format, Workbook, XlsxError};
use uuid::Uuid;

use super::{SchoolError, SchoolService};
use crate::domain::schools::PaidState;
use crate::services::auth::Caller;
use crate::store::school_io::PaidByMethod;
use crate::store::schools::ChargeRow;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Xlsx,
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
        }
    }
}

/// A file to download: its name (Vietnamese, as the school wrote the run and class), type and
/// bytes.
pub struct ExportFile {
    pub file_name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// One pupil's line of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetRow {
    pub class_name: String,
    pub code: String,
    pub full_name: String,
    /// What each of the sheet's items charged before reductions; None when not charged.
    pub item_gross: Vec<Option<i64>>,
    pub reductions: i64,
    /// What corrections added to (or, negative, took off) the charges since posting.
    pub adjustments: i64,
    pub charged: i64,
    pub paid_online: i64,
    pub paid_cash: i64,
    pub owed: i64,
    pub status: &'static str,
}

/// The run's table: the fee item columns and one row per pupil.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    pub items: Vec<String>,
    pub rows: Vec<SheetRow>,
}

const FIRST_COLUMNS: [&str; 3] = ["Lớp", "Mã học sinh", "Họ và tên"];
const LAST_COLUMNS: [&str; 7] = [
    "Miễn giảm",
    "Điều chỉnh",
    "Phải nộp",
    "Đã nộp trực tuyến",
    "Đã nộp tiền mặt",
    "Còn nợ",
    "Trạng thái",
];
const TOTAL_LABEL: &str = "Tổng cộng";

fn status_text(state: PaidState) -> &'static str {
    match state {
        PaidState::Paid => "Đã nộp đủ",
        PaidState::Partly => "Nộp một phần",
        PaidState::Unpaid => "Chưa nộp",
    }
}

/// Builds the table from the run's charges (of the class, if one is asked) and what was paid
/// towards them by method. What each pupil paid online and in cash must add up to what the
/// charges record as paid: otherwise the stored data disagree and no file is made.
pub fn sheet(
    items: &[(Uuid, String)],
    charges: &[ChargeRow],
    paid: &[PaidByMethod],
    class_names: &HashMap<Uuid, String>,
    pupils: &HashMap<Uuid, (String, String)>,
) -> Result<Sheet, StoreError> {
    let column: HashMap<Uuid, usize> = items
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut rows: HashMap<(Uuid, Uuid), SheetRow> = HashMap::new();
    // A reversed charge owes nothing and what was paid on it went back to the pupil's credit.
    for charge in charges.iter().filter(|c| c.reversed_at.is_none()) {
        let (code, full_name) = pupils
            .get(&charge.pupil_id)
            .ok_or_else(|| StoreError::Corrupt(format!("charge of no pupil {}", charge.id)))?;
        let row = rows
            .entry((charge.class_id, charge.pupil_id))
            .or_insert_with(|| SheetRow {
                class_name: class_names
                    .get(&charge.class_id)
                    .cloned()
                    .unwrap_or_default(),
                code: code.clone(),
                full_name: full_name.clone(),
                item_gross: vec![None; items.len()],
                reductions: 0,
                adjustments: 0,
                charged: 0,
                paid_online: 0,
                paid_cash: 0,
                owed: 0,
                status: "",
            });
        let at = *column
            .get(&charge.fee_item_id)
            .ok_or_else(|| StoreError::Corrupt(format!("charge {} of no run item", charge.id)))?;
        *row.item_gross[at].get_or_insert(0) += charge.gross;
        row.reductions += charge.exemption;
        row.adjustments += charge.amount - (charge.gross - charge.exemption);
        row.charged += charge.amount;
        row.owed += charge.amount - charge.paid;
    }
    // Payments towards charges left out (another class's) have no row and are not counted.
    for part in paid {
        if let Some(row) = rows.get_mut(&(part.class_id, part.pupil_id)) {
            match part.method.as_str() {
                "cash" => row.paid_cash += part.amount,
                _ => row.paid_online += part.amount,
            }
        }
    }
    let mut rows: Vec<SheetRow> = rows.into_values().collect();
    for row in &mut rows {
        let paid = row.paid_online + row.paid_cash;
        if paid != row.charged - row.owed {
            return Err(StoreError::Corrupt(format!(
                "pupil {}: allocations {paid} but charges paid {}",
                row.code,
                row.charged - row.owed
            )));
        }
        row.status = status_text(PaidState::of(row.charged, paid));
    }
    rows.sort_by(|a, b| (&a.class_name, &a.code).cmp(&(&b.class_name, &b.code)));
    Ok(Sheet {
        items: items.iter().map(|(_, name)| name.clone()).collect(),
        rows,
    })
}

impl Sheet {
    fn header(&self) -> Vec<&str> {
        FIRST_COLUMNS
            .iter()
            .copied()
            .chain(self.items.iter().map(String::as_str))
            .chain(LAST_COLUMNS)
            .collect()
    }

    /// The money columns of a row, in order (an item not charged counts as 0 in the total).
    fn amounts(row: &SheetRow) -> impl Iterator<Item = Option<i64>> + '_ {
        row.item_gross.iter().copied().chain(
            [
                row.reductions,
                row.adjustments,
                row.charged,
                row.paid_online,
                row.paid_cash,
                row.owed,
            ]
            .map(Some),
        )
    }

    fn totals(&self) -> Vec<i64> {
        let mut totals = vec![0; self.items.len() + 6];
        for row in &self.rows {
            for (total, amount) in totals.iter_mut().zip(Self::amounts(row)) {
                *total += amount.unwrap_or(0);
            }
        }
        totals
    }

    /// UTF-8 with a byte order mark and CRLF line ends: Excel on Windows then opens the
    /// Vietnamese text intact (without the mark it reads the file in the machine's code
    /// page). Amounts are plain whole numbers, so Excel reads them as numbers.
    pub fn to_csv(&self) -> Vec<u8> {
        let mut bytes = "\u{feff}".as_bytes().to_vec();
        {
            let mut writer = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(&mut bytes);
            let mut write = |record: Vec<String>| {
                writer
                    .write_record(&record)
                    .expect("writing CSV to memory cannot fail")
            };
            write(self.header().into_iter().map(str::to_owned).collect());
            for row in &self.rows {
                let mut record = vec![
                    row.class_name.clone(),
                    row.code.clone(),
                    row.full_name.clone(),
                ];
                record.extend(
                    Self::amounts(row).map(|a| a.map(|a| a.to_string()).unwrap_or_default()),
                );
                record.push(row.status.to_owned());
                write(record);
            }
            let mut total = vec![TOTAL_LABEL.to_owned(), String::new(), String::new()];
            total.extend(self.totals().iter().map(i64::to_string));
            total.push(String::new());
            write(total);
            writer.flush().expect("writing CSV to memory cannot fail");
        }
        bytes
    }

    /// An Excel workbook: one sheet, the header bold and frozen, amounts as numbers with
    /// thousands grouped, the total row bold.
    pub fn to_xlsx(&self) -> Result<Vec<u8>, XlsxError> {
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet().set_name("Đợt thu")?;
        let bold = Format::new().set_bold();
        let money = Format::new().set_num_format("#,##0");
        let bold_money = Format::new().set_bold().set_num_format("#,##0");
        for (column, title) in self.header().into_iter().enumerate() {
            sheet.write_string_with_format(0, column as u16, title, &bold)?;
        }
        let first_amount: u16 = FIRST_COLUMNS.len() as u16;
        let mut line: u32 = 0;
        for row in &self.rows {
            line += 1;
            sheet.write_string(line, 0, &row.class_name)?;
            sheet.write_string(line, 1, &row.code)?;
            sheet.write_string(line, 2, &row.full_name)?;
            let mut column = first_amount;
            for amount in Self::amounts(row) {
                if let Some(amount) = amount {
                    // Whole đồng up to 10^15 are exact in a double, Excel's number.
                    sheet.write_number_with_format(line, column, amount as f64, &money)?;
                }
                column += 1;
            }
            sheet.write_string(line, column, row.status)?;
        }
        line += 1;
        sheet.write_string_with_format(line, 0, TOTAL_LABEL, &bold)?;
        for (i, total) in self.totals().into_iter().enumerate() {
            sheet.write_number_with_format(
                line,
                first_amount + i as u16,
                total as f64,
                &bold_money,
            )?;
        }
        sheet.set_column_width(2, 28)?;
        sheet.set_freeze_panes(1, 0)?;
        workbook.save_to_buffer()
    }
}

/// The file name: the run's name (and the class's), with characters a file name cannot hold
/// replaced.
fn file_name(run_name: &str, class_name: Option<&str>, format: ExportFormat) -> String {
    let mut name = format!("Đợt thu {run_name}");
    if let Some(class) = class_name {
        name.push_str(&format!(" - Lớp {class}"));
    }
    let name: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '-',
            c if c.is_control() => '-',
            c => c,
        })
        .collect();
    format!("{name}.{}", format.extension())
}

impl SchoolService {
    /// A run's pupils (or one class's) as CSV or an Excel workbook.
    pub async fn export_run(
        &self,
        caller: &Caller,
        school_id: Uuid,
        run_id: Uuid,
        class_id: Option<Uuid>,
        format: ExportFormat,
    ) -> Result<ExportFile, SchoolError> {
        self.school(caller, school_id).await?;
        let mut unit = self.store.school_snapshot().await?;
        let run = Self::run_of(&mut unit, school_id, run_id, false).await?;
        let class = match class_id {
            Some(id) => Some(Self::class_of(&mut unit, school_id, id).await?),
            None => None,
        };
        let items: Vec<(Uuid, String)> = unit
            .run_items(run_id)
            .await?
            .into_iter()
            .map(|item| (item.id, item.name))
            .collect();
        let charges: Vec<ChargeRow> = unit
            .run_charges(run_id)
            .await?
            .into_iter()
            .filter(|charge| class_id.is_none_or(|id| charge.class_id == id))
            .collect();
        let paid = unit.run_paid_by_method(run_id).await?;
        let class_names: HashMap<Uuid, String> = unit
            .school_classes(school_id)
            .await?
            .into_iter()
            .map(|class| (class.id, class.name))
            .collect();
        let mut pupils = HashMap::new();
        for charge in &charges {
            if !pupils.contains_key(&charge.pupil_id) {
                let pupil = Self::pupil_of(&mut unit, school_id, charge.pupil_id).await?;
                pupils.insert(pupil.id, (pupil.code, pupil.full_name));
            }
        }
        unit.rollback().await?;
        let sheet = sheet(&items, &charges, &paid, &class_names, &pupils)?;
        let bytes = match format {
            ExportFormat::Csv => sheet.to_csv(),
            ExportFormat::Xlsx => sheet
                .to_xlsx()
                .map_err(|e| SchoolError::Render(format!("Excel workbook: {e}")))?,
        };
        Ok(ExportFile {
            file_name: file_name(&run.name, class.as_ref().map(|c| c.name.as_str()), format),
            content_type: format.content_type(),
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(
        pupil: Uuid,
        class: Uuid,
        item: Uuid,
        gross: i64,
        exemption: i64,
        paid: i64,
    ) -> ChargeRow {
        ChargeRow {
            id: Uuid::new_v4(),
            run_id: Uuid::nil(),
            run_name: "Tháng 9".into(),
            due_on: chrono::NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
            pupil_id: pupil,
            class_id: class,
            fee_item_id: item,
            item_name: String::new(),
            fund: "school".into(),
            mandatory: true,
            gross,
            exemption,
            amount: gross - exemption,
            paid,
            created_at: 0,
            reversed_at: None,
        }
    }

    #[test]
    fn a_row_adds_up_and_the_totals_sum_the_rows() {
        let (an, binh, class, meals, books) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let items = vec![(meals, "Tiền ăn".to_owned()), (books, "Sách vở".to_owned())];
        let charges = vec![
            charge(an, class, meals, 400_000, 100_000, 300_000),
            charge(an, class, books, 50_000, 0, 0),
            charge(binh, class, meals, 400_000, 0, 0),
        ];
        let paid = vec![
            PaidByMethod {
                pupil_id: an,
                class_id: class,
                method: "online".into(),
                amount: 200_000,
            },
            PaidByMethod {
                pupil_id: an,
                class_id: class,
                method: "cash".into(),
                amount: 100_000,
            },
        ];
        let classes = HashMap::from([(class, "3A".to_owned())]);
        let pupils = HashMap::from([
            (an, ("HS01".to_owned(), "Nguyễn Văn An".to_owned())),
            (binh, ("HS02".to_owned(), "Trần Thị Bình".to_owned())),
        ]);
        let sheet = sheet(&items, &charges, &paid, &classes, &pupils).unwrap();
        let first = &sheet.rows[0];
        assert_eq!(first.code, "HS01");
        assert_eq!(first.item_gross, vec![Some(400_000), Some(50_000)]);
        assert_eq!(
            (first.reductions, first.charged, first.owed),
            (100_000, 350_000, 50_000)
        );
        assert_eq!((first.paid_online, first.paid_cash), (200_000, 100_000));
        assert_eq!(first.status, "Nộp một phần");
        assert_eq!(sheet.rows[1].item_gross, vec![Some(400_000), None]);
        assert_eq!(sheet.rows[1].status, "Chưa nộp");
        assert_eq!(
            sheet.totals(),
            vec![800_000, 50_000, 100_000, 0, 750_000, 200_000, 100_000, 450_000]
        );
        let csv = String::from_utf8(sheet.to_csv()).unwrap();
        assert!(csv
            .starts_with("\u{feff}Lớp,Mã học sinh,Họ và tên,Tiền ăn,Sách vở,Miễn giảm,Điều chỉnh"));
        assert!(
            csv.contains("\r\n3A,HS02,Trần Thị Bình,400000,,0,0,400000,0,0,400000,Chưa nộp\r\n")
        );
        assert!(csv.ends_with("Tổng cộng,,,800000,50000,100000,0,750000,200000,100000,450000,\r\n"));
    }

    #[test]
    fn payments_that_disagree_with_the_charges_make_no_file() {
        let (pupil, class, item) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let charges = vec![charge(pupil, class, item, 100, 0, 100)];
        let pupils = HashMap::from([(pupil, ("HS01".to_owned(), "An".to_owned()))]);
        let result = sheet(
            &[(item, "x".into())],
            &charges,
            &[],
            &HashMap::new(),
            &pupils,
        );
        assert!(matches!(result, Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn file_names_keep_vietnamese_and_drop_what_a_file_name_cannot_hold() {
        assert_eq!(
            file_name("Tháng 9/2026", Some("3A"), ExportFormat::Xlsx),
            "Đợt thu Tháng 9-2026 - Lớp 3A.xlsx"
        );
    }
}
