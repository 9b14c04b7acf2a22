//! Decoding images from outside into RGB pixels, with limits checked before allocation.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, ErrorKind, Result};

/// Limits on images from outside (`[limits]`), enforced before any expensive work.
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest encoded image accepted, in bytes. By default, 32 MiB.
    pub max_image_bytes: usize,
    /// Largest decoded image accepted, in pixels (width × height), checked from the header
    /// before any pixel buffer is allocated. By default, 40 million.
    pub max_image_pixels: u64,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_image_bytes: 32 << 20,
            max_image_pixels: 40_000_000,
        }
    }
}

impl LimitsConfig {
    /// Checks the values ([`ErrorKind::Config`] naming the key).
    pub fn validate(&self) -> Result<()> {
        if self.max_image_bytes == 0 || self.max_image_pixels == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "limits.max_image_bytes and limits.max_image_pixels must be positive",
            ));
        }
        Ok(())
    }
}

/// An RGB image (8 bits per channel, row-major, no padding).
///
/// A face photo is biometric data: the pixels are wiped when the image is dropped and never
/// shown by `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FaceImage {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl std::fmt::Debug for FaceImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FaceImage({}x{}, pixels redacted)",
            self.width, self.height
        )
    }
}

impl FaceImage {
    /// Wraps RGB pixels; `rgb.len()` must be `width × height × 3`.
    pub fn from_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Result<FaceImage> {
        let expected = width as usize * height as usize * 3;
        if width == 0 || height == 0 || rgb.len() != expected {
            let mut rgb = rgb;
            rgb.zeroize();
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "an RGB image of {width}x{height} needs {expected} bytes and both sides positive"
                ),
            ));
        }
        Ok(FaceImage { width, height, rgb })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels, `[r, g, b, r, g, b, …]` row by row.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// Decodes JPEG or PNG bytes: EXIF orientation applied, greyscale and alpha images turned
    /// into RGB.
    ///
    /// Refused with a typed error, before any pixel buffer is allocated where possible: empty
    /// input, more bytes than `limits.max_image_bytes`, a format other than JPEG or PNG, a
    /// header declaring more than `limits.max_image_pixels` pixels (a decompression bomb),
    /// and truncated or corrupt data.
    ///
    /// JPEGs are decoded by libjpeg-turbo (default settings: accurate integer IDCT, smooth
    /// chroma upsampling), the decoder behind Pillow and OpenCV, so vouch sees the same pixels
    /// as the pipelines its models were trained and evaluated with.
    pub fn decode(bytes: &[u8], limits: &LimitsConfig) -> Result<FaceImage> {
        if bytes.is_empty() {
            return Err(Error::new(
                ErrorKind::ImageDecode,
                "the image is empty (0 bytes)",
            ));
        }
        if bytes.len() > limits.max_image_bytes {
            return Err(Error::new(
                ErrorKind::ImageTooLarge,
                format!(
                    "the image is {} bytes, more than the limit of {} (limits.max_image_bytes)",
                    bytes.len(),
                    limits.max_image_bytes
                ),
            ));
        }
        match image::guess_format(bytes) {
            Ok(ImageFormat::Jpeg) => decode_jpeg(bytes, limits),
            Ok(ImageFormat::Png) => decode_png(bytes, limits),
            Ok(other) => Err(Error::new(
                ErrorKind::ImageDecode,
                format!("{other:?} images are not accepted; send JPEG or PNG"),
            )),
            Err(_) => Err(Error::new(
                ErrorKind::ImageDecode,
                "the data is not a JPEG or PNG image (unrecognised signature)",
            )),
        }
    }

    /// Reads and decodes an image file (see [`FaceImage::decode`]).
    pub fn open(path: &std::path::Path, limits: &LimitsConfig) -> Result<FaceImage> {
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io("reading image", path, e))?
            .len();
        if size > limits.max_image_bytes as u64 {
            return Err(Error::new(
                ErrorKind::ImageTooLarge,
                format!(
                    "{} is {size} bytes, more than the limit of {} (limits.max_image_bytes)",
                    path.display(),
                    limits.max_image_bytes
                ),
            ));
        }
        let mut bytes = std::fs::read(path).map_err(|e| Error::io("reading image", path, e))?;
        let result = FaceImage::decode(&bytes, limits)
            .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.message())));
        bytes.zeroize();
        result
    }

    /// The image turned upright according to an EXIF orientation code (2–8).
    fn oriented(self, code: u16) -> FaceImage {
        use image::metadata::Orientation;
        let Some(orientation) = Orientation::from_exif(code as u8) else {
            return self;
        };
        let (width, height) = (self.width, self.height);
        let mut this = self;
        let pixels = std::mem::take(&mut this.rgb);
        let Some(buffer) = image::RgbImage::from_raw(width, height, pixels) else {
            return this;
        };
        let mut image = DynamicImage::ImageRgb8(buffer);
        image.apply_orientation(orientation);
        let turned = image.into_rgb8();
        let (w, h) = turned.dimensions();
        FaceImage {
            width: w,
            height: h,
            rgb: turned.into_raw(),
        }
    }

    /// The `width × height` region whose top-left pixel is `(x, y)`; it must lie inside the
    /// image ([`ErrorKind::InvalidInput`] otherwise).
    pub fn cropped(&self, x: u32, y: u32, width: u32, height: u32) -> Result<FaceImage> {
        let fits = width > 0
            && height > 0
            && x.checked_add(width).is_some_and(|r| r <= self.width)
            && y.checked_add(height).is_some_and(|b| b <= self.height);
        if !fits {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the region {width}x{height} at ({x}, {y}) is not inside the {}x{} image",
                    self.width, self.height
                ),
            ));
        }
        let (row, from) = (self.width as usize * 3, x as usize * 3);
        let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
        for r in y as usize..(y + height) as usize {
            rgb.extend_from_slice(&self.rgb[r * row + from..r * row + from + width as usize * 3]);
        }
        FaceImage::from_rgb(width, height, rgb)
    }

    /// The image resized to `width × height` with a bilinear convolution (bit-exact with
    /// Pillow's `BILINEAR`), which averages over the source pixels so a large photo is not
    /// aliased.
    pub fn resized(&self, width: u32, height: u32) -> Result<FaceImage> {
        if width == 0 || height == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "cannot resize to an empty image",
            ));
        }
        let rgb = crate::face::resample::resize_rgb(
            &self.rgb,
            self.width as usize,
            self.height as usize,
            width as usize,
            height as usize,
        );
        FaceImage::from_rgb(width, height, rgb)
    }
}

