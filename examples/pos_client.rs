//! A point-of-sale terminal talking to `vouchd`: enroll a customer, verify them for a
//! payment (stepping up to a spoken passphrase when the policy asks for it), and check the
//! signed receipt the way the acquirer's backend would.
//!
//! The example owns nothing but the wire: every decision is the daemon's, and the terminal
//! never sees a score or a template. It must never trust a decision whose receipt does not
//! verify against the daemon's public key.
//!
//! # Usage
//!
//! Start `vouchd` (see `tests/daemon.rs` or `scripts/load.sh` for a configuration), then:
//!
//! ```text
//! # Over the daemon's Unix socket:
//! cargo run --example pos_client -- --socket .vouch/vouchd.sock \
//!     enroll alice ../shared/data/faces-deepface/img1.jpg ../shared/data/faces-deepface/img2.jpg
//! cargo run --example pos_client -- --socket .vouch/vouchd.sock \
//!     verify alice --amount 1250 --currency EUR --mcc 5411 ../shared/data/faces-deepface/img7.jpg
//!
//! # A large amount needs the customer's voice too (and, under the built-in policy, a
//! # head-movement challenge, which this example does not film: give vouchd a policy whose
//! # large tier lists face, liveness and voice): enroll the customer saying the ten digits
//! # in order, "0 1 2 ... 9", once or twice (--sequence; or every digit spoken alone with
//! # --digit, file names starting with the digit as in FSDD), then verify. The daemon steps up; the
//! # digits to speak are printed and the recording in --voice (WAV or FLAC) is sent as the
//! # answer (at a terminal, after Enter, so that it can be recorded once the digits are known).
//! cargo run --example pos_client -- --socket .vouch/vouchd.sock \
//!     enroll carol img1.jpg img2.jpg --sequence digits-1.wav --sequence digits-2.wav
//! cargo run --example pos_client -- --socket .vouch/vouchd.sock \
//!     verify carol --amount 100000 --currency EUR img7.jpg --voice answer.wav
//!
//! # Over TCP with mutual TLS (certificates from scripts/test-certs.sh DIR):
//! cargo run --example pos_client -- --tls localhost:7443 \
//!     --ca DIR/ca.pem --cert DIR/till-1.pem --key DIR/till-1.key receipt-key
//! ```
//!
//! Exits 0 when the request was answered (whatever the decision), 1 on any error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use vouch::daemon::proto as pb;
use vouch::daemon::proto::vouch_client::VouchClient;

/// A payment terminal's client of vouchd.
#[derive(Parser)]
#[command(name = "pos_client")]
struct Cli {
    /// The daemon's Unix socket (a local terminal).
    #[arg(long, value_name = "PATH", conflicts_with = "tls")]
    socket: Option<PathBuf>,
    /// The daemon's TCP address, with mutual TLS (a networked terminal).
    #[arg(long, value_name = "HOST:PORT", requires_all = ["ca", "cert", "key"])]
    tls: Option<String>,
    /// The CA that signed the daemon's certificate (PEM).
    #[arg(long, value_name = "FILE", requires = "tls")]
    ca: Option<PathBuf>,
    /// This terminal's certificate (PEM); its common name is the terminal's identity.
    #[arg(long, value_name = "FILE", requires = "tls")]
    cert: Option<PathBuf>,
    /// This terminal's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls")]
    key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll a customer from face photos (JPEG or PNG), and optionally their voice.
    Enroll {
        /// The customer's id.
        subject: String,
        /// Face photos, one sample each.
        #[arg(required = true, value_name = "IMG")]
        images: Vec<PathBuf>,
        /// A recording (WAV or FLAC) of one digit spoken alone, for the voice passphrase that
        /// large payments need; its file name starts with that digit (as FSDD's
        /// `3_george_5.wav`). Repeat it: every digit 0-9 at least once.
        #[arg(long = "digit", value_name = "WAV")]
        digits: Vec<PathBuf>,
        /// A recording (WAV or FLAC) of the ten digits said in order, "0 1 2 ... 9", with a
        /// short pause after each: what the voice passphrase enrolls from. Repeat it for a
        /// second one.
        #[arg(long = "sequence", value_name = "WAV")]
        sequences: Vec<PathBuf>,
    },
    /// Verify a customer for a payment.
    Verify {
        /// The customer's id.
        subject: String,
        /// The amount in the currency's minor unit (cents for EUR).
        #[arg(long, value_name = "MINOR")]
        amount: u64,
        /// The ISO 4217 currency code.
        #[arg(long, value_name = "CODE")]
        currency: String,
        /// The merchant category code (ISO 18245, 4 digits).
        #[arg(long, value_name = "MCC")]
        mcc: Option<String>,
        /// Frames of one presentation to the camera (JPEG or PNG).
        #[arg(required = true, value_name = "IMG")]
        images: Vec<PathBuf>,
        /// A recording (WAV or FLAC) of the customer speaking the challenge's digits, sent
        /// when the daemon steps up to voice.
        #[arg(long, value_name = "WAV")]
        voice: Option<PathBuf>,
    },
    /// Print the daemon's receipt-signing public key.
    ReceiptKey,
}

