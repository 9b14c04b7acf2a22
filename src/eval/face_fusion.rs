//! Several face models' scores of one pair fused into one ([`crate::score::ScoreFusion`]:
//! standardised by the impostors, then a logistic regression), measured honestly: no pair is
//! scored by a fusion fitted on a pair that shares one of its people.
//!
//! A folder per identity or a pair list: the identities are dealt into [`IDENTITY_FOLDS`]
//! folds (in their order, round robin). A pair within one fold is scored by the fusion fitted
//! on every pair of the other folds; a pair across two folds (always an impostor pair) by the
//! fusion fitted on every pair of the remaining folds. With two folds, the pairs across them
//! could only be scored by a fusion that saw one of their people, or left out; with four,
//! every pair is scored, by one of 4 + 6 fits. LFW: its folds share no person, so fold `k`'s
//! pairs are scored by the fusion fitted on the other folds, and the fused score's 10-fold
//! accuracy chooses fold `k`'s threshold on the other folds' pairs scored by that same fusion.
//!
//! Each fit uses every genuine pair it may and the impostor pairs, a seeded sample of
//! [`MAX_FIT_IMPOSTORS`] beyond that (fitting time and memory stay bounded at any size); its
//! intercept is moved by its training data's log prior odds, so every fit outputs a
//! log-likelihood ratio and fits trained on different mixes of genuine and impostor pairs score
//! alike. Measures only: the calibration a deployment uses is `vouch calibrate`'s.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::face::{FaceScores, PairTable};
use crate::eval::lfw::{FoldAccuracy, fold_accuracy};
use crate::score::ScoreFusion;
use crate::stats::SplitMix64;

/// Folds the identities are dealt into.
pub const IDENTITY_FOLDS: usize = 4;

/// Impostor pairs a fit uses at most (a seeded sample beyond).
pub const MAX_FIT_IMPOSTORS: usize = 1_000_000;

/// Seed of the impostor samples of fits.
const FIT_SEED: u64 = 0x6675_7369_6f6e_5f66; // "fusion_f"

/// One fitted fusion and the pairs it scored.
#[derive(Clone, Debug, Serialize)]
pub struct FusionFit {
    /// The folds left out of the fit: it scores the pairs whose identities lie in exactly
    /// these folds (one fold, or two for pairs across folds; LFW: the fold).
    pub held_out: Vec<usize>,
    /// Genuine pairs fitted on.
    pub genuine: usize,
    /// Impostor pairs fitted on.
    pub impostor: usize,
    /// Impostor pairs it could have been fitted on (more than `impostor` when sampled).
    pub impostor_available: usize,
    /// Pairs it scored.
    pub pairs_scored: usize,
    /// The fusion (its bias already a log-likelihood ratio's).
    pub fusion: ScoreFusion,
}

/// The fused score of every scored pair, and the fits that made it.
#[derive(Clone, Debug, Serialize)]
pub struct FaceFusion {
    /// The models fused (`name@sha256-prefix`), in the order of their scores.
    pub models: Vec<String>,
    /// How pairs were assigned to fits, in words (for reports).
    pub protocol: String,
    /// Every fit.
    pub fits: Vec<FusionFit>,
    /// The fused score of each pair of the table; NaN where the pair was not scored.
    #[serde(skip)]
    pub fused: Vec<f64>,
}

impl FaceFusion {
    /// The fused score of pair `p`, if scored.
    pub fn score(&self, p: usize) -> Option<f64> {
        let s = self.fused[p];
        (!s.is_nan()).then_some(s)
    }
}

/// Fuses the models of `scores` over the pairs of `table` by cross-fitting over identity
/// folds (see the module documentation). Errors (`InvalidInput`) with fewer than two models,
/// or when a fit lacks genuine or impostor pairs (too few identities).
pub fn fuse_across_identities(table: &PairTable, scores: &FaceScores) -> Result<FaceFusion> {
    let folds = IDENTITY_FOLDS;
    let fold = |image: u32| (table.identity[image as usize] as usize % folds) as u8;
    let key = |p: usize| {
        let pair = table.pairs[p];
        let (x, y) = (fold(pair.a), fold(pair.b));
        [x.min(y), x.max(y)]
    };
    let protocol = format!(
        "cross-fitted over identities: the {} identities dealt into {folds} folds (in order, \
         round robin); a pair is scored by the fusion fitted on every pair whose two \
         identities both lie outside the pair's fold (a pair within one fold) or two folds (a \
         pair across folds), so no pair is scored by a fusion that saw either of its people",
        table.identities
    );
    cross_fit(table, scores, &key, protocol)
}

