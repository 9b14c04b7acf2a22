//! MFCC features and the mel power spectrogram, as pure functions over slices.
//!
//! [`Mfcc`] follows the classic pipeline with `python_speech_features`' defaults, which the
//! golden tests check it against: pre-emphasis 0.97; 25 ms frames every 10 ms (the last frame
//! zero-padded); a rectangular window by default (Hamming configurable); power spectrum
//! `|FFT|² / NFFT` with NFFT = 512; 26 triangular mel filters from
//! 0 Hz to Nyquist (HTK mel scale, filter edges on FFT bins); natural log; orthonormal
//! DCT-II; 13 coefficients; sinusoidal liftering (L = 22); c0 replaced by the log frame energy.
//! [`deltas`] and [`cmvn`] add dynamics and per-utterance normalisation.
//!
//! [`MelSpectrogram`] computes what the GE2E voice encoder needs (librosa's conventions):
//! centred frames (zero padding of NFFT/2 each side), periodic Hann window, `|FFT|²`, Slaney
//! mel scale with Slaney area normalisation.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// MFCC settings; defaults are `python_speech_features.mfcc`'s.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MfccConfig {
    /// Frame length in seconds. By default, 0.025.
    pub frame_seconds: f64,
    /// Frame step in seconds. By default, 0.010.
    pub step_seconds: f64,
    /// Cepstral coefficients kept. By default, 13.
    pub coefficients: usize,
    /// Mel filters. By default, 26.
    pub filters: usize,
    /// FFT size; 0 means the next power of two at or above the frame length. By default, 512
    /// (`python_speech_features`' fixed default, so 8 kHz audio is zero-padded to it too).
    pub fft_size: usize,
    /// Lowest filter edge in Hz. By default, 0.
    pub low_hz: f64,
    /// Highest filter edge in Hz; 0 means Nyquist. By default, 0.
    pub high_hz: f64,
    /// Pre-emphasis coefficient (0 disables). By default, 0.97.
    pub preemphasis: f64,
    /// Sinusoidal lifter parameter L (0 disables). By default, 22.
    pub lifter: usize,
    /// Replace c0 with the log frame energy. By default, on.
    pub energy: bool,
    /// Apply a Hamming window instead of the rectangular default. By default, off.
    pub hamming: bool,
}

impl Default for MfccConfig {
    fn default() -> MfccConfig {
        MfccConfig {
            frame_seconds: 0.025,
            step_seconds: 0.010,
            coefficients: 13,
            filters: 26,
            fft_size: 512,
            low_hz: 0.0,
            high_hz: 0.0,
            preemphasis: 0.97,
            lifter: 22,
            energy: true,
            hamming: false,
        }
    }
}

/// Features: `frames × dims`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// Values, frame after frame.
    pub values: Vec<f64>,
    /// Values per frame.
    pub dims: usize,
}

impl Features {
    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.values.len().checked_div(self.dims).unwrap_or(0)
    }

    /// Frame `t`.
    pub fn frame(&self, t: usize) -> &[f64] {
        &self.values[t * self.dims..(t + 1) * self.dims]
    }
}

/// A prepared MFCC extractor for one sample rate (filterbank, window and FFT plan built once).
pub struct Mfcc {
    config: MfccConfig,
    frame_len: usize,
    step: usize,
    nfft: usize,
    window: Vec<f64>,
    filterbank: Vec<Vec<(usize, f64)>>,
    dct: Vec<f64>,
    lifter: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl std::fmt::Debug for Mfcc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mfcc")
            .field("config", &self.config)
            .field("nfft", &self.nfft)
            .finish_non_exhaustive()
    }
}

fn round_half_up(x: f64) -> usize {
    (x + 0.5).floor() as usize
}

fn hz_to_mel_htk(hz: f64) -> f64 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz_htk(mel: f64) -> f64 {
    700.0 * (10f64.powf(mel / 2595.0) - 1.0)
}

