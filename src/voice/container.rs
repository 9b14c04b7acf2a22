//! What reaches the audio decoder: only the parts of a WAV or FLAC file that decoding needs.
//!
//! symphonia trusts the length fields of metadata it parses but vouch never uses: a FLAC
//! picture block or a WAV `LIST/INFO` tag that declares gigabytes makes it allocate them
//! before reading a byte (found by fuzzing: a 72 KB FLAC asked for 2.1 GB). So tags,
//! pictures, cue sheets and padding are dropped here, every length that is walked is checked
//! against the bytes present, and a header declaring 0 Hz (which panics symphonia) is refused.
//! Anything that is not WAV or FLAC from its first byte (after an ID3v2 tag) is refused here.

use crate::error::{Error, ErrorKind, Result};

/// FLAC's STREAMINFO block: the one metadata block decoding needs (always 34 bytes).
const FLAC_STREAMINFO: u8 = 0;
const FLAC_STREAMINFO_LEN: usize = 34;

/// The bytes to hand the decoder: WAV as `RIFF` + `fmt ` + `data`, FLAC as the marker,
/// STREAMINFO and the audio frames (after an ID3v2 tag, which some encoders prepend).
/// Anything else is refused here: symphonia's probe would otherwise search the bytes for a
/// marker and parse whatever follows it (found by fuzzing: 23 bytes, `f\0fLaC` and a picture
/// block claiming 2.2 GB).
pub(crate) fn essentials(bytes: &[u8]) -> Result<Vec<u8>> {
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        return wav(bytes);
    }
    let flac_at = id3v2_len(bytes).unwrap_or(0);
    match bytes.get(flac_at..) {
        Some(rest) if rest.starts_with(b"fLaC") => flac(rest),
        _ => Err(Error::new(
            ErrorKind::AudioDecode,
            "the data is not WAV or FLAC audio",
        )),
    }
}

/// The length of an ID3v2 tag at the start (header, body and footer), if there is one.
fn id3v2_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..10).filter(|h| h.starts_with(b"ID3"))?;
    // The size is "synchsafe": four 7-bit bytes.
    let size = header[6..10].iter().try_fold(0usize, |n, &b| {
        (b < 0x80).then_some((n << 7) | usize::from(b))
    })?;
    let footer = if header[5] & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

fn malformed(what: &str) -> Error {
    Error::new(ErrorKind::AudioDecode, format!("malformed {what}"))
}

fn wav(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut fmt: Option<&[u8]> = None;
    let mut at = 12usize;
    loop {
        let header = bytes
            .get(at..at + 8)
            .ok_or_else(|| malformed("WAV: no data chunk"))?;
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let body = at + 8;
        match &header[..4] {
            b"fmt " => {
                let chunk = bytes
                    .get(at..body + size)
                    .ok_or_else(|| malformed("WAV: the fmt chunk runs past the end"))?;
                // fmt: format tag (2), channels (2), sample rate (4), …
                if chunk.get(12..16) == Some(&[0, 0, 0, 0]) {
                    return Err(Error::new(
                        ErrorKind::AudioDecode,
                        "the WAV header declares a sample rate of 0 Hz",
                    ));
                }
                fmt = Some(chunk);
            }
            b"data" => {
                let fmt = fmt.ok_or_else(|| malformed("WAV: the data chunk comes before fmt"))?;
                // The data chunk as it is, even cut short: the decoder reports a truncation.
                let data = &bytes[at..];
                let mut out = Vec::with_capacity(12 + fmt.len() + data.len());
                out.extend_from_slice(b"RIFF");
                let riff_len = (4 + fmt.len() + data.len()) as u32;
                out.extend_from_slice(&riff_len.to_le_bytes());
                out.extend_from_slice(b"WAVE");
                out.extend_from_slice(fmt);
                out.extend_from_slice(data);
                return Ok(out);
            }
            _ => {}
        }
        // Chunks are padded to an even length; a chunk before the data that runs past the end
        // of the file is a lie about its length.
        at = body
            .checked_add(size + size % 2)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| malformed("WAV: a chunk runs past the end of the file"))?;
    }
}

