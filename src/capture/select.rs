//! Frame selection: from a stream of frames, within a time budget, the frames worth sending
//! to the [`crate::authenticator::Authenticator`].
//!
//! Each frame is observed as the authenticator observes it (one detection, the largest face,
//! the same box and landmarks) and held to the same gate ([`crate::decision`]: quality and a
//! second face), so a frame selected here is one the authenticator can judge. Two things are collected: the best usable frames for matching
//! (sharpest first, as the authenticator embeds the sharpest), and a run of consecutive
//! usable frames of one presentation for multi-frame liveness (one frame size, face boxes
//! overlapping by at least `liveness.min_frame_iou`). When the budget runs out without a run,
//! the error tallies why frames were refused, so a kiosk can tell the customer what to fix.
//!
//! Only a bounded number of frames is ever held (the best few and the current run).

use std::time::Duration;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::capture::encode::{FrameEncoding, encode_image};
use crate::capture::{Frame, FrameSource};
use crate::decision::{self, QualityCheck};
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::face::{FaceBox, QualityReport};

/// How frames are selected.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectConfig {
    /// Frames later than this after the first one (by their timestamps) are not looked at.
    /// By default, 5 s. Timestamps, not the wall clock, so a replayed recording is judged the
    /// same on any machine; for a live camera they are the same thing.
    pub budget: Duration,
    /// The most frames looked at. By default, 150 (5 s at 30 fps).
    pub max_frames: usize,
    /// Usable frames kept for matching, best first. By default, 3.
    pub best: usize,
    /// Consecutive usable frames of one presentation needed for liveness, 1 to
    /// `liveness.max_frames`. By default, 5.
    pub run_length: usize,
    /// How long to wait for each frame before the source's [`ErrorKind::CaptureTimeout`].
    /// By default, 1 s.
    pub frame_timeout: Duration,
    /// Whether to stop as soon as a run is complete and `best` frames are kept, or to look at
    /// every frame the budget allows for better ones. By default, stop (a customer waits).
    pub stop_when_ready: bool,
}

impl Default for SelectConfig {
    fn default() -> SelectConfig {
        SelectConfig {
            budget: Duration::from_secs(5),
            max_frames: 150,
            best: 3,
            run_length: 5,
            frame_timeout: Duration::from_secs(1),
            stop_when_ready: true,
        }
    }
}

/// A usable frame and what the quality gate measured on it.
#[derive(Debug)]
pub struct SelectedFrame {
    /// The frame.
    pub frame: Frame,
    /// Its largest face.
    pub face: FaceBox,
    /// The face's 5 landmarks.
    pub landmarks: [[f32; 2]; 5],
    /// The quality gate's measurements (passed).
    pub quality: QualityReport,
}

impl SelectedFrame {
    /// The frame as image bytes for the authenticator.
    pub fn encode(&self, encoding: FrameEncoding) -> Result<Zeroizing<Vec<u8>>> {
        encode_image(&self.frame.image, encoding)
    }

    fn duplicate(&self) -> SelectedFrame {
        SelectedFrame {
            frame: Frame {
                image: self.frame.image.clone(),
                index: self.frame.index,
                timestamp: self.frame.timestamp,
            },
            face: self.face,
            landmarks: self.landmarks,
            quality: self.quality.clone(),
        }
    }
}

/// Why frames were refused, counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    /// Frames looked at.
    pub frames: u64,
    /// Frames that passed the quality gate.
    pub usable: u64,
    /// Frames without a face.
    pub no_face: u64,
    /// Frames holding a second face large enough to need a retake.
    pub multiple_faces: u64,
    /// Frames failing each quality check (a frame may fail several), in the order first seen.
    pub failed: Vec<(QualityCheck, u64)>,
    /// Usable frames that broke a run: the face moved too far since the previous frame, or
    /// the frame size changed.
    pub moving: u64,
    /// Frames the source could not decode (a corrupt file, a truncated camera buffer); the
    /// source moves past them and so does selection.
    pub undecodable: u64,
}

impl Tally {
    fn fail(&mut self, check: QualityCheck) {
        match self.failed.iter_mut().find(|(c, _)| *c == check) {
            Some((_, n)) => *n += 1,
            None => self.failed.push((check, 1)),
        }
    }
}

impl std::fmt::Display for Tally {
    /// The reasons, most frequent first: "no face in 30, too dark in 12, moving too much in 5".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut reasons: Vec<(&str, u64)> = vec![
            ("no face", self.no_face),
            ("several faces", self.multiple_faces),
        ];
        reasons.extend(self.failed.iter().map(|&(c, n)| (label(c), n)));
        reasons.push(("moving too much", self.moving));
        reasons.push(("undecodable", self.undecodable));
        reasons.retain(|r| r.1 > 0);
        reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
        if reasons.is_empty() {
            return f.write_str("no frame refused");
        }
        let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} in {n}")).collect();
        f.write_str(&parts.join(", "))
    }
}

