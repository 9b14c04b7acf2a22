//! The face pipeline: decode → detect (5 landmarks) → align → embed → compare.
//!
//! This module owns everything between image bytes and a face embedding. It never stores or
//! logs pixels or embeddings, and never decides a transaction: that is the engine's job.

pub mod align;
pub mod detect;
pub mod embed;
pub mod image;
pub mod liveness;
pub mod quality;
pub mod resample;

use std::time::{Duration, Instant};

use serde::Serialize;

pub use align::{AlignedFace, align};
pub use detect::{Detection, Detector};
pub use embed::{Embedder, Embedding};
pub use image::FaceImage;
pub use liveness::{FaceBox, Jitter, Liveness, LivenessConfig, LivenessResult};
pub use quality::{QualityConfig, QualityReport};

use crate::config::FaceConfig;
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

/// Detector and embedder, loaded and verified together.
#[derive(Debug)]
pub struct FacePipeline {
    detector: Detector,
    embedder: Embedder,
}

impl FacePipeline {
    /// Loads the detector and embedder named in `config` from `model_dir`, verifying each.
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
        Ok(FacePipeline { detector, embedder })
    }

    /// The detector.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The embedder.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Every face in the image, highest score first.
    pub fn detect(&self, image: &FaceImage) -> Result<Vec<Detection>> {
        self.detector.detect(image)
    }

    /// Detects faces, keeps the largest, aligns and embeds it. An image without a face is a
    /// [`ErrorKind::NoFace`] error.
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
