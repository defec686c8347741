//! Time as the ledger stores it: microseconds since the Unix epoch, UTC.

use chrono::{DateTime, TimeZone, Utc};

pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

pub fn to_datetime(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn to_rfc3339(micros: i64) -> String {
    to_datetime(micros).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The smallest time-ordered id (UUIDv7) of the millisecond `micros` falls in: every id made
/// at or after that millisecond is greater, so it reads "from this time on" in id order.
pub fn first_id_at(micros: i64) -> uuid::Uuid {
    let millis = (micros.max(0) / 1_000) as u64;
    uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid()
}

/// The one clock the services read: the time they record, judge expiry and signature windows
/// by, and stamp new ids (UUIDv7) with. It reads the system time plus an offset; tests move
/// it (every clone together) instead of writing times into the database.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Keeps ids made in the same millisecond in order.
    ids: std::sync::Arc<std::sync::Mutex<uuid::timestamp::context::ContextV7>>,
}

impl Clock {
    /// A new time-ordered id (UUIDv7) stamped with this clock's time.
    pub fn new_id(&self) -> uuid::Uuid {
        let micros = self.now_micros().max(0);
        let seconds = (micros / 1_000_000) as u64;
        let nanos = (micros % 1_000_000) as u32 * 1_000;
        let context: &std::sync::Mutex<_> = &self.ids;
        uuid::Uuid::new_v7(uuid::Timestamp::from_unix(context, seconds, nanos))
    }

    /// Moves this clock (and every clone) forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_micros.fetch_add(
            by.num_microseconds().unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    pub fn now_micros(&self) -> i64 {
        now_micros()
            + self
                .offset_micros
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn now(&self) -> DateTime<Utc> {
        to_datetime(self.now_micros())
    }

    /// Makes `now` read as `at` from here on (and the same offset for every clone).
    pub fn set(&self, at: DateTime<Utc>) {
        self.offset_micros.store(
            at.timestamp_micros() - now_micros(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}
