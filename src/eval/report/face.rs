//! `vouch.eval.face`: face verification on labelled pairs.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::{
    EvalReport, ReportHeader, verification_markdown, verification_warnings, with_warnings,
};
use crate::error::Result;
use crate::eval::face::{AcquisitionFailure, PairScores, ScoredPair};
use crate::eval::identities::IdentityCounts;
use crate::eval::lfw::FoldAccuracy;
use crate::eval::metrics::{DET_POINTS, RocPoint, VerificationSummary, det};
use crate::eval::plot::{DetCurve, DetLabels};
use crate::stats::ScoreSet;

/// The report of a face verification evaluation (schema `vouch.eval.face`).
#[derive(Clone, Debug, Serialize)]
pub struct FaceReport {
    /// Schema `vouch.eval.face`.
    pub header: ReportHeader,
    /// The models that detected and embedded the faces.
    pub models: FaceModels,
    /// Where the pairs came from.
    pub dataset: FaceDataset,
    /// Images that could not be turned into an embedding, kept apart from match errors.
    pub acquisition: Acquisition,
    /// EER, FNMR at the standard FMR targets, minDCF, AUC.
    pub summary: VerificationSummary,
    /// LFW's 10-fold accuracy, on LFW's protocol only (`null` otherwise); set by the caller,
    /// which holds the folds.
    pub lfw_accuracy: Option<FoldAccuracy>,
    /// The DET curve, at most [`DET_POINTS`] points.
    pub det: Vec<RocPoint>,
    /// What a reader of the figures must see.
    pub warnings: Vec<String>,
    /// Every scored pair, in input order.
    pub pairs: Vec<ScoredPair>,
    #[serde(skip)]
    scores: ScoreSet,
}

