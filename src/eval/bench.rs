//! Speed benchmarks anyone can run (`vouch bench`).
//!
//! The decision path's speed on one photo, measured through the [`Authenticator`] as a terminal
//! uses it (`vouch bench verify`): a throwaway deployment in a scratch folder (SQLite store, key
//! file, receipt key, audit log with its fsync, a face + liveness policy), the subject enrolled
//! from the photo or other photos, then the photo verified again and again. Each decision's own
//! stage times ([`Timings`]) and the time around the whole call are kept; the report gives their
//! medians and the end-to-end percentiles.
//!
//! The 1:N gallery's scan over synthetic unit vectors (`vouch bench identify`): its two-pass
//! scan beside a float scan of every template, with their results compared.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::authenticator::{
    Authenticator, EnrollRequest, Timings, TransactionContext, VerifyRequest,
};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::policy::Transaction;

/// How a verify benchmark runs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct VerifyBenchOptions {
    /// Timed verifications. By default, 50.
    pub runs: usize,
    /// Verifications before timing starts (sessions created, caches warm). By default, 5.
    pub warmup: usize,
    /// Whether the policy asks for passive liveness beside the face. By default, yes.
    pub liveness: bool,
    /// Whether the tier holds the face to the fused score of every configured embedder
    /// (`face_fusion`). By default, no (the embedder alone, as small payments are verified).
    pub face_fusion: bool,
}

impl Default for VerifyBenchOptions {
    fn default() -> VerifyBenchOptions {
        VerifyBenchOptions {
            runs: 50,
            warmup: 5,
            liveness: true,
            face_fusion: false,
        }
    }
}

/// A verify benchmark's results (`vouch.bench.verify`).
#[derive(Clone, Debug, Serialize)]
pub struct VerifyBenchReport {
    /// Report schema.
    pub schema: &'static str,
    /// The probe: width, height and bytes.
    pub photo: PhotoInfo,
    /// Photos the subject was enrolled from (the probe itself when none were given).
    pub enrolled_from: usize,
    /// How it ran.
    pub options: VerifyBenchOptions,
    /// The models a decision used (`name@sha256-prefix`).
    pub models: Vec<String>,
    /// Outcomes of the timed decisions (`accept` for a genuine photo of the enrolled subject).
    pub outcomes: std::collections::BTreeMap<String, usize>,
    /// Median of each stage's time over the timed decisions, in ms ([`Timings`]).
    pub stages_ms_p50: Timings,
    /// Median time of the whole `Authenticator::verify` call, in ms.
    pub e2e_ms_p50: f64,
    /// 90th percentile of it, in ms.
    pub e2e_ms_p90: f64,
    /// 99th percentile of it, in ms.
    pub e2e_ms_p99: f64,
}

/// What was verified.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PhotoInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Encoded size.
    pub bytes: usize,
}

/// The policy of the benchmark: the face alone, or the face and passive liveness (the
/// built-in `small` tier), at FMR 1e-3; the face's score fused or the embedder's alone.
fn policy(liveness: bool, face_fusion: bool) -> String {
    let factors = if liveness {
        r#"["face", "liveness"]"#
    } else {
        r#"["face"]"#
    };
    format!(
        "version = 1\n\n[[tier]]\nname = \"bench\"\nmax_amount_minor = 100000\nfactors = {factors}\ntarget_fmr = 0.001\nface_fusion = {face_fusion}\n"
    )
}

