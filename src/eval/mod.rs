//! Evaluation: verification metrics (ISO/IEC 19795-1 vocabulary) and dataset readers.
//!
//! Scores are similarities: higher means "more likely the same person", and a comparison is
//! accepted when `score >= threshold`. This module only measures; it never chooses a
//! threshold behind the caller's back.

pub mod face;
pub mod liveness;
pub mod metrics;
pub mod pairs;

pub use metrics::{Eer, OperatingPoint, RocPoint, ScoreSet, auc, eer, fnmr_at_fmr, roc};
pub use pairs::{LabelledPair, read_pair_csv};
