//! Image files as the tensor an image input takes, decoded by TensorFlow with the very function
//! `add-classify` puts in front of an image input (`DecodeImage`, bilinear resize to the input's
//! height and width, pixels / 255 or rounded bytes), so a file gives the same pixels here as it
//! does through a model's image feature.

use prost::Message;

use super::tensor::{dtype, Tensor, Values};
use super::tf::{Session, TensorFlow};
use crate::graph::image::{image_function, ImageScale, Pixels};
use crate::proto::tensorflow as tfp;
use crate::proto_ext::{dims, dtype_name};

/// The most bytes the decoded pixels of one image may take.
pub const MAX_PIXEL_BYTES: usize = 1 << 30;

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
