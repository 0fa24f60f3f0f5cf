//! Gathers one partition's records into batches: a batch closes at `batch_max_records`,
//! at `batch_max_bytes`, or when it has lingered `linger`; a batch whose first record
//! is older than `message_timeout` expires whole.
//! Fed by the partition worker with accepted records, cut into batches by the inbox
//! (which applies the caps as records are accepted, so each knows its batch); hands
//! closed batches back to the worker.
//!
//! Each record is framed into the open batch as it arrives (`record_batch`), so its own
//! allocations are freed at once, and a batch is compressed when it closes, so batches
//! waiting for their turn hold only compressed bytes.
//!
//! Pure data and computation on instants passed in: no I/O, no clock. Its rules (the
//! caps, linger, expiry) are checked exactly through the producer on a paused clock in
//! `tests/engine_timing.rs`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::batch_report::{BatchReport, Reporter};
use crate::config::CompressionCodec;
use crate::record::EncodedEvent;
use crate::record_batch::{BatchBuilder, EncodedBatch};

/// One accepted event on its way to the broker.
#[derive(Debug)]
pub(crate) struct Pending {
    pub record: EncodedEvent,
    /// What the record counts against the buffer and the batch byte cap.
    pub bytes: usize,
    /// When `send` accepted it: the message timeout and the ack latency start here.
    pub accepted_at: Instant,
}

/// Who is waiting for a batch's records (one report for all), and since when each
/// record waits, in record order.
#[derive(Debug)]
pub(crate) struct Replies {
    pub accepted_at: Vec<Instant>,
    pub reporter: Reporter,
}

impl Replies {
    pub fn len(&self) -> usize {
        self.accepted_at.len()
    }
}

/// A closed batch, waiting to be sent.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Order of closing within the partition; flush waits on it.
    pub seq: u64,
    /// The records in wire form, or why they could not be compressed.
    pub encoded: Result<EncodedBatch, String>,
    pub replies: Replies,
    pub bytes: usize,
    /// Acceptance time of the first record: linger and expiry count from here.
    pub first_accepted_at: Instant,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.replies.len()
    }
}

/// The batch records are being added to; its records are in the accumulator's builder.
#[derive(Debug)]
struct OpenBatch {
    replies: Replies,
    bytes: usize,
    first_accepted_at: Instant,
}

/// The limits a batch obeys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    pub max_records: usize,
    pub max_bytes: usize,
    pub linger: Duration,
    pub message_timeout: Duration,
}

/// Open batch plus the closed ones waiting to be sent, oldest first.
#[derive(Debug)]
pub(crate) struct Accumulator {
    limits: BatchLimits,
    open: Option<OpenBatch>,
    /// The open batch's records, framed.
    builder: BatchBuilder,
    codec: CompressionCodec,
    ready: VecDeque<Batch>,
    next_seq: u64,
    /// The report of the batch the next record starts.
    starting: Option<Reporter>,
}

impl Accumulator {
    pub fn new(limits: BatchLimits, codec: CompressionCodec) -> Self {
        Self {
            limits,
            open: None,
            builder: BatchBuilder::new(),
            codec,
            ready: VecDeque::new(),
            next_seq: 0,
            starting: None,
        }
    }

    /// The inbox started a batch (the one before it is full, or sealed): it is closed,
    /// and the next record opens this one.
    pub fn start(&mut self, reporter: Reporter) {
        self.close_open();
        debug_assert!(self.starting.is_none(), "every batch starts with a record");
        self.starting = Some(reporter);
    }

    /// Adds a record to the open batch, closing it after if it reached the record cap
    /// (where the inbox ended it too).
    pub fn push(&mut self, pending: Pending) {
        if let Some(reporter) = self.starting.take() {
            // `start` closed the batch before it.
            self.open = Some(OpenBatch {
                replies: Replies {
                    accepted_at: Vec::with_capacity(self.limits.max_records.min(1024)),
                    reporter,
                },
                bytes: 0,
                first_accepted_at: pending.accepted_at,
            });
        }
        let open = self
            .open
            .as_mut()
            .expect("the inbox starts a batch before its first record");
        open.bytes += pending.bytes;
        self.builder.push(&pending.record);
        open.replies.accepted_at.push(pending.accepted_at);
        if open.replies.len() >= self.limits.max_records {
            self.close_open();
        }
    }

    /// The report of the open batch, for the inbox to seal it.
    pub fn open_report(&self) -> Option<&Arc<BatchReport>> {
        self.open.as_ref().map(|b| b.replies.reporter.report())
    }

    /// Closes the open batch (if any), compressing it, so it is sent next, ignoring
    /// linger.
    pub fn close_open(&mut self) {
        if let Some(open) = self.open.take() {
            let codec = self.codec;
            let encoded = self
                .builder
                .finish(codec)
                .map_err(|e| format!("cannot compress the batch with {codec}: {e}"));
            self.ready.push_back(Batch {
                seq: self.next_seq,
                encoded,
                replies: open.replies,
                bytes: open.bytes,
                first_accepted_at: open.first_accepted_at,
            });
            self.next_seq += 1;
        }
    }

    /// The oldest closed batch, to be sent now.
    pub fn take_ready(&mut self) -> Option<Batch> {
        self.ready.pop_front()
    }

    /// When the open batch should close for lingering, if there is one.
    pub fn linger_deadline(&self) -> Option<Instant> {
        self.open
            .as_ref()
            .map(|b| b.first_accepted_at + self.limits.linger)
    }

    /// How many more records close the open batch, and how many more bytes it takes
    /// (one byte over closes it), if there is one.
    pub fn open_room(&self) -> Option<(usize, usize)> {
        self.open.as_ref().map(|b| {
            (
                self.limits
                    .max_records
                    .saturating_sub(b.replies.len())
                    .max(1),
                self.limits.max_bytes.saturating_sub(b.bytes),
            )
        })
    }

    /// The earliest moment a queued batch expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.ready
            .front()
            .map(|b| b.first_accepted_at)
            .or(self.open.as_ref().map(|b| b.first_accepted_at))
            .map(|at| at + self.limits.message_timeout)
    }

    /// Removes every closed batch whose first record has outlived the message timeout
    /// at `now`; the caller fails their records as never sent. (An open batch that
    /// expires is sealed and closed by the worker first: `open_expired`.)
    pub fn take_expired(&mut self, now: Instant) -> Vec<Batch> {
        let timeout = self.limits.message_timeout;
        let mut expired = Vec::new();
        while self
            .ready
            .front()
            .is_some_and(|b| b.first_accepted_at + timeout <= now)
        {
            expired.extend(self.ready.pop_front());
        }
        expired
    }

    /// The open batch's first record has outlived the message timeout at `now`.
    pub fn open_expired(&self, now: Instant) -> bool {
        self.open
            .as_ref()
            .is_some_and(|b| b.first_accepted_at + self.limits.message_timeout <= now)
    }

    /// Closes the open batch if it is the one of `report`.
    pub fn close_open_of(&mut self, report: &Arc<BatchReport>) {
        if self
            .open_report()
            .is_some_and(|open| Arc::ptr_eq(open, report))
        {
            self.close_open();
        }
    }

    /// Sequence number of the newest closed batch, if any batch was ever closed.
    pub fn last_closed_seq(&self) -> Option<u64> {
        self.next_seq.checked_sub(1)
    }

    /// Sequence number of the oldest batch still queued here.
    pub fn oldest_queued_seq(&self) -> Option<u64> {
        self.ready.front().map(|b| b.seq)
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_none() && self.ready.is_empty() && self.starting.is_none()
    }
}
