//! `vouch eval` and `vouch calibrate` end to end on the real development data: report folders
//! (JSON schema, Markdown, DET plots, scores), the embedding cache, LFW's protocol, a folder per
//! identity, labelled liveness lists, voice trial lists, and bad datasets.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::util;
use crate::util::vouch;

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn report(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn faces() -> Option<PathBuf> {
    util::engine()?;
    util::data_file("faces-deepface/master.csv").map(|f| f.parent().unwrap().to_path_buf())
}

/// The deepface photos laid out as LFW is (`NAME/NAME_0001.jpg`, symlinks), from the identity
/// clusters.
fn lfw_layout(faces: &Path, root: &Path) -> Vec<(String, usize)> {
    let listing = std::fs::read_to_string(faces.join("identities_derived.csv")).unwrap();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in listing.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let (file, id) = (cells[0], cells[1]);
        let name = format!("Person_{id}");
        let n = match counts.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => {
                entry.1 += 1;
                entry.1
            }
            None => {
                counts.push((name.clone(), 1));
                1
            }
        };
        std::fs::create_dir_all(root.join(&name)).unwrap();
        std::os::unix::fs::symlink(
            faces.join(file),
            root.join(&name).join(format!("{name}_{n:04}.jpg")),
        )
        .unwrap();
    }
    counts
}

#[test]
fn face_report_folder_and_embedding_cache() {
    let Some(faces) = faces() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (out, cache) = (dir.path().join("report"), dir.path().join("cache"));
    let run = || {
        vouch()
            .args(["eval", "face", "--pairs"])
            .arg(faces.join("master.csv"))
            .arg("--pairs")
            .arg(faces.join("face-recognition-pivot.csv"))
            .arg("--out")
            .arg(&out)
            .arg("--cache")
            .arg(&cache)
            .output()
            .unwrap()
    };
    let first = ok(run());
    assert!(first.contains("EER"), "{first}");
    let json = report(&out);
    assert_eq!(json["header"]["schema"], "vouch.eval.face");
    assert_eq!(json["header"]["schema_version"], 2);
    // The configured models (the embedder, then the fused embedders), each reported, then
    // their fusion, printed last; the headline summary is the fusion's.
    let embedders = json["models"]["embedders"].as_array().unwrap().clone();
    assert!(embedders.len() >= 2, "{embedders:?}");
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), embedders.len() + 1);
    assert_eq!(results.last().unwrap()["name"], "fusion");
    assert_eq!(json["summary"], results.last().unwrap()["summary"]);
    for r in results {
        assert_eq!(r["summary"]["genuine"], json["summary"]["genuine"]);
    }
    let fusion_printed = first.rfind("\nfusion of ").unwrap();
    let last_model = embedders.last().unwrap().as_str().unwrap();
    assert!(first.find(last_model).unwrap() < fusion_printed, "{first}");
    let fits = json["fusion"]["fits"].as_array().unwrap();
    assert!(!fits.is_empty());
    for fit in fits {
        assert_eq!(
            fit["fusion"]["weights"].as_array().unwrap().len(),
            embedders.len()
        );
    }
    assert!(
        json["summary"]["interval_method"]
            .as_str()
            .unwrap()
            .contains("over subjects")
    );
    let summary = &json["summary"];
    let (genuine, impostor) = (
        summary["genuine"].as_u64().unwrap(),
        summary["impostor"].as_u64().unwrap(),
    );
    assert!(genuine > 100 && impostor > 300, "{summary}");
    assert!(summary["auc"].as_f64().unwrap() > 0.95);
    // FMR 1e-3 and below cannot be measured on a few hundred impostor pairs: said so, with no
    // interval pretending otherwise.
    let points = summary["operating_points"].as_array().unwrap();
    assert_eq!(points[0]["measurable"], true);
    assert!(
        points[0]["fnmr_interval"]["high"].as_f64().unwrap() >= points[0]["fnmr"].as_f64().unwrap()
    );
    assert_eq!(points[1]["measurable"], false);
    assert!(points[1]["fnmr_interval"].is_null());
    assert!(
        json["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("not measurable"))
    );
    // img47.jpg is a WebP file named .jpg: a failure to acquire, apart from match errors.
    assert!(json["acquisition"]["images_failed"].as_u64().unwrap() >= 1);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| EER |") && md.contains("Failure to acquire"),
        "{md}"
    );
    let scores = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    assert_eq!(scores.lines().count() as u64, 1 + genuine + impostor);
    // Every pair of the lists, by image number, with each model's score and the fused one.
    let pairs = std::fs::read_to_string(out.join("pairs.csv")).unwrap();
    let header: Vec<&str> = pairs.lines().next().unwrap().split(',').collect();
    assert_eq!(header[..3], ["a", "b", "label"]);
    assert_eq!(header.len(), 3 + embedders.len() + 1);
    let skipped = json["acquisition"]["pairs_skipped"].as_u64().unwrap();
    assert_eq!(
        pairs.lines().count() as u64,
        1 + genuine + impostor + skipped
    );
    let images = std::fs::read_to_string(out.join("images.csv")).unwrap();
    assert!(images.contains(",image_decode\n"), "{images}");
    if out.join("det.png").exists() {
        assert!(
            std::fs::read(out.join("det.png"))
                .unwrap()
                .starts_with(b"\x89PNG")
        );
        assert!(
            std::fs::read_to_string(out.join("det.svg"))
                .unwrap()
                .contains("FNMR")
        );
    } else {
        assert!(first.contains("no DET plot"), "{first}");
    }
    // The cache now holds an entry per distinct image; a second run reads them and gives the
    // very same scores.
    let entries: usize = std::fs::read_dir(&cache)
        .unwrap()
        .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert!(entries > 40, "{entries} cache entries");
    ok(run());
    assert_eq!(
        std::fs::read_to_string(out.join("pairs.csv")).unwrap(),
        pairs
    );
    assert_eq!(report(&out)["results"], json["results"]);
    // The score file feeds `vouch eval scores` and `vouch calibrate scores`.
    let again = ok(vouch()
        .args(["eval", "scores"])
        .arg(out.join("scores.csv"))
        .output()
        .unwrap());
    assert!(again.contains("EER"));
    let calibration = dir.path().join("cal.toml");
    let printed = ok(vouch()
        .args(["calibrate", "scores", "--model", "mobilefacenet@test"])
        .arg(out.join("scores.csv"))
        .arg("--out")
        .arg(&calibration)
        .output()
        .unwrap());
    assert!(printed.contains("95 % interval"), "{printed}");
    let parsed = vouch::score::Calibration::load(&calibration).unwrap();
    let first_point = &parsed.points[0];
    let [lo, hi] = first_point.threshold_interval.unwrap();
    assert!(
        lo <= first_point.threshold && first_point.threshold <= hi,
        "{first_point:?}"
    );
}

