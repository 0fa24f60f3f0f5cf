//! What a `produce` run reports at the end, as text for people or one JSON object for
//! scripts. Filled by the produce loop from its own tallies and the producer's metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_producer::metrics::MetricsSnapshot;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub topic: String,
    /// Events the producer accepted.
    pub sent: u64,
    /// Events acknowledged by the broker (acks=all).
    pub delivered: u64,
    /// Events that got a failure report.
    pub failed: u64,
    /// Failures by reason (timed_out_queued, timed_out_in_flight, rejected, closed).
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Input lines that could not be used.
    pub invalid_lines: u64,
    /// True when the run stopped early (a signal, or the first bad line).
    pub interrupted: bool,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    /// Encoded record bytes (before compression) per second.
    pub mb_per_s: f64,
    pub batches: u64,
    pub mean_records_per_batch: f64,
    pub ack_latency_p50_ms: f64,
    pub ack_latency_p99_ms: f64,
}

impl Summary {
    pub fn new(
        topic: &str,
        metrics: &MetricsSnapshot,
        failed_by_reason: BTreeMap<String, u64>,
        invalid_lines: u64,
        interrupted: bool,
        elapsed: Duration,
    ) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let failed = failed_by_reason.values().sum();
        Self {
            topic: topic.to_string(),
            sent: metrics.accepted,
            delivered: metrics.delivered,
            failed,
            failed_by_reason,
            invalid_lines,
            interrupted,
            elapsed_s: round3(elapsed.as_secs_f64()),
            events_per_s: round3(metrics.delivered as f64 / secs),
            mb_per_s: round3(metrics.record_bytes_sent as f64 / secs / 1e6),
            batches: metrics.batches_sent,
            mean_records_per_batch: round3(metrics.mean_records_per_batch()),
            ack_latency_p50_ms: round3(metrics.ack_latency_p50.as_secs_f64() * 1e3),
            ack_latency_p99_ms: round3(metrics.ack_latency_p99.as_secs_f64() * 1e3),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a summary always serializes")
    }

    pub fn to_text(&self) -> String {
        let mut text = format!(
            "topic {}: {} events sent, {} delivered, {} failed",
            self.topic, self.sent, self.delivered, self.failed
        );
        for (reason, n) in &self.failed_by_reason {
            text.push_str(&format!("\n  failed {reason}: {n}"));
        }
        if self.invalid_lines > 0 {
            text.push_str(&format!("\n  invalid input lines: {}", self.invalid_lines));
        }
        if self.interrupted {
            text.push_str("\n  stopped early");
        }
        text.push_str(&format!(
            "\n{:.3} s, {:.0} events/s, {:.2} MB/s of encoded records\n{} batches, {:.1} records per batch\nack latency p50 {:.1} ms, p99 {:.1} ms",
            self.elapsed_s,
            self.events_per_s,
            self.mb_per_s,
            self.batches,
            self.mean_records_per_batch,
            self.ack_latency_p50_ms,
            self.ack_latency_p99_ms
        ));
        text
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
