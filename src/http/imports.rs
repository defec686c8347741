//! Thin handlers for the spreadsheet imports: the registry's residents and the door-to-door
//! survey, each as CSV, dry run first.

use actix_web::http::StatusCode;
use actix_web::web;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::{ApiQuery, RawBody};
use super::AppState;
use crate::services::auth::Caller;
use crate::services::registry::import::ImportSummary;
use crate::services::ErrorEnvelope;

/// Largest import file: 100,000 residents of about 150 bytes each.
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

/// A request without a file is a mistake in the request, not a file with bad lines, so it is
/// refused even on a dry run.
fn require_file(body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IMPORT_EMPTY",
            "send the CSV file as the request body",
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// true (default): check the file and count what would change, write nothing; false:
    /// apply it, all or nothing
    pub dry_run: Option<bool>,
}

#[utoipa::path(post, path = "/v1/registry/import", tag = "registry", params(ImportQuery),
    request_body(content = String, description = "one row per resident, as Excel saves CSV (UTF-8 with or without BOM, comma or semicolon): Mã xóm/hamlet_code, Tên xóm/hamlet_name, Mã hộ/household_code, Địa chỉ/address, Chủ hộ/head, Mã nhân khẩu/resident_code, Họ và tên/full_name, Năm sinh/birth_year or Ngày sinh/birth_date, Giới tính/gender, Số điện thoại/phone, Tình trạng/status, Ngày chuyển đi/mất/left_on, Đồng ý thống kê/consent, Ngày đồng ý/consent_on; see the README", content_type = "text/csv"),
    security(("bearer" = [])),
    responses((status = 200, description = "what the import did (or, on a dry run, would do), with every bad line", body = ImportSummary),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorEnvelope),
        (status = 422, description = "IMPORT_EMPTY: no file was sent; IMPORT_INVALID: the file has bad lines (`details.errors`: line, field, problem); nothing was written", body = ErrorEnvelope)))]
pub async fn import_residents(
    state: web::Data<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ImportQuery>,
    RawBody(body): RawBody,
) -> Result<web::Json<ImportSummary>, ApiError> {
    require_file(&body)?;
    let apply = !query.dry_run.unwrap_or(true);
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.import_residents(&caller, &body, apply).await })
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/surveys/import", tag = "registry", params(ImportQuery),
    request_body(content = String, description = "one answer per row, as Excel saves CSV: Mã nhân khẩu/resident_code, Ngày khảo sát/surveyed_on, Có thanh toán trực tuyến 12 tháng qua/used_online_payment (có/không), Kênh/channel (optional)", content_type = "text/csv"),
    security(("bearer" = [])),
    responses((status = 200, description = "what the import did (or, on a dry run, would do), with every bad line", body = ImportSummary),
        (status = 413, description = "PAYLOAD_TOO_LARGE", body = ErrorEnvelope),
        (status = 422, description = "IMPORT_EMPTY: no file was sent; IMPORT_INVALID: the file has bad lines (`details.errors`); nothing was written", body = ErrorEnvelope)))]
pub async fn import_survey(
    state: web::Data<AppState>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    RawBody(body): RawBody,
) -> Result<web::Json<ImportSummary>, ApiError> {
    require_file(&body)?;
    let apply = !query.dry_run.unwrap_or(true);
    Ok(web::Json(
        state
            .run(move |s| async move { s.registry.import_survey(&body, apply).await })
            .await?,
    ))
}
