// Courier's reference dashboard. Every rule (parameter validation, typed
// values from form text, job targets and requests, what an operator may
// cancel and whether it needs force, whether a pipeline run may be resumed
// or canceled) comes from the WASM build of
// courier-core: the page refuses exactly what the API would refuse, with the
// same codes and messages, and decides nothing itself. The API base URL is the `api` query parameter. Against a
// deployment, paste an access token (a JWT your identity provider issued with
// the courier/read, courier/write and courier/cancel scopes); it is kept for
// this tab only. `make run` needs none: the local stack is in local mode.
import init, {
  CommandValidator,
  cancelOptions,
  coreVersion,
  executionStatuses,
  formatTypedValue,
  jobCancelOptions,
  jobTargets,
  runOptions,
  typedValueFromText,
} from "../pkg/courier.js";

const API = new URLSearchParams(location.search).get("api") ?? "http://127.0.0.1:9000/lambda-url/api";
const POLL_MS = 1500;
const $ = (sel) => document.querySelector(sel);

const state = { commands: [], validator: null, command: null, device: "", pollTimer: null, jobsTimer: null, runsTimer: null, openRun: null };

async function api(method, path, body) {
  const headers = body === undefined ? {} : { "content-type": "application/json" };
  const token = sessionStorage.getItem("courier-token");
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = response.status === 204 ? null : await response.json();
  if (!response.ok) throw Object.assign(new Error(json?.message ?? response.statusText), { status: response.status, body: json });
  return json;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// ---- commands ---------------------------------------------------------------

async function loadCommands() {
  try {
    const page = await api("GET", "/commands?limit=100");
    state.commands = page.items;
    $("#api-status").textContent = `API ${API}`;
  } catch (e) {
    $("#api-status").textContent = `API unreachable: ${e.message}`;
    $("#api-status").className = "error";
    return;
  }
  const list = $("#commands");
  list.replaceChildren(
    ...state.commands.map((c) => {
      const name = c.displayName ? `${c.displayName} (${c.commandId})` : c.commandId;
      const button = el("button", { type: "button", textContent: name, title: c.description ?? "" });
      button.dataset.commandId = c.commandId;
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => selectCommand(c.commandId));
      return el("li", {}, button);
    }),
  );
  $("#commands-empty").hidden = state.commands.length > 0;
}

function selectCommand(commandId) {
  const definition = state.commands.find((c) => c.commandId === commandId);
  state.command = definition;
  state.validator = new CommandValidator(definition); // the server's compiled rules
  for (const b of document.querySelectorAll("#commands button")) b.setAttribute("aria-pressed", String(b.dataset.commandId === commandId));
  $("#command-description").textContent = definition.description ?? "";
  $("#parameters").replaceChildren(el("legend", { textContent: "Parameters" }), ...(definition.parameters ?? []).map(parameterField));
  if (!definition.parameters?.length) $("#parameters").append(el("p", { className: "muted", textContent: "This command takes no parameters." }));
  if (definition.payload) $("#parameters").append(el("p", { className: "muted", textContent: `The device receives the command's fixed payload (${definition.payload.contentType}) unchanged.` }));
  $("#start-form").hidden = false;
  $("#start-hint").hidden = true;
  $("#start-result").textContent = "";
  validateForm();
}

// ---- the parameter form, generated from the schema ------------------------------

function constraintText(p) {
  const parts = [p.type];
  if (p.required) parts.push("required");
  if (p.min !== undefined) parts.push(`≥ ${p.min}`);
  if (p.max !== undefined) parts.push(`≤ ${p.max}`);
  if (p.minLength !== undefined || p.maxLength !== undefined) parts.push(`${p.minLength ?? 0}–${p.maxLength ?? "∞"} chars`);
  if (p.pattern) parts.push(`/${p.pattern}/`);
  if (p.maxBytes !== undefined) parts.push(`≤ ${p.maxBytes} bytes`);
  if (p.default) parts.push(`default ${formatTypedValue(p.default)}`);
  return parts.join(", ");
}

