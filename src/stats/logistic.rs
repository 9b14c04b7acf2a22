//! L2-penalised logistic regression fitted by Newton's method (iteratively reweighted least
//! squares): the learned fusion of several models' scores into one probability.
//!
//! Deterministic (no random start, no data order effect beyond floating-point sums in input
//! order) and small: the problems it serves have a handful of features and a few thousand
//! rows, where Newton converges in about ten steps. The penalty `l2 / 2 · ‖w‖²` (the bias is
//! not penalised) keeps the weights finite when the classes are separable, which a good
//! detector on a small development set often is.

use crate::error::{Error, ErrorKind, Result};

/// Newton steps before the fit gives up improving (it has converged long before on any
/// problem this crate poses).
const MAX_STEPS: usize = 100;

/// The fit stops when no coefficient moves by more than this in a step.
const TOLERANCE: f64 = 1e-10;

/// A fitted logistic model: `p(positive | x) = σ(w · x + b)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Logistic {
    /// One weight per feature.
    pub weights: Vec<f64>,
    /// The intercept.
    pub bias: f64,
}

impl Logistic {
    /// The linear predictor `w · x + b` (log-odds of the positive class).
    pub fn log_odds(&self, x: &[f64]) -> f64 {
        self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + self.bias
    }

    /// The probability of the positive class.
    pub fn probability(&self, x: &[f64]) -> f64 {
        sigmoid(self.log_odds(x))
    }
}

/// The logistic function, stable at both tails.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Fits `p(positive | x)` to rows `x` (each the same length) labelled `positive`, with the
/// L2 penalty `l2` on the weights.
///
/// Errors ([`ErrorKind::InvalidInput`]): no rows, rows of different or zero length, a label
/// count that differs from the row count, a non-finite feature, a negative or non-finite
/// penalty, or rows of one class only (there is nothing to separate).
// matrix code: the indices are the mathematics, clearer than zipped iterators
#[allow(clippy::needless_range_loop)]
pub fn fit(x: &[Vec<f64>], positive: &[bool], l2: f64) -> Result<Logistic> {
    let bad = |what: String| Err(Error::new(ErrorKind::InvalidInput, what));
    let Some(first) = x.first() else {
        return bad("a logistic fit needs at least one row".into());
    };
    let d = first.len();
    if d == 0 {
        return bad("a logistic fit needs at least one feature".into());
    }
    if positive.len() != x.len() {
        return bad(format!("{} labels for {} rows", positive.len(), x.len()));
    }
    if let Some(i) = x.iter().position(|row| row.len() != d) {
        return bad(format!(
            "row {} has {} features, row 1 has {d}",
            i + 1,
            x[i].len()
        ));
    }
    if let Some(i) = x.iter().position(|row| row.iter().any(|v| !v.is_finite())) {
        return bad(format!(
            "row {} has a feature that is not a finite number",
            i + 1
        ));
    }
    if !(l2.is_finite() && l2 >= 0.0) {
        return bad(format!(
            "the L2 penalty must be finite and non-negative, got {l2}"
        ));
    }
    let positives = positive.iter().filter(|&&p| p).count();
    if positives == 0 || positives == x.len() {
        return bad(format!(
            "a logistic fit needs rows of both classes, got {positives} positive of {}",
            x.len()
        ));
    }
    // coefficients: d weights, then the bias (feature 1 on every row)
    let k = d + 1;
    let mut beta = vec![0.0; k];
    // start the bias at the class log-odds, so the first step starts from the base rate
    let prior = positives as f64 / x.len() as f64;
    beta[d] = (prior / (1.0 - prior)).ln();
    let mut loss = objective(x, positive, &beta, l2);
    for _ in 0..MAX_STEPS {
        let mut gradient = vec![0.0; k];
        let mut hessian = vec![vec![0.0; k]; k];
        for (row, &y) in x.iter().zip(positive) {
            let p = sigmoid(dot(row, &beta));
            let residual = p - f64::from(u8::from(y));
            let w = (p * (1.0 - p)).max(1e-12);
            for i in 0..k {
                let xi = feature(row, i);
                gradient[i] += residual * xi;
                for j in 0..=i {
                    hessian[i][j] += w * xi * feature(row, j);
                }
            }
        }
        for i in 0..d {
            gradient[i] += l2 * beta[i];
            hessian[i][i] += l2;
        }
        for i in 0..k {
            for j in 0..i {
                hessian[j][i] = hessian[i][j];
            }
            // a tiny ridge keeps the system solvable when a feature is constant
            hessian[i][i] += 1e-9;
        }
        let Some(step) = solve(hessian, gradient) else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the logistic fit's Newton system is singular (features linearly dependent?)",
            ));
        };
        // step halving: Newton's step can overshoot on nearly separable data
        let mut scale = 1.0;
        let mut next: Vec<f64>;
        let mut next_loss;
        loop {
            next = beta.iter().zip(&step).map(|(b, s)| b - scale * s).collect();
            next_loss = objective(x, positive, &next, l2);
            if next_loss <= loss || scale < 1e-6 {
                break;
            }
            scale /= 2.0;
        }
        let moved = beta
            .iter()
            .zip(&next)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        if next_loss <= loss {
            beta = next;
            loss = next_loss;
        }
        if moved < TOLERANCE || scale < 1e-6 {
            break;
        }
    }
    if beta.iter().any(|b| !b.is_finite()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the logistic fit diverged; raise the L2 penalty",
        ));
    }
    let bias = beta[d];
    beta.truncate(d);
    Ok(Logistic {
        weights: beta,
        bias,
    })
}

