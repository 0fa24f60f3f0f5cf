//! Side-by-side benchmark: the same pre-generated `UserEvent`s produced to Kafka by this
//! project's producer (`ours`), by librdkafka through the `rdkafka` crate (`librdkafka`)
//! or by the pure-Rust krafka client (`krafka`), with the original producer's settings,
//! awaiting every delivery report.
//! Fed a mode and a topic by scripts/bench.sh; prints one JSON line per run.
//!
//! ```text
//! vs-librdkafka <ours|librdkafka|krafka> --topic T [--broker H:P] [--events N] [--users N]
//!               [--seed N] [--rate EVENTS_PER_S] [--message-timeout-ms MS]
//! vs-librdkafka sizes [--events N] [--users N] [--seed N]
//! vs-librdkafka proxy --listen PORT --upstream H:P [--delay-ms MS]
//! vs-librdkafka gen-json --out FILE [--events N] [--users N] [--seed N]
//! vs-librdkafka <librdkafka-json|krafka-json> --topic T --input FILE|- [--broker H:P]
//!               [--events EXPECTED] [--message-timeout-ms MS]
//! vs-librdkafka wait-topic --topic T [--broker H:P]
//! ```
//!
//! `wait-topic` returns once every partition of the topic is served (its leader answers
//! for it: `connect::wait_until_served`, what `produce --create-topic` waits for), so
//! that no side's measurement includes the seconds a broker takes to create a new
//! topic's partition logs, when it refuses writes to them.
//!
//! `gen-json` writes the generator's events as JSON lines in the protobuf JSON mapping
//! (`json_lines::write_event_json`, what `kafka-producer produce --input` reads and
//! `consume` writes), one per line. `librdkafka-json` and `krafka-json` are the peers of
//! `kafka-producer produce --input FILE` (and `--input -`, from a pipe): they read that
//! file (or stdin), parse each line with serde_json into a `#[derive(Deserialize)]` struct,
//! build the prost `UserEvent` from it, encode it and send it keyed by user_id with the
//! same settings as their in-memory modes, as a user of those clients would write it. The
//! clock runs from the first line read to the last delivery report; `--events` is only
//! the expected count (it sizes the latency array).
//!
//! `proxy` runs until killed: a TCP proxy that forwards every byte, each direction, after
//! `--delay-ms` (a link with twice that round trip); scripts/bench.sh puts it in front of
//! a broker that advertises the proxy's port, so every connection goes through it.
//!
//! `sizes` needs no broker: bytes per event as JSON (`json_lines::event_to_json`) and as
//! protobuf, and JSON compressed with zstd-3 and gzip-6 in 10,000-line blocks, with the
//! compressors' speed on one core.
//!
//! Both modes: generate N events in memory first (not timed), then time from the first
//! send to the last delivery report. Ack latency = from the moment a send was accepted
//! to the moment the harness saw its delivery report; both sides store it in the same
//! lock-free array, so neither pays more for being measured, and both see their reports
//! on a thread of their own (librdkafka's poll thread; for ours and krafka, one collector
//! thread awaiting each partition's delivery futures in order, off the producer's runtime).
//! While the clock runs a sampler thread counts the process's sockets (`max_sockets`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kafka_producer::event::UserEvent;
use kafka_producer::generator::Generator;
use kafka_producer::partitioner::Partitioner;
use kafka_producer::record::{EVENT_TYPE_HEADER, event_type_name};

/// The allocator of the product binary (src/main.rs), so "ours" runs as shipped. It is
/// process-wide, so the librdkafka mode's Rust allocations (prost encoding, the rdkafka
/// crate's per-send topic string) use it too; librdkafka's own C code calls the C library's
/// malloc either way.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Which allocator this build uses, for the JSON line.
const ALLOCATOR_NAME: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system"
};

/// Sends handed to a partition's report collector at a time (ours): small, so a report
/// is never seen much later than it was made.
const REPORT_CHUNK: usize = 32;

/// The pacer sleeps only when it is this far ahead of schedule, on both sides, so both
/// send in the same bursts of about one millisecond's worth of events.
const PACER_SLACK: Duration = Duration::from_millis(1);

/// How long a freshly created topic may take to appear in the metadata (a busy broker
/// holding thousands of partitions has taken more than 15 s).
const TOPIC_WAIT: Duration = Duration::from_secs(60);

/// How long to wait for the last delivery reports, beyond the message timeout, before
/// calling the run failed.
const DRAIN_SLACK: Duration = Duration::from_secs(60);

/// The message timeout of all three sides unless `--message-timeout-ms` says otherwise:
/// the original producer's 5 s (librdkafka `message.timeout.ms`, krafka
/// `delivery_timeout`, ours `message_timeout`).
const DEFAULT_MESSAGE_TIMEOUT: Duration = Duration::from_millis(5_000);

/// krafka's request timeout (and connect timeout, which may not exceed it): 4 s, under
/// its 5 s delivery timeout, which must be at least linger + request timeout.
const KRAFKA_REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// How often the socket sampler counts the process's sockets.
const SOCKET_SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// Samples between two reads of the kernel's TCP tables while the sockets stay the same.
const TCP_TABLES_EVERY: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ours,
    Librdkafka,
    Krafka,
    Sizes,
    Proxy,
    GenJson,
    LibrdkafkaJson,
    KrafkaJson,
    WaitTopic,
}

