//! `vouch.eval.face`: face verification on labelled pairs, by one face model or several and
//! their fusion.
//!
//! Version 2 of the schema (version 1 held one model and listed every scored pair in the
//! JSON): `models.embedders` lists the models, `results` holds each model's figures and then
//! the fusion's, `fusion` how it was fitted; `summary`, `det` and `lfw_accuracy` repeat the
//! last result's (the fusion when there is one), where readers of version 1 find them. The
//! pairs and their scores are files beside the report ([`write_face_scores`]), written row by
//! row: a report of millions of pairs never holds them as text.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{
    EvalReport, ReportHeader, pct, pct_interval, verification_markdown, verification_warnings,
    with_warnings,
};
use crate::error::{Error, Result};
use crate::eval::face::{AcquisitionFailure, FaceScores, PairTable};
use crate::eval::face_fusion::FaceFusion;
use crate::eval::identities::IdentityCounts;
use crate::eval::lfw::FoldAccuracy;
use crate::eval::metrics::{DET_POINTS, RocPoint, VerificationSummary, det};
use crate::eval::plot::{DetCurve, DetLabels};
use crate::stats::bootstrap::SubjectScores;

/// The version of the `vouch.eval.face` schema.
pub const FACE_SCHEMA_VERSION: u32 = 2;

/// The report of a face verification evaluation (schema `vouch.eval.face`).
#[derive(Clone, Debug, Serialize)]
pub struct FaceReport {
    /// Schema `vouch.eval.face`, version [`FACE_SCHEMA_VERSION`].
    pub header: ReportHeader,
    /// The models that detected and embedded the faces.
    pub models: FaceModels,
    /// Where the pairs came from.
    pub dataset: FaceDataset,
    /// Images that could not be turned into an embedding, kept apart from match errors.
    pub acquisition: Acquisition,
    /// Each model's figures in the order of [`FaceModels::embedders`], then the fusion's when
    /// the models were fused: the order they are printed in. Every result is measured on the
    /// same pairs.
    pub results: Vec<ScoreResult>,
    /// How the fusion was fitted (`null` with one model, or when it could not be fitted: see
    /// the warnings).
    pub fusion: Option<FaceFusion>,
    /// The last result's summary (the fusion's when there is one).
    pub summary: VerificationSummary,
    /// The last result's DET curve.
    pub det: Vec<RocPoint>,
    /// The last result's LFW 10-fold accuracy, on LFW's protocol only (`null` otherwise).
    pub lfw_accuracy: Option<FoldAccuracy>,
    /// What a reader of the figures must see.
    pub warnings: Vec<String>,
}

/// The face models of a [`FaceReport`], as templates record them (`name@sha256-prefix`).
#[derive(Clone, Debug, Serialize)]
pub struct FaceModels {
    /// The face detector (one detection and alignment per image, shared by the embedders).
    pub detector: String,
    /// The face embedders, in the order their scores are reported and fused.
    pub embedders: Vec<String>,
}

/// One score's figures: a model's cosine or the fused score.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreResult {
    /// The model (`name@sha256-prefix`), or `fusion`.
    pub name: String,
    /// EER, FNMR at the standard FMR targets, minDCF, AUC; intervals by the subjects
    /// bootstrap.
    pub summary: VerificationSummary,
    /// The DET curve, at most [`DET_POINTS`] points.
    pub det: Vec<RocPoint>,
    /// LFW's 10-fold accuracy of this score, on LFW's protocol only; set by the caller.
    pub lfw_accuracy: Option<FoldAccuracy>,
}

impl ScoreResult {
    /// The figures of `scores`, named `name`.
    pub fn of(name: String, scores: &SubjectScores) -> ScoreResult {
        ScoreResult {
            name,
            summary: VerificationSummary::of_subjects(scores),
            det: det(scores.set(), DET_POINTS),
            lfw_accuracy: None,
        }
    }
}

/// The dataset of a [`FaceReport`]; in the JSON, `kind` says which.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaceDataset {
    /// LFW's `pairs.txt` protocol.
    Lfw {
        /// The `pairs.txt` file.
        pairs_file: PathBuf,
        /// The folder the images are under.
        images: PathBuf,
        /// Folds of the protocol.
        folds: usize,
        /// Pairs over every fold (for the description; not in the JSON).
        #[serde(skip)]
        pairs: usize,
    },
    /// A folder per identity.
    Identities {
        /// The folder of identity folders.
        root: PathBuf,
        /// What was found there and how many pairs were drawn.
        counts: IdentityCounts,
    },
    /// CSV pair lists.
    PairCsv {
        /// The lists.
        lists: Vec<PathBuf>,
        /// The folder the image paths are relative to.
        images: PathBuf,
        /// Pairs in the lists (for the description; not in the JSON).
        #[serde(skip)]
        pairs: usize,
    },
}

