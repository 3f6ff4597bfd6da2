// The package as the Node tests load it: wasm/pkg's entry, instantiated
// synchronously from the bytes on disk (what a dashboard's `await init()`
// does with fetch).
import { readFileSync } from "node:fs";
import * as courier from "../pkg/courier.js";

courier.initSync({ module: readFileSync(new URL("../pkg/courier_wasm_bg.wasm", import.meta.url)) });

export default courier;
