//! Passive liveness (presentation-attack detection): an ensemble of models, each fed the crop
//! its upstream trained it on ([`LivenessCrop`], from its manifest entry).
//!
//! - **MiniFASNetV2 and V1SE** (the default ensemble): the face box scaled about its centre
//!   by the model's `crop_scale` (capped so it fits the frame), shifted back inside the frame
//!   (never padded), resized to 80×80 with a plain bilinear filter, BGR, raw 0..255.
//! - **face-antispoof** (opt-in, `face_antispoof`: trained on CelebA-Spoof, whose terms are
//!   non-commercial): [`square_reflect_crop`] — a square of 1.5× the box's longer side,
//!   reflected where it leaves the frame, resized to 128×128 as OpenCV does
//!   (`face/cvresize.rs`), RGB, ÷255. Class 0 is real.
//!
//! The wide MiniFASNet crops (2.7× and 4× the face) let the models see the edges of a printed
//! photo or a screen, so they need the full camera frame: on an image that is already a tight
//! face crop, the crop collapses to the whole image and accuracy falls sharply.
//!
//! The result is evidence: scores per model, per frame and fused, never a verdict and never an
//! error for a frame that was assessed (a spoof is an answer, not a failure). The threshold a
//! fused score must reach is the decision module's ([`crate::decision`]).
//!
//! A frame's score is the mean of the models' live probabilities, or, when a liveness
//! calibration file is configured (`liveness.fusion`, `vouch calibrate liveness`), the
//! probability of the logistic fusion learned on development data
//! ([`crate::face::liveness_fusion`]); frames are then fused by their mean either way.
//!
//! ## What has been measured, and what has not
//!
//! Only two attack types have been measured: **printed photos** (NUAA Photograph Imposter
//! Database, train split, 1,748 attacks against 1,743 bona fide images, all tight face crops)
//! and **one screen replay** on a tablet (one frame of the project's four full-frame
//! samples). On the NUAA crops, at the default threshold 0.5: APCER 3.9 %, BPCER 41.2 %
//! (tight crops starve the models of the context they need, so this is a worst case for
//! bona fide users); on the four full-frame samples every verdict at 0.5 is right. On NUAA's
//! raw 640×480 webcam frames (train split: 436 bona fide, 437 hand-held prints; development
//! data), at 0.5: the default pair APCER 0 %, BPCER 15.8 %; face-antispoof alone APCER 1.1 %,
//! BPCER 15.1 % (README, "Liveness"). Masks, 3-D
//! attacks, deepfake injection and high-quality screen replays have **not** been measured;
//! do not assume the ensemble stops them.

use ndarray::Array4;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::face::cvresize::{self, Mapped};
use crate::face::detect::FaceBox;
use crate::face::image::FaceImage;
use crate::face::liveness_fusion::LivenessFusion;
use crate::face::presentation::Presentation;
use crate::face::tensor::PixelNorm;
use crate::models::{LivenessCrop, ModelSpec, ModelTask};
use crate::runtime::{Runtime, SessionPool};

/// The crop window `[left, top, right, bottom]` (inclusive integer pixel coordinates) a model
/// with `crop_scale` sees for `face` in a `width × height` frame.
pub fn crop_window(width: u32, height: u32, face: &FaceBox, crop_scale: f32) -> [u32; 4] {
    let (fw, fh) = (width as f32, height as f32);
    let scale = ((fh - 1.0) / face.height)
        .min((fw - 1.0) / face.width)
        .min(crop_scale);
    let (new_w, new_h) = (face.width * scale, face.height * scale);
    let (cx, cy) = (face.x + face.width / 2.0, face.y + face.height / 2.0);
    let (mut left, mut top) = (cx - new_w / 2.0, cy - new_h / 2.0);
    let (mut right, mut bottom) = (cx + new_w / 2.0, cy + new_h / 2.0);
    if left < 0.0 {
        right -= left;
        left = 0.0;
    }
    if top < 0.0 {
        bottom -= top;
        top = 0.0;
    }
    if right > fw - 1.0 {
        left -= right - fw + 1.0;
        right = fw - 1.0;
    }
    if bottom > fh - 1.0 {
        top -= bottom - fh + 1.0;
        bottom = fh - 1.0;
    }
    let clamp = |v: f32, max: f32| v.max(0.0).min(max) as u32;
    [
        clamp(left, fw - 1.0),
        clamp(top, fh - 1.0),
        clamp(right, fw - 1.0),
        clamp(bottom, fh - 1.0),
    ]
}

