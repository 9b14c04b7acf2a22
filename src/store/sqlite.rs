//! The embedded default store: one SQLite file.
//!
//! WAL journal with `synchronous = FULL`, so a write that returned survives a process kill and
//! a power cut; `secure_delete = ON`, so deleted templates are overwritten in the file rather
//! than left in free pages; the database file is created readable by its owner only. The
//! schema version lives in `PRAGMA user_version` and is migrated forward on open; a database
//! from a newer vouch is refused rather than misread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::{Error, ErrorKind, Result};
use crate::store::replication::{
    Change, ContentDigest, Op, Pulled, content_digest, now_ms, random_token,
};
use crate::store::{NewTemplate, StoredTemplate, SubjectSummary, TemplateStore};
use crate::template::Modality;

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = 3;

/// Each migration takes the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE templates (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        subject  TEXT    NOT NULL,
        modality TEXT    NOT NULL CHECK (modality IN ('face', 'voice')),
        key_id   TEXT    NOT NULL,
        blob     BLOB    NOT NULL,
        created  INTEGER NOT NULL DEFAULT (unixepoch())
    );
    CREATE INDEX templates_by_subject ON templates (subject, modality, id);
    CREATE INDEX templates_by_key ON templates (key_id);
",
    "
    CREATE TABLE templates_v2 (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        subject  TEXT    NOT NULL,
        modality TEXT    NOT NULL CHECK (modality IN ('face', 'voice', 'passphrase')),
        key_id   TEXT    NOT NULL,
        blob     BLOB    NOT NULL,
        created  INTEGER NOT NULL DEFAULT (unixepoch())
    );
    INSERT INTO templates_v2 (id, subject, modality, key_id, blob, created)
        SELECT id, subject, modality, key_id, blob, created FROM templates;
    DROP TABLE templates;
    ALTER TABLE templates_v2 RENAME TO templates;
    CREATE INDEX templates_by_subject ON templates (subject, modality, id);
    CREATE INDEX templates_by_key ON templates (key_id);
",
    // Replication: fleet-wide tokens and enrollment times, the outbox of local writes not yet
    // in the fleet store, and the replica's state (origin, cursor).
    "
    ALTER TABLE templates ADD COLUMN token TEXT;
    UPDATE templates SET token = lower(hex(randomblob(16)));
    CREATE UNIQUE INDEX templates_by_token ON templates (token);
    ALTER TABLE templates ADD COLUMN at_ms INTEGER NOT NULL DEFAULT 0;
    UPDATE templates SET at_ms = created * 1000;
    CREATE TABLE replica (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE outbox (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        change_id  TEXT    NOT NULL,
        subject    TEXT    NOT NULL,
        origin     TEXT    NOT NULL,
        at_ms      INTEGER NOT NULL,
        op         TEXT    NOT NULL,
        token      TEXT,
        modality   TEXT,
        key_id     TEXT,
        old_key_id TEXT,
        blob       BLOB
    );
",
];

/// Templates in a SQLite database file.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// The terminal's name when this is a fleet replica: every write also records a
    /// [`Change`] in the outbox.
    origin: Option<String>,
    /// Changes recorded in the outbox by this process (the replicator's cue to push).
    recorded: AtomicU64,
    /// Pulls applied by this process (part of [`TemplateStore::revision`]: SQLite's own
    /// counter does not move for this connection's writes).
    applied: AtomicU64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db_error(doing: &str, e: rusqlite::Error) -> Error {
    crate::sqlite_file::error("template database", doing, e)
}

