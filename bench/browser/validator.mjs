// `make bench`, the browser module: its size (raw and gzip -9, entry + glue
// + wasm) and Courier's CommandValidator against Ajv 8 (allErrors,
// compiling the equivalent JSON Schema) on the same definitions and
// inputs, in one Node process: ns per validation of valid and invalid
// inputs for a 6- and a 30-parameter definition, and one-shot latency
// (compile + first validation). Each verdict is compared with Ajv's, so a
// faster wrong answer cannot pass. Writes bench/results/wasm.{json,md}.
//   node bench/browser/validator.mjs [results-dir]
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { measure } from "../../wasm/tests/size.mjs";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";

const require = createRequire(import.meta.url);
const Ajv = require("ajv");
const out = process.argv[2] ?? "bench/results";
const pkg = new URL("../../wasm/pkg/", import.meta.url);

// ---- size (measured as the budget test measures it) ------------------------
const size = measure(pkg);

// ---- the module, instantiated ----------------------------------------------
const t0 = performance.now();
const courier = await import(new URL("courier.js", pkg));
courier.initSync({ module: readFileSync(new URL("courier_wasm_bg.wasm", pkg)) });
const instantiateMs = performance.now() - t0;

/** The JSON Schema accepting the values a Courier definition accepts. */
function schemaOf(definition) {
  const properties = {};
  const required = [];
  for (const p of definition.parameters) {
    const inner = {};
    switch (p.type) {
      case "I": case "L": inner.type = "integer"; break;
      case "D": inner.type = "number"; break;
      case "S": case "UL": case "BIN": inner.type = "string"; break;
      case "B": inner.type = "boolean"; break;
    }
    if (p.min !== undefined) inner.minimum = p.min;
    if (p.max !== undefined) inner.maximum = p.max;
    if (p.minLength !== undefined) inner.minLength = p.minLength;
    if (p.maxLength !== undefined) inner.maxLength = p.maxLength;
    if (p.pattern !== undefined) inner.pattern = `^(?:${p.pattern})$`;
    if (p.enum !== undefined) inner.enum = p.enum;
    properties[p.name] = { type: "object", additionalProperties: false, required: [p.type], properties: { [p.type]: inner } };
    if (p.required) required.push(p.name);
  }
  return { type: "object", additionalProperties: false, required, properties };
}

// The 6-parameter definition: I with min/max, S with enum, S with
// pattern and maxLength, D with a range, B, L with a minimum.
const six = {
  commandId: "six",
  parameters: [
    { name: "rate", type: "I", required: true, min: 1, max: 3600 },
    { name: "mode", type: "S", enum: ["eco", "normal", "boost"] },
    { name: "label", type: "S", pattern: "[a-z][a-z0-9-]*", maxLength: 32 },
    { name: "gain", type: "D", min: -10.5, max: 10.5 },
    { name: "on", type: "B" },
    { name: "epoch", type: "L", min: 0 },
  ],
};
const sixValid = { rate: { I: 30 }, mode: { S: "eco" }, label: { S: "kitchen-1" }, gain: { D: 2.25 }, on: { B: true }, epoch: { L: 1700000000 } };
const sixInvalid = { rate: { I: 0 }, mode: { S: "turbo" }, label: { S: "Kitchen 1" }, gain: { D: 11 }, on: { B: "yes" }, epoch: { L: -1 } };

/** Thirty parameters: the six kinds five times over. */
function thirty() {
  const parameters = [];
  const valid = {};
  const invalid = {};
  for (let i = 0; i < 30; i++) {
    const kind = six.parameters[i % 6];
    const p = { ...kind, name: `${kind.name}${i}` };
    parameters.push(p);
    valid[p.name] = sixValid[kind.name];
    invalid[p.name] = sixInvalid[kind.name];
  }
  return { definition: { commandId: "thirty", parameters }, valid, invalid };
}

/** ns per call of `fn`, over `n` calls. */
function nsPerCall(fn, n) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - start) / n;
}

/**
 * `a` and `b` timed in alternating rounds (so that a noisy neighbour or a
 * frequency change hits both alike), after a warm-up: the median ns of
 * each and the median of the rounds' ratios b / a.
 */
