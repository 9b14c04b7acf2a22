//! Evaluation: verification metrics (ISO/IEC 19795-1 vocabulary) and dataset readers.
//!
//! Scores are similarities: higher means "more likely the same person", and a comparison is
//! accepted when `score >= threshold`. This module only measures; it never chooses a
//! threshold behind the caller's back.

pub mod bench;
pub mod cache;
pub mod challenges;
mod csv;
pub mod digits;
pub mod face;
pub mod face_fusion;
pub mod identities;
pub mod lfw;
pub mod liveness;
pub mod liveness_fusion;
pub mod metrics;
pub mod pairs;
pub mod passphrase;
pub mod plot;
pub mod report;
pub mod scores;
pub mod synth;
pub mod voice;

pub use crate::stats::{OperatingPoint, ScoreSet, fnmr_at_fmr};
pub use metrics::{DetectionCost, Eer, RocPoint, VerificationSummary, auc, det, eer, min_dcf, roc};
pub use pairs::{LabelledPair, read_pair_csv};
