//! Microphones through `cpal` (ALSA on Linux), behind the `microphone` feature.
//!
//! cpal streams are not `Send` on every platform, so a [`MicrophoneSource`] keeps its stream on
//! a thread of its own that builds it, plays it and drops it when told to stop. The stream's
//! callback converts the device's samples to `f32` and hands them over through a bounded
//! drop-oldest queue without ever waiting (if the reader happens to hold the queue's lock, the
//! samples are kept and handed over with the next callback). A stream error is reported as
//! [`ErrorKind::Device`] by the next read; over- and underruns the driver recovers from are
//! only counted.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig};

use super::ring::{Pop, Ring};
use super::{AudioChunk, AudioSource, AudioSourceInfo};
use crate::error::{Error, ErrorKind, Result};

/// How long dropping a [`MicrophoneSource`] waits for its thread to stop the stream.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// A microphone the system knows about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MicrophoneDevice {
    /// The backend's id of the device (on Linux the ALSA PCM name, such as `default` or
    /// `hw:CARD=Device,DEV=0`); [`MicrophoneConfig::device`] takes it or the name.
    pub id: String,
    /// Human-readable name (the driver's description).
    pub name: String,
    /// Whether this is the system's default input.
    pub is_default: bool,
}

/// The input devices present now; an empty list (not an error) when there are none.
pub fn list_microphones() -> Result<Vec<MicrophoneDevice>> {
    let host = host()?;
    let default = host.default_input_device().and_then(|d| device_id(&d));
    Ok(input_devices(&host)?
        .filter_map(|d| {
            let id = device_id(&d)?;
            Some(MicrophoneDevice {
                is_default: default.as_deref() == Some(id.as_str()),
                name: device_name(&d).unwrap_or_else(|| id.clone()),
                id,
            })
        })
        .collect())
}

/// How to open a microphone.
#[derive(Clone, Debug, PartialEq)]
pub struct MicrophoneConfig {
    device: Option<String>,
    queue_chunks: usize,
    open_timeout: Duration,
}

impl Default for MicrophoneConfig {
    fn default() -> MicrophoneConfig {
        MicrophoneConfig {
            device: None,
            queue_chunks: 256,
            open_timeout: Duration::from_secs(5),
        }
    }
}

impl MicrophoneConfig {
    /// The defaults below.
    pub fn new() -> MicrophoneConfig {
        MicrophoneConfig::default()
    }

    /// The input device to open, by name (see [`list_microphones`]). By default, the
    /// system's default input.
    pub fn device(mut self, name: impl Into<String>) -> MicrophoneConfig {
        self.device = Some(name.into());
        self
    }

    /// Chunks held for a reader that falls behind; when full the oldest chunk is dropped (see
    /// [`MicrophoneSource::overflows`]). A chunk is one driver period, typically 5–25 ms. By
    /// default, 256.
    pub fn queue_chunks(mut self, chunks: usize) -> MicrophoneConfig {
        self.queue_chunks = chunks.max(1);
        self
    }

    /// How long [`MicrophoneSource::open`] waits for the driver to start the stream. By
    /// default, 5 seconds.
    pub fn open_timeout(mut self, timeout: Duration) -> MicrophoneConfig {
        self.open_timeout = timeout;
        self
    }
}

/// Sound from a microphone, in the device's default configuration (its rate and channel
/// count; samples converted to `f32` in [-1, 1]).
///
/// Dropping the source stops the stream and closes the device.
pub struct MicrophoneSource {
    info: AudioSourceInfo,
    ring: Arc<Ring<AudioChunk>>,
    counters: Arc<Counters>,
    stop: mpsc::Sender<()>,
    /// Disconnected when the stream's thread has ended.
    finished: mpsc::Receiver<()>,
}

#[derive(Default)]
struct Counters {
    /// Chunks the callback had to discard before they reached the queue.
    lost: AtomicU64,
    /// Over- and underruns reported by the driver (recovered by cpal).
    xruns: AtomicU64,
}

