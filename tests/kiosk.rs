//! The kiosk flows end to end through the file-backed sources: enroll from photos and
//! recorded digits, then verify a genuine customer (accepted), an impostor's face (rejected),
//! a printed photo (rejected by liveness) and another speaker's passphrase (rejected) — through
//! the library as `examples/kiosk.rs` does, and through `vouch kiosk` in a pseudo-terminal as a
//! customer would see it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use vouch::authenticator::{
    Authenticator, ChallengeOutcome, Decision, EnrollRequest, Outcome, TransactionContext,
    VerifyRequest, VoiceResponse,
};
use vouch::capture::{
    AudioCaptureConfig, FrameEncoding, ImageFolderSource, RecordedDigits, SelectConfig,
    capture_utterance, select_frames,
};
use vouch::policy::Transaction;
use vouch::vault::TemplateVault;

use crate::util;

struct Kiosk {
    dir: tempfile::TempDir,
    authenticator: Authenticator,
    shared: PathBuf,
}

/// A frames folder: `copies` copies of each photo, named in play order.
fn frames(dir: &Path, name: &str, photos: &[PathBuf], copies: usize) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let mut n = 0;
    for photo in photos {
        for _ in 0..copies {
            std::os::unix::fs::symlink(photo, folder.join(format!("frame_{n:04}.jpg"))).unwrap();
            n += 1;
        }
    }
    folder
}

/// The built-in policy without the movement challenge of its large tier: these tests pay a
/// large amount to exercise the voice, with still photos that cannot move (the movement
/// flow has its own test below).
const POLICY_WITHOUT_MOVEMENTS: &str = "version = 1\n\
[[tier]]\nname = \"small\"\nmax_amount_minor = 5000\nfactors = [\"face\", \"liveness\"]\ntarget_fmr = 0.001\n\
[[tier]]\nname = \"large\"\nmax_amount_minor = 150000\nfactors = [\"face\", \"liveness\", \"voice\"]\ntarget_fmr = 0.0001\nvoice_target_fmr = 0.01\n";

/// Writes [`POLICY_WITHOUT_MOVEMENTS`] into `dir`, returning its path.
fn policy_without_movements(dir: &Path) -> PathBuf {
    let path = dir.join("policy.toml");
    std::fs::write(&path, POLICY_WITHOUT_MOVEMENTS).unwrap();
    path
}

fn kiosk() -> Option<Kiosk> {
    let engine = util::engine()?;
    let shared = util::shared()?;
    let dir = tempfile::tempdir().unwrap();
    let mut config = engine.config().clone().into_inner();
    config.store.sqlite = dir.path().join("templates.db");
    config.keys.file = dir.path().join("keys.toml");
    config.decisions.receipt_key = dir.path().join("receipt.key");
    config.decisions.audit_log = dir.path().join("audit.log");
    config.decisions.policy = Some(policy_without_movements(dir.path()));
    // Retried genuine attempts and the impostor attempts below must not lock the subject.
    config.decisions.attempts.max_subject_failures = 100;
    vouch::template::Keyring::generate("k1")
        .unwrap()
        .save(&config.keys.file)
        .unwrap();
    vouch::receipt::ReceiptSigner::generate(&config.decisions.receipt_key).unwrap();
    let vault = TemplateVault::open(&config.store, &config.keys).unwrap();
    let engine = Arc::new(vouch::Engine::new(config.validate().unwrap()).unwrap());
    let authenticator = Authenticator::with_engine(engine, vault).unwrap();
    Some(Kiosk {
        dir,
        authenticator,
        shared,
    })
}

impl Kiosk {
    fn face(&self, name: &str) -> PathBuf {
        self.shared.join("data/faces-deepface").join(name)
    }

    fn takes(&self, speaker: &str) -> RecordedDigits {
        RecordedDigits::new(&self.shared.join("data/fsdd/recordings"), speaker).unwrap()
    }

