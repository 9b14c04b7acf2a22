//! The fused face score (#20): templates by every configured embedder, the calibrated fusion
//! on the tiers that ask for it, the embedder alone elsewhere, templates enrolled before the
//! fused embedders, and tampered templates of either model.

use vouch::ErrorKind;
use vouch::authenticator::{
    Authenticator, EnrollRequest, Outcome, TransactionContext, VerifyRequest,
};
use vouch::policy::Transaction;

use crate::util;

/// A small tier (the embedder alone) up to 50.00 and a fusing tier above, face and liveness
/// only, no velocity rules.
const POLICY: &str = r#"
version = 1

[[tier]]
name = "small"
max_amount_minor = 5000
factors = ["face", "liveness"]
target_fmr = 0.001

[[tier]]
name = "fused"
factors = ["face", "liveness"]
target_fmr = 0.0001
face_fusion = true
"#;

const SMALL: u64 = 1_250;
const FUSED: u64 = 90_000;

fn transaction(id: &str, amount_minor: u64) -> TransactionContext {
    TransactionContext {
        id: id.into(),
        nonce: format!("n-{id}"),
        transaction: Transaction::new(amount_minor, "EUR", None).unwrap(),
    }
}

/// An authenticator over `dir` with the fusing policy and research scores on; `fused`
/// configures SFace as the fused embedder (the default) or nothing (a deployment from before).
fn open(dir: &std::path::Path, fused: bool) -> Option<Authenticator> {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    util::authenticator(dir, |config| {
        config.decisions.policy = Some(policy.clone());
        config.dangerous().set_research_scores(true);
        if !fused {
            // Its own receipt key: the test opens another authenticator over `dir` later.
            config.decisions.receipt_key = dir.join("receipt-before.key");
            config.face.fused_embedders.clear();
            // Without a model to fuse with, a fusing tier is refused at open.
            let small_only = policy.with_file_name("small-only.toml");
            std::fs::write(&small_only, POLICY.replace("face_fusion = true", "")).unwrap();
            config.decisions.policy = Some(small_only);
        }
    })
}

fn enroll(auth: &Authenticator, subject: &str, photos: &[&str]) -> Vec<i64> {
    let bytes: Vec<Vec<u8>> = photos.iter().map(|p| util::deepface(p).unwrap()).collect();
    let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let report = auth
        .enroll(&EnrollRequest {
            subject,
            terminal: "till-1",
            face: &refs,
            ..EnrollRequest::default()
        })
        .unwrap();
    assert_eq!(report.outcome, Outcome::Accept, "{report:?}");
    let listed = auth.vault().describe(subject).unwrap();
    listed.iter().map(|(id, _)| *id).collect()
}

fn pay(
    auth: &Authenticator,
    subject: &str,
    photo: &str,
    id: &str,
    amount_minor: u64,
) -> vouch::Result<vouch::authenticator::Decision> {
    let frame = util::deepface(photo).unwrap();
    auth.verify(&VerifyRequest {
        subject,
        terminal: "till-1",
        transaction: &transaction(id, amount_minor),
        face_frames: &[&frame],
        voice: None,
        active: None,
    })
}

fn have_photos() -> bool {
    ["img1.jpg", "img2.jpg", "img7.jpg", "img17.jpg"]
        .iter()
        .all(|p| util::deepface(p).is_some())
}

#[test]
fn a_fusing_tier_uses_both_models_and_the_small_tier_the_embedder_alone() {
    if !have_photos() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(auth) = open(dir.path(), true) else {
        return;
    };
    let templates = enroll(&auth, "alice", &["img1.jpg", "img2.jpg"]);
    assert_eq!(templates.len(), 2, "one template per embedder");
    let face = auth.engine().face();
    let sface = face.fused_embedders()[0].spec().id();
    let models: Vec<String> = auth.engine().fused_face_models();

    // The customer (id01: img1, img2, img7) passes both tiers; the small one without SFace.
    let small = pay(&auth, "alice", "img7.jpg", "s-1", SMALL).unwrap();
    assert_eq!(small.outcome, Outcome::Accept, "{small:?}");
    assert_eq!(small.tier.as_deref(), Some("small"));
    let receipt =
        vouch::receipt::verify_receipt(&small.receipt, &auth.signer().verifying_key()).unwrap();
    assert!(!receipt.models.contains(&sface), "{:?}", receipt.models);
    let small_scores = small.scores.clone().unwrap();

    let fused = pay(&auth, "alice", "img7.jpg", "f-1", FUSED).unwrap();
    assert_eq!(fused.outcome, Outcome::Accept, "{fused:?}");
    assert_eq!(fused.tier.as_deref(), Some("fused"));
    let receipt =
        vouch::receipt::verify_receipt(&fused.receipt, &auth.signer().verifying_key()).unwrap();
    assert!(receipt.models.contains(&sface), "{:?}", receipt.models);
    // The fused score is on the fusion's scale (log-odds), not a cosine, and its threshold is
    // the fused calibration's.
    let fused_scores = fused.scores.clone().unwrap();
    let calibration = auth
        .calibrations()
        .get(&vouch::score::fused_model_id(&models))
        .unwrap();
    assert_eq!(
        fused_scores.face_threshold,
        Some(calibration.threshold_at(1e-4).unwrap())
    );
    assert_ne!(fused_scores.face, small_scores.face);
    assert!(fused_scores.face.unwrap() > 1.0, "{fused_scores:?}");

    // Another person is refused on both.
    for (id, amount) in [("s-2", SMALL), ("f-2", FUSED)] {
        let other = pay(&auth, "alice", "img17.jpg", id, amount).unwrap();
        assert_eq!(other.outcome, Outcome::Reject, "{id}: {other:?}");
        assert!(
            other.reasons.iter().any(|r| r == "face_mismatch"),
            "{id}: {other:?}"
        );
    }
}

