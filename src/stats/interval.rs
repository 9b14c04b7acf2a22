//! Confidence intervals for error rates: Wilson intervals for a rate at a fixed threshold, and
//! percentile intervals of bootstrap replicates ([`mod@crate::stats::bootstrap`]) for figures whose
//! threshold itself comes from the data (FNMR at a target FMR, the EER).
//!
//! Both assume independent comparisons. Pairs that share an image or a subject are correlated,
//! so on pair lists built from few people the true uncertainty is wider than these intervals;
//! reports say so next to them.

use serde::Serialize;

/// Coverage of every interval this module computes.
pub const CONFIDENCE: f64 = 0.95;

/// A two-sided interval at [`CONFIDENCE`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of a binomial proportion `errors / trials` (sound at 0 and at
/// `trials`, where the normal approximation collapses to a point). `None` without trials.
pub fn wilson(errors: usize, trials: usize) -> Option<Interval> {
    if trials == 0 {
        return None;
    }
    let n = trials as f64;
    let p = errors as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval {
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// The percentile interval at [`CONFIDENCE`] of bootstrap replicate values (non-finite values,
/// e.g. "no threshold", are left out). `None` when no replicate gave a finite value.
pub fn percentile_interval(values: &[f64]) -> Option<Interval> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    Some(Interval {
        low: quantile_sorted(&v, tail),
        high: quantile_sorted(&v, 1.0 - tail),
    })
}

/// Linear interpolation between order statistics (NumPy's default "linear" method).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_hand_computed_values() {
        // 0 of 10: [0, z²/(n+z²)] = [0, 0.27753].
        let i = wilson(0, 10).unwrap();
        assert_eq!(i.low, 0.0);
        assert!((i.high - 0.277_532).abs() < 1e-5, "{i:?}");
        // 5 of 10: symmetric around 0.5, [0.23659, 0.76341].
        let i = wilson(5, 10).unwrap();
        assert!((i.low - 0.236_593).abs() < 1e-5 && (i.high - 0.763_407).abs() < 1e-5);
        assert!(wilson(3, 0).is_none());
    }

    #[test]
    fn percentiles_skip_non_finite_values() {
        assert!(percentile_interval(&[f64::NAN, f64::INFINITY]).is_none());
        let i = percentile_interval(&[1.0, 2.0, 3.0, f64::NAN]).unwrap();
        assert!((i.low - 1.05).abs() < 1e-12 && (i.high - 2.95).abs() < 1e-12);
    }
}
