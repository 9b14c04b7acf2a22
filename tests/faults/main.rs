//! Fault injection on the real `vouchd`: SIGKILL in the middle of enrollments, the fleet
//! PostgreSQL server stopped (quietly, and under load), a full disk (a file-size limit), and
//! the key file removed while the daemon runs. Each checks what must survive the fault, and
//! that the daemon says clearly what it cannot do.
//!
//! A test binary of its own (`cargo test --test faults`), so that its kills, limits and
//! database restarts run apart from the other tests; it shares their helpers
//! (`tests/util.rs`, `tests/harness.rs`).

// Test helpers fail loudly: a panic is the right outcome for a broken fixture.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with the integration binary, which uses other parts of them.
#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../util.rs"]
mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use vouch::daemon::proto as pb;
use vouch::daemon::proto::vouch_client::VouchClient;

use crate::harness::{Keys, Vouchd, decision, face, prepare, test_keyring, tx};

/// Photos with one face each, one per identity of the shared set first.
const PHOTOS: [&str; 16] = [
    "img1.jpg",
    "img26.jpg",
    "img8.jpg",
    "img3.jpg",
    "img13.jpg",
    "img16.jpg",
    "img29.jpg",
    "img34.jpg",
    "img38.jpg",
    "img18.jpg",
    "img20.jpg",
    "img22.jpg",
    "img24.jpg",
    "img2.jpg",
    "img27.jpg",
    "img9.jpg",
];

