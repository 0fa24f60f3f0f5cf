//! The producer's promises checked against what the real broker stored: every event
//! delivered once, unchanged, keyed and partitioned like the Java client, at the offsets
//! reported, in zstd batches no larger than the record cap.

mod common;

use std::collections::HashMap;
use std::sync::atomic::AtomicU32;

use kafka_producer::event::UserEvent;
use kafka_producer::generator::Generator;
use kafka_producer::partitioner::Partitioner;
use kafka_producer::record::event_type_name;
use kafka_producer::{Delivered, Producer, reader};

/// Sends `count` generated events and returns each with its delivery report.
async fn produce_generated(
    producer: &Producer,
    count: usize,
    seed: u64,
) -> Vec<(UserEvent, Delivered)> {
    let mut generator = Generator::new(seed, 10_000);
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let event = generator.next_event(1_700_000_000_000 + i as i64);
        let report = producer.send(&event).await.expect("accepted");
        pending.push((event, report));
    }
    producer.flush().await;
    let mut delivered = Vec::with_capacity(count);
    for (event, report) in pending {
        let d = report
            .await
            .unwrap_or_else(|e| panic!("event {} failed: {e}", event.event_id));
        delivered.push((event, d));
    }
    delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_events_are_stored_once_unchanged_at_their_reported_offsets() {
    let Some(client) = common::client_or_skip("delivery").await else {
        return;
    };
    let topic = common::unique_topic("delivery");
    common::create_topic(&client, &topic, 3).await;
    let producer = Producer::connect(common::config_for(&topic)).await.unwrap();

    let sent = produce_generated(&producer, 200_000, 7).await;
    producer.close().await;
    let metrics = producer.metrics();
    assert_eq!(
        (metrics.accepted, metrics.delivered, metrics.failed()),
        (200_000, 200_000, 0)
    );

    let stored = reader::read_all(&client, &topic).await.unwrap();
    assert_eq!(stored.len(), 200_000, "records in the topic");
    let by_position: HashMap<(i32, i64), &reader::StoredRecord> = stored
        .iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect();
    let no_counter = AtomicU32::new(0);
    let mut ids = std::collections::HashSet::new();
    for (event, delivered) in &sent {
        let record = by_position
            .get(&(delivered.partition, delivered.offset))
            .unwrap_or_else(|| {
                panic!(
                    "nothing stored at the offset reported for {}",
                    event.event_id
                )
            });
        assert_eq!(&record.decode().unwrap(), event, "stored event differs");
        assert_eq!(record.key.as_deref(), Some(event.user_id.as_bytes()));
        assert_eq!(
            record.headers.get("event-type").map(Vec::as_slice),
            Some(event_type_name(event).as_bytes())
        );
        assert_eq!(record.timestamp_ms, event.timestamp);
        let expected = Partitioner::Murmur2.partition(event.user_id.as_bytes(), 3, &no_counter);
        assert_eq!(
            delivered.partition as u32, expected,
            "murmur2 partition of {}",
            event.user_id
        );
        assert!(ids.insert(event.event_id.clone()), "event id sent twice");
    }
    let stored_ids: std::collections::HashSet<String> = stored
        .iter()
        .map(|r| r.decode().unwrap().event_id)
        .collect();
    assert_eq!(
        stored_ids, ids,
        "the stored event ids are exactly the sent ones"
    );

    // What the broker wrote, per its own log dump tool: zstd batches of at most
    // 10,000 records, each with the producer's id, sequences contiguous per partition.
    let mut total = 0;
    let mut batches = 0;
    let mut producers = std::collections::HashSet::new();
    for partition in 0..3 {
        let stored = common::dump_batches(&topic, partition);
        let epochs = common::assert_idempotent_batches(&stored, &format!("partition {partition}"));
        assert_eq!(
            epochs.len(),
            1,
            "partition {partition}: one epoch, no bump: {epochs:?}"
        );
        producers.extend(epochs);
        for batch in stored {
            assert_eq!(batch.codec, "zstd", "partition {partition}: {batch:?}");
            assert!(batch.count <= 10_000, "partition {partition}: {batch:?}");
            total += batch.count;
            batches += 1;
        }
    }
    assert_eq!(
        producers.len(),
        1,
        "one producer id and epoch for all partitions: {producers:?}"
    );
    assert_eq!(total, 200_000, "records counted in the log segments");
    // Records per batch follow the input rate times the linger: a debug build on
    // a slow machine stores ~100 per batch, no batching would be one per batch.
    assert!(
        batches <= 200_000 / 10,
        "{batches} batches for 200000 records: batching did not happen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_max_messages_caps_every_stored_batch() {
    let Some(client) = common::client_or_skip("batch500").await else {
        return;
    };
    let topic = common::unique_topic("batch500");
    common::create_topic(&client, &topic, 3).await;
    let mut config = common::config_for(&topic);
    config.batch_max_records = 500;
    config.linger = std::time::Duration::from_millis(50);
    let producer = Producer::connect(config).await.unwrap();
    produce_generated(&producer, 20_000, 11).await;
    producer.close().await;

    let mut total = 0;
    let mut full = 0;
    for partition in 0..3 {
        for batch in common::dump_batches(&topic, partition) {
            assert!(batch.count <= 500, "partition {partition}: {batch:?}");
            assert_eq!(batch.codec, "zstd");
            total += batch.count;
            full += usize::from(batch.count == 500);
        }
    }
    assert_eq!(total, 20_000);
    assert!(
        full > 0,
        "no batch reached the 500 cap: the cap was never exercised"
    );
}

/// The batches are framed, compressed and CRC'd by us: the broker checks the CRC and
/// decompresses every batch it appends, its log shows the codec, and reading back gives
/// every event unchanged, for each codec a user can choose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_codec_is_accepted_stored_and_read_back_unchanged() {
    use kafka_producer::config::CompressionCodec;
    let Some(client) = common::client_or_skip("codecs").await else {
        return;
    };
    for codec in CompressionCodec::ALL {
        let topic = common::unique_topic(&format!("codec-{codec}"));
        common::create_topic(&client, &topic, 2).await;
        let mut config = common::config_for(&topic);
        config.compression = codec;
        let producer = Producer::connect(config).await.unwrap();
        let sent = produce_generated(&producer, 5_000, 13).await;
        producer.close().await;

        let stored = reader::read_all(&client, &topic).await.unwrap();
        let stored: HashMap<(i32, i64), UserEvent> = stored
            .iter()
            .map(|r| ((r.partition, r.offset), r.decode().unwrap()))
            .collect();
        assert_eq!(stored.len(), sent.len(), "{codec}: records in the topic");
        for (event, delivered) in &sent {
            assert_eq!(
                stored.get(&(delivered.partition, delivered.offset)),
                Some(event),
                "{codec}: stored event at the reported offset"
            );
        }
        // DumpLogSegments names codecs as our config does: none, gzip, lz4, snappy, zstd.
        let expected = codec.to_string();
        let mut batches = 0;
        for partition in 0..2 {
            for batch in common::dump_batches(&topic, partition) {
                assert_eq!(batch.codec, expected, "{codec}: {batch:?}");
                batches += 1;
            }
        }
        assert!(batches > 0, "{codec}: no batches in the log");
    }
}
