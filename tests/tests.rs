//! vouch's integration tests: one binary, one module per area. Fault injection (SIGKILL,
//! file-size limits, database restarts) is a binary of its own, `tests/faults/`.
//!
//! Tests that need the real models, data or ONNX Runtime find them through `VOUCH_SHARED` and
//! `VOUCH_ORT_LIB` (or their defaults) and skip with a printed reason when they are absent.

// Test helpers fail loudly: a panic is the right outcome for a broken fixture.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;
// The daemons the tests run, shared with the faults binary (which uses other parts of it).
#[allow(dead_code)]
mod harness;

mod capture;
mod catalogue;
mod challenge;
mod cli;
mod daemon;
mod deploy;
#[cfg(all(feature = "camera", feature = "microphone"))]
mod devices;
mod eval;
mod face;
mod formats;
mod fusion;
mod kiosk;
mod liveness;
mod metrics;
mod models;
mod presentation;
mod replica;
mod secrets;
mod store;
mod voice;
