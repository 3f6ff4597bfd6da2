"""Conformance: an unmodified AWS IoT Device SDK jobs client against Courier.

The AWS IoT Device SDK v2 for Python (`awsiotsdk`, its `awsiot.iotjobs`
client, not changed in any way) connects to the local mosquitto broker as a
thing, while the functions run with TOPIC_ROOT=$aws/things/{thingName}/jobs
(scripts/test.sh starts that stack). Only the transport differs from AWS IoT
Core: plain MQTT on loopback instead of mutual TLS. The SDK parses every reply
into its own model classes, so a field Courier got wrong fails here. Then a
plain MQTT device does what the AWS IoT OTA library does around its
self-test reboot (`ota_agent_reboot`).

Environment: MQTT_PORT, API_URL.
"""

import json
import os
import sys
import threading
import time
from concurrent.futures import Future

from awscrt import io, mqtt
from awsiot import iotjobs

from report import Report, http

THING = "sdk-device-1"
report = Report()
check = report.check


def show(obj):
    """The SDK's model objects for a failure message (they may use slots)."""
    if obj is None:
        return None
    try:
        return vars(obj)
    except TypeError:
        return {name: getattr(obj, name, None) for name in dir(obj) if not name.startswith("_") and not callable(getattr(obj, name, None))}


def connect():
    bootstrap = io.ClientBootstrap(io.EventLoopGroup(1), io.DefaultHostResolver(io.EventLoopGroup(1)))
    client = mqtt.Client(bootstrap, None)  # no TLS: the local broker
    connection = mqtt.Connection(client=client, host_name="127.0.0.1", port=int(os.environ["MQTT_PORT"]),
                                 client_id=THING, clean_session=True, keep_alive_secs=30)
    connection.connect().result(10)
    return connection


def replies(jobs, subscribe_accepted, subscribe_rejected, request):
    """Subscribes to a request's accepted and rejected topics; returns a
    function that publishes and waits for the first reply."""
    box = {"future": None}

    def on_reply(kind):
        def callback(response):
            if box["future"] is not None and not box["future"].done():
                box["future"].set_result((kind, response))
        return callback

    for subscribe, kind in ((subscribe_accepted, "accepted"), (subscribe_rejected, "rejected")):
        future, _ = subscribe(request=request, qos=mqtt.QoS.AT_LEAST_ONCE, callback=on_reply(kind))
        future.result(10)

    def call(publish, payload):
        box["future"] = Future()
        publish(payload, mqtt.QoS.AT_LEAST_ONCE).result(10)
        return box["future"].result(15)

    return call


