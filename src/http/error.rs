//! The one place errors become HTTP responses.

use std::fmt;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::services::{ErrorBody, ErrorEnvelope, PublicError};

/// A failover moves the primary within a few seconds; a client waiting this long between
/// retries does not flood the instance that answered.
const RETRY_UNAVAILABLE_AFTER_SECONDS: i64 = 1;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after_seconds: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code: code.to_owned(),
                message: message.into(),
                details: None,
            },
            retry_after_seconds: None,
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "send a valid access token as 'Authorization: Bearer <token>'",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "your role may not call this endpoint",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Seconds until a refused login may be tried again.
    pub fn retry_after_seconds(&self) -> Option<i64> {
        self.retry_after_seconds
    }

    /// The stable machine-readable code, e.g. `PAYEE_NOT_FOUND`.
    pub fn code(&self) -> &str {
        &self.body.code
    }
}

impl<E: PublicError> From<E> for ApiError {
    fn from(error: E) -> Self {
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Expected for a few seconds of every failover: not a bug, but worth seeing.
            tracing::warn!(error = %error, code = error.code(), "request failed; retryable");
        } else if status.is_server_error() {
            tracing::error!(error = %error, code = error.code(), "request failed");
        }
        let mut body = ErrorBody::from(&error);
        let mut retry_after_seconds = body
            .details
            .as_ref()
            .and_then(|d| d.get("retry_after_seconds").and_then(|v| v.as_i64()));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 is a database that is briefly away (a failover, a restart, a full
            // pool): say so to the client's retry logic in the body and the header alike.
            retry_after_seconds = retry_after_seconds.or(Some(RETRY_UNAVAILABLE_AFTER_SECONDS));
            body.details = Some(serde_json::json!({
                "retryable": true,
                "retry_after_seconds": retry_after_seconds,
            }));
        }
        Self {
            status,
            body,
            retry_after_seconds,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status, self.body.code, self.body.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after_seconds {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(ErrorEnvelope {
            error: self.body.clone(),
        })
    }
}
