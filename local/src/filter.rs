//! THE STREAM'S EVENT FILTER, as Lambda applies it before invoking the
//! `dispatcher`: the `FilterCriteria` patterns of the template's stream
//! event (read from `infra/template.yaml` itself, so local and AWS cannot
//! differ), matched against each record. A record no pattern matches is
//! dropped without an invocation, which is what makes the filter a cost
//! cut. Only the pattern syntax the template uses is supported: nested
//! objects, lists of literal values, and `{"exists": bool}`. Pure, except
//! [`template_patterns`], which reads the file.

use serde_json::Value;

/// The `- Pattern: '...'` lines of the template's stream event.
pub fn template_patterns(template: &str) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(template).map_err(|e| format!("{template}: {e}"))?;
    patterns_in(&text)
}

fn patterns_in(text: &str) -> Result<Vec<Value>, String> {
    text.lines()
        .filter_map(|line| {
            let json = line
                .trim()
                .strip_prefix("- Pattern: '")?
                .strip_suffix('\'')?;
            Some(serde_json::from_str(json).map_err(|e| format!("filter pattern {json}: {e}")))
        })
        .collect()
}

/// Whether a record passes: some pattern matches it (no patterns: all pass).
pub fn passes(patterns: &[Value], record: &Value) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| matches(p, record))
}

fn matches(pattern: &Value, value: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        return false;
    };
    fields.iter().all(|(key, wanted)| match wanted {
        Value::Array(rules) => leaf(rules, value.get(key)),
        Value::Object(_) => value.get(key).is_some_and(|v| matches(wanted, v)),
        _ => false,
    })
}

fn leaf(rules: &[Value], value: Option<&Value>) -> bool {
    rules.iter().any(|rule| match rule {
        Value::Object(op) => match op.get("exists") {
            Some(Value::Bool(exists)) => value.is_some() == *exists,
            _ => false,
        },
        literal => value.is_some_and(|v| v == literal),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(sk: &str, status: Option<&str>) -> Value {
        let mut image = json!({"sk": {"S": sk}});
        if let Some(status) = status {
            image["status"] = json!({"S": status});
        }
        json!({"eventName": "MODIFY", "dynamodb": {"Keys": {"sk": {"S": sk}}, "NewImage": image}})
    }

    #[test]
    fn literals_nested_objects_and_exists_match_as_lambda_does() {
        let patterns = patterns_in(
            "            - Pattern: '{\"dynamodb\": {\"Keys\": {\"sk\": {\"S\": [\"JOB\"]}}}}'\n\
             - Pattern: '{\"dynamodb\": {\"NewImage\": {\"status\": {\"S\": [\"QUEUED\"]}}}}'\n\
             - Pattern: '{\"dynamodb\": {\"NewImage\": {\"jobId\": {\"S\": [{\"exists\": true}]}}}}'\n",
        )
        .unwrap();
        assert_eq!(patterns.len(), 3);
        assert!(passes(&patterns, &record("JOB", None)));
        assert!(passes(&patterns, &record("EXEC", Some("QUEUED"))));
        assert!(!passes(&patterns, &record("EXEC", Some("SUCCEEDED"))));
        let mut in_a_job = record("EXEC", Some("SUCCEEDED"));
        in_a_job["dynamodb"]["NewImage"]["jobId"] = json!({"S": "j-1"});
        assert!(passes(&patterns, &in_a_job));
        assert!(passes(&[], &record("EXEC", None)));
    }

    #[test]
    fn the_template_s_patterns_parse() {
        let patterns = template_patterns(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../infra/template.yaml"
        ))
        .unwrap();
        assert!(!patterns.is_empty());
    }
}
