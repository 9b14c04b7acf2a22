//! Scoring face pairs with an engine: each distinct image is detected and aligned once, then
//! embedded by every face model asked for, and every pair is scored by every model.
//!
//! Pairs are positions in an image table ([`PairTable`]) and scores are one `f32` column per
//! model ([`FaceScores`]): an evaluation of millions of pairs holds about 12 bytes per pair
//! and 4 per pair and model — no paths or structs per pair. Figures come from
//! [`FaceScores::subject_scores`], which labels each score with the identities it compares
//! for the subjects bootstrap. Images that cannot be acquired are kept apart (ISO/IEC
//! 19795-1): their pairs are not scored by any model, so every model is measured on the same
//! pairs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::embedding::Embedding;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::eval::cache::{CachedFace, EmbeddingCache, to_cached};
use crate::eval::metrics::VerificationSummary;
use crate::eval::pairs::LabelledPair;
use crate::face::{AlignedFace, Embedder, FaceImage};
use crate::stats::ScoreSet;
use crate::stats::bootstrap::SubjectScores;

/// Two images of a [`PairTable`] by position, and whether they show one person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexPair {
    /// First image (`a < b` in the tables this crate makes from folders).
    pub a: u32,
    /// Second image.
    pub b: u32,
    /// Same person?
    pub same: bool,
}

/// The images of an evaluation, each with its identity, and the pairs as positions into them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PairTable {
    /// Every image, once.
    pub images: Vec<PathBuf>,
    /// The identity of each image, numbered `0..identities`.
    pub identity: Vec<u32>,
    /// How many identities.
    pub identities: usize,
    /// The pairs.
    pub pairs: Vec<IndexPair>,
}

/// How [`PairTable::from_labelled`] tells whose an image is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityRule {
    /// The image's folder names the person (LFW's `NAME/NAME_0001.jpg`).
    ParentFolder,
    /// Images joined by genuine pairs are one person, directly or through others; an image
    /// in no genuine pair is a person of its own (pair lists that name no identities).
    GenuineComponents,
}

impl PairTable {
    /// The table of labelled pairs, in their order (pair `k` of the table is `pairs[k]`);
    /// images in path order. Fails (`InvalidInput`) beyond 2³² images.
    pub fn from_labelled(pairs: &[LabelledPair], rule: IdentityRule) -> Result<PairTable> {
        let mut position: BTreeMap<&Path, u32> = pairs
            .iter()
            .flat_map(|p| [p.a.as_path(), p.b.as_path()])
            .map(|p| (p, 0))
            .collect();
        if position.len() > u32::MAX as usize {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "an evaluation holds at most 2^32 images",
            ));
        }
        for (k, slot) in position.values_mut().enumerate() {
            *slot = k as u32;
        }
        let images: Vec<PathBuf> = position.keys().map(|p| p.to_path_buf()).collect();
        let index_pairs: Vec<IndexPair> = pairs
            .iter()
            .map(|p| IndexPair {
                a: position[p.a.as_path()],
                b: position[p.b.as_path()],
                same: p.same,
            })
            .collect();
        let (identity, identities) = match rule {
            IdentityRule::ParentFolder => {
                let mut names: BTreeMap<Option<&std::ffi::OsStr>, u32> = BTreeMap::new();
                let folders: Vec<_> = images
                    .iter()
                    .map(|i| i.parent().and_then(Path::file_name))
                    .collect();
                for f in &folders {
                    let next = names.len() as u32;
                    names.entry(*f).or_insert(next);
                }
                (folders.iter().map(|f| names[f]).collect(), names.len())
            }
            IdentityRule::GenuineComponents => genuine_components(images.len(), &index_pairs),
        };
        Ok(PairTable {
            images,
            identity,
            identities,
            pairs: index_pairs,
        })
    }

    /// Pair `k` with its image paths.
    pub fn labelled(&self, k: usize) -> LabelledPair {
        let p = self.pairs[k];
        LabelledPair {
            a: self.images[p.a as usize].clone(),
            b: self.images[p.b as usize].clone(),
            same: p.same,
        }
    }

    /// Genuine and impostor pairs.
    pub fn counts(&self) -> (usize, usize) {
        let genuine = self.pairs.iter().filter(|p| p.same).count();
        (genuine, self.pairs.len() - genuine)
    }
}

