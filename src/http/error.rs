//! The one place errors become HTTP responses.

use std::fmt;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::services::{ErrorBody, ErrorEnvelope, PublicError};

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
        if status.is_server_error() {
            tracing::error!(error = %error, code = error.code(), "request failed");
        }
        let retry_after_seconds = error
            .details()
            .and_then(|d| d.get("retry_after_seconds").and_then(|v| v.as_i64()));
        Self {
            status,
            body: ErrorBody::from(&error),
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
