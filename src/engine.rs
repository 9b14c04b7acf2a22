//! The engine: the models, loaded and verified, turning bytes into evidence.
//!
//! [`Engine`] decodes images, observes a presentation (one detection per frame: see
//! [`crate::face::presentation`]), scores its liveness and embeds its face, and loads the voice
//! encoder on first use. It returns evidence only and decides nothing: the
//! [`crate::authenticator::Authenticator`] holds the evidence to thresholds through
//! [`crate::decision`]. A few research helpers (comparing two images, in-memory templates)
//! return scores for evaluation and demonstrations; they make and record no decision.
//!
//! It is `Send + Sync`: one engine serves every thread, each inference taking a pooled session
//! of its own.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::ValidConfig;
use crate::embedding::Embedding;
use crate::error::{Error, ErrorKind, Result};
use crate::face::follow::{self, MotionEvidence};
use crate::face::presentation::{self, Presentation, PresentedFace};
use crate::face::{
    Detection, FaceImage, FacePipeline, FaceSample, Liveness, LivenessEvidence, PresentedEmbedding,
    QualityReport,
};
use crate::models::Manifest;
use crate::runtime::Runtime;
use crate::template::{Modality, Template, TemplateHeader};
use crate::voice::SpeakerModelKind;
use crate::voice::encoder::VoiceEncoder;
use crate::voice::speech_embedding::SpeechEmbedder;
use crate::voice::ubm::{GmmUbm, ScoreNorm, Ubm};

/// How many frontal frames of a challenge response are embedded to check that one person
/// answered it (the first against up to this many minus one, spread over the response).
const IDENTITY_CHECKS: usize = 4;

/// A face reference kept in memory, for research and demonstrations: the mean embedding of
/// several images, bound to the model that made it. Never stored; stored templates are made by
/// [`crate::authenticator::Authenticator::enroll`].
#[derive(Debug, Clone)]
pub struct FaceTemplate {
    subject: String,
    model_id: String,
    embedding: Embedding,
    samples: usize,
}

impl FaceTemplate {
    /// The subject it was made for.
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

/// A research comparison of a probe face with another face or a template: a score, not a
/// decision.
#[derive(Clone, Debug, Serialize)]
pub struct FaceComparison {
    /// Cosine similarity of the embeddings.
    pub score: f32,
    /// How many faces the probe image held (the largest was used).
    pub probe_faces: usize,
    /// Time from image bytes to score.
    pub elapsed: Duration,
}

/// A presentation's liveness evidence with the faces it was scored on (research tools show
/// both).
#[derive(Clone, Debug, Serialize)]
pub struct LivenessAssessment {
    /// The scores.
    pub liveness: LivenessEvidence,
    /// Each frame's face: box, landmarks, other faces, quality measurements.
    pub faces: Vec<PresentedFace>,
}

/// The vouch engine. Create one per process and share it.
#[derive(Debug)]
pub struct Engine {
    config: ValidConfig,
    runtime: Runtime,
    manifest: Manifest,
    face: FacePipeline,
    liveness: Liveness,
    /// The voice encoder, loaded on first use: terminals that never use voice never load it.
    voice: std::sync::OnceLock<Result<VoiceEncoder>>,
    speech: std::sync::OnceLock<Result<SpeechEmbedder>>,
    digit_head: std::sync::OnceLock<Result<crate::voice::digit_head::DigitHead>>,
    gmm: std::sync::OnceLock<Result<GmmUbm>>,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
};

impl Engine {
    /// Loads ONNX Runtime, the manifest and the face models, verifying every model file and its
    /// input/output contract. All model problems surface here, not at the first request.
    pub fn new(config: ValidConfig) -> Result<Engine> {
        let runtime = Runtime::load(&config.runtime)?;
        let manifest = config.models.manifest()?;
        let face = FacePipeline::new(&runtime, &manifest, &config.models.dir, &config.face)?;
        // the fusion file was read by Config::validate; here its model ids (with the files'
        // hashes) are checked against the models just loaded
        let fusion = config
            .liveness_calibration()
            .map(|c| c.fusion())
            .transpose()?;
        let liveness = Liveness::new(&runtime, &manifest, &config.models.dir, &config.liveness)?
            .with_fusion(fusion)?;
        Ok(Engine {
            config,
            runtime,
            manifest,
            face,
            liveness,
            voice: std::sync::OnceLock::new(),
            speech: std::sync::OnceLock::new(),
            digit_head: std::sync::OnceLock::new(),
            gmm: std::sync::OnceLock::new(),
        })
    }

