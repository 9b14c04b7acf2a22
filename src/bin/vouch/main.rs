//! `vouch`: the command-line face of the vouch library. It parses, wires and prints; every
//! decision is made by the library.
//!
//! This file holds the top-level [`Cli`] and [`Command`], `main`, the configuration loading and
//! the few helpers every command shares (`out!`, [`read`], [`file_name`], [`progress`]). Each
//! command family is a module of its own. Imports between them flow one way, with no circle:
//! `speakers` (the speaker-model flags) and `transaction` are leaves; `voice`, `eval/` and
//! `calibrate` use `speakers`; `calibrate` uses `eval::face` for its embedding loop; `voice`
//! uses `face` for the terminal id. Nothing imports `voice`, `calibrate`, `kiosk` or `demo`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vouch::{Config, ValidConfig};

/// `println!` that returns an error instead of panicking when stdout is closed early
/// (`vouch … | head`); `main` turns that error into a quiet exit.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod bench;
mod calibrate;
mod calibrate_liveness;
mod challenge;
mod demo;
mod eval;
mod face;
mod fleet;
mod keys;
mod kiosk;
mod models;
mod speakers;
mod subjects;
mod transaction;
mod trust;
mod voice;

/// Biometric verification for payment flows: face detection, matching and evaluation.
#[derive(Parser)]
#[command(name = "vouch", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory holding the model files [env: VOUCH_MODEL_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// Path of libonnxruntime.so [env: VOUCH_ORT_LIB].
    #[arg(long, global = true, value_name = "FILE")]
    ort_lib: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List, verify or fetch the models of the manifest.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Enroll and verify faces (audited decisions); detect, measure and compare them.
    #[command(subcommand)]
    Face(face::FaceCommand),
    /// Measure accuracy on labelled data.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Create receipt signing keys; verify a receipt as a payment backend would.
    #[command(subcommand)]
    Receipt(trust::ReceiptCommand),
    /// Verify the hash-chained audit log; ship it to the fleet store.
    #[command(subcommand)]
    Audit(trust::AuditCommand),
    /// Turn labelled scores into a calibration file: thresholds at target FMRs, score → LLR.
    #[command(subcommand)]
    Calibrate(calibrate::CalibrateCommand),
    /// Voice: features, speaker models, passphrase enrollment and verification.
    #[command(subcommand)]
    Voice(voice::VoiceCommand),
    /// Create and rotate the keys that encrypt templates.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// List, inspect and delete enrolled subjects (metadata only, never vectors).
    #[command(subcommand)]
    Subjects(subjects::SubjectsCommand),
    /// A fleet terminal's replica against the fleet store.
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
    /// Enroll or verify a customer interactively, as a kiosk does: camera and microphone,
    /// or image folders and recorded speech.
    #[command(subcommand)]
    Kiosk(kiosk::KioskCommand),
    /// Measure the decision path's speed on this machine.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Enroll identities from real photos and verify genuine and impostor probes.
    Demo {
        /// Data folder holding faces-deepface/ [default: $VOUCH_DATA_DIR or ../shared/data].
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Photos enrolled per identity.
        #[arg(long, default_value_t = 2)]
        enroll: usize,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("VOUCH_LOG"))
        .with_writer(std::io::stderr)
        .init();
    if let Err(err) = run(Cli::parse()) {
        // A reader that stopped early (`| head`) is not a failure of ours.
        let closed_pipe = err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
        if !closed_pipe {
            eprintln!("error: {err:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = load_config(&cli)?;
    match cli.command {
        Command::Models(cmd) => models::run(cmd, &config),
        Command::Face(cmd) => face::run(cmd, config),
        Command::Eval(cmd) => eval::run(cmd, config),
        Command::Voice(cmd) => voice::run(cmd, config),
        Command::Calibrate(cmd) => calibrate::run(cmd, config),
        Command::Receipt(cmd) => trust::run_receipt(cmd),
        Command::Audit(cmd) => trust::run_audit(cmd),
        Command::Keys(cmd) => keys::run(cmd, &config),
        Command::Subjects(cmd) => subjects::run(cmd, &config),
        Command::Fleet(cmd) => fleet::run(cmd, &config),
        Command::Kiosk(cmd) => kiosk::run(cmd, config),
        Command::Demo { data, enroll } => demo::run(config, data, enroll),
        Command::Bench(cmd) => bench::run(cmd, config.into_inner()),
    }
}

fn load_config(cli: &Cli) -> Result<ValidConfig> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::from_env()?,
    };
    if let Some(dir) = &cli.model_dir {
        config.models.dir = dir.clone();
    }
    if let Some(lib) = &cli.ort_lib {
        config.runtime.library = Some(lib.clone());
    }
    Ok(config.validate()?)
}

/// The bytes of `path`, the path named in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// A progress bar of `len` steps on stderr, titled `what`.
pub(crate) fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// The last component of `path`, or nothing.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
