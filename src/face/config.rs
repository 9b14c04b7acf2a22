//! The face section of the configuration (`[face]`): which models, and how the one detection
//! of each frame runs.

use crate::error::{Error, ErrorKind, Result};

/// Face detection and embedding settings (`[face]`).
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaceConfig {
    /// Manifest name of the face detector. By default, `yunet_n`.
    pub detector: String,
    /// Manifest name of the face embedder. By default, `mobilefacenet_int8` (MobileFaceNet
    /// quantised by `scripts/quantize_models.py`: 1.8 ms a face on one core instead of 5.1,
    /// the same templates and calibration as `mobilefacenet`, which it approximates).
    pub embedder: String,
    /// Further face embedders whose scores are fused with the embedder's on the policy tiers
    /// that ask for it (`face_fusion = true`): enrollment makes a template with each, a
    /// verification on such a tier embeds the probe with each and holds the calibrated fusion
    /// of the scores to the tier's threshold (`calibration/face-fused.toml`). Other tiers use
    /// the embedder alone. By default, `["sface_int8"]` (OpenCV Zoo's SFace quantised by
    /// `scripts/quantize_models.py`, ~10 ms a face on one core instead of ~17; the same
    /// templates and calibration as `sface`, which it approximates).
    pub fused_embedders: Vec<String>,
    /// How many of a presentation's sharpest frames make the probe (the mean of their
    /// normalised embeddings). By default, 1.
    pub probe_frames: usize,
    /// Minimum detection score (cls × obj) for a face. By default, 0.6 (YuNet's own default).
    pub detection_threshold: f32,
    /// IoU above which overlapping detections are merged. By default, 0.45.
    pub nms_iou: f32,
    /// The one detection of each frame runs on the frame downscaled so that its longer side
    /// is at most this (boxes and landmarks are mapped back to full resolution); 0 means full
    /// resolution. That one detection feeds the quality gate, the liveness crops and the
    /// alignment, so it must suit both: by default, [`FaceConfig::DEFAULT_DETECT_MAX_SIDE`].
    pub detect_max_side: u32,
    /// Add the embedding of the mirrored crop before normalising (upstream's evaluation
    /// protocol). Doubles embedding time. By default, off.
    pub flip_augment: bool,
    /// How head movements are found in an active challenge's response (`[face.motion]`).
    pub motion: MotionConfig,
}

impl FaceConfig {
    /// The default detection resolution, 320: a 640×480 terminal frame is detected at half
    /// size (YuNet 2.4 ms instead of 8.6 ms), larger frames and photos further down, and a
    /// largest face left under 64 px wide is found again on a crop around it
    /// ([`crate::face::detect::REFINE_BELOW`]). Measured on the development data against
    /// 1280 (full resolution for terminal frames): CFP frontal pairs EER 1.21 → 1.01 %, FNMR
    /// at FMR 1e-3 3.50 → 3.11 %, 2 → 0 images without a face; NUAA webcam frames as
    /// identities EER 0.24 → 0.12 %; faces-deepface press photos EER 0 → 0.27 % (one genuine
    /// pair of 134, img35, whose 350 px face's landmarks move by ~10 px between scales);
    /// NUAA live/print frames: BPCER at 0.5 15.8 → 14.7 %, APCER 0 → 0 % (mean liveness score
    /// change 0.022). 480 and 640 were no better (CFP 1.00 and 1.07 %, NUAA 0.31 and 0.24 %).
    pub const DEFAULT_DETECT_MAX_SIDE: u32 = 320;

    /// Checks the values ([`ErrorKind::Config`] naming the key).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::new(ErrorKind::Config, what.to_string()));
        if !(self.detection_threshold > 0.0 && self.detection_threshold < 1.0) {
            return bad("face.detection_threshold must be in (0, 1)");
        }
        if !(self.nms_iou > 0.0 && self.nms_iou <= 1.0) {
            return bad("face.nms_iou must be in (0, 1]");
        }
        if self.fused_embedders.len() > 3 {
            return bad("face.fused_embedders names at most 3 models");
        }
        for (i, name) in self.fused_embedders.iter().enumerate() {
            if *name == self.embedder || self.fused_embedders[..i].contains(name) {
                return bad(
                    "face.fused_embedders must name models other than face.embedder, each once",
                );
            }
        }
        if !(1..=8).contains(&self.probe_frames) {
            return bad("face.probe_frames must be between 1 and 8");
        }
        if self.detect_max_side != 0 && self.detect_max_side < 64 {
            return bad("face.detect_max_side must be 0 (off) or at least 64");
        }
        self.motion.validate()
    }
}

