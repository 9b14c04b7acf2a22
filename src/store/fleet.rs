//! The fleet store's side of replication: applying a replica's changes, handing out what
//! changed after a cursor, and the content digest (see [`crate::store::replication`]).

use postgres::{Client, IsolationLevel};

use super::postgres::{CHANGES_CHANNEL, lock_for_writing, log_change, tombstone};
use crate::error::Result;
use crate::ledger::{Event, EventKind};
use crate::store::PostgresStore;
use crate::store::replication::{
    Change, ContentDigest, Op, Pulled, ReplicaTemplate, SubjectState, content_digest,
};
use crate::template::Modality;

/// What became of a pushed change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Applied now.
    Applied,
    /// Applied before (its acknowledgement had been lost): nothing done.
    AlreadyApplied,
}

impl PostgresStore {
    /// Applies a replica's change in one transaction, once: a change id already applied is
    /// skipped. Enrollments older than the subject's tombstone are dropped; a subject's deletion
    /// removes the templates enrolled up to its time and moves the tombstone.
    pub fn push(&self, change: &Change) -> Result<Pushed> {
        self.with_client("pushing a change to the fleet store", |c| {
            let mut tx = c.transaction()?;
            lock_for_writing(&mut tx)?;
            let fresh = tx.execute(
                "INSERT INTO vouch_applied_changes (change_id, origin) VALUES ($1, $2) ON CONFLICT (change_id) DO NOTHING",
                &[&change.id, &change.origin],
            )? == 1;
            if !fresh {
                return Ok(Pushed::AlreadyApplied);
            }
            let deleted_at: Option<i64> = tx
                .query_opt(
                    "SELECT deleted_at_ms FROM vouch_tombstones WHERE subject = $1",
                    &[&change.subject],
                )?
                .map(|r| r.get(0));
            for op in &change.ops {
                match op {
                    Op::Insert {
                        token,
                        modality,
                        key_id,
                        blob,
                    } => {
                        if deleted_at.is_some_and(|deleted| change.at_ms <= deleted) {
                            tracing::info!(
                                origin = %change.origin,
                                "an enrollment older than the subject's deletion was dropped"
                            );
                            continue;
                        }
                        tx.execute(
                            "INSERT INTO vouch_templates (token, subject, modality, key_id, blob, at_ms) VALUES ($1, $2, $3, $4, $5, $6)
                             ON CONFLICT (token) DO NOTHING",
                            &[token, &change.subject, &modality.as_str(), key_id, blob, &change.at_ms],
                        )?;
                    }
                    Op::Delete { token } => {
                        tx.execute(
                            "DELETE FROM vouch_templates WHERE token = $1 AND subject = $2",
                            &[token, &change.subject],
                        )?;
                    }
                    Op::DeleteSubject => {
                        tx.execute(
                            "DELETE FROM vouch_templates WHERE subject = $1 AND at_ms <= $2",
                            &[&change.subject, &change.at_ms],
                        )?;
                        tombstone(&mut tx, &change.subject, change.at_ms)?;
                    }
                    Op::Reseal {
                        token,
                        old_key_id,
                        new_key_id,
                        blob,
                    } => {
                        tx.execute(
                            "UPDATE vouch_templates SET key_id = $3, blob = $4 WHERE token = $1 AND key_id = $2",
                            &[token, old_key_id, new_key_id, blob],
                        )?;
                    }
                }
            }
            log_change(&mut tx, &change.subject)?;
            tx.commit()?;
            Ok(Pushed::Applied)
        })
    }

