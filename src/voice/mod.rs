//! Voice: audio decoding and resampling, MFCC and mel features, voice activity detection,
//! speaker models (the GE2E encoder and a GMM-UBM behind [`speaker::SpeakerModel`]) and the spoken
//! passphrase.
//!
//! This module owns everything between audio bytes and features. Recordings are biometric
//! data: wiped on drop, never logged.

pub mod audio;
mod container;
pub mod digits;
pub mod encoder;
pub mod enrollment;
pub mod gmm;
pub mod mfcc;
pub mod passphrase;
pub mod resample;
pub mod speaker;
pub mod ubm;
pub mod vad;

pub use audio::{Audio, AudioLimits, SAMPLE_RATE};
pub use speaker::{SpeakerModel, VoiceSample, Voiceprint};
