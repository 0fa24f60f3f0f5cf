//! The buffer's promise through `Producer`, against a real broker of the test's own
//! that stops answering (SIGSTOP): at most `buffer_max_records` events (100,000 by
//! default) are accepted and not yet reported; at the cap `try_send` fails at once with
//! `QueueFull` and `send` waits; once the broker answers again the reports give the room
//! back, the waiting `send` is accepted, and every event is stored once.

mod common;

use std::collections::HashSet;
use std::pin::pin;
use std::time::Duration;

use common::fault::OwnedBroker;
use kafka_producer::config::DEFAULT_BUFFER_MAX_RECORDS;
use kafka_producer::generator::Generator;
use kafka_producer::{Producer, ProducerConfig, SendError, reader};

const INSTANCE: &str = "buffer-cap";
const PORT: u16 = 19592;
const CONTROLLER_PORT: u16 = 19593;
/// How long the test waits for what the producer owes it before failing: a guard
/// against a hang, not a measurement.
const PATIENCE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_default_cap_try_send_fails_and_send_waits_until_reports_give_room_back() {
    if common::client_or_skip("buffer-cap").await.is_none() {
        return;
    }
    assert_eq!(DEFAULT_BUFFER_MAX_RECORDS, 100_000, "the documented cap");
    let broker = OwnedBroker::start(INSTANCE, PORT, CONTROLLER_PORT, &[]).await;
    let client = broker.client(Duration::from_secs(10)).await;
    let topic = common::unique_topic("buffer-cap");
    common::create_topic(&client, &topic, 3).await;
    let mut config = ProducerConfig {
        topic: topic.clone(),
        // Nothing may be reported while the broker is stopped: no event's message
        // timeout passes during the test.
        message_timeout: PATIENCE,
        ..Default::default()
    };
    config.connection.brokers = vec![broker.address()];
    let producer = Producer::connect(config).await.unwrap();

    broker.script(&["freeze"]).await;
    let mut generator = Generator::new(11, 10_000);
    let mut event_at = |i: usize| generator.next_event(1_700_000_000_000 + i as i64);
    let mut reports = Vec::with_capacity(DEFAULT_BUFFER_MAX_RECORDS + 1);
    for i in 0..DEFAULT_BUFFER_MAX_RECORDS {
        let report = producer
            .try_send(&event_at(i))
            .unwrap_or_else(|e| panic!("event {i} of the first 100,000 was refused: {e}"));
        reports.push(report);
    }
    let last = event_at(DEFAULT_BUFFER_MAX_RECORDS);
    assert!(
        matches!(producer.try_send(&last), Err(SendError::QueueFull)),
        "try_send at the cap did not fail with QueueFull"
    );
    let mut waiting = pin!(producer.send(&last));
    assert!(
        futures::poll!(waiting.as_mut()).is_pending(),
        "send at the cap did not wait"
    );
    assert_eq!(
        producer.metrics().accepted,
        DEFAULT_BUFFER_MAX_RECORDS as u64
    );

    broker.script(&["thaw"]).await;
    let report = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("reports gave no room back")
        .expect("send accepted once there was room");
    reports.push(report);
    producer.flush().await;
    for (i, report) in reports.into_iter().enumerate() {
        if let Err(e) = report.await {
            panic!("event {i} was not delivered: {e}");
        }
    }
    producer.close().await;

    let stored = reader::read_all(&client, &topic).await.unwrap();
    let ids: HashSet<String> = stored
        .iter()
        .map(|r| r.decode().expect("a stored record is an event").event_id)
        .collect();
    assert_eq!(
        (stored.len(), ids.len()),
        (
            DEFAULT_BUFFER_MAX_RECORDS + 1,
            DEFAULT_BUFFER_MAX_RECORDS + 1
        ),
        "(records stored, distinct events)"
    );
}
