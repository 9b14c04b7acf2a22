//! The labelled lists the datasets come as (pair lists, liveness lists, trial lists): a
//! header row naming the columns, then comma-separated rows. Cells are trimmed, column names
//! compared case-insensitively, blank lines skipped, and every error names the file and line.
//! (No quoting: dataset paths with commas are not supported, and say so by a column-count
//! error rather than a silently wrong split.)

use std::fmt::Display;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};

/// A list read into memory.
pub(crate) struct CsvList {
    path: PathBuf,
    header: Vec<String>,
    /// (1-based line number, cells) of every non-blank row after the header.
    rows: Vec<(usize, Vec<String>)>,
}

impl CsvList {
    /// Reads `path`; `what` names the list in I/O errors ("pair list", …). An empty file is
    /// a dataset error.
    pub(crate) fn read(path: &Path, what: &str) -> Result<CsvList> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(&format!("reading the {what}"), path, e))?;
        let mut lines = text.lines().enumerate();
        let split =
            |line: &str| -> Vec<String> { line.split(',').map(|c| c.trim().to_string()).collect() };
        let Some((_, header)) = lines.next() else {
            return Err(dataset_error(path, 1, format!("the {what} is empty")));
        };
        let header = split(header)
            .into_iter()
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let rows = lines
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| (i + 1, split(line)))
            .collect();
        Ok(CsvList {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// The index of the first column named one of `names` (lower case).
    pub(crate) fn column(&self, names: &[&str]) -> Option<usize> {
        self.header.iter().position(|c| names.contains(&c.as_str()))
    }

    /// The columns named by each entry of `wanted` (each a set of accepted names), or an
    /// error listing what the header needs.
    pub(crate) fn columns<const N: usize>(&self, wanted: [&[&str]; N]) -> Result<[usize; N]> {
        let mut found = [0; N];
        for (slot, names) in found.iter_mut().zip(wanted) {
            *slot = self.column(names).ok_or_else(|| {
                let needed: Vec<&str> = wanted.iter().map(|n| n[0]).collect();
                self.error(1, format!("the header needs columns {}", needed.join(", ")))
            })?;
        }
        Ok(found)
    }

    /// The column names, lower case, in file order.
    pub(crate) fn header(&self) -> &[String] {
        &self.header
    }

    /// The data rows: line number and cells.
    pub(crate) fn rows(&self) -> &[(usize, Vec<String>)] {
        &self.rows
    }

    /// The cell of `column` in a row, or an error naming the line when it is missing or empty.
    pub(crate) fn cell<'a>(&self, row: &'a (usize, Vec<String>), column: usize) -> Result<&'a str> {
        row.1
            .get(column)
            .map(String::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                self.error(
                    row.0,
                    format!("column {} is missing or empty", self.header[column]),
                )
            })
    }

    /// A dataset error at `line` of this list.
    pub(crate) fn error(&self, line: usize, what: impl Display) -> Error {
        dataset_error(&self.path, line, what)
    }
}

fn dataset_error(path: &Path, line: usize, what: impl Display) -> Error {
    Error::new(
        ErrorKind::Dataset,
        format!("{}:{line}: {what}", path.display()),
    )
}
