//! The daemons the tests talk to, shared by the integration and the fault-injection binaries:
//! a folder holding everything a daemon needs ([`prepare`]), the server run in-process on the
//! test's own runtime ([`InProcess`], for the decision tests), the real `vouchd` binary
//! ([`Vouchd`], for what only a process can show: signals, SIGKILL, file-size limits, exit
//! statuses), clients over either transport ([`Listening`]), and request builders.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use vouch::daemon::proto as pb;
use vouch::daemon::proto::vouch_client::VouchClient;

use crate::util;

/// Where the test daemons' templates are sealed: the key `test` = 0x5a × 32.
pub fn test_keyring() -> vouch::template::Keyring {
    vouch::template::Keyring::single(
        "test",
        vouch::template::Kek::from_hex(&"5a".repeat(32)).unwrap(),
    )
    .unwrap()
}

/// Where a test daemon's key comes from (its `[keys]` table).
#[derive(Clone, Copy)]
pub enum Keys {
    /// The environment variable `VOUCHD_TEST_KEK`, which [`Vouchd`] sets for its child (an
    /// in-process daemon cannot: the test's environment is shared by every test).
    Env,
    /// [`test_keyring`] in the file `keys.toml` of the daemon's folder.
    File,
}

/// A folder holding everything a daemon needs (test certificates, a receipt key, the test key
/// file, and the configuration `vouchd.toml` with its key from `keys`), or `None` (reason
/// printed) without the real models. `daemon_extra` is added to the `[daemon]` table, `extra`
/// to the end of the file. The store, audit log and socket go in the folder too.
pub fn prepare(daemon_extra: &str, keys: Keys, extra: &str) -> Option<tempfile::TempDir> {
    let models = util::model_dir().or_else(|| {
        util::skip("no complete .vouch/models (scripts/setup.sh)");
        None
    })?;
    let lib = util::ort_library().or_else(|| {
        util::skip("no ONNX Runtime library");
        None
    })?;
    let ubm = util::ubm().or_else(|| {
        util::skip("no GMM-UBM (scripts/setup.sh trains it)");
        None
    })?;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let status = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-certs.sh"))
        .arg(d.join("certs"))
        .status()
        .unwrap();
    assert!(status.success(), "scripts/test-certs.sh failed");
    vouch::receipt::ReceiptSigner::generate(&d.join("receipt.key")).unwrap();
    test_keyring().save(&d.join("keys.toml")).unwrap();
    let keys = match keys {
        Keys::Env => "env = \"VOUCHD_TEST_KEK\"".to_string(),
        Keys::File => format!("file = \"{}\"", d.join("keys.toml").display()),
    };
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
methods = ["Enroll", "Verify", "Identify", "Challenge", "LivenessChallenge", "DeleteSubject", "GetSubject", "GetReceiptKey"]
[daemon.terminals.till-2]
methods = ["GetReceiptKey"]
[runtime]
library = "{lib}"
[models]
dir = "{models}"
[voice]
ubm = "{ubm}"
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
        models = models.display(),
        ubm = ubm.display(),
    );
    std::fs::write(d.join("vouchd.toml"), config).unwrap();
    Some(dir)
}

/// A `[decisions]` line naming a policy with the built-in tiers and no velocity rules, for
/// tests that verify one customer over and over (the built-in rules would step them up after
/// five payments): written once per test process.
pub fn no_velocity_policy() -> String {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let path = PATH.get_or_init(|| {
        let builtin = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("policy/default.toml"),
        )
        .unwrap();
        let tiers = &builtin[..builtin.find("[[velocity]]").expect("velocity rules")];
        let path =
            std::env::temp_dir().join(format!("vouch-no-velocity-{}.toml", std::process::id()));
        std::fs::write(&path, tiers).unwrap();
        path
    });
    format!("policy = \"{}\"", path.display())
}

