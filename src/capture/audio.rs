//! Audio capture: a device's stream (any rate, any channel count) → 16 kHz mono → one
//! utterance, endpointed with the project's VAD.
//!
//! [`ToMono16k`] mixes down and resamples chunk by chunk with the same kernel as
//! [`crate::voice::resample::resample`], so the result equals converting the whole recording
//! at once. [`SampleRing`] holds what is being listened to in a fixed amount of memory.
//! [`capture_utterance`] waits for speech, keeps a pre-roll before it (the energy VAD misses
//! soft onsets such as the "f" of "five"), and stops after trailing silence or at a maximum
//! length. Recordings are biometric data: buffers are wiped on drop and never logged.

use std::collections::VecDeque;
use std::time::Duration;

use zeroize::{Zeroize, Zeroizing};

use crate::capture::{AudioChunk, AudioSource};
use crate::error::{Error, ErrorKind, Result};
use crate::voice::audio::{Audio, SAMPLE_RATE};
use crate::voice::resample::resample;
use crate::voice::vad::{self, VadConfig};

/// A bounded buffer of samples that drops the oldest when full, counting what it dropped.
///
/// It never grows past its capacity, whatever a device delivers; a consumer that falls behind
/// loses the oldest audio and can see how much. Samples are addressed by their index in the
/// whole stream ([`SampleRing::offset`] is the index of the oldest held). Wiped on drop.
pub struct SampleRing {
    buf: VecDeque<f32>,
    capacity: usize,
    offset: u64,
    dropped: u64,
    overflows: u64,
}

impl std::fmt::Debug for SampleRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleRing")
            .field("len", &self.buf.len())
            .field("capacity", &self.capacity)
            .field("offset", &self.offset)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl SampleRing {
    /// An empty ring holding at most `capacity` samples (at least 1).
    pub fn new(capacity: usize) -> SampleRing {
        let capacity = capacity.max(1);
        SampleRing {
            buf: VecDeque::with_capacity(capacity),
            capacity,
            offset: 0,
            dropped: 0,
            overflows: 0,
        }
    }

    /// The most samples held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Stream index of the oldest sample held.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Stream index one past the newest sample: how many samples were ever pushed.
    pub fn end(&self) -> u64 {
        self.offset + self.buf.len() as u64
    }

    /// Samples lost because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Pushes that overflowed (each dropped at least one sample).
    pub fn overflows(&self) -> u64 {
        self.overflows
    }

    /// Appends samples; when they do not fit, the oldest are dropped and counted.
    pub fn push(&mut self, samples: &[f32]) {
        let excess = (self.buf.len() + samples.len()).saturating_sub(self.capacity);
        if excess > 0 {
            self.overflows += 1;
            self.dropped += excess as u64;
            // Samples older than the last `capacity` pushed never enter the buffer.
            let skip = samples.len().saturating_sub(self.capacity);
            self.forget(excess - skip);
            self.offset += skip as u64;
            self.buf.extend(&samples[skip..]);
        } else {
            self.buf.extend(samples);
        }
    }

    /// Drops the `n` oldest samples on purpose (not counted as overflow).
    pub fn discard_oldest(&mut self, n: usize) {
        self.forget(n.min(self.buf.len()));
    }

    /// The held samples, oldest first, as one slice.
    pub fn as_slice(&mut self) -> &[f32] {
        self.buf.make_contiguous()
    }

    fn forget(&mut self, n: usize) {
        for mut v in self.buf.drain(..n) {
            v.zeroize();
        }
        self.offset += n as u64;
    }
}

impl Drop for SampleRing {
    fn drop(&mut self) {
        self.buf.iter_mut().for_each(Zeroize::zeroize);
    }
}

/// Streaming conversion of a device's chunks to 16 kHz mono.
///
/// Channels are averaged (as [`crate::voice::audio::decode_native`] does), then resampled in
/// blocks with enough input on both sides of each block that every output sample sees the
/// same input as a conversion of the whole recording: the result equals
/// `resample(whole, rate, 16 kHz)` sample for sample, delayed by about 50 ms. At 16 kHz the
/// samples pass through unchanged.
pub struct ToMono16k {
    rate: u32,
    channels: u16,
    up: u64,
    down: u64,
    /// Input samples kept on each side of an output sample's position; at least the
    /// resampler's kernel reach.
    context: u64,
    /// Mono input not yet entirely used, starting at stream index `in_start`.
    pending: Vec<f32>,
    in_start: u64,
    total_in: u64,
    next_out: u64,
}

impl std::fmt::Debug for ToMono16k {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ToMono16k({} Hz × {} → 16 kHz mono)",
            self.rate, self.channels
        )
    }
}

