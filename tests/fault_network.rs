//! The delivery promise across network faults. A broker this test owns advertises the
//! port of a TCP proxy (tests/common/proxy.rs), so every producer connection goes
//! through it; while a steady load runs, the proxy:
//!
//! - resets every connection mid-request: a produce request reaches the broker, its
//!   response is thrown away and all connections get RST (three times), once with
//!   idempotence (no duplicates may be stored) and once without (duplicates allowed and
//!   counted, order kept);
//! - stalls both directions for 3 s;
//! - drops every request (one-way blackhole) for 2 s, shorter than the 5 s message timeout;
//! - drops every request until the producer has reported a timeout, so longer than it.
//!
//! For each fault: every event gets one report, the reports agree with the topic, the
//! stored order is the send order within each partition, and the producer delivers
//! again once the fault is over.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fault::{Load, OwnedBroker, Verdict, start_load, verify, wait_for_metrics};
use common::proxy::{Mode, Proxy};
use kafka_producer::Producer;

const INSTANCE: &str = "fault-net";
const PORT: u16 = 19392;
const CONTROLLER_PORT: u16 = 19393;
const PROXY_PORT: u16 = 19394;

const LOAD_EVENTS: usize = 150_000;
const LOAD_RATE_PER_S: u64 = 50_000;
/// The fault starts once this many events are acknowledged.
const FAULT_AFTER_DELIVERED: u64 = 30_000;
/// After the fault, the producer must acknowledge this many more events in time.
const RECOVERED_AFTER_DELIVERED: u64 = 10_000;
const STALL: Duration = Duration::from_secs(3);
const SHORT_BLACKHOLE: Duration = Duration::from_secs(2);
const RESETS: u64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    ResetMidRequest,
    Stall,
    BlackholeShorterThanTimeout,
    BlackholeLongerThanTimeout,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_gets_one_report_through_resets_stalls_and_blackholes() {
    common::fault::logs_from_env();
    if common::client_or_skip("fault_network").await.is_none() {
        return;
    }
    let proxy = Proxy::start(PROXY_PORT, PORT).await;
    let _broker = OwnedBroker::start(
        INSTANCE,
        PORT,
        CONTROLLER_PORT,
        &[("KAFKA_ADVERTISED_PORT", PROXY_PORT.to_string())],
    )
    .await;
    let client = client_through(&proxy).await;
    for (i, (fault, idempotence)) in [
        (Fault::ResetMidRequest, true),
        (Fault::ResetMidRequest, false),
        (Fault::Stall, true),
        (Fault::BlackholeShorterThanTimeout, true),
        (Fault::BlackholeLongerThanTimeout, true),
    ]
    .into_iter()
    .enumerate()
    {
        run(&proxy, &client, i as u64, fault, idempotence).await;
    }
}

async fn client_through(proxy: &Proxy) -> rskafka::client::Client {
    common::fault::client_of(vec![proxy.address()], Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e}"))
}

