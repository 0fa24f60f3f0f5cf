//! Authorization against a real broker this test owns with Kafka's StandardAuthorizer
//! (scripts/kafka.sh with KAFKA_SECURITY=1 KAFKA_AUTHORIZER=1: only ACLs grant) that
//! creates topics on first use (auto.create.topics.enable, as many production brokers):
//! - the super user alice asking for a missing topic is told it is missing (exit 3), and
//!   looking it up by name did not create it;
//! - with no ACL, the unprivileged SASL user bob is told the cluster refused him the
//!   topic (not that it does not exist) and, with `--create-topic`, refused its
//!   creation, each with exit 3;
//! - allowed to see the topic but to write nowhere, bob is refused idempotent writes
//!   (InitProducerId answers CLUSTER_AUTHORIZATION_FAILED): start-up fails with exit 3
//!   and one line saying so, what to grant and how to turn idempotence off, and nothing
//!   is stored;
//! - granted Write on the topic (which Kafka 2.8 and later take as IDEMPOTENT_WRITE), bob
//!   produces idempotently: every event stored once, every stored batch with a producer
//!   id and contiguous sequences.

mod common;

use common::fault::OwnedBroker;
use std::collections::HashSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const INSTANCE: &str = "authorization";
const BASE_PORT: u16 = 29292;
const SASL_PLAINTEXT: u16 = BASE_PORT + 2;
const PARTITIONS: i32 = 3;
/// Events of the run that is allowed to write.
const EVENTS: usize = 300;
/// How long a topic that a lookup asked the broker to create is watched for (created
/// within ~0.5 s here when the lookup allowed it).
const AUTO_CREATE_WATCH: Duration = Duration::from_secs(3);
/// How long an ACL may take to reach the broker's authorizer after it was added.
const ACL_PATIENCE: Duration = Duration::from_secs(30);

/// The binary as bob, over SASL_PLAINTEXT with PLAIN.
fn produce_as_bob(topic: &str, extra: &[&str]) -> Output {
    produce_as(("bob", "bob-secret"), topic, extra)
}

fn produce_as((user, password): (&str, &str), topic: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kafka-producer"))
        .env_remove("RUST_LOG")
        .env_remove("KAFKA_IDEMPOTENCE")
        .env("KAFKA_BROKER", format!("localhost:{SASL_PLAINTEXT}"))
        .env("KAFKA_USERNAME", user)
        .env("KAFKA_PASSWORD", password)
        .env("KAFKA_SASL_MECHANISM", "PLAIN")
        .args(["--topic", topic, "produce", "--count", &EVENTS.to_string()])
        .args(["--summary", "json"])
        .args(extra)
        .output()
        .expect("the binary runs")
}

