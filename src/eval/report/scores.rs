//! `vouch.eval.scores`: the metrics of a score file made elsewhere.

use std::path::PathBuf;

use serde::Serialize;

use super::{
    EvalReport, ReportHeader, verification_markdown, verification_warnings, with_warnings,
};
use crate::eval::metrics::{DET_POINTS, RocPoint, VerificationSummary, det};
use crate::eval::plot::{DetCurve, DetLabels};
use crate::stats::ScoreSet;

/// The report of a score file (schema `vouch.eval.scores`). It writes no `scores.csv`: its
/// input already is one.
#[derive(Clone, Debug, Serialize)]
pub struct ScoresReport {
    /// Schema `vouch.eval.scores`.
    pub header: ReportHeader,
    /// The score file.
    pub source: PathBuf,
    /// EER, FNMR at the standard FMR targets, minDCF, AUC.
    pub summary: VerificationSummary,
    /// The DET curve, at most [`DET_POINTS`] points.
    pub det: Vec<RocPoint>,
    /// What a reader of the figures must see.
    pub warnings: Vec<String>,
}

impl ScoresReport {
    /// The report of `set`, read from `source`.
    pub fn new(source: PathBuf, set: &ScoreSet) -> ScoresReport {
        let summary = VerificationSummary::of(set);
        ScoresReport {
            header: ReportHeader::new("vouch.eval.scores"),
            source,
            warnings: verification_warnings(&summary, 0),
            det: det(set, DET_POINTS),
            summary,
        }
    }
}

impl EvalReport for ScoresReport {
    fn markdown(&self) -> String {
        let md = format!(
            "# Verification scores\n\nScores: `{}`.\n\n{}",
            self.source.display(),
            verification_markdown(&self.summary)
        );
        with_warnings(md, &self.warnings)
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// One curve, labelled with the score file's name.
    fn det_curves(&self) -> Vec<DetCurve> {
        vec![DetCurve {
            label: self
                .source
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
            points: self.det.clone(),
            impostors: self.summary.impostor,
        }]
    }

    fn det_labels(&self) -> DetLabels {
        DetLabels::verification("Verification (DET)")
    }
}