/// Resizes the window `[l, t, r, b]` of `image` to `side × side` with plain bilinear
/// interpolation (pixel centres aligned, edges clamped; no antialiasing, as the models were
/// trained) into an NCHW blob normalised by `norm` (MiniFASNet: BGR, raw 0..255 values).
fn crop_blob(image: &FaceImage, window: [u32; 4], side: usize, norm: &PixelNorm) -> Array4<f32> {
    let [l, t, r, b] = window.map(|v| v as usize);
    let (cw, ch) = (r - l + 1, b - t + 1);
    let (sx, sy) = (cw as f64 / side as f64, ch as f64 / side as f64);
    let stride = image.width() as usize * 3;
    let rgb = image.rgb();
    let axis = |d: usize, scale: f64, len: usize| -> (usize, usize, f32) {
        let f = (d as f64 + 0.5) * scale - 0.5;
        let i = f.floor();
        let frac = (f - i) as f32;
        if i < 0.0 {
            (0, 0, 0.0)
        } else if i as usize >= len - 1 {
            (len - 1, len - 1, 0.0)
        } else {
            (i as usize, i as usize + 1, frac)
        }
    };
    let mut blob = Array4::<f32>::zeros((1, 3, side, side));
    for dy in 0..side {
        let (y0, y1, fy) = axis(dy, sy, ch);
        for dx in 0..side {
            let (x0, x1, fx) = axis(dx, sx, cw);
            let at =
                |x: usize, y: usize, c: usize| f32::from(rgb[(t + y) * stride + 3 * (l + x) + c]);
            let mut px = [0f32; 3];
            for (c, v) in px.iter_mut().enumerate() {
                let top = at(x0, y0, c) * (1.0 - fx) + at(x1, y0, c) * fx;
                let bottom = at(x0, y1, c) * (1.0 - fx) + at(x1, y1, c) * fx;
                *v = top * (1.0 - fy) + bottom * fy;
            }
            for c in 0..3 {
                blob[[0, c, dy, dx]] = norm.value(px, c);
            }
        }
    }
    blob
}

