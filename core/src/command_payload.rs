//! WHAT A COMMANDS-PROTOCOL REQUEST CARRIES, AS BYTES: AWS IoT commands'
//! static `payload` (`{content, contentType}`: any bytes, sent as they are)
//! and the `preprocessor`'s output format for a `payloadTemplate` (JSON, or
//! CBOR made from the filled JSON); the request topic's format suffix and
//! MQTT 5 content type they give; the CBOR encoding. Pure, no I/O.
//!
//! AWS's rule for the request topic, followed here: content type
//! `application/json` → `.../request/json`, `application/cbor` →
//! `.../request/cbor`, any other (or none: `application/octet-stream`) →
//! `.../request`, the format then told by the MQTT 5 content type alone.

use serde::{Deserialize, Serialize};

use crate::error::{ValidationCode, ValidationErrors};
use crate::json::{Json, Number};
use crate::text::{json_kind, msg, quote};

/// AWS's limit on a command's static payload: 32 KiB.
pub const MAX_STATIC_PAYLOAD_BYTES: usize = 32 * 1024;
/// A media type's longest text accepted (RFC 6838 allows 127 + 1 + 127).
pub const MAX_CONTENT_TYPE_CHARS: usize = 255;
/// AWS's content type of a payload that names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
pub const JSON_CONTENT_TYPE: &str = "application/json";
pub const CBOR_CONTENT_TYPE: &str = "application/cbor";

/// AWS IoT commands' static payload: the bytes every execution's request
/// carries, unchanged, with their media type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticPayload {
    /// The bytes, as canonical padded base64 (how AWS's API carries a blob).
    pub content: String,
    /// A `type/subtype` media type; `application/octet-stream` when the
    /// definition named none, as AWS defaults it.
    pub content_type: String,
}

impl StaticPayload {
    /// `{"content": base64, "contentType"?: "type/subtype"}` at `path`,
    /// every problem reported there.
    pub fn parse(json: &Json, path: &str, errors: &mut ValidationErrors) -> Option<Self> {
        let Json::Object(map) = json else {
            errors.add(
                path,
                ValidationCode::WrongType,
                msg![
                    "expected an object {\"content\": base64, \"contentType\": \"type/subtype\"}, got ",
                    json_kind(json)
                ],
            );
            return None;
        };
        let before = errors.len();
        for key in map.keys() {
            if key != "content" && key != "contentType" {
                errors.add(
                    msg![path, ".", key],
                    ValidationCode::UnknownField,
                    "unknown field; expected one of: content, contentType",
                );
            }
        }
        let content_type = match map.get("contentType") {
            None | Some(Json::Null) => DEFAULT_CONTENT_TYPE.to_owned(),
            Some(Json::String(t)) => {
                if let Err(why) = check_media_type(t) {
                    errors.add(
                        msg![path, ".contentType"],
                        ValidationCode::InvalidValue,
                        msg![
                            quote(t),
                            " is not a media type (type/subtype, such as application/json): ",
                            why
                        ],
                    );
                }
                t.clone()
            }
            Some(other) => {
                errors.add(
                    msg![path, ".contentType"],
                    ValidationCode::WrongType,
                    msg!["expected a string, got ", json_kind(other)],
                );
                String::new()
            }
        };
        let content = match map.get("content") {
            None | Some(Json::Null) => {
                errors.add(
                    msg![path, ".content"],
                    ValidationCode::MissingRequired,
                    "content is required: the payload's bytes, base64",
                );
                None
            }
            Some(Json::String(text)) => match crate::base64::decode(text) {
                Err(why) => {
                    errors.add(
                        msg![path, ".content"],
                        ValidationCode::InvalidBase64,
                        msg!["not valid base64: ", why],
                    );
                    None
                }
                Ok(bytes) => {
                    check_content(&bytes, &content_type, &msg![path, ".content"], errors);
                    Some(text.clone())
                }
            },
            Some(other) => {
                errors.add(
                    msg![path, ".content"],
                    ValidationCode::WrongType,
                    msg!["expected base64 text, got ", json_kind(other)],
                );
                None
            }
        };
        match content {
            Some(content) if errors.len() == before => Some(Self {
                content,
                content_type,
            }),
            _ => None,
        }
    }

    /// The bytes the device receives.
    pub fn bytes(&self) -> Vec<u8> {
        // Checked when the definition was made: canonical base64.
        crate::base64::decode(&self.content).unwrap_or_default()
    }

