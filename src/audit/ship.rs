//! Shipping the audit log to PostgreSQL, offline first.
//!
//! A terminal or daemon keeps appending to its local log whether or not the server is
//! reachable; [`Shipper::ship_once`] copies the records written since the last successful call
//! into the table `vouch_audit`, keyed by `(origin, seq)`. The copy is the log's external
//! anchor: once shipped, a record cannot be edited, removed or cut off the terminal's log
//! without the two disagreeing.
//!
//! - **Nothing is lost.** The cursor (`<log>.shipped`: origin, last shipped `seq`, its hash
//!   and the byte offset after it) advances only after the records up to it are committed, and
//!   is replaced atomically (temporary file, fsync, rename). An unreachable server is an
//!   [`ErrorKind::Store`] error and the next call starts from the same place.
//! - **Nothing is doubled.** Rows are inserted with `ON CONFLICT (origin, seq) DO NOTHING`, so a
//!   batch committed just before a crash (whose cursor was never written) is not stored twice.
//! - **Forks are refused.** A row already on the server under the same `(origin, seq)` must
//!   carry the same hash; otherwise the local log was rewritten, or two logs ship under one
//!   origin, and shipping stops with [`ErrorKind::AuditChain`].
//! - **Only a valid chain is shipped.** Records are verified as they are read, continuing the
//!   chain from the cursor's hash; the part before a break is shipped, then the break is
//!   reported.
//!
//! One shipper per log. It only reads the log, so it runs beside the [`super::AuditLog`] that
//! appends to it; a line still being written is left for the next call.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use postgres::{Client, NoTls};
use serde::{Deserialize, Serialize};

use super::chain::{Step, Walk};
use super::{AuditRecord, GENESIS};
use crate::error::{Error, ErrorKind, Result};

/// The table the records are shipped to.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS vouch_audit (
        origin     TEXT        NOT NULL,
        seq        BIGINT      NOT NULL,
        hash       TEXT        NOT NULL,
        prev       TEXT        NOT NULL,
        record     JSONB       NOT NULL,
        shipped_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (origin, seq)
    )";

/// Serialises `CREATE TABLE IF NOT EXISTS` across a fleet (two first runs at once would
/// otherwise race on the catalog).
const SCHEMA_LOCK: i64 = 7_230_013;

/// Where shipping stands, persisted in `<log>.shipped`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    version: u32,
    origin: String,
    /// The last shipped record's seq and hash (0 and [`GENESIS`] before the first).
    seq: u64,
    hash: String,
    /// The byte offset just after that record's line.
    offset: u64,
}

/// What one [`Shipper::ship_once`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShipReport {
    /// Records copied past the cursor by this call (including `already_present`).
    pub shipped: u64,
    /// Of those, records the server already held with the same hash (an earlier call committed
    /// them but could not record it).
    pub already_present: u64,
    /// The last record now shipped (0 when none ever was).
    pub up_to_seq: u64,
}

