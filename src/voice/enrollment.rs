//! Voice enrollment and passphrase verification against the template vault, with the voice
//! encoder as the speaker model.
//!
//! An enrollment stores two encrypted templates for the subject: the voiceprint (the mean
//! encoder embedding of all the subject's recordings, modality `voice`) and the enrolled
//! digits (every take of 0–9, frame by frame, modality `passphrase`). Examining a response loads
//! both, ranks the spoken digits against the challenge and scores the response's embedding, in
//! the vault's protected space, against the voiceprint; the decision module judges the result.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::embedding::Embedding;
use crate::error::{Error, ErrorKind, Result};
use crate::template::{Modality, Template, TemplateHeader};
use crate::vault::TemplateVault;
use crate::voice::audio::Audio;
use crate::voice::audio::join_recordings;
use crate::voice::digits::DigitTemplates;
use crate::voice::encoder::VoiceEncoder;
use crate::voice::passphrase::{PassphraseEvidence, PassphraseVerifier};

/// The digit templates' format and front end, bound into their templates.
pub const DIGITS_MODEL_ID: &str = "digits-dtw-mfcc13d@1";

/// What an enrollment stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VoiceEnrollment {
    /// The voiceprint template's id in the store.
    pub voiceprint_id: i64,
    /// The digit template's id in the store.
    pub digits_id: i64,
    /// Takes enrolled per digit, 0–9.
    pub digit_takes: [usize; 10],
    /// Seconds of audio behind the voiceprint.
    pub seconds: f32,
}

/// Voice enrollment and passphrase verification over a vault.
#[derive(Debug)]
pub struct VoiceService<'a> {
    encoder: &'a VoiceEncoder,
    vault: &'a TemplateVault,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl<'a> VoiceService<'a> {
    /// The service over `encoder` and `vault`.
    pub fn new(encoder: &'a VoiceEncoder, vault: &'a TemplateVault) -> Self {
        VoiceService { encoder, vault }
    }

    fn verifier(&self) -> Result<PassphraseVerifier<'a>> {
        PassphraseVerifier::new(self.encoder)
    }

    /// Enrolls `subject`: every digit 0–9 at least once in `digits` (`(digit, recording of
    /// that digit alone)`; three or more takes each recognise better), and optionally free
    /// `speech` for the voiceprint (the digit takes are always part of it).
    pub fn enroll(
        &self,
        subject: &str,
        speech: &[Audio],
        digits: &[(u8, Audio)],
    ) -> Result<VoiceEnrollment> {
        let verifier = self.verifier()?;
        let mut templates = DigitTemplates::new();
        for (i, (digit, audio)) in digits.iter().enumerate() {
            let features = verifier.front_end().single(audio).map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("digit recording {} ({digit}): {}", i + 1, e.message()),
                )
            })?;
            templates.add(*digit, &features)?;
        }
        templates.check_complete()?;
        let mut recordings: Vec<&Audio> = speech.iter().collect();
        recordings.extend(digits.iter().map(|(_, a)| a));
        let joined = join_recordings(&recordings, 0.2)?;
        let voiceprint = self.encoder.embed(&joined)?;

        let mut encoder_sha = [0u8; 32];
        hex::decode_to_slice(&self.encoder.spec().sha256, &mut encoder_sha)
            .map_err(|_| Error::new(ErrorKind::Manifest, "the encoder's sha256 is not hex"))?;
        let voice = Template::new(
            TemplateHeader {
                modality: Modality::Voice,
                model_id: self.encoder.id().to_string(),
                model_sha256: encoder_sha,
                dimension: 0,
                samples: recordings.len() as u32,
                quality: 1.0,
                created_unix: now_unix(),
            },
            voiceprint.values().to_vec(),
        )?;
        let digit_values = templates.to_values();
        let passphrase = Template::new(
            TemplateHeader {
                modality: Modality::Passphrase,
                model_id: DIGITS_MODEL_ID.to_string(),
                model_sha256: Sha256::digest(DIGITS_MODEL_ID.as_bytes()).into(),
                dimension: 0,
                samples: digits.len() as u32,
                quality: 1.0,
                created_unix: now_unix(),
            },
            digit_values,
        )?;
        let voiceprint_id = self.vault.enroll(subject, &voice)?;
        let digits_id = self.vault.enroll(subject, &passphrase)?;
        Ok(VoiceEnrollment {
            voiceprint_id,
            digits_id,
            digit_takes: templates.counts(),
            seconds: joined.seconds(),
        })
    }

    /// Examines `response` as `subject` speaking `expected` (the challenge's digits; the
    /// caller redeems the challenge): the ranks of the digits against the subject's newest
    /// digit enrollment, and the best speaker score over their voiceprints. Evidence only.
    pub fn examine(
        &self,
        subject: &str,
        expected: &str,
        response: &Audio,
    ) -> Result<PassphraseEvidence> {
        let verifier = self.verifier()?;
        let digit_templates = self
            .vault
            .load(subject, Modality::Passphrase, DIGITS_MODEL_ID)?;
        let newest = digit_templates.last().ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "no passphrase enrollment for this subject",
            )
        })?;
        let digits = DigitTemplates::from_values(newest.values())?;
        let check = verifier.check_digits(expected, response, &digits)?;

        let voiceprints = self
            .vault
            .load(subject, Modality::Voice, self.encoder.id())?;
        let probe = self.encoder.embed(response)?;
        let probe = Embedding::from_raw(self.vault.protect(probe.values())?)?;
        let mut best = f64::NEG_INFINITY;
        for t in &voiceprints {
            let enrolled = Embedding::from_raw(t.values().to_vec())?;
            best = best.max(f64::from(enrolled.cosine(&probe)?));
        }
        Ok(check.with_speaker_score(best))
    }
}
