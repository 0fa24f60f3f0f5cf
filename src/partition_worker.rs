//! One task per partition: accumulates the partition's records into batches, sends one
//! batch at a time through the sink, and makes every record's report.
//! Fed by `Producer::send` through an unbounded channel (the buffer bounds it); feeds
//! the `DeliveryFuture`s, the metrics, and gives buffer room back.
//!
//! ```text
//!  send() ──Command──▶ channel ──▶ Accumulator ──closed batch──▶ sink.produce ──▶ reports
//!                                   (linger, caps,               (one in flight,    (offsets or
//!                                    expiry)                      timeout_at)        errors)
//! ```
//!
//! One batch in flight per partition keeps records in order across retries: a later
//! batch is never sent before an earlier one has been answered or given up.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout_at};
use tracing::{debug, warn};

use crate::accumulator::{Accumulator, Batch, BatchLimits, Pending, Replies};
use crate::buffer::Buffer;
use crate::config::CompressionCodec;
use crate::delivery::{Delivered, DeliveryError};
use crate::metrics::Metrics;
use crate::sink::{PartitionSink, SinkError};

/// Most commands taken from the channel per wake-up, so timers and the in-flight
/// request are still looked at under a flood of records.
const MAX_COMMANDS_PER_WAKE: usize = 4096;

/// tokio's timers tick in whole milliseconds and fire on the tick after the deadline,
/// and the thread then has to wake: measured here, a 5 ms linger lasted ~7 ms. A batch
/// therefore closes once its linger deadline is within one tick, which brings the
/// linger users get to ~6 ms (and the p50 ack latency at 50,000 events/s down by
/// ~0.5 ms, `BENCHMARKS.md`).
const TIMER_TICK: std::time::Duration = std::time::Duration::from_millis(1);

/// What the producer handle asks of a partition worker.
#[derive(Debug)]
pub(crate) enum Command {
    Record(Pending),
    /// Send every open batch now and answer when all records queued before this
    /// command have their reports.
    Flush(oneshot::Sender<()>),
    /// Refuse further records, send everything queued, then stop.
    Close,
}

/// What the worker shares with the producer handle.
#[derive(Clone)]
pub(crate) struct WorkerContext {
    pub partition: i32,
    pub limits: BatchLimits,
    pub compression: CompressionCodec,
    pub buffer: Arc<Buffer>,
    pub metrics: Arc<Metrics>,
}

/// A send's outcome: the offsets, the sink's error, or None when the message timeout
/// passed first.
type SendOutcome = Option<Result<Vec<i64>, SinkError>>;

/// The batch on the wire and the outcome its future will give.
struct InFlight {
    seq: u64,
    replies: Replies,
    bytes: usize,
    outcome: std::pin::Pin<Box<dyn std::future::Future<Output = SendOutcome> + Send>>,
}

/// Runs until it is told to close (or every sender is gone) and all its records are
/// reported.
pub(crate) async fn run<S: PartitionSink>(
    ctx: WorkerContext,
    sink: Arc<S>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut acc = Accumulator::new(ctx.limits, ctx.compression);
    let mut in_flight: Option<InFlight> = None;
    let mut flush_waiters: Vec<(u64, oneshot::Sender<()>)> = Vec::new();
    let mut closing = false;

    loop {
        let now = Instant::now();
        for batch in acc.take_expired(now) {
            fail_batch(
                &ctx,
                batch,
                DeliveryError::TimedOutQueued {
                    partition: ctx.partition,
                },
            );
        }
        if in_flight.is_none() {
            if closing
                || acc
                    .linger_deadline()
                    .is_some_and(|at| at <= now + TIMER_TICK)
            {
                acc.close_open();
            }
            if let Some(batch) = acc.take_ready() {
                in_flight = Some(start_send(&ctx, &sink, batch));
            }
        }
        answer_flush_waiters(&mut flush_waiters, &acc, in_flight.as_ref());
        if closing && in_flight.is_none() && acc.is_empty() {
            break;
        }

        let linger_at = acc
            .linger_deadline()
            .filter(|_| in_flight.is_none())
            .map(|at| at.checked_sub(TIMER_TICK).unwrap_or(at));
        let expiry_at = acc.next_expiry();
        tokio::select! {
            biased;
            outcome = async { in_flight.as_mut().expect("guarded").outcome.as_mut().await }, if in_flight.is_some() => {
                let sent = in_flight.take().expect("guarded");
                if outcome.is_none() {
                    sink.abandon_connection();
                }
                finish_send(&ctx, sent, outcome);
            }
            command = commands.recv(), if !closing => {
                let mut next = command;
                let mut taken = 0;
                loop {
                    match next {
                        Some(Command::Record(pending)) => acc.push(pending),
                        Some(Command::Flush(done)) => {
                            acc.close_open();
                            let target = acc.last_closed_seq().unwrap_or(0);
                            flush_waiters.push((target, done));
                        }
                        Some(Command::Close) | None => {
                            closing = true;
                            // Records that raced the close are still in the channel:
                            // refuse new ones, then take what is there.
                            commands.close();
                        }
                    }
                    taken += 1;
                    if taken >= MAX_COMMANDS_PER_WAKE {
                        break;
                    }
                    match commands.try_recv() {
                        Ok(c) => next = Some(c),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => next = None,
                    }
                }
            }
            _ = sleep_until(linger_at.unwrap_or(now)), if linger_at.is_some() => {}
            _ = sleep_until(expiry_at.unwrap_or(now)), if expiry_at.is_some() => {}
        }
    }
    debug!(partition = ctx.partition, "partition worker stopped");
}