impl Mfcc {
    /// Prepares an extractor for audio at `sample_rate`.
    pub fn new(config: &MfccConfig, sample_rate: u32) -> Result<Mfcc> {
        let rate = f64::from(sample_rate);
        let frame_len = round_half_up(config.frame_seconds * rate);
        let step = round_half_up(config.step_seconds * rate);
        let nfft = if config.fft_size == 0 {
            frame_len.next_power_of_two()
        } else {
            config.fft_size
        };
        let high = if config.high_hz == 0.0 {
            rate / 2.0
        } else {
            config.high_hz
        };
        if frame_len < 2
            || step == 0
            || nfft < frame_len
            || config.filters == 0
            || config.coefficients == 0
            || config.coefficients > config.filters
            || !(0.0..high).contains(&config.low_hz)
            || high > rate / 2.0
        {
            return Err(Error::new(
                ErrorKind::Config,
                "MFCC settings are inconsistent (frame, step, FFT size, filters or band)",
            ));
        }
        let window = (0..frame_len)
            .map(|n| {
                if config.hamming {
                    0.54 - 0.46
                        * (2.0 * std::f64::consts::PI * n as f64 / (frame_len as f64 - 1.0)).cos()
                } else {
                    1.0
                }
            })
            .collect();
        // Filter edges on FFT bins, as python_speech_features places them.
        let (low_mel, high_mel) = (hz_to_mel_htk(config.low_hz), hz_to_mel_htk(high));
        let bins: Vec<usize> = (0..config.filters + 2)
            .map(|i| {
                let mel = low_mel + (high_mel - low_mel) * i as f64 / (config.filters + 1) as f64;
                ((nfft as f64 + 1.0) * mel_to_hz_htk(mel) / rate).floor() as usize
            })
            .collect();
        let filterbank = (0..config.filters)
            .map(|j| {
                let (a, b, c) = (bins[j], bins[j + 1], bins[j + 2]);
                let mut taps = Vec::new();
                for i in a..b {
                    taps.push((i, (i - a) as f64 / (b - a) as f64));
                }
                for i in b..c {
                    taps.push((i, (c - i) as f64 / (c - b) as f64));
                }
                taps.retain(|(i, w)| *i <= nfft / 2 && *w != 0.0);
                taps
            })
            .collect();
        let (m, k) = (config.filters, config.coefficients);
        let dct = (0..k)
            .flat_map(|q| {
                let scale = if q == 0 {
                    (1.0 / m as f64).sqrt()
                } else {
                    (2.0 / m as f64).sqrt()
                };
                (0..m).map(move |n| {
                    scale
                        * (std::f64::consts::PI * q as f64 * (2 * n + 1) as f64 / (2 * m) as f64)
                            .cos()
                })
            })
            .collect();
        let lifter = (0..k)
            .map(|q| {
                if config.lifter == 0 {
                    1.0
                } else {
                    let l = config.lifter as f64;
                    1.0 + (l / 2.0) * (std::f64::consts::PI * q as f64 / l).sin()
                }
            })
            .collect();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(nfft);
        Ok(Mfcc {
            config: config.clone(),
            frame_len,
            step,
            nfft,
            window,
            filterbank,
            dct,
            lifter,
            fft,
        })
    }

    /// Frames a signal of `len` samples yields.
    pub fn frames_for(&self, len: usize) -> usize {
        if len <= self.frame_len {
            1
        } else {
            1 + (len - self.frame_len).div_ceil(self.step)
        }
    }

    /// The MFCCs of `signal`.
    pub fn compute(&self, signal: &[f32]) -> Features {
        let mut out = Vec::new();
        self.compute_into(signal, &mut out);
        Features {
            values: out,
            dims: self.config.coefficients,
        }
    }

    /// [`Mfcc::compute`] into a reused buffer (cleared first); no other allocation per frame.
    pub fn compute_into(&self, signal: &[f32], out: &mut Vec<f64>) {
        out.clear();
        let frames = self.frames_for(signal.len());
        let k = self.config.coefficients;
        out.reserve(frames * k);
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; self.nfft / 2 + 1];
        let mut energies = vec![0.0f64; self.config.filters];
        let pre = self.config.preemphasis;
        let emphasised = |i: usize| -> f64 {
            match signal.get(i) {
                None => 0.0,
                Some(&x) if i == 0 || pre == 0.0 => f64::from(x),
                Some(&x) => f64::from(x) - pre * f64::from(signal[i - 1]),
            }
        };
        for t in 0..frames {
            input.iter_mut().for_each(|v| *v = 0.0);
            for (n, (v, w)) in input.iter_mut().zip(&self.window).enumerate() {
                *v = emphasised(t * self.step + n) * w;
            }
            // The FFT only fails on wrongly sized buffers, which `make_*_vec` rules out.
            let _ = self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch);
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr() / self.nfft as f64;
            }
            let mut frame_energy: f64 = power.iter().sum();
            if frame_energy == 0.0 {
                frame_energy = f64::EPSILON;
            }
            for (e, taps) in energies.iter_mut().zip(&self.filterbank) {
                let v: f64 = taps.iter().map(|&(i, w)| power[i] * w).sum();
                *e = if v == 0.0 { f64::EPSILON } else { v }.ln();
            }
            for q in 0..k {
                let row = &self.dct[q * self.config.filters..(q + 1) * self.config.filters];
                let c: f64 = row.iter().zip(&energies).map(|(a, b)| a * b).sum();
                out.push(c * self.lifter[q]);
            }
            if self.config.energy {
                let at = out.len() - k;
                out[at] = frame_energy.ln();
            }
        }
    }
}

