//! The quality gate: is a face sample good enough to match or to judge for liveness?
//!
//! [`crate::face::quality`] measures; this module holds each measurement to its limit and says
//! which checks failed and by how much, so a terminal can ask for a retake.

use serde::Serialize;

use crate::decision::QualityConfig;
use crate::face::QualityReport;

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
    /// Most of the face is dark (its median luma), even if a few bright pixels lift the mean.
    DarkMedian,
    /// The face is flat: too little contrast to see its features (haze, glare, a washed-out
    /// exposure).
    LowContrast,
    /// The face is much darker than what surrounds it: a window or a lamp behind the customer.
    Backlit,
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
            QualityCheck::DarkMedian => "quality_too_dark",
            QualityCheck::LowContrast => "quality_low_contrast",
            QualityCheck::Backlit => "quality_backlit",
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
            QualityCheck::DarkMedian => ("median brightness", "more light on the face"),
            QualityCheck::LowContrast => (
                "relative contrast",
                "avoid glare on the face and the lens; clean the lens",
            ),
            QualityCheck::Backlit => (
                "background over face brightness",
                "turn so the light falls on the face, not from behind",
            ),
        };
        // ratios and shares need more digits than pixels and degrees
        let digits = if self.limit < 10.0 { 2 } else { 1 };
        write!(
            f,
            "{what} {:.digits$} breaks the limit {:.digits$}: {hint}",
            self.value, self.limit
        )
    }
}

