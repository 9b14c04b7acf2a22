//! `vouch face challenge …`: research and independent checks of the active liveness
//! challenge — judge a folder of frames against given head movements. It prints what the
//! engine saw and the rule's verdict; it records nothing and authorises no payment (a
//! terminal's challenge goes through the `Authenticator`).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Subcommand;
use serde::Serialize;
use vouch::decision::{ActiveVerdict, active_liveness};
use vouch::face::motion::{HeadMovement, Movement, PoseIndex, TrackedFrame};
use vouch::{Engine, ValidConfig};

use crate::read;

#[derive(Subcommand)]
pub(crate) enum ChallengeCommand {
    /// Judge a folder of frames (sorted by file name; `--fps` gives their times) against the
    /// given head movements. Directions are the customer's own: `left` is the customer turning
    /// to their left (in unmirrored frames, the nose moves to the image's right). Prints
    /// `passed`, `actions_seen` and `reasons` (with `--json`, one JSON object). Records
    /// nothing.
    Verify {
        /// The challenge's movements in order, comma-separated: left, right, up, down.
        #[arg(long, value_name = "LIST")]
        actions: String,
        /// Folder of frames (JPEG or PNG, one size), in capture order by file name.
        #[arg(long, value_name = "DIR")]
        frames: PathBuf,
        /// The frames' rate: frame i was captured at i / fps seconds.
        #[arg(long, default_value_t = 15.0)]
        fps: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also print every frame's pose index and parallax (in the JSON, `trajectory`).
        #[arg(long)]
        trajectory: bool,
    },
}

/// What `challenge verify --json` prints.
#[derive(Serialize)]
struct Report<'a> {
    passed: bool,
    actions: &'a [HeadMovement],
    actions_seen: &'a [HeadMovement],
    reasons: &'a [&'static str],
    frames: usize,
    duration_s: f64,
    lost_frames: usize,
    identity: Option<f32>,
    baseline: Option<PoseIndex>,
    movements: &'a [Movement],
    #[serde(skip_serializing_if = "Option::is_none")]
    trajectory: Option<&'a [TrackedFrame]>,
}

pub(crate) fn run(cmd: ChallengeCommand, config: ValidConfig) -> Result<()> {
    match cmd {
        ChallengeCommand::Verify {
            actions,
            frames,
            fps,
            json,
            trajectory,
        } => {
            let actions = HeadMovement::parse_list(&actions)?;
            if actions.is_empty() {
                bail!("--actions names no movement (left, right, up, down)");
            }
            if !(fps.is_finite() && fps > 0.0 && fps <= 240.0) {
                bail!("--fps must be in (0, 240], got {fps}");
            }
            let output = Output { json, trajectory };
            verify(&Engine::new(config)?, &actions, &frames, fps, output)
        }
    }
}

fn frame_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let files = vouch::listing::files_under(dir, &["jpg", "jpeg", "png"])?;
    if files.is_empty() {
        bail!("no JPEG or PNG frames in {}", dir.display());
    }
    Ok(files)
}

/// How `challenge verify` prints.
struct Output {
    json: bool,
    trajectory: bool,
}

fn verify(
    engine: &Engine,
    actions: &[HeadMovement],
    dir: &Path,
    fps: f64,
    output: Output,
) -> Result<()> {
    let files = frame_files(dir)?;
    let bytes = files.iter().map(|p| read(p)).collect::<Result<Vec<_>>>()?;
    let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let images = engine.decode_images(&refs, "frame")?;
    let times: Vec<f64> = (0..images.len()).map(|i| i as f64 / fps).collect();
    let evidence = engine.follow(&images, &times)?;
    let decisions = &engine.config().decisions;
    let ActiveVerdict {
        passed,
        actions_seen,
        reasons,
    } = active_liveness(
        &evidence,
        actions,
        decisions.other_face_share,
        &decisions.active_liveness,
    );
    if output.json {
        let report = Report {
            passed,
            actions,
            actions_seen: &actions_seen,
            reasons: &reasons,
            frames: evidence.frames,
            duration_s: evidence.duration,
            lost_frames: evidence.lost_frames,
            identity: evidence.identity,
            baseline: evidence.baseline,
            movements: &evidence.movements,
            trajectory: output.trajectory.then_some(evidence.trajectory.as_slice()),
        };
        out!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let names = |list: &[HeadMovement]| HeadMovement::joined(list, ",");
    out!(
        "{}: asked {}, seen {}{}",
        if passed { "passed" } else { "refused" },
        names(actions),
        if actions_seen.is_empty() {
            "nothing".to_string()
        } else {
            names(&actions_seen)
        },
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    );
    out!(
        "{} frames over {:.2} s, {} without a face; identity {}",
        evidence.frames,
        evidence.duration,
        evidence.lost_frames,
        evidence
            .identity
            .map_or("not measured".to_string(), |c| format!("{c:.2}"))
    );
    for m in &evidence.movements {
        out!(
            "  {:<5} {:.2}–{:.2} s  amplitude {:.2}  parallax {:.2}  ({} frames)",
            m.action.as_str(),
            m.start,
            m.end,
            m.amplitude,
            m.parallax,
            m.frames
        );
    }
    if output.trajectory {
        for (i, f) in evidence.trajectory.iter().enumerate() {
            match (f.pose, f.parallax) {
                (Some(p), parallax) => out!(
                    "  frame {:>3} {:>6.2} s  yaw {:+.3}  pitch {:+.3}  parallax {}",
                    i + 1,
                    f.time,
                    p.yaw,
                    p.pitch,
                    parallax.map_or("-".to_string(), |v| format!("{v:.3}"))
                ),
                (None, _) => out!("  frame {:>3} {:>6.2} s  no face", i + 1, f.time),
            }
        }
    }
    Ok(())
}