fn check_dimensions(width: u64, height: u64, limits: &LimitsConfig) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::new(
            ErrorKind::ImageDecode,
            format!("the image header declares an empty image ({width}x{height})"),
        ));
    }
    let pixels = width.saturating_mul(height);
    if pixels > limits.max_image_pixels {
        return Err(Error::new(
            ErrorKind::ImageTooLarge,
            format!(
                "the image header declares {width}x{height} = {pixels} pixels, more than the limit of {} (limits.max_image_pixels)",
                limits.max_image_pixels
            ),
        ));
    }
    Ok(())
}

/// Progressive JPEGs with more scans than this are refused: each scan re-walks the whole
/// image, so thousands of tiny scans turn a small file into minutes of CPU.
const MAX_JPEG_SCANS: u32 = 100;

fn decode_jpeg(bytes: &[u8], limits: &LimitsConfig) -> Result<FaceImage> {
    let corrupt = |e: turbojpeg::Error| {
        Error::new(
            ErrorKind::ImageDecode,
            format!("the JPEG is corrupt or truncated: {e}"),
        )
    };
    let mut decompressor = turbojpeg::Decompressor::new().map_err(corrupt)?;
    let header = decompressor.read_header(bytes).map_err(corrupt)?;
    check_dimensions(header.width as u64, header.height as u64, limits)?;
    decompressor
        .set_scan_limit(MAX_JPEG_SCANS)
        .map_err(corrupt)?;
    let mut rgb = vec![0u8; header.width * header.height * 3];
    let output = turbojpeg::Image {
        pixels: rgb.as_mut_slice(),
        width: header.width,
        pitch: header.width * 3,
        height: header.height,
        format: turbojpeg::PixelFormat::RGB,
    };
    // Warnings (a premature end of data, a corrupt segment) are errors here: a face partly
    // replaced by grey fill must not be matched.
    if let Err(e) = decompressor.decompress(bytes, output) {
        rgb.zeroize();
        return Err(corrupt(e));
    }
    let image = FaceImage::from_rgb(header.width as u32, header.height as u32, rgb)?;
    Ok(match jpeg_exif_orientation(bytes) {
        1 => image,
        code => image.oriented(code),
    })
}