impl Default for FaceConfig {
    fn default() -> FaceConfig {
        FaceConfig {
            detector: "yunet_n".to_string(),
            embedder: "mobilefacenet_int8".to_string(),
            fused_embedders: vec!["sface_int8".to_string()],
            probe_frames: 1,
            detection_threshold: 0.6,
            nms_iou: 0.45,
            detect_max_side: FaceConfig::DEFAULT_DETECT_MAX_SIDE,
            flip_augment: false,
            motion: MotionConfig::default(),
        }
    }
}

/// How the trajectory is cut into movements: the `[face.motion]` section of the
/// configuration. These say when a frame counts as *moving*; how far a movement must go to
/// answer a challenge is a decision setting (`[decisions.active_liveness]`).
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MotionConfig {
    /// A frame is turned when its yaw index leaves the baseline by more than this. By
    /// default, 0.12 interocular distances.
    pub yaw_onset: f32,
    /// A frame is tilted when its pitch index leaves the baseline by more than this. By
    /// default, 0.04 face-box widths (a talking, turning face on the development videos
    /// stays within 0.035 upwards of its baseline).
    pub pitch_onset: f32,
    /// The fewest consecutive frames one way that make a movement. By default, 2.
    pub min_frames: usize,
    /// The frames at the start whose median pose is the frontal baseline. By default, 3.
    pub baseline_frames: usize,
    /// The fewest movements a challenge asks for. By default, 2.
    pub challenge_min_movements: usize,
    /// The most movements a challenge asks for. By default, 4.
    pub challenge_max_movements: usize,
    /// How long a movement challenge stays valid, in seconds. By default, 60.
    pub challenge_ttl_seconds: u64,
}

impl Default for MotionConfig {
    fn default() -> Self {
        MotionConfig {
            yaw_onset: 0.12,
            pitch_onset: 0.04,
            min_frames: 2,
            baseline_frames: 3,
            challenge_min_movements: 2,
            challenge_max_movements: 4,
            challenge_ttl_seconds: 60,
        }
    }
}

impl MotionConfig {
    /// Checks the values ([`ErrorKind::Config`] naming the key).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::new(ErrorKind::Config, what.to_string()));
        if !(self.yaw_onset > 0.0 && self.yaw_onset < 2.0) {
            return bad("face.motion.yaw_onset must be in (0, 2)");
        }
        if !(self.pitch_onset > 0.0 && self.pitch_onset < 1.0) {
            return bad("face.motion.pitch_onset must be in (0, 1)");
        }
        if !(1..=30).contains(&self.min_frames) {
            return bad("face.motion.min_frames must be between 1 and 30");
        }
        if !(1..=30).contains(&self.baseline_frames) {
            return bad("face.motion.baseline_frames must be between 1 and 30");
        }
        if !(1 <= self.challenge_min_movements
            && self.challenge_min_movements <= self.challenge_max_movements
            && self.challenge_max_movements <= 8)
        {
            return bad(
                "face.motion.challenge_min_movements and challenge_max_movements must satisfy 1 <= min <= max <= 8",
            );
        }
        if !(1..=3600).contains(&self.challenge_ttl_seconds) {
            return bad("face.motion.challenge_ttl_seconds must be between 1 and 3600");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fused_embedders_and_probe_frames_are_refused_naming_the_key() {
        assert!(FaceConfig::default().validate().is_ok());
        let with = |edit: &dyn Fn(&mut FaceConfig)| {
            let mut config = FaceConfig::default();
            edit(&mut config);
            config.validate()
        };
        for (what, edit) in [
            (
                "face.fused_embedders",
                &(|c: &mut FaceConfig| c.fused_embedders = vec![c.embedder.clone()])
                    as &dyn Fn(&mut FaceConfig),
            ),
            ("face.fused_embedders", &|c: &mut FaceConfig| {
                c.fused_embedders = vec!["sface".into(), "sface".into()]
            }),
            ("face.fused_embedders", &|c: &mut FaceConfig| {
                c.fused_embedders = vec!["a".into(), "b".into(), "c".into(), "d".into()]
            }),
            ("face.probe_frames", &|c: &mut FaceConfig| {
                c.probe_frames = 0
            }),
            ("face.probe_frames", &|c: &mut FaceConfig| {
                c.probe_frames = 9
            }),
        ] {
            let e = with(edit).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.message().contains(what), "{what}: {e}");
        }
        assert!(with(&|c| c.fused_embedders.clear()).is_ok());
    }
}
