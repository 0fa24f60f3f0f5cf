//! The Prometheus test harness (tests/common/prometheus.rs) against the real server and
//! promtool from Debian's package: what a scrape stores is what a query returns, a scrape
//! waited for is one made after the wait began, a failed scrape says why, and promtool
//! tells a good exposition from a broken one. The target here is a fixed exposition served
//! by the test, so the harness is proved before the producer's own /metrics exists.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::prometheus::{self, Prometheus};

const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
const SCRAPE_WAIT: Duration = Duration::from_secs(20);

fn exposition(delivered: u64) -> String {
    format!(
        "# HELP kafka_producer_events_delivered_total Events delivered.\n\
         # TYPE kafka_producer_events_delivered_total counter\n\
         kafka_producer_events_delivered_total {delivered}\n"
    )
}

/// Serves `exposition(counter)` at any path on a loopback port, one request per
/// connection, from a thread that lives as long as the test process.
fn serve_counter(counter: Arc<AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the exposition port");
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let mut line = String::new();
            // The request line and headers, up to the empty line.
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let body = exposition(counter.load(Ordering::SeqCst));
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn prometheus_stores_what_it_scrapes_and_a_waited_for_scrape_is_a_fresh_one() {
    if !prometheus::installed_or_skip("prometheus_stores_what_it_scrapes") {
        return;
    }
    let counter = Arc::new(AtomicU64::new(41));
    let target = serve_counter(counter.clone());
    let server = Prometheus::start(&target, SCRAPE_INTERVAL);

    server
        .wait_for_scrape(SCRAPE_WAIT)
        .unwrap_or_else(|e| panic!("first scrape of {target}: {e}"));
    assert_eq!(
        server.query(&format!("up{{job=\"{}\"}}", prometheus::JOB)),
        Some(1.0),
        "Prometheus does not report its target {target} as up"
    );
    assert_eq!(
        server.query("kafka_producer_events_delivered_total"),
        Some(41.0),
        "the stored counter differs from the one served"
    );

    // A change on the target is seen by the first scrape waited for after it.
    counter.store(1_000_042, Ordering::SeqCst);
    server
        .wait_for_scrape(SCRAPE_WAIT)
        .unwrap_or_else(|e| panic!("second scrape of {target}: {e}"));
    assert_eq!(
        server.query("kafka_producer_events_delivered_total"),
        Some(1_000_042.0),
        "after wait_for_scrape the query still returns the value from before"
    );
    assert_eq!(
        server.query("kafka_producer_no_such_metric"),
        None,
        "a series never scraped has no value"
    );
}

#[test]
fn a_failed_scrape_is_reported_with_prometheus_reason() {
    if !prometheus::installed_or_skip("a_failed_scrape_is_reported") {
        return;
    }
    // Nothing listens there: every scrape fails with a refused connection.
    let target = format!("127.0.0.1:{}", prometheus::free_port());
    let server = Prometheus::start(&target, SCRAPE_INTERVAL);
    let error = server
        .wait_for_scrape(SCRAPE_WAIT)
        .expect_err("a scrape of a port nothing listens on succeeded");
    assert!(
        error.contains("up = Some(0.0)") && error.contains("connection refused"),
        "the failure should give up = 0 and Prometheus's reason: {error}"
    );
}

#[test]
fn promtool_accepts_a_valid_exposition_and_rejects_broken_ones() {
    if !prometheus::installed_or_skip("promtool_accepts_a_valid_exposition") {
        return;
    }
    prometheus::promtool_check_metrics(&exposition(42))
        .unwrap_or_else(|e| panic!("a valid exposition was rejected: {e}"));

    let unparsable = "kafka_producer_events_delivered_total{reason=\"x\" 42\n";
    let error = prometheus::promtool_check_metrics(unparsable)
        .expect_err("promtool accepted a label set that is never closed");
    assert!(error.contains("parsing error"), "{error}");

    // Parses, but breaks the naming convention a counter must follow.
    let unlinted = "# HELP kafka_producer_events_delivered Events delivered.\n\
                    # TYPE kafka_producer_events_delivered counter\n\
                    kafka_producer_events_delivered 42\n";
    let error = prometheus::promtool_check_metrics(unlinted)
        .expect_err("promtool accepted a counter without the _total suffix");
    assert!(error.contains("_total"), "{error}");
}
