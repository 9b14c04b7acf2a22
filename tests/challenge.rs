//! The active liveness challenge on real faces: genuine responses assembled from the CMU pose
//! images (each person's own straight, left and right photos, held for several frames at
//! 15 fps — assembled sequences, not recordings of a challenge), the same responses judged
//! against another challenge (a replay), a still face, planar attacks (a real frontal photo
//! turned in 3-D as a flat print would be, rendered through the homography of that plane) and
//! bad input.

use std::path::Path;

use vouch::ErrorKind;
use vouch::decision::{ActiveLivenessConfig, ActiveVerdict, active_liveness};
use vouch::face::FaceImage;
use vouch::face::motion::HeadMovement::{self, Left, Right};

use crate::util;

const FPS: f64 = 15.0;

/// A CMU pose image (ASCII PGM, 128×120), grey to RGB, upscaled to a camera-like 512×480.
pub(crate) fn pgm(path: &Path) -> FaceImage {
    vouch::eval::synth::read_pgm(&std::fs::read(path).unwrap())
        .unwrap()
        .resized(512, 480)
        .unwrap()
}

/// Each CMU person's first detected straight, left and right photo (neutral or other
/// expressions, eyes open), or `None` when the data is absent.
pub(crate) fn people() -> Option<Vec<(String, [FaceImage; 3])>> {
    let root = util::data_dir("liveness-motion/cmu-poses")?;
    let engine = util::engine()?;
    let mut found = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for person in names {
        let pick = |pose: &str| {
            ["neutral", "happy", "sad", "angry"]
                .iter()
                .find_map(|expr| {
                    let path = root
                        .join(&person)
                        .join(format!("{person}_{pose}_{expr}_open.pgm"));
                    let image = path.is_file().then(|| pgm(&path))?;
                    let faces = engine.face().detect(&image).ok()?;
                    (!faces.is_empty()).then_some(image)
                })
        };
        if let (Some(s), Some(l), Some(r)) = (pick("straight"), pick("left"), pick("right")) {
            found.push((person, [s, l, r]));
        }
    }
    assert!(found.len() >= 8, "only {} CMU people usable", found.len());
    Some(found)
}

/// A response: 8 frames facing the camera, then for each movement 6 frames of it and 6
/// frames back.
pub(crate) fn response(poses: &[FaceImage; 3], actions: &[HeadMovement]) -> Vec<FaceImage> {
    let mut frames = vec![poses[0].clone(); 8];
    for action in actions {
        let turned = match action {
            Left => &poses[1],
            Right => &poses[2],
            other => panic!("no CMU pose for {other:?}"),
        };
        frames.extend(std::iter::repeat_n(turned.clone(), 6));
        frames.extend(std::iter::repeat_n(poses[0].clone(), 6));
    }
    frames
}

pub(crate) fn times(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 / FPS).collect()
}

fn judge(frames: &[FaceImage], asked: &[HeadMovement]) -> ActiveVerdict {
    let engine = util::engine().unwrap();
    let evidence = engine.follow(frames, &times(frames.len())).unwrap();
    active_liveness(
        &evidence,
        asked,
        engine.config().decisions.other_face_share,
        &ActiveLivenessConfig::default(),
    )
}

#[test]
fn genuine_turns_pass_and_the_same_frames_fail_another_challenge() {
    let Some(people) = people() else { return };
    let challenges: [&[HeadMovement]; 3] = [&[Left, Right], &[Right, Left], &[Left, Right, Left]];
    let mut passed = 0;
    let mut total = 0;
    for (person, poses) in &people {
        for asked in challenges {
            let frames = response(poses, asked);
            let v = judge(&frames, asked);
            total += 1;
            if v.passed {
                passed += 1;
            } else {
                eprintln!("{person} {asked:?}: {v:?}");
            }
            // Replayed against another challenge, the same frames never pass.
            let other: &[HeadMovement] = if asked == [Left, Right] {
                &[Right, Left]
            } else {
                &[Left, Right]
            };
            let replay = judge(&frames, other);
            assert!(
                !replay.passed,
                "{person}: a response to {asked:?} answered {other:?}"
            );
            assert!(replay.reasons.contains(&"wrong_movements"), "{replay:?}");
        }
    }
    eprintln!("genuine assembled responses accepted: {passed} of {total}");
    assert!(
        passed * 100 >= total * 97,
        "{passed} of {total} genuine responses passed"
    );
}

