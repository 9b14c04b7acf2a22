//! Streaming conversion to 16 kHz mono: [`ToMono16k`] mixes interleaved channels down and
//! resamples block by block with the same kernel as [`resample`], so that a stream converted as
//! it arrives equals the whole recording converted at once.
//!
//! DSP only: it takes interleaved samples and knows nothing of devices or capture (capture
//! feeds it a device's chunks through `ToMono16k::push`, defined there). The samples it holds
//! are the speaker's voice: wiped when used and on drop.

use zeroize::Zeroize;

use super::audio::SAMPLE_RATE;
use super::resample::{gcd, resample};
use crate::error::{Error, ErrorKind, Result};

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

    /// Converts `samples` (`channels` interleaved channels at `sample_rate` Hz, as a device
    /// delivers them); returns the 16 kHz samples that became final (possibly none). Refused
    /// ([`ErrorKind::Device`]): samples of another rate or channel count than the converter's,
    /// a partial frame, non-finite samples. Capture's `ToMono16k::push` feeds it a device's
    /// chunks.
    pub(crate) fn push_interleaved(
        &mut self,
        samples: &[f32],
        channels: u16,
        sample_rate: u32,
    ) -> Result<Vec<f32>> {
        if sample_rate != self.rate || channels != self.channels {
            return Err(Error::new(
                ErrorKind::Device,
                format!(
                    "the device switched from {} channel(s) at {} Hz to {} at {} Hz mid-stream",
                    self.channels, self.rate, channels, sample_rate
                ),
            ));
        }
        let channels = usize::from(self.channels);
        if !samples.len().is_multiple_of(channels) {
            return Err(Error::new(
                ErrorKind::Device,
                format!(
                    "a chunk of {} samples is not a whole number of {channels}-channel frames",
                    samples.len()
                ),
            ));
        }
        if samples.iter().any(|s| !s.is_finite()) {
            return Err(Error::new(
                ErrorKind::Device,
                "the device delivered a non-finite sample",
            ));
        }
        let before = self.pending.len();
        self.pending.extend(
            samples
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn noise(n: usize, amplitude: f32, seed: &mut u64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((*seed >> 33) as f32 / (1u64 << 31) as f32 - 1.0) * amplitude
            })
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
            let mut converter = ToMono16k::new(rate, channels).unwrap();
            let mut streamed = Vec::new();
            for frames in mono.chunks(chunk) {
                // Every channel a copy of the mono signal, as a file source delivers it.
                let interleaved: Vec<f32> = frames
                    .iter()
                    .flat_map(|&s| std::iter::repeat_n(s, usize::from(channels)))
                    .collect();
                streamed.extend(
                    converter
                        .push_interleaved(&interleaved, channels, rate)
                        .unwrap(),
                );
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
        let samples = [0.25, 0.75, -0.5, -0.5];
        assert_eq!(
            converter.push_interleaved(&samples, 2, 16_000).unwrap(),
            [0.5, -0.5]
        );
        assert!(converter.finish().is_empty());
        for (bad, rate) in [
            (&[0.0; 3][..], 16_000),
            (&samples[..], 8_000),
            (&[f32::NAN, 0.0][..], 16_000),
        ] {
            assert_eq!(
                converter.push_interleaved(bad, 2, rate).unwrap_err().kind(),
                ErrorKind::Device
            );
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
}
