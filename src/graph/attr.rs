//! Building `AttrValue`s and constant `TensorProto`s for the nodes smtool adds to a graph.

use crate::proto::tensorflow::{self as tf, attr_value, DataType};

fn value(v: attr_value::Value) -> tf::AttrValue {
    tf::AttrValue { value: Some(v) }
}

pub fn dtype(d: DataType) -> tf::AttrValue {
    value(attr_value::Value::Type(d as i32))
}

pub fn dtypes(ds: &[DataType]) -> tf::AttrValue {
    value(attr_value::Value::List(attr_value::ListValue {
        r#type: ds.iter().map(|d| *d as i32).collect(),
        ..Default::default()
    }))
}

pub fn int(i: i64) -> tf::AttrValue {
    value(attr_value::Value::I(i))
}

pub fn ints(is: &[i64]) -> tf::AttrValue {
    value(attr_value::Value::List(attr_value::ListValue {
        i: is.to_vec(),
        ..Default::default()
    }))
}

pub fn boolean(b: bool) -> tf::AttrValue {
    value(attr_value::Value::B(b))
}

pub use crate::proto_ext::shape_proto;

pub fn shape(dims: &[i64]) -> tf::AttrValue {
    value(attr_value::Value::Shape(shape_proto(dims)))
}

pub fn shapes(list: &[Vec<i64>]) -> tf::AttrValue {
    value(attr_value::Value::List(attr_value::ListValue {
        shape: list.iter().map(|d| shape_proto(d)).collect(),
        ..Default::default()
    }))
}

pub fn func(name: &str) -> tf::AttrValue {
    value(attr_value::Value::Func(tf::NameAttrList {
        name: name.to_owned(),
        attr: Default::default(),
    }))
}

pub fn tensor(t: tf::TensorProto) -> tf::AttrValue {
    value(attr_value::Value::Tensor(t))
}

/// A DT_STRING tensor of shape `[len]`.
pub fn string_vector<S: AsRef<[u8]>>(items: &[S]) -> tf::TensorProto {
    tf::TensorProto {
        dtype: DataType::DtString as i32,
        tensor_shape: Some(shape_proto(&[items.len() as i64])),
        string_val: items.iter().map(|s| s.as_ref().to_vec()).collect(),
        ..Default::default()
    }
}

/// A DT_INT32 tensor: a scalar when `dims` is empty.
pub fn int32_tensor(values: &[i32], dims: &[i64]) -> tf::TensorProto {
    tf::TensorProto {
        dtype: DataType::DtInt32 as i32,
        tensor_shape: Some(shape_proto(dims)),
        int_val: values.to_vec(),
        ..Default::default()
    }
}

/// A DT_FLOAT scalar.
pub fn float_scalar(v: f32) -> tf::TensorProto {
    tf::TensorProto {
        dtype: DataType::DtFloat as i32,
        tensor_shape: Some(shape_proto(&[])),
        float_val: vec![v],
        ..Default::default()
    }
}

/// An empty tensor of shape `[0]` (e.g. "no default" for a dense `tf.Example` feature).
pub fn empty(d: DataType) -> tf::TensorProto {
    tf::TensorProto {
        dtype: d as i32,
        tensor_shape: Some(shape_proto(&[0])),
        ..Default::default()
    }
}

/// The `func` attr's function name, if the attr is one.
pub fn func_name(attr: Option<&tf::AttrValue>) -> Option<&str> {
    match attr?.value.as_ref()? {
        attr_value::Value::Func(f) => Some(&f.name),
        _ => None,
    }
}

/// The `type` attr's dtype, if the attr is one.
pub fn type_of(attr: Option<&tf::AttrValue>) -> Option<i32> {
    match attr?.value.as_ref()? {
        attr_value::Value::Type(t) => Some(*t),
        _ => None,
    }
}
