//! Image downscaling with a bilinear (triangle) convolution, bit-exact with Pillow's
//! `Image.resize(size, BILINEAR, reducing_gap=None)`.
//!
//! YuNet's landmarks move by tenths of a pixel when a downscaled image differs by one grey
//! level here and there, and the embedding follows them. Matching the reference resampler
//! exactly (same filter support, same 22-bit fixed-point weights, same rounding, horizontal
//! pass before vertical) keeps vouch's detections identical to the independent reference's.

/// Fixed-point precision of the filter weights: 32 bits less 8 for the pixel and 2 of headroom.
const PRECISION_BITS: u32 = 22;

/// Per output sample: the first input index and the fixed-point weights of the window.
struct Coefficients {
    ksize: usize,
    starts: Vec<usize>,
    lens: Vec<usize>,
    weights: Vec<i32>,
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

fn coefficients(in_size: usize, out_size: usize) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    // When shrinking, the filter widens with the scale so every input pixel contributes.
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the triangle filter's support is 1
    let ksize = support.ceil() as usize * 2 + 1;
    let mut starts = Vec::with_capacity(out_size);
    let mut lens = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut window = vec![0f64; ksize];
    for out in 0..out_size {
        let center = (out as f64 + 0.5) * scale;
        // `as i64` truncates toward zero, as the reference's C cast does.
        let start = ((center - support + 0.5) as i64).max(0) as usize;
        let end = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let len = end.saturating_sub(start).min(ksize);
        let mut total = 0.0;
        for (i, w) in window.iter_mut().enumerate().take(len) {
            *w = triangle((i as f64 + start as f64 - center + 0.5) / filter_scale);
            total += *w;
        }
        for i in 0..len {
            let w = if total != 0.0 {
                window[i] / total
            } else {
                window[i]
            };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            weights[out * ksize + i] = if fixed < 0.0 {
                (fixed - 0.5) as i32
            } else {
                (fixed + 0.5) as i32
            };
        }
        starts.push(start);
        lens.push(len);
    }
    Coefficients {
        ksize,
        starts,
        lens,
        weights,
    }
}

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an RGB image (`width × height × 3` bytes) to `out_width × out_height`.
///
/// Fixed point in `i32`, as the reference does: the triangle's weights are non-negative and
/// sum to 2²², so a sum of 8-bit samples stays below 2³¹. The vertical pass runs row by row
/// over a row of accumulators (the inner loop is over contiguous bytes, which the compiler
/// vectorises).
///
/// # Panics
/// Never on well-formed input; callers pass a buffer of `width × height × 3` bytes and
/// non-zero sizes (checked by [`crate::face::FaceImage`]).
pub fn resize_rgb(
    rgb: &[u8],
    width: usize,
    height: usize,
    out_width: usize,
    out_height: usize,
) -> Vec<u8> {
    debug_assert_eq!(rgb.len(), width * height * 3);
    let half = 1i32 << (PRECISION_BITS - 1);
    // Horizontal pass: every input row to out_width columns.
    let horizontal: std::borrow::Cow<'_, [u8]> = if out_width == width {
        std::borrow::Cow::Borrowed(rgb)
    } else {
        let c = coefficients(width, out_width);
        let mut tmp = vec![0u8; out_width * height * 3];
        match Padded::new(&c, width) {
            // Halving (a 640×480 frame for the 320-px detection): the interior windows are
            // all (1, 3, 3, 1) / 8, a sum of small integers.
            Some(_) if width == 2 * out_width && halving_weights(&c) => {
                horizontal_halve(rgb, width, &c, &mut tmp);
            }
            // Windows of one fixed length (zero weights added at their ends change no sum),
            // which the compiler unrolls for the common sizes.
            Some(p) if p.ksize == 3 => horizontal_fixed::<3>(rgb, width, &p, &mut tmp),
            Some(p) if p.ksize == 5 => horizontal_fixed::<5>(rgb, width, &p, &mut tmp),
            Some(p) if p.ksize == 7 => horizontal_fixed::<7>(rgb, width, &p, &mut tmp),
            _ => horizontal_any(rgb, width, &c, &mut tmp),
        }
        std::borrow::Cow::Owned(tmp)
    };
    if out_height == height {
        return horizontal.into_owned();
    }
    // Vertical pass over the horizontally resized rows, one output row at a time.
    let c = coefficients(height, out_height);
    let stride = out_width * 3;
    let mut out = vec![0u8; out_width * out_height * 3];
    let mut acc = vec![0i32; stride];
    let halving = height == 2 * out_height && halving_weights(&c);
    for (y, out_row) in out.chunks_exact_mut(stride).enumerate() {
        if halving && y > 0 && y + 1 < out_height {
            // (a + 3b + 3c + d + 4) >> 3 down the four rows, as in `horizontal_halve`.
            let row = |r: usize| &horizontal[r * stride..(r + 1) * stride];
            let (a, b, cc, d) = (row(2 * y - 1), row(2 * y), row(2 * y + 1), row(2 * y + 2));
            for (i, o) in out_row.iter_mut().enumerate() {
                let sum =
                    u16::from(a[i]) + 3 * u16::from(b[i]) + 3 * u16::from(cc[i]) + u16::from(d[i]);
                *o = ((sum + 4) >> 3) as u8;
            }
            continue;
        }
        acc.fill(half);
        let k = &c.weights[y * c.ksize..y * c.ksize + c.lens[y]];
        for (i, &w) in k.iter().enumerate() {
            let row = &horizontal[(c.starts[y] + i) * stride..(c.starts[y] + i + 1) * stride];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * w;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// Whether every interior window of `c` (all but the first and last output) is the halving
/// triangle's: inputs 2x−1 … 2x+2 weighted 1/8, 3/8, 3/8, 1/8 (exactly, in fixed point).
fn halving_weights(c: &Coefficients) -> bool {
    let unit = 1i32 << (PRECISION_BITS - 3);
    let n = c.starts.len();
    n >= 3
        && (1..n - 1).all(|x| {
            c.starts[x] == 2 * x - 1
                && c.lens[x] == 4
                && c.weights[x * c.ksize..x * c.ksize + 4] == [unit, 3 * unit, 3 * unit, unit]
        })
}

/// A halving horizontal pass: the two edge outputs by their own (clipped) windows, the
/// interior ones as `(a + 3b + 3c + d + 4) >> 3`, which equals the fixed-point sum
/// `(2¹⁹(a + 3b + 3c + d) + 2²¹) >> 22` of the general pass exactly, in 16-bit lanes.
fn horizontal_halve(rgb: &[u8], width: usize, c: &Coefficients, out: &mut [u8]) {
    let half = 1i32 << (PRECISION_BITS - 1);
    let out_width = width / 2;
    for (row, out_row) in rgb
        .chunks_exact(width * 3)
        .zip(out.chunks_exact_mut(out_width * 3))
    {
        for x in [0, out_width - 1] {
            let k = &c.weights[x * c.ksize..x * c.ksize + c.lens[x]];
            let window = &row[3 * c.starts[x]..3 * (c.starts[x] + k.len())];
            let mut acc = [half; 3];
            for (px, &w) in window.chunks_exact(3).zip(k) {
                for ch in 0..3 {
                    acc[ch] += i32::from(px[ch]) * w;
                }
            }
            out_row[3 * x..3 * x + 3].copy_from_slice(&acc.map(clip8));
        }
        for x in 1..out_width - 1 {
            let w = &row[3 * (2 * x - 1)..3 * (2 * x + 3)];
            for ch in 0..3 {
                let sum = u16::from(w[ch])
                    + 3 * u16::from(w[3 + ch])
                    + 3 * u16::from(w[6 + ch])
                    + u16::from(w[9 + ch]);
                out_row[3 * x + ch] = ((sum + 4) >> 3) as u8;
            }
        }
    }
}

/// The horizontal pass with each output's own window length.
fn horizontal_any(rgb: &[u8], width: usize, c: &Coefficients, out: &mut [u8]) {
    let half = 1i32 << (PRECISION_BITS - 1);
    let out_width = c.starts.len();
    for (row, out_row) in rgb
        .chunks_exact(width * 3)
        .zip(out.chunks_exact_mut(out_width * 3))
    {
        for (x, out_px) in out_row.chunks_exact_mut(3).enumerate() {
            let k = &c.weights[x * c.ksize..x * c.ksize + c.lens[x]];
            let window = &row[3 * c.starts[x]..3 * (c.starts[x] + k.len())];
            let (mut r, mut g, mut b) = (half, half, half);
            for (px, &w) in window.chunks_exact(3).zip(k) {
                r += i32::from(px[0]) * w;
                g += i32::from(px[1]) * w;
                b += i32::from(px[2]) * w;
            }
            out_px.copy_from_slice(&[clip8(r), clip8(g), clip8(b)]);
        }
    }
}

/// Windows all `ksize` taps long, starting where they fit in the row: each output's weights
/// moved to their place in its window, zeros around them.
struct Padded {
    ksize: usize,
    starts: Vec<usize>,
    weights: Vec<i32>,
}

impl Padded {
    /// `None` when the row is shorter than a window.
    fn new(c: &Coefficients, width: usize) -> Option<Padded> {
        let ksize = c.ksize;
        if width < ksize {
            return None;
        }
        let out_width = c.starts.len();
        let mut starts = Vec::with_capacity(out_width);
        let mut weights = vec![0i32; out_width * ksize];
        for x in 0..out_width {
            let start = c.starts[x].min(width - ksize);
            let shift = c.starts[x] - start;
            let len = c.lens[x];
            weights[x * ksize + shift..x * ksize + shift + len]
                .copy_from_slice(&c.weights[x * ksize..x * ksize + len]);
            starts.push(start);
        }
        Some(Padded {
            ksize,
            starts,
            weights,
        })
    }
}

/// The horizontal pass over windows of `K` taps.
fn horizontal_fixed<const K: usize>(rgb: &[u8], width: usize, p: &Padded, out: &mut [u8]) {
    let half = 1i32 << (PRECISION_BITS - 1);
    let out_width = p.starts.len();
    for (row, out_row) in rgb
        .chunks_exact(width * 3)
        .zip(out.chunks_exact_mut(out_width * 3))
    {
        for ((out_px, &start), k) in out_row
            .chunks_exact_mut(3)
            .zip(&p.starts)
            .zip(p.weights.chunks_exact(K))
        {
            let window = &row[3 * start..3 * (start + K)];
            let k: &[i32; K] = match k.try_into() {
                Ok(k) => k,
                Err(_) => continue, // never: chunks of K weights
            };
            let (mut r, mut g, mut b) = (half, half, half);
            for (px, &w) in window.chunks_exact(3).zip(k) {
                r += i32::from(px[0]) * w;
                g += i32::from(px[1]) * w;
                b += i32::from(px[2]) * w;
            }
            out_px.copy_from_slice(&[clip8(r), clip8(g), clip8(b)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip8_reference(acc: i64) -> u8 {
        (acc >> PRECISION_BITS).clamp(0, 255) as u8
    }

    /// The straightforward form (64-bit sums, one output sample at a time), as first written.
    ///
    /// # Panics
    /// Never on well-formed input; callers pass a buffer of `width × height × 3` bytes and
    /// non-zero sizes (checked by [`crate::face::FaceImage`]).
    fn resize_rgb_reference(
        rgb: &[u8],
        width: usize,
        height: usize,
        out_width: usize,
        out_height: usize,
    ) -> Vec<u8> {
        debug_assert_eq!(rgb.len(), width * height * 3);
        let half = 1i64 << (PRECISION_BITS - 1);
        // Horizontal pass: every input row to out_width columns.
        let horizontal = if out_width == width {
            rgb.to_vec()
        } else {
            let c = coefficients(width, out_width);
            let mut tmp = vec![0u8; out_width * height * 3];
            for y in 0..height {
                let row = &rgb[y * width * 3..(y + 1) * width * 3];
                for x in 0..out_width {
                    let k = &c.weights[x * c.ksize..x * c.ksize + c.lens[x]];
                    let mut acc = [half; 3];
                    for (i, &w) in k.iter().enumerate() {
                        let p = 3 * (c.starts[x] + i);
                        for ch in 0..3 {
                            acc[ch] += i64::from(row[p + ch]) * i64::from(w);
                        }
                    }
                    let o = 3 * (y * out_width + x);
                    for ch in 0..3 {
                        tmp[o + ch] = clip8_reference(acc[ch]);
                    }
                }
            }
            tmp
        };
        if out_height == height {
            return horizontal;
        }
        // Vertical pass over the horizontally resized rows.
        let c = coefficients(height, out_height);
        let stride = out_width * 3;
        let mut out = vec![0u8; out_width * out_height * 3];
        for y in 0..out_height {
            let k = &c.weights[y * c.ksize..y * c.ksize + c.lens[y]];
            for x in 0..stride {
                let mut acc = half;
                for (i, &w) in k.iter().enumerate() {
                    acc += i64::from(horizontal[(c.starts[y] + i) * stride + x]) * i64::from(w);
                }
                out[y * stride + x] = clip8_reference(acc);
            }
        }
        out
    }

    #[test]
    fn the_fast_pass_equals_the_straightforward_one() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        };
        for (w, h, ow, oh) in [
            (640, 480, 320, 240),
            (8, 6, 4, 3),
            (6, 6, 3, 3),
            (4, 4, 2, 2),
            (640, 360, 320, 180),
            (1617, 2160, 240, 320),
            (37, 23, 11, 7),
            (20, 20, 20, 9),
            (20, 20, 9, 20),
            (9, 5, 12, 8),
        ] {
            let rgb: Vec<u8> = (0..w * h * 3).map(|_| next()).collect();
            assert_eq!(
                resize_rgb(&rgb, w, h, ow, oh),
                resize_rgb_reference(&rgb, w, h, ow, oh),
                "{w}x{h} -> {ow}x{oh}"
            );
        }
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (inp, out) in [(1000, 640), (1868, 640), (7, 3), (640, 640), (3, 7)] {
            let c = coefficients(inp, out);
            for o in 0..out {
                let sum: i64 = c.weights[o * c.ksize..o * c.ksize + c.lens[o]]
                    .iter()
                    .map(|&w| i64::from(w))
                    .sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= c.ksize as i64,
                    "{inp}->{out} #{o}: {sum}"
                );
            }
        }
    }

    #[test]
    fn halving_blends_neighbours() {
        // 4x1 -> 2x1: the triangle widens to support 2, so each output blends three inputs
        // with weights 3/4, 3/4, 1/4 (normalised by 7/4), the window clipped at the edge.
        let rgb = [0u8, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40];
        let out = resize_rgb(&rgb, 4, 1, 2, 1);
        // left: (0·3/4 + 100·3/4 + 200·1/4) / (7/4) = 71.43
        assert_eq!(out[0], 71);
        // right: (100·1/4 + 200·3/4 + 40·3/4) / (7/4) = 117.14
        assert_eq!(out[3], 117);
    }

    #[test]
    fn flat_images_stay_flat() {
        let rgb = [10u8, 20, 30].repeat(13 * 9);
        let out = resize_rgb(&rgb, 13, 9, 5, 4);
        assert!(out.chunks(3).all(|p| p == [10, 20, 30]));
    }
}
