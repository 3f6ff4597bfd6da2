// Differential fuzz test: the JavaScript that core generates for a
// definition and the WebAssembly validator must give the same answer (the
// same errors in the same order, the same filled parameters, the same key
// order, the same thrown CourierError) for the same random definitions and
// inputs. The inputs lean on where JavaScript and Rust differ: string length
// (code points, lone surrogates), number text (-0, 1e21, 2^53 + 2, 2^63),
// 64-bit integers, Unicode in patterns, prototype names, deep and cyclic
// values. Seeded, so a failure names a case that can be replayed:
//   COURIER_FUZZ_SEED=1234 COURIER_FUZZ_CASES=5000 node --test wasm/tests/differential.test.mjs
// Also: under `--disallow-code-generation-from-strings` (what a strict
// Content-Security-Policy does to `new Function`) validators run in
// WebAssembly and still answer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import courier from "./load.mjs";

const SEED = Number(process.env.COURIER_FUZZ_SEED ?? 20261128);
const DEFINITIONS = Number(process.env.COURIER_FUZZ_DEFINITIONS ?? 150);
const INPUTS = Number(process.env.COURIER_FUZZ_CASES ?? 40);

/** mulberry32: small, seeded, good enough to pick cases. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TYPES = ["S", "B", "I", "L", "D", "BIN", "UL"];
const NAMES = ["mode", "rate", "label", "a", "b_2", "xY", "z9", "long_parameter_name_for_messages"];
// Every construct of the documented subset, and one whose DFA is too big to
// build (the generated code then asks WebAssembly to match it).
const PATTERNS = [
  "[a-z]+", "^[a-z]+$", "^[0-9]{2,4}$", "^(ab|cd)*$", "^.$", "\\d+", "^[^x]*$", "é|😀", "^a.?b$",
  "^[a-zé😀]+$", "^\\w+@\\w+\\.com$", "^\\s*\\S+\\s*$", "^[A-F0-9]{8}$", "x{0,2}y+", "^(a|b)*a(a|b){9}$",
  "^\\p{L}+$", "^[\\u0041-\\u005A]+$", "\\.", "^$",
];
const STRINGS = [
  "", "a", "ab", "abc", "abcdefghij", "ABC", "12", "1234", "12345", "abab", "cd", "x", "y", "xyy", "é", "e\u0301",
  "😀", "😀😀😀😀", "\ud800", "a\udc00b", "\u0000\u001f", "q\"uote\\", "tab\there", "eco", "normal", "turbo",
  "user@host.com", " padded ", "DEADBEEF", "aaaaaaaaaab", "abababababa", "x".repeat(81), "é".repeat(40),
  "__proto__", "constructor", "toString", "hasOwnProperty",
];
const NUMBERS = [
  0, -0, 1, -1, 0.5, 1.5, 2, 100, 101, -5, 42, 2147483647, 2147483648, -2147483648, -2147483649,
  2 ** 53, 2 ** 53 + 2, -(2 ** 53), 2 ** 63, -(2 ** 63), 2 ** 64, 1e20, 1e21, 1e-7, 5e-324, 1.7976931348623157e308,
  0.1 + 0.2, 123456789.123, NaN, Infinity, -Infinity,
];
const UL_TEXTS = ["0", "42", "18446744073709551615", "18446744073709551616", "-1", "01", "+1", " 1", "1e3", "", "9007199254740993"];
const BIN_TEXTS = ["", "AAEC", "AAE=", "AA==", "AAE", "====", "A===", "aGk=", "aGk", "aG k=", "AAECAwQFBgc=", "!!!!", "AB=C"];
const KEYS = [...NAMES, "unknown", "colour", "__proto__", "constructor", "toString", "valueOf", "Mode", "😀", ""];

function definition(rand) {
  const pick = (list) => list[Math.floor(rand() * list.length)];
  // One in eight is long: past 16 parameters the generated code reads the
  // input's keys another way (Object.keys, not for-in).
  const long = rand() < 0.125;
  const count = long ? 17 + Math.floor(rand() * 8) : Math.floor(rand() * 5) + (rand() < 0.05 ? 0 : 1);
  const pool = long ? [...NAMES, ...Array.from({ length: 20 }, (_, i) => `p${i}`)] : NAMES;
  const names = [...pool].sort(() => rand() - 0.5).slice(0, count);
  const parameters = names.map((name) => {
    const type = pick(TYPES);
    const p = { name, type };
    if (rand() < 0.4) p.required = true;
    const bound = () => pick([0, 1, -5, 5, 100, 2 ** 53, -(2 ** 53), 1e20, 0.5, 2147483647, 10000000000000000000]);
    if (type === "S") {
      if (rand() < 0.4) p.minLength = pick([0, 1, 2, 3]);
      if (rand() < 0.4) p.maxLength = pick([1, 3, 8, 80]);
      if (rand() < 0.5) p.pattern = pick(PATTERNS);
      if (rand() < 0.3) p.enum = [...STRINGS].sort(() => rand() - 0.5).slice(0, Math.floor(rand() * 12) + 1);
    } else if (type === "BIN") {
      if (rand() < 0.5) p.maxBytes = pick([0, 1, 2, 4, 8]);
    } else if (type !== "B") {
      if (rand() < 0.5) p.min = bound();
      if (rand() < 0.5) p.max = bound();
    }
    if (rand() < 0.2) p.default = typedValue(rand, type);
    if (rand() < 0.25 && type !== "B" && type !== "BIN") p.valueConditions = conditions(rand, type);
    return p;
  });
  return { commandId: "fuzz", parameters };
}

// AWS IoT commands' valueConditions, numbers written as strings.
const NUMBER_TEXTS = ["0", "1", "-5", "100", "0.5", "2147483647", "9007199254740993", "-9223372036854775808", "18446744073709551615", "1e3"];
function conditions(rand, type) {
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const some = (list) => [...list].sort(() => rand() - 0.5).slice(0, Math.floor(rand() * 4) + 1);
  const out = [];
  for (let k = Math.floor(rand() * 3) + 1; k > 0; k--) {
    if (type === "S") {
      const op = pick(["EQUALS", "NOT_EQUALS", "IN_SET", "NOT_IN_SET"]);
      out.push({ comparisonOperator: op, operand: op.endsWith("SET") ? { strings: some(STRINGS) } : { string: pick(STRINGS) } });
    } else {
      const op = pick(["EQUALS", "NOT_EQUALS", "LESS_THAN", "LESS_THAN_EQUALS", "GREATER_THAN", "GREATER_THAN_EQUALS", "IN_SET", "NOT_IN_SET", "IN_RANGE", "NOT_IN_RANGE"]);
      const operand = op.endsWith("SET")
        ? { numbers: some(NUMBER_TEXTS) }
        : op.endsWith("RANGE")
          ? (() => {
              const [min, max] = [pick(NUMBER_TEXTS), pick(NUMBER_TEXTS)].sort((a, b) => Number(a) - Number(b));
              return { numberRange: { min, max } };
            })()
          : { number: pick(NUMBER_TEXTS) };
      out.push({ comparisonOperator: op, operand });
    }
  }
  return out;
}

function typedValue(rand, type) {
  const pick = (list) => list[Math.floor(rand() * list.length)];
  switch (type) {
    case "S": return { S: pick(STRINGS) };
    case "B": return { B: rand() < 0.5 };
    case "BIN": return { BIN: pick(BIN_TEXTS) };
    case "UL": return { UL: pick(UL_TEXTS) };
    default: return { [type]: pick(NUMBERS) };
  }
}

/** Anything a page could pass as one parameter's value. */
function value(rand, type) {
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const r = rand();
  if (r < 0.45) return typedValue(rand, type);
  if (r < 0.6) return typedValue(rand, pick(TYPES)); // another type's tag
  if (r < 0.7) return { [type]: pick([null, "1", true, [], {}, ...NUMBERS.slice(0, 4), ...STRINGS.slice(0, 4)]) };
  if (r < 0.75) return { ...typedValue(rand, type), extra: 1 };
  if (r < 0.78) return {};
  // An array with the tag as a named key: read as its items ([]), as the
  // server reads JSON.stringify's text of it.
  if (r < 0.8) return Object.assign([], typedValue(rand, type), rand() < 0.5 ? { skipped: undefined } : {});
  if (r < 0.9) return pick([null, undefined, true, 7, "text", [], [{ S: "a" }], -0, 1e21]);
  if (r < 0.95) {
    let deep = typedValue(rand, type);
    for (let i = 0; i < pick([10, 127, 130, 400]); i++) deep = rand() < 0.5 ? [deep] : { S: deep };
    return deep;
  }
  const cyclic = { [type]: null };
  cyclic[type] = cyclic;
  return cyclic;
}

