//! Graph binding: every TensorInfo of every signature names a tensor that exists in `graph_def`,
//! within the node's outputs, with the dtype the node produces. TensorFlow itself only finds these
//! when the model is loaded or first called.

use crate::proto::tensorflow::{self as tf, tensor_info::Encoding, DataType};
use crate::proto_ext::dtype_name;
use crate::signature::RESERVED_KEYS;

use super::{op_registry, Context, Finding, Rule};
use crate::graph::GraphIndex;

/// Reference dtypes (`DT_FLOAT_REF`) are their base dtype plus 100.
fn base_dtype(t: i32) -> i32 {
    if t > 100 {
        t - 100
    } else {
        t
    }
}

/// Splits `node:3` strictly: `None` when the index is not a number.
fn parse_tensor(name: &str) -> Option<(&str, usize)> {
    match name.rsplit_once(':') {
        Some((node, idx)) => Some((node, idx.parse().ok()?)),
        None => Some((name, 0)),
    }
}

struct Where<'a> {
    key: &'a str,
    /// e.g. `input 'x'`, `output 'y' (sparse indices)`.
    what: String,
}

fn dense(graph: &GraphIndex<'_>, at: &Where<'_>, tensor: &str, want: i32) -> Option<Finding> {
    let finding = |rule, message: String| Some(Finding::new(rule, message).signature(at.key));
    let what = &at.what;
    let Some((node_name, index)) = parse_tensor(tensor).filter(|(n, _)| !n.is_empty()) else {
        return finding(
            Rule::TensorInfoMalformed,
            format!(
                "{what} names '{tensor}', which is not a tensor name of the form node:index; fix \
                 the signature"
            ),
        );
    };
    let Some(node) = graph.nodes.get(node_name) else {
        return finding(
            Rule::TensorMissing,
            format!(
                "{what} names tensor '{tensor}', but the graph has no node '{node_name}': \
                 TensorFlow fails when the signature is loaded or called; re-export the model or \
                 point the signature at an existing tensor"
            ),
        );
    };
    let types = op_registry::output_types(node, graph)?;
    if index >= types.len() {
        return Some(
            Finding::new(
                Rule::OutputIndex,
                format!(
                    "{what} names tensor '{tensor}', but node '{node_name}' ({}) has {} \
                     output(s); point the signature at an existing output",
                    node.op,
                    types.len()
                ),
            )
            .signature(at.key)
            .node(node_name, None),
        );
    }
    let have = types[index]?;
    if base_dtype(have) != base_dtype(want) {
        return Some(
            Finding::new(
                Rule::DtypeMismatch,
                format!(
                    "{what} is declared {} but tensor '{tensor}' ({}) produces {}: clients would \
                     send or expect the wrong type; fix the signature's dtype",
                    dtype_name(want),
                    node.op,
                    dtype_name(have)
                ),
            )
            .signature(at.key)
            .node(node_name, None),
        );
    }
    None
}

fn tensor_info(
    graph: &GraphIndex<'_>,
    at: &Where<'_>,
    info: &tf::TensorInfo,
    out: &mut Vec<Finding>,
) {
    let malformed = |detail: &str| {
        Finding::new(
            Rule::TensorInfoMalformed,
            format!("{} {detail}; fix the signature", at.what),
        )
        .signature(at.key)
    };
    match &info.encoding {
        None => out.push(malformed(
            "names no tensor (no name, sparse or composite encoding)",
        )),
        Some(Encoding::Name(name)) => out.extend(dense(graph, at, name, info.dtype)),
        Some(Encoding::CooSparse(coo)) => {
            let int64 = DataType::DtInt64 as i32;
            for (part, tensor, want) in [
                ("values", &coo.values_tensor_name, info.dtype),
                ("indices", &coo.indices_tensor_name, int64),
                ("dense_shape", &coo.dense_shape_tensor_name, int64),
            ] {
                let at = Where {
                    key: at.key,
                    what: format!("{} (sparse {part})", at.what),
                };
                if tensor.is_empty() {
                    out.push(
                        Finding::new(
                            Rule::TensorInfoMalformed,
                            format!("{} names no tensor; fix the signature", at.what),
                        )
                        .signature(at.key),
                    );
                } else {
                    out.extend(dense(graph, &at, tensor, want));
                }
            }
        }
        Some(Encoding::CompositeTensor(composite)) => {
            if composite.components.is_empty() {
                out.push(malformed("is a composite tensor without components"));
            }
            for (i, component) in composite.components.iter().enumerate() {
                let at = Where {
                    key: at.key,
                    what: format!("{} (component {i})", at.what),
                };
                tensor_info(graph, &at, component, out);
            }
        }
    }
}

/// SM301, SM302, SM303, SM304.
pub fn check(ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (key, sig) in &ctx.meta_graph.signature_def {
        if RESERVED_KEYS.contains(&key.as_str()) {
            // These name an op to run, not a tensor; the init-op rule checks that it exists.
            continue;
        }
        for (dir, map) in [("input", &sig.inputs), ("output", &sig.outputs)] {
            for (name, info) in map {
                let at = Where {
                    key,
                    what: format!("{dir} '{name}'"),
                };
                tensor_info(&ctx.graph, &at, info, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_names_parse_strictly() {
        assert_eq!(parse_tensor("x:0"), Some(("x", 0)));
        assert_eq!(parse_tensor("a/b:12"), Some(("a/b", 12)));
        assert_eq!(parse_tensor("x"), Some(("x", 0)));
        assert_eq!(parse_tensor("x:y"), None);
        assert_eq!(base_dtype(101), 1);
        assert_eq!(base_dtype(7), 7);
    }
}
