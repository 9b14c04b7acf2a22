//! The real `vouchd` on loopback: a Unix socket and TCP with mutual TLS, the real models,
//! enrollment and verification of real photos and spoken passphrases, receipts and the
//! audit chain, refused clients, and a Python grpcio client over both transports.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use vouch::daemon::proto as pb;
use vouch::daemon::proto::vouch_client::VouchClient;

use crate::util;

/// A running daemon in its own folder; stopped (SIGTERM) on drop.
pub struct Daemon {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub unix: PathBuf,
    pub tcp: SocketAddr,
    pub metrics: SocketAddr,
    /// Everything the daemon wrote to stderr (also echoed to the test's stderr).
    stderr: Arc<Mutex<String>>,
    /// `RLIMIT_FSIZE` in bytes for the next start (see [`Daemon::set_file_size_limit`]).
    file_size_limit: Option<u64>,
}

/// The `[keys]` table of the usual test daemon: the key in an environment variable.
pub const ENV_KEYS: &str = "env = \"VOUCHD_TEST_KEK\"";

impl Daemon {
    /// Starts `vouchd` with the real models, or `None` (reason printed) without them.
    /// `extra` is appended to the configuration file.
    pub fn start(extra: &str) -> Option<Daemon> {
        Daemon::start_with("", extra)
    }

    /// As [`Daemon::start`], with `daemon_extra` added to the `[daemon]` table.
    pub fn start_with(daemon_extra: &str, extra: &str) -> Option<Daemon> {
        let dir = Daemon::prepare(daemon_extra, ENV_KEYS, extra)?;
        Some(Daemon::launch(dir, None))
    }

    /// A folder holding everything `vouchd` needs (test certificates, a receipt key, the
    /// configuration `vouchd.toml` with `keys` as its `[keys]` table), or `None` (reason
    /// printed) without the real models. The store, audit log and socket go in it too.
    pub fn prepare(daemon_extra: &str, keys: &str, extra: &str) -> Option<tempfile::TempDir> {
        let shared = util::shared_dir().or_else(|| {
            util::skip("no shared folder");
            None
        })?;
        let lib = util::ort_library().or_else(|| {
            util::skip("no ONNX Runtime library");
            None
        })?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let status =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-certs.sh"))
                .arg(d.join("certs"))
                .status()
                .unwrap();
        assert!(status.success(), "scripts/test-certs.sh failed");
        vouch::receipt::ReceiptSigner::generate(&d.join("receipt.key")).unwrap();
        let certs = d.join("certs");
        let config = format!(
            r#"
[daemon]
unix_socket = "{d}/vouchd.sock"
metrics_listen = "127.0.0.1:0"
workers = 2
max_in_flight = 32
max_message_bytes = 8388608
{daemon_extra}
[daemon.tcp]
listen = "127.0.0.1:0"
cert = "{certs}/server.pem"
key = "{certs}/server.key"
client_ca = "{certs}/ca.pem"
[daemon.terminals.till-1]
methods = ["Enroll", "Verify", "Identify", "Challenge", "DeleteSubject", "GetSubject", "GetReceiptKey"]
[daemon.terminals.till-2]
methods = ["GetReceiptKey"]
[runtime]
library = "{lib}"
[models]
dir = "{models}"
[store]
sqlite = "{d}/templates.db"
[keys]
{keys}
[decisions]
receipt_key = "{d}/receipt.key"
audit_log = "{d}/audit.log"
{extra}
"#,
            d = d.display(),
            certs = certs.display(),
            lib = lib.display(),
            models = shared.join("models").display(),
        );
        std::fs::write(d.join("vouchd.toml"), config).unwrap();
        Some(dir)
    }

    /// Starts `vouchd` on a folder made by [`Daemon::prepare`] (or left by an earlier
    /// daemon), with a file-size limit of `file_size_limit` bytes when given; panics with
    /// its stderr if it does not start.
    pub fn launch(dir: tempfile::TempDir, file_size_limit: Option<u64>) -> Daemon {
        let mut daemon = Daemon {
            child: None,
            dir,
            unix: PathBuf::new(),
            tcp: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: Arc::default(),
            file_size_limit,
        };
        if let Err(stderr) = daemon.try_restart() {
            panic!("vouchd did not start: {stderr}");
        }
        daemon
    }