async fn run(
    proxy: &Proxy,
    client: &rskafka::client::Client,
    seed: u64,
    fault: Fault,
    idempotence: bool,
) {
    let started = Instant::now();
    let label = format!("{fault:?} idempotence={idempotence}");
    let topic = common::unique_topic(&format!("net-{seed}"));
    common::create_topic(client, &topic, 3).await;
    let mut config = common::config_for(&topic);
    config.connection.brokers = vec![proxy.address()];
    config.idempotence = idempotence;
    let timeout = config.message_timeout; // the default, 5 s
    let producer = Arc::new(Producer::connect(config).await.unwrap());
    let before = proxy.stats();
    let load = start_load(
        Arc::clone(&producer),
        Load {
            events: LOAD_EVENTS,
            rate_per_s: LOAD_RATE_PER_S,
            seed: 100 + seed,
        },
    );
    wait_for_metrics(
        &producer,
        "events acknowledged before the fault",
        Duration::from_secs(60),
        |m| m.delivered >= FAULT_AFTER_DELIVERED,
    )
    .await;

    let fault_started = Instant::now();
    match fault {
        Fault::ResetMidRequest => {
            for n in 1..=RESETS {
                proxy.reset_all_after_next_produce();
                let deadline = Instant::now() + Duration::from_secs(20);
                while proxy.stats().resets < before.resets + n {
                    assert!(
                        Instant::now() < deadline,
                        "{label}: armed reset {n} never fired: {:?}",
                        proxy.stats()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let delivered = producer.metrics().delivered;
                wait_for_metrics(
                    &producer,
                    "deliveries between resets",
                    Duration::from_secs(30),
                    |m| m.delivered >= delivered + 5_000,
                )
                .await;
            }
        }
        Fault::Stall => {
            proxy.set_mode(Mode::Stall);
            // The fault's length, not a wait for an event.
            tokio::time::sleep(STALL).await;
            proxy.set_mode(Mode::Forward);
        }
        Fault::BlackholeShorterThanTimeout => {
            proxy.set_mode(Mode::DropRequests);
            tokio::time::sleep(SHORT_BLACKHOLE).await;
            proxy.set_mode(Mode::Forward);
        }
        Fault::BlackholeLongerThanTimeout => {
            proxy.set_mode(Mode::DropRequests);
            wait_for_metrics(
                &producer,
                "a failure report during the blackhole",
                timeout + Duration::from_secs(30),
                |m| m.failed() > 0,
            )
            .await;
            proxy.set_mode(Mode::Forward);
        }
    }
    let fault_length = fault_started.elapsed();

    // The producer reconnects (or carries on over the same connections) and delivers.
    let delivered = producer.metrics().delivered;
    let recovery_started = Instant::now();
    wait_for_metrics(
        &producer,
        "deliveries after the fault",
        timeout + Duration::from_secs(30),
        |m| m.delivered >= delivered + RECOVERED_AFTER_DELIVERED,
    )
    .await;
    let recovery = recovery_started.elapsed();

    let (reports, runtime_lag) = load.finish(&producer, Duration::from_secs(180)).await;
    let mut verdict = verify(client, &topic, &reports).await;
    verdict.max_runtime_lag = runtime_lag;
    let stats = proxy.stats();
    eprintln!(
        "fault_network {label}: fault {:.1}s, delivering again after {:.1}s, run {:.1}s, \
         proxy: {} connections, {} requests dropped, {} resets: {verdict}",
        fault_length.as_secs_f64(),
        recovery.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        stats.connections - before.connections,
        stats.requests_dropped - before.requests_dropped,
        stats.resets - before.resets,
    );
    verdict.assert_promise(&label);
    if idempotence {
        verdict.assert_no_duplicates(&label);
    }
    let metrics = producer.metrics();
    let stats = proxy.stats();
    let during = FaultStats {
        responses_swallowed: stats.responses_swallowed - before.responses_swallowed,
        requests_dropped: stats.requests_dropped - before.requests_dropped,
        requests_stalled: stats.requests_stalled - before.requests_stalled,
    };
    check_fault_specific(fault, idempotence, &verdict, &metrics, during, &label);
}

/// What the proxy did during one run.
#[derive(Debug, Clone, Copy)]
struct FaultStats {
    responses_swallowed: u64,
    requests_dropped: u64,
    requests_stalled: u64,
}

fn check_fault_specific(
    fault: Fault,
    idempotence: bool,
    verdict: &Verdict,
    metrics: &kafka_producer::metrics::MetricsSnapshot,
    during: FaultStats,
    label: &str,
) {
    let context = format!("{label}\n{verdict}\n{metrics:?}\n{during:?}");
    match fault {
        Fault::ResetMidRequest => {
            // Each reset threw away the answer to a request the broker had written.
            assert!(during.responses_swallowed >= RESETS, "{context}");
            if idempotence {
                // The producer sent those batches again, and the broker recognised them:
                // nothing is reported lost or doubtful, nothing stored twice.
                assert!(metrics.retries > 0, "{context}");
                assert_eq!(verdict.failures(), 0, "{context}");
            } else {
                // Written, answer lost: stored twice (retried) or reported as "may have
                // been written"; either way it shows.
                assert!(
                    verdict.duplicates > 0 || verdict.maybe_written_found > 0,
                    "a batch written before the reset shows neither as a duplicate nor as a maybe-written failure: {context}"
                );
            }
        }
        // Shorter than the message timeout: everything is delivered, the requests the
        // stall held among them (late, once it was over).
        Fault::Stall => {
            assert!(
                during.requests_stalled > 0,
                "the stall held no request: {context}"
            );
            assert_eq!(verdict.failures(), 0, "{context}");
        }
        Fault::BlackholeShorterThanTimeout => {
            assert!(
                during.requests_dropped > 0,
                "the blackhole dropped nothing: {context}"
            );
            assert!(metrics.retries > 0, "{context}");
            assert_eq!(verdict.failures(), 0, "{context}");
        }
        Fault::BlackholeLongerThanTimeout => {
            assert!(
                during.requests_dropped > 0,
                "the blackhole dropped nothing: {context}"
            );
            assert!(
                verdict.failures() > 0,
                "the blackhole outlasted the timeout, yet nothing failed: {context}"
            );
            // The timed-out batches left their partitions' sequences unknown: the
            // epoch was bumped before those partitions sent again.
            assert!(metrics.epoch_bumps > 0, "{context}");
        }
    }
}
