//! File-backed sources: a folder or numbered sequence of images played as a camera, and a
//! WAV/FLAC file streamed as a microphone.
//!
//! They exist so that every capture path runs on machines without devices and so that a
//! recorded session can be replayed. Both play at real-time pace by default (sleeping until
//! each frame or chunk is due, as a device would deliver it) and can run unpaced, which
//! delivers everything at once with the same timestamps, for tests and benchmarks. The
//! schedule is a pure function ([`ImageFolderSource::due`], [`AudioFileSource::due`]) so it
//! can be checked without a clock.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::capture::{
    AudioChunk, AudioSource, AudioSourceInfo, Frame, FrameSource, FrameSourceInfo,
};
use crate::error::{Error, ErrorKind, Result};
use crate::face::FaceImage;
use crate::face::image::LimitsConfig;
use crate::voice::AudioLimits;

/// Sleeps until a due time on the source's own clock, which starts at the first delivery.
#[derive(Debug)]
struct Pacer {
    paced: bool,
    started: Option<Instant>,
}

impl Pacer {
    fn new() -> Pacer {
        Pacer {
            paced: true,
            started: None,
        }
    }

    /// Waits until `due` (when paced). A wait longer than `timeout` sleeps `timeout` and is a
    /// [`ErrorKind::CaptureTimeout`]: what a device that has nothing yet would say. The item
    /// stays pending, so the next call delivers it when it is due.
    fn wait(&mut self, due: Duration, timeout: Duration) -> Result<()> {
        if !self.paced {
            return Ok(());
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let now = started.elapsed();
        if due > now {
            let wait = due - now;
            if wait > timeout {
                std::thread::sleep(timeout);
                return Err(Error::new(
                    ErrorKind::CaptureTimeout,
                    format!(
                        "nothing due within {:.0} ms (next item at {:.3} s)",
                        timeout.as_secs_f64() * 1e3,
                        due.as_secs_f64()
                    ),
                ));
            }
            std::thread::sleep(wait);
        }
        Ok(())
    }
}

/// A folder of JPEG/PNG images, or a numbered sequence, played as a camera.
///
/// Frames are decoded on delivery with [`FaceImage::open`] under the given limits; a file that
/// does not decode is an error naming it (never a panic), and the source moves past it. The
/// images of a folder may differ in size; [`FrameSourceInfo`] reports the first one.
#[derive(Debug)]
pub struct ImageFolderSource {
    name: String,
    paths: Vec<PathBuf>,
    limits: LimitsConfig,
    fps: f64,
    looping: bool,
    pacer: Pacer,
    /// Position in `paths` of the next frame.
    position: usize,
    /// Stream index of the next frame.
    index: u64,
    width: u32,
    height: u32,
}

impl ImageFolderSource {
    /// Every `.jpg`, `.jpeg` and `.png` file in `dir` (not recursive), in file-name order,
    /// played at `fps`. The first image is decoded here to learn the frame size.
    ///
    /// Refused: a missing folder ([`ErrorKind::Io`]), a folder without images or an `fps`
    /// that is not positive ([`ErrorKind::InvalidInput`]), a first image that does not decode.
    pub fn folder(dir: &Path, fps: f32, limits: &LimitsConfig) -> Result<ImageFolderSource> {
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io("listing frames in", dir, e))? {
            let path = entry
                .map_err(|e| Error::io("listing frames in", dir, e))?
                .path();
            let image = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()));
            if image && path.is_file() {
                paths.push(path);
            }
        }
        // Byte order of the names: stable across platforms and locales.
        paths.sort();
        ImageFolderSource::new(dir.display().to_string(), paths, fps, limits)
    }

    /// A numbered image sequence such as `frames/frame_%04d.jpg`: the files of that folder
    /// whose names match the pattern, in numeric order (gaps are skipped). `%d` matches any
    /// number; `%0Nd` matches numbers written with at least N digits, zero-padded to N.
    ///
    /// Refused as [`ImageFolderSource::folder`], and a pattern without exactly one `%d` or
    /// `%0Nd` in its file name ([`ErrorKind::InvalidInput`]).
    pub fn sequence(pattern: &Path, fps: f32, limits: &LimitsConfig) -> Result<ImageFolderSource> {
        let file = pattern.file_name().and_then(|f| f.to_str()).unwrap_or("");
        let numbering = Numbering::parse(file).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} is not a sequence pattern: its file name needs one %d or %0Nd (e.g. frame_%04d.jpg)",
                    pattern.display()
                ),
            )
        })?;
        let dir = match pattern.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut numbered = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io("listing frames in", dir, e))? {
            let path = entry
                .map_err(|e| Error::io("listing frames in", dir, e))?
                .path();
            let number = path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| numbering.number(f));
            if let Some(number) = number.filter(|_| path.is_file()) {
                numbered.push((number, path));
            }
        }
        numbered.sort();
        let paths = numbered.into_iter().map(|(_, p)| p).collect();
        ImageFolderSource::new(pattern.display().to_string(), paths, fps, limits)
    }

    fn new(
        name: String,
        paths: Vec<PathBuf>,
        fps: f32,
        limits: &LimitsConfig,
    ) -> Result<ImageFolderSource> {
        if !(fps.is_finite() && fps > 0.0) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("a frame rate must be positive, got {fps}"),
            ));
        }
        let Some(first) = paths.first() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{name} holds no JPEG or PNG images"),
            ));
        };
        let image = FaceImage::open(first, limits)?;
        Ok(ImageFolderSource {
            name,
            width: image.width(),
            height: image.height(),
            paths,
            limits: limits.clone(),
            fps: f64::from(fps),
            looping: false,
            pacer: Pacer::new(),
            position: 0,
            index: 0,
        })
    }

    /// Whether frames are delivered at real-time pace (sleeping until each is due) or as fast
    /// as they decode, with the same timestamps. By default, paced.
    pub fn paced(mut self, paced: bool) -> ImageFolderSource {
        self.pacer.paced = paced;
        self
    }

    /// Whether playback starts over after the last image (an endless stream) or ends.
    /// By default, it ends.
    pub fn looping(mut self, looping: bool) -> ImageFolderSource {
        self.looping = looping;
        self
    }

    /// The image files, in playback order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// When frame `index` is due after the start of playback: `index / fps`. It is also the
    /// frame's timestamp, paced or not.
    pub fn due(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.fps)
    }
}