fn decode_png(bytes: &[u8], limits: &LimitsConfig) -> Result<FaceImage> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Png);
    let mut image_limits = image::Limits::default();
    // Room for 16-bit RGBA pixels plus the decoder's working buffers.
    image_limits.max_alloc = Some(limits.max_image_pixels.saturating_mul(10).max(1 << 20));
    reader.limits(image_limits);
    let corrupt = |e: image::ImageError| {
        Error::new(
            ErrorKind::ImageDecode,
            format!("the PNG is corrupt or truncated: {e}"),
        )
    };
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(u64::from(width), u64::from(height), limits)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    let rgb = match image {
        DynamicImage::ImageRgb8(buffer) => buffer,
        mut other => {
            let converted = other.to_rgb8();
            wipe(&mut other);
            converted
        }
    };
    let (width, height) = rgb.dimensions();
    FaceImage::from_rgb(width, height, rgb.into_raw())
}

/// The EXIF orientation code (1–8) of a JPEG, or 1 when it has none or the EXIF block is
/// malformed (orientation is a display hint; a broken one is ignored, not fatal).
fn jpeg_exif_orientation(bytes: &[u8]) -> u16 {
    exif_orientation(bytes)
        .filter(|c| (1..=8).contains(c))
        .unwrap_or(1)
}

fn exif_orientation(bytes: &[u8]) -> Option<u16> {
    let be16 = |b: &[u8], at: usize| Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]));
    let mut at = 2; // after SOI
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        if marker == 0xDA || marker == 0xD9 {
            return None; // start of scan: no EXIF before the image data
        }
        let len = usize::from(be16(bytes, at + 2)?);
        let segment = bytes.get(at + 4..at + 2 + len)?;
        if marker == 0xE1 && segment.starts_with(b"Exif\0\0") {
            return tiff_orientation(&segment[6..]);
        }
        at += 2 + len;
    }
    None
}

