//! Whether a tensor is produced by a Softmax: looking through Identity nodes, and for TF2 exports
//! into the library function a `(Stateful)PartitionedCall` runs.

use std::collections::BTreeMap;

use crate::proto::tensorflow as tf;
use crate::proto_ext::split_tensor_name;

use super::attr;

/// Ops that pass their input through unchanged.
const PASS_THROUGH: [&str; 3] = ["Identity", "Snapshot", "StopGradient"];
const CALLS: [&str; 2] = ["PartitionedCall", "StatefulPartitionedCall"];
/// Deeper nesting than this is treated as "not found" (guards against recursive libraries).
const MAX_DEPTH: usize = 64;

struct Library<'a> {
    functions: BTreeMap<&'a str, &'a tf::FunctionDef>,
}

/// True when `tensor` of the top-level graph is the output of a Softmax.
pub fn produced_by_softmax(graph: &tf::GraphDef, tensor: &str) -> bool {
    let lib = Library {
        functions: graph
            .library
            .iter()
            .flat_map(|l| l.function.iter())
            .filter_map(|f| Some((f.signature.as_ref()?.name.as_str(), f)))
            .collect(),
    };
    walk(
        &graph.node,
        tensor,
        |t| {
            let (name, idx) = split_tensor_name(t);
            Some((name, idx as usize))
        },
        |f, idx| lib.function_output_is_softmax(f, idx, 1),
    )
}

/// Follows `tensor` back through pass-through nodes of `nodes` to a Softmax. `output` splits a
/// tensor name into its node and output index (None: not a node's output); `call` answers for
/// output `index` of the library function a call node runs.
fn walk<'a>(
    nodes: &'a [tf::NodeDef],
    mut tensor: &'a str,
    output: impl Fn(&'a str) -> Option<(&'a str, usize)>,
    call: impl FnOnce(&str, usize) -> bool,
) -> bool {
    let nodes: BTreeMap<&str, &tf::NodeDef> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    for _ in 0..MAX_DEPTH {
        let Some((name, index)) = output(tensor) else {
            return false;
        };
        let Some(node) = nodes.get(name) else {
            return false;
        };
        if node.op == "Softmax" {
            return true;
        }
        if PASS_THROUGH.contains(&node.op.as_str()) {
            let Some(input) = node.input.first() else {
                return false;
            };
            tensor = input;
            continue;
        }
        if CALLS.contains(&node.op.as_str()) {
            return attr::func_name(node.attr.get("f")).is_some_and(|f| call(f, index));
        }
        return false;
    }
    false
}

impl Library<'_> {
    /// Whether output number `index` of function `name` comes from a Softmax.
    fn function_output_is_softmax(&self, name: &str, index: usize, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let Some(f) = self.functions.get(name) else {
            return false;
        };
        let Some(arg) = f.signature.as_ref().and_then(|s| s.output_arg.get(index)) else {
            return false;
        };
        let Some(tensor) = f.ret.get(&arg.name).map(String::as_str) else {
            return false;
        };
        // Inside a function a tensor is `node:arg:index`, or a bare input argument. Call outputs
        // form one list argument `output`, so the index is the position.
        walk(
            &f.node_def,
            tensor,
            |t| {
                let mut parts = t.split(':');
                let node_name = parts.next().unwrap_or_default();
                parts.next()?;
                let index = parts.next().and_then(|i| i.parse().ok()).unwrap_or(0);
                Some((node_name, index))
            },
            |g, index| self.function_output_is_softmax(g, index, depth + 1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::raw_node as n;

    fn call(name: &str, f: &str) -> tf::NodeDef {
        let mut node = n(name, "StatefulPartitionedCall", &["x"]);
        node.attr.insert("f".into(), attr::func(f));
        node
    }

    fn function(name: &str, nodes: Vec<tf::NodeDef>, outputs: &[(&str, &str)]) -> tf::FunctionDef {
        tf::FunctionDef {
            signature: Some(tf::OpDef {
                name: name.into(),
                output_arg: outputs
                    .iter()
                    .map(|(a, _)| tf::op_def::ArgDef {
                        name: a.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            node_def: nodes,
            ret: outputs
                .iter()
                .map(|(a, t)| (a.to_string(), t.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn finds_softmax_in_graphs_and_nested_functions() {
        let inner = function(
            "inner",
            vec![
                n("logits", "BiasAdd", &["x"]),
                n("Softmax", "Softmax", &["logits:output:0"]),
                n("Identity", "Identity", &["Softmax:softmax:0"]),
            ],
            &[
                ("logits", "logits:output:0"),
                ("probs", "Identity:output:0"),
            ],
        );
        let mut wrapper_call = call("call", "inner");
        wrapper_call.input = vec!["x".into()];
        let wrapper = function(
            "wrapper",
            vec![
                wrapper_call,
                n("Identity", "Identity", &["call:output:1"]),
                n("Id0", "Identity", &["call:output:0"]),
            ],
            &[
                ("output_0", "Identity:output:0"),
                ("output_1", "Id0:output:0"),
            ],
        );
        let graph = tf::GraphDef {
            node: vec![
                n("x", "Placeholder", &[]),
                call("c", "wrapper"),
                n("probs", "Softmax", &["x"]),
                n("probs_id", "Identity", &["probs"]),
                n("logits", "MatMul", &["x", "x"]),
            ],
            library: Some(tf::FunctionDefLibrary {
                function: vec![inner, wrapper],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(produced_by_softmax(&graph, "c:0"));
        assert!(!produced_by_softmax(&graph, "c:1"));
        assert!(produced_by_softmax(&graph, "probs:0"));
        assert!(produced_by_softmax(&graph, "probs_id"));
        assert!(!produced_by_softmax(&graph, "logits:0"));
        assert!(!produced_by_softmax(&graph, "missing:0"));
    }
}
