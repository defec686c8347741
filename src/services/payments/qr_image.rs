//! QR images of VietQR payloads: PNG for phones and SVG for print, plus the stall sticker.
//!
//! Every image keeps the 4-module quiet zone QR readers need (ISO/IEC 18004) and is exactly
//! `size` pixels square: modules are whole pixels (no blur), and what does not divide evenly
//! becomes extra white margin.

use qrcode::{Color, EcLevel, QrCode};

pub const MIN_SIZE: u32 = 128;
pub const MAX_SIZE: u32 = 2048;
pub const DEFAULT_SIZE: u32 = 512;
const QUIET_ZONE: usize = 4;

/// Level M (15 % of the code may be damaged) is what bank apps use for VietQR on screens and
/// stickers; higher levels make denser codes that low-end phone cameras read worse.
const EC_LEVEL: EcLevel = EcLevel::M;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

/// A rendered image and its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The code's modules, quiet zone included, row by row.
struct Modules {
    /// Modules per side, quiet zone included.
    width: usize,
    dark: Vec<bool>,
}

impl Modules {
    fn of(payload: &str) -> Self {
        // A VietQR payload is at most 512 characters; a QR code holds several times that.
        let code = QrCode::with_error_correction_level(payload, EC_LEVEL)
            .expect("a VietQR payload always fits in a QR code");
        let inner = code.width();
        let width = inner + 2 * QUIET_ZONE;
        let mut dark = vec![false; width * width];
        for (index, color) in code.to_colors().into_iter().enumerate() {
            let (x, y) = (index % inner + QUIET_ZONE, index / inner + QUIET_ZONE);
            dark[y * width + x] = color == Color::Dark;
        }
        Self { width, dark }
    }

    /// Runs of dark modules in each row: (x, y, length).
    fn dark_runs(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.dark
            .chunks(self.width)
            .enumerate()
            .flat_map(|(y, row)| {
                let mut runs = Vec::new();
                let mut x = 0;
                while x < row.len() {
                    if row[x] {
                        let start = x;
                        while x < row.len() && row[x] {
                            x += 1;
                        }
                        runs.push((start, y, x - start));
                    } else {
                        x += 1;
                    }
                }
                runs
            })
    }

    /// SVG path data drawing every dark module in a `width`-unit square.
    fn svg_path(&self) -> String {
        let mut path = String::new();
        for (x, y, length) in self.dark_runs() {
            path.push_str(&format!("M{x} {y}h{length}v1h-{length}z"));
        }
        path
    }

    /// A `<svg>` element showing the code (white background included) at the given place.
    fn svg_element(&self, attributes: &str) -> String {
        let width = self.width;
        format!(
            "<svg {attributes} viewBox=\"0 0 {width} {width}\" shape-rendering=\"crispEdges\">\
             <rect width=\"{width}\" height=\"{width}\" fill=\"#fff\"/>\
             <path fill=\"#000\" d=\"{}\"/></svg>",
            self.svg_path()
        )
    }
}

/// Renders the payload as a `size`-pixel square image. `size` must be within
/// [`MIN_SIZE`]..=[`MAX_SIZE`] (the caller checks, so a request can be told why).
pub fn render(payload: &str, format: ImageFormat, size: u32) -> Image {
    let modules = Modules::of(payload);
    match format {
        ImageFormat::Png => Image {
            content_type: "image/png",
            bytes: png(&modules, size as usize),
        },
        ImageFormat::Svg => Image {
            content_type: "image/svg+xml",
            bytes: modules
                .svg_element(&format!(
                    "xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\""
                ))
                .into_bytes(),
        },
    }
}

/// A 1-bit greyscale PNG: the most compact exact encoding of a two-colour picture.
fn png(modules: &Modules, size: usize) -> Vec<u8> {
    // MIN_SIZE is more than the widest code a VietQR payload makes, so scale is at least 1.
    let scale = (size / modules.width).max(1);
    let margin = size.saturating_sub(scale * modules.width) / 2;
    let row_bytes = size.div_ceil(8);
    // 1 is white in 1-bit greyscale, so the picture starts white and dark pixels are cleared.
    let mut pixels = vec![0xFF_u8; row_bytes * size];
    for (y, row) in modules.dark.chunks(modules.width).enumerate() {
        if !row.contains(&true) {
            continue;
        }
        let mut line = vec![0xFF_u8; row_bytes];
        for (x, _) in row.iter().enumerate().filter(|(_, dark)| **dark) {
            for pixel in margin + x * scale..margin + (x + 1) * scale {
                line[pixel / 8] &= !(0x80 >> (pixel % 8));
            }
        }
        for pixel_row in margin + y * scale..margin + (y + 1) * scale {
            pixels[pixel_row * row_bytes..(pixel_row + 1) * row_bytes].copy_from_slice(&line);
        }
    }
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, size as u32, size as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    // A module is `scale` identical pixel rows: the Up filter turns the repeats into zeros,
    // which the fast compressor shrinks well (about 3 KB at 512 px, twice the speed of the
    // default level for a 1 KB smaller file; see examples/qrbench.rs).
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::FilterType::Up);
    let mut writer = encoder
        .write_header()
        .expect("writing a PNG header to memory cannot fail");
    writer
        .write_image_data(&pixels)
        .expect("the pixel buffer matches the header");
    writer
        .finish()
        .expect("finishing a PNG in memory cannot fail");
    bytes
}

/// What a stall sticker says besides the code.
#[derive(Debug, Clone)]
pub struct StickerText<'a> {
    pub payee_name: &'a str,
    pub payee_code: &'a str,
    pub stall: Option<&'a str>,
    pub hamlet: Option<&'a str>,
    pub bank_short_name: &'a str,
    pub bank_name: &'a str,
    pub account_number: &'a str,
    pub holder_name: &'a str,
}