fn label(check: QualityCheck) -> &'static str {
    match check {
        QualityCheck::FaceSize => "face too small",
        QualityCheck::Sharpness => "blurred",
        QualityCheck::Yaw => "head turned",
        QualityCheck::Roll => "head tilted",
        QualityCheck::TooDark => "too dark",
        QualityCheck::TooBright => "too bright",
        QualityCheck::Clipped => "glare or backlight",
        QualityCheck::DarkMedian => "face mostly dark",
        QualityCheck::LowContrast => "low contrast",
        QualityCheck::Backlit => "backlit",
    }
}

/// Where selection stands, after each frame (for a UI).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SelectProgress {
    /// Frames looked at.
    pub frames_seen: u64,
    /// Usable frames so far.
    pub usable: u64,
    /// Length of the current run of consecutive usable frames (capped at the run length).
    pub run: usize,
    /// Stream time since the first frame.
    pub elapsed: Duration,
}

/// What selection found.
#[derive(Debug)]
pub struct Selection {
    /// The best usable frames for matching, sharpest first (1 to `best`).
    pub best: Vec<SelectedFrame>,
    /// `run_length` consecutive usable frames of one presentation, in stream order, for
    /// liveness.
    pub run: Vec<SelectedFrame>,
    /// Why other frames were refused.
    pub tally: Tally,
}

impl Selection {
    /// The run's frames as image bytes, in order: `face_frames` of a verification request.
    pub fn encode_run(&self, encoding: FrameEncoding) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        self.run.iter().map(|f| f.encode(encoding)).collect()
    }

    /// The best frames as image bytes, best first: enrollment samples.
    pub fn encode_best(&self, encoding: FrameEncoding) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        self.best.iter().map(|f| f.encode(encoding)).collect()
    }
}

/// What was seen in one frame.
#[derive(Debug)]
enum Look {
    NoFace,
    Face {
        face: FaceBox,
        landmarks: [[f32; 2]; 5],
        report: QualityReport,
        /// The quality checks it fails.
        failures: Vec<QualityCheck>,
        /// Whether a second face calls for a retake.
        multiple_faces: bool,
    },
}

/// Where the last usable frame's face was: a run continues from it.
#[derive(Clone, Copy, Debug)]
struct Last {
    index: u64,
    size: (u32, u32),
    face: FaceBox,
}

/// The selection's state, fed one judged frame at a time (kept apart from the engine so the
/// rules can be tested without models).
#[derive(Debug)]
struct Tracker {
    want_best: usize,
    run_length: usize,
    min_iou: f32,
    tally: Tally,
    best: Vec<SelectedFrame>,
    run: Vec<SelectedFrame>,
    complete: Option<Vec<SelectedFrame>>,
    streak: usize,
    longest: usize,
    last: Option<Last>,
}

impl Tracker {
    fn new(want_best: usize, run_length: usize, min_iou: f32) -> Tracker {
        Tracker {
            want_best,
            run_length,
            min_iou,
            tally: Tally::default(),
            best: Vec::new(),
            run: Vec::new(),
            complete: None,
            streak: 0,
            longest: 0,
            last: None,
        }
    }

    fn observe(&mut self, frame: Frame, look: Look) {
        self.tally.frames += 1;
        let (face, landmarks, report) = match look {
            Look::Face {
                face,
                landmarks,
                report,
                failures,
                multiple_faces: false,
            } if failures.is_empty() => (face, landmarks, report),
            refused => {
                match refused {
                    Look::NoFace => self.tally.no_face += 1,
                    Look::Face {
                        failures,
                        multiple_faces,
                        ..
                    } => {
                        if multiple_faces {
                            self.tally.multiple_faces += 1;
                        }
                        failures.iter().for_each(|&check| self.tally.fail(check));
                    }
                }
                self.break_run();
                return;
            }
        };
        self.tally.usable += 1;
        let size = (frame.image.width(), frame.image.height());
        let continues = match self.last {
            Some(last) if last.index + 1 == frame.index => {
                let same = last.size == size && last.face.iou(&face) >= self.min_iou;
                if !same {
                    self.tally.moving += 1;
                }
                same
            }
            // After a gap (a refused or failed frame) the run was already broken.
            _ => false,
        };
        if !continues {
            self.break_run();
        }
        self.last = Some(Last {
            index: frame.index,
            size,
            face,
        });
        self.streak += 1;
        self.longest = self.longest.max(self.streak);
        let selected = SelectedFrame {
            frame,
            face,
            landmarks,
            quality: report,
        };
        if self.complete.is_none() {
            self.run.push(selected.duplicate());
            if self.run.len() == self.run_length {
                self.complete = Some(std::mem::take(&mut self.run));
            }
        }
        // Best first by sharpness; ties keep the earlier frame.
        let at = self
            .best
            .iter()
            .position(|b| b.quality.sharpness < selected.quality.sharpness)
            .unwrap_or(self.best.len());
        if at < self.want_best {
            self.best.insert(at, selected);
            self.best.truncate(self.want_best);
        }
    }

