//! Metric golden tests: vouch's EER, FNMR@FMR, AUC, minDCF and APCER/BPCER against values an
//! independent implementation (scikit-learn and NumPy, `fixtures/gen/metrics_golden.py`)
//! computed once on the same fixed score files.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vouch::eval::liveness::{ScoredSample, summarize};
use vouch::eval::scores::{is_bona_fide, read_scores, verification_set};
use vouch::eval::{auc, eer, fnmr_at_fmr, min_dcf};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(golden().join("metrics.json")).unwrap()).unwrap()
}

fn close(what: &str, ours: f64, theirs: &Value) {
    let theirs = theirs.as_f64().unwrap();
    assert!(
        (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
        "{what}: vouch {ours}, reference {theirs}"
    );
}

#[test]
fn golden_verification_metrics_match_scikit_learn() {
    let expected = expected();
    let sets = expected["verification"].as_object().unwrap();
    assert_eq!(sets.len(), 3);
    for (name, want) in sets {
        let rows = read_scores(&golden().join(format!("scores/{name}.csv"))).unwrap();
        let set = verification_set(&rows).unwrap();
        assert_eq!(
            set.genuine().len() as u64,
            want["genuine"].as_u64().unwrap()
        );
        assert_eq!(
            set.impostor().len() as u64,
            want["impostor"].as_u64().unwrap()
        );
        close(&format!("{name} AUC"), auc(&set), &want["auc"]);
        let e = eer(&set);
        close(&format!("{name} EER"), e.rate, &want["eer"]["rate"]);
        close(
            &format!("{name} EER threshold"),
            e.threshold,
            &want["eer"]["threshold"],
        );
        for point in want["fnmr_at_fmr"].as_array().unwrap() {
            let target = point["target_fmr"].as_f64().unwrap();
            let op = fnmr_at_fmr(&set, target);
            close(&format!("{name} FNMR@{target}"), op.fnmr, &point["fnmr"]);
            close(&format!("{name} FMR@{target}"), op.fmr, &point["fmr"]);
            assert_eq!(
                op.impostors_accepted as u64,
                point["impostors_accepted"].as_u64().unwrap(),
                "{name} impostors accepted at {target}"
            );
        }
        for p in [0.01, 0.05] {
            let ours = min_dcf(&set, p, 1.0, 1.0).min_dcf;
            close(
                &format!("{name} minDCF({p})"),
                ours,
                &want[format!("min_dcf_p{p}")],
            );
        }
    }
}

#[test]
fn golden_presentation_attack_metrics_match_numpy() {
    let expected = expected();
    let want = &expected["pad"]["pad"];
    let rows = read_scores(&golden().join("scores/pad.csv")).unwrap();
    let scored = rows
        .iter()
        .map(|r| ScoredSample {
            path: PathBuf::from("-"),
            attack: (!is_bona_fide(&r.label)).then(|| r.label.clone()),
            score: r.score,
            per_model: vec![],
        })
        .collect();
    let summary = summarize(scored, vec![], want["threshold"].as_f64().unwrap()).unwrap();
    assert_eq!(
        summary.bona_fide as u64,
        want["bona_fide"].as_u64().unwrap()
    );
    close("BPCER", summary.bpcer, &want["bpcer"]);
    close("max APCER", summary.max_apcer, &want["max_apcer"]);
    close("ACER", summary.acer, &want["acer"]);
    let per = want["per_attack"].as_object().unwrap();
    assert_eq!(summary.per_attack.len(), per.len());
    for figures in &summary.per_attack {
        let w = &per[&figures.attack];
        assert_eq!(figures.count as u64, w["count"].as_u64().unwrap());
        close(
            &format!("APCER {}", figures.attack),
            figures.apcer,
            &w["apcer"],
        );
        for (op, theirs) in figures
            .bpcer_at_apcer
            .iter()
            .zip(w["bpcer_at_apcer"].as_array().unwrap())
        {
            close(
                &format!("BPCER@APCER {} {}", op.target_fmr, figures.attack),
                op.fnmr,
                theirs,
            );
        }
    }
}
