//! The bootstrap: resampled score sets, for the intervals of figures whose threshold comes
//! from the data (FNMR at a target FMR, the EER, a calibrated threshold).
//!
//! Two kinds. [`bootstrap`] resamples the comparisons themselves and so assumes they are
//! independent, like every interval here ([`crate::stats::interval`]); each replicate costs a
//! resample of every score. [`subjects_bootstrap`] resamples the *subjects* (identities) and
//! keeps every comparison of a drawn subject: comparisons that share a person are correlated
//! (one bad photo spoils all its pairs), and only a resample of people carries that into the
//! interval. Its replicates are also cheap whatever the number of comparisons: a replicate
//! weighs the comparisons by how often their subjects were drawn, and only walks the scores
//! above the threshold it looks for (see [`subjects_bootstrap`]).

use crate::error::{Error, ErrorKind, Result};
use crate::stats::{ScoreSet, SplitMix64};

/// Bootstrap replicates used by the reports.
pub const BOOTSTRAP_REPLICATES: usize = 1000;

/// Seed of the reports' bootstrap, fixed so a report is reproducible to the last digit.
pub const BOOTSTRAP_SEED: u64 = 0x766f_7563_685f_6369; // "vouch_ci"

/// `replicates` bootstrap resamples of `scores` (genuine and impostor sides resampled
/// separately, with replacement), each passed to `statistic`; spread over `threads`. Replicate
/// `i` draws from its own seed derived from `seed` and `i`, so the result does not depend on
/// the thread count.
pub fn bootstrap<T: Send>(
    scores: &ScoreSet,
    replicates: usize,
    seed: u64,
    threads: usize,
    statistic: impl Fn(&ScoreSet) -> T + Sync,
) -> Vec<T> {
    let indices: Vec<u64> = (0..replicates as u64).collect();
    crate::parallel::parallel_map(&indices, threads, &|| {}, |&i| {
        let mut rng = SplitMix64::new(seed ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93));
        let genuine = resample_sorted(scores.genuine(), &mut rng);
        let impostor = resample_sorted(scores.impostor(), &mut rng);
        statistic(&ScoreSet::from_sorted(genuine, impostor))
    })
}

/// A resample with replacement of an ascending slice, itself ascending (sorting the drawn
/// indices is cheaper than sorting the drawn scores).
fn resample_sorted(sorted: &[f64], rng: &mut SplitMix64) -> Vec<f64> {
    let n = sorted.len();
    let mut picks: Vec<u32> = (0..n).map(|_| rng.below(n as u64) as u32).collect();
    picks.sort_unstable();
    picks.into_iter().map(|i| sorted[i as usize]).collect()
}

/// Verification scores labelled with the subjects they compare: the input of
/// [`subjects_bootstrap`]. Subjects are numbered `0..subjects`.
#[derive(Clone, Debug)]
pub struct SubjectScores {
    set: ScoreSet,
    /// The subject of each genuine score, in the set's ascending order.
    genuine_subject: Vec<u32>,
    /// The two subjects of each impostor score, in the set's ascending order.
    impostor_subjects: Vec<[u32; 2]>,
    subjects: usize,
}

impl SubjectScores {
    /// Genuine scores with their subject, impostor scores with their two subjects, and the
    /// number of subjects. Refuses ([`ErrorKind::InvalidInput`]) an empty side, a score that
    /// is not finite, or a subject number that is not below `subjects`.
    pub fn new(
        mut genuine: Vec<(f64, u32)>,
        mut impostor: Vec<(f64, [u32; 2])>,
        subjects: usize,
    ) -> Result<SubjectScores> {
        let invalid = |what: String| Err(Error::new(ErrorKind::InvalidInput, what));
        if genuine.is_empty() || impostor.is_empty() {
            return invalid(format!(
                "metrics need genuine and impostor scores (got {} genuine, {} impostor)",
                genuine.len(),
                impostor.len()
            ));
        }
        let scores = genuine
            .iter()
            .map(|g| g.0)
            .chain(impostor.iter().map(|i| i.0));
        if let Some(bad) = scores.into_iter().find(|s| !s.is_finite()) {
            return invalid(format!("scores must be finite numbers, found {bad}"));
        }
        let subject_numbers = genuine
            .iter()
            .map(|g| g.1)
            .chain(impostor.iter().flat_map(|i| i.1));
        if let Some(bad) = subject_numbers
            .into_iter()
            .find(|&s| s as usize >= subjects)
        {
            return invalid(format!(
                "subject {bad} is not below the {subjects} subjects"
            ));
        }
        genuine.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
        impostor.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
        let (genuine_scores, genuine_subject) = genuine.into_iter().unzip();
        let (impostor_scores, impostor_subjects) = impostor.into_iter().unzip();
        Ok(SubjectScores {
            set: ScoreSet::from_sorted(genuine_scores, impostor_scores),
            genuine_subject,
            impostor_subjects,
            subjects,
        })
    }

