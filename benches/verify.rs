//! End-to-end verification through the library's `Authenticator`: photo bytes in, signed
//! decision out. A real SQLite template store, key file, receipt key and audit log live in a
//! temporary folder; one subject (faces-deepface identity `id01`) is enrolled from real photos,
//! and a genuine photo of theirs is verified, once as a 640×480 camera-sized JPEG and once as
//! the original 1536×1152 photo.
//!
//! The bench policy has three tiers: `face` (face only, FMR 1e-3, amounts up to 1.00),
//! `face-liveness` (face + liveness, FMR 1e-3, up to 50.00: the built-in `small` tier) and
//! `fused` (face + liveness with the face's score fused over MobileFaceNet and SFace, as the
//! built-in large tier holds it, without its challenges).
//! Each verify includes what a real one does: decoding, quality gate, liveness, embedding,
//! opening the sealed templates, the policy, signing the receipt and appending (with fsync)
//! to the audit log.
//!
//! Needs the real models and data (`VOUCH_SHARED`, default `../shared`) and ONNX Runtime
//! (`VOUCH_ORT_LIB`, default `.vouch/lib/libonnxruntime.so`); prints why and exits otherwise.
//! Run: `cargo bench --bench verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use vouch::Config;
use vouch::authenticator::{
    Authenticator, EnrollRequest, Outcome, TransactionContext, VerifyRequest,
};
use vouch::policy::{Factor, Transaction};
use vouch::receipt::ReceiptSigner;
use vouch::template::Keyring;

/// Enrollment photos of `id01` (identities_derived.csv) and the genuine probe, which is not
/// among them.
const ENROLL: [&str; 3] = ["img1.jpg", "img4.jpg", "img6.jpg"];
const PROBE: &str = "img2.jpg";
const SUBJECT: &str = "customer-id01";

const POLICY: &str = r#"
version = 1

[[tier]]
name = "face"
max_amount_minor = 100
factors = ["face"]
target_fmr = 0.001

[[tier]]
name = "face-liveness"
max_amount_minor = 5000
factors = ["face", "liveness"]
target_fmr = 0.001

[[tier]]
name = "fused"
max_amount_minor = 150000
factors = ["face", "liveness"]
target_fmr = 0.0001
face_fusion = true
"#;

fn shared() -> PathBuf {
    std::env::var_os("VOUCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// A configuration whose every file lives in `dir`: store, keys, receipt key, audit log,
/// policy. Failures to lock out are raised out of reach: the bench measures decisions, not
/// lockouts.
fn config(dir: &Path) -> Option<Config> {
    let mut config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("verify bench skipped: {e}");
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
    config.store.sqlite = dir.join("templates.db");
    config.keys.file = dir.join("keys.toml");
    config.keys.env = None;
    Keyring::generate("bench")
        .unwrap()
        .save(&config.keys.file)
        .unwrap();
    config.decisions.receipt_key = dir.join("receipt.key");
    ReceiptSigner::generate(&config.decisions.receipt_key).unwrap();
    config.decisions.audit_log = dir.join("audit.log");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    config.decisions.policy = Some(policy);
    config.dangerous().set_research_scores(true);
    config.decisions.attempts.max_subject_failures = u32::MAX;
    config.decisions.attempts.max_terminal_failures = u32::MAX;
    Some(config)
}

/// A 640×480 JPEG (quality 92, 4:2:0) of a 4:3 photo, as a terminal's camera would send.
fn camera_frame(auth: &Authenticator, original: &[u8]) -> Vec<u8> {
    let image = auth
        .engine()
        .decode_image(original)
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

fn transaction(id: u64, amount_minor: u64) -> TransactionContext {
    TransactionContext {
        id: format!("t-{id}"),
        nonce: format!("n-{id}"),
        transaction: Transaction::new(amount_minor, "EUR", None).unwrap(),
    }
}

fn bench(c: &mut Criterion) {
    let faces = shared().join("data/faces-deepface");
    if !faces.is_dir() {
        return eprintln!("verify bench skipped: no {}", faces.display());
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(config) = config(dir.path()) else {
        return;
    };
    let auth = match config.validate().and_then(Authenticator::open) {
        Ok(auth) => auth,
        Err(e) => return eprintln!("verify bench skipped: {e}"),
    };

    let samples: Vec<Vec<u8>> = ENROLL
        .iter()
        .map(|name| std::fs::read(faces.join(name)).unwrap())
        .collect();
    let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
    let report = auth
        .enroll(&EnrollRequest {
            subject: SUBJECT,
            terminal: "bench",
            face: &refs,
            ..EnrollRequest::default()
        })
        .unwrap();
    assert_eq!(
        report.outcome,
        Outcome::Accept,
        "enrollment: {:?}",
        report.samples
    );
    let accepted = report.samples.iter().filter(|s| s.accepted).count();
    eprintln!(
        "enrolled {SUBJECT} from {accepted} of {} photos",
        ENROLL.len()
    );

    let original = std::fs::read(faces.join(PROBE)).unwrap();
    let frame = camera_frame(&auth, &original);
    let mut counter = 0u64;
    let mut verify = |photo: &[u8], amount_minor: u64| {
        counter += 1;
        let tx = transaction(counter, amount_minor);
        let frames = [photo];
        auth.verify(&VerifyRequest {
            subject: SUBJECT,
            terminal: "bench",
            transaction: &tx,
            face_frames: &frames,
            voice: None,
            active: None,
        })
        .unwrap()
    };

    // Check once, outside the timing, what each case decides, and say it.
    for (name, photo) in [("640x480", &frame), ("1536x1152", &original)] {
        for (tier, amount, factors) in [
            ("face", 100, vec![Factor::Face]),
            ("face-liveness", 1250, vec![Factor::Face, Factor::Liveness]),
            ("fused", 90_000, vec![Factor::Face, Factor::Liveness]),
        ] {
            let d = verify(photo, amount);
            assert_eq!(d.tier.as_deref(), Some(tier));
            assert_eq!(d.used, factors, "{name} {tier}: {:?}", d.reasons);
            let scores = d.scores.unwrap_or_default();
            eprintln!(
                "{PROBE} {name}, tier {tier}: {} {:?} (face {:.3} ≥ {:.3}?, liveness {:?})",
                d.outcome.as_str(),
                d.reasons,
                scores.face.unwrap_or(f64::NAN),
                scores.face_threshold.unwrap_or(f64::NAN),
                scores.liveness
            );
            // A genuine photo must pass the face factor; liveness on a press photo is what
            // the models make of it, and the bench times either outcome.
            assert!(!d.reasons.iter().any(|r| r == "face_mismatch"));
        }
    }

    for (name, photo, samples) in [("640x480", &frame, 20), ("1536x1152", &original, 10)] {
        let mut group = c.benchmark_group(format!("verify_{name}"));
        group.sample_size(samples);
        for (tier, amount) in [("face", 100), ("face_liveness", 1250), ("fused", 90_000)] {
            group.bench_function(tier, |b| {
                b.iter(|| {
                    let d = verify(black_box(photo), amount);
                    assert_ne!(d.outcome, Outcome::Retake);
                    d
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
