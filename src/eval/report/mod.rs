//! Evaluation reports: a JSON file with a stable, versioned schema, a Markdown summary and DET
//! plots, written together into one folder.
//!
//! Every JSON report starts with the same header ([`ReportHeader`]): `schema` names the kind
//! of report (`vouch.eval.face`, `vouch.eval.liveness`, `vouch.eval.voice`, …) and
//! `schema_version` changes only when a field is removed or changes meaning (fields may be
//! added within a version).
//!
//! Each kind of report is one type here — [`FaceReport`], [`LivenessReport`], [`VoiceReport`],
//! [`PassphraseEvalReport`], [`ScoresReport`] — whose `Serialize` impl *is* the schema, and
//! which implements [`EvalReport`]: its Markdown, its DET curves and the warnings a reader of
//! its figures must see all come from the same struct. Callers (the CLI) gather the inputs,
//! build a report, print what they like and hand it to [`write_report`]. This module only
//! formats and writes; it never scores or decides anything.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::metrics::VerificationSummary;
use crate::eval::plot::{DetCurve, DetLabels, det_plot};
use crate::stats::ScoreSet;
use crate::stats::interval::Interval;

mod challenges;
mod digits;
mod face;
mod liveness;
mod passphrase;
mod scores;
mod voice;

pub use challenges::{ChallengeSessionsReport, rate_text};
pub use digits::DigitsReport;
pub use face::{
    Acquisition, FACE_SCHEMA_VERSION, FaceDataset, FaceModels, FaceReport, ScoreResult,
    write_face_scores,
};
pub use liveness::{LivenessReport, bpcer_at_apcer_text};
pub use passphrase::{PassphraseEvalReport, PhraseCounts};
pub use scores::ScoresReport;
pub use voice::VoiceReport;

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

/// A `vouch.eval.*` report: its JSON is its `Serialize` impl; the rest of the report folder
/// comes from these methods.
pub trait EvalReport: Serialize {
    /// The Markdown summary (`report.md`), ending with a "Warnings" section when there are
    /// [`warnings`](EvalReport::warnings).
    fn markdown(&self) -> String;

    /// What a reader of the figures must see (e.g. an FNMR the data cannot measure, inputs that
    /// could not be acquired). Empty when there is nothing to say.
    fn warnings(&self) -> &[String];

    /// The curves of the DET plot.
    fn det_curves(&self) -> Vec<DetCurve>;

    /// The DET plot's title and axis names.
    fn det_labels(&self) -> DetLabels;

    /// The genuine and impostor scores to write beside the report as `scores.csv` (the input
    /// of `vouch eval scores` and `vouch calibrate scores`). By default, none.
    fn score_set(&self) -> Option<&ScoreSet> {
        None
    }

    /// The JSON text of the report: pretty-printed, one trailing newline, object keys in sorted
    /// order at every level (the order the reports have always been written in).
    fn to_json(&self) -> Result<String> {
        let encode = |e: serde_json::Error| {
            Error::new(ErrorKind::Report, format!("encoding the report: {e}"))
        };
        // Through `Value`: its maps are sorted, so the file does not depend on field order.
        let value = serde_json::to_value(self).map_err(encode)?;
        Ok(serde_json::to_string_pretty(&value).map_err(encode)? + "\n")
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

/// Writes `report.json`, `report.md`, when there are curves `det.png` and `det.svg`, and when
/// the report has scores `scores.csv` into `dir` (created if needed). A plot that cannot be
/// drawn is a warning, not a failure: the figures are in the JSON and Markdown either way.
pub fn write_report(dir: &Path, report: &impl EvalReport) -> Result<Written> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating the report folder", dir, e))?;
    let mut written = Written::default();
    for (name, body) in [
        ("report.json", report.to_json()?),
        ("report.md", report.markdown()),
    ] {
        write_file(dir, name, &body, &mut written)?;
    }
    let curves = report.det_curves();
    if curves.is_empty() {
        written
            .warnings
            .push("no DET plot: nothing to draw".to_string());
    } else {
        let (png, svg) = (dir.join("det.png"), dir.join("det.svg"));
        match det_plot(&curves, &report.det_labels(), Some(&png), Some(&svg)) {
            Ok(()) => written.files.extend([png, svg]),
            Err(e) => written
                .warnings
                .push(format!("no DET plot: {}", e.message())),
        }
    }
    if let Some(set) = report.score_set() {
        write_file(dir, "scores.csv", &scores_csv(set), &mut written)?;
    }
    Ok(written)
}

fn write_file(dir: &Path, name: &str, body: &str, written: &mut Written) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, body).map_err(|e| Error::io("writing the report", &path, e))?;
    written.files.push(path);
    Ok(())
}

