//! The rules: each factor's evidence held to its threshold, and the factors settled into one
//! outcome.
//!
//! Pure functions over evidence and thresholds, with no models, files or clocks, so every rule
//! is unit-tested on its own (the tables below). The [`crate::authenticator::Authenticator`]
//! gathers the evidence, looks the thresholds up (calibration, policy, configuration) and
//! applies these rules; nothing else compares a score with a threshold to decide.

use std::time::Duration;

use serde::Serialize;

use crate::decision::QualityConfig;
use crate::decision::active::ActiveVerdict;
use crate::decision::outcome::{Confidence, Outcome, fuse};
use crate::decision::quality::quality_failures;
use crate::error::ErrorKind;
use crate::face::PresentedFace;
use crate::policy::Factor;
use crate::voice::passphrase::PassphraseEvidence;

/// Why a verification may not proceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// The subject failed too often.
    Subject {
        /// Time left.
        remaining: Duration,
    },
    /// The terminal failed too often.
    Terminal {
        /// Time left.
        remaining: Duration,
    },
}

/// A subject or terminal is locked once its failures within the window reach the limit.
pub fn lockout_reached(failures_in_window: usize, limit: u32) -> bool {
    failures_in_window >= limit as usize
}

/// A face comparison matches when its score reaches the threshold.
pub fn face_matches(score: f64, threshold: f64) -> bool {
    score >= threshold
}

/// A presentation is live when its fused liveness score reaches the threshold.
pub fn is_live(score: f32, threshold: f32) -> bool {
    score >= threshold
}

/// Error kinds that mean "capture again" rather than "bad request", with their reason code.
pub fn retake_reason(kind: ErrorKind) -> Option<&'static str> {
    Some(match kind {
        ErrorKind::NoFace => "no_face",
        ErrorKind::ImageTooSmall => "image_too_small",
        ErrorKind::AudioSilent => "audio_silent",
        ErrorKind::AudioClipped => "audio_clipped",
        ErrorKind::AudioTooShort => "audio_too_short",
        ErrorKind::PassphraseTokens => "passphrase_tokens",
        _ => return None,
    })
}

/// Whether a frame's second face is large enough (at least `other_face_share` of the largest
/// face's box area) that the customer's face cannot be told from it: a retake.
pub fn multiple_faces(face: &PresentedFace, other_face_share: f32) -> bool {
    face.faces > 1 && face.other_face_share >= other_face_share
}

/// The reasons to capture a presentation again, sorted and without repeats; empty when every
/// frame can be judged. A frame fails on any quality check ([`quality_failures`]) and on a
/// second face at least `other_face_share` of the largest one's area (`multiple_faces`).
pub fn presentation_retake(
    faces: &[PresentedFace],
    quality: &QualityConfig,
    other_face_share: f32,
) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    for face in faces {
        if multiple_faces(face, other_face_share) {
            reasons.push("multiple_faces".into());
        }
        reasons.extend(
            quality_failures(&face.quality, quality)
                .iter()
                .map(|f| f.check.reason().to_string()),
        );
    }
    reasons.sort();
    reasons.dedup();
    reasons
}

/// What the digits and the voice of a passphrase response were found to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PassphraseVerdict {
    /// At most `max_digit_errors` recognised digits differ from the challenge's.
    pub digits_match: bool,
    /// The speaker score reaches the speaker threshold.
    pub speaker_match: bool,
}

impl PassphraseVerdict {
    /// Both: the right digits (an old recording says other ones) in the right voice (someone
    /// else reading the right digits has another).
    pub fn accepted(&self) -> bool {
        self.digits_match && self.speaker_match
    }
}

/// Holds a passphrase response's evidence to the digit tolerance, and its speaker score (its
/// speaker models' scores as their calibration combines them) to the speaker threshold.
pub fn passphrase(
    evidence: &PassphraseEvidence,
    speaker_score: f64,
    speaker_threshold: f64,
    max_digit_errors: usize,
) -> PassphraseVerdict {
    PassphraseVerdict {
        digits_match: evidence.digit_errors <= max_digit_errors,
        speaker_match: speaker_score >= speaker_threshold,
    }
}

