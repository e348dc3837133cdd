//! Editing a `GraphDef` and its function library: node builders checked against TensorFlow's
//! OpDefs (`op_registry`, TensorFlow 2.21's op registry, which validate reads too), attr helpers
//! (`attr`), unique naming, cloning the part of a graph between some tensors and an output
//! (`clone`), finding the Softmax behind an output (`softmax`), the classify head `add-classify`
//! builds (`classify`, with its image decoding in `image`) and its entry in a TF2 object graph
//! (`object_graph`).

pub mod attr;
pub mod classify;
pub mod clone;
pub mod image;
mod index;
pub mod object_graph;
pub mod op_registry;
pub mod softmax;

pub use index::GraphIndex;

use std::collections::BTreeSet;

use crate::proto::tensorflow as tf;

/// A graph edit that cannot be made. These describe the graph, not the user's input.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("node '{node}' ({op}): {detail}")]
    BadNode {
        node: String,
        op: String,
        detail: String,
    },
    #[error("the graph has no node '{0}' (named by tensor '{1}')")]
    MissingNode(String, String),
    #[error("tensor '{0}' does not depend on the signature's inputs, so it cannot be recomputed from new inputs")]
    NotDependent(String),
}

/// Normalises a tensor reference: `x` and `x:0` are the same tensor.
pub fn canonical_tensor(name: &str) -> String {
    let (node, idx) = crate::proto_ext::split_tensor_name(name);
    format!("{node}:{idx}")
}

/// A node under construction; [`NodeBuilder::build`] completes and checks it against its OpDef.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    node: tf::NodeDef,
}

/// Starts a node named `name` running `op`.
pub fn node(name: impl Into<String>, op: &str) -> NodeBuilder {
    NodeBuilder {
        node: tf::NodeDef {
            name: name.into(),
            op: op.to_owned(),
            ..Default::default()
        },
    }
}

/// A `Const` node holding `value`.
pub fn constant(name: impl Into<String>, value: tf::TensorProto) -> NodeBuilder {
    let dtype = tf::DataType::try_from(value.dtype).unwrap_or(tf::DataType::DtInvalid);
    node(name, "Const")
        .attr("dtype", attr::dtype(dtype))
        .attr("value", attr::tensor(value))
}

/// A `Cast` node of `input` from `from` to `to`.
pub fn cast(
    name: impl Into<String>,
    input: impl Into<String>,
    from: tf::DataType,
    to: tf::DataType,
) -> NodeBuilder {
    node(name, "Cast")
        .input(input)
        .attr("SrcT", attr::dtype(from))
        .attr("DstT", attr::dtype(to))
}

impl NodeBuilder {
    pub fn input(mut self, tensor: impl Into<String>) -> Self {
        self.node.input.push(tensor.into());
        self
    }

    pub fn attr(mut self, name: &str, value: tf::AttrValue) -> Self {
        self.node.attr.insert(name.to_owned(), value);
        self
    }

    /// The finished node, with default attrs filled in, checked against its OpDef.
    pub fn build(mut self) -> Result<tf::NodeDef, GraphError> {
        op_registry::complete(&mut self.node)?;
        Ok(self.node)
    }
}

/// Adds nodes to a graph's top level under a scope no existing node uses, and functions to its
/// library under names no existing function uses; remembers which ops it added.
pub struct GraphEditor<'a> {
    graph: &'a mut tf::GraphDef,
    names: BTreeSet<String>,
    scope: String,
    ops: BTreeSet<String>,
    added: Vec<String>,
}

impl<'a> GraphEditor<'a> {
    /// An editor whose new nodes are named `scope/...`, where `scope` is `base` or, when a node
    /// already lives under that name, `base_1`, `base_2`, ...
    pub fn new(graph: &'a mut tf::GraphDef, base: &str) -> Self {
        let names: BTreeSet<String> = graph.node.iter().map(|n| n.name.clone()).collect();
        let base = sanitize(base);
        let used = |s: &str| {
            names
                .iter()
                .any(|n| n == s || n.strip_prefix(s).is_some_and(|r| r.starts_with('/')))
        };
        let mut scope = base.clone();
        let mut i = 1;
        while used(&scope) {
            scope = format!("{base}_{i}");
            i += 1;
        }
        Self {
            graph,
            names,
            scope,
            ops: BTreeSet::new(),
            added: Vec::new(),
        }
    }

