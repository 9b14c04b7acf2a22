//! Cameras through `nokhwa` (V4L2 on Linux), behind the `camera` feature.
//!
//! [`CameraSource`] owns a capture thread: the thread opens the camera, reads frames, turns
//! them into RGB [`FaceImage`]s and queues them in a small drop-oldest queue, so a reader that
//! falls behind gets the freshest frames. [`FrameSource::next_frame`] waits on that queue, never
//! on the driver, so it returns within its timeout even when the camera stalls or is unplugged
//! mid-stream (a `CaptureTimeout`, or a `Device` error once the driver reports the failure).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use nokhwa::Camera;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};

use super::ring::{Pop, Ring};
use super::{Frame, FrameSource, FrameSourceInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::face::FaceImage;
use crate::face::image::LimitsConfig;

/// Pixel formats vouch converts to RGB itself, in order of preference at equal size and rate
/// (uncompressed first: no JPEG artefacts on the face).
const FORMATS: &[FrameFormat] = &[
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
    FrameFormat::MJPEG,
    FrameFormat::GRAY,
];

/// Consecutive undecodable frames tolerated (MJPEG cameras often send a few broken frames
/// right after the stream starts) before the camera is reported as failed.
const MAX_BAD_FRAMES: u32 = 30;

/// How long dropping a [`CameraSource`] waits for its capture thread to close the camera.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// A camera the system knows about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraDevice {
    /// The backend's index (on Linux, N in `/dev/videoN`).
    pub index: u32,
    /// Human-readable name (the driver's card name).
    pub name: String,
    /// Backend details (on Linux, the device node).
    pub description: String,
}

/// The cameras connected now; an empty list (not an error) when there are none.
///
/// On Linux this lists every V4L2 video node, some of which (UVC metadata nodes) cannot
/// deliver frames; opening one of those fails with [`ErrorKind::Device`].
pub fn list_cameras() -> Result<Vec<CameraDevice>> {
    let found = nokhwa::query(ApiBackend::Auto).map_err(|e| {
        Error::new(ErrorKind::Device, format!("listing cameras failed: {e}")).with_source(e)
    })?;
    let mut cameras: Vec<CameraDevice> = found
        .iter()
        .filter_map(|info| {
            Some(CameraDevice {
                index: info.index().as_index().ok()?,
                name: info.human_name(),
                description: info.description().to_string(),
            })
        })
        .collect();
    cameras.sort_by_key(|c| c.index);
    Ok(cameras)
}

/// Which camera to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CameraSelector {
    /// The first camera listed (lowest index) that opens.
    First,
    /// The camera with this backend index (see [`CameraDevice::index`]).
    Index(u32),
    /// The first camera whose name is exactly this.
    Name(String),
}

impl fmt::Display for CameraSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraSelector::First => f.write_str("the first camera"),
            CameraSelector::Index(i) => write!(f, "camera {i}"),
            CameraSelector::Name(name) => write!(f, "camera {name:?}"),
        }
    }
}

/// How to open a camera: which one, and the format to ask it for.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraConfig {
    device: CameraSelector,
    width: u32,
    height: u32,
    fps: u32,
    queue_frames: usize,
    open_timeout: Duration,
    limits: LimitsConfig,
}

impl Default for CameraConfig {
    fn default() -> CameraConfig {
        CameraConfig {
            device: CameraSelector::First,
            width: 640,
            height: 480,
            fps: 30,
            queue_frames: 4,
            open_timeout: Duration::from_secs(5),
            limits: LimitsConfig::default(),
        }
    }
}

impl CameraConfig {
    /// The defaults below.
    pub fn new() -> CameraConfig {
        CameraConfig::default()
    }

    /// The camera to open. By default, [`CameraSelector::First`].
    pub fn device(mut self, device: CameraSelector) -> CameraConfig {
        self.device = device;
        self
    }

    /// The frame size to ask for; the camera delivers the nearest size it supports (see
    /// [`FrameSource::info`]). By default, 640×480.
    pub fn resolution(mut self, width: u32, height: u32) -> CameraConfig {
        self.width = width;
        self.height = height;
        self
    }

    /// The frame rate to ask for; the camera delivers the nearest rate it supports at the
    /// chosen size. By default, 30.
    pub fn fps(mut self, fps: u32) -> CameraConfig {
        self.fps = fps;
        self
    }

    /// Frames held for a reader that falls behind; when full the oldest frame is dropped (see
    /// [`CameraSource::dropped_frames`]). By default, 4.
    pub fn queue_frames(mut self, frames: usize) -> CameraConfig {
        self.queue_frames = frames.max(1);
        self
    }

