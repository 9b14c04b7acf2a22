//! The gRPC service: converts a request, calls the [`Authenticator`] on a worker, converts
//! back. Nothing here decides anything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Code, Request, Response, Status};

use super::auth::Terminal;
use super::metrics::Metrics;
use super::proto as pb;
use super::workers::{Refused, WorkerPool};
use crate::authenticator::{
    Authenticator, ChallengeOutcome, Decision, EnrollRequest, IdentifyRequest, Outcome,
    TransactionContext, VerifyRequest, VoiceResponse,
};
use crate::error::{Error, ErrorKind};
use crate::policy::{Factor, Transaction};
use crate::score::Confidence;

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

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

fn sniff_image(image: &pb::Image, what: &str) -> crate::Result<()> {
    let declared = pb::ImageFormat::try_from(image.format)
        .map_err(|_| invalid(format!("{what}: unknown image format {}", image.format)))?;
    let actual = if image.data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(pb::ImageFormat::Jpeg)
    } else if image.data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(pb::ImageFormat::Png)
    } else {
        None
    };
    match (declared, actual) {
        (pb::ImageFormat::Unspecified, _) => Ok(()),
        (declared, Some(actual)) if declared == actual => Ok(()),
        (declared, _) => Err(Error::new(
            ErrorKind::ImageDecode,
            format!(
                "{what}: declared {} but the bytes are not that format",
                declared.as_str_name()
            ),
        )),
    }
}

fn sniff_audio(audio: &pb::Audio, what: &str) -> crate::Result<()> {
    let declared = pb::AudioFormat::try_from(audio.format)
        .map_err(|_| invalid(format!("{what}: unknown audio format {}", audio.format)))?;
    let actual = if audio.data.starts_with(b"RIFF") && audio.data.get(8..12) == Some(b"WAVE") {
        Some(pb::AudioFormat::Wav)
    } else if audio.data.starts_with(b"fLaC") {
        Some(pb::AudioFormat::Flac)
    } else {
        None
    };
    match (declared, actual) {
        (pb::AudioFormat::Unspecified, _) => Ok(()),
        (declared, Some(actual)) if declared == actual => Ok(()),
        (declared, _) => Err(Error::new(
            ErrorKind::AudioDecode,
            format!(
                "{what}: declared {} but the bytes are not that format",
                declared.as_str_name()
            ),
        )),
    }
}

fn images<'a>(images: &'a [pb::Image], what: &str) -> crate::Result<Vec<&'a [u8]>> {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            sniff_image(image, &format!("{what} {}", i + 1))?;
            Ok(image.data.as_slice())
        })
        .collect()
}

fn transaction(tx: Option<pb::Transaction>) -> crate::Result<TransactionContext> {
    let tx = tx.ok_or_else(|| invalid("the request has no transaction"))?;
    let mcc = (!tx.merchant_category.is_empty()).then_some(tx.merchant_category.as_str());
    Ok(TransactionContext {
        transaction: Transaction::new(tx.amount_minor, &tx.currency, mcc)?,
        id: tx.id,
        nonce: tx.nonce,
    })
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
    match f {
        Factor::Face => "face",
        Factor::Liveness => "liveness",
        Factor::Voice => "voice",
    }
    .to_string()
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
        let result = async {
            let terminal = terminal?;
            terminal.allow(method)?;
            let budget = deadline.map_or(self.timeout, |d| d.min(self.timeout));
            let authenticator = Arc::clone(&self.authenticator);
            match self
                .workers
                .run(started + budget, move || work(authenticator, terminal))
                .await
            {
                Ok(Ok(value)) => Ok(Response::new(value)),
                Ok(Err(e)) => Err(status_of(&e)),
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
        self.metrics.request(method, code, started.elapsed());
        result
    }
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
                let face = images(&message.face, "face sample")?;
                let speech = message
                    .speech
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        sniff_audio(a, &format!("speech {}", i + 1))?;
                        Ok(a.data.as_slice())
                    })
                    .collect::<crate::Result<Vec<_>>>()?;
                let digits =
                    message
                        .digits
                        .iter()
                        .enumerate()
                        .map(|(i, d)| {
                            let audio = d.audio.as_ref().ok_or_else(|| {
                                invalid(format!("digit recording {} has no audio", i + 1))
                            })?;
                            sniff_audio(audio, &format!("digit recording {}", i + 1))?;
                            let digit = u8::try_from(d.digit).ok().filter(|d| *d <= 9).ok_or_else(
                                || {
                                    invalid(format!(
                                        "digit recording {}: {} is not a digit",
                                        i + 1,
                                        d.digit
                                    ))
                                },
                            )?;
                            Ok((digit, audio.data.as_slice()))
                        })
                        .collect::<crate::Result<Vec<_>>>()?;
                let report = auth.enroll(&EnrollRequest {
                    subject: &message.subject,
                    terminal: terminal.name(),
                    face: &face,
                    speech: &speech,
                    digits: &digits,
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
                let tx = transaction(message.transaction)?;
                let frames = images(&message.frames, "frame")?;
                let voice = match &message.voice {
                    Some(v) => {
                        let audio = v
                            .audio
                            .as_ref()
                            .ok_or_else(|| invalid("the voice response has no audio"))?;
                        sniff_audio(audio, "voice response")?;
                        Some(VoiceResponse {
                            challenge_id: &v.challenge_id,
                            audio: &audio.data,
                        })
                    }
                    None => None,
                };
                let d = auth.verify(&VerifyRequest {
                    subject: &message.subject,
                    terminal: terminal.name(),
                    transaction: &tx,
                    face_frames: &frames,
                    voice,
                })?;
                Ok(verify_response(d))
            })
            .await?;
        self.metrics.decision(
            "Verify",
            pb::Decision::try_from(response.get_ref().decision)
                .map_or("unknown", |d| d.as_str_name()),
        );
        Ok(response)
    }

    async fn identify(
        &self,
        request: Request<pb::IdentifyRequest>,
    ) -> Result<Response<pb::IdentifyResponse>, Status> {
        let (terminal, limit) = (Terminal::of(&request), deadline(&request));
        let message = request.into_inner();
        self.call("Identify", terminal, limit, move |auth, terminal| {
            let frames = images(&message.frames, "frame")?;
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
            let tx = transaction(message.transaction)?;
            Ok(
                match auth.challenge(&message.subject, terminal.name(), &tx)? {
                    ChallengeOutcome::Issued(c) => pb::ChallengeResponse {
                        required: true,
                        expires_unix: c
                            .expires_at
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs() as i64),
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
    fn declared_formats_must_match_the_bytes() {
        let jpeg = pb::Image {
            data: vec![0xFF, 0xD8, 0xFF, 0xE0],
            format: pb::ImageFormat::Png as i32,
        };
        assert!(sniff_image(&jpeg, "f").is_err());
        let unknown = pb::Image {
            data: vec![1, 2],
            format: 99,
        };
        assert!(sniff_image(&unknown, "f").is_err());
        let wav = pb::Audio {
            data: b"RIFF\0\0\0\0WAVEfmt ".to_vec(),
            format: pb::AudioFormat::Wav as i32,
        };
        assert!(sniff_audio(&wav, "a").is_ok());
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