impl FaceDataset {
    /// One line saying where the pairs came from (printed, and in the Markdown).
    pub fn description(&self) -> String {
        match self {
            FaceDataset::Lfw {
                pairs_file,
                images,
                folds,
                pairs,
            } => format!(
                "LFW protocol: {} ({folds} folds, {pairs} pairs), images under {}",
                pairs_file.display(),
                images.display()
            ),
            FaceDataset::Identities { root, counts } => {
                format!("a folder per identity: {} ({counts})", root.display())
            }
            FaceDataset::PairCsv {
                lists,
                images,
                pairs,
            } => format!(
                "pair lists {} ({pairs} pairs), images under {}",
                lists
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                images.display()
            ),
        }
    }
}

/// Failures to acquire (ISO/IEC 19795-1) of a [`FaceReport`].
#[derive(Clone, Debug, Serialize)]
pub struct Acquisition {
    /// Images without an embedding.
    pub images_failed: usize,
    /// Pairs left out because one of their images failed.
    pub pairs_skipped: usize,
    /// Each failed image and why.
    pub failures: Vec<AcquisitionFailure>,
}

impl Acquisition {
    /// The failures of `scores`.
    pub fn of(scores: &FaceScores) -> Acquisition {
        Acquisition {
            images_failed: scores.failures.len(),
            pairs_skipped: scores.pairs_skipped,
            failures: scores.failures.clone(),
        }
    }
}

impl FaceReport {
    /// The report of `results` (each model's, then the fusion's), the pairs of `dataset`
    /// scored with `models`, and the warnings a reader must see (the unmeasurable FMR
    /// targets, the failures to acquire, and `notes`, e.g. why there is no fusion). Fails
    /// (`InvalidInput`) without results.
    pub fn new(
        models: FaceModels,
        dataset: FaceDataset,
        acquisition: Acquisition,
        results: Vec<ScoreResult>,
        fusion: Option<FaceFusion>,
        notes: Vec<String>,
    ) -> Result<FaceReport> {
        let Some(last) = results.last() else {
            return Err(Error::new(
                crate::error::ErrorKind::InvalidInput,
                "a face report needs the figures of at least one model",
            ));
        };
        let mut warnings = verification_warnings(&last.summary, acquisition.images_failed);
        warnings.extend(notes);
        let mut header = ReportHeader::new("vouch.eval.face");
        header.schema_version = FACE_SCHEMA_VERSION;
        Ok(FaceReport {
            header,
            models,
            dataset,
            acquisition,
            summary: last.summary.clone(),
            det: last.det.clone(),
            lfw_accuracy: last.lfw_accuracy.clone(),
            results,
            fusion,
            warnings,
        })
    }

    /// Sets the LFW accuracy of result `k` (and the headline's when `k` is the last).
    pub fn set_lfw_accuracy(&mut self, k: usize, accuracy: FoldAccuracy) {
        if k + 1 == self.results.len() {
            self.lfw_accuracy = Some(accuracy.clone());
        }
        if let Some(r) = self.results.get_mut(k) {
            r.lfw_accuracy = Some(accuracy);
        }
    }
}

