//! What a decision says: the outcome, and the coarse confidence a terminal is told instead of
//! raw scores.

use serde::{Deserialize, Serialize};

/// What a decision is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The customer is verified for this transaction.
    Accept,
    /// Verification failed.
    Reject,
    /// A further factor is needed (the policy asks for voice): get a challenge and verify
    /// again with the spoken response.
    StepUp,
    /// The sample could not be judged (no face, poor quality, unusable audio): capture again.
    Retake,
    /// Too many failures: the subject or the terminal is locked for a while.
    Locked,
}

impl Outcome {
    /// The outcome's name (`accept`, `step_up`, …), as receipts and the audit log write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accept => "accept",
            Outcome::Reject => "reject",
            Outcome::StepUp => "step_up",
            Outcome::Retake => "retake",
            Outcome::Locked => "locked",
        }
    }
}

/// The coarse confidence a terminal is told instead of raw scores. Raw scores would let an
/// attacker climb towards a match one small change at a time; three levels do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// The evidence is weak or against the claim.
    Low,
    /// The evidence favours the claim.
    Medium,
    /// The evidence is overwhelming (likelihood ratio above 10⁶).
    High,
}

impl Confidence {
    /// The level of a fused LLR (natural log): high at ln 10⁶ or above, medium at ln 10² or
    /// above, else low.
    pub fn of_llr(llr: f64) -> Confidence {
        if llr >= 6.0 * std::f64::consts::LN_10 {
            Confidence::High
        } else if llr >= 2.0 * std::f64::consts::LN_10 {
            Confidence::Medium
        } else {
            Confidence::Low
        }
    }

    /// The level's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// Fuses the log-likelihood ratios of independent factors: their sum.
pub fn fuse(llrs: &[f64]) -> f64 {
    llrs.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_levels_by_fused_llr() {
        let ln10 = std::f64::consts::LN_10;
        for (llr, level) in [
            (-3.0, Confidence::Low),
            (0.0, Confidence::Low),
            (2.0 * ln10 - 1e-9, Confidence::Low),
            (2.0 * ln10, Confidence::Medium),
            (5.0, Confidence::Medium),
            (6.0 * ln10 - 1e-9, Confidence::Medium),
            (6.0 * ln10, Confidence::High),
            (20.0, Confidence::High),
            (f64::NAN, Confidence::Low),
        ] {
            assert_eq!(Confidence::of_llr(llr), level, "llr {llr}");
        }
    }

    #[test]
    fn fusion_adds_independent_factors() {
        assert_eq!(fuse(&[1.5, 2.0]), 3.5);
        assert_eq!(fuse(&[]), 0.0);
    }

    #[test]
    fn names_are_stable() {
        let names: Vec<&str> = [
            Outcome::Accept,
            Outcome::Reject,
            Outcome::StepUp,
            Outcome::Retake,
            Outcome::Locked,
        ]
        .iter()
        .map(|o| o.as_str())
        .collect();
        assert_eq!(names, ["accept", "reject", "step_up", "retake", "locked"]);
        assert_eq!(Confidence::High.as_str(), "high");
    }
}