/// Copies an audit log's new records to PostgreSQL (see the module docs).
pub struct Shipper {
    log: PathBuf,
    cursor_path: PathBuf,
    origin: String,
    config: postgres::Config,
    batch: usize,
    /// One `ship_once` at a time: the cursor file has one writer.
    running: Mutex<()>,
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection settings may hold a password: never shown.
        f.debug_struct("Shipper")
            .field("log", &self.log)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Shipper {
    /// A shipper of the log at `log_path`, whose records are stored under `origin` (the
    /// terminal's or daemon's id: 1 to 128 of `A-Z a-z 0-9 - _ . :`), to the PostgreSQL server
    /// at `postgres_url` (libpq `key=value` or URL form). Nothing is connected until there is
    /// something to ship.
    pub fn new(log_path: &Path, origin: &str, postgres_url: &str) -> Result<Shipper> {
        crate::store::replication::check_origin(origin)?;
        let config = crate::store::connection_config(postgres_url)?;
        let mut cursor_name = log_path.as_os_str().to_owned();
        cursor_name.push(".shipped");
        Ok(Shipper {
            log: log_path.to_path_buf(),
            cursor_path: PathBuf::from(cursor_name),
            origin: origin.to_string(),
            config,
            batch: 500,
            running: Mutex::new(()),
        })
    }

    /// Sets how many records go in one transaction (and between two cursor updates). By
    /// default, 500.
    pub fn batch_size(mut self, records: usize) -> Shipper {
        self.batch = records.max(1);
        self
    }

    /// Sets how long to wait for the server to answer a connection. By default, 10 seconds
    /// (or the URL's `connect_timeout`).
    pub fn connect_timeout(mut self, timeout: Duration) -> Shipper {
        self.config.connect_timeout(timeout);
        self
    }

    /// The last record shipped so far (0 when none was).
    pub fn shipped_up_to(&self) -> Result<u64> {
        Ok(self.read_cursor()?.seq)
    }

    /// Ships every complete record written since the last successful call.
    ///
    /// An unreachable server or a failed statement is an [`ErrorKind::Store`] error; the
    /// records committed before it stay shipped, the rest are shipped by the next call. A
    /// broken local chain, a log shorter than what was shipped, or a server row with another
    /// hash (a fork) is an [`ErrorKind::AuditChain`] error.
    pub fn ship_once(&self) -> Result<ShipReport> {
        let _one_at_a_time = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let mut cursor = self.read_cursor()?;
        let mut file = File::open(&self.log).map_err(|e| Error::io("opening", &self.log, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("inspecting", &self.log, e))?
            .len();
        if len < cursor.offset {
            return Err(Error::new(
                ErrorKind::AuditChain,
                format!(
                    "the audit log {} is shorter ({len} bytes) than what was already shipped ({} bytes, up to record {}): it was cut or replaced",
                    self.log.display(),
                    cursor.offset,
                    cursor.seq
                ),
            ));
        }
        file.seek(SeekFrom::Start(cursor.offset))
            .map_err(|e| Error::io("reading", &self.log, e))?;
        let mut walk = Walk::new(
            BufReader::new(file),
            cursor.seq,
            cursor.hash.clone(),
            cursor.offset,
            &self.log,
        );
        let mut report = ShipReport {
            shipped: 0,
            already_present: 0,
            up_to_seq: cursor.seq,
        };
        let mut client = None;
        loop {
            let mut batch = Vec::with_capacity(self.batch.min(4096));
            let mut end = cursor.offset;
            let mut broken = None;
            while batch.len() < self.batch {
                match walk.next() {
                    Ok(Step::Record(record, after)) => {
                        batch.push(record);
                        end = after;
                    }
                    Ok(Step::Torn(_) | Step::End) => break,
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                }
            }
            if let Some(last) = batch.last() {
                let client = match &mut client {
                    Some(c) => c,
                    None => client.insert(self.connect()?),
                };
                let present = self.insert(client, &batch)?;
                let next = Cursor {
                    version: 1,
                    origin: self.origin.clone(),
                    seq: last.seq,
                    hash: last.hash.clone(),
                    offset: end,
                };
                self.write_cursor(&next)?;
                report.shipped += batch.len() as u64;
                report.already_present += present;
                report.up_to_seq = next.seq;
                cursor = next;
            }
            if let Some(e) = broken {
                return Err(e);
            }
            if batch.len() < self.batch {
                return Ok(report);
            }
        }
    }

    fn connect(&self) -> Result<Client> {
        let mut client = self
            .config
            .connect(NoTls)
            .map_err(|e| pg_error("connecting", &e))?;
        let mut tx = client
            .transaction()
            .map_err(|e| pg_error("creating the table", &e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .and_then(|_| tx.batch_execute(SCHEMA))
            .map_err(|e| pg_error("creating the table", &e))?;
        tx.commit()
            .map_err(|e| pg_error("creating the table", &e))?;
        Ok(client)
    }

    /// Inserts `batch` in one transaction; returns how many rows were already there (with the
    /// same hash: any other hash is a fork, and nothing of the batch is committed).
    fn insert(&self, client: &mut Client, batch: &[AuditRecord]) -> Result<u64> {
        let failed = |e: postgres::Error| pg_error("storing audit records", &e);
        let mut tx = client.transaction().map_err(failed)?;
        let insert = tx
            .prepare(
                "INSERT INTO vouch_audit (origin, seq, hash, prev, record)
                 VALUES ($1, $2, $3, $4, $5::TEXT::JSONB)
                 ON CONFLICT (origin, seq) DO NOTHING",
            )
            .map_err(failed)?;
        let mut present = 0;
        for record in batch {
            let json = serde_json::to_string(record).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("cannot encode audit record {}: {e}", record.seq),
                )
            })?;
            let seq = record.seq as i64;
            let inserted = tx
                .execute(
                    &insert,
                    &[&self.origin, &seq, &record.hash, &record.prev, &json],
                )
                .map_err(failed)?;
            if inserted == 0 {
                let row = tx
                    .query_one(
                        "SELECT hash FROM vouch_audit WHERE origin = $1 AND seq = $2",
                        &[&self.origin, &seq],
                    )
                    .map_err(failed)?;
                let theirs: String = row.get(0);
                if theirs != record.hash {
                    return Err(Error::new(
                        ErrorKind::AuditChain,
                        format!(
                            "fork: the server already holds a different record {} for origin {:?} (hash {theirs}, the local log has {}): the local log was rewritten, or two logs ship under one origin",
                            record.seq, self.origin, record.hash
                        ),
                    ));
                }
                present += 1;
            }
        }
        tx.commit().map_err(failed)?;
        Ok(present)
    }

    fn read_cursor(&self) -> Result<Cursor> {
        let text = match std::fs::read_to_string(&self.cursor_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Cursor {
                    version: 1,
                    origin: self.origin.clone(),
                    seq: 0,
                    hash: GENESIS.to_string(),
                    offset: 0,
                });
            }
            Err(e) => return Err(Error::io("reading", &self.cursor_path, e)),
        };
        let cursor: Cursor = serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "the shipping cursor {} is malformed ({e}); delete it to ship everything again (rows already shipped are recognised)",
                    self.cursor_path.display()
                ),
            )
        })?;
        if cursor.version != 1 {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "the shipping cursor {} has version {}; this vouch reads version 1",
                    self.cursor_path.display(),
                    cursor.version
                ),
            ));
        }
        if cursor.origin != self.origin {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "the log {} was shipped as origin {:?}, not {:?}; one log ships under one origin",
                    self.log.display(),
                    cursor.origin,
                    self.origin
                ),
            ));
        }
        Ok(cursor)
    }

    fn write_cursor(&self, cursor: &Cursor) -> Result<()> {
        let mut text = serde_json::to_vec(cursor).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("cannot encode the shipping cursor: {e}"),
            )
        })?;
        text.push(b'\n');
        crate::secure::write_atomic(
            &self.cursor_path,
            &text,
            crate::secure::Access::Private,
            crate::secure::Existing::Replace,
        )
        .map_err(|e| Error::io("writing", &self.cursor_path, e))
    }
}

