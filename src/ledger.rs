//! The terminal's durable decision state: what happened to customers and terminals recently
//! (failed and successful verifications, approved payments) and the challenges issued and
//! spent. One SQLite file (`decisions.state`, by default `state.db` beside the audit log),
//! written before a decision is returned, so a restart of the daemon neither unlocks a
//! locked customer, nor forgets the payments a velocity rule counts, nor makes a spent
//! challenge usable again.
//!
//! Events are facts, not counters: the lockout and velocity rules are computed from them
//! ([`crate::decision::lockout`], [`crate::decision::velocity`]). A fleet terminal's
//! replicator pushes its own events to the fleet store and pulls the others' (each event once,
//! by its random id), so that a customer's failures and payments count fleet-wide — up to the
//! replication lag, and locally only while offline. Events older than the longest window any
//! rule looks at are pruned.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, ErrorKind, Result};

/// Now, in milliseconds since the Unix epoch (the wall clock events and replicated changes
/// are stamped with).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A verification that failed biometrically (counts towards a lockout).
    Failure,
    /// A verification that succeeded (clears the subject's failures).
    Success,
    /// A payment approved (counts towards velocity rules).
    Approval,
}

impl EventKind {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Failure => "failure",
            EventKind::Success => "success",
            EventKind::Approval => "approval",
        }
    }

    /// The kind a stored name names.
    pub fn parse(name: &str) -> Result<EventKind> {
        match name {
            "failure" => Ok(EventKind::Failure),
            "success" => Ok(EventKind::Success),
            "approval" => Ok(EventKind::Approval),
            other => Err(Error::new(
                ErrorKind::Store,
                format!("state database: unknown event kind {other:?}"),
            )),
        }
    }
}

/// One event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// A random 128-bit id (32 hex digits), unique fleet-wide.
    pub id: String,
    /// The terminal (`[daemon] origin`) whose daemon recorded it.
    pub origin: String,
    /// What happened.
    pub kind: EventKind,
    /// The customer.
    pub subject: String,
    /// The terminal the request came from.
    pub terminal: String,
    /// The payment's amount in minor units (approvals).
    pub amount_minor: u64,
    /// The payment's currency (approvals; empty otherwise).
    pub currency: String,
    /// Whether the approval used a factor beyond face and liveness (approvals).
    pub strong: bool,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
    CREATE TABLE events (
        id           TEXT    PRIMARY KEY,
        origin       TEXT    NOT NULL,
        kind         TEXT    NOT NULL CHECK (kind IN ('failure', 'success', 'approval')),
        subject      TEXT    NOT NULL,
        terminal     TEXT    NOT NULL,
        amount_minor INTEGER NOT NULL DEFAULT 0,
        currency     TEXT    NOT NULL DEFAULT '',
        strong       INTEGER NOT NULL DEFAULT 0,
        at_ms        INTEGER NOT NULL,
        pushed       INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX events_by_subject ON events (subject, kind, at_ms);
    CREATE INDEX events_by_terminal ON events (terminal, kind, at_ms);
    CREATE INDEX events_to_push ON events (pushed) WHERE pushed = 0;
    CREATE TABLE replica (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE challenges (
        id_hash    TEXT    PRIMARY KEY,
        kind       TEXT    NOT NULL,
        payload    BLOB    NOT NULL,
        expires_ms INTEGER NOT NULL,
        spent      INTEGER NOT NULL DEFAULT 0
    );
";

/// An event to record ([`Ledger::record`]).
#[derive(Clone, Copy, Debug)]
pub struct NewEvent<'a> {
    /// What happened.
    pub kind: EventKind,
    /// The customer.
    pub subject: &'a str,
    /// The terminal the request came from.
    pub terminal: &'a str,
    /// The payment's amount (approvals; 0 otherwise).
    pub amount_minor: u64,
    /// The payment's currency (approvals; empty otherwise).
    pub currency: &'a str,
    /// Whether the approval used a factor beyond face and liveness.
    pub strong: bool,
}

impl<'a> NewEvent<'a> {
    /// A failed or successful verification of `subject` at `terminal`.
    pub fn attempt(kind: EventKind, subject: &'a str, terminal: &'a str) -> NewEvent<'a> {
        NewEvent {
            kind,
            subject,
            terminal,
            amount_minor: 0,
            currency: "",
            strong: false,
        }
    }
}

