//! The quality gate: is this face sample good enough to match or to judge for liveness?
//!
//! Measured on the face region resampled to 112×112 (so thresholds do not depend on the
//! photo's resolution): face size in the frame, sharpness (variance of the Laplacian of the
//! luma), pose from the 5 landmarks (roll from the eye line, yaw from the nose's offset between
//! the eyes), and exposure (mean luma and the share of clipped pixels). A failed check says
//! which one and by how much, so a terminal can ask for a retake.

use serde::{Deserialize, Serialize};

use crate::face::image::FaceImage;
use crate::face::liveness::FaceBox;

/// Thresholds of the quality gate.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QualityConfig {
    /// Smallest face box width in pixels. By default, 60: the aligned crop is 112 px wide, and
    /// below about half that the embedder sees mostly interpolation.
    pub min_face_width: f32,
    /// Lowest variance of the Laplacian on the 112×112 face luma. By default, 50 (see
    /// `QualityConfig::default` for where the figures come from).
    pub min_sharpness: f32,
    /// Largest yaw estimate in degrees. By default, 40.
    pub max_yaw_deg: f32,
    /// Largest roll in degrees. By default, 30.
    pub max_roll_deg: f32,
    /// Darkest acceptable mean luma (0..255). By default, 40.
    pub min_brightness: f32,
    /// Brightest acceptable mean luma (0..255). By default, 220.
    pub max_brightness: f32,
    /// Largest share of face pixels at 0–5 or 250–255. By default, 0.25.
    pub max_clipped: f32,
}

impl Default for QualityConfig {
    /// Defaults set from the project's data with `vouch face quality` over the 63 usable
    /// faces-deepface photos and the 4 liveness frames (all pass), and over blurred copies:
    ///
    /// | measure | observed on the 67 frames | default limit |
    /// |---|---|---|
    /// | face width | 102 – 602 px | ≥ 60 px |
    /// | sharpness | 245 – 3,571 (5th percentile 458) | ≥ 50; a Gaussian blur of 1 % of the image side gives 1 – 6 |
    /// | yaw | 0 – 35° | ≤ 40° |
    /// | roll | 0 – 16° | ≤ 30° |
    /// | brightness | 91 – 189 | 40 – 220 |
    /// | clipped share | 0 – 0.15 | ≤ 0.25 |
    ///
    /// The limits sit outside the range of good captures, so only clearly bad ones are refused.
    fn default() -> QualityConfig {
        QualityConfig {
            min_face_width: 60.0,
            min_sharpness: 50.0,
            max_yaw_deg: 40.0,
            max_roll_deg: 30.0,
            min_brightness: 40.0,
            max_brightness: 220.0,
            max_clipped: 0.25,
        }
    }
}

/// Which quality check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityCheck {
    /// The face is too small in the frame.
    FaceSize,
    /// The face is blurred.
    Sharpness,
    /// The head is turned too far sideways.
    Yaw,
    /// The head is tilted too far.
    Roll,
    /// The face is too dark.
    TooDark,
    /// The face is too bright.
    TooBright,
    /// Too many pixels are clipped to black or white.
    Clipped,
}

impl QualityCheck {
    /// The reason code a decision gives for this failure (`quality_face_size`, …).
    pub fn reason(self) -> &'static str {
        match self {
            QualityCheck::FaceSize => "quality_face_size",
            QualityCheck::Sharpness => "quality_sharpness",
            QualityCheck::Yaw => "quality_yaw",
            QualityCheck::Roll => "quality_roll",
            QualityCheck::TooDark => "quality_too_dark",
            QualityCheck::TooBright => "quality_too_bright",
            QualityCheck::Clipped => "quality_clipped",
        }
    }
}

/// One failed check: the measured value and the limit it broke.
#[derive(Clone, Debug, Serialize)]
pub struct QualityFailure {
    /// The check.
    pub check: QualityCheck,
    /// What was measured.
    pub value: f32,
    /// The configured limit.
    pub limit: f32,
}

impl std::fmt::Display for QualityFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, hint) = match self.check {
            QualityCheck::FaceSize => ("face width", "come closer to the camera"),
            QualityCheck::Sharpness => ("sharpness", "hold still; clean the lens"),
            QualityCheck::Yaw => ("head turn", "look straight at the camera"),
            QualityCheck::Roll => ("head tilt", "hold the head upright"),
            QualityCheck::TooDark => ("brightness", "more light on the face"),
            QualityCheck::TooBright => ("brightness", "less light on the face"),
            QualityCheck::Clipped => ("clipped pixels", "avoid backlight and glare"),
        };
        write!(
            f,
            "{what} {:.1} breaks the limit {:.1}: {hint}",
            self.value, self.limit
        )
    }
}

