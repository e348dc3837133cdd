//! Hand-written helpers on the generated protobuf types: names, shapes, dtypes; text format and
//! the descriptor pool in `text`.

mod text;

pub use text::{descriptor_pool, parse_text_format, MAX_MESSAGE_DEPTH};

use crate::proto::tensorflow as tf;
use tf::tensor_info::Encoding;

/// The tensor name of a dense TensorInfo (`x:0`), `None` for sparse/composite encodings.
pub fn tensor_name(info: &tf::TensorInfo) -> Option<&str> {
    match &info.encoding {
        Some(Encoding::Name(name)) => Some(name),
        _ => None,
    }
}

/// `DT_FLOAT` for 1; `DT_<n>` for numbers this TensorFlow does not define.
pub fn dtype_name(dtype: i32) -> String {
    tf::DataType::try_from(dtype)
        .map(|d| d.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("DT_{dtype}"))
}

/// Dimensions of a shape, `-1` for unknown; `None` for unknown rank or no shape at all.
pub fn dims(shape: Option<&tf::TensorShapeProto>) -> Option<Vec<i64>> {
    let shape = shape?;
    if shape.unknown_rank {
        return None;
    }
    Some(shape.dim.iter().map(|d| d.size).collect())
}

/// A shape the way `saved_model_cli` prints it: `(-1, 28, 28, 1)`, `(-1)`, `()`, `unknown rank`.
pub fn shape_text(shape: Option<&tf::TensorShapeProto>) -> String {
    match dims(shape) {
        None => "unknown rank".to_owned(),
        Some(d) => format!(
            "({})",
            d.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `[2,3]`, as TensorShape::DebugString prints it.
pub fn shape_debug(dims: &[i64]) -> String {
    format!(
        "[{}]",
        dims.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Splits a tensor name `node:1` into the node and output index (`node` alone means output 0;
/// `^node` is a control input).
pub fn split_tensor_name(name: &str) -> (&str, u32) {
    let name = name.strip_prefix('^').unwrap_or(name);
    match name.rsplit_once(':') {
        Some((node, idx)) => match idx.parse() {
            Ok(i) => (node, i),
            Err(_) => (name, 0),
        },
        None => (name, 0),
    }
}

/// Bytes per element of fixed-size dtypes (`None` for strings, resources, variants).
pub fn dtype_size(dtype: i32) -> Option<u64> {
    use tf::DataType as D;
    let d = tf::DataType::try_from(dtype).ok()?;
    Some(match d {
        D::DtFloat | D::DtInt32 | D::DtUint32 | D::DtQint32 => 4,
        D::DtDouble | D::DtInt64 | D::DtUint64 | D::DtComplex64 => 8,
        D::DtComplex128 => 16,
        D::DtInt16 | D::DtUint16 | D::DtBfloat16 | D::DtHalf | D::DtQint16 | D::DtQuint16 => 2,
        D::DtInt8 | D::DtUint8 | D::DtBool | D::DtQint8 | D::DtQuint8 => 1,
        _ => return None,
    })
}

/// A known-rank shape; `-1` marks an unknown dimension.
pub fn shape_proto(dims: &[i64]) -> tf::TensorShapeProto {
    tf::TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| tf::tensor_shape_proto::Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(d: &[i64], unknown_rank: bool) -> tf::TensorShapeProto {
        tf::TensorShapeProto {
            dim: d
                .iter()
                .map(|&size| tf::tensor_shape_proto::Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank,
        }
    }

    #[test]
    fn shapes_print_like_saved_model_cli() {
        for (d, unknown, want) in [
            (&[-1, 28, 28, 1][..], false, "(-1, 28, 28, 1)"),
            (&[-1], false, "(-1)"),
            (&[], false, "()"),
            (&[], true, "unknown rank"),
        ] {
            assert_eq!(shape_text(Some(&shape(d, unknown))), want);
        }
        assert_eq!(shape_text(None), "unknown rank");
    }

    #[test]
    fn tensor_names() {
        assert_eq!(split_tensor_name("x:0"), ("x", 0));
        assert_eq!(split_tensor_name("a/b:12"), ("a/b", 12));
        assert_eq!(split_tensor_name("init"), ("init", 0));
        assert_eq!(split_tensor_name("^init"), ("init", 0));
    }

    #[test]
    fn dtype_names() {
        assert_eq!(dtype_name(1), "DT_FLOAT");
        assert_eq!(dtype_name(7), "DT_STRING");
        assert_eq!(dtype_name(0), "DT_INVALID");
        assert_eq!(dtype_name(999), "DT_999");
    }
}
