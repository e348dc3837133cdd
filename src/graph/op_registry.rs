//! TensorFlow 2.21's op registry: the OpDef of every op it registers, embedded in the binary
//! (`data/tf_op_registry.pb`, a binary `OpList` written by `python/dump_op_registry.py`, which the
//! test suite checks against TensorFlow) and decoded once, on first use. The one answer smtool has
//! to "what is this op": whether it exists (validate's SM601), how many outputs of which dtypes a
//! node of it has (validate's signature checks), the attrs a node leaves at their default and the
//! checks on the nodes smtool builds, and the OpDefs added to a meta graph's `stripped_op_list`.

use std::sync::OnceLock;

use prost::Message;

use crate::proto::tensorflow::{self as tf, attr_value::Value};

use super::GraphError;

/// The TensorFlow release the embedded registry comes from.
pub const TF_VERSION: &str = "2.21";

/// Every op's OpDef, documentation stripped, sorted by name.
const OP_LIST: &[u8] = include_bytes!("../../data/tf_op_registry.pb");

/// The registered ops, sorted by name.
fn registry() -> &'static [tf::OpDef] {
    static OPS: OnceLock<Vec<tf::OpDef>> = OnceLock::new();
    OPS.get_or_init(|| {
        // The file is part of the binary and checked by the test suite; failing here is a build
        // defect, not a user error.
        let mut ops = tf::OpList::decode(OP_LIST)
            .unwrap_or_else(|e| panic!("the embedded op registry is invalid: {e}"))
            .op;
        ops.sort_by(|a, b| a.name.cmp(&b.name));
        ops
    })
}

/// The OpDef of `op`, if TensorFlow registers it.
pub fn op_def(op: &str) -> Option<&'static tf::OpDef> {
    let ops = registry();
    ops.binary_search_by(|o| o.name.as_str().cmp(op))
        .ok()
        .map(|i| &ops[i])
}

/// Whether TensorFlow registers `op`.
pub fn is_registered(op: &str) -> bool {
    op_def(op).is_some()
}

/// Every registered op, sorted by name.
pub fn all_ops() -> &'static [tf::OpDef] {
    registry()
}

fn attr<'a>(node: &'a tf::NodeDef, name: &str) -> Option<&'a Value> {
    node.attr.get(name).and_then(|a| a.value.as_ref())
}

/// The value of attr `name` of `node`, or its default when the node leaves it out (saved graphs
/// usually strip attrs at their default).
fn attr_or_default<'a>(def: &'a tf::OpDef, node: &'a tf::NodeDef, name: &str) -> Option<&'a Value> {
    attr(node, name).or_else(|| {
        def.attr
            .iter()
            .find(|a| a.name == name)?
            .default_value
            .as_ref()?
            .value
            .as_ref()
    })
}

/// The most tensors one argument is taken to stand for. A count attr is a number in the model
/// file, not a list in it, so without this bound a few bytes could ask for any amount of memory;
/// real graphs stay far below it.
const MAX_ARG_TENSORS: usize = 1 << 16;

