//! Liveness calibration files (`vouch calibrate liveness`): the logistic fusion of the
//! liveness models' scores learned on labelled development data, the threshold chosen on the
//! fused scores for a target APCER (the worst attack species), and what that threshold gives
//! on the data (BPCER with its Wilson interval, APCER per species), in sample and, when the
//! data names its subjects, held out subject by subject.
//!
//! The file is TOML with `format = "vouch.liveness-calibration"` and `version = 1`; it names
//! each model by id (`name@sha256-prefix`), so a fusion is never applied to scores of other
//! model files. `liveness.fusion` names it in the configuration: [`crate::Config::validate`]
//! reads it and applies its threshold as `decisions.liveness_threshold` (unless that is set
//! explicitly), and the engine fuses each frame with its weights. This module only
//! calibrates: the comparison with the threshold is [`crate::decision`]'s.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::face::liveness_fusion::LivenessFusion;
use crate::stats::interval::wilson;
use crate::stats::logistic;

/// The `format` key of a liveness calibration file.
pub const LIVENESS_CALIBRATION_FORMAT: &str = "vouch.liveness-calibration";

/// Version of the liveness calibration file format.
pub const LIVENESS_CALIBRATION_VERSION: u32 = 1;

/// The APCER `vouch calibrate liveness` targets by default: 1 % of the worst species' attacks.
pub const DEFAULT_TARGET_APCER: f64 = 0.01;

/// The L2 penalty of the fusion's weights by default. Small beside the data's log-likelihood
/// (hundreds of samples), it matters only when the classes are separable, where it keeps the
/// weights finite instead of growing without bound.
pub const DEFAULT_L2: f64 = 1.0;

/// One labelled presentation's scores: each model's live probability (in the order of the
/// models being calibrated) and its attack species (`None` for bona fide).
#[derive(Clone, Debug, PartialEq)]
pub struct PadScores {
    /// Each model's live probability.
    pub live: Vec<f32>,
    /// `None` for a bona fide presentation, else the attack species (`print`, `replay`, …).
    pub attack: Option<String>,
}

/// The figures of one attack species at a threshold.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpeciesPoint {
    /// The attack species.
    pub species: String,
    /// Attack presentations of this species.
    pub count: usize,
    /// Of those, judged live (score at or above the threshold).
    pub accepted: usize,
    /// `accepted / count`.
    pub apcer: f64,
    /// 95 % Wilson interval of the APCER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apcer_interval: Option<[f64; 2]>,
}

/// What a threshold gives on labelled presentations.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PadPoint {
    /// Bona fide presentations.
    pub bona_fide: usize,
    /// Of those, judged attacks (score below the threshold).
    pub rejected: usize,
    /// `rejected / bona_fide`.
    pub bpcer: f64,
    /// 95 % Wilson interval of the BPCER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpcer_interval: Option<[f64; 2]>,
    /// The highest APCER over species.
    pub max_apcer: f64,
    /// Per attack species, by name.
    pub attacks: Vec<SpeciesPoint>,
}

impl PadPoint {
    /// The figures of `scores` (fused score, attack species) at `threshold` (live when
    /// `score >= threshold`, as the decision module judges). Errors
    /// ([`ErrorKind::Dataset`]) without both bona fide and attack presentations.
    pub fn at(scores: &[(f32, Option<&str>)], threshold: f32) -> Result<PadPoint> {
        Self::tally(scores.iter().map(|&(s, a)| (s >= threshold, a)))
    }

    /// The figures of decisions made elsewhere (`live`, attack species), e.g. each held-out
    /// presentation judged at its own fold's threshold.
    pub fn tally<'a>(
        judged: impl IntoIterator<Item = (bool, Option<&'a str>)>,
    ) -> Result<PadPoint> {
        let (mut bona_fide, mut rejected) = (0, 0);
        let mut species: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (live, attack) in judged {
            match attack {
                None => {
                    bona_fide += 1;
                    rejected += usize::from(!live);
                }
                Some(a) => {
                    let e = species.entry(a).or_default();
                    e.0 += 1;
                    e.1 += usize::from(live);
                }
            }
        }
        if bona_fide == 0 || species.is_empty() {
            return Err(Error::new(
                ErrorKind::Dataset,
                "liveness calibration needs bona fide and attack presentations",
            ));
        }
        let interval = |k, n| wilson(k, n).map(|i| [i.low, i.high]);
        let attacks: Vec<SpeciesPoint> = species
            .into_iter()
            .map(|(name, (count, accepted))| SpeciesPoint {
                species: name.to_string(),
                count,
                accepted,
                apcer: accepted as f64 / count as f64,
                apcer_interval: interval(accepted, count),
            })
            .collect();
        Ok(PadPoint {
            bona_fide,
            rejected,
            bpcer: rejected as f64 / bona_fide as f64,
            bpcer_interval: interval(rejected, bona_fide),
            max_apcer: attacks.iter().map(|a| a.apcer).fold(0.0, f64::max),
            attacks,
        })
    }
}

