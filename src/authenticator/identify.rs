//! Open-set identification (1:N): the live face in front of the terminal against every
//! enrolled subject; the answer may be "nobody".

use super::{
    Authenticator, Candidate, Identification, IdentifyRequest, Presented, Timings, check_id,
};
use crate::audit::{AuditEvent, AuditKind};
use crate::decision::{self, Confidence, Identified, Lock, Outcome};
use crate::error::{Error, ErrorKind, Result};

impl Authenticator {
    /// Identifies the face in front of the terminal among every enrolled subject (1:N,
    /// open-set): the best-matching subject if their score clears the threshold for
    /// `decisions.identify_fpir` over the gallery, otherwise nobody.
    pub fn identify(&self, request: &IdentifyRequest<'_>) -> Result<Identification> {
        check_id("terminal", request.terminal)?;
        let now_ms = crate::ledger::now_ms();
        let unidentified = |outcome, reason: &str| Identified {
            outcome,
            subject: None,
            reasons: vec![reason.to_string()],
            confidence: Confidence::Low,
        };
        if let Some(Lock::Terminal { .. }) =
            self.attempts.check_terminal(request.terminal, now_ms)?
        {
            return self.finish_identify(
                request,
                unidentified(Outcome::Locked, "terminal_locked"),
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
        let frames = self.engine.decode_images(request.face_frames, "frame")?;
        let (liveness, embedding) =
            match self.present(&frames, true, false, &mut Timings::default())? {
                Presented::Face {
                    liveness: Some(liveness),
                    embedding,
                } => (liveness, embedding),
                Presented::Retake(reasons) => {
                    let retake = Identified {
                        outcome: Outcome::Retake,
                        subject: None,
                        reasons,
                        confidence: Confidence::Low,
                    };
                    return self.finish_identify(request, retake, 0, Vec::new());
                }
                Presented::Face { liveness: None, .. } => {
                    return Err(Error::new(
                        ErrorKind::Inference,
                        "liveness was not scored for an identification",
                    ));
                }
            };
        if !decision::is_live(liveness.score, self.config().decisions.liveness_threshold) {
            self.attempts.record_failure("", request.terminal, now_ms)?;
            return self.finish_identify(
                request,
                unidentified(Outcome::Reject, "liveness_failed"),
                0,
                Vec::new(),
            );
        }
        let model = self.engine.face().embedder().spec().embedding_space();
        let probe = self.vault.protect(embedding.embedding.values())?;
        let (ranked, gallery_size) = self.scan_gallery(&model, &probe, request.top_k.max(1))?;
        let candidates: Vec<Candidate> = ranked
            .into_iter()
            .map(|s| Candidate {
                subject: s.subject,
                score: f64::from(s.score),
            })
            .collect();
        let model = self.engine.face().embedder().spec().embedding_space();
        let calibration = self.calibrations.get(&model)?;
        let per_comparison = self.config().decisions.identify_fpir / gallery_size.max(1) as f64;
        let threshold = match calibration.threshold_at(per_comparison) {
            Ok(t) => t,
            Err(_) => {
                // The gallery outgrew the calibration: hold to its strictest point.
                tracing::warn!(
                    gallery = gallery_size,
                    "identification threshold beyond the calibration; using its strictest point"
                );
                calibration
                    .points
                    .last()
                    .map_or(f64::INFINITY, |p| p.threshold)
            }
        };
        let best = candidates.first();
        let identified = decision::identification(
            best.map(|c| (c.subject.as_str(), c.score)),
            threshold,
            best.map_or(f64::NEG_INFINITY, |c| calibration.llr(c.score)),
            gallery_size,
        );
        let listed = if self.config().dangerous_settings().research_scores() {
            candidates.into_iter().take(request.top_k).collect()
        } else {
            Vec::new()
        };
        self.finish_identify(request, identified, gallery_size, listed)
    }

    /// The `k` best subjects for `probe` (in the vault's protected space) in the 1:N gallery,
    /// made on first use and made again when another writer changed the store; and how many
    /// subjects the gallery holds.
    fn scan_gallery(
        &self,
        model: &str,
        probe: &[f32],
        k: usize,
    ) -> Result<(Vec<crate::gallery::Scored>, usize)> {
        let revision = self.vault.store().revision()?;
        {
            let held = self
                .gallery
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((gallery, at)) = held.as_ref()
                && *at == revision
                && gallery.model_id() == model
            {
                return Ok((gallery.top(probe, k)?, gallery.subject_count()));
            }
        }
        let mut held = self
            .gallery
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = crate::gallery::Gallery::open(&self.vault, model, probe.len())?;
        let found = (fresh.top(probe, k)?, fresh.subject_count());
        *held = Some((fresh, revision));
        Ok(found)
    }

    fn finish_identify(
        &self,
        request: &IdentifyRequest<'_>,
        identified: Identified,
        gallery: usize,
        candidates: Vec<Candidate>,
    ) -> Result<Identification> {
        let mut event = AuditEvent::new(AuditKind::Identify, identified.outcome.as_str())
            .terminal(request.terminal)
            .detail("reasons", identified.reasons.clone())
            .detail("gallery", gallery);
        if let Some(subject) = &identified.subject {
            event = event.subject(subject.as_str());
        }
        self.audit.append(event)?;
        Ok(Identification {
            outcome: identified.outcome,
            subject: identified.subject,
            reasons: identified.reasons,
            confidence: identified.confidence,
            gallery,
            candidates,
        })
    }
}
