//! `smtool diff OLD NEW`: what changed in the serving contract between two versions of a model,
//! each change graded breaking (clients that work with OLD can fail with NEW) or compatible.
//!
//! The contract is what TF Serving clients depend on: signature keys and which one is
//! `serving_default`, method names and the endpoints each signature is served under, input and
//! output keys, dtypes and shapes, defaults, classify labels held as a graph constant, the ops
//! the server must register, and (for checkpoints) the variables' shapes. Tensor names, node
//! names and function names are not part of it: a re-export that renames them reports nothing.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use prost::Message;
use serde::Serialize;

use crate::graph::op_registry;
use crate::graph::GraphIndex;
use crate::ops;
use crate::proto::tensorflow as tf;
use crate::proto_ext::{dims, dtype_name, shape_text, split_tensor_name};
use crate::savedmodel::bundle::BundleIndex;
use crate::savedmodel::{self, Location, SavedModelDir, Version};
use crate::signature::{
    self, CLASSIFY_CLASSES, CLASSIFY_METHOD, DEFAULT_SIGNATURE_KEY, REGRESS_METHOD, RESERVED_KEYS,
};

/// Exit code when NEW has a breaking change.
pub const EXIT_BREAKING: u8 = 1;

/// Validated options of `smtool diff`.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// OLD: a SavedModel, its graph file, or a model base path; alone, a model base path whose
    /// two versions are compared.
    pub old: PathBuf,
    /// NEW, when two models are given.
    pub new: Option<PathBuf>,
    /// With one model base path: the versions to compare (OLD, NEW) instead of the two latest.
    pub versions: Option<(i64, i64)>,
    /// The meta graph compared in both (TF Serving loads `serve`).
    pub tag_set: Vec<String>,
}

/// Why diff could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] savedmodel::Error),
    /// OLD or NEW in object storage could not be used.
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
    #[error(
        "'{}' is a single SavedModel, so there is nothing to compare it with; give NEW too \
         (smtool diff OLD NEW), or a model base path with numbered versions",
        .0.display()
    )]
    NothingToCompare(PathBuf),
    #[error(
        "model base path '{}' has only version {only}; diff needs two versions: add one, or give \
         OLD and NEW",
        path.display()
    )]
    OneVersion { path: PathBuf, only: i64 },
    #[error(
        "--versions picks two versions of one model base path, but OLD and NEW are both given; \
         drop --versions, or give only the base path"
    )]
    VersionsWithTwoPaths,
    #[error("cannot compare the variables: {0}")]
    Variables(#[from] savedmodel::bundle::BundleError),
}

/// Breaking: a client that works with OLD can fail with NEW. Compatible: it keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grade {
    Breaking,
    Compatible,
}

impl Grade {
    pub fn name(self) -> &'static str {
        match self {
            Grade::Breaking => "breaking",
            Grade::Compatible => "compatible",
        }
    }
}

/// What kind of change; its family groups kinds for JUnit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SignatureRemoved,
    SignatureAdded,
    SignatureRenamed,
    DefaultChanged,
    MethodChanged,
    EndpointRemoved,
    EndpointAdded,
    InputRemoved,
    InputAdded,
    InputRenamed,
    InputDtype,
    InputShape,
    InputEncoding,
    InputDefault,
    OutputRemoved,
    OutputAdded,
    OutputRenamed,
    OutputDtype,
    OutputShape,
    OutputEncoding,
    LabelsChanged,
    OpNeedsNewerTensorflow,
    VariableChanged,
}

/// Groups of kinds: one JUnit test case each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Signatures,
    Methods,
    Inputs,
    Outputs,
    Labels,
    Ops,
    Variables,
}

impl Family {
    pub const ALL: [Family; 7] = [
        Family::Signatures,
        Family::Methods,
        Family::Inputs,
        Family::Outputs,
        Family::Labels,
        Family::Ops,
        Family::Variables,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Signatures => "signatures",
            Family::Methods => "methods",
            Family::Inputs => "inputs",
            Family::Outputs => "outputs",
            Family::Labels => "labels",
            Family::Ops => "ops",
            Family::Variables => "variables",
        }
    }
}

impl Kind {
    pub fn family(self) -> Family {
        use Kind::*;
        match self {
            SignatureRemoved | SignatureAdded | SignatureRenamed | DefaultChanged => {
                Family::Signatures
            }
            MethodChanged | EndpointRemoved | EndpointAdded => Family::Methods,
            InputRemoved | InputAdded | InputRenamed | InputDtype | InputShape | InputEncoding
            | InputDefault => Family::Inputs,
            OutputRemoved | OutputAdded | OutputRenamed | OutputDtype | OutputShape
            | OutputEncoding => Family::Outputs,
            LabelsChanged => Family::Labels,
            OpNeedsNewerTensorflow => Family::Ops,
            VariableChanged => Family::Variables,
        }
    }

    /// The kind as written in JSON (`input_shape`).
    pub fn id(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// One change of the serving contract.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub grade: Grade,
    pub kind: Kind,
    /// The signature it is about (`None` for ops and variables).
    pub signature: Option<String>,
    /// The input or output key, endpoint, op or variable it is about.
    pub item: Option<String>,
    /// The value in OLD and in NEW, as text (a dtype, a shape, a key, a method), where there is one.
    pub old: Option<String>,
    pub new: Option<String>,
    /// The change and why it is graded so, in one line.
    pub message: String,
}

/// One side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// The SavedModel directory.
    pub path: String,
    pub graph_file: String,
    /// The version number when it was picked from a model base path.
    pub version: Option<i64>,
    /// `meta_info_def.tensorflow_version` of the compared meta graph.
    pub tensorflow_version: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub breaking: usize,
    pub compatible: usize,
}

