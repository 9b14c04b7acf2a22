//! Shared helpers for the integration tests: finding the real models and data, one engine per
//! test binary, and small byte-level builders for bad inputs.
//!
//! A test whose models, data, runtime or PostgreSQL server are absent says so through
//! [`skip`] and returns; with `VOUCH_REQUIRE_MODELS=1` (CI sets it) that is a failure, so a
//! green run cannot mean that nothing ran.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use vouch::{Config, Engine};

/// Whether every test must run (`VOUCH_REQUIRE_MODELS=1`): a missing input is then a failure.
pub fn required() -> bool {
    std::env::var("VOUCH_REQUIRE_MODELS").is_ok_and(|v| v == "1")
}

/// Says why a test cannot run; with `VOUCH_REQUIRE_MODELS=1`, fails it instead.
#[track_caller]
pub fn skip(reason: impl std::fmt::Display) {
    assert!(
        !required(),
        "VOUCH_REQUIRE_MODELS=1, but this test cannot run: {reason}"
    );
    eprintln!("skipped: {reason}");
}

/// The folder holding `models/` and `data/`: `$VOUCH_SHARED`, else `../shared` beside the
/// checkout.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("VOUCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    dir.join("models").is_dir().then_some(dir)
}

/// [`shared_dir`], or `None` after saying why ([`skip`]).
pub fn shared() -> Option<PathBuf> {
    let dir = shared_dir();
    if dir.is_none() {
        skip("no shared folder (set VOUCH_SHARED)");
    }
    dir
}

/// `libonnxruntime.so`: `$VOUCH_ORT_LIB`, else the copy `scripts/setup.sh` makes.
pub fn ort_library() -> Option<PathBuf> {
    let lib = std::env::var_os("VOUCH_ORT_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".vouch/lib/libonnxruntime.so")
        });
    lib.is_file().then_some(lib)
}

/// The model directory `scripts/setup.sh` fills: the shared models copied and verified, the
/// quantised face embedder it makes, the GMM-UBM it trains (`.vouch/models`), when it holds
/// them all.
pub fn model_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".vouch/models");
    let complete = ["mobilefacenet/MobileFaceNet.int8.onnx", "gmm-ubm.vubm"]
        .iter()
        .all(|f| dir.join(f).is_file());
    complete.then_some(dir)
}

/// The GMM-UBM in [`model_dir`], or `$VOUCH_UBM`.
pub fn ubm() -> Option<PathBuf> {
    let ubm = std::env::var_os("VOUCH_UBM")
        .map(PathBuf::from)
        .or_else(|| model_dir().map(|d| d.join("gmm-ubm.vubm")))?;
    ubm.is_file().then_some(ubm)
}

/// A config that uses the models of [`model_dir`], the runtime library and the GMM-UBM, or
/// the reason it cannot.
pub fn real_config() -> Result<Config, String> {
    shared_dir().ok_or("no shared folder (set VOUCH_SHARED)")?;
    let lib = ort_library()
        .ok_or("no ONNX Runtime library (run scripts/setup.sh or set VOUCH_ORT_LIB)")?;
    let models = model_dir().ok_or(
        "no complete .vouch/models (scripts/setup.sh copies the models, quantises the face embedder and trains the GMM-UBM)",
    )?;
    let ubm = ubm().ok_or("no GMM-UBM (scripts/setup.sh trains it, or set VOUCH_UBM)")?;
    let mut config = Config::default();
    config.models.dir = models;
    config.runtime.library = Some(lib);
    config.voice.ubm = ubm;
    Ok(config)
}

/// One engine on the real models for the whole test binary, or `None` (with the reason
/// printed) when the models or runtime are absent.
pub fn engine() -> Option<&'static Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        let config = real_config()?;
        config
            .validate()
            .and_then(Engine::new)
            .map_err(|e| format!("engine failed to start: {e:#}"))
    });
    match engine {
        Ok(engine) => Some(engine),
        Err(reason) => {
            // A missing model folder or runtime is a skip; an engine that fails to start on
            // present models is a failure.
            assert!(!reason.starts_with("engine failed"), "{reason}");
            skip(reason);
            None
        }
    }
}

/// A file under `shared/data`, or `None` (reason printed) when absent.
pub fn data_file(relative: &str) -> Option<PathBuf> {
    let path = shared()?.join("data").join(relative);
    if path.is_file() {
        Some(path)
    } else {
        skip(format!("{} is absent", path.display()));
        None
    }
}

