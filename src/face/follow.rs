//! Following one face through the frames of an active challenge's response: one detection
//! per frame, each face's pose index and parallax ([`crate::face::motion`]), the movements,
//! and whether the face that moved stayed one person. Evidence only: whether it answers the
//! challenge is [`crate::decision::active_liveness`]'s call.

use serde::Serialize;

use crate::embedding::Embedding;
use crate::error::{Error, ErrorKind, Result};
use crate::face::FacePipeline;
use crate::face::align::align;
use crate::face::config::MotionConfig;
use crate::face::detect::FaceBox;
use crate::face::image::FaceImage;
use crate::face::motion::{
    HeadMovement, Landmarks, Movement, PoseIndex, Sighting, TrackedFrame, baseline, movements,
    track,
};
use crate::face::presentation;

/// What following one face through a challenge response showed: evidence only.
#[derive(Clone, Debug, Serialize)]
pub struct MotionEvidence {
    /// How many frames were sent.
    pub frames: usize,
    /// Seconds from the first frame to the last.
    pub duration: f64,
    /// The longest time between two consecutive frames, in seconds.
    pub longest_gap: f64,
    /// Frames in which no usable face was found.
    pub lost_frames: usize,
    /// Consecutive faces whose centres are further apart than the face is wide: not one face
    /// followed, but a cut or another face.
    pub jumps: usize,
    /// The largest share of a second face against the followed one over all frames (0 when
    /// every frame holds one face).
    pub other_face_share: f32,
    /// The frontal baseline the movements are measured from (`None` without a face at the
    /// start).
    pub baseline: Option<PoseIndex>,
    /// The movements found, in time order.
    pub movements: Vec<Movement>,
    /// The lowest cosine similarity between the baseline face's embedding and the embedding
    /// of a later frontal frame: whether the face that moved is the face that started.
    pub identity: Option<f32>,
    /// The embedding of the first frontal face: what the face matched in the same decision
    /// must resemble, so that the face that moved is the face that pays. Never serialised.
    #[serde(skip)]
    pub anchor: Option<Embedding>,
    /// Frames near the baseline pose (where passive liveness and matching work best).
    pub frontal: Vec<usize>,
    /// Every frame's measurements, for research output.
    pub trajectory: Vec<TrackedFrame>,
}

impl MotionEvidence {
    /// The actions the movements answer, in order.
    pub fn actions_seen(&self) -> Vec<HeadMovement> {
        self.movements.iter().map(|m| m.action).collect()
    }
}

/// The most frames one challenge response may hold (30 s at 10 fps).
pub const MAX_RESPONSE_FRAMES: usize = 300;

/// Checks a response's frames and times before any model runs: 2 to
/// [`MAX_RESPONSE_FRAMES`] frames of one size, one finite time per frame, strictly increasing.
pub fn check_response(frames: &[FaceImage], times: &[f64]) -> Result<()> {
    let bad = |m: String| Err(Error::new(ErrorKind::InvalidInput, m));
    if !(2..=MAX_RESPONSE_FRAMES).contains(&frames.len()) {
        return bad(format!(
            "a challenge response takes 2 to {MAX_RESPONSE_FRAMES} frames, got {}",
            frames.len()
        ));
    }
    if times.len() != frames.len() {
        return bad(format!(
            "{} frames but {} timestamps: every frame needs its time",
            frames.len(),
            times.len()
        ));
    }
    if let Some(i) = times.iter().position(|t| !t.is_finite()) {
        return bad(format!("frame {}: its timestamp is not a number", i + 1));
    }
    if let Some(i) = times.windows(2).position(|w| w[1] <= w[0]) {
        return bad(format!(
            "frames {} and {} are out of order (times {:.3} s and {:.3} s): send them in the order they were captured",
            i + 1,
            i + 2,
            times[i],
            times[i + 1]
        ));
    }
    let (w, h) = (frames[0].width(), frames[0].height());
    if let Some(i) = frames
        .iter()
        .position(|f| (f.width(), f.height()) != (w, h))
    {
        return bad(format!(
            "frame {} is {}x{} but frame 1 is {w}x{h}; a response comes from one camera",
            i + 1,
            frames[i].width(),
            frames[i].height()
        ));
    }
    Ok(())
}

