//! Partitions added to a topic while the producer runs get traffic: the partition count
//! is re-read every `metadata_refresh`, and keys are then spread with murmur2 over the
//! new count, as the Java client does after its metadata refresh.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_producer::generator::Generator;
use kafka_producer::partitioner::{murmur2, to_positive};
use kafka_producer::{Producer, reader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_while_producing_receive_events_after_the_refresh() {
    let Some(client) = common::client_or_skip("growth").await else {
        return;
    };
    let topic = common::unique_topic("growth");
    common::create_topic(&client, &topic, 2).await;
    let mut config = common::config_for(&topic);
    config.metadata_refresh = Duration::from_millis(300);
    let producer = Producer::connect(config).await.unwrap();
    assert_eq!(producer.partition_count(), 2);

    let mut generator = Generator::new(5, 1000);
    let mut before = Vec::new();
    for i in 0..1000 {
        before.push(producer.send(&generator.next_event(i)).await.unwrap());
    }
    for report in before {
        assert!(report.await.unwrap().partition < 2);
    }

    let status = Command::new(common::repo_root().join("scripts/kafka.sh"))
        .args([
            "run-class",
            "org.apache.kafka.tools.TopicCommand",
            "--bootstrap-server",
        ])
        .arg(common::broker())
        .args(["--alter", "--topic", &topic, "--partitions", "4"])
        .status()
        .unwrap();
    assert!(status.success(), "TopicCommand --alter failed");
    let deadline = Instant::now() + Duration::from_secs(20);
    while producer.partition_count() < 4 {
        assert!(
            Instant::now() < deadline,
            "the producer never saw the new partitions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut reported = HashMap::new();
    for i in 0..2000 {
        let event = generator.next_event(10_000 + i);
        let report = producer.send(&event).await.unwrap();
        reported.insert(event.event_id, report);
    }
    let mut reported_at = HashMap::new();
    for (event_id, report) in reported {
        let delivered = report.await.unwrap();
        reported_at.insert(event_id, (delivered.partition, delivered.offset));
    }
    producer.close().await;

    // What the topic holds: each event sent after the growth is where its report says, on
    // Kafka's murmur2 partition of its key over 4 partitions (murmur2 checked against
    // Kafka's and librdkafka's own test vectors in src/partitioner.rs).
    // Read back until all 3,000 are there, for at most 10 s: a loaded broker may serve a
    // new partition's metadata before its log; the message names what each partition held.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stored = loop {
        let stored = reader::read_all(&client, &topic).await.unwrap();
        if stored.len() == 3000 || Instant::now() >= deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut held = std::collections::BTreeMap::new();
    for record in &stored {
        *held.entry(record.partition).or_insert(0) += 1;
    }
    let mut reported_on = std::collections::BTreeMap::new();
    for (partition, _) in reported_at.values() {
        *reported_on.entry(*partition).or_insert(0) += 1;
    }
    assert_eq!(
        stored.len(),
        3000,
        "records read back per partition {held:?}; events reported delivered after the growth, per partition {reported_on:?}"
    );
    let mut checked = 0;
    let mut on_new_partitions = 0;
    for record in &stored {
        let event = record.decode().unwrap();
        let Some(&at) = reported_at.get(&event.event_id) else {
            continue; // sent before the growth
        };
        assert_eq!(
            (record.partition, record.offset),
            at,
            "event {} is not where its report says",
            event.event_id
        );
        let key = record.key.as_deref().expect("the user id is the key");
        assert_eq!(
            record.partition as u32,
            to_positive(murmur2(key)) % 4,
            "key {}",
            event.user_id
        );
        checked += 1;
        on_new_partitions += usize::from(record.partition >= 2);
    }
    assert_eq!(
        checked, 2000,
        "every event sent after the growth was read back"
    );
    assert!(on_new_partitions > 0, "no event reached partitions 2 or 3");
}
