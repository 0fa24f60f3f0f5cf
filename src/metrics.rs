//! Counters a caller can read while the producer runs: accepted, delivered, failed by
//! reason, batches, bytes, the ack latency distribution, and per broker its connection
//! and requests.
//! Updated by `Producer::send`, the partition workers and the broker senders; read
//! through `Producer::metrics` and the Prometheus exposition (`prometheus.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;

use crate::delivery::DeliveryError;

/// Bucket edges of records per batch (a batch holds 1 to 10,000).
const BATCH_RECORDS_BUCKETS: [f64; 9] = [
    1.0, 10.0, 50.0, 100.0, 500.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0,
];
/// Bucket edges of a batch's encoded record bytes, before compression (×4 steps, 1 KiB
/// to 16 MiB).
const BATCH_BYTES_BUCKETS: [f64; 8] = [
    1_024.0,
    4_096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
];
/// Bucket edges of a produce request's round trip, in seconds (written to answered).
const REQUEST_SECONDS_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Sub-buckets per power of two of the latency histogram: 8 keeps any quantile within
/// 12.5 % of the true value, in 8 * 40 counters.
const SUB_BUCKETS: usize = 8;
const POWERS: usize = 40;
/// The ack latency histogram's exposed edges: 128 us to 2^27 us (134 s, above the
/// longest message timeout anyone sets), at each power of two.
const LATENCY_FIRST_EDGE_US: u64 = 1 << 7;
const LATENCY_LAST_EDGE_US: u64 = 1 << 27;

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
    compressed_bytes_sent: AtomicU64,
    duplicate_answers: AtomicU64,
    /// Ack latency (acceptance to acknowledgement) in microseconds, log-linear buckets.
    /// Hand-written atomics, not a `Histogram` (which locks): it is written once per event.
    latency_us: Vec<AtomicU64>,
    latency_sum_us: AtomicU64,
    /// Once per batch, so a histogram's lock costs nothing per event.
    pub(crate) batch_records: Histogram,
    pub(crate) batch_bytes: Histogram,
    /// Each broker's sender, as it started.
    brokers: Mutex<BTreeMap<i32, Arc<BrokerStats>>>,
}

/// What one broker's sender reports: its connection and its requests.
#[derive(Debug)]
pub(crate) struct BrokerStats {
    state: AtomicU8,
    in_flight: AtomicU64,
    /// Written to answered, of requests that were answered.
    pub(crate) request_seconds: Histogram,
    requests_failed: AtomicU64,
}

/// A broker sender's connection, as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not connected yet, or stopped (it leads nothing now).
    Idle = 0,
    Connected = 1,
    /// The last attempt to connect failed, or the connection broke.
    Unreachable = 2,
}

impl BrokerStats {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(ConnectionState::Idle as u8),
            in_flight: AtomicU64::new(0),
            request_seconds: Histogram::new(REQUEST_SECONDS_BUCKETS),
            requests_failed: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_state(&self, state: ConnectionState) {
        self.state.store(state as u8, Relaxed);
    }

    pub(crate) fn state(&self) -> ConnectionState {
        match self.state.load(Relaxed) {
            1 => ConnectionState::Connected,
            2 => ConnectionState::Unreachable,
            _ => ConnectionState::Idle,
        }
    }

