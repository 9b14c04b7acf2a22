//! The audit log: an append-only, hash-chained record of what vouch did, one JSON line each.
//!
//! Every enrollment, decision, challenge, deletion and key operation can be appended as an
//! [`AuditEvent`]. The log holds small facts only (subject and terminal ids, outcomes,
//! reasons, receipt texts, template ids, counts) and must never hold biometric data: no image,
//! audio, embedding, score vector or template byte, and no key. [`AuditLog::append`] refuses
//! an oversized record or a long array of numbers, which is what leaked biometric data would
//! look like.
//!
//! # Format, version 1
//!
//! A UTF-8 file of [`AuditRecord`]s, one JSON object per line, each line ending in `\n`, with
//! the fields in this fixed order: `seq` (1, 2, 3…), `time_unix_ms`, `kind`, `subject`,
//! `terminal`, `outcome`, `details`, `prev`, `hash`. `prev` is the previous record's `hash`
//! (64 zeros for the first record, [`GENESIS`]) and
//!
//! ```text
//! hash = hex(SHA-256("vouch-audit.v1\n" || prev || "\n" || body))
//! ```
//!
//! where `body` is the record's JSON without its `hash`: exactly the line's bytes with
//! `,"hash":"<hash>"` removed. Hashing the bytes as written (rather than a re-serialisation)
//! keeps verification independent of how a JSON library formats numbers or orders keys.
//!
//! # What the chain detects, and what it cannot
//!
//! [`verify_file`] and [`verify_lines`] report precisely which line breaks the chain
//! ([`ChainBreak`]): an edited record (its hash no longer matches), a removed record (a gap in
//! `seq`), reordered or repeated records, a record replaced by another (its `prev` does not
//! link), or a malformed line.
//!
//! A hash chain carries no secret, so by itself it cannot detect the **tail cut off** (the
//! last records deleted, leaving a shorter but valid chain), nor a whole chain rewritten from
//! some point on by someone who recomputes every hash. Two anchors outside the file catch
//! those: every receipt carries the log's head when it was issued
//! ([`crate::receipt::Receipt::audit_head`]), and [`ship`] copies the records to PostgreSQL,
//! out of the terminal's reach, where a rewritten record shows as a fork.
//!
//! # Durability
//!
//! [`AuditLog::append`] returns only once the line is written and `fsync`ed. A crash in the
//! middle of a write leaves a final line without its `\n`; that record was never
//! acknowledged, and [`AuditLog::open`] cuts it away (with a warning). One process appends to
//! a log at a time: the file is locked while an [`AuditLog`] holds it.
//!
//! # Layout
//!
//! `record.rs` owns the record and its line (encoding, hash, size and shape limits),
//! `chain.rs` the verification of a chain (walking a log, naming the broken record) and
//! `writer.rs` the [`AuditLog`] that appends; each uses only the ones before it. [`ship`] reads
//! the log with the same walk as the verifier. This file only declares and re-exports, and
//! holds the helpers the tests share.

mod chain;
mod record;
#[cfg(feature = "postgres")]
pub mod ship;
mod writer;

pub use chain::{AuditSummary, ChainBreak, verify_file, verify_lines};
pub use record::{AuditEvent, AuditKind, AuditRecord, GENESIS};
pub use writer::AuditLog;

#[cfg(test)]
pub(crate) mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    pub(crate) fn event(i: u64) -> AuditEvent {
        AuditEvent::new(
            AuditKind::Verify,
            if i.is_multiple_of(3) {
                "reject"
            } else {
                "accept"
            },
        )
        .subject(format!("subject-{}", i % 7))
        .terminal("pos-0042")
        .detail("reasons", serde_json::json!(["face_match", "live"]))
        .detail("template_ids", serde_json::json!([i, i + 1]))
        .detail("note", "quotes \" and \\ and é survive")
    }

    pub(crate) fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// A log of `n` records in a fresh folder.
    pub(crate) fn log_of(n: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 1..=n {
            log.append(event(i)).unwrap();
        }
        (dir, path)
    }
}
