//! A TCP proxy for network-fault tests: listens on 127.0.0.1:<port>, forwards every
//! connection to a broker, and injects faults on command. The broker advertises the
//! proxy's port (scripts/kafka.sh `KAFKA_ADVERTISED_PORT`), so every connection the
//! producer opens after bootstrap goes through here.
//!
//! It reads Kafka's framing (a 4-byte big-endian size before each request and response)
//! so that faults act on whole requests: dropping one leaves the stream decodable, as a
//! lost request on a live connection would, and a reset can be aimed exactly between a
//! produce request reaching the broker and its response reaching the client.
//!
//! ```text
//! producer ──▶ 127.0.0.1:port ──requests (Forward | Stall | DropRequests)──▶ broker
//!          ◀──                ◀──responses (Forward | Stall) ──────────────
//!          reset_all: every connection closed with RST (SO_LINGER 0), both sides
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Frames larger than this are not Kafka (the broker's socket.request.max.bytes is
/// 100 MiB); the connection is closed.
const MAX_FRAME_BYTES: usize = 128 << 20;

/// Kafka's api key of Produce requests.
const PRODUCE_API_KEY: i16 = 0;

/// What the proxy does with the bytes of every open and future connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pass everything through.
    Forward,
    /// Forward nothing in either direction; bytes wait (in the proxy and the kernel
    /// buffers) and flow again, in order, when the mode changes.
    Stall,
    /// One-way blackhole: requests from the client are read and discarded, responses
    /// still flow. The connection stays open; dropped requests are never answered.
    DropRequests,
}

/// Counters of what the proxy did, for assertions and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub connections: u64,
    pub requests_forwarded: u64,
    pub requests_dropped: u64,
    /// Requests that arrived while the proxy was stalled and waited for the stall's end.
    pub requests_stalled: u64,
    /// Times every connection was reset.
    pub resets: u64,
    /// Produce responses that never reached the client because the armed reset fired.
    pub responses_swallowed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    requests_forwarded: AtomicU64,
    requests_dropped: AtomicU64,
    requests_stalled: AtomicU64,
    resets: AtomicU64,
    responses_swallowed: AtomicU64,
}

struct Shared {
    upstream: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Bumped by a reset: every connection open at that moment closes with RST.
    reset_generation: watch::Sender<u64>,
    /// Set by `reset_all_after_next_produce`; taken by the first produce request
    /// forwarded afterwards.
    reset_armed: AtomicBool,
    counters: Counters,
}

impl Shared {
    fn reset_all(&self) {
        self.counters.resets.fetch_add(1, Ordering::SeqCst);
        self.reset_generation.send_modify(|g| *g += 1);
    }
}

