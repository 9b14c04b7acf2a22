//! Scoring presentation-attack data: bona fide and attack images, per attack type
//! (ISO/IEC 30107-3 vocabulary).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::eval::csv::CsvList;
use crate::eval::face::AcquisitionFailure;
use crate::eval::metrics::{self, RocPoint};
use crate::face::liveness::ModelScore;
use crate::face::{FaceBox, FaceImage};
use crate::stats::interval::{Interval, wilson};
use crate::stats::{OperatingPoint, ScoreSet};

/// A labelled liveness image: bona fide (`attack == None`) or an attack of a named type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivenessSample {
    /// The image.
    pub path: PathBuf,
    /// `None` for a bona fide presentation, else the attack type (`print`, `replay`, …).
    pub attack: Option<String>,
}

/// Every JPEG or PNG under `dir` (recursively), sorted, labelled `attack`; `dir` may also
/// name a single image.
pub fn samples_in(dir: &Path, attack: Option<&str>) -> Result<Vec<LivenessSample>> {
    if dir.is_file() {
        return Ok(vec![LivenessSample {
            path: dir.to_path_buf(),
            attack: attack.map(str::to_string),
        }]);
    }
    let files = crate::listing::files_under(dir, &["jpg", "jpeg", "png"])?;
    if files.is_empty() {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!("{} holds no JPEG or PNG images", dir.display()),
        ));
    }
    Ok(files
        .into_iter()
        .map(|path| LivenessSample {
            path,
            attack: attack.map(str::to_string),
        })
        .collect())
}

/// Reads a labelled liveness list: CSV with a header naming `file` (or `path`) and `label`
/// columns; label `bona_fide` (also `live`, `bonafide`) or an attack type (`print`, `replay`,
/// …, lower-cased). Paths are relative to the list's folder. Missing images are kept (they
/// become counted failures to acquire); a malformed line is an error naming it.
pub fn read_liveness_list(list: &Path) -> Result<Vec<LivenessSample>> {
    let csv = CsvList::read(list, "liveness list")?;
    let root = list.parent().map(Path::to_path_buf).unwrap_or_default();
    let [file_col, label_col] = csv.columns([&["file", "path"], &["label"]])?;
    let mut samples = Vec::new();
    for row in csv.rows() {
        let file = csv.cell(row, file_col)?;
        let label = csv.cell(row, label_col)?.to_ascii_lowercase();
        samples.push(LivenessSample {
            path: root.join(file),
            attack: (!crate::eval::scores::is_bona_fide(&label)).then_some(label),
        });
    }
    if samples.is_empty() {
        return Err(csv.error(1, "the list holds no images"));
    }
    Ok(samples)
}

/// One scored image.
#[derive(Clone, Debug, Serialize)]
pub struct ScoredSample {
    /// The image.
    pub path: PathBuf,
    /// Attack type, `None` for bona fide.
    pub attack: Option<String>,
    /// Ensemble live score.
    pub score: f64,
    /// Each model's live probability, in `liveness.models` order (the inputs of a learned
    /// fusion).
    pub per_model: Vec<ModelScore>,
}

/// Per-attack-type figures at the configured threshold.
#[derive(Clone, Debug, Serialize)]
pub struct AttackFigures {
    /// Attack type.
    pub attack: String,
    /// Attack presentations scored.
    pub count: usize,
    /// Share of this type's attacks judged live (APCER).
    pub apcer: f64,
    /// 95 % Wilson interval of the APCER.
    pub apcer_interval: Option<Interval>,
    /// BPCER at APCER = 1 % and 5 % for this type.
    pub bpcer_at_apcer: Vec<OperatingPoint>,
    /// The DET curve of this type against the bona fide presentations (APCER as the
    /// false-match side, BPCER as the false-non-match side), thinned for plots.
    pub det: Vec<RocPoint>,
}

/// The figures of a liveness evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct LivenessSummary {
    /// The decision threshold (live when `score >= threshold`).
    pub threshold: f64,
    /// Bona fide presentations scored.
    pub bona_fide: usize,
    /// Share of bona fide presentations judged attacks (BPCER).
    pub bpcer: f64,
    /// 95 % Wilson interval of the BPCER.
    pub bpcer_interval: Option<Interval>,
    /// Per attack type.
    pub per_attack: Vec<AttackFigures>,
    /// The highest APCER over attack types (ISO/IEC 30107-3 reports the worst type).
    pub max_apcer: f64,
    /// Non-normative: (max APCER + BPCER) / 2.
    pub acer: f64,
    /// Images that could not be scored.
    pub failures: Vec<AcquisitionFailure>,
    /// Every score.
    pub scores: Vec<ScoredSample>,
}

