//! `vouch eval voice`: speaker verification, every pair of SPEAKER/ recordings or a trial
//! list.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use vouch::ValidConfig;
use vouch::eval::report::VoiceReport;

use super::{ReportArgs, finish, print_verification};
use crate::progress;
use crate::speakers::{ModelChoice, NormChoice, speaker_model};

#[derive(Args)]
#[command(group(clap::ArgGroup::new("voice_data").required(true).args(["dir", "trials"])))]
pub(crate) struct EvalVoiceArgs {
    /// Folder of SPEAKER/…/*.flac recordings, every pair scored, e.g.
    /// ../shared/data/librispeech/test-other.
    dir: Option<PathBuf>,
    /// A trial list instead: CSV with enroll (recordings separated by `;`), probe and label
    /// (target/nontarget) columns.
    #[arg(long, value_name = "CSV")]
    trials: Option<PathBuf>,
    /// Folder the trial list's paths are relative to [default: the list's folder].
    #[arg(long, value_name = "DIR", requires = "trials")]
    audio: Option<PathBuf>,
    /// Speaker model; repeat to fuse several on a folder of speakers (`--model encoder
    /// --model gmm`: fused by two-fold cross-validation over the speakers, each model reported
    /// on the same pairs).
    #[arg(long, value_enum, default_values_t = [ModelChoice::Encoder])]
    model: Vec<ModelChoice>,
    /// UBM file for --model gmm [default: gmm-ubm.vubm in the model directory].
    #[arg(long, value_name = "FILE")]
    ubm: Option<PathBuf>,
    /// Score normalisation for --model gmm.
    #[arg(long, value_enum, default_value_t = NormChoice::S)]
    norm: NormChoice,
    #[command(flatten)]
    report: ReportArgs,
}

pub(crate) fn run(args: EvalVoiceArgs, config: ValidConfig) -> Result<()> {
    let models = args
        .model
        .iter()
        .map(|m| speaker_model(*m, args.ubm.as_deref(), args.norm, config.clone()))
        .collect::<Result<Vec<_>>>()?;
    if models.len() > 1 && args.trials.is_some() {
        anyhow::bail!("several --model are fused on a folder of speakers, not on a trial list");
    }
    let model = &models[0];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (scores, failures, skipped, protocol) = if let Some(list) = &args.trials {
        let root = args
            .audio
            .clone()
            .unwrap_or_else(|| list.parent().map(Path::to_path_buf).unwrap_or_default());
        let trials = vouch::eval::voice::read_trials(list, &root)?;
        let protocol = format!("trial list {} ({} trials)", list.display(), trials.len());
        out!("{protocol}");
        let bar = progress(0, "scoring");
        let scored =
            vouch::eval::voice::score_trials(model.as_ref(), &trials, threads, &|| bar.inc(1))?;
        bar.finish_and_clear();
        (
            scored.scores,
            scored.failures,
            scored.trials_skipped,
            protocol,
        )
    } else {
        let dir = args.dir.as_deref().unwrap_or(Path::new("."));
        let recordings = vouch::eval::voice::speaker_recordings(dir)?;
        let speakers: std::collections::BTreeSet<_> =
            recordings.iter().map(|r| &r.speaker).collect();
        let protocol = format!(
            "{}: {} recordings of {} speakers; every pair: enroll on the earlier recording (sorted path order), probe with the later",
            dir.display(),
            recordings.len(),
            speakers.len()
        );
        out!("{protocol}");
        let bar = progress(2 * recordings.len() * models.len(), "scoring");
        if models.len() > 1 {
            let refs: Vec<&dyn vouch::voice::SpeakerModel> =
                models.iter().map(|m| m.as_ref()).collect();
            let fused =
                vouch::eval::voice::score_all_pairs_fused(&refs, &recordings, threads, &|| {
                    bar.inc(1)
                })?;
            bar.finish_and_clear();
            for single in &fused.per_model {
                let set = single.score_set()?;
                out!(
                    "{:<40} EER {:.2} % on the within-half pairs",
                    single.model_id,
                    100.0 * vouch::eval::metrics::eer(&set).rate
                );
            }
            for (k, f) in fused.folds.iter().enumerate() {
                out!(
                    "fusion fitted on half {k}: {} (scores standardised by that half's impostors)",
                    f.describe()
                );
            }
            let protocol = format!(
                "{protocol}; pairs within two halves of the speakers (alternating in name order), each scored by the fusion fitted on the other half"
            );
            (fused.fused, Vec::new(), 0, protocol)
        } else {
            let scores =
                vouch::eval::voice::score_all_pairs(model.as_ref(), &recordings, threads, &|| {
                    bar.inc(1)
                })?;
            bar.finish_and_clear();
            (scores, Vec::new(), 0, protocol)
        }
    };
    let report = VoiceReport::new(protocol, scores, failures, skipped)?;
    out!("model      {}", report.model);
    out!(
        "trials     {} genuine, {} impostor; {} skipped, {} recording(s) failed",
        report.summary.genuine,
        report.summary.impostor,
        report.trials_skipped,
        report.failures.len()
    );
    for f in report.failures.iter().take(20) {
        out!("  failed: {} ({})", f.image.display(), f.kind);
    }
    print_verification(&report.summary)?;
    finish(&args.report, &report)
}
