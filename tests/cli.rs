//! The real `kafka-producer` binary against the real broker: what a user types, what
//! they see, and the exit codes the README documents.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::fault::OwnedBroker;
use kafka_producer::event::UserEvent;
use kafka_producer::json_lines::{event_to_json, parse_line};
use kafka_producer::reader;

fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kafka-producer"));
    command
        .env("KAFKA_BROKER", common::broker())
        .env_remove("RUST_LOG");
    command
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn run_with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_summary(out: &Output) -> serde_json::Value {
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no summary; stderr: {}", text(&out.stderr)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {line}"))
}

#[tokio::test]
async fn no_command_sends_one_sample_of_each_event_type_and_prints_offsets() {
    let Some(client) = common::client_or_skip("cli-samples").await else {
        return;
    };
    let topic = common::unique_topic("cli-samples");
    common::create_topic(&client, &topic, 3).await;
    let out = run(&["--topic", &topic]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    for kind in ["USER_REGISTERED", "USER_LOGIN", "USER_LOGOUT", "UNKNOWN"] {
        assert!(
            stdout.contains(&format!("delivered {kind}")),
            "{kind} missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("offset "), "{stdout}");
    let stored = reader::read_all(&client, &topic).await.unwrap();
    let delivered = stdout
        .lines()
        .filter(|l| l.starts_with("delivered"))
        .count();
    assert_eq!(
        stored.len(),
        delivered,
        "records in the topic vs lines printed"
    );
}

/// Ports of the fresh broker below, apart from every other test's.
const FRESH_PORT: u16 = 19492;
const FRESH_CONTROLLER_PORT: u16 = 19493;

#[tokio::test]
async fn no_command_on_a_fresh_broker_creates_the_default_topic_but_no_other() {
    if common::client_or_skip("cli-fresh").await.is_none() {
        return; // no broker, so no Kafka installation to start a fresh one from
    }
    let broker =
        common::fault::OwnedBroker::start("cli-fresh", FRESH_PORT, FRESH_CONTROLLER_PORT, &[])
            .await;
    let fresh = |args: &[&str]| {
        bin()
            .env("KAFKA_BROKER", broker.address())
            .env_remove("KAFKA_TOPIC")
            .args(args)
            .output()
            .expect("the binary runs")
    };
    let out = fresh(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("4 of 4 sample events delivered"),
        "{stdout}"
    );
    let client = broker.client(std::time::Duration::from_secs(10)).await;
    assert_eq!(
        kafka_producer::connect::partition_count(&client, kafka_producer::config::DEFAULT_TOPIC)
            .await
            .unwrap(),
        kafka_producer::config::DEFAULT_TOPIC_PARTITIONS as u32
    );
    assert_eq!(
        reader::read_all(&client, kafka_producer::config::DEFAULT_TOPIC)
            .await
            .unwrap()
            .len(),
        4
    );

    let out = fresh(&["--topic", "not.the.default"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("topic 'not.the.default' does not exist"),
        "{stderr}"
    );
}

#[tokio::test]
async fn produce_count_prints_a_json_summary_and_verify_finds_every_event() {
    let Some(_client) = common::client_or_skip("cli-produce").await else {
        return;
    };
    let topic = common::unique_topic("cli-produce");
    let out = run(&[
        "--topic",
        &topic,
        "produce",
        "--count",
        "5000",
        "--create-topic",
        "--partitions",
        "3",
        "--summary",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let summary = json_summary(&out);
    assert_eq!(summary["sent"], 5000, "{summary}");
    assert_eq!(summary["delivered"], 5000, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert!(summary["batches"].as_u64().unwrap() >= 3, "{summary}");
    assert!(
        summary["mean_records_per_batch"].as_f64().unwrap() > 1.0,
        "{summary}"
    );

    let verify = run(&["--topic", &topic, "verify", "--expect", "5000", "--json"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["records"], 5000);
    assert_eq!(report["duplicates"], 0);
}

fn sample_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"eventId":"id-{i}","timestamp":"1700000000{i:03}","userId":"user-{i}","eventType":"USER_LOGIN","data":{{"metadata":{{"source":"web"}}}}}}"#
            )
        })
        .collect()
}

#[tokio::test]
async fn bad_input_line_stops_the_run_with_its_line_number_after_delivering_earlier_lines() {
    let Some(client) = common::client_or_skip("cli-badline").await else {
        return;
    };
    let topic = common::unique_topic("cli-badline");
    common::create_topic(&client, &topic, 3).await;
    let mut lines = sample_lines(5);
    lines.insert(3, r#"{"userId":"u","eventType":"USER_JUMPED"}"#.to_string());
    let input = lines.join("\n") + "\n";

    let out = run_with_stdin(
        &[
            "--topic",
            &topic,
            "produce",
            "--input",
            "-",
            "--summary",
            "json",
        ],
        &input,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "stderr: {stderr}");
    assert!(stderr.contains("line 4:"), "{stderr}");
    assert!(
        stderr.contains("--skip-invalid"),
        "the error says what to do: {stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("Error:")).count(),
        1,
        "{stderr}"
    );
    assert_eq!(json_summary(&out)["delivered"], 3);
    assert_eq!(reader::read_all(&client, &topic).await.unwrap().len(), 3);

    let out = run_with_stdin(
        &[
            "--topic",
            &topic,
            "produce",
            "--input",
            "-",
            "--skip-invalid",
            "--summary",
            "json",
        ],
        &input,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains("line 4:"), "{stderr}");
    let summary = json_summary(&out);
    assert_eq!(
        (
            summary["delivered"].as_u64(),
            summary["invalid_lines"].as_u64()
        ),
        (Some(5), Some(1))
    );
    assert_eq!(reader::read_all(&client, &topic).await.unwrap().len(), 8);
}

#[tokio::test]
async fn consume_prints_the_same_events_that_were_produced() {
    let Some(client) = common::client_or_skip("cli-consume").await else {
        return;
    };
    let topic = common::unique_topic("cli-consume");
    common::create_topic(&client, &topic, 3).await;
    let lines = sample_lines(20);
    let out = run_with_stdin(
        &["--topic", &topic, "produce", "--input", "-"],
        &(lines.join("\n") + "\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = run(&["--topic", &topic, "consume", "--count", "20"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut consumed: Vec<UserEvent> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["headers"]["event-type"], "USER_LOGIN");
            assert_eq!(v["key"], v["event"]["userId"]);
            parse_line(&v["event"].to_string(), 0).unwrap()
        })
        .collect();
    let mut produced: Vec<UserEvent> = lines.iter().map(|l| parse_line(l, 0).unwrap()).collect();
    consumed.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    produced.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    assert_eq!(consumed, produced);
    assert_eq!(
        event_to_json(&consumed[0])["eventId"],
        produced[0].event_id.as_str()
    );
}

#[tokio::test]
async fn verify_fails_on_a_duplicated_event() {
    let Some(client) = common::client_or_skip("cli-dup").await else {
        return;
    };
    let topic = common::unique_topic("cli-dup");
    common::create_topic(&client, &topic, 3).await;
    let mut lines = sample_lines(10);
    lines.push(lines[4].clone()); // the same event id written twice
    let out = run_with_stdin(
        &["--topic", &topic, "produce", "--input", "-"],
        &(lines.join("\n") + "\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&["--topic", &topic, "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["records"].as_u64(), report["duplicates"].as_u64()),
        (Some(11), Some(1))
    );
}

#[test]
fn invalid_option_values_fail_before_connecting_with_exit_code_2() {
    // Port 1 on loopback refuses connections: reaching it would print a cluster error.
    for (args, expected) in [
        (vec!["produce", "--compression", "brotli"], "--compression"),
        (
            vec!["produce", "--buffer-max-bytes", "12XB"],
            "--buffer-max-bytes",
        ),
        (
            vec!["produce", "--batch-max-messages", "0"],
            "--batch-max-records",
        ),
        (vec!["produce", "--partitioner", "random"], "--partitioner"),
        (vec!["produce", "--rate=0"], "--rate"),
        (
            vec![
                "produce",
                "--batch-max-bytes",
                "1MiB",
                "--buffer-max-bytes",
                "1000KiB",
            ],
            "--buffer-max-bytes (KAFKA_BUFFER_MAX_BYTES) 1024000 is out of range",
        ),
    ] {
        let out = bin()
            .env("KAFKA_BROKER", "127.0.0.1:1")
            .args(&args)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("cannot reach"),
            "{args:?} connected first: {stderr}"
        );
    }
}

#[test]
fn unreachable_broker_at_start_up_fails_with_exit_code_3_and_says_what_to_check() {
    let out = bin()
        .env("KAFKA_BROKER", "127.0.0.1:1")
        .args(["--connect-timeout-s", "2", "produce", "--count", "1"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot reach a Kafka broker at 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("KAFKA_BROKER"), "{stderr}");
}

#[tokio::test]
async fn missing_topic_without_create_topic_fails_with_exit_code_3() {
    let Some(_client) = common::client_or_skip("cli-notopic").await else {
        return;
    };
    let topic = common::unique_topic("cli-notopic");
    let out = run(&["--topic", &topic, "produce", "--count", "1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("topic '{topic}' does not exist")),
        "{stderr}"
    );
    assert!(stderr.contains("--create-topic"), "{stderr}");
}

#[test]
fn schema_check_accepts_a_compatible_change_and_rejects_a_breaking_one() {
    let dir = std::env::temp_dir().join(format!("schema-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let compatible = dir.join("compatible.proto");
    let breaking = dir.join("breaking.proto");
    let current = kafka_producer::schema::USER_EVENT_PROTO;
    std::fs::write(
        &compatible,
        current.replace(
            "  map<string, string> metadata = 3;",
            "  map<string, string> metadata = 3;\n  optional string country = 4;",
        ),
    )
    .unwrap();
    std::fs::write(
        &breaking,
        current.replace("int64 timestamp = 2;", "string timestamp = 2;"),
    )
    .unwrap();

    let out = run(&["schema", "check", compatible.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = run(&["schema", "check", breaking.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("timestamp (field 2): type changed from int64 to string"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn schema_configmap_is_yaml_with_the_proto_as_data() {
    let out = run(&["schema", "configmap", "--namespace", "events"]);
    assert_eq!(out.status.code(), Some(0));
    let docs = yaml_rust2::YamlLoader::load_from_str(&text(&out.stdout)).unwrap();
    assert_eq!(docs[0]["kind"].as_str(), Some("ConfigMap"));
    assert_eq!(
        docs[0]["metadata"]["name"].as_str(),
        Some("protobuf-schemas")
    );
    assert_eq!(
        docs[0]["data"]["user_event.proto"].as_str(),
        Some(kafka_producer::schema::USER_EVENT_PROTO)
    );
    let show = run(&["schema", "show"]);
    assert_eq!(text(&show.stdout), kafka_producer::schema::USER_EVENT_PROTO);
}

#[tokio::test]
async fn sigint_stops_producing_flushes_and_prints_the_summary() {
    let Some(client) = common::client_or_skip("cli-sigint").await else {
        return;
    };
    let topic = common::unique_topic("cli-sigint");
    common::create_topic(&client, &topic, 3).await;
    let child = endless_produce(&topic).spawn().unwrap();
    wait_for_records(&client, &topic).await;
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary = json_summary(&out);
    assert_eq!(summary["interrupted"], true, "{summary}");
    assert!(summary["sent"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(
        summary["delivered"], summary["sent"],
        "everything accepted was flushed: {summary}"
    );
    let stored = reader::read_all(&client, &topic).await.unwrap();
    assert_eq!(stored.len() as u64, summary["delivered"].as_u64().unwrap());
}

/// Waits until the topic holds a record: the producer is past connecting and sending.
async fn wait_for_records(client: &rskafka::client::Client, topic: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while reader::read_all(client, topic).await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no record reached {topic} in 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// `produce --duration 0` at 2,000 events/s, its output piped, to be spawned.
fn endless_produce(topic: &str) -> Command {
    let mut command = bin();
    command
        .args([
            "--topic",
            topic,
            "produce",
            "--duration",
            "0",
            "--rate",
            "2000",
            "--summary",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn sigterm_flushes_like_sigint_and_a_second_signal_exits_at_once_with_130() {
    let Some(client) = common::client_or_skip("cli-sigterm").await else {
        return;
    };
    let topic = common::unique_topic("cli-sigterm");
    common::create_topic(&client, &topic, 3).await;
    let child = endless_produce(&topic).spawn().unwrap();
    wait_for_records(&client, &topic).await;
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary = json_summary(&out);
    assert_eq!(summary["interrupted"], true, "{summary}");
    assert_eq!(summary["delivered"], summary["sent"], "{summary}");

    // Two signals: the first starts the flush, the second ends the process at once. The
    // producer's broker (one of the test's own) is frozen before them, so the flush
    // cannot finish before the second signal (against a live broker, a loaded machine
    // could let the flush of a slow run end between the two).
    let broker = OwnedBroker::start("cli-signals", 19692, 19693, &[]).await;
    let client = broker.client(Duration::from_secs(10)).await;
    common::create_topic(&client, &topic, 3).await;
    let mut producer = endless_produce(&topic);
    let mut child = producer
        .env("KAFKA_BROKER", broker.address())
        .spawn()
        .unwrap();
    wait_for_records(&client, &topic).await;
    broker.script(&["freeze"]).await;
    signal(&child, "INT");
    // The second signal once the first one's flush has begun.
    let stderr = stderr_until(&mut child, "stopping: flushing what was accepted");
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
}

/// Reads the child's stderr on a thread of its own and returns once a line holding
/// `words` was read; the thread's result is the whole of stderr, once the child ended.
fn stderr_until(child: &mut std::process::Child, words: &str) -> std::thread::JoinHandle<String> {
    use std::io::BufRead;
    let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr is piped"));
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let wanted = words.to_string();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains(&wanted) {
                let _ = seen_tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    // Only a bound for a run that never prints it.
    if seen.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("stderr never showed {words:?}: {}", reader.join().unwrap());
    }
    reader
}

#[tokio::test]
async fn events_not_delivered_in_time_end_the_run_with_exit_code_1() {
    let Some(client) = common::client_or_skip("cli-undelivered").await else {
        return;
    };
    let topic = common::unique_topic("cli-undelivered");
    common::create_topic(&client, &topic, 3).await;
    // Batches wait for the 15 min linger, so every event but the last few outlives its
    // 1 ms message timeout while queued.
    let out = run(&[
        "--topic",
        &topic,
        "produce",
        "--count",
        "50",
        "--rate",
        "500",
        "--linger",
        "15m",
        "--message-timeout",
        "1ms",
        "--summary",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let summary = json_summary(&out);
    let failed = summary["failed"].as_u64().unwrap();
    assert!(failed > 0, "{summary}");
    assert_eq!(
        failed + summary["delivered"].as_u64().unwrap(),
        50,
        "{summary}"
    );
    assert!(
        text(&out.stderr).contains("failed: message timed out while queued"),
        "{}",
        text(&out.stderr)
    );
}

/// CRC-32 (IEEE, reflected, as zlib's `crc32()`), one bit at a time: an oracle written
/// apart from the partitioner's.
fn crc32_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn consistent_random_puts_each_key_on_crc32_of_it_modulo_the_partitions() {
    let Some(client) = common::client_or_skip("cli-consistent").await else {
        return;
    };
    assert_eq!(
        crc32_bitwise(b"123456789"),
        0xcbf4_3926,
        "the oracle itself"
    );
    let topic = common::unique_topic("cli-consistent");
    common::create_topic(&client, &topic, 5).await;
    let out = run(&[
        "--topic",
        &topic,
        "produce",
        "--partitioner",
        "consistent_random",
        "--count",
        "300",
        "--users",
        "50",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stored = reader::read_all(&client, &topic).await.unwrap();
    assert_eq!(stored.len(), 300);
    for record in &stored {
        let key = record
            .key
            .as_deref()
            .expect("every event has a user id key");
        assert_eq!(
            record.partition as u32,
            crc32_bitwise(key) % 5,
            "key {}",
            String::from_utf8_lossy(key)
        );
    }
}

#[tokio::test]
async fn create_topic_makes_the_partitions_asked_for() {
    let Some(client) = common::client_or_skip("cli-partitions").await else {
        return;
    };
    let topic = common::unique_topic("cli-partitions");
    let out = run(&[
        "--topic",
        &topic,
        "produce",
        "--create-topic",
        "--partitions",
        "5",
        "--count",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        kafka_producer::connect::partition_count(&client, &topic)
            .await
            .unwrap(),
        5
    );
}

#[tokio::test]
async fn verify_fails_on_a_count_other_than_expected_and_consume_on_a_record_that_is_no_event() {
    let Some(client) = common::client_or_skip("cli-unclean").await else {
        return;
    };
    let topic = common::unique_topic("cli-unclean");
    common::create_topic(&client, &topic, 1).await;
    let out = run_with_stdin(
        &["--topic", &topic, "produce", "--input", "-"],
        &(sample_lines(3).join("\n") + "\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&["--topic", &topic, "verify", "--expect", "4"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("expected 4 distinct event ids, found 3"),
        "{}",
        text(&out.stderr)
    );

    // A record whose value is not a UserEvent (a field 1 with wire type 7 does not decode).
    let partition = kafka_producer::connect::partition_client(&client, &topic, 0)
        .await
        .unwrap();
    let record = rskafka::record::Record {
        key: None,
        value: Some(vec![0x0f, 0xff, 0xff]),
        headers: Default::default(),
        timestamp: common::timestamp_from_millis(1_700_000_000_000),
    };
    partition
        .produce(
            vec![record],
            rskafka::client::partition::Compression::NoCompression,
        )
        .await
        .unwrap();
    let out = run(&["--topic", &topic, "consume"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("offset 3: not a UserEvent"), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 3, "the three events");
}

#[tokio::test]
async fn unusable_input_ends_with_one_line_and_exit_code_4() {
    let Some(client) = common::client_or_skip("cli-input").await else {
        return;
    };
    let topic = common::unique_topic("cli-input");
    common::create_topic(&client, &topic, 3).await;
    let good = sample_lines(2).join("\n");

    // A line that is not UTF-8, after two good ones.
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(b"{\"userId\":\"\xff\xfe\"}\n");
    let path = std::env::temp_dir().join(format!("non-utf8-{}.jsonl", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let out = run(&[
        "--topic",
        &topic,
        "produce",
        "--input",
        path.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("line 3:") && stderr.contains("UTF-8"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("Error:")).count(),
        1,
        "{stderr}"
    );

    // Empty input.
    let out = run_with_stdin(&["--topic", &topic, "produce", "--input", "-"], "");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("held no events"), "{stderr}");

    // An event larger than the batch byte cap.
    let big = format!(
        r#"{{"eventId":"big","userId":"u","eventType":"USER_LOGIN","data":{{"metadata":{{"blob":"{}"}}}}}}"#,
        "x".repeat(5_000)
    );
    let out = run_with_stdin(
        &[
            "--topic",
            &topic,
            "produce",
            "--batch-max-bytes",
            "2000",
            "--buffer-max-bytes",
            "1MiB",
            "--input",
            "-",
        ],
        &format!("{big}\n"),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("larger than --batch-max-bytes (KAFKA_BATCH_MAX_BYTES), 2000 bytes"),
        "{stderr}"
    );
    assert!(
        stderr.contains("event big of "),
        "names the event: {stderr}"
    );
    assert_eq!(
        reader::read_all(&client, &topic).await.unwrap().len(),
        2,
        "only the good lines"
    );
}

/// What a record stores, without where: value, key, timestamp, headers.
type Stored = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    i64,
    Vec<(String, Vec<u8>)>,
);

/// The topic's records as [`Stored`], sorted, so that two topics with the same records
/// compare equal whatever their partitions and offsets.
async fn stored_contents(client: &rskafka::client::Client, topic: &str) -> Vec<Stored> {
    let mut contents: Vec<_> = reader::read_all(client, topic)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.value,
                r.key,
                r.timestamp_ms,
                r.headers.into_iter().collect(),
            )
        })
        .collect();
    contents.sort();
    contents
}

/// Lines covering the mapping's corner cases for a round trip: generated events, and the
/// defaults (`eventId` "", `timestamp` 0, `UNKNOWN`, empty data) that a writer leaving
/// defaults out would turn into a fresh id or the current time on the way back in.
fn round_trip_lines() -> String {
    let mut generator = kafka_producer::generator::Generator::new(7, 50);
    let mut input = Vec::new();
    for i in 0..200 {
        kafka_producer::json_lines::write_event_json(
            &generator.next_event(1_700_000_000_000 + i),
            &mut input,
        )
        .unwrap();
        input.push(b'\n');
    }
    let mut text = String::from_utf8(input).unwrap();
    text.push_str(
        r#"{"eventId":"","timestamp":"0","userId":"u-default"}
{"event_id":"snake","timestamp":-1,"user_id":"u-snake","event_type":2,"data":{}}
{"eventId":"nulls","timestamp":5,"userId":"u-null","eventType":null,"data":{"email":null,"metadata":{}}}
{"eventId":"quotes","timestamp":6,"userId":"ü \"q\" 🦀","eventType":"USER_REGISTERED","data":{"email":"","username":"\u0000\n"}}
"#,
    );
    text
}

#[tokio::test]
async fn consume_events_fed_back_to_produce_store_byte_identical_records() {
    let Some(client) = common::client_or_skip("cli-roundtrip").await else {
        return;
    };
    let first = common::unique_topic("cli-roundtrip-a");
    let second = common::unique_topic("cli-roundtrip-b");
    common::create_topic(&client, &first, 3).await;
    common::create_topic(&client, &second, 3).await;
    let input = round_trip_lines();
    let lines = input.lines().count();
    let out = run_with_stdin(&["--topic", &first, "produce", "--input", "-"], &input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let consumed = run(&["--topic", &first, "consume", "--count", &lines.to_string()]);
    assert_eq!(
        consumed.status.code(),
        Some(0),
        "{}",
        text(&consumed.stderr)
    );
    // `jq -c .event`, in Rust, so the test needs no jq.
    let events: String = text(&consumed.stdout)
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            format!("{}\n", record["event"])
        })
        .collect();
    assert_eq!(events.lines().count(), lines);
    let out = run_with_stdin(&["--topic", &second, "produce", "--input", "-"], &events);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let (a, b) = (
        stored_contents(&client, &first).await,
        stored_contents(&client, &second).await,
    );
    assert_eq!(a.len(), lines);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x, y,
            "a record changed on the way through consume and produce"
        );
    }
    assert_eq!(a, b);
}

#[tokio::test]
async fn consume_piped_through_jq_into_produce_stores_byte_identical_records() {
    let Some(client) = common::client_or_skip("cli-jq").await else {
        return;
    };
    let jq = Command::new("jq").arg("--version").output();
    if !jq.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED cli-jq: no jq on PATH; consume_events_fed_back_to_produce_store_byte_identical_records checks the same in Rust"
        );
        return;
    }
    let first = common::unique_topic("cli-jq-a");
    let second = common::unique_topic("cli-jq-b");
    common::create_topic(&client, &first, 3).await;
    common::create_topic(&client, &second, 1).await;
    let input = round_trip_lines();
    let lines = input.lines().count();
    let out = run_with_stdin(&["--topic", &first, "produce", "--input", "-"], &input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let binary = env!("CARGO_BIN_EXE_kafka-producer");
    let pipeline = format!(
        "set -o pipefail; '{binary}' --topic '{first}' consume --count {lines} \
         | jq -c .event | '{binary}' --topic '{second}' produce --input -"
    );
    let out = Command::new("bash")
        .args(["-c", &pipeline])
        .env("KAFKA_BROKER", common::broker())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        stored_contents(&client, &first).await,
        stored_contents(&client, &second).await
    );
}

#[tokio::test]
async fn unknown_fields_are_refused_unless_ignore_unknown_fields_is_given() {
    let Some(client) = common::client_or_skip("cli-unknown").await else {
        return;
    };
    let topic = common::unique_topic("cli-unknown");
    common::create_topic(&client, &topic, 1).await;
    let input = r#"{"eventId":"e","userId":"u","eventType":"USER_LOGIN","sessionId":"s","data":{"plan":"x"}}"#;

    let out = run_with_stdin(&["--topic", &topic, "produce", "--input", "-"], input);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("line 1: unknown field \"sessionId\"")
            && stderr.contains("--ignore-unknown-fields"),
        "names the field and the flag: {stderr}"
    );
    assert_eq!(reader::read_all(&client, &topic).await.unwrap().len(), 0);

    let out = run_with_stdin(
        &[
            "--topic",
            &topic,
            "produce",
            "--input",
            "-",
            "--ignore-unknown-fields",
        ],
        input,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stored = reader::read_all(&client, &topic).await.unwrap();
    assert_eq!(stored.len(), 1);
    let event = stored[0].decode().unwrap();
    assert_eq!(
        (event.event_id.as_str(), event.user_id.as_str()),
        ("e", "u")
    );
    assert_eq!(
        event.data,
        Some(Default::default()),
        "data kept, plan dropped"
    );
}

#[tokio::test]
async fn consume_prints_an_enum_number_the_schema_lacks_as_that_number() {
    let Some(client) = common::client_or_skip("cli-enum-number").await else {
        return;
    };
    let topic = common::unique_topic("cli-enum-number");
    common::create_topic(&client, &topic, 1).await;
    // A record as a producer with a newer schema (one more event type) writes it.
    let producer = kafka_producer::Producer::connect(common::config_for(&topic))
        .await
        .unwrap();
    let event = UserEvent {
        event_id: "newer".into(),
        timestamp: 9,
        user_id: "u".into(),
        event_type: 7,
        ..Default::default()
    };
    producer.send(&event).await.unwrap().await.unwrap();
    producer.close().await;

    let out = run(&["--topic", &topic, "consume", "--count", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed["event"],
        serde_json::json!({"eventId": "newer", "timestamp": "9", "userId": "u", "eventType": 7}),
        "{printed}"
    );
}

#[tokio::test]
async fn json_lines_from_stdin_are_stored_in_input_order_per_key() {
    let Some(client) = common::client_or_skip("cli-order").await else {
        return;
    };
    let topic = common::unique_topic("cli-order");
    common::create_topic(&client, &topic, 3).await;
    // More lines than the reader thread runs ahead of the producer, over a few keys.
    let lines = 30_000;
    let input: String = (0..lines)
        .map(|i| {
            format!(
                "{{\"eventId\":\"{i}\",\"userId\":\"user-{}\",\"eventType\":\"USER_LOGIN\"}}\n",
                i % 5
            )
        })
        .collect();
    let out = run_with_stdin(&["--topic", &topic, "produce", "--input", "-"], &input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let mut per_key: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for record in reader::read_all(&client, &topic).await.unwrap() {
        let event = record.decode().unwrap();
        per_key
            .entry(event.user_id)
            .or_default()
            .push(event.event_id.parse().unwrap());
    }
    assert_eq!(per_key.len(), 5);
    for (key, ids) in per_key {
        let expected: Vec<u64> = (0..lines)
            .filter(|i| i % 5 == key[5..].parse::<u64>().unwrap())
            .collect();
        assert_eq!(ids.len(), expected.len(), "{key}");
        assert!(ids == expected, "{key}: events stored out of input order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_from_a_live_pipe_are_delivered_while_the_pipe_stays_open() {
    let Some(client) = common::client_or_skip("cli-live-pipe").await else {
        return;
    };
    let topic = common::unique_topic("cli-live-pipe");
    common::create_topic(&client, &topic, 3).await;
    let mut child = bin()
        .args(["--topic", &topic, "produce", "--input", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().unwrap();
    // Three lines, far fewer than a hand-over chunk, and the pipe left open: a log
    // stream that pauses.
    stdin
        .write_all((sample_lines(3).join("\n") + "\n").as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let stored = reader::read_all(&client, &topic).await.unwrap().len();
        if stored == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stored} of 3 lines stored while the pipe is open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test]
async fn log_format_json_writes_every_log_line_and_the_final_error_as_a_json_object() {
    let Some(client) = common::client_or_skip("cli-json-logs").await else {
        return;
    };
    let topic = common::unique_topic("cli-json-logs");
    common::create_topic(&client, &topic, 3).await;
    let json_lines = |stderr: &str| -> Vec<serde_json::Value> {
        stderr
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"))
            })
            .collect()
    };

    let out = bin()
        .args([
            "--topic",
            &topic,
            "--log-format",
            "json",
            "produce",
            "--count",
            "100",
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let logs = json_lines(&text(&out.stderr));
    let connected = logs
        .iter()
        .find(|l| l["message"] == "producer connected")
        .unwrap_or_else(|| panic!("no 'producer connected' event in {logs:?}"));
    assert_eq!(connected["level"], "INFO");
    assert_eq!(connected["topic"], topic.as_str(), "the event's own fields");
    assert!(connected["timestamp"].is_string());

    let out = bin()
        .args(["--broker", "127.0.0.1:1", "--connect-timeout", "2s"])
        .args(["--log-format", "json", "produce", "--count", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let logs = json_lines(&text(&out.stderr));
    let error = logs.last().expect("the error line");
    assert_eq!(error["level"], "ERROR");
    assert_eq!(error["exit_code"], 3);
    assert!(
        error["message"].as_str().unwrap().contains("127.0.0.1:1"),
        "{error}"
    );

    // Stopped by SIGTERM: the flush notice is a JSON line too. A topic of its own, so
    // the wait below sees this run's records.
    let topic = common::unique_topic("cli-json-logs-stop");
    common::create_topic(&client, &topic, 3).await;
    let mut produce = endless_produce(&topic);
    let child = produce
        .env("KAFKA_PRODUCER_LOG_FORMAT", "json")
        .spawn()
        .unwrap();
    wait_for_records(&client, &topic).await;
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let logs = json_lines(&text(&out.stderr));
    assert!(
        logs.iter().any(|l| l["event"] == "stopping"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("stopping: flushing"))),
        "no stopping event in {logs:?}"
    );
}

#[test]
fn a_signal_while_connecting_stops_at_once_with_130_and_says_nothing_was_sent() {
    use std::io::{BufRead, BufReader};
    // Nothing listens on port 1: the producer retries for the whole (long) connect timeout.
    let mut child = bin()
        .args(["--broker", "127.0.0.1:1", "--connect-timeout", "1h"])
        .args(["produce", "--count", "10"])
        .env("RUST_LOG", "kafka_producer=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // The handler is in place before this line is logged.
    while !line.contains("connecting") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "stderr ended before 'connecting'"
        );
    }
    signal(&child, "TERM");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(
        rest.contains("stopped by a signal while connecting to 127.0.0.1:1; nothing was sent"),
        "{rest}"
    );
}

#[test]
fn the_record_count_variables_are_read_by_their_old_names_too() {
    // A value out of range is refused while parsing, before connecting: proof it was read.
    for variable in [
        "KAFKA_BATCH_MAX_RECORDS",
        "KAFKA_BATCH_MAX_MESSAGES",
        "KAFKA_BUFFER_MAX_RECORDS",
        "KAFKA_BUFFER_MAX_MESSAGES",
    ] {
        let out = bin()
            .args(["produce", "--count", "1"])
            .env(variable, "0")
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{variable}=0: {stderr}");
        assert!(stderr.contains("-max-records"), "{variable}=0: {stderr}");
    }
    // Both set: the new name wins (parsing passes; then nothing answers on port 1).
    let out = bin()
        .args(["--broker", "127.0.0.1:1", "--connect-timeout", "1s"])
        .args(["produce", "--count", "1"])
        .env("KAFKA_BATCH_MAX_RECORDS", "10")
        .env("KAFKA_BATCH_MAX_MESSAGES", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}
