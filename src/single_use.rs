//! Single-use challenges held in memory: each issued under a random 128-bit id with an
//! expiry, redeemed at most once. The spoken passphrase ([`crate::voice::passphrase`]) and the
//! movement challenge ([`crate::face::challenge`]) keep theirs here; only what a challenge
//! holds and what it is bound to differ.
//!
//! Outstanding challenges live in memory, or, given a [`ChallengeBook`] (the decision state,
//! [`crate::ledger::Ledger`]), on disk: then a restart neither voids an outstanding challenge
//! nor makes a spent one usable again. The book keeps a hash of each id, never the id.

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

/// Where outstanding and spent challenges are kept durably.
pub trait ChallengeBook: Send + Sync {
    /// Stores an issued challenge under the hash of its id.
    fn issue(&self, id_hash: &str, kind: &str, payload: &[u8], expires_ms: i64) -> Result<()>;
    /// Spends a challenge for good: its payload and expiry if it was outstanding, `None` when
    /// unknown or spent before.
    fn spend(&self, id_hash: &str, kind: &str) -> Result<Option<(Vec<u8>, i64)>>;
    /// How many challenges of `kind` are outstanding at `now_ms`.
    fn outstanding(&self, kind: &str, now_ms: i64) -> Result<usize>;
}

/// A challenge that can be written to a [`ChallengeBook`] and read back.
pub trait Durable: Sized {
    /// The kind of challenge, as the book files it (`"passphrase"`, `"movement"`).
    const KIND: &'static str;
    /// What it holds besides its id and expiry.
    fn encode(&self) -> Vec<u8>;
    /// The challenge back from its id, what [`Durable::encode`] wrote and its expiry.
    fn decode(id: &str, payload: &[u8], expires_at: SystemTime) -> Result<Self>;
}

fn id_hash(id: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(id.as_bytes()))
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Outstanding challenges of one kind.
pub struct SingleUse<T> {
    book: Option<std::sync::Arc<dyn ChallengeBook>>,
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

impl<T: Clone + Durable> SingleUse<T> {
    /// Challenges valid for `ttl` (positive; the caller checks it), at most 100,000
    /// outstanding.
    pub fn new(ttl: Duration, wording: Wording) -> SingleUse<T> {
        SingleUse {
            book: None,
            ttl,
            max_outstanding: 100_000,
            wording,
            outstanding: Mutex::new(HashMap::new()),
            clock: Box::new(SystemTime::now),
        }
    }

    /// Keeps the challenges in `book` instead of memory: they survive a restart, and so does
    /// their being spent.
    pub fn with_book(mut self, book: std::sync::Arc<dyn ChallengeBook>) -> Self {
        self.book = Some(book);
        self
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
        if let Some(book) = &self.book {
            if book.outstanding(T::KIND, unix_ms(now))? >= self.max_outstanding {
                return Err(self.too_many());
            }
            book.issue(
                &id_hash(&id),
                T::KIND,
                &challenge.encode(),
                unix_ms(expires_at),
            )?;
            return Ok(challenge);
        }
        let mut outstanding = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        outstanding.retain(|_, (_, expires)| *expires > now);
        if outstanding.len() >= self.max_outstanding {
            return Err(self.too_many());
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
        let unknown = || {
            refused(format!(
                "unknown or already used {}; request a new one",
                self.wording.what
            ))
        };
        let (challenge, expires_at) = match &self.book {
            Some(book) => {
                let (payload, expires_ms) =
                    book.spend(&id_hash(id), T::KIND)?.ok_or_else(unknown)?;
                let expires_at = std::time::UNIX_EPOCH
                    + Duration::from_millis(u64::try_from(expires_ms).unwrap_or(0));
                (T::decode(id, &payload, expires_at)?, expires_at)
            }
            None => self
                .outstanding
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id)
                .ok_or_else(unknown)?,
        };
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

    fn too_many(&self) -> Error {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "too many outstanding {}s; try again shortly",
                self.wording.what
            ),
        )
    }
}
