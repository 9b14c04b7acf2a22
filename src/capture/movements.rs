//! Filming the answer to a movement challenge: the frames of a source over a timed script —
//! face the camera, then each movement of the challenge and back — each frame kept with its
//! capture time, for [`crate::authenticator::ActiveResponse`].
//!
//! The script runs on the frames' own timestamps, not on the wall clock, so a camera and a
//! recorded sequence played unpaced follow it alike. The kiosk shows the step's prompt
//! ([`HeadMovement::prompt`]) when [`MovementProgress::step`] changes; the engine, not the
//! script, decides what the customer did: a movement made late or early is still read from
//! the frames.

use std::time::Duration;

use zeroize::Zeroizing;

use crate::capture::{Frame, FrameEncoding, FrameSource, encode_image};
use crate::error::{Error, ErrorKind, Result};
use crate::face::motion::HeadMovement;

/// How a movement response is filmed.
#[derive(Clone, Debug, PartialEq)]
pub struct MovementCaptureConfig {
    /// Facing the camera before the first movement (the engine's frontal baseline). By
    /// default, 1 s.
    pub lead: Duration,
    /// Each movement and the way back to the camera. By default, 1.8 s: a prompted turn
    /// takes about a second, the return a little less.
    pub per_movement: Duration,
    /// The most frames kept (the engine takes 300 at most). By default, 300.
    pub max_frames: usize,
    /// How long to wait for one frame before giving up. By default, 2 s.
    pub frame_timeout: Duration,
}

impl Default for MovementCaptureConfig {
    fn default() -> Self {
        MovementCaptureConfig {
            lead: Duration::from_secs(1),
            per_movement: Duration::from_millis(1800),
            max_frames: 300,
            frame_timeout: Duration::from_secs(2),
        }
    }
}

/// Where the script is, after each frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MovementProgress {
    /// 0 while facing the camera, then `k` during the `k`-th movement (from 1).
    pub step: usize,
    /// The movements asked for.
    pub steps: usize,
    /// The movement to prompt (`None` at step 0: "Look at the camera").
    pub action: Option<HeadMovement>,
    /// Frames kept so far.
    pub frames: usize,
    /// Time since the first frame.
    pub elapsed: Duration,
}

/// The filmed response.
#[derive(Debug)]
pub struct MovementCapture {
    /// The frames, in capture order.
    pub frames: Vec<Frame>,
    /// Whether the source ended before the script did (a recorded sequence shorter than the
    /// script; the frames are still the response).
    pub ended_early: bool,
}

impl MovementCapture {
    /// Each frame's time in seconds since the first.
    pub fn times(&self) -> Vec<f64> {
        let first = self.frames.first().map_or(Duration::ZERO, |f| f.timestamp);
        self.frames
            .iter()
            .map(|f| f.timestamp.saturating_sub(first).as_secs_f64())
            .collect()
    }

    /// The frames as image bytes for the request (wiped on drop).
    pub fn encode(&self, encoding: FrameEncoding) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        self.frames
            .iter()
            .map(|f| encode_image(&f.image, encoding))
            .collect()
    }
}

/// The step of the script at `elapsed`, or `None` once it is over.
fn step_at(elapsed: Duration, steps: usize, config: &MovementCaptureConfig) -> Option<usize> {
    if elapsed < config.lead {
        return Some(0);
    }
    let into = elapsed - config.lead;
    let per = config.per_movement.as_secs_f64().max(1e-3);
    let k = (into.as_secs_f64() / per).floor() as usize + 1;
    (k <= steps).then_some(k)
}

