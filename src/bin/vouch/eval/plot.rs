//! `vouch eval plot`: one DET plot of the curves of several report files, read back as JSON.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use vouch::eval::plot::{DetCurve, DetLabels};

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

pub(crate) fn run(args: EvalPlotArgs) -> Result<()> {
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