/// Follows the largest face through a challenge response: one detection per frame, the pose
/// and parallax of each, the movements, and the identity of the frontal frames against the
/// first (embedding up to `max_identity_checks` of them, spread over the sequence). `times`
/// are the frames' capture times in seconds (any origin).
pub fn follow(
    pipeline: &FacePipeline,
    frames: &[FaceImage],
    times: &[f64],
    config: &MotionConfig,
    max_identity_checks: usize,
) -> Result<MotionEvidence> {
    check_response(frames, times)?;
    let origin = times[0];
    let mut observed: Vec<(f64, Option<Sighting>)> = Vec::with_capacity(frames.len());
    let mut boxes: Vec<Option<FaceBox>> = Vec::with_capacity(frames.len());
    let mut other_face_share = 0.0f32;
    for (i, frame) in frames.iter().enumerate() {
        let detections = pipeline
            .detect(frame)
            .map_err(|e| Error::new(e.kind(), format!("frame {}: {}", i + 1, e.message())))?;
        match presentation::largest_face(frame, &detections) {
            Ok(face) => {
                other_face_share = other_face_share.max(face.other_face_share);
                observed.push((
                    times[i] - origin,
                    Some(Sighting {
                        landmarks: face.detection.landmarks,
                        face_width: face.face_box.width,
                    }),
                ));
                boxes.push(Some(face.face_box));
            }
            Err(e) if e.kind() == ErrorKind::NoFace => {
                observed.push((times[i] - origin, None));
                boxes.push(None);
            }
            Err(e) => {
                return Err(Error::new(
                    e.kind(),
                    format!("frame {}: {}", i + 1, e.message()),
                ));
            }
        }
    }
    let lost_frames = boxes.iter().filter(|b| b.is_none()).count();
    let found: Vec<FaceBox> = boxes.iter().flatten().copied().collect();
    let jumps = found
        .windows(2)
        .filter(|w| {
            let (a, b) = (w[0], w[1]);
            let dx = (a.x + a.width / 2.0) - (b.x + b.width / 2.0);
            let dy = (a.y + a.height / 2.0) - (b.y + b.height / 2.0);
            (dx * dx + dy * dy).sqrt() > a.width.max(b.width)
        })
        .count();
    let longest_gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let duration = times[times.len() - 1] - origin;
    let Some((base, reference)) = baseline(&observed, config.baseline_frames) else {
        return Ok(MotionEvidence {
            frames: frames.len(),
            duration,
            longest_gap,
            lost_frames,
            jumps,
            other_face_share,
            baseline: None,
            movements: Vec::new(),
            identity: None,
            anchor: None,
            frontal: Vec::new(),
            trajectory: track(&observed, &[[0.0; 2]; 5]),
        });
    };
    let trajectory = track(&observed, &reference);
    let movements = movements(&trajectory, base, config);
    let frontal: Vec<usize> = trajectory
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.pose.is_some_and(|p| {
                (p.yaw - base.yaw).abs() <= config.yaw_onset
                    && (p.pitch - base.pitch).abs() <= config.pitch_onset
            })
        })
        .map(|(i, _)| i)
        .collect();
    let (anchor, identity) =
        identity_of(pipeline, frames, &observed, &frontal, max_identity_checks)?;
    Ok(MotionEvidence {
        frames: frames.len(),
        duration,
        longest_gap,
        lost_frames,
        jumps,
        other_face_share,
        baseline: Some(base),
        movements,
        identity,
        anchor,
        frontal,
        trajectory,
    })
}

/// The embedding of the first frontal frame, and the lowest cosine between it and those of
/// up to `checks - 1` later frontal frames, evenly spread (the last frontal frame always among
/// them; `None` with a single frontal frame). Nothing without a frontal frame.
fn identity_of(
    pipeline: &FacePipeline,
    frames: &[FaceImage],
    observed: &[(f64, Option<Sighting>)],
    frontal: &[usize],
    checks: usize,
) -> Result<(Option<Embedding>, Option<f32>)> {
    // Frontal frames have a pose, hence landmarks.
    let frontal: Vec<(usize, Landmarks)> = frontal
        .iter()
        .filter_map(|&i| observed[i].1.map(|f| (i, f.landmarks)))
        .collect();
    let embed = |(i, landmarks): (usize, Landmarks)| -> Result<Embedding> {
        pipeline.embedder().embed(&align(&frames[i], &landmarks)?)
    };
    let Some(&first_frame) = frontal.first() else {
        return Ok((None, None));
    };
    let first = embed(first_frame)?;
    let later = &frontal[1..];
    let picks = checks.saturating_sub(1).min(later.len());
    if picks == 0 {
        return Ok((Some(first), None));
    }
    let mut lowest = f32::INFINITY;
    for k in 0..picks {
        // k = picks - 1 lands on the last frontal frame.
        let i = later[(k + 1) * later.len() / picks - 1];
        lowest = lowest.min(first.cosine(&embed(i)?)?);
    }
    Ok((Some(first), Some(lowest)))
}