/// Identities as the connected components of the genuine pairs, numbered by their first
/// image.
fn genuine_components(images: usize, pairs: &[IndexPair]) -> (Vec<u32>, usize) {
    let mut parent: Vec<u32> = (0..images as u32).collect();
    fn root(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let up = parent[parent[x as usize] as usize];
            parent[x as usize] = up;
            x = up;
        }
        x
    }
    for p in pairs.iter().filter(|p| p.same) {
        let (ra, rb) = (root(&mut parent, p.a), root(&mut parent, p.b));
        if ra != rb {
            parent[ra.max(rb) as usize] = ra.min(rb);
        }
    }
    let mut number: BTreeMap<u32, u32> = BTreeMap::new();
    let identity = (0..images as u32)
        .map(|x| {
            let r = root(&mut parent, x);
            let next = number.len() as u32;
            *number.entry(r).or_insert(next)
        })
        .collect();
    (identity, number.len())
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

/// One image's embedding by each model, in the models' order, or why it has none.
pub type Acquired = std::result::Result<Vec<Embedding>, AcquisitionFailure>;

/// Embeds every image of `images` with each of `embedders`, spread over `threads` workers
/// (`on_image` is called after each image). Each image is decoded, detected and aligned once
/// (its largest face, as [`crate::face::FacePipeline::analyze`] chooses it) and the one
/// aligned crop goes to every model.
///
/// With `caches` (one per embedder, see [`EmbeddingCache::for_embedder`]), a model whose
/// embedding of the image is cached is not run, and an image every model has cached is not
/// even decoded. A failure to acquire is the image's, whichever model's cache holds it:
/// detection and alignment are shared.
pub fn embed_images(
    engine: &Engine,
    embedders: &[&Embedder],
    images: &[PathBuf],
    caches: Option<&[EmbeddingCache]>,
    threads: usize,
    on_image: &(dyn Fn() + Sync),
) -> Vec<Acquired> {
    crate::parallel::parallel_map(images, threads, on_image, |path| {
        acquire(engine, embedders, caches, path)
    })
}

fn acquire(
    engine: &Engine,
    embedders: &[&Embedder],
    caches: Option<&[EmbeddingCache]>,
    path: &Path,
) -> Acquired {
    let failure = |kind: String, message: String| AcquisitionFailure {
        image: path.to_path_buf(),
        kind,
        message,
    };
    let bytes = std::fs::read(path)
        .map_err(|e| Error::io("reading", path, e))
        .map_err(|e| failure(e.kind().to_string(), e.to_string()))?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let mut entries: Vec<Option<CachedFace>> = match caches {
        Some(caches) => caches.iter().map(|c| c.get(&digest)).collect(),
        None => vec![None; embedders.len()],
    };
    if entries.iter().any(Option::is_none)
        && !entries
            .iter()
            .any(|e| matches!(e, Some(CachedFace::Failure { .. })))
    {
        let aligned = FaceImage::decode(&bytes, &engine.config().limits)
            .and_then(|image| align_largest(engine, &image));
        for (m, entry) in entries.iter_mut().enumerate() {
            if entry.is_some() {
                continue;
            }
            let fresh = match &aligned {
                Ok(face) => to_cached(&embedders[m].embed(face)),
                Err(e) => CachedFace::Failure {
                    kind: e.kind().to_string(),
                    message: e.to_string(),
                },
            };
            if let Some(cache) = caches.and_then(|c| c.get(m)) {
                // A cache that cannot be written only costs time on the next run.
                if let Err(e) = cache.put(&digest, &fresh) {
                    tracing::warn!("embedding cache: {e}");
                }
            }
            *entry = Some(fresh);
        }
    }
    let mut embeddings = Vec::with_capacity(entries.len());
    for entry in entries.into_iter().flatten() {
        match entry {
            CachedFace::Embedding(values) => embeddings.push(
                Embedding::from_raw(values)
                    .map_err(|e| failure(e.kind().to_string(), e.to_string()))?,
            ),
            CachedFace::Failure { kind, message } => return Err(failure(kind, message)),
        }
    }
    Ok(embeddings)
}

/// The image's largest face, aligned: the detection and alignment of
/// [`crate::face::FacePipeline::analyze`], without its embedding.
fn align_largest(engine: &Engine, image: &FaceImage) -> Result<AlignedFace> {
    let faces = engine.face().detect(image)?;
    let face = crate::face::detect::largest(&faces).ok_or_else(|| {
        Error::new(
            ErrorKind::NoFace,
            "no face was found in the image; ask the customer to face the camera",
        )
    })?;
    crate::face::align(image, &face.landmarks)
}

