//! One task per broker: takes the batches of every partition that broker leads, builds
//! multi-partition produce requests (at most one batch per partition each, up to
//! `max_request_bytes`), keeps up to `max_in_flight` of them on its one connection and
//! hands each partition's answer back to the partition's worker.
//! Fed by the partition workers (through the router); feeds them `Answer`s.
//!
//! ```text
//!  worker[p] ─SendJob─▶ queue[p] ─┐                   ┌─▶ Answer ─▶ worker[p]
//!  worker[q] ─SendJob─▶ queue[q] ─┼─ one request ─▶ link (≤ max_in_flight written,
//!  worker[r] ─SendJob─▶ queue[r] ─┘   per round        answered in order)
//! ```
//!
//! The sender keeps no retry state: a failed request fails each of its batches back to
//! its worker, which decides what to send again and in what order. A partition's
//! batches leave its queue in the order its worker gave them, and the broker handles
//! one connection's requests in order, so pipelined batches keep their order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, warn};

use crate::cluster::{
    Answers, BrokerLink, Cluster, LinkError, PartitionAnswer, PartitionBatch, within,
};
use crate::metrics::{BrokerStats, ConnectionState};

/// One partition's batch for this broker, and where its answer goes.
#[derive(Debug)]
pub(crate) struct SendJob {
    pub partition: i32,
    /// The worker's name for this batch, returned with the answer.
    pub flight: u64,
    pub records: Arc<Vec<u8>>,
    pub answer_to: mpsc::UnboundedSender<Answer>,
}

/// News of one batch: written (its answer is to come), or what became of it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub flight: u64,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    /// On the wire now: the worker may hand over its next batch (until then the
    /// partition's open batch keeps growing, as Java's accumulator does while the
    /// connection is busy, instead of queueing many small batches here).
    Written,
    /// The broker's answer for the batch's partition.
    Answered(PartitionAnswer),
    /// No answer of its own.
    Failed(SendFailure),
}

/// A batch that got no answer of its own.
#[derive(Debug, Clone)]
pub(crate) struct SendFailure {
    pub message: String,
    /// The request may have reached the broker (it was written, or partly).
    pub may_have_been_written: bool,
}

/// The limits a sender obeys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SenderLimits {
    pub max_in_flight: usize,
    pub max_request_bytes: usize,
    /// A connection with requests on it that answers nothing for this long is dropped
    /// (a hung broker), failing them all. A slow broker that keeps answering keeps its
    /// connection however long its queue: it answers a connection's requests in order,
    /// so while answers come the oldest request is being worked on.
    pub request_timeout: Duration,
    /// How long connecting and metadata requests may take: the request timeout as
    /// set, not shortened to the message timeout (which bounds batches, not these).
    pub control_timeout: Duration,
    /// Pause before connecting again after a failed attempt.
    pub retry_backoff: Duration,
}

/// A request on the wire: its number, and its answers to come. Its batches' owners
/// wait in `Requests` under that number, so a connection dropped as hung can fail them
/// at once, whatever its answer futures do.
type Pending = std::pin::Pin<
    Box<dyn std::future::Future<Output = (u64, Result<Vec<PartitionAnswer>, LinkError>)> + Send>,
>;

/// The batches of each request on the wire, by request number.
type Requests = HashMap<u64, Vec<SendJob>>;