function parameterField(p) {
  let input;
  if (p.type === "B") {
    input = el("select", {}, el("option", { value: "", textContent: "—" }), el("option", { value: "true", textContent: "true" }), el("option", { value: "false", textContent: "false" }));
  } else if (p.type === "S" && p.enum) {
    input = el("select", {}, el("option", { value: "", textContent: "—" }), ...p.enum.map((v) => el("option", { value: v, textContent: v })));
  } else {
    const placeholder = { BIN: "base64", UL: "0 … 18446744073709551615" }[p.type] ?? "";
    input = el("input", { autocomplete: "off", placeholder, inputMode: ["I", "L", "D", "UL"].includes(p.type) ? "decimal" : "text" });
  }
  input.name = p.name;
  input.dataset.type = p.type;
  input.id = `param-${p.name}`;
  input.addEventListener("input", validateForm);
  const label = el("label", { htmlFor: input.id }, `${p.name} `, el("small", { textContent: constraintText(p) }));
  const errors = el("div", { className: "field-errors" });
  errors.dataset.for = `parameters.${p.name}`;
  return el("div", { className: "field" }, label, input, p.description ? el("div", { className: "muted", textContent: p.description }) : null, errors);
}

// What the user typed, read by core as typed values (typedValueFromText):
// the parameters, and the fields whose text is not a value of their type
// (with core's error, at the parameter's path).
function readParameters() {
  const parameters = {};
  const unreadable = [];
  for (const input of document.querySelectorAll("#parameters [name]")) {
    if (input.value.trim() === "") continue;
    const read = typedValueFromText(input.dataset.type, input.value);
    if (read.ok) parameters[input.name] = read.value;
    else unreadable.push({ ...read.error, path: `parameters.${input.name}` });
  }
  return { parameters, unreadable };
}

function startBody(parameters) {
  return { target: $("#target").value.trim(), parameters };
}

// The job the form describes; core checks all of it (validateJob).
function jobBody(parameters) {
  const body = { commandId: state.command.commandId, parameters };
  const targets = jobTargets($("#job-targets").value);
  if (targets.ok) body.targets = targets.targets;
  const rate = $("#job-rate").value.trim();
  if (rate !== "") body.jobExecutionsRolloutConfig = { maximumPerMinute: Number(rate) };
  return { body, targetsError: targets.ok ? null : targets.error };
}

/** Shows `errors` under the fields their paths name; marks those fields invalid. */
function showErrors(errors, fallback) {
  for (const error of errors) {
    const box = document.querySelector(`.field-errors[data-for="${CSS.escape(error.path)}"]`) ?? document.querySelector(`.field-errors[data-for="${fallback}"]`);
    box.append(el("div", { textContent: error.message, title: error.code }));
    const name = error.path.replace(/^parameters\./, "");
    document.querySelector(`#start-form [name="${CSS.escape(name)}"]`)?.setAttribute("aria-invalid", "true");
  }
}

function validateForm() {
  if (!state.validator) return false;
  const now = Date.now() / 1000;
  const { parameters, unreadable } = readParameters();
  // A field whose text is not a value is shown with that error, not as missing.
  const shown = (errors) => [...unreadable, ...errors.filter((e) => !unreadable.some((u) => u.path === e.path))];
  const start = state.validator.validateStart(startBody(parameters), now);
  for (const box of document.querySelectorAll(".field-errors")) box.replaceChildren();
  for (const input of document.querySelectorAll("#start-form [name]")) input.removeAttribute("aria-invalid");
  showErrors(shown(start.errors), "parameters");
  const startable = start.valid && unreadable.length === 0;
  $("#start").disabled = !startable;
  // A job takes the same parameters, plus targets and a rollout.
  const { body, targetsError } = jobBody(parameters);
  const job = state.validator.validateJob(body, now);
  const jobErrors = [...(targetsError && $("#job-targets").value.trim() !== "" ? [targetsError] : []), ...job.errors.filter((e) => !e.path.startsWith("parameters") && e.path !== "targets")];
  showErrors(jobErrors, "job");
  $("#start-job").disabled = !(job.valid && unreadable.length === 0);
  return startable;
}