    /// The request's format, by its content type.
    pub fn format(&self) -> RequestFormat<'_> {
        RequestFormat::of(&self.content_type)
    }
}

fn check_content(bytes: &[u8], content_type: &str, path: &str, errors: &mut ValidationErrors) {
    if bytes.is_empty() {
        errors.add(
            path,
            ValidationCode::TooShort,
            "the payload is empty; give at least one byte",
        );
    } else if bytes.len() > MAX_STATIC_PAYLOAD_BYTES {
        errors.add(
            path,
            ValidationCode::PayloadTooLarge,
            msg![
                "the payload is ",
                bytes.len(),
                " bytes; the limit is ",
                MAX_STATIC_PAYLOAD_BYTES
            ],
        );
    } else if RequestFormat::of(content_type) == RequestFormat::Json {
        // A device subscribed to request/json parses what arrives there.
        let valid = core::str::from_utf8(bytes)
            .ok()
            .is_some_and(|text| crate::payload_template::json_syntax(text).is_ok());
        if !valid {
            errors.add(
                path,
                ValidationCode::InvalidJson,
                "the content type is application/json but the content is not JSON text",
            );
        }
    }
}

/// Whether `text` is a media type as RFC 6838 writes one: `type/subtype`,
/// each a restricted name, then optional `; parameter` text.
fn check_media_type(text: &str) -> Result<(), &'static str> {
    if text.chars().count() > MAX_CONTENT_TYPE_CHARS {
        return Err("at most 255 characters");
    }
    let essence = text.split(';').next().unwrap_or_default().trim_end();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return Err("no \"/\" between type and subtype");
    };
    let restricted = |name: &str| {
        name.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if !restricted(kind) || !restricted(subtype) {
        return Err("type and subtype are letters, digits and !#$&-^_.+");
    }
    if !text.chars().all(|c| (' '..='~').contains(&c)) {
        return Err("printable ASCII only");
    }
    Ok(())
}

/// The `preprocessor`'s `awsJsonSubstitution.outputFormat`: what a filled
/// `payloadTemplate` is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OutputFormat {
    #[default]
    #[serde(rename = "JSON")]
    Json,
    #[serde(rename = "CBOR")]
    Cbor,
}

impl OutputFormat {
    pub const fn is_json(&self) -> bool {
        matches!(self, Self::Json)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::Cbor => "CBOR",
        }
    }

    /// The request a filled template makes: `request/json` or
    /// `request/cbor`.
    pub const fn request_format(self) -> RequestFormat<'static> {
        match self {
            Self::Json => RequestFormat::Json,
            Self::Cbor => RequestFormat::Cbor,
        }
    }

    /// AWS's `{"awsJsonSubstitution": {"outputFormat": "JSON" | "CBOR"}}`
    /// at `path`.
    pub fn parse_preprocessor(
        json: &Json,
        path: &str,
        errors: &mut ValidationErrors,
    ) -> Option<Self> {
        const SHAPE: &str = "{\"awsJsonSubstitution\": {\"outputFormat\": \"JSON\" or \"CBOR\"}}";
        let inner = match json {
            Json::Object(map) if map.len() == 1 => map.get("awsJsonSubstitution"),
            _ => None,
        };
        let format = match inner {
            Some(Json::Object(map)) if map.len() == 1 => map.get("outputFormat"),
            _ => None,
        };
        match format {
            Some(Json::String(f)) if f == "JSON" => Some(Self::Json),
            Some(Json::String(f)) if f == "CBOR" => Some(Self::Cbor),
            Some(Json::String(f)) => {
                errors.add(
                    msg![path, ".awsJsonSubstitution.outputFormat"],
                    ValidationCode::InvalidValue,
                    msg![quote(f), " is not an output format; use JSON or CBOR"],
                );
                None
            }
            _ => {
                errors.add(path, ValidationCode::WrongType, msg!["expected ", SHAPE]);
                None
            }
        }
    }
}

/// A request's format: its topic's last segment and its MQTT 5 content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat<'a> {
    /// `.../request/json`, `application/json`.
    Json,
    /// `.../request/cbor`, `application/cbor`.
    Cbor,
    /// `.../request`, with this content type.
    Other(&'a str),
}

