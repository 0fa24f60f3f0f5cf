//! One connection per broker however many partitions: the product binary sends
//! 1,000,000 events to a 1,000-partition topic on the local broker with the default
//! settings (5 s message timeout), every one delivered, while the process holds at most
//! (brokers + 1) broker sockets (one per broker's sender, one for metadata), counted in
//! /proc/<pid>/fd during the run. `verify` then reads the topic back: every event once.
//!
//! The topic is fresh: created, then waited on until every partition's leader answers
//! for it (as `produce --create-topic` does), since a broker refuses writes to a new
//! partition for the seconds it takes to create its log.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rskafka::client::partition::OffsetAt;

const PARTITIONS: i32 = 1_000;
const EVENTS: u64 = 1_000_000;

/// TCP connections the process holds now: its socket fds whose inode is in its TCP
/// tables (the runtime's signal handling holds Unix socket pairs too, which are not
/// broker connections).
fn tcp_sockets_of(pid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let inodes: std::collections::HashSet<String> = entries
        .flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            let target = target.to_string_lossy();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| line.split_whitespace().nth(9).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .filter(|inode| inodes.contains(inode))
        .count()
}

/// Everything `pipe` gives until it closes, read on a thread of its own.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Kills the process with this pid when dropped.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.0.to_string()])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_partitions_get_every_event_over_one_connection_per_broker() {
    let Some(client) = common::client_or_skip("many_partitions").await else {
        return;
    };
    let topic = common::unique_topic("p1000");
    common::create_topic(&client, &topic, PARTITIONS).await;
    let brokers = client.topic_leaders(&topic).await.unwrap().brokers.len();

    let mut child = Command::new(env!("CARGO_BIN_EXE_kafka-producer"))
        .args(["produce", "--topic", &topic, "--summary", "json"])
        .args(["--count", &EVENTS.to_string(), "--seed", "1000"])
        .env("KAFKA_BROKER", common::broker())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Read its output while it runs: a full stderr pipe would stop the process at its
    // next log line (a run whose events time out writes one per batch).
    let stderr = drain(child.stderr.take().expect("piped"));
    let stdout = drain(child.stdout.take().expect("piped"));
    let pid = child.id();
    // A failing assertion below must not leave the producer running.
    let guard = KillOnDrop(pid);
    let started = Instant::now();
    // Counted once partition 0 holds an event: the producer is sending, so start-up and
    // its probe connection are over.
    let first_partition = kafka_producer::connect::partition_client(&client, &topic, 0)
        .await
        .unwrap();
    let mut sending = false;
    let mut most_sockets = 0;
    let mut samples = 0;
    while child.try_wait().unwrap().is_none() {
        sending = sending
            || first_partition
                .get_offset(OffsetAt::Latest)
                .await
                .is_ok_and(|end| end > 0);
        if sending {
            most_sockets = most_sockets.max(tcp_sockets_of(pid));
            samples += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the run did not finish in 300 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = child.wait().unwrap();
    std::mem::forget(guard);
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
    let stdout = stdout.join().unwrap();
    assert!(status.success(), "produce failed: {stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&stdout).unwrap_or_else(|e| {
        panic!(
            "summary is JSON ({e}): {}",
            String::from_utf8_lossy(&stdout)
        )
    });
    eprintln!("many_partitions: {summary}");
    // On a failure, the producer's last log lines say which batches failed and why.
    let last_lines: Vec<&str> = stderr.lines().rev().take(20).collect();
    let last_lines = last_lines.into_iter().rev().collect::<Vec<_>>().join("\n");
    assert_eq!(summary["delivered"], EVENTS, "{summary}\n{last_lines}");
    assert_eq!(summary["failed"], 0, "{summary}\n{last_lines}");
    assert!(samples > 0, "the run ended before sockets could be counted");
    assert!(
        most_sockets >= 1,
        "no broker connection seen while sending: the count is broken"
    );
    assert!(
        most_sockets <= brokers + 1,
        "{most_sockets} sockets held for {brokers} broker(s) and {PARTITIONS} partitions"
    );

    let verify = Command::new(env!("CARGO_BIN_EXE_kafka-producer"))
        .args([
            "verify",
            "--topic",
            &topic,
            "--json",
            "--expect",
            &EVENTS.to_string(),
        ])
        .env("KAFKA_BROKER", common::broker())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert!(verify.status.success(), "verify: {report}");
    assert_eq!(report["records"], EVENTS, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");

    // A thousand partitions weigh on the shared broker: give them back.
    client
        .controller_client()
        .unwrap()
        .delete_topic(&topic, 30_000)
        .await
        .unwrap();
}