/// Scores every sample on `threads` workers (`on_sample` after each). With `whole_image`, the
/// whole image is the face box (for datasets of face crops); otherwise the largest detected
/// face is judged.
pub fn score_samples(
    engine: &Engine,
    samples: &[LivenessSample],
    whole_image: bool,
    threads: usize,
    on_sample: &(dyn Fn() + Sync),
) -> (Vec<ScoredSample>, Vec<AcquisitionFailure>) {
    let outcomes = crate::parallel::parallel_map(samples, threads, on_sample, |sample| {
        FaceImage::open(&sample.path, &engine.config().limits).and_then(|image| {
            let frames = std::slice::from_ref(&image);
            let evidence = if whole_image {
                engine.liveness().assess_boxes(
                    frames,
                    &[FaceBox::whole(&image)],
                    engine.config().decisions.liveness_threshold,
                )?
            } else {
                engine.assess_liveness_images(frames)?.liveness
            };
            Ok((f64::from(evidence.score), evidence.per_model))
        })
    });
    let mut scored = Vec::new();
    let mut failures = Vec::new();
    for (sample, outcome) in samples.iter().zip(outcomes) {
        match outcome {
            Ok((score, per_model)) => scored.push(ScoredSample {
                path: sample.path.clone(),
                attack: sample.attack.clone(),
                score,
                per_model,
            }),
            Err(e) => failures.push(AcquisitionFailure {
                image: sample.path.clone(),
                kind: e.kind().to_string(),
                message: e.to_string(),
            }),
        }
    }
    (scored, failures)
}

/// APCER per attack type, BPCER, BPCER at APCER = 1 % and 5 %, at `threshold`.
pub fn summarize(
    scores: Vec<ScoredSample>,
    failures: Vec<AcquisitionFailure>,
    threshold: f64,
) -> Result<LivenessSummary> {
    let bona: Vec<f64> = scores
        .iter()
        .filter(|s| s.attack.is_none())
        .map(|s| s.score)
        .collect();
    let mut by_type: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in &scores {
        if let Some(a) = &s.attack {
            by_type.entry(a.as_str()).or_default().push(s.score);
        }
    }
    if bona.is_empty() || by_type.is_empty() {
        return Err(Error::new(
            ErrorKind::Dataset,
            "a liveness evaluation needs scored bona fide and attack presentations",
        ));
    }
    let mut per_attack = Vec::new();
    for (attack, attack_scores) in &by_type {
        let set = ScoreSet::new(bona.clone(), attack_scores.clone())?;
        let accepted = attack_scores.iter().filter(|&&s| s >= threshold).count();
        per_attack.push(AttackFigures {
            attack: attack.to_string(),
            count: attack_scores.len(),
            apcer: set.fmr(threshold),
            apcer_interval: wilson(accepted, attack_scores.len()),
            bpcer_at_apcer: [0.01, 0.05]
                .iter()
                .map(|&t| crate::stats::fnmr_at_fmr(&set, t))
                .collect(),
            det: metrics::det(&set, metrics::DET_POINTS),
        });
    }
    let rejected = bona.iter().filter(|&&s| s < threshold).count();
    let bpcer = rejected as f64 / bona.len() as f64;
    let max_apcer = per_attack.iter().map(|a| a.apcer).fold(0.0, f64::max);
    drop(by_type);
    Ok(LivenessSummary {
        threshold,
        bona_fide: bona.len(),
        bpcer,
        bpcer_interval: wilson(rejected, bona.len()),
        acer: (max_apcer + bpcer) / 2.0,
        max_apcer,
        per_attack,
        failures,
        scores,
    })
}

/// One session of a per-frame dataset: the frames whose file names share a session key and a
/// label, their scores fused by the mean as the engine fuses a presentation's frames.
#[derive(Clone, Debug, Serialize)]
pub struct SessionScore {
    /// The session key (the pattern's first capture group, or its whole match).
    pub session: String,
    /// Attack type, `None` for bona fide.
    pub attack: Option<String>,
    /// Frames scored in this session.
    pub frames: usize,
    /// The mean of the frames' ensemble scores.
    pub score: f64,
}

/// Per-session figures for one attack type at the threshold.
#[derive(Clone, Debug, Serialize)]
pub struct SessionAttackFigures {
    /// Attack type.
    pub attack: String,
    /// Attack sessions.
    pub count: usize,
    /// Share of this type's sessions whose fused score is judged live (APCER per session).
    pub apcer: f64,
    /// 95 % Wilson interval of the APCER.
    pub apcer_interval: Option<Interval>,
}

