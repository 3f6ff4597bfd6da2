//! A definition compiled to JavaScript: the source of a function that
//! validates parameters exactly as [`Validator::validate`] (through
//! `facade::validate_parameters`) does, result shape, messages and key
//! order included, with no boundary to cross. The WASM module evaluates it
//! with `new Function` where the page's Content-Security-Policy allows; the
//! rules still have one source, this crate, and the Node tests run the
//! shared vectors and a differential fuzz through both. Pure, no I/O:
//! string building only.
//!
//! The source is the body of `function (env) { ... }` and returns
//! `validate(parameters)`. `env.match(index, value)` must answer whether
//! the string `value` matches parameter `index`'s pattern; it is only
//! called for patterns too large to become an automaton here.
//! `env.artifact(value)` answers what is wrong with an artifact placeholder
//! in `value` (`artifact::check`), or `undefined`.

use crate::conditions::Compiled;
use crate::facade;
use crate::json::{Json, Number};
use crate::schema::{ParameterSpec, Validator, MAX_PAYLOAD_BYTES};
use crate::text::quote;
use crate::value::ValueType;

/// Definitions with more parameters than this read the input's keys with
/// `Object.keys` rather than `for-in` (see `javascript`).
const MANY_PARAMETERS: usize = 16;

/// Automata above this many states are matched through `env.match`.
const MAX_DFA_STATES: usize = 256;

