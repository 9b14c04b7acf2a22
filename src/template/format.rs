//! The plaintext template format (version 1): a fixed header, then the vector.
//!
//! ```text
//! magic "VCHT" | version u16 | modality u8 | element type u8 | model id (u8 length + UTF-8)
//! | model sha256 [32] | dimension u32 | sample count u32 | quality f32 | created unix-s i64
//! | values: dimension × f32
//! ```
//! All integers little-endian. The header travels in the clear inside the encrypted envelope
//! (so a store can list templates without keys) but is authenticated by the AEAD.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, ErrorKind, Result};

const MAGIC: &[u8; 4] = b"VCHT";
/// The format version this library writes.
pub const FORMAT_VERSION: u16 = 1;
/// The largest vector a template may hold: 1 MiB of `f32`, room for a passphrase enrollment
/// (every take of every digit, frame by frame); embeddings are far smaller.
pub const MAX_DIMENSION: u32 = 262_144;
const ELEMENT_F32: u8 = 1;

/// What a template describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// A face embedding.
    Face,
    /// A voiceprint.
    Voice,
    /// A subject's enrolled spoken digits (for the passphrase).
    Passphrase,
}

impl Modality {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Face => "face",
            Modality::Voice => "voice",
            Modality::Passphrase => "passphrase",
        }
    }

    /// Parses [`Modality::as_str`].
    pub fn parse(name: &str) -> Result<Modality> {
        match name {
            "face" => Ok(Modality::Face),
            "voice" => Ok(Modality::Voice),
            "passphrase" => Ok(Modality::Passphrase),
            other => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("unknown modality {other:?} (face, voice or passphrase)"),
            )),
        }
    }

    fn code(self) -> u8 {
        match self {
            Modality::Face => 1,
            Modality::Voice => 2,
            Modality::Passphrase => 3,
        }
    }

    fn from_code(code: u8) -> Result<Modality> {
        match code {
            1 => Ok(Modality::Face),
            2 => Ok(Modality::Voice),
            3 => Ok(Modality::Passphrase),
            other => Err(corrupt(format!("unknown modality code {other}"))),
        }
    }
}

/// Everything about a template except its values. Not secret.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TemplateHeader {
    /// Face or voice.
    pub modality: Modality,
    /// The model that made the vector (`name@sha256-prefix`).
    pub model_id: String,
    /// The model file's sha256.
    pub model_sha256: [u8; 32],
    /// Vector length.
    pub dimension: u32,
    /// Samples averaged into the vector.
    pub samples: u32,
    /// Summary quality of the samples, 0..1 (the mean detection score for faces).
    pub quality: f32,
    /// Creation time, Unix seconds.
    pub created_unix: i64,
}

/// A plaintext template: header and vector. Biometric data: wiped on drop, redacted in `Debug`,
/// never serialised except through encryption.
#[derive(Clone, PartialEq, Zeroize, ZeroizeOnDrop)]
pub struct Template {
    #[zeroize(skip)]
    header: TemplateHeader,
    values: Vec<f32>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("header", &self.header)
            .field(
                "values",
                &format_args!("[{} values redacted]", self.values.len()),
            )
            .finish()
    }
}

impl Template {
    /// A template from a header and its vector; the dimension must match and values be finite.
    pub fn new(mut header: TemplateHeader, values: Vec<f32>) -> Result<Template> {
        if values.is_empty()
            || values.len() > MAX_DIMENSION as usize
            || values.iter().any(|v| !v.is_finite())
        {
            let mut values = values;
            values.zeroize();
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("a template vector has 1 to {MAX_DIMENSION} finite values"),
            ));
        }
        if header.model_id.is_empty() || header.model_id.len() > 255 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a model id is 1 to 255 bytes",
            ));
        }
        header.dimension = values.len() as u32;
        Ok(Template { header, values })
    }

    /// The header.
    pub fn header(&self) -> &TemplateHeader {
        &self.header
    }

    /// The vector.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Serialises the header alone.
    pub fn header_bytes(&self) -> Vec<u8> {
        encode_header(&self.header)
    }

    /// Serialises the vector alone (the part that gets encrypted). The caller wipes it.
    pub(crate) fn value_bytes(&self) -> Vec<u8> {
        self.values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Rebuilds a template from a parsed header and decrypted vector bytes.
    pub(crate) fn from_parts(header: TemplateHeader, value_bytes: &[u8]) -> Result<Template> {
        if value_bytes.len() != header.dimension as usize * 4 {
            return Err(corrupt(format!(
                "the vector holds {} bytes, the header declares {} values",
                value_bytes.len(),
                header.dimension
            )));
        }
        let values: Vec<f32> = value_bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Template::new(header, values).map_err(|e| corrupt(e.message().to_string()))
    }
}

