//! ROC and DET, EER, FNMR at a target FMR, AUC, minimum detection cost.

use serde::{Deserialize, Serialize};

use crate::stats::bootstrap::{self, BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED, SubjectScores};
use crate::stats::interval::{self, Interval};
use crate::stats::{OperatingPoint, ScoreSet, fnmr_at_fmr};

/// One point of a ROC / DET curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
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
    roc_walk(scores).collect()
}

/// The points of [`roc`] one by one, without holding the curve: one merge of the two sorted
/// sides, so a curve over millions of comparisons costs no memory (the EER, minDCF and DET
/// curve of a large evaluation each walk it once).
fn roc_walk(scores: &ScoreSet) -> impl Iterator<Item = RocPoint> + '_ {
    let (genuine, impostor) = (scores.genuine(), scores.impostor());
    // Scores below the next threshold, on each side.
    let (mut g, mut i) = (0, 0);
    std::iter::from_fn(move || {
        let threshold = match (genuine.get(g), impostor.get(i)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => return None,
        };
        let point = RocPoint {
            threshold,
            fmr: (impostor.len() - i) as f64 / impostor.len() as f64,
            fnmr: g as f64 / genuine.len() as f64,
        };
        while genuine.get(g) == Some(&threshold) {
            g += 1;
        }
        while impostor.get(i) == Some(&threshold) {
            i += 1;
        }
        Some(point)
    })
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
    let mut curve = roc_walk(scores);
    // A score set is never empty, so the curve has a first point.
    let first = curve.next().unwrap_or(RocPoint {
        threshold: 0.0,
        fmr: 0.0,
        fnmr: 0.0,
    });
    let at = |p: RocPoint| Eer {
        rate: (p.fmr + p.fnmr) / 2.0,
        threshold: p.threshold,
    };
    if first.fmr - first.fnmr <= 0.0 {
        return at(first);
    }
    let mut lo = first;
    for hi in curve {
        if hi.fmr - hi.fnmr <= 0.0 {
            let (d_lo, d_hi) = (lo.fmr - lo.fnmr, hi.fmr - hi.fnmr);
            let w = if d_lo != d_hi {
                d_lo / (d_lo - d_hi)
            } else {
                0.5
            };
            let lerp = |a: f64, b: f64| a + w * (b - a);
            return Eer {
                rate: (lerp(lo.fmr, hi.fmr) + lerp(lo.fnmr, hi.fnmr)) / 2.0,
                threshold: lerp(lo.threshold, hi.threshold),
            };
        }
        lo = hi;
    }
    // FMR above FNMR at every threshold: the last point.
    at(lo)
}

