//! Security: ops that read or write files, open network connections, change the file-system
//! configuration, print, or run code outside the model, anywhere in the graph or its function
//! library (the list is derived from TensorFlow's op registry: `data/unsafe_ops.txt`). Two uses are TensorFlow's own and not reported: the standard
//! saver (checkpoint ops reachable only from `saver_def`'s save and restore ops) and lookup tables
//! the init op fills from a declared asset file.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::OnceLock;

use crate::proto::tensorflow::{self as tf, attr_value::Value};
use crate::proto_ext::split_tensor_name;

use super::{Context, Finding, Rule};

/// What an unsafe op does, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hazard {
    ReadsFiles,
    WritesFiles,
    Network,
    ConfiguresFileSystem,
    Prints,
    RunsCode,
}

impl Hazard {
    /// The names `data/unsafe_ops.txt` uses.
    fn parse(name: &str) -> Option<Hazard> {
        Some(match name {
            "reads-files" => Hazard::ReadsFiles,
            "writes-files" => Hazard::WritesFiles,
            "network" => Hazard::Network,
            "fs-config" => Hazard::ConfiguresFileSystem,
            "prints" => Hazard::Prints,
            "runs-code" => Hazard::RunsCode,
            _ => return None,
        })
    }

    fn text(self) -> &'static str {
        match self {
            Hazard::ReadsFiles => "reads files on the serving host",
            Hazard::WritesFiles => "writes files on the serving host",
            Hazard::Network => "opens network connections from the serving host",
            Hazard::ConfiguresFileSystem => {
                "changes the file-system configuration of the serving process"
            }
            Hazard::Prints => "prints to the server's log",
            Hazard::RunsCode => "runs code outside the model (Python)",
        }
    }
}

/// The unsafe ops of TensorFlow 2.21, classified from its op registry by
/// `python/classify_unsafe_ops.py` (the rules are described there and in docs/rules.md).
const UNSAFE_OPS_FILE: &str = include_str!("../../data/unsafe_ops.txt");

/// Every op this rule reports, with what it does.
pub fn unsafe_ops() -> &'static HashMap<&'static str, Vec<Hazard>> {
    static OPS: OnceLock<HashMap<&'static str, Vec<Hazard>>> = OnceLock::new();
    OPS.get_or_init(|| {
        // The file is part of the binary and checked by a test against its generator; failing
        // here is a build defect, not a user error.
        parse_unsafe_ops(UNSAFE_OPS_FILE)
            .unwrap_or_else(|e| panic!("embedded data/unsafe_ops.txt is invalid: {e}"))
    })
}

fn parse_unsafe_ops(text: &'static str) -> Result<HashMap<&'static str, Vec<Hazard>>, String> {
    let mut ops = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(op), Some(hazards), Some(_why), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(format!("line {}: expected 3 tab-separated fields", n + 1));
        };
        let hazards = hazards
            .split(',')
            .map(|h| Hazard::parse(h).ok_or_else(|| format!("line {}: hazard '{h}'", n + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        ops.insert(op, hazards);
    }
    Ok(ops)
}

/// The ops of TensorFlow's standard saver.
const CHECKPOINT_OPS: [&str; 7] = [
    "Save",
    "SaveV2",
    "SaveSlices",
    "MergeV2Checkpoints",
    "Restore",
    "RestoreV2",
    "RestoreSlice",
];

/// Lookup-table initialisers that read a vocabulary file.
const TABLE_FROM_FILE_OPS: [&str; 2] = [
    "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2",
];

fn hazard(op: &str) -> Option<&'static [Hazard]> {
    unsafe_ops().get(op).map(Vec::as_slice)
}

/// The node a top-level input refers to (`^a`, `a:1` and `a` all name `a`).
fn input_node(input: &str) -> &str {
    split_tensor_name(input).0
}

/// Library functions a node calls: by op name, or through a func attr (`f` of
/// (Stateful)PartitionedCall, branches of If/Case/While, ...).
fn callees<'a>(
    node: &'a tf::NodeDef,
    functions: &HashMap<&'a str, &'a tf::FunctionDef>,
) -> Vec<&'a str> {
    let mut out = Vec::new();
    if let Some((name, _)) = functions.get_key_value(node.op.as_str()) {
        out.push(*name);
    }
    for attr in node.attr.values() {
        match &attr.value {
            Some(Value::Func(f)) => out.push(f.name.as_str()),
            Some(Value::List(l)) => out.extend(l.func.iter().map(|f| f.name.as_str())),
            _ => {}
        }
    }
    out
}

