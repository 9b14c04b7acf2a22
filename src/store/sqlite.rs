//! The embedded default store: one SQLite file.
//!
//! WAL journal with `synchronous = FULL`, so a write that returned survives a process kill and
//! a power cut; `secure_delete = ON`, so deleted templates are overwritten in the file rather
//! than left in free pages; the database file is created readable by its owner only. The
//! schema version lives in `PRAGMA user_version` and is migrated forward on open; a database
//! from a newer vouch is refused rather than misread.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, ErrorKind, Result};
use crate::store::{StoredTemplate, SubjectSummary, TemplateStore};
use crate::template::Modality;

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = 2;

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
];

/// Templates in a SQLite database file.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db_error(doing: &str, e: rusqlite::Error) -> Error {
    // SQLITE_FULL is ENOSPC. (A file-size limit, EFBIG, is reported by SQLite as a generic
    // I/O error and stays a store error.)
    let kind = if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        ErrorKind::StorageFull
    } else {
        ErrorKind::Store
    };
    Error::new(kind, format!("template database: {doing} failed: {e}"))
}

impl SqliteStore {
    /// Opens (creating if needed, mode 0600) the database at `path` and migrates its schema.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if !path.exists() {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("creating template database", path, e)),
            }
        }
        let conn = Connection::open(path).map_err(|e| db_error("opening", e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| db_error("configuring", e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| db_error("enabling WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::new(
                ErrorKind::Store,
                format!("template database: WAL mode unavailable (got {mode})"),
            ));
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;",
        )
        .map_err(|e| db_error("configuring", e))?;
        migrate(&conn)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
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

impl TemplateStore for SqliteStore {
    fn insert(&self, subject: &str, modality: Modality, key_id: &str, blob: &[u8]) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO templates (subject, modality, key_id, blob) VALUES (?1, ?2, ?3, ?4)",
            params![subject, modality.as_str(), key_id, blob],
        )
        .map_err(|e| db_error("storing a template", e))?;
        Ok(conn.last_insert_rowid())
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
        self.conn()
            .execute("DELETE FROM templates WHERE subject = ?1", params![subject])
            .map_err(|e| db_error("deleting a subject", e))
    }

    fn delete_template(&self, id: i64) -> Result<()> {
        let n = self
            .conn()
            .execute("DELETE FROM templates WHERE id = ?1", params![id])
            .map_err(|e| db_error("deleting a template", e))?;
        if n == 0 {
            return Err(Error::new(ErrorKind::NotFound, format!("no template {id}")));
        }
        Ok(())
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
        let n = self
            .conn()
            .execute(
                "UPDATE templates SET key_id = ?3, blob = ?4 WHERE id = ?1 AND key_id = ?2",
                params![id, old_key_id, new_key_id, blob],
            )
            .map_err(|e| db_error("re-sealing a template", e))?;
        Ok(n == 1)
    }

    /// SQLite's `data_version`: it moves when another connection commits (this store's own
    /// writes are known to whoever made them).
    fn revision(&self) -> Result<Option<u64>> {
        self.conn()
            .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
            .map(|v| Some(v as u64))
            .map_err(|e| db_error("reading the data version", e))
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
