//! `vouch voice …` and `vouch eval voice`: wiring and printing over `vouch::voice`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use vouch::voice::gmm::TrainingStep;
use vouch::voice::ubm::{BuildProgress, GmmUbm, ScoreNorm, Ubm, UbmBuild};
use vouch::voice::{Audio, AudioLimits, SpeakerModel};
use vouch::{Engine, ValidConfig};

use crate::{progress, read};
use vouch::authenticator::{Authenticator, EnrollRequest};

/// The UBM file's name in the model directory.
pub(crate) const UBM_FILE: &str = "gmm-ubm.vubm";

#[derive(Subcommand)]
pub(crate) enum VoiceCommand {
    /// MFCCs of a WAV or FLAC file (at 16 kHz after resampling): CSV on stdout, one frame per
    /// line, or a NumPy `.npy` file.
    Mfcc {
        /// Audio file.
        file: PathBuf,
        /// Append deltas and delta-deltas (13 → 39 columns).
        #[arg(long)]
        deltas: bool,
        /// Normalise each column to zero mean and unit variance over the file (CMVN).
        #[arg(long)]
        cmvn: bool,
        /// Write a float64 `.npy` array (frames × columns) here instead of CSV.
        #[arg(long, value_name = "FILE")]
        npy: Option<PathBuf>,
    },
    /// Enroll a subject's voice: every digit 0–9 spoken alone (several takes each), and
    /// optionally free speech. Stores the voiceprint and the digits, encrypted; audited.
    Enroll {
        /// Subject id.
        subject: String,
        /// A recording of one digit, as DIGIT=FILE (e.g. 7=seven-1.wav). Repeat: every digit
        /// 0–9 at least once, three or more takes each recognise better.
        #[arg(long = "digit", value_name = "D=FILE", required = true)]
        digits: Vec<String>,
        /// A recording of free speech for the voiceprint. Repeat for several.
        #[arg(long = "speech", value_name = "FILE")]
        speech: Vec<PathBuf>,
    },
    /// Issue a random-digit passphrase challenge (digits, single-use nonce, expiry). The
    /// daemon redeems challenges; this prints one to read out for `vouch voice compare`.
    Challenge {
        /// Subject id.
        subject: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Research: what a spoken response holds against a subject's enrolled digits and
    /// voiceprint (digits heard, their ranks, the speaker score). Decides and records nothing:
    /// passphrases are decided with the face by `vouch kiosk verify` and `vouchd`.
    Compare {
        /// Subject id.
        subject: String,
        /// The recorded response (WAV or FLAC), digits separated by short pauses.
        response: PathBuf,
        /// The digits that should have been spoken (the challenge's).
        #[arg(long)]
        digits: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Train the GMM-UBM speaker model's background model (and its normalisation cohort) on
    /// a folder of speech recordings (FLAC or WAV, searched recursively).
    TrainUbm {
        /// Background speech, e.g. ../shared/data/librispeech/train-clean-100.
        dir: PathBuf,
        /// Output file [default: gmm-ubm.vubm in the model directory].
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Mixture components.
        #[arg(long, default_value_t = 64)]
        components: usize,
        /// EM iterations.
        #[arg(long, default_value_t = 10)]
        em_iterations: usize,
        /// Recordings kept as the score-normalisation cohort.
        #[arg(long, default_value_t = 100)]
        cohort: usize,
        /// Seed of the k-means start.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Description of the data written into the file.
        #[arg(
            long,
            default_value = "LibriSpeech train-clean-100 excerpt (CC BY 4.0, Panayotov et al. 2015)"
        )]
        trained_on: String,
    },
}

/// Which speaker model to evaluate.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ModelChoice {
    /// The GE2E voice encoder (ONNX), cosine of embeddings.
    Encoder,
    /// The GMM-UBM: MAP-adapted means, normalised log-likelihood ratio.
    Gmm,
}

/// Score normalisation of the GMM-UBM.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum NormChoice {
    /// Raw log-likelihood ratio.
    None,
    /// Z-norm.
    Z,
    /// T-norm.
    T,
    /// S-norm.
    S,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("voice_data").required(true).args(["dir", "trials"])))]
