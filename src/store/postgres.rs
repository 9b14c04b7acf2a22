//! PostgreSQL: one template store shared by a fleet of terminals.
//!
//! Connections are pooled; a connection that fails (the server restarted, the network
//! dropped) is discarded and the operation retried on a fresh one for up to
//! `reconnect_for`. Retried writes are idempotent: each insert carries a random token with a
//! unique constraint, so an insert whose acknowledgement was lost is not stored twice; a
//! re-seal only applies while the template is still under the old key. Deletion is a
//! `DELETE` (PostgreSQL reclaims the space at vacuum; it has no `secure_delete`).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use crate::error::{Error, ErrorKind, Result};
use crate::store::replication::now_ms;
use crate::store::{NewTemplate, StoredTemplate, SubjectSummary, TemplateStore};
use crate::template::Modality;

/// The schema version this library writes.
pub const SCHEMA_VERSION: i32 = 4;

const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE vouch_templates (
        id       BIGSERIAL PRIMARY KEY,
        token    TEXT   NOT NULL UNIQUE,
        subject  TEXT   NOT NULL,
        modality TEXT   NOT NULL CHECK (modality IN ('face', 'voice')),
        key_id   TEXT   NOT NULL,
        blob     BYTEA  NOT NULL,
        created  TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX vouch_templates_by_subject ON vouch_templates (subject, modality, id);
    CREATE INDEX vouch_templates_by_key ON vouch_templates (key_id);
",
    "
    ALTER TABLE vouch_templates DROP CONSTRAINT vouch_templates_modality_check;
    ALTER TABLE vouch_templates ADD CONSTRAINT vouch_templates_modality_check
        CHECK (modality IN ('face', 'voice', 'passphrase'));
",
    // Replication (see `store::replication`): enrollment times, the change log replicas pull
    // by cursor, tombstones of deleted subjects, and the changes already applied.
    "
    ALTER TABLE vouch_templates ADD COLUMN at_ms BIGINT;
    UPDATE vouch_templates SET at_ms = (extract(epoch FROM created) * 1000)::BIGINT;
    ALTER TABLE vouch_templates ALTER COLUMN at_ms SET NOT NULL;
    CREATE TABLE vouch_changes (
        seq     BIGSERIAL PRIMARY KEY,
        subject TEXT NOT NULL
    );
    CREATE INDEX vouch_changes_by_subject ON vouch_changes (subject, seq);
    INSERT INTO vouch_changes (subject) SELECT DISTINCT subject FROM vouch_templates ORDER BY 1;
    CREATE TABLE vouch_tombstones (
        subject       TEXT PRIMARY KEY,
        deleted_at_ms BIGINT NOT NULL
    );
    CREATE TABLE vouch_applied_changes (
        change_id TEXT PRIMARY KEY,
        origin    TEXT NOT NULL,
        applied   TIMESTAMPTZ NOT NULL DEFAULT now()
    );
",
    // The terminals' decision events (failures, successes, approvals), so that lockouts and
    // velocity rules count a customer fleet-wide (see `ledger`).
    "
    CREATE TABLE vouch_events (
        seq          BIGSERIAL PRIMARY KEY,
        id           TEXT   NOT NULL UNIQUE,
        origin       TEXT   NOT NULL,
        kind         TEXT   NOT NULL CHECK (kind IN ('failure', 'success', 'approval')),
        subject      TEXT   NOT NULL,
        terminal     TEXT   NOT NULL,
        amount_minor BIGINT NOT NULL,
        currency     TEXT   NOT NULL,
        strong       BOOLEAN NOT NULL,
        at_ms        BIGINT NOT NULL
    );
    CREATE INDEX vouch_events_by_subject ON vouch_events (subject, at_ms);
",
];

/// The advisory lock every write to the fleet's templates takes, so that change-log sequence
/// numbers commit in order (a replica's cursor never skips a change committed late).
const WRITE_LOCK: i64 = 7_230_013;

/// Takes the write lock for this transaction.
pub(super) fn lock_for_writing(
    tx: &mut postgres::Transaction<'_>,
) -> std::result::Result<(), postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .map(|_| ())
}

/// Appends `subject` to the change log (dropping its older entries: a replica pulls a
/// subject's whole current set, so only its newest entry matters) and wakes listening replicas.
pub(super) fn log_change(
    tx: &mut postgres::Transaction<'_>,
    subject: &str,
) -> std::result::Result<(), postgres::Error> {
    let seq: i64 = tx
        .query_one(
            "INSERT INTO vouch_changes (subject) VALUES ($1) RETURNING seq",
            &[&subject],
        )?
        .get(0);
    tx.execute(
        "DELETE FROM vouch_changes WHERE subject = $1 AND seq < $2",
        &[&subject, &seq],
    )?;
    tx.batch_execute(&format!("NOTIFY {CHANGES_CHANNEL}"))
}

