//! The GMM-UBM speaker model: its front end, the UBM file (mixture plus score-normalisation
//! cohort), training it from a folder of recordings, and the [`SpeakerModel`] it implements.
//!
//! Front end: 20 MFCC (40 mel filters, Hamming window, c0 replaced by the log energy) and their
//! deltas over ±2 frames, 40 values per 10 ms; only frames inside VAD speech segments; CMVN
//! per recording. Enrollment MAP-adapts the UBM means (relevance factor 16). A probe scores the
//! average top-5 log-likelihood ratio, normalised against a cohort of other speakers (S-norm
//! by default: the mean of the Z-norm, the enrolled model against cohort recordings, and of
//! the T-norm, the probe against cohort models).
//!
//! # File format (version 1)
//! `VOUCHUBM`, a `u32` version, a `u32` header length and a JSON header ([`UbmInfo`]), then
//! little-endian `f32` arrays: weights (K), means (K·D), variances (K·D), cohort models
//! (M·K·D), then cohort recordings' frames (Σ frames · D, their counts in the header); and a
//! SHA-256 of everything before it. A truncated, altered or differently-shaped file is refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::voice::audio::{Audio, AudioLimits};
pub use crate::voice::gmm::GmmProbe;
use crate::voice::gmm::{Gmm, Prepared, TrainingConfig, TrainingStep};
use crate::voice::mfcc::{Features, Mfcc, MfccConfig, cmvn, deltas, stack};
use crate::voice::speaker::{Analysis, SpeakerModel, VoiceSample, Voiceprint, wrong_kind};
use crate::voice::vad::{VadConfig, segments};

const MAGIC: &[u8; 8] = b"VOUCHUBM";
const VERSION: u32 = 1;
/// The front end a UBM was trained with; a file naming another one is refused.
pub const FRONT_END: &str = "mfcc20-mel40-hamming+delta2/vad/cmvn@1";
const MAX_FILE_BYTES: usize = 1 << 30;
/// Frames of speech (10 ms each) a recording needs to be analysed: half a second.
const MIN_SPEECH_FRAMES: usize = 50;

/// The GMM front end: speech-only, normalised MFCC + delta frames of a recording.
#[derive(Debug)]
pub struct FrontEnd {
    mfcc: Mfcc,
    vad: VadConfig,
}

impl FrontEnd {
    /// The front end named by [`FRONT_END`].
    pub fn new() -> Result<FrontEnd> {
        let config = MfccConfig {
            coefficients: 20,
            filters: 40,
            hamming: true,
            ..MfccConfig::default()
        };
        Ok(FrontEnd {
            mfcc: Mfcc::new(&config, crate::voice::SAMPLE_RATE)?,
            vad: VadConfig::default(),
        })
    }

    /// The recording's speech frames, 40 values each. Refused with
    /// [`ErrorKind::AudioTooShort`] when it holds less than half a second of speech.
    pub fn frames(&self, audio: &Audio) -> Result<Features> {
        let samples = audio.samples();
        let cepstra = self.mfcc.compute(samples);
        let all = stack(&[&cepstra, &deltas(&cepstra, 2)]);
        let speech = segments(samples, &self.vad);
        let (frame_len, step) = (400, 160);
        let mut values = Vec::with_capacity(all.values.len());
        for t in 0..all.frames() {
            let centre = t * step + frame_len / 2;
            if speech.iter().any(|s| (s.start..s.end).contains(&centre)) {
                values.extend_from_slice(all.frame(t));
            }
        }
        let mut features = Features {
            values,
            dims: all.dims,
        };
        if features.frames() < MIN_SPEECH_FRAMES {
            return Err(Error::new(
                ErrorKind::AudioTooShort,
                format!(
                    "the recording holds {:.2} s of speech; speaker verification needs at least {:.1} s",
                    features.frames() as f32 / 100.0,
                    MIN_SPEECH_FRAMES as f32 / 100.0
                ),
            ));
        }
        cmvn(&mut features);
        Ok(features)
    }
}

