//! `vouch eval face`: face verification on CSV pair lists, LFW's protocol or a folder per
//! identity, by one face model or several and their fusion; and embedding labelled pairs with
//! a progress bar (also for `vouch calibrate face`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use vouch::eval::cache::EmbeddingCache;
use vouch::eval::face::{FaceScores, IdentityRule, PairTable, embed_images, score_table};
use vouch::eval::face_fusion::{
    FaceFusion, fuse_across_identities, fuse_across_lfw_folds, fuse_as_calibrated, lfw_accuracy,
    lfw_fused_accuracy,
};
use vouch::eval::identities::PairsOf;
use vouch::eval::report::{
    Acquisition, FaceDataset, FaceModels, FaceReport, ScoreResult, write_face_scores,
};
use vouch::face::Embedder;
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
    /// A folder per identity (images anywhere under ID/, e.g. ID/frontal/01.jpg): every
    /// genuine pair, impostor pairs sampled when too many.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["pairs", "lfw"])]
    identities: Option<PathBuf>,
    /// With --identities, which pairs: `all`, or two subsets joined by `-`, a subset being the
    /// first folder below the identity folders. `frontal-frontal`: both images under
    /// ID/frontal/; `frontal-profile`: one under ID/frontal/, the other under ID/profile/
    /// [default: all].
    #[arg(long, value_name = "all|A-B")]
    pairs_of: Option<PairsOf>,
    /// At most this many impostor pairs with --identities (a seeded uniform sample beyond).
    #[arg(long, default_value_t = vouch::eval::identities::DEFAULT_MAX_IMPOSTOR)]
    max_impostors: usize,
    /// Seed of the impostor sample with --identities.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Face models, by manifest name, comma-separated (e.g. mobilefacenet_int8,sface): each
    /// image is detected and aligned once and embedded by each; each model's figures are
    /// reported, then those of their fusion (cross-validated), last [default: the
    /// configuration's face.embedder, then face.fused_embedders].
    #[arg(long = "face-models", value_name = "NAMES", value_delimiter = ',')]
    face_models: Vec<String>,
    /// The fusion to report: `cross-fitted` on these pairs (never scoring a pair with a fusion
    /// that saw its people), or `calibrated`, the fused calibration in force (built in, or
    /// under [decisions] calibration) that a tier with face_fusion = true uses, fitted on
    /// other data.
    #[arg(long, value_enum, default_value_t = FusionSource::CrossFitted)]
    fusion: FusionSource,
    /// Folder the image paths are relative to [default: the list's folder].
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// Embedding cache folder, one entry per image and model (re-scoring skips detection and
    /// embedding).
    #[arg(long, value_name = "DIR", default_value = ".vouch/cache")]
    cache: PathBuf,
    /// Do not read or write the embedding cache.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    report: ReportArgs,
}

/// The pairs of an evaluation and where they came from: on LFW's protocol also each pair's
/// fold and the number of folds.
struct Dataset {
    description: FaceDataset,
    table: PairTable,
    lfw_folds: Option<(Vec<usize>, usize)>,
}