/// Where the daemon is: the second stage of argument parsing, checked and ready to connect.
enum Target {
    Unix(PathBuf),
    Tls {
        address: String,
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
}

impl Target {
    fn from_cli(cli: &Cli) -> Result<Target> {
        match (&cli.socket, &cli.tls) {
            (Some(socket), None) => Ok(Target::Unix(socket.clone())),
            (None, Some(address)) => {
                // clap's `requires_all` guarantees these; the message is for a future change.
                let (Some(ca), Some(cert), Some(key)) = (&cli.ca, &cli.cert, &cli.key) else {
                    bail!("--tls needs --ca, --cert and --key");
                };
                Ok(Target::Tls {
                    address: address.clone(),
                    ca: ca.clone(),
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            _ => bail!(
                "say where the daemon is: --socket PATH, or --tls HOST:PORT with --ca, --cert and --key"
            ),
        }
    }

    async fn connect(&self) -> Result<VouchClient<Channel>> {
        let channel = match self {
            Target::Unix(path) => {
                // gRPC needs a URI, but the connector below ignores it and dials the socket.
                let path = path.clone();
                let shown = path.display().to_string();
                Endpoint::try_from("http://localhost")?
                    .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                        }
                    }))
                    .await
                    .with_context(|| {
                        format!("cannot connect to vouchd on {shown} (is it running, and may this user open the socket?)")
                    })?
            }
            Target::Tls {
                address,
                ca,
                cert,
                key,
            } => {
                // The server is authenticated by the CA, the terminal by its certificate:
                // the daemon refuses a terminal without one, or with one from another CA.
                let tls = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?))
                    .identity(Identity::from_pem(
                        read(cert, "terminal certificate")?,
                        read(key, "terminal key")?,
                    ));
                Endpoint::from_shared(format!("https://{address}"))
                    .with_context(|| format!("{address:?} is not a HOST:PORT address"))?
                    .tls_config(tls)
                    .context("the TLS settings were refused")?
                    .connect()
                    .await
                    .with_context(|| {
                        format!("cannot connect to vouchd at {address} over mutual TLS")
                    })?
            }
        };
        // Receipts and answers are small; requests carry photos, so allow large messages out.
        Ok(VouchClient::new(channel).max_encoding_message_size(64 << 20))
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// A photo as the daemon takes it: raw file bytes, format detected by the daemon.
fn image(path: &Path) -> Result<pb::Image> {
    Ok(pb::Image {
        data: read(path, "image")?,
        format: pb::ImageFormat::Unspecified as i32,
    })
}

/// One digit spoken alone; the digit is the first character of the file name.
fn digit_recording(path: &Path) -> Result<pb::DigitRecording> {
    let digit = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.chars().next())
        .and_then(|c| c.to_digit(10))
        .with_context(|| {
            format!(
                "{}: the file name of a digit recording must start with the digit it speaks (e.g. 3_george_5.wav)",
                path.display()
            )
        })?;
    Ok(pb::DigitRecording {
        digit,
        audio: Some(pb::Audio {
            data: read(path, "digit recording")?,
            format: pb::AudioFormat::Unspecified as i32,
        }),
    })
}

/// A fresh random nonce: one per attempt, so that a receipt names exactly one attempt.
fn nonce() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a nonce: {e}"))?;
    Ok(hex::encode(bytes))
}

/// A gRPC error as a sentence the cashier can act on.
fn explain(status: tonic::Status) -> anyhow::Error {
    use tonic::Code;
    let hint = match status.code() {
        Code::InvalidArgument => "the request was refused as malformed",
        Code::NotFound => "not enrolled for this (enroll the customer first)",
        Code::PermissionDenied => "this terminal may not call that method",
        Code::ResourceExhausted => "the daemon is busy; retry in a moment",
        Code::DeadlineExceeded => "the daemon did not answer in time; retry",
        Code::FailedPrecondition => "the challenge is unknown, expired or already used",
        Code::Unavailable => "the daemon is unreachable or shutting down",
        _ => "the daemon failed (see its log)",
    };
    anyhow::anyhow!("{hint}: {:?}: {}", status.code(), status.message())
}

