//! Spoken-passphrase challenges: a random digit string bound to a single-use nonce and an
//! expiry.
//!
//! The engine issues a challenge when the policy asks for voice; the customer speaks the
//! digits; verification redeems the challenge exactly once. A recording of an earlier
//! passphrase says other digits, and a replayed response to this challenge finds it already
//! redeemed or expired.
//!
//! A response is examined ([`check_digits`], then the speaker models through
//! [`crate::voice::enrollment::VoiceService::examine`]): the VAD cuts it into spoken words, one
//! per digit of the challenge; each word's digit is recognised by the digit head adapted to the
//! customer ([`crate::voice::digits`]); and the whole response is scored by each speaker model
//! against the subject's voiceprints. The result is evidence ([`PassphraseEvidence`]): the
//! decision module holds the recognised digits to `decisions.max_digit_errors` (by default 1)
//! and the calibrated speaker score to its threshold.
//!
//! Why one digit may differ: the question is whether the response says the challenge, not
//! whether every word was recognised. Leave one speaker out on FSDD, the adapted head gets
//! 98.4 % of words right: a 6-digit phrase all right ~91 %, all but one ~99.7 %. An old
//! recording of other (uniformly random) digits matches at least five of six positions with
//! odds of 6 × 0.1⁵ × 0.9 + 0.1⁶ ≈ 5.5e-5. Both must hold: the digits defeat a replayed old
//! recording, the speaker score defeats someone else reading the right digits.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::secure::random;
use crate::single_use::{ChallengeBook, Durable, SingleUse, Wording};
use crate::voice::audio::Audio;
use crate::voice::digits::{DigitModel, SpokenDigits};

/// An issued challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Challenge {
    /// Single-use nonce identifying the challenge (32 hex digits, 128 random bits).
    pub id: String,
    /// The subject it was issued for.
    pub subject: String,
    /// The digits to speak, e.g. `"491702"`.
    pub digits: String,
    /// When it stops being accepted.
    #[serde(with = "unix_seconds")]
    pub expires_at: SystemTime,
}

mod unix_seconds {
    pub fn serialize<S: serde::Serializer>(
        t: &std::time::SystemTime,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        s.serialize_u64(secs)
    }
}

impl Durable for Challenge {
    const KIND: &'static str = "passphrase";

    fn encode(&self) -> Vec<u8> {
        serde_json::json!({ "subject": self.subject, "digits": self.digits })
            .to_string()
            .into_bytes()
    }

    fn decode(id: &str, payload: &[u8], expires_at: SystemTime) -> Result<Challenge> {
        let broken = || {
            Error::new(
                ErrorKind::Store,
                "state database: a broken passphrase challenge",
            )
        };
        let value: serde_json::Value = serde_json::from_slice(payload).map_err(|_| broken())?;
        let field = |name: &str| value[name].as_str().map(str::to_string).ok_or_else(broken);
        Ok(Challenge {
            id: id.to_string(),
            subject: field("subject")?,
            digits: field("digits")?,
            expires_at,
        })
    }
}

/// Issues and redeems challenges ([`SingleUse`]: single-use, with an expiry; in memory, or
/// in the decision state with [`ChallengeIssuer::with_book`]).
#[derive(Debug)]
pub struct ChallengeIssuer {
    length: usize,
    outstanding: SingleUse<Challenge>,
}

impl ChallengeIssuer {
    /// `length` digits (4 to 16; by default 6), valid for `ttl` (by default 60 s).
    pub fn new(length: usize, ttl: Duration) -> Result<ChallengeIssuer> {
        if !(4..=16).contains(&length) || ttl.is_zero() {
            return Err(Error::new(
                ErrorKind::Config,
                "a passphrase has 4 to 16 digits and a positive lifetime",
            ));
        }
        Ok(ChallengeIssuer {
            length,
            outstanding: SingleUse::new(
                ttl,
                Wording {
                    what: "passphrase challenge",
                    other_binding: "the passphrase challenge was issued for another subject",
                },
            ),
        })
    }

    /// Keeps the challenges in `book` (they survive a restart, spent or not).
    pub fn with_book(mut self, book: std::sync::Arc<dyn ChallengeBook>) -> ChallengeIssuer {
        self.outstanding = self.outstanding.with_book(book);
        self
    }

    /// Replaces the clock (tests).
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
    ) -> ChallengeIssuer {
        self.outstanding = self.outstanding.with_clock(clock);
        self
    }

    /// Issues a challenge for `subject`: uniformly random digits from the system CSPRNG.
    pub fn issue(&self, subject: &str) -> Result<Challenge> {
        self.outstanding.issue(|id, expires_at| {
            Ok(Challenge {
                id,
                subject: subject.to_string(),
                digits: random_digits(self.length)?,
                expires_at,
            })
        })
    }

    /// Redeems a challenge for `subject`, once: a second redemption, another subject's
    /// challenge, an unknown id and an expired challenge are all refused (and an expired or
    /// misused one is discarded).
    pub fn redeem(&self, id: &str, subject: &str) -> Result<Challenge> {
        self.outstanding.redeem(id, |c| c.subject == subject)
    }
}

/// What a passphrase response was found to hold: evidence, not a verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PassphraseEvidence {
    /// The digits recognised, one per spoken word, in order.
    pub heard: String,
    /// Positions where the recognised digit is not the challenge's.
    pub digit_errors: usize,
    /// Whether the customer's own enrolled words took part in recognising them (false for a
    /// template enrolled the old way: the head alone).
    pub adapted: bool,
    /// Each speaker model's score of the whole response against the subject's voiceprints of
    /// that model (the best one), for the models the subject has voiceprints of, in the order
    /// of `voice.speaker_models`. One calibration turns them into the speaker score: the
    /// model's own, or the fusion of several.
    pub speaker_scores: Vec<SpeakerScore>,
}

