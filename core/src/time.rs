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