    fn break_run(&mut self) {
        self.run.clear();
        self.streak = 0;
        self.last = None;
    }

    fn ready(&self) -> bool {
        self.complete.is_some() && self.best.len() >= self.want_best
    }

    fn progress(&self, elapsed: Duration) -> SelectProgress {
        SelectProgress {
            frames_seen: self.tally.frames,
            usable: self.tally.usable,
            run: self.streak.min(self.run_length),
            elapsed,
        }
    }

    fn finish(self, elapsed: Duration) -> Result<Selection> {
        match self.complete {
            Some(run) => Ok(Selection {
                best: self.best,
                run,
                tally: self.tally,
            }),
            None => {
                let what = if self.tally.usable == 0 {
                    "no usable frame".to_string()
                } else {
                    format!("no {} consecutive usable frames", self.run_length)
                };
                let mut message = format!(
                    "{what} in {} frames ({:.1} s): {}",
                    self.tally.frames,
                    elapsed.as_secs_f32(),
                    self.tally
                );
                if self.tally.usable > 0 {
                    message.push_str(&format!(
                        "; {} usable, the longest run {}: hold still in front of the camera",
                        self.tally.usable, self.longest
                    ));
                }
                Err(Error::new(ErrorKind::NoUsableCapture, message))
            }
        }
    }
}