/// Output samples converted per block (50 ms): the resampler builds its phase table per call,
/// which is cheap once per block and wasteful once per 10 ms chunk.
const BLOCK_OUT: u64 = 800;

impl ToMono16k {
    /// A converter for a device at `rate` Hz with `channels` interleaved channels. Refused
    /// ([`ErrorKind::Device`]): a rate outside 4–192 kHz, no channels.
    pub fn new(rate: u32, channels: u16) -> Result<ToMono16k> {
        if !(4_000..=192_000).contains(&rate) || channels == 0 {
            return Err(Error::new(
                ErrorKind::Device,
                format!(
                    "the device delivers {channels} channel(s) at {rate} Hz; capture needs 1 or more channels at 4–192 kHz"
                ),
            ));
        }
        let g = gcd(u64::from(rate), u64::from(SAMPLE_RATE));
        // The resampler's windowed sinc reaches 32 zero crossings at 0.97 of the lower Nyquist
        // frequency: ≈ 33 input samples when upsampling, times rate/16k when downsampling. 40
        // per 16 kHz of input rate covers it; a test checks equality with the whole-buffer
        // conversion at the common device rates.
        let context = 40 * u64::from(rate.div_ceil(SAMPLE_RATE));
        Ok(ToMono16k {
            rate,
            channels,
            up: u64::from(SAMPLE_RATE) / g,
            down: u64::from(rate) / g,
            context,
            pending: Vec::new(),
            in_start: 0,
            total_in: 0,
            next_out: 0,
        })
    }

