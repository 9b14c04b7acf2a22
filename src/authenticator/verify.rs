//! 1:1 verification under the policy: evidence gathered, thresholds looked up, the decision
//! module settles, the receipt is signed and the audit record written.

use std::time::Instant;

use super::{
    Authenticator, Decision, Presented, ResearchScores, Timings, VerifyRequest, check_id,
    requirement_tier,
};
use crate::audit::{AuditEvent, AuditKind};
use crate::decision::{self, Approval, Payment, Settled, VelocityVerdict, Verification};
use crate::embedding::Embedding;
use crate::error::{Error, ErrorKind, Result};
use crate::face::challenge::Binding;
use crate::policy::{Factor, Requirement};
use crate::receipt::Receipt;
use crate::template::Modality;
use crate::voice::audio::Audio;

/// How many frontal frames of a movement response passive liveness judges: enough to see a
/// screen or a print that the still presentation did not show, few enough to stay a small
/// part of the response's cost (each is one detection and one run of the ensemble).
const RESPONSE_LIVENESS_FRAMES: usize = 4;

/// What a decision was made under, besides its evidence.
struct Context {
    /// The policy tier that set the required factors, when one applied.
    tier: Option<String>,
    /// Whether the terminal was offline.
    offline: bool,
    /// What the velocity rules made of the payment.
    velocity: VelocityVerdict,
    /// Whether the tier holds the face to the fused score of every configured embedder.
    face_fusion: bool,
}

impl Authenticator {
    /// Passive liveness of a movement response's frontal frames (up to
    /// [`RESPONSE_LIVENESS_FRAMES`], spread over the response): the mean of their scores, or
    /// `None` when none could be scored. Each frame is judged on its own: the head moved
    /// between them, so they are not one steady presentation. A frame whose face cannot be
    /// found again is skipped: following the response already judged the track.
    fn response_liveness(
        &self,
        frames: &[crate::face::FaceImage],
        evidence: &crate::face::follow::MotionEvidence,
    ) -> Result<Option<f32>> {
        let frontal = &evidence.frontal;
        let picked: Vec<usize> = if frontal.len() <= RESPONSE_LIVENESS_FRAMES {
            frontal.clone()
        } else {
            (0..RESPONSE_LIVENESS_FRAMES)
                .map(|i| frontal[i * (frontal.len() - 1) / (RESPONSE_LIVENESS_FRAMES - 1)])
                .collect()
        };
        let threshold = self.config().decisions.liveness_threshold;
        let mut scores = Vec::with_capacity(picked.len());
        for i in picked {
            let Some(frame) = frames.get(i) else { continue };
            let Ok(presentation) = self.engine.observe(std::slice::from_ref(frame)) else {
                continue;
            };
            scores.push(self.engine.liveness_of(&presentation, threshold)?.score);
        }
        Ok((!scores.is_empty()).then(|| scores.iter().sum::<f32>() / scores.len() as f32))
    }

    /// The velocity rules' verdict on the request's payment, over the customer's approvals
    /// (fleet-wide, as far as replicated) and the terminal's.
    fn velocity(&self, request: &VerifyRequest<'_>, now_ms: i64) -> Result<VelocityVerdict> {
        let rules = self.policy.velocity();
        if rules.is_empty() {
            return Ok(VelocityVerdict::default());
        }
        let since = now_ms - (crate::policy::VELOCITY_HORIZON_SECONDS as i64) * 1000;
        let approvals = |events: Vec<crate::ledger::Event>| -> Vec<Approval> {
            events
                .into_iter()
                .map(|e| Approval {
                    at_ms: e.at_ms,
                    amount_minor: e.amount_minor,
                    currency: e.currency,
                    strong: e.strong,
                })
                .collect()
        };
        let kinds = [crate::ledger::EventKind::Approval];
        let subject = approvals(self.ledger.subject_events(request.subject, &kinds, since)?);
        let terminal = approvals(
            self.ledger
                .terminal_events(request.terminal, &kinds, since)?,
        );
        let tx = &request.transaction.transaction;
        Ok(decision::velocity(
            rules,
            &subject,
            &terminal,
            &Payment {
                amount_minor: tx.amount_minor,
                currency: &tx.currency,
                at_ms: now_ms,
            },
        ))
    }

