//! Counters a caller can read while the producer runs: accepted, delivered, failed by
//! reason, batches, bytes, and the ack latency distribution.
//! Updated by `Producer::send` and the partition workers; read through `Producer::metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::delivery::DeliveryError;

/// Sub-buckets per power of two of the latency histogram: 8 keeps any quantile within
/// 12.5 % of the true value, in 8 * 40 counters.
const SUB_BUCKETS: usize = 8;
const POWERS: usize = 40;

/// Live counters, shared by the producer handle and its workers.
#[derive(Debug)]
pub struct Metrics {
    accepted: AtomicU64,
    delivered: AtomicU64,
    failed_timed_out_queued: AtomicU64,
    failed_timed_out_in_flight: AtomicU64,
    failed_rejected: AtomicU64,
    failed_closed: AtomicU64,
    batches_sent: AtomicU64,
    records_sent: AtomicU64,
    record_bytes_sent: AtomicU64,
    retries: AtomicU64,
    epoch_bumps: AtomicU64,
    metadata_refreshes: AtomicU64,
    /// Ack latency (acceptance to acknowledgement) in microseconds, log-linear buckets.
    latency_us: Vec<AtomicU64>,
}

/// A consistent-enough copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    pub accepted: u64,
    pub delivered: u64,
    pub failed_timed_out_queued: u64,
    pub failed_timed_out_in_flight: u64,
    pub failed_rejected: u64,
    pub failed_closed: u64,
    /// Record batches sent (a produce request carries one per partition); retries are
    /// not counted again.
    pub batches_sent: u64,
    /// Records in those batches.
    pub records_sent: u64,
    /// Encoded record bytes in those batches, before compression.
    pub record_bytes_sent: u64,
    /// Times a partition sent its unfinished batches again after a failure.
    pub retries: u64,
    /// Producer epoch bumps (idempotence): a partition's sequence had to start again.
    pub epoch_bumps: u64,
    /// Metadata requests made after start (leader moves, periodic refresh).
    pub metadata_refreshes: u64,
    pub ack_latency_p50: Duration,
    pub ack_latency_p99: Duration,
    pub ack_latency_max: Duration,
}

impl MetricsSnapshot {
    pub fn failed(&self) -> u64 {
        self.failed_timed_out_queued
            + self.failed_timed_out_in_flight
            + self.failed_rejected
            + self.failed_closed
    }

    /// Events accepted whose report has not been made yet.
    pub fn in_flight(&self) -> u64 {
        self.accepted - self.delivered - self.failed()
    }

