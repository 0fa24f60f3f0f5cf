//! Every setting of the producer, its default, and the check that rejects a bad value.
//! The CLI (or a library user) fills a `ProducerConfig`; `Producer::connect` consumes it.
//!
//! All defaults live here, each next to the librdkafka / Java setting it mirrors.

use std::fmt;
use std::ops::RangeInclusive;
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
/// How long a connection with produce requests on it may answer nothing before it is
/// dropped and their batches retried (if their message timeout allows); a slow broker
/// that keeps answering keeps its connection. Java `request.timeout.ms`,
/// scaled to the 5 s message timeout (the Java default is 30 s against a 120 s
/// delivery timeout). Also the time the broker may wait for the in-sync replicas.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(3_000);
/// Pause before a failed batch is sent again: Java / librdkafka `retry.backoff.ms`.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Largest value accepted for the buffer, so one event's size always fits a permit count.
pub const MAX_BUFFER_MAX_BYTES: u64 = u32::MAX as u64;
/// How long start-up may spend reaching a broker.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Partitions of a topic the CLI creates (`--create-topic`, or the default topic when the
/// sample run finds it missing): the original deployment's count.
pub const DEFAULT_TOPIC_PARTITIONS: i32 = 3;
/// Replication factor of a topic the CLI creates: one copy, as on a single local broker.
pub const DEFAULT_REPLICATION_FACTOR: i16 = 1;
/// How long a topic just created may take until the broker serves all its partitions:
/// a busy broker took over 10 s here to create a topic's partition logs.
pub const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between the checks of whether a topic just created is served.
pub const TOPIC_READY_POLL: Duration = Duration::from_millis(100);
/// How long the controller may take to create a topic: the CreateTopics request's
/// `timeout_ms` (the Java admin client sends its `request.timeout.ms`, 30 s there).
pub const CREATE_TOPIC_TIMEOUT: Duration = Duration::from_secs(10);
/// Most partitions one producer serves: the worker slots are allocated up front so
/// `send` finds a worker without a lock even while partitions are being added.
pub const MAX_PARTITIONS: usize = 4096;

// rskafka's own retries (connections, metadata, InitProducerId); produce requests are
// retried by the engine, with `retry_backoff`.

/// First pause of rskafka's own retries, doubled after each: librdkafka
/// `reconnect.backoff.ms` (100 ms there).
pub const CLIENT_RETRY_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause of rskafka's own retries: librdkafka `reconnect.backoff.max.ms` (10 s
/// there), short here since the message timeout bounds the retries anyway.
pub const CLIENT_RETRY_BACKOFF_MAX: Duration = Duration::from_millis(1_000);
/// Shortest deadline for rskafka's own retries of one request, whatever the message
/// timeout.
pub const CLIENT_RETRY_DEADLINE_MIN: Duration = Duration::from_millis(100);
/// Shortest time a metadata (or other non-produce) request may go unanswered before its
/// connection is dropped: well above a healthy broker's answer and the reader's 500 ms
/// fetch wait (Java `request.timeout.ms` covers these too).
pub const CLIENT_REQUEST_TIMEOUT_MIN: Duration = Duration::from_secs(1);
/// How long one connection probe at start-up retries inside rskafka before showing its
/// error, so a refusal (credentials, TLS) is seen at once.
pub const CONNECT_PROBE_RETRY_DEADLINE: Duration = Duration::from_millis(300);
/// Pause between connection probes at start-up while no broker answers: librdkafka
/// `reconnect.backoff.ms` scaled down.
pub const CONNECT_PROBE_PAUSE: Duration = Duration::from_millis(250);
/// How long start-up waits for a producer id (idempotence) while brokers answer "not
/// yet": a broker that just started hands out ids only once it has a block of them.
pub const INIT_PRODUCER_ID_PATIENCE: Duration = Duration::from_secs(15);
/// Pause between those attempts.
pub const INIT_PRODUCER_ID_RETRY_PAUSE: Duration = Duration::from_millis(200);

// The values each setting accepts, checked by `validate()` and by the CLI as it parses.

/// `batch_max_records`: librdkafka's range for `batch.num.messages`.
pub const BATCH_MAX_RECORDS_RANGE: RangeInclusive<usize> = 1..=1_000_000;
/// `batch_max_bytes`: at least one small event, at most the broker's largest
/// `message.max.bytes` worth having.
pub const BATCH_MAX_BYTES_RANGE: RangeInclusive<usize> = 1_000..=100_000_000;
/// `linger`: librdkafka's range for `linger.ms` (0 to 900,000 ms).
pub const LINGER_RANGE: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(900);
/// `message_timeout`: 1 ms to an hour.
pub const MESSAGE_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(3_600);
/// `buffer_max_bytes`: at least `batch_max_bytes` (checked by `validate()`), at most
/// [`MAX_BUFFER_MAX_BYTES`].
pub const BUFFER_MAX_BYTES_RANGE: RangeInclusive<u64> =
    *BATCH_MAX_BYTES_RANGE.start() as u64..=MAX_BUFFER_MAX_BYTES;
