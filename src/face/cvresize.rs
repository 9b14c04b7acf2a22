//! Resizing as OpenCV's `cv::resize` does it for 8-bit images with `INTER_AREA` and
//! `INTER_LANCZOS4`, and its `BORDER_REFLECT_101` border: the preprocessing of a model whose
//! upstream was written with them (face-antispoof, [`crate::face::liveness`]).
//!
//! Why bit-exact: the model was trained on crops made by these functions, and a liveness score
//! near a threshold moves with a few grey levels. Reproduced here, and checked bit for bit
//! against OpenCV itself (`fixtures/gen/antispoof_golden.py`, 21 crops of real frames):
//! - `INTER_AREA` (shrinking): by an integer factor k, the mean of each k×k block —
//!   `(sum + 2) >> 2` for k = 2, `sum × (1/k²)` in `f32` rounded half to even otherwise; by
//!   any other factor, each source pixel weighted by the share of the output cell it covers
//!   (weights computed in `f64`, stored as `f32`), accumulated in `f32` one source row at a
//!   time, rounded half to even.
//! - `INTER_LANCZOS4` (enlarging): the 8-tap windowed sinc evaluated in `f64`, normalised in
//!   `f32`, stored as 11-bit fixed point; edges replicated; horizontal pass, then vertical,
//!   rounded `(acc + 2²¹) >> 22`.
//!
//! The sources are read through index maps ([`Mapped`]) so that a reflected border is never
//! materialised: a crop reaching past the frame costs no copy of the frame.

use zeroize::Zeroizing;

/// An RGB image seen through index maps: virtual pixel (x, y) is the real pixel whose bytes
/// start at `rows[y] + cols[x]`.
pub(crate) struct Mapped<'a> {
    /// The real pixels, RGB.
    rgb: &'a [u8],
    /// Byte offset of the real row of each virtual row.
    rows: Vec<usize>,
    /// Byte offset, within a row, of the real column of each virtual column.
    cols: Vec<usize>,
}

impl<'a> Mapped<'a> {
    /// A `width × height` RGB buffer seen as it is.
    #[cfg(test)]
    pub fn plain(rgb: &'a [u8], width: usize, height: usize) -> Mapped<'a> {
        Mapped::reflected(rgb, width, [0, 0, width, height], [0; 4])
    }

    /// The window `[x, y, width, height]` of an RGB image `image_width` pixels wide, padded by
    /// `[top, bottom, left, right]` pixels of [`reflect_101`] border reflected within the
    /// window (what OpenCV's `copyMakeBorder` of the window's sub-image gives).
    pub fn reflected(
        rgb: &'a [u8],
        image_width: usize,
        [x, y, width, height]: [usize; 4],
        [top, bottom, left, right]: [usize; 4],
    ) -> Mapped<'a> {
        let map = |start: usize, len: usize, before: usize, after: usize, step: usize| {
            (0..before + len + after)
                .map(|i| (start + reflect_101(i as i64 - before as i64, len)) * step)
                .collect()
        };
        Mapped {
            rgb,
            rows: map(y, height, top, bottom, image_width * 3),
            cols: map(x, width, left, right, 3),
        }
    }

    fn width(&self) -> usize {
        self.cols.len()
    }

    fn height(&self) -> usize {
        self.rows.len()
    }

    fn at(&self, x: usize, y: usize) -> &[u8] {
        let start = self.rows[y] + self.cols[x];
        &self.rgb[start..start + 3]
    }

    /// The virtual image as a plain buffer (the caller wipes it).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.width() * self.height() * 3);
        for y in 0..self.height() {
            for x in 0..self.width() {
                out.extend_from_slice(self.at(x, y));
            }
        }
        out
    }
}

/// OpenCV's `BORDER_REFLECT_101` for index `p` of a line of `len` samples: mirrored about the
/// end samples without repeating them (−1 → 1, `len` → `len` − 2), folded again while out of
/// range; a line of one sample repeats it.
pub(crate) fn reflect_101(p: i64, len: usize) -> usize {
    let len = len as i64;
    if len <= 1 {
        return 0;
    }
    let period = 2 * (len - 1);
    let q = p.rem_euclid(period);
    (if q < len { q } else { period - q }) as usize
}