impl FrameSource for ImageFolderSource {
    fn info(&self) -> FrameSourceInfo {
        FrameSourceInfo {
            name: self.name.clone(),
            width: self.width,
            height: self.height,
            fps: self.fps as f32,
        }
    }

    fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame>> {
        if self.position == self.paths.len() {
            if !self.looping {
                return Ok(None);
            }
            self.position = 0;
        }
        let due = self.due(self.index);
        self.pacer.wait(due, timeout)?;
        let path = &self.paths[self.position];
        // Move on before decoding, so a bad file is reported once and playback continues.
        self.position += 1;
        let index = self.index;
        self.index += 1;
        let image = FaceImage::open(path, &self.limits)
            .map_err(|e| Error::new(e.kind(), format!("frame {index}: {}", e.message())))?;
        Ok(Some(Frame {
            image,
            index,
            timestamp: due,
        }))
    }
}

/// The numbering of a sequence pattern: `prefix %0Nd suffix`.
#[derive(Debug, PartialEq)]
struct Numbering {
    prefix: String,
    /// N of `%0Nd`; `None` for `%d`.
    width: Option<usize>,
    suffix: String,
}

impl Numbering {
    fn parse(file: &str) -> Option<Numbering> {
        let at = file.find('%')?;
        let (prefix, rest) = (&file[..at], &file[at + 1..]);
        let d = rest.find('d')?;
        let spec = &rest[..d];
        let width = match spec {
            "" => None,
            _ if spec.starts_with('0') && spec.len() > 1 => Some(spec[1..].parse().ok()?),
            _ => return None,
        };
        let suffix = &rest[d + 1..];
        if suffix.contains('%') {
            return None;
        }
        Some(Numbering {
            prefix: prefix.to_string(),
            width,
            suffix: suffix.to_string(),
        })
    }

