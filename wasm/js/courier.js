// courier-wasm's entry point: the wasm-bindgen bindings of courier-core
// (./courier_wasm.js), with one addition. A CommandValidator validates with
// the JavaScript that core generates for its definition (its `javascript`
// property), evaluated once with `new Function`, so that validating a form
// crosses no boundary. Where the page's Content-Security-Policy forbids
// `new Function` (no 'unsafe-eval'), it validates in WebAssembly instead;
// both give the same results (the shared vectors and a differential fuzz
// test run through both). This file decides no rule.
import init, * as bindings from "./courier_wasm.js";

export * from "./courier_wasm.js";
export default init;

/** "javascript" once a validator runs generated code; "webassembly" where the page forbids it. */
let mode = null;

/** How CommandValidator.validate runs here: "javascript", "webassembly", or null before the first validator. */
export function validatorMode() {
  return mode;
}

export class CommandValidator extends bindings.CommandValidator {
  constructor(definition, options) {
    super(definition);
    if (options?.webassembly === true || mode === "webassembly") return;
    let make;
    try {
      make = new Function("env", this.javascript);
    } catch (refused) {
      // A CSP without 'unsafe-eval' refuses with an EvalError.
      if (refused instanceof EvalError) {
        mode = "webassembly";
        return;
      }
      throw refused;
    }
    const wasm = bindings.CommandValidator.prototype;
    this.validate = make({
      match: (index, value) => wasm.matchPattern.call(this, index, value),
      artifact: (value) => wasm.artifactProblem.call(this, value),
    });
    mode = "javascript";
  }
}
