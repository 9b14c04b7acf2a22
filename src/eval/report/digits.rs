//! `vouch.eval.digits`: spoken-digit recognition on a corpus.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::{EvalReport, ReportHeader, pct, pct_interval, with_warnings};
use crate::eval::digits::DigitsSummary;
use crate::eval::plot::{DetCurve, DetLabels};

/// The report of a digit evaluation (schema `vouch.eval.digits`).
#[derive(Clone, Debug, Serialize)]
pub struct DigitsReport {
    /// Schema `vouch.eval.digits`.
    pub header: ReportHeader,
    /// The folder of recordings.
    pub source: PathBuf,
    /// Which head recognised them (the built-in one or a file).
    pub head: String,
    /// The recognition figures, the confusion matrix and the recordings left out.
    #[serde(flatten)]
    pub summary: DigitsSummary,
    /// What a reader of the figures must see.
    pub warnings: Vec<String>,
}

impl DigitsReport {
    /// The report of `summary` on `source` recognised by `head`.
    pub fn new(source: PathBuf, head: String, summary: DigitsSummary) -> DigitsReport {
        let mut warnings = Vec::new();
        if !summary.skipped.is_empty() {
            warnings.push(format!(
                "{} recording(s) skipped (see `skipped`): left out of the figures",
                summary.skipped.len()
            ));
        }
        if head == "built-in" {
            warnings.push(
                "the built-in head was trained on every FSDD speaker: figures on FSDD are in sample (its leave-one-speaker-out figures come from scripts/train_digit_head.py)".into(),
            );
        }
        DigitsReport {
            header: ReportHeader::new("vouch.eval.digits"),
            source,
            head,
            summary,
            warnings,
        }
    }
}

impl EvalReport for DigitsReport {
    fn markdown(&self) -> String {
        let s = &self.summary;
        let mut md = format!(
            "# Spoken digits\n\n{}, head {}: {} of {} recognised, {} {}.\n\n| speaker | correct | accuracy | 95 % interval |\n|---|---|---|---|\n",
            self.source.display(),
            self.head,
            s.correct.hits,
            s.correct.count,
            pct(s.accuracy),
            pct_interval(s.correct.interval)
        );
        for sp in &s.per_speaker {
            let _ = writeln!(
                md,
                "| {} | {} of {} | {} | {} |",
                sp.speaker,
                sp.correct.hits,
                sp.correct.count,
                pct(sp.correct.rate),
                pct_interval(sp.correct.interval)
            );
        }
        md.push_str("\nConfusion (rows spoken, columns recognised):\n\n| | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (d, row) in s.confusion.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(usize::to_string).collect();
            let _ = writeln!(md, "| **{d}** | {} |", cells.join(" | "));
        }
        with_warnings(md, &self.warnings)
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Recognition has no DET curve.
    fn det_curves(&self) -> Vec<DetCurve> {
        Vec::new()
    }

    fn det_labels(&self) -> DetLabels {
        DetLabels {
            title: "Spoken digits".into(),
            x: "FMR".into(),
            y: "FNMR".into(),
        }
    }
}