/// Stores an event (ignored when its id is known); `pushed` marks events that came from the
/// fleet store. Returns whether it was new.
fn insert(conn: &Connection, event: &Event, pushed: bool) -> Result<bool> {
    conn.execute(
        "INSERT INTO events (id, origin, kind, subject, terminal, amount_minor, currency, strong, at_ms, pushed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
        params![
            event.id,
            event.origin,
            event.kind.as_str(),
            event.subject,
            event.terminal,
            event.amount_minor as i64,
            event.currency,
            event.strong,
            event.at_ms,
            pushed
        ],
    )
    .map(|n| n == 1)
    .map_err(|e| db_error("recording an event", e))
}

/// `kind IN (…)` for `kinds` (their fixed names, never input).
fn kinds_filter(kinds: &[EventKind]) -> String {
    let names: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
    format!("kind IN ({})", names.join(", "))
}

/// The decision state in a SQLite file (or in memory).
pub struct Ledger {
    path: Option<PathBuf>,
    conn: Mutex<Connection>,
    origin: String,
    /// Events this process recorded (a replicator's cue to push; pruning's clock).
    recorded: AtomicU64,
}

/// Old events are pruned every this many recorded ones.
const PRUNE_EVERY: u64 = 1024;

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db_error(doing: &str, e: rusqlite::Error) -> Error {
    crate::sqlite_file::error("state database", doing, e)
}

