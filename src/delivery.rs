//! The one report every accepted event gets: delivered at (partition, offset), or failed
//! with a reason that says whether the event may have been written.
//! Produced by the partition worker (one `BatchReport` per batch); consumed by whoever
//! awaits `send`'s future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::batch_report::BatchReport;

/// Where the broker stored an acknowledged event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// Why an accepted event was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// The message timeout passed while the event was still queued: it was never sent,
    /// so it is certainly not in the topic.
    TimedOutQueued { partition: i32 },
    /// The message timeout passed while its batch was in flight (sent, possibly
    /// retried): the broker may or may not have written it.
    TimedOutInFlight { partition: i32 },
    /// The broker rejected the batch with an error that retrying cannot fix (for example
    /// the record is too large), or refused it each time it was sent until the message
    /// timeout passed (for example too few in-sync replicas, or the topic is gone): not
    /// written.
    Rejected { partition: i32, reason: String },
    /// The producer was closed before the event could be sent: not written.
    Closed,
    /// The producer's runtime stopped before the report was made (for example the
    /// process is shutting down without `close`): it may have been written.
    Abandoned,
}

impl DeliveryError {
    /// True when the event may be in the topic despite the failure.
    pub fn may_have_been_written(&self) -> bool {
        matches!(self, Self::TimedOutInFlight { .. } | Self::Abandoned)
    }

    /// A short stable name of the failure, for counters and summaries.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TimedOutQueued { .. } => "timed_out_queued",
            Self::TimedOutInFlight { .. } => "timed_out_in_flight",
            Self::Rejected { .. } => "rejected",
            Self::Closed => "closed",
            Self::Abandoned => "abandoned",
        }
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOutQueued { partition } => write!(
                f,
                "message timed out while queued for partition {partition}; it was not sent, so it is not in the topic"
            ),
            Self::TimedOutInFlight { partition } => write!(
                f,
                "message timed out waiting for the broker's acknowledgement on partition {partition}; it may have been written"
            ),
            Self::Rejected { partition, reason } => write!(
                f,
                "broker rejected the batch for partition {partition}: {reason}; it was not written"
            ),
            Self::Closed => write!(
                f,
                "producer closed before the message was sent; it was not written"
            ),
            Self::Abandoned => write!(
                f,
                "producer stopped before the broker answered; it may have been written"
            ),
        }
    }
}

impl std::error::Error for DeliveryError {}

/// The outcome of one event.
pub type DeliveryResult = Result<Delivered, DeliveryError>;

/// Resolves to the event's report. Dropping it does not cancel the send: the event is
/// still delivered and counted in the metrics.
#[derive(Debug)]
pub struct DeliveryFuture {
    report: Arc<BatchReport>,
    /// The event's place in its batch.
    index: usize,
    /// Polled before: its task may be queued on the report already.
    registered: bool,
}

impl DeliveryFuture {
    pub(crate) fn new(report: Arc<BatchReport>, index: usize) -> Self {
        Self {
            report,
            index,
            registered: false,
        }
    }
}

impl Future for DeliveryFuture {
    type Output = DeliveryResult;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DeliveryResult> {
        let this = &mut *self;
        this.report
            .poll_record(this.index, &mut this.registered, cx)
    }
}
