//! The report of one batch, shared by the `DeliveryFuture`s of all its records: the
//! batch's first offset or why it failed, set once by the partition worker.
//! Made by the inbox when a record starts a batch; completed by the partition worker;
//! read by each record's `DeliveryFuture` with the record's place in the batch.
//!
//! One shared result per batch, as the Java client's `ProduceRequestResult`, instead of
//! a channel per record: a channel cost an allocation, a free on another thread and
//! three cache-line handoffs per event, ~10 % of the producer's CPU at 100 partitions
//! (perf, `BENCHMARKS.md`).

use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::delivery::{Delivered, DeliveryError, DeliveryResult};

/// What happened to a batch: its first offset (-1 when the broker did not say), or
/// the failure every one of its records reports.
type Outcome = Result<i64, DeliveryError>;

#[derive(Debug)]
pub(crate) struct BatchReport {
    partition: i32,
    outcome: OnceLock<Outcome>,
    /// Tasks waiting for the outcome (usually one: reports are awaited in order).
    waiting: Mutex<Vec<Waker>>,
}

impl BatchReport {
    pub fn new(partition: i32) -> Arc<Self> {
        Arc::new(Self {
            partition,
            outcome: OnceLock::new(),
            waiting: Mutex::new(Vec::new()),
        })
    }

    /// The first outcome set stands; later ones are ignored.
    fn complete(&self, outcome: Outcome) {
        if self.outcome.set(outcome).is_err() {
            return;
        }
        let waiting = std::mem::take(&mut *self.waiting.lock().expect("not poisoned"));
        for waker in waiting {
            waker.wake();
        }
    }

    /// The report of the batch's record `index`, or Pending with `cx`'s task to be woken.
    /// `registered`: this record's future was polled before, so its task may be queued.
    pub fn poll_record(
        &self,
        index: usize,
        registered: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<DeliveryResult> {
        if let Some(outcome) = self.outcome.get() {
            return Poll::Ready(self.result_of(outcome, index));
        }
        let mut waiting = self.waiting.lock().expect("not poisoned");
        // Set before `complete` takes this lock, or seen by it.
        if let Some(outcome) = self.outcome.get() {
            return Poll::Ready(self.result_of(outcome, index));
        }
        let queued = *registered && waiting.iter().any(|w| w.will_wake(cx.waker()));
        if !queued {
            waiting.push(cx.waker().clone());
            *registered = true;
        }
        Poll::Pending
    }

    fn result_of(&self, outcome: &Outcome, index: usize) -> DeliveryResult {
        match outcome {
            Ok(base_offset) => Ok(Delivered {
                partition: self.partition,
                offset: if *base_offset >= 0 {
                    base_offset + index as i64
                } else {
                    -1
                },
            }),
            Err(error) => Err(error.clone()),
        }
    }
}

/// The partition worker's end of a batch's report. Dropped without an outcome (the
/// runtime stopped under the worker), it reports `Abandoned`: the records may have been
/// written.
#[derive(Debug)]
pub(crate) struct Reporter(Arc<BatchReport>);

impl Reporter {
    pub fn new(report: Arc<BatchReport>) -> Self {
        Self(report)
    }

    pub fn report(&self) -> &Arc<BatchReport> {
        &self.0
    }

    /// Every record of the batch was written, the first at `base_offset`.
    pub fn delivered(self, base_offset: i64) {
        self.0.complete(Ok(base_offset));
    }

    pub fn failed(self, error: DeliveryError) {
        self.0.complete(Err(error));
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.0.complete(Err(DeliveryError::Abandoned));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::DeliveryFuture;

    #[tokio::test]
    async fn every_record_reads_its_offset_from_the_batch_outcome() {
        let report = BatchReport::new(7);
        let futures: Vec<_> = (0..3)
            .map(|i| DeliveryFuture::new(Arc::clone(&report), i))
            .collect();
        let waiter = tokio::spawn(async move {
            let mut results = Vec::new();
            for f in futures {
                results.push(f.await);
            }
            results
        });
        tokio::task::yield_now().await;
        Reporter::new(report).delivered(100);
        let offsets: Vec<_> = waiter
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            offsets,
            (100..103)
                .map(|offset| Delivered {
                    partition: 7,
                    offset
                })
                .collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_failure_reaches_every_record_and_a_dropped_reporter_abandons() {
        let failed = BatchReport::new(1);
        let first = DeliveryFuture::new(Arc::clone(&failed), 0);
        let second = DeliveryFuture::new(Arc::clone(&failed), 1);
        Reporter::new(failed).failed(DeliveryError::Closed);
        assert_eq!(first.await, Err(DeliveryError::Closed));
        assert_eq!(second.await, Err(DeliveryError::Closed));

        let dropped = BatchReport::new(1);
        let future = DeliveryFuture::new(Arc::clone(&dropped), 0);
        drop(Reporter::new(dropped));
        assert_eq!(future.await, Err(DeliveryError::Abandoned));
    }

    #[tokio::test]
    async fn an_unknown_base_offset_gives_every_record_offset_minus_one() {
        let report = BatchReport::new(0);
        let future = DeliveryFuture::new(Arc::clone(&report), 5);
        Reporter::new(report).delivered(-1);
        assert_eq!(future.await.unwrap().offset, -1);
    }
}