/// A folder under `shared/data`, or `None` (reason printed) when absent.
pub fn data_dir(relative: &str) -> Option<PathBuf> {
    let path = shared()?.join("data").join(relative);
    if path.is_dir() {
        Some(path)
    } else {
        skip(format!("{} is absent", path.display()));
        None
    }
}

/// CRC-32 (IEEE) as PNG chunks use it.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header declares `width × height` but whose data is a few bytes: a
/// decompression-bomb shape that must be refused from the header alone.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

/// Encodes an RGB image as PNG.
pub fn png(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb(pixel(x, y)));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encoding a PNG in memory");
    out.into_inner()
}

/// A 16-bit PCM mono WAV file at 16 kHz of `samples` in [-1, 1].
pub fn wav_16k(samples: &[f32]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&32_000u32.to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes());
    }
    out
}

/// One FSDD take of `digit` by `speaker`, or `None` (skip) without the data.
pub fn fsdd_take(digit: u8, speaker: &str, take: u32) -> Option<vouch::voice::Audio> {
    let path = data_file(&format!("fsdd/recordings/{digit}_{speaker}_{take}.wav"))?;
    let limits = vouch::voice::AudioLimits {
        min_seconds: 0.1,
        ..vouch::voice::AudioLimits::default()
    };
    Some(vouch::voice::Audio::open(&path, &limits).unwrap())
}

/// `digits` spoken by `speaker`, from takes `first_take`, `first_take + 1`, … (mod 5, so
/// within FSDD's test split 0–4), 0.3 s of silence around each.
pub fn fsdd_phrase(speaker: &str, digits: &str, first_take: u32) -> Option<vouch::voice::Audio> {
    let takes = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| fsdd_take(b - b'0', speaker, (first_take + i as u32) % 5))
        .collect::<Option<Vec<_>>>()?;
    Some(vouch::voice::audio::join_recordings(&takes.iter().collect::<Vec<_>>(), 0.3).unwrap())
}

/// `speaker` saying the ten digits 0–9 in order (their take `take` of each, 0.3 s pauses):
/// what a customer says at voice enrollment.
pub fn fsdd_sequence(speaker: &str, take: u32) -> Option<vouch::voice::Audio> {
    let takes = (0..10u8)
        .map(|d| fsdd_take(d, speaker, take))
        .collect::<Option<Vec<_>>>()?;
    Some(vouch::voice::audio::join_recordings(&takes.iter().collect::<Vec<_>>(), 0.3).unwrap())
}

/// [`fsdd_sequence`] as a 16 kHz WAV file's bytes.
pub fn fsdd_sequence_wav(speaker: &str, take: u32) -> Option<Vec<u8>> {
    Some(wav_16k(fsdd_sequence(speaker, take)?.samples()))
}

/// The `vouch` binary, pointed at the shared models and the runtime library when present.
pub fn vouch() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vouch"));
    if let Some(lib) = ort_library() {
        cmd.env("VOUCH_ORT_LIB", lib);
    }
    if let Some(models) = model_dir() {
        cmd.env("VOUCH_MODEL_DIR", models);
    }
    if let Some(ubm) = ubm() {
        cmd.env("VOUCH_UBM", ubm);
    }
    cmd
}

/// An authenticator of its own over the real models, with its store, keys, receipt key and
/// audit log in `dir`, and an engine of its own (so its detection counter counts only its
/// requests); `edit` adjusts the configuration first. `None` (reason printed) without the
/// models.
pub fn authenticator(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut Config),
) -> Option<vouch::authenticator::Authenticator> {
    let config = deployment(dir, edit)?;
    Some(vouch::authenticator::Authenticator::open(config.validate().unwrap()).unwrap())
}

/// The configuration of a deployment over the real models with its store, keys, receipt key
/// and audit log in `dir` (the key files made), `edit` applied; not opened, so a test can
/// see it refused. `None` (reason printed) without the models.
pub fn deployment(dir: &std::path::Path, edit: impl FnOnce(&mut Config)) -> Option<Config> {
    let mut config = match real_config() {
        Ok(config) => config,
        Err(reason) => {
            skip(reason);
            return None;
        }
    };
    config.store.sqlite = dir.join("templates.db");
    config.keys.file = dir.join("keys.toml");
    config.keys.env = None;
    config.decisions.receipt_key = dir.join("receipt.key");
    config.decisions.audit_log = dir.join("audit.log");
    edit(&mut config);
    // A key file another authenticator of the test already made is shared, not replaced.
    if !config.keys.file.exists() {
        vouch::template::Keyring::generate("k1")
            .unwrap()
            .save(&config.keys.file)
            .unwrap();
    }
    vouch::receipt::ReceiptSigner::generate(&config.decisions.receipt_key).unwrap();
    Some(config)
}

