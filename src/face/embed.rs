//! Face embedding (MobileFaceNet by default) and cosine matching.

use ndarray::Array4;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, ErrorKind, Result};
use crate::face::align::{ALIGNED_SIZE, AlignedFace};
use crate::models::{ModelSpec, ModelTask};
use crate::runtime::{Runtime, SessionPool};

/// An L2-normalised face embedding. Biometric data: wiped on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Zeroize, ZeroizeOnDrop)]
pub struct Embedding {
    values: Vec<f32>,
}

impl std::fmt::Debug for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Embedding({} dims, values redacted)", self.values.len())
    }
}

impl Embedding {
    /// Normalises `values` to unit length. Refuses an empty, zero or non-finite vector.
    pub fn from_raw(mut values: Vec<f32>) -> Result<Embedding> {
        let norm = values
            .iter()
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>()
            .sqrt();
        if values.is_empty() || !norm.is_finite() || norm < 1e-12 {
            values.zeroize();
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "an embedding must be a non-empty, finite, non-zero vector",
            ));
        }
        for v in &mut values {
            *v = (f64::from(*v) / norm) as f32;
        }
        Ok(Embedding { values })
    }

    /// The unit-length values.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.values.len()
    }

    /// Cosine similarity in [-1, 1] (a dot product: both sides are unit length).
    pub fn cosine(&self, other: &Embedding) -> Result<f32> {
        if self.dim() != other.dim() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "cannot compare a {}-d embedding with a {}-d one (different models?)",
                    self.dim(),
                    other.dim()
                ),
            ));
        }
        let dot: f64 = self
            .values
            .iter()
            .zip(&other.values)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        Ok(dot.clamp(-1.0, 1.0) as f32)
    }

    /// The normalised mean of several embeddings of one person (an enrollment template).
    pub fn mean(embeddings: &[Embedding]) -> Result<Embedding> {
        let first = embeddings.first().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "averaging needs at least one embedding",
            )
        })?;
        let mut sum = vec![0.0f32; first.dim()];
        for e in embeddings {
            if e.dim() != first.dim() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "cannot average embeddings of different dimensions",
                ));
            }
            for (s, v) in sum.iter_mut().zip(&e.values) {
                *s += v;
            }
        }
        Embedding::from_raw(sum)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_normalised_vectors() {
        let a = Embedding::from_raw(vec![3.0, 4.0]).unwrap();
        let b = Embedding::from_raw(vec![4.0, 3.0]).unwrap();
        assert!((a.cosine(&a).unwrap() - 1.0).abs() < 1e-6);
        assert!((a.cosine(&b).unwrap() - 0.96).abs() < 1e-6);
        let c = Embedding::from_raw(vec![1.0, 0.0, 0.0]).unwrap();
        assert_eq!(a.cosine(&c).unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn degenerate_vectors_are_refused() {
        for v in [
            vec![],
            vec![0.0, 0.0],
            vec![f32::NAN, 1.0],
            vec![f32::INFINITY],
        ] {
            assert_eq!(
                Embedding::from_raw(v).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
        }
    }

    #[test]
    fn mean_is_normalised() {
        let a = Embedding::from_raw(vec![1.0, 0.0]).unwrap();
        let b = Embedding::from_raw(vec![0.0, 1.0]).unwrap();
        let m = Embedding::mean(&[a, b]).unwrap();
        let half = std::f32::consts::FRAC_1_SQRT_2;
        assert!((m.values()[0] - half).abs() < 1e-6 && (m.values()[1] - half).abs() < 1e-6);
    }

    #[test]
    fn debug_hides_values() {
        let a = Embedding::from_raw(vec![0.123, 0.456]).unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains("0.2"), "{shown}");
        assert_eq!(shown, "Embedding(2 dims, values redacted)");
    }
}
