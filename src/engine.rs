//! The engine: the one place that orchestrates models into enrollments and decisions.
//!
//! The daemon and the CLI are thin layers over [`Engine`]. It is `Send + Sync`: one engine
//! serves every thread, each inference taking a pooled session of its own.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::face::quality;
use crate::face::{
    Detection, Embedding, FaceBox, FaceImage, FacePipeline, FaceSample, Liveness, LivenessResult,
};
use crate::models::Manifest;
use crate::runtime::Runtime;
use crate::template::{Modality, Template, TemplateHeader};
use crate::vault::TemplateVault;
use crate::voice::encoder::VoiceEncoder;

/// A face enrollment: the mean embedding of several samples, bound to the model that made it.
///
/// Kept in memory only for now; encrypted storage is the template module's job.
#[derive(Debug, Clone)]
pub struct FaceTemplate {
    subject: String,
    model_id: String,
    embedding: Embedding,
    samples: usize,
    quality: f32,
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
    liveness: Liveness,
    /// The voice encoder, loaded on first use: terminals that never use voice never load it.
    voice: std::sync::OnceLock<Result<VoiceEncoder>>,
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
        let liveness = Liveness::new(&runtime, &manifest, &config.models.dir, &config.liveness)?;
        Ok(Engine {
            config,
            runtime,
            manifest,
            face,
            liveness,
            voice: std::sync::OnceLock::new(),
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

    /// The liveness ensemble.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    /// The voice encoder of the manifest (`voice.encoder`, by default `resemblyzer`), loaded
    /// and verified on first use; a loading error is returned on every call.
    pub fn voice_encoder(&self) -> Result<&VoiceEncoder> {
        let loaded = self.voice.get_or_init(|| {
            let spec = self.manifest.get(&self.config.voice.encoder)?;
            VoiceEncoder::new(&self.runtime, spec, &self.config.models.dir)
        });
        loaded
            .as_ref()
            .map_err(|e| Error::new(e.kind(), e.message().to_string()))
    }

    /// Passive liveness over the frames of one presentation (1 to `liveness.max_frames`
    /// images of one size), each frame's largest face detected. See
    /// [`Engine::assess_liveness_frames`].
    pub fn assess_liveness(&self, frames: &[&[u8]]) -> Result<LivenessResult> {
        self.check_frame_count(frames.len())?;
        let images = frames
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                self.decode_image(bytes)
                    .map_err(|e| Error::new(e.kind(), format!("frame {}: {}", i + 1, e.message())))
            })
            .collect::<Result<Vec<_>>>()?;
        self.assess_liveness_frames(&images, None)
    }

