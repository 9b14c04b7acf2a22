//! `vouch eval passphrase`: spoken passphrases on any `{digit}_{speaker}_{take}.wav` folder
//! (genuine acceptance, impostor acceptance, replay acceptance).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use vouch::ValidConfig;
use vouch::eval::passphrase::{Heads, PassphraseModels, PassphraseProtocol, evaluate_passphrase};
use vouch::eval::report::{PassphraseEvalReport, rate_text};
use vouch::voice::digit_head::DigitHead;

use super::{ReportArgs, finish};
use crate::progress;
use crate::speakers::{ModelChoice, NormChoice, speaker_model};

#[derive(Args)]
pub(crate) struct EvalPassphraseArgs {
    /// A folder of `{digit}_{speaker}_{take}.wav` recordings at any sample rate, e.g.
    /// ../shared/data/fsdd/recordings.
    dir: PathBuf,
    /// Enrollment sequences "0 1 2 … 9" per speaker, from their lowest-numbered takes.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    enroll_takes: u32,
    /// A folder of digit heads trained without each speaker (`{speaker}.json`, from
    /// `scripts/train_digit_head.py --held-out-heads`) instead of the built-in head.
    #[arg(long, value_name = "DIR")]
    heads: Option<PathBuf>,
    /// Speaker model; repeat to fuse several (`--model encoder --model gmm`: their scores
    /// standardised and fused by a logistic regression fitted on the calibration phrases).
    #[arg(long, value_enum, default_values_t = [ModelChoice::Encoder])]
    model: Vec<ModelChoice>,
    /// UBM file for --model gmm [default: gmm-ubm.vubm in the model directory].
    #[arg(long, value_name = "FILE")]
    ubm: Option<PathBuf>,
    /// Trials of each kind per speaker.
    #[arg(long, default_value_t = 50)]
    phrases: usize,
    /// Digits per passphrase.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(4..=16))]
    length: u32,
    /// Impostor acceptance the speaker threshold is set at, on the calibration phrases.
    #[arg(long, default_value_t = 0.01)]
    target_fmr: f64,
    /// Recognised digits that may differ from the challenge [default: decisions.max_digit_errors].
    #[arg(long)]
    max_digit_errors: Option<usize>,
    /// Seed of the trial construction.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    report: ReportArgs,
}

pub(crate) fn run(args: EvalPassphraseArgs, config: ValidConfig) -> Result<()> {
    let heads = match &args.heads {
        Some(dir) => Heads::held_out(dir)?,
        None => Heads::Builtin(DigitHead::builtin()?),
    };
    let protocol = PassphraseProtocol {
        enroll_takes: args.enroll_takes as usize,
        phrases_per_speaker: args.phrases,
        length: args.length as usize,
        target_fmr: args.target_fmr,
        max_digit_errors: args
            .max_digit_errors
            .unwrap_or(config.decisions.max_digit_errors),
        seed: args.seed,
        ..PassphraseProtocol::default()
    };
    let engine = vouch::Engine::new(config.clone())?;
    let speakers = args
        .model
        .iter()
        .map(|m| speaker_model(*m, args.ubm.as_deref(), NormChoice::S, config.clone()))
        .collect::<Result<Vec<_>>>()?;
    let speaker_refs: Vec<&dyn vouch::voice::SpeakerModel> =
        speakers.iter().map(|s| s.as_ref()).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bar = progress(0, "passphrase trials");
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {pos} done ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let models = PassphraseModels {
        speakers: &speaker_refs,
        embedder: engine.speech_embedder()?,
        heads: &heads,
    };
    let report = evaluate_passphrase(&args.dir, models, &protocol, threads, &|| bar.inc(1));
    bar.finish_and_clear();
    let report = report?;
    let p = &report.protocol;
    out!("speaker model {}", report.model_id);
    out!("digit head    {}", report.digit_head);
    if let Some(f) = &report.fusion {
        out!(
            "fusion        {} (scores standardised by the calibration impostors)",
            f.describe()
        );
    }
    out!(
        "protocol      {} enrollment sequence(s) \"0 1 2 … 9\" per speaker from the lowest takes; phrases of {} digits from the other takes, {} s gaps; speaker threshold {:.4} at FMR {} on the calibration phrases (speaker EER there {:.2} %); at most {} digit(s) may differ",
        p.enroll_takes,
        p.length,
        p.gap_seconds,
        report.speaker_threshold,
        p.target_fmr,
        100.0 * report.calibration_eer,
        p.max_digit_errors
    );
    out!(
        "speakers      {} evaluated, {} skipped",
        report.speakers.len(),
        report.skipped_speakers.len()
    );
    for s in &report.skipped_speakers {
        out!("  skipped {}: {}", s.speaker, s.reason);
    }
    for (name, s) in [
        ("genuine", &report.genuine),
        ("impostor", &report.impostor),
        ("replay", &report.replay),
    ] {
        out!(
            "{name:<13} accepted {} — words recognised {}, token-count refusals {}",
            rate_text(&s.accepted),
            rate_text(&s.words_correct),
            s.token_count_errors
        );
    }
    out!(
        "speaker EER   {:.2} % (speaker scores alone, genuine vs impostor phrases)",
        100.0 * report.speaker_eer
    );
    finish(&args.report, &PassphraseEvalReport::new(report)?)
}