/// Runs until every handle to it is gone and its queues are empty. Connects first, and
/// then tells `first_attempt` (whatever the outcome).
pub(crate) async fn run<C: Cluster>(
    broker: i32,
    cluster: Arc<C>,
    limits: SenderLimits,
    stats: Arc<BrokerStats>,
    mut jobs: mpsc::UnboundedReceiver<SendJob>,
    first_attempt: Option<oneshot::Sender<()>>,
) {
    let mut queues: HashMap<i32, VecDeque<SendJob>> = HashMap::new();
    // Partitions with queued batches, in the order they get a place in a request.
    let mut turn: VecDeque<i32> = VecDeque::new();
    let mut in_flight: FuturesUnordered<Pending> = FuturesUnordered::new();
    let mut requests: Requests = HashMap::new();
    let mut next_request: u64 = 0;
    // Connected at once, so the first batches do not wait for the handshake (a round
    // trip or more on a distant link). A broker not reachable now is tried again when
    // a batch comes, after the backoff.
    let mut link = connect(broker, cluster.as_ref(), &limits, &stats)
        .await
        .ok();
    let mut connect_after = link
        .is_none()
        .then(|| Instant::now() + limits.retry_backoff);
    if let Some(tried) = first_attempt {
        let _ = tried.send(());
    }
    let mut open = true;
    // Since when the connection has answered nothing while requests wait on it.
    let mut silent_since = Instant::now();

    loop {
        // Put requests on the wire while there is room and work.
        while requests.len() < limits.max_in_flight && !turn.is_empty() {
            if connect_after.is_some_and(|at| Instant::now() < at) {
                break;
            }
            let current = match &link {
                Some(l) => Arc::clone(l),
                None => match connect(broker, cluster.as_ref(), &limits, &stats).await {
                    Ok(l) => {
                        connect_after = None;
                        link = Some(Arc::clone(&l));
                        l
                    }
                    Err(message) => {
                        connect_after = Some(Instant::now() + limits.retry_backoff);
                        fail_all_queued(&mut queues, &mut turn, &message);
                        break;
                    }
                },
            };
            let jobs = take_request(&mut queues, &mut turn, limits.max_request_bytes);
            tracing::trace!(
                broker,
                partitions = jobs.len(),
                in_flight = requests.len(),
                "writing a produce request"
            );
            let batches = jobs
                .iter()
                .map(|j| PartitionBatch {
                    partition: j.partition,
                    records: Arc::clone(&j.records),
                })
                .collect();
            match within(
                limits.request_timeout,
                "the produce request",
                current.produce(batches),
            )
            .await
            {
                Ok(answers) => {
                    for job in &jobs {
                        let _ = job.answer_to.send(Answer {
                            flight: job.flight,
                            outcome: Outcome::Written,
                        });
                    }
                    if requests.is_empty() {
                        silent_since = Instant::now();
                    }
                    next_request += 1;
                    requests.insert(next_request, jobs);
                    in_flight.push(await_answers(next_request, answers, Arc::clone(&stats)));
                }
                Err(e) => {
                    let message = format!("writing to broker {broker} failed: {e}");
                    current.abandon("a produce request could not be written");
                    link = None;
                    stats.set_state(ConnectionState::Unreachable);
                    stats.record_request_failed();
                    fail_jobs(jobs, &message, true);
                }
            }
        }
        stats.set_in_flight(requests.len());
        if !open && turn.is_empty() && requests.is_empty() {
            break;
        }

        let reconnect_at = connect_after.filter(|_| !turn.is_empty());
        let hung_at = silent_since + limits.request_timeout;
        tokio::select! {
            Some((request, answers)) = in_flight.next(), if !in_flight.is_empty() => {
                silent_since = Instant::now();
                // None: failed already, with its connection dropped as hung.
                let Some(jobs) = requests.remove(&request) else { continue };
                match answers {
                    Ok(answers) => deliver_answers(broker, jobs, answers),
                    Err(e) => {
                        // One failed answer means the connection is gone or abandoned:
                        // later requests on it fail too; the next request reconnects.
                        if let Some(l) = link.take() {
                            l.abandon("a produce request failed");
                        }
                        stats.set_state(ConnectionState::Unreachable);
                        stats.record_request_failed();
                        fail_jobs(jobs, &format!("broker {broker}: {e}"), true);
                    }
                }
            }
            command = jobs.recv(), if open => {
                let mut next = command;
                let mut yielded = false;
                loop {
                    match next {
                        Some(job) => {
                            let queue = queues.entry(job.partition).or_default();
                            if queue.is_empty() {
                                turn.push_back(job.partition);
                            }
                            queue.push_back(job);
                        }
                        None => {
                            open = false;
                            break;
                        }
                    }
                    next = match jobs.try_recv() {
                        Ok(c) => Some(c),
                        Err(mpsc::error::TryRecvError::Disconnected) => None,
                        Err(mpsc::error::TryRecvError::Empty) if !yielded => {
                            // Workers whose batches closed at the same moment are
                            // about to hand them over: let them, so one request
                            // carries them all.
                            yielded = true;
                            tokio::task::yield_now().await;
                            match jobs.try_recv() {
                                Ok(c) => Some(c),
                                Err(mpsc::error::TryRecvError::Disconnected) => None,
                                Err(mpsc::error::TryRecvError::Empty) => break,
                            }
                        }
                        Err(mpsc::error::TryRecvError::Empty) => break,
                    };
                }
            }
            _ = tokio::time::sleep_until(reconnect_at.unwrap_or_else(Instant::now)), if reconnect_at.is_some() => {
                connect_after = None;
            }
            _ = sleep_until(hung_at), if !requests.is_empty() => {
                // Every request on it goes back to its workers, to be retried.
                warn!(broker, timeout = ?limits.request_timeout, "no answer on the connection within the request timeout; dropping it");
                if let Some(l) = link.take() {
                    l.abandon("no answer within the request timeout");
                }
                stats.set_state(ConnectionState::Unreachable);
                let message = format!(
                    "broker {broker}: no answer within the request timeout ({:?})",
                    limits.request_timeout
                );
                for (_, jobs) in requests.drain() {
                    stats.record_request_failed();
                    fail_jobs(jobs, &message, true);
                }
            }
        }
    }
    stats.set_in_flight(0);
    stats.set_state(ConnectionState::Idle);
    debug!(broker, "broker sender stopped");
}

