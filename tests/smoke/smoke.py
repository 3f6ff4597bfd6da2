#!/usr/bin/env python3
"""Smoke test through cargo-lambda: the README's walk-through, checked.

Runs against `cargo lambda watch` (HTTP calls through its function-URL
endpoint) and `cargo lambda invoke` (device events from tests/events/), both
backed by DynamoDB Local. Started by scripts/smoke.sh. Standard library only.
"""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

PORT = os.environ["WATCH_PORT"]
BASE = f"http://127.0.0.1:{PORT}/lambda-url/api"
EVENTS = os.path.join(os.path.dirname(__file__), "..", "events")
passed, failed = 0, 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def http(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def invoke(function, event_file, execution_id):
    with open(os.path.join(EVENTS, event_file)) as f:
        event = f.read().replace("EXECUTION_ID", execution_id)
    out = subprocess.run(
        ["cargo", "lambda", "invoke", function, "--invoke-port", PORT, "--invoke-address", "127.0.0.1", "--data-ascii", event],
        capture_output=True, text=True, timeout=900,
    )
    if out.returncode != 0:
        return {"invokeError": out.stderr.strip()[-500:]}
    return json.loads(out.stdout)


status, health = http("GET", "/health")
check("GET /health answers through cargo lambda watch", status == 200 and health["status"] == "ok", health)

command = {
    "commandId": "set-config",
    "description": "Set the telemetry reporting rate",
    "parameters": [
        {"name": "rate", "type": "I", "required": True, "min": 1, "max": 3600},
        {"name": "mode", "type": "S", "enum": ["eco", "normal"], "default": {"S": "normal"}},
    ],
}
status, body = http("POST", "/commands", command)
check("POST /commands creates the command", status == 201, body)

status, body = http("POST", "/commands/set-config/executions", {"target": "dev-1", "parameters": {"rate": {"I": 0}, "colour": {"S": "red"}}})
codes = sorted(e["code"] for e in (body or {}).get("details", {}).get("errors", []))
check("invalid parameters are a 400 listing every problem", status == 400 and codes == ["OutOfRange", "UnknownParameter"], body)

status, execution = http("POST", "/commands/set-config/executions", {"target": "dev-1", "parameters": {"rate": {"I": 30}}, "clientToken": "smoke-1"})
check("POST /commands/set-config/executions starts an execution delivered at once (SENT, version 2)", status == 201 and execution["status"] == "SENT" and execution["version"] == 2, execution)
execution_id = execution["executionId"]

status, again = http("POST", "/commands/set-config/executions", {"target": "dev-1", "parameters": {"rate": {"I": 30}}, "clientToken": "smoke-1"})
check("a retried create with the same clientToken returns the same execution", status == 200 and again["executionId"] == execution_id, again)

def answer(reply):
    """The reply device-events published (the first message): topic and payload."""
    published = reply.get("published") or [{}]
    return published[0].get("topic", ""), published[0].get("payload", {})


reply = invoke("device-events", "device-in-progress.json", execution_id)
topic, body = answer(reply)
# The API delivered it (QUEUED -> SENT, version 2) before the device answers.
started_version = body.get("executionState", {}).get("versionNumber", 0)
check("cargo lambda invoke device-events: IN_PROGRESS accepted", topic.endswith("/update/accepted") and started_version == 3, reply)
reply = invoke("device-events", "device-succeeded.json", execution_id)
topic, body = answer(reply)
check("cargo lambda invoke device-events: SUCCEEDED accepted", topic.endswith("/update/accepted") and body.get("executionState", {}).get("status") == "SUCCEEDED" and body["executionState"]["versionNumber"] == started_version + 1, reply)
reply = invoke("device-events", "device-succeeded.json", execution_id)
topic, body = answer(reply)
check("the same device update redelivered is applied once", topic.endswith("/update/accepted") and body.get("executionState", {}).get("versionNumber") == started_version + 1 and len(reply.get("published", [])) == 1, reply)

status, final = http("GET", f"/executions/{execution_id}")
check(
    "GET /executions/{id} shows result, reason and timestamps",
    status == 200
    and final["status"] == "SUCCEEDED"
    and final["result"] == {"appliedRate": {"I": 30}, "rebootRequired": {"B": False}}
    and final["statusReason"]["reasonCode"] == "OK"
    and final["startedAt"] <= final["completedAt"]
    and final["timeToLive"] > final["completedAt"],
    final,
)
status, listing = http("GET", "/executions?target=dev-1")
check("GET /executions?target= lists it", status == 200 and [e["executionId"] for e in listing["items"]] == [execution_id], listing)
status, body = http("POST", f"/executions/{execution_id}/cancel")
check("cancelling a finished execution is a 409 TerminalStateReached", status == 409 and body["code"] == "TerminalStateReached", body)

print(f"smoke: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