impl Ledger {
    /// Opens (creating if needed, mode 0600) the state database at `path`; `origin` names this
    /// terminal in the events it records.
    pub fn open(path: &Path, origin: &str) -> Result<Ledger> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io("creating the state folder", dir, e))?;
        }
        let conn = crate::sqlite_file::open(path, "state database")?;
        // Written on every decision and small: checkpointed often, its WAL kept short, so the
        // files stay small on a terminal's flash (and within a tight file-size limit).
        conn.execute_batch("PRAGMA wal_autocheckpoint = 8; PRAGMA journal_size_limit = 32768;")
            .map_err(|e| db_error("configuring", e))?;
        Ledger::with_connection(conn, Some(path.to_path_buf()), origin)
    }

    /// A ledger in memory (not durable): for tests and embedders that keep no state.
    pub fn in_memory(origin: &str) -> Result<Ledger> {
        let conn = Connection::open_in_memory().map_err(|e| db_error("opening", e))?;
        Ledger::with_connection(conn, None, origin)
    }

    fn with_connection(conn: Connection, path: Option<PathBuf>, origin: &str) -> Result<Ledger> {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| db_error("reading the schema version", e))?;
        if version > SCHEMA_VERSION {
            return Err(Error::new(
                ErrorKind::Store,
                format!(
                    "the state database has schema version {version}, newer than this vouch ({SCHEMA_VERSION}); upgrade vouch"
                ),
            ));
        }
        if version == 0 {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                db_error("creating the schema", e)
            })?;
        }
        let ledger = Ledger {
            path,
            conn: Mutex::new(conn),
            origin: origin.to_string(),
            recorded: AtomicU64::new(0),
        };
        ledger.prune_old()?;
        Ok(ledger)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The terminal this ledger records for.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The file, unless in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// How many events this process has recorded.
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// Prunes what no rule looks at any more: events older than the velocity horizon (the
    /// longest any rule or lockout looks back), challenges expired an hour ago.
    fn prune_old(&self) -> Result<usize> {
        let horizon_ms = (crate::policy::VELOCITY_HORIZON_SECONDS as i64) * 1000;
        let now = now_ms();
        let conn = self.conn();
        let events = conn
            .execute(
                "DELETE FROM events WHERE at_ms < ?1",
                params![now - horizon_ms],
            )
            .map_err(|e| db_error("pruning events", e))?;
        let challenges = conn
            .execute(
                "DELETE FROM challenges WHERE expires_ms < ?1",
                params![now - 3_600_000],
            )
            .map_err(|e| db_error("pruning challenges", e))?;
        Ok(events + challenges)
    }

    /// Records events of this terminal at `at_ms`, durably and together (one transaction:
    /// a verification's success and its approved payment are one write).
    pub fn record(&self, events: &[NewEvent<'_>], at_ms: i64) -> Result<()> {
        {
            let mut conn = self.conn();
            let tx = conn
                .transaction()
                .map_err(|e| db_error("recording events", e))?;
            for new in events {
                let mut id = [0u8; 16];
                crate::secure::random(&mut id)?;
                insert(
                    &tx,
                    &Event {
                        id: hex::encode(id),
                        origin: self.origin.clone(),
                        kind: new.kind,
                        subject: new.subject.to_string(),
                        terminal: new.terminal.to_string(),
                        amount_minor: new.amount_minor,
                        currency: new.currency.to_string(),
                        strong: new.strong,
                        at_ms,
                    },
                    false,
                )?;
            }
            tx.commit().map_err(|e| db_error("recording events", e))?;
        }
        let before = self
            .recorded
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        if before / PRUNE_EVERY != (before + events.len() as u64) / PRUNE_EVERY {
            self.prune_old()?;
        }
        Ok(())
    }

    fn query(
        &self,
        filter: &str,
        values: impl rusqlite::Params,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT id, origin, kind, subject, terminal, amount_minor, currency, strong, at_ms FROM events
                 WHERE {filter} ORDER BY at_ms, id LIMIT {limit}"
            ))
            .map_err(|e| db_error("reading events", e))?;
        type Row = (
            String,
            String,
            String,
            String,
            String,
            i64,
            String,
            bool,
            i64,
        );
        let rows: Vec<Row> = stmt
            .query_map(values, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| db_error("reading events", e))?;
        rows.into_iter()
            .map(
                |(id, origin, kind, subject, terminal, amount, currency, strong, at_ms)| {
                    Ok(Event {
                        id,
                        origin,
                        kind: EventKind::parse(&kind)?,
                        subject,
                        terminal,
                        amount_minor: amount.max(0) as u64,
                        currency,
                        strong,
                        at_ms,
                    })
                },
            )
            .collect()
    }

    /// A subject's events of `kinds` since `since_ms` (every terminal's that reached this
    /// one), oldest first.
    pub fn subject_events(
        &self,
        subject: &str,
        kinds: &[EventKind],
        since_ms: i64,
    ) -> Result<Vec<Event>> {
        self.query(
            &format!("subject = ?1 AND {} AND at_ms >= ?2", kinds_filter(kinds)),
            params![subject, since_ms],
            usize::MAX >> 1,
        )
    }

    /// A subject's failures since `since_ms` that came after their last success (a success
    /// clears the failures before it, and none happens while they are locked), oldest first.
    pub fn failures_since_success(&self, subject: &str, since_ms: i64) -> Result<Vec<Event>> {
        self.query(
            "subject = ?1 AND kind = 'failure' AND at_ms >= ?2 AND at_ms > COALESCE(
                (SELECT MAX(at_ms) FROM events WHERE subject = ?1 AND kind = 'success' AND at_ms >= ?2), ?2 - 1)",
            params![subject, since_ms],
            usize::MAX >> 1,
        )
    }

    /// A terminal's events of `kinds` since `since_ms`, oldest first.
    pub fn terminal_events(
        &self,
        terminal: &str,
        kinds: &[EventKind],
        since_ms: i64,
    ) -> Result<Vec<Event>> {
        self.query(
            &format!("terminal = ?1 AND {} AND at_ms >= ?2", kinds_filter(kinds)),
            params![terminal, since_ms],
            usize::MAX >> 1,
        )
    }

    /// This terminal's events not yet in the fleet store, oldest first (up to `limit`).
    pub fn unpushed(&self, limit: usize) -> Result<Vec<Event>> {
        self.query("pushed = 0", [], limit)
    }

    /// Marks events as in the fleet store.
    pub fn mark_pushed(&self, ids: &[String]) -> Result<()> {
        let conn = self.conn();
        for id in ids {
            conn.execute("UPDATE events SET pushed = 1 WHERE id = ?1", params![id])
                .map_err(|e| db_error("marking events pushed", e))?;
        }
        Ok(())
    }

    /// Stores events pulled from the fleet store and the new cursor.
    pub fn apply_pulled(&self, events: &[Event], cursor: i64) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(|e| db_error("storing pulled events", e))?;
        let mut new = 0;
        for event in events {
            if insert(&tx, event, true)? {
                new += 1;
            }
        }
        tx.execute(
            "INSERT INTO replica (key, value) VALUES ('events_cursor', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![cursor.to_string()],
        )
        .map_err(|e| db_error("saving the events cursor", e))?;
        tx.commit()
            .map_err(|e| db_error("storing pulled events", e))?;
        Ok(new)
    }

    /// The fleet events-log position this terminal has pulled.
    pub fn events_cursor(&self) -> Result<i64> {
        let value: Option<String> = self
            .conn()
            .query_row(
                "SELECT value FROM replica WHERE key = 'events_cursor'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_error("reading the events cursor", e))?;
        value.map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| Error::new(ErrorKind::Store, "state database: a broken cursor"))
        })
    }

    /// Stores an issued challenge: its id's hash (never the id itself), what kind it is, its
    /// content and expiry.
    pub fn issue_challenge(
        &self,
        id_hash: &str,
        kind: &str,
        payload: &[u8],
        expires_ms: i64,
    ) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO challenges (id_hash, kind, payload, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                params![id_hash, kind, payload, expires_ms],
            )
            .map(|_| ())
            .map_err(|e| db_error("storing a challenge", e))
    }

    /// Spends a challenge: its content and expiry when it was outstanding (now spent, for
    /// good), `None` when unknown or already spent.
    pub fn spend_challenge(&self, id_hash: &str, kind: &str) -> Result<Option<(Vec<u8>, i64)>> {
        self.conn()
            .query_row(
                "UPDATE challenges SET spent = 1 WHERE id_hash = ?1 AND kind = ?2 AND spent = 0
                 RETURNING payload, expires_ms",
                params![id_hash, kind],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| db_error("spending a challenge", e))
    }

    /// Outstanding (unspent, unexpired at `now_ms`) challenges of `kind`.
    pub fn outstanding_challenges(&self, kind: &str, now_ms: i64) -> Result<usize> {
        self.conn()
            .query_row(
                "SELECT COUNT(*) FROM challenges WHERE kind = ?1 AND spent = 0 AND expires_ms > ?2",
                params![kind, now_ms],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(|e| db_error("counting challenges", e))
    }
}