    pub fn mean_records_per_batch(&self) -> f64 {
        if self.batches_sent == 0 {
            0.0
        } else {
            self.records_sent as f64 / self.batches_sent as f64
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            accepted: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed_timed_out_queued: AtomicU64::new(0),
            failed_timed_out_in_flight: AtomicU64::new(0),
            failed_rejected: AtomicU64::new(0),
            failed_closed: AtomicU64::new(0),
            batches_sent: AtomicU64::new(0),
            records_sent: AtomicU64::new(0),
            record_bytes_sent: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            epoch_bumps: AtomicU64::new(0),
            metadata_refreshes: AtomicU64::new(0),
            latency_us: (0..SUB_BUCKETS * POWERS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl Metrics {
    pub(crate) fn record_accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_batch_sent(&self, records: usize, bytes: usize) {
        self.batches_sent.fetch_add(1, Relaxed);
        self.records_sent.fetch_add(records as u64, Relaxed);
        self.record_bytes_sent.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn record_retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_epoch_bump(&self) {
        self.epoch_bumps.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_metadata_refresh(&self) {
        self.metadata_refreshes.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_delivered(&self, count: u64) {
        self.delivered.fetch_add(count, Relaxed);
    }

    pub(crate) fn record_latency(&self, latency: Duration) {
        let us = latency.as_micros().min(u64::MAX as u128) as u64;
        self.latency_us[bucket_of(us)].fetch_add(1, Relaxed);
    }

    pub(crate) fn record_failed(&self, error: &DeliveryError, count: u64) {
        let counter = match error {
            DeliveryError::TimedOutQueued { .. } => &self.failed_timed_out_queued,
            DeliveryError::TimedOutInFlight { .. } | DeliveryError::Abandoned => {
                &self.failed_timed_out_in_flight
            }
            DeliveryError::Rejected { .. } => &self.failed_rejected,
            DeliveryError::Closed => &self.failed_closed,
        };
        counter.fetch_add(count, Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let counts: Vec<u64> = self.latency_us.iter().map(|c| c.load(Relaxed)).collect();
        MetricsSnapshot {
            // Reports are read before acceptances so `in_flight` never underflows.
            delivered: self.delivered.load(Relaxed),
            failed_timed_out_queued: self.failed_timed_out_queued.load(Relaxed),
            failed_timed_out_in_flight: self.failed_timed_out_in_flight.load(Relaxed),
            failed_rejected: self.failed_rejected.load(Relaxed),
            failed_closed: self.failed_closed.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            batches_sent: self.batches_sent.load(Relaxed),
            records_sent: self.records_sent.load(Relaxed),
            record_bytes_sent: self.record_bytes_sent.load(Relaxed),
            retries: self.retries.load(Relaxed),
            epoch_bumps: self.epoch_bumps.load(Relaxed),
            metadata_refreshes: self.metadata_refreshes.load(Relaxed),
            ack_latency_p50: quantile(&counts, 0.50),
            ack_latency_p99: quantile(&counts, 0.99),
            ack_latency_max: quantile(&counts, 1.0),
        }
    }
}

/// Log-linear bucket: values below 8 us get their own bucket, then 8 per power of two.
fn bucket_of(us: u64) -> usize {
    if us < SUB_BUCKETS as u64 {
        return us as usize;
    }
    let power = 63 - us.leading_zeros() as usize; // >= 3
    let sub = ((us >> (power - 3)) & (SUB_BUCKETS as u64 - 1)) as usize;
    ((power - 2) * SUB_BUCKETS + sub).min(SUB_BUCKETS * POWERS - 1)
}

/// The upper edge of a bucket, in microseconds.
fn bucket_upper_us(bucket: usize) -> u64 {
    if bucket < SUB_BUCKETS {
        return bucket as u64;
    }
    let power = bucket / SUB_BUCKETS + 2;
    let sub = (bucket % SUB_BUCKETS) as u64;
    ((SUB_BUCKETS as u64 + sub + 1) << (power - 3)) - 1
}

fn quantile(counts: &[u64], q: f64) -> Duration {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Duration::ZERO;
    }
    let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (bucket, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Duration::from_micros(bucket_upper_us(bucket));
        }
    }
    Duration::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_a_bucket_whose_upper_edge_is_within_one_eighth() {
        for us in [
            0u64, 1, 7, 8, 9, 15, 16, 100, 999, 1_000, 4_567, 1_000_000, 5_000_000,
        ] {
            let upper = bucket_upper_us(bucket_of(us));
            assert!(upper >= us, "{us} -> upper {upper}");
            assert!(
                upper as f64 <= us as f64 * 1.125 + 1.0,
                "{us} -> upper {upper}"
            );
        }
    }

    #[test]
    fn quantiles_come_from_the_recorded_latencies() {
        let m = Metrics::default();
        for ms in 1..=100u64 {
            m.record_latency(Duration::from_millis(ms));
        }
        let s = m.snapshot();
        let p50 = s.ack_latency_p50.as_secs_f64() * 1000.0;
        let p99 = s.ack_latency_p99.as_secs_f64() * 1000.0;
        assert!((50.0..=56.3).contains(&p50), "p50 {p50} ms");
        assert!((99.0..=111.4).contains(&p99), "p99 {p99} ms");
    }
}