/// The face models of a [`FaceReport`], as templates record them (`name@sha256-prefix`).
#[derive(Clone, Debug, Serialize)]
pub struct FaceModels {
    /// The face detector.
    pub detector: String,
    /// The face embedder.
    pub embedder: String,
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

impl FaceReport {
    /// The report of `scores`, the pairs of `dataset` scored with `models`: summary, DET curve
    /// and warnings. Fails (`InvalidInput`) when either side has no score.
    pub fn new(models: FaceModels, dataset: FaceDataset, scores: PairScores) -> Result<FaceReport> {
        let set = scores.score_set()?;
        let summary = VerificationSummary::of(&set);
        let warnings = verification_warnings(&summary, scores.failures.len());
        Ok(FaceReport {
            header: ReportHeader::new("vouch.eval.face"),
            models,
            dataset,
            acquisition: Acquisition {
                images_failed: scores.failures.len(),
                pairs_skipped: scores.pairs_skipped,
                failures: scores.failures,
            },
            det: det(&set, DET_POINTS),
            summary,
            lfw_accuracy: None,
            warnings,
            pairs: scores.pairs,
            scores: set,
        })
    }
}

impl EvalReport for FaceReport {
    fn markdown(&self) -> String {
        let mut md = format!(
            "# Face verification\n\nModels: detector `{}`, embedder `{}`.\n\nData: {}.\n\n",
            self.models.detector,
            self.models.embedder,
            self.dataset.description()
        );
        let _ = writeln!(
            md,
            "Failure to acquire (ISO/IEC 19795-1, kept apart from match errors): {} image(s), {} pair(s) not scored.\n",
            self.acquisition.images_failed, self.acquisition.pairs_skipped
        );
        md.push_str(&verification_markdown(&self.summary));
        if let Some(a) = &self.lfw_accuracy {
            let _ = writeln!(
                md,
                "\nLFW {}-fold accuracy: **{:.2} % ± {:.2}** (mean ± standard error over {} measured folds; each fold's threshold chosen on the other folds).",
                a.per_fold.len(),
                100.0 * a.mean,
                100.0 * a.std_error,
                a.measured_folds
            );
        }
        with_warnings(md, &self.warnings)
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn det_curves(&self) -> Vec<DetCurve> {
        vec![DetCurve {
            label: format!(
                "{} ({} genuine / {} impostor)",
                self.models.embedder, self.summary.genuine, self.summary.impostor
            ),
            points: self.det.clone(),
            impostors: self.summary.impostor,
        }]
    }

    fn det_labels(&self) -> DetLabels {
        DetLabels::verification("Face verification (DET)")
    }

    fn score_set(&self) -> Option<&ScoreSet> {
        Some(&self.scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(index: usize, same: bool, score: f64) -> ScoredPair {
        ScoredPair {
            index,
            a: PathBuf::from(format!("a{index}.jpg")),
            b: PathBuf::from(format!("b{index}.jpg")),
            same,
            score,
        }
    }

    #[test]
    fn the_schema_keeps_its_fields_and_the_markdown_its_sections() {
        let pairs = (0..30)
            .map(|i| pair(i, i % 3 == 0, f64::from(i as u32) / 30.0))
            .collect();
        let scores = PairScores {
            pairs,
            failures: vec![AcquisitionFailure {
                image: "missing.jpg".into(),
                kind: "io".into(),
                message: "not found".into(),
            }],
            pairs_skipped: 2,
        };
        let models = FaceModels {
            detector: "yunet@1".into(),
            embedder: "mobilefacenet@2".into(),
        };
        let dataset = FaceDataset::PairCsv {
            lists: vec!["x.csv".into(), "y.csv".into()],
            images: "img".into(),
            pairs: 32,
        };
        assert_eq!(
            dataset.description(),
            "pair lists x.csv, y.csv (32 pairs), images under img"
        );
        let report = FaceReport::new(models, dataset, scores).unwrap();
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
                "header",
                "lfw_accuracy",
                "models",
                "pairs",
                "summary",
                "warnings"
            ]
        );
        assert_eq!(json["header"]["schema"], "vouch.eval.face");
        assert_eq!(json["models"]["embedder"], "mobilefacenet@2");
        // The pair count is for the description only.
        assert_eq!(
            json["dataset"],
            serde_json::json!({"kind": "pair_csv", "lists": ["x.csv", "y.csv"], "images": "img"})
        );
        assert_eq!(json["acquisition"]["images_failed"], 1);
        assert_eq!(json["acquisition"]["pairs_skipped"], 2);
        assert_eq!(json["acquisition"]["failures"][0]["image"], "missing.jpg");
        assert!(json["lfw_accuracy"].is_null());
        assert_eq!(json["pairs"].as_array().unwrap().len(), 30);
        assert_eq!(json["summary"]["genuine"], 10);
        // 20 impostors measure no FMR target; one image failed.
        assert_eq!(report.warnings().len(), 5, "{:?}", report.warnings());
        assert!(report.warnings()[4].starts_with("1 image(s) or recording(s)"));

        let md = report.markdown();
        assert!(md.starts_with(
            "# Face verification\n\nModels: detector `yunet@1`, embedder `mobilefacenet@2`.\n\nData: pair lists x.csv, y.csv (32 pairs), images under img.\n\nFailure to acquire (ISO/IEC 19795-1, kept apart from match errors): 1 image(s), 2 pair(s) not scored.\n\n10 genuine and 20 impostor comparisons."
        ), "{md}");
        assert!(!md.contains("LFW"));
        assert!(md.ends_with("\n## Warnings\n\n- FNMR at FMR 0.01 is not measurable: 20 impostor comparisons (needs at least 100)\n- FNMR at FMR 0.001 is not measurable: 20 impostor comparisons (needs at least 1000)\n- FNMR at FMR 0.0001 is not measurable: 20 impostor comparisons (needs at least 10000)\n- FNMR at FMR 0.00001 is not measurable: 20 impostor comparisons (needs at least 100000)\n- 1 image(s) or recording(s) could not be acquired; their comparisons are left out of the error rates\n"), "{md}");
        let curves = report.det_curves();
        assert_eq!(curves.len(), 1);
        assert_eq!(
            curves[0].label,
            "mobilefacenet@2 (10 genuine / 20 impostor)"
        );
        assert_eq!(curves[0].impostors, 20);
        assert_eq!(report.score_set().unwrap().impostor().len(), 20);
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
