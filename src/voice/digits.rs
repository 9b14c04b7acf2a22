//! Spoken digits: a recording cut into words, each word's digit recognised by the
//! speaker-independent digit head ([`crate::voice::digit_head`]), adapted to the customer with
//! their own enrolled words.
//!
//! Words are the VAD's speech segments, each widened by up to [`CONTEXT_SECONDS`] of the
//! recording on both sides (never past half-way to the next word): the head was trained on
//! whole single-digit recordings, whose edges hold the soft onsets and endings a VAD trims.
//!
//! Enrollment hears the ten digits in order, "0 1 2 … 9", once or twice: the order names the
//! words, so nothing else is asked of the customer. A sequence that does not cut into ten
//! words, or whose words the head reads as mostly other digits, is refused with what was heard
//! ([`ErrorKind::PassphraseTokens`]), for the customer to say it again.
//!
//! The customer's template is their ten digit centroids in the head's standardised feature
//! space (bound to the head's sha256): biometric data, sealed like every template. Templates
//! made the old way (dynamic time warping of MFCC, `digits-dtw-mfcc13d@1`) hold no such
//! centroids: their subjects' digits are recognised by the head alone until they re-enroll.

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::voice::SAMPLE_RATE;
use crate::voice::audio::Audio;
use crate::voice::digit_head::{AdaptedDigitHead, DigitHead};
use crate::voice::speech_embedding::SpeechEmbedder;
use crate::voice::vad::{Segment, VadConfig, segments};

/// The model id of templates made the old way (per-digit MFCC sequences for DTW); still
/// recognised, verified with the head alone.
pub const LEGACY_DIGITS_MODEL_ID: &str = "digits-dtw-mfcc13d@1";

/// Audio kept on each side of a VAD segment, at most (half-way to a neighbour at most).
pub const CONTEXT_SECONDS: f32 = 0.1;

/// A spoken word lasts at most this long; longer segments are not a digit.
const MAX_WORD_SECONDS: f32 = 2.0;

/// An enrollment sequence is refused when the head reads more than this many of its ten
/// words as another digit than their place says (a sequence said out of order, or noise).
pub const MAX_ENROLLMENT_DISAGREEMENTS: usize = 3;

/// The digit front end and recogniser: the speech embedding and the head.
pub struct SpokenDigits<'a> {
    embedder: &'a SpeechEmbedder,
    head: &'a DigitHead,
    vad: VadConfig,
}

impl std::fmt::Debug for SpokenDigits<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpokenDigits").finish_non_exhaustive()
    }
}

/// One word of a recording: where it is and its features.
#[derive(Clone, Debug)]
pub struct Word {
    /// The VAD segment (before widening).
    pub segment: Segment,
    /// The head's features of the widened word.
    pub features: Zeroizing<Vec<f32>>,
}

/// How a customer's digits are recognised.
#[derive(Clone, Debug)]
pub enum DigitModel<'a> {
    /// The head adapted with their enrolled words.
    Adapted(AdaptedDigitHead),
    /// The head alone (a template enrolled the old way).
    HeadAlone(&'a DigitHead),
}

impl DigitModel<'_> {
    /// The likeliest digit of a word.
    pub fn recognise(&self, word: &Word) -> Result<u8> {
        Ok(match self {
            DigitModel::Adapted(adapted) => adapted.recognise(&word.features)?.0,
            DigitModel::HeadAlone(head) => head.recognise(&word.features)?.0,
        })
    }

    /// Whether the customer's own words take part.
    pub fn is_adapted(&self) -> bool {
        matches!(self, DigitModel::Adapted(_))
    }
}

