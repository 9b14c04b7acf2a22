//! What the authenticator is asked and what it answers: requests, decisions, reports.

use std::time::Duration;

use serde::Serialize;

use crate::decision::{Confidence, Outcome};
use crate::face::challenge::MovementChallenge;
use crate::policy::{Factor, Transaction};
use crate::voice::enrollment::VoiceEnrollment;
use crate::voice::passphrase::Challenge;

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
    /// The response to a movement challenge ([`crate::authenticator::Authenticator::liveness_challenge`]),
    /// when the policy asks for active liveness.
    pub active: Option<ActiveResponse<'a>>,
}

/// A response to a movement challenge: the frames the terminal filmed while the customer
/// moved, with their capture times.
#[derive(Clone, Copy, Debug)]
pub struct ActiveResponse<'a> {
    /// The challenge answered.
    pub challenge_id: &'a str,
    /// The frames (image bytes, one camera, in capture order).
    pub frames: &'a [&'a [u8]],
    /// Each frame's capture time in seconds (any origin), increasing.
    pub times: &'a [f64],
}

/// Raw scores, only with `dangerous.research_scores`.
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
    /// Whether the terminal was offline (its fleet store unreachable) when it decided; the
    /// receipt and the audit record say so too.
    pub offline: bool,
    /// The velocity rules that only alert and that this payment went past (also in the audit
    /// record).
    pub velocity_alerts: Vec<String>,
    /// Raw scores (research mode only).
    pub scores: Option<ResearchScores>,
    /// Where the decision's time went.
    pub timings: Timings,
}

/// Where a decision's time went, in milliseconds per stage (0 for a stage that did not run).
/// Not secret: no score, no biometric value; for benchmarks (`vouch bench verify`) and
/// metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Image and audio bytes to pixels and samples.
    pub decode_ms: f64,
    /// One detection per frame and the face's quality measurements.
    pub observe_ms: f64,
    /// Passive liveness, and the active challenge's response when there is one.
    pub liveness_ms: f64,
    /// Alignment and the face embedding.
    pub embed_ms: f64,
    /// The subject's face templates opened and compared with the probe.
    pub match_ms: f64,
    /// The spoken passphrase: digits and speaker models.
    pub voice_ms: f64,
    /// The receipt signed and the audit record written (durably).
    pub record_ms: f64,
    /// The whole decision, from the request to the signed, recorded decision.
    pub total_ms: f64,
}

impl Timings {
    /// Milliseconds since `start`.
    pub(crate) fn since(start: std::time::Instant) -> f64 {
        start.elapsed().as_secs_f64() * 1e3
    }
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
    /// The ten digits said in order, "0 1 2 … 9", one sequence per recording: one or two
    /// make the passphrase enrollment (and the voiceprint).
    pub digit_sequences: &'a [&'a [u8]],
    /// Digits spoken alone, `(digit, recording)`: beside the sequences, or instead of them
    /// when every digit 0–9 is there.
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

/// A movement challenge request's answer.
#[derive(Clone, Debug, Serialize)]
pub enum LivenessChallengeOutcome {
    /// The policy needs active liveness for this transaction: make these movements.
    Issued(MovementChallenge),
    /// The policy does not need it for this transaction (or refuses it outright).
    NotRequired {
        /// The tier that applied.
        tier: Option<String>,
    },
}

/// A spoken challenge request's answer.
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