/// Everything `diff` found; the JSON document is this struct.
#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub smtool_version: &'static str,
    pub old: Side,
    pub new: Side,
    pub tag_set: Vec<String>,
    pub changes: Vec<Change>,
    pub summary: Summary,
}

impl DiffReport {
    pub fn breaking(&self) -> bool {
        self.summary.breaking > 0
    }
}

/// 1 when NEW breaks OLD's clients, else 0.
pub fn exit_code(report: &DiffReport) -> u8 {
    if report.breaking() {
        EXIT_BREAKING
    } else {
        0
    }
}

/// Runs `diff`.
pub fn run(opts: &DiffOptions) -> Result<DiffReport, Error> {
    for path in std::iter::once(&opts.old).chain(&opts.new) {
        #[cfg(feature = "storage")]
        if crate::storage::remote_url(path)?.is_some() {
            return Ok(super::remote::diff(opts)?);
        }
        #[cfg(not(feature = "storage"))]
        crate::storage::remote_url(path)?;
    }
    let (old, new) = resolve(opts)?;
    let old_model = SavedModelDir::open_at(&old.dir, old.file.as_deref())?;
    let new_model = SavedModelDir::open_at(&new.dir, new.file.as_deref())?;
    let old_meta = old_model.meta_graph(Some(&opts.tag_set))?;
    let new_meta = new_model.meta_graph(Some(&opts.tag_set))?;

    let mut changes = Vec::new();
    let old_graph = Graph::new(old_meta);
    let new_graph = Graph::new(new_meta);
    signatures(&old_graph, &new_graph, &mut changes);
    ops_needing_newer_tensorflow(&old_graph, &new_graph, &mut changes);
    variables(&old_model.dir, &new_model.dir, &mut changes)?;

    // Breaking first, then in the order found.
    changes.sort_by_key(|c| c.grade);
    let summary = Summary {
        breaking: changes
            .iter()
            .filter(|c| c.grade == Grade::Breaking)
            .count(),
        compatible: changes
            .iter()
            .filter(|c| c.grade == Grade::Compatible)
            .count(),
    };
    Ok(DiffReport {
        smtool_version: env!("CARGO_PKG_VERSION"),
        old: side(&old_model, old.version, old_meta),
        new: side(&new_model, new.version, new_meta),
        tag_set: opts.tag_set.clone(),
        changes,
        summary,
    })
}

/// A model to open: its directory, the graph file when the user named it, its version number.
struct Pick {
    dir: PathBuf,
    file: Option<PathBuf>,
    version: Option<i64>,
}

fn pick_version(dir: &Path, versions: &[Version], wanted: Option<i64>) -> Result<Pick, Error> {
    let v = savedmodel::pick_version(dir, versions, wanted)?;
    Ok(Pick {
        dir: v.dir.clone(),
        file: None,
        version: Some(v.number),
    })
}

/// A path given as OLD or NEW: a SavedModel, or the latest version of a model base path (what
/// TF Serving would serve).
fn pick_latest(path: &Path) -> Result<Pick, Error> {
    Ok(match savedmodel::locate(path)? {
        Location::Model { dir, file } => Pick {
            dir,
            file,
            version: None,
        },
        Location::BasePath { dir, versions } => pick_version(&dir, &versions, None)?,
    })
}

/// The directories of the two models `run` compares.
#[cfg(feature = "storage")]
pub(crate) fn resolve_dirs(opts: &DiffOptions) -> Result<(PathBuf, PathBuf), Error> {
    let (old, new) = resolve(opts)?;
    Ok((old.dir, new.dir))
}

fn resolve(opts: &DiffOptions) -> Result<(Pick, Pick), Error> {
    if let Some(new) = &opts.new {
        if opts.versions.is_some() {
            return Err(Error::VersionsWithTwoPaths);
        }
        return Ok((pick_latest(&opts.old)?, pick_latest(new)?));
    }
    let (dir, versions) = match savedmodel::locate(&opts.old)? {
        Location::Model { .. } => {
            return Err(match opts.versions {
                Some(_) => savedmodel::Error::NotVersioned(opts.old.clone()).into(),
                None => Error::NothingToCompare(opts.old.clone()),
            })
        }
        Location::BasePath { dir, versions } => (dir, versions),
    };
    let (a, b) = match opts.versions {
        Some(pair) => pair,
        None => match versions.as_slice() {
            [.., a, b] => (a.number, b.number),
            [only] => {
                return Err(Error::OneVersion {
                    path: dir,
                    only: only.number,
                })
            }
            // `locate` never returns a base path without versions.
            [] => return Err(savedmodel::Error::NoGraph(dir).into()),
        },
    };
    Ok((
        pick_version(&dir, &versions, Some(a))?,
        pick_version(&dir, &versions, Some(b))?,
    ))
}

fn side(model: &SavedModelDir, version: Option<i64>, meta: &tf::MetaGraphDef) -> Side {
    Side {
        path: model.dir.display().to_string(),
        graph_file: model.graph_file.display().to_string(),
        version,
        tensorflow_version: meta
            .meta_info_def
            .as_ref()
            .map(|m| m.tensorflow_version.clone())
            .unwrap_or_default(),
    }
}