/// Scores every pair with a fusion fitted elsewhere (the fused calibration in force, which
/// a deployment's fusing tiers use): no fit on these pairs, so nothing of them was seen. The
/// fusion's models must be the scores' models in order (their embedding spaces: `spaces`).
pub fn fuse_as_calibrated(
    table: &PairTable,
    scores: &FaceScores,
    spaces: &[String],
    calibration: &crate::score::Calibration,
) -> Result<FaceFusion> {
    let Some(fusion) = &calibration.fusion else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the calibration of {} holds no fusion", calibration.model),
        ));
    };
    if fusion.models != spaces {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the calibration fuses {:?}; these scores are of {spaces:?}",
                fusion.models
            ),
        ));
    }
    let models = scores.models.len();
    let mut row = vec![0.0; models];
    let fused = (0..table.pairs.len())
        .map(|p| {
            if !scores.scored(p) {
                return f64::NAN;
            }
            for (m, v) in row.iter_mut().enumerate() {
                *v = scores.score(m, p).unwrap_or(f64::NAN);
            }
            fusion.score(&row)
        })
        .collect();
    Ok(FaceFusion {
        models: scores.models.clone(),
        protocol: format!(
            "the fusion of the calibration in force ({}; {}), fitted on other data: {}",
            calibration.model,
            fusion.describe(),
            calibration.source
        ),
        fits: Vec::new(),
        fused,
    })
}

/// Fuses the models of `scores` over LFW's folds: fold `k`'s pairs scored by the fusion
/// fitted on every other fold (`fold_of_pair[p]` is pair `p`'s fold).
pub fn fuse_across_lfw_folds(
    table: &PairTable,
    scores: &FaceScores,
    fold_of_pair: &[usize],
) -> Result<FaceFusion> {
    let key = |p: usize| [fold_of_pair[p] as u8; 2];
    if fold_of_pair.iter().any(|&f| f > usize::from(u8::MAX)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a fused LFW evaluation takes at most 256 folds",
        ));
    }
    let protocol = "LFW's folds (which share no person): each fold's pairs scored by the \
                    fusion fitted on the other folds' pairs"
        .to_string();
    cross_fit(table, scores, &key, protocol)
}

/// The fits of every key present among the scored pairs, and the fused scores. A key is the
/// pair of folds a pair's people lie in (equal for a pair within one fold); the fit of a key
/// uses the pairs none of whose folds are in the key.
fn cross_fit(
    table: &PairTable,
    scores: &FaceScores,
    key: &dyn Fn(usize) -> [u8; 2],
    protocol: String,
) -> Result<FaceFusion> {
    let models = scores.models.len();
    if models < 2 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a fusion needs the scores of two models or more",
        ));
    }
    let n = table.pairs.len();
    let keys: BTreeSet<[u8; 2]> = (0..n).filter(|&p| scores.scored(p)).map(key).collect();
    let mut fused = vec![f64::NAN; n];
    let mut fits = Vec::with_capacity(keys.len());
    let mut row = vec![0.0; models];
    for (k, held) in keys.iter().enumerate() {
        let outside = |p: usize| {
            let [x, y] = key(p);
            !held.contains(&x) && !held.contains(&y)
        };
        let impostor_available = (0..n)
            .filter(|&p| scores.scored(p) && !table.pairs[p].same && outside(p))
            .count();
        let keep_rate = MAX_FIT_IMPOSTORS as f64 / impostor_available.max(1) as f64;
        let mut rng = SplitMix64::new(FIT_SEED ^ k as u64);
        let (mut values, mut labels) = (Vec::new(), Vec::new());
        for p in (0..n).filter(|&p| scores.scored(p) && outside(p)) {
            let same = table.pairs[p].same;
            // Bernoulli sampling of impostors, only when there are more than the cap.
            if !same && keep_rate < 1.0 {
                let uniform = rng.below(1 << 53) as f64 / (1u64 << 53) as f64;
                if uniform >= keep_rate {
                    continue;
                }
            }
            values.extend((0..models).map(|m| scores.score(m, p).unwrap_or(f64::NAN)));
            labels.push(same);
        }
        let rows: Vec<(&[f64], bool)> = values.chunks(models).zip(labels.iter().copied()).collect();
        let genuine = labels.iter().filter(|&&g| g).count();
        let impostor = labels.len() - genuine;
        let held_out: Vec<usize> = held
            .iter()
            .map(|&f| usize::from(f))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let failed = |what: String| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the fusion fitted without fold(s) {held_out:?} has {genuine} genuine and \
                     {impostor} impostor pairs: {what}; a fusion needs more identities"
                ),
            )
        };
        if genuine == 0 || impostor == 0 {
            return Err(failed("nothing to fit".into()));
        }
        let mut fusion =
            ScoreFusion::fit(&scores.models, &rows).map_err(|e| failed(e.message().to_string()))?;
        // Log-odds minus the training prior's log-odds: a log-likelihood ratio.
        fusion.bias -= (genuine as f64 / impostor as f64).ln();
        let mut pairs_scored = 0;
        for p in (0..n).filter(|&p| scores.scored(p) && key(p) == *held) {
            for (m, v) in row.iter_mut().enumerate() {
                *v = scores.score(m, p).unwrap_or(f64::NAN);
            }
            fused[p] = fusion.score(&row);
            pairs_scored += 1;
        }
        fits.push(FusionFit {
            held_out,
            genuine,
            impostor,
            impostor_available,
            pairs_scored,
            fusion,
        });
    }
    Ok(FaceFusion {
        models: scores.models.clone(),
        protocol,
        fits,
        fused,
    })
}

