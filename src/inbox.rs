//! A partition worker's inbox: the records, flushes and closes the producer handle
//! hands the worker, in order, and where records are told which batch they join.
//! Fed by `Producer::send`, `flush` and `close`; read by the partition worker.
//!
//! Unlike a channel, a record wakes the worker only when the worker can act on it:
//! when it would start a batch (and its linger timer), or fill the open one, and in any
//! case once enough is queued to bound the work of one wake-up. A worker whose batch
//! is on the wire has nothing to do with a new record until its answer comes, which
//! wakes it anyway; with a channel, at 1,000 partitions, it was woken for nearly every
//! record, and those wake-ups cost more CPU than compressing the batches. Flush and
//! close always wake it.
//!
//! A record's batch is known when it is accepted, so its `DeliveryFuture` can read the
//! batch's shared report (`batch_report`): the inbox applies the batch caps as the
//! records arrive and queues a `Command::Batch` where each batch starts. The worker's
//! accumulator follows: it closes a batch at the record cap, or where the next one
//! starts, or when the batch is sealed (flush, close, linger, expiry: no record joins
//! it after that).

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::accumulator::{BatchLimits, Pending};
use crate::batch_report::{BatchReport, Reporter};
use crate::delivery::DeliveryFuture;

/// What the producer handle asks of a partition worker.
#[derive(Debug)]
pub(crate) enum Command {
    /// The records after this one, up to the next `Batch`, make one batch.
    Batch(Reporter),
    Record(Pending),
    /// Send every open batch now and answer when all records queued before this
    /// command have their reports.
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Refuse further records, send everything queued, then stop.
    Close,
}

impl Command {
    fn bytes(&self) -> usize {
        match self {
            Command::Record(pending) => pending.bytes,
            Command::Batch(_) | Command::Flush(_) | Command::Close => 0,
        }
    }

    fn is_record(&self) -> bool {
        matches!(self, Command::Record(_))
    }
}

/// How much queued work wakes the worker: this many records, or more than this many
/// bytes of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WakeWhen {
    pub records: usize,
    pub bytes: usize,
}

#[derive(Debug)]
pub(crate) struct Inbox {
    partition: i32,
    /// The caps a batch obeys: the accumulator's.
    limits: BatchLimits,
    state: Mutex<State>,
    notify: Notify,
}

/// The batch the next record joins, while it has room and is not sealed.
#[derive(Debug)]
struct OpenBatch {
    report: Arc<BatchReport>,
    records: usize,
    bytes: usize,
}

#[derive(Debug)]
struct State {
    queued: Vec<Command>,
    /// Records among the queued commands, and their bytes.
    records: usize,
    bytes: usize,
    /// A flush or close is queued.
    urgent: bool,
    wake: WakeWhen,
    /// The worker was woken since it last armed: no need to wake it again.
    woken: bool,
    closed: bool,
    open: Option<OpenBatch>,
}

impl State {
    fn wants_worker(&self) -> bool {
        !self.queued.is_empty()
            && (self.urgent || self.records >= self.wake.records || self.bytes > self.wake.bytes)
    }
}

impl Inbox {
    /// An inbox that wakes its worker on the first record.
    pub fn new(partition: i32, limits: BatchLimits) -> Self {
        Self {
            partition,
            limits,
            state: Mutex::new(State {
                queued: Vec::new(),
                records: 0,
                bytes: 0,
                urgent: false,
                wake: WakeWhen {
                    records: 1,
                    bytes: usize::MAX,
                },
                woken: false,
                closed: false,
                open: None,
            }),
            notify: Notify::new(),
        }
    }

    /// Queues a record into the open batch (starting one first if there is none or
    /// the record would overflow its byte cap) and gives back its report. A closed
    /// inbox gives the record back.
    pub fn push_record(&self, pending: Pending) -> Result<DeliveryFuture, Pending> {
        let limits = self.limits;
        let (wake, future) = {
            let mut guard = self.state.lock().expect("not poisoned");
            let state = &mut *guard;
            if state.closed {
                return Err(pending);
            }
            if state
                .open
                .as_ref()
                .is_some_and(|open| open.bytes + pending.bytes > limits.max_bytes)
            {
                state.open = None;
            }
            let open = match &mut state.open {
                Some(open) => open,
                none => {
                    let report = BatchReport::new(self.partition);
                    let reporter = Reporter::new(Arc::clone(&report));
                    let open = none.insert(OpenBatch {
                        report,
                        records: 0,
                        bytes: 0,
                    });
                    state.queued.push(Command::Batch(reporter));
                    open
                }
            };
            let future = DeliveryFuture::new(Arc::clone(&open.report), open.records);
            open.records += 1;
            open.bytes += pending.bytes;
            if open.records >= limits.max_records {
                state.open = None;
            }
            state.records += 1;
            state.bytes += pending.bytes;
            state.queued.push(Command::Record(pending));
            let wake = !state.woken && state.wants_worker();
            state.woken |= wake;
            (wake, future)
        };
        if wake {
            self.notify.notify_one();
        }
        Ok(future)
    }

