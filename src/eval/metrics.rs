//! ROC, EER, FNMR at a target FMR, AUC.

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

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

/// One point of a ROC / DET curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RocPoint {
    /// Accept when `score >= threshold`.
    pub threshold: f64,
    /// False match rate at the threshold.
    pub fmr: f64,
    /// False non-match rate at the threshold.
    pub fnmr: f64,
}

/// The curve at every distinct score, thresholds ascending (FMR falling, FNMR rising).
pub fn roc(scores: &ScoreSet) -> Vec<RocPoint> {
    let mut thresholds: Vec<f64> = scores
        .genuine
        .iter()
        .chain(&scores.impostor)
        .copied()
        .collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    thresholds
        .into_iter()
        .map(|t| RocPoint {
            threshold: t,
            fmr: scores.fmr(t),
            fnmr: scores.fnmr(t),
        })
        .collect()
}

/// The equal error rate and where it happens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Eer {
    /// The rate at which FMR and FNMR cross (interpolated between the two neighbouring
    /// thresholds).
    pub rate: f64,
    /// The (interpolated) threshold of the crossing.
    pub threshold: f64,
}

/// Equal error rate: where FMR(t) and FNMR(t) cross, linearly interpolated between the last
/// threshold with FMR > FNMR and the first with FMR <= FNMR.
pub fn eer(scores: &ScoreSet) -> Eer {
    let curve = roc(scores);
    let first = curve[0];
    let crossing = curve.iter().position(|p| p.fmr - p.fnmr <= 0.0);
    match crossing {
        Some(0) | None => {
            let p = if crossing.is_none() {
                curve[curve.len() - 1]
            } else {
                first
            };
            Eer {
                rate: (p.fmr + p.fnmr) / 2.0,
                threshold: p.threshold,
            }
        }
        Some(i) => {
            let (lo, hi) = (curve[i - 1], curve[i]);
            let (d_lo, d_hi) = (lo.fmr - lo.fnmr, hi.fmr - hi.fnmr);
            let w = if d_lo != d_hi {
                d_lo / (d_lo - d_hi)
            } else {
                0.5
            };
            let lerp = |a: f64, b: f64| a + w * (b - a);
            Eer {
                rate: (lerp(lo.fmr, hi.fmr) + lerp(lo.fnmr, hi.fnmr)) / 2.0,
                threshold: lerp(lo.threshold, hi.threshold),
            }
        }
    }
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

/// Area under the ROC curve: the probability that a random genuine score exceeds a random
/// impostor score, ties counting one half (Mann–Whitney U).
pub fn auc(scores: &ScoreSet) -> f64 {
    let (genuine, imp) = (&scores.genuine, &scores.impostor);
    let mut wins = 0.0;
    for &g in genuine {
        let below = imp.partition_point(|&s| s < g);
        let not_above = imp.partition_point(|&s| s <= g);
        wins += below as f64 + 0.5 * (not_above - below) as f64;
    }
    wins / (genuine.len() as f64 * imp.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(g: &[f64], i: &[f64]) -> ScoreSet {
        ScoreSet::new(g.to_vec(), i.to_vec()).unwrap()
    }

    #[test]
    fn separable_scores_have_zero_eer_and_unit_auc() {
        let s = set(&[0.8, 0.9, 0.7], &[0.1, 0.2, 0.3, 0.4]);
        assert_eq!(auc(&s), 1.0);
        assert_eq!(eer(&s).rate, 0.0);
        let op = fnmr_at_fmr(&s, 0.0);
        assert_eq!((op.fnmr, op.fmr), (0.0, 0.0));
    }

    #[test]
    fn overlapping_scores() {
        // gen: 0.3 0.6 0.8 0.9 ; imp: 0.1 0.2 0.4 0.7
        let s = set(&[0.9, 0.8, 0.6, 0.3], &[0.1, 0.2, 0.4, 0.7]);
        // pairs won: 0.9→4, 0.8→4, 0.6→3, 0.3→2 = 13/16
        assert_eq!(auc(&s), 13.0 / 16.0);
        assert_eq!(s.fmr(0.6), 0.25);
        assert_eq!(s.fnmr(0.6), 0.25);
        let e = eer(&s);
        assert!((e.rate - 0.25).abs() < 1e-12, "{e:?}");
        // FMR <= 25 %: one impostor may pass; threshold just above 0.4
        let op = fnmr_at_fmr(&s, 0.25);
        assert_eq!(op.impostors_accepted, 1);
        assert_eq!(op.fnmr, 0.25);
        assert!(op.threshold > 0.4 && op.threshold < 0.40001);
    }

    #[test]
    fn ties_count_half_in_auc() {
        let s = set(&[0.5], &[0.5]);
        assert_eq!(auc(&s), 0.5);
    }

    #[test]
    fn too_few_impostors_is_not_measurable() {
        let s = set(&[0.9], &[0.1, 0.2]);
        assert!(!fnmr_at_fmr(&s, 0.01).measurable);
        assert!(fnmr_at_fmr(&s, 0.5).measurable);
    }

    #[test]
    fn nan_and_empty_are_refused() {
        assert!(ScoreSet::new(vec![f64::NAN], vec![0.1]).is_err());
        assert!(ScoreSet::new(vec![], vec![0.1]).is_err());
        assert!(ScoreSet::new(vec![0.2], vec![]).is_err());
    }
}

/// Headline verification figures for a score set.
#[derive(Clone, Debug, Serialize)]
pub struct VerificationSummary {
    /// Genuine comparisons scored.
    pub genuine: usize,
    /// Impostor comparisons scored.
    pub impostor: usize,
    /// Area under the ROC curve.
    pub auc: f64,
    /// Equal error rate.
    pub eer: Eer,
    /// FNMR at FMR = 1 %, 0.1 %, 0.01 %, 0.001 %.
    pub operating_points: Vec<OperatingPoint>,
}

impl VerificationSummary {
    /// AUC, EER and FNMR at FMR = 1 %, 0.1 %, 0.01 % and 0.001 % of `set`.
    pub fn of(set: &ScoreSet) -> VerificationSummary {
        VerificationSummary {
            genuine: set.genuine().len(),
            impostor: set.impostor().len(),
            auc: auc(set),
            eer: eer(set),
            operating_points: [1e-2, 1e-3, 1e-4, 1e-5]
                .iter()
                .map(|&t| fnmr_at_fmr(set, t))
                .collect(),
        }
    }
}
