//! The log open for appending ([`AuditLog`]): one writer per file (locked, mode 0600, refused
//! when others can write it), the chain verified on open and a torn last line cut away, every
//! record written and `fsync`ed before it is acknowledged, and a failed write undone so the
//! chain stays whole.
//!
//! Group commit: records are written in chain order under the lock, and made durable outside
//! it by one `fsync` that covers every record written so far. An append that finds an `fsync`
//! already running waits for the next one, which then covers its record and every other
//! written meanwhile: concurrent decisions share `fsync`s, and none is acknowledged before its
//! record is on disk.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use super::chain::{Step, Walk};
use super::record::{AuditEvent, AuditRecord, GENESIS, MAX_WRITE_LINE, check_details, encode};
use crate::error::{Error, ErrorKind, Result};

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
    /// How far the file is known durable, and the chain there (seq, head): where a failed
    /// `fsync` cuts back to.
    synced: u64,
    synced_seq: u64,
    synced_head: String,
    /// An append is running the `fsync` (the others wait for it, then for the next one).
    syncing: bool,
}

/// An audit log open for appending. `Send + Sync`: share one per process behind an `Arc`.
pub struct AuditLog {
    path: PathBuf,
    tail: Mutex<Tail>,
    /// Another handle on the same file, to `fsync` it without holding the lock.
    sync_handle: File,
    /// Signalled when an `fsync` ends.
    synced: Condvar,
    /// `fsync`s run since the log was opened.
    syncs: AtomicU64,
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
    /// [`ErrorKind::AuditChain`] error (see [`verify_lines`](super::verify_lines)), except an
    /// unterminated last line (a crash in the middle of a write, never acknowledged), which is
    /// cut away with a warning. A log that group or others can write is refused ([`ErrorKind::Config`]), and
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
        let sync_handle = file
            .try_clone()
            .map_err(|e| Error::io("opening", path, e))?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            tail: Mutex::new(Tail {
                file,
                seq: walk.seq,
                head: walk.head.clone(),
                len,
                broken: false,
                synced: len,
                synced_seq: walk.seq,
                synced_head: walk.head,
                syncing: false,
            }),
            sync_handle,
            synced: Condvar::new(),
            syncs: AtomicU64::new(0),
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
        if let Err(e) = tail.file.write_all(&line) {
            // Cut back to the last whole record so the next append continues a valid chain.
            let len = tail.len;
            if tail.file.set_len(len).is_err() {
                tail.broken = true;
            }
            return Err(Error::io("appending to", &self.path, e));
        }
        tail.seq = record.seq;
        tail.head.clone_from(&record.hash);
        tail.len += line.len() as u64;
        let mine = tail.len;
        // Acknowledged only once an fsync that started after the write has ended.
        loop {
            if tail.synced >= mine {
                return Ok(record);
            }
            if tail.broken {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!(
                        "the audit log {} could not be made durable; reopen the log",
                        self.path.display()
                    ),
                ));
            }
            if tail.syncing {
                tail = self
                    .synced
                    .wait(tail)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            tail.syncing = true;
            let (target, seq, head) = (tail.len, tail.seq, tail.head.clone());
            drop(tail);
            let result = self.sync_handle.sync_data();
            self.syncs.fetch_add(1, Ordering::Relaxed);
            tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
            tail.syncing = false;
            match result {
                Ok(()) => {
                    tail.synced = target;
                    tail.synced_seq = seq;
                    tail.synced_head = head;
                }
                Err(e) => {
                    // Every record since the last durable one is in doubt: cut back to it, so
                    // that nothing unacknowledged stays in the chain, or give up the log.
                    let (len, seq, head) = (tail.synced, tail.synced_seq, tail.synced_head.clone());
                    let undone = tail.file.set_len(len).and_then(|()| tail.file.sync_data());
                    if undone.is_ok() {
                        tail.len = len;
                        tail.seq = seq;
                        tail.head = head;
                    }
                    tail.broken = true;
                    self.synced.notify_all();
                    return Err(Error::io("syncing", &self.path, e));
                }
            }
            self.synced.notify_all();
        }
    }

    /// `fsync`s run since the log was opened (fewer than records appended when appends
    /// overlap: group commit).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;
    use crate::audit::tests::{event, lines, log_of};
    use crate::audit::verify_file;

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
        // One fsync per acknowledged batch: never more than one per record.
        let syncs = log.syncs();
        assert!((1..=200).contains(&syncs), "{syncs}");
        eprintln!("200 concurrent appends, {syncs} fsyncs");
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
}
