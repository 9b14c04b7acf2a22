//! Scoring labelled face pairs with an engine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use sha2::{Digest, Sha256};

use crate::embedding::Embedding;
use crate::engine::Engine;
use crate::error::Result;
use crate::eval::cache::{CachedFace, EmbeddingCache, to_cached};
use crate::eval::metrics::VerificationSummary;
use crate::eval::pairs::LabelledPair;
use crate::face::FaceImage;
use crate::stats::ScoreSet;

/// One scored pair.
#[derive(Clone, Debug, Serialize)]
pub struct ScoredPair {
    /// Position of the pair in the input list.
    pub index: usize,
    /// First image.
    pub a: PathBuf,
    /// Second image.
    pub b: PathBuf,
    /// Same person?
    pub same: bool,
    /// Cosine similarity.
    pub score: f64,
}

/// An image that could not be turned into an embedding (failure to acquire, reported apart
/// from match errors as ISO/IEC 19795-1 asks).
#[derive(Clone, Debug, Serialize)]
pub struct AcquisitionFailure {
    /// The image.
    pub image: PathBuf,
    /// The error kind (`no_face`, `image_decode`, …).
    pub kind: String,
    /// The error message.
    pub message: String,
}

/// Scores of every pair whose two images were acquired, and the images that were not.
#[derive(Clone, Debug, Serialize)]
pub struct PairScores {
    /// Scored pairs, in input order.
    pub pairs: Vec<ScoredPair>,
    /// Images without an embedding; pairs using them are left out of `pairs`.
    pub failures: Vec<AcquisitionFailure>,
    /// Pairs left out because an image failed.
    pub pairs_skipped: usize,
}

impl PairScores {
    /// The genuine and impostor scores.
    pub fn score_set(&self) -> Result<ScoreSet> {
        let (genuine, impostor): (Vec<_>, Vec<_>) = self.pairs.iter().partition(|p| p.same);
        ScoreSet::new(
            genuine.iter().map(|p| p.score).collect(),
            impostor.iter().map(|p| p.score).collect(),
        )
    }

    /// AUC, EER and FNMR at the standard FMR targets.
    pub fn summary(&self) -> Result<VerificationSummary> {
        Ok(VerificationSummary::of(&self.score_set()?))
    }
}

/// Embeds every distinct image once (spread over `threads` workers; `on_image` is called after
/// each), then scores every pair. With a cache, images analysed before with the same pipeline
/// settings are not analysed again (see [`crate::eval::cache`]).
pub fn score_pairs(
    engine: &Engine,
    pairs: &[LabelledPair],
    cache: Option<&EmbeddingCache>,
    threads: usize,
    on_image: &(dyn Fn() + Sync),
) -> PairScores {
    let images: Vec<PathBuf> = pairs
        .iter()
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let outcomes = crate::parallel::parallel_map(&images, threads, on_image, |path| {
        let failure = |kind: String, message: String| AcquisitionFailure {
            image: path.clone(),
            kind,
            message,
        };
        let bytes = std::fs::read(path)
            .map_err(|e| crate::error::Error::io("reading", path, e))
            .map_err(|e| failure(e.kind().to_string(), e.to_string()))?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let cached = match cache.and_then(|c| c.get(&digest)) {
            Some(hit) => hit,
            None => {
                let outcome = FaceImage::decode(&bytes, &engine.config().limits)
                    .and_then(|img| engine.face().analyze(&img))
                    .map(|s| s.embedding);
                let entry = to_cached(&outcome);
                if let Some(c) = cache {
                    // A cache that cannot be written only costs time on the next run.
                    if let Err(e) = c.put(&digest, &entry) {
                        tracing::warn!("embedding cache: {e}");
                    }
                }
                entry
            }
        };
        match cached {
            CachedFace::Embedding(values) => Embedding::from_raw(values)
                .map_err(|e| failure(e.kind().to_string(), e.to_string())),
            CachedFace::Failure { kind, message } => Err(failure(kind, message)),
        }
    });
    let results: BTreeMap<PathBuf, std::result::Result<Embedding, AcquisitionFailure>> =
        images.iter().cloned().zip(outcomes).collect();
    let mut scored = Vec::new();
    let mut skipped = 0;
    for (index, pair) in pairs.iter().enumerate() {
        match (&results[&pair.a], &results[&pair.b]) {
            (Ok(a), Ok(b)) => match a.cosine(b) {
                Ok(score) => scored.push(ScoredPair {
                    index,
                    a: pair.a.clone(),
                    b: pair.b.clone(),
                    same: pair.same,
                    score: f64::from(score),
                }),
                Err(_) => skipped += 1,
            },
            _ => skipped += 1,
        }
    }
    let failures = results.into_values().filter_map(|r| r.err()).collect();
    PairScores {
        pairs: scored,
        failures,
        pairs_skipped: skipped,
    }
}
