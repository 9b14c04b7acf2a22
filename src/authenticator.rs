//! The authenticator: enrollments and decisions over stored templates, under the risk
//! policy, with attempt limits, signed receipts and the audit log.
//!
//! [`Engine`] turns bytes into faces, embeddings, liveness verdicts and voiceprints; the
//! authenticator decides with them. It is what `vouchd` serves and what a kiosk app links:
//!
//! - [`Authenticator::enroll`]: the quality gate and liveness on each face sample, the
//!   accepted ones averaged into an encrypted template; optionally a voiceprint and the
//!   enrolled digits. The report says which samples must be retaken and why.
//! - [`Authenticator::verify`] (1:1): the policy picks the factors and the operating point for
//!   the transaction; thresholds come from the calibration of each model at the policy's
//!   target FMR ([`crate::score`]); every required factor must pass at its own threshold.
//! - [`Authenticator::identify`] (1:N, open-set): may answer "nobody".
//! - [`Authenticator::challenge`]: a spoken passphrase when the policy needs voice.
//!
//! Decisions are [`Outcome::Accept`], `Reject`, `StepUp` (another factor is needed: the
//! terminal asks for a passphrase and verifies again), `Retake` (the sample could not be
//! judged: no face, poor quality, unusable audio) or `Locked` (too many failures), with
//! reason codes and a coarse [`Confidence`]. Raw scores are returned only when
//! `decisions.research_scores` is on.
//!
//! Every decision is written to the audit log before it is returned and carries a receipt
//! signed with the daemon's Ed25519 key, binding subject, terminal, transaction, decision,
//! factors, model ids and the audit head.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::attempts::{AttemptLimiter, Lock};
use crate::audit::{AuditEvent, AuditKind, AuditLog};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::face::{Embedding, FaceImage, LivenessResult};
use crate::policy::{Factor, Policy, Requirement, Transaction};
use crate::receipt::{Receipt, ReceiptSigner};
use crate::score::{Calibrations, Confidence, fuse};
use crate::store::SubjectSummary;
use crate::template::Modality;
use crate::vault::TemplateVault;
use crate::voice::audio::Audio;
use crate::voice::enrollment::{VoiceEnrollment, VoiceService};
use crate::voice::passphrase::{Challenge, ChallengeIssuer};

/// What a decision is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The customer is verified for this transaction.
    Accept,
    /// Verification failed.
    Reject,
    /// A further factor is needed (the policy asks for voice): get a challenge and verify
    /// again with the spoken response.
    StepUp,
    /// The sample could not be judged (no face, poor quality, unusable audio): capture again.
    Retake,
    /// Too many failures: the subject or the terminal is locked for a while.
    Locked,
}

impl Outcome {
    /// The outcome's name (`accept`, `step_up`, …), as receipts and the audit log write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accept => "accept",
            Outcome::Reject => "reject",
            Outcome::StepUp => "step_up",
            Outcome::Retake => "retake",
            Outcome::Locked => "locked",
        }
    }
}

/// The transaction a verification is for, as the terminal names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransactionContext {
    /// The payment's id at the terminal.
    pub id: String,
    /// The terminal's nonce for this attempt (bound into the receipt).
    pub nonce: String,
    /// Amount, currency and merchant category.
    pub transaction: Transaction,
}

/// A spoken response to a passphrase challenge.
#[derive(Clone, Copy, Debug)]
pub struct VoiceResponse<'a> {
    /// The challenge's id.
    pub challenge_id: &'a str,
    /// The recording (WAV or FLAC bytes).
    pub audio: &'a [u8],
}

/// A 1:1 verification request.
#[derive(Clone, Copy, Debug)]
pub struct VerifyRequest<'a> {
    /// Who the customer claims to be.
    pub subject: &'a str,
    /// The asking terminal.
    pub terminal: &'a str,
    /// What is being paid.
    pub transaction: &'a TransactionContext,
    /// Face frames of one presentation (image bytes, one camera).
    pub face_frames: &'a [&'a [u8]],
    /// The spoken passphrase, when the terminal has one.
    pub voice: Option<VoiceResponse<'a>>,
}

/// Raw scores, only with `decisions.research_scores`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ResearchScores {
    /// Best face cosine over the subject's templates.
    pub face: Option<f64>,
    /// The face threshold used.
    pub face_threshold: Option<f64>,
    /// Fused liveness score.
    pub liveness: Option<f64>,
    /// Speaker score of the passphrase response.
    pub voice: Option<f64>,
    /// The speaker threshold used.
    pub voice_threshold: Option<f64>,
    /// Sum of the calibrated LLRs of the factors scored.
    pub fused_llr: Option<f64>,
}

