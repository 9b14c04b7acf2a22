//! Verifying the hash chain: reading a log line by line (bounded in length), checking each
//! record's hash, `seq` and `prev` against the record before it, and naming the first broken
//! record ([`ChainBreak`]).
//!
//! The walk over a log can start from any verified point: from the first record to verify a
//! file or to learn the head when the writer opens it, from its cursor when `ship` continues.
//! Nothing here changes a log; it only reads.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::{AuditRecord, GENESIS, parse_line};
use crate::error::{Error, ErrorKind, Result};

/// Longest line a reader accepts before calling it malformed (bounds memory on a bad file).
const MAX_READ_LINE: usize = 1024 * 1024;

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
pub(super) enum Step {
    /// A verified record; `end` is the byte offset just after its line.
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
pub(super) struct Walk<R> {
    reader: R,
    /// Last accepted seq and hash.
    pub(super) seq: u64,
    pub(super) head: String,
    /// Byte offset of the next line.
    pub(super) offset: u64,
    buf: Vec<u8>,
    path: PathBuf,
}

impl<R: BufRead> Walk<R> {
    /// A walk whose next line should be record `seq + 1`, linking to `head`, at byte `offset`
    /// of the file (for messages and cut points); `path` names the file in I/O errors.
    pub(super) fn new(reader: R, seq: u64, head: String, offset: u64, path: &Path) -> Walk<R> {
        Walk {
            reader,
            seq,
            head,
            offset,
            buf: Vec::new(),
            path: path.to_path_buf(),
        }
    }

    pub(super) fn next(&mut self) -> Result<Step> {
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
/// records cut off its end: compare [`AuditSummary::head`] with an anchor (see the
/// [`audit`](super) module docs).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use crate::audit::record::encode;
    use crate::audit::tests::{lines, log_of};

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
