//! `vouch eval digits`: spoken-digit recognition on any `{digit}_{speaker}_{take}.wav` folder.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use vouch::ValidConfig;
use vouch::eval::digits::evaluate_digits;
use vouch::eval::report::{DigitsReport, rate_text};
use vouch::voice::digit_head::DigitHead;

use super::{ReportArgs, finish};

#[derive(Args)]
pub(crate) struct EvalDigitsArgs {
    /// A folder of `{digit}_{speaker}_{take}.wav` recordings, one spoken digit each, at any
    /// sample rate.
    dir: PathBuf,
    /// A digit head file (`scripts/train_digit_head.py --head`) instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    head: Option<PathBuf>,
    /// Adapt the head to each speaker with their N lowest-numbered takes of every digit (as a
    /// customer's enrollment would), judging only their other takes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    adapt_takes: usize,
    /// Recordings judged at a time.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[command(flatten)]
    report: ReportArgs,
}

pub(crate) fn run(args: EvalDigitsArgs, config: ValidConfig) -> Result<()> {
    let (head, name) = match &args.head {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            (DigitHead::from_json(&text)?, path.display().to_string())
        }
        None => (DigitHead::builtin()?, "built-in".to_string()),
    };
    let engine = vouch::Engine::new(config)?;
    let files = std::fs::read_dir(&args.dir)
        .with_context(|| format!("listing {}", args.dir.display()))?
        .count();
    let bar = ProgressBar::new(files as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} recordings {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = evaluate_digits(
        &engine,
        &head,
        &args.dir,
        args.adapt_takes,
        args.threads.max(1),
        &|| bar.inc(1),
    );
    bar.finish_and_clear();
    let report = DigitsReport::new(args.dir.clone(), name, summary?);
    let s = &report.summary;
    out!(
        "{}{}: {} recognised ({} skipped)",
        args.dir.display(),
        if s.adapt_takes > 0 {
            format!(", adapted with {} take(s) per digit", s.adapt_takes)
        } else {
            String::new()
        },
        rate_text(&s.correct),
        s.skipped.len()
    );
    for sp in &s.per_speaker {
        out!("  {:<16} {}", sp.speaker, rate_text(&sp.correct));
    }
    out!("confusion (rows spoken, columns recognised):");
    for (d, row) in s.confusion.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|c| format!("{c:>4}")).collect();
        out!("  {d} {}", cells.join(""));
    }
    finish(&args.report, &report)
}
