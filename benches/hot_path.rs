//! The floor: what one core can do on the producer's hot path with no network, no
//! channels and no tasks. `cargo bench --bench hot_path` (or `make bench-floor`).
//!
//! The same code the engine runs, minus the tasks: per event, `EncodedEvent::new`
//! (prost-encode the `UserEvent`, copy the `user_id` key), size it, pick its partition
//! (`Partitioner::Murmur2`, 3 partitions) and frame it into that partition's open batch
//! (`BatchBuilder::push`); per batch of 10,000 records, `BatchBuilder::finish`: zstd at
//! level 3 with a fresh context per batch, the 61-byte header and the CRC.
//! The parts are measured apart too: prost alone, `EncodedEvent::new` alone, framing
//! alone, finishing (compression) alone.
//!
//! Criterion runs on one thread, so elements/s here is events/s per core. The allocator is
//! mimalloc, as in the product binary. The sizes (protobuf, framed, zstd batch, JSON) are
//! printed once to stderr before the measurements.

use std::hint::black_box;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_producer::compression;
use kafka_producer::config::CompressionCodec;
use kafka_producer::event::UserEvent;
use kafka_producer::generator::Generator;
use kafka_producer::partitioner::Partitioner;
use kafka_producer::record::EncodedEvent;
use kafka_producer::record_batch::BatchBuilder;
use prost::Message;

/// The product binary's allocator (src/main.rs), so the floor is measured as shipped.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Partitions the events are spread over, as the 3-partition benchmark topic.
const PARTITIONS: u32 = 3;
/// Records per batch: `batch.num.messages` = 10,000.
const BATCH_RECORDS: usize = 10_000;
/// Events per iteration: enough for one full batch per partition on average.
const EVENTS: usize = BATCH_RECORDS * PARTITIONS as usize;

fn events() -> Vec<UserEvent> {
    let mut generator = Generator::new(1, 100_000);
    (0..EVENTS)
        .map(|i| generator.next_event(1_764_000_000_000 + (i / 1000) as i64))
        .collect()
}

/// One partition's open batch, as a partition worker has it.
struct Partition {
    builder: BatchBuilder,
}

impl Partition {
    /// Closes the open batch; returns its size on the wire.
    fn finish(&mut self) -> usize {
        let batch = self.builder.finish(CompressionCodec::Zstd).unwrap();
        batch.bytes.len()
    }
}

/// The whole hot path for `events`: encode, size, partition, frame, compress.
/// Returns the batch bytes, so nothing is optimised away.
fn hot_path(events: &[UserEvent], partitions: &mut [Partition]) -> usize {
    let keyless = AtomicU32::new(0);
    let mut wire = 0;
    let mut sized = 0;
    for event in events {
        let encoded = EncodedEvent::new(event);
        sized += encoded.size();
        let p = Partitioner::Murmur2.partition(&encoded.key, PARTITIONS, &keyless) as usize;
        let partition = &mut partitions[p];
        partition.builder.push(&encoded);
        if partition.builder.len() >= BATCH_RECORDS {
            wire += partition.finish();
        }
    }
    for partition in partitions.iter_mut().filter(|p| !p.builder.is_empty()) {
        wire += partition.finish();
    }
    black_box(sized);
    wire
}

fn partitions() -> Vec<Partition> {
    (0..PARTITIONS)
        .map(|_| Partition {
            builder: BatchBuilder::new(),
        })
        .collect()
}

/// Prints bytes per event in each form once, for BENCHMARKS.md.
fn print_sizes(events: &[UserEvent]) {
    let n = events.len() as f64;
    let protobuf: usize = events.iter().map(|e| e.encoded_len()).sum();
    let encoded: Vec<EncodedEvent> = events.iter().map(EncodedEvent::new).collect();
    let mut framed_total = 0;
    let mut batch_total = 0;
    let mut builder = BatchBuilder::new();
    for chunk in encoded.chunks(BATCH_RECORDS) {
        chunk.iter().for_each(|e| builder.push(e));
        framed_total += builder.finish(CompressionCodec::None).unwrap().bytes.len();
        chunk.iter().for_each(|e| builder.push(e));
        batch_total += builder.finish(CompressionCodec::Zstd).unwrap().bytes.len();
    }
    let json: Vec<Vec<u8>> = events
        .iter()
        .map(|e| serde_json::to_vec(&kafka_producer::json_lines::event_to_json(e)).unwrap())
        .collect();
    let json_total: usize = json.iter().map(|j| j.len() + 1).sum(); // + newline
    let json_zstd: usize = json
        .chunks(BATCH_RECORDS)
        .map(|c| zstd::bulk::compress(&c.join(&b"\n"[..]), 3).unwrap().len())
        .sum();
    eprintln!(
        "hot_path sizes over {} events, batches of {BATCH_RECORDS}: protobuf {:.1} B, uncompressed batch {:.1} B, \
         zstd-3 batch {:.1} B per event; JSON line {:.1} B, zstd-3 JSON {:.1} B per event",
        events.len(),
        protobuf as f64 / n,
        framed_total as f64 / n,
        batch_total as f64 / n,
        json_total as f64 / n,
        json_zstd as f64 / n,
    );
}

fn bench(c: &mut Criterion) {
    let events = events();
    print_sizes(&events);
    let encoded: Vec<EncodedEvent> = events.iter().map(EncodedEvent::new).collect();

    let mut group = c.benchmark_group("hot_path");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(EVENTS as u64));

    let mut state = partitions();
    group.bench_function("full: encode+partition+frame+zstd", |b| {
        b.iter(|| hot_path(black_box(&events), &mut state))
    });
    group.bench_function("prost encode_to_vec", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| black_box(e.encode_to_vec()).len())
                .sum::<usize>()
        })
    });
    group.bench_function("EncodedEvent::new (encode + key)", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| black_box(EncodedEvent::new(e)).size())
                .sum::<usize>()
        })
    });
    let mut builder = BatchBuilder::new();
    group.bench_function("frame only (push + uncompressed finish)", |b| {
        b.iter(|| {
            let mut total = 0;
            for chunk in encoded.chunks(BATCH_RECORDS) {
                chunk.iter().for_each(|e| builder.push(e));
                total += builder.finish(CompressionCodec::None).unwrap().bytes.len();
            }
            total
        })
    });
    let framed: Vec<Vec<u8>> = encoded
        .chunks(BATCH_RECORDS)
        .map(|chunk| {
            chunk.iter().for_each(|e| builder.push(e));
            builder.finish(CompressionCodec::None).unwrap().bytes
        })
        .collect();
    let mut out = Vec::new();
    group.bench_function("zstd-3 only (fresh context per batch)", |b| {
        b.iter(|| {
            framed
                .iter()
                .map(|f| {
                    out.clear();
                    compression::compress(CompressionCodec::Zstd, f, &mut out).unwrap();
                    out.len()
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
