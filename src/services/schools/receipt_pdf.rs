//! A cash receipt (biên lai thu tiền) as a PDF, with the same content as the printable page.
//!
//! The text is set in DejaVu Sans, embedded whole (`static/fonts/`, its licence beside it):
//! the PDF standard fonts have no Vietnamese letters, and an embedded TrueType font carries
//! every glyph with a ToUnicode map, so the PDF prints the same everywhere and its text can be
//! searched and copied with its diacritics.

use printpdf::{Color, Mm, PdfDocument, Rgb};

use crate::clock::to_datetime;
use crate::domain::number_words::grouped_dong;
use crate::domain::payee::Payee;
use crate::store::schools::{PupilRow, ReceiptRow};

const FONT: &[u8] = include_bytes!("../../../static/fonts/DejaVuSans.ttf");

/// A5 portrait: the size a receipt book's page has.
const PAGE_WIDTH: Mm = Mm(148.0);
const PAGE_HEIGHT: Mm = Mm(210.0);
const MARGIN: f32 = 15.0;
const VALUE_COLUMN: f32 = 58.0;

/// The receipt's title, its cancellation notice (when cancelled) and its labelled lines, in
/// the order both the printed page and the PDF show them.
pub struct ReceiptContent {
    pub school: String,
    pub number: i64,
    pub cancelled: Option<String>,
    pub lines: Vec<(&'static str, String)>,
}

pub fn content(school: &Payee, receipt: &ReceiptRow, pupil: &PupilRow) -> ReceiptContent {
    // Vietnam time (UTC+7) for the printed dates.
    let local = |micros: i64| {
        (to_datetime(micros) + chrono::Duration::hours(7))
            .format("%d/%m/%Y %H:%M")
            .to_string()
    };
    ReceiptContent {
        school: school.details.name.clone(),
        number: receipt.number,
        cancelled: receipt.cancelled_at.map(|when| {
            format!(
                "ĐÃ HỦY ngày {} – lý do: {}",
                local(when),
                receipt.cancel_reason.as_deref().unwrap_or("")
            )
        }),
        lines: vec![
            ("Họ tên người nộp:", receipt.payer_name.clone()),
            (
                "Học sinh:",
                format!("{} (mã {})", pupil.full_name, pupil.code),
            ),
            ("Số tiền:", format!("{} đồng", grouped_dong(receipt.amount))),
            ("Hình thức:", "Tiền mặt".to_owned()),
            ("Ngày thu:", local(receipt.created_at)),
            ("Người thu:", receipt.created_by.clone()),
        ],
    }
}

/// The receipt as a one-page A5 PDF.
pub fn render(content: &ReceiptContent) -> Result<Vec<u8>, printpdf::Error> {
    let title = format!("Biên lai số {} – {}", content.number, content.school);
    let (document, page, layer) = PdfDocument::new(&title, PAGE_WIDTH, PAGE_HEIGHT, "biên lai");
    let font = document.add_external_font(FONT)?;
    let layer = document.get_page(page).get_layer(layer);
    let text = |text: &str, size: f32, x: f32, y: f32| {
        layer.use_text(text, size, Mm(x), Mm(y), &font);
    };
    let mut y = PAGE_HEIGHT.0 - MARGIN - 5.0;
    text(&content.school, 11.0, MARGIN, y);
    y -= 14.0;
    text("BIÊN LAI THU TIỀN", 18.0, 36.0, y);
    y -= 9.0;
    text(&format!("Số: {}", content.number), 12.0, 64.0, y);
    if let Some(notice) = &content.cancelled {
        y -= 12.0;
        layer.set_fill_color(Color::Rgb(Rgb::new(0.7, 0.0, 0.0, None)));
        text(notice, 11.0, MARGIN, y);
        layer.set_fill_color(Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None)));
    }
    y -= 6.0;
    for (label, value) in &content.lines {
        y -= 9.0;
        text(label, 11.0, MARGIN, y);
        text(value, 11.0, VALUE_COLUMN, y);
    }
    document.save_to_bytes()
}

impl super::SchoolService {
    /// The receipt as a PDF, in Vietnamese, marked when cancelled.
    pub async fn receipt_pdf(
        &self,
        caller: &crate::services::auth::Caller,
        school_id: uuid::Uuid,
        receipt_id: uuid::Uuid,
    ) -> Result<Vec<u8>, super::SchoolError> {
        let (school, receipt, pupil) = self.visible_receipt(caller, school_id, receipt_id).await?;
        render(&content(&school, &receipt, &pupil))
            .map_err(|e| super::SchoolError::Render(format!("receipt PDF: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_receipt_pdf_is_a_pdf_under_a_megabyte_with_the_whole_font() {
        let content = super::ReceiptContent {
            school: "Trường Tiểu học Tức Tranh".into(),
            number: 7,
            cancelled: Some("ĐÃ HỦY ngày 01/10/2026 08:00 – lý do: ghi nhầm".into()),
            lines: vec![("Học sinh:", "Nguyễn Thị Ánh Tuyết (mã HS01)".into())],
        };
        let pdf = super::render(&content).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        // The whole font and its glyph maps plus a page of text. printpdf compresses the
        // streams only in release builds; this bound holds uncompressed too.
        assert!(pdf.len() < 1_000_000, "{} bytes", pdf.len());
    }
}