#[derive(Debug, Clone)]
struct Args {
    mode: Mode,
    broker: String,
    topic: String,
    events: usize,
    users: u64,
    seed: u64,
    rate: Option<f64>,
    /// How long an event may wait for its delivery before it fails, on every side.
    message_timeout: Duration,
    /// `proxy`: the port to listen on (127.0.0.1), where to forward, the one-way delay.
    listen: u16,
    upstream: String,
    delay: Duration,
    /// `gen-json`: the file to write; the JSON modes: the file to read, `-` for stdin.
    input: String,
    out: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: vs-librdkafka <ours|librdkafka|krafka> --topic T [--broker H:P] [--events N] [--users N] [--seed N] [--rate EVENTS_PER_S] [--message-timeout-ms MS]\n       vs-librdkafka sizes [--events N] [--users N] [--seed N]\n       vs-librdkafka proxy --listen PORT --upstream H:P [--delay-ms MS]\n       vs-librdkafka gen-json --out FILE [--events N] [--users N] [--seed N]\n       vs-librdkafka <librdkafka-json|krafka-json> --topic T --input FILE|- [--broker H:P] [--events EXPECTED] [--message-timeout-ms MS]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mode = match it.next().as_deref() {
        Some("ours") => Mode::Ours,
        Some("librdkafka") => Mode::Librdkafka,
        Some("krafka") => Mode::Krafka,
        Some("sizes") => Mode::Sizes,
        Some("proxy") => Mode::Proxy,
        Some("gen-json") => Mode::GenJson,
        Some("librdkafka-json") => Mode::LibrdkafkaJson,
        Some("krafka-json") => Mode::KrafkaJson,
        Some("wait-topic") => Mode::WaitTopic,
        _ => usage(),
    };
    let mut args = Args {
        mode,
        broker: std::env::var("KAFKA_BROKER").unwrap_or_else(|_| "localhost:9092".into()),
        topic: String::new(),
        events: 2_000_000,
        users: 100_000,
        seed: 1,
        rate: None,
        message_timeout: DEFAULT_MESSAGE_TIMEOUT,
        listen: 0,
        upstream: String::new(),
        delay: Duration::from_millis(5),
        input: String::new(),
        out: String::new(),
    };
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        let bad = |what: &str| -> ! {
            eprintln!("invalid value for {flag}: {value} ({what})");
            std::process::exit(2);
        };
        match flag.as_str() {
            "--broker" => args.broker = value,
            "--topic" => args.topic = value,
            "--events" => args.events = value.parse().unwrap_or_else(|_| bad("a count")),
            "--users" => args.users = value.parse().unwrap_or_else(|_| bad("a count")),
            "--seed" => args.seed = value.parse().unwrap_or_else(|_| bad("a number")),
            "--rate" => {
                let rate: f64 = value.parse().unwrap_or_else(|_| bad("events per second"));
                if !(rate > 0.0 && rate.is_finite()) {
                    bad("must be > 0");
                }
                args.rate = Some(rate);
            }
            "--message-timeout-ms" => {
                let ms: u64 = value.parse().unwrap_or_else(|_| bad("milliseconds"));
                if ms == 0 {
                    bad("must be > 0");
                }
                args.message_timeout = Duration::from_millis(ms);
            }
            "--listen" => args.listen = value.parse().unwrap_or_else(|_| bad("a port")),
            "--upstream" => args.upstream = value,
            "--input" => args.input = value,
            "--out" => args.out = value,
            "--delay-ms" => {
                args.delay =
                    Duration::from_millis(value.parse().unwrap_or_else(|_| bad("milliseconds")))
            }
            _ => usage(),
        }
    }
    match args.mode {
        Mode::Sizes => {}
        Mode::Proxy if args.listen == 0 || args.upstream.is_empty() => usage(),
        Mode::Proxy => {}
        Mode::GenJson if args.out.is_empty() => usage(),
        Mode::GenJson => {}
        Mode::LibrdkafkaJson | Mode::KrafkaJson if args.input.is_empty() => usage(),
        _ if args.topic.is_empty() => usage(),
        _ => {}
    }
    args
}

/// A duration in milliseconds from the environment, if set.
fn env_ms(name: &str) -> Option<Duration> {
    let value = std::env::var(name).ok()?;
    let ms: u64 = value
        .parse()
        .unwrap_or_else(|_| panic!("{name} must be milliseconds (got {value:?})"));
    Some(Duration::from_millis(ms))
}

/// Whether the librdkafka side runs idempotent (BENCH_LIBRDKAFKA_IDEMPOTENCE=1; off by
/// default, the original producer's setting).
fn librdkafka_idempotence() -> bool {
    env_count("BENCH_LIBRDKAFKA_IDEMPOTENCE").is_some_and(|on| on != 0)
}

/// A count from the environment, if set.
fn env_count(name: &str) -> Option<usize> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a count (got {value:?})")),
    )
}

/// The events of a run, made before the clock starts.
struct Workload {
    events: Vec<UserEvent>,
    /// Encoded value bytes plus key bytes of all events: what MB/s counts.
    payload_bytes: u64,
}

fn generate(args: &Args) -> Workload {
    use prost::Message;
    let base_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let mut generator = Generator::new(args.seed, args.users);
    let mut payload_bytes = 0u64;
    let events: Vec<UserEvent> = (0..args.events)
        .map(|i| {
            // About 1,000 events per millisecond: realistic, and never far in the future.
            let event = generator.next_event(base_ms + (i / 1000) as i64);
            payload_bytes += (event.encoded_len() + event.user_id.len()) as u64;
            event
        })
        .collect();
    Workload {
        events,
        payload_bytes,
    }
}

/// Ack latencies in microseconds, one slot per delivered event, filled from any thread.
struct Latencies {
    slots: Vec<AtomicU32>,
    next: AtomicUsize,
    failures: AtomicU64,
}

impl Latencies {
    fn new(n: usize) -> Self {
        Self {
            slots: (0..n).map(|_| AtomicU32::new(0)).collect(),
            next: AtomicUsize::new(0),
            failures: AtomicU64::new(0),
        }
    }

    fn record(&self, latency: Duration, ok: bool) {
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.slots.get(i) {
            slot.store(
                latency.as_micros().min(u32::MAX as u128) as u32,
                Ordering::Relaxed,
            );
        }
    }

    fn reported(&self) -> usize {
        self.next.load(Ordering::Acquire)
    }

    /// p50 and p99 in milliseconds.
    fn percentiles(&self) -> (f64, f64) {
        let n = self.reported().min(self.slots.len());
        let mut v: Vec<u32> = self.slots[..n]
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        if v.is_empty() {
            return (0.0, 0.0);
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        (at(0.50), at(0.99))
    }
}

/// Paces sends to `rate` events/s: event i is due at start + i/rate; sleeps only when more
/// than `PACER_SLACK` ahead.
struct Pacer {
    start: Instant,
    rate: f64,
}

impl Pacer {
    /// How long to sleep before sending event `i`, if at all.
    fn delay(&self, i: usize) -> Option<Duration> {
        let due = self.start + Duration::from_secs_f64(i as f64 / self.rate);
        let now = Instant::now();
        (due > now + PACER_SLACK).then(|| due - now)
    }
}

/// User + system CPU time of the whole process so far (all threads).
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A `Vm...:` line of /proc/self/status, in MB.
fn proc_status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb * 1024.0 / 1e6)
}

