//! The security review as code: no `unsafe` in any target, and no secret or biometric type
//! shows its bytes through `Debug` — nor through the errors raised while reading it.
//! (File and socket permissions, and constant-time comparison, have their own tests; see
//! SECURITY.md for the map.)

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vouch::capture::AudioChunk;
use vouch::embedding::Embedding;
use vouch::face::FaceImage;
use vouch::receipt::ReceiptSigner;
use vouch::template::{Kek, Keyring, Template, Transform};
use vouch::voice::Audio;
use vouch::voice::speaker::Voiceprint;

/// The key bytes every key below is made of (0x5a = 90), and how they would show.
const KEY_HEX: &str = "5a5a5a5a";
const KEY_DECIMAL: &str = "90, 90";
/// The value every biometric vector below holds, and its printed prefix.
const VALUE: f32 = 0.123_456_79;
const VALUE_TEXT: &str = "0.12345";

fn assert_redacted(what: &str, shown: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !shown.to_lowercase().contains(secret),
            "{what} shows {secret:?} in {shown:?}"
        );
    }
}

/// `{:?}` and `{:#?}` of a value, checked together.
fn debug_of(value: &impl std::fmt::Debug) -> String {
    format!("{value:?}\n{value:#?}")
}

fn key() -> Kek {
    Kek::from_hex(&"5a".repeat(32)).unwrap()
}

#[test]
fn keys_never_show_their_bytes() {
    let key_bytes = [KEY_HEX, KEY_DECIMAL];
    assert_redacted("Kek", &debug_of(&key()), &key_bytes);
    let mut ring = Keyring::single("k1", key()).unwrap();
    ring.rotate_to("k2", key()).unwrap();
    assert_redacted("Keyring", &debug_of(&ring), &key_bytes);
    assert_redacted(
        "Transform",
        &debug_of(&Transform::derive(&key(), 128).unwrap()),
        &key_bytes,
    );

    // A receipt signer whose secret is known: the file holds it as hex.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("receipt.key");
    std::fs::write(&path, format!("{}\n", "5a".repeat(32))).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let signer = ReceiptSigner::load(&path).unwrap();
    assert_redacted("ReceiptSigner", &debug_of(&signer), &key_bytes);
}

#[test]
fn errors_reading_keys_never_quote_them() {
    let dir = tempfile::tempdir().unwrap();
    let private = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    // One byte short, one non-hex digit, a key file that is not TOML around a key: each is
    // refused, and the refusal does not echo the key material it read.
    let short = "5a".repeat(31);
    let not_hex = format!("{}zz", "5a".repeat(31));
    let errors = [
        Kek::from_hex(&short).unwrap_err(),
        Kek::from_hex(&not_hex).unwrap_err(),
        Keyring::load(&private(
            "short.toml",
            &format!("current = \"k1\"\n[keys]\nk1 = \"{short}\"\n"),
        ))
        .unwrap_err(),
        Keyring::load(&private(
            "broken.toml",
            &format!("current = \"k1\"\n[keys]\nk1 = \"{}\n", "5a".repeat(32)),
        ))
        .unwrap_err(),
        Keyring::load(&private(
            "unquoted.toml",
            &format!("current = \"k1\"\n[keys]\nk1 = {}\n", "5a".repeat(32)),
        ))
        .unwrap_err(),
        ReceiptSigner::load(&private("short.key", &short)).unwrap_err(),
        ReceiptSigner::load(&private("not-hex.key", &not_hex)).unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), vouch::ErrorKind::Key, "{err:#}");
        assert_redacted(
            "a key error",
            &format!("{err}\n{err:#}\n{err:?}"),
            &[KEY_HEX, KEY_DECIMAL],
        );
    }
}

#[test]
fn biometric_data_never_shows_its_values() {
    let vector = vec![VALUE; 128];
    let header = crate::catalogue::template("mobilefacenet@b7120c095d60")
        .header()
        .clone();
    let shown = [
        (
            "Template",
            debug_of(&Template::new(header, vector.clone()).unwrap()),
        ),
        (
            "Embedding",
            debug_of(&Embedding::from_raw(vector.clone()).unwrap()),
        ),
        (
            "Voiceprint",
            debug_of(&Voiceprint::new("ge2e@0", vector.clone()).unwrap()),
        ),
        (
            "Audio",
            debug_of(&Audio::from_samples(vec![VALUE; 16_000]).unwrap()),
        ),
        (
            "AudioChunk",
            debug_of(&AudioChunk {
                samples: vec![VALUE; 480],
                channels: 1,
                sample_rate: 48_000,
            }),
        ),
    ];
    for (what, text) in &shown {
        assert_redacted(what, text, &[VALUE_TEXT]);
    }
    // Embeddings are normalised on the way in: their stored values differ from VALUE.
    let normalised = Embedding::from_raw(vector).unwrap().values()[0].to_string();
    assert_redacted(
        "Embedding",
        &debug_of(&Embedding::from_raw(vec![VALUE; 128]).unwrap()),
        &[&normalised[..7]],
    );
    // Pixels: a frame of one distinctive colour.
    let image = FaceImage::from_rgb(4, 4, [201u8, 173, 157].repeat(16)).unwrap();
    assert_redacted("FaceImage", &debug_of(&image), &["201", "173", "157"]);
}

/// Every Rust source of every target: the crate forbids `unsafe_code` through `[lints]`
/// (which covers the library, binaries, tests, benches and examples alike, and cannot be
/// re-allowed below it), and no source even tries.
#[test]
fn no_unsafe_code_in_any_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for manifest in ["Cargo.toml", "fuzz/Cargo.toml"] {
        let text = std::fs::read_to_string(root.join(manifest)).unwrap();
        let lints = text
            .split("[lints.rust]")
            .nth(1)
            .unwrap_or_else(|| panic!("{manifest} has no [lints.rust] table"));
        let table = lints.split("\n[").next().unwrap();
        assert!(
            table.contains("unsafe_code = \"forbid\""),
            "{manifest}: [lints.rust] must forbid unsafe_code"
        );
    }
    // Built from pieces so that this file does not match itself.
    let patterns = [
        format!("{} {{", "unsafe"),
        format!("{} fn", "unsafe"),
        format!("{} impl", "unsafe"),
        format!("allow({}_code)", "unsafe"),
    ];
    let mut offenders = Vec::new();
    let mut seen = 0;
    for folder in [
        "src",
        "tests",
        "benches",
        "examples",
        "fuzz/fuzz_targets",
        "build.rs",
    ] {
        for file in rust_files(&root.join(folder)) {
            seen += 1;
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if patterns.iter().any(|p| code.contains(p.as_str())) {
                    offenders.push(format!("{}:{}: {line}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(seen > 50, "only {seen} sources found");
    assert!(
        offenders.is_empty(),
        "unsafe code:\n{}",
        offenders.join("\n")
    );
}

fn rust_files(path: &Path) -> Vec<std::path::PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
