//! Image bytes → decoded pixels (JPEG via libjpeg-turbo, PNG, EXIF orientation, size limits):
//! any input is a typed error or an image within the limits, never a panic or a huge
//! allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch::config::LimitsConfig;
use vouch::face::FaceImage;

fuzz_target!(|data: &[u8]| {
    let limits = LimitsConfig::default();
    if let Ok(image) = FaceImage::decode(data, &limits) {
        assert!(u64::from(image.width()) * u64::from(image.height()) <= limits.max_image_pixels);
        assert_eq!(
            image.rgb().len(),
            image.width() as usize * image.height() as usize * 3
        );
    }
});