/// A meta graph with its node and function index, for tracing labels and listing ops.
struct Graph<'a> {
    meta: &'a tf::MetaGraphDef,
    index: GraphIndex<'a>,
    /// Node indexes of library functions, built when label tracing first enters one, so that
    /// many signatures calling one large function index it once.
    function_nodes: RefCell<HashMap<&'a str, Rc<NodeIndex<'a>>>>,
}

type NodeIndex<'a> = HashMap<&'a str, &'a tf::NodeDef>;

static EMPTY_GRAPH: std::sync::OnceLock<tf::GraphDef> = std::sync::OnceLock::new();

impl<'a> Graph<'a> {
    fn new(meta: &'a tf::MetaGraphDef) -> Self {
        let graph = meta
            .graph_def
            .as_ref()
            .unwrap_or_else(|| EMPTY_GRAPH.get_or_init(tf::GraphDef::default));
        Graph {
            meta,
            index: GraphIndex::new(graph),
            function_nodes: RefCell::new(HashMap::new()),
        }
    }

    /// The function called `name` and its nodes by name.
    fn function(&self, name: &str) -> Option<(&'a tf::FunctionDef, Rc<NodeIndex<'a>>)> {
        let (&key, &f) = self.index.functions.get_key_value(name)?;
        let mut cache = self.function_nodes.borrow_mut();
        let nodes = cache
            .entry(key)
            .or_insert_with(|| Rc::new(f.node_def.iter().map(|n| (n.name.as_str(), n)).collect()));
        Some((f, Rc::clone(nodes)))
    }

    /// The servable signatures (reserved keys left out).
    fn signatures(&self) -> BTreeMap<&'a str, &'a tf::SignatureDef> {
        self.meta
            .signature_def
            .iter()
            .filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str()))
            .map(|(k, s)| (k.as_str(), s))
            .collect()
    }

    fn tensorflow_version(&self) -> &'a str {
        self.meta
            .meta_info_def
            .as_ref()
            .map_or("", |m| m.tensorflow_version.as_str())
    }
}

/// What a client sees of a tensor: not its graph name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TensorContract {
    encoding: &'static str,
    dtype: i32,
    shape: Option<Vec<i64>>,
    components: Vec<(i32, Option<Vec<i64>>)>,
}

fn tensor_contract(info: &tf::TensorInfo) -> TensorContract {
    use tf::tensor_info::Encoding;
    let (encoding, components) = match &info.encoding {
        Some(Encoding::Name(_)) => ("dense", Vec::new()),
        Some(Encoding::CooSparse(_)) => ("coo_sparse", Vec::new()),
        Some(Encoding::CompositeTensor(c)) => (
            "composite_tensor",
            c.components
                .iter()
                .map(|t| (t.dtype, dims(t.tensor_shape.as_ref())))
                .collect(),
        ),
        None => ("none", Vec::new()),
    };
    TensorContract {
        encoding,
        dtype: info.dtype,
        shape: dims(info.tensor_shape.as_ref()),
        components,
    }
}

/// What a client sees of a signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SignatureContract {
    method: String,
    inputs: Vec<(String, TensorContract)>,
    outputs: Vec<(String, TensorContract)>,
    defaults: Vec<(String, Vec<u8>)>,
}

fn contract(sig: &tf::SignatureDef) -> SignatureContract {
    let tensors = |m: &BTreeMap<String, tf::TensorInfo>| {
        m.iter()
            .map(|(k, t)| (k.clone(), tensor_contract(t)))
            .collect()
    };
    SignatureContract {
        method: sig.method_name.clone(),
        inputs: tensors(&sig.inputs),
        outputs: tensors(&sig.outputs),
        defaults: sig
            .defaults
            .iter()
            .map(|(k, t)| (k.clone(), t.encode_to_vec()))
            .collect(),
    }
}

fn change(grade: Grade, kind: Kind, signature: Option<&str>, message: String) -> Change {
    Change {
        grade,
        kind,
        signature: signature.map(str::to_owned),
        item: None,
        old: None,
        new: None,
        message,
    }
}

impl Change {
    fn item(mut self, item: &str) -> Self {
        self.item = Some(item.to_owned());
        self
    }

    fn values(mut self, old: impl Into<String>, new: impl Into<String>) -> Self {
        self.old = Some(old.into());
        self.new = Some(new.into());
        self
    }
}

/// Keys of `sigs` by contract, so that renames are found in one pass, not by comparing every
/// removed signature with every added one.
fn by_contract<'a>(
    keys: impl Iterator<Item = &'a str>,
    sigs: &BTreeMap<&'a str, &'a tf::SignatureDef>,
) -> HashMap<SignatureContract, Vec<&'a str>> {
    let mut map: HashMap<SignatureContract, Vec<&'a str>> = HashMap::new();
    for k in keys {
        if let Some(s) = sigs.get(k) {
            map.entry(contract(s)).or_default().push(k);
        }
    }
    map
}