/// Serialises a header.
pub fn encode_header(h: &TemplateHeader) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + h.model_id.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(h.modality.code());
    out.push(ELEMENT_F32);
    out.push(h.model_id.len() as u8);
    out.extend_from_slice(h.model_id.as_bytes());
    out.extend_from_slice(&h.model_sha256);
    out.extend_from_slice(&h.dimension.to_le_bytes());
    out.extend_from_slice(&h.samples.to_le_bytes());
    out.extend_from_slice(&h.quality.to_le_bytes());
    out.extend_from_slice(&h.created_unix.to_le_bytes());
    out
}

/// Parses a header; the whole of `bytes` must be the header.
pub fn decode_header(bytes: &[u8]) -> Result<TemplateHeader> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(4)? != MAGIC {
        return Err(corrupt("not a vouch template (bad magic)".into()));
    }
    let version = u16::from_le_bytes(r.array()?);
    if version != FORMAT_VERSION {
        return Err(Error::new(
            ErrorKind::TemplateFormat,
            format!(
                "template format version {version} is not supported (this vouch reads version {FORMAT_VERSION})"
            ),
        ));
    }
    let modality = Modality::from_code(r.take(1)?[0])?;
    let element = r.take(1)?[0];
    if element != ELEMENT_F32 {
        return Err(corrupt(format!("unknown element type {element}")));
    }
    let id_len = r.take(1)?[0] as usize;
    let model_id = std::str::from_utf8(r.take(id_len)?)
        .map_err(|_| corrupt("the model id is not UTF-8".into()))?
        .to_string();
    let model_sha256: [u8; 32] = r.array()?;
    let dimension = u32::from_le_bytes(r.array()?);
    let samples = u32::from_le_bytes(r.array()?);
    let quality = f32::from_le_bytes(r.array()?);
    let created_unix = i64::from_le_bytes(r.array()?);
    if r.at != bytes.len() {
        return Err(corrupt(format!(
            "{} unexpected bytes after the header",
            bytes.len() - r.at
        )));
    }
    if dimension == 0 || dimension > MAX_DIMENSION || model_id.is_empty() || !quality.is_finite() {
        return Err(corrupt(
            "the header's dimension, model id or quality is out of range".into(),
        ));
    }
    Ok(TemplateHeader {
        modality,
        model_id,
        model_sha256,
        dimension,
        samples,
        quality,
        created_unix,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                corrupt(format!(
                    "truncated: needed {n} more bytes at offset {}",
                    self.at
                ))
            })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

pub(crate) fn corrupt(what: String) -> Error {
    Error::new(
        ErrorKind::TemplateFormat,
        format!("the template is malformed: {what}"),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn header(dim: u32) -> TemplateHeader {
        TemplateHeader {
            modality: Modality::Face,
            model_id: "mobilefacenet@b7120c095d60".into(),
            model_sha256: [7; 32],
            dimension: dim,
            samples: 3,
            quality: 0.9,
            created_unix: 1_795_000_000,
        }
    }

    #[test]
    fn header_round_trip_and_every_truncation_fails() {
        let h = header(128);
        let bytes = encode_header(&h);
        assert_eq!(decode_header(&bytes).unwrap(), h);
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_header(&bytes[..cut]).unwrap_err().kind(),
                ErrorKind::TemplateFormat,
                "cut {cut}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            decode_header(&long).unwrap_err().kind(),
            ErrorKind::TemplateFormat
        );
    }

    #[test]
    fn unknown_versions_say_so() {
        let mut bytes = encode_header(&header(4));
        bytes[4] = 9;
        let err = decode_header(&bytes).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TemplateFormat);
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn debug_redacts_values() {
        let t = Template::new(header(2), vec![0.123, 0.456]).unwrap();
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("0.123") && shown.contains("redacted"),
            "{shown}"
        );
    }

    proptest! {
        #[test]
        fn any_header_round_trips(dim in 1u32..=MAX_DIMENSION, samples: u32, quality in 0f32..1.0, created: i64,
                                  id in "[a-z0-9_@]{1,64}", voice: bool, sha: [u8; 32]) {
            let h = TemplateHeader {
                modality: if voice { Modality::Voice } else { Modality::Face },
                model_id: id, model_sha256: sha, dimension: dim, samples, quality, created_unix: created,
            };
            prop_assert_eq!(decode_header(&encode_header(&h)).unwrap(), h);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_header(&bytes);
        }
    }
}
