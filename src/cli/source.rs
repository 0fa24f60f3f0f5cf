//! Where `produce` gets its events: the seeded generator or JSON lines from a file/stdin.
//! Runs on its own thread (parsing, generating and encoding cost CPU, and reading stdin
//! blocks), and feeds the produce loop with encoded events in chunks, in input order,
//! through a bounded channel: the loop only queues them.

use std::fs::File;
use std::io::Read;

use kafka_producer::generator::Generator;
use kafka_producer::json_lines::{JsonLinesReader, LineError, ParseOptions, system_now_ms};
use kafka_producer::record::EncodedEvent;
use tokio::sync::mpsc;

/// Events handed over per channel message: amortises the hand-off cost.
const CHUNK: usize = 1024;
/// Chunks buffered between the source thread and the produce loop: with [`CHUNK`], what
/// the source may run ahead of the producer's own (bounded) buffer.
const CHUNKS_AHEAD: usize = 8;

/// One input item: an event, encoded here so the event is freed on the thread that made
/// it, or a line that could not be used.
pub type Item = Result<EncodedEvent, LineError>;

/// Where JSON lines come from.
pub enum Input {
    /// The process's standard input, read in large blocks like a file.
    Stdin,
    /// An opened file.
    File(File),
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    system_now_ms()
}

/// Starts the generator thread: `count` events (None = until the receiver is dropped).
pub fn generator(seed: u64, users: u64, count: Option<u64>) -> mpsc::Receiver<Vec<Item>> {
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    std::thread::spawn(move || {
        let mut generator = Generator::new(seed, users);
        let mut remaining = count.unwrap_or(u64::MAX);
        while remaining > 0 {
            let n = remaining.min(CHUNK as u64);
            let now = now_ms();
            let chunk = (0..n)
                .map(|_| Ok(EncodedEvent::from_event(generator.next_event(now))))
                .collect();
            remaining -= n;
            if tx.blocking_send(chunk).is_err() {
                return; // the produce loop stopped
            }
        }
    });
    rx
}

/// Starts the thread that reads and parses JSON lines; it ends at the end of the input or
/// when the receiver is dropped.
pub fn json_lines(input: Input, options: ParseOptions) -> mpsc::Receiver<Vec<Item>> {
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    std::thread::spawn(move || match input {
        // The lock bypasses stdin's own 8 KiB buffer for our large reads, and is taken
        // once rather than per read.
        Input::Stdin => send_lines(std::io::stdin().lock(), options, &tx),
        Input::File(file) => send_lines(file, options, &tx),
    });
    rx
}

fn send_lines(input: impl Read, options: ParseOptions, tx: &mpsc::Sender<Vec<Item>>) {
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut lines = JsonLinesReader::new(input, options);
    while let Some(item) = lines.next() {
        chunk.push(item.map(EncodedEvent::from_event));
        // A full chunk goes; so does a partial one before a read that may wait (a live
        // pipe's events must not sit here until more arrive).
        if chunk.len() == CHUNK || !lines.has_buffered_line() {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if tx.blocking_send(full).is_err() {
                return; // the produce loop stopped
            }
        }
    }
    if !chunk.is_empty() {
        let _ = tx.blocking_send(chunk);
    }
}
