//! The producer handle: encodes an event, admits it into the bounded buffer, picks its
//! partition and hands it to that partition's worker; `flush` and `close` drain them.
//! Fed by the application (the CLI's sources); feeds the partition workers.
//!
//! ```text
//! send(event) ─encode─▶ admit (buffer) ─partition─▶ worker[p] ─batch─▶ sender[leader] ─request─▶ broker
//!      ▲                                                │
//!      └──────────── DeliveryFuture ◀── report ─────────┘
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use rskafka::client::error::ProtocolError;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::accumulator::{BatchLimits, Pending};
use crate::broker_sender::SenderLimits;
use crate::buffer::{AdmitError, Buffer, BufferUsage};
use crate::cluster::{Cluster, LinkError, RskafkaCluster, within};
use crate::config::{ConfigError, MAX_IN_FLIGHT_IDEMPOTENT, ProducerConfig};
use crate::connect::{self, ConnectError};
use crate::delivery::DeliveryFuture;
use crate::event::UserEvent;
use crate::idempotence::Idempotence;
use crate::inbox::{Command, Inbox};
use crate::metrics::{ConnectionState, Metrics, MetricsSnapshot};
use crate::partition_worker::{self, WorkerContext};
use crate::partitioner::Partitioner;
use crate::record::EncodedEvent;
use crate::router::Router;

