//! Configuration: built-in defaults, then a TOML file, then environment variables, validated once.
//!
//! Secrets are never stored in the configuration itself; it refers to them by path.
//!
//! ```
//! let config = vouch::Config::default();
//! assert_eq!(config.runtime.intra_threads, 1);
//! config.validate().unwrap();
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// Environment variable naming the ONNX Runtime shared library.
pub const ENV_ORT_LIB: &str = "VOUCH_ORT_LIB";
/// Environment variable naming the directory that holds the model files.
pub const ENV_MODEL_DIR: &str = "VOUCH_MODEL_DIR";
/// Environment variable naming a model manifest to use instead of the built-in one.
pub const ENV_MANIFEST: &str = "VOUCH_MANIFEST";
/// Environment variable setting [`RuntimeConfig::intra_threads`].
pub const ENV_INTRA_THREADS: &str = "VOUCH_INTRA_THREADS";

/// The whole configuration of a vouch engine.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// How ONNX Runtime is loaded and how many threads it uses.
    pub runtime: RuntimeConfig,
    /// Where the models and their manifest are.
    pub models: ModelsConfig,
    /// Face detection and matching settings.
    pub face: FaceConfig,
    /// Passive liveness settings.
    pub liveness: crate::face::LivenessConfig,
    /// Quality gate thresholds.
    pub quality: crate::face::QualityConfig,
    /// Where templates are stored.
    pub store: StoreConfig,
    /// Where template keys come from.
    pub keys: KeysConfig,
    /// Limits on inputs from outside.
    pub limits: LimitsConfig,
    /// Speaker verification and the spoken passphrase.
    pub voice: VoiceConfig,
    /// Policy, calibration, attempt limits, receipts and the audit log.
    pub decisions: DecisionsConfig,
}

/// How decisions are made and recorded (`[decisions]`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionsConfig {
    /// The risk policy (TOML). By default, the built-in one (`policy/default.toml`).
    pub policy: Option<PathBuf>,
    /// Calibration files (`vouch calibrate`), overriding the built-in ones of the same model.
    pub calibration: Vec<PathBuf>,
    /// Report raw scores with decisions. For research only: raw scores let an attacker climb
    /// towards a match, so terminals get a decision and a coarse confidence. By default, off.
    pub research_scores: bool,
    /// The Ed25519 key that signs receipts (mode 0600; `vouch receipt keygen`). By default,
    /// `.vouch/receipt.key`.
    pub receipt_key: PathBuf,
    /// The hash-chained audit log. By default, `.vouch/audit.log`.
    pub audit_log: PathBuf,
    /// Identification's target false-positive identification rate over the whole gallery;
    /// each comparison is held to `fpir / gallery size`. By default, 1e-3.
    pub identify_fpir: f64,
    /// Attempt limits and lockout.
    pub attempts: crate::attempts::AttemptsConfig,
}

impl Default for DecisionsConfig {
    fn default() -> DecisionsConfig {
        DecisionsConfig {
            policy: None,
            calibration: Vec::new(),
            research_scores: false,
            receipt_key: PathBuf::from(".vouch/receipt.key"),
            audit_log: PathBuf::from(".vouch/audit.log"),
            identify_fpir: 1e-3,
            attempts: crate::attempts::AttemptsConfig::default(),
        }
    }
}

/// Speaker verification and the spoken passphrase.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceConfig {
    /// Manifest name of the speaker encoder. By default, `resemblyzer`.
    pub encoder: String,
    /// Voice-encoder cosine a passphrase response must reach against the voiceprint. By
    /// default, 0.80: the equal-error threshold of `vouch eval passphrase` on FSDD's
    /// calibration takes (10–49), which the reported figures do not use.
    pub speaker_threshold: f64,
    /// The challenge's digit must be among this many nearest enrolled digits for every spoken
    /// token (1 = the nearest). By default, 2.
    pub digit_rank: usize,
    /// Digits per passphrase. By default, 6.
    pub passphrase_length: usize,
    /// How long a challenge stays valid, in seconds. By default, 60.
    pub challenge_ttl_seconds: u64,
    /// Limits on recordings (a single spoken digit may last 0.15 s, so the shortest accepted
    /// is 0.1 s here).
    pub audio: crate::voice::AudioLimits,
}

