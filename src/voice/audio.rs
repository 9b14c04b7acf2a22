//! Audio in: WAV (8/16/24/32-bit integer, 32-bit float) and FLAC, mixed to mono, resampled to
//! 16 kHz, with limits checked before everything is decoded.

use std::io::Cursor;

use serde::Deserialize;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, ErrorKind, Result};
use crate::voice::resample::resample;

/// The rate every voice feature works at.
pub const SAMPLE_RATE: u32 = 16_000;

/// Limits on audio from outside.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AudioLimits {
    /// Shortest accepted recording, in seconds. By default, 0.2 (one spoken digit is ~0.3 s).
    pub min_seconds: f32,
    /// Longest accepted recording, in seconds; checked from the header before decoding.
    /// By default, 30.
    pub max_seconds: f32,
    /// Largest accepted file, in bytes. By default, 16 MiB.
    pub max_bytes: usize,
    /// Recordings whose RMS level is below this (dBFS) are refused as silent. By default, -55.
    pub silence_dbfs: f32,
    /// Recordings with more than this share of samples at full scale are refused as clipped.
    /// By default, 0.01.
    pub max_clipped: f32,
}

impl Default for AudioLimits {
    fn default() -> AudioLimits {
        AudioLimits {
            min_seconds: 0.2,
            max_seconds: 30.0,
            max_bytes: 16 << 20,
            silence_dbfs: -55.0,
            max_clipped: 0.01,
        }
    }
}

/// Mono 16 kHz audio in [-1, 1]. A voice recording is biometric data: wiped on drop,
/// redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Audio {
    samples: Vec<f32>,
}

impl std::fmt::Debug for Audio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Audio({:.2} s at 16 kHz, samples redacted)",
            self.seconds()
        )
    }
}

impl Audio {
    /// Wraps 16 kHz mono samples (checked finite).
    pub fn from_samples(samples: Vec<f32>) -> Result<Audio> {
        if let Some(bad) = samples.iter().find(|s| !s.is_finite()) {
            return Err(Error::new(
                ErrorKind::AudioDecode,
                format!("the audio holds a non-finite sample ({bad})"),
            ));
        }
        Ok(Audio { samples })
    }

    /// The samples.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f32 {
        self.samples.len() as f32 / SAMPLE_RATE as f32
    }

    /// RMS level in dBFS (−inf for digital silence).
    pub fn rms_dbfs(&self) -> f32 {
        rms_dbfs(&self.samples)
    }

    /// Decodes WAV or FLAC bytes to mono 16 kHz, then checks duration, level and clipping.
    ///
    /// Typed errors: empty or unknown data, a header declaring more audio than the data holds
    /// (truncated), more than `max_seconds` (refused from the header, before decoding), fewer
    /// than `min_seconds`, NaN or infinite samples, silence, clipping, corrupt frames.
    pub fn decode(bytes: &[u8], limits: &AudioLimits) -> Result<Audio> {
        if bytes.is_empty() {
            return Err(Error::new(
                ErrorKind::AudioDecode,
                "the audio is empty (0 bytes)",
            ));
        }
        if bytes.len() > limits.max_bytes {
            return Err(Error::new(
                ErrorKind::AudioTooLong,
                format!(
                    "the audio file is {} bytes, more than the limit of {}",
                    bytes.len(),
                    limits.max_bytes
                ),
            ));
        }
        let (rate, mono) = decode_mono(bytes, limits)?;
        let seconds = mono.len() as f32 / rate as f32;
        if seconds < limits.min_seconds {
            return Err(Error::new(
                ErrorKind::AudioTooShort,
                format!(
                    "the recording lasts {seconds:.2} s; at least {:.2} s is needed",
                    limits.min_seconds
                ),
            ));
        }
        let audio = Audio::from_samples(resample(&mono, rate, SAMPLE_RATE))?;
        let clipped = clipped_share(&mono);
        if clipped > limits.max_clipped {
            return Err(Error::new(
                ErrorKind::AudioClipped,
                format!(
                    "{:.1} % of the samples are at full scale: the recording is clipped (speak further from the microphone)",
                    100.0 * clipped
                ),
            ));
        }
        let level = audio.rms_dbfs();
        if level < limits.silence_dbfs {
            return Err(Error::new(
                ErrorKind::AudioSilent,
                format!(
                    "the recording is silent ({level:.0} dBFS, below {:.0} dBFS)",
                    limits.silence_dbfs
                ),
            ));
        }
        Ok(audio)
    }

    /// Reads and decodes a file (see [`Audio::decode`]).
    pub fn open(path: &std::path::Path, limits: &AudioLimits) -> Result<Audio> {
        let mut bytes = std::fs::read(path).map_err(|e| Error::io("reading audio", path, e))?;
        let result = Audio::decode(&bytes, limits)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())));
        bytes.zeroize();
        result
    }
}