impl SqliteStore {
    /// Opens (creating if needed, mode 0600) the database at `path` and migrates its schema. A
    /// terminal's replica ([`SqliteStore::open_replica`]) opens as that replica.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let conn = crate::sqlite_file::open(path, "template database")?;
        migrate(&conn)?;
        // A terminal's replica stays one whoever opens it (`vouch keys rotate`, `vouch subjects
        // delete`): its writes go through the outbox too, or the next pull would undo them.
        let origin: Option<String> = conn
            .query_row("SELECT value FROM replica WHERE key = 'origin'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| db_error("reading the replica's origin", e))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            origin,
            recorded: AtomicU64::new(0),
            applied: AtomicU64::new(0),
        })
    }

    /// Opens the database at `path` as the fleet replica of terminal `origin`: every write also
    /// records its [`Change`] in the outbox, to be pushed to the fleet store (see
    /// [`crate::store::replication`]). A database that was a standalone store until now is
    /// adopted: its templates are queued for the fleet too. A replica keeps its origin: opening
    /// it under another name is refused.
    pub fn open_replica(path: &Path, origin: &str) -> Result<SqliteStore> {
        crate::store::replication::check_origin(origin)?;
        let mut store = SqliteStore::open(path)?;
        store.origin = Some(origin.to_string());
        let mut conn = store.conn();
        let tx = begin(&mut conn, "adopting the store as a replica")?;
        let known: Option<String> = tx
            .query_row("SELECT value FROM replica WHERE key = 'origin'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| db_error("reading the replica's origin", e))?;
        match known {
            Some(known) if known == origin => {}
            Some(known) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "the template database is the replica of terminal {known:?}, not {origin:?}; give each terminal its own"
                    ),
                ));
            }
            None => {
                let subjects: Vec<String> = {
                    let mut stmt = tx
                        .prepare("SELECT DISTINCT subject FROM templates ORDER BY subject")
                        .map_err(|e| db_error("adopting the store as a replica", e))?;
                    stmt.query_map([], |r| r.get(0))
                        .and_then(|rows| rows.collect())
                        .map_err(|e| db_error("adopting the store as a replica", e))?
                };
                for subject in subjects {
                    let ops = template_rows(&tx, "subject = ?1", params![subject])?
                        .into_iter()
                        .map(|(row, token)| Op::Insert {
                            token,
                            modality: row.modality,
                            key_id: row.key_id,
                            blob: row.blob,
                        })
                        .collect();
                    record(&tx, origin, &subject, ops)?;
                }
                tx.execute(
                    "INSERT INTO replica (key, value) VALUES ('origin', ?1)",
                    params![origin],
                )
                .map_err(|e| db_error("adopting the store as a replica", e))?;
            }
        }
        commit(tx, "adopting the store as a replica")?;
        drop(conn);
        store.recorded.fetch_add(1, Ordering::Relaxed);
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| db_error("reading the schema version", e))?;
    if version > SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::Store,
            format!(
                "the template database has schema version {version}, newer than this vouch ({SCHEMA_VERSION}); upgrade vouch"
            ),
        ));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let to = from as i64 + 1;
        // Each step and its version bump commit together, so a crash mid-migration leaves the
        // previous version intact.
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {to}; COMMIT;"
        ))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            db_error(&format!("migrating the schema to version {to}"), e)
        })?;
    }
    Ok(())
}

fn row_to_template(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, String, String, String, Vec<u8>)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn convert(rows: Vec<(i64, String, String, String, Vec<u8>)>) -> Result<Vec<StoredTemplate>> {
    rows.into_iter()
        .map(|(id, subject, modality, key_id, blob)| {
            Ok(StoredTemplate {
                id,
                subject,
                modality: Modality::parse(&modality)?,
                key_id,
                blob,
            })
        })
        .collect()
}

const COLUMNS: &str = "id, subject, modality, key_id, blob";

/// Starts a write transaction that takes the write lock at once (no upgrade deadlock).
fn begin<'c>(conn: &'c mut Connection, doing: &str) -> Result<Transaction<'c>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| db_error(doing, e))
}

fn commit(tx: Transaction<'_>, doing: &str) -> Result<()> {
    tx.commit().map_err(|e| db_error(doing, e))
}

