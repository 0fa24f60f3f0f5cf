//! `produce`, the main job: takes events from a source, sends them at the asked rate,
//! collects every delivery report, and ends with a summary and an exit code that says
//! whether everything was delivered. Stops cleanly on SIGINT/SIGTERM (flush first).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use kafka_producer::config::MAX_PARTITIONS;
use kafka_producer::config::{self, ProducerConfig};
use kafka_producer::event::UserEvent;
use kafka_producer::json_lines::ParseOptions;
use kafka_producer::record::EncodedEvent;
use kafka_producer::{DeliveryFuture, Producer, SendError, connect};
use prost::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::options::{ConnectionArgs, EngineArgs, Span, duration_in, integer_in};
use super::source::{self, Item};
use super::summary::Summary;
use super::{CliError, ExitCode, LogFormat, metrics_server};

/// Generated events when neither --count, --duration nor --input says otherwise.
const DEFAULT_COUNT: u64 = 1000;
/// Size of the generated user population unless --users says otherwise.
const DEFAULT_USERS: u64 = 100_000;
/// `--rate`, in events per second: from one event per 1,000 s to far beyond any broker.
const RATE_RANGE: RangeInclusive<f64> = 0.001..=100_000_000.0;
/// `--duration`: 0 (until stopped) to a year.
const DURATION_RANGE: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(365 * 86_400);
/// Failure reasons printed on stderr at the end, at most.
const FAILURES_SHOWN: usize = 5;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    engine: EngineArgs,

    /// Number of generated events (default 1000 unless --duration or --input is given).
    #[arg(long, help_heading = "Source", value_parser = integer_in(1..=u64::MAX))]
    count: Option<u64>,

    /// Generate for this long, e.g. 30s, 5m (a bare number is seconds); 0 means until stopped (Ctrl-C / SIGTERM).
    #[arg(long, help_heading = "Source", value_parser = duration_in(DURATION_RANGE, "s"))]
    duration: Option<Span>,

    /// Events per second at most (default: as fast as the broker takes them).
    #[arg(long, env = "PRODUCE_RATE", help_heading = "Source", value_parser = rate_in(RATE_RANGE))]
    rate: Option<f64>,

    /// Size of the generated user population (distinct keys).
    #[arg(long, help_heading = "Source", default_value_t = DEFAULT_USERS,
          value_parser = integer_in(1..=u64::MAX))]
    users: u64,

    /// Seed of the generator: the same seed gives the same events (default: from the clock,
    /// so two runs never repeat event ids).
    #[arg(long, help_heading = "Source", value_parser = integer_in(0..=u64::MAX))]
    seed: Option<u64>,

    /// Read JSON lines (one UserEvent each, protobuf JSON mapping) from FILE, or - for stdin.
    #[arg(long, help_heading = "Source", conflicts_with_all = ["count", "duration", "users", "seed"])]
    input: Option<PathBuf>,

    /// Report bad input lines on stderr and keep going, instead of stopping at the first.
    #[arg(long, help_heading = "Source")]
    skip_invalid: bool,

    /// Drop JSON fields the schema does not have, instead of refusing the line.
    #[arg(long, help_heading = "Source", requires = "input")]
    ignore_unknown_fields: bool,

    /// Create the topic first if it does not exist.
    #[arg(long, help_heading = "Topic creation")]
    create_topic: bool,

    /// Partitions of a topic created by --create-topic.
    #[arg(long, help_heading = "Topic creation", default_value_t = config::DEFAULT_TOPIC_PARTITIONS,
          value_parser = integer_in(1..=MAX_PARTITIONS as i32))]
    partitions: i32,

    /// Replication factor of a topic created by --create-topic.
    #[arg(long, help_heading = "Topic creation", default_value_t = config::DEFAULT_REPLICATION_FACTOR,
          value_parser = integer_in(1..=i16::MAX))]
    replication_factor: i16,

    /// How to print the final summary.
    #[arg(long, help_heading = "Output", value_enum, default_value_t = SummaryFormat::Text)]
    summary: SummaryFormat,

    /// Serve /metrics (Prometheus), /healthz and /readyz on HOST:PORT while running, e.g. 0.0.0.0:9464 (default: off).
    #[arg(long, env = "KAFKA_PRODUCER_METRICS_ADDR", help_heading = "Output",
          value_parser = parse_listen_address)]
    metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SummaryFormat {
    Text,
    Json,
}

