//! `vouch eval …`: datasets in, standard metrics out — on the terminal, and with `--out` as a
//! report folder (JSON, Markdown, DET plots) over `vouch::eval`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use vouch::eval::cache::EmbeddingCache;
use vouch::eval::face::{PairScores, score_pairs};
use vouch::eval::metrics::DET_POINTS;
use vouch::eval::plot::{DetCurve, DetLabels};
use vouch::eval::report::{ReportHeader, pct, pct_interval, verification_markdown, write_report};
use vouch::eval::{LabelledPair, ScoreSet, VerificationSummary, det};
use vouch::{Engine, ValidConfig};

use crate::{progress, voice};

#[derive(Subcommand)]
pub(crate) enum EvalCommand {
    /// Face verification on labelled pairs: AUC, EER, minDCF, FNMR at FMR 1e-2 … 1e-5 with
    /// confidence intervals; LFW 10-fold accuracy on LFW's protocol.
    Face(EvalFaceArgs),
    /// Presentation-attack detection: APCER per attack type, BPCER, BPCER at APCER 1 % / 5 %.
    Liveness(EvalLivenessArgs),
    /// Speaker verification: every pair of SPEAKER/*.flac recordings, or a trial list.
    Voice(voice::EvalVoiceArgs),
    /// Spoken passphrases on the Free Spoken Digit Dataset: genuine acceptance, impostor
    /// acceptance, replay rejection.
    Passphrase(voice::EvalPassphraseArgs),
    /// Metrics of a score file made elsewhere (`label,score` lines: genuine/impostor).
    Scores(EvalScoresArgs),
    /// One DET plot of the curves of several reports (report.json of `eval face`, `voice`,
    /// `scores`, `passphrase`; every attack type of `eval liveness`), e.g. to compare systems.
    Plot(EvalPlotArgs),
}

#[derive(Args)]
pub(crate) struct EvalPlotArgs {
    /// Report files (report.json). A label may be given as LABEL=FILE.
    #[arg(required = true)]
    reports: Vec<String>,
    /// Output image: .png or .svg.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Title over the plot.
    #[arg(long, default_value = "DET")]
    title: String,
}

