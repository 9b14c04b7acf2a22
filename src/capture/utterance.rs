//! Utterance capture: a device's stream (any rate, any channel count) → 16 kHz mono → one
//! utterance, endpointed with the project's VAD.
//!
//! [`capture_utterance`] converts the chunks with [`ToMono16k`] (equal to converting the whole
//! recording at once) and listens in a bounded [`SampleRing`]. It waits for speech, keeps a
//! pre-roll before it (the energy VAD misses soft onsets such as the "f" of "five"), and stops
//! after trailing silence or at a maximum length; the [`Utterance`] carries measurements and
//! warnings for the speaker. Recordings are biometric data: buffers are wiped on drop and never
//! logged.

use std::time::Duration;

use zeroize::Zeroizing;

use crate::capture::{AudioSource, SampleRing};
use crate::error::{Error, ErrorKind, Result};
use crate::voice::audio::{Audio, SAMPLE_RATE};
use crate::voice::stream::ToMono16k;
use crate::voice::vad::{self, VadConfig};
use crate::voice::wav::wav_pcm16;

/// How [`capture_utterance`] listens.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioCaptureConfig {
    /// The VAD that finds speech. By default, [`VadConfig::default`], the one the passphrase
    /// front end splits digits with.
    pub vad: VadConfig,
    /// Audio kept before the first speech the VAD finds. By default, 0.3 s.
    pub pre_roll: Duration,
    /// Audio kept after the last speech. By default, 0.2 s.
    pub post_roll: Duration,
    /// Silence after speech that ends the utterance. By default, 0.8 s: longer than the
    /// pauses between spoken digits, short enough not to keep a customer waiting.
    pub trailing_silence: Duration,
    /// The longest utterance, from its first speech; capture stops there. By default, 10 s
    /// (a six-digit passphrase takes 3–5 s). At most 120 s.
    pub max_utterance: Duration,
    /// Audio listened to without any speech before giving up with
    /// [`ErrorKind::NoUsableCapture`]. By default, 5 s.
    pub no_speech_timeout: Duration,
    /// How long to wait for each chunk before [`ErrorKind::CaptureTimeout`]. By default, 1 s.
    pub chunk_timeout: Duration,
    /// Share of samples at full scale above which the result warns of clipping. By default,
    /// 0.001: already audible, and a tenth of what the decoder refuses
    /// ([`crate::voice::AudioLimits::max_clipped`]).
    pub clip_warning: f32,
    /// RMS level of the speech (dBFS, pauses excluded) below which the result warns it is
    /// quiet. By default, -45: 10 dB above the level at which the decoder refuses a whole
    /// recording as silent.
    pub quiet_dbfs: f32,
}

impl Default for AudioCaptureConfig {
    fn default() -> AudioCaptureConfig {
        AudioCaptureConfig {
            vad: VadConfig::default(),
            pre_roll: Duration::from_millis(300),
            post_roll: Duration::from_millis(200),
            trailing_silence: Duration::from_millis(800),
            max_utterance: Duration::from_secs(10),
            no_speech_timeout: Duration::from_secs(5),
            chunk_timeout: Duration::from_secs(1),
            clip_warning: 0.001,
            quiet_dbfs: -45.0,
        }
    }
}

impl AudioCaptureConfig {
    /// Checks the settings ([`ErrorKind::Config`]).
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::new(
                ErrorKind::Config,
                format!("audio capture: {what}"),
            ))
        };
        if self.trailing_silence.is_zero() {
            return bad("trailing_silence must be positive");
        }
        if self.max_utterance.is_zero() || self.max_utterance > Duration::from_secs(120) {
            return bad("max_utterance must be between 0 and 120 s");
        }
        if self.no_speech_timeout.is_zero() {
            return bad("no_speech_timeout must be positive");
        }
        if self.pre_roll > Duration::from_secs(5) || self.post_roll > Duration::from_secs(5) {
            return bad("pre_roll and post_roll are at most 5 s");
        }
        if !(0.0..=1.0).contains(&self.clip_warning) || !self.quiet_dbfs.is_finite() {
            return bad("clip_warning must be in [0, 1] and quiet_dbfs finite");
        }
        Ok(())
    }
}

