//! Every setting of the producer, its default, and the check that rejects a bad value.
//! The CLI (or a library user) fills a `ProducerConfig`; `Producer::connect` consumes it.
//!
//! All defaults live here, each next to the librdkafka / Java setting it mirrors.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::partitioner::Partitioner;

/// Kafka broker list, as librdkafka's `bootstrap.servers` default.
pub const DEFAULT_BROKER: &str = "localhost:9092";
/// The original producer's topic.
pub const DEFAULT_TOPIC: &str = "user.events";
/// Records per batch at most: librdkafka `batch.num.messages` as the original set it.
pub const DEFAULT_BATCH_MAX_RECORDS: usize = 10_000;
/// Encoded record bytes per batch at most: librdkafka `batch.size` / Java `batch.size`
/// scaled up, kept below the broker's default `max.message.bytes` (1,048,588).
pub const DEFAULT_BATCH_MAX_BYTES: usize = 1_000_000;
/// How long an open batch waits for more records: librdkafka `linger.ms` default.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(5);
/// From acceptance to acknowledgement, retries included: `message.timeout.ms`.
pub const DEFAULT_MESSAGE_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Bytes accepted but not yet reported: `queue.buffering.max.kbytes` = 1048576 (1 GiB).
pub const DEFAULT_BUFFER_MAX_BYTES: u64 = 1 << 30;
/// Events accepted but not yet reported: `queue.buffering.max.messages` as the original set it.
pub const DEFAULT_BUFFER_MAX_RECORDS: usize = 100_000;
/// How often the topic's partition count is read again, so partitions added while the
/// producer runs get traffic: librdkafka `topic.metadata.refresh.interval.ms` default.
pub const DEFAULT_METADATA_REFRESH: Duration = Duration::from_secs(300);
/// Write each batch at most once per partition with the broker's help (producer id,
/// epoch and sequence numbers): Java `enable.idempotence`, on by default since Kafka 3.0.
pub const DEFAULT_IDEMPOTENCE: bool = true;
/// Produce requests on the wire per broker connection before waiting for an answer:
/// Java / librdkafka `max.in.flight.requests.per.connection`. With idempotence it is
/// also the most batches of one partition in flight, and the broker keeps the last 5
/// batches per partition to recognise a retried one, so 5 is the most allowed then.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 5;
/// Most batches of one partition in flight at once with idempotence: the broker
/// recognises a retried batch among the last 5 of each producer and partition.
pub const MAX_IN_FLIGHT_IDEMPOTENT: usize = 5;
/// Bytes of record batches in one produce request at most: Java `max.request.size`.
/// A single batch larger than this is still sent alone.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1_048_576;
/// How long a produce request may go unanswered before its connection is dropped and
/// its batches retried (if their message timeout allows): Java `request.timeout.ms`,
/// scaled to the 5 s message timeout (the Java default is 30 s against a 120 s
/// delivery timeout). Also the time the broker may wait for the in-sync replicas.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(3_000);
/// Pause before a failed batch is sent again: Java / librdkafka `retry.backoff.ms`.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Largest value accepted for the buffer, so one event's size always fits a permit count.
pub const MAX_BUFFER_MAX_BYTES: u64 = u32::MAX as u64;

/// How record batches are compressed on the wire (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionCodec {
    None,
    Gzip,
    Lz4,
    Snappy,
    #[default]
    Zstd,
}

impl CompressionCodec {
    pub const NAMES: &'static str = "none, gzip, lz4, snappy, zstd";
    pub const ALL: [Self; 5] = [Self::None, Self::Gzip, Self::Lz4, Self::Snappy, Self::Zstd];
}

impl FromStr for CompressionCodec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "gzip" => Ok(Self::Gzip),
            "lz4" => Ok(Self::Lz4),
            "snappy" => Ok(Self::Snappy),
            "zstd" => Ok(Self::Zstd),
            _ => Err(format!(
                "unknown compression '{s}' (allowed: {})",
                Self::NAMES
            )),
        }
    }
}

impl fmt::Display for CompressionCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Lz4 => "lz4",
            Self::Snappy => "snappy",
            Self::Zstd => "zstd",
        })
    }
}

/// SASL mechanism for `KAFKA_SASL_MECHANISM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl FromStr for SaslMechanism {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(Self::Plain),
            "SCRAM-SHA-256" => Ok(Self::ScramSha256),
            "SCRAM-SHA-512" => Ok(Self::ScramSha512),
            _ => Err(format!(
                "unknown SASL mechanism '{s}' (allowed: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
            )),
        }
    }
}