impl fmt::Debug for MicrophoneSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MicrophoneSource")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl MicrophoneSource {
    /// Opens the configured (or default) input device in its default configuration and starts
    /// recording.
    ///
    /// Fails with [`ErrorKind::Device`] when there is no input device ("no microphone found;
    /// connected devices: none"), when none has the configured name (the message lists the
    /// present ones), when the device's default sample format is not one vouch converts, or
    /// when the driver refuses the stream or does not start it within the open timeout.
    pub fn open(config: &MicrophoneConfig) -> Result<MicrophoneSource> {
        let ring = Arc::new(Ring::new(config.queue_chunks));
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = mpsc::channel::<()>();
        let (opened_tx, opened_rx) = mpsc::sync_channel(1);
        let (finished_tx, finished) = mpsc::channel::<()>();
        let thread = {
            let device = config.device.clone();
            let (ring, counters) = (Arc::clone(&ring), Arc::clone(&counters));
            std::thread::Builder::new()
                .name("vouch-microphone".to_string())
                .spawn(move || {
                    let _finished = finished_tx;
                    match start_stream(device.as_deref(), &ring, &counters) {
                        Ok((stream, info)) => {
                            if opened_tx.send(Ok(info)).is_ok() {
                                // Until the source says stop, or is dropped.
                                let _ = stop_rx.recv();
                            }
                            drop(stream);
                        }
                        Err(e) => {
                            let _ = opened_tx.send(Err(e));
                        }
                    }
                })
        };
        if let Err(e) = thread {
            return Err(
                Error::new(ErrorKind::Device, "could not start a microphone thread").with_source(e),
            );
        }
        match opened_rx.recv_timeout(config.open_timeout) {
            Ok(Ok(info)) => Ok(MicrophoneSource {
                info,
                ring,
                counters,
                stop,
                finished,
            }),
            Ok(Err(e)) => Err(e),
            // Dropping `stop` makes the thread close the stream once it has opened.
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::new(
                ErrorKind::Device,
                format!(
                    "the microphone did not start within {:?}",
                    config.open_timeout
                ),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::new(
                ErrorKind::Device,
                "the microphone failed while opening, inside the audio driver bindings",
            )),
        }
    }

    /// Chunks of sound lost so far because the reader fell behind.
    pub fn overflows(&self) -> u64 {
        self.ring.dropped() + self.counters.lost.load(Ordering::Relaxed)
    }

    /// Over- and underruns the driver reported and recovered from (each may be a short gap).
    pub fn xruns(&self) -> u64 {
        self.counters.xruns.load(Ordering::Relaxed)
    }
}

impl AudioSource for MicrophoneSource {
    fn info(&self) -> AudioSourceInfo {
        self.info.clone()
    }

    /// The oldest queued chunk; never `Ok(None)` (a microphone has no end).
    fn next_chunk(&mut self, timeout: Duration) -> Result<Option<AudioChunk>> {
        match self.ring.pop(timeout) {
            Pop::Item(chunk) => Ok(Some(chunk)),
            Pop::Failed(e) => Err(e),
            Pop::TimedOut => Err(Error::new(
                ErrorKind::CaptureTimeout,
                format!(
                    "microphone {:?} delivered no sound within {timeout:?}; it may be stalled \
                     or unplugged",
                    self.info.name
                ),
            )),
        }
    }
}

impl Drop for MicrophoneSource {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        // Returns as soon as the thread has dropped the stream (its sender goes with it).
        let _ = self.finished.recv_timeout(STOP_WAIT);
    }
}

/// The platform's audio host (ALSA on Linux), as an error rather than a panic when missing.
fn host() -> Result<cpal::Host> {
    let id = cpal::available_hosts().into_iter().next().ok_or_else(|| {
        Error::new(
            ErrorKind::Device,
            "no audio system is available on this platform",
        )
    })?;
    cpal::host_from_id(id).map_err(|e| {
        Error::new(
            ErrorKind::Device,
            format!("the audio system is unavailable: {e}"),
        )
        .with_source(e)
    })
}

fn input_devices(host: &cpal::Host) -> Result<impl Iterator<Item = cpal::Device>> {
    host.input_devices().map_err(|e| {
        Error::new(
            ErrorKind::Device,
            format!("listing microphones failed: {e}"),
        )
        .with_source(e)
    })
}

/// The present input devices for a message: `"id" (name), …` or `none`.
fn describe_present() -> String {
    let present: Vec<String> = list_microphones()
        .map(|list| {
            list.into_iter()
                .map(|m| format!("{:?} ({})", m.id, m.name))
                .collect()
        })
        .unwrap_or_default();
    if present.is_empty() {
        "none".to_string()
    } else {
        present.join(", ")
    }
}

/// A device's backend id (without the host prefix), or `None` when it has gone away.
fn device_id(device: &cpal::Device) -> Option<String> {
    device.id().ok().map(|id| id.id().to_string())
}

/// A device's name, or `None` when it has gone away. (cpal's `Display` for a device fails,
/// which would panic in `to_string`, when the device is gone.)
fn device_name(device: &cpal::Device) -> Option<String> {
    device.description().ok().map(|d| d.name().to_string())
}

fn device_error(name: &str, doing: &str, e: cpal::Error) -> Error {
    Error::new(
        ErrorKind::Device,
        format!("microphone {name:?}: {doing} failed: {e}"),
    )
    .with_source(e)
}

