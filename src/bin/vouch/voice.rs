//! `vouch voice …`: MFCCs of a file, voice enrollment, passphrase challenges, research
//! comparison of a spoken response, and training the GMM-UBM; wiring and printing over
//! `vouch::voice`. The speaker evaluations (`vouch eval voice|passphrase`) are in `eval/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use vouch::ValidConfig;
use vouch::authenticator::{Authenticator, EnrollRequest};
use vouch::voice::gmm::TrainingStep;
use vouch::voice::ubm::{BuildProgress, Ubm, UbmBuild};
use vouch::voice::{Audio, AudioLimits};

use crate::{progress, read};

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
    /// Enroll a subject's voice: the digits 0 to 9 said in order, once or twice (or every
    /// digit recorded alone), and optionally free speech. Stores the voiceprint and the
    /// digits, encrypted; audited.
    Enroll {
        /// Subject id.
        subject: String,
        /// A recording of the ten digits said in order, "0 1 2 … 9", with a short pause after
        /// each. Repeat for a second one (two recognise better than one).
        #[arg(
            long = "sequence",
            value_name = "FILE",
            required_unless_present = "digits"
        )]
        sequences: Vec<PathBuf>,
        /// A recording of one digit alone, as DIGIT=FILE (e.g. 7=seven-1.wav). Repeat; with
        /// no --sequence, every digit 0–9 at least once.
        #[arg(long = "digit", value_name = "D=FILE")]
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
        /// Output file [default: voice.ubm, gmm-ubm.vubm in the model directory].
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

pub(crate) fn run(cmd: VoiceCommand, config: ValidConfig) -> Result<()> {
    match cmd {
        VoiceCommand::Enroll {
            subject,
            sequences,
            digits,
            speech,
        } => enroll(config, &subject, &sequences, &digits, &speech),
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
            let output = output.unwrap_or_else(|| config.models.dir.join(&config.voice.ubm));
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

fn enroll(
    config: ValidConfig,
    subject: &str,
    sequences: &[PathBuf],
    digits: &[String],
    speech: &[PathBuf],
) -> Result<()> {
    let mut takes = Vec::with_capacity(digits.len());
    for arg in digits {
        let (digit, file) = arg
            .split_once('=')
            .filter(|(d, _)| d.len() == 1 && d.as_bytes()[0].is_ascii_digit())
            .with_context(|| format!("--digit {arg:?}: expected DIGIT=FILE, e.g. 7=seven.wav"))?;
        takes.push((digit.as_bytes()[0] - b'0', read(Path::new(file))?));
    }
    let speech = speech.iter().map(|p| read(p)).collect::<Result<Vec<_>>>()?;
    let sequences = sequences
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>>>()?;
    let authenticator = Authenticator::open(config)?;
    let speech_refs: Vec<&[u8]> = speech.iter().map(Vec::as_slice).collect();
    let sequence_refs: Vec<&[u8]> = sequences.iter().map(Vec::as_slice).collect();
    let digit_refs: Vec<(u8, &[u8])> = takes.iter().map(|(d, b)| (*d, b.as_slice())).collect();
    let report = authenticator.enroll(&EnrollRequest {
        subject,
        terminal: crate::face::TERMINAL,
        face: &[],
        speech: &speech_refs,
        digits: &digit_refs,
        digit_sequences: &sequence_refs,
    })?;
    let Some(enrolled) = report.voice else {
        bail!("{subject}: no voice was enrolled");
    };
    out!(
        "enrolled {subject}: voiceprints (templates {:?}, one per speaker model) from {:.1} s of audio, digits (template {}) with words per digit {:?}; sealed under key {}",
        enrolled.voiceprint_ids,
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
    let engine = vouch::Engine::new(config)?;
    let service = vouch::voice::enrollment::VoiceService::new(
        engine.speaker_models()?,
        engine.speech_embedder()?,
        engine.digit_head()?,
        &vault,
    );
    let evidence = service.examine(subject, digits, &audio)?;
    if json {
        out!("{}", serde_json::to_string_pretty(&evidence)?);
    } else {
        let scores: Vec<String> = evidence
            .speaker_scores
            .iter()
            .map(|s| format!("{} {:.4}", s.model, s.score))
            .collect();
        out!(
            "{subject}: heard {} ({} digit(s) differ from {digits}; {}); speaker scores {} — research evidence: decisions hold it to decisions.max_digit_errors and the calibrated speaker threshold",
            evidence.heard,
            evidence.digit_errors,
            if evidence.adapted {
                "digit head adapted to the subject"
            } else {
                "digit head alone: the digits were enrolled the old way, re-enroll to adapt it"
            },
            scores.join(", "),
        );
    }
    Ok(())
}
