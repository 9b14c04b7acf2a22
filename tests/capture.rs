//! Capture driven by the file-backed sources on real data: frame selection on photos, audio
//! endpointing on spoken digits and LibriSpeech. Sources run unpaced, so nothing here waits
//! on the clock.

use std::time::Duration;

use vouch::ErrorKind;
use vouch::capture::{
    AudioFileSource, AudioSource, Ending, FrameEncoding, ImageFolderSource, SelectConfig,
    ToMono16k, capture_utterance, encode_image, select_frames, wav_pcm16,
};
use vouch::config::LimitsConfig;
use vouch::decision::{presentation_retake, quality_failures};
use vouch::face::FaceImage;
use vouch::voice::{AudioLimits, SAMPLE_RATE};

use crate::util;

/// Copies `names` from `shared/data/faces-deepface` into a new folder, or `None` (skip).
fn deepface_folder(names: &[&str]) -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        let path = util::data_file(&format!("faces-deepface/{name}"))?;
        std::fs::copy(&path, dir.path().join(name)).unwrap();
    }
    Some(dir)
}

/// A small, varied set of the deepface photos (all under 1000 px, so full-resolution
/// detection stays quick).
const PHOTOS: [&str; 8] = [
    "img10.jpg",
    "img11.jpg",
    "img12.jpg",
    "img14.jpg",
    "img21.jpg",
    "img25.jpg",
    "img29.jpg",
    "img46.jpg",
];

/// A folder of unrelated photos: every photo is judged (no early stop), the sharpest usable
/// ones are kept best first, and their re-encoded bytes still pass the engine's quality gate.
#[test]
fn frame_selection_picks_the_sharpest_usable_photos() {
    let Some(engine) = util::engine() else { return };
    let Some(dir) = deepface_folder(&PHOTOS) else {
        return;
    };
    let mut source = ImageFolderSource::folder(dir.path(), 30.0, &LimitsConfig::default())
        .unwrap()
        .paced(false);
    let config = SelectConfig {
        run_length: 1,
        best: 3,
        stop_when_ready: false,
        ..SelectConfig::default()
    };
    let mut updates = Vec::new();
    let selection = select_frames(engine, &mut source, &config, &mut |p| updates.push(*p)).unwrap();
    eprintln!("tally: {:?}", selection.tally);
    assert_eq!(selection.tally.frames, PHOTOS.len() as u64);
    assert_eq!(updates.len(), PHOTOS.len());
    assert_eq!(updates.last().unwrap().usable, selection.tally.usable);
    assert!(selection.tally.usable >= 3, "{:?}", selection.tally);
    assert_eq!(selection.best.len(), 3);
    let sharpness: Vec<f32> = selection.best.iter().map(|f| f.quality.sharpness).collect();
    assert!(sharpness.windows(2).all(|w| w[0] >= w[1]), "{sharpness:?}");
    for (frame, bytes) in selection
        .best
        .iter()
        .zip(selection.encode_best(FrameEncoding::default()).unwrap())
    {
        let limits = &engine.config().quality;
        assert!(quality_failures(&frame.quality, limits).is_empty());
        let report = engine.face_quality(&bytes).unwrap();
        let failures = quality_failures(&report, limits);
        assert!(failures.is_empty(), "{failures:?}");
    }
}

