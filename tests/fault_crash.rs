//! The delivery promise across broker crashes. While a steady load of generated events
//! runs, the broker this test owns (its own instance, ports and data dir) is killed with
//! SIGKILL and started again on the same data dir:
//!
//! - A: the message timeout (60 s) outlasts the outage: every event is acknowledged and
//!   every acknowledged event is in the topic at its reported offset.
//! - B: the default 5 s timeout, and the broker stays down until some event has timed
//!   out: every event gets one report, the reports agree with the topic, and delivery
//!   resumes once the broker is back.
//!
//! In both, with idempotence on (the default), no event is stored twice and each
//! partition stores its events in the order they were sent.
//!
//! A single broker with acks=all acknowledges a batch once it is in the page cache; a
//! process kill (not a machine crash) keeps the page cache, so acknowledged data survives
//! kill -9 without fsync. That is what case A checks.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fault::{Load, OwnedBroker, start_load, verify, wait_for_metrics};
use kafka_producer::Producer;

const INSTANCE: &str = "fault-crash";
const PORT: u16 = 19292;
const CONTROLLER_PORT: u16 = 19293;

/// Each round runs case A then case B.
const ROUNDS: u64 = 3;
const LOAD_EVENTS: usize = 300_000;
const LOAD_RATE_PER_S: u64 = 75_000;
/// The broker is killed once this many events are acknowledged: well inside the run.
const KILL_AFTER_DELIVERED: u64 = 60_000;
/// Events sent after the run, once the broker is back: all must be acknowledged.
const RESUMED_AFTER_RESTART: usize = 10_000;
/// Case A's message timeout: longer than kill + restart (about 5 s) on a busy machine.
const LONG_MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// A: outage shorter than the message timeout.
    OutageShorterThanTimeout,
    /// B: outage longer than the (default) message timeout.
    OutageLongerThanTimeout,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_events_survive_broker_kill9_and_every_event_gets_one_report() {
    common::fault::logs_from_env();
    if common::client_or_skip("fault_crash").await.is_none() {
        return;
    }
    let broker = OwnedBroker::start(INSTANCE, PORT, CONTROLLER_PORT, &[]).await;
    for round in 1..=ROUNDS {
        run(&broker, round, Case::OutageShorterThanTimeout).await;
        run(&broker, round, Case::OutageLongerThanTimeout).await;
    }
}

async fn run(broker: &OwnedBroker, round: u64, case: Case) {
    let started = Instant::now();
    let label = format!("round {round} {case:?}");
    let client = broker.client(Duration::from_secs(30)).await;
    let topic = common::unique_topic(&format!("crash-{round}-{}", case as u8));
    common::create_topic(&client, &topic, 3).await;
    let mut config = common::config_for(&topic);
    config.connection.brokers = vec![broker.address()];
    if case == Case::OutageShorterThanTimeout {
        config.message_timeout = LONG_MESSAGE_TIMEOUT;
    }
    let timeout = config.message_timeout;
    let producer = Arc::new(Producer::connect(config).await.unwrap());
    let load = start_load(
        Arc::clone(&producer),
        Load {
            events: LOAD_EVENTS,
            rate_per_s: LOAD_RATE_PER_S,
            seed: round * 2 + case as u64,
        },
    );

    wait_for_metrics(
        &producer,
        "events acknowledged before the kill",
        Duration::from_secs(60),
        |m| m.delivered >= KILL_AFTER_DELIVERED,
    )
    .await;
    let killed_at = Instant::now();
    broker.kill9().await;
    if case == Case::OutageLongerThanTimeout {
        // Down until the producer has given up on something: the outage outlasted the
        // message timeout of at least one event.
        wait_for_metrics(
            &producer,
            "a failure report while the broker is down",
            timeout + Duration::from_secs(30),
            |m| m.failed() > 0,
        )
        .await;
    }
    broker.up().await;
    let outage = killed_at.elapsed();

    let to_kill = killed_at - started;
    let (reports, runtime_lag) = load
        .finish_with_tail(&producer, Duration::from_secs(240), RESUMED_AFTER_RESTART)
        .await;
    let finished = started.elapsed();
    let mut verdict = verify(
        &broker.client(Duration::from_secs(30)).await,
        &topic,
        &reports,
    )
    .await;
    verdict.max_runtime_lag = runtime_lag;
    eprintln!(
        "fault_crash {label}: to kill {:.1}s outage {:.1}s finished {:.1}s run {:.1}s: {verdict}",
        to_kill.as_secs_f64(),
        outage.as_secs_f64(),
        finished.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    verdict.assert_promise(&label);
    verdict.assert_no_duplicates(&label);

    // Delivery resumes: the events sent after the load, once the broker is back,
    // are all acknowledged.
    let tail = &reports[reports.len() - RESUMED_AFTER_RESTART..];
    let failed_tail = tail.iter().filter(|r| r.outcome.is_err()).count();
    assert_eq!(
        failed_tail, 0,
        "{label}: {failed_tail} of the {RESUMED_AFTER_RESTART} events sent after the broker came back failed\n{verdict}"
    );
    match case {
        Case::OutageShorterThanTimeout => assert_eq!(
            verdict.acknowledged,
            LOAD_EVENTS + RESUMED_AFTER_RESTART,
            "{label}: the timeout outlasts the outage, so every event must be acknowledged\n{verdict}"
        ),
        Case::OutageLongerThanTimeout => {
            assert!(
                verdict.failures() > 0,
                "{label}: the outage outlasted the timeout, yet nothing failed\n{verdict}"
            );
        }
    }
}
