//! Head movement from the 5 landmarks: a pose index per frame, the trajectory cut into
//! movements, and the parallax that tells a head from a plane.
//!
//! An active liveness challenge asks the customer for a random sequence of head movements
//! (`left`, `right`, `up`, `down`). This module turns the landmarks of the frames they sent
//! into evidence about what they did; whether that answers the challenge is
//! [`crate::decision`]'s call.
//!
//! - **Pose index.** Yaw: the nose's horizontal offset from the midpoint of the eyes, in
//!   interocular distances; pitch: the nose's distance below the eye line, in face-box widths.
//!   Not against the mouth, which moves when the customer talks, nor the box's height, which
//!   shrinks with the tilt itself: on the CMU pose images a clear look up moves the index
//!   2–4 times further in box widths than in box heights, while talking in the real videos
//!   moves it about as little (under 0.035 upwards). Both are measured against the
//!   sequence's own frontal baseline, so a face's shape
//!   does not matter, only how it changes. No 3-D model is fitted: 5 landmarks do not support
//!   one, and the challenge needs direction and amplitude, not degrees.
//! - **Directions are the customer's own.** `left` is the customer turning their head to
//!   *their* left. In the frames as a camera delivers them (not mirrored), the nose then moves
//!   towards the image's right, and the yaw index grows. A mirrored preview on the kiosk's
//!   screen is for the customer; the frames sent must not be mirrored.
//! - **Parallax.** The eyes and mouth corners are close to one plane; the nose tip stands out
//!   of it. The homography that maps those four points of the baseline frame onto a later
//!   frame predicts where the nose would be if the face were flat (a printed photo or a screen
//!   turned in the hand, whatever the perspective). A real head turning moves the nose away
//!   from that prediction; a plane does not. The distance, in interocular distances, is the
//!   frame's parallax.
//! - **Movements.** A frame whose pose index leaves the baseline by more than the onset
//!   (`[face.motion]`) in one direction belongs to an excursion that way; runs of such frames
//!   (at least `min_frames`, short dips merged) are the movements, in time order, each with
//!   its peak amplitude, its largest parallax and its times.

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::face::config::MotionConfig;

/// A head movement of an active challenge, from the customer's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadMovement {
    /// The customer turns their head to their own left (the nose moves to the image's right).
    Left,
    /// The customer turns their head to their own right (the nose moves to the image's left).
    Right,
    /// The customer tilts their head back, looking up.
    Up,
    /// The customer tilts their head forward, looking down.
    Down,
}

impl HeadMovement {
    /// Every movement, in a fixed order (challenges draw from these).
    pub const ALL: [HeadMovement; 4] = [
        HeadMovement::Left,
        HeadMovement::Right,
        HeadMovement::Up,
        HeadMovement::Down,
    ];

    /// Its name: `left`, `right`, `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            HeadMovement::Left => "left",
            HeadMovement::Right => "right",
            HeadMovement::Up => "up",
            HeadMovement::Down => "down",
        }
    }

    /// The names of `actions` ([`HeadMovement::as_str`]) joined by `separator`.
    pub fn joined(actions: &[HeadMovement], separator: &str) -> String {
        actions
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(separator)
    }

    /// The prompt a terminal shows or speaks.
    pub fn prompt(self) -> &'static str {
        match self {
            HeadMovement::Left => "Turn your head to your left",
            HeadMovement::Right => "Turn your head to your right",
            HeadMovement::Up => "Look up",
            HeadMovement::Down => "Look down",
        }
    }

    /// Parses a name ([`HeadMovement::as_str`]); anything else is
    /// [`ErrorKind::InvalidInput`].
    pub fn parse(name: &str) -> Result<HeadMovement> {
        HeadMovement::ALL
            .into_iter()
            .find(|m| m.as_str() == name.trim())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("unknown head movement {name:?}; expected left, right, up or down"),
                )
            })
    }

    /// Parses a comma-separated list (`left,right,up`).
    pub fn parse_list(names: &str) -> Result<Vec<HeadMovement>> {
        names
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(HeadMovement::parse)
            .collect()
    }
}