/// Templates matching `filter` (an SQL condition on `templates`), each with its token.
fn template_rows(
    tx: &Connection,
    filter: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<(StoredTemplate, String)>> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, token FROM templates WHERE {filter} ORDER BY id"
        ))
        .map_err(|e| db_error("reading templates", e))?;
    let rows = stmt
        .query_map(values, |r| {
            Ok((row_to_template(r)?, r.get::<_, String>(5)?))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| db_error("reading templates", e))?;
    rows.into_iter()
        .map(|(raw, token)| Ok((convert(vec![raw])?.remove(0), token)))
        .collect()
}

/// Records a local write in the outbox (same transaction as the write).
fn record(tx: &Connection, origin: &str, subject: &str, ops: Vec<Op>) -> Result<()> {
    if ops.is_empty() {
        return Ok(());
    }
    let change_id = random_token()?;
    let at_ms = now_ms();
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO outbox (change_id, subject, origin, at_ms, op, token, modality, key_id, old_key_id, blob)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(|e| db_error("recording a change", e))?;
    for op in &ops {
        let (token, modality, key_id, old_key_id, blob) = match op {
            Op::Insert {
                token,
                modality,
                key_id,
                blob,
            } => (
                Some(token.as_str()),
                Some(modality.as_str()),
                Some(key_id.as_str()),
                None,
                Some(blob.as_slice()),
            ),
            Op::Delete { token } => (Some(token.as_str()), None, None, None, None),
            Op::DeleteSubject => (None, None, None, None, None),
            Op::Reseal {
                token,
                old_key_id,
                new_key_id,
                blob,
            } => (
                Some(token.as_str()),
                None,
                Some(new_key_id.as_str()),
                Some(old_key_id.as_str()),
                Some(blob.as_slice()),
            ),
        };
        stmt.execute(params![
            change_id,
            subject,
            origin,
            at_ms,
            op.kind(),
            token,
            modality,
            key_id,
            old_key_id,
            blob
        ])
        .map_err(|e| db_error("recording a change", e))?;
    }
    Ok(())
}