def wait_for_status(execution_id, status, seconds=15):
    """Whether the API reads the execution in `status` within `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if http("GET", f"/executions/{execution_id}")[1].get("status") == status:
            return True
        time.sleep(0.2)
    return False


def ota_agent_reboot():
    """What the AWS IoT OTA library (ota-for-aws-iot-embedded-sdk) does around
    its self-test reboot, byte for byte: it subscribes to notify-next alone,
    reports the image ready for self-test, restarts with a clean session,
    asks `$next/get` without subscribing to the reply (AWS IoT Core hands it
    over anyway; this broker does not) and must hear its IN_PROGRESS job
    within 16 s, or it rolls the firmware back. It hears it through the
    lifecycle event of its connection, which AWS IoT Core publishes and
    which a broker of one's own must publish too: published here as the
    broker would."""
    thing = "ota-device"
    jobs_root = f"$aws/things/{thing}/jobs"
    heard = []
    arrived = threading.Event()

    def on_notify_next(topic, payload, **_):
        heard.append(json.loads(payload))
        arrived.set()

    def boot():
        bootstrap = io.ClientBootstrap(io.EventLoopGroup(1), io.DefaultHostResolver(io.EventLoopGroup(1)))
        connection = mqtt.Connection(client=mqtt.Client(bootstrap, None), host_name="127.0.0.1",
                                     port=int(os.environ["MQTT_PORT"]), client_id=thing, clean_session=True,
                                     keep_alive_secs=30)
        connection.connect().result(10)
        connection.subscribe(f"{jobs_root}/notify-next", mqtt.QoS.AT_LEAST_ONCE, on_notify_next)[0].result(10)
        return connection

    http("POST", "/commands", {"commandId": "sdk-ota", "executionTimeoutSeconds": 600})
    status, created = http("POST", "/commands/sdk-ota/executions", {"target": thing})
    check("OTA agent: an update job is started", status == 201, created)
    job_id = created.get("executionId")
    connection = boot()
    connection.publish(f"{jobs_root}/{job_id}/update",
                       '{"status":"IN_PROGRESS","statusDetails":{"self_test":"ready","updatedBy":"0x1000000"}}',
                       mqtt.QoS.AT_LEAST_ONCE)[0].result(10)
    wait_for_status(job_id, "IN_PROGRESS")
    connection.disconnect().result(10)

    heard.clear()
    arrived.clear()
    connection = boot()
    connection.publish(f"$aws/events/presence/connected/{thing}",
                       json.dumps({"clientId": thing, "timestamp": int(time.time() * 1000), "eventType": "connected"}),
                       mqtt.QoS.AT_LEAST_ONCE)[0].result(10)
    connection.publish(f"{jobs_root}/$next/get", f'{{"clientToken":"1:{thing}"}}', mqtt.QoS.AT_LEAST_ONCE)[0].result(10)
    deadline = time.time() + 16
    found = None
    while time.time() < deadline and found is None:
        arrived.wait(0.2)
        found = next((h for h in heard if (h.get("execution") or {}).get("jobId") == job_id), None)
    execution = (found or {}).get("execution") or {}
    check("OTA agent: after its reboot, its connection's lifecycle event brings its job on notify-next within its 16 s self-test window",
          execution.get("status") == "IN_PROGRESS"
          and execution.get("statusDetails") == {"self_test": "ready", "updatedBy": "0x1000000"}, heard)
    connection.publish(f"{jobs_root}/{job_id}/update",
                       '{"status":"SUCCEEDED","statusDetails":{"reason":"accepted  v1.0.1"}}',
                       mqtt.QoS.AT_LEAST_ONCE)[0].result(10)
    check("OTA agent: its SUCCEEDED report is applied", wait_for_status(job_id, "SUCCEEDED"))
    connection.disconnect().result(10)


def main():
    connection = connect()
    jobs = iotjobs.IotJobsClient(connection)
    next_changed = []
    ready = threading.Event()

    def on_next(event):
        next_changed.append(event)
        ready.set()

    jobs.subscribe_to_next_job_execution_changed_events(
        iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=THING), mqtt.QoS.AT_LEAST_ONCE, on_next)[0].result(10)
    list_changed = []
    listed = threading.Event()

    def on_list(event):
        list_changed.append(event)
        listed.set()

    jobs.subscribe_to_job_executions_changed_events(
        iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=THING), mqtt.QoS.AT_LEAST_ONCE, on_list)[0].result(10)
    describe = replies(jobs, jobs.subscribe_to_describe_job_execution_accepted,
                       jobs.subscribe_to_describe_job_execution_rejected,
                       iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=THING, job_id="+"))
    start_next = replies(jobs, jobs.subscribe_to_start_next_pending_job_execution_accepted,
                         jobs.subscribe_to_start_next_pending_job_execution_rejected,
                         iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=THING))
    get_pending = replies(jobs, jobs.subscribe_to_get_pending_job_executions_accepted,
                          jobs.subscribe_to_get_pending_job_executions_rejected,
                          iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=THING))
    update = replies(jobs, jobs.subscribe_to_update_job_execution_accepted,
                     jobs.subscribe_to_update_job_execution_rejected,
                     iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=THING, job_id="+"))

    # Before any work: the AWS IoT OTA agent asks $next/get at start and
    # reads "no active job" from an accepted reply without an execution.
    kind, described = describe(jobs.publish_describe_job_execution,
                               iotjobs.DescribeJobExecutionRequest(thing_name=THING, job_id="$next", client_token="sdk-idle"))
    check("DescribeJobExecution $next with nothing pending: accepted, no execution, clientToken echoed",
          kind == "accepted" and getattr(described, "execution", None) is None
          and described.client_token == "sdk-idle", (kind, show(described)))

    status, _ = http("POST", "/commands", {"commandId": "sdk-reboot", "executionTimeoutSeconds": 600})
    check("command created", status in (200, 201), status)
    status, created = http("POST", "/commands/sdk-reboot/executions", {"target": THING})
    check("execution started", status == 201, created)
    job_id = created.get("executionId")

    # Wait for the notify-next that names the new execution.
    deadline = time.time() + 15
    while time.time() < deadline and not any(e.execution is not None for e in next_changed):
        ready.wait(0.1)
    event = next((e for e in reversed(next_changed) if e.execution is not None), None)
    check("NextJobExecutionChanged parsed by the SDK names the execution",
          event is not None and event.execution is not None and event.execution.job_id == job_id, show(event))

    listed.wait(15)
    event = list_changed[-1] if list_changed else None
    queued = (event.jobs or {}).get("QUEUED", []) if event else []
    check("JobExecutionsChanged (notify) parsed by the SDK lists it QUEUED",
          [j.job_id for j in queued] == [job_id], show(event))

    kind, described = describe(jobs.publish_describe_job_execution,
                               iotjobs.DescribeJobExecutionRequest(thing_name=THING, job_id=job_id, client_token="sdk-describe"))
    execution = getattr(described, "execution", None)
    check("DescribeJobExecution by id accepted with its document, clientToken echoed",
          kind == "accepted" and described.client_token == "sdk-describe" and execution is not None
          and execution.job_id == job_id and execution.status == iotjobs.JobStatus.QUEUED
          and execution.job_document.get("commandId") == "sdk-reboot", (kind, show(described)))
    kind, described = describe(jobs.publish_describe_job_execution,
                               iotjobs.DescribeJobExecutionRequest(thing_name=THING, job_id="$next", include_job_document=False))
    execution = getattr(described, "execution", None)
    check("DescribeJobExecution $next names it, without the document when asked",
          kind == "accepted" and execution is not None and execution.job_id == job_id
          and execution.job_document is None, (kind, show(described)))

    kind, pending = get_pending(jobs.publish_get_pending_job_executions,
                                iotjobs.GetPendingJobExecutionsRequest(thing_name=THING, client_token="sdk-get"))
    check("GetPendingJobExecutions accepted, parsed, clientToken echoed",
          kind == "accepted" and pending.client_token == "sdk-get"
          and [j.job_id for j in pending.queued_jobs] == [job_id], (kind, show(pending)))

    kind, started = start_next(jobs.publish_start_next_pending_job_execution,
                               iotjobs.StartNextPendingJobExecutionRequest(thing_name=THING, step_timeout_in_minutes=5,
                                                                           status_details={"step": "begin"}))
    execution = getattr(started, "execution", None)
    check("StartNextPendingJobExecution claims it IN_PROGRESS with its document",
          kind == "accepted" and execution is not None and execution.job_id == job_id
          and execution.status == iotjobs.JobStatus.IN_PROGRESS
          and execution.job_document.get("commandId") == "sdk-reboot"
          and execution.queued_at is not None and execution.version_number >= 2, (kind, started and show(started)))

    version = execution.version_number if execution else 0
    kind, stale = update(jobs.publish_update_job_execution,
                         iotjobs.UpdateJobExecutionRequest(thing_name=THING, job_id=job_id, status=iotjobs.JobStatus.IN_PROGRESS,
                                                           expected_version=version + 7))
    check("a stale expected_version is rejected VersionMismatch with the current state",
          kind == "rejected" and stale.code == iotjobs.RejectedErrorCode.VERSION_MISMATCH
          and stale.execution_state is not None and stale.execution_state.version_number == version, (kind, show(stale)))

    kind, done = update(jobs.publish_update_job_execution,
                        iotjobs.UpdateJobExecutionRequest(thing_name=THING, job_id=job_id, status=iotjobs.JobStatus.SUCCEEDED,
                                                          expected_version=version, status_details={"step": "done"},
                                                          include_job_execution_state=True))
    check("UpdateJobExecution SUCCEEDED accepted with the new state",
          kind == "accepted" and done.execution_state is not None
          and done.execution_state.status == iotjobs.JobStatus.SUCCEEDED
          and done.execution_state.version_number == version + 1, (kind, show(done)))

    deadline = time.time() + 15
    while time.time() < deadline and not (next_changed and next_changed[-1].execution is None):
        time.sleep(0.1)
    check("NextJobExecutionChanged without an execution once the queue is empty",
          bool(next_changed) and next_changed[-1].execution is None, [show(e) for e in next_changed])
    kind, ended = describe(jobs.publish_describe_job_execution,
                           iotjobs.DescribeJobExecutionRequest(thing_name=THING, job_id=job_id))
    check("DescribeJobExecution of the finished execution is rejected TerminalStateReached",
          kind == "rejected" and ended.code == iotjobs.RejectedErrorCode.TERMINAL_STATE_REACHED, (kind, show(ended)))
    kind, late = update(jobs.publish_update_job_execution,
                        iotjobs.UpdateJobExecutionRequest(thing_name=THING, job_id=job_id, status=iotjobs.JobStatus.FAILED))
    check("an update after the end is rejected InvalidStateTransition with the state",
          kind == "rejected" and late.code == iotjobs.RejectedErrorCode.INVALID_STATE_TRANSITION
          and late.execution_state is not None and late.execution_state.status == iotjobs.JobStatus.SUCCEEDED,
          (kind, show(late)))

    status, read = http("GET", f"/executions/{job_id}")
    check("the API reads it back SUCCEEDED", status == 200 and read.get("status") == "SUCCEEDED", read)
    connection.disconnect().result(10)
    ota_agent_reboot()
    print(f"sdk conformance: {report.passes} passed, {report.failures} failed")
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
