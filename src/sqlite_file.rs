//! The one way vouch opens a SQLite database of its own (the template store, the decision
//! state): created readable by its owner only, WAL journal with `synchronous = FULL` (a write
//! that returned survives a process kill and a power cut), `secure_delete` (deleted rows are
//! overwritten, not left in free pages), a busy timeout for the other processes that open it;
//! and how its errors read.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, ErrorKind, Result};

/// An error of the database `what` ("template database", "state database") while `doing`.
/// SQLITE_FULL is ENOSPC, [`ErrorKind::StorageFull`]. (A file-size limit, EFBIG, is reported by
/// SQLite as a generic I/O error and stays a store error.)
pub(crate) fn error(what: &str, doing: &str, e: rusqlite::Error) -> Error {
    let kind = if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        ErrorKind::StorageFull
    } else {
        ErrorKind::Store
    };
    Error::new(kind, format!("{what}: {doing} failed: {e}"))
}

/// Opens (creating it, mode 0600, if needed) the database `what` at `path`, configured as the
/// module says; the schema is the caller's.
pub(crate) fn open(path: &Path, what: &str) -> Result<Connection> {
    crate::secure::create_private(path)
        .map_err(|e| Error::io(&format!("creating the {what}"), path, e))?;
    let conn = Connection::open(path).map_err(|e| error(what, "opening", e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| error(what, "configuring", e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| error(what, "enabling WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::new(
            ErrorKind::Store,
            format!("{what}: WAL mode unavailable (got {mode})"),
        ));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;",
    )
    .map_err(|e| error(what, "configuring", e))?;
    Ok(conn)
}