    /// The scores without their subjects.
    pub fn set(&self) -> &ScoreSet {
        &self.set
    }

    /// How many subjects the scores are numbered over.
    pub fn subjects(&self) -> usize {
        self.subjects
    }
}

/// What one replicate of [`subjects_bootstrap`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct SubjectReplicate {
    /// The equal error rate (as `eval::eer` defines it, on weighted comparisons).
    pub eer: f64,
    /// FNMR at each target FMR, in the order the targets were given (threshold re-chosen in
    /// the replicate, as [`crate::stats::fnmr_at_fmr`] chooses it).
    pub fnmr: Vec<f64>,
}

/// `replicates` resamples of the subjects of `scores` (as many draws as there are subjects,
/// with replacement), each measured: the EER and FNMR at each of `targets`. Spread over
/// `threads`; replicate `i` draws from its own seed derived from `seed` and `i`, so the
/// result does not depend on the thread count.
///
/// A subject drawn `k` times counts each of its genuine comparisons `k` times, and an
/// impostor comparison of subjects drawn `k` and `l` times counts `k·l` times (a subject
/// never drawn drops out with all its comparisons). A replicate whose draw leaves no genuine
/// or no impostor comparison measures nothing (`None`).
///
/// Cost of a replicate: the draw and the totals (per subject and per pair of subjects that
/// has impostor comparisons), then a walk down from the highest scores to the thresholds
/// looked for — the impostors above the EER threshold and above the threshold of the largest
/// target FMR, and the genuine scores — never a copy or sort of the scores.
pub fn subjects_bootstrap(
    scores: &SubjectScores,
    targets: &[f64],
    replicates: usize,
    seed: u64,
    threads: usize,
) -> Vec<Option<SubjectReplicate>> {
    let mut genuine_per_subject = vec![0u64; scores.subjects];
    for &s in &scores.genuine_subject {
        genuine_per_subject[s as usize] += 1;
    }
    let mut blocks: std::collections::HashMap<[u32; 2], u64> = std::collections::HashMap::new();
    for &[a, b] in &scores.impostor_subjects {
        *blocks.entry([a.min(b), a.max(b)]).or_default() += 1;
    }
    let mut blocks: Vec<([u32; 2], u64)> = blocks.into_iter().collect();
    // Sums in a fixed order, so the totals do not depend on the map's iteration order.
    blocks.sort_unstable();
    let indices: Vec<u64> = (0..replicates as u64).collect();
    crate::parallel::parallel_map(&indices, threads, &|| {}, |&i| {
        let mut rng = SplitMix64::new(seed ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93));
        let mut drawn = vec![0u32; scores.subjects];
        for _ in 0..scores.subjects {
            drawn[rng.below(scores.subjects as u64) as usize] += 1;
        }
        let weights = Weights {
            scores,
            drawn: &drawn,
        };
        let genuine_total: f64 = genuine_per_subject
            .iter()
            .zip(&drawn)
            .map(|(&n, &k)| (n * u64::from(k)) as f64)
            .sum();
        let impostor_total: f64 = blocks
            .iter()
            .map(|&([a, b], n)| {
                (n * u64::from(drawn[a as usize]) * u64::from(drawn[b as usize])) as f64
            })
            .sum();
        if genuine_total == 0.0 || impostor_total == 0.0 {
            return None;
        }
        Some(SubjectReplicate {
            eer: weights.eer(genuine_total, impostor_total),
            fnmr: weights.fnmr_at_fmr(targets, genuine_total, impostor_total),
        })
    })
}

/// The comparisons of a [`SubjectScores`] weighed by one replicate's draw.
struct Weights<'a> {
    scores: &'a SubjectScores,
    drawn: &'a [u32],
}