fn decision_name(value: i32) -> &'static str {
    match pb::Decision::try_from(value) {
        Ok(pb::Decision::Accept) => "ACCEPT",
        Ok(pb::Decision::Reject) => "REJECT",
        Ok(pb::Decision::StepUp) => "STEP_UP",
        Ok(pb::Decision::Retake) => "RETAKE",
        Ok(pb::Decision::Locked) => "LOCKED",
        Ok(pb::Decision::Unspecified) | Err(_) => "UNSPECIFIED",
    }
}

fn confidence_name(value: i32) -> &'static str {
    match pb::Confidence::try_from(value) {
        Ok(pb::Confidence::Low) => "low",
        Ok(pb::Confidence::Medium) => "medium",
        Ok(pb::Confidence::High) => "high",
        Ok(pb::Confidence::Unspecified) | Err(_) => "-",
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("pos_client: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let target = Target::from_cli(&cli)?;
    let mut client = target.connect().await?;
    match cli.command {
        Command::Enroll {
            subject,
            images,
            digits,
            sequences,
        } => enroll(&mut client, subject, &images, &digits, &sequences).await,
        Command::Verify {
            subject,
            amount,
            currency,
            mcc,
            images,
            voice,
        } => {
            let payment = pb::Transaction {
                id: format!("pos-{}", unix_millis()),
                nonce: nonce()?,
                amount_minor: amount,
                currency,
                merchant_category: mcc.unwrap_or_default(),
            };
            verify(&mut client, subject, payment, &images, voice.as_deref()).await
        }
        Command::ReceiptKey => {
            let key = client
                .get_receipt_key(pb::GetReceiptKeyRequest {})
                .await
                .map_err(explain)?
                .into_inner();
            println!("public key {}", key.public_key_hex);
            println!("key id     {}", key.key_id);
            Ok(())
        }
    }
}

async fn enroll(
    client: &mut VouchClient<Channel>,
    subject: String,
    paths: &[PathBuf],
    digit_paths: &[PathBuf],
    sequence_paths: &[PathBuf],
) -> Result<()> {
    let face = paths.iter().map(|p| image(p)).collect::<Result<Vec<_>>>()?;
    let digits = digit_paths
        .iter()
        .map(|p| digit_recording(p))
        .collect::<Result<Vec<_>>>()?;
    let answer = client
        .enroll(pb::EnrollRequest {
            subject: subject.clone(),
            face,
            speech: Vec::new(),
            digits,
            digit_sequences: sequence_paths
                .iter()
                .map(|p| {
                    Ok(pb::Audio {
                        data: read(p, "digit sequence")?,
                        format: pb::AudioFormat::Unspecified as i32,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        })
        .await
        .map_err(explain)?
        .into_inner();
    let enrolled = |yes: bool| if yes { "enrolled" } else { "not enrolled" };
    println!("decision  {}", decision_name(answer.decision));
    println!("face      {}", enrolled(answer.face_enrolled));
    let with_voice = !digit_paths.is_empty() || !sequence_paths.is_empty();
    if with_voice {
        println!("voice     {}", enrolled(answer.voice_enrolled));
    }
    // Every photo is judged on its own: tell the cashier which to retake and why.
    for sample in &answer.samples {
        let path = paths
            .get(sample.index as usize)
            .map_or_else(|| format!("#{}", sample.index), |p| p.display().to_string());
        let verdict = if sample.accepted { "used" } else { "refused" };
        println!("  {verdict:<8} {path}  {}", list(&sample.reasons));
    }
    if !answer.face_enrolled {
        bail!("nothing usable was enrolled for {subject}: retake the photos");
    }
    if with_voice && !answer.voice_enrolled {
        bail!("the voice of {subject} was not enrolled: record every digit 0-9 again");
    }
    Ok(())
}

async fn verify(
    client: &mut VouchClient<Channel>,
    subject: String,
    mut payment: pb::Transaction,
    paths: &[PathBuf],
    voice: Option<&Path>,
) -> Result<()> {
    // The key is fetched up front, as a backend would have it configured: a receipt that does
    // not verify means the decision must not be trusted.
    let key = client
        .get_receipt_key(pb::GetReceiptKeyRequest {})
        .await
        .map_err(explain)?
        .into_inner();
    let public_key = vouch::receipt::parse_public_key(&key.public_key_hex)
        .context("the daemon's receipt key is malformed")?;
    let frames = paths.iter().map(|p| image(p)).collect::<Result<Vec<_>>>()?;
    // At a terminal the recording is made once the digits are shown (see below); otherwise it
    // must exist already, and a missing file should fail before a challenge is spent on it.
    let interactive = std::io::stdin().is_terminal();
    let mut recorded = match voice {
        Some(path) if !interactive => Some(read(path, "voice recording")?),
        _ => None,
    };

    let mut answer = client
        .verify(pb::VerifyRequest {
            subject: subject.clone(),
            transaction: Some(payment.clone()),
            frames: frames.clone(),
            voice: None,
            movement: None,
        })
        .await
        .map_err(explain)?
        .into_inner();
    show(&answer, &public_key, &subject, &payment)?;

    if pb::Decision::try_from(answer.decision) == Ok(pb::Decision::StepUp) {
        // The policy tier of this amount needs the customer's voice: ask for a one-time
        // passphrase and show its digits.
        let challenge = client
            .challenge(pb::ChallengeRequest {
                subject: subject.clone(),
                transaction: Some(payment.clone()),
            })
            .await
            .map_err(|status| {
                if status.code() == tonic::Code::NotFound {
                    anyhow::anyhow!(
                        "this amount needs the customer's voice, but {subject} has no voice enrollment \
                         (enroll with --sequence recordings of the digits 0-9 said in order): {}",
                        status.message()
                    )
                } else {
                    explain(status)
                }
            })?
            .into_inner();
        if !challenge.required {
            bail!("the daemon asked for voice, then issued no challenge: retry the payment");
        }
        let seconds_left = challenge.expires_unix - unix_millis() / 1000;
        println!();
        println!(
            "ask the customer to say: {}  (challenge {}, valid {seconds_left} s)",
            spaced(&challenge.digits),
            challenge.challenge_id
        );
        let Some(voice) = voice else {
            println!(
                "no --voice recording was given, so the payment stops here. Run verify again with \
                 --voice FILE: it asks for new digits and, at a terminal, reads FILE only after \
                 you press Enter, so the customer can be recorded once the digits are shown."
            );
            return Ok(());
        };
        if interactive {
            // At a real till the customer speaks now; here, the recording may be made now.
            println!(
                "record them into {} and press Enter to send it",
                voice.display()
            );
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read from the terminal")?;
        }
        let audio = pb::Audio {
            data: match recorded.take() {
                Some(bytes) => bytes,
                None => read(voice, "voice recording")?,
            },
            format: pb::AudioFormat::Unspecified as i32,
        };
        // A new attempt of the same payment: same id, new nonce.
        payment.nonce = nonce()?;
        answer = client
            .verify(pb::VerifyRequest {
                subject: subject.clone(),
                transaction: Some(payment.clone()),
                frames,
                voice: Some(pb::VoiceResponse {
                    challenge_id: challenge.challenge_id,
                    audio: Some(audio),
                }),
                movement: None,
            })
            .await
            .map_err(explain)?
            .into_inner();
        println!();
        show(&answer, &public_key, &subject, &payment)?;
    }
    Ok(())
}

/// Prints a decision and checks its receipt; an invalid receipt is an error.
fn show(
    answer: &pb::VerifyResponse,
    public_key: &ed25519_dalek::VerifyingKey,
    subject: &str,
    payment: &pb::Transaction,
) -> Result<()> {
    println!("decision    {}", decision_name(answer.decision));
    println!("reasons     {}", list(&answer.reasons));
    println!("confidence  {}", confidence_name(answer.confidence));
    println!(
        "tier        {}",
        if answer.policy_tier.is_empty() {
            "-"
        } else {
            &answer.policy_tier
        }
    );
    println!(
        "factors     required {}; used {}",
        list(&answer.factors_required),
        list(&answer.factors_used)
    );
    if answer.retry_after_seconds > 0 {
        println!("retry after {} s", answer.retry_after_seconds);
    }
    println!("receipt     {}", answer.receipt);
    let receipt = vouch::receipt::verify_receipt(&answer.receipt, public_key)
        .context("the receipt does not verify: do not trust this decision")?;
    // A valid signature is not enough: the receipt must be about this very attempt and say
    // what the answer says, or an old receipt could be replayed for a new payment.
    if receipt.subject != subject
        || receipt.transaction_id != payment.id
        || receipt.nonce != payment.nonce
        || receipt.amount_minor != payment.amount_minor
        || receipt.decision != decision_name(answer.decision).to_ascii_lowercase()
    {
        bail!("the receipt is signed but names another attempt: do not trust this decision");
    }
    println!(
        "receipt OK  id {} | {} for {} at terminal {} | transaction {} ({} {} minor units) | models {}",
        receipt.id,
        receipt.decision,
        receipt.subject,
        receipt.terminal,
        receipt.transaction_id,
        receipt.amount_minor,
        receipt.currency,
        list(&receipt.models)
    );
    Ok(())
}

fn spaced(digits: &str) -> String {
    digits
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(" ")
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
