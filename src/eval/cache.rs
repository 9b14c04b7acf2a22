//! The evaluation embedding cache: one small file per image and pipeline configuration, so
//! re-scoring a dataset (other pairs, other protocol, other metrics) skips detection and
//! embedding.
//!
//! Entries are keyed by the SHA-256 of the image bytes (a renamed or moved file still hits, an
//! edited one misses) inside a folder named after everything that changes an embedding: the
//! vouch version, the detector and embedder (name and file hash) and the face settings that
//! act before matching. Each embedder has its own folder, so an evaluation of several models
//! reuses each model's embeddings from any earlier run that used that model, alone or with
//! others. A failure to acquire is cached too (it is as deterministic as an embedding).
//! Writes are atomic (temporary file, then rename), so a crashed run leaves no half entry;
//! an unreadable entry is treated as a miss.
//!
//! The cache holds plaintext embeddings of the evaluation images: it is for research data
//! sets, never for enrolled customers, and lives under `.vouch/cache` unless told otherwise.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::embedding::Embedding;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::face::Embedder;

/// A cached analysis of one image.
#[derive(Clone, Debug, PartialEq)]
pub enum CachedFace {
    /// The embedding of the image's largest face.
    Embedding(Vec<f32>),
    /// The image could not be acquired: error kind and message.
    Failure {
        /// `ErrorKind` name (`no_face`, `image_decode`, …).
        kind: String,
        /// The error message.
        message: String,
    },
}

/// An embedding cache for one engine configuration.
#[derive(Clone, Debug)]
pub struct EmbeddingCache {
    dir: PathBuf,
}

impl EmbeddingCache {
    /// The cache under `root` for `engine`'s face pipeline with its embedder (the folder is
    /// created on first write).
    pub fn for_engine(root: &Path, engine: &Engine) -> EmbeddingCache {
        EmbeddingCache::for_embedder(root, engine, engine.face().embedder())
    }

    /// The cache under `root` for `engine`'s detection and alignment followed by `embedder`
    /// (one of the engine's embedders, or any other loaded with the same face settings).
    pub fn for_embedder(root: &Path, engine: &Engine, embedder: &Embedder) -> EmbeddingCache {
        let face = &engine.config().face;
        let settings = format!(
            "vouch {}\ndetector {}\nembedder {}\ndetection_threshold {}\nnms_iou {}\ndetect_max_side {}\nrefine {} {}\nflip_augment {}\nlimits {:?}",
            env!("CARGO_PKG_VERSION"),
            engine.face().detector().spec().id(),
            embedder.spec().id(),
            face.detection_threshold,
            face.nms_iou,
            face.detect_max_side,
            crate::face::detect::REFINE_BELOW,
            crate::face::detect::REFINE_FACE,
            face.flip_augment,
            engine.config().limits,
        );
        let key = hex::encode(&Sha256::digest(settings.as_bytes())[..8]);
        EmbeddingCache {
            dir: root.join(format!("face-{key}")),
        }
    }

    /// The folder this configuration's entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry for image bytes with this SHA-256, if cached and readable.
    pub fn get(&self, image_sha256: &[u8; 32]) -> Option<CachedFace> {
        let bytes = std::fs::read(self.entry(image_sha256)).ok()?;
        match bytes.split_first()? {
            (b'E', rest) if !rest.is_empty() && rest.len() % 4 == 0 => Some(CachedFace::Embedding(
                rest.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )),
            (b'F', rest) => {
                let text = std::str::from_utf8(rest).ok()?;
                let (kind, message) = text.split_once('\n')?;
                Some(CachedFace::Failure {
                    kind: kind.to_string(),
                    message: message.to_string(),
                })
            }
            _ => None,
        }
    }

    /// Stores an entry (atomically: a reader never sees half an entry).
    pub fn put(&self, image_sha256: &[u8; 32], face: &CachedFace) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io("creating the embedding cache", &self.dir, e))?;
        let mut bytes = Vec::new();
        match face {
            CachedFace::Embedding(values) => {
                bytes.push(b'E');
                for v in values {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
            CachedFace::Failure { kind, message } => {
                bytes.push(b'F');
                bytes.extend_from_slice(format!("{kind}\n{message}").as_bytes());
            }
        }
        let path = self.entry(image_sha256);
        // Embeddings are biometric data: owner-only, like the templates they could rebuild.
        crate::secure::write_atomic(
            &path,
            &bytes,
            crate::secure::Access::Private,
            crate::secure::Existing::Replace,
        )
        .map_err(|e| Error::io("writing the embedding cache", &path, e))
    }

    fn entry(&self, image_sha256: &[u8; 32]) -> PathBuf {
        self.dir.join(hex::encode(image_sha256))
    }
}

/// The cached form of an analysis outcome.
pub(crate) fn to_cached(outcome: &std::result::Result<Embedding, Error>) -> CachedFace {
    match outcome {
        Ok(e) => CachedFace::Embedding(e.values().to_vec()),
        Err(e) => CachedFace::Failure {
            kind: e.kind().to_string(),
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_damaged_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache {
            dir: dir.path().join("face-x"),
        };
        let key = [7u8; 32];
        assert_eq!(cache.get(&key), None);
        let e = CachedFace::Embedding(vec![0.5, -1.25, 3.0]);
        cache.put(&key, &e).unwrap();
        assert_eq!(cache.get(&key), Some(e));
        let f = CachedFace::Failure {
            kind: "no_face".into(),
            message: "no face found\nsecond line".into(),
        };
        cache.put(&[8u8; 32], &f).unwrap();
        assert_eq!(cache.get(&[8u8; 32]), Some(f));
        // A truncated embedding entry (not a whole number of floats) is a miss, not garbage.
        std::fs::write(cache.entry(&key), b"E\x01\x02").unwrap();
        assert_eq!(cache.get(&key), None);
        let leftovers = std::fs::read_dir(cache.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tmp")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
