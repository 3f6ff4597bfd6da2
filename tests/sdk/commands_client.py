"""Conformance: the AWS IoT commands device protocol, with the AWS developer
guide's example payloads verbatim, over a real MQTT client.

No unmodified commands client is published for Python or npm (the Python
Device SDK has none), so this device is a plain MQTT client (awscrt's, from
the `awsiotsdk` install) speaking exactly the topics and payloads AWS
documents, under the `$aws/commands/things/{thingName}` root and with status
events under `$aws/events/commandExecution` (scripts/test.sh starts that
stack). The device is offline when the execution is started: its request
waits in its persistent MQTT session (QoS 1) and arrives when it reconnects.

Environment: MQTT_PORT, API_URL.
"""

import json
import os
import queue
import sys
import time

from awscrt import io, mqtt

from report import Report, http

THING = "My_Car"
ROOT = f"$aws/commands/things/{THING}"
EVENTS = "$aws/events/commandExecution"
report = Report()
check = report.check

# Verbatim from the AWS IoT developer guide, "Update the result of a command
# execution" (iot-remote-command-execution-start-monitor.html).
IN_PROGRESS_EXAMPLE = """{
  "status": "IN_PROGRESS",
  "statusReason": {
    "reasonCode": "200",
    "reasonDescription": "Execution_in_progress"
  },
  "result": {
        "car_battery": {
            "s": "car battery at 50 percent"
        }
    }
}"""
FAILED_EXAMPLE = """{
  "deviceId": "My_Car",
  "executionId": "07e4b780-7eca-4ffd-b772-b76358da5542",
  "status": "FAILED",
  "statusReason": {
    "reasonCode": "CAR_LOW_ON_BATTERY",
    "reasonDescription": "Car battery is lower than 5 percent"
  }
}"""


inbox = queue.Queue()


def on_message(topic, payload, **_):
    try:
        body = json.loads(payload)
    except ValueError:
        body = payload.decode(errors="replace")
    inbox.put((topic, body))


def connect():
    """The device's connection: the same client id with a persistent session
    (clean_session=False), so what is published while it is away waits."""
    bootstrap = io.ClientBootstrap(io.EventLoopGroup(1), io.DefaultHostResolver(io.EventLoopGroup(1)))
    connection = mqtt.Connection(client=mqtt.Client(bootstrap, None), host_name="127.0.0.1",
                                 port=int(os.environ["MQTT_PORT"]), client_id=THING, clean_session=False,
                                 keep_alive_secs=30, on_connection_interrupted=None)
    connection.on_message(on_message)
    connection.connect().result(10)
    return connection


def wait_for(predicate, seconds=15):
    """The first message (topic, body) for which predicate holds, or None;
    the others stay for later waits."""
    deadline = time.time() + seconds
    kept, found = [], None
    while time.time() < deadline and found is None:
        try:
            message = inbox.get(timeout=max(0.05, deadline - time.time()))
        except queue.Empty:
            break
        if predicate(*message):
            found = message
        else:
            kept.append(message)
    for message in kept:
        inbox.put(message)
    return found


def main():
    # The device subscribes once, as AWS's workflow page lists, and goes away.
    connection = connect()
    for topic in (f"{ROOT}/executions/+/request/json", f"{ROOT}/executions/+/response/accepted/json",
                  f"{ROOT}/executions/+/response/rejected/json", f"{EVENTS}/#"):
        connection.subscribe(topic, mqtt.QoS.AT_LEAST_ONCE)[0].result(10)
    connection.disconnect().result(10)

    status, _ = http("POST", "/commands", {"commandId": "set-power", "protocol": "commands", "executionTimeoutSeconds": 600,
                                           "parameters": [{"name": "powerStatus", "type": "S", "enum": ["ON", "OFF"]}]})
    check("a commands-protocol command is created", status in (200, 201), status)
    status, created = http("POST", "/commands/set-power/executions",
                           {"target": THING, "parameters": {"powerStatus": {"S": "ON"}}})
    check("an execution is started while the device is offline", status == 201, created)
    execution_id = created.get("executionId")
    time.sleep(2)  # the dispatcher publishes it meanwhile

    connection = connect()
    request = wait_for(lambda topic, _: topic == f"{ROOT}/executions/{execution_id}/request/json")
    check("the request waited in the persistent session and arrives on .../request/json",
          request is not None and request[1] == {"commandId": "set-power", "parameters": {"powerStatus": {"S": "ON"}}},
          request)

    response = f"{ROOT}/executions/{execution_id}/response/json"
    connection.publish(response, IN_PROGRESS_EXAMPLE, mqtt.QoS.AT_LEAST_ONCE)[0].result(10)
    accepted = wait_for(lambda topic, _: topic.endswith(f"/{execution_id}/response/accepted/json"))
    check("the guide's IN_PROGRESS example is accepted with {executionId}",
          accepted is not None and accepted[1] == {"executionId": execution_id}, accepted)

    connection.publish(response, FAILED_EXAMPLE, mqtt.QoS.AT_LEAST_ONCE)[0].result(10)
    accepted = wait_for(lambda topic, _: topic.endswith(f"/{execution_id}/response/accepted/json"))
    check("the guide's FAILED example is accepted", accepted is not None, accepted)

    connection.publish(response, '{"status": "REJECTED"}', mqtt.QoS.AT_LEAST_ONCE)[0].result(10)
    rejected = wait_for(lambda topic, _: topic.endswith(f"/{execution_id}/response/rejected/json"))
    body = rejected[1] if rejected else {}
    check("an update after the end is rejected TerminalStateReached",
          body.get("error") == "TerminalStateReached" and body.get("executionId") == execution_id
          and "FAILED" in body.get("errorMessage", ""), rejected)

    seen = {}
    for wanted in ("CREATED", "IN_PROGRESS", "FAILED"):
        event = wait_for(lambda topic, b, wanted=wanted: topic == f"{EVENTS}/set-power/{wanted}"
                         and isinstance(b, dict) and b.get("executionId") == execution_id)
        seen[wanted] = event[1] if event else None
    failed = seen.get("FAILED") or {}
    check("status events CREATED, IN_PROGRESS and FAILED on $aws/events/commandExecution/{commandId}/{status}",
          all(seen.values()), seen)
    check("the FAILED event has AWS's fields",
          failed.get("eventType") == "COMMAND_EXECUTION" and failed.get("status") == "FAILED"
          and failed.get("statusReason", {}).get("reasonCode") == "CAR_LOW_ON_BATTERY"
          and failed.get("commandArn", "").endswith(":command/set-power")
          and failed.get("targetArn", "").endswith(f":thing/{THING}")
          and isinstance(failed.get("timestamp"), int), failed)

    status, read = http("GET", f"/executions/{execution_id}")
    check("the API reads it back FAILED with the device's reason and result",
          status == 200 and read.get("status") == "FAILED"
          and read.get("statusReason", {}).get("reasonCode") == "CAR_LOW_ON_BATTERY"
          and read.get("result", {}).get("car_battery") == {"S": "car battery at 50 percent"}, read)
    connection.disconnect().result(10)
    print(f"commands conformance: {report.passes} passed, {report.failures} failed")
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
