
/** An execution status; the last five are terminal. */
export type ExecutionStatus = "QUEUED" | "SENT" | "IN_PROGRESS" | "SUCCEEDED" | "FAILED" | "REJECTED" | "TIMED_OUT" | "CANCELED";
/** A job's status. */
export type JobStatus = "SCHEDULED" | "IN_PROGRESS" | "COMPLETED" | "CANCELED" | "ABORTED";
/** Who asks for a status change. */
export type Actor = "device" | "operator" | "system";
export type ValueType = "S" | "B" | "I" | "L" | "D" | "BIN" | "UL";
/** A typed value in the AWS IoT commands wire format. */
export type TypedValue =
  | { S: string } | { B: boolean } | { I: number } | { L: number } | { D: number }
  | { BIN: string } | { UL: string };
export type Parameters = Record<string, TypedValue>;
export interface ParameterSpec {
  name: string;
  type: ValueType;
  required?: boolean;
  default?: TypedValue;
  description?: string;
  min?: number; max?: number;
  /** Lengths count Unicode scalar values (code points), as the server does. */
  minLength?: number; maxLength?: number;
  /** Courier's documented pattern subset (see the README); matched against the whole value when anchored. */
  pattern?: string;
  enum?: string[];
  maxBytes?: number;
  /** Secret or personal: left out of listings and logs. */
  sensitive?: boolean;
  /** AWS IoT commands' conditions on the value (numbers written as strings). */
  valueConditions?: ValueCondition[];
}
export type ComparisonOperator =
  | "EQUALS" | "NOT_EQUALS" | "LESS_THAN" | "LESS_THAN_EQUALS" | "GREATER_THAN" | "GREATER_THAN_EQUALS"
  | "IN_SET" | "NOT_IN_SET" | "IN_RANGE" | "NOT_IN_RANGE";
export interface ValueCondition {
  comparisonOperator: ComparisonOperator;
  operand: { number?: string; numbers?: string[]; string?: string; strings?: string[]; numberRange?: { min: string; max: string } };
}
/** One of AWS IoT commands' mandatoryParameters (accepted in a definition; returned as parameters). */
export interface AwsCommandParameter {
  name: string;
  type: "STRING" | "INTEGER" | "LONG" | "DOUBLE" | "UNSIGNEDLONG" | "BOOLEAN" | "BINARY";
  defaultValue?: TypedValue; value?: TypedValue;
  valueConditions?: ValueCondition[];
  description?: string;
}
export interface CommandDefinition {
  commandId: string;
  description?: string;
  /** A name for people (AWS's displayName); need not be unique. */
  displayName?: string;
  /** AWS's namespace: only "AWS-IoT" is served (accepted, not stored). */
  namespace?: "AWS-IoT";
  parameters?: ParameterSpec[];
  /** AWS's form of the parameters (instead of `parameters`). */
  mandatoryParameters?: AwsCommandParameter[];
  executionTimeoutSeconds?: number;
  retentionSeconds?: number;
  createdAt?: number;
  /** The device protocol its executions are delivered over (default "jobs"; "commands" when payload, preprocessor or namespace is given). */
  protocol?: DeviceProtocol;
  /** What the device receives, filled from each execution: the commands protocol's request (${aws:iot:commandexecution::parameter:NAME}) or the Jobs protocol's jobDocument (${aws:iot:parameter:NAME}). */
  payloadTemplate?: string;
  /** AWS's preprocessor: a filled payloadTemplate sent as JSON or, commands protocol only, CBOR. */
  preprocessor?: { awsJsonSubstitution: { outputFormat: "JSON" | "CBOR" } };
  /** AWS IoT commands' static payload: base64 bytes every request carries unchanged, with their media type (default application/octet-stream). Commands protocol only; no parameters, no payloadTemplate. */
  payload?: { content: string; contentType?: string };
  /** How its executions are retried unless a request or job says otherwise. */
  retryPolicy?: RetryPolicy;
  /** Keyed start requests replace the pending execution with their key unless they say "supersede": false. */
  supersede?: boolean;
}
/** How an execution is retried: attempts, the wait between them, and which outcomes. */
export interface RetryPolicy {
  maxAttempts: number;
  backoff?: { strategy?: "FIXED" | "EXPONENTIAL"; minSeconds?: number; maxSeconds?: number; jitter?: boolean };
  retryOn?: { status: "FAILED" | "REJECTED" | "TIMED_OUT"; reasonCodes?: string[]; maxRetries?: number }[];
}
/** AWS IoT Jobs (the device asks for its next execution) or AWS IoT commands (each request is published to it). */
export type DeviceProtocol = "jobs" | "commands";
/** One problem: where, a stable machine code, and a sentence. */
export interface ValidationError { path: string; code: string; message: string; }
export type ValidationResult =
  | { valid: true; errors: []; parameters: Parameters }
  | { valid: false; errors: ValidationError[] };