/// Why `send` / `try_send` did not accept an event. Nothing was queued: the event has
/// no delivery report, and the caller still owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The encoded event is larger than a batch or the whole buffer may hold; `setting`
    /// names the `ProducerConfig` field that sets the limit.
    TooLarge {
        size: usize,
        limit: usize,
        setting: &'static str,
    },
    /// `try_send` only: the buffer is full right now.
    QueueFull,
    /// The producer was closed.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge {
                size,
                limit,
                setting,
            } => write!(
                f,
                "event of {size} bytes is larger than {setting} ({limit} bytes); raise {setting} or send smaller events"
            ),
            Self::QueueFull => write!(
                f,
                "producer buffer is full (buffer_max_bytes / buffer_max_records); wait for deliveries or use send, which waits"
            ),
            Self::Closed => write!(f, "producer is closed"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why the producer could not start.
#[derive(Debug)]
pub enum StartError {
    Config(ConfigError),
    Connect(ConnectError),
    /// The cluster would not give this producer an id for idempotent writes.
    Idempotence(LinkError),
}

impl StartError {
    /// What went wrong and what to do, naming `idempotence_off` as the way to turn
    /// idempotence off (the library's field; the CLI names its flag instead).
    pub fn message(&self, idempotence_off: &str) -> String {
        match self {
            Self::Config(e) => e.to_string(),
            Self::Connect(e) => e.to_string(),
            // Since Kafka 2.8 Write on any topic implies IDEMPOTENT_WRITE, so a
            // principal that may write to the topic is never refused a producer id.
            Self::Idempotence(e) if e.code == Some(ProtocolError::ClusterAuthorizationFailed) => {
                format!(
                    "the cluster refused this principal idempotent writes ({e}); grant it Write on the topic (Kafka 2.8 and later take that as IDEMPOTENT_WRITE; older brokers need IDEMPOTENT_WRITE on the cluster), or turn idempotence off ({idempotence_off})"
                )
            }
            Self::Idempotence(e) => format!(
                "the cluster gave this producer no id for idempotent writes ({e}); check that the brokers run Kafka 0.11 or later and their controller is up, or turn idempotence off ({idempotence_off})"
            ),
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message("ProducerConfig::idempotence = false"))
    }
}

impl std::error::Error for StartError {}

impl From<ConnectError> for StartError {
    fn from(e: ConnectError) -> Self {
        Self::Connect(e)
    }
}

/// Produces `UserEvent`s to one topic. Cheap to share behind an `Arc`; all methods
/// take `&self`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use kafka_producer::{Producer, ProducerConfig, event::UserEvent};
///
/// let producer = Producer::connect(ProducerConfig::default()).await?;
/// let event = UserEvent { user_id: "user-1".into(), ..Default::default() };
/// let report = producer.send(&event).await?;   // accepted (waits for buffer room)
/// let delivered = report.await?;               // acknowledged by all in-sync replicas
/// println!("partition {} offset {}", delivered.partition, delivered.offset);
/// producer.close().await;                      // flush, then stop
/// # Ok(()) }
/// ```
pub struct Producer {
    shared: Arc<Shared>,
    partitioner: Partitioner,
    /// Spreads events without a user id over partitions.
    keyless_counter: AtomicU32,
    batch_max_bytes: usize,
    buffer_max_bytes: u64,
    closed: AtomicBool,
    /// Re-reads the partition count; stopped by `close`.
    refresher: std::sync::Mutex<Option<JoinHandle<()>>>,
}

use crate::config::MAX_PARTITIONS;

/// What the producer handle shares with its partition-count refresher.
struct Shared {
    /// One slot per partition; filled once, in partition order, before
    /// `partition_count` is raised to cover it.
    workers: Box<[OnceLock<Arc<Inbox>>]>,
    /// Partitions `send` spreads over; only grows.
    partition_count: AtomicU32,
    handles: std::sync::Mutex<Vec<JoinHandle<()>>>,
    buffer: Arc<Buffer>,
    metrics: Arc<Metrics>,
    limits: BatchLimits,
    compression: crate::config::CompressionCodec,
    max_in_flight: usize,
    /// Shared by every worker; follows the partition count.
    in_flight_under_pressure: Arc<AtomicUsize>,
    retry_backoff: std::time::Duration,
    /// Stops the broker senders once the workers are done.
    close_senders: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// The send side the workers share: routes to the brokers' senders, and the
/// producer's identity when idempotent.
struct SendSide<C: Cluster> {
    router: Arc<Router<C>>,
    idempotence: Option<Arc<Idempotence<C>>>,
}

impl<C: Cluster> Clone for SendSide<C> {
    fn clone(&self) -> Self {
        Self {
            router: Arc::clone(&self.router),
            idempotence: self.idempotence.clone(),
        }
    }
}

impl Shared {
    /// Sets how many batches a partition may have in flight under pressure, for a
    /// topic of `partitions`.
    fn spread_over(&self, partitions: usize) {
        let in_flight = partition_worker::in_flight_under_pressure(
            &self.buffer.usage(),
            &self.limits,
            partitions,
            self.max_in_flight,
        );
        self.in_flight_under_pressure
            .store(in_flight, Ordering::Relaxed);
    }

    /// Starts the worker of the next partition.
    fn add_partition<C: Cluster>(&self, partition: usize, side: &SendSide<C>) {
        let inbox = Arc::new(Inbox::new(partition as i32, self.limits));
        let ctx = WorkerContext {
            partition: partition as i32,
            limits: self.limits,
            compression: self.compression,
            buffer: Arc::clone(&self.buffer),
            metrics: Arc::clone(&self.metrics),
            router: Arc::clone(&side.router),
            idempotence: side.idempotence.clone(),
            max_in_flight: self.max_in_flight,
            in_flight_under_pressure: Arc::clone(&self.in_flight_under_pressure),
            retry_backoff: self.retry_backoff,
        };
        let handle = tokio::spawn(partition_worker::run(ctx, Arc::clone(&inbox)));
        self.handles.lock().expect("not poisoned").push(handle);
        if self.workers[partition].set(inbox).is_err() {
            unreachable!("partition {partition} started twice");
        }
        self.partition_count
            .fetch_max(partition as u32 + 1, Ordering::Release);
    }
}

/// A producer dropped without `close` still reports everything it accepted: its workers
/// send what is queued, then stop.
impl Drop for Shared {
    fn drop(&mut self) {
        for worker in self.workers.iter().map_while(OnceLock::get) {
            let _ = worker.push_urgent(Command::Close);
        }
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("partitions", &self.partition_count())
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// Validates the config, connects, reads where the topic's partitions are led,
    /// gets a producer id (idempotence), and starts one worker per partition. Fails if
    /// the topic does not exist.
    pub async fn connect(config: ProducerConfig) -> Result<Self, StartError> {
        config.validate().map_err(StartError::Config)?;
        let client = connect::connect_for(&config).await?;
        // The topic must exist (a clear error instead of retrying forever).
        connect::partition_count(&client, &config.topic).await?;
        let cluster =
            RskafkaCluster::new(client, &config.topic, config.effective_request_timeout());
        let producer = Self::with_cluster(&config, cluster).await?;
        tracing::info!(topic = %config.topic, partitions = producer.partition_count(), "producer connected");
        Ok(producer)
    }

    /// Starts a producer over a cluster: `connect` uses rskafka's, tests a mock one.
    /// The config must be valid.
    pub async fn with_cluster<C: Cluster>(
        config: &ProducerConfig,
        cluster: C,
    ) -> Result<Self, StartError> {
        let cluster = Arc::new(cluster);
        let request_timeout = config.effective_request_timeout();
        // Start-up and metadata are bounded by the request timeout as set: a short
        // message timeout bounds batches, not these.
        let control_timeout = config.request_timeout;
        let leaders = match within(control_timeout, "metadata request", cluster.leaders()).await {
            Ok(leaders) if !leaders.is_empty() => leaders,
            Ok(_) => {
                return Err(StartError::Connect(ConnectError::TopicNotFound {
                    topic: config.topic.clone(),
                }));
            }
            Err(e) => {
                return Err(StartError::Connect(ConnectError::Cluster {
                    detail: format!("reading the leaders of '{}': {e}", config.topic),
                }));
            }
        };
        let metrics = Arc::new(Metrics::default());
        let limits = SenderLimits {
            max_in_flight: config.max_in_flight,
            max_request_bytes: config.max_request_bytes,
            request_timeout,
            control_timeout,
            retry_backoff: config.retry_backoff,
        };
        let partitions = leaders.len().min(MAX_PARTITIONS);
        let router = Arc::new(Router::new(
            Arc::clone(&cluster),
            limits,
            leaders,
            Arc::clone(&metrics),
        ));
        // The leaders' connections are made while the producer id is fetched.
        let connections_tried = router.start_senders();
        let idempotence = if config.idempotence {
            let identity =
                Idempotence::start(Arc::clone(&cluster), control_timeout, Arc::clone(&metrics))
                    .await
                    .map_err(StartError::Idempotence)?;
            Some(Arc::new(identity))
        } else {
            None
        };
        // Each attempt is bounded by the control timeout; a broker it could not reach
        // is tried again by its first batch, which reports the failure if it persists.
        futures::future::join_all(connections_tried).await;
        let side = SendSide {
            router: Arc::clone(&router),
            idempotence,
        };
        let shared = Arc::new(Shared {
            workers: (0..MAX_PARTITIONS).map(|_| OnceLock::new()).collect(),
            partition_count: AtomicU32::new(0),
            handles: std::sync::Mutex::new(Vec::new()),
            buffer: Arc::new(Buffer::new(
                config.buffer_max_bytes,
                config.buffer_max_records,
            )),
            metrics,
            limits: BatchLimits {
                max_records: config.batch_max_records,
                max_bytes: config.batch_max_bytes,
                linger: config.linger,
                message_timeout: config.message_timeout,
            },
            compression: config.compression,
            // Without idempotence a retried batch could overtake the one after it.
            max_in_flight: if config.idempotence {
                config.max_in_flight.min(MAX_IN_FLIGHT_IDEMPOTENT)
            } else {
                1
            },
            in_flight_under_pressure: Arc::new(AtomicUsize::new(1)),
            retry_backoff: config.retry_backoff,
            close_senders: std::sync::Mutex::new(Some(Box::new(move || router.close()))),
        });
        shared.spread_over(partitions);
        for partition in 0..partitions {
            shared.add_partition(partition, &side);
        }
        let refresher = tokio::spawn(refresh_partitions(
            Arc::downgrade(&shared),
            side,
            config.metadata_refresh,
        ));
        Ok(Self {
            shared,
            partitioner: config.partitioner,
            keyless_counter: AtomicU32::new(0),
            batch_max_bytes: config.batch_max_bytes,
            buffer_max_bytes: config.buffer_max_bytes,
            closed: AtomicBool::new(false),
            refresher: std::sync::Mutex::new(Some(refresher)),
        })
    }

    /// Number of partitions events are spread over.
    pub fn partition_count(&self) -> u32 {
        self.shared.partition_count.load(Ordering::Acquire)
    }

    fn workers(&self) -> impl Iterator<Item = &Arc<Inbox>> {
        self.shared.workers.iter().map_while(OnceLock::get)
    }

    /// Accepts the event, waiting for buffer room if needed (backpressure), and returns
    /// the future of its delivery report. Completes as soon as the event is queued.
    /// Cancelling it before it completes leaves nothing queued. Events with the same
    /// user id are delivered in the order their `send` calls completed.
    pub async fn send(&self, event: &UserEvent) -> Result<DeliveryFuture, SendError> {
        let record = EncodedEvent::new(event);
        self.send_encoded(record).await.map_err(|(error, _)| error)
    }

    /// Like `send`, but fails at once with `QueueFull` instead of waiting for room.
    pub fn try_send(&self, event: &UserEvent) -> Result<DeliveryFuture, SendError> {
        let record = EncodedEvent::new(event);
        self.try_send_encoded(record).map_err(|(error, _)| error)
    }

    /// `send` for an event encoded already (`EncodedEvent::new` or `from_event`): lets a
    /// caller encode on its own threads, next to where its events are made, so that the
    /// thread calling it only queues. A refused record comes back with the error, as
    /// rust-rdkafka's `send` returns its message.
    pub async fn send_encoded(
        &self,
        record: EncodedEvent,
    ) -> Result<DeliveryFuture, (SendError, EncodedEvent)> {
        let (record, size) = self.check(record)?;
        if self.shared.buffer.admit(size as u32).await.is_err() {
            return Err((SendError::Closed, record));
        }
        self.enqueue(record, size)
    }

    /// `try_send` for an event encoded already.
    pub fn try_send_encoded(
        &self,
        record: EncodedEvent,
    ) -> Result<DeliveryFuture, (SendError, EncodedEvent)> {
        let (record, size) = self.check(record)?;
        if let Err(e) = self.shared.buffer.try_admit(size as u32) {
            let error = match e {
                AdmitError::Full => SendError::QueueFull,
                AdmitError::Closed => SendError::Closed,
            };
            return Err((error, record));
        }
        self.enqueue(record, size)
    }

    /// The record with its buffer size, or why it cannot be accepted.
    fn check(
        &self,
        record: EncodedEvent,
    ) -> Result<(EncodedEvent, usize), (SendError, EncodedEvent)> {
        if self.closed.load(Ordering::Relaxed) {
            return Err((SendError::Closed, record));
        }
        let size = record.size();
        if size > self.batch_max_bytes {
            let error = SendError::TooLarge {
                size,
                limit: self.batch_max_bytes,
                setting: "batch_max_bytes",
            };
            return Err((error, record));
        }
        if size as u64 > self.buffer_max_bytes {
            let error = SendError::TooLarge {
                size,
                limit: self.buffer_max_bytes as usize,
                setting: "buffer_max_bytes",
            };
            return Err((error, record));
        }
        Ok((record, size))
    }

    /// Hands an admitted record to its partition's worker.
    fn enqueue(
        &self,
        record: EncodedEvent,
        size: usize,
    ) -> Result<DeliveryFuture, (SendError, EncodedEvent)> {
        let key = record.key.as_slice();
        let partition =
            self.partitioner
                .partition(key, self.partition_count(), &self.keyless_counter) as usize;
        let pending = Pending {
            record,
            bytes: size,
            accepted_at: Instant::now(),
        };
        let worker = self.shared.workers[partition]
            .get()
            .expect("partitions below the count have workers");
        match worker.push_record(pending) {
            Ok(report) => {
                self.shared.metrics.record_accepted();
                Ok(report)
            }
            Err(refused) => {
                // The worker stopped taking records (closed): the event was never accepted.
                self.shared.buffer.release(1, size);
                Err((SendError::Closed, refused.record))
            }
        }
    }

    /// Sends every open batch now (ignoring linger) and completes when every event
    /// accepted before the call has its report. Cancelling it cancels only the wait.
    pub async fn flush(&self) {
        let mut waits = Vec::new();
        for worker in self.workers() {
            let (done, wait) = oneshot::channel();
            if worker.push_urgent(Command::Flush(done)).is_ok() {
                waits.push(wait);
            }
        }
        for wait in waits {
            // An error means the worker already stopped, after reporting everything.
            let _ = wait.await;
        }
    }

    /// Stops accepting (later sends fail with `Closed`), flushes, and completes when
    /// every accepted event has its report and the workers have stopped.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let refresher = self.refresher.lock().expect("not poisoned").take();
        if let Some(refresher) = refresher {
            refresher.abort();
            let _ = refresher.await;
        }
        self.shared.buffer.close();
        for worker in self.workers() {
            let _ = worker.push_urgent(Command::Close);
        }
        let handles = std::mem::take(&mut *self.shared.handles.lock().expect("not poisoned"));
        for handle in handles {
            let _ = handle.await;
        }
        if let Some(close_senders) = self
            .shared
            .close_senders
            .lock()
            .expect("not poisoned")
            .take()
        {
            close_senders();
        }
    }

    /// The counters as of now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics.snapshot()
    }

    /// How much of the buffer is taken now.
    pub fn buffer_usage(&self) -> BufferUsage {
        self.shared.buffer.usage()
    }

    /// The counters, the buffer and each broker's connection in the Prometheus text
    /// format (`prometheus::CONTENT_TYPE`), for a scrape endpoint.
    pub fn prometheus_text(&self) -> String {
        crate::prometheus::encode(
            Arc::clone(&self.shared.metrics),
            Arc::clone(&self.shared.buffer),
        )
    }

    /// Whether the producer can do its job now: a readiness probe's answer.
    pub fn readiness(&self) -> Readiness {
        let unreachable_brokers = self
            .shared
            .metrics
            .brokers()
            .into_iter()
            .filter(|(_, stats)| stats.state() == ConnectionState::Unreachable)
            .map(|(broker, _)| broker)
            .collect();
        Readiness {
            closed: self.closed.load(Ordering::Relaxed),
            metadata_known: self.partition_count() > 0,
            unreachable_brokers,
            buffer_full: self.shared.buffer.usage().is_full(),
        }
    }
}

/// What `Producer::readiness` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub closed: bool,
    /// The topic's partitions and their leaders are known.
    pub metadata_known: bool,
    /// Brokers whose sender's last connection attempt failed or whose connection broke.
    pub unreachable_brokers: Vec<i32>,
    /// Sends are waiting for buffer room.
    pub buffer_full: bool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.not_ready_because().is_none()
    }

    /// The first reason the producer is not ready, in words.
    pub fn not_ready_because(&self) -> Option<String> {
        if self.closed {
            Some("the producer is closed".into())
        } else if !self.metadata_known {
            Some("the topic's metadata is not known".into())
        } else if !self.unreachable_brokers.is_empty() {
            Some(format!(
                "brokers unreachable: {:?}",
                self.unreachable_brokers
            ))
        } else if self.buffer_full {
            Some("the buffer is full (sends wait for room)".into())
        } else {
            None
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if let Some(refresher) = self.refresher.lock().expect("not poisoned").take() {
            refresher.abort();
        }
    }
}

/// Every `interval`, reads the topic's metadata and starts workers for partitions
/// added since (Kafka partitions are only ever added). Ends when the producer is gone.
async fn refresh_partitions<C: Cluster>(
    shared: std::sync::Weak<Shared>,
    side: SendSide<C>,
    interval: std::time::Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(e) = side.router.refresh(side.router.generation()).await {
            tracing::warn!(error = %e, "metadata refresh failed");
            continue;
        }
        let known = shared.partition_count.load(Ordering::Acquire);
        let now = (side.router.partition_count() as u32).min(MAX_PARTITIONS as u32);
        if now > known {
            shared.spread_over(now as usize);
        }
        for partition in known..now {
            shared.add_partition(partition as usize, &side);
        }
        if now > known {
            tracing::info!(from = known, to = now, "partitions added");
        }
    }
}
