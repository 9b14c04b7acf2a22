//! `vouch.eval.liveness`: presentation-attack detection (ISO/IEC 30107-3).

use std::fmt::Write as _;

use serde::Serialize;

use super::{EvalReport, ReportHeader, pct, pct_interval, with_warnings};
use crate::eval::liveness::{LivenessSummary, SessionSummary};
use crate::eval::plot::{DetCurve, DetLabels};
use crate::stats::OperatingPoint;

/// The report of a presentation-attack detection evaluation (schema `vouch.eval.liveness`).
#[derive(Clone, Debug, Serialize)]
pub struct LivenessReport {
    /// Schema `vouch.eval.liveness`.
    pub header: ReportHeader,
    /// The liveness models, as templates record them (`name@sha256-prefix`).
    pub models: Vec<String>,
    /// Whether each image was judged whole as the face (tight crops) instead of detecting a
    /// face in it.
    pub whole_image: bool,
    /// APCER per attack type, BPCER, BPCER at fixed APCER, with every score.
    pub summary: LivenessSummary,
    /// The same frames grouped into sessions and fused by the mean (`--session-regex`);
    /// absent when the frames were not grouped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionSummary>,
    /// What a reader of the figures must see.
    pub warnings: Vec<String>,
}

impl LivenessReport {
    /// The report of `summary`, scored with `models` (`whole_image`: see the field).
    pub fn new(models: Vec<String>, whole_image: bool, summary: LivenessSummary) -> LivenessReport {
        let mut warnings = Vec::new();
        if !summary.failures.is_empty() {
            warnings.push(format!(
                "{} image(s) could not be scored; they are left out of APCER and BPCER",
                summary.failures.len()
            ));
        }
        LivenessReport {
            header: ReportHeader::new("vouch.eval.liveness"),
            models,
            whole_image,
            summary,
            sessions: None,
            warnings,
        }
    }

    /// The report with per-session figures beside the per-frame ones.
    pub fn with_sessions(mut self, sessions: SessionSummary) -> LivenessReport {
        self.sessions = Some(sessions);
        self
    }

    /// What to say after the counts when the images were judged whole (with a leading space),
    /// else nothing.
    pub fn crops_note(&self) -> &'static str {
        if self.whole_image {
            " (whole image judged as the face: tight crops, see the liveness docs)"
        } else {
            ""
        }
    }
}

/// A BPCER at a fixed APCER as reports print it: the rate and its threshold, or why it could
/// not be measured.
pub fn bpcer_at_apcer_text(op: &OperatingPoint) -> String {
    if op.measurable {
        format!("{} (t {:.3})", pct(op.fnmr), op.threshold)
    } else {
        "not measurable: too few attacks".to_string()
    }
}

impl EvalReport for LivenessReport {
    fn markdown(&self) -> String {
        let summary = &self.summary;
        let mut md = format!(
            "# Presentation-attack detection (ISO/IEC 30107-3)\n\nModels: {}.\n\nThreshold {:.3}{}; {} bona fide presentations, {} image(s) failed to acquire.\n\n| attack type | n | APCER | 95 % interval | BPCER @ APCER 1 % | BPCER @ APCER 5 % |\n|---|---|---|---|---|---|\n",
            self.models
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", "),
            summary.threshold,
            self.crops_note(),
            summary.bona_fide,
            summary.failures.len()
        );
        for a in &summary.per_attack {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                a.attack,
                a.count,
                pct(a.apcer),
                pct_interval(a.apcer_interval),
                bpcer_at_apcer_text(&a.bpcer_at_apcer[0]),
                bpcer_at_apcer_text(&a.bpcer_at_apcer[1])
            );
        }
        let _ = writeln!(
            md,
            "\n**BPCER {} {}**, max APCER over types {}, ACER (non-normative) {}.\n\nIntervals: Wilson score, 95 %, assuming independent presentations.",
            pct(summary.bpcer),
            pct_interval(summary.bpcer_interval),
            pct(summary.max_apcer),
            pct(summary.acer)
        );
        if let Some(sessions) = &self.sessions {
            let _ = write!(
                md,
                "\n## Per session\n\nFrames grouped by the pattern `{}` on their file names (and their label), each session's scores fused by the mean; threshold {:.3}. {} bona fide sessions: **BPCER {} {}**.\n\n| attack type | sessions | APCER | 95 % interval |\n|---|---|---|---|\n",
                sessions.pattern,
                sessions.threshold,
                sessions.bona_fide,
                pct(sessions.bpcer),
                pct_interval(sessions.bpcer_interval)
            );
            for a in &sessions.per_attack {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    a.attack,
                    a.count,
                    pct(a.apcer),
                    pct_interval(a.apcer_interval)
                );
            }
        }
        with_warnings(md, &self.warnings)
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// One curve per attack type, against the bona fide presentations.
    fn det_curves(&self) -> Vec<DetCurve> {
        self.summary
            .per_attack
            .iter()
            .map(|a| DetCurve {
                label: format!("{} ({} attacks)", a.attack, a.count),
                points: a.det.clone(),
                impostors: a.count,
            })
            .collect()
    }

    fn det_labels(&self) -> DetLabels {
        DetLabels {
            title: "Presentation-attack detection (DET)".into(),
            x: "APCER".into(),
            y: "BPCER".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::face::AcquisitionFailure;
    use crate::eval::liveness::{ScoredSample, summarize};

    #[test]
    fn one_curve_per_attack_type_and_the_failures_are_a_warning() {
        let sample = |i: u32, attack: Option<&str>, score: f64| ScoredSample {
            path: format!("{i}.jpg").into(),
            attack: attack.map(str::to_string),
            score,
            per_model: vec![],
        };
        let mut scores: Vec<ScoredSample> = (0..20)
            .map(|i| sample(i, None, 0.6 + f64::from(i) / 100.0))
            .collect();
        scores.extend((0..5).map(|i| sample(100 + i, Some("print"), f64::from(i) / 10.0)));
        scores.extend((0..3).map(|i| sample(200 + i, Some("replay"), 0.3)));
        let failures = vec![AcquisitionFailure {
            image: "bad.jpg".into(),
            kind: "no_face".into(),
            message: "no face".into(),
        }];
        let summary = summarize(scores, failures, 0.5).unwrap();
        let report = LivenessReport::new(vec!["minifasnet@1".into()], true, summary);
        assert_eq!(
            report.warnings(),
            ["1 image(s) could not be scored; they are left out of APCER and BPCER"]
        );
        let labels: Vec<String> = report.det_curves().into_iter().map(|c| c.label).collect();
        assert_eq!(labels, ["print (5 attacks)", "replay (3 attacks)"]);
        let md = report.markdown();
        assert!(
            md.contains("Threshold 0.500 (whole image judged as the face"),
            "{md}"
        );
        assert!(md.contains("| print | 5 | 0.00 % |"), "{md}");
        assert!(md.contains("not measurable: too few attacks"), "{md}");
        assert!(md.ends_with("## Warnings\n\n- 1 image(s) could not be scored; they are left out of APCER and BPCER\n"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(json["header"]["schema"], "vouch.eval.liveness");
        assert_eq!(json["whole_image"], true);
        assert_eq!(json["models"][0], "minifasnet@1");
        assert_eq!(json["summary"]["per_attack"][1]["count"], 3);
        assert_eq!(json["warnings"].as_array().unwrap().len(), 1);
        assert!(report.score_set().is_none());
    }
}