/// The JSON header of a UBM file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UbmInfo {
    /// Mixture components (K).
    pub components: usize,
    /// Frame dimension (D).
    pub dims: usize,
    /// The front end the frames came from ([`FRONT_END`]).
    pub front_end: String,
    /// What it was trained on (a description; e.g. the data set and its licence).
    pub trained_on: String,
    /// Recordings used to train the mixture.
    pub training_recordings: usize,
    /// Frames used by EM.
    pub training_frames: usize,
    /// EM iterations, for reproduction.
    pub em_iterations: usize,
    /// The k-means seed.
    pub seed: u64,
    /// MAP relevance factor used for the cohort models (and enrollment).
    pub relevance: f64,
    /// Frames of each cohort recording kept for Z-norm.
    pub cohort_frames: Vec<usize>,
    /// Creation time, Unix seconds (`$SOURCE_DATE_EPOCH` when it was set).
    pub created_unix: i64,
}

/// A trained UBM with its normalisation cohort.
#[derive(Clone, Debug)]
pub struct Ubm {
    info: UbmInfo,
    gmm: Gmm,
    /// Cohort speakers' adapted means (T-norm).
    cohort_models: Vec<Vec<f64>>,
    /// Cohort recordings' frames (Z-norm), as stored.
    cohort_recordings: Vec<Vec<f64>>,
    sha256: [u8; 32],
}

/// How a UBM file is built from a folder of recordings.
#[derive(Clone, Debug)]
pub struct UbmBuild {
    /// Mixture training.
    pub training: TrainingConfig,
    /// Cohort recordings (each its own speaker in LibriSpeech's train-clean-100 excerpt), chosen
    /// evenly from the sorted file list. By default, 100.
    pub cohort: usize,
    /// Frames kept per cohort recording for Z-norm, evenly spaced. By default, 500 (5 s).
    pub cohort_frames: usize,
    /// MAP relevance factor. By default, 16.
    pub relevance: f64,
    /// The `trained_on` description written into the file.
    pub trained_on: String,
}

impl Default for UbmBuild {
    fn default() -> UbmBuild {
        UbmBuild {
            training: TrainingConfig::default(),
            cohort: 100,
            cohort_frames: 500,
            relevance: 16.0,
            trained_on: String::new(),
        }
    }
}

/// Progress of [`Ubm::train`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BuildProgress {
    /// Recordings analysed so far, of the total.
    Analysed(usize, usize),
    /// A training iteration finished.
    Training(TrainingStep),
    /// Cohort models adapted so far, of the total.
    Cohort(usize, usize),
}

/// The `.flac` and `.wav` files under `dir`, recursively, sorted.
pub fn audio_files(dir: &Path) -> Result<Vec<PathBuf>> {
    crate::listing::files_under(dir, &["flac", "wav"])
}

