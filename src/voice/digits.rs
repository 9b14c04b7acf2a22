//! Spoken-digit recognition against the subject's own enrolled digits: dynamic time warping
//! (DTW) of MFCC sequences, nearest template wins.
//!
//! Why this and not a speaker-independent recogniser: enrollment already records every digit
//! several times in the subject's own voice, so a template matcher needs no language model or
//! training data, works for any language the subject counts in, and is strongest exactly where
//! it is used (the enrolled speaker). An impostor's digits may still be recognised; rejecting
//! them is the speaker model's job.
//!
//! Front end: 13 MFCC over the telephone band (0–4 kHz, so 8 kHz and 16 kHz microphones give
//! comparable features), Hamming window, plus deltas (26 values per 10 ms), normalised per
//! token (CMVN). DTW uses Euclidean frame distances, steps (1,0), (0,1), (1,1), and divides
//! the path cost by the two lengths' sum, so long and short digits compare fairly.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, ErrorKind, Result};
use crate::voice::audio::Audio;
use crate::voice::mfcc::{Features, Mfcc, MfccConfig, cmvn, deltas, stack};
use crate::voice::vad::{Segment, VadConfig, segments};

/// Version of the template layout and front end; templates of another version are refused.
const TEMPLATE_VERSION: f32 = 1.0;
/// Frames a digit token may have (10 ms each): 0.1 s to 3 s.
const TOKEN_FRAMES: std::ops::RangeInclusive<usize> = 10..=300;

/// How token features are normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenNorm {
    /// As computed.
    None,
    /// Mean removed per token (CMN).
    Mean,
    /// Mean and variance per token (CMVN).
    MeanVariance,
}

/// Settings of the digit front end.
#[derive(Clone, Debug, PartialEq)]
pub struct DigitFeatures {
    /// The MFCC.
    pub mfcc: MfccConfig,
    /// Append deltas.
    pub deltas: bool,
    /// Append delta-deltas too.
    pub delta_deltas: bool,
    /// Per-token normalisation.
    pub norm: TokenNorm,
}

impl Default for DigitFeatures {
    fn default() -> DigitFeatures {
        DigitFeatures {
            mfcc: MfccConfig {
                high_hz: 4000.0,
                hamming: true,
                ..MfccConfig::default()
            },
            deltas: true,
            delta_deltas: false,
            norm: TokenNorm::None,
        }
    }
}

/// The digit front end (see the module docs).
#[derive(Debug)]
pub struct DigitFrontEnd {
    mfcc: Mfcc,
    settings: DigitFeatures,
    vad: VadConfig,
}

impl DigitFrontEnd {
    /// The default front end.
    pub fn new() -> Result<DigitFrontEnd> {
        DigitFrontEnd::with(DigitFeatures::default())
    }

    /// A front end with other settings.
    pub fn with(settings: DigitFeatures) -> Result<DigitFrontEnd> {
        Ok(DigitFrontEnd {
            mfcc: Mfcc::new(&settings.mfcc, crate::voice::SAMPLE_RATE)?,
            settings,
            vad: VadConfig::default(),
        })
    }

    /// The spoken tokens of a recording (VAD segments), in order.
    pub fn tokens(&self, audio: &Audio) -> Vec<Segment> {
        segments(audio.samples(), &self.vad)
    }

    /// The features of one token of `audio`.
    pub fn features(&self, audio: &Audio, token: Segment) -> Result<Features> {
        let samples = &audio.samples()[token.start..token.end];
        let base = self.mfcc.compute(samples);
        let mut f = match (self.settings.deltas, self.settings.delta_deltas) {
            (false, _) => base,
            (true, false) => stack(&[&base, &deltas(&base, 2)]),
            (true, true) => {
                let d = deltas(&base, 2);
                stack(&[&base, &d, &deltas(&d, 2)])
            }
        };
        if !TOKEN_FRAMES.contains(&f.frames()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a spoken digit lasts 0.1 to 3 s; this one lasts {:.2} s",
                    token.seconds()
                ),
            ));
        }
        match self.settings.norm {
            TokenNorm::None => {}
            TokenNorm::Mean => subtract_mean(&mut f),
            TokenNorm::MeanVariance => cmvn(&mut f),
        }
        Ok(f)
    }

    /// The features of a recording of one digit: its single spoken token (the longest when
    /// the VAD splits it, e.g. at a click).
    ///
    /// A take trimmed tight around the digit leaves the VAD no pause to learn the noise floor
    /// from; it is then judged again between 0.3 s of digital silence, where only the absolute
    /// floor and the dynamic range decide.
    pub fn single(&self, audio: &Audio) -> Result<Features> {
        let mut tokens = self.tokens(audio);
        let mut audio = std::borrow::Cow::Borrowed(audio);
        if tokens.is_empty() {
            let padded = crate::voice::audio::join_recordings(&[audio.as_ref()], 0.3)?;
            tokens = self.tokens(&padded);
            audio = std::borrow::Cow::Owned(padded);
        }
        let token = tokens
            .into_iter()
            .max_by_key(|s| s.end - s.start)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::AudioSilent,
                    "no speech found in the digit recording",
                )
            })?;
        self.features(&audio, token)
    }
}