impl VoiceConfig {
    /// The default speaker threshold.
    pub const DEFAULT_SPEAKER_THRESHOLD: f64 = 0.80;
}

impl Default for VoiceConfig {
    fn default() -> VoiceConfig {
        VoiceConfig {
            encoder: "resemblyzer".to_string(),
            speaker_threshold: VoiceConfig::DEFAULT_SPEAKER_THRESHOLD,
            digit_rank: crate::voice::passphrase::DEFAULT_DIGIT_RANK,
            passphrase_length: 6,
            challenge_ttl_seconds: 60,
            audio: crate::voice::AudioLimits {
                min_seconds: 0.1,
                ..crate::voice::AudioLimits::default()
            },
        }
    }
}

/// Where templates are stored.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite template database. By default, `.vouch/templates.db`; `$VOUCH_STORE`
    /// overrides it.
    pub sqlite: PathBuf,
    /// Templates kept per subject and modality (the newest). By default, 5.
    pub max_templates: usize,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            sqlite: PathBuf::from(".vouch/templates.db"),
            max_templates: crate::vault::DEFAULT_MAX_TEMPLATES,
        }
    }
}

/// Where template keys come from. The keys themselves never appear in the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// The key file (mode 0600; made by `vouch keys generate`). By default,
    /// `.vouch/keys.toml`; `$VOUCH_KEYS` overrides it.
    pub file: PathBuf,
    /// An environment variable holding `ID:HEX` to use instead of the file. By default,
    /// `VOUCH_KEK` when it is set.
    pub env: Option<String>,
}

impl Default for KeysConfig {
    fn default() -> KeysConfig {
        KeysConfig {
            file: PathBuf::from(".vouch/keys.toml"),
            env: None,
        }
    }
}

/// How ONNX Runtime is loaded and run.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Path of `libonnxruntime.so`. By default, `$VOUCH_ORT_LIB`, then `$ORT_DYLIB_PATH`, then
    /// `.vouch/lib/libonnxruntime.so` under the working directory (where `scripts/setup.sh`
    /// puts it).
    pub library: Option<PathBuf>,
    /// Intra-op threads per inference session. By default, 1: on small devices several sessions
    /// run side by side, and ONNX Runtime's spinning pools fight each other when oversubscribed.
    pub intra_threads: usize,
    /// The most sessions kept per model, i.e. how many inferences of one model may run at once.
    /// By default, the number of CPU cores.
    pub sessions_per_model: usize,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            library: None,
            intra_threads: 1,
            sessions_per_model: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

/// Where models are found.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// Directory holding the model files named in the manifest. By default, `$VOUCH_MODEL_DIR`,
    /// else `.vouch/models` under the working directory (where `vouch models fetch` copies them).
    pub dir: PathBuf,
    /// A manifest file to use instead of the one built into the library. By default, none.
    pub manifest: Option<PathBuf>,
}

impl Default for ModelsConfig {
    fn default() -> ModelsConfig {
        ModelsConfig {
            dir: PathBuf::from(".vouch/models"),
            manifest: None,
        }
    }
}

/// Face detection and matching settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaceConfig {
    /// Manifest name of the face detector. By default, `yunet_n`.
    pub detector: String,
    /// Manifest name of the face embedder. By default, `mobilefacenet`.
    pub embedder: String,
    /// Minimum detection score (cls × obj) for a face. By default, 0.6 (YuNet's own default).
    pub detection_threshold: f32,
    /// IoU above which overlapping detections are merged. By default, 0.45.
    pub nms_iou: f32,
    /// Images whose longer side exceeds this are downscaled before detection (landmarks are
    /// mapped back to full resolution for alignment). Keeps detection fast on large photos and
    /// keeps large faces within the sizes YuNet was trained on. By default, 640; 0 disables it.
    pub detect_max_side: u32,
    /// Add the embedding of the mirrored crop before normalising (upstream's evaluation
    /// protocol). Doubles embedding time. By default, off.
    pub flip_augment: bool,
    /// Cosine similarity at or above which two faces are declared the same person.
    /// By default, 0.45: see [`FaceConfig::DEFAULT_MATCH_THRESHOLD`].
    pub match_threshold: f32,
}