    fn number(&self, file: &str) -> Option<u64> {
        let digits = file
            .strip_prefix(&self.prefix)?
            .strip_suffix(&self.suffix)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let fits = match self.width {
            // `%04d` writes 7 as 0007 and 12345 as 12345.
            Some(w) => digits.len() == w || (digits.len() > w && !digits.starts_with('0')),
            None => digits.len() == 1 || !digits.starts_with('0'),
        };
        if fits { digits.parse().ok() } else { None }
    }
}

/// A WAV or FLAC file streamed as a microphone: device-sized chunks at the file's own rate,
/// mono or with the channel duplicated to emulate a multi-channel device.
///
/// The native rate is kept on purpose, so that the consumer's conversion to 16 kHz runs as it
/// would on a real device. The decoded samples are wiped on drop.
pub struct AudioFileSource {
    name: String,
    rate: u32,
    samples: Zeroizing<Vec<f32>>,
    channels: u16,
    chunk_frames: usize,
    pacer: Pacer,
    /// Chunks delivered so far.
    chunk: u64,
}

impl std::fmt::Debug for AudioFileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AudioFileSource({}, {} Hz, {} samples redacted)",
            self.name,
            self.rate,
            self.samples.len()
        )
    }
}

impl AudioFileSource {
    /// Decodes a WAV or FLAC file (mixed to mono at its own rate, see
    /// [`crate::voice::audio::decode_native`]) under `limits` (size and duration).
    pub fn open(path: &Path, limits: &AudioLimits) -> Result<AudioFileSource> {
        let bytes =
            Zeroizing::new(std::fs::read(path).map_err(|e| Error::io("reading audio", path, e))?);
        if bytes.len() > limits.max_bytes {
            return Err(Error::new(
                ErrorKind::AudioTooLong,
                format!(
                    "{} is {} bytes, more than the limit of {}",
                    path.display(),
                    bytes.len(),
                    limits.max_bytes
                ),
            ));
        }
        let (rate, samples) = crate::voice::audio::decode_native(&bytes, limits)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())))?;
        AudioFileSource::from_samples(path.display().to_string(), rate, samples)
    }

    /// Streams mono samples at `rate` (synthetic signals in tests). Refused: a rate outside
    /// 4–192 kHz, non-finite samples ([`ErrorKind::InvalidInput`]).
    pub fn from_samples(
        name: impl Into<String>,
        rate: u32,
        samples: Vec<f32>,
    ) -> Result<AudioFileSource> {
        let samples = Zeroizing::new(samples);
        if !(4_000..=192_000).contains(&rate) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("a sample rate of {rate} Hz is outside 4–192 kHz"),
            ));
        }
        if samples.iter().any(|s| !s.is_finite()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the audio holds a non-finite sample",
            ));
        }
        Ok(AudioFileSource {
            name: name.into(),
            rate,
            samples,
            channels: 1,
            chunk_frames: (rate / 100).max(1) as usize,
            pacer: Pacer::new(),
            chunk: 0,
        })
    }

    /// Frames (samples per channel) per chunk, at least 1. By default, 10 ms worth
    /// (`rate / 100`), a common device period.
    pub fn chunk_frames(mut self, frames: usize) -> AudioFileSource {
        self.chunk_frames = frames.max(1);
        self
    }

    /// Channels delivered, each a copy of the mono signal (2 emulates a stereo device), at
    /// least 1. By default, 1.
    pub fn channels(mut self, channels: u16) -> AudioFileSource {
        self.channels = channels.max(1);
        self
    }

    /// Whether chunks arrive at real-time pace or all at once with the same schedule.
    /// By default, paced.
    pub fn paced(mut self, paced: bool) -> AudioFileSource {
        self.pacer.paced = paced;
        self
    }

    /// The file's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Frames in the whole file.
    pub fn frames(&self) -> usize {
        self.samples.len()
    }

    /// When chunk `chunk` (from 0) is due after the start of playback: once all of its
    /// samples would have been recorded, `(chunk + 1) × chunk_frames / rate`.
    pub fn due(&self, chunk: u64) -> Duration {
        let end = (chunk + 1).saturating_mul(self.chunk_frames as u64);
        Duration::from_secs_f64(end as f64 / f64::from(self.rate))
    }
}

