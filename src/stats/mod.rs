//! Statistics that calibration (decision time) and evaluation (measurement) share: labelled
//! score sets and the threshold for a target false-match rate, the normal tail, confidence
//! intervals and the bootstrap, the one seeded generator, and the logistic fit of a learned
//! score fusion.
//!
//! A leaf: it uses nothing of vouch's but its error type, so both sides can depend on it
//! without depending on each other.

pub mod bootstrap;
pub mod interval;
pub mod logistic;
pub mod normal;
pub mod rng;
mod scores;

pub use bootstrap::{BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED, bootstrap};
pub use interval::{Interval, percentile_interval, wilson};
pub use normal::{erfc, upper_normal_quantile};
pub use rng::SplitMix64;
pub use scores::{OperatingPoint, ScoreSet, fnmr_at_fmr};
