//! A payee's takings per Vietnam calendar day, as the stall page and the payee's summary show
//! them.

use chrono::NaiveDate;

use crate::domain::statistics::period::vietnam_day;

/// One day's money received: its total in đồng and how many payments made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayTakings {
    pub day: NaiveDate,
    pub total: i64,
    pub count: u32,
}

/// The `days` days ending with `today`, newest first, each with the payments (booking time in
/// microseconds, amount) that fell on it; days without payments count zero, payments outside
/// the days are left out.
pub fn daily_takings(
    payments: impl IntoIterator<Item = (i64, i64)>,
    today: NaiveDate,
    days: u32,
) -> Vec<DayTakings> {
    let mut takings: Vec<DayTakings> = (0..days)
        .map(|back| DayTakings {
            day: today - chrono::Days::new(u64::from(back)),
            total: 0,
            count: 0,
        })
        .collect();
    for (at, amount) in payments {
        let day = vietnam_day(at);
        if let Some(slot) = takings.iter_mut().find(|slot| slot.day == day) {
            slot.total = slot
                .total
                .checked_add(amount)
                .expect("a day's takings fit in i64: each payment is at most 10^15 đồng");
            slot.count += 1;
        }
    }
    takings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::statistics::period::vietnam_day_start_micros;

    #[test]
    fn payments_fall_on_their_vietnam_day_and_empty_days_count_zero() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
        let start = vietnam_day_start_micros(today);
        let hour = 3_600_000_000;
        let takings = daily_takings(
            [
                (start + hour, 50_000),
                (start + 20 * hour, 35_000),
                // 23:00 the day before (16:00 UTC).
                (start - hour, 10_000),
                // Eight days ago: outside a 7-day summary.
                (start - 7 * 24 * hour, 99_000),
            ],
            today,
            7,
        );
        assert_eq!(takings.len(), 7);
        assert_eq!(
            takings[0],
            DayTakings {
                day: today,
                total: 85_000,
                count: 2
            }
        );
        assert_eq!(takings[1].total, 10_000);
        assert_eq!(takings[1].day, NaiveDate::from_ymd_opt(2026, 3, 9).unwrap());
        assert!(takings[2..].iter().all(|d| d.total == 0 && d.count == 0));
    }
}