    /// The subjects changed after `cursor` (up to `limit` change-log entries), each with its
    /// whole current template set, read in one snapshot.
    pub fn pull(&self, cursor: i64, limit: usize) -> Result<Pulled> {
        let limit = limit.max(1) as i64;
        self.with_client("pulling from the fleet store", |c| {
            let mut tx = c
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let head: i64 = tx
                .query_one("SELECT COALESCE(MAX(seq), 0) FROM vouch_changes", &[])?
                .get(0);
            let changes = tx.query(
                "SELECT seq, subject FROM vouch_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&cursor, &limit],
            )?;
            let mut next = cursor;
            let mut subjects: Vec<String> = Vec::with_capacity(changes.len());
            for row in &changes {
                next = row.get(0);
                let subject: String = row.get(1);
                if !subjects.contains(&subject) {
                    subjects.push(subject);
                }
            }
            let rows = tx.query(
                "SELECT subject, token, modality, key_id, blob, at_ms FROM vouch_templates WHERE subject = ANY($1) ORDER BY id",
                &[&subjects],
            )?;
            tx.commit()?;
            let mut states: Vec<SubjectState> = subjects
                .into_iter()
                .map(|subject| SubjectState {
                    subject,
                    templates: Vec::new(),
                })
                .collect();
            for row in rows {
                let subject: String = row.get(0);
                let modality: String = row.get(2);
                let Ok(modality) = Modality::parse(&modality) else {
                    continue;
                };
                if let Some(state) = states.iter_mut().find(|s| s.subject == subject) {
                    state.templates.push(ReplicaTemplate {
                        token: row.get(1),
                        modality,
                        key_id: row.get(3),
                        blob: row.get(4),
                        at_ms: row.get(5),
                    });
                }
            }
            Ok(Pulled {
                cursor: next,
                head,
                subjects: states,
            })
        })
    }

    /// Stores a terminal's decision events (each id once: a repeated push is harmless).
    pub fn push_events(&self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.with_client("pushing events to the fleet store", |c| {
            let mut tx = c.transaction()?;
            // Sequence numbers commit in order, as for templates: a cursor never skips one.
            lock_for_writing(&mut tx)?;
            for e in events {
                tx.execute(
                    "INSERT INTO vouch_events (id, origin, kind, subject, terminal, amount_minor, currency, strong, at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                    &[&e.id, &e.origin, &e.kind.as_str(), &e.subject, &e.terminal, &(e.amount_minor as i64), &e.currency, &e.strong, &e.at_ms],
                )?;
            }
            tx.batch_execute(&format!("NOTIFY {CHANGES_CHANNEL}"))?;
            tx.commit()
        })
    }

    /// Other terminals' events after `cursor` (up to `limit`), and the cursor they bring.
    pub fn pull_events(
        &self,
        origin: &str,
        cursor: i64,
        limit: usize,
    ) -> Result<(Vec<Event>, i64)> {
        let limit = limit.max(1) as i64;
        let rows = self.with_client("pulling events from the fleet store", |c| {
            c.query(
                "SELECT seq, id, origin, kind, subject, terminal, amount_minor, currency, strong, at_ms FROM vouch_events
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&cursor, &limit],
            )
        })?;
        let mut next = cursor;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            next = row.get(0);
            let from: String = row.get(2);
            if from == origin {
                continue;
            }
            let kind: String = row.get(3);
            events.push(Event {
                id: row.get(1),
                origin: from,
                kind: EventKind::parse(&kind)?,
                subject: row.get(4),
                terminal: row.get(5),
                amount_minor: row.get::<_, i64>(6).max(0) as u64,
                currency: row.get(7),
                strong: row.get(8),
                at_ms: row.get(9),
            });
        }
        Ok((events, next))
    }

    /// The fingerprint of every template in the fleet store.
    pub fn content_digest(&self) -> Result<ContentDigest> {
        let rows = self.with_client("reading the fleet store", |c| {
            c.query(
                "SELECT token, subject, modality, key_id, blob FROM vouch_templates",
                &[],
            )
        })?;
        let rows: Vec<(String, String, Modality, String, Vec<u8>)> = rows
            .into_iter()
            .map(|r| {
                Ok((
                    r.get(0),
                    r.get(1),
                    Modality::parse(r.get(2))?,
                    r.get(3),
                    r.get(4),
                ))
            })
            .collect::<Result<_>>()?;
        Ok(content_digest(rows.iter().map(|(t, s, m, k, b)| {
            (t.as_str(), s.as_str(), *m, k.as_str(), b.as_slice())
        })))
    }

    /// A connection listening for the fleet's change notifications: a replica waits on it to
    /// pull as soon as another terminal writes (it polls as well, should a notification be
    /// lost with its connection).
    pub fn listen(&self) -> Result<Client> {
        let mut client = self.dedicated_client("listening for changes")?;
        client
            .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
            .map_err(|e| {
                crate::error::Error::new(
                    crate::error::ErrorKind::Store,
                    format!("template database: listening for changes failed: {e}"),
                )
            })?;
        Ok(client)
    }
}
