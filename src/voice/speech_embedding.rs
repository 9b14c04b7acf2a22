//! The speech embedding: a speaker-independent representation of short spoken words (Google's
//! speech_embedding behind openWakeWord's mel front end; two ONNX models of the manifest).
//!
//! Preprocessing as the models were built (`../shared/models/MODELS.md`, "Speech embedding"):
//! 16 kHz mono samples as float in int16 range → the mel model → its output as (frames, 32),
//! transformed `mel / 10 + 2` → windows of 76 frames every 8 frames → the embedding model,
//! one 96-d vector per window (about 0.76 s of audio each). What the vectors mean is for a
//! head trained by the project to say; this module only reproduces them exactly.

use ndarray::Array2;

use crate::error::{Error, ErrorKind, Result};
use crate::models::{ModelSpec, ModelTask};
use crate::runtime::{Runtime, SessionPool};

/// Mel bands of the front end.
pub const MEL_BANDS: usize = 32;
/// Mel frames in one embedding window.
pub const WINDOW: usize = 76;
/// Mel frames between two windows.
pub const STRIDE: usize = 8;
/// Dimensions of one window's embedding.
pub const DIM: usize = 96;
/// Samples per mel frame (10 ms at 16 kHz).
const HOP: usize = 160;
/// The mel model's frames fall this many short of `samples / HOP` (its window's edges).
const EDGE_FRAMES: usize = 3;

/// The two models of the speech embedding.
#[derive(Debug)]
pub struct SpeechEmbedder {
    mel: SessionPool,
    embedding: SessionPool,
}

impl SpeechEmbedder {
    /// Loads and verifies the mel front end (`task = "speech_features"`) and the embedding
    /// model (`task = "speech_embedding"`).
    pub fn new(
        runtime: &Runtime,
        mel: &ModelSpec,
        embedding: &ModelSpec,
        model_dir: &std::path::Path,
    ) -> Result<SpeechEmbedder> {
        for (spec, task) in [
            (mel, ModelTask::SpeechFeatures),
            (embedding, ModelTask::SpeechEmbedding),
        ] {
            if spec.task != task {
                return Err(Error::new(
                    ErrorKind::Manifest,
                    format!("model {:?} is not a {task:?} model", spec.name),
                ));
            }
        }
        Ok(SpeechEmbedder {
            mel: SessionPool::new(runtime, mel, model_dir)?,
            embedding: SessionPool::new(runtime, embedding, model_dir)?,
        })
    }

    /// The fewest samples that give one window.
    pub fn min_samples() -> usize {
        (WINDOW + EDGE_FRAMES) * HOP
    }

    /// The transformed mel frames of 16 kHz samples in [−1, 1], as (frames, 32).
    pub fn mel(&self, samples: &[f32]) -> Result<Array2<f32>> {
        if samples.len() < HOP * (EDGE_FRAMES + 1) {
            return Err(Error::new(
                ErrorKind::AudioTooShort,
                format!(
                    "{} samples are too few for the speech front end",
                    samples.len()
                ),
            ));
        }
        // In int16 range, as the front end was exported: the samples a 16-bit PCM file holds.
        let scaled: Vec<f32> = samples
            .iter()
            .map(|v| (v * 32768.0).clamp(-32768.0, 32767.0))
            .collect();
        let input = Array2::from_shape_vec((1, scaled.len()), scaled)
            .map_err(|e| Error::new(ErrorKind::Inference, e.to_string()))?;
        let out = self.mel.run_first_output(&input, "speech front end")?;
        if out.len() % MEL_BANDS != 0 || out.is_empty() {
            return Err(Error::new(
                ErrorKind::Inference,
                format!("the speech front end gave {} values", out.len()),
            ));
        }
        let frames = out.len() / MEL_BANDS;
        let transformed: Vec<f32> = out.iter().map(|v| v / 10.0 + 2.0).collect();
        Array2::from_shape_vec((frames, MEL_BANDS), transformed)
            .map_err(|e| Error::new(ErrorKind::Inference, e.to_string()))
    }

