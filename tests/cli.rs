//! The `vouch` binary as a user runs it: exit codes, JSON output, error messages.

use std::process::Command;

use crate::util;

fn vouch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vouch"));
    if let Some(lib) = util::ort_library() {
        cmd.env("VOUCH_ORT_LIB", lib);
    }
    if let Some(shared) = util::shared_dir() {
        cmd.env("VOUCH_MODEL_DIR", shared.join("models"));
    }
    cmd
}

#[test]
fn models_list_prints_the_manifest_as_json() {
    let out = vouch().args(["models", "list", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rows.iter().any(|r| r["name"] == "mobilefacenet"));
    assert!(
        rows.iter()
            .all(|r| r["sha256"].as_str().map(str::len) == Some(64))
    );
}

#[test]
fn face_detect_json_on_a_real_photo() {
    if util::engine().is_none() {
        return;
    }
    let Some(photo) = util::data_file("faces-deepface/img5.jpg") else {
        return;
    };
    let out = vouch()
        .args(["face", "detect", "--json"])
        .arg(&photo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["faces"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        report["faces"][0]["landmarks"].as_array().map(Vec::len),
        Some(5)
    );
}

#[test]
fn a_missing_file_is_a_clear_failure() {
    let out = vouch()
        .args(["face", "detect", "/nonexistent/photo.jpg"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("/nonexistent/photo.jpg"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_config_value_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vouch.toml");
    std::fs::write(&config, "[face]\nmatch_threshold = 7\n").unwrap();
    let out = vouch()
        .arg("--config")
        .arg(&config)
        .args(["models", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("match_threshold"));
}
