//! Tensors as smtool holds them between a request and TensorFlow: [`Tensor`] (dimensions and
//! row-major [`Values`] by dtype), their conversion from and to TF Serving's `TensorProto`
//! (with the size checks of [`super::limits`] before anything is allocated), the string
//! tensor of a Classify / Regress request's `tf.Example`s, and the slicing, concatenation and
//! padding that batching does along dimension 0.

use prost::Message;

use super::error::{Code, Result, ServeError};
use super::limits::Budget;
use crate::proto::tensorflow as tfp;
use crate::proto::tensorflow::serving as sv;

/// The values of a tensor, by dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Float(Vec<f32>),
    Double(Vec<f64>),
    Int32(Vec<i32>),
    UInt8(Vec<u8>),
    Int16(Vec<i16>),
    Int8(Vec<i8>),
    String(Vec<Vec<u8>>),
    Int64(Vec<i64>),
    Bool(Vec<bool>),
    UInt16(Vec<u16>),
    /// DT_HALF as raw bits.
    Half(Vec<u16>),
    UInt32(Vec<u32>),
    UInt64(Vec<u64>),
}

/// TensorFlow `DataType` numbers of the dtypes [`Values`] holds.
pub mod dtype {
    pub const FLOAT: i32 = 1;
    pub const DOUBLE: i32 = 2;
    pub const INT32: i32 = 3;
    pub const UINT8: i32 = 4;
    pub const INT16: i32 = 5;
    pub const INT8: i32 = 6;
    pub const STRING: i32 = 7;
    pub const INT64: i32 = 9;
    pub const BOOL: i32 = 10;
    pub const UINT16: i32 = 17;
    pub const HALF: i32 = 19;
    pub const UINT32: i32 = 22;
    pub const UINT64: i32 = 23;
}

