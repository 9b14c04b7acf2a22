//! The face pipeline: decode → detect (5 landmarks) → align → embed → compare.
//!
//! This module owns everything between image bytes and face evidence: one detection per frame
//! ([`presentation`]), quality measurements, liveness scores and the embedding of the same
//! face. It returns evidence only (scores, measurements, vectors): it never compares them with
//! a threshold, which is [`crate::decision`]'s job, and it never stores or logs pixels or
//! embeddings.

pub mod align;
pub mod challenge;
mod config;
mod cvresize;
pub mod detect;
pub mod embed;
pub mod follow;
pub mod image;
pub mod liveness;
pub mod liveness_fusion;
pub mod motion;
pub mod presentation;
pub mod quality;
pub mod resample;
mod tensor;

use std::time::{Duration, Instant};

use serde::Serialize;

pub use align::{AlignedFace, align};
pub use config::{FaceConfig, MotionConfig};
pub use detect::{Detection, Detector, FaceBox};
pub use embed::Embedder;
pub use image::FaceImage;
pub use liveness::{Jitter, Liveness, LivenessConfig, LivenessEvidence};
pub use liveness_fusion::LivenessFusion;
pub use presentation::{Presentation, PresentedFace};
pub use quality::QualityReport;

use crate::embedding::Embedding;
use crate::error::{Error, ErrorKind, Result};
use crate::models::Manifest;
use crate::runtime::Runtime;

/// How long each stage of [`FacePipeline::analyze`] took.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StageTimings {
    /// Detection, including the downscale for the detector.
    pub detect: Duration,
    /// Alignment to the 112×112 template.
    pub align: Duration,
    /// Embedding.
    pub embed: Duration,
}

/// The embedding of a presentation's face, and which face it is.
#[derive(Debug)]
pub struct PresentedEmbedding {
    /// The embedder's embedding (the mean of the probe frames' normalised embeddings).
    pub embedding: Embedding,
    /// Each fused embedder's, in [`FaceConfig::fused_embedders`] order, when asked for.
    pub fused: Vec<ModelEmbedding>,
    /// The sharpest frame, the first of the probe frames.
    pub frame: usize,
    /// The frames embedded (see [`FaceConfig::probe_frames`]), sharpest first.
    pub frames: Vec<usize>,
    /// The face's box in the sharpest frame: the box its liveness was scored on.
    pub face: FaceBox,
}

/// One embedder's embedding of a face, and the embedding space it lives in (the model id
/// templates are bound to).
#[derive(Debug)]
pub struct ModelEmbedding {
    /// The embedding space ([`crate::models::ModelSpec::embedding_space`]).
    pub model: String,
    /// The embedding.
    pub embedding: Embedding,
}

/// The face chosen in an image, and its embedding.
#[derive(Debug)]
pub struct FaceSample {
    /// The chosen (largest) face.
    pub face: Detection,
    /// How many faces the image held; more than one may call for a retake.
    pub face_count: usize,
    /// Its embedding.
    pub embedding: Embedding,
    /// Time spent per stage.
    pub timings: StageTimings,
}

/// Detector and embedders, loaded and verified together.
#[derive(Debug)]
pub struct FacePipeline {
    detector: Detector,
    embedder: Embedder,
    fused: Vec<Embedder>,
}

