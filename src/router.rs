//! Which broker leads each partition, and that broker's sender: one sender task (and
//! one connection) per broker, started with the producer for the leaders it starts
//! with, and otherwise the first time a partition the broker leads has a batch.
//! Partition workers ask it where to send; it reads the cluster's metadata again when
//! a worker reports a leader that moved or went away.
//! Fed by `Cluster::leaders`; feeds the partition workers sender handles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::background::OneAtATime;
use crate::broker_sender::{self, SendJob, SenderLimits};
use crate::cluster::{Cluster, LinkError, within};
use crate::metrics::Metrics;

/// A handle to one broker's sender.
#[derive(Debug, Clone)]
pub(crate) struct SenderHandle {
    pub broker: i32,
    pub jobs: mpsc::UnboundedSender<SendJob>,
}

/// What one metadata answer said, and the senders started so far.
#[derive(Debug, Default)]
struct Routes {
    /// Leader broker per partition; None while it has none (or is unknown).
    leaders: Vec<Option<i32>>,
    senders: HashMap<i32, SenderHandle>,
    /// Raised by every metadata answer, so a worker that saw an old one can ask for a
    /// newer one and many workers asking at once cost one request.
    generation: u64,
}

pub(crate) struct Router<C: Cluster> {
    cluster: Arc<C>,
    limits: SenderLimits,
    routes: Mutex<Routes>,
    /// Held while a metadata request is out, so concurrent refreshes share it.
    refreshing: tokio::sync::Mutex<Instant>,
    /// The background refresh workers ask for.
    refresh_requested: OneAtATime,
    metrics: Arc<Metrics>,
}

impl<C: Cluster> Router<C> {
    pub fn new(
        cluster: Arc<C>,
        limits: SenderLimits,
        leaders: Vec<Option<i32>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            cluster,
            limits,
            routes: Mutex::new(Routes {
                leaders,
                senders: HashMap::new(),
                generation: 1,
            }),
            refreshing: tokio::sync::Mutex::new(Instant::now()),
            refresh_requested: OneAtATime::default(),
            metrics,
        }
    }

    /// The current generation of the routes: pass it to `refresh`.
    pub fn generation(&self) -> u64 {
        self.routes.lock().expect("not poisoned").generation
    }

    /// How many partitions the last metadata answer listed.
    pub fn partition_count(&self) -> usize {
        self.routes.lock().expect("not poisoned").leaders.len()
    }

    /// The sender of the partition's leader, starting it if needed; None while the
    /// partition has no known leader.
    pub fn sender_for(&self, partition: i32) -> Option<SenderHandle> {
        let mut routes = self.routes.lock().expect("not poisoned");
        let broker = (*routes.leaders.get(partition as usize)?)?;
        if let Some(handle) = routes.senders.get(&broker) {
            return Some(handle.clone());
        }
        let handle = self.start_sender(broker, None);
        routes.senders.insert(broker, handle.clone());
        Some(handle)
    }

    /// Starts the sender of every leader, each connecting at once; the receivers
    /// complete once each has tried (connected or not), so the producer can start with
    /// its connections made instead of making its first batches wait for them.
    pub fn start_senders(&self) -> Vec<oneshot::Receiver<()>> {
        let mut routes = self.routes.lock().expect("not poisoned");
        let leaders: std::collections::BTreeSet<i32> =
            routes.leaders.iter().flatten().copied().collect();
        let mut tried = Vec::new();
        for broker in leaders {
            if routes.senders.contains_key(&broker) {
                continue;
            }
            let (done, receiver) = oneshot::channel();
            let handle = self.start_sender(broker, Some(done));
            routes.senders.insert(broker, handle);
            tried.push(receiver);
        }
        tried
    }

    fn start_sender(
        &self,
        broker: i32,
        first_attempt: Option<oneshot::Sender<()>>,
    ) -> SenderHandle {
        let (jobs, receiver) = mpsc::unbounded_channel();
        tokio::spawn(broker_sender::run(
            broker,
            Arc::clone(&self.cluster),
            self.limits,
            self.metrics.broker(broker),
            receiver,
            first_attempt,
        ));
        SenderHandle { broker, jobs }
    }

    /// Starts a refresh in the background unless one is under way or an answer newer
    /// than `seen` came already: workers never wait on the metadata themselves (a
    /// worker blocked on a dead broker would report its timeouts late), they look at
    /// `generation` again on their next retry.
    pub fn request_refresh(self: &Arc<Self>, seen: u64) {
        if self.generation() > seen {
            return;
        }
        let router = Arc::clone(self);
        self.refresh_requested.spawn(async move {
            let _ = router.refresh(seen).await;
        });
    }

    /// Reads the leaders again, unless a newer answer than `seen` already came (then
    /// it returns at once). At most one request every retry backoff, however many
    /// workers ask.
    pub async fn refresh(&self, seen: u64) -> Result<(), LinkError> {
        let mut last = self.refreshing.lock().await;
        if self.generation() > seen {
            return Ok(());
        }
        tokio::time::sleep_until(*last + self.limits.retry_backoff).await;
        *last = Instant::now();
        self.metrics.record_metadata_refresh();
        let leaders = within(
            self.limits.control_timeout,
            "metadata request",
            self.cluster.leaders(),
        )
        .await
        .inspect_err(|e| warn!(error = %e, "metadata refresh failed"))?;
        let mut routes = self.routes.lock().expect("not poisoned");
        let moved = routes
            .leaders
            .iter()
            .zip(&leaders)
            .filter(|(a, b)| a != b)
            .count();
        if moved > 0 {
            info!(moved, "partition leaders changed");
        }
        routes.leaders = leaders;
        routes.generation += 1;
        // Senders of brokers that lead nothing now stop once their queues drain.
        let leading: std::collections::HashSet<i32> =
            routes.leaders.iter().flatten().copied().collect();
        routes.senders.retain(|broker, _| leading.contains(broker));
        Ok(())
    }

    /// Stops every sender once its queues drain (the workers are gone by then).
    pub fn close(&self) {
        self.routes.lock().expect("not poisoned").senders.clear();
    }
}
