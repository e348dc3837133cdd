//! Cloning the computation between a signature's inputs and one of its outputs, with the inputs
//! rewired to other tensors. Works for TF1 graphs (the nodes between the placeholders and the
//! output) and TF2 exports (the `StatefulPartitionedCall` into the function library) alike: only
//! nodes that depend on the inputs are cloned; variables, tables and constants are shared.

use std::collections::{BTreeMap, BTreeSet};

use crate::proto::tensorflow::{self as tf, attr_value::Value};
use crate::proto_ext::split_tensor_name;

use super::{canonical_tensor, GraphEditor, GraphError};

/// What a clone produced.
#[derive(Debug, Clone)]
pub struct Cloned {
    /// The clone's tensor that corresponds to the requested output.
    pub output: String,
    /// Original node name -> clone name.
    pub nodes: BTreeMap<String, String>,
}

/// The nodes (by index) that lie downstream of `inputs` and upstream of `output`.
fn dependent_nodes(
    graph: &tf::GraphDef,
    inputs: &BTreeSet<String>,
    output: &str,
) -> Result<Vec<usize>, GraphError> {
    let index: BTreeMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    // Every ancestor of the output node (data and control edges).
    let (out_node, _) = split_tensor_name(output);
    let start = *index
        .get(out_node)
        .ok_or_else(|| GraphError::MissingNode(out_node.to_owned(), output.to_owned()))?;
    let replaced =
        |input: &str| !input.starts_with('^') && inputs.contains(&canonical_tensor(input));
    let mut ancestor = vec![false; graph.node.len()];
    let mut order = Vec::new();
    let mut stack = vec![start];
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut ancestor[i], true) {
            continue;
        }
        order.push(i);
        for input in &graph.node[i].input {
            // An input tensor is replaced, so whatever produced it is not needed.
            if replaced(input) {
                continue;
            }
            let (name, _) = split_tensor_name(input);
            let j = *index
                .get(name)
                .ok_or_else(|| GraphError::MissingNode(name.to_owned(), input.clone()))?;
            stack.push(j);
        }
    }
    // Among them, those that read an input or a node that does: spread forward from the readers
    // along the ancestors' edges (graphs with while loops have cycles, so each node once).
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); graph.node.len()];
    let mut dependent = vec![false; graph.node.len()];
    let mut queue = Vec::new();
    for &i in &order {
        for input in &graph.node[i].input {
            if replaced(input) {
                if !std::mem::replace(&mut dependent[i], true) {
                    queue.push(i);
                }
                continue;
            }
            if let Some(&j) = index.get(split_tensor_name(input).0) {
                if ancestor[j] {
                    consumers[j].push(i);
                }
            }
        }
    }
    while let Some(j) = queue.pop() {
        for &i in &consumers[j] {
            if !std::mem::replace(&mut dependent[i], true) {
                queue.push(i);
            }
        }
    }
    if !dependent[start] {
        return Err(GraphError::NotDependent(output.to_owned()));
    }
    Ok((0..graph.node.len()).filter(|&i| dependent[i]).collect())
}

