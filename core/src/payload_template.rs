//! PAYLOAD TEMPLATES: what a device receives when its command defines it,
//! with placeholders filled from each execution — AWS IoT commands'
//! `payloadTemplate` (the request a commands-protocol device gets) and
//! AWS IoT Jobs' job document with document parameters (the `jobDocument`
//! a Jobs-protocol device gets, so firmware written against its own
//! document shape, such as the AWS IoT OTA agent's `afr_ota`, works
//! unchanged). Checking a template when its command is defined, filling it
//! and reading the result; pure, no I/O.
//!
//! Placeholders (case-sensitive, as AWS writes them), by protocol:
//! - commands: `${aws:iot:commandexecution::parameter:NAME}`, and
//!   `${aws:iot:commandexecution::executionTimeoutSec}` (the execution's
//!   timeout in seconds);
//! - jobs: `${aws:iot:parameter:NAME}` (AWS IoT Jobs' managed-template
//!   document parameters).
//!
//! A parameter must be required or have a default, so every execution has
//! a value. Inside a JSON string a value is written as text (`"${…:name}"`
//! with S `"ON"` gives `"ON"`, with I 5 gives `"5"`); outside one it is
//! written as the JSON value of its type (S, UL and BIN as strings, I, L
//! and D as numbers, B as `true` / `false`). The template must be valid
//! JSON once filled, with at least one placeholder, and at most 32 KiB.

use crate::device_protocol::DeviceProtocol;
use crate::error::{ValidationCode, ValidationErrors};
use crate::json::{Json, Number};
use crate::map::SortedMap;
use crate::text::{msg, quote};
use crate::value::{TypedValue, ValueType};

const PARAMETER: &str = "aws:iot:commandexecution::parameter:";
const TIMEOUT: &str = "aws:iot:commandexecution::executionTimeoutSec";
const JOBS_PARAMETER: &str = "aws:iot:parameter:";

/// The placeholder prefix naming a parameter, and the timeout's
/// placeholder if the protocol has one.
fn placeholders(protocol: DeviceProtocol) -> (&'static str, Option<&'static str>) {
    match protocol {
        DeviceProtocol::Commands => (PARAMETER, Some(TIMEOUT)),
        DeviceProtocol::Jobs => (JOBS_PARAMETER, None),
    }
}
pub const MAX_TEMPLATE_BYTES: usize = 32 * 1024;

/// One placeholder's value, as [`fill`] writes it.
#[derive(Debug, Clone, Copy)]
pub enum Filler<'a> {
    Value(&'a TypedValue),
    Timeout(u32),
}

/// Checks a template against its command's parameters: `(name, type,
/// always has a value)` for each. Problems are added at `payloadTemplate`.
pub fn check(
    template: &str,
    protocol: DeviceProtocol,
    parameters: &[(&str, ValueType, bool)],
    errors: &mut ValidationErrors,
) {
    let (parameter, timeout) = placeholders(protocol);
    const PATH: &str = "payloadTemplate";
    if template.len() > MAX_TEMPLATE_BYTES {
        errors.add(
            PATH,
            ValidationCode::TooLong,
            msg![
                template.len(),
                " bytes; at most ",
                MAX_TEMPLATE_BYTES,
                " allowed"
            ],
        );
        return;
    }
    let mut problems = Vec::new();
    let mut placeholders = 0;
    let filled = fill(template, |placeholder| {
        placeholders += 1;
        // Every value fills as one JSON token (a number or a string, or
        // text inside a string), so `0` stands for any of them in the
        // syntax check (and keeps the value writer out of the browser build).
        if Some(placeholder) == timeout {
            return Some(Filler::Timeout(0));
        }
        let Some(name) = placeholder.strip_prefix(parameter) else {
            problems.push(match timeout {
                Some(timeout) => msg![
                    "unsupported placeholder ",
                    quote(placeholder),
                    "; use ${",
                    parameter,
                    "NAME} or ${",
                    timeout,
                    "}"
                ],
                None => msg![
                    "unsupported placeholder ",
                    quote(placeholder),
                    "; a ",
                    protocol.as_str(),
                    "-protocol template uses ${",
                    parameter,
                    "NAME}"
                ],
            });
            return None;
        };
        match parameters.iter().position(|(n, _, _)| *n == name) {
            Some(i) if parameters[i].2 => Some(Filler::Timeout(0)),
            Some(_) => {
                problems.push(msg![
                    "parameter ",
                    quote(name),
                    " must be required or have a default to fill the template"
                ]);
                None
            }
            None => {
                problems.push(msg![
                    "the template names ",
                    quote(name),
                    ", which is not a parameter"
                ]);
                None
            }
        }
    });
    match filled {
        Err(why) => problems.push(why),
        Ok(_) if placeholders == 0 => {
            problems.push("a payload template has at least one placeholder".into())
        }
        Ok(text) if !problems.is_empty() => drop(text),
        Ok(text) => {
            if let Err(at) = json_syntax(&text) {
                problems.push(msg!["not valid JSON once filled (at byte ", at, ")"]);
            }
        }
    }
    for problem in problems {
        errors.add(PATH, ValidationCode::InvalidDefinition, problem);
    }
}