/// Credentials for SASL. The password is never printed: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// How to reach the brokers: addresses, TLS and SASL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// `host:port` of one or more bootstrap brokers.
    pub brokers: Vec<String>,
    /// Encrypt with TLS (rustls). Off means plaintext.
    pub tls: bool,
    /// PEM file with the CA that signed the brokers' certificates; None trusts the
    /// public web PKI roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// SASL authentication, when the listener asks for it.
    pub sasl: Option<SaslCredentials>,
    /// How long start-up may spend reaching a broker before it gives up.
    pub connect_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            brokers: vec![DEFAULT_BROKER.to_string()],
            tls: false,
            ca_file: None,
            sasl: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything the producer engine needs. Build with `ProducerConfig::default()` and
/// change fields, then `validate()` (which `Producer::connect` also calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    pub connection: ConnectionConfig,
    pub topic: String,
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    pub linger: Duration,
    pub message_timeout: Duration,
    pub buffer_max_bytes: u64,
    pub buffer_max_records: usize,
    pub compression: CompressionCodec,
    pub partitioner: Partitioner,
    pub metadata_refresh: Duration,
    /// Idempotent writes (`enable.idempotence`): no duplicates from retries, order kept.
    pub idempotence: bool,
    /// Produce requests in flight per broker (`max.in.flight.requests.per.connection`).
    pub max_in_flight: usize,
    /// Record batch bytes per produce request (`max.request.size`).
    pub max_request_bytes: usize,
    /// Unanswered produce request → connection dropped, batches retried (`request.timeout.ms`).
    pub request_timeout: Duration,
    /// Pause before a failed batch is retried (`retry.backoff.ms`).
    pub retry_backoff: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            connection: ConnectionConfig::default(),
            topic: DEFAULT_TOPIC.to_string(),
            batch_max_records: DEFAULT_BATCH_MAX_RECORDS,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            linger: DEFAULT_LINGER,
            message_timeout: DEFAULT_MESSAGE_TIMEOUT,
            buffer_max_bytes: DEFAULT_BUFFER_MAX_BYTES,
            buffer_max_records: DEFAULT_BUFFER_MAX_RECORDS,
            compression: CompressionCodec::default(),
            partitioner: Partitioner::default(),
            metadata_refresh: DEFAULT_METADATA_REFRESH,
            idempotence: DEFAULT_IDEMPOTENCE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
        }
    }
}

/// A setting with a value it cannot take; the message names the setting, the value
/// and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl ProducerConfig {
    /// Checks every value; the first bad one is explained in words.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError(msg));
        if self.connection.brokers.is_empty()
            || self.connection.brokers.iter().any(|b| b.is_empty())
        {
            return bad(
                "broker list is empty: give at least one host:port (KAFKA_BROKER / --broker)"
                    .into(),
            );
        }
        for b in &self.connection.brokers {
            match b.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                _ => {
                    return bad(format!(
                        "broker '{b}' is not host:port (for example localhost:9092)"
                    ));
                }
            }
        }
        if self.topic.is_empty()
            || self.topic.len() > 249
            || !self
                .topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return bad(format!(
                "topic '{}' is not a valid Kafka topic name (1-249 characters of a-z, A-Z, 0-9, '.', '_', '-')",
                self.topic
            ));
        }
        if !(1..=1_000_000).contains(&self.batch_max_records) {
            return bad(format!(
                "batch-max-messages {} is out of range (1..=1000000)",
                self.batch_max_records
            ));
        }
        if !(1_000..=100_000_000).contains(&self.batch_max_bytes) {
            return bad(format!(
                "batch-max-bytes {} is out of range (1000..=100000000)",
                self.batch_max_bytes
            ));
        }
        if self.linger > Duration::from_secs(900) {
            return bad(format!(
                "linger-ms {} is out of range (0..=900000)",
                self.linger.as_millis()
            ));
        }
        if self.message_timeout < Duration::from_millis(1)
            || self.message_timeout > Duration::from_secs(3600)
        {
            return bad(format!(
                "message-timeout-ms {} is out of range (1..=3600000)",
                self.message_timeout.as_millis()
            ));
        }
        if self.buffer_max_bytes < self.batch_max_bytes as u64
            || self.buffer_max_bytes > MAX_BUFFER_MAX_BYTES
        {
            return bad(format!(
                "buffer-max-bytes {} is out of range (batch-max-bytes {} ..= {} bytes)",
                self.buffer_max_bytes, self.batch_max_bytes, MAX_BUFFER_MAX_BYTES
            ));
        }
        if self.metadata_refresh < Duration::from_millis(100) {
            return bad(format!(
                "metadata-refresh-ms {} is out of range (at least 100)",
                self.metadata_refresh.as_millis()
            ));
        }
        let max_in_flight = if self.idempotence {
            MAX_IN_FLIGHT_IDEMPOTENT
        } else {
            1_000
        };
        if !(1..=max_in_flight).contains(&self.max_in_flight) {
            return bad(format!(
                "max-in-flight {} is out of range (1..={max_in_flight}{})",
                self.max_in_flight,
                if self.idempotence {
                    " with idempotence: the broker recognises retries among a partition's last 5 batches"
                } else {
                    ""
                }
            ));
        }
        if !(1_000..=1_000_000_000).contains(&self.max_request_bytes) {
            return bad(format!(
                "max-request-bytes {} is out of range (1000..=1000000000)",
                self.max_request_bytes
            ));
        }
        if self.request_timeout < Duration::from_millis(100)
            || self.request_timeout > Duration::from_secs(3600)
        {
            return bad(format!(
                "request-timeout-ms {} is out of range (100..=3600000)",
                self.request_timeout.as_millis()
            ));
        }
        if self.retry_backoff > Duration::from_secs(60) {
            return bad(format!(
                "retry-backoff-ms {} is out of range (0..=60000)",
                self.retry_backoff.as_millis()
            ));
        }
        if self.buffer_max_records < 1 {
            return bad("buffer-max-messages must be at least 1".into());
        }
        if let Some(sasl) = &self.connection.sasl
            && sasl.username.is_empty()
        {
            return bad("KAFKA_USERNAME is empty but SASL is configured: set both KAFKA_USERNAME and KAFKA_PASSWORD".into());
        }
        Ok(())
    }
}