impl crate::single_use::ChallengeBook for Ledger {
    fn issue(&self, id_hash: &str, kind: &str, payload: &[u8], expires_ms: i64) -> Result<()> {
        self.issue_challenge(id_hash, kind, payload, expires_ms)
    }

    fn spend(&self, id_hash: &str, kind: &str) -> Result<Option<(Vec<u8>, i64)>> {
        self.spend_challenge(id_hash, kind)
    }

    fn outstanding(&self, kind: &str, now_ms: i64) -> Result<usize> {
        self.outstanding_challenges(kind, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_challenges_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let t = now_ms();
        {
            let ledger = Ledger::open(&path, "till-1").unwrap();
            ledger
                .record(
                    &[NewEvent::attempt(EventKind::Failure, "alice", "till-1")],
                    t,
                )
                .unwrap();
            let paid = NewEvent {
                amount_minor: 450,
                currency: "EUR",
                ..NewEvent::attempt(EventKind::Approval, "alice", "till-1")
            };
            ledger.record(&[paid], t + 1).unwrap();
            ledger
                .issue_challenge("h1", "passphrase", b"123456", t + 10_000)
                .unwrap();
            assert!(
                ledger
                    .spend_challenge("h1", "passphrase")
                    .unwrap()
                    .is_some()
            );
            ledger
                .issue_challenge("h2", "passphrase", b"654321", t + 10_000)
                .unwrap();
        }
        let ledger = Ledger::open(&path, "till-1").unwrap();
        let events = ledger
            .subject_events("alice", &[EventKind::Failure, EventKind::Approval], 0)
            .unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].amount_minor, 450);
        assert_eq!(ledger.unpushed(10).unwrap().len(), 2);
        assert_eq!(
            ledger.spend_challenge("h1", "passphrase").unwrap(),
            None,
            "a spent challenge stays spent"
        );
        assert_eq!(
            ledger.spend_challenge("h2", "movement").unwrap(),
            None,
            "a challenge of another kind"
        );
        assert_eq!(
            ledger.spend_challenge("h2", "passphrase").unwrap(),
            Some((b"654321".to_vec(), t + 10_000))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn pulled_events_are_stored_once_and_pruned_once_pushed() {
        let ledger = Ledger::in_memory("till-1").unwrap();
        let event = Event {
            id: "e1".into(),
            origin: "till-2".into(),
            kind: EventKind::Failure,
            subject: "bob".into(),
            terminal: "till-2".into(),
            amount_minor: 0,
            currency: String::new(),
            strong: false,
            at_ms: 5,
        };
        assert_eq!(
            ledger
                .apply_pulled(&[event.clone(), event.clone()], 7)
                .unwrap(),
            1
        );
        assert_eq!(ledger.events_cursor().unwrap(), 7);
        assert!(ledger.unpushed(10).unwrap().is_empty(), "not ours to push");
        let now = now_ms();
        ledger
            .record(
                &[NewEvent::attempt(EventKind::Failure, "bob", "till-1")],
                now,
            )
            .unwrap();
        let ours = ledger.unpushed(10).unwrap();
        assert_eq!(ours.len(), 1);
        ledger.mark_pushed(&[ours[0].id.clone()]).unwrap();
        assert!(ledger.unpushed(10).unwrap().is_empty());
        assert_eq!(ledger.prune_old().unwrap(), 1, "the month-old one only");
        assert_eq!(
            ledger
                .subject_events("bob", &[EventKind::Failure], 0)
                .unwrap()
                .len(),
            1
        );
    }
}