/// Where a daemon listens, with clients for each transport.
#[derive(Clone, Debug)]
pub struct Listening {
    pub unix: PathBuf,
    pub tcp: SocketAddr,
    pub metrics: SocketAddr,
    /// The test PKI (`scripts/test-certs.sh`).
    certs: PathBuf,
}

impl Listening {
    fn new(bound: &vouch::daemon::Bound, dir: &Path) -> Listening {
        Listening {
            unix: bound
                .unix
                .clone()
                .expect("the test daemon serves on a Unix socket"),
            tcp: bound.tcp.expect("the test daemon serves on TCP"),
            metrics: bound.metrics.expect("the test daemon serves metrics"),
            certs: dir.join("certs"),
        }
    }

    /// A client on the Unix socket.
    pub async fn unix_client(&self) -> VouchClient<Channel> {
        VouchClient::new(self.unix_channel().await).max_decoding_message_size(64 << 20)
    }

    /// A channel on the Unix socket, for clients other than [`VouchClient`].
    pub async fn unix_channel(&self) -> Channel {
        let path = self.unix.clone();
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

    /// A client on TCP with `name`'s certificate (`None`: no certificate).
    pub async fn tls_client(&self, name: Option<&str>) -> Result<VouchClient<Channel>, String> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(
                std::fs::read(self.certs.join("ca.pem")).unwrap(),
            ))
            .domain_name("localhost");
        if let Some(name) = name {
            tls = tls.identity(Identity::from_pem(
                std::fs::read(self.certs.join(format!("{name}.pem"))).unwrap(),
                std::fs::read(self.certs.join(format!("{name}.key"))).unwrap(),
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

    /// The Prometheus text of the metrics port (headers included).
    pub async fn scrape(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).await.unwrap();
        body
    }
}

/// The daemon served in-process (`vouch::daemon::serve`) on the test's tokio runtime, from a
/// folder made by [`prepare`] and its configuration text read by `DaemonFile::parse`, as
/// `vouchd` reads it; stopped through its shutdown future ([`InProcess::stop`]), and on drop.
/// The test and the daemon share one process, so they share one ONNX Runtime environment.
pub struct InProcess {
    pub dir: tempfile::TempDir,
    listening: Listening,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<vouch::Result<()>>>,
}

impl InProcess {
    /// Serves with the real models, or `None` (reason printed) without them. `extra` is
    /// appended to the configuration file. Panics if the daemon does not start.
    pub async fn start(extra: &str) -> Option<InProcess> {
        let dir = prepare("", Keys::File, extra)?;
        // What `vouchd` would take from its environment must not redirect a test's daemon
        // (the binary's tests remove these variables from the child's environment instead).
        for var in ["VOUCH_KEK", "VOUCH_KEYS", "VOUCH_STORE"] {
            assert!(
                std::env::var_os(var).is_none(),
                "{var} is set: it would redirect the in-process test daemons; unset it"
            );
        }
        let text = std::fs::read_to_string(dir.path().join("vouchd.toml")).unwrap();
        let file = vouch::daemon::DaemonFile::parse(&text).unwrap();
        // Loading the models blocks: off the runtime's threads, as `vouchd` does before serving.
        let opened = file.clone();
        let deployment =
            tokio::task::spawn_blocking(move || vouch::daemon::Deployment::open(&opened))
                .await
                .unwrap()
                .unwrap();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tell, bound) = tokio::sync::oneshot::channel();
        let served = tokio::spawn(vouch::daemon::serve(
            file,
            deployment,
            async move {
                // A send, or the sender dropped with the test: either way, stop.
                let _ = stopped.await;
            },
            move |bound: &vouch::daemon::Bound| {
                let _ = tell.send(bound.clone());
            },
        ));
        let bound = match bound.await {
            Ok(bound) => bound,
            Err(_) => panic!(
                "the in-process daemon did not start: {:?}",
                served.await.unwrap()
            ),
        };
        let listening = Listening::new(&bound, dir.path());
        Some(InProcess {
            dir,
            listening,
            shutdown: Some(shutdown),
            served: Some(served),
        })
    }

    /// Stops the daemon through its shutdown future and waits until it has let in-flight
    /// requests finish, removed its socket and written its stop record: how serving ended.
    pub async fn stop(&mut self) -> vouch::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.served.take() {
            Some(served) => served.await.expect("the in-process daemon panicked"),
            None => Ok(()),
        }
    }
}

