//! Fusing several models' scores of one comparison into one: each score standardised by the
//! impostors' mean and deviation on fitting data, then a logistic regression
//! ([`crate::stats::logistic`]) whose log-odds is the fused score — a weighted sum of the
//! models' evidence, calibrated as a whole. Standardising first keeps the L2 penalty fair
//! between models whose scores live on different scales (a cosine near 0.8, a normalised
//! log-likelihood ratio near 10).
//!
//! A fusion is part of a calibration file ([`super::Calibration::fusion`]): the file names the
//! models it fuses, in order, and its thresholds apply to the fused score. Used for the speaker
//! score (the voice encoder and the GMM-UBM) and for the face score of the policy tiers that
//! ask for it (the face embedder and the fused embedders). Calibrates; never decides.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// A fitted fusion of several models' scores.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreFusion {
    /// The models whose scores are fused (`name@sha256-prefix`), in the order of the scores.
    pub models: Vec<String>,
    /// The fitting impostors' mean score, per model.
    pub impostor_mean: Vec<f64>,
    /// The fitting impostors' score deviation, per model.
    pub impostor_sd: Vec<f64>,
    /// Weights of the standardised scores.
    pub weights: Vec<f64>,
    /// Intercept.
    pub bias: f64,
}

/// The L2 penalty of the fit: small, only there to keep separable data finite.
const L2: f64 = 1e-3;

impl ScoreFusion {
    /// Fits the fusion of `models` on `rows`: each model's score of one trial and whether the
    /// trial is genuine. Rows without one score per model, or data without impostors or
    /// without genuine trials, is [`ErrorKind::InvalidInput`].
    pub fn fit(models: &[String], rows: &[(&[f64], bool)]) -> Result<ScoreFusion> {
        let ids = models.to_vec();
        let models = models.len();
        if models == 0 || rows.iter().any(|(s, _)| s.len() != models) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "score fusion needs trials with one score per model",
            ));
        }
        let impostors: Vec<&[f64]> = rows.iter().filter(|(_, g)| !g).map(|(s, _)| *s).collect();
        if impostors.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "score fusion needs impostor trials",
            ));
        }
        let n = impostors.len() as f64;
        let impostor_mean: Vec<f64> = (0..models)
            .map(|m| impostors.iter().map(|s| s[m]).sum::<f64>() / n)
            .collect();
        let impostor_sd: Vec<f64> = (0..models)
            .map(|m| {
                let var = impostors
                    .iter()
                    .map(|s| (s[m] - impostor_mean[m]).powi(2))
                    .sum::<f64>()
                    / n;
                var.sqrt().max(1e-9)
            })
            .collect();
        let mut fusion = ScoreFusion {
            models: ids,
            impostor_mean,
            impostor_sd,
            weights: Vec::new(),
            bias: 0.0,
        };
        let x: Vec<Vec<f64>> = rows.iter().map(|(s, _)| fusion.standardised(s)).collect();
        let labels: Vec<bool> = rows.iter().map(|(_, g)| *g).collect();
        let fitted = crate::stats::logistic::fit(&x, &labels, L2)?;
        fusion.weights = fitted.weights;
        fusion.bias = fitted.bias;
        Ok(fusion)
    }

    fn standardised(&self, scores: &[f64]) -> Vec<f64> {
        scores
            .iter()
            .zip(self.impostor_mean.iter().zip(&self.impostor_sd))
            .map(|(s, (m, sd))| (s - m) / sd)
            .collect()
    }

    /// "weights [2.988, 0.684], bias -5.953": what a reader checks of a fit.
    pub fn describe(&self) -> String {
        let weights: Vec<String> = self.weights.iter().map(|w| format!("{w:.3}")).collect();
        format!("weights [{}], bias {:.3}", weights.join(", "), self.bias)
    }

    /// The fused score (log-odds) of one trial's scores, one per model in the order of
    /// [`ScoreFusion::models`].
    pub fn score(&self, scores: &[f64]) -> f64 {
        self.standardised(scores)
            .iter()
            .zip(&self.weights)
            .map(|(z, w)| z * w)
            .sum::<f64>()
            + self.bias
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_useful_and_a_useless_model_are_weighted_apart() {
        // Model 0 separates the classes (scores 0.9 vs 0.5 on a cosine scale), model 1 is
        // noise on a scale a hundred times larger.
        let mut rows = Vec::new();
        for i in 0..200 {
            let noise = f64::from((i * 37 % 101) as u8) - 50.0;
            let genuine = i % 2 == 0;
            let jitter = f64::from((i * 13 % 11) as u8) / 100.0;
            rows.push((
                vec![if genuine { 0.85 } else { 0.55 } + jitter, noise],
                genuine,
            ));
        }
        let refs: Vec<(&[f64], bool)> = rows.iter().map(|(s, g)| (s.as_slice(), *g)).collect();
        let models = ["a@1".to_string(), "b@2".to_string()];
        let fusion = ScoreFusion::fit(&models, &refs).unwrap();
        assert!(
            fusion.weights[0] > 10.0 * fusion.weights[1].abs(),
            "{fusion:?}"
        );
        assert!(fusion.score(&[0.9, 0.0]) > fusion.score(&[0.5, 0.0]));
        assert!(ScoreFusion::fit(&models, &refs[..0]).is_err());
        assert!(ScoreFusion::fit(&models[..1], &refs).is_err());
        let only_genuine: Vec<(&[f64], bool)> = refs.iter().copied().filter(|r| r.1).collect();
        assert!(ScoreFusion::fit(&models, &only_genuine).is_err());
    }
}
