//! Every on-disk format version ever written, read back from committed fixtures
//! (`fixtures/formats/README.md` lists them). A future version must keep reading each, and
//! refuse a version newer than it knows.
//!
//! - `template-envelope-v1.bin`: a face template sealed by format and envelope version 1 for
//!   subject `fixture-subject` under the key `fixture-key` = 0x2a × 32.
//! - `ubm-v1.bin`: a GMM-UBM file (version 1) trained by `Ubm::train` on four synthetic
//!   harmonic tones (no recording of anyone): 2 components, 2 cohort recordings of 5 frames.
//! - `passphrase-digits-v1.bin`: a passphrase template enrolled the old way (DTW digit
//!   templates version 1, as the removed `DigitTemplates::to_values` laid them out) sealed for
//!   `fixture-subject` under `fixture-key`; synthetic 4-value frames, one take of each digit
//!   and two of 7.
//! - `passphrase-centroids-v1.bin`: digit centroids (layout 1: the marker 1.0, then 10 × 192
//!   values) sealed the same way; synthetic unit vectors.
//! - `keys-v1.toml`: a key file as `Keyring::save` writes it: `fixture-key` (0x2a × 32,
//!   current), `fixture-old` (0x11 × 32) and the transform key 0x7e × 32.
//! - `ship-cursor-v1.json`: the audit shipping cursor (version 1) `Shipper::ship_once` wrote
//!   after shipping the first two records of `audit-v1.jsonl` as origin `fixture-origin`.
//!
//! Each is written by its own `write_*` test below, ignored: run it by hand only when a new
//! version is added (`cargo test --all-features --test integration formats::write_ -- --ignored
//! NAME`), never to refresh a fixture of a version already written.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use vouch::template::{
    Kek, KeyProvider, Keyring, Modality, Template, TemplateHeader, open, peek, seal,
};
use vouch::voice::digit_head::{AdaptedDigitHead, FEATURES};
use vouch::voice::ubm::{FRONT_END, Ubm, UbmBuild};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/formats")
        .join(name)
}

fn fixture_keys() -> Keyring {
    Keyring::single("fixture-key", Kek::from_hex(&"2a".repeat(32)).unwrap()).unwrap()
}

fn fixture_template() -> Template {
    let header = TemplateHeader {
        modality: Modality::Face,
        model_id: "mobilefacenet@b7120c095d60".into(),
        model_sha256: [0xb7; 32],
        dimension: 8,
        samples: 2,
        quality: 0.875,
        created_unix: 1_795_300_000,
    };
    Template::new(
        header,
        vec![0.5, -0.5, 0.25, -0.25, 0.125, -0.125, 0.0625, 0.75],
    )
    .unwrap()
}

/// Writes the template envelope fixture (run once per new version, by hand:
/// `cargo test --all-features --test integration formats::write_fixtures -- --ignored`).
#[test]
#[ignore = "writes fixtures; run by hand when a format version is added"]
fn write_fixtures() {
    std::fs::create_dir_all(fixture("")).unwrap();
    let blob = seal(&fixture_template(), "fixture-subject", &fixture_keys()).unwrap();
    std::fs::write(fixture("template-envelope-v1.bin"), blob).unwrap();
}

#[test]
fn template_envelope_v1_still_opens() {
    let blob = std::fs::read(fixture("template-envelope-v1.bin")).unwrap();
    let info = peek(&blob).unwrap();
    assert_eq!(info.key_id, "fixture-key");
    assert_eq!(info.header, fixture_template().header().clone());
    let template = open(&blob, "fixture-subject", &fixture_keys()).unwrap();
    assert_eq!(template, fixture_template());
    assert_eq!(
        open(&blob, "another-subject", &fixture_keys())
            .unwrap_err()
            .kind(),
        vouch::ErrorKind::TemplateAuth
    );
}

