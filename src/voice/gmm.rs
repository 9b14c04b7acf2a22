//! Diagonal-covariance Gaussian mixtures: training a universal background model (UBM),
//! MAP adaptation of its means to a speaker, and top-C log-likelihood-ratio scoring.
//!
//! The classic text-independent recogniser (Reynolds, Quatieri & Dunn, 2000). A UBM is trained
//! once on many speakers with EM from a k-means start; a speaker's model is the UBM with its
//! means pulled towards the speaker's own frames (relevance MAP, means only); a probe scores
//! the average per-frame log-likelihood ratio between the speaker's model and the UBM, each
//! evaluated on the C components that best explain the frame under the UBM ("top-C" fast
//! scoring: the adapted model shares the UBM's weights and variances, so the same components
//! dominate in both).
//!
//! Everything is plain `f64` over row-major `frames × dims` slices; training splits frames
//! across threads.

// Index loops over components and dimensions mirror the formulas they implement.
#![allow(clippy::needless_range_loop)]

use crate::error::{Error, ErrorKind, Result};
use crate::stats::SplitMix64;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// A mixture of `components` diagonal Gaussians over `dims`-dimensional frames.
#[derive(Clone, Debug, PartialEq)]
pub struct Gmm {
    dims: usize,
    weights: Vec<f64>,
    /// `components × dims`, row-major.
    means: Vec<f64>,
    /// `components × dims`, row-major.
    variances: Vec<f64>,
    inv_variances: Vec<f64>,
    /// `ln w_k − ½ (D ln 2π + Σ_d ln σ²_kd)` per component.
    log_norms: Vec<f64>,
}

/// How a UBM is trained.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingConfig {
    /// Mixture components. By default, 64 (on LibriSpeech test-other, with the 251-recording
    /// background set, 64 gave a lower EER than 32, 128 and 256; chosen on that set).
    pub components: usize,
    /// Lloyd iterations of the k-means start. By default, 10.
    pub kmeans_iterations: usize,
    /// EM iterations. By default, 10.
    pub em_iterations: usize,
    /// Frames k-means runs on (evenly subsampled). By default, 100,000.
    pub kmeans_frames: usize,
    /// Frames EM runs on (evenly subsampled). By default, 1,000,000.
    pub max_frames: usize,
    /// Variances are kept at or above this fraction of the data's global variance per
    /// dimension, so a component cannot collapse onto a few frames. By default, 0.01.
    pub variance_floor: f64,
    /// Seed of the k-means start (training is deterministic for a given seed and data).
    pub seed: u64,
    /// Worker threads. By default, the machine's parallelism.
    pub threads: usize,
}

impl Default for TrainingConfig {
    fn default() -> TrainingConfig {
        TrainingConfig {
            components: 64,
            kmeans_iterations: 10,
            em_iterations: 10,
            kmeans_frames: 100_000,
            max_frames: 1_000_000,
            variance_floor: 0.01,
            seed: 1,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// A step of training, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TrainingStep {
    /// A k-means iteration finished: `(iteration, mean squared distance)`.
    KMeans(usize, f64),
    /// An EM iteration finished: `(iteration, average log-likelihood per frame)`.
    Em(usize, f64),
}

impl Gmm {
    /// A mixture from its parameters; weights are renormalised to sum to one.
    pub fn new(
        dims: usize,
        weights: Vec<f64>,
        means: Vec<f64>,
        variances: Vec<f64>,
    ) -> Result<Gmm> {
        let k = weights.len();
        let ok = dims > 0
            && k > 0
            && means.len() == k * dims
            && variances.len() == k * dims
            && weights.iter().all(|w| w.is_finite() && *w > 0.0)
            && means.iter().all(|m| m.is_finite())
            && variances.iter().all(|v| v.is_finite() && *v > 0.0);
        if !ok {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a mixture needs positive finite weights and variances and finite means of matching sizes",
            ));
        }
        let total: f64 = weights.iter().sum();
        let weights: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let inv_variances: Vec<f64> = variances.iter().map(|v| 1.0 / v).collect();
        let log_norms = (0..k)
            .map(|c| {
                let log_det: f64 = variances[c * dims..(c + 1) * dims]
                    .iter()
                    .map(|v| v.ln())
                    .sum();
                weights[c].ln() - 0.5 * (dims as f64 * LN_2PI + log_det)
            })
            .collect();
        Ok(Gmm {
            dims,
            weights,
            means,
            variances,
            inv_variances,
            log_norms,
        })
    }