/// Helpers every generated validator carries: the JavaScript twins of
/// core's JSON reading (`to_json` in the WASM layer), `text::quote`,
/// `json::text_len` and `base64::decode`, with the same messages. Their
/// comments are kept here, out of the text the browser downloads.
const PRELUDE: &[&str] = &[
    r#"const hasOwn = Object.prototype.hasOwnProperty;
const wf = String.prototype.isWellFormed
  ? (s) => (s.isWellFormed() ? s : s.toWellFormed())
  : (s) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
const skip = (v) => v === undefined || typeof v === "function";
function kind(v) {
  switch (typeof v) {
    case "boolean": return "a boolean";
    case "number": return Number.isFinite(v) ? "a number" : "null";
    case "string": return "a string";
    case "object": return v === null ? "null" : Array.isArray(v) ? "an array" : "an object";
    default: return "null";
  }
}
function isObject(v) { return typeof v === "object" && v !== null && !Array.isArray(v); }
function intText(x) { return Number.isSafeInteger(x) ? String(x) : BigInt(x).toString(); }
"#,
    // A number as the server's reader classifies JSON.stringify's text of it.
    r#"function isInt(x) { return Number.isInteger(x) && x >= -9223372036854775808 && x < 18446744073709551616 && Math.abs(x) < 1e21; }
function numText(x) { return isInt(x) ? intText(x) : String(x); }
function cps(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { n--; i++; }
    }
  }
  return n;
}
"#,
    // text::quote: JSON-quoted, cut after 80 characters. A short string with
    // nothing to escape is quoted by hand (JSON.stringify's call costs more).
    r#"function quote(s) {
  if (s.length <= 80) {
    let i = 0;
    for (; i < s.length; i++) { const c = s.charCodeAt(i); if (c < 0x20 || c === 0x22 || c === 0x5c || (c & 0xf800) === 0xd800) break; }
    if (i === s.length) return '"' + s + '"';
  }
  let cut = s, n = 0, i = 0;
  for (; i < s.length && n < 80; n++) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
  }
  if (i < s.length) cut = s.slice(0, i) + "\u2026";
  return JSON.stringify(cut);
}
function cmpCodePoints(a, b) {
  for (let i = 0, j = 0; ; ) {
    if (i >= a.length || j >= b.length) return (a.length - i) - (b.length - j);
    const x = a.codePointAt(i), y = b.codePointAt(j);
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1; j += y > 0xffff ? 2 : 1;
  }
}
"#,
    // A value nesting deeper than the API's JSON reader allows is thrown, as the module throws it.
    r#"function guard(v, d) {
  if (d > 128) throw UNREADABLE();
  if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) guard(v[i], d + 1); }
  else if (typeof v === "object" && v !== null) { for (const k of Object.keys(v)) { const x = v[k]; if (!skip(x)) guard(x, d + 1); } }
}
function strLen(s) {
  s = wf(s);
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34 || c === 92 || c === 8 || c === 12 || c === 10 || c === 13 || c === 9) n += 2;
    else if (c < 0x20) n += 6;
    else if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) { n += 4; i++; }
    else n += 3;
  }
  return n;
}
"#,
    // The UTF-8 length of the JSON text of v as the server reads it (json::text_len).
    r#"function textLen(v) {
  switch (typeof v) {
    case "boolean": return v ? 4 : 5;
    case "number": return Number.isFinite(v) ? numText(v).length : 4;
    case "string": return strLen(v);
    case "object":
      if (v === null) return 4;
      if (Array.isArray(v)) { let n = 2 + Math.max(v.length - 1, 0); for (const x of v) n += textLen(x); return n; }
      { const m = entries(v); let n = 2 + Math.max(m.size - 1, 0);
        for (const [k, x] of m) n += strLen(k) + 1 + textLen(x);
        return n; }
    default: return 4;
  }
}
"#,
    // An object's entries as the module reads them: well-formed keys, the last
    // value of keys that become equal, undefined and functions left out.
    r#"function entries(v) {
  const m = new Map();
  for (const k of Object.keys(v)) { const x = v[k]; if (!skip(x)) m.set(wf(k), x); }
  return m;
}
"#,
    // A quick upper bound of textLen for scalars and flat objects (Infinity
    // for anything nested: the exact length is taken, after the depth guard).
    r#"function bound(v) {
  switch (typeof v) {
    case "string": return v.length * 6 + 2;
    case "object": {
      if (v === null) return 4;
      if (Array.isArray(v)) return Infinity;
      let n = 2;
      for (const k in v) {
        if (!hasOwn.call(v, k)) continue;
        const x = v[k];
        if (typeof x === "object" && x !== null) return Infinity;
        n += k.length * 6 + 4 + bound(x);
      }
      return n;
    }
    default: return 25;
  }
}
const B64 = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(i)] = i;
"#,
    // The decoded length of canonical padded base64, or a message (base64::decode).
    r#"function base64(s) {
  const chars = Array.from(s);
  let pad = 0;
  while (pad < chars.length && chars[chars.length - 1 - pad] === "=") pad++;
  const vals = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i], k = c.length === 1 ? c.charCodeAt(0) : 128;
    if (k < 128 && B64[k] >= 0) vals.push(B64[k]);
    else if (c === "=" && i >= chars.length - pad && pad <= 2) vals.push(0);
    else return quote(c) + " at character " + (i + 1) + (c === "=" ? " is padding before the end (at most two \"=\" end the text)" : " is not a base64 character");
  }
  if (chars.length % 4 !== 0) return "its length (" + chars.length + " characters) is not a multiple of 4; pad it with \"=\"";
  if ((pad === 1 && (vals[vals.length - 2] & 3) !== 0) || (pad === 2 && (vals[vals.length - 3] & 15) !== 0))
    return "the character before the padding has bits no byte uses (not the canonical encoding)";
  return chars.length / 4 * 3 - pad;
}
"#,
    // A UL's canonical digits, or null (value::TypedValue::from_payload).
    r#"function ul(s) {
  if (s.length === 0 || !/^[0-9]+$/.test(s)) return null;
  const t = s.replace(/^0+(?=.)/, "");
  return t.length < 20 || (t.length === 20 && t <= "18446744073709551615") ? t : null;
}
function err(code, message, path) { return { code, message, path }; }
"#,
    // The class of code point c among the automaton's boundaries B.
    r#"function cls(c, B) {
  let lo = 0, hi = B.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (B[mid] <= c) lo = mid; else hi = mid - 1; }
  return lo;
}
const DESCRIBE = { S: DESC_S, B: DESC_B, I: DESC_I, L: DESC_L, D: DESC_D, BIN: DESC_BIN, UL: DESC_UL };
"#,
    // A typed value of any tag ({"I": 42}), or an error (value::TypedValue::from_json_at).
    r#"function typed(v, path, depth) {
  if (!isObject(v)) { if (Array.isArray(v)) guard(v, depth); return err("WrongType", "expected a typed value such as {\"S\": \"text\"}, got " + kind(v), path); }
  const m = entries(v);
  for (const x of m.values()) if (typeof x === "object" && x !== null) guard(x, depth + 1);
  const n = m.size;
  const [tag, payload] = n === 1 ? m.entries().next().value : [];
  if (n !== 1) return err("WrongType", "a typed value has exactly one key (S, B, I, L, D, BIN or UL), got " + n, path);
  if (!hasOwn.call(DESCRIBE, tag)) return err("WrongType", "unknown type tag " + quote(tag) + "; use S, B, I, L, D, BIN or UL", path);
  return payloadOf(tag, payload, path);
}
function wrong(tag, x, path) { return err("WrongType", "expected " + DESCRIBE[tag] + ", got " + kind(x), path); }
function payloadOf(tag, x, path) {
  switch (tag) {
    case "S": return typeof x === "string" ? { t: "S", v: wf(x) } : wrong(tag, x, path);
    case "B": return typeof x === "boolean" ? { t: "B", v: x } : wrong(tag, x, path);
    case "I": case "L": {
      if (typeof x !== "number" || !isInt(x)) return wrong(tag, x, path);
      if (tag === "I" && (x < -2147483648 || x > 2147483647)) return err("OutOfRange", intText(x) + " does not fit a 32-bit integer", path);
      if (x >= 9223372036854775808) return err("OutOfRange", intText(x) + " does not fit a 64-bit integer", path);
      return { t: tag, v: x + 0 };
    }
    case "D": return typeof x === "number" && Number.isFinite(x) ? { t: "D", v: x + 0 } : wrong(tag, x, path);
    case "BIN": {
      if (typeof x !== "string") return wrong(tag, x, path);
      const n = base64(wf(x));
      return typeof n === "number" ? { t: "BIN", v: wf(x), n } : err("InvalidBase64", "not valid base64: " + n, path);
    }
    case "UL": {
      if (typeof x !== "string") return err("InvalidUnsignedLong", "UL is sent as a decimal string, e.g. {\"UL\": \"42\"}; got " + kind(x), path);
      const d = ul(x);
      return d === null ? err("InvalidUnsignedLong", quote(wf(x)) + " is not an unsigned 64-bit integer (0 to 18446744073709551615)", path) : { t: "UL", v: d };
    }
  }
}
"#,
    // Whether tag is v's one own, enumerable key with a value (for-in's
    // shape of the common case; anything else is looked at key by key). An
    // array is read as its items, as JSON.stringify writes it, whatever
    // named keys it has.
    r#"function sole(v, tag) {
  if (Array.isArray(v)) return false;
  let n = 0;
  for (const k in v) { if (k !== tag || !hasOwn.call(v, k)) return soleSlow(v, tag); n++; }
  return n === 1;
}
function soleSlow(v, tag) {
  for (const k in v) if (k !== tag && hasOwn.call(v, k) && !skip(v[k])) return false;
  return hasOwn.call(v, tag);
}
"#,
    // A parameter's value in any shape but the common one: its typed value or
    // an error, with a bound of its JSON size in extra.
    r#"let extra = 0;