#[test]
fn a_still_face_does_not_answer() {
    let Some(people) = people() else { return };
    for (person, poses) in people.iter().take(4) {
        let frames = vec![poses[0].clone(); 40];
        let v = judge(&frames, &[Left, Right]);
        assert!(!v.passed, "{person}: {v:?}");
        assert!(v.reasons.contains(&"no_movement"), "{person}: {v:?}");
    }
}

/// `image` as a flat print filling the frame, turned by `yaw` and tilted by `pitch` (radians)
/// about its centre, seen by a pinhole camera `distance` image widths away, on black
/// ([`vouch::eval::synth::render_sheet`], which the evaluation sets use too).
fn turned_print(image: &FaceImage, yaw: f32, pitch: f32, distance: f32) -> FaceImage {
    use vouch::eval::synth::{PlanePose, render_sheet};
    let black = vec![0; image.rgb().len()];
    let black = FaceImage::from_rgb(image.width(), image.height(), black).unwrap();
    let pose = PlanePose {
        yaw,
        pitch,
        scale: 1.0,
        ..PlanePose::default()
    };
    render_sheet(image, &pose, &black, distance).unwrap()
}

#[test]
fn a_printed_photo_turned_in_the_hand_is_refused() {
    let Some(engine) = util::engine() else { return };
    let Some(photo) = util::deepface("img1.jpg") else {
        return;
    };
    let photo = engine.decode_image(&photo).unwrap();
    // A camera-sized frame of the print.
    let photo = photo
        .resized(
            480,
            (480.0 * photo.height() as f32 / photo.width() as f32) as u32,
        )
        .unwrap();
    // The attacker turns the print left, back, right, back, as a customer would turn their
    // head, by up to 40°, at 15 fps; and once tilts it back and forth as well.
    let ramp = |to: f32| (0..=6).map(move |k| to * k as f32 / 6.0);
    for (name, pitch) in [("turned", 0.0f32), ("turned and tilted", 0.35)] {
        let mut angles: Vec<(f32, f32)> = vec![(0.0, 0.0); 6];
        for to in [0.7f32, -0.7] {
            angles.extend(ramp(to).map(|a| (a, pitch * a / 0.7)));
            angles.extend(ramp(to).rev().map(|a| (a, pitch * a / 0.7)));
        }
        let frames: Vec<FaceImage> = angles
            .iter()
            .map(|&(yaw, p)| turned_print(&photo, yaw, p, 1.5))
            .collect();
        let v = judge(&frames, &[Left, Right]);
        assert!(!v.passed, "{name}: a flat print passed: {v:?}");
        eprintln!("{name} print: {v:?}");
    }
}

#[test]
fn malformed_responses_are_typed_errors() {
    let Some(engine) = util::engine() else { return };
    let frame = FaceImage::from_rgb(64, 48, vec![90; 64 * 48 * 3]).unwrap();
    let other = FaceImage::from_rgb(32, 48, vec![90; 32 * 48 * 3]).unwrap();
    let cases: [(&str, Vec<FaceImage>, Vec<f64>); 5] = [
        ("one frame", vec![frame.clone()], vec![0.0]),
        ("out of order", vec![frame.clone(); 3], vec![0.0, 0.2, 0.1]),
        ("a time per frame", vec![frame.clone(); 3], vec![0.0, 0.1]),
        ("mixed sizes", vec![frame.clone(), other], vec![0.0, 0.1]),
        ("too long", vec![frame.clone(); 301], times(301)),
    ];
    for (what, frames, t) in cases {
        let err = engine.follow(&frames, &t).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
    }
    // Frames without a face are evidence, not an error: the rule refuses them.
    let evidence = engine.follow(&vec![frame; 20], &times(20)).unwrap();
    assert_eq!(evidence.lost_frames, 20);
    let v = active_liveness(&evidence, &[Left], 0.5, &ActiveLivenessConfig::default());
    assert!(!v.passed && v.reasons.contains(&"lost_track"), "{v:?}");
}

