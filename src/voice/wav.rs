//! Writing WAV: mono samples as a 16-bit PCM file ([`wav_pcm16`]), the bytes capture hands the
//! authenticator. Reading WAV and FLAC belongs to `audio.rs` and `container.rs`.

use zeroize::Zeroizing;

/// Writes mono samples in [-1, 1] (clamped) as a 16-bit PCM WAV file at `rate` Hz.
pub fn wav_pcm16(samples: &[f32], rate: u32) -> Zeroizing<Vec<u8>> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX - 36) & !1;
    let mut out = Zeroizing::new(Vec::with_capacity(44 + data_len as usize));
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in &samples[..data_len as usize / 2] {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}
