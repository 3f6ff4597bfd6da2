//! THE STATUS MACHINE. Execution statuses, the actors that move them, and the
//! one transition table every part of Courier obeys (API, device protocol,
//! store conditions, dashboard). Pure, no I/O.
//!
//! | actor    | from                     | to                                        |
//! |----------|--------------------------|-------------------------------------------|
//! | device   | QUEUED, SENT             | IN_PROGRESS, SUCCEEDED, FAILED, REJECTED  |
//! | device   | IN_PROGRESS              | IN_PROGRESS (progress), SUCCEEDED, FAILED, REJECTED |
//! | operator | QUEUED, SENT, IN_PROGRESS| CANCELED                                  |
//! | system   | QUEUED                   | SENT (dispatch), QUEUED (new attempt), TIMED_OUT |
//! | system   | SENT                     | QUEUED (re-queue, new attempt), TIMED_OUT |
//! | system   | IN_PROGRESS              | QUEUED (new attempt), TIMED_OUT           |
//!
//! An operator's cancel of an IN_PROGRESS execution also needs `force` (the
//! device has started the work); deadlines are in `deadline`.
//!
//! SUCCEEDED, FAILED, REJECTED, TIMED_OUT and CANCELED are terminal: nothing
//! leaves them.

// Every match on a status names every status: adding one must fail to
// compile until each rule has been decided for it.
#![deny(clippy::wildcard_enum_match_arm)]

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Created, waiting for the device.
    Queued,
    /// Delivered to the device (published), not yet acknowledged.
    Sent,
    /// The device is working on it.
    InProgress,
    Succeeded,
    Failed,
    /// The device refused it.
    Rejected,
    /// The deadline passed before the device finished.
    TimedOut,
    /// An operator called it off.
    Canceled,
}

/// Who asks for a status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// The target device, over MQTT (through an IoT rule).
    Device,
    /// A person or backend service, over the HTTP API.
    Operator,
    /// Courier itself: delivery, re-queueing and deadlines.
    System,
}

impl Actor {
    pub const ALL: [Self; 3] = [Self::Device, Self::Operator, Self::System];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Operator => "operator",
            Self::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }
}

impl crate::text::Piece for Actor {
    fn put(&self, out: &mut String) {
        out.push_str(self.as_str());
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

use ExecutionStatus::{Canceled, Failed, InProgress, Queued, Rejected, Sent, Succeeded, TimedOut};

impl ExecutionStatus {
    pub const ALL: [Self; 8] = [
        Queued, Sent, InProgress, Succeeded, Failed, Rejected, TimedOut, Canceled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Queued => "QUEUED",
            Sent => "SENT",
            InProgress => "IN_PROGRESS",
            Succeeded => "SUCCEEDED",
            Failed => "FAILED",
            Rejected => "REJECTED",
            TimedOut => "TIMED_OUT",
            Canceled => "CANCELED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub const fn is_terminal(self) -> bool {
        match self {
            Queued | Sent | InProgress => false,
            Succeeded | Failed | Rejected | TimedOut | Canceled => true,
        }
    }

    /// Statuses `actor` may move an execution to from `self`. The table.
    pub const fn allowed_targets(self, actor: Actor) -> &'static [Self] {
        match actor {
            Actor::Device => match self {
                Queued | Sent | InProgress => &[InProgress, Succeeded, Failed, Rejected],
                Succeeded | Failed | Rejected | TimedOut | Canceled => &[],
            },
            Actor::Operator => match self {
                Queued | Sent | InProgress => &[Canceled],
                Succeeded | Failed | Rejected | TimedOut | Canceled => &[],
            },
            Actor::System => match self {
                Queued => &[Sent, Queued, TimedOut],
                Sent => &[Queued, TimedOut],
                InProgress => &[Queued, TimedOut],
                Succeeded | Failed | Rejected | TimedOut | Canceled => &[],
            },
        }
    }

    /// Whether `actor` may move an execution from `self` to `to`.
    pub fn can_transition(self, to: Self, actor: Actor) -> bool {
        self.allowed_targets(actor).contains(&to)
    }

    /// Every status from which `actor` may move an execution to `to`: the set
    /// the store puts in its conditional write.
    pub fn allowed_sources(to: Self, actor: Actor) -> Vec<Self> {
        Self::ALL
            .into_iter()
            .filter(|from| from.can_transition(to, actor))
            .collect()
    }
}

impl crate::text::Piece for ExecutionStatus {
    fn put(&self, out: &mut String) {
        out.push_str(self.as_str());
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