/// Every pair of a [`PairTable`] scored by each model.
#[derive(Clone, Debug)]
pub struct FaceScores {
    /// The models (`name@sha256-prefix`), in column order.
    pub models: Vec<String>,
    /// One column per model, one cosine per pair of the table; NaN where the pair was not
    /// scored (one of its images failed to acquire).
    pub columns: Vec<Vec<f32>>,
    /// Images without an embedding.
    pub failures: Vec<AcquisitionFailure>,
    /// Pairs scored (by every model).
    pub pairs_scored: usize,
    /// Pairs left out because an image failed.
    pub pairs_skipped: usize,
}

/// Pairs scored between two calls of the progress callback.
const PROGRESS_STEP: usize = 1 << 16;

/// Scores every pair of `table` with each model's embeddings (`acquired[i]` holds image
/// `i`'s, in the order of `models`), spread over `threads`; `on_pairs(n)` reports progress
/// every few tens of thousands of pairs. Consumes the embeddings: they are wiped once the
/// pairs are scored.
pub fn score_table(
    table: &PairTable,
    acquired: Vec<Acquired>,
    models: Vec<String>,
    threads: usize,
    on_pairs: &(dyn Fn(usize) + Sync),
) -> FaceScores {
    let n = table.pairs.len();
    let mut columns = vec![vec![f32::NAN; n]; models.len()];
    let per_thread = n.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let mut rest: Vec<&mut [f32]> = columns.iter_mut().map(Vec::as_mut_slice).collect();
        let mut start = 0;
        while start < n {
            let len = per_thread.min(n - start);
            let mut mine = Vec::with_capacity(rest.len());
            for column in &mut rest {
                let (head, tail) = std::mem::take(column).split_at_mut(len);
                mine.push(head);
                *column = tail;
            }
            let pairs = &table.pairs[start..start + len];
            let acquired = &acquired;
            scope.spawn(move || {
                for (k, p) in pairs.iter().enumerate() {
                    if let (Ok(a), Ok(b)) = (&acquired[p.a as usize], &acquired[p.b as usize]) {
                        for (m, column) in mine.iter_mut().enumerate() {
                            if let Ok(score) = a[m].cosine(&b[m]) {
                                column[k] = score;
                            }
                        }
                    }
                    if (k + 1) % PROGRESS_STEP == 0 {
                        on_pairs(PROGRESS_STEP);
                    }
                }
                on_pairs(pairs.len() % PROGRESS_STEP);
            });
            start += len;
        }
    });
    // A pair counts as scored only when every model scored it (a model's cosine fails only
    // on embeddings of different sizes, never for one model).
    for p in 0..n {
        if columns.iter().any(|c| c[p].is_nan()) {
            for c in &mut columns {
                c[p] = f32::NAN;
            }
        }
    }
    let pairs_scored = columns
        .first()
        .map_or(0, |c| c.iter().filter(|s| !s.is_nan()).count());
    let failures = acquired.into_iter().filter_map(|a| a.err()).collect();
    FaceScores {
        models,
        columns,
        failures,
        pairs_scored,
        pairs_skipped: n - pairs_scored,
    }
}

impl FaceScores {
    /// Model `m`'s score of pair `p`, if scored.
    pub fn score(&self, m: usize, p: usize) -> Option<f64> {
        let s = self.columns[m][p];
        (!s.is_nan()).then_some(f64::from(s))
    }

    /// Whether pair `p` was scored.
    pub fn scored(&self, p: usize) -> bool {
        self.columns.first().is_some_and(|c| !c[p].is_nan())
    }

    /// The scores `score(p)` of every scored pair of `table`, each labelled with the
    /// identities it compares (a genuine pair with its one identity, an impostor pair with
    /// both): the input of [`VerificationSummary::of_subjects`]. `score` may be one model's
    /// column or a fusion of them.
    pub fn subject_scores(
        &self,
        table: &PairTable,
        score: impl Fn(usize) -> Option<f64>,
    ) -> Result<SubjectScores> {
        let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
        for (p, pair) in table.pairs.iter().enumerate() {
            let Some(s) = score(p) else { continue };
            let (a, b) = (
                table.identity[pair.a as usize],
                table.identity[pair.b as usize],
            );
            if pair.same {
                genuine.push((s, a));
            } else {
                impostor.push((s, [a, b]));
            }
        }
        SubjectScores::new(genuine, impostor, table.identities)
    }
}

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