function general(v, tag, path, wrongType) {
  if (isObject(v) && soleSlow(v, tag)) {
    const x = v[tag];
    if (!skip(x) && (typeof x !== "object" || x === null)) {
      extra = typeof x === "string" ? x.length * 6 + 2 : 25;
      return payloadOf(tag, x, path);
    }
  }
  extra = bound(v);
  const r = typed(v, path, 1);
  return r.code || r.t === tag ? r : err("WrongType", wrongType + r.t, path);
}
"#,
];

/// The JavaScript source for `validator` (see the module header).
pub fn javascript(validator: &Validator) -> String {
    let definition = validator.definition();
    let specs = &definition.parameters;
    let mut js = String::with_capacity(10_000 + 2000 * specs.len().max(1));
    // The directive prologue: first, or it is an ordinary expression.
    js.push_str("\"use strict\";\n");
    for (name, tag) in [
        ("DESC_S", ValueType::S),
        ("DESC_B", ValueType::B),
        ("DESC_I", ValueType::I),
        ("DESC_L", ValueType::L),
        ("DESC_D", ValueType::D),
        ("DESC_BIN", ValueType::Bin),
        ("DESC_UL", ValueType::Ul),
    ] {
        js.push_str(&crate::text::msg![
            "const ",
            name,
            " = ",
            lit(tag.describe()),
            ";\n"
        ]);
    }
    js.push_str(&crate::text::msg![
        "const UNREADABLE = () => (",
        json_text(&facade::unreadable("")),
        ");\n"
    ]);
    for piece in PRELUDE {
        js.push_str(piece);
    }
    for (i, spec) in specs.iter().enumerate() {
        if let Some(pattern) = validator.pattern(i) {
            match pattern.dfa(MAX_DFA_STATES) {
                Some(dfa) => js.push_str(&matcher(i, &dfa)),
                None => js.push_str(&crate::text::msg![
                    "const P",
                    i,
                    " = (s) => env.match(",
                    i,
                    ", s);\n"
                ]),
            }
        }
        if let Some(allowed) = &spec.allowed_values {
            // A few values compare fastest one by one; many, through a Set.
            let cases: Vec<String> = allowed.iter().map(|a| lit(a)).collect();
            let test = if cases.len() <= 8 {
                let each: Vec<String> = cases
                    .iter()
                    .map(|c| crate::text::msg!["s === ", c])
                    .collect();
                crate::text::msg!["(s) => ", each.join(" || ")]
            } else {
                crate::text::msg![
                    "((set) => (s) => set.has(s))(new Set([",
                    cases.join(", "),
                    "]))"
                ]
            };
            js.push_str(&crate::text::msg!["const E", i, " = ", test, ";\n"]);
        }
    }
    let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let unknown_tail = if known.is_empty() {
        "; it takes none".to_owned()
    } else {
        crate::text::msg!["; known: ", known.join(", ")]
    };
    js.push_str(&crate::text::msg![
        "const UNKNOWN = (name) => quote(name) + ",
        lit(&crate::text::msg![
            " is not a parameter of command ",
            definition.command_id
        ]),
        " + ",
        lit(&unknown_tail),
        ";\n"
    ]);
    js.push_str("return function validate(p) {\n");
    js.push_str(
        "  if (!isObject(p)) {\n\
         \x20   if (Array.isArray(p)) { guard(p, 0); return { errors: [err(\"WrongType\", \"expected an object of typed values, got an array\", \"parameters\")], valid: false }; }\n\
         \x20   if (typeof p === \"boolean\" || typeof p === \"string\" || (typeof p === \"number\" && Number.isFinite(p))) return { errors: [err(\"WrongType\", \"expected an object of typed values, got \" + kind(p), \"parameters\")], valid: false };\n\
         \x20   p = {};\n  }\n",
    );
    // Pass 1: which keys are parameters, what else there is, and a bound
    // on the JSON size (exact only when the bound is over the limit).
    let slots: Vec<String> = (0..specs.len())
        .map(|i| crate::text::msg!["v", i])
        .collect();
    if !slots.is_empty() {
        js.push_str(&crate::text::msg!["  let ", slots.join(", "), ";\n"]);
    }
    // for-in is V8's fast way through an object of few keys; one built key
    // by key past about 17 keys is a hash table, where Object.keys is (bench:
    // 0.77x against 0.54x of Ajv's speed for 6 parameters; 1.26x against
    // 0.99x for 30).
    js.push_str(if specs.len() > MANY_PARAMETERS {
        "  let size = 2, unknown = null;\n  const keys = Object.keys(p);\n  for (let j = 0; j < keys.length; j++) {\n    const k = keys[j], x = p[k];\n"
    } else {
        "  let size = 2, unknown = null;\n  for (const k in p) {\n    if (!hasOwn.call(p, k)) continue;\n    const x = p[k];\n"
    });
    js.push_str(
        "    if (x === undefined || typeof x === \"function\") continue;\n    switch (k) {\n",
    );
    for (i, spec) in specs.iter().enumerate() {
        js.push_str(&crate::text::msg![
            "      case ",
            lit(spec.name.as_str()),
            ": v",
            i,
            " = x; break;\n"
        ]);
    }
    js.push_str("      default: (unknown ??= []).push(k);\n    }\n  }\n");
    js.push_str(
        "  const errors = [];\n  if (unknown !== null) {\n    for (const k of unknown) { const x = p[k]; guard(x, 1); size += k.length * 6 + 4 + bound(x); }\n    const names = [...new Set(unknown.map(wf))].sort(cmpCodePoints);\n    for (const k of names) errors.push(err(\"UnknownParameter\", UNKNOWN(k), \"parameters.\" + k));\n  }\n",
    );
    for (i, spec) in specs.iter().enumerate() {
        js.push_str(&parameter(
            i,
            spec,
            validator.pattern(i).is_some(),
            validator.conditions(i),
        ));
    }
    // The typed parameters, in key order, when nothing was wrong.
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by(|a, b| specs[*a].name.as_str().cmp(specs[*b].name.as_str()));
    // Only now the size: its error, if any, is the only one (core checks it
    // first; the order of the work does not change the answer).
    js.push_str(&crate::text::msg![
        "  if (size > ",
        MAX_PAYLOAD_BYTES,
        ") {\n    guard(p, 0);\n    const exact = textLen(p);\n    if (exact > ",
        MAX_PAYLOAD_BYTES,
        ") return { errors: [err(\"PayloadTooLarge\", \"parameters are \" + exact + ",
        lit(&crate::text::msg![
            " bytes as JSON; the limit is ",
            MAX_PAYLOAD_BYTES
        ]),
        ", \"parameters\")], valid: false };\n  }\n"
    ]);
    js.push_str("  if (errors.length !== 0) return { errors, valid: false };\n");
    // All present (the common case): one object literal, in key order.
    let all: Vec<String> = order
        .iter()
        .map(|i| crate::text::msg!["t", i, " !== undefined"])
        .collect();
    let fields: Vec<String> = order
        .iter()
        .map(|i| crate::text::msg![lit(specs[*i].name.as_str()), ": t", i])
        .collect();
    if !order.is_empty() {
        js.push_str(&crate::text::msg![
            "  if (",
            all.join(" && "),
            ") return { errors, parameters: { ",
            fields.join(", "),
            " }, valid: true };\n"
        ]);
    }
    js.push_str("  const parameters = {};\n");
    for i in order {
        js.push_str(&crate::text::msg![
            "  if (t",
            i,
            " !== undefined) parameters[",
            lit(specs[i].name.as_str()),
            "] = t",
            i,
            ";\n"
        ]);
    }
    js.push_str("  return { errors, parameters, valid: true };\n};\n");
    js
}

