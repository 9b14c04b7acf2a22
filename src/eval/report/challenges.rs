//! `vouch.eval.liveness.sessions`: the active liveness check on challenge sessions.

use std::fmt::Write as _;

use serde::Serialize;

use super::{EvalReport, ReportHeader, pct, pct_interval, with_warnings};
use crate::decision::ActiveLivenessConfig;
use crate::eval::challenges::{ChallengeSummary, Rate};
use crate::eval::plot::{DetCurve, DetLabels};
use crate::face::MotionConfig;

/// The report of a challenge-session evaluation (schema `vouch.eval.liveness.sessions`).
#[derive(Clone, Debug, Serialize)]
pub struct ChallengeSessionsReport {
    /// Schema `vouch.eval.liveness.sessions`.
    pub header: ReportHeader,
    /// The rule's settings the sessions were judged with (`[decisions.active_liveness]`).
    pub active_liveness: ActiveLivenessConfig,
    /// How movements were found (`[face.motion]`).
    pub motion: MotionConfig,
    /// Other challenges each genuine session was judged against.
    pub replays_per_session: usize,
    /// The seed those challenges were drawn with.
    pub seed: u64,
    /// The figures and every session's verdicts.
    pub summary: ChallengeSummary,
    /// What a reader of the figures must see.
    pub warnings: Vec<String>,
}

impl ChallengeSessionsReport {
    /// The report of `summary`, judged with `active_liveness` and `motion`, with
    /// `replays_per_session` other challenges per genuine session drawn from `seed`.
    pub fn new(
        active_liveness: ActiveLivenessConfig,
        motion: MotionConfig,
        replays_per_session: usize,
        seed: u64,
        summary: ChallengeSummary,
    ) -> ChallengeSessionsReport {
        let mut warnings = Vec::new();
        if !summary.failures.is_empty() {
            warnings.push(format!(
                "{} session(s) could not be judged; they are left out of the rates",
                summary.failures.len()
            ));
        }
        if summary.synthetic_sessions > 0 {
            warnings.push(format!(
                "{} of {} sessions are synthetic (assembled from still images or video frames, or rendered): not recordings of customers answering a challenge on a terminal",
                summary.synthetic_sessions,
                summary.sessions.len()
            ));
        }
        if summary.genuine_accepted.count == 0 {
            warnings.push("no genuine session: acceptance and replays not measured".into());
        }
        ChallengeSessionsReport {
            header: ReportHeader::new("vouch.eval.liveness.sessions"),
            active_liveness,
            motion,
            replays_per_session,
            seed,
            summary,
            warnings,
        }
    }
}

/// `hits of count (rate, interval)`.
pub fn rate_text(r: &Rate) -> String {
    format!(
        "{} of {} ({} {})",
        r.hits,
        r.count,
        pct(r.rate),
        pct_interval(r.interval)
    )
}

/// Reasons and their counts, `reason ×n, …` (or `-`).
fn reasons_text(reasons: &std::collections::BTreeMap<String, usize>) -> String {
    if reasons.is_empty() {
        return "-".into();
    }
    reasons
        .iter()
        .map(|(r, n)| format!("{r} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl EvalReport for ChallengeSessionsReport {
    fn markdown(&self) -> String {
        let s = &self.summary;
        let mut md = format!(
            "# Active liveness on challenge sessions\n\n{} sessions judged by `decisions.active_liveness` as configured; {} could not be judged.\n\n| what | outcome | count | rate | 95 % interval | reasons |\n|---|---|---|---|---|---|\n",
            s.sessions.len(),
            s.failures.len()
        );
        let mut row = |what: &str, outcome: &str, r: &Rate, reasons: String| {
            let _ = writeln!(
                md,
                "| {what} | {outcome} | {} of {} | {} | {} | {reasons} |",
                r.hits,
                r.count,
                pct(r.rate),
                pct_interval(r.interval)
            );
        };
        row(
            "genuine",
            "accepted",
            &s.genuine_accepted,
            reasons_text(&s.genuine_reasons),
        );
        for g in &s.genuine_per_group {
            row(
                &format!("genuine, {}", g.group),
                "accepted",
                &g.accepted,
                reasons_text(&g.reasons),
            );
        }
        for sp in &s.per_species {
            row(
                &sp.species,
                "refused",
                &sp.refused,
                reasons_text(&sp.reasons),
            );
        }
        row(
            &format!(
                "genuine against another challenge ({} each)",
                self.replays_per_session
            ),
            "refused",
            &s.replays_refused,
            String::new(),
        );
        md.push_str(
            "\nIntervals: Wilson score, 95 %, assuming independent sessions (sessions built from the same person or photo are not independent).\n",
        );
        with_warnings(md, &self.warnings)
    }

    fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A pass/fail rule has no DET curve.
    fn det_curves(&self) -> Vec<DetCurve> {
        Vec::new()
    }

    fn det_labels(&self) -> DetLabels {
        DetLabels {
            title: "Active liveness".into(),
            x: "APCER".into(),
            y: "BPCER".into(),
        }
    }
}
