//! Image files as the tensor an image input takes, decoded by TensorFlow with the very function
//! `add-classify` puts in front of an image input (`DecodeImage`, bilinear resize to the input's
//! height and width, pixels / 255 or rounded bytes), so a file gives the same pixels here as it
//! does through a model's image feature.
//!
//! A small file can claim a huge picture (a PNG of flat colour compresses about 1000:1, and
//! giflib reads every frame of a GIF before TensorFlow keeps the first), and TensorFlow
//! allocates what the header claims. So the sizes TensorFlow's decoders allocate from are read
//! here first and checked against [`MAX_PIXEL_BYTES`]: PNG's IHDR, JPEG's start-of-frame, BMP's
//! info header, WebP's canvas, and a GIF's screen plus each of its frames. These few header
//! fields are read by hand because the check must see exactly the fields each decoder
//! allocates from (no image-size crate walks a GIF's frames).

use prost::Message;

use super::tensor::{dtype, Tensor, Values};
use super::tf::{Session, TensorFlow};
use crate::graph::image::{image_function, ImageScale, Pixels};
use crate::proto::tensorflow as tfp;
use crate::proto_ext::{dims, dtype_name};

/// The most bytes the decoded pixels of one image may take (as floats, what the decoder casts
/// them to before resizing).
pub const MAX_PIXEL_BYTES: usize = 1 << 30;

/// Refuses an image whose header claims more pixels than [`MAX_PIXEL_BYTES`] holds as floats
/// of `channels` channels (what a decoder, this one or a model's own, casts them to).
pub fn check_size(encoded: &[u8], channels: i64) -> Result<(), String> {
    let Some(claimed) = claimed_pixels(encoded)? else {
        return Ok(());
    };
    let bytes = claimed.saturating_mul(channels.max(1) as u64 * 4);
    if bytes > MAX_PIXEL_BYTES as u64 {
        return Err(format!(
            "its header claims {claimed} pixels, {bytes} bytes once decoded to {channels} \
             channel(s) of floats, more than the {MAX_PIXEL_BYTES} an image may take; scale it \
             down before running it"
        ));
    }
    Ok(())
}

/// The pixels an encoded image claims, for the request budget: `None` unless `s` carries an
/// image signature no other data plausibly starts with (PNG's with its `IHDR`, JPEG's
/// `FF D8 FF`, GIF's, BMP's with its reserved fields zero and a known info-header size,
/// WebP's RIFF form), or when its header cannot be read (the decoder refuses it then). Text
/// such as "BMW ..." is not taken for a bitmap.
pub fn claimed_pixels_if_image(s: &[u8]) -> Option<u64> {
    let bmp_header = |h: &[u8]| {
        matches!(
            u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
            12 | 40 | 52 | 56 | 64 | 108 | 124
        )
    };
    let image = s.starts_with(b"\x89PNG\r\n\x1a\n") && s.get(12..16) == Some(b"IHDR")
        || s.starts_with(b"\xff\xd8\xff")
        || s.starts_with(b"GIF87a")
        || s.starts_with(b"GIF89a")
        || s.starts_with(b"RIFF") && s.get(8..12) == Some(b"WEBP")
        || s.starts_with(b"BM")
            && s.get(6..10) == Some(&[0, 0, 0, 0])
            && s.get(14..18).is_some_and(bmp_header);
    if !image {
        return None;
    }
    claimed_pixels(s).ok().flatten()
}