/// The input face-antispoof was trained on, for `face` on `frame`: `side × side` RGB pixels.
///
/// A square of `expansion` × the box's longer side, centred on the box (corners truncated
/// toward zero, as upstream's `int()`); where it leaves the frame, the frame is reflected
/// about its edge without repeating the edge pixel (OpenCV `BORDER_REFLECT_101`: column −1
/// is column 1). The square is resized so that its side is `side` — `INTER_AREA` when
/// shrinking, `INTER_LANCZOS4` when enlarging, as upstream — and padded to `side × side` by
/// reflection, centred: upstream computes the resized side as `int(n · (side / n))`, which
/// is `side − 1` for some n (161, for one), and pads the last row and column.
///
/// The box: vouch's [`FaceBox`] carries MiniFASNet's inclusive size, `x2 − x1 + 1` of the
/// detection ([`FaceBox::from_corners`]); upstream took YuNet's `w = x2 − x1`, so the box this
/// crop is made around is `(x, y, x + width − 1, y + height − 1)`.
///
/// Errors ([`ErrorKind::InvalidInput`]): a box that [`FaceBox::validate`] refuses, one
/// narrower or shorter than 2 pixels, an expansion outside [1, 4], or a square more than 3
/// times the frame's longer side.
pub fn square_reflect_crop(
    frame: &FaceImage,
    face: &FaceBox,
    expansion: f32,
    side: u32,
) -> Result<FaceImage> {
    face.validate(frame)?;
    let bad = |what: String| Err(Error::new(ErrorKind::InvalidInput, what));
    if side == 0 {
        return bad("a square crop needs a positive side".into());
    }
    let (fw, fh) = (frame.width() as usize, frame.height() as usize);
    let (w, h) = (f64::from(face.width) - 1.0, f64::from(face.height) - 1.0);
    if w < 1.0 || h < 1.0 {
        return bad(format!(
            "the face box {face:?} is too small for a square crop (2 pixels a side at least)"
        ));
    }
    if !(1.0..=4.0).contains(&expansion) {
        return bad(format!(
            "a square crop's expansion is between 1 and 4, got {expansion}"
        ));
    }
    let longer = w.max(h);
    let expansion = f64::from(expansion);
    let centre = |start: f32, len: f64| f64::from(start) + len / 2.0;
    // `as i64` truncates toward zero, as upstream's int() does
    let x = (centre(face.x, w) - longer * expansion / 2.0) as i64;
    let y = (centre(face.y, h) - longer * expansion / 2.0) as i64;
    let n = (longer * expansion) as i64;
    if n > 3 * fw.max(fh) as i64 {
        return bad(format!(
            "the square crop around the face box {face:?} would be {n} pixels a side, more than 3 times the {fw}x{fh} frame"
        ));
    }
    let (x1, y1) = (x.max(0), y.max(0));
    let (x2, y2) = ((x + n).min(fw as i64), (y + n).min(fh as i64));
    if n < 1 || x2 <= x1 || y2 <= y1 {
        return bad(format!(
            "the square crop around the face box {face:?} misses the {fw}x{fh} frame"
        ));
    }
    // the crop as a view of the frame: the window [x1, x2) × [y1, y2), reflected outward by
    // what the square reaches past it on each side
    let window = [x1, y1, x2 - x1, y2 - y1].map(|v| v as usize);
    let pads = [y1 - y, y + n - y2, x1 - x, x + n - x2].map(|v| v as usize);
    let square = Mapped::reflected(frame.rgb(), fw, window, pads);
    let n = n as usize;
    let side_len = side as usize;
    let ratio = f64::from(side) / n as f64;
    let scaled = (n as f64 * ratio) as usize;
    let resized = if ratio > 1.0 {
        cvresize::lanczos4(&square, scaled, scaled)
    } else if scaled == n {
        Zeroizing::new(square.to_vec())
    } else {
        cvresize::area(&square, scaled, scaled)
    };
    let pad = side_len - scaled;
    let (before, after) = (pad / 2, pad - pad / 2);
    let padded = Mapped::reflected(
        &resized,
        scaled,
        [0, 0, scaled, scaled],
        [before, after, before, after],
    );
    FaceImage::from_rgb(side, side, padded.to_vec())
}

/// One liveness model and the crop it expects.
#[derive(Debug)]
pub struct LivenessModel {
    pool: SessionPool,
    crop: LivenessCrop,
    crop_scale: f32,
    live_class: usize,
    side: usize,
    norm: PixelNorm,
}

/// A model's live probability for one frame.
#[derive(Clone, Debug, Serialize)]
pub struct ModelScore {
    /// Manifest name of the model.
    pub model: String,
    /// Softmax probability of the live class.
    pub live: f32,
}

impl LivenessModel {
    /// Loads and verifies a liveness model.
    pub fn new(
        runtime: &Runtime,
        spec: &ModelSpec,
        model_dir: &std::path::Path,
    ) -> Result<LivenessModel> {
        if spec.task != ModelTask::FaceLiveness {
            return Err(Error::new(
                ErrorKind::Manifest,
                format!("model {:?} is not a face liveness model", spec.name),
            ));
        }
        let p = &spec.preprocess;
        let (Some(crop_scale), Some(live_class), Some([w, h]), Some(_)) =
            (p.crop_scale, p.live_class, p.size, &p.color)
        else {
            return Err(Error::new(
                ErrorKind::Manifest,
                format!(
                    "liveness model {:?} needs crop_scale, live_class, size and color in its manifest entry",
                    spec.name
                ),
            ));
        };
        let classes = spec
            .outputs
            .first()
            .and_then(|o| o.shape.last().copied())
            .unwrap_or(0);
        if w != h
            || w == 0
            || !crop_scale.is_finite()
            || crop_scale < 1.0
            || live_class as i64 >= classes
        {
            return Err(Error::new(
                ErrorKind::Manifest,
                format!(
                    "liveness model {:?}: a square, non-empty input, crop_scale >= 1 and a live_class below the class count are required",
                    spec.name
                ),
            ));
        }
        Ok(LivenessModel {
            norm: PixelNorm::of(spec)?,
            pool: SessionPool::new(runtime, spec, model_dir)?,
            crop: p.crop.unwrap_or_default(),
            crop_scale,
            live_class,
            side: w as usize,
        })
    }

