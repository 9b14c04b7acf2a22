//! Capture devices (features `camera` and `microphone`) on a machine that may have none:
//! listing never panics, and opening what is not there fails quickly with a `Device` error
//! that says what is connected.

use std::time::{Duration, Instant};

use vouch::ErrorKind;
use vouch::capture::camera::{CameraConfig, CameraSelector, CameraSource, list_cameras};
use vouch::capture::microphone::{MicrophoneConfig, MicrophoneSource, list_microphones};
use vouch::capture::{AudioSource, FrameSource};

/// Far longer than any of these calls should take; a hang fails the test instead of CI.
const QUICK: Duration = Duration::from_secs(15);

// Sources move to the thread that runs the capture loop.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<CameraSource>();
    assert_send::<MicrophoneSource>();
    assert_send::<Box<dyn FrameSource>>();
    assert_send::<Box<dyn AudioSource>>();
};

#[test]
fn listing_cameras_succeeds_with_or_without_cameras() {
    let start = Instant::now();
    let cameras = list_cameras().expect("listing cameras is not an error, even with none");
    eprintln!("cameras: {cameras:?}");
    for camera in &cameras {
        assert!(!camera.name.is_empty(), "{camera:?}");
    }
    assert!(start.elapsed() < QUICK);
}

#[test]
fn opening_a_camera_that_is_not_there_is_a_device_error() {
    let cameras = list_cameras().unwrap();
    let start = Instant::now();
    let missing = CameraConfig::new()
        .device(CameraSelector::Name("no camera is called this".into()))
        .open_timeout(Duration::from_secs(5));
    let err = CameraSource::open(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Device, "{err}");
    assert!(err.message().contains("connected devices: "), "{err}");
    if cameras.is_empty() {
        assert_eq!(err.message(), "no camera found; connected devices: none");
        for config in [
            CameraConfig::new(),
            CameraConfig::new().device(CameraSelector::Index(0)),
        ] {
            let err = CameraSource::open(&config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Device);
            assert_eq!(err.message(), "no camera found; connected devices: none");
        }
    } else {
        eprintln!("cameras are connected; only the missing-name case was checked");
    }
    assert!(start.elapsed() < QUICK, "took {:?}", start.elapsed());
}

#[test]
fn listing_microphones_succeeds_with_or_without_microphones() {
    let start = Instant::now();
    let microphones = list_microphones().expect("listing microphones is not an error");
    eprintln!("microphones: {microphones:?}");
    assert!(microphones.iter().filter(|m| m.is_default).count() <= 1);
    assert!(start.elapsed() < QUICK);
}

#[test]
fn opening_a_microphone_that_is_not_there_is_a_device_error() {
    let start = Instant::now();
    let missing = MicrophoneConfig::new()
        .device("no microphone is called this")
        .open_timeout(Duration::from_secs(5));
    let err = MicrophoneSource::open(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Device, "{err}");
    assert!(
        err.message().starts_with(
            "no microphone named \"no microphone is called this\"; connected devices: "
        ),
        "{err}"
    );
    assert!(start.elapsed() < QUICK, "took {:?}", start.elapsed());
}

#[test]
fn the_default_microphone_opens_or_fails_with_a_device_error_and_never_hangs() {
    let start = Instant::now();
    match MicrophoneSource::open(&MicrophoneConfig::new().open_timeout(Duration::from_secs(5))) {
        Err(err) => {
            eprintln!("default microphone: {err:#}");
            assert_eq!(err.kind(), ErrorKind::Device, "{err}");
        }
        Ok(mut source) => {
            // A real (or ALSA's null) device: a read returns something within its timeout.
            eprintln!("default microphone opened: {:?}", source.info());
            match source.next_chunk(Duration::from_millis(500)) {
                Ok(Some(chunk)) => assert!(chunk.samples.iter().all(|s| s.abs() <= 1.0)),
                Ok(None) => panic!("a microphone has no end"),
                Err(err) => assert!(
                    matches!(err.kind(), ErrorKind::CaptureTimeout | ErrorKind::Device),
                    "{err}"
                ),
            }
        }
    }
    assert!(start.elapsed() < QUICK, "took {:?}", start.elapsed());
}

/// ALSA's `null` device (present without a sound card) streams silence: the whole path from
/// cpal's callback through the queue to `next_chunk`, and a clean stop on drop.
#[test]
fn alsa_null_device_streams_silence_through_the_queue() {
    let present = list_microphones().unwrap();
    if !present.iter().any(|m| m.id == "null") {
        eprintln!("skipping: no ALSA `null` input device here");
        return;
    }
    let start = Instant::now();
    let mut source = match MicrophoneSource::open(&MicrophoneConfig::new().device("null")) {
        Ok(source) => source,
        Err(err) => {
            // Some ALSA configurations list `null` but cannot capture from it.
            assert_eq!(err.kind(), ErrorKind::Device, "{err}");
            eprintln!("skipping: {err:#}");
            return;
        }
    };
    let info = source.info();
    assert!(info.sample_rate > 0 && info.channels > 0, "{info:?}");
    let chunk = source
        .next_chunk(Duration::from_secs(5))
        .expect("the null device delivers")
        .expect("a microphone has no end");
    assert_eq!(
        (chunk.sample_rate, chunk.channels),
        (info.sample_rate, info.channels)
    );
    assert!(chunk.samples.iter().all(|&s| s == 0.0));
    drop(source);
    assert!(start.elapsed() < QUICK, "took {:?}", start.elapsed());
}
