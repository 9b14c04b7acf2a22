//! Evaluation: verification metrics (ISO/IEC 19795-1 vocabulary) and dataset readers.
//!
//! Scores are similarities: higher means "more likely the same person", and a comparison is
//! accepted when `score >= threshold`. This module only measures; it never chooses a
//! threshold behind the caller's back.

pub mod cache;
mod csv;
pub mod face;
pub mod identities;
pub mod interval;
pub mod lfw;
pub mod liveness;
pub mod metrics;
pub mod pairs;
pub mod passphrase;
pub mod plot;
pub mod report;
pub mod rng;
pub mod scores;
pub mod voice;

pub use metrics::{
    DetectionCost, Eer, OperatingPoint, RocPoint, ScoreSet, VerificationSummary, auc, det, eer,
    fnmr_at_fmr, min_dcf, roc,
};
pub use pairs::{LabelledPair, read_pair_csv};

/// Every file under `dir`, recursively, whose extension is one of `extensions` (compared
/// case-insensitively), sorted by path.
pub(crate) fn files_under(
    dir: &std::path::Path,
    extensions: &[&str],
) -> crate::error::Result<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let listing = |e| crate::error::Error::io("listing", &d, e);
        for entry in std::fs::read_dir(&d).map_err(listing)? {
            let path = entry.map_err(listing)?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Applies `f` to every item on `threads` scoped workers (each takes the next unclaimed item),
/// calling `on_item` after each; results come back in input order.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    on_item: &(dyn Fn() + Sync),
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let out = f(item);
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((i, out));
                    on_item();
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parallel_map_keeps_input_order_and_counts() {
        let items: Vec<u32> = (0..100).collect();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let out = super::parallel_map(
            &items,
            3,
            &|| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
            |x| x * 2,
        );
        assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<_>>());
        assert_eq!(calls.into_inner(), 100);
    }
}
