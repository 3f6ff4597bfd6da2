//! What the terminal shows: the API's JSON as it came (`--output json`), or
//! tables of the few fields an operator scans for. No I/O: strings out.

use serde_json::Value;

/// What a list holds, for its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Command,
    Execution,
    Job,
    Pipeline,
    Run,
    Target,
}

impl Kind {
    /// Header and JSON pointer of each column.
    const fn columns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Command => &[
                ("COMMAND", "/commandId"),
                ("PROTOCOL", "/protocol"),
                ("TIMEOUT (s)", "/executionTimeoutSeconds"),
                ("DESCRIPTION", "/description"),
            ],
            Self::Execution => &[
                ("EXECUTION", "/executionId"),
                ("COMMAND", "/commandId"),
                ("TARGET", "/target"),
                ("STATUS", "/status"),
                ("REASON", "/statusReason/reasonCode"),
                ("VERSION", "/version"),
            ],
            Self::Job => &[
                ("JOB", "/jobId"),
                ("COMMAND", "/commandId"),
                ("STATUS", "/status"),
                ("REASON", "/statusReason/reasonCode"),
                ("CREATED", "/createdAt"),
            ],
            Self::Pipeline => &[
                ("PIPELINE", "/pipelineId"),
                ("STAGES", "/stages"),
                ("DESCRIPTION", "/description"),
            ],
            Self::Run => &[
                ("RUN", "/runId"),
                ("STATUS", "/status"),
                ("WAVE", "/wave"),
                ("STAGE", "/stage"),
                ("ENDED", "/targetsEnded"),
                ("REASON", "/statusReason/reasonCode"),
            ],
            Self::Target => &[
                ("THING", "/thingName"),
                ("STATUS", "/status"),
                ("WAVE", "/wave"),
                ("STAGE", "/stage"),
                ("OPERATION", "/operation"),
            ],
        }
    }
}

/// A cell: strings bare, arrays by their length, absent as `-`.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items.len().to_string(),
        Some(other) => other.to_string(),
    }
}

/// Rows under headers, columns padded to their widest cell.
pub fn table(kind: Kind, items: &[Value]) -> String {
    let columns = kind.columns();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|(_, pointer)| cell(item.pointer(pointer)))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (header, _))| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or_default()
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(columns.iter().map(|(h, _)| (*h).to_owned()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

/// One resource: `field  value` per top-level field, nested values as
/// compact JSON.
pub fn record(value: &Value) -> String {
    let Some(fields) = value.as_object() else {
        return value.to_string();
    };
    let width = fields.keys().map(String::len).max().unwrap_or_default();
    fields
        .iter()
        .map(|(k, v)| {
            let shown = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k:<width$}  {shown}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The API's JSON, pretty-printed.
pub fn json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_pads_columns_and_marks_missing_fields() {
        let items = [
            json!({"executionId": "e-1", "commandId": "reboot", "target": "dev-1", "status": "SUCCEEDED", "version": 4}),
            json!({"executionId": "e-22", "commandId": "reboot", "target": "dev-10", "status": "FAILED",
                   "statusReason": {"reasonCode": "E42"}, "version": 3}),
        ];
        assert_eq!(
            table(Kind::Execution, &items),
            "EXECUTION  COMMAND  TARGET  STATUS     REASON  VERSION\n\
             e-1        reboot   dev-1   SUCCEEDED  -       4\n\
             e-22       reboot   dev-10  FAILED     E42     3"
        );
    }

    #[test]
    fn a_pipeline_row_counts_its_stages() {
        let items = [json!({"pipelineId": "fw", "stages": [{}, {}, {}]})];
        assert_eq!(
            table(Kind::Pipeline, &items),
            "PIPELINE  STAGES  DESCRIPTION\nfw        3       -"
        );
    }

    #[test]
    fn a_record_shows_one_field_per_line() {
        let shown = record(&json!({"jobId": "j-1", "statistics": {"attempts": 2}}));
        assert_eq!(shown, "jobId       j-1\nstatistics  {\"attempts\":2}");
    }
}