    /// The configuration the engine was built with.
    pub fn config(&self) -> &ValidConfig {
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

    /// Face detections run since the engine started (one per observed frame).
    pub fn detections_run(&self) -> u64 {
        self.face.detector().runs()
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

    /// The speech embedding of the manifest (`voice.speech_embedding`), loaded and verified on
    /// first use; a loading error is returned on every call.
    pub fn speech_embedder(&self) -> Result<&SpeechEmbedder> {
        let loaded = self.speech.get_or_init(|| {
            let [mel, embedding] = &self.config.voice.speech_embedding;
            SpeechEmbedder::new(
                &self.runtime,
                self.manifest.get(mel)?,
                self.manifest.get(embedding)?,
                &self.config.models.dir,
            )
        });
        loaded
            .as_ref()
            .map_err(|e| Error::new(e.kind(), e.message().to_string()))
    }

    /// The GMM-UBM speaker model over `voice.ubm` (under the model directory when relative),
    /// S-normalised, loaded and verified on first use; a loading error is returned on every
    /// call.
    pub fn gmm_ubm(&self) -> Result<&GmmUbm> {
        let loaded = self.gmm.get_or_init(|| {
            let path = self.config.models.dir.join(&self.config.voice.ubm);
            let ubm = Ubm::open(&path).map_err(|e| {
                Error::new(
                    e.kind(),
                    format!(
                        "{}; train it with `vouch voice train-ubm ../shared/data/librispeech/train-clean-100 -o {}` (scripts/setup.sh does), or leave \"gmm\" out of voice.speaker_models",
                        e.message(),
                        path.display()
                    ),
                )
            })?;
            GmmUbm::new(ubm, ScoreNorm::S)
        });
        loaded
            .as_ref()
            .map_err(|e| Error::new(e.kind(), e.message().to_string()))
    }

    /// The speaker models of `voice.speaker_models`, in that order, each loaded on first use.
    pub fn speaker_models(&self) -> Result<Vec<&dyn crate::voice::SpeakerModel>> {
        self.config
            .voice
            .speaker_models
            .iter()
            .map(|kind| -> Result<&dyn crate::voice::SpeakerModel> {
                Ok(match kind {
                    SpeakerModelKind::Encoder => self.voice_encoder()?,
                    SpeakerModelKind::Gmm => self.gmm_ubm()?,
                })
            })
            .collect()
    }

    /// The digit head built into the library, parsed on first use.
    pub fn digit_head(&self) -> Result<&crate::voice::digit_head::DigitHead> {
        self.digit_head
            .get_or_init(crate::voice::digit_head::DigitHead::builtin)
            .as_ref()
            .map_err(|e| Error::new(e.kind(), e.message().to_string()))
    }

    /// Decodes image bytes under the configured limits.
    pub fn decode_image(&self, bytes: &[u8]) -> Result<FaceImage> {
        FaceImage::decode(bytes, &self.config.limits)
    }

    /// Decodes every image of a request, an error naming the one that failed (`what 2: …`).
    pub fn decode_images(&self, images: &[&[u8]], what: &str) -> Result<Vec<FaceImage>> {
        images
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                self.decode_image(bytes)
                    .map_err(|e| Error::new(e.kind(), format!("{what} {}: {}", i + 1, e.message())))
            })
            .collect()
    }

