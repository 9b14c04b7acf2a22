//! The spoken-digit head: a multinomial logistic regression on a word's pooled speech
//! embedding ([`crate::voice::speech_embedding`]), trained by `scripts/train_digit_head.py` and
//! built into the library (`models/digit_head.json`, with its recipe and the sha256 of its
//! inputs). Speaker-independent: measured only on speakers it never saw.
//!
//! A word is prepared as it was for training: 0.4 s of silence on each side (so that several
//! windows slide across it), padded to at least one window, embedded, pooled (mean then max).

use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::error::{Error, ErrorKind, Result};
use crate::voice::speech_embedding::{DIM, SpeechEmbedder, word_features};

/// The head built into the library.
pub const BUILTIN_HEAD: &str = include_str!("../../models/digit_head.json");

/// Silence added on each side of a word before it is embedded, in samples at 16 kHz.
const MARGIN: usize = 6_400;

/// Features per word: the pooled mean and maximum of its windows.
pub const FEATURES: usize = 2 * DIM;

/// Weight of the cosine to a customer's own digit centroid beside the head's log posterior
/// (`scripts/train_digit_head.py`'s ALPHA, measured there leave one speaker out).
pub const ADAPT_WEIGHT: f32 = 20.0;

#[derive(Deserialize)]
struct HeadFile {
    format: String,
    version: u32,
    mean: Vec<f32>,
    scale: Vec<f32>,
    weights: Vec<Vec<f32>>,
    bias: Vec<f32>,
}

/// A digit head: standardisation, then one linear score per digit.
#[derive(Clone, Debug)]
pub struct DigitHead {
    mean: Vec<f32>,
    scale: Vec<f32>,
    weights: Vec<Vec<f32>>,
    bias: Vec<f32>,
    /// The sha256 of the head file's text: what a customer's centroids are bound to.
    sha256: [u8; 32],
}

impl DigitHead {
    /// The head built into the library.
    pub fn builtin() -> Result<DigitHead> {
        DigitHead::from_json(BUILTIN_HEAD)
    }

    /// Parses a head file (`format = "vouch.digit-head"`, version 1); anything else, or
    /// dimensions that do not fit, is [`ErrorKind::Manifest`].
    pub fn from_json(text: &str) -> Result<DigitHead> {
        let bad = |m: String| Error::new(ErrorKind::Manifest, format!("digit head: {m}"));
        let file: HeadFile = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if file.format != "vouch.digit-head" || file.version != 1 {
            return Err(bad(format!(
                "format {:?} version {} is not vouch.digit-head version 1",
                file.format, file.version
            )));
        }
        let fits = file.mean.len() == FEATURES
            && file.scale.len() == FEATURES
            && file.weights.len() == 10
            && file.weights.iter().all(|w| w.len() == FEATURES)
            && file.bias.len() == 10;
        let finite = file
            .mean
            .iter()
            .chain(&file.scale)
            .chain(file.weights.iter().flatten())
            .chain(&file.bias)
            .all(|v| v.is_finite());
        if !fits || !finite || file.scale.iter().any(|&s| s <= 0.0) {
            return Err(bad(format!(
                "expected {FEATURES} means and scales, 10 x {FEATURES} weights and 10 biases, all finite"
            )));
        }
        Ok(DigitHead {
            mean: file.mean,
            scale: file.scale,
            weights: file.weights,
            bias: file.bias,
            sha256: Sha256::digest(text.as_bytes()).into(),
        })
    }

    /// The sha256 of the head file this head was parsed from.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// The model id of customer centroids made with this head (`digit-centroids@` and the
    /// first 12 hex digits of its sha256): centroids are only comparable with the head that
    /// standardised them.
    pub fn centroids_model_id(&self) -> String {
        format!("digit-centroids@{}", &hex::encode(self.sha256)[..12])
    }