/// The pose of one frame, as indices (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PoseIndex {
    /// Nose offset from the eyes' midpoint, in interocular distances; grows as the customer
    /// turns to their left.
    pub yaw: f32,
    /// The nose's distance below the eye line, in face-box widths; falls as the customer
    /// looks up.
    pub pitch: f32,
}

/// Left eye, right eye, nose tip, left and right mouth corners (image order), as `[x, y]`.
pub type Landmarks = [[f32; 2]; 5];

const LEFT_EYE: usize = 0;
const RIGHT_EYE: usize = 1;
const NOSE: usize = 2;
const LEFT_MOUTH: usize = 3;
const RIGHT_MOUTH: usize = 4;

fn distance(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn midpoint(a: [f32; 2], b: [f32; 2]) -> [f32; 2] {
    [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0]
}

/// The interocular distance, or `None` when the landmarks are degenerate.
fn interocular(landmarks: &Landmarks) -> Option<f32> {
    let d = distance(landmarks[LEFT_EYE], landmarks[RIGHT_EYE]);
    (d.is_finite() && d > 1e-3).then_some(d)
}

/// One face as the detector saw it: its landmarks and the height of its box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sighting {
    /// The 5 landmarks.
    pub landmarks: Landmarks,
    /// The width of the face box, in pixels: the scale of the pitch index, because it
    /// changes neither when the mouth opens (talking moves the mouth line) nor when the head
    /// tilts (which shortens the box's height), and little when it turns (which shortens
    /// the interocular distance).
    pub face_width: f32,
}

/// The pose index of one face, or `None` when its landmarks are degenerate (eyes on one
/// point, mouth on the eye line, non-finite values) or its box is empty.
pub fn pose_index(face: &Sighting) -> Option<PoseIndex> {
    let landmarks = &face.landmarks;
    let iod = interocular(landmarks)?;
    if !(face.face_width.is_finite() && face.face_width > 1e-3) {
        return None;
    }
    let eyes = midpoint(landmarks[LEFT_EYE], landmarks[RIGHT_EYE]);
    let mouth = midpoint(landmarks[LEFT_MOUTH], landmarks[RIGHT_MOUTH]);
    let nose = landmarks[NOSE];
    // The eye-to-mouth axis, so that a rolled head (tilted sideways) measures the same.
    let axis = [mouth[0] - eyes[0], mouth[1] - eyes[1]];
    let axis_len = (axis[0].powi(2) + axis[1].powi(2)).sqrt();
    if !(axis_len.is_finite() && axis_len > 1e-3) {
        return None;
    }
    let down = [axis[0] / axis_len, axis[1] / axis_len];
    // Across the face: perpendicular to the axis, pointing from the left eye to the right.
    let across = [down[1], -down[0]];
    let across = if across[0] * (landmarks[RIGHT_EYE][0] - landmarks[LEFT_EYE][0])
        + across[1] * (landmarks[RIGHT_EYE][1] - landmarks[LEFT_EYE][1])
        < 0.0
    {
        [-across[0], -across[1]]
    } else {
        across
    };
    let rel = [nose[0] - eyes[0], nose[1] - eyes[1]];
    let yaw = (rel[0] * across[0] + rel[1] * across[1]) / iod;
    let pitch = (rel[0] * down[0] + rel[1] * down[1]) / face.face_width;
    (yaw.is_finite() && pitch.is_finite()).then_some(PoseIndex { yaw, pitch })
}

