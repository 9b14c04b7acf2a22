//! The bootstrap: resampled score sets, for the intervals of figures whose threshold comes
//! from the data (FNMR at a target FMR, the EER, a calibrated threshold).
//!
//! Assumes independent comparisons, like every interval here ([`crate::stats::interval`]).

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
}
