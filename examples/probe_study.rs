//! What multi-frame probes and test-time flips buy (#20), measured through the product's own
//! path: each presentation observed once (`Engine::observe`), its probe the mean of the
//! normalised embeddings of its `k` sharpest frames (`FacePipeline::embed_presented`, as
//! `face.probe_frames = k` does), with and without the mirrored crop added
//! (`face.flip_augment`), by the embedder, each fused embedder, and their fusion through the
//! built-in calibration (`calibration/face-fused.toml`, fitted on other data).
//!
//! Layout: `DIR/SUBJECT/…/*.jpg`. A subject's files are sorted by recording (the file stem
//! without a trailing `_NUMBER`, with the folder it is in) and frame number; the first
//! `--enroll` files enroll the subject (each observed alone and averaged, as enrollment does),
//! the rest are cut into presentations of `--window` consecutive frames of one recording.
//! Every presentation is scored against every subject's templates.
//!
//! ```text
//! cargo run --release --example probe_study -- ../shared/data/liveness-nuaa-raw-train/ClientRaw --window 5
//! cargo run --release --example probe_study -- ../shared/data/faces-cfp-dev --window 1 --enroll 3 --probe-filter /frontal/
//! ```
//!
//! Prints, per variant, the EER and FNMR at the built-in calibrations' thresholds for FMR 1e-3
//! and 1e-4 (the operating points in service), with the number of trials.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vouch::embedding::Embedding;
use vouch::score::{Calibrations, fused_model_id};
use vouch::stats::ScoreSet;
use vouch::{Config, Engine};

