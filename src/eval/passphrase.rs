//! Spoken-passphrase evaluation on the Free Spoken Digit Dataset (`{digit}_{speaker}_{take}.wav`).
//!
//! Per speaker, the digits are enrolled from `enroll_takes` of every digit (the DTW templates)
//! and the voiceprint from the same takes joined into one recording. Passphrases are built by
//! joining single-digit takes from `probe_takes` with `gap_seconds` of silence. Three kinds of
//! trial, `phrases_per_speaker` of each per speaker:
//! - **genuine**: the speaker says the challenge's digits;
//! - **impostor**: another speaker says the challenge's digits (claiming to be the speaker);
//! - **replay**: the speaker says another digit string (an old recording played back).
//!
//! The speaker threshold is calibrated first, on genuine and impostor phrases built from
//! `calibration_takes` (disjoint from both enrollment and probe takes): the equal-error
//! threshold of those speaker scores. Every random choice comes from `seed`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::metrics::eer;
use crate::stats::{ScoreSet, SplitMix64};
use crate::voice::audio::join_recordings;
use crate::voice::audio::{Audio, AudioLimits};
use crate::voice::digits::DigitTemplates;
use crate::voice::passphrase::PassphraseVerifier;
use crate::voice::speaker::{SpeakerModel, Voiceprint};

/// The protocol's parameters.
#[derive(Clone, Debug, Serialize)]
pub struct FsddProtocol {
    /// Takes that enroll digits and voiceprint. By default, 5–9.
    pub enroll_takes: Range<u32>,
    /// Takes the evaluated passphrases are built from. By default, 0–4 (upstream's test split).
    pub probe_takes: Range<u32>,
    /// Takes the threshold is calibrated on. By default, 10–49.
    pub calibration_takes: Range<u32>,
    /// Trials of each kind per speaker. By default, 50.
    pub phrases_per_speaker: usize,
    /// Digits per passphrase. By default, 6.
    pub length: usize,
    /// Silence before, between and after digits. By default, 0.3 s.
    pub gap_seconds: f32,
    /// Seed of the digit strings and take choices.
    pub seed: u64,
    /// The digit check's tolerance (see `decisions.digit_rank`). By default, 2.
    pub digit_rank: usize,
}

impl Default for FsddProtocol {
    fn default() -> FsddProtocol {
        FsddProtocol {
            enroll_takes: 5..10,
            probe_takes: 0..5,
            calibration_takes: 10..50,
            phrases_per_speaker: 50,
            length: 6,
            gap_seconds: 0.3,
            seed: 1,
            digit_rank: crate::decision::DecisionsConfig::DEFAULT_DIGIT_RANK,
        }
    }
}

/// Kinds of passphrase trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialKind {
    /// The enrolled speaker, the right digits.
    Genuine,
    /// Another speaker, the right digits.
    Impostor,
    /// The enrolled speaker, other digits.
    Replay,
}

/// One trial's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct TrialOutcome {
    /// Which kind.
    pub kind: TrialKind,
    /// The claimed identity.
    pub subject: String,
    /// Who actually speaks.
    pub speaker: String,
    /// The challenge.
    pub expected: String,
    /// What the recording says.
    pub spoken: String,
    /// What was recognised (empty when the token count was wrong).
    pub heard: String,
    /// Speaker score (NaN when the token count was wrong).
    pub speaker_score: f64,
    /// Accepted.
    pub accepted: bool,
    /// Refused for the wrong number of spoken tokens.
    pub token_count_error: bool,
}

/// Rates over a kind of trial.
#[derive(Clone, Debug, Serialize)]
pub struct KindSummary {
    /// Trials.
    pub trials: usize,
    /// Accepted.
    pub accepted: usize,
    /// Recognised digit strings equal to the spoken ones.
    pub heard_correctly: usize,
    /// Refused for a wrong token count.
    pub token_count_errors: usize,
}

/// The evaluation's results.
#[derive(Clone, Debug, Serialize)]
pub struct PassphraseReport {
    /// Speaker model.
    pub model_id: String,
    /// The protocol.
    pub protocol: FsddProtocol,
    /// Speaker threshold calibrated on the calibration takes.
    pub speaker_threshold: f64,
    /// Equal error rate of the speaker scores on the calibration phrases.
    pub calibration_eer: f64,
    /// The speaker scores of the calibration phrases (genuine and impostor), for
    /// `vouch calibrate passphrase`.
    #[serde(skip)]
    pub calibration_scores: ScoreSet,
    /// Genuine trials.
    pub genuine: KindSummary,
    /// Impostor trials.
    pub impostor: KindSummary,
    /// Replay trials.
    pub replay: KindSummary,
    /// Equal error rate of the speaker scores alone, genuine vs impostor probe phrases.
    pub speaker_eer: f64,
    /// Every trial.
    pub trials: Vec<TrialOutcome>,
}

