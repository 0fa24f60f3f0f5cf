//! One task per partition: accumulates the partition's records into batches, hands them
//! to its leader's broker sender (up to `max_in_flight` at once with idempotence, one
//! without), stamps them with the producer's id, epoch and sequence, retries them in
//! order, and makes every record's report.
//! Fed by `Producer::send` through its `Inbox` (the buffer bounds it), and by the
//! broker senders' answers; feeds the senders, the `DeliveryFuture`s, the metrics,
//! and gives buffer room back.
//!
//! ```text
//!  send() ─Command─▶ Accumulator ─closed batch─▶ window (≤ max_in_flight) ─SendJob─▶ sender[leader]
//!                    (linger, caps, expiry)       stamp, retry in order   ◀─Answer──┘
//!                                                        │
//!                                                        └─▶ reports (offsets or errors)
//! ```
//!
//! Order: batches enter the window in order and are handed to the sender in window
//! order; after any failure the worker waits until nothing of the partition is on the
//! wire, then sends every unfinished batch again, in order. With idempotence the broker
//! writes a batch only if the one before it was written (sequence numbers), and answers
//! a batch it already has with its first offsets, so retries neither reorder nor
//! duplicate. A sequence the broker no longer agrees with (a batch lost for good: timed
//! out, refused) is repaired by bumping the producer epoch, after which the partition's
//! unfinished batches are stamped again from sequence 0.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rskafka::client::error::ProtocolError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, warn};

use crate::accumulator::{Accumulator, Batch, BatchLimits, Replies};
use crate::batch_report::BatchReport;
use crate::broker_sender::{Answer, Outcome, SendFailure, SendJob};
use crate::buffer::{Buffer, BufferUsage};
use crate::cluster::{Cluster, PartitionAnswer, ProducerIdentity};
use crate::config::CompressionCodec;
use crate::delivery::DeliveryError;
use crate::idempotence::Idempotence;
use crate::inbox::{Command, Inbox, WakeWhen};
use crate::metrics::Metrics;
use crate::record_batch::{self, Stamp};
use crate::router::{Router, SenderHandle};

/// Most commands taken from the inbox per wake-up, so timers and answers are still
/// looked at under a flood of records.
const MAX_COMMANDS_PER_WAKE: usize = 4096;

/// tokio's timers tick in whole milliseconds and fire on the tick after the deadline,
/// and the thread then has to wake: measured here, a 5 ms linger lasted ~7 ms. A batch
/// therefore closes once its linger deadline is within one tick, which brings the
/// linger users get to ~6 ms (and the p50 ack latency at 50,000 events/s down by
/// ~0.5 ms, `BENCHMARKS.md`).
const TIMER_TICK: Duration = Duration::from_millis(1);

/// What the worker shares with the producer handle.
pub(crate) struct WorkerContext<C: Cluster> {
    pub partition: i32,
    pub limits: BatchLimits,
    pub compression: CompressionCodec,
    pub buffer: Arc<Buffer>,
    pub metrics: Arc<Metrics>,
    pub router: Arc<Router<C>>,
    /// None when idempotence is off: batches carry no producer id.
    pub idempotence: Option<Arc<Idempotence<C>>>,
    /// Batches of this partition handed to a sender and not yet finished, at most.
    pub max_in_flight: usize,
    /// The same while the buffer is under pressure (`in_flight_under_pressure`); the
    /// producer lowers it as partitions are added.
    pub in_flight_under_pressure: Arc<AtomicUsize>,
    pub retry_backoff: Duration,
}

/// How many batches of a partition may be in flight while the buffer is under
/// pressure. With W in flight, B buffered records over P partitions make batches of
/// about B / ((W + 1) P): pipelining goes on only as far as it leaves each partition
/// room for full batches (2 in flight at 3 partitions with the defaults, where one
/// batch at a time left the connection idle while the next was compressed: 15 % more
/// events/s, medians of 8 alternating runs, `BENCHMARKS.md`), and stops at one in flight
/// where the buffer is spread too thin for that (12 partitions and more).
/// Only the buffer's caps (`max_records`, `max_bytes`) count.
pub(crate) fn in_flight_under_pressure(
    buffer: &BufferUsage,
    batch: &BatchLimits,
    partitions: usize,
    max_in_flight: usize,
) -> usize {
    let partitions = partitions.max(1) as u64;
    let by_records =
        buffer.max_records / partitions.saturating_mul(batch.max_records as u64).max(1);
    let by_bytes = buffer.max_bytes / partitions.saturating_mul(batch.max_bytes as u64).max(1);
    let full_batches = usize::try_from(by_records.min(by_bytes)).unwrap_or(usize::MAX);
    full_batches
        .saturating_sub(1)
        .clamp(1, max_in_flight.max(1))
}