impl FaceConfig {
    /// The default match threshold for MobileFaceNet cosine scores.
    ///
    /// Chosen on the faces-deepface development pairs (the only labelled face pairs available
    /// to the project): between their highest impostor score (0.39) and their equal-error
    /// threshold (0.47), so figures reported on the same pairs at this threshold are
    /// optimistic. Choose an operating point on your own data for production.
    pub const DEFAULT_MATCH_THRESHOLD: f32 = 0.45;
}

impl Default for FaceConfig {
    fn default() -> FaceConfig {
        FaceConfig {
            detector: "yunet_n".to_string(),
            embedder: "mobilefacenet".to_string(),
            detection_threshold: 0.6,
            nms_iou: 0.45,
            detect_max_side: 640,
            flip_augment: false,
            match_threshold: FaceConfig::DEFAULT_MATCH_THRESHOLD,
        }
    }
}

/// Limits on inputs from outside, enforced before any expensive work.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest encoded image accepted, in bytes. By default, 32 MiB.
    pub max_image_bytes: usize,
    /// Largest decoded image accepted, in pixels (width × height), checked from the header
    /// before any pixel buffer is allocated. By default, 40 million.
    pub max_image_pixels: u64,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_image_bytes: 32 << 20,
            max_image_pixels: 40_000_000,
        }
    }
}