/// A faces-deepface photo's bytes, or `None` (reason printed) when absent.
pub fn deepface(name: &str) -> Option<Vec<u8>> {
    data_file(&format!("faces-deepface/{name}")).map(|p| std::fs::read(p).unwrap())
}

/// Polls `done` until it holds; after `within`, panics saying what never happened. For
/// waiting on what another thread or process does, instead of sleeping for a guess: the bound
/// only turns a hang into a clear failure, and is no timing assertion.
#[track_caller]
pub fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < until,
            "still waiting after {within:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_until`] for a condition checked asynchronously (over a connection, say).
pub async fn wait_until_async<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> F,
) {
    let until = Instant::now() + within;
    while !done().await {
        assert!(
            Instant::now() < until,
            "still waiting after {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The test PostgreSQL server, when the environment provides one (`scripts/postgres.sh`):
/// its connection string and data folder.
pub fn postgres() -> Option<(String, String)> {
    match (
        std::env::var("VOUCH_TEST_POSTGRES_URL"),
        std::env::var("VOUCH_TEST_POSTGRES_DATA"),
    ) {
        (Ok(url), Ok(data)) => Some((url, data)),
        _ => {
            skip("no test PostgreSQL server (run `eval \"$(scripts/postgres.sh start)\"`)");
            None
        }
    }
}

/// Holds the test PostgreSQL server (data folder `data`) for one test at a time, across
/// threads and test binaries alike (some tests stop and restart it): an exclusive lock on
/// `DATA.tests.lock`, released when the returned file is dropped.
pub fn postgres_exclusive(data: &str) -> std::fs::File {
    let path = format!("{data}.tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {path}: {e}"));
    file.lock()
        .unwrap_or_else(|e| panic!("locking {path}: {e}"));
    file
}

/// Runs `scripts/postgres.sh ARG` (`stop`, `start`) on the test server in `data`.
pub fn postgres_script(arg: &str, data: &str) {
    let mut command = std::process::Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh"),
    );
    // Restarted on the port the tests connect to, whatever the script's default.
    if let Some(port) = std::env::var("VOUCH_TEST_POSTGRES_URL")
        .ok()
        .and_then(|url| {
            url.split_whitespace()
                .find_map(|f| f.strip_prefix("port=").map(String::from))
        })
    {
        command.env("VOUCH_TEST_POSTGRES_PORT", port);
    }
    let status = command
        .arg(arg)
        .env("VOUCH_TEST_POSTGRES_DATA", data)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "scripts/postgres.sh {arg} failed");
}

/// A fresh, empty database on the test PostgreSQL server, for a test that needs the fleet
/// store to itself; returns its connection string.
pub fn postgres_database(url: &str, prefix: &str) -> String {
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let fields: Vec<&str> = url
        .split_whitespace()
        .filter(|f| !f.starts_with("dbname="))
        .collect();
    format!("{} dbname={name}", fields.join(" "))
}

/// A TCP proxy in front of a server that a test can cut (every connection through it closed,
/// new ones refused) and restore: a network partition between one client and the server.
pub struct Partition {
    port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Partition {
    /// A proxy on a free loopback port forwarding to `target_port`.
    pub fn new(target_port: u16) -> Partition {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::<std::net::TcpStream>::new()));
        let (cut2, open2) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target_port)) else {
                    continue;
                };
                // As a direct connection would: no Nagle delay on either leg.
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let mut held = open2.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                drop(held);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Partition { port, cut, open }
    }

    /// `url` (libpq key=value form) pointed at the proxy instead of the server.
    pub fn url(&self, url: &str) -> String {
        let fields: Vec<&str> = url
            .split_whitespace()
            .filter(|f| !f.starts_with("port=") && !f.starts_with("host="))
            .collect();
        format!("host=127.0.0.1 port={} {}", self.port, fields.join(" "))
    }

    /// Cuts the link: open connections are closed, new ones refused.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Restores the link.
    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The port of a libpq key=value connection string.
pub fn postgres_port(url: &str) -> u16 {
    url.split_whitespace()
        .find_map(|f| f.strip_prefix("port="))
        .and_then(|p| p.parse().ok())
        .unwrap_or(5432)
}
