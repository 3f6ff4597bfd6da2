// wasm/pkg as a dashboard gets it: `npm pack`, installed into a fresh Node
// project from the tarball, imported by name and used. Run by `make test`
// after `make wasm`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const pkg = new URL("../pkg/", import.meta.url).pathname;
const npm = (args, cwd) => execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, encoding: "utf8" });

test("npm pack, install into a fresh project, import by name, use", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "courier-wasm-consumer-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
  const packed = JSON.parse(npm(["pack", pkg, "--json", "--pack-destination", dir], dir))[0];
  assert.deepEqual(packed.files.map((f) => f.path).sort(), ["README.md", "courier.d.ts", "courier.js", "courier_wasm.d.ts", "courier_wasm.js", "courier_wasm_bg.wasm", "courier_wasm_bg.wasm.d.ts", "package.json"]);
  assert.equal(packed.name, "courier-wasm");
  assert.equal(packed.version, manifest.version);

  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "a-dashboard", private: true, type: "module" }));
  npm(["install", "--offline", join(dir, packed.filename)], dir);
  writeFileSync(
    join(dir, "use.mjs"),
    `import { readFileSync } from "node:fs";
import { initSync, CommandValidator, cancelOptions, jobTargets, coreVersion } from "courier-wasm";
initSync({ module: readFileSync(new URL(import.meta.resolve("courier-wasm/courier_wasm_bg.wasm"))) });
const v = new CommandValidator({ commandId: "reboot", parameters: [{ name: "delay", type: "I", max: 60 }] });
console.log(JSON.stringify({
  version: coreVersion(),
  invalid: v.validate({ delay: { I: 61 } }).errors[0].code,
  cancel: cancelOptions("IN_PROGRESS"),
  targets: jobTargets("group:fleet").targets,
}));
`,
  );
  const out = JSON.parse(execFileSync("node", ["use.mjs"], { cwd: dir, encoding: "utf8" }));
  assert.deepEqual(out, {
    version: manifest.version,
    invalid: "OutOfRange",
    cancel: { allowed: true, forceRequired: true },
    targets: { thingGroup: "fleet" },
  });
  // The types resolve by package name too.
  const types = JSON.parse(readFileSync(join(dir, "node_modules/courier-wasm/package.json"), "utf8")).exports["."].types;
  assert.equal(types, "./courier.d.ts");
});
