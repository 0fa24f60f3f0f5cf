//! The options every command shares: where the brokers are, how to authenticate, and
//! the engine's limits. Each maps to one field of `ProducerConfig` and is validated there.

use std::time::Duration;

use clap::Args;
use kafka_producer::config::{
    self, CompressionCodec, ConnectionConfig, ProducerConfig, SaslCredentials, SaslMechanism,
};
use kafka_producer::partitioner::Partitioner;

use super::CliError;

#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Bootstrap brokers, comma-separated host:port.
    #[arg(long, env = "KAFKA_BROKER", default_value = config::DEFAULT_BROKER, global = true)]
    pub broker: String,

    /// Topic to produce to / read from.
    #[arg(long, env = "KAFKA_TOPIC", default_value = config::DEFAULT_TOPIC, global = true)]
    pub topic: String,

    /// SASL user name; setting it turns SASL on.
    #[arg(long, env = "KAFKA_USERNAME", global = true)]
    pub username: Option<String>,

    /// SASL password (prefer the environment variable: flags show up in `ps`).
    #[arg(long, env = "KAFKA_PASSWORD", hide_env_values = true, global = true)]
    pub password: Option<String>,

    /// SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(
        long,
        env = "KAFKA_SASL_MECHANISM",
        default_value = "PLAIN",
        global = true
    )]
    pub sasl_mechanism: String,

    /// Use TLS (rustls) to reach the brokers.
    #[arg(long, env = "KAFKA_TLS", default_value_t = false, value_parser = parse_bool, global = true)]
    pub tls: bool,

    /// PEM file with the CA that signed the brokers' certificates (default: public roots).
    #[arg(long, env = "KAFKA_CA_FILE", global = true)]
    pub ca_file: Option<std::path::PathBuf>,

    /// Seconds to wait for a broker to answer at start-up.
    #[arg(
        long,
        env = "KAFKA_CONNECT_TIMEOUT_S",
        default_value_t = 10,
        global = true
    )]
    pub connect_timeout_s: u64,
}

#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Records per batch at most (librdkafka batch.num.messages).
    #[arg(long, env = "KAFKA_BATCH_MAX_MESSAGES", default_value_t = config::DEFAULT_BATCH_MAX_RECORDS, global = true)]
    pub batch_max_messages: usize,

    /// Encoded record bytes per batch at most (below the broker's max.message.bytes).
    #[arg(
        long,
        env = "KAFKA_BATCH_MAX_BYTES",
        default_value = "1000000",
        global = true
    )]
    pub batch_max_bytes: String,

    /// How long a batch waits for more records, in ms (linger.ms).
    #[arg(long, env = "KAFKA_LINGER_MS", default_value_t = 5, global = true)]
    pub linger_ms: u64,

    /// Time from acceptance to acknowledgement before an event fails, in ms (message.timeout.ms).
    #[arg(
        long,
        env = "KAFKA_MESSAGE_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub message_timeout_ms: u64,

    /// Bytes accepted but not yet reported, e.g. 1GiB or 512MiB (queue.buffering.max.kbytes).
    #[arg(
        long,
        env = "KAFKA_BUFFER_MAX_BYTES",
        default_value = "1GiB",
        global = true
    )]
    pub buffer_max_bytes: String,

    /// Events accepted but not yet reported (queue.buffering.max.messages).
    #[arg(long, env = "KAFKA_BUFFER_MAX_MESSAGES", default_value_t = config::DEFAULT_BUFFER_MAX_RECORDS, global = true)]
    pub buffer_max_messages: usize,

    /// Batch compression: none, gzip, lz4, snappy, zstd (compression.type).
    #[arg(long, env = "KAFKA_COMPRESSION", default_value = "zstd", global = true)]
    pub compression: String,

    /// How often the topic's partition count is re-read, in ms (topic.metadata.refresh.interval.ms).
    #[arg(
        long,
        env = "KAFKA_METADATA_REFRESH_MS",
        default_value_t = 300_000,
        global = true
    )]
    pub metadata_refresh_ms: u64,

    /// Partitioner: murmur2 (Java client, librdkafka murmur2_random) or consistent_random.
    #[arg(
        long,
        env = "KAFKA_PARTITIONER",
        default_value = "murmur2",
        global = true
    )]
    pub partitioner: String,

    /// Idempotent writes: no duplicates from retries, order kept (enable.idempotence).
    #[arg(long, env = "KAFKA_IDEMPOTENCE", default_value_t = config::DEFAULT_IDEMPOTENCE, value_parser = parse_bool, action = clap::ArgAction::Set, global = true)]
    pub idempotence: bool,

    /// Produce requests in flight per broker, 1..=5 with idempotence (max.in.flight.requests.per.connection).
    #[arg(long, env = "KAFKA_MAX_IN_FLIGHT", default_value_t = config::DEFAULT_MAX_IN_FLIGHT, global = true)]
    pub max_in_flight: usize,

    /// Record batch bytes per produce request at most (max.request.size).
    #[arg(long, env = "KAFKA_MAX_REQUEST_BYTES", default_value_t = config::DEFAULT_MAX_REQUEST_BYTES.to_string(), global = true)]
    pub max_request_bytes: String,

    /// Unanswered produce request before its connection is dropped and its batches retried, in ms (request.timeout.ms).
    #[arg(long, env = "KAFKA_REQUEST_TIMEOUT_MS", default_value_t = config::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64, global = true)]
    pub request_timeout_ms: u64,

    /// Pause before a failed batch is sent again, in ms (retry.backoff.ms).
    #[arg(long, env = "KAFKA_RETRY_BACKOFF_MS", default_value_t = config::DEFAULT_RETRY_BACKOFF.as_millis() as u64, global = true)]
    pub retry_backoff_ms: u64,
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("'{text}' is not a boolean (use true or false)")),
    }
}

