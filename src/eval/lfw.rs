//! The Labeled Faces in the Wild (LFW) verification protocol: its `pairs.txt` lists and the
//! 10-fold accuracy it reports.
//!
//! This module owns parsing the list and the fold protocol's threshold choice; it never opens
//! an image (a missing image is a failure to acquire, counted by [`crate::eval::face`], not a
//! malformed list), and it only refuses lists that do not say what the protocol needs.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::face::ScoredPair;
use crate::eval::pairs::LabelledPair;

/// The pairs of an LFW list, fold by fold, in file order.
///
/// Each fold holds its genuine pairs first, then its impostor pairs, as the list does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LfwPairs {
    /// One list of pairs per fold (a single fold for `pairsDevTrain.txt`-style lists).
    pub folds: Vec<Vec<LabelledPair>>,
}

impl LfwPairs {
    /// Every pair with the index of its fold, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &LabelledPair)> {
        self.folds
            .iter()
            .enumerate()
            .flat_map(|(k, fold)| fold.iter().map(move |p| (k, p)))
    }

    /// Every pair of every fold, in file order: the list to hand to
    /// [`crate::eval::face::score_pairs`].
    pub fn all_pairs(&self) -> Vec<LabelledPair> {
        self.iter().map(|(_, p)| p.clone()).collect()
    }

    /// Attaches its fold index to each scored pair, giving the input of [`fold_accuracy`].
    ///
    /// `scored` must be what [`crate::eval::face::score_pairs`] returned for
    /// [`LfwPairs::all_pairs`] (each scored pair carries its position in that list); a position
    /// outside the list is an `InvalidInput` error.
    pub fn fold_scores(&self, scored: &[ScoredPair]) -> Result<Vec<(usize, bool, f64)>> {
        let folds: Vec<usize> = self.iter().map(|(k, _)| k).collect();
        scored
            .iter()
            .map(|s| {
                folds
                    .get(s.index)
                    .map(|&k| (k, s.same, s.score))
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::InvalidInput,
                            format!(
                                "scored pair #{} is not in this LFW list of {} pairs; score the list's own all_pairs()",
                                s.index,
                                folds.len()
                            ),
                        )
                    })
            })
            .collect()
    }
}

/// Reads an LFW pair list and resolves its images under `image_root` as
/// `NAME/NAME_0001.jpg` (the index zero-padded to four digits).
///
/// The first line is either `FOLDS N` (`pairs.txt`: `10 300`) or a single `N`
/// (`pairsDevTrain.txt`, `pairsDevTest.txt`: one fold). Each fold then holds `N` genuine lines
/// `name i j` followed by `N` impostor lines `name1 i name2 j`, fields separated by tabs or
/// spaces. Blank lines are skipped anywhere.
///
/// Images are not opened, so a missing image is not an error here. A malformed list is a
/// `Dataset` error saying `FILE:LINE: what is wrong`: an empty file, a bad header, a line with
/// the wrong number of fields, an index that is not a positive integer, a name that is not a
/// single folder name, a genuine pair of an image with itself, an impostor pair naming one
/// person twice, a line of the wrong kind for its block, fewer lines than the header promises,
/// or lines after the last fold.
pub fn read_lfw_pairs(pairs_txt: &Path, image_root: &Path) -> Result<LfwPairs> {
    let bytes =
        std::fs::read(pairs_txt).map_err(|e| Error::io("reading LFW pair list", pairs_txt, e))?;
    let bad = |line: usize, what: String| {
        Error::new(
            ErrorKind::Dataset,
            format!("{}:{line}: {what}", pairs_txt.display()),
        )
    };
    let text =
        String::from_utf8(bytes).map_err(|_| bad(1, "the pair list is not UTF-8 text".into()))?;
    // Line numbers count blank lines too, so that they match what an editor shows.
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());

    let Some((header_line, header)) = lines.next() else {
        return Err(bad(1, "the pair list is empty".into()));
    };
    let (folds, per_side) = parse_header(header).ok_or_else(|| {
        bad(
            header_line,
            format!(
                "the header {:?} should be `FOLDS N` (e.g. `10 300`) or a single `N`, \
                 positive integers",
                header.trim()
            ),
        )
    })?;

    let mut out = Vec::with_capacity(folds);
    let mut last_line = header_line;
    for fold in 0..folds {
        let mut pairs = Vec::with_capacity(2 * per_side);
        for same in [true, false] {
            let kind = if same { "genuine" } else { "impostor" };
            for nth in 1..=per_side {
                let Some((number, line)) = lines.next() else {
                    return Err(bad(
                        last_line + 1,
                        format!(
                            "the list ends early: fold {} of {folds} needs {per_side} {kind} \
                             pairs and has {}; the header promises {folds} fold(s) of \
                             {per_side} genuine then {per_side} impostor lines",
                            fold + 1,
                            nth - 1
                        ),
                    ));
                };
                last_line = number;
                let fields: Vec<&str> = line.split_whitespace().collect();
                let pair = parse_pair(&fields, same, image_root).map_err(|what| {
                    bad(
                        number,
                        format!("{kind} pair {nth} of fold {}: {what}", fold + 1),
                    )
                })?;
                pairs.push(pair);
            }
        }
        out.push(pairs);
    }
    if let Some((number, _)) = lines.next() {
        return Err(bad(
            number,
            format!(
                "unexpected line after the last fold: the header promises {folds} fold(s) of \
                 {per_side} genuine and {per_side} impostor pairs; fix the header or remove \
                 the extra lines"
            ),
        ));
    }
    Ok(LfwPairs { folds: out })
}