/// A clap value parser: a finite number of events per second within `range`.
fn rate_in(
    range: RangeInclusive<f64>,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |text| {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|rate| range.contains(rate))
            .ok_or_else(|| {
                format!(
                    "must be a number of events per second in {}..={}",
                    range.start(),
                    range.end()
                )
            })
    }
}

/// A clap value parser: an IP address and port to listen on.
fn parse_listen_address(text: &str) -> Result<std::net::SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        "must be IP:PORT to listen on, e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::]:9464".into()
    })
}

/// Tallies of the delivery reports, made by the collector task.
#[derive(Debug, Default)]
struct Reports {
    failed_by_reason: BTreeMap<String, u64>,
    first_failures: Vec<String>,
}

/// How the reading loop ended.
#[derive(Debug, Default)]
struct Outcome {
    invalid_lines: u64,
    /// Stopped early: a signal, or the first bad line.
    interrupted: bool,
    /// The bad line (or event) that stopped the run, as the error will print it.
    bad_input: Option<String>,
}

pub async fn run(
    connection: &ConnectionArgs,
    log_format: LogFormat,
    args: ProduceArgs,
) -> Result<ExitCode, CliError> {
    let config = args.engine.to_config(connection)?;
    let input = open_input(args.input.as_ref())?;
    let stop = stop_signal(log_format)?;
    let served = match args.metrics_addr {
        Some(addr) => Some(metrics_server::start(addr).await?),
        None => None,
    };
    let topic = config.topic.clone();
    let start_up = async {
        if args.create_topic {
            create_topic(&config, args.partitions, args.replication_factor).await?;
        }
        Ok::<_, CliError>(Producer::connect(config.clone()).await?)
    };
    // A signal while connecting (which may retry for the whole connect timeout) stops
    // at once: nothing was accepted yet, so nothing is left to deliver.
    tracing::info!(brokers = %config.connection.brokers.join(","), "connecting");
    let producer = tokio::select! {
        biased;
        _ = stop.notified() => {
            return Err(CliError {
                code: ExitCode::Interrupted,
                message: format!("stopped by a signal while connecting to {}; nothing was sent", config.connection.brokers.join(",")),
            });
        }
        producer = start_up => Arc::new(producer?),
    };
    if let Some(served) = &served {
        let _ = served.set(Arc::clone(&producer));
    }

    let until = match args.duration {
        Some(Span(d)) if !d.is_zero() => Instant::now().checked_add(d),
        _ => None,
    };
    let items = match input {
        Some(input) => source::json_lines(
            input,
            ParseOptions {
                ignore_unknown_fields: args.ignore_unknown_fields,
            },
        ),
        None => {
            let count = match (args.count, args.duration) {
                (Some(n), _) => Some(n),
                (None, Some(_)) => None,
                (None, None) => Some(DEFAULT_COUNT),
            };
            let seed = args.seed.unwrap_or_else(|| source::now_ms() as u64);
            source::generator(seed, args.users, count)
        }
    };

    let (report_tx, report_rx) = mpsc::unbounded_channel::<Vec<DeliveryFuture>>();
    let collector = tokio::spawn(collect_reports(report_rx));
    // JSON logs get the structured progress event, even on a terminal.
    let terminal = std::io::stderr().is_terminal() && log_format == LogFormat::Text;
    let progress = spawn_progress(Arc::clone(&producer), terminal);
    let start = Instant::now();

    let outcome = send_all(&producer, items, &args, until, &stop, report_tx).await;

    producer.close().await;
    let reports = collector
        .await
        .expect("the report collector does not panic");
    progress.abort();
    if terminal {
        eprint!("\r\x1b[2K");
    }
    let summary = print_summary(&producer, &topic, &reports, &outcome, start, args.summary);
    exit_code(&producer, &summary, &outcome, args.input.as_ref())
}

/// Opens `--input`: a file, or stdin for `-`.
fn open_input(input: Option<&PathBuf>) -> Result<Option<source::Input>, CliError> {
    Ok(match input {
        None => None,
        Some(path) if path.as_os_str() == "-" => Some(source::Input::Stdin),
        Some(path) => Some(source::Input::File(std::fs::File::open(path).map_err(
            |e| CliError::usage(format!("cannot open --input {}: {e}", path.display())),
        )?)),
    })
}