/// Why capture stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Speech was followed by the configured trailing silence.
    TrailingSilence,
    /// The utterance reached the maximum length.
    MaxLength,
    /// The source ended during speech or before the trailing silence was complete.
    EndOfStream,
}

/// Something about an utterance worth telling the speaker; the utterance is still returned.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioWarning {
    /// This share of samples is at full scale.
    Clipped {
        /// Share of samples at full scale.
        share: f32,
    },
    /// The speech is quiet: this RMS level in dBFS (pauses excluded).
    Quiet {
        /// RMS level of the speech in dBFS.
        dbfs: f32,
    },
    /// The maximum length was reached: the end of the speech may be missing.
    Truncated,
    /// The source ended before the trailing silence: the end of the speech may be missing.
    StreamEnded,
    /// The capture buffer overflowed and lost this many samples (16 kHz).
    Overflow {
        /// Samples lost.
        samples: u64,
    },
}

impl std::fmt::Display for AudioWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AudioWarning::Clipped { share } => write!(
                f,
                "{:.2} % of the samples are clipped: speak further from the microphone or lower its gain",
                100.0 * share
            ),
            AudioWarning::Quiet { dbfs } => write!(
                f,
                "the speech is quiet ({dbfs:.0} dBFS): speak louder or closer to the microphone"
            ),
            AudioWarning::Truncated => {
                f.write_str("the maximum length was reached: the end may be cut")
            }
            AudioWarning::StreamEnded => {
                f.write_str("the sound stopped before the speech ended: the end may be cut")
            }
            AudioWarning::Overflow { samples } => write!(
                f,
                "{samples} samples were lost because capture fell behind the device"
            ),
        }
    }
}

/// Measurements of a captured utterance.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AudioCaptureStats {
    /// The device's rate in Hz.
    pub device_rate: u32,
    /// The device's channels.
    pub device_channels: u16,
    /// Audio listened to, in seconds (including what came before the speech).
    pub listened_seconds: f32,
    /// The utterance's duration in seconds.
    pub seconds: f32,
    /// Speech in the utterance according to the VAD, in seconds.
    pub speech_seconds: f32,
    /// Speech segments the VAD finds in the utterance (spoken digits, for a passphrase).
    pub speech_segments: usize,
    /// Largest absolute sample value.
    pub peak: f32,
    /// RMS level in dBFS, pauses included (what the decoder's silence check measures).
    pub rms_dbfs: f32,
    /// RMS level of the speech segments alone, in dBFS (−inf without speech): how loud the
    /// speaker is, whatever the pauses.
    pub speech_dbfs: f32,
    /// Share of samples at full scale (|x| ≥ 0.999).
    pub clipped: f32,
    /// Samples (16 kHz) lost to buffer overflow.
    pub overflow_samples: u64,
}

/// One endpointed utterance: 16 kHz mono audio, measurements and warnings.
#[derive(Debug)]
pub struct Utterance {
    /// The utterance, 16 kHz mono.
    pub audio: Audio,
    /// Its measurements.
    pub stats: AudioCaptureStats,
    /// Warnings for the speaker (clipping, quiet, truncated…); empty when all is well.
    pub warnings: Vec<AudioWarning>,
    /// Why capture stopped.
    pub ending: Ending,
}

impl Utterance {
    /// The utterance as a 16-bit PCM mono WAV file at 16 kHz, the bytes
    /// [`crate::authenticator::Authenticator`] takes. Wiped on drop.
    pub fn wav(&self) -> Zeroizing<Vec<u8>> {
        wav_pcm16(self.audio.samples(), SAMPLE_RATE)
    }
}

/// Before speech, the ring keeps the pre-roll plus this much: the VAD learns the noise floor
/// from it.
const NOISE_HISTORY: Duration = Duration::from_secs(1);
/// The VAD is re-run after this much new audio (100 ms at 16 kHz): endpointing reacts within
/// a tenth of a second, and the VAD (which estimates its noise floor over the whole window)
/// costs a few hundred microseconds per run.
const DECIDE_EVERY: usize = 1_600;