/// The pixels TensorFlow's decoder allocates for `encoded`, from its header: width, height and,
/// for a GIF, the sum over its frames too. `None` for a format TensorFlow does not decode
/// (TensorFlow refuses those itself).
fn claimed_pixels(encoded: &[u8]) -> Result<Option<u64>, String> {
    let truncated = |format: &str| format!("its {format} header is cut short");
    let u16_le = |at: usize| {
        encoded
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as u64)
    };
    let u16_be = |at: usize| {
        encoded
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as u64)
    };
    let u32_be = |at: usize| {
        (encoded.get(at..at + 4)).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64)
    };
    let u32_le = |at: usize| {
        (encoded.get(at..at + 4)).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
    };
    let u24_le = |at: usize| {
        (encoded.get(at..at + 3)).map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]) as u64)
    };
    if encoded.starts_with(b"\x89PNG\r\n\x1a\n") {
        let (w, h) = (u32_be(16), u32_be(20));
        return Ok(Some(
            w.zip(h)
                .map(|(w, h)| w * h)
                .ok_or_else(|| truncated("PNG"))?,
        ));
    }
    if encoded.starts_with(b"BM") {
        let header = u32_le(14).ok_or_else(|| truncated("BMP"))?;
        let (w, h) = if header == 12 {
            (u16_le(18), u16_le(20))
        } else {
            // The height is negative for top-down bitmaps.
            let h = u32_le(22).map(|h| (h as u32 as i32).unsigned_abs() as u64);
            (
                u32_le(18).map(|w| (w as u32 as i32).unsigned_abs() as u64),
                h,
            )
        };
        return Ok(Some(
            w.zip(h)
                .map(|(w, h)| w * h)
                .ok_or_else(|| truncated("BMP"))?,
        ));
    }
    if encoded.starts_with(b"RIFF") && encoded.get(8..12) == Some(b"WEBP") {
        let (w, h) = match encoded.get(12..16) {
            Some(b"VP8 ") => (
                u16_le(26).map(|w| w & 0x3fff),
                u16_le(28).map(|h| h & 0x3fff),
            ),
            Some(b"VP8L") => {
                let bits = u32_le(21);
                (
                    bits.map(|b| 1 + (b & 0x3fff)),
                    bits.map(|b| 1 + ((b >> 14) & 0x3fff)),
                )
            }
            Some(b"VP8X") => (u24_le(24).map(|w| w + 1), u24_le(27).map(|h| h + 1)),
            _ => (None, None),
        };
        return Ok(Some(
            w.zip(h)
                .map(|(w, h)| w * h)
                .ok_or_else(|| truncated("WebP"))?,
        ));
    }
    if encoded.starts_with(b"\xff\xd8") {
        // Markers up to the first start-of-frame, each with its length.
        let mut at = 2;
        while at + 4 <= encoded.len() {
            if encoded[at] != 0xff {
                return Err("its JPEG markers are malformed".into());
            }
            let marker = encoded[at + 1];
            if marker == 0xff {
                at += 1;
                continue;
            }
            if matches!(marker, 0x01 | 0xd0..=0xd7) {
                at += 2;
                continue;
            }
            if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
                let (h, w) = (u16_be(at + 5), u16_be(at + 7));
                return Ok(Some(
                    w.zip(h)
                        .map(|(w, h)| w * h)
                        .ok_or_else(|| truncated("JPEG"))?,
                ));
            }
            if matches!(marker, 0xd9 | 0xda) {
                break;
            }
            at += 2 + u16_be(at + 2).unwrap_or(0) as usize;
        }
        return Err("its JPEG data has no frame header".into());
    }
    if encoded.starts_with(b"GIF87a") || encoded.starts_with(b"GIF89a") {
        let (w, h) = u16_le(6).zip(u16_le(8)).ok_or_else(|| truncated("GIF"))?;
        let table = |packed: u8| {
            if packed & 0x80 != 0 {
                3 << ((packed & 7) + 1)
            } else {
                0
            }
        };
        let mut pixels = w * h;
        let mut at = 13 + table(encoded.get(10).copied().unwrap_or(0));
        // Skips sub-blocks from `at` to their terminator.
        let skip_blocks = |mut at: usize| {
            while let Some(&n) = encoded.get(at) {
                at += 1 + n as usize;
                if n == 0 {
                    break;
                }
            }
            at
        };
        while let Some(&block) = encoded.get(at) {
            match block {
                0x21 => at = skip_blocks(at + 2),
                0x2c => {
                    let (fw, fh) = match u16_le(at + 5).zip(u16_le(at + 7)) {
                        Some(d) => d,
                        None => break,
                    };
                    pixels = pixels.saturating_add(fw * fh);
                    let packed = encoded.get(at + 9).copied().unwrap_or(0);
                    // Descriptor, local colour table, LZW code size, then the data.
                    at = skip_blocks(at + 10 + table(packed) + 1);
                }
                _ => break,
            }
        }
        return Ok(Some(pixels));
    }
    // JPEG XL (a bare codestream or its container): TensorFlow decodes it, but its size is
    // bit-packed and not read here, so it is refused rather than decoded unchecked.
    if encoded.starts_with(b"\xff\x0a") || encoded.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Err(
            "it is a JPEG XL image, whose size smtool does not check before decoding; convert it \
             to PNG or JPEG"
                .into(),
        );
    }
    Ok(None)
}