    pub fn graph(&self) -> &tf::GraphDef {
        self.graph
    }

    /// The scope of the new nodes.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// A free node name `scope/local` (suffixed `_1`, `_2`, ... when taken).
    pub fn name(&mut self, local: &str) -> String {
        let base = format!("{}/{}", self.scope, local);
        let mut name = base.clone();
        let mut i = 1;
        while self.names.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// Adds a node built by `b` (whose name came from [`GraphEditor::name`]); returns its name.
    pub fn add(&mut self, b: NodeBuilder) -> Result<String, GraphError> {
        let node = b.build()?;
        self.push(node)
    }

    /// Adds a `Const` node `scope/local` holding `value`; returns its name.
    pub fn constant(&mut self, local: &str, value: tf::TensorProto) -> Result<String, GraphError> {
        let name = self.name(local);
        self.add(constant(name, value))
    }

    /// Adds a `Cast` node `scope/local` of `input` from `from` to `to`; returns its name.
    pub fn cast(
        &mut self,
        local: &str,
        input: &str,
        from: tf::DataType,
        to: tf::DataType,
    ) -> Result<String, GraphError> {
        let name = self.name(local);
        self.add(cast(name, input, from, to))
    }

    /// Adds an already complete node (e.g. a clone); its op must be known to TensorFlow already.
    pub fn push(&mut self, node: tf::NodeDef) -> Result<String, GraphError> {
        self.names.insert(node.name.clone());
        if op_registry::op_def(&node.op).is_some() {
            self.ops.insert(node.op.clone());
        }
        let name = node.name.clone();
        self.added.push(name.clone());
        self.graph.node.push(node);
        Ok(name)
    }

    /// A function name not yet in the library: `base`, else `base_1`, ...
    pub fn function_name(&self, base: &str) -> String {
        let taken: BTreeSet<&str> = self
            .graph
            .library
            .iter()
            .flat_map(|l| l.function.iter())
            .filter_map(|f| f.signature.as_ref().map(|s| s.name.as_str()))
            .collect();
        let base = sanitize(base);
        let mut name = base.clone();
        let mut i = 1;
        while taken.contains(name.as_str()) {
            name = format!("{base}_{i}");
            i += 1;
        }
        name
    }

    /// Adds `f` to the library; its body ops count as added ops.
    pub fn add_function(&mut self, f: tf::FunctionDef) {
        for n in &f.node_def {
            self.ops.insert(n.op.clone());
        }
        self.graph
            .library
            .get_or_insert_with(Default::default)
            .function
            .push(f);
    }

    /// The names of the nodes added so far, in order.
    pub fn added_nodes(&self) -> &[String] {
        &self.added
    }

    /// The ops of every node and function added so far.
    pub fn added_ops(&self) -> impl Iterator<Item = &str> {
        self.ops.iter().map(String::as_str)
    }
}

/// A node as a graph file holds it: no attrs filled in, nothing checked.
#[cfg(test)]
pub(crate) fn raw_node(name: &str, op: &str, inputs: &[&str]) -> tf::NodeDef {
    tf::NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Node and function names may hold `[A-Za-z0-9_.\-/]`; anything else becomes `_`.
fn sanitize(base: &str) -> String {
    let s: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.chars().next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '.' => s,
        _ => format!("n{s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(names: &[&str]) -> tf::GraphDef {
        tf::GraphDef {
            node: names
                .iter()
                .map(|n| tf::NodeDef {
                    name: n.to_string(),
                    op: "NoOp".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn scopes_avoid_existing_names() {
        let mut g = graph(&["classify", "classify_1/x", "classifyx"]);
        let mut e = GraphEditor::new(&mut g, "classify");
        assert_eq!(e.scope(), "classify_2");
        assert_eq!(e.name("a"), "classify_2/a");
        assert_eq!(e.name("a"), "classify_2/a_1");
        let mut g = graph(&["x"]);
        assert_eq!(GraphEditor::new(&mut g, "my key!").scope(), "my_key_");
        assert_eq!(GraphEditor::new(&mut g, "_x").scope(), "n_x");
    }

    #[test]
    fn tensor_names_are_canonical() {
        assert_eq!(canonical_tensor("x"), "x:0");
        assert_eq!(canonical_tensor("x:2"), "x:2");
    }
}