/// Listens to `source` until one utterance is complete (see the module docs) and returns it.
///
/// Errors: [`ErrorKind::NoUsableCapture`] when no speech came within `no_speech_timeout` of
/// audio or before the stream ended; the source's [`ErrorKind::CaptureTimeout`] and
/// [`ErrorKind::Device`] as they come; [`ErrorKind::Config`] for invalid settings.
pub fn capture_utterance(
    source: &mut dyn AudioSource,
    config: &AudioCaptureConfig,
) -> Result<Utterance> {
    config.validate()?;
    let info = source.info();
    let mut converter = ToMono16k::new(info.sample_rate, info.channels)?;
    let at_16k = |d: Duration| (d.as_secs_f64() * f64::from(SAMPLE_RATE)).round() as u64;
    let pre_roll = at_16k(config.pre_roll);
    let waiting_window = (pre_roll + at_16k(NOISE_HISTORY)) as usize;
    let max_len = at_16k(config.max_utterance);
    let trailing = at_16k(config.trailing_silence);
    let no_speech = at_16k(config.no_speech_timeout);
    // Room for the pre-speech window, the longest utterance, and a second of chunks between
    // two decisions; anything beyond is dropped and reported, never grown into.
    let mut ring = SampleRing::new(waiting_window + max_len as usize + SAMPLE_RATE as usize);
    // Stream indices (16 kHz) of the first speech start and the last speech end.
    let mut speech: Option<(u64, u64)> = None;
    let mut peak = 0.0f32;
    let mut undecided = 0usize;
    let ending = loop {
        let (fresh, done) = match source.next_chunk(config.chunk_timeout)? {
            Some(chunk) => (converter.push(&chunk)?, false),
            None => (converter.finish(), true),
        };
        let fresh = Zeroizing::new(fresh);
        peak = fresh.iter().fold(peak, |p, s| p.max(s.abs()));
        ring.push(&fresh);
        undecided += fresh.len();
        if undecided < DECIDE_EVERY && !done {
            continue;
        }
        undecided = 0;
        if let Some(found) = speech_span(&mut ring, &config.vad) {
            speech = Some(found);
        }
        match speech {
            None => {
                if done || ring.end() >= no_speech {
                    let how = if done {
                        "before the sound ended"
                    } else {
                        "within the time allowed"
                    };
                    return Err(Error::new(
                        ErrorKind::NoUsableCapture,
                        format!(
                            "no speech in {:.1} s of audio {how} (loudest sample {:.0} dBFS): speak closer to the microphone",
                            ring.end() as f32 / SAMPLE_RATE as f32,
                            20.0 * peak.max(1e-9).log10()
                        ),
                    ));
                }
                let excess = ring.len().saturating_sub(waiting_window);
                ring.discard_oldest(excess);
            }
            Some((start, end)) => {
                if ring.end().saturating_sub(end) >= trailing {
                    break Ending::TrailingSilence;
                }
                if ring.end() - start >= max_len {
                    break Ending::MaxLength;
                }
                if done {
                    break Ending::EndOfStream;
                }
            }
        }
    };
    // The VAD over everything heard gives the best estimate of where the speech lies.
    let (start, end) = speech_span(&mut ring, &config.vad)
        .or(speech)
        .unwrap_or((ring.offset(), ring.end()));
    let from = start.saturating_sub(pre_roll).max(ring.offset());
    let to = (end + at_16k(config.post_roll))
        .min(start + max_len)
        .min(ring.end())
        .max(from);
    let offset = ring.offset();
    let listened = ring.end();
    let samples = ring.as_slice()[(from - offset) as usize..(to - offset) as usize].to_vec();
    let audio = Audio::from_samples(samples)?;
    let stats = measure(&audio, &config.vad, &info, listened, ring.dropped());
    let mut warnings = Vec::new();
    if stats.clipped > config.clip_warning {
        warnings.push(AudioWarning::Clipped {
            share: stats.clipped,
        });
    }
    if stats.speech_dbfs < config.quiet_dbfs {
        warnings.push(AudioWarning::Quiet {
            dbfs: stats.speech_dbfs,
        });
    }
    match ending {
        Ending::MaxLength => warnings.push(AudioWarning::Truncated),
        Ending::EndOfStream => warnings.push(AudioWarning::StreamEnded),
        Ending::TrailingSilence => {}
    }
    if ring.dropped() > 0 {
        warnings.push(AudioWarning::Overflow {
            samples: ring.dropped(),
        });
    }
    Ok(Utterance {
        audio,
        stats,
        warnings,
        ending,
    })
}

