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

/// Runs the all-pairs protocol of the module docs with `model`; `on_item` is called once per
/// recording analysed and once per voiceprint enrolled.
pub fn score_all_pairs(
    model: &dyn SpeakerModel,
    recordings: &[SpeakerRecording],
    threads: usize,
    on_item: &(dyn Fn() + Sync),
) -> Result<SpeakerScores> {
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
            .map(|j| {
                let genuine = recordings[i].speaker == recordings[j].speaker;
                model.score(&print, &samples[j]).map(|s| (genuine, s))
            })
            .collect::<Result<Vec<_>>>()
    });
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for row in rows {
        for (same, score) in row? {
            if same {
                genuine.push(score);
            } else {
                impostor.push(score);
            }
        }
    }
    Ok(SpeakerScores {
        model_id: model.model_id().to_string(),
        recordings: recordings.len(),
        genuine,
        impostor,
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