/// Scores a short list of labelled pairs with the engine's embedder alone (calibration and
/// small lists): [`embed_images`] and [`score_table`] with one model, the pairs returned
/// with their paths. `on_image` is called after each distinct image.
pub fn score_pairs(
    engine: &Engine,
    pairs: &[LabelledPair],
    cache: Option<&EmbeddingCache>,
    threads: usize,
    on_image: &(dyn Fn() + Sync),
) -> PairScores {
    // Paths come from a list already in memory: far below 2^32 images.
    let table =
        PairTable::from_labelled(pairs, IdentityRule::GenuineComponents).unwrap_or_default();
    let embedder = engine.face().embedder();
    let acquired = embed_images(
        engine,
        &[embedder],
        &table.images,
        cache.map(std::slice::from_ref),
        threads,
        on_image,
    );
    let scores = score_table(
        &table,
        acquired,
        vec![embedder.spec().id()],
        threads,
        &|_| {},
    );
    let pairs = (0..table.pairs.len())
        .filter_map(|k| {
            let score = scores.score(0, k)?;
            let p = table.labelled(k);
            Some(ScoredPair {
                index: k,
                a: p.a,
                b: p.b,
                same: p.same,
                score,
            })
        })
        .collect();
    PairScores {
        pairs,
        failures: scores.failures,
        pairs_skipped: scores.pairs_skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str, same: bool) -> LabelledPair {
        LabelledPair {
            a: a.into(),
            b: b.into(),
            same,
        }
    }

    #[test]
    fn a_table_keeps_the_list_order_and_finds_identities() {
        let list = [
            pair("x/p/2.jpg", "x/p/1.jpg", true),
            pair("x/q/1.jpg", "x/p/1.jpg", false),
            pair("x/q/1.jpg", "x/q/3.jpg", true),
            pair("x/r/1.jpg", "x/q/3.jpg", false),
            pair("x/q/3.jpg", "x/p/2.jpg", false),
        ];
        let table = PairTable::from_labelled(&list, IdentityRule::ParentFolder).unwrap();
        assert_eq!(table.images.len(), 5);
        assert!(table.images.is_sorted());
        for (k, p) in list.iter().enumerate() {
            assert_eq!(&table.labelled(k), p);
        }
        assert_eq!(table.identities, 3);
        assert_eq!(table.identity, [0, 0, 1, 1, 2]);
        assert_eq!(table.counts(), (2, 3));
        // Without folders, genuine pairs join images: p/1–p/2, q/1–q/3, and r/1 alone.
        let table = PairTable::from_labelled(&list, IdentityRule::GenuineComponents).unwrap();
        assert_eq!(table.identities, 3);
        assert_eq!(table.identity, [0, 0, 1, 1, 2]);
        let chained = [
            pair("a.jpg", "b.jpg", true),
            pair("c.jpg", "d.jpg", true),
            pair("b.jpg", "c.jpg", true),
            pair("e.jpg", "a.jpg", false),
        ];
        let table = PairTable::from_labelled(&chained, IdentityRule::GenuineComponents).unwrap();
        assert_eq!(table.identity, [0, 0, 0, 0, 1]);
        assert_eq!(table.identities, 2);
    }

    #[test]
    fn unscored_pairs_are_left_out_of_the_subject_scores() {
        let list = [
            pair("p/1.jpg", "p/2.jpg", true),
            pair("p/1.jpg", "q/1.jpg", false),
            pair("p/2.jpg", "q/1.jpg", false),
            pair("q/1.jpg", "q/2.jpg", true),
        ];
        let table = PairTable::from_labelled(&list, IdentityRule::ParentFolder).unwrap();
        let scores = FaceScores {
            models: vec!["m@1".into()],
            columns: vec![vec![0.9, 0.2, f32::NAN, 0.8]],
            failures: Vec::new(),
            pairs_scored: 3,
            pairs_skipped: 1,
        };
        assert!(scores.scored(0) && !scores.scored(2));
        assert_eq!(scores.score(0, 1), Some(f64::from(0.2f32)));
        let labelled = scores
            .subject_scores(&table, |p| scores.score(0, p))
            .unwrap();
        assert_eq!(labelled.subjects(), 2);
        assert_eq!(labelled.set().genuine().len(), 2);
        assert_eq!(labelled.set().impostor(), [f64::from(0.2f32)]);
    }
}
