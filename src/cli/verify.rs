//! `verify`: reads the whole topic and reports records, distinct event ids, duplicates,
//! undecodable records and per-partition counts; fails on duplicates, undecodable
//! records, or a count that differs from `--expect`.

use clap::Args;
use kafka_producer::{config, connect, reader};

use super::options::ConnectionArgs;
use super::{CliError, ExitCode};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Fail unless the topic holds exactly this many distinct event ids.
    #[arg(long, value_parser = super::options::integer_in(0..=u64::MAX))]
    expect: Option<u64>,

    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn run(connection: &ConnectionArgs, args: VerifyArgs) -> Result<ExitCode, CliError> {
    let settings = connection.to_config()?;
    // Reads retry as long as the producer's default message timeout lets a send retry.
    let client = connect::connect(
        &settings,
        config::DEFAULT_REQUEST_TIMEOUT,
        config::DEFAULT_MESSAGE_TIMEOUT,
    )
    .await?;
    let topic = &connection.topic;
    let v = reader::verify(&client, topic).await?;
    let expectation_met = args.expect.is_none_or(|n| n == v.distinct_event_ids);
    if args.json {
        println!("{}", serde_json::to_string(&v).expect("serializes"));
    } else {
        println!(
            "topic {}: {} records, {} distinct event ids, {} duplicates, {} undecodable",
            topic,
            v.records,
            v.distinct_event_ids,
            v.duplicates,
            v.undecodable.len()
        );
        let parts: Vec<String> = v
            .per_partition
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect();
        println!("per partition: {}", parts.join(", "));
        for bad in v.undecodable.iter().take(10) {
            println!("undecodable {bad}");
        }
    }
    if let Some(n) = args.expect
        && !expectation_met
    {
        eprintln!(
            "expected {n} distinct event ids, found {}",
            v.distinct_event_ids
        );
    }
    Ok(if v.is_clean() && expectation_met {
        ExitCode::Success
    } else {
        ExitCode::Failures
    })
}
