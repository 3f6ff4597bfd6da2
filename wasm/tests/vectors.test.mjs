// The shared parity corpus (tests/vectors/*.json) through the compiled WASM
// module. core's Rust tests run the same files (core/tests/vectors.rs); both
// must produce exactly `expected`, so a rule cannot differ between browser
// and server. Run by `make test` with node's test runner.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const courier = require("../pkg-node/courier.js");
const vectors = (name) => JSON.parse(readFileSync(new URL(`../../tests/vectors/${name}`, import.meta.url), "utf8"));

test("validation vectors: every parameter set gives the server's exact result", () => {
  const doc = vectors("validation.json");
  let count = 0;
  for (const suite of doc.suites) {
    const validator = new courier.CommandValidator(suite.definition);
    for (const c of suite.cases) {
      assert.deepEqual(validator.validate(c.parameters), c.expected, c.name);
      count++;
    }
  }
  assert.ok(count > 5);
});

test("definition vectors: invalid definitions throw every problem", () => {
  for (const c of vectors("validation.json").definitionCases) {
    assert.throws(
      () => new courier.CommandValidator(c.definition),
      (thrown) => {
        assert.equal(thrown.code, "ValidationException");
        assert.deepEqual(thrown.errors, c.expected.errors, c.name);
        return true;
      },
      c.name,
    );
  }
});

test("transition matrix: all 192 (actor, from, to) triples", () => {
  const doc = vectors("transitions.json");
  assert.equal(doc.matrix.length, 192);
  for (const { actor, from, to, allowed } of doc.matrix) {
    assert.equal(courier.canTransition(from, to, actor), allowed, `${actor} ${from} -> ${to}`);
  }
  for (const { actor, from } of doc.matrix) {
    const expected = doc.matrix.filter((m) => m.actor === actor && m.from === from && m.allowed).map((m) => m.to);
    assert.deepEqual([...courier.allowedTransitions(from, actor)].sort(), expected.sort());
    assert.equal(courier.isTerminal(from), doc.terminal.includes(from));
  }
});

test("status update vectors: the record the server would store, or its error", () => {
  for (const c of vectors("status_updates.json").cases) {
    assert.deepEqual(courier.checkStatusUpdate(c.execution, c.update, c.actor, c.now), c.expected, c.name);
  }
});

test("typed value vectors", () => {
  for (const c of vectors("typed_values.json").cases) {
    assert.deepEqual(courier.parseTypedValue(c.input, c.type ?? undefined), c.expected, JSON.stringify(c.input));
  }
});

test("bad arguments are thrown as structured errors, never panics", () => {
  assert.throws(() => courier.canTransition("QUEUED", "NOPE", "robot"), (e) => {
    assert.equal(e.code, "ValidationException");
    assert.deepEqual(e.errors.map((x) => x.path), ["to", "actor"]);
    return true;
  });
  assert.throws(() => courier.isTerminal("DONE"), (e) => e.errors[0].code === "InvalidValue");
  assert.throws(() => courier.formatTypedValue({ X: 1 }), (e) => e.errors[0].code === "WrongType");
  const cyclic = {};
  cyclic.self = cyclic;
  assert.throws(() => new courier.CommandValidator(cyclic), (e) => e.errors[0].code === "InvalidJson");
});

test("formatting and version", () => {
  assert.equal(courier.formatTypedValue({ UL: "18446744073709551615" }), "18446744073709551615");
  assert.equal(courier.formatTypedValue({ B: true }), "true");
  assert.match(courier.coreVersion(), /^\d+\.\d+\.\d+$/);
  const v = new courier.CommandValidator({ commandId: "reboot" });
  assert.equal(v.definition.commandId, "reboot");
  assert.deepEqual(v.validate(undefined), { valid: true, errors: [], parameters: {} });
});

test("validateStart checks target and parameters together, as the API does", () => {
  const v = new courier.CommandValidator({
    commandId: "set-config",
    parameters: [{ name: "rate", type: "I", required: true, min: 1, max: 10 }],
  });
  const bad = v.validateStart({ target: "has space", parameters: { rate: { I: 0 } } }, 1800000000);
  assert.deepEqual(bad.errors.map((e) => [e.path, e.code]), [["target", "InvalidId"], ["parameters.rate", "OutOfRange"]]);
  const good = v.validateStart({ target: "dev-1", parameters: { rate: { I: 3 } } }, 1800000000);
  assert.deepEqual(good, { valid: true, errors: [], parameters: { rate: { I: 3 } } });
});
