//! A cash receipt (biên lai thu tiền) as a printable HTML page, in Vietnamese.

use crate::clock::to_datetime;
use crate::domain::number_words::grouped_dong as dong;
use crate::domain::payee::Payee;
use crate::services::payments::qr_image::escape_xml as escape;
use crate::store::schools::{PupilRow, ReceiptRow};

pub fn render(school: &Payee, receipt: &ReceiptRow, pupil: &PupilRow) -> String {
    // Vietnam time (UTC+7) for the printed date.
    let at = to_datetime(receipt.created_at) + chrono::Duration::hours(7);
    let cancelled = match (&receipt.cancelled_at, &receipt.cancel_reason) {
        (Some(when), reason) => format!(
            "<p class=\"cancelled\">ĐÃ HỦY ngày {} – lý do: {}</p>",
            (to_datetime(*when) + chrono::Duration::hours(7)).format("%d/%m/%Y %H:%M"),
            escape(reason.as_deref().unwrap_or(""))
        ),
        (None, _) => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link rel=\"icon\" href=\"data:,\">\
<title>Biên lai số {number} – {school}</title>\
<style>body{{font-family:serif;max-width:18cm;margin:1cm auto;padding:0 .5em}}h1{{text-align:center;font-size:1.4em}}\
table{{width:100%;border-collapse:collapse}}td{{padding:.3em 0}}.cancelled{{color:#b00;font-weight:bold;\
border:2px solid #b00;padding:.5em;text-align:center}}{strike}\
@media print{{button{{display:none}}}}</style></head><body>\
<p>{school}</p><h1>BIÊN LAI THU TIỀN</h1><p style=\"text-align:center\">Số: {number}</p>{cancelled}\
<table><tr><td>Họ tên người nộp:</td><td>{payer}</td></tr>\
<tr><td>Học sinh:</td><td>{pupil} (mã {code})</td></tr>\
<tr><td>Số tiền:</td><td class=\"amount\">{amount} đồng</td></tr>\
<tr><td>Hình thức:</td><td>Tiền mặt</td></tr>\
<tr><td>Ngày thu:</td><td>{date}</td></tr>\
<tr><td>Người thu:</td><td>{by}</td></tr></table>\
<button onclick=\"window.print()\">In biên lai</button></body></html>\n",
        number = receipt.number,
        school = escape(&school.details.name),
        strike = if receipt.cancelled_at.is_some() {
            ".amount{text-decoration:line-through}"
        } else {
            ""
        },
        payer = escape(&receipt.payer_name),
        pupil = escape(&pupil.full_name),
        code = escape(&pupil.code),
        amount = dong(receipt.amount),
        date = at.format("%d/%m/%Y %H:%M"),
        by = escape(&receipt.created_by),
    )
}
