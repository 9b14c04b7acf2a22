//! Times vouch's MFCC and mel spectrogram on audio files, for `scripts/compare_voice_features.py`
//! (which runs python_speech_features and librosa on the same files and prints the ratios).
//!
//! Prints one line per file and feature: `FILE FEATURE SECONDS_OF_AUDIO BEST_MS`.

use std::time::Instant;

use vouch::voice::mfcc::{MelSpectrogram, Mfcc, MfccConfig};
use vouch::voice::{Audio, AudioLimits, SAMPLE_RATE};

fn best_of<T>(repeats: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..repeats)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repeats: usize = std::env::var("REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let mfcc = Mfcc::new(&MfccConfig::default(), SAMPLE_RATE)?;
    let mel = MelSpectrogram::for_voice_encoder()?;
    for path in std::env::args().skip(1) {
        let audio = Audio::open(std::path::Path::new(&path), &AudioLimits::default())?;
        let mut buffer = Vec::new();
        let mfcc_ms = best_of(repeats, || mfcc.compute_into(audio.samples(), &mut buffer));
        let mel_ms = best_of(repeats, || mel.compute(audio.samples()));
        println!("{path} mfcc {:.3} {mfcc_ms:.4}", audio.seconds());
        println!("{path} mel {:.3} {mel_ms:.4}", audio.seconds());
    }
    Ok(())
}
