//! Attempt limits: failed verifications per subject and per terminal within a sliding window
//! lead to a lockout. This module records the attempts in the decision state
//! ([`crate::ledger`]) and reads them back; when they lock is the decision module's rule
//! ([`crate::decision::lockout`]), and so are the settings ([`AttemptsConfig`]).
//!
//! Only biometric failures count (a face or voice that did not match, a presentation that was
//! not live): a retake asked for by the quality gate reveals nothing about the template and
//! does not. A successful verification clears the subject's failures, not the terminal's.
//! With a durable ledger the counts and locks survive a restart of the daemon; on a fleet
//! terminal a subject's failures on other terminals count too, once replicated (a terminal's
//! own failures are its own).
//!
//! ```
//! use std::sync::Arc;
//! use vouch::attempts::{AttemptLimiter, AttemptsConfig, Lock};
//! use vouch::ledger::Ledger;
//!
//! let ledger = Arc::new(Ledger::in_memory("till-1").unwrap());
//! let limiter = AttemptLimiter::new(AttemptsConfig { max_subject_failures: 2, ..Default::default() }, ledger);
//! let now = 1_800_000_000_000;
//! limiter.record_failure("alice", "till-1", now).unwrap();
//! assert_eq!(limiter.check("alice", "till-1", now).unwrap(), None);
//! limiter.record_failure("alice", "till-1", now).unwrap();
//! assert!(matches!(limiter.check("alice", "till-1", now).unwrap(), Some(Lock::Subject { .. })));
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::decision::{Attempt, lockout};
pub use crate::decision::{AttemptsConfig, Lock};
use crate::error::Result;
use crate::ledger::{Event, EventKind, Ledger, NewEvent};

/// Failure counts and lockouts over the decision state; `Send + Sync`, one per process.
#[derive(Debug)]
pub struct AttemptLimiter {
    config: AttemptsConfig,
    ledger: Arc<Ledger>,
}

fn attempts(events: &[Event]) -> Vec<Attempt> {
    events
        .iter()
        .map(|e| Attempt {
            at_ms: e.at_ms,
            failed: e.kind == EventKind::Failure,
        })
        .collect()
}

impl AttemptLimiter {
    /// A limiter with `config` over `ledger`.
    pub fn new(config: AttemptsConfig, ledger: Arc<Ledger>) -> AttemptLimiter {
        AttemptLimiter { config, ledger }
    }

    /// How far back a lock can reach: a window of failures, then the lockout.
    fn lookback_ms(&self) -> i64 {
        ((self.config.window_seconds + self.config.lockout_seconds) * 1000) as i64
    }

    /// The lock in force for `subject` at `terminal` at `now_ms` (milliseconds since the
    /// epoch), if any (the subject's first).
    pub fn check(&self, subject: &str, terminal: &str, now_ms: i64) -> Result<Option<Lock>> {
        let since = now_ms - self.lookback_ms();
        let window = Duration::from_secs(self.config.window_seconds);
        let duration = Duration::from_secs(self.config.lockout_seconds);
        let failures = self.ledger.failures_since_success(subject, since)?;
        if let Some(remaining) = lockout(
            &attempts(&failures),
            self.config.max_subject_failures,
            window,
            duration,
            now_ms,
        ) {
            return Ok(Some(Lock::Subject { remaining }));
        }
        self.check_terminal(terminal, now_ms)
    }

    /// The terminal's lock in force at `now_ms`, if any.
    pub fn check_terminal(&self, terminal: &str, now_ms: i64) -> Result<Option<Lock>> {
        let since = now_ms - self.lookback_ms();
        let window = Duration::from_secs(self.config.window_seconds);
        let duration = Duration::from_secs(self.config.lockout_seconds);
        let history = self
            .ledger
            .terminal_events(terminal, &[EventKind::Failure], since)?;
        Ok(lockout(
            &attempts(&history),
            self.config.max_terminal_failures,
            window,
            duration,
            now_ms,
        )
        .map(|remaining| Lock::Terminal { remaining }))
    }

