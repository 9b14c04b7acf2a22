//! Score calibration and fusion: from a matcher's raw scores to thresholds at a target
//! false-match rate, and to log-likelihood ratios that can be added across factors.
//!
//! A [`Calibration`] is made once per model from labelled genuine and impostor scores
//! (`vouch calibrate`) and shipped as a small TOML file (`calibration/*.toml`, built into the
//! library for the default models). It holds:
//!
//! - **operating points**: the threshold for each target FMR. Where the impostor scores are
//!   numerous enough to measure the target (at least 10 impostors expected above it), the
//!   threshold is empirical; below that it is extrapolated from a normal fit of the impostor
//!   scores' tail, and never lower than the highest impostor score seen. Extrapolated points
//!   say so (`extrapolated = true`): they are estimates, not measurements.
//! - **an LLR map** `llr = slope × score + offset`: the log-likelihood ratio of the score
//!   under normal models of the genuine and impostor scores with a pooled variance.
//!
//! The decision module ([`crate::decision`]) holds each required factor to its own threshold
//! (an AND rule keeps each factor's FMR bound and stops a strong face from buying a failed
//! passphrase, which would undo replay protection) and adds the factors' LLRs into the coarse
//! confidence reported to the terminal. This module only calibrates: it never decides.
//!
//! Liveness has its own calibration file ([`liveness`]): the learned fusion of the liveness
//! models' scores and the threshold chosen with it for a target APCER.
//!
//! ```
//! use vouch::stats::ScoreSet;
//! use vouch::score::Calibration;
//!
//! let genuine: Vec<f64> = (0..200).map(|i| 0.6 + 0.002 * i as f64).collect();
//! let impostor: Vec<f64> = (0..2000).map(|i| -0.2 + 0.0002 * i as f64).collect();
//! let scores = ScoreSet::new(genuine, impostor).unwrap();
//! let calibration = Calibration::fit("demo@0", "synthetic", &scores, &[1e-2, 1e-4]).unwrap();
//! assert!(calibration.threshold_at(1e-3).unwrap() >= calibration.threshold_at(1e-2).unwrap());
//! assert!(calibration.llr(0.9) > 0.0 && calibration.llr(-0.1) < 0.0);
//! ```

pub mod fusion;
pub mod liveness;

pub use fusion::ScoreFusion;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::stats::{
    BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED, ScoreSet, bootstrap, fnmr_at_fmr, percentile_interval,
    upper_normal_quantile,
};

/// Version of the calibration file format.
pub const CALIBRATION_VERSION: u32 = 1;

/// The target FMRs `vouch calibrate` writes by default.
pub const DEFAULT_TARGETS: [f64; 5] = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6];

/// Impostor scores expected above a threshold for it to count as measured rather than
/// extrapolated.
const MIN_EXPECTED_IMPOSTORS: f64 = 10.0;

const BUILTIN: [&str; 5] = [
    include_str!("../calibration/mobilefacenet.toml"),
    include_str!("../calibration/sface.toml"),
    include_str!("../calibration/face-fused.toml"),
    include_str!("../calibration/ge2e-voice-encoder.toml"),
    include_str!("../calibration/voice-fused.toml"),
];

/// One operating point of a calibration.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationPoint {
    /// The target false-match rate.
    pub fmr: f64,
    /// Scores at or above it are matches.
    pub threshold: f64,
    /// FNMR at that threshold on the calibration scores.
    pub fnmr: f64,
    /// True when the data could not measure the target and the threshold comes from the
    /// normal fit of the impostor tail.
    pub extrapolated: bool,
    /// 95 % bootstrap interval of the threshold (the same rule re-applied to resampled
    /// scores): how far another sample of the same size could move it. Absent in files
    /// written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_interval: Option<[f64; 2]>,
}

