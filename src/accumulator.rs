//! Gathers one partition's records into batches: a batch closes at `batch_max_records`,
//! at `batch_max_bytes`, or when it has lingered `linger`; a batch whose first record
//! is older than `message_timeout` expires whole.
//! Fed by the partition worker with accepted records; hands closed batches back to it.
//!
//! Pure data and arithmetic on instants passed in: no I/O, no clock, so every rule is
//! unit-tested exactly.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::delivery::DeliveryResult;
use crate::record::EncodedEvent;

/// One accepted event on its way to the broker.
#[derive(Debug)]
pub(crate) struct Pending {
    pub record: EncodedEvent,
    /// What the record counts against the buffer and the batch byte cap.
    pub bytes: usize,
    /// When `send` accepted it: the message timeout and the ack latency start here.
    pub accepted_at: Instant,
    pub reply: oneshot::Sender<DeliveryResult>,
}

/// A closed or open batch. Records and their reply handles are kept apart so the
/// records can be turned into the wire's `Vec<Record>` in one pass.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Order of closing within the partition; flush waits on it.
    pub seq: u64,
    pub records: Vec<EncodedEvent>,
    pub replies: Vec<(Instant, oneshot::Sender<DeliveryResult>)>,
    pub bytes: usize,
    /// Acceptance time of the first record: linger and expiry count from here.
    pub first_accepted_at: Instant,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.records.len()
    }
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
    open: Option<Batch>,
    ready: VecDeque<Batch>,
    next_seq: u64,
}

impl Accumulator {
    pub fn new(limits: BatchLimits) -> Self {
        Self {
            limits,
            open: None,
            ready: VecDeque::new(),
            next_seq: 0,
        }
    }

    /// Adds a record to the open batch, first closing it if the record would overflow
    /// its byte cap, and closing it after if it reached the record cap.
    pub fn push(&mut self, pending: Pending) {
        if let Some(open) = &self.open
            && open.bytes + pending.bytes > self.limits.max_bytes
        {
            self.close_open();
        }
        let open = self.open.get_or_insert_with(|| Batch {
            seq: 0,
            records: Vec::with_capacity(self.limits.max_records.min(1024)),
            replies: Vec::with_capacity(self.limits.max_records.min(1024)),
            bytes: 0,
            first_accepted_at: pending.accepted_at,
        });
        open.bytes += pending.bytes;
        open.records.push(pending.record);
        open.replies.push((pending.accepted_at, pending.reply));
        if open.len() >= self.limits.max_records {
            self.close_open();
        }
    }

    /// Closes the open batch (if any) so it is sent next, ignoring linger.
    pub fn close_open(&mut self) {
        if let Some(mut batch) = self.open.take() {
            batch.seq = self.next_seq;
            self.next_seq += 1;
            self.ready.push_back(batch);
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

    /// The earliest moment a queued batch expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.ready
            .front()
            .or(self.open.as_ref())
            .map(|b| b.first_accepted_at + self.limits.message_timeout)
    }

    /// Removes every queued batch whose first record has outlived the message timeout
    /// at `now`; the caller fails their records as never sent.
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
        if self.ready.is_empty()
            && self
                .open
                .as_ref()
                .is_some_and(|b| b.first_accepted_at + timeout <= now)
        {
            self.close_open();
            expired.extend(self.ready.pop_front());
        }
        expired
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
        self.open.is_none() && self.ready.is_empty()
    }
}
