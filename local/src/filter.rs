//! THE STREAM'S EVENT FILTER, as Lambda applies it before invoking the
//! `dispatcher`: the `FilterCriteria` patterns of the template's stream
//! event (read from `infra/template.yaml` itself, so local and AWS cannot
//! differ), matched against each record. A record no pattern matches is
//! dropped without an invocation, which is what makes the filter a cost
//! cut. Only the pattern syntax the template uses is supported: nested
//! objects, lists of literal values, and `{"exists": bool}`. Pure, except
//! [`template_patterns`], which reads the file.

use serde_json::Value;

/// The `- Pattern: '...'` lines of the template's stream event, as the
/// stack deployed with the settings in this process's environment would
/// have them (see [`patterns_in`]).
pub fn template_patterns(template: &str) -> Result<Vec<Value>, String> {
    template_patterns_with(template, |name| std::env::var(name).ok())
}

/// [`template_patterns`] with the settings read through `env`.
pub fn template_patterns_with(
    template: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(template).map_err(|e| format!("{template}: {e}"))?;
    patterns_in(&text, env)
}

/// The patterns of `text`. A pattern under `- !If` / `- {Condition}` counts
/// only where that condition holds: a condition `{Condition}: !Equals
/// [!Ref {Parameter}, "{value}"]` holds when the environment variable the
/// functions get that parameter in (`{VARIABLE}: !Ref {Parameter}`), read
/// through `env`, or else the parameter's `Default`, is that value.
fn patterns_in(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Vec<Value>, String> {
    let mut patterns = Vec::new();
    let mut lines = text.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        let (condition, line) = if line == "- !If" {
            let name = lines
                .next()
                .and_then(|l| l.strip_prefix("- "))
                .unwrap_or("");
            (Some(name), lines.next().unwrap_or(""))
        } else {
            (None, line)
        };
        let Some(json) = line
            .strip_prefix("- Pattern: '")
            .and_then(|l| l.strip_suffix('\''))
        else {
            continue;
        };
        let pattern =
            serde_json::from_str(json).map_err(|e| format!("filter pattern {json}: {e}"))?;
        if let Some(name) = condition {
            // `!If [C, pattern, pattern]` would need the other branch too.
            if lines.peek().is_some_and(|l| l.starts_with("- Pattern: ")) {
                return Err(format!(
                    "condition {name}: only `!Ref AWS::NoValue` is supported as the other branch"
                ));
            }
        }
        if condition.map_or(Ok(true), |name| holds(text, name, &env))? {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}

/// Whether the template's condition `name` holds (see [`patterns_in`]).
fn holds(text: &str, name: &str, env: &impl Fn(&str) -> Option<String>) -> Result<bool, String> {
    let unsupported =
        || format!("condition {name}: only `!Equals [!Ref Parameter, \"value\"]` is supported");
    let rule = find_value(text, name).ok_or_else(unsupported)?;
    let (parameter, wanted) = rule
        .strip_prefix("!Equals [!Ref ")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.split_once(", "))
        .ok_or_else(unsupported)?;
    let variable = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_suffix(&format!(": !Ref {parameter}")))
        .filter(|v| !v.contains(' '));
    let value = match variable.and_then(env) {
        Some(value) => value,
        None => parameter_default(text, parameter)
            .ok_or_else(|| format!("parameter {parameter} has no Default"))?,
    };
    Ok(value == unquote(wanted))
}

/// The value of the first `{key}: value` line.
fn find_value<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(": "))
}

/// A parameter's `Default` (in the lines after `  {parameter}:`).
fn parameter_default(text: &str, parameter: &str) -> Option<String> {
    let header = format!("  {parameter}:");
    text.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix("Default: "))
        .map(|d| unquote(d).to_owned())
}

fn unquote(text: &str) -> &str {
    text.trim_matches('"')
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
            |_| None,
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

    #[test]
    fn a_pattern_under_a_condition_counts_only_where_the_condition_holds() {
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../infra/template.yaml"
        ))
        .unwrap();
        let mut commands_success = record("EXEC", Some("SUCCEEDED"));
        commands_success["dynamodb"]["NewImage"]["protocol"] = json!({"S": "commands"});
        let setting = |value: &'static str| {
            move |name: &str| (name == "COMMAND_STATUS_EVENTS").then(|| value.to_owned())
        };
        let default = patterns_in(&template, |_| None).unwrap();
        let on = patterns_in(&template, setting("on")).unwrap();
        let off = patterns_in(&template, setting("off")).unwrap();
        assert_eq!(default, on, "the parameter's Default is on");
        assert_eq!(off.len() + 1, on.len());
        assert!(passes(&on, &commands_success));
        assert!(!passes(&off, &commands_success));
        // what the other patterns pass does not depend on it
        assert!(passes(&off, &record("EXEC", Some("QUEUED"))));
    }

    #[test]
    fn a_pattern_in_the_other_branch_is_refused_by_name() {
        let text = "Conditions:\n  On: !Equals [!Ref X, \"on\"]\n\
                    - !If\n  - On\n  - Pattern: '{}'\n  - Pattern: '{}'\n";
        let err = patterns_in(text, |_| None).unwrap_err();
        assert!(err.contains("condition On"), "{err}");
    }

    #[test]
    fn a_condition_of_another_form_is_refused_by_name() {
        let text = "Conditions:\n  Odd: !Not [!Equals [!Ref X, \"\"]]\n\
                    - !If\n  - Odd\n  - Pattern: '{}'\n";
        let err = patterns_in(text, |_| None).unwrap_err();
        assert!(err.contains("condition Odd"), "{err}");
    }
}
