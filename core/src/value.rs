//! Typed parameter and result values in the AWS IoT commands wire format:
//! `{"S": "text"}`, `{"B": true}`, `{"I": 32-bit}`, `{"L": 64-bit}`,
//! `{"D": double}`, `{"BIN": "base64"}`, `{"UL": "unsigned 64-bit as string"}`.
//! Pure, no I/O.

use crate::error::{ValidationCode, ValidationError};
use crate::json::{Json, Number as JsonNumber, Object};
use crate::text::{json_kind, quote};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The type tag of a typed value, as written in schemas and on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValueType {
    S,
    B,
    I,
    L,
    D,
    #[serde(rename = "BIN")]
    Bin,
    #[serde(rename = "UL")]
    Ul,
}

impl ValueType {
    pub const ALL: [Self; 7] = [
        Self::S,
        Self::B,
        Self::I,
        Self::L,
        Self::D,
        Self::Bin,
        Self::Ul,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::B => "B",
            Self::I => "I",
            Self::L => "L",
            Self::D => "D",
            Self::Bin => "BIN",
            Self::Ul => "UL",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == tag)
    }

    /// What a person should send for this type, used in error messages.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::S => "a string, as {\"S\": \"text\"}",
            Self::B => "a boolean, as {\"B\": true}",
            Self::I => "a 32-bit integer, as {\"I\": 42}",
            Self::L => "a 64-bit integer, as {\"L\": 42}",
            Self::D => "a double, as {\"D\": 4.2}",
            Self::Bin => "base64 bytes, as {\"BIN\": \"aGk=\"}",
            Self::Ul => "an unsigned 64-bit integer as a string, as {\"UL\": \"42\"}",
        }
    }

    pub const fn is_numeric(self) -> bool {
        match self {
            Self::I | Self::L | Self::D | Self::Ul => true,
            Self::S | Self::B | Self::Bin => false,
        }
    }
}

impl crate::text::Piece for ValueType {
    fn put(&self, out: &mut String) {
        out.push_str(self.as_str());
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One typed value. `Bin` holds the decoded bytes; `Ul` the parsed number.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedValue {
    S(String),
    B(bool),
    I(i32),
    L(i64),
    D(f64),
    Bin(Vec<u8>),
    Ul(u64),
}

/// A number from a typed value or a schema bound, compared exactly where
/// both sides are integers (so 64-bit bounds do not lose precision).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    pub fn from_json(number: &JsonNumber) -> Self {
        match number.as_i128() {
            Some(i) => Self::Int(i),
            None => Self::Float(number.as_f64()),
        }
    }

    pub fn partial_cmp(self, other: Self) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        }
    }
}

/// A number literal as the server's JSON reader reads it: a whole number
/// that fits 64 bits exactly, anything else as a double. `None` for text
/// that is not a JSON number.
pub(crate) fn number_from_text(text: &str) -> Option<JsonNumber> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.len() == 1 || !digits.starts_with('0'));
    if plain {
        if let Ok(n) = text.parse::<i64>() {
            return Some(JsonNumber::from_i64(n));
        }
        if let Ok(n) = text.parse::<u64>() {
            return Some(JsonNumber::PosInt(n));
        }
    }
    // Only decimal literals (so the host's reader, JavaScript's Number()
    // in the browser, never sees hex, "Infinity" or an empty string).
    let decimal = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !decimal {
        return None;
    }
    crate::json::parse_double(text).map(JsonNumber::Float)
}

/// As JavaScript would print it (see `json::number_text`): the same text
/// on the server, in the WASM module and in generated validators.
impl crate::text::Piece for Number {
    fn put(&self, out: &mut String) {
        match *self {
            // Every Int is a 64-bit value (I, L, UL or a bound that fits).
            Self::Int(i) => {
                if i < 0 {
                    out.push('-');
                }
                crate::json::push_u64(out, u64::try_from(i.unsigned_abs()).unwrap_or(u64::MAX));
            }
            Self::Float(x) => out.push_str(&crate::json::number_text(x)),
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => f.write_str(&crate::json::number_text(*x)),
        }
    }
}

impl TypedValue {
    pub const fn value_type(&self) -> ValueType {
        match self {
            Self::S(_) => ValueType::S,
            Self::B(_) => ValueType::B,
            Self::I(_) => ValueType::I,
            Self::L(_) => ValueType::L,
            Self::D(_) => ValueType::D,
            Self::Bin(_) => ValueType::Bin,
            Self::Ul(_) => ValueType::Ul,
        }
    }

    pub fn as_number(&self) -> Option<Number> {
        match self {
            Self::I(i) => Some(Number::Int(i128::from(*i))),
            Self::L(l) => Some(Number::Int(i128::from(*l))),
            Self::Ul(u) => Some(Number::Int(i128::from(*u))),
            Self::D(d) => Some(Number::Float(*d)),
            Self::S(_) | Self::B(_) | Self::Bin(_) => None,
        }
    }

