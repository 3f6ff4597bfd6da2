import { CommandValidator as WasmCommandValidator } from "./courier_wasm.js";
import type { CommandDefinition } from "./courier_wasm.js";

export * from "./courier_wasm.js";
export { default } from "./courier_wasm.js";

/**
 * How `CommandValidator.validate` runs on this page: `"javascript"` (the code
 * core generated for the definition, evaluated with `new Function`),
 * `"webassembly"` (the page's Content-Security-Policy forbids `new
 * Function`), or `null` before the first validator. Both give the same results.
 */
export declare function validatorMode(): "javascript" | "webassembly" | null;

/** A command definition, checked and compiled once; validates any number of parameter sets. */
export declare class CommandValidator extends WasmCommandValidator {
  /**
   * Compiles `definition`; throws a `CourierError` listing every problem if it
   * is invalid. `{webassembly: true}` validates in WebAssembly even where
   * generated JavaScript could run.
   */
  constructor(definition: CommandDefinition, options?: { webassembly?: boolean });
}
