//! `vouch demo`: the engine on real photos and voices, in memory.
//!
//! A demonstration of the evidence, not of payment decisions: it compares faces and voices
//! with research calls (`Engine::compare_with_template`, `VoiceService::examine`) and shows
//! each comparison against a fixed demonstration operating point through the decision
//! module's rules. Nothing is stored, audited or signed; payment decisions are the
//! `Authenticator`'s (`vouch face verify`, `vouch kiosk verify`, `vouchd`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vouch::decision;
use vouch::template::{Kek, Keyring};
use vouch::vault::TemplateVault;
use vouch::voice::Audio;
use vouch::voice::audio::join_recordings;
use vouch::voice::enrollment::{VoiceInput, VoiceService};
use vouch::voice::passphrase::ChallengeIssuer;
use vouch::{Engine, ValidConfig};

use crate::{file_name, read};

/// The demonstration's face operating point on MobileFaceNet cosines. Chosen on the
/// faces-deepface development pairs (the only labelled face pairs available to the project):
/// between their highest impostor score (0.39) and their equal-error threshold (0.47), so the
/// demo's figures on those same photos are optimistic. Decisions use the calibrated threshold
/// of the policy's operating point instead.
const FACE_THRESHOLD: f64 = 0.45;

/// The speaker operating point of the demo: the built-in policy's voice target FMR, at which
/// the built-in calibration (of the encoder and GMM-UBM fused, made on FSDD's calibration
/// takes 10–49, which the demo's phrases, takes 0–9, do not use) sets the threshold.
const VOICE_TARGET_FMR: f64 = 0.01;

