// The reference dashboard in headless Chromium (Debian's, driven by
// playwright-core) against the running local stack: live validation from the
// WASM module, starting an execution, seeing it, cancelling it (and stopping
// one a simulated device has started, with force, after the operator
// confirms). Screenshots go to build/screenshots/. Run by scripts/test.sh
// with API_URL, DASHBOARD_URL and MQTT_BROKER.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

const API = process.env.API_URL;
const DASHBOARD = process.env.DASHBOARD_URL;
const SHOTS = new URL("../../build/screenshots/", import.meta.url).pathname;
let browser, page;

before(async () => {
  assert.ok(API && DASHBOARD && process.env.MQTT_BROKER, "API_URL, DASHBOARD_URL and MQTT_BROKER must be set (scripts/test.sh sets them)");
  mkdirSync(SHOTS, { recursive: true });
  const command = {
    commandId: "set-rate",
    description: "Set the telemetry reporting rate",
    parameters: [
      { name: "rate", type: "I", required: true, min: 1, max: 3600, description: "seconds between reports" },
      { name: "mode", type: "S", enum: ["eco", "normal"], default: { S: "normal" } },
    ],
  };
  const created = await fetch(`${API}/commands`, { method: "POST", body: JSON.stringify(command) });
  assert.ok([200, 201].includes(created.status), `create command: ${created.status}`);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (e) => console.error("page error:", e.message));
});

after(async () => {
  await browser?.close();
});

test("the dashboard validates with the server's rules, starts and cancels an execution", async () => {
  await page.goto(`${DASHBOARD}?api=${encodeURIComponent(API)}`);
  await page.waitForSelector("body[data-ready=true]");
  assert.match(await page.textContent("#versions"), /courier-core \d+\.\d+\.\d+/);

  // GIVEN the command is selected
  await page.click('#commands button[data-command-id="set-rate"]');
  await page.fill("#target", "dev-ui-1");

  // WHEN an invalid rate is typed THEN the WASM message shows and submit is off
  await page.fill("#param-rate", "0");
  const rateErrors = '.field-errors[data-for="parameters.rate"]';
  await page.waitForSelector(`${rateErrors} div`);
  const shown = await page.textContent(rateErrors);
  assert.equal(await page.isDisabled("#start"), true);
  await page.screenshot({ path: `${SHOTS}1-invalid-parameters.png`, fullPage: true });
  // ... and it is the API's own message for the same input
  const refused = await fetch(`${API}/commands/set-rate/executions`, { method: "POST", body: JSON.stringify({ target: "dev-ui-1", parameters: { rate: { I: 0 } } }) });
  const body = await refused.json();
  assert.equal(refused.status, 400);
  assert.equal(shown, body.details.errors[0].message);

  // a bad thing name is refused too
  await page.fill("#target", "dev ui");
  await page.waitForSelector('.field-errors[data-for="target"] div');
  await page.fill("#target", "dev-ui-1");
  await page.fill("#param-rate", "1.5");
  assert.match(await page.textContent(rateErrors), /expected a 32-bit integer/);

  // WHEN the rate is valid THEN no messages and submit is on
  await page.fill("#param-rate", "30");
  await page.waitForFunction(() => !document.querySelector("#start").disabled);
  assert.equal((await page.textContent(rateErrors)).trim(), "");
  await page.screenshot({ path: `${SHOTS}2-valid-parameters.png`, fullPage: true });

  // WHEN started THEN the execution appears, and once the dispatcher has
  // published it to the (unsimulated) device, SENT and still cancellable.
  // Waiting for SENT also keeps the cancel below from racing the dispatcher:
  // the dashboard cancels with the expectedVersion it shows.
  await page.click("#start");
  const row = "#executions tbody tr";
  await page.waitForSelector(`${row} .status.SENT`);
  assert.equal(await page.isEnabled(`${row} button`), true);
  await page.screenshot({ path: `${SHOTS}3-execution-sent.png`, fullPage: true });

  // WHEN cancelled THEN it shows CANCELED and the WASM disables cancel
  await page.click(`${row} button`);
  await page.waitForSelector(`${row} .status.CANCELED`);
  assert.equal(await page.isDisabled(`${row} button`), true);
  assert.match(await page.textContent(row), /OPERATOR_CANCELED/);
  await page.screenshot({ path: `${SHOTS}4-execution-canceled.png`, fullPage: true });

  const id = await page.getAttribute(row, "data-execution-id");
  const stored = await (await fetch(`${API}/executions/${id}`)).json();
  assert.equal(stored.status, "CANCELED");
  assert.equal(stored.target, "dev-ui-1");
  // the audit column names who made the last change, from the record
  assert.ok(stored.createdBy && stored.sentAt, "who started it and when it was delivered");
  assert.equal(await page.textContent(`${row} td.by`), stored.lastUpdatedBy);
  assert.match(await page.getAttribute(`${row} td.by`, "title"), new RegExp(`created by: ${stored.createdBy}`));
});