pub(crate) struct EvalVoiceArgs {
    /// Folder of SPEAKER/…/*.flac recordings, every pair scored, e.g.
    /// ../shared/data/librispeech/test-other.
    dir: Option<PathBuf>,
    /// A trial list instead: CSV with enroll (recordings separated by `;`), probe and label
    /// (target/nontarget) columns.
    #[arg(long, value_name = "CSV")]
    trials: Option<PathBuf>,
    /// Folder the trial list's paths are relative to [default: the list's folder].
    #[arg(long, value_name = "DIR", requires = "trials")]
    audio: Option<PathBuf>,
    /// Speaker model.
    #[arg(long, value_enum, default_value_t = ModelChoice::Encoder)]
    model: ModelChoice,
    /// UBM file for --model gmm [default: gmm-ubm.vubm in the model directory].
    #[arg(long, value_name = "FILE")]
    ubm: Option<PathBuf>,
    /// Score normalisation for --model gmm.
    #[arg(long, value_enum, default_value_t = NormChoice::S)]
    norm: NormChoice,
    #[command(flatten)]
    report: crate::eval::ReportArgs,
}

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
    report: crate::eval::ReportArgs,
}

pub(crate) fn run(cmd: VoiceCommand, config: ValidConfig) -> Result<()> {
    match cmd {
        VoiceCommand::Enroll {
            subject,
            digits,
            speech,
        } => enroll(config, &subject, &digits, &speech),
        VoiceCommand::Challenge { subject, json } => {
            let issuer = vouch::voice::passphrase::ChallengeIssuer::new(
                config.voice.passphrase_length,
                std::time::Duration::from_secs(config.voice.challenge_ttl_seconds),
            )?;
            let challenge = issuer.issue(&subject)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&challenge)?);
            } else {
                out!(
                    "say: {}",
                    challenge
                        .digits
                        .chars()
                        .map(String::from)
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                out!(
                    "challenge {} for {subject}, valid {} s",
                    challenge.id,
                    config.voice.challenge_ttl_seconds
                );
            }
            Ok(())
        }
        VoiceCommand::Compare {
            subject,
            response,
            digits,
            json,
        } => compare(config, &subject, &response, &digits, json),
        VoiceCommand::Mfcc {
            file,
            deltas,
            cmvn,
            npy,
        } => mfcc(&file, deltas, cmvn, npy.as_deref()),
        VoiceCommand::TrainUbm {
            dir,
            output,
            components,
            em_iterations,
            cohort,
            seed,
            trained_on,
        } => {
            let output = output.unwrap_or_else(|| config.models.dir.join(UBM_FILE));
            let mut build = UbmBuild {
                cohort,
                trained_on,
                ..UbmBuild::default()
            };
            build.training.components = components;
            build.training.em_iterations = em_iterations;
            build.training.seed = seed;
            train_ubm(&dir, &output, &build)
        }
    }
}