/// A corrupt file among the frames is counted as undecodable and selection goes on to the
/// good ones after it (the source moves past a bad file; so does selection).
#[test]
fn a_corrupt_frame_is_counted_and_selection_goes_on() {
    let Some(engine) = util::engine() else { return };
    let Some(dir) = deepface_folder(&PHOTOS[..2]) else {
        return;
    };
    // Sorted between the two photos: img10, img10b (corrupt), img11.
    let good = std::fs::read(dir.path().join(PHOTOS[0])).unwrap();
    std::fs::write(dir.path().join("img10b.jpg"), &good[..good.len() / 4]).unwrap();
    let mut source = ImageFolderSource::folder(dir.path(), 30.0, &LimitsConfig::default())
        .unwrap()
        .paced(false);
    let config = SelectConfig {
        run_length: 1,
        best: 2,
        stop_when_ready: false,
        ..SelectConfig::default()
    };
    let selection = select_frames(engine, &mut source, &config, &mut |_| {}).unwrap();
    assert_eq!(selection.tally.frames, 3, "{:?}", selection.tally);
    assert_eq!(selection.tally.undecodable, 1);
    assert_eq!(selection.tally.usable, 2, "{:?}", selection.tally);
    assert!(selection.tally.to_string().contains("undecodable in 1"));
}

/// A still presentation: one live frame (`liveness-samples/image_T1.jpg`) shifted by a pixel
/// or two per frame, written as a numbered sequence. Selection stops at the first run of 5,
/// and the run's bytes are accepted by the engine's multi-frame liveness as one presentation.
#[test]
fn a_still_presentation_gives_a_run_that_liveness_accepts() {
    let Some(engine) = util::engine() else { return };
    let Some(photo) = util::data_file("liveness-samples/image_T1.jpg") else {
        return;
    };
    let image = FaceImage::open(&photo, &LimitsConfig::default()).unwrap();
    let (w, h) = (image.width() - 8, image.height() - 8);
    let dir = tempfile::tempdir().unwrap();
    for i in 0..8u32 {
        let crop = crop(&image, i, i / 2, w, h);
        let bytes = encode_image(&crop, FrameEncoding::default()).unwrap();
        std::fs::write(dir.path().join(format!("frame_{i:04}.jpg")), &*bytes).unwrap();
    }
    let mut source = ImageFolderSource::sequence(
        &dir.path().join("frame_%04d.jpg"),
        30.0,
        &LimitsConfig::default(),
    )
    .unwrap()
    .paced(false);
    let selection =
        select_frames(engine, &mut source, &SelectConfig::default(), &mut |_| {}).unwrap();
    let indices: Vec<u64> = selection.run.iter().map(|f| f.frame.index).collect();
    // Which frames the quality gate takes, one by one: this face is turned near the 40° yaw
    // limit, and a pixel's shift moves its landmarks enough to refuse a frame or two.
    let usable: Vec<bool> = (0..8u32)
        .map(|i| {
            let frame = crop(&image, i, i / 2, w, h);
            let presentation = engine.observe(std::slice::from_ref(&frame)).unwrap();
            vouch::decision::quality_failures(
                &presentation.faces()[0].quality,
                &engine.config().quality,
            )
            .is_empty()
        })
        .collect();
    let first_run = (0..=3)
        .find(|&start| usable[start..start + 5].iter().all(|&u| u))
        .expect("a run of five usable frames");
    let expected: Vec<u64> = (first_run as u64..first_run as u64 + 5).collect();
    assert_eq!(
        indices, expected,
        "the first run of five usable frames ({usable:?})"
    );
    assert_eq!(
        selection.tally.frames,
        first_run as u64 + 5,
        "stops as soon as the run is complete"
    );
    assert_eq!(selection.best.len(), 3);
    let frames = selection.encode_run(FrameEncoding::default()).unwrap();
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    let assessment = engine.assess_liveness(&refs).unwrap();
    eprintln!(
        "liveness score over the run: {:.3}",
        assessment.liveness.score
    );
    let config = engine.config();
    let retake = presentation_retake(
        &assessment.faces,
        &config.quality,
        config.decisions.other_face_share,
    );
    assert!(retake.is_empty(), "{retake:?}");
}

fn crop(image: &FaceImage, x: u32, y: u32, w: u32, h: u32) -> FaceImage {
    image.cropped(x, y, w, h).unwrap()
}

