//! Verification pairs from a folder per identity: `ROOT/IDENTITY/…/*.jpg|jpeg|png`.
//!
//! Every genuine pair (two images of one identity) is kept. Impostor pairs (one image of each
//! of two identities) grow with the square of the image count, so above a cap a uniform sample
//! without replacement is drawn from a seeded generator written here: the same folder, cap and
//! seed always give the same pairs, on any platform and Rust version, so a published figure
//! can be reproduced. This module never opens an image; a file that later fails to decode is a
//! failure to acquire, counted by [`crate::eval::face`].

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::csv::CsvList;
use crate::eval::pairs::LabelledPair;
use crate::stats::SplitMix64;

/// A cap on impostor pairs that keeps an evaluation to minutes while measuring FMR down to
/// 0.001 % (one false match in 100,000).
pub const DEFAULT_MAX_IMPOSTOR: usize = 100_000;

/// Image extensions read (compared case-insensitively).
const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

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
    /// Genuine pairs and the (sampled) impostor pairs, sorted by first then second image path;
    /// within a pair, `a` sorts before `b`.
    pub pairs: Vec<LabelledPair>,
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
    /// Images in identity folders.
    pub images: usize,
    /// Images directly in the root, outside any identity folder, ignored (their identity is
    /// unknown).
    pub ignored_root_images: usize,
    /// Genuine pairs (all of them).
    pub genuine: usize,
    /// Impostor pairs the folder holds.
    pub impostor_available: u64,
    /// Impostor pairs in [`IdentityPairs::pairs`]: all of them, or the cap.
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