async function startJob() {
  const { parameters } = readParameters();
  const { body } = jobBody(parameters);
  $("#start-job").disabled = true;
  try {
    const job = await api("POST", "/jobs", body);
    $("#job-result").textContent = `job ${job.jobId} ${job.status}`;
    $("#job-result").className = "muted";
    refreshJobs();
  } catch (e) {
    const details = (e.body?.details?.errors ?? []).map((x) => `${x.path}: ${x.message}`).join("; ");
    $("#job-result").textContent = `${e.body?.code ?? "Error"}: ${e.message}${details ? " — " + details : ""}`;
    $("#job-result").className = "error";
  } finally {
    validateForm();
  }
}

async function startExecution(event) {
  event.preventDefault();
  if (!validateForm()) return;
  const body = startBody(readParameters().parameters);
  $("#start").disabled = true;
  try {
    const execution = await api("POST", `/commands/${encodeURIComponent(state.command.commandId)}/executions`, body);
    $("#start-result").textContent = `started ${execution.executionId}`;
    $("#start-result").className = "muted";
    $("#device").value = body.target;
    watchDevice(body.target);
  } catch (e) {
    $("#start-result").textContent = `${e.body?.code ?? "Error"}: ${e.message}`;
    $("#start-result").className = "error";
  } finally {
    validateForm();
  }
}

// ---- a device's executions, live --------------------------------------------------

function watchDevice(device) {
  state.device = device;
  clearTimeout(state.pollTimer);
  refreshExecutions();
}

async function refreshExecutions() {
  clearTimeout(state.pollTimer);
  if (!state.device) return;
  refreshQueue();
  try {
    const page = await api("GET", `/executions?target=${encodeURIComponent(state.device)}&limit=25`);
    renderExecutions(page.items);
  } catch (e) {
    // A thing nobody in this tenant has targeted yet has no executions.
    if (e.status === 404 && e.body?.details?.resource === "thing") {
      renderExecutions([]);
      state.pollTimer = setTimeout(refreshExecutions, POLL_MS);
      return;
    }
    $("#executions-empty").textContent = `${e.body?.code ?? "Error"}: ${e.message}`;
    $("#executions-empty").hidden = false;
  }
  state.pollTimer = setTimeout(refreshExecutions, POLL_MS);
}

const time = (secs) => (secs ? new Date(secs * 1000).toLocaleTimeString() : "");
const typedMap = (map) => Object.entries(map ?? {}).map(([k, v]) => `${k}=${formatTypedValue(v)}`).join(", ");

// The record's audit fields, as the server keeps them.
const audit = (e) =>
  [
    ["created by", e.createdBy],
    ["sent", time(e.sentAt)],
    ["first answer", time(e.acknowledgedAt)],
    ["canceled by", e.canceledBy],
    ["last deferred", time(e.lastDeferredAt)],
    ...Object.entries(e.changedBy ?? {}).map(([status, who]) => [`${status} by`, who]),
  ]
    .filter(([, v]) => v)
    .map(([k, v]) => `${k}: ${v}`)
    .join("\n");

function renderExecutions(items) {
  $("#executions-empty").hidden = items.length > 0;
  $("#executions-empty").textContent = "No executions for this device.";
  $("#executions tbody").replaceChildren(
    ...items.map((e) => {
      // Enabled where core lets an operator cancel; started work needs force.
      const options = cancelOptions(e.status);
      const cancel = el("button", { type: "button", className: "secondary", textContent: options.forceRequired ? "Stop…" : "Cancel", disabled: !options.allowed });
      cancel.dataset.forceRequired = String(options.forceRequired);
      cancel.addEventListener("click", () => cancelExecution(e, cancel));
      const reason = e.statusReason ? `${e.statusReason.reasonCode}${e.statusReason.reasonDescription ? ": " + e.statusReason.reasonDescription : ""}` : "";
      const row = el(
        "tr",
        {},
        el("td", { className: "id", textContent: e.executionId.slice(0, 8), title: e.executionId }),
        el("td", { textContent: e.commandId }),
        el("td", {}, el("span", { className: `status ${e.status}`, textContent: e.status })),
        el("td", { textContent: reason }),
        el("td", { textContent: typedMap(e.result) }),
        el("td", { className: "attempt", textContent: `${e.executionNumber} of ${e.retryPolicy?.maxAttempts ?? 1}${e.deferCount ? `, deferred ${e.deferCount}×` : ""}` }),
        el("td", { textContent: time(e.lastUpdatedAt) }),
        el("td", { className: "by", textContent: e.lastUpdatedBy ?? "", title: audit(e) }),
        el("td", { className: "version", textContent: String(e.version) }),
        el("td", {}, cancel),
      );
      row.dataset.executionId = e.executionId;
      return row;
    }),
  );
}

