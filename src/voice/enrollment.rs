//! Voice enrollment and passphrase examination against the template vault, with the voice
//! encoder as the speaker model.
//!
//! An enrollment stores two encrypted templates for the subject: the voiceprint (the encoder
//! embedding of all the subject's recordings joined, modality `voice`) and their digits (the
//! ten centroids of their own enrolled words in the digit head's space, modality
//! `passphrase`, replacing any earlier digits template). The digits come from one or two
//! sequences "0 1 2 … 9" said in order, or from single-digit recordings, or both. Examining a
//! response loads both, recognises the spoken digits with the head adapted to the subject
//! (the head alone for a template enrolled the old way) and scores the response's embedding, in
//! the vault's protected space, against the voiceprint; the decision module judges the result.

use serde::Serialize;
use zeroize::Zeroizing;

use crate::embedding::Embedding;
use crate::error::{Error, ErrorKind, Result};
use crate::template::{Modality, Template, TemplateHeader};
use crate::vault::TemplateVault;
use crate::voice::audio::{Audio, join_recordings};
use crate::voice::digit_head::{AdaptedDigitHead, DigitHead};
use crate::voice::digits::{DigitModel, LEGACY_DIGITS_MODEL_ID, SpokenDigits};
use crate::voice::encoder::VoiceEncoder;
use crate::voice::passphrase::{PassphraseEvidence, check_digits};
use crate::voice::speech_embedding::SpeechEmbedder;

/// Enrolled words: each digit with its features.
type Words = Vec<(u8, Zeroizing<Vec<f32>>)>;

/// Digit sequences ("0 1 2 … 9") an enrollment takes at most.
pub const MAX_SEQUENCES: usize = 4;

/// What a voice enrollment hears: recordings, not yet decoded checks.
#[derive(Clone, Copy, Debug, Default)]
pub struct VoiceInput<'a> {
    /// Free speech for the voiceprint only (optional).
    pub speech: &'a [Audio],
    /// The ten digits said in order, "0 1 2 … 9", once per recording (one or two).
    pub sequences: &'a [Audio],
    /// Single digits, each recording one digit alone (optional beside the sequences; enough
    /// alone when every digit is there).
    pub single_digits: &'a [(u8, Audio)],
}

/// What an enrollment stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VoiceEnrollment {
    /// The voiceprint template's id in the store.
    pub voiceprint_id: i64,
    /// The digit template's id in the store.
    pub digits_id: i64,
    /// Words enrolled per digit, 0–9.
    pub digit_takes: [usize; 10],
    /// Seconds of audio behind the voiceprint.
    pub seconds: f32,
}

/// Voice templates made by [`VoiceService::prepare`], not yet stored.
#[derive(Debug)]
pub struct PreparedVoice {
    voiceprint: Template,
    digits: Template,
    digit_takes: [usize; 10],
    seconds: f32,
}