/// `FOLDS N` or `N`, both positive.
fn parse_header(header: &str) -> Option<(usize, usize)> {
    let numbers = header
        .split_whitespace()
        .map(|f| f.parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<Vec<_>>>()?;
    match numbers[..] {
        [n] => Some((1, n)),
        [folds, n] => Some((folds, n)),
        _ => None,
    }
}

/// One genuine (`name i j`) or impostor (`name1 i name2 j`) line; the error says what is
/// wrong with it.
fn parse_pair(
    fields: &[&str],
    same: bool,
    root: &Path,
) -> std::result::Result<LabelledPair, String> {
    let (a, b) = match (fields, same) {
        ([name, i, j], true) => {
            let (i, j) = (index(i)?, index(j)?);
            if i == j {
                return Err(format!(
                    "pairs image {i} of {name} with itself, which would count as a free match"
                ));
            }
            (image(root, name, i)?, image(root, name, j)?)
        }
        ([first, i, second, j], false) => {
            if first == second {
                return Err(format!(
                    "an impostor pair names {first} twice; a pair of one person belongs in \
                     the genuine block as `name i j`"
                ));
            }
            (
                image(root, first, index(i)?)?,
                image(root, second, index(j)?)?,
            )
        }
        ([_, _, _, _], true) => {
            return Err(
                "found an impostor line (4 fields) where a genuine line `name i j` belongs; \
                 the fold has fewer genuine lines than the header says"
                    .into(),
            );
        }
        ([_, _, _], false) => {
            return Err(
                "found a genuine line (3 fields) where an impostor line `name1 i name2 j` \
                 belongs; the fold has more genuine lines than the header says"
                    .into(),
            );
        }
        _ => {
            let expected = if same {
                "3 (name i j)"
            } else {
                "4 (name1 i name2 j)"
            };
            return Err(format!(
                "expected {expected} fields, found {}",
                fields.len()
            ));
        }
    };
    Ok(LabelledPair { a, b, same })
}

/// An image number: LFW counts from 1.
fn index(field: &str) -> std::result::Result<u32, String> {
    field
        .parse::<u32>()
        .ok()
        .filter(|&i| i > 0)
        .ok_or_else(|| format!("image number {field:?} is not a positive integer"))
}

/// `root/NAME/NAME_{i:04}.jpg`. The name must be one plain folder name: a list that could
/// point outside the image root (`../x`, `/etc`) is malformed, not a dataset.
fn image(root: &Path, name: &str, i: u32) -> std::result::Result<PathBuf, String> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) if !name.contains(['/', '\\']) => {
            Ok(root.join(name).join(format!("{name}_{i:04}.jpg")))
        }
        _ => Err(format!("{name:?} is not a person's folder name")),
    }
}

