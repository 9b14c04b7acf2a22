//! # vouch
//!
//! A biometric verification engine for payment flows: it decides whether the live person in
//! front of a terminal is the enrolled customer.
//!
//! The [`Engine`] turns bytes into evidence: one detection per frame (YuNet, 5 landmarks),
//! the quality of that face, its passive liveness (MiniFASNet) and its embedding
//! (MobileFaceNet by default), and voiceprints and spoken digits. The
//! [`authenticator::Authenticator`] decides: the risk policy picks the factors and the
//! operating point, [`decision`] holds each factor's evidence to its calibrated threshold,
//! attempts are limited, and every decision is audited and signed. Models are data: a manifest
//! describes each one and its sha256 is verified before loading. ONNX Runtime is loaded at
//! run time from `libonnxruntime.so`.
//!
//! A payment, as a terminal or kiosk app makes it:
//!
//! ```no_run
//! use vouch::authenticator::{
//!     Authenticator, EnrollRequest, Outcome, TransactionContext, VerifyRequest,
//! };
//! use vouch::policy::Transaction;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Defaults, then `VOUCH_*` variables; checked once. Keys, the receipt key and the audit
//! // log live under `.vouch/` by default (`vouch keys generate`, `vouch receipt keygen`).
//! let auth = Authenticator::open(vouch::Config::from_env()?.validate()?)?;
//! let photos = [std::fs::read("alice1.jpg")?, std::fs::read("alice2.jpg")?];
//! let enrolled = auth.enroll(&EnrollRequest {
//!     subject: "alice",
//!     terminal: "till-1",
//!     face: &[&photos[0], &photos[1]],
//!     ..EnrollRequest::default()
//! })?;
//! assert_eq!(enrolled.outcome, Outcome::Accept, "{:?}", enrolled.samples);
//!
//! let frame = std::fs::read("camera-frame.jpg")?;
//! let decision = auth.verify(&VerifyRequest {
//!     subject: "alice",
//!     terminal: "till-1",
//!     transaction: &TransactionContext {
//!         id: "t-981".into(),
//!         nonce: "8f1c".into(),
//!         transaction: Transaction::new(1_250, "EUR", None)?,
//!     },
//!     face_frames: &[&frame],
//!     voice: None,
//!     active: None,
//! })?;
//! match decision.outcome {
//!     Outcome::Accept => println!("paid; receipt {}", decision.receipt),
//!     Outcome::StepUp => println!("this amount needs the spoken passphrase: ask for a challenge"),
//!     Outcome::Retake => println!("capture again: {}", decision.reasons.join(", ")),
//!     other => println!("{}: {}", other.as_str(), decision.reasons.join(", ")),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Logging
//!
//! vouch logs through `tracing`. Log records never carry pixels, audio, embeddings, template
//! bytes or keys.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod attempts;
pub mod audit;
pub mod authenticator;
pub mod capture;
pub mod config;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod decision;
pub mod embedding;
pub mod engine;
pub mod error;
#[cfg(feature = "eval")]
pub mod eval;
pub mod face;
pub mod gallery;
pub mod ledger;
pub mod listing;
pub mod models;
pub mod parallel;
pub mod policy;
pub mod receipt;
#[cfg(feature = "postgres")]
pub mod replica;
pub mod runtime;
pub mod score;
pub mod secure;
pub mod single_use;
mod sqlite_file;
pub mod stats;
pub mod store;
pub mod template;
pub mod vault;
pub mod voice;

pub use config::{Config, ValidConfig};
pub use engine::{Engine, FaceComparison, FaceTemplate};
pub use error::{Error, ErrorKind, Result};

/// Helpers of the unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// Says why a test cannot run (no PostgreSQL server, no models); with
    /// `VOUCH_REQUIRE_MODELS=1` (CI sets it) fails it instead, so that a green run cannot mean
    /// that nothing ran.
    #[track_caller]
    // Only the PostgreSQL tests need something a machine may lack, today.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn skip(reason: &str) {
        assert!(
            std::env::var("VOUCH_REQUIRE_MODELS").map_or(true, |v| v != "1"),
            "VOUCH_REQUIRE_MODELS=1, but this test cannot run: {reason}"
        );
        eprintln!("skipped: {reason}");
    }
}