/// A decision, as a terminal receives it.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    /// What was decided.
    pub outcome: Outcome,
    /// Why, as reason codes (`face_mismatch`, `liveness_failed`, `voice_required`,
    /// `quality_sharpness`, `subject_locked`, `policy_refused`…).
    pub reasons: Vec<String>,
    /// Coarse confidence of the fused evidence (never a raw score).
    pub confidence: Confidence,
    /// The policy tier that applied.
    pub tier: Option<String>,
    /// Factors the policy required.
    pub required: Vec<Factor>,
    /// Factors that were evaluated.
    pub used: Vec<Factor>,
    /// For `locked`: when to try again.
    pub retry_after: Option<Duration>,
    /// The signed receipt (`vouch-receipt.v1.…`).
    pub receipt: String,
    /// Raw scores (research mode only).
    pub scores: Option<ResearchScores>,
}

/// A 1:N identification request.
#[derive(Clone, Copy, Debug)]
pub struct IdentifyRequest<'a> {
    /// The asking terminal.
    pub terminal: &'a str,
    /// Face frames of one presentation.
    pub face_frames: &'a [&'a [u8]],
    /// Candidates to list (research mode only). 0 lists none.
    pub top_k: usize,
}

/// A candidate of an identification (research mode only).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    /// The subject.
    pub subject: String,
    /// Best face cosine over their templates.
    pub score: f64,
}

/// The answer of an identification.
#[derive(Clone, Debug, Serialize)]
pub struct Identification {
    /// `accept` (somebody), `reject` (nobody), `retake`, or `locked` (the terminal).
    pub outcome: Outcome,
    /// The subject found, if any.
    pub subject: Option<String>,
    /// Reason codes.
    pub reasons: Vec<String>,
    /// Coarse confidence in the subject found.
    pub confidence: Confidence,
    /// Subjects with a face template searched.
    pub gallery: usize,
    /// The top candidates (research mode only; empty otherwise).
    pub candidates: Vec<Candidate>,
}

/// An enrollment request.
#[derive(Clone, Copy, Debug, Default)]
pub struct EnrollRequest<'a> {
    /// The subject to enroll (1–256 bytes, printable).
    pub subject: &'a str,
    /// The asking terminal or operator tool.
    pub terminal: &'a str,
    /// Face images, one sample each (three or more make a steadier template).
    pub face: &'a [&'a [u8]],
    /// Free speech for the voiceprint (optional).
    pub speech: &'a [&'a [u8]],
    /// Each digit 0–9 spoken alone, at least once each, for the passphrase (optional; with
    /// voice, required).
    pub digits: &'a [(u8, &'a [u8])],
}

/// How one enrollment face sample fared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleVerdict {
    /// Its position in the request, from 0.
    pub index: usize,
    /// Used in the template.
    pub accepted: bool,
    /// Why not (reason codes), when not.
    pub reasons: Vec<String>,
}

/// What an enrollment stored.
#[derive(Clone, Debug, Serialize)]
pub struct EnrollReport {
    /// The subject.
    pub subject: String,
    /// `accept` when something was stored, `retake` when no face sample was usable.
    pub outcome: Outcome,
    /// The face template's id, when stored.
    pub face_template: Option<i64>,
    /// Each face sample's verdict.
    pub samples: Vec<SampleVerdict>,
    /// The voice enrollment, when voice was given.
    pub voice: Option<VoiceEnrollment>,
}

/// A challenge request's answer.
#[derive(Clone, Debug, Serialize)]
pub enum ChallengeOutcome {
    /// The policy needs voice for this transaction: speak these digits.
    Issued(Challenge),
    /// The policy does not need voice for this transaction (or refuses it outright).
    NotRequired {
        /// The tier that applied.
        tier: Option<String>,
    },
}

/// The authenticator. `Send + Sync`: one per process, shared by every request thread.
pub struct Authenticator {
    engine: Arc<Engine>,
    vault: TemplateVault,
    policy: Policy,
    calibrations: Calibrations,
    challenges: ChallengeIssuer,
    attempts: AttemptLimiter,
    signer: ReceiptSigner,
    audit: AuditLog,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("policy", &self.policy)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authenticator>();
};

fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("a {what} id must be 1 to 256 bytes of printable text"),
        ));
    }
    Ok(())
}