impl SqliteStore {
    /// Records `ops` for `subject` when this store is a replica.
    fn record(&self, tx: &Connection, subject: &str, ops: Vec<Op>) -> Result<()> {
        match &self.origin {
            Some(origin) => {
                record(tx, origin, subject, ops)?;
                self.recorded.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl TemplateStore for SqliteStore {
    fn update(
        &self,
        subject: &str,
        insert: &[NewTemplate<'_>],
        delete: &[i64],
    ) -> Result<Vec<i64>> {
        const DOING: &str = "storing templates";
        let mut conn = self.conn();
        let tx = begin(&mut conn, DOING)?;
        let at_ms = now_ms();
        let mut ids = Vec::with_capacity(insert.len());
        let mut ops = Vec::with_capacity(insert.len() + delete.len());
        for new in insert {
            let token = random_token()?;
            tx.execute(
                "INSERT INTO templates (subject, modality, key_id, blob, token, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![subject, new.modality.as_str(), new.key_id, new.blob, token, at_ms],
            )
            .map_err(|e| db_error(DOING, e))?;
            ids.push(tx.last_insert_rowid());
            ops.push(Op::Insert {
                token,
                modality: new.modality,
                key_id: new.key_id.to_string(),
                blob: new.blob.to_vec(),
            });
        }
        for id in delete {
            let token: Option<String> = tx
                .query_row(
                    "DELETE FROM templates WHERE id = ?1 AND subject = ?2 RETURNING token",
                    params![id, subject],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| db_error(DOING, e))?;
            if let Some(token) = token {
                ops.push(Op::Delete { token });
            }
        }
        self.record(&tx, subject, ops)?;
        commit(tx, DOING)?;
        Ok(ids)
    }

    fn templates(&self, subject: &str, modality: Option<Modality>) -> Result<Vec<StoredTemplate>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM templates WHERE subject = ?1 AND (?2 IS NULL OR modality = ?2) ORDER BY id"
            ))
            .map_err(|e| db_error("reading templates", e))?;
        let rows = stmt
            .query_map(
                params![subject, modality.map(Modality::as_str)],
                row_to_template,
            )
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| db_error("reading templates", e))?;
        convert(rows)
    }

    fn subjects(&self) -> Result<Vec<SubjectSummary>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT subject, SUM(modality = 'face'), SUM(modality = 'voice'), SUM(modality = 'passphrase') FROM templates GROUP BY subject ORDER BY subject",
            )
            .map_err(|e| db_error("listing subjects", e))?;
        stmt.query_map([], |r| {
            Ok(SubjectSummary {
                subject: r.get(0)?,
                face: r.get::<_, i64>(1)? as usize,
                voice: r.get::<_, i64>(2)? as usize,
                passphrase: r.get::<_, i64>(3)? as usize,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| db_error("listing subjects", e))
    }

    fn delete_subject(&self, subject: &str) -> Result<usize> {
        const DOING: &str = "deleting a subject";
        let mut conn = self.conn();
        let tx = begin(&mut conn, DOING)?;
        let n = tx
            .execute("DELETE FROM templates WHERE subject = ?1", params![subject])
            .map_err(|e| db_error(DOING, e))?;
        // A tombstone travels even when this replica held nothing: other terminals may.
        self.record(&tx, subject, vec![Op::DeleteSubject])?;
        commit(tx, DOING)?;
        Ok(n)
    }

    fn delete_template(&self, id: i64) -> Result<()> {
        const DOING: &str = "deleting a template";
        let mut conn = self.conn();
        let tx = begin(&mut conn, DOING)?;
        let deleted: Option<(String, String)> = tx
            .query_row(
                "DELETE FROM templates WHERE id = ?1 RETURNING subject, token",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| db_error(DOING, e))?;
        let Some((subject, token)) = deleted else {
            return Err(Error::new(ErrorKind::NotFound, format!("no template {id}")));
        };
        self.record(&tx, &subject, vec![Op::Delete { token }])?;
        commit(tx, DOING)
    }

    fn not_under_key(&self, key_id: &str, limit: usize) -> Result<Vec<StoredTemplate>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM templates WHERE key_id <> ?1 ORDER BY id LIMIT ?2"
            ))
            .map_err(|e| db_error("finding templates to re-seal", e))?;
        let rows = stmt
            .query_map(params![key_id, limit as i64], row_to_template)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| db_error("finding templates to re-seal", e))?;
        convert(rows)
    }

    fn reseal(&self, id: i64, old_key_id: &str, new_key_id: &str, blob: &[u8]) -> Result<bool> {
        const DOING: &str = "re-sealing a template";
        let mut conn = self.conn();
        let tx = begin(&mut conn, DOING)?;
        let resealed: Option<(String, String)> = tx
            .query_row(
                "UPDATE templates SET key_id = ?3, blob = ?4 WHERE id = ?1 AND key_id = ?2 RETURNING subject, token",
                params![id, old_key_id, new_key_id, blob],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| db_error(DOING, e))?;
        let Some((subject, token)) = resealed else {
            return Ok(false);
        };
        let op = Op::Reseal {
            token,
            old_key_id: old_key_id.to_string(),
            new_key_id: new_key_id.to_string(),
            blob: blob.to_vec(),
        };
        self.record(&tx, &subject, vec![op])?;
        commit(tx, DOING)?;
        Ok(true)
    }

    /// SQLite's `data_version` (it moves when another connection commits; this store's own
    /// writes are known to whoever made them) plus the pulls from the fleet applied here.
    fn revision(&self) -> Result<Option<u64>> {
        let version = self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
            .map_err(|e| db_error("reading the data version", e))?;
        Ok(Some(
            (version as u64).wrapping_add(self.applied.load(Ordering::Relaxed) << 32),
        ))
    }

    fn scan(
        &self,
        modality: Modality,
        visit: &mut dyn FnMut(&StoredTemplate) -> Result<()>,
    ) -> Result<()> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM templates WHERE modality = ?1 ORDER BY id"
            ))
            .map_err(|e| db_error("scanning templates", e))?;
        let mut rows = stmt
            .query(params![modality.as_str()])
            .map_err(|e| db_error("scanning templates", e))?;
        while let Some(row) = rows.next().map_err(|e| db_error("scanning templates", e))? {
            let raw = row_to_template(row).map_err(|e| db_error("scanning templates", e))?;
            let template = convert(vec![raw])?.remove(0);
            visit(&template)?;
        }
        Ok(())
    }
}