    /// Passive liveness over decoded frames. With `boxes` (one per frame) the caller names the
    /// face, e.g. `FaceBox::whole` for images that are already face crops; otherwise each
    /// frame's largest detected face is judged.
    ///
    /// Refused with [`ErrorKind::InvalidInput`]: no frames, more than `liveness.max_frames`,
    /// frames of different sizes, a box count that differs from the frame count, a box of
    /// zero area or outside its frame, and a face that moves between consecutive frames by
    /// more than `liveness.min_frame_iou` allows (not one presentation). A frame without a
    /// face is [`ErrorKind::NoFace`].
    pub fn assess_liveness_frames(
        &self,
        frames: &[FaceImage],
        boxes: Option<&[FaceBox]>,
    ) -> Result<LivenessResult> {
        self.check_frame_count(frames.len())?;
        let (w, h) = (frames[0].width(), frames[0].height());
        if let Some(i) = frames
            .iter()
            .position(|f| (f.width(), f.height()) != (w, h))
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "frame {} is {}x{} but frame 1 is {w}x{h}; the frames of one presentation come from one camera",
                    i + 1,
                    frames[i].width(),
                    frames[i].height()
                ),
            ));
        }
        if let Some(boxes) = boxes.filter(|b| b.len() != frames.len()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} face boxes for {} frames", boxes.len(), frames.len()),
            ));
        }
        let mut faces = Vec::with_capacity(frames.len());
        for (i, frame) in frames.iter().enumerate() {
            let (face, landmarks) = match boxes {
                Some(boxes) => (boxes[i], None),
                None => {
                    let detection = self.largest_face(frame).map_err(|e| {
                        Error::new(e.kind(), format!("frame {}: {}", i + 1, e.message()))
                    })?;
                    (
                        FaceBox::from_corners(detection.bbox),
                        Some(detection.landmarks),
                    )
                }
            };
            face.validate(frame)
                .map_err(|e| Error::new(e.kind(), format!("frame {}: {}", i + 1, e.message())))?;
            faces.push((face, landmarks));
        }
        for (i, pair) in faces.windows(2).enumerate() {
            let overlap = pair[0].0.iou(&pair[1].0);
            if overlap < self.config.liveness.min_frame_iou {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "the face moved between frames {} and {} (box overlap {overlap:.2}, at least {:.2} required): not one presentation",
                        i + 1,
                        i + 2,
                        self.config.liveness.min_frame_iou
                    ),
                ));
            }
        }
        let mut scored = Vec::with_capacity(frames.len());
        let mut reports = Vec::with_capacity(frames.len());
        for (frame, (face, landmarks)) in frames.iter().zip(&faces) {
            reports.push(quality::assess(
                frame,
                face,
                landmarks.as_ref(),
                &self.config.quality,
            ));
            scored.push(self.liveness.score_frame(frame, face)?);
        }
        self.liveness.fuse(scored, reports)
    }

    /// The quality report of an image's largest face (found at full resolution, as for
    /// liveness).
    pub fn face_quality(&self, bytes: &[u8]) -> Result<quality::QualityReport> {
        let image = self.decode_image(bytes)?;
        let face = self.largest_face(&image)?;
        Ok(quality::assess(
            &image,
            &FaceBox::from_corners(face.bbox),
            Some(&face.landmarks),
            &self.config.quality,
        ))
    }

    fn check_frame_count(&self, count: usize) -> Result<()> {
        let max = self.config.liveness.max_frames;
        if count == 0 || count > max {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("liveness takes 1 to {max} frames (liveness.max_frames), got {count}"),
            ));
        }
        Ok(())
    }

    fn largest_face(&self, image: &FaceImage) -> Result<Detection> {
        let faces = self
            .face
            .detector()
            .detect_at(image, self.config.liveness.detect_max_side)?;
        crate::face::detect::largest(&faces)
            .copied()
            .ok_or_else(|| Error::new(ErrorKind::NoFace, "no face was found in the frame"))
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
        let mut scores = Vec::with_capacity(samples.len());
        let embeddings = samples
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                self.face_sample(bytes)
                    .map(|s| {
                        scores.push(s.face.score);
                        s.embedding
                    })
                    .map_err(|e| {
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
            quality: scores.iter().sum::<f32>() / scores.len().max(1) as f32,
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

    /// Enrolls `subject` from face images into the vault (one template: the mean of the
    /// samples' embeddings, sealed and stored). Returns the template id.
    pub fn enroll_face_stored(
        &self,
        vault: &TemplateVault,
        subject: &str,
        samples: &[&[u8]],
    ) -> Result<i64> {
        let face = self.enroll_face(subject, samples)?;
        let template = self.face_template(&[face.embedding], face.samples, face.quality)?;
        vault.enroll(subject, &template)
    }

    /// A face template (not yet sealed) from the embeddings of `samples` accepted samples:
    /// their normalised mean, bound to this engine's embedder.
    pub fn face_template(
        &self,
        embeddings: &[Embedding],
        samples: usize,
        quality: f32,
    ) -> Result<Template> {
        let spec = self.face.embedder().spec();
        let mut sha = [0u8; 32];
        hex::decode_to_slice(&spec.sha256, &mut sha)
            .map_err(|_| Error::new(ErrorKind::Manifest, "the embedder's sha256 is not hex"))?;
        let mean = Embedding::mean(embeddings)?;
        let header = TemplateHeader {
            modality: Modality::Face,
            model_id: spec.id(),
            model_sha256: sha,
            dimension: mean.dim() as u32,
            samples: samples as u32,
            quality,
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        };
        Template::new(header, mean.values().to_vec())
    }

    /// Verifies a probe image against `subject`'s stored face templates (1:1): the best
    /// cosine over the subject's template set.
    pub fn verify_face_stored(
        &self,
        vault: &TemplateVault,
        subject: &str,
        probe: &[u8],
    ) -> Result<FaceMatch> {
        let started = Instant::now();
        let model_id = self.face.embedder().spec().id();
        let templates = vault.load(subject, Modality::Face, &model_id)?;
        let sample = self.face_sample(probe)?;
        let protected = Embedding::from_raw(vault.protect(sample.embedding.values())?)?;
        let mut best = f32::NEG_INFINITY;
        for t in &templates {
            let enrolled = Embedding::from_raw(t.values().to_vec())?;
            best = best.max(enrolled.cosine(&protected)?);
        }
        Ok(self.decide(best, sample.face_count, started))
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