fn signatures(old: &Graph<'_>, new: &Graph<'_>, out: &mut Vec<Change>) {
    let old_sigs = old.signatures();
    let new_sigs = new.signatures();
    let removed: Vec<&str> = old_sigs
        .keys()
        .copied()
        .filter(|k| !new_sigs.contains_key(k))
        .collect();
    let added: BTreeSet<&str> = new_sigs
        .keys()
        .copied()
        .filter(|k| !old_sigs.contains_key(k))
        .collect();

    let default_switched = default_switch(&old_sigs, &new_sigs, &added, out);
    for (key, old_sig) in &old_sigs {
        let Some(new_sig) = new_sigs.get(key) else {
            continue;
        };
        if default_switched && *key == DEFAULT_SIGNATURE_KEY {
            continue;
        }
        signature_pair(key, old_sig, new_sig, old, new, out);
    }

    // A removed signature whose contract is that of exactly one added one was renamed.
    let mut added_by_contract = by_contract(added.iter().copied(), &new_sigs);
    let mut renamed_to = BTreeSet::new();
    for key in removed {
        let target = match added_by_contract.get_mut(&contract(old_sigs[key])) {
            Some(keys) if keys.len() == 1 => keys.pop(),
            _ => None,
        };
        let default_note = if key == DEFAULT_SIGNATURE_KEY {
            "; requests that name no signature fail"
        } else {
            ""
        };
        match target {
            Some(to) => {
                renamed_to.insert(to);
                out.push(
                    change(
                        Grade::Breaking,
                        Kind::SignatureRenamed,
                        Some(key),
                        format!(
                            "signature '{key}' was renamed to '{to}' (same method, inputs and \
                             outputs): requests for '{key}' fail{default_note}"
                        ),
                    )
                    .values(key, to),
                );
            }
            None => out.push(change(
                Grade::Breaking,
                Kind::SignatureRemoved,
                Some(key),
                format!("signature '{key}' was removed: requests for it fail{default_note}"),
            )),
        }
    }
    for key in added.difference(&renamed_to) {
        out.push(change(
            Grade::Compatible,
            Kind::SignatureAdded,
            Some(key),
            format!("signature '{key}' was added: no client uses it yet"),
        ));
    }
}

/// `serving_default` became another signature: NEW's default is what OLD had under another
/// key, or OLD's default lives on under another key in NEW. One change instead of a detailed
/// comparison of two unrelated signatures. Returns whether it reported one.
fn default_switch(
    old_sigs: &BTreeMap<&str, &tf::SignatureDef>,
    new_sigs: &BTreeMap<&str, &tf::SignatureDef>,
    added: &BTreeSet<&str>,
    out: &mut Vec<Change>,
) -> bool {
    let (Some(old_default), Some(new_default)) = (
        old_sigs.get(DEFAULT_SIGNATURE_KEY),
        new_sigs.get(DEFAULT_SIGNATURE_KEY),
    ) else {
        return false;
    };
    let old_contract = contract(old_default);
    let new_contract = contract(new_default);
    if old_contract == new_contract {
        return false;
    }
    // Where OLD's default went (a key new in NEW, or one whose own contract changed to it).
    let moved_to = new_sigs.iter().find(|(k, s)| {
        **k != DEFAULT_SIGNATURE_KEY
            && contract(s) == old_contract
            && (added.contains(**k)
                || old_sigs
                    .get(**k)
                    .is_some_and(|o| contract(o) != old_contract))
    });
    let came_from = old_sigs
        .iter()
        .find(|(k, s)| **k != DEFAULT_SIGNATURE_KEY && contract(s) == new_contract);
    if moved_to.is_none() && came_from.is_none() {
        return false;
    }
    let mut message = format!(
        "'{DEFAULT_SIGNATURE_KEY}' is another signature now: OLD's {}, NEW's {}",
        describe(old_default),
        describe(new_default)
    );
    if let Some((k, _)) = came_from {
        message.push_str(&format!(" (what OLD has as '{k}')"));
    }
    if let Some((k, _)) = moved_to {
        message.push_str(&format!("; OLD's default is '{k}' in NEW"));
    }
    message.push_str(": requests that name no signature get a different one");
    out.push(
        change(
            Grade::Breaking,
            Kind::DefaultChanged,
            Some(DEFAULT_SIGNATURE_KEY),
            message,
        )
        .values(
            came_from.map_or(DEFAULT_SIGNATURE_KEY, |(k, _)| k),
            moved_to.map_or(DEFAULT_SIGNATURE_KEY, |(k, _)| k),
        ),
    );
    true
}

/// `takes 'x' and returns 'y'`: a signature in a few words, for messages.
fn describe(sig: &tf::SignatureDef) -> String {
    let keys = |m: &BTreeMap<String, tf::TensorInfo>| {
        let k: Vec<&str> = m.keys().map(String::as_str).collect();
        quoted_list(&k)
    };
    format!(
        "takes {} and returns {}",
        keys(&sig.inputs),
        keys(&sig.outputs)
    )
}