impl std::ops::Deref for InProcess {
    type Target = Listening;

    fn deref(&self) -> &Listening {
        &self.listening
    }
}

/// The real `vouchd` binary running in its own folder; stopped (SIGTERM) on drop.
pub struct Vouchd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    listening: Option<Listening>,
    /// Everything the daemon wrote to stderr (also echoed to the test's stderr).
    stderr: Arc<Mutex<String>>,
    /// `RLIMIT_FSIZE` in bytes for the next start (see [`Vouchd::set_file_size_limit`]).
    file_size_limit: Option<u64>,
}

impl Vouchd {
    /// Starts `vouchd` with the real models, or `None` (reason printed) without them.
    /// `extra` is appended to the configuration file.
    pub fn start(extra: &str) -> Option<Vouchd> {
        Vouchd::start_with("", extra)
    }

    /// As [`Vouchd::start`], with `daemon_extra` added to the `[daemon]` table.
    pub fn start_with(daemon_extra: &str, extra: &str) -> Option<Vouchd> {
        let dir = prepare(daemon_extra, Keys::Env, extra)?;
        Some(Vouchd::launch(dir, None))
    }

    /// Starts `vouchd` on a folder made by [`prepare`] (or left by an earlier daemon), with a
    /// file-size limit of `file_size_limit` bytes when given; panics with its stderr if it
    /// does not start.
    pub fn launch(dir: tempfile::TempDir, file_size_limit: Option<u64>) -> Vouchd {
        let mut daemon = Vouchd {
            child: None,
            dir,
            listening: None,
            stderr: Arc::default(),
            file_size_limit,
        };
        if let Err(stderr) = daemon.try_restart() {
            panic!("vouchd did not start: {stderr}");
        }
        daemon
    }

    /// Starts `vouchd` again on the same folder (same store, keys and audit log) after
    /// [`Vouchd::stop`] or [`Vouchd::kill`]. On failure, its stderr (it has exited).
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
        let bound = vouch::daemon::Bound {
            unix: Some(PathBuf::from(field("unix"))),
            tcp: Some(field("tcp").parse().unwrap()),
            metrics: Some(field("metrics").parse().unwrap()),
        };
        self.listening = Some(Listening::new(&bound, self.dir.path()));
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
    pub fn start_shipping(url: &str, prefix: &str) -> Option<(Vouchd, String)> {
        let origin = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let daemon = Vouchd::start_with(
            &format!("origin = \"{origin}\""),
            &format!(
                "{}\n[daemon.ship]\npostgres_url = \"{url}\"\ninterval_seconds = 1\n",
                no_velocity_policy()
            ),
        )?;
        Some((daemon, origin))
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

impl std::ops::Deref for Vouchd {
    type Target = Listening;

    /// Where the current (or last) daemon listened.
    fn deref(&self) -> &Listening {
        self.listening.as_ref().expect("vouchd has not started yet")
    }
}

impl Drop for Vouchd {
    fn drop(&mut self) {
        self.stop();
    }
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

/// A face-only payment request: `subject` pays `amount_minor` cents, shown in the deepface
/// photo `frame`.
pub fn face_payment(subject: &str, frame: &str, id: &str, amount_minor: u64) -> pb::VerifyRequest {
    pb::VerifyRequest {
        subject: subject.into(),
        transaction: Some(tx(id, amount_minor)),
        frames: vec![face(frame)],
        voice: None,
        movement: None,
    }
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