fn pg_error(doing: &str, e: &postgres::Error) -> Error {
    // The server's message names tables and constraints, never the values bound to a query.
    Error::new(
        ErrorKind::Store,
        format!("audit shipping: {doing} failed: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::tests::event;
    use crate::audit::{AuditLog, verify_file};

    /// The tests that use the server run one at a time: one of them stops it.
    static SERVER: Mutex<()> = Mutex::new(());

    fn server() -> Option<(String, String)> {
        match (
            std::env::var("VOUCH_TEST_POSTGRES_URL"),
            std::env::var("VOUCH_TEST_POSTGRES_DATA"),
        ) {
            (Ok(url), Ok(data)) => Some((url, data)),
            _ => {
                crate::testing::skip(
                    "no test PostgreSQL server (run `eval \"$(scripts/postgres.sh start)\"`)",
                );
                None
            }
        }
    }

    fn postgres_script(arg: &str, data: &str) {
        let status = std::process::Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh"),
        )
        .arg(arg)
        .env("VOUCH_TEST_POSTGRES_DATA", data)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
        assert!(status.success(), "scripts/postgres.sh {arg} failed");
    }

    fn unique_origin(test: &str) -> String {
        let mut bytes = [0u8; 8];
        crate::secure::random(&mut bytes).unwrap();
        format!("test-{test}-{}", hex::encode(bytes))
    }

    /// `(seq, hash, prev, record's own hash)` of every row of `origin`, in seq order.
    fn rows(url: &str, origin: &str) -> Vec<(i64, String, String, String)> {
        let mut client = Client::connect(url, NoTls).unwrap();
        client
            .query(
                "SELECT seq, hash, prev, record->>'hash' FROM vouch_audit WHERE origin = $1 ORDER BY seq",
                &[&origin],
            )
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    fn delete_rows(url: &str, origin: &str) {
        let mut client = Client::connect(url, NoTls).unwrap();
        client
            .execute("DELETE FROM vouch_audit WHERE origin = $1", &[&origin])
            .unwrap();
    }

    fn local_records(path: &Path) -> Vec<AuditRecord> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn an_unreachable_server_is_a_store_error_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 1..=3 {
            log.append(event(i)).unwrap();
        }
        // Port 1 on loopback: nothing listens there.
        let shipper = Shipper::new(&path, "pos-0042", "host=127.0.0.1 port=1 user=vouch")
            .unwrap()
            .connect_timeout(Duration::from_secs(2));
        let err = shipper.ship_once().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{err}");
        assert_eq!(shipper.shipped_up_to().unwrap(), 0);
        assert!(!shipper.cursor_path.exists());
        assert!(format!("{shipper:?}").contains("pos-0042"));
        assert!(!format!("{shipper:?}").contains("port"));
    }

    #[test]
    fn bad_origins_urls_and_cursors_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        for origin in ["", "two words", &"x".repeat(129)] {
            let err = Shipper::new(&path, origin, "host=localhost").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{origin:?}");
        }
        let err = Shipper::new(&path, "pos-1", "postgresql://u:secret@h:notaport/db").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!err.to_string().contains("secret"), "{err}");

        // A cursor written for another origin.
        let a = Shipper::new(&path, "pos-a", "host=localhost").unwrap();
        a.write_cursor(&Cursor {
            version: 1,
            origin: "pos-a".into(),
            seq: 0,
            hash: GENESIS.into(),
            offset: 0,
        })
        .unwrap();
        let b = Shipper::new(&path, "pos-b", "host=localhost").unwrap();
        let err = b.shipped_up_to().unwrap_err();
        assert!(err.to_string().contains("one origin"), "{err}");
        assert_eq!(a.shipped_up_to().unwrap(), 0);
    }

    #[test]
    fn nothing_to_ship_needs_no_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        drop(AuditLog::open(&path).unwrap());
        let shipper = Shipper::new(&path, "pos-1", "host=127.0.0.1 port=1").unwrap();
        assert_eq!(
            shipper.ship_once().unwrap(),
            ShipReport {
                shipped: 0,
                already_present: 0,
                up_to_seq: 0
            }
        );
    }

    #[test]
    fn records_ship_exactly_once_in_order_across_a_server_outage() {
        let _serial = SERVER.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((url, data)) = server() else { return };
        let origin = unique_origin("outage");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        // Small batches, so the outage test crosses several transactions.
        let shipper = Shipper::new(&path, &origin, &url)
            .unwrap()
            .batch_size(7)
            .connect_timeout(Duration::from_secs(3));

        for i in 1..=30 {
            log.append(event(i)).unwrap();
        }
        let report = shipper.ship_once().unwrap();
        assert_eq!((report.shipped, report.up_to_seq), (30, 30));
        for i in 31..=40 {
            log.append(event(i)).unwrap();
        }

        postgres_script("stop", &data);
        // The server is restarted even if an assertion fails while it is down.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for i in 41..=55 {
                log.append(event(i)).unwrap();
            }
            let err = shipper.ship_once().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Store, "{err}");
            assert_eq!(shipper.shipped_up_to().unwrap(), 30, "the cursor moved");
        }));
        postgres_script("start", &data);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }

        let report = shipper.ship_once().unwrap();
        assert_eq!(
            report,
            ShipReport {
                shipped: 25,
                already_present: 0,
                up_to_seq: 55
            }
        );
        let local = local_records(&path);
        assert_eq!(verify_file(&path).unwrap().records, 55);
        let remote = rows(&url, &origin);
        assert_eq!(remote.len(), local.len(), "every record exactly once");
        for ((seq, hash, prev, own), record) in remote.iter().zip(&local) {
            assert_eq!(*seq as u64, record.seq);
            assert_eq!(hash, &record.hash);
            assert_eq!(own, &record.hash);
            assert_eq!(prev, &record.prev);
        }
        // Caught up: a second call ships nothing.
        assert_eq!(shipper.ship_once().unwrap().shipped, 0);
        delete_rows(&url, &origin);
    }

    #[test]
    fn a_lost_cursor_ships_nothing_twice_and_a_rewritten_log_is_a_fork() {
        let _serial = SERVER.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((url, _)) = server() else { return };
        let origin = unique_origin("fork");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 1..=5 {
            log.append(event(i)).unwrap();
        }
        let shipper = Shipper::new(&path, &origin, &url).unwrap();
        assert_eq!(shipper.ship_once().unwrap().shipped, 5);

        // The cursor lost (a crash after commit, or deleted): the rows are recognised.
        std::fs::remove_file(&shipper.cursor_path).unwrap();
        let report = shipper.ship_once().unwrap();
        assert_eq!((report.shipped, report.already_present), (5, 5));
        assert_eq!(rows(&url, &origin).len(), 5);

        // Another log shipping under the same origin: its record 1 differs.
        let other_dir = tempfile::tempdir().unwrap();
        let other_path = other_dir.path().join("audit.jsonl");
        let other = AuditLog::open(&other_path).unwrap();
        other.append(event(99)).unwrap();
        let err = Shipper::new(&other_path, &origin, &url)
            .unwrap()
            .ship_once()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AuditChain);
        assert!(err.to_string().contains("fork"), "{err}");
        assert_eq!(rows(&url, &origin).len(), 5);

        // The local log cut shorter than what was shipped.
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        let cut: Vec<&str> = text.lines().take(3).collect();
        std::fs::write(&path, format!("{}\n", cut.join("\n"))).unwrap();
        let err = shipper.ship_once().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AuditChain);
        assert!(err.to_string().contains("shorter"), "{err}");
        delete_rows(&url, &origin);
    }
}
