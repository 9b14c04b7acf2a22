//! Renewable templates (ISO/IEC 24745): a secret, per-deployment orthogonal transform applied
//! to embeddings before they are stored.
//!
//! An orthogonal matrix preserves inner products, so cosine scores between transformed
//! vectors equal those between the originals (to rounding): matching works unchanged. Two
//! deployments with different transform keys store unrelated vectors for the same face, so
//! their templates cannot be linked; and a leaked store is revoked by re-enrolling under a
//! new transform key, after which the leaked vectors match nothing.
//!
//! It is a defence in depth on top of encryption, not a replacement: someone holding both the
//! transform key and a transformed vector can invert it.

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, ErrorKind, Result};
use crate::template::crypto::Kek;

/// A keyed random orthogonal matrix of one dimension. Secret: wiped on drop, redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Transform {
    dim: usize,
    /// Row-major `dim × dim`.
    matrix: Vec<f64>,
}

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transform({0}x{0}, redacted)", self.dim)
    }
}

impl Transform {
    /// Derives the transform for `dim`-dimensional vectors from `key`: Gaussian entries from a
    /// SHA-256 counter stream keyed by `key`, orthonormalised by modified Gram–Schmidt.
    pub fn derive(key: &Kek, dim: usize) -> Result<Transform> {
        if dim == 0 || dim > 4096 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a transform needs 1 to 4096 dimensions",
            ));
        }
        let mut stream = KeyStream::new(key, dim);
        let mut m: Vec<f64> = (0..dim * dim).map(|_| stream.gaussian()).collect();
        for i in 0..dim {
            for j in 0..i {
                let dot: f64 = (0..dim).map(|k| m[i * dim + k] * m[j * dim + k]).sum();
                for k in 0..dim {
                    m[i * dim + k] -= dot * m[j * dim + k];
                }
            }
            let norm = (0..dim).map(|k| m[i * dim + k].powi(2)).sum::<f64>().sqrt();
            if norm < 1e-9 {
                return Err(Error::new(
                    ErrorKind::Key,
                    "the transform key gave a degenerate matrix; use another key",
                ));
            }
            for k in 0..dim {
                m[i * dim + k] /= norm;
            }
        }
        Ok(Transform { dim, matrix: m })
    }

    /// `Q · x`.
    pub fn apply(&self, x: &[f32]) -> Result<Vec<f32>> {
        if x.len() != self.dim {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the transform is for {}-d vectors, got {}",
                    self.dim,
                    x.len()
                ),
            ));
        }
        Ok((0..self.dim)
            .map(|i| {
                let row = &self.matrix[i * self.dim..(i + 1) * self.dim];
                row.iter()
                    .zip(x)
                    .map(|(a, b)| a * f64::from(*b))
                    .sum::<f64>() as f32
            })
            .collect())
    }
}

struct KeyStream {
    seed: [u8; 32],
    counter: u64,
    buffer: Vec<u8>,
    spare: Option<f64>,
}

impl KeyStream {
    fn new(key: &Kek, dim: usize) -> KeyStream {
        let mut h = Sha256::new();
        h.update(b"vouch renewable transform v1");
        h.update(key.to_hex().as_bytes());
        h.update((dim as u64).to_le_bytes());
        KeyStream {
            seed: h.finalize().into(),
            counter: 0,
            buffer: Vec::new(),
            spare: None,
        }
    }

    fn uniform(&mut self) -> f64 {
        if self.buffer.len() < 8 {
            let mut h = Sha256::new();
            h.update(self.seed);
            h.update(self.counter.to_le_bytes());
            self.counter += 1;
            self.buffer.extend_from_slice(&h.finalize());
        }
        let bytes: [u8; 8] = self
            .buffer
            .drain(..8)
            .collect::<Vec<_>>()
            .try_into()
            .unwrap_or([0; 8]);
        // 53 random bits in (0, 1)
        ((u64::from_le_bytes(bytes) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Box–Muller.
    fn gaussian(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let (u, v) = (self.uniform(), self.uniform());
        let r = (-2.0 * u.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * v;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }
}

impl Drop for KeyStream {
    fn drop(&mut self) {
        self.seed.zeroize();
        self.buffer.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        dot / (na * nb)
    }

    fn vector(seed: u32, dim: usize) -> Vec<f32> {
        (0..dim)
            .map(|i| {
                ((i as u32 + 1).wrapping_mul(2_654_435_761u32.wrapping_mul(seed + 1)) % 1000) as f32
                    / 500.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn cosines_are_preserved() {
        let t = Transform::derive(&Kek::from_hex(&"42".repeat(32)).unwrap(), 128).unwrap();
        let mut worst: f64 = 0.0;
        for s in 0..20 {
            let (a, b) = (vector(s, 128), vector(s + 100, 128));
            let before = cosine(&a, &b);
            let after = cosine(&t.apply(&a).unwrap(), &t.apply(&b).unwrap());
            worst = worst.max((before - after).abs());
        }
        assert!(worst < 1e-5, "largest cosine change {worst}");
    }

    #[test]
    fn different_keys_give_unlinkable_vectors_and_the_same_key_is_deterministic() {
        let k1 = Kek::from_hex(&"01".repeat(32)).unwrap();
        let k2 = Kek::from_hex(&"02".repeat(32)).unwrap();
        let x = vector(7, 128);
        let a = Transform::derive(&k1, 128).unwrap().apply(&x).unwrap();
        let b = Transform::derive(&k2, 128).unwrap().apply(&x).unwrap();
        assert!(cosine(&a, &b).abs() < 0.35, "{}", cosine(&a, &b));
        assert!(cosine(&a, &x).abs() < 0.35, "{}", cosine(&a, &x));
        assert_eq!(Transform::derive(&k1, 128).unwrap().apply(&x).unwrap(), a);
    }

    #[test]
    fn wrong_dimensions_are_refused() {
        let t = Transform::derive(&Kek::from_hex(&"03".repeat(32)).unwrap(), 8).unwrap();
        assert_eq!(
            t.apply(&[1.0; 7]).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert!(Transform::derive(&Kek::from_hex(&"03".repeat(32)).unwrap(), 0).is_err());
        assert!(format!("{t:?}").contains("redacted"));
    }
}
