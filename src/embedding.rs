//! The modality-neutral embedding: a unit-length vector that face and voice models produce and
//! templates store, compared by cosine.
//!
//! A leaf, so that voice code never reaches into face code for its vectors.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, ErrorKind, Result};

/// An L2-normalised embedding (of a face, a voice): biometric data, wiped on drop, redacted in
/// `Debug`, never serialised.
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
