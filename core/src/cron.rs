//! MAINTENANCE WINDOWS: a cron expression in UTC plus a duration, and the
//! questions a pipeline run asks of them (is a window open now, when does it
//! close, when does the next one open). Pure, no I/O; time is an argument.
//!
//! The dialect is Unix cron (crontab(5)), five fields, always UTC:
//!
//! | field        | values                | names     |
//! |--------------|-----------------------|-----------|
//! | minute       | 0–59                  |           |
//! | hour         | 0–23                  |           |
//! | day of month | 1–31                  |           |
//! | month        | 1–12                  | JAN–DEC   |
//! | day of week  | 0–7 (0 and 7: Sunday) | SUN–SAT   |
//!
//! Each field is `*`, a value, a range `a-b`, a step `*/n` or `a-b/n`, or a
//! comma-separated list of those; names are case-insensitive. As in Vixie
//! cron, when both day of month and day of week are restricted, a day
//! matching either one matches. `?` is read as `*` in the two day fields
//! (AWS writes it there). Not supported, and refused with the construct
//! named: `@daily`-style shortcuts, `L`, `W`, `#`, a sixth (year or
//! seconds) field — AWS's `cron(...)` form numbers weekdays 1–7 from Sunday,
//! so reading it silently as Unix cron would shift every window by a day.

use crate::time::Timestamp;

/// The longest maintenance window, in minutes (a day).
pub const MAX_WINDOW_MINUTES: u32 = 1440;

/// How far ahead [`Window::next_opening`] looks: a cron expression that
/// fires only on 29 February can wait eight years; beyond that it never fires.
const LOOKAHEAD_DAYS: i64 = 8 * 366;

/// A parsed five-field cron expression, as bit sets of the values it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    /// Whether day of month / day of week were `*` (Vixie's either-or rule).
    any_day_of_month: bool,
    any_day_of_week: bool,
    text: String,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One field's rules: its name in messages, its range, its names (the
/// first name stands for `low`).
struct Field {
    name: &'static str,
    low: u32,
    high: u32,
    names: &'static [&'static str],
    question_mark: bool,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        low: 0,
        high: 59,
        names: &[],
        question_mark: false,
    },
    Field {
        name: "hour",
        low: 0,
        high: 23,
        names: &[],
        question_mark: false,
    },
    Field {
        name: "day of month",
        low: 1,
        high: 31,
        names: &[],
        question_mark: true,
    },
    Field {
        name: "month",
        low: 1,
        high: 12,
        names: &MONTHS,
        question_mark: false,
    },
    Field {
        name: "day of week",
        low: 0,
        high: 7,
        names: &WEEKDAYS,
        question_mark: true,
    },
];

