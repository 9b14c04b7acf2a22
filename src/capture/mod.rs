//! Capture for kiosk apps: frames from a camera and sound from a microphone, behind two traits
//! so that every capture path also runs from files (these machines have neither device, and a
//! researcher can replay a recorded session).
//!
//! - [`FrameSource`]: a stream of frames (camera with the `camera` feature, or a folder or
//!   numbered image sequence played at a frame rate).
//! - [`AudioSource`]: a stream of device-sized chunks at the device's rate and channel count
//!   (microphone with the `microphone` feature, or a WAV/FLAC file at real-time pace).
//!
//! Sources never decide anything: frame selection and audio endpointing turn their streams into
//! the inputs of [`crate::authenticator::Authenticator`]:
//!
//! - [`select_frames`] reads frames within a budget and returns the best frames for matching
//!   and a run of consecutive frames for liveness ([`Selection::encode_run`] gives the bytes),
//!   or [`crate::ErrorKind::NoUsableCapture`] with the reasons counted.
//! - [`capture_movements`] films the answer to a movement challenge over a timed script
//!   (face the camera, then each movement), each frame with its capture time.
//! - [`capture_utterance`] converts any device format to 16 kHz mono ([`ToMono16k`]), holds it
//!   in a bounded [`SampleRing`], and endpoints one utterance with the VAD
//!   ([`Utterance::wav`] gives the bytes).
//!
//! Nothing here logs pixels or audio; buffers holding them are wiped on drop.

#[cfg(feature = "camera")]
pub mod camera;
pub mod encode;
pub mod files;
#[cfg(feature = "microphone")]
pub mod microphone;
pub mod movements;
#[cfg(any(feature = "camera", feature = "microphone"))]
mod ring;
pub mod sample_ring;
pub mod select;
pub mod takes;
pub mod utterance;

pub use encode::{FrameEncoding, encode_image};
pub use files::{AudioFileSource, ImageFolderSource};
pub use movements::{MovementCapture, MovementCaptureConfig, MovementProgress, capture_movements};
pub use sample_ring::SampleRing;
pub use select::{SelectConfig, SelectProgress, SelectedFrame, Selection, Tally, select_frames};
pub use takes::RecordedDigits;
pub use utterance::{
    AudioCaptureConfig, AudioCaptureStats, AudioWarning, Ending, Utterance, capture_utterance,
};
// DSP that capture uses, kept at the paths callers know.
pub use crate::voice::stream::ToMono16k;
pub use crate::voice::wav::wav_pcm16;

use std::time::Duration;

use crate::error::Result;
use crate::face::FaceImage;

/// One captured frame.
#[derive(Debug)]
pub struct Frame {
    /// The pixels (RGB).
    pub image: FaceImage,
    /// Position in the stream, from 0.
    pub index: u64,
    /// Time since the source started delivering frames.
    pub timestamp: Duration,
}

/// What a frame source delivers.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameSourceInfo {
    /// Human-readable name (device name or path).
    pub name: String,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Nominal frames per second.
    pub fps: f32,
}

/// A stream of frames.
pub trait FrameSource: Send {
    /// What this source delivers.
    fn info(&self) -> FrameSourceInfo;

    /// The next frame, waiting at most `timeout`: `Ok(None)` at the end of a finite stream;
    /// [`crate::ErrorKind::CaptureTimeout`] when no frame came in time (a stalled or unplugged
    /// device); [`crate::ErrorKind::Device`] when the device failed.
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame>>;
}

/// One chunk of sound as the device delivers it. The customer's voice: wiped on drop,
/// redacted in `Debug`.
#[derive(Clone, PartialEq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct AudioChunk {
    /// Samples in [-1, 1], interleaved by channel.
    pub samples: Vec<f32>,
    /// Channels interleaved in `samples`.
    pub channels: u16,
    /// Samples per second per channel.
    pub sample_rate: u32,
}

impl std::fmt::Debug for AudioChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AudioChunk({} samples, {} channels at {} Hz, redacted)",
            self.samples.len(),
            self.channels,
            self.sample_rate
        )
    }
}

// The converter lives in `voice`, which knows nothing of capture; its entry point for a
// device's chunks is here, beside the chunk.
impl ToMono16k {
    /// Converts a chunk; returns the 16 kHz samples that became final (possibly none).
    /// Refused ([`crate::ErrorKind::Device`]): a chunk of another rate or channel count than the
    /// converter's, a partial frame, non-finite samples.
    pub fn push(&mut self, chunk: &AudioChunk) -> Result<Vec<f32>> {
        self.push_interleaved(&chunk.samples, chunk.channels, chunk.sample_rate)
    }
}

/// What an audio source delivers.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioSourceInfo {
    /// Human-readable name (device name or path).
    pub name: String,
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u16,
}

/// A stream of sound.
pub trait AudioSource: Send {
    /// What this source delivers.
    fn info(&self) -> AudioSourceInfo;

    /// The next chunk, waiting at most `timeout`: `Ok(None)` at the end of a finite stream;
    /// [`crate::ErrorKind::CaptureTimeout`] when nothing came in time;
    /// [`crate::ErrorKind::Device`] when the device failed.
    fn next_chunk(&mut self, timeout: Duration) -> Result<Option<AudioChunk>>;
}