fn tiff_orientation(tiff: &[u8]) -> Option<u16> {
    let little = match tiff.get(..4)? {
        [b'I', b'I', 42, 0] => true,
        [b'M', b'M', 0, 42] => false,
        _ => return None,
    };
    let u16_at = |at: usize| {
        let b = [*tiff.get(at)?, *tiff.get(at + 1)?];
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let u32_at = |at: usize| {
        let b = [
            *tiff.get(at)?,
            *tiff.get(at + 1)?,
            *tiff.get(at + 2)?,
            *tiff.get(at + 3)?,
        ];
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let entries = usize::from(u16_at(ifd)?);
    for i in 0..entries.min(256) {
        let entry = ifd.checked_add(2 + 12 * i)?;
        // tag 0x0112 Orientation, type 3 (SHORT), count 1
        if u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3 {
            return u16_at(entry + 8);
        }
    }
    None
}

fn wipe(image: &mut DynamicImage) {
    match image {
        DynamicImage::ImageLuma8(b) => b.as_mut().zeroize(),
        DynamicImage::ImageLumaA8(b) => b.as_mut().zeroize(),
        DynamicImage::ImageRgba8(b) => b.as_mut().zeroize(),
        DynamicImage::ImageLuma16(b) => b.as_mut().zeroize(),
        DynamicImage::ImageLumaA16(b) => b.as_mut().zeroize(),
        DynamicImage::ImageRgb16(b) => b.as_mut().zeroize(),
        DynamicImage::ImageRgba16(b) => b.as_mut().zeroize(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn greyscale_png_becomes_rgb() {
        let grey = image::GrayImage::from_fn(4, 3, |x, y| image::Luma([(x * 10 + y) as u8]));
        let bytes = encode(DynamicImage::ImageLuma8(grey), ImageFormat::Png);
        let img = FaceImage::decode(&bytes, &LimitsConfig::default()).unwrap();
        assert_eq!((img.width(), img.height()), (4, 3));
        assert_eq!(&img.rgb()[..6], &[0, 0, 0, 10, 10, 10]);
    }

    #[test]
    fn bad_bytes_get_typed_errors() {
        let limits = LimitsConfig::default();
        let cases: [(&[u8], ErrorKind); 3] = [
            (b"", ErrorKind::ImageDecode),
            (b"hello, this is a text file", ErrorKind::ImageDecode),
            (
                b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
                ErrorKind::ImageDecode,
            ),
        ];
        for (bytes, kind) in cases {
            assert_eq!(FaceImage::decode(bytes, &limits).unwrap_err().kind(), kind);
        }
    }

    /// A JPEG of a smooth gradient, `width × height`, encoded by libjpeg-turbo.
    pub(crate) fn jpeg(width: usize, height: usize) -> Vec<u8> {
        let pixels: Vec<u8> = (0..width * height)
            .flat_map(|i| [(i % width * 3) as u8, (i / width * 3) as u8, 7])
            .collect();
        let image = turbojpeg::Image {
            pixels: pixels.as_slice(),
            width,
            pitch: width * 3,
            height,
            format: turbojpeg::PixelFormat::RGB,
        };
        turbojpeg::compress(image, 90, turbojpeg::Subsamp::Sub2x2)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn jpeg_round_trip() {
        let img = FaceImage::decode(&jpeg(40, 24), &LimitsConfig::default()).unwrap();
        assert_eq!((img.width(), img.height()), (40, 24));
        // lossy, but close to the gradient
        let p = 3 * (10 * 40 + 20);
        assert!(
            (i32::from(img.rgb()[p]) - 60).abs() <= 4,
            "{}",
            img.rgb()[p]
        );
    }

    #[test]
    fn exif_orientation_codes_are_read_defensively() {
        let tiff_le = [
            b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0,
        ];
        assert_eq!(tiff_orientation(&tiff_le), Some(6));
        let tiff_be = [
            b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 3, 0, 0,
        ];
        assert_eq!(tiff_orientation(&tiff_be), Some(3));
        // truncated, wrong magic, offsets past the end: ignored, never a panic
        assert_eq!(tiff_orientation(&tiff_le[..15]), None);
        assert_eq!(tiff_orientation(b"XX*\0"), None);
        assert_eq!(
            tiff_orientation(&[b'I', b'I', 42, 0, 255, 255, 255, 255]),
            None
        );
        assert_eq!(jpeg_exif_orientation(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF]), 1);
        assert_eq!(
            jpeg_exif_orientation(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x02]),
            1
        );
    }

    #[test]
    fn truncated_jpeg_is_refused() {
        let bytes = jpeg(64, 64);
        let limits = LimitsConfig::default();
        FaceImage::decode(&bytes, &limits).unwrap();
        for cut in [bytes.len() / 2, bytes.len() - 2, 20, 3] {
            let err = FaceImage::decode(&bytes[..cut], &limits).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ImageDecode, "cut at {cut}: {err}");
        }
    }

    #[test]
    fn byte_limit_is_checked_first() {
        let limits = LimitsConfig {
            max_image_bytes: 10,
            ..LimitsConfig::default()
        };
        let err = FaceImage::decode(&[0u8; 11], &limits).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ImageTooLarge);
    }

    #[test]
    fn debug_does_not_show_pixels() {
        let img = FaceImage::from_rgb(1, 1, vec![12, 34, 56]).unwrap();
        assert_eq!(format!("{img:?}"), "FaceImage(1x1, pixels redacted)");
    }

    #[test]
    fn resize_keeps_a_flat_colour() {
        let img = FaceImage::from_rgb(10, 8, [200u8, 100, 50].repeat(80)).unwrap();
        let small = img.resized(5, 4).unwrap();
        assert_eq!((small.width(), small.height()), (5, 4));
        assert!(small.rgb().chunks(3).all(|p| p == [200, 100, 50]));
    }
}