fn mfcc(file: &Path, with_deltas: bool, normalise: bool, npy: Option<&Path>) -> Result<()> {
    use std::io::Write;
    use vouch::voice::mfcc::{Mfcc, MfccConfig, cmvn, deltas, stack};
    let audio = Audio::open(file, &AudioLimits::default())?;
    let base =
        Mfcc::new(&MfccConfig::default(), vouch::voice::SAMPLE_RATE)?.compute(audio.samples());
    let mut features = if with_deltas {
        let d = deltas(&base, 2);
        let dd = deltas(&d, 2);
        stack(&[&base, &d, &dd])
    } else {
        base
    };
    if normalise {
        cmvn(&mut features);
    }
    if let Some(path) = npy {
        std::fs::write(
            path,
            npy_f64(&features.values, features.frames(), features.dims),
        )
        .with_context(|| format!("writing {}", path.display()))?;
        out!(
            "{} frames × {} columns written to {}",
            features.frames(),
            features.dims,
            path.display()
        );
        return Ok(());
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for t in 0..features.frames() {
        let row: Vec<String> = features
            .frame(t)
            .iter()
            .map(|v| format!("{v:.6}"))
            .collect();
        writeln!(out, "{}", row.join(","))?;
    }
    Ok(())
}

/// A NumPy `.npy` (format 1.0) of a C-order float64 matrix.
fn npy_f64(values: &[f64], rows: usize, cols: usize) -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + values.len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn train_ubm(dir: &Path, output: &Path, build: &UbmBuild) -> Result<()> {
    let files = vouch::voice::ubm::audio_files(dir)?;
    if files.is_empty() {
        bail!("no .flac or .wav files under {}", dir.display());
    }
    out!(
        "training a {}-component UBM on {} recordings under {}",
        build.training.components,
        files.len(),
        dir.display()
    );
    let started = std::time::Instant::now();
    let bar = progress(files.len(), "analysing");
    let em_total = build.training.em_iterations;
    let ubm = Ubm::train(&files, build, &|p| match p {
        BuildProgress::Analysed(n, _) => bar.set_position(n as u64),
        BuildProgress::Training(TrainingStep::KMeans(i, d)) => {
            bar.set_message(format!("k-means {i}: distortion {d:.3}"));
        }
        BuildProgress::Training(TrainingStep::Em(i, ll)) => {
            bar.set_length(em_total as u64);
            bar.set_position(i as u64);
            bar.set_message(format!("EM (log-likelihood {ll:.3}/frame)"));
        }
        BuildProgress::Cohort(n, total) => {
            bar.set_length(total as u64);
            bar.set_position(n as u64);
            bar.set_message("cohort");
        }
    })?;
    bar.finish_and_clear();
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    ubm.save(output)?;
    let info = ubm.info();
    out!(
        "{} components × {} dims from {} frames of {} recordings; cohort of {}; {:.0} s",
        info.components,
        info.dims,
        info.training_frames,
        info.training_recordings,
        info.cohort_frames.len(),
        started.elapsed().as_secs_f64()
    );
    out!(
        "written to {} (sha256 {})",
        output.display(),
        hex::encode(ubm.sha256())
    );
    Ok(())
}

pub(crate) fn eval(args: EvalVoiceArgs, config: ValidConfig) -> Result<()> {
    use vouch::eval::plot::{DetCurve, DetLabels};
    use vouch::eval::report::{ReportHeader, verification_markdown};
    let model = speaker_model(args.model, args.ubm.as_deref(), args.norm, config)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (scores, failures, skipped, protocol) = if let Some(list) = &args.trials {
        let root = args
            .audio
            .clone()
            .unwrap_or_else(|| list.parent().map(Path::to_path_buf).unwrap_or_default());
        let trials = vouch::eval::voice::read_trials(list, &root)?;
        let protocol = format!("trial list {} ({} trials)", list.display(), trials.len());
        out!("{protocol}");
        let bar = progress(0, "scoring");
        let scored =
            vouch::eval::voice::score_trials(model.as_ref(), &trials, threads, &|| bar.inc(1))?;
        bar.finish_and_clear();
        (
            scored.scores,
            scored.failures,
            scored.trials_skipped,
            protocol,
        )
    } else {
        let dir = args.dir.as_deref().unwrap_or(Path::new("."));
        let recordings = vouch::eval::voice::speaker_recordings(dir)?;
        let speakers: std::collections::BTreeSet<_> =
            recordings.iter().map(|r| &r.speaker).collect();
        let protocol = format!(
            "{}: {} recordings of {} speakers; every pair: enroll on the earlier recording (sorted path order), probe with the later",
            dir.display(),
            recordings.len(),
            speakers.len()
        );
        out!("{protocol}");
        let bar = progress(2 * recordings.len(), "scoring");
        let scores =
            vouch::eval::voice::score_all_pairs(model.as_ref(), &recordings, threads, &|| {
                bar.inc(1)
            })?;
        bar.finish_and_clear();
        (scores, Vec::new(), 0, protocol)
    };
    let set = scores.score_set()?;
    let summary = vouch::eval::VerificationSummary::of(&set);
    out!("model      {}", scores.model_id);
    out!(
        "trials     {} genuine, {} impostor; {} skipped, {} recording(s) failed",
        summary.genuine,
        summary.impostor,
        skipped,
        failures.len()
    );
    for f in failures.iter().take(20) {
        out!("  failed: {} ({})", f.image.display(), f.kind);
    }
    crate::eval::print_verification(&summary)?;
    let mut warnings = Vec::new();
    if !failures.is_empty() {
        warnings.push(format!(
            "{} recording(s) could not be analysed; {skipped} trial(s) using them are left out",
            failures.len()
        ));
    }
    let md = format!(
        "# Speaker verification\n\nModel: `{}`.\n\nProtocol: {protocol}.\n\n{}",
        scores.model_id,
        verification_markdown(&summary)
    );
    let det = vouch::eval::det(&set, vouch::eval::metrics::DET_POINTS);
    let json = serde_json::json!({
        "header": ReportHeader::new("vouch.eval.voice"),
        "model": scores.model_id,
        "protocol": protocol,
        "summary": summary,
        "det": det,
        "failures": failures,
        "trials_skipped": skipped,
        "warnings": warnings,
        "scores": scores,
    });
    let curve = DetCurve {
        label: scores.model_id.clone(),
        points: det,
        impostors: summary.impostor,
    };
    let labels = DetLabels::verification("Speaker verification (DET)");
    crate::eval::finish(
        &args.report,
        &json,
        md,
        &warnings,
        &[curve],
        &labels,
        Some(&set),
    )
}

/// The chosen speaker model, loaded.
pub(crate) fn speaker_model(
    choice: ModelChoice,
    ubm: Option<&Path>,
    norm: NormChoice,
    config: ValidConfig,
) -> Result<Box<dyn SpeakerModel>> {
    Ok(match choice {
        ModelChoice::Encoder => Box::new(voice_encoder(config)?),
        ModelChoice::Gmm => {
            let path = ubm.map_or_else(|| config.models.dir.join(UBM_FILE), Path::to_path_buf);
            if !path.exists() {
                bail!(
                    "no UBM at {}; train one with `vouch voice train-ubm ../shared/data/librispeech/train-clean-100`",
                    path.display()
                );
            }
            let norm = match norm {
                NormChoice::None => ScoreNorm::None,
                NormChoice::Z => ScoreNorm::Z,
                NormChoice::T => ScoreNorm::T,
                NormChoice::S => ScoreNorm::S,
            };
            Box::new(GmmUbm::new(Ubm::open(&path)?, norm)?)
        }
    })
}

/// The GE2E encoder of the manifest.
pub(crate) fn voice_encoder(config: ValidConfig) -> Result<vouch::voice::encoder::VoiceEncoder> {
    let engine = Engine::new(config)?;
    let spec = engine.manifest().get(&engine.config().voice.encoder)?;
    Ok(vouch::voice::encoder::VoiceEncoder::new(
        engine.runtime(),
        spec,
        &engine.config().models.dir,
    )?)
}

pub(crate) fn eval_passphrase(args: EvalPassphraseArgs, config: ValidConfig) -> Result<()> {
    use vouch::eval::passphrase::{FsddProtocol, KindSummary, evaluate_fsdd};
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
    passphrase_report(&args.report, &report)
}

/// The report folder of a passphrase evaluation: the three outcome rates, and the DET of the
/// speaker scores of genuine against impostor phrases.
fn passphrase_report(
    args: &crate::eval::ReportArgs,
    report: &vouch::eval::passphrase::PassphraseReport,
) -> Result<()> {
    use vouch::eval::passphrase::TrialKind;
    use vouch::eval::plot::{DetCurve, DetLabels};
    use vouch::eval::report::{ReportHeader, pct, pct_interval};
    use vouch::stats::wilson;
    let speaker = |kind: TrialKind| -> Vec<f64> {
        report
            .trials
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.speaker_score)
            .collect()
    };
    let set =
        vouch::eval::ScoreSet::new(speaker(TrialKind::Genuine), speaker(TrialKind::Impostor))?;
    let p = &report.protocol;
    let mut md = format!(
        "# Spoken passphrases (FSDD)\n\nModel: `{}`. Digits and voiceprint enrolled on takes {}–{}; phrases of {} digits from takes {}–{}; speaker threshold {:.4} set at the equal-error point of phrases from takes {}–{}.\n\n| trials | n | rate | 95 % interval |\n|---|---|---|---|\n",
        report.model_id,
        p.enroll_takes.start,
        p.enroll_takes.end - 1,
        p.length,
        p.probe_takes.start,
        p.probe_takes.end - 1,
        report.speaker_threshold,
        p.calibration_takes.start,
        p.calibration_takes.end - 1
    );
    for (name, s) in [
        ("genuine accepted", &report.genuine),
        ("impostor accepted", &report.impostor),
        ("replay accepted", &report.replay),
    ] {
        md += &format!(
            "| {name} | {} | {} | {} |\n",
            s.trials,
            pct(s.accepted as f64 / s.trials.max(1) as f64),
            pct_interval(wilson(s.accepted, s.trials))
        );
    }
    md += &format!(
        "\nSpeaker scores alone, genuine against impostor phrases: EER {}.\n",
        pct(report.speaker_eer)
    );
    let det = vouch::eval::det(&set, vouch::eval::metrics::DET_POINTS);
    let json = serde_json::json!({
        "header": ReportHeader::new("vouch.eval.passphrase"),
        "summary": { "genuine": set.genuine().len(), "impostor": set.impostor().len() },
        "det": det,
        "report": report,
    });
    let curve = DetCurve {
        label: format!("{} (speaker scores of phrases)", report.model_id),
        points: det,
        impostors: set.impostor().len(),
    };
    let labels = DetLabels::verification("Spoken passphrases: speaker scores (DET)");
    crate::eval::finish(args, &json, md, &[], &[curve], &labels, Some(&set))
}

