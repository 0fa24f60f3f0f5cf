//! The options shared by commands: how to reach the brokers (every command that connects)
//! and the engine's limits (`produce` and the sample run). Each maps to one field of
//! `ProducerConfig`, takes its default and accepted range from `config`, and is checked as
//! it is parsed, so a bad value fails before anything connects.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use kafka_producer::config::{
    self, CompressionCodec, ConnectionConfig, ProducerConfig, SaslCredentials, SaslMechanism,
};
use kafka_producer::partitioner::Partitioner;

use super::CliError;

#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
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
    #[arg(long, env = "KAFKA_SASL_MECHANISM", default_value_t = SaslMechanism::default(), global = true,
          value_parser = parse_sasl_mechanism)]
    pub sasl_mechanism: SaslMechanism,

    /// Use TLS (rustls) to reach the brokers.
    #[arg(long, env = "KAFKA_TLS", default_value_t = false, value_parser = parse_bool, global = true)]
    pub tls: bool,

    /// PEM file with the CA that signed the brokers' certificates (default: public roots).
    #[arg(long, env = "KAFKA_CA_FILE", global = true)]
    pub ca_file: Option<std::path::PathBuf>,

    /// How long to wait for a broker to answer at start-up, e.g. 10s (a bare number is seconds).
    #[arg(long, alias = "connect-timeout-s", env = "KAFKA_CONNECT_TIMEOUT_S", global = true,
          default_value_t = Span(config::DEFAULT_CONNECT_TIMEOUT),
          value_parser = duration_in(config::CONNECT_TIMEOUT_RANGE, "s"))]
    pub connect_timeout: Span,
}

/// Variables renamed to the setting they set, each with the name it had before: the old
/// name is still read when the new one is unset, so existing deployments keep working.
const RENAMED_VARIABLES: [(&str, &str); 2] = [
    ("KAFKA_BATCH_MAX_MESSAGES", "KAFKA_BATCH_MAX_RECORDS"),
    ("KAFKA_BUFFER_MAX_MESSAGES", "KAFKA_BUFFER_MAX_RECORDS"),
];

