//! `vouch eval face`: face verification on CSV pair lists, LFW's protocol or a folder per
//! identity; and embedding labelled pairs with a progress bar (also for `vouch calibrate face`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use vouch::eval::LabelledPair;
use vouch::eval::cache::EmbeddingCache;
use vouch::eval::face::{PairScores, score_pairs};
use vouch::eval::lfw::LfwPairs;
use vouch::eval::report::{FaceDataset, FaceModels, FaceReport};
use vouch::{Engine, ValidConfig};

use super::{ReportArgs, finish, print_verification};
use crate::progress;

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

/// The pairs of a face evaluation, where they came from, and the LFW folds (for the 10-fold
/// accuracy) on LFW's protocol.
fn face_dataset(args: &EvalFaceArgs) -> Result<(FaceDataset, Vec<LabelledPair>, Option<LfwPairs>)> {
    let list_dir = |list: &Path| list.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Some(pairs_txt) = &args.lfw {
        let root = args.images.clone().unwrap_or_else(|| list_dir(pairs_txt));
        let lfw = vouch::eval::lfw::read_lfw_pairs(pairs_txt, &root)?;
        let pairs = lfw.all_pairs();
        let dataset = FaceDataset::Lfw {
            pairs_file: pairs_txt.clone(),
            images: root,
            folds: lfw.folds.len(),
            pairs: pairs.len(),
        };
        return Ok((dataset, pairs, Some(lfw)));
    }
    if let Some(root) = &args.identities {
        let found =
            vouch::eval::identities::read_identity_pairs(root, args.max_impostors, args.seed)?;
        let dataset = FaceDataset::Identities {
            root: root.clone(),
            counts: found.counts,
        };
        return Ok((dataset, found.pairs, None));
    }
    let root = args
        .images
        .clone()
        .unwrap_or_else(|| list_dir(&args.pairs[0]));
    let lists: Vec<&Path> = args.pairs.iter().map(PathBuf::as_path).collect();
    let pairs = vouch::eval::read_pair_csv(&lists, &root)?;
    let dataset = FaceDataset::PairCsv {
        lists: args.pairs.clone(),
        images: root,
        pairs: pairs.len(),
    };
    Ok((dataset, pairs, None))
}

pub(crate) fn run(args: EvalFaceArgs, config: ValidConfig) -> Result<()> {
    let (dataset, pairs, lfw) = face_dataset(&args)?;
    let engine = Engine::new(config)?;
    let cache = (!args.no_cache).then(|| EmbeddingCache::for_engine(&args.cache, &engine));
    let scores = embed_pairs(&engine, &pairs, cache.as_ref());
    let models = FaceModels {
        detector: engine.face().detector().spec().id(),
        embedder: engine.face().embedder().spec().id(),
    };
    let mut report = FaceReport::new(models, dataset, scores)?;
    out!("{}", report.dataset.description());
    print_acquisition(&report)?;
    print_verification(&report.summary)?;
    if let Some(lfw) = &lfw {
        let scored = lfw.fold_scores(&report.pairs)?;
        let folds_total = lfw.folds.len();
        let accuracy = vouch::eval::lfw::fold_accuracy(&scored, folds_total)?;
        out!(
            "LFW {}-fold accuracy {:.2} % ± {:.2} (standard error; threshold chosen on the other folds; {} fold(s) measured)",
            folds_total,
            100.0 * accuracy.mean,
            100.0 * accuracy.std_error,
            accuracy.measured_folds
        );
        report.lfw_accuracy = Some(accuracy);
    }
    finish(&args.report, &report)
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

fn print_acquisition(report: &FaceReport) -> Result<()> {
    let failures = &report.acquisition.failures;
    out!(
        "pairs scored: {} genuine, {} impostor; {} pair(s) skipped, {} image(s) failed to acquire",
        report.pairs.iter().filter(|p| p.same).count(),
        report.pairs.iter().filter(|p| !p.same).count(),
        report.acquisition.pairs_skipped,
        failures.len()
    );
    for f in failures.iter().take(20) {
        out!("  failure to acquire: {} ({})", f.image.display(), f.kind);
    }
    if failures.len() > 20 {
        out!("  … and {} more (see the report)", failures.len() - 20);
    }
    Ok(())
}
