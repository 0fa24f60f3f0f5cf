//! The engine's timing rules, with the network edge (`PartitionSink`) mocked and tokio's
//! clock paused, so linger, caps, expiry and backpressure are checked exactly, not with
//! sleeps. Everything else is tested against a real broker in the other test files.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_producer::event::{EventType, UserEvent};
use kafka_producer::record::EncodedEvent;
use kafka_producer::record_batch::EncodedBatch;
use kafka_producer::sink::{PartitionSink, SinkError};
use kafka_producer::{DeliveryError, Producer, ProducerConfig, SendError};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// A partition that records each batch it is given and answers as told.
#[derive(Clone)]
struct MockSink {
    log: Arc<Mutex<Vec<(Instant, usize)>>>,
    /// Each produce call waits for one permit: no permits = a stalled broker.
    gate: Arc<Semaphore>,
    next_offset: Arc<Mutex<i64>>,
    refuse: bool,
}

impl MockSink {
    fn open() -> Self {
        Self::with_permits(Semaphore::MAX_PERMITS)
    }
    fn with_permits(permits: usize) -> Self {
        Self {
            log: Arc::default(),
            gate: Arc::new(Semaphore::new(permits)),
            next_offset: Arc::default(),
            refuse: false,
        }
    }
    fn batch_sizes(&self) -> Vec<usize> {
        self.log.lock().unwrap().iter().map(|(_, n)| *n).collect()
    }
}

impl PartitionSink for MockSink {
    async fn produce(&self, batch: EncodedBatch) -> Result<Vec<i64>, SinkError> {
        self.log
            .lock()
            .unwrap()
            .push((Instant::now(), batch.records));
        self.gate.acquire().await.unwrap().forget();
        if self.refuse {
            return Err(SinkError {
                message: "MessageTooLarge".into(),
                may_have_been_written: false,
            });
        }
        let mut next = self.next_offset.lock().unwrap();
        let offsets = (*next..*next + batch.records as i64).collect();
        *next += batch.records as i64;
        Ok(offsets)
    }
}

fn event(n: usize) -> UserEvent {
    UserEvent {
        event_id: format!("event-{n}"),
        timestamp: 1_700_000_000_000,
        user_id: format!("user-{}", n % 7),
        event_type: EventType::UserLogin as i32,
        data: None,
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
/// Linger is honoured to tokio's timer tick: with the clock paused, timers fire exactly
/// on time, so the batch goes out one tick (1 ms) before its deadline, and not earlier.
async fn open_batch_is_sent_when_linger_elapses_not_before() {
    let sink = MockSink::open();
    let producer = Producer::with_sinks(&config(), vec![sink.clone()]);
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
    assert_eq!(log[0].1, 3);
    assert_eq!(log[0].0 - start, Duration::from_millis(4));
}

#[tokio::test(start_paused = true)]
async fn batch_closes_at_the_record_cap() {
    let sink = MockSink::open();
    let cfg = ProducerConfig {
        batch_max_records: 10,
        linger: Duration::from_secs(60),
        ..config()
    };
    let producer = Producer::with_sinks(&cfg, vec![sink.clone()]);
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
    let sink = MockSink::open();
    let cfg = ProducerConfig {
        batch_max_bytes: 1_000,
        linger: Duration::from_secs(60),
        ..config()
    };
    let producer = Producer::with_sinks(&cfg, vec![sink.clone()]);
    let size = EncodedEvent::new(&event(0)).size();
    for n in 0..40 {
        drop(producer.send(&event(n)).await.unwrap());
    }
    producer.flush().await;
    let per_batch = 1_000 / size;
    let sizes = sink.batch_sizes();
    assert_eq!(sizes.iter().sum::<usize>(), 40);
    assert!(
        sizes.iter().all(|&n| n <= per_batch),
        "{sizes:?} with {size} B records"
    );
    assert_eq!(sizes[0], per_batch, "{sizes:?}");
}

#[tokio::test(start_paused = true)]
async fn stalled_broker_times_out_in_flight_and_queued_events_separately() {
    let sink = MockSink::with_permits(0);
    let cfg = ProducerConfig {
        batch_max_records: 2,
        ..config()
    };
    let producer = Producer::with_sinks(&cfg, vec![sink.clone()]);
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
    let sink = MockSink::with_permits(0);
    let size = EncodedEvent::new(&event(0)).size();
    let cfg = ProducerConfig {
        batch_max_bytes: 1_000,
        buffer_max_bytes: 1_000 + size as u64,
        message_timeout: Duration::from_secs(60),
        ..config()
    };
    let producer = Arc::new(Producer::with_sinks(&cfg, vec![sink.clone()]));
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
    let mut sink = MockSink::open();
    sink.refuse = true;
    let producer = Producer::with_sinks(&config(), vec![sink]);
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
    let producer = Producer::with_sinks(
        &ProducerConfig {
            batch_max_bytes: 1_000,
            ..config()
        },
        vec![MockSink::open()],
    );
    let mut big = event(1);
    big.user_id = "x".repeat(2_000);
    let error = producer.send(&big).await.unwrap_err();
    assert!(
        matches!(error, SendError::TooLarge { limit: 1_000, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("batch-max-bytes (1000 bytes)"),
        "{error}"
    );
    assert_eq!(producer.metrics().accepted, 0);
}

#[tokio::test(start_paused = true)]
async fn close_delivers_everything_accepted_then_refuses_new_events() {
    let sink = MockSink::open();
    let cfg = ProducerConfig {
        linger: Duration::from_secs(60),
        ..config()
    };
    let producer = Producer::with_sinks(&cfg, vec![sink.clone(), sink.clone()]);
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
    let sink = MockSink::open();
    let cfg = ProducerConfig {
        linger: Duration::from_secs(60),
        ..config()
    };
    let producer = Producer::with_sinks(&cfg, vec![sink.clone()]);
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
