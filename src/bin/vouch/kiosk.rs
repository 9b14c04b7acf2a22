//! `vouch kiosk`: the interactive enroll and verify flows of a kiosk, on a terminal — prompts,
//! progress while capturing, the decision at the end — over `vouch::capture` and
//! `vouch::Authenticator`. Frames come from a camera (`camera` feature) or an image folder /
//! numbered sequence; speech from a microphone (`microphone` feature) or a speaker's recorded
//! digit takes.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vouch::authenticator::{
    ActiveResponse, Authenticator, ChallengeOutcome, EnrollRequest, LivenessChallengeOutcome,
    VerifyRequest, VoiceResponse,
};
use vouch::capture::{
    AudioCaptureConfig, AudioSource, FrameEncoding, FrameSource, ImageFolderSource,
    MovementCapture, MovementCaptureConfig, RecordedDigits, SelectConfig, Selection, Utterance,
    capture_movements, capture_utterance, select_frames,
};
use vouch::face::motion::HeadMovement;
use vouch::{ErrorKind, ValidConfig};
use zeroize::Zeroizing;

use crate::transaction::TransactionArgs;

/// The terminal id the kiosk reports to the audit log and receipts.
const TERMINAL: &str = "kiosk";

#[derive(Subcommand)]
pub(crate) enum KioskCommand {
    /// Enroll a customer: face frames from the camera, and with a voice source every digit
    /// 0–9 spoken (three takes each) for the passphrase.
    Enroll(KioskEnrollArgs),
    /// Verify a customer for a payment: face (and liveness), the head-movement challenge and a
    /// spoken passphrase when the amount's policy tier asks for them.
    Verify(KioskVerifyArgs),
    /// List the cameras and microphones this build can use.
    Devices,
}

/// Where frames and speech come from.
#[derive(Args)]
pub(crate) struct Sources {
    /// Frames from a folder of images or a numbered sequence (e.g. `shots/frame_%04d.jpg`)
    /// instead of a camera.
    #[arg(long, value_name = "DIR|PATTERN")]
    frames: Option<PathBuf>,
    /// Frame rate of --frames and --movement-frames.
    #[arg(long, default_value_t = 15.0)]
    fps: f32,
    /// The frames filmed while the customer makes the challenge's head movements (a folder
    /// or numbered sequence, played against the prompts' script) instead of the camera; for
    /// amounts whose tier asks for active liveness.
    #[arg(long, value_name = "DIR|PATTERN", conflicts_with = "camera")]
    movement_frames: Option<PathBuf>,
    /// Seconds the script gives each head movement and the way back.
    #[arg(long, default_value_t = 1.8)]
    movement_seconds: f64,
    /// Camera index (`vouch kiosk devices`) [default: the first camera]; needs a build with
    /// `--features camera`.
    #[arg(long, conflicts_with = "frames")]
    camera: Option<u32>,
    /// Microphone id or name [default: the system input]; needs a build with
    /// `--features microphone`.
    #[arg(long, conflicts_with = "takes")]
    microphone: Option<String>,
    /// Play files as fast as they decode instead of at their real-time pace.
    #[arg(long)]
    unpaced: bool,
    /// Speech from recorded digit takes (`DIGIT_SPEAKER_TAKE.wav`, e.g.
    /// ../shared/data/fsdd/recordings) instead of a microphone; needs --speaker.
    #[arg(long, value_name = "DIR", requires = "speaker")]
    takes: Option<PathBuf>,
    /// The recorded speaker of --takes.
    #[arg(long)]
    speaker: Option<String>,
    /// First take used for each digit (FSDD: 5–9 enroll, 0–4 are the test split).
    #[arg(long)]
    take: Option<u32>,
    /// Seconds to find a usable face before giving up.
    #[arg(long, default_value_t = 5.0)]
    budget: f64,
}

#[derive(Args)]
pub(crate) struct KioskEnrollArgs {
    /// The customer's id.
    subject: String,
    #[command(flatten)]
    sources: Sources,
}

#[derive(Args)]
pub(crate) struct KioskVerifyArgs {
    /// The id the customer claims.
    subject: String,
    #[command(flatten)]
    transaction: TransactionArgs,
    #[command(flatten)]
    sources: Sources,
}

