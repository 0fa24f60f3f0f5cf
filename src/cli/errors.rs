//! How a command ends: the documented exit codes, and the one-line error that goes with
//! a failure. Built by the command modules; printed by `main`.

use std::fmt;

use kafka_producer::StartError;
use kafka_producer::config::ConfigError;
use kafka_producer::connect::ConnectError;

/// The process exit codes, as listed in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    /// Events not delivered, an unclean topic, or a breaking schema change.
    Failures = 1,
    /// Invalid option or configuration.
    Usage = 2,
    /// Cluster unreachable, authentication/TLS failure, missing topic.
    Cluster = 3,
    /// Bad input line.
    BadInput = 4,
    /// Stopped by a signal with nothing left to deliver: a second one, or one before
    /// the producer had connected.
    Interrupted = 130,
}

/// A failure that ends the command, with its exit code and a message that says what to do.
#[derive(Debug)]
pub struct CliError {
    pub code: ExitCode,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: ExitCode::Usage,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        Self::usage(format!(
            "invalid value for {}",
            super::options::in_flag_terms(&e.to_string())
        ))
    }
}

impl From<ConnectError> for CliError {
    fn from(e: ConnectError) -> Self {
        Self {
            code: ExitCode::Cluster,
            message: e.to_string(),
        }
    }
}

impl From<StartError> for CliError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Config(e) => e.into(),
            StartError::Connect(e) => e.into(),
            e @ StartError::Idempotence(_) => Self {
                code: ExitCode::Cluster,
                message: format!(
                    "{e}; the CLI turns it off with --idempotence false (KAFKA_IDEMPOTENCE=false)"
                ),
            },
        }
    }
}