/// A subject's enrolled digits: several takes of each of 0–9. Biometric data: wiped on drop,
/// redacted in `Debug`.
#[derive(Clone, Default, PartialEq, Zeroize, ZeroizeOnDrop)]
pub struct DigitTemplates {
    /// `(digit, frames, values)` per take.
    takes: Vec<(u8, usize, Vec<f64>)>,
    dims: usize,
}

impl std::fmt::Debug for DigitTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DigitTemplates({} takes, redacted)", self.takes.len())
    }
}

/// One recognised token.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Recognised {
    /// The nearest digit.
    pub digit: u8,
    /// Its DTW distance.
    pub distance: f64,
    /// The next-nearest other digit's distance minus this one's (confidence).
    pub margin: f64,
    /// All ten digits, nearest first.
    pub ranking: [u8; 10],
}

impl Recognised {
    /// Where `digit` ranks, 1 for the nearest.
    pub fn rank_of(&self, digit: u8) -> usize {
        self.ranking
            .iter()
            .position(|d| *d == digit)
            .map_or(11, |p| p + 1)
    }
}

impl DigitTemplates {
    /// No takes yet.
    pub fn new() -> DigitTemplates {
        DigitTemplates::default()
    }

    /// Adds a take of `digit`.
    pub fn add(&mut self, digit: u8, features: &Features) -> Result<()> {
        if digit > 9 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{digit} is not a digit"),
            ));
        }
        if self.dims != 0 && features.dims != self.dims {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "all takes need the same feature size",
            ));
        }
        self.dims = features.dims;
        self.takes
            .push((digit, features.frames(), features.values.clone()));
        Ok(())
    }

    /// Takes enrolled per digit, 0–9.
    pub fn counts(&self) -> [usize; 10] {
        let mut counts = [0; 10];
        for (d, _, _) in &self.takes {
            counts[usize::from(*d)] += 1;
        }
        counts
    }

    /// Refuses templates that lack a digit.
    pub fn check_complete(&self) -> Result<()> {
        let missing: Vec<String> = self
            .counts()
            .iter()
            .enumerate()
            .filter(|(_, n)| **n == 0)
            .map(|(d, _)| d.to_string())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the passphrase enrollment lacks digit(s) {}; every digit 0–9 needs at least one take",
                    missing.join(", ")
                ),
            ))
        }
    }

    /// The nearest enrolled digit to a token.
    pub fn recognise(&self, token: &Features) -> Result<Recognised> {
        self.check_complete()?;
        if token.dims != self.dims {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the token's features do not match the enrolled digits'",
            ));
        }
        let mut best = [f64::INFINITY; 10];
        for (digit, frames, values) in &self.takes {
            let d = dtw(&token.values, &values[..*frames * self.dims], self.dims);
            let slot = &mut best[usize::from(*digit)];
            *slot = slot.min(d);
        }
        let mut ranking: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        ranking.sort_by(|a, b| best[usize::from(*a)].total_cmp(&best[usize::from(*b)]));
        let (first, second) = (usize::from(ranking[0]), usize::from(ranking[1]));
        Ok(Recognised {
            digit: ranking[0],
            distance: best[first],
            margin: best[second] - best[first],
            ranking,
        })
    }

    /// The templates as one vector (what a template stores): a version, the take count and
    /// the frame size, then per take its digit, its frame count and its values.
    pub fn to_values(&self) -> Vec<f32> {
        let mut out = vec![TEMPLATE_VERSION, self.takes.len() as f32, self.dims as f32];
        for (digit, frames, values) in &self.takes {
            out.push(f32::from(*digit));
            out.push(*frames as f32);
            out.extend(values.iter().map(|v| *v as f32));
        }
        out
    }

    /// Parses [`DigitTemplates::to_values`], checking every count against the length.
    pub fn from_values(values: &[f32]) -> Result<DigitTemplates> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::TemplateFormat,
                format!("passphrase template: {why}"),
            )
        };
        let as_count = |v: f32| -> Option<usize> {
            (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1e7).then_some(v as usize)
        };
        let [version, count, dims, rest @ ..] = values else {
            return Err(bad("too short"));
        };
        if *version != TEMPLATE_VERSION {
            return Err(bad(&format!(
                "version {version}, expected {TEMPLATE_VERSION}"
            )));
        }
        let count = as_count(*count).ok_or_else(|| bad("bad take count"))?;
        let dims = as_count(*dims)
            .filter(|d| (1..=256).contains(d))
            .ok_or_else(|| bad("bad frame size"))?;
        let mut templates = DigitTemplates {
            takes: Vec::with_capacity(count.min(1000)),
            dims,
        };
        let mut at = 0;
        for _ in 0..count {
            let (Some(digit), Some(frames)) = (
                rest.get(at).copied().and_then(as_count),
                rest.get(at + 1).copied().and_then(as_count),
            ) else {
                return Err(bad("truncated"));
            };
            if digit > 9 || !TOKEN_FRAMES.contains(&frames) {
                return Err(bad("a take with a bad digit or length"));
            }
            let body = rest
                .get(at + 2..at + 2 + frames * dims)
                .ok_or_else(|| bad("truncated"))?;
            templates.takes.push((
                digit as u8,
                frames,
                body.iter().map(|v| f64::from(*v)).collect(),
            ));
            at += 2 + frames * dims;
        }
        if at != rest.len() {
            return Err(bad("trailing values"));
        }
        Ok(templates)
    }
}

