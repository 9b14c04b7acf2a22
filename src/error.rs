//! The library's one error type.
//!
//! Every fallible function in `vouch` returns [`Error`], whose [`ErrorKind`] tells a caller what
//! class of problem happened (and so what to do about it), and whose message says what was wrong
//! with the input. Messages never carry template bytes, embeddings, keys or file contents.

use std::fmt;
use std::path::Path;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What class of problem an [`Error`] is.
///
/// New kinds are added as the engine grows, so match with a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Reading or writing a file failed.
    Io,
    /// A configuration value is missing or invalid.
    Config,
    /// The ONNX Runtime library could not be found or loaded.
    Runtime,
    /// A model manifest is malformed or does not name the requested model.
    Manifest,
    /// A model file is missing or its sha256 differs from the manifest.
    ModelIntegrity,
    /// A model's inputs or outputs differ from what its manifest declares.
    ModelContract,
    /// Running a model failed.
    Inference,
    /// Image bytes are empty, truncated, corrupt or in an unsupported format.
    ImageDecode,
    /// An image is larger than the configured limit (refused before decoding).
    ImageTooLarge,
    /// An image is too small to hold a usable face.
    ImageTooSmall,
    /// No face was found where one was required.
    NoFace,
    /// An argument is outside what the function accepts.
    InvalidInput,
    /// A dataset (pair list, directory layout) is malformed.
    Dataset,
    /// A camera or microphone is missing, busy, unplugged or cannot deliver a usable format.
    Device,
    /// A capture source delivered nothing within its timeout.
    CaptureTimeout,
    /// Capture ended (time budget or stream) without a frame or utterance fit to use; the
    /// message says why (no face, too dark, moving, silence…).
    NoUsableCapture,
    /// An evaluation report or plot could not be produced (no font for a plot, nothing to
    /// draw, an unwritable output folder).
    Report,
    /// Downloading or copying a model failed.
    Fetch,
    /// A template was made by another model than the one in use: re-enrollment required.
    TemplateModelMismatch,
    /// Template bytes are malformed, truncated or of an unknown format version.
    TemplateFormat,
    /// A template failed authentication: tampered, moved to another subject, or the wrong key.
    TemplateAuth,
    /// A key is missing, malformed, or stored insecurely.
    Key,
    /// The template store failed (database error, schema mismatch).
    Store,
    /// A write failed because the disk, a quota or a file-size limit is full; nothing was
    /// written. Free space (or raise the limit) and retry.
    StorageFull,
    /// The subject or template does not exist.
    NotFound,
    /// Audio bytes are empty, truncated, corrupt, non-finite or in an unsupported format.
    AudioDecode,
    /// Audio is longer than the configured limit.
    AudioTooLong,
    /// Audio is shorter than the configured minimum.
    AudioTooShort,
    /// Audio is (near) silent.
    AudioSilent,
    /// Audio is clipped.
    AudioClipped,
    /// A passphrase challenge is unknown, already used, expired, or another subject's.
    ChallengeInvalid,
    /// A passphrase response holds another number of spoken digits than the challenge.
    PassphraseTokens,
    /// A verification receipt is malformed, of an unknown version, signed by another key, or
    /// its signature does not match (it was altered).
    ReceiptInvalid,
    /// An audit log's hash chain is broken: a record was edited, removed, reordered or
    /// replaced, or a line is malformed; or its shipped copy disagrees with it (a fork).
    AuditChain,
}

