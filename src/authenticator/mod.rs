//! The authenticator: enrollments and decisions over stored templates, under the risk
//! policy, with attempt limits, signed receipts and the audit log.
//!
//! The [`Engine`] turns bytes into evidence (a presentation's faces, liveness scores,
//! embeddings, passphrase ranks and speaker scores); the authenticator looks up the thresholds
//! (the calibration of each model at the policy's target FMR, the decision settings) and has
//! [`crate::decision`] hold the evidence to them. Every decision path goes through it: `vouchd`
//! serves it, the CLI's decision commands call it, and a kiosk app links it.
//!
//! - [`Authenticator::enroll`] (`enroll.rs`): each face sample observed once, through the
//!   quality gate and liveness; the accepted ones averaged into an encrypted template;
//!   optionally a voiceprint and the enrolled digits. The report says which samples must be
//!   retaken and why.
//! - [`Authenticator::verify`] (`verify.rs`, 1:1): the policy picks the factors and the
//!   operating point; every required factor must pass at its own threshold.
//! - [`Authenticator::identify`] (`identify.rs`, 1:N, open-set): may answer "nobody".
//! - [`Authenticator::challenge`]: a spoken passphrase when the policy needs voice;
//!   [`Authenticator::liveness_challenge`]: head movements when it needs active liveness.
//!
//! Decisions are [`Outcome::Accept`], `Reject`, `StepUp` (another factor is needed: the
//! terminal asks for a passphrase and verifies again), `Retake` (the sample could not be
//! judged: no face, a second face, poor quality, unusable audio) or `Locked` (too many
//! failures), with reason codes and a coarse [`Confidence`]. Raw scores are returned only when
//! `dangerous.research_scores` is on.
//!
//! Every decision is written to the audit log before it is returned and carries a receipt
//! signed with the daemon's Ed25519 key, binding subject, terminal, transaction, decision,
//! factors, model ids and the audit head.

mod enroll;
mod identify;
mod types;
mod verify;

use std::sync::Arc;
use std::time::Duration;

pub use crate::decision::{Confidence, Outcome};
pub use types::{
    ActiveResponse, Candidate, ChallengeOutcome, Decision, EnrollReport, EnrollRequest,
    Identification, IdentifyRequest, LivenessChallengeOutcome, ResearchScores, SampleVerdict,
    Timings, TransactionContext, VerifyRequest, VoiceResponse,
};

use crate::attempts::AttemptLimiter;
use crate::audit::{AuditEvent, AuditKind, AuditLog};
use crate::config::ValidConfig;
use crate::decision;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::face::challenge::{Binding, MovementChallengeIssuer};
use crate::face::{FaceImage, LivenessEvidence, PresentedEmbedding};
use crate::policy::{Factor, Policy, Requirement, VelocityAction};
use crate::receipt::ReceiptSigner;
use crate::score::{Calibrations, fused_model_id};
use crate::store::SubjectSummary;
use crate::vault::TemplateVault;
use crate::voice::enrollment::VoiceService;
use crate::voice::passphrase::ChallengeIssuer;

/// The authenticator. `Send + Sync`: one per process, shared by every request thread.
pub struct Authenticator {
    engine: Arc<Engine>,
    vault: TemplateVault,
    policy: Policy,
    calibrations: Calibrations,
    challenges: ChallengeIssuer,
    movement_challenges: MovementChallengeIssuer,
    attempts: AttemptLimiter,
    /// The decision state: attempts, approved payments, challenges.
    ledger: Arc<crate::ledger::Ledger>,
    signer: ReceiptSigner,
    audit: AuditLog,
    /// The face templates in memory for 1:N, made on the first identification and kept in
    /// step with this authenticator's enrollments and deletions (and reloaded when another
    /// writer changes the store), with the store revision it was made at.
    gallery: std::sync::RwLock<Option<(crate::gallery::Gallery, Option<u64>)>>,
    /// Whether the terminal can reach its fleet store (always, standalone).
    connectivity: Arc<dyn crate::policy::Connectivity>,
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

/// What the face frames of one presentation gave: the reasons to capture again, or the face's
/// evidence. The embedding and the liveness scores come from the same detections.
enum Presented {
    Retake(Vec<String>),
    Face {
        liveness: Option<LivenessEvidence>,
        embedding: PresentedEmbedding,
    },
}

impl Authenticator {
    /// Opens everything a deployment needs from `config`: the engine, the template vault,
    /// the policy and calibrations, the receipt key and the audit log. Every problem
    /// surfaces here: a missing calibration for a model the policy needs, an unreadable
    /// key, a broken audit chain.
    pub fn open(config: ValidConfig) -> Result<Authenticator> {
        let vault = TemplateVault::open(&config.store, &config.keys)?;
        let engine = Arc::new(Engine::new(config)?);
        Authenticator::with_engine(engine, vault)
    }

