//! An audit record and its line: what a caller records ([`AuditEvent`], [`AuditKind`]), the
//! record the log makes of it ([`AuditRecord`]), the JSON line it is written as and read back
//! from, the hash that line carries, and the size and shape limits that keep biometric data out
//! of the log.
//!
//! The format is described in the [`audit`](super) module docs. This is the only place that
//! turns a record into a line or a line into a record, so the writer and the verifier cannot
//! disagree about what is hashed. It does no I/O.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// The `prev` of the first record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hashed before every record, so a version-1 chain cannot be mistaken for anything else.
const DOMAIN: &[u8] = b"vouch-audit.v1\n";

/// Longest line [`AuditLog::append`](super::AuditLog::append) writes. Details are small facts; a
/// line this long is a caller putting something in the log that does not belong there.
pub(super) const MAX_WRITE_LINE: usize = 64 * 1024;

/// More numbers than this in one array of the details is refused: it looks like a vector or
/// samples, which the log must never hold.
const MAX_NUMBERS_IN_ARRAY: usize = 64;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditKind {
    /// A subject was enrolled (or their templates updated).
    Enroll,
    /// A 1:1 verification decision.
    Verify,
    /// A 1:N identification.
    Identify,
    /// A passphrase challenge was issued or redeemed.
    Challenge,
    /// Every template of a subject was deleted.
    DeleteSubject,
    /// One template was deleted.
    DeleteTemplate,
    /// A key (template key, receipt signing key) was created.
    KeyGenerate,
    /// A new template key was made current.
    KeyRotate,
    /// Templates were re-sealed under the current key.
    Reseal,
    /// The service started.
    ServiceStart,
    /// The service stopped.
    ServiceStop,
}

impl AuditKind {
    /// The kind's name as written in the log (`enroll`, `delete_subject`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Enroll => "enroll",
            AuditKind::Verify => "verify",
            AuditKind::Identify => "identify",
            AuditKind::Challenge => "challenge",
            AuditKind::DeleteSubject => "delete_subject",
            AuditKind::DeleteTemplate => "delete_template",
            AuditKind::KeyGenerate => "key_generate",
            AuditKind::KeyRotate => "key_rotate",
            AuditKind::Reseal => "reseal",
            AuditKind::ServiceStart => "service_start",
            AuditKind::ServiceStop => "service_stop",
        }
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing to record, before the log gives it a place in the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// The subject it concerns, if any.
    pub subject: Option<String>,
    /// The terminal (or operator tool) that asked for it, if any.
    pub terminal: Option<String>,
    /// How it ended: a decision (`accept`, `reject`…), `ok`, or an error kind.
    pub outcome: String,
    /// Small facts chosen by the caller: decision, reasons, receipt text, template ids,
    /// counts, key ids. Never vectors, images, audio, scores arrays, template bytes or keys.
    pub details: Map<String, Value>,
}

impl AuditEvent {
    /// An event of `kind` that ended with `outcome`, with no subject, terminal or details.
    pub fn new(kind: AuditKind, outcome: impl Into<String>) -> AuditEvent {
        AuditEvent {
            kind,
            subject: None,
            terminal: None,
            outcome: outcome.into(),
            details: Map::new(),
        }
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: impl Into<String>) -> AuditEvent {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the terminal.
    pub fn terminal(mut self, terminal: impl Into<String>) -> AuditEvent {
        self.terminal = Some(terminal.into());
        self
    }

    /// Adds one detail (a small fact; see [`AuditEvent::details`]).
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> AuditEvent {
        self.details.insert(key.into(), value.into());
        self
    }
}

/// One line of the log: an event with its place in the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When it was appended, in milliseconds since the Unix epoch (the wall clock: it can step
    /// back if the clock is set back; `seq` gives the order).
    pub time_unix_ms: i64,
    /// What happened.
    pub kind: AuditKind,
    /// The subject it concerns, if any.
    pub subject: Option<String>,
    /// The terminal that asked for it, if any.
    pub terminal: Option<String>,
    /// How it ended.
    pub outcome: String,
    /// The caller's small facts (see [`AuditEvent::details`]).
    pub details: Map<String, Value>,
    /// The previous record's hash ([`GENESIS`] for the first record).
    pub prev: String,
    /// This record's hash (see the [`audit`](super) module docs), 64 lowercase hex digits.
    pub hash: String,
}

/// The record without its hash, in the line's field order: what the hash covers.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    time_unix_ms: i64,
    kind: AuditKind,
    subject: Option<&'a str>,
    terminal: Option<&'a str>,
    outcome: &'a str,
    details: &'a Map<String, Value>,
    prev: &'a str,
}

fn chain_hash(prev: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A line's record and the hash its bytes actually have.
pub(super) fn parse_line(line: &[u8]) -> std::result::Result<(AuditRecord, String), String> {
    let record: AuditRecord =
        serde_json::from_slice(line).map_err(|e| format!("not a version-1 audit record: {e}"))?;
    if !is_hash(&record.hash) || !is_hash(&record.prev) {
        return Err("hash and prev must be 64 lowercase hex digits".into());
    }
    let suffix = format!(",\"hash\":\"{}\"}}", record.hash);
    let Some(head) = line.strip_suffix(suffix.as_bytes()) else {
        return Err("the line does not end with its hash field as vouch writes it".into());
    };
    let mut body = Vec::with_capacity(head.len() + 1);
    body.extend_from_slice(head);
    body.push(b'}');
    let actual = chain_hash(&record.prev, &body);
    Ok((record, actual))
}

/// Fills in `record.hash` and returns its line, `\n` included.
pub(super) fn encode(record: &mut AuditRecord) -> Result<Vec<u8>> {
    let body = serde_json::to_vec(&Body {
        seq: record.seq,
        time_unix_ms: record.time_unix_ms,
        kind: record.kind,
        subject: record.subject.as_deref(),
        terminal: record.terminal.as_deref(),
        outcome: &record.outcome,
        details: &record.details,
        prev: &record.prev,
    })
    .map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("cannot encode an audit record: {e}"),
        )
    })?;
    record.hash = chain_hash(&record.prev, &body);
    // The body ends in `}`: the hash goes in as the last field.
    let mut line = body;
    line.pop();
    line.extend_from_slice(b",\"hash\":\"");
    line.extend_from_slice(record.hash.as_bytes());
    line.extend_from_slice(b"\"}\n");
    Ok(line)
}

pub(super) fn check_details(details: &Map<String, Value>) -> Result<()> {
    fn numbers_in_arrays(value: &Value) -> usize {
        match value {
            Value::Array(items) => {
                let here = items.iter().filter(|v| v.is_number()).count();
                items.iter().map(numbers_in_arrays).fold(here, usize::max)
            }
            Value::Object(map) => map.values().map(numbers_in_arrays).max().unwrap_or(0),
            _ => 0,
        }
    }
    for (key, value) in details {
        let n = numbers_in_arrays(value);
        if n > MAX_NUMBERS_IN_ARRAY {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "audit detail {key:?} holds an array of {n} numbers (at most {MAX_NUMBERS_IN_ARRAY}): it looks like a vector or samples, and the audit log never holds biometric data"
                ),
            ));
        }
    }
    Ok(())
}