// The device's queue as the server orders it (core/src/queue.rs); the page
// only shows it.
async function refreshQueue() {
  let items = [];
  let presence = null;
  try {
    ({ items, presence } = await api("GET", `/things/${encodeURIComponent(state.device)}/queue`));
  } catch (e) {
    if (e.status !== 404) $("#queue-empty").textContent = `${e.body?.code ?? "Error"}: ${e.message}`;
  }
  $("#queue").replaceChildren(
    ...items.map((i) => {
      const li = el("li", { textContent: `${i.commandId} ${i.executionId.slice(0, 8)}: ${i.waiting.replaceAll("_", " ").toLowerCase()}${i.notBefore ? " until " + time(i.notBefore) : ""}` });
      li.dataset.executionId = i.executionId;
      li.dataset.waiting = i.waiting;
      return li;
    }),
  );
  $("#queue-empty").hidden = items.length > 0;
  $("#clear-queue").disabled = items.length === 0;
  // The device's latest lifecycle event, as the server recorded it.
  $("#presence").textContent = presence
    ? `${presence.connected ? "connected" : "disconnected"} since ${time(presence.since)}${presence.disconnectReason ? ` (${presence.disconnectReason})` : ""}`
    : "no connection seen yet";
  $("#presence").dataset.connected = String(presence?.connected ?? "");
}

async function clearQueue() {
  if (!confirm(`Cancel everything pending on ${state.device}? Work it has started is left running.`)) return;
  $("#clear-queue").disabled = true;
  try {
    await api("POST", `/things/${encodeURIComponent(state.device)}/queue/clear`, {
      statusReason: { reasonCode: "QUEUE_CLEARED", reasonDescription: "cleared from the dashboard" },
    });
  } catch (e) {
    alert(`${e.body?.code ?? "Error"}: ${e.message}`);
  }
  refreshExecutions();
}

async function cancelExecution(execution, button) {
  const { forceRequired } = cancelOptions(execution.status);
  // The device is working on it: stopping it is the operator's call.
  if (forceRequired && !confirm(`${execution.target} has started ${execution.commandId} (${execution.status}). Stop it anyway? The device is told to cancel; a result it sends later is kept as a late result.`)) return;
  button.disabled = true;
  try {
    await api("POST", `/executions/${encodeURIComponent(execution.executionId)}/cancel`, {
      expectedVersion: execution.version,
      force: forceRequired,
      statusReason: { reasonCode: "OPERATOR_CANCELED", reasonDescription: "canceled from the dashboard" },
    });
  } catch (e) {
    alert(`${e.body?.code ?? "Error"}: ${e.message}`);
  }
  refreshExecutions();
}

// ---- jobs, live -------------------------------------------------------------------

async function refreshJobs() {
  clearTimeout(state.jobsTimer);
  try {
    const page = await api("GET", "/jobs?limit=10");
    renderJobs(page.items);
  } catch (e) {
    $("#jobs-empty").textContent = `${e.body?.code ?? "Error"}: ${e.message}`;
    $("#jobs-empty").hidden = false;
  }
  state.jobsTimer = setTimeout(refreshJobs, POLL_MS);
}