/// The homography mapping four points onto four others (exact; `None` when degenerate), as
/// a row-major 3×3 matrix with `h[8] = 1`.
fn homography(from: [[f64; 2]; 4], to: [[f64; 2]; 4]) -> Option<[f64; 9]> {
    // Two equations per point pair in the eight unknowns h0..h7.
    let mut a = [[0.0f64; 9]; 8];
    for (i, (p, q)) in from.iter().zip(&to).enumerate() {
        let (x, y, u, v) = (p[0], p[1], q[0], q[1]);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gaussian elimination with partial pivoting on the augmented 8×9 system.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[pivot][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (row, line) in a.iter_mut().enumerate() {
            if row != col {
                let factor = line[col] / pivot_row[col];
                for (value, pivot_value) in line.iter_mut().zip(&pivot_row).skip(col) {
                    *value -= factor * pivot_value;
                }
            }
        }
    }
    let mut h = [0.0; 9];
    for (i, row) in a.iter().enumerate() {
        h[i] = row[8] / row[i];
    }
    h[8] = 1.0;
    h.iter().all(|v| v.is_finite()).then_some(h)
}

fn apply(h: &[f64; 9], p: [f64; 2]) -> Option<[f64; 2]> {
    let w = h[6] * p[0] + h[7] * p[1] + h[8];
    if w.abs() < 1e-9 {
        return None;
    }
    Some([
        (h[0] * p[0] + h[1] * p[1] + h[2]) / w,
        (h[3] * p[0] + h[4] * p[1] + h[5]) / w,
    ])
}

/// How far the nose of `frame` is from where a flat face would put it, given `reference`
/// (see the module docs), in interocular distances of `frame`; `None` when either set of
/// landmarks is degenerate.
pub fn parallax(reference: &Landmarks, frame: &Landmarks) -> Option<f32> {
    let plane = [LEFT_EYE, RIGHT_EYE, LEFT_MOUTH, RIGHT_MOUTH];
    let pick = |l: &Landmarks, i: usize| [f64::from(l[i][0]), f64::from(l[i][1])];
    let from = plane.map(|i| pick(reference, i));
    let to = plane.map(|i| pick(frame, i));
    let h = homography(from, to)?;
    let predicted = apply(&h, pick(reference, NOSE))?;
    let seen = pick(frame, NOSE);
    let off = ((predicted[0] - seen[0]).powi(2) + (predicted[1] - seen[1]).powi(2)).sqrt();
    let iod = f64::from(interocular(frame)?);
    let value = (off / iod) as f32;
    value.is_finite().then_some(value)
}

/// One frame of a followed face.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TrackedFrame {
    /// Seconds since the first frame.
    pub time: f64,
    /// Its pose index, or `None` when no usable face was found in it.
    pub pose: Option<PoseIndex>,
    /// Its parallax against the baseline frame (`None` without a face).
    pub parallax: Option<f32>,
    /// The face it was measured from.
    #[serde(skip)]
    pub face: Option<Sighting>,
}

/// A movement found in the trajectory.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Movement {
    /// Which way.
    pub action: HeadMovement,
    /// Time of its first frame (seconds since the first frame of the sequence).
    pub start: f64,
    /// Time of its last frame.
    pub end: f64,
    /// Its peak distance from the baseline on its axis (yaw or pitch index units).
    pub amplitude: f32,
    /// The largest parallax among its frames.
    pub parallax: f32,
    /// How many frames it spans.
    pub frames: usize,
}

/// The frontal baseline: the median pose and the landmarks of the most frontal of the first
/// `count` frames with a face; `None` when none of them has one.
pub fn baseline(
    frames: &[(f64, Option<Sighting>)],
    count: usize,
) -> Option<(PoseIndex, Landmarks)> {
    let first: Vec<(PoseIndex, Landmarks)> = frames
        .iter()
        .filter_map(|(_, f)| f.and_then(|f| pose_index(&f).map(|p| (p, f.landmarks))))
        .take(count)
        .collect();
    if first.is_empty() {
        return None;
    }
    let median = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    let pose = PoseIndex {
        yaw: median(first.iter().map(|(p, _)| p.yaw).collect()),
        pitch: median(first.iter().map(|(p, _)| p.pitch).collect()),
    };
    let (_, landmarks) = first.iter().min_by(|a, b| {
        let da = (a.0.yaw - pose.yaw).abs() + (a.0.pitch - pose.pitch).abs();
        let db = (b.0.yaw - pose.yaw).abs() + (b.0.pitch - pose.pitch).abs();
        da.total_cmp(&db)
    })?;
    Some((pose, *landmarks))
}