    /// How long [`CameraSource::open`] waits for the driver to open the camera. By default,
    /// 5 seconds.
    pub fn open_timeout(mut self, timeout: Duration) -> CameraConfig {
        self.open_timeout = timeout;
        self
    }

    /// Limits applied when decoding MJPEG frames. By default, [`LimitsConfig::default`].
    pub fn limits(mut self, limits: LimitsConfig) -> CameraConfig {
        self.limits = limits;
        self
    }
}

/// Frames from a camera, read on a capture thread of its own.
///
/// Frame indices count every frame the camera delivered, so frames dropped because the reader
/// fell behind show up as gaps; timestamps are measured from the first frame. Dropping the
/// source stops the stream and closes the camera (on the capture thread; if the driver is stuck,
/// drop waits one second and leaves the thread to finish on its own).
pub struct CameraSource {
    info: FrameSourceInfo,
    ring: Arc<Ring<Frame>>,
    stop: Arc<AtomicBool>,
    /// Disconnected when the capture thread has ended.
    finished: mpsc::Receiver<()>,
}

impl fmt::Debug for CameraSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraSource")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl CameraSource {
    /// Opens the camera `config` selects, asks it for the nearest format to the requested size
    /// and rate, and starts capturing.
    ///
    /// Fails with [`ErrorKind::Device`] when no camera is connected ("no camera found;
    /// connected devices: none"), when none matches the selector (the message lists the
    /// connected ones), or when the driver refuses it (busy, permissions, no usable format),
    /// and when it has not opened within the configured open timeout.
    pub fn open(config: &CameraConfig) -> Result<CameraSource> {
        let cameras = list_cameras()?;
        let chosen: Vec<CameraDevice> = match &config.device {
            CameraSelector::First => cameras.clone(),
            CameraSelector::Index(i) => cameras.iter().filter(|c| c.index == *i).cloned().collect(),
            CameraSelector::Name(name) => cameras
                .iter()
                .filter(|c| &c.name == name)
                .cloned()
                .collect(),
        };
        if cameras.is_empty() {
            return Err(Error::new(
                ErrorKind::Device,
                "no camera found; connected devices: none",
            ));
        }
        let mut failures = Vec::new();
        for camera in &chosen {
            match CameraSource::start(camera, config) {
                Ok(source) => return Ok(source),
                // The first working camera: try the next node (UVC metadata nodes cannot stream).
                Err(e) if config.device == CameraSelector::First => {
                    failures.push(format!("{}: {}", camera.index, e.message()));
                }
                Err(e) => return Err(e),
            }
        }
        let message = if chosen.is_empty() {
            format!(
                "no {} found; connected devices: {}",
                config.device,
                describe(&cameras)
            )
        } else {
            format!("no camera could be opened ({})", failures.join("; "))
        };
        Err(Error::new(ErrorKind::Device, message))
    }

    fn start(camera: &CameraDevice, config: &CameraConfig) -> Result<CameraSource> {
        let ring = Arc::new(Ring::new(config.queue_frames));
        let stop = Arc::new(AtomicBool::new(false));
        let (opened_tx, opened_rx) = mpsc::sync_channel(1);
        let (finished_tx, finished) = mpsc::channel::<()>();
        let thread = {
            let (camera, config) = (camera.clone(), config.clone());
            let (ring, stop) = (Arc::clone(&ring), Arc::clone(&stop));
            std::thread::Builder::new()
                .name(format!("vouch-camera-{}", camera.index))
                .spawn(move || {
                    let _finished = finished_tx;
                    let run = catch_unwind(AssertUnwindSafe(|| {
                        capture(&camera, &config, &ring, &stop, opened_tx)
                    }));
                    if run.is_err() {
                        ring.fail(
                            ErrorKind::Device,
                            format!(
                                "the capture thread of camera {:?} failed inside the camera \
                                 driver bindings; reopen the camera",
                                camera.name
                            ),
                        );
                    }
                })
        };
        if let Err(e) = thread {
            return Err(
                Error::new(ErrorKind::Device, "could not start a camera capture thread")
                    .with_source(e),
            );
        }
        let source = |info| CameraSource {
            info,
            ring: Arc::clone(&ring),
            stop: Arc::clone(&stop),
            finished,
        };
        match opened_rx.recv_timeout(config.open_timeout) {
            Ok(Ok(info)) => Ok(source(info)),
            Ok(Err(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                stop.store(true, Ordering::Relaxed);
                Err(Error::new(
                    ErrorKind::Device,
                    format!(
                        "camera {} ({:?}) did not open within {:?}",
                        camera.index, camera.name, config.open_timeout
                    ),
                ))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::new(
                ErrorKind::Device,
                format!(
                    "camera {} ({:?}) failed while opening, inside the camera driver bindings",
                    camera.index, camera.name
                ),
            )),
        }
    }

    /// Frames dropped so far because the reader fell behind.
    pub fn dropped_frames(&self) -> u64 {
        self.ring.dropped()
    }
}

