//! `vouch eval liveness`: presentation-attack detection on bona fide and attack folders or a
//! labelled list.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use vouch::eval::liveness::{
    LivenessSample, read_liveness_list, samples_in, score_samples, summarize,
};
use vouch::eval::report::{LivenessReport, bpcer_at_apcer_text, pct, pct_interval};
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
    let report = LivenessReport::new(
        models,
        args.whole_image,
        summarize(scored, failures, threshold)?,
    );
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
    finish(&args.report, &report)
}
