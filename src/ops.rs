//! The ops a graph uses: nodes of the top-level graph and of every function in its library.

use std::collections::BTreeMap;

use crate::proto::tensorflow as tf;

/// A node and where it sits: the top-level graph (`function == None`) or a library function.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'a> {
    pub function: Option<&'a str>,
    pub node: &'a tf::NodeDef,
}

/// Every node of the graph, then every node of each library function.
pub fn all_nodes(graph: &tf::GraphDef) -> impl Iterator<Item = NodeRef<'_>> {
    let top = graph.node.iter().map(|node| NodeRef {
        function: None,
        node,
    });
    let lib = graph.library.iter().flat_map(|lib| {
        lib.function.iter().flat_map(|f| {
            let name = f.signature.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            f.node_def.iter().map(move |node| NodeRef {
                function: Some(name),
                node,
            })
        })
    });
    top.chain(lib)
}

/// How often an op appears.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OpCount {
    pub op: String,
    /// Nodes in the top-level graph.
    pub graph: usize,
    /// Nodes inside library functions.
    pub functions: usize,
}

/// Op usage, sorted by op name.
pub fn op_counts(graph: &tf::GraphDef) -> Vec<OpCount> {
    let mut counts: BTreeMap<&str, OpCount> = BTreeMap::new();
    for r in all_nodes(graph) {
        let c = counts.entry(&r.node.op).or_insert_with(|| OpCount {
            op: r.node.op.clone(),
            ..OpCount::default()
        });
        if r.function.is_some() {
            c.functions += 1;
        } else {
            c.graph += 1;
        }
    }
    counts.into_values().collect()
}

/// Number of library functions.
pub fn function_count(graph: &tf::GraphDef) -> usize {
    graph.library.as_ref().map_or(0, |l| l.function.len())
}
