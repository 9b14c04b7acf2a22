//! Builds an evaluation set of active-liveness challenge sessions from the shared development
//! data, for `vouch eval liveness --sessions DIR`. Every session is synthetic — assembled from
//! real still images or rendered from real photos — and its `session.toml` says so
//! (`synthetic = true`, `source = …`). No payment-terminal recordings of random challenges
//! exist here (see DATA.md).
//!
//! - `bona_fide`: CMU pose images (each person's own straight, left, right and up photos,
//!   upscaled to 512×480), a few straight frames, then each movement held for several frames
//!   and back, at 10.5–15 fps with jittered timestamps and a pixel or two of camera shake.
//! - `bona_fide` in group `video-frames`: windows of the real development videos in which the
//!   person turns their head (not prompted: the clips are people talking and making faces),
//!   every frame at 15 fps, labelled with the movements in them as a person saw them in the
//!   frames (see [`VIDEO_WINDOWS`]).
//! - `replay`: a genuine response built for one challenge, labelled with another.
//! - `planar_print`, `planar_print_bent`, `planar_screen`: a real frontal photo (CMU straight
//!   images, DeepFace photos, the live liveness samples, a frame of the d0 video) held as a
//!   sheet and turned, tilted, shifted and scaled in 3-D to follow the challenge, rendered
//!   under perspective on a plain background; bent slightly (a cylinder-ish sheet), or shown
//!   as a screen (bezel, brighter, bluer, moiré).
//! - `still`: one real frame repeated with a little sensor noise.
//!
//! Photos are used only when the detector finds a face in them (the engine's detector, from
//! `VOUCH_MODEL_DIR` / `VOUCH_ORT_LIB`): a source without a face would make a refusal trivial.
//! Nothing here reads movements or the rule's verdicts.
//!
//! ```text
//! cargo run --release --features eval --example make_challenge_sessions -- \
//!     [--shared /work/shared] [--out /var/tmp/challenge-sessions] [--seed 17]
//! ```

use std::path::{Path, PathBuf};

use vouch::eval::synth::{
    PlanePose, as_screen, background, frame_times, jitter, posed_frames, read_pgm, render_sheet,
    response_schedule, sheet_schedule, unit, write_session,
};
use vouch::face::FaceImage;
use vouch::face::motion::HeadMovement::{self, Left, Right, Up};
use vouch::stats::SplitMix64;
use vouch::{Config, Engine};

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The challenges genuine CMU sessions answer (the poses have no `down`).
const CHALLENGES: [&[HeadMovement]; 8] = [
    &[Left, Right],
    &[Right, Left],
    &[Left, Up],
    &[Up, Right],
    &[Left, Right, Left],
    &[Right, Up, Left],
    &[Up, Left, Right],
    &[Right, Left, Up, Left],
];

/// Windows of the development videos (clip, start and end in seconds) and the head movements
/// in them, in the customer's own directions, as labelled by eye from the frames. The
/// labeller had seen the engine's reading of the whole clips first (`vouch face challenge
/// verify --trajectory`), so these labels are not independent of it; each window starts
/// facing the camera and was kept only where the direction of every turn was clear in the
/// frames. Windows overlap: they are not independent samples either.
const VIDEO_WINDOWS: [(&str, f64, f64, &[HeadMovement]); 6] = [
    ("d12", 0.0, 5.0, &[Left, Right]),
    ("d12", 2.4, 7.3, &[Right, Left]),
    ("d3", 0.0, 3.0, &[Right, Left]),
    ("d3", 5.0, 10.0, &[Right, Left]),
    ("d3", 0.0, 10.0, &[Right, Left, Right, Left]),
    ("d11", 3.5, 9.0, &[Left, Right, Left]),
];