/// LFW's 10-fold accuracy of `score` (one model's column), `fold_of_pair[p]` being pair
/// `p`'s fold among `folds`.
pub fn lfw_accuracy(
    table: &PairTable,
    fold_of_pair: &[usize],
    folds: usize,
    score: impl Fn(usize) -> Option<f64>,
) -> Result<FoldAccuracy> {
    let rows: Vec<(usize, bool, f64)> = (0..table.pairs.len())
        .filter_map(|p| Some((fold_of_pair[p], table.pairs[p].same, score(p)?)))
        .collect();
    fold_accuracy(&rows, folds)
}

/// LFW's 10-fold accuracy of the fused score of [`fuse_across_lfw_folds`], the fusion as
/// well as the threshold learned without the test fold: fold `k`'s threshold is chosen on the
/// other folds' pairs scored by the fusion fitted on them, and fold `k` is then judged with
/// both.
pub fn lfw_fused_accuracy(
    table: &PairTable,
    scores: &FaceScores,
    fusion: &FaceFusion,
    fold_of_pair: &[usize],
    folds: usize,
) -> Result<FoldAccuracy> {
    let models = scores.models.len();
    let mut per_fold = vec![None; folds];
    let mut pairs = vec![0; folds];
    let mut thresholds = vec![f64::NAN; folds];
    let mut row = vec![0.0; models];
    for fit in &fusion.fits {
        let &[k] = fit.held_out.as_slice() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the fusion was not fitted fold by fold on LFW's folds",
            ));
        };
        let rows: Vec<(usize, bool, f64)> = (0..table.pairs.len())
            .filter(|&p| scores.scored(p))
            .map(|p| {
                for (m, v) in row.iter_mut().enumerate() {
                    *v = scores.score(m, p).unwrap_or(f64::NAN);
                }
                (fold_of_pair[p], table.pairs[p].same, fit.fusion.score(&row))
            })
            .collect();
        let judged = fold_accuracy(&rows, folds)?;
        per_fold[k] = judged.per_fold[k];
        pairs[k] = judged.pairs[k];
        thresholds[k] = judged.thresholds[k];
    }
    let measured: Vec<f64> = per_fold.iter().flatten().copied().collect();
    if measured.len() < 2 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the fold protocol needs scored pairs in at least 2 folds",
        ));
    }
    let n = measured.len() as f64;
    let mean = measured.iter().sum::<f64>() / n;
    let std = (measured.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    Ok(FoldAccuracy {
        per_fold,
        pairs,
        thresholds,
        mean,
        std,
        std_error: std / n.sqrt(),
        measured_folds: measured.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::face::IndexPair;

    /// `people` identities of `per` images each, every pair; two models whose scores are
    /// noisy in different ways, so that their fusion beats either.
    fn dataset(people: u32, per: u32) -> (PairTable, FaceScores) {
        let images = people * per;
        let identity: Vec<u32> = (0..images).map(|i| i / per).collect();
        let mut rng = SplitMix64::new(3);
        let mut noise = move || rng.below(1_000_000) as f64 / 1e6 - 0.5;
        let (mut pairs, mut m0, mut m1) = (Vec::new(), Vec::new(), Vec::new());
        for a in 0..images {
            for b in a + 1..images {
                let same = identity[a as usize] == identity[b as usize];
                let base = if same { 0.6 } else { 0.2 };
                pairs.push(IndexPair { a, b, same });
                m0.push((base + 0.5 * noise()) as f32);
                m1.push((3.0 * base + 1.5 * noise()) as f32);
            }
        }
        let n = pairs.len();
        let table = PairTable {
            images: (0..images).map(|i| format!("{i}.jpg").into()).collect(),
            identity,
            identities: people as usize,
            pairs,
        };
        let scores = FaceScores {
            models: vec!["a@1".into(), "b@2".into()],
            columns: vec![m0, m1],
            failures: Vec::new(),
            pairs_scored: n,
            pairs_skipped: 0,
        };
        (table, scores)
    }

    #[test]
    fn no_pair_is_scored_by_a_fusion_that_saw_its_people() {
        let (table, mut scores) = dataset(12, 4);
        // One pair not scored: it gets no fused score.
        scores.columns[0][5] = f32::NAN;
        scores.columns[1][5] = f32::NAN;
        let fusion = fuse_across_identities(&table, &scores).unwrap();
        // 4 within-fold fits and 6 across.
        assert_eq!(fusion.fits.len(), 10);
        assert!(fusion.score(5).is_none());
        let scored = fusion.fits.iter().map(|f| f.pairs_scored).sum::<usize>();
        assert_eq!(scored, table.pairs.len() - 1);
        assert_eq!(
            (0..table.pairs.len())
                .filter(|&p| fusion.score(p).is_some())
                .count(),
            scored
        );
        let fold = |i: u32| table.identity[i as usize] as usize % IDENTITY_FOLDS;
        for fit in &fusion.fits {
            // The fit saw no identity of the pairs it scored: every fitted pair lies outside
            // the held-out folds, and every pair it scored inside them.
            let fitted = (0..table.pairs.len())
                .filter(|&p| scores.scored(p))
                .map(|p| table.pairs[p])
                .filter(|p| {
                    !fit.held_out.contains(&fold(p.a)) && !fit.held_out.contains(&fold(p.b))
                })
                .count();
            assert_eq!(fitted, fit.genuine + fit.impostor);
            assert_eq!(fit.impostor, fit.impostor_available);
            assert!(
                fit.fusion.weights.iter().all(|w| *w > 0.0),
                "{:?}",
                fit.fusion
            );
        }
        // The fusion separates better than either model (its scores are a sum of evidence).
        let auc_of = |score: &dyn Fn(usize) -> Option<f64>| {
            let s = scores.subject_scores(&table, score).unwrap();
            crate::eval::auc(s.set())
        };
        let fused = auc_of(&|p| fusion.score(p));
        assert!(fused > auc_of(&|p| scores.score(0, p)), "{fused}");
        assert!(fused > auc_of(&|p| scores.score(1, p)), "{fused}");
        // Too few people: a fit without genuine pairs is an error, not a silent figure.
        let (table, scores) = dataset(2, 3);
        assert_eq!(
            fuse_across_identities(&table, &scores).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn lfw_folds_fit_without_the_test_fold() {
        let (table, scores) = dataset(10, 3);
        // Five folds of two people each (identity / 2).
        let fold_of_pair: Vec<usize> = table
            .pairs
            .iter()
            .map(|p| table.identity[p.a as usize] as usize / 2)
            .collect();
        // Only within-fold pairs, as LFW's lists are.
        let keep: Vec<usize> = (0..table.pairs.len())
            .filter(|&p| {
                let pair = table.pairs[p];
                table.identity[pair.a as usize] / 2 == table.identity[pair.b as usize] / 2
            })
            .collect();
        let table = PairTable {
            pairs: keep.iter().map(|&p| table.pairs[p]).collect(),
            ..table
        };
        let scores = FaceScores {
            columns: scores
                .columns
                .iter()
                .map(|c| keep.iter().map(|&p| c[p]).collect())
                .collect(),
            pairs_scored: keep.len(),
            ..scores
        };
        let fold_of_pair: Vec<usize> = keep.iter().map(|&p| fold_of_pair[p]).collect();
        let fusion = fuse_across_lfw_folds(&table, &scores, &fold_of_pair).unwrap();
        assert_eq!(fusion.fits.len(), 5);
        for (k, fit) in fusion.fits.iter().enumerate() {
            assert_eq!(fit.held_out, [k]);
            let outside = fold_of_pair.iter().filter(|&&f| f != k).count();
            assert_eq!(fit.genuine + fit.impostor, outside);
        }
        let accuracy = lfw_fused_accuracy(&table, &scores, &fusion, &fold_of_pair, 5).unwrap();
        assert_eq!(accuracy.measured_folds, 5);
        assert_eq!(accuracy.pairs.iter().sum::<usize>(), table.pairs.len());
        assert!(accuracy.mean > 0.5, "{accuracy:?}");
        let single = lfw_accuracy(&table, &fold_of_pair, 5, |p| scores.score(0, p)).unwrap();
        assert_eq!(single.measured_folds, 5);
    }
}