    /// Observes the frames of one presentation (1 to `liveness.max_frames` frames of one
    /// size): one detection per frame, each frame's largest face with its landmarks, the other
    /// faces' share and the quality measurements. See [`presentation::observe`] for what is
    /// refused.
    pub fn observe<'a>(&self, frames: &'a [FaceImage]) -> Result<Presentation<'a>> {
        let max = self.config.liveness.max_frames;
        if frames.is_empty() || frames.len() > max {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a presentation takes 1 to {max} frames (liveness.max_frames), got {}",
                    frames.len()
                ),
            ));
        }
        presentation::observe(
            self.face.detector(),
            frames,
            self.config.liveness.min_frame_iou,
        )
    }

    /// Follows the face through the frames of an active liveness challenge's response
    /// (`times` in seconds, one per frame, increasing): one detection per frame, its head pose
    /// and parallax, the movements, and the identity of its frontal frames (see
    /// [`crate::face::follow`]). Evidence only: [`crate::decision::active_liveness`] judges it.
    pub fn follow(&self, frames: &[FaceImage], times: &[f64]) -> Result<MotionEvidence> {
        follow::follow(
            &self.face,
            frames,
            times,
            &self.config.face.motion,
            IDENTITY_CHECKS,
        )
    }

    /// Passive liveness of a presentation, on the faces its detections found; frames whose
    /// score lands near `jitter_around` (the threshold it will be held to) are re-scored with
    /// jittered crops when `liveness.jitter` says so.
    pub fn liveness_of(
        &self,
        presentation: &Presentation<'_>,
        jitter_around: f32,
    ) -> Result<LivenessEvidence> {
        self.liveness.assess(presentation, jitter_around)
    }

    /// The embedder's probe of a presentation: its sharpest frames (`face.probe_frames`),
    /// each aligned from that frame's one detection — the face whose liveness
    /// [`Engine::liveness_of`] scores.
    pub fn embed(&self, presentation: &Presentation<'_>) -> Result<PresentedEmbedding> {
        let frames = presentation.sharpest_frames(self.config.face.probe_frames);
        self.face.embed_presented(presentation, &frames, false)
    }

    /// The embedding spaces of the embedder and of each fused embedder, in that order: the
    /// models a fused face score combines ([`crate::score::fused_model_id`] names its
    /// calibration).
    pub fn fused_face_models(&self) -> Vec<String> {
        std::iter::once(self.face.embedder())
            .chain(self.face.fused_embedders())
            .map(|e| e.spec().embedding_space())
            .collect()
    }

    /// [`Engine::embed`], and the same frames by each fused embedder (`face.fused_embedders`):
    /// the probe of a tier that asks for the fused face score, and of an enrollment.
    pub fn embed_for_fusion(&self, presentation: &Presentation<'_>) -> Result<PresentedEmbedding> {
        let frames = presentation.sharpest_frames(self.config.face.probe_frames);
        self.face.embed_presented(presentation, &frames, true)
    }

    /// Research: the liveness scores of frames of one presentation (image bytes), with the
    /// faces they were scored on, jittered around `decisions.liveness_threshold`.
    pub fn assess_liveness(&self, frames: &[&[u8]]) -> Result<LivenessAssessment> {
        let images = self.decode_images(frames, "frame")?;
        self.assess_liveness_images(&images)
    }

    /// Research: [`Engine::assess_liveness`] over decoded frames.
    pub fn assess_liveness_images(&self, frames: &[FaceImage]) -> Result<LivenessAssessment> {
        let presentation = self.observe(frames)?;
        let liveness = self.liveness_of(&presentation, self.config.decisions.liveness_threshold)?;
        Ok(LivenessAssessment {
            liveness,
            faces: presentation.faces().to_vec(),
        })
    }

    /// The quality measurements of an image's face (found by the one detection a frame gets).
    pub fn face_quality(&self, bytes: &[u8]) -> Result<QualityReport> {
        let image = self.decode_image(bytes)?;
        let presentation = self.observe(std::slice::from_ref(&image))?;
        Ok(presentation.faces()[0].quality.clone())
    }

    /// Every face in an image, highest score first.
    pub fn detect_faces(&self, bytes: &[u8]) -> Result<Vec<Detection>> {
        self.face.detect(&self.decode_image(bytes)?)
    }

    /// Research: decodes an image and embeds its largest face.
    pub fn face_sample(&self, bytes: &[u8]) -> Result<FaceSample> {
        self.face.analyze(&self.decode_image(bytes)?)
    }

    /// Research: the cosine of the largest faces of two images. A score, not a decision.
    pub fn compare_faces(&self, a: &[u8], b: &[u8]) -> Result<FaceComparison> {
        let started = Instant::now();
        let first = self.face_sample(a)?;
        let second = self.face_sample(b)?;
        Ok(FaceComparison {
            score: first.embedding.cosine(&second.embedding)?,
            probe_faces: second.face_count,
            elapsed: started.elapsed(),
        })
    }

    /// Research: an in-memory face reference for `subject` from several images (at least one),
    /// the normalised mean of their embeddings. Nothing is checked for quality or liveness and
    /// nothing is stored: enrollment is [`crate::authenticator::Authenticator::enroll`].
    pub fn face_template_from(&self, subject: &str, samples: &[&[u8]]) -> Result<FaceTemplate> {
        if subject.is_empty() || subject.len() > 256 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a subject id must be 1 to 256 bytes long",
            ));
        }
        if samples.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a face template needs at least one face image",
            ));
        }
        let embeddings = samples
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                self.face_sample(bytes)
                    .map(|s| s.embedding)
                    .map_err(|e| Error::new(e.kind(), format!("sample {}: {}", i + 1, e.message())))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FaceTemplate {
            subject: subject.to_string(),
            model_id: self.face.embedder().spec().embedding_space(),
            embedding: Embedding::mean(&embeddings)?,
            samples: embeddings.len(),
        })
    }

    /// Research: the cosine of a probe image's largest face against an in-memory reference. A
    /// reference made by another model is refused ([`ErrorKind::TemplateModelMismatch`]).
    pub fn compare_with_template(
        &self,
        template: &FaceTemplate,
        probe: &[u8],
    ) -> Result<FaceComparison> {
        let started = Instant::now();
        let model_id = self.face.embedder().spec().embedding_space();
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
        Ok(FaceComparison {
            score: template.embedding.cosine(&sample.embedding)?,
            probe_faces: sample.face_count,
            elapsed: started.elapsed(),
        })
    }

    /// A face template (not yet sealed) from the embeddings of `samples` accepted samples:
    /// their normalised mean, bound to this engine's embedder's embedding space (the model it
    /// approximates, if any) and recording the sha256 of the file that made it.
    pub fn template_of(
        &self,
        embeddings: &[Embedding],
        samples: usize,
        quality: f32,
    ) -> Result<Template> {
        face_template(self.face.embedder().spec(), embeddings, samples, quality)
    }
}

/// A face template (not yet sealed) from embeddings made by the embedder `spec`: their
/// normalised mean, bound to its embedding space and recording the sha256 of its file.
pub fn face_template(
    spec: &crate::models::ModelSpec,
    embeddings: &[Embedding],
    samples: usize,
    quality: f32,
) -> Result<Template> {
    let mut sha = [0u8; 32];
    hex::decode_to_slice(&spec.sha256, &mut sha)
        .map_err(|_| Error::new(ErrorKind::Manifest, "the embedder's sha256 is not hex"))?;
    let mean = Embedding::mean(embeddings)?;
    let header = TemplateHeader {
        modality: Modality::Face,
        model_id: spec.embedding_space(),
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