struct Corpus {
    /// speaker → digit → take → path
    files: BTreeMap<String, [BTreeMap<u32, PathBuf>; 10]>,
}

fn read_corpus(dir: &Path) -> Result<Corpus> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    let mut files: BTreeMap<String, [BTreeMap<u32, PathBuf>; 10]> = BTreeMap::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io("listing", dir, e))?.path();
        let Some(stem) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|_| path.extension().is_some_and(|e| e == "wav"))
        else {
            continue;
        };
        let parts: Vec<&str> = stem.split('_').collect();
        if let [digit, speaker, take] = parts[..]
            && let (Ok(digit), Ok(take)) = (digit.parse::<usize>(), take.parse::<u32>())
            && digit < 10
        {
            files.entry(speaker.to_string()).or_default()[digit].insert(take, path.clone());
        }
    }
    if files.len() < 2 {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "{} holds recordings of fewer than two speakers named DIGIT_SPEAKER_TAKE.wav",
                dir.display()
            ),
        ));
    }
    Ok(Corpus { files })
}

/// `n` uniformly random decimal digits.
fn random_digits(rng: &mut SplitMix64, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

struct Enrolled {
    digits: DigitTemplates,
    voiceprint: Voiceprint,
}

/// Runs the protocol with `model`; `on_trial` is called after every trial (calibration ones
/// included: `2 × speakers × phrases` of them, then `3 × speakers × phrases`).
pub fn evaluate_fsdd(
    dir: &Path,
    model: &dyn SpeakerModel,
    protocol: &FsddProtocol,
    threads: usize,
    on_trial: &(dyn Fn() + Sync),
) -> Result<PassphraseReport> {
    let corpus = read_corpus(dir)?;
    // Single digits run as short as 0.15 s in FSDD.
    let limits = AudioLimits {
        min_seconds: 0.1,
        ..AudioLimits::default()
    };
    let open = |speaker: &str, digit: usize, take: u32| -> Result<Audio> {
        let path = corpus.files[speaker][digit].get(&take).ok_or_else(|| {
            Error::new(
                ErrorKind::Dataset,
                format!(
                    "no take {take} of digit {digit} by {speaker} in {}",
                    dir.display()
                ),
            )
        })?;
        Audio::open(path, &limits)
    };
    let verifier = PassphraseVerifier::new(model)?;
    let speakers: Vec<String> = corpus.files.keys().cloned().collect();

    // Enrollment.
    let enrolled = crate::parallel::parallel_map(&speakers, threads, &|| {}, |speaker| {
        let mut digits = DigitTemplates::new();
        let mut takes = Vec::new();
        for digit in 0..10 {
            for take in protocol.enroll_takes.clone() {
                let audio = open(speaker, digit, take)?;
                digits.add(digit as u8, &verifier.front_end().single(&audio)?)?;
                takes.push(audio);
            }
        }
        let joined = join_recordings(&takes.iter().collect::<Vec<_>>(), 0.2)?;
        let voiceprint = model.enroll(&[&model.analyse(&joined)?])?;
        Ok(Enrolled { digits, voiceprint })
    })
    .into_iter()
    .collect::<Result<Vec<Enrolled>>>()?;

    // A phrase: `spoken` by `speaker`, from takes in `range`.
    let phrase =
        |speaker: &str, spoken: &str, range: &Range<u32>, rng: &mut SplitMix64| -> Result<Audio> {
            let takes = spoken
                .bytes()
                .map(|b| {
                    let take = range.start + rng.below(u64::from(range.end - range.start)) as u32;
                    open(speaker, usize::from(b - b'0'), take)
                })
                .collect::<Result<Vec<_>>>()?;
            join_recordings(&takes.iter().collect::<Vec<_>>(), protocol.gap_seconds)
        };

    struct Plan {
        kind: TrialKind,
        subject: usize,
        speaker: usize,
        expected: String,
        spoken: String,
        seed: u64,
    }
    let plan = |kinds: &[TrialKind], seed: u64| -> Vec<Plan> {
        let mut rng = SplitMix64::new(seed);
        let mut plans = Vec::new();
        for subject in 0..speakers.len() {
            for p in 0..protocol.phrases_per_speaker {
                let expected = random_digits(&mut rng, protocol.length);
                for &kind in kinds {
                    let (speaker, spoken) = match kind {
                        TrialKind::Genuine => (subject, expected.clone()),
                        TrialKind::Impostor => {
                            let others = speakers.len() - 1;
                            (
                                (subject + 1 + p % others) % speakers.len(),
                                expected.clone(),
                            )
                        }
                        TrialKind::Replay => {
                            let mut other = random_digits(&mut rng, protocol.length);
                            while other == expected {
                                other = random_digits(&mut rng, protocol.length);
                            }
                            (subject, other)
                        }
                    };
                    plans.push(Plan {
                        kind,
                        subject,
                        speaker,
                        expected: expected.clone(),
                        spoken,
                        seed: rng.next_u64(),
                    });
                }
            }
        }
        plans
    };
    let run = |plans: &[Plan], range: &Range<u32>, threshold: f64| -> Result<Vec<TrialOutcome>> {
        let verifier = PassphraseVerifier::new(model)?;
        crate::parallel::parallel_map(plans, threads, on_trial, |t| {
            let mut rng = SplitMix64::new(t.seed);
            let audio = phrase(&speakers[t.speaker], &t.spoken, range, &mut rng)?;
            let enrolled = &enrolled[t.subject];
            let mut outcome = TrialOutcome {
                kind: t.kind,
                subject: speakers[t.subject].clone(),
                speaker: speakers[t.speaker].clone(),
                expected: t.expected.clone(),
                spoken: t.spoken.clone(),
                heard: String::new(),
                speaker_score: f64::NAN,
                accepted: false,
                token_count_error: false,
            };
            match verifier.examine(&t.expected, &audio, &enrolled.digits, &enrolled.voiceprint) {
                Ok(evidence) => {
                    outcome.accepted =
                        crate::decision::passphrase(&evidence, threshold, protocol.digit_rank)
                            .accepted();
                    outcome.heard = evidence.heard;
                    outcome.speaker_score = evidence.speaker_score;
                }
                Err(e) if e.kind() == ErrorKind::PassphraseTokens => {
                    outcome.token_count_error = true;
                }
                Err(e) => return Err(e),
            }
            Ok(outcome)
        })
        .into_iter()
        .collect()
    };

    // Calibration of the speaker threshold, on its own takes.
    let calibration = run(
        &plan(
            &[TrialKind::Genuine, TrialKind::Impostor],
            protocol.seed ^ 0xCA11,
        ),
        &protocol.calibration_takes,
        f64::NEG_INFINITY,
    )?;
    let calibration_scores = speaker_scores(&calibration)?;
    let calibrated = eer(&calibration_scores);

    let trials = run(
        &plan(
            &[TrialKind::Genuine, TrialKind::Impostor, TrialKind::Replay],
            protocol.seed,
        ),
        &protocol.probe_takes,
        calibrated.threshold,
    )?;
    let summary = |kind: TrialKind| {
        let of_kind: Vec<&TrialOutcome> = trials.iter().filter(|t| t.kind == kind).collect();
        KindSummary {
            trials: of_kind.len(),
            accepted: of_kind.iter().filter(|t| t.accepted).count(),
            heard_correctly: of_kind.iter().filter(|t| t.heard == t.spoken).count(),
            token_count_errors: of_kind.iter().filter(|t| t.token_count_error).count(),
        }
    };
    Ok(PassphraseReport {
        model_id: model.model_id().to_string(),
        protocol: protocol.clone(),
        speaker_threshold: calibrated.threshold,
        calibration_eer: calibrated.rate,
        calibration_scores,
        genuine: summary(TrialKind::Genuine),
        impostor: summary(TrialKind::Impostor),
        replay: summary(TrialKind::Replay),
        speaker_eer: eer(&speaker_scores(&trials)?).rate,
        trials,
    })
}

/// Genuine and impostor speaker scores of trials that got as far as scoring.
fn speaker_scores(trials: &[TrialOutcome]) -> Result<ScoreSet> {
    let of = |kind: TrialKind| {
        trials
            .iter()
            .filter(|t| t.kind == kind && t.speaker_score.is_finite())
            .map(|t| t.speaker_score)
            .collect()
    };
    ScoreSet::new(of(TrialKind::Genuine), of(TrialKind::Impostor))
}
