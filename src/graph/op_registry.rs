//! The op signatures (OpDefs from TensorFlow 2.21's op registry, see `python/extract_op_defs.py`)
//! of every op smtool adds to a graph: nodes are completed with default attrs and checked against
//! them, and a meta graph's `stripped_op_list` is extended with them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::proto::tensorflow::{self as tf, attr_value::Value};

use super::GraphError;

const OP_DEFS: &str = include_str!("op_defs.pbtxt");

fn registry() -> &'static BTreeMap<String, tf::OpDef> {
    static OPS: OnceLock<BTreeMap<String, tf::OpDef>> = OnceLock::new();
    OPS.get_or_init(|| {
        // The file is generated and checked by the test suite; failing here is a build defect.
        let list: tf::OpList = crate::savedmodel::parse_text_format(OP_DEFS, "tensorflow.OpList")
            .unwrap_or_else(|e| panic!("embedded op_defs.pbtxt is invalid: {e}"));
        list.op
            .into_iter()
            .map(|op| (op.name.clone(), op))
            .collect()
    })
}

/// The OpDef of `op`, if smtool knows it.
pub fn op_def(op: &str) -> Option<&'static tf::OpDef> {
    registry().get(op)
}

/// Names of every op smtool knows.
pub fn known_ops() -> impl Iterator<Item = &'static str> {
    registry().keys().map(String::as_str)
}

fn attr_kind_matches(kind: &str, value: &Value) -> bool {
    match (kind, value) {
        ("type", Value::Type(_))
        | ("int", Value::I(_))
        | ("float", Value::F(_))
        | ("bool", Value::B(_))
        | ("string", Value::S(_))
        | ("shape", Value::Shape(_))
        | ("tensor", Value::Tensor(_))
        | ("func", Value::Func(_)) => true,
        (k, Value::List(_)) => k.starts_with("list("),
        _ => false,
    }
}