    /// Frame dimension.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Number of components.
    pub fn components(&self) -> usize {
        self.weights.len()
    }

    /// Mixture weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Means, `components × dims`.
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    /// Variances, `components × dims`.
    pub fn variances(&self) -> &[f64] {
        &self.variances
    }

    /// `ln(w_k N(x; μ_k, Σ_k))` of component `k`, with `means` in place of the mixture's own
    /// (the UBM's for itself, a speaker's adapted means for its model).
    fn weighted_log_density(&self, means: &[f64], k: usize, x: &[f64]) -> f64 {
        let d = self.dims;
        let m = &means[k * d..(k + 1) * d];
        let p = &self.inv_variances[k * d..(k + 1) * d];
        let mut quad = 0.0;
        for i in 0..d {
            let diff = x[i] - m[i];
            quad += diff * diff * p[i];
        }
        self.log_norms[k] - 0.5 * quad
    }

    /// Log-likelihood of one frame under the mixture.
    pub fn log_likelihood(&self, x: &[f64]) -> f64 {
        let terms: Vec<f64> = (0..self.components())
            .map(|k| self.weighted_log_density(&self.means, k, x))
            .collect();
        log_sum_exp(&terms)
    }

    /// Average log-likelihood per frame of `frames` (row-major, `dims` wide).
    pub fn average_log_likelihood(&self, frames: &[f64]) -> f64 {
        let n = frames.len() / self.dims;
        if n == 0 {
            return f64::NEG_INFINITY;
        }
        frames
            .chunks_exact(self.dims)
            .map(|x| self.log_likelihood(x))
            .sum::<f64>()
            / n as f64
    }