const ENCODED: &str = "encoded";
const DECODE: &str = "decode";

/// The tensor of one image (a batch of one) for the input `info`: DT_FLOAT or DT_UINT8 inputs
/// shaped `(batch, height, width, channels)` get its pixels; DT_STRING inputs its bytes
/// (a model that decodes images itself).
pub fn decode_for(
    tf: &'static TensorFlow,
    encoded: &[u8],
    info: &tfp::TensorInfo,
    scale: ImageScale,
) -> Result<Tensor, String> {
    let shape = dims(info.tensor_shape.as_ref());
    if info.dtype == dtype::STRING {
        let dims = match shape.as_deref() {
            Some([]) => vec![],
            _ => vec![1],
        };
        return Ok(Tensor {
            dims,
            values: Values::String(vec![encoded.to_vec()]),
        });
    }
    let pixels = match info.dtype {
        dtype::FLOAT => Pixels::Float(scale),
        dtype::UINT8 => Pixels::Uint8,
        other => {
            return Err(format!(
                "an image feeds a DT_FLOAT, DT_UINT8 or DT_STRING input, not {}",
                dtype_name(other)
            ))
        }
    };
    let (h, w, c) = match shape.as_deref() {
        Some(&[b, h, w, c]) if (b == -1 || b == 1) && h > 0 && w > 0 && matches!(c, 1 | 3 | 4) => {
            (h, w, c)
        }
        _ => {
            return Err(format!(
                "an image needs an input shaped (batch, height, width, channels) with known \
                 height and width and 1, 3 or 4 channels; this one is {}",
                crate::proto_ext::shape_text(info.tensor_shape.as_ref())
            ))
        }
    };
    check_size(encoded, c)?;
    let function = image_function("smtool_decode_image", h, w, c, pixels)
        .map_err(|e| format!("building the image decoder: {e}"))?;
    let graph = tfp::GraphDef {
        node: vec![
            tfp::NodeDef {
                name: ENCODED.to_owned(),
                op: "Placeholder".to_owned(),
                attr: [
                    ("dtype".to_owned(), attr_type(dtype::STRING)),
                    (
                        "shape".to_owned(),
                        tfp::AttrValue {
                            value: Some(tfp::attr_value::Value::Shape(Default::default())),
                        },
                    ),
                ]
                .into(),
                ..Default::default()
            },
            tfp::NodeDef {
                name: DECODE.to_owned(),
                op: function
                    .signature
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default(),
                input: vec![ENCODED.to_owned()],
                ..Default::default()
            },
        ],
        library: Some(tfp::FunctionDefLibrary {
            function: vec![function],
            ..Default::default()
        }),
        ..Default::default()
    };
    let session = Session::from_graph_def(tf, &graph.encode_to_vec())
        .map_err(|e| format!("TensorFlow refused the image decoder: {}", e.message))?;
    let input = Tensor {
        dims: vec![],
        values: Values::String(vec![encoded.to_vec()]),
    };
    let bytes = [h, w, c, 4]
        .iter()
        .try_fold(1i64, |n, &d| n.checked_mul(d))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= MAX_PIXEL_BYTES)
        .ok_or_else(|| {
            format!("an image of {h}x{w}x{c} pixels is more than the {MAX_PIXEL_BYTES} bytes one may take")
        })?;
    let limits = super::limits::Limits::from_request_bytes(bytes);
    let mut out = session
        .run(&[(ENCODED, &input)], &[DECODE], limits)
        .map_err(|e| format!("TensorFlow cannot decode it: {}", e.message))?;
    let mut pixels = out.pop().ok_or("TensorFlow returned no pixels")?;
    pixels.dims.insert(0, 1);
    Ok(pixels)
}