impl FacePipeline {
    /// Loads the detector and embedders named in `config` from `model_dir`, verifying each.
    pub fn new(
        runtime: &Runtime,
        manifest: &Manifest,
        model_dir: &std::path::Path,
        config: &FaceConfig,
    ) -> Result<FacePipeline> {
        let detector = Detector::new(runtime, manifest.get(&config.detector)?, model_dir, config)?;
        let embedder = Embedder::new(
            runtime,
            manifest.get(&config.embedder)?,
            model_dir,
            config.flip_augment,
        )?;
        let fused = config
            .fused_embedders
            .iter()
            .map(|name| Embedder::new(runtime, manifest.get(name)?, model_dir, config.flip_augment))
            .collect::<Result<Vec<_>>>()?;
        // A model and its quantised copy share one embedding space: fusing them would count
        // one model's evidence twice.
        let spaces: Vec<String> = std::iter::once(&embedder)
            .chain(&fused)
            .map(|e| e.spec().embedding_space())
            .collect();
        if let Some(k) = (1..spaces.len()).find(|&k| spaces[..k].contains(&spaces[k])) {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "face.fused_embedders: {} embeds into {}, as face.embedder or another fused embedder does; fuse different models",
                    config.fused_embedders[k - 1],
                    spaces[k]
                ),
            ));
        }
        Ok(FacePipeline {
            detector,
            embedder,
            fused,
        })
    }

    /// The detector.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The embedder: every face match uses it.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// The embedders fused with it where the policy asks (`face.fused_embedders`).
    pub fn fused_embedders(&self) -> &[Embedder] {
        &self.fused
    }

    /// Every face in the image, highest score first.
    pub fn detect(&self, image: &FaceImage) -> Result<Vec<Detection>> {
        self.detector.detect(image)
    }

    /// Aligns and embeds the face of each of `frames` of a presentation (at least one, the
    /// sharpest first), from the landmarks of that frame's one detection: the face embedded is
    /// the face the presentation holds, the one whose quality and liveness were measured. The
    /// probe is the mean of the frames' normalised embeddings, by the embedder and, with
    /// `fused`, by each fused embedder.
    pub fn embed_presented(
        &self,
        presentation: &Presentation<'_>,
        frames: &[usize],
        fused: bool,
    ) -> Result<PresentedEmbedding> {
        let Some(&first) = frames.first() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a probe needs at least one frame",
            ));
        };
        let used: &[Embedder] = if fused { &self.fused } else { &[] };
        let mut primary = Vec::with_capacity(frames.len());
        let mut others: Vec<Vec<Embedding>> = vec![Vec::with_capacity(frames.len()); used.len()];
        for &frame in frames {
            let (Some(image), Some(face)) = (
                presentation.frames().get(frame),
                presentation.faces().get(frame),
            ) else {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("the presentation has no frame {}", frame + 1),
                ));
            };
            let aligned = align(image, &face.detection.landmarks)?;
            primary.push(self.embedder.embed(&aligned)?);
            for (embedder, out) in used.iter().zip(&mut others) {
                out.push(embedder.embed(&aligned)?);
            }
        }
        let fused = used
            .iter()
            .zip(&others)
            .map(|(embedder, embeddings)| {
                Ok(ModelEmbedding {
                    model: embedder.spec().embedding_space(),
                    embedding: Embedding::mean(embeddings)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PresentedEmbedding {
            embedding: Embedding::mean(&primary)?,
            fused,
            frame: first,
            frames: frames.to_vec(),
            face: presentation.faces()[first].face_box,
        })
    }

    /// Detects faces (once), keeps the largest, aligns and embeds it: one image's sample, for
    /// research and evaluation. An image without a face is a [`ErrorKind::NoFace`] error.
    pub fn analyze(&self, image: &FaceImage) -> Result<FaceSample> {
        let started = Instant::now();
        let faces = self.detector.detect(image)?;
        let detected = Instant::now();
        let face = *detect::largest(&faces).ok_or_else(|| {
            Error::new(
                ErrorKind::NoFace,
                "no face was found in the image; ask the customer to face the camera",
            )
        })?;
        let aligned = align(image, &face.landmarks)?;
        let aligned_at = Instant::now();
        let embedding = self.embedder.embed(&aligned)?;
        let embedded = Instant::now();
        Ok(FaceSample {
            face,
            face_count: faces.len(),
            embedding,
            timings: StageTimings {
                detect: detected - started,
                align: aligned_at - detected,
                embed: embedded - aligned_at,
            },
        })
    }
}