/// The template with each `${…}` replaced by what `value_of` gives for it
/// (`None`: left empty; the caller reports why). `Err` for an unclosed `${`.
pub fn fill<'a>(
    template: &str,
    mut value_of: impl FnMut(&str) -> Option<Filler<'a>>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '$' && rest[1..].starts_with('{') {
            // A placeholder is a name: letters, digits and `:._-` up to `}`.
            let end = rest
                .find('}')
                .filter(|&end| {
                    rest[2..end].bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-')
                    })
                })
                .ok_or_else(|| String::from("a placeholder ${ is not closed with }"))?;
            match value_of(&rest[2..end]) {
                Some(Filler::Value(v)) => write_value(&mut out, v, in_string),
                Some(Filler::Timeout(t)) => crate::json::push_u64(&mut out, u64::from(t)),
                None => {}
            }
            rest = &rest[end + 1..];
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

/// The template filled for one execution: its parameters (defaults filled)
/// and its timeout. A placeholder whose parameter has no value is left
/// empty (a checked template has none such).
pub fn fill_execution(
    template: &str,
    protocol: DeviceProtocol,
    parameters: &SortedMap<TypedValue>,
    timeout_seconds: u32,
) -> Result<String, String> {
    let (parameter, timeout) = placeholders(protocol);
    fill(template, |placeholder| {
        if Some(placeholder) == timeout {
            return Some(Filler::Timeout(timeout_seconds));
        }
        let name = placeholder.strip_prefix(parameter)?;
        parameters.get(name).map(Filler::Value)
    })
}

/// The document a device receives from `template` for one execution: the
/// template filled ([`fill_execution`]) and read ([`parse_json`]). `Err`
/// says why it is not JSON, which a template checked when its command was
/// defined never is.
pub fn document(
    template: &str,
    protocol: DeviceProtocol,
    parameters: &SortedMap<TypedValue>,
    timeout_seconds: u32,
) -> Result<Json, String> {
    let text = fill_execution(template, protocol, parameters, timeout_seconds)?;
    parse_json(&text).map_err(|at| msg!["not valid JSON once filled (at byte ", at, ")"])
}

fn write_value(out: &mut String, value: &TypedValue, in_string: bool) {
    let text: String = match value {
        TypedValue::S(s) => s.clone(),
        TypedValue::Bin(bytes) => crate::base64::encode(bytes),
        TypedValue::B(b) => (if *b { "true" } else { "false" }).into(),
        TypedValue::I(n) => msg![*n],
        TypedValue::L(n) => msg![*n],
        TypedValue::Ul(n) => msg![*n],
        TypedValue::D(x) => crate::json::number_text(*x),
    };
    let quoted = in_string
        || matches!(
            value,
            TypedValue::S(_) | TypedValue::Bin(_) | TypedValue::Ul(_)
        );
    if !quoted {
        out.push_str(&text);
        return;
    }
    // As JSON string content; the quotes are the template's when the
    // placeholder is inside a string.
    if !in_string {
        out.push('"');
    }
    for c in text.chars() {
        crate::text::push_json_char(out, c);
    }
    if !in_string {
        out.push('"');
    }
}

/// Whether `text` is one JSON value (RFC 8259 syntax): `Err(byte offset)`
/// of the first problem.
pub fn json_syntax(text: &str) -> Result<(), usize> {
    read::<false>(text).map(drop)
}

/// `text` read as one JSON value, as the server's JSON reader reads it
/// (numbers classified alike, the last of repeated keys kept), or
/// `Err(byte offset)` of the first problem. A filled template is read with
/// it to become the document a device receives.
pub fn parse_json(text: &str) -> Result<Json, usize> {
    read::<true>(text)
}