impl PassphraseEvidence {
    /// The speaker scores as `(model, score)`, what a calibration combines.
    pub fn scores(&self) -> Vec<(&str, f64)> {
        self.speaker_scores
            .iter()
            .map(|s| (s.model.as_str(), s.score))
            .collect()
    }
}

/// One speaker model's score of a response.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpeakerScore {
    /// The model (`name@sha256-prefix`).
    pub model: String,
    /// Its score; higher is more alike, on the model's own scale.
    pub score: f64,
}

/// Recognises the words of `response` with the customer's digit `model` and counts where
/// they differ from `expected`.
pub fn check_digits(
    digits: &SpokenDigits<'_>,
    expected: &str,
    response: &Audio,
    model: &DigitModel<'_>,
) -> Result<DigitCheck> {
    if expected.is_empty() || !expected.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a passphrase is a non-empty string of digits",
        ));
    }
    let words = digits.words(response)?;
    if words.len() != expected.len() {
        return Err(Error::new(
            ErrorKind::PassphraseTokens,
            format!(
                "heard {} spoken word(s), the passphrase has {} digits; speak them again with a short pause between digits",
                words.len(),
                expected.len()
            ),
        ));
    }
    let heard: String = words
        .iter()
        .map(|w| Ok(char::from(b'0' + model.recognise(w)?)))
        .collect::<Result<_>>()?;
    let digit_errors = heard
        .bytes()
        .zip(expected.bytes())
        .filter(|(a, b)| a != b)
        .count();
    Ok(DigitCheck {
        heard,
        digit_errors,
        adapted: model.is_adapted(),
    })
}

/// What the digit check found.
#[derive(Clone, Debug, PartialEq)]
pub struct DigitCheck {
    /// The recognised digit of every word, in order.
    pub heard: String,
    /// Positions where it is not the challenge's.
    pub digit_errors: usize,
    /// Whether the customer's own words took part.
    pub adapted: bool,
}

impl DigitCheck {
    /// The evidence of the whole response, with the speaker scores computed by the caller
    /// (e.g. in a vault's protected space).
    pub fn with_speaker_scores(self, speaker_scores: Vec<SpeakerScore>) -> PassphraseEvidence {
        PassphraseEvidence {
            heard: self.heard,
            digit_errors: self.digit_errors,
            adapted: self.adapted,
            speaker_scores,
        }
    }
}

/// `n` uniformly random decimal digits (rejection sampling, so no digit is favoured).
fn random_digits(n: usize) -> Result<String> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 32];
    while out.len() < n {
        random(&mut buf)?;
        for &b in &buf {
            // 250 = 25 × 10: bytes 250..=255 would bias the digits 0–5.
            if b < 250 && out.len() < n {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn issuer_with_clock() -> (ChallengeIssuer, Arc<AtomicU64>) {
        let now = Arc::new(AtomicU64::new(1_800_000_000));
        let clock = now.clone();
        let issuer = ChallengeIssuer::new(6, Duration::from_secs(60))
            .unwrap()
            .with_clock(move || {
                SystemTime::UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::Relaxed))
            });
        (issuer, now)
    }

    #[test]
    fn a_challenge_is_redeemed_once() {
        let (issuer, _) = issuer_with_clock();
        let c = issuer.issue("alice").unwrap();
        assert_eq!(c.digits.len(), 6);
        assert!(c.digits.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(c.id.len(), 32);
        assert_eq!(issuer.redeem(&c.id, "alice").unwrap(), c);
        assert_eq!(
            issuer.redeem(&c.id, "alice").unwrap_err().kind(),
            ErrorKind::ChallengeInvalid
        );
    }

    #[test]
    fn expired_unknown_and_foreign_challenges_are_refused() {
        let (issuer, now) = issuer_with_clock();
        let c = issuer.issue("alice").unwrap();
        now.fetch_add(61, Ordering::Relaxed);
        let err = issuer.redeem(&c.id, "alice").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ChallengeInvalid);
        assert!(err.to_string().contains("expired"), "{err}");
        assert_eq!(
            issuer.redeem("00", "alice").unwrap_err().kind(),
            ErrorKind::ChallengeInvalid
        );
        let d = issuer.issue("alice").unwrap();
        assert_eq!(
            issuer.redeem(&d.id, "mallory").unwrap_err().kind(),
            ErrorKind::ChallengeInvalid
        );
        // misuse burns it
        assert_eq!(
            issuer.redeem(&d.id, "alice").unwrap_err().kind(),
            ErrorKind::ChallengeInvalid
        );
    }

    #[test]
    fn digits_are_uniform_and_challenges_distinct() {
        let digits = random_digits(100_000).unwrap();
        let mut counts = [0usize; 10];
        for b in digits.bytes() {
            counts[(b - b'0') as usize] += 1;
        }
        // each digit 10 000 ± 5 σ (σ ≈ 95)
        assert!(
            counts.iter().all(|&c| (9_525..=10_475).contains(&c)),
            "{counts:?}"
        );
        let (issuer, _) = issuer_with_clock();
        let ids: std::collections::HashSet<_> =
            (0..1000).map(|_| issuer.issue("a").unwrap().id).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(ChallengeIssuer::new(3, Duration::from_secs(60)).is_err());
        assert!(ChallengeIssuer::new(6, Duration::ZERO).is_err());
    }
}