pub(crate) fn run(cmd: KioskCommand, config: ValidConfig) -> Result<()> {
    match cmd {
        KioskCommand::Enroll(args) => enroll(&Authenticator::open(config)?, &args),
        KioskCommand::Verify(args) => verify(&Authenticator::open(config)?, &args),
        KioskCommand::Devices => devices(),
    }
}

fn devices() -> Result<()> {
    #[cfg(feature = "camera")]
    {
        let cameras = vouch::capture::camera::list_cameras()?;
        say(&format!("{} camera(s)", cameras.len()))?;
        for c in cameras {
            say(&format!("  {}  {}  {}", c.index, c.name, c.description))?;
        }
    }
    #[cfg(not(feature = "camera"))]
    say("cameras: not in this build (rebuild with --features camera)")?;
    #[cfg(feature = "microphone")]
    {
        let mics = vouch::capture::microphone::list_microphones()?;
        say(&format!("{} microphone(s)", mics.len()))?;
        for m in mics {
            let default = if m.is_default { " (default)" } else { "" };
            say(&format!("  {}  {}{default}", m.id, m.name))?;
        }
    }
    #[cfg(not(feature = "microphone"))]
    say("microphones: not in this build (rebuild with --features microphone)")?;
    Ok(())
}

fn say(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

fn frame_source(sources: &Sources, config: &ValidConfig) -> Result<Box<dyn FrameSource>> {
    folder_or_camera(sources.frames.as_ref(), sources, config)
}

fn folder_or_camera(
    frames: Option<&PathBuf>,
    sources: &Sources,
    config: &ValidConfig,
) -> Result<Box<dyn FrameSource>> {
    match frames {
        Some(path) => {
            let source = if path.is_dir() {
                ImageFolderSource::folder(path, sources.fps, &config.limits)?
            } else {
                ImageFolderSource::sequence(path, sources.fps, &config.limits)?
            };
            Ok(Box::new(source.paced(!sources.unpaced)))
        }
        None => camera(sources.camera),
    }
}

#[cfg(feature = "camera")]
fn camera(index: Option<u32>) -> Result<Box<dyn FrameSource>> {
    use vouch::capture::camera::{CameraConfig, CameraSelector, CameraSource};
    let selector = index.map_or(CameraSelector::First, CameraSelector::Index);
    Ok(Box::new(CameraSource::open(
        &CameraConfig::new().device(selector),
    )?))
}

#[cfg(not(feature = "camera"))]
fn camera(_index: Option<u32>) -> Result<Box<dyn FrameSource>> {
    anyhow::bail!(
        "no camera support in this build (rebuild with --features camera), and no --frames given"
    )
}

#[cfg(feature = "microphone")]
fn microphone(name: Option<&str>) -> Result<Box<dyn AudioSource>> {
    use vouch::capture::microphone::{MicrophoneConfig, MicrophoneSource};
    let mut config = MicrophoneConfig::new();
    if let Some(name) = name {
        config = config.device(name);
    }
    Ok(Box::new(MicrophoneSource::open(&config)?))
}

#[cfg(not(feature = "microphone"))]
fn microphone(_name: Option<&str>) -> Result<Box<dyn AudioSource>> {
    anyhow::bail!(
        "no microphone support in this build (rebuild with --features microphone), and no --takes given"
    )
}

/// The sound of `digits` being spoken: the recorded takes when given (digit `i` from take
/// `first_take + i`), else the microphone.
fn speech_source(sources: &Sources, digits: &str, first_take: u32) -> Result<Box<dyn AudioSource>> {
    match recorded(sources)? {
        Some(takes) => Ok(Box::new(
            takes.phrase(digits, first_take)?.paced(!sources.unpaced),
        )),
        None => microphone(sources.microphone.as_deref()),
    }
}

/// Looks for a usable face, with a live status line.
fn capture_face(
    authenticator: &Authenticator,
    sources: &Sources,
    run_length: usize,
) -> Result<Selection> {
    let config = authenticator.engine().config();
    let mut source = frame_source(sources, config)?;
    say("Look at the camera.")?;
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let select = SelectConfig {
        budget: Duration::from_secs_f64(sources.budget.max(0.1)),
        run_length,
        ..SelectConfig::default()
    };
    let selection = select_frames(authenticator.engine(), source.as_mut(), &select, &mut |p| {
        spinner.set_message(format!(
            "looking for your face: {} frame(s), {} usable, steady for {}/{}",
            p.frames_seen, p.usable, p.run, run_length
        ));
        spinner.tick();
    });
    spinner.finish_and_clear();
    let selection = selection.context("no usable face")?;
    say(&format!(
        "Face captured ({} frame(s) looked at, {} usable).",
        selection.tally.frames, selection.tally.usable
    ))?;
    Ok(selection)
}

/// Frames from files need their own folder for the movements: refused before the customer
/// is asked to do anything.
fn check_movement_source(sources: &Sources) -> Result<()> {
    if sources.frames.is_some() && sources.movement_frames.is_none() {
        anyhow::bail!(
            "this amount needs the head-movement challenge: give --movement-frames (the frames filmed while the customer moves)"
        );
    }
    Ok(())
}

/// Films the customer's answer to a movement challenge, prompting each movement in turn
/// with a progress bar over the script.
fn capture_movement_response(
    authenticator: &Authenticator,
    sources: &Sources,
    actions: &[HeadMovement],
) -> Result<MovementCapture> {
    let config = authenticator.engine().config();
    let mut source = folder_or_camera(sources.movement_frames.as_ref(), sources, config)?;
    let script = MovementCaptureConfig {
        per_movement: Duration::from_secs_f64(sources.movement_seconds.clamp(0.5, 5.0)),
        ..MovementCaptureConfig::default()
    };
    let named: Vec<&str> = actions.iter().map(|a| a.prompt()).collect();
    say(&format!(
        "Now move your head when asked: {}.",
        named.join(", then ").to_lowercase()
    ))?;
    let total = script.lead + script.per_movement * actions.len() as u32;
    let bar = ProgressBar::new(total.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut shown = usize::MAX;
    let capture = capture_movements(source.as_mut(), actions, &script, &mut |p| {
        if p.step != shown {
            shown = p.step;
            let prompt = p.action.map_or("Look at the camera", |a| a.prompt());
            // Printed above the bar, and on a pipe too (where the bar itself is hidden).
            let line = format!("  {}/{}: {prompt}.", p.step, p.steps);
            bar.suspend(|| say(&line).ok());
        }
        bar.set_position(p.elapsed.as_millis() as u64);
        bar.set_message(format!("{} frame(s)", p.frames));
    });
    bar.finish_and_clear();
    let capture = capture.context("filming the head movements")?;
    say(&format!(
        "Movements filmed ({} frame(s) over {:.1} s).",
        capture.frames.len(),
        capture.times().last().copied().unwrap_or(0.0)
    ))?;
    Ok(capture)
}

/// Listens for one utterance after showing `prompt`.
fn capture_speech(prompt: &str, source: Box<dyn AudioSource>) -> Result<Utterance> {
    say(prompt)?;
    let spinner = ProgressBar::new_spinner();
    spinner.set_message("listening…");
    spinner.enable_steady_tick(Duration::from_millis(120));
    let mut source = source;
    let utterance = capture_utterance(source.as_mut(), &AudioCaptureConfig::default());
    spinner.finish_and_clear();
    let utterance = utterance.context("nothing usable was heard")?;
    for w in &utterance.warnings {
        say(&format!("  note: {w}"))?;
    }
    Ok(utterance)
}

fn recorded(sources: &Sources) -> Result<Option<RecordedDigits>> {
    match (&sources.takes, &sources.speaker) {
        (Some(dir), Some(speaker)) => Ok(Some(RecordedDigits::new(dir, speaker)?)),
        _ => Ok(None),
    }
}

fn spaced(digits: &str) -> String {
    digits
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ")
}

fn enroll(authenticator: &Authenticator, args: &KioskEnrollArgs) -> Result<()> {
    // A wrong speech source is refused before the customer is asked to do anything.
    recorded(&args.sources)?;
    say(&format!("Enrolling {}.", args.subject))?;
    let selection = capture_face(authenticator, &args.sources, 1)?;
    let face = selection.encode_best(FrameEncoding::default())?;
    let with_voice = args.sources.takes.is_some() || args.sources.microphone.is_some();
    let face_refs: Vec<&[u8]> = face.iter().map(|f| f.as_slice()).collect();
    // The voice: the ten digits said in order, twice. A sequence the engine cannot cut into
    // ten digits is said again (nothing is stored until both are heard).
    let first = args.sources.take.unwrap_or(5);
    let mut attempt = 0;
    let report = loop {
        let mut sequences: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        if with_voice {
            for round in 0..2u32 {
                let source =
                    speech_source(&args.sources, "0123456789", first + 10 * (attempt + round))?;
                let utterance = capture_speech(
                    &format!(
                        "Say the digits 0 1 2 3 4 5 6 7 8 9, with a short pause after each ({} of 2)",
                        round + 1
                    ),
                    source,
                )?;
                sequences.push(utterance.wav());
            }
        }
        let sequence_refs: Vec<&[u8]> = sequences.iter().map(|w| w.as_slice()).collect();
        match authenticator.enroll(&EnrollRequest {
            subject: &args.subject,
            terminal: TERMINAL,
            face: &face_refs,
            digit_sequences: &sequence_refs,
            ..EnrollRequest::default()
        }) {
            Err(e) if e.kind() == ErrorKind::PassphraseTokens && attempt < 2 => {
                say(&format!("  {}. Once more, please.", e.message()))?;
                attempt += 1;
            }
            other => break other?,
        }
    };
    let accepted = report.samples.iter().filter(|s| s.accepted).count();
    say(&format!(
        "Enrollment {}: {} of {} face sample(s) used{}.",
        report.outcome.as_str().to_uppercase(),
        accepted,
        report.samples.len(),
        if report.voice.is_some() {
            ", voice and passphrase digits enrolled"
        } else {
            ""
        }
    ))?;
    for s in report.samples.iter().filter(|s| !s.accepted) {
        say(&format!(
            "  sample {} not used: {}",
            s.index + 1,
            s.reasons.join(", ")
        ))?;
    }
    Ok(())
}

fn verify(authenticator: &Authenticator, args: &KioskVerifyArgs) -> Result<()> {
    let context = args.transaction.context("kiosk")?;
    recorded(&args.sources)?;
    say(&format!(
        "Paying {:.2} {} as {}.",
        args.transaction.amount, args.transaction.currency, args.subject
    ))?;
    let challenge = authenticator.challenge(&args.subject, TERMINAL, &context)?;
    let liveness = authenticator.liveness_challenge(&args.subject, TERMINAL, &context)?;
    if let LivenessChallengeOutcome::Issued(_) = &liveness {
        check_movement_source(&args.sources)?;
    }
    let selection = capture_face(
        authenticator,
        &args.sources,
        SelectConfig::default().run_length,
    )?;
    let frames = selection.encode_run(FrameEncoding::default())?;
    let frame_refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    let movements = match liveness {
        LivenessChallengeOutcome::Issued(c) => {
            let capture = capture_movement_response(authenticator, &args.sources, &c.actions)?;
            let encoded = capture.encode(FrameEncoding::default())?;
            Some((c.id, encoded, capture.times()))
        }
        LivenessChallengeOutcome::NotRequired { .. } => None,
    };
    let movement_refs: Vec<&[u8]> = movements
        .as_ref()
        .map(|(_, frames, _)| frames.iter().map(|f| f.as_slice()).collect())
        .unwrap_or_default();
    let spoken = match &challenge {
        ChallengeOutcome::Issued(c) => {
            let source = speech_source(&args.sources, &c.digits, args.sources.take.unwrap_or(0))
                .context("this amount needs a spoken passphrase")?;
            let utterance = capture_speech(&format!("Say: {}", spaced(&c.digits)), source)?;
            Some((c.id.clone(), utterance.wav()))
        }
        ChallengeOutcome::NotRequired { .. } => None,
    };
    say("Checking…")?;
    let decision = authenticator.verify(&VerifyRequest {
        subject: &args.subject,
        terminal: TERMINAL,
        transaction: &context,
        face_frames: &frame_refs,
        voice: spoken.as_ref().map(|(id, wav)| VoiceResponse {
            challenge_id: id,
            audio: wav.as_slice(),
        }),
        active: movements.as_ref().map(|(id, _, times)| ActiveResponse {
            challenge_id: id,
            frames: &movement_refs,
            times,
        }),
    })?;
    say(&format!("Decision: {}", crate::face::summary(&decision)))?;
    if !decision.reasons.is_empty() {
        say(&format!("  reasons: {}", decision.reasons.join(", ")))?;
    }
    say(&format!("  receipt: {}", decision.receipt))?;
    Ok(())
}
