//! # vouch
//!
//! A biometric verification engine for payment flows: it decides whether the live person in
//! front of a terminal is the enrolled customer.
//!
//! The face pipeline detects a face with 5 landmarks (YuNet), aligns it onto the ArcFace
//! 112×112 template, embeds it (MobileFaceNet by default) and compares embeddings by cosine.
//! Models are data: a manifest describes each one and its sha256 is verified before loading.
//! ONNX Runtime is loaded at run time from `libonnxruntime.so`.
//!
//! ```no_run
//! use vouch::{Config, Engine};
//!
//! # fn main() -> vouch::Result<()> {
//! let engine = Engine::new(Config::from_env()?)?;
//! let enrolled = engine.enroll_face("alice", &[&std::fs::read("alice1.jpg").unwrap()])?;
//! let outcome = engine.verify_face(&enrolled, &std::fs::read("probe.jpg").unwrap())?;
//! println!("match: {} (score {:.3})", outcome.is_match, outcome.score);
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
pub mod daemon;
pub mod engine;
pub mod error;
pub mod eval;
pub mod face;
pub mod models;
pub mod policy;
pub mod receipt;
pub mod runtime;
pub mod score;
pub mod store;
pub mod template;
pub mod vault;
pub mod voice;

pub use config::Config;
pub use engine::{Engine, FaceMatch, FaceTemplate};
pub use error::{Error, ErrorKind, Result};