/// Decodes WAV or FLAC to mono at the file's own rate, without resampling or level checks
/// (for feature extraction at a native rate, and for tests against reference tools).
/// Returns the rate and the samples; the caller wipes them.
pub fn decode_native(bytes: &[u8], limits: &AudioLimits) -> Result<(u32, Vec<f32>)> {
    if bytes.is_empty() {
        return Err(Error::new(
            ErrorKind::AudioDecode,
            "the audio is empty (0 bytes)",
        ));
    }
    decode_mono(bytes, limits)
}

fn decode_error(e: SymphoniaError) -> Error {
    match e {
        SymphoniaError::Unsupported(what) => Error::new(
            ErrorKind::AudioDecode,
            format!("unsupported audio ({what}); send WAV or FLAC"),
        ),
        other => Error::new(
            ErrorKind::AudioDecode,
            format!("the audio is corrupt or truncated: {other}"),
        ),
    }
}

/// Decodes to mono at the file's own rate. Only what decoding needs reaches symphonia (see
/// [`super::container`]), and symphonia asserts on some malformed headers: a panic there is a
/// refused file, not a crashed kiosk or a failed daemon worker.
fn decode_mono(bytes: &[u8], limits: &AudioLimits) -> Result<(u32, Vec<f32>)> {
    let essentials = super::container::essentials(bytes)?;
    std::panic::catch_unwind(|| decode_mono_unguarded(essentials, limits)).unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::AudioDecode,
            "the audio header is malformed (the decoder gave up on it)",
        ))
    })
}

fn decode_mono_unguarded(bytes: Vec<u8>, limits: &AudioLimits) -> Result<(u32, Vec<f32>)> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymphoniaError::Unsupported(_) => {
                Error::new(ErrorKind::AudioDecode, "the data is not WAV or FLAC audio")
            }
            other => decode_error(other),
        })?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| Error::new(ErrorKind::AudioDecode, "the file holds no audio track"))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let rate = params
        .sample_rate
        .filter(|r| (4_000..=192_000).contains(r))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::AudioDecode,
                "the audio declares no sample rate, or one outside 4–192 kHz",
            )
        })?;
    let channels = params.channels.map(|c| c.count()).unwrap_or(1).max(1);
    if let Some(frames) = params.n_frames {
        let seconds = frames as f64 / f64::from(rate);
        if seconds > f64::from(limits.max_seconds) {
            return Err(Error::new(
                ErrorKind::AudioTooLong,
                format!(
                    "the header declares {seconds:.1} s of audio, more than the limit of {:.1} s",
                    limits.max_seconds
                ),
            ));
        }
    }
    let max_frames = (f64::from(limits.max_seconds) * f64::from(rate)) as usize;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions { verify: true })
        .map_err(decode_error)?;
    let mut mono: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(decode_error(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(decode_error)?;
        let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buffer.copy_interleaved_ref(decoded);
        for frame in buffer.samples().chunks(channels) {
            mono.push(frame.iter().sum::<f32>() / channels as f32);
        }
        buffer.samples_mut().zeroize();
        if mono.len() > max_frames {
            mono.zeroize();
            return Err(Error::new(
                ErrorKind::AudioTooLong,
                format!(
                    "the audio is longer than the limit of {:.1} s",
                    limits.max_seconds
                ),
            ));
        }
    }
    if let Some(frames) = params.n_frames {
        // A header that promises more than the data holds: truncated in transit.
        if (mono.len() as u64) + (rate as u64 / 100) < frames {
            let got = mono.len();
            mono.zeroize();
            return Err(Error::new(
                ErrorKind::AudioDecode,
                format!(
                    "the audio is truncated: the header declares {frames} frames, the data holds {got}"
                ),
            ));
        }
    }
    if let Some(bad) = mono.iter().find(|s| !s.is_finite()) {
        let bad = *bad;
        mono.zeroize();
        return Err(Error::new(
            ErrorKind::AudioDecode,
            format!("the audio holds a non-finite sample ({bad})"),
        ));
    }
    Ok((rate, mono))
}

fn rms_dbfs(x: &[f32]) -> f32 {
    if x.is_empty() {
        return f32::NEG_INFINITY;
    }
    let mean_square = x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len() as f64;
    (10.0 * mean_square.log10()) as f32
}

fn clipped_share(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().filter(|v| v.abs() >= 0.999).count() as f32 / x.len() as f32
}