/// Area under the ROC curve: the probability that a random genuine score exceeds a random
/// impostor score, ties counting one half (Mann–Whitney U).
pub fn auc(scores: &ScoreSet) -> f64 {
    let (genuine, imp) = (scores.genuine(), scores.impostor());
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
    fn the_walked_curve_is_the_curve_at_every_distinct_score() {
        // Ties within and across the sides.
        let s = set(
            &[0.3, 0.5, 0.5, 0.7, 0.9, 0.9],
            &[0.1, 0.3, 0.3, 0.5, 0.6, 0.95],
        );
        let mut thresholds: Vec<f64> = s.genuine().iter().chain(s.impostor()).copied().collect();
        thresholds.sort_by(f64::total_cmp);
        thresholds.dedup();
        let naive: Vec<RocPoint> = thresholds
            .into_iter()
            .map(|t| RocPoint {
                threshold: t,
                fmr: s.fmr(t),
                fnmr: s.fnmr(t),
            })
            .collect();
        assert_eq!(roc(&s), naive);
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
    fn min_dcf_by_hand() {
        // gen: 0.3 0.6 0.8 0.9 ; imp: 0.1 0.2 0.4 0.7 ; p_target 0.5, unit costs: norm 0.5,
        // DCF = (P_miss + P_fa) / 2 / 0.5 = P_miss + P_fa: 0.5 at t = 0.3 (0 + 0.5), 0.6
        // (0.25 + 0.25) and 0.8 (0.5 + 0); every other threshold costs more. The lowest of
        // the tied thresholds is reported.
        let s = set(&[0.9, 0.8, 0.6, 0.3], &[0.1, 0.2, 0.4, 0.7]);
        let c = min_dcf(&s, 0.5, 1.0, 1.0);
        assert!((c.min_dcf - 0.5).abs() < 1e-12, "{c:?}");
        assert_eq!(c.threshold, 0.3);
        // A rare target makes false alarms expensive: rejecting everything costs exactly 1,
        // and no threshold here does better than P_miss + 99·P_fa allows.
        let c = min_dcf(&s, 0.01, 1.0, 1.0);
        assert!(c.min_dcf <= 1.0);
        assert!((c.min_dcf - 0.5).abs() < 1e-12, "{c:?}"); // t = 0.8: P_miss 0.5, P_fa 0
    }

    #[test]
    fn det_skips_the_inversion_without_changing_the_curve() {
        // The thinning as first written: every point's deviates computed.
        let naive = |s: &ScoreSet| {
            let deviate = |r: f64| -crate::stats::upper_normal_quantile(r.clamp(1e-9, 1.0 - 1e-9));
            let curve = roc(s);
            let mut kept: Vec<RocPoint> = Vec::new();
            let mut last = (f64::NAN, f64::NAN);
            for (i, p) in curve.iter().enumerate() {
                let here = (deviate(p.fmr), deviate(p.fnmr));
                let moved = !((here.0 - last.0).abs() < 0.01 && (here.1 - last.1).abs() < 0.01);
                if moved || i == curve.len() - 1 {
                    kept.push(*p);
                    last = here;
                }
            }
            kept
        };
        let mut rng = crate::stats::SplitMix64::new(11);
        let mut draw = |shift: f64| shift + (rng.below(10_000) as f64) / 10_000.0;
        let g: Vec<f64> = (0..3000).map(|_| draw(0.4)).collect();
        let i: Vec<f64> = (0..20_000).map(|_| draw(0.0)).collect();
        let s = set(&g, &i);
        assert_eq!(det(&s, usize::MAX), naive(&s));
    }

    #[test]
    fn det_thins_but_keeps_both_ends() {
        let g: Vec<f64> = (0..500).map(|i| f64::from(i) / 500.0 + 0.3).collect();
        let i: Vec<f64> = (0..500).map(|i| f64::from(i) / 500.0).collect();
        let s = set(&g, &i);
        let full = roc(&s);
        let thin = det(&s, 50);
        assert_eq!(thin.len(), 50);
        assert_eq!(thin[0], full[0]);
        assert_eq!(thin[thin.len() - 1], full[full.len() - 1]);
        let shape = det(&s, 10_000);
        assert!(
            shape.len() < full.len() && shape.len() > 100,
            "{}",
            shape.len()
        );
        assert_eq!(shape[shape.len() - 1], full[full.len() - 1]);
    }

    #[test]
    fn nan_and_empty_are_refused() {
        assert!(ScoreSet::new(vec![f64::NAN], vec![0.1]).is_err());
        assert!(ScoreSet::new(vec![], vec![0.1]).is_err());
        assert!(ScoreSet::new(vec![0.2], vec![]).is_err());
    }
}

/// The normalised detection cost function at its minimum over thresholds (NIST SRE):
/// `DCF(t) = C_miss·P_miss(t)·P_target + C_fa·P_fa(t)·(1 − P_target)`, divided by the cost of
/// the better trivial system, `min(C_miss·P_target, C_fa·(1 − P_target))`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DetectionCost {
    /// Prior probability of a target (genuine) trial.
    pub p_target: f64,
    /// Cost of a miss (false non-match).
    pub c_miss: f64,
    /// Cost of a false alarm (false match).
    pub c_fa: f64,
    /// The minimum normalised cost (0 perfect, 1 no better than always rejecting).
    pub min_dcf: f64,
    /// The threshold reaching it (`+inf`: reject everything).
    pub threshold: f64,
    /// P_miss (FNMR) there.
    pub p_miss: f64,
    /// P_fa (FMR) there.
    pub p_fa: f64,
}

