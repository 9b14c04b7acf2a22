//! Speaker-verification evaluation on a folder laid out `SPEAKER/…/*.flac|wav`.
//!
//! Protocol: every recording is analysed once; for every pair of recordings `(i, j)` with `i`
//! before `j` in sorted path order, a voiceprint enrolled from recording `i` alone is scored
//! against recording `j` as the probe. Enrollment and probe are always different recordings;
//! a pair is genuine when both come from the same speaker folder. On LibriSpeech test-other's
//! 10 × 10 excerpt that is 450 genuine and 4,500 impostor trials.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::metrics::ScoreSet;
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
    let samples = crate::eval::parallel_map(recordings, threads, on_item, |r| {
        Audio::open(&r.path, &limits)
            .and_then(|a| model.analyse(&a))
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", r.path.display(), e.message())))
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let indices: Vec<usize> = (0..samples.len()).collect();
    let rows = crate::eval::parallel_map(&indices, threads, on_item, |&i| {
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