impl ProducerConfig {
    /// The request timeout in force: never longer than the message timeout, which
    /// bounds every batch anyway (Java refuses such a pair; shortening is kinder).
    pub fn effective_request_timeout(&self) -> Duration {
        self.request_timeout.min(self.message_timeout)
    }
}

/// Parses a byte size such as `1048576`, `512KiB`, `512MiB`, `1GiB`, `1GB` or `10MB`.
/// Binary (KiB, MiB, GiB) and decimal (kB, MB, GB) units are both accepted.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size (examples: 1048576, 512MiB, 1GiB)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "'{text}' has an unknown unit '{other}' (allowed: B, KiB, MiB, GiB, kB, MB, GB)"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_mirror_the_original_librdkafka_settings() {
        let c = ProducerConfig::default();
        assert_eq!(c.batch_max_records, 10_000);
        assert_eq!(c.message_timeout, Duration::from_millis(5000));
        assert_eq!(c.buffer_max_bytes, 1_048_576 * 1024);
        assert_eq!(c.buffer_max_records, 100_000);
        assert_eq!(c.compression, CompressionCodec::Zstd);
        assert_eq!(c.topic, "user.events");
        assert_eq!(c.connection.brokers, vec!["localhost:9092".to_string()]);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn byte_sizes_accept_binary_and_decimal_units() {
        assert_eq!(parse_byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_byte_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_byte_size("1048576"), Ok(1_048_576));
        assert!(
            parse_byte_size("12XB")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_byte_size("lots").unwrap_err().contains("not a size"));
    }

    #[test]
    fn invalid_values_are_named_in_the_error() {
        let mut c = ProducerConfig {
            batch_max_records: 0,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().0.contains("batch-max-messages 0"));
        c.batch_max_records = 10;
        c.connection.brokers = vec!["nohostport".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .0
                .contains("'nohostport' is not host:port")
        );
        c.connection.brokers = vec!["localhost:9092".into()];
        c.buffer_max_bytes = 10;
        assert!(c.validate().unwrap_err().0.contains("buffer-max-bytes 10"));
        c.buffer_max_bytes = DEFAULT_BUFFER_MAX_BYTES;
        c.topic = "bad topic".into();
        assert!(c.validate().unwrap_err().0.contains("topic 'bad topic'"));
    }

    #[test]
    fn sasl_password_is_hidden_from_debug_output() {
        let creds = SaslCredentials {
            mechanism: SaslMechanism::Plain,
            username: "alice".into(),
            password: "s3cret".into(),
        };
        let shown = format!("{creds:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("alice"));
    }
}
