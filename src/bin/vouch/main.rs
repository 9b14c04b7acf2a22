//! `vouch`: the command-line face of the vouch library. It parses, wires and prints; every
//! decision is made by the library.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use vouch::models::{FetchOutcome, FetchSource, Manifest, fetch_model};
use vouch::runtime::{Runtime, SessionPool};
use vouch::vault::TemplateVault;
use vouch::{Config, Engine};

/// `println!` that returns an error instead of panicking when stdout is closed early
/// (`vouch … | head`); `main` turns that error into a quiet exit.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod calibrate;
mod eval;
mod kiosk;
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
    /// Detect and compare faces.
    #[command(subcommand)]
    Face(FaceCommand),
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

#[derive(Subcommand)]
enum FaceCommand {
    /// Enroll a subject from face images into the template store.
    Enroll {
        /// Subject id.
        subject: String,
        /// Face images (one template is made from all of them).
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Verify a probe image against a subject's stored templates.
    Verify {
        /// Subject id.
        subject: String,
        /// Probe image.
        image: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Detect faces: boxes, scores and 5 landmarks.
    Detect {
        /// Image (JPEG or PNG).
        image: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Judge whether frames show a live face or a presentation attack (printed photo, screen).
    Liveness {
        /// Frames of one presentation (JPEG or PNG, same size).
        #[arg(required = true)]
        frames: Vec<PathBuf>,
        /// The images are already face crops: judge the whole image instead of detecting.
        #[arg(long)]
        whole_image: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure the quality gate on the largest face of each image (size, sharpness, pose,
    /// exposure).
    Quality {
        /// Images (JPEG or PNG).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Compare the largest faces of two images.
    Compare {
        /// First image.
        a: PathBuf,
        /// Second image.
        b: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
        Command::Face(cmd) => face(cmd, config),
        Command::Eval(cmd) => eval::run(cmd, config),
        Command::Voice(cmd) => voice::run(cmd, config),
        Command::Calibrate(cmd) => calibrate::run(cmd, config),
        Command::Receipt(cmd) => trust::run_receipt(cmd),
        Command::Audit(cmd) => trust::run_audit(cmd),
        Command::Keys(cmd) => keys(cmd, &config),
        Command::Subjects(cmd) => subjects(cmd, &config),
        Command::Kiosk(cmd) => kiosk::run(cmd, config),
        Command::Demo { data, enroll } => demo(config, data, enroll),
    }
}

fn load_config(cli: &Cli) -> Result<Config> {
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
    config.validate()?;
    Ok(config)
}

fn manifest(config: &Config) -> Result<Manifest> {
    Ok(match &config.models.manifest {
        Some(path) => Manifest::load(path)?,
        None => Manifest::builtin(),
    })
}

fn models(cmd: ModelsCommand, config: &Config) -> Result<()> {
    let manifest = manifest(config)?;
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

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn face(cmd: FaceCommand, config: Config) -> Result<()> {
    let engine = Engine::new(config)?;
    match cmd {
        FaceCommand::Enroll { subject, images } => {
            let vault = TemplateVault::open(engine.config())?;
            let samples = images.iter().map(|p| read(p)).collect::<Result<Vec<_>>>()?;
            let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
            let id = engine.enroll_face_stored(&vault, &subject, &refs)?;
            out!(
                "enrolled {subject}: template {id} from {} image(s), sealed under key {}",
                images.len(),
                vault.current_key_id()
            );
        }
        FaceCommand::Verify {
            subject,
            image,
            json,
        } => {
            let vault = TemplateVault::open(engine.config())?;
            let result = engine.verify_face_stored(&vault, &subject, &read(&image)?)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                out!(
                    "{subject}: score {:.4}  threshold {:.2}  → {}  ({} ms)",
                    result.score,
                    result.threshold,
                    if result.is_match { "MATCH" } else { "NO MATCH" },
                    result.elapsed.as_millis()
                );
            }
        }
        FaceCommand::Detect { image, json } => {
            let bytes = read(&image)?;
            let decoded = engine.decode_image(&bytes)?;
            let faces = engine.face().detect(&decoded)?;
            if json {
                let out = serde_json::json!({
                    "image": image, "width": decoded.width(), "height": decoded.height(),
                    "faces": faces,
                });
                out!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                out!(
                    "{}: {}x{}, {} face(s)",
                    image.display(),
                    decoded.width(),
                    decoded.height(),
                    faces.len()
                );
                for (i, f) in faces.iter().enumerate() {
                    let lm: Vec<String> = f
                        .landmarks
                        .iter()
                        .map(|p| format!("({:.1},{:.1})", p[0], p[1]))
                        .collect();
                    out!(
                        "  #{i} score {:.3}  box [{:.1}, {:.1}, {:.1}, {:.1}]  landmarks {}",
                        f.score,
                        f.bbox[0],
                        f.bbox[1],
                        f.bbox[2],
                        f.bbox[3],
                        lm.join(" ")
                    );
                }
            }
        }
        FaceCommand::Liveness {
            frames,
            whole_image,
            json,
        } => {
            let images = frames
                .iter()
                .map(|f| Ok(engine.decode_image(&read(f)?)?))
                .collect::<Result<Vec<_>>>()?;
            let boxes: Option<Vec<vouch::face::FaceBox>> =
                whole_image.then(|| images.iter().map(vouch::face::FaceBox::whole).collect());
            let result = engine.assess_liveness_frames(&images, boxes.as_deref())?;
            if json {
                out!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                print_liveness(&result, &frames)?;
            }
        }
        FaceCommand::Quality { images, json } => {
            for path in &images {
                let report = read(path).and_then(|bytes| Ok(engine.face_quality(&bytes)?));
                match (report, json) {
                    (Ok(r), true) => {
                        out!("{}", serde_json::json!({"image": path, "quality": r}))
                    }
                    (Ok(r), false) => out!(
                        "{}: face {:.0}px, sharpness {:.0}, yaw {:.0}°, roll {:.0}°, brightness {:.0}, clipped {:.3} — {}",
                        file_name(path),
                        r.face_width,
                        r.sharpness,
                        r.yaw_deg.unwrap_or(f32::NAN),
                        r.roll_deg.unwrap_or(f32::NAN),
                        r.brightness,
                        r.clipped,
                        if r.passed() {
                            "ok".to_string()
                        } else {
                            r.failures
                                .iter()
                                .map(|f| f.to_string())
                                .collect::<Vec<_>>()
                                .join("; ")
                        }
                    ),
                    (Err(e), true) => out!(
                        "{}",
                        serde_json::json!({"image": path, "error": format!("{e:#}")})
                    ),
                    (Err(e), false) => out!("{}: {e:#}", file_name(path)),
                }
            }
        }
        FaceCommand::Compare { a, b, json } => {
            let result = engine.compare_faces(&read(&a)?, &read(&b)?)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                out!(
                    "score {:.4}  threshold {:.2}  → {}  ({} ms)",
                    result.score,
                    result.threshold,
                    if result.is_match { "MATCH" } else { "NO MATCH" },
                    result.elapsed.as_millis()
                );
            }
        }
    }
    Ok(())
}

fn print_liveness(result: &vouch::face::LivenessResult, frames: &[PathBuf]) -> Result<()> {
    let verdict = match (result.live, result.quality_passed()) {
        (true, true) => "LIVE",
        (true, false) => "LIVE (but retake: quality)",
        (false, _) => "ATTACK",
    };
    let models: Vec<String> = result
        .per_model
        .iter()
        .map(|m| format!("{} {:.3}", m.model, m.live))
        .collect();
    out!(
        "{verdict}: fused score {:.3} (threshold {:.2}); {}",
        result.score,
        result.threshold,
        models.join(", ")
    );
    for ((frame, path), quality) in result.per_frame.iter().zip(frames).zip(&result.quality) {
        let q = if quality.passed() {
            "quality ok".to_string()
        } else {
            quality
                .failures
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let pose = match (quality.yaw_deg, quality.roll_deg) {
            (Some(y), Some(r)) => format!(", yaw {y:.0}°, roll {r:.0}°"),
            _ => String::new(),
        };
        out!(
            "  {}: score {:.3}  face {:.0}px, sharpness {:.0}, brightness {:.0}{pose} — {q}",
            file_name(path),
            frame.score,
            quality.face_width,
            quality.sharpness,
            quality.brightness
        );
    }
    Ok(())
}

fn new_key_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("key-{secs}")
}

fn keys(cmd: KeysCommand, config: &Config) -> Result<()> {
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

fn reseal(config: &Config) -> Result<()> {
    let vault = TemplateVault::open(config)?;
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

fn subjects(cmd: SubjectsCommand, config: &Config) -> Result<()> {
    let vault = TemplateVault::open(config)?;
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

fn default_data_dir() -> PathBuf {
    std::env::var_os("VOUCH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}

fn demo(config: Config, data: Option<PathBuf>, enroll: usize) -> Result<()> {
    let faces_dir = data.unwrap_or_else(default_data_dir).join("faces-deepface");
    let listing = faces_dir.join("identities_derived.csv");
    let text = std::fs::read_to_string(&listing).with_context(|| {
        format!(
            "reading {} (point --data or VOUCH_DATA_DIR at the shared data folder)",
            listing.display()
        )
    })?;
    let mut identities: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() >= 2 {
            identities
                .entry(cells[1].to_string())
                .or_default()
                .push(faces_dir.join(cells[0]));
        }
    }
    identities.retain(|_, files| files.len() > enroll.max(1));
    if identities.len() < 2 {
        bail!(
            "the demo needs at least two identities with more than {enroll} photos in {}",
            listing.display()
        );
    }

    let started = Instant::now();
    let engine = Engine::new(config)?;
    out!(
        "vouch demo — detector {}, embedder {}, threshold {:.2} (engine ready in {} ms)\n",
        engine.face().detector().spec().id(),
        engine.face().embedder().spec().id(),
        engine.config().face.match_threshold,
        started.elapsed().as_millis()
    );

    let mut templates = Vec::new();
    for (id, files) in &identities {
        let samples: Vec<Vec<u8>> = files[..enroll]
            .iter()
            .map(|f| read(f))
            .collect::<Result<_>>()?;
        let refs: Vec<&[u8]> = samples.iter().map(Vec::as_slice).collect();
        let t0 = Instant::now();
        let template = engine.enroll_face(id, &refs)?;
        let names: Vec<String> = files[..enroll].iter().map(|f| file_name(f)).collect();
        out!(
            "enrolled {id} from {} ({} ms)",
            names.join(", "),
            t0.elapsed().as_millis()
        );
        templates.push((template, files[enroll..].to_vec()));
    }

    out!(
        "\n{:<6} {:<10} {:<9} {:>7}  {:<9} {:>6}",
        "claim",
        "probe",
        "truth",
        "score",
        "decision",
        "ms"
    );
    let (mut genuine, mut genuine_ok, mut impostor, mut impostor_ok) = (0, 0, 0, 0);
    let mut times: Vec<Duration> = Vec::new();
    for (i, (template, probes)) in templates.iter().enumerate() {
        let other = &templates[(i + 1) % templates.len()].0;
        for probe in probes {
            let bytes = read(probe)?;
            // Press photos are not camera frames: the liveness column shows what the models
            // make of them, it does not gate the demo's decisions.
            let liveness = match engine.assess_liveness(&[&bytes]) {
                Ok(r) => format!("{} {:.2}", if r.live { "live" } else { "attack?" }, r.score),
                Err(e) => e.kind().to_string(),
            };
            for (claim, is_genuine) in [(template, true), (other, false)] {
                let outcome = match engine.verify_face(claim, &bytes) {
                    Ok(o) => o,
                    Err(e) => {
                        out!(
                            "{:<6} {:<10} {:<9} {:>7}  {:<9}",
                            claim.subject(),
                            file_name(probe),
                            "-",
                            "-",
                            e.kind()
                        );
                        continue;
                    }
                };
                times.push(outcome.elapsed);
                let right = outcome.is_match == is_genuine;
                if is_genuine {
                    genuine += 1;
                    genuine_ok += usize::from(right);
                } else {
                    impostor += 1;
                    impostor_ok += usize::from(right);
                }
                out!(
                    "{:<6} {:<10} {:<9} {:>7.3}  {:<9} {:>6}  {:<16}{}",
                    claim.subject(),
                    file_name(probe),
                    if is_genuine { "genuine" } else { "impostor" },
                    outcome.score,
                    if outcome.is_match { "ACCEPT" } else { "reject" },
                    outcome.elapsed.as_millis(),
                    liveness,
                    if right { "" } else { "  ✗" }
                );
            }
        }
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    out!(
        "\ngenuine accepted {genuine_ok}/{genuine}, impostors rejected {impostor_ok}/{impostor}; median verify time {} ms (decode + detect + align + embed)",
        median.as_millis()
    );
    out!(
        "(threshold chosen on these photos' labelled pairs; see `vouch eval face` for the measured error rates)"
    );
    let samples = faces_dir
        .parent()
        .map(|d| d.join("liveness-samples"))
        .filter(|d| d.is_dir());
    if let Some(dir) = samples {
        out!("\npresentation attacks (liveness-samples, camera frames):");
        for (name, what) in [
            ("image_T1.jpg", "live person"),
            ("image_T2.jpg", "live person"),
            ("image_F1.jpg", "printed photo"),
            ("image_F2.jpg", "replay on a tablet"),
        ] {
            let Ok(bytes) = std::fs::read(dir.join(name)) else {
                continue;
            };
            let t0 = Instant::now();
            match engine.assess_liveness(&[&bytes]) {
                Ok(r) => out!(
                    "  {name:<13} {what:<19} → {:<6} score {:.3}  ({} ms)",
                    if r.accepted() { "LIVE" } else { "ATTACK" },
                    r.score,
                    t0.elapsed().as_millis()
                ),
                Err(e) => out!("  {name:<13} {what:<19} → error: {e}"),
            }
        }
    }
    let fsdd = faces_dir
        .parent()
        .map(|d| d.join("fsdd/recordings"))
        .filter(|d| d.is_dir());
    if let Some(dir) = fsdd {
        voice::demo(engine.config().clone(), &dir)?;
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