fn default_data_dir() -> PathBuf {
    std::env::var_os("VOUCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}

/// Enrolls identities from real photos and compares genuine and impostor probes, then shows
/// the liveness scores of camera frames and the spoken passphrase.
pub(crate) fn run(config: ValidConfig, data: Option<PathBuf>, enroll: usize) -> Result<()> {
    let faces_dir = data.unwrap_or_else(default_data_dir).join("faces-deepface");
    let listing = faces_dir.join("identities_derived.csv");
    let mut identities = vouch::eval::identities::read_identity_list(&listing, &faces_dir)
        .with_context(|| {
            format!(
                "reading {} (point --data or VOUCH_DATA_DIR at the shared data folder)",
                listing.display()
            )
        })?;
    identities.retain(|_, files| files.len() > enroll.max(1));
    if identities.len() < 2 {
        bail!(
            "the demo needs at least two identities with more than {enroll} photos in {}",
            listing.display()
        );
    }

    let started = Instant::now();
    let engine = Engine::new(config)?;
    out!(
        "vouch demo — detector {}, embedder {}, threshold {:.2} (engine ready in {} ms)\n",
        engine.face().detector().spec().id(),
        engine.face().embedder().spec().id(),
        FACE_THRESHOLD,
        started.elapsed().as_millis()
    );

    let mut templates = Vec::new();
    for (id, files) in &identities {
        let samples: Vec<Vec<u8>> = files[..enroll]
            .iter()
            .map(|f| read(f))
            .collect::<Result<_>>()?;
        let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
        let t0 = Instant::now();
        let template = engine.face_template_from(id, &refs)?;
        let names: Vec<String> = files[..enroll].iter().map(|f| file_name(f)).collect();
        out!(
            "enrolled {id} from {} ({} ms)",
            names.join(", "),
            t0.elapsed().as_millis()
        );
        templates.push((template, files[enroll..].to_vec()));
    }

    out!(
        "\n{:<6} {:<10} {:<9} {:>7}  {:<9} {:>6}",
        "claim",
        "probe",
        "truth",
        "score",
        "decision",
        "ms"
    );
    let liveness_threshold = engine.config().decisions.liveness_threshold;
    let (mut genuine, mut genuine_ok, mut impostor, mut impostor_ok) = (0, 0, 0, 0);
    let mut times: Vec<Duration> = Vec::new();
    for (i, (template, probes)) in templates.iter().enumerate() {
        let other = &templates[(i + 1) % templates.len()].0;
        for probe in probes {
            let bytes = read(probe)?;
            // Press photos are not camera frames: the liveness column shows what the models
            // make of them, it does not gate the demo's comparisons.
            let liveness = match engine.assess_liveness(&[&bytes]) {
                Ok(r) => {
                    let live = decision::is_live(r.liveness.score, liveness_threshold);
                    format!(
                        "{} {:.2}",
                        if live { "live" } else { "attack?" },
                        r.liveness.score
                    )
                }
                Err(e) => e.kind().to_string(),
            };
            for (claim, is_genuine) in [(template, true), (other, false)] {
                let outcome = match engine.compare_with_template(claim, &bytes) {
                    Ok(o) => o,
                    Err(e) => {
                        out!(
                            "{:<6} {:<10} {:<9} {:>7}  {:<9}",
                            claim.subject(),
                            file_name(probe),
                            "-",
                            "-",
                            e.kind()
                        );
                        continue;
                    }
                };
                times.push(outcome.elapsed);
                let matched = decision::face_matches(f64::from(outcome.score), FACE_THRESHOLD);
                let right = matched == is_genuine;
                if is_genuine {
                    genuine += 1;
                    genuine_ok += usize::from(right);
                } else {
                    impostor += 1;
                    impostor_ok += usize::from(right);
                }
                out!(
                    "{:<6} {:<10} {:<9} {:>7.3}  {:<9} {:>6}  {:<16}{}",
                    claim.subject(),
                    file_name(probe),
                    if is_genuine { "genuine" } else { "impostor" },
                    outcome.score,
                    if matched { "ACCEPT" } else { "reject" },
                    outcome.elapsed.as_millis(),
                    liveness,
                    if right { "" } else { "  ✗" }
                );
            }
        }
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    out!(
        "\ngenuine accepted {genuine_ok}/{genuine}, impostors rejected {impostor_ok}/{impostor}; median verify time {} ms (decode + detect + align + embed)",
        median.as_millis()
    );
    out!(
        "(threshold chosen on these photos' labelled pairs; see `vouch eval face` for the measured error rates)"
    );
    let samples = faces_dir
        .parent()
        .map(|d| d.join("liveness-samples"))
        .filter(|d| d.is_dir());
    if let Some(dir) = samples {
        out!("\npresentation attacks (liveness-samples, camera frames):");
        for (name, what) in [
            ("image_T1.jpg", "live person"),
            ("image_T2.jpg", "live person"),
            ("image_F1.jpg", "printed photo"),
            ("image_F2.jpg", "replay on a tablet"),
        ] {
            let Ok(bytes) = std::fs::read(dir.join(name)) else {
                continue;
            };
            let t0 = Instant::now();
            match engine.assess_liveness(&[&bytes]) {
                Ok(r) => {
                    let gate = decision::presentation_retake(
                        &r.faces,
                        &engine.config().quality,
                        engine.config().decisions.other_face_share,
                    );
                    let live =
                        gate.is_empty() && decision::is_live(r.liveness.score, liveness_threshold);
                    out!(
                        "  {name:<13} {what:<19} → {:<6} score {:.3}  ({} ms)",
                        if live { "LIVE" } else { "ATTACK" },
                        r.liveness.score,
                        t0.elapsed().as_millis()
                    )
                }
                Err(e) => out!("  {name:<13} {what:<19} → error: {e}"),
            }
        }
    }
    let poses = faces_dir
        .parent()
        .map(|d| d.join("liveness-motion/cmu-poses/an2i"))
        .filter(|d| d.is_dir());
    if let Some(dir) = poses {
        movements(&engine, &dir)?;
    }
    let fsdd = faces_dir
        .parent()
        .map(|d| d.join("fsdd/recordings"))
        .filter(|d| d.is_dir());
    if let Some(dir) = fsdd {
        voice(&engine, &dir)?;
    }
    Ok(())
}

/// The demo's movement challenge: a challenge is issued and answered with frames assembled
/// from one person's CMU pose photos (straight, left, right, up: not a recording, and with no
/// photo looking down, so challenges are drawn until one has no `down`); the same frames are
/// then sent for a second challenge, as a recording replayed, and a printed photo is turned in
/// front of the camera to mimic the first.
fn movements(engine: &Engine, dir: &Path) -> Result<()> {
    use vouch::eval::synth::{
        PlanePose, background, frame_times, posed_frames, read_pgm, render_sheet,
        response_schedule, sheet_schedule,
    };
    use vouch::face::challenge::{Binding, MovementChallenge, MovementChallengeIssuer};
    use vouch::face::motion::HeadMovement;
    use vouch::stats::SplitMix64;

    let photo = |pose: &str| -> Result<vouch::face::FaceImage> {
        let path = dir.join(format!("an2i_{pose}_neutral_open.pgm"));
        Ok(read_pgm(&read(&path)?)?.resized(512, 480)?)
    };
    let (straight, left, right, up) = (
        photo("straight")?,
        photo("left")?,
        photo("right")?,
        photo("up")?,
    );
    let motion = &engine.config().face.motion;
    let issuer = MovementChallengeIssuer::new(
        motion.challenge_min_movements,
        motion.challenge_max_movements,
        Duration::from_secs(motion.challenge_ttl_seconds),
    )?;
    let binding = Binding {
        subject: "an2i".into(),
        terminal: "demo".into(),
        transaction_id: "demo-1".into(),
    };
    let without_down = |issuer: &MovementChallengeIssuer| -> Result<MovementChallenge> {
        loop {
            let c = issuer.issue(binding.clone())?;
            if !c.actions.contains(&HeadMovement::Down) {
                return Ok(c);
            }
        }
    };
    let names = |actions: &[HeadMovement]| HeadMovement::joined(actions, ", ");
    let decisions = &engine.config().decisions;
    let judge = |frames: &[vouch::face::FaceImage], times: &[f64], asked: &[HeadMovement]| {
        let t0 = Instant::now();
        let evidence = engine.follow(frames, times)?;
        let verdict = decision::active_liveness(
            &evidence,
            asked,
            decisions.other_face_share,
            &decisions.active_liveness,
        );
        let seen = names(&verdict.actions_seen);
        let line = if verdict.passed {
            format!("PASSED (seen: {seen})")
        } else {
            format!(
                "refused: {} (seen: {})",
                verdict.reasons.join(", "),
                if seen.is_empty() { "nothing" } else { &seen }
            )
        };
        anyhow::Ok(format!(
            "{line}; {} frames in {} ms",
            frames.len(),
            t0.elapsed().as_millis()
        ))
    };

    let mut rng = SplitMix64::new(7);
    let first = without_down(&issuer)?;
    out!("\nmovement challenge (frames assembled from an2i's CMU pose photos, not a recording):");
    out!(
        "  issued {} for {}: \"{}\"",
        &first.id[..8],
        first.binding.transaction_id,
        names(&first.actions)
    );
    let schedule = response_schedule(&first.actions, (6, 8), (6, 7), (5, 6), &mut rng);
    let poses = [&straight, &left, &right, &up];
    let frames = posed_frames(poses, &schedule, 1, (1.0, 0.0), &mut rng)?;
    let times = frame_times(frames.len(), 15.0, 0.1, &mut rng);
    issuer.redeem(&first.id, &binding)?;
    out!(
        "  the customer answers        → {}",
        judge(&frames, &times, &first.actions)?
    );
    let mut second = without_down(&issuer)?;
    while second.actions == first.actions {
        second = without_down(&issuer)?;
    }
    issuer.redeem(&second.id, &binding)?;
    out!(
        "  that recording, replayed for a new challenge \"{}\" → {}",
        names(&second.actions),
        judge(&frames, &times, &second.actions)?
    );
    let reused = issuer.redeem(&first.id, &binding);
    out!(
        "  the first challenge, reused → {}",
        match reused {
            Ok(_) => "accepted (wrong!)".to_string(),
            Err(e) => format!("refused: {}", e.kind()),
        }
    );
    let bg = background(640, 480, &mut rng)?;
    let sheet = sheet_schedule(
        &first.actions,
        PlanePose::default(),
        0.6,
        0.35,
        30.0,
        (6, 4, 4),
    );
    let print = sheet
        .iter()
        .map(|pose| render_sheet(&straight, pose, &bg, 1.2))
        .collect::<vouch::Result<Vec<_>>>()?;
    let times = frame_times(print.len(), 15.0, 0.1, &mut rng);
    out!(
        "  a print of the straight photo turned to mimic it → {}",
        judge(&print, &times, &first.actions)?
    );
    Ok(())
}

/// The demo's voice part: two FSDD speakers enroll their digits into a throwaway encrypted
/// vault; each is challenged, and answers in their own voice; then someone else answers the
/// challenge, an old recording of other digits is replayed, and a used challenge is reused.
fn voice(engine: &Engine, fsdd: &Path) -> Result<()> {
    let config = engine.config();
    let limits = config.voice.audio.clone();
    let take = |digit: u8, speaker: &str, take: u32| -> Result<Audio> {
        Ok(Audio::open(
            &fsdd.join(format!("{digit}_{speaker}_{take}.wav")),
            &limits,
        )?)
    };
    // A spoken phrase from the speaker's test takes (0–4), 0.3 s pauses between digits.
    let phrase = |speaker: &str, digits: &str| -> Result<Audio> {
        let takes = digits
            .bytes()
            .enumerate()
            .map(|(i, b)| take(b - b'0', speaker, i as u32 % 5))
            .collect::<Result<Vec<_>>>()?;
        Ok(join_recordings(&takes.iter().collect::<Vec<_>>(), 0.3)?)
    };
    let keys = Arc::new(Keyring::single("demo", Kek::generate()?)?);
    let vault = TemplateVault::new(Arc::new(vouch::store::MemoryStore::new()), keys);
    let calibrations = vouch::score::Calibrations::builtin();
    let service = VoiceService::new(
        engine.speaker_models()?,
        engine.speech_embedder()?,
        engine.digit_head()?,
        &vault,
    );
    let issuer = ChallengeIssuer::new(
        config.voice.passphrase_length,
        Duration::from_secs(config.voice.challenge_ttl_seconds),
    )?;
    out!(
        "\nspoken passphrase (FSDD; enrolled from two sequences \"0 1 2 … 9\" joined from takes 5 and 6, answers built from takes 0–4; the speaker score is the calibrated fusion of {}, held to its threshold at FMR {VOICE_TARGET_FMR}):",
        config
            .voice
            .speaker_models
            .iter()
            .map(|m| format!("{m:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(" + ")
    );
    let speakers = ["george", "theo"];
    for speaker in speakers {
        // What a customer says at enrollment: the ten digits in order, twice.
        let sequences = [5, 6]
            .into_iter()
            .map(|t| {
                let takes = (0..10u8)
                    .map(|d| take(d, speaker, t))
                    .collect::<Result<Vec<_>>>()?;
                Ok(join_recordings(&takes.iter().collect::<Vec<_>>(), 0.3)?)
            })
            .collect::<Result<Vec<_>>>()?;
        let t0 = Instant::now();
        service.enroll(
            speaker,
            &VoiceInput {
                sequences: &sequences,
                ..VoiceInput::default()
            },
        )?;
        out!(
            "  enrolled {speaker}: two sequences 0–9 ({} ms)",
            t0.elapsed().as_millis()
        );
    }
    for (i, subject) in speakers.iter().enumerate() {
        let other = speakers[(i + 1) % speakers.len()];
        let challenge = issuer.issue(subject)?;
        let mut replayed = issuer.issue(subject)?.digits;
        while replayed == challenge.digits {
            replayed = issuer.issue(subject)?.digits;
        }
        for (who, says, what) in [
            (*subject, challenge.digits.as_str(), "the customer"),
            (other, challenge.digits.as_str(), "someone else"),
            (*subject, replayed.as_str(), "old recording"),
        ] {
            let t0 = Instant::now();
            let line = match service.examine(subject, &challenge.digits, &phrase(who, says)?) {
                Ok(evidence) => {
                    let speaker = calibrations.calibrated(&evidence.scores(), VOICE_TARGET_FMR)?;
                    let verdict = decision::passphrase(
                        &evidence,
                        speaker.score,
                        speaker.threshold,
                        config.decisions.max_digit_errors,
                    );
                    format!(
                        "heard {} voice {:.2} (threshold {:.2}) → {}",
                        evidence.heard,
                        speaker.score,
                        speaker.threshold,
                        if verdict.accepted() {
                            "ACCEPT"
                        } else {
                            "reject"
                        }
                    )
                }
                Err(e) => format!("{} → reject", e.kind()),
            };
            out!(
                "  {subject:<7} asked {}  {what:<14} ({who:<6} says {says}): {line}  ({} ms)",
                challenge.digits,
                t0.elapsed().as_millis()
            );
        }
        issuer.redeem(&challenge.id, subject)?;
        if let Err(e) = issuer.redeem(&challenge.id, subject) {
            out!("  {subject:<7} the same challenge again: {}", e.kind());
        }
    }
    Ok(())
}
