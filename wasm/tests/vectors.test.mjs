// The shared parity corpus (tests/vectors/*.json) through the package
// (wasm/pkg). core's Rust tests run the same files (core/tests/vectors.rs);
// both must produce exactly `expected`, so a rule cannot differ between
// browser and server. Parameter validation runs twice: through the
// JavaScript core generates for each definition and through WebAssembly.
// One subtest per case, so a failure names the case. Run by `make test`
// with node's test runner.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import courier from "./load.mjs";
const vectors = (name) => JSON.parse(readFileSync(new URL(`../../tests/vectors/${name}`, import.meta.url), "utf8"));

/** What a call gave: `{returned}` or the thrown CourierError as `{thrown}`. */
function outcome(run) {
  try {
    return { returned: run() };
  } catch (thrown) {
    if (thrown instanceof Error) throw thrown; // a JS error is a bug, not an answer
    return { thrown };
  }
}

/** Calls the export a vector names (`CommandValidator.validate` compiles `definition` first). */
function call(c) {
  const [klass, method] = c.call.split(".");
  if (method) {
    let validator;
    try {
      validator = new courier[klass](c.definition);
    } catch (thrown) {
      if (thrown instanceof Error) throw thrown;
      return { thrown };
    }
    const member = validator[method];
    return outcome(() => (typeof member === "function" ? member.apply(validator, c.args) : member));
  }
  return outcome(() => courier[c.call](...c.args));
}

test("calls: every exported function, by name", async (t) => {
  const { cases } = vectors("calls.json");
  // Every export has vectors: here, or in the file named.
  const called = new Set(cases.map((c) => c.call));
  const elsewhere = {
    parseTypedValue: "typed_values.json",
    coreVersion: "the version test below",
    validatorMode: "differential.test.mjs",
    "CommandValidator.javascript": "differential.test.mjs (every validation runs it)",
    "CommandValidator.matchPattern": "differential.test.mjs",
    "CommandValidator.artifactProblem": "validation.json's firmware suite (the generated validators ask it about every placeholder)",
  };
  for (const name of Object.keys(courier)) {
    if (typeof courier[name] !== "function" || name.startsWith("__") || name === "initSync" || name === "default") continue;
    if (name === "CommandValidator") {
      for (const method of Object.getOwnPropertyNames(Object.getPrototypeOf(courier.CommandValidator.prototype))) {
        if (method !== "constructor" && method !== "free" && !method.startsWith("__") && typeof Symbol[method] === "undefined") {
          assert.ok(called.has(`CommandValidator.${method}`) || `CommandValidator.${method}` in elsewhere, `calls.json has no case for CommandValidator.${method}`);
        }
      }
      continue;
    }
    assert.ok(called.has(name) || name in elsewhere, `calls.json has no case for ${name}`);
  }
  for (const c of cases) {
    await t.test(c.name, () => assert.deepEqual(call(c), c.expected));
  }
});

for (const path of ["javascript", "webassembly"]) {
  test(`validation (${path}): each suite's parameter sets`, async (t) => {
    for (const suite of vectors("validation.json").suites) {
      const validator = new courier.CommandValidator(suite.definition, { webassembly: path === "webassembly" });
      assert.equal(Object.hasOwn(validator, "validate"), path === "javascript");
      for (const c of suite.cases) {
        await t.test(`${suite.definition.commandId}: ${c.name}`, () => assert.deepEqual(validator.validate(c.parameters), c.expected));
      }
    }
  });
}

test("validation: invalid definitions throw every problem", async (t) => {
  for (const c of vectors("validation.json").definitionCases) {
    await t.test(c.name, () => {
      const thrown = outcome(() => new courier.CommandValidator(c.definition)).thrown;
      assert.equal(thrown?.code, "ValidationException");
      assert.deepEqual(thrown.errors, c.expected.errors);
    });
  }
});

test("transitions: every (actor, from, to, force)", async (t) => {
  const doc = vectors("transitions.json");
  assert.equal(doc.matrix.length, 3 * 8 * 8 * 2);
  for (const { actor, from, to, force, allowed } of doc.matrix) {
    await t.test(`${actor} ${from} -> ${to}${force ? " (force)" : ""}`, () => {
      assert.equal(courier.canTransition(from, to, actor, force), allowed);
      const expected = doc.matrix.filter((m) => m.actor === actor && m.from === from && m.force === force && m.allowed).map((m) => m.to);
      assert.deepEqual([...courier.allowedTransitions(from, actor, force)].sort(), expected.sort());
      assert.equal(courier.isTerminal(from), doc.terminal.includes(from));
    });
  }
});

test("typed values", async (t) => {
  for (const c of vectors("typed_values.json").cases) {
    await t.test(JSON.stringify(c.input), () => assert.deepEqual(courier.parseTypedValue(c.input, c.type ?? undefined), c.expected));
  }
});

test("a value that refers to itself is thrown as InvalidJson, not a crash", () => {
  const cyclic = {};
  cyclic.self = cyclic;
  const thrown = outcome(() => new courier.CommandValidator(cyclic)).thrown;
  assert.equal(thrown.errors[0].code, "InvalidJson");
  const deep = outcome(() => courier.parseTypedValue(JSON.parse("[".repeat(200) + "]".repeat(200)))).thrown;
  assert.equal(deep.errors[0].code, "InvalidJson");
  // The module still works afterwards.
  assert.equal(courier.isTerminal("SUCCEEDED"), true);
});

test("the module reports the core version it was built from", () => {
  const cargo = readFileSync(new URL("../../Cargo.toml", import.meta.url), "utf8");
  assert.equal(courier.coreVersion(), cargo.match(/^version = "(.*)"/m)[1]);
});

test("numbers: doubles written as String(x) and read as Number(text), through the module", () => {
  const bitsOf = (x) => {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, x);
    return view.getBigUint64(0).toString(16).padStart(16, "0");
  };
  const fromBits = (hex) => {
    const view = new DataView(new ArrayBuffer(8));
    view.setBigUint64(0, BigInt(`0x${hex}`));
    return view.getFloat64(0);
  };
  const mismatches = [];
  for (const { bits, text } of vectors("numbers.json").cases) {
    const x = fromBits(bits);
    const written = courier.formatTypedValue({ D: x });
    if (written !== text) mismatches.push(`${bits}: the module wrote ${written}, expected ${text}`);
    const read = courier.typedValueFromText("D", text);
    const back = read.ok ? bitsOf(read.value.D) : read.error.message;
    if (x !== 0 && back !== bits) mismatches.push(`${bits}: the module read ${text} as ${back}`);
  }
  assert.deepEqual(mismatches, []);
});
