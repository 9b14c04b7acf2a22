//! Alignment: a similarity transform from 5 landmarks onto the ArcFace 112×112 template, and
//! a bilinear warp.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, ErrorKind, Result};
use crate::face::image::FaceImage;

/// Side of the aligned face crop.
pub const ALIGNED_SIZE: u32 = 112;

/// Where the 5 landmarks (left eye, right eye, nose, left and right mouth corner) land in the
/// 112×112 crop the ArcFace family of embedders was trained on.
pub const ARCFACE_TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// A similarity transform `[u, v] = s·R·[x, y] + t`, stored as
/// `u = a·x − b·y + tx`, `v = b·x + a·y + ty`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    /// `s·cos θ`.
    pub a: f64,
    /// `s·sin θ`.
    pub b: f64,
    /// Translation in x.
    pub tx: f64,
    /// Translation in y.
    pub ty: f64,
}

impl Similarity {
    /// The least-squares similarity (rotation, uniform scale, translation; no reflection)
    /// taking `src` onto `dst`. This is Umeyama's estimate; in 2-D it has the closed form
    /// used here, with no SVD. Returns `None` when the source points all coincide.
    pub fn estimate(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Similarity> {
        if src.len() != dst.len() || src.is_empty() {
            return None;
        }
        let n = src.len() as f64;
        let mean = |pts: &[[f32; 2]]| {
            let (sx, sy) = pts.iter().fold((0.0, 0.0), |(x, y), p| {
                (x + f64::from(p[0]), y + f64::from(p[1]))
            });
            (sx / n, sy / n)
        };
        let (msx, msy) = mean(src);
        let (mdx, mdy) = mean(dst);
        let (mut dot, mut cross, mut var) = (0.0, 0.0, 0.0);
        for (s, d) in src.iter().zip(dst) {
            let (x, y) = (f64::from(s[0]) - msx, f64::from(s[1]) - msy);
            let (u, v) = (f64::from(d[0]) - mdx, f64::from(d[1]) - mdy);
            dot += x * u + y * v;
            cross += x * v - y * u;
            var += x * x + y * y;
        }
        if var.is_nan() || var <= 1e-12 {
            return None;
        }
        let a = dot / var;
        let b = cross / var;
        Some(Similarity {
            a,
            b,
            tx: mdx - (a * msx - b * msy),
            ty: mdy - (b * msx + a * msy),
        })
    }

    /// Applies the transform to a point.
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    /// The inverse transform (`None` for a zero scale).
    pub fn inverse(&self) -> Option<Similarity> {
        let det = self.a * self.a + self.b * self.b;
        if det.is_nan() || det <= 1e-18 {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        Some(Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }
}

/// A 112×112 RGB face crop, aligned on the ArcFace template. Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AlignedFace {
    rgb: Vec<u8>,
}

impl std::fmt::Debug for AlignedFace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlignedFace(112x112, pixels redacted)")
    }
}

impl AlignedFace {
    /// The crop's pixels, RGB, row by row.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// The crop mirrored left to right.
    pub fn mirrored(&self) -> AlignedFace {
        let side = ALIGNED_SIZE as usize;
        let mut rgb = vec![0u8; self.rgb.len()];
        for y in 0..side {
            for x in 0..side {
                let from = 3 * (y * side + (side - 1 - x));
                let to = 3 * (y * side + x);
                rgb[to..to + 3].copy_from_slice(&self.rgb[from..from + 3]);
            }
        }
        AlignedFace { rgb }
    }
}

/// Aligns the face whose landmarks are `landmarks` onto the ArcFace template.
pub fn align(image: &FaceImage, landmarks: &[[f32; 2]; 5]) -> Result<AlignedFace> {
    let transform = Similarity::estimate(landmarks, &ARCFACE_TEMPLATE)
        .and_then(|t| t.inverse().map(|inv| (t, inv)))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "the landmarks are degenerate (all at one point); cannot align the face",
            )
        })?;
    let mut rgb = vec![0u8; (ALIGNED_SIZE * ALIGNED_SIZE * 3) as usize];
    warp_into(image, &transform.1, ALIGNED_SIZE, ALIGNED_SIZE, &mut rgb);
    Ok(AlignedFace { rgb })
}