    /// Converts a chunk; returns the 16 kHz samples that became final (possibly none).
    /// Refused ([`ErrorKind::Device`]): a chunk of another rate or channel count than the
    /// converter's, a partial frame, non-finite samples.
    pub fn push(&mut self, chunk: &AudioChunk) -> Result<Vec<f32>> {
        if chunk.sample_rate != self.rate || chunk.channels != self.channels {
            return Err(Error::new(
                ErrorKind::Device,
                format!(
                    "the device switched from {} channel(s) at {} Hz to {} at {} Hz mid-stream",
                    self.channels, self.rate, chunk.channels, chunk.sample_rate
                ),
            ));
        }
        let channels = usize::from(self.channels);
        if !chunk.samples.len().is_multiple_of(channels) {
            return Err(Error::new(
                ErrorKind::Device,
                format!(
                    "a chunk of {} samples is not a whole number of {channels}-channel frames",
                    chunk.samples.len()
                ),
            ));
        }
        if chunk.samples.iter().any(|s| !s.is_finite()) {
            return Err(Error::new(
                ErrorKind::Device,
                "the device delivered a non-finite sample",
            ));
        }
        let before = self.pending.len();
        self.pending.extend(
            chunk
                .samples
                .chunks(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
        self.total_in += (self.pending.len() - before) as u64;
        if self.rate == SAMPLE_RATE {
            self.in_start = self.total_in;
            self.next_out = self.total_in;
            return Ok(std::mem::take(&mut self.pending));
        }
        // Outputs n whose input neighbourhood is complete: floor(n·down/up) + context < total.
        let n_end = match self.total_in.checked_sub(self.context) {
            Some(x) => (x * self.up).div_ceil(self.down),
            None => 0,
        };
        if n_end < self.next_out + BLOCK_OUT {
            return Ok(Vec::new());
        }
        Ok(self.emit(n_end))
    }

    /// The rest of the conversion at the end of the stream (the input is taken to be silent
    /// after its end, as the whole-buffer conversion takes it).
    pub fn finish(&mut self) -> Vec<f32> {
        if self.rate == SAMPLE_RATE {
            return std::mem::take(&mut self.pending);
        }
        // round(total · up / down), the whole-buffer output length.
        let n_end = (2 * self.total_in * self.up + self.down) / (2 * self.down);
        self.emit(n_end)
    }

    fn emit(&mut self, n_end: u64) -> Vec<f32> {
        if n_end <= self.next_out {
            return Vec::new();
        }
        // `in_start` is a multiple of `down`, so output m of this block is output
        // `in_start·up/down + m` of the stream, at the same phase.
        let first_out = self.in_start * self.up / self.down;
        let mut block = resample(&self.pending, self.rate, SAMPLE_RATE);
        let a = (self.next_out - first_out) as usize;
        let b = ((n_end - first_out) as usize).min(block.len());
        let out = block[a.min(b)..b].to_vec();
        block.zeroize();
        self.next_out = n_end;
        let needed = (n_end * self.down / self.up).saturating_sub(self.context);
        let keep_from = (needed / self.down * self.down).max(self.in_start);
        let drop = (keep_from - self.in_start) as usize;
        self.pending[..drop].zeroize();
        self.pending.drain(..drop);
        self.in_start = keep_from;
        out
    }
}

impl Drop for ToMono16k {
    fn drop(&mut self) {
        self.pending.zeroize();
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

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

/// Writes mono samples in [-1, 1] (clamped) as a 16-bit PCM WAV file at `rate` Hz.
pub fn wav_pcm16(samples: &[f32], rate: u32) -> Zeroizing<Vec<u8>> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 36) & !1;
    let mut out = Zeroizing::new(Vec::with_capacity(44 + data_len as usize));
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in &samples[..data_len as usize / 2] {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
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

    #[test]
    fn the_ring_drops_the_oldest_and_counts_it() {
        let mut ring = SampleRing::new(4);
        ring.push(&[1.0, 2.0, 3.0]);
        assert_eq!((ring.len(), ring.dropped(), ring.overflows()), (3, 0, 0));
        ring.push(&[4.0, 5.0]);
        assert_eq!(ring.as_slice(), [2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            (ring.offset(), ring.end(), ring.dropped(), ring.overflows()),
            (1, 5, 1, 1)
        );
        // A push larger than the ring keeps only its newest samples.
        ring.push(&[6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
        assert_eq!(ring.as_slice(), [8.0, 9.0, 10.0, 11.0]);
        assert_eq!(
            (ring.offset(), ring.end(), ring.dropped(), ring.overflows()),
            (7, 11, 7, 2)
        );
        // Discarding on purpose is not an overflow.
        ring.discard_oldest(3);
        assert_eq!(ring.as_slice(), [11.0]);
        assert_eq!((ring.offset(), ring.dropped()), (10, 7));
        ring.discard_oldest(9);
        assert!(ring.is_empty());
        assert_eq!(ring.capacity(), 4);
        assert_eq!(SampleRing::new(0).capacity(), 1);
    }

    fn noise(n: usize, amplitude: f32, seed: &mut u64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((*seed >> 33) as f32 / (1u64 << 31) as f32 - 1.0) * amplitude
            })
            .collect()
    }

    fn tone(n: usize, rate: u32, freq: f32, amplitude: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin() * amplitude)
            .collect()
    }

    #[test]
    fn streaming_conversion_equals_whole_recording_conversion() {
        let mut seed = 7;
        for (rate, channels, chunk) in [
            (8_000, 1, 80),
            (8_000, 2, 37),
            (44_100, 2, 441),
            (48_000, 1, 480),
            (22_050, 2, 1000),
            (11_025, 1, 3),
        ] {
            let mono = noise(rate as usize * 7 / 10, 0.5, &mut seed);
            let whole = resample(&mono, rate, SAMPLE_RATE);
            let mut source = AudioFileSource::from_samples("noise", rate, mono)
                .unwrap()
                .chunk_frames(chunk)
                .channels(channels)
                .paced(false);
            let mut converter = ToMono16k::new(rate, channels).unwrap();
            let mut streamed = Vec::new();
            while let Some(c) = source.next_chunk(Duration::ZERO).unwrap() {
                streamed.extend(converter.push(&c).unwrap());
            }
            streamed.extend(converter.finish());
            assert_eq!(streamed.len(), whole.len(), "{rate} Hz");
            let worst = streamed
                .iter()
                .zip(&whole)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-6, "{rate} Hz × {channels}: {worst}");
        }
    }

    #[test]
    fn sixteen_khz_passes_through_and_bad_chunks_are_device_errors() {
        let mut converter = ToMono16k::new(16_000, 2).unwrap();
        let chunk = AudioChunk {
            samples: vec![0.25, 0.75, -0.5, -0.5],
            channels: 2,
            sample_rate: 16_000,
        };
        assert_eq!(converter.push(&chunk).unwrap(), [0.5, -0.5]);
        assert!(converter.finish().is_empty());
        let with = |edit: fn(&mut AudioChunk)| {
            let mut bad = chunk.clone();
            edit(&mut bad);
            bad
        };
        for bad in [
            with(|c| c.samples = vec![0.0; 3]),
            with(|c| c.sample_rate = 8_000),
            with(|c| c.samples = vec![f32::NAN, 0.0]),
        ] {
            assert_eq!(converter.push(&bad).unwrap_err().kind(), ErrorKind::Device);
        }
        assert_eq!(
            ToMono16k::new(100, 1).unwrap_err().kind(),
            ErrorKind::Device
        );
        assert_eq!(
            ToMono16k::new(16_000, 0).unwrap_err().kind(),
            ErrorKind::Device
        );
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