/// A model's calibration: thresholds at target FMRs and a score → LLR map.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// File format version ([`CALIBRATION_VERSION`]).
    pub version: u32,
    /// The model whose scores these are (`name@sha256-prefix`, as templates record it).
    pub model: String,
    /// Where the scores came from (data set, protocol, command).
    pub source: String,
    /// Genuine scores used.
    pub genuine: usize,
    /// Impostor scores used.
    pub impostor: usize,
    /// Mean of the impostor scores.
    pub impostor_mean: f64,
    /// Standard deviation of the impostor scores.
    pub impostor_sd: f64,
    /// Highest impostor score.
    pub impostor_max: f64,
    /// `llr = llr_slope × score + llr_offset`.
    pub llr_slope: f64,
    /// See `llr_slope`.
    pub llr_offset: f64,
    /// Operating points, by decreasing FMR.
    pub points: Vec<CalibrationPoint>,
    /// For the calibration of a fused score: the models fused and how (their scores → the
    /// score these thresholds apply to). `model` is then [`fused_model_id`] of its models.
    /// Absent for one model's own scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<ScoreFusion>,
}

/// The id of the fused score of several models: their ids joined by `+`
/// (`resemblyzer@5335dcd2ed11+gmm-ubm@0a1b2c3d4e5f`), what a fused calibration's `model` says.
pub fn fused_model_id(models: &[String]) -> String {
    models.join("+")
}