/// The side-by-side table of every result: EER and FNMR at each FMR target with intervals.
fn comparison_markdown(results: &[ScoreResult]) -> String {
    let mut md = String::from("| score | EER |");
    let targets: Vec<f64> = results[0]
        .summary
        .operating_points
        .iter()
        .map(|op| op.target_fmr)
        .collect();
    for t in &targets {
        let _ = write!(md, " FNMR @ FMR {t} |");
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---|".repeat(targets.len()));
    md.push('\n');
    for r in results {
        let _ = write!(
            md,
            "| {} | {} {} |",
            r.name,
            pct(r.summary.eer.rate),
            pct_interval(r.summary.eer_interval)
        );
        for op in &r.summary.operating_points {
            if op.measurable {
                let _ = write!(md, " {} {} |", pct(op.fnmr), pct_interval(op.fnmr_interval));
            } else {
                md.push_str(" n.m. |");
            }
        }
        md.push('\n');
    }
    md
}

impl EvalReport for FaceReport {
    fn markdown(&self) -> String {
        let embedders = self
            .models
            .embedders
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut md = format!(
            "# Face verification\n\nModels: detector `{}`, embedder(s) {embedders}.\n\nData: {}.\n\n",
            self.models.detector,
            self.dataset.description()
        );
        let _ = writeln!(
            md,
            "Failure to acquire (ISO/IEC 19795-1, kept apart from match errors): {} image(s), {} pair(s) not scored.\n",
            self.acquisition.images_failed, self.acquisition.pairs_skipped
        );
        if self.results.len() > 1 {
            md.push_str(&comparison_markdown(&self.results));
            md.push('\n');
        }
        for r in &self.results {
            let _ = writeln!(md, "## {}\n", r.name);
            if r.name == "fusion"
                && let Some(f) = &self.fusion
            {
                md.push_str(&fusion_markdown(f));
            }
            md.push_str(&verification_markdown(&r.summary));
            if let Some(a) = &r.lfw_accuracy {
                let _ = writeln!(
                    md,
                    "\nLFW {}-fold accuracy: **{:.2} % ± {:.2}** (mean ± standard error over {} measured folds; each fold's threshold chosen on the other folds).",
                    a.per_fold.len(),
                    100.0 * a.mean,
                    100.0 * a.std_error,
                    a.measured_folds
                );
            }
            md.push('\n');
        }
        with_warnings(md, &self.warnings)
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// One curve per result: each model's and the fusion's.
    fn det_curves(&self) -> Vec<DetCurve> {
        self.results
            .iter()
            .map(|r| DetCurve {
                label: format!("{} (EER {})", r.name, pct(r.summary.eer.rate)),
                points: r.det.clone(),
                impostors: r.summary.impostor,
            })
            .collect()
    }

    fn det_labels(&self) -> DetLabels {
        DetLabels::verification(&format!(
            "Face verification (DET): {} genuine / {} impostor pairs",
            self.summary.genuine, self.summary.impostor
        ))
    }
}

/// How a fusion was fitted: the protocol and each fit's weights.
fn fusion_markdown(fusion: &FaceFusion) -> String {
    let mut md = format!(
        "The fused score of {}: each model's score standardised by the fitting impostors, \
         then a logistic regression; its log-odds less the fitting data's log prior odds (a \
         log-likelihood ratio). Pairs are {}.\n\n",
        fusion
            .models
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(" and "),
        fusion.protocol
    );
    md.push_str("| held out | fitted on (genuine / impostor) | pairs scored | fusion |\n");
    md.push_str("|---|---|---|---|\n");
    for fit in &fusion.fits {
        let sampled = if fit.impostor < fit.impostor_available {
            format!(" (sampled of {})", fit.impostor_available)
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "| fold(s) {:?} | {} / {}{sampled} | {} | {} |",
            fit.held_out,
            fit.genuine,
            fit.impostor,
            fit.pairs_scored,
            fit.fusion.describe()
        );
    }
    md.push('\n');
    md
}

/// Pairs written between two calls of the progress callback.
const ROWS_STEP: usize = 1 << 16;

/// Writes the pairs of an evaluation beside its report, row by row, calling `on_rows(n)` as
/// rows go out (three passes over the pairs):
///
/// - `images.csv`: `image,path,identity,acquired` — each image's number, path, identity
///   number and `yes` or its failure kind;
/// - `pairs.csv`: `a,b,label,` one column per model, and `fusion` when there is one — every
///   pair by image number, `genuine`/`impostor`, its scores (empty where not scored); a
///   model's cosine in the fewest digits that read back to the same `f32`;
/// - `scores.csv`: `label,score` of the last result's score (the fusion's when there is one),
///   genuine first — the input of `vouch eval scores` and `vouch calibrate scores`, printed
///   exactly (`{:?}` of the `f64` measured), so it reads back bit for bit.
pub fn write_face_scores(
    dir: &Path,
    table: &PairTable,
    scores: &FaceScores,
    fusion: Option<&FaceFusion>,
    on_rows: &dyn Fn(usize),
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating the report folder", dir, e))?;
    let failed: std::collections::HashMap<&Path, &str> = scores
        .failures
        .iter()
        .map(|f| (f.image.as_path(), f.kind.as_str()))
        .collect();
    let label = |same: bool| if same { "genuine" } else { "impostor" };
    let images = write_csv(dir, "images.csv", |out| {
        writeln!(out, "image,path,identity,acquired")?;
        for (i, path) in table.images.iter().enumerate() {
            let acquired = failed.get(path.as_path()).copied().unwrap_or("yes");
            writeln!(
                out,
                "{i},{},{},{acquired}",
                csv_cell(&path.to_string_lossy()),
                table.identity[i]
            )?;
        }
        Ok(())
    })?;
    let pairs = write_csv(dir, "pairs.csv", |out| {
        write!(out, "a,b,label")?;
        for m in &scores.models {
            write!(out, ",{}", csv_cell(m))?;
        }
        if fusion.is_some() {
            write!(out, ",fusion")?;
        }
        writeln!(out)?;
        for (p, pair) in table.pairs.iter().enumerate() {
            write!(out, "{},{},{}", pair.a, pair.b, label(pair.same))?;
            for column in &scores.columns {
                // The cosine as computed (f32), in the fewest digits that read back to it.
                match column[p] {
                    s if s.is_nan() => write!(out, ",")?,
                    s => write!(out, ",{s:?}")?,
                }
            }
            if let Some(f) = fusion {
                match f.score(p) {
                    Some(s) => write!(out, ",{s:?}")?,
                    None => write!(out, ",")?,
                }
            }
            writeln!(out)?;
            if (p + 1) % ROWS_STEP == 0 {
                on_rows(ROWS_STEP);
            }
        }
        on_rows(table.pairs.len() % ROWS_STEP);
        Ok(())
    })?;
    let headline = |p: usize| match fusion {
        Some(f) => f.score(p),
        None => scores.score(scores.models.len() - 1, p),
    };
    let score_file = write_csv(dir, "scores.csv", |out| {
        writeln!(out, "label,score")?;
        for same in [true, false] {
            for (p, pair) in table.pairs.iter().enumerate() {
                if pair.same == same
                    && let Some(s) = headline(p)
                {
                    writeln!(out, "{},{s:?}", label(same))?;
                }
                if (p + 1) % ROWS_STEP == 0 {
                    on_rows(ROWS_STEP);
                }
            }
            on_rows(table.pairs.len() % ROWS_STEP);
        }
        Ok(())
    })?;
    Ok(vec![images, pairs, score_file])
}

/// Writes `dir/name` through a buffer.
fn write_csv(
    dir: &Path,
    name: &str,
    body: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<PathBuf> {
    let path = dir.join(name);
    let io = |e| Error::io("writing the report", &path, e);
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).map_err(io)?);
    body(&mut out).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(path)
}

/// A CSV cell: quoted when it holds a comma, quote or line break.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::face::{IndexPair, PairTable};

    /// 6 people of 3 images each, every pair; two models and a fusion-like third score.
    fn scored() -> (PairTable, FaceScores) {
        let identity: Vec<u32> = (0..18).map(|i| i / 3).collect();
        let (mut pairs, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for x in 0..18u32 {
            for y in x + 1..18 {
                let same = identity[x as usize] == identity[y as usize];
                pairs.push(IndexPair { a: x, b: y, same });
                let jitter = ((x * 7 + y * 13) % 10) as f32 / 40.0;
                a.push(if same { 0.6 } else { 0.2 } + jitter);
                b.push(if same { 0.5 } else { 0.3 } + jitter / 2.0);
            }
        }
        a[0] = f32::NAN;
        b[0] = f32::NAN;
        let n = pairs.len();
        let table = PairTable {
            images: (0..18)
                .map(|i| format!("p{}/{i}, x.jpg", i / 3).into())
                .collect(),
            identity,
            identities: 6,
            pairs,
        };
        let scores = FaceScores {
            models: vec!["mobilefacenet@1".into(), "sface@2".into()],
            columns: vec![a, b],
            failures: vec![AcquisitionFailure {
                image: "p0/0, x.jpg".into(),
                kind: "no_face".into(),
                message: "no face".into(),
            }],
            pairs_scored: n - 1,
            pairs_skipped: 1,
        };
        (table, scores)
    }

    fn report() -> (PairTable, FaceScores, FaceReport) {
        let (table, scores) = scored();
        let results: Vec<ScoreResult> = (0..2)
            .map(|m| {
                let s = scores
                    .subject_scores(&table, |p| scores.score(m, p))
                    .unwrap();
                ScoreResult::of(scores.models[m].clone(), &s)
            })
            .collect();
        let models = FaceModels {
            detector: "yunet@1".into(),
            embedders: scores.models.clone(),
        };
        let dataset = FaceDataset::PairCsv {
            lists: vec!["x.csv".into(), "y.csv".into()],
            images: "img".into(),
            pairs: 153,
        };
        let report = FaceReport::new(
            models,
            dataset,
            Acquisition::of(&scores),
            results,
            None,
            vec!["no fusion: asked for".into()],
        )
        .unwrap();
        (table, scores, report)
    }

    #[test]
    fn the_schema_keeps_its_fields_and_the_markdown_its_sections() {
        let (_, _, report) = report();
        assert_eq!(
            report.dataset.description(),
            "pair lists x.csv, y.csv (153 pairs), images under img"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "acquisition",
                "dataset",
                "det",
                "fusion",
                "header",
                "lfw_accuracy",
                "models",
                "results",
                "summary",
                "warnings"
            ]
        );
        assert_eq!(json["header"]["schema"], "vouch.eval.face");
        assert_eq!(json["header"]["schema_version"], 2);
        assert_eq!(json["models"]["embedders"][1], "sface@2");
        assert_eq!(
            json["dataset"],
            serde_json::json!({"kind": "pair_csv", "lists": ["x.csv", "y.csv"], "images": "img"})
        );
        assert_eq!(json["acquisition"]["images_failed"], 1);
        assert_eq!(json["acquisition"]["pairs_skipped"], 1);
        assert!(json["lfw_accuracy"].is_null() && json["fusion"].is_null());
        assert_eq!(json["results"].as_array().unwrap().len(), 2);
        // The headline is the last result.
        assert_eq!(json["summary"], json["results"][1]["summary"]);
        assert_eq!(json["summary"]["genuine"], 17);
        assert!(
            json["summary"]["interval_method"]
                .as_str()
                .unwrap()
                .contains("over subjects")
        );
        assert!(report.warnings().last().unwrap().contains("no fusion"));

        let md = report.markdown();
        assert!(md.starts_with(
            "# Face verification\n\nModels: detector `yunet@1`, embedder(s) `mobilefacenet@1`, `sface@2`.\n\nData: pair lists x.csv, y.csv (153 pairs), images under img.\n\nFailure to acquire (ISO/IEC 19795-1, kept apart from match errors): 1 image(s), 1 pair(s) not scored.\n\n| score | EER | FNMR @ FMR 0.01 |"
        ), "{md}");
        assert!(md.contains("\n## mobilefacenet@1\n") && md.contains("\n## sface@2\n"));
        assert!(md.contains("| sface@2 |"), "{md}");
        let curves = report.det_curves();
        assert_eq!(curves.len(), 2);
        assert!(curves[1].label.starts_with("sface@2 (EER "));
        assert!(report.score_set().is_none());
    }

    #[test]
    fn pair_files_are_streamed_and_read_back() {
        let (table, scores, _) = report();
        let dir = tempfile::tempdir().unwrap();
        let rows = std::sync::atomic::AtomicUsize::new(0);
        let files = write_face_scores(dir.path(), &table, &scores, None, &|n| {
            rows.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(rows.into_inner(), 3 * table.pairs.len());
        let images = std::fs::read_to_string(dir.path().join("images.csv")).unwrap();
        assert!(images.starts_with("image,path,identity,acquired\n0,\"p0/0, x.jpg\",0,no_face\n1,\"p0/1, x.jpg\",0,yes\n"), "{images}");
        let pairs = std::fs::read_to_string(dir.path().join("pairs.csv")).unwrap();
        let mut lines = pairs.lines();
        assert_eq!(lines.next(), Some("a,b,label,mobilefacenet@1,sface@2"));
        assert_eq!(lines.next(), Some("0,1,genuine,,"));
        assert_eq!(lines.count(), table.pairs.len() - 1);
        // scores.csv holds the last model's scores, exactly.
        let rows = crate::eval::scores::read_scores(&dir.path().join("scores.csv")).unwrap();
        let back = crate::eval::scores::verification_set(&rows).unwrap();
        let want = scores
            .subject_scores(&table, |p| scores.score(1, p))
            .unwrap();
        assert_eq!(back.genuine(), want.set().genuine());
        assert_eq!(back.impostor(), want.set().impostor());
    }

    #[test]
    fn an_lfw_dataset_says_where_its_pairs_came_from() {
        let lfw = FaceDataset::Lfw {
            pairs_file: "lfw/pairs.txt".into(),
            images: "lfw/images".into(),
            folds: 10,
            pairs: 6000,
        };
        assert_eq!(
            lfw.description(),
            "LFW protocol: lfw/pairs.txt (10 folds, 6000 pairs), images under lfw/images"
        );
        let json = serde_json::to_value(&lfw).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "lfw", "pairs_file": "lfw/pairs.txt", "images": "lfw/images", "folds": 10})
        );
    }
}