/// Top-level nodes `roots` depend on (data and control inputs), including themselves.
fn closure<'a>(ctx: &Context<'a>, roots: impl IntoIterator<Item = &'a str>) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    let mut queue: VecDeque<&str> = roots.into_iter().collect();
    while let Some(name) = queue.pop_front() {
        let Some((&name, node)) = ctx.graph.nodes.get_key_value(name) else {
            continue;
        };
        if seen.insert(name) {
            queue.extend(node.input.iter().map(|i| input_node(i)));
        }
    }
    seen
}

/// Library functions called, directly or not, by the top-level nodes `from`.
fn functions_reached<'a>(
    ctx: &Context<'a>,
    from: impl IntoIterator<Item = &'a tf::NodeDef>,
) -> HashSet<&'a str> {
    let functions = &ctx.graph.functions;
    let mut seen = HashSet::new();
    let mut queue: VecDeque<&str> = from
        .into_iter()
        .flat_map(|n| callees(n, functions))
        .collect();
    while let Some(name) = queue.pop_front() {
        let Some((&name, f)) = functions.get_key_value(name) else {
            continue;
        };
        if seen.insert(name) {
            queue.extend(f.node_def.iter().flat_map(|n| callees(n, functions)));
        }
    }
    seen
}

fn tensor_nodes(info: &tf::TensorInfo) -> Vec<&str> {
    use tf::tensor_info::Encoding;
    match &info.encoding {
        Some(Encoding::Name(n)) => vec![input_node(n)],
        Some(Encoding::CooSparse(c)) => vec![
            input_node(&c.values_tensor_name),
            input_node(&c.indices_tensor_name),
            input_node(&c.dense_shape_tensor_name),
        ],
        Some(Encoding::CompositeTensor(c)) => c.components.iter().flat_map(tensor_nodes).collect(),
        None => Vec::new(),
    }
}

fn signature_roots(sig: &tf::SignatureDef) -> impl Iterator<Item = &str> {
    sig.inputs
        .values()
        .chain(sig.outputs.values())
        .flat_map(tensor_nodes)
}

/// Where nodes run: which top-level nodes and functions belong to the saver only, and which to
/// the init op.
struct Contexts<'a> {
    saver_only_nodes: HashSet<&'a str>,
    saver_only_functions: HashSet<&'a str>,
    init_nodes: HashSet<&'a str>,
    init_functions: HashSet<&'a str>,
}

fn contexts<'a>(ctx: &Context<'a>) -> Contexts<'a> {
    let mg = ctx.meta_graph;
    let saver_roots: Vec<&str> = mg
        .saver_def
        .iter()
        .flat_map(|s| {
            [
                s.save_tensor_name.as_str(),
                s.restore_op_name.as_str(),
                s.filename_tensor_name.as_str(),
            ]
        })
        .filter(|n| !n.is_empty())
        .map(input_node)
        .collect();
    let init_names: Vec<&str> = crate::savedmodel::init_op(mg)
        .map(|i| i.names)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| {
            // Borrow the name from the graph so it lives as long as the context.
            let (node, _) = split_tensor_name(n);
            ctx.graph.nodes.get_key_value(node).map(|(k, _)| *k)
        })
        .collect();
    let other_roots = mg
        .signature_def
        .values()
        .flat_map(signature_roots)
        .chain(init_names.iter().copied());
    let saver = closure(ctx, saver_roots);
    let others = closure(ctx, other_roots);
    let saver_only_nodes: HashSet<&str> = saver.difference(&others).copied().collect();
    let top = ctx.graph.graph.node.iter();
    let from_saver = functions_reached(
        ctx,
        top.clone()
            .filter(|n| saver_only_nodes.contains(n.name.as_str())),
    );
    let from_others = functions_reached(
        ctx,
        top.filter(|n| !saver_only_nodes.contains(n.name.as_str())),
    );
    let init_nodes = closure(ctx, init_names.iter().copied());
    let init_functions = functions_reached(
        ctx,
        ctx.graph
            .graph
            .node
            .iter()
            .filter(|n| init_nodes.contains(n.name.as_str())),
    );
    Contexts {
        saver_only_nodes,
        saver_only_functions: from_saver.difference(&from_others).copied().collect(),
        init_nodes,
        init_functions,
    }
}