async function renderJobs(jobs) {
  $("#jobs-empty").hidden = jobs.length > 0;
  // The list holds the records; each job's statistics come with GET /jobs/{id}.
  const views = await Promise.all(jobs.map((j) => api("GET", `/jobs/${encodeURIComponent(j.jobId)}`).catch(() => ({ ...j, statistics: { devices: {}, attempts: 0 } }))));
  $("#jobs tbody").replaceChildren(...views.map(jobRow));
}

function jobRow(job) {
  const devices = job.statistics?.devices ?? {};
  const total = Object.values(devices).reduce((a, b) => a + b, 0);
  const bar = el("div", { className: "bar", title: STATUSES.filter((s) => devices[s]).map((s) => `${s} ${devices[s]}`).join(", ") });
  for (const s of STATUSES) if (devices[s]) bar.append(el("span", { className: s, style: `width:${(100 * devices[s]) / Math.max(total, 1)}%` }));
  const counts = el("div", { className: "counts", textContent: STATUSES.filter((s) => devices[s]).map((s) => `${s} ${devices[s]}`).join(" · ") || "no executions yet" });
  const targets = job.targets?.thingGroup ? `group ${job.targets.thingGroup.name}` : `${job.targets?.things?.count ?? "?"} things`;
  const cancel = el("button", { type: "button", className: "secondary", textContent: "Cancel job", disabled: !jobCancelOptions(job.status).allowed });
  cancel.addEventListener("click", () => cancelJob(job, cancel));
  const reason = job.statusReason ? ` (${job.statusReason.reasonCode})` : "";
  const row = el(
    "tr",
    {},
    el("td", { className: "id", textContent: job.jobId.slice(0, 8), title: job.jobId }),
    el("td", { textContent: job.commandId }),
    el("td", {}, el("span", { className: `status job ${job.status}`, textContent: job.status + reason })),
    el("td", { textContent: `${targets}, ${job.fanOut?.created ?? 0} created${job.fanOut?.done ? "" : " so far"}` }),
    el("td", {}, bar, counts),
    el("td", { textContent: String(job.statistics?.attempts ?? 0) }),
    el("td", {}, cancel),
  );
  row.dataset.jobId = job.jobId;
  return row;
}

async function cancelJob(job, button) {
  button.disabled = true;
  try {
    await api("POST", `/jobs/${encodeURIComponent(job.jobId)}/cancel`, { comment: "canceled from the dashboard" });
  } catch (e) {
    alert(`${e.body?.code ?? "Error"}: ${e.message}`);
  }
  refreshJobs();
}

// ---- pipeline runs, live ---------------------------------------------------------

async function refreshRuns() {
  clearTimeout(state.runsTimer);
  try {
    const pipelines = (await api("GET", "/pipelines?limit=10")).items;
    const lists = await Promise.all(pipelines.map((p) => api("GET", `/pipelines/${encodeURIComponent(p.pipelineId)}/runs?limit=5`)));
    const runs = lists.flatMap((l) => l.items);
    // The list holds the records; each run's counts come with GET .../runs/{runId}.
    const views = await Promise.all(runs.map((r) => api("GET", `/pipelines/${encodeURIComponent(r.pipelineId)}/runs/${encodeURIComponent(r.runId)}`)));
    $("#runs-empty").hidden = views.length > 0;
    $("#runs tbody").replaceChildren(...views.map(runRow));
    if (state.openRun) await showRunDevices(state.openRun);
  } catch (e) {
    $("#runs-empty").textContent = `${e.body?.code ?? "Error"}: ${e.message}`;
    $("#runs-empty").hidden = false;
  }
  state.runsTimer = setTimeout(refreshRuns, POLL_MS);
}

