//! The inference worker pool: CPU-bound work runs on these threads, never on the async
//! runtime's. A bounded queue in front of it turns overload into RESOURCE_EXHAUSTED at once
//! instead of an ever-growing backlog.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a job was not run.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too many requests queued or running.
    Busy,
    /// The deadline passed while the job waited in the queue.
    Expired,
    /// The pool is shutting down.
    Closed,
}

/// A fixed set of threads behind a bounded queue.
pub struct WorkerPool {
    sender: Mutex<Option<SyncSender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
}

impl WorkerPool {
    /// `workers` threads; at most `max_in_flight` jobs queued or running.
    pub fn new(workers: usize, max_in_flight: usize) -> WorkerPool {
        let (sender, receiver) = sync_channel::<Job>(max_in_flight);
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = (0..workers)
            .map(|i| {
                let receiver: Arc<Mutex<Receiver<Job>>> = Arc::clone(&receiver);
                std::thread::Builder::new()
                    .name(format!("vouchd-worker-{i}"))
                    .spawn(move || {
                        loop {
                            let job = receiver
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .recv();
                            match job {
                                Ok(job) => job(),
                                Err(_) => break,
                            }
                        }
                    })
            })
            .filter_map(std::result::Result::ok)
            .collect();
        WorkerPool {
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(threads),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight,
        }
    }

    /// Jobs queued or running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Runs `work` on a worker unless the pool is full; the result arrives when it is done.
    /// A job still queued at `deadline` is dropped unrun.
    pub async fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Busy);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let in_flight = Arc::clone(&self.in_flight);
        let job: Job = Box::new(move || {
            // Counted down however the job ends, even if `work` panics.
            struct Done(Arc<AtomicUsize>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::AcqRel);
                }
            }
            let done = Done(in_flight);
            if Instant::now() >= deadline {
                drop(done);
                let _ = reply.send(Err(Refused::Expired));
                return;
            }
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // Counted down before the caller hears back, so a caller that submits its next
            // job on the answer never finds this one still counted.
            drop(done);
            match outcome {
                Ok(value) => {
                    let _ = reply.send(Ok(value));
                }
                Err(_) => {
                    tracing::error!("a worker job panicked; the request fails, the daemon goes on");
                }
            }
        });
        let sent = match self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some(sender) => sender.try_send(job),
            None => {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                return Err(Refused::Closed);
            }
        };
        match sent {
            Ok(()) => {}
            // The job was never queued, so its guard never runs: count it out here.
            Err(TrySendError::Full(_)) => {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                return Err(Refused::Busy);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                return Err(Refused::Closed);
            }
        }
        answer.await.map_err(|_| Refused::Closed)?
    }

    /// Stops taking jobs and waits for the queued ones to finish.
    pub fn shutdown(&self) {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn runs_jobs_and_refuses_beyond_the_limit() {
        let pool = Arc::new(WorkerPool::new(1, 2));
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(pool.run(far, || 2 + 2).await, Ok(4));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let blocked: Vec<_> = (0..2)
            .map(|_| {
                let pool = Arc::clone(&pool);
                let gate = Arc::clone(&gate);
                tokio::spawn(async move {
                    pool.run(far, move || {
                        let _ = gate.lock().unwrap().recv();
                    })
                    .await
                })
            })
            .collect();
        while pool.in_flight() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(far, || ()).await, Err(Refused::Busy));
        release.send(()).unwrap();
        release.send(()).unwrap();
        for b in blocked {
            assert_eq!(b.await.unwrap(), Ok(()));
        }
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test]
    async fn expired_jobs_are_not_run_and_panics_do_not_kill_workers() {
        let pool = WorkerPool::new(1, 4);
        let past = Instant::now();
        assert_eq!(pool.run(past, || 1).await, Err(Refused::Expired));
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            pool.run(far, || -> u8 { panic!("boom") }).await,
            Err(Refused::Closed)
        );
        assert_eq!(pool.run(far, || 7).await, Ok(7));
        pool.shutdown();
        assert_eq!(pool.run(far, || 1).await, Err(Refused::Closed));
    }
}
