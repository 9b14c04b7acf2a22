//! The speaker-model choice shared by `vouch voice`, `vouch eval voice|passphrase` and
//! `vouch calibrate passphrase`: the `--model`/`--norm` flags and loading what they name.
//! A leaf: it imports no other command module.

use std::path::Path;

use anyhow::{Result, bail};
use clap::ValueEnum;
use vouch::voice::SpeakerModel;
use vouch::voice::encoder::VoiceEncoder;
use vouch::voice::ubm::{GmmUbm, ScoreNorm, Ubm};
use vouch::{Engine, ValidConfig};

/// Which speaker model to evaluate.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ModelChoice {
    /// The GE2E voice encoder (ONNX), cosine of embeddings.
    Encoder,
    /// The GMM-UBM: MAP-adapted means, normalised log-likelihood ratio.
    Gmm,
}

/// Score normalisation of the GMM-UBM.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum NormChoice {
    /// Raw log-likelihood ratio.
    None,
    /// Z-norm.
    Z,
    /// T-norm.
    T,
    /// S-norm.
    S,
}

/// The chosen speaker model, loaded.
pub(crate) fn speaker_model(
    choice: ModelChoice,
    ubm: Option<&Path>,
    norm: NormChoice,
    config: ValidConfig,
) -> Result<Box<dyn SpeakerModel>> {
    Ok(match choice {
        ModelChoice::Encoder => Box::new(voice_encoder(config)?),
        ModelChoice::Gmm => {
            let path = ubm.map_or_else(
                || config.models.dir.join(&config.voice.ubm),
                Path::to_path_buf,
            );
            if !path.exists() {
                bail!(
                    "no UBM at {}; train one with `vouch voice train-ubm ../shared/data/librispeech/train-clean-100`",
                    path.display()
                );
            }
            let norm = match norm {
                NormChoice::None => ScoreNorm::None,
                NormChoice::Z => ScoreNorm::Z,
                NormChoice::T => ScoreNorm::T,
                NormChoice::S => ScoreNorm::S,
            };
            Box::new(GmmUbm::new(Ubm::open(&path)?, norm)?)
        }
    })
}

/// The GE2E encoder of the manifest.
pub(crate) fn voice_encoder(config: ValidConfig) -> Result<VoiceEncoder> {
    let engine = Engine::new(config)?;
    let spec = engine.manifest().get(&engine.config().voice.encoder)?;
    Ok(VoiceEncoder::new(
        engine.runtime(),
        spec,
        &engine.config().models.dir,
    )?)
}