    fn enroll(&self, subject: &str, photos: &[&str], speaker: &str) {
        let limits = &self.authenticator.engine().config().limits;
        let folder = frames(
            self.dir.path(),
            &format!("enroll-{subject}"),
            &photos.iter().map(|p| self.face(p)).collect::<Vec<_>>(),
            1,
        );
        let mut source = ImageFolderSource::folder(&folder, 15.0, limits)
            .unwrap()
            .paced(false);
        let select = SelectConfig {
            run_length: 1,
            ..SelectConfig::default()
        };
        let selection = select_frames(
            self.authenticator.engine(),
            &mut source,
            &select,
            &mut |_| {},
        )
        .unwrap();
        let face = selection.encode_best(FrameEncoding::default()).unwrap();
        let takes = self.takes(speaker);
        // The ten digits said in order, twice, as the kiosk asks for them.
        let sequences: Vec<_> = [5, 15]
            .into_iter()
            .map(|first| {
                let mut source = takes.phrase("0123456789", first).unwrap().paced(false);
                capture_utterance(&mut source, &AudioCaptureConfig::default())
                    .unwrap()
                    .wav()
            })
            .collect();
        let face_refs: Vec<&[u8]> = face.iter().map(|f| f.as_slice()).collect();
        let sequence_refs: Vec<&[u8]> = sequences.iter().map(|w| w.as_slice()).collect();
        let report = self
            .authenticator
            .enroll(&EnrollRequest {
                subject,
                terminal: "kiosk-test",
                face: &face_refs,
                digit_sequences: &sequence_refs,
                ..EnrollRequest::default()
            })
            .unwrap();
        assert_eq!(report.outcome, Outcome::Accept, "{report:?}");
    }

    /// A large payment (face, liveness and voice) by whoever is in `frames`, speaking with the
    /// voice of `speaker`.
    fn pay(&self, subject: &str, frames_dir: &Path, speaker: &str) -> Decision {
        let context = TransactionContext {
            id: "t-1".into(),
            nonce: "n-1".into(),
            transaction: Transaction::new(12_000, "EUR", None).unwrap(),
        };
        let ChallengeOutcome::Issued(challenge) = self
            .authenticator
            .challenge(subject, "kiosk-test", &context)
            .unwrap()
        else {
            panic!("120 EUR needs the passphrase")
        };
        let limits = &self.authenticator.engine().config().limits;
        let mut source = ImageFolderSource::folder(frames_dir, 15.0, limits)
            .unwrap()
            .paced(false);
        let selection = select_frames(
            self.authenticator.engine(),
            &mut source,
            &SelectConfig::default(),
            &mut |_| {},
        )
        .unwrap();
        let frames = selection.encode_run(FrameEncoding::default()).unwrap();
        let mut speech = self
            .takes(speaker)
            .phrase(&challenge.digits, 0)
            .unwrap()
            .paced(false);
        let heard = capture_utterance(&mut speech, &AudioCaptureConfig::default()).unwrap();
        let wav = heard.wav();
        let frame_refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
        self.authenticator
            .verify(&VerifyRequest {
                subject,
                terminal: "kiosk-test",
                transaction: &context,
                face_frames: &frame_refs,
                voice: Some(VoiceResponse {
                    challenge_id: &challenge.id,
                    audio: &wav,
                }),
                active: None,
            })
            .unwrap()
    }
}

/// How many tries a genuine customer gets in these tests. The voice factor refuses genuine
/// customers at known rates: the digit check about one phrase in eight (88 % accepted on FSDD,
/// README) and the speaker score about 6 % (FNMR at the FMR 1e-2 threshold on the calibration
/// phrases). Each try has fresh random digits, so eight tries all failing (odds ~1e-6) means
/// something broke.
const TRIES: usize = 8;

/// The reasons a genuine try may fail for: the voice factor's own error rates, never face or
/// liveness.
fn genuine_voice_refusal(reasons: &[String]) -> bool {
    !reasons.is_empty()
        && reasons
            .iter()
            .all(|r| r == "passphrase_mismatch" || r == "voice_mismatch")
}