impl Ubm {
    /// Trains a UBM on the recordings in `files` (any length up to 60 s; shorter than half a
    /// second of speech are skipped and counted) and builds its cohort.
    pub fn train(
        files: &[PathBuf],
        build: &UbmBuild,
        on_progress: &(dyn Fn(BuildProgress) + Sync),
    ) -> Result<Ubm> {
        let front = FrontEnd::new()?;
        let limits = AudioLimits {
            max_seconds: 60.0,
            ..AudioLimits::default()
        };
        let done = std::sync::atomic::AtomicUsize::new(0);
        let tick = || {
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            on_progress(BuildProgress::Analysed(n, files.len()));
        };
        let analysed =
            crate::parallel::parallel_map(files, build.training.threads, &tick, |path| {
                Audio::open(path, &limits).and_then(|a| front.frames(&a))
            });
        let mut recordings = Vec::new();
        for (path, result) in files.iter().zip(analysed) {
            match result {
                Ok(f) => recordings.push(f),
                Err(e) if e.kind() == ErrorKind::AudioTooShort => {}
                Err(e) => {
                    return Err(Error::new(
                        e.kind(),
                        format!("{}: {}", path.display(), e.message()),
                    ));
                }
            }
        }
        if recordings.is_empty() {
            return Err(Error::new(
                ErrorKind::Dataset,
                "no usable speech recordings to train a UBM on",
            ));
        }
        let dims = recordings[0].dims;
        let all: Vec<f64> = recordings
            .iter()
            .flat_map(|r| r.values.iter().copied())
            .collect();
        let gmm = Gmm::train(&all, dims, &build.training, &mut |s| {
            on_progress(BuildProgress::Training(s))
        })?;
        drop(all);

        let m = build.cohort.min(recordings.len());
        let chosen: Vec<&Features> = (0..m)
            .map(|i| &recordings[i * recordings.len() / m.max(1)])
            .collect();
        let mut cohort_models = Vec::with_capacity(m);
        let mut cohort_recordings = Vec::with_capacity(m);
        for (i, features) in chosen.iter().enumerate() {
            cohort_models.push(gmm.adapt_means(&features.values, build.relevance));
            cohort_recordings.push(evenly(&features.values, dims, build.cohort_frames));
            on_progress(BuildProgress::Cohort(i + 1, m));
        }
        let info = UbmInfo {
            components: gmm.components(),
            dims,
            front_end: FRONT_END.to_string(),
            trained_on: build.trained_on.clone(),
            training_recordings: recordings.len(),
            training_frames: recordings
                .iter()
                .map(Features::frames)
                .sum::<usize>()
                .min(build.training.max_frames),
            em_iterations: build.training.em_iterations,
            seed: build.training.seed,
            relevance: build.relevance,
            cohort_frames: cohort_recordings.iter().map(|r| r.len() / dims).collect(),
            created_unix: creation_time(),
        };
        let mut ubm = Ubm {
            info,
            gmm,
            cohort_models,
            cohort_recordings,
            sha256: [0; 32],
        };
        // Round-trip through the stored precision, so a trained UBM scores exactly as its file.
        ubm = Ubm::from_bytes(&ubm.to_bytes()?)?;
        Ok(ubm)
    }

    /// The header.
    pub fn info(&self) -> &UbmInfo {
        &self.info
    }

    /// The mixture.
    pub fn gmm(&self) -> &Gmm {
        &self.gmm
    }

    /// SHA-256 of the file.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    /// The serialised file.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = serde_json::to_vec(&self.info)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("UBM header: {e}")))?;
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        let mut put = |values: &[f64]| {
            for v in values {
                out.extend_from_slice(&(*v as f32).to_le_bytes());
            }
        };
        put(self.gmm.weights());
        put(self.gmm.means());
        put(self.gmm.variances());
        for m in &self.cohort_models {
            put(m);
        }
        for r in &self.cohort_recordings {
            put(r);
        }
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Parses a UBM file, checking its digest, version, front end and every size.
    pub fn from_bytes(bytes: &[u8]) -> Result<Ubm> {
        let bad = |why: &str| Error::new(ErrorKind::TemplateFormat, format!("UBM file: {why}"));
        if bytes.len() > MAX_FILE_BYTES {
            return Err(bad("larger than 1 GiB"));
        }
        if bytes.len() < 16 + 32 || &bytes[..8] != MAGIC {
            return Err(bad("not a vouch UBM file"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(bad("checksum mismatch (truncated or altered)"));
        }
        let version = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
        if version != VERSION {
            return Err(bad(&format!(
                "version {version}; this vouch reads version {VERSION}"
            )));
        }
        let header_len = u32::from_le_bytes([body[12], body[13], body[14], body[15]]) as usize;
        let header = body
            .get(16..16usize.saturating_add(header_len))
            .ok_or_else(|| bad("header runs past the end"))?;
        let info: UbmInfo =
            serde_json::from_slice(header).map_err(|e| bad(&format!("header: {e}")))?;
        if info.front_end != FRONT_END {
            return Err(bad(&format!(
                "trained on front end {:?}; this vouch computes {FRONT_END:?}",
                info.front_end
            )));
        }
        let (k, d) = (info.components, info.dims);
        let kd = k
            .checked_mul(d)
            .filter(|&n| n > 0)
            .ok_or_else(|| bad("empty mixture"))?;
        let cohort_total: usize = info
            .cohort_frames
            .iter()
            .try_fold(0usize, |a, &n| {
                n.checked_mul(d).and_then(|x| a.checked_add(x))
            })
            .ok_or_else(|| bad("cohort sizes overflow"))?;
        let expected = k
            .checked_add(2 * kd)
            .and_then(|n| n.checked_add(info.cohort_frames.len().checked_mul(kd)?))
            .and_then(|n| n.checked_add(cohort_total))
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| bad("sizes overflow"))?;
        let data = &body[16 + header_len..];
        if data.len() != expected {
            return Err(bad(&format!(
                "{} bytes of parameters where the header implies {expected}",
                data.len()
            )));
        }
        let mut floats = data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        let mut take = |n: usize| -> Vec<f64> { floats.by_ref().take(n).collect() };
        let weights = take(k);
        let means = take(kd);
        let variances = take(kd);
        let gmm = Gmm::new(d, weights, means, variances).map_err(|e| bad(e.message()))?;
        let cohort_models: Vec<Vec<f64>> = info.cohort_frames.iter().map(|_| take(kd)).collect();
        let cohort_recordings: Vec<Vec<f64>> =
            info.cohort_frames.iter().map(|&n| take(n * d)).collect();
        if cohort_models
            .iter()
            .chain(&cohort_recordings)
            .flatten()
            .any(|v| !v.is_finite())
        {
            return Err(bad("non-finite cohort values"));
        }
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&Sha256::digest(bytes));
        Ok(Ubm {
            info,
            gmm,
            cohort_models,
            cohort_recordings,
            sha256,
        })
    }

