//! Helpers shared by the integration tests: the real broker's address, a fresh topic
//! per test, Kafka's own log dump tool, and a real Prometheus server (`prometheus`).
//! Under `make test` (which sets KAFKA_PRODUCER_REQUIRE_BROKER=1) a missing broker or
//! Prometheus fails the test; plain `cargo test` without them skips such tests and says so.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use kafka_producer::config::ConnectionConfig;
use kafka_producer::{ProducerConfig, connect};
use rskafka::client::Client;

/// Milliseconds since the epoch as the chrono time rskafka's records carry.
pub fn timestamp_from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).expect("a timestamp in chrono's range")
}

/// The broker the tests talk to.
pub fn broker() -> String {
    std::env::var("KAFKA_BROKER").unwrap_or_else(|_| "localhost:9092".to_string())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where scripts/kafka.sh keeps its instances: `$KAFKA_ROOT`, as the script reads it.
pub fn kafka_root() -> PathBuf {
    std::env::var_os("KAFKA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".kafka"))
}

fn broker_required() -> bool {
    std::env::var("KAFKA_PRODUCER_REQUIRE_BROKER").is_ok_and(|v| v == "1")
}

/// A connected client, or None (with a loud message) when no broker answers and the
/// run does not require one.
pub async fn client_or_skip(test: &str) -> Option<Client> {
    let config = ConnectionConfig {
        brokers: vec![broker()],
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    match connect::connect(
        &config,
        kafka_producer::config::DEFAULT_REQUEST_TIMEOUT,
        Duration::from_secs(10),
    )
    .await
    {
        Ok(client) => Some(client),
        Err(e) if broker_required() => {
            panic!(
                "{test}: no Kafka broker at {} ({e}); run `make test`, which starts this checkout's own",
                broker()
            )
        }
        Err(e) => {
            eprintln!(
                "SKIPPED {test}: no Kafka broker at {} ({e}). Run `make kafka-up` or `make test` to run it.",
                broker()
            );
            None
        }
    }
}

/// A topic name no other test or run uses.
pub fn unique_topic(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test-{test}-{}-{nanos}", std::process::id())
}

/// Creates a fresh topic with `partitions` partitions and waits until it is served:
/// every partition's leader answers for it.
pub async fn create_topic(client: &Client, topic: &str, partitions: i32) {
    let created = connect::create_topic_if_missing(client, topic, partitions, 1)
        .await
        .expect("topic creation");
    assert!(created, "topic {topic} already existed");
    let served =
        connect::wait_until_served(client, topic, kafka_producer::config::TOPIC_READY_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("topic {topic} is not served: {e}"));
    assert_eq!(served, partitions as u32);
}

/// A producer config aimed at the test broker and topic.
pub fn config_for(topic: &str) -> ProducerConfig {
    let mut config = ProducerConfig {
        topic: topic.to_string(),
        ..Default::default()
    };
    config.connection.brokers = vec![broker()];
    config
}

/// A producer config whose retries wait longer than its message timeout: a refused
/// batch is sent once and is still waiting when its timeout passes, so its report shows
/// how the broker's refusal was classified, not the race of a retry on the wire.
pub fn one_attempt_config(topic: &str) -> ProducerConfig {
    ProducerConfig {
        message_timeout: Duration::from_secs(2),
        retry_backoff: Duration::from_secs(60),
        ..config_for(topic)
    }
}

/// Every report is "rejected by the broker, not written" and names the broker's `code`.
pub fn assert_all_rejected(reports: &[kafka_producer::DeliveryResult], code: &str, case: &str) {
    for (i, report) in reports.iter().enumerate() {
        match report {
            Err(e @ kafka_producer::DeliveryError::Rejected { reason, .. }) => {
                assert!(!e.may_have_been_written(), "{case}: event {i}: {e}");
                assert!(
                    reason.contains(code),
                    "{case}: event {i}: `{e}` does not name {code}"
                );
            }
            other => panic!("{case}: event {i}: expected rejected by {code}, got {other:?}"),
        }
    }
}

/// Sends `count` generated events, flushes, and returns their reports in send order.
pub async fn send_generated(
    producer: &kafka_producer::Producer,
    count: usize,
    seed: u64,
) -> Vec<kafka_producer::DeliveryResult> {
    let mut generator = kafka_producer::generator::Generator::new(seed, 1_000);
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let event = generator.next_event(1_700_000_000_000 + i as i64);
        pending.push(producer.send(&event).await.expect("accepted"));
    }
    producer.flush().await;
    let mut reports = Vec::with_capacity(count);
    for report in pending {
        reports.push(report.await);
    }
    reports
}

/// How many records `topic` holds and their distinct event ids, read back through
/// `client`; panics on a record that is no event.
pub async fn stored_event_ids(
    client: &Client,
    topic: &str,
) -> (usize, std::collections::HashSet<String>) {
    let stored = kafka_producer::reader::read_all(client, topic)
        .await
        .unwrap_or_else(|e| panic!("reading {topic} back: {e}"));
    let ids = stored
        .iter()
        .map(|r| r.decode().expect("a stored record is an event").event_id)
        .collect();
    (stored.len(), ids)
}

/// One record batch as Kafka's DumpLogSegments printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedBatch {
    pub count: u64,
    pub codec: String,
    /// -1 for a batch written without idempotence.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub last_sequence: i32,
}

/// The batches the broker stored for a partition, read from its log segments with
/// Kafka's own DumpLogSegments (via scripts/kafka.sh dump-log), of the instance
/// `$KAFKA_INSTANCE` names as scripts/kafka.sh reads it.
pub fn dump_batches(topic: &str, partition: i32) -> Vec<DumpedBatch> {
    let instance = std::env::var("KAFKA_INSTANCE").unwrap_or_else(|_| "default".to_string());
    dump_batches_of(&instance, topic, partition)
}

/// The same, for a broker instance of scripts/kafka.sh (a fault test's own broker).
pub fn dump_batches_of(instance: &str, topic: &str, partition: i32) -> Vec<DumpedBatch> {
    let out = Command::new(repo_root().join("scripts/kafka.sh"))
        .args(["dump-log", topic, &partition.to_string()])
        .env("KAFKA_INSTANCE", instance)
        .output()
        .expect("scripts/kafka.sh runs");
    assert!(
        out.status.success(),
        "dump-log failed: {}(the log segments are read from this checkout's broker, {}; \
         is the broker at {} that one? `make test` makes sure of it)",
        String::from_utf8_lossy(&out.stderr),
        kafka_root().display(),
        broker()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.starts_with("baseOffset:"))
        .map(|line| DumpedBatch {
            count: field(line, "count:").parse().expect("count is a number"),
            codec: field(line, "compresscodec:").to_string(),
            producer_id: field(line, "producerId:").parse().expect("producerId"),
            producer_epoch: field(line, "producerEpoch:")
                .parse()
                .expect("producerEpoch"),
            base_sequence: field(line, "baseSequence:").parse().expect("baseSequence"),
            last_sequence: field(line, "lastSequence:").parse().expect("lastSequence"),
        })
        .collect()
}

/// Checks what idempotence promises of one partition's stored batches: every batch
/// carries a producer id, and within each producer id and epoch the base sequences
/// follow on from the batch before (the first batch of an epoch starts at 0).
/// Returns the epochs seen, in log order.
pub fn assert_idempotent_batches(batches: &[DumpedBatch], context: &str) -> Vec<(i64, i16)> {
    let mut epochs: Vec<(i64, i16)> = Vec::new();
    let mut expected_next: Option<i32> = None;
    for (i, b) in batches.iter().enumerate() {
        assert!(
            b.producer_id >= 0,
            "{context}: batch {i} has no producer id: {b:?}"
        );
        let who = (b.producer_id, b.producer_epoch);
        if epochs.last() != Some(&who) {
            assert_eq!(
                b.base_sequence, 0,
                "{context}: batch {i} opens epoch {who:?} not at sequence 0: {b:?}"
            );
            epochs.push(who);
        } else {
            assert_eq!(
                Some(b.base_sequence),
                expected_next,
                "{context}: batch {i} does not follow on from the one before: {b:?}"
            );
        }
        assert_eq!(
            i64::from(b.last_sequence) - i64::from(b.base_sequence) + 1,
            b.count as i64,
            "{context}: batch {i} sequences do not match its record count: {b:?}"
        );
        expected_next = Some(b.last_sequence.wrapping_add(1));
    }
    epochs
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line
        .find(name)
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        + name.len();
    line[start..].split_whitespace().next().unwrap_or("")
}

// Fault-injection tests (tests/fault_*.rs): owned brokers, steady load, the delivery
// promise check, and a TCP proxy that injects network faults.
pub mod fault;
pub mod proxy;

// A real Prometheus server and promtool (tests/common/prometheus.rs; scripts/prometheus.sh
// installs them).
pub mod prometheus;
