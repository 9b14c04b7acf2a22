//! The gRPC service: converts a request, calls the [`Authenticator`] on a worker, converts
//! back. Nothing here decides anything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Code, Request, Response, Status};

use super::auth::Terminal;
use super::metrics::Metrics;
use super::proto as pb;
use super::requests;
use super::workers::{Refused, WorkerPool};
use crate::authenticator::{
    ActiveResponse, Authenticator, ChallengeOutcome, Decision, EnrollRequest, IdentifyRequest,
    LivenessChallengeOutcome, Outcome, VerifyRequest,
};
use crate::decision::Confidence;
use crate::error::{Error, ErrorKind};
use crate::policy::Factor;

/// The `vouch.v1.Vouch` service.
pub struct VouchService {
    pub(super) authenticator: Arc<Authenticator>,
    pub(super) workers: Arc<WorkerPool>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) timeout: Duration,
}

/// The trailer naming the library's [`ErrorKind`] of a refused request (`image_decode`,
/// `challenge_invalid`…), so a terminal can tell "capture again" from "fix the request"
/// without parsing messages. Only on client errors: server-side kinds stay in the log.
pub const ERROR_KIND_METADATA: &str = "vouch-error-kind";

/// The gRPC code of a library error, and a message fit for the client. Client errors say
/// what was wrong with the request (and carry [`ERROR_KIND_METADATA`]); server-side failures
/// say nothing about internals (the detail goes to the daemon's log).
pub fn status_of(err: &Error) -> Status {
    use ErrorKind::*;
    let code = match err.kind() {
        InvalidInput | ImageDecode | ImageTooLarge | ImageTooSmall | NoFace | AudioDecode
        | AudioTooLong | AudioTooShort | AudioSilent | AudioClipped | PassphraseTokens => {
            Code::InvalidArgument
        }
        NotFound => Code::NotFound,
        ChallengeInvalid | TemplateModelMismatch => Code::FailedPrecondition,
        StorageFull => Code::ResourceExhausted,
        _ => Code::Internal,
    };
    if err.kind() == StorageFull {
        // Nothing was stored, and no decision was returned without its audit record: the
        // terminal may retry once the operator has freed space.
        tracing::error!(kind = %err.kind(), "request failed: {err:#}");
        Status::new(
            code,
            "the daemon's storage is full: nothing was stored and no decision was made; retry once space is freed",
        )
    } else if code == Code::Internal {
        tracing::error!(kind = %err.kind(), "request failed: {err:#}");
        Status::new(code, "internal error; see the daemon's log")
    } else {
        let mut status = Status::new(code, err.message().to_string());
        status.metadata_mut().insert(
            ERROR_KIND_METADATA,
            tonic::metadata::MetadataValue::from_static(err.kind().as_str()),
        );
        status
    }
}

fn decision(outcome: Outcome) -> pb::Decision {
    match outcome {
        Outcome::Accept => pb::Decision::Accept,
        Outcome::Reject => pb::Decision::Reject,
        Outcome::StepUp => pb::Decision::StepUp,
        Outcome::Retake => pb::Decision::Retake,
        Outcome::Locked => pb::Decision::Locked,
    }
}

fn confidence(c: Confidence) -> pb::Confidence {
    match c {
        Confidence::Low => pb::Confidence::Low,
        Confidence::Medium => pb::Confidence::Medium,
        Confidence::High => pb::Confidence::High,
    }
}

fn factor(f: &Factor) -> String {
    f.as_str().to_string()
}

fn verify_response(d: Decision) -> pb::VerifyResponse {
    pb::VerifyResponse {
        decision: decision(d.outcome) as i32,
        reasons: d.reasons,
        confidence: confidence(d.confidence) as i32,
        policy_tier: d.tier.unwrap_or_default(),
        factors_required: d.required.iter().map(factor).collect(),
        factors_used: d.used.iter().map(factor).collect(),
        retry_after_seconds: d
            .retry_after
            .map_or(0, |r| u32::try_from(r.as_secs().max(1)).unwrap_or(u32::MAX)),
        receipt: d.receipt,
        offline: d.offline,
        velocity_alerts: d.velocity_alerts,
        scores: d.scores.map(|s| pb::Scores {
            face: s.face,
            face_threshold: s.face_threshold,
            liveness: s.liveness,
            voice: s.voice,
            voice_threshold: s.voice_threshold,
            fused_llr: s.fused_llr,
        }),
    }
}