#[test]
fn the_cli_judges_a_folder_of_frames_and_prints_json() {
    let Some(people) = people() else { return };
    let (_, poses) = &people[0];
    let dir = tempfile::tempdir().unwrap();
    for (i, frame) in response(poses, &[Right, Left]).iter().enumerate() {
        let png = vouch::capture::encode_image(frame, vouch::capture::FrameEncoding::Png).unwrap();
        std::fs::write(dir.path().join(format!("frame_{i:04}.png")), png).unwrap();
    }
    let run = |actions: &str| {
        let out = util::vouch()
            .args([
                "face",
                "challenge",
                "verify",
                "--json",
                "--fps",
                "15",
                "--actions",
                actions,
            ])
            .arg("--frames")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let answered = run("right,left");
    assert_eq!(answered["passed"], true, "{answered}");
    assert_eq!(
        answered["actions_seen"],
        serde_json::json!(["right", "left"])
    );
    assert_eq!(answered["reasons"], serde_json::json!([]));
    let replayed = run("left,right,up");
    assert_eq!(replayed["passed"], false);
    assert!(
        replayed["reasons"]
            .as_array()
            .unwrap()
            .contains(&"wrong_movements".into()),
        "{replayed}"
    );
    // A name that is no movement is a clear failure, not a verdict.
    let out = util::vouch()
        .args([
            "face",
            "challenge",
            "verify",
            "--actions",
            "sideways",
            "--frames",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sideways"));
}

/// PNG bytes of a frame.
pub(crate) fn png(frame: &FaceImage) -> Vec<u8> {
    vouch::capture::encode_image(frame, vouch::capture::FrameEncoding::Png)
        .unwrap()
        .to_vec()
}

#[test]
fn the_authenticator_issues_a_challenge_and_accepts_only_its_answer_by_the_matched_face() {
    use vouch::authenticator::{
        ActiveResponse, EnrollRequest, LivenessChallengeOutcome, Outcome, TransactionContext,
        VerifyRequest,
    };
    let Some(people) = people() else { return };
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    // Face and active liveness only: the CMU photos are grey 128×120 pictures upscaled, not
    // camera frames, so passive liveness is not what this test is about.
    std::fs::write(
        &policy,
        "version = 1\n[[tier]]\nname = \"active\"\nmax_amount_minor = 100000\nfactors = [\"face\", \"active_liveness\"]\ntarget_fmr = 0.001\n",
    )
    .unwrap();
    let Some(auth) = util::authenticator(dir.path(), |c| {
        c.decisions.policy = Some(policy.clone());
        // Upscaled 128×120 photos are soft and grey: neither the sharpness gate nor passive
        // liveness (which enrollment applies to every sample) is under test here.
        c.quality.min_sharpness = 1.0;
        c.decisions.liveness_threshold = 0.0;
    }) else {
        return;
    };
    let (customer, poses) = &people[0];
    let (_, other_poses) = &people[1];
    let enrolled = auth
        .enroll(&EnrollRequest {
            subject: customer,
            terminal: "till-1",
            face: &[&png(&poses[0])],
            ..EnrollRequest::default()
        })
        .unwrap();
    assert_eq!(enrolled.outcome, Outcome::Accept, "{enrolled:?}");

    let tx = |id: &str| TransactionContext {
        id: id.into(),
        nonce: format!("n-{id}"),
        transaction: vouch::policy::Transaction::new(2_500, "EUR", None).unwrap(),
    };
    // A challenge the CMU poses can answer (turns only); the issuer's draw is random.
    let turns_only = |tx: &TransactionContext| loop {
        match auth.liveness_challenge(customer, "till-1", tx).unwrap() {
            LivenessChallengeOutcome::Issued(c)
                if c.actions.iter().all(|a| matches!(a, Left | Right)) =>
            {
                break c;
            }
            LivenessChallengeOutcome::Issued(_) => continue,
            other => panic!("no challenge issued: {other:?}"),
        }
    };
    let face = png(&poses[0]);
    let verify = |tx: &TransactionContext, active: Option<ActiveResponse<'_>>| {
        auth.verify(&VerifyRequest {
            subject: customer,
            terminal: "till-1",
            transaction: tx,
            face_frames: &[&face],
            voice: None,
            active,
        })
    };

    // Without a response the terminal is asked for one.
    let d = verify(&tx("t0"), None).unwrap();
    assert_eq!(d.outcome, Outcome::StepUp, "{d:?}");
    assert_eq!(d.reasons, ["active_liveness_required"]);

    // The customer answers their challenge.
    let t1 = tx("t1");
    let challenge = turns_only(&t1);
    let frames: Vec<Vec<u8>> = response(poses, &challenge.actions)
        .iter()
        .map(png)
        .collect();
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let t = times(refs.len());
    let answer = |id: &'static str| ActiveResponse {
        challenge_id: id,
        frames: &refs,
        times: &t,
    };
    let id: &'static str = Box::leak(challenge.id.clone().into_boxed_str());
    let d = verify(&t1, Some(answer(id))).unwrap();
    assert_eq!(d.outcome, Outcome::Accept, "{d:?}");
    assert!(
        d.used.contains(&vouch::policy::Factor::ActiveLiveness),
        "{d:?}"
    );

    // The spent challenge cannot be answered again.
    let err = verify(&t1, Some(answer(id))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ChallengeInvalid);

    // The same recording against a new challenge with other movements is refused.
    let t2 = tx("t2");
    let replayed = loop {
        let c = turns_only(&t2);
        if c.actions != challenge.actions {
            break c;
        }
    };
    let id2: &'static str = Box::leak(replayed.id.into_boxed_str());
    let d = verify(&t2, Some(answer(id2))).unwrap();
    assert_eq!(d.outcome, Outcome::Reject, "{d:?}");
    assert_eq!(d.reasons, ["active_liveness_failed"]);

    // Another person answering the customer's challenge, with the customer's photo for the
    // match, is refused: the face that moved is not the face that pays.
    let t3 = tx("t3");
    let c3 = turns_only(&t3);
    let frames: Vec<Vec<u8>> = response(other_poses, &c3.actions).iter().map(png).collect();
    let others: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let t_others = times(others.len());
    let d = verify(
        &t3,
        Some(ActiveResponse {
            challenge_id: &c3.id,
            frames: &others,
            times: &t_others,
        }),
    )
    .unwrap();
    assert_eq!(d.outcome, Outcome::Reject, "{d:?}");
    assert_eq!(d.reasons, ["active_liveness_failed"]);

    // A challenge issued for one transaction does not answer another.
    let t4 = tx("t4");
    let c4 = turns_only(&t4);
    let id4: &'static str = Box::leak(c4.id.into_boxed_str());
    let err = verify(&tx("t5"), Some(answer(id4))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ChallengeInvalid);
}

#[test]
fn eval_liveness_sessions_reports_genuine_attacks_and_replays() {
    use vouch::eval::synth::{PlanePose, background, render_sheet, sheet_schedule, write_session};
    let Some(people) = people() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("sessions");
    // Synthetic sessions (assembled from the CMU pose images, or rendered from one): two
    // genuine responses, a still face and a flat print of a CMU straight photo turned to
    // mimic the challenge.
    for (k, (person, poses)) in people.iter().take(2).enumerate() {
        let asked: &[HeadMovement] = if k == 0 {
            &[Left, Right]
        } else {
            &[Right, Left]
        };
        let frames = response(poses, asked);
        let t = times(frames.len());
        let source = format!("assembled from the CMU pose images of {person}");
        write_session(
            &sessions.join(format!("genuine-{person}")),
            "bona_fide",
            None,
            asked,
            &t,
            &source,
            &frames,
        )
        .unwrap();
    }
    let straight = &people[0].1[0];
    let still = vec![straight.clone(); 30];
    write_session(
        &sessions.join("still"),
        "still",
        None,
        &[Left, Right],
        &times(30),
        "one CMU photo repeated",
        &still,
    )
    .unwrap();
    let mut rng = vouch::stats::SplitMix64::new(5);
    let bg = background(640, 480, &mut rng).unwrap();
    let poses = sheet_schedule(
        &[Left, Right],
        PlanePose::default(),
        0.7,
        0.4,
        30.0,
        (8, 4, 4),
    );
    let print: Vec<FaceImage> = poses
        .iter()
        .map(|p| render_sheet(straight, p, &bg, 1.2).unwrap())
        .collect();
    let t = times(print.len());
    write_session(
        &sessions.join("print"),
        "planar_print",
        None,
        &[Left, Right],
        &t,
        "a CMU photo rendered as a turned print",
        &print,
    )
    .unwrap();

    let json_path = dir.path().join("report.json");
    let out = util::vouch()
        .args(["eval", "liveness", "--replays", "4", "--sessions"])
        .arg(&sessions)
        .arg("--json")
        .arg(&json_path)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("genuine vs another challenge"),
        "{printed}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["header"]["schema"], "vouch.eval.liveness.sessions");
    let s = &json["summary"];
    assert_eq!(s["genuine_accepted"]["count"], 2, "{s}");
    assert_eq!(s["synthetic_sessions"], 4);
    assert_eq!(s["replays_refused"]["count"], 8);
    assert_eq!(s["replays_refused"]["hits"], 8, "{s}");
    let species: Vec<(&str, u64, u64)> = s["per_species"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["species"].as_str().unwrap(),
                p["refused"]["hits"].as_u64().unwrap(),
                p["refused"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(species, [("planar_print", 1, 1), ("still", 1, 1)], "{s}");
    assert!(
        json["warnings"][0].as_str().unwrap().contains("synthetic"),
        "{json}"
    );

    // A session folder without its file is a clear error.
    std::fs::create_dir(sessions.join("empty")).unwrap();
    let out = util::vouch()
        .args(["eval", "liveness", "--sessions"])
        .arg(&sessions)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no session.toml"));
}