/// A running proxy; stops listening and resets every connection when dropped.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on 127.0.0.1:`listen_port` and forwards to 127.0.0.1:`upstream_port`.
    pub async fn start(listen_port: u16, upstream_port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", listen_port))
            .await
            .unwrap_or_else(|e| panic!("proxy cannot listen on 127.0.0.1:{listen_port}: {e}"));
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            mode: watch::Sender::new(Mode::Forward),
            reset_generation: watch::Sender::new(0),
            reset_armed: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Self {
            port: listen_port,
            shared,
            accept_task,
        }
    }

    /// `localhost:<port>`, as the broker advertises it.
    pub fn address(&self) -> String {
        format!("localhost:{}", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    /// Closes every open connection now, with RST on both sides.
    pub fn reset_all(&self) {
        self.shared.reset_all();
    }

    /// Arms a reset aimed mid-request: the next produce request is forwarded, and when
    /// the broker's response to it arrives (so the batch is written), the response is
    /// thrown away and every connection is reset. The client never learns the outcome,
    /// retries, and the broker holds the batch twice. `stats().resets` grows when it fired.
    pub fn reset_all_after_next_produce(&self) {
        self.shared.reset_armed.store(true, Ordering::SeqCst);
    }

    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        ProxyStats {
            connections: c.connections.load(Ordering::SeqCst),
            requests_forwarded: c.requests_forwarded.load(Ordering::SeqCst),
            requests_dropped: c.requests_dropped.load(Ordering::SeqCst),
            requests_stalled: c.requests_stalled.load(Ordering::SeqCst),
            resets: c.resets.load(Ordering::SeqCst),
            responses_swallowed: c.responses_swallowed.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.shared.reset_all();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        shared.counters.connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(serve(client, Arc::clone(&shared)));
    }
}

/// Forwards one connection until either side closes or a reset; then drops both
/// sockets, which with SO_LINGER 0 sends RST.
async fn serve(mut client: TcpStream, shared: Arc<Shared>) {
    let mut resets = shared.reset_generation.subscribe();
    let Ok(mut upstream) = TcpStream::connect(shared.upstream).await else {
        let _ = client.set_zero_linger();
        return;
    };
    for s in [&client, &upstream] {
        let _ = s.set_nodelay(true);
        let _ = s.set_zero_linger();
    }
    // Correlation id of the produce request whose response triggers the armed reset.
    let swallow: std::sync::Mutex<Option<i32>> = std::sync::Mutex::new(None);
    // Borrowed halves: nothing half-closes the sockets when a pump ends.
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    tokio::select! {
        _ = pump_requests(&mut client_read, &mut upstream_write, &shared, &swallow) => {}
        _ = pump_responses(&mut upstream_read, &mut client_write, &shared, &swallow) => {}
        _ = resets.changed() => {}
    }
}

/// Reads one length-prefixed Kafka frame (prefix included).
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    r.read_exact(&mut size).await?;
    let n = i32::from_be_bytes(size);
    if n < 0 || n as usize > MAX_FRAME_BYTES {
        return Err(std::io::Error::other(format!(
            "not a Kafka frame: size {n}"
        )));
    }
    let mut frame = vec![0u8; 4 + n as usize];
    frame[..4].copy_from_slice(&size);
    r.read_exact(&mut frame[4..]).await?;
    Ok(frame)
}

/// Waits while the proxy is stalled; returns the mode it left the stall for.
async fn unstalled(mode: &mut watch::Receiver<Mode>) -> Mode {
    match mode.wait_for(|m| *m != Mode::Stall).await {
        Ok(m) => *m,
        Err(_) => Mode::Forward,
    }
}

async fn pump_requests<R, W>(
    r: &mut R,
    w: &mut W,
    shared: &Shared,
    swallow: &std::sync::Mutex<Option<i32>>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut mode = shared.mode.subscribe();
    loop {
        let frame = read_frame(r).await?;
        if *mode.borrow_and_update() == Mode::Stall {
            shared
                .counters
                .requests_stalled
                .fetch_add(1, Ordering::SeqCst);
        }
        if unstalled(&mut mode).await == Mode::DropRequests {
            shared
                .counters
                .requests_dropped
                .fetch_add(1, Ordering::SeqCst);
            continue;
        }
        // Request header: size, api_key i16, api_version i16, correlation_id i32.
        if frame.len() >= 12 {
            let api_key = i16::from_be_bytes([frame[4], frame[5]]);
            if api_key == PRODUCE_API_KEY && shared.reset_armed.swap(false, Ordering::SeqCst) {
                let correlation = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
                *swallow.lock().unwrap() = Some(correlation);
            }
        }
        w.write_all(&frame).await?;
        shared
            .counters
            .requests_forwarded
            .fetch_add(1, Ordering::SeqCst);
    }
}

async fn pump_responses<R, W>(
    r: &mut R,
    w: &mut W,
    shared: &Shared,
    swallow: &std::sync::Mutex<Option<i32>>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut mode = shared.mode.subscribe();
    loop {
        let frame = read_frame(r).await?;
        unstalled(&mut mode).await;
        // Response header: size, correlation_id i32.
        if frame.len() >= 8 {
            let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            let mut armed = swallow.lock().unwrap();
            if *armed == Some(correlation) {
                *armed = None;
                shared
                    .counters
                    .responses_swallowed
                    .fetch_add(1, Ordering::SeqCst);
                shared.reset_all();
                return Ok(());
            }
        }
        w.write_all(&frame).await?;
    }
}
