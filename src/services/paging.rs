//! Keyset pagination as every list of the API speaks it: `limit` 1 to 500 (default 50) and an
//! opaque `cursor` (URL-safe base64 of the last row's key) that only this API issues.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("cursor is not one this API issued")]
    InvalidCursor,
    #[error("limit must be between 1 and {MAX_PAGE_SIZE}")]
    InvalidLimit,
}

impl PageError {
    /// Stable, machine-readable code for API error bodies (both are 400s).
    pub fn code(self) -> &'static str {
        match self {
            PageError::InvalidCursor => "INVALID_CURSOR",
            PageError::InvalidLimit => "INVALID_LIMIT",
        }
    }
}

/// The page size a query asks for, checked.
pub fn limit(requested: Option<u32>) -> Result<u32, PageError> {
    match requested.unwrap_or(DEFAULT_PAGE_SIZE) {
        limit @ 1..=MAX_PAGE_SIZE => Ok(limit),
        _ => Err(PageError::InvalidLimit),
    }
}

/// The cursor of the next page: the key of the last row, when the page came back full (a full
/// last page is followed by an empty one).
pub fn next_cursor<T>(rows: &[T], limit: u32, key: impl Fn(&T) -> String) -> Option<String> {
    if rows.len() < limit as usize {
        return None;
    }
    rows.last().map(|row| URL_SAFE_NO_PAD.encode(key(row)))
}

/// The key of a row ordered by (time in microseconds, id).
pub fn time_and_id_key(micros: i64, id: uuid::Uuid) -> String {
    format!("{micros}/{id}")
}

/// Reads a [`time_and_id_key`] back.
pub fn time_and_id(text: &str) -> Option<(i64, uuid::Uuid)> {
    let (micros, id) = text.split_once('/')?;
    Some((micros.parse().ok()?, uuid::Uuid::parse_str(id).ok()?))
}

/// Reads back the cursor of a list ordered by id alone (accounts, payees, households,
/// residents): the last row's id.
pub fn read_id_cursor(cursor: Option<&str>) -> Result<Option<uuid::Uuid>, PageError> {
    read_cursor(cursor, |text| uuid::Uuid::parse_str(text).ok())
}

/// Reads back a key that [`next_cursor`] encoded, with `parse` for its shape.
pub fn read_cursor<K>(
    cursor: Option<&str>,
    parse: impl Fn(&str) -> Option<K>,
) -> Result<Option<K>, PageError> {
    cursor
        .map(|cursor| {
            URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| parse(&text))
                .ok_or(PageError::InvalidCursor)
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(limit(Some(500)), Ok(500));
        assert_eq!(limit(Some(0)), Err(PageError::InvalidLimit));
        assert_eq!(limit(Some(501)), Err(PageError::InvalidLimit));
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let rows = [3u32, 7];
        let cursor = next_cursor(&rows, 2, |n| n.to_string()).unwrap();
        assert_eq!(
            read_cursor(Some(&cursor), |t| t.parse::<u32>().ok()),
            Ok(Some(7))
        );
        assert_eq!(next_cursor(&rows, 3, |n| n.to_string()), None);
        assert_eq!(read_cursor(None, |t| t.parse::<u32>().ok()), Ok(None));
        for foreign in ["***", "bm90IGEgbnVtYmVy"] {
            assert_eq!(
                read_cursor(Some(foreign), |t| t.parse::<u32>().ok()),
                Err(PageError::InvalidCursor)
            );
        }
    }
}