/// Pattern `i`'s automaton as a function of a string: a table of the
/// classes of ASCII characters, the transitions, the accepting states, and
/// a loop over code points (surrogate pairs joined).
fn matcher(i: usize, dfa: &crate::pattern::Dfa) -> String {
    let classes = dfa.bounds.len();
    let ascii: Vec<u16> = (0..128u32)
        .map(|c| (dfa.bounds.partition_point(|b| *b <= c) - 1) as u16)
        .collect();
    let accept: Vec<u16> = dfa.accept.iter().map(|a| u16::from(*a)).collect();
    crate::text::msg![
        "const C", i, " = new Uint8Array(", numbers(&ascii), "), B", i, " = new Uint32Array(",
        numbers(&dfa.bounds), "), T", i, " = new Uint16Array(", numbers(&dfa.next), "), A", i,
        " = new Uint8Array(", numbers(&accept), ");\n",
        "function P", i, "(s) {\n  let st = 1;\n  for (let i = 0; i < s.length; i++) {\n",
        "    let c = s.charCodeAt(i), k;\n    if (c < 128) k = C", i, "[c];\n    else {\n",
        "      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) { const d = s.charCodeAt(i + 1); if (d >= 0xdc00 && d <= 0xdfff) { c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000; i++; } }\n",
        "      k = cls(c, B", i, ");\n    }\n    st = T", i, "[st * ", classes, " + k];\n    if (st === 0) return false;\n  }\n  return A", i, "[st] === 1;\n}\n"
    ]
}

