//! Two terminals of a fleet and their PostgreSQL store, through an outage: the scenario of
//! `scripts/fleet-demo.sh`, which sets up the machine, starts a private PostgreSQL server and
//! runs this with the paths it needs.
//!
//! It starts two `vouchd` terminals (till-a, till-b), each with its own replica and decision
//! state, and drives them over their Unix sockets as a POS terminal would: enroll on A and
//! verify on B; stop PostgreSQL; verify on B below and above the offline ceiling; enroll on A
//! and delete on B while offline; start PostgreSQL and wait for both replicas to equal the
//! fleet store; check that the velocity rule counted the customer's payments on both
//! terminals; lock a customer out on B, restart B and check the lock held (on A too). Every
//! check is printed; the last line counts them. Exits 1 at the first difference.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use tonic::transport::{Channel, Endpoint};
use vouch::daemon::proto as pb;
use vouch::daemon::proto::vouch_client::VouchClient;
use vouch::store::{PostgresStore, SqliteStore, TemplateStore};

/// Paths and settings `scripts/fleet-demo.sh` passes.
#[derive(Parser)]
struct Args {
    /// The vouchd binary.
    #[arg(long)]
    vouchd: PathBuf,
    /// A scratch folder for the two terminals (created; its contents replaced).
    #[arg(long)]
    work: PathBuf,
    /// The fleet store (libpq key=value form).
    #[arg(long)]
    postgres_url: String,
    /// The command that stops the fleet store's server (run with `sh -c`).
    #[arg(long)]
    postgres_stop: String,
    /// The command that starts it again.
    #[arg(long)]
    postgres_start: String,
    /// ONNX Runtime's shared library.
    #[arg(long)]
    ort_lib: PathBuf,
    /// The model folder.
    #[arg(long)]
    models: PathBuf,
    /// The GMM-UBM file.
    #[arg(long)]
    ubm: PathBuf,
    /// The faces-deepface photos.
    #[arg(long)]
    faces: PathBuf,
}

/// One terminal: its folder, its daemon process, where it listens.
struct Terminal {
    name: &'static str,
    dir: PathBuf,
    child: Option<Child>,
    socket: PathBuf,
    metrics: String,
}

impl Terminal {
    fn config(&self, args: &Args, keys: &Path) -> String {
        let d = self.dir.display();
        format!(
            r#"[daemon]
unix_socket = "{d}/vouchd.sock"
metrics_listen = "127.0.0.1:0"
origin = "{name}"
[daemon.fleet]
postgres_url = "{url} connect_timeout=2"
poll_seconds = 1
offline_after_seconds = 3
[runtime]
library = "{lib}"
[models]
dir = "{models}"
[voice]
ubm = "{ubm}"
[store]
sqlite = "{d}/templates.db"
[keys]
file = "{keys}"
[decisions]
receipt_key = "{d}/receipt.key"
audit_log = "{d}/audit.log"
[decisions.attempts]
max_subject_failures = 3
window_seconds = 600
lockout_seconds = 600
"#,
            name = self.name,
            url = args.postgres_url,
            lib = args.ort_lib.display(),
            models = args.models.display(),
            ubm = args.ubm.display(),
            keys = keys.display(),
        )
    }

    fn start(&mut self, vouchd: &Path) -> Result<()> {
        let mut child = Command::new(vouchd)
            .arg("--config")
            .arg(self.dir.join("vouchd.toml"))
            .env(
                "VOUCH_LOG",
                std::env::var("VOUCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("VOUCH_KEK")
            .env_remove("VOUCH_KEYS")
            .env_remove("VOUCH_STORE")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", vouchd.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .context("reading vouchd's ready line")?;
        ensure!(
            line.starts_with("vouchd ready"),
            "{} did not start: {line:?}",
            self.name
        );
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .unwrap_or_default()
                .to_string()
        };
        self.socket = PathBuf::from(field("unix"));
        self.metrics = field("metrics");
        self.child = Some(child);
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()?;
            let status = child.wait()?;
            ensure!(status.success(), "{} exited with {status}", self.name);
        }
        Ok(())
    }

    async fn client(&self) -> Result<VouchClient<Channel>> {
        let path = self.socket.clone();
        let channel = Endpoint::try_from("http://localhost")?
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await?;
        Ok(VouchClient::new(channel))
    }

