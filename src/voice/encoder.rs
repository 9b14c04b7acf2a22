//! The GE2E voice encoder (an ONNX model): a 256-d speaker embedding from 16 kHz audio.
//!
//! Preprocessing as the model was trained: volume normalised to −30 dBFS (raised only, never
//! lowered), silence trimmed with the VAD, the mel power spectrogram split into partials of
//! 160 frames every 77 frames (a last partial covering less than 75 % is dropped unless it is
//! the only one), all partials embedded as one batch, averaged and L2-normalised.

use ndarray::Array3;

use crate::embedding::Embedding;
use crate::error::{Error, ErrorKind, Result};
use crate::models::{ModelSpec, ModelTask};
use crate::runtime::{Runtime, SessionPool};
use crate::voice::audio::Audio;
use crate::voice::mfcc::MelSpectrogram;
use crate::voice::vad::{VadConfig, speech_span};

const TARGET_DBFS: f32 = -30.0;
const PARTIAL: usize = 160;
const STEP: usize = 77;
const MIN_COVERAGE: f32 = 0.75;

/// The speaker-embedding model and its front end.
#[derive(Debug)]
pub struct VoiceEncoder {
    id: String,
    sha256: [u8; 32],
    pool: SessionPool,
    mel: MelSpectrogram,
    vad: VadConfig,
}

impl VoiceEncoder {
    /// Loads and verifies the encoder.
    pub fn new(
        runtime: &Runtime,
        spec: &ModelSpec,
        model_dir: &std::path::Path,
    ) -> Result<VoiceEncoder> {
        if spec.task != ModelTask::SpeakerEmbedding {
            return Err(Error::new(
                ErrorKind::Manifest,
                format!("model {:?} is not a speaker encoder", spec.name),
            ));
        }
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&spec.sha256, &mut sha256)
            .map_err(|_| Error::new(ErrorKind::Manifest, "the encoder's sha256 is not hex"))?;
        Ok(VoiceEncoder {
            id: spec.id(),
            sha256,
            pool: SessionPool::new(runtime, spec, model_dir)?,
            mel: MelSpectrogram::for_voice_encoder()?,
            vad: VadConfig::default(),
        })
    }

    /// The encoder's manifest entry.
    pub fn spec(&self) -> &ModelSpec {
        self.pool.spec()
    }

    /// The model's identity (`name@sha256-prefix`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The sha256 of the model file.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// The speaker embedding of a recording.
    pub fn embed(&self, audio: &Audio) -> Result<Embedding> {
        let speech = speech_span(audio.samples(), &self.vad);
        let gain = {
            let level = audio.rms_dbfs();
            if level.is_finite() && level < TARGET_DBFS {
                10f32.powf((TARGET_DBFS - level) / 20.0)
            } else {
                1.0
            }
        };
        let scaled: Vec<f32> = speech.iter().map(|v| v * gain).collect();
        let mel = self.mel.compute(&scaled);
        let frames = mel.frames();
        let starts = partial_starts(frames);
        let mut batch = Array3::<f32>::zeros((starts.len(), PARTIAL, mel.dims));
        for (b, &start) in starts.iter().enumerate() {
            for t in 0..PARTIAL {
                if start + t < frames {
                    for (d, v) in mel.frame(start + t).iter().enumerate() {
                        batch[[b, t, d]] = *v as f32;
                    }
                }
            }
        }
        let out = self.pool.run_first_output(&batch, "speaker embedding")?;
        let dim = out.len() / starts.len().max(1);
        let mut mean = vec![0f32; dim];
        for partial in out.chunks(dim) {
            for (m, v) in mean.iter_mut().zip(partial) {
                *m += v;
            }
        }
        Embedding::from_raw(mean)
    }
}

/// Where the partials start: every 77 frames; the last one kept only if it covers at least
/// 75 % of a partial, unless it is the only one.
fn partial_starts(frames: usize) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut start = 0;
    loop {
        starts.push(start);
        if start + PARTIAL >= frames {
            break;
        }
        start += STEP;
    }
    if starts.len() > 1 {
        let last = starts[starts.len() - 1];
        let coverage = (frames - last) as f32 / PARTIAL as f32;
        if coverage < MIN_COVERAGE {
            starts.pop();
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_cover_the_utterance() {
        assert_eq!(partial_starts(50), vec![0]);
        assert_eq!(partial_starts(160), vec![0]);
        // 300 frames: 0, 77 (covers to 237), 154 (covers to 314 ≥ 300; 146/160 = 91 % kept)
        assert_eq!(partial_starts(300), vec![0, 77, 154]);
        // 240 frames: 0, 77 (to 237 < 240), 154 covers 86/160 = 54 %: dropped
        assert_eq!(partial_starts(240), vec![0, 77]);
    }
}
