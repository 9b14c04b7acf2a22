//! `vouch.eval.passphrase`: spoken passphrases on a spoken-digit corpus.

use std::fmt::Write as _;

use serde::Serialize;

use super::{EvalReport, ReportHeader, pct, pct_interval, with_warnings};
use crate::error::Result;
use crate::eval::metrics::{DET_POINTS, RocPoint, det};
use crate::eval::passphrase::{PassphraseReport, TrialKind};
use crate::eval::plot::{DetCurve, DetLabels};
use crate::stats::ScoreSet;

/// The report file of a passphrase evaluation (schema `vouch.eval.passphrase`): the
/// evaluation's [`PassphraseReport`] (the three outcome rates, every trial), and the DET of the
/// speaker scores of genuine against impostor phrases.
#[derive(Clone, Debug, Serialize)]
pub struct PassphraseEvalReport {
    /// Schema `vouch.eval.passphrase`.
    pub header: ReportHeader,
    /// Genuine phrases accepted (fraction; its interval in `report.genuine`).
    pub genuine_accepted: f64,
    /// Impostor phrases accepted (fraction).
    pub impostor_accepted: f64,
    /// Replays of other digits accepted (fraction).
    pub replay_accepted: f64,
    /// The phrases behind the DET curve.
    pub summary: PhraseCounts,
    /// The DET curve of the speaker scores, at most [`DET_POINTS`] points.
    pub det: Vec<RocPoint>,
    /// The evaluation's results.
    pub report: PassphraseReport,
    /// What a reader of the figures must see.
    pub warnings: Vec<String>,
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
                .filter(|t| t.kind == kind && t.speaker_score.is_finite())
                .map(|t| t.speaker_score)
                .collect()
        };
        let set = ScoreSet::new(speaker(TrialKind::Genuine), speaker(TrialKind::Impostor))?;
        let mut warnings = Vec::new();
        if !report.skipped_speakers.is_empty() {
            warnings.push(format!(
                "{} speaker(s) skipped (see `report.skipped_speakers`): left out of the figures",
                report.skipped_speakers.len()
            ));
        }
        if report.digit_head == "built-in" {
            warnings.push(
                "the built-in digit head was trained on every FSDD speaker: digit figures on FSDD are in sample (pass --heads with heads held out per speaker)".into(),
            );
        }
        Ok(PassphraseEvalReport {
            header: ReportHeader::new("vouch.eval.passphrase"),
            genuine_accepted: report.genuine_accepted,
            impostor_accepted: report.impostor_accepted,
            replay_accepted: report.replay_accepted,
            summary: PhraseCounts {
                genuine: set.genuine().len(),
                impostor: set.impostor().len(),
            },
            det: det(&set, DET_POINTS),
            report,
            warnings,
            set,
        })
    }
}

impl EvalReport for PassphraseEvalReport {
    fn markdown(&self) -> String {
        let report = &self.report;
        let p = &report.protocol;
        let mut md = format!(
            "# Spoken passphrases\n\nSpeaker model `{}`, digit head {}. Per speaker, {} enrollment sequence(s) \"0 1 2 … 9\" from the lowest-numbered takes; phrases of {} digits from the other takes (calibration and evaluation alternate); speaker threshold {:.4} set at FMR {} on the calibration phrases; at most {} recognised digit(s) may differ. Speakers: {} evaluated, {} skipped.\n\n| trials | n | accepted | 95 % interval | words recognised |\n|---|---|---|---|---|\n",
            report.model_id,
            report.digit_head,
            p.enroll_takes,
            p.length,
            report.speaker_threshold,
            p.target_fmr,
            p.max_digit_errors,
            report.speakers.len(),
            report.skipped_speakers.len()
        );
        for (name, s) in [
            ("genuine", &report.genuine),
            ("impostor", &report.impostor),
            ("replay of other digits", &report.replay),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} |",
                s.accepted.count,
                pct(s.accepted.rate),
                pct_interval(s.accepted.interval),
                pct(s.words_correct.rate)
            );
        }
        let _ = writeln!(
            md,
            "\nSpeaker scores alone, genuine against impostor phrases: EER {}.",
            pct(report.speaker_eer)
        );
        for s in &report.skipped_speakers {
            let _ = writeln!(md, "\nSkipped {}: {}.", s.speaker, s.reason);
        }
        with_warnings(md, &self.warnings)
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
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
