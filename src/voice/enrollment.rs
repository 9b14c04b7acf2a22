//! Voice enrollment and passphrase examination against the template vault, with the speaker
//! models of `voice.speaker_models` (the voice encoder and the GMM-UBM by default).
//!
//! An enrollment stores encrypted templates for the subject: a voiceprint per speaker model
//! (made from all the subject's recordings joined, modality `voice`: the encoder's embedding in
//! the vault's renewable space, the GMM's adapted means sealed as they are) and their digits
//! (the ten centroids of their own enrolled words in the digit head's space, modality
//! `passphrase`, replacing any earlier digits template). The digits come from one or two
//! sequences "0 1 2 … 9" said in order, or from single-digit recordings, or both. Examining a
//! response loads them, recognises the spoken digits with the head adapted to the subject (the
//! head alone for a template enrolled the old way) and scores the response with every speaker
//! model the subject has a voiceprint of; the authenticator turns those scores into one
//! calibrated speaker score and the decision module judges the result.

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::template::{Modality, Template, TemplateHeader};
use crate::vault::{Protection, TemplateVault};
use crate::voice::audio::{Audio, join_recordings};
use crate::voice::digit_head::{AdaptedDigitHead, DigitHead};
use crate::voice::digits::{DigitModel, LEGACY_DIGITS_MODEL_ID, SpokenDigits};
use crate::voice::passphrase::{PassphraseEvidence, SpeakerScore, check_digits};
use crate::voice::speaker::{SpeakerModel, Voiceprint};
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
    /// The voiceprint templates' ids in the store, one per speaker model.
    pub voiceprint_ids: Vec<i64>,
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
    /// One per speaker model, with how the vault protects it.
    voiceprints: Vec<(Template, Protection)>,
    digits: Template,
    digit_takes: [usize; 10],
    seconds: f32,
}

/// Voice enrollment and passphrase examination over a vault.
pub struct VoiceService<'a> {
    speakers: Vec<&'a dyn SpeakerModel>,
    digits: SpokenDigits<'a>,
    vault: &'a TemplateVault,
}

impl std::fmt::Debug for VoiceService<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let speakers: Vec<&str> = self.speakers.iter().map(|s| s.model_id()).collect();
        f.debug_struct("VoiceService")
            .field("speakers", &speakers)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl<'a> VoiceService<'a> {
    /// The service over the `speakers` models (at least one), the digit recogniser and
    /// `vault`.
    pub fn new(
        speakers: Vec<&'a dyn SpeakerModel>,
        embedder: &'a SpeechEmbedder,
        head: &'a DigitHead,
        vault: &'a TemplateVault,
    ) -> Self {
        VoiceService {
            speakers,
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
        let voiceprints = self
            .speakers
            .iter()
            .map(|model| {
                let voiceprint = model.enroll(&[&model.analyse(&joined)?])?;
                let template = Template::new(
                    TemplateHeader {
                        modality: Modality::Voice,
                        model_id: model.model_id().to_string(),
                        model_sha256: model.model_sha256(),
                        dimension: 0,
                        samples: recordings.len() as u32,
                        quality: 1.0,
                        created_unix: now_unix(),
                    },
                    voiceprint.values().to_vec(),
                )?;
                Ok((template, protection(*model)))
            })
            .collect::<Result<Vec<_>>>()?;
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
            voiceprints,
            digits: passphrase,
            digit_takes,
            seconds: joined.seconds(),
        })
    }

    /// Stores prepared voice templates for `subject` (the digits replacing earlier ones).
    pub fn store(&self, subject: &str, prepared: &PreparedVoice) -> Result<VoiceEnrollment> {
        // One atomic write: a voice enrollment is stored whole or not at all.
        let voiceprints: Vec<(&Template, Protection)> = prepared
            .voiceprints
            .iter()
            .map(|(template, protection)| (template, *protection))
            .collect();
        let mut ids = self.vault.enroll_and_replace(
            subject,
            &voiceprints,
            &[(&prepared.digits, Protection::SealedOnly)],
        )?;
        let digits_id = ids.pop().ok_or_else(|| {
            Error::new(
                ErrorKind::Store,
                "the store returned no id for the digits template",
            )
        })?;
        let voiceprint_ids = ids;
        Ok(VoiceEnrollment {
            voiceprint_ids,
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
    /// caller redeems the challenge): the digits recognised against the challenge, and each
    /// speaker model's best score over the subject's voiceprints of that model (a model the
    /// subject was enrolled before is left out; with none at all, the vault's
    /// [`ErrorKind::NotFound`] or [`ErrorKind::TemplateModelMismatch`]). Evidence only.
    pub fn examine(
        &self,
        subject: &str,
        expected: &str,
        response: &Audio,
    ) -> Result<PassphraseEvidence> {
        let model = self.digit_model(subject)?;
        let check = check_digits(&self.digits, expected, response, &model)?;
        let mut scores = Vec::with_capacity(self.speakers.len());
        for speaker in &self.speakers {
            let id = speaker.model_id();
            if !self.vault.has_model(subject, Modality::Voice, id)? {
                continue;
            }
            let voiceprints = self.vault.load(subject, Modality::Voice, id)?;
            let mut probe = speaker.analyse(response)?;
            if protection(*speaker) == Protection::Renewable {
                probe = probe.transform_embedding(|v| self.vault.protect(v))?;
            }
            let mut best = f64::NEG_INFINITY;
            for t in &voiceprints {
                let enrolled = Voiceprint::new(id, t.values().to_vec())?;
                best = best.max(speaker.score(&enrolled, &probe)?);
            }
            scores.push(SpeakerScore {
                model: id.to_string(),
                score: best,
            });
        }
        if scores.is_empty() {
            // No voiceprint of any configured model: the vault says why (none, or another
            // model's only).
            let first = self.speakers.first().map_or("", |s| s.model_id());
            self.vault.load(subject, Modality::Voice, first)?;
            return Err(Error::new(
                ErrorKind::NotFound,
                "no voiceprint of the configured speaker models for this subject",
            ));
        }
        Ok(check.with_speaker_scores(scores))
    }
}

/// How the vault protects a model's voiceprints: embeddings compared by cosine in the
/// renewable space, anything else sealed as it is.
fn protection(model: &dyn SpeakerModel) -> Protection {
    if model.compares_embeddings() {
        Protection::Renewable
    } else {
        Protection::SealedOnly
    }
}
