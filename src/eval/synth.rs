//! Building challenge sequences for tests and evaluation sets from real images: genuine
//! responses assembled from real pose photos, and planar attacks (a real photo as a print or
//! a screen, turned, shifted and slightly bent in front of a camera) rendered under
//! perspective.
//!
//! Everything made here is synthetic — assembled from still images or rendered — and must be
//! labelled so wherever it is used: these are not recordings of customers answering a
//! challenge on a terminal. The randomness is [`SplitMix64`], so a seed reproduces a set.

use crate::error::{Error, ErrorKind, Result};
use crate::face::FaceImage;
use crate::face::motion::HeadMovement;
use crate::stats::rng::SplitMix64;

/// Decodes a greyscale PGM (ASCII `P2` or binary `P5`, 8-bit) into an RGB image, as the CMU
/// Face Images are stored. Anything else is [`ErrorKind::ImageDecode`].
pub fn read_pgm(bytes: &[u8]) -> Result<FaceImage> {
    let bad = |m: &str| Error::new(ErrorKind::ImageDecode, format!("not a PGM image: {m}"));
    // The header: magic, width, height, maxval, separated by whitespace and comments.
    let mut pos = 0;
    let mut fields = Vec::new();
    while fields.len() < 4 {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos < bytes.len() && bytes[pos] == b'#' {
            while pos < bytes.len() && bytes[pos] != b'\n' {
                pos += 1;
            }
            continue;
        }
        let start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if start == pos {
            return Err(bad("the header is cut short"));
        }
        fields.push(String::from_utf8_lossy(&bytes[start..pos]).into_owned());
    }
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| bad("a header field is no number"))
    };
    let (w, h, max) = (
        number(&fields[1])?,
        number(&fields[2])?,
        number(&fields[3])?,
    );
    if !(1..=255).contains(&max) || w == 0 || h == 0 || w > 8192 || h > 8192 {
        return Err(bad("only 8-bit images up to 8192 px are read"));
    }
    let n = (w * h) as usize;
    let grey: Vec<u32> = match fields[0].as_str() {
        "P2" => {
            let values: Vec<u32> = String::from_utf8_lossy(&bytes[pos..])
                .split_whitespace()
                .take(n)
                .map(number)
                .collect::<Result<_>>()?;
            values
        }
        // One whitespace byte after maxval, then the samples.
        "P5" => bytes
            .get(pos + 1..pos + 1 + n)
            .ok_or_else(|| bad("the pixels are cut short"))?
            .iter()
            .map(|&b| u32::from(b))
            .collect(),
        _ => return Err(bad("the magic is neither P2 nor P5")),
    };
    if grey.len() != n {
        return Err(bad("the pixels are cut short"));
    }
    let rgb = grey
        .iter()
        .flat_map(|&v| {
            let v = (v * 255 / max).min(255) as u8;
            [v, v, v]
        })
        .collect();
    FaceImage::from_rgb(w, h, rgb)
}

/// Where a flat photo is held in front of the camera.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanePose {
    /// Turn about the vertical axis, radians (positive: the print's right edge, as the
    /// camera sees it, goes away).
    pub yaw: f32,
    /// Tilt about the horizontal axis, radians.
    pub pitch: f32,
    /// Sideways and vertical shift of the print's centre, in output pixels.
    pub shift: [f32; 2],
    /// Size of the print in the frame, as a share of the frame's height.
    pub scale: f32,
    /// Bend about the vertical axis: the depth of the print's edges behind its centre, as a
    /// share of its width (a cylinder-ish sheet; 0 is flat).
    pub bend: f32,
}

impl Default for PlanePose {
    fn default() -> Self {
        PlanePose {
            yaw: 0.0,
            pitch: 0.0,
            shift: [0.0, 0.0],
            scale: 0.8,
            bend: 0.0,
        }
    }
}