/// Clones into `editor`'s scope every node between `replace`'s keys and `output`, reading
/// `replace[t]` wherever the original read tensor `t`. The original nodes stay as they are, so
/// existing signatures keep working.
pub fn clone_between(
    editor: &mut GraphEditor<'_>,
    replace: &BTreeMap<String, String>,
    output: &str,
) -> Result<Cloned, GraphError> {
    let replace: BTreeMap<String, String> = replace
        .iter()
        .map(|(k, v)| (canonical_tensor(k), v.clone()))
        .collect();
    let inputs: BTreeSet<String> = replace.keys().cloned().collect();
    if let Some(new) = replace.get(&canonical_tensor(output)) {
        return Ok(Cloned {
            output: new.clone(),
            nodes: BTreeMap::new(),
        });
    }
    let order = dependent_nodes(editor.graph(), &inputs, output)?;
    let mut names = BTreeMap::new();
    for &i in &order {
        let original = editor.graph().node[i].name.clone();
        let local = original.replace('/', "_");
        names.insert(original, editor.name(&local));
    }
    let mut clones = Vec::with_capacity(order.len());
    for &i in &order {
        let mut node = editor.graph().node[i].clone();
        node.name = names[&node.name].clone();
        for input in &mut node.input {
            let control = input.starts_with('^');
            if !control {
                if let Some(new) = replace.get(&canonical_tensor(input)) {
                    *input = new.clone();
                    continue;
                }
            }
            let (src, idx) = split_tensor_name(input);
            if let Some(new) = names.get(src) {
                *input = match (control, input.contains(':')) {
                    (true, _) => format!("^{new}"),
                    (false, true) => format!("{new}:{idx}"),
                    (false, false) => new.clone(),
                };
            }
        }
        // A cloned TF1 while loop must not share its frame with the original one.
        if node.op == "Enter" || node.op == "RefEnter" {
            if let Some(Value::S(frame)) = node
                .attr
                .get_mut("frame_name")
                .and_then(|a| a.value.as_mut())
            {
                let mut renamed = format!("{}/", editor.scope()).into_bytes();
                renamed.extend_from_slice(frame);
                *frame = renamed;
            }
        }
        clones.push(node);
    }
    for node in clones {
        editor.push(node)?;
    }
    let (out_node, idx) = split_tensor_name(output);
    Ok(Cloned {
        output: format!("{}:{idx}", names[out_node]),
        nodes: names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::raw_node as n;

    #[test]
    fn clones_only_what_depends_on_the_inputs() {
        let mut g = tf::GraphDef {
            node: vec![
                n("x", "Placeholder", &[]),
                n("w", "VariableV2", &[]),
                n("w/read", "Identity", &["w"]),
                n("mm", "MatMul", &["x", "w/read"]),
                n("c", "Const", &[]),
                n("add", "AddV2", &["mm:0", "c", "^w/read"]),
                n("out", "Softmax", &["add"]),
                n("other", "Identity", &["x"]),
            ],
            ..Default::default()
        };
        let mut e = GraphEditor::new(&mut g, "cls");
        let replace = BTreeMap::from([("x:0".to_string(), "cls/parsed:0".to_string())]);
        let c = clone_between(&mut e, &replace, "out:0").unwrap();
        assert_eq!(c.output, "cls/out:0");
        let names: Vec<&str> = c.nodes.keys().map(String::as_str).collect();
        assert_eq!(names, ["add", "mm", "out"]);
        let by_name = |name: &str| g.node.iter().find(|n| n.name == name).unwrap().clone();
        assert_eq!(by_name("cls/mm").input, ["cls/parsed:0", "w/read"]);
        assert_eq!(by_name("cls/add").input, ["cls/mm:0", "c", "^w/read"]);
        assert_eq!(by_name("cls/out").input, ["cls/add"]);
        // The originals are untouched.
        assert_eq!(by_name("mm").input, ["x", "w/read"]);
        assert_eq!(g.node.len(), 11);
    }

    #[test]
    fn an_output_that_ignores_the_inputs_is_refused() {
        let mut g = tf::GraphDef {
            node: vec![n("x", "Placeholder", &[]), n("c", "Const", &[])],
            ..Default::default()
        };
        let mut e = GraphEditor::new(&mut g, "cls");
        let replace = BTreeMap::from([("x:0".to_string(), "p:0".to_string())]);
        let err = clone_between(&mut e, &replace, "c:0").unwrap_err();
        assert!(matches!(err, GraphError::NotDependent(_)), "{err}");
        let err = clone_between(&mut e, &replace, "nope:0").unwrap_err();
        assert!(matches!(err, GraphError::MissingNode(..)), "{err}");
    }

    #[test]
    fn cycles_and_long_chains_are_walked_once() {
        // A while-loop-like cycle (merge <-> next) and a chain of nodes listed output first,
        // the order that made a fixed-point pass quadratic.
        let n_chain = 20_000;
        let mut nodes = vec![n("out", "Identity", &["c0"])];
        for i in 0..n_chain {
            let next = if i + 1 < n_chain {
                format!("c{}", i + 1)
            } else {
                "merge".to_owned()
            };
            nodes.push(n(&format!("c{i}"), "Identity", &[&next]));
        }
        nodes.push(n("merge", "Merge", &["x", "next"]));
        nodes.push(n("next", "NextIteration", &["merge"]));
        nodes.push(n("x", "Placeholder", &[]));
        let mut g = tf::GraphDef {
            node: nodes,
            ..Default::default()
        };
        let inputs = BTreeSet::from(["x:0".to_string()]);
        let dependent = dependent_nodes(&g, &inputs, "out:0").unwrap();
        assert_eq!(dependent.len(), n_chain + 3);
        let mut e = GraphEditor::new(&mut g, "cls");
        let replace = BTreeMap::from([("x:0".to_string(), "p:0".to_string())]);
        let c = clone_between(&mut e, &replace, "out:0").unwrap();
        assert_eq!(c.output, "cls/out:0");
        let by_name = |name: &str| g.node.iter().find(|n| n.name == name).unwrap().clone();
        assert_eq!(by_name("cls/merge").input, ["p:0", "cls/next"]);
        assert_eq!(by_name("cls/next").input, ["cls/merge"]);
    }
}
