//! The bounded hand-over between a device's capture thread (or audio callback) and the reader:
//! drop-oldest when full (counted), a failure that the reader sees on its next read, and reads
//! that wait at most their timeout.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};

/// What a read found.
#[derive(Debug)]
pub(crate) enum Pop<T> {
    /// The oldest queued item.
    Item(T),
    /// The producer failed: the failure, every time it is asked (the device is gone).
    Failed(Error),
    /// Nothing came within the timeout.
    TimedOut,
}

/// A bounded queue that never makes its producer wait for its reader.
pub(crate) struct Ring<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    dropped: u64,
    /// A failure reported by the producer: (kind, message), rebuilt into an `Error` per read.
    failure: Option<(ErrorKind, String)>,
}

impl<T> Ring<T> {
    /// A ring holding at most `capacity` items (at least one).
    pub(crate) fn new(capacity: usize) -> Ring<T> {
        let capacity = capacity.max(1);
        Ring {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity),
                dropped: 0,
                failure: None,
            }),
            ready: Condvar::new(),
            capacity,
        }
    }

    // A panic while the lock was held cannot leave the queue inconsistent (every update is a
    // single push, pop or assignment), so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push_locked(&self, state: &mut State<T>, item: T) {
        if state.items.len() >= self.capacity {
            state.items.pop_front();
            state.dropped += 1;
        }
        state.items.push_back(item);
        self.ready.notify_one();
    }

    /// Queues `item`, dropping the oldest queued item (counted) when full.
    pub(crate) fn push(&self, item: T) {
        let mut state = self.lock();
        self.push_locked(&mut state, item);
    }

    /// Queues `item` only if the lock is free right now; gives it back otherwise. For real-time
    /// producers (an audio callback) that must never wait, not even for a reader's brief lock.
    pub(crate) fn try_push(&self, item: T) -> Result<(), T> {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(item),
        };
        self.push_locked(&mut state, item);
        Ok(())
    }

    /// Records the producer's failure (the first one wins) and wakes the reader.
    pub(crate) fn fail(&self, kind: ErrorKind, message: impl Into<String>) {
        let mut state = self.lock();
        if state.failure.is_none() {
            state.failure = Some((kind, message.into()));
        }
        self.ready.notify_all();
    }

    /// Items dropped so far because the reader fell behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// The oldest item, waiting at most `timeout`. A failure is reported as soon as it is
    /// known, ahead of any items still queued, and again on every later read.
    pub(crate) fn pop(&self, timeout: Duration) -> Pop<T> {
        // A timeout too large to add to now (Duration::MAX) means "no deadline".
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        loop {
            if let Some((kind, message)) = &state.failure {
                return Pop::Failed(Error::new(*kind, message.clone()));
            }
            if let Some(item) = state.items.pop_front() {
                return Pop::Item(item);
            }
            let wait = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Pop::TimedOut;
                    }
                    deadline - now
                }
                None => Duration::from_secs(3600),
            };
            state = self
                .ready
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn drops_the_oldest_when_full_and_counts_it() {
        let ring = Ring::new(2);
        for i in 0..5 {
            ring.push(i);
        }
        assert_eq!(ring.dropped(), 3);
        assert!(matches!(ring.pop(Duration::ZERO), Pop::Item(3)));
        assert!(matches!(ring.pop(Duration::ZERO), Pop::Item(4)));
        assert!(matches!(ring.pop(Duration::ZERO), Pop::TimedOut));
    }

    #[test]
    fn an_empty_ring_times_out_on_time() {
        let ring: Ring<u8> = Ring::new(1);
        let start = Instant::now();
        assert!(matches!(ring.pop(Duration::from_millis(50)), Pop::TimedOut));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[test]
    fn a_failure_is_reported_first_and_stays() {
        let ring = Ring::new(4);
        ring.push(1);
        ring.fail(ErrorKind::Device, "unplugged");
        ring.fail(ErrorKind::Io, "later failures are ignored");
        for _ in 0..2 {
            match ring.pop(Duration::ZERO) {
                Pop::Failed(e) => {
                    assert_eq!(e.kind(), ErrorKind::Device);
                    assert_eq!(e.message(), "unplugged");
                }
                other => panic!("expected the failure, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_waiting_reader_wakes_for_an_item_and_for_a_failure() {
        let ring = Arc::new(Ring::new(1));
        let producer = Arc::clone(&ring);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            producer.push(7);
            std::thread::sleep(Duration::from_millis(20));
            producer.fail(ErrorKind::Device, "gone");
        });
        assert!(matches!(ring.pop(Duration::from_secs(10)), Pop::Item(7)));
        assert!(matches!(ring.pop(Duration::from_secs(10)), Pop::Failed(_)));
        thread.join().unwrap();
    }

    #[test]
    fn try_push_gives_the_item_back_while_the_reader_holds_the_lock() {
        let ring = Ring::new(1);
        let guard = ring.lock();
        assert_eq!(ring.try_push(5), Err(5));
        drop(guard);
        assert_eq!(ring.try_push(5), Ok(()));
    }
}
