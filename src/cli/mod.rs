//! The command line: options (each also an environment variable), the commands, and the
//! exit codes. Parsed by `main`; calls into the library and the command modules beside it.

mod consume;
mod errors;
mod options;
mod produce;
mod samples;
mod schema_cmd;
mod source;
mod summary;
mod verify;

use clap::{Parser, Subcommand};

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

    #[command(flatten)]
    engine: EngineArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

const EXIT_CODES_HELP: &str = "Exit codes:
  0  success: every event delivered / topic clean / schema compatible
  1  some events were not delivered, verify found duplicates or undecodable records,
     or schema check found a breaking change
  2  invalid option or configuration (nothing was sent)
  3  cannot reach or use the cluster: broker unreachable, authentication or TLS
     failure, topic missing
  4  bad input: a line that cannot be used, an event over the size limits, or an input
     with no events (what was accepted before it is delivered)
130  a second Ctrl-C / SIGTERM stopped the process at once";

#[derive(Debug, Subcommand)]
enum Command {
    /// Produce generated events or JSON lines: the main job.
    Produce(produce::ProduceArgs),
    /// Print the topic's records as JSON lines, decoded as UserEvent.
    Consume(consume::ConsumeArgs),
    /// Read the whole topic and count records, distinct event ids, duplicates.
    Verify(verify::VerifyArgs),
    /// Show the compiled-in schema, check a new version, print a Kubernetes ConfigMap.
    #[command(subcommand)]
    Schema(schema_cmd::SchemaCommand),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        None => samples::run(&cli.connection, &cli.engine).await,
        Some(Command::Produce(args)) => produce::run(&cli.connection, &cli.engine, args).await,
        Some(Command::Consume(args)) => consume::run(&cli.connection, &cli.engine, args).await,
        Some(Command::Verify(args)) => verify::run(&cli.connection, &cli.engine, args).await,
        Some(Command::Schema(command)) => schema_cmd::run(command),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: our warnings; rskafka's per-retry
/// warnings are left out, since each failure ends in one error line of ours anyway).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rskafka=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