/// The measurements of one face sample and the checks it failed.
#[derive(Clone, Debug, Serialize)]
pub struct QualityReport {
    /// Face box width in frame pixels.
    pub face_width: f32,
    /// Variance of the Laplacian of the 112×112 face luma.
    pub sharpness: f32,
    /// Yaw estimate in degrees (`None` without landmarks).
    pub yaw_deg: Option<f32>,
    /// Roll in degrees (`None` without landmarks).
    pub roll_deg: Option<f32>,
    /// Mean luma of the face, 0..255.
    pub brightness: f32,
    /// Share of face pixels clipped to black or white.
    pub clipped: f32,
    /// The checks that failed; empty when the sample passed.
    pub failures: Vec<QualityFailure>,
}

impl QualityReport {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

const SIDE: usize = 112;

/// Measures a face sample and checks it against `config`. `landmarks` (from the detector)
/// enable the pose checks; without them pose is not judged.
pub fn assess(
    image: &FaceImage,
    face: &FaceBox,
    landmarks: Option<&[[f32; 2]; 5]>,
    config: &QualityConfig,
) -> QualityReport {
    let luma = face_luma(image, face);
    let n = luma.len() as f32;
    let brightness = luma.iter().sum::<f32>() / n;
    let clipped = luma.iter().filter(|&&v| !(5.5..249.5).contains(&v)).count() as f32 / n;
    let sharpness = laplacian_variance(&luma);
    let (yaw_deg, roll_deg) = match landmarks {
        Some(points) => {
            let (yaw, roll) = pose(points);
            (Some(yaw), Some(roll))
        }
        None => (None, None),
    };
    let mut failures = Vec::new();
    let mut check = |failed: bool, check, value: f32, limit: f32| {
        if failed {
            failures.push(QualityFailure {
                check,
                value,
                limit,
            });
        }
    };
    check(
        face.width < config.min_face_width,
        QualityCheck::FaceSize,
        face.width,
        config.min_face_width,
    );
    check(
        sharpness < config.min_sharpness,
        QualityCheck::Sharpness,
        sharpness,
        config.min_sharpness,
    );
    if let (Some(yaw), Some(roll)) = (yaw_deg, roll_deg) {
        check(
            yaw.abs() > config.max_yaw_deg,
            QualityCheck::Yaw,
            yaw.abs(),
            config.max_yaw_deg,
        );
        check(
            roll.abs() > config.max_roll_deg,
            QualityCheck::Roll,
            roll.abs(),
            config.max_roll_deg,
        );
    }
    check(
        brightness < config.min_brightness,
        QualityCheck::TooDark,
        brightness,
        config.min_brightness,
    );
    check(
        brightness > config.max_brightness,
        QualityCheck::TooBright,
        brightness,
        config.max_brightness,
    );
    check(
        clipped > config.max_clipped,
        QualityCheck::Clipped,
        clipped,
        config.max_clipped,
    );
    QualityReport {
        face_width: face.width,
        sharpness,
        yaw_deg,
        roll_deg,
        brightness,
        clipped,
        failures,
    }
}

/// Yaw and roll estimates in degrees from the 5 landmarks.
///
/// Roll is the angle of the eye line. For yaw, the landmarks are first de-rotated by the roll;
/// on a frontal face the nose tip sits midway between the eyes, and as the head turns it moves
/// towards one eye: `yaw ≈ asin(offset / half the eye distance)`. A coarse estimate, good for
/// refusing clearly turned heads, not for measuring angles.
pub fn pose(points: &[[f32; 2]; 5]) -> (f32, f32) {
    let [left_eye, right_eye, nose, _, _] = *points;
    let (dx, dy) = (right_eye[0] - left_eye[0], right_eye[1] - left_eye[1]);
    let roll = dy.atan2(dx);
    let eye_distance = (dx * dx + dy * dy).sqrt().max(1e-3);
    let mid = [
        (left_eye[0] + right_eye[0]) / 2.0,
        (left_eye[1] + right_eye[1]) / 2.0,
    ];
    // nose offset along the eye line
    let offset =
        ((nose[0] - mid[0]) * roll.cos() + (nose[1] - mid[1]) * roll.sin()) / (eye_distance / 2.0);
    (
        offset.clamp(-1.0, 1.0).asin().to_degrees(),
        roll.to_degrees(),
    )
}

/// The face box region (clipped to the frame) resampled to 112×112 luma by bilinear sampling.
fn face_luma(image: &FaceImage, face: &FaceBox) -> Vec<f32> {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let x0 = face.x.clamp(0.0, w - 1.0);
    let y0 = face.y.clamp(0.0, h - 1.0);
    let x1 = (face.x + face.width).clamp(x0 + 1.0, w);
    let y1 = (face.y + face.height).clamp(y0 + 1.0, h);
    let rgb = image.rgb();
    let stride = image.width() as usize;
    let luma_at = |x: usize, y: usize| {
        let p = 3 * (y * stride + x);
        0.299 * f32::from(rgb[p]) + 0.587 * f32::from(rgb[p + 1]) + 0.114 * f32::from(rgb[p + 2])
    };
    let mut out = Vec::with_capacity(SIDE * SIDE);
    for j in 0..SIDE {
        let sy = (y0 + (j as f32 + 0.5) * (y1 - y0) / SIDE as f32 - 0.5).clamp(0.0, h - 1.0);
        let (ya, fy) = (sy.floor() as usize, sy.fract());
        let yb = (ya + 1).min(image.height() as usize - 1);
        for i in 0..SIDE {
            let sx = (x0 + (i as f32 + 0.5) * (x1 - x0) / SIDE as f32 - 0.5).clamp(0.0, w - 1.0);
            let (xa, fx) = (sx.floor() as usize, sx.fract());
            let xb = (xa + 1).min(image.width() as usize - 1);
            let top = luma_at(xa, ya) * (1.0 - fx) + luma_at(xb, ya) * fx;
            let bottom = luma_at(xa, yb) * (1.0 - fx) + luma_at(xb, yb) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// Variance of the 4-neighbour Laplacian over the interior of a 112×112 luma image.
fn laplacian_variance(luma: &[f32]) -> f32 {
    let mut values = Vec::with_capacity((SIDE - 2) * (SIDE - 2));
    for y in 1..SIDE - 1 {
        for x in 1..SIDE - 1 {
            let c = luma[y * SIDE + x];
            let lap = luma[(y - 1) * SIDE + x]
                + luma[(y + 1) * SIDE + x]
                + luma[y * SIDE + x - 1]
                + luma[y * SIDE + x + 1]
                - 4.0 * c;
            values.push(f64::from(lap));
        }
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> FaceImage {
        let mut rgb = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let v = f(x, y);
                rgb.extend_from_slice(&[v, v, v]);
            }
        }
        FaceImage::from_rgb(w, h, rgb).unwrap()
    }

    fn whole(img: &FaceImage) -> FaceBox {
        FaceBox::whole(img)
    }

    #[test]
    fn a_flat_dark_frame_fails_darkness_sharpness_and_clipping() {
        let img = image(200, 200, |_, _| 0);
        let report = assess(&img, &whole(&img), None, &QualityConfig::default());
        let checks: Vec<_> = report.failures.iter().map(|f| f.check).collect();
        assert!(checks.contains(&QualityCheck::TooDark), "{checks:?}");
        assert!(checks.contains(&QualityCheck::Sharpness), "{checks:?}");
        assert!(checks.contains(&QualityCheck::Clipped), "{checks:?}");
        assert!(!report.passed());
        assert!(report.failures[0].to_string().contains("limit"));
    }

    #[test]
    fn texture_is_sharp_and_mid_grey_passes() {
        let img = image(
            200,
            200,
            |x, y| if (x / 3 + y / 3) % 2 == 0 { 90 } else { 160 },
        );
        let report = assess(&img, &whole(&img), None, &QualityConfig::default());
        assert!(report.passed(), "{:?}", report.failures);
        assert!(report.sharpness > 100.0);
    }

    #[test]
    fn small_faces_fail_size() {
        let img = image(200, 200, |x, y| ((x * 7 + y * 13) % 200) as u8 + 30);
        let small = FaceBox {
            x: 10.0,
            y: 10.0,
            width: 30.0,
            height: 30.0,
        };
        let report = assess(&img, &small, None, &QualityConfig::default());
        assert_eq!(report.failures[0].check, QualityCheck::FaceSize);
        assert_eq!(report.failures[0].value, 30.0);
    }

    #[test]
    fn pose_from_landmarks() {
        let frontal = [
            [40.0, 50.0],
            [80.0, 50.0],
            [60.0, 70.0],
            [45.0, 90.0],
            [75.0, 90.0],
        ];
        let (yaw, roll) = pose(&frontal);
        assert!(yaw.abs() < 1e-3 && roll.abs() < 1e-3);
        let turned = [
            [40.0, 50.0],
            [80.0, 50.0],
            [75.0, 70.0],
            [50.0, 90.0],
            [78.0, 90.0],
        ];
        let (yaw, _) = pose(&turned);
        assert!((yaw - 48.59).abs() < 0.1, "{yaw}"); // asin(15 / 20)
        let tilted = [
            [40.0, 50.0],
            [80.0, 90.0],
            [60.0, 70.0],
            [45.0, 90.0],
            [75.0, 90.0],
        ];
        let (yaw, roll) = pose(&tilted);
        assert!(
            (roll - 45.0).abs() < 1e-3 && yaw.abs() < 1e-3,
            "{yaw} {roll}"
        );
    }
}