/// The minimum normalised detection cost of `scores` (see [`DetectionCost`]); the SRE
/// convention is `p_target = 0.01`, `c_miss = c_fa = 1`.
pub fn min_dcf(scores: &ScoreSet, p_target: f64, c_miss: f64, c_fa: f64) -> DetectionCost {
    let norm = (c_miss * p_target).min(c_fa * (1.0 - p_target));
    let cost = |t: f64| {
        let (p_miss, p_fa) = (scores.fnmr(t), scores.fmr(t));
        let dcf = (c_miss * p_miss * p_target + c_fa * p_fa * (1.0 - p_target)) / norm;
        DetectionCost {
            p_target,
            c_miss,
            c_fa,
            min_dcf: dcf,
            threshold: t,
            p_miss,
            p_fa,
        }
    };
    // Every distinct score, plus "reject everything"; the first minimum (lowest threshold) wins.
    roc_walk(scores)
        .map(|p| cost(p.threshold))
        .chain(std::iter::once(cost(f64::INFINITY)))
        .fold(None::<DetectionCost>, |best, c| match best {
            Some(b) if b.min_dcf <= c.min_dcf => Some(b),
            _ => Some(c),
        })
        .unwrap_or_else(|| cost(f64::INFINITY))
}

/// Points of a DET curve that reports store and plots draw (see [`det`]).
pub const DET_POINTS: usize = 1000;

/// The DET curve (FNMR against FMR) thinned for reports and plots: a point is kept when it
/// moves at least 0.01 on either normal-deviate axis from the last one kept (so the tails,
/// where a DET plot spends most of its width, keep their detail), both ends always; beyond
/// `max_points` the kept points are spread evenly.
pub fn det(scores: &ScoreSet, max_points: usize) -> Vec<RocPoint> {
    let clamp = |r: f64| r.clamp(1e-9, 1.0 - 1e-9);
    let deviate = |r: f64| -crate::stats::upper_normal_quantile(clamp(r));
    // The rate of a deviate (the normal CDF), and the rates surely within 0.01 of a kept
    // point's deviate: inverting the CDF costs a bisection, so over millions of points it is
    // only done near those bounds.
    let rate = |z: f64| 0.5 * crate::stats::erfc(-z / std::f64::consts::SQRT_2);
    let near = |z: f64| (rate(z - 0.01 + 1e-6), rate(z + 0.01 - 1e-6));
    let inside = |r: f64, (lo, hi): (f64, f64)| lo < clamp(r) && clamp(r) < hi;
    let mut kept: Vec<RocPoint> = Vec::new();
    let mut last = (f64::NAN, f64::NAN);
    let mut bounds = ((f64::NAN, f64::NAN), (f64::NAN, f64::NAN));
    // The last point walked, when it was not kept: it ends the curve.
    let mut pending = None;
    for p in roc_walk(scores) {
        if inside(p.fmr, bounds.0) && inside(p.fnmr, bounds.1) {
            pending = Some(p);
            continue;
        }
        let here = (deviate(p.fmr), deviate(p.fnmr));
        let moved = !((here.0 - last.0).abs() < 0.01 && (here.1 - last.1).abs() < 0.01);
        if moved {
            kept.push(p);
            last = here;
            bounds = (near(here.0), near(here.1));
            pending = None;
        } else {
            pending = Some(p);
        }
    }
    kept.extend(pending);
    let max_points = max_points.max(2);
    if kept.len() <= max_points {
        return kept;
    }
    let last = kept.len() - 1;
    let steps = max_points - 1;
    (0..=steps).map(|k| kept[k * last / steps]).collect()
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
    /// 95 % bootstrap interval of the EER.
    pub eer_interval: Option<Interval>,
    /// FNMR at FMR = 1 %, 0.1 %, 0.01 %, 0.001 %, with bootstrap intervals where measurable.
    pub operating_points: Vec<OperatingPoint>,
    /// Minimum normalised DCF at `p_target = 0.01`, `c_miss = c_fa = 1`.
    pub min_dcf: DetectionCost,
    /// How the intervals were computed.
    pub interval_method: String,
}

