//! Spreading independent work over scoped threads, results in input order.
//!
//! A leaf shared by the bootstrap, evaluation and training: the CPU-bound loops that have no
//! worker pool of their own.

/// Applies `f` to every item on `threads` scoped workers (each takes the next unclaimed item),
/// calling `on_item` after each; results come back in input order.
pub fn parallel_map<T: Sync, R: Send>(
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
