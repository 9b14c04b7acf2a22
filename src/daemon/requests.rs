//! From protobuf requests to the library's: every check that needs no model — declared formats
//! against the bytes, digits in range, a transaction present and well-formed. Pure functions,
//! so the `grpc_request` fuzz target runs them on arbitrary messages without a daemon.

use crate::authenticator::{TransactionContext, VoiceResponse};
use crate::error::{Error, ErrorKind, Result};
use crate::face::motion::HeadMovement;
use crate::policy::Transaction;

use super::proto as pb;

/// What an enrollment request carries, checked.
#[derive(Debug)]
pub struct EnrollInput<'a> {
    /// Face images.
    pub face: Vec<&'a [u8]>,
    /// Free speech recordings.
    pub speech: Vec<&'a [u8]>,
    /// Each digit and its recording.
    pub digits: Vec<(u8, &'a [u8])>,
    /// The digits 0 to 9 said in order, one sequence per recording.
    pub digit_sequences: Vec<&'a [u8]>,
}

/// What a verification request carries, checked.
#[derive(Debug)]
pub struct VerifyInput<'a> {
    /// The payment.
    pub transaction: TransactionContext,
    /// Face frames.
    pub frames: Vec<&'a [u8]>,
    /// The spoken passphrase, when sent.
    pub voice: Option<VoiceResponse<'a>>,
    /// The response to a movement challenge, when sent.
    pub movement: Option<MovementInput<'a>>,
}

/// A movement response, checked: frames and their capture times in seconds.
#[derive(Debug)]
pub struct MovementInput<'a> {
    /// The challenge answered.
    pub challenge_id: &'a str,
    /// The frames' bytes, in capture order.
    pub frames: Vec<&'a [u8]>,
    /// Each frame's capture time in seconds (the library checks order, rate and count).
    pub times: Vec<f64>,
}

/// Checks an enrollment request's media and digits.
pub fn enroll_input<'a>(message: &'a pb::EnrollRequest) -> Result<EnrollInput<'a>> {
    let face = images(&message.face, "face sample")?;
    let recordings = |audio: &'a [pb::Audio], what: &str| {
        audio
            .iter()
            .enumerate()
            .map(|(i, a)| {
                sniff_audio(a, &format!("{what} {}", i + 1))?;
                Ok(a.data.as_slice())
            })
            .collect::<Result<Vec<_>>>()
    };
    let speech = recordings(&message.speech, "speech")?;
    let digit_sequences = recordings(&message.digit_sequences, "digit sequence")?;
    let digits = message
        .digits
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let what = format!("digit recording {}", i + 1);
            let audio = d
                .audio
                .as_ref()
                .ok_or_else(|| invalid(format!("{what} has no audio")))?;
            sniff_audio(audio, &what)?;
            let digit = u8::try_from(d.digit)
                .ok()
                .filter(|d| *d <= 9)
                .ok_or_else(|| invalid(format!("{what}: {} is not a digit", d.digit)))?;
            Ok((digit, audio.data.as_slice()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EnrollInput {
        face,
        speech,
        digits,
        digit_sequences,
    })
}

/// Checks a verification request's transaction, frames and voice response.
pub fn verify_input(message: &pb::VerifyRequest) -> Result<VerifyInput<'_>> {
    let transaction = transaction(message.transaction.as_ref())?;
    let frames = frames(&message.frames)?;
    let voice = match &message.voice {
        Some(v) => {
            let audio = v
                .audio
                .as_ref()
                .ok_or_else(|| invalid("the voice response has no audio"))?;
            sniff_audio(audio, "voice response")?;
            Some(VoiceResponse {
                challenge_id: &v.challenge_id,
                audio: &audio.data,
            })
        }
        None => None,
    };
    let movement = message.movement.as_ref().map(movement_input).transpose()?;
    Ok(VerifyInput {
        transaction,
        frames,
        voice,
        movement,
    })
}

/// Checks a movement response's frames; times become seconds. Whether there are enough
/// frames, in order, at a usable rate, is the library's to judge (one owner of those rules).
fn movement_input(message: &pb::MovementResponse) -> Result<MovementInput<'_>> {
    let mut frames = Vec::with_capacity(message.frames.len());
    let mut times = Vec::with_capacity(message.frames.len());
    for (i, frame) in message.frames.iter().enumerate() {
        let what = format!("movement frame {}", i + 1);
        let image = frame
            .image
            .as_ref()
            .ok_or_else(|| invalid(format!("{what} has no image")))?;
        sniff_image(image, &what)?;
        frames.push(image.data.as_slice());
        // Microseconds to seconds: exact for any time below 2^53 µs (285 years).
        times.push(frame.capture_time_us as f64 / 1e6);
    }
    Ok(MovementInput {
        challenge_id: &message.challenge_id,
        frames,
        times,
    })
}

/// The wire form of a movement.
pub fn movement(m: HeadMovement) -> pb::Movement {
    match m {
        HeadMovement::Left => pb::Movement::Left,
        HeadMovement::Right => pb::Movement::Right,
        HeadMovement::Up => pb::Movement::Up,
        HeadMovement::Down => pb::Movement::Down,
    }
}

/// Checks the frames of a presentation (Verify, Identify).
pub fn frames(frames: &[pb::Image]) -> Result<Vec<&[u8]>> {
    images(frames, "frame")
}