/// Stream indices of the first speech start and the last speech end in the ring.
fn speech_span(ring: &mut SampleRing, vad: &VadConfig) -> Option<(u64, u64)> {
    let offset = ring.offset();
    let found = vad::segments(ring.as_slice(), vad);
    let (first, last) = (found.first()?, found.last()?);
    Some((offset + first.start as u64, offset + last.end as u64))
}

fn speech_dbfs(x: &[f32], segments: &[vad::Segment]) -> f32 {
    let (mut energy, mut n) = (0.0f64, 0usize);
    for s in segments {
        energy += x[s.start..s.end]
            .iter()
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>();
        n += s.end - s.start;
    }
    if n == 0 {
        return f32::NEG_INFINITY;
    }
    (10.0 * (energy / n as f64).log10()) as f32
}

fn measure(
    audio: &Audio,
    vad_config: &VadConfig,
    info: &crate::capture::AudioSourceInfo,
    listened: u64,
    dropped: u64,
) -> AudioCaptureStats {
    let x = audio.samples();
    let segments = vad::segments(x, vad_config);
    let peak = x.iter().fold(0.0f32, |p, s| p.max(s.abs()));
    let clipped = if x.is_empty() {
        0.0
    } else {
        // Resampling a clipped waveform overshoots past full scale, so ≥ catches it too.
        x.iter().filter(|v| v.abs() >= 0.999).count() as f32 / x.len() as f32
    };
    AudioCaptureStats {
        device_rate: info.sample_rate,
        device_channels: info.channels,
        listened_seconds: listened as f32 / SAMPLE_RATE as f32,
        seconds: audio.seconds(),
        speech_seconds: segments.iter().map(|s| s.seconds()).sum(),
        speech_segments: segments.len(),
        peak,
        rms_dbfs: audio.rms_dbfs(),
        speech_dbfs: speech_dbfs(x, &segments),
        clipped,
        overflow_samples: dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::AudioFileSource;
    use crate::voice::stream::tests::noise;

    fn tone(n: usize, rate: u32, freq: f32, amplitude: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin() * amplitude)
            .collect()
    }

    /// `lead` s of faint noise, `bursts` tone bursts of 0.3 s with 0.3 s pauses, `tail` s of
    /// faint noise, at `rate`.
    fn speech_like(rate: u32, lead: f32, bursts: usize, tail: f32, amplitude: f32) -> Vec<f32> {
        let mut seed = 3;
        let secs = |s: f32| (s * rate as f32) as usize;
        let mut x = noise(secs(lead), 0.001, &mut seed);
        for i in 0..bursts {
            x.extend(tone(secs(0.3), rate, 300.0 + 100.0 * i as f32, amplitude));
            x.extend(noise(secs(0.3), 0.001, &mut seed));
        }
        x.extend(noise(secs(tail), 0.001, &mut seed));
        x
    }

    fn capture(x: Vec<f32>, rate: u32, config: &AudioCaptureConfig) -> Result<Utterance> {
        let mut source = AudioFileSource::from_samples("synthetic", rate, x)
            .unwrap()
            .channels(2)
            .paced(false);
        capture_utterance(&mut source, config)
    }

    #[test]
    fn endpointing_keeps_the_pre_roll_and_stops_after_trailing_silence() {
        let config = AudioCaptureConfig::default();
        // 1 s lead, 3 bursts (speech 1.0 to 2.5 s, pauses 0.3 s), then 3 s of quiet.
        let u = capture(speech_like(8_000, 1.0, 3, 3.0, 0.3), 8_000, &config).unwrap();
        assert_eq!(u.ending, Ending::TrailingSilence);
        assert!(u.warnings.is_empty(), "{:?}", u.warnings);
        assert_eq!(u.stats.speech_segments, 3, "{:?}", u.stats);
        // 0.3 s pre-roll + 1.5 s from the first burst's start to the last one's end + the VAD's
        // hangover and frame (~0.08 s) + 0.2 s post-roll.
        assert!((u.stats.seconds - 2.08).abs() < 0.1, "{:?}", u.stats);
        assert!(
            (0.9..1.3).contains(&u.stats.speech_seconds),
            "{:?}",
            u.stats
        );
        // Stopped 0.8 s after the speech ended (~2.58 s), within a decision step of 0.1 s and
        // the converter's delay; long before the 5.8 s of the signal.
        assert!(
            (3.3..3.6).contains(&u.stats.listened_seconds),
            "{:?}",
            u.stats
        );
        // The pre-roll is there: the first burst starts about 0.3 s into the utterance.
        let onset = u
            .audio
            .samples()
            .iter()
            .position(|s| s.abs() > 0.1)
            .unwrap();
        assert!(
            (onset as f32 / 16_000.0 - 0.3).abs() < 0.03,
            "onset at {onset}"
        );
        let wav = u.wav();
        let back =
            crate::voice::Audio::decode(&wav, &crate::voice::AudioLimits::default()).unwrap();
        assert_eq!(back.samples().len(), u.audio.samples().len());
        let worst = back
            .samples()
            .iter()
            .zip(u.audio.samples())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1.0 / 32_767.0, "{worst}");
    }

    #[test]
    fn silence_is_no_usable_capture() {
        let mut seed = 1;
        let config = AudioCaptureConfig {
            no_speech_timeout: Duration::from_secs(2),
            ..AudioCaptureConfig::default()
        };
        // Timeout, counted in audio, not wall time.
        let e = capture(noise(8_000 * 6, 0.001, &mut seed), 8_000, &config).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoUsableCapture);
        assert!(e.message().contains("no speech in 2.0 s"), "{e}");
        // The stream ends first.
        let e = capture(vec![0.0; 8_000], 8_000, &config).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoUsableCapture);
        assert!(e.message().contains("before the sound ended"), "{e}");
    }

    #[test]
    fn long_speech_stops_at_the_maximum_and_says_so() {
        let config = AudioCaptureConfig {
            max_utterance: Duration::from_secs(2),
            ..AudioCaptureConfig::default()
        };
        let u = capture(speech_like(16_000, 0.5, 10, 1.0, 0.3), 16_000, &config).unwrap();
        assert_eq!(u.ending, Ending::MaxLength);
        assert!(
            u.warnings.contains(&AudioWarning::Truncated),
            "{:?}",
            u.warnings
        );
        assert!((u.stats.seconds - 2.3).abs() < 0.05, "{:?}", u.stats);
    }

    #[test]
    fn clipping_quiet_and_a_cut_end_are_warned() {
        let config = AudioCaptureConfig::default();
        let loud = capture(speech_like(8_000, 0.5, 2, 1.5, 1.5), 8_000, &config).unwrap();
        assert!(
            matches!(loud.warnings[..], [AudioWarning::Clipped { share }] if share > 0.01),
            "{:?}",
            loud.warnings
        );
        assert!(loud.warnings[0].to_string().contains("clipped"));
        let quiet = capture(speech_like(8_000, 0.5, 2, 1.5, 0.005), 8_000, &config).unwrap();
        assert!(
            matches!(quiet.warnings[..], [AudioWarning::Quiet { .. }]),
            "{:?}",
            quiet.warnings
        );
        let cut = capture(speech_like(8_000, 0.5, 2, 0.0, 0.3), 8_000, &config).unwrap();
        assert_eq!(cut.ending, Ending::EndOfStream);
        assert_eq!(cut.warnings, [AudioWarning::StreamEnded]);
    }

    #[test]
    fn invalid_settings_are_refused() {
        let config = AudioCaptureConfig {
            max_utterance: Duration::from_secs(600),
            ..AudioCaptureConfig::default()
        };
        let e = capture(vec![0.0; 100], 8_000, &config).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}
