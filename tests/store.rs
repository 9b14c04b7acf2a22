//! Template storage under stress: processes killed mid-write, interrupted key rotation, and no
//! plaintext at rest.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vouch::store::{SqliteStore, TemplateStore};
use vouch::template::{Kek, Keyring, Modality, Template, TemplateHeader};
use vouch::vault::Protection::Renewable;
use vouch::vault::TemplateVault;

use crate::util::postgres_script;

const DIM: usize = 128;

fn keyring(ids: &[&str]) -> Keyring {
    let mut ring = Keyring::single(ids[0], Kek::from_hex(&"5a".repeat(32)).unwrap()).unwrap();
    for (i, id) in ids.iter().enumerate().skip(1) {
        ring.rotate_to(
            id,
            Kek::from_hex(&format!("{:02x}", 0x60 + i).repeat(32)).unwrap(),
        )
        .unwrap();
    }
    ring
}

/// The vector enrolled for subject number `i`: distinct per subject, easy to recompute.
fn vector(i: u64) -> Vec<f32> {
    (0..DIM)
        .map(|k| ((i * 131 + k as u64 * 17) % 1009) as f32 / 1009.0 - 0.5 + i as f32)
        .collect()
}

fn template(i: u64) -> Template {
    let header = TemplateHeader {
        modality: Modality::Face,
        model_id: "mobilefacenet@b7120c095d60".into(),
        model_sha256: [1; 32],
        dimension: DIM as u32,
        samples: 1,
        quality: 0.9,
        created_unix: 0,
    };
    Template::new(header, vector(i)).unwrap()
}

fn vault(path: &Path, ring: Keyring) -> TemplateVault {
    TemplateVault::new(Arc::new(SqliteStore::open(path).unwrap()), Arc::new(ring))
}

/// Run only as a child of the crash tests (`--ignored`): prints `ready` once its vault is
/// open, then enrolls subjects in a loop, printing `ack N` after each enrollment returns, or
/// runs a key rotation, until it is killed.
#[test]
#[ignore = "a child process of the crash tests, not a test of its own"]
fn crash_child_process() {
    let path = std::env::var("VOUCH_CRASH_DB").expect("VOUCH_CRASH_DB");
    let mode = std::env::var("VOUCH_CRASH_MODE").expect("VOUCH_CRASH_MODE");
    let start: u64 = std::env::var("VOUCH_CRASH_START")
        .map(|s| s.parse().unwrap())
        .unwrap_or(0);
    let stop_at = Instant::now() + Duration::from_secs(20);
    match mode.as_str() {
        "enroll" => {
            let vault = vault(Path::new(&path), keyring(&["k1"]));
            println!("ready");
            for i in start.. {
                vault
                    .enroll(&format!("s{i}"), &template(i), Renewable)
                    .unwrap();
                println!("ack {i}");
                if Instant::now() > stop_at {
                    break;
                }
            }
        }
        "rotate" => {
            let vault = vault(Path::new(&path), keyring(&["k1", "k2"]));
            println!("ready");
            let mut n = 0;
            vault
                .rotate(&mut || {
                    n += 1;
                    println!("resealed {n}");
                })
                .unwrap();
            println!("done");
        }
        other => panic!("unknown mode {other}"),
    }
}

fn spawn_child(db: &Path, mode: &str, start: u64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "store::crash_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VOUCH_CRASH_DB", db)
        .env("VOUCH_CRASH_MODE", mode)
        .env("VOUCH_CRASH_START", start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for the child to say `ready` (its store is open), lets it work for `after`, then
/// SIGKILLs it; returns the lines it printed.
fn run_then_kill(mut child: std::process::Child, after: Duration) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let (ready, is_ready) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print the test's name on the same line, before it.
            if line.ends_with("ready") {
                let _ = ready.send(());
            } else {
                lines.push(line);
            }
        }
        lines
    });
    // Its start-up (a fresh test binary) is no part of the window the kill falls in.
    is_ready
        .recv_timeout(Duration::from_secs(60))
        .expect("the crash child never opened its store");
    // How long it writes before the kill is the test: a different moment each round.
    std::thread::sleep(after);
    let _ = child.kill(); // SIGKILL on Unix
    child.wait().unwrap();
    reader.join().unwrap()
}

/// A tiny deterministic generator for kill times (no dependency on a random crate).
fn kill_delay(round: u64) -> Duration {
    let x = (round
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
        >> 33)
        % 400;
    Duration::from_millis(150 + x)
}

