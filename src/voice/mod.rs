//! Voice: audio decoding and resampling, MFCC and mel features, voice activity detection,
//! and the GE2E speaker encoder (the GMM-UBM model and the spoken passphrase build on these).
//!
//! This module owns everything between audio bytes and features. Recordings are biometric
//! data: wiped on drop, never logged.

pub mod audio;
pub mod encoder;
pub mod mfcc;
pub mod passphrase;
pub mod resample;
pub mod vad;

pub use audio::{Audio, AudioLimits, SAMPLE_RATE};