    /// Queues a flush or a close, which seals the open batch, and wakes the worker. A
    /// closed inbox gives the command back.
    pub fn push_urgent(&self, command: Command) -> Result<(), Command> {
        debug_assert!(matches!(command, Command::Flush(_) | Command::Close));
        let wake = {
            let mut state = self.state.lock().expect("not poisoned");
            if state.closed {
                return Err(command);
            }
            state.open = None;
            state.urgent = true;
            state.queued.push(command);
            let wake = !state.woken;
            state.woken = true;
            wake
        };
        if wake {
            self.notify.notify_one();
        }
        Ok(())
    }

    /// Refuses every later command. What is queued stays, for the worker to take.
    pub fn close(&self) {
        self.state.lock().expect("not poisoned").closed = true;
    }

    /// Moves up to `max` of the oldest queued commands into `into` (empty), in order.
    pub fn take(&self, max: usize, into: &mut Vec<Command>) {
        take_from(&mut self.state.lock().expect("not poisoned"), max, into);
    }

    /// Seals the batch of `report` if records still join it, and moves every queued
    /// command into `into` (empty): once they are taken, that batch has all its records.
    pub fn seal_and_take(&self, report: &Arc<BatchReport>, into: &mut Vec<Command>) {
        let mut state = self.state.lock().expect("not poisoned");
        if state
            .open
            .as_ref()
            .is_some_and(|open| Arc::ptr_eq(&open.report, report))
        {
            state.open = None;
        }
        take_from(&mut state, usize::MAX, into);
    }

    /// The worker is about to wait: from now on, wake it when `wake` is reached. False
    /// if it is reached already (the worker should take what is queued instead).
    pub fn arm(&self, wake: WakeWhen) -> bool {
        let mut state = self.state.lock().expect("not poisoned");
        state.wake = wake;
        state.woken = false;
        !state.wants_worker()
    }

    /// Completes when a push wakes the worker (or already has, since it last waited).
    pub async fn woken(&self) {
        self.notify.notified().await;
    }
}

