//! `vouch eval …`: datasets in, standard metrics out — on the terminal, and with `--out` as a
//! report folder (JSON, Markdown, DET plots) over `vouch::eval`.
//!
//! This file holds the [`EvalCommand`] enum, the report flags every evaluation takes
//! ([`ReportArgs`]) and the printing they share; each evaluation is a module of its own. The
//! reports themselves (JSON schema, Markdown, DET curves, warnings) are types of
//! `vouch::eval::report`: commands gather the inputs, print, and hand the report to
//! [`finish`].

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use vouch::ValidConfig;
use vouch::eval::VerificationSummary;
use vouch::eval::report::{EvalReport, pct, pct_interval, write_report};

mod digits;
pub(crate) mod face;
pub(crate) mod liveness;
mod passphrase;
mod plot;
mod scores;
mod voice;

#[derive(Subcommand)]
pub(crate) enum EvalCommand {
    /// Face verification on labelled pairs, by each face model and their fusion: AUC, EER,
    /// minDCF, FNMR at FMR 1e-2 … 1e-5 with confidence intervals; LFW 10-fold accuracy on
    /// LFW's protocol. With --out, also every pair's scores (pairs.csv, images.csv).
    Face(face::EvalFaceArgs),
    /// Presentation-attack detection: APCER per attack type, BPCER, BPCER at APCER 1 % / 5 %.
    Liveness(liveness::EvalLivenessArgs),
    /// Speaker verification: every pair of SPEAKER/*.flac recordings, or a trial list.
    Voice(voice::EvalVoiceArgs),
    /// Spoken-digit recognition on a folder of `{digit}_{speaker}_{take}.wav` recordings:
    /// accuracy overall and per speaker, the confusion matrix.
    Digits(digits::EvalDigitsArgs),
    /// Spoken passphrases on the Free Spoken Digit Dataset: genuine acceptance, impostor
    /// acceptance, replay rejection.
    Passphrase(passphrase::EvalPassphraseArgs),
    /// Metrics of a score file made elsewhere (`label,score` lines: genuine/impostor).
    Scores(scores::EvalScoresArgs),
    /// One DET plot of the curves of several reports (report.json of `eval face`, `voice`,
    /// `scores`, `passphrase`; every attack type of `eval liveness`), e.g. to compare systems.
    Plot(plot::EvalPlotArgs),
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

pub(crate) fn run(cmd: EvalCommand, config: ValidConfig) -> Result<()> {
    match cmd {
        EvalCommand::Face(args) => face::run(args, config),
        EvalCommand::Liveness(args) => liveness::run(args, config),
        EvalCommand::Voice(args) => voice::run(args, config),
        EvalCommand::Digits(args) => digits::run(args, config),
        EvalCommand::Passphrase(args) => passphrase::run(args, config),
        EvalCommand::Scores(args) => scores::run(args),
        EvalCommand::Plot(args) => plot::run(args),
    }
}

/// AUC, EER, minDCF and the FNMR operating points, one per line.
fn print_verification(summary: &VerificationSummary) -> Result<()> {
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

/// Prints the report's warnings, writes what was asked for (`--json` file and/or `--out`
/// folder) and says where.
fn finish(args: &ReportArgs, report: &impl EvalReport) -> Result<()> {
    for w in report.warnings() {
        out!("warning: {w}");
    }
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_json()?)
            .with_context(|| format!("writing {}", path.display()))?;
        out!("report written to {}", path.display());
    }
    if let Some(dir) = &args.out {
        let written = write_report(dir, report)?;
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
