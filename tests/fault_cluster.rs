//! The delivery promise when a partition leader dies: a 3-node KRaft cluster on loopback
//! (scripts/kafka.sh cluster; every node a broker and a controller), a topic with
//! replication factor 3 and min.insync.replicas=2, and while a steady load runs, the
//! leader of partition 0 is killed with SIGKILL. The producer must follow the new leader
//! (it reads the metadata again on NotLeaderOrFollower and on a broken connection, and
//! hands the partition's batches to the new leader's sender), nothing acknowledged may
//! be lost (acks=all means every in-sync replica had it, and one of those is the new
//! leader), and with idempotence nothing may be stored twice or out of order. The killed node is started again and rejoins the ISR
//! before the next round kills the leader again.
//!
//! A last round freezes the leader (SIGSTOP) instead: a hung broker keeps its connections
//! open and never answers, so the producer must give up on it by itself (a produce
//! request unanswered within the request timeout drops the connection, and metadata
//! requests time out) and move to the new leader while the load goes on.
//!
//! Another test refuses acks=all for want of in-sync replicas: a topic that needs all
//! three replicas in sync, one of them killed, is answered NOT_ENOUGH_REPLICAS, which
//! the broker sends before writing anything: every event is reported rejected, not
//! written, and none is stored. The two tests take turns with the cluster.
//!
//! Runs under `make test` (three more JVMs, about 2 minutes); `make test-cluster` runs it alone.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fault::{Load, start_load, verify, wait_for_metrics};
use kafka_producer::{Producer, ProducerConfig, connect};

const CLUSTER: &str = "fault-cluster";
/// Nodes listen on 28192, 28194, 28196 (controllers on the next port up), below Linux's
/// ephemeral range, where an outgoing connection could hold one of them.
const BASE_PORT: u16 = 28192;
const ROUNDS: u64 = 3;
const LOAD_EVENTS: usize = 300_000;
const LOAD_RATE_PER_S: u64 = 50_000;
const KILL_AFTER_DELIVERED: u64 = 60_000;
/// Longer than a leader election after kill -9 (the controller fences the dead broker
/// after broker.session.timeout.ms = 3 s), so every event should be acknowledged.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The three-node cluster; wiped when dropped. Tests hold `TURN` while they own it.
struct OwnedCluster;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl OwnedCluster {
    fn command(args: &[&str]) -> Command {
        let mut command = Command::new(common::repo_root().join("scripts/kafka.sh"));
        command
            .args(args)
            .env("KAFKA_CLUSTER", CLUSTER)
            .env("KAFKA_CLUSTER_PORT", BASE_PORT.to_string());
        command
    }

    /// Runs scripts/kafka.sh on a blocking thread and returns its stdout.
    async fn script(args: &[&str]) -> String {
        let mut command = Self::command(args);
        let what = format!("scripts/kafka.sh {}", args.join(" "));
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("script thread")
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn start() -> Self {
        Self::script(&["cluster", "wipe"]).await;
        // Owned before it starts: if one node fails to start, the nodes that did are
        // stopped and wiped too.
        let cluster = Self;
        Self::script(&["cluster", "up"]).await;
        cluster
    }

    fn brokers() -> Vec<String> {
        (0..3)
            .map(|i| format!("localhost:{}", BASE_PORT + 2 * i))
            .collect()
    }

    async fn kill9(node: i32) {
        Self::script(&["cluster", "kill9", &node.to_string()]).await;
    }

    async fn up(node: i32) {
        Self::script(&["cluster", "up", &node.to_string()]).await;
    }

    async fn freeze(node: i32) {
        Self::script(&["cluster", "freeze", &node.to_string()]).await;
    }

    async fn thaw(node: i32) {
        Self::script(&["cluster", "thaw", &node.to_string()]).await;
    }

    async fn topic_command(args: &[&str]) -> String {
        let bootstrap = Self::brokers().join(",");
        let mut all = vec![
            "run-class",
            "org.apache.kafka.tools.TopicCommand",
            "--bootstrap-server",
            &bootstrap,
        ];
        all.extend_from_slice(args);
        Self::script(&all).await
    }

    /// Leader and ISR of `partition`, from TopicCommand --describe, whose partition
    /// lines read `Topic: t  Partition: 0  Leader: 2  Replicas: 2,3,1  Isr: 2,3,1 ...`.
    async fn leader_and_isr(topic: &str, partition: i32) -> (i32, Vec<i32>) {
        let out = Self::topic_command(&["--describe", "--topic", topic]).await;
        for line in out.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let after = |key: &str| {
                words
                    .iter()
                    .position(|w| *w == key)
                    .and_then(|i| words.get(i + 1))
                    .copied()
            };
            if after("Partition:") != Some(&partition.to_string()) {
                continue;
            }
            let leader = after("Leader:").and_then(|l| l.parse().ok()).unwrap_or(-1);
            let isr = after("Isr:")
                .map(|l| l.split(',').filter_map(|n| n.parse().ok()).collect())
                .unwrap_or_default();
            return (leader, isr);
        }
        panic!("no line for partition {partition} of {topic} in:\n{out}");
    }

