//! Reaching the brokers: builds the rskafka client with TLS (rustls) and SASL, looks up a
//! topic's partitions, creates a topic. Fed by `ConnectionConfig`; feeds the producer
//! (partition clients) and the `consume` / `verify` readers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rskafka::BackoffConfig;
use rskafka::client::error::{Error as RskafkaError, ProtocolError};
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::{ConnectionConfig, SaslMechanism};

/// Why we could not get what we needed from the cluster. Each variant reads as a
/// sentence that says what to do.
#[derive(Debug)]
pub enum ConnectError {
    /// No broker answered within the connect timeout.
    Unreachable { brokers: String, detail: String },
    /// The broker refused our credentials.
    AuthenticationFailed { detail: String },
    /// TLS could not be set up (bad CA file) or the handshake failed.
    Tls { detail: String },
    /// The topic does not exist.
    TopicNotFound { topic: String },
    /// Anything else the cluster answered.
    Cluster { detail: String },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { brokers, detail } => write!(
                f,
                "cannot reach a Kafka broker at {brokers} ({detail}); check KAFKA_BROKER / --broker and that the broker is running (make kafka-up)"
            ),
            Self::AuthenticationFailed { detail } => write!(
                f,
                "the broker refused the SASL credentials ({detail}); check KAFKA_USERNAME, KAFKA_PASSWORD and KAFKA_SASL_MECHANISM"
            ),
            Self::Tls { detail } => write!(
                f,
                "TLS to the broker failed ({detail}); check KAFKA_TLS, KAFKA_CA_FILE and that the port is a TLS listener"
            ),
            Self::TopicNotFound { topic } => write!(
                f,
                "topic '{topic}' does not exist; create it with `kafka-producer produce --create-topic` or ask your Kafka admin"
            ),
            Self::Cluster { detail } => {
                write!(f, "the Kafka cluster answered with an error: {detail}")
            }
        }
    }
}

impl std::error::Error for ConnectError {}

/// Retry settings for rskafka's own retries: quick first retries, capped backoff, and a
/// deadline so nothing retries forever (the producer's message timeout caps sends).
fn backoff(deadline: Duration) -> BackoffConfig {
    BackoffConfig {
        init_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(1_000),
        base: 2.0,
        deadline: Some(deadline),
    }
}

/// Connects to the cluster; fails within `connect_timeout` if no broker answers, and at
/// once when a broker refuses the credentials or the TLS handshake (no retry storm).
/// `retry_deadline` bounds each later request's internal retries.
pub async fn connect(
    config: &ConnectionConfig,
    retry_deadline: Duration,
) -> Result<Client, ConnectError> {
    let brokers = config.brokers.join(",");
    let give_up_at = tokio::time::Instant::now() + config.connect_timeout;
    // Probe with short internal retries so each attempt surfaces its real error; only
    // "nobody answers" is worth trying again.
    let mut last_unreachable = None;
    loop {
        let probe = builder(config, PROBE_RETRY_DEADLINE)?.build();
        match tokio::time::timeout_at(give_up_at, probe).await {
            Ok(Ok(_)) => break,
            Ok(Err(e)) => match explain(&e, &brokers) {
                unreachable @ ConnectError::Unreachable { .. } => {
                    if tokio::time::Instant::now() + PROBE_PAUSE >= give_up_at {
                        return Err(unreachable);
                    }
                    last_unreachable = Some(unreachable);
                    tokio::time::sleep(PROBE_PAUSE).await;
                }
                fatal => return Err(fatal),
            },
            Err(_) => {
                return Err(last_unreachable.unwrap_or(ConnectError::Unreachable {
                    brokers,
                    detail: format!("no answer within {:?}", config.connect_timeout),
                }));
            }
        }
    }
    let retry_deadline = retry_deadline.max(Duration::from_millis(100));
    builder(config, retry_deadline)?
        .build()
        .await
        .map_err(|e| explain(&e, &brokers))
}

/// How long a metadata (or other non-produce) request may go unanswered before its
/// connection is dropped: half the retry deadline (the message timeout), so a hung
/// broker is left while a batch still has time to reach the new leader; at least 1 s,
/// well above a healthy broker's answer and the reader's 500 ms fetch wait.
fn request_timeout(retry_deadline: Duration) -> Duration {
    (retry_deadline / 2).max(Duration::from_secs(1))
}

/// How long one connection probe retries inside rskafka before showing its error.
const PROBE_RETRY_DEADLINE: Duration = Duration::from_millis(300);
/// Pause between probes while no broker answers.
const PROBE_PAUSE: Duration = Duration::from_millis(250);