/// Where a batch of the window stands.
#[derive(Debug)]
enum FlightState {
    /// Handed to this broker's sender; its answer is to come. `written` once the
    /// sender put it on the wire.
    Sent { sender: SenderHandle, written: bool },
    /// Failed, to be sent again once nothing of the partition is on the wire.
    Waiting,
}

/// A batch handed to the send side and not yet reported.
struct Flight {
    /// The batch's place in the partition (its accumulator sequence).
    id: u64,
    records: Arc<Vec<u8>>,
    replies: Replies,
    bytes: usize,
    /// The message timeout of its first record.
    deadline: Instant,
    /// Producer id, epoch and base sequence, once stamped (idempotence only).
    stamp: Option<Stamp>,
    state: FlightState,
    /// An attempt that ended may have been written (its connection broke after the
    /// request went out, or the broker's refusal came after the leader wrote it). With
    /// the attempt on the wire, if any, it decides how a timeout is reported.
    maybe_written: bool,
    /// The broker's latest refusal of this batch, each one certain it was not written.
    last_refusal: Option<ProtocolError>,
}

/// The partition's idempotence bookkeeping: the identity its sequences belong to and
/// the next sequence to stamp.
struct Sequencing {
    identity: ProducerIdentity,
    next: i32,
    /// The broker acknowledged a batch of this partition from this producer id. Until
    /// then it has no state for us there and takes a first batch with any sequence,
    /// so a later batch could be written before an earlier one that failed: one batch
    /// at a time until the first is acknowledged.
    confirmed: bool,
}

/// Runs until it is told to close and all its records are reported.
pub(crate) async fn run<C: Cluster>(ctx: WorkerContext<C>, inbox: Arc<Inbox>) {
    let mut worker = Worker::new(ctx);
    let (answer_to, mut answers) = mpsc::unbounded_channel();
    let mut flush_waiters: Vec<(u64, oneshot::Sender<()>)> = Vec::new();
    let mut closing = false;
    let mut taken = Vec::new();

    loop {
        let now = Instant::now();
        // An open batch due to close (lingered, or expired) is sealed first, so that
        // every record of it is taken before it closes.
        let sealing = worker.open_batch_due(now).cloned();
        match &sealing {
            Some(report) => inbox.seal_and_take(report, &mut taken),
            None => inbox.take(MAX_COMMANDS_PER_WAKE, &mut taken),
        }
        for command in taken.drain(..) {
            worker.apply(command, &mut closing, &mut flush_waiters);
        }
        if closing {
            // Records that raced the close were queued after it: take them all, then
            // refuse later ones.
            inbox.close();
            inbox.take(usize::MAX, &mut taken);
            for command in taken.drain(..) {
                worker.apply(command, &mut closing, &mut flush_waiters);
            }
        }
        if let Some(report) = &sealing {
            worker.acc.close_open_of(report);
        }
        worker.expire(now);
        worker.settle_identity(now);
        worker.send_what_is_due(now, closing, &answer_to);
        worker.answer_flush_waiters(&mut flush_waiters);
        if closing && worker.window.is_empty() && worker.acc.is_empty() {
            break;
        }

        if !inbox.arm(worker.wake_when()) {
            // Enough is queued already to act on.
            continue;
        }
        let linger_at = worker.linger_close_at();
        let expiry_at = worker.next_expiry();
        let resend_at = worker.resend_at.filter(|_| worker.has_waiting());
        tokio::select! {
            biased;
            Some(answer) = answers.recv() => {
                worker.on_answer(answer);
                // Take every answer already there before sending again.
                while let Ok(answer) = answers.try_recv() {
                    worker.on_answer(answer);
                }
            }
            _ = inbox.woken() => {}
            _ = sleep_until(linger_at.unwrap_or(now)), if linger_at.is_some() => {}
            _ = sleep_until(expiry_at.unwrap_or(now)), if expiry_at.is_some() => {}
            _ = sleep_until(resend_at.unwrap_or(now)), if resend_at.is_some() => {}
        }
    }
    debug!(partition = worker.ctx.partition, "partition worker stopped");
}

