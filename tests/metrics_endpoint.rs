//! `produce --metrics-addr` against real parts: a real Prometheus server scrapes the
//! producer under load and stores what the producer's own summary reports, promtool
//! accepts the exposition, and `/readyz` follows the broker: 503 while it is down (a
//! broker process this test owns, killed), 200 again once it is back.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fault::OwnedBroker;
use common::prometheus::{self, Prometheus, http_get};
use kafka_producer::generator::Generator;
use kafka_producer::json_lines::event_to_json;

const INSTANCE: &str = "readiness";
const PORT: u16 = 19592;
const CONTROLLER_PORT: u16 = 19593;

/// Longest wait for something the test waits on (a scrape, a state change); reaching it
/// is a failure, not a timing claim.
const PATIENCE: Duration = Duration::from_secs(90);

fn producer(args: &[&str], metrics_addr: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kafka-producer"));
    command
        .args(args)
        .env("KAFKA_PRODUCER_METRICS_ADDR", metrics_addr)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Polls `check` every 200 ms until it gives a value, or fails after PATIENCE.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn finish(child: Child) -> (Option<i32>, String, String) {
    let out = child.wait_with_output().expect("the producer ends");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_the_delivered_count_the_summary_reports() {
    let Some(client) = common::client_or_skip("metrics-prometheus").await else {
        return;
    };
    if !prometheus::installed_or_skip("metrics-prometheus") {
        return;
    }
    let topic = common::unique_topic("metrics");
    common::create_topic(&client, &topic, 3).await;
    const EVENTS: u64 = 50_000;
    let mut lines = String::new();
    let mut generator = Generator::new(11, 1000);
    for i in 0..EVENTS {
        let event = generator.next_event(1_700_000_000_000 + i as i64);
        lines.push_str(&event_to_json(&event).to_string());
        lines.push('\n');
    }

    let metrics_addr = format!("127.0.0.1:{}", prometheus::free_port());
    let broker = common::broker();
    let topic_arg = topic.clone();
    let addr = metrics_addr.clone();
    tokio::task::spawn_blocking(move || {
        let mut child = producer(
            &[
                "--broker",
                &broker,
                "--topic",
                &topic_arg,
                "produce",
                "--input",
                "-",
                "--summary",
                "json",
            ],
            &addr,
        )
        .stdin(Stdio::piped())
        .spawn()
        .expect("start the producer");
        let server = Prometheus::start(&addr, Duration::from_millis(500));
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(lines.as_bytes()).expect("write the events");
        stdin.flush().expect("flush the events");

        // stdin stays open: the producer has delivered everything and keeps serving
        // until Prometheus has stored the final count.
        let delivered = r#"kafka_producer_events_delivered_total{job="kafka-producer"}"#;
        let stored = wait_for("Prometheus stores every delivery", || {
            server.query(delivered).filter(|v| *v as u64 == EVENTS)
        });
        let (status, exposition) = http_get(&addr, "/metrics").expect("GET /metrics");
        assert_eq!(status, 200);
        prometheus::promtool_check_metrics(&exposition)
            .unwrap_or_else(|e| panic!("promtool refuses the exposition: {e}\n{exposition}"));
        // Every family served is in the README's table, under its served name.
        let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
        for line in exposition.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split_whitespace().nth(2).expect("a name");
            let documented = readme.contains(&format!("`{name}`"))
                || readme.contains(&format!("`{name}{{"));
            assert!(documented, "README's metrics table lacks {name}");
        }
        let batches = server
            .query(r#"kafka_producer_batches_sent_total{job="kafka-producer"}"#)
            .expect("batches sent are scraped");
        let requests = server
            .query(r#"sum(kafka_producer_produce_request_duration_seconds_count{job="kafka-producer"})"#)
            .expect("request durations are scraped");
        assert!(batches >= 3.0 && requests >= 1.0, "batches {batches}, requests {requests}");
        assert_eq!(
            server.query(r#"sum(kafka_producer_events_failed_total{job="kafka-producer"})"#),
            Some(0.0)
        );
        assert_eq!(
            server.query(r#"kafka_producer_broker_connected{job="kafka-producer"}"#),
            Some(1.0),
            "connected to its one broker"
        );

        drop(stdin);
        let (code, stdout, stderr) = finish(child);
        assert_eq!(code, Some(0), "{stderr}");
        let summary: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}"));
        assert_eq!(
            summary["delivered"].as_u64(),
            Some(stored as u64),
            "Prometheus stored what the summary reports: {summary}"
        );
    })
    .await
    .expect("the test thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_while_the_broker_is_down_and_200_once_it_is_back() {
    if common::client_or_skip("metrics-readiness").await.is_none() {
        return;
    }
    let broker = OwnedBroker::start(INSTANCE, PORT, CONTROLLER_PORT, &[]).await;
    let address = broker.address();
    let topic = common::unique_topic("readiness");
    let metrics_addr = format!("127.0.0.1:{}", prometheus::free_port());
    let child = producer(
        &[
            "--broker",
            &address,
            "--topic",
            &topic,
            "produce",
            "--create-topic",
            "--duration",
            "0",
            "--rate",
            "2000",
            // Outlasts the outage, so what is accepted meanwhile can be delivered.
            "--message-timeout",
            "120s",
            "--summary",
            "json",
        ],
        &metrics_addr,
    )
    .spawn()
    .expect("start the producer");

    let ready = |addr: &str| http_get(addr, "/readyz").ok();
    let (_, body) = wait_for("ready once connected", || {
        ready(&metrics_addr).filter(|(status, _)| *status == 200)
    });
    assert_eq!(body, "ready\n");
    assert_eq!(
        http_get(&metrics_addr, "/healthz").expect("GET /healthz"),
        (200, "ok\n".to_string())
    );

    broker.kill9().await;
    let (_, reason) = wait_for("not ready while the broker is down", || {
        ready(&metrics_addr).filter(|(status, _)| *status == 503)
    });
    assert!(reason.contains("unreachable"), "503 says why: {reason}");
    assert_eq!(
        http_get(&metrics_addr, "/healthz").expect("GET /healthz").0,
        200,
        "alive all along: a restart would not help"
    );

    broker.up().await;
    wait_for("ready again once the broker is back", || {
        ready(&metrics_addr).filter(|(status, _)| *status == 200)
    });

    // SIGTERM: the producer flushes what it accepted, reports every event once and
    // exits 0 only if all were delivered.
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || finish(child))
        .await
        .expect("wait thread");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}\nstderr: {stderr}"));
    let count = |field: &str| summary[field].as_u64().expect("a count");
    assert!(count("sent") > 0, "{summary}");
    assert_eq!(
        count("delivered") + count("failed"),
        count("sent"),
        "one report per event: {summary}"
    );
    let expected = if count("failed") == 0 { 0 } else { 1 };
    assert_eq!(code, Some(expected), "{summary}\nstderr: {stderr}");
}
