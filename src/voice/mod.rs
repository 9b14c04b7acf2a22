//! Voice: audio decoding, resampling (of whole recordings and of streams) and WAV writing, MFCC
//! and mel features, voice activity detection, speaker models (the GE2E encoder and a GMM-UBM
//! behind [`speaker::SpeakerModel`]) and the spoken passphrase.
//!
//! This module owns everything between audio bytes and features. Recordings are biometric
//! data: wiped on drop, never logged.

pub mod audio;
mod container;
pub mod digit_head;
pub mod digits;
pub mod encoder;
pub mod enrollment;
pub mod gmm;
pub mod mfcc;
pub mod passphrase;
pub mod resample;
pub mod speaker;
pub mod speech_embedding;
pub mod stream;
pub mod ubm;
pub mod vad;
pub mod wav;

pub use audio::{Audio, AudioLimits, SAMPLE_RATE};
pub use speaker::{SpeakerModel, VoiceSample, Voiceprint};

/// Speaker verification and the spoken passphrase (`[voice]`).
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceConfig {
    /// Manifest name of the speaker encoder. By default, `resemblyzer`.
    pub encoder: String,
    /// Manifest names of the speech embedding's front end and embedding model. By default,
    /// `["speech_mel", "speech_embedding"]`.
    pub speech_embedding: [String; 2],
    /// Digits per passphrase. By default, 6.
    pub passphrase_length: usize,
    /// How long a challenge stays valid, in seconds. By default, 60.
    pub challenge_ttl_seconds: u64,
    /// Limits on recordings (a single spoken digit may last 0.15 s, so the shortest accepted
    /// is 0.1 s here).
    pub audio: AudioLimits,
}

impl Default for VoiceConfig {
    fn default() -> VoiceConfig {
        VoiceConfig {
            encoder: "resemblyzer".to_string(),
            speech_embedding: ["speech_mel".to_string(), "speech_embedding".to_string()],
            passphrase_length: 6,
            challenge_ttl_seconds: 60,
            audio: AudioLimits {
                min_seconds: 0.1,
                ..AudioLimits::default()
            },
        }
    }
}

impl VoiceConfig {
    /// Checks the values ([`crate::ErrorKind::Config`] naming the key).
    pub fn validate(&self) -> crate::error::Result<()> {
        let bad = |what: &str| {
            Err(crate::error::Error::new(
                crate::error::ErrorKind::Config,
                what.to_string(),
            ))
        };
        if !(4..=16).contains(&self.passphrase_length) {
            return bad("voice.passphrase_length must be between 4 and 16");
        }
        if !(1..=3600).contains(&self.challenge_ttl_seconds) {
            return bad("voice.challenge_ttl_seconds must be between 1 and 3600");
        }
        let audio = &self.audio;
        if !(audio.min_seconds > 0.0
            && audio.min_seconds < audio.max_seconds
            && audio.max_seconds <= 600.0)
        {
            return bad("voice.audio: 0 < min_seconds < max_seconds <= 600 is required");
        }
        Ok(())
    }
}