fn signature_pair(
    key: &str,
    old_sig: &tf::SignatureDef,
    new_sig: &tf::SignatureDef,
    old: &Graph<'_>,
    new: &Graph<'_>,
    out: &mut Vec<Change>,
) {
    if old_sig.method_name != new_sig.method_name {
        // TF Serving's method-name check is off by default; with
        // --enable_signature_method_name_check, :classify and :regress need their method.
        let needed = [CLASSIFY_METHOD, REGRESS_METHOD].contains(&old_sig.method_name.as_str());
        let (grade, why) = if needed {
            (
                Grade::Breaking,
                "a TF Serving with --enable_signature_method_name_check refuses the OLD method's \
                 endpoint",
            )
        } else {
            (
                Grade::Compatible,
                ":predict accepts every method, and TF Serving checks method names only with \
                 --enable_signature_method_name_check",
            )
        };
        out.push(
            change(
                grade,
                Kind::MethodChanged,
                Some(key),
                format!(
                    "method changed from {} to {}: {why}",
                    old_sig.method_name, new_sig.method_name
                ),
            )
            .values(&old_sig.method_name, &new_sig.method_name),
        );
    }
    let old_endpoints = signature::endpoints(key, old_sig);
    let new_endpoints = signature::endpoints(key, new_sig);
    for e in &old_endpoints {
        if !new_endpoints.contains(e) {
            let why = signature::serving_problems(key, new_sig, *e).join("; ");
            out.push(
                change(
                    Grade::Breaking,
                    Kind::EndpointRemoved,
                    Some(key),
                    format!(
                        "TF Serving no longer serves it under :{} (it {why}): those requests fail",
                        e.name()
                    ),
                )
                .item(e.name()),
            );
        }
    }
    for e in &new_endpoints {
        if !old_endpoints.contains(e) {
            out.push(
                change(
                    Grade::Compatible,
                    Kind::EndpointAdded,
                    Some(key),
                    format!("TF Serving now also serves it under :{}", e.name()),
                )
                .item(e.name()),
            );
        }
    }
    tensors(key, Direction::Input, old_sig, new_sig, out);
    tensors(key, Direction::Output, old_sig, new_sig, out);
    defaults(key, old_sig, new_sig, out);
    if let (Some(a), Some(b)) = (class_labels(old, old_sig), class_labels(new, new_sig)) {
        labels(key, &a, &b, out);
    }
}

/// Inputs are what clients send: NEW may accept more (wider shapes), not less. Outputs are what
/// clients receive: NEW may promise more (narrower shapes), not less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Input,
    Output,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }

    fn kinds(self) -> [Kind; 6] {
        match self {
            Direction::Input => [
                Kind::InputRemoved,
                Kind::InputAdded,
                Kind::InputRenamed,
                Kind::InputDtype,
                Kind::InputShape,
                Kind::InputEncoding,
            ],
            Direction::Output => [
                Kind::OutputRemoved,
                Kind::OutputAdded,
                Kind::OutputRenamed,
                Kind::OutputDtype,
                Kind::OutputShape,
                Kind::OutputEncoding,
            ],
        }
    }
}

fn tensors(
    key: &str,
    dir: Direction,
    old_sig: &tf::SignatureDef,
    new_sig: &tf::SignatureDef,
    out: &mut Vec<Change>,
) {
    let [removed_kind, added_kind, renamed_kind, dtype_kind, shape_kind, encoding_kind] =
        dir.kinds();
    let word = dir.word();
    let (old_map, new_map) = match dir {
        Direction::Input => (&old_sig.inputs, &new_sig.inputs),
        Direction::Output => (&old_sig.outputs, &new_sig.outputs),
    };
    for (name, old_info) in old_map {
        let Some(new_info) = new_map.get(name) else {
            continue;
        };
        let (a, b) = (tensor_contract(old_info), tensor_contract(new_info));
        if a.encoding != b.encoding || a.components.len() != b.components.len() {
            out.push(
                change(
                    Grade::Breaking,
                    encoding_kind,
                    Some(key),
                    format!(
                        "{word} '{name}' changed from a {} to a {} tensor: clients {} it differently",
                        a.encoding.replace('_', " "),
                        b.encoding.replace('_', " "),
                        match dir {
                            Direction::Input => "encode",
                            Direction::Output => "decode",
                        }
                    ),
                )
                .item(name)
                .values(a.encoding, b.encoding),
            );
            continue;
        }
        if a.dtype != b.dtype {
            out.push(
                change(
                    Grade::Breaking,
                    dtype_kind,
                    Some(key),
                    format!(
                        "{word} '{name}' changed dtype from {} to {}: {}",
                        dtype_name(a.dtype),
                        dtype_name(b.dtype),
                        match dir {
                            Direction::Input => "requests that send OLD's dtype fail",
                            Direction::Output => "clients decode a different type",
                        }
                    ),
                )
                .item(name)
                .values(dtype_name(a.dtype), dtype_name(b.dtype)),
            );
        }
        if let Some((grade, why)) = shape_change(&a.shape, &b.shape, dir) {
            out.push(
                change(
                    grade,
                    shape_kind,
                    Some(key),
                    format!(
                        "{word} '{name}' changed shape from {} to {}: {why}",
                        shape_text(old_info.tensor_shape.as_ref()),
                        shape_text(new_info.tensor_shape.as_ref())
                    ),
                )
                .item(name)
                .values(
                    shape_text(old_info.tensor_shape.as_ref()),
                    shape_text(new_info.tensor_shape.as_ref()),
                ),
            );
        }
        for (i, (ca, cb)) in a.components.iter().zip(&b.components).enumerate() {
            if ca != cb {
                out.push(
                    change(
                        Grade::Breaking,
                        encoding_kind,
                        Some(key),
                        format!(
                            "{word} '{name}' component {i} changed from {} {} to {} {}",
                            dtype_name(ca.0),
                            dims_text(&ca.1),
                            dtype_name(cb.0),
                            dims_text(&cb.1)
                        ),
                    )
                    .item(name),
                );
            }
        }
    }

    // Renames: a removed and an added tensor with the same contract, when the pairing is unique.
    let removed: Vec<&str> = old_map
        .keys()
        .map(String::as_str)
        .filter(|k| !new_map.contains_key(*k))
        .collect();
    let added: Vec<&str> = new_map
        .keys()
        .map(String::as_str)
        .filter(|k| !old_map.contains_key(*k))
        .collect();
    let mut added_by_contract: HashMap<TensorContract, Vec<&str>> = HashMap::new();
    for k in &added {
        added_by_contract
            .entry(tensor_contract(&new_map[*k]))
            .or_default()
            .push(k);
    }
    let mut removed_by_contract: HashMap<TensorContract, usize> = HashMap::new();
    for k in &removed {
        *removed_by_contract
            .entry(tensor_contract(&old_map[*k]))
            .or_default() += 1;
    }
    let mut renamed_to = BTreeSet::new();
    for k in &removed {
        let c = tensor_contract(&old_map[*k]);
        let unique = removed_by_contract.get(&c) == Some(&1);
        let target = match added_by_contract.get(&c) {
            Some(keys) if unique && keys.len() == 1 => Some(keys[0]),
            _ => None,
        };
        let consequence = match dir {
            Direction::Input => "requests that send it fail",
            Direction::Output => "clients that read it get nothing",
        };
        match target {
            Some(to) => {
                renamed_to.insert(to);
                out.push(
                    change(
                        Grade::Breaking,
                        renamed_kind,
                        Some(key),
                        format!(
                            "{word} '{k}' was renamed to '{to}' (same dtype and shape): {consequence}"
                        ),
                    )
                    .item(k)
                    .values(*k, to),
                );
            }
            None => out.push(
                change(
                    Grade::Breaking,
                    removed_kind,
                    Some(key),
                    format!("{word} '{k}' was removed: {consequence}"),
                )
                .item(k),
            ),
        }
    }
    for k in added {
        if renamed_to.contains(k) {
            continue;
        }
        let (grade, why) = match dir {
            Direction::Input if new_sig.defaults.contains_key(k) => (
                Grade::Breaking,
                "it has a default, so gRPC Predict requests may leave it out, but TF Serving's \
                 REST API needs every input in each request (\"Missing named input\")"
                    .to_owned(),
            ),
            Direction::Input => (
                Grade::Breaking,
                "it has no default: requests without it fail".to_owned(),
            ),
            // TF Serving's REST predict answers with bare values for one output and with objects
            // keyed by output name for several.
            Direction::Output if old_map.len() == 1 && new_map.len() > 1 => {
                (
                    Grade::Breaking,
                    format!(
                    "with more than one output, TF Serving's REST :predict answers with objects \
                     keyed by output name instead of OLD's bare '{}' values",
                    old_map.keys().next().map(String::as_str).unwrap_or_default()
                ),
                )
            }
            Direction::Output => (
                Grade::Compatible,
                "clients that do not read it are not affected".to_owned(),
            ),
        };
        out.push(
            change(
                grade,
                added_kind,
                Some(key),
                format!("{word} '{k}' was added: {why}"),
            )
            .item(k),
        );
    }
}

