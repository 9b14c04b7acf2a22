//! One presentation: every frame is detected once, the face whose liveness is scored is the
//! face that is embedded, and a frame holding a second face of similar size is a retake, not
//! a guess. The two-face frames are built from real photos of two people, side by side.

use vouch::authenticator::{EnrollRequest, Outcome, TransactionContext, VerifyRequest};
use vouch::face::FaceImage;
use vouch::policy::Transaction;

use crate::util;

/// `a` and `b` side by side on one grey canvas, each scaled to `height` (times `b_scale` for
/// `b`, which is centred vertically).
fn side_by_side(a: &FaceImage, b: &FaceImage, height: u32, b_scale: f32) -> FaceImage {
    let scaled = |image: &FaceImage, h: u32| {
        let w = (image.width() as f32 * h as f32 / image.height() as f32).round() as u32;
        image.resized(w, h).unwrap()
    };
    let a = scaled(a, height);
    let b = scaled(b, (height as f32 * b_scale).round() as u32);
    let gap = 40;
    let width = a.width() + gap + b.width();
    let mut rgb = vec![128u8; (width * height * 3) as usize];
    let mut paste = |image: &FaceImage, left: u32, top: u32| {
        let row = image.width() as usize * 3;
        for (y, line) in image.rgb().chunks_exact(row).enumerate() {
            let at = ((top as usize + y) * width as usize + left as usize) * 3;
            rgb[at..at + row].copy_from_slice(line);
        }
    };
    paste(&a, 0, 0);
    paste(&b, a.width() + gap, (height - b.height()) / 2);
    FaceImage::from_rgb(width, height, rgb).unwrap()
}

fn png(image: &FaceImage) -> Vec<u8> {
    vouch::capture::encode_image(image, vouch::capture::FrameEncoding::Png)
        .unwrap()
        .to_vec()
}

fn transaction(id: &str) -> TransactionContext {
    TransactionContext {
        id: id.into(),
        nonce: format!("n-{id}"),
        transaction: Transaction::new(1_250, "EUR", None).unwrap(),
    }
}

/// Photos of `id01` (the customer: enrolled from img2 and img6, presented with img1) and of
/// another person (img17), decoded.
fn people() -> Option<(FaceImage, FaceImage)> {
    let engine = util::engine()?;
    let (customer, other) = (util::deepface("img1.jpg")?, util::deepface("img17.jpg")?);
    Some((
        engine.decode_image(&customer).unwrap(),
        engine.decode_image(&other).unwrap(),
    ))
}

#[test]
fn a_frame_with_two_faces_of_similar_size_is_a_retake() {
    let Some((customer, other)) = people() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(auth) = util::authenticator(dir.path(), |_| {}) else {
        return;
    };
    let enrolled = [
        util::deepface("img2.jpg").unwrap(),
        util::deepface("img6.jpg").unwrap(),
    ];
    let report = auth
        .enroll(&EnrollRequest {
            subject: "alice",
            terminal: "till-1",
            face: &[&enrolled[0], &enrolled[1]],
            ..EnrollRequest::default()
        })
        .unwrap();
    assert_eq!(report.outcome, Outcome::Accept, "{report:?}");

    // Another person's face beside the customer's, larger (which the largest-face rule would
    // match) or a little smaller (which it would skip): neither may be settled by guessing.
    for (what, frame) in [
        (
            "a larger face beside",
            side_by_side(&customer, &other, 600, 1.0),
        ),
        (
            "a smaller face beside",
            side_by_side(&customer, &other, 600, 0.75),
        ),
    ] {
        let observed = auth.engine().observe(std::slice::from_ref(&frame)).unwrap();
        let face = &observed.faces()[0];
        assert!(face.faces >= 2, "{what}: {} face(s) found", face.faces);
        assert!(
            face.other_face_share >= 0.5,
            "{what}: {}",
            face.other_face_share
        );
        let bytes = png(&frame);
        let decision = auth
            .verify(&VerifyRequest {
                subject: "alice",
                terminal: "till-1",
                transaction: &transaction(what),
                face_frames: &[&bytes],
                voice: None,
                active: None,
            })
            .unwrap();
        assert_eq!(decision.outcome, Outcome::Retake, "{what}: {decision:?}");
        assert_eq!(decision.reasons, ["multiple_faces"], "{what}");
    }

    // A small face far behind the customer is no reason to refuse.
    let frame = side_by_side(&customer, &other, 600, 0.35);
    let observed = auth.engine().observe(std::slice::from_ref(&frame)).unwrap();
    let share = observed.faces()[0].other_face_share;
    assert!(share < 0.5, "{share}");
    let bytes = png(&frame);
    let decision = auth
        .verify(&VerifyRequest {
            subject: "alice",
            terminal: "till-1",
            transaction: &transaction("small-bystander"),
            face_frames: &[&bytes],
            voice: None,
            active: None,
        })
        .unwrap();
    assert!(
        !decision.reasons.iter().any(|r| r == "multiple_faces"),
        "{decision:?}"
    );
}