/// The FMR targets every verification summary reports.
pub const STANDARD_FMR_TARGETS: [f64; 4] = [1e-2, 1e-3, 1e-4, 1e-5];

impl VerificationSummary {
    /// AUC, EER, minDCF and FNMR at FMR = 1 %, 0.1 %, 0.01 % and 0.001 % of `set`, with 95 %
    /// bootstrap intervals ([`BOOTSTRAP_REPLICATES`] resamples, fixed seed, spread
    /// over the cores).
    pub fn of(set: &ScoreSet) -> VerificationSummary {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let replicates =
            bootstrap::bootstrap(set, BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED, threads, |s| {
                let mut row = vec![eer(s).rate];
                row.extend(STANDARD_FMR_TARGETS.iter().map(|&t| fnmr_at_fmr(s, t).fnmr));
                row
            });
        let column = |k: usize| -> Vec<f64> { replicates.iter().map(|r| r[k]).collect() };
        VerificationSummary::with_intervals(
            set,
            &column(0),
            |k| column(k + 1),
            format!(
                "95 % percentile bootstrap, {} resamples of genuine and impostor scores (seed {:#x}); assumes independent comparisons, so pairs sharing images make the true interval wider",
                BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED
            ),
        )
    }

    /// The figures of `set`, with the 95 % percentile intervals of bootstrap replicates:
    /// `eers` the EER's, `fnmrs(k)` the FNMR's at [`STANDARD_FMR_TARGETS`]`[k]` (asked only
    /// where measurable).
    fn with_intervals(
        set: &ScoreSet,
        eers: &[f64],
        fnmrs: impl Fn(usize) -> Vec<f64>,
        interval_method: String,
    ) -> VerificationSummary {
        let operating_points = STANDARD_FMR_TARGETS
            .iter()
            .enumerate()
            .map(|(k, &t)| {
                let mut op = fnmr_at_fmr(set, t);
                if op.measurable {
                    op.fnmr_interval = interval::percentile_interval(&fnmrs(k));
                }
                op
            })
            .collect();
        VerificationSummary {
            genuine: set.genuine().len(),
            impostor: set.impostor().len(),
            auc: auc(set),
            eer: eer(set),
            eer_interval: interval::percentile_interval(eers),
            operating_points,
            min_dcf: min_dcf(set, 0.01, 1.0, 1.0),
            interval_method,
        }
    }

    /// The figures of [`VerificationSummary::of`], with 95 % intervals from the subjects
    /// bootstrap ([`bootstrap::subjects_bootstrap`]): [`BOOTSTRAP_REPLICATES`] resamples of
    /// the people, fixed seed, spread over the cores. Comparisons that share a person stay
    /// together, so the intervals carry their correlation; and a replicate walks only the
    /// scores above the thresholds it finds, so millions of comparisons cost seconds.
    pub fn of_subjects(scores: &SubjectScores) -> VerificationSummary {
        let set = scores.set();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let replicates: Vec<bootstrap::SubjectReplicate> = bootstrap::subjects_bootstrap(
            scores,
            &STANDARD_FMR_TARGETS,
            BOOTSTRAP_REPLICATES,
            BOOTSTRAP_SEED,
            threads,
        )
        .into_iter()
        .flatten()
        .collect();
        let eers: Vec<f64> = replicates.iter().map(|r| r.eer).collect();
        let degenerate = BOOTSTRAP_REPLICATES - replicates.len();
        VerificationSummary::with_intervals(
            set,
            &eers,
            |k| replicates.iter().map(|r| r.fnmr[k]).collect(),
            format!(
                "95 % percentile bootstrap over subjects, {} resamples of the {} identities with replacement (seed {:#x}){}: a drawn identity brings all its genuine comparisons and its impostor comparisons with the other drawn identities, so comparisons sharing a person stay together",
                BOOTSTRAP_REPLICATES,
                scores.subjects(),
                BOOTSTRAP_SEED,
                if degenerate > 0 {
                    format!(
                        "; {degenerate} resample(s) without genuine or impostor comparisons left out"
                    )
                } else {
                    String::new()
                }
            ),
        )
    }
}