/// Follows a table initialiser's filename input back to where it comes from.
struct AssetTrace<'c, 'a> {
    ctx: &'c Context<'a>,
    /// Declared asset tensors, `node:index`.
    assets: HashSet<String>,
    /// Callers of each library function: the function they sit in and the call node.
    callers: HashMap<&'a str, Vec<(Option<&'a str>, &'a tf::NodeDef)>>,
    /// Top-level `AssignVariableOp`s by the variable handle they assign.
    assigns: HashMap<&'a str, Vec<&'a tf::NodeDef>>,
    /// Answers so far, by (function, input). A query in progress counts as "no", so a cycle of
    /// calls or nodes ends, and each input is traced once however many paths lead to it.
    memo: RefCell<HashMap<(Option<&'a str>, &'a str), bool>>,
}

const CALL_OPS: [&str; 2] = ["PartitionedCall", "StatefulPartitionedCall"];
const PASS_THROUGH_OPS: [&str; 3] = ["Identity", "Snapshot", "StopGradient"];

impl<'c, 'a> AssetTrace<'c, 'a> {
    fn new(ctx: &'c Context<'a>) -> Self {
        let assets = crate::savedmodel::declared_assets(ctx.meta_graph)
            .into_keys()
            .map(|t| {
                let (node, i) = split_tensor_name(&t);
                format!("{node}:{i}")
            })
            .collect();
        let mut callers: HashMap<&str, Vec<_>> = HashMap::new();
        for r in crate::ops::all_nodes(ctx.graph.graph) {
            for f in callees(r.node, &ctx.graph.functions) {
                callers.entry(f).or_default().push((r.function, r.node));
            }
        }
        let mut assigns: HashMap<&str, Vec<_>> = HashMap::new();
        for n in &ctx.graph.graph.node {
            if let (true, Some(handle)) = (n.op == "AssignVariableOp", n.input.first()) {
                assigns.entry(input_node(handle)).or_default().push(n);
            }
        }
        AssetTrace {
            ctx,
            assets,
            callers,
            assigns,
            memo: RefCell::default(),
        }
    }

    /// True when `input` (as written in `function`'s body, or the top-level graph) carries the
    /// path of a declared asset.
    fn is_asset(&self, function: Option<&'a str>, input: &'a str, depth: usize) -> bool {
        if depth > 64 || input.starts_with('^') {
            return false;
        }
        if let Some(&known) = self.memo.borrow().get(&(function, input)) {
            return known;
        }
        self.memo.borrow_mut().insert((function, input), false);
        let found = self.trace(function, input, depth);
        self.memo.borrow_mut().insert((function, input), found);
        found
    }

    fn trace(&self, function: Option<&'a str>, input: &'a str, depth: usize) -> bool {
        let Some(fname) = function else {
            return self.top_is_asset(input, depth);
        };
        let Some(f) = self.ctx.graph.functions.get(fname) else {
            return false;
        };
        let mut parts = input.split(':');
        let head = parts.next().unwrap_or_default();
        if parts.next().is_none() {
            // A bare name in a function body is one of its arguments.
            let Some(arg) = f
                .signature
                .as_ref()
                .and_then(|s| s.input_arg.iter().position(|a| a.name == head))
            else {
                return false;
            };
            let callers = self.callers.get(fname).map(Vec::as_slice).unwrap_or(&[]);
            return !callers.is_empty()
                && callers.iter().all(|(caller_fn, call)| {
                    let direct = call.op == fname || CALL_OPS.contains(&call.op.as_str());
                    let args: Vec<&String> =
                        call.input.iter().filter(|i| !i.starts_with('^')).collect();
                    direct
                        && args
                            .get(arg)
                            .is_some_and(|a| self.is_asset(*caller_fn, a, depth + 1))
                });
        }
        let Some(node) = f.node_def.iter().find(|n| n.name == head) else {
            return false;
        };
        PASS_THROUGH_OPS.contains(&node.op.as_str())
            && node
                .input
                .first()
                .is_some_and(|i| self.is_asset(function, i, depth + 1))
    }

