//! Spoken-passphrase evaluation on any spoken-digit corpus: a folder of
//! `{digit}_{speaker}_{take}.wav` (FSDD's layout) at any sample rate.
//!
//! Per speaker, the `enroll_takes` lowest-numbered takes of every digit enroll as the
//! two-utterance enrollment would hear them: take k of 0, 1, … 9 joined with pauses into the
//! k-th sequence "0 1 2 … 9", cut by the VAD into its ten words (a sequence that does not cut
//! into ten is an enrollment retake, counted), the head adapted with those words, the
//! voiceprint from the same sequences. Passphrases are built by joining single-digit takes
//! from the remaining takes with `gap_seconds` of silence; the remaining takes alternate
//! between calibration (odd positions) and evaluation (even positions), so no take serves both.
//! Three kinds of trial, `phrases_per_speaker` of each per speaker:
//! - **genuine**: the speaker says the challenge's digits;
//! - **impostor**: another speaker says the challenge's digits (claiming to be the speaker);
//! - **replay**: the speaker says another digit string (an old recording played back).
//!
//! The speaker threshold is set on the calibration phrases' scores at `target_fmr` (the
//! policy's voice operating point) by the rule of `vouch calibrate` (measured where enough
//! impostors can show the target, else extrapolated from their tail and never below the
//! highest impostor): what the decision path would hold a response to. Speakers without enough takes of every digit, or whose
//! enrollment sequences do not cut into ten words, are skipped and counted. Every random
//! choice comes from `seed`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::challenges::Rate;
use crate::eval::digits::parse_digit_name;
use crate::eval::metrics::eer;
use crate::score::ScoreFusion;
use crate::stats::{ScoreSet, SplitMix64};
use crate::voice::audio::{Audio, AudioLimits, join_recordings};
use crate::voice::digit_head::DigitHead;
use crate::voice::digits::{DigitModel, SpokenDigits};
use crate::voice::passphrase::{PassphraseEvidence, check_digits};
use crate::voice::speaker::{SpeakerModel, Voiceprint};
use crate::voice::speech_embedding::SpeechEmbedder;

/// The protocol's parameters.
#[derive(Clone, Debug, Serialize)]
pub struct PassphraseProtocol {
    /// Enrollment sequences "0 1 2 … 9" per speaker, from the lowest-numbered takes. By
    /// default, 2.
    pub enroll_takes: usize,
    /// Trials of each kind per speaker. By default, 50.
    pub phrases_per_speaker: usize,
    /// Digits per passphrase. By default, 6.
    pub length: usize,
    /// Silence before, between and after digits, in phrases and enrollment sequences. By
    /// default, 0.3 s.
    pub gap_seconds: f32,
    /// Impostor acceptance the speaker threshold is set at, on the calibration phrases. By
    /// default, 0.01 (the built-in policy's `voice_target_fmr`).
    pub target_fmr: f64,
    /// Recognised digits that may differ from the challenge's (`decisions.max_digit_errors`).
    pub max_digit_errors: usize,
    /// Seed of the digit strings and take choices.
    pub seed: u64,
}