fn flac(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut streaminfo: Option<&[u8]> = None;
    let mut at = 4usize;
    loop {
        let header = bytes
            .get(at..at + 4)
            .ok_or_else(|| malformed("FLAC: the metadata runs past the end"))?;
        let (last, kind) = (header[0] & 0x80 != 0, header[0] & 0x7F);
        let size = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
        let body = bytes
            .get(at + 4..at + 4 + size)
            .ok_or_else(|| malformed("FLAC: a metadata block runs past the end"))?;
        if kind == FLAC_STREAMINFO {
            if size != FLAC_STREAMINFO_LEN || streaminfo.is_some() {
                return Err(malformed("FLAC: STREAMINFO"));
            }
            streaminfo = Some(body);
        }
        at += 4 + size;
        if last {
            break;
        }
    }
    let streaminfo = streaminfo.ok_or_else(|| malformed("FLAC: no STREAMINFO block"))?;
    let frames = &bytes[at..];
    let mut out = Vec::with_capacity(8 + FLAC_STREAMINFO_LEN + frames.len());
    out.extend_from_slice(b"fLaC");
    // STREAMINFO is now the last (and only) metadata block.
    out.push(0x80 | FLAC_STREAMINFO);
    out.extend_from_slice(&(FLAC_STREAMINFO_LEN as u32).to_be_bytes()[1..]);
    out.extend_from_slice(streaminfo);
    out.extend_from_slice(frames);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::audio::tests::{tone, wav as wav_file};

    /// A RIFF chunk: id, little-endian length, body, pad byte.
    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    /// `wav` with `extra` inserted between its fmt and data chunks.
    fn with_chunk_before_data(wav: &[u8], extra: &[u8]) -> Vec<u8> {
        let data_at = 12 + 8 + 16;
        let mut out = wav[..data_at].to_vec();
        out.extend_from_slice(extra);
        out.extend_from_slice(&wav[data_at..]);
        let riff_len = (out.len() - 8) as u32;
        out[4..8].copy_from_slice(&riff_len.to_le_bytes());
        out
    }

    #[test]
    fn wav_tags_are_dropped_and_the_audio_is_unchanged() {
        let plain = wav_file(16_000, 1, 16, 1, &tone(16_000, 0.5, 1));
        let mut info = b"INFO".to_vec();
        info.extend(chunk(b"INAM", b"a title"));
        let tagged = with_chunk_before_data(&plain, &chunk(b"LIST", &info));
        assert_ne!(tagged, plain);
        assert_eq!(essentials(&tagged).unwrap(), plain);
        assert_eq!(essentials(&plain).unwrap(), plain);
    }

    /// The shape symphonia would have allocated 4 GB for: a LIST chunk whose length is a lie.
    #[test]
    fn a_wav_chunk_claiming_more_than_the_file_is_refused() {
        let plain = wav_file(16_000, 1, 16, 1, &tone(16_000, 0.5, 1));
        let mut lying = b"LIST".to_vec();
        lying.extend_from_slice(&u32::MAX.to_le_bytes());
        lying.extend_from_slice(b"INFO");
        let err = essentials(&with_chunk_before_data(&plain, &lying)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AudioDecode);
        assert!(err.message().contains("past the end"), "{err}");
        let no_data = &plain[..12 + 8 + 16];
        assert_eq!(
            essentials(no_data).unwrap_err().kind(),
            ErrorKind::AudioDecode
        );
    }

    /// A FLAC stream: marker, STREAMINFO, `blocks` (kind, body), then `frames`.
    fn flac_file(blocks: &[(u8, Vec<u8>)], frames: &[u8]) -> Vec<u8> {
        let mut out = b"fLaC".to_vec();
        let mut all = vec![(FLAC_STREAMINFO, vec![0x11; FLAC_STREAMINFO_LEN])];
        all.extend(blocks.iter().cloned());
        for (i, (kind, body)) in all.iter().enumerate() {
            let last = if i + 1 == all.len() { 0x80 } else { 0 };
            out.push(last | kind);
            out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(body);
        }
        out.extend_from_slice(frames);
        out
    }

    /// Found by fuzzing (`audio_decode`): a PICTURE block (type 6) whose picture length field
    /// says 2.1 GB; symphonia allocated it before reading. The block never reaches it now.
    #[test]
    fn regression_flac_picture_declaring_2_gb_never_reaches_the_decoder() {
        let mut picture = vec![0; 32];
        picture.extend_from_slice(&0x80C6_9BA9u32.to_be_bytes());
        let frames = [0xFF, 0xF8, 0x01, 0x02];
        let hostile = flac_file(&[(4, b"vorbis".to_vec()), (6, picture)], &frames);
        assert_eq!(essentials(&hostile).unwrap(), flac_file(&[], &frames));
        // The fuzzer's input rebuilt from our own bytes (its audio came from shared data, which
        // stays out of the project), kept as a fixture and a seed of the fuzz corpus: its
        // picture block also claims more bytes than the file holds, so it is refused outright.
        let found = include_bytes!("../../fixtures/fuzz/audio_decode/flac-picture-2gb");
        let err =
            crate::voice::Audio::decode(found, &crate::voice::AudioLimits::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AudioDecode);
        assert!(err.message().contains("metadata block runs past"), "{err}");
    }

    /// Found by fuzzing (`audio_decode`, after the fix above): bytes that are neither WAV nor
    /// FLAC at the start but hold a FLAC marker further on, followed by a picture block
    /// claiming 2.2 GB; symphonia's probe found the marker and allocated.
    #[test]
    fn regression_a_flac_marker_inside_other_bytes_is_not_searched_for() {
        let found = include_bytes!("../../fixtures/fuzz/audio_decode/marker-at-offset-2");
        let err = essentials(found).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AudioDecode);
        assert!(err.message().contains("not WAV or FLAC"), "{err}");
        // An ID3v2 tag before the marker is skipped, as FLAC readers do.
        let flac = flac_file(&[], &[0xFF, 0xF8]);
        let mut tagged = b"ID3\x04\x00\x00\x00\x00\x00\x03abc".to_vec();
        tagged.extend_from_slice(&flac);
        assert_eq!(essentials(&tagged).unwrap(), flac);
    }

    #[test]
    fn malformed_flac_metadata_is_refused() {
        let cases = [
            (b"fLaC".to_vec(), "runs past the end"),
            (
                flac_file(&[(6, vec![1; 10])], &[])[..30].to_vec(),
                "runs past",
            ),
            (
                {
                    let mut no_info = b"fLaC".to_vec();
                    no_info.extend_from_slice(&[0x84, 0, 0, 2, 0, 0]);
                    no_info
                },
                "no STREAMINFO",
            ),
            (flac_file(&[(0, vec![0; 34])], &[]), "STREAMINFO"),
        ];
        for (bytes, says) in cases {
            let err = essentials(&bytes).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AudioDecode);
            assert!(err.message().contains(says), "{says}: {err}");
        }
    }
}