/// A printable 100 × 150 mm sticker: the call to action, the code, and who and which account
/// the money goes to, so a payer can check their banking app shows the same.
pub fn sticker(payload: &str, text: &StickerText<'_>) -> Image {
    let modules = Modules::of(payload);
    let place = [text.stall, text.hamlet]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    let lines: [(u32, u32, &str, String); 7] = [
        (1010, 54, "bold", fit(text.payee_name, 30)),
        (1075, 38, "normal", fit(&place, 40)),
        (
            1135,
            34,
            "normal",
            format!("Mã người nhận: {}", text.payee_code),
        ),
        (1215, 40, "bold", fit(text.bank_short_name, 40)),
        (1262, 28, "normal", fit(text.bank_name, 56)),
        (1345, 52, "bold", format!("STK {}", text.account_number)),
        (1410, 36, "normal", fit(text.holder_name, 44)),
    ];
    let mut svg = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100mm\" height=\"150mm\" \
         viewBox=\"0 0 1000 1500\" font-family=\"'Noto Sans', 'DejaVu Sans', Arial, sans-serif\" \
         text-anchor=\"middle\">\
         <rect x=\"10\" y=\"10\" width=\"980\" height=\"1480\" rx=\"40\" fill=\"#fff\" \
         stroke=\"#005baa\" stroke-width=\"12\"/>\
         <text x=\"500\" y=\"120\" font-size=\"66\" font-weight=\"bold\" fill=\"#005baa\">\
         Quét mã để thanh toán</text>",
    );
    svg.push_str(&modules.svg_element("x=\"150\" y=\"170\" width=\"700\" height=\"700\""));
    for (y, font_size, weight, line) in lines.iter().filter(|line| !line.3.is_empty()) {
        svg.push_str(&format!(
            "<text x=\"500\" y=\"{y}\" font-size=\"{font_size}\" font-weight=\"{weight}\">{}</text>",
            escape_xml(line)
        ));
    }
    svg.push_str("</svg>");
    Image {
        content_type: "image/svg+xml",
        bytes: svg.into_bytes(),
    }
}

/// Cuts text to `max` characters with an ellipsis, so a long name stays on the sticker.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max - 1).collect();
    format!("{}…", cut.trim_end())
}

pub(crate) fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = "00020101021238560010A0000007270126000697041501121133666688880208QRIBFTTA53037045405790005802VN62220818Ung Ho Quy Vac Xin63043ACF";

    fn decode_png(bytes: &[u8]) -> (usize, String) {
        let mut decoder = png::Decoder::new(bytes);
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buffer).unwrap();
        let (width, height) = (frame.width as usize, frame.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            buffer[y * frame.line_size + x]
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        (width, grids[0].decode().unwrap().1)
    }

    #[test]
    fn png_decodes_back_to_the_payload_at_every_size() {
        for size in [MIN_SIZE, 333, DEFAULT_SIZE, MAX_SIZE] {
            let image = render(PAYLOAD, ImageFormat::Png, size);
            assert_eq!(image.content_type, "image/png");
            assert_eq!(
                decode_png(&image.bytes),
                (size as usize, PAYLOAD.to_owned())
            );
        }
    }

    #[test]
    fn png_keeps_a_white_quiet_zone() {
        let modules = Modules::of(PAYLOAD);
        let size = DEFAULT_SIZE as usize;
        let scale = size / modules.width;
        let image = render(PAYLOAD, ImageFormat::Png, DEFAULT_SIZE);
        let mut decoder = png::Decoder::new(&image.bytes[..]);
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buffer).unwrap();
        let margin = (size - scale * modules.width) / 2 + QUIET_ZONE * scale;
        for y in 0..size {
            for x in 0..size {
                let outside = x < margin || y < margin || x >= size - margin || y >= size - margin;
                if outside {
                    assert_eq!(buffer[y * frame.line_size + x], 0xFF, "({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn svg_draws_the_same_modules() {
        let image = render(PAYLOAD, ImageFormat::Svg, 300);
        let svg = String::from_utf8(image.bytes).unwrap();
        assert_eq!(image.content_type, "image/svg+xml");
        let modules = Modules::of(PAYLOAD);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"300\""));
        assert!(svg.contains(&format!("viewBox=\"0 0 {0} {0}\"", modules.width)));
        // Re-rasterise the path's runs and compare with the modules.
        let mut drawn = vec![false; modules.dark.len()];
        for (x, y, length) in modules.dark_runs() {
            for dx in 0..length {
                drawn[y * modules.width + x + dx] = true;
            }
        }
        assert_eq!(drawn, modules.dark);
        assert!(svg.contains(&modules.svg_path()));
    }

    #[test]
    fn sticker_carries_the_code_and_escaped_details() {
        let text = StickerText {
            payee_name: "Bà Hoa <chè & bánh>",
            payee_code: "V042",
            stall: Some("Sạp 12"),
            hamlet: None,
            bank_short_name: "Vietcombank",
            bank_name: "Ngân hàng TMCP Ngoại Thương Việt Nam",
            account_number: "0123456789",
            holder_name: "NGUYEN THI HOA",
        };
        let svg = String::from_utf8(sticker(PAYLOAD, &text).bytes).unwrap();
        for expected in [
            "Quét mã để thanh toán",
            "Bà Hoa &lt;chè &amp; bánh&gt;",
            "Sạp 12",
            "Mã người nhận: V042",
            "STK 0123456789",
            "NGUYEN THI HOA",
            &Modules::of(PAYLOAD).svg_path(),
        ] {
            assert!(svg.contains(expected), "{expected}");
        }
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abcd ef", 6), "abcd…");
    }
}
