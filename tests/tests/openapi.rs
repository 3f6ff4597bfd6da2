//! The contract check itself (`courier_tests::openapi`): it must refuse
//! what is outside the document, or the check on every API answer in the
//! other tests would prove nothing. No I/O.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_functions::entry::api::openapi::DOCUMENT;
use courier_tests::openapi::check;
use serde_json::{json, Value};

#[test]
fn the_document_is_openapi_3_1_and_names_every_route_of_the_router() {
    let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // The router's table (routes.rs's header) lists every route: each one
    // must be in the document with its method.
    let routes = include_str!("../../functions/src/entry/api/routes.rs");
    let mut seen = 0;
    for line in routes
        .lines()
        .filter(|l| l.starts_with("//! | ") && l.contains(" /"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (method, path) = (cells[1].to_ascii_lowercase(), cells[2]);
        let path = path.split('?').next().unwrap();
        assert!(
            doc["paths"][path][&method].is_object(),
            "{method} {path} is routed but not documented"
        );
        seen += 1;
    }
    assert!(seen >= 20, "the routes table was read ({seen} routes)");
}

#[test]
fn a_documented_answer_passes() {
    let health = json!({"status": "ok", "version": "0.1.0"});
    check("GET", "/health", 200, None, &health).unwrap();
}

#[test]
fn a_status_the_operation_does_not_list_is_refused() {
    let err = check("GET", "/health", 418, None, &json!({})).unwrap_err();
    assert!(err.contains("does not list"), "{err}");
}

#[test]
fn a_body_outside_the_schema_is_refused() {
    let err = check("GET", "/health", 200, None, &json!({"status": 5})).unwrap_err();
    assert!(err.contains("does not match"), "{err}");
}

#[test]
fn an_error_with_an_unknown_code_is_refused() {
    let body = json!({"code": "TeapotException", "message": "short and stout", "details": {}});
    let err = check("GET", "/jobs/j-1", 404, None, &body).unwrap_err();
    assert!(err.contains("does not match"), "{err}");
}

#[test]
fn a_missing_required_header_is_refused() {
    let headers = lambda_http::http::HeaderMap::new();
    let body = json!({"code": "ThrottlingException", "message": "slow down", "details": {}});
    let err = check("GET", "/jobs/j-1", 429, Some(&headers), &body).unwrap_err();
    assert!(err.contains("Retry-After"), "{err}");
}

#[test]
fn a_route_that_is_not_documented_may_only_be_refused() {
    check(
        "GET",
        "/nowhere",
        404,
        None,
        &json!({"code": "ResourceNotFoundException"}),
    )
    .unwrap();
    let err = check("GET", "/nowhere", 200, None, &json!({})).unwrap_err();
    assert!(err.contains("not in the document"), "{err}");
}
