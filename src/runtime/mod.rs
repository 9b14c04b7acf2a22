//! ONNX Runtime: loading the shared library and pooling inference sessions.
//!
//! ONNX Runtime is loaded at run time from `libonnxruntime.so` (`ort`'s `load-dynamic`), so a
//! missing or wrong library is an error the caller can show, never a panic or a build-time
//! download. This module owns every direct use of `ort` sessions; model-specific code asks
//! a [`SessionPool`] for a session and gets it back without touching the pool's lock while
//! inference runs.

mod pool;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

pub use pool::SessionPool;

use crate::error::{Error, ErrorKind, Result};

/// Environment variable naming the ONNX Runtime shared library.
pub const ENV_ORT_LIB: &str = "VOUCH_ORT_LIB";
/// ONNX Runtime's own variable for its library, honoured after [`ENV_ORT_LIB`].
pub const ENV_ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// How ONNX Runtime is loaded and run (`[runtime]`).
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Path of `libonnxruntime.so`. By default, `$VOUCH_ORT_LIB`, then `$ORT_DYLIB_PATH`, then
    /// `.vouch/lib/libonnxruntime.so` under the working directory (where `scripts/setup.sh`
    /// puts it).
    pub library: Option<PathBuf>,
    /// Intra-op threads per inference session. By default, 1: on small devices several sessions
    /// run side by side, and ONNX Runtime's spinning pools fight each other when oversubscribed.
    pub intra_threads: usize,
    /// The most sessions kept per model, i.e. how many inferences of one model may run at once.
    /// By default, the number of CPU cores.
    pub sessions_per_model: usize,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            library: None,
            intra_threads: 1,
            sessions_per_model: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

impl RuntimeConfig {
    /// Checks the values ([`ErrorKind::Config`] naming the key).
    pub fn validate(&self) -> Result<()> {
        if !(1..=64).contains(&self.intra_threads) {
            return Err(Error::new(
                ErrorKind::Config,
                "runtime.intra_threads must be between 1 and 64",
            ));
        }
        if !(1..=256).contains(&self.sessions_per_model) {
            return Err(Error::new(
                ErrorKind::Config,
                "runtime.sessions_per_model must be between 1 and 256",
            ));
        }
        Ok(())
    }
}

/// The ONNX Runtime version vouch is built against (the `api-31` feature).
pub const ORT_VERSION: &str = "1.31.1";

/// Where `scripts/setup.sh` puts the runtime library, relative to the working directory.
pub const LOCAL_LIBRARY: &str = ".vouch/lib/libonnxruntime.so";

/// A loaded ONNX Runtime environment, shared by every session the engine creates.
#[derive(Clone)]
pub struct Runtime {
    env: ort::environment::Environment,
    intra_threads: usize,
    sessions_per_model: usize,
    library: PathBuf,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.library)
            .field("intra_threads", &self.intra_threads)
            .field("sessions_per_model", &self.sessions_per_model)
            .finish()
    }
}

impl Runtime {
    /// Finds and loads `libonnxruntime.so` and creates the environment.
    ///
    /// The library is `config.library` when set (the configuration fills it from
    /// [`ENV_ORT_LIB`] or [`ENV_ORT_DYLIB_PATH`]), else [`LOCAL_LIBRARY`]. ONNX Runtime can
    /// be loaded only once per process: a later call with another path keeps using the first
    /// library.
    pub fn load(config: &RuntimeConfig) -> Result<Runtime> {
        let library = locate_library(config.library.as_deref())?;
        let (env, loaded_from) = process_environment(&library)?;
        if loaded_from != library {
            tracing::warn!(
                requested = %library.display(),
                loaded = %loaded_from.display(),
                "ONNX Runtime is already loaded in this process; keeping the first library"
            );
        }
        Ok(Runtime {
            env,
            intra_threads: config.intra_threads,
            sessions_per_model: config.sessions_per_model,
            library: loaded_from,
        })
    }