impl Values {
    /// The TensorFlow `DataType` number.
    pub fn dtype(&self) -> i32 {
        match self {
            Values::Float(_) => dtype::FLOAT,
            Values::Double(_) => dtype::DOUBLE,
            Values::Int32(_) => dtype::INT32,
            Values::UInt8(_) => dtype::UINT8,
            Values::Int16(_) => dtype::INT16,
            Values::Int8(_) => dtype::INT8,
            Values::String(_) => dtype::STRING,
            Values::Int64(_) => dtype::INT64,
            Values::Bool(_) => dtype::BOOL,
            Values::UInt16(_) => dtype::UINT16,
            Values::Half(_) => dtype::HALF,
            Values::UInt32(_) => dtype::UINT32,
            Values::UInt64(_) => dtype::UINT64,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Float(v) => v.len(),
            Values::Double(v) => v.len(),
            Values::Int32(v) => v.len(),
            Values::UInt8(v) => v.len(),
            Values::Int16(v) => v.len(),
            Values::Int8(v) => v.len(),
            Values::String(v) => v.len(),
            Values::Int64(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::UInt16(v) | Values::Half(v) => v.len(),
            Values::UInt32(v) => v.len(),
            Values::UInt64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dense tensor: dimensions and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dims: Vec<i64>,
    pub values: Values,
}

impl Tensor {
    /// A tensor; `None` when the number of values does not match the dimensions.
    pub fn new(dims: Vec<i64>, values: Values) -> Option<Tensor> {
        let n = dims.iter().try_fold(
            1i64,
            |acc, &d| if d < 0 { None } else { acc.checked_mul(d) },
        )?;
        (usize::try_from(n).ok()? == values.len()).then_some(Tensor { dims, values })
    }

    pub fn dtype(&self) -> i32 {
        self.values.dtype()
    }
}

/// The strings fed to a classify / regress signature: each serialized example, preceded by
/// the serialized context when there is one (parsing the concatenation merges the two). Their
/// count and total size, the context counted once per example, are taken from `budget` first.
pub fn serialized_examples(input: Option<&sv::Input>, budget: &mut Budget) -> Result<Vec<Vec<u8>>> {
    let (examples, context): (&[tfp::Example], _) = match input.and_then(|i| i.kind.as_ref()) {
        Some(sv::input::Kind::ExampleList(list)) => (&list.examples, None),
        Some(sv::input::Kind::ExampleListWithContext(list)) => {
            (&list.examples, list.context.as_ref())
        }
        None => (&[], None),
    };
    if examples.is_empty() {
        return Err(ServeError::invalid("Input is empty."));
    }
    let n = examples.len();
    budget.input("inputs", &[n as i64])?;
    budget.input_images("inputs", examples.iter().flat_map(example_bytes), 1)?;
    // The context's images are decoded once per example it is merged into.
    if let Some(context) = context {
        budget.input_images("inputs", example_bytes(context), n as u64)?;
    }
    let context = context.map(Message::encode_to_vec).unwrap_or_default();
    let repeated = (context.len() as u64).saturating_mul(n as u64);
    let bytes = examples
        .iter()
        .map(|e| e.encoded_len() as u64)
        .fold(repeated, u64::saturating_add);
    budget.input_strings("inputs", bytes).map_err(|mut e| {
        if !context.is_empty() {
            e.message = format!(
                "{} (the {}-byte context is merged into each of the {n} examples)",
                e.message,
                context.len()
            );
        }
        e
    })?;
    Ok(examples
        .iter()
        .map(|e| {
            let mut bytes = Vec::with_capacity(context.len() + e.encoded_len());
            bytes.extend_from_slice(&context);
            e.encode(&mut bytes).ok();
            bytes
        })
        .collect())
}

/// Takes from `budget` the images among `strings` of input `what` (each counted `times` times):
/// the strings themselves, or the bytes features of serialized `tf.Example`s (a :predict call
/// of a classify head takes those, and the model decodes their images).
fn string_images(budget: &mut Budget, what: &str, strings: &[Vec<u8>], times: u64) -> Result<()> {
    budget.input_images(what, strings.iter().map(Vec::as_slice), times)?;
    // A serialized Example starts with its `features` field (tag 1, length-delimited).
    for s in strings.iter().filter(|s| s.first() == Some(&0x0a)) {
        if let Ok(example) = tfp::Example::decode(s.as_slice()) {
            budget.input_images(what, example_bytes(&example), times)?;
        }
    }
    Ok(())
}

/// The values of every bytes feature of `example`.
fn example_bytes(example: &tfp::Example) -> impl Iterator<Item = &[u8]> {
    let features = example.features.iter().flat_map(|f| f.feature.values());
    features
        .filter_map(|f| match &f.kind {
            Some(tfp::feature::Kind::BytesList(list)) => Some(list.value.iter()),
            _ => None,
        })
        .flatten()
        .map(Vec::as_slice)
}

/// The dense tensor request input `what` describes as a `TensorProto` (typed value fields or
/// `tensor_content`; fewer values than elements repeat the last, as TensorFlow does). Its shape,
/// and the string bytes after that repetition, are taken from `budget` before anything is
/// allocated; one that does not parse is TF Serving's `tensor parsing error: what`.
pub fn tensor_from_proto(
    proto: &tfp::TensorProto,
    what: &str,
    budget: &mut Budget,
) -> Result<Tensor> {
    let parse_error = || ServeError::invalid(format!("tensor parsing error: {what}"));
    let shape = proto.tensor_shape.as_ref();
    if shape.is_some_and(|s| s.unknown_rank) {
        return Err(parse_error());
    }
    let dims: Vec<i64> = shape
        .map(|s| s.dim.iter().map(|d| d.size).collect())
        .unwrap_or_default();
    let n = budget.input(what, &dims)?;
    if proto.dtype == dtype::STRING && proto.string_val.len() <= n {
        let given = proto
            .string_val
            .iter()
            .map(|s| s.len() as u64)
            .fold(0u64, u64::saturating_add);
        let last = proto.string_val.last().map_or(0, |s| s.len() as u64);
        // A repeated string is on the wire once but held once per element, by smtool and by
        // TensorFlow, so each repetition costs what holding it costs, not only its length:
        // else a request of a few bytes could describe B empty strings (gigabytes to hold).
        let others = n - proto.string_val.len();
        let repeated = (last + STRING_ELEMENT_BYTES).saturating_mul(others as u64);
        budget
            .input_strings(what, given.saturating_add(repeated))
            .map_err(|mut e| {
                if others > 0 {
                    e.message = format!(
                        "{} ({others} elements repeat the last string given, or an empty one, each costing its length plus {STRING_ELEMENT_BYTES} bytes to hold)",
                        e.message
                    );
                }
                e
            })?;
        // A repeated image is decoded once per element.
        let (init, last) = proto
            .string_val
            .split_at(proto.string_val.len().saturating_sub(1));
        string_images(budget, what, init, 1)?;
        string_images(budget, what, last, others as u64 + 1)?;
    }
    if proto.dtype != dtype::STRING && proto.tensor_content.is_empty() {
        if let Some((given, width)) = typed_values(proto) {
            let filled = n.saturating_sub(given) as u64;
            budget.input_filled(what, filled, filled.saturating_mul(width))?;
        }
    }
    tensor_values(proto, dims, n).ok_or_else(parse_error)
}

/// How many typed values a numeric `TensorProto` carries, and the bytes one element of its
/// dtype takes to hold; `None` for dtypes [`tensor_values`] does not read.
fn typed_values(proto: &tfp::TensorProto) -> Option<(usize, u64)> {
    Some(match proto.dtype {
        dtype::FLOAT => (proto.float_val.len(), 4),
        dtype::DOUBLE => (proto.double_val.len(), 8),
        dtype::INT32 => (proto.int_val.len(), 4),
        dtype::INT64 => (proto.int64_val.len(), 8),
        dtype::UINT8 | dtype::INT8 => (proto.int_val.len(), 1),
        dtype::INT16 | dtype::UINT16 => (proto.int_val.len(), 2),
        dtype::HALF => (proto.half_val.len(), 2),
        dtype::UINT32 => (proto.uint32_val.len(), 4),
        dtype::UINT64 => (proto.uint64_val.len(), 8),
        dtype::BOOL => (proto.bool_val.len(), 1),
        _ => return None,
    })
}

/// What holding one string element costs beyond its bytes: smtool's `Vec<u8>` and
/// TensorFlow's `TF_TString`, 24 bytes each.
pub(crate) const STRING_ELEMENT_BYTES: u64 = 48;

/// The values of a `TensorProto` of `n` elements (`n` already within the budget).
fn tensor_values(proto: &tfp::TensorProto, dims: Vec<i64>, n: usize) -> Option<Tensor> {
    /// TensorProto's repeated values, converted, with the last one repeated up to `n`
    /// (an empty list means all defaults).
    fn fill<S, T: Clone + Default>(vals: &[S], n: usize, f: impl Fn(&S) -> T) -> Option<Vec<T>> {
        if vals.len() > n {
            return None;
        }
        // The budget bounds `n`; a failed reservation is still an error, never a panic.
        let mut out: Vec<T> = Vec::new();
        out.try_reserve_exact(n).ok()?;
        out.extend(vals.iter().map(f));
        let last = out.last().cloned().unwrap_or_default();
        out.resize(n, last);
        Some(out)
    }
    fn content<T: Copy, const W: usize>(
        bytes: &[u8],
        n: usize,
        f: fn([u8; W]) -> T,
    ) -> Option<Vec<T>> {
        if Some(bytes.len()) != n.checked_mul(W) {
            return None;
        }
        Some(
            bytes
                .chunks_exact(W)
                .map(|c| {
                    let mut a = [0u8; W];
                    a.copy_from_slice(c);
                    f(a)
                })
                .collect(),
        )
    }
    let raw = &proto.tensor_content;
    let has_content = !raw.is_empty();
    let values = match proto.dtype {
        dtype::FLOAT if has_content => Values::Float(content(raw, n, f32::from_le_bytes)?),
        dtype::FLOAT => Values::Float(fill(&proto.float_val, n, Clone::clone)?),
        dtype::DOUBLE if has_content => Values::Double(content(raw, n, f64::from_le_bytes)?),
        dtype::DOUBLE => Values::Double(fill(&proto.double_val, n, Clone::clone)?),
        dtype::INT32 if has_content => Values::Int32(content(raw, n, i32::from_le_bytes)?),
        dtype::INT32 => Values::Int32(fill(&proto.int_val, n, Clone::clone)?),
        dtype::INT64 if has_content => Values::Int64(content(raw, n, i64::from_le_bytes)?),
        dtype::INT64 => Values::Int64(fill(&proto.int64_val, n, Clone::clone)?),
        dtype::UINT8 if has_content => Values::UInt8(content(raw, n, u8::from_le_bytes)?),
        dtype::UINT8 => Values::UInt8(fill(&proto.int_val, n, |&v| v as u8)?),
        dtype::INT8 if has_content => Values::Int8(content(raw, n, i8::from_le_bytes)?),
        dtype::INT8 => Values::Int8(fill(&proto.int_val, n, |&v| v as i8)?),
        dtype::INT16 if has_content => Values::Int16(content(raw, n, i16::from_le_bytes)?),
        dtype::INT16 => Values::Int16(fill(&proto.int_val, n, |&v| v as i16)?),
        dtype::UINT16 if has_content => Values::UInt16(content(raw, n, u16::from_le_bytes)?),
        dtype::UINT16 => Values::UInt16(fill(&proto.int_val, n, |&v| v as u16)?),
        dtype::HALF if has_content => Values::Half(content(raw, n, u16::from_le_bytes)?),
        dtype::HALF => Values::Half(fill(&proto.half_val, n, |&v| v as u16)?),
        dtype::UINT32 if has_content => Values::UInt32(content(raw, n, u32::from_le_bytes)?),
        dtype::UINT32 => Values::UInt32(fill(&proto.uint32_val, n, Clone::clone)?),
        dtype::UINT64 if has_content => Values::UInt64(content(raw, n, u64::from_le_bytes)?),
        dtype::UINT64 => Values::UInt64(fill(&proto.uint64_val, n, Clone::clone)?),
        dtype::BOOL if has_content => Values::Bool(content(raw, n, |[b]: [u8; 1]| b != 0)?),
        dtype::BOOL => Values::Bool(fill(&proto.bool_val, n, Clone::clone)?),
        dtype::STRING => Values::String(fill(&proto.string_val, n, Clone::clone)?),
        _ => return None,
    };
    Some(Tensor { dims, values })
}

/// A tensor as a `TensorProto` with its values in `tensor_content` (TensorFlow's
/// `AsProtoTensorContent`): little-endian elements, booleans as one byte, strings as their
/// varint32 lengths followed by their bytes.
pub fn tensor_to_content_proto(t: &Tensor) -> tfp::TensorProto {
    fn le<T: Copy, const N: usize>(v: &[T], bytes: fn(T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(|&x| bytes(x)).collect()
    }
    let content = match &t.values {
        Values::Float(v) => le(v, f32::to_le_bytes),
        Values::Double(v) => le(v, f64::to_le_bytes),
        Values::Int32(v) => le(v, i32::to_le_bytes),
        Values::UInt8(v) => v.clone(),
        Values::Int16(v) => le(v, i16::to_le_bytes),
        Values::Int8(v) => le(v, i8::to_le_bytes),
        Values::UInt16(v) => le(v, u16::to_le_bytes),
        Values::Half(v) => le(v, u16::to_le_bytes),
        Values::Int64(v) => le(v, i64::to_le_bytes),
        Values::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        Values::UInt32(v) => le(v, u32::to_le_bytes),
        Values::UInt64(v) => le(v, u64::to_le_bytes),
        Values::String(v) => {
            let mut out = Vec::with_capacity(v.iter().map(|s| s.len() + 5).sum());
            for s in v {
                let mut n = s.len() as u64;
                while n >= 0x80 {
                    out.push((n as u8) | 0x80);
                    n >>= 7;
                }
                out.push(n as u8);
            }
            for s in v {
                out.extend_from_slice(s);
            }
            out
        }
    };
    tfp::TensorProto {
        dtype: t.dtype(),
        tensor_shape: Some(crate::proto_ext::shape_proto(&t.dims)),
        tensor_content: content,
        ..Default::default()
    }
}

/// A tensor as a `TensorProto` with typed value fields (TensorFlow's `AsProtoField`).
pub fn tensor_to_proto(t: &Tensor) -> tfp::TensorProto {
    let mut p = tfp::TensorProto {
        dtype: t.dtype(),
        tensor_shape: Some(crate::proto_ext::shape_proto(&t.dims)),
        ..Default::default()
    };
    match &t.values {
        Values::Float(v) => p.float_val = v.clone(),
        Values::Double(v) => p.double_val = v.clone(),
        Values::Int32(v) => p.int_val = v.clone(),
        Values::UInt8(v) => p.int_val = v.iter().map(|&x| x as i32).collect(),
        Values::Int16(v) => p.int_val = v.iter().map(|&x| x as i32).collect(),
        Values::Int8(v) => p.int_val = v.iter().map(|&x| x as i32).collect(),
        Values::UInt16(v) => p.int_val = v.iter().map(|&x| x as i32).collect(),
        Values::Half(v) => p.half_val = v.iter().map(|&x| x as i32).collect(),
        Values::String(v) => p.string_val = v.clone(),
        Values::Int64(v) => p.int64_val = v.clone(),
        Values::Bool(v) => p.bool_val = v.clone(),
        Values::UInt32(v) => p.uint32_val = v.clone(),
        Values::UInt64(v) => p.uint64_val = v.clone(),
    }
    p
}

macro_rules! each_values {
    ($v:expr, $x:ident => $body:expr) => {
        match $v {
            Values::Float($x) => Values::Float($body),
            Values::Double($x) => Values::Double($body),
            Values::Int32($x) => Values::Int32($body),
            Values::UInt8($x) => Values::UInt8($body),
            Values::Int16($x) => Values::Int16($body),
            Values::Int8($x) => Values::Int8($body),
            Values::String($x) => Values::String($body),
            Values::Int64($x) => Values::Int64($body),
            Values::Bool($x) => Values::Bool($body),
            Values::UInt16($x) => Values::UInt16($body),
            Values::Half($x) => Values::Half($body),
            Values::UInt32($x) => Values::UInt32($body),
            Values::UInt64($x) => Values::UInt64($body),
        }
    };
}

/// Elements `start..end` of `v`.
pub fn slice(v: &Values, start: usize, end: usize) -> Values {
    each_values!(v, x => x[start..end].to_vec())
}

/// Appends `from` to `into`; false when their dtypes differ.
pub fn extend(into: &mut Values, from: &Values) -> bool {
    macro_rules! pairs {
        ($($var:ident),*) => {
            match (into, from) {
                $((Values::$var(a), Values::$var(b)) => {
                    a.extend_from_slice(b);
                    true
                })*
                _ => false,
            }
        };
    }
    pairs!(
        Float, Double, Int32, UInt8, Int16, Int8, String, Int64, Bool, UInt16, Half, UInt32, UInt64
    )
}

/// The row-major `values` of shape `dims` copied into shape `to` (same rank, each dimension at
/// least as large), the new positions at the end of each dimension filled with `fill`.
fn pad_values<T: Clone>(values: &[T], dims: &[usize], to: &[usize], fill: T) -> Vec<T> {
    let mut out = vec![fill; to.iter().product()];
    let Some((&row, outer_dims)) = dims.split_last() else {
        return out;
    };
    let to_row = to[to.len() - 1];
    // Copy one innermost row at a time; `index` walks the outer dimensions.
    let mut index = vec![0usize; outer_dims.len()];
    for src in values
        .chunks_exact(row.max(1))
        .take(outer_dims.iter().product())
    {
        let dst = index
            .iter()
            .zip(to)
            .fold(0, |acc, (&i, &size)| acc * size + i)
            * to_row;
        out[dst..dst + row].clone_from_slice(&src[..row]);
        for k in (0..index.len()).rev() {
            index[k] += 1;
            if index[k] < outer_dims[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// The most elements a padded tensor may have (1 GiB of float32): requests of very different
/// shapes must not make the server allocate without bound.
const MAX_PADDED_ELEMENTS: usize = 1 << 28;

/// TF Serving's `AddPadding`: `t` padded to `to` beyond dimension 0 with its first element.
pub fn pad_tensor(t: &Tensor, to: &[usize]) -> Result<Tensor, ServeError> {
    if !(1..=6).contains(&t.dims.len()) {
        return Err(ServeError::invalid(
            "Only tensors with rank from 1 to 6 can be padded.",
        ));
    }
    let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    let mut padded = dims.clone();
    padded[1..].copy_from_slice(&to[1..]);
    let elements = padded
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_PADDED_ELEMENTS)
        .ok_or_else(|| {
            ServeError::new(
                Code::ResourceExhausted,
                format!(
                    "Padding a tensor of shape {dims:?} to {padded:?} needs more than {MAX_PADDED_ELEMENTS} elements; send requests of similar shapes or turn pad_variable_length_inputs off"
                ),
            )
        })?;
    if elements == t.values.len() {
        return Ok(Tensor {
            dims: padded.iter().map(|&d| d as i64).collect(),
            values: t.values.clone(),
        });
    }
    let empty = || ServeError::invalid("Got empty tensor in batch of non-empty tensors.");
    let values = each_values!(&t.values, x => {
        let fill = x.first().cloned().ok_or_else(empty)?;
        pad_values(x, &dims, &padded, fill)
    });
    Ok(Tensor {
        dims: padded.iter().map(|&d| d as i64).collect(),
        values,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::serve::limits::Limits;

    #[test]
    fn tensor_new_checks_element_count() {
        assert!(Tensor::new(vec![2, 3], Values::Float(vec![0.0; 6])).is_some());
        assert!(Tensor::new(vec![2, 3], Values::Float(vec![0.0; 5])).is_none());
        assert!(Tensor::new(vec![], Values::Int64(vec![7])).is_some());
        assert!(Tensor::new(vec![-1], Values::Int64(vec![])).is_none());
        assert!(Tensor::new(vec![0, 4], Values::String(vec![])).is_some());
    }

    fn proto(dtype: i32, dims: &[i64]) -> tfp::TensorProto {
        tensor_to_proto(&Tensor {
            dims: dims.to_vec(),
            values: match dtype {
                dtype::FLOAT => Values::Float(vec![]),
                _ => Values::String(vec![]),
            },
        })
    }

    #[test]
    fn proto_round_trip_and_broadcast() {
        let t = Tensor {
            dims: vec![2, 2],
            values: Values::Float(vec![1.0, 2.0, 3.0, 4.0]),
        };
        let from =
            |p: &tfp::TensorProto| tensor_from_proto(p, "x", &mut Limits::default().budget());
        assert_eq!(from(&tensor_to_proto(&t)), Ok(t));
        let mut p = proto(dtype::FLOAT, &[3]);
        p.float_val = vec![7.0];
        assert_eq!(from(&p).map(|t| t.values), Ok(Values::Float(vec![7.0; 3])));
        p.float_val = vec![1.0, 2.0, 3.0, 4.0];
        assert_eq!(from(&p).unwrap_err().message, "tensor parsing error: x");
        let mut c = proto(dtype::FLOAT, &[2]);
        c.tensor_content = [1.5f32.to_le_bytes(), 2.5f32.to_le_bytes()].concat();
        assert_eq!(
            from(&c).map(|t| t.values),
            Ok(Values::Float(vec![1.5, 2.5]))
        );
    }

    #[test]
    fn request_shapes_are_checked_before_anything_is_allocated() {
        let small = || Limits::from_request_bytes(1000).budget();
        let code = |p: &tfp::TensorProto| tensor_from_proto(p, "x", &mut small()).unwrap_err().code;
        // One value broadcast to a huge shape, of every kind.
        let mut f = proto(dtype::FLOAT, &[1 << 40]);
        f.float_val = vec![1.0];
        assert_eq!(code(&f), Code::ResourceExhausted);
        let mut s = proto(dtype::STRING, &[100]);
        s.string_val = vec![vec![b'x'; 100]];
        assert_eq!(code(&s), Code::ResourceExhausted, "100 x 100 string bytes");
        s.tensor_shape = Some(crate::proto_ext::shape_proto(&[6]));
        assert!(
            tensor_from_proto(&s, "x", &mut small()).is_ok(),
            "100 + 5 x 148 bytes"
        );
        // Repeated numbers cost their width, though they are not on the wire: 250 floats of a
        // 1000-byte budget fit, 251 do not, and values given in full are not counted.
        let mut r = proto(dtype::FLOAT, &[252]);
        r.float_val = vec![1.0];
        let e = tensor_from_proto(&r, "x", &mut small()).unwrap_err();
        e.assert_is(Code::ResourceExhausted, |m| {
            m.contains("repeats its last value into 251 more elements")
        });
        r.float_val = vec![1.0; 252];
        assert!(tensor_from_proto(&r, "x", &mut small()).is_ok());
        let mut d = proto(dtype::FLOAT, &[127]);
        d.dtype = dtype::DOUBLE;
        d.double_val = vec![1.0];
        assert!(
            tensor_from_proto(&d, "x", &mut small()).is_err(),
            "126 x 8 bytes repeated"
        );
        d.tensor_shape = Some(crate::proto_ext::shape_proto(&[126]));
        assert!(
            tensor_from_proto(&d, "x", &mut small()).is_ok(),
            "125 x 8 bytes repeated"
        );
        // Empty strings repeated cost what holding them costs, though they have no bytes.
        let empty = |n: i64| proto(dtype::STRING, &[n]);
        let e = tensor_from_proto(&empty(21), "x", &mut small()).unwrap_err();
        e.assert_is(Code::ResourceExhausted, |m| {
            m.ends_with(
                "(21 elements repeat the last string given, or an empty one, each costing its length plus 48 bytes to hold)"
            )
        });
        assert!(tensor_from_proto(&empty(20), "x", &mut small()).is_ok());
        // tensor_content whose length times the element size would overflow.
        let c = tfp::TensorProto {
            dtype: dtype::DOUBLE,
            tensor_shape: Some(crate::proto_ext::shape_proto(&[i64::MAX / 4])),
            tensor_content: vec![0; 8],
            ..Default::default()
        };
        assert_eq!(code(&c), Code::ResourceExhausted);
        assert_eq!(
            tensor_from_proto(
                &c,
                "x",
                &mut Limits::from_request_bytes(usize::MAX).budget()
            )
            .unwrap_err()
            .code,
            Code::InvalidArgument
        );
        // No elements, but a dimension a model could build a huge tensor from.
        assert_eq!(
            code(&proto(dtype::FLOAT, &[0, 1 << 40])),
            Code::ResourceExhausted
        );
        assert!(tensor_from_proto(&proto(dtype::FLOAT, &[0, 999]), "x", &mut small()).is_ok());
        // Shapes that are no tensor at all.
        for dims in [vec![1; 255], vec![-1], vec![1 << 62, 1 << 62]] {
            assert_eq!(
                code(&proto(dtype::FLOAT, &dims)),
                Code::InvalidArgument,
                "{dims:?}"
            );
        }
    }

    #[test]
    fn context_is_prepended_to_each_example() {
        let feature = |v: f32| tfp::Features {
            feature: BTreeMap::from([(
                "x".to_owned(),
                tfp::Feature {
                    kind: Some(tfp::feature::Kind::FloatList(tfp::FloatList {
                        value: vec![v],
                    })),
                },
            )]),
        };
        let example = |v| tfp::Example {
            features: Some(feature(v)),
        };
        let input = sv::Input {
            kind: Some(sv::input::Kind::ExampleListWithContext(
                sv::ExampleListWithContext {
                    examples: vec![example(1.0), example(2.0)],
                    context: Some(example(9.0)),
                },
            )),
        };
        let strings = serialized_examples(Some(&input), &mut Limits::default().budget()).unwrap();
        assert_eq!(strings.len(), 2);
        let ctx = example(9.0).encode_to_vec();
        assert!(strings[1].starts_with(&ctx));
        assert_eq!(
            &strings[1][ctx.len()..],
            example(2.0).encode_to_vec().as_slice()
        );
        assert_eq!(
            serialized_examples(None, &mut Limits::default().budget())
                .unwrap_err()
                .message,
            "Input is empty."
        );
        // The context counts once per example.
        let e = serialized_examples(
            Some(&input),
            &mut Limits::from_request_bytes(ctx.len() + 10).budget(),
        )
        .unwrap_err();
        e.assert_is(Code::ResourceExhausted, |m| {
            m.contains("merged into each of the 2 examples")
        });
    }
    /// A float tensor whose values match its dimensions.
    pub(crate) fn floats(dims: &[i64], values: &[f32]) -> Tensor {
        Tensor::new(dims.to_vec(), Values::Float(values.to_vec())).expect("consistent tensor")
    }

    #[test]
    fn padding_fills_the_end_of_each_dimension_with_the_first_element() {
        // [2, 2] to [2, 3]: one new column per row.
        assert_eq!(
            pad_values(&[1, 2, 3, 4], &[2, 2], &[2, 3], 9),
            vec![1, 2, 9, 3, 4, 9]
        );
        // [1, 2, 1] to [1, 3, 2] (TF Serving's example shapes, smaller).
        assert_eq!(
            pad_values(&[5, 6], &[1, 2, 1], &[1, 3, 2], 0),
            vec![5, 0, 6, 0, 0, 0]
        );
        let t = floats(&[1, 2], &[7.0, 8.0]);
        let padded = pad_tensor(&t, &[3, 4]).unwrap();
        assert_eq!(padded, floats(&[1, 4], &[7.0, 8.0, 7.0, 7.0]));
        let strings = Tensor {
            dims: vec![1, 1],
            values: Values::String(vec![b"a".to_vec()]),
        };
        assert_eq!(
            pad_tensor(&strings, &[1, 2]).unwrap().values,
            Values::String(vec![b"a".to_vec(), b"a".to_vec()])
        );
    }

    #[test]
    fn padding_beyond_the_limit_is_refused_not_allocated() {
        let t = floats(&[1, 1, 2], &[1.0, 2.0]);
        for to in [vec![1, 1 << 20, 1 << 20], vec![1, usize::MAX / 2, 4]] {
            let e = pad_tensor(&t, &to).expect_err("too large to pad");
            e.assert_is(Code::ResourceExhausted, |m| {
                m.contains("pad_variable_length_inputs")
            });
        }
    }

    #[test]
    fn padding_errors_are_tf_servings() {
        let empty = floats(&[1, 0], &[]);
        assert_eq!(
            pad_tensor(&empty, &[1, 2]).unwrap_err().message,
            "Got empty tensor in batch of non-empty tensors."
        );
        let rank7 = floats(&[1, 1, 1, 1, 1, 1, 1], &[1.0]);
        assert_eq!(
            pad_tensor(&rank7, &[1; 7]).unwrap_err().code,
            Code::InvalidArgument
        );
    }

    #[test]
    fn values_slice_and_extend() {
        let mut a = Values::Float(vec![1.0, 2.0]);
        assert!(extend(&mut a, &Values::Float(vec![3.0])));
        assert_eq!(slice(&a, 1, 3), Values::Float(vec![2.0, 3.0]));
        assert!(!extend(&mut a, &Values::Int64(vec![1])));
    }
}