    /// The model's manifest entry.
    pub fn spec(&self) -> &ModelSpec {
        self.pool.spec()
    }

    /// Live probability of the face in `face` on `frame`.
    pub fn score(&self, frame: &FaceImage, face: &FaceBox) -> Result<ModelScore> {
        let mut blob = match self.crop {
            LivenessCrop::Shifted => {
                let window = crop_window(frame.width(), frame.height(), face, self.crop_scale);
                crop_blob(frame, window, self.side, &self.norm)
            }
            LivenessCrop::SquareReflect => {
                let crop = square_reflect_crop(frame, face, self.crop_scale, self.side as u32)?;
                self.norm.blob(crop.rgb(), self.side, self.side)
            }
        };
        let logits = self.pool.run_first_output(&blob, "liveness inference");
        blob.fill(0.0);
        let logits = logits?;
        let live = softmax(&logits)
            .get(self.live_class)
            .copied()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::ModelContract,
                    "liveness output has fewer classes than declared",
                )
            })?;
        Ok(ModelScore {
            model: self.spec().name.clone(),
            live,
        })
    }
}

/// Liveness settings (`[liveness]`): which models, and how frames are scored.
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LivenessConfig {
    /// Manifest names of the ensemble's models. By default, MiniFASNetV2 and MiniFASNetV1SE
    /// (the upstream ensemble).
    pub models: Vec<String>,
    /// The most frames one assessment accepts. By default, 32.
    pub max_frames: usize,
    /// Consecutive frames whose face boxes overlap less than this (IoU) are refused as not one
    /// presentation. By default, 0.5.
    pub min_frame_iou: f32,
    /// When to also score four crops from the box shifted and scaled by ±5 % and average all
    /// five: steadier scores (the models are box-sensitive) for five times the inference.
    /// By default, [`Jitter::NearThreshold`]: only frames whose score lands within
    /// `jitter_margin` of the decision threshold pay for it.
    pub jitter: Jitter,
    /// How close to the decision threshold a frame's score must be for
    /// [`Jitter::NearThreshold`] to re-score it with jittered crops. By default, 0.2.
    pub jitter_margin: f32,
    /// A liveness calibration file (`vouch calibrate liveness`): the logistic fusion of the
    /// models' scores learned on development data, and the threshold chosen with it at a
    /// target APCER. [`crate::Config::validate`] reads it, refuses it unless its models are
    /// `models` (names here, ids with their file hashes when the engine loads them), and
    /// applies its threshold as `decisions.liveness_threshold` unless that is set
    /// explicitly. By default, none: a frame's score is the mean of the models' probabilities.
    pub fusion: Option<std::path::PathBuf>,
}

impl LivenessConfig {
    /// Checks the values ([`ErrorKind::Config`] naming the key).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::new(ErrorKind::Config, what.to_string()));
        if self.models.is_empty() {
            return bad("liveness.models names no model");
        }
        if !(1..=1000).contains(&self.max_frames) {
            return bad("liveness.max_frames must be between 1 and 1000");
        }
        if !(0.0..=1.0).contains(&self.jitter_margin) {
            return bad("liveness.jitter_margin must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.min_frame_iou) {
            return bad("liveness.min_frame_iou must be in [0, 1]");
        }
        Ok(())
    }
}

/// When liveness averages over jittered crops.
#[derive(Clone, Copy, Debug, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Never: one crop per model and frame.
    Off,
    /// Only for frames whose single-crop score is within `jitter_margin` of the threshold,
    /// where a small box error could flip the verdict.
    NearThreshold,
    /// Always: five crops per model and frame.
    Always,
}