fn option_error(option: &str, detail: impl std::fmt::Display) -> CliError {
    CliError::usage(format!("invalid value for --{option}: {detail}"))
}

impl ConnectionArgs {
    pub fn to_config(&self) -> Result<ConnectionConfig, CliError> {
        let brokers = self
            .broker
            .split(',')
            .map(|b| b.trim().to_string())
            .collect();
        let sasl = match (&self.username, &self.password) {
            (None, None) => None,
            (Some(username), Some(password)) => Some(SaslCredentials {
                mechanism: self
                    .sasl_mechanism
                    .parse::<SaslMechanism>()
                    .map_err(|e| option_error("sasl-mechanism", e))?,
                username: username.clone(),
                password: password.clone(),
            }),
            _ => {
                return Err(CliError::usage(
                    "SASL needs both KAFKA_USERNAME and KAFKA_PASSWORD (or --username and --password)",
                ));
            }
        };
        if self.connect_timeout_s == 0 {
            return Err(option_error("connect-timeout-s", "must be at least 1"));
        }
        Ok(ConnectionConfig {
            brokers,
            tls: self.tls,
            ca_file: self.ca_file.clone(),
            sasl,
            connect_timeout: Duration::from_secs(self.connect_timeout_s),
        })
    }
}

impl EngineArgs {
    /// The full producer configuration, validated: a bad value fails here, before any
    /// connection is made.
    pub fn to_config(&self, connection: &ConnectionArgs) -> Result<ProducerConfig, CliError> {
        let config = ProducerConfig {
            connection: connection.to_config()?,
            topic: connection.topic.clone(),
            batch_max_records: self.batch_max_messages,
            batch_max_bytes: config::parse_byte_size(&self.batch_max_bytes)
                .map_err(|e| option_error("batch-max-bytes", e))?
                .try_into()
                .map_err(|_| option_error("batch-max-bytes", "too large"))?,
            linger: Duration::from_millis(self.linger_ms),
            message_timeout: Duration::from_millis(self.message_timeout_ms),
            buffer_max_bytes: config::parse_byte_size(&self.buffer_max_bytes)
                .map_err(|e| option_error("buffer-max-bytes", e))?,
            buffer_max_records: self.buffer_max_messages,
            compression: self
                .compression
                .parse::<CompressionCodec>()
                .map_err(|e| option_error("compression", e))?,
            partitioner: self
                .partitioner
                .parse::<Partitioner>()
                .map_err(|e| option_error("partitioner", e))?,
            metadata_refresh: Duration::from_millis(self.metadata_refresh_ms),
            idempotence: self.idempotence,
            max_in_flight: self.max_in_flight,
            max_request_bytes: config::parse_byte_size(&self.max_request_bytes)
                .map_err(|e| option_error("max-request-bytes", e))?
                .try_into()
                .map_err(|_| option_error("max-request-bytes", "too large"))?,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            retry_backoff: Duration::from_millis(self.retry_backoff_ms),
        };
        config.validate()?;
        Ok(config)
    }
}
