//! Parses a file of JSON lines with `JsonLinesReader`, as `produce --input` does, and
//! nothing else: no channel, no producer, no broker. For counting what parsing costs per
//! line (`perf stat -e instructions:u`, `valgrind --tool=callgrind`).
//!
//! ```text
//! cargo run --release --example json_lines_parse -- write FILE [LINES]   # generated events
//! cargo run --release --example json_lines_parse -- read FILE            # parse, print counts
//! ```
//!
//! `write` makes the lines `vs-librdkafka gen-json` makes (same generator, seed 1, 100,000
//! users, `write_event_json`), without building the librdkafka benchmark.

use std::io::Write;

use kafka_producer::generator::Generator;
use kafka_producer::json_lines::{JsonLinesReader, ParseOptions, write_event_json};

/// The product binary's allocator (src/main.rs): parsing allocates every string it reads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["write", path] => write(path, 100_000),
        ["write", path, lines] => write(path, lines.parse().expect("LINES is a number")),
        ["read", path] => read(path),
        _ => {
            eprintln!("usage: json_lines_parse write FILE [LINES] | read FILE");
            std::process::exit(2);
        }
    }
}

fn write(path: &str, lines: u64) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut generator = Generator::new(1, 100_000);
    let mut line = Vec::with_capacity(512);
    for i in 0..lines {
        let event = generator.next_event(1_764_000_000_000 + (i / 1000) as i64);
        line.clear();
        write_event_json(&event, &mut line).expect("a generated event is writable");
        line.push(b'\n');
        out.write_all(&line).expect("write the lines");
    }
    out.flush().expect("write the lines");
}

fn read(path: &str) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (mut events, mut errors, mut bytes) = (0u64, 0u64, 0usize);
    for item in JsonLinesReader::new(file, ParseOptions::default()) {
        match item {
            // Dropped here, as the producer drops each event once it is encoded.
            Ok(event) => {
                events += 1;
                bytes += event.user_id.len();
            }
            Err(_) => errors += 1,
        }
    }
    println!("{events} events, {errors} bad lines ({bytes} bytes of user ids)");
}