/// How one enrollment face sample fares: used when it can be judged and is live.
pub fn enrollment_sample(
    retake: Vec<String>,
    liveness: f32,
    threshold: f32,
) -> (bool, Vec<String>) {
    if !retake.is_empty() {
        (false, retake)
    } else if !is_live(liveness, threshold) {
        (false, vec!["liveness_failed".to_string()])
    } else {
        (true, Vec::new())
    }
}

/// A 1:1 decision being made: each factor's evidence is entered with its threshold, then
/// [`Verification::settle`] gives the outcome.
#[derive(Clone, Debug, Default)]
pub struct Verification {
    required: Vec<Factor>,
    used: Vec<Factor>,
    failed: Vec<String>,
    retake: Vec<String>,
    step_up: Vec<String>,
    llrs: Vec<f64>,
}

/// A settled decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Settled {
    /// What was decided.
    pub outcome: Outcome,
    /// Why (reason codes; empty for an accept).
    pub reasons: Vec<String>,
    /// Coarse confidence of the fused evidence.
    pub confidence: Confidence,
    /// The factors the policy required.
    pub required: Vec<Factor>,
    /// The factors evaluated, sorted.
    pub used: Vec<Factor>,
    /// For `locked`: when to try again.
    pub retry_after: Option<Duration>,
    /// Sum of the calibrated LLRs of the factors scored, when any was.
    pub fused_llr: Option<f64>,
}

impl Settled {
    /// A request refused before any evidence was looked at: the subject or terminal is locked.
    pub fn locked(lock: Lock) -> Settled {
        let (reason, remaining) = match lock {
            Lock::Subject { remaining } => ("subject_locked", remaining),
            Lock::Terminal { remaining } => ("terminal_locked", remaining),
        };
        Settled {
            outcome: Outcome::Locked,
            reasons: vec![reason.to_string()],
            confidence: Confidence::Low,
            required: Vec::new(),
            used: Vec::new(),
            retry_after: Some(remaining),
            fused_llr: None,
        }
    }

    /// A transaction the policy refuses to verify biometrically.
    pub fn refused() -> Settled {
        Settled {
            outcome: Outcome::Reject,
            reasons: vec!["policy_refused".to_string()],
            confidence: Confidence::Low,
            required: Vec::new(),
            used: Vec::new(),
            retry_after: None,
            fused_llr: None,
        }
    }

    /// A refusal because the terminal is offline and the amount is above the tier's offline
    /// ceiling ([`beyond_offline_ceiling`]).
    pub fn offline_limit() -> Settled {
        Settled {
            reasons: vec!["offline_limit".to_string()],
            ..Settled::refused()
        }
    }

    /// A refusal by a velocity rule (the customer pays another way).
    pub fn velocity_limit() -> Settled {
        Settled {
            reasons: vec!["velocity_limit".to_string()],
            ..Settled::refused()
        }
    }

    /// Whether the outcome counts as a biometric failure towards a lockout (a retake reveals
    /// nothing about the template and does not, nor does a refusal made before any evidence
    /// was looked at).
    pub fn is_failure(&self) -> bool {
        self.outcome == Outcome::Reject
            && !self.reasons.iter().any(|r| {
                ["policy_refused", "offline_limit", "velocity_limit"].contains(&r.as_str())
            })
    }
}

/// Whether an offline terminal must refuse `amount_minor` under a tier's offline ceiling
/// (`None`: the tier sets none, so its own bound holds offline too).
pub fn beyond_offline_ceiling(offline: bool, amount_minor: u64, ceiling: Option<u64>) -> bool {
    offline && ceiling.is_some_and(|max| amount_minor > max)
}

impl Verification {
    /// A decision on the factors the policy requires.
    pub fn new(required: &[Factor]) -> Verification {
        Verification {
            required: required.to_vec(),
            ..Verification::default()
        }
    }

    /// Whether the policy requires `factor`.
    pub fn requires(&self, factor: Factor) -> bool {
        self.required.contains(&factor)
    }

    /// A sample could not be judged (reason codes: `no_face`, `quality_sharpness`, …).
    pub fn retake(&mut self, reasons: impl IntoIterator<Item = String>) {
        self.retake.extend(reasons);
    }

