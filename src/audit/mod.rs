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

#[cfg(feature = "postgres")]
pub mod ship;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// The `prev` of the first record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hashed before every record, so a version-1 chain cannot be mistaken for anything else.
const DOMAIN: &[u8] = b"vouch-audit.v1\n";

/// Longest line [`AuditLog::append`] writes. Details are small facts; a line this long is a
/// caller putting something in the log that does not belong there.
const MAX_WRITE_LINE: usize = 64 * 1024;

/// Longest line a reader accepts before calling it malformed (bounds memory on a bad file).
const MAX_READ_LINE: usize = 1024 * 1024;

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
    /// This record's hash (see the module docs), 64 lowercase hex digits.
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
fn parse_line(line: &[u8]) -> std::result::Result<(AuditRecord, String), String> {
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

/// How the hash chain is broken, with the 1-based line where it was found.
///
/// An [`ErrorKind::AuditChain`] error carries one as its source; [`ChainBreak::of`] gets it
/// back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainBreak {
    /// The line is not a well-formed version-1 record.
    BadLine {
        /// Line number.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The record's contents do not match its hash: it was edited.
    Edited {
        /// Line number.
        line: u64,
        /// The record's `seq`.
        seq: u64,
    },
    /// `seq` jumps forward and the skipped records appear nowhere later: they were removed.
    Missing {
        /// Line number.
        line: u64,
        /// The `seq` that should be on this line.
        expected: u64,
        /// The `seq` found there.
        found: u64,
    },
    /// `seq` is out of order: records were moved, or one was repeated.
    OutOfOrder {
        /// Line number.
        line: u64,
        /// The `seq` that should be on this line.
        expected: u64,
        /// The `seq` found there.
        found: u64,
    },
    /// The record is well formed and in place, but its `prev` is not the previous record's
    /// hash: a record was replaced (with its hash recomputed) or two logs were spliced.
    Unlinked {
        /// Line number.
        line: u64,
        /// The record's `seq`.
        seq: u64,
    },
}

impl ChainBreak {
    /// The break behind an [`ErrorKind::AuditChain`] error, if it is one.
    pub fn of(err: &Error) -> Option<&ChainBreak> {
        std::error::Error::source(err)?.downcast_ref::<ChainBreak>()
    }

    /// The 1-based line where the chain breaks.
    pub fn line(&self) -> u64 {
        match self {
            ChainBreak::BadLine { line, .. }
            | ChainBreak::Edited { line, .. }
            | ChainBreak::Missing { line, .. }
            | ChainBreak::OutOfOrder { line, .. }
            | ChainBreak::Unlinked { line, .. } => *line,
        }
    }

    fn into_error(self) -> Error {
        Error::new(ErrorKind::AuditChain, self.to_string()).with_source(self)
    }
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::BadLine { line, reason } => {
                write!(f, "audit log line {line} is malformed: {reason}")
            }
            ChainBreak::Edited { line, seq } => write!(
                f,
                "audit log line {line}: record {seq} does not match its hash: it was edited"
            ),
            ChainBreak::Missing {
                line,
                expected,
                found,
            } => write!(
                f,
                "audit log line {line}: expected record {expected}, found {found}: {} record(s) were removed",
                found - expected
            ),
            ChainBreak::OutOfOrder {
                line,
                expected,
                found,
            } => write!(
                f,
                "audit log line {line}: expected record {expected}, found {found}: records were reordered or repeated"
            ),
            ChainBreak::Unlinked { line, seq } => write!(
                f,
                "audit log line {line}: record {seq} does not link to the record before it (its prev is not that record's hash): a record was replaced or logs were spliced"
            ),
        }
    }
}

impl std::error::Error for ChainBreak {}

/// One read of a line, bounded in length.
enum Line {
    /// A whole line (the `\n` removed).
    Complete,
    /// Bytes at the end of the file without a `\n`.
    Torn,
    /// Nothing left.
    End,
    /// Longer than any record.
    TooLong,
}

fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(MAX_READ_LINE as u64 + 1)
        .read_until(b'\n', buf)?;
    Ok(if n == 0 {
        Line::End
    } else if buf.last() == Some(&b'\n') {
        buf.pop();
        Line::Complete
    } else if buf.len() > MAX_READ_LINE {
        Line::TooLong
    } else {
        Line::Torn
    })
}