impl AudioSource for AudioFileSource {
    fn info(&self) -> AudioSourceInfo {
        AudioSourceInfo {
            name: self.name.clone(),
            sample_rate: self.rate,
            channels: self.channels,
        }
    }

    fn next_chunk(&mut self, timeout: Duration) -> Result<Option<AudioChunk>> {
        let start = (self.chunk as usize).saturating_mul(self.chunk_frames);
        if start >= self.samples.len() {
            return Ok(None);
        }
        self.pacer.wait(self.due(self.chunk), timeout)?;
        self.chunk += 1;
        let end = (start + self.chunk_frames).min(self.samples.len());
        let channels = usize::from(self.channels);
        let mut samples = Vec::with_capacity((end - start) * channels);
        for &s in &self.samples[start..end] {
            samples.extend(std::iter::repeat_n(s, channels));
        }
        Ok(Some(AudioChunk {
            samples,
            channels: self.channels,
            sample_rate: self.rate,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, w: u32, h: u32, v: u8) {
        image::RgbImage::from_pixel(w, h, image::Rgb([v, v, v]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn sequence_patterns_match_their_numbers() {
        let n = Numbering::parse("frame_%04d.jpg").unwrap();
        assert_eq!(n.number("frame_0007.jpg"), Some(7));
        assert_eq!(n.number("frame_12345.jpg"), Some(12345));
        assert_eq!(n.number("frame_007.jpg"), None);
        assert_eq!(n.number("frame_00007.jpg"), None);
        assert_eq!(n.number("frame_0007.png"), None);
        assert_eq!(n.number("frame_.jpg"), None);
        let n = Numbering::parse("%d.png").unwrap();
        assert_eq!(n.number("10.png"), Some(10));
        assert_eq!(n.number("0.png"), Some(0));
        assert_eq!(n.number("010.png"), None);
        for bad in ["frame.jpg", "f_%4d.jpg", "f_%d_%d.jpg", "f_%x.jpg"] {
            assert!(Numbering::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_folder_plays_in_name_order_unpaced_with_scheduled_timestamps_and_loops() {
        let dir = tempfile::tempdir().unwrap();
        png(&dir.path().join("b.png"), 20, 10, 1);
        png(&dir.path().join("a.png"), 20, 10, 2);
        std::fs::write(dir.path().join("notes.txt"), "not a frame").unwrap();
        let limits = LimitsConfig::default();
        let mut source = ImageFolderSource::folder(dir.path(), 4.0, &limits)
            .unwrap()
            .paced(false)
            .looping(true);
        assert_eq!(source.paths().len(), 2);
        assert_eq!((source.info().width, source.info().height), (20, 10));
        let mut seen = Vec::new();
        for _ in 0..5 {
            let frame = source.next_frame(Duration::ZERO).unwrap().unwrap();
            seen.push((frame.index, frame.timestamp, frame.image.rgb()[0]));
        }
        let ms = Duration::from_millis;
        assert_eq!(
            seen,
            [
                (0, ms(0), 2),
                (1, ms(250), 1),
                (2, ms(500), 2),
                (3, ms(750), 1),
                (4, ms(1000), 2)
            ]
        );
        let mut once = ImageFolderSource::folder(dir.path(), 4.0, &limits)
            .unwrap()
            .paced(false);
        assert!(once.next_frame(Duration::ZERO).unwrap().is_some());
        assert!(once.next_frame(Duration::ZERO).unwrap().is_some());
        assert!(once.next_frame(Duration::ZERO).unwrap().is_none());
    }

    #[test]
    fn a_sequence_plays_in_numeric_order() {
        let dir = tempfile::tempdir().unwrap();
        for (n, v) in [(10, 30u8), (2, 20), (1, 10)] {
            png(&dir.path().join(format!("f_{n:03}.png")), 16, 16, v);
        }
        png(&dir.path().join("other_001.png"), 16, 16, 99);
        let pattern = dir.path().join("f_%03d.png");
        let mut source = ImageFolderSource::sequence(&pattern, 30.0, &LimitsConfig::default())
            .unwrap()
            .paced(false);
        let mut values = Vec::new();
        while let Some(frame) = source.next_frame(Duration::ZERO).unwrap() {
            values.push(frame.image.rgb()[0]);
        }
        assert_eq!(values, [10, 20, 30]);
        let e = ImageFolderSource::sequence(
            &dir.path().join("g_%03d.png"),
            30.0,
            &LimitsConfig::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn a_bad_image_is_an_error_naming_it_and_playback_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        png(&dir.path().join("1.png"), 16, 16, 5);
        std::fs::write(dir.path().join("2.jpg"), b"\xff\xd8\xff garbage").unwrap();
        png(&dir.path().join("3.png"), 16, 16, 7);
        let mut source = ImageFolderSource::folder(dir.path(), 10.0, &LimitsConfig::default())
            .unwrap()
            .paced(false);
        assert!(source.next_frame(Duration::ZERO).unwrap().is_some());
        let e = source.next_frame(Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ImageDecode);
        assert!(e.message().contains("2.jpg"), "{e}");
        assert_eq!(source.next_frame(Duration::ZERO).unwrap().unwrap().index, 2);
        let e = ImageFolderSource::folder(dir.path(), 0.0, &LimitsConfig::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let empty = tempfile::tempdir().unwrap();
        let e =
            ImageFolderSource::folder(empty.path(), 10.0, &LimitsConfig::default()).unwrap_err();
        assert!(e.message().contains("no JPEG or PNG"), "{e}");
    }

    #[test]
    fn paced_frames_are_not_early_and_a_far_frame_times_out() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..3 {
            png(&dir.path().join(format!("{i}.png")), 16, 16, 1);
        }
        let mut source =
            ImageFolderSource::folder(dir.path(), 20.0, &LimitsConfig::default()).unwrap();
        let started = Instant::now();
        while source.next_frame(Duration::from_secs(5)).unwrap().is_some() {}
        // Sleeping never returns early, so this lower bound cannot flake (frame 2 is due at
        // 100 ms); no upper bound is asserted.
        assert!(started.elapsed() >= Duration::from_millis(100));

        let mut slow =
            ImageFolderSource::folder(dir.path(), 0.01, &LimitsConfig::default()).unwrap();
        assert!(slow.next_frame(Duration::ZERO).unwrap().is_some());
        let e = slow.next_frame(Duration::from_millis(1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CaptureTimeout);
    }

    #[test]
    fn audio_chunks_follow_the_device_schedule_and_duplicate_channels() {
        let samples: Vec<f32> = (0..250).map(|i| i as f32 / 1000.0).collect();
        let mut source = AudioFileSource::from_samples("ramp", 8_000, samples.clone())
            .unwrap()
            .chunk_frames(100)
            .channels(2)
            .paced(false);
        assert_eq!(source.due(0), Duration::from_micros(12_500));
        assert_eq!(source.due(2), Duration::from_micros(37_500));
        let info = source.info();
        assert_eq!((info.sample_rate, info.channels), (8_000, 2));
        let mut mono = Vec::new();
        let mut sizes = Vec::new();
        while let Some(chunk) = source.next_chunk(Duration::ZERO).unwrap() {
            assert_eq!((chunk.channels, chunk.sample_rate), (2, 8_000));
            sizes.push(chunk.samples.len());
            for pair in chunk.samples.chunks(2) {
                assert_eq!(pair[0], pair[1]);
                mono.push(pair[0]);
            }
        }
        assert_eq!(sizes, [200, 200, 100]);
        assert_eq!(mono, samples);
        let default = AudioFileSource::from_samples("x", 44_100, vec![0.0; 10]).unwrap();
        assert_eq!(default.due(0), Duration::from_millis(10));
        assert!(AudioFileSource::from_samples("x", 1_000, vec![]).is_err());
        assert!(AudioFileSource::from_samples("x", 8_000, vec![f32::NAN]).is_err());
    }
}