/// The channel replicas LISTEN on.
pub(super) const CHANGES_CHANNEL: &str = "vouch_changes";

/// The connection settings of `url` (libpq `key=value` or URL form), with bounded waits: a
/// black-holed network must not hang a connect or a query, so the connection attempt times out
/// (5 s unless the URL says otherwise) and TCP gives up on unacknowledged data (an unplugged
/// cable) within 10 s. Shared by the fleet store and the audit shipper.
pub(crate) fn connection_config(url: &str) -> Result<postgres::Config> {
    let mut config: postgres::Config = url.parse().map_err(|e| {
        // The parser's message quotes no values, but keep the URL (it may hold a password)
        // out of it all the same.
        Error::new(
            ErrorKind::Config,
            format!("the PostgreSQL connection string does not parse: {e}"),
        )
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.tcp_user_timeout(Duration::from_secs(10));
    config.keepalives_idle(Duration::from_secs(10));
    Ok(config)
}

/// Templates in a PostgreSQL database.
pub struct PostgresStore {
    config: postgres::Config,
    idle: Mutex<Vec<Client>>,
    max_idle: usize,
    reconnect_for: Duration,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never shown.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

fn pg_error(doing: &str, e: &postgres::Error) -> Error {
    // The server's message names tables and constraints, never the values bound to the query.
    Error::new(
        ErrorKind::Store,
        format!("template database: {doing} failed: {e}"),
    )
}

/// A failure of the connection rather than of the statement: worth a retry on a new one.
fn is_connection_error(e: &postgres::Error, client: &Client) -> bool {
    client.is_closed()
        || e.is_closed()
        || e.code()
            .is_none_or(|c| c.code().starts_with("08") || c.code().starts_with("57P"))
}

impl PostgresStore {
    /// Connects to `url` (libpq key=value or URL form), creating or migrating the schema.
    /// Operations keep reconnecting for up to 30 seconds (a server restart) before failing.
    pub fn connect(url: &str) -> Result<PostgresStore> {
        PostgresStore::connect_with(url, Duration::from_secs(30))
    }

    /// [`PostgresStore::connect`] with another reconnect window.
    pub fn connect_with(url: &str, reconnect_for: Duration) -> Result<PostgresStore> {
        let config = connection_config(url)?;
        let store = PostgresStore {
            config,
            idle: Mutex::new(Vec::new()),
            max_idle: 8,
            reconnect_for,
        };
        let version = store.with_client("migrating the schema", migrate)?;
        if version > SCHEMA_VERSION {
            return Err(Error::new(
                ErrorKind::Store,
                format!(
                    "the template database has schema version {version}, newer than this vouch ({SCHEMA_VERSION}); upgrade vouch"
                ),
            ));
        }
        Ok(store)
    }

    fn connect_client(&self) -> std::result::Result<Client, postgres::Error> {
        self.config.connect(NoTls)
    }

    /// A new connection of its own (a replica's LISTEN connection).
    pub(super) fn dedicated_client(&self, doing: &str) -> Result<Client> {
        self.connect_client()
            .map_err(|e| pg_error(&format!("connecting ({doing})"), &e))
    }

    pub(super) fn with_client<R>(
        &self,
        doing: &str,
        mut op: impl FnMut(&mut Client) -> std::result::Result<R, postgres::Error>,
    ) -> Result<R> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let pooled = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut client = match pooled {
                Some(c) if !c.is_closed() => c,
                _ => match self.connect_client() {
                    Ok(c) => c,
                    Err(e) if started.elapsed() < self.reconnect_for => {
                        tracing::warn!(error = %e, "template database unreachable; retrying");
                        std::thread::sleep(pause);
                        pause = (pause * 2).min(Duration::from_secs(1));
                        continue;
                    }
                    Err(e) => return Err(pg_error(&format!("connecting ({doing})"), &e)),
                },
            };
            match op(&mut client) {
                Ok(value) => {
                    let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                    if idle.len() < self.max_idle {
                        idle.push(client);
                    }
                    return Ok(value);
                }
                Err(e)
                    if is_connection_error(&e, &client)
                        && started.elapsed() < self.reconnect_for =>
                {
                    tracing::warn!(error = %e, "template database connection lost; reconnecting");
                    drop(client);
                    // A restarted server closes every pooled connection: drop them all.
                    self.idle
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clear();
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(pg_error(doing, &e)),
            }
        }
    }
}

/// Brings the schema up to [`SCHEMA_VERSION`]; returns the version found before (a newer one
/// is left alone for the caller to refuse).
fn migrate(client: &mut Client) -> std::result::Result<i32, postgres::Error> {
    let mut tx = client.transaction()?;
    // One migrator at a time across the fleet.
    tx.execute("SELECT pg_advisory_xact_lock(7230012)", &[])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS vouch_schema (version INTEGER NOT NULL)")?;
    let version: i32 = match tx.query_opt("SELECT version FROM vouch_schema", &[])? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO vouch_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "UPDATE vouch_schema SET version = $1",
            &[&(from as i32 + 1)],
        )?;
    }
    tx.commit()?;
    Ok(version)
}

