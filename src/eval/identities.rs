//! Verification pairs from a folder per identity: `ROOT/IDENTITY/…/*.jpg|jpeg|png`.
//!
//! An image anywhere under an identity's folder is that identity's. The first folder below
//! the identity folder, when there is one, is the image's *subset* (CFP's `ID/frontal/01.jpg`
//! and `ID/profile/01.jpg`): [`PairsOf`] keeps the pairs of every image, or only those with
//! one image in each of two subsets (`frontal-profile`), or within one (`frontal-frontal`),
//! so that conditions are reported apart.
//!
//! Every genuine pair (two images of one identity) is kept. Impostor pairs (one image of each
//! of two identities) grow with the square of the image count, so above a cap a uniform sample
//! without replacement is drawn from a seeded generator written here: the same folder, cap and
//! seed always give the same pairs, on any platform and Rust version, so a published figure
//! can be reproduced. Pairs come out as positions in a [`PairTable`] (never one struct with
//! paths per pair). This module never opens an image; a file that later fails to decode is a
//! failure to acquire, counted by [`crate::eval::face`].

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::csv::CsvList;
use crate::eval::face::{IndexPair, PairTable};
use crate::stats::SplitMix64;

/// A cap on impostor pairs that keeps an evaluation to minutes while measuring FMR down to
/// 0.001 % (one false match in 100,000).
pub const DEFAULT_MAX_IMPOSTOR: usize = 100_000;

/// Image extensions read (compared case-insensitively).
const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Which pairs of an identity folder to make.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PairsOf {
    /// Every pair of images, whatever their subset (`all`).
    #[default]
    All,
    /// Pairs with one image in each of two subsets, or both in one when the names are equal
    /// (`frontal-profile`, `frontal-frontal`): the first folder below the identity folder.
    Subsets(String, String),
}

impl FromStr for PairsOf {
    type Err = Error;

    /// `all`, or two subset names joined by `-` (`frontal-profile`).
    fn from_str(text: &str) -> Result<PairsOf> {
        if text == "all" {
            return Ok(PairsOf::All);
        }
        match text.split('-').collect::<Vec<_>>()[..] {
            [a, b] if !a.is_empty() && !b.is_empty() => {
                Ok(PairsOf::Subsets(a.to_string(), b.to_string()))
            }
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "pairs of {text:?}: expected `all` or two subset folder names joined by `-` \
                     (e.g. `frontal-frontal`, `frontal-profile`; names without `-`)"
                ),
            )),
        }
    }
}