/// The lowest threshold at which every attack species' APCER is at most `target_apcer`: for a
/// species of `n` attacks, at most `floor(target × n)` may reach it, so it sits just above
/// (the smallest `f32` greater than) the species' `floor(target × n) + 1`-th highest score.
/// Scores and threshold are `f32`, as the engine's evidence and the decision compare them.
///
/// With fewer than `1 / target` attacks of a species the target cannot be measured: the
/// threshold then lies above all of that species' attacks.
///
/// Errors: no attack presentation ([`ErrorKind::Dataset`]), a target outside (0, 1) or a
/// non-finite score ([`ErrorKind::InvalidInput`]), or an attack scored so high that no
/// threshold in [0, 1] reaches the target ([`ErrorKind::Dataset`]).
pub fn threshold_at_apcer(scores: &[(f32, Option<&str>)], target_apcer: f64) -> Result<f32> {
    if !(target_apcer > 0.0 && target_apcer < 1.0) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the target APCER must be strictly between 0 and 1, got {target_apcer}"),
        ));
    }
    if scores.iter().any(|(s, _)| !s.is_finite()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "liveness scores must be finite numbers",
        ));
    }
    let mut species: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
    for &(s, a) in scores {
        if let Some(a) = a {
            species.entry(a).or_default().push(s);
        }
    }
    if species.is_empty() {
        return Err(Error::new(
            ErrorKind::Dataset,
            "choosing a liveness threshold needs attack presentations",
        ));
    }
    let mut threshold = 0.0f32;
    for attacks in species.values_mut() {
        attacks.sort_by(|a, b| b.total_cmp(a));
        let allowed = (target_apcer * attacks.len() as f64).floor() as usize;
        if let Some(&s) = attacks.get(allowed) {
            threshold = threshold.max(next_up(s));
        }
    }
    if threshold > 1.0 {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "attacks score 1.0: no liveness threshold in [0, 1] keeps the APCER at or below {target_apcer}"
            ),
        ));
    }
    Ok(threshold)
}

/// The smallest `f32` greater than `x` (finite `x`).
fn next_up(x: f32) -> f32 {
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    f32::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

/// Fits the logistic fusion of `models` (ids, in the order of [`PadScores::live`]) on
/// labelled scores: bona fide is the positive class, every attack species the negative one.
pub fn fit_fusion(models: &[String], samples: &[PadScores], l2: f64) -> Result<LivenessFusion> {
    if let Some(s) = samples.iter().find(|s| s.live.len() != models.len()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a sample has {} model scores for {} models",
                s.live.len(),
                models.len()
            ),
        ));
    }
    if samples.iter().flat_map(|s| &s.live).any(|p| !p.is_finite()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "model scores must be finite numbers",
        ));
    }
    let x: Vec<Vec<f64>> = samples
        .iter()
        .map(|s| LivenessFusion::features(&s.live))
        .collect();
    let positive: Vec<bool> = samples.iter().map(|s| s.attack.is_none()).collect();
    let fit = logistic::fit(&x, &positive, l2)?;
    LivenessFusion::new(models.to_vec(), fit.weights, fit.bias)
}

/// How held-out figures were made, and what they were.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeldOut {
    /// The protocol, in words (e.g. leave one subject out, subjects read from file names).
    pub protocol: String,
    /// Folds (subjects held out in turn).
    pub groups: usize,
    /// Every presentation judged by the fusion and threshold learned without its group.
    pub point: PadPoint,
}

