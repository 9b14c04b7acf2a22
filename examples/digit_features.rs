//! Writes the speech-embedding features of spoken digits, one CSV line per recording, for
//! training and evaluating the digit head (`scripts/train_digit_head.py`): each
//! `{digit}_{speaker}_{take}.wav` of a folder (any sample rate; resampled to 16 kHz by the
//! engine's decoder) trimmed to its speech by the VAD (not with `--whole`), padded with silence to one window,
//! (with `--pad S`, S seconds of silence added on each side first, so that several windows
//! slide across the word), embedded, and pooled (mean then max of the windows: 192 values).
//!
//! ```text
//! cargo run --release --example digit_features -- DIR OUT.csv
//! ```

use std::io::Write;
use std::path::PathBuf;

use vouch::eval::digits::parse_digit_name;
use vouch::voice::speech_embedding::word_features;
use vouch::voice::vad::{VadConfig, speech_span};
use vouch::voice::{Audio, AudioLimits};
use vouch::{Config, Engine};

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(out)) = (args.first(), args.get(1)) else {
        return Err("usage: digit_features DIR OUT.csv [--pad SECONDS] [--whole]".into());
    };
    let mut pad = 0f32;
    let mut whole = false;
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        match flag.as_str() {
            "--pad" => pad = rest.next().ok_or("--pad needs seconds")?.parse()?,
            "--whole" => whole = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let engine = Engine::new(Config::from_env()?.validate()?)?;
    let embedder = engine.speech_embedder()?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    files.sort();
    let limits = AudioLimits {
        min_seconds: 0.05,
        ..AudioLimits::default()
    };
    let vad = VadConfig::default();
    let mut csv = std::io::BufWriter::new(std::fs::File::create(out)?);
    let (mut written, mut skipped) = (0usize, 0usize);
    for path in &files {
        let Some((digit, speaker, take)) = parse_digit_name(path) else {
            skipped += 1;
            continue;
        };
        let audio = match Audio::open(path, &limits) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{}: {e}; left out", path.display());
                skipped += 1;
                continue;
            }
        };
        let speech = if whole {
            audio.samples()
        } else {
            speech_span(audio.samples(), &vad)
        };
        let features = word_features(embedder, speech, (pad * 16_000.0) as usize)?;
        write!(csv, "{digit},{speaker},{take}")?;
        for v in features {
            write!(csv, ",{v}")?;
        }
        writeln!(csv)?;
        written += 1;
    }
    csv.flush()?;
    eprintln!("{written} recordings written to {out}, {skipped} left out");
    Ok(())
}
