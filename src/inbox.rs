//! A partition worker's inbox: the records, flushes and closes the producer handle
//! hands the worker, in order.
//! Fed by `Producer::send`, `flush` and `close`; read by the partition worker.
//!
//! Unlike a channel, a record wakes the worker only when the worker can act on it:
//! when it would start a batch (and its linger timer), or fill the open one, and in any
//! case once enough is queued to bound the work of one wake-up. A worker whose batch
//! is on the wire has nothing to do with a new record until its answer comes, which
//! wakes it anyway; with a channel, at 1,000 partitions, it was woken for nearly every
//! record, and those wake-ups cost more CPU than compressing the batches. Flush and
//! close always wake it.

use std::sync::Mutex;

use tokio::sync::Notify;

use crate::accumulator::Pending;

/// What the producer handle asks of a partition worker.
#[derive(Debug)]
pub(crate) enum Command {
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
            Command::Flush(_) | Command::Close => 0,
        }
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
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Debug)]
struct State {
    queued: Vec<Command>,
    /// Bytes of the queued records.
    bytes: usize,
    /// A flush or close is queued.
    urgent: bool,
    wake: WakeWhen,
    /// The worker was woken since it last armed: no need to wake it again.
    woken: bool,
    closed: bool,
}

impl State {
    fn wants_worker(&self) -> bool {
        !self.queued.is_empty()
            && (self.urgent
                || self.queued.len() >= self.wake.records
                || self.bytes > self.wake.bytes)
    }
}

impl Inbox {
    /// An inbox that wakes its worker on the first record.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                queued: Vec::new(),
                bytes: 0,
                urgent: false,
                wake: WakeWhen {
                    records: 1,
                    bytes: usize::MAX,
                },
                woken: false,
                closed: false,
            }),
            notify: Notify::new(),
        }
    }

    /// Queues a command, waking the worker if it should look now. A closed inbox
    /// gives the command back.
    pub fn push(&self, command: Command) -> Result<(), Command> {
        let wake = {
            let mut state = self.state.lock().expect("not poisoned");
            if state.closed {
                return Err(command);
            }
            state.bytes += command.bytes();
            state.urgent |= !matches!(command, Command::Record(_));
            state.queued.push(command);
            let wake = !state.woken && state.wants_worker();
            state.woken |= wake;
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
        debug_assert!(into.is_empty());
        let mut state = self.state.lock().expect("not poisoned");
        if state.queued.len() <= max {
            std::mem::swap(&mut state.queued, into);
            state.bytes = 0;
            state.urgent = false;
        } else {
            into.extend(state.queued.drain(..max));
            state.bytes -= into.iter().map(Command::bytes).sum::<usize>();
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::record::EncodedEvent;

    fn record(bytes: usize) -> Command {
        let (reply, _) = tokio::sync::oneshot::channel();
        Command::Record(Pending {
            record: EncodedEvent {
                key: Vec::new(),
                value: vec![0; bytes],
                event_type: "t",
                timestamp_ms: 0,
            },
            bytes,
            accepted_at: tokio::time::Instant::now(),
            reply,
        })
    }

    async fn is_woken(inbox: &Inbox) -> bool {
        tokio::time::timeout(Duration::from_millis(20), inbox.woken())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_record_wakes_the_worker_only_at_the_armed_count_or_bytes() {
        let inbox = Inbox::new();
        assert!(inbox.arm(WakeWhen {
            records: 3,
            bytes: 250
        }));
        inbox.push(record(100)).unwrap();
        inbox.push(record(100)).unwrap();
        assert!(!is_woken(&inbox).await, "2 records, 200 bytes: below both");
        inbox.push(record(10)).unwrap();
        assert!(is_woken(&inbox).await, "the third record wakes it");

        let mut taken = Vec::new();
        inbox.take(10, &mut taken);
        assert_eq!(taken.len(), 3);
        taken.clear();
        assert!(inbox.arm(WakeWhen {
            records: 100,
            bytes: 250
        }));
        inbox.push(record(200)).unwrap();
        assert!(!is_woken(&inbox).await);
        inbox.push(record(51)).unwrap();
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
        let inbox = Inbox::new();
        assert!(inbox.arm(WakeWhen {
            records: 1000,
            bytes: usize::MAX
        }));
        inbox.push(record(1)).unwrap();
        assert!(!is_woken(&inbox).await);
        inbox.push(Command::Close).unwrap();
        assert!(is_woken(&inbox).await);
        inbox.close();
        assert!(matches!(inbox.push(record(1)), Err(Command::Record(_))));
        let mut taken = Vec::new();
        inbox.take(1000, &mut taken);
        assert!(matches!(
            taken.as_slice(),
            [Command::Record(_), Command::Close]
        ));
    }

    #[tokio::test]
    async fn take_keeps_order_and_counts_what_it_leaves() {
        let inbox = Inbox::new();
        for bytes in 1..=5 {
            inbox.push(record(bytes)).unwrap();
        }
        let mut taken = Vec::new();
        inbox.take(2, &mut taken);
        let sizes: Vec<usize> = taken.iter().map(Command::bytes).collect();
        assert_eq!(sizes, [1, 2]);
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
}