/// CLOCK_MONOTONIC now, in seconds: the clock of `perf record -k CLOCK_MONOTONIC`.
fn monotonic_s() -> f64 {
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: clock_gettime only writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// What the timed part of a run measured.
struct RunResult {
    wall: Duration,
    cpu: Duration,
    /// The most TCP sockets the process held at once while the clock ran.
    max_sockets: usize,
    extra: String,
    /// The JSON modes: events read (the run's event count) and their value + key bytes.
    events_read: Option<(usize, u64)>,
}

/// Counts the process's TCP sockets every `SOCKET_SAMPLE_EVERY` on a thread of its own,
/// keeping the largest count seen: the connections to brokers (this process opens no
/// other TCP sockets; Unix sockets, which tokio and the allocator may hold, do not count).
struct SocketSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl SocketSampler {
    fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("socket-sampler".into())
            .spawn(move || {
                let mut max = 0;
                // Reading the kernel's TCP tables walks its whole connection hash (6 %
                // of the CPU samples of a 1,000-partition run, taken from the producer
                // and broker measured): read them when the process's sockets changed,
                // and otherwise only every `TCP_TABLES_EVERY` samples (a socket counts
                // once it connects, which changes no inode).
                let mut seen = (std::collections::BTreeSet::new(), 0);
                for sample in 0usize.. {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let inodes = socket_inodes();
                    if inodes != seen.0 || sample % TCP_TABLES_EVERY == 0 {
                        seen.1 = count_tcp(&inodes);
                        seen.0 = inodes;
                    }
                    max = max.max(seen.1);
                    std::thread::sleep(SOCKET_SAMPLE_EVERY);
                }
                max
            })
            .expect("sampler thread starts");
        Self { stop, thread }
    }

    /// The largest number of sockets seen while it ran.
    fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler does not panic")
    }
}

/// The inodes of this process's sockets: its `socket:[inode]` links in /proc/self/fd.
fn socket_inodes() -> std::collections::BTreeSet<u64> {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| {
                    let target = std::fs::read_link(e.path()).ok()?;
                    let target = target.to_str()?;
                    target
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How many of these sockets are TCP: their inodes are in /proc/self/net/tcp or tcp6.
fn count_tcp(inodes: &std::collections::BTreeSet<u64>) -> usize {
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| line.split_whitespace().nth(9)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .filter(|inode| inodes.contains(inode))
        .count()
}

fn main() {
    // As the product binary does with mimalloc (src/main.rs): transparent huge pages
    // off, freed pages returned at once. Same for both modes.
    #[cfg(feature = "mimalloc")]
    kafka_producer::memory::tune_for_mimalloc();
    let args = parse_args();
    if args.mode == Mode::Proxy {
        proxy::run(&args);
    }
    if args.mode == Mode::WaitTopic {
        wait_topic(&args);
        return;
    }
    if args.mode == Mode::GenJson {
        json_input::generate_file(&args);
        return;
    }
    let json_mode = matches!(args.mode, Mode::LibrdkafkaJson | Mode::KrafkaJson);
    let generate_start = Instant::now();
    let workload = if json_mode {
        Workload {
            events: Vec::new(),
            payload_bytes: 0,
        }
    } else {
        generate(&args)
    };
    let generate_s = generate_start.elapsed().as_secs_f64();
    let rss_after_generate_mb = proc_status_mb("VmRSS:");
    if args.mode == Mode::Sizes {
        sizes(&workload);
        return;
    }
    let latencies = Arc::new(Latencies::new(args.events));

    // The timed phase on CLOCK_MONOTONIC, so a profile can be cut to it
    // (`perf record -k CLOCK_MONOTONIC`, then `perf report --time START,END`).
    let phase_start_s = monotonic_s();
    let result = match args.mode {
        Mode::Ours => run_ours(&args, &workload, &latencies),
        Mode::Librdkafka => run_librdkafka(&args, &workload, &latencies),
        Mode::Krafka => run_krafka(&args, &workload, &latencies),
        Mode::LibrdkafkaJson => json_input::run_librdkafka(&args, &latencies),
        Mode::KrafkaJson => json_input::run_krafka(&args, &latencies),
        Mode::Sizes | Mode::Proxy | Mode::GenJson | Mode::WaitTopic => {
            unreachable!("handled above")
        }
    };
    let phase_end_s = monotonic_s();
    let (events, payload_bytes) = result
        .events_read
        .unwrap_or((args.events, workload.payload_bytes));

    let secs = result.wall.as_secs_f64().max(1e-9);
    let reported = latencies.reported();
    let failures = latencies.failures.load(Ordering::Relaxed);
    let delivered = reported as u64 - failures;
    let (p50, p99) = latencies.percentiles();
    let peak_rss_mb = proc_status_mb("VmHWM:");
    println!(
        concat!(
            "{{\"mode\":\"{}\",\"allocator\":\"{}\",\"topic\":\"{}\",\"events\":{},\"delivered\":{},\"failures\":{},",
            "\"unreported\":{},\"rate\":{},\"wall_s\":{:.3},\"events_per_s\":{:.0},\"mb_per_s\":{:.2},",
            "\"ack_p50_ms\":{:.3},\"ack_p99_ms\":{:.3},\"send_cpu_s\":{:.3},\"send_cpu_s_per_m\":{:.3},",
            "\"generate_s\":{:.3},\"rss_after_generate_mb\":{:.1},\"peak_rss_mb\":{:.1},",
            "\"peak_rss_above_events_mb\":{:.1},\"message_timeout_ms\":{},\"max_sockets\":{},",
            "\"phase_monotonic_s\":[{:.6},{:.6}],\"input\":\"{}\"{}}}"
        ),
        match args.mode {
            Mode::Ours => "ours",
            Mode::Librdkafka | Mode::LibrdkafkaJson => "librdkafka",
            Mode::Krafka | Mode::KrafkaJson => "krafka",
            Mode::Sizes | Mode::Proxy | Mode::GenJson | Mode::WaitTopic => {
                unreachable!("handled above")
            }
        },
        ALLOCATOR_NAME,
        args.topic,
        events,
        delivered,
        failures,
        events - reported.min(events),
        args.rate.map_or("null".to_string(), |r| format!("{r}")),
        secs,
        delivered as f64 / secs,
        payload_bytes as f64 / secs / 1e6,
        p50,
        p99,
        result.cpu.as_secs_f64(),
        result.cpu.as_secs_f64() / (events.max(1) as f64 / 1e6),
        generate_s,
        rss_after_generate_mb,
        peak_rss_mb,
        (peak_rss_mb - rss_after_generate_mb).max(0.0),
        args.message_timeout.as_millis(),
        result.max_sockets,
        phase_start_s,
        phase_end_s,
        match args.input.as_str() {
            "" => "memory",
            "-" => "stdin",
            _ => "file",
        },
        result.extra,
    );
    if failures > 0 || reported < events {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------
// ours: kafka_producer::Producer
// ---------------------------------------------------------------------------------------

/// One collector task per partition, awaiting that partition's delivery futures in send
/// order — the order a partition's reports are made in, on every side — so each report is
/// seen when it is made. Futures are handed over in chunks of `REPORT_CHUNK`. Used by ours
/// and krafka; librdkafka reports through its poll thread instead.
struct Collectors<F> {
    senders: Vec<tokio::sync::mpsc::UnboundedSender<Vec<(Instant, F)>>>,
    /// Per partition, the futures not yet handed to its collector.
    chunks: Vec<Vec<(Instant, F)>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<F, T, E> Collectors<F>
where
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn start(
        partitions: usize,
        runtime: &tokio::runtime::Handle,
        latencies: &Arc<Latencies>,
    ) -> Self {
        let mut senders = Vec::with_capacity(partitions);
        let mut tasks = Vec::with_capacity(partitions);
        for _ in 0..partitions {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<(Instant, F)>>();
            let latencies = Arc::clone(latencies);
            tasks.push(runtime.spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    for (accepted_at, report) in chunk {
                        let ok = report.await.is_ok();
                        latencies.record(accepted_at.elapsed(), ok);
                    }
                }
            }));
            senders.push(tx);
        }
        let chunks = (0..partitions)
            .map(|_| Vec::with_capacity(REPORT_CHUNK))
            .collect();
        Self {
            senders,
            chunks,
            tasks,
        }
    }

    fn push(&mut self, partition: usize, accepted_at: Instant, report: F) {
        let chunk = &mut self.chunks[partition];
        chunk.push((accepted_at, report));
        if chunk.len() >= REPORT_CHUNK {
            let full = std::mem::replace(chunk, Vec::with_capacity(REPORT_CHUNK));
            let _ = self.senders[partition].send(full);
        }
    }

    /// Hands every partly filled chunk to its collector (before the pacer sleeps).
    fn flush(&mut self) {
        for (p, chunk) in self.chunks.iter_mut().enumerate() {
            if !chunk.is_empty() {
                let _ = self.senders[p].send(std::mem::take(chunk));
            }
        }
    }

    /// Completes when every report handed over has been seen; panics after `timeout`.
    async fn finish(mut self, timeout: Duration) {
        self.flush();
        drop(self.senders);
        let deadline = tokio::time::Instant::now() + timeout;
        for task in self.tasks {
            tokio::time::timeout_at(deadline, task)
                .await
                .expect("every report arrives within the drain timeout")
                .expect("the collector does not panic");
        }
    }
}

/// The report collectors' runtime: one thread of its own, like librdkafka's poll thread,
/// so they see a report when it is made rather than when the producer's busy runtime
/// gets round to them.
fn collector_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("report-collector")
        .enable_all()
        .build()
        .expect("collector runtime starts")
}