#[test]
fn lfw_protocol_and_identity_folders() {
    let Some(faces) = faces() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lfw");
    let counts = lfw_layout(&faces, &root);
    // Two folds of 4 genuine + 4 impostor pairs; the last impostor line names an image that
    // does not exist (a failure to acquire, counted; the run goes on).
    let multi: Vec<&(String, usize)> = counts.iter().filter(|(_, n)| *n >= 3).collect();
    let mut text = String::from("2\t4\n");
    for fold in 0..2 {
        for k in 0..4 {
            let (name, _) = multi[(fold * 4 + k) % multi.len()];
            text += &format!("{name}\t{}\t{}\n", 1 + fold, 2 + fold);
        }
        for k in 0..4 {
            let a = &counts[(fold * 4 + k) % counts.len()].0;
            let b = &counts[(fold * 4 + k + 1) % counts.len()].0;
            let j = if fold == 1 && k == 3 { 99 } else { 1 };
            text += &format!("{a}\t1\t{b}\t{j}\n");
        }
    }
    let pairs_txt = dir.path().join("pairs.txt");
    std::fs::write(&pairs_txt, text).unwrap();
    let out = dir.path().join("lfw-report");
    let printed = ok(vouch()
        .args(["eval", "face", "--no-cache", "--lfw"])
        .arg(&pairs_txt)
        .arg("--images")
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    assert!(printed.contains("LFW 2-fold accuracy"), "{printed}");
    let json = report(&out);
    assert_eq!(json["dataset"]["kind"], "lfw");
    assert_eq!(
        json["lfw_accuracy"]["per_fold"].as_array().unwrap().len(),
        2
    );
    // Every model's accuracy and the fusion's, its fusion fitted fold by fold: fold k's
    // pairs scored by the fusion fitted without them.
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.last().unwrap()["name"], "fusion", "{printed}");
    assert!(
        results
            .iter()
            .all(|r| r["lfw_accuracy"]["mean"].is_number())
    );
    assert_eq!(
        json["lfw_accuracy"],
        results.last().unwrap()["lfw_accuracy"]
    );
    let held_out: Vec<&Value> = json["fusion"]["fits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["held_out"])
        .collect();
    assert_eq!(held_out, [&serde_json::json!([0]), &serde_json::json!([1])]);
    assert_eq!(json["acquisition"]["pairs_skipped"], 1);
    assert!(
        json["acquisition"]["failures"][0]["image"]
            .as_str()
            .unwrap()
            .ends_with("_0099.jpg")
    );

    // The same tree is a folder per identity; ask for fewer impostor pairs than exist.
    let out = dir.path().join("id-report");
    ok(vouch()
        .args([
            "eval",
            "face",
            "--no-cache",
            "--max-impostors",
            "40",
            "--seed",
            "3",
            "--identities",
        ])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    let json = report(&out);
    assert_eq!(json["dataset"]["kind"], "identities");
    assert_eq!(json["dataset"]["counts"]["impostor_sampled"], 40);
    let genuine_expected: usize = counts.iter().map(|(_, n)| n * (n - 1) / 2).sum();
    assert_eq!(json["dataset"]["counts"]["genuine"], genuine_expected);
}

/// CFP's layout (`ID/frontal/…`, `ID/profile/…`), built from the deepface clusters: images
/// at any depth are their identity's, `--pairs-of` keeps one kind of pair, and one model
/// named with `--face-models` is reported alone, without a fusion.
#[test]
fn nested_identity_folders_pairs_of_and_one_model() {
    let Some(faces) = faces() else { return };
    let dir = tempfile::tempdir().unwrap();
    let flat = dir.path().join("flat");
    let counts = lfw_layout(&faces, &flat);
    let root = dir.path().join("nested");
    let mut sides = [0usize; 2];
    for (name, n) in &counts {
        for k in 1..=*n {
            let side = if k % 2 == 1 { "frontal" } else { "profile" };
            let target = root.join(name).join(side);
            std::fs::create_dir_all(&target).unwrap();
            let file = format!("{name}_{k:04}.jpg");
            std::fs::rename(flat.join(name).join(&file), target.join(&file)).unwrap();
        }
        sides[0] += n.div_ceil(2);
        sides[1] += n / 2;
    }
    let run = |pairs_of: &str, out: &Path| {
        ok(vouch()
            .args([
                "eval",
                "face",
                "--no-cache",
                "--face-models",
                "mobilefacenet_int8",
            ])
            .args(["--pairs-of", pairs_of, "--identities"])
            .arg(&root)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap())
    };
    let out = dir.path().join("all");
    run("all", &out);
    let json = report(&out);
    let all_images: usize = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(json["dataset"]["counts"]["images"], all_images);
    let genuine_all: usize = counts.iter().map(|(_, n)| n * (n - 1) / 2).sum();
    assert_eq!(json["dataset"]["counts"]["genuine"], genuine_all);
    assert_eq!(json["results"].as_array().unwrap().len(), 1);
    assert!(json["fusion"].is_null());
    assert_eq!(json["models"]["embedders"].as_array().unwrap().len(), 1);

    let out = dir.path().join("frontal-profile");
    let printed = run("frontal-profile", &out);
    assert!(printed.contains("frontal–profile pairs"), "{printed}");
    let json = report(&out);
    assert_eq!(json["dataset"]["counts"]["pairs_of"], "frontal-profile");
    let genuine_fp: usize = counts.iter().map(|(_, n)| n.div_ceil(2) * (n / 2)).sum();
    assert_eq!(json["dataset"]["counts"]["genuine"], genuine_fp);
    assert_eq!(
        json["dataset"]["counts"]["impostor_available"],
        sides[0] * sides[1] - genuine_fp
    );

    let err = failed(
        vouch()
            .args([
                "eval",
                "face",
                "--no-cache",
                "--pairs-of",
                "frontal",
                "--identities",
            ])
            .arg(&root)
            .output()
            .unwrap(),
    );
    assert!(err.contains("frontal-profile"), "{err}");
    let err = failed(
        vouch()
            .args(["eval", "face", "--pairs-of", "frontal-frontal", "--pairs"])
            .arg(faces.join("master.csv"))
            .output()
            .unwrap(),
    );
    assert!(err.contains("--identities"), "{err}");
}

/// `--fusion calibrated` scores every pair with the fused calibration in force (what a tier
/// with `face_fusion = true` uses) instead of fitting one on the pairs, and says so; a model
/// set the calibration does not fuse is refused with a reason.
#[test]
fn the_calibrated_fusion_is_reported_beside_each_model() {
    let Some(faces) = faces() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ids");
    lfw_layout(&faces, &root);
    let out = dir.path().join("calibrated");
    ok(vouch()
        .args(["eval", "face", "--no-cache", "--fusion", "calibrated"])
        .arg("--identities")
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    let json = report(&out);
    assert_eq!(
        json["results"].as_array().unwrap().len(),
        3,
        "two models and the fusion"
    );
    let protocol = json["fusion"]["protocol"].as_str().unwrap();
    assert!(protocol.contains("calibration in force"), "{protocol}");
    assert!(json["fusion"]["fits"].as_array().unwrap().is_empty());
    // The fused calibration fuses MobileFaceNet and SFace, not SFace and MobileFaceNet.
    let err = failed(
        vouch()
            .args(["eval", "face", "--no-cache", "--fusion", "calibrated"])
            .args([
                "--face-models",
                "sface_int8,mobilefacenet_int8",
                "--identities",
            ])
            .arg(&root)
            .output()
            .unwrap(),
    );
    assert!(err.contains("calibration"), "{err}");
}

#[test]
fn liveness_list_report_per_attack_type() {
    if util::engine().is_none() {
        return;
    }
    let Some(sample) = util::data_file("liveness-samples/image_T1.jpg") else {
        return;
    };
    let samples = sample.parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.csv");
    let mut text = String::from("file,label\n");
    for (file, label) in [
        ("image_T1.jpg", "bona_fide"),
        ("image_T2.jpg", "bona_fide"),
        ("image_F1.jpg", "print"),
        ("image_F2.jpg", "replay"),
    ] {
        text += &format!("{},{label}\n", samples.join(file).display());
    }
    std::fs::write(&list, text).unwrap();
    let out = dir.path().join("report");
    let printed = ok(vouch()
        .args(["eval", "liveness", "--list"])
        .arg(&list)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    assert!(printed.contains("max APCER"), "{printed}");
    let json = report(&out);
    assert_eq!(json["header"]["schema"], "vouch.eval.liveness");
    let summary = &json["summary"];
    assert_eq!(summary["bona_fide"], 2);
    assert_eq!(summary["bpcer"], 0.0);
    let types: Vec<&str> = summary["per_attack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attack"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["print", "replay"]);
    assert_eq!(summary["max_apcer"], 0.0);
    // every image keeps each model's score, the inputs of a learned fusion
    for scored in summary["scores"].as_array().unwrap() {
        let models: Vec<&str> = scored["per_model"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["model"].as_str().unwrap())
            .collect();
        assert_eq!(models, ["minifasnet_v2", "minifasnet_v1se"]);
    }
    // Per session: image_T1 and image_T2 are one bona fide session under this pattern; the
    // print and the replay share a key but not a label, so they are two.
    let out = dir.path().join("sessions");
    let printed = ok(vouch()
        .args([
            "eval",
            "liveness",
            "--session-regex",
            r"^image_(.)",
            "--list",
        ])
        .arg(&list)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    assert!(printed.contains("per session (1 bona fide"), "{printed}");
    let json = report(&out);
    let sessions = &json["sessions"];
    assert_eq!(sessions["bona_fide"], 1);
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 3);
    assert_eq!(sessions["sessions"][0]["frames"], 2);
    assert_eq!(sessions["per_attack"][0]["attack"], "print");
    // The per-frame figures are unchanged beside them.
    assert_eq!(json["summary"]["bona_fide"], 2);
    let bad = vouch()
        .args(["eval", "liveness", "--session-regex", "(", "--list"])
        .arg(&list)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--session-regex"));
    // One attack of each type cannot measure BPCER at APCER 1 %.
    assert_eq!(
        summary["per_attack"][0]["bpcer_at_apcer"][0]["measurable"],
        false
    );
}

#[test]
fn voice_trial_list() {
    if util::engine().is_none() {
        return;
    }
    let Some(first) = util::data_file("librispeech/test-other/1688/1688-142285-0000.flac") else {
        return;
    };
    let root = first.parent().unwrap().parent().unwrap();
    let speakers: Vec<PathBuf> = {
        let mut s: Vec<PathBuf> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        s.sort();
        s.into_iter().take(3).collect()
    };
    let files = |d: &Path| -> Vec<String> {
        let mut f: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "flac"))
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        f.sort();
        f
    };
    let mut text = String::from("enroll,probe,label\n");
    for (i, s) in speakers.iter().enumerate() {
        let mine = files(s);
        let other = files(&speakers[(i + 1) % speakers.len()]);
        text += &format!("{};{},{},target\n", mine[0], mine[1], mine[2]);
        text += &format!("{};{},{},nontarget\n", mine[0], mine[1], other[3]);
        text += &format!("{},{},target\n", mine[0], mine[4]);
    }
    text += "missing.flac,other-missing.flac,nontarget\n";
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("trials.csv");
    std::fs::write(&list, text).unwrap();
    let out = dir.path().join("report");
    let printed = ok(vouch()
        .args(["eval", "voice", "--trials"])
        .arg(&list)
        .arg("--audio")
        .arg(root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    assert!(printed.contains("minDCF"), "{printed}");
    let json = report(&out);
    assert_eq!(json["header"]["schema"], "vouch.eval.voice");
    assert_eq!(json["summary"]["genuine"], 6);
    assert_eq!(json["summary"]["impostor"], 3);
    assert_eq!(json["trials_skipped"], 1);
    assert_eq!(json["failures"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_datasets_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let nan = dir.path().join("nan.csv");
    std::fs::write(&nan, "label,score\ngenuine,0.9\nimpostor,NaN\n").unwrap();
    let err = failed(vouch().args(["eval", "scores"]).arg(&nan).output().unwrap());
    assert!(
        err.contains("nan.csv:3") && err.contains("not finite"),
        "{err}"
    );
    let one_sided = dir.path().join("genuine-only.csv");
    std::fs::write(&one_sided, "label,score\ngenuine,0.9\ngenuine,0.8\n").unwrap();
    let err = failed(
        vouch()
            .args(["eval", "scores"])
            .arg(&one_sided)
            .output()
            .unwrap(),
    );
    assert!(err.contains("0 impostor"), "{err}");
    let labels = dir.path().join("labels.csv");
    std::fs::write(&labels, "label,score\ngenuine,0.9\nperhaps,0.1\n").unwrap();
    let err = failed(
        vouch()
            .args(["eval", "scores"])
            .arg(&labels)
            .output()
            .unwrap(),
    );
    assert!(err.contains("perhaps"), "{err}");
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let err = failed(
        vouch()
            .args(["eval", "face", "--pairs"])
            .arg(&empty)
            .output()
            .unwrap(),
    );
    assert!(err.contains("empty"), "{err}");
    let err = failed(vouch().args(["eval", "face"]).output().unwrap());
    assert!(err.contains("--pairs") || err.contains("required"), "{err}");
}

/// `vouch eval digits` on a small FSDD folder at 8 kHz with the built-in head: accuracy,
/// per-speaker figures, a 10 × 10 confusion matrix, and the recordings it could not judge
/// counted as skipped, never silently. (FSDD trained the built-in head: the figure here is
/// in sample and only has to show the recogniser works; the report says so.)
#[test]
fn eval_digits_reports_accuracy_confusion_and_skipped_files() {
    if util::engine().is_none() {
        return;
    }
    let Some(fsdd) = util::data_dir("fsdd/recordings") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for speaker in ["theo", "jackson"] {
        for digit in 0..10 {
            for take in 0..2 {
                let name = format!("{digit}_{speaker}_{take}.wav");
                std::os::unix::fs::symlink(fsdd.join(&name), dir.path().join(&name)).unwrap();
            }
        }
    }
    std::fs::write(dir.path().join("readme.txt"), "not a recording").unwrap();
    std::fs::write(dir.path().join("3_theo_99.wav"), b"RIFF\0\0\0\0WAVEjunk").unwrap();
    let reports = tempfile::tempdir().unwrap();
    let json = reports.path().join("digits.json");
    ok(vouch()
        .args(["eval", "digits"])
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap());
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["header"]["schema"], "vouch.eval.digits");
    assert_eq!(r["correct"]["count"], 40);
    assert!(r["accuracy"].as_f64().unwrap() >= 0.9, "{r}");
    assert_eq!(r["per_speaker"].as_array().unwrap().len(), 2);
    let confusion = r["confusion"].as_array().unwrap();
    assert_eq!(confusion.len(), 10);
    let total: u64 = confusion
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, 40);
    assert_eq!(r["skipped"].as_array().unwrap().len(), 2, "{r}");
    // Adapted to each speaker with their take 0 of every digit: the other 20 words each are
    // judged; a speaker with one recording cannot adapt and is skipped whole, said so.
    std::os::unix::fs::symlink(fsdd.join("5_lucas_0.wav"), dir.path().join("5_solo_0.wav"))
        .unwrap();
    ok(vouch()
        .args(["eval", "digits", "--adapt-takes", "1"])
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap());
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["adapt_takes"], 1);
    assert_eq!(r["correct"]["count"], 20, "{r}");
    assert!(r["accuracy"].as_f64().unwrap() >= 0.9, "{r}");
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 3, "{r}");
    assert!(
        skipped
            .iter()
            .any(|s| s["reason"].as_str().unwrap().contains("speaker solo")),
        "{r}"
    );
    // Nothing to judge: a clear error.
    let empty = tempfile::tempdir().unwrap();
    let err = failed(
        vouch()
            .args(["eval", "digits"])
            .arg(empty.path())
            .output()
            .unwrap(),
    );
    assert!(err.contains("digit"), "{err}");
}

/// `vouch eval passphrase` on a small `{digit}_{speaker}_{take}.wav` folder with two speaker
/// models fused: the JSON keys the issue names (fractions), a speaker with too few takes
/// skipped and counted, the fusion reported; and `vouch eval voice` fusing the same two models
/// on LibriSpeech by two-fold cross-validation over speakers. (A small UBM trained here; the
/// built-in digit head saw FSDD: the report says the digits are in sample.)
#[test]
fn eval_passphrase_and_voice_fuse_two_speaker_models() {
    if util::engine().is_none() {
        return;
    }
    let (Some(fsdd), Some(background), Some(test_other)) = (
        util::data_dir("fsdd/recordings"),
        util::data_dir("librispeech/train-clean-100"),
        util::data_dir("librispeech/test-other"),
    ) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let ubm = work.path().join("ubm.vubm");
    ok(vouch()
        .args(["voice", "train-ubm"])
        .arg(&background)
        .arg("-o")
        .arg(&ubm)
        .args([
            "--components",
            "8",
            "--em-iterations",
            "3",
            "--cohort",
            "20",
        ])
        .output()
        .unwrap());
    let dir = work.path().join("digits");
    std::fs::create_dir(&dir).unwrap();
    for (speaker, takes) in [("theo", 4), ("jackson", 4), ("lucas", 4), ("nicolas", 2)] {
        for digit in 0..10 {
            for take in 0..takes {
                let name = format!("{digit}_{speaker}_{take}.wav");
                std::os::unix::fs::symlink(fsdd.join(&name), dir.join(&name)).unwrap();
            }
        }
    }
    let json = work.path().join("passphrase.json");
    ok(vouch()
        .args(["eval", "passphrase"])
        .arg(&dir)
        .args(["--enroll-takes", "1", "--phrases", "4"])
        .args(["--model", "encoder", "--model", "gmm", "--ubm"])
        .arg(&ubm)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap());
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["header"]["schema"], "vouch.eval.passphrase");
    for key in ["genuine_accepted", "impostor_accepted", "replay_accepted"] {
        let v = r[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert!(r["genuine_accepted"].as_f64().unwrap() >= 0.5, "{r}");
    assert_eq!(r["replay_accepted"], 0.0, "{r}");
    let report = &r["report"];
    assert_eq!(report["speakers"].as_array().unwrap().len(), 3, "{report}");
    let skipped = report["skipped_speakers"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["speaker"], "nicolas");
    assert_eq!(report["models"].as_array().unwrap().len(), 2);
    assert_eq!(report["fusion"]["weights"].as_array().unwrap().len(), 2);
    assert_eq!(report["genuine"]["accepted"]["count"], 12);
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("in sample")),
        "{r}"
    );

    let json = work.path().join("voice.json");
    let out = ok(vouch()
        .args(["eval", "voice"])
        .arg(&test_other)
        .args(["--model", "encoder", "--model", "gmm", "--ubm"])
        .arg(&ubm)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap());
    assert!(out.contains("fusion fitted on half 1"), "{out}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(r["model"].as_str().unwrap().contains('+'), "{r}");
    assert!(r["summary"]["eer"]["rate"].as_f64().unwrap() < 0.1, "{r}");
}
