//! Evaluation reports: a JSON file with a stable, versioned schema, a Markdown summary and DET
//! plots, written together into one folder.
//!
//! Every JSON report starts with the same header ([`ReportHeader`]): `schema` names the kind
//! of report (`vouch.eval.face`, `vouch.eval.liveness`, `vouch.eval.voice`, …) and
//! `schema_version` changes only when a field is removed or changes meaning (fields may be
//! added within a version).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::metrics::VerificationSummary;
use crate::eval::plot::{DetCurve, DetLabels, det_plot};
use crate::stats::interval::Interval;

/// The version of every `vouch.eval.*` JSON schema.
pub const SCHEMA_VERSION: u32 = 1;

/// What every JSON report begins with.
#[derive(Clone, Debug, Serialize)]
pub struct ReportHeader {
    /// The kind of report, e.g. `vouch.eval.face`.
    pub schema: String,
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The vouch version that wrote it.
    pub vouch_version: String,
    /// When, in seconds since the Unix epoch.
    pub created_unix: u64,
}

impl ReportHeader {
    /// A header for a report of kind `schema`, stamped now.
    pub fn new(schema: &str) -> ReportHeader {
        ReportHeader {
            schema: schema.to_string(),
            schema_version: SCHEMA_VERSION,
            vouch_version: env!("CARGO_PKG_VERSION").to_string(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// The files a report was written to, and what could not be produced.
#[derive(Clone, Debug, Default)]
pub struct Written {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Parts left out and why (e.g. no font for the plots).
    pub warnings: Vec<String>,
}

/// Writes `report.json`, `report.md` and, when there are curves, `det.png` and `det.svg` into
/// `dir` (created if needed). A plot that cannot be drawn is a warning, not a failure: the
/// figures are in the JSON and Markdown either way.
pub fn write_report(
    dir: &Path,
    json: &impl Serialize,
    markdown: &str,
    curves: &[DetCurve],
    labels: &DetLabels,
) -> Result<Written> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating the report folder", dir, e))?;
    let mut written = Written::default();
    let text = serde_json::to_string_pretty(json)
        .map_err(|e| Error::new(ErrorKind::Report, format!("encoding the report: {e}")))?;
    for (name, body) in [
        ("report.json", text + "\n"),
        ("report.md", markdown.to_string()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(|e| Error::io("writing the report", &path, e))?;
        written.files.push(path);
    }
    if curves.is_empty() {
        written
            .warnings
            .push("no DET plot: nothing to draw".to_string());
        return Ok(written);
    }
    let (png, svg) = (dir.join("det.png"), dir.join("det.svg"));
    match det_plot(curves, labels, Some(&png), Some(&svg)) {
        Ok(()) => written.files.extend([png, svg]),
        Err(e) => written
            .warnings
            .push(format!("no DET plot: {}", e.message())),
    }
    Ok(written)
}

/// A rate as a percentage with two decimals.
pub fn pct(rate: f64) -> String {
    format!("{:.2} %", 100.0 * rate)
}

/// An interval as percentages, or a dash.
pub fn pct_interval(interval: Option<Interval>) -> String {
    match interval {
        Some(i) => format!("[{:.2}, {:.2}] %", 100.0 * i.low, 100.0 * i.high),
        None => "–".to_string(),
    }
}

/// The Markdown table of a verification summary: EER, minDCF, AUC and FNMR at each FMR target,
/// with intervals and "not measurable" marks.
pub fn verification_markdown(summary: &VerificationSummary) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "{} genuine and {} impostor comparisons.\n",
        summary.genuine, summary.impostor
    );
    let _ = writeln!(md, "| metric | value | 95 % interval | threshold |");
    let _ = writeln!(md, "|---|---|---|---|");
    let _ = writeln!(
        md,
        "| EER | {} | {} | {:.4} |",
        pct(summary.eer.rate),
        pct_interval(summary.eer_interval),
        summary.eer.threshold
    );
    for op in &summary.operating_points {
        let value = if op.measurable {
            pct(op.fnmr)
        } else {
            format!("not measurable ({} impostors < 1/FMR)", summary.impostor)
        };
        let _ = writeln!(
            md,
            "| FNMR @ FMR {} | {} | {} | {:.4} |",
            op.target_fmr,
            value,
            pct_interval(op.fnmr_interval),
            op.threshold
        );
    }
    let _ = writeln!(
        md,
        "| minDCF (p_target {}) | {:.4} | – | {:.4} |",
        summary.min_dcf.p_target, summary.min_dcf.min_dcf, summary.min_dcf.threshold
    );
    let _ = writeln!(md, "| AUC | {:.4} | – | – |", summary.auc);
    let _ = writeln!(md, "\nIntervals: {}.", summary.interval_method);
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ScoreSet;

    #[test]
    fn markdown_marks_unmeasurable_points_and_report_files_are_written() {
        let g: Vec<f64> = (0..50).map(|i| 0.5 + f64::from(i) / 100.0).collect();
        let i: Vec<f64> = (0..200).map(|i| f64::from(i) / 400.0).collect();
        let summary = VerificationSummary::of(&ScoreSet::new(g, i).unwrap());
        let md = verification_markdown(&summary);
        assert!(md.contains("| FNMR @ FMR 0.01 | 0.00 %"), "{md}");
        assert!(md.contains("not measurable (200 impostors"), "{md}");
        let dir = tempfile::tempdir().unwrap();
        let labels = DetLabels {
            title: "t".into(),
            x: "FMR".into(),
            y: "FNMR".into(),
        };
        let header = ReportHeader::new("vouch.eval.test");
        let written = write_report(dir.path(), &header, &md, &[], &labels).unwrap();
        assert_eq!(written.files.len(), 2);
        assert_eq!(written.warnings, ["no DET plot: nothing to draw"]);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
                .unwrap();
        assert_eq!(json["schema"], "vouch.eval.test");
        assert_eq!(json["schema_version"], SCHEMA_VERSION);
    }
}