impl fmt::Display for PairsOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairsOf::All => f.write_str("all"),
            PairsOf::Subsets(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl Serialize for PairsOf {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The images of each identity in a labelled list (a `file,identity` CSV such as
/// faces-deepface's `identities_derived.csv`; the identity column may also be named
/// `identity_cluster`, `label` or `subject`), paths relative to `image_dir`, in list order.
pub fn read_identity_list(list: &Path, image_dir: &Path) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let csv = CsvList::read(list, "identity list")?;
    let [file, identity] = csv.columns([
        &["file", "image", "path"],
        &["identity", "identity_cluster", "label", "subject"],
    ])?;
    let mut identities: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for row in csv.rows() {
        let path = image_dir.join(csv.cell(row, file)?);
        identities
            .entry(csv.cell(row, identity)?.to_string())
            .or_default()
            .push(path);
    }
    Ok(identities)
}

/// The pairs of an identity folder and how they were made.
#[derive(Clone, Debug)]
pub struct IdentityPairs {
    /// The images used (path order), their identities (in folder-name order) and the genuine
    /// and (sampled) impostor pairs, sorted by first then second image; within a pair, `a`
    /// comes before `b`.
    pub table: PairTable,
    /// The identity folders' names, by identity number.
    pub names: Vec<String>,
    /// What was found and how many pairs were drawn.
    pub counts: IdentityCounts,
}

/// The counts behind an [`IdentityPairs`], for a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdentityCounts {
    /// Identity folders holding at least one image.
    pub identities: usize,
    /// Of those, identities with a single image (impostor pairs only).
    pub single_image_identities: usize,
    /// Identity folders without any image, ignored.
    pub empty_identity_folders: usize,
    /// Images in identity folders used by the pairs.
    pub images: usize,
    /// Which pairs were made.
    pub pairs_of: PairsOf,
    /// Images left out because they are in no subset [`IdentityCounts::pairs_of`] names.
    pub images_of_other_subsets: usize,
    /// Images directly in the root, outside any identity folder, ignored (their identity is
    /// unknown).
    pub ignored_root_images: usize,
    /// Genuine pairs (all of them).
    pub genuine: usize,
    /// Impostor pairs the folder holds.
    pub impostor_available: u64,
    /// Impostor pairs in the table ([`IdentityPairs::table`]): all of them, or the cap.
    pub impostor_sampled: usize,
    /// The seed of the sample (unused when every impostor pair is kept).
    pub seed: u64,
}

impl IdentityCounts {
    /// True when the impostor pairs are a sample rather than all of them.
    pub fn is_sampled(&self) -> bool {
        (self.impostor_sampled as u64) < self.impostor_available
    }
}

impl fmt::Display for IdentityCounts {
    /// For example `12 identities (1 with a single image), 47 images, 72 genuine pairs,
    /// sampled 100,000 of 2,345,678 impostor pairs (seed 7)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let PairsOf::Subsets(a, b) = &self.pairs_of {
            write!(
                f,
                "{a}–{b} pairs ({} image(s) of other subsets left out): ",
                grouped(self.images_of_other_subsets as u64)
            )?;
        }
        write!(
            f,
            "{} identities ({} with a single image), {} images, {} genuine pairs, ",
            grouped(self.identities as u64),
            grouped(self.single_image_identities as u64),
            grouped(self.images as u64),
            grouped(self.genuine as u64),
        )?;
        if self.is_sampled() {
            write!(
                f,
                "sampled {} of {} impostor pairs (seed {})",
                grouped(self.impostor_sampled as u64),
                grouped(self.impostor_available),
                self.seed
            )
        } else {
            write!(f, "all {} impostor pairs", grouped(self.impostor_available))
        }
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Reads `root`, one folder per identity (images anywhere inside it), and makes the genuine
/// pairs `pairs_of` asks for, all of them, and its impostor pairs: all of them when there are
/// at most `max_impostor`, else a uniform sample of exactly `max_impostor` distinct ones drawn
/// with `seed`.
///
/// Images are ordered by path (identities by folder name); the sample depends on that order,
/// so adding or removing an image changes it, while the same folder, filter, cap and seed
/// always give the same pairs. Images directly in `root` and folders without images are
/// ignored and counted. Files with extensions other than jpg, jpeg and png are skipped
/// silently.
///
/// Errors: `Dataset` when `root` holds no images in identity folders (or none in the subsets
/// `pairs_of` names) or fewer than 2 identities; `InvalidInput` when `max_impostor` is 0
/// (there would be nothing to measure a false match on); `Io` when a folder cannot be listed.
pub fn read_identity_pairs(
    root: &Path,
    pairs_of: &PairsOf,
    max_impostor: usize,
    seed: u64,
) -> Result<IdentityPairs> {
    if max_impostor == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "max_impostor is 0: no impostor pair would be scored; use at least 1 \
             (by default 100,000)",
        ));
    }
    let listing = |e| Error::io("listing", root, e);
    let mut folders = Vec::new();
    let mut ignored_root_images = 0;
    for entry in std::fs::read_dir(root).map_err(listing)? {
        let path = entry.map_err(listing)?.path();
        if path.is_dir() {
            folders.push(path);
        } else if is_image(&path) {
            ignored_root_images += 1;
        }
    }
    folders.sort();

    // The images used, in identity order, with their identity and side (0: the first subset
    // or every image, 1: the second subset).
    let mut images = Vec::new();
    let mut identity = Vec::new();
    let mut side = Vec::new();
    let mut names = Vec::new();
    let (mut empty_identity_folders, mut images_of_other_subsets, mut seen_anywhere) = (0, 0, 0);
    for folder in &folders {
        let found = crate::listing::files_under(folder, &IMAGE_EXTENSIONS)?;
        seen_anywhere += found.len();
        if found.is_empty() {
            empty_identity_folders += 1;
            continue;
        }
        let before = images.len();
        for image in found {
            let Some(s) = side_of(pairs_of, folder, &image) else {
                images_of_other_subsets += 1;
                continue;
            };
            images.push(image);
            identity.push(names.len() as u32);
            side.push(s);
        }
        if images.len() > before {
            names.push(
                folder
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            );
        }
    }
    if images.is_empty() {
        let expected = match pairs_of {
            PairsOf::All => "IDENTITY/*.jpg".to_string(),
            PairsOf::Subsets(a, b) => format!("IDENTITY/{a}/*.jpg and IDENTITY/{b}/*.jpg"),
        };
        return Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "{} holds no JPEG or PNG images in identity folders (expected {expected}; \
                 {seen_anywhere} image(s) in identity folders, {ignored_root_images} directly \
                 in the folder, are not used)",
                root.display()
            ),
        ));
    }
    if names.len() < 2 {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "{} holds images of {} identity; impostor pairs need at least 2 identity \
                 folders",
                root.display(),
                names.len()
            ),
        ));
    }
    if images.len() > u32::MAX as usize {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "an evaluation holds at most 2^32 images",
        ));
    }

    let (genuine, impostor_available, impostor) = match pairs_of {
        PairsOf::Subsets(a, b) if a != b => {
            let space = Bipartite::new(&identity, &side);
            let (total, impostor) = sampled_impostors(&space, max_impostor, seed);
            (space.genuine(), total, impostor)
        }
        _ => {
            let mut sizes = vec![0usize; names.len()];
            for &i in &identity {
                sizes[i as usize] += 1;
            }
            let space = Layout::new(&sizes);
            let (total, impostor) = sampled_impostors(&space, max_impostor, seed);
            (space.genuine(), total, impostor)
        }
    };
    let mut sizes = vec![0usize; names.len()];
    for &i in &identity {
        sizes[i as usize] += 1;
    }
    let counts = IdentityCounts {
        identities: names.len(),
        single_image_identities: sizes.iter().filter(|&&n| n == 1).count(),
        empty_identity_folders,
        images: images.len(),
        pairs_of: pairs_of.clone(),
        images_of_other_subsets,
        ignored_root_images,
        genuine: genuine.len(),
        impostor_available,
        impostor_sampled: impostor.len(),
        seed,
    };
    let pair = |(x, y): (usize, usize), same: bool| IndexPair {
        a: x.min(y) as u32,
        b: x.max(y) as u32,
        same,
    };
    let mut pairs: Vec<IndexPair> = genuine
        .into_iter()
        .map(|p| pair(p, true))
        .chain(impostor.into_iter().map(|p| pair(p, false)))
        .collect();
    // Image order is path order, so this sorts the pairs by path.
    pairs.sort_unstable();
    Ok(IdentityPairs {
        table: PairTable {
            images,
            identity,
            identities: names.len(),
            pairs,
        },
        names,
        counts,
    })
}