impl SqliteStore {
    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .optional()
            .map_err(|e| db_error("reading the schema version", e))
            .map(|v| v.unwrap_or(0))
    }
}

/// The replica's side of replication (see [`crate::store::replication`]).
impl SqliteStore {
    /// The terminal this store is the replica of, if it is one.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// How many changes this process has recorded in the outbox: a replicator pushes when it
    /// moves.
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// Changes in the outbox, oldest first.
    pub fn pending_count(&self) -> Result<usize> {
        self.conn()
            .query_row("SELECT COUNT(DISTINCT change_id) FROM outbox", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .map_err(|e| db_error("counting the outbox", e))
    }

    /// Up to `limit` changes from the outbox, oldest first, each whole.
    pub fn pending(&self, limit: usize) -> Result<Vec<Change>> {
        const DOING: &str = "reading the outbox";
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT change_id, subject, origin, at_ms, op, token, modality, key_id, old_key_id, blob FROM outbox
                 WHERE change_id IN (SELECT change_id FROM outbox GROUP BY change_id ORDER BY MIN(seq) LIMIT ?1)
                 ORDER BY seq",
            )
            .map_err(|e| db_error(DOING, e))?;
        type Row = (
            String,
            String,
            String,
            i64,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<Vec<u8>>,
        );
        let rows: Vec<Row> = stmt
            .query_map(params![limit as i64], |r| {
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
                    r.get(9)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| db_error(DOING, e))?;
        let broken = || Error::new(ErrorKind::Store, "template database: a broken outbox row");
        let mut changes: Vec<Change> = Vec::new();
        for (change_id, subject, origin, at_ms, op, token, modality, key_id, old_key_id, blob) in
            rows
        {
            let op = match op.as_str() {
                "insert" => Op::Insert {
                    token: token.ok_or_else(broken)?,
                    modality: Modality::parse(&modality.ok_or_else(broken)?)?,
                    key_id: key_id.ok_or_else(broken)?,
                    blob: blob.ok_or_else(broken)?,
                },
                "delete" => Op::Delete {
                    token: token.ok_or_else(broken)?,
                },
                "delete_subject" => Op::DeleteSubject,
                "reseal" => Op::Reseal {
                    token: token.ok_or_else(broken)?,
                    old_key_id: old_key_id.ok_or_else(broken)?,
                    new_key_id: key_id.ok_or_else(broken)?,
                    blob: blob.ok_or_else(broken)?,
                },
                _ => return Err(broken()),
            };
            match changes.last_mut() {
                Some(last) if last.id == change_id => last.ops.push(op),
                _ => changes.push(Change {
                    id: change_id,
                    subject,
                    origin,
                    at_ms,
                    ops: vec![op],
                }),
            }
        }
        Ok(changes)
    }

    /// Removes a change from the outbox once the fleet store has it.
    pub fn acknowledge(&self, change_id: &str) -> Result<()> {
        self.conn()
            .execute(
                "DELETE FROM outbox WHERE change_id = ?1",
                params![change_id],
            )
            .map(|_| ())
            .map_err(|e| db_error("acknowledging a change", e))
    }

    /// The fleet change-log position this replica has applied (0 before the first pull).
    pub fn cursor(&self) -> Result<i64> {
        let value: Option<String> = self
            .conn()
            .query_row("SELECT value FROM replica WHERE key = 'cursor'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| db_error("reading the replica's cursor", e))?;
        value.map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| Error::new(ErrorKind::Store, "template database: a broken cursor"))
        })
    }

    /// Applies what a pull brought, with its cursor, in one transaction: each subject's set
    /// becomes the fleet's (templates it no longer has deleted, new ones stored, re-sealed ones
    /// replaced; local ids of kept templates unchanged). Returns `false`, applying nothing,
    /// when the outbox holds local writes the fleet has not seen yet (push first).
    pub fn apply_pulled(&self, pulled: &Pulled) -> Result<bool> {
        const DOING: &str = "applying the fleet's changes";
        let mut conn = self.conn();
        let tx = begin(&mut conn, DOING)?;
        let waiting: i64 = tx
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
            .map_err(|e| db_error(DOING, e))?;
        if waiting > 0 {
            return Ok(false);
        }
        for state in &pulled.subjects {
            let local = template_rows(&tx, "subject = ?1", params![state.subject])?;
            for (row, token) in &local {
                match state.templates.iter().find(|t| &t.token == token) {
                    None => {
                        tx.execute("DELETE FROM templates WHERE id = ?1", params![row.id])
                            .map_err(|e| db_error(DOING, e))?;
                    }
                    Some(t) if t.key_id != row.key_id || t.blob != row.blob => {
                        tx.execute(
                            "UPDATE templates SET key_id = ?2, blob = ?3 WHERE id = ?1",
                            params![row.id, t.key_id, t.blob],
                        )
                        .map_err(|e| db_error(DOING, e))?;
                    }
                    Some(_) => {}
                }
            }
            for t in &state.templates {
                if !local.iter().any(|(_, token)| token == &t.token) {
                    tx.execute(
                        "INSERT INTO templates (subject, modality, key_id, blob, token, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![state.subject, t.modality.as_str(), t.key_id, t.blob, t.token, t.at_ms],
                    )
                    .map_err(|e| db_error(DOING, e))?;
                }
            }
        }
        tx.execute(
            "INSERT INTO replica (key, value) VALUES ('cursor', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![pulled.cursor.to_string()],
        )
        .map_err(|e| db_error(DOING, e))?;
        commit(tx, DOING)?;
        if !pulled.subjects.is_empty() {
            self.applied.fetch_add(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    /// The fingerprint of every template held (compare with the fleet store's).
    pub fn content_digest(&self) -> Result<ContentDigest> {
        let conn = self.conn();
        let rows = template_rows(&conn, "1 = 1", [])?;
        Ok(content_digest(rows.iter().map(|(t, token)| {
            (
                token.as_str(),
                t.subject.as_str(),
                t.modality,
                t.key_id.as_str(),
                t.blob.as_slice(),
            )
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_store_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        crate::store::suite::run(&store);
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn reopening_keeps_data_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let store = SqliteStore::open(&path).unwrap();
            store.insert("alice", Modality::Face, "k1", b"x").unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.templates("alice", None).unwrap().len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_version_1_database_is_migrated_and_keeps_its_templates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "BEGIN; {}; PRAGMA user_version = 1; COMMIT;",
                MIGRATIONS[0]
            ))
            .unwrap();
            conn.execute(
                "INSERT INTO templates (subject, modality, key_id, blob) VALUES ('alice', 'voice', 'k1', x'0102')",
                [],
            )
            .unwrap();
            // Version 1 knows no passphrase templates.
            assert!(conn
                .execute(
                    "INSERT INTO templates (subject, modality, key_id, blob) VALUES ('alice', 'passphrase', 'k1', x'03')",
                    [],
                )
                .is_err());
        }
        let store = SqliteStore::open(&path).unwrap();
        let kept = store.templates("alice", None).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].blob, vec![1, 2]);
        let id = store
            .insert("alice", Modality::Passphrase, "k1", b"digits")
            .unwrap();
        assert!(
            id > kept[0].id,
            "ids keep increasing after the table rebuild"
        );
        let version: i64 = store
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        let err = SqliteStore::open(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(err.to_string().contains("99"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_store_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        std::fs::write(
            &path,
            b"this is not a database, it is a text file of some length......",
        )
        .unwrap();
        assert_eq!(
            SqliteStore::open(&path).unwrap_err().kind(),
            ErrorKind::Store
        );
    }
}