    /// Reads a UBM file.
    pub fn open(path: &Path) -> Result<Ubm> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("reading the UBM", path, e))?;
        if meta.len() > MAX_FILE_BYTES as u64 {
            return Err(Error::new(
                ErrorKind::TemplateFormat,
                format!("{}: larger than 1 GiB, not a UBM", path.display()),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io("reading the UBM", path, e))?;
        Ubm::from_bytes(&bytes)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))
    }

    /// Writes the file atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        crate::secure::write_atomic(
            path,
            &bytes,
            crate::secure::Access::Private,
            crate::secure::Existing::Replace,
        )
        .map_err(|e| Error::io("writing", path, e))
    }
}

/// When a UBM is made: `$SOURCE_DATE_EPOCH` when set (the reproducible-builds convention, so
/// that the same recordings always give the same file and sha256), else now.
fn creation_time() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        })
}

/// At most `max` frames of `values`, evenly spaced.
fn evenly(values: &[f64], dims: usize, max: usize) -> Vec<f64> {
    let n = values.len() / dims;
    if n <= max {
        return values.to_vec();
    }
    (0..max)
        .flat_map(|i| {
            let t = i * n / max;
            values[t * dims..(t + 1) * dims].iter().copied()
        })
        .collect()
}

/// Which score normalisation [`GmmUbm`] reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreNorm {
    /// The raw average log-likelihood ratio.
    None,
    /// Zero normalisation: against the enrolled model's scores on cohort recordings.
    Z,
    /// Test normalisation: against the probe's scores on cohort models.
    T,
    /// Symmetric: the mean of Z and T.
    #[default]
    S,
}

/// Every normalisation of one GMM-UBM comparison.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GmmScores {
    /// Raw average log-likelihood ratio.
    pub raw: f64,
    /// Z-normalised.
    pub z: f64,
    /// T-normalised.
    pub t: f64,
    /// S-normalised.
    pub s: f64,
}

/// The GMM-UBM speaker model.
#[derive(Debug)]
pub struct GmmUbm {
    ubm: Ubm,
    front: FrontEnd,
    id: String,
    top: usize,
    norm: ScoreNorm,
    cohort_probes: Vec<Prepared>,
}

