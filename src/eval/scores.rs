//! Score files: one labelled comparison score per line, `label,score` under a header.
//!
//! They let a researcher re-score, calibrate or compare systems without re-running the models
//! (`vouch eval scores`, `vouch calibrate scores`), and they hold the fixed inputs of the
//! metric golden tests. Verification labels: `genuine`/`impostor` (also `target`/`nontarget`,
//! `1`/`0`, `same`/`different`). Presentation-attack labels: `bona_fide` (or `live`) and an
//! attack type for everything else.

use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::stats::ScoreSet;

/// One labelled score.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledScore {
    /// The label as written (trimmed, lower-cased).
    pub label: String,
    /// The score.
    pub score: f64,
}

/// Reads a `label,score` file. A header line is required (its column names are free); blank
/// lines are skipped; a missing column, an unparsable or non-finite score is an error naming
/// the line, never a silently dropped row.
pub fn read_scores(path: &Path) -> Result<Vec<LabelledScore>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading scores", path, e))?;
    let bad = |line: usize, what: String| {
        Error::new(
            ErrorKind::Dataset,
            format!("{}:{line}: {what}", path.display()),
        )
    };
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate().skip(1) {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut cells = line.split(',').map(str::trim);
        let (Some(label), Some(score), None) = (cells.next(), cells.next(), cells.next()) else {
            return Err(bad(number, "expected two columns: label,score".into()));
        };
        let score: f64 = score
            .parse()
            .map_err(|_| bad(number, format!("score {score:?} is not a number")))?;
        if !score.is_finite() {
            return Err(bad(number, format!("score {score} is not finite")));
        }
        if label.is_empty() {
            return Err(bad(number, "empty label".into()));
        }
        rows.push(LabelledScore {
            label: label.to_ascii_lowercase(),
            score,
        });
    }
    if rows.is_empty() {
        return Err(Error::new(
            ErrorKind::Dataset,
            format!("{} holds no scores", path.display()),
        ));
    }
    Ok(rows)
}

/// Splits verification scores into genuine and impostor; any other label is an error.
pub fn verification_set(rows: &[LabelledScore]) -> Result<ScoreSet> {
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for row in rows {
        match row.label.as_str() {
            "genuine" | "target" | "1" | "same" | "mated" => genuine.push(row.score),
            "impostor" | "nontarget" | "0" | "different" | "non-mated" => impostor.push(row.score),
            other => {
                return Err(Error::new(
                    ErrorKind::Dataset,
                    format!("label {other:?} is neither genuine nor impostor"),
                ));
            }
        }
    }
    ScoreSet::new(genuine, impostor)
}

/// True for the labels of bona fide (live) presentations.
pub fn is_bona_fide(label: &str) -> bool {
    matches!(label, "bona_fide" | "bonafide" | "bona-fide" | "live")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_splits() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s.csv");
        std::fs::write(&f, "label,score\ngenuine,0.9\n\nImpostor, 0.1\n0,0.2\n").unwrap();
        let rows = read_scores(&f).unwrap();
        assert_eq!(rows.len(), 3);
        let set = verification_set(&rows).unwrap();
        assert_eq!((set.genuine().len(), set.impostor().len()), (1, 2));
    }

    #[test]
    fn bad_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        for (i, text) in [
            "label,score\n",
            "label,score\ngenuine\n",
            "label,score\ngenuine,abc\n",
            "label,score\ngenuine,NaN\n",
            "label,score\ngenuine,inf\n",
            "label,score\ngenuine,0.5,extra\n",
            "label,score\n,0.5\n",
        ]
        .iter()
        .enumerate()
        {
            let f = dir.path().join(format!("{i}.csv"));
            std::fs::write(&f, text).unwrap();
            let err = read_scores(&f).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Dataset, "case {i}: {err}");
        }
        let f = dir.path().join("labels.csv");
        std::fs::write(&f, "label,score\ngenuine,0.5\nmaybe,0.2\n").unwrap();
        let err = verification_set(&read_scores(&f).unwrap()).unwrap_err();
        assert!(err.to_string().contains("maybe"), "{err}");
    }
}
