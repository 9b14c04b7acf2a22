//! Spoken-digit recognition on any corpus: a folder of `{digit}_{speaker}_{take}.wav` at any
//! sample rate, every recording one spoken digit, recognised by a digit head
//! ([`crate::voice::digit_head`]). Measurement only: the head is used as it is, never
//! trained here, so a corpus whose speakers trained it says so in the figures' source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::eval::challenges::Rate;
use crate::voice::digit_head::DigitHead;
use crate::voice::{Audio, AudioLimits};

/// A recording left out, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// The file.
    pub file: PathBuf,
    /// Why it was left out (a name not `{digit}_{speaker}_{take}.wav`, a decode error…).
    pub reason: String,
}

/// One speaker's recognition.
#[derive(Clone, Debug, Serialize)]
pub struct SpeakerDigits {
    /// The speaker (the file names' middle field).
    pub speaker: String,
    /// Recordings recognised correctly (`hits`) of those judged.
    pub correct: Rate,
}

/// The figures of a digit evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct DigitsSummary {
    /// Recordings recognised correctly (`hits`) of those judged, with a Wilson interval.
    pub correct: Rate,
    /// `correct.rate`: the share recognised correctly.
    pub accuracy: f64,
    /// Per speaker, in name order.
    pub per_speaker: Vec<SpeakerDigits>,
    /// `confusion[spoken][recognised]`, counts.
    pub confusion: [[usize; 10]; 10],
    /// Recordings left out, each with its reason.
    pub skipped: Vec<Skipped>,
}

/// The digit and speaker of a `{digit}_{speaker}_{take}.wav` name.
fn parse_name(path: &Path) -> Option<(u8, String)> {
    if path
        .extension()
        .is_none_or(|x| !x.eq_ignore_ascii_case("wav"))
    {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    let parts: Vec<&str> = stem.split('_').collect();
    let [digit, speaker, take] = parts.as_slice() else {
        return None;
    };
    let digit: u8 = digit.parse().ok().filter(|d| *d <= 9)?;
    take.parse::<u32>().ok()?;
    (!speaker.is_empty()).then(|| (digit, speaker.to_string()))
}

/// Recognises every recording of `dir` with `head`, `threads` at a time (`on_file` after
/// each). Files whose names do not follow the pattern, and recordings that do not decode,
/// are skipped and listed; a folder with nothing to judge is [`ErrorKind::Dataset`].
pub fn evaluate_digits(
    engine: &Engine,
    head: &DigitHead,
    dir: &Path,
    threads: usize,
    on_file: &(dyn Fn() + Sync),
) -> Result<DigitsSummary> {
    let embedder = engine.speech_embedder()?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("listing recordings", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let limits = AudioLimits {
        min_seconds: 0.05,
        ..AudioLimits::default()
    };
    let outcomes: Vec<std::result::Result<(u8, String, u8), String>> =
        crate::parallel::parallel_map(&files, threads, on_file, |path| {
            let (digit, speaker) =
                parse_name(path).ok_or("not a {digit}_{speaker}_{take}.wav name")?;
            let audio = Audio::open(path, &limits).map_err(|e| e.to_string())?;
            let features =
                DigitHead::features(embedder, audio.samples()).map_err(|e| e.to_string())?;
            let (recognised, _) = head.recognise(&features).map_err(|e| e.to_string())?;
            Ok((digit, speaker, recognised))
        });
    let mut confusion = [[0usize; 10]; 10];
    let mut by_speaker: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (path, outcome) in files.iter().zip(outcomes) {
        match outcome {
            Ok((digit, speaker, recognised)) => {
                confusion[usize::from(digit)][usize::from(recognised)] += 1;
                let entry = by_speaker.entry(speaker).or_default();
                entry.0 += usize::from(digit == recognised);
                entry.1 += 1;
            }
            Err(reason) => skipped.push(Skipped {
                file: path.clone(),
                reason,
            }),
        }
    }
    let (hits, count) = by_speaker
        .values()
        .fold((0, 0), |(h, c), (sh, sc)| (h + sh, c + sc));
    if count == 0 {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "no recording of {} could be judged ({} skipped): it needs {{digit}}_{{speaker}}_{{take}}.wav files",
                dir.display(),
                skipped.len()
            ),
        ));
    }
    let correct = Rate::of(hits, count);
    Ok(DigitsSummary {
        accuracy: correct.rate,
        correct,
        per_speaker: by_speaker
            .into_iter()
            .map(|(speaker, (h, c))| SpeakerDigits {
                speaker,
                correct: Rate::of(h, c),
            })
            .collect(),
        confusion,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_digit_speaker_take_pattern() {
        assert_eq!(
            parse_name(Path::new("a/7_theo_12.wav")),
            Some((7, "theo".into()))
        );
        assert_eq!(
            parse_name(Path::new("7_theo_12.WAV")),
            Some((7, "theo".into()))
        );
        for bad in [
            "12_theo_1.wav",
            "7_theo.wav",
            "7__1.wav",
            "x_theo_1.wav",
            "7_theo_a.wav",
            "7_theo_1.flac",
        ] {
            assert_eq!(parse_name(Path::new(bad)), None, "{bad}");
        }
    }
}
