//! Configuration: built-in defaults, then a TOML file, then environment variables, validated
//! once into a [`ValidConfig`].
//!
//! Each section belongs to the module it configures, which documents its keys and checks its
//! values (`[face]` to [`crate::face`], `[decisions]` to [`crate::decision`], …); this module
//! only composes them, reads the environment (it is the library's only reader of
//! configuration variables) and validates the whole once. Code that needs a checked
//! configuration takes a [`ValidConfig`], which only [`Config::validate`] makes.
//!
//! Secrets are never stored in the configuration: it names the files (or the variable) that
//! hold them, and the modules that use a secret read it themselves.
//!
//! Settings that weaken security sit behind [`Config::dangerous`] (`[dangerous]` in TOML), and
//! turning one on is logged.
//!
//! ```
//! let config = vouch::Config::default().validate().unwrap();
//! assert_eq!(config.runtime.intra_threads, 1);
//! ```

use std::ops::Deref;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::score::liveness::LivenessCalibration;

pub use crate::decision::{DecisionsConfig, QualityConfig};
pub use crate::face::image::LimitsConfig;
pub use crate::face::{FaceConfig, LivenessConfig};
pub use crate::models::ModelsConfig;
pub use crate::runtime::{ENV_ORT_DYLIB_PATH, ENV_ORT_LIB, RuntimeConfig};
pub use crate::store::StoreConfig;
pub use crate::template::KeysConfig;
pub use crate::voice::VoiceConfig;

/// Environment variable naming the directory that holds the model files.
pub const ENV_MODEL_DIR: &str = "VOUCH_MODEL_DIR";
/// Environment variable naming a model manifest to use instead of the built-in one.
pub const ENV_MANIFEST: &str = "VOUCH_MANIFEST";
/// Environment variable setting [`RuntimeConfig::intra_threads`].
pub const ENV_INTRA_THREADS: &str = "VOUCH_INTRA_THREADS";
/// Environment variable naming the SQLite template store ([`StoreConfig::sqlite`]).
pub const ENV_STORE: &str = "VOUCH_STORE";
/// Environment variable naming the key file ([`KeysConfig::file`]).
pub const ENV_KEYS: &str = "VOUCH_KEYS";
/// Environment variable holding a key-encryption key (`ID:HEX`) to use instead of the key
/// file; only its presence is read here ([`KeysConfig::env`]).
pub const ENV_KEK: &str = "VOUCH_KEK";
/// Environment variable naming the GMM-UBM file (`voice.ubm`).
pub const ENV_UBM: &str = "VOUCH_UBM";

/// The whole configuration of a vouch deployment, as read; [`Config::validate`] checks it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// How ONNX Runtime is loaded and how many threads it uses.
    pub runtime: RuntimeConfig,
    /// Where the models and their manifest are.
    pub models: ModelsConfig,
    /// Face detection and embedding.
    pub face: FaceConfig,
    /// Passive liveness models and how frames are scored.
    pub liveness: LivenessConfig,
    /// The quality gate's limits.
    pub quality: QualityConfig,
    /// Where templates are stored.
    pub store: StoreConfig,
    /// Where template keys come from.
    pub keys: KeysConfig,
    /// Limits on images from outside.
    pub limits: LimitsConfig,
    /// Speaker verification and the spoken passphrase.
    pub voice: VoiceConfig,
    /// Policy, calibration, decision thresholds, attempt limits, receipts and the audit log.
    pub decisions: DecisionsConfig,
    /// Settings that weaken security; see [`Config::dangerous`].
    dangerous: DangerousConfig,
    /// Whether the TOML named `decisions.liveness_threshold` (see
    /// [`Config::validate`]: an explicit threshold wins over a liveness calibration file's).
    #[serde(skip)]
    liveness_threshold_set: bool,
    /// Whether [`Config::validate`] took `decisions.liveness_threshold` from the liveness
    /// calibration file (undone by [`ValidConfig::into_inner`], so that a changed
    /// configuration validates afresh).
    #[serde(skip)]
    liveness_threshold_from_file: bool,
}

/// Settings that weaken security (`[dangerous]`), each off by default. Reached through
/// [`Config::dangerous`] in code; every one that is on is logged when a deployment opens.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DangerousConfig {
    /// Report raw scores and thresholds with decisions, and list identification candidates.
    /// For research only: raw scores let an attacker climb towards a match one small change
    /// at a time, which is why terminals otherwise get a decision and a coarse confidence.
    research_scores: bool,
}

