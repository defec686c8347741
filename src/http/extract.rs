//! Extractors that turn every kind of bad input into a 4xx with a stable code.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::services::auth::Caller;
use crate::store::IdempotencyClaim;

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Reads the body as JSON; an empty body reads as `null` (so `Option<T>` bodies are optional).
async fn read_json<T: DeserializeOwned, S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<(T, serde_json::Value), ApiError> {
    let has_json_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        });
    let RawBody(bytes) = RawBody::from_request(request, state).await?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else if !has_json_type {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as JSON with 'Content-Type: application/json'",
        ));
    } else {
        &bytes
    };
    let classify = |e: serde_json::Error| {
        if e.is_data() {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_BODY",
                e.to_string(),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
                format!("the body is not valid JSON: {e}"),
            )
        }
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(classify)?;
    if holds_nul(&value) {
        return Err(nul_refused());
    }
    let typed = serde_json::from_slice(bytes).map_err(classify)?;
    Ok((typed, value))
}

/// A NUL character is never meaningful in this API's text, and PostgreSQL cannot store it.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        _ => false,
    }
}

fn nul_refused() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "NUL_CHARACTER",
        "text in the request may not contain the NUL character (\\u0000)",
    )
}

/// A JSON body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(read_json(request, state).await?.0))
    }
}

/// A JSON body of a money-moving request, with its `Idempotency-Key` scoped to the caller and
/// a hash of what was asked (method, path, body with keys sorted).
pub struct IdempotentJson<T> {
    pub claim: IdempotencyClaim,
    pub body: T,
    pub caller: Caller,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for IdempotentJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let caller = request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(ApiError::unauthenticated)?;
        let key = match request.headers().get(IDEMPOTENCY_KEY_HEADER) {
            None => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "IDEMPOTENCY_KEY_REQUIRED",
                    "money-moving requests need an 'Idempotency-Key' header (e.g. a UUID)",
                ))
            }
            Some(value) => value
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "INVALID_IDEMPOTENCY_KEY",
                        "the Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )
                })?,
        };
        let fingerprint = format!("{} {}\n", request.method(), request.uri().path());
        let (body, value) = read_json::<T, S>(request, state).await?;
        let mut hasher = Sha256::new();
        hasher.update(fingerprint.as_bytes());
        hasher.update(canonical_json(&value).as_bytes());
        Ok(Self {
            claim: IdempotencyClaim {
                user_id: caller.user_id,
                key,
                request_hash: hex::encode(hasher.finalize()),
            },
            body,
            caller,
        })
    }
}

/// JSON with object keys sorted at every level, so key order does not change the hash.
fn canonical_json(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

fn encodes_nul(uri_part: &str) -> bool {
    uri_part.contains("%00")
}

/// Query parameters.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if encodes_nul(parts.uri.query().unwrap_or_default()) {
            return Err(nul_refused());
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", e.body_text()))
    }
}

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if encodes_nul(parts.uri.path()) {
            return Err(nul_refused());
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Self(value))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_PATH", e.body_text()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// The request body exactly as received, for routes that check a signature over the bytes or
/// read a format other than JSON.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "PAYLOAD_TOO_LARGE",
                        "the request body is larger than this service accepts",
                    )
                } else {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "BODY_UNREADABLE",
                        rejection.body_text(),
                    )
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_json;

    #[test]
    fn canonical_json_ignores_key_order() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":"é"}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":"é","y":[1,{"c":3,"d":2}]},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        let c: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":"é","y":[{"c":3,"d":2},1]},"b":1}"#).unwrap();
        assert_ne!(canonical_json(&a), canonical_json(&c));
    }
}