/// The checks of parameter `i`: its value `v{i}` becomes `t{i}` (the typed
/// value, a default, or `undefined`), its problems go to `errors`, an
/// upper bound of its JSON size to `size`.
fn parameter(i: usize, spec: &ParameterSpec, has_pattern: bool, conditions: &[Compiled]) -> String {
    let t = spec.value_type;
    let tag = lit(t.as_str());
    let path = lit(&crate::text::msg!["parameters.", spec.name]);
    // Key, quotes, colon, comma, and the typed value's braces and tag.
    let overhead = spec.name.as_str().len() * 6 + 4 + 12;
    // A string checked against an enum is made well-formed only if it is
    // not one of the values (which are); the check itself comes first.
    let defer_wf = t == ValueType::S && spec.allowed_values.is_some() && conditions.is_empty();
    let mut js = crate::text::msg![
        "  let t",
        i,
        ";\n  if (v",
        i,
        " !== undefined) {\n    const v = v",
        i,
        ", before = errors.length;\n    let val, ok = true, bytes = 0, x;\n"
    ];
    // The common shape, {"TAG": payload} with a payload of the right kind,
    // is checked inline; any other goes the general way (general()).
    let fast = match t {
        ValueType::I => Some(("typeof (x = v.I) === \"number\" && Number.isInteger(x) && x >= -2147483648 && x <= 2147483647", "x + 0", "25")),
        ValueType::L => Some(("typeof (x = v.L) === \"number\" && Number.isSafeInteger(x)", "x + 0", "25")),
        ValueType::D => Some(("typeof (x = v.D) === \"number\" && Number.isFinite(x)", "x + 0", "25")),
        ValueType::B => Some(("typeof (x = v.B) === \"boolean\"", "x", "5")),
        ValueType::S => Some(("typeof (x = v.S) === \"string\"", if defer_wf { "x" } else { "wf(x)" }, "x.length * 6 + 2")),
        ValueType::Bin | ValueType::Ul => None,
    };
    if let Some((test, value, bound)) = fast {
        js.push_str(&crate::text::msg![
            "    if (typeof v === \"object\" && v !== null && ",
            test,
            " && sole(v, ",
            tag,
            ")) { val = ",
            value,
            "; size += ",
            bound,
            " + ",
            overhead,
            "; }\n    else "
        ]);
    } else {
        js.push_str("    ");
    }
    js.push_str(&crate::text::msg![
        "{\n      const r = general(v, ",
        tag,
        ", ",
        path,
        ", ",
        lit(&crate::text::msg!["expected ", t.describe(), ", got type "]),
        ");\n      size += extra + ",
        overhead,
        ";\n      if (r.code) { errors.push(r); ok = false; } else { val = r.v; bytes = r.n; }\n    }\n    if (ok) {\n"
    ]);
    if defer_wf {
        js.push_str(&crate::text::msg![
            "      if (!E",
            i,
            "(val)) val = wf(val);\n"
        ]);
    }
    js.push_str(&constraints(spec, &path, i, has_pattern));
    js.push_str(&condition_checks(conditions, spec.value_type, &path));
    js.push_str(&crate::text::msg![
        "      if (errors.length === before) t",
        i,
        " = { ",
        t.as_str(),
        ": val };\n    }\n"
    ]);
    if spec.sensitive {
        js.push_str(&crate::text::msg![
            "    for (let e = before; e < errors.length; e++) {\n      const c = errors[e].code;\n      if (c !== \"TooShort\" && c !== \"TooLong\" && c !== \"WrongType\") errors[e] = err(c, ",
            hidden("c", spec),
            ", errors[e].path);\n    }\n"
        ]);
    }
    js.push_str("  }");
    match (&spec.default, spec.required) {
        (Some(default), _) => js.push_str(&crate::text::msg![
            " else {\n    t",
            i,
            " = ",
            json_text(&default.to_json()),
            ";\n  }\n"
        ]),
        (None, true) => js.push_str(&crate::text::msg![
            " else {\n    errors.push(err(\"MissingRequired\", ",
            lit(&crate::text::msg![
                "required parameter ",
                quote(spec.name.as_str()),
                " (",
                spec.value_type,
                ") is missing"
            ]),
            ", ",
            path,
            "));\n  }\n"
        ]),
        (None, false) => js.push('\n'),
    }
    js
}