impl<'a> RequestFormat<'a> {
    /// By media type, as AWS chooses the topic: its essence (before any
    /// `;`), compared without regard to case.
    pub fn of(content_type: &'a str) -> Self {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case(JSON_CONTENT_TYPE) {
            Self::Json
        } else if essence.eq_ignore_ascii_case(CBOR_CONTENT_TYPE) {
            Self::Cbor
        } else {
            Self::Other(content_type)
        }
    }

    /// The request topic's ending after `.../executions/{id}`.
    pub const fn topic_suffix(self) -> &'static str {
        match self {
            Self::Json => "/request/json",
            Self::Cbor => "/request/cbor",
            Self::Other(_) => "/request",
        }
    }

    pub const fn content_type(self) -> &'a str {
        match self {
            Self::Json => JSON_CONTENT_TYPE,
            Self::Cbor => CBOR_CONTENT_TYPE,
            Self::Other(t) => t,
        }
    }
}

/// `json` as CBOR (RFC 8949), the way a JSON-to-CBOR conversion writes it:
/// integers as integers, other numbers as 64-bit floats, strings as text,
/// objects as maps with text keys, in their order, every length definite.
pub fn cbor(json: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    write_cbor(json, &mut out);
    out
}

fn head(major: u8, n: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend([m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(n.to_be_bytes());
        }
    }
}

fn write_cbor(json: &Json, out: &mut Vec<u8>) {
    match json {
        Json::Null => out.push(0xf6),
        Json::Bool(false) => out.push(0xf4),
        Json::Bool(true) => out.push(0xf5),
        Json::Number(Number::PosInt(n)) => head(0, *n, out),
        Json::Number(Number::NegInt(n)) if *n >= 0 => head(0, n.unsigned_abs(), out),
        // CBOR writes a negative n as -1 - m: m is n's magnitude minus one.
        Json::Number(Number::NegInt(n)) => head(1, n.unsigned_abs() - 1, out),
        Json::Number(Number::Float(x)) => {
            out.push(0xfb);
            out.extend(x.to_bits().to_be_bytes());
        }
        Json::String(s) => {
            head(3, s.len() as u64, out);
            out.extend(s.as_bytes());
        }
        Json::Array(items) => {
            head(4, items.len() as u64, out);
            for item in items {
                write_cbor(item, out);
            }
        }
        Json::Object(map) => {
            head(5, map.len() as u64, out);
            for (key, value) in map.iter() {
                head(3, key.len() as u64, out);
                out.extend(key.as_bytes());
                write_cbor(value, out);
            }
        }
    }
}

/// How deep a CBOR item may nest, as a JSON text may (the server's reader
/// refuses deeper ones too).
pub const MAX_CBOR_DEPTH: usize = 128;

/// A device's CBOR response read into the JSON model the JSON path uses
/// (RFC 8949): maps with text keys, arrays, text, integers, floats (half,
/// single, double), booleans and null; definite or indefinite lengths;
/// tags skipped. A byte string becomes its base64 text (what a `bin`
/// result is in JSON). `Err` says what is wrong, at which byte.
pub fn json_from_cbor(bytes: &[u8]) -> Result<Json, String> {
    let mut reader = CborReader { bytes, at: 0 };
    let value = reader.item(0)?;
    if reader.at != bytes.len() {
        return Err(msg![
            "one CBOR item expected; ",
            bytes.len() - reader.at,
            " more bytes follow it at byte ",
            reader.at
        ]);
    }
    Ok(value)
}

struct CborReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// What an item's first byte and argument say.
enum Head {
    /// Major type, additional information, argument.
    Item(u8, u8, u64),
    /// Major type 2-5 with additional information 31.
    Indefinite(u8),
    Break,
}

