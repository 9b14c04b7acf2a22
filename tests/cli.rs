//! The `vouch` binary as a user runs it: exit codes, JSON output, error messages.

use std::process::Command;

use crate::util;
use crate::util::vouch;

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
    if util::engine().is_none() {
        return; // without models the engine's own error comes first (tested in models.rs)
    }
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
    std::fs::write(&config, "[face]\ndetection_threshold = 7\n").unwrap();
    let out = vouch()
        .arg("--config")
        .arg(&config)
        .args(["models", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("detection_threshold"));
    // A key an earlier version read says where it went.
    std::fs::write(&config, "[liveness]\nthreshold = 0.4\n").unwrap();
    let out = vouch()
        .arg("--config")
        .arg(&config)
        .args(["models", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("decisions.liveness_threshold"), "{stderr}");
}

/// `vouch voice mfcc long.flac | head -1`: the reader leaves early; vouch must exit quietly,
/// not panic on the closed pipe.
#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    use std::io::{BufRead, BufReader};
    let Some(flac) = util::data_file("librispeech/test-other/1688/1688-142285-0000.flac") else {
        return;
    };
    let mut child = vouch()
        .args(["voice", "mfcc"])
        .arg(&flac)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim().split(',').count(), 13, "{first}");
    // the reader (and the pipe) are gone now; the rest of the ~150 KB cannot be written
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
}