/// Voice enrollment and passphrase examination over a vault.
#[derive(Debug)]
pub struct VoiceService<'a> {
    encoder: &'a VoiceEncoder,
    digits: SpokenDigits<'a>,
    vault: &'a TemplateVault,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl<'a> VoiceService<'a> {
    /// The service over the speaker `encoder`, the digit recogniser and `vault`.
    pub fn new(
        encoder: &'a VoiceEncoder,
        embedder: &'a SpeechEmbedder,
        head: &'a DigitHead,
        vault: &'a TemplateVault,
    ) -> Self {
        VoiceService {
            encoder,
            digits: SpokenDigits::new(embedder, head),
            vault,
        }
    }

    /// The words of an enrollment, as (digit, features): the sequences cut into their ten
    /// words, then the single digits whole; and how many words each digit has. Every digit
    /// must be there at least once.
    fn enrollment_words(&self, input: &VoiceInput<'_>) -> Result<(Words, [usize; 10])> {
        if input.sequences.len() > MAX_SEQUENCES {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "at most {MAX_SEQUENCES} digit sequences per enrollment, got {}",
                    input.sequences.len()
                ),
            ));
        }
        let mut words = Vec::new();
        for (i, sequence) in input.sequences.iter().enumerate() {
            let found = self.digits.enrollment_words(sequence).map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("digit sequence {}: {}", i + 1, e.message()),
                )
            })?;
            words.extend(found);
        }
        for (i, (digit, audio)) in input.single_digits.iter().enumerate() {
            if *digit > 9 {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("digit recording {}: {digit} is not a digit", i + 1),
                ));
            }
            let features = self.digits.features(audio.samples()).map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("digit recording {} ({digit}): {}", i + 1, e.message()),
                )
            })?;
            words.push((*digit, features));
        }
        let mut counts = [0usize; 10];
        words.iter().for_each(|(d, _)| counts[usize::from(*d)] += 1);
        if let Some(missing) = counts.iter().position(|&c| c == 0) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "no recording of digit {missing}: a voice enrollment needs the digits 0 to 9 (say them in order, or record each)"
                ),
            ));
        }
        Ok((words, counts))
    }

    /// Enrolls `subject`'s voice: [`VoiceService::prepare`] then [`VoiceService::store`].
    pub fn enroll(&self, subject: &str, input: &VoiceInput<'_>) -> Result<VoiceEnrollment> {
        let prepared = self.prepare(input)?;
        self.store(subject, &prepared)
    }

    /// The voice templates of an enrollment, made but not stored: the digits from `input`'s
    /// sequences and single digits, the voiceprint from all of its recordings. A caller
    /// storing other templates too prepares the voice first, so that a sequence to say again
    /// leaves nothing stored.
    pub fn prepare(&self, input: &VoiceInput<'_>) -> Result<PreparedVoice> {
        let (words, digit_takes) = self.enrollment_words(input)?;
        let head = self.digits.head();
        let refs: Vec<(u8, &[f32])> = words.iter().map(|(d, f)| (*d, f.as_slice())).collect();
        let adapted = head.adapt(&refs)?;

        let mut recordings: Vec<&Audio> = input.speech.iter().collect();
        recordings.extend(input.sequences);
        recordings.extend(input.single_digits.iter().map(|(_, a)| a));
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
        let passphrase = Template::new(
            TemplateHeader {
                modality: Modality::Passphrase,
                model_id: head.centroids_model_id(),
                model_sha256: head.sha256(),
                dimension: 0,
                samples: words.len() as u32,
                quality: 1.0,
                created_unix: now_unix(),
            },
            adapted.to_values(),
        )?;
        Ok(PreparedVoice {
            voiceprint: voice,
            digits: passphrase,
            digit_takes,
            seconds: joined.seconds(),
        })
    }

    /// Stores prepared voice templates for `subject` (the digits replacing earlier ones).
    pub fn store(&self, subject: &str, prepared: &PreparedVoice) -> Result<VoiceEnrollment> {
        let voiceprint_id = self.vault.enroll(subject, &prepared.voiceprint)?;
        let digits_id = self.vault.replace(subject, &prepared.digits)?;
        Ok(VoiceEnrollment {
            voiceprint_id,
            digits_id,
            digit_takes: prepared.digit_takes,
            seconds: prepared.seconds,
        })
    }

    /// How `subject`'s digits are recognised: their newest digits template adapts the head; a
    /// template enrolled the old way leaves the head alone.
    fn digit_model(&self, subject: &str) -> Result<DigitModel<'a>> {
        let newest = self.vault.newest(subject, Modality::Passphrase)?;
        let head = self.digits.head();
        let (model_id, expected) = (&newest.header().model_id, head.centroids_model_id());
        if *model_id == expected {
            Ok(DigitModel::Adapted(AdaptedDigitHead::from_values(
                head,
                newest.values(),
            )?))
        } else if model_id == LEGACY_DIGITS_MODEL_ID {
            Ok(DigitModel::HeadAlone(head))
        } else {
            Err(Error::new(
                ErrorKind::TemplateModelMismatch,
                format!(
                    "the subject's digits were enrolled with {model_id}, the engine uses {expected}; re-enroll the voice"
                ),
            ))
        }
    }

    /// Examines `response` as `subject` speaking `expected` (the challenge's digits; the
    /// caller redeems the challenge): the digits recognised against the challenge, and the
    /// best speaker score over their voiceprints. Evidence only.
    pub fn examine(
        &self,
        subject: &str,
        expected: &str,
        response: &Audio,
    ) -> Result<PassphraseEvidence> {
        let model = self.digit_model(subject)?;
        let check = check_digits(&self.digits, expected, response, &model)?;

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