/// Runs on the stream's thread: finds the device, builds and plays the stream.
fn start_stream(
    wanted: Option<&str>,
    ring: &Arc<Ring<AudioChunk>>,
    counters: &Arc<Counters>,
) -> Result<(cpal::Stream, AudioSourceInfo)> {
    let host = host()?;
    let device = match wanted {
        None => host.default_input_device(),
        Some(wanted) => input_devices(&host)?.find(|d| {
            device_id(d).as_deref() == Some(wanted) || device_name(d).as_deref() == Some(wanted)
        }),
    };
    let Some(device) = device else {
        let what = match wanted {
            None => "no microphone found".to_string(),
            Some(name) => format!("no microphone named {name:?}"),
        };
        return Err(Error::new(
            ErrorKind::Device,
            format!("{what}; connected devices: {}", describe_present()),
        ));
    };
    let name = device_name(&device).unwrap_or_else(|| "default".to_string());
    let supported = device.default_input_config().map_err(|e| {
        // Typically ALSA's `default` on a machine without a sound card.
        let doing = match wanted {
            None => format!(
                "the default input is not usable (connected devices: {}); reading its configuration",
                describe_present()
            ),
            Some(_) => "reading the default input configuration".to_string(),
        };
        device_error(&name, &doing, e)
    })?;
    let config = supported.config();
    let info = AudioSourceInfo {
        name: name.clone(),
        sample_rate: config.sample_rate,
        channels: config.channels,
    };
    let stream = match supported.sample_format() {
        SampleFormat::F32 => build::<f32>(&device, &config, ring, counters),
        SampleFormat::F64 => build::<f64>(&device, &config, ring, counters),
        SampleFormat::I8 => build::<i8>(&device, &config, ring, counters),
        SampleFormat::I16 => build::<i16>(&device, &config, ring, counters),
        SampleFormat::I24 => build::<cpal::I24>(&device, &config, ring, counters),
        SampleFormat::I32 => build::<i32>(&device, &config, ring, counters),
        SampleFormat::U8 => build::<u8>(&device, &config, ring, counters),
        SampleFormat::U16 => build::<u16>(&device, &config, ring, counters),
        SampleFormat::U24 => build::<cpal::U24>(&device, &config, ring, counters),
        SampleFormat::U32 => build::<u32>(&device, &config, ring, counters),
        other => {
            return Err(Error::new(
                ErrorKind::Device,
                format!(
                    "microphone {name:?} delivers {other} samples, which vouch does not convert"
                ),
            ));
        }
    }
    .map_err(|e| device_error(&name, "opening the input stream", e))?;
    stream
        .play()
        .map_err(|e| device_error(&name, "starting the input stream", e))?;
    tracing::debug!(microphone = %name, rate = info.sample_rate, channels = info.channels, "microphone streaming");
    Ok((stream, info))
}

fn build<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    ring: &Arc<Ring<AudioChunk>>,
    counters: &Arc<Counters>,
) -> std::result::Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let (channels, sample_rate) = (config.channels, config.sample_rate);
    // Samples not yet handed over (only while the reader held the queue's lock), at most about
    // one second's worth; beyond that they are counted as lost.
    let max_pending = (sample_rate as usize).max(1) * usize::from(channels.max(1));
    let mut pending: Vec<f32> = Vec::new();
    let data_ring = Arc::clone(ring);
    let data_counters = Arc::clone(counters);
    let error_ring = Arc::clone(ring);
    let error_counters = Arc::clone(counters);
    device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _: &cpal::InputCallbackInfo| {
            pending.extend(data.iter().map(|&s| to_unit(s.to_sample::<f32>())));
            let chunk = AudioChunk {
                samples: std::mem::take(&mut pending),
                channels,
                sample_rate,
            };
            if let Err(mut chunk) = data_ring.try_push(chunk) {
                pending = std::mem::take(&mut chunk.samples);
                if pending.len() > max_pending {
                    pending.clear();
                    data_counters.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        },
        move |e: cpal::Error| {
            if e.kind() == cpal::ErrorKind::Xrun {
                error_counters.xruns.fetch_add(1, Ordering::Relaxed);
            } else {
                error_ring.fail(
                    ErrorKind::Device,
                    format!("the microphone failed (unplugged?): {e}"),
                );
            }
        },
        None,
    )
}

/// A sample in [-1, 1]; a non-finite one (a broken driver) becomes silence.
fn to_unit(sample: f32) -> f32 {
    if sample.is_finite() {
        sample.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpal::Sample;

    #[test]
    fn samples_are_converted_into_the_unit_range() {
        assert_eq!(to_unit(i16::MIN.to_sample::<f32>()), -1.0);
        assert_eq!(to_unit(0i16.to_sample::<f32>()), 0.0);
        assert_eq!(to_unit(32768u16.to_sample::<f32>()), 0.0);
        assert_eq!(to_unit(0u16.to_sample::<f32>()), -1.0);
        assert_eq!(to_unit(1.5), 1.0);
        assert_eq!(to_unit(f32::NAN), 0.0);
        assert_eq!(to_unit(f32::NEG_INFINITY), 0.0);
    }
}
