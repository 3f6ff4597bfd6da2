//! Hostile input, black-box over DynamoDB Local: a corpus of 360 bad
//! requests through the API and the device path (broken JSON and UTF-8,
//! wrong types, huge numbers, absurd timeouts, oversized and deeply nested
//! bodies, unknown fields, ids with slashes, unicode and control
//! characters, injection-looking strings, illegal transitions, forged thing
//! names, tampered nextTokens). Every one is answered with a 4xx and a known
//! code, or a device rejection with a meaningful code, never a 5xx, a panic
//! or an internal error; and the table, read back item by item, is exactly
//! what it was before. A failure lists every failing case by number and
//! what it sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use courier_core::Timestamp;
use courier_functions::entry::api::routes as api;
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_tests::{
    api_settings, fresh_courier, http_event, iot_rule_event, send_to_device_events, thing_groups,
    RecordingPublisher,
};
use lambda_http::Body;
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

/// Every code an API refusal may carry.
const API_CODES: &[&str] = &[
    "ValidationException",
    "PayloadTooLargeException",
    "ResourceNotFoundException",
    "MethodNotAllowedException",
    "ConflictException",
    "VersionMismatch",
    "InvalidStateTransition",
    "TerminalStateReached",
    "UnauthorizedException",
    "AccessDeniedException",
];

/// Every code a device rejection may carry for bad input (never
/// InternalError or RequestThrottled).
const DEVICE_CODES: &[&str] = &[
    "InvalidTopic",
    "InvalidJson",
    "InvalidRequest",
    "ResourceNotFound",
    "InvalidStateTransition",
    "VersionMismatch",
    "TerminalStateReached",
];