test("a command with AWS's static payload is shown by its display name and started without parameters", async () => {
  const hello = {
    commandId: "say-hello", protocol: "commands", displayName: "Say hello",
    payload: { content: "eyAibWVzc2FnZSI6ICJIZWxsbyBJb1QiIH0=", contentType: "application/json" },
  };
  const created = await fetch(`${API}/commands`, { method: "POST", body: JSON.stringify(hello) });
  assert.ok([200, 201].includes(created.status), `create command: ${created.status}`);
  await page.goto(`${DASHBOARD}?api=${encodeURIComponent(API)}`);
  await page.waitForSelector("body[data-ready=true]");
  const button = '#commands button[data-command-id="say-hello"]';
  assert.equal(await page.textContent(button), "Say hello (say-hello)");
  await page.click(button);
  assert.match(await page.textContent("#parameters"), /takes no parameters.*fixed payload \(application\/json\)/s);
  await page.fill("#target", "dev-ui-4");
  await page.waitForFunction(() => !document.querySelector("#start").disabled);
  await page.click("#start");
  const row = '#executions tbody tr';
  await page.waitForSelector(`${row} .status.SENT`);
  const id = await page.getAttribute(row, "data-execution-id");
  const stored = await (await fetch(`${API}/executions/${id}`)).json();
  assert.equal(stored.commandId, "say-hello");
  assert.equal(stored.target, "dev-ui-4");
});

test("an execution the device has started is stopped with force, once the operator confirms", async (t) => {
  await page.goto(`${DASHBOARD}?api=${encodeURIComponent(API)}`);
  await page.waitForSelector("body[data-ready=true]");
  await page.click('#commands button[data-command-id="set-rate"]');
  await page.fill("#target", "dev-ui-2");
  await page.fill("#param-rate", "45");
  await page.waitForFunction(() => !document.querySelector("#start").disabled);

  // GIVEN a device that takes the execution (IN_PROGRESS) and then goes quiet
  const device = spawn(new URL("../../target/debug/courier-device", import.meta.url).pathname, ["--broker", process.env.MQTT_BROKER, "--thing", "dev-ui-2", "--mode", "silent"], { stdio: "ignore" });
  t.after(() => device.kill());
  await page.click("#start");
  const row = "#executions tbody tr";
  await page.waitForSelector(`${row} .status.IN_PROGRESS`, { timeout: 30_000 });
  const id = await page.getAttribute(row, "data-execution-id");
  // The simulated device takes it (start-next, with a 5-minute step timer)
  // and then reports IN_PROGRESS with a 1-minute one: wait until that last
  // report is stored and the page shows its version, so the cancel below is
  // not refused for a stale expectedVersion. (Waiting for any step timer
  // raced: start-next's already sets one.)
  const lastReportStored = (e) => e.stepDeadline && e.stepDeadline - e.lastUpdatedAt <= 61;
  let settled = {};
  for (let i = 0; i < 100 && !lastReportStored(settled); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    settled = await (await fetch(`${API}/executions/${id}`)).json();
  }
  assert.ok(lastReportStored(settled), `the device's 1-minute step timer is stored: ${JSON.stringify(settled)}`);
  await page.waitForFunction(
    ([selector, version]) => document.querySelector(selector)?.textContent === String(version),
    [`${row} td.version`, settled.version],
    { timeout: 30_000 },
  );
  // the simulator announced its connection (a lifecycle event through the
  // local IoT rule): the server shows the device connected
  let seen = {};
  for (let i = 0; i < 50 && seen.presence?.connected !== true; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 200));
    seen = await (await fetch(`${API}/things/dev-ui-2/queue`)).json();
  }
  assert.equal(seen.presence?.connected, true, JSON.stringify(seen.presence));
  // core says an operator may stop it, with force: the button says so
  assert.equal(await page.getAttribute(`${row} button`, "data-force-required"), "true");
  assert.equal(await page.isEnabled(`${row} button`), true);
  await page.screenshot({ path: `${SHOTS}7-execution-in-progress.png`, fullPage: true });

  // WHEN the operator declines the confirmation THEN nothing is sent
  let asked = "";
  page.once("dialog", (dialog) => {
    asked = dialog.message();
    dialog.dismiss();
  });
  await page.click(`${row} button`);
  assert.match(asked, /Stop it anyway\?/);
  assert.equal((await (await fetch(`${API}/executions/${id}`)).json()).status, "IN_PROGRESS");

  // WHEN the operator confirms THEN the dashboard cancels with force and it is CANCELED
  page.once("dialog", (dialog) => dialog.accept());
  await page.click(`${row} button`);
  await page.waitForSelector(`${row} .status.CANCELED`, { timeout: 30_000 });
  assert.equal(await page.isDisabled(`${row} button`), true);
  await page.screenshot({ path: `${SHOTS}8-execution-stopped.png`, fullPage: true });
  const stored = await (await fetch(`${API}/executions/${id}`)).json();
  assert.equal(stored.status, "CANCELED");
  assert.ok(stored.canceledBy, "the record names who stopped it");
  assert.ok(stored.startedAt, "it had started");
});

