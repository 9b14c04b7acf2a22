//! Recorded digit takes played as a microphone: a speaker's single-digit recordings named
//! `{digit}_{speaker}_{take}.wav` (the Free Spoken Digit Dataset's naming), joined into the
//! spoken response to a passphrase challenge whose digits are only known once it is issued.
//!
//! This is how the kiosk flows run end to end without a microphone (tests, demos, replaying a
//! recorded customer): the audio still goes through [`crate::capture::capture_utterance`]
//! like a device's would. It is a recording, so it is exactly what the passphrase's replay
//! defence is meant to catch when the digits are wrong — and only then.

use std::path::{Path, PathBuf};

use crate::capture::AudioFileSource;
use crate::error::{Error, ErrorKind, Result};
use crate::voice::{Audio, AudioLimits, SAMPLE_RATE};

/// Silence before, between and after the digits of a joined phrase, in seconds: a pause a
/// reader leaves, longer than the VAD's gap merging, shorter than endpointing's trailing
/// silence.
pub const DIGIT_GAP_SECONDS: f32 = 0.3;

/// Silence after the last digit, in seconds: a microphone keeps delivering the room after the
/// customer stops, and endpointing needs its trailing silence to end the utterance.
pub const TRAILING_SILENCE_SECONDS: f32 = 1.2;

/// One speaker's recorded digits.
#[derive(Clone, Debug)]
pub struct RecordedDigits {
    dir: PathBuf,
    speaker: String,
    limits: AudioLimits,
}

impl RecordedDigits {
    /// The takes of `speaker` in `dir`; refused with [`ErrorKind::NotFound`] when the folder
    /// holds none of theirs.
    pub fn new(dir: &Path, speaker: &str) -> Result<RecordedDigits> {
        let prefix_ok = |name: &str| {
            let mut parts = name.trim_end_matches(".wav").splitn(3, '_');
            matches!((parts.next(), parts.next()), (Some(d), Some(s)) if d.len() == 1 && s == speaker)
        };
        let found = std::fs::read_dir(dir)
            .map_err(|e| Error::io("listing recorded digits", dir, e))?
            .filter_map(std::result::Result::ok)
            .any(|e| e.file_name().to_str().is_some_and(prefix_ok));
        if !found {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "no recordings of speaker {speaker:?} in {} (expected DIGIT_{speaker}_TAKE.wav)",
                    dir.display()
                ),
            ));
        }
        Ok(RecordedDigits {
            dir: dir.to_path_buf(),
            speaker: speaker.to_string(),
            limits: AudioLimits {
                // Single spoken digits are short.
                min_seconds: 0.1,
                ..AudioLimits::default()
            },
        })
    }

    /// Take `take` of `digit` (16 kHz mono).
    pub fn take(&self, digit: u8, take: u32) -> Result<Audio> {
        let path = self
            .dir
            .join(format!("{digit}_{}_{take}.wav", self.speaker));
        Audio::open(&path, &self.limits)
    }

    /// `digits` spoken one after another, digit `i` from take `first_take + i`, with
    /// [`DIGIT_GAP_SECONDS`] of silence around each, as a 16 kHz audio source.
    pub fn phrase(&self, digits: &str, first_take: u32) -> Result<AudioFileSource> {
        let takes = digits
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                if !b.is_ascii_digit() {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!("{digits:?} is not a string of digits"),
                    ));
                }
                self.take(b - b'0', first_take + i as u32)
            })
            .collect::<Result<Vec<_>>>()?;
        let joined = crate::voice::audio::join_recordings(
            &takes.iter().collect::<Vec<_>>(),
            DIGIT_GAP_SECONDS,
        )?;
        let mut samples = joined.samples().to_vec();
        samples.resize(
            samples.len() + (TRAILING_SILENCE_SECONDS * SAMPLE_RATE as f32) as usize,
            0.0,
        );
        AudioFileSource::from_samples(
            format!("{} saying {digits}", self.speaker),
            SAMPLE_RATE,
            samples,
        )
    }

    /// One digit alone (take `take`), with silence around it, as a 16 kHz audio source.
    pub fn digit(&self, digit: u8, take: u32) -> Result<AudioFileSource> {
        self.phrase(&digit.to_string(), take)
    }
}
