//! Business-hours arithmetic for SLA clocks: when a first-response deadline falls if the clock
//! only runs while a team is open, and how much open time lies between two instants. Pure; the
//! time zone rules come from `chrono-tz`, so daylight-saving changes are handled by the zone.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// Minutes in a day; a block may end at `24:00`.
const DAY_MINUTES: u32 = 24 * 60;

/// One opening block of a day, in local minutes since midnight, `open < close <= 24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    open: u32,
    close: u32,
}

impl Block {
    /// Parses `HH:MM-HH:MM` (the end may be `24:00`).
    pub fn parse(s: &str) -> Result<Self, HoursError> {
        let bad = || HoursError::Block(s.to_string());
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let open = parse_minutes(a.trim()).ok_or_else(bad)?;
        let close = parse_minutes(b.trim()).ok_or_else(bad)?;
        if open >= close {
            return Err(bad());
        }
        Ok(Self { open, close })
    }
}

fn parse_minutes(s: &str) -> Option<u32> {
    if s == "24:00" {
        return Some(DAY_MINUTES);
    }
    let t = NaiveTime::parse_from_str(s, "%H:%M").ok()?;
    Some(t.hour() * 60 + t.minute())
}

/// Why business hours are invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("`{0}` is not an opening block like 09:00-12:30")]
    Block(String),
    #[error("unknown time zone `{0}` (use an IANA name such as Asia/Shanghai)")]
    TimeZone(String),
    #[error("blocks overlap or are out of order")]
    Overlap,
    #[error("no opening hours in the week")]
    NeverOpen,
    #[error("`{0}` is not a date like 2026-10-01")]
    Holiday(String),
}