    pub(crate) fn set_in_flight(&self, requests: usize) {
        self.in_flight.store(requests as u64, Relaxed);
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    pub(crate) fn record_request_failed(&self) {
        self.requests_failed.fetch_add(1, Relaxed);
    }

    pub(crate) fn requests_failed(&self) -> u64 {
        self.requests_failed.load(Relaxed)
    }
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
    /// Bytes of those batches as sent, compressed.
    pub compressed_bytes_sent: u64,
    /// Batches the broker answered as duplicates of ones it had stored (idempotence: a
    /// retry of a batch whose first answer was lost); they count as delivered.
    pub duplicate_answers: u64,
    /// Sum of every delivered event's ack latency.
    pub ack_latency_sum: Duration,
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
            compressed_bytes_sent: AtomicU64::new(0),
            duplicate_answers: AtomicU64::new(0),
            latency_us: (0..SUB_BUCKETS * POWERS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency_sum_us: AtomicU64::new(0),
            batch_records: Histogram::new(BATCH_RECORDS_BUCKETS),
            batch_bytes: Histogram::new(BATCH_BYTES_BUCKETS),
            brokers: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Metrics {
    pub(crate) fn record_accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_batch_sent(&self, records: usize, bytes: usize, compressed: usize) {
        self.batches_sent.fetch_add(1, Relaxed);
        self.records_sent.fetch_add(records as u64, Relaxed);
        self.record_bytes_sent.fetch_add(bytes as u64, Relaxed);
        self.compressed_bytes_sent
            .fetch_add(compressed as u64, Relaxed);
        self.batch_records.observe(records as f64);
        self.batch_bytes.observe(bytes as f64);
    }

    pub(crate) fn record_duplicate_answer(&self) {
        self.duplicate_answers.fetch_add(1, Relaxed);
    }

    /// The stats of a broker's sender, made the first time it starts.
    pub(crate) fn broker(&self, broker: i32) -> Arc<BrokerStats> {
        let mut brokers = self.brokers.lock().expect("not poisoned");
        Arc::clone(
            brokers
                .entry(broker)
                .or_insert_with(|| Arc::new(BrokerStats::new())),
        )
    }

    /// Every broker that had a sender, by id.
    pub(crate) fn brokers(&self) -> Vec<(i32, Arc<BrokerStats>)> {
        let brokers = self.brokers.lock().expect("not poisoned");
        brokers.iter().map(|(b, s)| (*b, Arc::clone(s))).collect()
    }

    /// The ack latency histogram at the power-of-two microsecond edges where its
    /// log-linear buckets start (exact there): `(upper edge in seconds, events in the
    /// range below it and above the previous edge)`, as prometheus-client encodes one.
    pub(crate) fn latency_buckets(&self) -> Vec<(f64, u64)> {
        let mut in_range = 0;
        let mut edges = Vec::new();
        for (bucket, counter) in self.latency_us.iter().enumerate() {
            in_range += counter.load(Relaxed);
            let upper = bucket_upper_us(bucket);
            // The last bucket of each power of two ends just below the next power.
            if (LATENCY_FIRST_EDGE_US..=LATENCY_LAST_EDGE_US).contains(&(upper + 1))
                && (upper + 1).is_power_of_two()
            {
                edges.push(((upper + 1) as f64 / 1e6, in_range));
                in_range = 0;
            }
        }
        // Events above the last edge are in the +Inf bucket the encoder adds.
        edges
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

    /// One delivered event's ack latency; returns it in microseconds for the sum,
    /// which the caller adds once per batch (`record_latency_sum`).
    pub(crate) fn record_latency(&self, latency: Duration) -> u64 {
        let us = latency.as_micros().min(u64::MAX as u128) as u64;
        self.latency_us[bucket_of(us)].fetch_add(1, Relaxed);
        us
    }

    pub(crate) fn record_latency_sum(&self, us: u64) {
        self.latency_sum_us.fetch_add(us, Relaxed);
    }

    pub(crate) fn record_failed(&self, error: &DeliveryError, count: u64) {
        let counter = match error {
            DeliveryError::TimedOutQueued { .. } => &self.failed_timed_out_queued,
            DeliveryError::TimedOutInFlight { .. } => &self.failed_timed_out_in_flight,
            DeliveryError::Rejected { .. } => &self.failed_rejected,
            DeliveryError::Closed => &self.failed_closed,
            // Only a report's receiver makes it, when the worker dropped the reply unsent;
            // no worker reports it.
            DeliveryError::Abandoned => return,
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
            compressed_bytes_sent: self.compressed_bytes_sent.load(Relaxed),
            duplicate_answers: self.duplicate_answers.load(Relaxed),
            ack_latency_sum: Duration::from_micros(self.latency_sum_us.load(Relaxed)),
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
    fn latency_buckets_are_cumulative_at_powers_of_two() {
        let m = Metrics::default();
        for us in [100u64, 127, 128, 200, 1_000, 1_000_000] {
            m.record_latency(Duration::from_micros(us));
        }
        let buckets = m.latency_buckets();
        let count_below = |seconds: f64| {
            let below = buckets
                .iter()
                .take_while(|(edge, _)| *edge <= seconds + 1e-12);
            below.map(|(_, n)| n).sum::<u64>()
        };
        assert_eq!(count_below(128e-6), 2, "100 and 127 us are below 128 us");
        assert_eq!(count_below(256e-6), 4);
        assert_eq!(count_below(1_024e-6), 5);
        assert_eq!(count_below(1_048_576e-6), 6);
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 6);
        m.record_latency(Duration::from_secs(1_000));
        let above: u64 = m.latency_buckets().iter().map(|(_, n)| n).sum();
        assert_eq!(above, 6, "past the last edge: only in +Inf");
        assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0));
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
