//! The daemon on loopback: a Unix socket and TCP with mutual TLS, the real models, enrollment
//! and verification of real photos and spoken passphrases, receipts and the audit chain,
//! refused clients, lockout and research mode. The decision tests serve in-process
//! ([`InProcess`]: `vouch::daemon::serve` on the test's runtime, stopped through its shutdown
//! future); the real `vouchd` binary runs end to end once (enroll, verify, SIGTERM with a
//! request in flight, clean exit), for `--check-config`, and for the Python grpcio client
//! over both transports. The daemon under faults is `tests/faults/`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use vouch::daemon::proto as pb;

use crate::harness::{InProcess, Vouchd, decision, face, face_payment, image, tx};
use crate::util;

/// A policy file (format version 1) in a folder of its own, for `[decisions] policy`.
struct PolicyFile(tempfile::TempDir);

impl PolicyFile {
    /// The `[decisions]` line that points at it.
    fn setting(&self) -> String {
        format!(
            "policy = \"{}\"\n",
            self.0.path().join("policy.toml").display()
        )
    }
}

fn policy_file(tiers: &str) -> PolicyFile {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.toml"),
        format!("version = 1\n{tiers}"),
    )
    .unwrap();
    PolicyFile(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_decides_over_the_unix_socket_with_receipts_and_an_audit_chain() {
    let Some(mut daemon) = InProcess::start("").await else {
        return;
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&daemon.unix)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o660, "socket mode");
    }
    let mut client = daemon.unix_client().await;

    // Enrollment: three photos of one person; every sample judged.
    let enrolled = client
        .enroll(pb::EnrollRequest {
            subject: "alice".into(),
            face: vec![face("img1.jpg"), face("img2.jpg"), face("img6.jpg")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(enrolled.decision), pb::Decision::Accept);
    assert!(enrolled.face_enrolled);
    assert_eq!(enrolled.samples.len(), 3);

    let key = client
        .get_receipt_key(pb::GetReceiptKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    let public = vouch::receipt::parse_public_key(&key.public_key_hex).unwrap();

    // A small payment: face and liveness. The genuine probe is accepted, with no raw score.
    let genuine = client
        .verify(pb::VerifyRequest {
            subject: "alice".into(),
            transaction: Some(tx("t-1", 450)),
            frames: vec![face("img7.jpg")],
            voice: None,
            movement: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(genuine.decision),
        pb::Decision::Accept,
        "{genuine:?}"
    );
    assert_eq!(genuine.policy_tier, "small");
    assert!(genuine.scores.is_none(), "raw scores outside research mode");
    let receipt = vouch::receipt::verify_receipt(&genuine.receipt, &public).unwrap();
    assert_eq!(
        (
            receipt.subject.as_str(),
            receipt.transaction_id.as_str(),
            receipt.decision.as_str()
        ),
        ("alice", "t-1", "accept")
    );
    assert_eq!(receipt.terminal, "local");
    assert_eq!(receipt.nonce, "nonce-t-1");
    assert!(
        receipt
            .models
            .iter()
            .any(|m| m.starts_with("mobilefacenet_int8@"))
    );

    // Someone else.
    let impostor = client
        .verify(pb::VerifyRequest {
            subject: "alice".into(),
            transaction: Some(tx("t-2", 450)),
            frames: vec![face("img27.jpg")],
            voice: None,
            movement: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(impostor.decision), pb::Decision::Reject);
    assert_eq!(impostor.reasons, ["face_mismatch"]);

    // A printed photo of an enrolled person: enroll from the live frame, attack with the print.
    let samples = util::shared_dir().unwrap().join("data/liveness-samples");
    let bob = client
        .enroll(pb::EnrollRequest {
            subject: "bob".into(),
            face: vec![image(&samples.join("image_T1.jpg"))],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(bob.decision), pb::Decision::Accept, "{bob:?}");
    let print = client
        .verify(pb::VerifyRequest {
            subject: "bob".into(),
            transaction: Some(tx("t-3", 450)),
            frames: vec![image(&samples.join("image_F1.jpg"))],
            voice: None,
            movement: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(print.decision), pb::Decision::Reject);
    assert!(
        print.reasons.contains(&"liveness_failed".to_string()),
        "{print:?}"
    );

    // Above the ceiling, and a restricted merchant: refused by policy.
    let big = client
        .verify(pb::VerifyRequest {
            subject: "alice".into(),
            transaction: Some(tx("t-4", 1_000_000)),
            frames: vec![face("img7.jpg")],
            voice: None,
            movement: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(big.decision), pb::Decision::Reject);
    assert_eq!(big.reasons, ["policy_refused"]);

    // Identification finds alice, and nobody for a stranger.
    let found = client
        .identify(pb::IdentifyRequest {
            frames: vec![face("img10.jpg")],
            top_k: 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(found.decision), pb::Decision::Accept, "{found:?}");
    assert_eq!(found.subject, "alice");
    assert!(
        found.candidates.is_empty(),
        "candidates outside research mode"
    );
    let nobody = client
        .identify(pb::IdentifyRequest {
            frames: vec![face("img29.jpg")],
            top_k: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(nobody.decision), pb::Decision::Reject);
    assert!(nobody.subject.is_empty());

    // Subjects: counts, deletion, then not found.
    let alice = client
        .get_subject(pb::GetSubjectRequest {
            subject: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // One template per configured embedder: MobileFaceNet's and SFace's.
    assert_eq!(alice.face_templates, 2);
    let deleted = client
        .delete_subject(pb::DeleteSubjectRequest {
            subject: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.templates_deleted, 2, "both embedders' templates");
    let gone = client
        .get_subject(pb::GetSubjectRequest {
            subject: "bob".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);

    // Health and metrics.
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(daemon.unix_channel().await);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "vouch.v1.Vouch".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(serving.status, 1, "SERVING");
    let metrics = daemon.scrape().await;
    assert!(
        metrics.contains("vouchd_requests_total{method=\"Verify\",code=\"OK\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("vouchd_decisions_total{method=\"Verify\",decision=\"DECISION_ACCEPT\"} 1")
    );

    // Graceful stop, then the chain verifies and holds every decision.
    if let Err(e) = daemon.stop().await {
        panic!("the daemon stopped uncleanly: {e}");
    }
    assert!(!daemon.unix.exists(), "socket removed on shutdown");
    let audit = vouch::audit::verify_file(&daemon.dir.path().join("audit.log")).unwrap();
    // start, 2 enrollments, 4 verifications, 2 identifications, 1 deletion, stop.
    assert_eq!(audit.records, 11, "{audit:?}");
    let log = std::fs::read_to_string(daemon.dir.path().join("audit.log")).unwrap();
    assert!(
        log.contains(&genuine.receipt),
        "the receipt is in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_requires_a_client_certificate_from_its_ca_on_tcp() {
    let Some(daemon) = InProcess::start("").await else {
        return;
    };
    let mut till = daemon.tls_client(Some("till-1")).await.unwrap();
    let key = till
        .get_receipt_key(pb::GetReceiptKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(key.public_key_hex.len(), 64);
    let unknown = till
        .get_subject(pb::GetSubjectRequest {
            subject: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // till-2 may only fetch the receipt key.
    let mut limited = daemon.tls_client(Some("till-2")).await.unwrap();
    limited
        .get_receipt_key(pb::GetReceiptKeyRequest {})
        .await
        .unwrap();
    let denied = limited
        .get_subject(pb::GetSubjectRequest {
            subject: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // No certificate, or one from another CA: the handshake or the first call fails.
    for name in [None, Some("rogue")] {
        match daemon.tls_client(name).await {
            Err(_) => {}
            Ok(mut client) => {
                let refused = client
                    .get_receipt_key(pb::GetReceiptKeyRequest {})
                    .await
                    .unwrap_err();
                assert!(
                    matches!(
                        refused.code(),
                        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                    ),
                    "{name:?}: {refused:?}"
                );
            }
        }
    }
    // The daemon still serves.
    till.get_receipt_key(pb::GetReceiptKeyRequest {})
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_steps_up_to_a_spoken_passphrase_for_large_amounts() {
    // The built-in large tier also asks for a movement challenge, which the deepface photos
    // enrolled here cannot answer (see `daemon_asks_for_and_judges_a_movement_challenge`):
    // this test is about the voice step-up alone.
    let policy = policy_file(
        "[[tier]]\nname = \"small\"\nmax_amount_minor = 5000\nfactors = [\"face\", \"liveness\"]\ntarget_fmr = 0.001\n\
         [[tier]]\nname = \"large\"\nmax_amount_minor = 150000\nfactors = [\"face\", \"liveness\", \"voice\"]\ntarget_fmr = 0.0001\nvoice_target_fmr = 0.01\n",
    );
    let Some(daemon) = InProcess::start(&policy.setting()).await else {
        return;
    };
    if util::data_file("fsdd/recordings/0_george_5.wav").is_none() {
        return;
    }
    let mut client = daemon.unix_client().await;
    // Face, and george saying the digits 0–9 twice (his takes 5 and 6; the probes use takes
    // 0–4), as a terminal records them at enrollment.
    let sequence = |take: u32| pb::Audio {
        data: util::fsdd_sequence_wav("george", take).unwrap(),
        format: pb::AudioFormat::Wav as i32,
    };
    let enrolled = client
        .enroll(pb::EnrollRequest {
            subject: "carol".into(),
            face: vec![face("img1.jpg"), face("img2.jpg")],
            digit_sequences: vec![sequence(5), sequence(6)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        enrolled.face_enrolled && enrolled.voice_enrolled,
        "{enrolled:?}"
    );

    // A large payment without voice: step up.
    let stepped = client
        .verify(pb::VerifyRequest {
            subject: "carol".into(),
            transaction: Some(tx("big-1", 100_000)),
            frames: vec![face("img7.jpg")],
            voice: None,
            movement: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(stepped.decision),
        pb::Decision::StepUp,
        "{stepped:?}"
    );
    assert_eq!(stepped.reasons, ["voice_required"]);

    // A small one needs no challenge.
    let small = client
        .challenge(pb::ChallengeRequest {
            subject: "carol".into(),
            transaction: Some(tx("small-1", 100)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!small.required);

    let speak = |speaker: &str, digits: &str, first_take: u32| pb::Audio {
        data: util::wav_16k(
            util::fsdd_phrase(speaker, digits, first_take)
                .unwrap()
                .samples(),
        ),
        format: pb::AudioFormat::Wav as i32,
    };
    // The customer speaks the digits. Genuine acceptance of the passphrase is ~97 % per
    // attempt on FSDD (README), so up to three challenges are allowed here.
    let mut accepted = false;
    let mut last = None;
    for attempt in 0..3u32 {
        let challenge = client
            .challenge(pb::ChallengeRequest {
                subject: "carol".into(),
                transaction: Some(tx("big-1", 100_000)),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(challenge.required && challenge.digits.len() == 6);
        let answer = client
            .verify(pb::VerifyRequest {
                subject: "carol".into(),
                transaction: Some(tx("big-1", 100_000)),
                frames: vec![face("img7.jpg")],
                voice: Some(pb::VoiceResponse {
                    challenge_id: challenge.challenge_id.clone(),
                    audio: Some(speak("george", &challenge.digits, attempt)),
                }),
                movement: None,
            })
            .await
            .unwrap()
            .into_inner();
        // The challenge is single-use.
        let reused = client
            .verify(pb::VerifyRequest {
                subject: "carol".into(),
                transaction: Some(tx("big-1", 100_000)),
                frames: vec![face("img7.jpg")],
                voice: Some(pb::VoiceResponse {
                    challenge_id: challenge.challenge_id,
                    audio: Some(speak("george", &challenge.digits, attempt)),
                }),
                movement: None,
            })
            .await
            .unwrap_err();
        assert_eq!(reused.code(), tonic::Code::FailedPrecondition);
        if decision(answer.decision) == pb::Decision::Accept {
            assert_eq!(answer.factors_used, ["face", "liveness", "voice"]);
            accepted = true;
            break;
        }
        last = Some(answer);
    }
    assert!(
        accepted,
        "three genuine passphrases refused; last: {last:?}"
    );

    // Another speaker saying the right digits, and a replay of other digits: refused.
    for (speaker, replay) in [("jackson", false), ("george", true)] {
        let challenge = client
            .challenge(pb::ChallengeRequest {
                subject: "carol".into(),
                transaction: Some(tx("big-2", 100_000)),
            })
            .await
            .unwrap()
            .into_inner();
        let spoken = if replay {
            // An old recording: the digits of another challenge.
            let mut other: Vec<u8> = challenge.digits.bytes().collect();
            for d in &mut other {
                *d = b'0' + (*d - b'0' + 5) % 10;
            }
            String::from_utf8(other).unwrap()
        } else {
            challenge.digits.clone()
        };
        let answer = client
            .verify(pb::VerifyRequest {
                subject: "carol".into(),
                transaction: Some(tx("big-2", 100_000)),
                frames: vec![face("img7.jpg")],
                voice: Some(pb::VoiceResponse {
                    challenge_id: challenge.challenge_id,
                    audio: Some(speak(speaker, &spoken, 0)),
                }),
                movement: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_ne!(
            decision(answer.decision),
            pb::Decision::Accept,
            "{speaker} replay={replay}: {answer:?}"
        );
    }
}

#[test]
fn vouchd_check_config_refuses_bad_files_and_accepts_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[daemon]\nsocket_mode = \"0666\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vouchd"))
        .args(["--check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("socket_mode"));
}

#[test]
fn python_client_over_both_transports() {
    let python_ready = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !python_ready {
        // CI installs them and sets this, so that a missing client fails instead of skipping.
        assert!(
            std::env::var_os("VOUCH_REQUIRE_PYTHON_GRPC").is_none(),
            "python3 with grpcio and grpcio-tools is required"
        );
        util::skip("python3 with grpcio and grpcio-tools is not installed");
        return;
    }
    let Some(daemon) = Vouchd::start("") else {
        return;
    };
    let status = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/vouchd_client.py"))
        .arg("--unix")
        .arg(&daemon.unix)
        .arg("--tcp")
        .arg(daemon.tcp.to_string())
        .arg("--certs")
        .arg(daemon.dir.path().join("certs"))
        .arg("--data")
        .arg(util::shared_dir().unwrap().join("data"))
        .status()
        .unwrap();
    assert!(status.success(), "the Python client failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_locks_a_subject_after_repeated_failures() {
    let Some(daemon) = InProcess::start(
        "[decisions.attempts]\nmax_subject_failures = 2\nwindow_seconds = 600\nlockout_seconds = 600\n",
    )
    .await
    else {
        return;
    };
    let mut client = daemon.unix_client().await;
    client
        .enroll(pb::EnrollRequest {
            subject: "frank".into(),
            face: vec![face("img1.jpg"), face("img2.jpg")],
            ..Default::default()
        })
        .await
        .unwrap();
    let attempt = |frame: &str, id: &str| face_payment("frank", frame, id, 450);
    for id in ["l-1", "l-2"] {
        let d = client
            .verify(attempt("img27.jpg", id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(decision(d.decision), pb::Decision::Reject);
    }
    // Now even the genuine customer is locked out, and told for how long.
    let locked = client
        .verify(attempt("img7.jpg", "l-3"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(locked.decision),
        pb::Decision::Locked,
        "{locked:?}"
    );
    assert_eq!(locked.reasons, ["subject_locked"]);
    assert!(locked.retry_after_seconds > 500 && locked.retry_after_seconds <= 600);
    let public = vouch::receipt::parse_public_key(
        &client
            .get_receipt_key(pb::GetReceiptKeyRequest {})
            .await
            .unwrap()
            .into_inner()
            .public_key_hex,
    )
    .unwrap();
    let receipt = vouch::receipt::verify_receipt(&locked.receipt, &public).unwrap();
    assert_eq!(receipt.decision, "locked");
}

/// The one end-to-end run of the real binary: `vouchd` started as a process, an enrollment
/// and a verification over its socket, SIGTERM while that verification is in flight, and a
/// clean exit that let it finish and closed the audit chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_verification_finish() {
    let Some(mut daemon) = Vouchd::start("") else {
        return;
    };
    let listening = (*daemon).clone();
    let mut client = daemon.unix_client().await;
    client
        .enroll(pb::EnrollRequest {
            subject: "gina".into(),
            face: vec![face("img1.jpg")],
            ..Default::default()
        })
        .await
        .unwrap();
    let in_flight = tokio::spawn(async move {
        client
            .verify(pb::VerifyRequest {
                subject: "gina".into(),
                transaction: Some(tx("g-1", 450)),
                frames: vec![face("img7.jpg"), face("img7.jpg"), face("img7.jpg")],
                voice: None,
                movement: None,
            })
            .await
    });
    // The daemon's own word that the request reached its workers, then SIGTERM.
    util::wait_until_async(
        "the verification in flight on the daemon's workers (vouchd_in_flight)",
        Duration::from_secs(60),
        || async {
            let metrics = listening.scrape().await;
            metrics
                .lines()
                .find_map(|l| l.strip_prefix("vouchd_in_flight "))
                .is_some_and(|n| n.trim().parse::<usize>().unwrap() >= 1)
        },
    )
    .await;
    let stopped = tokio::task::spawn_blocking(move || {
        let clean = daemon.stop();
        (clean, daemon)
    });
    let answer = in_flight.await.unwrap().unwrap().into_inner();
    assert_eq!(
        decision(answer.decision),
        pb::Decision::Accept,
        "{answer:?}"
    );
    let (clean, daemon) = stopped.await.unwrap();
    assert!(clean, "vouchd exited uncleanly");
    assert!(!daemon.unix.exists(), "socket removed on shutdown");
    // start, the enrollment, the verification, stop.
    let audit = vouch::audit::verify_file(&daemon.dir.path().join("audit.log")).unwrap();
    assert_eq!(audit.records, 4, "{audit:?}");
}

/// A spoken challenge issued before a restart of the real binary is refused after it: the
/// daemon keeps no outstanding challenge across a restart, so one spent (or not yet spent)
/// can never be redeemed again; the customer is asked for a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_lockouts_and_spent_challenges() {
    let Some(mut daemon) = Vouchd::start(
        "[decisions.attempts]\nmax_subject_failures = 2\nwindow_seconds = 600\nlockout_seconds = 600\n",
    ) else {
        return;
    };
    if util::data_file("fsdd/recordings/0_lucas_5.wav").is_none() {
        return;
    }
    let sequence = |take: u32| pb::Audio {
        data: util::fsdd_sequence_wav("lucas", take).unwrap(),
        format: pb::AudioFormat::Wav as i32,
    };
    let mut client = daemon.unix_client().await;
    for (subject, frames, sequences) in [
        (
            "hana",
            vec![face("img1.jpg")],
            vec![sequence(5), sequence(6)],
        ),
        ("ivan", vec![face("img1.jpg"), face("img2.jpg")], vec![]),
    ] {
        client
            .enroll(pb::EnrollRequest {
                subject: subject.into(),
                face: frames,
                digit_sequences: sequences,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let spoken = |challenge: &pb::ChallengeResponse, id: &str| {
        let phrase = util::fsdd_phrase("lucas", &challenge.digits, 0).unwrap();
        pb::VerifyRequest {
            subject: "hana".into(),
            transaction: Some(tx(id, 100_000)),
            frames: vec![face("img7.jpg")],
            voice: Some(pb::VoiceResponse {
                challenge_id: challenge.challenge_id.clone(),
                audio: Some(pb::Audio {
                    data: util::wav_16k(phrase.samples()),
                    format: pb::AudioFormat::Wav as i32,
                }),
            }),
            movement: None,
        }
    };
    let mut issue = async |id: &str| {
        client
            .challenge(pb::ChallengeRequest {
                subject: "hana".into(),
                transaction: Some(tx(id, 100_000)),
            })
            .await
            .unwrap()
            .into_inner()
    };
    let spent = issue("h-1").await;
    let outstanding = issue("h-2").await;
    assert!(spent.required && outstanding.required);
    // Spent before the restart: its verification runs (and steps up: no movement answer).
    client.verify(spoken(&spent, "h-1")).await.unwrap();
    // Ivan is locked out by two failures before the restart.
    let ivan = |frame: &str, id: &str| face_payment("ivan", frame, id, 450);
    for id in ["i-1", "i-2"] {
        let d = client
            .verify(ivan("img27.jpg", id))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(decision(d.decision), pb::Decision::Reject);
    }
    drop(client);
    assert!(daemon.stop(), "vouchd exited uncleanly");
    daemon.try_restart().unwrap();
    let mut client = daemon.unix_client().await;
    let refused = client.verify(spoken(&spent, "h-1")).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "a challenge spent before the restart: {refused:?}"
    );
    assert!(refused.message().contains("challenge"), "{refused:?}");
    // The outstanding one is still good (its decision is the policy's business).
    client.verify(spoken(&outstanding, "h-2")).await.unwrap();
    let again = client
        .verify(spoken(&outstanding, "h-2"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition);
    let locked = client
        .verify(ivan("img7.jpg", "i-3"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(locked.decision),
        pb::Decision::Locked,
        "{locked:?}"
    );
    assert_eq!(locked.reasons, ["subject_locked"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_mode_reports_scores_and_reflection_lists_the_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    // `extra` lands after the [decisions] table.
    let Some(daemon) = InProcess::start("[dangerous]\nresearch_scores = true").await else {
        return;
    };
    let mut client = daemon.unix_client().await;
    let enrolled = client
        .enroll(pb::EnrollRequest {
            subject: "alice".into(),
            face: vec![face("img2.jpg"), face("img6.jpg")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(decision(enrolled.decision), pb::Decision::Accept);
    let scores = |probe: &str, id: &str| {
        let mut client = client.clone();
        let (probe, id) = (probe.to_string(), id.to_string());
        async move {
            let answer = client
                .verify(pb::VerifyRequest {
                    subject: "alice".into(),
                    transaction: Some(tx(&id, 450)),
                    frames: vec![face(&probe)],
                    voice: None,
                    movement: None,
                })
                .await
                .unwrap()
                .into_inner();
            (
                decision(answer.decision),
                answer.scores.expect("research scores"),
            )
        }
    };
    // The same person scores above the face threshold, someone else below it; the threshold
    // and the liveness score come with them.
    let (genuine, g) = scores("img7.jpg", "t-g").await;
    let (impostor, i) = scores("img27.jpg", "t-i").await;
    assert_eq!(
        (genuine, impostor),
        (pb::Decision::Accept, pb::Decision::Reject)
    );
    let threshold = g.face_threshold.unwrap();
    assert!(g.face.unwrap() > threshold, "{g:?}");
    assert!(i.face.unwrap() < threshold, "{i:?}");
    assert_eq!(i.face_threshold, Some(threshold));
    assert!(g.liveness.is_some() && g.voice.is_none(), "{g:?}");

    // Server reflection names the service and health, so grpcurl-style tools work unaided.
    let mut reflection = ServerReflectionClient::new(daemon.unix_channel().await);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in ["vouch.v1.Vouch", "grpc.health.v1.Health"] {
        assert!(names.contains(&expected), "{names:?}");
    }
}

/// The frames of a response over the wire: PNG, with capture times in microseconds.
/// The frames as a terminal sends them: JPEG (the capture default), each with its time. A
/// 4-movement response in PNG would pass the test daemon's 8 MiB message limit.
fn timed(frames: &[vouch::face::FaceImage], times: &[f64]) -> Vec<pb::TimedFrame> {
    frames
        .iter()
        .zip(times)
        .map(|(frame, t)| pb::TimedFrame {
            image: Some(pb::Image {
                data: vouch::capture::encode_image(frame, vouch::capture::FrameEncoding::default())
                    .unwrap()
                    .to_vec(),
                format: pb::ImageFormat::Jpeg as i32,
            }),
            capture_time_us: (t * 1e6).round() as i64,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_asks_for_and_judges_a_movement_challenge() {
    use vouch::face::motion::HeadMovement::{Left, Right};
    // Genuine responses assembled from real CMU pose photos (grey 128×120, upscaled): the
    // passive models and the sharpness gate are not what this test is about, so they are
    // relaxed; the movement challenge over gRPC is.
    let policy = policy_file(
        "[[tier]]\nname = \"small\"\nmax_amount_minor = 1000\nfactors = [\"face\"]\ntarget_fmr = 0.001\n\
         [[tier]]\nname = \"moving\"\nmax_amount_minor = 100000\nfactors = [\"face\", \"active_liveness\"]\ntarget_fmr = 0.001\n",
    );
    let extra = format!(
        "{}liveness_threshold = 0.0\n[quality]\nmin_sharpness = 1.0\n",
        policy.setting()
    );
    let Some(daemon) = InProcess::start(&extra).await else {
        return;
    };
    let Some(people) = crate::challenge::people() else {
        return;
    };
    let (_, poses) = &people[0];
    let (_, stranger) = &people[1];
    let mut client = daemon.unix_client().await;
    let straight = pb::Image {
        data: crate::challenge::png(&poses[0]),
        format: pb::ImageFormat::Png as i32,
    };
    let enrolled = client
        .enroll(pb::EnrollRequest {
            subject: "mover".into(),
            face: vec![straight.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(enrolled.face_enrolled, "{enrolled:?}");

    // A small payment needs no movement.
    let small = client
        .liveness_challenge(pb::LivenessChallengeRequest {
            subject: "mover".into(),
            transaction: Some(tx("m-small", 500)),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!small.required && small.policy_tier == "small", "{small:?}");

    // One the CMU poses can answer (turns only); the draw is random.
    let mut issuer = client.clone();
    let mut issue = async |id: &str| loop {
        let c = issuer
            .liveness_challenge(pb::LivenessChallengeRequest {
                subject: "mover".into(),
                transaction: Some(tx(id, 20_000)),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(c.required, "{c:?}");
        assert!((2..=4).contains(&c.movements.len()), "{c:?}");
        assert_eq!(c.prompts.len(), c.movements.len());
        assert!(c.movements.windows(2).all(|w| w[0] != w[1]), "{c:?}");
        let turns: Option<Vec<_>> = c
            .movements
            .iter()
            .map(|&m| match pb::Movement::try_from(m) {
                Ok(pb::Movement::Left) => Some(Left),
                Ok(pb::Movement::Right) => Some(Right),
                _ => None,
            })
            .collect();
        if let Some(turns) = turns {
            break (c, turns);
        }
    };
    let verify = |id: &str, movement: Option<pb::MovementResponse>| pb::VerifyRequest {
        subject: "mover".into(),
        transaction: Some(tx(id, 20_000)),
        frames: vec![straight.clone()],
        voice: None,
        movement,
    };

    // Without a response: step up, naming the method to call.
    let stepped = client
        .verify(verify("m-1", None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(stepped.decision),
        pb::Decision::StepUp,
        "{stepped:?}"
    );
    assert_eq!(stepped.reasons, ["active_liveness_required"]);

    // The customer makes the movements asked.
    let (c, turns) = issue("m-1").await;
    let frames = crate::challenge::response(poses, &turns);
    let times = crate::challenge::times(frames.len());
    let answer = |challenge_id: &str| pb::MovementResponse {
        challenge_id: challenge_id.to_string(),
        frames: timed(&frames, &times),
    };
    let accepted = client
        .verify(verify("m-1", Some(answer(&c.challenge_id))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(accepted.decision),
        pb::Decision::Accept,
        "{accepted:?}"
    );
    assert_eq!(accepted.factors_used, ["face", "active_liveness"]);
    // Spent.
    let reused = client
        .verify(verify("m-1", Some(answer(&c.challenge_id))))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), tonic::Code::FailedPrecondition);

    // The same recording against another challenge is refused.
    let replayed = loop {
        let (c2, turns2) = issue("m-2").await;
        if turns2 != turns {
            break c2;
        }
    };
    let refused = client
        .verify(verify("m-2", Some(answer(&replayed.challenge_id))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(refused.decision),
        pb::Decision::Reject,
        "{refused:?}"
    );
    assert_eq!(refused.reasons, ["active_liveness_failed"]);

    // Another person answering the customer's challenge is refused.
    let (c3, turns3) = issue("m-3").await;
    let theirs = crate::challenge::response(stranger, &turns3);
    let refused = client
        .verify(verify(
            "m-3",
            Some(pb::MovementResponse {
                challenge_id: c3.challenge_id,
                frames: timed(&theirs, &crate::challenge::times(theirs.len())),
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        decision(refused.decision),
        pb::Decision::Reject,
        "{refused:?}"
    );

    // A challenge of one transaction does not answer another.
    let (c4, _) = issue("m-4").await;
    let foreign = client
        .verify(verify("m-5", Some(answer(&c4.challenge_id))))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), tonic::Code::FailedPrecondition);

    // Malformed responses: frames out of order, a single frame; typed, and the daemon serves.
    let (c6, _) = issue("m-6").await;
    let mut shuffled = answer(&c6.challenge_id);
    shuffled.frames.swap(3, 4);
    let err = client
        .verify(verify("m-6", Some(shuffled)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let (c7, _) = issue("m-7").await;
    let mut single = answer(&c7.challenge_id);
    single.frames.truncate(1);
    let err = client
        .verify(verify("m-7", Some(single)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    client
        .get_receipt_key(pb::GetReceiptKeyRequest {})
        .await
        .unwrap();
    eprintln!(
        "movement challenge over gRPC: accepted, replay, stranger, foreign and malformed responses refused"
    );
}