impl<'a> SpokenDigits<'a> {
    /// Words with `embedder` and `head`, cut by the default VAD.
    pub fn new(embedder: &'a SpeechEmbedder, head: &'a DigitHead) -> SpokenDigits<'a> {
        SpokenDigits {
            embedder,
            head,
            vad: VadConfig::default(),
        }
    }

    /// The head.
    pub fn head(&self) -> &'a DigitHead {
        self.head
    }

    /// The words of a recording with their features. A word longer than 2 s is
    /// [`ErrorKind::PassphraseTokens`] (one long sound is no digit).
    pub fn words(&self, audio: &Audio) -> Result<Vec<Word>> {
        let found = segments(audio.samples(), &self.vad);
        for s in &found {
            if s.seconds() > MAX_WORD_SECONDS {
                return Err(Error::new(
                    ErrorKind::PassphraseTokens,
                    format!(
                        "heard one sound of {:.1} s where digits were expected; say the digits again with a short pause between them",
                        s.seconds()
                    ),
                ));
            }
        }
        let samples = audio.samples();
        let context = (CONTEXT_SECONDS * SAMPLE_RATE as f32) as usize;
        (0..found.len())
            .map(|i| {
                let s = found[i];
                let before = i
                    .checked_sub(1)
                    .map_or(s.start, |p| (s.start - found[p].end) / 2);
                let after = found
                    .get(i + 1)
                    .map_or(samples.len() - s.end, |n| (n.start - s.end) / 2);
                let start = s.start - before.min(context);
                let end = s.end + after.min(context);
                Ok(Word {
                    segment: s,
                    features: self.features(&samples[start..end])?,
                })
            })
            .collect()
    }

    /// The features of one word's samples (a single-digit recording whole, or a cut word).
    pub fn features(&self, word: &[f32]) -> Result<Zeroizing<Vec<f32>>> {
        Ok(Zeroizing::new(DigitHead::features(self.embedder, word)?))
    }

    /// The ten words of an enrollment sequence, "0 1 2 … 9" in order, as (digit, features).
    /// Another number of words, or a sequence the head reads as mostly other digits, is
    /// [`ErrorKind::PassphraseTokens`] saying what was heard.
    pub fn enrollment_words(&self, sequence: &Audio) -> Result<Vec<(u8, Zeroizing<Vec<f32>>)>> {
        let words = self.words(sequence)?;
        let heard = |words: &[Word]| -> Result<String> {
            words
                .iter()
                .map(|w| Ok(char::from(b'0' + self.head.recognise(&w.features)?.0)))
                .collect()
        };
        if words.len() != 10 {
            return Err(Error::new(
                ErrorKind::PassphraseTokens,
                format!(
                    "heard {} word(s) ({}), not the ten digits 0 to 9; say them again in order with a short pause after each",
                    words.len(),
                    spaced(&heard(&words)?)
                ),
            ));
        }
        let read = heard(&words)?;
        let disagreements = read
            .bytes()
            .zip(b'0'..=b'9')
            .filter(|(a, b)| a != b)
            .count();
        if disagreements > MAX_ENROLLMENT_DISAGREEMENTS {
            return Err(Error::new(
                ErrorKind::PassphraseTokens,
                format!(
                    "heard {}, not the digits 0 to 9 in order; say them again, one after the other",
                    spaced(&read)
                ),
            ));
        }
        Ok(words
            .into_iter()
            .enumerate()
            .map(|(d, w)| (d as u8, w.features))
            .collect())
    }
}

/// "4917" as "4 9 1 7" (what a customer hears read back).
fn spaced(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(c);
    }
    if out.is_empty() {
        out.push_str("nothing");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_heard_is_read_back_spaced() {
        assert_eq!(spaced("4917"), "4 9 1 7");
        assert_eq!(spaced(""), "nothing");
    }

    #[test]
    fn the_model_id_names_the_head() {
        let id = DigitHead::builtin().unwrap().centroids_model_id();
        assert!(
            id.starts_with("digit-centroids@") && id.len() == 16 + 12,
            "{id}"
        );
        assert_ne!(id, LEGACY_DIGITS_MODEL_ID);
    }
}