/// The accuracy of the LFW fold protocol.
///
/// For each fold `k`, the threshold is the one that maximises accuracy on the pairs of every
/// other fold, and the fold's accuracy is measured at that threshold on fold `k` alone. The
/// mean and spread are over the folds that have scored pairs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FoldAccuracy {
    /// Accuracy (share of pairs decided right) of each fold at its threshold; `None` for a
    /// fold with no scored pairs (every pair lost an image to a failure to acquire).
    pub per_fold: Vec<Option<f64>>,
    /// Scored pairs in each fold.
    pub pairs: Vec<usize>,
    /// The threshold chosen for each fold from the other folds (accept when
    /// `score >= threshold`).
    pub thresholds: Vec<f64>,
    /// Mean of the measured folds' accuracies (each fold weighs the same, as LFW reports).
    pub mean: f64,
    /// Sample standard deviation (divided by `n - 1`) of the measured folds' accuracies.
    pub std: f64,
    /// Standard error of the mean, `std / sqrt(n)`: the `±` figure of LFW's result tables.
    pub std_error: f64,
    /// Folds with at least one scored pair (`n` above).
    pub measured_folds: usize,
}

/// The LFW fold protocol over `scored` pairs `(fold, same, score)`, with `folds` folds.
///
/// For each fold `k` the candidate thresholds are the lowest score of the other folds (accept
/// everything), the midpoints between their consecutive distinct scores, and the smallest
/// number above their highest score (reject everything); the one with the best accuracy on
/// the other folds is chosen, the lowest such when several tie, so the answer is
/// deterministic. A pair is accepted when `score >= threshold`.
///
/// Errors (`InvalidInput`): fewer than 2 folds, a fold index `>= folds`, a NaN or infinite
/// score, or fewer than two folds with scored pairs (no fold could be tested on a threshold
/// chosen elsewhere).
pub fn fold_accuracy(scored: &[(usize, bool, f64)], folds: usize) -> Result<FoldAccuracy> {
    let invalid = |what: String| Error::new(ErrorKind::InvalidInput, what);
    if folds < 2 {
        return Err(invalid(format!(
            "the fold protocol needs at least 2 folds, got {folds}"
        )));
    }
    let mut by_fold: Vec<Vec<(f64, bool)>> = vec![Vec::new(); folds];
    for &(fold, same, score) in scored {
        if !score.is_finite() {
            return Err(invalid(format!(
                "scores must be finite numbers, found {score}"
            )));
        }
        by_fold
            .get_mut(fold)
            .ok_or_else(|| invalid(format!("fold index {fold} is not below {folds}")))?
            .push((score, same));
    }
    let measured_folds = by_fold.iter().filter(|f| !f.is_empty()).count();
    if measured_folds < 2 {
        return Err(invalid(format!(
            "the fold protocol needs scored pairs in at least 2 folds, found {measured_folds}"
        )));
    }

    let mut per_fold = Vec::with_capacity(folds);
    let mut thresholds = Vec::with_capacity(folds);
    for k in 0..folds {
        let mut training: Vec<(f64, bool)> = by_fold
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != k)
            .flat_map(|(_, f)| f.iter().copied())
            .collect();
        // Non-empty: at least two folds have pairs, so one of them is not fold k.
        let threshold = best_threshold(&mut training);
        thresholds.push(threshold);
        let test = &by_fold[k];
        per_fold.push((!test.is_empty()).then(|| {
            let right = test
                .iter()
                .filter(|&&(score, same)| (score >= threshold) == same)
                .count();
            right as f64 / test.len() as f64
        }));
    }

    let measured: Vec<f64> = per_fold.iter().flatten().copied().collect();
    let n = measured.len() as f64;
    let mean = measured.iter().sum::<f64>() / n;
    let variance = measured.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let std = variance.sqrt();
    Ok(FoldAccuracy {
        per_fold,
        pairs: by_fold.iter().map(Vec::len).collect(),
        thresholds,
        mean,
        std,
        std_error: std / n.sqrt(),
        measured_folds,
    })
}