    /// Verifies a customer (1:1) for a transaction.
    pub fn verify(&self, request: &VerifyRequest<'_>) -> Result<Decision> {
        check_id("subject", request.subject)?;
        check_id("terminal", request.terminal)?;
        check_id("transaction", &request.transaction.id)?;
        check_id("nonce", &request.transaction.nonce)?;
        let now = Instant::now();
        let now_ms = crate::ledger::now_ms();
        let mut timings = Timings::default();
        let requirement = self.policy.requirement(&request.transaction.transaction);
        let mut context = Context {
            tier: requirement_tier(&requirement),
            offline: self.connectivity.offline(),
            velocity: VelocityVerdict::default(),
            face_fusion: matches!(
                requirement,
                Requirement::Verify {
                    face_fusion: true,
                    ..
                }
            ),
        };

        let binding = Binding {
            subject: request.subject.to_string(),
            terminal: request.terminal.to_string(),
            transaction_id: request.transaction.id.clone(),
        };
        if let Some(lock) = self
            .attempts
            .check(request.subject, request.terminal, now_ms)?
        {
            // A locked request is not looked at, but its challenges are still spent.
            if let Some(voice) = request.voice {
                let _ = self.challenges.redeem(voice.challenge_id, request.subject);
            }
            if let Some(active) = request.active {
                let _ = self
                    .movement_challenges
                    .redeem(active.challenge_id, &binding);
            }
            return self.finish_verify(request, context, Settled::locked(lock), None, timings, now);
        }

        let (factors, target_fmr, voice_target_fmr, face_fusion) = match &requirement {
            Requirement::Refuse { .. } => {
                return self.finish_verify(
                    request,
                    context,
                    Settled::refused(),
                    None,
                    timings,
                    now,
                );
            }
            Requirement::Verify {
                offline_max_amount_minor,
                ..
            } if decision::beyond_offline_ceiling(
                context.offline,
                request.transaction.transaction.amount_minor,
                *offline_max_amount_minor,
            ) =>
            {
                return self.finish_verify(
                    request,
                    context,
                    Settled::offline_limit(),
                    None,
                    timings,
                    now,
                );
            }
            Requirement::Verify {
                factors,
                target_fmr,
                voice_target_fmr,
                face_fusion,
                ..
            } => (
                factors.clone(),
                *target_fmr,
                *voice_target_fmr,
                *face_fusion,
            ),
        };
        // A customer enrolled before the fused embedders were configured is asked to
        // re-enroll here, before a challenge is spent, and only on a tier that fuses.
        if face_fusion {
            self.check_fused_enrollment(request.subject)?;
        }
        context.velocity = self.velocity(request, now_ms)?;
        if context.velocity.refused_by.is_some() {
            return self.finish_verify(
                request,
                context,
                Settled::velocity_limit(),
                None,
                timings,
                now,
            );
        }
        // A step-up to factors the tier requires anyway is no step-up.
        context.velocity.step_up.retain(|f| !factors.contains(f));
        if context.velocity.step_up.is_empty() {
            context.velocity.step_up_by.clear();
        }
        let mut factors = factors;
        factors.extend(context.velocity.step_up.iter().copied());
        factors.sort();
        let mut verification = Verification::new(&factors);

        // The challenge is redeemed first, whatever happens next: it is single-use.
        let challenge = match request.voice {
            Some(voice) => Some(
                self.challenges
                    .redeem(voice.challenge_id, request.subject)?,
            ),
            None => None,
        };
        let movement = match request.active {
            Some(active) => Some(
                self.movement_challenges
                    .redeem(active.challenge_id, &binding)?,
            ),
            None => None,
        };
        if request.face_frames.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a verification needs at least one face frame",
            ));
        }
        let start = Instant::now();
        let frames = self.engine.decode_images(request.face_frames, "frame")?;
        let voice_audio = match request.voice {
            Some(voice) => match Audio::decode(voice.audio, &self.config().voice.audio) {
                Ok(audio) => Some(audio),
                Err(e) => match decision::retake_reason(e.kind()) {
                    Some(reason) => {
                        verification.retake([reason.to_string()]);
                        None
                    }
                    None => return Err(e),
                },
            },
            None => None,
        };
        timings.decode_ms += Timings::since(start);

        let mut scores = ResearchScores::default();
        let mut presented: Option<Embedding> = None;
        // Held to the threshold once every frame that passive liveness judges is known: the
        // presentation's and, with a movement response, its frontal frames'.
        let mut passive: Option<f32> = None;
        match self.present(
            &frames,
            verification.requires(Factor::Liveness),
            face_fusion,
            &mut timings,
        )? {
            Presented::Retake(reasons) => verification.retake(reasons),
            Presented::Face {
                liveness,
                embedding,
            } => {
                passive = liveness.map(|l| l.score);
                if verification.requires(Factor::Face) {
                    // The embedder's score, and on a fusing tier each fused embedder's: one
                    // calibrated score (the fusion's, or the embedder's own).
                    let start = Instant::now();
                    let model = self.engine.face().embedder().spec().embedding_space();
                    let mut by_model = vec![(
                        model.clone(),
                        self.best_face_score(request.subject, &model, &embedding.embedding)?,
                    )];
                    for fused in &embedding.fused {
                        let score =
                            self.best_face_score(request.subject, &fused.model, &fused.embedding)?;
                        by_model.push((fused.model.clone(), score));
                    }
                    timings.match_ms += Timings::since(start);
                    let by_model: Vec<(&str, f64)> =
                        by_model.iter().map(|(m, s)| (m.as_str(), *s)).collect();
                    let face = self.calibrations.calibrated(&by_model, target_fmr)?;
                    scores.face = Some(face.score);
                    scores.face_threshold = Some(face.threshold);
                    verification.face(face.score, face.threshold, face.llr);
                }
                presented = Some(embedding.embedding);
            }
        }

        if verification.requires(Factor::ActiveLiveness) {
            match (movement, request.active) {
                (Some(challenge), Some(active)) => {
                    let start = Instant::now();
                    let frames = self
                        .engine
                        .decode_images(active.frames, "challenge frame")?;
                    timings.decode_ms += Timings::since(start);
                    let start = Instant::now();
                    let followed = self.engine.follow(&frames, active.times);
                    timings.observe_ms += Timings::since(start);
                    let start = Instant::now();
                    match followed {
                        Ok(evidence) => {
                            let settings = &self.config().decisions;
                            let verdict = decision::active_liveness(
                                &evidence,
                                &challenge.actions,
                                settings.other_face_share,
                                &settings.active_liveness,
                            );
                            // The face that moved must be the face that was matched.
                            let same_face = match (&evidence.anchor, &presented) {
                                (Some(moved), Some(matched)) => Some(moved.cosine(matched)?),
                                _ => None,
                            };
                            verification.active_liveness(
                                &verdict,
                                same_face,
                                settings.active_liveness.min_identity,
                            );
                            if let (Some(score), Some(response)) =
                                (passive, self.response_liveness(&frames, &evidence)?)
                            {
                                passive = Some(score.min(response));
                            }
                        }
                        Err(e) => match decision::retake_reason(e.kind()) {
                            Some(reason) => verification.retake([reason.to_string()]),
                            None => return Err(e),
                        },
                    }
                    timings.liveness_ms += Timings::since(start);
                }
                _ => verification.active_liveness_required(),
            }
        }

        if let Some(score) = passive {
            scores.liveness = Some(f64::from(score));
            verification.liveness(score, self.config().decisions.liveness_threshold);
        }

        if verification.requires(Factor::Voice) {
            match (challenge, voice_audio) {
                (None, _) => verification.voice_required(),
                (Some(_), None) => {} // retake, reason already given
                (Some(challenge), Some(audio)) => {
                    let start = Instant::now();
                    let service = self.voice_service()?;
                    let examined = service.examine(request.subject, &challenge.digits, &audio);
                    timings.voice_ms += Timings::since(start);
                    match examined {
                        Ok(evidence) => {
                            // One calibration for the models the subject has voiceprints
                            // of: both models' fusion, or the encoder's own for a subject
                            // enrolled before the GMM-UBM was added.
                            let speaker = self
                                .calibrations
                                .calibrated(&evidence.scores(), voice_target_fmr)?;
                            scores.voice = Some(speaker.score);
                            scores.voice_threshold = Some(speaker.threshold);
                            let verdict = decision::passphrase(
                                &evidence,
                                speaker.score,
                                speaker.threshold,
                                self.config().decisions.max_digit_errors,
                            );
                            verification.passphrase(verdict, speaker.llr);
                        }
                        Err(e) => match decision::retake_reason(e.kind()) {
                            Some(reason) => verification.retake([reason.to_string()]),
                            None => return Err(e),
                        },
                    }
                }
            }
        }

        let mut settled = verification.settle();
        if settled.outcome == decision::Outcome::StepUp && !context.velocity.step_up.is_empty() {
            settled.reasons.push("velocity_step_up".to_string());
        }
        scores.fused_llr = settled.fused_llr;
        if settled.is_failure() {
            self.attempts
                .record_failure(request.subject, request.terminal, now_ms)?;
        } else if settled.outcome == decision::Outcome::Accept {
            let tx = &request.transaction.transaction;
            let strong = settled
                .used
                .iter()
                .any(|f| matches!(f, Factor::Voice | Factor::ActiveLiveness));
            let approval = crate::ledger::NewEvent {
                amount_minor: tx.amount_minor,
                currency: &tx.currency,
                strong,
                ..crate::ledger::NewEvent::attempt(
                    crate::ledger::EventKind::Approval,
                    request.subject,
                    request.terminal,
                )
            };
            // Payments are kept only where velocity rules count them.
            let counted = if self.policy.velocity().is_empty() {
                &[][..]
            } else {
                std::slice::from_ref(&approval)
            };
            self.attempts
                .record_success(request.subject, request.terminal, now_ms, counted)?;
        }
        let scores = self
            .config()
            .dangerous_settings()
            .research_scores()
            .then_some(scores);
        self.finish_verify(request, context, settled, scores, timings, now)
    }

    /// Refuses ([`ErrorKind::TemplateModelMismatch`], re-enrollment required) a subject whose
    /// face was enrolled without one of the fused embedders. A subject without any face
    /// enrollment passes: that is [`ErrorKind::NotFound`] later, as on every tier.
    fn check_fused_enrollment(&self, subject: &str) -> Result<()> {
        let face = self.engine.face();
        let embedder = face.embedder().spec().embedding_space();
        if !self.vault.has_model(subject, Modality::Face, &embedder)? {
            return Ok(());
        }
        for fused in face.fused_embedders() {
            let model = fused.spec().embedding_space();
            if !self.vault.has_model(subject, Modality::Face, &model)? {
                return Err(Error::new(
                    ErrorKind::TemplateModelMismatch,
                    format!(
                        "this payment's tier holds the face to the fusion of {embedder} and {model}, and the customer's face was enrolled before {model} was configured; re-enrollment required (smaller payments still verify)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Best cosine of `probe` over the subject's face templates of `model`, in the vault's
    /// protected space.
    pub(super) fn best_face_score(
        &self,
        subject: &str,
        model: &str,
        probe: &Embedding,
    ) -> Result<f64> {
        let templates = self.vault.load(subject, Modality::Face, model)?;
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

    fn models_used(&self, used: &[Factor], fused: bool) -> Vec<String> {
        let mut models = Vec::new();
        if used.contains(&Factor::Face) {
            let face = self.engine.face();
            models.push(face.detector().spec().id());
            models.push(face.embedder().spec().id());
            if fused {
                models.extend(face.fused_embedders().iter().map(|e| e.spec().id()));
            }
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
            && let Ok(speakers) = self.engine.speaker_models()
        {
            models.extend(speakers.iter().map(|s| s.model_id().to_string()));
            if let Ok(head) = self.engine.digit_head() {
                models.push(head.centroids_model_id());
            }
            let [mel, embedding] = &self.config().voice.speech_embedding;
            models.extend(
                [mel, embedding]
                    .into_iter()
                    .filter_map(|name| self.engine.manifest().get(name).ok())
                    .map(|spec| spec.id()),
            );
        }
        models
    }

    /// Signs the receipt and writes the audit record; the decision is returned only once both
    /// are done. `timings` gains the record's time and the total since `started`.
    fn finish_verify(
        &self,
        request: &VerifyRequest<'_>,
        context: Context,
        settled: Settled,
        scores: Option<ResearchScores>,
        timings: Timings,
        started: Instant,
    ) -> Result<Decision> {
        let start = Instant::now();
        let Context {
            tier,
            offline,
            velocity,
            face_fusion,
        } = context;
        let tx = request.transaction;
        let mut receipt = Receipt::new(
            request.subject,
            request.terminal,
            &tx.id,
            &tx.nonce,
            tx.transaction.amount_minor,
            &tx.transaction.currency,
            settled.outcome.as_str(),
        )?;
        receipt.merchant_category = tx.transaction.merchant_category.clone();
        receipt.reasons = settled.reasons.clone();
        receipt.factors = settled
            .used
            .iter()
            .map(|f| f.as_str().to_string())
            .collect();
        receipt.models = self.models_used(&settled.used, face_fusion);
        receipt.policy_tier = tier.clone();
        receipt.audit_head = Some(self.audit.head());
        receipt.offline = offline;
        let signed = self.signer.sign(&receipt)?;
        let mut event = AuditEvent::new(AuditKind::Verify, settled.outcome.as_str())
            .subject(request.subject)
            .terminal(request.terminal)
            .detail("transaction_id", tx.id.as_str())
            .detail("reasons", settled.reasons.clone())
            .detail("tier", tier.clone());
        if offline {
            event = event.detail("offline", true);
        }
        if let Some(rule) = &velocity.refused_by {
            event = event.detail("velocity_refused_by", rule.as_str());
        }
        if !velocity.step_up_by.is_empty() {
            event = event.detail("velocity_step_up_by", velocity.step_up_by.clone());
        }
        if !velocity.alerts.is_empty() {
            event = event.detail("velocity_alerts", velocity.alerts.clone());
        }
        self.audit
            .append(event.detail("receipt", signed.as_str()))?;
        Ok(Decision {
            outcome: settled.outcome,
            reasons: settled.reasons,
            confidence: settled.confidence,
            tier,
            required: settled.required,
            used: settled.used,
            retry_after: settled.retry_after,
            receipt: signed,
            offline,
            velocity_alerts: velocity.alerts,
            scores,
            timings: Timings {
                record_ms: Timings::since(start),
                total_ms: Timings::since(started),
                ..timings
            },
        })
    }
}
