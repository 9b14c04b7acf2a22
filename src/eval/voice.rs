//! Speaker-verification evaluation on a folder laid out `SPEAKER/…/*.flac|wav`.
//!
//! Protocol: every recording is analysed once; for every pair of recordings `(i, j)` with `i`
//! before `j` in sorted path order, a voiceprint enrolled from recording `i` alone is scored
//! against recording `j` as the probe. Enrollment and probe are always different recordings;
//! a pair is genuine when both come from the same speaker folder. On LibriSpeech test-other's
//! 10 × 10 excerpt that is 450 genuine and 4,500 impostor trials.
//!
//! Trial lists ([`read_trials`], [`score_trials`]) run any other protocol: each trial names
//! the enrollment recordings, the probe and whether they are the same speaker.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::csv::CsvList;
use crate::eval::face::AcquisitionFailure;
use crate::score::ScoreFusion;
use crate::stats::ScoreSet;
use crate::voice::audio::{Audio, AudioLimits};
use crate::voice::speaker::SpeakerModel;
use crate::voice::ubm::audio_files;

/// One recording of a labelled speaker.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpeakerRecording {
    /// The speaker (the first folder level under the root).
    pub speaker: String,
    /// The file.
    pub path: PathBuf,
}

/// Every audio file under `root`, labelled by its first-level folder, sorted by path.
pub fn speaker_recordings(root: &Path) -> Result<Vec<SpeakerRecording>> {
    let mut out = Vec::new();
    for path in audio_files(root)? {
        let speaker = path
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.components().next())
            .filter(|_| path.parent() != Some(root))
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        if let Some(speaker) = speaker {
            out.push(SpeakerRecording { speaker, path });
        }
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "no recordings in speaker folders under {} (expected SPEAKER/*.flac)",
                root.display()
            ),
        ));
    }
    Ok(out)
}

/// Scores of an all-pairs speaker evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct SpeakerScores {
    /// The model evaluated.
    pub model_id: String,
    /// Recordings analysed.
    pub recordings: usize,
    /// Same-speaker scores.
    pub genuine: Vec<f64>,
    /// Different-speaker scores.
    pub impostor: Vec<f64>,
}

impl SpeakerScores {
    /// As a score set for the metrics.
    pub fn score_set(&self) -> Result<ScoreSet> {
        ScoreSet::new(self.genuine.clone(), self.impostor.clone())
    }
}

/// Every pair of recordings (`i < j`, in that order) and whether they share a speaker.
fn all_pairs(recordings: &[SpeakerRecording]) -> Vec<(usize, usize, bool)> {
    let mut pairs = Vec::new();
    for i in 0..recordings.len() {
        for j in i + 1..recordings.len() {
            pairs.push((i, j, recordings[i].speaker == recordings[j].speaker));
        }
    }
    pairs
}

