//! The image decoding of a classify head: a `MapDefun` over a library function that turns one
//! encoded JPEG/PNG/GIF/BMP into the pixels an image input takes, resized and scaled the way
//! `tf.image` does.

use std::collections::BTreeMap;

use super::{attr, cast, constant, node, op_registry, GraphEditor, GraphError};
use crate::proto::tensorflow::{self as tf, DataType};

/// Adds a `MapDefun` over a new library function that decodes each image of `encoded` (a vector of
/// encoded images) to `[height, width, channels]` `pixels`. `input` names the model input it feeds,
/// for the names of the new node and function. Returns the tensor of the decoded batch.
pub fn decode_images(
    ed: &mut GraphEditor<'_>,
    input: &str,
    encoded: &str,
    [h, w, c]: [i64; 3],
    pixels: Pixels,
) -> Result<String, GraphError> {
    let fname = ed.function_name(&format!("{}_decode_image_{input}", ed.scope()));
    let function = image_function(&fname, h, w, c, pixels)?;
    ed.add_function(function);
    let name = ed.name(&format!("decode_{input}"));
    ed.add(
        node(name, "MapDefun")
            .input(encoded)
            .attr("Targuments", attr::dtypes(&[DataType::DtString]))
            .attr("Tcaptured", attr::dtypes(&[]))
            .attr("output_types", attr::dtypes(&[pixels.dtype()]))
            .attr("output_shapes", attr::shapes(&[vec![h, w, c]]))
            .attr("f", attr::func(&fname)),
    )
}

/// The tensor name of `node`'s output `index` inside a function body: `node:arg:index`.
fn fn_output(node: &tf::NodeDef, index: usize) -> Result<String, GraphError> {
    let (arg, i) = op_registry::output_arg(node, index)?;
    Ok(format!("{}:{arg}:{i}", node.name))
}

/// The pixel range a float image input expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ImageScale {
    /// `[0, 1]`: pixels divided by 255.
    Unit,
    /// `[0, 255]`: pixels as decoded.
    Byte,
}

/// The pixels an image input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pixels {
    Float(ImageScale),
    Uint8,
}

impl Pixels {
    pub fn dtype(self) -> DataType {
        match self {
            Pixels::Float(_) => DataType::DtFloat,
            Pixels::Uint8 => DataType::DtUint8,
        }
    }
}

/// A function from one encoded image (JPEG/PNG/GIF/BMP) to `[height, width, channels]`
/// pixels: decoded, resized as `tf.image.resize` does, scaled or rounded to bytes.
pub fn image_function(
    name: &str,
    height: i64,
    width: i64,
    channels: i64,
    pixels_out: Pixels,
) -> Result<tf::FunctionDef, GraphError> {
    const ARG: &str = "encoded";
    const RET: &str = "pixels";
    let mut body: Vec<tf::NodeDef> = Vec::new();
    let mut push = |node: tf::NodeDef| -> Result<String, GraphError> {
        let out = fn_output(&node, 0)?;
        body.push(node);
        Ok(out)
    };
    // expand_animations=false: a GIF gives its first frame, so every image is 3-D.
    let decoded = push(
        node("decode", "DecodeImage")
            .input(ARG)
            .attr("channels", attr::int(channels))
            .attr("dtype", attr::dtype(DataType::DtUint8))
            .attr("expand_animations", attr::boolean(false))
            .build()?,
    )?;
    let float = push(cast("to_float", decoded, DataType::DtUint8, DataType::DtFloat).build()?)?;
    let zero = push(constant("batch_axis", attr::int32_tensor(&[0], &[])).build()?)?;
    let batched = push(
        node("add_batch", "ExpandDims")
            .input(float)
            .input(zero)
            .attr("T", attr::dtype(DataType::DtFloat))
            .build()?,
    )?;
    let size = attr::int32_tensor(&[height as i32, width as i32], &[2]);
    let size = push(constant("size", size).build()?)?;
    // half_pixel_centers=true is what tf.image.resize(method="bilinear") does.
    let resized = push(
        node("resize", "ResizeBilinear")
            .input(batched)
            .input(size)
            .attr("T", attr::dtype(DataType::DtFloat))
            .attr("align_corners", attr::boolean(false))
            .attr("half_pixel_centers", attr::boolean(true))
            .build()?,
    )?;
    let mut pixels = push(
        node("drop_batch", "Squeeze")
            .input(resized)
            .attr("T", attr::dtype(DataType::DtFloat))
            .attr("squeeze_dims", attr::ints(&[0]))
            .build()?,
    )?;
    if pixels_out == Pixels::Uint8 {
        // Resizing works in float; round back to the nearest byte (exact when no resize).
        let rounded = push(
            node("round", "Round")
                .input(pixels)
                .attr("T", attr::dtype(DataType::DtFloat))
                .build()?,
        )?;
        pixels = push(cast("to_uint8", rounded, DataType::DtFloat, DataType::DtUint8).build()?)?;
    }
    if pixels_out == Pixels::Float(ImageScale::Unit) {
        let divisor = push(constant("max_value", attr::float_scalar(255.0)).build()?)?;
        pixels = push(
            node("scale", "RealDiv")
                .input(pixels)
                .input(divisor)
                .attr("T", attr::dtype(DataType::DtFloat))
                .build()?,
        )?;
    }
    let arg = |name: &str, dtype: DataType| tf::op_def::ArgDef {
        name: name.to_owned(),
        r#type: dtype as i32,
        ..Default::default()
    };
    Ok(tf::FunctionDef {
        signature: Some(tf::OpDef {
            name: name.to_owned(),
            input_arg: vec![arg(ARG, DataType::DtString)],
            output_arg: vec![arg(RET, pixels_out.dtype())],
            ..Default::default()
        }),
        node_def: body,
        ret: BTreeMap::from([(RET.to_owned(), pixels)]),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_function_matches_op_signatures() {
        let f = image_function("f", 28, 28, 1, Pixels::Float(ImageScale::Unit)).unwrap();
        let ops: Vec<&str> = f.node_def.iter().map(|n| n.op.as_str()).collect();
        assert_eq!(
            ops,
            [
                "DecodeImage",
                "Cast",
                "Const",
                "ExpandDims",
                "Const",
                "ResizeBilinear",
                "Squeeze",
                "Const",
                "RealDiv"
            ]
        );
        assert_eq!(f.ret["pixels"], "scale:z:0");
        let f = image_function("f", 28, 28, 3, Pixels::Float(ImageScale::Byte)).unwrap();
        assert_eq!(f.ret["pixels"], "drop_batch:output:0");
        let f = image_function("f", 28, 28, 3, Pixels::Uint8).unwrap();
        assert_eq!(f.ret["pixels"], "to_uint8:y:0");
        let out = &f.signature.as_ref().unwrap().output_arg[0];
        assert_eq!(out.r#type, DataType::DtUint8 as i32);
    }
}