/// Grants bob `operation` on `topic` and waits until the broker's authorizer lists it.
async fn grant(owned: &OwnedBroker, topic: &str, operation: &str) {
    let server = format!("127.0.0.1:{BASE_PORT}");
    let acls = ["run-class", "org.apache.kafka.tools.AclCommand"];
    let on_topic = ["--bootstrap-server", &server, "--topic", topic];
    let add = [
        "--add",
        "--allow-principal",
        "User:bob",
        "--operation",
        operation,
    ];
    owned.script(&[&acls[..], &on_topic, &add].concat()).await;
    let list = [&acls[..], &on_topic, &["--list"]].concat();
    let deadline = Instant::now() + ACL_PATIENCE;
    loop {
        let listed = owned.script_stdout(&list).await;
        if listed.lines().any(|l| {
            l.contains("principal=User:bob")
                && l.contains(&format!("operation={}", operation.to_uppercase()))
        }) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the ACL {operation} for bob on {topic} is not listed after {ACL_PATIENCE:?}: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What `topic` holds, read through the broker's PLAINTEXT listener (whose principal
/// is a super user).
async fn stored_event_ids(owned: &OwnedBroker, topic: &str) -> (usize, HashSet<String>) {
    common::stored_event_ids(&owned.client(Duration::from_secs(10)).await, topic).await
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts that a run was refused at start-up: exit 3, one line on stderr naming each
/// of `needed`. Returns that line.
fn assert_refused(out: &Output, context: &str, needed: &[&str]) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{context}: exit 3; {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{context}: one line: {stderr}");
    for needed in needed {
        assert!(
            stderr.contains(needed),
            "{context}: the message names {needed:?}: {stderr}"
        );
    }
    stderr
}

#[tokio::test]
async fn unauthorised_principals_are_told_what_was_refused_and_what_to_grant() {
    if common::client_or_skip("authorization").await.is_none() {
        return;
    }
    let owned = OwnedBroker::start(
        INSTANCE,
        BASE_PORT,
        BASE_PORT + 1,
        &[
            ("KAFKA_SECURITY", "1".to_string()),
            ("KAFKA_AUTHORIZER", "1".to_string()),
            ("KAFKA_AUTO_CREATE_TOPICS", "true".to_string()),
        ],
    )
    .await;

    // A missing topic is reported, not created by the lookups that find it missing.
    let missing = common::unique_topic("authorization-missing");
    let out = produce_as(("alice", "alice-secret"), &missing, &[]);
    assert_refused(&out, "missing topic", &["does not exist"]);
    // A broker creates a topic asked for a moment after it answered: look for a while.
    let client = owned.client(Duration::from_secs(10)).await;
    let watch_until = Instant::now() + AUTO_CREATE_WATCH;
    while Instant::now() < watch_until {
        let listed = client.list_topics().await.expect("listing topics");
        assert!(
            !listed.iter().any(|t| t.name == missing),
            "looking {missing} up created it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let topic = common::unique_topic("authorization");
    owned
        .script(&["create-topic", &topic, &PARTITIONS.to_string()])
        .await;

    // No ACL: the topic is hidden from bob, which the cluster says when asked by name.
    for (extra, needed) in [
        (
            &[][..],
            ["TopicAuthorizationFailed", "Describe on the topic"],
        ),
        (
            &["--create-topic"][..],
            ["creating topic", "Create on the topic"],
        ),
    ] {
        let hidden = produce_as_bob(&topic, extra);
        let stderr = assert_refused(&hidden, &format!("hidden topic {extra:?}"), &needed);
        assert!(
            !stderr.contains("does not exist"),
            "{extra:?}: an existing topic is not called missing: {stderr}"
        );
    }

    grant(&owned, &topic, "Describe").await;

    // Bob sees the topic but may write nowhere: no producer id for him.
    let refused = produce_as_bob(&topic, &[]);
    assert_refused(
        &refused,
        "refused idempotence",
        &[
            "ClusterAuthorizationFailed",
            "Write on the topic",
            "IDEMPOTENT_WRITE",
            "--idempotence false",
        ],
    );
    assert_eq!(
        stored_event_ids(&owned, &topic).await.0,
        0,
        "a producer that did not start stores nothing"
    );

    // Write on the topic includes idempotent writes.
    grant(&owned, &topic, "Write").await;
    let allowed = produce_as_bob(&topic, &[]);
    let stdout = text(&allowed.stdout);
    assert!(
        allowed.status.success(),
        "bob with Write produces; stdout: {stdout} stderr: {}",
        text(&allowed.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("--summary json is one JSON object ({e}): {stdout}"));
    assert_eq!(summary["delivered"], EVENTS, "summary: {summary}");
    let (records, ids) = stored_event_ids(&owned, &topic).await;
    assert_eq!(
        (records, ids.len()),
        (EVENTS, EVENTS),
        "every event stored once"
    );
    for partition in 0..PARTITIONS {
        let batches = common::dump_batches_of(INSTANCE, &topic, partition);
        assert!(!batches.is_empty(), "partition {partition} holds batches");
        common::assert_idempotent_batches(&batches, &format!("{topic}-{partition}"));
    }
}