    /// Parses one wire value (`{"TAG": payload}`), reporting problems at `path`.
    pub fn from_json_at(json: &Json, path: &str) -> Result<Self, ValidationError> {
        let wrong =
            |message: String| ValidationError::new(path, ValidationCode::WrongType, message);
        let Json::Object(map) = json else {
            return Err(wrong(crate::text::msg![
                "expected a typed value such as {\"S\": \"text\"}, got ",
                json_kind(json)
            ]));
        };
        let mut entries = map.iter();
        let (Some((tag, payload)), None) = (entries.next(), entries.next()) else {
            return Err(wrong(crate::text::msg![
                "a typed value has exactly one key (S, B, I, L, D, BIN or UL), got ",
                map.len()
            ]));
        };
        let Some(value_type) = ValueType::from_tag(tag) else {
            return Err(wrong(crate::text::msg![
                "unknown type tag ",
                quote(tag),
                "; use S, B, I, L, D, BIN or UL"
            ]));
        };
        Self::from_payload(value_type, payload, path)
    }

    /// Parses the payload of a value whose tag is already known.
    pub fn from_payload(
        value_type: ValueType,
        payload: &Json,
        path: &str,
    ) -> Result<Self, ValidationError> {
        let wrong = || {
            ValidationError::new(
                path,
                ValidationCode::WrongType,
                crate::text::msg![
                    "expected ",
                    value_type.describe(),
                    ", got ",
                    json_kind(payload)
                ],
            )
        };
        // Only whole numbers are out of range (a fraction is a wrong type).
        let out_of_range = |what: &str| {
            let number = payload
                .as_number()
                .map(|n| crate::text::msg![n])
                .unwrap_or_default();
            ValidationError::new(
                path,
                ValidationCode::OutOfRange,
                crate::text::msg![number, " does not fit ", what],
            )
        };
        match value_type {
            ValueType::S => payload
                .as_str()
                .map(|s| Self::S(s.to_owned()))
                .ok_or_else(wrong),
            ValueType::B => payload.as_bool().map(Self::B).ok_or_else(wrong),
            ValueType::I => {
                let Json::Number(n) = payload else {
                    return Err(wrong());
                };
                match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => i32::try_from(i)
                        .map(Self::I)
                        .map_err(|_| out_of_range("a 32-bit integer")),
                    (None, Some(_)) => Err(out_of_range("a 32-bit integer")),
                    (None, None) => Err(wrong()),
                }
            }
            ValueType::L => {
                let Json::Number(n) = payload else {
                    return Err(wrong());
                };
                match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => Ok(Self::L(i)),
                    (None, Some(_)) => Err(out_of_range("a 64-bit integer")),
                    (None, None) => Err(wrong()),
                }
            }
            ValueType::D => {
                let Json::Number(n) = payload else {
                    return Err(wrong());
                };
                // -0 is 0: JSON.stringify writes it so, and a browser's
                // double must mean what the server's does.
                Some(n.as_f64() + 0.0)
                    .filter(|d| d.is_finite())
                    .map(Self::D)
                    .ok_or_else(wrong)
            }
            ValueType::Bin => {
                let Some(text) = payload.as_str() else {
                    return Err(wrong());
                };
                crate::base64::decode(text).map(Self::Bin).map_err(|why| {
                    ValidationError::new(
                        path,
                        ValidationCode::InvalidBase64,
                        crate::text::msg!["not valid base64: ", why],
                    )
                })
            }
            ValueType::Ul => {
                let Some(text) = payload.as_str() else {
                    return Err(ValidationError::new(
                        path,
                        ValidationCode::InvalidUnsignedLong,
                        crate::text::msg![
                            "UL is sent as a decimal string, e.g. {\"UL\": \"42\"}; got ",
                            json_kind(payload)
                        ],
                    ));
                };
                let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
                match text.parse::<u64>() {
                    Ok(u) if digits_only => Ok(Self::Ul(u)),
                    _ => Err(ValidationError::new(
                        path,
                        ValidationCode::InvalidUnsignedLong,
                        crate::text::msg![
                            quote(text),
                            " is not an unsigned 64-bit integer (0 to 18446744073709551615)"
                        ],
                    )),
                }
            }
        }
    }

    /// A value of `value_type` from what a person types into a form: the
    /// text as the payload of a string type; a number or `true`/`false` read
    /// from it otherwise, then checked exactly as the API checks that
    /// payload. An L beyond ±2^53 is refused: a browser's numbers cannot
    /// carry it exactly to the API.
    pub fn from_text(
        value_type: ValueType,
        text: &str,
        path: &str,
    ) -> Result<Self, ValidationError> {
        let text = text.trim();
        let payload = match value_type {
            ValueType::S | ValueType::Bin | ValueType::Ul => Json::from(text),
            ValueType::B => match text {
                "true" => Json::Bool(true),
                "false" => Json::Bool(false),
                other => {
                    return Err(ValidationError::new(
                        path,
                        ValidationCode::WrongType,
                        crate::text::msg!["expected true or false, got ", quote(other)],
                    ))
                }
            },
            ValueType::I | ValueType::L | ValueType::D => match number_from_text(text) {
                Some(n) => Json::Number(n),
                None => {
                    return Err(ValidationError::new(
                        path,
                        ValidationCode::WrongType,
                        crate::text::msg![
                            "expected ",
                            value_type.describe(),
                            ", got ",
                            quote(text)
                        ],
                    ))
                }
            },
        };
        let value = Self::from_payload(value_type, &payload, path)?;
        if let Self::L(l) = value {
            if l.unsigned_abs() > (1u64 << 53) {
                return Err(ValidationError::new(
                    path,
                    ValidationCode::OutOfRange,
                    crate::text::msg![l, " is beyond ±2^53: a browser cannot send it exactly"],
                ));
            }
        }
        Ok(value)
    }

    /// The wire form, `{"TAG": payload}`.
    pub fn to_json(&self) -> Json {
        let payload = match self {
            Self::S(s) => Json::from(s.as_str()),
            Self::B(b) => Json::from(*b),
            Self::I(i) => Json::from(*i),
            Self::L(l) => Json::from(*l),
            Self::D(d) => Json::Number(JsonNumber::Float(*d)),
            Self::Bin(bytes) => Json::from(crate::base64::encode(bytes)),
            Self::Ul(u) => Json::from(crate::text::msg![u]),
        };
        let mut map = Object::new();
        map.insert(self.value_type().as_str().to_owned(), payload);
        Json::Object(map)
    }
}