/// The checks `report` fails under `limits`, in a fixed order (empty: the sample passes).
/// Pose is judged only when it was measured (the face had landmarks).
pub fn quality_failures(report: &QualityReport, limits: &QualityConfig) -> Vec<QualityFailure> {
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
        report.face_width < limits.min_face_width,
        QualityCheck::FaceSize,
        report.face_width,
        limits.min_face_width,
    );
    check(
        report.sharpness < limits.min_sharpness,
        QualityCheck::Sharpness,
        report.sharpness,
        limits.min_sharpness,
    );
    if let (Some(yaw), Some(roll)) = (report.yaw_deg, report.roll_deg) {
        check(
            yaw.abs() > limits.max_yaw_deg,
            QualityCheck::Yaw,
            yaw.abs(),
            limits.max_yaw_deg,
        );
        check(
            roll.abs() > limits.max_roll_deg,
            QualityCheck::Roll,
            roll.abs(),
            limits.max_roll_deg,
        );
    }
    check(
        report.brightness < limits.min_brightness,
        QualityCheck::TooDark,
        report.brightness,
        limits.min_brightness,
    );
    check(
        report.brightness > limits.max_brightness,
        QualityCheck::TooBright,
        report.brightness,
        limits.max_brightness,
    );
    check(
        report.clipped > limits.max_clipped,
        QualityCheck::Clipped,
        report.clipped,
        limits.max_clipped,
    );
    check(
        report.median_brightness < limits.min_median_brightness,
        QualityCheck::DarkMedian,
        report.median_brightness,
        limits.min_median_brightness,
    );
    // Relative to the mean: a dim face keeps its features (the brightness limits judge it),
    // a washed-out one loses them.
    let relative_contrast = report.contrast / report.brightness.max(1.0);
    check(
        relative_contrast < limits.min_relative_contrast,
        QualityCheck::LowContrast,
        relative_contrast,
        limits.min_relative_contrast,
    );
    if let Some(surround) = report.surround_brightness {
        // A face at 0 over any surroundings is backlit to no end; 1 keeps the ratio finite.
        let ratio = surround / report.brightness.max(1.0);
        check(
            ratio > limits.max_backlight_ratio,
            QualityCheck::Backlit,
            ratio,
            limits.max_backlight_ratio,
        );
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> QualityReport {
        QualityReport {
            face_width: 200.0,
            sharpness: 800.0,
            yaw_deg: Some(5.0),
            roll_deg: Some(-3.0),
            brightness: 120.0,
            clipped: 0.01,
            median_brightness: 118.0,
            contrast: 45.0,
            surround_brightness: Some(100.0),
        }
    }

    #[test]
    fn each_limit_is_held_on_its_own() {
        let limits = QualityConfig::default();
        assert!(quality_failures(&good(), &limits).is_empty());
        type Spoil = fn(&mut QualityReport);
        let cases: [(Spoil, QualityCheck, f32); 10] = [
            (|r| r.face_width = 59.0, QualityCheck::FaceSize, 59.0),
            (|r| r.sharpness = 49.0, QualityCheck::Sharpness, 49.0),
            (|r| r.yaw_deg = Some(-41.0), QualityCheck::Yaw, 41.0),
            (|r| r.roll_deg = Some(31.0), QualityCheck::Roll, 31.0),
            (|r| r.brightness = 39.0, QualityCheck::TooDark, 39.0),
            (|r| r.brightness = 221.0, QualityCheck::TooBright, 221.0),
            (|r| r.clipped = 0.3, QualityCheck::Clipped, 0.3),
            (
                |r| r.median_brightness = 30.0,
                QualityCheck::DarkMedian,
                30.0,
            ),
            (|r| r.contrast = 12.0, QualityCheck::LowContrast, 0.1),
            (
                |r| {
                    r.brightness = 60.0;
                    r.surround_brightness = Some(240.0);
                },
                QualityCheck::Backlit,
                4.0,
            ),
        ];
        for (spoil, expected, value) in cases {
            let mut report = good();
            spoil(&mut report);
            let failures = quality_failures(&report, &limits);
            assert_eq!(failures.len(), 1, "{expected:?}: {failures:?}");
            assert_eq!(failures[0].check, expected);
            assert_eq!(failures[0].value, value);
            assert!(failures[0].to_string().contains("limit"), "{}", failures[0]);
        }
    }

    #[test]
    fn limits_are_inclusive_and_pose_needs_landmarks() {
        let limits = QualityConfig::default();
        let mut at_limit = good();
        at_limit.face_width = limits.min_face_width;
        at_limit.yaw_deg = Some(limits.max_yaw_deg);
        at_limit.brightness = limits.max_brightness;
        assert!(quality_failures(&at_limit, &limits).is_empty());
        let mut no_pose = good();
        no_pose.yaw_deg = None;
        no_pose.roll_deg = None;
        assert!(quality_failures(&no_pose, &limits).is_empty());
    }

    /// The gate's verdict on synthetic scenes measured by [`crate::face::quality::measure`]:
    /// a 300×300 frame with a textured face (two levels in 4-pixel squares) in the middle third.
    #[test]
    fn light_checks_on_synthetic_scenes() {
        use crate::face::quality::measure;
        use crate::face::{FaceBox, FaceImage};
        let scene = |face: (u8, u8), background: u8| {
            let mut rgb = Vec::with_capacity(300 * 300 * 3);
            for y in 0..300u32 {
                for x in 0..300u32 {
                    let inside = (100..200).contains(&x) && (100..200).contains(&y);
                    let v = match (inside, (x / 4 + y / 4) % 2 == 0) {
                        (true, true) => face.0,
                        (true, false) => face.1,
                        (false, _) => background,
                    };
                    rgb.extend_from_slice(&[v, v, v]);
                }
            }
            let image = FaceImage::from_rgb(300, 300, rgb).unwrap();
            let face = FaceBox {
                x: 100.0,
                y: 100.0,
                width: 100.0,
                height: 100.0,
            };
            let checks: Vec<QualityCheck> =
                quality_failures(&measure(&image, &face, None), &QualityConfig::default())
                    .iter()
                    .map(|f| f.check)
                    .collect();
            checks
        };
        assert_eq!(scene((80, 180), 120), [], "a normal face");
        assert_eq!(
            scene((8, 40), 25),
            [QualityCheck::TooDark, QualityCheck::DarkMedian],
            "a dark face"
        );
        assert_eq!(
            scene((40, 100), 235),
            [QualityCheck::Backlit],
            "a backlit face in a bright frame (lit enough on its own)"
        );
        assert_eq!(
            scene((124, 136), 128),
            [QualityCheck::LowContrast],
            "a flat grey face"
        );
    }

    #[test]
    fn a_black_frame_fails_darkness_sharpness_and_clipping() {
        let black = QualityReport {
            face_width: 200.0,
            sharpness: 0.0,
            yaw_deg: None,
            roll_deg: None,
            brightness: 0.0,
            clipped: 1.0,
            median_brightness: 0.0,
            contrast: 0.0,
            surround_brightness: None,
        };
        let checks: Vec<QualityCheck> = quality_failures(&black, &QualityConfig::default())
            .iter()
            .map(|f| f.check)
            .collect();
        assert_eq!(
            checks,
            [
                QualityCheck::Sharpness,
                QualityCheck::TooDark,
                QualityCheck::Clipped,
                QualityCheck::DarkMedian,
                QualityCheck::LowContrast,
            ]
        );
    }
}
