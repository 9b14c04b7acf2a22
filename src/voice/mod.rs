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

/// A speaker model a voice can be enrolled and scored with (`voice.speaker_models`).
#[derive(Clone, Copy, Debug, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SpeakerModelKind {
    /// The GE2E voice encoder of the manifest (`voice.encoder`): cosine of embeddings.
    Encoder,
    /// The GMM-UBM (`voice.ubm`): MAP-adapted means, S-normalised log-likelihood ratio.
    Gmm,
}

/// The UBM file's name in the model directory (where `scripts/setup.sh` trains it).
pub const UBM_FILE: &str = "gmm-ubm.vubm";

/// Speaker verification and the spoken passphrase (`[voice]`).
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceConfig {
    /// Manifest name of the speaker encoder. By default, `resemblyzer`.
    pub encoder: String,
    /// The speaker models a voice is enrolled with and scored by, each its own voiceprint;
    /// with several, the speaker score is their calibrated fusion (a calibration file whose
    /// `fusion` names them), so that wideband microphones (where the encoder is strong) and
    /// telephone-band ones (where the GMM-UBM is) both work. A subject enrolled before a model
    /// was added is scored by the models they have. By default, `["encoder", "gmm"]`.
    pub speaker_models: Vec<SpeakerModelKind>,
    /// The GMM-UBM's background model (`vouch voice train-ubm`; `scripts/setup.sh` trains it
    /// on LibriSpeech); a relative path is under the model directory. By default,
    /// `gmm-ubm.vubm` (`$VOUCH_UBM` overrides it).
    pub ubm: std::path::PathBuf,
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
            speaker_models: vec![SpeakerModelKind::Encoder, SpeakerModelKind::Gmm],
            ubm: std::path::PathBuf::from(UBM_FILE),
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
        let models = &self.speaker_models;
        if models.is_empty() || (1..models.len()).any(|i| models[..i].contains(&models[i])) {
            return bad(
                "voice.speaker_models names one or more of \"encoder\" and \"gmm\", each once",
            );
        }
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