impl Weights<'_> {
    fn genuine(&self, i: usize) -> f64 {
        f64::from(self.drawn[self.scores.genuine_subject[i] as usize])
    }

    fn impostor(&self, i: usize) -> f64 {
        let [a, b] = self.scores.impostor_subjects[i];
        f64::from(self.drawn[a as usize]) * f64::from(self.drawn[b as usize])
    }

    /// FNMR at the lowest threshold whose weighted FMR is at most each target: the
    /// threshold lies just above the highest impostor score at which the weight of the
    /// impostors at or above it first exceeds `target × total` (every score tied with it
    /// counted together), as [`crate::stats::fnmr_at_fmr`] chooses it with unit weights.
    fn fnmr_at_fmr(&self, targets: &[f64], genuine_total: f64, impostor_total: f64) -> Vec<f64> {
        let imp = self.scores.set.impostor();
        let mut order: Vec<usize> = (0..targets.len()).collect();
        order.sort_by(|&x, &y| targets[x].total_cmp(&targets[y]));
        let mut thresholds = vec![f64::NEG_INFINITY; targets.len()];
        let (mut next, mut above, mut top) = (0, 0.0, imp.len());
        while top > 0 && next < order.len() {
            let score = imp[top - 1];
            while top > 0 && imp[top - 1] == score {
                above += self.impostor(top - 1);
                top -= 1;
            }
            while next < order.len() && above > targets[order[next]] * impostor_total {
                thresholds[order[next]] = score.next_up();
                next += 1;
            }
        }
        let genuine = self.scores.set.genuine();
        thresholds
            .iter()
            .map(|&t| {
                let below = genuine.partition_point(|&s| s < t);
                (0..below).map(|i| self.genuine(i)).sum::<f64>() / genuine_total
            })
            .collect()
    }

    /// The EER of the weighted comparisons: the curve walked down from the highest score
    /// (every distinct score a threshold) to where FMR − FNMR turns positive, interpolated as
    /// `eval::eer` does.
    fn eer(&self, genuine_total: f64, impostor_total: f64) -> f64 {
        let (genuine, imp) = (self.scores.set.genuine(), self.scores.set.impostor());
        let (mut g, mut i) = (genuine.len(), imp.len());
        // Weights of the scores at or above the current threshold.
        let (mut genuine_above, mut impostor_above) = (0.0, 0.0);
        // The point at the next higher threshold: (FMR, FNMR).
        let mut higher: Option<(f64, f64)> = None;
        loop {
            let threshold = match (g.checked_sub(1), i.checked_sub(1)) {
                (Some(x), Some(y)) => genuine[x].max(imp[y]),
                (Some(x), None) => genuine[x],
                (None, Some(y)) => imp[y],
                (None, None) => break,
            };
            while g > 0 && genuine[g - 1] == threshold {
                genuine_above += self.genuine(g - 1);
                g -= 1;
            }
            while i > 0 && imp[i - 1] == threshold {
                impostor_above += self.impostor(i - 1);
                i -= 1;
            }
            let fmr = impostor_above / impostor_total;
            let fnmr = (genuine_total - genuine_above) / genuine_total;
            let d_lo = fmr - fnmr;
            if d_lo > 0.0 {
                let Some((hi_fmr, hi_fnmr)) = higher else {
                    // FMR exceeds FNMR even at the highest threshold.
                    return (fmr + fnmr) / 2.0;
                };
                let d_hi = hi_fmr - hi_fnmr;
                let w = if d_lo != d_hi {
                    d_lo / (d_lo - d_hi)
                } else {
                    0.5
                };
                let lerp = |a: f64, b: f64| a + w * (b - a);
                return (lerp(fmr, hi_fmr) + lerp(fnmr, hi_fnmr)) / 2.0;
            }
            higher = Some((fmr, fnmr));
        }
        // FMR never exceeds FNMR: the lowest threshold's point.
        higher.map_or(0.0, |(fmr, fnmr)| (fmr + fnmr) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::percentile_interval;

    #[test]
    fn bootstrap_is_reproducible_and_brackets_the_estimate() {
        let genuine: Vec<f64> = (0..200).map(|i| 0.5 + f64::from(i) / 400.0).collect();
        let impostor: Vec<f64> = (0..2000).map(|i| f64::from(i) / 3000.0).collect();
        let set = ScoreSet::new(genuine, impostor).unwrap();
        let stat = |s: &ScoreSet| s.fnmr(0.6);
        let one = bootstrap(&set, 300, 42, 1, stat);
        let two = bootstrap(&set, 300, 42, 2, stat);
        assert_eq!(one, two, "thread count must not change the replicates");
        let interval = percentile_interval(&one).unwrap();
        let estimate = set.fnmr(0.6);
        assert!(
            interval.low < estimate && estimate < interval.high,
            "{interval:?}"
        );
        assert!(interval.high - interval.low < 0.15);
    }

    /// Scores of `subjects` people: six genuine scores each between 0.55 and 0.85, three
    /// impostor scores per pair of people between 0.2 and 0.6.
    #[cfg(feature = "eval")]
    fn people(subjects: u32) -> SubjectScores {
        let mut rng = SplitMix64::new(5);
        let mut uniform = || rng.below(1_000_000) as f64 / 1e6;
        let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
        for a in 0..subjects {
            for _ in 0..6 {
                genuine.push((0.55 + 0.3 * uniform(), a));
            }
            for b in a + 1..subjects {
                for _ in 0..3 {
                    impostor.push((0.2 + 0.4 * uniform(), [a, b]));
                }
            }
        }
        SubjectScores::new(genuine, impostor, subjects as usize).unwrap()
    }

    // Checked against the evaluation's unweighted metrics.
    #[cfg(feature = "eval")]
    #[test]
    fn unit_weights_measure_what_the_unweighted_metrics_measure() {
        let scores = people(30);
        let ones = vec![1u32; 30];
        let w = Weights {
            scores: &scores,
            drawn: &ones,
        };
        let (g, i) = (
            scores.set().genuine().len() as f64,
            scores.set().impostor().len() as f64,
        );
        assert_eq!(w.eer(g, i), crate::eval::eer(scores.set()).rate);
        let targets = [1e-2, 1e-1, 1e-3, 0.5];
        let want: Vec<f64> = targets
            .iter()
            .map(|&t| crate::stats::fnmr_at_fmr(scores.set(), t).fnmr)
            .collect();
        assert_eq!(w.fnmr_at_fmr(&targets, g, i), want);
        // Separable scores, and scores where every impostor beats every genuine one.
        for (genuine, imp) in [(0.9, 0.1), (0.1, 0.9)] {
            let s = SubjectScores::new(
                vec![(genuine, 0), (genuine + 0.01, 1)],
                vec![(imp, [0, 1]), (imp + 0.02, [0, 1])],
                2,
            )
            .unwrap();
            let w = Weights {
                scores: &s,
                drawn: &[1, 1],
            };
            assert_eq!(w.eer(2.0, 2.0), crate::eval::eer(s.set()).rate);
        }
    }

    // Checked against the evaluation's unweighted metrics.
    #[cfg(feature = "eval")]
    #[test]
    fn the_subjects_bootstrap_is_reproducible_and_brackets_the_estimate() {
        let scores = people(40);
        let targets = [1e-2, 1e-3];
        let one = subjects_bootstrap(&scores, &targets, 200, 9, 1);
        let two = subjects_bootstrap(&scores, &targets, 200, 9, 2);
        assert_eq!(one, two, "thread count must not change the replicates");
        let eers: Vec<f64> = one.iter().flatten().map(|r| r.eer).collect();
        assert_eq!(eers.len(), 200);
        let interval = percentile_interval(&eers).unwrap();
        let estimate = crate::eval::eer(scores.set()).rate;
        assert!(
            interval.low < estimate && estimate < interval.high,
            "{interval:?} {estimate}"
        );
        // A draw of one subject has no impostor comparison: nothing is measured.
        let lonely = SubjectScores::new(vec![(0.9, 0)], vec![(0.1, [0, 1])], 2).unwrap();
        let replicates = subjects_bootstrap(&lonely, &targets, 50, 1, 1);
        assert!(replicates.iter().any(Option::is_none));
        assert!(replicates.iter().flatten().all(|r| r.fnmr.len() == 2));
        assert!(SubjectScores::new(vec![(0.9, 2)], vec![(0.1, [0, 1])], 2).is_err());
        assert!(SubjectScores::new(vec![(f64::NAN, 0)], vec![(0.1, [0, 1])], 2).is_err());
    }
}