/// A sensitive parameter's message for error code `code` (a JS
/// expression), as `ParameterSpec::message_without_value` writes it.
fn hidden(code: &str, spec: &ParameterSpec) -> String {
    let sentence = |rule: String| {
        lit(&crate::text::msg![
            "the value of sensitive parameter ",
            quote(spec.name.as_str()),
            " is not shown; ",
            rule
        ])
    };
    let range = match (&spec.min, &spec.max) {
        (Some(min), Some(max)) => crate::text::msg!["it must be from ", min, " to ", max],
        (Some(min), None) => crate::text::msg!["it must be at least ", min],
        (None, Some(max)) => crate::text::msg!["it must be at most ", max],
        (None, None) => crate::text::msg!["it does not fit type ", spec.value_type],
    };
    crate::text::msg![
        code,
        " === \"OutOfRange\" ? ",
        sentence(range),
        " : ",
        code,
        " === \"PatternMismatch\" ? ",
        sentence(crate::text::msg![
            "it must match the pattern ",
            spec.pattern.as_deref().unwrap_or_default()
        ]),
        " : ",
        code,
        " === \"NotInEnum\" ? ",
        sentence("it is not one of the allowed values".to_owned()),
        " : ",
        sentence(crate::text::msg![
            "it is not a valid ",
            spec.value_type,
            " value"
        ])
    ]
}

