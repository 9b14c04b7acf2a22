//! `vouch.eval.passphrase`: spoken passphrases on the FSDD protocol.

use std::fmt::Write as _;

use serde::Serialize;

use super::{EvalReport, ReportHeader, pct, pct_interval};
use crate::error::Result;
use crate::eval::metrics::{DET_POINTS, RocPoint, det};
use crate::eval::passphrase::{PassphraseReport, TrialKind};
use crate::eval::plot::{DetCurve, DetLabels};
use crate::stats::{ScoreSet, wilson};

/// The report file of a passphrase evaluation (schema `vouch.eval.passphrase`): the
/// evaluation's [`PassphraseReport`] (the three outcome rates, every trial), and the DET of the
/// speaker scores of genuine against impostor phrases.
#[derive(Clone, Debug, Serialize)]
pub struct PassphraseEvalReport {
    /// Schema `vouch.eval.passphrase`.
    pub header: ReportHeader,
    /// The phrases behind the DET curve.
    pub summary: PhraseCounts,
    /// The DET curve of the speaker scores, at most [`DET_POINTS`] points.
    pub det: Vec<RocPoint>,
    /// The evaluation's results.
    pub report: PassphraseReport,
    #[serde(skip)]
    set: ScoreSet,
}

/// Genuine and impostor phrases of a [`PassphraseEvalReport`]'s DET curve.
#[derive(Clone, Debug, Serialize)]
pub struct PhraseCounts {
    /// Genuine phrases.
    pub genuine: usize,
    /// Impostor phrases.
    pub impostor: usize,
}

impl PassphraseEvalReport {
    /// The report of `report`. Fails (`InvalidInput`) without genuine or impostor trials.
    pub fn new(report: PassphraseReport) -> Result<PassphraseEvalReport> {
        let speaker = |kind: TrialKind| -> Vec<f64> {
            report
                .trials
                .iter()
                .filter(|t| t.kind == kind)
                .map(|t| t.speaker_score)
                .collect()
        };
        let set = ScoreSet::new(speaker(TrialKind::Genuine), speaker(TrialKind::Impostor))?;
        Ok(PassphraseEvalReport {
            header: ReportHeader::new("vouch.eval.passphrase"),
            summary: PhraseCounts {
                genuine: set.genuine().len(),
                impostor: set.impostor().len(),
            },
            det: det(&set, DET_POINTS),
            report,
            set,
        })
    }
}

impl EvalReport for PassphraseEvalReport {
    fn markdown(&self) -> String {
        let report = &self.report;
        let p = &report.protocol;
        let mut md = format!(
            "# Spoken passphrases (FSDD)\n\nModel: `{}`. Digits and voiceprint enrolled on takes {}–{}; phrases of {} digits from takes {}–{}; speaker threshold {:.4} set at the equal-error point of phrases from takes {}–{}.\n\n| trials | n | rate | 95 % interval |\n|---|---|---|---|\n",
            report.model_id,
            p.enroll_takes.start,
            p.enroll_takes.end - 1,
            p.length,
            p.probe_takes.start,
            p.probe_takes.end - 1,
            report.speaker_threshold,
            p.calibration_takes.start,
            p.calibration_takes.end - 1
        );
        for (name, s) in [
            ("genuine accepted", &report.genuine),
            ("impostor accepted", &report.impostor),
            ("replay accepted", &report.replay),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} |",
                s.trials,
                pct(s.accepted as f64 / s.trials.max(1) as f64),
                pct_interval(wilson(s.accepted, s.trials))
            );
        }
        let _ = writeln!(
            md,
            "\nSpeaker scores alone, genuine against impostor phrases: EER {}.",
            pct(report.speaker_eer)
        );
        md
    }

    /// None: the passphrase schema has no `warnings` field.
    fn warnings(&self) -> &[String] {
        &[]
    }

    fn det_curves(&self) -> Vec<DetCurve> {
        vec![DetCurve {
            label: format!("{} (speaker scores of phrases)", self.report.model_id),
            points: self.det.clone(),
            impostors: self.set.impostor().len(),
        }]
    }

    fn det_labels(&self) -> DetLabels {
        DetLabels::verification("Spoken passphrases: speaker scores (DET)")
    }

    fn score_set(&self) -> Option<&ScoreSet> {
        Some(&self.set)
    }
}
