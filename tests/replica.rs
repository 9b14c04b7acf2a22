//! Replication between terminals' SQLite replicas and the fleet's PostgreSQL store, through
//! real network partitions (a proxy cut between a replica and the server): acknowledged
//! enrollments are never lost, deletions never come back, nothing is stored twice, and after
//! every reconnect each replica equals the fleet store.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vouch::replica::{Fleet, FleetConfig};
use vouch::store::{PostgresStore, TemplateStore};
use vouch::template::Modality;

use crate::util::{Partition, postgres, postgres_database, postgres_exclusive, postgres_port};

struct Terminal {
    name: &'static str,
    fleet: Fleet,
    link: Partition,
}

impl Terminal {
    fn new(name: &'static str, dir: &std::path::Path, url: &str) -> Terminal {
        let link = Partition::new(postgres_port(url));
        let fleet = Fleet::open(
            &dir.join(format!("{name}.db")),
            &dir.join(format!("{name}.state.db")),
            name,
            FleetConfig {
                postgres_url: format!("{} connect_timeout=2", link.url(url)),
                poll_seconds: 1,
                offline_after_seconds: 3,
            },
        )
        .unwrap();
        Terminal { name, fleet, link }
    }

    /// Rounds until the outbox is empty and the replica is at the fleet's head.
    fn converge(&self) {
        let mut replicator = self.fleet.replicator();
        let started = Instant::now();
        loop {
            let report = replicator
                .sync_once()
                .unwrap_or_else(|e| panic!("{}: {e}", self.name));
            if report.caught_up && self.fleet.replica().pending_count().unwrap() == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} does not converge",
                self.name
            );
        }
    }
}

/// The test server held for this test, and a fresh fleet database on it.
fn fleet_database() -> Option<(std::fs::File, String)> {
    let (url, data) = postgres()?;
    let serial = postgres_exclusive(&data);
    Some((serial, postgres_database(&url, "vouch_replica")))
}

/// What the fleet should hold: every enrollment not followed by a deletion of its subject.
#[derive(Default)]
struct Model {
    /// (subject, blob) in the order they happened, `None` for a deletion of the subject.
    events: Vec<(String, Option<Vec<u8>>)>,
}

impl Model {
    fn expected(&self) -> BTreeMap<Vec<u8>, String> {
        let mut kept = BTreeMap::new();
        for (i, (subject, blob)) in self.events.iter().enumerate() {
            let Some(blob) = blob else { continue };
            let deleted_later = self.events[i + 1..]
                .iter()
                .any(|(s, b)| s == subject && b.is_none());
            if !deleted_later {
                kept.insert(blob.clone(), subject.clone());
            }
        }
        kept
    }
}

fn fleet_blobs(fleet: &PostgresStore, subjects: &[&str]) -> Vec<(Vec<u8>, String)> {
    let mut all = Vec::new();
    for s in subjects {
        for t in fleet.templates(s, None).unwrap() {
            all.push((t.blob, t.subject));
        }
    }
    all.sort();
    all
}