/// What a walk over the log yields.
enum Step {
    /// A verified record; `end` is the byte offset just after its line (where shipping
    /// resumes).
    Record(
        AuditRecord,
        #[cfg_attr(not(feature = "postgres"), allow(dead_code))] u64,
    ),
    /// An unterminated last line starting at byte `start`.
    Torn(u64),
    /// The end of the file.
    End,
}

/// Verifies records one line at a time, continuing a chain from a known point.
struct Walk<R> {
    reader: R,
    /// Last accepted seq and hash.
    seq: u64,
    head: String,
    /// Byte offset of the next line.
    offset: u64,
    buf: Vec<u8>,
    path: PathBuf,
}

impl<R: BufRead> Walk<R> {
    /// A walk whose next line should be record `seq + 1`, linking to `head`, at byte `offset`
    /// of the file (for messages and cut points); `path` names the file in I/O errors.
    fn new(reader: R, seq: u64, head: String, offset: u64, path: &Path) -> Walk<R> {
        Walk {
            reader,
            seq,
            head,
            offset,
            buf: Vec::new(),
            path: path.to_path_buf(),
        }
    }

    fn next(&mut self) -> Result<Step> {
        let read = read_line(&mut self.reader, &mut self.buf)
            .map_err(|e| Error::io("reading", &self.path, e))?;
        let line = self.seq + 1;
        match read {
            Line::End => return Ok(Step::End),
            Line::Torn => return Ok(Step::Torn(self.offset)),
            Line::TooLong => {
                return Err(ChainBreak::BadLine {
                    line,
                    reason: format!("longer than {MAX_READ_LINE} bytes"),
                }
                .into_error());
            }
            Line::Complete => {}
        }
        let (record, actual) = parse_line(&self.buf)
            .map_err(|reason| ChainBreak::BadLine { line, reason }.into_error())?;
        if actual != record.hash {
            return Err(ChainBreak::Edited {
                line,
                seq: record.seq,
            }
            .into_error());
        }
        let expected = self.seq + 1;
        if record.seq != expected {
            return Err(self.misplaced(line, expected, record.seq).into_error());
        }
        if record.prev != self.head {
            return Err(ChainBreak::Unlinked {
                line,
                seq: record.seq,
            }
            .into_error());
        }
        self.seq = record.seq;
        self.head.clone_from(&record.hash);
        self.offset += self.buf.len() as u64 + 1;
        Ok(Step::Record(record, self.offset))
    }

    /// Tells a removal from a reordering: a record that turns up later was moved, not removed.
    fn misplaced(&mut self, line: u64, expected: u64, found: u64) -> ChainBreak {
        #[derive(Deserialize)]
        struct SeqOnly {
            seq: u64,
        }
        if found > expected {
            while let Ok(Line::Complete) = read_line(&mut self.reader, &mut self.buf) {
                if serde_json::from_slice::<SeqOnly>(&self.buf).is_ok_and(|r| r.seq == expected) {
                    return ChainBreak::OutOfOrder {
                        line,
                        expected,
                        found,
                    };
                }
            }
            return ChainBreak::Missing {
                line,
                expected,
                found,
            };
        }
        ChainBreak::OutOfOrder {
            line,
            expected,
            found,
        }
    }
}

/// What a verified log holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditSummary {
    /// How many records (the last `seq`).
    pub records: u64,
    /// The last record's hash ([`GENESIS`] for an empty log): compare it with an anchor.
    pub head: String,
    /// The first record's time, in milliseconds since the Unix epoch.
    pub first_time: Option<i64>,
    /// The last record's time, in milliseconds since the Unix epoch.
    pub last_time: Option<i64>,
    /// The file ended in a line without its `\n`: a write in progress, or a crash in the
    /// middle of one. That record was never acknowledged and was not counted.
    pub torn_tail: bool,
}

/// Verifies the chain of a log read from `reader`, from its first record.
///
/// A broken chain is an [`ErrorKind::AuditChain`] error whose [`ChainBreak`] (see
/// [`ChainBreak::of`]) says what is wrong and on which line. A valid chain says nothing about
/// records cut off its end: compare [`AuditSummary::head`] with an anchor (see the module
/// docs).
pub fn verify_lines(reader: impl BufRead) -> Result<AuditSummary> {
    verify_reader(reader, Path::new("the audit log"))
}

