//! Direct access to one broker for a producer that builds its own requests: one
//! connection per broker, multi-partition produce requests written in order and
//! answered later (pipelining), the leaders of a topic's partitions, and the producer
//! id of an idempotent producer. Nothing here retries: the caller owns retries, order
//! and timeouts.
//!
//! Added to the vendored rskafka by kafka-producer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::{
    client::error::{Error, ProtocolError, RequestContext, Result},
    connection::{BrokerCache, BrokerConnection, BrokerConnector, MetadataLookupMode},
    protocol::{
        messages::{
            InitProducerIdRequest, ProduceRecords, ProduceRequest, ProduceRequestPartitionData,
            ProduceRequestTopicData,
        },
        primitives::{Int16, Int32, Int64, NullableString, String_},
    },
};

/// A broker and its host:port, as the cluster's metadata names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub id: i32,
    pub address: String,
}

/// Where each partition of a topic is led, as one metadata answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLeaders {
    /// Leader broker id per partition index; None while the partition has no leader
    /// (an election is under way) or the broker reported an error for it.
    pub leaders: Vec<Option<i32>>,
    pub brokers: Vec<BrokerAddress>,
}

/// An idempotent producer's identity: written into every batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    pub id: i64,
    pub epoch: i16,
}

/// One partition's part of a produce request: encoded record batches (the caller's
/// framing, compression and CRC), shared so a retry sends the same bytes.
#[derive(Debug, Clone)]
pub struct PartitionRecords {
    pub partition: i32,
    pub records: Arc<Vec<u8>>,
}

/// One partition's part of the broker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionAnswer {
    pub partition: i32,
    pub error: Option<ProtocolError>,
    /// Offset of the first record written; -1 when the broker did not say.
    pub base_offset: i64,
}

/// The answer to a produce request already written.
pub type ProduceAnswer = Pin<Box<dyn Future<Output = Result<Vec<PartitionAnswer>>> + Send>>;

/// One connection to one broker.
#[derive(Clone)]
pub struct BrokerClient {
    broker_id: i32,
    connection: BrokerConnection,
}

impl std::fmt::Debug for BrokerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerClient")
            .field("broker_id", &self.broker_id)
            .finish_non_exhaustive()
    }
}

impl BrokerClient {
    pub(crate) async fn connect(brokers: &BrokerConnector, broker_id: i32) -> Result<Self> {
        match brokers.connect(broker_id).await? {
            Some(connection) => Ok(Self {
                broker_id,
                connection,
            }),
            None => Err(Error::InvalidResponse(format!(
                "broker {broker_id} is not in the cluster's metadata"
            ))),
        }
    }

    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// Writes one produce request for `topic` (at most one entry per partition) and
    /// returns once it is on the connection; the returned future resolves with one
    /// answer per partition. Requests are written in the order these calls complete,
    /// and the broker handles them in that order. Dropping the answer does not recall
    /// the request.
    pub async fn produce(
        &self,
        topic: &str,
        partitions: Vec<PartitionRecords>,
        acks: i16,
        timeout_ms: i32,
    ) -> Result<ProduceAnswer> {
        let request = ProduceRequest {
            transactional_id: NullableString(None),
            acks: Int16(acks),
            timeout_ms: Int32(timeout_ms),
            topic_data: vec![ProduceRequestTopicData {
                name: String_(topic.to_string()),
                partition_data: partitions
                    .into_iter()
                    .map(|p| ProduceRequestPartitionData {
                        index: Int32(p.partition),
                        records: ProduceRecords::Encoded(p.records),
                    })
                    .collect(),
            }],
        };
        let answer = self.connection.send_request(request).await?;
        let topic = topic.to_string();
        Ok(Box::pin(async move {
            let response = answer.await?;
            let mut answers = Vec::new();
            for t in response.responses {
                if t.name.0 != topic {
                    return Err(Error::InvalidResponse(format!(
                        "produce answer for topic '{}', asked for '{topic}'",
                        t.name.0
                    )));
                }
                answers.extend(t.partition_responses.into_iter().map(|p| PartitionAnswer {
                    partition: p.index.0,
                    error: p.error,
                    base_offset: p.base_offset.0,
                }));
            }
            Ok(answers)
        }))
    }

    /// Fails every request on this connection, now and later: for a caller that gave
    /// up waiting (a broker that hangs keeps its connection open).
    pub fn abandon(&self, reason: &'static str) {
        self.connection.poison(reason);
    }
}

/// The leaders of `topic`'s partitions, from a metadata request to any broker (not the
/// cache, which may be stale when this is asked after a leader moved).
pub(crate) async fn topic_leaders(brokers: &BrokerConnector, topic: &str) -> Result<TopicLeaders> {
    let (response, _) = brokers
        .request_metadata(
            &MetadataLookupMode::ArbitraryBroker,
            Some(vec![topic.to_string()]),
        )
        .await?;
    let t = response
        .topics
        .into_iter()
        .find(|t| t.name.0 == topic)
        .ok_or_else(|| Error::InvalidResponse(format!("no metadata for topic '{topic}'")))?;
    if let Some(protocol_error) = t.error {
        return Err(Error::ServerError {
            protocol_error,
            error_message: None,
            request: RequestContext::Topic(topic.to_string()),
            response: None,
            is_virtual: false,
        });
    }
    let count = t
        .partitions
        .iter()
        .map(|p| p.partition_index.0 + 1)
        .max()
        .unwrap_or(0)
        .max(0) as usize;
    let mut leaders = vec![None; count];
    for p in t.partitions {
        // A partition with a replica offline comes with REPLICA_NOT_AVAILABLE and its
        // leader all the same (as when a follower hangs): the leader is what counts,
        // as in the Java client. Only a missing leader id means no leader.
        let leader_missing = matches!(p.error, Some(ProtocolError::LeaderNotAvailable));
        if p.leader_id.0 >= 0 && !leader_missing {
            leaders[p.partition_index.0 as usize] = Some(p.leader_id.0);
        }
    }
    Ok(TopicLeaders {
        leaders,
        brokers: response
            .brokers
            .into_iter()
            .map(|b| BrokerAddress {
                id: b.node_id.0,
                address: format!("{}:{}", b.host.0, b.port.0),
            })
            .collect(),
    })
}

/// Asks any broker for an idempotent producer's id and epoch. With `current`, a broker
/// that knows KIP-360 (InitProducerId v3+) bumps that producer's epoch; an older one
/// hands out a new id, which serves the same purpose.
pub(crate) async fn init_producer_id(
    brokers: &BrokerConnector,
    current: Option<ProducerIdentity>,
) -> Result<ProducerIdentity> {
    let (connection, generation) = BrokerCache::get(&brokers).await?;
    let request = InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: Int32(i32::MAX),
        producer_id: Int64(current.map_or(-1, |c| c.id)),
        producer_epoch: Int16(current.map_or(-1, |c| c.epoch)),
    };
    let response = match connection.request(request).await {
        Ok(response) => response,
        Err(e) => {
            // The next call connects afresh instead of reusing a broken connection.
            BrokerCache::invalidate(&brokers, "init producer id failed", generation).await;
            return Err(e.into());
        }
    };
    if let Some(protocol_error) = response.error {
        return Err(Error::ServerError {
            protocol_error,
            error_message: None,
            request: RequestContext::Topic(String::new()),
            response: None,
            is_virtual: false,
        });
    }
    Ok(ProducerIdentity {
        id: response.producer_id.0,
        epoch: response.producer_epoch.0,
    })
}
