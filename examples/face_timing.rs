//! Times vouch's face pipeline per stage, for `scripts/compare_face.py` (which runs the Python
//! reference pipeline of `fixtures/gen/face_golden.py` on the same photos, alternating with
//! this program, and prints the ratios).
//!
//! Loads the engine once with one intra-op thread per ONNX Runtime session (whatever
//! `VOUCH_INTRA_THREADS` says, so both sides run single-threaded), then reads photo paths from
//! standard input, one a line, and answers each with one JSON line on standard output: the
//! median milliseconds of `REPEATS` runs (default 10) of each stage (decode, detect, align,
//! embed, and end to end from bytes to embedding), and the number of faces found. Prints
//! `{"ready": …}` first. No pixels or embeddings are printed.

use std::io::{BufRead, Write};
use std::time::Instant;

use vouch::face::{FaceImage, align};
use vouch::{Config, Engine};

fn median_ms<T>(repeats: usize, mut f: impl FnMut() -> T) -> f64 {
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let repeats: usize = std::env::var("REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(10);
    let mut config = Config::from_env()?;
    config.runtime.intra_threads = 1;
    // The reference (fixtures/gen/face_golden.py) embeds with the shipped float model.
    config.face.embedder = "mobilefacenet".to_string();
    let engine = Engine::new(config.validate()?)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::json!({
            "ready": true,
            "intra_op_threads": engine.config().runtime.intra_threads,
            "detect_max_side": engine.config().face.detect_max_side,
            "detector": engine.face().detector().spec().id(),
            "embedder": engine.face().embedder().spec().id(),
        })
    )?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let path = line?;
        let bytes = std::fs::read(&path)?;
        let limits = &engine.config().limits;
        let image = FaceImage::decode(&bytes, limits)?;
        let faces = engine.face().detect(&image)?;
        let Some(face) = vouch::face::detect::largest(&faces).copied() else {
            writeln!(out, "{}", serde_json::json!({"path": path, "faces": 0}))?;
            out.flush()?;
            continue;
        };
        let aligned = align(&image, &face.landmarks)?;
        // One untimed pass warms each stage's session and caches.
        engine.face_sample(&bytes)?;
        let decode = median_ms(repeats, || FaceImage::decode(&bytes, limits));
        let detect = median_ms(repeats, || engine.face().detect(&image));
        let align_ms = median_ms(repeats, || align(&image, &face.landmarks));
        let embed = median_ms(repeats, || engine.face().embedder().embed(&aligned));
        let end_to_end = median_ms(repeats, || engine.face_sample(&bytes));
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "path": path,
                "width": image.width(),
                "height": image.height(),
                "faces": faces.len(),
                "ms": {
                    "decode": decode,
                    "detect": detect,
                    "align": align_ms,
                    "embed": embed,
                    "end_to_end": end_to_end,
                },
            })
        )?;
        out.flush()?;
    }
    Ok(())
}