async fn enroll(
    client: &mut VouchClient<Channel>,
    subject: &str,
    photo: &str,
) -> Result<pb::EnrollResponse, tonic::Status> {
    client
        .enroll(pb::EnrollRequest {
            subject: subject.into(),
            face: vec![face(photo)],
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn verify(
    client: &mut VouchClient<Channel>,
    subject: &str,
    photo: &str,
    id: &str,
) -> Result<pb::VerifyResponse, tonic::Status> {
    client
        .verify(harness::face_payment(subject, photo, id, 450))
        .await
        .map(tonic::Response::into_inner)
}

/// Every template in the store opens under the test key (nothing half-written, nothing
/// sealed wrongly); returns the subjects with face templates and their counts.
fn open_every_template(db: &Path) -> BTreeMap<String, usize> {
    use vouch::store::TemplateStore;
    let store = vouch::store::SqliteStore::open(db).unwrap();
    let keys = test_keyring();
    let mut subjects = BTreeMap::new();
    for summary in store.subjects().unwrap() {
        for stored in store.templates(&summary.subject, None).unwrap() {
            vouch::template::open(&stored.blob, &stored.subject, &keys)
                .unwrap_or_else(|e| panic!("template {} of {}: {e}", stored.id, stored.subject));
        }
        subjects.insert(summary.subject, summary.face);
    }
    subjects
}

fn integrity_check(db: &Path) -> String {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// The audit log's records as JSON values (the chain verified first).
fn audit_records(log: &Path) -> Vec<serde_json::Value> {
    let summary = vouch::audit::verify_file(log).unwrap();
    assert!(!summary.torn_tail, "{summary:?}");
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Shipping rounds the daemon reported as failed (deferred) so far, from its stderr.
fn failed_rounds(daemon: &Vouchd) -> usize {
    daemon.stderr().matches("audit shipping deferred").count()
}

fn of_kind<'a>(records: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

/// SIGKILL while enrollments are in flight, ten times over one folder: every acknowledged
/// enrollment survives and verifies, every stored template opens, and the audit chain holds
/// (a line torn by a kill is cut away on the next start, with a warning).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_enrollments_loses_nothing_acknowledged() {
    let Some(dir) = prepare("", Keys::Env, "") else {
        return;
    };
    let mut daemon = Vouchd::launch(dir, None);
    const ROUNDS: usize = 10;
    const PER_ROUND: usize = 6;
    // subject → its photo, for the enrollments the daemon acknowledged.
    let mut acked: BTreeMap<String, &str> = BTreeMap::new();
    let mut refused = Vec::new();
    let mut lost_in_flight = 0;
    let mut torn_tails = 0;
    for round in 0..ROUNDS {
        let client = daemon.unix_client().await;
        let tasks: Vec<_> = (0..PER_ROUND)
            .map(|i| {
                let mut client = client.clone();
                let subject = format!("k{round}-{i}");
                let photo = PHOTOS[(round * PER_ROUND + i) % PHOTOS.len()];
                tokio::spawn(async move {
                    let answer = enroll(&mut client, &subject, photo).await;
                    (subject, photo, answer)
                })
            })
            .collect();
        // From "before the first finishes" to "after most have": a different moment each round.
        // This sleep stays: where the kill falls among the requests is what the test varies,
        // and no event could choose those moments better than the clock.
        let delay = 30 + (round as u64 * 173) % 900;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        daemon.kill();
        for task in tasks {
            let (subject, photo, answer) = tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("a request outlived the killed daemon")
                .unwrap();
            match answer {
                Ok(r) if decision(r.decision) == pb::Decision::Accept && r.face_enrolled => {
                    acked.insert(subject, photo);
                }
                // A photo the quality gate or liveness refuses: nothing may be stored.
                Ok(r) if decision(r.decision) == pb::Decision::Retake && !r.face_enrolled => {
                    refused.push(subject);
                }
                Ok(r) => panic!("{subject}: {r:?}"),
                // Cut off by the kill: never acknowledged.
                Err(_) => lost_in_flight += 1,
            }
        }
        let log = daemon.dir.path().join("audit.log");
        if round == ROUNDS / 2 {
            // A kill cannot split one write(2) of a short line, but a power cut can: half of a
            // next record, as a crash in the middle of writing it would leave.
            let text = std::fs::read_to_string(&log).unwrap();
            let last = text.lines().last().unwrap();
            let half = &last[..last.len() / 2];
            let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            std::io::Write::write_all(&mut file, half.as_bytes()).unwrap();
        }
        let before = vouch::audit::verify_file(&log).expect("the chain after a kill");
        daemon.try_restart().expect("restart after kill -9");
        if before.torn_tail {
            torn_tails += 1;
            assert!(
                daemon.stderr().contains("partly written line"),
                "a torn audit line was cut without a warning"
            );
        }
        // Everything acknowledged so far is there, after every restart.
        let mut client = daemon.unix_client().await;
        for subject in acked.keys() {
            let found = client
                .get_subject(pb::GetSubjectRequest {
                    subject: subject.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("round {round}: acknowledged {subject} lost: {e}"))
                .into_inner();
            assert_eq!(
                found.face_templates, 2,
                "{subject}: one template per embedder"
            );
        }
    }
    eprintln!(
        "{} enrollments acknowledged, {} refused by liveness, {lost_in_flight} cut off by kills, {torn_tails} torn audit tails",
        acked.len(),
        refused.len()
    );
    // The kills must have landed both before and after some acknowledgements.
    assert!(acked.len() >= PER_ROUND, "too few acknowledged: {acked:?}");
    assert!(lost_in_flight > 0, "no kill caught a request in flight");
    assert!(torn_tails >= 1, "the torn line was not seen");

    // Each acknowledged subject verifies with their own photo.
    let mut client = daemon.unix_client().await;
    for (n, (subject, photo)) in acked.iter().enumerate() {
        let answer = verify(&mut client, subject, photo, &format!("kv-{n}"))
            .await
            .unwrap();
        assert_eq!(
            decision(answer.decision),
            pb::Decision::Accept,
            "{subject}: {answer:?}"
        );
    }
    assert!(daemon.stop(), "vouchd exited uncleanly");

    // The files themselves: the database is sound, every template opens, every acknowledged
    // enrollment has its audit record, and the chain verifies from the first record.
    let d = daemon.dir.path();
    assert_eq!(integrity_check(&d.join("templates.db")), "ok");
    let stored = open_every_template(&d.join("templates.db"));
    for subject in acked.keys() {
        // One template per embedder, written together.
        assert_eq!(stored.get(subject), Some(&2), "{subject}");
    }
    // Acknowledged or not, no kill left an enrollment with one embedder's template only.
    for (subject, templates) in &stored {
        assert_eq!(
            *templates, 2,
            "{subject}: a face enrollment is written whole"
        );
    }
    for subject in &refused {
        assert!(!stored.contains_key(subject), "{subject} was refused");
    }
    // A kill between the template's commit and the answer leaves a whole template that was
    // never acknowledged; it is a complete record (it opened above), never a partial one.
    // (Killed before its audit record too, it has none: see SECURITY.md, "Fault injection".)
    let records = audit_records(&d.join("audit.log"));
    let enrolled: BTreeSet<&str> = of_kind(&records, "enroll")
        .iter()
        .filter(|r| r["outcome"] == "accept")
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    let unacknowledged: Vec<_> = stored
        .keys()
        .filter(|s| !acked.contains_key(*s))
        .map(|s| (s, enrolled.contains(s.as_str())))
        .collect();
    eprintln!("stored but never acknowledged (subject, audited): {unacknowledged:?}");
    for subject in acked.keys() {
        assert!(
            enrolled.contains(subject.as_str()),
            "{subject} has no audit record"
        );
    }
    assert_eq!(of_kind(&records, "service_start").len(), ROUNDS + 1);
    assert_eq!(of_kind(&records, "verify").len(), acked.len());
}

/// The fleet PostgreSQL server stops while three clients verify without pause, and comes
/// back: every decision is still made (from the local store) and audited, and every local
/// record reaches the fleet store exactly once, in order, with its hash; every receipt a
/// client received is there.
#[test]
fn verifications_under_load_ship_every_record_through_a_postgres_restart() {
    let Some((url, data)) = util::postgres() else {
        return;
    };
    let _one_at_a_time = util::postgres_exclusive(&data);
    let Some((mut daemon, origin)) = Vouchd::start_shipping(&url, "faults") else {
        return;
    };
    // (seq, hash, prev, receipt) as shipped, in seq order.
    type Row = (i64, String, String, Option<String>);
    let shipped = || -> Vec<Row> {
        let Ok(mut db) = postgres::Client::connect(&url, postgres::NoTls) else {
            return Vec::new();
        };
        db.query(
            "SELECT seq, hash, prev, record->'details'->>'receipt' FROM vouch_audit WHERE origin = $1 ORDER BY seq",
            &[&origin],
        )
        .map(|rows| {
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect()
        })
        .unwrap_or_default()
    };
    let log = daemon.dir.path().join("audit.log");
    let local_records = || std::fs::read_to_string(&log).unwrap().lines().count();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let subjects = [
        ("pia", "img1.jpg"),
        ("pat", "img26.jpg"),
        ("pol", "img8.jpg"),
    ];
    runtime.block_on(async {
        let mut client = daemon.unix_client().await;
        for (subject, photo) in subjects {
            let r = enroll(&mut client, subject, photo).await.unwrap();
            assert_eq!(decision(r.decision), pb::Decision::Accept, "{r:?}");
        }
    });

    // Three clients, each on its own connection, verifying until told to stop.
    let running = Arc::new(AtomicBool::new(true));
    let outage = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = subjects
        .iter()
        .enumerate()
        .map(|(c, (subject, photo))| {
            let (running, outage) = (Arc::clone(&running), Arc::clone(&outage));
            let client = runtime.block_on(daemon.unix_client());
            let (subject, photo) = (subject.to_string(), photo.to_string());
            runtime.spawn(async move {
                let mut client = client;
                let mut receipts = Vec::new();
                let mut during_outage = 0;
                let mut n = 0;
                while running.load(Ordering::Relaxed) {
                    let was_out = outage.load(Ordering::Relaxed);
                    let answer = verify(&mut client, &subject, &photo, &format!("c{c}-{n}"))
                        .await
                        .unwrap_or_else(|e| panic!("{subject} verification {n}: {e}"));
                    assert_eq!(
                        decision(answer.decision),
                        pb::Decision::Accept,
                        "{subject} verification {n}: {answer:?}"
                    );
                    if was_out && outage.load(Ordering::Relaxed) {
                        during_outage += 1;
                    }
                    receipts.push(answer.receipt);
                    n += 1;
                }
                (receipts, during_outage)
            })
        })
        .collect();

    let within = Duration::from_secs(90);
    // Shipping works under load before the outage.
    util::wait_until("records shipped before the outage", within, || {
        shipped().len() >= 10
    });

    util::postgres_script("stop", &data);
    outage.store(true, Ordering::Relaxed);
    let at_stop = local_records();
    let failed_at_stop = failed_rounds(&daemon);
    // Several shipping rounds fail (the daemon says so) while the decisions go on.
    util::wait_until(
        "decisions, and three failed shipping rounds, during the outage",
        within,
        || local_records() >= at_stop + 30 && failed_rounds(&daemon) >= failed_at_stop + 3,
    );
    outage.store(false, Ordering::Relaxed);
    util::postgres_script("start", &data);
    let at_restart = local_records();
    util::wait_until("records of the outage shipped", within, || {
        shipped().len() >= at_restart
    });
    running.store(false, Ordering::Relaxed);
    let mut receipts = Vec::new();
    let mut during_outage = 0;
    for client in clients {
        let (r, d) = runtime.block_on(client).unwrap();
        receipts.extend(r);
        during_outage += d;
    }
    assert!(
        during_outage > 0,
        "no verification was answered while the database was down"
    );
    assert!(daemon.stop(), "vouchd exited uncleanly");

    // Every local record, exactly once, in order, with its hash and link; and every receipt
    // a client holds is among them, once.
    let local: Vec<Row> = audit_records(&log)
        .iter()
        .map(|v| {
            (
                v["seq"].as_i64().unwrap(),
                v["hash"].as_str().unwrap().to_string(),
                v["prev"].as_str().unwrap().to_string(),
                v["details"]["receipt"].as_str().map(String::from),
            )
        })
        .collect();
    let fleet = shipped();
    assert_eq!(fleet.len(), local.len(), "records shipped");
    assert_eq!(fleet, local);
    let fleet_receipts: Vec<&str> = fleet.iter().filter_map(|r| r.3.as_deref()).collect();
    assert_eq!(
        fleet_receipts.len(),
        receipts.len(),
        "one record per decision"
    );
    let fleet_receipts: BTreeSet<&str> = fleet_receipts.into_iter().collect();
    for receipt in &receipts {
        assert!(fleet_receipts.contains(receipt.as_str()), "a receipt lost");
    }
    eprintln!(
        "{} verifications ({during_outage} during the outage), {} records shipped",
        receipts.len(),
        fleet.len()
    );
}

/// The fleet PostgreSQL server stopped between decisions and started again: the decisions
/// are made and recorded locally meanwhile, shipped once it is back, and the stop record is
/// shipped by the shutdown's final round.
#[test]
fn daemon_ships_its_audit_log_through_a_database_outage() {
    let Some((url, data)) = util::postgres() else {
        return;
    };
    let _one_at_a_time = util::postgres_exclusive(&data);
    let Some((mut daemon, origin)) = Vouchd::start_shipping(&url, "daemon-test") else {
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
    let wait_for = |count: usize, what: &str| {
        util::wait_until(what, Duration::from_secs(60), || {
            shipped(&origin).len() >= count
        });
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
                movement: None,
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
    assert_eq!(
        wait_for(3, "start, enroll and a verification shipped"),
        3,
        "start, enroll and a verification shipped"
    );

    // The fleet store goes away: decisions go on, recorded locally.
    util::postgres_script("stop", &data);
    for i in 2..=4 {
        let d = verify(&mut client, &format!("s-{i}"));
        assert_eq!(decision(d.decision), pb::Decision::Accept);
    }
    // A shipping round fails with those records waiting: the daemon noticed the outage.
    let failed = failed_rounds(&daemon);
    util::wait_until(
        "a failed shipping round after the outage's decisions",
        Duration::from_secs(60),
        || failed_rounds(&daemon) > failed,
    );
    util::postgres_script("start", &data);
    assert_eq!(
        wait_for(6, "the records of the outage shipped once it ended"),
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

/// The daemon's files may not grow past 64 KiB (`RLIMIT_FSIZE`, like a full disk; SIGXFSZ
/// killed vouchd before it installed a handler for it): enrolling
/// until the store cannot grow gets a clear refusal, verifications go on until the audit log
/// cannot grow either, and then they are refused rather than answered unaudited; the daemon
/// survives all of it, and nothing stored before is damaged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_damages_nothing() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        util::skip("prlimit (util-linux) is not installed");
        return;
    }
    // The same few customers pay over and over: no velocity rules (they would step up).
    let Some(dir) = prepare("", Keys::Env, &harness::no_velocity_policy()) else {
        return;
    };
    // Some subjects enrolled with room to spare, then a restart under the limit (the store's
    // schema and these templates checkpointed into the database file by the clean stop).
    let mut daemon = Vouchd::launch(dir, None);
    let mut client = daemon.unix_client().await;
    let mut enrolled: Vec<(String, &str)> = Vec::new();
    for (i, photo) in PHOTOS.iter().take(6).enumerate() {
        let subject = format!("before-{i}");
        let r = enroll(&mut client, &subject, photo).await.unwrap();
        assert_eq!(decision(r.decision), pb::Decision::Accept, "{r:?}");
        enrolled.push((subject, *photo));
    }
    assert!(daemon.stop(), "vouchd exited uncleanly");
    const LIMIT: u64 = 64 * 1024;
    daemon.set_file_size_limit(Some(LIMIT));
    daemon.try_restart().expect("start under the limit");
    let mut client = daemon.unix_client().await;
    let leaks = |status: &tonic::Status| {
        let m = status.message().to_lowercase();
        [
            "/",
            "sqlite",
            "database",
            "file too large",
            "audit.log",
            "os error",
        ]
        .iter()
        .any(|w| m.contains(w))
    };

    // Enroll until the template store cannot grow.
    let mut refusal = None;
    for (i, photo) in PHOTOS.iter().cycle().take(60).enumerate() {
        let subject = format!("full-{i}");
        match enroll(&mut client, &subject, photo).await {
            // A photo liveness refuses stores nothing (checked below).
            Ok(r) if decision(r.decision) == pb::Decision::Retake => {}
            Ok(r) => {
                assert_eq!(decision(r.decision), pb::Decision::Accept, "{r:?}");
                enrolled.push((subject, *photo));
            }
            Err(status) => {
                refusal = Some(status);
                break;
            }
        }
    }
    let refusal = refusal.expect("60 enrollments fitted in 64 KiB files");
    eprintln!(
        "{} enrollments stored under the limit, then: {refusal:?}",
        enrolled.len() - 6
    );
    // SQLite reports EFBIG as a generic I/O error (INTERNAL); a real full disk (ENOSPC) is
    // SQLITE_FULL, RESOURCE_EXHAUSTED. Either way a deliberate status, saying nothing inside.
    assert!(
        matches!(refusal.code(), Code::ResourceExhausted | Code::Internal),
        "{refusal:?}"
    );
    assert!(!leaks(&refusal), "{refusal:?}");
    assert!(daemon.is_running(), "vouchd died when its store was full");
    // Still full: refused again, the same way.
    let again = enroll(&mut client, "full-again", "img1.jpg")
        .await
        .unwrap_err();
    assert_eq!(again.code(), refusal.code(), "{again:?}");

    // Reads and decisions go on while the audit log has room.
    for (subject, _) in &enrolled {
        let found = client
            .get_subject(pb::GetSubjectRequest {
                subject: subject.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.face_templates, 2, "one template per embedder");
    }
    let mut accepted = 0;
    let mut audit_full = None;
    for n in 0..400 {
        let (subject, photo) = &enrolled[n % enrolled.len()];
        match verify(&mut client, subject, photo, &format!("fv-{n}")).await {
            Ok(answer) => {
                assert_eq!(
                    decision(answer.decision),
                    pb::Decision::Accept,
                    "{answer:?}"
                );
                accepted += 1;
            }
            Err(status) => {
                audit_full = Some(status);
                break;
            }
        }
    }
    let audit_full = audit_full.expect("400 verifications fitted in a 64 KiB audit log");
    eprintln!("{accepted} verifications, then: {audit_full:?}");
    assert!(accepted > 0, "no verification after the store filled up");
    // No decision without its audit record: refused, as a full disk.
    assert_eq!(audit_full.code(), Code::ResourceExhausted, "{audit_full:?}");
    assert!(!leaks(&audit_full), "{audit_full:?}");
    assert!(
        daemon.is_running(),
        "vouchd died when its audit log was full"
    );
    client
        .get_subject(pb::GetSubjectRequest {
            subject: enrolled[0].0.clone(),
        })
        .await
        .unwrap();

    // SIGTERM: the stop record cannot be written either, which is an error exit, not a crash.
    let status = daemon.stop_status().unwrap();
    assert_eq!(
        status.signal(),
        None,
        "vouchd was killed by a signal: {status}"
    );

    let d = daemon.dir.path().to_path_buf();
    assert_eq!(integrity_check(&d.join("templates.db")), "ok");
    let stored = open_every_template(&d.join("templates.db"));
    assert_eq!(
        stored.keys().cloned().collect::<BTreeSet<_>>(),
        enrolled
            .iter()
            .map(|(s, _)| s.clone())
            .collect::<BTreeSet<_>>(),
        "exactly the acknowledged enrollments are stored"
    );
    let records = audit_records(&d.join("audit.log"));
    assert_eq!(of_kind(&records, "enroll").len(), enrolled.len());
    assert_eq!(of_kind(&records, "verify").len(), accepted);

    // Space again: everything stored before still verifies, and enrollment works.
    daemon.set_file_size_limit(None);
    daemon.try_restart().expect("restart without the limit");
    let mut client = daemon.unix_client().await;
    for (n, (subject, photo)) in enrolled.iter().enumerate() {
        let answer = verify(&mut client, subject, photo, &format!("fa-{n}"))
            .await
            .unwrap();
        assert_eq!(decision(answer.decision), pb::Decision::Accept, "{subject}");
    }
    let r = enroll(&mut client, "full-after", "img1.jpg").await.unwrap();
    assert_eq!(decision(r.decision), pb::Decision::Accept, "{r:?}");
    assert!(daemon.stop(), "vouchd exited uncleanly");
    vouch::audit::verify_file(&d.join("audit.log")).unwrap();
}

/// The key file removed under a running daemon: the key was read at start and stays in
/// memory, so enrollment and verification go on under it (an operator takes a key out of
/// service by stopping the daemon); a restart without the file is refused, naming it; with
/// the file back, everything enrolled before and after the removal opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_removed_while_running_keeps_the_loaded_key_and_blocks_a_restart() {
    let Some(dir) = prepare("", Keys::File, "") else {
        return;
    };
    // A key of its own in the daemon's key file (by absolute path, as `prepare` writes it).
    let key_file = dir.path().join("keys.toml");
    vouch::template::Keyring::generate("k-faults")
        .unwrap()
        .save(&key_file)
        .unwrap();
    let mut daemon = Vouchd::launch(dir, None);
    let mut client = daemon.unix_client().await;
    let r = enroll(&mut client, "kate", "img1.jpg").await.unwrap();
    assert_eq!(decision(r.decision), pb::Decision::Accept, "{r:?}");

    let backup = daemon.dir.path().join("keys.backup");
    std::fs::rename(&key_file, &backup).unwrap();
    assert!(!key_file.exists());

    // The loaded key keeps working.
    let r = enroll(&mut client, "ken", "img26.jpg").await.unwrap();
    assert_eq!(decision(r.decision), pb::Decision::Accept, "{r:?}");
    for (subject, photo, id) in [("kate", "img7.jpg", "kf-1"), ("ken", "img26.jpg", "kf-2")] {
        let answer = verify(&mut client, subject, photo, id).await.unwrap();
        assert_eq!(
            decision(answer.decision),
            pb::Decision::Accept,
            "{subject}: {answer:?}"
        );
    }
    assert!(daemon.is_running());
    assert!(daemon.stop(), "vouchd exited uncleanly");

    // No key file: the daemon refuses to start, and says which file it needs.
    let refused = daemon
        .try_restart()
        .expect_err("vouchd started without its key file");
    assert!(
        refused.contains(&format!("cannot read key file {}", key_file.display())),
        "{refused}"
    );
    assert!(refused.contains("vouch keys generate"), "{refused}");
    assert!(refused.contains("exit status: 1"), "{refused}");
    assert!(!refused.contains("panicked"), "{refused}");

    // The key back: both subjects (one sealed after the file was gone) open and verify.
    std::fs::rename(&backup, &key_file).unwrap();
    daemon
        .try_restart()
        .expect("restart with the key file back");
    let mut client = daemon.unix_client().await;
    for (subject, photo, id) in [("kate", "img7.jpg", "kf-3"), ("ken", "img26.jpg", "kf-4")] {
        let answer = verify(&mut client, subject, photo, id).await.unwrap();
        assert_eq!(
            decision(answer.decision),
            pb::Decision::Accept,
            "{subject}: {answer:?}"
        );
    }
    assert!(daemon.stop(), "vouchd exited uncleanly");
    let records = audit_records(&daemon.dir.path().join("audit.log"));
    assert_eq!(of_kind(&records, "enroll").len(), 2);
    assert_eq!(of_kind(&records, "service_start").len(), 2);
}

/// A fleet terminal: `vouchd` with its own replica, reaching the fleet store through a link
/// the test can cut.
struct Terminal {
    name: &'static str,
    daemon: Vouchd,
    link: util::Partition,
}

impl Terminal {
    fn start(name: &'static str, url: &str) -> Option<Terminal> {
        let link = util::Partition::new(util::postgres_port(url));
        let fleet_url = format!("{} connect_timeout=2", link.url(url));
        let daemon = Vouchd::start_with(
            &format!("origin = \"{name}\""),
            &format!(
                "[daemon.fleet]\npostgres_url = \"{fleet_url}\"\npoll_seconds = 1\noffline_after_seconds = 2\n"
            ),
        )?;
        Some(Terminal { name, daemon, link })
    }

    fn replica(&self) -> vouch::store::SqliteStore {
        vouch::store::SqliteStore::open(&self.daemon.dir.path().join("templates.db")).unwrap()
    }

    async fn online(&self) -> bool {
        self.daemon
            .scrape()
            .await
            .contains("\nvouchd_fleet_online 1\n")
    }
}

/// Runs synchronous PostgreSQL calls (the `postgres` crate drives a runtime of its own) off the
/// test's async runtime.
fn blocking<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().unwrap())
}

/// Waits until both replicas have pushed everything and hold exactly the fleet store's
/// templates; returns how long that took.
async fn converge(a: &Terminal, b: &Terminal, fleet: &vouch::store::PostgresStore) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let want = blocking(|| fleet.content_digest().unwrap());
        let settled = [a, b].iter().all(|t| {
            let replica = t.replica();
            replica.pending_count().unwrap() == 0 && replica.content_digest().unwrap() == want
        });
        if settled {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the replicas did not converge: fleet {want:?}, {}: {:?}, {}: {:?}",
            a.name,
            a.replica().content_digest().unwrap(),
            b.name,
            b.replica().content_digest().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two `vouchd` terminals and the fleet store through 20 network partitions (one terminal cut,
/// the other, or both), with enrollments, deletions and verifications on both sides, and a
/// terminal killed with SIGKILL right after every fifth reconnect (mid-sync): no acknowledged
/// enrollment is lost, no deletion comes back, nothing is stored twice, and after each
/// reconnect both replicas equal the fleet store. Offline, a terminal says so and holds
/// payments to the offline ceiling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_terminals_converge_through_partitions_and_kills() {
    use vouch::store::TemplateStore;
    let Some((url, data)) = util::postgres() else {
        return;
    };
    let _serial = util::postgres_exclusive(&data);
    let url = blocking(|| util::postgres_database(&url, "vouch_fleet"));
    let fleet = blocking(|| vouch::store::PostgresStore::connect(&url).unwrap());
    let Some(mut a) = Terminal::start("till-a", &url) else {
        return;
    };
    let mut b = Terminal::start("till-b", &url).unwrap();
    // Subjects acknowledged as enrolled, and those deleted afterwards.
    let mut enrolled: BTreeMap<String, &str> = BTreeMap::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let mut convergence = Vec::new();
    let mut kills = 0;
    let mut offline_refusals = 0;
    let mut serial = 0;
    for partition in 0..20 {
        let cut: Vec<&str> = match partition % 3 {
            0 => vec!["till-a"],
            1 => vec!["till-b"],
            _ => vec!["till-a", "till-b"],
        };
        for t in [&a, &b] {
            if cut.contains(&t.name) {
                t.link.cut();
            }
        }
        for t in [&a, &b] {
            let mut client = t.daemon.unix_client().await;
            // Two enrollments on each terminal, online or not.
            for _ in 0..2 {
                serial += 1;
                let photo = PHOTOS[serial % PHOTOS.len()];
                let subject = format!("s{serial:03}");
                let answer = enroll(&mut client, &subject, photo).await.unwrap();
                // A photo the quality gate or liveness refuses stores nothing.
                if decision(answer.decision) == pb::Decision::Accept {
                    enrolled.insert(subject, photo);
                }
            }
            // A deletion of a subject the other terminal enrolled (known here once synced).
            let victim = enrolled
                .keys()
                .find(|s| {
                    !deleted.contains(*s) && !t.replica().templates(s, None).unwrap().is_empty()
                })
                .cloned();
            if let Some(victim) = victim.filter(|_| partition % 2 == 0) {
                client
                    .delete_subject(pb::DeleteSubjectRequest {
                        subject: victim.clone(),
                    })
                    .await
                    .unwrap();
                deleted.insert(victim);
            }
        }
        if partition == 3 {
            // Offline long enough to say so: the health gauge drops, a payment above the
            // offline ceiling is refused, one below it is decided and marked offline.
            let started = std::time::Instant::now();
            while a.online().await {
                assert!(started.elapsed() < Duration::from_secs(20), "still online");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let (subject, photo) = enrolled
                .iter()
                .find(|(s, _)| {
                    !deleted.contains(*s) && !a.replica().templates(s, None).unwrap().is_empty()
                })
                .map(|(s, p)| (s.clone(), *p))
                .unwrap();
            let mut client = a.daemon.unix_client().await;
            let above = client
                .verify(harness::face_payment(&subject, photo, "off-1", 4_000))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(decision(above.decision), pb::Decision::Reject, "{above:?}");
            assert_eq!(above.reasons, ["offline_limit"]);
            assert!(above.offline);
            let below = verify(&mut client, &subject, photo, "off-2").await.unwrap();
            assert_eq!(decision(below.decision), pb::Decision::Accept, "{below:?}");
            assert!(below.offline);
            offline_refusals += 1;
        }
        for t in [&a, &b] {
            t.link.restore();
        }
        if partition % 5 == 4 {
            // SIGKILL while the terminal pushes what it did offline, then a restart.
            let victim = if partition % 10 == 4 { &mut a } else { &mut b };
            tokio::time::sleep(Duration::from_millis(5 * partition as u64)).await;
            victim.daemon.kill();
            kills += 1;
            victim.daemon.try_restart().unwrap();
        }
        convergence.push(converge(&a, &b, &fleet).await);

        for subject in enrolled.keys() {
            let n = blocking(|| fleet.templates(subject, None).unwrap().len());
            if deleted.contains(subject) {
                assert_eq!(n, 0, "partition {partition}: deleted {subject} resurrected");
            } else {
                // One template per embedder (MobileFaceNet's and SFace's): none lost, no
                // duplicate.
                assert_eq!(n, 2, "partition {partition}: {subject} has {n} templates");
            }
        }
        assert_eq!(
            blocking(|| fleet.subjects().unwrap().len()),
            enrolled.len() - deleted.len(),
            "partition {partition}: a subject nobody enrolled"
        );
    }
    // Every live subject verifies on the terminal that did not enroll it, too.
    for t in [&a, &b] {
        let mut client = t.daemon.unix_client().await;
        for (subject, photo) in enrolled
            .iter()
            .filter(|(s, _)| !deleted.contains(*s))
            .take(4)
        {
            let d = verify(
                &mut client,
                subject,
                photo,
                &format!("fin-{}-{subject}", t.name),
            )
            .await
            .unwrap();
            assert_eq!(decision(d.decision), pb::Decision::Accept, "{d:?}");
            assert!(!d.offline);
        }
    }
    convergence.sort();
    eprintln!(
        "fleet: 20 partitions, {} enrollments, {} deletions, {kills} SIGKILLs mid-sync, {offline_refusals} offline check: replicas equal to the fleet store after each; convergence median {:?}, max {:?}",
        enrolled.len(),
        deleted.len(),
        convergence[convergence.len() / 2],
        convergence[convergence.len() - 1]
    );
    // Its pooled connections drive a runtime of their own: closed off this one.
    blocking(move || drop(fleet));
}