struct Worker<C: Cluster> {
    ctx: WorkerContext<C>,
    acc: Accumulator,
    /// Batches handed to the send side, oldest first.
    window: VecDeque<Flight>,
    sequencing: Option<Sequencing>,
    /// The broker's answer says the sequence is broken: bump the epoch once nothing
    /// is on the wire.
    needs_bump: bool,
    /// The leader may have moved: read the metadata again before resending.
    stale_route: bool,
    /// The route generation the last send used.
    route_seen: u64,
    /// Not before this instant are waiting batches sent again.
    resend_at: Option<Instant>,
}

impl<C: Cluster> Worker<C> {
    fn new(ctx: WorkerContext<C>) -> Self {
        let acc = Accumulator::new(ctx.limits, ctx.compression);
        let sequencing = ctx.idempotence.as_ref().map(|i| Sequencing {
            identity: i.current(),
            next: 0,
            confirmed: false,
        });
        let route_seen = ctx.router.generation();
        Self {
            ctx,
            acc,
            window: VecDeque::new(),
            sequencing,
            needs_bump: false,
            stale_route: false,
            route_seen,
            resend_at: None,
        }
    }

    /// Takes in one command from the inbox.
    fn apply(
        &mut self,
        command: Command,
        closing: &mut bool,
        flush_waiters: &mut Vec<(u64, oneshot::Sender<()>)>,
    ) {
        match command {
            Command::Batch(reporter) => self.acc.start(reporter),
            Command::Record(pending) => self.acc.push(pending),
            Command::Flush(done) => {
                // The flush sealed the open batch: its records were queued before it.
                self.acc.close_open();
                let target = self.acc.last_closed_seq().unwrap_or(0);
                flush_waiters.push((target, done));
            }
            Command::Close => *closing = true,
        }
    }

    /// When the open batch closes for lingering, if it may be sent: one timer tick
    /// before its linger deadline (`TIMER_TICK`).
    fn linger_close_at(&self) -> Option<Instant> {
        self.acc
            .linger_deadline()
            .filter(|_| self.takes_new_batches())
            .map(|at| at.checked_sub(TIMER_TICK).unwrap_or(at))
    }

    /// The report of the open batch if it should close now: it has lingered (and may
    /// be sent), or its message timeout has passed.
    fn open_batch_due(&self, now: Instant) -> Option<&Arc<BatchReport>> {
        let lingered = self.linger_close_at().is_some_and(|at| at <= now);
        (lingered || self.acc.open_expired(now))
            .then(|| self.acc.open_report())
            .flatten()
    }

    fn on_wire(&self) -> bool {
        self.window
            .iter()
            .any(|f| matches!(f.state, FlightState::Sent { .. }))
    }

    fn has_waiting(&self) -> bool {
        self.window
            .iter()
            .any(|f| matches!(f.state, FlightState::Waiting))
    }

    /// New batches join the window only while nothing waits to be sent again (a retry
    /// goes first), the window has room, and the sender has written the partition's
    /// last batch: while the connection is busy, records gather in the open batch.
    fn takes_new_batches(&self) -> bool {
        let room = match &self.sequencing {
            Some(s) if !s.confirmed => 1,
            // A buffer at least half full means the broker is the bottleneck: fewer
            // batches in flight let the next one grow while the others are out, and
            // bigger batches cost the broker less per event. A buffer with room keeps
            // the pipelining that latency needs.
            _ if self.ctx.buffer.under_pressure() => {
                self.ctx.in_flight_under_pressure.load(Ordering::Relaxed)
            }
            _ => self.ctx.max_in_flight,
        };
        !self.has_waiting()
            && !self.needs_bump
            && self.window.len() < room
            && !self
                .window
                .iter()
                .any(|f| matches!(f.state, FlightState::Sent { written: false, .. }))
    }

    /// When queued records should wake the worker: the first one, if it would start a
    /// batch that can be sent; enough to fill the open batch, if that one can be sent;
    /// otherwise (its window is full, or a retry goes first: an answer or a timer will
    /// wake it) only enough to bound the work of one wake-up.
    fn wake_when(&self) -> WakeWhen {
        let bounded = WakeWhen {
            records: MAX_COMMANDS_PER_WAKE,
            bytes: usize::MAX,
        };
        if !self.takes_new_batches() {
            return bounded;
        }
        match self.acc.open_room() {
            None => WakeWhen {
                records: 1,
                bytes: usize::MAX,
            },
            Some((records, bytes)) => WakeWhen {
                records: records.min(MAX_COMMANDS_PER_WAKE),
                bytes,
            },
        }
    }