/// The constraint checks on `val` (`Validator::check_constraints`).
fn constraints(spec: &ParameterSpec, path: &str, i: usize, has_pattern: bool) -> String {
    let mut js = String::new();
    let push = |js: &mut String, condition: String, code: &str, message: String| {
        js.push_str(&crate::text::msg![
            "      if (",
            condition,
            ") errors.push(err(",
            lit(code),
            ", ",
            message,
            ", ",
            path,
            "));\n"
        ]);
    };
    if spec.value_type.is_numeric() {
        for (bound, below) in [(&spec.min, true), (&spec.max, false)] {
            let Some(bound) = bound else { continue };
            let op = if below { "<" } else { ">" };
            let word = if below {
                " is below the minimum "
            } else {
                " is above the maximum "
            };
            let message = crate::text::msg![
                value_text(spec.value_type),
                " + ",
                lit(&crate::text::msg![word, bound])
            ];
            push(
                &mut js,
                compare(spec.value_type, bound, op),
                "OutOfRange",
                message,
            );
        }
    }
    match spec.value_type {
        ValueType::S => {
            // An artifact placeholder is checked by core itself, through
            // the module (`env.artifact`), as `Validator::validate` does
            // first for a string.
            push(
                &mut js,
                crate::text::msg![
                    "val.length >= ",
                    crate::artifact::MARKER.len(),
                    " && val.includes(",
                    lit(crate::artifact::MARKER),
                    ") && env.artifact(val) !== undefined"
                ],
                "InvalidValue",
                "env.artifact(val)".into(),
            );
            if spec.min_length.is_some() || spec.max_length.is_some() {
                js.push_str("      const n = val.length;\n");
            }
            if let Some(min) = spec.min_length {
                push(
                    &mut js,
                    crate::text::msg![
                        "(n < ",
                        min,
                        " || (n < ",
                        2 * u64::from(min),
                        " && cps(val) < ",
                        min,
                        "))"
                    ],
                    "TooShort",
                    crate::text::msg![
                        "cps(val) + ",
                        lit(&crate::text::msg![" characters; at least ", min, " needed"])
                    ],
                );
            }
            if let Some(max) = spec.max_length {
                push(
                    &mut js,
                    crate::text::msg!["n > ", max, " && cps(val) > ", max],
                    "TooLong",
                    crate::text::msg![
                        "cps(val) + ",
                        lit(&crate::text::msg![" characters; at most ", max, " allowed"])
                    ],
                );
            }
            if has_pattern {
                push(
                    &mut js,
                    crate::text::msg!["!P", i, "(val)"],
                    "PatternMismatch",
                    crate::text::msg![
                        "quote(val) + ",
                        lit(&crate::text::msg![
                            " does not match the pattern ",
                            spec.pattern.as_deref().unwrap_or_default()
                        ])
                    ],
                );
            }
            if let Some(allowed) = &spec.allowed_values {
                push(
                    &mut js,
                    crate::text::msg!["!E", i, "(val)"],
                    "NotInEnum",
                    crate::text::msg![
                        "quote(val) + ",
                        lit(&crate::text::msg![" is not one of: ", allowed.join(", ")])
                    ],
                );
            }
        }
        ValueType::Bin => {
            if let Some(max) = spec.max_bytes {
                push(
                    &mut js,
                    crate::text::msg!["bytes > ", max],
                    "TooLong",
                    crate::text::msg![
                        "bytes + ",
                        lit(&crate::text::msg![" bytes; at most ", max, " allowed"])
                    ],
                );
            }
        }
        ValueType::B | ValueType::I | ValueType::L | ValueType::D | ValueType::Ul => {}
    }
    js
}

/// How a message writes the checked value `val` of a numeric type.
fn value_text(t: ValueType) -> &'static str {
    match t {
        ValueType::I | ValueType::L => "intText(val)",
        ValueType::Ul => "val",
        ValueType::D | ValueType::S | ValueType::B | ValueType::Bin => "String(val)",
    }
}

