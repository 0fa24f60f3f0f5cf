//! What a user is told when the real broker refuses a batch, through `Producer` and the
//! real cluster edge: a batch larger than the topic's `max.message.bytes` and a topic
//! deleted under the producer each end in a "rejected, not written" report naming the
//! broker's reason, and the topic holds none of those events. (Too few in-sync
//! replicas needs replicas that can be missing: `tests/fault_cluster.rs`.)

mod common;

use std::process::Command;
use std::time::Duration;

use kafka_producer::{Producer, ProducerConfig, reader};
use rskafka::client::Client;

/// Creates `topic` (one partition) with topic-level settings, through Kafka's own tool.
fn create_topic_with(topic: &str, configs: &[&str]) {
    let mut command = Command::new(common::repo_root().join("scripts/kafka.sh"));
    command.args(["create-topic", topic, "1"]);
    for c in configs {
        command.args(["--config", c]);
    }
    let out = command.output().expect("scripts/kafka.sh runs");
    assert!(
        out.status.success(),
        "creating {topic} with {configs:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn stored(client: &Client, topic: &str) -> usize {
    reader::read_all(client, topic)
        .await
        .unwrap_or_else(|e| panic!("reading {topic} back: {e}"))
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_topics_max_message_bytes_is_rejected_and_not_stored() {
    let Some(client) = common::client_or_skip("refusal-size").await else {
        return;
    };
    let topic = common::unique_topic("refusal-size");
    create_topic_with(&topic, &["max.message.bytes=2000"]);
    let config = ProducerConfig {
        // 200 events of ~100 bytes each in one batch, far over 2,000 bytes.
        compression: kafka_producer::config::CompressionCodec::None,
        linger: Duration::from_secs(1),
        ..common::one_attempt_config(&topic)
    };
    let producer = Producer::connect(config).await.unwrap();
    let reports = common::send_generated(&producer, 200, 1).await;
    producer.close().await;
    common::assert_all_rejected(&reports, "MessageTooLarge", "oversized batch");
    assert_eq!(stored(&client, &topic).await, 0, "records in {topic}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_deleted_under_the_producer_rejects_later_events_and_stores_none() {
    let Some(client) = common::client_or_skip("refusal-deleted").await else {
        return;
    };
    let topic = common::unique_topic("refusal-deleted");
    common::create_topic(&client, &topic, 1).await;
    let producer = Producer::connect(common::one_attempt_config(&topic))
        .await
        .unwrap();
    let before = common::send_generated(&producer, 20, 3).await;
    assert!(
        before.iter().all(Result::is_ok),
        "before the deletion: {before:?}"
    );

    client
        .controller_client()
        .unwrap()
        .delete_topic(&topic, 10_000)
        .await
        .expect("topic deleted");
    let after = common::send_generated(&producer, 20, 4).await;
    producer.close().await;
    common::assert_all_rejected(&after, "UnknownTopicOrPartition", "deleted topic");
    assert!(
        kafka_producer::connect::partition_count(&client, &topic)
            .await
            .is_err(),
        "{topic} came back"
    );
}
