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
    /// Takes of each digit per speaker that adapted the head (and were not judged); 0 for
    /// the head alone.
    pub adapt_takes: usize,
    /// Recordings left out, each with its reason.
    pub skipped: Vec<Skipped>,
}

/// One recording's name fields and features.
struct Recognised {
    file: PathBuf,
    digit: u8,
    take: u32,
    features: Vec<f32>,
}

/// The digit, speaker and take of a `{digit}_{speaker}_{take}.wav` name (`None` for any
/// other name).
pub fn parse_digit_name(path: &Path) -> Option<(u8, String, u32)> {
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
    let take = take.parse::<u32>().ok()?;
    (!speaker.is_empty()).then(|| (digit, speaker.to_string(), take))
}

/// Recognises every recording of `dir` with `head`, `threads` at a time (`on_file` after
/// each). With `adapt_takes` K > 0, each speaker's K lowest-numbered takes of every digit
/// adapt the head to them ([`DigitHead::adapt`], as an enrollment would) and only their other
/// takes are judged; a speaker without K takes of some digit is skipped whole. Files whose
/// names do not follow the pattern, and recordings that do not decode, are skipped and
/// listed; a folder with nothing to judge is [`ErrorKind::Dataset`].
pub fn evaluate_digits(
    engine: &Engine,
    head: &DigitHead,
    dir: &Path,
    adapt_takes: usize,
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
    type Word = (u8, String, u32, Vec<f32>);
    let outcomes: Vec<std::result::Result<Word, String>> =
        crate::parallel::parallel_map(&files, threads, on_file, |path| {
            let (digit, speaker, take) =
                parse_digit_name(path).ok_or("not a {digit}_{speaker}_{take}.wav name")?;
            let audio = Audio::open(path, &limits).map_err(|e| e.to_string())?;
            let features =
                DigitHead::features(embedder, audio.samples()).map_err(|e| e.to_string())?;
            Ok((digit, speaker, take, features))
        });
    let mut skipped = Vec::new();
    let mut by_speaker_words: BTreeMap<String, Vec<Recognised>> = BTreeMap::new();
    for (path, outcome) in files.iter().zip(outcomes) {
        match outcome {
            Ok((digit, speaker, take, features)) => by_speaker_words
                .entry(speaker)
                .or_default()
                .push(Recognised {
                    file: path.clone(),
                    digit,
                    take,
                    features,
                }),
            Err(reason) => skipped.push(Skipped {
                file: path.clone(),
                reason,
            }),
        }
    }
    let mut confusion = [[0usize; 10]; 10];
    let mut by_speaker: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (speaker, mut words) in by_speaker_words {
        words.sort_by_key(|w| (w.digit, w.take));
        let mut enrolled = Vec::new();
        let mut judged = Vec::new();
        let mut per_digit = [0usize; 10];
        for w in words {
            let d = usize::from(w.digit);
            if per_digit[d] < adapt_takes {
                per_digit[d] += 1;
                enrolled.push(w);
            } else {
                judged.push(w);
            }
        }
        let adapted = if adapt_takes > 0 {
            if let Some(d) = per_digit.iter().position(|&c| c < adapt_takes) {
                let reason = format!(
                    "speaker {speaker} has fewer than {adapt_takes} take(s) of digit {d} to adapt with"
                );
                skipped.extend(enrolled.iter().chain(&judged).map(|w| Skipped {
                    file: w.file.clone(),
                    reason: reason.clone(),
                }));
                continue;
            }
            let words: Vec<(u8, &[f32])> = enrolled
                .iter()
                .map(|w| (w.digit, w.features.as_slice()))
                .collect();
            Some(head.adapt(&words)?)
        } else {
            None
        };
        for Recognised {
            digit, features, ..
        } in &judged
        {
            let (recognised, _) = match &adapted {
                Some(a) => a.recognise(features)?,
                None => head.recognise(features)?,
            };
            confusion[usize::from(*digit)][usize::from(recognised)] += 1;
            let entry = by_speaker.entry(speaker.clone()).or_default();
            entry.0 += usize::from(*digit == recognised);
            entry.1 += 1;
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
        adapt_takes,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_digit_speaker_take_pattern() {
        assert_eq!(
            parse_digit_name(Path::new("a/7_theo_12.wav")),
            Some((7, "theo".into(), 12))
        );
        assert_eq!(
            parse_digit_name(Path::new("7_theo_12.WAV")),
            Some((7, "theo".into(), 12))
        );
        for bad in [
            "12_theo_1.wav",
            "7_theo.wav",
            "7__1.wav",
            "x_theo_1.wav",
            "7_theo_a.wav",
            "7_theo_1.flac",
        ] {
            assert_eq!(parse_digit_name(Path::new(bad)), None, "{bad}");
        }
    }
}
