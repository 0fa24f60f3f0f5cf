//! Admission: bounds the events accepted but not yet reported, in bytes
//! (`buffer_max_bytes`) and in count (`buffer_max_records`).
//! `Producer::send` takes room here before an event enters the pipeline; the partition
//! worker gives it back once the event's report is made, not when its batch is sent.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::sync::{Semaphore, TryAcquireError};

/// Why `try_admit` could not take room right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdmitError {
    /// Not enough room: the caller may wait (`admit`) or fail fast (`try_send`).
    Full,
    /// The producer is closed.
    Closed,
}

#[derive(Debug)]
pub(crate) struct Buffer {
    /// One permit per byte of encoded record.
    bytes: Semaphore,
    /// One permit per event.
    records: Semaphore,
    max_bytes: u64,
    max_records: usize,
    /// `admit` calls waiting for room right now: backpressure is in effect.
    waiting: AtomicU64,
}

/// How much of the buffer is taken, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferUsage {
    pub used_bytes: u64,
    pub max_bytes: u64,
    pub used_records: u64,
    pub max_records: u64,
    /// Sends waiting for room (`Producer::send` blocked by backpressure).
    pub waiting_sends: u64,
}

impl BufferUsage {
    /// A send would wait for room now.
    pub fn is_full(&self) -> bool {
        self.waiting_sends > 0
    }
}

impl Buffer {
    pub fn new(max_bytes: u64, max_records: usize) -> Self {
        Self {
            bytes: Semaphore::new(max_bytes as usize),
            records: Semaphore::new(max_records),
            max_bytes,
            max_records,
            waiting: AtomicU64::new(0),
        }
    }

    /// Waits until there is room for one event of `bytes` bytes, then takes it.
    /// Waiters are served first come, first served. Cancelling it takes nothing.
    pub async fn admit(&self, bytes: u32) -> Result<(), AdmitError> {
        match self.try_admit(bytes) {
            Err(AdmitError::Full) => {}
            done => return done,
        }
        self.waiting.fetch_add(1, Relaxed);
        // Counted down however the wait ends, cancelled included.
        struct Waiting<'a>(&'a AtomicU64);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Relaxed);
            }
        }
        let _waiting = Waiting(&self.waiting);
        let record = self
            .records
            .acquire()
            .await
            .map_err(|_| AdmitError::Closed)?;
        let room = self
            .bytes
            .acquire_many(bytes)
            .await
            .map_err(|_| AdmitError::Closed)?;
        record.forget();
        room.forget();
        Ok(())
    }

    /// Takes room for one event now, or says why not.
    pub fn try_admit(&self, bytes: u32) -> Result<(), AdmitError> {
        let map = |e| match e {
            TryAcquireError::NoPermits => AdmitError::Full,
            TryAcquireError::Closed => AdmitError::Closed,
        };
        let record = self.records.try_acquire().map_err(map)?;
        let room = self.bytes.try_acquire_many(bytes).map_err(map)?;
        record.forget();
        room.forget();
        Ok(())
    }

    /// Gives back the room of `records` reported events totalling `bytes`.
    pub fn release(&self, records: usize, bytes: usize) {
        self.records.add_permits(records);
        self.bytes.add_permits(bytes);
    }

    pub fn usage(&self) -> BufferUsage {
        let free_bytes = self.bytes.available_permits() as u64;
        let free_records = self.records.available_permits() as u64;
        BufferUsage {
            used_bytes: self.max_bytes.saturating_sub(free_bytes),
            max_bytes: self.max_bytes,
            used_records: (self.max_records as u64).saturating_sub(free_records),
            max_records: self.max_records as u64,
            waiting_sends: self.waiting.load(Relaxed),
        }
    }

    /// At least half of either limit is taken: events arrive faster than they are
    /// acknowledged.
    pub fn under_pressure(&self) -> bool {
        let free_bytes = self.bytes.available_permits() as u64;
        let free_records = self.records.available_permits();
        free_bytes <= self.max_bytes / 2 || free_records <= self.max_records / 2
    }

    /// Stops admitting: waiting and later calls fail with `Closed`.
    pub fn close(&self) {
        self.records.close();
        self.bytes.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_returns_only_when_released() {
        let buffer = Buffer::new(100, 10);
        buffer.try_admit(60).unwrap();
        assert_eq!(buffer.try_admit(60), Err(AdmitError::Full));
        buffer.release(1, 60);
        assert_eq!(buffer.try_admit(60), Ok(()));
    }

    #[tokio::test]
    async fn record_count_is_bounded_too() {
        let buffer = Buffer::new(1000, 2);
        buffer.try_admit(1).unwrap();
        buffer.try_admit(1).unwrap();
        assert_eq!(buffer.try_admit(1), Err(AdmitError::Full));
    }

    #[tokio::test]
    async fn usage_counts_what_is_taken_and_who_waits() {
        let buffer = std::sync::Arc::new(Buffer::new(100, 10));
        buffer.try_admit(60).unwrap();
        let usage = buffer.usage();
        assert_eq!((usage.used_bytes, usage.used_records), (60, 1));
        assert!(!usage.is_full());
        let waiter = {
            let buffer = buffer.clone();
            tokio::spawn(async move { buffer.admit(60).await })
        };
        while buffer.usage().waiting_sends == 0 {
            tokio::task::yield_now().await;
        }
        assert!(buffer.usage().is_full());
        buffer.release(1, 60);
        waiter.await.unwrap().unwrap();
        let usage = buffer.usage();
        assert_eq!((usage.used_bytes, usage.waiting_sends), (60, 0));
    }

    #[tokio::test]
    async fn closing_fails_waiters() {
        let buffer = std::sync::Arc::new(Buffer::new(10, 10));
        buffer.try_admit(10).unwrap();
        let waiter = {
            let buffer = buffer.clone();
            tokio::spawn(async move { buffer.admit(5).await })
        };
        tokio::task::yield_now().await;
        buffer.close();
        assert_eq!(waiter.await.unwrap(), Err(AdmitError::Closed));
    }
}
