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

/// The service's clock for checks against outside timestamps (webhook signature windows). It
/// reads the system time; tests shift it to replay deliveries that were signed long ago.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
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
