//! A kiosk's verify flow through the library: frames → best presentation, a movement
//! challenge → the head movements filmed, a spoken challenge → digits, then one decision. Files stand in for the devices here; on a kiosk, swap in
//! `vouch::capture::camera::CameraSource` and `vouch::capture::microphone::MicrophoneSource`
//! (features `camera`, `microphone`) — they implement the same traits.
//!
//! ```sh
//! cargo run --release --example kiosk -- alice 120.00 FRAMES_DIR ../shared/data/fsdd/recordings theo [MOVES_DIR]
//! ```
//! (MOVES_DIR: the frames filmed while the customer moves, for amounts whose tier asks for
//! active liveness.)
//! (enroll `alice` first, e.g. with `vouch kiosk enroll`; keys and store come from the usual
//! config: `.vouch/`, `VOUCH_*`).

use std::path::Path;

use vouch::authenticator::{
    ActiveResponse, Authenticator, ChallengeOutcome, LivenessChallengeOutcome, TransactionContext,
    VerifyRequest, VoiceResponse,
};
use vouch::capture::{
    AudioCaptureConfig, FrameEncoding, ImageFolderSource, MovementCaptureConfig, RecordedDigits,
    SelectConfig, capture_movements, capture_utterance, select_frames,
};
use vouch::policy::Transaction;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (subject, amount, frames, takes, speaker, moves) = match args.as_slice() {
        [a, b, c, d, e] => (a, b, c, d, e, None),
        [a, b, c, d, e, f] => (a, b, c, d, e, Some(f)),
        _ => {
            return Err(
                "usage: kiosk SUBJECT AMOUNT FRAMES_DIR TAKES_DIR SPEAKER [MOVES_DIR]".into(),
            );
        }
    };
    let authenticator = Authenticator::open(vouch::Config::from_env()?.validate()?)?;
    let engine = authenticator.engine();

    let amount_minor = (amount.parse::<f64>()? * 100.0).round() as u64;
    let context = TransactionContext {
        id: "example-1".into(),
        nonce: format!("{:x}", std::process::id()),
        transaction: Transaction::new(amount_minor, "EUR", None)?,
    };
    // Ask first whether this amount needs the passphrase, so the customer hears it in time.
    let challenge = authenticator.challenge(subject, "kiosk-1", &context)?;
    let movement = authenticator.liveness_challenge(subject, "kiosk-1", &context)?;

    println!("Look at the camera.");
    let mut camera = ImageFolderSource::folder(Path::new(frames), 15.0, &engine.config().limits)?;
    let selection = select_frames(engine, &mut camera, &SelectConfig::default(), &mut |p| {
        eprint!("\r{} frames, {} usable", p.frames_seen, p.usable);
    })?;
    eprintln!();
    let frames = selection.encode_run(FrameEncoding::default())?;
    let frames: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();

    let moved = match &movement {
        LivenessChallengeOutcome::Issued(c) => {
            let dir = moves.ok_or("this amount needs the head movements: give MOVES_DIR")?;
            let mut camera =
                ImageFolderSource::folder(Path::new(dir), 15.0, &engine.config().limits)?;
            let config = MovementCaptureConfig::default();
            let filmed = capture_movements(&mut camera, &c.actions, &config, &mut |p| {
                if let Some(action) = p.action {
                    eprint!("\r{} ({}/{})   ", action.prompt(), p.step, p.steps);
                }
            })?;
            eprintln!();
            Some((
                c.id.as_str(),
                filmed.encode(FrameEncoding::default())?,
                filmed.times(),
            ))
        }
        LivenessChallengeOutcome::NotRequired { .. } => None,
    };
    let moved_frames: Vec<&[u8]> = moved
        .iter()
        .flat_map(|(_, frames, _)| frames.iter().map(|f| f.as_slice()))
        .collect();

    let spoken = match &challenge {
        ChallengeOutcome::Issued(c) => {
            println!("Say: {}", c.digits);
            let mut microphone =
                RecordedDigits::new(Path::new(takes), speaker)?.phrase(&c.digits, 0)?;
            let utterance = capture_utterance(&mut microphone, &AudioCaptureConfig::default())?;
            for warning in &utterance.warnings {
                println!("  ({warning})");
            }
            Some((c.id.as_str(), utterance.wav()))
        }
        ChallengeOutcome::NotRequired { .. } => None,
    };

    let decision = authenticator.verify(&VerifyRequest {
        subject,
        terminal: "kiosk-1",
        transaction: &context,
        face_frames: &frames,
        voice: spoken.as_ref().map(|(id, wav)| VoiceResponse {
            challenge_id: id,
            audio: wav.as_slice(),
        }),
        active: moved.as_ref().map(|(id, _, times)| ActiveResponse {
            challenge_id: id,
            frames: &moved_frames,
            times,
        }),
    })?;
    println!(
        "{} ({:?}); reasons: {:?}",
        decision.outcome.as_str(),
        decision.confidence,
        decision.reasons
    );
    println!("receipt for the payment backend: {}", decision.receipt);
    Ok(())
}
