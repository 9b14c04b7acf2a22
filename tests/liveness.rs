//! Passive liveness on real frames: the four sample verdicts, box robustness, multi-frame
//! fusion, and bad input.

use vouch::ErrorKind;
use vouch::decision::{is_live, presentation_retake, quality_failures};
use vouch::face::{FaceBox, FaceImage};

use crate::util;

fn sample(name: &str) -> Option<Vec<u8>> {
    util::data_file(&format!("liveness-samples/{name}")).map(|p| std::fs::read(p).unwrap())
}

#[test]
fn the_four_sample_frames_get_the_right_verdict() {
    let Some(engine) = util::engine() else { return };
    for (name, live) in [
        ("image_T1.jpg", true),
        ("image_T2.jpg", true),
        ("image_F1.jpg", false),
        ("image_F2.jpg", false),
    ] {
        let Some(bytes) = sample(name) else { return };
        let result = engine.assess_liveness(&[&bytes]).unwrap();
        let config = engine.config();
        let score = result.liveness.score;
        assert_eq!(
            is_live(score, config.decisions.liveness_threshold),
            live,
            "{name}: score {score}"
        );
        assert_eq!(result.liveness.per_model.len(), 2);
        assert_eq!(result.liveness.per_frame.len(), 1);
        let retake = presentation_retake(
            &result.faces,
            &config.quality,
            config.decisions.other_face_share,
        );
        assert!(retake.is_empty(), "{name}: {retake:?}");
    }
}

/// Moves and rescales the detected box by up to ±10 % and counts verdict flips under each
/// jitter mode. The models are known to be box-sensitive; with the default mode the clear
/// cases (T1 live, F2 screen replay) must not flip and few verdicts may; the flip rates of
/// every mode are printed for the record.
#[test]
fn small_box_changes_rarely_flip_the_verdict() {
    use vouch::face::{Jitter, Liveness};
    let Some(engine) = util::engine() else { return };
    let config = engine.config();
    let modes = [Jitter::Off, Jitter::NearThreshold, Jitter::Always];
    let ensembles: Vec<Liveness> = modes
        .iter()
        .map(|&jitter| {
            let mut c = config.liveness.clone();
            c.jitter = jitter;
            Liveness::new(engine.runtime(), engine.manifest(), &config.models.dir, &c).unwrap()
        })
        .collect();
    let default_mode = modes
        .iter()
        .position(|m| *m == config.liveness.jitter)
        .unwrap();
    let threshold = config.decisions.liveness_threshold;
    let mut flips = [0usize; 3];
    let mut total = 0;
    for name in [
        "image_T1.jpg",
        "image_T2.jpg",
        "image_F1.jpg",
        "image_F2.jpg",
    ] {
        let Some(bytes) = sample(name) else { return };
        let frame = engine.decode_image(&bytes).unwrap();
        let base = engine
            .assess_liveness_images(std::slice::from_ref(&frame))
            .unwrap();
        let b = base.faces[0].face_box;
        let verdicts = |face: &FaceBox| -> Vec<bool> {
            ensembles
                .iter()
                .map(|e| {
                    is_live(
                        e.score_frame(&frame, face, threshold).unwrap().score,
                        threshold,
                    )
                })
                .collect()
        };
        let base_verdicts = verdicts(&b);
        let mut local = [0usize; 3];
        for dx in [-0.1f32, -0.05, 0.0, 0.05, 0.1] {
            for dy in [-0.1f32, 0.0, 0.1] {
                for k in [0.9f32, 1.0, 1.1] {
                    let moved = FaceBox {
                        x: b.x + dx * b.width - (k - 1.0) * b.width / 2.0,
                        y: b.y + dy * b.height - (k - 1.0) * b.height / 2.0,
                        width: b.width * k,
                        height: b.height * k,
                    };
                    total += 1;
                    for (i, v) in verdicts(&moved).into_iter().enumerate() {
                        local[i] += usize::from(v != base_verdicts[i]);
                    }
                }
            }
        }
        eprintln!(
            "{name}: flips of 45 (off, near_threshold, always): {local:?}; base score {:.3}",
            base.liveness.score
        );
        if name == "image_T1.jpg" || name == "image_F2.jpg" {
            assert_eq!(
                local[default_mode], 0,
                "{name} flipped under a ±10 % box change"
            );
        }
        for i in 0..3 {
            flips[i] += local[i];
        }
    }
    for (mode, f) in modes.iter().zip(flips) {
        eprintln!(
            "box robustness, jitter {mode:?}: {f}/{total} verdicts flipped ({:.1} %)",
            100.0 * f as f64 / total as f64
        );
    }
    assert!(
        flips[default_mode] * 4 < total,
        "more than a quarter of the verdicts flipped: {flips:?}/{total}"
    );
    assert!(
        flips[default_mode] <= flips[0],
        "the default jitter made verdicts less stable: {flips:?}"
    );
}

