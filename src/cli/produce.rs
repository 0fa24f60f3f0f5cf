//! `produce`, the main job: takes events from a source, sends them at the asked rate,
//! collects every delivery report, and ends with a summary and an exit code that says
//! whether everything was delivered. Stops cleanly on SIGINT/SIGTERM (flush first).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use kafka_producer::json_lines::ParseOptions;
use kafka_producer::{DeliveryFuture, Producer, SendError, connect};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::options::{ConnectionArgs, EngineArgs};
use super::source;
use super::summary::Summary;
use super::{CliError, ExitCode};

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Number of generated events (default 1000 unless --duration or --input is given).
    #[arg(long)]
    count: Option<u64>,

    /// Generate for this long, e.g. 30s, 5m; 0 means until stopped (Ctrl-C / SIGTERM).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Events per second at most (default: as fast as the broker takes them).
    #[arg(long, env = "PRODUCE_RATE")]
    rate: Option<f64>,

    /// Size of the generated user population (distinct keys).
    #[arg(long, default_value_t = 100_000)]
    users: u64,

    /// Seed of the generator: the same seed gives the same events (default: from the clock,
    /// so two runs never repeat event ids).
    #[arg(long)]
    seed: Option<u64>,

    /// Read JSON lines (one UserEvent each, protobuf JSON mapping) from FILE, or - for stdin.
    #[arg(long, conflicts_with_all = ["count", "duration", "users", "seed"])]
    input: Option<PathBuf>,

    /// Report bad input lines on stderr and keep going, instead of stopping at the first.
    #[arg(long)]
    skip_invalid: bool,

    /// Drop JSON fields the schema does not have, instead of refusing the line.
    #[arg(long, requires = "input")]
    ignore_unknown_fields: bool,

    /// Create the topic first if it does not exist.
    #[arg(long)]
    create_topic: bool,

    /// Partitions of a topic created by --create-topic.
    #[arg(long, default_value_t = 3)]
    partitions: i32,

    /// Replication factor of a topic created by --create-topic.
    #[arg(long, default_value_t = 1)]
    replication_factor: i16,

    /// How to print the final summary.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    summary: SummaryFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SummaryFormat {
    Text,
    Json,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (examples: 30s, 5m, 1h, 500ms, 0)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit '{unit}' (allowed: ms, s, m, h)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Tallies of the delivery reports, made by the collector task.
#[derive(Debug, Default)]
struct Reports {
    failed_by_reason: BTreeMap<String, u64>,
    first_failures: Vec<String>,
}

