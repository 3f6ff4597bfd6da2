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
        let (bytes, format) = crate::commands::request_bytes(&given, &document).unwrap();
        assert_eq!(
            (bytes.as_slice(), format),
            (&[0xa1, 0x62, b'o', b'n', 0xf5][..], RequestFormat::Cbor)
        );
        let json = definition(
            r#"{"commandId": "power", "protocol": "commands",
                "payloadTemplate": "{\"on\": ${aws:iot:commandexecution::parameter:on}}",
                "preprocessor": {"awsJsonSubstitution": {"outputFormat": "JSON"}},
                "parameters": [{"name": "on", "type": "B", "required": true}]}"#,
        );
        assert_eq!(crate::commands::request_bytes(&json, &document), None);
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