/// A camera frame of `photo` held as a sheet at `pose`, `width × height`, seen by a pinhole
/// camera whose focal length is `focal` frame widths (about 1–1.5 for a webcam at arm's
/// length); pixels outside the sheet are `background`'s (same size as the frame). Bilinear
/// sampling through the inverse of the sheet's projection (for a bent sheet, a few fixed-point
/// steps from the flat solution).
pub fn render_sheet(
    photo: &FaceImage,
    pose: &PlanePose,
    background: &FaceImage,
    focal: f32,
) -> Result<FaceImage> {
    let (width, height) = (background.width(), background.height());
    let (pw, ph) = (photo.width() as f32, photo.height() as f32);
    // Print units: the sheet's pixel grid scaled so that its height is `scale` of the frame.
    let k = pose.scale * height as f32 / ph;
    let f = focal * width as f32;
    let (cy, sy, cp, sp) = (
        pose.yaw.cos(),
        pose.yaw.sin(),
        pose.pitch.cos(),
        pose.pitch.sin(),
    );
    // R = Rx(pitch) · Ry(yaw): the sheet's axes in camera space.
    let r = [
        [cy, 0.0, sy],
        [sp * sy, cp, -sp * cy],
        [-cp * sy, sp, cp * cy],
    ];
    let rgb = photo.rgb();
    let mut out = background.rgb().to_vec();
    let half_w = pw * k / 2.0;
    let bend = pose.bend * pw * k;
    for oy in 0..height {
        for ox in 0..width {
            // The ray through the pixel, from the camera at (0, 0, -f) towards the sheet
            // centred at the origin (shifted in the image plane by `shift`).
            let x = ox as f32 - width as f32 / 2.0 - pose.shift[0];
            let y = oy as f32 - height as f32 / 2.0 - pose.shift[1];
            // In sheet coordinates q = Rᵀ (c + t d), c = (0, 0, -f), d = (x, y, f).
            let qc = [-f * r[2][0], -f * r[2][1], -f * r[2][2]];
            let qd = [
                r[0][0] * x + r[1][0] * y + r[2][0] * f,
                r[0][1] * x + r[1][1] * y + r[2][1] * f,
                r[0][2] * x + r[1][2] * y + r[2][2] * f,
            ];
            if qd[2].abs() < 1e-6 {
                continue;
            }
            // The sheet: q_z = depth(q_x); flat first, then fixed-point steps.
            let mut t = -qc[2] / qd[2];
            for _ in 0..4 {
                if bend == 0.0 {
                    break;
                }
                let u = (qc[0] + t * qd[0]) / half_w;
                t = (bend * u * u - qc[2]) / qd[2];
            }
            if t <= 0.0 {
                continue;
            }
            let u = (qc[0] + t * qd[0]) / k + pw / 2.0;
            let v = (qc[1] + t * qd[1]) / k + ph / 2.0;
            if u < 0.0 || v < 0.0 || u >= pw - 1.0 || v >= ph - 1.0 {
                continue;
            }
            let (u0, v0) = (u.floor() as usize, v.floor() as usize);
            let (fu, fv) = (u - u0 as f32, v - v0 as f32);
            let at =
                |xx: usize, yy: usize, c: usize| f32::from(rgb[(yy * pw as usize + xx) * 3 + c]);
            for c in 0..3 {
                let top = at(u0, v0, c) * (1.0 - fu) + at(u0 + 1, v0, c) * fu;
                let bottom = at(u0, v0 + 1, c) * (1.0 - fu) + at(u0 + 1, v0 + 1, c) * fu;
                out[(oy as usize * width as usize + ox as usize) * 3 + c] =
                    (top * (1.0 - fv) + bottom * fv).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    FaceImage::from_rgb(width, height, out)
}

/// `photo` as a phone or tablet screen would show it: a dark bezel around it, brighter and
/// bluer, with faint moiré stripes (the screen's pixel grid beating against the camera's).
pub fn as_screen(photo: &FaceImage, rng: &mut SplitMix64) -> Result<FaceImage> {
    let (w, h) = (photo.width() as usize, photo.height() as usize);
    let border = (w.min(h) / 14).max(4);
    let (ow, oh) = (w + 2 * border, h + 2 * border);
    let period = 3.0 + 3.0 * unit(rng);
    let angle = 0.3 + 0.9 * unit(rng);
    let (ca, sa) = (angle.cos(), angle.sin());
    let gain = 1.08 + 0.12 * unit(rng);
    let mut out = vec![18u8; ow * oh * 3];
    let src = photo.rgb();
    for y in 0..h {
        for x in 0..w {
            let stripe = 1.0
                + 0.06 * ((x as f32 * ca + y as f32 * sa) * std::f32::consts::TAU / period).sin();
            for c in 0..3 {
                let tint = [0.96, 1.0, 1.08][c];
                let v = f32::from(src[(y * w + x) * 3 + c]) * gain * tint * stripe + 6.0;
                out[((y + border) * ow + x + border) * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    FaceImage::from_rgb(ow as u32, oh as u32, out)
}

/// A plain camera background, `width × height`: a soft grey gradient with a little noise.
pub fn background(width: u32, height: u32, rng: &mut SplitMix64) -> Result<FaceImage> {
    let base = 90.0 + 80.0 * unit(rng);
    let slope = 40.0 * (unit(rng) - 0.5);
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let g = base + slope * (x as f32 / width as f32) - 20.0 * (y as f32 / height as f32);
            for c in 0..3 {
                let v = g + [4.0, 0.0, -4.0][c] + 6.0 * (unit(rng) - 0.5);
                rgb.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    FaceImage::from_rgb(width, height, rgb)
}

/// `image` shifted by a few pixels (`dx`, `dy`, edges repeated) with a little brightness
/// change and per-pixel noise of up to `noise` levels: the frame-to-frame jitter of a camera
/// on a real scene.
pub fn jitter(
    image: &FaceImage,
    dx: i32,
    dy: i32,
    gain: f32,
    noise: f32,
    rng: &mut SplitMix64,
) -> Result<FaceImage> {
    let (w, h) = (image.width() as i32, image.height() as i32);
    let src = image.rgb();
    let mut out = Vec::with_capacity(src.len());
    for y in 0..h {
        for x in 0..w {
            let sx = (x - dx).clamp(0, w - 1);
            let sy = (y - dy).clamp(0, h - 1);
            for c in 0..3 {
                let v = f32::from(src[((sy * w + sx) * 3 + c) as usize]) * gain
                    + noise * (2.0 * unit(rng) - 1.0);
                out.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    FaceImage::from_rgb(image.width(), image.height(), out)
}

/// Capture times of `frames` frames at about `fps`, each interval off by up to `jitter`
/// (a share of the period) at random: what a webcam's timestamps look like.
pub fn frame_times(frames: usize, fps: f64, jitter: f64, rng: &mut SplitMix64) -> Vec<f64> {
    let period = 1.0 / fps;
    let mut t = 0.0;
    (0..frames)
        .map(|i| {
            if i > 0 {
                t += period * (1.0 + jitter * (2.0 * f64::from(unit(rng)) - 1.0));
            }
            t
        })
        .collect()
}

/// The schedule of a genuine response built from pose photos: `lead` frames facing the
/// camera, then for each movement `hold` frames of it and `back` frames facing the camera.
/// Each entry is `None` (facing the camera) or the movement shown. Counts are drawn from the
/// given ranges (inclusive).
pub fn response_schedule(
    actions: &[HeadMovement],
    lead: (usize, usize),
    hold: (usize, usize),
    back: (usize, usize),
    rng: &mut SplitMix64,
) -> Vec<Option<HeadMovement>> {
    let mut draw = |(lo, hi): (usize, usize)| lo + rng.below((hi - lo + 1) as u64) as usize;
    let mut out = vec![None; draw(lead)];
    for &a in actions {
        out.extend(std::iter::repeat_n(Some(a), draw(hold)));
        out.extend(std::iter::repeat_n(None, draw(back)));
    }
    out
}

/// The frames of a genuine response assembled from one person's pose photos `[straight,
/// left, right, up]` (a look down shows the up photo: the CMU poses have none), one per step
/// of `schedule` ([`response_schedule`]): each [`jitter`]ed by up to `shake` pixels each way
/// and a gain of `gain.0 + gain.1 × U(0, 1)` (no draw when `gain.1` is 0), with noise of 2
/// levels — a camera's shake on a person holding each pose.
pub fn posed_frames(
    poses: [&FaceImage; 4],
    schedule: &[Option<HeadMovement>],
    shake: i32,
    gain: (f32, f32),
    rng: &mut SplitMix64,
) -> Result<Vec<FaceImage>> {
    let span = (2 * shake.max(0) + 1) as u64;
    schedule
        .iter()
        .map(|shown| {
            let photo = match shown {
                None => poses[0],
                Some(HeadMovement::Left) => poses[1],
                Some(HeadMovement::Right) => poses[2],
                Some(_) => poses[3],
            };
            let (dx, dy) = (
                rng.below(span) as i32 - shake,
                rng.below(span) as i32 - shake,
            );
            let g = if gain.1 > 0.0 {
                gain.0 + gain.1 * unit(rng)
            } else {
                gain.0
            };
            jitter(photo, dx, dy, g, 2.0, rng)
        })
        .collect()
}

/// The sheet poses with which an attacker mimics `actions` with a flat photo: from facing
/// the camera, for each movement a turn (left/right, up to `yaw` radians) or tilt (up/down,
/// up to `pitch`) over `ramp` frames, held `hold` frames, and back over `ramp` frames; the
/// sheet also drifts sideways by up to `drift` pixels with the turn (a hand moves as it turns
/// a print), as a person's head moves sideways as it turns. `base` gives the scale and bend.
pub fn sheet_schedule(
    actions: &[HeadMovement],
    base: PlanePose,
    yaw: f32,
    pitch: f32,
    drift: f32,
    (lead, ramp, hold): (usize, usize, usize),
) -> Vec<PlanePose> {
    let mut out = vec![base; lead];
    for &a in actions {
        let (ty, tp, sx) = match a {
            // The customer's left: the nose moves to the image's right; a print turned with
            // its right edge away moves its centre line that way too.
            HeadMovement::Left => (yaw, 0.0, drift),
            HeadMovement::Right => (-yaw, 0.0, -drift),
            HeadMovement::Up => (0.0, pitch, 0.0),
            HeadMovement::Down => (0.0, -pitch, 0.0),
        };
        let at = |s: f32| PlanePose {
            yaw: base.yaw + ty * s,
            pitch: base.pitch + tp * s,
            shift: [base.shift[0] + sx * s, base.shift[1]],
            ..base
        };
        let ramp_n = ramp.max(1);
        out.extend((1..=ramp_n).map(|k| at(k as f32 / ramp_n as f32)));
        out.extend(std::iter::repeat_n(at(1.0), hold));
        out.extend((0..ramp_n).rev().map(|k| at(k as f32 / ramp_n as f32)));
    }
    out
}

/// Writes one synthetic session folder `dir` (created): `frames` as `frame_0000.png`, … and a
/// `session.toml` ([`crate::eval::challenges`]) with `label`, the `group` it is reported in
/// (if any), `actions`, the frames' `times`, `synthetic = true` and `source` (say how the
/// frames were made).
pub fn write_session(
    dir: &std::path::Path,
    label: &str,
    group: Option<&str>,
    actions: &[HeadMovement],
    times: &[f64],
    source: &str,
    frames: &[FaceImage],
) -> Result<()> {
    if times.len() != frames.len() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{} frames but {} times", frames.len(), times.len()),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating a session folder", dir, e))?;
    for (i, frame) in frames.iter().enumerate() {
        let png = crate::capture::encode_image(frame, crate::capture::FrameEncoding::Png)?;
        let path = dir.join(format!("frame_{i:04}.png"));
        std::fs::write(&path, &*png).map_err(|e| Error::io("writing a frame", &path, e))?;
    }
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let text = format!(
        "# Synthetic: {}\nlabel = {}\n{}actions = [{}]\ntimes = [{}]\nsynthetic = true\nsource = {}\n",
        source.replace('\n', " "),
        quote(label),
        group.map_or(String::new(), |g| format!("group = {}\n", quote(g))),
        actions
            .iter()
            .map(|a| quote(a.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
        times
            .iter()
            .map(|t| format!("{t:.4}"))
            .collect::<Vec<_>>()
            .join(", "),
        quote(source)
    );
    let path = dir.join(crate::eval::challenges::SESSION_FILE);
    std::fs::write(&path, text).map_err(|e| Error::io("writing a session file", &path, e))
}

/// Uniform in [0, 1).
pub fn unit(rng: &mut SplitMix64) -> f32 {
    (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgm_ascii_and_binary() {
        let img = read_pgm(b"P2\n# c\n2 1\n15\n0 15\n").unwrap();
        assert_eq!((img.width(), img.height()), (2, 1));
        assert_eq!(img.rgb(), [0, 0, 0, 255, 255, 255]);
        let img = read_pgm(b"P5 2 1 255\n\x10\x20").unwrap();
        assert_eq!(img.rgb(), [16, 16, 16, 32, 32, 32]);
        for bad in [
            &b"P6 1 1 255\n\0\0\0"[..],
            b"P2 2 2 255\n1 2 3",
            b"P2 1",
            b"P5 1 1 0\n\0",
        ] {
            assert_eq!(read_pgm(bad).unwrap_err().kind(), ErrorKind::ImageDecode);
        }
    }

    #[test]
    fn a_sheet_facing_the_camera_is_the_photo_scaled_and_a_turned_one_narrows() {
        let mut rng = SplitMix64::new(1);
        // A white photo on a black frame.
        let photo = FaceImage::from_rgb(40, 40, vec![255; 40 * 40 * 3]).unwrap();
        let black = FaceImage::from_rgb(100, 100, vec![0; 100 * 100 * 3]).unwrap();
        let width_of = |img: &FaceImage| {
            let row = &img.rgb()[50 * 100 * 3..51 * 100 * 3];
            row.chunks(3).filter(|p| p[0] > 128).count()
        };
        let flat = PlanePose {
            scale: 0.5,
            ..PlanePose::default()
        };
        let facing = render_sheet(&photo, &flat, &black, 1.2).unwrap();
        assert!(
            (width_of(&facing) as i32 - 50).abs() <= 2,
            "{}",
            width_of(&facing)
        );
        let turned = render_sheet(&photo, &PlanePose { yaw: 1.0, ..flat }, &black, 1.2).unwrap();
        assert!(width_of(&turned) < 35, "{}", width_of(&turned));
        let bent = render_sheet(&photo, &PlanePose { bend: 0.1, ..flat }, &black, 1.2).unwrap();
        assert!(width_of(&bent) <= width_of(&facing));
        let screen = as_screen(&photo, &mut rng).unwrap();
        assert!(screen.width() > 40 && screen.rgb()[0] < 40);
    }

    #[test]
    fn schedules_and_times() {
        let mut rng = SplitMix64::new(3);
        let s = response_schedule(
            &[HeadMovement::Left, HeadMovement::Up],
            (4, 4),
            (3, 3),
            (2, 2),
            &mut rng,
        );
        assert_eq!(s.len(), 4 + 2 * 5);
        assert_eq!(s[4], Some(HeadMovement::Left));
        assert_eq!(s[9], Some(HeadMovement::Up));
        let t = frame_times(30, 15.0, 0.2, &mut rng);
        assert!(t.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] < 0.09));
        let poses = sheet_schedule(
            &[HeadMovement::Right],
            PlanePose::default(),
            0.6,
            0.4,
            20.0,
            (3, 4, 2),
        );
        assert_eq!(poses.len(), 3 + 4 + 2 + 4);
        assert!((poses[7].yaw + 0.6).abs() < 1e-6 && poses[7].shift[0] < 0.0);
        assert_eq!(poses.last().unwrap().yaw, 0.0);
    }
}
