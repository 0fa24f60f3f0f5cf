//! Kafka's v2 record batch, built here rather than by rskafka: each record is framed into
//! one buffer when the accumulator takes it (its key and value allocations are freed
//! there and then), and the batch is compressed once, when it closes. A closed batch
//! waiting for its turn therefore holds only its compressed bytes, and the produce
//! request carries them as they are (the vendored rskafka's `produce_encoded`).
//!
//! Layout (Kafka's `DefaultRecordBatch` / `DefaultRecord`): a 61-byte header, then the
//! records, compressed as a whole. Every varint is zigzag-encoded.
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 = 2 | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records
//! record: length | attributes i8 | timestampDelta | offsetDelta | key | value | headers
//! ```

use std::io;

use crate::compression;
use crate::config::CompressionCodec;
use crate::record::{EVENT_TYPE_HEADER, EncodedEvent};

/// Bytes of the batch header in front of the records.
const HEADER_BYTES: usize = 61;
/// The CRC (CRC-32C) covers everything from the attributes to the end.
const CRC_START: usize = 21;
/// Where the idempotent producer's fields sit in the header: producerId i64,
/// producerEpoch i16, baseSequence i32.
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;

/// Who wrote a batch, for the broker's duplicate and order checks: the idempotent
/// producer's id and epoch, and the sequence number of the batch's first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// Writes the stamp into an encoded batch's header and sets its CRC again. Batches
/// are stamped when first sent, not when built, and stamped anew after an epoch bump.
pub fn stamp(batch: &mut [u8], stamp: Stamp) {
    batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&stamp.producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2]
        .copy_from_slice(&stamp.producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4]
        .copy_from_slice(&stamp.base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
}

/// The sequence number after a batch of `records` starting at `base`: Kafka's
/// sequences wrap from i32::MAX to 0.
pub fn next_sequence(base: i32, records: usize) -> i32 {
    ((i64::from(base) + records as i64) % (i64::from(i32::MAX) + 1)) as i32
}

/// A closed batch in wire form: the bytes of a produce request's record set.
#[derive(Debug)]
pub struct EncodedBatch {
    pub bytes: Vec<u8>,
    pub records: usize,
}

/// The open batch: records framed so far, uncompressed. Reused from batch to batch so
/// its buffer is allocated once per partition.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    framed: Vec<u8>,
    records: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.records as usize
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Frames the event as the batch's next record.
    pub fn push(&mut self, event: &EncodedEvent) {
        if self.records == 0 {
            self.base_timestamp = event.timestamp_ms;
            self.max_timestamp = event.timestamp_ms;
        }
        self.max_timestamp = self.max_timestamp.max(event.timestamp_ms);
        let timestamp_delta = event.timestamp_ms.wrapping_sub(self.base_timestamp);
        let offset_delta = i64::from(self.records);
        let header_key = EVENT_TYPE_HEADER.as_bytes();
        let header_value = event.event_type.as_bytes();

        let body = 1 // attributes
            + varint_len(timestamp_delta)
            + varint_len(offset_delta)
            + bytes_len(&event.key)
            + bytes_len(&event.value)
            + varint_len(1) // header count
            + bytes_len(header_key)
            + bytes_len(header_value);
        let out = &mut self.framed;
        out.reserve(varint_len(body as i64) + body);
        put_varint(out, body as i64);
        out.push(0);
        put_varint(out, timestamp_delta);
        put_varint(out, offset_delta);
        put_bytes(out, &event.key);
        put_bytes(out, &event.value);
        put_varint(out, 1);
        put_bytes(out, header_key);
        put_bytes(out, header_value);
        self.records += 1;
    }

    /// Puts the header in front of the records, compressed; the builder is empty after,
    /// keeping its buffer for the next batch.
    pub fn finish(&mut self, codec: CompressionCodec) -> io::Result<EncodedBatch> {
        let records = std::mem::take(&mut self.records);
        let mut bytes = Vec::with_capacity(HEADER_BYTES);
        bytes.extend_from_slice(&0i64.to_be_bytes()); // baseOffset: the broker assigns it
        bytes.extend_from_slice(&[0; 4]); // batchLength, set below
        bytes.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch: unknown
        bytes.push(2); // magic
        bytes.extend_from_slice(&[0; 4]); // crc, set below
        // CreateTime timestamps, not transactional, not a control batch.
        bytes.extend_from_slice(&compression::attribute(codec).to_be_bytes());
        bytes.extend_from_slice(&(records - 1).to_be_bytes());
        bytes.extend_from_slice(&self.base_timestamp.to_be_bytes());
        bytes.extend_from_slice(&self.max_timestamp.to_be_bytes());
        bytes.extend_from_slice(&(-1i64).to_be_bytes()); // producerId: not idempotent
        bytes.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
        bytes.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
        bytes.extend_from_slice(&records.to_be_bytes());
        debug_assert_eq!(bytes.len(), HEADER_BYTES);

        let compressed = compression::compress(codec, &self.framed, &mut bytes);
        self.framed.clear();
        compressed?;
        // The batch may wait in the queue: keep only what it uses.
        bytes.shrink_to_fit();
        let batch_length = (bytes.len() - 12) as i32;
        bytes[8..12].copy_from_slice(&batch_length.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[CRC_START..]);
        bytes[CRC_START - 4..CRC_START].copy_from_slice(&crc.to_be_bytes());
        Ok(EncodedBatch {
            bytes,
            records: records as usize,
        })
    }
}