fn face_dataset(args: &EvalFaceArgs) -> Result<Dataset> {
    // Checked here: clap's `requires` is not enforced beside the required dataset group.
    if args.pairs_of.is_some() && args.identities.is_none() {
        anyhow::bail!(
            "--pairs-of chooses pairs of a folder per identity: use it with --identities"
        );
    }
    let list_dir = |list: &Path| list.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Some(pairs_txt) = &args.lfw {
        let root = args.images.clone().unwrap_or_else(|| list_dir(pairs_txt));
        let lfw = vouch::eval::lfw::read_lfw_pairs(pairs_txt, &root)?;
        let pairs = lfw.all_pairs();
        let description = FaceDataset::Lfw {
            pairs_file: pairs_txt.clone(),
            images: root,
            folds: lfw.folds.len(),
            pairs: pairs.len(),
        };
        return Ok(Dataset {
            description,
            table: PairTable::from_labelled(&pairs, IdentityRule::ParentFolder)?,
            lfw_folds: Some((lfw.iter().map(|(k, _)| k).collect(), lfw.folds.len())),
        });
    }
    if let Some(root) = &args.identities {
        let found = vouch::eval::identities::read_identity_pairs(
            root,
            &args.pairs_of.clone().unwrap_or_default(),
            args.max_impostors,
            args.seed,
        )?;
        return Ok(Dataset {
            description: FaceDataset::Identities {
                root: root.clone(),
                counts: found.counts,
            },
            table: found.table,
            lfw_folds: None,
        });
    }
    let root = args
        .images
        .clone()
        .unwrap_or_else(|| list_dir(&args.pairs[0]));
    let lists: Vec<&Path> = args.pairs.iter().map(PathBuf::as_path).collect();
    let pairs = vouch::eval::read_pair_csv(&lists, &root)?;
    Ok(Dataset {
        description: FaceDataset::PairCsv {
            lists: args.pairs.clone(),
            images: root,
            pairs: pairs.len(),
        },
        table: PairTable::from_labelled(&pairs, IdentityRule::GenuineComponents)?,
        lfw_folds: None,
    })
}

/// The configuration with `face.embedder` and `face.fused_embedders` set from `--face-models`.
pub(crate) fn with_face_models(config: ValidConfig, names: &[String]) -> Result<ValidConfig> {
    let Some((first, rest)) = names.split_first() else {
        return Ok(config);
    };
    let mut config = config.into_inner();
    config.face.embedder = first.clone();
    config.face.fused_embedders = rest.to_vec();
    Ok(config.validate()?)
}

/// Where the fused score of a face evaluation comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FusionSource {
    /// Fitted on the evaluated pairs, cross-fitted over identities (or LFW's folds).
    CrossFitted,
    /// The fused calibration in force, fitted elsewhere.
    Calibrated,
}

