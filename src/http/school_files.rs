//! A school's files to download (a run as CSV or Excel, a cash receipt as PDF) and its
//! reminders to parents.

use actix_web::{web, HttpResponse};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::AppState;
use crate::services::auth::Caller;
use crate::services::schools::exports::{ExportFile, ExportFormat};
use crate::services::schools::models::StatusQuery;
use crate::services::schools::reminders::{ReminderPreview, ReminderSendSummary};
use crate::services::ErrorEnvelope;

/// `attachment` with the name twice: `filename` in ASCII for old clients (Vietnamese letters
/// without their marks, anything else `_`) and `filename*` in UTF-8 (RFC 6266, RFC 8187).
pub fn content_disposition(file_name: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    let ascii: String = file_name
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            c if c.is_ascii_alphanumeric() || " .-_()".contains(c) => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::new();
    for byte in file_name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn download(file: ExportFile) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(file.content_type)
        .insert_header(("Content-Disposition", content_disposition(&file.file_name)))
        .body(file.bytes)
}

async fn export(
    state: web::Data<AppState>,
    caller: Caller,
    (school, run): (Uuid, Uuid),
    query: StatusQuery,
    format: ExportFormat,
) -> Result<HttpResponse, ApiError> {
    let file = state
        .run(move |s| async move {
            s.schools
                .export_run(&caller, school, run, query.class_id, format)
                .await
        })
        .await?;
    Ok(download(file))
}

#[utoipa::path(get, path = "/v1/schools/{school}/runs/{run}/export.csv", tag = "schools",
    description = "The run as CSV for Excel: UTF-8 with a byte order mark, CRLF line ends, comma-separated; one row per pupil (class, code, name, each fee item before reductions, reductions, to pay, paid online, paid in cash, owed, status) and a total row. With `class_id`: that class's rows only.",
    params(("school" = Uuid, Path), ("run" = Uuid, Path), StatusQuery), security(("bearer" = [])),
    responses((status = 200, description = "the file, with a Content-Disposition naming it", content_type = "text/csv"),
        (status = 404, description = "SCHOOL_NOT_FOUND, SCHOOL_RECORD_NOT_FOUND (run, class)", body = ErrorEnvelope)))]
pub async fn export_run_csv(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(ids): ApiPath<(Uuid, Uuid)>,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    export(state, caller, ids, query, ExportFormat::Csv).await
}

#[utoipa::path(get, path = "/v1/schools/{school}/runs/{run}/export.xlsx", tag = "schools",
    description = "The run as an Excel workbook: the same columns and total row as the CSV, amounts as numbers. With `class_id`: that class's rows only.",
    params(("school" = Uuid, Path), ("run" = Uuid, Path), StatusQuery), security(("bearer" = [])),
    responses((status = 200, description = "the workbook, with a Content-Disposition naming it", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 404, description = "SCHOOL_NOT_FOUND, SCHOOL_RECORD_NOT_FOUND (run, class)", body = ErrorEnvelope)))]
pub async fn export_run_xlsx(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath(ids): ApiPath<(Uuid, Uuid)>,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    export(state, caller, ids, query, ExportFormat::Xlsx).await
}

#[utoipa::path(get, path = "/v1/schools/{school}/cash-receipts/{receipt}/receipt.pdf", tag = "schools",
    params(("school" = Uuid, Path), ("receipt" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, description = "the receipt as an A5 PDF in Vietnamese, the same content as receipt.html (a cancelled one says so)", content_type = "application/pdf"),
        (status = 404, body = ErrorEnvelope)))]
pub async fn receipt_pdf(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, receipt)): ApiPath<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let pdf = state
        .run(move |s| async move { s.schools.receipt_pdf(&caller, school, receipt).await })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            "Content-Disposition",
            "inline; filename=\"bien-lai.pdf\"".to_owned(),
        ))
        .body(pdf))
}

#[utoipa::path(get, path = "/v1/schools/{school}/runs/{run}/reminders", tag = "schools",
    description = "Today's reminder messages for the run's unpaid charges (of one class with `class_id`): one per household (else per guardian phone, else per pupil), in Vietnamese, with each pupil's payment reference and VietQR payload. Sends nothing.",
    params(("school" = Uuid, Path), ("run" = Uuid, Path), StatusQuery), security(("bearer" = [])),
    responses((status = 200, body = ReminderPreview),
        (status = 404, description = "SCHOOL_NOT_FOUND, SCHOOL_RECORD_NOT_FOUND (run, class)", body = ErrorEnvelope)))]
pub async fn preview_reminders(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, run)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let preview = state
        .run(move |s| async move {
            s.reminders
                .preview(&caller, school, run, query.class_id)
                .await
        })
        .await?;
    Ok(HttpResponse::Ok().json(preview))
}

#[utoipa::path(post, path = "/v1/schools/{school}/runs/{run}/reminders/send", tag = "schools",
    description = "Sends today's reminders through the configured notifier (log, or a signed POST to the school's gateway). A charge is reminded at most once a Vietnam day: charges already reminded today are left out, so sending again the same day sends nothing new. A message the gateway refused is listed in `failed` and may be sent again the same day.",
    params(("school" = Uuid, Path), ("run" = Uuid, Path), StatusQuery), security(("bearer" = [])),
    responses((status = 200, body = ReminderSendSummary),
        (status = 404, description = "SCHOOL_NOT_FOUND, SCHOOL_RECORD_NOT_FOUND (run, class)", body = ErrorEnvelope)))]
pub async fn send_reminders(
    state: web::Data<AppState>,
    caller: Caller,
    ApiPath((school, run)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(query): ApiQuery<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let summary = state
        .run(move |s| async move { s.reminders.send(&caller, school, run, query.class_id).await })
        .await?;
    Ok(HttpResponse::Ok().json(summary))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_file_name_is_given_in_ascii_and_in_utf8() {
        assert_eq!(
            super::content_disposition("Đợt thu Tháng 9 - Lớp 3A.csv"),
            "attachment; filename=\"Dot thu Thang 9 - Lop 3A.csv\"; \
             filename*=UTF-8''%C4%90%E1%BB%A3t%20thu%20Th%C3%A1ng%209%20-%20L%E1%BB%9Bp%203A.csv"
        );
    }
}