#[test]
fn acknowledged_enrollments_survive_sigkill_and_nothing_is_partial() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("templates.db");
    let mut acked: Vec<u64> = Vec::new();
    let rounds = 20;
    for round in 0..rounds {
        let lines = run_then_kill(
            spawn_child(&db, "enroll", round * 1_000_000),
            kill_delay(round),
        );
        acked.extend(
            lines
                .iter()
                .filter_map(|l| l.strip_prefix("ack "))
                .map(|n| n.parse::<u64>().unwrap()),
        );
        // After every kill: the store opens, and every acknowledged enrollment so far is there
        // and decrypts to exactly what was enrolled.
        let vault = vault(&db, keyring(&["k1"]));
        for &i in &acked {
            let loaded = vault
                .load(
                    &format!("s{i}"),
                    Modality::Face,
                    "mobilefacenet@b7120c095d60",
                )
                .unwrap();
            assert_eq!(loaded.len(), 1);
            assert_eq!(
                loaded[0].values(),
                vector(i).as_slice(),
                "subject s{i} after round {round}"
            );
        }
        // No partial record: every stored row (acknowledged or not) decrypts.
        for s in vault.subjects().unwrap() {
            vault
                .load(&s.subject, Modality::Face, "mobilefacenet@b7120c095d60")
                .unwrap();
        }
    }
    eprintln!(
        "{rounds} SIGKILLs, {} acknowledged enrollments, all present and intact",
        acked.len()
    );
    assert!(
        acked.len() > rounds as usize,
        "the child barely ran: {} acks",
        acked.len()
    );
}

#[test]
fn an_interrupted_key_rotation_loses_nothing_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("templates.db");
    let count = 600u64;
    {
        let vault = vault(&db, keyring(&["k1"]));
        for i in 0..count {
            vault
                .enroll(&format!("s{i}"), &template(i), Renewable)
                .unwrap();
        }
    }
    let mut interrupted = 0;
    for round in 0..5 {
        let lines = run_then_kill(
            spawn_child(&db, "rotate", 0),
            Duration::from_millis(100 + 60 * round),
        );
        if !lines.iter().any(|l| l == "done") {
            interrupted += 1;
        }
        // Old and new keys together open every template, whichever key it is under now.
        let vault = vault(&db, keyring(&["k1", "k2"]));
        for i in (0..count).step_by(7) {
            let loaded = vault
                .load(
                    &format!("s{i}"),
                    Modality::Face,
                    "mobilefacenet@b7120c095d60",
                )
                .unwrap();
            assert_eq!(loaded[0].values(), vector(i).as_slice());
        }
    }
    eprintln!("{interrupted} of 5 rotation runs were killed part-way");
    // Resume to the end, then retire the old key: everything opens with the new key alone.
    let vault = vault(&db, keyring(&["k1", "k2"]));
    vault.rotate(&mut || {}).unwrap();
    let store = SqliteStore::open(&db).unwrap();
    assert!(store.not_under_key("k2", 10).unwrap().is_empty());
    let mut only_new = keyring(&["k1", "k2"]);
    only_new.retire("k1").unwrap();
    let vault = TemplateVault::new(Arc::new(store), Arc::new(only_new));
    for i in 0..count {
        let loaded = vault
            .load(
                &format!("s{i}"),
                Modality::Face,
                "mobilefacenet@b7120c095d60",
            )
            .unwrap();
        assert_eq!(loaded[0].values(), vector(i).as_slice());
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect()
}

#[test]
fn no_plaintext_vector_rests_in_the_sqlite_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("templates.db");
    let needles: Vec<Vec<u8>> = (0..20u64)
        .map(|i| {
            vector(i)[..8]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        })
        .collect();
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let vault = TemplateVault::new(store.clone(), Arc::new(keyring(&["k1"])));
    for i in 0..20u64 {
        vault
            .enroll(&format!("s{i}"), &template(i), Renewable)
            .unwrap();
    }
    // With the connection open, the WAL holds the recent writes; scan it and the database.
    let files = files_with_prefix(dir.path(), "templates.db");
    assert!(files.len() >= 2, "expected the database and its WAL");
    for (i, needle) in needles.iter().enumerate() {
        for file in &files {
            assert!(!contains(file, needle), "vector {i} found in plaintext");
        }
    }
    // The scan itself can see plaintext: a raw blob holding a vector is found.
    store
        .insert("control", Modality::Face, "none", &needles[3])
        .unwrap();
    let files = files_with_prefix(dir.path(), "templates.db");
    assert!(
        files.iter().any(|f| contains(f, &needles[3])),
        "the scan failed to see a plaintext control"
    );
}

