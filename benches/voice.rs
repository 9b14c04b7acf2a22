//! Voice front end per second of audio: decode (FLAC 16 kHz, WAV 8 kHz), resample 8→16 kHz,
//! MFCC, mel spectrogram, and the GE2E encoder. Needs the shared data (`VOUCH_SHARED`, default
//! `../shared`); prints why and exits otherwise. Run: `cargo bench --bench voice`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vouch::voice::audio::decode_native;
use vouch::voice::mfcc::{MelSpectrogram, Mfcc, MfccConfig};
use vouch::voice::resample::resample;
use vouch::voice::{Audio, AudioLimits, SAMPLE_RATE};

fn shared() -> PathBuf {
    std::env::var_os("VOUCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

fn bench(c: &mut Criterion) {
    let data = shared().join("data");
    let (Ok(flac), Ok(wav)) = (
        std::fs::read(data.join("librispeech/test-other/1688/1688-142285-0000.flac")),
        std::fs::read(data.join("fsdd/recordings/7_george_3.wav")),
    ) else {
        return eprintln!("voice bench skipped: no shared data");
    };
    let limits = AudioLimits {
        max_seconds: 60.0,
        ..AudioLimits::default()
    };
    let audio = Audio::decode(&flac, &limits).unwrap();
    let seconds = audio.seconds() as f64;
    let (wav_rate, wav_samples) = decode_native(&wav, &limits).unwrap();
    let wav_seconds = wav_samples.len() as f64 / f64::from(wav_rate);
    let mfcc = Mfcc::new(&MfccConfig::default(), SAMPLE_RATE).unwrap();
    let mel = MelSpectrogram::for_voice_encoder().unwrap();

    // Throughput in elements = milliseconds of audio, so criterion reports audio-ms per second.
    let mut group = c.benchmark_group("voice");
    group.throughput(Throughput::Elements((seconds * 1000.0) as u64));
    group.bench_function("decode_flac_16k", |b| {
        b.iter(|| decode_native(black_box(&flac), &limits).unwrap())
    });
    let mut buffer = Vec::new();
    group.bench_function("mfcc_16k", |b| {
        b.iter(|| mfcc.compute_into(black_box(audio.samples()), &mut buffer))
    });
    group.bench_function("mel_16k", |b| {
        b.iter(|| mel.compute(black_box(audio.samples())))
    });
    group.throughput(Throughput::Elements((wav_seconds * 1000.0) as u64));
    group.bench_function("decode_wav_8k", |b| {
        b.iter(|| decode_native(black_box(&wav), &limits).unwrap())
    });
    group.bench_function("resample_8k_to_16k", |b| {
        b.iter(|| resample(black_box(&wav_samples), wav_rate, SAMPLE_RATE))
    });
    group.finish();
    eprintln!(
        "(audio: {seconds:.2} s FLAC, {wav_seconds:.2} s WAV; divide the medians by these for per-second cost)"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
