//! Models as data: the manifest that describes them, integrity checks, and fetching.
//!
//! This module owns what a model *is* (name, task, file, sha256, I/O contract, preprocessing,
//! licence, upstream source) and whether a file on disk is that model. It never runs a model;
//! [`crate::runtime`] does, after this module has verified the file.

mod derive;
mod fetch;
mod manifest;

pub use derive::{Derivation, Recipe};

pub use fetch::{FetchOutcome, FetchSource, fetch_model};
pub use manifest::{
    DEFAULT_MANIFEST, LivenessCrop, Manifest, ModelSpec, ModelTask, Preprocess, TensorSpec,
    verify_file,
};

/// Where models are found (`[models]`).
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// Directory holding the model files named in the manifest. By default, `$VOUCH_MODEL_DIR`,
    /// else `.vouch/models` under the working directory (where `vouch models fetch` copies them).
    pub dir: std::path::PathBuf,
    /// A manifest file to use instead of the one built into the library. By default, none.
    pub manifest: Option<std::path::PathBuf>,
}

impl Default for ModelsConfig {
    fn default() -> ModelsConfig {
        ModelsConfig {
            dir: std::path::PathBuf::from(".vouch/models"),
            manifest: None,
        }
    }
}

impl ModelsConfig {
    /// The manifest this configuration names: the file, or the built-in one.
    pub fn manifest(&self) -> crate::error::Result<Manifest> {
        match &self.manifest {
            Some(path) => Manifest::load(path),
            None => Ok(Manifest::builtin()),
        }
    }
}