#[test]
fn kiosk_flows_accept_the_customer_and_reject_impostors_and_a_printed_photo() {
    let Some(k) = kiosk() else { return };
    k.enroll("alice", &["img1.jpg", "img4.jpg", "img6.jpg"], "theo");
    let genuine = frames(k.dir.path(), "genuine", &[k.face("img2.jpg")], 5);
    let mut tries = Vec::new();
    while tries.len() < TRIES {
        let decision = k.pay("alice", &genuine, "theo");
        let accepted = decision.outcome == Outcome::Accept;
        tries.push(decision);
        if accepted {
            break;
        }
    }
    let last = tries.last().unwrap();
    assert_eq!(last.outcome, Outcome::Accept, "{tries:?}");
    for failed in &tries[..tries.len() - 1] {
        assert!(genuine_voice_refusal(&failed.reasons), "{failed:?}");
    }

    // Someone else's face, the right voice: the face factor fails.
    let other = frames(k.dir.path(), "other", &[k.face("img26.jpg")], 5);
    let decision = k.pay("alice", &other, "theo");
    assert_eq!(decision.outcome, Outcome::Reject, "{decision:?}");
    assert!(
        decision.reasons.iter().any(|r| r == "face_mismatch"),
        "{decision:?}"
    );

    // The right face, another speaker saying the digits.
    let decision = k.pay("alice", &genuine, "jackson");
    assert_eq!(decision.outcome, Outcome::Reject, "{decision:?}");
    assert!(
        decision.reasons.iter().any(|r| r == "voice_mismatch"),
        "{decision:?}"
    );

    // A printed photo held to the camera: liveness refuses it.
    let print = k.shared.join("data/liveness-samples/image_F1.jpg");
    let attack = frames(k.dir.path(), "print", &[print], 5);
    let decision = k.pay("alice", &attack, "theo");
    assert_eq!(decision.outcome, Outcome::Reject, "{decision:?}");
    assert!(
        decision.reasons.iter().any(|r| r == "liveness_failed"),
        "{decision:?}"
    );
}