/// `vouch voice enroll` (through the authenticator: audited), `challenge` and the research
/// `compare` as a user runs them, on FSDD recordings.
#[test]
fn voice_enroll_challenge_and_compare_from_the_command_line() {
    let Some(_) = util::engine() else { return };
    if util::data_dir("fsdd/recordings").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("vouch.toml");
    std::fs::write(
        &config,
        format!(
            "[decisions]\nreceipt_key = \"{0}/receipt.key\"\naudit_log = \"{0}/audit.log\"\n",
            work.path().display()
        ),
    )
    .unwrap();
    let env = |cmd: &mut Command| {
        cmd.env("VOUCH_STORE", work.path().join("store.db"))
            .env("VOUCH_KEYS", work.path().join("keys.toml"))
            .arg("--config")
            .arg(&config);
    };
    let mut keys = vouch();
    env(&mut keys);
    assert!(keys.args(["keys", "generate"]).status().unwrap().success());
    vouch::receipt::ReceiptSigner::generate(&work.path().join("receipt.key")).unwrap();

    let mut enroll = vouch();
    env(&mut enroll);
    enroll.args(["voice", "enroll", "lucas"]);
    // lucas saying the ten digits in order, twice (his takes 5 and 6 joined).
    for take in [5, 6] {
        let path = work.path().join(format!("sequence-{take}.wav"));
        std::fs::write(&path, util::fsdd_sequence_wav("lucas", take).unwrap()).unwrap();
        enroll.arg("--sequence").arg(path);
    }
    let out = enroll.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("enrolled lucas"));
    let audit = std::fs::read_to_string(work.path().join("audit.log")).unwrap();
    assert!(
        audit.contains("\"enroll\"") && audit.contains("lucas"),
        "the enrollment is audited: {audit}"
    );

    let mut challenge = vouch();
    env(&mut challenge);
    let out = challenge
        .args(["voice", "challenge", "lucas", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let digits = json["digits"].as_str().unwrap();
    assert_eq!(digits.len(), 6);
    assert_eq!(json["id"].as_str().unwrap().len(), 32);

    // The response: the challenge's digits from lucas's test takes, written as a WAV.
    let phrase = util::fsdd_phrase("lucas", digits, 0).unwrap();
    let response = work.path().join("response.wav");
    std::fs::write(&response, util::wav_16k(phrase.samples())).unwrap();

    let mut compare = vouch();
    env(&mut compare);
    let out = compare
        .args(["voice", "compare", "lucas"])
        .arg(&response)
        .args(["--digits", digits, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(result["digit_errors"].as_u64().unwrap() <= 1, "{result}");
    assert_eq!(result["adapted"], true, "{result}");
    let scores = result["speaker_scores"].as_array().unwrap();
    assert_eq!(scores.len(), 2, "the encoder's and the GMM-UBM's: {result}");
    assert!(
        scores[0]["model"]
            .as_str()
            .unwrap()
            .starts_with("resemblyzer@")
            && scores[0]["score"].as_f64().unwrap() > 0.5,
        "{result}"
    );
    assert!(
        result.get("accepted").is_none(),
        "research output holds no verdict: {result}"
    );

    // Too few digits: a clear failure, not a crash.
    let mut wrong = vouch();
    env(&mut wrong);
    let out = wrong
        .args(["voice", "compare", "lucas"])
        .arg(&response)
        .args(["--digits", "1234567"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the passphrase has 7 digits"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `vouch demo` (the README's first command) runs to the end on the shared data: faces,
/// liveness samples and the spoken passphrase, where a used challenge is refused.
#[test]
fn the_demo_runs_end_to_end() {
    let Some(_) = util::engine() else { return };
    let Some(data) = util::shared().map(|s| s.join("data")) else {
        return;
    };
    let out = vouch()
        .arg("demo")
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("genuine accepted"), "{stdout}");
    assert!(stdout.contains("spoken passphrase"), "{stdout}");
    assert_eq!(stdout.matches("someone else").count(), 2, "{stdout}");
    assert_eq!(
        stdout
            .matches("the same challenge again: challenge_invalid")
            .count(),
        2
    );
}

/// `vouch calibrate liveness` on the four liveness samples: the file it writes names the
/// models by id, a refit from the per-model scores it saved gives the same file, the engine
/// fuses with it at its threshold, and a configuration with other models is refused at start.
#[test]
fn calibrate_liveness_writes_a_fusion_the_engine_uses() {
    use vouch::score::liveness::LivenessCalibration;
    let Some(engine) = util::engine() else {
        return;
    };
    let Some(samples) = util::data_dir("liveness-samples") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (fusion, refit, scores) = (
        dir.path().join("fusion.toml"),
        dir.path().join("refit.toml"),
        dir.path().join("scores.csv"),
    );
    let run = |args: &[&std::ffi::OsStr]| {
        let out = vouch().args(args).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let image = |name: &str| samples.join(name).into_os_string();
    let (ok, stdout, stderr) = run(&[
        "calibrate".as_ref(),
        "liveness".as_ref(),
        "--bona-fide".as_ref(),
        &image("image_T1.jpg"),
        "--bona-fide".as_ref(),
        &image("image_T2.jpg"),
        "--attack".as_ref(),
        &std::ffi::OsString::from(format!("print={}", samples.join("image_F1.jpg").display())),
        "--attack".as_ref(),
        &std::ffi::OsString::from(format!("replay={}", samples.join("image_F2.jpg").display())),
        "--scores-out".as_ref(),
        scores.as_os_str(),
        "--out".as_ref(),
        fusion.as_os_str(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("logistic") && stdout.contains("mean"),
        "{stdout}"
    );
    let calibration = LivenessCalibration::load(&fusion).unwrap();
    assert_eq!(calibration.models, engine.liveness().model_ids());
    assert_eq!(calibration.in_sample.bona_fide, 2);
    assert_eq!(calibration.in_sample.attacks.len(), 2);
    assert_eq!(calibration.in_sample.max_apcer, 0.0);
    assert!(calibration.held_out.is_none());

    // fitted again from the saved scores: the same fusion and threshold
    let (ok, _, stderr) = run(&[
        "calibrate".as_ref(),
        "liveness".as_ref(),
        "--scores".as_ref(),
        scores.as_os_str(),
        "--out".as_ref(),
        refit.as_os_str(),
    ]);
    assert!(ok, "{stderr}");
    let again = LivenessCalibration::load(&refit).unwrap();
    assert_eq!(again.weights, calibration.weights);
    assert_eq!(again.bias, calibration.bias);
    assert_eq!(again.threshold, calibration.threshold);

    // the engine fuses with it, at the file's threshold
    let config = dir.path().join("vouch.toml");
    std::fs::write(
        &config,
        format!("[liveness]\nfusion = {:?}\n", fusion.display().to_string()),
    )
    .unwrap();
    let (ok, stdout, stderr) = run(&[
        "--config".as_ref(),
        config.as_os_str(),
        "face".as_ref(),
        "liveness".as_ref(),
        "--json".as_ref(),
        &image("image_T1.jpg"),
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["liveness"]["fusion"], "logistic");
    assert_eq!(
        report["threshold"].as_f64().unwrap() as f32,
        calibration.threshold
    );
    let frame = &report["liveness"]["per_frame"][0];
    let live: Vec<f32> = frame["per_model"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["live"].as_f64().unwrap() as f32)
        .collect();
    let fused = calibration.fusion().unwrap().fuse(&live).unwrap();
    assert_eq!(frame["score"].as_f64().unwrap() as f32, fused);
    assert_eq!(report["live"], fused >= calibration.threshold);

    // learned on the pair: refused with one model, before anything is scored
    std::fs::write(
        &config,
        format!(
            "[liveness]\nfusion = {:?}\nmodels = [\"minifasnet_v2\"]\n",
            fusion.display().to_string()
        ),
    )
    .unwrap();
    let (ok, _, stderr) = run(&[
        "--config".as_ref(),
        config.as_os_str(),
        "face".as_ref(),
        "liveness".as_ref(),
        &image("image_T1.jpg"),
    ]);
    assert!(!ok);
    assert!(stderr.contains("recalibrate"), "{stderr}");
}