/// Recordings joined with `gap_seconds` of silence before, between and after them (to build
/// a spoken passphrase or one long enrollment recording from separate takes).
pub fn join_recordings(recordings: &[&Audio], gap_seconds: f32) -> Result<Audio> {
    let gap = vec![0.0f32; (gap_seconds.max(0.0) * SAMPLE_RATE as f32) as usize];
    let mut samples = gap.clone();
    for r in recordings {
        samples.extend_from_slice(r.samples());
        samples.extend_from_slice(&gap);
    }
    Audio::from_samples(samples)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A WAV file in memory: `format` 1 = PCM integer, 3 = IEEE float.
    pub(crate) fn wav(
        rate: u32,
        channels: u16,
        bits: u16,
        format: u16,
        frames: &[Vec<f64>],
    ) -> Vec<u8> {
        let mut data = Vec::new();
        for frame in frames {
            for &v in frame {
                match (format, bits) {
                    (3, 32) => data.extend_from_slice(&(v as f32).to_le_bytes()),
                    (1, 8) => data.push(((v * 127.0).round() + 128.0) as u8),
                    (1, 16) => {
                        data.extend_from_slice(&((v * 32767.0).round() as i16).to_le_bytes())
                    }
                    (1, 24) => data
                        .extend_from_slice(&((v * 8_388_607.0).round() as i32).to_le_bytes()[..3]),
                    (1, 32) => data
                        .extend_from_slice(&((v * 2_147_483_647.0).round() as i32).to_le_bytes()),
                    _ => panic!("unsupported test format"),
                }
            }
        }
        let block = channels * bits / 8;
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&format.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        out.extend_from_slice(&block.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        out
    }

    pub(crate) fn tone(rate: u32, seconds: f64, channels: usize) -> Vec<Vec<f64>> {
        (0..(f64::from(rate) * seconds) as usize)
            .map(|i| {
                vec![
                    0.3 * (2.0 * std::f64::consts::PI * 300.0 * i as f64 / f64::from(rate)).sin();
                    channels
                ]
            })
            .collect()
    }

    #[test]
    fn every_pcm_format_and_rate_decodes_to_16k_mono() {
        for (bits, format) in [(8, 1), (16, 1), (24, 1), (32, 1), (32, 3)] {
            for rate in [8000, 16000, 22050, 44100, 48000] {
                let bytes = wav(rate, 2, bits, format, &tone(rate, 0.5, 2));
                let audio = Audio::decode(&bytes, &AudioLimits::default())
                    .unwrap_or_else(|e| panic!("{bits}-bit fmt {format} at {rate}: {e}"));
                assert!(
                    (audio.seconds() - 0.5).abs() < 0.01,
                    "{bits}/{rate}: {}",
                    audio.seconds()
                );
                // 0.3 amplitude sine: RMS = 0.3/sqrt(2) = -13.5 dBFS
                assert!(
                    (audio.rms_dbfs() + 13.5).abs() < 0.6,
                    "{bits}/{rate}: {} dBFS",
                    audio.rms_dbfs()
                );
            }
        }
    }

    #[test]
    fn bad_audio_gets_typed_errors() {
        let limits = AudioLimits::default();
        let good = wav(16000, 1, 16, 1, &tone(16000, 1.0, 1));
        let silent = wav(16000, 1, 16, 1, &vec![vec![0.0]; 16000]);
        let clipped = wav(
            16000,
            1,
            16,
            1,
            &(0..16000)
                .map(|i| vec![if i % 2 == 0 { 1.0 } else { -1.0 }])
                .collect::<Vec<_>>(),
        );
        let nan = wav(
            16000,
            1,
            32,
            3,
            &(0..16000)
                .map(|i| vec![if i == 500 { f64::NAN } else { 0.1 }])
                .collect::<Vec<_>>(),
        );
        let mut long_header = good.clone();
        long_header.truncate(good.len() / 2);
        let zero_length = wav(16000, 1, 16, 1, &[]);
        let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
            ("empty file", vec![], ErrorKind::AudioDecode),
            (
                "text",
                b"not audio at all, just text".to_vec(),
                ErrorKind::AudioDecode,
            ),
            (
                "header claims more data than present",
                long_header,
                ErrorKind::AudioDecode,
            ),
            ("zero-length audio", zero_length, ErrorKind::AudioTooShort),
            ("all zeros", silent, ErrorKind::AudioSilent),
            ("clipped", clipped, ErrorKind::AudioClipped),
            ("NaN sample", nan, ErrorKind::AudioDecode),
        ];
        for (what, bytes, kind) in cases {
            let err = Audio::decode(&bytes, &limits).expect_err(what);
            assert_eq!(err.kind(), kind, "{what}: {err}");
        }
    }

    /// Found by the bad-input catalogue: symphonia panicked ("TimeBase cannot have 0
    /// numerator or denominator") on a WAV whose header declares 0 Hz.
    #[test]
    fn regression_wav_declaring_zero_hertz_is_refused_not_a_panic() {
        for rate in [0, 1] {
            let bytes = wav(rate, 1, 16, 1, &vec![vec![0.2]; 8000]);
            let err = Audio::decode(&bytes, &AudioLimits::default()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AudioDecode, "{rate} Hz: {err}");
        }
    }

    #[test]
    fn too_long_is_refused_from_the_header() {
        let limits = AudioLimits {
            max_seconds: 1.0,
            ..AudioLimits::default()
        };
        let long = wav(8000, 1, 16, 1, &tone(8000, 3.0, 1));
        let err = Audio::decode(&long, &limits).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AudioTooLong);
        assert!(err.to_string().contains("header"), "{err}");
    }

    #[test]
    fn debug_redacts_samples() {
        let a = Audio::from_samples(vec![0.25; 1600]).unwrap();
        assert_eq!(
            format!("{a:?}"),
            "Audio(0.10 s at 16 kHz, samples redacted)"
        );
    }
}
