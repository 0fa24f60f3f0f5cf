//! `consume`: prints a topic's records as JSON lines, each decoded as a `UserEvent` with
//! its partition, offset, key and headers. For checking what was produced; not a
//! consumer-group client. A record that does not decode is reported, never skipped.

use clap::{Args, ValueEnum};
use kafka_producer::connect;
use kafka_producer::json_lines::event_to_json;
use kafka_producer::reader::{self, StartAt, StoredRecord};
use serde_json::json;
use tokio::sync::mpsc;

use super::options::{ConnectionArgs, EngineArgs};
use super::{CliError, ExitCode};

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Where to start in each partition.
    #[arg(long, value_enum, default_value_t = From::Beginning)]
    from: From,

    /// Stop after this many records.
    #[arg(long)]
    count: Option<u64>,

    /// Read only this partition.
    #[arg(long)]
    partition: Option<i32>,

    /// Keep waiting for new records instead of stopping at the end.
    #[arg(long)]
    follow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum From {
    Beginning,
    End,
}

pub async fn run(
    connection: &ConnectionArgs,
    engine: &EngineArgs,
    args: ConsumeArgs,
) -> Result<ExitCode, CliError> {
    let config = engine.to_config(connection)?;
    let client = connect::connect(&config.connection, config.message_timeout).await?;
    let partitions = connect::partition_count(&client, &config.topic).await?;
    let selected: Vec<i32> = match args.partition {
        Some(p) if p < 0 || p as u32 >= partitions => {
            return Err(CliError::usage(format!(
                "invalid value for --partition: {p} (topic '{}' has partitions 0..{})",
                config.topic,
                partitions - 1
            )));
        }
        Some(p) => vec![p],
        None => (0..partitions as i32).collect(),
    };
    let start = match args.from {
        From::Beginning => StartAt::Beginning,
        From::End => StartAt::End,
    };
    let client = std::sync::Arc::new(client);
    let (tx, mut rx) = mpsc::unbounded_channel::<Result<StoredRecord, CliError>>();
    for partition in selected {
        let (client, tx, topic) = (client.clone(), tx.clone(), config.topic.clone());
        let follow = args.follow;
        tokio::spawn(async move {
            let result = reader::read_partition(&client, &topic, partition, start, follow, |r| {
                tx.send(Ok(r)).is_ok()
            })
            .await;
            if let Err(e) = result {
                let _ = tx.send(Err(e.into()));
            }
        });
    }
    drop(tx);

    let mut printed = 0u64;
    let mut undecodable = 0u64;
    while let Some(item) = rx.recv().await {
        let record = item?;
        match record.decode() {
            Ok(event) => {
                let headers: serde_json::Map<String, serde_json::Value> = record
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned().into()))
                    .collect();
                let line = json!({
                    "partition": record.partition,
                    "offset": record.offset,
                    "key": record.key.as_deref().map(String::from_utf8_lossy),
                    "headers": headers,
                    "timestamp": record.timestamp_ms,
                    "event": event_to_json(&event),
                });
                println!("{line}");
            }
            Err(why) => {
                undecodable += 1;
                eprintln!(
                    "partition {} offset {}: not a UserEvent ({why})",
                    record.partition, record.offset
                );
            }
        }
        printed += 1;
        if args.count.is_some_and(|n| printed >= n) {
            break;
        }
    }
    Ok(if undecodable == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failures
    })
}