/// The transaction a request names: present, with a valid currency and category.
pub fn transaction(tx: Option<&pb::Transaction>) -> Result<TransactionContext> {
    let tx = tx.ok_or_else(|| invalid("the request has no transaction"))?;
    let mcc = (!tx.merchant_category.is_empty()).then_some(tx.merchant_category.as_str());
    Ok(TransactionContext {
        transaction: Transaction::new(tx.amount_minor, &tx.currency, mcc)?,
        id: tx.id.clone(),
        nonce: tx.nonce.clone(),
    })
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

fn images<'a>(images: &'a [pb::Image], what: &str) -> Result<Vec<&'a [u8]>> {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            sniff_image(image, &format!("{what} {}", i + 1))?;
            Ok(image.data.as_slice())
        })
        .collect()
}

/// The one refusal of both sniffers: a format was declared and the bytes are another.
fn require_declared(agrees: bool, declared: &str, kind: ErrorKind, what: &str) -> Result<()> {
    if agrees {
        return Ok(());
    }
    Err(Error::new(
        kind,
        format!("{what}: declared {declared} but the bytes are not that format"),
    ))
}

/// A declared image format must be what the bytes are (unspecified: detected later).
fn sniff_image(image: &pb::Image, what: &str) -> Result<()> {
    let declared = pb::ImageFormat::try_from(image.format)
        .map_err(|_| invalid(format!("{what}: unknown image format {}", image.format)))?;
    let actual = if image.data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(pb::ImageFormat::Jpeg)
    } else if image.data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(pb::ImageFormat::Png)
    } else {
        None
    };
    require_declared(
        declared == pb::ImageFormat::Unspecified || actual == Some(declared),
        declared.as_str_name(),
        ErrorKind::ImageDecode,
        what,
    )
}

/// A declared audio format must be what the bytes are (unspecified: detected later).
fn sniff_audio(audio: &pb::Audio, what: &str) -> Result<()> {
    let declared = pb::AudioFormat::try_from(audio.format)
        .map_err(|_| invalid(format!("{what}: unknown audio format {}", audio.format)))?;
    let actual = if audio.data.starts_with(b"RIFF") && audio.data.get(8..12) == Some(b"WAVE") {
        Some(pb::AudioFormat::Wav)
    } else if audio.data.starts_with(b"fLaC") {
        Some(pb::AudioFormat::Flac)
    } else {
        None
    };
    require_declared(
        declared == pb::AudioFormat::Unspecified || actual == Some(declared),
        declared.as_str_name(),
        ErrorKind::AudioDecode,
        what,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_formats_must_match_the_bytes() {
        let jpeg = pb::Image {
            data: vec![0xFF, 0xD8, 0xFF, 0xE0],
            format: pb::ImageFormat::Png as i32,
        };
        assert!(sniff_image(&jpeg, "f").is_err());
        let unknown = pb::Image {
            data: vec![1, 2],
            format: 99,
        };
        assert!(sniff_image(&unknown, "f").is_err());
        let wav = pb::Audio {
            data: b"RIFF\0\0\0\0WAVEfmt ".to_vec(),
            format: pb::AudioFormat::Wav as i32,
        };
        assert!(sniff_audio(&wav, "a").is_ok());
    }

    #[test]
    fn movement_frames_need_images_and_their_times_become_seconds() {
        let png = || pb::Image {
            data: b"\x89PNG\r\n\x1a\n".to_vec(),
            format: pb::ImageFormat::Png as i32,
        };
        let request = |frames| pb::VerifyRequest {
            transaction: Some(pb::Transaction {
                id: "t".into(),
                nonce: "n".into(),
                amount_minor: 100,
                currency: "EUR".into(),
                ..Default::default()
            }),
            movement: Some(pb::MovementResponse {
                challenge_id: "c".into(),
                frames,
            }),
            ..Default::default()
        };
        let timed = |image, capture_time_us| pb::TimedFrame {
            image,
            capture_time_us,
        };
        let ok = request(vec![timed(Some(png()), 0), timed(Some(png()), 66_667)]);
        let input = verify_input(&ok).unwrap().movement.unwrap();
        assert_eq!(input.challenge_id, "c");
        assert_eq!(input.frames.len(), 2);
        assert!((input.times[1] - 0.066_667).abs() < 1e-12);
        let no_image = request(vec![timed(None, 0)]);
        assert_eq!(
            verify_input(&no_image).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let mislabelled = request(vec![timed(
            Some(pb::Image {
                data: vec![0xFF, 0xD8, 0xFF],
                format: pb::ImageFormat::Png as i32,
            }),
            0,
        )]);
        assert_eq!(
            verify_input(&mislabelled).unwrap_err().kind(),
            ErrorKind::ImageDecode
        );
    }

    #[test]
    fn digits_must_be_digits_and_have_audio() {
        let digit = |digit, audio: Option<pb::Audio>| pb::EnrollRequest {
            digits: vec![pb::DigitRecording { digit, audio }],
            ..Default::default()
        };
        let wav = || {
            Some(pb::Audio {
                data: b"RIFF\0\0\0\0WAVE".to_vec(),
                format: 0,
            })
        };
        assert_eq!(enroll_input(&digit(3, wav())).unwrap().digits[0].0, 3);
        for bad in [digit(10, wav()), digit(u32::MAX, wav()), digit(1, None)] {
            let err = enroll_input(&bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        }
    }
}
