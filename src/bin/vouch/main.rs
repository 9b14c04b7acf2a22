//! `vouch`: the command-line face of the vouch library. It parses, wires and prints; every
//! decision is made by the library.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vouch::models::{FetchOutcome, FetchSource, fetch_model};
use vouch::runtime::{Runtime, SessionPool};
use vouch::vault::TemplateVault;
use vouch::{Config, ValidConfig};

/// `println!` that returns an error instead of panicking when stdout is closed early
/// (`vouch … | head`); `main` turns that error into a quiet exit.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod calibrate;
mod demo;
mod eval;
mod face;
mod kiosk;
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
    Models(ModelsCommand),
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
    Keys(KeysCommand),
    /// List, inspect and delete enrolled subjects (metadata only, never vectors).
    #[command(subcommand)]
    Subjects(SubjectsCommand),
    /// Enroll or verify a customer interactively, as a kiosk does: camera and microphone,
    /// or image folders and recorded speech.
    #[command(subcommand)]
    Kiosk(kiosk::KioskCommand),
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

#[derive(Subcommand)]
enum ModelsCommand {
    /// Show the models in the manifest and whether their files are present.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check every model file's sha256 and its inputs and outputs against the manifest.
    Verify,
    /// Copy or download the model files into the model directory, verifying their sha256.
    Fetch {
        /// A directory laid out like the model directory, or an http(s) base URL.
        #[arg(long, value_name = "DIR|URL")]
        from: String,
        /// Where to put them [default: the model directory].
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key file (mode 0600) with one fresh 256-bit key.
    Generate {
        /// Id of the key [default: key-YYYYMMDD-HHMMSS].
        #[arg(long)]
        id: Option<String>,
        /// Also create a renewable-template transform key (ISO/IEC 24745).
        #[arg(long)]
        renewable: bool,
    },
    /// Add a new key, make it current, and re-seal every stored template under it.
    Rotate {
        /// Id of the new key [default: key-YYYYMMDD-HHMMSS].
        #[arg(long)]
        id: Option<String>,
    },
    /// Re-seal templates not yet under the current key (resumes an interrupted rotation).
    Reseal,
}

#[derive(Subcommand)]
enum SubjectsCommand {
    /// Every subject with its template counts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A subject's templates: model, dimension, samples, key, creation time.
    Show {
        /// Subject id.
        subject: String,
    },
    /// Delete every template of a subject.
    Delete {
        /// Subject id.
        subject: String,
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
        Command::Models(cmd) => models(cmd, &config),
        Command::Face(cmd) => face::run(cmd, config),
        Command::Eval(cmd) => eval::run(cmd, config),
        Command::Voice(cmd) => voice::run(cmd, config),
        Command::Calibrate(cmd) => calibrate::run(cmd, config),
        Command::Receipt(cmd) => trust::run_receipt(cmd),
        Command::Audit(cmd) => trust::run_audit(cmd),
        Command::Keys(cmd) => keys(cmd, &config),
        Command::Subjects(cmd) => subjects(cmd, &config),
        Command::Kiosk(cmd) => kiosk::run(cmd, config),
        Command::Demo { data, enroll } => demo::run(config, data, enroll),
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

fn models(cmd: ModelsCommand, config: &ValidConfig) -> Result<()> {
    let manifest = config.models.manifest()?;
    let dir = &config.models.dir;
    match cmd {
        ModelsCommand::List { json } => {
            if json {
                let rows: Vec<_> = manifest
                    .models
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "name": m.name, "id": m.id(), "task": format!("{:?}", m.task),
                            "file": m.file, "sha256": m.sha256, "licence": m.licence,
                            "source": m.source, "present": m.path_in(dir).is_file(),
                        })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                out!("model directory: {}", dir.display());
                out!(
                    "{:<16} {:<18} {:<36} {:<8} licence",
                    "name",
                    "task",
                    "file",
                    "present"
                );
                for m in &manifest.models {
                    let present = if m.path_in(dir).is_file() {
                        "yes"
                    } else {
                        "no"
                    };
                    out!(
                        "{:<16} {:<18} {:<36} {:<8} {}",
                        m.name,
                        format!("{:?}", m.task),
                        m.file.display(),
                        present,
                        m.licence
                    );
                }
            }
        }
        ModelsCommand::Verify => {
            let runtime = Runtime::load(&config.runtime)?;
            let mut failed = 0;
            for spec in &manifest.models {
                match SessionPool::new(&runtime, spec, dir) {
                    Ok(_) => out!("ok      {:<16} sha256 and I/O contract match", spec.name),
                    Err(e) => {
                        failed += 1;
                        out!("FAILED  {:<16} {e}", spec.name);
                    }
                }
            }
            if failed > 0 {
                bail!(
                    "{failed} of {} models failed verification",
                    manifest.models.len()
                );
            }
        }
        ModelsCommand::Fetch { from, to } => {
            let source = FetchSource::parse(&from);
            let dest = to.unwrap_or_else(|| dir.clone());
            for spec in &manifest.models {
                let outcome = fetch_model(spec, &source, &dest)?;
                let what = match outcome {
                    FetchOutcome::AlreadyPresent => "already present",
                    FetchOutcome::Copied => "copied",
                    FetchOutcome::Downloaded => "downloaded",
                };
                out!(
                    "{:<16} {what}, sha256 verified ({})",
                    spec.name,
                    spec.path_in(&dest).display()
                );
            }
        }
    }
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn new_key_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("key-{secs}")
}

fn keys(cmd: KeysCommand, config: &ValidConfig) -> Result<()> {
    use vouch::template::{Kek, KeyProvider, Keyring};
    let path = &config.keys.file;
    match cmd {
        KeysCommand::Generate { id, renewable } => {
            if path.exists() {
                bail!(
                    "{} already exists; keys are never overwritten (use `vouch keys rotate`)",
                    path.display()
                );
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let mut ring = Keyring::generate(&id.unwrap_or_else(new_key_id))?;
            if renewable {
                ring.add_transform_key()?;
            }
            ring.save(path)?;
            out!(
                "wrote {} (mode 0600): key {}{}",
                path.display(),
                ring.current_key_id(),
                if renewable {
                    " and a renewable-template transform key"
                } else {
                    ""
                }
            );
        }
        KeysCommand::Rotate { id } => {
            let mut ring = Keyring::load(path)?;
            let id = id.unwrap_or_else(new_key_id);
            ring.rotate_to(&id, Kek::generate()?)?;
            // The new key is saved before any template uses it, so no template is ever sealed
            // under a key that is not on disk.
            ring.save(path)?;
            out!("key {id} is now current in {}", path.display());
            reseal(config)?;
        }
        KeysCommand::Reseal => reseal(config)?,
    }
    Ok(())
}

fn reseal(config: &ValidConfig) -> Result<()> {
    let vault = TemplateVault::open(&config.store, &config.keys)?;
    let total: usize = vault.subjects()?.iter().map(|s| s.face + s.voice).sum();
    let bar = progress(total, "re-sealing");
    let report = vault.rotate(&mut || bar.inc(1))?;
    bar.finish_and_clear();
    out!(
        "re-sealed {} template(s) ({} changed by another writer meanwhile)",
        report.resealed,
        report.skipped
    );
    Ok(())
}

fn subjects(cmd: SubjectsCommand, config: &ValidConfig) -> Result<()> {
    let vault = TemplateVault::open(&config.store, &config.keys)?;
    match cmd {
        SubjectsCommand::List { json } => {
            let subjects = vault.subjects()?;
            if json {
                out!("{}", serde_json::to_string_pretty(&subjects)?);
            } else {
                out!(
                    "{:<32} {:>5} {:>5} {:>10}",
                    "subject",
                    "face",
                    "voice",
                    "passphrase"
                );
                for s in &subjects {
                    out!(
                        "{:<32} {:>5} {:>5} {:>10}",
                        s.subject,
                        s.face,
                        s.voice,
                        s.passphrase
                    );
                }
                out!("{} subject(s)", subjects.len());
            }
        }
        SubjectsCommand::Show { subject } => {
            let templates = vault.describe(&subject)?;
            if templates.is_empty() {
                bail!("no subject {subject:?}");
            }
            for (id, info) in templates {
                let h = &info.header;
                out!(
                    "template {id}: {} by {} ({}-d), {} sample(s), quality {:.2}, created {} (unix), key {}",
                    h.modality.as_str(),
                    h.model_id,
                    h.dimension,
                    h.samples,
                    h.quality,
                    h.created_unix,
                    info.key_id
                );
            }
        }
        SubjectsCommand::Delete { subject } => {
            let n = vault.delete_subject(&subject)?;
            if n == 0 {
                bail!("no subject {subject:?}");
            }
            out!("deleted {n} template(s) of {subject}");
        }
    }
    Ok(())
}

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

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
