//! `vouch eval liveness`: presentation-attack detection on bona fide and attack folders or a
//! labelled list (per frame and, with `--session-regex`, per session); with `--sessions`, the
//! active check on a folder of challenge sessions.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use vouch::eval::challenges::{judge_sessions, read_sessions, summarize_challenges};
use vouch::eval::liveness::{
    LivenessSample, read_liveness_list, samples_in, score_samples, summarize, summarize_sessions,
};
use vouch::eval::report::{
    ChallengeSessionsReport, LivenessReport, bpcer_at_apcer_text, pct, pct_interval, rate_text,
};
use vouch::{Engine, ValidConfig};

use super::{ReportArgs, finish};
use crate::progress;

#[derive(Args)]
pub(crate) struct EvalLivenessArgs {
    /// A folder (or a single image) of bona fide (live) presentations. Repeat for several.
    #[arg(long = "bona-fide", value_name = "DIR")]
    bona_fide: Vec<PathBuf>,
    /// An attack folder or image, as TYPE=PATH (e.g. print=ImposterFace). Repeat for several.
    #[arg(long = "attack", value_name = "TYPE=DIR")]
    attacks: Vec<String>,
    /// A labelled list instead of folders: CSV `file,label` with label `bona_fide` or an attack
    /// type, paths relative to the list's folder.
    #[arg(long, value_name = "CSV", conflicts_with_all = ["bona_fide", "attacks"])]
    list: Option<PathBuf>,
    /// Also report per session: frames whose file names give the same key under this pattern
    /// (its first capture group, else its whole match) and share a label are one session,
    /// their scores fused by the mean. For NUAA raw frames (`0001_00_00_01_0.jpg`: subject,
    /// glasses, position, session, frame) `^(.*)_[0-9]+\.jpg$`.
    #[arg(long, value_name = "REGEX")]
    session_regex: Option<String>,
    /// Judge challenge sessions with the active check instead: a folder per session holding
    /// its frames (sorted by name) and a session.toml (label, actions, fps or times).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["bona_fide", "attacks", "list", "session_regex", "whole_image", "threshold"])]
    sessions: Option<PathBuf>,
    /// With --sessions: other challenges (same length, differing) each genuine session is
    /// judged against, as a replayed recording would be.
    #[arg(long, default_value_t = 3, requires = "sessions")]
    replays: usize,
    /// With --sessions: the seed those challenges are drawn with.
    #[arg(long, default_value_t = 17, requires = "sessions")]
    seed: u64,
    /// The images are face crops: judge the whole image instead of detecting a face.
    #[arg(long)]
    whole_image: bool,
    /// Decision threshold [default: decisions.liveness_threshold from the config].
    #[arg(long)]
    threshold: Option<f64>,
    #[command(flatten)]
    report: ReportArgs,
}

/// The labelled samples of a `--list`, or of `--bona-fide` and `--attack TYPE=DIR` folders
/// (shared with `vouch calibrate liveness`).
pub(crate) fn gather_samples(
    list: Option<&Path>,
    bona_fide: &[PathBuf],
    attacks: &[String],
) -> Result<Vec<LivenessSample>> {
    let mut samples = Vec::new();
    if let Some(list) = list {
        samples = read_liveness_list(list)?;
    } else {
        if bona_fide.is_empty() || attacks.is_empty() {
            bail!("give --bona-fide and --attack folders, or a labelled --list");
        }
        for dir in bona_fide {
            samples.extend(samples_in(dir, None)?);
        }
        for spec in attacks {
            let Some((kind, dir)) = spec.split_once('=') else {
                bail!("--attack takes TYPE=DIR, got {spec:?}");
            };
            samples.extend(samples_in(Path::new(dir), Some(kind))?);
        }
    }
    Ok(samples)
}