/// A private folder under the system's temporary folder, removed with its contents on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let mut id = [0u8; 8];
        crate::secure::random(&mut id)?;
        let dir = std::env::temp_dir().join(format!("vouch-bench-{}", hex::encode(id)));
        std::fs::create_dir(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("restricting", &dir, e))?;
        }
        Ok(Scratch(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The value at quantile `q` of `values` (nearest rank; `values` need not be sorted).
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Runs the benchmark: `config` gives the runtime, models and pipeline settings (its store,
/// keys, receipt key, audit log and policy are replaced by the scratch deployment's);
/// `enroll` photos enroll the subject (the probe itself when empty); `on_run` is called after
/// every verification, warm-up included.
pub fn bench_verify(
    mut config: Config,
    probe: &[u8],
    enroll: &[&[u8]],
    options: VerifyBenchOptions,
    on_run: &dyn Fn(),
) -> Result<VerifyBenchReport> {
    if options.runs == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a benchmark needs at least one timed run",
        ));
    }
    let scratch = Scratch::new()?;
    let dir = scratch.path();
    config.store.sqlite = dir.join("templates.db");
    config.keys.file = dir.join("keys.toml");
    config.keys.env = None;
    crate::template::Keyring::generate("bench")?.save(&config.keys.file)?;
    config.decisions.receipt_key = dir.join("receipt.key");
    crate::receipt::ReceiptSigner::generate(&config.decisions.receipt_key)?;
    config.decisions.audit_log = dir.join("audit.log");
    let policy_file = dir.join("policy.toml");
    std::fs::write(&policy_file, policy(options.liveness, options.face_fusion))
        .map_err(|e| Error::io("writing", &policy_file, e))?;
    config.decisions.policy = Some(policy_file);
    // The benchmark measures decisions, not lockouts.
    config.decisions.attempts.max_subject_failures = u32::MAX;
    config.decisions.attempts.max_terminal_failures = u32::MAX;
    let authenticator = Authenticator::open(config.validate()?)?;

    let photo = authenticator.engine().decode_image(probe)?;
    let samples: Vec<&[u8]> = if enroll.is_empty() {
        vec![probe]
    } else {
        enroll.to_vec()
    };
    let enrolled = authenticator.enroll(&EnrollRequest {
        subject: "bench-subject",
        terminal: "bench",
        face: &samples,
        ..EnrollRequest::default()
    })?;
    if enrolled.face_template.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "no enrollment photo was usable ({}); give others with --enroll",
                enrolled
                    .samples
                    .iter()
                    .flat_map(|s| s.reasons.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }

    let frames = [probe];
    let mut e2e = Vec::with_capacity(options.runs);
    let mut stages: Vec<Timings> = Vec::with_capacity(options.runs);
    let mut outcomes = std::collections::BTreeMap::new();
    for run in 0..options.warmup + options.runs {
        let transaction = TransactionContext {
            id: format!("bench-{run}"),
            nonce: format!("n-{run}"),
            transaction: Transaction::new(1000, "EUR", None)?,
        };
        let start = Instant::now();
        let decision = authenticator.verify(&VerifyRequest {
            subject: "bench-subject",
            terminal: "bench",
            transaction: &transaction,
            face_frames: &frames,
            voice: None,
            active: None,
        })?;
        let elapsed = Timings::since(start);
        on_run();
        if run < options.warmup {
            continue;
        }
        e2e.push(elapsed);
        stages.push(decision.timings);
        *outcomes
            .entry(decision.outcome.as_str().to_string())
            .or_insert(0) += 1;
    }
    let engine = authenticator.engine();
    let mut models = vec![
        engine.face().detector().spec().id(),
        engine.face().embedder().spec().id(),
    ];
    if options.liveness {
        models.extend(engine.liveness().models().iter().map(|m| m.spec().id()));
    }
    let median = |f: fn(&Timings) -> f64| quantile(&stages.iter().map(f).collect::<Vec<_>>(), 0.5);
    Ok(VerifyBenchReport {
        schema: "vouch.bench.verify",
        photo: PhotoInfo {
            width: photo.width(),
            height: photo.height(),
            bytes: probe.len(),
        },
        enrolled_from: samples.len(),
        options,
        models,
        outcomes,
        stages_ms_p50: Timings {
            decode_ms: median(|t| t.decode_ms),
            observe_ms: median(|t| t.observe_ms),
            liveness_ms: median(|t| t.liveness_ms),
            embed_ms: median(|t| t.embed_ms),
            match_ms: median(|t| t.match_ms),
            voice_ms: median(|t| t.voice_ms),
            record_ms: median(|t| t.record_ms),
            total_ms: median(|t| t.total_ms),
        },
        e2e_ms_p50: quantile(&e2e, 0.5),
        e2e_ms_p90: quantile(&e2e, 0.9),
        e2e_ms_p99: quantile(&e2e, 0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.99), 5.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_policy_asks_for_what_is_benched() {
        for (liveness, fused) in [(true, false), (false, false), (true, true)] {
            let text = policy(liveness, fused);
            let parsed = crate::policy::Policy::parse(&text).unwrap();
            assert_eq!(parsed.tiers().len(), 1);
            let tier = &parsed.tiers()[0];
            assert_eq!(
                tier.factors.contains(&crate::policy::Factor::Liveness),
                liveness
            );
            assert_eq!(tier.face_fusion, fused);
        }
    }
}

/// How a 1:N scan benchmark runs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct IdentifyBenchOptions {
    /// Templates in the gallery, one subject each. By default, 1,000,000.
    pub templates: usize,
    /// Their dimension. By default, 128 (the face embedder's).
    pub dim: usize,
    /// Timed scans (each with a new probe). By default, 20.
    pub runs: usize,
    /// Subjects returned per scan. By default, 1 (an identification's best).
    pub top_k: usize,
}

impl Default for IdentifyBenchOptions {
    fn default() -> IdentifyBenchOptions {
        IdentifyBenchOptions {
            templates: 1_000_000,
            dim: 128,
            runs: 20,
            top_k: 1,
        }
    }
}

/// A 1:N scan benchmark's results (`vouch.bench.identify`).
#[derive(Clone, Debug, Serialize)]
pub struct IdentifyBenchReport {
    /// Report schema.
    pub schema: &'static str,
    /// How it ran.
    pub options: IdentifyBenchOptions,
    /// Memory a template takes in the gallery, in bytes.
    pub bytes_per_template: usize,
    /// Time to fill the gallery with the synthetic templates, in ms.
    pub build_ms: f64,
    /// Median time of the gallery's scan (8-bit pass, float re-scoring of the contenders).
    pub scan_ms_p50: f64,
    /// Median time of a float scan of every template, for comparison.
    pub exhaustive_ms_p50: f64,
    /// Whether every scan returned exactly the float scan's subjects and scores.
    pub same_results: bool,
    /// Whether every scan's best subject was the one its probe was made near.
    pub found_every_target: bool,
}

/// Times 1:N scans of a gallery of random unit vectors (synthetic: no biometric data),
/// each probe made near one of them (cosine 0.8) as a genuine customer would be.
pub fn bench_identify(options: IdentifyBenchOptions) -> Result<IdentifyBenchReport> {
    use crate::gallery::Gallery;
    use crate::stats::SplitMix64;
    if options.templates == 0 || options.runs == 0 || options.dim == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a scan benchmark needs templates, runs and a dimension",
        ));
    }
    let mut rng = SplitMix64::new(0x5ca0);
    let mut unit = |dim: usize| -> Vec<f32> {
        let v: Vec<f32> = (0..dim)
            .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    };
    let start = Instant::now();
    let mut gallery = Gallery::new("synthetic@0", options.dim)?;
    let mut kept = Vec::with_capacity(options.runs);
    let every = (options.templates / options.runs).max(1);
    for i in 0..options.templates {
        let v = unit(options.dim);
        if i % every == 0 && kept.len() < options.runs {
            kept.push((i, v.clone()));
        }
        gallery.push(&format!("s{i}"), &v)?;
    }
    let build_ms = Timings::since(start);
    let (mut fast, mut exhaustive) = (Vec::new(), Vec::new());
    let (mut same, mut found) = (true, true);
    for (i, target) in &kept {
        let noise = unit(options.dim);
        let probe: Vec<f32> = target
            .iter()
            .zip(&noise)
            .map(|(t, n)| 0.8 * t + 0.6 * n)
            .collect();
        let start = Instant::now();
        let top = gallery.top(&probe, options.top_k)?;
        fast.push(Timings::since(start));
        let start = Instant::now();
        let all = gallery.top_exhaustive(&probe, options.top_k)?;
        exhaustive.push(Timings::since(start));
        same &= top == all;
        found &= top.first().is_some_and(|s| s.subject == format!("s{i}"));
    }
    Ok(IdentifyBenchReport {
        schema: "vouch.bench.identify",
        options,
        bytes_per_template: gallery.bytes_per_template(),
        build_ms,
        scan_ms_p50: quantile(&fast, 0.5),
        exhaustive_ms_p50: quantile(&exhaustive, 0.5),
        same_results: same,
        found_every_target: found,
    })
}