    /// The daemon's `vouchd_fleet_online` gauge.
    fn online(&self) -> Result<bool> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.metrics)?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text.contains("\nvouchd_fleet_online 1\n"))
    }

    fn replica(&self) -> Result<SqliteStore> {
        Ok(SqliteStore::open(&self.dir.join("templates.db"))?)
    }

    /// Approvals of `subject` recorded by `origin` in this terminal's decision state.
    fn approvals(&self, subject: &str, origin: &str) -> Result<i64> {
        let db = rusqlite::Connection::open_with_flags(
            self.dir.join("state.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        Ok(db.query_row(
            "SELECT COUNT(*) FROM events WHERE subject = ?1 AND origin = ?2 AND kind = 'approval'",
            [subject, origin],
            |r| r.get(0),
        )?)
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The checks made so far, printed as they pass.
#[derive(Default)]
struct Checks(usize);

impl Checks {
    fn check(&mut self, what: &str, ok: bool, detail: impl std::fmt::Debug) -> Result<()> {
        if !ok {
            println!("FAIL {what}: {detail:?}");
            bail!("fleet-demo: {what} failed");
        }
        self.0 += 1;
        println!("ok   {what}");
        Ok(())
    }
}

fn image(dir: &Path, name: &str) -> Result<pb::Image> {
    Ok(pb::Image {
        data: std::fs::read(dir.join(name)).with_context(|| format!("reading {name}"))?,
        format: pb::ImageFormat::Jpeg as i32,
    })
}

fn tx(id: &str, amount_minor: u64) -> pb::Transaction {
    pb::Transaction {
        id: id.to_string(),
        nonce: format!("nonce-{id}"),
        amount_minor,
        currency: "EUR".into(),
        merchant_category: "5411".into(),
    }
}

fn wait_until(
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if done()? {
            return Ok(started.elapsed());
        }
        ensure!(started.elapsed() < within, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    if args.work.exists() {
        std::fs::remove_dir_all(&args.work)?;
    }
    std::fs::create_dir_all(&args.work)?;
    let keys = args.work.join("keys.toml");
    vouch::template::Keyring::generate("fleet-1")?.save(&keys)?;
    let mut a = Terminal {
        name: "till-a",
        dir: args.work.join("till-a"),
        child: None,
        socket: PathBuf::new(),
        metrics: String::new(),
    };
    let mut b = Terminal {
        name: "till-b",
        dir: args.work.join("till-b"),
        child: None,
        socket: PathBuf::new(),
        metrics: String::new(),
    };
    for t in [&mut a, &mut b] {
        std::fs::create_dir_all(&t.dir)?;
        vouch::receipt::ReceiptSigner::generate(&t.dir.join("receipt.key"))?;
        std::fs::write(t.dir.join("vouchd.toml"), t.config(&args, &keys))?;
        t.start(&args.vouchd)?;
    }
    println!(
        "two terminals serving: till-a ({}), till-b ({})",
        a.socket.display(),
        b.socket.display()
    );
    let fleet = PostgresStore::connect(&args.postgres_url)?;
    let mut checks = Checks::default();
    let (mut enrollments, mut deletions, mut verifications) = (0, 0, 0);
    let faces = &args.faces;
    let decision = |d: i32| pb::Decision::try_from(d).unwrap_or(pb::Decision::Unspecified);

    let enroll = |t: &Terminal, subject: &str, photos: &[&str]| {
        runtime.block_on(async {
            let mut client = t.client().await?;
            let r = client
                .enroll(pb::EnrollRequest {
                    subject: subject.into(),
                    face: photos
                        .iter()
                        .map(|p| image(faces, p))
                        .collect::<Result<_>>()?,
                    ..Default::default()
                })
                .await?
                .into_inner();
            anyhow::Ok(r)
        })
    };

    // Online: enroll on A, verify on B.
    for (subject, photos) in [
        ("alice", &["img1.jpg", "img2.jpg"][..]),
        ("dave", &["img13.jpg"][..]),
    ] {
        let r = enroll(&a, subject, photos)?;
        checks.check(
            &format!("{subject} enrolled on till-a"),
            decision(r.decision) == pb::Decision::Accept,
            &r,
        )?;
        enrollments += 1;
    }
    let synced = wait_until("dave on till-b's replica", Duration::from_secs(30), || {
        Ok(!b.replica()?.templates("dave", None)?.is_empty())
    })?;
    println!(
        "     till-a's enrollment reached till-b's replica in {} ms",
        synced.as_millis()
    );
    let r = enroll(&b, "carol", &["img8.jpg"])?;
    checks.check(
        "carol enrolled on till-b",
        decision(r.decision) == pb::Decision::Accept,
        &r,
    )?;
    enrollments += 1;
    let pay = |t: &Terminal, subject: &str, photo: &str, id: &str, amount: u64| {
        runtime.block_on(async {
            let mut client = t.client().await?;
            let r = client
                .verify(pb::VerifyRequest {
                    subject: subject.into(),
                    transaction: Some(tx(id, amount)),
                    frames: vec![image(faces, photo)?],
                    voice: None,
                    movement: None,
                })
                .await?
                .into_inner();
            anyhow::Ok(r)
        })
    };
    let r = pay(&b, "alice", "img7.jpg", "p-1", 450)?;
    checks.check(
        "alice pays 4.50 on till-b: accept, online",
        decision(r.decision) == pb::Decision::Accept && !r.offline,
        &r,
    )?;
    for id in ["p-2", "p-3"] {
        let r = pay(&a, "alice", "img7.jpg", id, 450)?;
        checks.check(
            &format!("alice pays 4.50 on till-a ({id}): accept"),
            decision(r.decision) == pb::Decision::Accept,
            &r,
        )?;
    }
    verifications += 3;

    // The outage.
    let status = Command::new("sh")
        .arg("-c")
        .arg(&args.postgres_stop)
        .status()?;
    ensure!(status.success(), "stopping PostgreSQL failed");
    println!("     PostgreSQL stopped");
    let noticed = wait_until("till-b offline", Duration::from_secs(30), || {
        Ok(!b.online()?)
    })?;
    checks.check(
        &format!(
            "till-b reports the fleet store unreachable ({} ms)",
            noticed.as_millis()
        ),
        true,
        (),
    )?;
    let r = pay(&b, "alice", "img7.jpg", "p-4", 2_000)?;
    checks.check(
        "offline, alice pays 20.00 on till-b (ceiling 30.00): accept, marked offline",
        decision(r.decision) == pb::Decision::Accept && r.offline,
        &r,
    )?;
    let key = runtime.block_on(async {
        let mut client = b.client().await?;
        let key = client
            .get_receipt_key(pb::GetReceiptKeyRequest {})
            .await?
            .into_inner();
        anyhow::Ok(vouch::receipt::parse_public_key(&key.public_key_hex)?)
    })?;
    let receipt = vouch::receipt::verify_receipt(&r.receipt, &key)?;
    checks.check("its signed receipt says offline", receipt.offline, &receipt)?;
    let r = pay(&b, "alice", "img7.jpg", "p-5", 4_000)?;
    checks.check(
        "offline, alice pays 40.00 on till-b: reject offline_limit",
        decision(r.decision) == pb::Decision::Reject && r.reasons == ["offline_limit"],
        &r,
    )?;
    verifications += 2;
    let r = enroll(&a, "bob", &["img26.jpg"])?;
    checks.check(
        "offline, bob enrolled on till-a",
        decision(r.decision) == pb::Decision::Accept,
        &r,
    )?;
    enrollments += 1;
    runtime.block_on(async {
        let mut on_b = b.client().await?;
        let r = on_b
            .delete_subject(pb::DeleteSubjectRequest {
                subject: "carol".into(),
            })
            .await?
            .into_inner();
        checks.check(
            "offline, carol deleted on till-b",
            r.templates_deleted > 0,
            r,
        )?;
        deletions += 1;
        anyhow::Ok(())
    })?;

    // Back online: both replicas converge on the fleet store.
    let status = Command::new("sh")
        .arg("-c")
        .arg(&args.postgres_start)
        .status()?;
    ensure!(status.success(), "starting PostgreSQL failed");
    println!("     PostgreSQL started");
    let started = Instant::now();
    wait_until(
        "both replicas equal the fleet store",
        Duration::from_secs(60),
        || {
            let Ok(want) = fleet.content_digest() else {
                return Ok(false);
            };
            for t in [&a, &b] {
                let replica = t.replica()?;
                if replica.pending_count()? != 0 || replica.content_digest()? != want {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )?;
    let converged = started.elapsed();
    let digest = fleet.content_digest()?;
    checks.check(
        &format!("till-a, till-b and the fleet store hold the same {} templates of {} subjects ({} ms after the restart)", digest.templates, digest.subjects, converged.as_millis()),
        true,
        (),
    )?;
    checks.check(
        "bob (enrolled offline on till-a) is on till-b",
        !b.replica()?.templates("bob", None)?.is_empty(),
        (),
    )?;
    checks.check(
        "carol (deleted offline on till-b) is gone from till-a and the fleet",
        a.replica()?.templates("carol", None)?.is_empty()
            && fleet.templates("carol", None)?.is_empty(),
        (),
    )?;
    let r = pay(&a, "bob", "img26.jpg", "p-6", 450)?;
    checks.check(
        "bob pays on till-a: accept",
        decision(r.decision) == pb::Decision::Accept,
        &r,
    )?;
    verifications += 1;

    // Velocity across terminals: alice paid twice on till-b and twice on till-a; the rule
    // "5 payments without strong authentication" needs till-b's payments to fire on till-a.
    wait_until(
        "till-b's payments on till-a",
        Duration::from_secs(30),
        || Ok(a.approvals("alice", "till-b")? == 2),
    )?;
    let r = pay(&a, "alice", "img7.jpg", "p-7", 450)?;
    checks.check(
        "alice's 5th payment (3rd on till-a): accept",
        decision(r.decision) == pb::Decision::Accept,
        &r,
    )?;
    let r = pay(&a, "alice", "img7.jpg", "p-8", 450)?;
    checks.check(
        "alice's 6th payment (4th on till-a): step up to the passphrase, velocity rule since-strong counted till-b's",
        decision(r.decision) == pb::Decision::StepUp && r.reasons.iter().any(|x| x == "velocity_step_up"),
        &r,
    )?;
    verifications += 2;

    // A lockout that survives a restart, and holds fleet-wide.
    for i in 0..3 {
        let r = pay(&b, "dave", "img27.jpg", &format!("d-{i}"), 450)?;
        checks.check(
            &format!("someone else as dave on till-b ({}): reject", i + 1),
            decision(r.decision) == pb::Decision::Reject,
            &r,
        )?;
    }
    let r = pay(&b, "dave", "img13.jpg", "d-3", 450)?;
    checks.check(
        "dave himself on till-b: locked",
        decision(r.decision) == pb::Decision::Locked,
        &r,
    )?;
    b.stop()?;
    b.start(&args.vouchd)?;
    println!("     till-b restarted");
    let r = pay(&b, "dave", "img13.jpg", "d-4", 450)?;
    checks.check(
        "after the restart, dave on till-b: still locked",
        decision(r.decision) == pb::Decision::Locked && r.reasons == ["subject_locked"],
        &r,
    )?;
    wait_until("dave's failures on till-a", Duration::from_secs(30), || {
        let db = rusqlite::Connection::open_with_flags(
            a.dir.join("state.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let n: i64 = db.query_row(
            "SELECT COUNT(*) FROM events WHERE subject = 'dave' AND kind = 'failure'",
            [],
            |r| r.get(0),
        )?;
        Ok(n == 3)
    })?;
    let r = pay(&a, "dave", "img13.jpg", "d-5", 450)?;
    checks.check(
        "dave on till-a: locked too (the failures were on till-b)",
        decision(r.decision) == pb::Decision::Locked,
        &r,
    )?;
    verifications += 7;

    // Online, a deletion on one terminal stops the customer on the other once synchronised.
    let deleted_at = Instant::now();
    runtime.block_on(async {
        let mut on_b = b.client().await?;
        on_b.delete_subject(pb::DeleteSubjectRequest {
            subject: "bob".into(),
        })
        .await?;
        anyhow::Ok(())
    })?;
    deletions += 1;
    wait_until("bob gone from till-a", Duration::from_secs(30), || {
        Ok(a.replica()?.templates("bob", None)?.is_empty())
    })?;
    let window = deleted_at.elapsed();
    let refused = runtime.block_on(async {
        let mut on_a = a.client().await?;
        let r = on_a
            .verify(pb::VerifyRequest {
                subject: "bob".into(),
                transaction: Some(tx("p-9", 450)),
                frames: vec![image(faces, "img26.jpg")?],
                voice: None,
                movement: None,
            })
            .await;
        anyhow::Ok(r)
    })?;
    checks.check(
        &format!(
            "bob deleted on till-b: refused on till-a {} ms later (not found)",
            window.as_millis()
        ),
        refused
            .as_ref()
            .is_err_and(|e| e.code() == tonic::Code::NotFound),
        refused.map(tonic::Response::into_inner),
    )?;
    verifications += 1;

    a.stop()?;
    b.stop()?;
    drop(fleet);
    println!(
        "fleet-demo: all {} checks passed ({enrollments} enrollments, {deletions} deletions, {verifications} verifications on 2 terminals; convergence after the outage {} ms; a deletion reached the other terminal in {} ms)",
        checks.0,
        converged.as_millis(),
        window.as_millis()
    );
    Ok(())
}
