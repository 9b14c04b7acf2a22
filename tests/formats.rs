//! Every on-disk format version ever written, read back from committed fixtures.
//!
//! `fixtures/formats/template-envelope-v1.bin` is a face template sealed by format and
//! envelope version 1 for subject `fixture-subject` under the key `fixture-key` = 0x2a × 32.
//! A future version must keep opening it.

use std::path::PathBuf;

use vouch::template::{Kek, Keyring, Modality, Template, TemplateHeader, open, peek, seal};

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

/// Writes the fixtures of the current versions (run once per new version, by hand:
/// `cargo test --test integration formats::write_fixtures -- --ignored`).
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
