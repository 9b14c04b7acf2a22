//! Quality measurements of a face sample: what the quality gate ([`crate::decision`]) judges.
//!
//! Measured on the face region resampled to 112×112 (so limits do not depend on the photo's
//! resolution): face size in the frame, sharpness (variance of the Laplacian of the luma),
//! pose from the 5 landmarks (roll from the eye line, yaw from the nose's offset between the
//! eyes), and exposure (mean luma and the share of clipped pixels). This module measures and
//! never judges: the limits and the verdict belong to the decision module.

use serde::Serialize;

use crate::face::detect::FaceBox;
use crate::face::image::FaceImage;

/// The measurements of one face sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
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
}

const SIDE: usize = 112;

/// Measures a face sample. `landmarks` (from the detector) give the pose; without them pose
/// is not measured.
pub fn measure(
    image: &FaceImage,
    face: &FaceBox,
    landmarks: Option<&[[f32; 2]; 5]>,
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
    QualityReport {
        face_width: face.width,
        sharpness,
        yaw_deg,
        roll_deg,
        brightness,
        clipped,
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
    fn a_flat_black_frame_is_dark_flat_and_clipped() {
        let img = image(200, 200, |_, _| 0);
        let report = measure(&img, &whole(&img), None);
        assert_eq!(report.brightness, 0.0);
        assert_eq!(report.sharpness, 0.0);
        assert_eq!(report.clipped, 1.0);
        assert_eq!((report.yaw_deg, report.roll_deg), (None, None));
    }

    #[test]
    fn texture_is_sharp_and_mid_grey() {
        let img = image(
            200,
            200,
            |x, y| if (x / 3 + y / 3) % 2 == 0 { 90 } else { 160 },
        );
        let report = measure(&img, &whole(&img), None);
        assert!(report.sharpness > 100.0, "{report:?}");
        assert!((report.brightness - 125.0).abs() < 2.0, "{report:?}");
        assert_eq!(report.clipped, 0.0);
    }

    #[test]
    fn the_face_width_is_the_box_width() {
        let img = image(200, 200, |x, y| ((x * 7 + y * 13) % 200) as u8 + 30);
        let small = FaceBox {
            x: 10.0,
            y: 10.0,
            width: 30.0,
            height: 30.0,
        };
        assert_eq!(measure(&img, &small, None).face_width, 30.0);
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