/// OpenCV's `saturate_cast<uchar>(float)`: rounded half to even, clamped.
fn saturate_u8(v: f32) -> u8 {
    v.round_ties_even().clamp(0.0, 255.0) as u8
}

/// OpenCV's source-per-destination scale: `1 / (dst / src)`, not `src / dst` (they can differ
/// in the last bit, which decides the integer-factor path and the weights).
fn scale(src: usize, dst: usize) -> f64 {
    1.0 / (dst as f64 / src as f64)
}

/// `INTER_AREA` to `out_w × out_h`, for `out_w <= width` and `out_h <= height` (shrinking).
pub(crate) fn area(src: &Mapped<'_>, out_w: usize, out_h: usize) -> Zeroizing<Vec<u8>> {
    let (sw, sh) = (src.width(), src.height());
    debug_assert!(0 < out_w && out_w <= sw && 0 < out_h && out_h <= sh);
    let (scale_x, scale_y) = (scale(sw, out_w), scale(sh, out_h));
    let (kx, ky) = (scale_x.round(), scale_y.round());
    if (scale_x - kx).abs() < f64::EPSILON && (scale_y - ky).abs() < f64::EPSILON {
        area_integer(src, kx as usize, ky as usize, out_w, out_h)
    } else {
        area_fractional(src, scale_x, scale_y, out_w, out_h)
    }
}

/// `INTER_AREA` by integer factors: block means.
fn area_integer(
    src: &Mapped<'_>,
    kx: usize,
    ky: usize,
    out_w: usize,
    out_h: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; out_w * out_h * 3]);
    let inv_area = 1.0f32 / (kx * ky) as f32;
    for dy in 0..out_h {
        for dx in 0..out_w {
            for c in 0..3 {
                let mut sum = 0u32;
                for y in dy * ky..(dy + 1) * ky {
                    for x in dx * kx..(dx + 1) * kx {
                        sum += u32::from(src.at(x, y)[c]);
                    }
                }
                out[(dy * out_w + dx) * 3 + c] = if kx == 2 && ky == 2 {
                    // OpenCV's vectorised 2×2 path rounds half up
                    ((sum + 2) >> 2) as u8
                } else {
                    saturate_u8(sum as f32 * inv_area)
                };
            }
        }
    }
    out
}

/// One source sample's share of one output sample.
struct Share {
    dst: usize,
    src: usize,
    weight: f32,
}

/// Which source samples cover each output cell of `scale` source samples, and by how much
/// (OpenCV's `computeResizeAreaTab`), in output order.
fn shares(src_len: usize, dst_len: usize, scale: f64) -> Vec<Share> {
    let mut out = Vec::with_capacity(src_len + dst_len + 1);
    for d in 0..dst_len {
        let f1 = d as f64 * scale;
        let f2 = f1 + scale;
        let cell = scale.min(src_len as f64 - f1);
        let s2 = (f2.floor() as usize).min(src_len - 1);
        let s1 = (f1.ceil() as usize).min(s2);
        if s1 as f64 - f1 > 1e-3 {
            out.push(Share {
                dst: d,
                src: s1 - 1,
                weight: ((s1 as f64 - f1) / cell) as f32,
            });
        }
        for s in s1..s2 {
            out.push(Share {
                dst: d,
                src: s,
                weight: (1.0 / cell) as f32,
            });
        }
        if f2 - s2 as f64 > 1e-3 {
            out.push(Share {
                dst: d,
                src: s2,
                weight: ((f2 - s2 as f64).min(1.0).min(cell) / cell) as f32,
            });
        }
    }
    out
}

