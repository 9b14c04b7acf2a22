//! Single-use challenges held in memory: each issued under a random 128-bit id with an
//! expiry, redeemed at most once. The spoken passphrase ([`crate::voice::passphrase`]) and the
//! movement challenge ([`crate::face::challenge`]) keep theirs here; only what a challenge
//! holds and what it is bound to differ.
//!
//! Outstanding challenges live in memory: a restart voids them, which only asks the customer
//! for a new one.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::error::{Error, ErrorKind, Result};
use crate::secure::random;

/// The refusals a kind of challenge words for its terminal ("passphrase challenge", …).
#[derive(Clone, Copy, Debug)]
pub struct Wording {
    /// What the challenge is called, e.g. `"passphrase challenge"`.
    pub what: &'static str,
    /// Why a challenge redeemed for another binding is refused.
    pub other_binding: &'static str,
}

/// Outstanding challenges of one kind.
pub struct SingleUse<T> {
    ttl: Duration,
    max_outstanding: usize,
    wording: Wording,
    outstanding: Mutex<HashMap<String, (T, SystemTime)>>,
    clock: Box<dyn Fn() -> SystemTime + Send + Sync>,
}

impl<T> std::fmt::Debug for SingleUse<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleUse")
            .field("what", &self.wording.what)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<T: Clone> SingleUse<T> {
    /// Challenges valid for `ttl` (positive; the caller checks it), at most 100,000
    /// outstanding.
    pub fn new(ttl: Duration, wording: Wording) -> SingleUse<T> {
        SingleUse {
            ttl,
            max_outstanding: 100_000,
            wording,
            outstanding: Mutex::new(HashMap::new()),
            clock: Box::new(SystemTime::now),
        }
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Issues a challenge: `make` gets its id (32 hex digits from the system CSPRNG) and its
    /// expiry and builds what it holds. Expired challenges are dropped first.
    pub fn issue(&self, make: impl FnOnce(String, SystemTime) -> Result<T>) -> Result<T> {
        let now = (self.clock)();
        let mut id = [0u8; 16];
        random(&mut id)?;
        let id = hex::encode(id);
        let expires_at = now + self.ttl;
        let challenge = make(id.clone(), expires_at)?;
        let mut outstanding = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        outstanding.retain(|_, (_, expires)| *expires > now);
        if outstanding.len() >= self.max_outstanding {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "too many outstanding {}s; try again shortly",
                    self.wording.what
                ),
            ));
        }
        outstanding.insert(id, (challenge.clone(), expires_at));
        Ok(challenge)
    }

    /// Redeems challenge `id`, once: an unknown or already redeemed id, a challenge for which
    /// `bound` is false, and an expired one are refused ([`ErrorKind::ChallengeInvalid`]), and
    /// the challenge is spent either way.
    pub fn redeem(&self, id: &str, bound: impl FnOnce(&T) -> bool) -> Result<T> {
        let now = (self.clock)();
        let refused = |message: String| Error::new(ErrorKind::ChallengeInvalid, message);
        let (challenge, expires_at) = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
            .ok_or_else(|| {
                refused(format!(
                    "unknown or already used {}; request a new one",
                    self.wording.what
                ))
            })?;
        if !bound(&challenge) {
            return Err(refused(self.wording.other_binding.to_string()));
        }
        if expires_at <= now {
            return Err(refused(format!(
                "the {} has expired; request a new one",
                self.wording.what
            )));
        }
        Ok(challenge)
    }
}