/// Error kinds that mean "capture again" rather than "bad request".
fn retake_reason(kind: ErrorKind) -> Option<&'static str> {
    Some(match kind {
        ErrorKind::NoFace => "no_face",
        ErrorKind::ImageTooSmall => "image_too_small",
        ErrorKind::AudioSilent => "audio_silent",
        ErrorKind::AudioClipped => "audio_clipped",
        ErrorKind::AudioTooShort => "audio_too_short",
        ErrorKind::PassphraseTokens => "passphrase_tokens",
        _ => return None,
    })
}

/// What the face frames of a presentation gave.
struct FaceEvidence {
    liveness: LivenessResult,
    embedding: Embedding,
}

impl Authenticator {
    /// Opens everything a deployment needs from `config`: the engine, the template vault,
    /// the policy and calibrations, the receipt key and the audit log. Every problem
    /// surfaces here: a missing calibration for a model the policy needs, an unreadable
    /// key, a broken audit chain.
    pub fn open(config: Config) -> Result<Authenticator> {
        let vault = TemplateVault::open(&config)?;
        let engine = Arc::new(Engine::new(config)?);
        Authenticator::with_engine(engine, vault)
    }

    /// An authenticator over an engine already loaded (its config gives the rest).
    pub fn with_engine(engine: Arc<Engine>, vault: TemplateVault) -> Result<Authenticator> {
        let config = engine.config().clone();
        let decisions = &config.decisions;
        let policy = match &decisions.policy {
            Some(path) => Policy::load(path)?,
            None => Policy::builtin(),
        };
        let calibrations = Calibrations::with_files(&decisions.calibration)?;
        // Fail at start, not at the first payment: every operating point the policy can ask
        // for must be calibrated for the models it needs.
        let face_model = engine.face().embedder().spec().id();
        let needs_voice = policy
            .tiers()
            .iter()
            .any(|t| !t.refuse && t.factors.contains(&Factor::Voice));
        for tier in policy.tiers().iter().filter(|t| !t.refuse) {
            let Some(fmr) = tier.target_fmr else { continue };
            if tier.factors.contains(&Factor::Face) {
                calibrations.get(&face_model)?.threshold_at(fmr)?;
            }
            if tier.factors.contains(&Factor::Voice) {
                let encoder = engine.voice_encoder()?;
                calibrations
                    .get(encoder.id())?
                    .threshold_at(tier.voice_target_fmr.unwrap_or(fmr))?;
            }
        }
        if needs_voice {
            engine.voice_encoder()?;
        }
        let challenges = ChallengeIssuer::new(
            config.voice.passphrase_length,
            Duration::from_secs(config.voice.challenge_ttl_seconds),
        )?;
        let signer = ReceiptSigner::load(&decisions.receipt_key).map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "{} (create the receipt key with `vouch receipt keygen --out {}`)",
                    e.message(),
                    decisions.receipt_key.display()
                ),
            )
        })?;
        if let Some(dir) = decisions.audit_log.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io("creating the audit log folder", dir, e))?;
        }
        let audit = AuditLog::open(&decisions.audit_log)?;
        Ok(Authenticator {
            attempts: AttemptLimiter::new(decisions.attempts.clone()),
            engine,
            vault,
            policy,
            calibrations,
            challenges,
            signer,
            audit,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The template vault.
    pub fn vault(&self) -> &TemplateVault {
        &self.vault
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The receipt signer (its public key is what payment backends verify with).
    pub fn signer(&self) -> &ReceiptSigner {
        &self.signer
    }

    fn config(&self) -> &Config {
        self.engine.config()
    }

    /// Enrolls a subject: face samples through the quality gate and liveness, the accepted
    /// ones averaged into one template; voice when given.
    pub fn enroll(&self, request: &EnrollRequest<'_>) -> Result<EnrollReport> {
        check_id("subject", request.subject)?;
        check_id("terminal", request.terminal)?;
        if request.face.is_empty() && request.digits.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "an enrollment needs face images, or digit recordings for voice",
            ));
        }
        let max = self.config().liveness.max_frames;
        if request.face.len() > max {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "at most {max} face samples per enrollment (liveness.max_frames), got {}",
                    request.face.len()
                ),
            ));
        }
        // Decode everything first: a corrupt input refuses the request before anything is
        // stored.
        let images = self.decode_images(request.face, "face sample")?;
        let limits = &self.config().voice.audio;
        let speech = request
            .speech
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                Audio::decode(bytes, limits)
                    .map_err(|e| Error::new(e.kind(), format!("speech {}: {}", i + 1, e.message())))
            })
            .collect::<Result<Vec<_>>>()?;
        let digits = request
            .digits
            .iter()
            .enumerate()
            .map(|(i, (digit, bytes))| {
                if *digit > 9 {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("digit recording {}: {digit} is not a digit", i + 1),
                    ));
                }
                Audio::decode(bytes, limits)
                    .map(|a| (*digit, a))
                    .map_err(|e| {
                        Error::new(
                            e.kind(),
                            format!("digit recording {} ({digit}): {}", i + 1, e.message()),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        if !speech.is_empty() && digits.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "speech without digit recordings: voice enrollment needs every digit 0–9",
            ));
        }

        let mut samples = Vec::with_capacity(images.len());
        let mut embeddings = Vec::new();
        let mut quality = 0.0;
        for (index, image) in images.iter().enumerate() {
            let (accepted, reasons) = match self.face_evidence(std::slice::from_ref(image))? {
                Ok(evidence) if !evidence.liveness.live => {
                    (false, vec!["liveness_failed".to_string()])
                }
                Ok(evidence) => {
                    quality += evidence.liveness.score;
                    embeddings.push(evidence.embedding);
                    (true, Vec::new())
                }
                Err(Retake(reasons)) => (false, reasons),
            };
            samples.push(SampleVerdict {
                index,
                accepted,
                reasons,
            });
        }
        let face_template = if embeddings.is_empty() {
            None
        } else {
            let template = self.engine.face_template(
                &embeddings,
                embeddings.len(),
                quality / embeddings.len() as f32,
            )?;
            Some(self.vault.enroll(request.subject, &template)?)
        };
        let voice = if digits.is_empty() {
            None
        } else {
            let encoder = self.engine.voice_encoder()?;
            let service = VoiceService::new(encoder, &self.vault, self.config().voice.clone());
            Some(service.enroll(request.subject, &speech, &digits)?)
        };
        let outcome = if face_template.is_some() || voice.is_some() {
            Outcome::Accept
        } else {
            Outcome::Retake
        };
        let retakes: Vec<Value> = samples
            .iter()
            .filter(|s| !s.accepted)
            .map(|s| serde_json::json!({"index": s.index, "reasons": s.reasons}))
            .collect();
        self.audit.append(
            AuditEvent::new(AuditKind::Enroll, outcome.as_str())
                .subject(request.subject)
                .terminal(request.terminal)
                .detail("face_template", face_template)
                .detail("face_samples", images.len())
                .detail("retake", retakes)
                .detail(
                    "voice_templates",
                    voice
                        .as_ref()
                        .map(|v| serde_json::json!([v.voiceprint_id, v.digits_id])),
                ),
        )?;
        Ok(EnrollReport {
            subject: request.subject.to_string(),
            outcome,
            face_template,
            samples,
            voice,
        })
    }

    /// Decodes every image of a request, an error naming the one that failed (`what 2: …`).
    fn decode_images(&self, images: &[&[u8]], what: &str) -> Result<Vec<FaceImage>> {
        images
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                self.engine
                    .decode_image(bytes)
                    .map_err(|e| Error::new(e.kind(), format!("{what} {}: {}", i + 1, e.message())))
            })
            .collect()
    }

    /// Quality, liveness and the embedding of one presentation, or the reasons to retake.
    /// Errors that only ask for another capture (no face…) are a [`Retake`]; the others
    /// (a frame that moved, an inference failure) are errors.
    fn face_evidence(
        &self,
        frames: &[FaceImage],
    ) -> Result<std::result::Result<FaceEvidence, Retake>> {
        let liveness = match self.engine.assess_liveness_frames(frames, None) {
            Ok(liveness) => liveness,
            Err(e) => return Retake::from_error(e).map(Err),
        };
        if !liveness.quality_passed() {
            let mut reasons: Vec<String> = liveness
                .quality
                .iter()
                .flat_map(|q| q.failures.iter().map(|f| f.check.reason().to_string()))
                .collect();
            reasons.sort();
            reasons.dedup();
            return Ok(Err(Retake(reasons)));
        }
        // The sharpest frame is embedded.
        let best = liveness
            .quality
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.sharpness.total_cmp(&b.1.sharpness))
            .map_or(0, |(i, _)| i);
        let sample = match self.engine.face().analyze(&frames[best]) {
            Ok(sample) => sample,
            Err(e) => return Retake::from_error(e).map(Err),
        };
        Ok(Ok(FaceEvidence {
            liveness,
            embedding: sample.embedding,
        }))
    }

    /// Best cosine of `probe` over the subject's face templates, in the vault's protected
    /// space.
    fn best_face_score(&self, subject: &str, probe: &Embedding) -> Result<f64> {
        let model = self.engine.face().embedder().spec().id();
        let templates = self.vault.load(subject, Modality::Face, &model)?;
        let protected = Embedding::from_raw(self.vault.protect(probe.values())?)?;
        let mut best = f64::NEG_INFINITY;
        for t in &templates {
            let enrolled = Embedding::from_raw(t.values().to_vec())?;
            best = best.max(f64::from(enrolled.cosine(&protected)?));
        }
        if templates.is_empty() {
            return Err(Error::new(
                ErrorKind::NotFound,
                "the subject has no face enrollment",
            ));
        }
        Ok(best)
    }

    /// A passphrase challenge for `subject`, when the transaction's policy tier needs voice.
    pub fn challenge(
        &self,
        subject: &str,
        terminal: &str,
        transaction: &TransactionContext,
    ) -> Result<ChallengeOutcome> {
        check_id("subject", subject)?;
        check_id("terminal", terminal)?;
        let outcome = match self.policy.requirement(&transaction.transaction) {
            Requirement::Verify { factors, .. } if factors.contains(&Factor::Voice) => {
                let has_digits = self
                    .vault
                    .subjects()?
                    .iter()
                    .any(|s| s.subject == subject && s.passphrase > 0);
                if !has_digits {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        "the subject has no passphrase enrollment; voice cannot be verified",
                    ));
                }
                ChallengeOutcome::Issued(self.challenges.issue(subject)?)
            }
            Requirement::Verify { tier, .. } => ChallengeOutcome::NotRequired { tier: Some(tier) },
            Requirement::Refuse { tier, .. } => ChallengeOutcome::NotRequired { tier },
        };
        let mut event = AuditEvent::new(
            AuditKind::Challenge,
            match &outcome {
                ChallengeOutcome::Issued(_) => "issued",
                ChallengeOutcome::NotRequired { .. } => "not_required",
            },
        )
        .subject(subject)
        .terminal(terminal)
        .detail("transaction_id", transaction.id.as_str());
        if let ChallengeOutcome::Issued(c) = &outcome {
            // The id only: the digits are the secret the customer speaks.
            event = event.detail("challenge_id", c.id.as_str());
        }
        self.audit.append(event)?;
        Ok(outcome)
    }

    /// Verifies a customer (1:1) for a transaction.
    pub fn verify(&self, request: &VerifyRequest<'_>) -> Result<Decision> {
        check_id("subject", request.subject)?;
        check_id("terminal", request.terminal)?;
        check_id("transaction", &request.transaction.id)?;
        check_id("nonce", &request.transaction.nonce)?;
        let now = Instant::now();
        let mut d = DecisionDraft::default();
        let requirement = self.policy.requirement(&request.transaction.transaction);

        if let Some(lock) = self.attempts.check(request.subject, request.terminal, now) {
            let (reason, remaining) = match lock {
                Lock::Subject { remaining } => ("subject_locked", remaining),
                Lock::Terminal { remaining } => ("terminal_locked", remaining),
            };
            d.outcome = Outcome::Locked;
            d.reasons.push(reason.into());
            d.retry_after = Some(remaining);
            // A locked request is not looked at, but a spoken challenge is still spent.
            if let Some(voice) = request.voice {
                let _ = self.challenges.redeem(voice.challenge_id, request.subject);
            }
            return self.finish_verify(request, requirement_tier(&requirement), d);
        }

        let (factors, target_fmr, voice_target_fmr) = match &requirement {
            Requirement::Refuse { .. } => {
                d.outcome = Outcome::Reject;
                d.reasons.push("policy_refused".into());
                return self.finish_verify(request, requirement_tier(&requirement), d);
            }
            Requirement::Verify {
                factors,
                target_fmr,
                voice_target_fmr,
                ..
            } => (factors.clone(), *target_fmr, *voice_target_fmr),
        };
        d.required = factors.clone();

        // The challenge is redeemed first, whatever happens next: it is single-use.
        let challenge = match request.voice {
            Some(voice) => Some(
                self.challenges
                    .redeem(voice.challenge_id, request.subject)?,
            ),
            None => None,
        };
        if request.face_frames.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a verification needs at least one face frame",
            ));
        }
        let frames = self.decode_images(request.face_frames, "frame")?;
        let voice_audio = match request.voice {
            Some(voice) => match Audio::decode(voice.audio, &self.config().voice.audio) {
                Ok(audio) => Some(audio),
                Err(e) => match retake_reason(e.kind()) {
                    Some(reason) => {
                        d.retake.push(reason.to_string());
                        None
                    }
                    None => return Err(e),
                },
            },
            None => None,
        };

        let mut llrs = Vec::new();
        let mut scores = ResearchScores::default();
        match self.face_evidence(&frames)? {
            Err(Retake(reasons)) => d.retake.extend(reasons),
            Ok(evidence) => {
                if factors.contains(&Factor::Liveness) {
                    d.used.push(Factor::Liveness);
                    scores.liveness = Some(f64::from(evidence.liveness.score));
                    if !evidence.liveness.live {
                        d.failed.push("liveness_failed".into());
                    }
                }
                if factors.contains(&Factor::Face) {
                    d.used.push(Factor::Face);
                    let model = self.engine.face().embedder().spec().id();
                    let calibration = self.calibrations.get(&model)?;
                    let threshold = calibration.threshold_at(target_fmr)?;
                    let score = self.best_face_score(request.subject, &evidence.embedding)?;
                    llrs.push(calibration.llr(score));
                    scores.face = Some(score);
                    scores.face_threshold = Some(threshold);
                    if score < threshold {
                        d.failed.push("face_mismatch".into());
                    }
                }
            }
        }

        if factors.contains(&Factor::Voice) {
            match (challenge, voice_audio) {
                (None, _) => d.step_up.push("voice_required".into()),
                (Some(_), None) => {} // retake, reason already given
                (Some(challenge), Some(audio)) => {
                    d.used.push(Factor::Voice);
                    let encoder = self.engine.voice_encoder()?;
                    let calibration = self.calibrations.get(encoder.id())?;
                    let threshold = calibration.threshold_at(voice_target_fmr)?;
                    let mut voice_config = self.config().voice.clone();
                    voice_config.speaker_threshold = threshold;
                    let service = VoiceService::new(encoder, &self.vault, voice_config);
                    match service.verify(request.subject, &challenge.digits, &audio) {
                        Ok(result) => {
                            llrs.push(calibration.llr(result.speaker_score));
                            scores.voice = Some(result.speaker_score);
                            scores.voice_threshold = Some(threshold);
                            if !result.digits_match {
                                d.failed.push("passphrase_mismatch".into());
                            }
                            if !result.speaker_match {
                                d.failed.push("voice_mismatch".into());
                            }
                        }
                        Err(e) => match retake_reason(e.kind()) {
                            Some(reason) => d.retake.push(reason.into()),
                            None => return Err(e),
                        },
                    }
                }
            }
        }

        let fused = fuse(&llrs);
        if !llrs.is_empty() {
            scores.fused_llr = Some(fused);
        }
        d.settle(fused);
        match d.outcome {
            Outcome::Reject => self
                .attempts
                .record_failure(request.subject, request.terminal, now),
            Outcome::Accept => self.attempts.record_success(request.subject),
            _ => {}
        }
        if self.config().decisions.research_scores {
            d.scores = Some(scores);
        }
        self.finish_verify(request, requirement_tier(&requirement), d)
    }

    fn models_used(&self, used: &[Factor]) -> Vec<String> {
        let mut models = Vec::new();
        if used.contains(&Factor::Face) {
            models.push(self.engine.face().detector().spec().id());
            models.push(self.engine.face().embedder().spec().id());
        }
        if used.contains(&Factor::Liveness) {
            models.extend(
                self.engine
                    .liveness()
                    .models()
                    .iter()
                    .map(|m| m.spec().id()),
            );
        }
        if used.contains(&Factor::Voice)
            && let Ok(encoder) = self.engine.voice_encoder()
        {
            models.push(encoder.id().to_string());
            models.push(crate::voice::enrollment::DIGITS_MODEL_ID.to_string());
        }
        models
    }

    /// Signs the receipt and writes the audit record; the decision is returned only once both
    /// are done.
    fn finish_verify(
        &self,
        request: &VerifyRequest<'_>,
        tier: Option<String>,
        d: DecisionDraft,
    ) -> Result<Decision> {
        let tx = request.transaction;
        let mut receipt = Receipt::new(
            request.subject,
            request.terminal,
            &tx.id,
            &tx.nonce,
            tx.transaction.amount_minor,
            &tx.transaction.currency,
            d.outcome.as_str(),
        )?;
        receipt.merchant_category = tx.transaction.merchant_category.clone();
        receipt.reasons = d.reasons.clone();
        receipt.factors = d.used.iter().map(|f| factor_name(*f).to_string()).collect();
        receipt.models = self.models_used(&d.used);
        receipt.policy_tier = tier.clone();
        receipt.audit_head = Some(self.audit.head());
        let signed = self.signer.sign(&receipt)?;
        self.audit.append(
            AuditEvent::new(AuditKind::Verify, d.outcome.as_str())
                .subject(request.subject)
                .terminal(request.terminal)
                .detail("transaction_id", tx.id.as_str())
                .detail("reasons", d.reasons.clone())
                .detail("tier", tier.clone())
                .detail("receipt", signed.as_str()),
        )?;
        Ok(Decision {
            outcome: d.outcome,
            reasons: d.reasons,
            confidence: d.confidence,
            tier,
            required: d.required,
            used: d.used,
            retry_after: d.retry_after,
            receipt: signed,
            scores: d.scores,
        })
    }

    /// Identifies the face in front of the terminal among every enrolled subject (1:N,
    /// open-set): the best-matching subject if their score clears the threshold for
    /// `decisions.identify_fpir` over the gallery, otherwise nobody.
    pub fn identify(&self, request: &IdentifyRequest<'_>) -> Result<Identification> {
        check_id("terminal", request.terminal)?;
        let now = Instant::now();
        if let Some(Lock::Terminal { .. }) = self.attempts.check("", request.terminal, now) {
            return self.finish_identify(
                request,
                Outcome::Locked,
                None,
                vec!["terminal_locked".into()],
                Confidence::Low,
                0,
                Vec::new(),
            );
        }
        if request.face_frames.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "an identification needs at least one face frame",
            ));
        }
        let frames = self.decode_images(request.face_frames, "frame")?;
        let evidence = match self.face_evidence(&frames)? {
            Ok(evidence) => evidence,
            Err(Retake(reasons)) => {
                return self.finish_identify(
                    request,
                    Outcome::Retake,
                    None,
                    reasons,
                    Confidence::Low,
                    0,
                    Vec::new(),
                );
            }
        };
        if !evidence.liveness.live {
            self.attempts.record_failure("", request.terminal, now);
            return self.finish_identify(
                request,
                Outcome::Reject,
                None,
                vec!["liveness_failed".into()],
                Confidence::Low,
                0,
                Vec::new(),
            );
        }
        let gallery: Vec<SubjectSummary> = self
            .vault
            .subjects()?
            .into_iter()
            .filter(|s| s.face > 0)
            .collect();
        let mut candidates = Vec::with_capacity(gallery.len());
        for summary in &gallery {
            match self.best_face_score(&summary.subject, &evidence.embedding) {
                Ok(score) => candidates.push(Candidate {
                    subject: summary.subject.clone(),
                    score,
                }),
                // Templates of another model: that subject must re-enroll; skip, not fail.
                Err(e) if e.kind() == ErrorKind::TemplateModelMismatch => {}
                Err(e) => return Err(e),
            }
        }
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        let model = self.engine.face().embedder().spec().id();
        let calibration = self.calibrations.get(&model)?;
        let per_comparison = self.config().decisions.identify_fpir / gallery.len().max(1) as f64;
        let threshold = match calibration.threshold_at(per_comparison) {
            Ok(t) => t,
            Err(_) => {
                // The gallery outgrew the calibration: hold to its strictest point.
                tracing::warn!(
                    gallery = gallery.len(),
                    "identification threshold beyond the calibration; using its strictest point"
                );
                calibration
                    .points
                    .last()
                    .map_or(f64::INFINITY, |p| p.threshold)
            }
        };
        let found = candidates.first().filter(|c| c.score >= threshold);
        let (outcome, subject, reasons, confidence) = match found {
            Some(c) => (
                Outcome::Accept,
                Some(c.subject.clone()),
                Vec::new(),
                Confidence::of_llr(calibration.llr(c.score) - (gallery.len() as f64).ln()),
            ),
            None => (
                Outcome::Reject,
                None,
                vec!["no_match".to_string()],
                Confidence::Low,
            ),
        };
        let listed = if self.config().decisions.research_scores {
            candidates.into_iter().take(request.top_k).collect()
        } else {
            Vec::new()
        };
        self.finish_identify(
            request,
            outcome,
            subject,
            reasons,
            confidence,
            gallery.len(),
            listed,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_identify(
        &self,
        request: &IdentifyRequest<'_>,
        outcome: Outcome,
        subject: Option<String>,
        reasons: Vec<String>,
        confidence: Confidence,
        gallery: usize,
        candidates: Vec<Candidate>,
    ) -> Result<Identification> {
        let mut event = AuditEvent::new(AuditKind::Identify, outcome.as_str())
            .terminal(request.terminal)
            .detail("reasons", reasons.clone())
            .detail("gallery", gallery);
        if let Some(subject) = &subject {
            event = event.subject(subject.as_str());
        }
        self.audit.append(event)?;
        Ok(Identification {
            outcome,
            subject,
            reasons,
            confidence,
            gallery,
            candidates,
        })
    }

    /// What is enrolled for `subject` (counts per modality; never vectors).
    pub fn subject(&self, subject: &str) -> Result<SubjectSummary> {
        check_id("subject", subject)?;
        self.vault
            .subjects()?
            .into_iter()
            .find(|s| s.subject == subject)
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "no such subject"))
    }

    /// Deletes every template of `subject` (real deletion). Returns how many were deleted.
    pub fn delete_subject(&self, subject: &str, terminal: &str) -> Result<usize> {
        check_id("subject", subject)?;
        check_id("terminal", terminal)?;
        let deleted = self.vault.delete_subject(subject)?;
        self.audit.append(
            AuditEvent::new(
                AuditKind::DeleteSubject,
                if deleted > 0 { "ok" } else { "not_found" },
            )
            .subject(subject)
            .terminal(terminal)
            .detail("templates", deleted),
        )?;
        if deleted == 0 {
            return Err(Error::new(ErrorKind::NotFound, "no such subject"));
        }
        Ok(deleted)
    }
}

