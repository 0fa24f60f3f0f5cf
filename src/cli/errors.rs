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
    /// The library's sentence, with the flags and variables that set what it names.
    fn from(e: ConnectError) -> Self {
        let message = match &e {
            ConnectError::Unreachable { brokers, detail } => format!(
                "cannot reach a Kafka broker at {brokers} ({detail}); check --broker (KAFKA_BROKER), --tls (KAFKA_TLS) and --username (KAFKA_USERNAME) for TLS or SASL listeners, and that the broker is running (`make kafka-up` starts a local one)"
            ),
            ConnectError::AuthenticationFailed { detail } => format!(
                "the broker refused the SASL credentials ({detail}); check --username, --password and --sasl-mechanism (KAFKA_USERNAME, KAFKA_PASSWORD, KAFKA_SASL_MECHANISM)"
            ),
            ConnectError::Tls { detail } => format!(
                "TLS to the broker failed ({detail}); check --tls and --ca-file (KAFKA_TLS, KAFKA_CA_FILE) and that the port is a TLS listener"
            ),
            ConnectError::TopicNotFound { topic } => format!(
                "topic '{topic}' does not exist; create it with `kafka-producer produce --create-topic` or ask your Kafka admin"
            ),
            ConnectError::NotAuthorized { what } => format!(
                "the cluster refused this principal {what}; ask your Kafka admin for that ACL, or check --username (KAFKA_USERNAME)"
            ),
            ConnectError::Cluster { .. } => e.to_string(),
        };
        Self {
            code: ExitCode::Cluster,
            message,
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
                message: e.message("--idempotence false, or KAFKA_IDEMPOTENCE=false"),
            },
        }
    }
}