impl Cron {
    /// Parses `text`, or says what is wrong with it (a sentence naming the
    /// field and the construct).
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed.starts_with('@') {
            return Err(crate::text::msg![
                "shortcuts such as ",
                crate::text::quote(trimmed),
                " are not supported; write the five fields (e.g. \"0 2 * * *\")"
            ]);
        }
        if trimmed.starts_with("cron(") {
            return Err(
                "AWS's cron(...) form is not supported (it numbers weekdays from 1); write the five Unix fields, e.g. \"0 2 * * SUN\"".into(),
            );
        }
        let parts: Vec<&str> = trimmed.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(crate::text::msg![
                "expected 5 fields (minute hour day-of-month month day-of-week, in UTC), got ",
                parts.len()
            ]);
        }
        let mut sets = [0u64; 5];
        for (i, (part, field)) in parts.iter().zip(FIELDS.iter()).enumerate() {
            sets[i] = parse_field(part, field)?;
        }
        // Day of week 7 is Sunday, as 0 is.
        let weekdays = (sets[4] | (sets[4] >> 7)) & 0x7f;
        let star = |s: &str| s == "*" || s == "?";
        Ok(Self {
            minutes: sets[0],
            hours: u32::try_from(sets[1]).unwrap_or(0),
            days_of_month: u32::try_from(sets[2]).unwrap_or(0),
            months: u16::try_from(sets[3]).unwrap_or(0),
            days_of_week: u8::try_from(weekdays).unwrap_or(0),
            any_day_of_month: star(parts[2]),
            any_day_of_week: star(parts[4]),
            text: parts.join(" "),
        })
    }

    /// The expression as given (fields separated by one space).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the day `days` (since 1970-01-01) matches the date fields.
    fn day_matches(&self, days: i64) -> bool {
        let (_, month, day) = civil_from_days(days);
        if self.months & (1 << month) == 0 {
            return false;
        }
        // 1970-01-01 was a Thursday (4).
        let weekday = (days + 4).rem_euclid(7);
        let by_month_day = self.days_of_month & (1 << day) != 0;
        let by_weekday = self.days_of_week & (1 << weekday) != 0;
        match (self.any_day_of_month, self.any_day_of_week) {
            (true, true) => true,
            (true, false) => by_weekday,
            (false, true) => by_month_day,
            (false, false) => by_month_day || by_weekday,
        }
    }

    /// Whether the minute starting at `minute` (minutes since the epoch)
    /// matches.
    pub fn matches_minute(&self, minute: i64) -> bool {
        let in_day = minute.rem_euclid(1440);
        self.hours & (1 << (in_day / 60)) != 0
            && self.minutes & (1 << (in_day % 60)) != 0
            && self.day_matches(minute.div_euclid(1440))
    }

    /// The first matching minute at or after `minute`, within the lookahead.
    fn next_match(&self, minute: i64) -> Option<i64> {
        let first_day = minute.div_euclid(1440);
        for day in first_day..first_day + LOOKAHEAD_DAYS {
            if !self.day_matches(day) {
                continue;
            }
            let from = if day == first_day {
                minute.rem_euclid(1440)
            } else {
                0
            };
            for hour in from / 60..24 {
                if self.hours & (1 << hour) == 0 {
                    continue;
                }
                let first_minute = if hour == from / 60 { from % 60 } else { 0 };
                for m in first_minute..60 {
                    if self.minutes & (1 << m) != 0 {
                        return Some(day * 1440 + hour * 60 + m);
                    }
                }
            }
        }
        None
    }
}

fn parse_field(part: &str, field: &Field) -> Result<u64, String> {
    let mut set = 0u64;
    for item in part.split(',') {
        set |= parse_item(item, field).map_err(|problem| {
            crate::text::msg![
                "the ",
                field.name,
                " field ",
                crate::text::quote(part),
                ": ",
                problem
            ]
        })?;
    }
    Ok(set)
}

fn parse_item(item: &str, field: &Field) -> Result<u64, String> {
    if item.is_empty() {
        return Err("an empty list item".into());
    }
    // Names (JUL, WED) may hold the letters; what is left may not.
    let mut bare = item.to_ascii_uppercase();
    for name in field.names {
        bare = bare.replace(name, "");
    }
    for construct in ["L", "W", "#"] {
        if bare.contains(construct) {
            return Err(crate::text::msg![
                "\"",
                construct,
                "\" is not supported (Unix cron has no last-day, weekday-nearest or nth-weekday forms)"
            ]);
        }
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => {
            let step: u32 = step
                .parse()
                .ok()
                .filter(|s| *s >= 1 && *s <= field.high)
                .ok_or_else(|| {
                    crate::text::msg![
                        "the step after \"/\" must be a whole number from 1 to ",
                        field.high
                    ]
                })?;
            (range, step)
        }
        None => (item, 1),
    };
    let (low, high) = if range == "*" || (range == "?" && field.question_mark) {
        (field.low, field.high)
    } else if let Some((a, b)) = range.split_once('-') {
        let (a, b) = (value(a, field)?, value(b, field)?);
        if a > b {
            return Err(crate::text::msg![
                "the range ",
                crate::text::quote(range),
                " runs backwards"
            ]);
        }
        (a, b)
    } else {
        let a = value(range, field)?;
        // `5/15` means from 5 to the end, every 15 (as Vixie cron reads it).
        (a, if step > 1 { field.high } else { a })
    };
    let mut set = 0u64;
    let mut v = low;
    while v <= high {
        set |= 1 << v;
        v += step;
    }
    Ok(set)
}

fn value(raw: &str, field: &Field) -> Result<u32, String> {
    let upper = raw.to_ascii_uppercase();
    if let Some(i) = field.names.iter().position(|n| *n == upper) {
        return Ok(field.low + u32::try_from(i).unwrap_or(0));
    }
    match raw.parse::<u32>() {
        Ok(v)
            if (field.low..=field.high).contains(&v) && raw.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(v)
        }
        _ => Err(crate::text::msg![
            crate::text::quote(raw),
            " is not a value from ",
            field.low,
            " to ",
            field.high,
            if field.names.is_empty() {
                ""
            } else if field.names.len() == 7 {
                " or SUN-SAT"
            } else {
                " or JAN-DEC"
            }
        ]),
    }
}

