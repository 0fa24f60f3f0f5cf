//! Where `produce` gets its events: the seeded generator or a JSON-lines file/stdin.
//! Runs on its own thread (parsing and generating cost CPU, and reading stdin blocks),
//! and feeds the produce loop with chunks through a bounded channel.

use std::io::BufRead;

use kafka_producer::event::UserEvent;
use kafka_producer::generator::Generator;
use kafka_producer::json_lines::{JsonLinesReader, LineError};
use tokio::sync::mpsc;

/// Events handed over per channel message: amortises the hand-off cost.
const CHUNK: usize = 1024;
/// Chunks buffered between the source thread and the produce loop.
const CHUNKS_AHEAD: usize = 8;

/// One input item: an event, or a line that could not be used.
pub type Item = Result<UserEvent, LineError>;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
            let chunk = (0..n).map(|_| Ok(generator.next_event(now))).collect();
            remaining -= n;
            if tx.blocking_send(chunk).is_err() {
                return; // the produce loop stopped
            }
        }
    });
    rx
}

/// Starts the JSON-lines reader thread over an opened input.
pub fn json_lines(input: Box<dyn BufRead + Send>) -> mpsc::Receiver<Vec<Item>> {
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    std::thread::spawn(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        for item in JsonLinesReader::new(input) {
            chunk.push(item);
            if chunk.len() == CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                if tx.blocking_send(full).is_err() {
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
    });
    rx
}
