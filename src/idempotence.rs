//! The idempotent producer's identity: the producer id and epoch every batch carries,
//! got with InitProducerId at start and bumped when a partition's sequence
//! can no longer be trusted. The partition workers read it when they stamp a batch and
//! ask for a bump; they keep their own sequence numbers (`partition_worker`).
//! Fed by `Cluster::init_producer_id`; feeds the partition workers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rskafka::client::error::ProtocolError;
use tracing::{debug, info, warn};

use crate::background::OneAtATime;
use crate::cluster::{Cluster, LinkError, ProducerIdentity, within};
use crate::config::{INIT_PRODUCER_ID_PATIENCE, INIT_PRODUCER_ID_RETRY_PAUSE};
use crate::metrics::Metrics;

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
    /// for up to `INIT_PRODUCER_ID_PATIENCE`.
    pub async fn start(
        cluster: Arc<C>,
        request_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, LinkError> {
        let give_up_at = tokio::time::Instant::now() + INIT_PRODUCER_ID_PATIENCE;
        let identity = loop {
            let error = match within(
                request_timeout,
                "InitProducerId",
                cluster.init_producer_id(),
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
            if !not_yet || tokio::time::Instant::now() + INIT_PRODUCER_ID_RETRY_PAUSE >= give_up_at
            {
                return Err(error);
            }
            debug!(error = %error, "producer id not available yet; asking again");
            tokio::time::sleep(INIT_PRODUCER_ID_RETRY_PAUSE).await;
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

    /// Moves past `seen` unless the identity moved already. The next epoch of the same
    /// producer id is taken at once, without asking the cluster, as the Java client does
    /// for an idempotent producer: a broker takes a higher epoch whose first batch has
    /// sequence 0 as that producer's fresh start on each partition. Asking InitProducerId
    /// instead (KIP-360) waits on the brokers' producer-id manager, which needs the
    /// controller: while a frozen controller was replaced it answered
    /// COORDINATOR_LOAD_IN_PROGRESS for 30 s, and every partition's batches expired
    /// waiting for the bump. Only an epoch at its maximum needs the cluster (a new
    /// producer id), fetched in the background: workers do not wait on it (they keep
    /// reporting timeouts on time), they look at `current` again on their next retry.
    pub fn request_bump(self: &Arc<Self>, seen: ProducerIdentity) {
        {
            let mut current = self.current.lock().expect("not poisoned");
            if *current != seen {
                return;
            }
            if seen.epoch < i16::MAX {
                *current = ProducerIdentity {
                    id: seen.id,
                    epoch: seen.epoch + 1,
                };
                info!(
                    producer_id = seen.id,
                    epoch = current.epoch,
                    "producer epoch bumped; partition sequences start again at 0"
                );
                self.metrics.record_epoch_bump();
                return;
            }
        }
        let idempotence = Arc::clone(self);
        self.bump_requested.spawn(async move {
            let _ = idempotence.new_producer_id(seen).await;
        });
    }

    /// Asks the cluster for a new producer id (epoch 0), unless someone already moved
    /// past `seen`. Returns the identity in force after, or the error of the one attempt
    /// made (the caller retries after its backoff).
    /// Runs only from `request_bump`, one at a time.
    async fn new_producer_id(&self, seen: ProducerIdentity) -> Result<ProducerIdentity, LinkError> {
        let current = self.current();
        if current != seen {
            return Ok(current);
        }
        let next = within(
            self.request_timeout,
            "InitProducerId",
            self.cluster.init_producer_id(),
        )
        .await
        .inspect_err(|e| warn!(error = %e, "getting a new producer id failed"))?;
        info!(
            producer_id = next.id,
            from_producer_id = current.id,
            epoch = next.epoch,
            "new producer id (the epoch had reached its maximum); partition sequences start again at 0"
        );
        *self.current.lock().expect("not poisoned") = next;
        self.metrics.record_epoch_bump();
        Ok(next)
    }
}
