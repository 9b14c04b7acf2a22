//! Where evidence meets thresholds: the one module that decides.
//!
//! Face, liveness and voice code ([`crate::face`], [`crate::voice`]) and the
//! [`crate::Engine`] return evidence: scores, quality measurements, recognised digits. This
//! module holds that evidence to its thresholds and settles it into an [`Outcome`] with reason
//! codes and a coarse [`Confidence`]:
//!
//! - [`quality`]: the quality gate (face size, sharpness, pose, exposure → retake reasons);
//! - [`rules`]: a second face in the frame, liveness, the face match, the passphrase (digits
//!   and speaker), which errors ask for a retake, how factors settle into one outcome
//!   (a failure rejects, then an unusable sample asks for a retake, then a missing factor
//!   steps up), lockouts, policy refusals and open-set identification;
//! - [`active`]: whether the head movements of an active liveness challenge's response
//!   answer it (one face followed, filmed not assembled, the asked movements in order, each
//!   far enough and with the parallax of a head, not a plane);
//! - [`history`]: lockouts after repeated failures and velocity rules over approved
//!   payments, as pure functions of the history the [`crate::ledger`] keeps;
//! - [`outcome`]: the outcome, the confidence levels and LLR fusion;
//! - [`config`]: its configuration sections, `[decisions]` (thresholds the policy does not set,
//!   the policy and calibration files, attempt limits) and `[quality]`.
//!
//! It is pure: no models, files or clocks, and every rule is unit-tested without models. The
//! thresholds it is given come from the [`crate::authenticator::Authenticator`], which looks
//! them up (calibration at the policy's target FMR, this module's configuration) and through
//! which every decision path goes: `vouchd`, the CLI and kiosk apps.

pub mod active;
pub mod config;
pub mod history;
pub mod outcome;
pub mod quality;
pub mod rules;

pub use active::{ActiveLivenessConfig, ActiveVerdict, active_liveness};
pub use config::{AttemptsConfig, DecisionsConfig, QualityConfig};
pub use history::{Approval, Attempt, Payment, VelocityVerdict, lockout, velocity};
pub use outcome::{Confidence, Outcome, fuse};
pub use quality::{QualityCheck, QualityFailure, quality_failures};
pub use rules::{
    Identified, Lock, PassphraseVerdict, Settled, Verification, beyond_offline_ceiling,
    enrollment_sample, face_matches, identification, is_live, lockout_reached, multiple_faces,
    passphrase, presentation_retake, retake_reason,
};