/// `model`'s score of every pair of [`all_pairs`], in that order: enrolled on the earlier
/// recording, probed with the later.
fn pair_scores(
    model: &dyn SpeakerModel,
    recordings: &[SpeakerRecording],
    threads: usize,
    on_item: &(dyn Fn() + Sync),
) -> Result<Vec<f64>> {
    let limits = AudioLimits {
        max_seconds: 60.0,
        ..AudioLimits::default()
    };
    let samples = crate::parallel::parallel_map(recordings, threads, on_item, |r| {
        Audio::open(&r.path, &limits)
            .and_then(|a| model.analyse(&a))
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", r.path.display(), e.message())))
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let indices: Vec<usize> = (0..samples.len()).collect();
    let rows = crate::parallel::parallel_map(&indices, threads, on_item, |&i| {
        let print = model.enroll(&[&samples[i]])?;
        (i + 1..samples.len())
            .map(|j| model.score(&print, &samples[j]))
            .collect::<Result<Vec<_>>>()
    });
    let mut scores = Vec::new();
    for row in rows {
        scores.extend(row?);
    }
    Ok(scores)
}

/// Runs the all-pairs protocol of the module docs with `model`; `on_item` is called once per
/// recording analysed and once per voiceprint enrolled.
pub fn score_all_pairs(
    model: &dyn SpeakerModel,
    recordings: &[SpeakerRecording],
    threads: usize,
    on_item: &(dyn Fn() + Sync),
) -> Result<SpeakerScores> {
    let scores = pair_scores(model, recordings, threads, on_item)?;
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for ((_, _, same), score) in all_pairs(recordings).into_iter().zip(scores) {
        if same {
            genuine.push(score);
        } else {
            impostor.push(score);
        }
    }
    Ok(SpeakerScores {
        model_id: model.model_id().to_string(),
        recordings: recordings.len(),
        genuine,
        impostor,
    })
}

/// Several speaker models on the all-pairs protocol, fused by two-fold cross-validation over
/// speakers: the speakers (in name order) alternate between two halves; the fusion fitted on
/// the pairs within one half scores the pairs within the other, so no fused score comes from
/// a fusion that saw either speaker. Pairs across the halves are left out, for the single
/// models too, so that every figure is on the same pairs.
#[derive(Clone, Debug, Serialize)]
pub struct FusedSpeakerScores {
    /// Each model on the within-half pairs.
    pub per_model: Vec<SpeakerScores>,
    /// The fused scores of the same pairs.
    pub fused: SpeakerScores,
    /// The fusion of each fold (fitted on half 0, then on half 1).
    pub folds: Vec<ScoreFusion>,
}

/// A within-half pair: its half, whether it is genuine, one score per model.
type FoldRow = (usize, bool, Vec<f64>);

/// Runs the fused protocol of [`FusedSpeakerScores`]; `on_item` as for [`score_all_pairs`],
/// for every model.
pub fn score_all_pairs_fused(
    models: &[&dyn SpeakerModel],
    recordings: &[SpeakerRecording],
    threads: usize,
    on_item: &(dyn Fn() + Sync),
) -> Result<FusedSpeakerScores> {
    let speakers: BTreeSet<&str> = recordings.iter().map(|r| r.speaker.as_str()).collect();
    if models.len() < 2 || speakers.len() < 4 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a fused speaker evaluation needs two models or more and four speakers or more",
        ));
    }
    let half: BTreeMap<&str, usize> = speakers
        .iter()
        .enumerate()
        .map(|(k, s)| (*s, k % 2))
        .collect();
    let scores = models
        .iter()
        .map(|m| pair_scores(*m, recordings, threads, on_item))
        .collect::<Result<Vec<_>>>()?;
    // (fold, genuine, one score per model) of every within-half pair.
    let rows: Vec<FoldRow> = all_pairs(recordings)
        .into_iter()
        .enumerate()
        .filter_map(|(p, (i, j, same))| {
            let (a, b) = (
                half[recordings[i].speaker.as_str()],
                half[recordings[j].speaker.as_str()],
            );
            (a == b).then(|| (a, same, scores.iter().map(|s| s[p]).collect()))
        })
        .collect();
    let ids: Vec<String> = models.iter().map(|m| m.model_id().to_string()).collect();
    let fit = |fold: usize| {
        let of_fold: Vec<(&[f64], bool)> = rows
            .iter()
            .filter(|r| r.0 == fold)
            .map(|r| (r.2.as_slice(), r.1))
            .collect();
        ScoreFusion::fit(&ids, &of_fold)
    };
    let folds = vec![fit(0)?, fit(1)?];
    let split = |score: &dyn Fn(&FoldRow) -> f64, model_id: String| {
        let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
        for r in &rows {
            if r.1 {
                genuine.push(score(r));
            } else {
                impostor.push(score(r));
            }
        }
        SpeakerScores {
            model_id,
            recordings: recordings.len(),
            genuine,
            impostor,
        }
    };
    let per_model = models
        .iter()
        .enumerate()
        .map(|(m, model)| split(&|r| r.2[m], model.model_id().to_string()))
        .collect();
    let fused_id = models
        .iter()
        .map(|m| m.model_id())
        .collect::<Vec<_>>()
        .join("+");
    // A pair of half k is scored by the fusion fitted on the other half.
    let fused = split(&|r| folds[1 - r.0].score(&r.2), fused_id);
    Ok(FusedSpeakerScores {
        per_model,
        fused,
        folds,
    })
}

/// One speaker-verification trial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoiceTrial {
    /// The recordings the voiceprint is enrolled from.
    pub enroll: Vec<PathBuf>,
    /// The probe recording.
    pub probe: PathBuf,
    /// Same speaker?
    pub same: bool,
}

/// Reads a trial list: CSV with a header naming `enroll`, `probe` and `label` columns (any
/// order); `enroll` holds one or more recordings separated by `;`; labels `target`/`nontarget`,
/// `genuine`/`impostor`, `1`/`0`. Paths are relative to `root`. Missing recordings are kept (they
/// become counted failures); malformed lines are errors naming the line.
pub fn read_trials(list: &Path, root: &Path) -> Result<Vec<VoiceTrial>> {
    let csv = CsvList::read(list, "trial list")?;
    let [ce, cp, cl] = csv.columns([&["enroll"], &["probe"], &["label"]])?;
    let mut trials = Vec::new();
    for row in csv.rows() {
        let same = match csv.cell(row, cl)?.to_ascii_lowercase().as_str() {
            "target" | "genuine" | "1" | "same" => true,
            "nontarget" | "impostor" | "0" | "different" => false,
            other => {
                return Err(csv.error(
                    row.0,
                    format!("label {other:?} is neither target nor nontarget"),
                ));
            }
        };
        let enroll: Vec<PathBuf> = csv
            .cell(row, ce)?
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| root.join(p))
            .collect();
        let probe = root.join(csv.cell(row, cp)?);
        if enroll.contains(&probe) {
            return Err(csv.error(row.0, "the probe is one of the enrollment recordings"));
        }
        trials.push(VoiceTrial {
            enroll,
            probe,
            same,
        });
    }
    if trials.is_empty() {
        return Err(csv.error(1, "the trial list holds no trials"));
    }
    Ok(trials)
}

