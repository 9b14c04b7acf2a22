//! Copying or downloading model files into a model directory, verified by sha256.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::models::manifest::{ModelSpec, sha256_hex, verify_file};

/// Where model files are fetched from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchSource {
    /// A local directory laid out like the model directory.
    Dir(PathBuf),
    /// An `http://` or `https://` base URL; each model's relative file path is appended.
    Url(String),
}

impl FetchSource {
    /// Parses a command-line value: a URL when it starts with `http://` or `https://`,
    /// otherwise a directory.
    pub fn parse(value: &str) -> FetchSource {
        if value.starts_with("http://") || value.starts_with("https://") {
            FetchSource::Url(value.trim_end_matches('/').to_string())
        } else {
            FetchSource::Dir(PathBuf::from(value))
        }
    }
}

/// What [`fetch_model`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// The destination already held the right file; nothing was copied.
    AlreadyPresent,
    /// The file was copied from a directory.
    Copied,
    /// The file was downloaded.
    Downloaded,
    /// The file is made by a script of the project (`made_by`), not fetched, and is not
    /// there yet.
    MadeByScript,
}

/// Puts `spec`'s file into `dest_dir` from `source` (unless a script of the project makes it:
/// [`FetchOutcome::MadeByScript`]), verifying its sha256 before it becomes visible: the file is written to a temporary name, synced, and renamed into place, so an
/// interrupted or corrupt fetch never leaves a half-written model behind.
pub fn fetch_model(
    spec: &ModelSpec,
    source: &FetchSource,
    dest_dir: &Path,
) -> Result<FetchOutcome> {
    let dest = spec.path_in(dest_dir);
    if dest.exists() && verify_file(spec, &dest).is_ok() {
        return Ok(FetchOutcome::AlreadyPresent);
    }
    if spec.made_by.is_some() {
        return Ok(FetchOutcome::MadeByScript);
    }
    let (bytes, outcome) = match source {
        FetchSource::Dir(dir) => {
            let from = spec.path_in(dir);
            let bytes = std::fs::read(&from).map_err(|e| {
                Error::new(
                    ErrorKind::Fetch,
                    format!("model {:?}: cannot read {}: {e}", spec.name, from.display()),
                )
                .with_source(e)
            })?;
            (bytes, FetchOutcome::Copied)
        }
        FetchSource::Url(base) => (download(spec, base)?, FetchOutcome::Downloaded),
    };
    let actual = sha256_hex(&bytes);
    if actual != spec.sha256 {
        return Err(Error::new(
            ErrorKind::Fetch,
            format!(
                "model {:?}: the fetched file has sha256 {actual}, but the manifest expects {}; nothing was written",
                spec.name, spec.sha256
            ),
        ));
    }
    write_atomically(&dest, &bytes)?;
    Ok(outcome)
}

#[cfg(not(feature = "download"))]
fn download(spec: &ModelSpec, base: &str) -> Result<Vec<u8>> {
    Err(Error::new(
        ErrorKind::Fetch,
        format!(
            "model {:?}: this build cannot download ({base}): rebuild with the `download` feature, or fetch from a folder",
            spec.name
        ),
    ))
}

#[cfg(feature = "download")]
fn download(spec: &ModelSpec, base: &str) -> Result<Vec<u8>> {
    use std::time::Duration;
    /// Model files larger than this are refused while downloading (no model vouch uses is near it).
    const MAX_MODEL_BYTES: u64 = 1 << 30;

    let relative = spec
        .file
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    let url = format!("{base}/{relative}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let fail =
        |what: String| Error::new(ErrorKind::Fetch, format!("model {:?}: {what}", spec.name));
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| fail(format!("downloading {url} failed: {e}")))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_MODEL_BYTES)
        .read_to_vec()
        .map_err(|e| fail(format!("reading {url} failed: {e}")))
}

fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::io("creating model directory", parent, e))?;
    crate::secure::write_atomic(
        dest,
        bytes,
        crate::secure::Access::Shared,
        crate::secure::Existing::Replace,
    )
    .map_err(|e| Error::io("writing model", dest, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Manifest;

    fn spec_for(bytes: &[u8]) -> ModelSpec {
        let text = format!(
            "format = 1\n[[model]]\nname = \"m\"\ntask = \"face_embedding\"\nfile = \"sub/m.onnx\"\n\
             sha256 = \"{}\"\nlicence = \"x\"\nsource = \"y\"\n\
             inputs = [{{ name = \"i\", shape = [1] }}]\noutputs = [{{ name = \"o\", shape = [1] }}]\n",
            sha256_hex(bytes)
        );
        Manifest::parse(&text).unwrap().models.remove(0)
    }

    #[test]
    fn copies_from_a_directory_then_finds_it_present() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/m.onnx"), b"weights").unwrap();
        let spec = spec_for(b"weights");
        let source = FetchSource::Dir(src.path().to_path_buf());
        assert_eq!(
            fetch_model(&spec, &source, dest.path()).unwrap(),
            FetchOutcome::Copied
        );
        assert_eq!(
            std::fs::read(dest.path().join("sub/m.onnx")).unwrap(),
            b"weights"
        );
        assert_eq!(
            fetch_model(&spec, &source, dest.path()).unwrap(),
            FetchOutcome::AlreadyPresent
        );
    }

    #[test]
    fn a_wrong_digest_writes_nothing() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/m.onnx"), b"tampered").unwrap();
        let spec = spec_for(b"weights");
        let err =
            fetch_model(&spec, &FetchSource::Dir(src.path().into()), dest.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Fetch);
        assert!(!dest.path().join("sub/m.onnx").exists());
        assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
    }

    #[test]
    fn source_parsing() {
        assert_eq!(
            FetchSource::parse("http://127.0.0.1:8/models/"),
            FetchSource::Url("http://127.0.0.1:8/models".into())
        );
        assert_eq!(
            FetchSource::parse("../shared/models"),
            FetchSource::Dir("../shared/models".into())
        );
    }
}