    /// Starts `vouchd` again on the same folder (same store, keys and audit log) after
    /// [`Daemon::stop`] or [`Daemon::kill`]. On failure, its stderr (it has exited).
    pub fn try_restart(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "the daemon is still running");
        let vouchd = env!("CARGO_BIN_EXE_vouchd");
        let mut command = match self.file_size_limit {
            // prlimit execs vouchd, so the child's pid is vouchd's.
            Some(bytes) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--fsize={bytes}")).arg("--").arg(vouchd);
                c
            }
            None => Command::new(vouchd),
        };
        let mut child = command
            .arg("--config")
            .arg(self.dir.path().join("vouchd.toml"))
            .env("VOUCHD_TEST_KEK", format!("test:{}", "5a".repeat(32)))
            .env_remove("VOUCH_KEK")
            .env_remove("VOUCH_KEYS")
            .env_remove("VOUCH_STORE")
            .env("VOUCH_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Echoed line by line (the daemon's own stderr may be a file its limit applies to).
        let stderr = Arc::new(Mutex::new(String::new()));
        let echo = {
            let stderr = Arc::clone(&stderr);
            let pipe = BufReader::new(child.stderr.take().unwrap());
            std::thread::spawn(move || {
                for line in pipe.lines().map_while(Result::ok) {
                    eprintln!("vouchd: {line}");
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            })
        };
        self.stderr = Arc::clone(&stderr);
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if !line.starts_with("vouchd ready") {
            let status = child.wait().unwrap();
            let _ = echo.join();
            let text = stderr.lock().unwrap().clone();
            return Err(format!("{status}; stdout {line:?}; stderr:\n{text}"));
        }
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_string()
        };
        self.unix = PathBuf::from(field("unix"));
        self.tcp = field("tcp").parse().unwrap();
        self.metrics = field("metrics").parse().unwrap();
        self.child = Some(child);
        Ok(())
    }

    /// The file-size limit (`RLIMIT_FSIZE`, bytes) of the next start; `None`: unlimited.
    pub fn set_file_size_limit(&mut self, bytes: Option<u64>) {
        self.file_size_limit = bytes;
    }

    /// What the current (or last) daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether the daemon process is still running (false once it has exited, however).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// A daemon shipping its audit log each second to the fleet PostgreSQL server at `url`,
    /// under an origin of its own (`PREFIX-PID-NANOS`, returned) so runs never mix.
    pub fn start_shipping(url: &str, prefix: &str) -> Option<(Daemon, String)> {
        let origin = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let daemon = Daemon::start_with(
            &format!("origin = \"{origin}\""),
            &format!("[daemon.ship]\npostgres_url = \"{url}\"\ninterval_seconds = 1\n"),
        )?;
        Some((daemon, origin))
    }

    /// A client on the Unix socket.
    pub async fn unix_client(&self) -> VouchClient<Channel> {
        VouchClient::new(self.unix_channel().await).max_decoding_message_size(64 << 20)
    }

    /// A channel on the Unix socket, for clients other than [`VouchClient`].
    pub async fn unix_channel(&self) -> Channel {
        unix_channel(self.unix.clone()).await
    }

    /// A client on TCP with `name`'s certificate (`None`: no certificate).
    pub async fn tls_client(&self, name: Option<&str>) -> Result<VouchClient<Channel>, String> {
        let certs = self.dir.path().join("certs");
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(
                std::fs::read(certs.join("ca.pem")).unwrap(),
            ))
            .domain_name("localhost");
        if let Some(name) = name {
            tls = tls.identity(Identity::from_pem(
                std::fs::read(certs.join(format!("{name}.pem"))).unwrap(),
                std::fs::read(certs.join(format!("{name}.key"))).unwrap(),
            ));
        }
        let channel = Endpoint::from_shared(format!("https://{}", self.tcp))
            .unwrap()
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(VouchClient::new(channel))
    }

    /// Stops the daemon with SIGTERM and waits; true when it exited cleanly.
    pub fn stop(&mut self) -> bool {
        self.stop_status().is_none_or(|s| s.success())
    }

    /// Stops the daemon with SIGTERM and waits; how it exited (`None`: it was not running).
    pub fn stop_status(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        Some(child.wait().unwrap())
    }

    /// Kills the daemon with SIGKILL (no shutdown of any kind) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn unix_channel(path: PathBuf) -> Channel {
    Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .unwrap()
}