/// `INTER_AREA` by a non-integer factor.
fn area_fractional(
    src: &Mapped<'_>,
    scale_x: f64,
    scale_y: f64,
    out_w: usize,
    out_h: usize,
) -> Zeroizing<Vec<u8>> {
    let x_shares = shares(src.width(), out_w, scale_x);
    let y_shares = shares(src.height(), out_h, scale_y);
    let row_len = out_w * 3;
    let mut out = Zeroizing::new(vec![0u8; out_h * row_len]);
    let mut row = Zeroizing::new(vec![0f32; row_len]);
    let mut sum = Zeroizing::new(vec![0f32; row_len]);
    let mut current = y_shares.first().map_or(0, |s| s.dst);
    let flush = |sum: &[f32], dy: usize, out: &mut [u8]| {
        for (o, &v) in out[dy * row_len..(dy + 1) * row_len].iter_mut().zip(sum) {
            *o = saturate_u8(v);
        }
    };
    for ys in &y_shares {
        row.fill(0.0);
        for xs in &x_shares {
            let px = src.at(xs.src, ys.src);
            for c in 0..3 {
                let slot = &mut row[xs.dst * 3 + c];
                *slot += f32::from(px[c]) * xs.weight;
            }
        }
        if ys.dst != current {
            flush(&sum, current, &mut out);
            for (s, &r) in sum.iter_mut().zip(row.iter()) {
                *s = ys.weight * r;
            }
            current = ys.dst;
        } else {
            for (s, &r) in sum.iter_mut().zip(row.iter()) {
                *s += ys.weight * r;
            }
        }
    }
    flush(&sum, current, &mut out);
    out
}

/// Fixed-point scale of the Lanczos weights (OpenCV's `INTER_RESIZE_COEF_BITS` = 11).
const COEF_BITS: u32 = 11;

/// OpenCV's `interpolateLanczos4`: the 8 weights of taps −3…+4 at fraction `x`.
fn lanczos4_weights(x: f32) -> [f32; 8] {
    if x < f32::EPSILON {
        let mut w = [0.0; 8];
        w[3] = 1.0;
        return w;
    }
    const S45: f64 = std::f64::consts::FRAC_1_SQRT_2;
    // sin and cos of y - i·π/4, from those of y: (sin, cos) coefficients per tap
    const CS: [[f64; 2]; 8] = [
        [1.0, 0.0],
        [-S45, -S45],
        [0.0, 1.0],
        [S45, -S45],
        [-1.0, 0.0],
        [S45, S45],
        [0.0, -1.0],
        [-S45, S45],
    ];
    let quarter = std::f64::consts::PI * 0.25;
    let y0 = -(f64::from(x) + 3.0) * quarter;
    let (s0, c0) = (y0.sin(), y0.cos());
    let mut w = [0f32; 8];
    let mut total = 0f32;
    for (i, wi) in w.iter_mut().enumerate() {
        let y = -(f64::from(x) + 3.0 - i as f64) * quarter;
        *wi = ((CS[i][0] * s0 + CS[i][1] * c0) / (y * y)) as f32;
        total += *wi;
    }
    let inv = 1.0 / total;
    for wi in &mut w {
        *wi *= inv;
    }
    w
}

/// Per output sample: the first of its 8 taps (may be negative) and their fixed-point weights.
fn lanczos4_taps(src_len: usize, dst_len: usize) -> Vec<(i64, [i64; 8])> {
    let scale = scale(src_len, dst_len);
    (0..dst_len)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let first = f.floor();
            let weights = lanczos4_weights(f - first)
                .map(|w| (w * (1u32 << COEF_BITS) as f32).round_ties_even() as i64);
            (first as i64 - 3, weights)
        })
        .collect()
}

