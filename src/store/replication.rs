//! What travels between a terminal's replica and the fleet store, and the rules that settle it.
//!
//! The fleet's PostgreSQL database is the system of record; each terminal keeps a SQLite
//! replica ([`crate::store::SqliteStore::open_replica`]) that it verifies from, online or not.
//!
//! **Down (pull).** Every write to the fleet store appends the subject to a change log whose
//! sequence numbers are handed out under one lock, so they commit in order. A replica pulls the
//! changes after its cursor and, for each subject named, the subject's whole current template
//! set ([`SubjectState`]), read in one snapshot; it applies them in one transaction with the new
//! cursor. A subject's set is replaced as a whole, never merged half-way; a deleted subject
//! arrives as an empty set (its tombstone stays in the fleet store).
//!
//! **Up (push).** Each local write records a [`Change`] in the replica's outbox in the same
//! transaction (durable before the write is acknowledged). Changes are pushed in order, each in
//! one fleet transaction, and are idempotent: a change id already applied is skipped, so a push
//! whose acknowledgement was lost (a partition, a kill) is never applied twice. A pull is only
//! applied when the outbox is empty, so the fleet's copy of a subject never hides a local write
//! that has not reached it yet.
//!
//! **Conflicts** (templates are identified fleet-wide by a random token, never by a local id):
//! - a deletion of a subject removes every template enrolled at or before its time and leaves a
//!   tombstone; an enrollment older than (or as old as) the subject's tombstone is dropped when
//!   it arrives — *a deletion wins over an older enrollment*, whichever reaches the fleet first;
//!   an enrollment made after the deletion is a new enrollment and is kept;
//! - two enrollments of one subject on two terminals both land (each adds its template; each
//!   drops the templates its terminal had dropped); the bounded set is restored by the next
//!   enrollment;
//! - a re-seal under a new key applies only while the template is still under the old one.
//!
//! Times are the terminals' wall clocks in milliseconds: deletion against enrollment is decided
//! by them, so terminals keep their clocks synchronised (NTP), as payment terminals do.

use sha2::{Digest as _, Sha256};

use crate::template::Modality;

/// One local write, as it is pushed to the fleet store: applied there whole or not at all.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// A random 128-bit id (32 hex digits): the fleet applies each id once.
    pub id: String,
    /// The subject written.
    pub subject: String,
    /// The terminal that wrote it (`[daemon] origin`).
    pub origin: String,
    /// When, in milliseconds since the Unix epoch (the terminal's clock).
    pub at_ms: i64,
    /// What was written.
    pub ops: Vec<Op>,
}

/// One operation of a [`Change`].
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A template stored.
    Insert {
        /// The template's fleet-wide token.
        token: String,
        /// Its modality.
        modality: Modality,
        /// The key it is sealed under.
        key_id: String,
        /// The sealed envelope.
        blob: Vec<u8>,
    },
    /// A template deleted.
    Delete {
        /// The template's token.
        token: String,
    },
    /// Every template of the subject deleted (a tombstone at the change's time).
    DeleteSubject,
    /// A template re-sealed under a new key.
    Reseal {
        /// The template's token.
        token: String,
        /// The key it was under.
        old_key_id: String,
        /// The key it is now under.
        new_key_id: String,
        /// The re-sealed envelope.
        blob: Vec<u8>,
    },
}

impl Op {
    /// The name the outbox stores the operation under.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Op::Insert { .. } => "insert",
            Op::Delete { .. } => "delete",
            Op::DeleteSubject => "delete_subject",
            Op::Reseal { .. } => "reseal",
        }
    }
}

/// A template as it is replicated.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaTemplate {
    /// Fleet-wide token.
    pub token: String,
    /// Face, voice or passphrase.
    pub modality: Modality,
    /// Key it is sealed under.
    pub key_id: String,
    /// The sealed envelope.
    pub blob: Vec<u8>,
    /// When it was enrolled (milliseconds since the epoch, the enrolling terminal's clock).
    pub at_ms: i64,
}

/// A subject's whole template set in the fleet store (empty: deleted or never enrolled).
#[derive(Clone, Debug, PartialEq)]
pub struct SubjectState {
    /// The subject.
    pub subject: String,
    /// Its templates.
    pub templates: Vec<ReplicaTemplate>,
}

/// What one pull brought: the subjects changed after the replica's cursor.
#[derive(Clone, Debug, PartialEq)]
pub struct Pulled {
    /// The change-log position these states bring the replica to.
    pub cursor: i64,
    /// The fleet's newest change-log position when pulled (`cursor < head`: more to pull).
    pub head: i64,
    /// The subjects named by the changes, each with its current set.
    pub subjects: Vec<SubjectState>,
}

/// A fingerprint of a store's contents, to check that a replica equals the fleet store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ContentDigest {
    /// Templates.
    pub templates: usize,
    /// Subjects with at least one template.
    pub subjects: usize,
    /// SHA-256 over every template's token, subject, modality, key id and envelope hash,
    /// in token order (64 hex digits).
    pub sha256: String,
}

/// The digest of `(token, subject, modality, key_id, blob)` rows; sorted here.
pub fn content_digest<'a>(
    rows: impl IntoIterator<Item = (&'a str, &'a str, Modality, &'a str, &'a [u8])>,
) -> ContentDigest {
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let mut subjects: Vec<&str> = rows.iter().map(|r| r.1).collect();
    subjects.sort_unstable();
    subjects.dedup();
    let mut hash = Sha256::new();
    for (token, subject, modality, key_id, blob) in &rows {
        for field in [*token, *subject, modality.as_str(), *key_id] {
            hash.update((field.len() as u64).to_le_bytes());
            hash.update(field.as_bytes());
        }
        hash.update(Sha256::digest(blob));
    }
    ContentDigest {
        templates: rows.len(),
        subjects: subjects.len(),
        sha256: hex::encode(hash.finalize()),
    }
}

/// Checks a terminal's name in the fleet (`[daemon] origin`: its replica, its decision events,
/// its shipped audit log): 1 to 128 of `A-Z a-z 0-9 - _ . :`.
pub fn check_origin(origin: &str) -> crate::error::Result<()> {
    let ok = !origin.is_empty()
        && origin.len() <= 128
        && origin
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(crate::error::Error::new(
            crate::error::ErrorKind::InvalidInput,
            format!(
                "the terminal name (origin) {origin:?} must be 1 to 128 of A-Z a-z 0-9 - _ . :"
            ),
        ))
    }
}

/// A fresh random 128-bit token or change id, 32 lowercase hex digits.
pub(crate) fn random_token() -> crate::error::Result<String> {
    let mut bytes = [0u8; 16];
    crate::secure::random(&mut bytes)?;
    Ok(hex::encode(bytes))
}

pub(crate) use crate::ledger::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_order_and_sees_every_field() {
        let a = ("t1", "alice", Modality::Face, "k1", b"x".as_slice());
        let b = ("t2", "bob", Modality::Voice, "k1", b"y".as_slice());
        let d = content_digest([a, b]);
        assert_eq!(d, content_digest([b, a]));
        assert_eq!((d.templates, d.subjects), (2, 2));
        for changed in [
            ("t3", "alice", Modality::Face, "k1", b"x".as_slice()),
            ("t1", "alicf", Modality::Face, "k1", b"x".as_slice()),
            ("t1", "alice", Modality::Voice, "k1", b"x".as_slice()),
            ("t1", "alice", Modality::Face, "k2", b"x".as_slice()),
            ("t1", "alice", Modality::Face, "k1", b"z".as_slice()),
        ] {
            assert_ne!(content_digest([changed, b]).sha256, d.sha256);
        }
    }
}