#[test]
fn a_template_from_before_the_fusion_verifies_and_asks_for_re_enrollment_only_where_fused() {
    if !have_photos() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let Some(before) = open(dir.path(), false) else {
            return;
        };
        assert_eq!(enroll(&before, "bob", &["img1.jpg", "img2.jpg"]).len(), 1);
    }
    let after = open(dir.path(), true).unwrap();
    let small = pay(&after, "bob", "img7.jpg", "s-1", SMALL).unwrap();
    assert_eq!(small.outcome, Outcome::Accept, "{small:?}");
    let refused = pay(&after, "bob", "img7.jpg", "f-1", FUSED).unwrap_err();
    assert_eq!(
        refused.kind(),
        ErrorKind::TemplateModelMismatch,
        "{refused}"
    );
    assert!(refused.message().contains("re-enrollment"), "{refused}");
    // Re-enrolling adds the missing model's template, and the fused tier verifies.
    assert_eq!(enroll(&after, "bob", &["img1.jpg", "img2.jpg"]).len(), 3);
    let fused = pay(&after, "bob", "img7.jpg", "f-2", FUSED).unwrap();
    assert_eq!(fused.outcome, Outcome::Accept, "{fused:?}");
}

/// Flips one ciphertext bit of the stored template `id`.
fn flip_a_bit(db: &std::path::Path, id: i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut blob: Vec<u8> = conn
        .query_row("SELECT blob FROM templates WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    let at = blob.len() - 20;
    blob[at] ^= 0x01;
    conn.execute(
        "UPDATE templates SET blob = ?1 WHERE id = ?2",
        rusqlite::params![blob, id],
    )
    .unwrap();
}

#[test]
fn a_bit_flipped_in_either_models_template_fails_authentication() {
    if !have_photos() {
        return;
    }
    for (k, model) in ["embedder", "fused embedder"].iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let Some(auth) = open(dir.path(), true) else {
            return;
        };
        enroll(&auth, "carol", &["img1.jpg", "img2.jpg"]);
        let listed = auth.vault().describe("carol").unwrap();
        let wanted = auth.engine().fused_face_models()[k].clone();
        let id = listed
            .iter()
            .find(|(_, info)| info.header.model_id == wanted)
            .map(|(id, _)| *id)
            .unwrap();
        flip_a_bit(&dir.path().join("templates.db"), id);
        let failed = pay(&auth, "carol", "img7.jpg", &format!("f-{k}"), FUSED).unwrap_err();
        assert_eq!(failed.kind(), ErrorKind::TemplateAuth, "{model}: {failed}");
        // The embedder's template is also the small tier's.
        let small = pay(&auth, "carol", "img7.jpg", &format!("s-{k}"), SMALL);
        if k == 0 {
            assert_eq!(
                small.unwrap_err().kind(),
                ErrorKind::TemplateAuth,
                "{model}"
            );
        } else {
            assert_eq!(small.unwrap().outcome, Outcome::Accept, "{model}");
        }
    }
}

#[test]
fn a_fusing_tier_without_a_model_to_fuse_and_a_model_fused_with_its_own_copy_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let Some(config) = util::deployment(dir.path(), |config| {
        config.decisions.policy = Some(policy.clone());
    }) else {
        return;
    };

    let mut alone = config.clone();
    alone.face.fused_embedders.clear();
    let e = Authenticator::open(alone.validate().unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("face_fusion"), "{e}");

    // SFace fused with its own int8 copy: one embedding space, counted twice.
    let mut twice = config;
    twice.face.embedder = "sface".into();
    twice.face.fused_embedders = vec!["sface_int8".into()];
    let e = vouch::Engine::new(twice.validate().unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("face.fused_embedders"), "{e}");
}