impl DangerousConfig {
    /// Whether decisions carry raw scores (see the field's documentation).
    pub fn research_scores(&self) -> bool {
        self.research_scores
    }

    /// Turns raw research scores on or off.
    pub fn set_research_scores(&mut self, on: bool) -> &mut DangerousConfig {
        self.research_scores = on;
        self
    }

    /// Warns in the log about every dangerous setting that is on.
    pub fn log_enabled(&self) {
        if self.research_scores {
            tracing::warn!(
                "dangerous.research_scores is on: decisions carry raw scores, which lets a caller hill-climb towards a match; never enable it on a terminal in service"
            );
        }
    }
}

/// A configuration [`Config::validate`] has checked: every value in range, every section
/// consistent. It dereferences to the [`Config`] it holds; to change a value, take the
/// [`Config`] back with [`ValidConfig::into_inner`] and validate again.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidConfig(Config, Option<Arc<LivenessCalibration>>);

impl Deref for ValidConfig {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.0
    }
}

impl ValidConfig {
    /// The configuration, to change and validate again.
    pub fn into_inner(self) -> Config {
        let mut config = self.0;
        if config.liveness_threshold_from_file {
            config.decisions.liveness_threshold = DecisionsConfig::DEFAULT_LIVENESS_THRESHOLD;
            config.liveness_threshold_from_file = false;
        }
        config
    }

    /// The liveness calibration file `liveness.fusion` names, as read and checked once by
    /// [`Config::validate`] (the engine fuses frames with its weights).
    pub fn liveness_calibration(&self) -> Option<&LivenessCalibration> {
        self.1.as_deref()
    }
}

/// Keys that earlier versions read and that now live elsewhere (or are gone): an old file
/// gets a message saying where, instead of a bare "unknown field".
const MOVED_KEYS: [(&str, &str, &str); 7] = [
    (
        "face",
        "match_threshold",
        "decisions use calibrated thresholds (calibration/, `vouch calibrate`); the raw threshold is gone",
    ),
    (
        "liveness",
        "threshold",
        "it is now decisions.liveness_threshold",
    ),
    (
        "liveness",
        "detect_max_side",
        "one detection per frame now serves liveness and matching: set face.detect_max_side",
    ),
    (
        "voice",
        "speaker_threshold",
        "passphrase decisions use the voice encoder's calibrated threshold; the raw threshold is gone",
    ),
    (
        "voice",
        "digit_rank",
        "digits are recognised by the digit head now: set decisions.max_digit_errors",
    ),
    (
        "decisions",
        "digit_rank",
        "digits are recognised by the digit head now: set decisions.max_digit_errors",
    ),
    (
        "decisions",
        "research_scores",
        "it is now dangerous.research_scores",
    ),
];

impl Config {
    /// Built-in defaults overridden by environment variables (not validated).
    pub fn from_env() -> Result<Config> {
        let mut config = Config::default();
        config.apply_env()?;
        Ok(config)
    }