fn take_from(state: &mut State, max: usize, into: &mut Vec<Command>) {
    debug_assert!(into.is_empty());
    if state.queued.len() <= max {
        std::mem::swap(&mut state.queued, into);
        state.records = 0;
        state.bytes = 0;
        state.urgent = false;
    } else {
        into.extend(state.queued.drain(..max));
        state.records -= into.iter().filter(|c| c.is_record()).count();
        state.bytes -= into.iter().map(Command::bytes).sum::<usize>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::record::EncodedEvent;

    fn record(bytes: usize) -> Pending {
        Pending {
            record: EncodedEvent {
                key: Vec::new(),
                value: vec![0; bytes],
                event_type: "t",
                timestamp_ms: 0,
            },
            bytes,
            accepted_at: tokio::time::Instant::now(),
        }
    }

    fn inbox_with_caps(max_records: usize, max_bytes: usize) -> Inbox {
        Inbox::new(
            0,
            BatchLimits {
                max_records,
                max_bytes,
                linger: Duration::from_millis(5),
                message_timeout: Duration::from_secs(5),
            },
        )
    }

    fn roomy_inbox() -> Inbox {
        inbox_with_caps(1000, 1_000_000)
    }

    /// The records of each batch queued, as the worker takes them.
    fn batch_sizes(taken: &[Command]) -> Vec<usize> {
        let mut sizes = Vec::new();
        for command in taken {
            match command {
                Command::Batch(_) => sizes.push(0),
                Command::Record(_) => *sizes.last_mut().expect("a batch starts first") += 1,
                Command::Flush(_) | Command::Close => {}
            }
        }
        sizes
    }

    async fn is_woken(inbox: &Inbox) -> bool {
        tokio::time::timeout(Duration::from_millis(20), inbox.woken())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_record_wakes_the_worker_only_at_the_armed_count_or_bytes() {
        let inbox = roomy_inbox();
        assert!(inbox.arm(WakeWhen {
            records: 3,
            bytes: 250
        }));
        inbox.push_record(record(100)).unwrap();
        inbox.push_record(record(100)).unwrap();
        assert!(!is_woken(&inbox).await, "2 records, 200 bytes: below both");
        inbox.push_record(record(10)).unwrap();
        assert!(is_woken(&inbox).await, "the third record wakes it");

        let mut taken = Vec::new();
        inbox.take(10, &mut taken);
        assert_eq!(batch_sizes(&taken), [3]);
        taken.clear();
        assert!(inbox.arm(WakeWhen {
            records: 100,
            bytes: 250
        }));
        inbox.push_record(record(200)).unwrap();
        assert!(!is_woken(&inbox).await);
        inbox.push_record(record(51)).unwrap();
        assert!(is_woken(&inbox).await, "251 bytes queued wakes it");
        assert!(
            !inbox.arm(WakeWhen {
                records: 100,
                bytes: 250
            }),
            "reached already"
        );
    }

    #[tokio::test]
    async fn flush_and_close_always_wake_and_close_refuses_later_commands() {
        let inbox = roomy_inbox();
        assert!(inbox.arm(WakeWhen {
            records: 1000,
            bytes: usize::MAX
        }));
        inbox.push_record(record(1)).unwrap();
        assert!(!is_woken(&inbox).await);
        inbox.push_urgent(Command::Close).unwrap();
        assert!(is_woken(&inbox).await);
        inbox.close();
        assert!(inbox.push_record(record(1)).is_err());
        assert!(inbox.push_urgent(Command::Close).is_err());
        let mut taken = Vec::new();
        inbox.take(1000, &mut taken);
        assert!(matches!(
            taken.as_slice(),
            [Command::Batch(_), Command::Record(_), Command::Close]
        ));
    }

    #[tokio::test]
    async fn take_keeps_order_and_counts_what_it_leaves() {
        let inbox = roomy_inbox();
        for bytes in 1..=5 {
            inbox.push_record(record(bytes)).unwrap();
        }
        let mut taken = Vec::new();
        inbox.take(3, &mut taken);
        let sizes: Vec<usize> = taken.iter().map(Command::bytes).collect();
        assert_eq!(sizes, [0, 1, 2], "the batch start, then two records");
        // 3 + 4 + 5 = 12 bytes left: more than 11 wakes, 12 does not.
        assert!(!inbox.arm(WakeWhen {
            records: 100,
            bytes: 11
        }));
        assert!(inbox.arm(WakeWhen {
            records: 100,
            bytes: 12
        }));
    }

    #[tokio::test]
    async fn records_are_cut_into_batches_at_the_caps_and_where_a_batch_is_sealed() {
        let inbox = inbox_with_caps(3, 100);
        let mut taken = Vec::new();
        // The record cap: 3, 3, then 1.
        for _ in 0..7 {
            inbox.push_record(record(1)).unwrap();
        }
        inbox.take(100, &mut taken);
        assert_eq!(batch_sizes(&taken), [3, 3, 1]);
        taken.clear();

        // The byte cap: 60 + 40 fit in 100 bytes, the next 1 byte does not.
        let inbox = inbox_with_caps(3, 100);
        for bytes in [60, 40, 1] {
            inbox.push_record(record(bytes)).unwrap();
        }
        inbox.take(100, &mut taken);
        assert_eq!(batch_sizes(&taken), [2, 1]);
        taken.clear();

        // A flush seals the open batch: the next record starts another.
        let inbox = roomy_inbox();
        inbox.push_record(record(1)).unwrap();
        let (done, _) = tokio::sync::oneshot::channel();
        inbox.push_urgent(Command::Flush(done)).unwrap();
        inbox.push_record(record(1)).unwrap();
        inbox.take(100, &mut taken);
        assert_eq!(batch_sizes(&taken), [1, 1]);
        let Command::Batch(second) = &taken[3] else {
            panic!("the second batch starts after the flush")
        };
        let open = Arc::clone(second.report());
        taken.clear();

        // The worker seals the open batch (linger): later records start another.
        inbox.push_record(record(1)).unwrap();
        inbox.seal_and_take(&open, &mut taken);
        assert!(
            matches!(taken.as_slice(), [Command::Record(_)]),
            "it joins the open batch"
        );
        taken.clear();
        inbox.push_record(record(1)).unwrap();
        inbox.take(100, &mut taken);
        assert!(matches!(
            taken.as_slice(),
            [Command::Batch(_), Command::Record(_)]
        ));
    }
}