pub fn image(path: &Path) -> pb::Image {
    pb::Image {
        data: std::fs::read(path).unwrap(),
        format: pb::ImageFormat::Jpeg as i32,
    }
}

pub fn face(name: &str) -> pb::Image {
    image(
        &util::shared_dir()
            .unwrap()
            .join("data/faces-deepface")
            .join(name),
    )
}

pub fn tx(id: &str, amount_minor: u64) -> pb::Transaction {
    pb::Transaction {
        id: id.to_string(),
        nonce: format!("nonce-{id}"),
        amount_minor,
        currency: "EUR".to_string(),
        merchant_category: "5411".to_string(),
    }
}

pub fn decision(d: i32) -> pb::Decision {
    pb::Decision::try_from(d).unwrap()
}

fn fsdd_bytes(digit: u8, speaker: &str, take: u32) -> Vec<u8> {
    std::fs::read(
        util::shared_dir()
            .unwrap()
            .join(format!("data/fsdd/recordings/{digit}_{speaker}_{take}.wav")),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_decides_over_the_unix_socket_with_receipts_and_an_audit_chain() {
    let Some(mut daemon) = Daemon::start("") else {
        return;
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&daemon.unix)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o660, "socket mode");
    }
    let mut client = daemon.unix_client().await;

    // Enrollment: three photos of one person; every sample judged.
    let enrolled = client
        .enroll(pb::EnrollRequest {
            subject: "alice".into(),
            face: vec![face("img1.jpg"), face("img2.jpg"), face("img6.jpg")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(enrolled.decision), pb::Decision::Accept);
    assert!(enrolled.face_enrolled);
    assert_eq!(enrolled.samples.len(), 3);

    let key = client
        .get_receipt_key(pb::GetReceiptKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    let public = vouch::receipt::parse_public_key(&key.public_key_hex).unwrap();

    // A small payment: face and liveness. The genuine probe is accepted, with no raw score.
    let genuine = client
        .verify(pb::VerifyRequest {
            subject: "alice".into(),
            transaction: Some(tx("t-1", 450)),
            frames: vec![face("img7.jpg")],
            voice: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(genuine.decision),
        pb::Decision::Accept,
        "{genuine:?}"
    );
    assert_eq!(genuine.policy_tier, "small");
    assert!(genuine.scores.is_none(), "raw scores outside research mode");
    let receipt = vouch::receipt::verify_receipt(&genuine.receipt, &public).unwrap();
    assert_eq!(
        (
            receipt.subject.as_str(),
            receipt.transaction_id.as_str(),
            receipt.decision.as_str()
        ),
        ("alice", "t-1", "accept")
    );
    assert_eq!(receipt.terminal, "local");
    assert_eq!(receipt.nonce, "nonce-t-1");
    assert!(
        receipt
            .models
            .iter()
            .any(|m| m.starts_with("mobilefacenet@"))
    );

    // Someone else.
    let impostor = client
        .verify(pb::VerifyRequest {
            subject: "alice".into(),
            transaction: Some(tx("t-2", 450)),
            frames: vec![face("img27.jpg")],
            voice: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(impostor.decision), pb::Decision::Reject);
    assert_eq!(impostor.reasons, ["face_mismatch"]);

    // A printed photo of an enrolled person: enroll from the live frame, attack with the print.
    let samples = util::shared_dir().unwrap().join("data/liveness-samples");
    let bob = client
        .enroll(pb::EnrollRequest {
            subject: "bob".into(),
            face: vec![image(&samples.join("image_T1.jpg"))],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(bob.decision), pb::Decision::Accept, "{bob:?}");
    let print = client
        .verify(pb::VerifyRequest {
            subject: "bob".into(),
            transaction: Some(tx("t-3", 450)),
            frames: vec![image(&samples.join("image_F1.jpg"))],
            voice: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(print.decision), pb::Decision::Reject);
    assert!(
        print.reasons.contains(&"liveness_failed".to_string()),
        "{print:?}"
    );

    // Above the ceiling, and a restricted merchant: refused by policy.
    let big = client
        .verify(pb::VerifyRequest {
            subject: "alice".into(),
            transaction: Some(tx("t-4", 1_000_000)),
            frames: vec![face("img7.jpg")],
            voice: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(big.decision), pb::Decision::Reject);
    assert_eq!(big.reasons, ["policy_refused"]);

    // Identification finds alice, and nobody for a stranger.
    let found = client
        .identify(pb::IdentifyRequest {
            frames: vec![face("img10.jpg")],
            top_k: 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(found.decision), pb::Decision::Accept, "{found:?}");
    assert_eq!(found.subject, "alice");
    assert!(
        found.candidates.is_empty(),
        "candidates outside research mode"
    );
    let nobody = client
        .identify(pb::IdentifyRequest {
            frames: vec![face("img29.jpg")],
            top_k: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(nobody.decision), pb::Decision::Reject);
    assert!(nobody.subject.is_empty());

    // Subjects: counts, deletion, then not found.
    let alice = client
        .get_subject(pb::GetSubjectRequest {
            subject: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice.face_templates, 1);
    let deleted = client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.templates_deleted, 1);
    let gone = client
        .get_subject(pb::GetSubjectRequest {
            subject: "bob".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);

    // Health and metrics.
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(unix_channel(daemon.unix.clone()).await);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "vouch.v1.Vouch".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(serving.status, 1, "SERVING");
    let metrics = scrape(daemon.metrics).await;
    assert!(
        metrics.contains("vouchd_requests_total{method=\"Verify\",code=\"OK\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("vouchd_decisions_total{method=\"Verify\",decision=\"DECISION_ACCEPT\"} 1")
    );

    // Graceful stop, then the chain verifies and holds every decision.
    assert!(daemon.stop(), "vouchd exited uncleanly");
    assert!(!daemon.unix.exists(), "socket removed on shutdown");
    let audit = vouch::audit::verify_file(&daemon.dir.path().join("audit.log")).unwrap();
    // start, 2 enrollments, 4 verifications, 2 identifications, 1 deletion, stop.
    assert_eq!(audit.records, 11, "{audit:?}");
    let log = std::fs::read_to_string(daemon.dir.path().join("audit.log")).unwrap();
    assert!(
        log.contains(&genuine.receipt),
        "the receipt is in the audit log"
    );
}

async fn scrape(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_requires_a_client_certificate_from_its_ca_on_tcp() {
    let Some(daemon) = Daemon::start("") else {
        return;
    };
    let mut till = daemon.tls_client(Some("till-1")).await.unwrap();
    let key = till
        .get_receipt_key(pb::GetReceiptKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(key.public_key_hex.len(), 64);
    let unknown = till
        .get_subject(pb::GetSubjectRequest {
            subject: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // till-2 may only fetch the receipt key.
    let mut limited = daemon.tls_client(Some("till-2")).await.unwrap();
    limited
        .get_receipt_key(pb::GetReceiptKeyRequest {})
        .await
        .unwrap();
    let denied = limited
        .get_subject(pb::GetSubjectRequest {
            subject: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // No certificate, or one from another CA: the handshake or the first call fails.
    for name in [None, Some("rogue")] {
        match daemon.tls_client(name).await {
            Err(_) => {}
            Ok(mut client) => {
                let refused = client
                    .get_receipt_key(pb::GetReceiptKeyRequest {})
                    .await
                    .unwrap_err();
                assert!(
                    matches!(
                        refused.code(),
                        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                    ),
                    "{name:?}: {refused:?}"
                );
            }
        }
    }
    // The daemon still serves.
    till.get_receipt_key(pb::GetReceiptKeyRequest {})
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_steps_up_to_a_spoken_passphrase_for_large_amounts() {
    let Some(daemon) = Daemon::start("") else {
        return;
    };
    if util::data_file("fsdd/recordings/0_george_5.wav").is_none() {
        return;
    }
    let mut client = daemon.unix_client().await;
    // Face, and george's digits 0–9, takes 5–9 (the probes use takes 0–4).
    let digits: Vec<pb::DigitRecording> = (0..10u8)
        .flat_map(|d| {
            (5..10).map(move |take| pb::DigitRecording {
                digit: u32::from(d),
                audio: Some(pb::Audio {
                    data: fsdd_bytes(d, "george", take),
                    format: pb::AudioFormat::Wav as i32,
                }),
            })
        })
        .collect();
    let enrolled = client
        .enroll(pb::EnrollRequest {
            subject: "carol".into(),
            face: vec![face("img1.jpg"), face("img2.jpg")],
            digits,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        enrolled.face_enrolled && enrolled.voice_enrolled,
        "{enrolled:?}"
    );

    // A large payment without voice: step up.
    let stepped = client
        .verify(pb::VerifyRequest {
            subject: "carol".into(),
            transaction: Some(tx("big-1", 100_000)),
            frames: vec![face("img7.jpg")],
            voice: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(stepped.decision),
        pb::Decision::StepUp,
        "{stepped:?}"
    );
    assert_eq!(stepped.reasons, ["voice_required"]);

    // A small one needs no challenge.
    let small = client
        .challenge(pb::ChallengeRequest {
            subject: "carol".into(),
            transaction: Some(tx("small-1", 100)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!small.required);

    let speak = |speaker: &str, digits: &str, first_take: u32| pb::Audio {
        data: util::wav_16k(
            util::fsdd_phrase(speaker, digits, first_take)
                .unwrap()
                .samples(),
        ),
        format: pb::AudioFormat::Wav as i32,
    };
    // The customer speaks the digits. Genuine acceptance of the passphrase is ~88 % per
    // attempt on FSDD (README), so up to three challenges are allowed here.
    let mut accepted = false;
    let mut last = None;
    for attempt in 0..3u32 {
        let challenge = client
            .challenge(pb::ChallengeRequest {
                subject: "carol".into(),
                transaction: Some(tx("big-1", 100_000)),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(challenge.required && challenge.digits.len() == 6);
        let answer = client
            .verify(pb::VerifyRequest {
                subject: "carol".into(),
                transaction: Some(tx("big-1", 100_000)),
                frames: vec![face("img7.jpg")],
                voice: Some(pb::VoiceResponse {
                    challenge_id: challenge.challenge_id.clone(),
                    audio: Some(speak("george", &challenge.digits, attempt)),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        // The challenge is single-use.
        let reused = client
            .verify(pb::VerifyRequest {
                subject: "carol".into(),
                transaction: Some(tx("big-1", 100_000)),
                frames: vec![face("img7.jpg")],
                voice: Some(pb::VoiceResponse {
                    challenge_id: challenge.challenge_id,
                    audio: Some(speak("george", &challenge.digits, attempt)),
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(reused.code(), tonic::Code::FailedPrecondition);
        if decision(answer.decision) == pb::Decision::Accept {
            assert_eq!(answer.factors_used, ["face", "liveness", "voice"]);
            accepted = true;
            break;
        }
        last = Some(answer);
    }
    assert!(
        accepted,
        "three genuine passphrases refused; last: {last:?}"
    );

    // Another speaker saying the right digits, and a replay of other digits: refused.
    for (speaker, replay) in [("jackson", false), ("george", true)] {
        let challenge = client
            .challenge(pb::ChallengeRequest {
                subject: "carol".into(),
                transaction: Some(tx("big-2", 100_000)),
            })
            .await
            .unwrap()
            .into_inner();
        let spoken = if replay {
            // An old recording: the digits of another challenge.
            let mut other: Vec<u8> = challenge.digits.bytes().collect();
            for d in &mut other {
                *d = b'0' + (*d - b'0' + 5) % 10;
            }
            String::from_utf8(other).unwrap()
        } else {
            challenge.digits.clone()
        };
        let answer = client
            .verify(pb::VerifyRequest {
                subject: "carol".into(),
                transaction: Some(tx("big-2", 100_000)),
                frames: vec![face("img7.jpg")],
                voice: Some(pb::VoiceResponse {
                    challenge_id: challenge.challenge_id,
                    audio: Some(speak(speaker, &spoken, 0)),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_ne!(
            decision(answer.decision),
            pb::Decision::Accept,
            "{speaker} replay={replay}: {answer:?}"
        );
    }
}

#[test]
fn vouchd_check_config_refuses_bad_files_and_accepts_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[daemon]\nsocket_mode = \"0666\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vouchd"))
        .args(["--check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("socket_mode"));
}

#[test]
fn python_client_over_both_transports() {
    let python_ready = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !python_ready {
        // CI installs them and sets this, so that a missing client fails instead of skipping.
        assert!(
            std::env::var_os("VOUCH_REQUIRE_PYTHON_GRPC").is_none(),
            "python3 with grpcio and grpcio-tools is required"
        );
        util::skip("python3 with grpcio and grpcio-tools is not installed");
        return;
    }
    let Some(daemon) = Daemon::start("") else {
        return;
    };
    let status = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/vouchd_client.py"))
        .arg("--unix")
        .arg(&daemon.unix)
        .arg("--tcp")
        .arg(daemon.tcp.to_string())
        .arg("--certs")
        .arg(daemon.dir.path().join("certs"))
        .arg("--data")
        .arg(util::shared_dir().unwrap().join("data"))
        .status()
        .unwrap();
    assert!(status.success(), "the Python client failed");
}

#[test]
fn daemon_ships_its_audit_log_through_a_database_outage() {
    let Some((url, data)) = crate::store::postgres() else {
        return;
    };
    let _one_at_a_time = crate::store::POSTGRES_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some((mut daemon, origin)) = Daemon::start_shipping(&url, "daemon-test") else {
        return;
    };
    let shipped = |origin: &str| -> Vec<(i64, String)> {
        let Ok(mut db) = postgres::Client::connect(&url, postgres::NoTls) else {
            return Vec::new();
        };
        db.query(
            "SELECT seq, hash FROM vouch_audit WHERE origin = $1 ORDER BY seq",
            &[&origin],
        )
        .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        .unwrap_or_default()
    };
    let wait_for = |count: usize| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while shipped(&origin).len() < count && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        shipped(&origin).len()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let verify = |client: &mut VouchClient<Channel>, id: &str| {
        runtime
            .block_on(client.verify(pb::VerifyRequest {
                subject: "erin".into(),
                transaction: Some(tx(id, 450)),
                frames: vec![face("img7.jpg")],
                voice: None,
            }))
            .unwrap()
            .into_inner()
    };
    let mut client = runtime.block_on(daemon.unix_client());
    runtime
        .block_on(client.enroll(pb::EnrollRequest {
            subject: "erin".into(),
            face: vec![face("img1.jpg"), face("img2.jpg")],
            ..Default::default()
        }))
        .unwrap();
    verify(&mut client, "s-1");
    assert_eq!(wait_for(3), 3, "start, enroll and a verification shipped");

    // The fleet store goes away: decisions go on, recorded locally.
    crate::store::postgres_script("stop", &data);
    for i in 2..=4 {
        let d = verify(&mut client, &format!("s-{i}"));
        assert_eq!(decision(d.decision), pb::Decision::Accept);
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    crate::store::postgres_script("start", &data);
    assert_eq!(
        wait_for(6),
        6,
        "the records of the outage shipped once it ended"
    );

    // On shutdown the last records (the stop) are shipped too; every local record is in the
    // fleet store exactly once, in order, with the same hash.
    assert!(daemon.stop());
    let log = std::fs::read_to_string(daemon.dir.path().join("audit.log")).unwrap();
    let local: Vec<(i64, String)> = log
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["seq"].as_i64().unwrap(),
                v["hash"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(local.len(), 7);
    assert_eq!(shipped(&origin), local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_locks_a_subject_after_repeated_failures() {
    let Some(daemon) = Daemon::start(
        "[decisions.attempts]\nmax_subject_failures = 2\nwindow_seconds = 600\nlockout_seconds = 600\n",
    ) else {
        return;
    };
    let mut client = daemon.unix_client().await;
    client
        .enroll(pb::EnrollRequest {
            subject: "frank".into(),
            face: vec![face("img1.jpg"), face("img2.jpg")],
            ..Default::default()
        })
        .await
        .unwrap();
    let attempt = |frame: &'static str, id: &'static str| pb::VerifyRequest {
        subject: "frank".into(),
        transaction: Some(tx(id, 450)),
        frames: vec![face(frame)],
        voice: None,
    };
    for id in ["l-1", "l-2"] {
        let d = client
            .verify(attempt("img27.jpg", id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(decision(d.decision), pb::Decision::Reject);
    }
    // Now even the genuine customer is locked out, and told for how long.
    let locked = client
        .verify(attempt("img7.jpg", "l-3"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(locked.decision),
        pb::Decision::Locked,
        "{locked:?}"
    );
    assert_eq!(locked.reasons, ["subject_locked"]);
    assert!(locked.retry_after_seconds > 500 && locked.retry_after_seconds <= 600);
    let public = vouch::receipt::parse_public_key(
        &client
            .get_receipt_key(pb::GetReceiptKeyRequest {})
            .await
            .unwrap()
            .into_inner()
            .public_key_hex,
    )
    .unwrap();
    let receipt = vouch::receipt::verify_receipt(&locked.receipt, &public).unwrap();
    assert_eq!(receipt.decision, "locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_verification_finish() {
    let Some(mut daemon) = Daemon::start("") else {
        return;
    };
    let mut client = daemon.unix_client().await;
    client
        .enroll(pb::EnrollRequest {
            subject: "gina".into(),
            face: vec![face("img1.jpg")],
            ..Default::default()
        })
        .await
        .unwrap();
    let in_flight = tokio::spawn(async move {
        client
            .verify(pb::VerifyRequest {
                subject: "gina".into(),
                transaction: Some(tx("g-1", 450)),
                frames: vec![face("img7.jpg"), face("img7.jpg"), face("img7.jpg")],
                voice: None,
            })
            .await
    });
    // Let the request reach a worker, then ask the daemon to stop.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let stopped = tokio::task::spawn_blocking(move || {
        let clean = daemon.stop();
        (clean, daemon)
    });
    let answer = in_flight.await.unwrap().unwrap().into_inner();
    assert_eq!(
        decision(answer.decision),
        pb::Decision::Accept,
        "{answer:?}"
    );
    let (clean, _daemon) = stopped.await.unwrap();
    assert!(clean, "vouchd exited uncleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_mode_reports_scores_and_reflection_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    // `extra` lands after the [decisions] table.
    let Some(daemon) = Daemon::start("[dangerous]\nresearch_scores = true") else {
        return;
    };
    let mut client = daemon.unix_client().await;
    let enrolled = client
        .enroll(pb::EnrollRequest {
            subject: "alice".into(),
            face: vec![face("img2.jpg"), face("img6.jpg")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(enrolled.decision), pb::Decision::Accept);
    let scores = |probe: &str, id: &str| {
        let mut client = client.clone();
        let (probe, id) = (probe.to_string(), id.to_string());
        async move {
            let answer = client
                .verify(pb::VerifyRequest {
                    subject: "alice".into(),
                    transaction: Some(tx(&id, 450)),
                    frames: vec![face(&probe)],
                    voice: None,
                })
                .await
                .unwrap()
                .into_inner();
            (
                decision(answer.decision),
                answer.scores.expect("research scores"),
            )
        }
    };
    // The same person scores above the face threshold, someone else below it; the threshold
    // and the liveness score come with them.
    let (genuine, g) = scores("img7.jpg", "t-g").await;
    let (impostor, i) = scores("img27.jpg", "t-i").await;
    assert_eq!(
        (genuine, impostor),
        (pb::Decision::Accept, pb::Decision::Reject)
    );
    let threshold = g.face_threshold.unwrap();
    assert!(g.face.unwrap() > threshold, "{g:?}");
    assert!(i.face.unwrap() < threshold, "{i:?}");
    assert_eq!(i.face_threshold, Some(threshold));
    assert!(g.liveness.is_some() && g.voice.is_none(), "{g:?}");

    // Server reflection names the service and health, so grpcurl-style tools work unaided.
    let mut reflection = ServerReflectionClient::new(daemon.unix_channel().await);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in ["vouch.v1.Vouch", "grpc.health.v1.Health"] {
        assert!(names.contains(&expected), "{names:?}");
    }
}