/// Runs `vouch ARGS` in a pseudo-terminal (util-linux `script`) from `dir`, returning what the
/// terminal showed.
fn on_a_terminal(dir: &Path, args: &[String]) -> String {
    let mut line = shell_quote(env!("CARGO_BIN_EXE_vouch"));
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    let out = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .current_dir(dir)
        .env("VOUCH_ORT_LIB", util::ort_library().unwrap())
        .env("VOUCH_MODEL_DIR", util::model_dir().unwrap())
        .env("VOUCH_UBM", util::ubm().unwrap())
        .env("TERM", "xterm")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{screen}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    screen
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A terminal's folder for `vouch kiosk` tests, with keys and a receipt key made by the CLI,
/// and carol's enrollment and probe photos (`None` when the models or `script` are missing).
struct TerminalKiosk {
    dir: tempfile::TempDir,
    shared: PathBuf,
    enroll: PathBuf,
    probe: PathBuf,
}

fn terminal_kiosk() -> Option<TerminalKiosk> {
    util::engine()?;
    if Command::new("script").arg("--version").output().is_err() {
        util::skip("no `script` (util-linux) for a pseudo-terminal");
        return None;
    }
    let shared = util::shared_dir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let faces = shared.join("data/faces-deepface");
    let enroll = frames(
        dir.path(),
        "enroll",
        &[faces.join("img4.jpg"), faces.join("img6.jpg")],
        1,
    );
    let probe = frames(dir.path(), "probe", &[faces.join("img2.jpg")], 5);
    let s = |x: &str| x.to_string();
    on_a_terminal(dir.path(), &[s("keys"), s("generate")]);
    on_a_terminal(
        dir.path(),
        &[
            s("receipt"),
            s("keygen"),
            s("--out"),
            s(".vouch/receipt.key"),
        ],
    );
    Some(TerminalKiosk {
        dir,
        shared,
        enroll,
        probe,
    })
}

#[test]
fn vouch_kiosk_on_a_terminal_prompts_and_decides() {
    let Some(TerminalKiosk {
        dir,
        shared,
        enroll,
        probe,
    }) = terminal_kiosk()
    else {
        return;
    };
    let takes = shared.join("data/fsdd/recordings");
    let s = |x: &str| x.to_string();
    let p = |x: &Path| x.display().to_string();
    let screen = on_a_terminal(
        dir.path(),
        &[
            s("kiosk"),
            s("enroll"),
            s("carol"),
            s("--frames"),
            p(&enroll),
            s("--unpaced"),
            s("--takes"),
            p(&takes),
            s("--speaker"),
            s("theo"),
        ],
    );
    assert!(screen.contains("Look at the camera."), "{screen}");
    assert!(
        screen
            .contains("Say the digits 0 1 2 3 4 5 6 7 8 9, with a short pause after each (2 of 2)"),
        "{screen}"
    );
    assert!(screen.contains("Enrollment ACCEPT"), "{screen}");
    // Each try is a new process with new random digits (see TRIES); a failed try may only
    // fail on the voice factor.
    let config = dir.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!(
            "[decisions]\npolicy = \"{}\"\n",
            policy_without_movements(dir.path()).display()
        ),
    )
    .unwrap();
    let verify = [
        s("--config"),
        p(&config),
        s("kiosk"),
        s("verify"),
        s("carol"),
        s("--amount"),
        s("120"),
        s("--frames"),
        p(&probe),
        s("--unpaced"),
        s("--takes"),
        p(&takes),
        s("--speaker"),
        s("theo"),
    ];
    let mut screen = String::new();
    for _ in 0..TRIES {
        screen = on_a_terminal(dir.path(), &verify);
        if screen.contains("Decision: ACCEPT") {
            break;
        }
        let reasons = screen
            .lines()
            .find_map(|l| l.trim().strip_prefix("reasons: "))
            .unwrap_or_default();
        let reasons: Vec<String> = reasons.split(", ").map(str::to_string).collect();
        assert!(genuine_voice_refusal(&reasons), "{screen}");
    }
    assert!(screen.contains("Paying 120.00 EUR as carol."), "{screen}");
    assert!(screen.contains("Look at the camera."), "{screen}");
    let said = screen
        .lines()
        .find_map(|l| l.trim().strip_prefix("Say: "))
        .unwrap_or_else(|| panic!("no passphrase prompt:\n{screen}"));
    assert_eq!(
        said.split(' ').filter(|d| d.len() == 1).count(),
        6,
        "{screen}"
    );
    assert!(screen.contains("Decision: ACCEPT"), "{screen}");
    assert!(screen.contains("receipt: vouch-receipt.v1."), "{screen}");
    // A small amount asks for no passphrase.
    let screen = on_a_terminal(
        dir.path(),
        &[
            s("kiosk"),
            s("verify"),
            s("carol"),
            s("--amount"),
            s("5"),
            s("--frames"),
            p(&probe),
            s("--unpaced"),
        ],
    );
    assert!(
        !screen.contains("Say:") && screen.contains("Decision: ACCEPT"),
        "{screen}"
    );
}

/// A policy whose large tier asks for the head-movement challenge and no voice.
const POLICY_WITH_MOVEMENTS: &str = "version = 1\n\
[[tier]]\nname = \"large\"\nmax_amount_minor = 150000\nfactors = [\"face\", \"liveness\", \"active_liveness\"]\ntarget_fmr = 0.0001\n";