function race(a, b, n, rounds = 9) {
  nsPerCall(a, n);
  nsPerCall(b, n);
  const as = [], bs = [], ratios = [];
  for (let r = 0; r < rounds; r++) {
    const x = nsPerCall(a, n), y = nsPerCall(b, n);
    as.push(x); bs.push(y); ratios.push(y / x);
  }
  const median = (list) => list.sort((p, q) => p - q)[Math.floor(list.length / 2)];
  return { a: median(as), b: median(bs), ratio: median(ratios) };
}

const cases = [];
const t30 = thirty();
for (const [name, definition, valid, invalid, n] of [
  ["6 parameters", six, sixValid, sixInvalid, 100_000],
  ["30 parameters", t30.definition, t30.valid, t30.invalid, 20_000],
]) {
  // One-shot: compile, then the first validation, before any warm-up.
  let s = process.hrtime.bigint();
  const validator = new courier.CommandValidator(definition);
  validator.validate(valid);
  const courierOneShot = Number(process.hrtime.bigint() - s);
  s = process.hrtime.bigint();
  const ajvValidate = new Ajv({ allErrors: true }).compile(schemaOf(definition));
  ajvValidate(valid);
  const ajvOneShot = Number(process.hrtime.bigint() - s);
  cases.push({ definition: name, input: "one-shot: compile + first validation", courierNs: courierOneShot, ajvNs: ajvOneShot, ratio: ajvOneShot / courierOneShot });

  const wasmOnly = new courier.CommandValidator(definition, { webassembly: true });
  for (const [kind, input] of [["valid", valid], ["invalid", invalid]]) {
    const verdict = validator.validate(input).valid;
    if (verdict !== ajvValidate(input) || verdict !== (kind === "valid")) throw new Error(`${name} ${kind}: Courier says ${verdict}, Ajv ${ajvValidate(input)}`);
    if (JSON.stringify(validator.validate(input)) !== JSON.stringify(wasmOnly.validate(input))) throw new Error(`${name} ${kind}: the two paths differ`);
    const { a: courierNs, b: ajvNs, ratio } = race(() => validator.validate(input), () => ajvValidate(input), n);
    const webassemblyNs = nsPerCall(() => wasmOnly.validate(input), Math.max(2000, n / 100));
    cases.push({ definition: name, input: kind, courierNs, ajvNs, ratio, webassemblyNs });
  }
}

const result = {
  node: process.version,
  ajv: require("ajv/package.json").version,
  mode: courier.validatorMode(),
  size,
  instantiateMs,
  cases,
};
mkdirSync(out, { recursive: true });
writeFileSync(`${out}/wasm.json`, JSON.stringify(result, null, 2) + "\n");
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const md = [
  "# The browser module: size and validation speed",
  "",
  "`node bench/browser/validator.mjs` (run by `make bench` after `make wasm`).",
  "",
  "| file | raw | gzip -9 |",
  "|---|---|---|",
  ...size.files.map((f) => `| ${f.name} | ${f.raw.toLocaleString("en")} B | ${f.gzip.toLocaleString("en")} B |`),
  `| **together** | **${size.raw.toLocaleString("en")} B (${kb(size.raw)})** | **${size.gzip.toLocaleString("en")} B (${kb(size.gzip)})** |`,
  "",
  `Instantiating the module (initSync) took ${instantiateMs.toFixed(1)} ms.`,
  "",
  "| definition | input | Courier ns | Ajv 8 ns (allErrors) | Ajv / Courier | Courier in WebAssembly (strict CSP) ns |",
  "|---|---|---|---|---|---|",
  ...cases.map((c) => `| ${c.definition} | ${c.input} | ${c.courierNs.toFixed(0)} | ${c.ajvNs.toFixed(0)} | ${c.ratio.toFixed(2)}x | ${c.webassemblyNs?.toFixed(0) ?? ""} |`),
  "",
  `Node ${process.version}, Ajv ${result.ajv}; Courier validates with ${result.mode}. Above 1.00x Courier is faster.`,
  "",
].join("\n");
writeFileSync(`${out}/wasm.md`, md);
console.log(md);
