//! The engine's timing rules, with the network edge (`Cluster` / `BrokerLink`) mocked
//! and tokio's clock paused, so linger, caps, expiry, pipelining and backpressure are
//! checked exactly, not with sleeps. Everything else is tested against a real broker in
//! the other test files.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_producer::cluster::{
    Answers, BrokerLink, Cluster, LinkError, PartitionAnswer, PartitionBatch, ProducerIdentity,
};
use kafka_producer::event::{EventType, UserEvent};
use kafka_producer::record::EncodedEvent;
use kafka_producer::{DeliveryError, Producer, ProducerConfig, SendError};
use rskafka::client::error::ProtocolError;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Every batch the mock broker was given: when, which partition, how many records.
type Log = Arc<Mutex<Vec<(Instant, i32, usize)>>>;

/// One broker leading every partition; it records each batch it is given and answers
/// as told.
#[derive(Clone)]
struct MockCluster {
    partitions: usize,
    log: Log,
    /// Each request's answer waits for one permit: no permits = a stalled broker.
    gate: Arc<Semaphore>,
    next_offset: Arc<Mutex<Vec<i64>>>,
    refuse: bool,
    /// Requests written and not yet answered, and the most seen at once.
    in_flight: Arc<Mutex<(usize, usize)>>,
    /// The partitions of each request, in the order written.
    requests: Arc<Mutex<Vec<Vec<i32>>>>,
    /// Connections made.
    connects: Arc<Mutex<usize>>,
    /// How long making a connection takes (a handshake over a distant link).
    connect_delay: Option<Duration>,
    /// Each batch's bytes as the producer framed them, in the order given.
    wire: Arc<Mutex<Vec<Vec<u8>>>>,
    /// A slow broker: each request takes this long once the one before it is answered
    /// (a broker works through one connection's requests in order).
    work_per_request: Option<Duration>,
    /// When the last request written will be answered (with `work_per_request`).
    busy_until: Arc<Mutex<Option<Instant>>>,
}

impl MockCluster {
    fn open(partitions: usize) -> Self {
        Self::with_permits(partitions, Semaphore::MAX_PERMITS)
    }
    fn with_permits(partitions: usize, permits: usize) -> Self {
        Self {
            partitions,
            log: Arc::default(),
            gate: Arc::new(Semaphore::new(permits)),
            next_offset: Arc::new(Mutex::new(vec![0; partitions])),
            refuse: false,
            in_flight: Arc::default(),
            requests: Arc::default(),
            connects: Arc::default(),
            connect_delay: None,
            wire: Arc::default(),
            work_per_request: None,
            busy_until: Arc::default(),
        }
    }
    fn batch_sizes(&self) -> Vec<usize> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, n)| *n)
            .collect()
    }
    fn most_in_flight(&self) -> usize {
        self.in_flight.lock().unwrap().1
    }
}

/// The record count field of a v2 record batch header.
fn record_count(batch: &[u8]) -> usize {
    i32::from_be_bytes(batch[57..61].try_into().unwrap()) as usize
}

impl BrokerLink for MockCluster {
    async fn produce(&self, batches: Vec<PartitionBatch>) -> Result<Answers, LinkError> {
        let now = Instant::now();
        self.requests
            .lock()
            .unwrap()
            .push(batches.iter().map(|b| b.partition).collect());
        let mut answers = Vec::new();
        for b in &batches {
            let records = record_count(&b.records);
            self.log.lock().unwrap().push((now, b.partition, records));
            self.wire.lock().unwrap().push(b.records.to_vec());
            let mut next = self.next_offset.lock().unwrap();
            let base = next[b.partition as usize];
            next[b.partition as usize] += records as i64;
            answers.push(PartitionAnswer {
                partition: b.partition,
                error: self.refuse.then_some(ProtocolError::MessageTooLarge),
                base_offset: if self.refuse { -1 } else { base },
            });
        }
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            in_flight.0 += 1;
            in_flight.1 = in_flight.1.max(in_flight.0);
        }
        let gate = Arc::clone(&self.gate);
        let in_flight = Arc::clone(&self.in_flight);
        let answer_at = self.work_per_request.map(|work| {
            let mut busy = self.busy_until.lock().unwrap();
            let at = busy.map_or(now, |b| b.max(now)) + work;
            *busy = Some(at);
            at
        });
        Ok(Box::pin(async move {
            if let Some(at) = answer_at {
                tokio::time::sleep_until(at).await;
            }
            gate.acquire().await.unwrap().forget();
            in_flight.lock().unwrap().0 -= 1;
            Ok(answers)
        }))
    }

    fn abandon(&self, _reason: &'static str) {}
}