/// The side of `image` (under `folder`) in the pairs `pairs_of` asks for, or `None` when it
/// is in no subset named there.
fn side_of(pairs_of: &PairsOf, folder: &Path, image: &Path) -> Option<u8> {
    let PairsOf::Subsets(a, b) = pairs_of else {
        return Some(0);
    };
    let relative = image.strip_prefix(folder).ok()?;
    let mut parts = relative.components();
    let subset = parts.next()?.as_os_str();
    // An image directly in the identity folder is in no subset.
    parts.next()?;
    if subset == a.as_str() {
        Some(0)
    } else if subset == b.as_str() {
        Some(1)
    } else {
        None
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// A space of impostor pairs, ranked so that any pair is found from its rank without listing
/// the others.
trait PairSpace {
    /// Impostor pairs in the space.
    fn impostor_total(&self) -> u64;

    /// The impostor pair of `rank` (below the total), as image positions.
    fn impostor_at(&self, rank: u64) -> (usize, usize);
}

/// The total, and all impostor pairs of `space` or a sample of `max` of them, in rank order.
fn sampled_impostors(space: &impl PairSpace, max: usize, seed: u64) -> (u64, Vec<(usize, usize)>) {
    let total = space.impostor_total();
    let ranks = if total <= max as u64 {
        (0..total).collect()
    } else {
        sample_ranks(total, max as u64, seed)
    };
    (
        total,
        ranks.into_iter().map(|r| space.impostor_at(r)).collect(),
    )
}

/// Images numbered `0..n` in identity order, each identity a contiguous run.
///
/// Impostor pairs `(x, y)` with `x < y` in different identities are ranked in `(x, y)` order:
/// image `x` pairs with every image after the end of its identity, so rank arithmetic over
/// the prefix sums of those counts finds any pair without listing the others.
struct Layout {
    /// For each image, the index one past the last image of its identity.
    end: Vec<usize>,
    /// `before[x]`: impostor pairs whose first image comes before `x` (length `n + 1`).
    before: Vec<u64>,
}

impl Layout {
    fn new(sizes: &[usize]) -> Layout {
        let mut end = Vec::with_capacity(sizes.iter().sum());
        for &size in sizes {
            let stop = end.len() + size;
            end.resize(stop, stop);
        }
        let n = end.len();
        let mut before = Vec::with_capacity(n + 1);
        let mut total = 0u64;
        before.push(total);
        for &stop in &end {
            total += (n - stop) as u64;
            before.push(total);
        }
        Layout { end, before }
    }

    /// Every pair within an identity, in `(x, y)` order.
    fn genuine(&self) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for (x, &stop) in self.end.iter().enumerate() {
            pairs.extend((x + 1..stop).map(|y| (x, y)));
        }
        pairs
    }
}

impl PairSpace for Layout {
    fn impostor_total(&self) -> u64 {
        self.before[self.before.len() - 1]
    }

    fn impostor_at(&self, rank: u64) -> (usize, usize) {
        // The first image x is the last one whose pairs start at or before `rank`.
        let x = self.before[1..].partition_point(|&b| b <= rank);
        let y = self.end[x] + (rank - self.before[x]) as usize;
        (x, y)
    }
}

/// Images numbered `0..n` in identity order on two sides (`side[i]` 0 or 1), pairs across
/// the sides only.
///
/// Impostor pairs `(x, y)`, `x` on side 0 and `y` on side 1 of another identity, are ranked
/// in `(x, position of y among side 1)` order: `x` pairs with every side-1 image outside its
/// identity's run there, so the prefix sums of those counts find any pair by rank.
struct Bipartite {
    /// Side-0 images, in order.
    xs: Vec<usize>,
    /// Side-1 images, in order.
    ys: Vec<usize>,
    /// For each side-0 image, its identity's run of positions in `ys`.
    run: Vec<(usize, usize)>,
    /// `before[k]`: impostor pairs whose side-0 image comes before `xs[k]`.
    before: Vec<u64>,
}

impl Bipartite {
    fn new(identity: &[u32], side: &[u8]) -> Bipartite {
        let xs: Vec<usize> = (0..side.len()).filter(|&i| side[i] == 0).collect();
        let ys: Vec<usize> = (0..side.len()).filter(|&i| side[i] == 1).collect();
        let run: Vec<(usize, usize)> = xs
            .iter()
            .map(|&x| {
                let id = identity[x];
                let lo = ys.partition_point(|&y| identity[y] < id);
                let hi = ys.partition_point(|&y| identity[y] <= id);
                (lo, hi)
            })
            .collect();
        let mut before = Vec::with_capacity(xs.len() + 1);
        let mut total = 0u64;
        before.push(total);
        for &(lo, hi) in &run {
            total += (ys.len() - (hi - lo)) as u64;
            before.push(total);
        }
        Bipartite {
            xs,
            ys,
            run,
            before,
        }
    }

    /// Every pair of one identity across the sides, in `(x, y)` order.
    fn genuine(&self) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for (k, &x) in self.xs.iter().enumerate() {
            let (lo, hi) = self.run[k];
            pairs.extend(self.ys[lo..hi].iter().map(|&y| (x, y)));
        }
        pairs
    }
}

