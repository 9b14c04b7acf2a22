//! The 1:N gallery: every subject's face templates of one model, opened once into memory (in
//! the vault's protected space when the renewable transform is on) and scanned without touching
//! the store or a key again.
//!
//! A scan runs in two passes. Every template is also kept as 8-bit integers (each value × 127,
//! rounded): the first pass scores the probe against all of them with integer dot products
//! (a quarter of the memory traffic of 32-bit floats), each score with a proven bound on its
//! error. The second pass scores exactly, in 32-bit floats, only the templates whose bound
//! leaves them a chance of being among the best `k` subjects — so the subjects returned and
//! their scores are those of a full float scan (tested against one), at a fraction of its cost.
//!
//! Memory: [`Gallery::bytes_per_template`] (for 128-d embeddings: 512 bytes of floats, 128 of
//! integers, 16 of bookkeeping). Every vector is biometric data: wiped on drop, never logged.

use std::collections::HashMap;

use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};
use crate::template::Modality;
use crate::vault::TemplateVault;

/// Scale of the integer copy: a unit vector's values lie in [−1, 1].
const SCALE: f32 = 127.0;

/// One subject's best score.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// The subject.
    pub subject: String,
    /// Their best template's cosine with the probe.
    pub score: f32,
}

/// Face templates of one model in memory, for 1:N scans.
pub struct Gallery {
    model_id: String,
    dim: usize,
    /// Row-major, `dim` floats a template.
    rows: Zeroizing<Vec<f32>>,
    /// The same, × 127 and rounded.
    quantised: Zeroizing<Vec<i8>>,
    /// Each row's sum of absolute values (its L1 norm), for the error bound.
    l1: Vec<f32>,
    /// Each row's subject, as an index into `subjects`.
    owner: Vec<u32>,
    subjects: Vec<String>,
    index: HashMap<String, u32>,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gallery")
            .field("model_id", &self.model_id)
            .field("templates", &self.len())
            .field("subjects", &self.subjects.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Gallery {
    fn drop(&mut self) {
        self.l1.zeroize();
    }
}

impl Gallery {
    /// An empty gallery of `dim`-dimensional templates of `model_id`.
    pub fn new(model_id: &str, dim: usize) -> Result<Gallery> {
        if dim == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a gallery's templates have at least one dimension",
            ));
        }
        Ok(Gallery {
            model_id: model_id.to_string(),
            dim,
            rows: Zeroizing::new(Vec::new()),
            quantised: Zeroizing::new(Vec::new()),
            l1: Vec::new(),
            owner: Vec::new(),
            subjects: Vec::new(),
            index: HashMap::new(),
        })
    }

    /// Every face template of `model_id` in `vault`, opened once. Templates of other models
    /// are left out (their subjects must re-enroll to be found).
    pub fn open(vault: &TemplateVault, model_id: &str, dim: usize) -> Result<Gallery> {
        let mut gallery = Gallery::new(model_id, dim)?;
        for summary in vault.subjects()? {
            if summary.face > 0 {
                gallery.load_subject(vault, &summary.subject)?;
            }
        }
        Ok(gallery)
    }

    /// The model the templates come from.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Templates held.
    pub fn len(&self) -> usize {
        self.owner.len()
    }

    /// Whether no template is held.
    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }

    /// Subjects with at least one template held.
    pub fn subject_count(&self) -> usize {
        self.subjects.len()
    }

    /// Memory a template takes: its floats, its integers, its L1 norm and owner.
    pub fn bytes_per_template(&self) -> usize {
        self.dim * (std::mem::size_of::<f32>() + std::mem::size_of::<i8>())
            + std::mem::size_of::<f32>()
            + std::mem::size_of::<u32>()
    }

    /// Adds one template of `subject` (unit length, `dim` values, in the space probes are
    /// compared in).
    pub fn push(&mut self, subject: &str, values: &[f32]) -> Result<()> {
        if values.len() != self.dim || values.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a gallery template has {} finite values, not {}",
                    self.dim,
                    values.len()
                ),
            ));
        }
        let owner = match self.index.get(subject) {
            Some(&i) => i,
            None => {
                let i = u32::try_from(self.subjects.len()).map_err(|_| {
                    Error::new(ErrorKind::InvalidInput, "too many subjects for a gallery")
                })?;
                self.subjects.push(subject.to_string());
                self.index.insert(subject.to_string(), i);
                i
            }
        };
        self.rows.extend_from_slice(values);
        self.quantised.extend(values.iter().map(|v| quantise(*v)));
        self.l1.push(values.iter().map(|v| v.abs()).sum());
        self.owner.push(owner);
        Ok(())
    }

    /// Drops every template of `subject` (after a deletion or before reloading them).
    pub fn remove_subject(&mut self, subject: &str) {
        let Some(gone) = self.index.remove(subject) else {
            return;
        };
        let last = (self.subjects.len() - 1) as u32;
        let dim = self.dim;
        let mut kept = 0;
        for row in 0..self.owner.len() {
            if self.owner[row] == gone {
                continue;
            }
            if kept != row {
                self.rows
                    .copy_within(row * dim..(row + 1) * dim, kept * dim);
                self.quantised
                    .copy_within(row * dim..(row + 1) * dim, kept * dim);
                self.l1[kept] = self.l1[row];
                self.owner[kept] = self.owner[row];
            }
            kept += 1;
        }
        self.rows[kept * dim..].zeroize();
        self.rows.truncate(kept * dim);
        self.quantised[kept * dim..].zeroize();
        self.quantised.truncate(kept * dim);
        self.l1.truncate(kept);
        self.owner.truncate(kept);
        // The last subject takes the freed index.
        if gone != last {
            let moved = self.subjects.swap_remove(gone as usize);
            debug_assert_eq!(moved, subject);
            let renamed = self.subjects[gone as usize].clone();
            self.index.insert(renamed, gone);
            self.owner
                .iter_mut()
                .filter(|o| **o == last)
                .for_each(|o| *o = gone);
        } else {
            self.subjects.pop();
        }
    }

    /// Replaces `subject`'s templates with those the vault holds now (none after a deletion).
    pub fn load_subject(&mut self, vault: &TemplateVault, subject: &str) -> Result<()> {
        self.remove_subject(subject);
        let templates = match vault.load(subject, Modality::Face, &self.model_id) {
            Ok(t) => t,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::TemplateModelMismatch
                ) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for t in &templates {
            self.push(subject, t.values())?;
        }
        Ok(())
    }

    /// The `k` best subjects for a unit-length `probe`, best first, each with their best
    /// template's exact cosine: the integer pass bounds every score, the float pass settles
    /// the templates that bound leaves in contention.
    pub fn top(&self, probe: &[f32], k: usize) -> Result<Vec<Scored>> {
        self.check_probe(probe)?;
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        let probe_q: Vec<i8> = probe.iter().map(|v| quantise(*v)).collect();
        let probe_l1: f32 = probe.iter().map(|v| v.abs()).sum();
        // |a·b − a_q·b_q/127²| ≤ (½‖a‖₁ + ½‖b‖₁)/127 + ¼·dim/127² (each value rounded by at
        // most ½ of 1/127), with a little slack for the float arithmetic of the bound itself.
        let fixed = 0.5 * probe_l1 / SCALE + 0.25 * self.dim as f32 / (SCALE * SCALE) + 1e-4;
        let bound = |row: usize| fixed + 0.5 * self.l1[row] / SCALE;
        // First pass: every score approximately, and the best lower bounds of the k best
        // subjects seen (few: kept in a short list, not an array of every subject).
        let mut approx = vec![0f32; self.len()];
        let mut leaders: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
        for (row, q) in self.quantised.chunks_exact(self.dim).enumerate() {
            let a = dot_i8(&probe_q, q) as f32 / (SCALE * SCALE);
            approx[row] = a;
            let lower = a - bound(row);
            if leaders.len() == k && lower <= leaders[k - 1].1 {
                continue;
            }
            let owner = self.owner[row];
            match leaders.iter().position(|(o, _)| *o == owner) {
                Some(i) if leaders[i].1 >= lower => continue,
                Some(i) => leaders[i].1 = lower,
                None => leaders.push((owner, lower)),
            }
            leaders.sort_by(|a, b| b.1.total_cmp(&a.1));
            leaders.truncate(k);
        }
        // No subject outside the true top k can beat the k-th best lower bound (with fewer
        // than k subjects, every template is in contention).
        let cut = if leaders.len() == k {
            leaders[k - 1].1
        } else {
            f32::NEG_INFINITY
        };
        // Second pass: the exact score of every template whose bound reaches the cut.
        let mut best = vec![f32::NEG_INFINITY; self.subjects.len()];
        for (row, a) in approx.iter().enumerate() {
            if a + bound(row) >= cut {
                let exact = dot_f32(probe, &self.rows[row * self.dim..(row + 1) * self.dim]);
                let owner = self.owner[row] as usize;
                best[owner] = best[owner].max(exact);
            }
        }
        Ok(self.ranked(&best, k))
    }

    /// [`Gallery::top`] by a float scan of every template: the reference the two-pass scan is
    /// tested and benchmarked against.
    pub fn top_exhaustive(&self, probe: &[f32], k: usize) -> Result<Vec<Scored>> {
        self.check_probe(probe)?;
        let mut best = vec![f32::NEG_INFINITY; self.subjects.len()];
        for (row, values) in self.rows.chunks_exact(self.dim).enumerate() {
            let owner = self.owner[row] as usize;
            best[owner] = best[owner].max(dot_f32(probe, values));
        }
        Ok(self.ranked(&best, k))
    }

    fn check_probe(&self, probe: &[f32]) -> Result<()> {
        if probe.len() != self.dim || probe.iter().any(|v| !v.is_finite()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("a probe of {} finite values, not {}", self.dim, probe.len()),
            ));
        }
        Ok(())
    }

    /// The `k` subjects with the highest `best` scores, best first (ties by subject id).
    fn ranked(&self, best: &[f32], k: usize) -> Vec<Scored> {
        let order_by = |a: &usize, b: &usize| {
            best[*b]
                .total_cmp(&best[*a])
                .then_with(|| self.subjects[*a].cmp(&self.subjects[*b]))
        };
        let mut order: Vec<usize> = (0..best.len())
            .filter(|&i| best[i] > f32::NEG_INFINITY)
            .collect();
        // Only the first k need sorting: a million subjects are not.
        if k < order.len() {
            order.select_nth_unstable_by(k, order_by);
            order.truncate(k);
        }
        order.sort_by(order_by);
        order
            .into_iter()
            .map(|i| Scored {
                subject: self.subjects[i].clone(),
                score: best[i],
            })
            .collect()
    }
}