/// Measures every frame against the baseline: its pose index and parallax.
pub fn track(frames: &[(f64, Option<Sighting>)], reference: &Landmarks) -> Vec<TrackedFrame> {
    frames
        .iter()
        .map(|&(time, face)| TrackedFrame {
            time,
            pose: face.and_then(|f| pose_index(&f)),
            parallax: face.and_then(|f| parallax(reference, &f.landmarks)),
            face,
        })
        .collect()
}

/// Which way a frame is moving, and how far, or `None` while it is near the baseline (or has
/// no face).
fn direction(
    frame: &TrackedFrame,
    base: PoseIndex,
    config: &MotionConfig,
) -> Option<(HeadMovement, f32)> {
    let pose = frame.pose?;
    let dy = pose.yaw - base.yaw;
    let dp = pose.pitch - base.pitch;
    // Each axis in units of its own onset, so that the stronger excursion names the movement.
    let ry = dy.abs() / config.yaw_onset;
    let rp = dp.abs() / config.pitch_onset;
    if ry.max(rp) <= 1.0 {
        return None;
    }
    Some(if ry >= rp {
        (
            if dy > 0.0 {
                HeadMovement::Left
            } else {
                HeadMovement::Right
            },
            dy.abs(),
        )
    } else {
        (
            if dp < 0.0 {
                HeadMovement::Up
            } else {
                HeadMovement::Down
            },
            dp.abs(),
        )
    })
}

