//! Measuring liveness fusions: the per-model scores of labelled presentations (scored once,
//! kept in a CSV so a fusion can be fitted many times), each way of fusing them (the plain
//! mean, a learned logistic fusion) judged at the threshold chosen for a target APCER, in
//! sample and leave-one-subject-out.
//!
//! In-sample figures judge the data the fusion and the threshold were learned on, and are
//! optimistic; leave-one-subject-out learns both without one subject, judges that subject's
//! presentations, and pools the decisions over subjects: the figure to quote.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::eval::csv::CsvList;
use crate::eval::liveness::ScoredSample;
use crate::face::liveness_fusion::LivenessFusion;
use crate::score::liveness::{HeldOut, PadPoint, PadScores, fit_fusion, threshold_at_apcer};
use crate::secure::{Access, Existing};

/// How the models' scores of a frame become one score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fuser {
    /// The mean of the models' live probabilities (the engine's default).
    Mean,
    /// A logistic fusion learned on the data, with this L2 penalty.
    Logistic {
        /// The L2 penalty on the weights.
        l2: f64,
    },
}

impl Fuser {
    /// Learns the fuser on `train` (the mean learns nothing).
    fn learn(self, models: &[String], train: &[PadScores]) -> Result<Learned> {
        Ok(match self {
            Fuser::Mean => Learned::Mean,
            Fuser::Logistic { l2 } => Learned::Logistic(fit_fusion(models, train, l2)?),
        })
    }
}

enum Learned {
    Mean,
    Logistic(LivenessFusion),
}

impl Learned {
    fn score(&self, live: &[f32]) -> Result<f32> {
        match self {
            // as the engine averages: f32 sum over the models, divided by their count
            Learned::Mean => Ok(live.iter().sum::<f32>() / live.len().max(1) as f32),
            Learned::Logistic(f) => f.fuse(live),
        }
    }

    fn scores<'a>(&self, samples: &'a [PadScores]) -> Result<Vec<(f32, Option<&'a str>)>> {
        samples
            .iter()
            .map(|s| Ok((self.score(&s.live)?, s.attack.as_deref())))
            .collect()
    }
}

/// A fuser's figures at the threshold chosen for a target APCER.
#[derive(Clone, Debug, PartialEq)]
pub struct FuserFigures {
    /// The threshold chosen on all the data.
    pub threshold: f32,
    /// Its figures on that same data (optimistic).
    pub in_sample: PadPoint,
    /// Leave-one-group-out figures, when groups were given.
    pub held_out: Option<HeldOut>,
}

/// Learns `fuser` on `samples`, chooses the threshold for `target_apcer` on its scores, and
/// judges the samples with it (in sample); with `groups` (one per sample, e.g. the subject),
/// also leaves each group out in turn: learns fuser and threshold on the others and judges
/// the group's samples with them, pooling every decision (`protocol` describes the groups).
pub fn evaluate(
    fuser: Fuser,
    models: &[String],
    samples: &[PadScores],
    groups: Option<(&[String], &str)>,
    target_apcer: f64,
) -> Result<FuserFigures> {
    let learned = fuser.learn(models, samples)?;
    let scores = learned.scores(samples)?;
    let threshold = threshold_at_apcer(&scores, target_apcer)?;
    let in_sample = PadPoint::at(&scores, threshold)?;
    let held_out = match groups {
        None => None,
        Some((groups, protocol)) => {
            if groups.len() != samples.len() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{} groups for {} samples", groups.len(), samples.len()),
                ));
            }
            let names: BTreeSet<&str> = groups.iter().map(String::as_str).collect();
            if names.len() < 2 {
                return Err(Error::new(
                    ErrorKind::Dataset,
                    "leaving one subject out needs at least two subjects",
                ));
            }
            let mut judged: Vec<(bool, Option<&str>)> = Vec::with_capacity(samples.len());
            for &held in &names {
                let (test, train): (Vec<_>, Vec<_>) = samples
                    .iter()
                    .zip(groups)
                    .partition(|(_, g)| g.as_str() == held);
                let train: Vec<PadScores> = train.into_iter().map(|(s, _)| s.clone()).collect();
                let fold = |e: Error| {
                    Error::new(e.kind(), format!("without subject {held}: {}", e.message()))
                };
                let learned = fuser.learn(models, &train).map_err(fold)?;
                let t = threshold_at_apcer(&learned.scores(&train)?, target_apcer).map_err(fold)?;
                for (s, _) in test {
                    judged.push((learned.score(&s.live)? >= t, s.attack.as_deref()));
                }
            }
            Some(HeldOut {
                protocol: protocol.to_string(),
                groups: names.len(),
                point: PadPoint::tally(judged)?,
            })
        }
    };
    Ok(FuserFigures {
        threshold,
        in_sample,
        held_out,
    })
}

/// The subject of a file: its name up to the first `separator` (NUAA: `0001_00_00_01_0.jpg`
/// is subject `0001` with `_`). A name without the separator is a dataset error naming it.
pub fn subject_of(path: &Path, separator: &str) -> Result<String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.split_once(separator) {
        Some((subject, _)) if !subject.is_empty() && !separator.is_empty() => {
            Ok(subject.to_string())
        }
        _ => Err(Error::new(
            ErrorKind::Dataset,
            format!(
                "cannot read a subject from {}: no {separator:?} after a non-empty prefix",
                path.display()
            ),
        )),
    }
}

/// One row of a model score file: the file (as listed) and its scores.
pub type ScoreRow = (String, PadScores);