fn token() -> Result<String> {
    crate::store::replication::random_token()
}

/// Records (or moves later) a subject's tombstone.
pub(super) fn tombstone(
    tx: &mut postgres::Transaction<'_>,
    subject: &str,
    at_ms: i64,
) -> std::result::Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO vouch_tombstones (subject, deleted_at_ms) VALUES ($1, $2)
         ON CONFLICT (subject) DO UPDATE SET deleted_at_ms = GREATEST(vouch_tombstones.deleted_at_ms, excluded.deleted_at_ms)",
        &[&subject, &at_ms],
    )
    .map(|_| ())
}

fn rows_to_templates(rows: Vec<postgres::Row>) -> Result<Vec<StoredTemplate>> {
    rows.into_iter()
        .map(|r| {
            Ok(StoredTemplate {
                id: r.get(0),
                subject: r.get(1),
                modality: Modality::parse(r.get(2))?,
                key_id: r.get(3),
                blob: r.get(4),
            })
        })
        .collect()
}

const COLUMNS: &str = "id, subject, modality, key_id, blob";

impl PostgresStore {
    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i32> {
        self.with_client("reading the schema version", |c| {
            c.query_one("SELECT version FROM vouch_schema", &[])
                .map(|r| r.get(0))
        })
    }
}

impl TemplateStore for PostgresStore {
    fn update(
        &self,
        subject: &str,
        insert: &[NewTemplate<'_>],
        delete: &[i64],
    ) -> Result<Vec<i64>> {
        // Tokens are drawn once: a retry after a lost acknowledgement meets its own rows.
        let tokens = insert.iter().map(|_| token()).collect::<Result<Vec<_>>>()?;
        let at_ms = now_ms();
        self.with_client("storing templates", |c| {
            let mut tx = c.transaction()?;
            lock_for_writing(&mut tx)?;
            let mut ids = Vec::with_capacity(insert.len());
            for (new, token) in insert.iter().zip(&tokens) {
                let row = tx.query_opt(
                    "INSERT INTO vouch_templates (token, subject, modality, key_id, blob, at_ms) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (token) DO NOTHING RETURNING id",
                    &[token, &subject, &new.modality.as_str(), &new.key_id, &new.blob, &at_ms],
                )?;
                ids.push(match row {
                    Some(row) => row.get(0),
                    None => tx
                        .query_one("SELECT id FROM vouch_templates WHERE token = $1", &[token])?
                        .get(0),
                });
            }
            for id in delete {
                tx.execute(
                    "DELETE FROM vouch_templates WHERE id = $1 AND subject = $2",
                    &[id, &subject],
                )?;
            }
            log_change(&mut tx, subject)?;
            tx.commit()?;
            Ok(ids)
        })
    }

    fn templates(&self, subject: &str, modality: Option<Modality>) -> Result<Vec<StoredTemplate>> {
        let modality = modality.map(Modality::as_str);
        let rows = self.with_client("reading templates", |c| {
            c.query(
                &format!("SELECT {COLUMNS} FROM vouch_templates WHERE subject = $1 AND ($2::TEXT IS NULL OR modality = $2) ORDER BY id"),
                &[&subject, &modality],
            )
        })?;
        rows_to_templates(rows)
    }

    fn subjects(&self) -> Result<Vec<SubjectSummary>> {
        let rows = self.with_client("listing subjects", |c| {
            c.query(
                "SELECT subject, COUNT(*) FILTER (WHERE modality = 'face'), COUNT(*) FILTER (WHERE modality = 'voice'), COUNT(*) FILTER (WHERE modality = 'passphrase')
                 FROM vouch_templates GROUP BY subject ORDER BY subject COLLATE \"C\"",
                &[],
            )
        })?;
        Ok(rows
            .into_iter()
            .map(|r| SubjectSummary {
                subject: r.get(0),
                face: r.get::<_, i64>(1) as usize,
                voice: r.get::<_, i64>(2) as usize,
                passphrase: r.get::<_, i64>(3) as usize,
            })
            .collect())
    }

    fn delete_subject(&self, subject: &str) -> Result<usize> {
        let at_ms = now_ms();
        self.with_client("deleting a subject", |c| {
            let mut tx = c.transaction()?;
            lock_for_writing(&mut tx)?;
            let n = tx.execute(
                "DELETE FROM vouch_templates WHERE subject = $1",
                &[&subject],
            )?;
            tombstone(&mut tx, subject, at_ms)?;
            log_change(&mut tx, subject)?;
            tx.commit()?;
            Ok(n as usize)
        })
    }

    fn delete_template(&self, id: i64) -> Result<()> {
        let subject = self.with_client("deleting a template", |c| {
            let mut tx = c.transaction()?;
            lock_for_writing(&mut tx)?;
            let row = tx.query_opt(
                "DELETE FROM vouch_templates WHERE id = $1 RETURNING subject",
                &[&id],
            )?;
            let subject: Option<String> = row.map(|r| r.get(0));
            if let Some(subject) = &subject {
                log_change(&mut tx, subject)?;
            }
            tx.commit()?;
            Ok(subject)
        })?;
        match subject {
            Some(_) => Ok(()),
            None => Err(Error::new(ErrorKind::NotFound, format!("no template {id}"))),
        }
    }

    fn not_under_key(&self, key_id: &str, limit: usize) -> Result<Vec<StoredTemplate>> {
        let limit = limit as i64;
        let rows = self.with_client("finding templates to re-seal", |c| {
            c.query(
                &format!(
                    "SELECT {COLUMNS} FROM vouch_templates WHERE key_id <> $1 ORDER BY id LIMIT $2"
                ),
                &[&key_id, &limit],
            )
        })?;
        rows_to_templates(rows)
    }

    fn reseal(&self, id: i64, old_key_id: &str, new_key_id: &str, blob: &[u8]) -> Result<bool> {
        self.with_client("re-sealing a template", |c| {
            let mut tx = c.transaction()?;
            lock_for_writing(&mut tx)?;
            let row = tx.query_opt(
                "UPDATE vouch_templates SET key_id = $3, blob = $4 WHERE id = $1 AND key_id = $2 RETURNING subject",
                &[&id, &old_key_id, &new_key_id, &blob],
            )?;
            let resealed = match row {
                Some(row) => {
                    log_change(&mut tx, &row.get::<_, String>(0))?;
                    true
                }
                None => false,
            };
            tx.commit()?;
            Ok(resealed)
        })
    }

    fn scan(
        &self,
        modality: Modality,
        visit: &mut dyn FnMut(&StoredTemplate) -> Result<()>,
    ) -> Result<()> {
        // Pages by id so a large gallery never sits in memory at once.
        let mut after = 0i64;
        loop {
            let rows = self.with_client("scanning templates", |c| {
                c.query(
                    &format!("SELECT {COLUMNS} FROM vouch_templates WHERE modality = $1 AND id > $2 ORDER BY id LIMIT 1000"),
                    &[&modality.as_str(), &after],
                )
            })?;
            if rows.is_empty() {
                return Ok(());
            }
            for t in rows_to_templates(rows)? {
                after = t.id;
                visit(&t)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared store suite against a real server, when the test environment provides one
    /// (`scripts/postgres.sh start`; CI does).
    #[test]
    fn passes_the_store_suite() {
        let Ok(url) = std::env::var("VOUCH_TEST_POSTGRES_URL") else {
            return crate::testing::skip(
                "VOUCH_TEST_POSTGRES_URL is not set (scripts/postgres.sh start)",
            );
        };
        let store = PostgresStore::connect(&url).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        // A private schema-free namespace: start from an empty table.
        store
            .with_client("clearing", |c| {
                c.batch_execute("DELETE FROM vouch_templates")
            })
            .unwrap();
        crate::store::suite::run(&store);
        store
            .with_client("clearing", |c| {
                c.batch_execute("DELETE FROM vouch_templates")
            })
            .unwrap();
    }

    #[test]
    fn an_unreachable_server_is_a_store_error() {
        let err = PostgresStore::connect_with(
            "host=127.0.0.1 port=9 user=nobody connect_timeout=1",
            Duration::from_millis(10),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store);
        assert!(!format!("{err}").contains("password"));
    }
}