/// A liveness calibration file: the fusion, the threshold, and what it was learned on.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LivenessCalibration {
    /// [`LIVENESS_CALIBRATION_FORMAT`].
    pub format: String,
    /// [`LIVENESS_CALIBRATION_VERSION`].
    pub version: u32,
    /// The models fused, by id (`name@sha256-prefix`), in the order `liveness.models` must
    /// name them.
    pub models: Vec<String>,
    /// One weight per model, on the clamped logit of its live probability
    /// ([`crate::face::liveness_fusion::live_logit`]).
    pub weights: Vec<f64>,
    /// The fusion's intercept.
    pub bias: f64,
    /// The L2 penalty the weights were fitted with.
    pub l2: f64,
    /// The threshold on the fused score (frames' mean) chosen for `target_apcer`.
    pub threshold: f32,
    /// The highest APCER over species the threshold was chosen for.
    pub target_apcer: f64,
    /// Where the scores came from (data set, list, counts, command).
    pub source: String,
    /// The threshold's figures on the data the fusion and threshold were learned on
    /// (optimistic: in sample).
    pub in_sample: PadPoint,
    /// Figures on data held out of each fit, when the data named its subjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<HeldOut>,
}

impl LivenessCalibration {
    /// Learns the fusion of `models` on `samples`, and the threshold on its fused scores for
    /// `target_apcer`, with the in-sample figures (no held-out figures: see
    /// [`LivenessCalibration::held_out`]).
    pub fn fit(
        models: &[String],
        samples: &[PadScores],
        target_apcer: f64,
        l2: f64,
        source: &str,
    ) -> Result<LivenessCalibration> {
        let fusion = fit_fusion(models, samples, l2)?;
        let fused = fused_scores(&fusion, samples)?;
        let threshold = threshold_at_apcer(&fused, target_apcer)?;
        Ok(LivenessCalibration {
            format: LIVENESS_CALIBRATION_FORMAT.to_string(),
            version: LIVENESS_CALIBRATION_VERSION,
            models: models.to_vec(),
            weights: fusion.weights().to_vec(),
            bias: fusion.bias(),
            l2,
            threshold,
            target_apcer,
            source: source.to_string(),
            in_sample: PadPoint::at(&fused, threshold)?,
            held_out: None,
        })
    }

    /// The fusion this file holds.
    pub fn fusion(&self) -> Result<LivenessFusion> {
        LivenessFusion::new(self.models.clone(), self.weights.clone(), self.bias)
    }

    /// The models' manifest names (the ids without their hash), as `liveness.models` names
    /// them.
    pub fn model_names(&self) -> Vec<&str> {
        self.models
            .iter()
            .map(|id| id.rsplit_once('@').map_or(id.as_str(), |(name, _)| name))
            .collect()
    }

    /// Parses and checks a liveness calibration file ([`ErrorKind::Config`]).
    pub fn parse(text: &str) -> Result<LivenessCalibration> {
        let c: LivenessCalibration = toml::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("liveness calibration file: {}", e.message()),
            )
        })?;
        c.check()?;
        Ok(c)
    }

    /// Reads a liveness calibration file.
    pub fn load(path: &Path) -> Result<LivenessCalibration> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("reading the liveness calibration", path, e))?;
        LivenessCalibration::parse(&text)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// The file as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::new(ErrorKind::Config, e.to_string()))
    }

    fn check(&self) -> Result<()> {
        let bad = |m: String| {
            Err(Error::new(
                ErrorKind::Config,
                format!("liveness calibration: {m}"),
            ))
        };
        if self.format != LIVENESS_CALIBRATION_FORMAT {
            return bad(format!(
                "format {:?} is not {LIVENESS_CALIBRATION_FORMAT:?}",
                self.format
            ));
        }
        if self.version != LIVENESS_CALIBRATION_VERSION {
            return bad(format!(
                "format version {} (this build reads {LIVENESS_CALIBRATION_VERSION})",
                self.version
            ));
        }
        if self.models.iter().any(|m| !m.contains('@')) {
            return bad("models are named by id, name@sha256-prefix".into());
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return bad(format!("threshold {} is outside [0, 1]", self.threshold));
        }
        if !(self.target_apcer > 0.0 && self.target_apcer < 1.0) {
            return bad("target_apcer must be strictly between 0 and 1".into());
        }
        self.fusion().map(|_| ())
    }
}