/// Creates the configured topic unless it exists, and waits until the broker serves it.
pub(super) async fn create_topic(
    config: &ProducerConfig,
    partitions: i32,
    replication_factor: i16,
) -> Result<(), CliError> {
    let client = connect::connect_for(config).await?;
    let created =
        connect::create_topic_if_missing(&client, &config.topic, partitions, replication_factor)
            .await?;
    if created {
        tracing::info!(topic = %config.topic, partitions, "created topic");
        connect::wait_until_served(&client, &config.topic, config::TOPIC_READY_TIMEOUT).await?;
    }
    Ok(())
}

/// Reads the source and sends each event (paced to `--rate`), handing the delivery reports
/// to the collector, until the source ends, `until` passes, a signal arrives, or a bad line
/// stops the run.
async fn send_all(
    producer: &Producer,
    mut items: mpsc::Receiver<Vec<Item>>,
    args: &ProduceArgs,
    until: Option<Instant>,
    stop: &tokio::sync::Notify,
    report_tx: mpsc::UnboundedSender<Vec<DeliveryFuture>>,
) -> Outcome {
    let mut pacer = args.rate.map(Pacer::new);
    let mut outcome = Outcome::default();
    let past_until = || until.is_some_and(|u| Instant::now() >= u);
    loop {
        let chunk = tokio::select! {
            biased;
            _ = stop.notified() => { outcome.interrupted = true; break; }
            _ = sleep_until_opt(until) => break,
            chunk = items.recv() => match chunk { Some(c) => c, None => break },
        };
        let mut reports = Vec::with_capacity(chunk.len());
        for item in chunk {
            let event = match item {
                Ok(event) => event,
                Err(error) => {
                    outcome.invalid_lines += 1;
                    // The library names its parse option; the CLI user sets it by flag.
                    let error = error.to_string().replace(
                        "ParseOptions::ignore_unknown_fields",
                        "--ignore-unknown-fields",
                    );
                    if args.skip_invalid {
                        eprintln!("skipped {error}");
                        continue;
                    }
                    outcome.bad_input = Some(error);
                    break;
                }
            };
            if let Some(pacer) = &mut pacer {
                pacer.wait().await;
            }
            if past_until() {
                break;
            }
            match producer.send_encoded(event).await {
                Ok(report) => reports.push(report),
                Err((
                    SendError::TooLarge {
                        size,
                        limit,
                        setting,
                    },
                    record,
                )) => {
                    outcome.invalid_lines += 1;
                    let message = format!(
                        "event {} of {size} bytes is larger than {}, {limit} bytes; raise it or send smaller events",
                        event_id_of(&record),
                        super::options::flag_of(setting)
                    );
                    if args.skip_invalid {
                        eprintln!("skipped {message}");
                        continue;
                    }
                    outcome.bad_input = Some(message);
                    break;
                }
                Err((error, _)) => {
                    outcome.bad_input = Some(error.to_string());
                    break;
                }
            }
        }
        let _ = report_tx.send(reports);
        if outcome.bad_input.is_some() {
            outcome.interrupted = true;
            break;
        }
        if past_until() {
            break;
        }
    }
    outcome
}

/// The event id inside an encoded event, for naming one that was refused: decoded only
/// then, so the sources need not keep every id.
fn event_id_of(record: &EncodedEvent) -> String {
    UserEvent::decode(record.value.as_slice())
        .map(|event| event.event_id)
        .unwrap_or_default()
}

/// Prints the first failures on stderr and the summary on stdout.
fn print_summary(
    producer: &Producer,
    topic: &str,
    reports: &Reports,
    outcome: &Outcome,
    start: Instant,
    format: SummaryFormat,
) -> Summary {
    let summary = Summary::new(
        topic,
        &producer.metrics(),
        reports.failed_by_reason.clone(),
        outcome.invalid_lines,
        outcome.interrupted,
        start.elapsed(),
    );
    for failure in &reports.first_failures {
        eprintln!("failed: {failure}");
    }
    match format {
        SummaryFormat::Json => println!("{}", summary.to_json()),
        SummaryFormat::Text => println!("{}", summary.to_text()),
    }
    summary
}