/// How many tensors an argument stands for in `node` (list arguments expand); `None` when the
/// attrs do not tell.
fn arg_count(def: &tf::OpDef, node: &tf::NodeDef, arg: &tf::op_def::ArgDef) -> Option<usize> {
    if !arg.number_attr.is_empty() {
        match attr_or_default(def, node, &arg.number_attr)? {
            Value::I(n) => usize::try_from(*n).ok().filter(|n| *n <= MAX_ARG_TENSORS),
            _ => None,
        }
    } else if !arg.type_list_attr.is_empty() {
        match attr_or_default(def, node, &arg.type_list_attr)? {
            Value::List(l) => Some(l.r#type.len()),
            _ => None,
        }
    } else {
        Some(1)
    }
}

/// The dtypes of the tensors an argument stands for in `node` (`None` for one whose dtype the
/// attrs do not tell); `None` when their number is unknown.
fn arg_types(
    def: &tf::OpDef,
    node: &tf::NodeDef,
    arg: &tf::op_def::ArgDef,
) -> Option<Vec<Option<i32>>> {
    if !arg.type_list_attr.is_empty() {
        return match attr_or_default(def, node, &arg.type_list_attr)? {
            Value::List(l) => Some(l.r#type.iter().copied().map(Some).collect()),
            _ => None,
        };
    }
    let dtype = if arg.type_attr.is_empty() {
        Some(arg.r#type)
    } else {
        match attr_or_default(def, node, &arg.type_attr) {
            Some(Value::Type(t)) => Some(*t),
            _ => None,
        }
    };
    Some(vec![dtype; arg_count(def, node, arg)?])
}

/// The dtypes of the outputs of `node`, a node of a registered op (`None` for one whose dtype the
/// attrs do not tell); `None` when the op is not registered or the number of outputs cannot be
/// worked out.
pub fn output_types(node: &tf::NodeDef) -> Option<Vec<Option<i32>>> {
    output_types_by(op_def(&node.op)?, node)
}

/// The dtypes of the outputs of `node` by `def`, its op's OpDef or the signature of the function
/// it calls, as [`output_types`].
pub fn output_types_by(def: &tf::OpDef, node: &tf::NodeDef) -> Option<Vec<Option<i32>>> {
    let mut out = Vec::new();
    for arg in &def.output_arg {
        out.extend(arg_types(def, node, arg)?);
    }
    Some(out)
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

/// Fills in the attrs `node` leaves at their default and checks it against its OpDef: every attr
/// set and of the declared kind, type attrs within their allowed values, no unknown attrs, and as
/// many data inputs as the op takes.
pub fn complete(node: &mut tf::NodeDef) -> Result<(), GraphError> {
    let bad = |detail: String| GraphError::BadNode {
        node: node.name.clone(),
        op: node.op.clone(),
        detail,
    };
    let def = op_def(&node.op).ok_or_else(|| bad(not_registered()))?;
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
        wanted += arg_count(def, node, arg)
            .ok_or_else(|| bad(format!("cannot size input '{}'", arg.name)))?;
    }
    let data_inputs = node.input.iter().filter(|i| !i.starts_with('^')).count();
    if data_inputs != wanted {
        return Err(bad(format!(
            "takes {wanted} data inputs, {data_inputs} given"
        )));
    }
    Ok(())
}

fn not_registered() -> String {
    format!("op is not registered in TensorFlow {TF_VERSION}")
}

/// Which output argument of `node`'s op its output `index` belongs to, and the index within that
/// argument: function bodies name tensors `node:arg:index`.
pub fn output_arg(node: &tf::NodeDef, index: usize) -> Result<(&'static str, usize), GraphError> {
    let bad = |detail: String| GraphError::BadNode {
        node: node.name.clone(),
        op: node.op.clone(),
        detail,
    };
    let def = op_def(&node.op).ok_or_else(|| bad(not_registered()))?;
    let mut first = 0;
    for arg in &def.output_arg {
        let n = arg_count(def, node, arg)
            .ok_or_else(|| bad(format!("cannot size output '{}'", arg.name)))?;
        if index < first + n {
            return Ok((arg.name.as_str(), index - first));
        }
        first += n;
    }
    Err(bad(format!("has no output {index}")))
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
    fn the_embedded_registry_decodes_and_knows_common_ops() {
        let ops = all_ops();
        assert!(ops.len() > 1500, "only {} ops", ops.len());
        assert!(ops.windows(2).all(|w| w[0].name < w[1].name));
        for op in [
            "Placeholder",
            "Const",
            "StatefulPartitionedCall",
            "SaveV2",
            "ReadFile",
            "InitializeTableFromTextFileV2",
            "ParseExampleV2",
            "TopKV2",
            "GatherV2",
            "MapDefun",
            "DecodeImage",
        ] {
            assert!(is_registered(op), "{op}");
        }
        assert!(!is_registered("MyCustomOp"));
        // Stripped as in a meta graph's stripped_op_list.
        assert!(ops
            .iter()
            .all(|o| o.summary.is_empty() && o.description.is_empty()));
    }

    fn with_attrs(op: &str, attrs: &[(&str, Value)]) -> tf::NodeDef {
        tf::NodeDef {
            name: "n".into(),
            op: op.into(),
            attr: attrs
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        tf::AttrValue {
                            value: Some(v.clone()),
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn output_types_follow_attrs_and_defaults() {
        let float = tf::DataType::DtFloat as i32;
        let string = tf::DataType::DtString as i32;
        let int32 = tf::DataType::DtInt32 as i32;
        let types = |t: &[i32]| {
            Value::List(tf::attr_value::ListValue {
                r#type: t.to_vec(),
                ..Default::default()
            })
        };
        let cases: Vec<(tf::NodeDef, Option<Vec<Option<i32>>>)> = vec![
            (
                with_attrs("Placeholder", &[("dtype", Value::Type(float))]),
                Some(vec![Some(float)]),
            ),
            (with_attrs("Placeholder", &[]), Some(vec![None])),
            // Unique's out_idx defaults to int32 and is stripped from saved graphs.
            (
                with_attrs("Unique", &[("T", Value::Type(string))]),
                Some(vec![Some(string), Some(int32)]),
            ),
            (
                with_attrs(
                    "StatefulPartitionedCall",
                    &[("Tout", types(&[float, string]))],
                ),
                Some(vec![Some(float), Some(string)]),
            ),
            (with_attrs("StatefulPartitionedCall", &[]), None),
            (
                with_attrs("Split", &[("num_split", Value::I(3))]),
                Some(vec![None; 3]),
            ),
            // A count no graph has is unknown, not an allocation.
            (
                with_attrs("Split", &[("num_split", Value::I(1 << 40))]),
                None,
            ),
            (with_attrs("NoOp", &[]), Some(vec![])),
            (with_attrs("ReadFile", &[]), Some(vec![Some(string)])),
            (with_attrs("MyCustomOp", &[]), None),
        ];
        for (n, want) in cases {
            assert_eq!(output_types(&n), want, "{}", n.op);
        }
    }

    fn node(op: &str, inputs: &[&str]) -> tf::NodeDef {
        crate::graph::raw_node("n", op, inputs)
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
        assert_eq!(output_arg(&n, 0).unwrap(), ("output", 0));
        let err = output_arg(&n, 1).unwrap_err().to_string();
        assert!(err.contains("has no output 1"), "{err}");
        let split = with_attrs("Split", &[("num_split", Value::I(3))]);
        assert_eq!(output_arg(&split, 2).unwrap(), ("output", 2));
    }
}
