//! Pixels to a model's input tensor: the channel order and normalisation its manifest entry
//! names (`color`, `pixel_scale`, `mean`, `std`), shared by every face model that reads them.

use ndarray::Array4;

use crate::error::{Error, ErrorKind, Result};
use crate::models::ModelSpec;

/// A model's per-channel normalisation: `value · mul[c] + add[c]` for its channel `c`, read
/// from the source channel its colour order says.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PixelNorm {
    /// `pixel_scale / std`, in the model's channel order.
    mul: [f32; 3],
    /// `−mean / std`, in the model's channel order.
    add: [f32; 3],
    bgr: bool,
}

impl PixelNorm {
    /// The normalisation of `spec` (`color` "rgb" when absent; `pixel_scale` 1, `mean` 0 and
    /// `std` 1 by default).
    pub fn of(spec: &ModelSpec) -> Result<PixelNorm> {
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
        Ok(PixelNorm {
            mul: [scale / std[0], scale / std[1], scale / std[2]],
            add: [-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2]],
            bgr,
        })
    }

    /// The model's channel `c` of an RGB pixel (values on the 0..255 scale).
    pub fn value(&self, rgb: [f32; 3], c: usize) -> f32 {
        let source = if self.bgr { 2 - c } else { c };
        rgb[source] * self.mul[c] + self.add[c]
    }

    /// The NCHW tensor `[1, 3, height, width]` of `width × height` RGB pixels.
    pub fn blob(&self, rgb: &[u8], width: usize, height: usize) -> Array4<f32> {
        let mut blob = Array4::<f32>::zeros((1, 3, height, width));
        for (i, px) in rgb.chunks_exact(3).take(width * height).enumerate() {
            let (y, x) = (i / width, i % width);
            let px = [f32::from(px[0]), f32::from(px[1]), f32::from(px[2])];
            for c in 0..3 {
                blob[[0, c, y, x]] = self.value(px, c);
            }
        }
        blob
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Manifest;

    #[test]
    fn channel_order_and_scale_follow_the_manifest() {
        let manifest = Manifest::builtin();
        let bgr_raw = PixelNorm::of(manifest.get("minifasnet_v2").unwrap()).unwrap();
        assert_eq!(bgr_raw.value([10.0, 20.0, 30.0], 0), 30.0);
        assert_eq!(bgr_raw.value([10.0, 20.0, 30.0], 2), 10.0);
        let rgb_unit = PixelNorm::of(manifest.get("face_antispoof").unwrap()).unwrap();
        let blob = rgb_unit.blob(&[255, 0, 51, 0, 0, 0], 2, 1);
        assert_eq!(blob.shape(), [1, 3, 1, 2]);
        assert!((blob[[0, 0, 0, 0]] - 1.0).abs() < 1e-6);
        assert!((blob[[0, 2, 0, 0]] - 0.2).abs() < 1e-6);
        let imagenet = PixelNorm::of(manifest.get("mobilefacenet").unwrap()).unwrap();
        assert!((imagenet.value([0.485 * 255.0; 3], 0)).abs() < 1e-5);
    }
}