/// Puts a batch on the wire; its future ends with the offsets, the sink's error, or
/// `None` when the message timeout of its first record passed first.
fn start_send<S: PartitionSink>(ctx: &WorkerContext, sink: &Arc<S>, batch: Batch) -> InFlight {
    let Batch {
        seq,
        encoded,
        replies,
        bytes,
        first_accepted_at,
    } = batch;
    ctx.metrics.record_batch_sent(replies.len(), bytes);
    debug!(
        partition = ctx.partition,
        records = replies.len(),
        bytes,
        "sending batch"
    );
    let deadline = first_accepted_at + ctx.limits.message_timeout;
    let sink = Arc::clone(sink);
    let outcome = Box::pin(async move {
        match encoded {
            Ok(batch) => timeout_at(deadline, sink.produce(batch)).await.ok(),
            // Never reached the wire: refused here, as the broker would refuse it.
            Err(message) => Some(Err(SinkError {
                message,
                may_have_been_written: false,
            })),
        }
    });
    InFlight {
        seq,
        replies,
        bytes,
        outcome,
    }
}

/// Turns the outcome of a send into one report per record, then gives the room back.
fn finish_send(ctx: &WorkerContext, sent: InFlight, outcome: SendOutcome) {
    let partition = ctx.partition;
    let count = sent.replies.len();
    match outcome {
        Some(Ok(offsets)) if offsets.len() == count => {
            let now = Instant::now();
            for ((accepted_at, reply), offset) in sent.replies.into_iter().zip(offsets) {
                ctx.metrics.record_latency(now - accepted_at);
                // The caller may have dropped its future: the report still counts.
                let _ = reply.send(Ok(Delivered { partition, offset }));
            }
            ctx.metrics.record_delivered(count as u64);
        }
        Some(Ok(offsets)) => {
            let error = DeliveryError::Rejected {
                partition,
                reason: format!(
                    "broker returned {} offsets for {count} records",
                    offsets.len()
                ),
            };
            report_failure(ctx, sent.replies, error);
        }
        Some(Err(e)) => {
            warn!(partition, error = %e.message, "produce failed");
            let error = if e.may_have_been_written {
                DeliveryError::TimedOutInFlight { partition }
            } else {
                DeliveryError::Rejected {
                    partition,
                    reason: e.message,
                }
            };
            report_failure(ctx, sent.replies, error);
        }
        None => {
            warn!(
                partition,
                records = count,
                "message timeout passed while the batch was in flight"
            );
            report_failure(
                ctx,
                sent.replies,
                DeliveryError::TimedOutInFlight { partition },
            );
        }
    }
    ctx.buffer.release(count, sent.bytes);
}

fn fail_batch(ctx: &WorkerContext, batch: Batch, error: DeliveryError) {
    warn!(partition = ctx.partition, records = batch.len(), %error, "batch expired before it was sent");
    let (count, bytes) = (batch.len(), batch.bytes);
    report_failure(ctx, batch.replies, error);
    ctx.buffer.release(count, bytes);
}

fn report_failure(ctx: &WorkerContext, replies: Replies, error: DeliveryError) {
    ctx.metrics.record_failed(&error, replies.len() as u64);
    for (_, reply) in replies {
        let _ = reply.send(Err(error.clone()));
    }
}

/// Answers every flush whose batches have all been reported: those older than the
/// oldest batch still in flight or queued.
fn answer_flush_waiters(
    waiters: &mut Vec<(u64, oneshot::Sender<()>)>,
    acc: &Accumulator,
    in_flight: Option<&InFlight>,
) {
    if waiters.is_empty() {
        return;
    }
    let oldest_unfinished = in_flight.map(|f| f.seq).or(acc.oldest_queued_seq());
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