/// The UBM fixture's training recordings: four 1.5 s harmonic tones (fundamentals 110, 150,
/// 200 and 240 Hz, eight harmonics falling off as 1/h, a slow vibrato and a little
/// deterministic noise) between quarter-second pauses of near-silence, as 16 kHz WAV files.
fn synthetic_tones(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = move || {
        // SplitMix64, to [-1, 1).
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f32 / (1u64 << 52) as f32 - 1.0
    };
    [110.0f32, 150.0, 200.0, 240.0]
        .iter()
        .enumerate()
        .map(|(i, &f0)| {
            let samples: Vec<f32> = (0..24_000)
                .map(|n| {
                    let t = n as f32 / 16_000.0;
                    let voiced = (4_000..20_000).contains(&n);
                    let tone = if voiced {
                        let f = f0 * (1.0 + 0.02 * (2.0 * std::f32::consts::PI * 5.0 * t).sin());
                        (1..=8)
                            .map(|h| {
                                (2.0 * std::f32::consts::PI * f * h as f32 * t).sin() / h as f32
                            })
                            .sum::<f32>()
                            * 0.2
                    } else {
                        0.0
                    };
                    tone + 0.001 * noise()
                })
                .collect();
            let path = dir.join(format!("tone-{i}.wav"));
            std::fs::write(&path, crate::util::wav_16k(&samples)).unwrap();
            path
        })
        .collect()
}

const UBM_TRAINED_ON: &str =
    "synthetic harmonic tones (tests/formats.rs): a format fixture, not a model";

/// Writes `ubm-v1.bin` (by hand, when the UBM format gets a new version:
/// `cargo test --all-features --test integration formats::write_ubm_fixture -- --ignored`).
#[test]
#[ignore = "writes a fixture; run by hand when a format version is added"]
fn write_ubm_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let files = synthetic_tones(dir.path());
    let mut build = UbmBuild {
        cohort: 2,
        cohort_frames: 5,
        trained_on: UBM_TRAINED_ON.into(),
        ..UbmBuild::default()
    };
    build.training.components = 2;
    build.training.kmeans_iterations = 3;
    build.training.em_iterations = 3;
    build.training.threads = 1;
    let ubm = Ubm::train(&files, &build, &|_| {}).unwrap();
    ubm.save(&fixture("ubm-v1.bin")).unwrap();
}

#[test]
fn ubm_v1_still_opens() {
    let bytes = std::fs::read(fixture("ubm-v1.bin")).unwrap();
    let ubm = Ubm::open(&fixture("ubm-v1.bin")).unwrap();
    let info = ubm.info();
    assert_eq!(
        (info.components, info.dims, info.front_end.as_str()),
        (2, 40, FRONT_END)
    );
    assert_eq!(info.trained_on, UBM_TRAINED_ON);
    assert_eq!(info.training_recordings, 4);
    assert_eq!(info.cohort_frames, [5, 5]);
    assert_eq!(
        (info.em_iterations, info.seed, info.relevance),
        (3, 1, 16.0)
    );
    let gmm = ubm.gmm();
    assert_eq!((gmm.components(), gmm.dims()), (2, 40));
    let total: f64 = gmm.weights().iter().sum();
    assert!((total - 1.0).abs() < 1e-5, "weights sum to {total}");
    assert!(gmm.variances().iter().all(|v| *v > 0.0));
    assert_eq!(ubm.sha256(), <[u8; 32]>::from(Sha256::digest(&bytes)));
    // Written again, byte for byte the same: every stored value reads back exactly.
    assert_eq!(ubm.to_bytes().unwrap(), bytes);

    // A newer version (its checksum made right, so that the version is what is refused).
    let mut newer = bytes[..bytes.len() - 32].to_vec();
    newer[8..12].copy_from_slice(&2u32.to_le_bytes());
    let digest = Sha256::digest(&newer);
    newer.extend_from_slice(&digest);
    let err = Ubm::from_bytes(&newer).unwrap_err();
    assert_eq!(err.kind(), vouch::ErrorKind::TemplateFormat, "{err}");
    assert!(err.to_string().contains("version 2"), "{err}");
}

/// The legacy passphrase fixture's header: what `DigitTemplates` (DTW of MFCC, removed when
/// the digit head came) stored.
fn legacy_passphrase_header() -> TemplateHeader {
    let model_id = vouch::voice::digits::LEGACY_DIGITS_MODEL_ID;
    TemplateHeader {
        modality: Modality::Passphrase,
        model_id: model_id.into(),
        model_sha256: Sha256::digest(model_id.as_bytes()).into(),
        dimension: 0,
        samples: 11,
        quality: 1.0,
        created_unix: 1_795_300_000,
    }
}