impl Default for LivenessConfig {
    fn default() -> LivenessConfig {
        LivenessConfig {
            models: vec!["minifasnet_v2".into(), "minifasnet_v1se".into()],
            max_frames: 32,
            min_frame_iou: 0.5,
            jitter: Jitter::NearThreshold,
            jitter_margin: 0.2,
            fusion: None,
        }
    }
}

/// Liveness of one frame.
#[derive(Clone, Debug, Serialize)]
pub struct FrameLiveness {
    /// Ensemble live score of the frame: the mean of the models' live probabilities, or their
    /// learned fusion when one is configured.
    pub score: f32,
    /// Each model's live probability.
    pub per_model: Vec<ModelScore>,
    /// The face box that was judged.
    pub face: FaceBox,
}

/// The liveness evidence of one presentation: scores, never a verdict.
#[derive(Clone, Debug, Serialize)]
pub struct LivenessEvidence {
    /// Fused score: the mean of the frames' ensemble scores, in [0, 1] (1 = live).
    pub score: f32,
    /// How each frame's ensemble score was made: `mean`, or `logistic` for a learned fusion.
    pub fusion: &'static str,
    /// Each model's live probability, averaged over the frames.
    pub per_model: Vec<ModelScore>,
    /// Per-frame scores, in input order.
    pub per_frame: Vec<FrameLiveness>,
}

/// The liveness ensemble.
#[derive(Debug)]
pub struct Liveness {
    models: Vec<LivenessModel>,
    config: LivenessConfig,
    fusion: Option<LivenessFusion>,
}