/// Cuts the trajectory into movements (see the module docs), in time order.
pub fn movements(frames: &[TrackedFrame], base: PoseIndex, config: &MotionConfig) -> Vec<Movement> {
    let mut found: Vec<Movement> = Vec::new();
    let mut run: Option<Movement> = None;
    let mut gap = 0usize;
    let close = |run: Option<Movement>, found: &mut Vec<Movement>| {
        if let Some(m) = run
            && m.frames >= config.min_frames
        {
            // A dip shorter than a movement between two runs the same way is one movement.
            match found.last_mut() {
                Some(last) if last.action == m.action => {
                    last.end = m.end;
                    last.amplitude = last.amplitude.max(m.amplitude);
                    last.parallax = last.parallax.max(m.parallax);
                    last.frames += m.frames;
                }
                _ => found.push(m),
            }
        }
    };
    for frame in frames {
        match direction(frame, base, config) {
            Some((action, amount)) => {
                let parallax = frame.parallax.unwrap_or(0.0);
                match run.as_mut() {
                    Some(m) if m.action == action => {
                        m.end = frame.time;
                        m.amplitude = m.amplitude.max(amount);
                        m.parallax = m.parallax.max(parallax);
                        m.frames += 1;
                    }
                    _ => {
                        close(run.take(), &mut found);
                        run = Some(Movement {
                            action,
                            start: frame.time,
                            end: frame.time,
                            amplitude: amount,
                            parallax,
                            frames: 1,
                        });
                    }
                }
                gap = 0;
            }
            None => {
                gap += 1;
                if gap >= config.min_frames {
                    close(run.take(), &mut found);
                }
            }
        }
    }
    close(run, &mut found);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A face in 3-D (x right, y down, z towards the camera; units of the interocular
    /// distance), the nose tip standing out of the plane of eyes and mouth.
    const HEAD: [[f32; 3]; 5] = [
        [-0.5, 0.0, 0.0],
        [0.5, 0.0, 0.0],
        [0.0, 0.55, 0.55],
        [-0.4, 1.1, 0.05],
        [0.4, 1.1, 0.05],
    ];

    /// The head turned by `yaw` (radians; positive = the subject's left, which brings the
    /// nose to the image's right) and tilted by `pitch` (positive = looking up), seen by a
    /// pinhole camera at `distance` interocular distances, 100 px per unit.
    fn project(points: &[[f32; 3]; 5], yaw: f32, pitch: f32, distance: f32) -> Landmarks {
        let mut out = [[0.0; 2]; 5];
        for (o, p) in out.iter_mut().zip(points) {
            // Rotate about the head's centre (0, 0.5, -0.5).
            let (x, y, z) = (p[0], p[1] - 0.5, p[2] + 0.5);
            let (x, z) = (
                x * yaw.cos() + z * yaw.sin(),
                -x * yaw.sin() + z * yaw.cos(),
            );
            let (y, z) = (
                y * pitch.cos() - z * pitch.sin(),
                y * pitch.sin() + z * pitch.cos(),
            );
            let depth = distance - z;
            *o = [
                320.0 + 100.0 * distance * x / depth,
                240.0 + 100.0 * distance * (y + 0.5) / depth,
            ];
        }
        out
    }

    /// The face of `project`'s landmarks, its box 2.2 interocular distances wide.
    fn seen_as(landmarks: Landmarks) -> Sighting {
        Sighting {
            landmarks,
            face_width: 220.0,
        }
    }

    /// The same face printed flat (every point at z = 0) and turned the same way.
    fn flat() -> [[f32; 3]; 5] {
        HEAD.map(|p| [p[0], p[1], 0.0])
    }

    #[test]
    fn a_turn_to_the_left_grows_the_yaw_index_and_looking_up_lowers_the_pitch_index() {
        let front = pose_index(&seen_as(project(&HEAD, 0.0, 0.0, 8.0))).unwrap();
        let left = pose_index(&seen_as(project(&HEAD, 0.4, 0.0, 8.0))).unwrap();
        let right = pose_index(&seen_as(project(&HEAD, -0.4, 0.0, 8.0))).unwrap();
        let up = pose_index(&seen_as(project(&HEAD, 0.0, 0.35, 8.0))).unwrap();
        assert!(front.yaw.abs() < 1e-4, "{front:?}");
        assert!(left.yaw > 0.2 && right.yaw < -0.2, "{left:?} {right:?}");
        assert!(up.pitch < front.pitch - 0.05, "{up:?} {front:?}");
    }

    #[test]
    fn a_rolled_head_keeps_its_pose_index() {
        let l = project(&HEAD, 0.3, 0.0, 8.0);
        let angle: f32 = 0.5;
        let rolled = l.map(|[x, y]| {
            let (x, y) = (x - 320.0, y - 240.0);
            [
                x * angle.cos() - y * angle.sin() + 320.0,
                x * angle.sin() + y * angle.cos() + 240.0,
            ]
        });
        let a = pose_index(&seen_as(l)).unwrap();
        let b = pose_index(&seen_as(rolled)).unwrap();
        assert!(
            (a.yaw - b.yaw).abs() < 1e-3 && (a.pitch - b.pitch).abs() < 1e-3,
            "{a:?} {b:?}"
        );
    }

    #[test]
    fn a_head_has_parallax_and_a_plane_has_none() {
        let head0 = project(&HEAD, 0.0, 0.0, 6.0);
        let plane0 = project(&flat(), 0.0, 0.0, 6.0);
        for (yaw, pitch) in [
            (0.35, 0.0),
            (-0.35, 0.0),
            (0.0, 0.3),
            (0.0, -0.3),
            (0.2, 0.2),
        ] {
            let head = parallax(&head0, &project(&HEAD, yaw, pitch, 6.0)).unwrap();
            let plane = parallax(&plane0, &project(&flat(), yaw, pitch, 6.0)).unwrap();
            assert!(head > 0.1, "head at {yaw},{pitch}: {head}");
            assert!(plane < 1e-3, "plane at {yaw},{pitch}: {plane}");
        }
    }

    #[test]
    fn degenerate_landmarks_measure_nothing() {
        assert!(pose_index(&seen_as([[1.0, 1.0]; 5])).is_none());
        assert!(parallax(&[[1.0, 1.0]; 5], &project(&HEAD, 0.0, 0.0, 6.0)).is_none());
        let mut nan = project(&HEAD, 0.0, 0.0, 6.0);
        nan[2][0] = f32::NAN;
        assert!(pose_index(&seen_as(nan)).is_none());
        let mut flat_box = seen_as(project(&HEAD, 0.0, 0.0, 6.0));
        flat_box.face_width = 0.0;
        assert!(pose_index(&flat_box).is_none());
    }

    fn sequence(poses: &[(f32, f32)], fps: f64) -> Vec<(f64, Option<Sighting>)> {
        poses
            .iter()
            .enumerate()
            .map(|(i, &(yaw, pitch))| {
                (
                    i as f64 / fps,
                    Some(seen_as(project(&HEAD, yaw, pitch, 8.0))),
                )
            })
            .collect()
    }

    /// `hold` frames at each pose, with `ramp` frames of linear motion between.
    fn path(steps: &[(f32, f32)], hold: usize, ramp: usize) -> Vec<(f32, f32)> {
        let mut out = Vec::new();
        for pair in steps.windows(2) {
            out.extend(std::iter::repeat_n(pair[0], hold));
            for k in 0..ramp {
                let t = k as f32 / ramp as f32;
                out.push((
                    pair[0].0 + t * (pair[1].0 - pair[0].0),
                    pair[0].1 + t * (pair[1].1 - pair[0].1),
                ));
            }
        }
        out.extend(std::iter::repeat_n(*steps.last().unwrap(), hold));
        out
    }

    fn seen(poses: &[(f32, f32)]) -> Vec<Movement> {
        let frames = sequence(poses, 15.0);
        let config = MotionConfig::default();
        let (base, reference) = baseline(&frames, config.baseline_frames).unwrap();
        movements(&track(&frames, &reference), base, &config)
    }

    #[test]
    fn the_movements_come_out_in_order_with_their_times() {
        let front = (0.0, 0.0);
        let poses = path(
            &[
                front,
                (0.45, 0.0),
                front,
                (-0.45, 0.0),
                front,
                (0.0, 0.35),
                front,
            ],
            6,
            4,
        );
        let found = seen(&poses);
        let actions: Vec<_> = found.iter().map(|m| m.action).collect();
        assert_eq!(
            actions,
            [HeadMovement::Left, HeadMovement::Right, HeadMovement::Up]
        );
        assert!(found.windows(2).all(|w| w[0].end < w[1].start));
        assert!(found.iter().all(|m| m.parallax > 0.1), "{found:?}");
    }

    #[test]
    fn a_still_face_makes_no_movement() {
        assert!(seen(&[(0.0, 0.0); 40]).is_empty());
        // Small sways stay under the onset.
        let sway: Vec<_> = (0..40)
            .map(|i| (0.04 * (i as f32 * 0.5).sin(), 0.0))
            .collect();
        assert!(seen(&sway).is_empty());
    }

    #[test]
    fn a_one_frame_spike_is_no_movement() {
        let mut poses = vec![(0.0, 0.0); 20];
        poses[10] = (0.5, 0.0);
        assert!(seen(&poses).is_empty());
    }

    #[test]
    fn frames_without_a_face_break_no_movement_shorter_than_a_gap() {
        let front = (0.0, 0.0);
        let poses = path(&[front, (0.45, 0.0), front], 8, 3);
        let mut frames = sequence(&poses, 15.0);
        frames[13].1 = None; // one lost frame in the middle of the turn
        let config = MotionConfig::default();
        let (base, reference) = baseline(&frames, 3).unwrap();
        let found = movements(&track(&frames, &reference), base, &config);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].action, HeadMovement::Left);
    }

    #[test]
    fn names_parse_and_others_are_refused() {
        assert_eq!(
            HeadMovement::parse_list("left, right,up,down").unwrap(),
            HeadMovement::ALL
        );
        assert_eq!(
            HeadMovement::parse("sideways").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