/// `wait-topic`: prints the topic and its partition count once every partition is served.
fn wait_topic(args: &Args) {
    use kafka_producer::config::{self, ConnectionConfig};
    use kafka_producer::connect;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let partitions = runtime.block_on(async {
        let connection = ConnectionConfig {
            brokers: vec![args.broker.clone()],
            ..ConnectionConfig::default()
        };
        let timeout = config::DEFAULT_REQUEST_TIMEOUT;
        let client = connect::connect(&connection, timeout, timeout)
            .await
            .unwrap_or_else(|e| panic!("cannot connect: {e}"));
        connect::wait_until_served(&client, &args.topic, TOPIC_WAIT)
            .await
            .unwrap_or_else(|e| panic!("topic {} is not served: {e}", args.topic))
    });
    println!(
        "{{\"topic\":\"{}\",\"partitions\":{partitions}}}",
        args.topic
    );
}

fn run_ours(args: &Args, workload: &Workload, latencies: &Arc<Latencies>) -> RunResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let collector_runtime = collector_runtime();
    runtime.block_on(async {
        use kafka_producer::config::ConnectionConfig;
        use kafka_producer::{Producer, ProducerConfig};
        let config = ProducerConfig {
            connection: ConnectionConfig {
                brokers: vec![args.broker.clone()],
                ..ConnectionConfig::default()
            },
            topic: args.topic.clone(),
            message_timeout: args.message_timeout,
            // For A/B runs only (BENCHMARKS.md says which): ours with a longer request
            // timeout, a larger record cap on its buffer, another in-flight limit or
            // idempotence off (BENCH_OURS_IDEMPOTENCE=0).
            request_timeout: env_ms("BENCH_OURS_REQUEST_TIMEOUT_MS")
                .unwrap_or(kafka_producer::config::DEFAULT_REQUEST_TIMEOUT),
            buffer_max_records: env_count("BENCH_OURS_BUFFER_RECORDS")
                .unwrap_or(kafka_producer::config::DEFAULT_BUFFER_MAX_RECORDS),
            max_in_flight: env_count("BENCH_OURS_MAX_IN_FLIGHT")
                .unwrap_or(kafka_producer::config::DEFAULT_MAX_IN_FLIGHT),
            idempotence: env_count("BENCH_OURS_IDEMPOTENCE")
                .map_or(kafka_producer::config::DEFAULT_IDEMPOTENCE, |on| on != 0),
            // Everything else is the default, which is the original producer's settings:
            // zstd, 10,000 records / 1,000,000 bytes per batch, linger 5 ms, message
            // timeout 5 s, 1 GiB / 100,000 events buffered, murmur2, acks=all; and the
            // send path's: idempotent, up to 5 requests in flight per broker.
            ..ProducerConfig::default()
        };
        // A topic created a moment ago may not be in the broker's metadata yet.
        let deadline = Instant::now() + TOPIC_WAIT;
        let producer = loop {
            match Producer::connect(config.clone()).await {
                Ok(producer) => break producer,
                Err(e) if Instant::now() >= deadline => panic!("cannot start the producer: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let partitions = producer.partition_count();
        let (request_timeout_ms, buffer_max_records) =
            (config.request_timeout.as_millis(), config.buffer_max_records);

        // BENCH_COLLECTORS=shared puts the collectors on the producer's runtime instead,
        // as an application that spawns its report handling would (see BENCHMARKS.md).
        let shared = std::env::var("BENCH_COLLECTORS").is_ok_and(|v| v == "shared");
        let collector_handle = if shared {
            tokio::runtime::Handle::current()
        } else {
            collector_runtime.handle().clone()
        };
        let mut collectors = Collectors::start(partitions as usize, &collector_handle, latencies);
        let keyless = AtomicU32::new(0);

        let sockets = SocketSampler::start();
        let cpu_start = cpu_time();
        let start = Instant::now();
        let pacer = args.rate.map(|rate| Pacer { start, rate });
        for (i, event) in workload.events.iter().enumerate() {
            if let Some(delay) = pacer.as_ref().and_then(|p| p.delay(i)) {
                collectors.flush();
                tokio::time::sleep(delay).await;
            }
            let report = producer
                .send(event)
                .await
                .unwrap_or_else(|e| panic!("send failed: {e}"));
            let accepted_at = Instant::now();
            let p = Partitioner::Murmur2.partition(event.user_id.as_bytes(), partitions, &keyless)
                as usize;
            collectors.push(p, accepted_at, report);
        }
        collectors
            .finish(args.message_timeout + DRAIN_SLACK)
            .await;
        let wall = start.elapsed();
        let cpu = cpu_time() - cpu_start;
        let max_sockets = sockets.finish();
        let m = producer.metrics();
        producer.close().await;
        RunResult {
            wall,
            cpu,
            max_sockets,
            events_read: None,
            extra: format!(
                ",\"partitions\":{partitions},\"collectors\":\"{}\",\"batches\":{},\"records_per_batch\":{:.1},\"retries\":{},\"epoch_bumps\":{},\"timed_out_queued\":{},\"timed_out_in_flight\":{},\"engine_ack_p50_ms\":{:.3},\"engine_ack_p99_ms\":{:.3},\"request_timeout_ms\":{request_timeout_ms},\"buffer_max_records\":{buffer_max_records}",
                if shared { "shared" } else { "own-thread" },
                m.batches_sent,
                m.mean_records_per_batch(),
                m.retries,
                m.epoch_bumps,
                m.failed_timed_out_queued,
                m.failed_timed_out_in_flight,
                m.ack_latency_p50.as_secs_f64() * 1e3,
                m.ack_latency_p99.as_secs_f64() * 1e3,
            ),
        }
    })
}

// ---------------------------------------------------------------------------------------
// krafka: krafka::producer::Producer (a pure-Rust client), its defaults (idempotent, at
// most 5 requests in flight per broker, one batch in flight per partition) plus the
// original producer's settings where it has them.
// ---------------------------------------------------------------------------------------

fn run_krafka(args: &Args, workload: &Workload, latencies: &Arc<Latencies>) -> RunResult {
    use prost::Message;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let collector_runtime = collector_runtime();
    runtime.block_on(async {
        use krafka::Record;
        let (producer, partitions) = krafka_producer(args).await;
        let mut collectors = Collectors::start(partitions, collector_runtime.handle(), latencies);

        let sockets = SocketSampler::start();
        let cpu_start = cpu_time();
        let start = Instant::now();
        let pacer = args.rate.map(|rate| Pacer { start, rate });
        for (i, event) in workload.events.iter().enumerate() {
            if let Some(delay) = pacer.as_ref().and_then(|p| p.delay(i)) {
                collectors.flush();
                tokio::time::sleep(delay).await;
            }
            let record = Record::new(args.topic.as_str(), event.encode_to_vec())
                .key(event.user_id.clone())
                .header(EVENT_TYPE_HEADER, event_type_name(event))
                .timestamp(event.timestamp);
            let report = producer
                .enqueue(record)
                .await
                .unwrap_or_else(|e| panic!("send failed: {e}"));
            let accepted_at = Instant::now();
            let p = report.partition() as usize;
            collectors.push(p, accepted_at, report);
        }
        collectors
            .finish(args.message_timeout + DRAIN_SLACK)
            .await;
        let wall = start.elapsed();
        let cpu = cpu_time() - cpu_start;
        let max_sockets = sockets.finish();
        let m = producer.metrics();
        let _ = producer.close().await;
        RunResult {
            wall,
            cpu,
            max_sockets,
            events_read: None,
            extra: format!(
                ",\"partitions\":{partitions},\"batches\":{},\"records_per_batch\":{:.1},\"retries\":{},\"batch_errors\":{},\"krafka_version\":\"0.28.1\"",
                m.producer.batches_sent,
                m.producer.records_sent as f64 / m.producer.batches_sent.max(1) as f64,
                m.producer.retries,
                m.producer.errors,
            ),
        }
    })
}

/// krafka's producer with the settings of every krafka run (see `run_krafka`), once it
/// knows the topic, and the topic's partition count.
async fn krafka_producer(args: &Args) -> (krafka::producer::Producer, usize) {
    use krafka::producer::Acks;
    use krafka::{Compression, Kafka};
    let kafka = Kafka::builder(args.broker.clone())
        .client_id("vs-librdkafka-krafka")
        .request_timeout(KRAFKA_REQUEST_TIMEOUT)
        .connect_timeout(KRAFKA_REQUEST_TIMEOUT)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect krafka: {e}"));
    let producer = kafka
        .producer()
        .acks(Acks::All)
        .compression(Compression::Zstd)
        .linger(Duration::from_millis(5))
        .batch_size(1_000_000)
        .delivery_timeout(args.message_timeout)
        .buffer_memory(1 << 30)
        // Its built-in partitioner is murmur2 of the key, as ours and librdkafka's
        // murmur2_random; idempotence and 5 in flight per broker are its defaults.
        .build()
        .await
        .unwrap_or_else(|e| panic!("cannot create the krafka producer: {e}"));
    // Learn the topic before the clock starts, as Producer::connect does. A topic
    // created a moment ago may not be in the broker's metadata yet.
    let deadline = Instant::now() + TOPIC_WAIT;
    let partitions = loop {
        match producer.partitions_for(&args.topic).await {
            Ok(p) if !p.is_empty() => break p.len(),
            Ok(_) if Instant::now() >= deadline => panic!("topic {} has no partitions", args.topic),
            Err(e) if Instant::now() >= deadline => panic!("cannot read metadata: {e}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    (producer, partitions)
}

// ---------------------------------------------------------------------------------------
// librdkafka: rdkafka::producer::ThreadedProducer (a BaseProducer plus a thread that polls
// for delivery reports), with the original producer's settings.
// ---------------------------------------------------------------------------------------

mod librdkafka {
    use super::*;
    use rdkafka::ClientContext;
    use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};

    /// Records each delivery report; the opaque carries the send time in nanoseconds
    /// since `epoch`, so nothing is allocated per message.
    pub struct Context {
        pub epoch: Instant,
        pub latencies: Arc<Latencies>,
    }

    impl ClientContext for Context {}

    impl ProducerContext for Context {
        type DeliveryOpaque = usize;

        fn delivery(&self, result: &DeliveryResult<'_>, sent_at_ns: usize) {
            let now_ns = self.epoch.elapsed().as_nanos() as usize;
            let latency = Duration::from_nanos(now_ns.saturating_sub(sent_at_ns) as u64);
            self.latencies.record(latency, result.is_ok());
        }
    }

    /// The producer of every librdkafka run, with the original producer's settings, once
    /// it knows the topic; the topic's partition count; the epoch of the reports' opaques.
    pub fn producer(
        args: &Args,
        latencies: &Arc<Latencies>,
    ) -> (ThreadedProducer<Context>, usize, Instant) {
        use rdkafka::config::ClientConfig;
        use rdkafka::producer::Producer;
        let epoch = Instant::now();
        let context = Context {
            epoch,
            latencies: Arc::clone(latencies),
        };
        let producer: ThreadedProducer<Context> = ClientConfig::new()
            .set("bootstrap.servers", &args.broker)
            // The original producer's settings ...
            .set("compression.type", "zstd")
            .set("batch.num.messages", "10000")
            .set(
                "message.timeout.ms",
                args.message_timeout.as_millis().to_string(),
            )
            .set("queue.buffering.max.kbytes", "1048576")
            .set("queue.buffering.max.messages", "100000")
            // ... plus what ours does by default: linger 5 ms (librdkafka's default too),
            // acks=all, and the Java client's murmur2 partitioner. Idempotence stays off
            // as the original producer had it; BENCH_LIBRDKAFKA_IDEMPOTENCE=1 turns it on
            // (librdkafka then keeps at most 5 requests in flight per broker, as ours).
            .set("linger.ms", "5")
            .set("enable.idempotence", librdkafka_idempotence().to_string())
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .create_with_context(context)
            .unwrap_or_else(|e| panic!("cannot create the librdkafka producer: {e}"));
        // Connect and learn the topic before the clock starts, as Producer::connect does.
        // A topic created a moment ago may not be in the broker's metadata yet.
        let deadline = Instant::now() + TOPIC_WAIT;
        let partitions = loop {
            let found = producer
                .client()
                .fetch_metadata(Some(&args.topic), Duration::from_secs(10))
                .map_err(|e| e.to_string())
                .and_then(|m| match m.topics().first() {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                        Ok(t.partitions().len())
                    }
                    _ => Err(format!("topic {} has no partitions yet", args.topic)),
                });
            match found {
                Ok(n) => break n,
                Err(e) if Instant::now() >= deadline => panic!("cannot read metadata: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        (producer, partitions, epoch)
    }

    /// Sends one event's encoded `value`, stamped with its send time; on a full queue,
    /// serves delivery reports and tries again (counted in `queue_full`).
    pub fn send(
        producer: &ThreadedProducer<Context>,
        topic: &str,
        event: &UserEvent,
        value: &[u8],
        epoch: Instant,
        queue_full: &mut u64,
    ) {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        use rdkafka::message::{Header, OwnedHeaders};
        use rdkafka::producer::BaseRecord;
        let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
            key: EVENT_TYPE_HEADER,
            value: Some(event_type_name(event)),
        });
        let mut record = BaseRecord::with_opaque_to(topic, 0usize)
            .key(event.user_id.as_str())
            .payload(value)
            .timestamp(event.timestamp)
            .headers(headers);
        loop {
            record.delivery_opaque = epoch.elapsed().as_nanos() as usize;
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The poll thread serves delivery reports; help it and retry.
                    *queue_full += 1;
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("send failed: {e}"),
            }
        }
    }

    /// Waits for the reports of `events` sends (within the message timeout and the
    /// drain slack), then flushes: the run's wall and CPU time end at the last report.
    pub fn finish(
        producer: &ThreadedProducer<Context>,
        args: &Args,
        latencies: &Latencies,
        events: usize,
        measured: (Instant, Duration, SocketSampler),
    ) -> (Duration, Duration, usize) {
        use rdkafka::producer::Producer;
        let (start, cpu_start, sockets) = measured;
        let deadline = Instant::now() + args.message_timeout + DRAIN_SLACK;
        while latencies.reported() < events {
            assert!(
                Instant::now() < deadline,
                "every report arrives within the drain timeout"
            );
            producer.poll(Duration::from_millis(1));
        }
        let wall = start.elapsed();
        let cpu = cpu_time() - cpu_start;
        let max_sockets = sockets.finish();
        let _ = producer.flush(Duration::from_secs(10));
        (wall, cpu, max_sockets)
    }
}

fn run_librdkafka(args: &Args, workload: &Workload, latencies: &Arc<Latencies>) -> RunResult {
    use prost::Message;

    let (producer, partitions, epoch) = librdkafka::producer(args, latencies);

    let sockets = SocketSampler::start();
    let cpu_start = cpu_time();
    let start = Instant::now();
    let pacer = args.rate.map(|rate| Pacer { start, rate });
    let mut queue_full = 0u64;
    for (i, event) in workload.events.iter().enumerate() {
        if let Some(delay) = pacer.as_ref().and_then(|p| p.delay(i)) {
            std::thread::sleep(delay);
        }
        let value = event.encode_to_vec();
        librdkafka::send(
            &producer,
            &args.topic,
            event,
            &value,
            epoch,
            &mut queue_full,
        );
    }
    let (wall, cpu, max_sockets) = librdkafka::finish(
        &producer,
        args,
        latencies,
        args.events,
        (start, cpu_start, sockets),
    );
    let (version_n, version) = rdkafka::util::get_rdkafka_version();
    RunResult {
        wall,
        cpu,
        max_sockets,
        events_read: None,
        extra: format!(
            ",\"partitions\":{partitions},\"queue_full_retries\":{queue_full},\"librdkafka_version\":\"{version}\",\"librdkafka_idempotence\":{},\"librdkafka_version_hex\":\"{version_n:#x}\"",
            librdkafka_idempotence()
        ),
    }
}

// ---------------------------------------------------------------------------------------
// JSON lines: the file `kafka-producer produce --input` reads, and the peers reading it as
// their users would (serde_json into a derived struct, prost, send).
// ---------------------------------------------------------------------------------------

mod json_input {
    use super::*;
    use kafka_producer::event::{EventType, UserEventData};
    use serde::Deserialize;
    use std::collections::BTreeMap;

    /// Bytes read from the input at a time: as `kafka-producer produce --input` reads
    /// (`json_lines::READ_BYTES`).
    const READ_BYTES: usize = kafka_producer::json_lines::READ_BYTES;

    /// A line as the protobuf JSON mapping writes it (`eventId`, `userId`, 64-bit integers
    /// as decimal strings, enums by name): what a user of another client would declare.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct JsonEvent {
        #[serde(default)]
        event_id: String,
        #[serde(default, deserialize_with = "int64")]
        timestamp: i64,
        #[serde(default)]
        user_id: String,
        #[serde(default)]
        event_type: Option<String>,
        #[serde(default)]
        data: Option<JsonEventData>,
    }

    #[derive(Debug, Deserialize)]
    struct JsonEventData {
        #[serde(default)]
        email: Option<String>,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        metadata: BTreeMap<String, String>,
    }

    /// An int64 as the mapping writes it (a decimal string) or as a number.
    fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = i64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an int64 as a number or a decimal string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
                Ok(v)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
                i64::try_from(v).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }

    /// One line into the event it stands for; panics on a bad line (the file is ours).
    fn parse(line: &str) -> UserEvent {
        let json: JsonEvent =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
        let event_type = match json.event_type.as_deref() {
            None => EventType::Unknown,
            Some(name) => EventType::from_str_name(name)
                .unwrap_or_else(|| panic!("unknown eventType {name:?}")),
        };
        UserEvent {
            event_id: json.event_id,
            timestamp: json.timestamp,
            user_id: json.user_id,
            event_type: event_type as i32,
            data: json.data.map(|d| UserEventData {
                email: d.email,
                username: d.username,
                metadata: d.metadata,
            }),
        }
    }

    /// `gen-json`: `--events` generator events as JSON lines into `--out`, with
    /// timestamps as the in-memory modes give them (about 1,000 per millisecond from now).
    pub fn generate_file(args: &Args) {
        use std::io::Write;
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as i64;
        let file = std::fs::File::create(&args.out)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", args.out));
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut generator = Generator::new(args.seed, args.users);
        let mut line = Vec::with_capacity(512);
        let mut bytes = 0u64;
        for i in 0..args.events {
            let event = generator.next_event(base_ms + (i / 1000) as i64);
            line.clear();
            kafka_producer::json_lines::write_event_json(&event, &mut line)
                .unwrap_or_else(|e| panic!("event {i}: {e}"));
            line.push(b'\n');
            out.write_all(&line).expect("write the JSON lines");
            bytes += line.len() as u64;
        }
        out.flush().expect("write the JSON lines");
        println!(
            "{{\"mode\":\"gen-json\",\"out\":\"{}\",\"events\":{},\"bytes\":{bytes},\"bytes_per_line\":{:.1}}}",
            args.out,
            args.events,
            bytes as f64 / args.events.max(1) as f64
        );
    }

    /// The input as buffered lines: the file, or stdin for `-`.
    fn open_sync(args: &Args) -> Box<dyn std::io::BufRead> {
        if args.input == "-" {
            Box::new(std::io::BufReader::with_capacity(
                READ_BYTES,
                std::io::stdin().lock(),
            ))
        } else {
            let file = std::fs::File::open(&args.input)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", args.input));
            Box::new(std::io::BufReader::with_capacity(READ_BYTES, file))
        }
    }

    /// librdkafka reading JSON lines: the same producer and send loop as `run_librdkafka`,
    /// each event parsed from its line first.
    pub fn run_librdkafka(args: &Args, latencies: &Arc<Latencies>) -> RunResult {
        use prost::Message;

        let (producer, partitions, epoch) = librdkafka::producer(args, latencies);
        let sockets = SocketSampler::start();
        let cpu_start = cpu_time();
        let start = Instant::now();
        let mut input = open_sync(args);
        let mut line = String::with_capacity(1024);
        let (mut events, mut payload_bytes, mut queue_full) = (0usize, 0u64, 0u64);
        loop {
            line.clear();
            let n = input.read_line(&mut line).expect("read the input");
            if n == 0 {
                break;
            }
            if line.trim().is_empty() {
                continue;
            }
            let event = parse(&line);
            let value = event.encode_to_vec();
            payload_bytes += (value.len() + event.user_id.len()) as u64;
            librdkafka::send(
                &producer,
                &args.topic,
                &event,
                &value,
                epoch,
                &mut queue_full,
            );
            events += 1;
        }
        let (wall, cpu, max_sockets) = librdkafka::finish(
            &producer,
            args,
            latencies,
            events,
            (start, cpu_start, sockets),
        );
        let (_, version) = rdkafka::util::get_rdkafka_version();
        RunResult {
            wall,
            cpu,
            max_sockets,
            events_read: Some((events, payload_bytes)),
            extra: format!(
                ",\"partitions\":{partitions},\"queue_full_retries\":{queue_full},\"librdkafka_version\":\"{version}\",\"librdkafka_idempotence\":{}",
                librdkafka_idempotence()
            ),
        }
    }

    /// krafka reading JSON lines with tokio's buffered reader (`tokio::fs::File` or
    /// `tokio::io::stdin()`), as an async program reads: the same producer, record and
    /// report collectors as `run_krafka`.
    pub fn run_krafka(args: &Args, latencies: &Arc<Latencies>) -> RunResult {
        use prost::Message;
        use tokio::io::AsyncBufReadExt;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio runtime starts");
        let collector_runtime = collector_runtime();
        runtime.block_on(async {
            use krafka::Record;
            let (producer, partitions) = krafka_producer(args).await;
            let mut collectors =
                Collectors::start(partitions, collector_runtime.handle(), latencies);
            let sockets = SocketSampler::start();
            let cpu_start = cpu_time();
            let start = Instant::now();
            let mut input: Box<dyn tokio::io::AsyncBufRead + Unpin> = if args.input == "-" {
                Box::new(tokio::io::BufReader::with_capacity(READ_BYTES, tokio::io::stdin()))
            } else {
                let file = tokio::fs::File::open(&args.input)
                    .await
                    .unwrap_or_else(|e| panic!("cannot open {}: {e}", args.input));
                Box::new(tokio::io::BufReader::with_capacity(READ_BYTES, file))
            };
            let mut line = String::with_capacity(1024);
            let (mut events, mut payload_bytes) = (0usize, 0u64);
            loop {
                line.clear();
                let n = input.read_line(&mut line).await.expect("read the input");
                if n == 0 {
                    break;
                }
                if line.trim().is_empty() {
                    continue;
                }
                let event = parse(&line);
                let value = event.encode_to_vec();
                payload_bytes += (value.len() + event.user_id.len()) as u64;
                let record = Record::new(args.topic.as_str(), value)
                    .key(event.user_id.clone())
                    .header(EVENT_TYPE_HEADER, event_type_name(&event))
                    .timestamp(event.timestamp);
                let report = producer
                    .enqueue(record)
                    .await
                    .unwrap_or_else(|e| panic!("send failed: {e}"));
                let accepted_at = Instant::now();
                let p = report.partition() as usize;
                collectors.push(p, accepted_at, report);
                events += 1;
            }
            collectors
                .finish(args.message_timeout + DRAIN_SLACK)
                .await;
            let wall = start.elapsed();
            let cpu = cpu_time() - cpu_start;
            let max_sockets = sockets.finish();
            let m = producer.metrics();
            let _ = producer.close().await;
            RunResult {
                wall,
                cpu,
                max_sockets,
                events_read: Some((events, payload_bytes)),
                extra: format!(
                    ",\"partitions\":{partitions},\"batches\":{},\"records_per_batch\":{:.1},\"retries\":{},\"batch_errors\":{},\"krafka_version\":\"0.28.1\"",
                    m.producer.batches_sent,
                    m.producer.records_sent as f64 / m.producer.batches_sent.max(1) as f64,
                    m.producer.retries,
                    m.producer.errors,
                ),
            }
        })
    }
}

// ---------------------------------------------------------------------------------------
// sizes: the seed's size claims, without a broker.
// ---------------------------------------------------------------------------------------

/// Lines per compressed block: a 10,000-record batch.
const SIZES_BLOCK: usize = 10_000;

fn sizes(workload: &Workload) {
    use prost::Message;
    use std::io::Write;
    let events = &workload.events;
    let n = events.len().max(1) as f64;
    let json: Vec<Vec<u8>> = events
        .iter()
        .map(|e| {
            let mut line =
                serde_json::to_vec(&kafka_producer::json_lines::event_to_json(e)).expect("JSON");
            line.push(b'\n');
            line
        })
        .collect();
    let json_bytes: usize = json.iter().map(Vec::len).sum();
    let protobuf_bytes: usize = events.iter().map(|e| e.encoded_len()).sum();
    let key_bytes: usize = events.iter().map(|e| e.user_id.len()).sum();
    let blocks: Vec<Vec<u8>> = json.chunks(SIZES_BLOCK).map(|c| c.concat()).collect();

    let timed = |f: &dyn Fn(&[u8]) -> usize| {
        let start = Instant::now();
        let size: usize = blocks.iter().map(|b| f(b)).sum();
        (size, start.elapsed().as_secs_f64())
    };
    let (zstd_size, zstd_s) = timed(&|b| zstd::bulk::compress(b, 3).expect("zstd").len());
    let (gzip_size, gzip_s) = timed(&|b| {
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(b.len() / 4),
            flate2::Compression::new(6),
        );
        encoder.write_all(b).expect("gzip");
        encoder.finish().expect("gzip").len()
    });
    let mb = json_bytes as f64 / 1e6;
    println!(
        concat!(
            "{{\"mode\":\"sizes\",\"events\":{},\"json_bytes_per_event\":{:.1},",
            "\"protobuf_value_bytes_per_event\":{:.1},\"key_bytes_per_event\":{:.1},",
            "\"json_zstd3_bytes_per_event\":{:.1},\"json_gzip6_bytes_per_event\":{:.1},",
            "\"json_zstd3_reduction_pct\":{:.1},\"json_gzip6_reduction_pct\":{:.1},",
            "\"zstd3_mb_per_s\":{:.0},\"gzip6_mb_per_s\":{:.0},\"block_lines\":{}}}"
        ),
        events.len(),
        json_bytes as f64 / n,
        protobuf_bytes as f64 / n,
        key_bytes as f64 / n,
        zstd_size as f64 / n,
        gzip_size as f64 / n,
        100.0 * (1.0 - zstd_size as f64 / json_bytes as f64),
        100.0 * (1.0 - gzip_size as f64 / json_bytes as f64),
        mb / zstd_s,
        mb / gzip_s,
        SIZES_BLOCK,
    );
}

