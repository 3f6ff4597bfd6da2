//! JSON AS CORE READS IT: the value model every rule parses requests from
//! ([`Json`]), the same on the server (deserialized from a request body
//! through serde) and in the browser (built by the WASM module from
//! JavaScript values, with no JSON text in between). Numbers are classified
//! as the server's JSON reader classifies them (an integer literal that
//! fits 64 bits, else a double), objects iterate in key order. Numbers are
//! shown in messages as JavaScript shows them ([`number_text`]), so a
//! browser can print the same text without this crate. Pure, no I/O.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::fmt;

/// A JSON value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Json {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Object),
}

/// A JSON object, its keys in order (byte order, as the server's reader
/// keeps them).
pub type Object = crate::map::SortedMap<Json>;

/// A JSON number, as the server's reader classifies its literal: a whole
/// number that fits `i64` or `u64`, else a double.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    PosInt(u64),
    NegInt(i64),
    Float(f64),
}

impl Number {
    /// The number JavaScript's `JSON.stringify(x)` writes, read back as the
    /// server reads it: an integer-valued double below 10^21 is written as
    /// an integer literal (and so is an integer if it fits 64 bits),
    /// anything else as a double. `None` for NaN and infinities (which
    /// JSON.stringify writes as `null`).
    pub fn from_js(x: f64) -> Option<Self> {
        if !x.is_finite() {
            return None;
        }
        if x.fract() == 0.0 && x.abs() < 1e21 {
            // Exact: every integer-valued double below 2^64 converts.
            if (0.0..18_446_744_073_709_551_616.0).contains(&x) {
                return Some(Self::from_u64(x as u64));
            }
            if (-9_223_372_036_854_775_808.0..0.0).contains(&x) {
                return Some(Self::NegInt(x as i64));
            }
        }
        Some(Self::Float(x))
    }

    pub fn from_u64(n: u64) -> Self {
        Self::PosInt(n)
    }

    pub fn from_i64(n: i64) -> Self {
        if n >= 0 {
            Self::PosInt(n.unsigned_abs())
        } else {
            Self::NegInt(n)
        }
    }

    pub fn as_i64(self) -> Option<i64> {
        match self {
            Self::PosInt(n) => i64::try_from(n).ok(),
            Self::NegInt(n) => Some(n),
            Self::Float(_) => None,
        }
    }

    pub fn as_u64(self) -> Option<u64> {
        match self {
            Self::PosInt(n) => Some(n),
            Self::NegInt(_) | Self::Float(_) => None,
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Self::PosInt(n) => n as f64,
            Self::NegInt(n) => n as f64,
            Self::Float(x) => x,
        }
    }

    /// Whole numbers exactly, doubles as doubles: for comparisons that must
    /// not lose 64-bit precision.
    pub fn as_i128(self) -> Option<i128> {
        match self {
            Self::PosInt(n) => Some(i128::from(n)),
            Self::NegInt(n) => Some(i128::from(n)),
            Self::Float(_) => None,
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PosInt(n) => write!(f, "{n}"),
            Self::NegInt(n) => write!(f, "{n}"),
            Self::Float(x) => f.write_str(&number_text(*x)),
        }
    }
}

impl Number {
    /// The number as a message and `JSON.stringify` write it: integers in
    /// full, doubles as JavaScript writes them.
    pub fn write_text(&self, out: &mut String) {
        match *self {
            Self::PosInt(n) => push_u64(out, n),
            Self::NegInt(n) => push_i64(out, n),
            Self::Float(x) => out.push_str(&number_text(x)),
        }
    }
}

/// Decimal digits of `n` (without `core::fmt`, which would weigh on the
/// browser build).
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in &digits[at..] {
        out.push(char::from(*d));
    }
}

/// Decimal digits of `n`, with a `-` when negative.
pub fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
}

/// A double as JavaScript writes it (`Number.prototype.toString`): the
/// shortest digits that read back as the same double, in plain notation
/// from 10^-6 up to 10^21 and in exponent notation (`1e+21`, `1.5e-7`)
/// outside it; `-0` is `0`. In the browser build (feature `host-doubles`)
/// this is the browser's own `String(x)`, installed by the WASM module
/// with [`use_host_doubles`]; `tests/vectors/numbers.json` holds the two to
/// the same text.
pub fn number_text(x: f64) -> String {
    #[cfg(feature = "host-doubles")]
    return HOST_DOUBLES
        .get()
        .map_or_else(String::new, |host| (host.write)(x));
    #[cfg(not(feature = "host-doubles"))]
    rust_number_text(x)
}