/// `buffer_max_records`: librdkafka's range for `queue.buffering.max.messages`.
pub const BUFFER_MAX_RECORDS_RANGE: RangeInclusive<usize> = 1..=2_147_483_647;
/// `metadata_refresh`: 100 ms to librdkafka's maximum of
/// `topic.metadata.refresh.interval.ms` (an hour).
pub const METADATA_REFRESH_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(3_600);
/// `max_in_flight`: 1 to 1000 requests per broker, at most [`MAX_IN_FLIGHT_IDEMPOTENT`]
/// with idempotence (checked by `validate()`).
pub const MAX_IN_FLIGHT_RANGE: RangeInclusive<usize> = 1..=1_000;
/// `max_request_bytes`: at least one small batch, at most 1 GB.
pub const MAX_REQUEST_BYTES_RANGE: RangeInclusive<usize> = 1_000..=1_000_000_000;
/// `request_timeout`: 100 ms to an hour.
pub const REQUEST_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(3_600);
/// `retry_backoff`: none to a minute.
pub const RETRY_BACKOFF_RANGE: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(60);
/// `connection.connect_timeout`: 1 s to an hour.
pub const CONNECT_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3_600);

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

/// SASL mechanism for `KAFKA_SASL_MECHANISM`; PLAIN unless set, as librdkafka's `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaslMechanism {
    #[default]
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

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        })
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
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
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

