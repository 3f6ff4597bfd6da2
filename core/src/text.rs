//! How messages are written: refused input quoted the way JSON quotes a
//! string (so a message reads the same in every language that shows it,
//! and never in one language's debug syntax), cut to a readable length, and
//! named by its JSON kind; messages joined from pieces by [`msg!`](crate::msg)
//! rather than `format!`. Pure, no I/O.

use crate::json::{push_i64, push_u64, Json};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// At most this many characters of a refused value appear in a message.
pub const SHOWN_CHARS: usize = 80;

/// `raw` as a JSON string literal, cut to [`SHOWN_CHARS`] characters (then
/// ending in `…`): `"dev/1"`, `"tab\there"`, `"\u0000"`.
pub fn quote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(SHOWN_CHARS * 2) + 2);
    out.push('"');
    for (i, c) in raw.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push('…');
            break;
        }
        push_json_char(&mut out, c);
    }
    out.push('"');
    out
}

/// `c` as it is written inside a JSON string (and a JavaScript string
/// literal): `"`, `\` and control characters escaped, as `JSON.stringify`
/// escapes them.
pub fn push_json_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        c if (c as u32) < 0x20 => {
            out.push_str("\\u00");
            out.push(char::from(HEX[(c as usize) >> 4]));
            out.push(char::from(HEX[(c as usize) & 15]));
        }
        c => out.push(c),
    }
}

/// A refused value as a message shows it: a number as JavaScript prints
/// it, a string quoted (see [`quote`]), `true`, `false`, `null`; an array or
/// an object only by its kind.
pub fn shown(value: &Json) -> String {
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => if *b { "true" } else { "false" }.into(),
        Json::Number(n) => crate::text::msg![n],
        Json::String(s) => quote(s),
        Json::Array(_) | Json::Object(_) => json_kind(value).into(),
    }
}

/// "a string", "a number", ... for messages.
pub fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// One piece of a message. [`msg!`](crate::msg) joins pieces without
/// `core::fmt`: its machinery (and a number formatter per type) would
/// otherwise be most of the browser build. Numbers are written as
/// JavaScript writes them, so a message reads the same from the server,
/// the WASM module and the JavaScript a definition compiles to.
pub trait Piece {
    fn put(&self, out: &mut String);
}

impl Piece for str {
    fn put(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Piece for String {
    fn put(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Piece for char {
    fn put(&self, out: &mut String) {
        out.push(*self);
    }
}

impl<T: Piece + ?Sized> Piece for &T {
    fn put(&self, out: &mut String) {
        (**self).put(out);
    }
}

macro_rules! unsigned_pieces {
    ($($t:ty),*) => {$(
        impl Piece for $t {
            fn put(&self, out: &mut String) {
                push_u64(out, u64::from(*self));
            }
        }
    )*};
}
unsigned_pieces!(u8, u16, u32, u64);

impl Piece for usize {
    fn put(&self, out: &mut String) {
        push_u64(out, *self as u64);
    }
}

impl Piece for i32 {
    fn put(&self, out: &mut String) {
        push_i64(out, i64::from(*self));
    }
}

impl Piece for i64 {
    fn put(&self, out: &mut String) {
        push_i64(out, *self);
    }
}

impl Piece for f64 {
    fn put(&self, out: &mut String) {
        out.push_str(&crate::json::number_text(*self));
    }
}

impl Piece for crate::json::Number {
    fn put(&self, out: &mut String) {
        self.write_text(out);
    }
}

/// The pieces, joined.
pub fn cat(pieces: &[&dyn Piece]) -> String {
    let mut out = String::new();
    for piece in pieces {
        piece.put(&mut out);
    }
    out
}

/// A message from pieces (strings, numbers, anything [`Piece`]):
/// `msg!["at most ", max, " allowed"]`. Reached as `crate::text::msg!`, so
/// using it is an import of this module, not of the crate root.
macro_rules! msg {
    ($($piece:expr),+ $(,)?) => {
        $crate::text::cat(&[$(&$piece as &dyn $crate::text::Piece),+])
    };
}
pub(crate) use msg;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_as_json_strings_and_cut() {
        assert_eq!(quote("dev/1"), r#""dev/1""#);
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(quote("\u{0}\u{1b}"), r#""\u0000\u001b""#);
        assert_eq!(quote("é ☃"), "\"é ☃\"");
        let long = "x".repeat(100);
        assert_eq!(quote(&long), crate::text::msg!["\"", "x".repeat(80), "…\""]);
    }

    proptest::proptest! {
        /// Below the cut, exactly what JSON prints (and JSON.stringify, which
        /// escapes the same characters the same way).
        #[test]
        fn short_values_are_quoted_exactly_as_json_prints_them(raw in "\\PC{0,80}|[\\x00-\\x1f\"\\\\a-z]{0,80}") {
            proptest::prop_assert_eq!(quote(&raw), serde_json::to_string(&raw).unwrap());
        }
    }
}