/// The figures of a liveness evaluation per session (frames fused by the mean), beside the
/// per-frame ones: what a terminal sending several frames of one presentation would see.
#[derive(Clone, Debug, Serialize)]
pub struct SessionSummary {
    /// The pattern the session keys were taken with (on file names).
    pub pattern: String,
    /// The decision threshold (live when the fused score `>= threshold`).
    pub threshold: f64,
    /// Bona fide sessions.
    pub bona_fide: usize,
    /// Share of bona fide sessions judged attacks (BPCER per session).
    pub bpcer: f64,
    /// 95 % Wilson interval of the BPCER.
    pub bpcer_interval: Option<Interval>,
    /// Per attack type.
    pub per_attack: Vec<SessionAttackFigures>,
    /// The highest per-session APCER over attack types.
    pub max_apcer: f64,
    /// Every session's fused score.
    pub sessions: Vec<SessionScore>,
}

/// The session key of `path` under `pattern`, matched against the file name: the first
/// capture group when the pattern has one, else the whole match; `None` when it does not
/// match.
pub fn session_key(path: &Path, pattern: &regex::Regex) -> Option<String> {
    let name = path.file_name()?.to_string_lossy();
    let caps = pattern.captures(&name)?;
    caps.get(1)
        .or_else(|| caps.get(0))
        .map(|m| m.as_str().to_string())
}