/// The per-model scores of scored samples, as [`PadScores`] in `models` order.
pub fn pad_scores(scored: &[ScoredSample]) -> Vec<PadScores> {
    scored
        .iter()
        .map(|s| PadScores {
            live: s.per_model.iter().map(|m| m.live).collect(),
            attack: s.attack.clone(),
        })
        .collect()
}

/// Writes per-model scores as CSV: `file,label,MODEL_ID…`, one row per sample (label
/// `bona_fide` or the attack species; probabilities printed so they read back exactly).
pub fn write_model_scores(
    path: &Path,
    models: &[String],
    rows: &[(String, PadScores)],
) -> Result<()> {
    let mut text = format!("file,label,{}\n", models.join(","));
    for (file, s) in rows {
        text.push_str(file);
        text.push(',');
        text.push_str(s.attack.as_deref().unwrap_or("bona_fide"));
        for p in &s.live {
            text.push_str(&format!(",{p}"));
        }
        text.push('\n');
    }
    crate::secure::write_atomic(path, text.as_bytes(), Access::Shared, Existing::Replace)
        .map_err(|e| Error::io("writing the model scores", path, e))
}

/// Reads a file [`write_model_scores`] wrote: the model ids of its header, and the rows.
pub fn read_model_scores(path: &Path) -> Result<(Vec<String>, Vec<ScoreRow>)> {
    let csv = CsvList::read(path, "model score file")?;
    let [file_col, label_col] = csv.columns([&["file"], &["label"]])?;
    let models: Vec<String> = csv.header()[2..].to_vec();
    if file_col != 0 || label_col != 1 || models.is_empty() {
        return Err(csv.error(
            1,
            "the header must be file,label and one column per model id",
        ));
    }
    let mut rows = Vec::new();
    for row in csv.rows() {
        let file = csv.cell(row, 0)?.to_string();
        let label = csv.cell(row, 1)?.to_ascii_lowercase();
        let live = (2..2 + models.len())
            .map(|c| {
                let cell = csv.cell(row, c)?;
                cell.parse::<f32>()
                    .ok()
                    .filter(|p| p.is_finite())
                    .ok_or_else(|| csv.error(row.0, format!("{cell:?} is not a finite score")))
            })
            .collect::<Result<Vec<f32>>>()?;
        let attack = (!crate::eval::scores::is_bona_fide(&label)).then_some(label);
        rows.push((file, PadScores { live, attack }));
    }
    if rows.is_empty() {
        return Err(csv.error(1, "the score file holds no rows"));
    }
    Ok((models, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(live: &[f32], attack: Option<&str>) -> PadScores {
        PadScores {
            live: live.to_vec(),
            attack: attack.map(str::to_string),
        }
    }

    #[test]
    fn held_out_figures_use_thresholds_learned_without_the_subject() {
        // three subjects; subject c's bona fide presentations score lower than anyone's
        let mut samples = Vec::new();
        let mut groups = Vec::new();
        for (g, live_at) in [("a", 0.9f32), ("b", 0.85), ("c", 0.55)] {
            for i in 0..20 {
                let d = i as f32 / 1000.0;
                samples.push(sample(&[live_at + d, live_at - d], None));
                samples.push(sample(&[0.3 + d, 0.2 + d], Some("print")));
                groups.push(g.to_string());
                groups.push(g.to_string());
            }
        }
        let ids = vec!["m@1".to_string(), "n@2".to_string()];
        let f = evaluate(
            Fuser::Mean,
            &ids,
            &samples,
            Some((&groups, "subjects")),
            0.01,
        )
        .unwrap();
        assert_eq!(f.in_sample.bpcer, 0.0);
        let held = f.held_out.unwrap();
        assert_eq!(held.groups, 3);
        assert_eq!(held.point.bona_fide, 60);
        assert_eq!(held.point.attacks[0].count, 60);
        // every fold keeps its prints out
        assert_eq!(held.point.max_apcer, 0.0);
        let logistic = Fuser::Logistic { l2: 1.0 };
        let f = evaluate(logistic, &ids, &samples, Some((&groups, "subjects")), 0.01).unwrap();
        assert!(f.held_out.is_some());
        assert!(evaluate(logistic, &ids, &samples, Some((&groups[1..], "x")), 0.01).is_err());
    }

    #[test]
    fn subjects_are_read_from_names() {
        let p = Path::new("ClientRaw/0001/0001_00_00_01_0.jpg");
        assert_eq!(subject_of(p, "_").unwrap(), "0001");
        for bad in ["x/nosep.jpg", "x/_lead.jpg"] {
            assert_eq!(
                subject_of(Path::new(bad), "_").unwrap_err().kind(),
                ErrorKind::Dataset
            );
        }
    }

    #[test]
    fn model_scores_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores.csv");
        let ids = vec!["m@1".to_string(), "n@2".to_string()];
        let rows = vec![
            ("a.jpg".to_string(), sample(&[0.123_456_79, 1.0e-7], None)),
            (
                "b.jpg".to_string(),
                sample(&[0.5, 0.999_999_9], Some("print")),
            ),
        ];
        write_model_scores(&path, &ids, &rows).unwrap();
        let (models, back) = read_model_scores(&path).unwrap();
        assert_eq!(models, ids);
        assert_eq!(back, rows);
        std::fs::write(&path, "file,label,m@1\na.jpg,live,NaN\n").unwrap();
        assert_eq!(
            read_model_scores(&path).unwrap_err().kind(),
            ErrorKind::Dataset
        );
        std::fs::write(&path, "label,file,m@1\nlive,a.jpg,0.5\n").unwrap();
        assert_eq!(
            read_model_scores(&path).unwrap_err().kind(),
            ErrorKind::Dataset
        );
    }
}