impl Config {
    /// Built-in defaults overridden by environment variables, validated.
    pub fn from_env() -> Result<Config> {
        let mut config = Config::default();
        config.apply_env()?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults, then the TOML file at `path`, then environment variables, validated.
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("reading config file", path, e))?;
        let mut config = Config::from_toml(&text).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("in {}: {}", path.display(), e.message()),
            )
        })?;
        config.apply_env()?;
        config.validate()?;
        Ok(config)
    }

    /// Defaults overridden by a TOML document (not validated, no environment).
    pub fn from_toml(text: &str) -> Result<Config> {
        toml::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("invalid configuration: {}", e.message()),
            )
        })
    }

    /// Applies `VOUCH_ORT_LIB`, `VOUCH_MODEL_DIR`, `VOUCH_MANIFEST` and `VOUCH_INTRA_THREADS`.
    pub fn apply_env(&mut self) -> Result<()> {
        if let Some(path) = env_path(ENV_ORT_LIB) {
            self.runtime.library = Some(path);
        }
        if let Some(path) = env_path(ENV_MODEL_DIR) {
            self.models.dir = path;
        }
        if let Some(path) = env_path(ENV_MANIFEST) {
            self.models.manifest = Some(path);
        }
        if let Some(path) = env_path("VOUCH_STORE") {
            self.store.sqlite = path;
        }
        if let Some(path) = env_path("VOUCH_KEYS") {
            self.keys.file = path;
        }
        if std::env::var_os("VOUCH_KEK").is_some_and(|v| !v.is_empty()) && self.keys.env.is_none() {
            self.keys.env = Some("VOUCH_KEK".to_string());
        }
        if let Ok(value) = std::env::var(ENV_INTRA_THREADS) {
            self.runtime.intra_threads = value.trim().parse().map_err(|_| {
                Error::new(
                    ErrorKind::Config,
                    format!("{ENV_INTRA_THREADS} must be a whole number, got {value:?}"),
                )
            })?;
        }
        Ok(())
    }

    /// Checks every value once, so that later code can rely on them.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::new(ErrorKind::Config, what.to_string()));
        if !(1..=64).contains(&self.runtime.intra_threads) {
            return bad("runtime.intra_threads must be between 1 and 64");
        }
        if !(1..=256).contains(&self.runtime.sessions_per_model) {
            return bad("runtime.sessions_per_model must be between 1 and 256");
        }
        let face = &self.face;
        if !(face.detection_threshold > 0.0 && face.detection_threshold < 1.0) {
            return bad("face.detection_threshold must be in (0, 1)");
        }
        if !(face.nms_iou > 0.0 && face.nms_iou <= 1.0) {
            return bad("face.nms_iou must be in (0, 1]");
        }
        if face.detect_max_side != 0 && face.detect_max_side < 64 {
            return bad("face.detect_max_side must be 0 (off) or at least 64");
        }
        if !(-1.0..=1.0).contains(&face.match_threshold) {
            return bad("face.match_threshold must be a cosine in [-1, 1]");
        }
        let live = &self.liveness;
        if !(0.0..=1.0).contains(&live.threshold) {
            return bad("liveness.threshold must be in [0, 1]");
        }
        let voice = &self.voice;
        if !(-1.0..=1.0).contains(&voice.speaker_threshold) {
            return bad("voice.speaker_threshold must be a cosine in [-1, 1]");
        }
        if !(1..=5).contains(&voice.digit_rank) {
            return bad("voice.digit_rank must be between 1 and 5");
        }
        if !(4..=16).contains(&voice.passphrase_length) {
            return bad("voice.passphrase_length must be between 4 and 16");
        }
        if !(1..=3600).contains(&voice.challenge_ttl_seconds) {
            return bad("voice.challenge_ttl_seconds must be between 1 and 3600");
        }
        let audio = &voice.audio;
        if !(audio.min_seconds > 0.0
            && audio.min_seconds < audio.max_seconds
            && audio.max_seconds <= 600.0)
        {
            return bad("voice.audio: 0 < min_seconds < max_seconds <= 600 is required");
        }
        let decisions = &self.decisions;
        if !(decisions.identify_fpir > 0.0 && decisions.identify_fpir < 1.0) {
            return bad("decisions.identify_fpir must be in (0, 1)");
        }
        decisions.attempts.validate()?;
        if !(1..=1000).contains(&live.max_frames) {
            return bad("liveness.max_frames must be between 1 and 1000");
        }
        if !(0.0..=1.0).contains(&live.jitter_margin) {
            return bad("liveness.jitter_margin must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&live.min_frame_iou) {
            return bad("liveness.min_frame_iou must be in [0, 1]");
        }
        let q = &self.quality;
        let limits = [
            q.min_face_width,
            q.min_sharpness,
            q.max_yaw_deg,
            q.max_roll_deg,
            q.min_brightness,
            q.max_brightness,
            q.max_clipped,
        ];
        if limits.iter().any(|v| !v.is_finite() || *v < 0.0) || q.min_brightness > q.max_brightness
        {
            return bad(
                "quality limits must be finite, non-negative, and min_brightness <= max_brightness",
            );
        }
        if !(1..=1000).contains(&self.store.max_templates) {
            return bad("store.max_templates must be between 1 and 1000");
        }
        if self.limits.max_image_bytes == 0 || self.limits.max_image_pixels == 0 {
            return bad("limits.max_image_bytes and limits.max_image_pixels must be positive");
        }
        Ok(())
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn toml_overrides_defaults() {
        let config =
            Config::from_toml("[face]\nmatch_threshold = 0.5\n[runtime]\nintra_threads = 2\n")
                .unwrap();
        assert_eq!(config.face.match_threshold, 0.5);
        assert_eq!(config.runtime.intra_threads, 2);
        assert_eq!(config.face.detector, "yunet_n");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("[face]\nmatch_treshold = 0.5\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("match_treshold"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let mut config = Config::default();
        config.face.detection_threshold = 1.5;
        assert_eq!(config.validate().unwrap_err().kind(), ErrorKind::Config);
        let mut config = Config::default();
        config.runtime.intra_threads = 0;
        assert_eq!(config.validate().unwrap_err().kind(), ErrorKind::Config);
    }
}