/// Scores of a trial list, and the recordings that could not be analysed.
#[derive(Clone, Debug, Serialize)]
pub struct TrialScores {
    /// The scores (as in the all-pairs protocol).
    pub scores: SpeakerScores,
    /// Recordings that could not be decoded or analysed.
    pub failures: Vec<AcquisitionFailure>,
    /// Trials left out because one of their recordings failed.
    pub trials_skipped: usize,
}

/// Analyses every distinct recording of `trials` once, then enrolls each distinct enrollment
/// set once and scores its probes. A recording that fails (missing, undecodable, silent) is a
/// counted failure: its trials are skipped and the run goes on. `on_item` is called once per
/// recording and once per enrollment set.
pub fn score_trials(
    model: &dyn SpeakerModel,
    trials: &[VoiceTrial],
    threads: usize,
    on_item: &(dyn Fn() + Sync),
) -> Result<TrialScores> {
    let limits = AudioLimits {
        max_seconds: 60.0,
        ..AudioLimits::default()
    };
    let files: Vec<PathBuf> = trials
        .iter()
        .flat_map(|t| t.enroll.iter().chain([&t.probe]).cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let analysed = crate::parallel::parallel_map(&files, threads, on_item, |path| {
        Audio::open(path, &limits).and_then(|a| model.analyse(&a))
    });
    let mut samples = BTreeMap::new();
    let mut failures = Vec::new();
    for (path, outcome) in files.iter().zip(analysed) {
        match outcome {
            Ok(sample) => {
                samples.insert(path.clone(), sample);
            }
            Err(e) => failures.push(AcquisitionFailure {
                image: path.clone(),
                kind: e.kind().to_string(),
                message: e.to_string(),
            }),
        }
    }
    // Group trials by enrollment set so each voiceprint is made once.
    let mut by_enroll: BTreeMap<&[PathBuf], Vec<&VoiceTrial>> = BTreeMap::new();
    for t in trials {
        by_enroll.entry(t.enroll.as_slice()).or_default().push(t);
    }
    let groups: Vec<(&[PathBuf], Vec<&VoiceTrial>)> = by_enroll.into_iter().collect();
    let rows = crate::parallel::parallel_map(&groups, threads, on_item, |(enroll, group)| {
        let enroll_samples: Option<Vec<_>> = enroll.iter().map(|p| samples.get(p)).collect();
        let Some(enroll_samples) = enroll_samples else {
            return Ok((Vec::new(), group.len()));
        };
        let print = model.enroll(&enroll_samples)?;
        let mut scored = Vec::new();
        let mut skipped = 0;
        for t in group {
            match samples.get(&t.probe) {
                Some(probe) => scored.push((t.same, model.score(&print, probe)?)),
                None => skipped += 1,
            }
        }
        Ok((scored, skipped))
    });
    let (mut genuine, mut impostor, mut skipped) = (Vec::new(), Vec::new(), 0);
    for row in rows {
        let (scored, s): (Vec<(bool, f64)>, usize) = row?;
        skipped += s;
        for (same, score) in scored {
            if same {
                genuine.push(score);
            } else {
                impostor.push(score);
            }
        }
    }
    Ok(TrialScores {
        scores: SpeakerScores {
            model_id: model.model_id().to_string(),
            recordings: samples.len(),
            genuine,
            impostor,
        },
        failures,
        trials_skipped: skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trial_lists() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("trials.csv");
        std::fs::write(
            &list,
            "label,enroll,probe\ntarget,a.wav;b.wav,c.wav\nnontarget, a.wav ,d.wav\n\n",
        )
        .unwrap();
        let trials = read_trials(&list, dir.path()).unwrap();
        assert_eq!(trials.len(), 2);
        assert_eq!(trials[0].enroll.len(), 2);
        assert!(trials[0].same && !trials[1].same);
        assert_eq!(trials[1].probe, dir.path().join("d.wav"));
        for (i, text) in [
            "",
            "enroll,probe\na,b\n",
            "enroll,probe,label\na.wav,b.wav,maybe\n",
            "enroll,probe,label\na.wav,,1\n",
            "enroll,probe,label\na.wav,a.wav,1\n",
            "enroll,probe,label\n",
        ]
        .iter()
        .enumerate()
        {
            std::fs::write(&list, text).unwrap();
            let err = read_trials(&list, dir.path()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Dataset, "case {i}: {err}");
        }
    }
}