impl PairSpace for Bipartite {
    fn impostor_total(&self) -> u64 {
        self.before[self.before.len() - 1]
    }

    fn impostor_at(&self, rank: u64) -> (usize, usize) {
        let k = self.before[1..].partition_point(|&b| b <= rank);
        let (lo, hi) = self.run[k];
        let nth = (rank - self.before[k]) as usize;
        let position = if nth < lo { nth } else { nth + (hi - lo) };
        (self.xs[k], self.ys[position])
    }
}

/// `k` distinct numbers below `n` (`k <= n`), every such set equally likely, ascending.
///
/// Floyd's algorithm: exactly `k` draws and a set of `k` entries whatever `n` is, so a cap
/// of 100,000 out of billions of pairs costs the same as out of 100,001.
fn sample_ranks(n: u64, k: u64, seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64::new(seed);
    let mut chosen = HashSet::with_capacity(k as usize);
    for j in n - k..n {
        let t = rng.below(j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    // The set's iteration order is random per process; sorting makes the result a function of
    // the seed alone.
    let mut ranks: Vec<u64> = chosen.into_iter().collect();
    ranks.sort_unstable();
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::pairs::LabelledPair;

    #[test]
    fn an_identity_list_groups_images_in_list_order() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("ids.csv");
        std::fs::write(
            &list,
            "file,identity_cluster,width\nb.jpg,id02,10\na.jpg,id01,10\n\nc.jpg,id02,10\n",
        )
        .unwrap();
        let ids = read_identity_list(&list, Path::new("/photos")).unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids["id01"], [PathBuf::from("/photos/a.jpg")]);
        assert_eq!(
            ids["id02"],
            [
                PathBuf::from("/photos/b.jpg"),
                PathBuf::from("/photos/c.jpg")
            ]
        );
        std::fs::write(&list, "file,width\na.jpg,10\n").unwrap();
        let err = read_identity_list(&list, dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dataset);
        std::fs::write(&list, "file,identity\na.jpg,\n").unwrap();
        assert!(
            read_identity_list(&list, dir.path())
                .unwrap_err()
                .message()
                .contains(":2:")
        );
    }

    /// Creates `root/rel` for each path (with parent folders).
    fn tree(root: &Path, files: &[&str]) {
        for rel in files {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"not decoded here").unwrap();
        }
    }

    fn identity_of(root: &Path, image: &Path) -> PathBuf {
        let rel = image.strip_prefix(root).unwrap();
        rel.components().next().unwrap().as_os_str().into()
    }

    /// The pairs with their paths.
    fn labelled(got: &IdentityPairs) -> Vec<LabelledPair> {
        (0..got.table.pairs.len())
            .map(|k| got.table.labelled(k))
            .collect()
    }

    /// Checks the pairs are distinct, sorted, labelled by folder, and counted right.
    fn check_pairs(root: &Path, got: &IdentityPairs) {
        let pairs = labelled(got);
        let mut seen = HashSet::new();
        for p in &pairs {
            assert!(p.a < p.b, "{p:?}");
            assert_eq!(p.same, identity_of(root, &p.a) == identity_of(root, &p.b));
            assert!(seen.insert((p.a.clone(), p.b.clone())), "twice: {p:?}");
        }
        assert!(
            pairs
                .windows(2)
                .all(|w| (&w[0].a, &w[0].b) < (&w[1].a, &w[1].b))
        );
        let genuine = pairs.iter().filter(|p| p.same).count();
        assert_eq!(genuine, got.counts.genuine);
        assert_eq!(pairs.len() - genuine, got.counts.impostor_sampled);
        // Identities are numbered in folder order, one per folder used.
        for (i, image) in got.table.images.iter().enumerate() {
            let name = &got.names[got.table.identity[i] as usize];
            assert_eq!(identity_of(root, image), PathBuf::from(name));
        }
        assert_eq!(got.table.identities, got.counts.identities);
    }

    #[test]
    fn counts_every_pair_of_a_small_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        tree(
            root,
            &[
                "alice/a1.jpg",
                "alice/deeper/a2.JPEG",
                "alice/a3.png",
                "alice/notes.txt",
                "bob/b1.jpg",
                "bob/b2.jpg",
                "carol/c1.png",
                "dave/readme.md",
                "stray.jpg",
                "list.csv",
            ],
        );
        let got = read_identity_pairs(root, &PairsOf::All, DEFAULT_MAX_IMPOSTOR, 7).unwrap();
        assert_eq!(
            got.counts,
            IdentityCounts {
                identities: 3,
                single_image_identities: 1,
                empty_identity_folders: 1,
                images: 6,
                pairs_of: PairsOf::All,
                images_of_other_subsets: 0,
                ignored_root_images: 1,
                // alice 3, bob 1, carol (one image) 0.
                genuine: 4,
                // 3×2 + 3×1 + 2×1.
                impostor_available: 11,
                impostor_sampled: 11,
                seed: 7,
            }
        );
        assert!(!got.counts.is_sampled());
        check_pairs(root, &got);
        let pairs = labelled(&got);
        assert_eq!(pairs.len(), 15);
        // Carol's one image meets every other image, as an impostor.
        let carol = root.join("carol/c1.png");
        let with_carol: Vec<_> = pairs
            .iter()
            .filter(|p| p.a == carol || p.b == carol)
            .collect();
        assert_eq!(with_carol.len(), 5);
        assert!(with_carol.iter().all(|p| !p.same));
        assert!(pairs.iter().any(|p| p.a == root.join("alice/a1.jpg")
            && p.b == root.join("alice/deeper/a2.JPEG")
            && p.same));
        assert_eq!(
            got.counts.to_string(),
            "3 identities (1 with a single image), 6 images, 4 genuine pairs, all 11 impostor pairs"
        );
    }

    fn five_by_four(root: &Path) {
        let files: Vec<String> = (0..5)
            .flat_map(|i| (0..4).map(move |j| format!("id{i}/{j}.jpg")))
            .collect();
        tree(root, &files.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn samples_exactly_the_cap_of_distinct_impostors() {
        let dir = tempfile::tempdir().unwrap();
        five_by_four(dir.path());
        let got = read_identity_pairs(dir.path(), &PairsOf::All, 50, 7).unwrap();
        // 20 images: 5 × C(4,2) = 30 genuine, (20² − 5 × 4²) / 2 = 160 impostor.
        assert_eq!(got.counts.genuine, 30);
        assert_eq!(got.counts.impostor_available, 160);
        assert_eq!(got.counts.impostor_sampled, 50);
        assert!(got.counts.is_sampled());
        check_pairs(dir.path(), &got);
        assert_eq!(got.table.pairs.len(), 80);
        assert_eq!(
            got.counts.to_string(),
            "5 identities (0 with a single image), 20 images, 30 genuine pairs, \
             sampled 50 of 160 impostor pairs (seed 7)"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_pairs_and_another_seed_others() {
        let dir = tempfile::tempdir().unwrap();
        five_by_four(dir.path());
        let once = read_identity_pairs(dir.path(), &PairsOf::All, 50, 7).unwrap();
        let again = read_identity_pairs(dir.path(), &PairsOf::All, 50, 7).unwrap();
        let other = read_identity_pairs(dir.path(), &PairsOf::All, 50, 8).unwrap();
        assert_eq!(once.table, again.table);
        assert_ne!(once.table, other.table);
        // The genuine pairs never depend on the seed.
        let genuine = |p: &IdentityPairs| -> Vec<IndexPair> {
            p.table.pairs.iter().filter(|p| p.same).copied().collect()
        };
        assert_eq!(genuine(&once), genuine(&other));
    }

    #[test]
    fn folders_without_two_identities_are_dataset_errors() {
        let kind = |files: &[&str]| {
            let dir = tempfile::tempdir().unwrap();
            tree(dir.path(), files);
            read_identity_pairs(dir.path(), &PairsOf::All, 10, 1)
                .unwrap_err()
                .kind()
        };
        assert_eq!(kind(&[]), ErrorKind::Dataset);
        assert_eq!(kind(&["a.jpg", "b.jpg", "x/notes.txt"]), ErrorKind::Dataset);
        assert_eq!(kind(&["x/1.jpg", "x/2.jpg", "y.jpg"]), ErrorKind::Dataset);
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path(), &["x/1.jpg", "y/1.jpg"]);
        let err = read_identity_pairs(dir.path(), &PairsOf::All, 0, 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err =
            read_identity_pairs(&dir.path().join("absent"), &PairsOf::All, 10, 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
    }

    #[test]
    fn ranks_map_onto_every_impostor_pair_in_order() {
        let sizes = [3, 1, 2, 4];
        let layout = Layout::new(&sizes);
        let identity: Vec<usize> = sizes
            .iter()
            .enumerate()
            .flat_map(|(k, &n)| std::iter::repeat_n(k, n))
            .collect();
        let mut expected = Vec::new();
        for x in 0..identity.len() {
            for y in x + 1..identity.len() {
                if identity[x] != identity[y] {
                    expected.push((x, y));
                }
            }
        }
        assert_eq!(layout.impostor_total(), expected.len() as u64);
        let mapped: Vec<_> = (0..layout.impostor_total())
            .map(|r| layout.impostor_at(r))
            .collect();
        assert_eq!(mapped, expected);
        assert_eq!(layout.genuine().len(), 3 + 1 + 6);
    }

    #[test]
    fn a_huge_pair_space_is_sampled_without_listing_it() {
        // 3 × 200,000 images: 1.2 × 10^11 impostor pairs, far too many to list.
        let layout = Layout::new(&[200_000; 3]);
        let (total, pairs) = sampled_impostors(&layout, 1_000, 42);
        assert_eq!(total, 120_000_000_000);
        assert_eq!(pairs.len(), 1_000);
        assert!(pairs.windows(2).all(|w| w[0] < w[1]));
        assert!(pairs.iter().all(|&(x, y)| x / 200_000 < y / 200_000));
    }

    #[test]
    fn the_sample_is_uniform_over_the_pair_space() {
        // 2,000 samples of 40 out of 160: each rank expected 500 times (sd ≈ 19). The seeds
        // are fixed, so this is deterministic; the bound only catches a skewed sampler.
        let mut hits = [0u32; 160];
        for seed in 0..2_000 {
            let ranks = sample_ranks(160, 40, seed);
            assert_eq!(ranks.len(), 40);
            assert!(ranks.windows(2).all(|w| w[0] < w[1]));
            for r in ranks {
                hits[r as usize] += 1;
            }
        }
        assert!(hits.iter().all(|&h| (400..=600).contains(&h)), "{hits:?}");
        // k = n takes everything.
        assert_eq!(sample_ranks(5, 5, 3), [0, 1, 2, 3, 4]);
    }

    /// CFP's layout: `ID/frontal/NN.jpg` and `ID/profile/NN.jpg`, and a stray subset.
    fn frontal_profile(root: &Path) {
        let mut files = Vec::new();
        for id in ["001", "002", "003"] {
            for n in 1..=3 {
                files.push(format!("{id}/frontal/{n:02}.jpg"));
            }
            for n in 1..=2 {
                files.push(format!("{id}/profile/{n:02}.jpg"));
            }
        }
        files.push("002/sketch/01.jpg".into());
        files.push("003/loose.jpg".into());
        tree(root, &files.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn nested_subsets_are_one_identity_and_pairs_can_be_kept_apart() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        frontal_profile(root);
        // Every image at any depth is its identity's: 3 × 5 + 2 = 17 images.
        let all = read_identity_pairs(root, &PairsOf::All, DEFAULT_MAX_IMPOSTOR, 1).unwrap();
        check_pairs(root, &all);
        assert_eq!(all.counts.images, 17);
        assert_eq!(all.counts.genuine, 10 + 15 + 15);

        let subset = |pairs: &str, max| {
            let got = read_identity_pairs(root, &pairs.parse().unwrap(), max, 4).unwrap();
            check_pairs(root, &got);
            got
        };
        let ff = subset("frontal-frontal", DEFAULT_MAX_IMPOSTOR);
        assert_eq!(ff.counts.images, 9);
        assert_eq!(ff.counts.images_of_other_subsets, 8);
        assert_eq!(ff.counts.genuine, 3 * 3);
        assert_eq!(ff.counts.impostor_available, 36 - 9);
        let in_subset = |got: &IdentityPairs, name: &str| {
            labelled(got).iter().all(|p| {
                [&p.a, &p.b]
                    .iter()
                    .all(|i| i.parent().unwrap().ends_with(name))
            })
        };
        assert!(in_subset(&ff, "frontal"));

        let fp = subset("frontal-profile", DEFAULT_MAX_IMPOSTOR);
        assert_eq!(fp.counts.images, 15);
        // Each frontal image with each profile image: 3 × 2 of its own identity's, 3 × 4 of
        // the others'.
        assert_eq!(fp.counts.genuine, 3 * 3 * 2);
        assert_eq!(fp.counts.impostor_available, 3 * 3 * 4);
        for p in labelled(&fp) {
            let kinds = [&p.a, &p.b].map(|i| i.parent().unwrap().file_name().unwrap().to_owned());
            assert_ne!(kinds[0], kinds[1], "{p:?}");
        }
        assert!(fp.counts.to_string().starts_with(
            "frontal–profile pairs (2 image(s) of other subsets left out): 3 identities"
        ));
        // The profile–frontal order names the same pairs.
        assert_eq!(
            subset("profile-frontal", DEFAULT_MAX_IMPOSTOR).table,
            fp.table
        );
        // Sampled across the sides: distinct, labelled right, exactly the cap.
        let sampled = subset("frontal-profile", 20);
        assert_eq!(sampled.counts.impostor_sampled, 20);
        assert!(sampled.counts.is_sampled());

        let err = read_identity_pairs(root, &"front-side".parse().unwrap(), 10, 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dataset);
        assert!(err.message().contains("IDENTITY/front/*.jpg"), "{err}");
        for bad in ["frontal", "a-b-c", "-profile", ""] {
            assert!(bad.parse::<PairsOf>().is_err(), "{bad}");
        }
        assert_eq!("all".parse::<PairsOf>().unwrap(), PairsOf::All);
        assert_eq!(PairsOf::Subsets("a".into(), "b".into()).to_string(), "a-b");
    }

    #[test]
    fn bipartite_ranks_map_onto_every_cross_pair_in_order() {
        // Identities 0..3; sides interleaved within identities.
        let identity = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3];
        let side = [0, 1, 0, 1, 0, 0, 1, 1, 0, 1];
        let space = Bipartite::new(&identity, &side);
        let mut genuine = Vec::new();
        let mut impostor = Vec::new();
        for x in (0..10).filter(|&x| side[x] == 0) {
            for y in (0..10).filter(|&y| side[y] == 1) {
                if identity[x] == identity[y] {
                    genuine.push((x, y));
                } else {
                    impostor.push((x, y));
                }
            }
        }
        assert_eq!(space.genuine(), genuine);
        assert_eq!(space.impostor_total(), impostor.len() as u64);
        let mapped: Vec<_> = (0..space.impostor_total())
            .map(|r| space.impostor_at(r))
            .collect();
        assert_eq!(mapped, impostor);
    }
}
