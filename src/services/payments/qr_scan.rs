//! Reading a QR code from a picture at onboarding: the screenshot (or photo) of the code a
//! vendor's banking app shows. The browser sends it as PNG (the page redraws any picture the
//! phone took, JPEG included, as PNG no wider than 1 200 px); the code's text then goes through
//! the same lenient VietQR reading as `POST /v1/qr/parse`.

/// The largest picture read, in pixels a side (a phone screenshot is about 1 080 × 2 400).
const MAX_SIDE: u32 = 4_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrScanError {
    #[error("the picture is not a PNG image this service can read")]
    NotAnImage,
    #[error("no QR code could be read in the picture")]
    NoCode,
}

/// The text of the first QR code read in a PNG picture.
pub fn read_qr_png(png_bytes: &[u8]) -> Result<String, QrScanError> {
    let mut decoder = png::Decoder::new(png_bytes);
    // Palettes and low bit depths become 8-bit samples.
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|_| QrScanError::NotAnImage)?;
    let info = reader.info();
    if info.width > MAX_SIDE || info.height > MAX_SIDE {
        return Err(QrScanError::NotAnImage);
    }
    let mut buffer = vec![0; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buffer)
        .map_err(|_| QrScanError::NotAnImage)?;
    let samples = frame.color_type.samples();
    let (width, height) = (frame.width as usize, frame.height as usize);
    let line = frame.line_size;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        let pixel = &buffer[y * line + x * samples..][..samples];
        grey(pixel)
    });
    // rqrr asserts on the geometry of some degenerate finder patterns (a crafted or unlucky
    // picture, upstream rqrr#54): such a picture has no code this service can read.
    std::panic::catch_unwind(move || {
        image
            .detect_grids()
            .iter()
            .find_map(|grid| grid.decode().ok().map(|(_, text)| text))
    })
    .ok()
    .flatten()
    .ok_or(QrScanError::NoCode)
}

/// A pixel's lightness, 0 to 255: grey as it is; colour by luma; a transparent pixel counts
/// as the white page behind it.
fn grey(pixel: &[u8]) -> u8 {
    let (colour, alpha) = match pixel.len() {
        1 => (pixel[0], 255),
        2 => (pixel[0], pixel[1]),
        3 => (luma(pixel), 255),
        _ => (luma(pixel), pixel[3]),
    };
    let alpha = u32::from(alpha);
    ((u32::from(colour) * alpha + 255 * (255 - alpha)) / 255) as u8
}

fn luma(rgb: &[u8]) -> u8 {
    ((u32::from(rgb[0]) * 299 + u32::from(rgb[1]) * 587 + u32::from(rgb[2]) * 114) / 1000) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::payments::qr_image::{render, ImageFormat};

    /// A static ACB code from the shared VietQR vectors (`xuannghia-acb-static`).
    const PAYLOAD: &str =
        "00020101021138530010A0000007270123000697041601092576788590208QRIBFTTA53037045802VN6304AE9F";

    #[test]
    fn our_own_png_reads_back() {
        let image = render(PAYLOAD, ImageFormat::Png, 512);
        assert_eq!(read_qr_png(&image.bytes).unwrap(), PAYLOAD);
    }

    #[test]
    fn a_photo_like_picture_reads_back() {
        // Scaled onto a larger grey, noisy page, off centre, in colour with alpha.
        let image = render(PAYLOAD, ImageFormat::Png, 300);
        let mut decoder = png::Decoder::new(&image.bytes[..]);
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut code = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut code).unwrap();
        let samples = frame.color_type.samples();
        let (width, height) = (700usize, 900usize);
        let mut rgba = vec![0u8; width * height * 4];
        let mut noise: u32 = 12_345;
        for y in 0..height {
            for x in 0..width {
                noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let jitter = (noise >> 16) % 40;
                // The code drawn 1.5 times larger, starting at (120, 210).
                let (cx, cy) = ((x as f64 - 120.0) / 1.5, (y as f64 - 210.0) / 1.5);
                let inside = cx >= 0.0
                    && cy >= 0.0
                    && (cx as u32) < frame.width
                    && (cy as u32) < frame.height;
                let base = if inside {
                    code[cy as usize * frame.line_size + cx as usize * samples]
                } else {
                    200
                };
                let value = if base < 128 {
                    30 + jitter
                } else {
                    190 + jitter.min(60)
                } as u8;
                let at = (y * width + x) * 4;
                rgba[at..at + 4].copy_from_slice(&[value, value.saturating_sub(8), value, 255]);
            }
        }
        let mut png_bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut png_bytes, width as u32, height as u32);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            encoder
                .write_header()
                .unwrap()
                .write_image_data(&rgba)
                .unwrap();
        }
        assert_eq!(read_qr_png(&png_bytes).unwrap(), PAYLOAD);
    }

    /// A greyscale PNG of `pixels` (row by row, 0 black to 255 white).
    fn grey_png(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
        let mut png_bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
            encoder.set_color(png::ColorType::Grayscale);
            encoder
                .write_header()
                .unwrap()
                .write_image_data(pixels)
                .unwrap();
        }
        png_bytes
    }

    #[test]
    fn pictures_without_a_code_or_not_png_are_refused() {
        assert_eq!(read_qr_png(b"not a png"), Err(QrScanError::NotAnImage));
        let blank = grey_png(64, 64, &[255; 64 * 64]);
        assert_eq!(read_qr_png(&blank), Err(QrScanError::NoCode));
    }

    #[test]
    fn a_picture_that_trips_the_decoders_assert_reads_as_no_code() {
        // Three finder patterns (7 x 7 modules, one pixel each) packed so close that rqrr
        // 0.9.3 measures the distance between them as zero and asserts `scan >= 1` in
        // `SkewedGridLocation::from_group` (found by a random search): without the
        // `catch_unwind` this panics a server worker.
        let (width, height) = (23, 19);
        let mut pixels = vec![255u8; width * height];
        for (left, top) in [(3, 3), (4, 11), (12, 11)] {
            for dy in 0..7 {
                for dx in 0..7 {
                    let ring = (dx as i32 - 3).abs().max((dy as i32 - 3).abs());
                    if ring != 2 {
                        pixels[(top + dy) * width + left + dx] = 0;
                    }
                }
            }
        }
        let picture = grey_png(width as u32, height as u32, &pixels);
        assert_eq!(read_qr_png(&picture), Err(QrScanError::NoCode));
    }
}