    /// Defaults, then the TOML file at `path`, then environment variables (not validated).
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
        Ok(config)
    }

    /// Defaults overridden by a TOML document (not validated, no environment).
    pub fn from_toml(text: &str) -> Result<Config> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let moved = toml::from_str::<toml::Table>(text).ok().and_then(|table| {
                MOVED_KEYS.iter().find(|(section, key, _)| {
                    table
                        .get(*section)
                        .and_then(|s| s.as_table())
                        .is_some_and(|s| s.contains_key(*key))
                })
            });
            match moved {
                Some((section, key, hint)) => Error::new(
                    ErrorKind::Config,
                    format!("invalid configuration: {section}.{key} is no longer read: {hint}"),
                ),
                None => Error::new(
                    ErrorKind::Config,
                    format!("invalid configuration: {}", e.message()),
                ),
            }
        })?;
        config.liveness_threshold_set = toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|t| {
                t.get("decisions")?
                    .as_table()?
                    .get("liveness_threshold")
                    .cloned()
            })
            .is_some();
        Ok(config)
    }

    /// Applies the environment: `VOUCH_ORT_LIB` (else `ORT_DYLIB_PATH`), `VOUCH_MODEL_DIR`,
    /// `VOUCH_MANIFEST`, `VOUCH_INTRA_THREADS`, `VOUCH_STORE`, `VOUCH_KEYS`, `VOUCH_UBM`, and
    /// `VOUCH_KEK`'s presence.
    pub fn apply_env(&mut self) -> Result<()> {
        if let Some(path) = env_path(ENV_ORT_LIB) {
            self.runtime.library = Some(path);
        } else if self.runtime.library.is_none()
            && let Some(path) = env_path(ENV_ORT_DYLIB_PATH)
        {
            self.runtime.library = Some(path);
        }
        if let Some(path) = env_path(ENV_MODEL_DIR) {
            self.models.dir = path;
        }
        if let Some(path) = env_path(ENV_MANIFEST) {
            self.models.manifest = Some(path);
        }
        if let Some(path) = env_path(ENV_STORE) {
            self.store.sqlite = path;
        }
        if let Some(path) = env_path(ENV_KEYS) {
            self.keys.file = path;
        }
        if let Some(path) = env_path(ENV_UBM) {
            self.voice.ubm = path;
        }
        if std::env::var_os(ENV_KEK).is_some_and(|v| !v.is_empty()) && self.keys.env.is_none() {
            self.keys.env = Some(ENV_KEK.to_string());
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

    /// The settings that weaken security, to read or change (changes are logged when a
    /// deployment opens with them).
    pub fn dangerous(&mut self) -> &mut DangerousConfig {
        &mut self.dangerous
    }

    /// The settings that weaken security, read-only.
    pub fn dangerous_settings(&self) -> &DangerousConfig {
        &self.dangerous
    }

    /// Checks every section once, so that later code can rely on its values.
    ///
    /// When `liveness.fusion` names a liveness calibration file, it is read here, once: a file
    /// that does not parse, or whose models are not `liveness.models` (by name, in order), is
    /// an [`ErrorKind::Config`] error (the engine checks the model files' hashes when it loads
    /// them). Its threshold then becomes `decisions.liveness_threshold` — the threshold was
    /// chosen on the fused scores, and a threshold set for the plain mean means nothing on
    /// them — unless the threshold is set explicitly: named in the TOML, or set in code to
    /// another value than [`DecisionsConfig::DEFAULT_LIVENESS_THRESHOLD`]. Either way the
    /// decision module stays the one place the fused score meets the threshold.
    pub fn validate(mut self) -> Result<ValidConfig> {
        let calibration = match &self.liveness.fusion {
            None => None,
            Some(path) => {
                let c = LivenessCalibration::load(path)?;
                if c.model_names() != self.liveness.models {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "{}: the liveness fusion was learned on [{}] but liveness.models names [{}]: name those models, in that order, or recalibrate (`vouch calibrate liveness`)",
                            path.display(),
                            c.models.join(", "),
                            self.liveness.models.join(", ")
                        ),
                    ));
                }
                let explicit = self.liveness_threshold_set
                    || self.decisions.liveness_threshold
                        != DecisionsConfig::DEFAULT_LIVENESS_THRESHOLD;
                if !explicit {
                    self.decisions.liveness_threshold = c.threshold;
                    self.liveness_threshold_from_file = true;
                }
                Some(Arc::new(c))
            }
        };
        self.runtime.validate()?;
        self.face.validate()?;
        self.liveness.validate()?;
        self.quality.validate()?;
        self.voice.validate()?;
        self.decisions.validate()?;
        self.store.validate()?;
        self.limits.validate()?;
        Ok(ValidConfig(self, calibration))
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
            Config::from_toml("[face]\ndetect_max_side = 640\n[runtime]\nintra_threads = 2\n")
                .unwrap();
        assert_eq!(config.face.detect_max_side, 640);
        assert_eq!(config.runtime.intra_threads, 2);
        assert_eq!(config.face.detector, "yunet_n");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("[face]\ndetect_max_sid = 640\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("detect_max_sid"), "{err}");
    }

    #[test]
    fn moved_keys_say_where_they_went() {
        for (text, says) in [
            (
                "[liveness]\nthreshold = 0.4\n",
                "decisions.liveness_threshold",
            ),
            (
                "[decisions]\nresearch_scores = true\n",
                "dangerous.research_scores",
            ),
            ("[face]\nmatch_threshold = 0.5\n", "calibrated"),
            ("[voice]\ndigit_rank = 2\n", "decisions.max_digit_errors"),
            (
                "[decisions]\ndigit_rank = 2\n",
                "decisions.max_digit_errors",
            ),
        ] {
            let err = Config::from_toml(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let mut config = Config::default();
        config.face.detection_threshold = 1.5;
        assert_eq!(config.validate().unwrap_err().kind(), ErrorKind::Config);
        let mut config = Config::default();
        config.runtime.intra_threads = 0;
        assert_eq!(config.validate().unwrap_err().kind(), ErrorKind::Config);
        let mut config = Config::default();
        config.decisions.liveness_threshold = 1.5;
        assert_eq!(config.validate().unwrap_err().kind(), ErrorKind::Config);
    }

    /// A liveness calibration file for the default pair (ids with made-up hashes), threshold
    /// 0.8 written into it.
    fn fusion_file(dir: &Path) -> PathBuf {
        use crate::score::liveness::{LivenessCalibration, PadScores};
        let ids = vec![
            "minifasnet_v2@000000000001".to_string(),
            "minifasnet_v1se@000000000002".to_string(),
        ];
        let samples: Vec<PadScores> = (0..40)
            .map(|i| PadScores {
                live: vec![i as f32 / 40.0, 0.5],
                attack: (i < 20).then(|| "print".to_string()),
            })
            .collect();
        let mut c = LivenessCalibration::fit(&ids, &samples, 0.05, 1.0, "test").unwrap();
        c.threshold = 0.8;
        let path = dir.join("fusion.toml");
        std::fs::write(&path, c.to_toml().unwrap()).unwrap();
        path
    }

    #[test]
    fn a_fusion_file_sets_the_liveness_threshold_unless_it_is_explicit() {
        let dir = tempfile::tempdir().unwrap();
        let file = fusion_file(dir.path());
        let with = |extra: &str| {
            Config::from_toml(&format!(
                "[liveness]\nfusion = {:?}\n{extra}",
                file.display().to_string()
            ))
            .unwrap()
            .validate()
        };
        let valid = with("").unwrap();
        assert_eq!(valid.decisions.liveness_threshold, 0.8);
        assert_eq!(valid.liveness_calibration().unwrap().threshold, 0.8);
        // taken back, the configuration no longer carries the file's threshold
        assert_eq!(
            valid.into_inner().decisions.liveness_threshold,
            DecisionsConfig::DEFAULT_LIVENESS_THRESHOLD
        );
        // named in the TOML, even at the default value, the threshold wins
        let explicit = with("[decisions]\nliveness_threshold = 0.5\n").unwrap();
        assert_eq!(explicit.decisions.liveness_threshold, 0.5);
        let explicit = with("[decisions]\nliveness_threshold = 0.6\n").unwrap();
        assert_eq!(explicit.decisions.liveness_threshold, 0.6);
        // set in code
        let mut config = Config::default();
        config.liveness.fusion = Some(file.clone());
        config.decisions.liveness_threshold = 0.7;
        assert_eq!(config.validate().unwrap().decisions.liveness_threshold, 0.7);
        // no fusion: unchanged
        let plain = Config::default().validate().unwrap();
        assert!(plain.liveness_calibration().is_none());
        assert_eq!(plain.decisions.liveness_threshold, 0.5);
    }

    #[test]
    fn a_fusion_file_for_other_models_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = fusion_file(dir.path());
        for models in [
            vec!["minifasnet_v2"],
            vec!["minifasnet_v1se", "minifasnet_v2"],
            vec!["minifasnet_v2", "minifasnet_v1se", "face_antispoof"],
        ] {
            let mut config = Config::default();
            config.liveness.fusion = Some(file.clone());
            config.liveness.models = models.iter().map(|m| m.to_string()).collect();
            let err = config.validate().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{models:?}");
            assert!(err.to_string().contains("recalibrate"), "{err}");
        }
        let mut config = Config::default();
        config.liveness.fusion = Some(dir.path().join("missing.toml"));
        assert!(config.validate().is_err());
        std::fs::write(dir.path().join("bad.toml"), "format = 1\n").unwrap();
        let mut config = Config::default();
        config.liveness.fusion = Some(dir.path().join("bad.toml"));
        assert_eq!(config.validate().unwrap_err().kind(), ErrorKind::Config);
    }

    #[test]
    fn dangerous_settings_are_off_unless_asked_for() {
        let mut config = Config::default();
        assert!(!config.dangerous_settings().research_scores());
        config.dangerous().set_research_scores(true);
        assert!(config.dangerous_settings().research_scores());
        let config = Config::from_toml("[dangerous]\nresearch_scores = true\n").unwrap();
        assert!(config.dangerous_settings().research_scores());
    }
}