impl VouchService {
    /// Authorises, runs `work` on a worker within the deadline, counts the outcome.
    async fn call<T: Send + 'static>(
        &self,
        method: &'static str,
        terminal: Result<Terminal, Status>,
        deadline: Option<Duration>,
        work: impl FnOnce(Arc<Authenticator>, Terminal) -> crate::Result<T> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let started = Instant::now();
        let mut worked = None;
        let result = async {
            let terminal = terminal?;
            terminal.allow(method)?;
            let budget = deadline.map_or(self.timeout, |d| d.min(self.timeout));
            let authenticator = Arc::clone(&self.authenticator);
            match self
                .workers
                .run(started + budget, move || {
                    let start = Instant::now();
                    let done = work(authenticator, terminal);
                    (done, start - started, start.elapsed())
                })
                .await
            {
                Ok((done, waited, took)) => {
                    worked = Some((waited, took));
                    done.map(Response::new).map_err(|e| status_of(&e))
                }
                Err(Refused::Busy) => Err(Status::resource_exhausted(
                    "too many requests in flight; retry shortly",
                )),
                Err(Refused::Expired) => Err(Status::deadline_exceeded(
                    "the deadline passed before a worker was free",
                )),
                Err(Refused::Closed) => Err(Status::unavailable("the daemon is shutting down")),
            }
        }
        .await;
        let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        self.metrics
            .request(method, code, started.elapsed(), worked);
        result
    }
}