/// Images without a usable face (flat, gradient, noise, and a real face in near darkness)
/// are refused with the reasons counted.
#[test]
fn frame_selection_refuses_images_without_a_usable_face() {
    let Some(engine) = util::engine() else { return };
    let Some(photo) = util::data_file("liveness-samples/image_T1.jpg") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, image: &FaceImage| {
        let bytes = encode_image(image, FrameEncoding::Png).unwrap();
        std::fs::write(dir.path().join(name), &*bytes).unwrap();
    };
    let (w, h) = (640u32, 480u32);
    let make = |f: &dyn Fn(u32, u32) -> u8| {
        let rgb = (0..w * h)
            .flat_map(|i| {
                let v = f(i % w, i / w);
                [v, v, v / 2]
            })
            .collect();
        FaceImage::from_rgb(w, h, rgb).unwrap()
    };
    write("a_flat.png", &make(&|_, _| 128));
    write("b_gradient.png", &make(&|x, y| ((x + y) / 5) as u8));
    write(
        "c_noise.png",
        &make(&|x, y| ((x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7) as u8),
    );
    let face = FaceImage::open(&photo, &LimitsConfig::default()).unwrap();
    let dark: Vec<u8> = face.rgb().iter().map(|&v| v / 8).collect();
    let dark = FaceImage::from_rgb(face.width(), face.height(), dark).unwrap();
    write("d_dark_face.png", &dark);
    write("e_dark_face.png", &dark);
    let mut source = ImageFolderSource::folder(dir.path(), 30.0, &LimitsConfig::default())
        .unwrap()
        .paced(false);
    let e = select_frames(engine, &mut source, &SelectConfig::default(), &mut |_| {}).unwrap_err();
    eprintln!("{e}");
    assert_eq!(e.kind(), ErrorKind::NoUsableCapture);
    assert!(
        e.message().starts_with("no usable frame in 5 frames"),
        "{e}"
    );
    assert!(e.message().contains("no face in 3"), "{e}");
    assert!(e.message().contains("too dark in 2"), "{e}");
}

/// Takes of FSDD digits at their own 8 kHz, `gap` s of silence between them, `lead` s before
/// and `tail` s after.
fn fsdd_phrase_8k(speaker: &str, digits: &str, lead: f32, gap: f32, tail: f32) -> Option<Vec<f32>> {
    let silence = |s: f32| vec![0.0f32; (s * 8_000.0) as usize];
    let mut phrase = silence(lead);
    for (i, d) in digits.chars().enumerate() {
        let path = util::data_file(&format!("fsdd/recordings/{d}_{speaker}_{}.wav", i % 5))?;
        let bytes = std::fs::read(path).unwrap();
        let (rate, samples) =
            vouch::voice::audio::decode_native(&bytes, &AudioLimits::default()).unwrap();
        assert_eq!(rate, 8_000);
        if i > 0 {
            phrase.extend(silence(gap));
        }
        phrase.extend(samples);
    }
    phrase.extend(silence(tail));
    Some(phrase)
}

/// A six-digit FSDD phrase written to an 8 kHz WAV and streamed as a stereo device in 10 ms
/// chunks: endpointing stops on the trailing silence, keeps the whole phrase (one VAD token
/// per digit, the phrase's duration plus pre- and post-roll), and the digits are recognised
/// from the captured audio by the digit head.
#[test]
fn an_fsdd_phrase_streamed_at_8_khz_is_endpointed_whole() {
    let digits = "491702";
    let Some(phrase) = fsdd_phrase_8k("theo", digits, 1.0, 0.3, 2.0) else {
        return;
    };
    let spoken = phrase.len() as f32 / 8_000.0 - 3.0;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phrase.wav");
    std::fs::write(&path, &*wav_pcm16(&phrase, 8_000)).unwrap();
    let mut source = AudioFileSource::open(&path, &AudioLimits::default())
        .unwrap()
        .channels(2)
        .paced(false);
    assert_eq!(source.info().sample_rate, 8_000);
    let utterance = capture_utterance(&mut source, &Default::default()).unwrap();
    eprintln!("{:?} {:?}", utterance.stats, utterance.warnings);
    assert_eq!(utterance.ending, Ending::TrailingSilence);
    assert!(utterance.warnings.is_empty(), "{:?}", utterance.warnings);
    assert_eq!(utterance.stats.speech_segments, digits.len());
    assert_eq!(
        (utterance.stats.device_rate, utterance.stats.device_channels),
        (8_000, 2)
    );
    // The takes' own edges are quiet, so the VAD may start a little inside the first take and
    // end a little inside the last; pre- and post-roll (0.5 s) cover that.
    let seconds = utterance.stats.seconds;
    assert!(
        (spoken - 0.1..=spoken + 0.5 + 0.05).contains(&seconds),
        "{seconds} s for {spoken} s of phrase"
    );
    // Stopped by the trailing silence, before the end of the file.
    assert!(utterance.stats.listened_seconds < phrase.len() as f32 / 8_000.0 - 0.5);

    // What the authenticator would receive decodes to the same audio.
    let wav = utterance.wav();
    let decoded = vouch::voice::Audio::decode(&wav, &AudioLimits::default()).unwrap();
    assert_eq!(decoded.samples().len(), utterance.audio.samples().len());

    let engine = util::engine().unwrap();
    let spoken = vouch::voice::digits::SpokenDigits::new(
        engine.speech_embedder().unwrap(),
        engine.digit_head().unwrap(),
    );
    let words = spoken.words(&utterance.audio).unwrap();
    let heard: String = words
        .iter()
        .map(|w| {
            let digit = engine
                .digit_head()
                .unwrap()
                .recognise(&w.features)
                .unwrap()
                .0;
            char::from(b'0' + digit)
        })
        .collect();
    assert_eq!(heard, digits);
}

/// A LibriSpeech FLAC (already 16 kHz), streamed as a stereo device, comes out of the
/// conversion with the same length and samples: nothing is resampled.
#[test]
fn librispeech_at_16_khz_passes_the_conversion_unchanged() {
    let Some(path) = util::data_file("librispeech/test-other/1688/1688-142285-0000.flac") else {
        return;
    };
    let limits = AudioLimits {
        max_seconds: 60.0,
        ..AudioLimits::default()
    };
    let bytes = std::fs::read(&path).unwrap();
    let (rate, original) = vouch::voice::audio::decode_native(&bytes, &limits).unwrap();
    assert_eq!(rate, SAMPLE_RATE);
    let mut source = AudioFileSource::open(&path, &limits)
        .unwrap()
        .chunk_frames(441)
        .channels(2)
        .paced(false);
    assert_eq!(source.frames(), original.len());
    let mut converter = ToMono16k::new(rate, 2).unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = source.next_chunk(Duration::ZERO).unwrap() {
        out.extend(converter.push(&chunk).unwrap());
    }
    out.extend(converter.finish());
    assert_eq!(out.len(), original.len());
    assert!(out == original, "samples changed");
}

/// Silence only (digital zeros, then faint noise past the timeout): no utterance.
#[test]
fn silence_alone_is_no_usable_capture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silence.wav");
    std::fs::write(&path, &*wav_pcm16(&vec![0.0; 8_000 * 3], 8_000)).unwrap();
    let mut source = AudioFileSource::open(&path, &AudioLimits::default())
        .unwrap()
        .paced(false);
    let e = capture_utterance(&mut source, &Default::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoUsableCapture);
    assert!(e.message().contains("no speech"), "{e}");
    let hiss: Vec<f32> = (0..8_000 * 8)
        .map(|i| if (i * 7919) % 13 < 6 { 0.0005 } else { -0.0005 })
        .collect();
    let mut source = AudioFileSource::from_samples("hiss", 8_000, hiss)
        .unwrap()
        .paced(false);
    let e = capture_utterance(&mut source, &Default::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoUsableCapture);
    assert!(e.message().contains("no speech in 5.0 s"), "{e}");
}
