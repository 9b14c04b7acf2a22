//! Active liveness challenges: a random sequence of head movements bound to a single-use
//! nonce, a subject, a terminal and a transaction, with an expiry.
//!
//! The customer answers with a timed sequence of frames ([`crate::face::motion`]); the answer
//! is judged by [`crate::decision::active_liveness`]. A recording made for an earlier
//! challenge shows other movements (2 to 4 of the 4, never the same twice in a row: 12, 36 and
//! 108 sequences of each length, 156 in all, drawn from the OS CSPRNG; a recording of one
//! earlier answer matches a new 2-to-4-movement challenge with odds of 1/3 × 1/12 at best, and
//! each failure counts towards the lockout), and a replayed answer to this one finds its
//! challenge already redeemed, bound to another transaction or expired.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::face::motion::HeadMovement;
use crate::secure::random;
use crate::single_use::{ChallengeBook, Durable, SingleUse, Wording};

/// What a challenge is bound to: it is redeemed only for the same subject, terminal and
/// transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Binding {
    /// The subject it was issued for.
    pub subject: String,
    /// The terminal that asked.
    pub terminal: String,
    /// The transaction it is for.
    pub transaction_id: String,
}

/// An issued movement challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MovementChallenge {
    /// Single-use nonce identifying the challenge (32 hex digits, 128 random bits).
    pub id: String,
    /// What it is bound to.
    pub binding: Binding,
    /// The movements to make, in order.
    pub actions: Vec<HeadMovement>,
    /// When it stops being accepted.
    #[serde(serialize_with = "unix_seconds")]
    pub expires_at: SystemTime,
}

fn unix_seconds<S: serde::Serializer>(
    t: &SystemTime,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    s.serialize_u64(secs)
}

impl Durable for MovementChallenge {
    const KIND: &'static str = "movement";

    fn encode(&self) -> Vec<u8> {
        serde_json::json!({
            "subject": self.binding.subject,
            "terminal": self.binding.terminal,
            "transaction_id": self.binding.transaction_id,
            "actions": HeadMovement::joined(&self.actions, ","),
        })
        .to_string()
        .into_bytes()
    }

    fn decode(id: &str, payload: &[u8], expires_at: SystemTime) -> Result<MovementChallenge> {
        let broken = || {
            Error::new(
                ErrorKind::Store,
                "state database: a broken movement challenge",
            )
        };
        let value: serde_json::Value = serde_json::from_slice(payload).map_err(|_| broken())?;
        let field = |name: &str| value[name].as_str().map(str::to_string).ok_or_else(broken);
        Ok(MovementChallenge {
            id: id.to_string(),
            binding: Binding {
                subject: field("subject")?,
                terminal: field("terminal")?,
                transaction_id: field("transaction_id")?,
            },
            actions: HeadMovement::parse_list(&field("actions")?).map_err(|_| broken())?,
            expires_at,
        })
    }
}

/// Issues and redeems movement challenges ([`SingleUse`]: like the spoken ones, single-use,
/// with an expiry, in memory or in the decision state).
#[derive(Debug)]
pub struct MovementChallengeIssuer {
    movements: (usize, usize),
    outstanding: SingleUse<MovementChallenge>,
}

/// A uniform draw in `0..n` (n ≤ 256) from the CSPRNG, by rejection: no modulo bias.
fn uniform(n: usize) -> Result<usize> {
    let n = n as u16;
    let limit = 256 - 256 % n;
    loop {
        let mut byte = [0u8; 1];
        random(&mut byte)?;
        if u16::from(byte[0]) < limit {
            return Ok(usize::from(u16::from(byte[0]) % n));
        }
    }
}

impl MovementChallengeIssuer {
    /// Challenges of `min..=max` movements (1 ≤ min ≤ max ≤ 8), valid for `ttl`.
    pub fn new(min: usize, max: usize, ttl: Duration) -> Result<MovementChallengeIssuer> {
        if !(1 <= min && min <= max && max <= 8) || ttl.is_zero() {
            return Err(Error::new(
                ErrorKind::Config,
                "a movement challenge has 1 to 8 movements (min ≤ max) and a positive lifetime",
            ));
        }
        Ok(MovementChallengeIssuer {
            movements: (min, max),
            outstanding: SingleUse::new(
                ttl,
                Wording {
                    what: "liveness challenge",
                    other_binding: "the liveness challenge was issued for another subject, terminal or transaction",
                },
            ),
        })
    }

    /// Keeps the challenges in `book` (they survive a restart, spent or not).
    pub fn with_book(mut self, book: std::sync::Arc<dyn ChallengeBook>) -> MovementChallengeIssuer {
        self.outstanding = self.outstanding.with_book(book);
        self
    }