/// Templates enrolled the old way still open (their subjects verify with the head alone
/// until they re-enroll: `voice::a_spoken_passphrase_is_verified_against_the_vault`), and
/// their values are never taken for digit centroids.
#[test]
fn passphrase_digit_templates_v1_still_open() {
    let blob = std::fs::read(fixture("passphrase-digits-v1.bin")).unwrap();
    let template = open(&blob, "fixture-subject", &fixture_keys()).unwrap();
    let (header, expected) = (template.header(), legacy_passphrase_header());
    assert_eq!(
        (&header.model_id, header.model_sha256, header.samples),
        (&expected.model_id, expected.model_sha256, expected.samples)
    );
    // Layout version 1.0, then 11 takes of 4-value frames.
    assert_eq!(template.values()[0], 1.0);
    assert!(template.values().len() > 11 * 10 * 4);
    let head = vouch::voice::digit_head::DigitHead::builtin().unwrap();
    let err = AdaptedDigitHead::from_values(&head, template.values()).unwrap_err();
    assert_eq!(err.kind(), vouch::ErrorKind::TemplateFormat, "{err}");
}

/// Synthetic digit centroids (no recording of anyone): digit d's centroid has 1 at feature
/// d and 0.5 at feature 100 + d, scaled to unit length.
fn fixture_centroids() -> Vec<f32> {
    let mut values = vec![1.0f32];
    for d in 0..10 {
        let mut c = vec![0f32; FEATURES];
        c[d] = 1.0;
        c[100 + d] = 0.5;
        let n = c.iter().map(|v| v * v).sum::<f32>().sqrt();
        values.extend(c.iter().map(|v| v / n));
    }
    values
}

fn fixture_centroid_template() -> Template {
    let header = TemplateHeader {
        modality: Modality::Passphrase,
        model_id: "digit-centroids@fixture00000".into(),
        model_sha256: [0x5a; 32],
        dimension: 0,
        samples: 20,
        quality: 1.0,
        created_unix: 1_796_000_000,
    };
    Template::new(header, fixture_centroids()).unwrap()
}

/// Writes `passphrase-centroids-v1.bin` (by hand, when the centroid layout gets a new
/// version: `cargo test --all-features --test integration formats::write_centroids_fixture --
/// --ignored`).
#[test]
#[ignore = "writes a fixture; run by hand when a format version is added"]
fn write_centroids_fixture() {
    let blob = seal(
        &fixture_centroid_template(),
        "fixture-subject",
        &fixture_keys(),
    )
    .unwrap();
    std::fs::write(fixture("passphrase-centroids-v1.bin"), blob).unwrap();
}

/// Digit centroids (layout 1) read back: the same values, an adapted head that scores with
/// them, and a newer layout refused, not misread.
#[test]
fn passphrase_digit_centroids_v1_still_open() {
    let blob = std::fs::read(fixture("passphrase-centroids-v1.bin")).unwrap();
    let template = open(&blob, "fixture-subject", &fixture_keys()).unwrap();
    assert_eq!(template, fixture_centroid_template());
    let head = vouch::voice::digit_head::DigitHead::builtin().unwrap();
    let adapted = AdaptedDigitHead::from_values(&head, template.values()).unwrap();
    assert_eq!(adapted.to_values(), fixture_centroids());
    let mut newer = template.values().to_vec();
    newer[0] = 2.0;
    let err = AdaptedDigitHead::from_values(&head, &newer).unwrap_err();
    assert_eq!(err.kind(), vouch::ErrorKind::TemplateFormat, "{err}");
}

/// What `keys-v1.toml` was made from: read by `Keyring::load`, then written by
/// `Keyring::save` (the public API has no way to choose a transform key, and the fixture's
/// keys must be obviously not real ones).
const KEYS_SEED: &str = r#"current = "fixture-key"
transform = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e"
[keys]
fixture-key = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a"
fixture-old = "1111111111111111111111111111111111111111111111111111111111111111"
"#;

