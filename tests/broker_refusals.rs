//! What a user is told when the real broker refuses a batch, through `Producer` and the
//! real cluster edge: a batch larger than the topic's `max.message.bytes` and a topic
//! deleted under the producer each end in a "rejected, not written" report naming the
//! broker's reason, and the topic holds none of those events. (Too few in-sync
//! replicas needs replicas that can be missing: `tests/fault_cluster.rs`.)

mod common;

use std::process::Command;
use std::time::Duration;

use kafka_producer::generator::Generator;
use kafka_producer::{DeliveryError, DeliveryResult, Producer, ProducerConfig, reader};
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

/// A producer whose retries wait longer than the message timeout: a refused batch is
/// sent once and is still waiting when its timeout passes, so the report shows how
/// that refusal was classified, not the race of a retry on the wire.
fn one_attempt_config(topic: &str) -> ProducerConfig {
    ProducerConfig {
        message_timeout: Duration::from_secs(2),
        retry_backoff: Duration::from_secs(60),
        ..common::config_for(topic)
    }
}

/// Sends `count` generated events, flushes, and returns their reports.
async fn send_all(producer: &Producer, count: usize, seed: u64) -> Vec<DeliveryResult> {
    let mut generator = Generator::new(seed, 1_000);
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

/// Every report is "rejected, not written" and names `code`.
fn assert_all_rejected(reports: &[DeliveryResult], code: &str, case: &str) {
    for (i, report) in reports.iter().enumerate() {
        match report {
            Err(e @ DeliveryError::Rejected { reason, .. }) => {
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
        ..one_attempt_config(&topic)
    };
    let producer = Producer::connect(config).await.unwrap();
    let reports = send_all(&producer, 200, 1).await;
    producer.close().await;
    assert_all_rejected(&reports, "MessageTooLarge", "oversized batch");
    assert_eq!(stored(&client, &topic).await, 0, "records in {topic}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_deleted_under_the_producer_rejects_later_events_and_stores_none() {
    let Some(client) = common::client_or_skip("refusal-deleted").await else {
        return;
    };
    let topic = common::unique_topic("refusal-deleted");
    common::create_topic(&client, &topic, 1).await;
    let producer = Producer::connect(one_attempt_config(&topic)).await.unwrap();
    let before = send_all(&producer, 20, 3).await;
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
    let after = send_all(&producer, 20, 4).await;
    producer.close().await;
    assert_all_rejected(&after, "UnknownTopicOrPartition", "deleted topic");
    assert!(
        kafka_producer::connect::partition_count(&client, &topic)
            .await
            .is_err(),
        "{topic} came back"
    );
}