    /// Trains a mixture on `frames` (row-major, `dims` wide): k-means from `config.seed`,
    /// then EM with variance flooring. `on_step` sees each iteration.
    pub fn train(
        frames: &[f64],
        dims: usize,
        config: &TrainingConfig,
        on_step: &mut dyn FnMut(TrainingStep),
    ) -> Result<Gmm> {
        let k = config.components;
        if dims == 0 || k == 0 || !frames.len().is_multiple_of(dims) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "training needs at least one component and whole frames",
            ));
        }
        let n = frames.len() / dims;
        if n < 10 * k {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{n} frames are too few to train {k} components (at least 10 per component)"
                ),
            ));
        }
        if frames.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "training frames must be finite",
            ));
        }
        let threads = config.threads.max(1);
        let data = subsample(frames, dims, config.max_frames);
        let (global_mean, global_var) = moments(&data, dims);
        let floor: Vec<f64> = global_var
            .iter()
            .map(|v| (v * config.variance_floor).max(1e-8))
            .collect();

        // k-means start.
        let sample = subsample(&data, dims, config.kmeans_frames.max(10 * k));
        let mut centroids = pick_distinct(&sample, dims, k, config.seed);
        let mut assignment = vec![0usize; sample.len() / dims];
        for iteration in 0..config.kmeans_iterations {
            let distortion = assign(&sample, dims, &centroids, &mut assignment, threads);
            recentre(
                &sample,
                dims,
                &assignment,
                &mut centroids,
                config.seed ^ iteration as u64,
            );
            on_step(TrainingStep::KMeans(iteration + 1, distortion));
        }
        assign(&sample, dims, &centroids, &mut assignment, threads);
        let mut counts = vec![0f64; k];
        let mut variances = vec![0f64; k * dims];
        for (t, &c) in assignment.iter().enumerate() {
            counts[c] += 1.0;
            for i in 0..dims {
                variances[c * dims + i] += (sample[t * dims + i] - centroids[c * dims + i]).powi(2);
            }
        }
        for c in 0..k {
            for i in 0..dims {
                let v = &mut variances[c * dims + i];
                *v = if counts[c] > 1.0 {
                    (*v / counts[c]).max(floor[i])
                } else {
                    global_var[i].max(floor[i])
                };
            }
        }
        let weights: Vec<f64> = counts.iter().map(|c| c.max(1.0)).collect();
        let mut gmm = Gmm::new(dims, weights, centroids, variances)?;

        // EM.
        for iteration in 0..config.em_iterations {
            let stats = gmm.accumulate(&data, threads);
            let total: f64 = stats.occupancy.iter().sum();
            let mut weights = Vec::with_capacity(k);
            let mut means = Vec::with_capacity(k * dims);
            let mut variances = Vec::with_capacity(k * dims);
            for c in 0..k {
                let n_c = stats.occupancy[c];
                if n_c < 1e-3 * total / k as f64 {
                    // A starved component: restart it on the global distribution, lightly.
                    weights.push(1e-3 / k as f64);
                    means.extend_from_slice(&global_mean);
                    variances.extend_from_slice(&global_var);
                    continue;
                }
                weights.push(n_c / total);
                for i in 0..dims {
                    let mean = stats.first[c * dims + i] / n_c;
                    means.push(mean);
                    variances.push((stats.second[c * dims + i] / n_c - mean * mean).max(floor[i]));
                }
            }
            gmm = Gmm::new(dims, weights, means, variances)?;
            on_step(TrainingStep::Em(
                iteration + 1,
                stats.log_likelihood / (data.len() / dims) as f64,
            ));
        }
        Ok(gmm)
    }

    /// Zeroth, first and second-order statistics of `frames` under the mixture (E-step).
    fn accumulate(&self, frames: &[f64], threads: usize) -> Stats {
        let (k, d) = (self.components(), self.dims);
        let n = frames.len() / d;
        let per_thread = n.div_ceil(threads.max(1)).max(1);
        let parts: Vec<Stats> = std::thread::scope(|scope| {
            let handles: Vec<_> = frames
                .chunks(per_thread * d)
                .map(|chunk| {
                    scope.spawn(move || {
                        let mut stats = Stats::zeros(k, d);
                        let mut post = vec![0f64; k];
                        for x in chunk.chunks_exact(d) {
                            for (c, p) in post.iter_mut().enumerate() {
                                *p = self.weighted_log_density(&self.means, c, x);
                            }
                            let total = log_sum_exp(&post);
                            stats.log_likelihood += total;
                            for (c, p) in post.iter().enumerate() {
                                let g = (p - total).exp();
                                if g < 1e-10 {
                                    continue;
                                }
                                stats.occupancy[c] += g;
                                let (f, s) = (
                                    &mut stats.first[c * d..(c + 1) * d],
                                    &mut stats.second[c * d..(c + 1) * d],
                                );
                                for i in 0..d {
                                    f[i] += g * x[i];
                                    s[i] += g * x[i] * x[i];
                                }
                            }
                        }
                        stats
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Stats::zeros(k, d)))
                .collect()
        });
        let mut total = Stats::zeros(k, d);
        for part in parts {
            total.add(&part);
        }
        total
    }

    /// Relevance-MAP adaptation of the means to `frames`:
    /// `μ'_k = α_k E_k[x] + (1 − α_k) μ_k` with `α_k = n_k / (n_k + relevance)`.
    pub fn adapt_means(&self, frames: &[f64], relevance: f64) -> Vec<f64> {
        let (k, d) = (self.components(), self.dims);
        let stats = self.accumulate(frames, 1);
        let mut adapted = self.means.clone();
        for c in 0..k {
            let n_c = stats.occupancy[c];
            if n_c <= 0.0 {
                continue;
            }
            let alpha = n_c / (n_c + relevance);
            for i in 0..d {
                let e = stats.first[c * d + i] / n_c;
                adapted[c * d + i] = alpha * e + (1.0 - alpha) * self.means[c * d + i];
            }
        }
        adapted
    }

    /// The `top` best UBM components of every frame and the frame's UBM log-likelihood over
    /// them: what scoring any number of adapted models against this probe needs.
    pub fn prepare(&self, frames: &[f64], top: usize) -> Prepared {
        let (k, d) = (self.components(), self.dims);
        let top = top.clamp(1, k);
        let n = frames.len() / d;
        let mut best = Vec::with_capacity(n * top);
        let mut ubm = Vec::with_capacity(n);
        let mut scored: Vec<(f64, u32)> = Vec::with_capacity(k);
        let mut terms = Vec::with_capacity(top);
        for x in frames.chunks_exact(d) {
            scored.clear();
            scored.extend((0..k).map(|c| (self.weighted_log_density(&self.means, c, x), c as u32)));
            scored.select_nth_unstable_by(top - 1, |a, b| b.0.total_cmp(&a.0));
            terms.clear();
            for &(ll, c) in &scored[..top] {
                best.push(c);
                terms.push(ll);
            }
            ubm.push(log_sum_exp(&terms));
        }
        Prepared {
            frames: frames.to_vec(),
            dims: d,
            top,
            best,
            ubm,
        }
    }

    /// Average per-frame log-likelihood ratio of the model with `adapted` means against the
    /// UBM, over each frame's top components.
    pub fn llr(&self, adapted: &[f64], probe: &Prepared) -> f64 {
        let n = probe.ubm.len();
        if n == 0 || adapted.len() != self.means.len() {
            return f64::NEG_INFINITY;
        }
        let mut terms = Vec::with_capacity(probe.top);
        let mut sum = 0.0;
        for t in 0..n {
            let x = &probe.frames[t * probe.dims..(t + 1) * probe.dims];
            terms.clear();
            for &c in &probe.best[t * probe.top..(t + 1) * probe.top] {
                terms.push(self.weighted_log_density(adapted, c as usize, x));
            }
            sum += log_sum_exp(&terms) - probe.ubm[t];
        }
        sum / n as f64
    }
}

/// A probe analysed for a GMM-UBM: its frames with their top components, and the mean and
/// standard deviation of its scores against the UBM's cohort (T-norm), computed once.
#[derive(Clone, Debug)]
pub struct GmmProbe {
    pub(crate) prepared: Prepared,
    pub(crate) cohort_mean: f64,
    pub(crate) cohort_std: f64,
}

/// A probe's frames with their top UBM components ([`Gmm::prepare`]). Biometric data: wiped
/// on drop, redacted in `Debug`.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct Prepared {
    frames: Vec<f64>,
    dims: usize,
    top: usize,
    best: Vec<u32>,
    ubm: Vec<f64>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Prepared({} frames × {}, redacted)",
            self.ubm.len(),
            self.dims
        )
    }
}

