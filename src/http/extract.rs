//! Extractors that turn every kind of bad input into a 4xx with a stable code.

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::web::{Bytes, BytesMut, Path, Query};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures::future::{ready, LocalBoxFuture, Ready};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::services::auth::Caller;
use crate::store::IdempotencyClaim;

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The most a request body may hold. The application sets the service-wide limit; a route
/// that takes larger or smaller bodies (statements, webhooks) sets its own.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        "the request body is larger than this service accepts",
    )
}

/// Reads the whole body within the route's limit. A declared length over the limit is refused
/// before a byte is read.
async fn read_body(request: &HttpRequest, mut payload: Payload) -> Result<Bytes, ApiError> {
    let limit = request
        .app_data::<BodyLimit>()
        .map_or(usize::MAX, |limit| limit.0);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "BODY_UNREADABLE", e.to_string())
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads the body as JSON; an empty body reads as `null` (so `Option<T>` bodies are optional).
async fn read_json<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: Payload,
) -> Result<(T, serde_json::Value), ApiError> {
    let has_json_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
        });
    let bytes = read_body(request, payload).await?;
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
    // Every JSON body this API reads is an object (or nothing), but serde also builds a struct
    // from an array, its fields in order: `[null, null]` would pass as an empty patch. Said
    // here in words; `strict_json` refuses the same inside the body.
    if value.is_array() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
            "the body must be a JSON object, not an array",
        ));
    }
    let typed = super::strict_json::from_value(whole_numbers_as_integers(value.clone()))
        .map_err(classify)?;
    Ok((typed, value))
}

/// JSON has one number type: `38.0` is the integer 38 (JSON Schema agrees), but serde refuses
/// it where an integer is expected. Whole numbers a double holds exactly become integers.
fn whole_numbers_as_integers(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match value {
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() <= EXACT => {
                Value::from(float as i64)
            }
            _ => Value::Number(number),
        },
        Value::Array(items) => items.into_iter().map(whole_numbers_as_integers).collect(),
        Value::Object(fields) => fields
            .into_iter()
            .map(|(key, value)| (key, whole_numbers_as_integers(value)))
            .collect(),
        other => other,
    }
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

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move { Ok(Self(read_json(&request, payload).await?.0)) })
    }
}

/// A JSON body of a money-moving request, with its `Idempotency-Key` scoped to the caller and
/// a hash of what was asked (method, path, body with keys sorted).
pub struct IdempotentJson<T> {
    pub claim: IdempotencyClaim,
    pub body: T,
    pub caller: Caller,
}

impl<T: DeserializeOwned + 'static> FromRequest for IdempotentJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            let caller = caller_of(&request)?;
            let key = idempotency_key(&request)?;
            let fingerprint = format!("{} {}\n", request.method(), request.uri().path());
            let (body, value) = read_json::<T>(&request, payload).await?;
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
        })
    }
}

fn idempotency_key(request: &HttpRequest) -> Result<String, ApiError> {
    match request.headers().get(IDEMPOTENCY_KEY_HEADER) {
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "IDEMPOTENCY_KEY_REQUIRED",
            "money-moving requests need an 'Idempotency-Key' header (e.g. a UUID)",
        )),
        Some(value) => value
            .to_str()
            .ok()
            // `to_str` also lets spaces and tabs through, which are not visible characters.
            .filter(|k| {
                (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&k.len())
                    && k.bytes().all(|b| b.is_ascii_graphic())
            })
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_IDEMPOTENCY_KEY",
                    "the Idempotency-Key must be 1 to 255 visible ASCII characters",
                )
            }),
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

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(if encodes_nul(request.query_string()) {
            Err(nul_refused())
        } else {
            Query::<T>::from_query(request.query_string())
                .map(|Query(value)| Self(value))
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", e.to_string()))
        })
    }
}

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned> FromRequest for ApiPath<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(if encodes_nul(request.uri().path()) {
            Err(nul_refused())
        } else {
            Path::<T>::extract(request)
                .into_inner()
                .map(|path| Self(path.into_inner()))
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_PATH", e.to_string()))
        })
    }
}

/// The signed-in caller, put on the request by the access policy.
pub(super) fn caller_of(request: &HttpRequest) -> Result<Caller, ApiError> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(ApiError::unauthenticated)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(caller_of(request))
    }
}

/// The request body exactly as received, for routes that check a signature over the bytes or
/// read a format other than JSON.
pub struct RawBody(pub Bytes);

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move { read_body(&request, payload).await.map(RawBody) })
    }
}

#[cfg(test)]
mod tests {
    use super::{canonical_json, whole_numbers_as_integers};

    #[test]
    fn whole_floats_read_as_integers() {
        let value: serde_json::Value =
            serde_json::from_str(r#"{"count":38.0,"items":[-2.0,1.5],"big":1e300}"#).unwrap();
        let normalized = whole_numbers_as_integers(value);
        assert_eq!(normalized["count"], serde_json::json!(38));
        assert!(normalized["count"].is_i64());
        assert_eq!(normalized["items"], serde_json::json!([-2, 1.5]));
        assert!(normalized["big"].is_f64());
        let count: u32 = serde_json::from_value(normalized["count"].clone()).unwrap();
        assert_eq!(count, 38);
    }

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
