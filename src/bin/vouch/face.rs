//! `vouch face …`: enrollment and verification through the `Authenticator` (quality gate,
//! liveness, policy, attempts, audit, receipt), and research tools that only measure
//! (`detect`, `quality`, `liveness`, `compare`, `challenge`) and record nothing.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use vouch::authenticator::{Authenticator, EnrollRequest, VerifyRequest};
use vouch::decision::{self, quality_failures};
use vouch::{Engine, ValidConfig};

use crate::transaction::TransactionArgs;
use crate::{file_name, read};

/// The terminal id the CLI's decisions are recorded under (audit log, receipts).
pub(crate) const TERMINAL: &str = "cli";

#[derive(Subcommand)]
pub(crate) enum FaceCommand {
    /// Active liveness challenges: judge a response's frames (research, records nothing).
    #[command(subcommand)]
    Challenge(crate::challenge::ChallengeCommand),
    /// Enroll a subject from face images: each through the quality gate and liveness, the
    /// accepted ones sealed into one template. Audited.
    Enroll {
        /// Subject id.
        subject: String,
        /// Face images (one template is made from the accepted ones).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a customer for a payment from face frames of one presentation, as a terminal
    /// does: policy tier, liveness, face match, attempt limits; the decision is audited and
    /// signed. (A tier that needs voice answers `step_up`: use `vouch kiosk verify`.)
    Verify {
        /// Subject id.
        subject: String,
        /// Frames of one presentation (JPEG or PNG, same size).
        #[arg(required = true)]
        frames: Vec<PathBuf>,
        #[command(flatten)]
        transaction: TransactionArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Detect faces: boxes, scores and 5 landmarks.
    Detect {
        /// Image (JPEG or PNG).
        image: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Research: the liveness scores of frames of one presentation (printed photo, screen),
    /// shown against `decisions.liveness_threshold`. Records nothing.
    Liveness {
        /// Frames of one presentation (JPEG or PNG, same size).
        #[arg(required = true)]
        frames: Vec<PathBuf>,
        /// The images are already face crops: judge the whole image instead of detecting.
        #[arg(long)]
        whole_image: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure the quality gate on the face of each image (size, sharpness, pose, exposure,
    /// contrast, backlight).
    Quality {
        /// Images (JPEG or PNG).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Research: the cosine of the largest faces of two images. A score, not a decision;
    /// records nothing.
    Compare {
        /// First image.
        a: PathBuf,
        /// Second image.
        b: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: FaceCommand, config: ValidConfig) -> Result<()> {
    match cmd {
        FaceCommand::Enroll {
            subject,
            images,
            json,
        } => enroll(&Authenticator::open(config)?, &subject, &images, json),
        FaceCommand::Verify {
            subject,
            frames,
            transaction,
            json,
        } => verify(
            &Authenticator::open(config)?,
            &subject,
            &frames,
            &transaction,
            json,
        ),
        FaceCommand::Challenge(cmd) => crate::challenge::run(cmd, config),
        FaceCommand::Detect { image, json } => detect(&Engine::new(config)?, &image, json),
        FaceCommand::Liveness {
            frames,
            whole_image,
            json,
        } => liveness(&Engine::new(config)?, &frames, whole_image, json),
        FaceCommand::Quality { images, json } => quality(&Engine::new(config)?, &images, json),
        FaceCommand::Compare { a, b, json } => {
            let result = Engine::new(config)?.compare_faces(&read(&a)?, &read(&b)?)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                out!(
                    "cosine {:.4}  ({} face(s) in the second image; {} ms) — a research score: decisions use the calibrated thresholds of the policy's operating point",
                    result.score,
                    result.probe_faces,
                    result.elapsed.as_millis()
                );
            }
            Ok(())
        }
    }
}

fn enroll(
    authenticator: &Authenticator,
    subject: &str,
    images: &[PathBuf],
    json: bool,
) -> Result<()> {
    let samples = images.iter().map(|p| read(p)).collect::<Result<Vec<_>>>()?;
    let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
    let report = authenticator.enroll(&EnrollRequest {
        subject,
        terminal: TERMINAL,
        face: &refs,
        ..EnrollRequest::default()
    })?;
    if json {
        out!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let accepted = report.samples.iter().filter(|s| s.accepted).count();
    match report.face_template {
        Some(id) => out!(
            "enrolled {subject}: template {id} from {accepted} of {} image(s), sealed under key {}",
            images.len(),
            authenticator.vault().current_key_id()
        ),
        None => out!("{subject}: nothing enrolled, no image was usable (retake)"),
    }
    for s in report.samples.iter().filter(|s| !s.accepted) {
        out!(
            "  {} not used: {}",
            file_name(&images[s.index]),
            s.reasons.join(", ")
        );
    }
    Ok(())
}

fn verify(
    authenticator: &Authenticator,
    subject: &str,
    frames: &[PathBuf],
    transaction: &TransactionArgs,
    json: bool,
) -> Result<()> {
    let context = transaction.context("cli")?;
    let bytes = frames.iter().map(|p| read(p)).collect::<Result<Vec<_>>>()?;
    let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let decision = authenticator.verify(&VerifyRequest {
        subject,
        terminal: TERMINAL,
        transaction: &context,
        face_frames: &refs,
        voice: None,
        active: None,
    })?;
    if json {
        out!("{}", serde_json::to_string_pretty(&decision)?);
        return Ok(());
    }
    out!("{subject}: {}", summary(&decision));
    if !decision.reasons.is_empty() {
        out!("  reasons: {}", decision.reasons.join(", "));
    }
    out!("  receipt: {}", decision.receipt);
    Ok(())
}

fn detect(engine: &Engine, image: &std::path::Path, json: bool) -> Result<()> {
    let bytes = read(image)?;
    let decoded = engine.decode_image(&bytes)?;
    let faces = engine.face().detect(&decoded)?;
    if json {
        let out = serde_json::json!({
            "image": image, "width": decoded.width(), "height": decoded.height(),
            "faces": faces,
        });
        out!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    out!(
        "{}: {}x{}, {} face(s)",
        image.display(),
        decoded.width(),
        decoded.height(),
        faces.len()
    );
    for (i, f) in faces.iter().enumerate() {
        let lm: Vec<String> = f
            .landmarks
            .iter()
            .map(|p| format!("({:.1},{:.1})", p[0], p[1]))
            .collect();
        out!(
            "  #{i} score {:.3}  box [{:.1}, {:.1}, {:.1}, {:.1}]  landmarks {}",
            f.score,
            f.bbox[0],
            f.bbox[1],
            f.bbox[2],
            f.bbox[3],
            lm.join(" ")
        );
    }
    Ok(())
}

fn liveness(engine: &Engine, frames: &[PathBuf], whole_image: bool, json: bool) -> Result<()> {
    let config = engine.config();
    let threshold = config.decisions.liveness_threshold;
    let images = frames
        .iter()
        .map(|f| Ok(engine.decode_image(&read(f)?)?))
        .collect::<Result<Vec<_>>>()?;
    let (evidence, faces) = if whole_image {
        let boxes: Vec<vouch::face::FaceBox> =
            images.iter().map(vouch::face::FaceBox::whole).collect();
        (
            engine.liveness().assess_boxes(&images, &boxes, threshold)?,
            None,
        )
    } else {
        let assessment = engine.assess_liveness_images(&images)?;
        (assessment.liveness, Some(assessment.faces))
    };
    let live = decision::is_live(evidence.score, threshold);
    if json {
        let out = serde_json::json!({
            "liveness": evidence,
            "faces": faces,
            "threshold": threshold,
            "live": live,
        });
        out!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let models: Vec<String> = evidence
        .per_model
        .iter()
        .map(|m| format!("{} {:.3}", m.model, m.live))
        .collect();
    out!(
        "{}: fused score {:.3} (decisions.liveness_threshold {:.2}); {}",
        if live { "LIVE" } else { "ATTACK" },
        evidence.score,
        threshold,
        models.join(", ")
    );
    for (i, (frame, path)) in evidence.per_frame.iter().zip(frames).enumerate() {
        let Some(face) = faces.as_ref().and_then(|f| f.get(i)) else {
            out!("  {}: score {:.3}", file_name(path), frame.score);
            continue;
        };
        let q = &face.quality;
        let failures = quality_failures(q, &config.quality);
        let gate = if failures.is_empty() {
            "quality ok".to_string()
        } else {
            failures
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let pose = match (q.yaw_deg, q.roll_deg) {
            (Some(y), Some(r)) => format!(", yaw {y:.0}°, roll {r:.0}°"),
            _ => String::new(),
        };
        out!(
            "  {}: score {:.3}  face {:.0}px, sharpness {:.0}, brightness {:.0}{pose} — {gate}",
            file_name(path),
            frame.score,
            q.face_width,
            q.sharpness,
            q.brightness
        );
    }
    Ok(())
}

fn quality(engine: &Engine, images: &[PathBuf], json: bool) -> Result<()> {
    let limits = &engine.config().quality;
    for path in images {
        let report = read(path).and_then(|bytes| Ok(engine.face_quality(&bytes)?));
        match (report, json) {
            (Ok(r), true) => {
                let failures = quality_failures(&r, limits);
                out!(
                    "{}",
                    serde_json::json!({"image": path, "quality": r, "failures": failures})
                )
            }
            (Ok(r), false) => {
                let failures = quality_failures(&r, limits);
                out!(
                    "{}: face {:.0}px, sharpness {:.0}, yaw {:.0}°, roll {:.0}°, brightness {:.0} (median {:.0}), clipped {:.3}, contrast {:.1}, surroundings {} — {}",
                    file_name(path),
                    r.face_width,
                    r.sharpness,
                    r.yaw_deg.unwrap_or(f32::NAN),
                    r.roll_deg.unwrap_or(f32::NAN),
                    r.brightness,
                    r.median_brightness,
                    r.clipped,
                    r.contrast,
                    r.surround_brightness
                        .map_or("none".to_string(), |s| format!("{s:.0}")),
                    if failures.is_empty() {
                        "ok".to_string()
                    } else {
                        failures
                            .iter()
                            .map(|f| f.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    }
                )
            }
            (Err(e), true) => out!(
                "{}",
                serde_json::json!({"image": path, "error": format!("{e:#}")})
            ),
            (Err(e), false) => out!("{}: {e:#}", file_name(path)),
        }
    }
    Ok(())
}

/// A decision in one line: `ACCEPT (confidence high; tier small; factors used: face, liveness)`.
pub(crate) fn summary(decision: &vouch::authenticator::Decision) -> String {
    format!(
        "{} (confidence {}; tier {}; factors used: {})",
        decision.outcome.as_str().to_uppercase(),
        decision.confidence.as_str(),
        decision.tier.as_deref().unwrap_or("-"),
        decision
            .used
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}