    /// The pooled features of one spoken word (16 kHz samples in [−1, 1]), prepared as the
    /// head was trained ([`word_features`] with its silence margin).
    pub fn features(embedder: &SpeechEmbedder, word: &[f32]) -> Result<Vec<f32>> {
        word_features(embedder, word, MARGIN)
    }

    /// A word's features standardised as the head takes them.
    fn standardised(&self, features: &[f32]) -> Result<Vec<f32>> {
        if features.len() != FEATURES {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} features, the head takes {FEATURES}", features.len()),
            ));
        }
        Ok(features
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((x, m), s)| (x - m) / s)
            .collect())
    }

    /// The head adapted to one customer: their own enrolled words (digit, features), at
    /// least one of every digit, as centroids beside the head (see [`AdaptedDigitHead`]).
    /// A digit without a word is [`ErrorKind::InvalidInput`].
    pub fn adapt(&self, words: &[(u8, &[f32])]) -> Result<AdaptedDigitHead> {
        let mut sums = vec![vec![0f32; FEATURES]; 10];
        let mut counts = [0usize; 10];
        for (digit, features) in words {
            let d = usize::from(*digit);
            if d > 9 {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("digit {digit}"),
                ));
            }
            let z = unit(self.standardised(features)?);
            sums[d].iter_mut().zip(&z).for_each(|(s, v)| *s += v);
            counts[d] += 1;
        }
        if let Some(missing) = counts.iter().position(|&c| c == 0) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("no enrolled word for digit {missing}"),
            ));
        }
        Ok(AdaptedDigitHead {
            head: self.clone(),
            centroids: sums.into_iter().map(unit).collect(),
        })
    }

    /// Log posteriors of the ten digits for a word's features.
    pub fn log_posteriors(&self, features: &[f32]) -> Result<[f32; 10]> {
        let z = self.standardised(features)?;
        let mut logits = [0f32; 10];
        for (d, logit) in logits.iter_mut().enumerate() {
            *logit = self.bias[d]
                + self.weights[d]
                    .iter()
                    .zip(&z)
                    .map(|(w, v)| w * v)
                    .sum::<f32>();
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let norm = max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
        Ok(logits.map(|l| l - norm))
    }

    /// The most likely digit of a word's features and its log posterior.
    pub fn recognise(&self, features: &[f32]) -> Result<(u8, f32)> {
        Ok(best(&self.log_posteriors(features)?))
    }
}

/// A digit head adapted to one customer: each digit's score is the head's log posterior plus
/// [`ADAPT_WEIGHT`] × the cosine between the word and the customer's own centroid of that
/// digit (standardised features), so the customer's way of saying a digit counts beside what
/// the head learned from other speakers.
#[derive(Clone)]
pub struct AdaptedDigitHead {
    head: DigitHead,
    centroids: Vec<Vec<f32>>,
}

impl std::fmt::Debug for AdaptedDigitHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The centroids are biometric data.
        f.debug_struct("AdaptedDigitHead").finish_non_exhaustive()
    }
}

impl Drop for AdaptedDigitHead {
    fn drop(&mut self) {
        self.centroids.iter_mut().for_each(|c| c.zeroize());
    }
}

/// The layout of the centroids in a template: this marker, then 10 × [`FEATURES`] values.
const CENTROIDS_LAYOUT: f32 = 1.0;

impl AdaptedDigitHead {
    /// The customer's centroids as template values (layout marker, then digit by digit).
    pub fn to_values(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(1 + 10 * FEATURES);
        out.push(CENTROIDS_LAYOUT);
        self.centroids.iter().for_each(|c| out.extend_from_slice(c));
        out
    }