impl Calibration {
    /// Fits a calibration for `model` from labelled scores, with an operating point for each
    /// of `targets`.
    pub fn fit(
        model: &str,
        source: &str,
        scores: &ScoreSet,
        targets: &[f64],
    ) -> Result<Calibration> {
        if targets.is_empty() || targets.iter().any(|t| !(*t > 0.0 && *t < 1.0)) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "calibration targets are false-match rates strictly between 0 and 1",
            ));
        }
        let impostor = scores.impostor();
        let n = impostor.len() as f64;
        let (mean, sd, max) = tail_fit(impostor);
        let mut targets = targets.to_vec();
        targets.sort_by(|a, b| b.total_cmp(a));
        targets.dedup();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let replicates = bootstrap(scores, BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED, threads, |s| {
            targets
                .iter()
                .map(|&fmr| threshold_for(s, fmr))
                .collect::<Vec<_>>()
        });
        let points = targets
            .iter()
            .enumerate()
            .map(|(k, &fmr)| {
                let threshold = threshold_for(scores, fmr);
                let column: Vec<f64> = replicates.iter().map(|r| r[k]).collect();
                CalibrationPoint {
                    fmr,
                    threshold,
                    fnmr: scores.fnmr(threshold),
                    extrapolated: must_extrapolate(n, fmr),
                    threshold_interval: percentile_interval(&column).map(|i| [i.low, i.high]),
                }
            })
            .collect();
        let (llr_slope, llr_offset) = fit_gaussian_llr(scores.genuine(), impostor)?;
        Ok(Calibration {
            version: CALIBRATION_VERSION,
            model: model.to_string(),
            source: source.to_string(),
            genuine: scores.genuine().len(),
            impostor: impostor.len(),
            impostor_mean: mean,
            impostor_sd: sd,
            impostor_max: max,
            llr_slope,
            llr_offset,
            points,
            fusion: None,
        })
    }

    /// The calibration of `fusion`'s fused score, fitted like [`Calibration::fit`] on the fused
    /// scores of labelled trials.
    pub fn fit_fused(
        fusion: ScoreFusion,
        source: &str,
        fused_scores: &ScoreSet,
        targets: &[f64],
    ) -> Result<Calibration> {
        let mut calibration = Calibration::fit(
            &fused_model_id(&fusion.models),
            source,
            fused_scores,
            targets,
        )?;
        calibration.fusion = Some(fusion);
        calibration.check()?;
        Ok(calibration)
    }

    /// Parses and checks a calibration file.
    pub fn parse(text: &str) -> Result<Calibration> {
        let calibration: Calibration = toml::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("calibration file: {}", e.message()),
            )
        })?;
        calibration.check()?;
        Ok(calibration)
    }

    /// Reads a calibration file.
    pub fn load(path: &Path) -> Result<Calibration> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("reading calibration", path, e))?;
        Calibration::parse(&text)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// The calibration as a TOML file.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::new(ErrorKind::Config, e.to_string()))
    }

    fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::new(ErrorKind::Config, format!("calibration: {m}")));
        if self.version != CALIBRATION_VERSION {
            return bad(&format!(
                "format version {} (this build reads {CALIBRATION_VERSION})",
                self.version
            ));
        }
        if self.model.is_empty() {
            return bad("no model named");
        }
        if self.points.is_empty() {
            return bad("no operating points");
        }
        if !(self.llr_slope.is_finite() && self.llr_slope > 0.0 && self.llr_offset.is_finite()) {
            return bad("the LLR map must have a finite positive slope");
        }
        for pair in self.points.windows(2) {
            if !(pair[0].fmr > pair[1].fmr && pair[0].threshold <= pair[1].threshold) {
                return bad(
                    "operating points must go by decreasing FMR with non-decreasing thresholds",
                );
            }
        }
        if self
            .points
            .iter()
            .any(|p| !(p.fmr > 0.0 && p.fmr < 1.0 && p.threshold.is_finite()))
        {
            return bad("an operating point has an FMR outside (0, 1) or a non-finite threshold");
        }
        if let Some(fusion) = &self.fusion {
            let n = fusion.models.len();
            let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
            if n < 2
                || fusion.impostor_mean.len() != n
                || fusion.impostor_sd.len() != n
                || fusion.weights.len() != n
                || !finite(&fusion.impostor_mean)
                || !finite(&fusion.weights)
                || !fusion.bias.is_finite()
                || fusion
                    .impostor_sd
                    .iter()
                    .any(|sd| !(sd.is_finite() && *sd > 0.0))
            {
                return bad(
                    "a fusion names two or more models, with one finite impostor mean, positive deviation and weight each",
                );
            }
            if self.model != fused_model_id(&fusion.models) {
                return bad(&format!(
                    "a fused calibration's model must be {}, not {}",
                    fused_model_id(&fusion.models),
                    self.model
                ));
            }
        }
        Ok(())
    }

    /// The threshold for `target_fmr`: that of the loosest operating point whose FMR is at
    /// most the target (never a looser one). Refused when the calibration has no point that
    /// strict.
    pub fn threshold_at(&self, target_fmr: f64) -> Result<f64> {
        self.point_at(target_fmr).map(|p| p.threshold)
    }

    /// The operating point used for `target_fmr` (see [`Calibration::threshold_at`]).
    pub fn point_at(&self, target_fmr: f64) -> Result<&CalibrationPoint> {
        self.points
            .iter()
            .find(|p| p.fmr <= target_fmr * (1.0 + 1e-9))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "the calibration of {} has no operating point at FMR {target_fmr:e} or stricter (strictest: {:e}); recalibrate with that target",
                        self.model,
                        self.points.last().map_or(f64::NAN, |p| p.fmr)
                    ),
                )
            })
    }

    /// The score these thresholds apply to, from each model's score of one comparison:
    /// for a fused calibration, its fusion of the scores of its models (each must be there);
    /// otherwise the score of its one model. [`ErrorKind::InvalidInput`] when a score it
    /// needs is missing.
    pub fn combine(&self, scores: &[(&str, f64)]) -> Result<f64> {
        let of = |model: &str| {
            scores
                .iter()
                .find(|(m, _)| *m == model)
                .map(|(_, s)| *s)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("the calibration of {} needs a score of {model}", self.model),
                    )
                })
        };
        match &self.fusion {
            Some(fusion) => {
                let ordered = fusion
                    .models
                    .iter()
                    .map(|m| of(m))
                    .collect::<Result<Vec<_>>>()?;
                Ok(fusion.score(&ordered))
            }
            None => of(&self.model),
        }
    }

    /// The log-likelihood ratio (natural log) of a score: above 0 favours "same person".
    pub fn llr(&self, score: f64) -> f64 {
        self.llr_slope * score + self.llr_offset
    }
}

/// A score on its calibration's scale ([`Calibrations::calibrated`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Calibrated {
    /// The calibration's model (a fused id for several models).
    pub model: String,
    /// The score the threshold applies to.
    pub score: f64,
    /// The threshold at the target FMR.
    pub threshold: f64,
    /// The score's log-likelihood ratio.
    pub llr: f64,
}

/// Calibrations by model id: the built-in ones for the default models, plus any loaded from
/// files (which replace a built-in one for the same model).
#[derive(Clone, Debug, Default)]
pub struct Calibrations {
    by_model: BTreeMap<String, Calibration>,
}