/// Sets each renamed variable from its old name when only the old one is set.
///
/// # Safety
/// Changes the process environment: call it before any other thread runs.
pub unsafe fn read_renamed_variables() {
    for (old, new) in RENAMED_VARIABLES {
        if std::env::var_os(new).is_none()
            && let Some(value) = std::env::var_os(old)
        {
            // SAFETY: the caller promises that no other thread runs yet.
            unsafe { std::env::set_var(new, value) };
        }
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Batching and delivery")]
pub struct EngineArgs {
    /// Records per batch at most (librdkafka batch.num.messages).
    #[arg(long, alias = "batch-max-messages", env = "KAFKA_BATCH_MAX_RECORDS",
          default_value_t = config::DEFAULT_BATCH_MAX_RECORDS,
          value_parser = integer_in(config::BATCH_MAX_RECORDS_RANGE))]
    pub batch_max_records: usize,

    /// Encoded record bytes per batch at most, e.g. 1000000 or 1MiB (below the broker's max.message.bytes).
    #[arg(long, env = "KAFKA_BATCH_MAX_BYTES",
          default_value_t = Size(config::DEFAULT_BATCH_MAX_BYTES as u64),
          value_parser = bytes_in(to_u64(config::BATCH_MAX_BYTES_RANGE)))]
    pub batch_max_bytes: Size,

    /// How long a batch waits for more records, e.g. 5ms (linger.ms; a bare number is ms).
    #[arg(long, alias = "linger-ms", env = "KAFKA_LINGER_MS", default_value_t = Span(config::DEFAULT_LINGER),
          value_parser = duration_in(config::LINGER_RANGE, "ms"))]
    pub linger: Span,

    /// Time from acceptance to acknowledgement before an event fails, e.g. 5s (message.timeout.ms; a bare number is ms).
    #[arg(long, alias = "message-timeout-ms", env = "KAFKA_MESSAGE_TIMEOUT_MS", default_value_t = Span(config::DEFAULT_MESSAGE_TIMEOUT),
          value_parser = duration_in(config::MESSAGE_TIMEOUT_RANGE, "ms"))]
    pub message_timeout: Span,

    /// Bytes accepted but not yet reported, e.g. 1GiB, 512MiB, 1.5GB (queue.buffering.max.kbytes).
    #[arg(long, env = "KAFKA_BUFFER_MAX_BYTES", default_value_t = Size(config::DEFAULT_BUFFER_MAX_BYTES),
          value_parser = bytes_in(config::BUFFER_MAX_BYTES_RANGE))]
    pub buffer_max_bytes: Size,

    /// Events accepted but not yet reported (queue.buffering.max.messages).
    #[arg(long, alias = "buffer-max-messages", env = "KAFKA_BUFFER_MAX_RECORDS",
          default_value_t = config::DEFAULT_BUFFER_MAX_RECORDS,
          value_parser = integer_in(config::BUFFER_MAX_RECORDS_RANGE))]
    pub buffer_max_records: usize,

    /// Batch compression: none, gzip, lz4, snappy, zstd (compression.type).
    #[arg(long, env = "KAFKA_COMPRESSION", default_value_t = CompressionCodec::default(),
          value_parser = parse_compression)]
    pub compression: CompressionCodec,

    /// How often the topic's partition count is re-read, e.g. 5m (topic.metadata.refresh.interval.ms; a bare number is ms).
    #[arg(long, alias = "metadata-refresh-ms", env = "KAFKA_METADATA_REFRESH_MS", default_value_t = Span(config::DEFAULT_METADATA_REFRESH),
          value_parser = duration_in(config::METADATA_REFRESH_RANGE, "ms"))]
    pub metadata_refresh: Span,

    /// Partitioner: murmur2 (Java client, librdkafka murmur2_random) or consistent_random.
    #[arg(long, env = "KAFKA_PARTITIONER", default_value_t = Partitioner::default(),
          value_parser = parse_partitioner)]
    pub partitioner: Partitioner,

    /// Idempotent writes: no duplicates from retries, order kept (enable.idempotence).
    #[arg(long, env = "KAFKA_IDEMPOTENCE", default_value_t = config::DEFAULT_IDEMPOTENCE,
          value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub idempotence: bool,

    /// Produce requests in flight per broker, 1..=5 with idempotence (max.in.flight.requests.per.connection).
    #[arg(long, env = "KAFKA_MAX_IN_FLIGHT", default_value_t = config::DEFAULT_MAX_IN_FLIGHT,
          value_parser = integer_in(config::MAX_IN_FLIGHT_RANGE))]
    pub max_in_flight: usize,

    /// Record batch bytes per produce request at most, e.g. 1MiB (max.request.size).
    #[arg(long, env = "KAFKA_MAX_REQUEST_BYTES",
          default_value_t = Size(config::DEFAULT_MAX_REQUEST_BYTES as u64),
          value_parser = bytes_in(to_u64(config::MAX_REQUEST_BYTES_RANGE)))]
    pub max_request_bytes: Size,

    /// Unanswered produce request before its connection is dropped and its batches retried, e.g. 3s (request.timeout.ms; a bare number is ms).
    #[arg(long, alias = "request-timeout-ms", env = "KAFKA_REQUEST_TIMEOUT_MS",
          default_value_t = Span(config::DEFAULT_REQUEST_TIMEOUT),
          value_parser = duration_in(config::REQUEST_TIMEOUT_RANGE, "ms"))]
    pub request_timeout: Span,

    /// Pause before a failed batch is sent again, e.g. 100ms (retry.backoff.ms; a bare number is ms).
    #[arg(long, alias = "retry-backoff-ms", env = "KAFKA_RETRY_BACKOFF_MS",
          default_value_t = Span(config::DEFAULT_RETRY_BACKOFF),
          value_parser = duration_in(config::RETRY_BACKOFF_RANGE, "ms"))]
    pub retry_backoff: Span,
}

