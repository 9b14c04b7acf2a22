//! The learned fusion of the liveness models' scores: a logistic regression on the logits of
//! each model's live probability, learned on development data (`vouch calibrate liveness`,
//! [`crate::score::liveness`]) and applied per frame.
//!
//! Why learned: the models' probabilities are not on one scale (MiniFASNet saturates near 0
//! and 1, face-antispoof is a sigmoid of another training set), so their plain mean weighs
//! them by how confident each tends to be, not by how right. A logistic regression on the
//! logits weighs each model by how much it separates bona fide from attacks on the data it
//! was learned on, and its output is again a probability of "live".
//!
//! Evidence only: the fused score is a score. The threshold it is held to is the decision
//! module's (the calibration file's threshold reaches it through the configuration).

use crate::error::{Error, ErrorKind, Result};
use crate::stats::logistic::{Logistic, sigmoid};

/// Probabilities are clamped to `[LOGIT_CLAMP, 1 − LOGIT_CLAMP]` before their logit is taken:
/// a model saturated at exactly 0 or 1 (common in `f32`) would otherwise give an infinite
/// feature, and one saturated model must not be able to outvote every other without bound.
/// The logit of the bound is ±11.5.
pub const LOGIT_CLAMP: f64 = 1e-5;

/// The feature a model's live probability becomes: its logit, clamped (see [`LOGIT_CLAMP`]).
/// A non-finite probability becomes 0 (no opinion), so it cannot turn the fusion into NaN.
pub fn live_logit(p: f32) -> f64 {
    let p = f64::from(p);
    if !p.is_finite() {
        return 0.0;
    }
    let p = p.clamp(LOGIT_CLAMP, 1.0 - LOGIT_CLAMP);
    (p / (1.0 - p)).ln()
}

/// A learned fusion of named models' live probabilities into one live probability.
#[derive(Clone, Debug, PartialEq)]
pub struct LivenessFusion {
    models: Vec<String>,
    model: Logistic,
}

impl LivenessFusion {
    /// A fusion of `models` (ids, `name@sha256-prefix`, in the order the scores come) with one
    /// weight per model on its [`live_logit`], plus `bias`.
    ///
    /// Errors ([`ErrorKind::Config`]): no model, a weight count that differs from the model
    /// count, a model named twice, or a weight or bias that is not finite.
    pub fn new(models: Vec<String>, weights: Vec<f64>, bias: f64) -> Result<LivenessFusion> {
        let bad = |what: String| Err(Error::new(ErrorKind::Config, what));
        if models.is_empty() {
            return bad("a liveness fusion names no model".into());
        }
        if weights.len() != models.len() {
            return bad(format!(
                "a liveness fusion of {} models has {} weights",
                models.len(),
                weights.len()
            ));
        }
        if (1..models.len()).any(|i| models[..i].contains(&models[i])) {
            return bad("a liveness fusion names a model twice".into());
        }
        if !(weights.iter().all(|w| w.is_finite()) && bias.is_finite()) {
            return bad("a liveness fusion's weights and bias must be finite".into());
        }
        Ok(LivenessFusion {
            models,
            model: Logistic { weights, bias },
        })
    }

    /// The models fused, by id, in the order their scores are expected.
    pub fn models(&self) -> &[String] {
        &self.models
    }

    /// One weight per model, on its [`live_logit`].
    pub fn weights(&self) -> &[f64] {
        &self.model.weights
    }

    /// The intercept.
    pub fn bias(&self) -> f64 {
        self.model.bias
    }

    /// The features of one frame: each model's [`live_logit`].
    pub fn features(live: &[f32]) -> Vec<f64> {
        live.iter().map(|&p| live_logit(p)).collect()
    }

    /// The fused live probability of one frame from each model's live probability, in
    /// [`LivenessFusion::models`] order. Errors ([`ErrorKind::InvalidInput`]) when the count
    /// differs from the model count.
    pub fn fuse(&self, live: &[f32]) -> Result<f32> {
        if live.len() != self.models.len() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a liveness fusion of {} models was given {} scores",
                    self.models.len(),
                    live.len()
                ),
            ));
        }
        Ok(sigmoid(self.model.log_odds(&Self::features(live))) as f32)
    }

    /// Checks that `ensemble` (model ids, in the order the ensemble scores them) is the set
    /// this fusion was learned on, in the same order ([`ErrorKind::Config`] naming both).
    pub fn check_models(&self, ensemble: &[String]) -> Result<()> {
        if ensemble == self.models.as_slice() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Config,
            format!(
                "the liveness fusion was learned on the models [{}] but liveness.models loads [{}]: set liveness.models to those models, in that order, or recalibrate (`vouch calibrate liveness`)",
                self.models.join(", "),
                ensemble.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logits_are_clamped_and_finite() {
        assert_eq!(live_logit(0.5), 0.0);
        assert!((live_logit(1.0) - 11.5129).abs() < 1e-3);
        assert!((live_logit(0.0) + 11.5129).abs() < 1e-3);
        assert_eq!(live_logit(f32::NAN), 0.0);
        assert!(live_logit(0.9) > 0.0 && live_logit(0.1) < 0.0);
    }

    #[test]
    fn fusion_weighs_the_logits() {
        let f = LivenessFusion::new(vec!["a@1".into(), "b@2".into()], vec![1.0, 0.0], 0.0).unwrap();
        // b has no weight: the fused score is a's probability
        assert!((f.fuse(&[0.8, 0.01]).unwrap() - 0.8).abs() < 1e-6);
        assert_eq!(f.fuse(&[0.8]).unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn bad_fusions_and_other_models_are_refused() {
        for (models, weights, bias) in [
            (vec![], vec![], 0.0),
            (vec!["a@1"], vec![1.0, 2.0], 0.0),
            (vec!["a@1", "a@1"], vec![1.0, 2.0], 0.0),
            (vec!["a@1"], vec![f64::NAN], 0.0),
            (vec!["a@1"], vec![1.0], f64::INFINITY),
        ] {
            let models = models.into_iter().map(String::from).collect();
            let err = LivenessFusion::new(models, weights, bias).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
        }
        let f = LivenessFusion::new(vec!["a@1".into(), "b@2".into()], vec![1.0, 1.0], 0.0).unwrap();
        f.check_models(&["a@1".into(), "b@2".into()]).unwrap();
        for other in [vec!["b@2", "a@1"], vec!["a@1"], vec!["a@1", "b@3"]] {
            let other: Vec<String> = other.into_iter().map(String::from).collect();
            assert_eq!(
                f.check_models(&other).unwrap_err().kind(),
                ErrorKind::Config
            );
        }
    }
}