function input(rand, def) {
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const r = rand();
  if (r < 0.04) return pick([null, undefined, [], "parameters", 3, true]);
  const out = {};
  for (const p of def.parameters) {
    if (rand() < 0.75) out[p.name] = value(rand, p.type);
  }
  while (rand() < 0.15) {
    const key = pick(KEYS);
    // __proto__ as an own key, as JSON.parse makes it.
    Object.defineProperty(out, key, { value: value(rand, pick(TYPES)), enumerable: true, configurable: true, writable: true });
  }
  return out;
}

/** An answer as comparable text: key order included, -0 kept apart from 0. */
function answer(run) {
  try {
    return "returned " + JSON.stringify(run(), (_, v) => (Object.is(v, -0) ? "-0" : v));
  } catch (thrown) {
    if (thrown instanceof Error && !(thrown instanceof RangeError)) throw thrown;
    if (thrown instanceof RangeError) return "RangeError"; // both paths' own stack limit
    return "thrown " + JSON.stringify(thrown);
  }
}

test(`differential: generated JavaScript and WebAssembly agree (seed ${SEED})`, () => {
  const rand = prng(SEED);
  let compared = 0;
  let refused = 0;
  for (let d = 0; d < DEFINITIONS; d++) {
    const def = definition(rand);
    let js, wasm;
    try {
      js = new courier.CommandValidator(def);
    } catch (thrown) {
      if (thrown instanceof Error) throw thrown;
      // A definition the module refuses is refused the same on both paths.
      assert.throws(() => new courier.CommandValidator(def, { webassembly: true }));
      refused++;
      continue;
    }
    wasm = new courier.CommandValidator(def, { webassembly: true });
    for (let i = 0; i < INPUTS; i++) {
      const parameters = input(rand, def);
      const fromJs = answer(() => js.validate(parameters));
      const fromWasm = answer(() => wasm.validate(parameters));
      assert.equal(fromJs, fromWasm, `seed ${SEED}, definition ${d} ${JSON.stringify(def)}, input ${i}`);
      compared++;
    }
    js.free();
    wasm.free();
  }
  assert.ok(compared > DEFINITIONS * INPUTS * 0.4, `only ${compared} comparisons (${refused} definitions refused)`);
});

