//! PAYLOAD TEMPLATES: AWS IoT commands' `payloadTemplate`, the JSON a
//! commands-protocol device receives, with placeholders filled from each
//! execution. Checking a template when its command is defined, and filling
//! it; pure, no I/O.
//!
//! Placeholders (case-sensitive, as AWS writes them):
//! - `${aws:iot:commandexecution::parameter:NAME}`: the value of parameter
//!   NAME, which must be required or have a default, so every execution
//!   has one;
//! - `${aws:iot:commandexecution::executionTimeoutSec}`: the execution's
//!   timeout in seconds.
//!
//! Inside a JSON string a value is written as text (`"${…:name}"` with S
//! `"ON"` gives `"ON"`, with I 5 gives `"5"`); outside one it is written as
//! the JSON value of its type (S, UL and BIN as strings, I, L and D as
//! numbers, B as `true` / `false`). The template must be valid JSON once
//! filled, with at least one placeholder, and at most 32 KiB.

use crate::error::{ValidationCode, ValidationErrors};
use crate::map::SortedMap;
use crate::text::{msg, quote};
use crate::value::{TypedValue, ValueType};

const PARAMETER: &str = "aws:iot:commandexecution::parameter:";
const TIMEOUT: &str = "aws:iot:commandexecution::executionTimeoutSec";
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
    parameters: &[(&str, ValueType, bool)],
    errors: &mut ValidationErrors,
) {
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
        if placeholder == TIMEOUT {
            return Some(Filler::Timeout(0));
        }
        let Some(name) = placeholder.strip_prefix(PARAMETER) else {
            problems.push(msg![
                "unsupported placeholder ",
                quote(placeholder),
                "; use ${",
                PARAMETER,
                "NAME} or ${",
                TIMEOUT,
                "}"
            ]);
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
    parameters: &SortedMap<TypedValue>,
    timeout_seconds: u32,
) -> Result<String, String> {
    fill(template, |placeholder| {
        if placeholder == TIMEOUT {
            return Some(Filler::Timeout(timeout_seconds));
        }
        let name = placeholder.strip_prefix(PARAMETER)?;
        parameters.get(name).map(Filler::Value)
    })
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
/// of the first problem. Checks only; builds nothing.
pub fn json_syntax(text: &str) -> Result<(), usize> {
    let bytes = text.as_bytes();
    let mut at = skip_ws(bytes, 0);
    at = value(bytes, at, 0)?;
    at = skip_ws(bytes, at);
    if at == bytes.len() {
        Ok(())
    } else {
        Err(at)
    }
}

fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while at < b.len() && matches!(b[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

fn value(b: &[u8], at: usize, depth: usize) -> Result<usize, usize> {
    if depth > 128 {
        return Err(at);
    }
    match b.get(at) {
        Some(b'{') => {
            let mut at = skip_ws(b, at + 1);
            if b.get(at) == Some(&b'}') {
                return Ok(at + 1);
            }
            loop {
                at = string(b, at)?;
                at = skip_ws(b, at);
                if b.get(at) != Some(&b':') {
                    return Err(at);
                }
                at = skip_ws(b, at + 1);
                at = skip_ws(b, value(b, at, depth + 1)?);
                match b.get(at) {
                    Some(b',') => at = skip_ws(b, at + 1),
                    Some(b'}') => return Ok(at + 1),
                    _ => return Err(at),
                }
            }
        }
        Some(b'[') => {
            let mut at = skip_ws(b, at + 1);
            if b.get(at) == Some(&b']') {
                return Ok(at + 1);
            }
            loop {
                at = skip_ws(b, value(b, at, depth + 1)?);
                match b.get(at) {
                    Some(b',') => at = skip_ws(b, at + 1),
                    Some(b']') => return Ok(at + 1),
                    _ => return Err(at),
                }
            }
        }
        Some(b'"') => string(b, at),
        Some(b't') if b[at..].starts_with(b"true") => Ok(at + 4),
        Some(b'f') if b[at..].starts_with(b"false") => Ok(at + 5),
        Some(b'n') if b[at..].starts_with(b"null") => Ok(at + 4),
        Some(b'-' | b'0'..=b'9') => number(b, at),
        _ => Err(at),
    }
}

fn string(b: &[u8], at: usize) -> Result<usize, usize> {
    if b.get(at) != Some(&b'"') {
        return Err(at);
    }
    let mut i = at + 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => return Ok(i + 1),
            b'\\' => match b.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u')
                    if b.len() >= i + 6 && b[i + 2..i + 6].iter().all(u8::is_ascii_hexdigit) =>
                {
                    i += 6
                }
                _ => return Err(i),
            },
            0..=0x1f => return Err(i),
            _ => i += 1,
        }
    }
    Err(i)
}

fn number(b: &[u8], mut at: usize) -> Result<usize, usize> {
    let digits = |b: &[u8], mut at: usize| {
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        (at > start).then_some(at).ok_or(at)
    };
    if b.get(at) == Some(&b'-') {
        at += 1;
    }
    at = if b.get(at) == Some(&b'0') {
        at + 1
    } else {
        digits(b, at)?
    };
    if b.get(at) == Some(&b'.') {
        at = digits(b, at + 1)?;
    }
    if matches!(b.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(b.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        at = digits(b, at)?;
    }
    Ok(at)
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

    fn problems(template: &str) -> Vec<String> {
        let mut errors = ValidationErrors::new();
        check(template, &params(), &mut errors);
        errors.iter().map(|e| e.message.clone()).collect()
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
