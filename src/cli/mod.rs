//! The command line: options (each also an environment variable), the commands, and the
//! exit codes. Parsed by `main`; calls into the library and the command modules beside it.

mod consume;
mod errors;
mod metrics_server;
pub(crate) mod options;
mod produce;
mod samples;
mod schema_cmd;
mod source;
mod summary;
mod verify;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

pub use errors::{CliError, ExitCode};
use options::{ConnectionArgs, EngineArgs};

/// A pure-Rust Kafka producer for UserEvent protobuf messages, ZSTD-compressed.
///
/// Without a command it sends a few sample events (one of each type) and prints where
/// they were stored, like the original `cargo run`.
#[derive(Debug, Parser)]
#[command(name = "kafka-producer", version, about, long_about = None)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    connection: ConnectionArgs,

    /// Logs on stderr as text, or as one JSON object per line (for log collectors).
    #[arg(long, env = "KAFKA_PRODUCER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text,
          global = true, help_heading = "Output")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    command: Option<Command>,
}

/// How the logs on stderr are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

const EXIT_CODES_HELP: &str = "Exit codes:
  0  success: every event delivered / topic clean / schema compatible
  1  some events were not delivered, verify found duplicates or undecodable records,
     or schema check found a breaking change
  2  invalid option or configuration (nothing was sent)
  3  cannot reach or use the cluster: broker unreachable, authentication or TLS
     failure, topic missing, or an ACL that refuses this user the topic, its
     creation or idempotent writes
  4  bad input: a line that cannot be used, an event over the size limits, or an input
     with no events (what was accepted before it is delivered)
130  a second Ctrl-C / SIGTERM stopped the process at once, or one came before the
     producer had connected (nothing was sent)";

#[derive(Debug, Subcommand)]
enum Command {
    /// Produce generated events or JSON lines: the main job.
    Produce(Box<produce::ProduceArgs>),
    /// Print the topic's records as JSON lines, decoded as UserEvent.
    Consume(consume::ConsumeArgs),
    /// Read the whole topic and count records, distinct event ids, duplicates.
    Verify(verify::VerifyArgs),
    /// Show the compiled-in schema, check a new version, print a Kubernetes ConfigMap.
    #[command(subcommand)]
    Schema(schema_cmd::SchemaCommand),
}

/// The command line's definition: the derived one, with the ranges of `consume`'s own
/// numbers, so that every number is checked as it is parsed, before anything connects.
pub fn command() -> clap::Command {
    Cli::command().mut_subcommand("consume", |consume| {
        consume
            .mut_arg("partition", |arg| {
                arg.value_parser(options::integer_in(0..=i32::MAX))
            })
            .mut_arg("count", |arg| {
                arg.value_parser(options::integer_in(1..=u64::MAX))
            })
    })
}

/// Parses the process's arguments; a bad one prints clap's error and exits with 2.
pub fn parse() -> Cli {
    Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        None => {
            let engine = EngineArgs::from_env().map_err(|e| {
                // clap's first line, without its "error: " and the --help hint below it.
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                CliError::usage(format!(
                    "{} (from the environment)",
                    first.strip_prefix("error: ").unwrap_or(first)
                ))
            })?;
            samples::run(&cli.connection, &engine).await
        }
        Some(Command::Produce(args)) => produce::run(&cli.connection, cli.log_format, *args).await,
        Some(Command::Consume(args)) => {
            // consume reads with the connection settings only: the engine's are defaults.
            consume::run(&cli.connection, &EngineArgs::defaults(), args).await
        }
        Some(Command::Verify(args)) => verify::run(&cli.connection, args).await,
        Some(Command::Schema(command)) => schema_cmd::run(command),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: our warnings; rskafka's logs are
/// left out, since every error it meets comes back to us and ends in one line of ours).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rskafka=off"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        // The same fields as the text lines, flattened: {"timestamp","level","message",...}.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}