/// Reads frames from `source` until a run and the best frames are found (or, without
/// `stop_when_ready`, until the budget, the frame cap or the stream's end), calling
/// `progress` after each frame.
///
/// Errors: [`ErrorKind::NoUsableCapture`] with the tallied reasons when no run of
/// `run_length` usable frames was found; the source's errors as they come (a frame that does
/// not decode, [`ErrorKind::CaptureTimeout`], [`ErrorKind::Device`]); inference errors;
/// [`ErrorKind::Config`] for invalid settings.
pub fn select_frames(
    engine: &Engine,
    source: &mut dyn FrameSource,
    config: &SelectConfig,
    progress: &mut dyn FnMut(&SelectProgress),
) -> Result<Selection> {
    let liveness = &engine.config().liveness;
    if config.best == 0 || config.run_length == 0 || config.run_length > liveness.max_frames {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "frame selection keeps at least 1 best frame and runs of 1 to {} frames (liveness.max_frames); got best {} and run_length {}",
                liveness.max_frames, config.best, config.run_length
            ),
        ));
    }
    let mut tracker = Tracker::new(config.best, config.run_length, liveness.min_frame_iou);
    let mut first = None;
    let mut elapsed = Duration::ZERO;
    while tracker.tally.frames < config.max_frames as u64 {
        let frame = match source.next_frame(config.frame_timeout) {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            // One bad frame is a refused frame, not a failed capture; a device that fails or
            // stalls still ends it.
            Err(e) if e.kind() == ErrorKind::ImageDecode => {
                tracker.tally.frames += 1;
                tracker.tally.undecodable += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let start = *first.get_or_insert(frame.timestamp);
        let at = frame.timestamp.saturating_sub(start);
        if at > config.budget {
            break;
        }
        elapsed = at;
        let look = look(engine, &frame)?;
        tracker.observe(frame, look);
        progress(&tracker.progress(elapsed));
        if config.stop_when_ready && tracker.ready() {
            break;
        }
    }
    tracker.finish(elapsed)
}

/// The frame's face as the authenticator observes it, held to the same gate.
fn look(engine: &Engine, frame: &Frame) -> Result<Look> {
    let presentation = match engine.observe(std::slice::from_ref(&frame.image)) {
        Ok(presentation) => presentation,
        // No face, or a box the liveness check would refuse: no face to work with.
        Err(e) if matches!(e.kind(), ErrorKind::NoFace | ErrorKind::InvalidInput) => {
            return Ok(Look::NoFace);
        }
        Err(e) => return Err(e),
    };
    let config = engine.config();
    let face = &presentation.faces()[0];
    Ok(Look::Face {
        face: face.face_box,
        landmarks: face.detection.landmarks,
        report: face.quality.clone(),
        failures: decision::quality_failures(&face.quality, &config.quality)
            .iter()
            .map(|f| f.check)
            .collect(),
        multiple_faces: decision::multiple_faces(face, config.decisions.other_face_share),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::FaceImage;

    fn frame(index: u64, w: u32) -> Frame {
        Frame {
            image: FaceImage::from_rgb(w, 100, vec![0; w as usize * 300]).unwrap(),
            index,
            timestamp: Duration::from_millis(index * 33),
        }
    }

    fn face(x: f32, sharpness: f32, failures: &[QualityCheck]) -> Look {
        Look::Face {
            face: FaceBox {
                x,
                y: 10.0,
                width: 50.0,
                height: 50.0,
            },
            landmarks: [[0.0; 2]; 5],
            report: QualityReport {
                face_width: 50.0,
                sharpness,
                yaw_deg: None,
                roll_deg: None,
                brightness: 100.0,
                clipped: 0.0,
                median_brightness: 100.0,
                contrast: 40.0,
                surround_brightness: Some(100.0),
            },
            failures: failures.to_vec(),
            multiple_faces: false,
        }
    }

    #[test]
    fn a_run_needs_consecutive_usable_frames_of_one_presentation() {
        let mut t = Tracker::new(2, 3, 0.5);
        t.observe(frame(0, 200), face(10.0, 100.0, &[]));
        t.observe(frame(1, 200), face(12.0, 300.0, &[]));
        t.observe(frame(2, 200), Look::NoFace); // breaks the run
        t.observe(frame(3, 200), face(10.0, 200.0, &[]));
        t.observe(frame(4, 200), face(100.0, 50.0, &[])); // jumped: moving
        t.observe(frame(5, 200), face(102.0, 60.0, &[QualityCheck::TooDark]));
        t.observe(frame(6, 250), face(100.0, 60.0, &[])); // after a gap: a new run (not counted as moving)
        t.observe(frame(7, 250), face(101.0, 70.0, &[]));
        assert!(!t.ready());
        assert_eq!(t.progress(Duration::ZERO).run, 2);
        t.observe(frame(8, 250), face(99.0, 80.0, &[]));
        assert!(t.ready());
        let selection = t.finish(Duration::from_secs(1)).unwrap();
        let run: Vec<u64> = selection.run.iter().map(|f| f.frame.index).collect();
        assert_eq!(run, [6, 7, 8]);
        let best: Vec<u64> = selection.best.iter().map(|f| f.frame.index).collect();
        assert_eq!(best, [1, 3]);
        assert_eq!(
            (
                selection.tally.frames,
                selection.tally.usable,
                selection.tally.moving
            ),
            (9, 7, 1)
        );
        assert_eq!(selection.tally.failed, [(QualityCheck::TooDark, 1)]);
        assert_eq!(
            selection.tally.to_string(),
            "no face in 1, too dark in 1, moving too much in 1"
        );
    }

    #[test]
    fn a_frame_size_change_breaks_a_run() {
        let mut t = Tracker::new(1, 2, 0.5);
        t.observe(frame(0, 200), face(10.0, 100.0, &[]));
        t.observe(frame(1, 210), face(10.0, 100.0, &[]));
        assert!(!t.ready());
        assert_eq!(t.tally.moving, 1);
        t.observe(frame(2, 210), face(10.0, 100.0, &[]));
        assert!(t.ready());
    }

    #[test]
    fn nothing_usable_is_refused_with_the_reasons_tallied() {
        let mut t = Tracker::new(3, 5, 0.5);
        for i in 0..30 {
            t.observe(frame(i, 200), Look::NoFace);
        }
        for i in 30..42 {
            t.observe(
                frame(i, 200),
                face(
                    10.0,
                    10.0,
                    &[QualityCheck::TooDark, QualityCheck::Sharpness],
                ),
            );
        }
        let e = t.finish(Duration::from_millis(1_400)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoUsableCapture);
        assert_eq!(
            e.message(),
            "no usable frame in 42 frames (1.4 s): no face in 30, too dark in 12, blurred in 12"
        );
        let mut t = Tracker::new(1, 1, 0.5);
        let Look::Face {
            face: face_box,
            landmarks,
            report,
            ..
        } = face(10.0, 100.0, &[])
        else {
            unreachable!()
        };
        let crowded = Look::Face {
            face: face_box,
            landmarks,
            report,
            failures: Vec::new(),
            multiple_faces: true,
        };
        t.observe(frame(0, 200), crowded);
        assert_eq!(t.tally.multiple_faces, 1);
        assert_eq!(
            t.finish(Duration::ZERO).unwrap_err().message(),
            "no usable frame in 1 frames (0.0 s): several faces in 1"
        );
        let mut t = Tracker::new(1, 3, 0.5);
        for i in 0..6 {
            t.observe(
                frame(i, 200),
                face(if i % 2 == 0 { 0.0 } else { 120.0 }, 100.0, &[]),
            );
        }
        let e = t.finish(Duration::from_millis(200)).unwrap_err();
        assert!(
            e.message().starts_with(
                "no 3 consecutive usable frames in 6 frames (0.2 s): moving too much in 5; 6 usable, the longest run 1"
            ),
            "{e}"
        );
    }
}
