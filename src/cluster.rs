//! The one network edge of the engine: where a topic's partitions are led, a connection
//! to one broker that takes multi-partition produce requests (written in order,
//! answered later), and the idempotent producer's id. The broker senders and the
//! router call it; rskafka implements it (and a unit-test mock does, to make timing
//! tests deterministic).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::Client;
use rskafka::client::broker::{BrokerClient, PartitionRecords};
use rskafka::client::error::{Error as RskafkaError, ProtocolError};

pub use rskafka::client::broker::{PartitionAnswer, ProducerIdentity};

/// Why a request to the cluster failed without a broker's answer for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkError {
    pub message: String,
    /// The broker refused the request as a whole with this code (for example
    /// CLUSTER_AUTHORIZATION_FAILED for InitProducerId); None for a broken
    /// connection, a timeout or an answer we could not read.
    pub code: Option<ProtocolError>,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The answers to one produce request already written: one per partition it carried.
pub type Answers = Pin<Box<dyn Future<Output = Result<Vec<PartitionAnswer>, LinkError>> + Send>>;

/// One batch of one partition in a produce request.
#[derive(Debug, Clone)]
pub struct PartitionBatch {
    pub partition: i32,
    /// The encoded record batch, shared so a retry sends the same bytes.
    pub records: Arc<Vec<u8>>,
}

/// One connection to one broker.
pub trait BrokerLink: Send + Sync + 'static {
    /// Writes one produce request (at most one batch per partition) with acks=all and
    /// completes once it is written; the answers follow. Requests are written in the
    /// order these calls complete.
    fn produce(
        &self,
        batches: Vec<PartitionBatch>,
    ) -> impl Future<Output = Result<Answers, LinkError>> + Send;

    /// Fails this connection's requests now and later: the sender gave up waiting.
    fn abandon(&self, reason: &'static str);
}

/// The cluster, as the producer of one topic sees it.
pub trait Cluster: Send + Sync + 'static {
    type Link: BrokerLink;

    /// The leader broker of each of the topic's partitions (None: no leader now).
    fn leaders(&self) -> impl Future<Output = Result<Vec<Option<i32>>, LinkError>> + Send;

    /// A metadata or InitProducerId request went unanswered: do not reuse the
    /// connection it went out on.
    fn abandon_metadata_connection(&self) {}

    /// A new connection to the broker with this id.
    fn connect(&self, broker: i32) -> impl Future<Output = Result<Self::Link, LinkError>> + Send;

    /// A new idempotent producer id, at epoch 0.
    fn init_producer_id(&self) -> impl Future<Output = Result<ProducerIdentity, LinkError>> + Send;
}

/// The cluster through rskafka: metadata and InitProducerId over the client's
/// metadata connection, produce requests over one connection per broker.
#[derive(Debug)]
pub struct RskafkaCluster {
    client: Client,
    topic: Arc<str>,
    /// How long the broker may wait for the in-sync replicas (the request's timeout).
    request_timeout: Duration,
}

impl RskafkaCluster {
    pub fn new(client: Client, topic: &str, request_timeout: Duration) -> Self {
        Self {
            client,
            topic: Arc::from(topic),
            request_timeout,
        }
    }
}

/// One broker connection through rskafka.
#[derive(Debug)]
pub struct RskafkaLink {
    client: BrokerClient,
    topic: Arc<str>,
    timeout_ms: i32,
}

/// acks=all: the leader answers once every in-sync replica has the batch.
const ACKS_ALL: i16 = -1;

impl BrokerLink for RskafkaLink {
    async fn produce(&self, batches: Vec<PartitionBatch>) -> Result<Answers, LinkError> {
        let partitions = batches
            .into_iter()
            .map(|b| PartitionRecords {
                partition: b.partition,
                records: b.records,
            })
            .collect();
        let answers = self
            .client
            .produce(&self.topic, partitions, ACKS_ALL, self.timeout_ms)
            .await
            .map_err(|e| link_error(&e))?;
        Ok(Box::pin(async move {
            answers.await.map_err(|e| link_error(&e))
        }))
    }

    fn abandon(&self, reason: &'static str) {
        self.client.abandon(reason);
    }
}

impl Cluster for RskafkaCluster {
    type Link = RskafkaLink;

    async fn leaders(&self) -> Result<Vec<Option<i32>>, LinkError> {
        self.client
            .topic_leaders(&self.topic)
            .await
            .map(|t| t.leaders)
            .map_err(|e| link_error(&e))
    }

    fn abandon_metadata_connection(&self) {
        self.client
            .abandon_metadata_connection("a metadata request went unanswered");
    }

    async fn connect(&self, broker: i32) -> Result<RskafkaLink, LinkError> {
        let client = self
            .client
            .broker_client(broker)
            .await
            .map_err(|e| link_error(&e))?;
        Ok(RskafkaLink {
            client,
            topic: Arc::clone(&self.topic),
            timeout_ms: self.request_timeout.as_millis().min(i32::MAX as u128) as i32,
        })
    }

    async fn init_producer_id(&self) -> Result<ProducerIdentity, LinkError> {
        self.client
            .init_producer_id(None)
            .await
            .map_err(|e| link_error(&e))
    }
}

/// `request`'s outcome, or a `LinkError` saying it did not finish within `limit`; `what`
/// names the request in that message. Dropping it (or the timeout) drops the request's
/// future, which stops waiting for it.
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    request: impl Future<Output = Result<T, LinkError>>,
) -> Result<T, LinkError> {
    tokio::time::timeout(limit, request)
        .await
        .unwrap_or_else(|_| {
            Err(LinkError {
                message: format!("{what} did not finish within {limit:?}"),
                code: None,
            })
        })
}

fn link_error(error: &RskafkaError) -> LinkError {
    match error {
        RskafkaError::ServerError {
            protocol_error,
            error_message,
            ..
        } => LinkError {
            message: match error_message {
                Some(m) => format!("{protocol_error} ({m})"),
                None => protocol_error.to_string(),
            },
            code: Some(*protocol_error),
        },
        other => LinkError {
            message: other.to_string(),
            code: None,
        },
    }
}
