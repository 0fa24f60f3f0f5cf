//! The one network edge of the engine: send one encoded record batch to one partition
//! and get its offsets. The partition worker calls it; rskafka's `PartitionClient` implements it
//! (and a unit-test mock does, to make timing tests deterministic).

use std::future::Future;

use rskafka::client::error::{Error as RskafkaError, ProtocolError};
use rskafka::client::partition::PartitionClient;

use crate::record_batch::EncodedBatch;

/// Why a produce request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkError {
    pub message: String,
    /// True when the request may have reached the broker and been written (a broken
    /// connection, a timeout); false when the broker answered with a refusal.
    pub may_have_been_written: bool,
}

/// Sends record batches to one partition, with acks=all. The call completes when the
/// broker acknowledged the whole batch (offsets in record order) or gave up; dropping
/// the future abandons the request (it may still be written).
pub trait PartitionSink: Send + Sync + 'static {
    fn produce(
        &self,
        batch: EncodedBatch,
    ) -> impl Future<Output = Result<Vec<i64>, SinkError>> + Send;

    /// The worker gave up waiting for an answer (message timeout): drop the connection
    /// so the next batch finds the partition's leader afresh, as librdkafka drops a
    /// connection after a timed-out request. A leader that hangs (stopped, stuck disk)
    /// keeps its connections open and never answers, so otherwise nothing would move
    /// the partition to its new leader.
    fn abandon_connection(&self) {}
}

impl PartitionSink for PartitionClient {
    async fn produce(&self, batch: EncodedBatch) -> Result<Vec<i64>, SinkError> {
        // rskafka retries retriable errors (connection lost, leader moved) itself with
        // the client's bounded backoff; the worker's message timeout caps the whole call.
        PartitionClient::produce_encoded(self, batch.bytes, batch.records as i64)
            .await
            .map_err(|e| classify(&e))
    }

    fn abandon_connection(&self) {
        self.abandon_leader_connection("message timeout passed while a batch was in flight");
    }
}

/// Maps an rskafka error to ours, deciding whether the batch may have been written.
pub fn classify(error: &RskafkaError) -> SinkError {
    let may_have_been_written = match error {
        // The broker answered with an error code for this partition: it refused the batch.
        RskafkaError::ServerError { protocol_error, .. } => matches!(
            protocol_error,
            ProtocolError::RequestTimedOut | ProtocolError::NotEnoughReplicasAfterAppend
        ),
        // Broken connections, exhausted retries, timeouts, answers we cannot read: the
        // request may have reached the broker.
        _ => true,
    };
    SinkError {
        message: short_message(error),
        may_have_been_written,
    }
}

/// rskafka's Display for server errors dumps the whole request context; keep the code
/// and the broker's message, which is what a user can act on.
fn short_message(error: &RskafkaError) -> String {
    match error {
        RskafkaError::ServerError {
            protocol_error,
            error_message,
            ..
        } => match error_message {
            Some(m) => format!("{protocol_error} ({m})"),
            None => protocol_error.to_string(),
        },
        other => other.to_string(),
    }
}