test("the jobs view starts a job, shows its statistics live, and cancels it", async () => {
  await page.goto(`${DASHBOARD}?api=${encodeURIComponent(API)}`);
  await page.waitForSelector("body[data-ready=true]");
  await page.click('#commands button[data-command-id="set-rate"]');
  await page.fill("#param-rate", "60");

  // WHEN a job is started for three devices (no device answers in this stack)
  await page.click("#job-options summary");
  await page.fill("#job-targets", "dev-job-1, dev-job-2, dev-job-3");
  await page.waitForFunction(() => !document.querySelector("#start-job").disabled);
  await page.click("#start-job");
  await page.waitForSelector("#job-result:has-text('job ')");
  const jobId = (await page.textContent("#job-result")).split(" ")[1];
  const row = `#jobs tbody tr[data-job-id="${jobId}"]`;

  // THEN the job shows up with its three executions delivered (SENT 3)
  await page.waitForSelector(`${row} .counts:has-text("SENT 3")`, { timeout: 30_000 });
  assert.match(await page.textContent(row), /IN_PROGRESS/);
  await page.screenshot({ path: `${SHOTS}5-job-sent.png`, fullPage: true });

  // WHEN canceled THEN the job is CANCELED and its executions are counted CANCELED
  await page.click(`${row} button`);
  await page.waitForSelector(`${row} .counts:has-text("CANCELED 3")`, { timeout: 30_000 });
  assert.match(await page.textContent(row), /CANCELED/);
  assert.equal(await page.isDisabled(`${row} button`), true);
  await page.screenshot({ path: `${SHOTS}6-job-canceled.png`, fullPage: true });
  const stored = await (await fetch(`${API}/jobs/${jobId}`)).json();
  assert.equal(stored.status, "CANCELED");
  assert.equal(stored.statistics.devices.CANCELED, 3);
});