#[test]
fn vouch_kiosk_prompts_the_head_movements_and_refuses_someone_elses() {
    let Some(TerminalKiosk {
        dir,
        shared,
        enroll,
        probe,
    }) = terminal_kiosk()
    else {
        return;
    };
    // The movements: another person's CMU pose photos (an2i), facing the camera, turning
    // left, back, right, back: 55 frames, shorter than the prompts' script.
    let cmu = shared.join("data/liveness-motion/cmu-poses/an2i");
    let moves = dir.path().join("moves");
    std::fs::create_dir_all(&moves).unwrap();
    let mut n = 0;
    for (pose, count) in [
        ("straight", 15),
        ("left", 10),
        ("straight", 10),
        ("right", 10),
        ("straight", 10),
    ] {
        let img = crate::challenge::pgm(&cmu.join(format!("an2i_{pose}_neutral_open.pgm")));
        let png = vouch::capture::encode_image(&img, FrameEncoding::Png).unwrap();
        for _ in 0..count {
            std::fs::write(moves.join(format!("m{n:03}.png")), &*png).unwrap();
            n += 1;
        }
    }
    let s = |x: &str| x.to_string();
    let p = |x: &Path| x.display().to_string();
    let screen = on_a_terminal(
        dir.path(),
        &[
            s("kiosk"),
            s("enroll"),
            s("carol"),
            s("--frames"),
            p(&enroll),
            s("--unpaced"),
        ],
    );
    assert!(screen.contains("Enrollment ACCEPT"), "{screen}");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY_WITH_MOVEMENTS).unwrap();
    let config = dir.path().join("kiosk.toml");
    std::fs::write(
        &config,
        format!("[decisions]\npolicy = \"{}\"\n", policy.display()),
    )
    .unwrap();
    let verify = |extra: &[String]| {
        let mut args = vec![
            s("--config"),
            p(&config),
            s("kiosk"),
            s("verify"),
            s("carol"),
            s("--amount"),
            s("120"),
            s("--frames"),
            p(&probe),
            s("--unpaced"),
        ];
        args.extend_from_slice(extra);
        args
    };
    let screen = on_a_terminal(dir.path(), &verify(&[s("--movement-frames"), p(&moves)]));
    assert!(
        screen.contains("Now move your head when asked: "),
        "{screen}"
    );
    assert!(
        screen.contains("0/") && screen.contains("Look at the camera."),
        "{screen}"
    );
    assert!(screen.contains("1/"), "{screen}");
    assert!(screen.contains("Movements filmed (55 frame(s)"), "{screen}");
    // Carol's face was matched; the head that moved is someone else's.
    assert!(screen.contains("Decision: REJECT"), "{screen}");
    assert!(screen.contains("active_liveness_failed"), "{screen}");
    // Frames from files but none for the movements: said before the customer is filmed.
    let out = util::vouch()
        .args(verify(&[]))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--movement-frames"), "{err}");
}

#[test]
fn kiosk_bad_arguments_are_clear_errors() {
    if util::engine().is_none() {
        return;
    }
    let shared = util::shared_dir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = util::vouch()
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Before the keys exist, the kiosk says how to create each.
    let verify = ["kiosk", "verify", "dave", "--amount", "5", "--frames", "."];
    let (ok, err) = run(&verify);
    assert!(!ok && err.contains("vouch keys generate"), "{err}");
    assert!(run(&["keys", "generate"]).0);
    let (ok, err) = run(&verify);
    assert!(!ok && err.contains("vouch receipt keygen"), "{err}");
    assert!(run(&["receipt", "keygen", "--out", ".vouch/receipt.key"]).0);
    let (ok, err) = run(&["kiosk", "verify", "dave", "--amount", "-3", "--frames", "."]);
    assert!(!ok && err.contains("--amount"), "{err}");
    let takes = shared.join("data/fsdd/recordings");
    let takes = takes.to_str().unwrap();
    let (ok, err) = run(&[
        "kiosk",
        "enroll",
        "dave",
        "--frames",
        ".",
        "--takes",
        takes,
        "--speaker",
        "nobody",
    ]);
    assert!(!ok && err.contains("nobody"), "{err}");
    // A folder without faces: no usable frame, with the reasons counted.
    let blank = dir.path().join("blank");
    std::fs::create_dir(&blank).unwrap();
    std::fs::write(
        blank.join("frame_0000.png"),
        util::png(64, 64, |_, _| [128, 128, 128]),
    )
    .unwrap();
    let (ok, err) = run(&[
        "kiosk",
        "enroll",
        "dave",
        "--unpaced",
        "--frames",
        blank.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("no usable face"), "{err}");
    // Without a camera build or --frames, the message says what to do.
    if !cfg!(feature = "camera") {
        let (ok, err) = run(&["kiosk", "enroll", "dave"]);
        assert!(!ok && err.contains("--features camera"), "{err}");
    }
}