pub async fn run(
    connection: &ConnectionArgs,
    engine: &EngineArgs,
    args: ProduceArgs,
) -> Result<ExitCode, CliError> {
    let config = engine.to_config(connection)?;
    if let Some(rate) = args.rate
        && !(rate > 0.0 && rate.is_finite())
    {
        return Err(CliError::usage(format!(
            "invalid value for --rate: {rate} (must be > 0)"
        )));
    }
    if args.partitions < 1 {
        return Err(CliError::usage(
            "invalid value for --partitions: must be at least 1",
        ));
    }
    let input = match &args.input {
        None => None,
        Some(path) if path.as_os_str() == "-" => Some(source::Input::Stdin),
        Some(path) => Some(source::Input::File(std::fs::File::open(path).map_err(
            |e| CliError::usage(format!("cannot open --input {}: {e}", path.display())),
        )?)),
    };

    if args.create_topic {
        let client = connect::connect(&config.connection, config.message_timeout).await?;
        let created = connect::create_topic_if_missing(
            &client,
            &config.topic,
            args.partitions,
            args.replication_factor,
        )
        .await?;
        if created {
            tracing::info!(topic = %config.topic, partitions = args.partitions, "created topic");
            wait_for_topic(&client, &config.topic).await?;
        }
    }
    let topic = config.topic.clone();
    let producer = Arc::new(Producer::connect(config).await?);

    let until = match args.duration {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(Instant::now() + d),
        None => None,
    };
    let mut items = match input {
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
                (None, None) => Some(1000),
            };
            source::generator(
                args.seed.unwrap_or_else(|| source::now_ms() as u64),
                args.users,
                count,
            )
        }
    };

    let (report_tx, report_rx) = mpsc::unbounded_channel::<Vec<DeliveryFuture>>();
    let collector = tokio::spawn(collect_reports(report_rx));
    let stop = stop_signal();
    let terminal = std::io::stderr().is_terminal();
    let progress = spawn_progress(Arc::clone(&producer), terminal);

    let start = Instant::now();
    let mut pacer = args.rate.map(Pacer::new);
    let mut invalid_lines = 0u64;
    let mut interrupted = false;
    let mut bad_input: Option<String> = None;

    'read: loop {
        let chunk = tokio::select! {
            biased;
            _ = stop.notified() => { interrupted = true; break 'read; }
            _ = sleep_until_opt(until) => break 'read,
            chunk = items.recv() => match chunk { Some(c) => c, None => break 'read },
        };
        let mut reports = Vec::with_capacity(chunk.len());
        for item in chunk {
            let event = match item {
                Ok(event) => event,
                Err(error) => {
                    invalid_lines += 1;
                    if args.skip_invalid {
                        eprintln!("skipped {error}");
                        continue;
                    }
                    bad_input = Some(error.to_string());
                    break;
                }
            };
            if let Some(pacer) = &mut pacer {
                pacer.wait().await;
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                break;
            }
            match producer.send(&event).await {
                Ok(report) => reports.push(report),
                Err(error @ SendError::TooLarge { .. }) => {
                    invalid_lines += 1;
                    let message = format!("event {}: {error}", event.event_id);
                    if args.skip_invalid {
                        eprintln!("skipped {message}");
                        continue;
                    }
                    bad_input = Some(message);
                    break;
                }
                Err(error) => {
                    bad_input = Some(error.to_string());
                    break;
                }
            }
        }
        let _ = report_tx.send(reports);
        if bad_input.is_some() {
            interrupted = true;
            break;
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            break;
        }
    }
    drop(items); // stops the source thread
    producer.close().await;
    drop(report_tx);
    let reports = collector
        .await
        .expect("the report collector does not panic");
    progress.abort();
    if terminal {
        eprint!("\r\x1b[2K");
    }

    let metrics = producer.metrics();
    let summary = Summary::new(
        &topic,
        &metrics,
        reports.failed_by_reason.clone(),
        invalid_lines,
        interrupted,
        start.elapsed(),
    );
    for failure in &reports.first_failures {
        eprintln!("failed: {failure}");
    }
    match args.summary {
        SummaryFormat::Json => println!("{}", summary.to_json()),
        SummaryFormat::Text => println!("{}", summary.to_text()),
    }
    if let Some(message) = bad_input {
        return Err(CliError {
            code: ExitCode::BadInput,
            message: format!(
                "{message}; fix the input or pass --skip-invalid (the {} events before it were delivered)",
                summary.delivered
            ),
        });
    }
    if let Some(path) = &args.input
        && summary.sent == 0
        && invalid_lines == 0
        && !interrupted
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
                if reports.first_failures.len() < 5 {
                    reports.first_failures.push(error.to_string());
                }
            }
        }
    }
    reports
}

/// A newly created topic's partitions may not be servable for a moment.
async fn wait_for_topic(client: &rskafka::client::Client, topic: &str) -> Result<(), CliError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect::partition_count(client, topic).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Notified on the first SIGINT/SIGTERM; a second one exits the process at once (130).
fn stop_signal() -> Arc<tokio::sync::Notify> {
    let notify = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::clone(&notify);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        let mut signals = 0;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            signals += 1;
            if signals == 1 {
                eprintln!("stopping: flushing what was accepted (signal again to exit at once)");
                stop.notify_one();
            } else {
                std::process::exit(130);
            }
        }
    });
    notify
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