test("matchPattern: the module's matcher answers for the definition's pattern", () => {
  const v = new courier.CommandValidator({ commandId: "m", parameters: [{ name: "w", type: "S", pattern: "^[a-zé😀]+$" }] });
  assert.equal(v.matchPattern(0, "é😀a"), true);
  assert.equal(v.matchPattern(0, "e\u0301"), false);
  v.free();
});

test("strict CSP: without code generation from strings, validators run in WebAssembly and answer the same", () => {
  const script = `
    import courier from ${JSON.stringify(new URL("./load.mjs", import.meta.url).href)};
    const v = new courier.CommandValidator({ commandId: "c", parameters: [{ name: "rate", type: "I", min: 1, required: true }] });
    console.log(JSON.stringify({ mode: courier.validatorMode(), result: v.validate({ rate: { I: 0 } }) }));`;
  const child = spawnSync(process.execPath, ["--disallow-code-generation-from-strings", "--input-type=module", "-e", script], {
    cwd: fileURLToPath(new URL(".", import.meta.url)),
    encoding: "utf8",
  });
  assert.equal(child.status, 0, child.stderr);
  const { mode, result } = JSON.parse(child.stdout);
  assert.equal(mode, "webassembly");
  const v = new courier.CommandValidator({ commandId: "c", parameters: [{ name: "rate", type: "I", min: 1, required: true }] });
  assert.deepEqual(result, v.validate({ rate: { I: 0 } }));
  assert.equal(courier.validatorMode(), "javascript");
});
