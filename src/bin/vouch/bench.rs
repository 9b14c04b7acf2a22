//! `vouch bench`: the decision path's speed on this machine, through the library as a terminal
//! uses it (`vouch::eval::bench`). Prints per-stage medians and the end-to-end percentiles, or
//! the report as JSON (`e2e_ms_p50`, `stages_ms_p50`, …) for scripts such as
//! `scripts/compare_verify.py`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use vouch::Config;
use vouch::eval::bench::{VerifyBenchOptions, bench_verify};

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Time `Authenticator::verify` on one photo: enroll from it (or from --enroll photos),
    /// then verify it repeatedly in a throwaway deployment (SQLite store, keys, receipt, audit
    /// log with fsync), face and passive liveness unless --face-only.
    Verify(BenchVerifyArgs),
    /// Time 1:N scans of the in-memory gallery over synthetic unit vectors (no biometric
    /// data): the two-pass scan (8-bit integers, then floats for the contenders) beside a float
    /// scan of every template, and whether they agree.
    Identify(BenchIdentifyArgs),
}

#[derive(Args)]
pub(crate) struct BenchIdentifyArgs {
    /// Templates in the gallery.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
    templates: u64,
    /// Their dimension.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=4096))]
    dim: u32,
    /// Timed scans.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    runs: u32,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct BenchVerifyArgs {
    /// The photo to verify (JPEG or PNG).
    photo: PathBuf,
    /// Photos to enroll from instead of the photo itself.
    #[arg(long, value_name = "PHOTO", num_args = 1..)]
    enroll: Vec<PathBuf>,
    /// Timed verifications.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    runs: u32,
    /// Verifications before timing starts.
    #[arg(long, default_value_t = 5)]
    warmup: u32,
    /// The face alone, without passive liveness.
    #[arg(long)]
    face_only: bool,
    /// The face's score fused over every configured embedder (a tier with
    /// `face_fusion = true`, as the built-in large tier) instead of the embedder's alone.
    #[arg(long)]
    fused: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(cmd: BenchCommand, config: Config) -> Result<()> {
    match cmd {
        BenchCommand::Verify(args) => verify(args, config),
        BenchCommand::Identify(args) => identify(args),
    }
}

fn identify(args: BenchIdentifyArgs) -> Result<()> {
    let options = vouch::eval::bench::IdentifyBenchOptions {
        templates: args.templates as usize,
        dim: args.dim as usize,
        runs: args.runs as usize,
        ..Default::default()
    };
    let report = vouch::eval::bench::bench_identify(options)?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    out!(
        "{} synthetic templates of {} dimensions ({} bytes each in the gallery, {:.0} MiB), filled in {:.0} ms",
        options.templates,
        options.dim,
        report.bytes_per_template,
        (report.bytes_per_template * options.templates) as f64 / (1024.0 * 1024.0),
        report.build_ms
    );
    out!(
        "scan      {:.2} ms median over {} probes (two passes: 8-bit integers, then floats for the contenders)",
        report.scan_ms_p50,
        options.runs
    );
    out!(
        "float     {:.2} ms median (every template in 32-bit floats)",
        report.exhaustive_ms_p50
    );
    out!(
        "results   {}; every probe's own template found first: {}",
        if report.same_results {
            "identical to the float scan"
        } else {
            "DIFFERENT from the float scan"
        },
        report.found_every_target
    );
    Ok(())
}

fn verify(args: BenchVerifyArgs, config: Config) -> Result<()> {
    let probe = crate::read(&args.photo)?;
    let enroll = args
        .enroll
        .iter()
        .map(|p| crate::read(p))
        .collect::<Result<Vec<_>>>()?;
    let enroll_refs: Vec<&[u8]> = enroll.iter().map(Vec::as_slice).collect();
    let options = VerifyBenchOptions {
        runs: args.runs as usize,
        warmup: args.warmup as usize,
        liveness: !args.face_only,
        face_fusion: args.fused,
    };
    let bar = if args.json {
        indicatif::ProgressBar::hidden()
    } else {
        crate::progress(options.runs + options.warmup, "verifications")
    };
    let report = bench_verify(config, &probe, &enroll_refs, options, &|| bar.inc(1))
        .with_context(|| format!("benchmarking {}", args.photo.display()))?;
    bar.finish_and_clear();
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let s = &report.stages_ms_p50;
    out!(
        "{} ({}x{}, {} bytes), enrolled from {} photo(s); {} timed runs after {} warm-up; models {}",
        args.photo.display(),
        report.photo.width,
        report.photo.height,
        report.photo.bytes,
        report.enrolled_from,
        options.runs,
        options.warmup,
        report.models.join(", ")
    );
    out!("outcomes   {:?}", report.outcomes);
    out!("stage      median");
    for (name, ms) in [
        ("decode", s.decode_ms),
        ("observe", s.observe_ms),
        ("liveness", s.liveness_ms),
        ("embed", s.embed_ms),
        ("match", s.match_ms),
        ("record", s.record_ms),
        ("total", s.total_ms),
    ] {
        out!("{name:<10} {ms:.2} ms");
    }
    out!(
        "end to end {:.2} ms median, {:.2} ms p90, {:.2} ms p99",
        report.e2e_ms_p50,
        report.e2e_ms_p90,
        report.e2e_ms_p99
    );
    Ok(())
}
