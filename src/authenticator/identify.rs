//! Open-set identification (1:N): the live face in front of the terminal against every
//! enrolled subject; the answer may be "nobody".

use std::time::Instant;

use super::{
    Authenticator, Candidate, Identification, IdentifyRequest, Presented, Timings, check_id,
};
use crate::audit::{AuditEvent, AuditKind};
use crate::decision::{self, Confidence, Identified, Lock, Outcome};
use crate::error::{Error, ErrorKind, Result};
use crate::store::SubjectSummary;

impl Authenticator {
    /// Identifies the face in front of the terminal among every enrolled subject (1:N,
    /// open-set): the best-matching subject if their score clears the threshold for
    /// `decisions.identify_fpir` over the gallery, otherwise nobody.
    pub fn identify(&self, request: &IdentifyRequest<'_>) -> Result<Identification> {
        check_id("terminal", request.terminal)?;
        let now = Instant::now();
        let unidentified = |outcome, reason: &str| Identified {
            outcome,
            subject: None,
            reasons: vec![reason.to_string()],
            confidence: Confidence::Low,
        };
        if let Some(Lock::Terminal { .. }) = self.attempts.check("", request.terminal, now) {
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
        let (liveness, embedding) = match self.present(&frames, true, &mut Timings::default())? {
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
            self.attempts.record_failure("", request.terminal, now);
            return self.finish_identify(
                request,
                unidentified(Outcome::Reject, "liveness_failed"),
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
            match self.best_face_score(&summary.subject, &embedding.embedding) {
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
        let model = self.engine.face().embedder().spec().embedding_space();
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
        let best = candidates.first();
        let identified = decision::identification(
            best.map(|c| (c.subject.as_str(), c.score)),
            threshold,
            best.map_or(f64::NEG_INFINITY, |c| calibration.llr(c.score)),
            gallery.len(),
        );
        let listed = if self.config().dangerous_settings().research_scores() {
            candidates.into_iter().take(request.top_k).collect()
        } else {
            Vec::new()
        };
        self.finish_identify(request, identified, gallery.len(), listed)
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