    /// Records a failed verification of `subject` at `terminal`.
    pub fn record_failure(&self, subject: &str, terminal: &str, now_ms: i64) -> Result<()> {
        self.ledger.record(
            &[NewEvent::attempt(EventKind::Failure, subject, terminal)],
            now_ms,
        )
    }

    /// Records a successful verification, which clears the subject's failures, together with
    /// `also` (the payment it approved, when velocity rules count payments) in one write. With
    /// no failure to clear and nothing else to record, nothing is written: a verification
    /// costs no disk write it does not need. (On a fleet terminal, another terminal's failures
    /// older than this success but not yet replicated then still count: a rare, cautious lock.)
    pub fn record_success(
        &self,
        subject: &str,
        terminal: &str,
        now_ms: i64,
        also: &[NewEvent<'_>],
    ) -> Result<()> {
        let mut events = Vec::with_capacity(also.len() + 1);
        if !self
            .ledger
            .failures_since_success(subject, now_ms - self.lookback_ms())?
            .is_empty()
        {
            events.push(NewEvent::attempt(EventKind::Success, subject, terminal));
        }
        events.extend_from_slice(also);
        if events.is_empty() {
            return Ok(());
        }
        self.ledger.record(&events, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    fn limiter_over(ledger: Arc<Ledger>) -> AttemptLimiter {
        AttemptLimiter::new(
            AttemptsConfig {
                max_subject_failures: 3,
                max_terminal_failures: 5,
                window_seconds: 60,
                lockout_seconds: 300,
            },
            ledger,
        )
    }

    fn limiter() -> AttemptLimiter {
        limiter_over(Arc::new(Ledger::in_memory("t1").unwrap()))
    }

    #[test]
    fn subject_locks_after_the_limit_and_unlocks_after_the_lockout() {
        let l = limiter();
        let t0 = 1_800_000_000 * S;
        for i in 0..2 {
            l.record_failure("a", "t1", t0 + i * S).unwrap();
        }
        assert_eq!(l.check("a", "t1", t0 + 2 * S).unwrap(), None);
        l.record_failure("a", "t2", t0 + 2 * S).unwrap();
        let lock = l.check("a", "t9", t0 + 3 * S).unwrap();
        assert_eq!(
            lock,
            Some(Lock::Subject {
                remaining: Duration::from_secs(299)
            })
        );
        assert_eq!(l.check("b", "t1", t0 + 3 * S).unwrap(), None);
        assert_eq!(l.check("a", "t1", t0 + 302 * S).unwrap(), None);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let l = limiter();
        let t0 = 1_800_000_000 * S;
        l.record_failure("a", "t", t0).unwrap();
        l.record_failure("a", "t", t0 + 10 * S).unwrap();
        l.record_failure("a", "t", t0 + 70 * S).unwrap();
        assert_eq!(l.check("a", "t", t0 + 71 * S).unwrap(), None);
    }

    #[test]
    fn success_clears_the_subject_not_the_terminal() {
        let l = limiter();
        let t0 = 1_800_000_000 * S;
        for s in ["a", "b", "c", "d"] {
            l.record_failure(s, "t1", t0).unwrap();
        }
        l.record_success("a", "t1", t0, &[]).unwrap();
        l.record_failure("a", "t1", t0).unwrap();
        assert!(matches!(
            l.check("z", "t1", t0).unwrap(),
            Some(Lock::Terminal { .. })
        ));
        assert!(l.check("a", "other", t0).unwrap().is_none());
    }

    #[test]
    fn a_lock_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let t0 = 1_800_000_000 * S;
        {
            let l = limiter_over(Arc::new(Ledger::open(&path, "t1").unwrap()));
            for i in 0..3 {
                l.record_failure("a", "t1", t0 + i * S).unwrap();
            }
        }
        let l = limiter_over(Arc::new(Ledger::open(&path, "t1").unwrap()));
        assert!(matches!(
            l.check("a", "t1", t0 + 10 * S).unwrap(),
            Some(Lock::Subject { .. })
        ));
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
