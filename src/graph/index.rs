//! A graph's nodes and library functions by name, for the checks and comparisons that look
//! nodes up (validate, diff).

use std::collections::HashMap;

use crate::proto::tensorflow as tf;

/// A graph with its nodes and library functions indexed by name.
pub struct GraphIndex<'a> {
    pub graph: &'a tf::GraphDef,
    pub nodes: HashMap<&'a str, &'a tf::NodeDef>,
    pub functions: HashMap<&'a str, &'a tf::FunctionDef>,
}

impl<'a> GraphIndex<'a> {
    pub fn new(graph: &'a tf::GraphDef) -> Self {
        let nodes = graph.node.iter().map(|n| (n.name.as_str(), n)).collect();
        let functions = graph
            .library
            .iter()
            .flat_map(|l| &l.function)
            .filter_map(|f| Some((f.signature.as_ref()?.name.as_str(), f)))
            .collect();
        GraphIndex {
            graph,
            nodes,
            functions,
        }
    }
}