/// A score file as `vouch eval scores` reads it: a header, then `label,score` lines, genuine
/// first; scores printed exactly (`{:?}`), so they read back bit for bit.
fn scores_csv(set: &ScoreSet) -> String {
    let mut text = String::from("label,score\n");
    for s in set.genuine() {
        let _ = writeln!(text, "genuine,{s:?}");
    }
    for s in set.impostor() {
        let _ = writeln!(text, "impostor,{s:?}");
    }
    text
}

/// `markdown` with a "Warnings" section appended when there are any.
fn with_warnings(mut markdown: String, warnings: &[String]) -> String {
    if !warnings.is_empty() {
        markdown.push_str("\n## Warnings\n\n");
        for w in warnings {
            let _ = writeln!(markdown, "- {w}");
        }
    }
    markdown
}

/// The warnings of a verification summary: every FNMR target the impostor count cannot
/// measure, and the `failures` inputs that could not be acquired.
fn verification_warnings(summary: &VerificationSummary, failures: usize) -> Vec<String> {
    let mut warnings = Vec::new();
    for op in summary.operating_points.iter().filter(|op| !op.measurable) {
        warnings.push(format!(
            "FNMR at FMR {} is not measurable: {} impostor comparisons (needs at least {:.0})",
            op.target_fmr,
            summary.impostor,
            (1.0 / op.target_fmr).ceil()
        ));
    }
    if failures > 0 {
        warnings.push(format!(
            "{failures} image(s) or recording(s) could not be acquired; their comparisons are left out of the error rates"
        ));
    }
    warnings
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
    use crate::eval::voice::SpeakerScores;

    fn scores() -> ScoreSet {
        let g: Vec<f64> = (0..50).map(|i| 0.5 + f64::from(i) / 100.0).collect();
        let i: Vec<f64> = (0..200).map(|i| f64::from(i) / 400.0).collect();
        ScoreSet::new(g, i).unwrap()
    }

    /// The files `write_report` made, by name; the plot only where a font was found.
    fn names(written: &Written) -> Vec<String> {
        written
            .files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("det."))
            .collect()
    }

    #[test]
    fn markdown_marks_unmeasurable_points_and_report_files_are_written() {
        let summary = VerificationSummary::of(&scores());
        let md = verification_markdown(&summary);
        assert!(md.contains("| FNMR @ FMR 0.01 | 0.00 %"), "{md}");
        assert!(md.contains("not measurable (200 impostors"), "{md}");

        let report = ScoresReport::new(PathBuf::from("runs/model-a.csv"), &scores());
        // 200 impostors cannot measure FMR 1e-3, 1e-4, 1e-5.
        assert_eq!(report.warnings().len(), 3, "{:?}", report.warnings());
        let md = report.markdown();
        assert!(md.starts_with("# Verification scores\n\nScores: `runs/model-a.csv`."));
        assert!(
            md.contains("\n## Warnings\n\n- FNMR at FMR 0.001 is not measurable"),
            "{md}"
        );
        assert_eq!(report.det_curves()[0].label, "model-a");

        let dir = tempfile::tempdir().unwrap();
        let written = write_report(dir.path(), &report).unwrap();
        assert_eq!(names(&written), ["report.json", "report.md"]);
        assert_eq!(written.files.len() + written.warnings.len(), 4);
        let text = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
        assert_eq!(text, report.to_json().unwrap());
        assert!(text.ends_with("}\n"));
        // Keys in sorted order, whatever the field order of the struct.
        assert!(text.find("\"det\"").unwrap() < text.find("\"header\"").unwrap());
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["header"]["schema"], "vouch.eval.scores");
        assert_eq!(json["header"]["schema_version"], SCHEMA_VERSION);
        assert_eq!(json["source"], "runs/model-a.csv");
        assert_eq!(json["summary"]["impostor"], 200);
        assert_eq!(json["warnings"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn scores_csv_beside_the_report_reads_back_bit_for_bit() {
        let set = scores();
        let speaker = SpeakerScores {
            model_id: "encoder@test".into(),
            recordings: 12,
            genuine: set.genuine().to_vec(),
            impostor: set.impostor().iter().map(|s| s / 3.0).collect(),
        };
        let report = VoiceReport::new("every pair".into(), speaker, Vec::new(), 0).unwrap();
        assert!(report.warnings().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let written = write_report(dir.path(), &report).unwrap();
        assert_eq!(names(&written), ["report.json", "report.md", "scores.csv"]);
        let rows = crate::eval::scores::read_scores(&dir.path().join("scores.csv")).unwrap();
        let back = crate::eval::scores::verification_set(&rows).unwrap();
        assert_eq!(back.genuine(), report.scores.genuine);
        assert_eq!(back.impostor(), report.scores.impostor);
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(json["model"], "encoder@test");
        assert_eq!(json["scores"]["recordings"], 12);
        assert_eq!(json["trials_skipped"], 0);
    }
}