struct Args {
    dir: PathBuf,
    window: usize,
    enroll: usize,
    probe_filter: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let mut parsed = Args {
        dir: PathBuf::new(),
        window: 5,
        enroll: 3,
        probe_filter: None,
    };
    while let Some(a) = raw.next() {
        let mut value = |name: &str| raw.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--window" => parsed.window = value("--window")?.parse().map_err(|e| format!("{e}"))?,
            "--enroll" => parsed.enroll = value("--enroll")?.parse().map_err(|e| format!("{e}"))?,
            "--probe-filter" => parsed.probe_filter = Some(value("--probe-filter")?),
            _ if parsed.dir.as_os_str().is_empty() => parsed.dir = PathBuf::from(a),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if parsed.dir.as_os_str().is_empty() || parsed.window == 0 || parsed.enroll == 0 {
        return Err(
            "usage: probe_study DIR [--window W] [--enroll E] [--probe-filter SUBSTR]".into(),
        );
    }
    Ok(parsed)
}

/// `(recording, frame number)` of a file: `0001_00_00_01_112.jpg` → (`…/0001_00_00_01`, 112);
/// `frontal/03.jpg` → (`…/frontal`, 3).
fn recording_and_frame(path: &Path) -> (String, u64) {
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let folder = path
        .parent()
        .map_or_else(String::new, |p| p.display().to_string());
    match stem.rsplit_once('_') {
        Some((recording, n)) if n.parse::<u64>().is_ok() => {
            (format!("{folder}/{recording}"), n.parse().unwrap_or(0))
        }
        _ => (folder, stem.parse().unwrap_or(0)),
    }
}

fn images_under(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            images_under(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("png"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Each variant's embeddings of one face: one per model (the embedder first).
type ByModel = Vec<Embedding>;

/// Genuine and impostor scores of one model (or the fusion).
type Trials = (Vec<f64>, Vec<f64>);

struct Variant {
    engine: Engine,
}

impl Variant {
    fn new(flip: bool) -> Result<Variant, Box<dyn std::error::Error>> {
        let mut config = Config::from_env()?;
        config.face.flip_augment = flip;
        Ok(Variant {
            engine: Engine::new(config.validate()?)?,
        })
    }

    /// The embeddings of a presentation's `k` sharpest frames, per model; `None` when the
    /// frames are not one usable presentation.
    fn probe(&self, frames: &[vouch::face::FaceImage], k: usize) -> Option<ByModel> {
        let presentation = self.engine.observe(frames).ok()?;
        let chosen = presentation.sharpest_frames(k);
        let embedded = self
            .engine
            .face()
            .embed_presented(&presentation, &chosen, true)
            .ok()?;
        let mut models = vec![embedded.embedding];
        models.extend(embedded.fused.into_iter().map(|m| m.embedding));
        Some(models)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let variants = [
        ("no flip", Variant::new(false)?),
        ("flip", Variant::new(true)?),
    ];
    let models = variants[0].1.engine.fused_face_models();
    let calibrations = Calibrations::builtin();
    let fused = calibrations.get(&fused_model_id(&models))?;
    let single: Vec<_> = models
        .iter()
        .map(|m| calibrations.get(m))
        .collect::<Result<_, _>>()?;

    // Subjects' files, sorted by recording and frame.
    let mut subjects: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(&args.dir)? {
        let path = entry?.path();
        if path.is_dir() {
            let mut files = Vec::new();
            images_under(&path, &mut files)?;
            files.sort_by_key(|f| recording_and_frame(f));
            if files.len() > args.enroll {
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                subjects.insert(name, files);
            }
        }
    }
    let decode = |engine: &Engine, path: &Path| {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| engine.decode_image(&bytes).ok())
    };
    let ks: Vec<usize> = [1, 3, args.window]
        .into_iter()
        .filter(|&k| k <= args.window)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    eprintln!(
        "{} subjects; enroll {} frame(s) each; presentations of {} frame(s); k = {ks:?}",
        subjects.len(),
        args.enroll,
        args.window
    );

    for (label, variant) in &variants {
        let engine = &variant.engine;
        // Templates: every enrollment frame observed alone, per model averaged.
        let mut templates: BTreeMap<&str, ByModel> = BTreeMap::new();
        for (subject, files) in &subjects {
            let mut per_model: Vec<Vec<Embedding>> = vec![Vec::new(); models.len()];
            for file in &files[..args.enroll] {
                let Some(image) = decode(engine, file) else {
                    continue;
                };
                if let Some(by_model) = variant.probe(std::slice::from_ref(&image), 1) {
                    for (column, e) in per_model.iter_mut().zip(by_model) {
                        column.push(e);
                    }
                }
            }
            if let Ok(template) = per_model.iter().map(|c| Embedding::mean(c)).collect() {
                templates.insert(subject, template);
            }
        }
        // Scores per k: model 0, model 1, …, the fusion; genuine and impostor.
        let mut scores: BTreeMap<usize, Vec<Trials>> = ks
            .iter()
            .map(|&k| (k, vec![(Vec::new(), Vec::new()); models.len() + 1]))
            .collect();
        let mut presentations = 0;
        let mut unusable = 0;
        for (subject, files) in &subjects {
            let mut by_recording: BTreeMap<String, Vec<&PathBuf>> = BTreeMap::new();
            for file in &files[args.enroll..] {
                by_recording
                    .entry(recording_and_frame(file).0)
                    .or_default()
                    .push(file);
            }
            for frames in by_recording
                .values()
                .flat_map(|f| f.chunks_exact(args.window))
            {
                if let Some(filter) = &args.probe_filter
                    && !frames
                        .iter()
                        .all(|f| f.display().to_string().contains(filter))
                {
                    continue;
                }
                let images: Option<Vec<_>> = frames.iter().map(|f| decode(engine, f)).collect();
                let Some(images) = images else {
                    unusable += 1;
                    continue;
                };
                presentations += 1;
                for &k in &ks {
                    let Some(probe) = variant.probe(&images, k) else {
                        unusable += 1;
                        continue;
                    };
                    for (enrolled, template) in &templates {
                        let genuine = enrolled == subject;
                        let cosines: Vec<f64> = template
                            .iter()
                            .zip(&probe)
                            .map(|(t, p)| t.cosine(p).map(f64::from).unwrap_or(f64::NAN))
                            .collect();
                        let named: Vec<(&str, f64)> = models
                            .iter()
                            .map(String::as_str)
                            .zip(cosines.iter().copied())
                            .collect();
                        let fused_score = fused.combine(&named)?;
                        let per_k = scores.get_mut(&k).expect("every k has a slot");
                        for (slot, score) in per_k
                            .iter_mut()
                            .zip(cosines.iter().copied().chain([fused_score]))
                        {
                            if genuine {
                                slot.0.push(score);
                            } else {
                                slot.1.push(score);
                            }
                        }
                    }
                }
            }
        }
        println!(
            "== {label}: {presentations} presentations ({unusable} unusable probe(s) skipped)"
        );
        println!(
            "{:<3} {:<42} {:>8} {:>8} {:>14} {:>14}",
            "k", "model", "genuine", "impostor", "FNMR@1e-3 cal", "FNMR@1e-4 cal"
        );
        for (&k, per_model) in &scores {
            for (m, (genuine, impostor)) in per_model.iter().enumerate() {
                let (name, calibration) = match single.get(m) {
                    Some(c) => (models[m].as_str(), *c),
                    None => ("fused", fused),
                };
                let set = ScoreSet::new(genuine.clone(), impostor.clone())?;
                let at = |fmr: f64| -> Result<String, Box<dyn std::error::Error>> {
                    let t = calibration.threshold_at(fmr)?;
                    Ok(format!(
                        "{:.2} % ({}/{})",
                        100.0 * set.fnmr(t),
                        genuine.iter().filter(|s| **s < t).count(),
                        genuine.len()
                    ))
                };
                println!(
                    "{k:<3} {name:<42} {:>8} {:>8} {:>14} {:>14}   impostor max {:.3}, false matches at 1e-4: {}",
                    genuine.len(),
                    impostor.len(),
                    at(1e-3)?,
                    at(1e-4)?,
                    impostor.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    impostor
                        .iter()
                        .filter(|s| **s >= calibration.threshold_at(1e-4).unwrap_or(f64::INFINITY))
                        .count()
                );
            }
        }
    }
    Ok(())
}
