//! Reads a topic back, for checking what the broker stored: `consume` prints the
//! records, `verify` counts them. Fed by a connected client; feeds the CLI and tests.
//! Not a consumer-group client: it reads partitions directly by offset.

use std::collections::{BTreeMap, HashSet};

use prost::Message;
use rskafka::client::Client;
use rskafka::client::partition::OffsetAt;

use crate::connect::{self, ConnectError};
use crate::event::UserEvent;

/// Bytes asked for per fetch: large enough for several full batches.
const FETCH_MAX_BYTES: i32 = 16 * 1024 * 1024;
/// How long the broker may hold a fetch open waiting for data.
const FETCH_MAX_WAIT_MS: i32 = 500;

/// One record as the broker stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub headers: BTreeMap<String, Vec<u8>>,
    pub timestamp_ms: i64,
    pub value: Option<Vec<u8>>,
}

impl StoredRecord {
    /// The value decoded as a `UserEvent`, or why it is not one.
    pub fn decode(&self) -> Result<UserEvent, String> {
        match &self.value {
            None => Err("record has no value".into()),
            Some(bytes) => UserEvent::decode(bytes.as_slice()).map_err(|e| e.to_string()),
        }
    }
}

/// Where reading starts in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    End,
}

/// Reads one partition from `start` up to the end it had when reading began
/// (or forever with `follow`), handing each record to `visit`. `visit` returns false
/// to stop early.
pub async fn read_partition(
    client: &Client,
    topic: &str,
    partition: i32,
    start: StartAt,
    follow: bool,
    mut visit: impl FnMut(StoredRecord) -> bool,
) -> Result<(), ConnectError> {
    let cluster = |e: rskafka::client::error::Error| ConnectError::Cluster {
        detail: format!("reading partition {partition} of '{topic}': {e}"),
    };
    let pc = connect::partition_client(client, topic, partition).await?;
    let mut offset = match start {
        StartAt::Beginning => pc.get_offset(OffsetAt::Earliest).await.map_err(cluster)?,
        StartAt::End => pc.get_offset(OffsetAt::Latest).await.map_err(cluster)?,
    };
    let end = pc.get_offset(OffsetAt::Latest).await.map_err(cluster)?;
    while follow || offset < end {
        let (records, _high_watermark) = pc
            .fetch_records(offset, 1..FETCH_MAX_BYTES, FETCH_MAX_WAIT_MS)
            .await
            .map_err(cluster)?;
        for r in records {
            if r.offset < offset || (!follow && r.offset >= end) {
                continue;
            }
            offset = r.offset + 1;
            let stored = StoredRecord {
                partition,
                offset: r.offset,
                key: r.record.key,
                headers: r.record.headers,
                timestamp_ms: r.record.timestamp.timestamp_millis(),
                value: r.record.value,
            };
            if !visit(stored) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Every record of every partition, from the beginning to the end as of now.
pub async fn read_all(client: &Client, topic: &str) -> Result<Vec<StoredRecord>, ConnectError> {
    let partitions = connect::partition_count(client, topic).await?;
    let mut all = Vec::new();
    for p in 0..partitions as i32 {
        read_partition(client, topic, p, StartAt::Beginning, false, |r| {
            all.push(r);
            true
        })
        .await?;
    }
    Ok(all)
}

/// What `verify` found in a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    pub records: u64,
    pub distinct_event_ids: u64,
    /// Records whose event id was already seen (a retried request written twice).
    pub duplicates: u64,
    /// Records whose value is not a `UserEvent`, as `partition/offset: why`.
    pub undecodable: Vec<String>,
    pub per_partition: BTreeMap<i32, u64>,
}

impl Verification {
    /// True when the topic holds no duplicates and nothing undecodable.
    pub fn is_clean(&self) -> bool {
        self.duplicates == 0 && self.undecodable.is_empty()
    }
}

/// Counts records, distinct event ids, duplicates and undecodable records.
pub async fn verify(client: &Client, topic: &str) -> Result<Verification, ConnectError> {
    let partitions = connect::partition_count(client, topic).await?;
    let mut v = Verification::default();
    let mut seen: HashSet<String> = HashSet::new();
    for p in 0..partitions as i32 {
        v.per_partition.insert(p, 0);
        read_partition(client, topic, p, StartAt::Beginning, false, |r| {
            v.records += 1;
            *v.per_partition.entry(p).or_default() += 1;
            match r.decode() {
                Ok(event) => {
                    if !seen.insert(event.event_id) {
                        v.duplicates += 1;
                    }
                }
                Err(why) => v
                    .undecodable
                    .push(format!("{}/{}: {why}", r.partition, r.offset)),
            }
            true
        })
        .await?;
    }
    v.distinct_event_ids = seen.len() as u64;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any bytes a topic may hold: decoding reports an error, never panics.
    #[test]
    fn decoding_arbitrary_bytes_never_panics() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let value: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let record = StoredRecord {
                partition: 0,
                offset: 0,
                key: None,
                headers: BTreeMap::new(),
                timestamp_ms: 0,
                value: Some(value),
            };
            decoded += usize::from(record.decode().is_ok());
        }
        assert!(
            decoded < 20_000,
            "random bytes all decoded: the check proves nothing"
        );
        let none = StoredRecord {
            partition: 1,
            offset: 2,
            key: None,
            headers: BTreeMap::new(),
            timestamp_ms: 0,
            value: None,
        };
        assert_eq!(none.decode(), Err("record has no value".to_string()));
    }
}
