//! The idempotent producer's identity: the producer id and epoch every batch carries,
//! got with InitProducerId at start and bumped (KIP-360) when a partition's sequence
//! can no longer be trusted. The partition workers read it when they stamp a batch and
//! ask for a bump; they keep their own sequence numbers (`partition_worker`).
//! Fed by `Cluster::init_producer_id`; feeds the partition workers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rskafka::client::error::ProtocolError;
use tracing::{debug, info, warn};

use crate::background::OneAtATime;
use crate::cluster::{Cluster, LinkError, ProducerIdentity, within};
use crate::metrics::Metrics;

/// How long start-up waits for a producer id while brokers answer "not yet".
const START_PATIENCE: Duration = Duration::from_secs(15);
/// Pause between those attempts.
const START_RETRY_PAUSE: Duration = Duration::from_millis(200);

pub(crate) struct Idempotence<C: Cluster> {
    cluster: Arc<C>,
    current: Mutex<ProducerIdentity>,
    request_timeout: Duration,
    metrics: Arc<Metrics>,
    /// The one bump under way, however many workers ask for it at once.
    bump_requested: OneAtATime,
}

impl<C: Cluster> Idempotence<C> {
    /// Gets a producer id from the cluster, retrying the answers that mean "not yet"
    /// (a broker that just started hands out ids only once it has a block of them)
    /// for up to `START_PATIENCE`.
    pub async fn start(
        cluster: Arc<C>,
        request_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, LinkError> {
        let give_up_at = tokio::time::Instant::now() + START_PATIENCE;
        let identity = loop {
            let error = match within(
                request_timeout,
                "InitProducerId",
                cluster.init_producer_id(None),
            )
            .await
            {
                Ok(identity) => break identity,
                Err(e) => e,
            };
            let not_yet = matches!(
                error.code,
                None | Some(
                    ProtocolError::CoordinatorLoadInProgress
                        | ProtocolError::CoordinatorNotAvailable
                        | ProtocolError::NotCoordinator
                        | ProtocolError::ConcurrentTransactions
                        | ProtocolError::RequestTimedOut
                )
            );
            if !not_yet || tokio::time::Instant::now() + START_RETRY_PAUSE >= give_up_at {
                return Err(error);
            }
            debug!(error = %error, "producer id not available yet; asking again");
            tokio::time::sleep(START_RETRY_PAUSE).await;
        };
        info!(
            producer_id = identity.id,
            epoch = identity.epoch,
            "idempotent producer"
        );
        Ok(Self {
            cluster,
            current: Mutex::new(identity),
            request_timeout,
            metrics,
            bump_requested: OneAtATime::default(),
        })
    }

    /// The identity to stamp batches with now.
    pub fn current(&self) -> ProducerIdentity {
        *self.current.lock().expect("not poisoned")
    }

    /// Starts a bump in the background unless one is under way or the identity moved
    /// past `seen` already: workers do not wait on it (they keep reporting timeouts on
    /// time), they look at `current` again on their next retry.
    pub fn request_bump(self: &Arc<Self>, seen: ProducerIdentity) {
        if self.current() != seen {
            return;
        }
        let idempotence = Arc::clone(self);
        self.bump_requested.spawn(async move {
            let _ = idempotence.bump(seen).await;
        });
    }

    /// Moves to the next epoch, unless someone already moved past `seen`. Returns the
    /// identity in force after, or the error of the one attempt made (the caller
    /// retries after its backoff).
    /// Runs only from `request_bump`, one at a time.
    async fn bump(&self, seen: ProducerIdentity) -> Result<ProducerIdentity, LinkError> {
        let current = self.current();
        if current != seen {
            return Ok(current);
        }
        // An epoch at its maximum cannot be bumped: ask for a new producer id instead.
        let ask = (current.epoch < i16::MAX).then_some(current);
        let next = within(
            self.request_timeout,
            "InitProducerId",
            self.cluster.init_producer_id(ask),
        )
        .await
        .inspect_err(|e| warn!(error = %e, "epoch bump failed"))?;
        info!(
            producer_id = next.id,
            from_epoch = current.epoch,
            epoch = next.epoch,
            "producer epoch bumped; partition sequences start again at 0"
        );
        *self.current.lock().expect("not poisoned") = next;
        self.metrics.record_epoch_bump();
        Ok(next)
    }
}
