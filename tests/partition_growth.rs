//! Partitions added to a topic while the producer runs get traffic: the partition count
//! is re-read every `metadata_refresh`, and keys are then spread with murmur2 over the
//! new count, as the Java client does after its metadata refresh.

mod common;

use std::process::Command;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use kafka_producer::generator::Generator;
use kafka_producer::partitioner::Partitioner;
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

    let counter = AtomicU32::new(0);
    let mut after = Vec::new();
    for i in 0..2000 {
        let event = generator.next_event(10_000 + i);
        let expected = Partitioner::Murmur2.partition(event.user_id.as_bytes(), 4, &counter);
        after.push((expected, producer.send(&event).await.unwrap()));
    }
    let mut on_new_partitions = 0;
    for (expected, report) in after {
        let delivered = report.await.unwrap();
        assert_eq!(delivered.partition as u32, expected);
        on_new_partitions += usize::from(delivered.partition >= 2);
    }
    assert!(on_new_partitions > 0, "no event reached partitions 2 or 3");
    producer.close().await;
    assert_eq!(reader::read_all(&client, &topic).await.unwrap().len(), 3000);
}