    /// Replaces the clock (tests).
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
    ) -> MovementChallengeIssuer {
        self.outstanding = self.outstanding.with_clock(clock);
        self
    }

    /// Draws the movements: a uniform length, the first movement uniform over the four, each
    /// next one uniform over the three others.
    fn draw(&self) -> Result<Vec<HeadMovement>> {
        let (min, max) = self.movements;
        let length = min + uniform(max - min + 1)?;
        let mut actions: Vec<HeadMovement> = Vec::with_capacity(length);
        for _ in 0..length {
            let choices: Vec<HeadMovement> = HeadMovement::ALL
                .into_iter()
                .filter(|m| actions.last() != Some(m))
                .collect();
            actions.push(choices[uniform(choices.len())?]);
        }
        Ok(actions)
    }

    /// Issues a challenge bound to `binding`.
    pub fn issue(&self, binding: Binding) -> Result<MovementChallenge> {
        let actions = self.draw()?;
        self.outstanding.issue(|id, expires_at| {
            Ok(MovementChallenge {
                id,
                binding,
                actions,
                expires_at,
            })
        })
    }

    /// Redeems a challenge, once, for the binding it was issued with: a second redemption, an
    /// unknown id, another subject, terminal or transaction, and an expired challenge are all
    /// refused ([`ErrorKind::ChallengeInvalid`]), and the challenge is spent either way.
    pub fn redeem(&self, id: &str, binding: &Binding) -> Result<MovementChallenge> {
        self.outstanding.redeem(id, |c| &c.binding == binding)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn binding(tx: &str) -> Binding {
        Binding {
            subject: "alice".into(),
            terminal: "till-1".into(),
            transaction_id: tx.into(),
        }
    }

    #[test]
    fn challenges_have_two_to_four_movements_never_the_same_twice_in_a_row() {
        let issuer = MovementChallengeIssuer::new(2, 4, Duration::from_secs(60)).unwrap();
        let mut lengths = [0usize; 5];
        let mut firsts = HashMap::new();
        for i in 0..2000 {
            let c = issuer.issue(binding(&format!("t{i}"))).unwrap();
            assert!((2..=4).contains(&c.actions.len()), "{c:?}");
            assert!(c.actions.windows(2).all(|w| w[0] != w[1]), "{c:?}");
            assert_eq!(c.id.len(), 32);
            lengths[c.actions.len()] += 1;
            *firsts.entry(c.actions[0]).or_insert(0) += 1;
        }
        // Every length and every first movement comes up (each expected ~667 and ~500 times).
        assert!(lengths[2..].iter().all(|&n| n > 500), "{lengths:?}");
        assert_eq!(firsts.len(), 4);
        assert!(firsts.values().all(|&n| n > 380), "{firsts:?}");
    }

    #[test]
    fn a_challenge_is_redeemed_once_for_its_own_binding_before_it_expires() {
        let now = Arc::new(AtomicU64::new(1_000));
        let clock = {
            let now = Arc::clone(&now);
            move || SystemTime::UNIX_EPOCH + Duration::from_secs(now.load(Ordering::SeqCst))
        };
        let issuer = MovementChallengeIssuer::new(2, 4, Duration::from_secs(60))
            .unwrap()
            .with_clock(clock);
        let c = issuer.issue(binding("t1")).unwrap();
        assert_eq!(issuer.redeem(&c.id, &binding("t1")).unwrap(), c);
        let again = issuer.redeem(&c.id, &binding("t1")).unwrap_err();
        assert_eq!(again.kind(), ErrorKind::ChallengeInvalid);

        // Another transaction, terminal or subject spends it without redeeming it.
        for other in [
            binding("t2"),
            Binding {
                terminal: "till-2".into(),
                ..binding("t1")
            },
            Binding {
                subject: "bob".into(),
                ..binding("t1")
            },
        ] {
            let c = issuer.issue(binding("t1")).unwrap();
            let err = issuer.redeem(&c.id, &other).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ChallengeInvalid);
            assert!(issuer.redeem(&c.id, &binding("t1")).is_err());
        }

        let c = issuer.issue(binding("t3")).unwrap();
        now.fetch_add(61, Ordering::SeqCst);
        let err = issuer.redeem(&c.id, &binding("t3")).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn bad_settings_are_refused() {
        for (min, max) in [(0, 2), (3, 2), (1, 9)] {
            assert!(MovementChallengeIssuer::new(min, max, Duration::from_secs(1)).is_err());
        }
        assert!(MovementChallengeIssuer::new(2, 4, Duration::ZERO).is_err());
    }
}
