//! Reaching the brokers: builds the rskafka client with TLS (rustls) and SASL, looks up a
//! topic's partitions, creates a topic. Fed by `ConnectionConfig`; feeds the producer
//! (partition clients) and the `consume` / `verify` readers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::error::{Error as RskafkaError, ProtocolError, RequestError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::{BackoffConfig, ConnectionError, MultiError, SaslError};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::{
    CLIENT_REQUEST_TIMEOUT_MIN, CLIENT_RETRY_BACKOFF, CLIENT_RETRY_BACKOFF_MAX,
    CLIENT_RETRY_DEADLINE_MIN, CONNECT_PROBE_PAUSE, CONNECT_PROBE_RETRY_DEADLINE,
    CREATE_TOPIC_TIMEOUT, ConnectionConfig, ProducerConfig, SaslMechanism, TOPIC_READY_POLL,
};

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
    /// The cluster's ACLs refuse this principal what it asked for: `what` names it, the
    /// broker's answer and the ACL it takes.
    NotAuthorized { what: String },
    /// Anything else the cluster answered.
    Cluster { detail: String },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { brokers, detail } => write!(
                f,
                "cannot reach a Kafka broker at {brokers} ({detail}); check ConnectionConfig::brokers and that the broker is running"
            ),
            Self::AuthenticationFailed { detail } => write!(
                f,
                "the broker refused the SASL credentials ({detail}); check ConnectionConfig::sasl (user name, password, mechanism)"
            ),
            Self::Tls { detail } => write!(
                f,
                "TLS to the broker failed ({detail}); check ConnectionConfig::tls and ca_file, and that the port is a TLS listener"
            ),
            Self::TopicNotFound { topic } => write!(
                f,
                "topic '{topic}' does not exist; create it (connect::create_topic_if_missing) or ask your Kafka admin"
            ),
            Self::NotAuthorized { what } => write!(
                f,
                "the cluster refused this principal {what}; ask your Kafka admin for that ACL, or check ConnectionConfig::sasl (the user name)"
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
        init_backoff: CLIENT_RETRY_BACKOFF,
        max_backoff: CLIENT_RETRY_BACKOFF_MAX,
        base: 2.0,
        deadline: Some(deadline),
    }
}

/// Connects to the cluster; fails within `connect_timeout` if no broker answers, and at
/// once when a broker refuses the credentials or the TLS handshake (no retry storm).
/// `request_timeout` is how long a later metadata (or other non-produce) request may go
/// unanswered before its connection is dropped (`request.timeout.ms`, at least
/// [`CLIENT_REQUEST_TIMEOUT_MIN`]); `retry_deadline`, the delivery timeout, bounds each
/// such request's internal retries.
pub async fn connect(
    config: &ConnectionConfig,
    request_timeout: Duration,
    retry_deadline: Duration,
) -> Result<Client, ConnectError> {
    let brokers = config.brokers.join(",");
    let give_up_at = tokio::time::Instant::now() + config.connect_timeout;
    // Probe with short internal retries so each attempt surfaces its real error; only
    // "nobody answers" is worth trying again.
    // The cause reported if no probe gets through: the latest, unless an earlier one
    // saw the broker hang up on us, which says more than a later timeout.
    let mut last_unreachable = None;
    let mut hung_up_seen = false;
    loop {
        let probe = builder(config, request_timeout, CONNECT_PROBE_RETRY_DEADLINE)?.build();
        match tokio::time::timeout_at(give_up_at, probe).await {
            Ok(Ok(_)) => break,
            Ok(Err(e)) => match explain(&e, &brokers) {
                unreachable @ ConnectError::Unreachable { .. } => {
                    let hung_up = hung_up_on_us(&e);
                    let kept = match last_unreachable.take() {
                        Some(earlier) if hung_up_seen && !hung_up => earlier,
                        _ => unreachable,
                    };
                    hung_up_seen |= hung_up;
                    if tokio::time::Instant::now() + CONNECT_PROBE_PAUSE >= give_up_at {
                        return Err(kept);
                    }
                    last_unreachable = Some(kept);
                    tokio::time::sleep(CONNECT_PROBE_PAUSE).await;
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
    let retry_deadline = retry_deadline.max(CLIENT_RETRY_DEADLINE_MIN);
    builder(config, request_timeout, retry_deadline)?
        .build()
        .await
        .map_err(|e| explain(&e, &brokers))
}

/// The client a producer's settings ask for: its request timeout for each metadata
/// request, its message timeout (the delivery timeout) as the bound on their retries.
pub async fn connect_for(config: &ProducerConfig) -> Result<Client, ConnectError> {
    connect(
        &config.connection,
        config.effective_request_timeout(),
        config.message_timeout,
    )
    .await
}

fn builder(
    config: &ConnectionConfig,
    request_timeout: Duration,
    retry_deadline: Duration,
) -> Result<ClientBuilder, ConnectError> {
    let mut builder = ClientBuilder::new(config.brokers.clone())
        .client_id("kafka-producer")
        .backoff_config(backoff(retry_deadline))
        .request_timeout(request_timeout.max(CLIENT_REQUEST_TIMEOUT_MIN));
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

/// Turns an rskafka connection-time error into the cause a user can act on, by the
/// types of the errors it wraps.
fn explain(error: &RskafkaError, brokers: &str) -> ConnectError {
    let detail = error.to_string();
    if matches!(error, RskafkaError::ServerError { .. }) {
        return ConnectError::Cluster { detail };
    }
    let mut causes = Vec::new();
    collect_causes(error, &mut causes);
    if causes.iter().any(|e| e.is::<SaslError>()) {
        ConnectError::AuthenticationFailed { detail }
    } else if causes.iter().any(|e| is_tls_failure(*e)) {
        ConnectError::Tls { detail }
    } else if hung_up_on_us(error) {
        // The broker hung up on our first request: a TLS or SASL listener we spoke
        // plaintext to.
        ConnectError::Unreachable {
            brokers: brokers.to_string(),
            detail: format!("{detail}; the port may be a TLS or SASL listener"),
        }
    } else {
        ConnectError::Unreachable {
            brokers: brokers.to_string(),
            detail,
        }
    }
}

/// The broker closed the connection in the middle of its answer (for example a TLS or
/// SASL listener that a plaintext client spoke to).
fn hung_up_on_us(error: &RskafkaError) -> bool {
    let mut causes = Vec::new();
    collect_causes(error, &mut causes);
    causes.iter().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
    })
}

/// `error` and every error under it: its `source()` chain, each broker's error of a
/// connection attempt, and what rskafka keeps in fields that are not sources.
fn collect_causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
    causes: &mut Vec<&'a (dyn std::error::Error + 'static)>,
) {
    causes.push(error);
    // rskafka's retries keep the last attempt's error as a shared `Arc`, whose own
    // `source()` skips the error it holds.
    if let Some(shared) = error.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>() {
        collect_causes(shared.as_ref(), causes);
    }
    if let Some(RequestError::Poisoned(cause)) = error.downcast_ref::<RequestError>() {
        collect_causes(cause.as_ref(), causes);
    }
    if let Some(each) = error.downcast_ref::<MultiError>() {
        for e in each.errors() {
            collect_causes(e, causes);
        }
    }
    match error.downcast_ref::<ConnectionError>() {
        Some(ConnectionError::RetryFailed(retry)) => collect_causes(retry, causes),
        Some(ConnectionError::Transport { error, .. }) => collect_causes(error, causes),
        _ => {
            if let Some(source) = error.source() {
                collect_causes(source, causes);
            }
        }
    }
}

/// A TLS handshake the server or we refused: rustls reports it as an I/O error that
/// carries a `rustls::Error`.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    error.is::<rustls::Error>()
        || error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<rustls::Error>())
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
    let listed = topics
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.len() as u32)
        .filter(|n| *n > 0);
    match listed {
        Some(partitions) => Ok(partitions),
        None => Err(why_missing(client, topic).await),
    }
}