#[derive(Debug, Clone)]
enum Input {
    Api {
        method: &'static str,
        path: String,
        body: Raw,
    },
    Device {
        topic: String,
        payload: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
enum Raw {
    None,
    Text(String),
    Bytes(Vec<u8>),
}

struct World {
    courier: Courier<DynamoStore>,
    queued: String,
    succeeded: String,
    job: String,
    next_token: String,
}

async fn world() -> World {
    let courier = fresh_courier().await;
    let now = Timestamp::from_secs(NOW);
    courier
        .create_command(
            &json!({"commandId": "set-config", "executionTimeoutSeconds": 3600, "parameters": [
                {"name": "rate", "type": "I", "required": true, "min": 1, "max": 3600},
                {"name": "mode", "type": "S", "enum": ["eco", "normal"]},
                {"name": "blob", "type": "BIN", "maxBytes": 8},
                {"name": "serial", "type": "UL"}
            ]})
            .into(),
            now,
        )
        .await
        .unwrap();
    let start = |target: &'static str| {
        let courier = &courier;
        async move {
            courier
                .start_execution(
                    "set-config",
                    &json!({"target": target, "parameters": {"rate": {"I": 5}}}).into(),
                    "tester",
                    now,
                )
                .await
                .unwrap()
                .0
                .execution_id
                .to_string()
        }
    };
    let queued = start("dev-1").await;
    let succeeded = start("dev-2").await;
    start("dev-1").await;
    courier
        .device_update(
            "dev-2",
            &succeeded,
            &json!({"status": "SUCCEEDED"}).into(),
            courier_functions::ops::device_updates::Delivery::new("done"),
            now,
        )
        .await
        .unwrap();
    let (job, _) = courier
        .create_job(
            &thing_groups().await,
            &json!({"commandId": "set-config", "parameters": {"rate": {"I": 9}}, "targets": {"things": ["dev-7"]}}).into(),
            now,
        )
        .await
        .unwrap();
    let page = courier
        .list_executions(
            &courier_functions::ops::executions::ListExecutions {
                target: Some("dev-1".into()),
                limit: Some("1".into()),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    World {
        courier,
        queued,
        succeeded,
        job: job.job.job_id.to_string(),
        next_token: page.next_token.unwrap(),
    }
}

fn corpus(w: &World) -> Vec<Input> {
    let mut inputs = Vec::new();
    let text = |s: &str| Raw::Text(s.to_owned());
    let json = |v: Value| Raw::Text(v.to_string());
    let mut api = |method: &'static str, path: &str, body: Raw| {
        inputs.push(Input::Api {
            method,
            path: path.to_owned(),
            body,
        });
    };
    let (q, s, j, token) = (&w.queued, &w.succeeded, &w.job, &w.next_token);
    let writes = [
        "/commands".to_owned(),
        "/commands/set-config/executions".to_owned(),
        "/jobs".to_owned(),
        format!("/executions/{q}/cancel"),
        format!("/jobs/{j}/cancel"),
    ];

    // Broken JSON, on every route that takes a body.
    let broken = [
        "{",
        "}",
        "[",
        "nul",
        "{\"a\":}",
        "{'target':'x'}",
        "{\"target\":\"x\",}",
        "NaN",
        "{\"target\": NaN}",
        "// comment\n{}",
        "{\"a\":1}{\"b\":2}",
        "\u{feff}{}",
        "{\"target\":\"dev\u{0}\"",
        "\"just a string\"",
        "12",
        "[]",
        "true",
    ];
    for path in &writes {
        for body in broken {
            api("POST", path, text(body));
        }
    }
    // Invalid UTF-8.
    for bytes in [
        &[0xff, 0xfe][..],
        b"{\"target\": \"\xc3\x28\"}",
        b"\x80",
        b"{\"a\":\"\xed\xa0\x80\"}",
    ] {
        api(
            "POST",
            "/commands/set-config/executions",
            Raw::Bytes(bytes.to_vec()),
        );
        api("POST", "/commands", Raw::Bytes(bytes.to_vec()));
    }
    // Wrong types, huge numbers, absurd timeouts in a start request.
    let bad_starts = [
        json!({"target": 1, "parameters": {"rate": {"I": 5}}}),
        json!({"target": true, "parameters": {"rate": {"I": 5}}}),
        json!({"target": [], "parameters": {"rate": {"I": 5}}}),
        json!({"target": null, "parameters": {"rate": {"I": 5}}}),
        json!({"parameters": {"rate": {"I": 5}}}),
        json!({"target": "d", "parameters": "rate=5"}),
        json!({"target": "d", "parameters": [1]}),
        json!({"target": "d", "parameters": {"rate": 5}}),
        json!({"target": "d", "parameters": {"rate": {"I": "5"}}}),
        json!({"target": "d", "parameters": {"rate": {"S": "5"}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 1.5}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 5, "S": "x"}}}),
        json!({"target": "d", "parameters": {"rate": {}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 2_147_483_648i64}}}),
        json!({"target": "d", "parameters": {"rate": {"I": -9_999_999_999i64}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 0}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}, "serial": {"UL": "18446744073709551616"}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}, "serial": {"UL": "-1"}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}, "serial": {"UL": 5}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}, "blob": {"BIN": "!!!not base64"}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}, "blob": {"BIN": "AAAAAAAAAAAAAAAAAAAAAA=="}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}, "mode": {"S": "turbo"}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}, "nope": {"S": "x"}}}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "executionTimeoutSeconds": "60"}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "executionTimeoutSeconds": -1}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "executionTimeoutSeconds": 0}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "executionTimeoutSeconds": 99_999_999_999i64}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "executionTimeoutSeconds": 1e20}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "notBefore": "tomorrow"}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "notBefore": -5}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "notBefore": 1e30}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "deliveryTimeoutSeconds": -1}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "onTimeout": "EXPLODE"}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "onTimeout": "RETRY", "maxAttempts": 0}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "onTimeout": "RETRY", "maxAttempts": 11}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "timeToLive": -1}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "clientToken": ""}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "clientToken": "has space"}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "clientToken": "x".repeat(65)}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "clientToken": 7}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "clientToken": "nul\u{0}"}),
        json!({"target": "d", "parameters": {"rate": {"I": 5}}, "bogus": 1}),
        json!({"target": "x".repeat(129), "parameters": {"rate": {"I": 5}}}),
        json!({"target": "", "parameters": {"rate": {"I": 5}}}),
    ];
    for body in bad_starts {
        api("POST", "/commands/set-config/executions", json(body));
    }
    // Numbers JSON cannot hold.
    for body in [
        r#"{"target":"d","parameters":{"rate":{"D":1e400}}}"#,
        r#"{"target":"d","parameters":{"rate":{"I":1e400}}}"#,
        r#"{"target":"d","executionTimeoutSeconds":18446744073709551616}"#,
        r#"{"target":"d","executionTimeoutSeconds":-0.0}"#,
    ] {
        api("POST", "/commands/set-config/executions", text(body));
    }
    // Injection-looking and unicode targets, commands, tokens, reasons.
    let nasty = [
        "' OR 1=1 --",
        "${jndi:ldap://x/a}",
        "<script>alert(1)</script>",
        "#pk",
        "attribute_exists(pk)",
        "T#other#EXEC#x",
        "../../etc/passwd",
        "dev\u{202e}1",
        "dév-1",
        "dev 1",
        "dev\n1",
        "dev\u{0}1",
        "dev/1",
        "😀",
    ];
    for n in nasty {
        api(
            "POST",
            "/commands/set-config/executions",
            json(json!({"target": n, "parameters": {"rate": {"I": 5}}})),
        );
        api("POST", "/commands", json(json!({"commandId": n})));
        api(
            "GET",
            &format!("/executions?target={}", urlencode(n)),
            Raw::None,
        );
    }
    for n in [
        "' OR 1=1 --",
        "x".repeat(200).as_str(),
        "a\u{0}b",
        "\u{202e}",
    ] {
        api(
            "POST",
            &format!("/executions/{q}/cancel"),
            json(json!({"statusReason": {"reasonCode": n}})),
        );
    }
    // Ids in paths: slashes, traversal, unicode, control characters, length.
    for id in [
        "a%2Fb",
        "..%2F..%2Fetc",
        "%00",
        "%E2%80%AE",
        "%F0%9F%98%80",
        "x".repeat(300).as_str(),
        "a%23b",
        "T%23x%23EXEC%23y",
        "%20",
        "'%20OR%201=1",
    ] {
        api("GET", &format!("/executions/{id}"), Raw::None);
        api("GET", &format!("/commands/{id}"), Raw::None);
        api("POST", &format!("/executions/{id}/cancel"), Raw::None);
        api("GET", &format!("/jobs/{id}"), Raw::None);
    }
    // Command definitions that define nonsense.
    let bad_definitions = [
        json!({"commandId": "c", "executionTimeoutSeconds": 0}),
        json!({"commandId": "c", "executionTimeoutSeconds": -1}),
        json!({"commandId": "c", "executionTimeoutSeconds": 1_000_000_000_000i64}),
        json!({"commandId": "c", "retentionSeconds": 0}),
        json!({"commandId": "c", "parameters": [{"name": "a b", "type": "S"}]}),
        json!({"commandId": "c", "parameters": [{"name": "a", "type": "S"}, {"name": "a", "type": "S"}]}),
        json!({"commandId": "c", "parameters": [{"name": "a", "type": "I", "min": 5, "max": 1}]}),
        json!({"commandId": "c", "parameters": [{"name": "a", "type": "S", "pattern": "("}]}),
        json!({"commandId": "c", "parameters": [{"name": "a", "type": "S", "enum": []}]}),
        json!({"commandId": "c", "parameters": [{"name": "a", "type": "I", "default": {"S": "x"}}]}),
        json!({"commandId": "c", "parameters": [{"name": "a", "type": "Q"}]}),
        json!({"commandId": "c", "parameters": [{"name": "a", "type": "S", "minLength": 5}], "bogus": true}),
        json!({"commandId": "c", "parameters": (0..101).map(|i| json!({"name": format!("p{i}"), "type": "B"})).collect::<Vec<_>>()}),
        json!({"commandId": "c", "description": "x".repeat(5000)}),
        json!({"commandId": "set-config"}),
    ];
    for body in bad_definitions {
        api("POST", "/commands", json(body));
    }
    // Jobs that cannot be.
    let bad_jobs = [
        json!({"commandId": "set-config"}),
        json!({"commandId": "set-config", "parameters": {"rate": {"I": 1}}, "targets": {"things": []}}),
        json!({"commandId": "set-config", "parameters": {"rate": {"I": 1}}, "targets": {"things": ["a/b"]}}),
        json!({"commandId": "set-config", "parameters": {"rate": {"I": 1}}, "targets": {"things": ["a"], "thingGroup": "g"}}),
        json!({"commandId": "set-config", "parameters": {"rate": {"I": 1}}, "targets": {"thingGroup": "no-such-group"}}),
        json!({"commandId": "set-config", "parameters": {"rate": {"I": 1}}, "targets": {"things": ["a"]}, "jobExecutionsRolloutConfig": {"maximumPerMinute": 0}}),
        json!({"commandId": "set-config", "parameters": {"rate": {"I": 1}}, "targets": {"things": ["a"]}, "jobExecutionsRolloutConfig": {"maximumPerMinute": 1e12}}),
        json!({"commandId": "set-config", "parameters": {"rate": {"I": 1}}, "targets": {"things": ["a"]}, "abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 101, "minNumberOfExecutedThings": 1}]}}),
        json!({"commandId": "set-config", "parameters": {"rate": {"I": 1}}, "targets": {"things": ["a"]}, "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 11}]}}),
        json!({"commandId": "set-config", "parameters": {"rate": {"I": 1}}, "targets": {"things": ["a"]}, "schedulingConfig": {"startTime": NOW + 100, "endTime": NOW + 50}}),
        json!({"commandId": "set-config", "parameters": {"rate": {"I": 99999}}, "targets": {"things": ["a"]}}),
        json!({"commandId": "no-such-command", "targets": {"things": ["a"]}}),
    ];
    for body in bad_jobs {
        api("POST", "/jobs", json(body));
    }
    // Deep nesting and oversized bodies.
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    api("POST", "/commands/set-config/executions", text(&deep));
    api("POST", "/jobs", text(&deep));
    let nested_param = format!(
        r#"{{"target":"d","parameters":{{"rate":{}5{}}}}}"#,
        "{\"I\":".repeat(3000),
        "}".repeat(3000)
    );
    api(
        "POST",
        "/commands/set-config/executions",
        text(&nested_param),
    );
    let big = "x".repeat(140 * 1024);
    for path in &writes {
        api("POST", path, json(json!({"target": "d", "padding": big})));
    }
    // Illegal transitions and stale versions through the API.
    api("POST", &format!("/executions/{s}/cancel"), Raw::None);
    api(
        "POST",
        &format!("/executions/{q}/cancel"),
        json(json!({"expectedVersion": 99})),
    );
    api(
        "POST",
        &format!("/executions/{q}/cancel"),
        json(json!({"expectedVersion": -1})),
    );
    api(
        "POST",
        &format!("/executions/{q}/cancel"),
        json(json!({"force": "yes"})),
    );
    api(
        "POST",
        "/executions/00000000-0000-4000-8000-000000000000/cancel",
        Raw::None,
    );
    // Tampered, replayed and absurd nextTokens; bad query values.
    let flipped = {
        let mut t = token.clone().into_bytes();
        t[3] = if t[3] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    for t in [
        flipped.as_str(),
        &token[..token.len() / 2],
        &format!("{token}x"),
        ".",
        "eyJwayI6IlQjZGVmYXVsdCNFWEVDI3gifQ.AAAA",
        &"A".repeat(5000),
    ] {
        api(
            "GET",
            &format!("/executions?target=dev-1&nextToken={}", urlencode(t)),
            Raw::None,
        );
    }
    api(
        "GET",
        &format!(
            "/executions?commandId=set-config&nextToken={}",
            urlencode(token)
        ),
        Raw::None,
    );
    api(
        "GET",
        &format!("/jobs?nextToken={}", urlencode(token)),
        Raw::None,
    );
    for query in [
        "limit=0",
        "limit=-1",
        "limit=101",
        "limit=1e9",
        "limit=abc",
        "status=bogus",
        "status=",
        "target=dev-1&commandId=set-config",
        "",
        "commandId=set-config&limit=99999999999999999999",
    ] {
        api("GET", &format!("/executions?{query}"), Raw::None);
    }
    api(
        "GET",
        &format!("/executions/{q}?includeResult=maybe"),
        Raw::None,
    );
    api(
        "GET",
        &format!("/jobs/{j}/executions?status=bogus"),
        Raw::None,
    );
    api("GET", "/jobs?limit=0", Raw::None);
    // Methods and routes that do not exist.
    for (method, path) in [
        ("DELETE", "/commands"),
        ("PUT", "/executions/x"),
        ("PATCH", "/jobs"),
        ("GET", "/nope"),
        ("POST", "/health"),
        ("GET", "/commands/set-config/executions/extra"),
        ("DELETE", &format!("/jobs/{j}") as &str),
    ] {
        api(method, path, Raw::None);
    }

    // ---- the device path ----
    let root = "courier/things";
    let mut device = |topic: String, payload: &[u8]| {
        inputs.push(Input::Device {
            topic,
            payload: payload.to_vec(),
        });
    };
    for topic in [
        format!("{root}/dev-1/jobs/bogus"),
        format!("{root}/dev-1/jobs/x/y/z"),
        format!("{root}/dev-1/jobs/{q}/update/accepted"),
        format!("{root}/{}/jobs/get", "x".repeat(200)),
        format!("{root}/dev#1/jobs/get"),
        format!("{root}//jobs/get"),
        format!("{root}/dev-1/jobs//update"),
        format!("{root}/dev-1/jobs/a%2Fb/update"),
        format!("{root}/dev\u{0}1/jobs/get"),
        format!("{root}/dev-1/jobs/{}/get", "y".repeat(100)),
        "elsewhere/dev-1/jobs/get".to_owned(),
        "$aws/things/dev-1/jobs/get".to_owned(),
    ] {
        device(topic, b"{}");
    }
    let update = format!("{root}/dev-1/jobs/{q}/update");
    for payload in [
        &b"{"[..],
        b"nul",
        b"\xff\xfe",
        b"[1,2]",
        b"\"SUCCEEDED\"",
        b"42",
        b"{\"status\": \"\xc3\x28\"}",
        br#"{"status": 5}"#,
        br#"{"status": "bogus"}"#,
        br#"{"status": "succeeded"}"#,
        br#"{"status": "CANCELED"}"#,
        br#"{"status": "QUEUED"}"#,
        br#"{"status": "SENT"}"#,
        br#"{"status": "IN_PROGRESS", "statusDetails": "x"}"#,
        br#"{"status": "IN_PROGRESS", "statusDetails": {"a": 1}}"#,
        br#"{"status": "IN_PROGRESS", "expectedVersion": "v1"}"#,
        br#"{"status": "IN_PROGRESS", "expectedVersion": -1}"#,
        br#"{"status": "IN_PROGRESS", "expectedVersion": 1e30}"#,
        br#"{"status": "IN_PROGRESS", "expectedVersion": 99}"#,
        br#"{"status": "IN_PROGRESS", "executionNumber": "x"}"#,
        br#"{"status": "IN_PROGRESS", "executionNumber": 7}"#,
        br#"{"status": "IN_PROGRESS", "stepTimeoutInMinutes": -1}"#,
        br#"{"status": "IN_PROGRESS", "stepTimeoutInMinutes": 1e9}"#,
        br#"{"status": "SUCCEEDED", "result": {"x": 5}}"#,
        br#"{"status": "SUCCEEDED", "result": {"x": {"I": "five"}}}"#,
        br#"{"status": "FAILED", "statusReason": {"reasonCode": 5}}"#,
        br#"{"status": "FAILED", "statusReason": "disk"}"#,
        // Unknown fields are ignored on the device path (as AWS IoT Jobs
        // does), so they come with a refusal of their own here.
        br#"{"status": "DONE", "bogus": true}"#,
        br#"{}"#,
    ] {
        device(update.clone(), payload);
    }
    // Forged thing names: another device, on its own topic, about dev-1's execution.
    for thing in ["dev-9", "dev-2", "DEV-1", "dev-1 ", "dev-1x"] {
        device(
            format!("{root}/{thing}/jobs/{q}/update"),
            br#"{"status": "SUCCEEDED"}"#,
        );
        device(format!("{root}/{thing}/jobs/{q}/get"), b"{}");
    }
    // Illegal transitions on an ended execution.
    for status in ["IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"] {
        device(
            format!("{root}/dev-2/jobs/{s}/update"),
            json!({"status": status}).to_string().as_bytes(),
        );
    }
    // Describes of what is not there, start-next bodies that do not parse.
    device(
        format!("{root}/dev-1/jobs/{q}/get"),
        br#"{"executionNumber": 9}"#,
    );
    device(
        format!("{root}/dev-1/jobs/00000000-0000-4000-8000-000000000000/get"),
        b"{}",
    );
    device(
        format!("{root}/dev-1/jobs/no-such-id/update"),
        br#"{"status": "IN_PROGRESS"}"#,
    );
    // (`$next/get` on a device with nothing pending is not refused: AWS
    // answers it `accepted` without an execution; device_protocol.rs.)
    // `$next` names no execution to update.
    device(
        format!("{root}/dev-3/jobs/$next/update"),
        br#"{"status": "SUCCEEDED"}"#,
    );
    for payload in [
        &br#"{"statusDetails": "x"}"#[..],
        br#"{"statusDetails": {"a": {"b": 1}}}"#,
        br#"{"stepTimeoutInMinutes": "soon"}"#,
        br#"{"stepTimeoutInMinutes": -5}"#,
        b"[]",
        b"{\"clientToken\": 5}",
    ] {
        device(format!("{root}/dev-1/jobs/start-next"), payload);
    }
    inputs
}

fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Every item in the table, sorted: what must not change.
async fn snapshot(courier: &Courier<DynamoStore>) -> Vec<String> {
    let client = courier_tests::client().await;
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(courier.store().table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        // As JSON with sorted keys: a canonical form of each item.
        items.extend(out.items().iter().map(|item| {
            let value: Value = serde_dynamo::from_item(item.clone()).unwrap();
            value.to_string()
        }));
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    items.sort();
    items
}

/// A case's name in the report: its number and what it sends.
fn case_name(n: usize, input: &Input) -> String {
    let shown = |raw: &[u8]| {
        let text = String::from_utf8_lossy(raw);
        let cut: String = text.chars().take(60).collect();
        if cut.len() < text.len() {
            format!("{cut:?}…")
        } else {
            format!("{cut:?}")
        }
    };
    match input {
        Input::Api { method, path, body } => {
            let body = match body {
                Raw::None => "no body".to_owned(),
                Raw::Text(text) => shown(text.as_bytes()),
                Raw::Bytes(bytes) => format!("{} raw bytes", bytes.len()),
            };
            format!("#{n} {method} {} with {body}", shown(path.as_bytes()))
        }
        Input::Device { topic, payload } => {
            format!(
                "#{n} device {} with {}",
                shown(topic.as_bytes()),
                shown(payload)
            )
        }
    }
}

/// Sends one case; `Ok(true)` if it was an API event API Gateway could
/// deliver (or a device message), `Err` saying what was wrong with the answer.
async fn run_case(
    w: &World,
    n: usize,
    input: &Input,
    settings: &courier_functions::entry::api::routes::ApiSettings,
    groups: &courier_functions::platform::thing_groups::IotThingGroups,
) -> Result<bool, String> {
    let now = Timestamp::from_secs(NOW + 10);
    match input {
        Input::Api { method, path, body } => {
            let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
            let mut event = http_event(method, &format!("{path_only}?{query}"), None);
            event["rawPath"] = json!(path_only);
            match body {
                Raw::None => {}
                Raw::Text(text) => event["body"] = json!(text),
                Raw::Bytes(bytes) => {
                    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                    event["isBase64Encoded"] = json!(true);
                }
            }
            // Not an event API Gateway could send (a raw path it would
            // have refused): counted, and kept rare by the caller.
            let Ok(request) = lambda_http::request::from_str(&event.to_string()) else {
                return Ok(false);
            };
            let publisher = RecordingPublisher::default();
            let response = api::handle(&w.courier, groups, &publisher, settings, request, now)
                .await
                .map_err(|e| format!("the handler failed: {e}"))?;
            let status = response.status().as_u16();
            let body: Value = match response.body() {
                Body::Text(t) => {
                    serde_json::from_str(t).map_err(|e| format!("body not JSON: {e}"))?
                }
                other => return Err(format!("body {other:?}")),
            };
            let code = body["code"].as_str().unwrap_or_default();
            if !(400..500).contains(&status) {
                return Err(format!("answered {status} {body}"));
            }
            if !API_CODES.contains(&code) {
                return Err(format!("code {code:?} is not an API refusal code: {body}"));
            }
            if body["message"].as_str().is_none_or(str::is_empty) || !body["details"].is_object() {
                return Err(format!("no message or details: {body}"));
            }
            Ok(true)
        }
        Input::Device { topic, payload } => {
            let publisher = RecordingPublisher::default();
            let mut event = iot_rule_event(topic, &Value::Null);
            event["payload"] = json!(base64::engine::general_purpose::STANDARD.encode(payload));
            send_to_device_events(&w.courier, &publisher, &event, &format!("hostile-{n}"), now)
                .await
                .map_err(|e| format!("the handler failed: {e:?}"))?;
            let sent = publisher.take();
            if !topic.starts_with("courier/things/") {
                return match sent.as_slice() {
                    [] => Ok(true),
                    _ => Err(format!("answered outside the root: {sent:?}")),
                };
            }
            for (reply_topic, reply) in &sent {
                if !reply_topic.ends_with("/rejected") {
                    return Err(format!("accepted: {reply_topic} {reply}"));
                }
                let code = reply["code"].as_str().unwrap_or_default();
                if !DEVICE_CODES.contains(&code) {
                    return Err(format!(
                        "code {code:?} is not a device rejection code: {reply}"
                    ));
                }
            }
            Ok(true)
        }
    }
}

/// The whole corpus, each case reported by name: every one refused with a
/// 4xx and a known code (or a device rejection), and nothing written.
#[tokio::test]
async fn hostile_inputs_are_refused_cleanly_and_write_nothing() {
    let w = world().await;
    let inputs = corpus(&w);
    let before = snapshot(&w.courier).await;
    let settings = api_settings(true);
    let groups = thing_groups().await;
    let (mut api_count, mut device_count, mut undeliverable) = (0, 0, 0);
    let mut failures = Vec::new();
    for (n, input) in inputs.iter().enumerate() {
        match input {
            Input::Api { .. } => api_count += 1,
            Input::Device { .. } => device_count += 1,
        }
        match run_case(&w, n, input, &settings, &groups).await {
            Ok(true) => {}
            Ok(false) => undeliverable += 1,
            Err(why) => failures.push(format!("{}: {why}", case_name(n, input))),
        }
    }
    eprintln!(
        "{} cases: {api_count} API inputs ({undeliverable} not deliverable as events), {device_count} device inputs",
        inputs.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
    // The corpus stays what the README says it is.
    assert!(
        inputs.len() >= 360 && api_count - undeliverable >= 150 && device_count >= 50,
        "{} cases: {api_count} API ({undeliverable} undeliverable), {device_count} device inputs",
        inputs.len()
    );

    // THEN the table holds exactly what it held before
    let after = snapshot(&w.courier).await;
    assert_eq!(after.len(), before.len(), "items were added or removed");
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a, b, "an item changed");
    }
}