#[test]
fn frames_are_fused_by_their_mean() {
    let Some(engine) = util::engine() else { return };
    let Some(t1) = sample("image_T1.jpg") else {
        return;
    };
    let one = engine.assess_liveness(&[&t1]).unwrap().liveness;
    let three = engine.assess_liveness(&[&t1, &t1, &t1]).unwrap().liveness;
    assert_eq!(three.per_frame.len(), 3);
    assert!((three.score - one.score).abs() < 1e-6);
    let mean: f32 = three.per_frame.iter().map(|f| f.score).sum::<f32>() / 3.0;
    assert!((three.score - mean).abs() < 1e-6);
}

#[test]
fn bad_liveness_input_gets_typed_errors() {
    let Some(engine) = util::engine() else { return };
    let (Some(t1), Some(t2)) = (sample("image_T1.jpg"), sample("image_T2.jpg")) else {
        return;
    };
    // zero frames, and a flood of frames refused before any is decoded
    assert_eq!(
        engine.assess_liveness(&[]).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let flood: Vec<&[u8]> = vec![&t1; 10_000];
    let err = engine.assess_liveness(&flood).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("max_frames"), "{err}");
    // frames of different sizes
    let err = engine.assess_liveness(&[&t1, &t2]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("frame 2"), "{err}");
    // boxes: outside the frame, zero area, wrong count
    let frame = engine.decode_image(&t1).unwrap();
    let frames = std::slice::from_ref(&frame);
    let outside = FaceBox {
        x: 5000.0,
        y: 5000.0,
        width: 50.0,
        height: 50.0,
    };
    let empty = FaceBox {
        x: 10.0,
        y: 10.0,
        width: 0.0,
        height: 30.0,
    };
    let liveness = engine.liveness();
    for bad in [outside, empty] {
        let err = liveness.assess_boxes(frames, &[bad], 0.5).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    let err = liveness.assess_boxes(frames, &[], 0.5).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // the face jumps between frames: not one presentation
    let a = FaceBox {
        x: 10.0,
        y: 10.0,
        width: 100.0,
        height: 100.0,
    };
    let b = FaceBox {
        x: 300.0,
        y: 300.0,
        width: 100.0,
        height: 100.0,
    };
    let err = liveness
        .assess_boxes(&[frame.clone(), frame.clone()], &[a, b], 0.5)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("moved"), "{err}");
}

#[test]
fn an_all_black_frame_has_no_face_or_fails_quality() {
    let Some(engine) = util::engine() else { return };
    let black = util::png(640, 480, |_, _| [0, 0, 0]);
    assert_eq!(
        engine.assess_liveness(&[&black]).unwrap_err().kind(),
        ErrorKind::NoFace
    );
    let frame = FaceImage::decode(&black, &engine.config().limits).unwrap();
    let whole = FaceBox::whole(&frame);
    let quality = vouch::face::quality::measure(&frame, &whole, None);
    assert!(!quality_failures(&quality, &engine.config().quality).is_empty());
}

#[test]
fn liveness_models_missing_from_the_manifest_fail_at_start() {
    let Ok(mut config) = util::real_config() else {
        return util::skip("no models or runtime");
    };
    config.liveness.models = vec!["minifasnet_v2".into(), "minifasnet_v3".into()];
    let err = config.validate().and_then(vouch::Engine::new).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Manifest);
    assert!(err.to_string().contains("minifasnet_v3"), "{err}");
}

#[derive(serde::Deserialize)]
struct AntispoofGolden {
    cases: Vec<AntispoofCase>,
}

#[derive(serde::Deserialize)]
struct AntispoofCase {
    image: String,
    width: u32,
    height: u32,
    frame_sha256: String,
    #[serde(rename = "box")]
    face: [f32; 4],
    square_side: usize,
    reflected: bool,
    crop_sha256: String,
    crop: CropMoments,
    live: f32,
}

/// Per channel: sum, sum of squares, and the sums weighted by column and by row.
#[derive(serde::Deserialize, Debug, PartialEq)]
struct CropMoments {
    sum: [i64; 3],
    sum_sq: [i64; 3],
    sum_x: [i64; 3],
    sum_y: [i64; 3],
}