impl Liveness {
    /// Loads every model named in `config.models`; a missing or invalid one fails here, at
    /// start, not at the first request.
    pub fn new(
        runtime: &Runtime,
        manifest: &crate::models::Manifest,
        model_dir: &std::path::Path,
        config: &LivenessConfig,
    ) -> Result<Liveness> {
        if config.models.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "liveness.models names no model",
            ));
        }
        let models = config
            .models
            .iter()
            .map(|name| LivenessModel::new(runtime, manifest.get(name)?, model_dir))
            .collect::<Result<Vec<_>>>()?;
        Ok(Liveness {
            models,
            config: config.clone(),
            fusion: None,
        })
    }

    /// Uses `fusion` for each frame's ensemble score instead of the mean (`None`: the mean).
    /// The fusion must have been learned on exactly this ensemble's models, by id (name and
    /// file hash) and in order; any other is refused ([`ErrorKind::Config`]), since its
    /// weights would be applied to scores they were not learned on.
    ///
    /// [`Liveness::new`] does not read `config.fusion`: [`crate::Config::validate`] reads the
    /// file once and the [`crate::Engine`] hands its fusion here.
    pub fn with_fusion(mut self, fusion: Option<LivenessFusion>) -> Result<Liveness> {
        if let Some(f) = &fusion {
            f.check_models(&self.model_ids())?;
        }
        self.fusion = fusion;
        Ok(self)
    }

    /// The learned fusion in use, if any.
    pub fn fusion(&self) -> Option<&LivenessFusion> {
        self.fusion.as_ref()
    }

    /// The ensemble's model ids (`name@sha256-prefix`), in scoring order.
    pub fn model_ids(&self) -> Vec<String> {
        self.models.iter().map(|m| m.spec().id()).collect()
    }

    /// The settings in use.
    pub fn config(&self) -> &LivenessConfig {
        &self.config
    }

    /// The ensemble's models.
    pub fn models(&self) -> &[LivenessModel] {
        &self.models
    }

    /// Scores one frame: each model's live probability (averaged over jittered crops when
    /// configured) and their mean. `jitter_around` is the decision threshold the caller will
    /// hold the score to: [`Jitter::NearThreshold`] re-scores the frames that land near it.
    pub fn score_frame(
        &self,
        frame: &FaceImage,
        face: &FaceBox,
        jitter_around: f32,
    ) -> Result<FrameLiveness> {
        face.validate(frame)?;
        let single = self.score_boxes(frame, std::slice::from_ref(face))?;
        let near = (self.ensemble(&single)? - jitter_around).abs() < self.config.jitter_margin;
        let per_model = match self.config.jitter {
            Jitter::Always => self.score_boxes(frame, &jittered(face))?,
            Jitter::NearThreshold if near => self.score_boxes(frame, &jittered(face))?,
            _ => single,
        };
        Ok(FrameLiveness {
            score: self.ensemble(&per_model)?,
            per_model,
            face: *face,
        })
    }

    /// Scores every frame of a presentation on the box its one detection found, and fuses
    /// them. `jitter_around`: see [`Liveness::score_frame`].
    pub fn assess(
        &self,
        presentation: &Presentation<'_>,
        jitter_around: f32,
    ) -> Result<LivenessEvidence> {
        let boxes: Vec<FaceBox> = presentation.faces().iter().map(|f| f.face_box).collect();
        self.assess_boxes(presentation.frames(), &boxes, jitter_around)
    }

    /// Scores frames on boxes the caller names, one per frame (e.g. [`FaceBox::whole`] for
    /// images that are already face crops), and fuses them. For research on cropped data:
    /// decisions use [`Liveness::assess`], whose boxes come from detection.
    pub fn assess_boxes(
        &self,
        frames: &[FaceImage],
        boxes: &[FaceBox],
        jitter_around: f32,
    ) -> Result<LivenessEvidence> {
        if frames.is_empty() || boxes.len() != frames.len() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} face boxes for {} frames", boxes.len(), frames.len()),
            ));
        }
        for (i, (frame, face)) in frames.iter().zip(boxes).enumerate() {
            face.validate(frame)
                .map_err(|e| Error::new(e.kind(), format!("frame {}: {}", i + 1, e.message())))?;
        }
        crate::face::presentation::check_steady(boxes, self.config.min_frame_iou)?;
        let mut scored = Vec::with_capacity(frames.len());
        for (i, (frame, face)) in frames.iter().zip(boxes).enumerate() {
            scored.push(
                self.score_frame(frame, face, jitter_around).map_err(|e| {
                    Error::new(e.kind(), format!("frame {}: {}", i + 1, e.message()))
                })?,
            );
        }
        self.fuse(scored)
    }

    /// A frame's ensemble score from its models' scores: the learned fusion, else the mean.
    fn ensemble(&self, scores: &[ModelScore]) -> Result<f32> {
        match &self.fusion {
            Some(f) => f.fuse(&scores.iter().map(|m| m.live).collect::<Vec<_>>()),
            None => Ok(mean_live(scores)),
        }
    }

    /// Each model's live probability averaged over `boxes`.
    fn score_boxes(&self, frame: &FaceImage, boxes: &[FaceBox]) -> Result<Vec<ModelScore>> {
        self.models
            .iter()
            .map(|model| {
                let mut sum = 0.0;
                for b in boxes {
                    sum += model.score(frame, b)?.live;
                }
                Ok(ModelScore {
                    model: model.spec().name.clone(),
                    live: sum / boxes.len() as f32,
                })
            })
            .collect()
    }

    /// Fuses per-frame scores into the presentation's evidence.
    ///
    /// Fusion is the mean of the frames' ensemble scores. A print or a screen is the same
    /// artefact in every frame, so its scores are consistently low; per-frame noise (motion
    /// blur, a glint) is independent from frame to frame and averages out. The mean is less
    /// brittle than the minimum (one bad frame does not turn a real customer away) and harder
    /// to game than the maximum (one lucky frame does not pass an attack).
    pub fn fuse(&self, frames: Vec<FrameLiveness>) -> Result<LivenessEvidence> {
        if frames.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "liveness needs at least one frame",
            ));
        }
        let n = frames.len() as f32;
        let score = frames.iter().map(|f| f.score).sum::<f32>() / n;
        let per_model = (0..self.models.len())
            .map(|i| ModelScore {
                model: self.models[i].spec().name.clone(),
                live: frames.iter().map(|f| f.per_model[i].live).sum::<f32>() / n,
            })
            .collect();
        Ok(LivenessEvidence {
            score,
            fusion: if self.fusion.is_some() {
                "logistic"
            } else {
                "mean"
            },
            per_model,
            per_frame: frames,
        })
    }
}