fn verify_reader(reader: impl BufRead, name: &Path) -> Result<AuditSummary> {
    let mut walk = Walk::new(reader, 0, GENESIS.to_string(), 0, name);
    let mut summary = AuditSummary {
        records: 0,
        head: GENESIS.to_string(),
        first_time: None,
        last_time: None,
        torn_tail: false,
    };
    loop {
        match walk.next()? {
            Step::Record(record, _) => {
                summary.first_time.get_or_insert(record.time_unix_ms);
                summary.last_time = Some(record.time_unix_ms);
                summary.records = record.seq;
                summary.head = record.hash;
            }
            Step::Torn(_) => {
                summary.torn_tail = true;
                return Ok(summary);
            }
            Step::End => return Ok(summary),
        }
    }
}

/// Verifies the chain of the log at `path` (see [`verify_lines`]).
pub fn verify_file(path: &Path) -> Result<AuditSummary> {
    let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    verify_reader(BufReader::new(file), path)
}

struct Tail {
    file: File,
    /// Last record's seq and hash.
    seq: u64,
    head: String,
    /// The file's length: where the next line goes, and where to cut back to after a failed
    /// write.
    len: u64,
    /// A failed write could not be undone: the file's end is unknown until it is reopened.
    broken: bool,
}

/// An audit log open for appending. `Send + Sync`: share one per process behind an `Arc`.
pub struct AuditLog {
    path: PathBuf,
    tail: Mutex<Tail>,
}

