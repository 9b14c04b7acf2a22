//! Voice front end per second of audio: decode (FLAC 16 kHz, WAV 8 kHz), resample 8→16 kHz,
//! MFCC, mel spectrogram; then speaker verification with the GE2E voice encoder through the
//! `SpeakerModel` trait: analysing a recording (the encoder), enrolling a voiceprint, scoring a
//! probe, and both from audio bytes. Needs the shared data (`VOUCH_SHARED`, default
//! `../shared`); the speaker part also needs the models and ONNX Runtime (`VOUCH_ORT_LIB`,
//! default `.vouch/lib/libonnxruntime.so`). Prints why and skips otherwise.
//! Run: `cargo bench --bench voice`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vouch::voice::audio::decode_native;
use vouch::voice::mfcc::{MelSpectrogram, Mfcc, MfccConfig};
use vouch::voice::resample::resample;
use vouch::voice::{Audio, AudioLimits, SAMPLE_RATE, SpeakerModel};
use vouch::{Config, Engine};

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

fn engine() -> Option<Engine> {
    let mut config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("speaker bench skipped: {e}");
            return None;
        }
    };
    // The models scripts/setup.sh copies and makes (the quantised face embedder among them),
    // unless VOUCH_MODEL_DIR names others.
    if std::env::var_os("VOUCH_MODEL_DIR").is_none() {
        config.models.dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".vouch/models");
    }
    if config.runtime.library.is_none() {
        config.runtime.library =
            Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".vouch/lib/libonnxruntime.so"));
    }
    match config.validate().and_then(Engine::new) {
        Ok(engine) => Some(engine),
        Err(e) => {
            eprintln!("speaker bench skipped: {e}");
            None
        }
    }
}

/// Speaker 1688 of LibriSpeech test-other: three recordings enroll, the 15.0 s recording of
/// the front-end bench probes; an impostor (speaker 1998) bounds the genuine score from below.
fn bench_speaker(c: &mut Criterion) {
    let speakers = shared().join("data/librispeech/test-other");
    let read = |name: &str| {
        let speaker = name.split('-').next().unwrap_or_default();
        std::fs::read(speakers.join(speaker).join(format!("{name}.flac")))
    };
    let enroll_names = ["1688-142285-0001", "1688-142285-0002", "1688-142285-0003"];
    let (Ok(probe), Ok(impostor), Ok(enroll)) = (
        read("1688-142285-0000"),
        read("1998-15444-0000"),
        enroll_names
            .iter()
            .map(|n| read(n))
            .collect::<std::io::Result<Vec<_>>>(),
    ) else {
        return eprintln!("speaker bench skipped: no LibriSpeech test-other in the shared data");
    };
    let Some(engine) = engine() else { return };
    let encoder = match engine.voice_encoder() {
        Ok(encoder) => encoder,
        Err(e) => return eprintln!("speaker bench skipped: {e}"),
    };
    let limits = AudioLimits {
        max_seconds: 60.0,
        ..AudioLimits::default()
    };
    let enroll_audio: Vec<Audio> = enroll
        .iter()
        .map(|b| Audio::decode(b, &limits).unwrap())
        .collect();
    let enroll_seconds: f32 = enroll_audio.iter().map(Audio::seconds).sum();
    let enroll_samples: Vec<_> = enroll_audio
        .iter()
        .map(|a| encoder.analyse(a).unwrap())
        .collect();
    let enroll_refs: Vec<_> = enroll_samples.iter().collect();
    let voiceprint = encoder.enroll(&enroll_refs).unwrap();
    let probe_audio = Audio::decode(&probe, &limits).unwrap();
    let probe_sample = encoder.analyse(&probe_audio).unwrap();
    let genuine = encoder.score(&voiceprint, &probe_sample).unwrap();
    let impostor_score = {
        let audio = Audio::decode(&impostor, &limits).unwrap();
        encoder
            .score(&voiceprint, &encoder.analyse(&audio).unwrap())
            .unwrap()
    };
    assert!(
        genuine > impostor_score,
        "genuine {genuine:.3} should beat impostor {impostor_score:.3}"
    );
    eprintln!(
        "(speaker: {} enrolled from {enroll_seconds:.2} s in 3 recordings; probe {:.2} s; cosine genuine {genuine:.3}, impostor {impostor_score:.3})",
        encoder.id(),
        probe_audio.seconds()
    );

    let mut group = c.benchmark_group("speaker");
    group.sample_size(20);
    group.bench_function("analyse_probe_15s", |b| {
        b.iter(|| encoder.analyse(black_box(&probe_audio)).unwrap())
    });
    group.bench_function("enroll_from_3_samples", |b| {
        b.iter(|| encoder.enroll(black_box(&enroll_refs)).unwrap())
    });
    group.bench_function("score", |b| {
        b.iter(|| {
            let s = encoder
                .score(black_box(&voiceprint), &probe_sample)
                .unwrap();
            assert!(s > impostor_score);
            s
        })
    });
    group.bench_function("verify_from_bytes", |b| {
        b.iter(|| {
            let audio = Audio::decode(black_box(&probe), &limits).unwrap();
            let s = encoder
                .score(&voiceprint, &encoder.analyse(&audio).unwrap())
                .unwrap();
            assert!(s > impostor_score);
            s
        })
    });
    group.sample_size(10);
    group.bench_function("enroll_from_bytes_3_recordings", |b| {
        b.iter(|| {
            let samples: Vec<_> = enroll
                .iter()
                .map(|bytes| {
                    let audio = Audio::decode(black_box(bytes), &limits).unwrap();
                    encoder.analyse(&audio).unwrap()
                })
                .collect();
            let refs: Vec<_> = samples.iter().collect();
            encoder.enroll(&refs).unwrap()
        })
    });
    group.finish();
}

