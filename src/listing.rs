//! Listing data folders: every file of some kinds under a folder, in a stable order.
//!
//! A leaf shared by dataset readers (evaluation) and model training (the UBM).

/// Every file under `dir`, recursively, whose extension is one of `extensions` (compared
/// case-insensitively), sorted by path.
pub fn files_under(
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