pub(crate) fn run(args: EvalFaceArgs, config: ValidConfig) -> Result<()> {
    let config = with_face_models(config, &args.face_models)?;
    let Dataset {
        description,
        table,
        lfw_folds,
    } = face_dataset(&args)?;
    let engine = Engine::new(config)?;
    let embedders: Vec<&Embedder> = std::iter::once(engine.face().embedder())
        .chain(engine.face().fused_embedders())
        .collect();
    let models: Vec<String> = embedders.iter().map(|e| e.spec().id()).collect();
    out!("{}", description.description());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let caches: Option<Vec<EmbeddingCache>> = (!args.no_cache).then(|| {
        embedders
            .iter()
            .map(|e| EmbeddingCache::for_embedder(&args.cache, &engine, e))
            .collect()
    });
    let bar = progress(table.images.len(), "embedding");
    let acquired = embed_images(
        &engine,
        &embedders,
        &table.images,
        caches.as_deref(),
        threads,
        &|| bar.inc(1),
    );
    bar.finish_and_clear();
    let bar = progress(table.pairs.len(), "scoring");
    let scores = score_table(&table, acquired, models.clone(), threads, &|n| {
        bar.inc(n as u64)
    });
    bar.finish_and_clear();

    let mut notes = Vec::new();
    let fusion = if models.len() > 1 {
        let fitted = match (&lfw_folds, args.fusion) {
            (_, FusionSource::Calibrated) => {
                let spaces: Vec<String> = embedders
                    .iter()
                    .map(|e| e.spec().embedding_space())
                    .collect();
                let calibrations =
                    vouch::score::Calibrations::with_files(&engine.config().decisions.calibration)?;
                calibrations
                    .get(&vouch::score::fused_model_id(&spaces))
                    .and_then(|c| fuse_as_calibrated(&table, &scores, &spaces, c))
            }
            (Some((fold_of_pair, _)), _) => fuse_across_lfw_folds(&table, &scores, fold_of_pair),
            (None, _) => fuse_across_identities(&table, &scores),
        };
        match fitted {
            Ok(fusion) => Some(fusion),
            // Asked for by name, the calibrated fusion is no optional extra.
            Err(e) if args.fusion == FusionSource::Calibrated => return Err(e.into()),
            Err(e) => {
                notes.push(format!("no fusion: {}", e.message()));
                None
            }
        }
    } else {
        None
    };
    let results = measure(&table, &scores, fusion.as_ref())?;
    let models = FaceModels {
        detector: engine.face().detector().spec().id(),
        embedders: models,
    };
    let mut report = FaceReport::new(
        models,
        description,
        Acquisition::of(&scores),
        results,
        fusion,
        notes,
    )?;
    if let Some((fold_of_pair, folds)) = &lfw_folds {
        for m in 0..scores.models.len() {
            let accuracy = lfw_accuracy(&table, fold_of_pair, *folds, |p| scores.score(m, p))?;
            report.set_lfw_accuracy(m, accuracy);
        }
        if let Some(fusion) = &report.fusion {
            let accuracy = lfw_fused_accuracy(&table, &scores, fusion, fold_of_pair, *folds)?;
            report.set_lfw_accuracy(scores.models.len(), accuracy);
        }
    }
    print_acquisition(&report)?;
    print_results(&report)?;
    finish(&args.report, &report)?;
    if let Some(dir) = &args.report.out {
        // Three passes: pairs.csv, then scores.csv's genuine and impostor halves.
        let bar = progress(3 * table.pairs.len(), "writing pairs and scores");
        let files = write_face_scores(dir, &table, &scores, report.fusion.as_ref(), &|n| {
            bar.inc(n as u64)
        })?;
        bar.finish_and_clear();
        out!(
            "pairs and scores written to {} ({})",
            dir.display(),
            files
                .iter()
                .map(|f| crate::file_name(f))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Each model's figures, then the fusion's, with a progress bar.
fn measure(
    table: &PairTable,
    scores: &FaceScores,
    fusion: Option<&FaceFusion>,
) -> Result<Vec<ScoreResult>> {
    let bar = progress(
        scores.models.len() + usize::from(fusion.is_some()),
        "measuring (subjects bootstrap)",
    );
    let mut results = Vec::new();
    for (m, name) in scores.models.iter().enumerate() {
        let labelled = scores.subject_scores(table, |p| scores.score(m, p))?;
        results.push(ScoreResult::of(name.clone(), &labelled));
        bar.inc(1);
    }
    if let Some(fusion) = fusion {
        let labelled = scores.subject_scores(table, |p| fusion.score(p))?;
        results.push(ScoreResult::of("fusion".to_string(), &labelled));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(results)
}

/// Each result's figures, the fusion's last, after how it was fitted.
fn print_results(report: &FaceReport) -> Result<()> {
    for r in &report.results {
        out!("");
        if r.name == "fusion"
            && let Some(f) = &report.fusion
        {
            out!("fusion of {} ({})", f.models.join(" + "), f.protocol);
            for fit in &f.fits {
                out!(
                    "  fit without fold(s) {:?} on {} genuine / {} impostor pairs: {}",
                    fit.held_out,
                    fit.genuine,
                    fit.impostor,
                    fit.fusion.describe()
                );
            }
        } else {
            out!("{}", r.name);
        }
        print_verification(&r.summary)?;
        if let Some(a) = &r.lfw_accuracy {
            out!(
                "LFW {}-fold accuracy {:.2} % ± {:.2} (standard error; threshold chosen on the other folds; {} fold(s) measured)",
                a.per_fold.len(),
                100.0 * a.mean,
                100.0 * a.std_error,
                a.measured_folds
            );
        }
    }
    Ok(())
}

fn print_acquisition(report: &FaceReport) -> Result<()> {
    let failures = &report.acquisition.failures;
    out!(
        "pairs scored: {} genuine, {} impostor; {} pair(s) skipped, {} image(s) failed to acquire",
        report.summary.genuine,
        report.summary.impostor,
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