impl GmmUbm {
    /// The model over `ubm`, scoring with `norm` over the top 5 components.
    pub fn new(ubm: Ubm, norm: ScoreNorm) -> Result<GmmUbm> {
        let top = 5;
        let cohort_probes = ubm
            .cohort_recordings
            .iter()
            .map(|r| ubm.gmm.prepare(r, top))
            .collect();
        Ok(GmmUbm {
            id: format!("gmm-ubm@{}", &hex::encode(ubm.sha256)[..12]),
            front: FrontEnd::new()?,
            ubm,
            top,
            norm,
            cohort_probes,
        })
    }

    /// The UBM.
    pub fn ubm(&self) -> &Ubm {
        &self.ubm
    }

    /// The GMM analysis of a recording.
    pub fn probe(&self, audio: &Audio) -> Result<GmmProbe> {
        let frames = self.front.frames(audio)?;
        let prepared = self.ubm.gmm.prepare(&frames.values, self.top);
        let (cohort_mean, cohort_std) = mean_std(
            self.ubm
                .cohort_models
                .iter()
                .map(|m| self.ubm.gmm.llr(m, &prepared)),
        );
        Ok(GmmProbe {
            prepared,
            cohort_mean,
            cohort_std,
        })
    }

    /// Every normalisation of a comparison.
    pub fn scores(&self, voiceprint: &Voiceprint, probe: &GmmProbe) -> Result<GmmScores> {
        voiceprint.check_model(&self.id)?;
        let values = voiceprint.values();
        let kd = self.ubm.gmm.means().len();
        if values.len() != kd + 2 {
            return Err(Error::new(
                ErrorKind::TemplateFormat,
                "a GMM-UBM voiceprint holds the adapted means and two normalisation values",
            ));
        }
        let (z_mean, z_std) = (f64::from(values[0]), f64::from(values[1]));
        let means: Vec<f64> = values[2..].iter().map(|v| f64::from(*v)).collect();
        let raw = self.ubm.gmm.llr(&means, &probe.prepared);
        let z = (raw - z_mean) / z_std;
        let t = (raw - probe.cohort_mean) / probe.cohort_std;
        Ok(GmmScores {
            raw,
            z,
            t,
            s: 0.5 * (z + t),
        })
    }
}

fn mean_std(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.collect();
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt().max(1e-6))
}

impl SpeakerModel for GmmUbm {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn analyse(&self, audio: &Audio) -> Result<VoiceSample> {
        Ok(VoiceSample {
            model_id: self.id.clone(),
            analysis: Analysis::Gmm(Box::new(self.probe(audio)?)),
        })
    }

    fn enroll(&self, samples: &[&VoiceSample]) -> Result<Voiceprint> {
        let probes = samples
            .iter()
            .map(|s| match s.for_model(&self.id)? {
                Analysis::Gmm(p) => Ok(p.as_ref()),
                Analysis::Embedding(_) => Err(wrong_kind()),
            })
            .collect::<Result<Vec<&GmmProbe>>>()?;
        self.enroll_probes(&probes)
    }

    fn score(&self, voiceprint: &Voiceprint, probe: &VoiceSample) -> Result<f64> {
        let Analysis::Gmm(p) = probe.for_model(&self.id)? else {
            return Err(wrong_kind());
        };
        let s = self.scores(voiceprint, p)?;
        Ok(match self.norm {
            ScoreNorm::None => s.raw,
            ScoreNorm::Z => s.z,
            ScoreNorm::T => s.t,
            ScoreNorm::S => s.s,
        })
    }

    fn model_sha256(&self) -> [u8; 32] {
        self.ubm.sha256
    }

    fn compares_embeddings(&self) -> bool {
        false
    }
}