/// `val <op> bound` as `value::Number::partial_cmp` decides it: exactly
/// between integers, as doubles otherwise.
fn compare(t: ValueType, bound: &Number, op: &str) -> String {
    let integer_bound = bound.as_i128();
    match (t, integer_bound) {
        // A safe integer bound compares exactly as a double; an unsafe one
        // against an unsafe value needs BigInt.
        (ValueType::I | ValueType::L, Some(b)) if b.unsigned_abs() <= 1 << 53 => {
            crate::text::msg!["val ", op, " ", bound]
        }
        (ValueType::I | ValueType::L, Some(_)) => crate::text::msg![
            "(Number.isSafeInteger(val) ? val ",
            op,
            " ",
            f64_literal(bound.as_f64()),
            " : BigInt(val) ",
            op,
            " ",
            bound,
            "n)"
        ],
        (ValueType::Ul, Some(_)) => crate::text::msg!["BigInt(val) ", op, " ", bound, "n"],
        (ValueType::Ul, None) => {
            crate::text::msg!["Number(BigInt(val)) ", op, " ", f64_literal(bound.as_f64())]
        }
        _ => crate::text::msg!["val ", op, " ", f64_literal(bound.as_f64())],
    }
}

/// The value conditions' checks on `val` (`conditions::Compiled::refuses`,
/// the same tests and messages).
fn condition_checks(conditions: &[Compiled], t: ValueType, path: &str) -> String {
    let mut js = String::new();
    for condition in conditions {
        // The JavaScript test under which the value fails the condition.
        let holds_unless = |negated: bool, found: String| {
            if negated {
                found
            } else {
                crate::text::msg!["!", found]
            }
        };
        let (failing, code, value) = match condition {
            Compiled::Compare(c, bound) => (
                compare(t, bound, c.failing_js_operator()),
                "OutOfRange",
                value_text(t),
            ),
            Compiled::NumberIn { negated, set } => {
                let found: Vec<String> = set
                    .iter()
                    .map(|b| crate::text::msg!["(", compare(t, b, "==="), ")"])
                    .collect();
                let found = crate::text::msg!["(", found.join(" || "), ")"];
                (holds_unless(*negated, found), "OutOfRange", value_text(t))
            }
            Compiled::Range { negated, min, max } => {
                let inside = crate::text::msg![
                    "(",
                    compare(t, min, ">="),
                    " && ",
                    compare(t, max, "<="),
                    ")"
                ];
                (holds_unless(*negated, inside), "OutOfRange", value_text(t))
            }
            Compiled::StringIn { negated, set } => {
                let found: Vec<String> = set
                    .iter()
                    .map(|s| crate::text::msg!["val === ", lit(s)])
                    .collect();
                let found = crate::text::msg!["(", found.join(" || "), ")"];
                (holds_unless(*negated, found), "NotInEnum", "quote(val)")
            }
        };
        js.push_str(&crate::text::msg![
            "      if (",
            failing,
            ") errors.push(err(",
            lit(code),
            ", ",
            value,
            " + ",
            lit(&condition.message_tail()),
            ", ",
            path,
            "));\n"
        ]);
    }
    js
}

/// A double as a JavaScript literal that reads back as itself.
fn f64_literal(x: f64) -> String {
    crate::json::number_text(x)
}

/// A JavaScript string literal (JSON's quoting is valid JavaScript).
fn lit(s: &str) -> String {
    json_text(&Json::from(s))
}

fn numbers<T: Copy + Into<u64>>(list: &[T]) -> String {
    let mut out = String::from("[");
    for (i, n) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::json::push_u64(&mut out, (*n).into());
    }
    out.push(']');
    out
}

/// JSON text of `json` (objects in key order), which is also a JavaScript
/// expression for the same value.
fn json_text(json: &Json) -> String {
    let mut out = String::new();
    write_json(json, &mut out);
    out
}

fn write_json(json: &Json, out: &mut String) {
    match json {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => n.write_text(out),
        Json::String(s) => {
            out.push('"');
            for c in s.chars() {
                // The two line separators a JavaScript string literal may
                // not hold before ES2019; the rest as JSON writes it.
                if c == '\u{2028}' || c == '\u{2029}' {
                    out.push_str(if c == '\u{2028}' {
                        "\\u2028"
                    } else {
                        "\\u2029"
                    });
                } else {
                    crate::text::push_json_char(out, c);
                }
            }
            out.push('"');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Json::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(&Json::from(k.as_str()), out);
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
    }
}
