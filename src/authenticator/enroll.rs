//! Enrollment: face samples through the quality gate and liveness into one sealed template,
//! and the voice (voiceprint and digits) when given.

use serde_json::Value;

use super::{
    Authenticator, EnrollReport, EnrollRequest, Presented, SampleVerdict, Timings, check_id,
};
use crate::audit::{AuditEvent, AuditKind};
use crate::decision::{self, Outcome};
use crate::error::{Error, ErrorKind, Result};
use crate::vault::Protection;
use crate::voice::audio::Audio;
use crate::voice::enrollment::VoiceInput;

impl Authenticator {
    /// Enrolls a subject: each face sample observed once, through the quality gate and
    /// liveness, the accepted ones averaged into one template; voice when given.
    pub fn enroll(&self, request: &EnrollRequest<'_>) -> Result<EnrollReport> {
        check_id("subject", request.subject)?;
        check_id("terminal", request.terminal)?;
        let has_voice = !request.digits.is_empty() || !request.digit_sequences.is_empty();
        if request.face.is_empty() && !has_voice {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "an enrollment needs face images, or the digits 0 to 9 spoken for voice",
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
        let images = self.engine.decode_images(request.face, "face sample")?;
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
        let sequences = request
            .digit_sequences
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                Audio::decode(bytes, limits).map_err(|e| {
                    Error::new(
                        e.kind(),
                        format!("digit sequence {}: {}", i + 1, e.message()),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if !speech.is_empty() && !has_voice {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "speech without digits: voice enrollment needs the digits 0 to 9 spoken",
            ));
        }

        // The voice first: a digit sequence to say again must leave nothing stored.
        let prepared_voice = if has_voice {
            let service = self.voice_service()?;
            let prepared = service.prepare(&VoiceInput {
                speech: &speech,
                sequences: &sequences,
                single_digits: &digits,
            })?;
            Some((service, prepared))
        } else {
            None
        };

        let threshold = self.config().decisions.liveness_threshold;
        let mut samples = Vec::with_capacity(images.len());
        // Per sample accepted: the embedder's embedding, then each fused embedder's.
        let mut embeddings: Vec<crate::face::PresentedEmbedding> = Vec::new();
        let mut quality = 0.0;
        for (index, image) in images.iter().enumerate() {
            let (accepted, reasons) = match self.present(
                std::slice::from_ref(image),
                true,
                true,
                &mut Timings::default(),
            )? {
                Presented::Retake(reasons) => (false, reasons),
                Presented::Face {
                    liveness,
                    embedding,
                } => {
                    let score = liveness.map_or(0.0, |l| l.score);
                    let (accepted, reasons) =
                        decision::enrollment_sample(Vec::new(), score, threshold);
                    if accepted {
                        quality += score;
                        embeddings.push(embedding);
                    }
                    (accepted, reasons)
                }
            };
            samples.push(SampleVerdict {
                index,
                accepted,
                reasons,
            });
        }
        let face_templates = if embeddings.is_empty() {
            Vec::new()
        } else {
            self.store_face(request.subject, &embeddings, quality)?
        };
        let face_template = face_templates.first().copied();
        let voice = prepared_voice
            .map(|(service, prepared)| service.store(request.subject, &prepared))
            .transpose()?;
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
                .detail("face_templates", face_templates)
                .detail("face_samples", images.len())
                .detail("retake", retakes)
                .detail(
                    "voice_templates",
                    voice
                        .as_ref()
                        .map(|v| serde_json::json!({"voiceprints": v.voiceprint_ids, "digits": v.digits_id})),
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

    /// Stores one template per configured embedder, each the mean of the accepted samples'
    /// embeddings by that model (the embedder's first, whose id the report gives), in one
    /// atomic write.
    fn store_face(
        &self,
        subject: &str,
        samples: &[crate::face::PresentedEmbedding],
        quality: f32,
    ) -> Result<Vec<i64>> {
        let count = samples.len();
        let quality = quality / count as f32;
        let face = self.engine.face();
        let primary: Vec<_> = samples.iter().map(|s| s.embedding.clone()).collect();
        let mut templates = vec![crate::engine::face_template(
            face.embedder().spec(),
            &primary,
            count,
            quality,
        )?];
        let mut by_model = vec![Vec::with_capacity(count); face.fused_embedders().len()];
        for sample in samples {
            for (column, m) in by_model.iter_mut().zip(&sample.fused) {
                column.push(m.embedding.clone());
            }
        }
        for (embedder, embeddings) in face.fused_embedders().iter().zip(&by_model) {
            templates.push(crate::engine::face_template(
                embedder.spec(),
                embeddings,
                count,
                quality,
            )?);
        }
        let sealed: Vec<_> = templates
            .iter()
            .map(|t| (t, Protection::Renewable))
            .collect();
        let ids = self.vault.enroll_all(subject, &sealed)?;
        self.refresh_gallery(subject)?;
        Ok(ids)
    }
}
