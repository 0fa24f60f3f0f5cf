//! Security against a real broker this test owns with SASL_PLAINTEXT, SSL and SASL_SSL
//! listeners (scripts/kafka.sh with KAFKA_SECURITY=1, a throw-away CA): producing works
//! through each with the documented environment variables and every SASL mechanism (the
//! topic read back holds each event once); a wrong password and a wrong CA are refused at
//! once (no waiting out the connect timeout) and a plaintext client on the TLS port is
//! told so, each with exit code 3; the password never shows in logs, even at
//! RUST_LOG=trace.

mod common;

use common::fault::OwnedBroker;
use std::collections::HashSet;
use std::process::{Command, Output};
use std::time::Duration;

const INSTANCE: &str = "security";
const BASE_PORT: u16 = 29192;
const SASL_PLAINTEXT: u16 = BASE_PORT + 2;
const SSL: u16 = BASE_PORT + 3;
const SASL_SSL: u16 = BASE_PORT + 4;
const PASSWORD: &str = "alice-secret";
/// Events each good run produces.
const EVENTS: usize = 200;

fn tls_dir() -> std::path::PathBuf {
    common::kafka_root().join(format!("{INSTANCE}/tls"))
}

fn produce(envs: &[(&str, String)], topic: &str, extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kafka-producer"));
    command
        .env_remove("RUST_LOG")
        .env_remove("KAFKA_USERNAME")
        .env_remove("KAFKA_PASSWORD");
    for (k, v) in envs {
        command.env(k, v);
    }
    command.args(["--topic", topic]).args(extra).args([
        "produce",
        "--count",
        &EVENTS.to_string(),
        "--create-topic",
        "--summary",
        "json",
    ]);
    command.output().expect("the binary runs")
}

/// What `topic` holds, read through the broker's plaintext listener (not the binary's
/// own summary).
async fn stored_event_ids(address: &str, topic: &str) -> (usize, HashSet<String>) {
    let client = common::fault::client_of(vec![address.to_string()], Duration::from_secs(10))
        .await
        .expect("the plaintext listener answers");
    common::stored_event_ids(&client, topic).await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Environment variables for one run of the binary.
type Env = Vec<(&'static str, String)>;

fn sasl(mechanism: &str, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_USERNAME", "alice".to_string()),
        ("KAFKA_PASSWORD", password.to_string()),
        ("KAFKA_SASL_MECHANISM", mechanism.to_string()),
    ]
}

fn tls(ca: &str) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_TLS", "true".to_string()),
        ("KAFKA_CA_FILE", tls_dir().join(ca).display().to_string()),
    ]
}

#[tokio::test]
async fn every_secured_listener_accepts_good_credentials_and_refuses_bad_ones_fast() {
    if common::client_or_skip("security").await.is_none() {
        return;
    }
    let owned = OwnedBroker::start(
        INSTANCE,
        BASE_PORT,
        BASE_PORT + 1,
        &[("KAFKA_SECURITY", "1".to_string())],
    )
    .await;
    let broker = |port: u16| ("KAFKA_BROKER", format!("localhost:{port}"));

    let good: Vec<(&str, Env)> = vec![
        (
            "SASL_PLAINTEXT PLAIN",
            [vec![broker(SASL_PLAINTEXT)], sasl("PLAIN", PASSWORD)].concat(),
        ),
        (
            "SASL_PLAINTEXT SCRAM-SHA-256",
            [
                vec![broker(SASL_PLAINTEXT)],
                sasl("SCRAM-SHA-256", PASSWORD),
            ]
            .concat(),
        ),
        (
            "SASL_PLAINTEXT SCRAM-SHA-512",
            [
                vec![broker(SASL_PLAINTEXT)],
                sasl("SCRAM-SHA-512", PASSWORD),
            ]
            .concat(),
        ),
        ("SSL", [vec![broker(SSL)], tls("ca.pem")].concat()),
        (
            "SASL_SSL SCRAM-SHA-256",
            [
                vec![broker(SASL_SSL)],
                tls("ca.pem"),
                sasl("SCRAM-SHA-256", PASSWORD),
            ]
            .concat(),
        ),
        (
            "SASL_SSL SCRAM-SHA-512",
            [
                vec![broker(SASL_SSL)],
                tls("ca.pem"),
                sasl("SCRAM-SHA-512", PASSWORD),
            ]
            .concat(),
        ),
    ];
    for (name, envs) in &good {
        let topic = common::unique_topic("security");
        let out = produce(envs, &topic, &[]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let (records, ids) = stored_event_ids(&owned.address(), &topic).await;
        assert_eq!(
            (records, ids.len()),
            (EVENTS, EVENTS),
            "{name}: (records stored, distinct events) in {topic}"
        );
    }
    let topic = common::unique_topic("security");

    let bad: Vec<(&str, Env, &str)> = vec![
        (
            "wrong password",
            [
                vec![broker(SASL_PLAINTEXT)],
                sasl("SCRAM-SHA-512", "not-the-password"),
            ]
            .concat(),
            "refused the SASL credentials",
        ),
        (
            "wrong CA",
            [vec![broker(SSL)], tls("other-ca.pem")].concat(),
            "TLS to the broker failed",
        ),
        (
            "plaintext on the TLS port",
            vec![broker(SSL)],
            "TLS or SASL listener",
        ),
    ];
    for (name, envs, expected) in &bad {
        // A refusal is final: the binary gives up at once instead of retrying until the
        // connect timeout, so with an hour's timeout it returning at all shows it. A
        // plaintext client on the TLS port only sees the connection close (the broker
        // waits a few seconds for the rest of what it takes for a TLS record), which
        // could be a broker starting: it retries until the timeout.
        let connect_timeout = if *name == "plaintext on the TLS port" {
            "8s"
        } else {
            "1h"
        };
        let out = produce(envs, &topic, &["--connect-timeout", connect_timeout]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{name}: one line, no retry storm: {stderr}"
        );
    }

    let mut envs = [
        vec![broker(SASL_SSL)],
        tls("ca.pem"),
        sasl("PLAIN", PASSWORD),
    ]
    .concat();
    envs.push(("RUST_LOG", "trace".to_string()));
    let out = produce(&envs, &topic, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let logs = text(&out.stderr) + &text(&out.stdout);
    assert!(logs.lines().count() > 50, "trace logging was not on");
    assert!(
        !logs.contains(PASSWORD),
        "the password appears in the trace logs"
    );
}