#[test]
fn twenty_partitions_lose_nothing_resurrect_nothing_and_converge() {
    let Some((_serial, url)) = fleet_database() else {
        return;
    };
    let fleet = PostgresStore::connect(&url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = Terminal::new("till-a", dir.path(), &url);
    let b = Terminal::new("till-b", dir.path(), &url);
    let subjects = ["ann", "ben", "cid", "dee", "eve"];
    let mut model = Model::default();
    let mut rng = 0x5eed_u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut serial = 0;
    let mut convergence = Vec::new();
    for partition in 0..20 {
        // Each round cuts one terminal, the other or both off the fleet store.
        let cut: Vec<&Terminal> = match partition % 3 {
            0 => vec![&a],
            1 => vec![&b],
            _ => vec![&a, &b],
        };
        for t in &cut {
            t.link.cut();
        }
        for _ in 0..6 {
            let terminal = if next(2) == 0 { &a } else { &b };
            let subject = subjects[next(subjects.len() as u64) as usize];
            // Distinct wall-clock milliseconds: the conflict rules order by them.
            std::thread::sleep(Duration::from_millis(3));
            if next(4) == 0 {
                terminal.fleet.store().delete_subject(subject).unwrap();
                model.events.push((subject.to_string(), None));
            } else {
                serial += 1;
                let blob = format!("{}-{subject}-{serial}", terminal.name).into_bytes();
                terminal
                    .fleet
                    .store()
                    .insert(subject, Modality::Face, "k1", &blob)
                    .unwrap();
                model.events.push((subject.to_string(), Some(blob)));
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        // A round on a cut terminal fails cleanly and keeps its outbox.
        for t in &cut {
            let pending = t.fleet.replica().pending_count().unwrap();
            assert!(t.fleet.replicator().sync_once().is_err());
            assert_eq!(t.fleet.replica().pending_count().unwrap(), pending);
        }
        for t in &cut {
            t.link.restore();
        }
        let started = Instant::now();
        a.converge();
        b.converge();
        a.converge();
        convergence.push(started.elapsed());

        let expected = model.expected();
        let stored = fleet_blobs(&fleet, &subjects);
        let mut counted = BTreeMap::new();
        for (blob, _) in &stored {
            *counted.entry(blob.clone()).or_insert(0) += 1;
        }
        assert!(
            counted.values().all(|n| *n == 1),
            "partition {partition}: a template stored twice"
        );
        let stored: BTreeMap<Vec<u8>, String> = stored.into_iter().collect();
        for (blob, subject) in &expected {
            assert_eq!(
                stored.get(blob),
                Some(subject),
                "partition {partition}: acknowledged enrollment {} lost",
                String::from_utf8_lossy(blob)
            );
        }
        for blob in stored.keys() {
            assert!(
                expected.contains_key(blob),
                "partition {partition}: deleted enrollment {} resurrected",
                String::from_utf8_lossy(blob)
            );
        }
        let digest = fleet.content_digest().unwrap();
        assert_eq!(a.fleet.replica().content_digest().unwrap(), digest);
        assert_eq!(b.fleet.replica().content_digest().unwrap(), digest);
    }
    convergence.sort();
    eprintln!(
        "20 partitions, {} enrollments and {} deletions: replicas equal to the fleet store after each; convergence median {:?}, max {:?}",
        model.events.iter().filter(|e| e.1.is_some()).count(),
        model.events.iter().filter(|e| e.1.is_none()).count(),
        convergence[convergence.len() / 2],
        convergence[convergence.len() - 1]
    );
}

#[test]
fn a_deletion_wins_over_an_older_enrollment_whichever_arrives_first() {
    let Some((_serial, url)) = fleet_database() else {
        return;
    };
    let fleet = PostgresStore::connect(&url).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = Terminal::new("till-a", dir.path(), &url);
    let b = Terminal::new("till-b", dir.path(), &url);
    a.link.cut();
    b.link.cut();
    // A enrolls first, B deletes later; B reaches the fleet first.
    a.fleet
        .store()
        .insert("zoe", Modality::Face, "k1", b"older")
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    b.fleet.store().delete_subject("zoe").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    b.link.restore();
    b.converge();
    a.link.restore();
    a.converge();
    b.converge();
    assert!(fleet.templates("zoe", None).unwrap().is_empty());
    assert!(a.fleet.store().templates("zoe", None).unwrap().is_empty());
    // An enrollment after the deletion is a new customer record and stays.
    a.fleet
        .store()
        .insert("zoe", Modality::Face, "k1", b"newer")
        .unwrap();
    a.converge();
    b.converge();
    let on_b = b.fleet.store().templates("zoe", None).unwrap();
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0].blob, b"newer");
}

#[test]
fn a_standalone_store_is_adopted_and_a_replica_keeps_its_name() {
    let Some((_serial, url)) = fleet_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("till-a.db");
    {
        let standalone = vouch::store::SqliteStore::open(&path).unwrap();
        standalone
            .insert("amy", Modality::Face, "k1", b"enrolled-before")
            .unwrap();
    }
    let a = Terminal::new("till-a", dir.path(), &url);
    a.converge();
    let fleet = PostgresStore::connect(&url).unwrap();
    assert_eq!(
        fleet.templates("amy", None).unwrap()[0].blob,
        b"enrolled-before"
    );
    drop(a);
    let err = vouch::store::SqliteStore::open_replica(&path, "till-b").unwrap_err();
    assert_eq!(err.kind(), vouch::ErrorKind::Config);
    assert!(err.to_string().contains("till-a"), "{err}");
}

#[test]
fn a_customers_failures_and_payments_count_on_every_terminal() {
    use std::sync::Arc;
    use vouch::attempts::{AttemptLimiter, AttemptsConfig, Lock};
    use vouch::ledger::EventKind;
    let Some((_serial, url)) = fleet_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Terminal::new("till-a", dir.path(), &url);
    let b = Terminal::new("till-b", dir.path(), &url);
    let config = AttemptsConfig {
        max_subject_failures: 3,
        ..AttemptsConfig::default()
    };
    let on_a = AttemptLimiter::new(config.clone(), Arc::clone(a.fleet.ledger()));
    let on_b = AttemptLimiter::new(config, Arc::clone(b.fleet.ledger()));
    let now = vouch::ledger::now_ms();
    for i in 0..3 {
        on_a.record_failure("mia", "till-a", now + i).unwrap();
    }
    let paid = vouch::ledger::NewEvent {
        amount_minor: 2_500,
        currency: "EUR",
        ..vouch::ledger::NewEvent::attempt(EventKind::Approval, "mia", "till-a")
    };
    a.fleet.ledger().record(&[paid], now).unwrap();
    assert_eq!(
        on_b.check("mia", "till-b", now + 10).unwrap(),
        None,
        "not synchronised yet"
    );
    a.converge();
    b.converge();
    assert!(matches!(
        on_b.check("mia", "till-b", now + 10).unwrap(),
        Some(Lock::Subject { .. })
    ));
    assert_eq!(
        on_b.check_terminal("till-b", now + 10).unwrap(),
        None,
        "another terminal's failures do not lock this one"
    );
    let paid = b
        .fleet
        .ledger()
        .subject_events("mia", &[EventKind::Approval], 0)
        .unwrap();
    assert_eq!(paid.len(), 1);
    assert_eq!(
        (paid[0].amount_minor, paid[0].origin.as_str()),
        (2_500, "till-a")
    );
    // Pushed once, pulled once: a second round changes nothing.
    a.converge();
    b.converge();
    assert_eq!(
        b.fleet
            .ledger()
            .subject_events("mia", &[EventKind::Failure, EventKind::Approval], 0)
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn a_reseal_on_one_terminal_reaches_the_fleet_and_the_others() {
    let Some((_serial, url)) = fleet_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Terminal::new("till-a", dir.path(), &url);
    let b = Terminal::new("till-b", dir.path(), &url);
    a.fleet
        .store()
        .insert("kai", Modality::Face, "k1", b"under-k1")
        .unwrap();
    a.converge();
    b.converge();
    // Key rotation as `vouch keys rotate` does it: another process opening the terminal's
    // database (a plain open), re-sealing in place.
    let other = vouch::store::SqliteStore::open(&dir.path().join("till-a.db")).unwrap();
    assert_eq!(other.origin(), Some("till-a"));
    let id = other.templates("kai", None).unwrap()[0].id;
    assert!(other.reseal(id, "k1", "k2", b"under-k2").unwrap());
    drop(other);
    a.converge();
    b.converge();
    a.converge();
    for t in [&a, &b] {
        let kept = t.fleet.store().templates("kai", None).unwrap();
        assert_eq!(
            (kept.len(), kept[0].key_id.as_str(), kept[0].blob.as_slice()),
            (1, "k2", b"under-k2".as_slice()),
            "{}",
            t.name
        );
    }
    let fleet = PostgresStore::connect(&url).unwrap();
    assert_eq!(fleet.templates("kai", None).unwrap()[0].key_id, "k2");
}

#[test]
fn a_fleet_store_behind_the_replica_is_refused_not_trusted() {
    let Some((_serial, url)) = fleet_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Terminal::new("till-a", dir.path(), &url);
    a.fleet
        .store()
        .insert("lea", Modality::Face, "k1", b"lea-face")
        .unwrap();
    a.converge();
    drop(a);
    // The same replica pointed at an empty fleet store (a wrong URL, a restored backup).
    let (server, _) = postgres().unwrap();
    let empty = postgres_database(&server, "vouch_replica");
    let a = Terminal::new("till-a", dir.path(), &empty);
    let err = a.fleet.replicator().sync_once().unwrap_err();
    assert!(
        err.to_string().contains("before this replica's cursor"),
        "{err}"
    );
    assert!(!a.fleet.status().is_online());
    assert_eq!(
        a.fleet.store().templates("lea", None).unwrap().len(),
        1,
        "nothing deleted"
    );
}

#[test]
fn vouch_fleet_status_says_whether_a_replica_is_in_step() {
    let Some((_serial, url)) = fleet_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Terminal::new("till-a", dir.path(), &url);
    a.fleet
        .store()
        .insert("noa", Modality::Face, "k1", b"noa-face")
        .unwrap();
    a.converge();
    let status = || {
        crate::util::vouch()
            .args([
                "fleet",
                "status",
                "--json",
                "--postgres-url",
                &url,
                "--replica",
            ])
            .arg(dir.path().join("till-a.db"))
            .output()
            .unwrap()
    };
    let out = status();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["in_step"], true);
    assert_eq!(report["origin"], "till-a");
    assert_eq!(report["fleet"]["templates"], 1);
    // A template slipped into the replica behind the replication's back.
    rusqlite::Connection::open(dir.path().join("till-a.db"))
        .unwrap()
        .execute(
            "INSERT INTO templates (subject, modality, key_id, blob, token, at_ms) VALUES ('eve', 'face', 'k1', x'00', 'f00d', 0)",
            [],
        )
        .unwrap();
    let out = status();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["in_step"], false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("differs"));
}