/// One grammar for both: with `BUILD` false nothing is built (every value
/// reads as `Null`), so the browser, which only checks templates, carries
/// no value building.
fn read<const BUILD: bool>(text: &str) -> Result<Json, usize> {
    let bytes = text.as_bytes();
    let at = skip_ws(bytes, 0);
    let (value, at) = value::<BUILD>(text, at, 0)?;
    let end = skip_ws(bytes, at);
    if end == bytes.len() {
        Ok(value)
    } else {
        Err(end)
    }
}

fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while at < b.len() && matches!(b[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

fn value<const BUILD: bool>(text: &str, at: usize, depth: usize) -> Result<(Json, usize), usize> {
    let b = text.as_bytes();
    if depth > 128 {
        return Err(at);
    }
    match b.get(at) {
        Some(b'{') => {
            let mut object = crate::json::Object::new();
            let mut at = skip_ws(b, at + 1);
            if b.get(at) == Some(&b'}') {
                return Ok((built::<BUILD>(Json::Object(object)), at + 1));
            }
            loop {
                let (key, next) = string::<BUILD>(text, at)?;
                at = skip_ws(b, next);
                if b.get(at) != Some(&b':') {
                    return Err(at);
                }
                let (item, next) = value::<BUILD>(text, skip_ws(b, at + 1), depth + 1)?;
                if BUILD {
                    object.insert(key, item);
                } else {
                    // Both are empty when nothing is built: no drop to run.
                    std::mem::forget((key, item));
                }
                at = skip_ws(b, next);
                match b.get(at) {
                    Some(b',') => at = skip_ws(b, at + 1),
                    Some(b'}') => return Ok((built::<BUILD>(Json::Object(object)), at + 1)),
                    _ => return Err(at),
                }
            }
        }
        Some(b'[') => {
            let mut items = Vec::new();
            let mut at = skip_ws(b, at + 1);
            if b.get(at) == Some(&b']') {
                return Ok((built::<BUILD>(Json::Array(items)), at + 1));
            }
            loop {
                let (item, next) = value::<BUILD>(text, at, depth + 1)?;
                if BUILD {
                    items.push(item);
                } else {
                    std::mem::forget(item);
                }
                at = skip_ws(b, next);
                match b.get(at) {
                    Some(b',') => at = skip_ws(b, at + 1),
                    Some(b']') => return Ok((built::<BUILD>(Json::Array(items)), at + 1)),
                    _ => return Err(at),
                }
            }
        }
        Some(b'"') => string::<BUILD>(text, at).map(|(s, at)| (Json::String(s), at)),
        Some(b't') if b[at..].starts_with(b"true") => Ok((Json::Bool(true), at + 4)),
        Some(b'f') if b[at..].starts_with(b"false") => Ok((Json::Bool(false), at + 5)),
        Some(b'n') if b[at..].starts_with(b"null") => Ok((Json::Null, at + 4)),
        Some(b'-' | b'0'..=b'9') => number::<BUILD>(text, at),
        _ => Err(at),
    }
}

/// `value`, or, when nothing is built, `Null` (`value` is then empty).
fn built<const BUILD: bool>(value: Json) -> Json {
    if BUILD {
        value
    } else {
        std::mem::forget(value);
        Json::Null
    }
}

/// The string at `at` (its quotes included), unescaped. A `\u` escape of a
/// lone surrogate is refused, as the server's reader refuses it.
fn string<const BUILD: bool>(text: &str, at: usize) -> Result<(String, usize), usize> {
    let b = text.as_bytes();
    if b.get(at) != Some(&b'"') {
        return Err(at);
    }
    let hex = |i: usize| -> Option<u32> {
        b.get(i..i + 4)?.iter().try_fold(0, |n, d| {
            char::from(*d).to_digit(16).map(|digit| n * 16 + digit)
        })
    };
    let mut out = String::new();
    let mut i = at + 1;
    let mut run = i;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                if BUILD {
                    out.push_str(&text[run..i]);
                }
                return Ok((out, i + 1));
            }
            b'\\' => {
                if BUILD {
                    out.push_str(&text[run..i]);
                }
                let escaped = match b.get(i + 1) {
                    Some(b'"') => '"',
                    Some(b'\\') => '\\',
                    Some(b'/') => '/',
                    Some(b'b') => '\u{8}',
                    Some(b'f') => '\u{c}',
                    Some(b'n') => '\n',
                    Some(b'r') => '\r',
                    Some(b't') => '\t',
                    Some(b'u') => {
                        let unit = hex(i + 2).ok_or(i)?;
                        let (code, width) = if (0xd800..0xdc00).contains(&unit) {
                            let low = (text.get(i + 6..i + 8) == Some("\\u"))
                                .then(|| hex(i + 8))
                                .flatten()
                                .filter(|low| (0xdc00..0xe000).contains(low))
                                .ok_or(i)?;
                            (0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00), 12)
                        } else {
                            (unit, 6)
                        };
                        let ch = char::from_u32(code).ok_or(i)?;
                        if BUILD {
                            out.push(ch);
                        }
                        i += width;
                        run = i;
                        continue;
                    }
                    _ => return Err(i),
                };
                if BUILD {
                    out.push(escaped);
                }
                i += 2;
                run = i;
            }
            0..=0x1f => return Err(i),
            _ => i += 1,
        }
    }
    Err(i)
}