pub(crate) fn run(args: EvalLivenessArgs, config: ValidConfig) -> Result<()> {
    if let Some(dir) = &args.sessions {
        return run_sessions(dir, args.replays, args.seed, &args.report, config);
    }
    let pattern = args
        .session_regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--session-regex: {e}"))?;
    let samples = gather_samples(args.list.as_deref(), &args.bona_fide, &args.attacks)?;
    let engine = Engine::new(config)?;
    let threshold = args
        .threshold
        .unwrap_or(f64::from(engine.config().decisions.liveness_threshold));
    let bar = progress(samples.len(), "scoring");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (scored, failures) =
        score_samples(&engine, &samples, args.whole_image, threads, &|| bar.inc(1));
    bar.finish_and_clear();
    let models = engine
        .liveness()
        .models()
        .iter()
        .map(|m| m.spec().id())
        .collect();
    let sessions = pattern
        .map(|p| summarize_sessions(&scored, &p, threshold))
        .transpose()?;
    let mut report = LivenessReport::new(
        models,
        args.whole_image,
        summarize(scored, failures, threshold)?,
    );
    if let Some(sessions) = sessions {
        report = report.with_sessions(sessions);
    }
    let summary = &report.summary;
    out!(
        "bona fide: {} scored; {} image(s) failed to acquire{}",
        summary.bona_fide,
        summary.failures.len(),
        report.crops_note()
    );
    out!(
        "threshold {:.3}: BPCER {} {}",
        summary.threshold,
        pct(summary.bpcer),
        pct_interval(summary.bpcer_interval)
    );
    for a in &summary.per_attack {
        out!(
            "  attack {:<8} n={:<5} APCER {} {}   BPCER@APCER 1 % = {}, 5 % = {}",
            a.attack,
            a.count,
            pct(a.apcer),
            pct_interval(a.apcer_interval),
            bpcer_at_apcer_text(&a.bpcer_at_apcer[0]),
            bpcer_at_apcer_text(&a.bpcer_at_apcer[1])
        );
    }
    out!(
        "max APCER {}, ACER (non-normative) {}",
        pct(summary.max_apcer),
        pct(summary.acer)
    );
    if let Some(sessions) = &report.sessions {
        out!(
            "per session ({} bona fide, frames fused by the mean): BPCER {} {}",
            sessions.bona_fide,
            pct(sessions.bpcer),
            pct_interval(sessions.bpcer_interval)
        );
        for a in &sessions.per_attack {
            out!(
                "  attack {:<8} sessions={:<4} APCER {} {}",
                a.attack,
                a.count,
                pct(a.apcer),
                pct_interval(a.apcer_interval)
            );
        }
    }
    finish(&args.report, &report)
}

fn run_sessions(
    dir: &Path,
    replays: usize,
    seed: u64,
    report_args: &ReportArgs,
    config: ValidConfig,
) -> Result<()> {
    let sessions = read_sessions(dir)?;
    let engine = Engine::new(config)?;
    let bar = progress(sessions.len(), "following");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (verdicts, failures) =
        judge_sessions(&engine, &sessions, replays, seed, threads, &|| bar.inc(1));
    bar.finish_and_clear();
    let cfg = engine.config();
    let report = ChallengeSessionsReport::new(
        cfg.decisions.active_liveness.clone(),
        cfg.face.motion.clone(),
        replays,
        seed,
        summarize_challenges(verdicts, failures)?,
    );
    let s = &report.summary;
    let reasons = |m: &std::collections::BTreeMap<String, usize>| {
        m.iter()
            .map(|(r, n)| format!("{r} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out!(
        "{} sessions judged, {} failed to be judged",
        s.sessions.len(),
        s.failures.len()
    );
    out!(
        "  {:<34} accepted {}  {}",
        "genuine",
        rate_text(&s.genuine_accepted),
        reasons(&s.genuine_reasons)
    );
    for g in &s.genuine_per_group {
        out!(
            "  {:<34} accepted {}  {}",
            format!("  genuine, {}", g.group),
            rate_text(&g.accepted),
            reasons(&g.reasons)
        );
    }
    for sp in &s.per_species {
        out!(
            "  {:<34} refused  {}  {}",
            sp.species,
            rate_text(&sp.refused),
            reasons(&sp.reasons)
        );
    }
    out!(
        "  {:<34} refused  {}",
        format!("genuine vs another challenge (x{replays})"),
        rate_text(&s.replays_refused)
    );
    finish(report_args, &report)
}