impl Default for PassphraseProtocol {
    fn default() -> PassphraseProtocol {
        PassphraseProtocol {
            enroll_takes: 2,
            phrases_per_speaker: 50,
            length: 6,
            gap_seconds: 0.3,
            target_fmr: 0.01,
            max_digit_errors: crate::decision::DecisionsConfig::DEFAULT_MAX_DIGIT_ERRORS,
            seed: 1,
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
    /// What was recognised (empty when the word count was wrong).
    pub heard: String,
    /// Recognised digits that differ from the challenge's (none when the word count was
    /// wrong).
    pub digit_errors: Option<usize>,
    /// Each speaker model's score, in the order of [`PassphraseReport::models`] (empty when
    /// the word count was wrong).
    pub speaker_scores: Vec<f64>,
    /// The speaker score decided on: the one model's, or the fused log-likelihood ratio of
    /// several (NaN when the word count was wrong).
    pub speaker_score: f64,
    /// Accepted.
    pub accepted: bool,
    /// Refused for the wrong number of spoken words.
    pub token_count_error: bool,
}

/// Rates over a kind of trial.
#[derive(Clone, Debug, Serialize)]
pub struct KindSummary {
    /// Accepted trials (`hits`) of all, with a Wilson interval.
    pub accepted: Rate,
    /// Recognised digit strings equal to the spoken ones.
    pub heard_correctly: usize,
    /// Words whose recognised digit is the spoken one, of those recognised.
    pub words_correct: Rate,
    /// Refused for a wrong word count.
    pub token_count_errors: usize,
}

/// A speaker left out, and why.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedSpeaker {
    /// The speaker.
    pub speaker: String,
    /// Why.
    pub reason: String,
}

/// The evaluation's results.
#[derive(Clone, Debug, Serialize)]
pub struct PassphraseReport {
    /// Speaker model (the models joined by `+` when fused).
    pub model_id: String,
    /// The speaker models, in the order of each trial's `speaker_scores`.
    pub models: Vec<String>,
    /// The fusion of several models' scores, when there are several (fitted on the
    /// calibration phrases).
    pub fusion: Option<ScoreFusion>,
    /// The digit head: "built-in" or where the held-out heads came from.
    pub digit_head: String,
    /// The protocol.
    pub protocol: PassphraseProtocol,
    /// Speakers evaluated.
    pub speakers: Vec<String>,
    /// Speakers left out, with their reasons.
    pub skipped_speakers: Vec<SkippedSpeaker>,
    /// Speaker threshold set on the calibration phrases at the target FMR.
    pub speaker_threshold: f64,
    /// Equal error rate of the speaker scores on the calibration phrases.
    pub calibration_eer: f64,
    /// The speaker scores of the calibration phrases (genuine and impostor), for
    /// `vouch calibrate passphrase`.
    #[serde(skip)]
    pub calibration_scores: ScoreSet,
    /// Genuine trials' acceptance rate.
    pub genuine_accepted: f64,
    /// Impostor trials' acceptance rate.
    pub impostor_accepted: f64,
    /// Replay trials' acceptance rate.
    pub replay_accepted: f64,
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

/// Where each speaker's digit head comes from.
#[derive(Clone, Debug)]
pub enum Heads {
    /// The head built into the library, for every speaker.
    Builtin(DigitHead),
    /// One head per speaker, trained without them (`{speaker}.json` in the folder named);
    /// a speaker without one is skipped.
    HeldOut {
        /// The folder the heads were read from.
        dir: PathBuf,
        /// Speaker → head.
        heads: BTreeMap<String, DigitHead>,
    },
}

impl Heads {
    /// Reads the held-out heads of `dir` (`{speaker}.json`).
    pub fn held_out(dir: &Path) -> Result<Heads> {
        let mut heads = BTreeMap::new();
        for path in crate::listing::files_under(dir, &["json"])? {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
                let head = DigitHead::from_json(&text)
                    .map_err(|e| Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                heads.insert(stem.to_string(), head);
            }
        }
        if heads.is_empty() {
            return Err(Error::new(
                ErrorKind::Dataset,
                format!("no {{speaker}}.json digit heads in {}", dir.display()),
            ));
        }
        Ok(Heads::HeldOut {
            dir: dir.to_path_buf(),
            heads,
        })
    }

    fn of(&self, speaker: &str) -> Option<&DigitHead> {
        match self {
            Heads::Builtin(head) => Some(head),
            Heads::HeldOut { heads, .. } => heads.get(speaker),
        }
    }

