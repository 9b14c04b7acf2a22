//! Quality measurements of a face sample: what the quality gate ([`crate::decision`]) judges.
//!
//! Measured on the face region resampled to 112×112 (so limits do not depend on the photo's
//! resolution): face size in the frame, sharpness (variance of the Laplacian of the luma),
//! pose from the 5 landmarks (roll from the eye line, yaw from the nose's offset between the
//! eyes), and exposure: the mean and median luma, the share of clipped pixels, the contrast
//! (standard deviation of the luma) and, for backlight, the mean luma of a ring of the frame
//! around the face box. This module measures and never judges: the limits and the verdict
//! belong to the decision module.

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
    /// Median luma of the face, 0..255: unlike the mean, not lifted by a few bright pixels
    /// (a window or a lamp caught at the edge of the box) when most of the face is dark.
    pub median_brightness: f32,
    /// Standard deviation of the face luma, 0..255: low on a flat, washed-out or hazy face.
    pub contrast: f32,
    /// Mean luma of the frame around the face (the box grown by half its width and height on
    /// each side, clipped to the frame, minus the box), 0..255; `None` when the face fills so
    /// much of the frame that the ring is less than a quarter of the box's area. A face much
    /// darker than its surroundings is backlit.
    pub surround_brightness: Option<f32>,
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
    let contrast = (luma.iter().map(|v| (v - brightness).powi(2)).sum::<f32>() / n).sqrt();
    let median_brightness = median(&luma);
    let surround_brightness = surround_luma(image, face);
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
        median_brightness,
        contrast,
        surround_brightness,
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
    // Every row samples the same columns: their source pixels and weights are computed once.
    let columns: Vec<(usize, usize, f32)> = (0..SIDE)
        .map(|i| {
            let sx = (x0 + (i as f32 + 0.5) * (x1 - x0) / SIDE as f32 - 0.5).clamp(0.0, w - 1.0);
            let xa = sx.floor() as usize;
            (xa, (xa + 1).min(image.width() as usize - 1), sx.fract())
        })
        .collect();
    let mut out = Vec::with_capacity(SIDE * SIDE);
    for j in 0..SIDE {
        let sy = (y0 + (j as f32 + 0.5) * (y1 - y0) / SIDE as f32 - 0.5).clamp(0.0, h - 1.0);
        let (ya, fy) = (sy.floor() as usize, sy.fract());
        let yb = (ya + 1).min(image.height() as usize - 1);
        for &(xa, xb, fx) in &columns {
            let top = luma_at(xa, ya) * (1.0 - fx) + luma_at(xb, ya) * fx;
            let bottom = luma_at(xa, yb) * (1.0 - fx) + luma_at(xb, yb) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// The median of `values` (not empty).
fn median(values: &[f32]) -> f32 {
    let mut sorted = values.to_vec();
    let mid = sorted.len() / 2;
    let (_, m, _) = sorted.select_nth_unstable_by(mid, f32::total_cmp);
    *m
}

/// Sample points per side of the grid laid over the grown box for the surround's luma: enough
/// for a mean of smooth background, and independent of the frame's resolution.
const SURROUND_GRID: usize = 96;

/// Mean luma of the ring around the face box: the box grown by half its size on each side,
/// clipped to the frame, minus the box itself (sampled on a grid). `None` when the ring's area
/// in the frame is under a quarter of the box's: a face crop or a face filling the frame has
/// no surroundings to compare with.
fn surround_luma(image: &FaceImage, face: &FaceBox) -> Option<f32> {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let (fx0, fy0) = (face.x, face.y);
    let (fx1, fy1) = (face.x + face.width, face.y + face.height);
    let gx0 = (fx0 - face.width / 2.0).max(0.0);
    let gy0 = (fy0 - face.height / 2.0).max(0.0);
    let gx1 = (fx1 + face.width / 2.0).min(w);
    let gy1 = (fy1 + face.height / 2.0).min(h);
    if gx1 <= gx0 || gy1 <= gy0 {
        return None;
    }
    let inner = (fx1.min(gx1) - fx0.max(gx0)).max(0.0) * (fy1.min(gy1) - fy0.max(gy0)).max(0.0);
    let ring = (gx1 - gx0) * (gy1 - gy0) - inner;
    if ring < 0.25 * face.width * face.height {
        return None;
    }
    let rgb = image.rgb();
    let stride = image.width() as usize;
    let (mut sum, mut count) = (0.0f64, 0usize);
    for j in 0..SURROUND_GRID {
        let y = gy0 + (j as f32 + 0.5) * (gy1 - gy0) / SURROUND_GRID as f32;
        for i in 0..SURROUND_GRID {
            let x = gx0 + (i as f32 + 0.5) * (gx1 - gx0) / SURROUND_GRID as f32;
            if (fx0..fx1).contains(&x) && (fy0..fy1).contains(&y) {
                continue;
            }
            let (xi, yi) = (
                (x as usize).min(stride - 1),
                (y as usize).min(image.height() as usize - 1),
            );
            let p = 3 * (yi * stride + xi);
            sum += 0.299 * f64::from(rgb[p])
                + 0.587 * f64::from(rgb[p + 1])
                + 0.114 * f64::from(rgb[p + 2]);
            count += 1;
        }
    }
    (count > 0).then(|| (sum / count as f64) as f32)
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

    /// A 300×300 frame with `face` (checkerboard of two levels) in the box (100, 100, 100, 100)
    /// and `background` around it.
    fn scene(face: (u8, u8), background: u8) -> (FaceImage, FaceBox) {
        let img = image(300, 300, |x, y| {
            if (100..200).contains(&x) && (100..200).contains(&y) {
                if (x / 4 + y / 4) % 2 == 0 {
                    face.0
                } else {
                    face.1
                }
            } else {
                background
            }
        });
        let face = FaceBox {
            x: 100.0,
            y: 100.0,
            width: 100.0,
            height: 100.0,
        };
        (img, face)
    }

    #[test]
    fn a_normal_face_has_contrast_and_surroundings_like_it() {
        let (img, face) = scene((80, 180), 120);
        let r = measure(&img, &face, None);
        assert!((r.brightness - 130.0).abs() < 2.0, "{r:?}");
        assert!(r.contrast > 35.0, "{r:?}"); // a two-level checkerboard: under half the step
        assert!((80.0..=180.0).contains(&r.median_brightness), "{r:?}");
        // The ring holds the background only, not the face.
        assert!(
            (r.surround_brightness.unwrap() - 120.0).abs() < 1e-3,
            "{r:?}"
        );
    }

    #[test]
    fn a_dark_face_has_a_dark_median() {
        let (img, face) = scene((5, 30), 25);
        let r = measure(&img, &face, None);
        assert!(r.median_brightness <= 30.0 && r.brightness < 20.0, "{r:?}");
    }

    #[test]
    fn a_backlit_face_is_much_darker_than_its_surroundings() {
        let (img, face) = scene((20, 60), 235);
        let r = measure(&img, &face, None);
        assert!(
            (r.surround_brightness.unwrap() - 235.0).abs() < 1e-3,
            "{r:?}"
        );
        assert!(r.surround_brightness.unwrap() / r.brightness > 5.0, "{r:?}");
    }

    #[test]
    fn a_flat_grey_face_has_no_contrast() {
        let (img, face) = scene((126, 130), 128);
        let r = measure(&img, &face, None);
        assert!(r.contrast < 2.5, "{r:?}");
        assert!((r.brightness - 128.0).abs() < 1.0, "{r:?}");
    }

    #[test]
    fn a_face_filling_the_frame_has_no_surroundings() {
        let img = image(200, 200, |x, y| ((x * 7 + y * 13) % 200) as u8 + 30);
        assert_eq!(measure(&img, &whole(&img), None).surround_brightness, None);
        // At the frame's edge the ring is what remains inside the frame.
        let corner = FaceBox {
            x: 0.0,
            y: 0.0,
            width: 100.0,
            height: 100.0,
        };
        assert!(measure(&img, &corner, None).surround_brightness.is_some());
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
