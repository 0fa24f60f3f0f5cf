//! `make test` and someone else's broker: `scripts/kafka.sh up` with KAFKA_OWN_BROKER=1 (as
//! `make test` runs it) refuses a broker it did not start on its port, at once and in one
//! line that says what to stop, since tests read the log segments of this checkout's own.

mod common;

use std::process::{Command, Output};

/// Runs `scripts/kafka.sh up` for an instance in a fresh KAFKA_ROOT, on the port where the
/// test broker listens: to that instance, the test broker is someone else's. Also says
/// whether the instance left a pid file (it started a broker of its own).
fn up_beside_the_test_broker(own_broker: bool) -> (Output, bool) {
    let port = common::broker()
        .rsplit_once(':')
        .map(|(_, port)| port.to_string())
        .expect("KAFKA_BROKER is host:port");
    // One root per call: the tests run at once in one process, and each removes its own.
    let root = std::env::temp_dir().join(format!(
        "foreign-broker-{}-{own_broker}",
        std::process::id()
    ));
    let out = Command::new(common::repo_root().join("scripts/kafka.sh"))
        .arg("up")
        .env("KAFKA_ROOT", &root)
        .env("KAFKA_INSTANCE", "someone-else")
        .env("KAFKA_PORT", &port)
        .env("KAFKA_OWN_BROKER", if own_broker { "1" } else { "0" })
        .output()
        .expect("scripts/kafka.sh runs");
    let started = root.join("someone-else/kafka.pid").exists();
    let _ = std::fs::remove_dir_all(&root);
    (out, started)
}

#[tokio::test]
async fn make_test_refuses_a_broker_it_did_not_start_and_says_what_to_stop() {
    let Some(_client) = common::client_or_skip("foreign-broker").await else {
        return;
    };
    let (out, started) = up_beside_the_test_broker(true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    for words in [
        "did not start answers on port",
        "stop that broker",
        "make test KAFKA_PORT=",
    ] {
        assert!(stderr.contains(words), "{words:?} missing: {stderr}");
    }
    assert!(!started, "it started a broker of its own: {stderr}");
}

#[tokio::test]
async fn kafka_up_alone_still_uses_a_broker_it_did_not_start() {
    let Some(_client) = common::client_or_skip("foreign-broker-use").await else {
        return;
    };
    let (out, started) = up_beside_the_test_broker(false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!started, "it started a broker of its own: {stderr}");
    assert!(
        stderr.contains("using it, not starting another"),
        "{stderr}"
    );
}