/// Delta features over ±`n` frames (edge frames repeated), as `python_speech_features.delta`.
pub fn deltas(features: &Features, n: usize) -> Features {
    let (frames, dims) = (features.frames(), features.dims);
    let denom = 2.0 * (1..=n).map(|i| (i * i) as f64).sum::<f64>();
    let at = |t: isize| features.frame(t.clamp(0, frames as isize - 1) as usize);
    let mut values = Vec::with_capacity(frames * dims);
    for t in 0..frames as isize {
        for d in 0..dims {
            let s: f64 = (1..=n as isize)
                .map(|i| i as f64 * (at(t + i)[d] - at(t - i)[d]))
                .sum();
            values.push(s / denom);
        }
    }
    Features { values, dims }
}

/// Concatenates feature streams frame by frame (e.g. MFCC + deltas + delta-deltas).
pub fn stack(parts: &[&Features]) -> Features {
    let frames = parts.iter().map(|p| p.frames()).min().unwrap_or(0);
    let dims = parts.iter().map(|p| p.dims).sum();
    let mut values = Vec::with_capacity(frames * dims);
    for t in 0..frames {
        for p in parts {
            values.extend_from_slice(p.frame(t));
        }
    }
    Features { values, dims }
}

/// Cepstral mean and variance normalisation over the utterance: each dimension to zero mean
/// and unit variance (a constant dimension is only centred).
pub fn cmvn(features: &mut Features) {
    let (frames, dims) = (features.frames(), features.dims);
    if frames == 0 {
        return;
    }
    for d in 0..dims {
        let mean = (0..frames)
            .map(|t| features.values[t * dims + d])
            .sum::<f64>()
            / frames as f64;
        let var = (0..frames)
            .map(|t| (features.values[t * dims + d] - mean).powi(2))
            .sum::<f64>()
            / frames as f64;
        let scale = if var > 1e-20 { 1.0 / var.sqrt() } else { 1.0 };
        for t in 0..frames {
            let v = &mut features.values[t * dims + d];
            *v = (*v - mean) * scale;
        }
    }
}

fn hz_to_mel_slaney(hz: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

fn mel_to_hz_slaney(mel: f64) -> f64 {
    let (f_sp, min_log_hz) = (200.0 / 3.0, 1000.0);
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        mel * f_sp
    }
}

/// The mel power spectrogram the GE2E voice encoder takes.
pub struct MelSpectrogram {
    nfft: usize,
    hop: usize,
    window: Vec<f64>,
    weights: Vec<Vec<(usize, f64)>>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl std::fmt::Debug for MelSpectrogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelSpectrogram")
            .field("nfft", &self.nfft)
            .field("hop", &self.hop)
            .finish_non_exhaustive()
    }
}

