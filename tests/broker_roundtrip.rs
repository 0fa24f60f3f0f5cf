//! The foundation works against the real broker: a topic with 3 partitions created
//! through rskafka, zstd-compressed records produced and read back unchanged.

mod common;

use std::collections::BTreeMap;

use kafka_producer::{connect, reader};
use rskafka::client::partition::Compression;
use rskafka::record::Record;

#[tokio::test]
async fn zstd_records_produced_through_rskafka_read_back_unchanged() {
    let Some(client) = common::client_or_skip("roundtrip").await else {
        return;
    };
    let topic = common::unique_topic("roundtrip");
    common::create_topic(&client, &topic, 3).await;

    let mut sent = Vec::new();
    for partition in 0..3 {
        let pc = connect::partition_client(&client, &topic, partition)
            .await
            .unwrap();
        let records: Vec<Record> = (0..5)
            .map(|i| Record {
                key: Some(format!("key-{partition}-{i}").into_bytes()),
                value: Some(format!("value-{partition}-{i}").into_bytes()),
                headers: BTreeMap::from([("event-type".to_string(), b"USER_LOGIN".to_vec())]),
                timestamp: common::timestamp_from_millis(1_700_000_000_000 + i),
            })
            .collect();
        let offsets = pc
            .produce(records.clone(), Compression::Zstd)
            .await
            .unwrap();
        assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
        sent.extend(records.into_iter().map(|r| (partition, r)));
    }

    let stored = reader::read_all(&client, &topic).await.unwrap();
    let read_back: Vec<(i32, Record)> = stored
        .into_iter()
        .map(|r| {
            (
                r.partition,
                Record {
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                    timestamp: common::timestamp_from_millis(r.timestamp_ms),
                },
            )
        })
        .collect();
    assert_eq!(read_back, sent);
    for partition in 0..3 {
        let batches = common::dump_batches(&topic, partition);
        assert_eq!(batches.len(), 1, "{batches:?}");
        assert_eq!(batches[0].codec, "zstd");
        assert_eq!(batches[0].count, 5);
    }
}