test("a device's queue is shown in the server's order and cleared", async () => {
  // GIVEN two executions for a device nobody simulates, one held an hour
  const start = async (extra) => {
    const reply = await fetch(`${API}/commands/set-rate/executions`, { method: "POST", body: JSON.stringify({ target: "dev-ui-3", parameters: { rate: { I: 5 } }, ...extra }) });
    assert.equal(reply.status, 201);
    return (await reply.json()).executionId;
  };
  const held = await start({ notBefore: Math.floor(Date.now() / 1000) + 3600 });
  const due = await start({});
  await page.goto(`${DASHBOARD}?api=${encodeURIComponent(API)}`);
  await page.waitForSelector("body[data-ready=true]");
  await page.fill("#device", "dev-ui-3");
  await page.dispatchEvent("#device", "change");

  // THEN the queue lists the due one first, then the held one
  await page.waitForSelector("#queue li:nth-child(2)");
  assert.equal(await page.textContent("#presence"), "no connection seen yet");
  const order = await page.$$eval("#queue li", (items) => items.map((li) => [li.dataset.executionId, li.dataset.waiting]));
  assert.deepEqual(order.map(([id]) => id), [due, held]);
  assert.equal(order[1][1], "HELD_UNTIL_NOT_BEFORE");
  await page.screenshot({ path: `${SHOTS}9-queue.png`, fullPage: true });

  // WHEN the operator clears it (and confirms) THEN both are CANCELED
  page.once("dialog", (dialog) => dialog.accept());
  await page.click("#clear-queue");
  await page.waitForSelector("#queue-empty:not([hidden])", { timeout: 30_000 });
  for (const id of [due, held]) {
    const stored = await (await fetch(`${API}/executions/${id}`)).json();
    assert.equal(stored.status, "CANCELED");
    assert.equal(stored.statusReason.reasonCode, "QUEUE_CLEARED");
  }
});

test("the pipeline runs view shows a run by wave and stage, resumes it at its gate, and lists its devices", async (t) => {
  // GIVEN a device that does its work, and a pipeline of two stages
  const device = spawn(new URL("../../target/debug/courier-device", import.meta.url).pathname, ["--broker", process.env.MQTT_BROKER, "--thing", "pipe-ui-1", "--mode", "ok"], { stdio: "ignore" });
  t.after(() => device.kill());
  const pipeline = {
    pipelineId: "ui-fw",
    stages: [
      { name: "install", operations: [{ commandId: "set-rate", parameters: { rate: { I: 10 } } }] },
      { name: "verify", operations: [{ commandId: "set-rate", parameters: { rate: { I: 60 } } }] },
    ],
  };
  const created = await fetch(`${API}/pipelines`, { method: "POST", body: JSON.stringify(pipeline) });
  assert.ok([200, 201].includes(created.status), `create pipeline: ${created.status}`);
  await page.goto(`${DASHBOARD}?api=${encodeURIComponent(API)}`);
  await page.waitForSelector("body[data-ready=true]");

  // WHEN a run with a manual gate after install starts
  const runId = `ui-run-${Date.now()}`;
  const started = await fetch(`${API}/pipelines/ui-fw/runs`, {
    method: "POST",
    body: JSON.stringify({ runId, targets: { things: ["pipe-ui-1"] }, gates: { install: { manualApproval: true } } }),
  });
  assert.equal(started.status, 201);

  // THEN the view shows it HELD at the gate once the device is through, with Resume enabled by the module's rule
  const row = `#runs tr[data-run-id="${runId}"]`;
  await page.waitForSelector(`${row} .status.run.HELD`, { timeout: 60_000 });
  assert.match(await page.textContent(`${row} .waves`), /install: 1 → 1 \/ 0 \/ 0/);
  assert.equal(await page.isDisabled(`${row} button.resume`), false);
  await page.screenshot({ path: `${SHOTS}10-run-held.png`, fullPage: true });

  // WHEN the operator resumes it THEN it completes, and its device is listed with its executions
  await page.click(`${row} button.resume`);
  await page.waitForSelector(`${row} .status.run.COMPLETED`, { timeout: 60_000 });
  assert.equal(await page.isDisabled(`${row} button.resume`), true, "a completed run cannot be resumed");
  await page.click(`${row} button:has-text("Devices")`);
  await page.waitForSelector('#run-targets tr[data-thing="pipe-ui-1"] .status.target.SUCCEEDED');
  assert.equal(await page.locator('#run-targets tr[data-thing="pipe-ui-1"] a').count(), 2, "one execution per stage");
  await page.screenshot({ path: `${SHOTS}11-run-completed.png`, fullPage: true });
});
