"""Conformance: the AWS IoT commands device protocol, with the AWS developer
guide's example payloads verbatim, over a real MQTT client.

No unmodified commands client is published for Python or npm (the Python
Device SDK has none), so this device is a plain MQTT client (awscrt's, from
the `awsiotsdk` install) speaking exactly the topics and payloads AWS
documents, under the `$aws/commands/things/{thingName}` root and with status
events under `$aws/events/commandExecution` (scripts/test.sh starts that
stack). The device is offline when the execution is started: its request
waits in its persistent MQTT session (QoS 1) and arrives when it reconnects.
A second device, over MQTT 5, does what the Java Device SDK's commands
client (IotCommandsV2Client) does: it reads the content type and the timeout
from the request's MQTT 5 properties and sends Gson's rendering of its
update request.

Environment: MQTT_PORT, API_URL.
"""

import base64
import json
import os
import queue
import sys
import time

from awscrt import io, mqtt, mqtt5

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


def java_sdk_device():
    """An MQTT 5 device that does exactly what the AWS IoT Device SDK's
    commands client (aws-iot-device-sdk-java-v2, IotCommandsV2Client) does:
    it subscribes to .../executions/+/request/json, takes the execution id
    from the topic's sixth segment, the content type and the timeout from
    the MQTT 5 properties, and answers with Gson's rendering of its
    UpdateCommandExecutionRequest (deviceType, deviceId, executionId, and a
    byte[] result as an array of signed numbers)."""
    thing = "My_Truck"
    root = f"$aws/commands/things/{thing}"
    received = queue.Queue()
    connected = queue.Queue()

    def on_publish(data):
        packet = data.publish_packet
        received.put((packet.topic, bytes(packet.payload), packet.content_type, packet.message_expiry_interval_sec))

    client = mqtt5.Client(mqtt5.ClientOptions(
        host_name="127.0.0.1", port=int(os.environ["MQTT_PORT"]),
        connect_options=mqtt5.ConnectPacket(client_id=thing, keep_alive_interval_sec=30),
        on_publish_callback_fn=on_publish,
        on_lifecycle_event_connection_success_fn=lambda _: connected.put(True)))
    client.start()
    connected.get(timeout=10)
    client.subscribe(mqtt5.SubscribePacket(subscriptions=[
        mqtt5.Subscription(topic_filter=f"{root}/executions/+/request/json", qos=mqtt5.QoS.AT_LEAST_ONCE),
        mqtt5.Subscription(topic_filter=f"{root}/executions/+/response/accepted/json", qos=mqtt5.QoS.AT_LEAST_ONCE),
        mqtt5.Subscription(topic_filter=f"{root}/executions/+/response/rejected/json", qos=mqtt5.QoS.AT_LEAST_ONCE),
    ])).result(10)

    http("POST", "/commands", {"commandId": "unlock", "protocol": "commands", "executionTimeoutSeconds": 120})
    status, created = http("POST", "/commands/unlock/executions", {"target": thing})
    check("MQTT 5 device: an execution is started", status == 201, created)
    execution_id = created.get("executionId")

    def next_on(suffix):
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                message = received.get(timeout=max(0.05, deadline - time.time()))
            except queue.Empty:
                break
            if message[0].endswith(suffix):
                return message
        return None

    request = next_on("/request/json")
    topic, payload, content_type, expiry = request or ("", b"", None, None)
    check("MQTT 5 device: the request's topic names the execution at segment 5, as the SDK reads it",
          topic.split("/")[5:6] == [execution_id], topic)
    check("MQTT 5 device: the request carries content type application/json (the SDK's event.contentType)",
          content_type == "application/json", content_type)
    check("MQTT 5 device: the request expires with the execution's timeout (the SDK's event.timeout)",
          expiry is not None and 100 <= expiry <= 120, expiry)
    check("MQTT 5 device: the payload is the command's document",
          json.loads(payload or b"null") == {"commandId": "unlock", "parameters": {}}, payload)

    gson_update = json.dumps({
        "deviceType": "things", "deviceId": thing, "executionId": execution_id, "status": "SUCCEEDED",
        "statusReason": {"reasonCode": "OK", "reasonDescription": "unlocked"},
        "result": {"log": {"bin": [104, 105, -1]}, "locked": {"b": False}},
    })
    client.publish(mqtt5.PublishPacket(topic=f"{root}/executions/{execution_id}/response/json", payload=gson_update,
                                       qos=mqtt5.QoS.AT_LEAST_ONCE)).result(10)
    reply = next_on("/response/accepted/json") if execution_id else None
    check("MQTT 5 device: the Java SDK's update (deviceType, bin as numbers) is accepted with {executionId}",
          reply is not None and json.loads(reply[1]) == {"executionId": execution_id}, reply)
    status, read = http("GET", f"/executions/{execution_id}")
    check("MQTT 5 device: the API reads it SUCCEEDED with the bytes as BIN",
          status == 200 and read.get("status") == "SUCCEEDED"
          and read.get("result") == {"log": {"BIN": "aGn/"}, "locked": {"B": False}}, read)

    # The SDK's other two request streams: the format-less one (a static
    # payload of any content type, as `aws iot create-command --payload`
    # defines it) and CBOR (a template whose preprocessor says CBOR).
    client.subscribe(mqtt5.SubscribePacket(subscriptions=[
        mqtt5.Subscription(topic_filter=f"{root}/executions/+/request", qos=mqtt5.QoS.AT_LEAST_ONCE),
        mqtt5.Subscription(topic_filter=f"{root}/executions/+/request/cbor", qos=mqtt5.QoS.AT_LEAST_ONCE),
    ])).result(10)
    firmware = bytes([0x7f, 0x45, 0x4c, 0x46, 0x00, 0xff])
    status, body = http("POST", "/commands", {
        "commandId": "flash-blob", "namespace": "AWS-IoT", "displayName": "Flash blob",
        "payload": {"content": base64.b64encode(firmware).decode(), "contentType": "application/octet-stream"}})
    check("a static payload command (AWS's CreateCommand form) is created", status == 201, body)
    status, created = http("POST", "/commands/flash-blob/executions", {"target": thing})
    request = next_on(f"/executions/{created.get('executionId')}/request")
    check("MQTT 5 device: a binary static payload arrives unchanged on the format-less .../request, typed by its content type",
          request is not None and request[1] == firmware and request[2] == "application/octet-stream", request)
    http("POST", "/commands", {
        "commandId": "dim-cbor", "protocol": "commands",
        "payloadTemplate": '{"level": ${aws:iot:commandexecution::parameter:level}}',
        "preprocessor": {"awsJsonSubstitution": {"outputFormat": "CBOR"}},
        "parameters": [{"name": "level", "type": "I", "required": True}]})
    status, created = http("POST", "/commands/dim-cbor/executions", {"target": thing, "parameters": {"level": {"I": 500}}})
    request = next_on(f"/executions/{created.get('executionId')}/request/cbor")
    check("MQTT 5 device: a CBOR template's request arrives on .../request/cbor as CBOR ({\"level\": 500})",
          request is not None and request[1] == bytes.fromhex("a1656c6576656c1901f4")
          and request[2] == "application/cbor", request)

    # A device that writes its answer in CBOR too: {"status": "SUCCEEDED"}.
    cbor_id = created.get("executionId", "")
    client.subscribe(mqtt5.SubscribePacket(subscriptions=[
        mqtt5.Subscription(topic_filter=f"{root}/executions/+/response/accepted/cbor", qos=mqtt5.QoS.AT_LEAST_ONCE),
    ])).result(10)
    succeeded = bytes([0xa1, 0x66]) + b"status" + bytes([0x69]) + b"SUCCEEDED"
    client.publish(mqtt5.PublishPacket(topic=f"{root}/executions/{cbor_id}/response/cbor", payload=succeeded,
                                       qos=mqtt5.QoS.AT_LEAST_ONCE)).result(10)
    reply = next_on(f"/executions/{cbor_id}/response/accepted/cbor")
    expected = bytes([0xa1, 0x6b]) + b"executionId" + bytes([0x78, len(cbor_id)]) + cbor_id.encode()
    check("MQTT 5 device: a CBOR response is accepted in CBOR on .../response/accepted/cbor",
          reply is not None and reply[1] == expected and reply[2] == "application/cbor", reply)
    status, read = http("GET", f"/executions/{cbor_id}")
    check("MQTT 5 device: the API reads the CBOR-answered execution SUCCEEDED",
          status == 200 and read.get("status") == "SUCCEEDED", read)
    client.stop()


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
    java_sdk_device()
    print(f"commands conformance: {report.passes} passed, {report.failures} failed")
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