/// The double a decimal literal (`-1.5e3`, `.5`, `2.`) denotes, correctly
/// rounded; `None` if it is not one or is out of range. The caller has
/// checked it holds only digits, signs, `.`, `e` and `E`. In the browser
/// build this is JavaScript's `Number(text)`.
pub fn parse_double(text: &str) -> Option<f64> {
    #[cfg(feature = "host-doubles")]
    let x = HOST_DOUBLES
        .get()
        .map_or(f64::NAN, |host| (host.read)(text));
    #[cfg(not(feature = "host-doubles"))]
    let x = text.parse::<f64>().unwrap_or(f64::NAN);
    Some(x).filter(|x| x.is_finite())
}

/// How a host writes and reads doubles. The browser's own `String(x)` and
/// `Number(text)` are by definition what a browser writes and reads, and
/// using them leaves Rust's float formatting and parsing (tables and all,
/// a fifth of the module) out of the browser build.
#[derive(Debug, Clone, Copy)]
pub struct HostDoubles {
    pub write: fn(f64) -> String,
    pub read: fn(&str) -> f64,
}

#[cfg(feature = "host-doubles")]
static HOST_DOUBLES: std::sync::OnceLock<HostDoubles> = std::sync::OnceLock::new();

/// Installs the host's doubles (feature `host-doubles`): the WASM module
/// does so when it is instantiated, before any export can run.
#[cfg(feature = "host-doubles")]
pub fn use_host_doubles(doubles: HostDoubles) {
    let _ = HOST_DOUBLES.set(doubles);
}

/// ECMAScript picks, of two shortest digit strings that read back as `x`
/// and lie equally close to it, the even one; Rust's `{:e}` may give the
/// odd one (`1000000000000000.3` where JavaScript writes `...0.2` for
/// 1e15 + 0.25). When `x` lies exactly halfway between two such digit
/// strings and Rust gave the odd one, the even one (and its exponent).
#[cfg(not(feature = "host-doubles"))]
fn even_twin(x: f64, digits: &str, exponent: i32) -> Option<(String, i32)> {
    let k = digits.len();
    if digits.bytes().last().is_none_or(|d| d % 2 == 0) {
        return None;
    }
    // A tie needs x's exact decimal expansion to stop at digit k + 1 with
    // a 5. 800 significant digits hold any double's expansion exactly.
    let exact = format!("{:.800e}", x);
    let (mantissa, exact_exponent) = exact.split_once('e')?;
    let exact_digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let exact_exponent: i32 = exact_exponent.parse().ok()?;
    if exact_exponent != exponent
        || exact_digits.get(k) != Some(&b'5')
        || exact_digits[k + 1..].iter().any(|d| *d != b'0')
    {
        return None;
    }
    // The two candidates: the expansion cut to k digits, and one more.
    let floor: String = exact_digits[..k].iter().map(|d| char::from(*d)).collect();
    let (other, other_exponent) = if floor != digits {
        (floor, exponent)
    } else {
        let mut up: Vec<u8> = exact_digits[..k].to_vec();
        let mut i = k;
        loop {
            if i == 0 {
                up.insert(0, b'1');
                up.pop();
                break;
            }
            i -= 1;
            if up[i] == b'9' {
                up[i] = b'0';
            } else {
                up[i] += 1;
                break;
            }
        }
        let carried = i == 0 && up[0] == b'1' && exact_digits[0] == b'9';
        (
            up.iter().map(|d| char::from(*d)).collect(),
            exponent + i32::from(carried),
        )
    };
    let reads_back = format!("{}.{}e{}", &other[..1], &other[1..], other_exponent)
        .parse::<f64>()
        .is_ok_and(|y| y == x);
    let even = other.bytes().last().is_some_and(|d| d % 2 == 0);
    (reads_back && even)
        .then_some((other.trim_end_matches('0').to_owned(), other_exponent))
        .filter(|(d, _)| !d.is_empty())
}