impl Serialize for TypedValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TypedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(deserializer)?;
        Self::from_json_at(&json, "value").map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<TypedValue, ValidationCode> {
        let v: Json = serde_json::from_value(v).unwrap();
        TypedValue::from_json_at(&v, "p").map_err(|e| e.code)
    }

    #[test]
    fn parses_every_type() {
        assert_eq!(parse(json!({"S": "hi"})), Ok(TypedValue::S("hi".into())));
        assert_eq!(parse(json!({"B": true})), Ok(TypedValue::B(true)));
        assert_eq!(parse(json!({"I": -5})), Ok(TypedValue::I(-5)));
        assert_eq!(
            parse(json!({"L": 9007199254740993i64})),
            Ok(TypedValue::L(9007199254740993))
        );
        assert_eq!(parse(json!({"D": 2.5})), Ok(TypedValue::D(2.5)));
        assert_eq!(parse(json!({"D": 2})), Ok(TypedValue::D(2.0)));
        assert_eq!(
            parse(json!({"BIN": "aGk="})),
            Ok(TypedValue::Bin(b"hi".to_vec()))
        );
        assert_eq!(
            parse(json!({"UL": "18446744073709551615"})),
            Ok(TypedValue::Ul(u64::MAX))
        );
    }

    #[test]
    fn refuses_bad_values_with_their_codes() {
        assert_eq!(
            parse(json!({"I": 2147483648i64})),
            Err(ValidationCode::OutOfRange)
        );
        assert_eq!(parse(json!({"I": 1.5})), Err(ValidationCode::WrongType));
        assert_eq!(
            parse(json!({"L": 18446744073709551615u64})),
            Err(ValidationCode::OutOfRange)
        );
        assert_eq!(
            parse(json!({"BIN": "not base64!"})),
            Err(ValidationCode::InvalidBase64)
        );
        assert_eq!(
            parse(json!({"UL": "-1"})),
            Err(ValidationCode::InvalidUnsignedLong)
        );
        assert_eq!(
            parse(json!({"UL": "+1"})),
            Err(ValidationCode::InvalidUnsignedLong)
        );
        assert_eq!(
            parse(json!({"UL": "18446744073709551616"})),
            Err(ValidationCode::InvalidUnsignedLong)
        );
        assert_eq!(
            parse(json!({"UL": 5})),
            Err(ValidationCode::InvalidUnsignedLong)
        );
        assert_eq!(parse(json!({"S": 1})), Err(ValidationCode::WrongType));
        assert_eq!(parse(json!({"X": 1})), Err(ValidationCode::WrongType));
        assert_eq!(
            parse(json!({"S": "a", "B": true})),
            Err(ValidationCode::WrongType)
        );
        assert_eq!(parse(json!("bare")), Err(ValidationCode::WrongType));
    }

    #[test]
    fn wire_form_round_trips() {
        for v in [
            json!({"S": "x"}),
            json!({"B": false}),
            json!({"I": 7}),
            json!({"L": -7}),
            json!({"D": 0.25}),
            json!({"BIN": "AAEC"}),
            json!({"UL": "12"}),
        ] {
            let typed: TypedValue = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&typed).unwrap(), v);
        }
    }
}
