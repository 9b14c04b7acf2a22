//! Secure files and randomness: the system CSPRNG, the one atomic write, and the checks that
//! files holding secrets or security state are private.
//!
//! A leaf: every module that writes a file other processes must never see half-written (keys,
//! the UBM, the shipping cursor, fetched models, cached embeddings) goes through
//! [`write_atomic`]; every random byte that protects something comes from [`random`].

use std::fs::File;
use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// Fills `buf` from the operating system's CSPRNG ([`ErrorKind::Key`] if it fails, which on
/// a working system it does not).
pub fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::new(
            ErrorKind::Key,
            format!("the system random source failed: {e}"),
        )
    })
}

/// Who may read a file [`write_atomic`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Its owner only (mode 0600): keys, templates' companions, anything biometric.
    Private,
    /// Anyone the folder lets in (mode 0644 before the umask): public artefacts (models).
    Shared,
}

/// Whether [`write_atomic`] may replace an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (atomically: a reader sees the old bytes or the new, never a mix).
    Replace,
    /// Refuse with [`std::io::ErrorKind::AlreadyExists`] and leave it untouched (key files:
    /// a key is never overwritten).
    Keep,
}

/// Writes `bytes` to `path` atomically and durably: a randomly named temporary file in the
/// same folder, written and fsynced, then renamed (or, with [`Existing::Keep`], hard-linked,
/// which fails if `path` exists), then the folder fsynced so the new name survives a crash.
/// On any failure the temporary file is removed and `path` is as it was.
///
/// The temporary name is random, never the pid: a file left by a crash must not block later
/// writes, and a pid comes back after a reboot.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    access: Access,
    existing: Existing,
) -> std::io::Result<()> {
    let parent = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", hex::encode(salt)));
    let result = (|| -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(match access {
                Access::Private => 0o600,
                Access::Shared => 0o644,
            });
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        match existing {
            Existing::Replace => std::fs::rename(&tmp, path)?,
            Existing::Keep => {
                std::fs::hard_link(&tmp, path)?;
                std::fs::remove_file(&tmp)?;
            }
        }
        File::open(parent)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` as an empty file readable and writable by its owner only, unless it exists
/// (a database SQLite then opens in it keeps that mode, and its -wal and -shm files take it).
pub fn create_private(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Fsyncs the folder holding `path`, so that a file just created or renamed there keeps its
/// name after a crash.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    File::open(parent_of(path))?.sync_all()
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Refuses (with `kind`) a file that anyone but its owner can read: key files. `what` names
/// the file in the message (`"key file"`).
#[cfg(unix)]
pub fn check_owner_only_reads(path: &Path, what: &str, kind: ErrorKind) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::new(kind, format!("cannot read {what} {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::new(
            kind,
            format!(
                "{what} {} has mode {mode:o}: others can read it; restrict it with `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        ));
    }
    Ok(())
}

/// See the Unix version: elsewhere file modes do not apply.
#[cfg(not(unix))]
pub fn check_owner_only_reads(_path: &Path, _what: &str, _kind: ErrorKind) -> Result<()> {
    Ok(())
}

/// Refuses (with `kind`) an open file that is not a regular file or that its group or others
/// can write: security state whose integrity matters (the audit log). `what` names it.
#[cfg(unix)]
pub fn check_owner_only_writes(
    file: &File,
    path: &Path,
    what: &str,
    kind: ErrorKind,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("inspecting", path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if !meta.is_file() || mode & 0o022 != 0 {
        return Err(Error::new(
            kind,
            format!(
                "{what} {} has mode {mode:o}: others could rewrite it; restrict it with `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        ));
    }
    Ok(())
}

/// See the Unix version: elsewhere file modes do not apply.
#[cfg(not(unix))]
pub fn check_owner_only_writes(
    _file: &File,
    _path: &Path,
    _what: &str,
    _kind: ErrorKind,
) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_file_left_by_a_crash_does_not_block_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        // What a crashed writer could leave behind under any fixed naming scheme.
        std::fs::write(dir.path().join(".cursor.tmp"), b"stale").unwrap();
        write_atomic(&path, b"1", Access::Private, Existing::Replace).unwrap();
        write_atomic(&path, b"2", Access::Private, Existing::Replace).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"2");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600_and_shared_ones_are_not_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("key");
        write_atomic(&private, b"k", Access::Private, Existing::Keep).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&private), 0o600);
        check_owner_only_reads(&private, "key file", ErrorKind::Key).unwrap();
        let shared = dir.path().join("model.onnx");
        write_atomic(&shared, b"m", Access::Shared, Existing::Replace).unwrap();
        assert_ne!(mode(&shared) & 0o044, 0, "{:o}", mode(&shared));
        let err = check_owner_only_reads(&shared, "key file", ErrorKind::Key).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Key);
        assert!(err.message().contains("chmod 600"), "{err}");
    }

    #[test]
    fn keep_never_overwrites_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipt.key");
        write_atomic(&path, b"first", Access::Private, Existing::Keep).unwrap();
        let err = write_atomic(&path, b"second", Access::Private, Existing::Keep).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_folder_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("file");
        assert!(write_atomic(&path, b"x", Access::Private, Existing::Replace).is_err());
        assert!(!path.exists());
    }

    #[test]
    fn random_fills_the_buffer() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        random(&mut a).unwrap();
        random(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
