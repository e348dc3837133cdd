//! What validate asks of TensorFlow 2.21's op registry ([`crate::graph::op_registry`]): the
//! outputs of a node, including nodes that call a library function by name, and the
//! op-compatibility rule (SM601).

use std::collections::BTreeMap;

use crate::graph::op_registry as registry;
use crate::proto::tensorflow as tf;

use super::{Finding, Rule};
use crate::graph::GraphIndex;

pub use registry::TF_VERSION;

/// The dtypes of a node's outputs (`None` for one whose dtype the attrs do not tell): by the
/// OpDef of its op, or by the signature of the library function it calls directly by name.
/// `None` when unknown.
pub fn output_types(node: &tf::NodeDef, graph: &GraphIndex<'_>) -> Option<Vec<Option<i32>>> {
    let def = match registry::op_def(&node.op) {
        Some(def) => def,
        None => graph.functions.get(node.op.as_str())?.signature.as_ref()?,
    };
    registry::output_types_by(def, node)
}

/// SM601: ops TensorFlow 2.21 does not register and the function library does not define.
/// One finding per op, naming where it is first used and how often.
pub fn check(graph: &GraphIndex<'_>, allow: &std::collections::BTreeSet<String>) -> Vec<Finding> {
    let mut unknown: BTreeMap<&str, (usize, Option<&str>, &str)> = BTreeMap::new();
    for r in crate::ops::all_nodes(graph.graph) {
        let op = r.node.op.as_str();
        if registry::is_registered(op) || graph.functions.contains_key(op) || allow.contains(op) {
            continue;
        }
        unknown
            .entry(op)
            .or_insert((0, r.function, r.node.name.as_str()))
            .0 += 1;
    }
    unknown
        .into_iter()
        .map(|(op, (count, function, node))| {
            let more = match count {
                1 => String::new(),
                n => format!(" ({n} nodes use it)"),
            };
            let mut f = Finding::new(
                Rule::UnknownOp,
                format!(
                    "op '{op}'{more} is not registered in TensorFlow {TF_VERSION} (a custom op, a \
                     typo, or an op from a newer release): TensorFlow Serving will fail to load \
                     the model; rebuild it with standard ops, or load the custom op library and \
                     pass --allow-op {op}"
                ),
            );
            f.node = Some(node.to_owned());
            f.function = function.map(str::to_owned);
            f
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_of_library_functions_take_the_function_signature() {
        let float = tf::DataType::DtFloat as i32;
        let graph = tf::GraphDef {
            library: Some(tf::FunctionDefLibrary {
                function: vec![tf::FunctionDef {
                    signature: Some(tf::OpDef {
                        name: "my_fn".into(),
                        output_arg: vec![tf::op_def::ArgDef {
                            name: "y".into(),
                            r#type: float,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let index = GraphIndex::new(&graph);
        let call = |op: &str| tf::NodeDef {
            name: "n".into(),
            op: op.into(),
            ..Default::default()
        };
        assert_eq!(
            output_types(&call("my_fn"), &index),
            Some(vec![Some(float)])
        );
        assert_eq!(output_types(&call("NoOp"), &index), Some(vec![]));
        assert_eq!(output_types(&call("MyCustomOp"), &index), None);
    }
}