/// The number at `at`, classified as the server's reader classifies it: an
/// integer literal that fits `u64` or `i64`, else a double (`-0` too).
fn number<const BUILD: bool>(text: &str, start: usize) -> Result<(Json, usize), usize> {
    let b = text.as_bytes();
    let digits = |mut at: usize| {
        let first = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        (at > first).then_some(at).ok_or(at)
    };
    let mut at = start;
    if b.get(at) == Some(&b'-') {
        at += 1;
    }
    at = if b.get(at) == Some(&b'0') {
        at + 1
    } else {
        digits(at)?
    };
    let mut integer = true;
    if b.get(at) == Some(&b'.') {
        integer = false;
        at = digits(at + 1)?;
    }
    if matches!(b.get(at), Some(b'e' | b'E')) {
        integer = false;
        at += 1;
        if matches!(b.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        at = digits(at)?;
    }
    if !BUILD {
        return Ok((Json::Null, at));
    }
    let literal = &text[start..at];
    let whole = integer
        .then(|| match literal.strip_prefix('-') {
            None => literal.parse::<u64>().ok().map(Number::from_u64),
            Some(_) => literal
                .parse::<i64>()
                .ok()
                .filter(|n| *n != 0)
                .map(Number::from_i64),
        })
        .flatten();
    let number = match whole {
        Some(n) => n,
        None => Number::Float(crate::json::parse_double(literal).ok_or(start)?),
    };
    Ok((Json::Number(number), at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Vec<(&'static str, ValueType, bool)> {
        vec![
            ("powerStatus", ValueType::S, true),
            ("level", ValueType::I, true),
            ("note", ValueType::S, false),
        ]
    }

    /// What `check` says of `template` for `protocol`'s devices.
    fn problems_for(protocol: DeviceProtocol, template: &str) -> Vec<String> {
        let mut errors = ValidationErrors::new();
        check(template, protocol, &params(), &mut errors);
        errors.iter().map(|e| e.message.clone()).collect()
    }

    fn problems(template: &str) -> Vec<String> {
        problems_for(DeviceProtocol::Commands, template)
    }

    #[test]
    fn the_aws_example_template_checks_and_fills() {
        let template = r#"{"powerStatus":"${aws:iot:commandexecution::parameter:powerStatus}"}"#;
        assert!(problems(template).is_empty(), "{:?}", problems(template));
        let on = TypedValue::S("ON".into());
        let filled = fill(template, |_| Some(Filler::Value(&on))).unwrap();
        assert_eq!(filled, r#"{"powerStatus":"ON"}"#);
    }

    #[test]
    fn values_are_text_in_strings_and_typed_outside() {
        let template = r#"{"level": ${aws:iot:commandexecution::parameter:level}, "label": "L${aws:iot:commandexecution::parameter:level}", "t": ${aws:iot:commandexecution::executionTimeoutSec}, "s": ${aws:iot:commandexecution::parameter:powerStatus}}"#;
        assert!(problems(template).is_empty(), "{:?}", problems(template));
        let level = TypedValue::I(5);
        let quoted = TypedValue::S("a \"b\"".into());
        let filled = fill(template, |p| {
            Some(if p.ends_with("level") {
                Filler::Value(&level)
            } else if p.ends_with("powerStatus") {
                Filler::Value(&quoted)
            } else {
                Filler::Timeout(30)
            })
        })
        .unwrap();
        assert_eq!(
            filled,
            r#"{"level": 5, "label": "L5", "t": 30, "s": "a \"b\""}"#
        );
        assert!(json_syntax(&filled).is_ok());
    }

    #[test]
    fn bad_templates_say_why() {
        for (template, expected) in [
            (r#"{"a": 1}"#, "at least one placeholder"),
            (
                r#"{"a": "${aws:iot:commandexecution::parameter:colour}"}"#,
                "not a parameter",
            ),
            (
                r#"{"a": "${aws:iot:commandexecution::parameter:note}"}"#,
                "required or have a default",
            ),
            (
                r#"{"a": "${aws:iot:thing::name}"}"#,
                "unsupported placeholder",
            ),
            (
                r#"{"a": ${aws:iot:commandexecution::parameter:level}"#,
                "not valid JSON",
            ),
            (
                r#"{"a": "${aws:iot:commandexecution::parameter:level"}"#,
                "not closed",
            ),
        ] {
            let found = problems(template);
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{template}: {found:?}"
            );
        }
    }

    fn jobs_problems(template: &str) -> Vec<String> {
        problems_for(DeviceProtocol::Jobs, template)
    }

    #[test]
    fn a_job_document_template_uses_aws_document_parameters() {
        let template = r#"{"operation": "set", "level": ${aws:iot:parameter:level}, "afr_ota": {"files": [{"update_data_url": "${aws:iot:parameter:powerStatus}"}]}}"#;
        assert!(
            jobs_problems(template).is_empty(),
            "{:?}",
            jobs_problems(template)
        );
        let mut parameters = SortedMap::new();
        parameters.insert("level".into(), TypedValue::I(7));
        parameters.insert(
            "powerStatus".into(),
            TypedValue::S("https://x/y?a=1&b=\"2\"".into()),
        );
        let document = document(template, DeviceProtocol::Jobs, &parameters, 60).unwrap();
        assert_eq!(document.get("level").and_then(Json::as_i64), Some(7));
        assert_eq!(
            document.get("operation").and_then(Json::as_str),
            Some("set")
        );
        let url = &document
            .get("afr_ota")
            .and_then(|o| o.get("files"))
            .and_then(Json::as_array)
            .unwrap()[0];
        assert_eq!(
            url.get("update_data_url").and_then(Json::as_str),
            Some("https://x/y?a=1&b=\"2\"")
        );
    }

    #[test]
    fn each_protocol_refuses_the_others_placeholders() {
        let commands = r#"{"a": "${aws:iot:commandexecution::parameter:level}"}"#;
        let found = jobs_problems(commands);
        assert!(
            found
                .iter()
                .any(|p| p.contains("a jobs-protocol template uses ${aws:iot:parameter:NAME}")),
            "{found:?}"
        );
        let found = problems(r#"{"a": "${aws:iot:parameter:level}"}"#);
        assert!(
            found.iter().any(|p| p.contains("unsupported placeholder")),
            "{found:?}"
        );
        let found = jobs_problems(
            r#"{"t": ${aws:iot:commandexecution::executionTimeoutSec}, "a": ${aws:iot:parameter:level}}"#,
        );
        assert!(
            found.iter().any(|p| p.contains("unsupported placeholder")),
            "{found:?}"
        );
    }

    #[test]
    fn json_is_read_as_the_servers_reader_reads_it() {
        for text in [
            r#" {"b": [1, -2, 1.5, -0, 0, 18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809, 1e2, 2.5E-3], "a": "first", "a": "last", "n": null, "t": true, "f": false} "#,
            r#""\u00e9\ud83d\ude00\n\t\"\\\/ é""#,
            r#"[[], {}, [{"x": {"y": []}}]]"#,
        ] {
            let server = serde_json::from_str::<Json>(text).unwrap();
            assert_eq!(parse_json(text), Ok(server), "{text}");
        }
        for lone in [
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\ud83dx""#,
            r#""\ud83d\u0041""#,
        ] {
            assert!(parse_json(lone).is_err(), "{lone}");
            assert!(serde_json::from_str::<Json>(lone).is_err(), "{lone}");
        }
    }

    #[test]
    fn json_syntax_accepts_json_and_nothing_else() {
        for ok in [
            "{}",
            "[]",
            "0",
            "-1.5e+3",
            "\"a\\u00e9\"",
            "{\"a\": [true, false, null, {\"b\": 1}]}",
            " 1 ",
        ] {
            assert!(json_syntax(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "{",
            "{a: 1}",
            "[1,]",
            "01",
            "1.",
            "\"\\x\"",
            "tru",
            "{} {}",
            "\"\u{1}\"",
        ] {
            assert!(json_syntax(bad).is_err(), "{bad}");
        }
    }
}
