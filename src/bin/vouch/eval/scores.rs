//! `vouch eval scores`: the metrics of a score file made elsewhere.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use vouch::eval::report::ScoresReport;

use super::{ReportArgs, finish, print_verification};

#[derive(Args)]
pub(crate) struct EvalScoresArgs {
    /// The score file: a header, then `label,score` lines (genuine/impostor, target/nontarget
    /// or 1/0).
    file: PathBuf,
    #[command(flatten)]
    report: ReportArgs,
}

pub(crate) fn run(args: EvalScoresArgs) -> Result<()> {
    let rows = vouch::eval::scores::read_scores(&args.file)?;
    let set = vouch::eval::scores::verification_set(&rows)?;
    let report = ScoresReport::new(args.file, &set);
    out!("{}", report.source.display());
    print_verification(&report.summary)?;
    finish(&args.report, &report)
}