/// A private copy of a key-file text (a key file readable by others is refused).
fn private_key_file(dir: &std::path::Path, text: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("keys.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Writes `keys-v1.toml` (by hand, if the key file ever gets a new layout:
/// `cargo test --all-features --test integration formats::write_keys_fixture -- --ignored`).
#[test]
#[ignore = "writes a fixture; run by hand when a format version is added"]
fn write_keys_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keyring::load(&private_key_file(dir.path(), KEYS_SEED.as_bytes())).unwrap();
    keys.save(&fixture("keys-v1.toml")).unwrap();
}

#[test]
fn key_file_v1_still_loads() {
    let text = std::fs::read(fixture("keys-v1.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = Keyring::load(&private_key_file(dir.path(), &text)).unwrap();
    assert_eq!(keys.current_key_id(), "fixture-key");
    assert_eq!(keys.key_ids(), ["fixture-key", "fixture-old"]);
    for (id, byte) in [("fixture-key", "2a"), ("fixture-old", "11")] {
        assert_eq!(
            keys.key(id).unwrap().to_hex().as_str(),
            byte.repeat(32),
            "{id}"
        );
    }
    assert_eq!(
        keys.transform_key().unwrap().to_hex().as_str(),
        "7e".repeat(32)
    );
    // The keys are the ones the envelope fixture was sealed under.
    open(
        &std::fs::read(fixture("template-envelope-v1.bin")).unwrap(),
        "fixture-subject",
        &keys,
    )
    .unwrap();
    // Saved again, the same text.
    let again = dir.path().join("again.toml");
    keys.save(&again).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), text);

    // The key file has no version field: a future layout adding one (or any field this
    // vouch does not know) is refused, not half read.
    let mut newer = b"version = 2\n".to_vec();
    newer.extend_from_slice(&text);
    let err = Keyring::load(&private_key_file(dir.path(), &newer)).unwrap_err();
    assert_eq!(err.kind(), vouch::ErrorKind::Key, "{err}");
    assert!(err.to_string().contains("malformed"), "{err}");
}

/// The first `n` lines of the audit log fixture, as a log of their own in `dir`.
fn audit_prefix(dir: &std::path::Path, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(fixture("audit-v1.jsonl")).unwrap();
    let log = dir.join("audit.log");
    let lines: String = text.lines().take(n).map(|l| format!("{l}\n")).collect();
    std::fs::write(&log, lines).unwrap();
    log
}

/// Writes `ship-cursor-v1.json` (by hand, with the test PostgreSQL server, when the cursor
/// gets a new version: `cargo test --all-features --test integration
/// formats::write_ship_cursor_fixture -- --ignored`).
#[test]
#[ignore = "writes a fixture; run by hand when a format version is added"]
fn write_ship_cursor_fixture() {
    let Some((url, data)) = crate::util::postgres() else {
        return;
    };
    let _one_at_a_time = crate::util::postgres_exclusive(&data);
    let dir = tempfile::tempdir().unwrap();
    let log = audit_prefix(dir.path(), 2);
    let shipper = vouch::audit::ship::Shipper::new(&log, "fixture-origin", &url).unwrap();
    assert_eq!(shipper.ship_once().unwrap().up_to_seq, 2);
    std::fs::copy(
        dir.path().join("audit.log.shipped"),
        fixture("ship-cursor-v1.json"),
    )
    .unwrap();
}

#[test]
fn ship_cursor_v1_still_reads() {
    use vouch::audit::ship::Shipper;
    let text = std::fs::read_to_string(fixture("ship-cursor-v1.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The whole log fixture, shipped up to its second record: the third is what is left.
    let log = audit_prefix(dir.path(), 3);
    let cursor = dir.path().join("audit.log.shipped");
    std::fs::write(&cursor, &text).unwrap();
    // Reading the cursor connects to nothing (no server listens on port 9).
    let url = "host=127.0.0.1 port=9 user=nobody";
    let shipper = Shipper::new(&log, "fixture-origin", url).unwrap();
    assert_eq!(shipper.shipped_up_to().unwrap(), 2);
    // Its content: the second record's hash, and the byte offset just after its line.
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let log_text = std::fs::read_to_string(fixture("audit-v1.jsonl")).unwrap();
    let second: serde_json::Value = serde_json::from_str(log_text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(value["version"], 1);
    assert_eq!(value["origin"], "fixture-origin");
    assert_eq!(value["seq"], 2);
    assert_eq!(value["hash"], second["hash"]);
    let offset: usize = log_text.lines().take(2).map(|l| l.len() + 1).sum();
    assert_eq!(value["offset"], offset);
    // Another origin's log is refused.
    let err = Shipper::new(&log, "another-origin", url)
        .unwrap()
        .shipped_up_to()
        .unwrap_err();
    assert!(err.to_string().contains("fixture-origin"), "{err}");

    // A newer version is refused, not misread.
    std::fs::write(&cursor, text.replace("\"version\":1", "\"version\":2")).unwrap();
    let err = shipper.shipped_up_to().unwrap_err();
    assert_eq!(err.kind(), vouch::ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("version 2"), "{err}");
}