const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<AuditLog>();
};

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the log at `path` for appending, creating it (mode 0600) if absent.
    ///
    /// The existing chain is verified from its first record to learn its head; any break is an
    /// [`ErrorKind::AuditChain`] error (see [`verify_lines`]), except an unterminated last line
    /// (a crash in the middle of a write, never acknowledged), which is cut away with a
    /// warning. A log that group or others can write is refused ([`ErrorKind::Config`]), and
    /// so is a log another process has open ([`ErrorKind::Io`]).
    pub fn open(path: &Path) -> Result<AuditLog> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .map_err(|e| Error::io("opening", path, e))?;
        crate::secure::check_owner_only_writes(&file, path, "the audit log", ErrorKind::Config)?;
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => Error::new(
                ErrorKind::Io,
                format!(
                    "the audit log {} is open in another process; one process appends at a time",
                    path.display()
                ),
            ),
            std::fs::TryLockError::Error(e) => Error::io("locking", path, e),
        })?;
        // The file may have just been created: make its name durable too.
        crate::secure::sync_parent(path)
            .map_err(|e| Error::io("syncing the folder of", path, e))?;

        let reader = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        let mut walk = Walk::new(BufReader::new(reader), 0, GENESIS.to_string(), 0, path);
        let len = loop {
            match walk.next()? {
                Step::Record(..) => {}
                Step::End => break walk.offset,
                Step::Torn(start) => {
                    tracing::warn!(
                        log = %path.display(),
                        after_record = walk.seq,
                        "the audit log ends in a partly written line (a crash mid-write); cutting it away: it was never acknowledged"
                    );
                    file.set_len(start)
                        .and_then(|()| file.sync_all())
                        .map_err(|e| Error::io("repairing", path, e))?;
                    break start;
                }
            }
        };
        Ok(AuditLog {
            path: path.to_path_buf(),
            tail: Mutex::new(Tail {
                file,
                seq: walk.seq,
                head: walk.head,
                len,
                broken: false,
            }),
        })
    }

    /// Appends `event` as the next record and returns it once it is on disk (written and
    /// `fsync`ed).
    ///
    /// Refused ([`ErrorKind::InvalidInput`]) when the record would be longer than 64 KiB or
    /// its details hold an array of more than 64 numbers: details are small facts, never
    /// biometric data. If the write fails it is undone, so the chain stays whole.
    pub fn append(&self, event: AuditEvent) -> Result<AuditRecord> {
        check_details(&event.details)?;
        let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.broken {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "an earlier write to the audit log {} failed and could not be undone; reopen the log",
                    self.path.display()
                ),
            ));
        }
        let time_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut record = AuditRecord {
            seq: tail.seq + 1,
            time_unix_ms,
            kind: event.kind,
            subject: event.subject,
            terminal: event.terminal,
            outcome: event.outcome,
            details: event.details,
            prev: tail.head.clone(),
            hash: String::new(),
        };
        let line = encode(&mut record)?;
        if line.len() > MAX_WRITE_LINE {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "an audit record of {} bytes is refused (at most {MAX_WRITE_LINE}): details are small facts, never biometric data",
                    line.len()
                ),
            ));
        }
        let written = tail
            .file
            .write_all(&line)
            .and_then(|()| tail.file.sync_data());
        if let Err(e) = written {
            // Cut back to the last whole record so the next append continues a valid chain.
            let len = tail.len;
            if tail
                .file
                .set_len(len)
                .and_then(|()| tail.file.sync_data())
                .is_err()
            {
                tail.broken = true;
            }
            return Err(Error::io("appending to", &self.path, e));
        }
        tail.seq = record.seq;
        tail.head.clone_from(&record.hash);
        tail.len += line.len() as u64;
        Ok(record)
    }

    /// The last record's hash ([`GENESIS`] for an empty log): what a receipt's `audit_head`
    /// records.
    pub fn head(&self) -> String {
        self.tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .head
            .clone()
    }

    /// How many records the log holds (the last `seq`).
    pub fn records(&self) -> u64 {
        self.tail.lock().unwrap_or_else(PoisonError::into_inner).seq
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Fills in `record.hash` and returns its line, `\n` included.
fn encode(record: &mut AuditRecord) -> Result<Vec<u8>> {
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

fn check_details(details: &Map<String, Value>) -> Result<()> {
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

#[cfg(test)]
pub(crate) mod tests {
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

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(path, text).unwrap();
    }

    fn break_of(path: &Path) -> ChainBreak {
        let err = verify_file(path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AuditChain, "{err}");
        ChainBreak::of(&err).cloned().unwrap()
    }

    /// A log of `n` records in a fresh folder.
    fn log_of(n: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 1..=n {
            log.append(event(i)).unwrap();
        }
        (dir, path)
    }

    #[test]
    fn a_thousand_appends_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.head(), GENESIS);
        let mut last = None;
        for i in 1..=1000 {
            let record = log.append(event(i)).unwrap();
            assert_eq!(record.seq, i);
            assert_eq!(log.head(), record.hash);
            last = Some(record);
        }
        let last = last.unwrap();
        let summary = verify_file(&path).unwrap();
        assert_eq!(summary.records, 1000);
        assert_eq!(summary.head, last.hash);
        assert_eq!(summary.last_time, Some(last.time_unix_ms));
        assert!(summary.first_time <= summary.last_time);
        assert!(!summary.torn_tail);
        // Each line is exactly the record's serialisation: fixed field order, hash last.
        let text = lines(&path);
        assert_eq!(text.len(), 1000);
        assert_eq!(text[999], serde_json::to_string(&last).unwrap());
        assert!(text[0].starts_with("{\"seq\":1,\"time_unix_ms\":"));
        assert!(text[0].contains(&format!("\"prev\":\"{GENESIS}\"")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn an_edited_field_is_detected_at_its_record() {
        let (_dir, path) = log_of(20);
        let mut text = lines(&path);
        assert!(text[9].contains("\"outcome\":\"accept\""));
        text[9] = text[9].replace("\"outcome\":\"accept\"", "\"outcome\":\"reject\"");
        write_lines(&path, &text);
        assert_eq!(break_of(&path), ChainBreak::Edited { line: 10, seq: 10 });
        assert!(AuditLog::open(&path).is_err());
    }

    #[test]
    fn an_edit_with_its_hash_recomputed_is_detected_at_the_next_record() {
        let (_dir, path) = log_of(20);
        let mut text = lines(&path);
        let mut record: AuditRecord = serde_json::from_str(&text[9]).unwrap();
        record.subject = Some("mallory".into());
        let line = encode(&mut record).unwrap();
        text[9] = String::from_utf8(line).unwrap().trim_end().to_string();
        write_lines(&path, &text);
        assert_eq!(break_of(&path), ChainBreak::Unlinked { line: 11, seq: 11 });
    }

    #[test]
    fn a_removed_record_is_detected() {
        let (_dir, path) = log_of(20);
        let mut text = lines(&path);
        text.remove(6);
        write_lines(&path, &text);
        assert_eq!(
            break_of(&path),
            ChainBreak::Missing {
                line: 7,
                expected: 7,
                found: 8
            }
        );
        // The first record removed: the chain cannot start at 2.
        let (_dir, path) = log_of(3);
        let mut text = lines(&path);
        text.remove(0);
        write_lines(&path, &text);
        assert!(matches!(
            break_of(&path),
            ChainBreak::Missing { line: 1, .. }
        ));
    }

    #[test]
    fn swapped_and_repeated_records_are_detected() {
        let (_dir, path) = log_of(20);
        let mut text = lines(&path);
        text.swap(4, 5);
        write_lines(&path, &text);
        assert_eq!(
            break_of(&path),
            ChainBreak::OutOfOrder {
                line: 5,
                expected: 5,
                found: 6
            }
        );
        let (_dir, path) = log_of(5);
        let mut text = lines(&path);
        text.insert(3, text[2].clone());
        write_lines(&path, &text);
        assert_eq!(
            break_of(&path),
            ChainBreak::OutOfOrder {
                line: 4,
                expected: 4,
                found: 3
            }
        );
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let (_dir, path) = log_of(5);
        let original = lines(&path);
        let cases: [(usize, String); 4] = [
            (2, "not json".into()),
            (2, String::new()),
            (2, original[2].replace("\"hash\":", "\"hash\" :")),
            (2, original[2].replace("\"outcome\"", "\"verdict\"")),
        ];
        for (at, bad) in cases {
            let mut text = original.clone();
            text[at] = bad;
            write_lines(&path, &text);
            match break_of(&path) {
                ChainBreak::BadLine { line, .. } => assert_eq!(line, at as u64 + 1),
                other => panic!("expected a bad line, got {other}"),
            }
        }
    }

    #[test]
    fn a_torn_last_line_is_cut_on_open_and_the_chain_continues() {
        let (_dir, path) = log_of(10);
        let whole = std::fs::read(&path).unwrap();
        let last = lines(&path).pop().unwrap();
        // A crash in the middle of writing record 11.
        let mut torn = whole.clone();
        let next = format!("{}\n", last.replace("\"seq\":10", "\"seq\":11"));
        torn.extend_from_slice(&next.as_bytes()[..next.len() / 2]);
        std::fs::write(&path, &torn).unwrap();
        let summary = verify_file(&path).unwrap();
        assert!(summary.torn_tail);
        assert_eq!(summary.records, 10);

        let log = AuditLog::open(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), whole);
        assert_eq!(log.records(), 10);
        let record = log.append(event(11)).unwrap();
        assert_eq!(record.seq, 11);
        let summary = verify_file(&path).unwrap();
        assert_eq!((summary.records, summary.torn_tail), (11, false));
        assert_eq!(summary.head, record.hash);
    }

    #[test]
    fn reopening_continues_the_chain() {
        let (_dir, path) = log_of(5);
        let head = verify_file(&path).unwrap().head;
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.head(), head);
        let record = log.append(event(6)).unwrap();
        assert_eq!((record.seq, record.prev.as_str()), (6, head.as_str()));
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.head(), record.hash);
        assert_eq!(log.append(event(7)).unwrap().seq, 7);
        assert_eq!(verify_file(&path).unwrap().records, 7);
    }

    #[test]
    fn one_writer_at_a_time_and_never_a_shared_writable_file() {
        let (_dir, path) = log_of(1);
        let log = AuditLog::open(&path).unwrap();
        let err = AuditLog::open(&path).unwrap_err();
        assert!(err.to_string().contains("another process"), "{err}");
        drop(log);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
            let err = AuditLog::open(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn concurrent_appends_form_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = std::sync::Arc::new(AuditLog::open(&path).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        log.append(event(t * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(verify_file(&path).unwrap().records, 200);
    }

    #[test]
    fn biometric_looking_details_are_refused() {
        let (_dir, path) = log_of(0);
        let log = AuditLog::open(&path).unwrap();
        let embedding: Vec<f32> = (0..128).map(|i| i as f32 / 128.0).collect();
        let err = log
            .append(
                AuditEvent::new(AuditKind::Enroll, "ok")
                    .detail("extra", serde_json::json!({ "v": embedding })),
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = log
            .append(AuditEvent::new(AuditKind::Enroll, "ok").detail("blob", "x".repeat(70_000)))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        // Nothing was written; the chain is still empty and usable.
        assert_eq!(log.records(), 0);
        assert_eq!(log.append(event(1)).unwrap().seq, 1);
        assert_eq!(verify_file(&path).unwrap().records, 1);
    }

    /// The committed v1 fixture still verifies, with the head it had when written.
    #[test]
    fn the_v1_fixture_verifies() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats/audit-v1.jsonl");
        let summary = verify_file(&path).unwrap();
        assert_eq!(summary.records, 3);
        assert_eq!(
            summary.head,
            std::fs::read_to_string(path.with_extension("head"))
                .unwrap()
                .trim()
        );
    }
}