/// When a team is open: a time zone, blocks for each weekday (several per day allowed) and
/// holiday dates (local) on which it is closed all day.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    tz: Tz,
    /// Monday first.
    weekly: [Vec<Block>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl BusinessHours {
    /// Validated hours: blocks of a day sorted and disjoint, at least one block in the week.
    pub fn new(
        time_zone: &str,
        weekly: [Vec<Block>; 7],
        holidays: BTreeSet<NaiveDate>,
    ) -> Result<Self, HoursError> {
        let tz: Tz = time_zone
            .parse()
            .map_err(|_| HoursError::TimeZone(time_zone.to_string()))?;
        for day in &weekly {
            if day.windows(2).any(|w| w[0].close > w[1].open) {
                return Err(HoursError::Overlap);
            }
        }
        if weekly.iter().all(Vec::is_empty) {
            return Err(HoursError::NeverOpen);
        }
        Ok(Self {
            tz,
            weekly,
            holidays,
        })
    }

    /// The open intervals (UTC, half-open) of one local date, in order.
    fn intervals(&self, date: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> {
        let blocks: &[Block] = if self.holidays.contains(&date) {
            &[]
        } else {
            &self.weekly[date.weekday().num_days_from_monday() as usize]
        };
        blocks.iter().filter_map(move |b| {
            let open = self.instant(date, b.open);
            let close = self.instant(date, b.close);
            // A block that falls wholly inside a daylight-saving gap has no length that day.
            (open < close).then_some((open, close))
        })
    }

    /// The instant of a local wall-clock time. A time skipped by a daylight-saving jump maps to
    /// the first valid minute after the gap; a repeated one to its first occurrence.
    fn instant(&self, date: NaiveDate, minutes: u32) -> DateTime<Utc> {
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        let mut local = midnight + Duration::minutes(i64::from(minutes));
        // Gaps are at most a few hours; step forward minute by minute until the time exists.
        for _ in 0..(6 * 60) {
            match self.tz.from_local_datetime(&local) {
                LocalResult::Single(t) => return t.with_timezone(&Utc),
                LocalResult::Ambiguous(a, _) => return a.with_timezone(&Utc),
                LocalResult::None => local += Duration::minutes(1),
            }
        }
        // No real zone has a six-hour gap; fall back to reading the time as UTC.
        Utc.from_utc_datetime(&local)
    }

    /// The local date of an instant.
    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// Whether the team is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let date = self.local_date(at);
        self.intervals(date).any(|(o, c)| o <= at && at < c)
    }
}

/// The deadline of an SLA of `sla` started at `start`: with no hours, plain wall-clock time;
/// with hours, the clock runs only while the team is open (a conversation arriving at night is
/// due `sla` after the next opening). A zero SLA is due at the next open instant.
pub fn due_at(start: DateTime<Utc>, sla: Duration, hours: Option<&BusinessHours>) -> DateTime<Utc> {
    let Some(h) = hours else {
        return start + sla;
    };
    let mut remaining = sla.max(Duration::zero());
    let mut date = h.local_date(start);
    // Terminates: the week has at least one block of positive length and holidays are finite.
    loop {
        for (open, close) in h.intervals(date) {
            let from = open.max(start);
            if close <= from {
                continue;
            }
            let available = close - from;
            if remaining <= available {
                return from + remaining;
            }
            remaining -= available;
        }
        date = date.succ_opt().expect("date in range");
    }
}

/// Open time between `from` and `to` (zero when `to <= from`); with no hours, plain elapsed
/// time. `business_elapsed(s, due_at(s, d, h), h) == d` whenever `s` is inside open hours.
pub fn business_elapsed(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    hours: Option<&BusinessHours>,
) -> Duration {
    if to <= from {
        return Duration::zero();
    }
    let Some(h) = hours else {
        return to - from;
    };
    let mut total = Duration::zero();
    let mut date = h.local_date(from);
    let last = h.local_date(to);
    while date <= last {
        for (open, close) in h.intervals(date) {
            let a = open.max(from);
            let b = close.min(to);
            if a < b {
                total += b - a;
            }
        }
        date = date.succ_opt().expect("date in range");
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `YYYY-MM-DD HH:MM` as UTC.
    fn utc(s: &str) -> DateTime<Utc> {
        Utc.from_utc_datetime(
            &chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test time"),
        )
    }

    /// Parses `YYYY-MM-DD HH:MM` as local time in `tz` (first occurrence).
    fn local(tz: &str, s: &str) -> DateTime<Utc> {
        let tz: Tz = tz.parse().expect("zone");
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time");
        tz.from_local_datetime(&naive)
            .earliest()
            .expect("exists")
            .with_timezone(&Utc)
    }

    fn blocks(spec: &[&str]) -> Vec<Block> {
        spec.iter()
            .map(|s| Block::parse(s).expect("block"))
            .collect()
    }

    /// Weekdays with the given blocks, weekends closed.
    fn weekdays(tz: &str, spec: &[&str], holidays: &[&str]) -> BusinessHours {
        let day = blocks(spec);
        let weekly = [
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day,
            vec![],
            vec![],
        ];
        let holidays = holidays
            .iter()
            .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date"))
            .collect();
        BusinessHours::new(tz, weekly, holidays).expect("hours")
    }

    fn mins(m: i64) -> Duration {
        Duration::minutes(m)
    }

    /// One case: start, SLA minutes, expected due (all UTC for the UTC-zone cases).
    fn check(h: &BusinessHours, start: &str, sla_min: i64, expect: &str) {
        let s = utc(start);
        let due = due_at(s, mins(sla_min), Some(h));
        assert_eq!(due, utc(expect), "start {start} + {sla_min} min");
        // The open time between start and due is the SLA itself.
        assert_eq!(
            business_elapsed(s, due, Some(h)),
            mins(sla_min),
            "elapsed {start}"
        );
    }

    #[test]
    fn parses_blocks_and_rejects_bad_ones() {
        assert_eq!(
            Block::parse("09:00-12:30"),
            Ok(Block {
                open: 540,
                close: 750
            })
        );
        assert_eq!(Block::parse("18:00-24:00").map(|b| b.close), Ok(1440));
        for bad in ["9-12", "12:00-09:00", "09:00-09:00", "25:00-26:00", "09:00"] {
            assert!(Block::parse(bad).is_err(), "{bad}");
        }
        let overlap = [
            blocks(&["09:00-12:00", "11:00-13:00"]),
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        ];
        assert_eq!(
            BusinessHours::new("UTC", overlap, BTreeSet::new()),
            Err(HoursError::Overlap)
        );
        let never: [Vec<Block>; 7] = Default::default();
        assert_eq!(
            BusinessHours::new("UTC", never, BTreeSet::new()),
            Err(HoursError::NeverOpen)
        );
        assert_eq!(
            BusinessHours::new("Mars/Olympus", Default::default(), BTreeSet::new()),
            Err(HoursError::TimeZone("Mars/Olympus".into()))
        );
    }

    #[test]
    fn without_hours_the_clock_always_runs() {
        let s = utc("2026-11-21 23:50");
        assert_eq!(due_at(s, mins(15), None), utc("2026-11-22 00:05"));
        assert_eq!(business_elapsed(s, utc("2026-11-22 00:05"), None), mins(15));
        assert_eq!(business_elapsed(s, s - mins(5), None), Duration::zero());
    }

    #[test]
    fn single_block_edges() {
        // 2026-11-23 is a Monday.
        let h = weekdays("UTC", &["09:00-18:00"], &[]);
        // Inside hours.
        check(&h, "2026-11-23 10:00", 15, "2026-11-23 10:15");
        // Before opening: the clock starts at opening.
        check(&h, "2026-11-23 07:30", 15, "2026-11-23 09:15");
        // Exactly at opening.
        check(&h, "2026-11-23 09:00", 60, "2026-11-23 10:00");
        // Ends exactly at closing.
        check(&h, "2026-11-23 17:00", 60, "2026-11-23 18:00");
        // Starts exactly at closing: nothing is left today.
        check(&h, "2026-11-23 18:00", 15, "2026-11-24 09:15");
        // Spills over closing into the next morning.
        check(&h, "2026-11-23 17:50", 20, "2026-11-24 09:10");
        // After closing.
        check(&h, "2026-11-23 22:00", 120, "2026-11-24 11:00");
        // A zero SLA is due at the next opening.
        check(&h, "2026-11-23 20:00", 0, "2026-11-24 09:00");
        // Longer than a day's hours.
        check(&h, "2026-11-23 09:00", 9 * 60 + 30, "2026-11-24 09:30");
        assert!(h.is_open(utc("2026-11-23 09:00")));
        assert!(!h.is_open(utc("2026-11-23 18:00")));
    }

    #[test]
    fn spans_weekends_and_holidays() {
        // Friday 2026-11-27 17:30, 2 h: 30 min Friday, the weekend is closed, Monday 2026-11-30
        // is a holiday, so the rest runs Tuesday morning.
        let h = weekdays("UTC", &["09:00-18:00"], &["2026-11-30"]);
        check(&h, "2026-11-27 17:30", 120, "2026-12-01 10:30");
        // Arriving on Saturday.
        check(&h, "2026-11-28 12:00", 15, "2026-12-01 09:15");
        // Arriving on the holiday itself.
        check(&h, "2026-11-30 10:00", 15, "2026-12-01 09:15");
        // The same Friday arrival without the holiday is due Monday.
        let plain = weekdays("UTC", &["09:00-18:00"], &[]);
        check(&plain, "2026-11-27 17:30", 120, "2026-11-30 10:30");
    }

    #[test]
    fn several_blocks_per_day() {
        let h = weekdays("UTC", &["09:00-12:00", "13:00-18:00", "19:00-21:00"], &[]);
        // Lunch break does not count.
        check(&h, "2026-11-23 11:50", 20, "2026-11-23 13:10");
        // Start during lunch.
        check(&h, "2026-11-23 12:30", 15, "2026-11-23 13:15");
        // Crosses two gaps.
        check(&h, "2026-11-23 11:00", 60 + 300 + 30, "2026-11-23 19:30");
        // Exactly at the end of the first block.
        check(&h, "2026-11-23 12:00", 60, "2026-11-23 14:00");
        // Evening block runs to the last minute, then next morning.
        check(&h, "2026-11-23 20:30", 45, "2026-11-24 09:15");
    }

    #[test]
    fn daylight_saving_changes() {
        // Europe/Berlin, 24/7 except the clocks: on 2026-03-29 02:00 becomes 03:00. A team open
        // 00:00-24:00 that day is open 23 real hours.
        let all_day = blocks(&["00:00-24:00"]);
        let every_day: [Vec<Block>; 7] = std::array::from_fn(|_| all_day.clone());
        let h = BusinessHours::new("Europe/Berlin", every_day, BTreeSet::new()).expect("hours");
        let start = local("Europe/Berlin", "2026-03-29 01:30");
        let due = due_at(start, mins(60), Some(&h));
        // One real hour after 01:30 CET is 03:30 CEST.
        assert_eq!(due, local("Europe/Berlin", "2026-03-29 03:30"));
        assert_eq!(business_elapsed(start, due, Some(&h)), mins(60));

        // Office hours 09:00-17:00 local: the UTC time of opening shifts by an hour across the
        // change, and an SLA over the weekend lands on Monday's local opening.
        let office = weekdays("Europe/Berlin", &["09:00-17:00"], &[]);
        let friday = local("Europe/Berlin", "2026-03-27 16:30");
        let due = due_at(friday, mins(60), Some(&office));
        assert_eq!(due, local("Europe/Berlin", "2026-03-30 09:30"));
        assert_eq!(due, utc("2026-03-30 07:30"));
        assert_eq!(business_elapsed(friday, due, Some(&office)), mins(60));

        // A block inside the gap (02:00-02:30 on the change day) has no length: the SLA waits
        // for the next day's block.
        let gap_only: [Vec<Block>; 7] = std::array::from_fn(|_| blocks(&["02:00-02:30"]));
        let h = BusinessHours::new("Europe/Berlin", gap_only, BTreeSet::new()).expect("hours");
        let due = due_at(
            local("Europe/Berlin", "2026-03-29 00:00"),
            mins(10),
            Some(&h),
        );
        assert_eq!(due, local("Europe/Berlin", "2026-03-30 02:10"));

        // Autumn: 02:00-03:00 happens twice on 2026-10-25; a 24-hour block is 25 real hours.
        let every_day: [Vec<Block>; 7] = std::array::from_fn(|_| all_day.clone());
        let h = BusinessHours::new("Europe/Berlin", every_day, BTreeSet::new()).expect("hours");
        let day_start = local("Europe/Berlin", "2026-10-25 00:00");
        let next = local("Europe/Berlin", "2026-10-26 00:00");
        assert_eq!(
            business_elapsed(day_start, next, Some(&h)),
            Duration::hours(25)
        );
    }

    #[test]
    fn time_zone_decides_the_local_day() {
        // 2026-11-23 23:30 UTC is Tuesday 07:30 in Shanghai: before opening there.
        let h = weekdays("Asia/Shanghai", &["09:00-18:00"], &[]);
        let due = due_at(utc("2026-11-23 23:30"), mins(15), Some(&h));
        assert_eq!(due, local("Asia/Shanghai", "2026-11-24 09:15"));
        assert_eq!(due, utc("2026-11-24 01:15"));
    }

    #[test]
    fn due_is_monotone_in_start_and_sla() {
        let h = weekdays(
            "Europe/Berlin",
            &["08:00-12:00", "14:00-19:30"],
            &["2026-12-25"],
        );
        let base = utc("2026-12-20 00:00");
        let mut previous = due_at(base, mins(90), Some(&h));
        for step in 1..(14 * 24 * 4) {
            let s = base + mins(15 * step);
            let due = due_at(s, mins(90), Some(&h));
            assert!(due >= previous, "due went backwards at {s}");
            assert!(due_at(s, mins(91), Some(&h)) > due);
            previous = due;
        }
    }
}
