//! THE CONTRACT CHECK: every answer the API tests receive is checked
//! against the OpenAPI document the API serves
//! (`courier_functions::entry::api::openapi::DOCUMENT`): the route must be
//! documented, the status listed for it, the body valid against that
//! status's schema (JSON Schema 2020-12, the `jsonschema` crate), and the
//! headers it requires present. So the document cannot drift from the code
//! without a test failing. No I/O.

use courier_functions::entry::api::openapi::DOCUMENT;
use jsonschema::Validator;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(DOCUMENT).expect("openapi.json is JSON"))
}

/// The path template that `path` matches (a literal segment beats a
/// parameter, as API Gateway routes).
fn template(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let paths = document()["paths"].as_object()?;
    paths
        .keys()
        .filter_map(|t| {
            let parts: Vec<&str> = t.split('/').filter(|s| !s.is_empty()).collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literals = 0;
            for (p, s) in parts.iter().zip(&segments) {
                if p.starts_with('{') {
                    continue;
                }
                if p != s {
                    return None;
                }
                literals += 1;
            }
            Some((literals, t.as_str()))
        })
        .max_by_key(|(literals, _)| *literals)
        .map(|(_, t)| t)
}

/// A JSON pointer's escaping of one token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A validator for the schema at `pointer`, compiled once: the document is
/// the root, so its `#/components/...` references resolve.
fn validator(pointer: &str) -> Result<Arc<Validator>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().map_err(|e| e.to_string())?.get(pointer) {
        return Ok(v.clone());
    }
    let mut root = document().clone();
    // A URI fragment: the template's braces percent-encoded.
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    root["$ref"] = Value::from(format!("#{fragment}"));
    root["$schema"] = Value::from("https://json-schema.org/draft/2020-12/schema");
    let compiled = Arc::new(
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?,
    );
    cache
        .lock()
        .map_err(|e| e.to_string())?
        .insert(pointer.to_owned(), compiled.clone());
    Ok(compiled)
}

/// Whether `method path` answered with `status`, `headers` and `body` is
/// what the document says; why not otherwise.
pub fn check(
    method: &str,
    path: &str,
    status: u16,
    headers: Option<&lambda_http::http::HeaderMap>,
    body: &Value,
) -> Result<(), String> {
    let path = path.split('?').next().unwrap_or(path);
    let method = method.to_ascii_lowercase();
    let Some(template) = template(path) else {
        // An undocumented path must be refused as one (404 or 405).
        return match status {
            404 | 405 if body["code"].is_string() => Ok(()),
            _ => Err(format!(
                "{path} is not in the document, yet answered {status}"
            )),
        };
    };
    let operation = &document()["paths"][template][&method];
    if operation.is_null() {
        return match status {
            405 if body["code"] == "MethodNotAllowedException" => Ok(()),
            _ => Err(format!(
                "{method} {template} is not documented, yet answered {status}"
            )),
        };
    }
    let responses = &operation["responses"];
    let (key, response) = match responses.get(status.to_string()) {
        Some(r) => (status.to_string(), r),
        None => match responses.get("default") {
            Some(r) => ("default".to_owned(), r),
            None => {
                return Err(format!(
                "{method} {template} answered {status}, which the document does not list: {body}"
            ))
            }
        },
    };
    let response = resolve(response);
    let base = format!("/paths/{}/{method}/responses/{key}", escape(template));
    for (name, header) in response["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|_| headers.is_some())
    {
        let header = resolve(header);
        if header["required"] == true
            && !headers.is_some_and(|h| h.contains_key(name.to_ascii_lowercase().as_str()))
        {
            return Err(format!(
                "{method} {template} {status}: the header {name} is required but missing"
            ));
        }
    }
    let content = &response["content"]["application/json"];
    if content.is_null() {
        return match body {
            Value::Null => Ok(()),
            _ => Err(format!(
                "{method} {template} {status} has no body in the document, yet sent {body}"
            )),
        };
    }
    // The schema is reached through the response as written (a $ref to
    // components/responses, or inline).
    let pointer = match operation["responses"][&key]["$ref"].as_str() {
        Some(r) => format!("{}/content/application~1json/schema", &r[1..]),
        None => format!("{base}/content/application~1json/schema"),
    };
    let validator = validator(&pointer)?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{method} {template} {status}: the body does not match the document:\n  {}\nbody: {body}",
            errors.join("\n  ")
        ))
    }
}

/// A `$ref` to `#/components/...` followed once.
fn resolve(value: &'static Value) -> &'static Value {
    match value["$ref"].as_str() {
        Some(r) => document().pointer(&r[1..]).unwrap_or(&Value::Null),
        None => value,
    }
}

/// [`check`], failing the test with the reason (`headers` when the caller
/// sees them).
pub fn assert_documented(
    method: &str,
    path: &str,
    status: u16,
    headers: Option<&lambda_http::http::HeaderMap>,
    body: &Value,
) {
    if let Err(why) = check(method, path, status, headers, body) {
        panic!("the API answered outside its OpenAPI document (functions/src/entry/api/openapi.json): {why}");
    }
}