impl CborReader<'_> {
    fn fail(&self, why: &str) -> String {
        msg!["not valid CBOR: ", why, " at byte ", self.at]
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.fail("it ends early"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn head(&mut self) -> Result<Head, String> {
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let argument = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let width = 1usize << (info - 24);
                self.take(width)?
                    .iter()
                    .fold(0u64, |n, b| (n << 8) | u64::from(*b))
            }
            31 if major == 7 => return Ok(Head::Break),
            31 if (2..=5).contains(&major) => return Ok(Head::Indefinite(major)),
            _ => return Err(self.fail("a reserved length")),
        };
        Ok(Head::Item(major, info, argument))
    }

    fn length(&self, n: u64) -> Result<usize, String> {
        // Every element takes at least one byte: a longer count is a lie.
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.bytes.len() - self.at)
            .ok_or_else(|| self.fail("a length longer than the message"))
    }

    fn text(&mut self, n: u64) -> Result<String, String> {
        let n = self.length(n)?;
        let raw = self.take(n)?;
        match core::str::from_utf8(raw) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(self.fail("text that is not UTF-8")),
        }
    }

    /// The chunks of an indefinite-length string of `major` type.
    fn chunks(&mut self, major: u8) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            match self.head()? {
                Head::Break => return Ok(out),
                Head::Item(m, _, n) if m == major => {
                    let n = self.length(n)?;
                    out.extend_from_slice(self.take(n)?);
                }
                _ => return Err(self.fail("a chunk of another type in a string")),
            }
        }
    }

    fn item(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_CBOR_DEPTH {
            return Err(self.fail("nesting deeper than 128 levels"));
        }
        match self.head()? {
            Head::Break => Err(self.fail("a break outside an indefinite-length item")),
            Head::Item(0, _, n) => Ok(Json::Number(Number::PosInt(n))),
            Head::Item(1, _, n) => match i64::try_from(n) {
                Ok(m) => Ok(Json::Number(Number::NegInt(-1 - m))),
                Err(_) => Err(self.fail("a negative integer below -2^63")),
            },
            Head::Item(2, _, n) => {
                let n = self.length(n)?;
                Ok(Json::String(crate::base64::encode(self.take(n)?)))
            }
            Head::Indefinite(2) => Ok(Json::String(crate::base64::encode(&self.chunks(2)?))),
            Head::Item(3, _, n) => self.text(n).map(Json::String),
            Head::Indefinite(3) => String::from_utf8(self.chunks(3)?)
                .map(Json::String)
                .map_err(|_| self.fail("text that is not UTF-8")),
            Head::Item(4, _, n) => {
                let n = self.length(n)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Json::Array(items))
            }
            Head::Indefinite(4) => {
                let mut items = Vec::new();
                while !self.at_break()? {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Json::Array(items))
            }
            Head::Item(5, _, n) => {
                let n = self.length(n)?;
                let mut map = crate::json::Object::new();
                for _ in 0..n {
                    self.pair(&mut map, depth)?;
                }
                Ok(Json::Object(map))
            }
            Head::Indefinite(5) => {
                let mut map = crate::json::Object::new();
                while !self.at_break()? {
                    self.pair(&mut map, depth)?;
                }
                Ok(Json::Object(map))
            }
            // A tag (a date, a bignum's meaning, self-described CBOR): its
            // item stands for itself here.
            Head::Item(6, ..) => self.item(depth + 1),
            Head::Item(7, info, n) => self.simple(info, n),
            Head::Item(..) | Head::Indefinite(_) => Err(self.fail("an unknown major type")),
        }
    }

    fn at_break(&mut self) -> Result<bool, String> {
        match self.bytes.get(self.at) {
            Some(0xff) => {
                self.at += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(self.fail("an indefinite-length item without its break")),
        }
    }

    fn pair(&mut self, map: &mut crate::json::Object, depth: usize) -> Result<(), String> {
        let key = match self.item(depth + 1)? {
            Json::String(key) => key,
            _ => return Err(self.fail("a map key that is not text")),
        };
        let value = self.item(depth + 1)?;
        if map.insert(key, value).is_some() {
            return Err(self.fail("a map key given twice"));
        }
        Ok(())
    }

    /// Major type 7: its additional information and argument (for 25-27
    /// the float's bits).
    fn simple(&self, info: u8, bits: u64) -> Result<Json, String> {
        let x = match info {
            20 => return Ok(Json::Bool(false)),
            21 => return Ok(Json::Bool(true)),
            22 | 23 => return Ok(Json::Null),
            25 => half_to_f64(bits as u16),
            26 => f64::from(f32::from_bits(bits as u32)),
            27 => f64::from_bits(bits),
            _ => return Err(self.fail("a simple value JSON has no word for")),
        };
        Number::from_js(x)
            .map(Json::Number)
            .ok_or_else(|| self.fail("NaN or an infinity, which JSON cannot hold"))
    }
}

