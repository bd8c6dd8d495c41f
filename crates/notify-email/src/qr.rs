//! The activation QR code as a small PNG, sent inline (CID) because Gmail drops `data:` images.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, GrayImage, ImageEncoder, Luma};
use qrcode::{Color, EcLevel, QrCode};

use crate::RenderError;

/// Pixels per QR module: sharp on a 2x screen when shown at about 220 CSS pixels.
const MODULE_PX: u32 = 6;
/// Light modules around the code; the QR specification asks for 4.
const QUIET_ZONE: u32 = 4;

/// Renders `text` (the exact LPA string) as a black-on-white greyscale PNG, typically 1–3 KB.
///
/// Error correction level M: it survives a phone camera pointed at a screen and keeps the
/// code small enough for a long matching ID.
pub fn qr_png(text: &str) -> Result<Vec<u8>, RenderError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| RenderError::Qr(e.to_string()))?;
    let modules =
        u32::try_from(code.width()).map_err(|_| RenderError::Qr("code too wide".into()))?;
    let side = (modules + 2 * QUIET_ZONE) * MODULE_PX;
    let mut image = GrayImage::from_pixel(side, side, Luma([255]));
    for (index, color) in code.to_colors().into_iter().enumerate() {
        if color != Color::Dark {
            continue;
        }
        let index = u32::try_from(index).map_err(|_| RenderError::Qr("code too large".into()))?;
        let (x0, y0) = (
            (index % modules + QUIET_ZONE) * MODULE_PX,
            (index / modules + QUIET_ZONE) * MODULE_PX,
        );
        for y in y0..y0 + MODULE_PX {
            for x in x0..x0 + MODULE_PX {
                image.put_pixel(x, y, Luma([0]));
            }
        }
    }
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Adaptive)
        .write_image(image.as_raw(), side, side, ExtendedColorType::L8)
        .map_err(|e| RenderError::Qr(e.to_string()))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_is_small_and_decodes_back_to_the_lpa() {
        let lpa = "LPA:1$rsp.demo$69C32E7Dxxxxxxxx";
        let png = qr_png(lpa).expect("renders");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.len() < 8 * 1024, "PNG is {} bytes", png.len());
        assert_eq!(esim_courier_test_support::smtp::read_qr(&png), lpa);
    }

    #[test]
    fn text_too_long_for_a_qr_code_is_an_error_not_a_panic() {
        assert!(matches!(qr_png(&"x".repeat(5000)), Err(RenderError::Qr(_))));
    }
}
