//! Labelled pair lists: CSV files with `file_x`, `file_y` and a yes/no decision column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::eval::csv::CsvList;

/// Two images and whether they show the same person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledPair {
    /// First image.
    pub a: PathBuf,
    /// Second image.
    pub b: PathBuf,
    /// True for the same person (a genuine pair).
    pub same: bool,
}

/// Reads pair CSVs (header with `file_x`, `file_y` and `decision`, any case; labels
/// `Yes`/`No`, `1`/`0`, `same`/`different`) and resolves each path against `image_dir`: as
/// written, else by its file name alone (lists made elsewhere often carry another prefix).
///
/// The same unordered pair listed twice is kept once; listed twice with opposite labels it is
/// an error. Pairs of an image with itself are skipped.
pub fn read_pair_csv(files: &[&Path], image_dir: &Path) -> Result<Vec<LabelledPair>> {
    let mut seen: HashMap<(PathBuf, PathBuf), bool> = HashMap::new();
    let mut pairs = Vec::new();
    for file in files {
        let list = CsvList::read(file, "pair list")?;
        let [cx, cy, cd] = list.columns([&["file_x"], &["file_y"], &["decision"]])?;
        for row in list.rows() {
            let same = match list.cell(row, cd)?.to_ascii_lowercase().as_str() {
                "yes" | "1" | "same" | "true" => true,
                "no" | "0" | "different" | "false" => false,
                other => return Err(list.error(row.0, format!("label {other:?} is not yes/no"))),
            };
            let a = resolve(image_dir, list.cell(row, cx)?);
            let b = resolve(image_dir, list.cell(row, cy)?);
            if a == b {
                continue;
            }
            let key = if a <= b {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            };
            match seen.get(&key) {
                Some(&label) if label == same => continue,
                Some(_) => {
                    return Err(list.error(
                        row.0,
                        format!(
                            "{} and {} are labelled both same and different",
                            a.display(),
                            b.display()
                        ),
                    ));
                }
                None => {
                    seen.insert(key, same);
                    pairs.push(LabelledPair { a, b, same });
                }
            }
        }
    }
    if pairs.is_empty() {
        return Err(Error::new(
            ErrorKind::Dataset,
            "the pair lists hold no pairs",
        ));
    }
    Ok(pairs)
}

fn resolve(dir: &Path, written: &str) -> PathBuf {
    let direct = dir.join(written);
    if direct.exists() {
        return direct;
    }
    match Path::new(written).file_name() {
        Some(name) => dir.join(name),
        None => direct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dedupes_and_resolves_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.jpg", "b.jpg", "c.jpg"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let one = dir.path().join("one.csv");
        std::fs::write(
            &one,
            "file_x,file_y,Decision\na.jpg,b.jpg,Yes\na.jpg,c.jpg,No\n",
        )
        .unwrap();
        let two = dir.path().join("two.csv");
        std::fs::write(&two, "file_x,file_y,decision,extra\nsome/prefix/b.jpg,some/prefix/a.jpg,Yes,1\nc.jpg,c.jpg,Yes,0\n").unwrap();
        let pairs = read_pair_csv(&[&one, &two], dir.path()).unwrap();
        assert_eq!(pairs.len(), 2);
        assert!(pairs[0].same && !pairs[1].same);
    }

    #[test]
    fn bad_lists_are_dataset_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            "",
            "x,y,z\na,b,Yes\n",
            "file_x,file_y,decision\na.jpg,b.jpg,Maybe\n",
            "file_x,file_y,decision\na.jpg\n",
            "file_x,file_y,decision\na.jpg,b.jpg,Yes\nb.jpg,a.jpg,No\n",
            "file_x,file_y,decision\n",
        ];
        for (i, text) in cases.iter().enumerate() {
            let f = dir.path().join(format!("{i}.csv"));
            std::fs::write(&f, text).unwrap();
            let err = read_pair_csv(&[&f], dir.path()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Dataset, "case {i}: {err}");
        }
    }
}