fn varint_len(value: i64) -> usize {
    let zigzag = ((value << 1) ^ (value >> 63)) as u64;
    // 7 bits per byte; a zero still takes one byte.
    (64 - (zigzag | 1).leading_zeros() as usize).div_ceil(7)
}

fn bytes_len(bytes: &[u8]) -> usize {
    varint_len(bytes.len() as i64) + bytes.len()
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push(zigzag as u8 | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> EncodedEvent {
        EncodedEvent {
            key: format!("user-{n}").into_bytes(),
            value: vec![n as u8; 100 + n as usize],
            event_type: "USER_LOGIN",
            timestamp_ms: 1_700_000_000_000 + n * 10,
        }
    }

    /// A stamped batch still reads back (CRC valid) and carries the producer's fields.
    #[test]
    fn stamped_batches_carry_the_producer_and_a_valid_crc() {
        use rskafka::protocol::record::RecordBatch;
        use rskafka::protocol::traits::ReadType;
        let mut builder = BatchBuilder::new();
        builder.push(&event(1));
        builder.push(&event(2));
        let mut batch = builder.finish(CompressionCodec::Zstd).unwrap();
        for (id, epoch, seq) in [(4000, 0, 0), (4001, 7, i32::MAX - 1)] {
            stamp(
                &mut batch.bytes,
                Stamp {
                    producer_id: id,
                    producer_epoch: epoch,
                    base_sequence: seq,
                },
            );
            let read = RecordBatch::read(&mut std::io::Cursor::new(&batch.bytes)).unwrap();
            assert_eq!(
                (read.producer_id, read.producer_epoch, read.base_sequence),
                (id, epoch, seq)
            );
        }
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        assert_eq!(next_sequence(0, 10), 10);
        assert_eq!(next_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(next_sequence(i32::MAX - 1, 2), 0);
        assert_eq!(next_sequence(i32::MAX, 5), 4);
    }

    #[test]
    fn varint_lengths_match_the_bytes_written() {
        for value in [
            0,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            8191,
            8192,
            i32::MAX as i64,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
        let mut out = Vec::new();
        put_varint(&mut out, -1);
        assert_eq!(out, [1], "zigzag: -1 is 1");
        put_varint(&mut out, 300);
        assert_eq!(out[1..], [0xd8, 0x04], "zigzag: 300 is 600 = d8 04");
    }

    /// rskafka's reader (which checks the CRC) decodes the batch we wrote to the same
    /// records: header fields, framing and every codec's compression follow Kafka's
    /// format. The broker tests check the same against Kafka itself.
    #[test]
    fn rskafka_reads_back_what_we_framed_with_every_codec() {
        use rskafka::protocol::record::{ControlBatchOrRecords, RecordBatch};
        use rskafka::protocol::traits::ReadType;
        for codec in CompressionCodec::ALL {
            let mut builder = BatchBuilder::new();
            for round in 0..2 {
                // Timestamps rise then fall, so the largest is neither first nor last.
                let events: Vec<_> = (0..50)
                    .map(|n: i64| event(25 - (n - 25).abs() + round))
                    .collect();
                let max = events.iter().map(|e| e.timestamp_ms).max().unwrap();
                assert!(max > events[0].timestamp_ms && max > events[49].timestamp_ms);
                for e in &events {
                    builder.push(e);
                }
                let batch = builder.finish(codec).unwrap();
                assert!(builder.is_empty());
                assert_eq!(batch.records, 50);
                let read = RecordBatch::read(&mut std::io::Cursor::new(&batch.bytes)).unwrap();
                assert_eq!(read.last_offset_delta, 49, "{codec}");
                assert_eq!(read.first_timestamp, events[0].timestamp_ms, "{codec}");
                assert_eq!(read.max_timestamp, max, "{codec}");
                assert_eq!(read.producer_id, -1, "{codec}");
                assert_eq!(
                    format!("{:?}", read.compression).to_lowercase(),
                    match codec {
                        CompressionCodec::None => "nocompression".to_string(),
                        other => other.to_string(),
                    }
                );
                let ControlBatchOrRecords::Records(records) = read.records else {
                    panic!("{codec}: a control batch");
                };
                assert_eq!(records.len(), 50, "{codec}");
                for (i, (record, event)) in records.iter().zip(&events).enumerate() {
                    assert_eq!(record.offset_delta, i as i32, "{codec}");
                    assert_eq!(
                        read.first_timestamp + record.timestamp_delta,
                        event.timestamp_ms,
                        "{codec}"
                    );
                    assert_eq!(record.key.as_deref(), Some(&event.key[..]), "{codec}");
                    assert_eq!(record.value.as_deref(), Some(&event.value[..]), "{codec}");
                    assert_eq!(record.headers.len(), 1, "{codec}");
                    assert_eq!(record.headers[0].key, "event-type", "{codec}");
                    assert_eq!(record.headers[0].value, b"USER_LOGIN", "{codec}");
                }
            }
        }
    }
}
