//! The face section of the configuration (`[face]`): which models, and how the one detection
//! of each frame runs.

use crate::error::{Error, ErrorKind, Result};

/// Face detection and embedding settings (`[face]`).
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaceConfig {
    /// Manifest name of the face detector. By default, `yunet_n`.
    pub detector: String,
    /// Manifest name of the face embedder. By default, `mobilefacenet`.
    pub embedder: String,
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
}

impl FaceConfig {
    /// The default detection resolution, 1280: terminal cameras (640×480 to 1280×720) are
    /// detected at full resolution, where the liveness models' training boxes come from, and
    /// larger photos are downscaled to it, which keeps YuNet within the face sizes it finds
    /// well. Measured on the development data (`ARCHITECTURE.md`, "one presentation"): at
    /// full resolution YuNet mislocates the large faces of press photos (faces-deepface pairs:
    /// EER 4.48 % against 0.00 % at 640 or 1280), while at 640 the liveness box of a
    /// 1617×2160 live photo grows by 9 % and its score falls from 0.880 to 0.450 (0.702 at 1280).
    pub const DEFAULT_DETECT_MAX_SIDE: u32 = 1280;

    /// Checks the values ([`ErrorKind::Config`] naming the key).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::new(ErrorKind::Config, what.to_string()));
        if !(self.detection_threshold > 0.0 && self.detection_threshold < 1.0) {
            return bad("face.detection_threshold must be in (0, 1)");
        }
        if !(self.nms_iou > 0.0 && self.nms_iou <= 1.0) {
            return bad("face.nms_iou must be in (0, 1]");
        }
        if self.detect_max_side != 0 && self.detect_max_side < 64 {
            return bad("face.detect_max_side must be 0 (off) or at least 64");
        }
        Ok(())
    }
}

impl Default for FaceConfig {
    fn default() -> FaceConfig {
        FaceConfig {
            detector: "yunet_n".to_string(),
            embedder: "mobilefacenet".to_string(),
            detection_threshold: 0.6,
            nms_iou: 0.45,
            detect_max_side: FaceConfig::DEFAULT_DETECT_MAX_SIDE,
            flip_augment: false,
        }
    }
}
