//! ACCOUNTING for the latency and cost benchmarks, read from the local
//! stack's logs: the functions' usage lines (`USAGE_REPORT=on`, one per
//! invocation, from `cargo lambda watch`'s log) and mosquitto's debug log
//! (`MOSQUITTO_LOG`, written with `MOSQUITTO_DEBUG=on`: every PUBLISH it received and sent, with the
//! client and the payload size). Reads files; the parsing is pure.

use serde_json::Value;
use std::io::{Read, Seek, SeekFrom};

/// A log file read from a point on: what was appended since [`Self::mark`].
#[derive(Debug, Clone)]
pub struct LogWindow {
    path: String,
    from: u64,
}

impl LogWindow {
    /// A window starting at the file's current end.
    pub fn mark(path: &str) -> Result<Self, String> {
        let from = std::fs::metadata(path)
            .map_err(|e| format!("{path}: {e}"))?
            .len();
        Ok(Self {
            path: path.to_owned(),
            from,
        })
    }

    /// What was appended since the mark.
    pub fn text(&self) -> Result<String, String> {
        let mut file =
            std::fs::File::open(&self.path).map_err(|e| format!("{}: {e}", self.path))?;
        file.seek(SeekFrom::Start(self.from))
            .map_err(|e| format!("{}: {e}", self.path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {e}", self.path))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The functions' usage reports in `text` (`platform::usage::Report` as
/// JSON), in order. `cargo lambda watch` may prefix a function's lines.
pub fn usage_reports(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| {
            let start = line.find("{\"courierUsage\"")?;
            let value: Value = serde_json::from_str(&line[start..]).ok()?;
            value.get("courierUsage").cloned()
        })
        .collect()
}

/// Which way a PUBLISH went through the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A client published it to the broker.
    Received,
    /// The broker delivered it to a subscribed client.
    Sent,
}

/// One PUBLISH in mosquitto's debug log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerPublish {
    pub direction: Direction,
    pub client: String,
    pub topic: String,
    pub bytes: usize,
}

/// Every PUBLISH in `text`, from lines such as
/// `1700000000: Received PUBLISH from dev-1 (d0, q1, r0, m2, 'a/b', ... (45 bytes))`.
pub fn broker_publishes(text: &str) -> Vec<BrokerPublish> {
    text.lines().filter_map(broker_publish).collect()
}

fn broker_publish(line: &str) -> Option<BrokerPublish> {
    let (direction, rest) = if let Some((_, rest)) = line.split_once("Received PUBLISH from ") {
        (Direction::Received, rest)
    } else {
        (Direction::Sent, line.split_once("Sending PUBLISH to ")?.1)
    };
    let (client, rest) = rest.split_once(" (")?;
    let (_, rest) = rest.split_once('\'')?;
    let (topic, rest) = rest.rsplit_once("', ")?;
    let bytes = rest
        .rsplit_once(" (")?
        .1
        .strip_suffix(" bytes))")?
        .parse()
        .ok()?;
    Some(BrokerPublish {
        direction,
        client: client.to_owned(),
        topic: topic.to_owned(),
        bytes,
    })
}

/// The p-th percentile (nearest rank) of sorted figures; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_lines_are_found_behind_a_prefix() {
        let text = "noise\n[api] {\"courierUsage\":{\"function\":\"api\",\"handlerMs\":1.5}}\n{\"other\":1}\n";
        let reports = usage_reports(text);
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0]["handlerMs"], 1.5);
    }

    #[test]
    fn a_received_and_a_sent_publish_are_parsed_with_client_topic_and_size() {
        let text =
            "1795880962: Received PUBLISH from pubber (d0, q1, r0, m1, 'a/b', ... (5 bytes))\n\
                    1795880962: Sending PUBLISH to subber (d0, q0, r0, m0, 'a/b', ... (5 bytes))\n\
                    1795880962: Sending PUBACK to pubber (m1, rc0)\n";
        assert_eq!(
            broker_publishes(text),
            vec![
                BrokerPublish {
                    direction: Direction::Received,
                    client: "pubber".into(),
                    topic: "a/b".into(),
                    bytes: 5
                },
                BrokerPublish {
                    direction: Direction::Sent,
                    client: "subber".into(),
                    topic: "a/b".into(),
                    bytes: 5
                },
            ]
        );
    }

    #[test]
    fn the_nearest_rank_percentile() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&sorted, 50.0), 2.0);
        assert_eq!(percentile(&sorted, 99.0), 4.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
