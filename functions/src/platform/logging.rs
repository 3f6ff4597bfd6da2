//! Logging for the Lambda functions: JSON lines when Lambda's log format is
//! JSON, and a level filter that keeps request and item contents out of the
//! logs at every level. No I/O besides reading environment variables (the
//! lines go to stdout, which Lambda ships to CloudWatch).
//!
//! The level asked for (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, default
//! INFO) applies to Courier's own crates, whose log lines carry ids, codes
//! and counts only. Dependencies log at INFO at most: at DEBUG and TRACE the
//! AWS SDK writes whole request and response bodies and the runtime whole
//! events, which hold command parameters, sensitive ones included
//! (`tests/tests/security.rs` caught this). A target named explicitly in
//! `RUST_LOG` (`aws_smithy_runtime=trace`) still gets what it names: that is
//! a deliberate choice for a debugging session, not a default.

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};

/// Courier's crates: the requested level applies to these.
const OWN_TARGETS: [&str; 2] = ["courier_functions", "courier_core"];

/// Installs the global subscriber for a function; call once, first thing.
pub fn init() {
    let requested = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(&requested));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The filter for a requested level or `RUST_LOG` directive list.
pub fn filter(requested: &str) -> EnvFilter {
    EnvFilter::builder().parse_lossy(directives(requested))
}

/// `requested` as filter directives: its level (the entry without a target;
/// Lambda's names, FATAL included) for Courier's crates and at most INFO for
/// everything else; entries that name a target are kept as given.
pub fn directives(requested: &str) -> String {
    let mut level = LevelFilter::INFO;
    let mut named = Vec::new();
    for entry in requested
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if entry.contains('=') {
            named.push(entry.to_owned());
        } else if entry.eq_ignore_ascii_case("fatal") {
            level = LevelFilter::ERROR;
        } else if let Ok(parsed) = entry.parse::<LevelFilter>() {
            level = parsed;
        }
    }
    let dependencies = level.min(LevelFilter::INFO);
    let own = OWN_TARGETS.map(|target| format!("{target}={level}"));
    std::iter::once(dependencies.to_string())
        .chain(own)
        .chain(named)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requested_level_is_courier_s_and_dependencies_stay_at_info_or_below() {
        assert_eq!(
            directives(""),
            "info,courier_functions=info,courier_core=info"
        );
        assert_eq!(
            directives("TRACE"),
            "info,courier_functions=trace,courier_core=trace"
        );
        assert_eq!(
            directives("debug"),
            "info,courier_functions=debug,courier_core=debug"
        );
        assert_eq!(
            directives("WARN"),
            "warn,courier_functions=warn,courier_core=warn"
        );
        assert_eq!(
            directives("FATAL"),
            "error,courier_functions=error,courier_core=error"
        );
    }

    #[test]
    fn targets_named_in_rust_log_keep_what_they_ask_for() {
        assert_eq!(
            directives("debug,aws_smithy_runtime=trace"),
            "info,courier_functions=debug,courier_core=debug,aws_smithy_runtime=trace"
        );
        // An unreadable level is ignored, not fatal at cold start.
        assert_eq!(
            directives("loud"),
            "info,courier_functions=info,courier_core=info"
        );
    }
}