/// (year, month 1–12, day 1–31) of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

/// A recurring maintenance window: it opens at each minute `start` matches
/// and stays open `duration_minutes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub start: Cron,
    pub duration_minutes: u32,
}

impl Window {
    /// Whether the window is open at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.open_until(now).is_some()
    }

    /// When the window that is open at `now` closes (the latest of the
    /// openings still running), or `None` if it is closed.
    pub fn open_until(&self, now: Timestamp) -> Option<Timestamp> {
        let minute = now.epoch_secs().div_euclid(60);
        let duration = i64::from(self.duration_minutes);
        (minute - duration + 1..=minute)
            .rev()
            .find(|m| self.start.matches_minute(*m))
            .map(|m| Timestamp::from_secs((m + duration) * 60))
    }

    /// When the window next opens at or after `now`, or `None` if its
    /// expression never fires again (e.g. `0 0 30 2 *`).
    pub fn next_opening(&self, now: Timestamp) -> Option<Timestamp> {
        // A minute already begun has opened (or not) before `now`.
        let minute = (now.millis() + 59_999).div_euclid(60_000);
        self.start
            .next_match(minute)
            .map(|m| Timestamp::from_secs(m * 60))
    }
}

/// A run's maintenance windows: new stages start only while one of them is
/// open (always, when there are none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windows(pub Vec<Window>);

