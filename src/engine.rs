//! The engine: the one place that orchestrates models into enrollments and decisions.
//!
//! The daemon and the CLI are thin layers over [`Engine`]. It is `Send + Sync`: one engine
//! serves every thread, each inference taking a pooled session of its own.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::face::{Detection, Embedding, FaceImage, FacePipeline, FaceSample};
use crate::models::Manifest;
use crate::runtime::Runtime;

/// A face enrollment: the mean embedding of several samples, bound to the model that made it.
///
/// Kept in memory only for now; encrypted storage is the template module's job.
#[derive(Debug, Clone)]
pub struct FaceTemplate {
    subject: String,
    model_id: String,
    embedding: Embedding,
    samples: usize,
}

impl FaceTemplate {
    /// The enrolled subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The embedding model that made the template (`name@sha256-prefix`).
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// How many samples were averaged.
    pub fn samples(&self) -> usize {
        self.samples
    }
}

/// The outcome of comparing a probe face with a template or another face.
#[derive(Clone, Debug, Serialize)]
pub struct FaceMatch {
    /// Cosine similarity of the embeddings.
    pub score: f32,
    /// The threshold the decision used.
    pub threshold: f32,
    /// `score >= threshold`.
    pub is_match: bool,
    /// How many faces the probe image held (the largest was used).
    pub probe_faces: usize,
    /// Time from image bytes to score.
    pub elapsed: Duration,
}

/// The vouch engine. Create one per process and share it.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    runtime: Runtime,
    manifest: Manifest,
    face: FacePipeline,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
};

impl Engine {
    /// Loads ONNX Runtime, the manifest and the face models, verifying every model file and its
    /// input/output contract. All configuration and model problems surface here, not at the
    /// first request.
    pub fn new(config: Config) -> Result<Engine> {
        config.validate()?;
        let runtime = Runtime::load(&config.runtime)?;
        let manifest = match &config.models.manifest {
            Some(path) => Manifest::load(path)?,
            None => Manifest::builtin(),
        };
        let face = FacePipeline::new(&runtime, &manifest, &config.models.dir, &config.face)?;
        Ok(Engine {
            config,
            runtime,
            manifest,
            face,
        })
    }

    /// The configuration the engine was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The loaded ONNX Runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The model manifest in use.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The face pipeline.
    pub fn face(&self) -> &FacePipeline {
        &self.face
    }

    /// Decodes image bytes under the configured limits.
    pub fn decode_image(&self, bytes: &[u8]) -> Result<FaceImage> {
        FaceImage::decode(bytes, &self.config.limits)
    }

    /// Every face in an image, highest score first.
    pub fn detect_faces(&self, bytes: &[u8]) -> Result<Vec<Detection>> {
        self.face.detect(&self.decode_image(bytes)?)
    }

    /// Decodes an image and embeds its largest face.
    pub fn face_sample(&self, bytes: &[u8]) -> Result<FaceSample> {
        self.face.analyze(&self.decode_image(bytes)?)
    }

    /// Compares the largest faces of two images at the configured threshold.
    pub fn compare_faces(&self, a: &[u8], b: &[u8]) -> Result<FaceMatch> {
        let started = Instant::now();
        let first = self.face_sample(a)?;
        let second = self.face_sample(b)?;
        let score = first.embedding.cosine(&second.embedding)?;
        Ok(self.decide(score, second.face_count, started))
    }

    /// Enrolls `subject` from several face images (at least one; three or more make a steadier
    /// template). The template is the normalised mean of the samples' embeddings.
    pub fn enroll_face(&self, subject: &str, samples: &[&[u8]]) -> Result<FaceTemplate> {
        if subject.is_empty() || subject.len() > 256 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a subject id must be 1 to 256 bytes long",
            ));
        }
        if samples.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "enrollment needs at least one face image",
            ));
        }
        let embeddings = samples
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                self.face_sample(bytes).map(|s| s.embedding).map_err(|e| {
                    Error::new(
                        e.kind(),
                        format!("enrollment sample {}: {}", i + 1, e.message()),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FaceTemplate {
            subject: subject.to_string(),
            model_id: self.face.embedder().spec().id(),
            embedding: Embedding::mean(&embeddings)?,
            samples: embeddings.len(),
        })
    }

    /// Verifies a probe image against a template (1:1).
    pub fn verify_face(&self, template: &FaceTemplate, probe: &[u8]) -> Result<FaceMatch> {
        let started = Instant::now();
        let model_id = self.face.embedder().spec().id();
        if template.model_id != model_id {
            return Err(Error::new(
                ErrorKind::TemplateModelMismatch,
                format!(
                    "the template was made by model {}, this engine embeds with {model_id}; re-enrollment required",
                    template.model_id
                ),
            ));
        }
        let sample = self.face_sample(probe)?;
        let score = template.embedding.cosine(&sample.embedding)?;
        Ok(self.decide(score, sample.face_count, started))
    }

    fn decide(&self, score: f32, probe_faces: usize, started: Instant) -> FaceMatch {
        let threshold = self.config.face.match_threshold;
        FaceMatch {
            score,
            threshold,
            is_match: score >= threshold,
            probe_faces,
            elapsed: started.elapsed(),
        }
    }
}