/// Fills `out` (`width × height` RGB) by sampling `image` at `inverse(x, y)` for each output
/// pixel, bilinearly; samples outside the image read as black. Output values are rounded
/// (half away from zero, as `f64::round`).
///
/// The same arithmetic as sampling each channel on its own: the four neighbours are fetched
/// once per pixel (without bounds checks when all four are inside the image), and floor and
/// round are taken by integer conversion, exact for these values, instead of library calls.
pub fn warp_into(image: &FaceImage, inverse: &Similarity, width: u32, height: u32, out: &mut [u8]) {
    let (iw, ih) = (image.width() as i64, image.height() as i64);
    let src = image.rgb();
    let fetch = |x: i64, y: i64| -> [f64; 3] {
        if x < 0 || y < 0 || x >= iw || y >= ih {
            [0.0; 3]
        } else {
            let p = 3 * (y * iw + x) as usize;
            [
                f64::from(src[p]),
                f64::from(src[p + 1]),
                f64::from(src[p + 2]),
            ]
        }
    };
    for (oy, out_row) in out
        .chunks_exact_mut(3 * width as usize)
        .take(height as usize)
        .enumerate()
    {
        for (ox, out_px) in out_row.chunks_exact_mut(3).enumerate() {
            let [sx, sy] = inverse.apply([ox as f64, oy as f64]);
            let (x0, y0) = (floor(sx), floor(sy));
            let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
            let (p00, p10, p01, p11) = if x0 >= 0 && y0 >= 0 && x0 + 1 < iw && y0 + 1 < ih {
                let at = |x: i64, y: i64| {
                    let p = 3 * (y * iw + x) as usize;
                    [
                        f64::from(src[p]),
                        f64::from(src[p + 1]),
                        f64::from(src[p + 2]),
                    ]
                };
                (
                    at(x0, y0),
                    at(x0 + 1, y0),
                    at(x0, y0 + 1),
                    at(x0 + 1, y0 + 1),
                )
            } else {
                (
                    fetch(x0, y0),
                    fetch(x0 + 1, y0),
                    fetch(x0, y0 + 1),
                    fetch(x0 + 1, y0 + 1),
                )
            };
            for c in 0..3 {
                let top = p00[c] * (1.0 - fx) + p10[c] * fx;
                let bottom = p01[c] * (1.0 - fx) + p11[c] * fx;
                out_px[c] = round_to_u8(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
}

/// ⌊v⌋ for coordinates (|v| far below 2⁶³): truncation, one less when that rounded up.
fn floor(v: f64) -> i64 {
    let t = v as i64;
    if t as f64 > v { t - 1 } else { t }
}

/// `v.round().clamp(0.0, 255.0)` for a blend of 8-bit values (never negative, never NaN):
/// `v − ⌊v⌋` is exact for such `v`, so comparing it with ½ rounds exactly as `f64::round`.
fn round_to_u8(v: f64) -> u8 {
    let whole = v as i64;
    let rounded = if v - whole as f64 >= 0.5 {
        whole + 1
    } else {
        whole
    };
    rounded.clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each channel sampled on its own with library floor and round, as first written.
    fn warp_reference(image: &FaceImage, inverse: &Similarity, width: u32, height: u32) -> Vec<u8> {
        let (iw, ih) = (image.width() as i64, image.height() as i64);
        let src = image.rgb();
        let pixel = |x: i64, y: i64, c: usize| -> f64 {
            if x < 0 || y < 0 || x >= iw || y >= ih {
                0.0
            } else {
                f64::from(src[3 * (y * iw + x) as usize + c])
            }
        };
        let mut out = vec![0u8; (width * height * 3) as usize];
        for oy in 0..height as usize {
            for ox in 0..width as usize {
                let [sx, sy] = inverse.apply([ox as f64, oy as f64]);
                let (x0, y0) = (sx.floor(), sy.floor());
                let (fx, fy) = (sx - x0, sy - y0);
                let (x0, y0) = (x0 as i64, y0 as i64);
                for c in 0..3 {
                    let top = pixel(x0, y0, c) * (1.0 - fx) + pixel(x0 + 1, y0, c) * fx;
                    let bottom = pixel(x0, y0 + 1, c) * (1.0 - fx) + pixel(x0 + 1, y0 + 1, c) * fx;
                    let value = top * (1.0 - fy) + bottom * fy;
                    out[3 * (oy * width as usize + ox) + c] = value.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        out
    }

    #[test]
    fn the_warp_equals_the_per_channel_form() {
        let (w, h) = (97u32, 61u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7919 % 256) as u8).collect();
        let image = FaceImage::from_rgb(w, h, rgb).unwrap();
        // Inside, across the edges, scaled up and down, rotated both ways, half-pixel shifts.
        for t in [
            Similarity {
                a: 0.7,
                b: 0.2,
                tx: 10.3,
                ty: 5.7,
            },
            Similarity {
                a: 1.3,
                b: -0.4,
                tx: -20.0,
                ty: -9.5,
            },
            Similarity {
                a: 0.5,
                b: 0.0,
                tx: 0.5,
                ty: 0.5,
            },
            Similarity {
                a: 2.1,
                b: 0.9,
                tx: 30.25,
                ty: -40.75,
            },
            Similarity {
                a: -0.8,
                b: 0.6,
                tx: 90.0,
                ty: 20.0,
            },
        ] {
            let mut out = vec![0u8; 112 * 112 * 3];
            warp_into(&image, &t, 112, 112, &mut out);
            assert_eq!(out, warp_reference(&image, &t, 112, 112), "{t:?}");
        }
    }

    #[test]
    fn recovers_a_known_similarity() {
        let truth = Similarity {
            a: 0.8,
            b: 0.3,
            tx: 12.0,
            ty: -7.0,
        };
        let src: Vec<[f32; 2]> = [
            [10.0, 20.0],
            [40.0, 22.0],
            [25.0, 35.0],
            [14.0, 50.0],
            [37.0, 49.0],
        ]
        .to_vec();
        let dst: Vec<[f32; 2]> = src
            .iter()
            .map(|p| {
                let q = truth.apply([f64::from(p[0]), f64::from(p[1])]);
                [q[0] as f32, q[1] as f32]
            })
            .collect();
        let est = Similarity::estimate(&src, &dst).unwrap();
        for (got, want) in [
            (est.a, truth.a),
            (est.b, truth.b),
            (est.tx, truth.tx),
            (est.ty, truth.ty),
        ] {
            assert!((got - want).abs() < 1e-4, "{est:?}");
        }
        let back = est.inverse().unwrap().apply(est.apply([3.0, 4.0]));
        assert!((back[0] - 3.0).abs() < 1e-9 && (back[1] - 4.0).abs() < 1e-9);
    }

    #[test]
    fn never_reflects() {
        // A mirror image of the template fits exactly only with a reflection; a proper
        // similarity must leave a residual rather than flip the face.
        let src = ARCFACE_TEMPLATE;
        let dst: Vec<[f32; 2]> = src.iter().map(|p| [112.0 - p[0], p[1]]).collect();
        let est = Similarity::estimate(&src, &dst).unwrap();
        let residual: f64 = src
            .iter()
            .zip(&dst)
            .map(|(s, d)| {
                let q = est.apply([f64::from(s[0]), f64::from(s[1])]);
                (q[0] - f64::from(d[0])).powi(2) + (q[1] - f64::from(d[1])).powi(2)
            })
            .sum();
        assert!(
            residual > 100.0,
            "a reflection slipped in: residual {residual}"
        );
    }

    #[test]
    fn degenerate_landmarks_are_refused() {
        let img = FaceImage::from_rgb(20, 20, vec![0; 1200]).unwrap();
        let err = align(&img, &[[5.0, 5.0]; 5]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn identity_warp_copies_and_blacks_out_the_outside() {
        let rgb: Vec<u8> = (0..4 * 4 * 3).map(|i| i as u8).collect();
        let img = FaceImage::from_rgb(4, 4, rgb.clone()).unwrap();
        let identity = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        let mut out = vec![0u8; 5 * 4 * 3];
        warp_into(&img, &identity, 5, 4, &mut out);
        assert_eq!(&out[..12], &rgb[..12]);
        assert_eq!(&out[12..15], &[0, 0, 0]);
    }

    #[test]
    fn half_pixel_shift_interpolates() {
        let img = FaceImage::from_rgb(2, 1, vec![0, 0, 0, 100, 100, 100]).unwrap();
        let shift = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.5,
            ty: 0.0,
        };
        let mut out = vec![0u8; 3];
        warp_into(&img, &shift, 1, 1, &mut out);
        assert_eq!(out, vec![50, 50, 50]);
    }
}
