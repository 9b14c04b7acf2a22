//! The model manifest: a TOML file with one `[[model]]` table per model.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::models::derive::Derivation;

/// The manifest built into the library (`models/default.toml`): the models vouch uses by
/// default, all available in the project's shared model directory.
pub const DEFAULT_MANIFEST: &str = include_str!("../../models/default.toml");

/// The manifest format version this library reads.
const MANIFEST_FORMAT: u32 = 1;

/// A parsed, validated model manifest.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version of the manifest file.
    pub format: u32,
    /// The models, in file order.
    #[serde(rename = "model", default)]
    pub models: Vec<ModelSpec>,
}

/// What a model is for; the engine picks models by task.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ModelTask {
    /// Face detector with 5 landmarks.
    FaceDetection,
    /// Face embedding for matching.
    FaceEmbedding,
    /// Passive face presentation-attack detection.
    FaceLiveness,
    /// Speaker embedding.
    SpeakerEmbedding,
    /// Audio front end of a speech embedding (samples → mel frames).
    SpeechFeatures,
    /// Speech embedding of short words (mel frames → a vector per window).
    SpeechEmbedding,
}

/// One model: what it is, where its file is, and what it expects.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Unique name, used in configuration and recorded in templates.
    pub name: String,
    /// What the model does.
    pub task: ModelTask,
    /// File path relative to the model directory.
    pub file: PathBuf,
    /// Lowercase hex sha256 of the file.
    pub sha256: String,
    /// Licence of the weights.
    pub licence: String,
    /// Where the weights come from upstream (URL at a pinned commit, or how they were built).
    pub source: String,
    /// Input tensors, in order.
    pub inputs: Vec<TensorSpec>,
    /// Output tensors, in order.
    pub outputs: Vec<TensorSpec>,
    /// Preprocessing the model was trained with.
    #[serde(default)]
    pub preprocess: Preprocess,
    /// A rewrite of the file's graph applied when it is loaded, with the sha256 of its result
    /// (`[model.derive]`): faster to run, the same outputs. By default, none: the file is
    /// loaded as it is.
    #[serde(default)]
    pub derive: Option<Derivation>,
    /// The id of the model whose outputs this one approximates (a quantised copy of it, made
    /// by a script and measured against it): the two share templates and calibrations, so
    /// switching between them asks no customer to enroll again. By default, none.
    #[serde(default)]
    pub approximates: Option<String>,
    /// The project's script that makes this file from other models of the manifest (a
    /// quantised copy), run by `scripts/setup.sh`; `vouch models fetch` leaves it to the
    /// script. By default, none: the file is fetched like the others.
    #[serde(default)]
    pub made_by: Option<String>,
}

/// How a liveness model's input is cut from the full frame around a face box; each recipe
/// is one upstream's training crop, resampling included (see [`crate::face::liveness`]).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LivenessCrop {
    /// MiniFASNet (Silent-Face-Anti-Spoofing): the box scaled about its centre by
    /// `crop_scale` (capped by the frame), shifted back inside the frame, never padded;
    /// plain bilinear resize to `size`.
    #[default]
    Shifted,
    /// face-antispoof: a square of `crop_scale` × the box's longer side centred on the box,
    /// the part outside the frame filled by reflection (OpenCV `BORDER_REFLECT_101`); resized
    /// so its side is `size` (OpenCV `INTER_AREA` when shrinking, `INTER_LANCZOS4` when
    /// enlarging), then padded to `size` by reflection, centred.
    SquareReflect,
}

/// A named tensor and its shape (`-1` for a dimension the model leaves open).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// Tensor name in the ONNX graph.
    pub name: String,
    /// Shape; `-1` marks a dynamic dimension.
    pub shape: Vec<i64>,
}

/// Preprocessing parameters; each model uses the ones that apply to it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Channel order the model expects: `"rgb"` or `"bgr"`.
    pub color: Option<String>,
    /// Factor applied to 0..255 pixel values before mean/std.
    pub pixel_scale: Option<f32>,
    /// Per-channel mean subtracted after scaling, in the model's channel order.
    pub mean: Option<[f32; 3]>,
    /// Per-channel standard deviation divided after the mean.
    pub std: Option<[f32; 3]>,
    /// Input width and height.
    pub size: Option<[u32; 2]>,
    /// Input sides are padded to a multiple of this.
    pub pad_multiple: Option<u32>,
    /// Detector strides.
    pub strides: Option<Vec<u32>>,
    /// Liveness: how much the face box is enlarged about its centre.
    pub crop_scale: Option<f32>,
    /// Liveness: index of the live class in the logits.
    pub live_class: Option<usize>,
    /// Liveness: how the crop around the face box is made. By default,
    /// [`LivenessCrop::Shifted`] (MiniFASNet's).
    pub crop: Option<LivenessCrop>,
    /// Audio: sample rate in Hz.
    pub sample_rate: Option<u32>,
    /// Audio: FFT size.
    pub n_fft: Option<u32>,
    /// Audio: hop length in samples.
    pub hop: Option<u32>,
    /// Audio: number of mel bands.
    pub n_mels: Option<u32>,
    /// Audio: frames per partial utterance.
    pub partial_frames: Option<u32>,
    /// Audio: frames between partial utterances.
    pub partial_step: Option<u32>,
}