fn builder(
    config: &ConnectionConfig,
    retry_deadline: Duration,
) -> Result<ClientBuilder, ConnectError> {
    let mut builder = ClientBuilder::new(config.brokers.clone())
        .client_id("kafka-producer")
        .backoff_config(backoff(retry_deadline))
        .request_timeout(request_timeout(retry_deadline));
    if config.tls {
        builder = builder.tls_config(Arc::new(tls_config(config)?));
    }
    if let Some(sasl) = &config.sasl {
        let credentials = Credentials::new(sasl.username.clone(), sasl.password.clone());
        builder = builder.sasl_config(match sasl.mechanism {
            SaslMechanism::Plain => SaslConfig::Plain(credentials),
            SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
            SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
        });
    }
    Ok(builder)
}

/// Turns an rskafka connection-time error into the cause a user can act on.
fn explain(error: &RskafkaError, brokers: &str) -> ConnectError {
    let detail = error.to_string();
    let lower = detail.to_lowercase();
    if lower.contains("sasl") || lower.contains("authentication") {
        ConnectError::AuthenticationFailed { detail }
    } else if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake")
    {
        ConnectError::Tls { detail }
    } else if matches!(error, RskafkaError::ServerError { .. }) {
        ConnectError::Cluster { detail }
    } else if lower.contains("early eof") {
        // The broker hung up on our first request: a TLS or SASL listener we spoke
        // plaintext to.
        ConnectError::Unreachable {
            brokers: brokers.to_string(),
            detail: format!(
                "{detail}; the port may be a TLS or SASL listener: set KAFKA_TLS / KAFKA_USERNAME"
            ),
        }
    } else {
        ConnectError::Unreachable {
            brokers: brokers.to_string(),
            detail,
        }
    }
}

fn tls_config(config: &ConnectionConfig) -> Result<rustls::ClientConfig, ConnectError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| ConnectError::Tls {
                detail: format!("cannot read CA file {}: {e}", path.display()),
            })?;
            let mut count = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| ConnectError::Tls {
                    detail: format!("CA file {} is not PEM: {e}", path.display()),
                })?;
                roots.add(cert).map_err(|e| ConnectError::Tls {
                    detail: format!("CA file {} holds a bad certificate: {e}", path.display()),
                })?;
                count += 1;
            }
            if count == 0 {
                return Err(ConnectError::Tls {
                    detail: format!("CA file {} holds no PEM certificate", path.display()),
                });
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Tls {
            detail: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// How many partitions the topic has, as the broker says now.
pub async fn partition_count(client: &Client, topic: &str) -> Result<u32, ConnectError> {
    let topics = client
        .list_topics()
        .await
        .map_err(|e| ConnectError::Cluster {
            detail: format!("listing topics: {e}"),
        })?;
    topics
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.len() as u32)
        .filter(|n| *n > 0)
        .ok_or_else(|| ConnectError::TopicNotFound {
            topic: topic.to_string(),
        })
}

/// Creates the topic unless it exists; returns true when it was created here.
pub async fn create_topic_if_missing(
    client: &Client,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
) -> Result<bool, ConnectError> {
    if partition_count(client, topic).await.is_ok() {
        return Ok(false);
    }
    let controller = client
        .controller_client()
        .map_err(|e| ConnectError::Cluster {
            detail: e.to_string(),
        })?;
    match controller
        .create_topic(topic, partitions, replication_factor, 10_000)
        .await
    {
        Ok(()) => Ok(true),
        Err(RskafkaError::ServerError {
            protocol_error: ProtocolError::TopicAlreadyExists,
            ..
        }) => Ok(false),
        Err(e) => Err(ConnectError::Cluster {
            detail: format!(
                "creating topic '{topic}' with {partitions} partitions, replication factor {replication_factor}: {e}"
            ),
        }),
    }
}

/// A client bound to one partition of the topic; missing topics are errors, not retried.
pub async fn partition_client(
    client: &Client,
    topic: &str,
    partition: i32,
) -> Result<PartitionClient, ConnectError> {
    client
        .partition_client(topic, partition, UnknownTopicHandling::Error)
        .await
        .map_err(|e| match e {
            RskafkaError::ServerError {
                protocol_error: ProtocolError::UnknownTopicOrPartition,
                ..
            } => ConnectError::TopicNotFound {
                topic: topic.to_string(),
            },
            other => ConnectError::Cluster {
                detail: format!("partition {partition} of '{topic}': {other}"),
            },
        })
}
