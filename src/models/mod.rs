//! Models as data: the manifest that describes them, integrity checks, and fetching.
//!
//! This module owns what a model *is* (name, task, file, sha256, I/O contract, preprocessing,
//! licence, upstream source) and whether a file on disk is that model. It never runs a model;
//! [`crate::runtime`] does, after this module has verified the file.

mod fetch;
mod manifest;

pub use fetch::{FetchOutcome, FetchSource, fetch_model};
pub use manifest::{
    DEFAULT_MANIFEST, Manifest, ModelSpec, ModelTask, Preprocess, TensorSpec, verify_file,
};