/// The embedding comes from the detection whose box liveness scored: the same frame, the same
/// box, and (shown by the vectors) the same person — not the other face in the frame.
#[test]
fn the_face_embedded_is_the_face_whose_liveness_was_scored() {
    let Some(engine) = util::engine() else { return };
    let Some((customer, other)) = people() else {
        return;
    };
    // Three frames of one presentation: the customer large, a smaller second face beside.
    let frame = side_by_side(&customer, &other, 600, 0.45);
    let frames = [frame.clone(), frame.clone(), frame];
    let presentation = engine.observe(&frames).unwrap();
    let threshold = engine.config().decisions.liveness_threshold;
    let liveness = engine.liveness_of(&presentation, threshold).unwrap();
    let embedded = engine.embed(&presentation).unwrap();
    let observed = &presentation.faces()[embedded.frame];
    assert_eq!(embedded.face, observed.face_box);
    assert_eq!(embedded.face, liveness.per_frame[embedded.frame].face);
    for (frame, face) in liveness.per_frame.iter().zip(presentation.faces()) {
        assert_eq!(frame.face, face.face_box, "liveness scored another box");
    }
    // The vector is the customer's: it matches their photo alone, not the other person's.
    let alone = |image: &FaceImage| {
        let bytes = png(image);
        engine.face_sample(&bytes).unwrap().embedding
    };
    let as_customer = embedded.embedding.cosine(&alone(&customer)).unwrap();
    let as_other = embedded.embedding.cosine(&alone(&other)).unwrap();
    // Not 1: the photo alone and the side-by-side frame are detected at different scales
    // (each downscaled to 320 px), so the two alignments differ by the landmarks' noise.
    assert!(as_customer > 0.85, "{as_customer}");
    assert!(as_other < 0.4, "{as_other}");
}

/// Each verified and enrolled frame is detected exactly once (the counter is the engine's own:
/// this authenticator's engine serves no other test).
#[test]
fn every_frame_is_detected_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(auth) = util::authenticator(dir.path(), |_| {}) else {
        return;
    };
    let (Some(a), Some(b), Some(probe)) = (
        util::deepface("img2.jpg"),
        util::deepface("img6.jpg"),
        util::deepface("img4.jpg"),
    ) else {
        return;
    };
    let engine = auth.engine();
    let before = engine.detections_run();
    auth.enroll(&EnrollRequest {
        subject: "alice",
        terminal: "till-1",
        face: &[&a, &b],
        ..EnrollRequest::default()
    })
    .unwrap();
    assert_eq!(
        engine.detections_run() - before,
        2,
        "enrollment: one per sample"
    );
    // The probe as three frames of one presentation.
    let before = engine.detections_run();
    let decision = auth
        .verify(&VerifyRequest {
            subject: "alice",
            terminal: "till-1",
            transaction: &transaction("t-once"),
            face_frames: &[&probe, &probe, &probe],
            voice: None,
            active: None,
        })
        .unwrap();
    assert_eq!(
        engine.detections_run() - before,
        3,
        "verification: one per frame ({decision:?})"
    );
}