/// The run's exit code: bad input (4) first, then an input with no events (4), then any
/// event not delivered (1).
fn exit_code(
    producer: &Producer,
    summary: &Summary,
    outcome: &Outcome,
    input: Option<&PathBuf>,
) -> Result<ExitCode, CliError> {
    if let Some(message) = &outcome.bad_input {
        return Err(CliError {
            code: ExitCode::BadInput,
            message: format!(
                "{message}; fix the input or pass --skip-invalid (the {} events before it were delivered)",
                summary.delivered
            ),
        });
    }
    if let Some(path) = input
        && summary.sent == 0
        && outcome.invalid_lines == 0
        && !outcome.interrupted
    {
        // Nothing to send is almost always a wrong file or an empty pipe upstream.
        return Err(CliError {
            code: ExitCode::BadInput,
            message: format!(
                "--input {} held no events (no non-blank lines); check the file or the command feeding it",
                path.display()
            ),
        });
    }
    let metrics = producer.metrics();
    if summary.failed > 0 || metrics.delivered != metrics.accepted {
        return Ok(ExitCode::Failures);
    }
    Ok(ExitCode::Success)
}

/// Awaits every report, in the order the events were sent, and counts failures by reason.
async fn collect_reports(mut rx: mpsc::UnboundedReceiver<Vec<DeliveryFuture>>) -> Reports {
    let mut reports = Reports::default();
    while let Some(chunk) = rx.recv().await {
        for report in chunk {
            if let Err(error) = report.await {
                *reports
                    .failed_by_reason
                    .entry(error.reason().to_string())
                    .or_default() += 1;
                if reports.first_failures.len() < FAILURES_SHOWN {
                    reports.first_failures.push(error.to_string());
                }
            }
        }
    }
    reports
}

/// Notified on the first SIGINT/SIGTERM; a second one exits the process at once (130).
/// The handlers are in place when this returns, so a signal that arrives while the
/// producer still connects stops the run as soon as it can read.
fn stop_signal(log_format: LogFormat) -> Result<Arc<tokio::sync::Notify>, CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| CliError::usage(format!("cannot handle {name}: {e}")))
    };
    let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
    let notify = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::clone(&notify);
    tokio::spawn(async move {
        let mut signals = 0;
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            signals += 1;
            if signals == 1 {
                const STOPPING: &str =
                    "stopping: flushing what was accepted (signal again to exit at once)";
                match log_format {
                    LogFormat::Text => eprintln!("{STOPPING}"),
                    // Every stderr line is JSON for a log collector (warnings are on by default).
                    LogFormat::Json => tracing::warn!(event = "stopping", "{STOPPING}"),
                }
                stop.notify_one();
            } else {
                std::process::exit(130);
            }
        }
    });
    Ok(notify)
}

async fn sleep_until_opt(until: Option<Instant>) {
    match until {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Spaces sends to a target rate; catches up after short stalls but never bursts
/// more than one second's worth.
struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Instant::now(),
        }
    }

    async fn wait(&mut self) {
        let now = Instant::now();
        let earliest = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        if self.next < earliest {
            self.next = earliest;
        }
        if self.next > now {
            tokio::time::sleep_until(self.next).await;
        }
        self.next += self.interval;
    }
}

/// While the run lasts: on a terminal, redraws one progress line on stderr every second;
/// otherwise (a container, a pipe) logs the same counts at info level every 10 seconds.
fn spawn_progress(producer: Arc<Producer>, terminal: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let period = Duration::from_secs(if terminal { 1 } else { 10 });
        let mut ticker = tokio::time::interval(period);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let m = producer.metrics();
            let rate = m.accepted as f64 / start.elapsed().as_secs_f64();
            if terminal {
                eprint!(
                    "\r\x1b[2Ksent {}  {:.0} events/s  acked {}  failed {}",
                    m.accepted,
                    rate,
                    m.delivered,
                    m.failed()
                );
                let _ = std::io::stderr().flush();
            } else {
                tracing::info!(
                    sent = m.accepted,
                    events_per_s = rate.round(),
                    acked = m.delivered,
                    failed = m.failed(),
                    "progress"
                );
            }
        }
    })
}