impl Calibrations {
    /// The calibrations shipped for the default models.
    pub fn builtin() -> Calibrations {
        let mut calibrations = Calibrations::default();
        for text in BUILTIN {
            // Checked by a unit test; a broken built-in file is a build defect.
            if let Ok(c) = Calibration::parse(text) {
                calibrations.insert(c);
            }
        }
        calibrations
    }

    /// The built-in calibrations overlaid with `files`.
    pub fn with_files(files: &[impl AsRef<Path>]) -> Result<Calibrations> {
        let mut calibrations = Calibrations::builtin();
        for file in files {
            calibrations.insert(Calibration::load(file.as_ref())?);
        }
        Ok(calibrations)
    }

    /// Adds or replaces the calibration of its model.
    pub fn insert(&mut self, calibration: Calibration) {
        self.by_model.insert(calibration.model.clone(), calibration);
    }

    /// The calibration of `model`, or a configuration error naming the fix.
    pub fn get(&self, model: &str) -> Result<&Calibration> {
        self.by_model.get(model).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "no calibration for model {model}: run `vouch calibrate` on labelled data and list the file under [decisions] calibration"
                ),
            )
        })
    }

    /// One comparison's scores by several models (each `(model, score)`) as one calibrated
    /// score: the calibration of exactly those models (their fusion for several, the model's
    /// own for one; [`fused_model_id`]), the score it combines them into, its threshold at
    /// `target_fmr`, and its LLR. A missing calibration is the configuration error of
    /// [`Calibrations::get`].
    pub fn calibrated(&self, scores: &[(&str, f64)], target_fmr: f64) -> Result<Calibrated> {
        let models: Vec<String> = scores.iter().map(|(m, _)| m.to_string()).collect();
        let calibration = self.get(&fused_model_id(&models))?;
        let score = calibration.combine(scores)?;
        Ok(Calibrated {
            model: calibration.model.clone(),
            score,
            threshold: calibration.threshold_at(target_fmr)?,
            llr: calibration.llr(score),
        })
    }

    /// The models calibrated.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.by_model.keys().map(String::as_str)
    }
}

/// The LLR of a score under two normal class models with a pooled variance: linear in the
/// score, `(μg − μi)/σ² · (s − (μg + μi)/2)`. Unlike a logistic fit it stays finite when the
/// calibration scores are separable (every genuine above every impostor), which they often are
/// for a good model on a small set.
fn fit_gaussian_llr(genuine: &[f64], impostor: &[f64]) -> Result<(f64, f64)> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mg, mi) = (mean(genuine), mean(impostor));
    let squares = |v: &[f64], m: f64| v.iter().map(|s| (s - m).powi(2)).sum::<f64>();
    let dof = (genuine.len() + impostor.len()).saturating_sub(2).max(1) as f64;
    let pooled = (squares(genuine, mg) + squares(impostor, mi)) / dof;
    let slope = (mg - mi) / pooled;
    let offset = -slope * (mg + mi) / 2.0;
    if !(slope.is_finite() && offset.is_finite() && slope > 0.0) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "genuine scores are not higher than impostor scores: nothing to calibrate",
        ));
    }
    Ok((slope, offset))
}

/// Mean, standard deviation and maximum of impostor scores.
fn tail_fit(impostor: &[f64]) -> (f64, f64, f64) {
    let n = impostor.len() as f64;
    let mean = impostor.iter().sum::<f64>() / n;
    let variance = impostor.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let max = impostor.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, variance.sqrt(), max)
}

/// True when `impostors` scores are too few to measure `fmr` (fewer than
/// [`MIN_EXPECTED_IMPOSTORS`] expected above the threshold).
fn must_extrapolate(impostors: f64, fmr: f64) -> bool {
    impostors * fmr < MIN_EXPECTED_IMPOSTORS
}

