//! Frames back to image bytes, because [`crate::authenticator::Authenticator`] takes what a terminal would
//! send over the wire. The bytes are a face: they are wiped on drop.

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::face::FaceImage;

/// How a frame is encoded for the authenticator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameEncoding {
    /// JPEG at this quality (1–100), without chroma subsampling, by libjpeg-turbo.
    Jpeg {
        /// Quality, 1–100.
        quality: u8,
    },
    /// Lossless PNG: exact pixels, several times larger and slower to write than JPEG.
    Png,
}

impl Default for FrameEncoding {
    /// JPEG at quality 95: the models see almost the captured pixels (detection and liveness
    /// scores move by well under their margins) at a tenth of PNG's size.
    fn default() -> FrameEncoding {
        FrameEncoding::Jpeg { quality: 95 }
    }
}

/// Encodes an image. Refused ([`ErrorKind::InvalidInput`]): a JPEG quality outside 1–100, or
/// an encoder failure.
pub fn encode_image(image: &FaceImage, encoding: FrameEncoding) -> Result<Zeroizing<Vec<u8>>> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "encoding a {}x{} frame as {what} failed: {e}",
                image.width(),
                image.height()
            ),
        )
    };
    let (width, height) = (image.width() as usize, image.height() as usize);
    match encoding {
        FrameEncoding::Jpeg { quality } => {
            if !(1..=100).contains(&quality) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("a JPEG quality is 1 to 100, got {quality}"),
                ));
            }
            let mut compressor = turbojpeg::Compressor::new().map_err(|e| failed("JPEG", &e))?;
            compressor
                .set_quality(i32::from(quality))
                .map_err(|e| failed("JPEG", &e))?;
            // 4:4:4 keeps the colour detail the liveness models look at (print and screen
            // artefacts); the frame is encoded once, so the size does not matter much.
            compressor
                .set_subsamp(turbojpeg::Subsamp::None)
                .map_err(|e| failed("JPEG", &e))?;
            // Into our own buffer, so the encoded face is wiped with it.
            let bound = compressor
                .buf_len(width, height)
                .map_err(|e| failed("JPEG", &e))?;
            let mut out = Zeroizing::new(vec![0u8; bound]);
            let pixels = turbojpeg::Image {
                pixels: image.rgb(),
                width,
                pitch: width * 3,
                height,
                format: turbojpeg::PixelFormat::RGB,
            };
            let len = compressor
                .compress_to_slice(pixels, &mut out)
                .map_err(|e| failed("JPEG", &e))?;
            out.truncate(len);
            Ok(out)
        }
        FrameEncoding::Png => {
            use image::ImageEncoder;
            // Reserved up front so the buffer is not reallocated, leaving unwiped copies.
            let mut out = Zeroizing::new(Vec::with_capacity(
                width * height * 3 + (height + 1) * 64 + 1024,
            ));
            image::codecs::png::PngEncoder::new(&mut *out)
                .write_image(
                    image.rgb(),
                    image.width(),
                    image.height(),
                    image::ExtendedColorType::Rgb8,
                )
                .map_err(|e| failed("PNG", &e))?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::image::LimitsConfig;

    fn gradient() -> FaceImage {
        let (w, h) = (48u32, 32u32);
        let rgb = (0..w * h)
            .flat_map(|i| [(i % w * 5) as u8, (i / w * 7) as u8, 100])
            .collect();
        FaceImage::from_rgb(w, h, rgb).unwrap()
    }

    #[test]
    fn frames_round_trip_through_jpeg_and_png() {
        let image = gradient();
        let png = encode_image(&image, FrameEncoding::Png).unwrap();
        let back = FaceImage::decode(&png, &LimitsConfig::default()).unwrap();
        assert_eq!(back.rgb(), image.rgb());
        let jpeg = encode_image(&image, FrameEncoding::default()).unwrap();
        let back = FaceImage::decode(&jpeg, &LimitsConfig::default()).unwrap();
        assert_eq!((back.width(), back.height()), (48, 32));
        let worst = back
            .rgb()
            .iter()
            .zip(image.rgb())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 8, "{worst}");
        let e = encode_image(&image, FrameEncoding::Jpeg { quality: 0 }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