/// Feature `i` of a row with the constant bias feature appended.
fn feature(row: &[f64], i: usize) -> f64 {
    row.get(i).copied().unwrap_or(1.0)
}

fn dot(row: &[f64], beta: &[f64]) -> f64 {
    let d = row.len();
    row.iter().zip(beta).map(|(x, b)| x * b).sum::<f64>() + beta[d]
}

/// The penalised negative log-likelihood.
fn objective(x: &[Vec<f64>], positive: &[bool], beta: &[f64], l2: f64) -> f64 {
    let d = beta.len() - 1;
    let mut sum = 0.0;
    for (row, &y) in x.iter().zip(positive) {
        let z = dot(row, beta);
        // −log σ(z) for positives, −log σ(−z) for negatives, without overflow
        let margin = if y { z } else { -z };
        sum += if margin > 0.0 {
            (-margin).exp().ln_1p()
        } else {
            -margin + margin.exp().ln_1p()
        };
    }
    sum + 0.5 * l2 * beta[..d].iter().map(|b| b * b).sum::<f64>()
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting; `None` when singular.
#[allow(clippy::needless_range_loop)]
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        let p = a[pivot][col].abs();
        if p.is_nan() || p <= 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            for j in col..n {
                a[row][j] -= f * a[col][j];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|j| a[row][j] * x[j]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    /// `n` rows of two features: positives around (+1, +0.5), negatives around (−1, −0.5),
    /// with uniform noise of half-width `noise`.
    fn two_clouds(n: usize, noise: f64, seed: u64) -> (Vec<Vec<f64>>, Vec<bool>) {
        let mut rng = SplitMix64::new(seed);
        let mut u = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let s = if i % 2 == 0 { 1.0 } else { -1.0 };
            x.push(vec![s + noise * u(), 0.5 * s + noise * u()]);
            y.push(s > 0.0);
        }
        (x, y)
    }

    #[test]
    fn separable_data_gets_finite_weights_that_separate() {
        let (x, y) = two_clouds(200, 0.5, 1);
        let m = fit(&x, &y, 1.0).unwrap();
        assert!(m.weights.iter().all(|w| w.is_finite() && *w > 0.0), "{m:?}");
        for (row, &label) in x.iter().zip(&y) {
            assert_eq!(m.probability(row) > 0.5, label);
        }
        // a larger penalty shrinks the weights
        let shrunk = fit(&x, &y, 100.0).unwrap();
        assert!(shrunk.weights[0] < m.weights[0]);
    }

    #[test]
    fn noisy_data_recovers_a_known_model() {
        // labels drawn from σ(2·x0 − 1·x1 + 0.5): the fit comes back near those coefficients
        let mut rng = SplitMix64::new(7);
        let mut u = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let truth = Logistic {
            weights: vec![2.0, -1.0],
            bias: 0.5,
        };
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..20_000 {
            let row = vec![4.0 * u() - 2.0, 4.0 * u() - 2.0];
            y.push(u() < truth.probability(&row));
            x.push(row);
        }
        let m = fit(&x, &y, 0.0).unwrap();
        assert!((m.weights[0] - 2.0).abs() < 0.1, "{m:?}");
        assert!((m.weights[1] + 1.0).abs() < 0.1, "{m:?}");
        assert!((m.bias - 0.5).abs() < 0.1, "{m:?}");
    }

    #[test]
    fn the_fit_is_deterministic() {
        let (x, y) = two_clouds(300, 1.5, 3);
        let a = fit(&x, &y, 0.5).unwrap();
        let b = fit(&x, &y, 0.5).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.weights.iter().map(|w| w.to_bits()).collect::<Vec<_>>(),
            b.weights.iter().map(|w| w.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_constant_feature_does_not_break_the_fit() {
        let (mut x, y) = two_clouds(100, 1.0, 5);
        for row in &mut x {
            row.push(3.0);
        }
        let m = fit(&x, &y, 1.0).unwrap();
        assert!(m.weights.iter().all(|w| w.is_finite()));
    }

    #[test]
    fn degenerate_input_is_a_typed_error() {
        let (x, y) = two_clouds(10, 0.1, 9);
        let cases: Vec<(Vec<Vec<f64>>, Vec<bool>, f64)> = vec![
            (vec![], vec![], 1.0),
            (x.clone(), vec![true; 10], 1.0),
            (x.clone(), vec![false; 10], 1.0),
            (x.clone(), y[..9].to_vec(), 1.0),
            (
                {
                    let mut nan = x.clone();
                    nan[3][1] = f64::NAN;
                    nan
                },
                y.clone(),
                1.0,
            ),
            (
                {
                    let mut inf = x.clone();
                    inf[0][0] = f64::INFINITY;
                    inf
                },
                y.clone(),
                1.0,
            ),
            (
                {
                    let mut ragged = x.clone();
                    ragged[2].pop();
                    ragged
                },
                y.clone(),
                1.0,
            ),
            (vec![vec![]; 10], y.clone(), 1.0),
            (x.clone(), y.clone(), -1.0),
            (x.clone(), y.clone(), f64::NAN),
        ];
        for (i, (x, y, l2)) in cases.into_iter().enumerate() {
            let err = fit(&x, &y, l2).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "case {i}: {err}");
        }
    }

    #[test]
    fn sigmoid_is_stable_at_the_tails() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(800.0) == 1.0 && sigmoid(-800.0) == 0.0);
        assert!((sigmoid(2.0) + sigmoid(-2.0) - 1.0).abs() < 1e-15);
    }
}