fn attr_type(d: i32) -> tfp::AttrValue {
    tfp::AttrValue {
        value: Some(tfp::attr_value::Value::Type(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of a PNG whose header claims `width` x `height` pixels.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        [
            &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..],
            &width.to_be_bytes(),
            &height.to_be_bytes(),
        ]
        .concat()
    }

    #[test]
    fn only_unmistakable_image_signatures_count_for_the_request_budget() {
        assert_eq!(
            claimed_pixels_if_image(&png_claiming(20000, 20000)),
            Some(400_000_000)
        );
        let five = std::fs::read("fixtures/digits/images/00_five.png").unwrap();
        assert_eq!(claimed_pixels_if_image(&five), Some(28 * 28));
        let jpeg = std::fs::read("fixtures/digits/images/11_five.jpg").unwrap();
        assert!(claimed_pixels_if_image(&jpeg).is_some());
        // Text and other data that merely start like an image are not taken for one.
        for s in [
            &b"BMW is a car maker based in Munich, Bavaria"[..],
            b"GIF",
            b"\xff\xd8",
            b"\x89PNG\r\n\x1a\n and then no header",
            b"RIFF....WAVEfmt ",
            b"",
        ] {
            assert_eq!(claimed_pixels_if_image(s), None, "{s:?}");
        }
    }

    #[test]
    fn reads_the_sizes_decoders_allocate_from() {
        let png = png_claiming(60000, 50000);
        let mut bmp = b"BM".to_vec();
        bmp.resize(14, 0);
        bmp.extend_from_slice(&40u32.to_le_bytes());
        bmp.extend_from_slice(&3000i32.to_le_bytes());
        bmp.extend_from_slice(&(-2000i32).to_le_bytes());
        // SOI, an APP0 segment of 16 bytes, then SOF0: height 700, width 900.
        let mut jpeg = b"\xff\xd8\xff\xe0\x00\x10".to_vec();
        jpeg.resize(jpeg.len() + 14, 0);
        jpeg.extend_from_slice(b"\xff\xc0\x00\x11\x08\x02\xbc\x03\x84");
        let mut webp = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        webp.resize(24, 0);
        webp.extend_from_slice(&[0xff, 0xff, 0x00, 0x0f, 0x27, 0x00]);
        // A 100x100 screen, then two frames of 60000x1000 each with two-byte data blocks.
        let mut gif = b"GIF89a\x64\x00\x64\x00\x00\x00\x00".to_vec();
        gif.extend_from_slice(b"\x21\xf9\x04\x00\x00\x00\x00\x00");
        for _ in 0..2 {
            gif.extend_from_slice(b"\x2c\0\0\0\0\x60\xea\xe8\x03\x00\x02\x02\x4c\x01\x00");
        }
        gif.push(b';');
        let cases: Vec<(&[u8], Option<u64>)> = vec![
            (&png, Some(3_000_000_000)),
            (&bmp, Some(6_000_000)),
            (&jpeg, Some(630_000)),
            (&webp, Some(65536 * 10000)),
            (&gif, Some(10_000 + 2 * 60_000_000)),
            (b"not an image", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(claimed_pixels(bytes).unwrap(), want, "{:?}", &bytes[..4]);
        }
        assert!(claimed_pixels(b"\xff\x0a\xfa\x7f")
            .unwrap_err()
            .contains("JPEG XL"));
        assert!(claimed_pixels(b"\x89PNG\r\n\x1a\n\0\0")
            .unwrap_err()
            .contains("cut short"));
        assert!(claimed_pixels(b"\xff\xd8\xff\xda\0\0")
            .unwrap_err()
            .contains("no frame header"));
    }
}
