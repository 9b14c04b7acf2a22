//! Voice input on real recordings: FSDD (8 kHz WAV) and LibriSpeech (16 kHz FLAC).

use vouch::ErrorKind;
use vouch::voice::{Audio, AudioLimits};

use crate::util;

#[test]
fn real_wav_and_flac_recordings_decode() {
    let limits = AudioLimits::default();
    let Some(wav) = util::data_file("fsdd/recordings/7_george_3.wav") else {
        return;
    };
    let audio = Audio::open(&wav, &limits).unwrap();
    assert!(
        audio.seconds() > 0.2 && audio.seconds() < 1.5,
        "{}",
        audio.seconds()
    );
    assert!(audio.rms_dbfs() > -45.0, "{}", audio.rms_dbfs());
    let Some(flac) = util::data_file("librispeech/test-other/1688/1688-142285-0000.flac") else {
        return;
    };
    let audio = Audio::open(&flac, &limits).unwrap();
    assert!(audio.seconds() > 1.0, "{}", audio.seconds());
}

#[test]
fn a_flac_with_a_corrupt_frame_is_refused() {
    let Some(flac) = util::data_file("librispeech/test-other/1688/1688-142285-0000.flac") else {
        return;
    };
    let mut bytes = std::fs::read(flac).unwrap();
    // Scribble over the middle of the audio frames; the frame CRCs must catch it.
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5A;
    }
    let err = Audio::decode(&bytes, &AudioLimits::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AudioDecode, "{err}");
}

#[test]
fn a_long_recording_is_refused_before_it_is_decoded() {
    let Some(flac) = util::data_file("librispeech/test-other/1688/1688-142285-0000.flac") else {
        return;
    };
    let limits = AudioLimits {
        max_seconds: 1.0,
        ..AudioLimits::default()
    };
    let err = Audio::open(&flac, &limits).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AudioTooLong, "{err}");
}