fn subtract_mean(f: &mut Features) {
    let (n, d) = (f.frames(), f.dims);
    for i in 0..d {
        let mean = (0..n).map(|t| f.values[t * d + i]).sum::<f64>() / n.max(1) as f64;
        for t in 0..n {
            f.values[t * d + i] -= mean;
        }
    }
}

/// Length-normalised DTW distance between two sequences of `dims`-wide frames.
pub fn dtw(a: &[f64], b: &[f64], dims: usize) -> f64 {
    let (n, m) = (a.len() / dims, b.len() / dims);
    if n == 0 || m == 0 {
        return f64::INFINITY;
    }
    let mut previous = vec![f64::INFINITY; m + 1];
    let mut current = vec![f64::INFINITY; m + 1];
    previous[0] = 0.0;
    for i in 1..=n {
        current[0] = f64::INFINITY;
        let x = &a[(i - 1) * dims..i * dims];
        for j in 1..=m {
            let y = &b[(j - 1) * dims..j * dims];
            let cost = x
                .iter()
                .zip(y)
                .map(|(p, q)| (p - q) * (p - q))
                .sum::<f64>()
                .sqrt();
            let step = previous[j - 1].min(previous[j]).min(current[j - 1]);
            current[j] = cost + step;
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[m] / (n + m) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(values: &[f64]) -> Vec<f64> {
        values.to_vec()
    }

    #[test]
    fn dtw_absorbs_time_stretching() {
        let a = seq(&[0.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
        let stretched = seq(&[0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 2.0, 1.0]);
        let other = seq(&[3.0, 3.0, 0.0, 0.0, 3.0, 0.0]);
        assert_eq!(dtw(&a, &a, 1), 0.0);
        assert_eq!(dtw(&a, &stretched, 1), 0.0);
        assert!(dtw(&a, &other, 1) > 0.5);
        assert_eq!(dtw(&a, &[], 1), f64::INFINITY);
    }

    fn features(values: &[f64]) -> Features {
        let mut v = Vec::new();
        for x in values {
            for _ in 0..12 {
                v.extend([*x, -*x]);
            }
        }
        Features { values: v, dims: 2 }
    }

    fn templates() -> DigitTemplates {
        let mut t = DigitTemplates::new();
        for d in 0..10u8 {
            let f = f64::from(d);
            t.add(d, &features(&[f, f + 1.0, f])).unwrap();
        }
        t
    }

    #[test]
    fn the_nearest_digit_is_recognised() {
        let t = templates();
        let r = t.recognise(&features(&[7.1, 8.0, 7.0, 6.9])).unwrap();
        assert_eq!(r.digit, 7);
        assert!(r.margin > 0.0);
        let mut partial = DigitTemplates::new();
        partial.add(1, &features(&[1.0])).unwrap();
        let e = partial.recognise(&features(&[1.0])).unwrap_err();
        assert!(e.message().contains("0, 2, 3"), "{e}");
        assert!(t.clone().add(10, &features(&[1.0])).is_err());
    }

    #[test]
    fn templates_round_trip_and_refuse_damage() {
        let t = templates();
        let values = t.to_values();
        let back = DigitTemplates::from_values(&values).unwrap();
        assert_eq!(back.counts(), [1; 10]);
        assert_eq!(back.to_values(), values);
        for cut in [0, 2, 3, 10, values.len() - 1] {
            assert_eq!(
                DigitTemplates::from_values(&values[..cut])
                    .unwrap_err()
                    .kind(),
                ErrorKind::TemplateFormat,
                "cut at {cut}"
            );
        }
        let mut longer = values.clone();
        longer.push(0.0);
        assert!(DigitTemplates::from_values(&longer).is_err());
        let mut wrong_version = values.clone();
        wrong_version[0] = 2.0;
        assert!(DigitTemplates::from_values(&wrong_version).is_err());
        let mut bad_digit = values;
        bad_digit[3] = 11.0;
        assert!(DigitTemplates::from_values(&bad_digit).is_err());
    }
}