/// Films the response to `actions` from `source` (see the module docs), calling
/// `on_progress` after every frame kept. Errors: [`ErrorKind::InvalidInput`] for an empty
/// challenge or a bad setting; [`ErrorKind::NoUsableCapture`] when the source gives fewer
/// than two frames; the source's own errors (a stalled camera is
/// [`ErrorKind::CaptureTimeout`]). Frames whose timestamps do not increase are dropped (a
/// device that repeats a frame), never reordered.
pub fn capture_movements(
    source: &mut dyn FrameSource,
    actions: &[HeadMovement],
    config: &MovementCaptureConfig,
    on_progress: &mut dyn FnMut(&MovementProgress),
) -> Result<MovementCapture> {
    if actions.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a movement challenge asks for at least one movement",
        ));
    }
    if config.max_frames < 2 || config.per_movement.is_zero() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "movement capture needs max_frames >= 2 and a per_movement time",
        ));
    }
    let mut frames: Vec<Frame> = Vec::new();
    let mut ended_early = false;
    while frames.len() < config.max_frames {
        let Some(frame) = source.next_frame(config.frame_timeout)? else {
            ended_early = true;
            break;
        };
        let first = frames.first().map_or(frame.timestamp, |f| f.timestamp);
        if frames
            .last()
            .is_some_and(|l| frame.timestamp <= l.timestamp)
        {
            continue;
        }
        let elapsed = frame.timestamp.saturating_sub(first);
        let Some(step) = step_at(elapsed, actions.len(), config) else {
            break;
        };
        frames.push(frame);
        on_progress(&MovementProgress {
            step,
            steps: actions.len(),
            action: step.checked_sub(1).map(|i| actions[i]),
            frames: frames.len(),
            elapsed,
        });
    }
    if frames.len() < 2 {
        return Err(Error::new(
            ErrorKind::NoUsableCapture,
            format!(
                "the camera gave {} frame(s) for the movements; film them again",
                frames.len()
            ),
        ));
    }
    Ok(MovementCapture {
        frames,
        ended_early,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::FrameSourceInfo;
    use crate::face::FaceImage;
    use HeadMovement::{Left, Up};

    /// Frames at the given times (milliseconds), then the end of the stream.
    struct Timed(std::vec::IntoIter<u64>, u64);

    impl FrameSource for Timed {
        fn info(&self) -> FrameSourceInfo {
            FrameSourceInfo {
                name: "timed".into(),
                width: 4,
                height: 4,
                fps: 10.0,
            }
        }
        fn next_frame(&mut self, _timeout: Duration) -> Result<Option<Frame>> {
            Ok(self.0.next().map(|ms| {
                self.1 += 1;
                Frame {
                    image: FaceImage::from_rgb(4, 4, vec![0; 48]).unwrap(),
                    index: self.1 - 1,
                    timestamp: Duration::from_millis(ms),
                }
            }))
        }
    }

    fn every(ms: u64, until: u64) -> Timed {
        Timed(
            (0..=until / ms)
                .map(|k| 500 + k * ms)
                .collect::<Vec<_>>()
                .into_iter(),
            0,
        )
    }

    #[test]
    fn the_script_prompts_each_movement_in_turn_and_stops_at_its_end() {
        let mut seen = Vec::new();
        let capture = capture_movements(
            &mut every(100, 10_000),
            &[Left, Up],
            &MovementCaptureConfig::default(),
            &mut |p| seen.push((p.step, p.action)),
        )
        .unwrap();
        // 1 s facing the camera, 1.8 s per movement: 4.6 s at 10 fps.
        assert_eq!(capture.frames.len(), 46);
        assert!(!capture.ended_early);
        assert_eq!(seen.first(), Some(&(0, None)));
        assert_eq!(seen[10], (1, Some(Left)));
        assert_eq!(seen.last(), Some(&(2, Some(Up))));
        let times = capture.times();
        assert_eq!(times[0], 0.0);
        assert!((times[45] - 4.5).abs() < 1e-9);
    }

    #[test]
    fn a_short_recording_is_kept_whole_and_repeated_frames_are_dropped() {
        let mut source = Timed(vec![0, 100, 100, 200, 150, 300].into_iter(), 0);
        let capture = capture_movements(
            &mut source,
            &[Left, Up],
            &MovementCaptureConfig::default(),
            &mut |_| {},
        )
        .unwrap();
        assert!(capture.ended_early);
        assert_eq!(capture.times(), [0.0, 0.1, 0.2, 0.3]);
    }

    #[test]
    fn too_few_frames_or_no_movements_are_clear_errors() {
        let config = MovementCaptureConfig::default();
        let err = capture_movements(&mut every(100, 0), &[Left], &config, &mut |_| {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoUsableCapture);
        let err = capture_movements(&mut every(100, 1000), &[], &config, &mut |_| {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