    /// The presentation's fused liveness score, held to `threshold`.
    pub fn liveness(&mut self, score: f32, threshold: f32) {
        self.used.push(Factor::Liveness);
        if !is_live(score, threshold) {
            self.failed.push("liveness_failed".into());
        }
    }

    /// The best face score over the subject's templates, held to `threshold`; `llr` is its
    /// calibrated log-likelihood ratio.
    pub fn face(&mut self, score: f64, threshold: f64, llr: f64) {
        self.used.push(Factor::Face);
        self.llrs.push(llr);
        if !face_matches(score, threshold) {
            self.failed.push("face_mismatch".into());
        }
    }

    /// The policy needs voice and the request brought no spoken response.
    pub fn voice_required(&mut self) {
        self.step_up.push("voice_required".into());
    }

    /// A passphrase response's verdict; `llr` is the speaker score's calibrated LLR.
    pub fn passphrase(&mut self, verdict: PassphraseVerdict, llr: f64) {
        self.used.push(Factor::Voice);
        self.llrs.push(llr);
        if !verdict.digits_match {
            self.failed.push("passphrase_mismatch".into());
        }
        if !verdict.speaker_match {
            self.failed.push("voice_mismatch".into());
        }
    }

    /// The policy needs active liveness and the request brought no response to a movement
    /// challenge: the terminal asks for one and verifies again.
    pub fn active_liveness_required(&mut self) {
        self.step_up.push("active_liveness_required".into());
    }

    /// An active liveness challenge's verdict, and the cosine between the face that answered
    /// it and the face matched (`None` when either is missing), held to `min_identity`.
    ///
    /// A response that could not be judged for reasons a genuine customer meets (a second
    /// face in view, the face lost, not facing the camera at the start, too few frames, too
    /// short or too long, movements too timid) asks for a retake naming them. One that does
    /// not answer the challenge (other movements, none, a flat face, another person) rejects
    /// with `active_liveness_failed` only: which test failed is not told to the terminal, so
    /// an attacker learns nothing to aim at.
    pub fn active_liveness(
        &mut self,
        verdict: &ActiveVerdict,
        same_face: Option<f32>,
        min_identity: f32,
    ) {
        self.used.push(Factor::ActiveLiveness);
        const CAPTURE: [&str; 7] = [
            "multiple_faces",
            "lost_track",
            "not_frontal",
            "frame_rate_too_low",
            "too_short",
            "too_long",
            "movement_too_small",
        ];
        let attack = verdict.reasons.iter().any(|r| !CAPTURE.contains(r));
        let other_person = same_face.is_none_or(|c| c < min_identity);
        if attack || other_person {
            self.failed.push("active_liveness_failed".into());
        } else if !verdict.passed {
            self.retake
                .extend(verdict.reasons.iter().map(|r| format!("active_{r}")));
        }
    }

    /// A failed factor rejects; otherwise an unusable sample asks for a retake; otherwise a
    /// missing factor asks to step up; otherwise every required factor passed and the decision
    /// accepts. The confidence comes from the fused LLR, and only an accept or a step-up can be
    /// more than low.
    pub fn settle(mut self) -> Settled {
        self.used.sort();
        let fused = fuse(&self.llrs);
        let (outcome, reasons) = if !self.failed.is_empty() {
            (Outcome::Reject, self.failed)
        } else if !self.retake.is_empty() {
            (Outcome::Retake, self.retake)
        } else if !self.step_up.is_empty() {
            (Outcome::StepUp, self.step_up)
        } else {
            (Outcome::Accept, Vec::new())
        };
        let confidence = match outcome {
            Outcome::Accept | Outcome::StepUp => Confidence::of_llr(fused),
            _ => Confidence::Low,
        };
        Settled {
            outcome,
            reasons,
            confidence,
            required: self.required,
            used: self.used,
            retry_after: None,
            fused_llr: (!self.llrs.is_empty()).then_some(fused),
        }
    }
}