    /// One embedding per window of the mel frames (see the module docs), in time order.
    /// Fewer than [`WINDOW`] frames is [`ErrorKind::AudioTooShort`]: pad short words with
    /// silence first ([`pad_to_window`]).
    ///
    /// The model runs once over all the frames (the manifest derives it `windows_over_time`):
    /// its time convolutions are "valid" and its poolings stride 8 frames in time, so its
    /// outputs are exactly the windows' embeddings every [`STRIDE`] frames, without
    /// recomputing where neighbouring windows overlap. They come channel by channel (the
    /// last convolution's `[1, 96, windows, 1]` flattened), and are read back window by window.
    pub fn embed_mel(&self, mel: &Array2<f32>) -> Result<Vec<[f32; DIM]>> {
        let frames = mel.nrows();
        if frames < WINDOW || mel.ncols() != MEL_BANDS {
            return Err(Error::new(
                ErrorKind::AudioTooShort,
                format!("{frames} mel frames are fewer than one window of {WINDOW}"),
            ));
        }
        let windows = (frames - WINDOW) / STRIDE + 1;
        let input = mel
            .view()
            .into_shape_with_order((1, frames, MEL_BANDS, 1))
            .map_err(|e| Error::new(ErrorKind::Inference, e.to_string()))?;
        let out = self
            .embedding
            .run_first_output(&input.to_owned(), "speech embedding")?;
        if out.len() != windows * DIM {
            return Err(Error::new(
                ErrorKind::Inference,
                format!(
                    "the speech embedding gave {} values for {windows} windows",
                    out.len()
                ),
            ));
        }
        Ok((0..windows)
            .map(|w| std::array::from_fn(|d| out[d * windows + w]))
            .collect())
    }

    /// The embeddings of 16 kHz samples in [−1, 1]: [`SpeechEmbedder::mel`] then
    /// [`SpeechEmbedder::embed_mel`].
    pub fn embed(&self, samples: &[f32]) -> Result<Vec<[f32; DIM]>> {
        self.embed_mel(&self.mel(samples)?)
    }
}

/// A word's windows pooled into one vector: the mean of every dimension, then its maximum
/// (`2 × DIM` values). `None` without windows.
pub fn pooled(windows: &[[f32; DIM]]) -> Option<Vec<f32>> {
    if windows.is_empty() {
        return None;
    }
    let mut mean = vec![0f32; DIM];
    let mut max = vec![f32::NEG_INFINITY; DIM];
    for w in windows {
        for d in 0..DIM {
            mean[d] += w[d];
            max[d] = max[d].max(w[d]);
        }
    }
    let n = windows.len() as f32;
    mean.iter_mut().for_each(|m| *m /= n);
    mean.extend(max);
    Some(mean)
}

/// The pooled features of one spoken word (16 kHz samples in [−1, 1]): `margin` samples of
/// silence on each side (so that several windows slide across the word), padded to at least
/// one window ([`pad_to_window`]), embedded, pooled ([`pooled`]).
pub fn word_features(embedder: &SpeechEmbedder, word: &[f32], margin: usize) -> Result<Vec<f32>> {
    let mut padded = vec![0f32; margin];
    padded.extend_from_slice(word);
    padded.extend(std::iter::repeat_n(0f32, margin));
    let windows = embedder.embed(&pad_to_window(&padded))?;
    pooled(&windows).ok_or_else(|| Error::new(ErrorKind::AudioTooShort, "no window"))
}

/// `samples` with silence added evenly before and after so that they give at least one
/// window (a spoken digit lasts 0.3–0.6 s; a window needs about 0.8 s).
pub fn pad_to_window(samples: &[f32]) -> Vec<f32> {
    let need = SpeechEmbedder::min_samples();
    if samples.len() >= need {
        return samples.to_vec();
    }
    let before = (need - samples.len()) / 2;
    let mut out = vec![0f32; need];
    out[before..before + samples.len()].copy_from_slice(samples);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_is_the_mean_then_the_maximum() {
        let mut a = [0f32; DIM];
        let mut b = [0f32; DIM];
        a[0] = 1.0;
        b[0] = 3.0;
        b[5] = -2.0;
        let p = pooled(&[a, b]).unwrap();
        assert_eq!(p.len(), 2 * DIM);
        assert_eq!((p[0], p[5], p[DIM], p[DIM + 5]), (2.0, -1.0, 3.0, 0.0));
        assert!(pooled(&[]).is_none());
    }

    #[test]
    fn short_words_are_padded_evenly_to_one_window() {
        let word = vec![0.5f32; 4000];
        let padded = pad_to_window(&word);
        assert_eq!(padded.len(), SpeechEmbedder::min_samples());
        let before = padded.iter().position(|&v| v != 0.0).unwrap();
        let after = padded.len() - 1 - padded.iter().rposition(|&v| v != 0.0).unwrap();
        assert!(before.abs_diff(after) <= 1, "{before} {after}");
        let long = vec![0.1f32; 20_000];
        assert_eq!(pad_to_window(&long), long);
    }
}
