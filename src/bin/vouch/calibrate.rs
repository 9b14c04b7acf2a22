//! `vouch calibrate`: labelled scores → a calibration file (thresholds at target FMRs and the
//! score → LLR map the engine's decisions use); `calibrate liveness` is in
//! `calibrate_liveness.rs`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use vouch::score::{Calibration, DEFAULT_TARGETS};
use vouch::stats::ScoreSet;
use vouch::{Engine, ValidConfig};

#[derive(Subcommand)]
pub(crate) enum CalibrateCommand {
    /// Calibrate the face embedder on labelled pairs (CSV with file_x, file_y, decision); with
    /// several `--model`, the calibrated fusion of their scores (what a policy tier with
    /// `face_fusion = true` needs).
    Face {
        /// Pair lists. Repeat for several.
        #[arg(long = "pairs", value_name = "CSV", required = true)]
        pairs: Vec<PathBuf>,
        /// Face embedder (manifest name); repeat to fuse several, in the order of
        /// `face.embedder` then `face.fused_embedders` [default: face.embedder alone].
        #[arg(long = "model", value_name = "NAME")]
        models: Vec<String>,
        /// Folder the image paths are relative to [default: the first list's folder].
        #[arg(long, value_name = "DIR")]
        images: Option<PathBuf>,
        /// Target FMRs [default: 1e-2 … 1e-6].
        #[arg(long = "target", value_name = "FMR")]
        targets: Vec<f64>,
        /// Where to write the calibration (TOML).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Calibrate any model from a score file made elsewhere (`label,score` lines:
    /// genuine/impostor), e.g. the scores.csv of a `vouch eval … --out` report.
    Scores {
        /// The score file.
        file: PathBuf,
        /// The model the scores come from, as templates record it (`name@sha256-prefix`; see
        /// `vouch models list`).
        #[arg(long)]
        model: String,
        /// Target FMRs [default: 1e-2 … 1e-6].
        #[arg(long = "target", value_name = "FMR")]
        targets: Vec<f64>,
        /// Where to write the calibration (TOML).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Learn the fusion of the liveness models' scores on labelled bona fide and attack
    /// presentations, and the threshold for a target APCER (a `[liveness] fusion` file).
    Liveness(crate::calibrate_liveness::CalibrateLivenessArgs),
    /// Calibrate the speaker score of spoken passphrases: the calibration phrases of the
    /// passphrase protocol (`vouch eval passphrase`: each speaker enrolled from their lowest
    /// takes, phrases from every other remaining take). With several speaker models, their
    /// fusion is fitted too and written with the thresholds of the fused score.
    Passphrase {
        /// A folder of `{digit}_{speaker}_{take}.wav` (e.g. FSDD's `recordings`).
        dir: PathBuf,
        /// Speaker model; repeat to fuse several [default: voice.speaker_models].
        #[arg(long, value_enum)]
        model: Vec<crate::speakers::ModelChoice>,
        /// UBM file for --model gmm [default: voice.ubm].
        #[arg(long, value_name = "FILE")]
        ubm: Option<PathBuf>,
        /// Target FMRs [default: 1e-2 … 1e-6].
        #[arg(long = "target", value_name = "FMR")]
        targets: Vec<f64>,
        /// Where to write the calibration (TOML).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

pub(crate) fn run(cmd: CalibrateCommand, config: ValidConfig) -> Result<()> {
    let (calibration, out) = match cmd {
        CalibrateCommand::Liveness(args) => return crate::calibrate_liveness::run(args, config),
        CalibrateCommand::Face {
            pairs,
            models,
            images,
            targets,
            out,
        } => {
            let image_dir = images
                .unwrap_or_else(|| pairs[0].parent().map(Path::to_path_buf).unwrap_or_default());
            let lists: Vec<&Path> = pairs.iter().map(PathBuf::as_path).collect();
            let labelled = vouch::eval::read_pair_csv(&lists, &image_dir)?;
            let models = if models.is_empty() {
                vec![config.face.embedder.clone()]
            } else {
                models
            };
            let scored = face_scores(&config, &models, &labelled)?;
            let source = format!(
                "{} genuine / {} impostor pairs of {} ({} pair(s) skipped: failure to acquire)",
                scored.rows.iter().filter(|r| r.1).count(),
                scored.rows.iter().filter(|r| !r.1).count(),
                names(&pairs),
                scored.skipped
            );
            let calibration = if scored.models.len() == 1 {
                let set = ScoreSet::new(scored.column(0, true), scored.column(0, false))?;
                fit(&scored.models[0], &source, &set, &targets)?
            } else {
                let rows: Vec<(&[f64], bool)> = scored
                    .rows
                    .iter()
                    .map(|(s, g)| (s.as_slice(), *g))
                    .collect();
                let fusion = vouch::score::ScoreFusion::fit(&scored.models, &rows)?;
                out!("fusion     {}", fusion.describe());
                let fused = |genuine: bool| -> Vec<f64> {
                    rows.iter()
                        .filter(|r| r.1 == genuine)
                        .map(|(s, _)| fusion.score(s))
                        .collect()
                };
                let set = ScoreSet::new(fused(true), fused(false))?;
                Calibration::fit_fused(fusion, &source, &set, &with_defaults(&targets))?
            };
            (calibration, out)
        }
        CalibrateCommand::Scores {
            file,
            model,
            targets,
            out,
        } => {
            let set =
                vouch::eval::scores::verification_set(&vouch::eval::scores::read_scores(&file)?)?;
            let source = format!(
                "{} genuine / {} impostor scores of {}",
                set.genuine().len(),
                set.impostor().len(),
                file.display()
            );
            (fit(&model, &source, &set, &targets)?, out)
        }
        CalibrateCommand::Passphrase {
            dir,
            model,
            ubm,
            targets,
            out,
        } => {
            use crate::speakers::{ModelChoice, NormChoice, speaker_model};
            use vouch::eval::passphrase::{
                Heads, PassphraseModels, PassphraseProtocol, evaluate_passphrase,
            };
            use vouch::voice::SpeakerModelKind;
            let engine = vouch::Engine::new(config.clone())?;
            let choices: Vec<ModelChoice> = if model.is_empty() {
                config
                    .voice
                    .speaker_models
                    .iter()
                    .map(|k| match k {
                        SpeakerModelKind::Encoder => ModelChoice::Encoder,
                        SpeakerModelKind::Gmm => ModelChoice::Gmm,
                    })
                    .collect()
            } else {
                model
            };
            let speakers = choices
                .iter()
                .map(|m| speaker_model(*m, ubm.as_deref(), NormChoice::S, config.clone()))
                .collect::<Result<Vec<_>>>()?;
            let speaker_refs: Vec<&dyn vouch::voice::SpeakerModel> =
                speakers.iter().map(|s| s.as_ref()).collect();
            let heads = Heads::Builtin(vouch::voice::digit_head::DigitHead::builtin()?);
            let protocol = PassphraseProtocol::default();
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let bar = crate::progress(0, "passphrase trials");
            let models = PassphraseModels {
                speakers: &speaker_refs,
                embedder: engine.speech_embedder()?,
                heads: &heads,
            };
            let report = evaluate_passphrase(&dir, models, &protocol, threads, &|| bar.inc(1))?;
            bar.finish_and_clear();
            let scores = &report.calibration_scores;
            let source = format!(
                "passphrases of {} digits: voiceprint from {} enrollment sequences \"0 1 2 … 9\" (each speaker's lowest takes), {} genuine / {} impostor phrases from the calibration takes (every other remaining take) of {}",
                protocol.length,
                protocol.enroll_takes,
                scores.genuine().len(),
                scores.impostor().len(),
                dir.display()
            );
            let calibration = match report.fusion {
                Some(fusion) => {
                    out!("fusion     {}", fusion.describe());
                    Calibration::fit_fused(fusion, &source, scores, &with_defaults(&targets))?
                }
                None => fit(&report.model_id, &source, scores, &targets)?,
            };
            (calibration, out)
        }
    };
    print(&calibration)?;
    let text = format!(
        "# Written by `vouch calibrate`. Thresholds marked extrapolated come from a normal fit\n# of the impostor tail: the data could not measure them.\n{}",
        calibration.to_toml()?
    );
    std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    out!("calibration written to {}", out.display());
    Ok(())
}

/// Each model's score of every labelled pair that every model could score.
struct FaceScores {
    /// The models' embedding spaces, in the order asked.
    models: Vec<String>,
    /// Per pair: one score per model, and whether it is genuine.
    rows: Vec<(Vec<f64>, bool)>,
    /// Pairs left out: an image failed to acquire.
    skipped: usize,
}

impl FaceScores {
    fn column(&self, model: usize, genuine: bool) -> Vec<f64> {
        self.rows
            .iter()
            .filter(|r| r.1 == genuine)
            .map(|r| r.0[model])
            .collect()
    }
}

/// Scores the pairs by each face embedder as `vouch eval face` does (each image detected
/// and aligned once, then embedded by every model), keeping the pairs every model scored.
fn face_scores(
    config: &ValidConfig,
    models: &[String],
    pairs: &[vouch::eval::LabelledPair],
) -> Result<FaceScores> {
    use vouch::eval::face::{IdentityRule, PairTable, embed_images, score_table};
    let config = crate::eval::face::with_face_models(config.clone(), models)?;
    let engine = Engine::new(config)?;
    let face = engine.face();
    let embedders: Vec<&vouch::face::Embedder> = std::iter::once(face.embedder())
        .chain(face.fused_embedders())
        .collect();
    let ids: Vec<String> = embedders
        .iter()
        .map(|e| e.spec().embedding_space())
        .collect();
    let table = PairTable::from_labelled(pairs, IdentityRule::GenuineComponents)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bar = crate::progress(table.images.len(), "embedding");
    let acquired = embed_images(&engine, &embedders, &table.images, None, threads, &|| {
        bar.inc(1)
    });
    bar.finish_and_clear();
    let scores = score_table(&table, acquired, ids.clone(), threads, &|_| {});
    let rows: Vec<(Vec<f64>, bool)> = (0..table.pairs.len())
        .filter(|&p| scores.scored(p))
        .map(|p| {
            let row = (0..ids.len()).filter_map(|m| scores.score(m, p)).collect();
            (row, table.pairs[p].same)
        })
        .collect();
    Ok(FaceScores {
        models: ids,
        skipped: pairs.len() - rows.len(),
        rows,
    })
}

fn names(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| {
            f.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

fn with_defaults(targets: &[f64]) -> Vec<f64> {
    if targets.is_empty() {
        DEFAULT_TARGETS.to_vec()
    } else {
        targets.to_vec()
    }
}

fn fit(model: &str, source: &str, scores: &ScoreSet, targets: &[f64]) -> Result<Calibration> {
    Ok(Calibration::fit(
        model,
        source,
        scores,
        &with_defaults(targets),
    )?)
}

fn print(c: &Calibration) -> Result<()> {
    out!("model      {}", c.model);
    out!("source     {}", c.source);
    out!(
        "LLR        {:.3} × score {:+.3} (0 at score {:.4})",
        c.llr_slope,
        c.llr_offset,
        -c.llr_offset / c.llr_slope
    );
    out!("FMR        threshold  95 % interval      FNMR      how");
    for p in &c.points {
        let interval = p
            .threshold_interval
            .map_or_else(|| "–".to_string(), |[lo, hi]| format!("[{lo:.4}, {hi:.4}]"));
        out!(
            "{:<10.0e} {:<10.4} {:<18} {:<8.2}% {}",
            p.fmr,
            p.threshold,
            interval,
            100.0 * p.fnmr,
            if p.extrapolated {
                "extrapolated (normal fit of the impostor tail)"
            } else {
                "measured"
            }
        );
    }
    Ok(())
}