/// The library's setting names and the flag and variable that set each: a library error
/// names its setting, the CLI's names the flag.
const SETTING_FLAGS: [(&str, &str); 17] = [
    ("connection.brokers", "--broker (KAFKA_BROKER)"),
    (
        "connection.connect_timeout",
        "--connect-timeout (KAFKA_CONNECT_TIMEOUT_S)",
    ),
    ("connection.sasl.username", "--username (KAFKA_USERNAME)"),
    (
        "batch_max_records",
        "--batch-max-records (KAFKA_BATCH_MAX_RECORDS)",
    ),
    (
        "batch_max_bytes",
        "--batch-max-bytes (KAFKA_BATCH_MAX_BYTES)",
    ),
    ("linger", "--linger (KAFKA_LINGER_MS)"),
    (
        "message_timeout",
        "--message-timeout (KAFKA_MESSAGE_TIMEOUT_MS)",
    ),
    (
        "buffer_max_bytes",
        "--buffer-max-bytes (KAFKA_BUFFER_MAX_BYTES)",
    ),
    (
        "buffer_max_records",
        "--buffer-max-records (KAFKA_BUFFER_MAX_RECORDS)",
    ),
    (
        "metadata_refresh",
        "--metadata-refresh (KAFKA_METADATA_REFRESH_MS)",
    ),
    ("compression", "--compression (KAFKA_COMPRESSION)"),
    ("partitioner", "--partitioner (KAFKA_PARTITIONER)"),
    ("idempotence", "--idempotence (KAFKA_IDEMPOTENCE)"),
    ("max_in_flight", "--max-in-flight (KAFKA_MAX_IN_FLIGHT)"),
    (
        "max_request_bytes",
        "--max-request-bytes (KAFKA_MAX_REQUEST_BYTES)",
    ),
    (
        "request_timeout",
        "--request-timeout (KAFKA_REQUEST_TIMEOUT_MS)",
    ),
    ("retry_backoff", "--retry-backoff (KAFKA_RETRY_BACKOFF_MS)"),
];

/// The flag and variable of a `ProducerConfig` setting, or the setting's own name.
pub fn flag_of(setting: &str) -> &str {
    SETTING_FLAGS
        .iter()
        .find(|(s, _)| *s == setting)
        .map_or(setting, |(_, flag)| flag)
}

/// A library configuration error in the CLI's words: the setting it starts with becomes
/// the flag (and variable) that sets it.
pub fn in_flag_terms(message: &str) -> String {
    for (setting, flag) in SETTING_FLAGS {
        if let Some(rest) = message.strip_prefix(setting)
            && rest.starts_with([' ', ':'])
        {
            return format!("{flag}{rest}");
        }
    }
    message.to_string()
}

/// A clap value parser: an integer within `range`; anything else (a sign where none is
/// allowed, a fraction, an overflowing number, NaN) is refused with the range.
pub fn integer_in<T>(
    range: RangeInclusive<T>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Clone + Send + Sync + 'static,
{
    move |text| {
        text.trim()
            .parse::<T>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| format!("must be an integer in {}..={}", range.start(), range.end()))
    }
}

/// A duration option's value; shown as a person writes it (`0`, `5ms`, `15m`, `1h`, `365d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const DAY: u64 = 86_400;
        let d = self.0;
        if d.is_zero() {
            f.write_str("0")
        } else if d.subsec_nanos() == 0 && d.as_secs() % DAY == 0 {
            write!(f, "{}d", d.as_secs() / DAY)
        } else {
            write!(f, "{}", humantime::format_duration(d))
        }
    }
}

/// A byte-size option's value; shown in the largest binary unit that divides it (`1GiB`),
/// else in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if n != 0 && n % (1u64 << shift) == 0 {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

/// A clap value parser: a duration within `range`, e.g. `500ms`, `5s`, `2m`, `1h 30m`
/// (humantime); a bare number is in `bare_unit`.
pub fn duration_in(
    range: RangeInclusive<Duration>,
    bare_unit: &'static str,
) -> impl Fn(&str) -> Result<Span, String> + Clone + Send + Sync + 'static {
    move |text| {
        let t = text.trim();
        let parsed = if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
            humantime::parse_duration(&format!("{t}{bare_unit}"))
        } else {
            humantime::parse_duration(t)
        };
        parsed
            .ok()
            .filter(|d| range.contains(d))
            .map(Span)
            .ok_or_else(|| {
                format!(
                    "must be a duration from {} to {} (e.g. 500ms, 5s, 2m; a bare number is {bare_unit})",
                    Span(*range.start()),
                    Span(*range.end())
                )
            })
    }
}

/// A clap value parser: a byte size within `range`, e.g. `1000000`, `512KiB`, `1.5GiB`,
/// `10MB` (bytesize: binary and decimal units).
pub fn bytes_in(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Size, String> + Clone + Send + Sync + 'static {
    move |text| {
        text.trim()
            .parse::<bytesize::ByteSize>()
            .ok()
            .map(|size| size.as_u64())
            // bytesize saturates what overflows; u64::MAX is never a size anyone means.
            .filter(|n| *n < u64::MAX && range.contains(n))
            .map(Size)
            .ok_or_else(|| {
                format!(
                    "must be a size in {}..={} bytes (e.g. 1000000, 512KiB, 1.5MiB, 1GB)",
                    range.start(),
                    range.end()
                )
            })
    }
}

