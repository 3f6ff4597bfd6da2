// What the browser downloads: the package's entry, the wasm-bindgen glue and
// the module, raw and gzip -9 (each file, and the three concatenated as one
// stream, which is the figure the budget and `make bench` report). Shared by
// the size budget test and bench/browser/validator.mjs, so they cannot
// measure differently.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

export const SHIPPED = ["courier.js", "courier_wasm.js", "courier_wasm_bg.wasm"];

export function measure(pkg = new URL("../pkg/", import.meta.url)) {
  const files = SHIPPED.map((name) => {
    const bytes = readFileSync(new URL(name, pkg));
    return { name, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length, bytes };
  });
  const all = Buffer.concat(files.map((f) => f.bytes));
  return {
    files: files.map(({ name, raw, gzip }) => ({ name, raw, gzip })),
    raw: all.length,
    gzip: gzipSync(all, { level: 9 }).length,
  };
}
