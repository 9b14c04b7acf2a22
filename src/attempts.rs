//! Attempt limits: failed verifications per subject and per terminal within a sliding window
//! lead to a lockout. This module keeps the counts; when they lock is the decision module's
//! rule ([`crate::decision::lockout_reached`]), and so are the settings ([`AttemptsConfig`]).
//!
//! Only biometric failures count (a face or voice that did not match, a presentation that was
//! not live): a retake asked for by the quality gate reveals nothing about the template and
//! does not. A successful verification clears the subject's failures, not the terminal's.
//! The counters live in memory: a restart of the daemon clears them, which a terminal cannot
//! cause.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use vouch::attempts::{AttemptLimiter, AttemptsConfig, Lock};
//!
//! let limiter = AttemptLimiter::new(AttemptsConfig { max_subject_failures: 2, ..Default::default() });
//! let now = Instant::now();
//! limiter.record_failure("alice", "till-1", now);
//! assert_eq!(limiter.check("alice", "till-1", now), None);
//! limiter.record_failure("alice", "till-1", now);
//! assert!(matches!(limiter.check("alice", "till-1", now), Some(Lock::Subject { .. })));
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::decision::lockout_reached;
pub use crate::decision::{AttemptsConfig, Lock};

#[derive(Default)]
struct Counter {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

impl Counter {
    fn lock_remaining(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    fn fail(&mut self, now: Instant, window: Duration, max: u32, lockout: Duration) {
        while self
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        if lockout_reached(self.failures.len(), max) {
            self.locked_until = Some(now + lockout);
            self.failures.clear();
        }
    }
}

#[derive(Default)]
struct State {
    subjects: HashMap<String, Counter>,
    terminals: HashMap<String, Counter>,
}

/// Failure counters and lockouts; `Send + Sync`, one per process.
pub struct AttemptLimiter {
    config: AttemptsConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for AttemptLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptLimiter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Counters kept at most, per kind; beyond it the idle ones are dropped first.
const MAX_COUNTERS: usize = 100_000;

impl AttemptLimiter {
    /// A limiter with `config`.
    pub fn new(config: AttemptsConfig) -> AttemptLimiter {
        AttemptLimiter {
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock in force for `subject` at `terminal`, if any (the subject's first).
    pub fn check(&self, subject: &str, terminal: &str, now: Instant) -> Option<Lock> {
        let state = self.state();
        if let Some(remaining) = state
            .subjects
            .get(subject)
            .and_then(|c| c.lock_remaining(now))
        {
            return Some(Lock::Subject { remaining });
        }
        state
            .terminals
            .get(terminal)
            .and_then(|c| c.lock_remaining(now))
            .map(|remaining| Lock::Terminal { remaining })
    }

    /// Counts a failed verification against the subject and the terminal.
    pub fn record_failure(&self, subject: &str, terminal: &str, now: Instant) {
        let window = Duration::from_secs(self.config.window_seconds);
        let lockout = Duration::from_secs(self.config.lockout_seconds);
        let mut guard = self.state();
        let state = &mut *guard;
        for (map, key, max) in [
            (
                &mut state.subjects,
                subject,
                self.config.max_subject_failures,
            ),
            (
                &mut state.terminals,
                terminal,
                self.config.max_terminal_failures,
            ),
        ] {
            if map.len() >= MAX_COUNTERS && !map.contains_key(key) {
                map.retain(|_, c| {
                    c.lock_remaining(now).is_some()
                        || c.failures
                            .back()
                            .is_some_and(|t| now.saturating_duration_since(*t) < window)
                });
            }
            map.entry(key.to_string())
                .or_default()
                .fail(now, window, max, lockout);
        }
    }

    /// Clears the subject's failures after a successful verification.
    pub fn record_success(&self, subject: &str) {
        if let Some(counter) = self.state().subjects.get_mut(subject) {
            counter.failures.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> AttemptLimiter {
        AttemptLimiter::new(AttemptsConfig {
            max_subject_failures: 3,
            max_terminal_failures: 5,
            window_seconds: 60,
            lockout_seconds: 300,
        })
    }

    #[test]
    fn subject_locks_after_the_limit_and_unlocks_after_the_lockout() {
        let l = limiter();
        let t0 = Instant::now();
        for i in 0..2 {
            l.record_failure("a", "t1", t0 + Duration::from_secs(i));
        }
        assert_eq!(l.check("a", "t1", t0 + Duration::from_secs(2)), None);
        l.record_failure("a", "t2", t0 + Duration::from_secs(2));
        let lock = l.check("a", "t9", t0 + Duration::from_secs(3));
        assert_eq!(
            lock,
            Some(Lock::Subject {
                remaining: Duration::from_secs(299)
            })
        );
        assert_eq!(l.check("b", "t1", t0 + Duration::from_secs(3)), None);
        assert_eq!(l.check("a", "t1", t0 + Duration::from_secs(302)), None);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let l = limiter();
        let t0 = Instant::now();
        l.record_failure("a", "t", t0);
        l.record_failure("a", "t", t0 + Duration::from_secs(10));
        l.record_failure("a", "t", t0 + Duration::from_secs(70));
        assert_eq!(l.check("a", "t", t0 + Duration::from_secs(71)), None);
    }

    #[test]
    fn success_clears_the_subject_not_the_terminal() {
        let l = limiter();
        let t0 = Instant::now();
        for s in ["a", "b", "c", "d"] {
            l.record_failure(s, "t", t0);
        }
        l.record_success("a");
        l.record_failure("a", "t", t0);
        assert!(matches!(l.check("z", "t", t0), Some(Lock::Terminal { .. })));
        assert!(l.check("a", "other", t0).is_none());
    }

    #[test]
    fn zero_limits_are_refused() {
        let config = AttemptsConfig {
            max_subject_failures: 0,
            ..AttemptsConfig::default()
        };
        assert!(config.validate().is_err());
        AttemptsConfig::default().validate().unwrap();
    }
}
