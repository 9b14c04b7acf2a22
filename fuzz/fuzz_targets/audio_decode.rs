//! Audio bytes (WAV, FLAC) → 16 kHz mono → MFCC: any input is a typed error or finite
//! features, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch::voice::mfcc::{Mfcc, MfccConfig};
use vouch::voice::{Audio, AudioLimits, SAMPLE_RATE};

fuzz_target!(|data: &[u8]| {
    let limits = AudioLimits::default();
    if let Ok(audio) = Audio::decode(data, &limits) {
        assert!(audio.samples().iter().all(|s| s.is_finite()));
        let mfcc = Mfcc::new(&MfccConfig::default(), SAMPLE_RATE).expect("default MFCC config");
        let mut out = Vec::new();
        mfcc.compute_into(audio.samples(), &mut out);
        assert!(out.iter().all(|v| v.is_finite()));
    }
});