/// `INTER_LANCZOS4` to `out_w × out_h`.
pub(crate) fn lanczos4(src: &Mapped<'_>, out_w: usize, out_h: usize) -> Zeroizing<Vec<u8>> {
    let (sw, sh) = (src.width(), src.height());
    let clamp = |i: i64, len: usize| i.clamp(0, len as i64 - 1) as usize;
    let x_taps = lanczos4_taps(sw, out_w);
    let y_taps = lanczos4_taps(sh, out_h);
    let row_len = out_w * 3;
    // the horizontal pass of every source row
    let mut rows = Zeroizing::new(vec![0i64; sh * row_len]);
    for y in 0..sh {
        for (dx, (first, weights)) in x_taps.iter().enumerate() {
            for (k, w) in weights.iter().enumerate() {
                let px = src.at(clamp(first + k as i64, sw), y);
                for c in 0..3 {
                    rows[y * row_len + dx * 3 + c] += i64::from(px[c]) * w;
                }
            }
        }
    }
    let mut out = Zeroizing::new(vec![0u8; out_h * row_len]);
    let half = 1i64 << (2 * COEF_BITS - 1);
    for (dy, (first, weights)) in y_taps.iter().enumerate() {
        for i in 0..row_len {
            let acc: i64 = weights
                .iter()
                .enumerate()
                .map(|(k, w)| rows[clamp(first + k as i64, sh) * row_len + i] * w)
                .sum();
            out[dy * row_len + i] = ((acc + half) >> (2 * COEF_BITS)).clamp(0, 255) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_101_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (-4..9).map(|p| reflect_101(p, 5)).collect();
        assert_eq!(got, [4, 3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0]);
        assert_eq!(reflect_101(-7, 1), 0);
        assert_eq!(reflect_101(-1, 2), 1);
        assert_eq!(reflect_101(2, 2), 0);
        // folded again: a border wider than the line
        assert_eq!(reflect_101(-9, 3), 1);
    }

    #[test]
    fn a_reflected_view_reads_the_border_from_inside() {
        // one row 10, 20, 30 (grey), padded by 2 on the left and 1 on the right
        let rgb: Vec<u8> = [10u8, 20, 30].iter().flat_map(|&v| [v; 3]).collect();
        let view = Mapped::reflected(&rgb, 3, [0, 0, 3, 1], [0, 0, 2, 1]);
        let row: Vec<u8> = view.to_vec().chunks(3).map(|p| p[0]).collect();
        assert_eq!(row, [30, 20, 10, 20, 30, 20]);
        // a window of a wider row reflects within the window, not the row
        let rgb: Vec<u8> = [10u8, 20, 30, 40, 50]
            .iter()
            .flat_map(|&v| [v; 3])
            .collect();
        let view = Mapped::reflected(&rgb, 5, [1, 0, 3, 1], [0, 0, 2, 1]);
        let row: Vec<u8> = view.to_vec().chunks(3).map(|p| p[0]).collect();
        assert_eq!(row, [40, 30, 20, 30, 40, 30]);
    }

    fn grey(width: usize, height: usize, f: impl Fn(usize, usize) -> u8) -> Vec<u8> {
        let mut v = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                v.extend_from_slice(&[f(x, y); 3]);
            }
        }
        v
    }

    #[test]
    fn area_by_two_rounds_half_up_other_factors_half_to_even() {
        // a 2×2 block 1, 2, 3, 4: mean 2.5 → 3 (half to even would give 2)
        let img = grey(2, 2, |x, y| (1 + x + 2 * y) as u8);
        assert_eq!(area(&Mapped::plain(&img, 2, 2), 1, 1)[0], 3);
        // a 4×4 block summing to 40: mean 2.5 → 2, half to even
        let img = grey(4, 4, |x, y| if x + y == 0 { 10 } else { 2 });
        assert_eq!(area(&Mapped::plain(&img, 4, 4), 1, 1)[0], 2);
    }

    #[test]
    fn area_by_a_fraction_weighs_the_covered_share() {
        // 3 → 2: output 0 covers source 0 fully and half of source 1
        let img = grey(3, 1, |x, _| [0u8, 90, 180][x]);
        let out = area(&Mapped::plain(&img, 3, 1), 2, 1);
        // (0 + 0.5·90) / 1.5 = 30, (0.5·90 + 180) / 1.5 = 150
        assert_eq!([out[0], out[3]], [30, 150]);
    }

    #[test]
    fn a_flat_image_stays_flat_at_every_size() {
        let img = grey(37, 37, |_, _| 200);
        let src = Mapped::plain(&img, 37, 37);
        for n in [36, 20, 7, 1] {
            assert!(area(&src, n, n).iter().all(|&v| v == 200), "area {n}");
        }
        for n in [38, 64, 128] {
            assert!(
                lanczos4(&src, n, n).iter().all(|&v| v == 200),
                "lanczos {n}"
            );
        }
    }

    #[test]
    fn lanczos_weights_sum_to_one_and_are_exact_at_zero() {
        assert_eq!(
            lanczos4_weights(0.0),
            [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
        for x in [0.1f32, 0.25, 0.5, 0.9] {
            let w = lanczos4_weights(x);
            assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            assert!(w[3] > 0.0 && w[4] > 0.0);
        }
        // symmetric about one half
        let w = lanczos4_weights(0.5);
        for i in 0..8 {
            assert!((w[i] - w[7 - i]).abs() < 1e-6);
        }
    }
}