impl ErrorKind {
    /// A short, stable, lowercase name for the kind (used in JSON output and logs).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Config => "config",
            ErrorKind::Runtime => "runtime",
            ErrorKind::Manifest => "manifest",
            ErrorKind::ModelIntegrity => "model_integrity",
            ErrorKind::ModelContract => "model_contract",
            ErrorKind::Inference => "inference",
            ErrorKind::ImageDecode => "image_decode",
            ErrorKind::ImageTooLarge => "image_too_large",
            ErrorKind::ImageTooSmall => "image_too_small",
            ErrorKind::NoFace => "no_face",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Dataset => "dataset",
            ErrorKind::Report => "report",
            ErrorKind::Device => "device",
            ErrorKind::CaptureTimeout => "capture_timeout",
            ErrorKind::NoUsableCapture => "no_usable_capture",
            ErrorKind::Fetch => "fetch",
            ErrorKind::TemplateModelMismatch => "template_model_mismatch",
            ErrorKind::TemplateFormat => "template_format",
            ErrorKind::TemplateAuth => "template_auth",
            ErrorKind::Key => "key",
            ErrorKind::Store => "store",
            ErrorKind::StorageFull => "storage_full",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AudioDecode => "audio_decode",
            ErrorKind::AudioTooLong => "audio_too_long",
            ErrorKind::AudioTooShort => "audio_too_short",
            ErrorKind::AudioSilent => "audio_silent",
            ErrorKind::AudioClipped => "audio_clipped",
            ErrorKind::ChallengeInvalid => "challenge_invalid",
            ErrorKind::PassphraseTokens => "passphrase_tokens",
            ErrorKind::ReceiptInvalid => "receipt_invalid",
            ErrorKind::AuditChain => "audit_chain",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned by every fallible function in `vouch`.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// Creates an error of `kind` with a message that says what was wrong and what to do.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause (shown by `{:#}` and through `source()`).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// An I/O error on `path`, saying what was being done.
    /// A full disk, quota or file-size limit is [`ErrorKind::StorageFull`]: the caller can
    /// do nothing but wait for space, which callers (the daemon) tell apart from a broken file.
    pub(crate) fn io(doing: &str, path: &Path, err: std::io::Error) -> Error {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            Io::StorageFull | Io::QuotaExceeded | Io::FileTooLarge => ErrorKind::StorageFull,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("{doing} {}: {err}", path.display())).with_source(err)
    }

    /// What class of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message, without the kind or the source chain.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let (true, Some(source)) = (f.alternate(), &self.source) {
            // Many messages already quote their cause; do not say it twice.
            let cause = source.to_string();
            if !self.message.contains(&cause) {
                write!(f, ": {cause}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_a_new_source_only_when_alternate() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let err = Error::io("reading", Path::new("/x"), io);
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(err.to_string(), "reading /x: gone");
        assert_eq!(format!("{err:#}"), "reading /x: gone");
        let wrapped = Error::new(ErrorKind::Io, "reading /y")
            .with_source(std::io::Error::other("disk on fire"));
        assert_eq!(format!("{wrapped:#}"), "reading /y: disk on fire");
    }

    #[test]
    fn kinds_have_distinct_names() {
        let kinds = [
            ErrorKind::Io,
            ErrorKind::Config,
            ErrorKind::Runtime,
            ErrorKind::Manifest,
            ErrorKind::ModelIntegrity,
            ErrorKind::ModelContract,
            ErrorKind::Inference,
            ErrorKind::ImageDecode,
            ErrorKind::ImageTooLarge,
            ErrorKind::ImageTooSmall,
            ErrorKind::NoFace,
            ErrorKind::InvalidInput,
            ErrorKind::Dataset,
            ErrorKind::Report,
            ErrorKind::Device,
            ErrorKind::CaptureTimeout,
            ErrorKind::NoUsableCapture,
            ErrorKind::Fetch,
            ErrorKind::TemplateModelMismatch,
            ErrorKind::TemplateFormat,
            ErrorKind::TemplateAuth,
            ErrorKind::Key,
            ErrorKind::Store,
            ErrorKind::StorageFull,
            ErrorKind::NotFound,
            ErrorKind::AudioDecode,
            ErrorKind::AudioTooLong,
            ErrorKind::AudioTooShort,
            ErrorKind::AudioSilent,
            ErrorKind::AudioClipped,
            ErrorKind::ChallengeInvalid,
            ErrorKind::PassphraseTokens,
            ErrorKind::ReceiptInvalid,
            ErrorKind::AuditChain,
        ];
        let names: std::collections::HashSet<_> = kinds.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), kinds.len());
    }

    #[cfg(unix)]
    #[test]
    fn a_full_disk_quota_or_file_size_limit_is_storage_full() {
        let path = Path::new("audit.log");
        for errno in [libc::ENOSPC, libc::EDQUOT, libc::EFBIG] {
            let e = Error::io(
                "appending to",
                path,
                std::io::Error::from_raw_os_error(errno),
            );
            assert_eq!(e.kind(), ErrorKind::StorageFull, "errno {errno}");
        }
        let e = Error::io(
            "appending to",
            path,
            std::io::Error::from_raw_os_error(libc::EIO),
        );
        assert_eq!(e.kind(), ErrorKind::Io);
    }
}