    fn top_is_asset(&self, input: &'a str, depth: usize) -> bool {
        let (name, index) = split_tensor_name(input);
        if self.assets.contains(&format!("{name}:{index}")) {
            return true;
        }
        let Some(node) = self.ctx.graph.nodes.get(name) else {
            return false;
        };
        let first = node.input.first();
        match node.op.as_str() {
            op if PASS_THROUGH_OPS.contains(&op) => {
                first.is_some_and(|i| self.is_asset(None, i, depth + 1))
            }
            // A TF2 export keeps the asset path in a variable assigned from the asset tensor.
            "ReadVariableOp" => {
                let Some(handle) = first.map(|i| input_node(i)) else {
                    return false;
                };
                let assigns = self.assigns.get(handle).map(Vec::as_slice).unwrap_or(&[]);
                !assigns.is_empty()
                    && assigns.iter().all(|a| {
                        a.input
                            .get(1)
                            .is_some_and(|v| self.is_asset(None, v, depth + 1))
                    })
            }
            _ => false,
        }
    }
}

fn where_text(function: Option<&str>) -> String {
    match function {
        Some(f) => format!("in function '{f}'"),
        None => "in the top-level graph".to_owned(),
    }
}

/// SM501.
pub fn check(ctx: &Context<'_>) -> Vec<Finding> {
    let candidates: Vec<_> = crate::ops::all_nodes(ctx.graph.graph)
        .filter_map(|r| Some((r, hazard(&r.node.op)?)))
        .filter(|(r, _)| !ctx.opts.allow_ops.contains(&r.node.op))
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let contexts = contexts(ctx);
    let mut trace = None;
    let mut signatures_reaching = None;
    let mut out = Vec::new();
    for (r, hazard) in candidates {
        let op = r.node.op.as_str();
        let (in_saver, in_init) = match r.function {
            None => (
                contexts.saver_only_nodes.contains(r.node.name.as_str()),
                contexts.init_nodes.contains(r.node.name.as_str()),
            ),
            Some(f) => (
                contexts.saver_only_functions.contains(f),
                contexts.init_functions.contains(f),
            ),
        };
        if in_saver && CHECKPOINT_OPS.contains(&op) {
            continue;
        }
        if in_init && TABLE_FROM_FILE_OPS.contains(&op) {
            let trace = trace.get_or_insert_with(|| AssetTrace::new(ctx));
            // The filename is input 1 of both initialisers.
            if r.node
                .input
                .get(1)
                .is_some_and(|i| trace.is_asset(r.function, i, 0))
            {
                continue;
            }
        }
        let reaching = signatures_reaching.get_or_insert_with(|| reaching_signatures(ctx));
        let key = match r.function {
            Some(f) => Reached::Function(f),
            None => Reached::Node(r.node.name.as_str()),
        };
        let reached = reaching
            .get(&key)
            .and_then(Reaching::text)
            .unwrap_or_else(|| {
                "not reachable from any signature, but loaded with the model".to_owned()
            });
        let context = if in_saver {
            "; it sits in the saver but is not a checkpoint op"
        } else if in_init && TABLE_FROM_FILE_OPS.contains(&op) {
            "; it runs in the init op but its file is not a declared asset"
        } else {
            ""
        };
        out.push(
            Finding::new(
                Rule::UnsafeOp,
                format!(
                    "node '{}' (op {op}) {} {}; {reached}{context}: a served model should not do \
                     this; remove the op, or pass --allow-op {op} if it is intended",
                    r.node.name,
                    where_text(r.function),
                    hazard
                        .iter()
                        .map(|h| h.text())
                        .collect::<Vec<_>>()
                        .join(" and "),
                ),
            )
            .node(&r.node.name, r.function),
        );
    }
    out
}

/// A top-level node or a library function (their names may coincide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Reached<'a> {
    Node(&'a str),
    Function(&'a str),
}

/// How many signatures a finding names before it says "and others".
const NAMED_SIGNATURES: usize = 4;

/// The signatures that reach a node or function: the first few by key, and whether there are
/// more.
#[derive(Debug, Default)]
struct Reaching<'a> {
    keys: Vec<&'a str>,
    more: bool,
}

impl<'a> Reaching<'a> {
    /// Adds `key`; false when nothing changed.
    fn add(&mut self, key: &'a str) -> bool {
        if self.more || self.keys.contains(&key) {
            return false;
        }
        if self.keys.len() < NAMED_SIGNATURES {
            self.keys.push(key);
        } else {
            self.more = true;
        }
        true
    }