    /// The path the runtime library was loaded from.
    pub fn library(&self) -> &Path {
        &self.library
    }

    pub(crate) fn env(&self) -> &ort::environment::Environment {
        &self.env
    }

    pub(crate) fn intra_threads(&self) -> usize {
        self.intra_threads
    }

    pub(crate) fn sessions_per_model(&self) -> usize {
        self.sessions_per_model
    }
}

/// ONNX Runtime allows one environment per process: the first successful load creates it and
/// every later [`Runtime`] shares it. A failed load is not remembered, so a corrected path can
/// be tried again.
fn process_environment(library: &Path) -> Result<(ort::environment::Environment, PathBuf)> {
    static ENVIRONMENT: Mutex<Option<(ort::environment::Environment, PathBuf)>> = Mutex::new(None);
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((env, path)) = slot.as_ref() {
        return Ok((env.clone(), path.clone()));
    }
    let builder = ort::init_from(library).map_err(|e| {
        Error::new(
            ErrorKind::Runtime,
            format!(
                "cannot load ONNX Runtime from {}: {e}. {}",
                library.display(),
                install_hint()
            ),
        )
    })?;
    let env = builder.with_name("vouch").build().map_err(|e| {
        Error::new(
            ErrorKind::Runtime,
            format!("cannot create the ONNX Runtime environment: {e}"),
        )
    })?;
    *slot = Some((env.clone(), library.to_path_buf()));
    Ok((env, library.to_path_buf()))
}

/// How to get the runtime library, for error messages.
fn install_hint() -> String {
    format!(
        "Install it with `scripts/setup.sh` (it puts it at {LOCAL_LIBRARY}), or by hand: \
         `python3 -m pip download --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
         --python-version 3.11 onnxruntime=={ORT_VERSION}`, unzip \
         `onnxruntime/capi/libonnxruntime.so.{ORT_VERSION}` from the wheel, and point \
         {} (or runtime.library in the config) at it",
        ENV_ORT_LIB
    )
}

fn locate_library(configured: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<(PathBuf, &str)> = match configured {
        // An explicit choice is never silently replaced by another library.
        Some(path) => vec![(
            path.to_path_buf(),
            "runtime.library, VOUCH_ORT_LIB or ORT_DYLIB_PATH",
        )],
        None => {
            // `$VOUCH_ORT_LIB` and `$ORT_DYLIB_PATH` arrive as `configured`: the
            // configuration is the one reader of the environment.
            vec![(PathBuf::from(LOCAL_LIBRARY), "the project-local default")]
        }
    };
    for (path, _) in &candidates {
        if path.is_file() {
            return Ok(path.clone());
        }
    }
    let looked: Vec<String> = candidates
        .iter()
        .map(|(p, from)| format!("{} ({from})", p.display()))
        .collect();
    Err(Error::new(
        ErrorKind::Runtime,
        format!(
            "ONNX Runtime library not found; looked at: {}. {}",
            looked.join(", "),
            install_hint()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_says_how_to_install_it() {
        let config = RuntimeConfig {
            library: Some(PathBuf::from("/nonexistent/libonnxruntime.so")),
            ..RuntimeConfig::default()
        };
        let err = Runtime::load(&config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Runtime);
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/libonnxruntime.so"), "{msg}");
        assert!(msg.contains("pip download"), "{msg}");
        assert!(msg.contains("VOUCH_ORT_LIB"), "{msg}");
    }

    #[test]
    fn a_file_that_is_not_a_library_is_a_runtime_error() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("libonnxruntime.so");
        std::fs::write(&fake, b"not an ELF file").unwrap();
        let config = RuntimeConfig {
            library: Some(fake),
            ..RuntimeConfig::default()
        };
        // If another test already loaded the real runtime in this process, ort keeps it and
        // this call succeeds; otherwise it must fail cleanly.
        if let Err(err) = Runtime::load(&config) {
            assert_eq!(err.kind(), ErrorKind::Runtime);
        }
    }
}
