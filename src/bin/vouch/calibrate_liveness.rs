//! `vouch calibrate liveness`: labelled bona fide and attack presentations → a liveness
//! calibration file (the learned fusion of the models' scores and its threshold at a target
//! APCER), with the figures in sample and, when subjects can be read from file names,
//! leave-one-subject-out.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use vouch::eval::liveness::score_samples;
use vouch::eval::liveness_fusion::{
    Fuser, FuserFigures, ScoreRow, evaluate, pad_scores, read_model_scores, subject_of,
    write_model_scores,
};
use vouch::eval::report::pct;
use vouch::score::liveness::{
    DEFAULT_L2, DEFAULT_TARGET_APCER, LivenessCalibration, PadPoint, PadScores,
};
use vouch::{Engine, ValidConfig};

#[derive(Args)]
pub(crate) struct CalibrateLivenessArgs {
    /// A folder (or a single image) of bona fide (live) presentations. Repeat for several.
    #[arg(long = "bona-fide", value_name = "DIR")]
    bona_fide: Vec<PathBuf>,
    /// An attack folder or image, as TYPE=PATH (e.g. print=ImposterRaw). Repeat for several.
    #[arg(long = "attack", value_name = "TYPE=DIR")]
    attacks: Vec<String>,
    /// A labelled list instead of folders: CSV `file,label` with label `bona_fide` or an attack
    /// type, paths relative to the list's folder.
    #[arg(long, value_name = "CSV", conflicts_with_all = ["bona_fide", "attacks", "scores"])]
    list: Option<PathBuf>,
    /// Per-model scores written earlier with --scores-out, instead of scoring images (score
    /// once, fit many times).
    #[arg(long, value_name = "CSV", conflicts_with_all = ["bona_fide", "attacks", "whole_image"])]
    scores: Option<PathBuf>,
    /// Also write every image's per-model scores here (CSV: file, label, one column per model
    /// id), for --scores.
    #[arg(long, value_name = "CSV")]
    scores_out: Option<PathBuf>,
    /// The images are face crops: judge the whole image instead of detecting a face.
    #[arg(long)]
    whole_image: bool,
    /// The liveness models to fuse, by manifest name [default: liveness.models from the
    /// config; with --scores, every model of the file].
    #[arg(long, value_delimiter = ',', value_name = "NAME,…")]
    models: Vec<String>,
    /// The highest APCER over attack species the threshold may give on the data.
    #[arg(long, value_name = "RATE", default_value_t = DEFAULT_TARGET_APCER)]
    target_apcer: f64,
    /// The L2 penalty on the fusion's weights.
    #[arg(long, value_name = "PENALTY", default_value_t = DEFAULT_L2)]
    l2: f64,
    /// Leave one subject out, a file's subject being its file name up to the first SEP (NUAA:
    /// `_`, for `0001_00_00_01_0.jpg`): the honest figures, since in-sample ones judge the data
    /// the fusion and threshold were learned on.
    #[arg(long, value_name = "SEP")]
    subjects_before: Option<String>,
    /// Where to write the calibration (TOML); name it in the config as `[liveness] fusion`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub(crate) fn run(args: CalibrateLivenessArgs, config: ValidConfig) -> Result<()> {
    let (models, rows, what) = match &args.scores {
        Some(file) => {
            let (models, rows) = read_model_scores(file)?;
            let what = format!("per-model scores of {}", file.display());
            if args.models.is_empty() {
                (models, rows, what)
            } else {
                let (models, rows) = select(&models, rows, &args.models)?;
                (models, rows, what)
            }
        }
        None => score(&args, config)?,
    };
    if let Some(path) = &args.scores_out {
        write_model_scores(path, &models, &rows)?;
        out!("per-model scores written to {}", path.display());
    }
    let samples: Vec<PadScores> = rows.iter().map(|(_, s)| s.clone()).collect();
    let groups = match &args.subjects_before {
        None => None,
        Some(sep) => Some(
            rows.iter()
                .map(|(file, _)| subject_of(Path::new(file), sep))
                .collect::<vouch::Result<Vec<String>>>()?,
        ),
    };
    let protocol = args.subjects_before.as_ref().map(|sep| {
        format!("leave one subject out (subject: the file name up to the first {sep:?}); each subject's presentations judged by the fusion and threshold learned on the others, decisions pooled")
    });
    let grouping = groups.as_deref().zip(protocol.as_deref());
    let bona = samples.iter().filter(|s| s.attack.is_none()).count();
    let source = format!(
        "{bona} bona fide / {} attack presentations, {what}",
        samples.len() - bona,
    );
    out!("models     {}", models.join(", "));
    out!("data       {source}");
    out!(
        "target     max APCER over species <= {}",
        pct(args.target_apcer)
    );
    let mean = evaluate(Fuser::Mean, &models, &samples, grouping, args.target_apcer)?;
    let logistic = Fuser::Logistic { l2: args.l2 };
    let fused = evaluate(logistic, &models, &samples, grouping, args.target_apcer)?;
    out!("");
    out!(
        "{:<10} {:<10} {:<22} {:<24} max APCER (attacks accepted)",
        "fusion",
        "threshold",
        "figures",
        "BPCER [95 % Wilson]"
    );
    print_figures("mean", &mean)?;
    print_figures("logistic", &fused)?;
    let mut calibration =
        LivenessCalibration::fit(&models, &samples, args.target_apcer, args.l2, &source)?;
    calibration.held_out = fused.held_out;
    out!("");
    out!(
        "fusion     live logit = {} {:+.4}",
        models
            .iter()
            .zip(&calibration.weights)
            .map(|(m, w)| format!("{w:+.4} × logit({m})"))
            .collect::<Vec<_>>()
            .join(" "),
        calibration.bias
    );
    let text = format!(
        "# Written by `vouch calibrate liveness`. in_sample figures judge the data the fusion and\n# threshold were learned on (optimistic); held_out figures, when present, judge each\n# subject with a fusion and threshold learned without it.\n{}",
        calibration.to_toml()?
    );
    std::fs::write(&args.out, text).with_context(|| format!("writing {}", args.out.display()))?;
    out!("liveness calibration written to {}", args.out.display());
    Ok(())
}