    fn text(&self) -> Option<String> {
        if self.keys.is_empty() {
            return None;
        }
        let names: Vec<String> = self.keys.iter().map(|s| format!("'{s}'")).collect();
        let more = if self.more { " and others" } else { "" };
        Some(format!(
            "reachable from signature(s) {}{more}",
            names.join(", ")
        ))
    }
}

/// For each top-level node and each function: the signatures that reach it (the first few).
/// Signatures are walked in key order; a walk stops where the node already has its key or is
/// full, since everything it depends on then has the key too or is full. So every node and
/// function is entered at most `NAMED_SIGNATURES + 1` times however many signatures share it,
/// and the work stays linear in the graph and the signatures.
fn reaching_signatures<'a>(ctx: &Context<'a>) -> HashMap<Reached<'a>, Reaching<'a>> {
    let mut map: HashMap<Reached<'a>, Reaching<'a>> = HashMap::new();
    let functions = &ctx.graph.functions;
    let mut queue: Vec<Reached<'a>> = Vec::new();
    for (key, sig) in &ctx.meta_graph.signature_def {
        if crate::signature::RESERVED_KEYS.contains(&key.as_str()) {
            continue;
        }
        queue.extend(signature_roots(sig).filter_map(|n| {
            let (&name, _) = ctx.graph.nodes.get_key_value(n)?;
            Some(Reached::Node(name))
        }));
        while let Some(item) = queue.pop() {
            if !map.entry(item).or_default().add(key.as_str()) {
                continue;
            }
            match item {
                Reached::Node(name) => {
                    let Some(node) = ctx.graph.nodes.get(name) else {
                        continue;
                    };
                    for input in &node.input {
                        if let Some((&n, _)) = ctx.graph.nodes.get_key_value(input_node(input)) {
                            queue.push(Reached::Node(n));
                        }
                    }
                    queue.extend(callees(node, functions).into_iter().map(Reached::Function));
                }
                Reached::Function(name) => {
                    let Some(f) = functions.get(name) else {
                        continue;
                    };
                    queue.extend(
                        f.node_def
                            .iter()
                            .flat_map(|n| callees(n, functions))
                            .map(Reached::Function),
                    );
                }
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::op_registry;

    #[test]
    fn every_listed_op_is_registered_in_tensorflow() {
        for op in unsafe_ops().keys() {
            assert!(op_registry::is_registered(op), "{op}");
        }
        for op in CHECKPOINT_OPS.iter().chain(&TABLE_FROM_FILE_OPS) {
            assert!(hazard(op).is_some(), "{op}");
        }
    }

    #[test]
    fn the_derived_list_covers_each_kind_of_hazard() {
        use Hazard::*;
        for (op, want) in [
            ("ReadFile", ReadsFiles),
            ("WholeFileReaderV2", ReadsFiles),
            ("MatchingFiles", ReadsFiles),
            ("ImmutableConst", ReadsFiles),
            ("SqlDataset", ReadsFiles),
            ("WriteFile", WritesFiles),
            ("SaveV2", WritesFiles),
            ("WriteScalarSummary", WritesFiles),
            ("DebugIdentityV2", Network),
            ("RpcClient", Network),
            ("RpcServerStart", Network),
            ("DataServiceDatasetV4", Network),
            ("RegisterDatasetV2", Network),
            ("DistributedSave", Network),
            ("DistributedSave", WritesFiles),
            ("FileSystemSetConfiguration", ConfiguresFileSystem),
            ("PrintV2", Prints),
            ("EagerPyFunc", RunsCode),
        ] {
            assert!(
                hazard(op).is_some_and(|h| h.contains(&want)),
                "{op}: {want:?}"
            );
        }
        for op in [
            "Snapshot",
            "IdentityReader",
            "RegexFullMatch",
            "ShardedFilename",
            "Identity",
        ] {
            assert!(hazard(op).is_none(), "{op}");
        }
    }

    #[test]
    fn malformed_list_lines_are_rejected() {
        assert!(parse_unsafe_ops("Op\treads-files\n").is_err());
        assert!(parse_unsafe_ops("Op\tteleports\twhy\n").is_err());
        let ops = parse_unsafe_ops("# c\nOp\tnetwork,prints\twhy\n").unwrap();
        assert_eq!(ops["Op"], [Hazard::Network, Hazard::Prints]);
    }
}