fn unix_seconds(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The client's deadline (`grpc-timeout`), if it sent one.
fn deadline<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[tonic::async_trait]
impl pb::vouch_server::Vouch for VouchService {
    async fn enroll(
        &self,
        request: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        let (terminal, limit) = (Terminal::of(&request), deadline(&request));
        let message = request.into_inner();
        let response = self
            .call("Enroll", terminal, limit, move |auth, terminal| {
                let input = requests::enroll_input(&message)?;
                let report = auth.enroll(&EnrollRequest {
                    subject: &message.subject,
                    terminal: terminal.name(),
                    face: &input.face,
                    speech: &input.speech,
                    digits: &input.digits,
                    digit_sequences: &input.digit_sequences,
                })?;
                Ok(pb::EnrollResponse {
                    decision: decision(report.outcome) as i32,
                    face_enrolled: report.face_template.is_some(),
                    samples: report
                        .samples
                        .into_iter()
                        .map(|s| pb::SampleVerdict {
                            index: s.index as u32,
                            accepted: s.accepted,
                            reasons: s.reasons,
                        })
                        .collect(),
                    voice_enrolled: report.voice.is_some(),
                })
            })
            .await?;
        self.metrics.decision(
            "Enroll",
            pb::Decision::try_from(response.get_ref().decision)
                .map_or("unknown", |d| d.as_str_name()),
        );
        Ok(response)
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let (terminal, limit) = (Terminal::of(&request), deadline(&request));
        let message = request.into_inner();
        let response = self
            .call("Verify", terminal, limit, move |auth, terminal| {
                let input = requests::verify_input(&message)?;
                let d = auth.verify(&VerifyRequest {
                    subject: &message.subject,
                    terminal: terminal.name(),
                    transaction: &input.transaction,
                    face_frames: &input.frames,
                    voice: input.voice,
                    active: input.movement.as_ref().map(|m| ActiveResponse {
                        challenge_id: m.challenge_id,
                        frames: &m.frames,
                        times: &m.times,
                    }),
                })?;
                Ok(verify_response(d))
            })
            .await?;
        self.metrics.decision(
            "Verify",
            pb::Decision::try_from(response.get_ref().decision)
                .map_or("unknown", |d| d.as_str_name()),
        );
        for rule in &response.get_ref().velocity_alerts {
            self.metrics.velocity_alert(rule);
        }
        Ok(response)
    }

    async fn identify(
        &self,
        request: Request<pb::IdentifyRequest>,
    ) -> Result<Response<pb::IdentifyResponse>, Status> {
        let (terminal, limit) = (Terminal::of(&request), deadline(&request));
        let message = request.into_inner();
        self.call("Identify", terminal, limit, move |auth, terminal| {
            let frames = requests::frames(&message.frames)?;
            let found = auth.identify(&IdentifyRequest {
                terminal: terminal.name(),
                face_frames: &frames,
                top_k: message.top_k.min(100) as usize,
            })?;
            Ok(pb::IdentifyResponse {
                decision: decision(found.outcome) as i32,
                subject: found.subject.unwrap_or_default(),
                reasons: found.reasons,
                confidence: confidence(found.confidence) as i32,
                gallery_size: u32::try_from(found.gallery).unwrap_or(u32::MAX),
                candidates: found
                    .candidates
                    .into_iter()
                    .map(|c| pb::Candidate {
                        subject: c.subject,
                        score: c.score,
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn challenge(
        &self,
        request: Request<pb::ChallengeRequest>,
    ) -> Result<Response<pb::ChallengeResponse>, Status> {
        let (terminal, limit) = (Terminal::of(&request), deadline(&request));
        let message = request.into_inner();
        self.call("Challenge", terminal, limit, move |auth, terminal| {
            let tx = requests::transaction(message.transaction.as_ref())?;
            Ok(
                match auth.challenge(&message.subject, terminal.name(), &tx)? {
                    ChallengeOutcome::Issued(c) => pb::ChallengeResponse {
                        required: true,
                        expires_unix: unix_seconds(c.expires_at),
                        challenge_id: c.id,
                        digits: c.digits,
                        policy_tier: String::new(),
                    },
                    ChallengeOutcome::NotRequired { tier } => pb::ChallengeResponse {
                        required: false,
                        policy_tier: tier.unwrap_or_default(),
                        ..Default::default()
                    },
                },
            )
        })
        .await
    }

    async fn liveness_challenge(
        &self,
        request: Request<pb::LivenessChallengeRequest>,
    ) -> Result<Response<pb::LivenessChallengeResponse>, Status> {
        let (terminal, limit) = (Terminal::of(&request), deadline(&request));
        let message = request.into_inner();
        self.call(
            "LivenessChallenge",
            terminal,
            limit,
            move |auth, terminal| {
                let tx = requests::transaction(message.transaction.as_ref())?;
                Ok(
                    match auth.liveness_challenge(&message.subject, terminal.name(), &tx)? {
                        LivenessChallengeOutcome::Issued(c) => pb::LivenessChallengeResponse {
                            required: true,
                            challenge_id: c.id,
                            movements: c
                                .actions
                                .iter()
                                .map(|&m| requests::movement(m) as i32)
                                .collect(),
                            prompts: c.actions.iter().map(|m| m.prompt().to_string()).collect(),
                            expires_unix: unix_seconds(c.expires_at),
                            policy_tier: String::new(),
                        },
                        LivenessChallengeOutcome::NotRequired { tier } => {
                            pb::LivenessChallengeResponse {
                                required: false,
                                policy_tier: tier.unwrap_or_default(),
                                ..Default::default()
                            }
                        }
                    },
                )
            },
        )
        .await
    }

    async fn delete_subject(
        &self,
        request: Request<pb::DeleteSubjectRequest>,
    ) -> Result<Response<pb::DeleteSubjectResponse>, Status> {
        let (terminal, limit) = (Terminal::of(&request), deadline(&request));
        let message = request.into_inner();
        self.call("DeleteSubject", terminal, limit, move |auth, terminal| {
            let deleted = auth.delete_subject(&message.subject, terminal.name())?;
            Ok(pb::DeleteSubjectResponse {
                templates_deleted: u32::try_from(deleted).unwrap_or(u32::MAX),
            })
        })
        .await
    }

    async fn get_subject(
        &self,
        request: Request<pb::GetSubjectRequest>,
    ) -> Result<Response<pb::GetSubjectResponse>, Status> {
        let (terminal, limit) = (Terminal::of(&request), deadline(&request));
        let message = request.into_inner();
        self.call("GetSubject", terminal, limit, move |auth, _| {
            let s = auth.subject(&message.subject)?;
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            Ok(pb::GetSubjectResponse {
                subject: s.subject,
                face_templates: count(s.face),
                voice_templates: count(s.voice),
                passphrase_templates: count(s.passphrase),
            })
        })
        .await
    }

    async fn get_receipt_key(
        &self,
        request: Request<pb::GetReceiptKeyRequest>,
    ) -> Result<Response<pb::GetReceiptKeyResponse>, Status> {
        let (terminal, limit) = (Terminal::of(&request), deadline(&request));
        self.call("GetReceiptKey", terminal, limit, move |auth, _| {
            Ok(pb::GetReceiptKeyResponse {
                public_key_hex: auth.signer().public_key_hex(),
                key_id: auth.signer().key_id().to_string(),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_leak_nothing() {
        let e = Error::new(ErrorKind::Store, "database /secret/path is locked");
        let status = status_of(&e);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
        assert!(status.metadata().get(ERROR_KIND_METADATA).is_none());
        let refused = status_of(&Error::new(ErrorKind::ImageDecode, "bad"));
        assert_eq!(
            refused.metadata().get(ERROR_KIND_METADATA).unwrap(),
            "image_decode"
        );
        assert_eq!(
            status_of(&Error::new(ErrorKind::ChallengeInvalid, "used")).code(),
            Code::FailedPrecondition
        );
        assert_eq!(
            status_of(&Error::new(ErrorKind::ImageDecode, "bad")).code(),
            Code::InvalidArgument
        );
        let full = status_of(&Error::new(
            ErrorKind::StorageFull,
            "appending to /secret/audit.log: File too large",
        ));
        assert_eq!(full.code(), Code::ResourceExhausted);
        assert!(!full.message().contains("secret"), "{}", full.message());
    }

    #[test]
    fn grpc_timeouts_parse() {
        let mut r = Request::new(());
        r.metadata_mut()
            .insert("grpc-timeout", "250m".parse().unwrap());
        assert_eq!(deadline(&r), Some(Duration::from_millis(250)));
        r.metadata_mut()
            .insert("grpc-timeout", "x".parse().unwrap());
        assert_eq!(deadline(&r), None);
    }
}
