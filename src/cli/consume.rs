//! `consume`: prints a topic's records as JSON lines, each decoded as a `UserEvent` with
//! its partition, offset, key and headers. For checking what was produced; not a
//! consumer-group client. A record that does not decode is reported, never skipped.
//! Fed records by `reader`; the `event` it prints is the JSON mapping `produce --input`
//! reads, so `consume | jq -c .event | produce --input -` stores the same record values.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;

use clap::{Args, ValueEnum};
use kafka_producer::connect;
use kafka_producer::event::UserEvent;
use kafka_producer::json_lines::write_event_json;
use kafka_producer::reader::{self, StartAt, StoredRecord};
use serde::Serialize;
use serde_json::value::RawValue;
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
    let client = connect::connect_for(&config).await?;
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
    let mut out = std::io::stdout().lock();
    let mut line = Vec::new();
    while let Some(item) = rx.recv().await {
        let record = item?;
        line.clear();
        let written = record
            .decode()
            .map_err(|why| format!("not a UserEvent ({why})"))
            .and_then(|event| write_line(&record, &event, &mut line));
        match written {
            Ok(()) => {
                line.push(b'\n');
                out.write_all(&line)
                    .and_then(|()| out.flush())
                    .map_err(|e| CliError::usage(format!("cannot write to stdout: {e}")))?;
            }
            Err(why) => {
                undecodable += 1;
                eprintln!(
                    "partition {} offset {}: {why}",
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

/// One printed record. Fields in alphabetical order, the order they have always had.
#[derive(Serialize)]
struct Line<'a> {
    /// The event as `json_lines::write_event_json` writes it.
    event: &'a RawValue,
    headers: BTreeMap<&'a str, Cow<'a, str>>,
    key: Option<Cow<'a, str>>,
    offset: i64,
    partition: i32,
    timestamp: i64,
}

/// Writes the record as one JSON line (no line end) into `out`.
fn write_line(record: &StoredRecord, event: &UserEvent, out: &mut Vec<u8>) -> Result<(), String> {
    let mut event_json = Vec::new();
    write_event_json(event, &mut event_json)?;
    let event_json = String::from_utf8(event_json).map_err(|e| e.to_string())?;
    let event = RawValue::from_string(event_json).map_err(|e| e.to_string())?;
    let line = Line {
        event: &event,
        headers: record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), String::from_utf8_lossy(v)))
            .collect(),
        key: record.key.as_deref().map(String::from_utf8_lossy),
        offset: record.offset,
        partition: record.partition,
        timestamp: record.timestamp_ms,
    };
    serde_json::to_writer(out, &line).map_err(|e| e.to_string())
}