impl Windows {
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.0.is_empty() || self.0.iter().any(|w| w.is_open(now))
    }

    /// When new stages may start next: `now` if a window is open, else the
    /// earliest opening; `None` if no window ever opens again.
    pub fn next_start(&self, now: Timestamp) -> Option<Timestamp> {
        if self.is_open(now) {
            return Some(now);
        }
        self.0.iter().filter_map(|w| w.next_opening(now)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_text(text).expect(text)
    }

    fn window(cron: &str, minutes: u32) -> Window {
        Window {
            start: Cron::parse(cron).expect(cron),
            duration_minutes: minutes,
        }
    }

    #[test]
    fn civil_dates_round_trip_over_four_centuries() {
        for days in (-800_000..800_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            let text = crate::text::msg![format!("{y:04}-{m:02}-{d:02}"), "T00:00"];
            if (0..=9999).contains(&y) {
                assert_eq!(at(&text).epoch_secs(), days * 86_400, "{text}");
            }
        }
    }

    #[test]
    fn every_field_form_parses_to_the_values_it_names() {
        let c = Cron::parse("*/15 1-3,22 * JAN-mar mon-FRI").unwrap();
        assert_eq!(c.minutes, 1 | 1 << 15 | 1 << 30 | 1 << 45);
        assert_eq!(c.hours, 0b1110 | 1 << 22);
        assert_eq!(c.months, 0b1110);
        assert_eq!(c.days_of_week, 0b011_1110);
        let c = Cron::parse("5/20 0 1 * 7").unwrap();
        assert_eq!(c.minutes, 1 << 5 | 1 << 25 | 1 << 45);
        assert_eq!(c.days_of_week, 1, "7 is Sunday");
        assert!(Cron::parse("0 0 ? * ?").unwrap().any_day_of_week);
    }

    #[test]
    fn refused_expressions_name_the_field_and_the_construct() {
        let cases = [
            ("@daily", "shortcuts"),
            ("cron(0 2 * * ? *)", "AWS's cron"),
            ("0 2 * *", "expected 5 fields"),
            ("0 2 * * * 2026", "expected 5 fields"),
            (
                "60 * * * *",
                "the minute field \"60\": \"60\" is not a value from 0 to 59",
            ),
            ("0 24 * * *", "the hour field"),
            ("0 0 L * *", "\"L\" is not supported"),
            ("0 0 * * MON#2", "\"#\" is not supported"),
            ("0 0 15W * *", "\"W\" is not supported"),
            ("0 5-1 * * *", "runs backwards"),
            ("*/0 * * * *", "the step"),
            ("0 0 * FOO *", "or JAN-DEC"),
            ("0 ? * * *", "the hour field"),
            ("0,,5 * * * *", "an empty list item"),
            ("+5 * * * *", "is not a value"),
        ];
        for (text, expected) in cases {
            let problem = Cron::parse(text).expect_err(text);
            assert!(problem.contains(expected), "{text}: {problem}");
        }
    }

    #[test]
    fn either_day_field_matches_when_both_are_restricted() {
        // The 13th, or any Friday.
        let c = Cron::parse("0 0 13 * FRI").unwrap();
        let day = |t: &str| at(t).epoch_secs() / 60;
        assert!(c.matches_minute(day("2026-11-13T00:00"))); // a Friday the 13th
        assert!(c.matches_minute(day("2026-11-20T00:00"))); // a Friday
        assert!(c.matches_minute(day("2026-10-13T00:00"))); // a Tuesday the 13th
        assert!(!c.matches_minute(day("2026-11-19T00:00")));
        // Only the weekday restricted: the day of month does not widen it.
        let c = Cron::parse("0 0 * * FRI").unwrap();
        assert!(!c.matches_minute(day("2026-10-13T00:00")));
    }

    #[test]
    fn a_window_is_open_from_its_start_for_its_duration() {
        // 02:00 to 04:00 UTC every Sunday; 2026-11-29 is a Sunday.
        let w = window("0 2 * * SUN", 120);
        assert!(!w.is_open(at("2026-11-29T01:59:59")));
        assert!(w.is_open(at("2026-11-29T02:00")));
        assert!(w.is_open(at("2026-11-29T03:59:59")));
        assert!(!w.is_open(at("2026-11-29T04:00")));
        assert!(!w.is_open(at("2026-11-30T02:30")));
        assert_eq!(
            w.open_until(at("2026-11-29T03:10")),
            Some(at("2026-11-29T04:00"))
        );
    }

    #[test]
    fn a_window_crossing_midnight_and_the_year_stays_open() {
        let w = window("30 23 31 12 *", 60);
        assert!(w.is_open(at("2026-12-31T23:45")));
        assert!(w.is_open(at("2027-01-01T00:29")));
        assert!(!w.is_open(at("2027-01-01T00:30")));
    }

    #[test]
    fn the_next_opening_is_the_first_matching_minute_not_before_now() {
        let w = window("0 2 * * SUN", 120);
        assert_eq!(
            w.next_opening(at("2026-11-28T18:00")),
            Some(at("2026-11-29T02:00"))
        );
        assert_eq!(
            w.next_opening(at("2026-11-29T02:00")),
            Some(at("2026-11-29T02:00"))
        );
        assert_eq!(
            w.next_opening(at("2026-11-29T02:00:01")),
            Some(at("2026-12-06T02:00"))
        );
        let leap = window("0 0 29 2 *", 60);
        assert_eq!(
            leap.next_opening(at("2026-03-01T00:00")),
            Some(at("2028-02-29T00:00"))
        );
        assert_eq!(
            window("0 0 30 2 *", 60).next_opening(at("2026-01-01T00:00")),
            None
        );
    }

    #[test]
    fn no_windows_means_always_open_and_several_mean_any() {
        let now = at("2026-11-28T18:00");
        assert!(Windows::default().is_open(now));
        let ws = Windows(vec![window("0 2 * * *", 60), window("0 20 * * *", 30)]);
        assert!(!ws.is_open(now));
        assert_eq!(ws.next_start(now), Some(at("2026-11-28T20:00")));
        assert_eq!(
            ws.next_start(at("2026-11-28T20:10")),
            Some(at("2026-11-28T20:10"))
        );
    }

    proptest::proptest! {
        /// The search agrees with checking minute by minute.
        #[test]
        fn next_opening_matches_a_minute_by_minute_scan(
            minute in "[0-9]|[1-5][0-9]|\\*/[1-9]",
            hour in "[0-9]|1[0-9]|2[0-3]|\\*",
            weekday in "[0-6]|\\*",
            start in 1_700_000_000i64..1_900_000_000,
        ) {
            let text = crate::text::msg![minute, " ", hour, " * * ", weekday];
            let w = window(&text, 1);
            let now = Timestamp::from_secs(start);
            let found = w.next_opening(now).expect("fires weekly at least");
            let first = (start + 59).div_euclid(60);
            let scanned = (first..first + 8 * 1440).find(|m| w.start.matches_minute(*m)).unwrap();
            proptest::prop_assert_eq!(found, Timestamp::from_secs(scanned * 60));
        }
    }
}