fn to_u64(range: RangeInclusive<usize>) -> RangeInclusive<u64> {
    *range.start() as u64..=*range.end() as u64
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(format!(
            "'{text}' must be true or false (or 1/0, yes/no, on/off)"
        )),
    }
}

fn parse_sasl_mechanism(text: &str) -> Result<SaslMechanism, String> {
    text.parse()
}

fn parse_compression(text: &str) -> Result<CompressionCodec, String> {
    text.parse()
}

fn parse_partitioner(text: &str) -> Result<Partitioner, String> {
    text.parse()
}

impl ConnectionArgs {
    /// The connection settings and topic, validated: a bad value fails here, before any
    /// connection is made.
    pub fn to_config(&self) -> Result<ConnectionConfig, CliError> {
        let brokers = self
            .broker
            .split(',')
            .map(|b| b.trim().to_string())
            .collect();
        let sasl = match (&self.username, &self.password) {
            (None, None) => None,
            (Some(username), Some(password)) => Some(SaslCredentials {
                mechanism: self.sasl_mechanism,
                username: username.clone(),
                password: password.clone(),
            }),
            _ => {
                return Err(CliError::usage(
                    "SASL needs both KAFKA_USERNAME and KAFKA_PASSWORD (or --username and --password)",
                ));
            }
        };
        let connection = ConnectionConfig {
            brokers,
            tls: self.tls,
            ca_file: self.ca_file.clone(),
            sasl,
            connect_timeout: self.connect_timeout.0,
        };
        connection.validate()?;
        config::validate_topic(&self.topic)?;
        Ok(connection)
    }
}

impl EngineArgs {
    /// The engine settings as the environment variables give them, for the run without a
    /// command (which takes no engine flags of its own).
    pub fn from_env() -> Result<Self, clap::Error> {
        let command = Self::augment_args(clap::Command::new("kafka-producer"));
        Self::from_arg_matches(&command.try_get_matches_from(["kafka-producer"])?)
    }

    /// The defaults of `config`, whatever the environment says: for commands that only
    /// read, whose engine settings do not matter.
    pub fn defaults() -> Self {
        Self {
            batch_max_records: config::DEFAULT_BATCH_MAX_RECORDS,
            batch_max_bytes: Size(config::DEFAULT_BATCH_MAX_BYTES as u64),
            linger: Span(config::DEFAULT_LINGER),
            message_timeout: Span(config::DEFAULT_MESSAGE_TIMEOUT),
            buffer_max_bytes: Size(config::DEFAULT_BUFFER_MAX_BYTES),
            buffer_max_records: config::DEFAULT_BUFFER_MAX_RECORDS,
            compression: CompressionCodec::default(),
            partitioner: Partitioner::default(),
            metadata_refresh: Span(config::DEFAULT_METADATA_REFRESH),
            idempotence: config::DEFAULT_IDEMPOTENCE,
            max_in_flight: config::DEFAULT_MAX_IN_FLIGHT,
            max_request_bytes: Size(config::DEFAULT_MAX_REQUEST_BYTES as u64),
            request_timeout: Span(config::DEFAULT_REQUEST_TIMEOUT),
            retry_backoff: Span(config::DEFAULT_RETRY_BACKOFF),
        }
    }

    /// The full producer configuration, validated: a bad value fails here, before any
    /// connection is made.
    pub fn to_config(&self, connection: &ConnectionArgs) -> Result<ProducerConfig, CliError> {
        let config = ProducerConfig {
            connection: connection.to_config()?,
            topic: connection.topic.clone(),
            batch_max_records: self.batch_max_records,
            // In range (at most 100 MB) by the value parser.
            batch_max_bytes: self.batch_max_bytes.0 as usize,
            linger: self.linger.0,
            message_timeout: self.message_timeout.0,
            buffer_max_bytes: self.buffer_max_bytes.0,
            buffer_max_records: self.buffer_max_records,
            compression: self.compression,
            partitioner: self.partitioner,
            metadata_refresh: self.metadata_refresh.0,
            idempotence: self.idempotence,
            max_in_flight: self.max_in_flight,
            // In range (at most 1 GB) by the value parser.
            max_request_bytes: self.max_request_bytes.0 as usize,
            request_timeout: self.request_timeout.0,
            retry_backoff: self.retry_backoff.0,
        };
        config.validate()?;
        Ok(config)
    }
}