/// The columns of `wanted` (manifest names) among a score file's models (ids), in that order.
fn select(
    models: &[String],
    rows: Vec<ScoreRow>,
    wanted: &[String],
) -> Result<(Vec<String>, Vec<ScoreRow>)> {
    let mut columns = Vec::new();
    for name in wanted {
        let Some(i) = models
            .iter()
            .position(|id| id.split_once('@').map_or(id.as_str(), |(n, _)| n) == name)
        else {
            bail!(
                "the score file has no model {name:?} (it has {})",
                models.join(", ")
            );
        };
        columns.push(i);
    }
    let ids = columns.iter().map(|&i| models[i].clone()).collect();
    let rows = rows
        .into_iter()
        .map(|(file, s)| {
            let live = columns.iter().map(|&i| s.live[i]).collect();
            (
                file,
                PadScores {
                    live,
                    attack: s.attack,
                },
            )
        })
        .collect();
    Ok((ids, rows))
}

/// Scores the images with the models asked for: their per-model scores and what was scored.
fn score(
    args: &CalibrateLivenessArgs,
    config: ValidConfig,
) -> Result<(Vec<String>, Vec<ScoreRow>, String)> {
    let samples = crate::eval::liveness::gather_samples(
        args.list.as_deref(),
        &args.bona_fide,
        &args.attacks,
    )?;
    // the models' own scores, not an earlier fusion's: fuse by the mean while scoring
    let mut config = config.into_inner();
    config.liveness.fusion = None;
    if !args.models.is_empty() {
        config.liveness.models = args.models.clone();
    }
    let engine = Engine::new(config.validate()?)?;
    let models = engine.liveness().model_ids();
    let bar = crate::progress(samples.len(), "scoring");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (scored, failures) =
        score_samples(&engine, &samples, args.whole_image, threads, &|| bar.inc(1));
    bar.finish_and_clear();
    if scored.is_empty() {
        bail!(
            "no image could be scored ({} failures to acquire)",
            failures.len()
        );
    }
    let data = match &args.list {
        Some(list) => list.display().to_string(),
        None => "the --bona-fide and --attack folders".to_string(),
    };
    let what = format!(
        "{data}{}; {} image(s) failed to acquire and are left out",
        if args.whole_image {
            " (whole images as face boxes)"
        } else {
            ""
        },
        failures.len()
    );
    let root = args.list.as_ref().and_then(|l| l.parent());
    let rows = scored
        .iter()
        .zip(pad_scores(&scored))
        .map(|(s, p)| {
            let file = root
                .and_then(|r| s.path.strip_prefix(r).ok())
                .unwrap_or(&s.path);
            (file.display().to_string(), p)
        })
        .collect();
    Ok((models, rows, what))
}

fn print_figures(name: &str, f: &FuserFigures) -> Result<()> {
    let line = |which: &str, p: &PadPoint| {
        let bpcer = format!(
            "{} {}",
            pct(p.bpcer),
            p.bpcer_interval.map_or_else(
                || "–".into(),
                |[lo, hi]| format!("[{:.2}, {:.2}]", 100.0 * lo, 100.0 * hi)
            )
        );
        format!(
            "{which:<22} {bpcer:<24} {} ({} of {})",
            pct(p.max_apcer),
            p.attacks.iter().map(|a| a.accepted).sum::<usize>(),
            p.attacks.iter().map(|a| a.count).sum::<usize>(),
        )
    };
    out!(
        "{name:<10} {:<10.6} {}",
        f.threshold,
        line("in sample", &f.in_sample)
    );
    if let Some(h) = &f.held_out {
        out!(
            "{:<10} {:<10} {}",
            "",
            "(per fold)",
            line(&format!("held out, {} subjects", h.groups), &h.point)
        );
    }
    Ok(())
}
