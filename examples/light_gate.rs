//! Measures the quality gate's light checks against passive liveness, for choosing the
//! `[quality]` light limits (see `QualityConfig::default`).
//!
//! Reads image paths from standard input, one a line. Each image is judged as it is and in
//! synthetic bad-light versions made from it (`VARIANTS`): underexposed (a gain of 0.2, and a
//! gamma of 2.5 that crushes the shadows), backlit (the face darkened to 0.3 inside a feathered
//! ellipse around its box while the rest of the frame is brightened), and washed out (the
//! contrast squeezed to 0.3 around a light grey, as through haze or glare). For each version it
//! prints one JSON line: the quality report of the face found by the one detection of the
//! frame, the reasons the configured gate gives, and the fused liveness score — or the error
//! (`no_face` is a retake too). Figures are for research; nothing is recorded.
//!
//! Arguments name the versions to make (default: all).
//!
//! `cargo run --release --features eval --example light_gate [VERSION…] < paths.txt > light.jsonl`

use std::io::{BufRead, Write};

use vouch::decision::quality_failures;
use vouch::face::FaceImage;
use vouch::{Config, Engine};

/// The versions of each image, by name.
const VARIANTS: [&str; 5] = ["original", "gain_0.2", "gamma_2.5", "backlit", "washed_out"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let engine = Engine::new(config.validate()?)?;
    let limits = &engine.config().quality;
    let chosen: Vec<String> = std::env::args().skip(1).collect();
    if let Some(unknown) = chosen.iter().find(|c| !VARIANTS.contains(&c.as_str())) {
        return Err(format!("unknown version {unknown}; known: {VARIANTS:?}").into());
    }
    let variants: Vec<&str> = VARIANTS
        .into_iter()
        .filter(|v| chosen.is_empty() || chosen.iter().any(|c| c == v))
        .collect();
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let path = line?;
        let image = match FaceImage::open(std::path::Path::new(&path), &engine.config().limits) {
            Ok(image) => image,
            Err(e) => {
                let line = serde_json::json!({"path": path, "error": e.kind().to_string()});
                writeln!(out, "{line}")?;
                continue;
            }
        };
        // The backlit version darkens the face where the original's detection put it.
        let face = engine
            .face()
            .detect(&image)?
            .iter()
            .max_by(|a, b| area(&a.bbox).total_cmp(&area(&b.bbox)))
            .map(|d| d.bbox);
        for &variant in &variants {
            let Some(frame) = synthesise(&image, variant, face) else {
                continue;
            };
            let line = match engine.assess_liveness_images(std::slice::from_ref(&frame)) {
                Ok(a) => {
                    let quality = &a.faces[0].quality;
                    let reasons: Vec<&str> = quality_failures(quality, limits)
                        .iter()
                        .map(|f| f.check.reason())
                        .collect();
                    serde_json::json!({
                        "path": path, "variant": variant, "quality": quality,
                        "reasons": reasons, "liveness": a.liveness.score,
                    })
                }
                Err(e) => serde_json::json!({
                    "path": path, "variant": variant, "error": e.kind().to_string(),
                }),
            };
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    Ok(())
}

fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]) * (b[3] - b[1])
}

/// The `variant` version of `image` (one of `VARIANTS`); `None` for `backlit` when the
/// original has no face.
fn synthesise(image: &FaceImage, variant: &str, face: Option<[f32; 4]>) -> Option<FaceImage> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let src = image.rgb();
    let mut rgb = Vec::with_capacity(src.len());
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    match variant {
        "original" => return Some(image.clone()),
        "gain_0.2" => rgb.extend(src.iter().map(|&v| clamp(f32::from(v) * 0.2))),
        "gamma_2.5" => rgb.extend(
            src.iter()
                .map(|&v| clamp(255.0 * (f32::from(v) / 255.0).powf(2.5))),
        ),
        "washed_out" => rgb.extend(src.iter().map(|&v| clamp(0.3 * f32::from(v) + 140.0))),
        "backlit" => {
            let [x0, y0, x1, y1] = face?;
            let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
            // an ellipse a little larger than the box (head and hair), feathered over 20 %
            let (rx, ry) = (0.7 * (x1 - x0), 0.7 * (y1 - y0));
            for y in 0..h {
                for x in 0..w {
                    let d =
                        (((x as f32 - cx) / rx).powi(2) + ((y as f32 - cy) / ry).powi(2)).sqrt();
                    let inside = ((1.2 - d) / 0.4).clamp(0.0, 1.0);
                    for c in 0..3 {
                        let v = f32::from(src[3 * (y * w + x) + c]);
                        let dark = 0.3 * v;
                        let bright = 255.0 - 0.4 * (255.0 - v);
                        rgb.push(clamp(inside * dark + (1.0 - inside) * bright));
                    }
                }
            }
        }
        _ => return None,
    }
    FaceImage::from_rgb(w as u32, h as u32, rgb).ok()
}
