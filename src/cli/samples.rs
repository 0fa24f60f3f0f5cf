//! The run without a command, as the original `cargo run`: a few sample events, one of
//! each type, sent and flushed, and where each one was stored. The default topic is
//! created when missing, so that this works on a fresh local broker; another topic must exist.

use kafka_producer::Producer;
use kafka_producer::config;
use kafka_producer::generator::sample_events;
use kafka_producer::record::event_type_name;

use super::options::{ConnectionArgs, EngineArgs};
use super::{CliError, ExitCode};

pub async fn run(connection: &ConnectionArgs, engine: &EngineArgs) -> Result<ExitCode, CliError> {
    let config = engine.to_config(connection)?;
    if config.topic == config::DEFAULT_TOPIC {
        super::produce::create_topic(
            &config,
            config::DEFAULT_TOPIC_PARTITIONS,
            config::DEFAULT_REPLICATION_FACTOR,
        )
        .await?;
    }
    let topic = config.topic.clone();
    let producer = Producer::connect(config).await?;
    let events = sample_events(super::source::now_ms());
    let mut reports = Vec::with_capacity(events.len());
    for event in &events {
        let report = producer.send(event).await.map_err(|e| CliError {
            code: ExitCode::Failures,
            message: e.to_string(),
        })?;
        reports.push(report);
    }
    producer.flush().await;
    let mut failed = 0;
    for (event, report) in events.iter().zip(reports) {
        match report.await {
            Ok(d) => println!(
                "delivered {:<16} user={} event_id={} to {topic} partition {} offset {}",
                event_type_name(event),
                event.user_id,
                event.event_id,
                d.partition,
                d.offset
            ),
            Err(e) => {
                failed += 1;
                println!(
                    "FAILED {} event_id={}: {e}",
                    event_type_name(event),
                    event.event_id
                );
            }
        }
    }
    producer.close().await;
    println!(
        "{} of {} sample events delivered",
        events.len() - failed,
        events.len()
    );
    Ok(if failed == 0 {
        ExitCode::Success
    } else {
        ExitCode::Failures
    })
}