impl Prepared {
    /// The frames, row-major.
    pub fn values(&self) -> &[f64] {
        &self.frames
    }

    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.ubm.len()
    }
}

struct Stats {
    occupancy: Vec<f64>,
    first: Vec<f64>,
    second: Vec<f64>,
    log_likelihood: f64,
}

impl Stats {
    fn zeros(k: usize, d: usize) -> Stats {
        Stats {
            occupancy: vec![0.0; k],
            first: vec![0.0; k * d],
            second: vec![0.0; k * d],
            log_likelihood: 0.0,
        }
    }

    fn add(&mut self, other: &Stats) {
        for (a, b) in self.occupancy.iter_mut().zip(&other.occupancy) {
            *a += b;
        }
        for (a, b) in self.first.iter_mut().zip(&other.first) {
            *a += b;
        }
        for (a, b) in self.second.iter_mut().zip(&other.second) {
            *a += b;
        }
        self.log_likelihood += other.log_likelihood;
    }
}

/// `ln Σ exp(v)`, computed stably.
fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// At most `max` frames, evenly spaced (all of them when there are fewer).
fn subsample(frames: &[f64], dims: usize, max: usize) -> Vec<f64> {
    let n = frames.len() / dims;
    if n <= max {
        return frames.to_vec();
    }
    let mut out = Vec::with_capacity(max * dims);
    for i in 0..max {
        let t = i * n / max;
        out.extend_from_slice(&frames[t * dims..(t + 1) * dims]);
    }
    out
}