fn quantise(v: f32) -> i8 {
    (v * SCALE).round().clamp(-127.0, 127.0) as i8
}

/// A float dot product in 16 independent lanes, which the compiler vectorises (one running
/// sum would forbid it: float additions do not reassociate). Never inlined: inside a larger
/// loop the compiler was seen to leave it scalar.
#[inline(never)]
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            lanes[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// An integer dot product of 8-bit values in 16 lanes of 32-bit sums (exact). Never inlined,
/// for the same reason (measured: 11.8 ms for a million 128-d rows alone, scalar and three
/// times slower inlined into the scan).
#[inline(never)]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            lanes[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    let tail: i32 = ra
        .iter()
        .zip(rb)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    lanes.iter().sum::<i32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    fn unit(rng: &mut SplitMix64, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim)
            .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    /// A gallery of `subjects` × `per` random unit vectors, plus the probe and a template
    /// near it for subject "target".
    fn gallery(subjects: usize, per: usize, dim: usize, seed: u64) -> (Gallery, Vec<f32>) {
        let mut rng = SplitMix64::new(seed);
        let mut g = Gallery::new("m@1", dim).unwrap();
        for s in 0..subjects {
            for _ in 0..per {
                g.push(&format!("s{s}"), &unit(&mut rng, dim)).unwrap();
            }
        }
        let probe = unit(&mut rng, dim);
        let noise = unit(&mut rng, dim);
        let near: Vec<f32> = probe
            .iter()
            .zip(&noise)
            .map(|(p, n)| 0.8 * p + 0.6 * n)
            .collect();
        g.push("target", &near).unwrap();
        (g, probe)
    }

    #[test]
    fn the_two_pass_scan_equals_the_float_scan() {
        for (subjects, per, dim, seed) in [(500, 3, 128, 1), (2000, 1, 128, 2), (50, 5, 40, 3)] {
            let (g, probe) = gallery(subjects, per, dim, seed);
            for k in [1, 5, 50] {
                let fast = g.top(&probe, k).unwrap();
                let exact = g.top_exhaustive(&probe, k).unwrap();
                assert_eq!(fast, exact, "{subjects} subjects, k {k}");
            }
            assert_eq!(g.top(&probe, 1).unwrap()[0].subject, "target");
        }
    }

    #[test]
    fn subjects_come_and_go() {
        let (mut g, probe) = gallery(20, 2, 64, 4);
        assert_eq!((g.len(), g.subject_count()), (41, 21));
        g.remove_subject("s3");
        g.remove_subject("target");
        g.remove_subject("nobody");
        assert_eq!((g.len(), g.subject_count()), (38, 19));
        let all = g.top_exhaustive(&probe, 100).unwrap();
        assert_eq!(all.len(), 19);
        assert!(
            all.iter()
                .all(|s| s.subject != "s3" && s.subject != "target")
        );
        assert_eq!(g.top(&probe, 100).unwrap(), all);
        // The subject moved into the freed index keeps its templates.
        assert!(all.iter().any(|s| s.subject == "s19"));
    }

    #[test]
    fn bad_vectors_and_probes_are_refused() {
        let mut g = Gallery::new("m@1", 4).unwrap();
        assert_eq!(
            g.push("a", &[1.0, 0.0]).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert!(g.push("a", &[f32::NAN, 0.0, 0.0, 0.0]).is_err());
        g.push("a", &[1.0, 0.0, 0.0, 0.0]).unwrap();
        assert!(g.top(&[1.0, 0.0], 1).is_err());
        assert!(g.top(&[1.0, 0.0, 0.0, 0.0], 0).unwrap().is_empty());
        assert!(Gallery::new("m@1", 0).is_err());
        assert_eq!(g.bytes_per_template(), 4 * 5 + 8);
    }
}