/// Reads `root`, one folder per identity (images anywhere inside it), and makes every genuine
/// pair and the impostor pairs: all of them when there are at most `max_impostor`, else a
/// uniform sample of exactly `max_impostor` distinct ones drawn with `seed`.
///
/// Images are ordered by path (identities by folder name); the sample depends on that order,
/// so adding or removing an image changes it, while the same folder, cap and seed always give
/// the same pairs. Images directly in `root` and folders without images are ignored and
/// counted. Files with extensions other than jpg, jpeg and png are skipped silently.
///
/// Errors: `Dataset` when `root` holds no images in identity folders or fewer than 2
/// identities; `InvalidInput` when `max_impostor` is 0 (there would be nothing to measure a
/// false match on); `Io` when a folder cannot be listed.
pub fn read_identity_pairs(root: &Path, max_impostor: usize, seed: u64) -> Result<IdentityPairs> {
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

    // Images in identity order; `sizes[k]` of them belong to the k-th identity.
    let mut images = Vec::new();
    let mut sizes = Vec::new();
    let mut empty_identity_folders = 0;
    for folder in &folders {
        let found = crate::listing::files_under(folder, &IMAGE_EXTENSIONS)?;
        if found.is_empty() {
            empty_identity_folders += 1;
        } else {
            sizes.push(found.len());
            images.extend(found);
        }
    }
    if images.is_empty() {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "{} holds no JPEG or PNG images in identity folders (expected \
                 IDENTITY/*.jpg; {ignored_root_images} image(s) directly in the folder are \
                 ignored)",
                root.display()
            ),
        ));
    }
    if sizes.len() < 2 {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "{} holds images of {} identity; impostor pairs need at least 2 identity \
                 folders",
                root.display(),
                sizes.len()
            ),
        ));
    }

    let layout = Layout::new(&sizes);
    let genuine = layout.genuine();
    let (impostor_available, impostor) = layout.impostors(max_impostor, seed);
    let counts = IdentityCounts {
        identities: sizes.len(),
        single_image_identities: sizes.iter().filter(|&&n| n == 1).count(),
        empty_identity_folders,
        images: images.len(),
        ignored_root_images,
        genuine: genuine.len(),
        impostor_available,
        impostor_sampled: impostor.len(),
        seed,
    };
    let mut indices: Vec<(usize, usize, bool)> = genuine
        .into_iter()
        .map(|(x, y)| (x, y, true))
        .chain(impostor.into_iter().map(|(x, y)| (x, y, false)))
        .collect();
    // Image order is path order, so this sorts the pairs by path.
    indices.sort_unstable();
    let pairs = indices
        .into_iter()
        .map(|(x, y, same)| LabelledPair {
            a: images[x].clone(),
            b: images[y].clone(),
            same,
        })
        .collect();
    Ok(IdentityPairs { pairs, counts })
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
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

    fn impostor_total(&self) -> u64 {
        self.before[self.before.len() - 1]
    }

    /// Every pair within an identity, in `(x, y)` order.
    fn genuine(&self) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for (x, &stop) in self.end.iter().enumerate() {
            pairs.extend((x + 1..stop).map(|y| (x, y)));
        }
        pairs
    }

    /// The impostor pair of `rank` (below the total).
    fn impostor_at(&self, rank: u64) -> (usize, usize) {
        // The first image x is the last one whose pairs start at or before `rank`.
        let x = self.before[1..].partition_point(|&b| b <= rank);
        let y = self.end[x] + (rank - self.before[x]) as usize;
        (x, y)
    }

    /// The total, and all impostor pairs or a sample of `max` of them, in `(x, y)` order.
    fn impostors(&self, max: usize, seed: u64) -> (u64, Vec<(usize, usize)>) {
        let total = self.impostor_total();
        let ranks = if total <= max as u64 {
            (0..total).collect()
        } else {
            sample_ranks(total, max as u64, seed)
        };
        (
            total,
            ranks.into_iter().map(|r| self.impostor_at(r)).collect(),
        )
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

    /// Checks the pairs are distinct, sorted, labelled by folder, and counted right.
    fn check_pairs(root: &Path, got: &IdentityPairs) {
        let mut seen = HashSet::new();
        for p in &got.pairs {
            assert!(p.a < p.b, "{p:?}");
            assert_eq!(p.same, identity_of(root, &p.a) == identity_of(root, &p.b));
            assert!(seen.insert((p.a.clone(), p.b.clone())), "twice: {p:?}");
        }
        assert!(
            got.pairs
                .windows(2)
                .all(|w| (&w[0].a, &w[0].b) < (&w[1].a, &w[1].b))
        );
        let genuine = got.pairs.iter().filter(|p| p.same).count();
        assert_eq!(genuine, got.counts.genuine);
        assert_eq!(got.pairs.len() - genuine, got.counts.impostor_sampled);
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
        let got = read_identity_pairs(root, DEFAULT_MAX_IMPOSTOR, 7).unwrap();
        assert_eq!(
            got.counts,
            IdentityCounts {
                identities: 3,
                single_image_identities: 1,
                empty_identity_folders: 1,
                images: 6,
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
        assert_eq!(got.pairs.len(), 15);
        // Carol's one image meets every other image, as an impostor.
        let carol = root.join("carol/c1.png");
        let with_carol: Vec<_> = got
            .pairs
            .iter()
            .filter(|p| p.a == carol || p.b == carol)
            .collect();
        assert_eq!(with_carol.len(), 5);
        assert!(with_carol.iter().all(|p| !p.same));
        assert!(got.pairs.iter().any(|p| p.a == root.join("alice/a1.jpg")
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
        let got = read_identity_pairs(dir.path(), 50, 7).unwrap();
        // 20 images: 5 × C(4,2) = 30 genuine, (20² − 5 × 4²) / 2 = 160 impostor.
        assert_eq!(got.counts.genuine, 30);
        assert_eq!(got.counts.impostor_available, 160);
        assert_eq!(got.counts.impostor_sampled, 50);
        assert!(got.counts.is_sampled());
        check_pairs(dir.path(), &got);
        assert_eq!(got.pairs.len(), 80);
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
        let once = read_identity_pairs(dir.path(), 50, 7).unwrap();
        let again = read_identity_pairs(dir.path(), 50, 7).unwrap();
        let other = read_identity_pairs(dir.path(), 50, 8).unwrap();
        assert_eq!(once.pairs, again.pairs);
        assert_ne!(once.pairs, other.pairs);
        // The genuine pairs never depend on the seed.
        let genuine = |p: &IdentityPairs| -> Vec<LabelledPair> {
            p.pairs.iter().filter(|p| p.same).cloned().collect()
        };
        assert_eq!(genuine(&once), genuine(&other));
    }

    #[test]
    fn folders_without_two_identities_are_dataset_errors() {
        let kind = |files: &[&str]| {
            let dir = tempfile::tempdir().unwrap();
            tree(dir.path(), files);
            read_identity_pairs(dir.path(), 10, 1).unwrap_err().kind()
        };
        assert_eq!(kind(&[]), ErrorKind::Dataset);
        assert_eq!(kind(&["a.jpg", "b.jpg", "x/notes.txt"]), ErrorKind::Dataset);
        assert_eq!(kind(&["x/1.jpg", "x/2.jpg", "y.jpg"]), ErrorKind::Dataset);
        let dir = tempfile::tempdir().unwrap();
        tree(dir.path(), &["x/1.jpg", "y/1.jpg"]);
        let err = read_identity_pairs(dir.path(), 0, 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = read_identity_pairs(&dir.path().join("absent"), 10, 1).unwrap_err();
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
        let (total, pairs) = layout.impostors(1_000, 42);
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
}