export interface StatusReason { reasonCode: string; reasonDescription?: string; }
/** A result that arrived after the execution had ended. */
export interface LateResult {
  status: ExecutionStatus; statusReason?: StatusReason; statusDetails?: Record<string, string>;
  result?: Parameters; receivedAt: number;
}
export interface CommandExecution {
  executionId: string; commandId: string; target: string; status: ExecutionStatus;
  /** Present for a commands-protocol execution. */
  protocol?: DeviceProtocol;
  statusReason?: StatusReason; statusDetails?: Record<string, string>;
  parameters: Parameters; result?: Parameters;
  /** In listings: sensitive parameters whose values were left out. */
  redactedParameters?: string[];
  executionTimeoutSeconds: number;
  notBefore?: number; deliveryTimeoutSeconds?: number; deliverBy?: number;
  completeBy: number; stepDeadline?: number;
  retryPolicy: RetryPolicy;
  /** How often the device answered "not now", and when it last did. */
  deferCount?: number; lastDeferredAt?: number;
  lateResult?: LateResult;
  /** Its dedupeKey, the execution it replaced and the one that replaced it. */
  dedupeKey?: string; supersedes?: string; supersededBy?: string;
  /** Audit: who started it (the caller's token subject, or job/ID), who canceled it, who made the latest change (an operator, thing/NAME, or courier). */
  createdBy?: string; canceledBy?: string; lastUpdatedBy?: string;
  /** Per status, who last moved it there. */
  changedBy?: Partial<Record<ExecutionStatus, string>>;
  /** When it was last delivered to the device, and the device's first answer. */
  sentAt?: number; acknowledgedAt?: number;
  retentionSeconds: number;
  createdAt: number; lastUpdatedAt: number; startedAt?: number; completedAt?: number;
  timeToLive: number; version: number; clientToken?: string;
  /** Set on a job's executions. */
  jobId?: string; executionNumber: number;
  /** Set on a pipeline run's executions (its operations). */
  runId?: string;
}
/** A device's (or the system's) status change. */
export interface StatusUpdate {
  status: ExecutionStatus; statusReason?: StatusReason; statusDetails?: Record<string, string>;
  result?: Parameters; expectedVersion?: number; clientToken?: string;
  /** AWS IoT Jobs' step timeout for the next step, in minutes. */
  stepTimeoutInMinutes?: number;
}
/** An operator's cancel: the body of POST /executions/{executionId}/cancel. */
export interface CancelRequest {
  /** Required to stop work a device has started (IN_PROGRESS). */
  force?: boolean;
  expectedVersion?: number; statusReason?: StatusReason; clientToken?: string;
  /** If given, must be CANCELED. */
  status?: "CANCELED";
}
export type TypedValueCheck =
  | { ok: true; type: ValueType; value: TypedValue; display: string }
  | { ok: false; error: ValidationError };
/** Whether an operator may cancel an execution, and whether the cancel must send `force: true`. */
export interface CancelOptions { allowed: boolean; forceRequired: boolean; }
/** Whether a job can be canceled, or is canceled already (its cancel then returns it unchanged). */
export interface JobCancelOptions { allowed: boolean; alreadyCanceled: boolean; }
/** A job's targets: a list of things, or a thing group. */
export type JobTargets =
  | { things: string[] }
  | { thingGroup: string; recursive?: boolean }
  /** An AWS IoT fleet-index query (SearchIndex on AWS_Things). */
  | { query: string };