/// Each sample's fused score with its attack species.
pub fn fused_scores<'a>(
    fusion: &LivenessFusion,
    samples: &'a [PadScores],
) -> Result<Vec<(f32, Option<&'a str>)>> {
    samples
        .iter()
        .map(|s| Ok((fusion.fuse(&s.live)?, s.attack.as_deref())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(live: &[f32], attack: Option<&str>) -> PadScores {
        PadScores {
            live: live.to_vec(),
            attack: attack.map(str::to_string),
        }
    }

    /// Model a separates well, model b is noise: bona fide high on a, prints low.
    fn data() -> Vec<PadScores> {
        let mut v = Vec::new();
        for i in 0..200 {
            let t = i as f32 / 200.0;
            v.push(sample(
                &[0.6 + 0.39 * t, (i * 37 % 100) as f32 / 100.0],
                None,
            ));
            v.push(sample(
                &[0.01 + 0.6 * t, (i * 53 % 100) as f32 / 100.0],
                Some("print"),
            ));
        }
        v
    }

    fn ids() -> Vec<String> {
        vec!["a@000000000001".into(), "b@000000000002".into()]
    }

    #[test]
    fn threshold_keeps_every_species_within_the_target() {
        // 100 prints, 10 replays: at 1 %, one print may pass and no replay
        let mut scores: Vec<(f32, Option<&str>)> = (0..100)
            .map(|i| (i as f32 / 100.0, Some("print")))
            .collect();
        scores.extend((0..10).map(|i| (0.5 + i as f32 / 100.0, Some("replay"))));
        scores.extend((0..50).map(|i| (0.5 + i as f32 / 100.0, None)));
        let t = threshold_at_apcer(&scores, 0.01).unwrap();
        // prints: just above the 2nd highest (0.98); replays: just above the highest (0.59);
        // the threshold is the stricter of the two
        assert_eq!(t, next_up(0.98));
        let p = PadPoint::at(&scores, t).unwrap();
        assert!(p.max_apcer <= 0.01);
        assert_eq!(p.attacks[0].accepted, 1);
        assert_eq!(p.attacks[1].accepted, 0);
        assert_eq!(p.rejected, 49);
        // a threshold one step lower would let a second print through
        let lower = PadPoint::at(&scores, 0.98).unwrap();
        assert!(lower.max_apcer > 0.01);
    }

    #[test]
    fn fit_learns_to_trust_the_separating_model() {
        let c = LivenessCalibration::fit(&ids(), &data(), 0.01, DEFAULT_L2, "synthetic").unwrap();
        assert!(c.weights[0] > 5.0 * c.weights[1].abs(), "{c:?}");
        assert!(c.in_sample.max_apcer <= 0.01);
        assert!(c.in_sample.bpcer < 0.2, "{:?}", c.in_sample);
        assert_eq!(c.in_sample.bona_fide, 200);
        assert_eq!(c.in_sample.attacks[0].count, 200);
        // deterministic
        let again = LivenessCalibration::fit(&ids(), &data(), 0.01, DEFAULT_L2, "synthetic");
        assert_eq!(again.unwrap(), c);
    }

    #[test]
    fn files_round_trip_and_bad_files_are_refused() {
        let mut c =
            LivenessCalibration::fit(&ids(), &data(), 0.01, DEFAULT_L2, "synthetic").unwrap();
        let text = c.to_toml().unwrap();
        assert_eq!(LivenessCalibration::parse(&text).unwrap(), c);
        c.held_out = Some(HeldOut {
            protocol: "leave one subject out".into(),
            groups: 3,
            point: c.in_sample.clone(),
        });
        let text = c.to_toml().unwrap();
        let back = LivenessCalibration::parse(&text).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.model_names(), ["a", "b"]);
        assert_eq!(back.fusion().unwrap().models(), ids().as_slice());
        for broken in [
            text.replace("version = 1", "version = 2"),
            text.replace("vouch.liveness-calibration", "vouch.calibration"),
            text.replace("threshold = ", "threshold = 1.5 #"),
            text.replace("a@000000000001", "a"),
            text.replace("target_apcer = 0.01", "target_apcer = 0.0"),
            text.replace("bias = ", "bias = nan #"),
            text.replace("weights = [", "weights = [1.0, "),
            "format = 3".to_string(),
        ] {
            let err = LivenessCalibration::parse(&broken).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{broken}");
        }
    }

    #[test]
    fn degenerate_data_is_a_typed_error() {
        let live_only: Vec<PadScores> = data().into_iter().filter(|s| s.attack.is_none()).collect();
        let err = LivenessCalibration::fit(&ids(), &live_only, 0.01, 1.0, "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let mut nan = data();
        nan[5].live[0] = f32::NAN;
        let err = LivenessCalibration::fit(&ids(), &nan, 0.01, 1.0, "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let mut short = data();
        short[1].live.pop();
        let err = LivenessCalibration::fit(&ids(), &short, 0.01, 1.0, "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        for target in [0.0, 1.0, f64::NAN] {
            let err = LivenessCalibration::fit(&ids(), &data(), target, 1.0, "x").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        }
        let err = threshold_at_apcer(&[(1.0, Some("print")), (0.9, None)], 0.01).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dataset);
    }
}
