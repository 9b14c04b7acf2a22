//! `vouch eval passphrase`: spoken passphrases on the Free Spoken Digit Dataset (genuine
//! acceptance, impostor acceptance, replay rejection).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use vouch::ValidConfig;
use vouch::eval::passphrase::{FsddProtocol, KindSummary, evaluate_fsdd};
use vouch::eval::report::PassphraseEvalReport;

use super::{ReportArgs, finish};
use crate::progress;
use crate::speakers::{ModelChoice, NormChoice, speaker_model};

#[derive(Args)]
pub(crate) struct EvalPassphraseArgs {
    /// The FSDD recordings folder ({digit}_{speaker}_{take}.wav), e.g.
    /// ../shared/data/fsdd/recordings.
    dir: PathBuf,
    /// Speaker model.
    #[arg(long, value_enum, default_value_t = ModelChoice::Encoder)]
    model: ModelChoice,
    /// UBM file for --model gmm [default: gmm-ubm.vubm in the model directory].
    #[arg(long, value_name = "FILE")]
    ubm: Option<PathBuf>,
    /// Trials of each kind per speaker.
    #[arg(long, default_value_t = 50)]
    phrases: usize,
    /// Takes enrolled per digit (takes 5 onwards; the threshold is calibrated on the takes
    /// after them, up to 49).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=30))]
    enroll_takes: u32,
    /// Digits per passphrase.
    #[arg(long, default_value_t = 6)]
    length: usize,
    /// Seed of the trial construction.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    report: ReportArgs,
}

pub(crate) fn run(args: EvalPassphraseArgs, config: ValidConfig) -> Result<()> {
    let model = speaker_model(args.model, args.ubm.as_deref(), NormChoice::S, config)?;
    let protocol = FsddProtocol {
        phrases_per_speaker: args.phrases,
        enroll_takes: 5..5 + args.enroll_takes,
        calibration_takes: 5 + args.enroll_takes..50,
        length: args.length,
        seed: args.seed,
        ..FsddProtocol::default()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bar = progress(0, "passphrase trials");
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {pos} done ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let report = evaluate_fsdd(&args.dir, model.as_ref(), &protocol, threads, &|| {
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let p = &report.protocol;
    out!("model        {}", report.model_id);
    out!(
        "protocol     digits and voiceprint enrolled on takes {}–{}; phrases of {} digits from takes {}–{}, {} s gaps; threshold calibrated on takes {}–{}",
        p.enroll_takes.start,
        p.enroll_takes.end - 1,
        p.length,
        p.probe_takes.start,
        p.probe_takes.end - 1,
        p.gap_seconds,
        p.calibration_takes.start,
        p.calibration_takes.end - 1
    );
    out!(
        "threshold    {:.4} (speaker EER on the calibration phrases {:.2} %)",
        report.speaker_threshold,
        100.0 * report.calibration_eer
    );
    let line = |name: &str, s: &KindSummary, verb: &str, rate: f64| -> String {
        format!(
            "{name:<12} {:>6.2} % {verb} ({} of {}; digits heard right {}, token-count refusals {})",
            100.0 * rate,
            if verb == "accepted" {
                s.accepted
            } else {
                s.trials - s.accepted
            },
            s.trials,
            s.heard_correctly,
            s.token_count_errors
        )
    };
    let rate = |n: usize, d: usize| n as f64 / d.max(1) as f64;
    out!(
        "{}",
        line(
            "genuine",
            &report.genuine,
            "accepted",
            rate(report.genuine.accepted, report.genuine.trials)
        )
    );
    out!(
        "{}",
        line(
            "impostor",
            &report.impostor,
            "accepted",
            rate(report.impostor.accepted, report.impostor.trials)
        )
    );
    out!(
        "{}",
        line(
            "replay",
            &report.replay,
            "rejected",
            rate(
                report.replay.trials - report.replay.accepted,
                report.replay.trials
            )
        )
    );
    out!(
        "speaker EER  {:.2} % (speaker scores alone, genuine vs impostor phrases)",
        100.0 * report.speaker_eer
    );
    finish(&args.report, &PassphraseEvalReport::new(report)?)
}