impl MelSpectrogram {
    /// `n_mels` Slaney-normalised bands from `fmin` to `fmax` Hz over `nfft`-point frames
    /// every `hop` samples.
    pub fn new(
        sample_rate: u32,
        nfft: usize,
        hop: usize,
        n_mels: usize,
        fmin: f64,
        fmax: f64,
    ) -> Result<MelSpectrogram> {
        let rate = f64::from(sample_rate);
        if nfft < 2 || hop == 0 || n_mels == 0 || !(0.0..fmax).contains(&fmin) || fmax > rate / 2.0
        {
            return Err(Error::new(
                ErrorKind::Config,
                "mel spectrogram settings are inconsistent",
            ));
        }
        let window = (0..nfft)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / nfft as f64).cos())
            .collect();
        let (lo, hi) = (hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax));
        let mel_f: Vec<f64> = (0..n_mels + 2)
            .map(|i| mel_to_hz_slaney(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
            .collect();
        let bins = nfft / 2 + 1;
        let fft_freq: Vec<f64> = (0..bins).map(|i| i as f64 * rate / nfft as f64).collect();
        let weights = (0..n_mels)
            .map(|m| {
                let (left, centre, right) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
                let norm = 2.0 / (right - left);
                fft_freq
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &f)| {
                        let lower = (f - left) / (centre - left);
                        let upper = (right - f) / (right - centre);
                        let w = lower.min(upper).max(0.0) * norm;
                        (w > 0.0).then_some((i, w))
                    })
                    .collect()
            })
            .collect();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(nfft);
        Ok(MelSpectrogram {
            nfft,
            hop,
            window,
            weights,
            fft,
        })
    }

    /// The encoder's settings from MODELS.md: 16 kHz, n_fft 400, hop 160, 40 bands, 0–8 kHz.
    pub fn for_voice_encoder() -> Result<MelSpectrogram> {
        MelSpectrogram::new(16_000, 400, 160, 40, 0.0, 8000.0)
    }

    /// Frames × bands; `1 + len / hop` frames (centred).
    pub fn compute(&self, signal: &[f32]) -> Features {
        let frames = 1 + signal.len() / self.hop;
        let half = (self.nfft / 2) as isize;
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut values = Vec::with_capacity(frames * self.weights.len());
        for t in 0..frames {
            let start = (t * self.hop) as isize - half;
            for (n, v) in input.iter_mut().enumerate() {
                let i = start + n as isize;
                let x = if i < 0 {
                    0.0
                } else {
                    signal.get(i as usize).map_or(0.0, |s| f64::from(*s))
                };
                *v = x * self.window[n];
            }
            let _ = self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch);
            for taps in &self.weights {
                values.push(taps.iter().map(|&(i, w)| spectrum[i].norm_sqr() * w).sum());
            }
        }
        Features {
            values,
            dims: self.weights.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts_follow_the_reference() {
        let m = Mfcc::new(&MfccConfig::default(), 16_000).unwrap();
        assert_eq!(m.frames_for(100), 1);
        assert_eq!(m.frames_for(400), 1);
        assert_eq!(m.frames_for(401), 2);
        assert_eq!(m.frames_for(16_000), 99);
        assert_eq!(m.compute(&vec![0.1; 16_000]).frames(), 99);
    }

    #[test]
    fn silence_gives_finite_features() {
        let m = Mfcc::new(&MfccConfig::default(), 8_000).unwrap();
        let f = m.compute(&[0.0; 4000]);
        assert!(f.values.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn a_tone_peaks_in_the_right_mel_band() {
        let mel = MelSpectrogram::for_voice_encoder().unwrap();
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let f = mel.compute(&tone);
        assert_eq!(f.frames(), 101);
        let mid = f.frame(50);
        let peak = mid
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap();
        // 1 kHz is mel 15 on the Slaney scale; with 40 bands over 0..8 kHz (mel 0..~45.2) the
        // band centres are 1.10 mel apart, so the peak is band 12 or 13.
        assert!((12..=13).contains(&peak), "peak band {peak}");
    }

    #[test]
    fn deltas_of_a_ramp_are_constant_and_cmvn_normalises() {
        let ramp = Features {
            values: (0..20).map(f64::from).collect(),
            dims: 1,
        };
        let d = deltas(&ramp, 2);
        assert!(d.values[2..18].iter().all(|v| (v - 1.0).abs() < 1e-12));
        let mut f = stack(&[&ramp, &d]);
        assert_eq!(f.dims, 2);
        cmvn(&mut f);
        let mean: f64 = (0..20).map(|t| f.frame(t)[0]).sum::<f64>() / 20.0;
        let var: f64 = (0..20).map(|t| f.frame(t)[0].powi(2)).sum::<f64>() / 20.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-9);
    }

    #[test]
    fn inconsistent_settings_are_refused() {
        let bad = MfccConfig {
            coefficients: 40,
            ..MfccConfig::default()
        };
        assert_eq!(
            Mfcc::new(&bad, 16_000).unwrap_err().kind(),
            ErrorKind::Config
        );
        assert!(MelSpectrogram::new(16_000, 400, 160, 40, 0.0, 9000.0).is_err());
    }
}