/// Where a report goes.
#[derive(Args)]
pub(crate) struct ReportArgs {
    /// Write a report folder: report.json (stable schema), report.md, det.png, det.svg and
    /// scores.csv.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Write only the JSON report, to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("dataset").required(true).args(["pairs", "lfw", "identities"])))]
pub(crate) struct EvalFaceArgs {
    /// Pair lists (CSV with file_x, file_y, decision). Repeat for several.
    #[arg(long = "pairs", value_name = "CSV")]
    pairs: Vec<PathBuf>,
    /// LFW's pairs.txt (10 folds × 300 genuine + 300 impostor); images under --images as
    /// NAME/NAME_0001.jpg.
    #[arg(long, value_name = "PAIRS_TXT", conflicts_with = "pairs")]
    lfw: Option<PathBuf>,
    /// A folder per identity: every genuine pair, impostor pairs sampled when too many.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["pairs", "lfw"])]
    identities: Option<PathBuf>,
    /// At most this many impostor pairs with --identities (a seeded uniform sample beyond).
    #[arg(long, default_value_t = vouch::eval::identities::DEFAULT_MAX_IMPOSTOR)]
    max_impostors: usize,
    /// Seed of the impostor sample with --identities.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder the image paths are relative to [default: the list's folder].
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// Embedding cache folder (re-scoring skips detection and embedding).
    #[arg(long, value_name = "DIR", default_value = ".vouch/cache")]
    cache: PathBuf,
    /// Do not read or write the embedding cache.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    report: ReportArgs,
}

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

#[derive(Args)]
pub(crate) struct EvalScoresArgs {
    /// The score file: a header, then `label,score` lines (genuine/impostor, target/nontarget
    /// or 1/0).
    file: PathBuf,
    #[command(flatten)]
    report: ReportArgs,
}

pub(crate) fn run(cmd: EvalCommand, config: ValidConfig) -> Result<()> {
    match cmd {
        EvalCommand::Face(args) => face(args, config),
        EvalCommand::Liveness(args) => liveness(args, config),
        EvalCommand::Voice(args) => voice::eval(args, config),
        EvalCommand::Passphrase(args) => voice::eval_passphrase(args, config),
        EvalCommand::Scores(args) => scores(args),
        EvalCommand::Plot(args) => plot(args),
    }
}

fn plot(args: EvalPlotArgs) -> Result<()> {
    let mut curves = Vec::new();
    for spec in &args.reports {
        let (label, file) = match spec.split_once('=') {
            Some((label, file)) => (Some(label.to_string()), PathBuf::from(file)),
            None => (None, PathBuf::from(spec)),
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", file.display()))?;
        let schema = json["header"]["schema"].as_str().unwrap_or_default();
        if !schema.starts_with("vouch.eval.") {
            bail!("{} is not a vouch evaluation report", file.display());
        }
        let points = |v: &serde_json::Value| -> Result<Vec<vouch::eval::RocPoint>> {
            serde_json::from_value(v.clone())
                .with_context(|| format!("{}: malformed DET points", file.display()))
        };
        let name = label.unwrap_or_else(|| {
            file.parent().and_then(|d| d.file_name()).map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        });
        if schema == "vouch.eval.liveness" {
            for a in json["summary"]["per_attack"]
                .as_array()
                .into_iter()
                .flatten()
            {
                curves.push(DetCurve {
                    label: format!("{name}: {}", a["attack"].as_str().unwrap_or("attack")),
                    points: points(&a["det"])?,
                    impostors: a["count"].as_u64().unwrap_or(0) as usize,
                });
            }
        } else {
            let impostors = json["summary"]["impostor"].as_u64().unwrap_or(0) as usize;
            curves.push(DetCurve {
                label: name,
                points: points(&json["det"])?,
                impostors,
            });
        }
    }
    let labels = DetLabels {
        title: args.title.clone(),
        x: "FMR (APCER for attacks)".into(),
        y: "FNMR (BPCER for attacks)".into(),
    };
    let is_svg = args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let (png, svg) = if is_svg {
        (None, Some(args.out.as_path()))
    } else {
        (Some(args.out.as_path()), None)
    };
    vouch::eval::plot::det_plot(&curves, &labels, png, svg)?;
    out!("{} curve(s) drawn to {}", curves.len(), args.out.display());
    Ok(())
}

/// The pairs of a face evaluation and where they came from.
struct FaceDataset {
    pairs: Vec<LabelledPair>,
    /// The LFW folds, for the 10-fold accuracy.
    lfw: Option<vouch::eval::lfw::LfwPairs>,
    description: String,
    json: serde_json::Value,
}

fn face_dataset(args: &EvalFaceArgs) -> Result<FaceDataset> {
    let list_dir = |list: &Path| list.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Some(pairs_txt) = &args.lfw {
        let root = args.images.clone().unwrap_or_else(|| list_dir(pairs_txt));
        let lfw = vouch::eval::lfw::read_lfw_pairs(pairs_txt, &root)?;
        let pairs = lfw.all_pairs();
        return Ok(FaceDataset {
            description: format!(
                "LFW protocol: {} ({} folds, {} pairs), images under {}",
                pairs_txt.display(),
                lfw.folds.len(),
                pairs.len(),
                root.display()
            ),
            json: serde_json::json!({"kind": "lfw", "pairs_file": pairs_txt, "images": root, "folds": lfw.folds.len()}),
            pairs,
            lfw: Some(lfw),
        });
    }
    if let Some(root) = &args.identities {
        let found =
            vouch::eval::identities::read_identity_pairs(root, args.max_impostors, args.seed)?;
        return Ok(FaceDataset {
            description: format!(
                "a folder per identity: {} ({})",
                root.display(),
                found.counts
            ),
            json: serde_json::json!({"kind": "identities", "root": root, "counts": found.counts}),
            pairs: found.pairs,
            lfw: None,
        });
    }
    let root = args
        .images
        .clone()
        .unwrap_or_else(|| list_dir(&args.pairs[0]));
    let lists: Vec<&Path> = args.pairs.iter().map(PathBuf::as_path).collect();
    let pairs = vouch::eval::read_pair_csv(&lists, &root)?;
    Ok(FaceDataset {
        description: format!(
            "pair lists {} ({} pairs), images under {}",
            args.pairs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            pairs.len(),
            root.display()
        ),
        json: serde_json::json!({"kind": "pair_csv", "lists": args.pairs, "images": root}),
        pairs,
        lfw: None,
    })
}

fn face(args: EvalFaceArgs, config: ValidConfig) -> Result<()> {
    let dataset = face_dataset(&args)?;
    let engine = Engine::new(config)?;
    let cache = (!args.no_cache).then(|| EmbeddingCache::for_engine(&args.cache, &engine));
    let scores = embed_pairs(&engine, &dataset.pairs, cache.as_ref());
    let set = scores.score_set()?;
    let summary = VerificationSummary::of(&set);
    out!("{}", dataset.description);
    print_acquisition(&scores)?;
    print_verification(&summary)?;
    let lfw = match &dataset.lfw {
        Some(lfw) => {
            let scored = lfw.fold_scores(&scores.pairs)?;
            let folds_total = lfw.folds.len();
            let accuracy = vouch::eval::lfw::fold_accuracy(&scored, folds_total)?;
            out!(
                "LFW {}-fold accuracy {:.2} % ± {:.2} (standard error; threshold chosen on the other folds; {} fold(s) measured)",
                folds_total,
                100.0 * accuracy.mean,
                100.0 * accuracy.std_error,
                accuracy.measured_folds
            );
            Some(accuracy)
        }
        None => None,
    };
    let models = serde_json::json!({
        "detector": engine.face().detector().spec().id(),
        "embedder": engine.face().embedder().spec().id(),
    });
    let mut md = format!(
        "# Face verification\n\nModels: detector `{}`, embedder `{}`.\n\nData: {}.\n\n",
        models["detector"].as_str().unwrap_or_default(),
        models["embedder"].as_str().unwrap_or_default(),
        dataset.description
    );
    let _ = writeln!(
        md,
        "Failure to acquire (ISO/IEC 19795-1, kept apart from match errors): {} image(s), {} pair(s) not scored.\n",
        scores.failures.len(),
        scores.pairs_skipped
    );
    md.push_str(&verification_markdown(&summary));
    if let Some(a) = &lfw {
        let _ = writeln!(
            md,
            "\nLFW {}-fold accuracy: **{:.2} % ± {:.2}** (mean ± standard error over {} measured folds; each fold's threshold chosen on the other folds).",
            a.per_fold.len(),
            100.0 * a.mean,
            100.0 * a.std_error,
            a.measured_folds
        );
    }
    let warnings = verification_warnings(&summary, scores.failures.len());
    let det_points = det(&set, DET_POINTS);
    let json = serde_json::json!({
        "header": ReportHeader::new("vouch.eval.face"),
        "models": models,
        "dataset": dataset.json,
        "acquisition": {
            "images_failed": scores.failures.len(),
            "pairs_skipped": scores.pairs_skipped,
            "failures": scores.failures,
        },
        "summary": summary,
        "lfw_accuracy": lfw,
        "det": det_points,
        "warnings": warnings,
        "pairs": scores.pairs,
    });
    let curve = DetCurve {
        label: format!(
            "{} ({} genuine / {} impostor)",
            models["embedder"].as_str().unwrap_or_default(),
            summary.genuine,
            summary.impostor
        ),
        points: det_points,
        impostors: summary.impostor,
    };
    let labels = DetLabels::verification("Face verification (DET)");
    finish(
        &args.report,
        &json,
        md,
        &warnings,
        &[curve],
        &labels,
        Some(&set),
    )
}

/// Embeds every distinct image of `pairs` with a progress bar, on every core.
pub(crate) fn embed_pairs(
    engine: &Engine,
    pairs: &[LabelledPair],
    cache: Option<&EmbeddingCache>,
) -> PairScores {
    let distinct: std::collections::BTreeSet<_> = pairs.iter().flat_map(|p| [&p.a, &p.b]).collect();
    let bar = progress(distinct.len(), "embedding");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scores = score_pairs(engine, pairs, cache, threads, &|| bar.inc(1));
    bar.finish_and_clear();
    scores
}

fn print_acquisition(scores: &PairScores) -> Result<()> {
    out!(
        "pairs scored: {} genuine, {} impostor; {} pair(s) skipped, {} image(s) failed to acquire",
        scores.pairs.iter().filter(|p| p.same).count(),
        scores.pairs.iter().filter(|p| !p.same).count(),
        scores.pairs_skipped,
        scores.failures.len()
    );
    for f in scores.failures.iter().take(20) {
        out!("  failure to acquire: {} ({})", f.image.display(), f.kind);
    }
    if scores.failures.len() > 20 {
        out!(
            "  … and {} more (see the report)",
            scores.failures.len() - 20
        );
    }
    Ok(())
}

/// Warnings a reader of the figures must see.
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

/// AUC, EER, minDCF and the FNMR operating points, one per line.
pub(crate) fn print_verification(summary: &VerificationSummary) -> Result<()> {
    out!("AUC        {:.4}", summary.auc);
    out!(
        "EER        {:.2} %  {}  (threshold {:.4})",
        100.0 * summary.eer.rate,
        pct_interval(summary.eer_interval),
        summary.eer.threshold
    );
    for op in &summary.operating_points {
        let figure = if op.measurable {
            format!("{:>6}  {}", pct(op.fnmr), pct_interval(op.fnmr_interval))
        } else {
            format!(
                "{:>6}  (not measurable: too few impostor comparisons)",
                pct(op.fnmr)
            )
        };
        out!(
            "FNMR @ FMR {:<7} {figure}  (threshold {:.4}, {} impostor(s) accepted)",
            format!("{}", op.target_fmr),
            op.threshold,
            op.impostors_accepted
        );
    }
    out!(
        "minDCF     {:.4}  (p_target {}, C_miss = C_fa = 1)",
        summary.min_dcf.min_dcf,
        summary.min_dcf.p_target
    );
    Ok(())
}

/// Writes what was asked for (`--out` folder and/or `--json` file) and says where.
pub(crate) fn finish(
    report: &ReportArgs,
    json: &serde_json::Value,
    markdown: String,
    warnings: &[String],
    curves: &[DetCurve],
    labels: &DetLabels,
    scores: Option<&ScoreSet>,
) -> Result<()> {
    for w in warnings {
        out!("warning: {w}");
    }
    if let Some(path) = &report.json {
        std::fs::write(path, serde_json::to_string_pretty(json)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        out!("report written to {}", path.display());
    }
    if let Some(dir) = &report.out {
        let mut markdown = markdown;
        if !warnings.is_empty() {
            markdown.push_str("\n## Warnings\n\n");
            for w in warnings {
                let _ = writeln!(markdown, "- {w}");
            }
        }
        let mut written = write_report(dir, json, &markdown, curves, labels)?;
        if let Some(set) = scores {
            let path = dir.join("scores.csv");
            let mut text = String::from("label,score\n");
            for s in set.genuine() {
                let _ = writeln!(text, "genuine,{s:?}");
            }
            for s in set.impostor() {
                let _ = writeln!(text, "impostor,{s:?}");
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            written.files.push(path);
        }
        for w in &written.warnings {
            out!("warning: {w}");
        }
        out!(
            "report written to {} ({})",
            dir.display(),
            written
                .files
                .iter()
                .filter_map(|f| f.file_name())
                .map(|f| f.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn scores(args: EvalScoresArgs) -> Result<()> {
    let rows = vouch::eval::scores::read_scores(&args.file)?;
    let set = vouch::eval::scores::verification_set(&rows)?;
    let summary = VerificationSummary::of(&set);
    out!("{}", args.file.display());
    print_verification(&summary)?;
    let warnings = verification_warnings(&summary, 0);
    let md = format!(
        "# Verification scores\n\nScores: `{}`.\n\n{}",
        args.file.display(),
        verification_markdown(&summary)
    );
    let det_points = det(&set, DET_POINTS);
    let json = serde_json::json!({
        "header": ReportHeader::new("vouch.eval.scores"),
        "source": args.file,
        "summary": summary,
        "det": det_points,
        "warnings": warnings,
    });
    let curve = DetCurve {
        label: args
            .file
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        points: det_points,
        impostors: summary.impostor,
    };
    let labels = DetLabels::verification("Verification (DET)");
    // The input already is the score file: no copy of it in the folder.
    finish(&args.report, &json, md, &warnings, &[curve], &labels, None)
}

fn liveness(args: EvalLivenessArgs, config: ValidConfig) -> Result<()> {
    use vouch::eval::liveness::{read_liveness_list, samples_in, score_samples, summarize};
    let mut samples = Vec::new();
    if let Some(list) = &args.list {
        samples = read_liveness_list(list)?;
    } else {
        if args.bona_fide.is_empty() || args.attacks.is_empty() {
            bail!("give --bona-fide and --attack folders, or a labelled --list");
        }
        for dir in &args.bona_fide {
            samples.extend(samples_in(dir, None)?);
        }
        for spec in &args.attacks {
            let Some((kind, dir)) = spec.split_once('=') else {
                bail!("--attack takes TYPE=DIR, got {spec:?}");
            };
            samples.extend(samples_in(Path::new(dir), Some(kind))?);
        }
    }
    let engine = Engine::new(config)?;
    let threshold = args
        .threshold
        .unwrap_or(f64::from(engine.config().decisions.liveness_threshold));
    let bar = progress(samples.len(), "scoring");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (scored, failures) =
        score_samples(&engine, &samples, args.whole_image, threads, &|| bar.inc(1));
    bar.finish_and_clear();
    let summary = summarize(scored, failures, threshold)?;
    let crops_note = if args.whole_image {
        " (whole image judged as the face: tight crops, see the liveness docs)"
    } else {
        ""
    };
    out!(
        "bona fide: {} scored; {} image(s) failed to acquire{crops_note}",
        summary.bona_fide,
        summary.failures.len(),
    );
    out!(
        "threshold {:.3}: BPCER {} {}",
        summary.threshold,
        pct(summary.bpcer),
        pct_interval(summary.bpcer_interval)
    );
    let mut md = format!(
        "# Presentation-attack detection (ISO/IEC 30107-3)\n\nModels: {}.\n\nThreshold {:.3}{crops_note}; {} bona fide presentations, {} image(s) failed to acquire.\n\n| attack type | n | APCER | 95 % interval | BPCER @ APCER 1 % | BPCER @ APCER 5 % |\n|---|---|---|---|---|---|\n",
        liveness_models(&engine)
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", "),
        summary.threshold,
        summary.bona_fide,
        summary.failures.len()
    );
    let at = |op: &vouch::stats::OperatingPoint| {
        if op.measurable {
            format!("{} (t {:.3})", pct(op.fnmr), op.threshold)
        } else {
            "not measurable: too few attacks".to_string()
        }
    };
    for a in &summary.per_attack {
        out!(
            "  attack {:<8} n={:<5} APCER {} {}   BPCER@APCER 1 % = {}, 5 % = {}",
            a.attack,
            a.count,
            pct(a.apcer),
            pct_interval(a.apcer_interval),
            at(&a.bpcer_at_apcer[0]),
            at(&a.bpcer_at_apcer[1])
        );
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            a.attack,
            a.count,
            pct(a.apcer),
            pct_interval(a.apcer_interval),
            at(&a.bpcer_at_apcer[0]),
            at(&a.bpcer_at_apcer[1])
        );
    }
    out!(
        "max APCER {}, ACER (non-normative) {}",
        pct(summary.max_apcer),
        pct(summary.acer)
    );
    let _ = writeln!(
        md,
        "\n**BPCER {} {}**, max APCER over types {}, ACER (non-normative) {}.\n\nIntervals: Wilson score, 95 %, assuming independent presentations.",
        pct(summary.bpcer),
        pct_interval(summary.bpcer_interval),
        pct(summary.max_apcer),
        pct(summary.acer)
    );
    let curves = summary
        .per_attack
        .iter()
        .map(|a| DetCurve {
            label: format!("{} ({} attacks)", a.attack, a.count),
            points: a.det.clone(),
            impostors: a.count,
        })
        .collect::<Vec<_>>();
    let labels = DetLabels {
        title: "Presentation-attack detection (DET)".into(),
        x: "APCER".into(),
        y: "BPCER".into(),
    };
    let mut warnings = Vec::new();
    if !summary.failures.is_empty() {
        warnings.push(format!(
            "{} image(s) could not be scored; they are left out of APCER and BPCER",
            summary.failures.len()
        ));
    }
    let json = serde_json::json!({
        "header": ReportHeader::new("vouch.eval.liveness"),
        "models": liveness_models(&engine),
        "whole_image": args.whole_image,
        "summary": summary,
        "warnings": warnings,
    });
    finish(&args.report, &json, md, &warnings, &curves, &labels, None)
}

fn liveness_models(engine: &Engine) -> Vec<String> {
    engine
        .liveness()
        .models()
        .iter()
        .map(|m| m.spec().id())
        .collect()
}
