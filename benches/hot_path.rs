//! The floor: what one core can do on the producer's hot path with no network, no
//! channels and no tasks. `cargo bench --bench hot_path` (or `make bench-floor`).
//!
//! Per event: prost-encode the `UserEvent` and build its `rskafka::record::Record`
//! (`record::to_record`: key, value, `event-type` header), size it
//! (`record::encoded_size`), pick its partition (`Partitioner::Murmur2`, 3 partitions);
//! per batch of about 10,000 records: write the Kafka v2 record framing of every record
//! (length, attributes, timestamp/offset deltas, key, value, header, as varints, exactly
//! the bytes a v2 batch compresses; the 61-byte batch header is left out, it is not
//! compressed) into one buffer, and zstd-compress that buffer at level 3 (what rskafka's
//! `Compression::Zstd` uses: zstd level 0 = the default, 3).
//!
//! A second variant does the same without rskafka's `Record` (framing straight from the
//! engine's `EncodedEvent`), and the parts are measured apart: prost alone, `to_record`
//! alone, framing alone, zstd alone.
//!
//! Criterion runs on one thread, so elements/s here is events/s per core. The allocator is
//! mimalloc, as in the product binary. The sizes
//! (protobuf, framed, zstd, JSON) are printed once to stderr before the measurements.

use std::hint::black_box;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_producer::event::UserEvent;
use kafka_producer::generator::Generator;
use kafka_producer::partitioner::Partitioner;
use kafka_producer::record::{EVENT_TYPE_HEADER, EncodedEvent, encoded_size, to_record};
use prost::Message;
use rskafka::record::Record;

/// The product binary's allocator (src/main.rs), so the floor is measured as shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Partitions the events are spread over, as the 3-partition benchmark topic.
const PARTITIONS: u32 = 3;
/// Records per batch: `batch.num.messages` = 10,000.
const BATCH_RECORDS: usize = 10_000;
/// Events per iteration: enough for one full batch per partition on average.
const EVENTS: usize = BATCH_RECORDS * PARTITIONS as usize;
/// rskafka's zstd level (its `Encoder::new(writer, 0)`: 0 means zstd's default, 3).
const ZSTD_LEVEL: i32 = 3;

fn events() -> Vec<UserEvent> {
    let mut generator = Generator::new(1, 100_000);
    (0..EVENTS)
        .map(|i| generator.next_event(1_764_000_000_000 + (i / 1000) as i64))
        .collect()
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64; // zigzag
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_varint(out, -1),
    }
}

/// Appends the Kafka v2 framing of `records` (the part of a record batch that gets
/// compressed) to `out`; the body of each record goes through `scratch` to learn its
/// length, without a per-record allocation.
fn frame_batch(records: &[Record], out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    let first_ts = records
        .first()
        .map_or(0, |r| r.timestamp.timestamp_millis());
    for (offset_delta, record) in records.iter().enumerate() {
        scratch.clear();
        scratch.push(0); // attributes
        put_varint(scratch, record.timestamp.timestamp_millis() - first_ts);
        put_varint(scratch, offset_delta as i64);
        put_bytes(scratch, record.key.as_deref());
        put_bytes(scratch, record.value.as_deref());
        put_varint(scratch, record.headers.len() as i64);
        for (key, value) in &record.headers {
            put_bytes(scratch, Some(key.as_bytes()));
            put_bytes(scratch, Some(value.as_slice()));
        }
        put_varint(out, scratch.len() as i64);
        out.extend_from_slice(scratch);
    }
}

/// The whole hot path for `events`: record, size, partition, batch, frame, compress.
/// Returns the compressed bytes, so nothing is optimised away.
fn hot_path(events: &[UserEvent]) -> usize {
    let keyless = AtomicU32::new(0);
    let mut batches: Vec<Vec<Record>> = (0..PARTITIONS)
        .map(|_| Vec::with_capacity(BATCH_RECORDS))
        .collect();
    let mut framed = Vec::with_capacity(2 << 20);
    let mut scratch = Vec::with_capacity(256);
    let mut compressed = 0;
    let mut bytes = 0;
    let mut close = |batch: &mut Vec<Record>, framed: &mut Vec<u8>| {
        framed.clear();
        frame_batch(batch, framed, &mut scratch);
        compressed += zstd::bulk::compress(framed, ZSTD_LEVEL)
            .expect("zstd compresses")
            .len();
        batch.clear();
    };
    for event in events {
        let record = to_record(event);
        bytes += encoded_size(&record);
        let key = record.key.as_deref().unwrap_or_default();
        let p = Partitioner::Murmur2.partition(key, PARTITIONS, &keyless) as usize;
        batches[p].push(record);
        if batches[p].len() >= BATCH_RECORDS {
            close(&mut batches[p], &mut framed);
        }
    }
    for batch in &mut batches {
        if !batch.is_empty() {
            close(batch, &mut framed);
        }
    }
    black_box(bytes);
    compressed
}