fn crop_moments(crop: &FaceImage) -> CropMoments {
    let mut m = CropMoments {
        sum: [0; 3],
        sum_sq: [0; 3],
        sum_x: [0; 3],
        sum_y: [0; 3],
    };
    let width = crop.width() as usize;
    for (i, px) in crop.rgb().chunks_exact(3).enumerate() {
        let (x, y) = ((i % width) as i64, (i / width) as i64);
        for (c, &v) in px.iter().enumerate() {
            let v = i64::from(v);
            m.sum[c] += v;
            m.sum_sq[c] += v * v;
            m.sum_x[c] += v * x;
            m.sum_y[c] += v * y;
        }
    }
    m
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// face-antispoof's crop and score against `fixtures/gen/antispoof_golden.py`, which makes
/// them with OpenCV itself (copyMakeBorder, INTER_AREA, INTER_LANCZOS4) as the model's
/// upstream does: detected faces on full frames and tight crops, and boxes placed to reach
/// past the frame edges, to shrink by exactly 2, to enlarge, and to land on a resized side of
/// 127. Both start from the same decoded pixels (checked by their sha256); the crops must
/// agree to a hundredth of a grey level in their mean and moments, the live scores to 1e-4.
#[test]
fn face_antispoof_agrees_with_the_python_reference() {
    use vouch::face::liveness::{LivenessModel, square_reflect_crop};
    let Some(engine) = util::engine() else { return };
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden/antispoof.json");
    let golden: AntispoofGolden =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(golden.cases.len() >= 12);
    let spec = engine.manifest().get("face_antispoof").unwrap();
    let model = LivenessModel::new(engine.runtime(), spec, &engine.config().models.dir).unwrap();
    let (mut exact, mut worst_mean, mut worst_live) = (0, 0.0f64, 0.0f32);
    let mut reflected = 0;
    for case in &golden.cases {
        let Some(file) = util::data_file(&case.image) else {
            return;
        };
        let frame = FaceImage::open(&file, &engine.config().limits).unwrap();
        assert_eq!((frame.width(), frame.height()), (case.width, case.height));
        assert_eq!(
            sha256_hex(frame.rgb()),
            case.frame_sha256,
            "{}: decoded differently from the reference (Pillow)",
            case.image
        );
        let [x, y, width, height] = case.face;
        let face = FaceBox {
            x,
            y,
            width,
            height,
        };
        let what = format!(
            "{} {:?} (square {})",
            case.image, case.face, case.square_side
        );
        let crop = square_reflect_crop(&frame, &face, 1.5, 128).unwrap();
        assert_eq!((crop.width(), crop.height()), (128, 128));
        exact += usize::from(sha256_hex(crop.rgb()) == case.crop_sha256);
        let got = crop_moments(&crop);
        let pixels = 128.0 * 128.0;
        for c in 0..3 {
            let mean = |v: i64| v as f64 / pixels;
            let dev = [
                mean(got.sum[c] - case.crop.sum[c]),
                mean(got.sum_x[c] - case.crop.sum_x[c]) / 128.0,
                mean(got.sum_y[c] - case.crop.sum_y[c]) / 128.0,
                mean(got.sum_sq[c] - case.crop.sum_sq[c]) / 255.0,
            ]
            .iter()
            .fold(0.0f64, |a, d| a.max(d.abs()));
            assert!(
                dev <= 0.01,
                "{what}: channel {c}: {got:?} vs {:?}",
                case.crop
            );
            worst_mean = worst_mean.max(dev);
        }
        let live = model.score(&frame, &face).unwrap().live;
        assert!(
            (live - case.live).abs() <= 1e-4,
            "{what}: live {live} vs reference {}",
            case.live
        );
        worst_live = worst_live.max((live - case.live).abs());
        reflected += usize::from(case.reflected);
    }
    assert!(reflected >= 3, "too few cases reach past the frame edge");
    eprintln!(
        "face-antispoof reference agreement: {exact}/{} crops bit-exact, worst moment deviation {worst_mean:.4} grey levels, worst live score difference {worst_live:.2e}",
        golden.cases.len()
    );
}

/// face_antispoof named in `liveness.models` beside the default pair: each model's score
/// stays its own (the MiniFASNet scores are the default ensemble's), the frame's score is the
/// mean of the three.
#[test]
fn face_antispoof_joins_the_ensemble_with_its_own_score() {
    use vouch::face::{Jitter, Liveness};
    let Some(engine) = util::engine() else { return };
    let Some(bytes) = sample("image_T1.jpg") else {
        return;
    };
    assert_eq!(
        engine.config().liveness.models,
        ["minifasnet_v2", "minifasnet_v1se"],
        "the default ensemble"
    );
    let ensemble = |models: &[&str]| {
        let mut config = engine.config().liveness.clone();
        config.models = models.iter().map(|m| m.to_string()).collect();
        config.jitter = Jitter::Off;
        Liveness::new(
            engine.runtime(),
            engine.manifest(),
            &engine.config().models.dir,
            &config,
        )
        .unwrap()
    };
    let two = ensemble(&["minifasnet_v2", "minifasnet_v1se"]);
    let three = ensemble(&["minifasnet_v2", "minifasnet_v1se", "face_antispoof"]);
    let frame = engine.decode_image(&bytes).unwrap();
    let face = engine
        .assess_liveness_images(std::slice::from_ref(&frame))
        .unwrap()
        .faces[0]
        .face_box;
    let threshold = engine.config().decisions.liveness_threshold;
    let pair = two.score_frame(&frame, &face, threshold).unwrap();
    let all = three.score_frame(&frame, &face, threshold).unwrap();
    let names: Vec<&str> = all.per_model.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(
        names,
        ["minifasnet_v2", "minifasnet_v1se", "face_antispoof"]
    );
    for i in 0..2 {
        assert_eq!(pair.per_model[i].live, all.per_model[i].live);
    }
    let mean = all.per_model.iter().map(|m| m.live).sum::<f32>() / 3.0;
    assert!((all.score - mean).abs() < 1e-6);
    // a probability, and high on this live frame (the reference gives 0.999)
    let antispoof = all.per_model[2].live;
    assert!((0.9..=1.0).contains(&antispoof), "{antispoof}");
}