/// The threshold for `fmr`: measured on the impostor scores when at least
/// [`MIN_EXPECTED_IMPOSTORS`] of them are expected above it, else extrapolated from a normal
/// fit of the impostor scores (never below the highest impostor score seen).
fn threshold_for(scores: &ScoreSet, fmr: f64) -> f64 {
    let impostor = scores.impostor();
    if must_extrapolate(impostor.len() as f64, fmr) {
        let (mean, sd, max) = tail_fit(impostor);
        (mean + sd * upper_normal_quantile(fmr)).max(max)
    } else {
        fnmr_at_fmr(scores, fmr).threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic() -> ScoreSet {
        // Impostors ~ uniform on [-0.2, 0.2], genuine on [0.5, 0.9].
        let impostor = (0..4000).map(|i| -0.2 + 0.4 * i as f64 / 3999.0).collect();
        let genuine = (0..400).map(|i| 0.5 + 0.4 * i as f64 / 399.0).collect();
        ScoreSet::new(genuine, impostor).unwrap()
    }

    #[test]
    fn empirical_and_extrapolated_points() {
        let c = Calibration::fit("m@1", "test", &synthetic(), &DEFAULT_TARGETS).unwrap();
        // 1 % of 4000 = 40 impostors: measured; 1e-3 → 4 expected: extrapolated.
        assert!(!c.points[0].extrapolated && c.points[1].extrapolated);
        let t1 = c.points[0].threshold;
        assert!((t1 - 0.196).abs() < 0.002, "{t1}");
        // Extrapolated thresholds never fall below the highest impostor.
        assert!(c.points[1..].iter().all(|p| p.threshold >= 0.2));
        assert!(
            c.points
                .windows(2)
                .all(|w| w[0].threshold <= w[1].threshold)
        );
        // The loosest point at or below the target.
        assert_eq!(c.threshold_at(5e-3).unwrap(), c.points[1].threshold);
        assert_eq!(c.threshold_at(1e-2).unwrap(), t1);
        assert_eq!(c.threshold_at(0.5).unwrap(), t1);
        assert_eq!(c.threshold_at(1e-7).unwrap_err().kind(), ErrorKind::Config);
    }

    #[test]
    fn llr_is_monotone_and_crosses_between_classes() {
        let c = Calibration::fit("m@1", "test", &synthetic(), &[1e-2]).unwrap();
        assert!(c.llr_slope > 0.0);
        let zero = -c.llr_offset / c.llr_slope;
        assert!(zero > 0.2 && zero < 0.5, "{zero}");
        assert!(c.llr(0.9) > 5.0 && c.llr(-0.2) < -5.0, "{c:?}");
    }

    #[test]
    fn gaussian_fit_recovers_known_llr() {
        // Two unit-variance normals at ±1: the true LLR is 2s.
        let quantiles: Vec<f64> = (1..2000)
            .map(|i| -upper_normal_quantile(i as f64 / 2000.0))
            .collect();
        let genuine: Vec<f64> = quantiles.iter().map(|q| q + 1.0).collect();
        let impostor: Vec<f64> = quantiles.iter().map(|q| q - 1.0).collect();
        let (a, b) = fit_gaussian_llr(&genuine, &impostor).unwrap();
        assert!((a - 2.0).abs() < 0.02 && b.abs() < 1e-9, "a={a} b={b}");
    }

    #[test]
    fn reversed_scores_cannot_be_calibrated() {
        let set = ScoreSet::new(vec![-0.5, -0.4], vec![0.5, 0.6, 0.7]).unwrap();
        assert!(Calibration::fit("m@1", "t", &set, &[0.1]).is_err());
    }

    #[test]
    fn files_round_trip_and_bad_files_are_refused() {
        let c = Calibration::fit("m@1", "test", &synthetic(), &DEFAULT_TARGETS).unwrap();
        let text = c.to_toml().unwrap();
        assert_eq!(Calibration::parse(&text).unwrap(), c);
        let newer = text.replace("version = 1", "version = 2");
        assert!(Calibration::parse(&newer).is_err());
        let mut loose = c.clone();
        loose.points[2].threshold = -1.0;
        assert!(Calibration::parse(&loose.to_toml().unwrap()).is_err());
        assert!(Calibration::parse("model = 3").is_err());
    }

    #[test]
    fn builtin_calibrations_parse() {
        for text in BUILTIN {
            Calibration::parse(text).unwrap();
        }
        assert_eq!(Calibrations::builtin().models().count(), BUILTIN.len());
    }
}
