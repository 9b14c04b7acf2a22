//! Face pipeline stages on a 640×480 photo: decode, detect, align, embed, and all together.
//!
//! Needs the real models and data (`VOUCH_SHARED`, default `../shared`) and ONNX Runtime
//! (`VOUCH_ORT_LIB`, default `.vouch/lib/libonnxruntime.so`); prints why and exits otherwise.
//! Run: `cargo bench --bench face`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use vouch::face::{FaceImage, align};
use vouch::{Config, Engine};

fn shared() -> PathBuf {
    std::env::var_os("VOUCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

fn engine() -> Option<Engine> {
    let mut config = Config::from_env().ok()?;
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
            eprintln!("face bench skipped: {e}");
            None
        }
    }
}

/// A 640×480 JPEG made from a real photo (img2.jpg, 1536×1152, is 4:3 already).
fn photo_640x480(engine: &Engine) -> Vec<u8> {
    let original = std::fs::read(shared().join("data/faces-deepface/img2.jpg")).expect("img2.jpg");
    let image = engine
        .decode_image(&original)
        .unwrap()
        .resized(640, 480)
        .unwrap();
    let view = turbojpeg::Image {
        pixels: image.rgb(),
        width: 640,
        pitch: 640 * 3,
        height: 480,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(view, 92, turbojpeg::Subsamp::Sub2x2)
        .unwrap()
        .to_vec()
}

fn bench(c: &mut Criterion) {
    let Some(engine) = engine() else { return };
    let jpeg = photo_640x480(&engine);
    let image = engine.decode_image(&jpeg).unwrap();
    let faces = engine.face().detect(&image).unwrap();
    assert_eq!(faces.len(), 1, "the bench photo should hold one face");
    let landmarks = faces[0].landmarks;
    let aligned = align(&image, &landmarks).unwrap();

    let mut group = c.benchmark_group("face_640x480");
    group.bench_function("decode_jpeg", |b| {
        b.iter(|| FaceImage::decode(black_box(&jpeg), &engine.config().limits).unwrap())
    });
    group.bench_function("detect", |b| {
        b.iter(|| {
            let found = engine.face().detect(black_box(&image)).unwrap();
            assert_eq!(found.len(), 1);
        })
    });
    group.bench_function("align", |b| {
        b.iter(|| align(black_box(&image), &landmarks).unwrap())
    });
    group.bench_function("embed", |b| {
        b.iter(|| engine.face().embedder().embed(black_box(&aligned)).unwrap())
    });
    group.bench_function("end_to_end", |b| {
        b.iter(|| {
            let sample = engine.face_sample(black_box(&jpeg)).unwrap();
            assert_eq!(sample.face_count, 1);
        })
    });
    group.finish();
}

/// Liveness on a 640×480 camera frame (liveness-samples/image_T1.jpg): both models on the
/// detected box, with and without the four jittered crops; the opt-in face-antispoof model
/// alone (its crop, and crop + inference).
fn bench_liveness(c: &mut Criterion) {
    let Some(engine) = engine() else { return };
    let Ok(bytes) = std::fs::read(shared().join("data/liveness-samples/image_T1.jpg")) else {
        return eprintln!("liveness bench skipped: no liveness samples");
    };
    let frame = engine.decode_image(&bytes).unwrap();
    let face = engine
        .assess_liveness_images(std::slice::from_ref(&frame))
        .unwrap()
        .faces[0]
        .face_box;
    let threshold = engine.config().decisions.liveness_threshold;
    let mut jitter_config = engine.config().liveness.clone();
    jitter_config.jitter = vouch::face::Jitter::Always;
    let models_dir = &engine.config().models.dir;
    let jittered = vouch::face::Liveness::new(
        engine.runtime(),
        engine.manifest(),
        models_dir,
        &jitter_config,
    )
    .unwrap();

    let mut group = c.benchmark_group("liveness_640x480");
    group.bench_function("both_models", |b| {
        b.iter(|| {
            let r = engine
                .liveness()
                .score_frame(black_box(&frame), &face, threshold)
                .unwrap();
            assert!(r.score > 0.5);
        })
    });
    group.bench_function("both_models_jittered", |b| {
        b.iter(|| {
            let r = jittered
                .score_frame(black_box(&frame), &face, threshold)
                .unwrap();
            assert!(r.score > 0.5);
        })
    });
    // the opt-in third model alone: its square reflected crop, and crop + inference
    let spec = engine.manifest().get("face_antispoof").unwrap();
    let antispoof =
        vouch::face::liveness::LivenessModel::new(engine.runtime(), spec, models_dir).unwrap();
    group.bench_function("face_antispoof_crop", |b| {
        b.iter(|| {
            let crop =
                vouch::face::liveness::square_reflect_crop(black_box(&frame), &face, 1.5, 128)
                    .unwrap();
            assert_eq!(crop.width(), 128);
        })
    });
    group.bench_function("face_antispoof", |b| {
        b.iter(|| {
            let s = antispoof.score(black_box(&frame), &face).unwrap();
            assert!(s.live > 0.5);
        })
    });
    group.bench_function("frame_bytes_to_score", |b| {
        b.iter(|| {
            let r = engine.assess_liveness(&[black_box(&bytes)]).unwrap();
            assert!(r.liveness.score > threshold);
        })
    });
    group.finish();
}

/// The active liveness check on a 45-frame response (3 s at 15 fps) of one 640×480 frame:
/// detection alone, `Engine::follow` (detection + pose, parallax, movements and the identity
/// embeddings: every frame is frontal, so the identity check embeds the most frames it ever
/// does), passive liveness on 4 frontal frames (what the authenticator adds for a response),
/// and the motion analysis alone from the landmarks. The check's cost beyond detection is
/// `follow` minus `detect` plus the 4 frames' passive liveness, per frame.
fn bench_active(c: &mut Criterion) {
    use vouch::face::motion::{self, Sighting};
    let Some(engine) = engine() else { return };
    let jpeg = photo_640x480(&engine);
    let image = engine.decode_image(&jpeg).unwrap();
    let frames = vec![image; 45];
    let times: Vec<f64> = (0..frames.len()).map(|i| i as f64 / 15.0).collect();
    let face = engine.face().detect(&frames[0]).unwrap()[0];
    let sightings: Vec<(f64, Option<Sighting>)> = times
        .iter()
        .map(|&t| {
            let face_width = face.bbox[2] - face.bbox[0];
            (
                t,
                Some(Sighting {
                    landmarks: face.landmarks,
                    face_width,
                }),
            )
        })
        .collect();
    let config = engine.config().face.motion.clone();

    let mut group = c.benchmark_group("active_45_frames_640x480");
    group.sample_size(10);
    group.bench_function("detect", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(engine.face().detect(f).unwrap());
            }
        })
    });
    group.bench_function("follow", |b| {
        b.iter(|| black_box(engine.follow(&frames, &times).unwrap()))
    });
    // What the authenticator adds for a response: passive liveness on up to 4 of its
    // frontal frames, each detected again and scored by the ensemble on its own.
    let threshold = engine.config().decisions.liveness_threshold;
    group.bench_function("response_passive_4_frames", |b| {
        b.iter(|| {
            for f in &frames[..4] {
                let presentation = engine.observe(std::slice::from_ref(f)).unwrap();
                black_box(engine.liveness_of(&presentation, threshold).unwrap());
            }
        })
    });
    group.bench_function("motion_from_landmarks", |b| {
        b.iter(|| {
            let (base, reference) = motion::baseline(&sightings, config.baseline_frames).unwrap();
            let tracked = motion::track(&sightings, &reference);
            black_box(motion::movements(&tracked, base, &config))
        })
    });
    group.finish();
}

criterion_group!(benches, bench, bench_liveness, bench_active);
criterion_main!(benches);