function runRow(run) {
  const options = runOptions(run.status);
  const waves = el("div", { className: "waves" });
  (run.waveSizes ?? []).forEach((size, w) => {
    const line = (run.counts?.[w] ?? []).map((c, k) => `${run.stages[k]?.name}: ${c.entered} → ${c.succeeded} / ${c.failed} / ${c.timedOut}`).join(" · ");
    waves.append(el("div", { textContent: `wave ${w + 1} (${size} device${size === 1 ? "" : "s"}): ${line}` }));
  });
  if (!run.waveSizes?.length) waves.append(el("div", { className: "muted", textContent: "targets not resolved yet" }));
  const hold = run.hold ? ` at wave ${run.hold.wave + 1}, ${run.stages[run.hold.stage]?.name}: ${run.hold.manualApproval ? "approval" : `${run.hold.succeeded} of ${run.hold.required} needed`}` : "";
  const resume = el("button", { type: "button", className: "resume", textContent: "Resume", disabled: !options.resume });
  resume.addEventListener("click", () => runAction(run, "resume", {}, resume));
  const cancel = el("button", { type: "button", className: "secondary", textContent: options.forceOnly ? "Stop started work" : "Cancel run", disabled: !options.cancel });
  cancel.addEventListener("click", () => {
    if (options.forceOnly && !confirm("Cancel the operations devices have started too?")) return;
    runAction(run, "cancel", { force: options.forceOnly }, cancel);
  });
  const devices = el("button", { type: "button", className: "secondary", textContent: "Devices" });
  devices.addEventListener("click", () => showRunDevices(run));
  const row = el(
    "tr",
    {},
    el("td", { textContent: run.pipelineId }),
    el("td", { className: "id", textContent: run.runId.slice(0, 12), title: run.runId }),
    el("td", {}, el("span", { className: `status run ${run.status}`, textContent: run.status + hold })),
    el("td", {}, waves),
    el("td", {}, resume, cancel, devices),
  );
  row.dataset.runId = run.runId;
  return row;
}

async function runAction(run, action, body, button) {
  button.disabled = true;
  try {
    await api("POST", `/pipelines/${encodeURIComponent(run.pipelineId)}/runs/${encodeURIComponent(run.runId)}/${action}`, body);
  } catch (e) {
    alert(`${e.body?.code ?? "Error"}: ${e.message}`);
  }
  refreshRuns();
}

async function showRunDevices(run) {
  state.openRun = { pipelineId: run.pipelineId, runId: run.runId };
  const page = await api("GET", `/pipelines/${encodeURIComponent(run.pipelineId)}/runs/${encodeURIComponent(run.runId)}/targets?limit=100`);
  $("#run-devices-id").textContent = run.runId;
  $("#run-devices").hidden = false;
  $("#run-targets tbody").replaceChildren(
    ...page.items.map((t) => {
      const executions = el("td", {});
      for (const h of t.history ?? []) {
        const link = el("a", { href: "#", textContent: `${h.executionId.slice(0, 8)}${h.status ? ` ${h.status}` : ""}`, title: h.executionId });
        link.addEventListener("click", (e) => {
          e.preventDefault();
          $("#device").value = t.thingName;
          watchDevice(t.thingName);
        });
        executions.append(link, " ");
      }
      const row = el("tr", {}, el("td", { textContent: t.thingName }), el("td", { textContent: String(t.wave + 1) }), el("td", { textContent: String(t.stage + 1) }), el("td", {}, el("span", { className: `status target ${t.status}`, textContent: t.status })), executions);
      row.dataset.thing = t.thingName;
      return row;
    }),
  );
}

// ---- start -------------------------------------------------------------------

await init();
const STATUSES = executionStatuses();
$("#versions").textContent = `rules: courier-core ${coreVersion()} (WebAssembly)`;
$("#start-form").addEventListener("submit", startExecution);
$("#target").addEventListener("input", validateForm);
$("#device").addEventListener("change", (e) => watchDevice(e.target.value.trim()));
$("#job-targets").addEventListener("input", validateForm);
$("#job-rate").addEventListener("input", validateForm);
$("#start-job").addEventListener("click", startJob);
$("#clear-queue").addEventListener("click", clearQueue);
$("#token").value = sessionStorage.getItem("courier-token") ?? "";
$("#token").addEventListener("change", (e) => {
  sessionStorage.setItem("courier-token", e.target.value.trim());
  loadCommands();
});
await loadCommands();
refreshJobs();
refreshRuns();
document.body.dataset.ready = "true";
