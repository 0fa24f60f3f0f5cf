//! The producer's promises while its broker is down or stalled, against a real Kafka
//! process this test owns (its own instance, ports and data dir, so nothing else is
//! disturbed): every event resolves within the message timeout when the broker is gone,
//! and a full buffer makes senders wait, without losing anything, until it is back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fault::OwnedBroker;
use kafka_producer::generator::Generator;
use kafka_producer::{DeliveryError, Producer, SendError, reader};

const INSTANCE: &str = "outage";
const PORT: u16 = 19192;
const CONTROLLER_PORT: u16 = 19193;

fn address() -> String {
    format!("localhost:{PORT}")
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

// Both scenarios share one owned broker, so they run in one test, one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_resolve_every_event_and_backpressure_holds_until_the_broker_returns() {
    // Gate on the shared broker like every integration test: under `make test` the
    // tooling to start brokers is there; plain `cargo test` without it skips.
    if common::client_or_skip("outage").await.is_none() {
        return;
    }
    let broker = OwnedBroker::start(INSTANCE, PORT, CONTROLLER_PORT, &[]).await;
    let client = broker.client(Duration::from_secs(10)).await;

    // 1. Broker killed: every accepted event resolves as timed out. (That it comes at
    // the message timeout, not later, is checked exactly on a paused clock in
    // engine_timing.rs; a wall-clock bound here would measure the machine's load.)
    let topic = common::unique_topic("outage-kill");
    common::create_topic(&client, &topic, 3).await;
    let mut config = common::config_for(&topic);
    config.connection.brokers = vec![address()];
    let producer = Producer::connect(config).await.unwrap();
    broker.kill9().await;
    let mut generator = Generator::new(1, 1000);
    let mut reports = Vec::new();
    for i in 0..3000 {
        let event = generator.next_event(1_700_000_000_000 + i);
        reports.push(producer.send(&event).await.unwrap());
    }
    for report in reports {
        let outcome = report.await;
        match outcome {
            Err(DeliveryError::TimedOutInFlight { .. } | DeliveryError::TimedOutQueued { .. }) => {}
            other => panic!("expected a timeout with the broker dead, got {other:?}"),
        }
    }
    let m = producer.metrics();
    assert_eq!(m.accepted, 3000);
    assert_eq!(
        m.delivered + m.failed(),
        m.accepted,
        "every accepted event reported: {m:?}"
    );
    producer.close().await;

    // 2. Broker back, then stalled with a 1 MiB buffer: try_send fails fast, send waits,
    // memory stays bounded, and everything is delivered once it resumes.
    broker.up().await;
    let client = broker.client(Duration::from_secs(10)).await;
    let topic = common::unique_topic("outage-stall");
    common::create_topic(&client, &topic, 3).await;
    let mut config = common::config_for(&topic);
    config.connection.brokers = vec![address()];
    config.buffer_max_bytes = 1 << 20;
    config.batch_max_bytes = 100_000;
    config.message_timeout = Duration::from_secs(120);
    let producer = Arc::new(Producer::connect(config).await.unwrap());
    // Freezes the broker process: connections stay open, nothing is answered.
    broker.script(&["freeze"]).await;
    let rss_before = rss_bytes();
    let mut generator = Generator::new(2, 1000);
    let mut reports = Vec::new();
    let queue_full = loop {
        let event = generator.next_event(1_700_000_000_000);
        match producer.try_send(&event) {
            Ok(report) => reports.push((event.event_id, report)),
            Err(e) => break e,
        }
        assert!(
            reports.len() < 100_000,
            "try_send never reported a full buffer"
        );
    };
    assert_eq!(queue_full, SendError::QueueFull);
    let admitted = reports.len();

    // Far more than the buffer holds: these senders must wait, not pile up in memory.
    let waiting = {
        let producer = Arc::clone(&producer);
        tokio::spawn(async move {
            let mut generator = Generator::new(3, 1000);
            let mut reports = Vec::new();
            for _ in 0..50_000 {
                let event = generator.next_event(1_700_000_000_000);
                reports.push((event.event_id.clone(), producer.send(&event).await.unwrap()));
            }
            reports
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!waiting.is_finished(), "send did not wait for room");
    let grown = rss_bytes().saturating_sub(rss_before);
    assert!(
        grown < 64 << 20,
        "memory grew {grown} bytes with a 1 MiB buffer and 50000 waiting events"
    );

    broker.script(&["thaw"]).await;
    let mut delivered = std::collections::HashSet::new();
    for (id, report) in reports.into_iter().chain(waiting.await.unwrap()) {
        report.await.expect("delivered after the broker resumed");
        delivered.insert(id);
    }
    assert_eq!(delivered.len(), admitted + 50_000);
    producer.close().await;
    // Every acknowledged event is in the topic; a request retried after the stall may
    // have been written twice, which the promise allows (and which we count).
    let stored = reader::read_all(&client, &topic).await.unwrap();
    let stored_ids: std::collections::HashSet<String> = stored
        .iter()
        .map(|r| r.decode().unwrap().event_id)
        .collect();
    assert_eq!(stored_ids, delivered, "event ids in the topic");
    eprintln!(
        "stall: {} acknowledged, {} records stored ({} duplicates from retried requests)",
        delivered.len(),
        stored.len(),
        stored.len() - stored_ids.len()
    );
    drop(broker);
}