/// A connection to the broker, or why there is none (the broker is marked unreachable).
async fn connect<C: Cluster>(
    broker: i32,
    cluster: &C,
    limits: &SenderLimits,
    stats: &BrokerStats,
) -> Result<Arc<C::Link>, String> {
    match within(
        limits.control_timeout,
        &format!("connecting to broker {broker}"),
        cluster.connect(broker),
    )
    .await
    {
        Ok(link) => {
            debug!(broker, "connected");
            stats.set_state(ConnectionState::Connected);
            Ok(Arc::new(link))
        }
        Err(e) => {
            let message = format!("cannot connect to broker {broker}: {e}");
            warn!(broker, %message, "connection failed");
            stats.set_state(ConnectionState::Unreachable);
            Err(message)
        }
    }
}

/// The next request: the first queued batch of each partition, in turn, until the
/// byte cap (the first batch always goes, whatever its size).
fn take_request(
    queues: &mut HashMap<i32, VecDeque<SendJob>>,
    turn: &mut VecDeque<i32>,
    max_request_bytes: usize,
) -> Vec<SendJob> {
    let mut jobs = Vec::new();
    let mut bytes = 0;
    let mut passed = Vec::new();
    while let Some(partition) = turn.pop_front() {
        let queue = queues.get_mut(&partition).expect("a turn has a queue");
        let size = queue.front().map_or(0, |j| j.records.len());
        if !jobs.is_empty() && bytes + size > max_request_bytes {
            passed.push(partition);
            continue;
        }
        let job = queue.pop_front().expect("a turn has a batch");
        bytes += size;
        jobs.push(job);
        if queue.is_empty() {
            queues.remove(&partition);
        } else {
            // Its next batch waits for the next request, behind the others.
            passed.push(partition);
        }
    }
    // Partitions left out keep their place at the front, in order.
    for partition in passed.into_iter().rev() {
        turn.push_front(partition);
    }
    jobs
}

/// The answers of a written request, or why there are none (the connection broke,
/// or was dropped as hung).
fn await_answers(request: u64, answers: Answers, stats: Arc<BrokerStats>) -> Pending {
    let written_at = Instant::now();
    Box::pin(async move {
        let result = answers.await;
        let took = written_at.elapsed();
        if result.is_ok() {
            stats.request_seconds.observe(took.as_secs_f64());
        }
        tracing::trace!(request, ?took, ok = result.is_ok(), "produce answered");
        (request, result)
    })
}

fn deliver_answers(broker: i32, jobs: Vec<SendJob>, answers: Vec<PartitionAnswer>) {
    let mut by_partition: HashMap<i32, PartitionAnswer> =
        answers.into_iter().map(|a| (a.partition, a)).collect();
    for job in jobs {
        let outcome = match by_partition.remove(&job.partition) {
            Some(answer) => Outcome::Answered(answer),
            None => Outcome::Failed(SendFailure {
                message: format!(
                    "broker {broker} did not answer for partition {}",
                    job.partition
                ),
                may_have_been_written: true,
            }),
        };
        let _ = job.answer_to.send(Answer {
            flight: job.flight,
            outcome,
        });
    }
}

fn fail_jobs(jobs: Vec<SendJob>, message: &str, may_have_been_written: bool) {
    for job in jobs {
        let _ = job.answer_to.send(Answer {
            flight: job.flight,
            outcome: Outcome::Failed(SendFailure {
                message: message.to_string(),
                may_have_been_written,
            }),
        });
    }
}

/// No connection: every queued batch goes back to its worker, unsent, to be retried
/// (perhaps through another broker, if the leader moved).
fn fail_all_queued(
    queues: &mut HashMap<i32, VecDeque<SendJob>>,
    turn: &mut VecDeque<i32>,
    message: &str,
) {
    turn.clear();
    for (_, queue) in queues.drain() {
        fail_jobs(queue.into(), message, false);
    }
}
