//! Genuine and impostor score sets, and the threshold for a target false-match rate: what
//! calibration and evaluation both measure.

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::stats::interval::Interval;

/// Genuine (same person) and impostor (different people) comparison scores, checked finite.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScoreSet {
    genuine: Vec<f64>,
    impostor: Vec<f64>,
}

impl ScoreSet {
    /// Builds a score set; refuses NaN or infinite scores and empty sides.
    pub fn new(genuine: Vec<f64>, impostor: Vec<f64>) -> Result<ScoreSet> {
        if genuine.is_empty() || impostor.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "metrics need genuine and impostor scores (got {} genuine, {} impostor)",
                    genuine.len(),
                    impostor.len()
                ),
            ));
        }
        if let Some(bad) = genuine.iter().chain(&impostor).find(|s| !s.is_finite()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("scores must be finite numbers, found {bad}"),
            ));
        }
        let mut genuine = genuine;
        let mut impostor = impostor;
        genuine.sort_by(f64::total_cmp);
        impostor.sort_by(f64::total_cmp);
        Ok(ScoreSet { genuine, impostor })
    }

    /// A score set from sides already sorted ascending and checked finite (bootstrap
    /// resamples of a checked set).
    pub(crate) fn from_sorted(genuine: Vec<f64>, impostor: Vec<f64>) -> ScoreSet {
        debug_assert!(genuine.is_sorted() && impostor.is_sorted());
        ScoreSet { genuine, impostor }
    }

    /// Genuine scores, ascending.
    pub fn genuine(&self) -> &[f64] {
        &self.genuine
    }

    /// Impostor scores, ascending.
    pub fn impostor(&self) -> &[f64] {
        &self.impostor
    }

    /// False match rate at `threshold`: the share of impostor scores `>= threshold`.
    pub fn fmr(&self, threshold: f64) -> f64 {
        count_at_or_above(&self.impostor, threshold) as f64 / self.impostor.len() as f64
    }

    /// False non-match rate at `threshold`: the share of genuine scores `< threshold`.
    pub fn fnmr(&self, threshold: f64) -> f64 {
        let rejected = self.genuine.len() - count_at_or_above(&self.genuine, threshold);
        rejected as f64 / self.genuine.len() as f64
    }
}

fn count_at_or_above(sorted: &[f64], threshold: f64) -> usize {
    sorted.len() - sorted.partition_point(|&s| s < threshold)
}

/// A threshold chosen for a target false match rate, and what it gives.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OperatingPoint {
    /// The FMR asked for.
    pub target_fmr: f64,
    /// The lowest threshold whose FMR does not exceed the target.
    pub threshold: f64,
    /// FMR actually reached on these scores.
    pub fmr: f64,
    /// FNMR at that threshold.
    pub fnmr: f64,
    /// Impostor comparisons accepted at that threshold.
    pub impostors_accepted: usize,
    /// False when there are too few impostor scores to measure the target at all
    /// (fewer than `1 / target`): the figure then only says "no impostor accepted".
    pub measurable: bool,
    /// 95 % bootstrap interval of the FNMR (threshold re-chosen in every resample), when
    /// computed and measurable; see [`crate::stats::interval`].
    pub fnmr_interval: Option<Interval>,
}

/// FNMR at the lowest threshold whose FMR is at most `target_fmr`: at most
/// `floor(target × impostors)` impostor scores may reach the threshold.
pub fn fnmr_at_fmr(scores: &ScoreSet, target_fmr: f64) -> OperatingPoint {
    let imp = &scores.impostor;
    let n = imp.len();
    let allowed = (target_fmr * n as f64).floor() as usize;
    let threshold = if allowed >= n {
        f64::NEG_INFINITY
    } else {
        // Just above the (allowed+1)-th highest impostor score.
        next_up(imp[n - 1 - allowed])
    };
    let accepted = count_at_or_above(imp, threshold);
    OperatingPoint {
        target_fmr,
        threshold,
        fmr: accepted as f64 / n as f64,
        fnmr: scores.fnmr(threshold),
        impostors_accepted: accepted,
        measurable: n as f64 * target_fmr >= 1.0,
        fnmr_interval: None,
    }
}

/// The smallest f64 greater than `x` (for finite `x`).
fn next_up(x: f64) -> f64 {
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let bits = x.to_bits();
    f64::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}