fn list_len(node: &tf::NodeDef, attr: &str) -> Option<usize> {
    match node.attr.get(attr)?.value.as_ref()? {
        Value::I(n) => usize::try_from(*n).ok(),
        Value::List(l) => Some(l.r#type.len()),
        _ => None,
    }
}

/// How many tensors an argument stands for in `node` (list arguments expand).
fn arg_count(node: &tf::NodeDef, arg: &tf::op_def::ArgDef) -> Option<usize> {
    if !arg.number_attr.is_empty() {
        list_len(node, &arg.number_attr)
    } else if !arg.type_list_attr.is_empty() {
        list_len(node, &arg.type_list_attr)
    } else {
        Some(1)
    }
}

/// Fills in the attrs `node` leaves at their default and checks it against its OpDef: every attr
/// set and of the declared kind, type attrs within their allowed values, no unknown attrs, and as
/// many data inputs as the op takes.
pub fn complete(node: &mut tf::NodeDef) -> Result<(), GraphError> {
    let bad = |detail: String| GraphError::BadNode {
        node: node.name.clone(),
        op: node.op.clone(),
        detail,
    };
    let def = op_def(&node.op).ok_or_else(|| bad("op is not in smtool's op list".into()))?;
    for attr in &def.attr {
        if !node.attr.contains_key(&attr.name) {
            match &attr.default_value {
                Some(d) => {
                    node.attr.insert(attr.name.clone(), d.clone());
                }
                None => return Err(bad(format!("attr '{}' is not set", attr.name))),
            }
        }
    }
    for (name, value) in &node.attr {
        if name.starts_with('_') {
            continue;
        }
        let Some(decl) = def.attr.iter().find(|a| &a.name == name) else {
            return Err(bad(format!("unknown attr '{name}'")));
        };
        let Some(v) = value.value.as_ref() else {
            return Err(bad(format!("attr '{name}' has no value")));
        };
        if !attr_kind_matches(&decl.r#type, v) {
            return Err(bad(format!("attr '{name}' must be a {}", decl.r#type)));
        }
        if let (Value::Type(t), Some(Value::List(allowed))) = (
            v,
            decl.allowed_values.as_ref().and_then(|a| a.value.as_ref()),
        ) {
            if !allowed.r#type.contains(t) {
                return Err(bad(format!(
                    "attr '{name}' = {} is not allowed",
                    crate::proto_ext::dtype_name(*t)
                )));
            }
        }
        if decl.has_minimum {
            let n = match v {
                Value::I(i) => Some(*i),
                Value::List(l) => Some(
                    (l.r#type.len() + l.i.len() + l.shape.len() + l.s.len() + l.func.len()) as i64,
                ),
                _ => None,
            };
            if let Some(n) = n.filter(|n| *n < decl.minimum) {
                return Err(bad(format!(
                    "attr '{name}' is {n}, below the minimum {}",
                    decl.minimum
                )));
            }
        }
    }
    let mut wanted = 0;
    for arg in &def.input_arg {
        wanted +=
            arg_count(node, arg).ok_or_else(|| bad(format!("cannot size input '{}'", arg.name)))?;
    }
    let data_inputs = node.input.iter().filter(|i| !i.starts_with('^')).count();
    if data_inputs != wanted {
        return Err(bad(format!(
            "takes {wanted} data inputs, {data_inputs} given"
        )));
    }
    Ok(())
}

/// The output argument names of `node`'s op, expanded: one `(arg name, index within the arg)` per
/// output tensor. Function bodies name tensors `node:arg:index`.
pub fn output_args(node: &tf::NodeDef) -> Result<Vec<(String, usize)>, GraphError> {
    let def = op_def(&node.op).ok_or_else(|| GraphError::BadNode {
        node: node.name.clone(),
        op: node.op.clone(),
        detail: "op is not in smtool's op list".into(),
    })?;
    let mut out = Vec::new();
    for arg in &def.output_arg {
        let n = arg_count(node, arg).ok_or_else(|| GraphError::BadNode {
            node: node.name.clone(),
            op: node.op.clone(),
            detail: format!("cannot size output '{}'", arg.name),
        })?;
        out.extend((0..n).map(|i| (arg.name.clone(), i)));
    }
    Ok(out)
}

/// Adds the OpDefs of `ops` to the meta graph's `stripped_op_list` when it has one (TensorFlow's
/// exporters record every op the graph uses there, sorted by name), keeping it sorted.
pub fn extend_stripped_op_list<'a>(
    meta: &mut tf::MetaGraphDef,
    ops: impl IntoIterator<Item = &'a str>,
) {
    let Some(list) = meta
        .meta_info_def
        .as_mut()
        .and_then(|m| m.stripped_op_list.as_mut())
    else {
        return;
    };
    for op in ops {
        if list.op.iter().any(|o| o.name == op) {
            continue;
        }
        if let Some(def) = op_def(op) {
            list.op.push(def.clone());
        }
    }
    list.op.sort_by(|a, b| a.name.cmp(&b.name));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::attr;

    #[test]
    fn every_embedded_op_parses() {
        let names: Vec<&str> = known_ops().collect();
        for op in [
            "ParseExampleV2",
            "TopKV2",
            "GatherV2",
            "MapDefun",
            "DecodeImage",
        ] {
            assert!(names.contains(&op), "{op} missing from {names:?}");
        }
    }

    fn node(op: &str, inputs: &[&str]) -> tf::NodeDef {
        tf::NodeDef {
            name: "n".into(),
            op: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_filled_in() {
        let mut n = node("TopKV2", &["a", "k"]);
        n.attr
            .insert("T".into(), attr::dtype(tf::DataType::DtFloat));
        complete(&mut n).unwrap();
        assert_eq!(n.attr["sorted"], attr::boolean(true));
        assert_eq!(n.attr["index_type"], attr::dtype(tf::DataType::DtInt32));
    }

    #[test]
    fn bad_nodes_are_refused() {
        // Missing required attr.
        let mut n = node("TopKV2", &["a", "k"]);
        let err = complete(&mut n).unwrap_err().to_string();
        assert!(err.contains("attr 'T' is not set"), "{err}");
        // Wrong input count.
        let mut n = node("Softmax", &["a", "b"]);
        n.attr
            .insert("T".into(), attr::dtype(tf::DataType::DtFloat));
        let err = complete(&mut n).unwrap_err().to_string();
        assert!(err.contains("takes 1 data inputs, 2 given"), "{err}");
        // Type outside the allowed values.
        let mut n = node("Softmax", &["a"]);
        n.attr
            .insert("T".into(), attr::dtype(tf::DataType::DtString));
        let err = complete(&mut n).unwrap_err().to_string();
        assert!(err.contains("DT_STRING is not allowed"), "{err}");
        // Unknown attr.
        let mut n = node("Identity", &["a"]);
        n.attr
            .insert("T".into(), attr::dtype(tf::DataType::DtFloat));
        n.attr.insert("bogus".into(), attr::int(1));
        let err = complete(&mut n).unwrap_err().to_string();
        assert!(err.contains("unknown attr 'bogus'"), "{err}");
    }

    #[test]
    fn list_inputs_expand() {
        let mut n = node("MapDefun", &["a", "b"]);
        n.attr.insert(
            "Targuments".into(),
            attr::dtypes(&[tf::DataType::DtString, tf::DataType::DtString]),
        );
        n.attr.insert(
            "output_types".into(),
            attr::dtypes(&[tf::DataType::DtFloat]),
        );
        n.attr
            .insert("output_shapes".into(), attr::shapes(&[vec![2]]));
        n.attr.insert("f".into(), attr::func("f"));
        complete(&mut n).unwrap();
        assert_eq!(output_args(&n).unwrap(), vec![("output".to_string(), 0)]);
    }
}