fn factor_name(factor: Factor) -> &'static str {
    match factor {
        Factor::Face => "face",
        Factor::Liveness => "liveness",
        Factor::Voice => "voice",
    }
}

fn requirement_tier(requirement: &Requirement) -> Option<String> {
    match requirement {
        Requirement::Verify { tier, .. } => Some(tier.clone()),
        Requirement::Refuse { tier, .. } => tier.clone(),
    }
}

/// Reasons to capture again.
struct Retake(Vec<String>);

impl Retake {
    /// The retake an error asks for, or the error itself.
    fn from_error(e: Error) -> Result<Retake> {
        match retake_reason(e.kind()) {
            Some(reason) => Ok(Retake(vec![reason.to_string()])),
            None => Err(e),
        }
    }
}

/// A decision being made: the evidence gathered so far.
struct DecisionDraft {
    outcome: Outcome,
    reasons: Vec<String>,
    confidence: Confidence,
    required: Vec<Factor>,
    used: Vec<Factor>,
    retry_after: Option<Duration>,
    scores: Option<ResearchScores>,
    failed: Vec<String>,
    retake: Vec<String>,
    step_up: Vec<String>,
}

impl Default for DecisionDraft {
    fn default() -> DecisionDraft {
        DecisionDraft {
            outcome: Outcome::Reject,
            reasons: Vec::new(),
            confidence: Confidence::Low,
            required: Vec::new(),
            used: Vec::new(),
            retry_after: None,
            scores: None,
            failed: Vec::new(),
            retake: Vec::new(),
            step_up: Vec::new(),
        }
    }
}

impl DecisionDraft {
    /// A failed factor rejects; otherwise an unusable sample asks for a retake; otherwise a
    /// missing factor asks to step up; otherwise every required factor passed.
    fn settle(&mut self, fused_llr: f64) {
        self.used.sort();
        let (outcome, reasons) = if !self.failed.is_empty() {
            (Outcome::Reject, std::mem::take(&mut self.failed))
        } else if !self.retake.is_empty() {
            (Outcome::Retake, std::mem::take(&mut self.retake))
        } else if !self.step_up.is_empty() {
            (Outcome::StepUp, std::mem::take(&mut self.step_up))
        } else {
            (Outcome::Accept, Vec::new())
        };
        self.outcome = outcome;
        self.reasons = reasons;
        self.confidence = match outcome {
            Outcome::Accept | Outcome::StepUp => Confidence::of_llr(fused_llr),
            _ => Confidence::Low,
        };
    }
}