/// The lowest threshold with the best accuracy on `pairs` (sorted here; must be non-empty,
/// scores finite).
fn best_threshold(pairs: &mut [(f64, bool)]) -> f64 {
    pairs.sort_by(|x, y| x.0.total_cmp(&y.0));
    // genuine_below[i]: genuine pairs among the i lowest scores.
    let mut genuine_below = Vec::with_capacity(pairs.len() + 1);
    genuine_below.push(0usize);
    for &(_, same) in pairs.iter() {
        genuine_below.push(genuine_below[genuine_below.len() - 1] + usize::from(same));
    }
    let genuine = genuine_below[pairs.len()];
    // Pairs decided right at `t`: impostors below it plus genuine pairs at or above it. The
    // count below is looked up rather than inferred from the candidate's position, because a
    // midpoint of two adjacent floats rounds onto one of them.
    let right_at = |t: f64| {
        let below = pairs.partition_point(|&(s, _)| s < t);
        (below - genuine_below[below]) + (genuine - genuine_below[below])
    };
    let lowest = pairs[0].0;
    let highest = pairs[pairs.len() - 1].0;
    let midpoints = pairs
        .windows(2)
        .filter(|w| w[0].0 < w[1].0)
        // Halving first cannot overflow, whatever the scores' range.
        .map(|w| w[0].0 / 2.0 + w[1].0 / 2.0);
    let candidates = std::iter::once(lowest)
        .chain(midpoints)
        .chain(std::iter::once(highest.next_up()));
    let mut best = (lowest, right_at(lowest));
    for t in candidates {
        // Strictly better only: on a tie the earlier, lower threshold stays.
        let right = right_at(t);
        if right > best.1 {
            best = (t, right);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn pair(root: &Path, a: (&str, u32), b: (&str, u32), same: bool) -> LabelledPair {
        let path = |(n, i): (&str, u32)| root.join(n).join(format!("{n}_{i:04}.jpg"));
        LabelledPair {
            a: path(a),
            b: path(b),
            same,
        }
    }

    #[test]
    fn reads_two_folds_with_paths_labels_and_fold_index() {
        let dir = tempfile::tempdir().unwrap();
        let list = write(
            dir.path(),
            "pairs.txt",
            "2\t2\n\
             Abel_Pacheco\t1\t4\n\
             Akhmed_Zakayev 1 3\n\
             Abdel_Madi_Shabneh\t1\tDean_Barker\t1\n\
             Abdel_Madi_Shabneh\t1\tGiancarlo_Fisichella\t1\n\
             \n\
             Aaron_Peirsol\t1\t2\r\n\
             Aaron_Sorkin\t1\t12\n\
             AJ_Cook\t1\tMarsha_Thomason\t1\n\
             Aaron_Sorkin\t2\tFranz_Fischler\t1\n\
             \n\n",
        );
        let root = dir.path().join("lfw");
        let lfw = read_lfw_pairs(&list, &root).unwrap();
        assert_eq!(lfw.folds.len(), 2);
        assert_eq!(
            lfw.folds[0],
            vec![
                pair(&root, ("Abel_Pacheco", 1), ("Abel_Pacheco", 4), true),
                pair(&root, ("Akhmed_Zakayev", 1), ("Akhmed_Zakayev", 3), true),
                pair(&root, ("Abdel_Madi_Shabneh", 1), ("Dean_Barker", 1), false),
                pair(
                    &root,
                    ("Abdel_Madi_Shabneh", 1),
                    ("Giancarlo_Fisichella", 1),
                    false
                ),
            ]
        );
        assert_eq!(
            lfw.folds[1][0].a,
            root.join("Aaron_Peirsol/Aaron_Peirsol_0001.jpg")
        );
        assert_eq!(
            lfw.folds[1][1].b,
            root.join("Aaron_Sorkin/Aaron_Sorkin_0012.jpg")
        );
        let labels: Vec<(usize, bool)> = lfw.iter().map(|(k, p)| (k, p.same)).collect();
        assert_eq!(
            labels,
            [
                (0, true),
                (0, true),
                (0, false),
                (0, false),
                (1, true),
                (1, true),
                (1, false),
                (1, false)
            ]
        );
        assert_eq!(lfw.all_pairs().len(), 8);
        assert_eq!(lfw.all_pairs()[4], lfw.folds[1][0]);
    }

    #[test]
    fn a_single_number_header_is_one_fold() {
        let dir = tempfile::tempdir().unwrap();
        let list = write(dir.path(), "pairsDevTest.txt", "1\nA 1 2\nB 1 C 1\n");
        let lfw = read_lfw_pairs(&list, dir.path()).unwrap();
        assert_eq!(lfw.folds.len(), 1);
        assert_eq!(
            lfw.folds[0],
            vec![
                pair(dir.path(), ("A", 1), ("A", 2), true),
                pair(dir.path(), ("B", 1), ("C", 1), false)
            ]
        );
    }

    #[test]
    fn malformed_lists_are_dataset_errors_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&str, &str, usize)] = &[
            ("empty", "", 1),
            ("blank only", "\n  \n\t\n", 1),
            ("header not a number", "ten 300\nA 1 2\nB 1 C 1\n", 1),
            ("header with three numbers", "1 1 1\nA 1 2\nB 1 C 1\n", 1),
            ("zero folds", "0 1\n", 1),
            ("zero pairs", "1 0\n", 1),
            ("negative pairs", "1 -1\n", 1),
            ("two fields", "1 1\nA 1\nB 1 C 1\n", 2),
            ("five fields", "1 1\nA 1 2\nB 1 C 1 2\n", 3),
            ("non-numeric index", "1 1\nA one 2\nB 1 C 1\n", 2),
            ("zero index", "1 1\nA 1 2\nB 0 C 1\n", 3),
            ("negative index", "1 1\nA -1 2\nB 1 C 1\n", 2),
            ("fractional index", "1 1\nA 1.0 2\nB 1 C 1\n", 2),
            ("fewer lines", "2 1\nA 1 2\nB 1 C 1\nD 1 2\n", 5),
            ("missing impostor block", "1 1\nA 1 2\n", 3),
            (
                "impostor in genuine block",
                "1 2\nA 1 2\nB 1 C 1\nD 1 E 1\n",
                3,
            ),
            ("genuine in impostor block", "1 1\nA 1 2\nD 1 3\n", 3),
            ("extra trailing line", "1 1\nA 1 2\nB 1 C 1\n\nE 1 2\n", 5),
            ("same image twice", "1 1\nA 2 2\nB 1 C 1\n", 2),
            ("impostor of one person", "1 1\nA 1 2\nB 1 B 2\n", 3),
            ("path in a name", "1 1\n../A 1 2\nB 1 C 1\n", 2),
            ("absolute name", "1 1\nA 1 2\n/etc 1 C 1\n", 3),
            ("dot name", "1 1\n. 1 2\nB 1 C 1\n", 2),
        ];
        for (i, (what, text, line)) in cases.iter().enumerate() {
            let list = write(dir.path(), &format!("{i}.txt"), text);
            let err = read_lfw_pairs(&list, dir.path()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Dataset, "{what}: {err}");
            let at = format!("{}:{line}: ", list.display());
            assert!(err.message().starts_with(&at), "{what}: {err}");
        }
        let latin1 = dir.path().join("latin1.txt");
        std::fs::write(&latin1, b"1 1\nJos\xe9 1 2\nB 1 C 1\n").unwrap();
        let err = read_lfw_pairs(&latin1, dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dataset, "{err}");
    }

    #[test]
    fn a_missing_list_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_lfw_pairs(&dir.path().join("absent.txt"), dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
    }

    #[test]
    fn fold_scores_follow_the_list_positions() {
        let root = Path::new("/lfw");
        let lfw = LfwPairs {
            folds: vec![
                vec![
                    pair(root, ("A", 1), ("A", 2), true),
                    pair(root, ("B", 1), ("C", 1), false),
                ],
                vec![pair(root, ("D", 1), ("D", 2), true)],
            ],
        };
        let scored = |index: usize, score: f64| {
            let p = &lfw.all_pairs()[index.min(2)];
            ScoredPair {
                index,
                a: p.a.clone(),
                b: p.b.clone(),
                same: p.same,
                score,
            }
        };
        // The first pair was dropped (an image failed); the others keep their folds.
        let got = lfw.fold_scores(&[scored(1, 0.1), scored(2, 0.9)]).unwrap();
        assert_eq!(got, [(0, false, 0.1), (1, true, 0.9)]);
        let err = lfw.fold_scores(&[scored(3, 0.5)]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    // Fold 0: genuine 0.9 0.6, impostor 0.5 0.1. Fold 1: genuine 0.8 0.4, impostor 0.3 0.7.
    const TWO_FOLDS: [(usize, bool, f64); 8] = [
        (0, true, 0.9),
        (0, true, 0.6),
        (0, false, 0.5),
        (0, false, 0.1),
        (1, true, 0.8),
        (1, true, 0.4),
        (1, false, 0.3),
        (1, false, 0.7),
    ];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn each_fold_is_tested_at_the_threshold_of_the_others() {
        let acc = fold_accuracy(&TWO_FOLDS, 2).unwrap();
        // Fold 0 trains on fold 1 (0.3i 0.4g 0.7i 0.8g): right at 0.3/0.35/0.55/0.75/above
        // 0.8 = 2/3/2/3/2; 0.35 and 0.75 tie, the lower wins. On fold 0 it accepts the 0.5
        // impostor: 3/4.
        // Fold 1 trains on fold 0 (0.1i 0.5i 0.6g 0.9g): 0.55 separates them (4/4). On fold
        // 1 it rejects the 0.4 genuine and accepts the 0.7 impostor: 2/4.
        assert!(close(acc.thresholds[0], 0.35), "{acc:?}");
        assert!(close(acc.thresholds[1], 0.55), "{acc:?}");
        assert_eq!(acc.per_fold, [Some(0.75), Some(0.5)]);
        assert_eq!(acc.pairs, [4, 4]);
        assert_eq!(acc.measured_folds, 2);
        assert!(close(acc.mean, 0.625));
        // Deviations ±0.125 over n - 1 = 1: sqrt(2 × 0.125²).
        assert!(close(acc.std, 0.125 * 2f64.sqrt()), "{acc:?}");
        assert!(close(acc.std_error, 0.125), "{acc:?}");
    }

    #[test]
    fn a_fold_without_scores_is_reported_not_divided_by() {
        let acc = fold_accuracy(&TWO_FOLDS, 3).unwrap();
        // Folds 0 and 1 train on each other as before (fold 2 adds nothing).
        assert_eq!(acc.per_fold, [Some(0.75), Some(0.5), None]);
        assert_eq!(acc.pairs, [4, 4, 0]);
        assert_eq!(acc.measured_folds, 2);
        assert!(close(acc.mean, 0.625));
        // Fold 2 trains on all eight: 0.1i 0.3i 0.4g 0.5i 0.6g 0.7i 0.8g 0.9g. Right at
        // 0.1/0.2/0.35/0.45/0.55/0.65/0.75/0.85/above = 4/5/6/5/6/5/6/5/4: lowest best 0.35.
        assert!(close(acc.thresholds[2], 0.35), "{acc:?}");
    }

    #[test]
    fn extremes_and_ties_are_candidates() {
        // Fold 0 all impostors, fold 1 all genuine.
        let acc = fold_accuracy(
            &[
                (0, false, 0.2),
                (0, false, 0.7),
                (1, true, 0.9),
                (1, true, 0.3),
            ],
            2,
        )
        .unwrap();
        // Trained on impostors only, rejecting everything (just above 0.7) is best; on fold 1
        // it accepts the 0.9 genuine pair and rejects the 0.3 one.
        assert_eq!(acc.thresholds[1], 0.7f64.next_up());
        assert_eq!(acc.per_fold[1], Some(0.5));
        // Trained on genuine pairs only, accepting everything (their lowest score) is best;
        // it then rejects the 0.2 impostor and accepts the 0.7 one.
        assert_eq!(acc.thresholds[0], 0.3);
        assert_eq!(acc.per_fold[0], Some(0.5));
        // Equal scores of both labels are one candidate boundary, never split.
        let acc = fold_accuracy(
            &[
                (0, true, 0.5),
                (0, false, 0.5),
                (0, false, 0.2),
                (1, true, 0.5),
                (1, false, 0.2),
            ],
            2,
        )
        .unwrap();
        assert!(close(acc.thresholds[1], 0.35), "{acc:?}");
        assert_eq!(acc.per_fold[1], Some(1.0));
        assert_eq!(acc.thresholds[0], 0.2f64 / 2.0 + 0.5 / 2.0);
        assert_eq!(acc.per_fold[0], Some(2.0 / 3.0));
    }

    #[test]
    fn bad_inputs_are_refused() {
        let kind =
            |scored: &[(usize, bool, f64)], folds| fold_accuracy(scored, folds).unwrap_err().kind();
        assert_eq!(kind(&TWO_FOLDS, 1), ErrorKind::InvalidInput);
        assert_eq!(kind(&TWO_FOLDS, 0), ErrorKind::InvalidInput);
        let mut nan = TWO_FOLDS;
        nan[3].2 = f64::NAN;
        assert_eq!(kind(&nan, 2), ErrorKind::InvalidInput);
        let mut inf = TWO_FOLDS;
        inf[0].2 = f64::INFINITY;
        assert_eq!(kind(&inf, 2), ErrorKind::InvalidInput);
        let mut outside = TWO_FOLDS;
        outside[0].0 = 2;
        assert_eq!(kind(&outside, 2), ErrorKind::InvalidInput);
        // Only one fold has scores: nothing can be tested on a threshold from elsewhere.
        assert_eq!(kind(&TWO_FOLDS[..4], 2), ErrorKind::InvalidInput);
        assert_eq!(kind(&[], 10), ErrorKind::InvalidInput);
    }
}
