//! Face embedding (MobileFaceNet by default) and cosine matching.

use ndarray::Array4;

use crate::embedding::Embedding;
use crate::error::{Error, ErrorKind, Result};
use crate::face::align::{ALIGNED_SIZE, AlignedFace};
use crate::models::{ModelSpec, ModelTask};
use crate::runtime::{Runtime, SessionPool};

/// Turns aligned 112×112 crops into embeddings.
#[derive(Debug)]
pub struct Embedder {
    pool: SessionPool,
    /// Per-channel scale and offset folded together: `x·mul[c] + add[c]`, in RGB order.
    mul: [f32; 3],
    add: [f32; 3],
    bgr: bool,
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
        let p = &spec.preprocess;
        let scale = p.pixel_scale.unwrap_or(1.0);
        let mean = p.mean.unwrap_or([0.0; 3]);
        let std = p.std.unwrap_or([1.0; 3]);
        if std.iter().any(|s| s.is_nan() || s.abs() == 0.0) {
            return Err(Error::new(
                ErrorKind::Manifest,
                format!("model {:?}: std values must be non-zero", spec.name),
            ));
        }
        let bgr = match p.color.as_deref() {
            Some("bgr") => true,
            Some("rgb") | None => false,
            Some(other) => {
                return Err(Error::new(
                    ErrorKind::Manifest,
                    format!(
                        "model {:?}: color must be \"rgb\" or \"bgr\", got {other:?}",
                        spec.name
                    ),
                ));
            }
        };
        Ok(Embedder {
            pool: SessionPool::new(runtime, spec, model_dir)?,
            mul: [scale / std[0], scale / std[1], scale / std[2]],
            add: [-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2]],
            bgr,
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
        let mut blob = Array4::<f32>::zeros((1, 3, side, side));
        for (i, px) in face.rgb().chunks_exact(3).enumerate() {
            let (y, x) = (i / side, i % side);
            for c in 0..3 {
                // mean/std are given in the model's channel order
                let source = if self.bgr { 2 - c } else { c };
                blob[[0, c, y, x]] = f32::from(px[source]) * self.mul[c] + self.add[c];
            }
        }
        let result = self.pool.run_first_output(&blob, "face embedding");
        blob.fill(0.0);
        result
    }
}