impl Cluster for MockCluster {
    type Link = MockCluster;

    async fn leaders(&self) -> Result<Vec<Option<i32>>, LinkError> {
        Ok(vec![Some(1); self.partitions])
    }

    async fn connect(&self, _broker: i32) -> Result<MockCluster, LinkError> {
        if let Some(delay) = self.connect_delay {
            tokio::time::sleep(delay).await;
        }
        *self.connects.lock().unwrap() += 1;
        Ok(self.clone())
    }

    async fn init_producer_id(&self) -> Result<ProducerIdentity, LinkError> {
        Ok(ProducerIdentity { id: 1000, epoch: 0 })
    }
}

async fn producer(config: &ProducerConfig, cluster: &MockCluster) -> Producer {
    Producer::with_cluster(config, cluster.clone())
        .await
        .unwrap()
}

#[allow(clippy::needless_update)]
fn event(n: usize) -> UserEvent {
    UserEvent {
        event_id: format!("event-{n}"),
        timestamp: 1_700_000_000_000,
        user_id: format!("user-{}", n % 7),
        event_type: EventType::UserLogin as i32,
        data: None,
        // Fields a newer schema adds keep their defaults.
        ..Default::default()
    }
}

fn config() -> ProducerConfig {
    ProducerConfig {
        linger: Duration::from_millis(5),
        message_timeout: Duration::from_millis(1_000),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
/// The producer connects to each leader while it starts, so its first batch goes out
/// at its linger, not a connection handshake later.
async fn leaders_are_connected_at_start_so_the_first_batch_waits_only_its_linger() {
    let mut sink = MockCluster::open(3);
    sink.connect_delay = Some(Duration::from_millis(20));
    let producer = producer(&config(), &sink).await;
    assert_eq!(
        *sink.connects.lock().unwrap(),
        1,
        "one connection to the one leader, made at start"
    );
    let start = Instant::now();
    producer.send(&event(0)).await.unwrap().await.unwrap();
    let log = sink.log.lock().unwrap().clone();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].0 - start, Duration::from_millis(4));
}

#[tokio::test(start_paused = true)]
/// Linger is honoured to tokio's timer tick: with the clock paused, timers fire exactly
/// on time, so the batch goes out one tick (1 ms) before its deadline, and not earlier.
async fn open_batch_is_sent_when_linger_elapses_not_before() {
    let sink = MockCluster::open(1);
    let producer = producer(&config(), &sink).await;
    let start = Instant::now();
    let mut reports = Vec::new();
    for n in 0..3 {
        reports.push(producer.send(&event(n)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_micros(3_999)).await;
    assert_eq!(
        sink.batch_sizes(),
        Vec::<usize>::new(),
        "sent before linger"
    );
    for (n, report) in reports.into_iter().enumerate() {
        assert_eq!(report.await.unwrap().offset, n as i64);
    }
    let log = sink.log.lock().unwrap().clone();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].2, 3);
    assert_eq!(log[0].0 - start, Duration::from_millis(4));
}