export type JobTargetsCheck =
  | { ok: true; targets: JobTargets }
  | { ok: false; error: ValidationError };
/** The body of POST /commands/{commandId}/executions. */
export interface StartExecutionBody {
  target: string; parameters?: Record<string, unknown>;
  executionTimeoutSeconds?: number; timeToLive?: number; clientToken?: string;
  notBefore?: number; deliveryTimeoutSeconds?: number;
  /** Overrides the command's policy. */
  retryPolicy?: RetryPolicy;
  /** The older spelling of a policy that retries timeouts only. */
  onTimeout?: "TIME_OUT" | "RETRY"; maxAttempts?: number;
  /** At most one pending execution per device with this key: the same request returns it, another is a 409 unless it supersedes. */
  dedupeKey?: string;
  /** Replace (cancel, SUPERSEDED) the pending execution with this key; `force` also replaces started work. */
  supersede?: boolean; force?: boolean;
}
export type FailureType = "FAILED" | "REJECTED" | "TIMED_OUT" | "ALL";
/** The body of POST /jobs (AWS IoT CreateJob's configuration names). */
export interface CreateJobBody {
  jobId?: string;
  commandId: string;
  parameters?: Record<string, unknown>;
  targets: JobTargets;
  jobExecutionsRolloutConfig?: {
    maximumPerMinute: number;
    exponentialRate?: {
      baseRatePerMinute: number; incrementFactor: number;
      rateIncreaseCriteria: { numberOfNotifiedThings: number } | { numberOfSucceededThings: number };
    };
  };
  abortConfig?: { criteriaList: { failureType: FailureType; action?: "CANCEL"; thresholdPercentage: number; minNumberOfExecutedThings: number }[] };
  jobExecutionsRetryConfig?: { criteriaList: { failureType: Exclude<FailureType, "REJECTED">; numberOfRetries: number }[] };
  /** Courier's spelling (instead of jobExecutionsRetryConfig). */
  retryPolicy?: RetryPolicy;
  schedulingConfig?: { startTime?: number; endTime?: number };
  clientToken?: string;
}
/** Thrown for arguments of the wrong kind. */
export interface CourierError { code: "ValidationException"; message: string; errors: ValidationError[]; }
/** A check that returns nothing but its verdict. */
export type CheckResult =
  | { valid: true; errors: [] }
  | { valid: false; errors: ValidationError[] };
/** The body of POST /pipelines. */
export interface CreatePipelineBody {
  pipelineId: string;
  description?: string;
  stages: {
    name: string;
    timeoutSeconds?: number;
    operations: {
      commandId: string;
      parameters?: Record<string, unknown>;
      onFailure?: "STOP" | "CONTINUE";
      retryPolicy?: Record<string, unknown>;
    }[];
  }[];
}
/** What a run refers to in its pipeline (GET /pipelines/{id} has it). */
export interface PipelineRef { pipelineId: string; stages: { name: string }[]; }
/** The body of POST /pipelines/{id}/runs. */
export interface StartRunBody {
  runId?: string;
  targets: JobTargets;
  waves?: (number | string)[];
  gates?: Record<string, {
    minSuccessPercentage?: number; minSuccessCount?: number; manualApproval?: boolean;
    abort?: { failedCount?: number; failedPercentage?: number; minSettled?: number };
  }>;
  schedulingConfig?: {
    startTime?: number; endTime?: number;
    endBehavior?: "STOP_ROLLOUT" | "CANCEL" | "FORCE_CANCEL";
    maintenanceWindows?: { startTime: string; durationInMinutes: number }[];
  };
  clientToken?: string;
}
export type RunStatus =
  | "SCHEDULED" | "IN_PROGRESS" | "HELD" | "CANCELING" | "CANCELED" | "COMPLETED" | "ABORTED" | "STOPPED";
/** What an operator may do with a run: cancel (a CANCELING one only with force), resume a HELD one. */
export interface RunOptions { cancel: boolean; alreadyCanceled: boolean; forceOnly: boolean; resume: boolean; }