impl FrameSource for CameraSource {
    fn info(&self) -> FrameSourceInfo {
        self.info.clone()
    }

    /// The oldest queued frame; never `Ok(None)` (a camera has no end).
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame>> {
        match self.ring.pop(timeout) {
            Pop::Item(frame) => Ok(Some(frame)),
            Pop::Failed(e) => Err(e),
            Pop::TimedOut => Err(Error::new(
                ErrorKind::CaptureTimeout,
                format!(
                    "camera {:?} delivered no frame within {timeout:?}; it may be stalled, \
                     covered by another application, or unplugged",
                    self.info.name
                ),
            )),
        }
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Returns as soon as the thread ends (the sender is dropped), or after STOP_WAIT when
        // the driver is stuck in a read; the thread then exits on its own once it returns.
        let _ = self.finished.recv_timeout(STOP_WAIT);
    }
}

fn describe(cameras: &[CameraDevice]) -> String {
    if cameras.is_empty() {
        return "none".to_string();
    }
    cameras
        .iter()
        .map(|c| format!("{} {:?}", c.index, c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn device_error(camera: &CameraDevice, doing: &str, e: nokhwa::NokhwaError) -> Error {
    let mut message = format!(
        "camera {} ({:?}): {doing} failed: {e}",
        camera.index, camera.name
    );
    if message.contains("ermission denied") {
        message.push_str(" (is the user in the `video` group?)");
    }
    Error::new(ErrorKind::Device, message).with_source(e)
}

/// The capture thread: open, report, then read until stopped or failed. The camera is created
/// and dropped on this thread.
fn capture(
    device: &CameraDevice,
    config: &CameraConfig,
    ring: &Ring<Frame>,
    stop: &AtomicBool,
    opened: mpsc::SyncSender<Result<FrameSourceInfo>>,
) {
    let mut camera = match open_camera(device, config) {
        Ok(camera) => camera,
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let format = camera.camera_format();
    let info = FrameSourceInfo {
        name: device.name.clone(),
        width: format.width(),
        height: format.height(),
        fps: format.frame_rate() as f32,
    };
    if opened.send(Ok(info)).is_err() || stop.load(Ordering::Relaxed) {
        return; // The opener gave up waiting.
    }
    tracing::debug!(camera = device.index, %format, "camera streaming");
    let mut first: Option<Instant> = None;
    let mut index = 0u64;
    let mut bad = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let buffer = match camera.frame() {
            Ok(buffer) => buffer,
            Err(e) => {
                let e = device_error(device, "reading a frame (unplugged?)", e);
                ring.fail(ErrorKind::Device, e.message());
                return;
            }
        };
        let now = Instant::now();
        let start = *first.get_or_insert(now);
        let resolution = buffer.resolution();
        match to_rgb(
            buffer.source_frame_format(),
            resolution.width(),
            resolution.height(),
            buffer.buffer(),
            &config.limits,
        ) {
            Ok(image) => {
                bad = 0;
                ring.push(Frame {
                    image,
                    index,
                    timestamp: now - start,
                });
            }
            Err(e) => {
                bad += 1;
                tracing::debug!(camera = device.index, error = %e, "undecodable frame skipped");
                if bad >= MAX_BAD_FRAMES {
                    ring.fail(
                        ErrorKind::Device,
                        format!(
                            "camera {:?} delivered {bad} undecodable frames in a row: {}",
                            device.name,
                            e.message()
                        ),
                    );
                    return;
                }
            }
        }
        index += 1;
    }
}

fn open_camera(device: &CameraDevice, config: &CameraConfig) -> Result<Camera> {
    let any = RequestedFormat::with_formats(RequestedFormatType::None, FORMATS);
    let mut camera = Camera::new(CameraIndex::Index(device.index), any)
        .map_err(|e| device_error(device, "opening", e))?;
    let formats = camera
        .compatible_camera_formats()
        .map_err(|e| device_error(device, "listing formats", e))?;
    let best =
        choose_format(&formats, config.width, config.height, config.fps).ok_or_else(|| {
            Error::new(
                ErrorKind::Device,
                format!(
                    "camera {} ({:?}) offers no pixel format vouch can convert (supported: {})",
                    device.index,
                    device.name,
                    FORMATS
                        .iter()
                        .map(|f| f.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
    if best != camera.camera_format() {
        let exact = RequestedFormat::with_formats(RequestedFormatType::Exact(best), FORMATS);
        camera
            .set_camera_requset(exact)
            .map_err(|e| device_error(device, &format!("setting the format {best}"), e))?;
    }
    camera
        .open_stream()
        .map_err(|e| device_error(device, "starting the stream", e))?;
    Ok(camera)
}

/// The format nearest to `width`×`height` at `fps`: size first (sum of squared side
/// differences), then rate, then the order of [`FORMATS`].
fn choose_format(
    formats: &[CameraFormat],
    width: u32,
    height: u32,
    fps: u32,
) -> Option<CameraFormat> {
    formats
        .iter()
        .filter_map(|f| {
            let rank = FORMATS.iter().position(|&known| known == f.format())?;
            let dw = i64::from(f.width()) - i64::from(width);
            let dh = i64::from(f.height()) - i64::from(height);
            let size = dw * dw + dh * dh;
            let rate = (i64::from(f.frame_rate()) - i64::from(fps)).abs();
            Some(((size, rate, rank), *f))
        })
        .min_by_key(|(key, _)| *key)
        .map(|(_, f)| f)
}

/// Converts one frame of `format` to RGB.
fn to_rgb(
    format: FrameFormat,
    width: u32,
    height: u32,
    data: &[u8],
    limits: &LimitsConfig,
) -> Result<FaceImage> {
    let pixels = width as usize * height as usize;
    let rgb = match format {
        FrameFormat::MJPEG => return FaceImage::decode(data, limits),
        FrameFormat::YUYV => yuyv_to_rgb(data, width as usize, height as usize)?,
        FrameFormat::NV12 => nv12_to_rgb(data, width as usize, height as usize)?,
        FrameFormat::GRAY => {
            let luma = data
                .get(..pixels)
                .ok_or_else(|| short(format, data, pixels))?;
            luma.iter().flat_map(|&y| [y, y, y]).collect()
        }
        FrameFormat::RAWRGB => data
            .get(..pixels * 3)
            .ok_or_else(|| short(format, data, pixels * 3))?
            .to_vec(),
        FrameFormat::RAWBGR => data
            .get(..pixels * 3)
            .ok_or_else(|| short(format, data, pixels * 3))?
            .chunks_exact(3)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect(),
    };
    FaceImage::from_rgb(width, height, rgb)
}

fn short(format: FrameFormat, data: &[u8], needed: usize) -> Error {
    Error::new(
        ErrorKind::Device,
        format!(
            "a {format} frame of {} bytes is shorter than the {needed} its size needs",
            data.len()
        ),
    )
}

/// One pixel from BT.601 limited-range YCbCr (what UVC cameras send), in 8-bit fixed point.
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(cb) - 128;
    let e = i32::from(cr) - 128;
    let clamp = |v: i32| ((v + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

/// YUYV 4:2:2 (Y0 Cb Y1 Cr for each pair of pixels) to RGB.
fn yuyv_to_rgb(data: &[u8], width: usize, height: usize) -> Result<Vec<u8>> {
    if !width.is_multiple_of(2) {
        return Err(Error::new(
            ErrorKind::Device,
            format!("a YUYV frame must have an even width, not {width}"),
        ));
    }
    let needed = width * height * 2;
    let data = data
        .get(..needed)
        .ok_or_else(|| short(FrameFormat::YUYV, data, needed))?;
    let mut rgb = Vec::with_capacity(width * height * 3);
    for quad in data.chunks_exact(4) {
        let (y0, cb, y1, cr) = (quad[0], quad[1], quad[2], quad[3]);
        rgb.extend_from_slice(&ycbcr_to_rgb(y0, cb, cr));
        rgb.extend_from_slice(&ycbcr_to_rgb(y1, cb, cr));
    }
    Ok(rgb)
}

/// NV12 (a Y plane, then one interleaved Cb Cr plane at half resolution) to RGB.
fn nv12_to_rgb(data: &[u8], width: usize, height: usize) -> Result<Vec<u8>> {
    if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(Error::new(
            ErrorKind::Device,
            format!("an NV12 frame must have even sides, not {width}x{height}"),
        ));
    }
    let luma_len = width * height;
    let needed = luma_len + luma_len / 2;
    let data = data
        .get(..needed)
        .ok_or_else(|| short(FrameFormat::NV12, data, needed))?;
    let (luma, chroma) = data.split_at(luma_len);
    let mut rgb = Vec::with_capacity(luma_len * 3);
    for row in 0..height {
        let chroma_row = &chroma[(row / 2) * width..][..width];
        for (col, &y) in luma[row * width..][..width].iter().enumerate() {
            let pair = col & !1;
            rgb.extend_from_slice(&ycbcr_to_rgb(y, chroma_row[pair], chroma_row[pair + 1]));
        }
    }
    Ok(rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ycbcr_reference_colours() {
        // Limited-range black, white and the BT.601 primaries (75 % bars would also do).
        assert_eq!(ycbcr_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(ycbcr_to_rgb(235, 128, 128), [255, 255, 255]);
        assert_eq!(ycbcr_to_rgb(126, 128, 128), [128, 128, 128]);
        let red = ycbcr_to_rgb(81, 90, 240);
        assert!(red[0] >= 250 && red[1] <= 5 && red[2] <= 5, "{red:?}");
        let blue = ycbcr_to_rgb(41, 240, 110);
        assert!(blue[2] >= 250 && blue[0] <= 5 && blue[1] <= 5, "{blue:?}");
    }

    #[test]
    fn yuyv_shares_chroma_between_pixel_pairs() {
        // 2x1: a black and a white pixel with neutral chroma.
        let rgb = yuyv_to_rgb(&[16, 128, 235, 128], 2, 1).unwrap();
        assert_eq!(rgb, [0, 0, 0, 255, 255, 255]);
        assert!(yuyv_to_rgb(&[16, 128, 235], 2, 1).is_err());
        assert!(yuyv_to_rgb(&[16, 128, 235, 128], 1, 1).is_err());
    }

    #[test]
    fn nv12_uses_the_chroma_of_each_2x2_block() {
        // 2x2 grey luma, then one Cb Cr pair that makes it red-ish.
        let rgb = nv12_to_rgb(&[126, 126, 126, 126, 128, 200], 2, 2).unwrap();
        assert_eq!(rgb.len(), 12);
        for pixel in rgb.chunks_exact(3) {
            assert!(pixel[0] > pixel[1] && pixel[0] > pixel[2], "{pixel:?}");
        }
        assert!(nv12_to_rgb(&[0; 5], 2, 2).is_err());
    }

    #[test]
    fn raw_formats_and_short_frames() {
        let limits = LimitsConfig::default();
        let bgr = to_rgb(FrameFormat::RAWBGR, 1, 1, &[1, 2, 3], &limits).unwrap();
        assert_eq!(bgr.rgb(), [3, 2, 1]);
        let gray = to_rgb(FrameFormat::GRAY, 2, 1, &[7, 9], &limits).unwrap();
        assert_eq!(gray.rgb(), [7, 7, 7, 9, 9, 9]);
        let err = to_rgb(FrameFormat::RAWRGB, 2, 2, &[0; 11], &limits).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Device);
        let err = to_rgb(FrameFormat::MJPEG, 2, 2, b"not a jpeg", &limits).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ImageDecode);
    }

    #[test]
    fn choose_format_prefers_size_then_rate_then_uncompressed() {
        let f = |w, h, format, fps| CameraFormat::new_from(w, h, format, fps);
        let offered = [
            f(1280, 720, FrameFormat::MJPEG, 30),
            f(640, 480, FrameFormat::MJPEG, 30),
            f(640, 480, FrameFormat::YUYV, 30),
            f(640, 480, FrameFormat::YUYV, 15),
            f(320, 240, FrameFormat::YUYV, 30),
        ];
        assert_eq!(
            choose_format(&offered, 640, 480, 30),
            Some(f(640, 480, FrameFormat::YUYV, 30))
        );
        assert_eq!(
            choose_format(&offered, 640, 480, 15),
            Some(f(640, 480, FrameFormat::YUYV, 15))
        );
        assert_eq!(
            choose_format(&offered, 1920, 1080, 30),
            Some(f(1280, 720, FrameFormat::MJPEG, 30))
        );
        assert_eq!(choose_format(&[], 640, 480, 30), None);
    }

    #[test]
    fn selectors_describe_themselves() {
        assert_eq!(CameraSelector::Index(2).to_string(), "camera 2");
        assert_eq!(
            CameraSelector::Name("Kiosk Cam".into()).to_string(),
            "camera \"Kiosk Cam\""
        );
        assert_eq!(describe(&[]), "none");
    }
}