    /// `head` adapted with centroids read back from template values; another length or
    /// layout, or values that are not finite, is [`ErrorKind::TemplateFormat`].
    pub fn from_values(head: &DigitHead, values: &[f32]) -> Result<AdaptedDigitHead> {
        match values.split_first() {
            Some((&CENTROIDS_LAYOUT, rest))
                if rest.len() == 10 * FEATURES && rest.iter().all(|v| v.is_finite()) =>
            {
                Ok(AdaptedDigitHead {
                    head: head.clone(),
                    centroids: rest.chunks(FEATURES).map(<[f32]>::to_vec).collect(),
                })
            }
            _ => Err(Error::new(
                ErrorKind::TemplateFormat,
                format!(
                    "digit centroids: expected the layout marker and {} values",
                    10 * FEATURES
                ),
            )),
        }
    }

    /// The ten digits' scores for a word's features (higher is likelier).
    pub fn scores(&self, features: &[f32]) -> Result<[f32; 10]> {
        let post = self.head.log_posteriors(features)?;
        let z = unit(self.head.standardised(features)?);
        let mut out = post;
        for (d, score) in out.iter_mut().enumerate() {
            let cosine: f32 = self.centroids[d].iter().zip(&z).map(|(c, v)| c * v).sum();
            *score += ADAPT_WEIGHT * cosine;
        }
        Ok(out)
    }

    /// The likeliest digit of a word's features and its score.
    pub fn recognise(&self, features: &[f32]) -> Result<(u8, f32)> {
        Ok(best(&self.scores(features)?))
    }
}

fn best(scores: &[f32; 10]) -> (u8, f32) {
    scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(d, p)| (d as u8, *p))
        .unwrap_or((0, f32::NEG_INFINITY))
}

/// `v` scaled to unit length (unchanged when it is zero).
fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_head_loads_and_gives_posteriors() {
        let head = DigitHead::builtin().unwrap();
        let post = head.log_posteriors(&vec![0.1; FEATURES]).unwrap();
        let total: f32 = post.iter().map(|p| p.exp()).sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        assert!(head.log_posteriors(&[0.0; 3]).is_err());
    }

    #[test]
    fn adaptation_needs_every_digit_and_pulls_towards_the_customer_s_own_words() {
        let head = DigitHead::builtin().unwrap();
        // Ten made-up "words", one per digit, far apart in feature space.
        let word = |d: usize| -> Vec<f32> {
            (0..FEATURES)
                .map(|i| head.mean[i] + head.scale[i] * if i % 10 == d { 3.0 } else { -0.3 })
                .collect()
        };
        let owned: Vec<(u8, Vec<f32>)> = (0..10).map(|d| (d as u8, word(d))).collect();
        let words: Vec<(u8, &[f32])> = owned.iter().map(|(d, w)| (*d, w.as_slice())).collect();
        let adapted = head.adapt(&words).unwrap();
        for d in 0..10 {
            assert_eq!(adapted.recognise(&word(d)).unwrap().0, d as u8);
        }
        let stored = AdaptedDigitHead::from_values(&head, &adapted.to_values()).unwrap();
        assert_eq!(
            stored.scores(&word(3)).unwrap(),
            adapted.scores(&word(3)).unwrap()
        );
        let mut cut = adapted.to_values();
        cut.pop();
        for bad in [
            cut,
            vec![2.0; 1 + 10 * FEATURES],
            vec![f32::NAN; 1 + 10 * FEATURES],
        ] {
            assert_eq!(
                AdaptedDigitHead::from_values(&head, &bad)
                    .unwrap_err()
                    .kind(),
                ErrorKind::TemplateFormat
            );
        }
        let err = head.adapt(&words[..9]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn bad_head_files_are_refused() {
        for text in [
            "{}",
            r#"{"format":"other","version":1,"mean":[],"scale":[],"weights":[],"bias":[]}"#,
            r#"{"format":"vouch.digit-head","version":1,"mean":[0],"scale":[1],"weights":[],"bias":[]}"#,
        ] {
            assert_eq!(
                DigitHead::from_json(text).unwrap_err().kind(),
                ErrorKind::Manifest
            );
        }
    }
}
