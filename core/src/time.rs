//! Time as a value. Core never reads a clock: callers pass `now` in, so the
//! same code runs in Lambda and in the browser (where `SystemTime::now()`
//! panics on wasm32). Pure, no I/O.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch (UTC).
///
/// On the wire (API, device protocol, table) a timestamp is a JSON number of
/// epoch **seconds** with up to millisecond fraction, as AWS JSON APIs print
/// them (`1763765478.123`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded down: the unit of DynamoDB's TTL attribute.
    pub const fn epoch_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// From epoch seconds as sent on the wire; `None` for NaN, infinities and
    /// values outside ±10^13 seconds.
    pub fn from_secs_f64(secs: f64) -> Option<Self> {
        if !secs.is_finite() || secs.abs() > 1e13 {
            return None;
        }
        Some(Self((secs * 1000.0).round() as i64))
    }
}

impl Timestamp {
    /// A time as a query gives it: epoch seconds (`1795302340`,
    /// `1795302340.5`), or a UTC date and time as AWS IoT's list filters
    /// write it (`2026-11-28T10:15`, also with `:SS` and a trailing `Z`).
    pub fn parse_text(raw: &str) -> Option<Self> {
        if let Ok(secs) = raw.parse::<f64>() {
            return Self::from_secs_f64(secs);
        }
        let raw = raw.strip_suffix('Z').unwrap_or(raw);
        let (date, time) = raw.split_once('T')?;
        let mut d = date.splitn(3, '-');
        let (year, month, day) = (d.next()?, d.next()?, d.next()?);
        let mut t = time.splitn(3, ':');
        let (hour, minute, second) = (t.next()?, t.next()?, t.next().unwrap_or("00"));
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(year, 4)
            && digits(month, 2)
            && digits(day, 2)
            && digits(hour, 2)
            && digits(minute, 2)
            && digits(second, 2))
        {
            return None;
        }
        let num = |s: &str| s.parse::<i64>().ok();
        let (y, m, d, h, mi, se) = (
            num(year)?,
            num(month)?,
            num(day)?,
            num(hour)?,
            num(minute)?,
            num(second)?,
        );
        let month_days = [
            31,
            if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) {
                29
            } else {
                28
            },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let valid = (1..=12).contains(&m)
            && d >= 1
            && d <= month_days[usize::try_from(m - 1).ok()?]
            && h < 24
            && mi < 60
            && se < 60;
        if !valid {
            return None;
        }
        Some(Self::from_secs(
            days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + se,
        ))
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            serializer.serialize_i64(self.0 / 1000)
        } else {
            serializer.serialize_f64(self.as_secs_f64())
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secs = f64::deserialize(deserializer)?;
        Self::from_secs_f64(secs).ok_or_else(|| {
            serde::de::Error::custom("timestamp out of range (epoch seconds expected)")
        })
    }
}

/// A timestamp as its serde form writes it: whole epoch seconds as an
/// integer, else seconds with a fraction.
impl From<Timestamp> for crate::json::Json {
    fn from(t: Timestamp) -> Self {
        use crate::json::{Json, Number};
        if t.millis() % 1000 == 0 {
            Json::from(t.epoch_secs())
        } else {
            Json::Number(Number::Float(t.as_secs_f64()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn wire_form_round_trips(millis in -(1i64 << 50)..(1i64 << 50)) {
            let t = Timestamp::from_millis(millis);
            let json = serde_json::to_string(&t).unwrap();
            let back: Timestamp = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, t);
        }
    }

    #[test]
    fn whole_seconds_print_as_integers() {
        assert_eq!(
            serde_json::to_string(&Timestamp::from_secs(1700000000)).unwrap(),
            "1700000000"
        );
        assert_eq!(
            serde_json::to_string(&Timestamp::from_millis(1700000000123)).unwrap(),
            "1700000000.123"
        );
        assert_eq!(Timestamp::from_millis(-1).epoch_secs(), -1);
    }
}

#[cfg(test)]
mod text_tests {
    use super::Timestamp;

    #[test]
    fn times_in_queries_are_epoch_seconds_or_utc_dates() {
        assert_eq!(
            Timestamp::parse_text("1795302340"),
            Some(Timestamp::from_secs(1_795_302_340))
        );
        assert_eq!(
            Timestamp::parse_text("1970-01-01T00:00"),
            Some(Timestamp::from_secs(0))
        );
        assert_eq!(
            Timestamp::parse_text("2026-11-28T10:15"),
            Some(Timestamp::from_secs(1_795_860_900))
        );
        assert_eq!(
            Timestamp::parse_text("2026-11-28T10:15:30Z"),
            Some(Timestamp::from_secs(1_795_860_930))
        );
        assert_eq!(
            Timestamp::parse_text("2024-02-29T00:00"),
            Some(Timestamp::from_secs(1_709_164_800))
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00",
            "2025-02-29T00:00",
            "2026-11-28",
            "2026-11-28T25:00",
            "2026-1-2T03:04",
        ] {
            assert_eq!(Timestamp::parse_text(bad), None, "{bad}");
        }
    }
}