impl ConnectionConfig {
    /// Checks the broker list, the SASL credentials and the connect timeout; the first bad
    /// value is explained in words, starting with the setting's name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError(msg));
        if self.brokers.is_empty() || self.brokers.iter().any(|b| b.is_empty()) {
            return bad("connection.brokers is empty: give at least one host:port".into());
        }
        for b in &self.brokers {
            match b.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                _ => {
                    return bad(format!(
                        "connection.brokers: '{b}' is not host:port (for example localhost:9092)"
                    ));
                }
            }
        }
        if !CONNECT_TIMEOUT_RANGE.contains(&self.connect_timeout) {
            return bad(format!(
                "connection.connect_timeout {:?} is out of range ({CONNECT_TIMEOUT_RANGE:?})",
                self.connect_timeout
            ));
        }
        if let Some(sasl) = &self.sasl
            && sasl.username.is_empty()
        {
            return bad(
                "connection.sasl.username is empty: SASL needs both a user name and a password"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Checks a topic name as Kafka does: 1-249 characters of a-z, A-Z, 0-9, '.', '_', '-'.
pub fn validate_topic(topic: &str) -> Result<(), ConfigError> {
    if topic.is_empty()
        || topic.len() > 249
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(ConfigError(format!(
            "topic '{topic}' is not a valid Kafka topic name (1-249 characters of a-z, A-Z, 0-9, '.', '_', '-')"
        )));
    }
    Ok(())
}

impl ProducerConfig {
    /// Checks every value; the first bad one is explained in words, starting with the
    /// setting's name (`batch_max_bytes ...`), so a front end can name its own flag instead.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError(msg));
        self.connection.validate()?;
        validate_topic(&self.topic)?;
        if !BATCH_MAX_RECORDS_RANGE.contains(&self.batch_max_records) {
            return bad(format!(
                "batch_max_records {} is out of range ({BATCH_MAX_RECORDS_RANGE:?})",
                self.batch_max_records
            ));
        }
        if !BATCH_MAX_BYTES_RANGE.contains(&self.batch_max_bytes) {
            return bad(format!(
                "batch_max_bytes {} is out of range ({BATCH_MAX_BYTES_RANGE:?} bytes)",
                self.batch_max_bytes
            ));
        }
        if !LINGER_RANGE.contains(&self.linger) {
            return bad(format!(
                "linger {:?} is out of range ({LINGER_RANGE:?})",
                self.linger
            ));
        }
        if !MESSAGE_TIMEOUT_RANGE.contains(&self.message_timeout) {
            return bad(format!(
                "message_timeout {:?} is out of range ({MESSAGE_TIMEOUT_RANGE:?})",
                self.message_timeout
            ));
        }
        if self.buffer_max_bytes < self.batch_max_bytes as u64
            || self.buffer_max_bytes > MAX_BUFFER_MAX_BYTES
        {
            return bad(format!(
                "buffer_max_bytes {} is out of range (batch_max_bytes {} ..= {} bytes)",
                self.buffer_max_bytes, self.batch_max_bytes, MAX_BUFFER_MAX_BYTES
            ));
        }
        if !METADATA_REFRESH_RANGE.contains(&self.metadata_refresh) {
            return bad(format!(
                "metadata_refresh {:?} is out of range ({METADATA_REFRESH_RANGE:?})",
                self.metadata_refresh
            ));
        }
        if !BUFFER_MAX_RECORDS_RANGE.contains(&self.buffer_max_records) {
            return bad(format!(
                "buffer_max_records {} is out of range ({BUFFER_MAX_RECORDS_RANGE:?})",
                self.buffer_max_records
            ));
        }
        let max_in_flight = if self.idempotence {
            MAX_IN_FLIGHT_IDEMPOTENT
        } else {
            *MAX_IN_FLIGHT_RANGE.end()
        };
        if !(1..=max_in_flight).contains(&self.max_in_flight) {
            return bad(format!(
                "max_in_flight {} is out of range (1..={max_in_flight}{})",
                self.max_in_flight,
                if self.idempotence {
                    " with idempotence: the broker recognises retries among a partition's last 5 batches"
                } else {
                    ""
                }
            ));
        }
        if !MAX_REQUEST_BYTES_RANGE.contains(&self.max_request_bytes) {
            return bad(format!(
                "max_request_bytes {} is out of range ({MAX_REQUEST_BYTES_RANGE:?} bytes)",
                self.max_request_bytes
            ));
        }
        if !REQUEST_TIMEOUT_RANGE.contains(&self.request_timeout) {
            return bad(format!(
                "request_timeout {:?} is out of range ({REQUEST_TIMEOUT_RANGE:?})",
                self.request_timeout
            ));
        }
        if !RETRY_BACKOFF_RANGE.contains(&self.retry_backoff) {
            return bad(format!(
                "retry_backoff {:?} is out of range ({RETRY_BACKOFF_RANGE:?})",
                self.retry_backoff
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_mirror_the_original_librdkafka_and_the_java_client_settings() {
        let c = ProducerConfig::default();
        assert_eq!(c.batch_max_records, 10_000);
        assert_eq!(c.batch_max_bytes, 1_000_000);
        assert_eq!(c.linger, Duration::from_millis(5));
        assert_eq!(c.metadata_refresh, Duration::from_millis(300_000));
        assert_eq!(c.partitioner, Partitioner::Murmur2);
        assert_eq!(c.connection.connect_timeout, Duration::from_secs(10));
        assert_eq!(c.message_timeout, Duration::from_millis(5000));
        assert_eq!(c.buffer_max_bytes, 1_048_576 * 1024);
        assert_eq!(c.buffer_max_records, 100_000);
        assert_eq!(c.compression, CompressionCodec::Zstd);
        // Java's producer settings: enable.idempotence, max.in.flight.requests.per.connection,
        // max.request.size and retry.backoff.ms as there; request.timeout.ms scaled down.
        assert!(c.idempotence);
        assert_eq!(c.max_in_flight, 5);
        assert_eq!(c.max_request_bytes, 1_048_576);
        assert_eq!(c.request_timeout, Duration::from_millis(3_000));
        assert_eq!(c.retry_backoff, Duration::from_millis(100));
        assert_eq!(c.topic, "user.events");
        assert_eq!(c.connection.brokers, vec!["localhost:9092".to_string()]);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn invalid_values_are_named_in_the_error() {
        let mut c = ProducerConfig {
            batch_max_records: 0,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().0.contains("batch_max_records 0"));
        c.batch_max_records = 10;
        c.connection.brokers = vec!["nohostport".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .0
                .contains("connection.brokers: 'nohostport' is not host:port")
        );
        c.connection.brokers = vec!["localhost:9092".into()];
        c.buffer_max_bytes = 10;
        assert!(c.validate().unwrap_err().0.contains("buffer_max_bytes 10"));
        c.buffer_max_bytes = DEFAULT_BUFFER_MAX_BYTES;
        c.topic = "bad topic".into();
        assert!(c.validate().unwrap_err().0.contains("topic 'bad topic'"));
    }

    #[test]
    fn sasl_mechanism_names_parse_back() {
        for mechanism in [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
        ] {
            assert_eq!(mechanism.to_string().parse(), Ok(mechanism));
        }
        assert_eq!(SaslMechanism::default(), SaslMechanism::Plain);
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
