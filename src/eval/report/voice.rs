//! `vouch.eval.voice`: speaker verification.

use serde::Serialize;

use super::{EvalReport, ReportHeader, verification_markdown, with_warnings};
use crate::error::Result;
use crate::eval::face::AcquisitionFailure;
use crate::eval::metrics::{DET_POINTS, RocPoint, VerificationSummary, det};
use crate::eval::plot::{DetCurve, DetLabels};
use crate::eval::voice::SpeakerScores;
use crate::stats::ScoreSet;

/// The report of a speaker verification evaluation (schema `vouch.eval.voice`).
#[derive(Clone, Debug, Serialize)]
pub struct VoiceReport {
    /// Schema `vouch.eval.voice`.
    pub header: ReportHeader,
    /// The speaker model, as templates record it.
    pub model: String,
    /// How the trials were made, in one line.
    pub protocol: String,
    /// EER, FNMR at the standard FMR targets, minDCF, AUC.
    pub summary: VerificationSummary,
    /// The DET curve, at most [`DET_POINTS`] points.
    pub det: Vec<RocPoint>,
    /// Recordings that could not be analysed.
    pub failures: Vec<AcquisitionFailure>,
    /// Trials left out because one of their recordings failed.
    pub trials_skipped: usize,
    /// What a reader of the figures must see.
    pub warnings: Vec<String>,
    /// Every score.
    pub scores: SpeakerScores,
    #[serde(skip)]
    set: ScoreSet,
}

impl VoiceReport {
    /// The report of `scores`, made by `protocol`; `failures` and `trials_skipped` are what a
    /// trial list lost to recordings that could not be analysed (none for the all-pairs
    /// protocol). Fails (`InvalidInput`) when either side has no score.
    pub fn new(
        protocol: String,
        scores: SpeakerScores,
        failures: Vec<AcquisitionFailure>,
        trials_skipped: usize,
    ) -> Result<VoiceReport> {
        let set = scores.score_set()?;
        let mut warnings = Vec::new();
        if !failures.is_empty() {
            warnings.push(format!(
                "{} recording(s) could not be analysed; {trials_skipped} trial(s) using them are left out",
                failures.len()
            ));
        }
        Ok(VoiceReport {
            header: ReportHeader::new("vouch.eval.voice"),
            model: scores.model_id.clone(),
            protocol,
            summary: VerificationSummary::of(&set),
            det: det(&set, DET_POINTS),
            failures,
            trials_skipped,
            warnings,
            scores,
            set,
        })
    }
}

impl EvalReport for VoiceReport {
    fn markdown(&self) -> String {
        let md = format!(
            "# Speaker verification\n\nModel: `{}`.\n\nProtocol: {}.\n\n{}",
            self.model,
            self.protocol,
            verification_markdown(&self.summary)
        );
        with_warnings(md, &self.warnings)
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn det_curves(&self) -> Vec<DetCurve> {
        vec![DetCurve {
            label: self.model.clone(),
            points: self.det.clone(),
            impostors: self.summary.impostor,
        }]
    }

    fn det_labels(&self) -> DetLabels {
        DetLabels::verification("Speaker verification (DET)")
    }

    fn score_set(&self) -> Option<&ScoreSet> {
        Some(&self.set)
    }
}