/// The answer of an open-set identification, before it is recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Identified {
    /// `accept` (somebody), `reject` (nobody, or not live).
    pub outcome: Outcome,
    /// The subject found.
    pub subject: Option<String>,
    /// Reason codes.
    pub reasons: Vec<String>,
    /// Coarse confidence in the subject found.
    pub confidence: Confidence,
}

/// Open-set identification: the best candidate if their score reaches `threshold` (set for
/// the gallery's false-positive identification rate), otherwise nobody. `llr` is the best
/// score's calibrated LLR; the confidence discounts it by the gallery size (a larger gallery
/// offers more chances of a chance match).
pub fn identification(
    best: Option<(&str, f64)>,
    threshold: f64,
    llr: f64,
    gallery: usize,
) -> Identified {
    match best.filter(|(_, score)| face_matches(*score, threshold)) {
        Some((subject, _)) => Identified {
            outcome: Outcome::Accept,
            subject: Some(subject.to_string()),
            reasons: Vec::new(),
            confidence: Confidence::of_llr(llr - (gallery.max(1) as f64).ln()),
        },
        None => Identified {
            outcome: Outcome::Reject,
            subject: None,
            reasons: vec!["no_match".to_string()],
            confidence: Confidence::Low,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::{Detection, FaceBox, QualityReport};

    fn settled(build: impl Fn(&mut Verification)) -> Settled {
        let mut v = Verification::new(&[Factor::Face, Factor::Liveness, Factor::Voice]);
        build(&mut v);
        v.settle()
    }

    fn verdict(digits_match: bool, speaker_match: bool) -> PassphraseVerdict {
        PassphraseVerdict {
            digits_match,
            speaker_match,
        }
    }

    #[test]
    fn settle_by_table() {
        type Build = fn(&mut Verification);
        let cases: [(&str, Build, Outcome, &[&str]); 9] = [
            (
                "every factor passes",
                |v| {
                    v.liveness(0.9, 0.5);
                    v.face(0.8, 0.4, 12.0);
                    v.passphrase(verdict(true, true), 3.0);
                },
                Outcome::Accept,
                &[],
            ),
            (
                "the face fails",
                |v| {
                    v.liveness(0.9, 0.5);
                    v.face(0.3, 0.4, -5.0);
                },
                Outcome::Reject,
                &["face_mismatch"],
            ),
            (
                "not live",
                |v| {
                    v.liveness(0.2, 0.5);
                    v.face(0.8, 0.4, 12.0);
                },
                Outcome::Reject,
                &["liveness_failed"],
            ),
            (
                "both fail, in evidence order",
                |v| {
                    v.liveness(0.2, 0.5);
                    v.face(0.1, 0.4, -9.0);
                },
                Outcome::Reject,
                &["liveness_failed", "face_mismatch"],
            ),
            (
                "voice missing: step up",
                |v| {
                    v.liveness(0.9, 0.5);
                    v.face(0.8, 0.4, 12.0);
                    v.voice_required();
                },
                Outcome::StepUp,
                &["voice_required"],
            ),
            (
                "a failure beats a retake",
                |v| {
                    v.retake(["audio_silent".to_string()]);
                    v.liveness(0.9, 0.5);
                    v.face(0.1, 0.4, -9.0);
                },
                Outcome::Reject,
                &["face_mismatch"],
            ),
            (
                "a retake beats a step-up",
                |v| {
                    v.retake(["quality_sharpness".to_string()]);
                    v.voice_required();
                },
                Outcome::Retake,
                &["quality_sharpness"],
            ),
            (
                "wrong digits in the right voice",
                |v| {
                    v.liveness(0.9, 0.5);
                    v.face(0.8, 0.4, 12.0);
                    v.passphrase(verdict(false, true), 3.0);
                },
                Outcome::Reject,
                &["passphrase_mismatch"],
            ),
            (
                "right digits, another voice",
                |v| {
                    v.liveness(0.9, 0.5);
                    v.face(0.8, 0.4, 12.0);
                    v.passphrase(verdict(true, false), -4.0);
                },
                Outcome::Reject,
                &["voice_mismatch"],
            ),
        ];
        for (what, build, outcome, reasons) in cases {
            let s = settled(build);
            assert_eq!(s.outcome, outcome, "{what}");
            assert_eq!(s.reasons, reasons, "{what}");
        }
    }

    #[test]
    fn thresholds_are_inclusive() {
        let s = settled(|v| {
            v.liveness(0.5, 0.5);
            v.face(0.4, 0.4, 0.0);
            v.passphrase(verdict(true, true), 0.0);
        });
        assert_eq!(s.outcome, Outcome::Accept);
        assert!(face_matches(0.4, 0.4) && !face_matches(0.399_999, 0.4));
        assert!(is_live(0.5, 0.5) && !is_live(0.499, 0.5));
    }

    #[test]
    fn confidence_comes_from_the_fused_llr_and_only_for_accepts_and_step_ups() {
        let strong = settled(|v| {
            v.face(0.9, 0.4, 10.0);
            v.passphrase(verdict(true, true), 5.0);
        });
        assert_eq!(strong.fused_llr, Some(15.0));
        assert_eq!(strong.confidence, Confidence::High);
        let step_up = settled(|v| {
            v.face(0.9, 0.4, 5.0);
            v.voice_required();
        });
        assert_eq!(
            (step_up.outcome, step_up.confidence),
            (Outcome::StepUp, Confidence::Medium)
        );
        let rejected = settled(|v| {
            v.face(0.9, 0.4, 20.0);
            v.passphrase(verdict(true, false), 0.0);
        });
        assert_eq!(rejected.confidence, Confidence::Low);
        let nothing_scored = settled(|v| v.retake(["no_face".to_string()]));
        assert_eq!(nothing_scored.fused_llr, None);
    }

    #[test]
    fn used_factors_are_sorted_and_required_ones_kept() {
        let s = settled(|v| {
            v.passphrase(verdict(true, true), 1.0);
            v.face(0.9, 0.4, 1.0);
            v.liveness(0.9, 0.5);
        });
        assert_eq!(s.used, [Factor::Face, Factor::Liveness, Factor::Voice]);
        assert_eq!(s.required, [Factor::Face, Factor::Liveness, Factor::Voice]);
        assert!(Verification::new(&[Factor::Face]).requires(Factor::Face));
        assert!(!Verification::new(&[Factor::Face]).requires(Factor::Voice));
    }

    #[test]
    fn the_limit_th_failure_locks() {
        for (failures, limit, locked) in [
            (0, 1, false),
            (1, 1, true),
            (4, 5, false),
            (5, 5, true),
            (6, 5, true),
        ] {
            assert_eq!(
                lockout_reached(failures, limit),
                locked,
                "{failures} of {limit}"
            );
        }
    }

    #[test]
    fn lockout_and_refusal() {
        let remaining = Duration::from_secs(42);
        let subject = Settled::locked(Lock::Subject { remaining });
        assert_eq!(subject.outcome, Outcome::Locked);
        assert_eq!(subject.reasons, ["subject_locked"]);
        assert_eq!(subject.retry_after, Some(remaining));
        let terminal = Settled::locked(Lock::Terminal { remaining });
        assert_eq!(terminal.reasons, ["terminal_locked"]);
        assert!(!terminal.is_failure());
        let refused = Settled::refused();
        assert_eq!(
            (refused.outcome, refused.reasons.as_slice()),
            (Outcome::Reject, &["policy_refused".to_string()][..])
        );
        assert!(
            !refused.is_failure(),
            "a policy refusal says nothing about the customer"
        );
        assert!(settled(|v| v.face(0.1, 0.4, -3.0)).is_failure());
        let offline = Settled::offline_limit();
        assert_eq!(
            (offline.outcome, &offline.reasons[..]),
            (Outcome::Reject, &["offline_limit".to_string()][..])
        );
        assert!(!offline.is_failure(), "nor does an offline refusal");
        assert!(!settled(|v| v.retake(["no_face".into()])).is_failure());
    }

    #[test]
    fn the_offline_ceiling_binds_only_offline_terminals() {
        for (offline, amount, ceiling, refused) in [
            (false, 10_000, Some(3_000), false),
            (true, 3_000, Some(3_000), false),
            (true, 3_001, Some(3_000), true),
            (true, 1, Some(0), true),
            (true, 0, Some(0), false),
            (true, u64::MAX, None, false),
        ] {
            assert_eq!(
                beyond_offline_ceiling(offline, amount, ceiling),
                refused,
                "offline {offline}, amount {amount}, ceiling {ceiling:?}"
            );
        }
    }

    #[test]
    fn retake_reasons_by_error_kind() {
        for (kind, reason) in [
            (ErrorKind::NoFace, Some("no_face")),
            (ErrorKind::ImageTooSmall, Some("image_too_small")),
            (ErrorKind::AudioSilent, Some("audio_silent")),
            (ErrorKind::AudioClipped, Some("audio_clipped")),
            (ErrorKind::AudioTooShort, Some("audio_too_short")),
            (ErrorKind::PassphraseTokens, Some("passphrase_tokens")),
            (ErrorKind::ImageDecode, None),
            (ErrorKind::InvalidInput, None),
            (ErrorKind::Inference, None),
        ] {
            assert_eq!(retake_reason(kind), reason, "{kind}");
        }
    }

    fn face(faces: usize, other_face_share: f32, sharpness: f32) -> PresentedFace {
        PresentedFace {
            detection: Detection {
                bbox: [10.0, 10.0, 210.0, 210.0],
                score: 0.9,
                landmarks: [[0.0; 2]; 5],
            },
            face_box: FaceBox {
                x: 10.0,
                y: 10.0,
                width: 201.0,
                height: 201.0,
            },
            faces,
            other_face_share,
            quality: QualityReport {
                face_width: 201.0,
                sharpness,
                yaw_deg: Some(0.0),
                roll_deg: Some(0.0),
                brightness: 120.0,
                clipped: 0.0,
                median_brightness: 120.0,
                contrast: 40.0,
                surround_brightness: Some(120.0),
            },
        }
    }

    #[test]
    fn presentation_retakes_by_table() {
        let q = QualityConfig::default();
        let cases: [(&str, Vec<PresentedFace>, &[&str]); 5] = [
            ("one clean face", vec![face(1, 0.0, 500.0)], &[]),
            ("a small face far behind", vec![face(2, 0.05, 500.0)], &[]),
            (
                "a photo held beside the face",
                vec![face(2, 0.9, 500.0)],
                &["multiple_faces"],
            ),
            (
                "at the share limit",
                vec![face(3, 0.25, 500.0)],
                &["multiple_faces"],
            ),
            (
                "reasons from every frame, once each",
                vec![face(1, 0.0, 10.0), face(2, 0.5, 10.0), face(1, 0.0, 500.0)],
                &["multiple_faces", "quality_sharpness"],
            ),
        ];
        for (what, faces, reasons) in cases {
            assert_eq!(presentation_retake(&faces, &q, 0.25), reasons, "{what}");
        }
    }

    /// Bad light is a retake, never a liveness reject: a frame failing a light check makes
    /// `presentation_retake` non-empty, and the authenticator returns that retake before any
    /// liveness score is taken (`Authenticator::present`), so `liveness_failed` cannot follow.
    #[test]
    fn bad_light_asks_for_a_retake() {
        let q = QualityConfig::default();
        let lit = |f: fn(&mut QualityReport)| {
            let mut face = face(1, 0.0, 500.0);
            f(&mut face.quality);
            presentation_retake(&[face], &q, 0.25)
        };
        assert_eq!(lit(|r| r.median_brightness = 20.0), ["quality_too_dark"]);
        assert_eq!(lit(|r| r.contrast = 5.0), ["quality_low_contrast"]);
        assert_eq!(
            lit(|r| {
                r.brightness = 50.0;
                r.surround_brightness = Some(220.0);
            }),
            ["quality_backlit"]
        );
        let mut v = Verification::new(&[Factor::Liveness]);
        v.retake(lit(|r| r.contrast = 5.0));
        let settled = v.settle();
        assert_eq!(settled.outcome, Outcome::Retake);
        assert_eq!(settled.reasons, ["quality_low_contrast"]);
    }

    #[test]
    fn passphrase_by_table() {
        let evidence = |digit_errors| PassphraseEvidence {
            heard: "123456".into(),
            digit_errors,
            adapted: true,
            speaker_scores: Vec::new(),
        };
        for (errors, score, digits, speaker) in [
            (0, 0.9, true, true),
            (1, 0.8, true, true),
            (2, 0.9, false, true),
            (0, 0.79, true, false),
            (4, 0.1, false, false),
        ] {
            let v = passphrase(&evidence(errors), score, 0.8, 1);
            assert_eq!(
                (v.digits_match, v.speaker_match),
                (digits, speaker),
                "{errors} digit errors, score {score}"
            );
            assert_eq!(v.accepted(), digits && speaker);
        }
    }

    #[test]
    fn enrollment_samples_need_a_judgeable_live_face() {
        assert_eq!(enrollment_sample(Vec::new(), 0.9, 0.5), (true, Vec::new()));
        assert_eq!(
            enrollment_sample(Vec::new(), 0.3, 0.5),
            (false, vec!["liveness_failed".to_string()])
        );
        assert_eq!(
            enrollment_sample(vec!["multiple_faces".into()], 0.9, 0.5),
            (false, vec!["multiple_faces".to_string()])
        );
    }

    #[test]
    fn identification_is_open_set() {
        let found = identification(Some(("alice", 0.7)), 0.5, 20.0, 100);
        assert_eq!(found.outcome, Outcome::Accept);
        assert_eq!(found.subject.as_deref(), Some("alice"));
        // 20 − ln 100 ≈ 15.4: still above ln 10⁶ ≈ 13.8.
        assert_eq!(found.confidence, Confidence::High);
        let bigger_gallery = identification(Some(("alice", 0.7)), 0.5, 20.0, 1_000_000);
        assert_eq!(bigger_gallery.confidence, Confidence::Medium);
        let nobody = identification(Some(("alice", 0.4)), 0.5, 1.0, 100);
        assert_eq!((nobody.outcome, nobody.subject), (Outcome::Reject, None));
        assert_eq!(nobody.reasons, ["no_match"]);
        let empty = identification(None, 0.5, 0.0, 0);
        assert_eq!(empty.outcome, Outcome::Reject);
    }

    #[test]
    fn active_liveness_retakes_capture_problems_and_rejects_the_rest_without_saying_why() {
        use crate::decision::active::ActiveVerdict;
        let verdict = |passed: bool, reasons: &[&'static str]| ActiveVerdict {
            passed,
            actions_seen: Vec::new(),
            reasons: reasons.to_vec(),
        };
        let settle = |v: ActiveVerdict, same_face: Option<f32>| {
            let mut d = Verification::new(&[Factor::ActiveLiveness]);
            d.active_liveness(&v, same_face, 0.3);
            d.settle()
        };
        let s = settle(verdict(true, &[]), Some(0.8));
        assert_eq!(s.outcome, Outcome::Accept);
        assert_eq!(s.used, [Factor::ActiveLiveness]);
        let s = settle(verdict(false, &["lost_track", "too_short"]), Some(0.8));
        assert_eq!(s.outcome, Outcome::Retake);
        assert_eq!(s.reasons, ["active_lost_track", "active_too_short"]);
        for attack in [
            &["wrong_movements"][..],
            &["flat_face"],
            &["no_movement", "lost_track"],
        ] {
            let s = settle(verdict(false, attack), Some(0.8));
            assert_eq!(s.outcome, Outcome::Reject, "{attack:?}");
            assert_eq!(s.reasons, ["active_liveness_failed"], "{attack:?}");
        }
        // Another person answered, or the match cannot be tied to the face that moved.
        for same_face in [Some(0.1), None] {
            let s = settle(verdict(true, &[]), same_face);
            assert_eq!(s.reasons, ["active_liveness_failed"], "{same_face:?}");
        }
        let mut d = Verification::new(&[Factor::ActiveLiveness]);
        d.active_liveness_required();
        let s = d.settle();
        assert_eq!(
            (s.outcome, s.reasons),
            (
                Outcome::StepUp,
                vec!["active_liveness_required".to_string()]
            )
        );
    }
}