impl Manifest {
    /// The manifest built into the library.
    pub fn builtin() -> Manifest {
        // The built-in manifest is checked by a unit test, so this cannot fail in a release.
        Manifest::parse(DEFAULT_MANIFEST)
            .unwrap_or_else(|e| unreachable!("the built-in manifest is invalid: {e}"))
    }

    /// Reads and validates a manifest file.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("reading model manifest", path, e))?;
        Manifest::parse(&text).map_err(|e| {
            Error::new(
                ErrorKind::Manifest,
                format!("in {}: {}", path.display(), e.message()),
            )
        })
    }

    /// Parses and validates a manifest from TOML text.
    pub fn parse(text: &str) -> Result<Manifest> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::Manifest,
                format!("invalid model manifest: {}", e.message()),
            )
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::new(ErrorKind::Manifest, msg));
        if self.format != MANIFEST_FORMAT {
            return bad(format!(
                "model manifest format {} is not supported (this vouch reads format {MANIFEST_FORMAT})",
                self.format
            ));
        }
        let mut names = HashSet::new();
        for model in &self.models {
            if model.name.is_empty() || !names.insert(model.name.as_str()) {
                return bad(format!("model name {:?} is empty or repeated", model.name));
            }
            let derived = model.derive.as_ref().map(|d| d.sha256.as_str());
            if !std::iter::once(model.sha256.as_str())
                .chain(derived)
                .all(is_sha256_hex)
            {
                return bad(format!(
                    "model {:?}: sha256 must be 64 lowercase hex digits",
                    model.name
                ));
            }
            if model.file.is_absolute()
                || model
                    .file
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return bad(format!(
                    "model {:?}: file must be a plain relative path inside the model directory, got {}",
                    model.name,
                    model.file.display()
                ));
            }
            if model.inputs.is_empty() || model.outputs.is_empty() {
                return bad(format!(
                    "model {:?} must declare its inputs and outputs",
                    model.name
                ));
            }
            for tensor in model.inputs.iter().chain(&model.outputs) {
                if tensor.shape.iter().any(|&d| d == 0 || d < -1) {
                    return bad(format!(
                        "model {:?}, tensor {:?}: dimensions are positive or -1",
                        model.name, tensor.name
                    ));
                }
            }
        }
        self.check_approximations()
    }

    fn check_approximations(&self) -> Result<()> {
        for model in &self.models {
            let Some(base) = &model.approximates else {
                continue;
            };
            let found = self.models.iter().find(|m| m.id() == *base);
            let fits = found.is_some_and(|b| {
                b.task == model.task && b.approximates.is_none() && b.name != model.name
            });
            if !fits {
                return Err(Error::new(
                    ErrorKind::Manifest,
                    format!(
                        "model {:?} approximates {base:?}, which is not the id of another model of the manifest with the same task",
                        model.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Result<&ModelSpec> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
            Error::new(
                ErrorKind::Manifest,
                format!(
                    "model {name:?} is not in the manifest (it has: {})",
                    known.join(", ")
                ),
            )
        })
    }
}

impl ModelSpec {
    /// Where this model's file is under `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(&self.file)
    }

    /// A short identifier recorded with everything this model produces: name and the first
    /// 12 hex digits of the shipped file's sha256. A derivation changes no output (each recipe
    /// is a rewrite the tests show to give the shipped graph's outputs), so it keeps the id:
    /// templates and calibrations made with the shipped file stay valid.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, &self.sha256[..12])
    }

    /// The id its outputs are compared under: templates are bound to it and calibrations
    /// named by it. Its own [`ModelSpec::id`], or the id of the model it approximates.
    pub fn embedding_space(&self) -> String {
        self.approximates.clone().unwrap_or_else(|| self.id())
    }

    /// The input tensor spec at `index`, or a contract error.
    pub(crate) fn input(&self, index: usize) -> Result<&TensorSpec> {
        self.inputs.get(index).ok_or_else(|| {
            Error::new(
                ErrorKind::ModelContract,
                format!("model {:?} declares no input #{index}", self.name),
            )
        })
    }

    /// Reads the model file under `dir` and checks its sha256; returns the model to load: its
    /// bytes, or for a derived model the rewritten graph, checked against the derived sha256.
    pub fn read_verified(&self, dir: &Path) -> Result<Vec<u8>> {
        let shipped = self.read_shipped(dir)?;
        let Some(derive) = &self.derive else {
            return Ok(shipped);
        };
        let derived = derive.apply(&shipped)?;
        let actual = sha256_hex(&derived);
        if actual != derive.sha256 {
            return Err(Error::new(
                ErrorKind::ModelIntegrity,
                format!(
                    "model {:?}: the {} rewrite of {} has sha256 {actual}, but the manifest expects {}",
                    self.name,
                    derive.describe(),
                    self.path_in(dir).display(),
                    derive.sha256
                ),
            ));
        }
        Ok(derived)
    }

    /// Reads the model file under `dir` and checks its sha256; returns its bytes.
    fn read_shipped(&self, dir: &Path) -> Result<Vec<u8>> {
        let path = self.path_in(dir);
        let bytes = std::fs::read(&path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (set the model directory with VOUCH_MODEL_DIR or models.dir, or copy the models with `vouch models fetch --from <dir-or-URL>`)"
            } else {
                ""
            };
            Error::new(
                ErrorKind::ModelIntegrity,
                format!(
                    "model {:?}: cannot read {}: {e}{hint}",
                    self.name,
                    path.display()
                ),
            )
            .with_source(e)
        })?;
        let actual = sha256_hex(&bytes);
        self.check_digest(&path, &actual)?;
        Ok(bytes)
    }

    pub(crate) fn check_digest(&self, path: &Path, actual: &str) -> Result<()> {
        if actual != self.sha256 {
            return Err(Error::new(
                ErrorKind::ModelIntegrity,
                format!(
                    "model {:?}: {} has sha256 {actual}, but the manifest expects {}; the file is corrupt, truncated or a different model",
                    self.name,
                    path.display(),
                    self.sha256
                ),
            ));
        }
        Ok(())
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Streams the file at `path` through sha256 and compares with the manifest entry, without
/// holding the whole file in memory.
pub fn verify_file(spec: &ModelSpec, path: &Path) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        Error::new(
            ErrorKind::ModelIntegrity,
            format!("model {:?}: cannot open {}: {e}", spec.name, path.display()),
        )
        .with_source(e)
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("reading model", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    spec.check_digest(path, &hex::encode(hasher.finalize()))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_is_valid_and_complete() {
        let manifest = Manifest::parse(DEFAULT_MANIFEST).unwrap();
        for name in [
            "yunet_n",
            "yunet_s",
            "mobilefacenet",
            "minifasnet_v2",
            "minifasnet_v1se",
            "face_antispoof",
            "resemblyzer",
        ] {
            manifest.get(name).unwrap();
        }
        let minifasnet = &manifest.get("minifasnet_v2").unwrap().preprocess;
        assert_eq!(minifasnet.crop, None, "MiniFASNet keeps the default crop");
        let antispoof = &manifest.get("face_antispoof").unwrap().preprocess;
        assert_eq!(antispoof.crop, Some(LivenessCrop::SquareReflect));
        assert_eq!(antispoof.live_class, Some(0));
        let emb = manifest.get("mobilefacenet").unwrap();
        assert_eq!(emb.task, ModelTask::FaceEmbedding);
        assert_eq!(emb.id(), "mobilefacenet@b7120c095d60");
    }

    #[test]
    fn unknown_model_names_what_exists() {
        let err = Manifest::builtin().get("arcface").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Manifest);
        assert!(err.to_string().contains("mobilefacenet"), "{err}");
    }

    fn one_model(extra: &str) -> String {
        format!(
            "format = 1\n[[model]]\nname = \"m\"\ntask = \"face_embedding\"\nfile = \"m.onnx\"\n\
             sha256 = \"{}\"\nlicence = \"x\"\nsource = \"y\"\n\
             inputs = [{{ name = \"i\", shape = [1, 3] }}]\noutputs = [{{ name = \"o\", shape = [1, 2] }}]\n{extra}",
            "a".repeat(64)
        )
    }

    #[test]
    fn a_minimal_manifest_parses() {
        let manifest = Manifest::parse(&one_model("")).unwrap();
        assert_eq!(manifest.models.len(), 1);
    }

    #[test]
    fn malformed_manifests_are_refused() {
        let cases = [
            one_model("").replace("format = 1", "format = 9"),
            one_model("").replace(&"a".repeat(64), "abc"),
            one_model("").replace("m.onnx", "../escape.onnx"),
            one_model("").replace("m.onnx", "/abs.onnx"),
            one_model("").replace("[1, 3]", "[0, 3]"),
            one_model("").replace("face_embedding", "mind_reading"),
            one_model("colour = 1\n"),
            format!(
                "{}{}",
                one_model(""),
                one_model("").replace("format = 1\n", "")
            ),
        ];
        for text in cases {
            let err = Manifest::parse(&text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Manifest, "{text}");
        }
    }

    #[test]
    fn digest_mismatch_is_an_integrity_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.onnx"), b"not a model").unwrap();
        let manifest = Manifest::parse(&one_model("")).unwrap();
        let spec = manifest.get("m").unwrap();
        let err = spec.read_verified(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ModelIntegrity);
        assert!(err.to_string().contains("sha256"), "{err}");
        let err = verify_file(spec, &dir.path().join("m.onnx")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ModelIntegrity);
    }

    #[test]
    fn missing_file_says_how_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest::parse(&one_model("")).unwrap();
        let err = manifest
            .get("m")
            .unwrap()
            .read_verified(dir.path())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ModelIntegrity);
        assert!(err.to_string().contains("vouch models fetch"), "{err}");
    }
}