/// Why a topic is not in the cluster's list: a listing leaves out the topics this
/// principal may not describe, so the topic is asked for by name, where the broker says
/// TOPIC_AUTHORIZATION_FAILED for those (and the lookup never creates it).
async fn why_missing(client: &Client, topic: &str) -> ConnectError {
    match client.topic_leaders(topic).await {
        Err(RskafkaError::ServerError {
            protocol_error: ProtocolError::TopicAuthorizationFailed,
            ..
        }) => ConnectError::NotAuthorized {
            what: format!(
                "access to topic '{topic}' (TopicAuthorizationFailed): it needs Describe on the topic, and Write to produce to it (Read to consume it)"
            ),
        },
        _ => ConnectError::TopicNotFound {
            topic: topic.to_string(),
        },
    }
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
        .create_topic(
            topic,
            partitions,
            replication_factor,
            CREATE_TOPIC_TIMEOUT.as_millis() as i32,
        )
        .await
    {
        Ok(()) => Ok(true),
        Err(RskafkaError::ServerError {
            protocol_error: ProtocolError::TopicAlreadyExists,
            ..
        }) => Ok(false),
        Err(RskafkaError::ServerError {
            protocol_error:
                code @ (ProtocolError::TopicAuthorizationFailed
                | ProtocolError::ClusterAuthorizationFailed),
            ..
        }) => Err(ConnectError::NotAuthorized {
            what: format!(
                "creating topic '{topic}' ({code}): it needs Create on the topic or the cluster"
            ),
        }),
        Err(e) => Err(ConnectError::Cluster {
            detail: format!(
                "creating topic '{topic}' with {partitions} partitions, replication factor {replication_factor}: {e}"
            ),
        }),
    }
}

/// Waits until a topic just created is served: listed in the metadata, and every
/// partition's leader answering for it; returns its partition count. A broker names a
/// new partition's leader before it has created the partition's log and refuses writes
/// until then (a 1,000-partition topic took ~5 s here), so a producer started at once
/// would spend those seconds of its events' message timeout on retries.
pub async fn wait_until_served(
    client: &Client,
    topic: &str,
    timeout: Duration,
) -> Result<u32, ConnectError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let partitions = loop {
        match partition_count(client, topic).await {
            Ok(n) => break n,
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(TOPIC_READY_POLL).await,
        }
    };
    for partition in 0..partitions as i32 {
        partition_served(client, topic, partition, deadline)
            .await
            .map_err(|detail| ConnectError::Cluster {
                detail: format!(
                    "partition {partition} of '{topic}' is not served {timeout:?} after it was created: {detail}"
                ),
            })?;
    }
    Ok(partitions)
}

/// Asks the partition's leader for its end offset until it answers or `deadline` passes.
async fn partition_served(
    client: &Client,
    topic: &str,
    partition: i32,
    deadline: tokio::time::Instant,
) -> Result<(), String> {
    loop {
        let answer = tokio::time::timeout_at(deadline, async {
            let leader = partition_client(client, topic, partition).await?;
            leader
                .get_offset(OffsetAt::Latest)
                .await
                .map_err(|e| ConnectError::Cluster {
                    detail: e.to_string(),
                })
        })
        .await;
        match answer {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if tokio::time::Instant::now() >= deadline => return Err(e.to_string()),
            Ok(Err(_)) => tokio::time::sleep(TOPIC_READY_POLL).await,
            Err(_) => return Err("no answer".to_string()),
        }
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
