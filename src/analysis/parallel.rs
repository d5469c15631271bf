//! The samples of crop and interlace detection run side by side: a leaf
//! that both detectors use.

/// Runs `f` over `items` on as many threads as there are cores, results in
/// the items' order (the samples of crop and interlace detection).
pub(crate) fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(items.len().max(1));
    let chunk = items.len().div_ceil(workers).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(chunk).map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("analysis worker")).collect()
    })
}