impl GmmUbm {
    /// MAP-adapted means over all the probes' frames, with the model's Z-norm statistics
    /// against the cohort recordings.
    pub fn enroll_probes(&self, probes: &[&GmmProbe]) -> Result<Voiceprint> {
        let mut frames = Vec::new();
        for p in probes {
            frames.extend_from_slice(p.prepared.values());
        }
        if frames.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "enrollment needs at least one recording",
            ));
        }
        let means = self.ubm.gmm.adapt_means(&frames, self.ubm.info.relevance);
        let (z_mean, z_std) = mean_std(
            self.cohort_probes
                .iter()
                .map(|p| self.ubm.gmm.llr(&means, p)),
        );
        let mut values = Vec::with_capacity(means.len() + 2);
        values.push(z_mean as f32);
        values.push(z_std as f32);
        values.extend(means.iter().map(|v| *v as f32));
        Voiceprint::new(self.id.clone(), values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_ubm() -> Ubm {
        let gmm = Gmm::new(
            2,
            vec![0.25, 0.75],
            vec![1.0, -1.0, 0.5, 2.0],
            vec![1.0, 0.5, 2.0, 1.5],
        )
        .unwrap();
        Ubm {
            info: UbmInfo {
                components: 2,
                dims: 2,
                front_end: FRONT_END.into(),
                trained_on: "unit test".into(),
                training_recordings: 1,
                training_frames: 10,
                em_iterations: 1,
                seed: 1,
                relevance: 16.0,
                cohort_frames: vec![3],
                created_unix: 0,
            },
            gmm,
            cohort_models: vec![vec![1.5, -1.0, 0.5, 2.5]],
            cohort_recordings: vec![vec![0.0, 1.0, 2.0, 3.0, -1.0, 0.5]],
            sha256: [0; 32],
        }
    }

    #[test]
    fn a_ubm_file_round_trips() {
        let bytes = tiny_ubm().to_bytes().unwrap();
        let back = Ubm::from_bytes(&bytes).unwrap();
        assert_eq!(back.info, tiny_ubm().info);
        assert_eq!(back.gmm, tiny_ubm().gmm);
        assert_eq!(back.cohort_recordings, tiny_ubm().cohort_recordings);
        assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn truncated_altered_or_foreign_files_are_refused() {
        let bytes = tiny_ubm().to_bytes().unwrap();
        for cut in [0, 7, 20, bytes.len() / 2, bytes.len() - 1] {
            let e = Ubm::from_bytes(&bytes[..cut]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TemplateFormat, "cut at {cut}");
        }
        for at in [8, 30, bytes.len() - 40, bytes.len() - 1] {
            let mut altered = bytes.clone();
            altered[at] ^= 1;
            assert!(Ubm::from_bytes(&altered).is_err(), "flip at {at}");
        }
        let mut other = tiny_ubm();
        other.info.front_end = "mfcc13@0".into();
        let e = Ubm::from_bytes(&other.to_bytes().unwrap()).unwrap_err();
        assert!(e.message().contains("front end"), "{e}");
        // A header claiming more cohort frames than the file holds.
        let mut lying = tiny_ubm();
        lying.info.cohort_frames = vec![4];
        let e = Ubm::from_bytes(&lying.to_bytes().unwrap()).unwrap_err();
        assert!(e.message().contains("bytes of parameters"), "{e}");
    }

    #[test]
    fn voiceprints_of_another_model_or_shape_are_refused() {
        let model = GmmUbm::new(tiny_ubm(), ScoreNorm::S).unwrap();
        let probe = GmmProbe {
            prepared: model.ubm.gmm.prepare(&[0.0, 1.0, 1.0, 0.0], 2),
            cohort_mean: 0.0,
            cohort_std: 1.0,
        };
        let print = model.enroll_probes(&[&probe]).unwrap();
        assert!(model.scores(&print, &probe).unwrap().raw.is_finite());
        let foreign = Voiceprint::new("resemblyzer@0123", print.values().to_vec()).unwrap();
        let e = model.scores(&foreign, &probe).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TemplateModelMismatch);
        let short = Voiceprint::new(model.model_id(), vec![0.0, 1.0, 2.0]).unwrap();
        assert_eq!(
            model.scores(&short, &probe).unwrap_err().kind(),
            ErrorKind::TemplateFormat
        );
    }
}