/// An IEEE 754 half-precision float's value.
fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    sign * match exponent {
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<StaticPayload, Vec<(String, String)>> {
        let json = crate::payload_template::parse_json(text).unwrap();
        let mut errors = ValidationErrors::new();
        let payload = StaticPayload::parse(&json, "payload", &mut errors);
        match payload {
            Some(p) if errors.is_empty() => Ok(p),
            _ => Err(errors
                .iter()
                .map(|e| (e.path.clone(), e.code.as_str().to_owned()))
                .collect()),
        }
    }

    #[test]
    fn a_static_payload_keeps_its_bytes_and_type() {
        let p = parsed(r#"{"content": "eyAibWVzc2FnZSI6ICJIZWxsbyBJb1QiIH0=", "contentType": "application/json"}"#).unwrap();
        assert_eq!(p.bytes(), br#"{ "message": "Hello IoT" }"#);
        assert_eq!(p.format(), RequestFormat::Json);
    }

    #[test]
    fn a_payload_without_a_type_is_octet_stream_on_the_format_less_topic() {
        let p = parsed(r#"{"content": "AAEC"}"#).unwrap();
        assert_eq!(p.content_type, "application/octet-stream");
        assert_eq!(p.format().topic_suffix(), "/request");
        assert_eq!(p.format().content_type(), "application/octet-stream");
    }

    #[test]
    fn the_topic_follows_the_media_type_s_essence_in_any_case() {
        assert_eq!(
            RequestFormat::of("Application/CBOR").topic_suffix(),
            "/request/cbor"
        );
        assert_eq!(
            RequestFormat::of("application/json; charset=utf-8").topic_suffix(),
            "/request/json"
        );
        assert_eq!(RequestFormat::of("text/plain").topic_suffix(), "/request");
        assert_eq!(RequestFormat::of("text/plain").content_type(), "text/plain");
    }

    #[test]
    fn bad_payloads_name_each_problem() {
        assert_eq!(
            parsed(r#"{"content": "not base64!", "contentType": "json", "extra": 1}"#).unwrap_err(),
            [
                ("payload.extra".to_owned(), "UnknownField".to_owned()),
                ("payload.contentType".to_owned(), "InvalidValue".to_owned()),
                ("payload.content".to_owned(), "InvalidBase64".to_owned()),
            ]
        );
        assert_eq!(
            parsed(r#"{"contentType": "text/plain"}"#).unwrap_err(),
            [("payload.content".to_owned(), "MissingRequired".to_owned())]
        );
        assert_eq!(
            parsed(r#"{"content": "", "contentType": "text/plain"}"#).unwrap_err(),
            [("payload.content".to_owned(), "TooShort".to_owned())]
        );
        assert_eq!(
            parsed(r#"{"content": "aGk=", "contentType": "application/json"}"#).unwrap_err(),
            [("payload.content".to_owned(), "InvalidJson".to_owned())]
        );
        assert_eq!(
            parsed(r#""aGk=""#).unwrap_err(),
            [("payload".to_owned(), "WrongType".to_owned())]
        );
    }

    #[test]
    fn a_payload_over_32_kib_is_refused() {
        let big = crate::base64::encode(&[7u8; MAX_STATIC_PAYLOAD_BYTES + 1]);
        let json = msg!["{\"content\": \"", big, "\"}"];
        assert_eq!(
            parsed(&json).unwrap_err(),
            [("payload.content".to_owned(), "PayloadTooLarge".to_owned())]
        );
        let fits = crate::base64::encode(&[7u8; MAX_STATIC_PAYLOAD_BYTES]);
        assert!(parsed(&msg!["{\"content\": \"", fits, "\"}"]).is_ok());
    }

    #[test]
    fn media_types_follow_rfc_6838() {
        for good in [
            "application/json",
            "text/plain; charset=utf-8",
            "application/vnd.acme+cbor",
        ] {
            assert!(check_media_type(good).is_ok(), "{good}");
        }
        for bad in [
            "json",
            "/json",
            "application/",
            "text/pl ain",
            "a/b\u{e9}",
            "a/b;\u{7f}",
        ] {
            assert!(check_media_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_preprocessor_names_json_or_cbor() {
        let read = |text: &str| {
            let mut errors = ValidationErrors::new();
            let json = crate::payload_template::parse_json(text).unwrap();
            let format = OutputFormat::parse_preprocessor(&json, "preprocessor", &mut errors);
            (
                format,
                errors.iter().map(|e| e.path.clone()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            read(r#"{"awsJsonSubstitution": {"outputFormat": "CBOR"}}"#),
            (Some(OutputFormat::Cbor), vec![])
        );
        assert_eq!(
            read(r#"{"awsJsonSubstitution": {"outputFormat": "JSON"}}"#),
            (Some(OutputFormat::Json), vec![])
        );
        assert_eq!(
            read(r#"{"awsJsonSubstitution": {"outputFormat": "XML"}}"#),
            (
                None,
                vec!["preprocessor.awsJsonSubstitution.outputFormat".to_owned()]
            )
        );
        assert_eq!(
            read(r#"{"other": {}}"#),
            (None, vec!["preprocessor".to_owned()])
        );
    }

    fn definition(text: &str) -> crate::CommandDefinition {
        let json = crate::payload_template::parse_json(text).unwrap();
        let definition = crate::CommandDefinition::from_json(&json).unwrap();
        definition.validator().unwrap();
        definition
    }

    #[test]
    fn a_static_payload_definition_reads_back_as_it_was_given() {
        use crate::codec::ToJson;
        let given = definition(
            r#"{"commandId": "hello", "protocol": "commands", "namespace": "AWS-IoT",
                "displayName": "Say hello", "payload": {"content": "AAEC"}}"#,
        );
        assert_eq!(given.display_name.as_deref(), Some("Say hello"));
        let shown = given.to_json();
        assert_eq!(
            shown.get("payload"),
            crate::payload_template::parse_json(
                r#"{"content": "AAEC", "contentType": "application/octet-stream"}"#
            )
            .ok()
            .as_ref()
        );
        assert_eq!(crate::CommandDefinition::from_json(&shown).unwrap(), given);
    }

    /// AWS's CreateCommand has no `protocol`: its body is a commands one.
    #[test]
    fn an_aws_body_without_a_protocol_is_a_commands_protocol_command() {
        for body in [
            r#"{"commandId": "a", "payload": {"content": "AAEC"}}"#,
            r#"{"commandId": "b", "namespace": "AWS-IoT", "payload": {"content": "AAEC"}}"#,
            r#"{"commandId": "c", "payloadTemplate": "{\"on\": ${aws:iot:commandexecution::parameter:on}}",
                "preprocessor": {"awsJsonSubstitution": {"outputFormat": "JSON"}},
                "mandatoryParameters": [{"name": "on", "type": "BOOLEAN"}]}"#,
        ] {
            assert_eq!(
                definition(body).protocol,
                crate::DeviceProtocol::Commands,
                "{body}"
            );
        }
        assert_eq!(
            definition(r#"{"commandId": "d"}"#).protocol,
            crate::DeviceProtocol::Jobs
        );
    }

    #[test]
    fn cbor_output_reads_back_and_makes_cbor_requests() {
        use crate::codec::ToJson;
        let given = definition(
            r#"{"commandId": "power", "protocol": "commands",
                "payloadTemplate": "{\"on\": ${aws:iot:commandexecution::parameter:on}}",
                "preprocessor": {"awsJsonSubstitution": {"outputFormat": "CBOR"}},
                "parameters": [{"name": "on", "type": "B", "required": true}]}"#,
        );
        assert_eq!(given.output_format, OutputFormat::Cbor);
        assert_eq!(
            crate::CommandDefinition::from_json(&given.to_json()).unwrap(),
            given
        );
        let document = crate::payload_template::parse_json(r#"{"on": true}"#).unwrap();
        assert_eq!(
            (
                cbor(&document).as_slice(),
                given.output_format.request_format()
            ),
            (&[0xa1, 0x62, b'o', b'n', 0xf5][..], RequestFormat::Cbor)
        );
        let json = definition(
            r#"{"commandId": "power", "protocol": "commands",
                "payloadTemplate": "{\"on\": ${aws:iot:commandexecution::parameter:on}}",
                "preprocessor": {"awsJsonSubstitution": {"outputFormat": "JSON"}},
                "parameters": [{"name": "on", "type": "B", "required": true}]}"#,
        );
        assert_eq!(json.output_format.request_format(), RequestFormat::Json);
    }

    fn decoded(hex: &str) -> Result<String, String> {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        json_from_cbor(&bytes).map(|json| serde_json::to_string(&json).unwrap())
    }

    /// RFC 8949 Appendix A's examples read back, those JSON can say.
    #[test]
    fn cbor_is_read_as_the_rfc_s_examples_say() {
        for (hex, json) in [
            ("00", "0"),
            ("1bffffffffffffffff", "18446744073709551615"),
            ("3903e7", "-1000"),
            ("3b7fffffffffffffff", "-9223372036854775808"),
            ("f93c00", "1"),
            ("f93e00", "1.5"),
            ("f9c400", "-4"),
            ("fa47c35000", "100000"),
            ("fb3ff199999999999a", "1.1"),
            ("f4", "false"),
            ("f5", "true"),
            ("f6", "null"),
            ("c11a514b67b0", "1363896240"),
            ("4401020304", "\"AQIDBA==\""),
            ("6449455446", "\"IETF\""),
            ("7f657374726561646d696e67ff", "\"streaming\""),
            ("5f42010243030405ff", "\"AQIDBAU=\""),
            ("9f018202039f0405ffff", "[1,[2,3],[4,5]]"),
            ("bf61610161629f0203ffff", "{\"a\":1,\"b\":[2,3]}"),
            ("a26161016162820203", "{\"a\":1,\"b\":[2,3]}"),
        ] {
            assert_eq!(decoded(hex).as_deref(), Ok(json), "{hex}");
        }
    }

    #[test]
    fn bad_cbor_is_refused_with_where() {
        for (hex, why) in [
            ("", "it ends early at byte 0"),
            ("1a0000", "it ends early at byte 1"),
            (
                "0001",
                "one CBOR item expected; 1 more bytes follow it at byte 1",
            ),
            ("a10101", "a map key that is not text at byte 2"),
            ("a2616101616102", "a map key given twice at byte 7"),
            (
                "9b00000000ffffffff",
                "a length longer than the message at byte 9",
            ),
            (
                "9f01",
                "an indefinite-length item without its break at byte 2",
            ),
            ("ff", "a break outside an indefinite-length item at byte 1"),
            ("1c", "a reserved length at byte 1"),
            (
                "f97e00",
                "NaN or an infinity, which JSON cannot hold at byte 3",
            ),
            ("f820", "a simple value JSON has no word for at byte 2"),
            ("62c328", "text that is not UTF-8 at byte 3"),
        ] {
            let err = decoded(hex).unwrap_err();
            assert!(err.ends_with(why), "{hex}: {err}");
        }
        let deep = "81".repeat(MAX_CBOR_DEPTH + 1) + "00";
        assert!(decoded(&deep).unwrap_err().contains("deeper than 128"));
        assert!(decoded(&("81".repeat(MAX_CBOR_DEPTH) + "00")).is_ok());
    }

    /// Whatever bytes arrive, the reader answers; and what `cbor` writes,
    /// it reads back as it was.
    #[test]
    fn any_bytes_are_answered_and_written_cbor_reads_back() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = json_from_cbor(&bytes);
        }
        let text = r#"{"status": "SUCCEEDED", "statusReason": {"reasonCode": "OK"},
            "result": {"n": {"s": "x\u00e9"}, "list": [1, -2, 3.25, true, null, {"deep": []}]}}"#;
        let json = crate::payload_template::parse_json(text).unwrap();
        assert_eq!(json_from_cbor(&cbor(&json)), Ok(json));
    }

    /// RFC 8949 Appendix A's examples, those JSON can say.
    #[test]
    fn cbor_matches_the_rfc_s_examples() {
        let cases: [(&str, &[u8]); 14] = [
            ("0", &[0x00]),
            ("23", &[0x17]),
            ("24", &[0x18, 0x18]),
            ("1000", &[0x19, 0x03, 0xe8]),
            ("1000000", &[0x1a, 0x00, 0x0f, 0x42, 0x40]),
            (
                "18446744073709551615",
                &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            ("-1", &[0x20]),
            ("-1000", &[0x39, 0x03, 0xe7]),
            (
                "1.1",
                &[0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a],
            ),
            ("false", &[0xf4]),
            ("null", &[0xf6]),
            ("\"\\u00fc\"", &[0x62, 0xc3, 0xbc]),
            (
                "[1, [2, 3], [4, 5]]",
                &[0x83, 0x01, 0x82, 0x02, 0x03, 0x82, 0x04, 0x05],
            ),
            (
                "{\"a\": 1, \"b\": [2, 3]}",
                &[0xa2, 0x61, 0x61, 0x01, 0x61, 0x62, 0x82, 0x02, 0x03],
            ),
        ];
        for (text, expected) in cases {
            let json = crate::payload_template::parse_json(text).unwrap();
            assert_eq!(cbor(&json), expected, "{text}");
        }
    }
}
