// The size budget (wasm/size-budget.json): what a dashboard downloads must
// not grow past it. A size, measured on the built package, so the check is
// deterministic. Run by `make test` after scripts/build-wasm.sh.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { measure } from "./size.mjs";

const budget = JSON.parse(readFileSync(new URL("../size-budget.json", import.meta.url), "utf8"));

test("size: entry + glue + module within the budget, raw and gzip -9", () => {
  const size = measure();
  const detail = size.files.map((f) => `${f.name} ${f.raw} B (${f.gzip} B gzip)`).join(", ");
  assert.ok(size.raw <= budget.raw, `raw ${size.raw} B > budget ${budget.raw} B: ${detail}`);
  assert.ok(size.gzip <= budget.gzip, `gzip ${size.gzip} B > budget ${budget.gzip} B: ${detail}`);
});