#[cfg(not(feature = "host-doubles"))]
fn rust_number_text(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return "0".into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits too, as
    // `d.ddde[-]x`: lay them out as ECMAScript's Number::toString does.
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut exponent: i32 = exponent.parse().unwrap_or(0);
    if let Some((even, even_exponent)) = even_twin(x.abs(), &digits, exponent) {
        (digits, exponent) = (even, even_exponent);
    }
    let k = digits.len() as i32;
    let n = exponent + 1; // the decimal point's position after the first digit
    let mut out = String::with_capacity(k as usize + 8);
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.push_str(&"0".repeat((n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(if n - 1 < 0 { "e-" } else { "e+" });
        push_u64(&mut out, u64::from((n - 1).unsigned_abs()));
    }
    out
}

impl Json {
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Self::Object(map) => map.get(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<Number> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }

    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().map(Number::as_f64)
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Self::Object(map) => Some(map),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Json>> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Self::Object(_))
    }

    /// The length in bytes (UTF-8) of this value written as compact JSON
    /// text, as JavaScript's `JSON.stringify` writes it: the size limits
    /// count this, the same in every path.
    pub fn text_len(&self) -> usize {
        match self {
            Self::Null => 4,
            Self::Bool(true) => 4,
            Self::Bool(false) => 5,
            Self::Number(n) => {
                let mut text = String::new();
                n.write_text(&mut text);
                text.len()
            }
            Self::String(s) => string_text_len(s),
            Self::Array(items) => {
                2 + items.iter().map(Self::text_len).sum::<usize>() + items.len().saturating_sub(1)
            }
            Self::Object(map) => object_text_len(map),
        }
    }

    /// Sets `key` of an object (a value of any other kind is left alone).
    pub fn set(&mut self, key: &str, value: impl Into<Json>) {
        if let Self::Object(map) = self {
            map.insert(key.to_owned(), value.into());
        }
    }

    /// An object from key-value pairs.
    pub fn object<const N: usize>(pairs: [(&str, Json); N]) -> Self {
        Self::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

/// [`Json::text_len`] of an object.
pub fn object_text_len(map: &Object) -> usize {
    2 + map
        .iter()
        .map(|(k, v)| string_text_len(k) + 1 + v.text_len())
        .sum::<usize>()
        + map.len().saturating_sub(1)
}

/// A string's length as a quoted, escaped JSON string in UTF-8.
fn string_text_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

/// `json["key"]`: the field, or `Null` when absent (or not an object).
impl std::ops::Index<&str> for Json {
    type Output = Json;

    fn index(&self, key: &str) -> &Json {
        static NULL: Json = Json::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

/// `json[0]`: the item, or `Null` when absent (or not an array).
impl std::ops::Index<usize> for Json {
    type Output = Json;

    fn index(&self, i: usize) -> &Json {
        static NULL: Json = Json::Null;
        self.as_array()
            .and_then(|items| items.get(i))
            .unwrap_or(&NULL)
    }
}

#[cfg(feature = "serde_json")]
impl PartialEq<serde_json::Value> for Json {
    fn eq(&self, other: &serde_json::Value) -> bool {
        serde_json::to_value(self).is_ok_and(|v| v == *other)
    }
}

impl PartialEq<&str> for Json {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl PartialEq<i64> for Json {
    fn eq(&self, other: &i64) -> bool {
        self.as_i64() == Some(*other)
    }
}

impl PartialEq<bool> for Json {
    fn eq(&self, other: &bool) -> bool {
        self.as_bool() == Some(*other)
    }
}

/// Test and tool code writes JSON with `serde_json::json!`.
#[cfg(feature = "serde_json")]
impl From<serde_json::Value> for Json {
    fn from(value: serde_json::Value) -> Self {
        serde_json::from_value(value).unwrap_or_default()
    }
}

impl From<Object> for Json {
    fn from(map: Object) -> Self {
        Self::Object(map)
    }
}

impl From<Number> for Json {
    fn from(n: Number) -> Self {
        Self::Number(n)
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<u64> for Json {
    fn from(n: u64) -> Self {
        Self::Number(Number::from_u64(n))
    }
}

impl From<u32> for Json {
    fn from(n: u32) -> Self {
        Self::Number(Number::from_u64(u64::from(n)))
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Self {
        Self::Number(Number::from_i64(n))
    }
}

impl From<i32> for Json {
    fn from(n: i32) -> Self {
        Self::Number(Number::from_i64(i64::from(n)))
    }
}

impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(items: Vec<T>) -> Self {
        Self::Array(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

// ---------------------------------------------------------------- serde

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::PosInt(n) => serializer.serialize_u64(*n),
            Self::NegInt(n) => serializer.serialize_i64(*n),
            Self::Float(x) => serializer.serialize_f64(*x),
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Json::deserialize(deserializer)? {
            Json::Number(n) => Ok(n),
            _ => Err(serde::de::Error::custom("expected a number")),
        }
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => serializer.serialize_unit(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Number(n) => n.serialize(serializer),
            Self::String(s) => serializer.serialize_str(s),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    out.serialize_entry(k, v)?;
                }
                out.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(Number::from_i64(n)))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(Number::PosInt(n)))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Json, E> {
        Ok(Json::Number(Number::Float(x)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out = Object::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            out.insert(k, v);
        }
        Ok(Json::Object(out))
    }
}