fn enroll(config: ValidConfig, subject: &str, digits: &[String], speech: &[PathBuf]) -> Result<()> {
    let mut takes = Vec::with_capacity(digits.len());
    for arg in digits {
        let (digit, file) = arg
            .split_once('=')
            .filter(|(d, _)| d.len() == 1 && d.as_bytes()[0].is_ascii_digit())
            .with_context(|| format!("--digit {arg:?}: expected DIGIT=FILE, e.g. 7=seven.wav"))?;
        takes.push((digit.as_bytes()[0] - b'0', read(Path::new(file))?));
    }
    let speech = speech.iter().map(|p| read(p)).collect::<Result<Vec<_>>>()?;
    let authenticator = Authenticator::open(config)?;
    let speech_refs: Vec<&[u8]> = speech.iter().map(Vec::as_slice).collect();
    let digit_refs: Vec<(u8, &[u8])> = takes.iter().map(|(d, b)| (*d, b.as_slice())).collect();
    let report = authenticator.enroll(&EnrollRequest {
        subject,
        terminal: crate::face::TERMINAL,
        face: &[],
        speech: &speech_refs,
        digits: &digit_refs,
    })?;
    let Some(enrolled) = report.voice else {
        bail!("{subject}: no voice was enrolled");
    };
    out!(
        "enrolled {subject}: voiceprint (template {}) from {:.1} s of audio, digits (template {}) with takes per digit {:?}; sealed under key {}",
        enrolled.voiceprint_id,
        enrolled.seconds,
        enrolled.digits_id,
        enrolled.digit_takes,
        authenticator.vault().current_key_id()
    );
    Ok(())
}

/// Research: what a spoken response holds against a subject's enrollment. No challenge is
/// redeemed and nothing is decided or recorded.
fn compare(
    config: ValidConfig,
    subject: &str,
    response: &Path,
    digits: &str,
    json: bool,
) -> Result<()> {
    let audio = Audio::open(response, &config.voice.audio)?;
    let vault = vouch::vault::TemplateVault::open(&config.store, &config.keys)?;
    let encoder = voice_encoder(config)?;
    let service = vouch::voice::enrollment::VoiceService::new(&encoder, &vault);
    let evidence = service.examine(subject, digits, &audio)?;
    if json {
        out!("{}", serde_json::to_string_pretty(&evidence)?);
    } else {
        out!(
            "{subject}: heard {} (worst rank of a challenge digit among the nearest enrolled: {}); speaker cosine {:.4} — research evidence: decisions hold it to decisions.digit_rank and the encoder's calibrated threshold",
            evidence.heard,
            evidence.worst_rank,
            evidence.speaker_score,
        );
    }
    Ok(())
}