    fn next_expiry(&self) -> Option<Instant> {
        let window = self.window.iter().map(|f| f.deadline).min();
        match (window, self.acc.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fails every batch, queued or in the window, whose message timeout has passed.
    fn expire(&mut self, now: Instant) {
        let partition = self.ctx.partition;
        for batch in self.acc.take_expired(now) {
            warn!(
                partition,
                records = batch.len(),
                "batch expired before it was sent"
            );
            let (count, bytes) = (batch.len(), batch.bytes);
            report_failure(
                &self.ctx,
                batch.replies,
                DeliveryError::TimedOutQueued { partition },
            );
            self.ctx.buffer.release(count, bytes);
        }
        let mut i = 0;
        while i < self.window.len() {
            if self.window[i].deadline > now {
                i += 1;
                continue;
            }
            let flight = self.window.remove(i).expect("in range");
            // A batch still on the wire is left to its sender: a request unanswered
            // within the request timeout drops its connection there. Dropping the
            // connection here too would fail every partition's requests on it, and
            // under a slow broker turn one late batch into a storm of retries.
            let broker = match &flight.state {
                FlightState::Sent { sender, .. } => {
                    // No answer in a whole message timeout: the leader may be gone
                    // (hung or moved) without any request failing yet, so read the
                    // metadata again; later batches go where it says. (Waiting for it
                    // instead would stop every partition while metadata requests fail.)
                    self.ctx.router.request_refresh(self.route_seen);
                    Some(sender.broker)
                }
                FlightState::Waiting => None,
            };
            warn!(
                partition,
                ?broker,
                records = flight.replies.len(),
                may_have_been_written = timeout_error(partition, &flight).may_have_been_written(),
                "message timeout passed before the broker acknowledged the batch"
            );
            let error = timeout_error(partition, &flight);
            self.finish_failed(flight, error);
        }
    }

    /// With idempotence: has the epoch bumped when the broker's answers asked for it,
    /// and moves the partition to the producer's current identity (restarting its
    /// sequences) once nothing of it is on the wire. Never waits on the cluster.
    fn settle_identity(&mut self, now: Instant) {
        let Some(idempotence) = &self.ctx.idempotence else {
            return;
        };
        if self.on_wire() {
            return;
        }
        let seen = self.sequencing.as_ref().expect("idempotent").identity;
        let mut current = idempotence.current();
        if self.needs_bump {
            if current == seen {
                idempotence.request_bump(seen);
                current = idempotence.current();
            }
            if current == seen {
                // A new producer id is being fetched: look again after the backoff.
                self.resend_at = Some(now + self.ctx.retry_backoff);
                return;
            }
            self.needs_bump = false;
        }
        if current != seen {
            debug!(
                partition = self.ctx.partition,
                epoch = current.epoch,
                "sequences restart"
            );
            let confirmed = self
                .sequencing
                .as_ref()
                .is_some_and(|s| s.confirmed && s.identity.id == current.id);
            self.sequencing = Some(Sequencing {
                identity: current,
                next: 0,
                confirmed,
            });
            for flight in &mut self.window {
                flight.stamp = None;
            }
        }
    }

    /// Sends again what waits (all of it, in order, once nothing is on the wire), or
    /// else closes and sends new batches while the window has room.
    fn send_what_is_due(
        &mut self,
        now: Instant,
        closing: bool,
        answer_to: &mpsc::UnboundedSender<Answer>,
    ) {
        if self.needs_bump || self.identity_outdated() {
            return;
        }
        if self.has_waiting() {
            if self.on_wire() || self.resend_at.is_some_and(|at| now < at) {
                return;
            }
            if self.stale_route {
                if self.ctx.router.generation() <= self.route_seen {
                    // Resend once the metadata has been read again.
                    self.ctx.router.request_refresh(self.route_seen);
                    self.resend_at = Some(now + self.ctx.retry_backoff);
                    return;
                }
                self.stale_route = false;
            }
            for i in 0..self.window.len() {
                if matches!(self.window[i].state, FlightState::Waiting)
                    && !self.submit(i, answer_to)
                {
                    return;
                }
            }
            self.ctx.metrics.record_retry();
            return;
        }
        if !self.takes_new_batches() {
            return;
        }
        if closing {
            // Every record is in: the close sealed the open batch.
            self.acc.close_open();
        }
        while self.takes_new_batches() {
            let Some(batch) = self.acc.take_ready() else {
                break;
            };
            let Some(flight) = self.admit(batch) else {
                continue;
            };
            self.window.push_back(flight);
            let last = self.window.len() - 1;
            if !self.submit(last, answer_to) {
                break;
            }
        }
    }

    /// True while the producer moved to a new epoch this partition has not taken up.
    fn identity_outdated(&self) -> bool {
        match (&self.ctx.idempotence, &self.sequencing) {
            (Some(i), Some(s)) => i.current() != s.identity,
            _ => false,
        }
    }

    /// A closed batch becomes a flight, or is failed at once when it could not be
    /// encoded (refused here, as the broker would refuse it).
    fn admit(&mut self, batch: Batch) -> Option<Flight> {
        let Batch {
            seq,
            encoded,
            replies,
            bytes,
            first_accepted_at,
        } = batch;
        match encoded {
            Ok(encoded) => {
                self.ctx
                    .metrics
                    .record_batch_sent(replies.len(), bytes, encoded.bytes.len());
                debug!(
                    partition = self.ctx.partition,
                    records = replies.len(),
                    bytes,
                    "sending batch"
                );
                Some(Flight {
                    id: seq,
                    records: Arc::new(encoded.bytes),
                    replies,
                    bytes,
                    deadline: first_accepted_at + self.ctx.limits.message_timeout,
                    stamp: None,
                    state: FlightState::Waiting,
                    maybe_written: false,
                    last_refusal: None,
                })
            }
            Err(message) => {
                let partition = self.ctx.partition;
                let count = replies.len();
                report_failure(
                    &self.ctx,
                    replies,
                    DeliveryError::Rejected {
                        partition,
                        reason: message,
                    },
                );
                self.ctx.buffer.release(count, bytes);
                None
            }
        }
    }

    /// Hands the window's flight `i` to its leader's sender, stamping it first if it
    /// has no stamp. False (and a resend scheduled) when the leader is unknown.
    fn submit(&mut self, i: usize, answer_to: &mpsc::UnboundedSender<Answer>) -> bool {
        let partition = self.ctx.partition;
        // The generation first: a metadata answer that names no leader must lead to
        // another request, not to the same answer read again.
        self.route_seen = self.ctx.router.generation();
        let Some(sender) = self.ctx.router.sender_for(partition) else {
            debug!(partition, "no leader known; reading the metadata again");
            self.stale_route = true;
            self.ctx.router.request_refresh(self.route_seen);
            self.resend_at = Some(Instant::now() + self.ctx.retry_backoff);
            return false;
        };
        let flight = &mut self.window[i];
        if let Some(seq) = &mut self.sequencing
            && flight.stamp.is_none()
        {
            let stamp = Stamp {
                producer_id: seq.identity.id,
                producer_epoch: seq.identity.epoch,
                base_sequence: seq.next,
            };
            seq.next = record_batch::next_sequence(seq.next, flight.replies.len());
            record_batch::stamp(Arc::make_mut(&mut flight.records).as_mut_slice(), stamp);
            flight.stamp = Some(stamp);
        }
        let job = SendJob {
            partition,
            flight: flight.id,
            records: Arc::clone(&flight.records),
            answer_to: answer_to.clone(),
        };
        if sender.jobs.send(job).is_err() {
            // The sender stopped (its broker leads nothing now): find the new leader.
            self.stale_route = true;
            self.ctx.router.request_refresh(self.route_seen);
            self.resend_at = Some(Instant::now() + self.ctx.retry_backoff);
            return false;
        }
        // Handed over: the sender may write it at any time from now on (`Sent` says so
        // until its answer comes).
        flight.state = FlightState::Sent {
            sender,
            written: false,
        };
        true
    }

    fn on_answer(&mut self, answer: Answer) {
        let Some(i) = self.window.iter().position(|f| f.id == answer.flight) else {
            // Its message timeout passed and it was reported already.
            return;
        };
        let FlightState::Sent { written, .. } = &mut self.window[i].state else {
            return;
        };
        match answer.outcome {
            Outcome::Written => *written = true,
            Outcome::Answered(PartitionAnswer {
                error: error @ (None | Some(ProtocolError::DuplicateSequenceNumber)),
                base_offset,
                ..
            }) => {
                if error.is_some() {
                    self.ctx.metrics.record_duplicate_answer();
                }
                let flight = self.window.remove(i).expect("in range");
                if let Some(seq) = &mut self.sequencing {
                    seq.confirmed = true;
                }
                self.finish_delivered(flight, base_offset);
            }
            Outcome::Answered(PartitionAnswer {
                error: Some(code), ..
            }) => self.on_refusal(i, code),
            Outcome::Failed(SendFailure {
                message,
                may_have_been_written,
            }) => {
                debug!(partition = self.ctx.partition, %message, "send failed; will retry");
                let flight = &mut self.window[i];
                flight.maybe_written |= may_have_been_written;
                // A connection that failed may have been to a broker that is gone.
                self.stale_route = true;
                self.wait_for_resend(i);
            }
        }
    }

    /// The broker answered this partition's batch with an error code.
    fn on_refusal(&mut self, i: usize, code: ProtocolError) {
        let partition = self.ctx.partition;
        self.window[i].last_refusal = Some(code);
        match code {
            ProtocolError::OutOfOrderSequenceNumber => {
                // Not written. If nothing before it is unfinished, the broker lost (or
                // never got) the batch before: the sequence is broken for good.
                if i == 0 {
                    warn!(
                        partition,
                        "broker reports a sequence gap; bumping the producer epoch"
                    );
                    self.needs_bump = true;
                }
                self.wait_for_resend(i);
            }
            ProtocolError::UnknownProducerId
            | ProtocolError::InvalidProducerEpoch
            | ProtocolError::InvalidProducerIdMapping => {
                // Not written. Stamped with an older epoch than the producer's now: it
                // is stamped again; otherwise the broker lost our producer: bump.
                let current = self.ctx.idempotence.as_ref().map(|i| i.current());
                let stamped = self.window[i]
                    .stamp
                    .map(|s| (s.producer_id, s.producer_epoch));
                if stamped == current.map(|c| (c.id, c.epoch)) {
                    warn!(partition, %code, "bumping the producer epoch");
                    self.needs_bump = true;
                }
                self.wait_for_resend(i);
            }
            code if retriable(code) => {
                debug!(partition, %code, "batch refused for now; will retry");
                self.window[i].maybe_written |= may_be_written_despite(code);
                if moves_leader(code) {
                    self.stale_route = true;
                }
                self.wait_for_resend(i);
            }
            code => {
                let flight = self.window.remove(i).expect("in range");
                warn!(partition, %code, "broker rejected the batch");
                self.finish_failed(
                    flight,
                    DeliveryError::Rejected {
                        partition,
                        reason: code.to_string(),
                    },
                );
            }
        }
    }

    fn wait_for_resend(&mut self, i: usize) {
        self.window[i].state = FlightState::Waiting;
        let at = Instant::now() + self.ctx.retry_backoff;
        self.resend_at = Some(self.resend_at.map_or(at, |r| r.max(at)));
    }

    fn finish_delivered(&self, flight: Flight, base_offset: i64) {
        let count = flight.replies.len();
        let now = Instant::now();
        let mut latency_sum_us = 0;
        for accepted_at in &flight.replies.accepted_at {
            latency_sum_us += self.ctx.metrics.record_latency(now - *accepted_at);
        }
        // The callers may have dropped their futures: the reports still count.
        flight.replies.reporter.delivered(base_offset);
        self.ctx.metrics.record_latency_sum(latency_sum_us);
        self.ctx.metrics.record_delivered(count as u64);
        self.ctx.buffer.release(count, flight.bytes);
    }

    fn finish_failed(&self, flight: Flight, error: DeliveryError) {
        let count = flight.replies.len();
        report_failure(&self.ctx, flight.replies, error);
        self.ctx.buffer.release(count, flight.bytes);
    }

    /// Answers every flush whose batches have all been reported: those older than the
    /// oldest batch still in the window or queued.
    fn answer_flush_waiters(&self, waiters: &mut Vec<(u64, oneshot::Sender<()>)>) {
        if waiters.is_empty() {
            return;
        }
        let in_window = self.window.iter().map(|f| f.id).min();
        let oldest_unfinished = match (in_window, self.acc.oldest_queued_seq()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut i = 0;
        while i < waiters.len() {
            let finished = oldest_unfinished.is_none_or(|oldest| oldest > waiters[i].0);
            if finished {
                let (_, done) = waiters.swap_remove(i);
                let _ = done.send(());
            } else {
                i += 1;
            }
        }
    }
}

/// What a batch whose message timeout passed reports: may have been written while an
/// attempt is on the wire or one that ended left it open; otherwise not written, either
/// refused by the broker each time (with its latest reason) or never sent.
fn timeout_error(partition: i32, flight: &Flight) -> DeliveryError {
    if flight.maybe_written || matches!(flight.state, FlightState::Sent { .. }) {
        return DeliveryError::TimedOutInFlight { partition };
    }
    match flight.last_refusal {
        Some(code) => DeliveryError::Rejected {
            partition,
            reason: format!("{code}, until the message timeout passed"),
        },
        None => DeliveryError::TimedOutQueued { partition },
    }
}

/// Errors after which the same batch may succeed if sent again (Java's
/// `RetriableException`s that a produce answer carries).
fn retriable(code: ProtocolError) -> bool {
    matches!(
        code,
        ProtocolError::NotLeaderOrFollower
            | ProtocolError::LeaderNotAvailable
            | ProtocolError::UnknownTopicOrPartition
            | ProtocolError::NotEnoughReplicas
            | ProtocolError::NotEnoughReplicasAfterAppend
            | ProtocolError::RequestTimedOut
            | ProtocolError::NetworkException
            | ProtocolError::KafkaStorageError
            | ProtocolError::CorruptMessage
            | ProtocolError::FencedLeaderEpoch
            | ProtocolError::UnknownLeaderEpoch
            | ProtocolError::ThrottlingQuotaExceeded
            | ProtocolError::ConcurrentTransactions
    )
}

/// Refusals that come after the leader wrote the batch (the replicas did not confirm
/// it in time): it may be in the log.
fn may_be_written_despite(code: ProtocolError) -> bool {
    matches!(
        code,
        ProtocolError::RequestTimedOut
            | ProtocolError::NotEnoughReplicasAfterAppend
            | ProtocolError::NetworkException
    )
}

/// Refusals that mean the metadata naming this leader is stale.
fn moves_leader(code: ProtocolError) -> bool {
    matches!(
        code,
        ProtocolError::NotLeaderOrFollower
            | ProtocolError::LeaderNotAvailable
            | ProtocolError::UnknownTopicOrPartition
            | ProtocolError::KafkaStorageError
            | ProtocolError::FencedLeaderEpoch
            | ProtocolError::UnknownLeaderEpoch
    )
}

fn report_failure<C: Cluster>(ctx: &WorkerContext<C>, replies: Replies, error: DeliveryError) {
    ctx.metrics.record_failed(&error, replies.len() as u64);
    replies.reporter.failed(error);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MAX_IN_FLIGHT_IDEMPOTENT, ProducerConfig};

    fn in_flight_for(partitions: usize, config: &ProducerConfig) -> usize {
        let batch = BatchLimits {
            max_records: config.batch_max_records,
            max_bytes: config.batch_max_bytes,
            linger: config.linger,
            message_timeout: config.message_timeout,
        };
        let buffer = BufferUsage {
            max_records: config.buffer_max_records as u64,
            max_bytes: config.buffer_max_bytes,
            ..BufferUsage::default()
        };
        in_flight_under_pressure(&buffer, &batch, partitions, MAX_IN_FLIGHT_IDEMPOTENT)
    }

    #[test]
    fn pipelining_under_pressure_stops_where_the_buffer_cannot_fill_the_batches() {
        let defaults = ProducerConfig::default();
        // 100,000 records over 3 partitions: 3 full batches of 10,000 each, 2 in flight.
        assert_eq!(in_flight_for(3, &defaults), 2);
        assert_eq!(in_flight_for(1, &defaults), MAX_IN_FLIGHT_IDEMPOTENT);
        assert_eq!(in_flight_for(12, &defaults), 1);
        assert_eq!(in_flight_for(1000, &defaults), 1);
        // The byte cap binds too: a buffer of 3 MB holds 3 batches of 1 MB in all.
        let small_bytes = ProducerConfig {
            buffer_max_bytes: 3 * defaults.batch_max_bytes as u64,
            ..ProducerConfig::default()
        };
        assert_eq!(in_flight_for(1, &small_bytes), 2);
        assert_eq!(in_flight_for(3, &small_bytes), 1);
    }
}
