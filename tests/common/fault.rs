//! Fault-injection harness shared by tests/fault_*.rs: a broker process the test owns
//! (so it can kill -9 and restart it), a steady load of generated events whose reports
//! are collected as they arrive, and the check of the delivery promise against what the
//! topic holds afterwards.
//!
//! The promise checked (RELIABILITY.md): every event `send` accepted gets exactly one report;
//! every acknowledged event is in the topic at its reported partition and offset; no
//! event reported "certainly not written" is in the topic; copies of an event can only
//! come from retried in-flight requests, and are counted.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_producer::config::ConnectionConfig;
use kafka_producer::generator::Generator;
use kafka_producer::metrics::MetricsSnapshot;
use kafka_producer::{DeliveryResult, Producer, reader};
use prost::Message;
use rskafka::client::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A broker process owned by one test: its own instance name, ports and data dir under
/// .kafka/, so nothing else is disturbed. Wiped when dropped (data included).
pub struct OwnedBroker {
    instance: &'static str,
    port: u16,
    env: Vec<(String, String)>,
}

impl OwnedBroker {
    /// Wipes what an earlier, interrupted run may have left, then starts the broker.
    /// `env` adds scripts/kafka.sh settings (e.g. KAFKA_ADVERTISED_PORT).
    pub async fn start(
        instance: &'static str,
        port: u16,
        controller_port: u16,
        env: &[(&str, String)],
    ) -> Self {
        let mut all = vec![
            ("KAFKA_PORT".to_string(), port.to_string()),
            (
                "KAFKA_CONTROLLER_PORT".to_string(),
                controller_port.to_string(),
            ),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let broker = Self {
            instance,
            port,
            env: all,
        };
        broker.script(&["wipe"]).await;
        broker.script(&["up"]).await;
        broker
    }

    /// The broker's own listener (clients that bootstrap here still follow what it
    /// advertises).
    pub fn address(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// A client of this broker, connecting (and its requests retrying) for at most
    /// `patience`.
    pub async fn client(&self, patience: Duration) -> Client {
        client_of(vec![self.address()], patience)
            .await
            .unwrap_or_else(|e| panic!("connecting to the owned broker {}: {e}", self.instance))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(super::repo_root().join("scripts/kafka.sh"));
        command.args(args).env("KAFKA_INSTANCE", self.instance);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    fn describe(&self, args: &[&str]) -> String {
        format!(
            "scripts/kafka.sh {} for instance {}",
            args.join(" "),
            self.instance
        )
    }

    /// Runs scripts/kafka.sh on a blocking thread, so the producer keeps its workers.
    pub async fn script(&self, args: &[&str]) {
        let mut command = self.command(args);
        let what = self.describe(args);
        let status = tokio::task::spawn_blocking(move || command.status())
            .await
            .expect("script thread")
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(status.success(), "{what} failed: {status}");
    }

    /// The same, returning what the script printed on stdout.
    pub async fn script_stdout(&self, args: &[&str]) -> String {
        let mut command = self.command(args);
        let what = self.describe(args);
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("script thread")
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(out.status.success(), "{what} failed: {}", out.status);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGKILL: a crash. The data dir stays.
    pub async fn kill9(&self) {
        self.script(&["kill9"]).await;
    }

    /// Starts the broker again on the same data dir and waits until it answers.
    pub async fn up(&self) {
        self.script(&["up"]).await;
    }
}

impl Drop for OwnedBroker {
    fn drop(&mut self) {
        // The data goes anyway: a kill is quicker than a controlled shutdown.
        let _ = self.command(&["kill9"]).status();
        let _ = self.command(&["wipe"]).status();
    }
}

/// A steady load: `events` generated events at `rate_per_s`, from `seed`.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub events: usize,
    pub rate_per_s: u64,
    pub seed: u64,
}

/// One accepted event and the report it got.
#[derive(Debug)]
pub struct Report {
    pub event_id: u128,
    pub outcome: DeliveryResult,
    /// When `send` accepted it.
    pub accepted_at: Instant,
    /// From acceptance to when the collector saw the report: an upper bound of the real
    /// delay (reports are awaited in acceptance order).
    pub delay: Duration,
}

/// A load in progress: the sending task, the collector of reports, and a probe of how
/// late the runtime wakes a task (to tell a late report from a starved machine).
pub struct RunningLoad {
    /// Ends with the count sent, and what sending more after the load needs.
    sender: JoinHandle<(usize, Generator, ReportSender)>,
    collector: JoinHandle<Vec<Report>>,
    lag_probe: JoinHandle<()>,
    max_lag: Arc<std::sync::Mutex<Duration>>,
}

/// Where the sender hands each accepted event's report future to the collector.
type ReportSender = mpsc::UnboundedSender<(u128, Instant, kafka_producer::DeliveryFuture)>;

/// Sends one event and hands its report to the collector.
async fn send_one(producer: &Producer, generator: &mut Generator, tx: &ReportSender, i: usize) {
    let event = generator.next_event(now_ms());
    let id = event_id(&event.event_id);
    let report = producer
        .send(&event)
        .await
        .unwrap_or_else(|e| panic!("send refused event {i}: {e}"));
    if tx.send((id, Instant::now(), report)).is_err() {
        panic!("report collector stopped");
    }
}

/// How often the lag probe asks to be woken.
const LAG_PROBE_PERIOD: Duration = Duration::from_millis(10);

/// Events are sent in slices of this many, each slice at its due time.
const SLICE: usize = 500;

/// Starts sending: event i is due at start + i / rate; a sender that fell behind
/// (backpressure) catches up at full speed, the buffer bounding it.
pub fn start_load(producer: Arc<Producer>, load: Load) -> RunningLoad {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let sender = tokio::spawn(async move {
        let mut generator = Generator::new(load.seed, 10_000);
        let start = tokio::time::Instant::now();
        for i in 0..load.events {
            if i % SLICE == 0 {
                let due = Duration::from_secs_f64(i as f64 / load.rate_per_s as f64);
                tokio::time::sleep_until(start + due).await;
            }
            send_one(&producer, &mut generator, &tx, i).await;
        }
        (load.events, generator, tx)
    });
    let collector = tokio::spawn(async move {
        let mut reports = Vec::new();
        while let Some((event_id, accepted_at, report)) = rx.recv().await {
            let outcome = report.await;
            reports.push(Report {
                event_id,
                outcome,
                accepted_at,
                delay: accepted_at.elapsed(),
            });
        }
        reports
    });
    let max_lag = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let lag_probe = {
        let max_lag = Arc::clone(&max_lag);
        tokio::spawn(async move {
            loop {
                let asked = Instant::now();
                tokio::time::sleep(LAG_PROBE_PERIOD).await;
                let lag = asked.elapsed().saturating_sub(LAG_PROBE_PERIOD);
                let mut max = max_lag.lock().unwrap();
                *max = (*max).max(lag);
            }
        })
    };
    RunningLoad {
        sender,
        collector,
        lag_probe,
        max_lag,
    }
}

impl RunningLoad {
    /// Waits for every event to be sent, closes the producer (which reports everything
    /// still queued), and returns the reports and the longest time the runtime was late
    /// waking a task; panics if that takes longer than `limit`.
    pub async fn finish(self, producer: &Producer, limit: Duration) -> (Vec<Report>, Duration) {
        self.finish_with_tail(producer, limit, 0).await
    }

    /// Like `finish`, but once the load is all sent, sends `tail` more events as fast
    /// as the producer takes them (their reports come last): to check that the producer
    /// delivers again after a fault.
    pub async fn finish_with_tail(
        self,
        producer: &Producer,
        limit: Duration,
        tail: usize,
    ) -> (Vec<Report>, Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let (mut sent, mut generator, tx) = tokio::time::timeout_at(deadline, self.sender)
            .await
            .expect("the load was not all sent in time")
            .expect("sender task");
        for i in sent..sent + tail {
            send_one(producer, &mut generator, &tx, i).await;
        }
        sent += tail;
        drop(tx);
        tokio::time::timeout_at(deadline, producer.close())
            .await
            .expect("close did not complete in time");
        let reports = tokio::time::timeout_at(deadline, self.collector)
            .await
            .expect("reports did not all arrive in time")
            .expect("collector task");
        assert_eq!(reports.len(), sent, "one report per accepted event");
        self.lag_probe.abort();
        let max_lag = *self.max_lag.lock().unwrap();
        (reports, max_lag)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn event_id(text: &str) -> u128 {
    uuid::Uuid::parse_str(text)
        .unwrap_or_else(|e| panic!("event id {text:?} is not a UUID: {e}"))
        .as_u128()
}

/// Polls `condition` on the producer's metrics every 10 ms until it holds; panics with
/// `what` and the last metrics after `limit`.
pub async fn wait_for_metrics(
    producer: &Producer,
    what: &str,
    limit: Duration,
    condition: impl Fn(&MetricsSnapshot) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        let m = producer.metrics();
        if condition(&m) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {limit:?}; metrics {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the reports say and what the topic holds, side by side.
#[derive(Debug, Default, Clone)]
pub struct Verdict {
    pub events: usize,
    pub acknowledged: usize,
    /// Failures by `DeliveryError::reason()`.
    pub failed: BTreeMap<&'static str, usize>,
    /// Acknowledged events missing from the topic.
    pub lost: Vec<String>,
    /// Acknowledged events in the topic, but not at the reported partition/offset.
    pub misplaced: Vec<String>,
    /// Events reported as certainly not written that are in the topic.
    pub not_written_but_found: Vec<String>,
    /// "May have been written" failures that were written.
    pub maybe_written_found: usize,
    /// Records beyond the first copy of an event id.
    pub duplicates: usize,
    /// Records whose event id no report mentions, or that are not UserEvents.
    pub foreign_records: usize,
    /// Acknowledged events of one partition whose offsets do not grow in send order.
    pub out_of_order: usize,
    /// Records read back (first copy of each event) that sit in their partition's log
    /// before an event sent earlier: the stored order is not the send order.
    pub stored_out_of_order: usize,
    pub records_in_topic: usize,
    pub max_report_delay: Duration,
    /// The longest the runtime was late waking a task during the load (set by the
    /// caller from `RunningLoad::finish`): a starved machine delays reports too.
    pub max_runtime_lag: Duration,
}

impl Verdict {
    /// The delivery promise: nothing acknowledged lost or misplaced, nothing reported
    /// unwritten found, nothing foreign, acknowledged events in send order per partition.
    pub fn assert_promise(&self, context: &str) {
        let show = |v: &[String]| v.iter().take(5).cloned().collect::<Vec<_>>().join("; ");
        assert!(
            self.lost.is_empty(),
            "{context}: {} acknowledged events are not in the topic, e.g. {}\n{self}",
            self.lost.len(),
            show(&self.lost)
        );
        assert!(
            self.misplaced.is_empty(),
            "{context}: {} acknowledged events are not at their reported offset, e.g. {}\n{self}",
            self.misplaced.len(),
            show(&self.misplaced)
        );
        assert!(
            self.not_written_but_found.is_empty(),
            "{context}: {} events reported as not written are in the topic, e.g. {}\n{self}",
            self.not_written_but_found.len(),
            show(&self.not_written_but_found)
        );
        assert_eq!(
            self.foreign_records, 0,
            "{context}: records no report accounts for\n{self}"
        );
        assert_eq!(
            self.out_of_order, 0,
            "{context}: acknowledged offsets not in send order\n{self}"
        );
        assert_eq!(
            self.stored_out_of_order, 0,
            "{context}: records stored out of send order within a partition\n{self}"
        );
    }

    /// What idempotence adds: no event stored twice, whatever was retried.
    pub fn assert_no_duplicates(&self, context: &str) {
        assert_eq!(
            self.duplicates, 0,
            "{context}: events stored more than once with idempotence on\n{self}"
        );
    }

    /// Failures of any reason.
    pub fn failures(&self) -> usize {
        self.failed.values().sum()
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "events {} acknowledged {} failed {:?} lost {} misplaced {} not-written-found {} \
             maybe-written-found {} duplicates {} foreign {} out-of-order {} \
             stored-out-of-order {} records {} max-report-delay {:.1}s max-runtime-lag {:.1}s",
            self.events,
            self.acknowledged,
            self.failed,
            self.lost.len(),
            self.misplaced.len(),
            self.not_written_but_found.len(),
            self.maybe_written_found,
            self.duplicates,
            self.foreign_records,
            self.out_of_order,
            self.stored_out_of_order,
            self.records_in_topic,
            self.max_report_delay.as_secs_f64(),
            self.max_runtime_lag.as_secs_f64(),
        )
    }
}

/// `UserEvent` with only `event_id` (field 1): decoding skips the other fields, which
/// keeps reading back 300,000 records quick in a debug build.
#[derive(Clone, PartialEq, prost::Message)]
struct EventIdOnly {
    #[prost(string, tag = "1")]
    event_id: String,
}

/// A reading client of `brokers`, connecting (and its requests retrying) for at most
/// `patience`, with the default request timeout.
pub async fn client_of(
    brokers: Vec<String>,
    patience: Duration,
) -> Result<Client, kafka_producer::connect::ConnectError> {
    let connection = ConnectionConfig {
        brokers,
        connect_timeout: patience,
        ..Default::default()
    };
    kafka_producer::connect::connect(
        &connection,
        kafka_producer::config::DEFAULT_REQUEST_TIMEOUT,
        patience,
    )
    .await
}

/// Reads the whole topic back and compares it with the reports.
pub async fn verify(client: &Client, topic: &str, reports: &[Report]) -> Verdict {
    let stored = reader::read_all(client, topic)
        .await
        .unwrap_or_else(|e| panic!("reading {topic} back: {e}"));
    let mut places: HashMap<u128, Vec<(i32, i64)>> = HashMap::with_capacity(stored.len());
    let mut verdict = Verdict {
        events: reports.len(),
        records_in_topic: stored.len(),
        ..Default::default()
    };
    for record in &stored {
        let id = record
            .value
            .as_deref()
            .and_then(|v| EventIdOnly::decode(v).ok())
            .and_then(|e| uuid::Uuid::parse_str(&e.event_id).ok());
        match id {
            Some(id) => places
                .entry(id.as_u128())
                .or_default()
                .push((record.partition, record.offset)),
            None => verdict.foreign_records += 1,
        }
    }
    verdict.duplicates = places.values().map(|p| p.len() - 1).sum();
    let mut reported = HashMap::with_capacity(reports.len());
    let mut last_acked_offset: HashMap<i32, i64> = HashMap::new();
    for (seq, report) in reports.iter().enumerate() {
        assert!(
            reported.insert(report.event_id, seq).is_none(),
            "event id {:032x} reported twice",
            report.event_id
        );
        verdict.max_report_delay = verdict.max_report_delay.max(report.delay);
        let found = places.get(&report.event_id);
        let id = uuid::Uuid::from_u128(report.event_id);
        match &report.outcome {
            Ok(d) => {
                verdict.acknowledged += 1;
                match found {
                    None => verdict
                        .lost
                        .push(format!("{id} acked at {}/{}", d.partition, d.offset)),
                    Some(at) if !at.contains(&(d.partition, d.offset)) => {
                        verdict.misplaced.push(format!(
                            "{id} acked at {}/{} but stored at {at:?}",
                            d.partition, d.offset
                        ))
                    }
                    Some(_) => {}
                }
                let last = last_acked_offset.entry(d.partition).or_insert(-1);
                if d.offset <= *last {
                    verdict.out_of_order += 1;
                }
                *last = d.offset;
            }
            Err(e) => {
                *verdict.failed.entry(e.reason()).or_default() += 1;
                match (e.may_have_been_written(), found) {
                    (true, Some(_)) => verdict.maybe_written_found += 1,
                    (false, Some(at)) => verdict
                        .not_written_but_found
                        .push(format!("{id} reported `{e}` but stored at {at:?}")),
                    (_, None) => {}
                }
            }
        }
    }
    // Stored order: walk each partition's log in offset order, first copies only, and
    // count records whose event was sent before the latest one seen so far.
    let mut by_place: Vec<(i32, i64, usize)> = places
        .iter()
        .filter_map(|(id, at)| {
            let first = at.iter().min_by_key(|(p, o)| (*p, *o))?;
            Some((first.0, first.1, *reported.get(id)?))
        })
        .collect();
    by_place.sort_unstable();
    let mut latest_sent: HashMap<i32, usize> = HashMap::new();
    for (partition, _, sent) in by_place {
        let latest = latest_sent.entry(partition).or_insert(sent);
        if sent < *latest {
            verdict.stored_out_of_order += 1;
        }
        *latest = (*latest).max(sent);
    }
    verdict.foreign_records += places
        .iter()
        .filter(|(id, _)| !reported.contains_key(*id))
        .map(|(_, at)| at.len())
        .sum::<usize>();
    verdict
}

/// The producer's logs on the test's stderr when RUST_LOG asks for them (off otherwise):
/// `RUST_LOG=kafka_producer=debug cargo test --test fault_cluster -- --nocapture`.
pub fn logs_from_env() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}
