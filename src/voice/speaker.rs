//! Text-independent speaker verification behind one trait, with two implementations: the GE2E
//! voice encoder ([`crate::voice::encoder::VoiceEncoder`], cosine of 256-d embeddings) and the
//! GMM-UBM ([`crate::voice::ubm::GmmUbm`], MAP-adapted means, normalised log-likelihood ratio).
//!
//! A recording is analysed once into a [`VoiceSample`] (an embedding, or frames with their top
//! UBM components); samples enroll a [`Voiceprint`] or are scored against one. Higher scores
//! mean "more likely the same speaker"; each model has its own scale, so thresholds belong to
//! a model.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::embedding::Embedding;
use crate::error::{Error, ErrorKind, Result};
use crate::voice::audio::Audio;
use crate::voice::gmm::GmmProbe;

/// A speaker model: analyses recordings, enrolls voiceprints, scores probes.
pub trait SpeakerModel: Send + Sync {
    /// The model's identity (`name@hash-prefix`), bound into its voiceprints.
    fn model_id(&self) -> &str;

    /// Analyses one recording (16 kHz mono).
    fn analyse(&self, audio: &Audio) -> Result<VoiceSample>;

    /// A voiceprint from one or more analysed recordings of the same speaker.
    fn enroll(&self, samples: &[&VoiceSample]) -> Result<Voiceprint>;

    /// How well `probe` matches `voiceprint`; higher is more alike.
    fn score(&self, voiceprint: &Voiceprint, probe: &VoiceSample) -> Result<f64>;

    /// The sha256 of the model's file (the ONNX model, the UBM file), bound into its
    /// templates.
    fn model_sha256(&self) -> [u8; 32];

    /// Whether voiceprints and probes are unit embeddings compared by cosine, which a keyed
    /// orthogonal transform leaves unchanged (so they may be stored in a vault's renewable
    /// space, [`VoiceSample::transform_embedding`] moving probes there). A GMM's adapted means
    /// are not.
    fn compares_embeddings(&self) -> bool;
}

/// An enrolled speaker: the model's numbers and the model they belong to. Biometric data:
/// wiped on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Zeroize, ZeroizeOnDrop)]
pub struct Voiceprint {
    #[zeroize(skip)]
    model_id: String,
    values: Vec<f32>,
}

impl std::fmt::Debug for Voiceprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Voiceprint")
            .field("model_id", &self.model_id)
            .field(
                "values",
                &format_args!("[{} values redacted]", self.values.len()),
            )
            .finish()
    }
}

impl Voiceprint {
    /// A voiceprint of `model_id` (e.g. read back from a template); values must be finite.
    pub fn new(model_id: impl Into<String>, values: Vec<f32>) -> Result<Voiceprint> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a voiceprint has at least one value, all finite",
            ));
        }
        Ok(Voiceprint {
            model_id: model_id.into(),
            values,
        })
    }

    /// The model that made it.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Its values (what a template stores).
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Refuses a voiceprint made by another model.
    pub(crate) fn check_model(&self, model_id: &str) -> Result<()> {
        if self.model_id == model_id {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::TemplateModelMismatch,
                format!(
                    "the voiceprint was made by {}, this speaker model is {model_id}; re-enrollment required",
                    self.model_id
                ),
            ))
        }
    }
}

/// A recording analysed by a speaker model, ready to enroll or to probe.
#[derive(Clone, Debug)]
pub struct VoiceSample {
    pub(crate) model_id: String,
    pub(crate) analysis: Analysis,
}

#[derive(Clone, Debug)]
pub(crate) enum Analysis {
    Embedding(Embedding),
    Gmm(Box<GmmProbe>),
}

impl VoiceSample {
    /// The model that analysed it.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The sample with its embedding replaced by `f` of its values (a vault moving a probe
    /// into its protected space); refused for a sample that holds no embedding.
    pub fn transform_embedding(
        self,
        f: impl FnOnce(&[f32]) -> Result<Vec<f32>>,
    ) -> Result<VoiceSample> {
        let Analysis::Embedding(embedding) = &self.analysis else {
            return Err(wrong_kind());
        };
        Ok(VoiceSample {
            analysis: Analysis::Embedding(Embedding::from_raw(f(embedding.values())?)?),
            model_id: self.model_id,
        })
    }

    pub(crate) fn for_model(&self, model_id: &str) -> Result<&Analysis> {
        if self.model_id == model_id {
            Ok(&self.analysis)
        } else {
            Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a sample analysed by {} cannot be used with {model_id}",
                    self.model_id
                ),
            ))
        }
    }
}

impl SpeakerModel for crate::voice::encoder::VoiceEncoder {
    fn model_id(&self) -> &str {
        self.id()
    }

    fn analyse(&self, audio: &Audio) -> Result<VoiceSample> {
        Ok(VoiceSample {
            model_id: self.id().to_string(),
            analysis: Analysis::Embedding(self.embed(audio)?),
        })
    }

    /// The normalised mean of the samples' embeddings.
    fn enroll(&self, samples: &[&VoiceSample]) -> Result<Voiceprint> {
        let embeddings = samples
            .iter()
            .map(|s| match s.for_model(self.id())? {
                Analysis::Embedding(e) => Ok(e.clone()),
                Analysis::Gmm(_) => Err(wrong_kind()),
            })
            .collect::<Result<Vec<_>>>()?;
        let mean = Embedding::mean(&embeddings)?;
        Voiceprint::new(self.id(), mean.values().to_vec())
    }

    /// Cosine similarity, in [−1, 1].
    fn score(&self, voiceprint: &Voiceprint, probe: &VoiceSample) -> Result<f64> {
        voiceprint.check_model(self.id())?;
        let Analysis::Embedding(probe) = probe.for_model(self.id())? else {
            return Err(wrong_kind());
        };
        let enrolled = Embedding::from_raw(voiceprint.values().to_vec())?;
        Ok(f64::from(enrolled.cosine(probe)?))
    }

    fn model_sha256(&self) -> [u8; 32] {
        self.sha256()
    }

    fn compares_embeddings(&self) -> bool {
        true
    }
}

pub(crate) fn wrong_kind() -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "the sample was analysed for another kind of speaker model",
    )
}