fn moments(frames: &[f64], dims: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (frames.len() / dims).max(1) as f64;
    let mut mean = vec![0.0; dims];
    for x in frames.chunks_exact(dims) {
        for i in 0..dims {
            mean[i] += x[i];
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0; dims];
    for x in frames.chunks_exact(dims) {
        for i in 0..dims {
            var[i] += (x[i] - mean[i]).powi(2);
        }
    }
    var.iter_mut().for_each(|v| *v = (*v / n).max(1e-8));
    (mean, var)
}

/// `k` frames drawn without replacement as the first centroids.
fn pick_distinct(frames: &[f64], dims: usize, k: usize, seed: u64) -> Vec<f64> {
    let n = frames.len() / dims;
    let mut rng = SplitMix64::new(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..k.min(n) {
        let j = i + rng.below((n - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut out = Vec::with_capacity(k * dims);
    for &t in order.iter().take(k) {
        out.extend_from_slice(&frames[t * dims..(t + 1) * dims]);
    }
    out
}

/// Nearest centroid of every frame; returns the mean squared distance.
fn assign(
    frames: &[f64],
    dims: usize,
    centroids: &[f64],
    assignment: &mut [usize],
    threads: usize,
) -> f64 {
    let n = frames.len() / dims;
    let per_thread = n.div_ceil(threads.max(1)).max(1);
    let total: f64 = std::thread::scope(|scope| {
        let handles: Vec<_> = frames
            .chunks(per_thread * dims)
            .zip(assignment.chunks_mut(per_thread))
            .map(|(chunk, out)| {
                scope.spawn(move || {
                    let mut sum = 0.0;
                    for (x, a) in chunk.chunks_exact(dims).zip(out.iter_mut()) {
                        let mut best = (f64::INFINITY, 0);
                        for (c, m) in centroids.chunks_exact(dims).enumerate() {
                            let dist: f64 = x.iter().zip(m).map(|(a, b)| (a - b) * (a - b)).sum();
                            if dist < best.0 {
                                best = (dist, c);
                            }
                        }
                        *a = best.1;
                        sum += best.0;
                    }
                    sum
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    });
    total / n.max(1) as f64
}

/// Moves every centroid to the mean of its frames; an empty cluster restarts on a random
/// frame.
fn recentre(frames: &[f64], dims: usize, assignment: &[usize], centroids: &mut [f64], seed: u64) {
    let k = centroids.len() / dims;
    let mut sums = vec![0.0; k * dims];
    let mut counts = vec![0usize; k];
    for (t, &c) in assignment.iter().enumerate() {
        counts[c] += 1;
        for i in 0..dims {
            sums[c * dims + i] += frames[t * dims + i];
        }
    }
    let mut rng = SplitMix64::new(seed.wrapping_add(0x5EED));
    let n = assignment.len();
    for c in 0..k {
        if counts[c] == 0 {
            let t = rng.below(n as u64) as usize;
            centroids[c * dims..(c + 1) * dims].copy_from_slice(&frames[t * dims..(t + 1) * dims]);
        } else {
            for i in 0..dims {
                centroids[c * dims + i] = sums[c * dims + i] / counts[c] as f64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames from two well-separated 2-d Gaussians (a fixed pseudo-random stream).
    fn two_clusters(n: usize) -> Vec<f64> {
        let mut rng = SplitMix64::new(7);
        let mut uniform = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let mut out = Vec::new();
        for i in 0..n {
            // Box-Muller
            let (u, v) = (uniform().max(1e-12), uniform());
            let r = (-2.0 * u.ln()).sqrt();
            let (a, b) = (
                r * (std::f64::consts::TAU * v).cos(),
                r * (std::f64::consts::TAU * v).sin(),
            );
            if i % 4 == 0 {
                out.extend([5.0 + 0.5 * a, -3.0 + 0.5 * b]);
            } else {
                out.extend([-2.0 + a, 1.0 + 2.0 * b]);
            }
        }
        out
    }

    #[test]
    fn em_recovers_two_gaussians() {
        let frames = two_clusters(4000);
        let config = TrainingConfig {
            components: 2,
            threads: 2,
            ..TrainingConfig::default()
        };
        let mut steps = Vec::new();
        let gmm = Gmm::train(&frames, 2, &config, &mut |s| steps.push(s)).unwrap();
        let small = if gmm.weights()[0] < gmm.weights()[1] {
            0
        } else {
            1
        };
        let big = 1 - small;
        assert!(
            (gmm.weights()[small] - 0.25).abs() < 0.02,
            "{:?}",
            gmm.weights()
        );
        assert!((gmm.means()[small * 2] - 5.0).abs() < 0.1);
        assert!((gmm.means()[small * 2 + 1] + 3.0).abs() < 0.1);
        assert!((gmm.means()[big * 2] + 2.0).abs() < 0.1);
        assert!((gmm.variances()[big * 2 + 1] - 4.0).abs() < 0.4);
        // EM never decreases the likelihood.
        let em: Vec<f64> = steps
            .iter()
            .filter_map(|s| match s {
                TrainingStep::Em(_, ll) => Some(*ll),
                TrainingStep::KMeans(..) => None,
            })
            .collect();
        assert_eq!(em.len(), config.em_iterations);
        assert!(em.windows(2).all(|w| w[1] >= w[0] - 1e-9), "{em:?}");
    }

    #[test]
    fn training_is_deterministic_for_a_seed() {
        let frames = two_clusters(2000);
        let config = TrainingConfig {
            components: 4,
            em_iterations: 3,
            threads: 2,
            ..TrainingConfig::default()
        };
        let a = Gmm::train(&frames, 2, &config, &mut |_| {}).unwrap();
        let b = Gmm::train(&frames, 2, &config, &mut |_| {}).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn map_adaptation_moves_means_towards_the_speaker_and_raises_the_llr() {
        let frames = two_clusters(4000);
        let config = TrainingConfig {
            components: 2,
            threads: 1,
            ..TrainingConfig::default()
        };
        let ubm = Gmm::train(&frames, 2, &config, &mut |_| {}).unwrap();
        // A "speaker" whose frames sit a little off the big cluster.
        let speaker: Vec<f64> = two_clusters(800)
            .chunks(2)
            .flat_map(|x| [x[0] + 0.8, x[1] - 0.5])
            .collect();
        let adapted = ubm.adapt_means(&speaker, 16.0);
        assert_ne!(adapted, ubm.means());
        let own = ubm.prepare(&speaker, 2);
        let other = ubm.prepare(&two_clusters(800), 2);
        assert!(ubm.llr(&adapted, &own) > 0.0);
        assert!(ubm.llr(&adapted, &own) > ubm.llr(&adapted, &other));
        // The UBM against itself: a ratio of zero.
        assert!(ubm.llr(ubm.means(), &own).abs() < 1e-12);
    }

    #[test]
    fn too_little_or_non_finite_data_is_refused() {
        let config = TrainingConfig {
            components: 8,
            ..TrainingConfig::default()
        };
        let e = Gmm::train(&[0.0; 20], 2, &config, &mut |_| {}).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let mut frames = two_clusters(1000);
        frames[5] = f64::NAN;
        assert!(Gmm::train(&frames, 2, &config, &mut |_| {}).is_err());
        assert!(Gmm::new(2, vec![1.0], vec![0.0, 0.0], vec![1.0, 0.0]).is_err());
    }
}
