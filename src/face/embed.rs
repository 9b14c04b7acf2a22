//! Face embedding (MobileFaceNet by default) and cosine matching.

use crate::embedding::Embedding;
use crate::error::{Error, ErrorKind, Result};
use crate::face::align::{ALIGNED_SIZE, AlignedFace};
use crate::face::tensor::PixelNorm;
use crate::models::{ModelSpec, ModelTask};
use crate::runtime::{Runtime, SessionPool};

/// Turns aligned 112×112 crops into embeddings.
#[derive(Debug)]
pub struct Embedder {
    pool: SessionPool,
    norm: PixelNorm,
    flip: bool,
}

impl Embedder {
    /// Loads and verifies an embedding model. With `flip`, the mirrored crop's raw output is
    /// added before normalising (upstream's evaluation protocol).
    pub fn new(
        runtime: &Runtime,
        spec: &ModelSpec,
        model_dir: &std::path::Path,
        flip: bool,
    ) -> Result<Embedder> {
        if spec.task != ModelTask::FaceEmbedding {
            return Err(Error::new(
                ErrorKind::Manifest,
                format!("model {:?} is not a face embedder", spec.name),
            ));
        }
        let shape = &spec.input(0)?.shape;
        let side = i64::from(ALIGNED_SIZE);
        if shape.len() != 4 || shape[1] != 3 || shape[2] != side || shape[3] != side {
            return Err(Error::new(
                ErrorKind::ModelContract,
                format!(
                    "model {:?} takes {shape:?}; vouch's aligner produces [1, 3, {side}, {side}] crops",
                    spec.name
                ),
            ));
        }
        Ok(Embedder {
            norm: PixelNorm::of(spec)?,
            pool: SessionPool::new(runtime, spec, model_dir)?,
            flip,
        })
    }

    /// The embedder's manifest entry.
    pub fn spec(&self) -> &ModelSpec {
        self.pool.spec()
    }

    /// The normalised embedding of an aligned crop.
    pub fn embed(&self, face: &AlignedFace) -> Result<Embedding> {
        let mut raw = self.raw(face)?;
        if self.flip {
            let mirrored = self.raw(&face.mirrored())?;
            for (r, m) in raw.iter_mut().zip(&mirrored) {
                *r += m;
            }
        }
        Embedding::from_raw(raw)
    }

    fn raw(&self, face: &AlignedFace) -> Result<Vec<f32>> {
        let side = ALIGNED_SIZE as usize;
        let mut blob = self.norm.blob(face.rgb(), side, side);
        let result = self.pool.run_first_output(&blob, "face embedding");
        blob.fill(0.0);
        result
    }
}