    /// An authenticator over an engine already loaded (its config gives the rest, the
    /// decision state at `decisions.state` among it).
    pub fn with_engine(engine: Arc<Engine>, vault: TemplateVault) -> Result<Authenticator> {
        let state = engine.config().decisions.state_path();
        let ledger = Arc::new(crate::ledger::Ledger::open(&state, "local")?);
        Authenticator::assemble(engine, vault, ledger)
    }

    /// An authenticator over an engine, a vault and a decision state already open (a fleet
    /// terminal's, which its replicator shares).
    pub fn assemble(
        engine: Arc<Engine>,
        vault: TemplateVault,
        ledger: Arc<crate::ledger::Ledger>,
    ) -> Result<Authenticator> {
        let config = engine.config().clone();
        config.dangerous_settings().log_enabled();
        let decisions = &config.decisions;
        let policy = match &decisions.policy {
            Some(path) => Policy::load(path)?,
            None => Policy::builtin(),
        };
        let calibrations = Calibrations::with_files(&decisions.calibration)?;
        // Fail at start, not at the first payment: every operating point the policy can ask
        // for must be calibrated for the models it needs.
        let face_model = engine.face().embedder().spec().embedding_space();
        let needs_voice = policy
            .tiers()
            .iter()
            .any(|t| !t.refuse && t.factors.contains(&Factor::Voice))
            || policy.velocity().iter().any(|r| {
                r.action == VelocityAction::StepUp && r.step_up_factors.contains(&Factor::Voice)
            });
        let fused_face = engine.fused_face_models();
        for tier in policy.tiers().iter().filter(|t| !t.refuse) {
            let Some(fmr) = tier.target_fmr else { continue };
            if tier.factors.contains(&Factor::Face) {
                calibrations.get(&face_model)?.threshold_at(fmr)?;
            }
            if tier.face_fusion {
                if fused_face.len() < 2 {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "policy tier {:?} asks for face_fusion, but face.fused_embedders names no model to fuse with face.embedder",
                            tier.name
                        ),
                    ));
                }
                calibrations
                    .get(&fused_model_id(&fused_face))?
                    .threshold_at(fmr)?;
            }
            // A velocity rule may ask any tier for the passphrase.
            let stepped_up = policy.velocity().iter().any(|r| {
                r.action == VelocityAction::StepUp && r.step_up_factors.contains(&Factor::Voice)
            });
            if tier.factors.contains(&Factor::Voice) || stepped_up {
                // The fusion of every configured speaker model (new enrollments), and the
                // first model alone (subjects enrolled before the others were added).
                let ids: Vec<String> = engine
                    .speaker_models()?
                    .iter()
                    .map(|m| m.model_id().to_string())
                    .collect();
                let fmr = tier.voice_target_fmr.unwrap_or(fmr);
                calibrations.get(&fused_model_id(&ids))?.threshold_at(fmr)?;
                calibrations.get(&ids[0])?.threshold_at(fmr)?;
            }
        }
        if needs_voice {
            engine.speaker_models()?;
        }
        let challenges = ChallengeIssuer::new(
            config.voice.passphrase_length,
            Duration::from_secs(config.voice.challenge_ttl_seconds),
        )?
        .with_book(ledger.clone());
        let motion = &config.face.motion;
        let movement_challenges = MovementChallengeIssuer::new(
            motion.challenge_min_movements,
            motion.challenge_max_movements,
            Duration::from_secs(motion.challenge_ttl_seconds),
        )?
        .with_book(ledger.clone());
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
            attempts: AttemptLimiter::new(decisions.attempts.clone(), ledger.clone()),
            ledger,
            engine,
            vault,
            policy,
            calibrations,
            challenges,
            movement_challenges,
            signer,
            audit,
            gallery: std::sync::RwLock::new(None),
            connectivity: Arc::new(crate::policy::Standalone),
        })
    }

    /// Tells the authenticator whether its terminal can reach the fleet store (a replica's
    /// [`crate::replica::FleetStatus`]): offline, decisions are held to the policy's offline
    /// ceilings and marked offline in their receipts and audit records. By default, a
    /// standalone terminal, never offline.
    pub fn with_connectivity(
        mut self,
        connectivity: Arc<dyn crate::policy::Connectivity>,
    ) -> Authenticator {
        self.connectivity = connectivity;
        self
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

    /// The calibrations thresholds come from.
    pub fn calibrations(&self) -> &Calibrations {
        &self.calibrations
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The receipt signer (its public key is what payment backends verify with).
    pub fn signer(&self) -> &ReceiptSigner {
        &self.signer
    }

    fn config(&self) -> &ValidConfig {
        self.engine.config()
    }

    /// Voice enrollment and passphrase evidence with the engine's models over the vault
    /// (each model loaded on first use).
    fn voice_service(&self) -> Result<VoiceService<'_>> {
        Ok(VoiceService::new(
            self.engine.speaker_models()?,
            self.engine.speech_embedder()?,
            self.engine.digit_head()?,
            &self.vault,
        ))
    }

    /// Observes one presentation (one detection per frame) and, when every frame can be
    /// judged, scores its liveness (when asked for) and embeds its face (by the fused
    /// embedders too, when asked for). Errors that only ask
    /// for another capture (no face…) are a retake; the others (frames that are not one
    /// presentation, an inference failure) are errors.
    /// The stages' times are added to `timings`.
    fn present(
        &self,
        frames: &[FaceImage],
        with_liveness: bool,
        fused: bool,
        timings: &mut Timings,
    ) -> Result<Presented> {
        let start = std::time::Instant::now();
        let observed = self.engine.observe(frames);
        timings.observe_ms += Timings::since(start);
        let presentation = match observed {
            Ok(presentation) => presentation,
            Err(e) => return retake_or(e),
        };
        let decisions = &self.config().decisions;
        let retake = decision::presentation_retake(
            presentation.faces(),
            &self.config().quality,
            decisions.other_face_share,
        );
        if !retake.is_empty() {
            return Ok(Presented::Retake(retake));
        }
        let start = std::time::Instant::now();
        let liveness = if with_liveness {
            Some(
                self.engine
                    .liveness_of(&presentation, decisions.liveness_threshold)?,
            )
        } else {
            None
        };
        timings.liveness_ms += Timings::since(start);
        // One after the other: run beside liveness on another thread, the fused embeddings
        // made the decision no faster on the 2-vCPU development machine (24.1 vs 23.5 ms at
        // 640x480, `vouch bench verify --fused`): the two slowed each other down by as much.
        let start = std::time::Instant::now();
        let embedding = if fused {
            self.engine.embed_for_fusion(&presentation)?
        } else {
            self.engine.embed(&presentation)?
        };
        timings.embed_ms += Timings::since(start);
        Ok(Presented::Face {
            liveness,
            embedding,
        })
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

    /// A movement challenge for `subject` at `terminal`, bound to the transaction, when its
    /// policy tier needs active liveness. The terminal prompts the movements
    /// ([`crate::face::motion::HeadMovement::prompt`]), films the customer at 10 frames per
    /// second or more, and sends the frames with their times in [`VerifyRequest::active`].
    pub fn liveness_challenge(
        &self,
        subject: &str,
        terminal: &str,
        transaction: &TransactionContext,
    ) -> Result<LivenessChallengeOutcome> {
        check_id("subject", subject)?;
        check_id("terminal", terminal)?;
        check_id("transaction", &transaction.id)?;
        let outcome = match self.policy.requirement(&transaction.transaction) {
            Requirement::Verify { factors, .. } if factors.contains(&Factor::ActiveLiveness) => {
                LivenessChallengeOutcome::Issued(self.movement_challenges.issue(Binding {
                    subject: subject.to_string(),
                    terminal: terminal.to_string(),
                    transaction_id: transaction.id.clone(),
                })?)
            }
            Requirement::Verify { tier, .. } => {
                LivenessChallengeOutcome::NotRequired { tier: Some(tier) }
            }
            Requirement::Refuse { tier, .. } => LivenessChallengeOutcome::NotRequired { tier },
        };
        let mut event = AuditEvent::new(
            AuditKind::Challenge,
            match &outcome {
                LivenessChallengeOutcome::Issued(_) => "issued",
                LivenessChallengeOutcome::NotRequired { .. } => "not_required",
            },
        )
        .subject(subject)
        .terminal(terminal)
        .detail("transaction_id", transaction.id.as_str())
        .detail("challenge_kind", "movement");
        if let LivenessChallengeOutcome::Issued(c) = &outcome {
            event = event.detail("challenge_id", c.id.as_str());
        }
        self.audit.append(event)?;
        Ok(outcome)
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
        self.refresh_gallery(subject)?;
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

impl Authenticator {
    /// Brings `subject`'s templates in the 1:N gallery (if there is one) in step with the
    /// vault, after this authenticator enrolled or deleted them.
    pub(super) fn refresh_gallery(&self, subject: &str) -> Result<()> {
        let mut held = self
            .gallery
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((gallery, _)) = held.as_mut() {
            gallery.load_subject(&self.vault, subject)?;
        }
        Ok(())
    }
}

/// The retake an error asks for, or the error itself.
fn retake_or(e: Error) -> Result<Presented> {
    match decision::retake_reason(e.kind()) {
        Some(reason) => Ok(Presented::Retake(vec![reason.to_string()])),
        None => Err(e),
    }
}

fn requirement_tier(requirement: &Requirement) -> Option<String> {
    match requirement {
        Requirement::Verify { tier, .. } => Some(tier.clone()),
        Requirement::Refuse { tier, .. } => tier.clone(),
    }
}
