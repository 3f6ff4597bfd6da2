//! Which device protocol a command's executions are delivered over: a leaf
//! type the definition, the execution record and both protocols name. Pure,
//! no I/O.

/// Which device protocol a command's executions speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceProtocol {
    /// AWS IoT Jobs: the device asks for its next execution (the default).
    #[default]
    Jobs,
    /// AWS IoT commands: each execution's request is published to the
    /// device, several may run at once.
    Commands,
}

impl DeviceProtocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Jobs => "jobs",
            Self::Commands => "commands",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "jobs" => Some(Self::Jobs),
            "commands" => Some(Self::Commands),
            _ => None,
        }
    }

    pub const fn is_jobs(&self) -> bool {
        matches!(self, Self::Jobs)
    }
}