    /// Polls --describe (one JVM start, about a second, each time) until `condition`
    /// holds for partition 0's leader and ISR.
    async fn wait_for(
        topic: &str,
        what: &str,
        limit: Duration,
        condition: impl Fn(i32, &[i32]) -> bool,
    ) -> (i32, Vec<i32>) {
        let deadline = Instant::now() + limit;
        loop {
            let (leader, isr) = Self::leader_and_isr(topic, 0).await;
            if condition(leader, &isr) {
                return (leader, isr);
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {limit:?}; partition 0 leader {leader}, isr {isr:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for OwnedCluster {
    fn drop(&mut self) {
        let _ = Self::command(&["cluster", "wipe"]).status();
    }
}

async fn cluster_client() -> rskafka::client::Client {
    common::fault::client_of(OwnedCluster::brokers(), Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("connecting to the cluster: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_events_survive_leader_kill9_and_a_hung_leader_is_left() {
    common::fault::logs_from_env();
    if common::client_or_skip("fault_cluster").await.is_none() {
        return;
    }
    let _turn = TURN.lock().await;
    let started = Instant::now();
    let _cluster = OwnedCluster::start().await;
    eprintln!(
        "fault_cluster: cluster up after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for round in 1..=ROUNDS {
        run(round).await;
    }
    freeze_round().await;
    eprintln!(
        "fault_cluster: {ROUNDS} rounds in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_in_sync_replicas_is_rejected_as_not_written_and_nothing_is_stored() {
    common::fault::logs_from_env();
    if common::client_or_skip("fault_cluster").await.is_none() {
        return;
    }
    let _turn = TURN.lock().await;
    let _cluster = OwnedCluster::start().await;
    let topic = common::unique_topic("cluster-isr");
    OwnedCluster::topic_command(&[
        "--create",
        "--topic",
        &topic,
        "--partitions",
        "1",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=3",
    ])
    .await;
    let (leader, _) = OwnedCluster::wait_for(
        &topic,
        "all three replicas in sync",
        Duration::from_secs(60),
        |leader, isr| leader > 0 && isr.len() == 3,
    )
    .await;
    let follower = if leader == 1 { 2 } else { 1 };
    OwnedCluster::kill9(follower).await;
    // The controller drops a dead broker from the ISR once its session expires.
    OwnedCluster::wait_for(
        &topic,
        "the killed follower out of the ISR",
        Duration::from_secs(60),
        |leader, isr| leader > 0 && isr.len() == 2 && !isr.contains(&follower),
    )
    .await;

    let mut config = common::one_attempt_config(&topic);
    config.connection.brokers = OwnedCluster::brokers();
    config.connection.connect_timeout = Duration::from_secs(30);
    let producer = Producer::connect(config).await.unwrap();
    let reports = common::send_generated(&producer, 50, 9).await;
    producer.close().await;
    common::assert_all_rejected(&reports, "NotEnoughReplicas", "min.insync.replicas=3");
    let stored = kafka_producer::reader::read_all(&cluster_client().await, &topic)
        .await
        .unwrap();
    assert_eq!(stored.len(), 0, "records in {topic}");
}

async fn run(round: u64) {
    let started = Instant::now();
    let label = format!("round {round}");
    let topic = common::unique_topic(&format!("cluster-{round}"));
    let (leader, isr) = create_replicated_topic(&topic).await;

    let mut config = common::config_for(&topic);
    config.connection.brokers = OwnedCluster::brokers();
    config.message_timeout = MESSAGE_TIMEOUT;
    let producer = Arc::new(Producer::connect(config).await.unwrap());
    let load = start_load(
        Arc::clone(&producer),
        Load {
            events: LOAD_EVENTS,
            rate_per_s: LOAD_RATE_PER_S,
            seed: 200 + round,
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
    OwnedCluster::kill9(leader).await;
    let (new_leader, _) = OwnedCluster::wait_for(
        &topic,
        "a new leader for partition 0",
        Duration::from_secs(60),
        |l, _| l > 0 && l != leader,
    )
    .await;
    let failover = killed_at.elapsed();
    OwnedCluster::up(leader).await;

    let (reports, runtime_lag) = load.finish(&producer, Duration::from_secs(240)).await;
    let finished = started.elapsed();
    let mut verdict = verify(&cluster_client().await, &topic, &reports).await;
    verdict.max_runtime_lag = runtime_lag;
    eprintln!(
        "fault_cluster {label}: killed leader {leader} of partition 0 (isr {isr:?}), new leader \
         {new_leader} seen after {:.1}s, load done after {:.1}s, run {:.1}s: {verdict}",
        failover.as_secs_f64(),
        finished.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    verdict.assert_promise(&label);
    verdict.assert_no_duplicates(&label);
    assert_eq!(
        verdict.acknowledged, LOAD_EVENTS,
        "{label}: the {MESSAGE_TIMEOUT:?} timeout outlasts a leader election, so every event must be acknowledged\n{verdict}"
    );
    // The restarted node catches up before the next round kills a leader again.
    OwnedCluster::wait_for(
        &topic,
        "the restarted node back in the ISR",
        Duration::from_secs(120),
        |_, isr| isr.len() == 3,
    )
    .await;
}

/// Creates `topic` with 3 partitions, replication factor 3 and min.insync.replicas=2, and
/// waits until partition 0 has a leader and a full ISR; returns them.
async fn create_replicated_topic(topic: &str) -> (i32, Vec<i32>) {
    OwnedCluster::topic_command(&[
        "--create",
        "--topic",
        topic,
        "--partitions",
        "3",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=2",
    ])
    .await;
    let client = cluster_client().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while connect::partition_count(&client, topic).await.ok() != Some(3) {
        assert!(Instant::now() < deadline, "{topic} never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    OwnedCluster::wait_for(
        topic,
        "a leader and a full ISR",
        Duration::from_secs(60),
        |leader, isr| leader > 0 && isr.len() == 3,
    )
    .await
}

const FREEZE_LOAD_EVENTS: usize = 400_000;

/// Waits until the cluster's metadata names a leader of partition 0 other than `old`.
async fn new_leader_of_partition_0(topic: &str, old: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = cluster_client().await;
    loop {
        let leaders =
            tokio::time::timeout(Duration::from_secs(5), client.topic_leaders(topic)).await;
        if let Ok(Ok(t)) = leaders
            && let Some(Some(l)) = t.leaders.first()
            && *l != old
        {
            return *l;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader for partition 0 of {topic} within 60 s of freezing node {old}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
const FREEZE_LOAD_RATE_PER_S: u64 = 10_000;
const FREEZE_AFTER_DELIVERED: u64 = 30_000;

/// The leader of partition 0 hangs (SIGSTOP) under load, with the default 5 s message
/// timeout. Events of partition 0 fail while the producer waits on the hung leader and
/// until the cluster elects another; the promise is that the producer then leaves it:
/// every event accepted two message timeouts after a new leader was first seen is
/// acknowledged, on every partition, and no report is false. (How long the election
/// takes is the cluster's business: when the frozen node was the active controller it
/// takes longer, so the check starts from the election, not from the freeze.)
async fn freeze_round() {
    let started = Instant::now();
    let label = "freeze round";
    let topic = common::unique_topic("cluster-freeze");
    let (leader, isr) = create_replicated_topic(&topic).await;

    let mut config = common::config_for(&topic);
    config.connection.brokers = OwnedCluster::brokers();
    let producer = Arc::new(Producer::connect(config).await.unwrap());
    let load = start_load(
        Arc::clone(&producer),
        Load {
            events: FREEZE_LOAD_EVENTS,
            rate_per_s: FREEZE_LOAD_RATE_PER_S,
            seed: 300,
        },
    );
    wait_for_metrics(
        &producer,
        "events acknowledged before the freeze",
        Duration::from_secs(60),
        |m| m.delivered >= FREEZE_AFTER_DELIVERED,
    )
    .await;
    let frozen_at = Instant::now();
    OwnedCluster::freeze(leader).await;
    // Asked while the load goes on, through a client of the test's own (a metadata
    // request to the frozen node times out and goes to another).
    let moved_to = new_leader_of_partition_0(&topic, leader).await;
    let elected_after = frozen_at.elapsed();
    let settled_at = Instant::now() + 2 * ProducerConfig::default().message_timeout;
    let (reports, runtime_lag) = load.finish(&producer, Duration::from_secs(240)).await;
    let load_done = frozen_at.elapsed();
    OwnedCluster::thaw(leader).await;
    let (new_leader, _) = OwnedCluster::wait_for(
        &topic,
        "a leader for partition 0",
        Duration::from_secs(60),
        |l, _| l > 0,
    )
    .await;

    let mut verdict = verify(&cluster_client().await, &topic, &reports).await;
    verdict.max_runtime_lag = runtime_lag;
    let after_election: Vec<&common::fault::Report> = reports
        .iter()
        .filter(|r| r.accepted_at >= settled_at)
        .collect();
    let late_failures: Vec<String> = after_election
        .iter()
        .filter_map(|r| r.outcome.as_ref().err().map(|e| e.to_string()))
        .collect();
    eprintln!(
        "fault_cluster {label}: froze leader {leader} of partition 0 (isr {isr:?}), node \
         {moved_to} elected after {:.1}s, load done {:.1}s after the freeze, partition 0 led \
         by {new_leader} after the thaw, run {:.1}s; {} failures among the {} events accepted \
         two message timeouts after the election: {verdict}",
        elected_after.as_secs_f64(),
        load_done.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        late_failures.len(),
        after_election.len(),
    );
    assert!(
        after_election.len() >= 10_000,
        "{label}: only {} events were accepted two message timeouts after the election \
         ({:.1}s after the freeze): the load ended too soon to check the promise",
        after_election.len(),
        elected_after.as_secs_f64()
    );
    verdict.assert_promise(label);
    verdict.assert_no_duplicates(label);
    assert!(
        late_failures.is_empty(),
        "{label}: {} of the {} events accepted two message timeouts after node {moved_to} \
         was elected failed: the producer did not leave the hung leader; e.g. {:?}\n{verdict}",
        late_failures.len(),
        after_election.len(),
        late_failures.first()
    );
}