/// Recognising one spoken digit (FSDD `7_theo_3.wav`, 8 kHz, resampled once up front): the
/// word padded as the head was trained, the speech embedding's windows, pooling and the head;
/// and the digits of a whole 6-digit phrase.
fn bench_digit(c: &mut Criterion) {
    use vouch::voice::digit_head::DigitHead;
    let Some(engine) = engine() else { return };
    let Ok(embedder) = engine.speech_embedder() else {
        eprintln!("digit bench skipped: no speech embedding models");
        return;
    };
    let path = shared().join("data/fsdd/recordings/7_theo_3.wav");
    let limits = vouch::voice::AudioLimits {
        min_seconds: 0.05,
        ..vouch::voice::AudioLimits::default()
    };
    let Ok(word) = Audio::open(&path, &limits) else {
        eprintln!("digit bench skipped: {} is absent", path.display());
        return;
    };
    let head = DigitHead::builtin().unwrap();
    let mut group = c.benchmark_group("digit");
    group.sample_size(30);
    group.bench_function("recognise_one_word", |b| {
        b.iter(|| {
            let features = DigitHead::features(embedder, black_box(word.samples())).unwrap();
            head.recognise(&features).unwrap()
        })
    });
    // The digit half of a passphrase check: a 6-digit phrase (FSDD theo, takes 0–4, 0.3 s
    // pauses) cut into words by the VAD, each recognised by the head adapted to theo (his two
    // enrollment sequences, takes 5 and 6).
    let take = |d: u8, t: u32| {
        let path = shared().join(format!("data/fsdd/recordings/{d}_theo_{t}.wav"));
        Audio::open(&path, &limits).unwrap()
    };
    let join = |takes: Vec<Audio>| {
        vouch::voice::audio::join_recordings(&takes.iter().collect::<Vec<_>>(), 0.3).unwrap()
    };
    let spoken = vouch::voice::digits::SpokenDigits::new(embedder, &head);
    let mut words = Vec::new();
    for t in [5, 6] {
        words.extend(
            spoken
                .enrollment_words(&join((0..10).map(|d| take(d, t)).collect()))
                .unwrap(),
        );
    }
    let refs: Vec<(u8, &[f32])> = words.iter().map(|(d, f)| (*d, f.as_slice())).collect();
    let model = vouch::voice::digits::DigitModel::Adapted(head.adapt(&refs).unwrap());
    let phrase = join(
        "491702"
            .bytes()
            .enumerate()
            .map(|(i, b)| take(b - b'0', i as u32 % 5))
            .collect(),
    );
    group.bench_function("check_six_digit_phrase", |b| {
        b.iter(|| {
            vouch::voice::passphrase::check_digits(&spoken, "491702", black_box(&phrase), &model)
                .unwrap()
        })
    });
    group.finish();
    eprintln!(
        "(word: {:.2} s, phrase: {:.2} s)",
        word.seconds(),
        phrase.seconds()
    );
}

criterion_group!(benches, bench, bench_speaker, bench_digit);
criterion_main!(benches);