// ---------------------------------------------------------------------------------------
// proxy: a link with a round trip, for the latency scenario.
// ---------------------------------------------------------------------------------------

mod proxy {
    use super::Args;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::Instant;

    /// Bytes read from a socket at a time.
    const READ_BYTES: usize = 64 * 1024;

    /// Accepts on 127.0.0.1:`listen` until killed; each connection gets one to `upstream`
    /// and a task per direction that forwards every chunk `delay` after it was read.
    /// Forwarding is pipelined: the delay adds latency, never a limit on throughput.
    pub fn run(args: &Args) -> ! {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime starts");
        let (listen, upstream, delay) = (args.listen, args.upstream.clone(), args.delay);
        runtime.block_on(async move {
            let listener = TcpListener::bind(("127.0.0.1", listen))
                .await
                .unwrap_or_else(|e| panic!("proxy cannot listen on 127.0.0.1:{listen}: {e}"));
            eprintln!(
                "proxy: 127.0.0.1:{listen} -> {upstream}, {} ms each way",
                delay.as_millis()
            );
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return; // dropping `client` closes it: the client sees a reset link
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(forward(client_read, server_write, delay));
                    tokio::spawn(forward(server_read, client_write, delay));
                });
            }
        })
    }

    /// Reads from `from` and writes each chunk to `to` once `delay` has passed since it
    /// was read, in order; shuts `to` down when `from` ends.
    async fn forward(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        let writer = tokio::spawn(async move {
            while let Some((due, chunk)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if to.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = to.shutdown().await;
        });
        let mut buf = vec![0u8; READ_BYTES];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        drop(tx);
        let _ = writer.await;
    }
}
