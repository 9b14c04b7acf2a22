//! Voice activity detection: energy-based, with a noise floor estimated from the recording
//! itself and a hangover so word endings are not clipped.
//!
//! Frames of 20 ms every 10 ms. A frame is speech when its level is above both the noise floor
//! (the 10th percentile of frame levels) plus `margin_db` and the loudest frame minus
//! `dynamic_range_db`. Speech stays on for `hangover_ms` after the level drops; segments closer
//! than `min_gap_ms` merge (a word's stop consonant is not a pause), and segments with less
//! than `min_speech_ms` of frames above the threshold are dropped (clicks; the hangover does
//! not count). Used to trim recordings and to split a spoken passphrase into its digits.

use serde::Deserialize;

use crate::voice::audio::SAMPLE_RATE;

/// VAD settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VadConfig {
    /// Level above the noise floor that counts as speech, in dB. By default, 12.
    pub margin_db: f32,
    /// Frames this far below the loudest frame are never speech, in dB. By default, 35.
    pub dynamic_range_db: f32,
    /// Frames below this absolute level are never speech (dBFS). By default, -55.
    pub floor_dbfs: f32,
    /// How long speech stays on after the level drops. By default, 60 ms.
    pub hangover_ms: u32,
    /// Pauses shorter than this do not split a segment. By default, 120 ms.
    pub min_gap_ms: u32,
    /// Segments shorter than this are dropped. By default, 80 ms.
    pub min_speech_ms: u32,
}

impl Default for VadConfig {
    fn default() -> VadConfig {
        VadConfig {
            margin_db: 12.0,
            dynamic_range_db: 35.0,
            floor_dbfs: -55.0,
            hangover_ms: 60,
            min_gap_ms: 120,
            min_speech_ms: 80,
        }
    }
}

/// A stretch of speech, in samples at 16 kHz: `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Segment {
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
}

impl Segment {
    /// Duration in seconds.
    pub fn seconds(&self) -> f32 {
        (self.end - self.start) as f32 / SAMPLE_RATE as f32
    }
}

const FRAME: usize = 320; // 20 ms
const HOP: usize = 160; // 10 ms

/// The samples from the first to the last speech segment (all of them when the VAD finds none).
pub fn speech_span<'a>(samples: &'a [f32], config: &VadConfig) -> &'a [f32] {
    let found = segments(samples, config);
    match (found.first(), found.last()) {
        (Some(first), Some(last)) => &samples[first.start..last.end],
        _ => samples,
    }
}

/// The speech segments of 16 kHz audio, in order.
pub fn segments(samples: &[f32], config: &VadConfig) -> Vec<Segment> {
    if samples.len() < FRAME {
        return Vec::new();
    }
    let frames = 1 + (samples.len() - FRAME) / HOP;
    let levels: Vec<f32> = (0..frames)
        .map(|t| {
            let frame = &samples[t * HOP..t * HOP + FRAME];
            let power = frame.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / FRAME as f64;
            (10.0 * (power + 1e-12).log10()) as f32
        })
        .collect();
    let mut sorted = levels.clone();
    sorted.sort_by(f32::total_cmp);
    let noise = sorted[sorted.len() / 10];
    let peak = sorted[sorted.len() - 1];
    let threshold = (noise + config.margin_db)
        .max(peak - config.dynamic_range_db)
        .max(config.floor_dbfs);
    let ms_to_frames = |ms: u32| (ms as usize).div_ceil(10);
    let hangover = ms_to_frames(config.hangover_ms);
    // Raw decisions with hangover.
    let mut active = vec![false; frames];
    let mut hold = 0;
    for (t, &level) in levels.iter().enumerate() {
        if level > threshold {
            active[t] = true;
            hold = hangover;
        } else if hold > 0 {
            active[t] = true;
            hold -= 1;
        }
    }
    // Runs of active frames → segments.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut t = 0;
    while t < frames {
        if active[t] {
            let start = t;
            while t < frames && active[t] {
                t += 1;
            }
            runs.push((start, t));
        } else {
            t += 1;
        }
    }
    // Merge across short pauses, then drop short blips.
    let min_gap = ms_to_frames(config.min_gap_ms);
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for run in runs {
        match merged.last_mut() {
            Some(last) if run.0 - last.1 < min_gap => last.1 = run.1,
            _ => merged.push(run),
        }
    }
    // The hangover must not make a click look long: count only frames truly above threshold.
    let min_speech = ms_to_frames(config.min_speech_ms);
    merged
        .into_iter()
        .filter(|&(a, b)| levels[a..b].iter().filter(|&&l| l > threshold).count() >= min_speech)
        .map(|(a, b)| Segment {
            start: a * HOP,
            end: ((b - 1) * HOP + FRAME).min(samples.len()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f32, amplitude: f32) -> Vec<f32> {
        (0..(seconds * SAMPLE_RATE as f32) as usize)
            .map(|i| {
                amplitude
                    * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / SAMPLE_RATE as f32).sin()
            })
            .collect()
    }

    fn noise(seconds: f32, amplitude: f32) -> Vec<f32> {
        let mut x = 12345u32;
        (0..(seconds * SAMPLE_RATE as f32) as usize)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                amplitude * ((x % 2000) as f32 / 1000.0 - 1.0)
            })
            .collect()
    }

    #[test]
    fn two_bursts_in_noise_are_two_segments_where_they_are() {
        let mut x = noise(0.5, 0.001);
        x.extend(tone(0.4, 0.3));
        x.extend(noise(0.4, 0.001));
        x.extend(tone(0.3, 0.3));
        x.extend(noise(0.5, 0.001));
        let segs = segments(&x, &VadConfig::default());
        assert_eq!(segs.len(), 2, "{segs:?}");
        let at = |s: f32| (s * SAMPLE_RATE as f32) as i64;
        assert!(
            (segs[0].start as i64 - at(0.5)).abs() < at(0.03),
            "{segs:?}"
        );
        assert!(
            (segs[1].start as i64 - at(1.3)).abs() < at(0.03),
            "{segs:?}"
        );
        // the hangover extends each segment a little past the burst, never into the next one
        assert!(
            segs[0].end as i64 >= at(0.9) && (segs[0].end as i64) < at(1.3),
            "{segs:?}"
        );
    }

    #[test]
    fn silence_and_clicks_are_not_speech() {
        assert!(segments(&noise(2.0, 0.001), &VadConfig::default()).is_empty());
        assert!(segments(&[0.0; 32_000], &VadConfig::default()).is_empty());
        assert!(segments(&[0.1; 100], &VadConfig::default()).is_empty());
        let mut click = noise(1.0, 0.001);
        click.extend(tone(0.03, 0.5));
        click.extend(noise(1.0, 0.001));
        assert!(segments(&click, &VadConfig::default()).is_empty());
    }

    #[test]
    fn a_short_pause_does_not_split_a_word() {
        let mut x = noise(0.3, 0.001);
        x.extend(tone(0.2, 0.3));
        x.extend(noise(0.05, 0.001));
        x.extend(tone(0.2, 0.3));
        x.extend(noise(0.3, 0.001));
        assert_eq!(segments(&x, &VadConfig::default()).len(), 1);
    }
}