/// The box itself and four variants: shifted by ±5 % of its size, and scaled by ±5 %.
fn jittered(face: &FaceBox) -> Vec<FaceBox> {
    let d = 0.05;
    let shift = |fx: f32, fy: f32| FaceBox {
        x: face.x + fx * face.width,
        y: face.y + fy * face.height,
        ..*face
    };
    let scale = |k: f32| FaceBox {
        x: face.x - (k - 1.0) * face.width / 2.0,
        y: face.y - (k - 1.0) * face.height / 2.0,
        width: face.width * k,
        height: face.height * k,
    };
    vec![
        *face,
        shift(d, 0.0),
        shift(-d, d),
        scale(1.0 + d),
        scale(1.0 - d),
    ]
}

fn mean_live(scores: &[ModelScore]) -> f32 {
    scores.iter().map(|m| m.live).sum::<f32>() / scores.len().max(1) as f32
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&v| f64::from(v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, w: f32, h: f32) -> FaceBox {
        FaceBox {
            x,
            y,
            width: w,
            height: h,
        }
    }

    #[test]
    fn crop_is_scaled_about_the_centre() {
        // a 100x100 face in the middle of a 1000x1000 frame, scale 2.7 -> 270x270
        assert_eq!(
            crop_window(1000, 1000, &face(450.0, 450.0, 100.0, 100.0), 2.7),
            [365, 365, 635, 635]
        );
    }

    #[test]
    fn crop_is_shifted_back_inside_not_padded() {
        // face at the left edge: the window keeps its size and moves right
        let w = crop_window(1000, 1000, &face(0.0, 450.0, 100.0, 100.0), 2.7);
        assert_eq!(w[0], 0);
        assert_eq!(w[2] - w[0], 270);
    }

    #[test]
    fn crop_scale_is_capped_by_the_frame() {
        // a tight crop: the box is the whole 100x100 image; the window collapses to it
        assert_eq!(
            crop_window(100, 100, &face(0.0, 0.0, 100.0, 100.0), 4.0),
            [0, 0, 99, 99]
        );
    }

    #[test]
    fn blob_is_bgr_and_interpolated() {
        let mut rgb = vec![0u8; 4 * 4 * 3];
        for px in rgb.chunks_mut(3) {
            px.copy_from_slice(&[10, 20, 30]);
        }
        let img = FaceImage::from_rgb(4, 4, rgb).unwrap();
        let manifest = crate::models::Manifest::builtin();
        let bgr_raw = PixelNorm::of(manifest.get("minifasnet_v2").unwrap()).unwrap();
        let blob = crop_blob(&img, [0, 0, 3, 3], 2, &bgr_raw);
        assert_eq!(blob[[0, 0, 0, 0]], 30.0);
        assert_eq!(blob[[0, 2, 1, 1]], 10.0);
    }

    /// A frame whose pixel (x, y) is (x, y, 7) (coordinates below 256).
    fn coordinates(width: u32, height: u32) -> FaceImage {
        let mut rgb = Vec::new();
        for y in 0..height {
            for x in 0..width {
                rgb.extend_from_slice(&[x as u8, y as u8, 7]);
            }
        }
        FaceImage::from_rgb(width, height, rgb).unwrap()
    }

    fn pixel(image: &FaceImage, x: usize, y: usize) -> [u8; 3] {
        let i = (y * image.width() as usize + x) * 3;
        image.rgb()[i..i + 3].try_into().unwrap()
    }

    #[test]
    fn square_crop_of_the_model_size_is_the_frame_itself() {
        // a box of inclusive size 129 is 128 wide upstream: with expansion 1, a 128 × 128
        // crop at the box's corner, copied without resizing
        let frame = coordinates(250, 250);
        let face = face(60.0, 40.0, 129.0, 129.0);
        let crop = square_reflect_crop(&frame, &face, 1.0, 128).unwrap();
        assert_eq!((crop.width(), crop.height()), (128, 128));
        assert_eq!(pixel(&crop, 0, 0), [60, 40, 7]);
        assert_eq!(pixel(&crop, 127, 127), [187, 167, 7]);
    }

    #[test]
    fn square_crop_reflects_past_the_frame_edge() {
        // a box 64 wide upstream at (0, 0): side 96, x = 32 − 48 = −16; the crop starts 16
        // columns left of the frame, where column −k reads column k
        let frame = coordinates(200, 200);
        let crop = square_reflect_crop(&frame, &face(0.0, 0.0, 65.0, 65.0), 1.5, 96).unwrap();
        assert_eq!(pixel(&crop, 0, 0), [16, 16, 7]);
        assert_eq!(pixel(&crop, 15, 16), [1, 0, 7]);
        assert_eq!(pixel(&crop, 16, 17), [0, 1, 7]);
        assert_eq!(pixel(&crop, 95, 95), [79, 79, 7]);
    }

    #[test]
    fn square_crop_pads_when_the_resized_side_falls_short() {
        // n = 161: int(161 · (128 / 161)) = 127 — shrunk to 127, the last row and column
        // reflected from the one before the edge
        let frame = coordinates(300, 300);
        let face = face(20.0, 20.0, 162.0, 162.0);
        let crop = square_reflect_crop(&frame, &face, 1.0, 128).unwrap();
        assert_eq!(pixel(&crop, 127, 3), pixel(&crop, 125, 3));
        assert_eq!(pixel(&crop, 3, 127), pixel(&crop, 3, 125));
        assert_ne!(pixel(&crop, 126, 3), pixel(&crop, 125, 3));
    }

    #[test]
    fn square_crop_enlarges_small_faces() {
        let frame = coordinates(100, 100);
        let crop = square_reflect_crop(&frame, &face(40.0, 40.0, 21.0, 21.0), 1.5, 128).unwrap();
        assert_eq!((crop.width(), crop.height()), (128, 128));
        // a smooth ramp stays a ramp
        assert!(pixel(&crop, 10, 64)[0] < pixel(&crop, 110, 64)[0]);
    }

    #[test]
    fn square_crop_refuses_degenerate_boxes() {
        let frame = coordinates(100, 100);
        for bad in [
            face(10.0, 10.0, 1.5, 30.0),
            face(10.0, 10.0, 0.0, 30.0),
            face(500.0, 10.0, 30.0, 30.0),
            face(10.0, 10.0, 250.0, 30.0),
            face(f32::INFINITY, 10.0, 30.0, 30.0),
        ] {
            let err = square_reflect_crop(&frame, &bad, 1.5, 128).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
        let fine = face(10.0, 10.0, 30.0, 30.0);
        for (expansion, side) in [(1.5, 0), (f32::INFINITY, 128), (f32::NAN, 128), (0.5, 128)] {
            let err = square_reflect_crop(&frame, &fine, expansion, side).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{expansion} {side}");
        }
    }

    #[test]
    fn jitter_keeps_the_original_and_stays_close() {
        let f = face(100.0, 100.0, 50.0, 60.0);
        let boxes = jittered(&f);
        assert_eq!(boxes[0], f);
        assert_eq!(boxes.len(), 5);
        assert!(boxes.iter().all(|b| b.iou(&f) > 0.8));
    }

    #[test]
    fn softmax_is_a_distribution() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
        let extreme = softmax(&[1000.0, -1000.0, 0.0]);
        assert!(extreme.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn boxes_are_validated() {
        let img = FaceImage::from_rgb(10, 10, vec![0; 300]).unwrap();
        assert!(face(1.0, 1.0, 5.0, 5.0).validate(&img).is_ok());
        for bad in [
            face(1.0, 1.0, 0.0, 5.0),
            face(20.0, 1.0, 5.0, 5.0),
            face(-9.0, -9.0, 5.0, 5.0),
            face(f32::NAN, 0.0, 5.0, 5.0),
        ] {
            assert_eq!(
                bad.validate(&img).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
    }
}