fn main() -> Res<()> {
    let mut shared =
        std::env::var_os("VOUCH_SHARED").map_or(PathBuf::from("/work/shared"), PathBuf::from);
    let mut out = PathBuf::from("/var/tmp/challenge-sessions");
    let mut seed = 17u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--shared" => shared = value()?.into(),
            "--out" => out = value()?.into(),
            "--seed" => seed = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let data = shared.join("data");
    let engine = Engine::new(Config::from_env()?.validate()?)?;
    let has_face = |img: &FaceImage| engine.face().detect(img).is_ok_and(|f| !f.is_empty());
    let mut rng = SplitMix64::new(seed);
    if out.exists() {
        return Err(format!(
            "{} exists; remove it or choose another --out",
            out.display()
        )
        .into());
    }
    let mut written = 0usize;

    // CMU people: straight, left, right, up (eyes open; the first expression detected).
    let cmu = data.join("liveness-motion/cmu-poses");
    let mut people: Vec<String> = std::fs::read_dir(&cmu)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    people.sort();
    let mut straights = Vec::new();
    for person in &people {
        let pick = |pose: &str| -> Option<FaceImage> {
            ["neutral", "happy", "sad", "angry"]
                .iter()
                .find_map(|expr| {
                    let path = cmu
                        .join(person)
                        .join(format!("{person}_{pose}_{expr}_open.pgm"));
                    let img = read_pgm(&std::fs::read(path).ok()?)
                        .ok()?
                        .resized(512, 480)
                        .ok()?;
                    has_face(&img).then_some(img)
                })
        };
        let (Some(s), Some(l), Some(r)) = (pick("straight"), pick("left"), pick("right")) else {
            eprintln!("{person}: no detected straight, left and right photos; left out");
            continue;
        };
        let up = pick("up");
        straights.push((format!("cmu-{person}"), s.clone()));
        for (k, asked) in CHALLENGES.iter().enumerate() {
            if asked.contains(&Up) && up.is_none() {
                continue;
            }
            let (frames, times) =
                genuine(&[&s, &l, &r, up.as_ref().unwrap_or(&s)], asked, &mut rng)?;
            let source = format!(
                "assembled from the CMU pose images of {person} (straight, left, right, up; one photo per pose, repeated with jitter), not a recording"
            );
            write_session(
                &out.join(format!("bona_fide-cmu-{person}-{k}")),
                "bona_fide",
                Some("cmu-poses"),
                asked,
                &times,
                &source,
                &frames,
            )?;
            written += 1;
            // Every fourth: the same frames sent for another challenge.
            if k % 4 == 1 {
                let other = CHALLENGES[(k + 3) % CHALLENGES.len()];
                let source = format!(
                    "a genuine assembled response of {person} to {}, sent for another challenge",
                    HeadMovement::joined(asked, ",")
                );
                write_session(
                    &out.join(format!("replay-cmu-{person}-{k}")),
                    "replay",
                    None,
                    other,
                    &times,
                    &source,
                    &frames,
                )?;
                written += 1;
            }
        }
    }

    // Real head turns: windows of the videos, every frame.
    for (clip, start, end, asked) in VIDEO_WINDOWS {
        let video = data.join(format!("liveness-motion/videos/{clip}.mp4"));
        let Some(frames) = video_frames(&video, start, end, 15.0)? else {
            continue;
        };
        let times: Vec<f64> = (0..frames.len()).map(|i| i as f64 / 15.0).collect();
        let source = format!(
            "frames of the real video {clip}.mp4 from {start:.1} s to {end:.1} s at 15 fps (unprompted head turns), labelled by eye: {}",
            HeadMovement::joined(asked, ",")
        );
        write_session(
            &out.join(format!("bona_fide-video-{clip}-{start:.1}-{end:.1}")),
            "bona_fide",
            Some("video-frames"),
            asked,
            &times,
            &source,
            &frames,
        )?;
        written += 1;
    }

    // Frontal photos for the attacks.
    let mut photos: Vec<(String, FaceImage)> = straights;
    let mut deepface: Vec<PathBuf> = std::fs::read_dir(data.join("faces-deepface"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .filter(|p| {
            !p.to_string_lossy().contains("couple") && !p.to_string_lossy().contains("many")
        })
        .collect();
    deepface.sort();
    for path in deepface.iter().take(24) {
        let img = FaceImage::open(path, &engine.config().limits)?;
        let img = fit(&img, 420)?;
        if engine.face().detect(&img).is_ok_and(|f| f.len() == 1) {
            photos.push((format!("deepface-{}", stem(path)), img));
        }
        if photos.len() >= 10 + 14 {
            break;
        }
    }
    for name in ["image_T1.jpg", "image_T2.jpg"] {
        let path = data.join("liveness-samples").join(name);
        let img = fit(&FaceImage::open(&path, &engine.config().limits)?, 420)?;
        if has_face(&img) {
            photos.push((format!("sample-{}", stem(&path)), img));
        }
    }
    if let Some(frame) = video_frame(&data.join("liveness-motion/videos/d0.mp4"), 1.0)? {
        let img = fit(&frame, 420)?;
        if has_face(&img) {
            photos.push(("video-d0".into(), img));
        }
    }
    eprintln!("{} photos for planar attacks", photos.len());

    for (name, photo) in &photos {
        for (species, k) in [
            ("planar_print", 0),
            ("planar_print_bent", 1),
            ("planar_screen", 2),
            ("planar_print", 3),
        ] {
            let asked = CHALLENGES[(rng.below(CHALLENGES.len() as u64)) as usize];
            let sheet = if species == "planar_screen" {
                as_screen(photo, &mut rng)?
            } else {
                photo.clone()
            };
            let base = PlanePose {
                scale: 0.55 + 0.35 * unit(&mut rng),
                bend: if species == "planar_print_bent" {
                    0.03 + 0.07 * unit(&mut rng)
                } else {
                    0.0
                },
                shift: [40.0 * (unit(&mut rng) - 0.5), 30.0 * (unit(&mut rng) - 0.5)],
                ..PlanePose::default()
            };
            let yaw = 0.45 + 0.4 * unit(&mut rng);
            let pitch = 0.3 + 0.25 * unit(&mut rng);
            let drift = 10.0 + 40.0 * unit(&mut rng);
            let counts = (
                6 + rng.below(5) as usize,
                3 + rng.below(3) as usize,
                3 + rng.below(4) as usize,
            );
            let poses = sheet_schedule(asked, base, yaw, pitch, drift, counts);
            let bg = background(640, 480, &mut rng)?;
            let focal = 1.0 + 0.5 * unit(&mut rng);
            let frames = poses
                .iter()
                .map(|p| {
                    // A hand is not still: a little shake on every frame.
                    let shaken = PlanePose {
                        yaw: p.yaw + 0.03 * (unit(&mut rng) - 0.5),
                        pitch: p.pitch + 0.03 * (unit(&mut rng) - 0.5),
                        shift: [
                            p.shift[0] + 3.0 * (unit(&mut rng) - 0.5),
                            p.shift[1] + 3.0 * (unit(&mut rng) - 0.5),
                        ],
                        ..*p
                    };
                    render_sheet(&sheet, &shaken, &bg, focal)
                })
                .collect::<vouch::Result<Vec<_>>>()?;
            let fps = 10.5 + 4.5 * f64::from(unit(&mut rng));
            let times = frame_times(frames.len(), fps, 0.1, &mut rng);
            let source = format!(
                "rendered: the real photo {name} as a {} turned/tilted up to {:.0}°/{:.0}°, shifted, scale {:.2}, bend {:.2}, under perspective (focal {:.2} frame widths), to mimic {}",
                if species == "planar_screen" {
                    "screen"
                } else {
                    "print"
                },
                yaw.to_degrees(),
                pitch.to_degrees(),
                base.scale,
                base.bend,
                focal,
                HeadMovement::joined(asked, ",")
            );
            write_session(
                &out.join(format!("{species}-{name}-{k}")),
                species,
                None,
                asked,
                &times,
                &source,
                &frames,
            )?;
            written += 1;
        }
        // A still face: the photo itself as the camera frame, repeated with noise.
        let still = fit(photo, 480)?;
        let n = 30 + rng.below(16) as usize;
        let frames = (0..n)
            .map(|_| jitter(&still, rng.below(2) as i32, 0, 1.0, 2.0, &mut rng))
            .collect::<vouch::Result<Vec<_>>>()?;
        let times = frame_times(n, 12.0 + 3.0 * f64::from(unit(&mut rng)), 0.1, &mut rng);
        let asked = CHALLENGES[(rng.below(CHALLENGES.len() as u64)) as usize];
        let source = format!("one real frame ({name}) repeated with sensor noise");
        write_session(
            &out.join(format!("still-{name}")),
            "still",
            None,
            asked,
            &times,
            &source,
            &frames,
        )?;
        written += 1;
    }
    eprintln!("{written} sessions written to {}", out.display());
    Ok(())
}

/// A genuine response from pose photos `[straight, left, right, up]`, with jittered frames
/// and timestamps.
fn genuine(
    poses: &[&FaceImage; 4],
    asked: &[HeadMovement],
    rng: &mut SplitMix64,
) -> Res<(Vec<FaceImage>, Vec<f64>)> {
    let schedule = response_schedule(asked, (6, 10), (5, 8), (5, 8), rng);
    let frames = posed_frames(*poses, &schedule, 2, (0.97, 0.06), rng)?;
    let fps = 10.5 + 4.5 * f64::from(unit(rng));
    let times = frame_times(frames.len(), fps, 0.1, rng);
    Ok((frames, times))
}

/// `img` resized so that its longer side is `side` pixels.
fn fit(img: &FaceImage, side: u32) -> vouch::Result<FaceImage> {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let k = side as f32 / w.max(h);
    img.resized(
        ((w * k).round() as u32).max(1),
        ((h * k).round() as u32).max(1),
    )
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The frames of `video` from `start` to `end` seconds at `fps`, through ffmpeg (`None` when
/// ffmpeg or the video is absent).
fn video_frames(video: &Path, start: f64, end: f64, fps: f64) -> Res<Option<Vec<FaceImage>>> {
    if !video.is_file() {
        return Ok(None);
    }
    let tmp = std::env::temp_dir().join(format!("vouch-window-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let ran = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-ss", &format!("{start}"), "-to"])
        .arg(format!("{end}"))
        .arg("-i")
        .arg(video)
        .args(["-vf", &format!("fps={fps}")])
        .arg(tmp.join("frame_%04d.png"))
        .status();
    let frames = match ran {
        Ok(s) if s.success() => {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(&tmp)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            paths.sort();
            let limits = vouch::face::image::LimitsConfig::default();
            Some(
                paths
                    .iter()
                    .map(|p| FaceImage::open(p, &limits))
                    .collect::<vouch::Result<Vec<_>>>()?,
            )
        }
        _ => {
            eprintln!(
                "ffmpeg could not extract frames of {}; left out",
                video.display()
            );
            None
        }
    };
    std::fs::remove_dir_all(&tmp)?;
    Ok(frames)
}

/// The frame of `video` at `at` seconds, through ffmpeg (`None` when ffmpeg or the video is
/// absent).
fn video_frame(video: &Path, at: f64) -> Res<Option<FaceImage>> {
    if !video.is_file() {
        return Ok(None);
    }
    let tmp = std::env::temp_dir().join(format!("vouch-frame-{}.png", std::process::id()));
    let ran = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-ss", &format!("{at}"), "-i"])
        .arg(video)
        .args(["-frames:v", "1"])
        .arg(&tmp)
        .status();
    match ran {
        Ok(s) if s.success() => {
            let img = FaceImage::open(&tmp, &vouch::face::image::LimitsConfig::default())?;
            let _ = std::fs::remove_file(&tmp);
            Ok(Some(img))
        }
        _ => {
            eprintln!(
                "ffmpeg could not extract a frame of {}; left out",
                video.display()
            );
            Ok(None)
        }
    }
}