    fn describe(&self) -> String {
        match self {
            Heads::Builtin(_) => "built-in".to_string(),
            Heads::HeldOut { dir, .. } => format!("held out per speaker ({})", dir.display()),
        }
    }
}

/// speaker → digit → take → path
type Corpus = BTreeMap<String, [BTreeMap<u32, PathBuf>; 10]>;

fn read_corpus(dir: &Path) -> Result<Corpus> {
    let mut files: Corpus = BTreeMap::new();
    for path in crate::listing::files_under(dir, &["wav"])? {
        if let Some((digit, speaker, take)) = parse_digit_name(&path) {
            files.entry(speaker).or_default()[usize::from(digit)].insert(take, path);
        }
    }
    Ok(files)
}

/// `n` uniformly random decimal digits.
fn random_digits(rng: &mut SplitMix64, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

/// One speaker's takes by role, and their enrollment.
struct Enrolled<'h> {
    name: String,
    /// digit → takes for calibration phrases
    calibration: Vec<Vec<u32>>,
    /// digit → takes for evaluated phrases
    probe: Vec<Vec<u32>>,
    head: &'h DigitHead,
    /// The head adapted to the speaker.
    digits: DigitModel<'h>,
    /// One per speaker model.
    voiceprints: Vec<Voiceprint>,
}

/// What the evaluation needs: the speaker models, the speech embedding and the heads.
#[derive(Clone, Copy)]
pub struct PassphraseModels<'a> {
    /// The speaker models: one, or several whose scores are fused.
    pub speakers: &'a [&'a dyn SpeakerModel],
    /// The speech embedding under the digit head.
    pub embedder: &'a SpeechEmbedder,
    /// The digit heads.
    pub heads: &'a Heads,
}

