// How a TypeScript dashboard uses the module: `tsc --noEmit` checks that
// courier.d.ts accepts this code and that its results narrow as written.
// Not run; the behaviour is proved by wasm/tests/ and the browser test.
import init, {
  CommandValidator,
  allowedTransitions,
  canTransition,
  cancelOptions,
  coreVersion,
  executionStatuses,
  formatTypedValue,
  isTerminal,
  jobCancelOptions,
  jobTargets,
  parseTypedValue,
  runOptions,
  typedValueFromText,
  validatePipeline,
  validateRun,
} from "../../pkg/courier.js";
import type {
  CommandDefinition,
  CourierError,
  CreateJobBody,
  ExecutionStatus,
  CreatePipelineBody,
  Parameters,
  RunStatus,
  StartRunBody,
  TypedValue,
  ValidationError,
} from "../../pkg/courier.js";

await init();
const version: string = coreVersion();

const definition: CommandDefinition = {
  commandId: "set-config",
  parameters: [
    { name: "rate", type: "I", required: true, min: 1, max: 3600 },
    { name: "mode", type: "S", enum: ["eco", "normal"], default: { S: "normal" } },
    { name: "token", type: "S", sensitive: true, pattern: "^[A-Za-z0-9]+$", maxLength: 64 },
  ],
};

let validator: CommandValidator;
try {
  validator = new CommandValidator(definition);
} catch (e) {
  const error = e as CourierError;
  const paths: string[] = error.errors.map((x: ValidationError) => x.path);
  throw new Error(`${error.code}: ${paths.join(", ")}`);
}

const checked = validator.validate({ rate: { I: 30 } });
if (checked.valid) {
  const typed: Parameters = checked.parameters;
  const rate: TypedValue | undefined = typed.rate;
  console.log(rate && formatTypedValue(rate));
} else {
  for (const { path, code, message } of checked.errors) console.log(path, code, message);
}

const now = Date.now() / 1000;
const start = validator.validateStart({ target: "dev-1", parameters: { rate: { I: 5 } }, maxAttempts: 3, onTimeout: "RETRY" }, now);
console.log(start.valid);

const targets = jobTargets("dev-1, dev-2");
if (targets.ok) {
  const job: CreateJobBody = {
    commandId: "set-config",
    targets: targets.targets,
    parameters: { rate: { I: 5 } },
    jobExecutionsRolloutConfig: { maximumPerMinute: 10 },
    abortConfig: { criteriaList: [{ failureType: "FAILED", action: "CANCEL", thresholdPercentage: 20, minNumberOfExecutedThings: 5 }] },
    jobExecutionsRetryConfig: { criteriaList: [{ failureType: "TIMED_OUT", numberOfRetries: 2 }] },
  };
  console.log(validator.validateJob(job, now).errors.length);
} else {
  console.log(targets.error.message);
}

const statuses: ExecutionStatus[] = executionStatuses();
for (const status of statuses) {
  const options = cancelOptions(status);
  const force: boolean = options.forceRequired;
  console.log(status, isTerminal(status), options.allowed, force, canTransition(status, "CANCELED", "operator", force));
  console.log(allowedTransitions(status, "device"));
}
console.log(jobCancelOptions("IN_PROGRESS").alreadyCanceled);

const fromForm = typedValueFromText("L", "42");
if (fromForm.ok) console.log(fromForm.type, fromForm.value, fromForm.display);
else console.log(fromForm.error.code);
const parsed = parseTypedValue({ D: 1.5 }, "D");
const untyped = parseTypedValue({ D: 1.5 });
console.log(parsed.ok, untyped.ok, version);

const pipeline: CreatePipelineBody = {
  pipelineId: "fw",
  stages: [{ name: "install", operations: [{ commandId: "set-config", onFailure: "CONTINUE" }] }],
};
const checkedPipeline = validatePipeline(pipeline, []);
if (!checkedPipeline.valid) console.log(checkedPipeline.errors.map((e) => e.path));
const run: StartRunBody = { targets: { query: "thingGroupNames:fleet" }, waves: [1, "10%"], gates: { install: { manualApproval: true } } };
const checkedRun = validateRun(run, { pipelineId: "fw", stages: [{ name: "install" }] }, Date.now() / 1000);
console.log(checkedRun.valid);
const runStatus: RunStatus = "HELD";
const runActions = runOptions(runStatus);
const resumable: boolean = runActions.resume && !runActions.forceOnly;
console.log(resumable, runActions.cancel, runActions.alreadyCanceled);
