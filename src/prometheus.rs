//! The producer's counters in the Prometheus text format (version 0.0.4), encoded by
//! prometheus-client from one snapshot at scrape time: recording stays the plain
//! atomics of `metrics.rs`, so a scrape costs the hot path nothing.
//! Read by `Producer::prometheus_text`; the CLI serves it on `--metrics-addr`.
//!
//! Every name starts with `kafka_producer_`; counters end in `_total` (added by the
//! encoder), durations are in `_seconds`, sizes in `_bytes`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::buffer::Buffer;
use crate::metrics::{ConnectionState, Metrics};

/// The `Content-Type` of what `encode` writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Everything a scrape reads.
#[derive(Debug)]
struct Exposition {
    metrics: Arc<Metrics>,
    buffer: Arc<Buffer>,
}

pub(crate) fn encode(metrics: Arc<Metrics>, buffer: Arc<Buffer>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition { metrics, buffer }));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(metric)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.metrics.snapshot();
        let e = &mut encoder;
        counter(
            e,
            "kafka_producer_events_accepted",
            "Events accepted by send (each gets exactly one delivery report).",
            s.accepted,
        )?;
        counter(
            e,
            "kafka_producer_events_delivered",
            "Events acknowledged by the broker (acks=all).",
            s.delivered,
        )?;
        let mut failed = e.encode_descriptor(
            "kafka_producer_events_failed",
            "Events reported as failed, by reason.",
            None,
            MetricType::Counter,
        )?;
        for (reason, value) in [
            ("timed_out_queued", s.failed_timed_out_queued),
            ("timed_out_in_flight", s.failed_timed_out_in_flight),
            ("rejected", s.failed_rejected),
            ("closed", s.failed_closed),
        ] {
            ConstCounter::new(value).encode(failed.encode_family(&[("reason", reason)])?)?;
        }

        let usage = self.buffer.usage();
        gauge(
            e,
            "kafka_producer_buffer_used_bytes",
            "Encoded bytes of accepted events not yet reported.",
            usage.used_bytes as f64,
        )?;
        gauge(
            e,
            "kafka_producer_buffer_limit_bytes",
            "The buffer's byte limit (buffer_max_bytes).",
            usage.max_bytes as f64,
        )?;
        gauge(
            e,
            "kafka_producer_buffer_used_events",
            "Accepted events not yet reported.",
            usage.used_records as f64,
        )?;
        gauge(
            e,
            "kafka_producer_buffer_limit_events",
            "The buffer's event limit (buffer_max_records).",
            usage.max_records as f64,
        )?;
        gauge(
            e,
            "kafka_producer_buffer_waiting_sends",
            "Sends waiting for buffer room (backpressure).",
            usage.waiting_sends as f64,
        )?;

        counter(
            e,
            "kafka_producer_batches_sent",
            "Record batches sent (a retry is not counted again).",
            s.batches_sent,
        )?;
        let records = e.encode_descriptor(
            "kafka_producer_batch_records",
            "Records per batch sent.",
            None,
            MetricType::Histogram,
        )?;
        self.metrics.batch_records.encode(records)?;
        let bytes = e.encode_descriptor(
            "kafka_producer_batch_bytes",
            "Encoded record bytes per batch sent, before compression.",
            None,
            MetricType::Histogram,
        )?;
        self.metrics.batch_bytes.encode(bytes)?;
        counter(
            e,
            "kafka_producer_batch_compressed_bytes",
            "Bytes of the batches sent, as sent (compressed).",
            s.compressed_bytes_sent,
        )?;
        let ratio = if s.compressed_bytes_sent == 0 {
            0.0
        } else {
            s.record_bytes_sent as f64 / s.compressed_bytes_sent as f64
        };
        gauge(
            e,
            "kafka_producer_compression_ratio",
            "Record bytes before compression per byte sent, over the run (0 before the first batch).",
            ratio,
        )?;

        let mut latency = e.encode_descriptor(
            "kafka_producer_delivery_latency_seconds",
            "Acceptance to acknowledgement, per delivered event.",
            None,
            MetricType::Histogram,
        )?;
        latency.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            s.ack_latency_sum.as_secs_f64(),
            s.delivered,
            &self.metrics.latency_buckets(),
            None,
        )?;

        counter(
            e,
            "kafka_producer_retries",
            "Times a partition sent its unfinished batches again after a failure.",
            s.retries,
        )?;
        counter(
            e,
            "kafka_producer_metadata_refreshes",
            "Metadata requests after start (leader moves, periodic refresh).",
            s.metadata_refreshes,
        )?;
        counter(
            e,
            "kafka_producer_epoch_bumps",
            "Producer epoch bumps (idempotence): a partition's sequence started again.",
            s.epoch_bumps,
        )?;
        counter(
            e,
            "kafka_producer_duplicate_sequence_answers",
            "Batches the broker had stored already (a retry after a lost answer); delivered, stored once.",
            s.duplicate_answers,
        )?;

        let brokers = self.metrics.brokers();
        let label = |broker: i32| [("broker", broker.to_string())];
        let mut duration = e.encode_descriptor(
            "kafka_producer_produce_request_duration_seconds",
            "Produce request round trip (written to answered), per broker.",
            None,
            MetricType::Histogram,
        )?;
        for (broker, stats) in &brokers {
            stats
                .request_seconds
                .encode(duration.encode_family(&label(*broker))?)?;
        }
        let mut in_flight = e.encode_descriptor(
            "kafka_producer_requests_in_flight",
            "Produce requests written and not yet answered, per broker.",
            None,
            MetricType::Gauge,
        )?;
        for (broker, stats) in &brokers {
            ConstGauge::new(stats.in_flight() as f64)
                .encode(in_flight.encode_family(&label(*broker))?)?;
        }
        let mut failed_requests = e.encode_descriptor(
            "kafka_producer_produce_requests_failed",
            "Produce requests that got no answer (connection lost, request timeout), per broker.",
            None,
            MetricType::Counter,
        )?;
        for (broker, stats) in &brokers {
            ConstCounter::new(stats.requests_failed())
                .encode(failed_requests.encode_family(&label(*broker))?)?;
        }
        let mut connected = e.encode_descriptor(
            "kafka_producer_broker_connected",
            "1 while the producer holds a working connection to the broker, else 0.",
            None,
            MetricType::Gauge,
        )?;
        for (broker, stats) in &brokers {
            let up = stats.state() == ConnectionState::Connected;
            ConstGauge::new(if up { 1.0 } else { 0.0 })
                .encode(connected.encode_family(&label(*broker))?)?;
        }
        Ok(())
    }
}