/// The same work without rskafka's `Record` (no header map, no chrono timestamp): each
/// event is kept as the engine's `EncodedEvent` (key and value on the heap) and framed
/// straight from it. How much the `Record` representation itself costs.
fn hot_path_encoded(events: &[UserEvent]) -> usize {
    let keyless = AtomicU32::new(0);
    let mut batches: Vec<Vec<EncodedEvent>> = (0..PARTITIONS)
        .map(|_| Vec::with_capacity(BATCH_RECORDS))
        .collect();
    let mut framed = Vec::with_capacity(2 << 20);
    let mut scratch = Vec::with_capacity(256);
    let mut compressed = 0;
    let mut close = |batch: &mut Vec<EncodedEvent>, framed: &mut Vec<u8>| {
        framed.clear();
        let first_ts = batch.first().map_or(0, |e| e.timestamp_ms);
        for (offset_delta, e) in batch.iter().enumerate() {
            scratch.clear();
            scratch.push(0); // attributes
            put_varint(&mut scratch, e.timestamp_ms - first_ts);
            put_varint(&mut scratch, offset_delta as i64);
            put_bytes(&mut scratch, Some(&e.key));
            put_bytes(&mut scratch, Some(&e.value));
            put_varint(&mut scratch, 1);
            put_bytes(&mut scratch, Some(EVENT_TYPE_HEADER.as_bytes()));
            put_bytes(&mut scratch, Some(e.event_type.as_bytes()));
            put_varint(framed, scratch.len() as i64);
            framed.extend_from_slice(&scratch);
        }
        compressed += zstd::bulk::compress(framed, ZSTD_LEVEL)
            .expect("zstd compresses")
            .len();
        batch.clear();
    };
    for event in events {
        let encoded = EncodedEvent::new(event);
        black_box(encoded.size());
        let p = Partitioner::Murmur2.partition(&encoded.key, PARTITIONS, &keyless) as usize;
        batches[p].push(encoded);
        if batches[p].len() >= BATCH_RECORDS {
            close(&mut batches[p], &mut framed);
        }
    }
    for batch in &mut batches {
        if !batch.is_empty() {
            close(batch, &mut framed);
        }
    }
    compressed
}

/// Prints bytes per event in each form once, for BENCHMARKS.md.
fn print_sizes(events: &[UserEvent]) {
    let n = events.len() as f64;
    let protobuf: usize = events.iter().map(|e| e.encoded_len()).sum();
    let records: Vec<Record> = events.iter().map(to_record).collect();
    let mut framed_total = 0;
    let mut zstd_total = 0;
    let (mut framed, mut scratch) = (Vec::new(), Vec::new());
    for chunk in records.chunks(BATCH_RECORDS) {
        framed.clear();
        frame_batch(chunk, &mut framed, &mut scratch);
        framed_total += framed.len();
        zstd_total += zstd::bulk::compress(&framed, ZSTD_LEVEL).unwrap().len();
    }
    let json: Vec<Vec<u8>> = events
        .iter()
        .map(|e| serde_json::to_vec(&kafka_producer::json_lines::event_to_json(e)).unwrap())
        .collect();
    let json_total: usize = json.iter().map(|j| j.len() + 1).sum(); // + newline
    let json_zstd: usize = json
        .chunks(BATCH_RECORDS)
        .map(|c| {
            zstd::bulk::compress(&c.join(&b"\n"[..]), ZSTD_LEVEL)
                .unwrap()
                .len()
        })
        .sum();
    eprintln!(
        "hot_path sizes over {} events, batches of {BATCH_RECORDS}: protobuf {:.1} B, framed record {:.1} B, \
         zstd-{ZSTD_LEVEL} framed {:.1} B per event; JSON line {:.1} B, zstd-{ZSTD_LEVEL} JSON {:.1} B per event",
        events.len(),
        protobuf as f64 / n,
        framed_total as f64 / n,
        zstd_total as f64 / n,
        json_total as f64 / n,
        json_zstd as f64 / n,
    );
}

fn bench(c: &mut Criterion) {
    let events = events();
    print_sizes(&events);
    let records: Vec<Record> = events.iter().map(to_record).collect();

    let mut group = c.benchmark_group("hot_path");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(EVENTS as u64));

    group.bench_function("full: to_record+partition+frame+zstd", |b| {
        b.iter(|| hot_path(black_box(&events)))
    });
    group.bench_function(
        "full without rskafka Record: EncodedEvent+partition+frame+zstd",
        |b| b.iter(|| hot_path_encoded(black_box(&events))),
    );
    group.bench_function("prost encode_to_vec", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| black_box(e.encode_to_vec()).len())
                .sum::<usize>()
        })
    });
    group.bench_function("to_record (encode + key + header map)", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| encoded_size(&black_box(to_record(e))))
                .sum::<usize>()
        })
    });
    group.bench_function("frame only", |b| {
        let (mut framed, mut scratch) = (Vec::with_capacity(2 << 20), Vec::new());
        b.iter(|| {
            let mut total = 0;
            for chunk in records.chunks(BATCH_RECORDS) {
                framed.clear();
                frame_batch(chunk, &mut framed, &mut scratch);
                total += framed.len();
            }
            total
        })
    });
    let framed_batches: Vec<Vec<u8>> = records
        .chunks(BATCH_RECORDS)
        .map(|chunk| {
            let mut framed = Vec::new();
            frame_batch(chunk, &mut framed, &mut Vec::new());
            framed
        })
        .collect();
    group.bench_function("zstd-3 only", |b| {
        b.iter(|| {
            framed_batches
                .iter()
                .map(|f| zstd::bulk::compress(f, ZSTD_LEVEL).unwrap().len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