/// Groups scored frames into sessions (same label, same [`session_key`]), fuses each
/// session's frames by the mean, and measures APCER per attack type and BPCER per session at
/// `threshold`. A frame whose name the pattern does not match is a [`ErrorKind::Dataset`]
/// error naming it (a session mode that silently dropped frames would misreport).
pub fn summarize_sessions(
    scores: &[ScoredSample],
    pattern: &regex::Regex,
    threshold: f64,
) -> Result<SessionSummary> {
    let mut groups: BTreeMap<(Option<String>, String), Vec<f64>> = BTreeMap::new();
    for s in scores {
        let Some(key) = session_key(&s.path, pattern) else {
            return Err(Error::new(
                ErrorKind::Dataset,
                format!(
                    "{}: the session pattern {:?} does not match this file name; give a --session-regex that matches every frame",
                    s.path.display(),
                    pattern.as_str()
                ),
            ));
        };
        groups
            .entry((s.attack.clone(), key))
            .or_default()
            .push(s.score);
    }
    let sessions: Vec<SessionScore> = groups
        .into_iter()
        .map(|((attack, session), frames)| SessionScore {
            session,
            attack,
            frames: frames.len(),
            score: frames.iter().sum::<f64>() / frames.len() as f64,
        })
        .collect();
    let bona: Vec<f64> = sessions
        .iter()
        .filter(|s| s.attack.is_none())
        .map(|s| s.score)
        .collect();
    let mut by_type: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in &sessions {
        if let Some(a) = &s.attack {
            by_type.entry(a.as_str()).or_default().push(s.score);
        }
    }
    if bona.is_empty() || by_type.is_empty() {
        return Err(Error::new(
            ErrorKind::Dataset,
            "a per-session liveness evaluation needs bona fide and attack sessions",
        ));
    }
    let per_attack: Vec<SessionAttackFigures> = by_type
        .iter()
        .map(|(attack, scores)| {
            let accepted = scores.iter().filter(|&&s| s >= threshold).count();
            SessionAttackFigures {
                attack: attack.to_string(),
                count: scores.len(),
                apcer: accepted as f64 / scores.len() as f64,
                apcer_interval: wilson(accepted, scores.len()),
            }
        })
        .collect();
    let rejected = bona.iter().filter(|&&s| s < threshold).count();
    let max_apcer = per_attack.iter().map(|a| a.apcer).fold(0.0, f64::max);
    drop(by_type);
    Ok(SessionSummary {
        pattern: pattern.as_str().to_string(),
        threshold,
        bona_fide: bona.len(),
        bpcer: rejected as f64 / bona.len() as f64,
        bpcer_interval: wilson(rejected, bona.len()),
        per_attack,
        max_apcer,
        sessions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(attack: Option<&str>, score: f64) -> ScoredSample {
        ScoredSample {
            path: PathBuf::from("x.jpg"),
            attack: attack.map(str::to_string),
            score,
            per_model: vec![],
        }
    }

    #[test]
    fn apcer_per_type_and_bpcer() {
        let scores = vec![
            scored(None, 0.9),
            scored(None, 0.8),
            scored(None, 0.3), // a real face judged an attack
            scored(None, 0.7),
            scored(Some("print"), 0.1),
            scored(Some("print"), 0.6), // an accepted print
            scored(Some("replay"), 0.2),
            scored(Some("replay"), 0.05),
        ];
        let summary = summarize(scores, vec![], 0.5).unwrap();
        assert_eq!(summary.bona_fide, 4);
        assert_eq!(summary.bpcer, 0.25);
        assert_eq!(summary.per_attack.len(), 2);
        assert_eq!(summary.per_attack[0].attack, "print");
        assert_eq!(summary.per_attack[0].apcer, 0.5);
        assert_eq!(summary.per_attack[1].apcer, 0.0);
        assert_eq!(summary.max_apcer, 0.5);
        assert_eq!(summary.acer, 0.375);
    }

    #[test]
    fn labelled_lists() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.csv");
        std::fs::write(
            &list,
            "label,file\nbona_fide,a.jpg\nPrint,b.jpg\nlive,c.png\n\n",
        )
        .unwrap();
        let samples = read_liveness_list(&list).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].attack, None);
        assert_eq!(samples[1].attack.as_deref(), Some("print"));
        assert_eq!(samples[1].path, dir.path().join("b.jpg"));
        for (i, text) in [
            "file\na.jpg\n",
            "file,label\n",
            "file,label\na.jpg\n",
            "file,label\n,print\n",
        ]
        .iter()
        .enumerate()
        {
            std::fs::write(&list, text).unwrap();
            let err = read_liveness_list(&list).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Dataset, "case {i}: {err}");
        }
    }

    #[test]
    fn one_sided_data_is_refused() {
        let err = summarize(vec![scored(None, 0.9)], vec![], 0.5).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dataset);
        let err = summarize(vec![scored(Some("print"), 0.9)], vec![], 0.5).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dataset);
    }

    #[test]
    fn folders_without_images_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        assert_eq!(
            samples_in(dir.path(), None).unwrap_err().kind(),
            ErrorKind::Dataset
        );
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.JPG"), "x").unwrap();
        let found = samples_in(dir.path(), Some("print")).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].attack.as_deref(), Some("print"));
    }

    #[test]
    fn frames_are_grouped_into_sessions_and_fused_by_the_mean() {
        let frame = |path: &str, attack: Option<&str>, score: f64| ScoredSample {
            path: PathBuf::from(path),
            attack: attack.map(str::to_string),
            score,
            per_model: vec![],
        };
        // NUAA raw names: subject_glasses_position_session_frame.
        let scores = vec![
            frame("ClientRaw/0001/0001_00_00_01_0.jpg", None, 0.9),
            frame("ClientRaw/0001/0001_00_00_01_15.jpg", None, 0.3),
            frame("ClientRaw/0001/0001_00_00_02_3.jpg", None, 0.2),
            frame("ImposterRaw/0001/0001_00_00_01_5.jpg", Some("print"), 0.7),
            frame("ImposterRaw/0001/0001_00_00_01_9.jpg", Some("print"), 0.1),
            frame("ImposterRaw/0002/0002_01_00_01_9.jpg", Some("print"), 0.8),
        ];
        let pattern = regex::Regex::new(r"^(.*)_\d+\.jpg$").unwrap();
        let s = summarize_sessions(&scores, &pattern, 0.5).unwrap();
        // The same key under two labels is two sessions.
        assert_eq!(s.sessions.len(), 4);
        assert_eq!(s.bona_fide, 2);
        let first = &s.sessions[0];
        assert_eq!((first.session.as_str(), first.frames), ("0001_00_00_01", 2));
        assert!((first.score - 0.6).abs() < 1e-12);
        // 0.6 live, 0.2 not: BPCER 1/2; prints fuse to 0.4 and 0.8: APCER 1/2.
        assert_eq!(s.bpcer, 0.5);
        assert_eq!(s.per_attack.len(), 1);
        assert_eq!(s.per_attack[0].count, 2);
        assert_eq!(s.per_attack[0].apcer, 0.5);
        // A frame the pattern does not match is an error naming it.
        let strict = regex::Regex::new(r"^(\d{4})_x").unwrap();
        let err = summarize_sessions(&scores, &strict, 0.5).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dataset);
        assert!(err.to_string().contains("0001_00_00_01_0.jpg"), "{err}");
        // Without a capture group the whole match is the key.
        let whole = regex::Regex::new(r"^\d{4}").unwrap();
        let s = summarize_sessions(&scores, &whole, 0.5).unwrap();
        assert_eq!(s.sessions.len(), 3);
    }
}
