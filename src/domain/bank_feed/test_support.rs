//! Shared helpers for the bank-feed tests: the real vectors, signing, tampering.

use chrono::{DateTime, Utc};
use hmac::Mac;
use serde_json::Value;

/// The real, signed webhook samples from ../shared/vectors/webhooks.json.
pub fn vectors() -> Value {
    serde_json::from_str(include_str!("../../../tests/fixtures/webhooks.json"))
        .expect("tests/fixtures/webhooks.json is JSON")
}

/// The sample called `id` in the group `group` (`payos`, `casso_v2`, ...).
pub fn sample(group: &str, id: &str) -> Value {
    vectors()[group]
        .as_array()
        .and_then(|samples| samples.iter().find(|s| s["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("no sample {group}/{id} in the fixture"))
}

pub fn compact(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).expect("serializable")
}

pub fn pretty(body: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(body).expect("serializable")
}

/// The MAC `M` of the concatenated `message` parts under `key`.
pub fn sign<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[&[u8]]) -> Vec<u8> {
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in message {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `bytes` with bit 0 of byte `index` flipped: the smallest possible change, and for JSON it
/// never turns one structural character into an equivalent one.
pub fn flip(bytes: &[u8], index: usize) -> Vec<u8> {
    let mut flipped = bytes.to_vec();
    flipped[index] ^= 1;
    flipped
}

/// `text` with bit 0 of byte `index` flipped, as a string (lossy if that made it non-UTF-8).
pub fn flip_str(text: &str, index: usize) -> String {
    String::from_utf8_lossy(&flip(text.as_bytes(), index)).into_owned()
}

pub fn at_seconds(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("valid timestamp")
}

pub fn at_millis(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).expect("valid timestamp")
}

pub fn utc(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("valid RFC 3339")
        .with_timezone(&Utc)
}