#[test]
fn deleted_templates_leave_no_ciphertext_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("templates.db");
    let marker = b"DELETE-ME-MARKER-0123456789abcdef".repeat(8);
    {
        let store = SqliteStore::open(&db).unwrap();
        store.insert("gone", Modality::Face, "k1", &marker).unwrap();
        store
            .insert("kept", Modality::Face, "k1", b"other")
            .unwrap();
        assert_eq!(store.delete_subject("gone").unwrap(), 1);
    }
    // Closing checkpoints the WAL into the database; secure_delete zeroed the freed cells.
    let bytes = std::fs::read(&db).unwrap();
    assert!(
        !contains(&bytes, &marker[..32]),
        "deleted bytes remain in the database file"
    );
}

#[test]
fn postgres_writes_survive_a_server_restart_under_load() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use vouch::store::PostgresStore;
    let Some((url, data)) = crate::util::postgres() else {
        return;
    };
    let _serial = crate::util::postgres_exclusive(&data);
    // A subject prefix of its own, so this test shares the server with the suite safely.
    let store = Arc::new(PostgresStore::connect(&url).unwrap());
    store.delete_subject("restart-probe").ok();
    let running = Arc::new(AtomicBool::new(true));
    // Writes acknowledged so far: the signal that the writer is at work.
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (store, running, written) = (store.clone(), running.clone(), written.clone());
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut i = 0u64;
            while running.load(Ordering::Relaxed) {
                let blob = format!("restart-{i}").into_bytes();
                let id = store
                    .insert("restart-probe", Modality::Face, "k1", &blob)
                    .unwrap();
                acked.push((id, blob));
                written.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            acked
        })
    };
    let within = Duration::from_secs(60);
    crate::util::wait_until("writes acknowledged before the stop", within, || {
        written.load(Ordering::Relaxed) >= 20
    });
    postgres_script("stop", &data);
    // The outage itself: the server stays down for this long while the writer keeps trying
    // (a wall-clock window, the point of the test; nothing waits on it).
    std::thread::sleep(Duration::from_millis(500));
    postgres_script("start", &data);
    let at_restart = written.load(Ordering::Relaxed);
    crate::util::wait_until("writes acknowledged after the restart", within, || {
        written.load(Ordering::Relaxed) >= at_restart + 20
    });
    running.store(false, Ordering::Relaxed);
    let acked = writer.join().unwrap();
    let stored = store
        .templates("restart-probe", Some(Modality::Face))
        .unwrap();
    let stored: std::collections::HashMap<i64, Vec<u8>> =
        stored.into_iter().map(|t| (t.id, t.blob)).collect();
    for (id, blob) in &acked {
        assert_eq!(
            stored.get(id),
            Some(blob),
            "acknowledged write {id} lost across the restart"
        );
    }
    assert_eq!(
        stored.len(),
        acked.len(),
        "a retried insert was stored twice"
    );
    eprintln!(
        "{} acknowledged writes across a server restart, none lost or doubled",
        acked.len()
    );
    store.delete_subject("restart-probe").unwrap();
}

#[test]
fn no_plaintext_vector_in_a_pg_dump() {
    use vouch::store::PostgresStore;
    let Some((url, data)) = crate::util::postgres() else {
        return;
    };
    let _serial = crate::util::postgres_exclusive(&data);
    let store = Arc::new(PostgresStore::connect(&url).unwrap());
    let vault = TemplateVault::new(store.clone(), Arc::new(keyring(&["k1"])));
    for i in 0..10u64 {
        vault
            .enroll(&format!("dump-probe-{i}"), &template(900 + i), Renewable)
            .unwrap();
    }
    store
        .insert(
            "dump-control",
            Modality::Face,
            "none",
            &vector(950)[..8]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let pg_dump = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path().join("bin/pg_dump"))
        .expect("pg_dump");
    let out = Command::new(pg_dump)
        .args(["--data-only", "--table=vouch_templates", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // bytea is dumped as hex text: look for both the raw bytes and their hex spelling.
    let dump = out.stdout;
    let hex_dump = String::from_utf8_lossy(&dump).to_lowercase();
    let needle = |i: u64| -> Vec<u8> {
        vector(i)[..8]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    };
    for i in 900..910u64 {
        let n = needle(i);
        assert!(!contains(&dump, &n), "vector {i} in the dump's bytes");
        assert!(
            !hex_dump.contains(&hex::encode(&n)),
            "vector {i} in the dump as hex"
        );
    }
    assert!(
        hex_dump.contains(&hex::encode(needle(950))),
        "the scan failed to see a plaintext control"
    );
    for i in 0..10 {
        store.delete_subject(&format!("dump-probe-{i}")).unwrap();
    }
    store.delete_subject("dump-control").unwrap();
}