/// Runs the protocol on `dir`; `on_trial` is called after every trial (calibration ones
/// included: `2 × speakers × phrases` of them, then `3 × speakers × phrases`).
pub fn evaluate_passphrase(
    dir: &Path,
    models: PassphraseModels<'_>,
    protocol: &PassphraseProtocol,
    threads: usize,
    on_trial: &(dyn Fn() + Sync),
) -> Result<PassphraseReport> {
    if models.speakers.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a passphrase evaluation needs a speaker model",
        ));
    }
    if protocol.enroll_takes == 0 || protocol.length == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a passphrase evaluation needs at least one enrollment take and one digit",
        ));
    }
    let corpus = read_corpus(dir)?;
    // Single digits run as short as 0.15 s in FSDD.
    let limits = AudioLimits {
        min_seconds: 0.1,
        ..AudioLimits::default()
    };
    let open = |speaker: &str, digit: usize, take: u32| -> Result<Audio> {
        let path = &corpus[speaker][digit][&take];
        Audio::open(path, &limits)
            .map_err(|e| Error::new(e.kind(), format!("{}: {e}", path.display())))
    };

    // Roles of the takes, then enrollment (in parallel), skipping who cannot enroll.
    let mut skipped_speakers = Vec::new();
    let mut candidates = Vec::new();
    for (speaker, digits) in &corpus {
        let need = protocol.enroll_takes + 2;
        if let Some(d) = digits.iter().position(|t| t.len() < need) {
            skipped_speakers.push(SkippedSpeaker {
                speaker: speaker.clone(),
                reason: format!(
                    "{} take(s) of digit {d}: {need} are needed ({} to enroll, one to calibrate, one to evaluate)",
                    digits[d].len(),
                    protocol.enroll_takes
                ),
            });
            continue;
        }
        let Some(head) = models.heads.of(speaker) else {
            skipped_speakers.push(SkippedSpeaker {
                speaker: speaker.clone(),
                reason: "no held-out digit head for this speaker".to_string(),
            });
            continue;
        };
        candidates.push((speaker.clone(), head));
    }
    let enrolled =
        crate::parallel::parallel_map(&candidates, threads, &|| {}, |(speaker, head)| {
            let takes: Vec<Vec<u32>> = corpus[speaker]
                .iter()
                .map(|t| t.keys().copied().collect())
                .collect();
            let spoken = SpokenDigits::new(models.embedder, head);
            let mut sequences = Vec::new();
            let mut words = Vec::new();
            for k in 0..protocol.enroll_takes {
                let digits = takes
                    .iter()
                    .enumerate()
                    .map(|(d, t)| open(speaker, d, t[k]))
                    .collect::<Result<Vec<_>>>()?;
                let sequence =
                    join_recordings(&digits.iter().collect::<Vec<_>>(), protocol.gap_seconds)?;
                match spoken.enrollment_words(&sequence) {
                    Ok(found) => words.extend(found),
                    Err(e) if e.kind() == ErrorKind::PassphraseTokens => {
                        return Ok(Err(SkippedSpeaker {
                            speaker: speaker.clone(),
                            reason: format!("enrollment sequence {}: {}", k + 1, e.message()),
                        }));
                    }
                    Err(e) => return Err(e),
                }
                sequences.push(sequence);
            }
            let refs: Vec<(u8, &[f32])> = words.iter().map(|(d, f)| (*d, f.as_slice())).collect();
            let adapted = head.adapt(&refs)?;
            let joined = join_recordings(&sequences.iter().collect::<Vec<_>>(), 0.2)?;
            let voiceprints = models
                .speakers
                .iter()
                .map(|m| m.enroll(&[&m.analyse(&joined)?]))
                .collect::<Result<Vec<_>>>()?;
            let rest = |parity: usize| -> Vec<Vec<u32>> {
                takes
                    .iter()
                    .map(|t| {
                        t[protocol.enroll_takes..]
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| i % 2 == parity)
                            .map(|(_, take)| *take)
                            .collect()
                    })
                    .collect()
            };
            Ok(Ok(Enrolled {
                name: speaker.clone(),
                probe: rest(0),
                calibration: rest(1),
                head,
                digits: DigitModel::Adapted(adapted),
                voiceprints,
            }))
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let mut speakers = Vec::new();
    for e in enrolled {
        match e {
            Ok(e) => speakers.push(e),
            Err(skipped) => skipped_speakers.push(skipped),
        }
    }
    if speakers.len() < 2 {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "{} has fewer than two speakers who could enroll ({} skipped: {})",
                dir.display(),
                skipped_speakers.len(),
                skipped_speakers
                    .iter()
                    .map(|s| format!("{}: {}", s.speaker, s.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }

    // A phrase: `spoken` by `speaker`, each digit from a random take of its role.
    let phrase = |speaker: &Enrolled<'_>,
                  spoken: &str,
                  calibration: bool,
                  rng: &mut SplitMix64|
     -> Result<Audio> {
        let role = if calibration {
            &speaker.calibration
        } else {
            &speaker.probe
        };
        let takes = spoken
            .bytes()
            .map(|b| {
                let pool = &role[usize::from(b - b'0')];
                let take = pool[rng.below(pool.len() as u64) as usize];
                open(&speaker.name, usize::from(b - b'0'), take)
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
    // Every trial's digits and raw speaker scores; the decision comes once the scores'
    // threshold (and fusion) is known.
    let run = |plans: &[Plan], calibration: bool| -> Result<Vec<TrialOutcome>> {
        crate::parallel::parallel_map(plans, threads, on_trial, |t| {
            let mut rng = SplitMix64::new(t.seed);
            let subject = &speakers[t.subject];
            let audio = phrase(&speakers[t.speaker], &t.spoken, calibration, &mut rng)?;
            let mut outcome = TrialOutcome {
                kind: t.kind,
                subject: subject.name.clone(),
                speaker: speakers[t.speaker].name.clone(),
                expected: t.expected.clone(),
                spoken: t.spoken.clone(),
                heard: String::new(),
                digit_errors: None,
                speaker_scores: Vec::new(),
                speaker_score: f64::NAN,
                accepted: false,
                token_count_error: false,
            };
            let spoken = SpokenDigits::new(models.embedder, subject.head);
            match check_digits(&spoken, &t.expected, &audio, &subject.digits) {
                Ok(check) => {
                    outcome.speaker_scores = models
                        .speakers
                        .iter()
                        .zip(&subject.voiceprints)
                        .map(|(m, voiceprint)| m.score(voiceprint, &m.analyse(&audio)?))
                        .collect::<Result<_>>()?;
                    outcome.heard = check.heard;
                    outcome.digit_errors = Some(check.digit_errors);
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

    let model_ids: Vec<String> = models
        .speakers
        .iter()
        .map(|m| m.model_id().to_string())
        .collect();
    // The fusion and the speaker threshold, on the calibration takes.
    let mut calibration = run(
        &plan(
            &[TrialKind::Genuine, TrialKind::Impostor],
            protocol.seed ^ 0xCA11,
        ),
        true,
    )?;
    let fusion = if models.speakers.len() > 1 {
        let rows: Vec<(&[f64], bool)> = calibration
            .iter()
            .filter(|t| !t.speaker_scores.is_empty())
            .map(|t| (t.speaker_scores.as_slice(), t.kind == TrialKind::Genuine))
            .collect();
        Some(ScoreFusion::fit(&model_ids, &rows)?)
    } else {
        None
    };
    let decide = |trials: &mut [TrialOutcome], threshold: f64| {
        for t in trials {
            let Some(digit_errors) = t.digit_errors else {
                continue;
            };
            t.speaker_score = match &fusion {
                Some(f) => f.score(&t.speaker_scores),
                None => t.speaker_scores[0],
            };
            let evidence = PassphraseEvidence {
                heard: t.heard.clone(),
                digit_errors,
                adapted: true,
                speaker_scores: Vec::new(),
            };
            t.accepted = crate::decision::passphrase(
                &evidence,
                t.speaker_score,
                threshold,
                protocol.max_digit_errors,
            )
            .accepted();
        }
    };
    decide(&mut calibration, f64::INFINITY);
    let calibration_scores = speaker_scores(&calibration)?;
    // The rule `vouch calibrate` ships thresholds by (measured where the impostors can show
    // the target, else extrapolated, never below the highest impostor), so that these figures
    // are what the decision path would do with a calibration made on these phrases.
    let threshold = crate::score::Calibration::fit(
        "passphrase",
        "calibration phrases",
        &calibration_scores,
        &[protocol.target_fmr],
    )?
    .threshold_at(protocol.target_fmr)?;

    let mut trials = run(
        &plan(
            &[TrialKind::Genuine, TrialKind::Impostor, TrialKind::Replay],
            protocol.seed,
        ),
        false,
    )?;
    decide(&mut trials, threshold);
    let summary = |kind: TrialKind| {
        let of_kind: Vec<&TrialOutcome> = trials.iter().filter(|t| t.kind == kind).collect();
        let recognised: Vec<&&TrialOutcome> =
            of_kind.iter().filter(|t| !t.token_count_error).collect();
        let words_right = recognised
            .iter()
            .map(|t| {
                t.heard
                    .bytes()
                    .zip(t.spoken.bytes())
                    .filter(|(a, b)| a == b)
                    .count()
            })
            .sum();
        KindSummary {
            accepted: Rate::of(of_kind.iter().filter(|t| t.accepted).count(), of_kind.len()),
            heard_correctly: of_kind.iter().filter(|t| t.heard == t.spoken).count(),
            words_correct: Rate::of(words_right, recognised.len() * protocol.length),
            token_count_errors: of_kind.iter().filter(|t| t.token_count_error).count(),
        }
    };
    let (genuine, impostor, replay) = (
        summary(TrialKind::Genuine),
        summary(TrialKind::Impostor),
        summary(TrialKind::Replay),
    );
    Ok(PassphraseReport {
        model_id: crate::score::fused_model_id(&model_ids),
        models: model_ids,
        fusion,
        digit_head: models.heads.describe(),
        protocol: protocol.clone(),
        speakers: speakers.iter().map(|s| s.name.clone()).collect(),
        skipped_speakers,
        speaker_threshold: threshold,
        calibration_eer: eer(&calibration_scores).rate,
        calibration_scores,
        genuine_accepted: genuine.accepted.rate,
        impostor_accepted: impostor.accepted.rate,
        replay_accepted: replay.accepted.rate,
        genuine,
        impostor,
        replay,
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