fn dims_text(d: &Option<Vec<i64>>) -> String {
    match d {
        None => "unknown rank".to_owned(),
        Some(d) => format!(
            "({})",
            d.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Whether every shape `inner` allows is allowed by `outer` too.
fn within(inner: &Option<Vec<i64>>, outer: &Option<Vec<i64>>) -> bool {
    match (inner, outer) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(i), Some(o)) => {
            i.len() == o.len() && i.iter().zip(o).all(|(a, b)| *b < 0 || (*a >= 0 && a == b))
        }
    }
}

/// Grades a shape change: inputs may widen (NEW accepts all OLD did), outputs may narrow (NEW's
/// outputs fit what OLD promised).
fn shape_change(
    old: &Option<Vec<i64>>,
    new: &Option<Vec<i64>>,
    dir: Direction,
) -> Option<(Grade, String)> {
    if old == new {
        return None;
    }
    let rank_changed = matches!((old, new), (Some(a), Some(b)) if a.len() != b.len());
    let (fits, compatible, rank, other) = match dir {
        Direction::Input => (
            within(old, new),
            "NEW accepts every shape OLD did (widened)",
            "the rank changed: requests shaped for OLD fail",
            "NEW accepts fewer shapes (narrowed): requests shaped for OLD can fail",
        ),
        Direction::Output => (
            within(new, old),
            "every NEW output fits the shape OLD promised (narrowed)",
            "the rank changed: clients reading OLD's shape fail",
            "NEW may return shapes OLD never did (widened or changed): clients that rely on \
             OLD's shape can fail",
        ),
    };
    Some(match (fits, rank_changed) {
        (true, _) => (Grade::Compatible, compatible.to_owned()),
        (false, true) => (Grade::Breaking, rank.to_owned()),
        (false, false) => (Grade::Breaking, other.to_owned()),
    })
}

fn defaults(
    key: &str,
    old_sig: &tf::SignatureDef,
    new_sig: &tf::SignatureDef,
    out: &mut Vec<Change>,
) {
    for (name, old_value) in &old_sig.defaults {
        // Only inputs both versions have: added and removed inputs are reported as such.
        if !old_sig.inputs.contains_key(name) || !new_sig.inputs.contains_key(name) {
            continue;
        }
        match new_sig.defaults.get(name) {
            None => out.push(
                change(
                    Grade::Breaking,
                    Kind::InputDefault,
                    Some(key),
                    format!(
                        "input '{name}' lost its default: gRPC Predict requests that leave it out fail"
                    ),
                )
                .item(name),
            ),
            Some(new_value) if new_value != old_value => out.push(
                change(
                    Grade::Compatible,
                    Kind::InputDefault,
                    Some(key),
                    format!(
                        "input '{name}' has another default value: requests that leave it out \
                         get NEW's"
                    ),
                )
                .item(name),
            ),
            Some(_) => {}
        }
    }
    for name in new_sig.defaults.keys() {
        if old_sig.inputs.contains_key(name)
            && new_sig.inputs.contains_key(name)
            && !old_sig.defaults.contains_key(name)
        {
            out.push(
                change(
                    Grade::Compatible,
                    Kind::InputDefault,
                    Some(key),
                    format!(
                        "input '{name}' has a default now: gRPC Predict requests may leave it out"
                    ),
                )
                .item(name),
            );
        }
    }
}

/// OLD's class labels `a` against NEW's `b`.
fn labels(key: &str, a: &[String], b: &[String], out: &mut Vec<Change>) {
    if a == b {
        return;
    }
    let sa: BTreeSet<&str> = a.iter().map(String::as_str).collect();
    let sb: BTreeSet<&str> = b.iter().map(String::as_str).collect();
    let gone: Vec<&str> = sa.difference(&sb).copied().collect();
    let new_ones: Vec<&str> = sb.difference(&sa).copied().collect();
    let (grade, message) = if gone.is_empty() && new_ones.is_empty() {
        (
            Grade::Compatible,
            format!(
                "the {} class labels of output 'classes' are the same in another order: clients \
                 see label names, not class indices",
                a.len()
            ),
        )
    } else {
        let mut parts = Vec::new();
        if !gone.is_empty() {
            parts.push(format!("removed {}", quoted_list(&gone)));
        }
        if !new_ones.is_empty() {
            parts.push(format!("added {}", quoted_list(&new_ones)));
        }
        (
            Grade::Breaking,
            format!(
                "the class labels of output 'classes' changed ({}): clients that act on label \
                 names get ones they do not know or miss ones they expect",
                parts.join(", ")
            ),
        )
    };
    out.push(
        change(grade, Kind::LabelsChanged, Some(key), message)
            .item(CLASSIFY_CLASSES)
            .values(a.join(","), b.join(",")),
    );
}

fn quoted_list(items: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut s: Vec<String> = items.iter().take(SHOWN).map(|i| format!("'{i}'")).collect();
    if items.len() > SHOWN {
        s.push(format!("and {} more", items.len() - SHOWN));
    }
    s.join(", ")
}

/// How far label tracing follows a chain of nodes before giving up.
const MAX_TRACE: usize = 64;

/// The class labels of a classify-shaped signature's `classes` output when they are a string
/// constant in the graph, reached through ops that select or reshape (add-classify's
/// `GatherV2(labels, top_k indices)`, TF1's `tile(constant)`), also through the calls of TF2
/// signature functions into the functions they call.
fn class_labels(graph: &Graph<'_>, sig: &tf::SignatureDef) -> Option<Vec<String>> {
    let info = sig.outputs.get(CLASSIFY_CLASSES)?;
    let name = crate::proto_ext::tensor_name(info)?;
    let (mut node_name, mut index) = split_tensor_name(name);
    // `None`: the top-level graph; else the nodes of the function being traced.
    let mut scope: Option<Rc<NodeIndex<'_>>> = None;
    for _ in 0..MAX_TRACE {
        let node = match &scope {
            None => *graph.index.nodes.get(node_name)?,
            Some(nodes) => *nodes.get(node_name)?,
        };
        let in_function = scope.is_some();
        match node.op.as_str() {
            "Const" => return string_constant(node),
            "Identity" | "StopGradient" | "Snapshot" | "Tile" | "Reshape" | "ExpandDims"
            | "Squeeze" | "GatherV2" | "Gather" => {
                (node_name, index) = data_input(node, 0, in_function)?;
            }
            "IdentityN" => {
                (node_name, index) = data_input(node, usize::try_from(index).ok()?, in_function)?;
            }
            "PartitionedCall" | "StatefulPartitionedCall" => {
                let (f, nodes) =
                    graph.function(crate::graph::attr::func_name(node.attr.get("f"))?)?;
                let arg = f
                    .signature
                    .as_ref()?
                    .output_arg
                    .get(usize::try_from(index).ok()?)?;
                (node_name, index) = function_tensor(f.ret.get(&arg.name)?)?;
                scope = Some(nodes);
            }
            _ => return None,
        }
    }
    None
}

/// The `i`th data input of `node` as (node, output index); in a function body, inputs read
/// `node:arg:index` and a bare name is a function argument (where tracing stops).
fn data_input(node: &tf::NodeDef, i: usize, in_function: bool) -> Option<(&str, u32)> {
    let input = node.input.iter().filter(|s| !s.starts_with('^')).nth(i)?;
    if in_function {
        function_tensor(input)
    } else {
        Some(split_tensor_name(input))
    }
}

fn function_tensor(name: &str) -> Option<(&str, u32)> {
    let mut parts = name.split(':');
    let node = parts.next()?;
    let _arg = parts.next()?;
    let index = parts.next().map_or(Some(0), |i| i.parse().ok())?;
    Some((node, index))
}

fn string_constant(node: &tf::NodeDef) -> Option<Vec<String>> {
    let tensor = match node.attr.get("value")?.value.as_ref()? {
        tf::attr_value::Value::Tensor(t) => t,
        _ => return None,
    };
    if tensor.dtype != tf::DataType::DtString as i32 || tensor.string_val.is_empty() {
        return None;
    }
    Some(
        tensor
            .string_val
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

/// `2.15.0` -> (2, 15, 0); pre-release suffixes (`-rc1`) are ignored.
fn release(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split(['.', '-']).map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

fn op_set<'a>(graph: &Graph<'a>) -> BTreeSet<&'a str> {
    ops::all_nodes(graph.index.graph)
        .map(|r| r.node.op.as_str())
        // Calls of the model's own library functions are not registered ops.
        .filter(|op| !graph.index.functions.contains_key(op))
        .collect()
}

/// Ops NEW needs that OLD did not: unknown to TensorFlow 2.21 (custom ops, or a newer release),
/// or, when NEW was written by a newer TensorFlow than OLD, possibly missing from a server on
/// OLD's TensorFlow.
fn ops_needing_newer_tensorflow(old: &Graph<'_>, new: &Graph<'_>, out: &mut Vec<Change>) {
    let old_ops = op_set(old);
    let new_ops = op_set(new);
    let (old_tf, new_tf) = (old.tensorflow_version(), new.tensorflow_version());
    let newer = matches!((release(old_tf), release(new_tf)), (Some(a), Some(b)) if b > a);
    for op in new_ops.difference(&old_ops) {
        let message = if !op_registry::is_registered(op) {
            format!(
                "op '{op}' is new in NEW and not registered in TensorFlow {}: a custom op or one \
                 from a newer release; a server that runs OLD fails to load NEW unless it has it",
                op_registry::TF_VERSION
            )
        } else if newer {
            format!(
                "op '{op}' is new in NEW, which TensorFlow {new_tf} wrote; OLD was written by \
                 TensorFlow {old_tf}: a server on OLD's TensorFlow may not register it and fail \
                 to load NEW; serve NEW with TensorFlow {new_tf} or later"
            )
        } else {
            continue;
        };
        out.push(
            change(Grade::Breaking, Kind::OpNeedsNewerTensorflow, None, message)
                .item(op)
                .values(old_tf, new_tf),
        );
    }
}

/// A variable's dtype and dimensions (`None`: unknown rank).
type VariableShape = (i32, Option<Vec<i64>>);

fn variable_shapes(dir: &Path) -> Result<BTreeMap<String, VariableShape>, Error> {
    let path = dir.join(savedmodel::VARIABLES_INDEX);
    // Only a missing index means no variables: one that is a FIFO, a device or a directory is
    // refused by the read, rather than taken for none and left out of the comparison.
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(BTreeMap::new());
    }
    Ok(BundleIndex::read(&path)?
        .entries
        .into_iter()
        .map(|e| (e.key, (e.entry.dtype, dims(e.entry.shape.as_ref()))))
        .collect())
}

/// Variables both versions have whose dtype or shape changed. Clients never feed or read
/// variables, so this is compatible; it tells that OLD's checkpoints do not restore into NEW.
fn variables(old_dir: &Path, new_dir: &Path, out: &mut Vec<Change>) -> Result<(), Error> {
    let old = variable_shapes(old_dir)?;
    let new = variable_shapes(new_dir)?;
    for (name, (old_dtype, old_shape)) in &old {
        let Some((new_dtype, new_shape)) = new.get(name) else {
            continue;
        };
        if old_dtype == new_dtype && old_shape == new_shape {
            continue;
        }
        let (a, b) = (
            format!("{} {}", dtype_name(*old_dtype), dims_text(old_shape)),
            format!("{} {}", dtype_name(*new_dtype), dims_text(new_shape)),
        );
        out.push(
            change(
                Grade::Compatible,
                Kind::VariableChanged,
                None,
                format!(
                    "variable '{name}' changed from {a} to {b}: clients do not see variables, but \
                     checkpoints of OLD no longer restore into NEW"
                ),
            )
            .item(name)
            .values(a, b),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_grades() {
        use Direction::{Input, Output};
        let s = |d: &[i64]| Some(d.to_vec());
        let cases = [
            (s(&[-1, -1]), s(&[-1, 28]), Input, Some(Grade::Breaking)),
            (s(&[-1, 28]), s(&[-1, -1]), Input, Some(Grade::Compatible)),
            (s(&[-1, 28]), s(&[-1, 32]), Input, Some(Grade::Breaking)),
            (s(&[-1, 4]), s(&[-1, 2, 2]), Input, Some(Grade::Breaking)),
            (s(&[-1, 4]), None, Input, Some(Grade::Compatible)),
            (None, s(&[-1, 4]), Input, Some(Grade::Breaking)),
            (s(&[-1, 10]), s(&[-1, -1]), Output, Some(Grade::Breaking)),
            (s(&[-1, -1]), s(&[-1, 10]), Output, Some(Grade::Compatible)),
            (None, s(&[-1]), Output, Some(Grade::Compatible)),
            (s(&[-1]), s(&[-1]), Input, None),
        ];
        for (i, (old, new, dir, want)) in cases.into_iter().enumerate() {
            assert_eq!(shape_change(&old, &new, dir).map(|c| c.0), want, "case {i}");
        }
    }

    #[test]
    fn release_numbers() {
        assert_eq!(release("2.15.0"), Some((2, 15, 0)));
        assert_eq!(release("2.21.0-rc1"), Some((2, 21, 0)));
        assert_eq!(release("1.15"), Some((1, 15, 0)));
        assert_eq!(release(""), None);
        assert_eq!(release("unknown"), None);
    }

    #[test]
    fn function_tensor_names() {
        assert_eq!(function_tensor("Identity:output:0"), Some(("Identity", 0)));
        assert_eq!(function_tensor("split:output:2"), Some(("split", 2)));
        assert_eq!(function_tensor("x"), None);
    }
}
