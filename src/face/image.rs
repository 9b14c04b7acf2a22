//! Decoding images from outside into RGB pixels, with limits checked before allocation.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::config::LimitsConfig;
use crate::error::{Error, ErrorKind, Result};

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
        write!(f, "FaceImage({}x{}, pixels redacted)", self.width, self.height)
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
    pub fn decode(bytes: &[u8], limits: &LimitsConfig) -> Result<FaceImage> {
        if bytes.is_empty() {
            return Err(Error::new(ErrorKind::ImageDecode, "the image is empty (0 bytes)"));
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
        let format = image::guess_format(bytes).map_err(|_| {
            Error::new(
                ErrorKind::ImageDecode,
                "the data is not a JPEG or PNG image (unrecognised signature)",
            )
        })?;
        if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
            return Err(Error::new(
                ErrorKind::ImageDecode,
                format!("{format:?} images are not accepted; send JPEG or PNG"),
            ));
        }
        if format == ImageFormat::Jpeg && !jpeg_has_end_marker(bytes) {
            // The JPEG decoder fills a truncated scan with grey instead of failing; a face
            // half-replaced by grey must not be matched, so a missing end marker is refused.
            return Err(Error::new(
                ErrorKind::ImageDecode,
                "the JPEG is truncated (no end-of-image marker)",
            ));
        }
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut image_limits = image::Limits::default();
        // Room for the RGB(A) pixels plus the decoder's working buffers.
        image_limits.max_alloc = Some(limits.max_image_pixels.saturating_mul(8).max(1 << 20));
        reader.limits(image_limits);
        let corrupt = |e: image::ImageError| {
            Error::new(
                ErrorKind::ImageDecode,
                format!("the {format:?} image is corrupt or truncated: {e}"),
            )
        };
        let mut decoder = reader.into_decoder().map_err(corrupt)?;
        let (width, height) = decoder.dimensions();
        if width == 0 || height == 0 {
            return Err(Error::new(
                ErrorKind::ImageDecode,
                format!("the image header declares an empty image ({width}x{height})"),
            ));
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > limits.max_image_pixels {
            return Err(Error::new(
                ErrorKind::ImageTooLarge,
                format!(
                    "the image header declares {width}x{height} = {pixels} pixels, more than the limit of {} (limits.max_image_pixels)",
                    limits.max_image_pixels
                ),
            ));
        }
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
        let result = FaceImage::decode(&bytes, limits).map_err(|e| {
            Error::new(e.kind(), format!("{}: {}", path.display(), e.message()))
        });
        bytes.zeroize();
        result
    }

    /// The image scaled by `scale` (< 1 shrinks) with a bilinear convolution filter, the same
    /// filter as Pillow's `resize(..., BILINEAR)`, which averages over the source pixels so a
    /// large photo is not aliased.
    pub fn resized(&self, width: u32, height: u32) -> Result<FaceImage> {
        use fast_image_resize as fr;
        let src = fr::images::ImageRef::new(self.width, self.height, &self.rgb, fr::PixelType::U8x3)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("cannot resize: {e}")))?;
        let mut dst = fr::images::Image::new(width.max(1), height.max(1), fr::PixelType::U8x3);
        let options = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
        fr::Resizer::new()
            .resize(&src, &mut dst, &options)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("cannot resize: {e}")))?;
        FaceImage::from_rgb(width.max(1), height.max(1), dst.into_vec())
    }
}

/// True when the last marker-ish bytes of a JPEG include EOI (`FF D9`). Some cameras append a
/// few bytes of padding after EOI, so the tail is searched rather than only the last two bytes.
fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
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
            (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", ErrorKind::ImageDecode),
        ];
        for (bytes, kind) in cases {
            assert_eq!(FaceImage::decode(bytes, &limits).unwrap_err().kind(), kind);
        }
    }

    #[test]
    fn truncated_jpeg_is_refused() {
        let rgb = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 3, y as u8 * 3, 7]));
        let bytes = encode(DynamicImage::ImageRgb8(rgb), ImageFormat::Jpeg);
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