#[tokio::test(start_paused = true)]
async fn batch_closes_at_the_record_cap() {
    let sink = MockCluster::open(1);
    let cfg = ProducerConfig {
        batch_max_records: 10,
        linger: Duration::from_secs(60),
        ..config()
    };
    let producer = producer(&cfg, &sink).await;
    let mut reports = Vec::new();
    for n in 0..25 {
        reports.push(producer.send(&event(n)).await.unwrap());
    }
    producer.flush().await;
    assert_eq!(sink.batch_sizes(), vec![10, 10, 5]);
    for report in reports {
        report.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn batch_closes_before_it_would_exceed_the_byte_cap() {
    let sink = MockCluster::open(1);
    let cfg = ProducerConfig {
        batch_max_bytes: 1_000,
        linger: Duration::from_secs(60),
        // Uncompressed, so each batch's records section is the records' own bytes.
        compression: kafka_producer::config::CompressionCodec::None,
        ..config()
    };
    let producer = producer(&cfg, &sink).await;
    for n in 0..40 {
        drop(producer.send(&event(n)).await.unwrap());
    }
    producer.flush().await;
    assert_eq!(sink.batch_sizes().iter().sum::<usize>(), 40);
    // Measured on what was framed, not with the producer's own size estimate: the v2
    // header is 61 bytes, the records follow it.
    let wire = sink.wire.lock().unwrap().clone();
    let sections: Vec<(usize, usize)> = wire
        .iter()
        .map(|b| (b.len() - 61, record_count(b)))
        .collect();
    assert!(sections.len() > 1, "{sections:?}");
    for (i, (section, records)) in sections.iter().enumerate() {
        assert!(
            *section <= 1_000,
            "batch {i}: {records} records in {section} B"
        );
        // The cap counts each record's size before framing, with room for the widest
        // varints its deltas could take (here ~20 B more than the ~62 B framed): a
        // closed batch is at least 70 % full.
        if i + 1 < sections.len() {
            assert!(
                *section >= 700,
                "batch {i} closed at {section} B: {sections:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn stalled_broker_times_out_in_flight_and_queued_events_separately() {
    let sink = MockCluster::with_permits(1, 0);
    // Without idempotence one batch per partition is in flight; the next one waits.
    let cfg = ProducerConfig {
        batch_max_records: 2,
        idempotence: false,
        ..config()
    };
    let producer = producer(&cfg, &sink).await;
    let start = Instant::now();
    let mut reports = Vec::new();
    for n in 0..4 {
        reports.push(producer.send(&event(n)).await.unwrap());
    }
    let mut outcomes = Vec::new();
    for report in reports {
        outcomes.push(report.await);
    }
    let elapsed = Instant::now() - start;
    assert_eq!(
        elapsed, cfg.message_timeout,
        "reports came at the timeout, not later"
    );
    assert_eq!(
        outcomes[0],
        Err(DeliveryError::TimedOutInFlight { partition: 0 })
    );
    assert_eq!(
        outcomes[1],
        Err(DeliveryError::TimedOutInFlight { partition: 0 })
    );
    assert_eq!(
        outcomes[2],
        Err(DeliveryError::TimedOutQueued { partition: 0 })
    );
    assert_eq!(
        outcomes[3],
        Err(DeliveryError::TimedOutQueued { partition: 0 })
    );
    assert!(outcomes[0].as_ref().unwrap_err().may_have_been_written());
    assert!(!outcomes[2].as_ref().unwrap_err().may_have_been_written());
    let m = producer.metrics();
    assert_eq!(m.accepted, 4);
    assert_eq!(m.accepted, m.delivered + m.failed());
    assert_eq!(
        (m.failed_timed_out_in_flight, m.failed_timed_out_queued),
        (2, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn full_buffer_makes_try_send_fail_and_send_wait_until_reports_free_room() {
    let sink = MockCluster::with_permits(1, 0);
    let size = EncodedEvent::new(&event(0)).size();
    let cfg = ProducerConfig {
        batch_max_bytes: 1_000,
        buffer_max_bytes: 1_000 + size as u64,
        message_timeout: Duration::from_secs(60),
        ..config()
    };
    let producer = Arc::new(producer(&cfg, &sink).await);
    let room = (1_000 + size) / size;
    let mut reports = Vec::new();
    for n in 0..room {
        reports.push(producer.try_send(&event(n)).unwrap());
    }
    assert_eq!(
        producer.try_send(&event(99)).unwrap_err(),
        SendError::QueueFull
    );

    let waiting = {
        let producer = Arc::clone(&producer);
        tokio::spawn(async move { producer.send(&event(100)).await })
    };
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        !waiting.is_finished(),
        "send must wait while the buffer is full"
    );

    sink.gate.add_permits(100); // the broker comes back
    for report in reports {
        report.await.unwrap();
    }
    let late = waiting.await.unwrap().unwrap();
    producer.flush().await;
    late.await.unwrap();
    assert_eq!(producer.metrics().delivered as usize, room + 1);
}

#[tokio::test(start_paused = true)]
async fn refused_batch_reports_rejected_and_not_written() {
    let mut sink = MockCluster::open(1);
    sink.refuse = true;
    let producer = producer(&config(), &sink).await;
    let report = producer.send(&event(1)).await.unwrap();
    let error = report.await.unwrap_err();
    assert!(
        matches!(error, DeliveryError::Rejected { partition: 0, .. }),
        "{error:?}"
    );
    assert!(!error.may_have_been_written());
    assert_eq!(producer.metrics().failed_rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn event_larger_than_the_batch_cap_is_refused_with_size_and_limit() {
    let producer = producer(
        &ProducerConfig {
            batch_max_bytes: 1_000,
            ..config()
        },
        &MockCluster::open(1),
    )
    .await;
    let mut big = event(1);
    big.user_id = "x".repeat(2_000);
    let error = producer.send(&big).await.unwrap_err();
    assert!(
        matches!(error, SendError::TooLarge { limit: 1_000, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("batch_max_bytes (1000 bytes)"),
        "{error}"
    );
    assert_eq!(producer.metrics().accepted, 0);
}

#[tokio::test(start_paused = true)]
async fn close_delivers_everything_accepted_then_refuses_new_events() {
    let sink = MockCluster::open(2);
    let cfg = ProducerConfig {
        linger: Duration::from_secs(60),
        ..config()
    };
    let producer = producer(&cfg, &sink).await;
    let mut reports = Vec::new();
    for n in 0..10 {
        reports.push(producer.send(&event(n)).await.unwrap());
    }
    producer.close().await;
    for report in reports {
        report.await.unwrap();
    }
    assert_eq!(
        producer.send(&event(11)).await.unwrap_err(),
        SendError::Closed
    );
    let m = producer.metrics();
    assert_eq!((m.accepted, m.delivered), (10, 10));
}

#[tokio::test(start_paused = true)]
async fn flush_waits_for_reports_of_everything_sent_before_it() {
    let sink = MockCluster::open(1);
    let cfg = ProducerConfig {
        linger: Duration::from_secs(60),
        ..config()
    };
    let producer = producer(&cfg, &sink).await;
    let start = Instant::now();
    for n in 0..7 {
        drop(producer.send(&event(n)).await.unwrap());
    }
    producer.flush().await;
    assert_eq!(producer.metrics().delivered, 7);
    assert!(
        Instant::now() - start < Duration::from_millis(1),
        "flush ignored linger"
    );
}

#[tokio::test(start_paused = true)]
async fn idempotent_partition_pipelines_up_to_max_in_flight_batches_and_keeps_their_order() {
    let sink = MockCluster::with_permits(1, 0);
    let cfg = ProducerConfig {
        batch_max_records: 1,
        message_timeout: Duration::from_secs(60),
        ..config()
    };
    let producer = producer(&cfg, &sink).await;
    let mut reports = Vec::new();
    for n in 0..8 {
        reports.push(producer.send(&event(n)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Until the broker has acknowledged one batch of the partition it has no sequence
    // state for the producer there and would take a later batch first: one at a time.
    assert_eq!(
        sink.batch_sizes().len(),
        1,
        "one batch before the first ack"
    );
    sink.gate.add_permits(1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        sink.batch_sizes().len(),
        6,
        "then five batches on the wire, no more"
    );
    assert_eq!(sink.most_in_flight(), 5);
    sink.gate.add_permits(100);
    for (n, report) in reports.into_iter().enumerate() {
        assert_eq!(report.await.unwrap().offset, n as i64, "in order");
    }
    assert_eq!(sink.batch_sizes().len(), 8, "nothing sent twice");
}

#[tokio::test(start_paused = true)]
async fn without_idempotence_a_partition_has_one_batch_in_flight() {
    let sink = MockCluster::with_permits(1, 0);
    let cfg = ProducerConfig {
        batch_max_records: 1,
        idempotence: false,
        message_timeout: Duration::from_secs(60),
        ..config()
    };
    let producer = producer(&cfg, &sink).await;
    let mut reports = Vec::new();
    for n in 0..3 {
        reports.push(producer.send(&event(n)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.batch_sizes().len(), 1);
    sink.gate.add_permits(100);
    for report in reports {
        report.await.unwrap();
    }
    assert_eq!(sink.most_in_flight(), 1);
}

#[tokio::test(start_paused = true)]
async fn one_request_carries_one_batch_of_every_partition_with_records() {
    let sink = MockCluster::open(4);
    let producer = producer(&config(), &sink).await;
    let mut reports = Vec::new();
    for n in 0..200 {
        reports.push(producer.send(&event(n)).await.unwrap());
    }
    for report in reports {
        report.await.unwrap();
    }
    let requests = sink.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let mut partitions = requests[0].clone();
    partitions.sort();
    let mut with_records: Vec<i32> = sink.log.lock().unwrap().iter().map(|e| e.1).collect();
    with_records.sort();
    with_records.dedup();
    assert!(with_records.len() > 1, "the keys cover several partitions");
    assert_eq!(partitions, with_records);
}

#[tokio::test(start_paused = true)]
async fn a_slow_broker_that_keeps_answering_keeps_its_connection_past_the_request_timeout() {
    // Five requests queue on the connection; each takes 400 ms of the broker's time, so
    // the last waits 2 s, twice the request timeout, while answers keep coming.
    let mut sink = MockCluster::open(5);
    sink.work_per_request = Some(Duration::from_millis(400));
    let cfg = ProducerConfig {
        request_timeout: Duration::from_secs(1),
        message_timeout: Duration::from_secs(10),
        batch_max_records: 1,
        ..config()
    };
    let producer = producer(&cfg, &sink).await;
    // The first batch of each partition goes alone until acknowledged; then five
    // more each, one per request.
    let mut reports = Vec::new();
    for n in 0..35 {
        reports.push(producer.send(&event(n)).await.unwrap());
    }
    for report in reports {
        report.await.unwrap();
    }
    let m = producer.metrics();
    assert_eq!((m.delivered, m.retries), (35, 0));
    assert_eq!(*sink.connects.lock().unwrap(), 1, "the connection was kept");
    assert!(
        sink.most_in_flight() > 1,
        "requests queued on the connection"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_answers_nothing_for_the_request_timeout_is_dropped_and_retried() {
    // The first request gets no answer at all; the sender drops the connection after
    // the request timeout, connects again and the batch is sent again.
    let sink = MockCluster::with_permits(1, 0);
    let cfg = ProducerConfig {
        request_timeout: Duration::from_secs(1),
        message_timeout: Duration::from_secs(10),
        ..config()
    };
    let producer = producer(&cfg, &sink).await;
    let report = producer.send(&event(0)).await.unwrap();
    let start = Instant::now();
    while sink.requests.lock().unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resent_after = Instant::now() - start;
    // Not before the request timeout; then only the linger and retry backoffs.
    assert!(
        resent_after >= Duration::from_secs(1) && resent_after < Duration::from_millis(1_500),
        "resent {resent_after:?} after the send"
    );
    assert_eq!(
        *sink.connects.lock().unwrap(),
        2,
        "dropped and connected again"
    );
    sink.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    report.await.unwrap();
    assert_eq!(producer.metrics().retries, 1);
}
