//! `smtool add-classify`: adds a TensorFlow Serving classify signature (serialized `tf.Example`s
//! in, label names and scores sorted by score out) to an existing SavedModel, by editing its graph.
//! The computation behind the wrapped signature is cloned with its inputs rewired to the parsed
//! features, so every existing signature keeps working exactly as before.
//!
//! The command reads as options -> plan -> write -> report: [`AddClassifyOptions`] come validated
//! from the command line; `plan` checks them against the model and settles the
//! [`ClassifyHead`] without touching the graph; `write` has [`classify::add_classify_head`] build
//! it into the parsed model and writes the edited copy atomically; the [`AddClassifyReport`] is
//! rendered by `render::add_classify` (or as JSON).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::graph::classify::{self, ClassifyHead, Feed};
use crate::graph::{softmax, GraphError};
use crate::proto::tensorflow::{self as tf, DataType};
use crate::proto_ext::{dims, dtype_name, shape_text, tensor_name};
use crate::savedmodel::write::{self, WriteError, WriteOptions, WriteSummary};
use crate::savedmodel::{self, Location, SavedModelDir};
use crate::signature::{self, DEFAULT_SIGNATURE_KEY};

pub use crate::graph::classify::{FeatureKind, ImageScale};

/// `--feature INPUT=KIND[:NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSpec {
    /// The key of the wrapped signature's input.
    pub input: String,
    pub kind: FeatureKind,
    /// The `tf.Example` feature name; the input key when absent.
    pub feature: Option<String>,
}

impl FromStr for FeatureSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (input, rest) = s.split_once('=').ok_or_else(|| {
            format!("'{s}' is not INPUT=KIND[:FEATURE] (e.g. x=image or x=float:pixels)")
        })?;
        let (kind, feature) = match rest.split_once(':') {
            Some((k, f)) => (k, Some(f)),
            None => (rest, None),
        };
        if input.is_empty() {
            return Err(format!("'{s}' names no input before '='"));
        }
        if feature.is_some_and(str::is_empty) {
            return Err(format!("'{s}' has an empty feature name after ':'"));
        }
        Ok(Self {
            input: input.to_owned(),
            kind: kind.parse()?,
            feature: feature.map(str::to_owned),
        })
    }
}

/// Where the class names come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelSource {
    /// A text file, one label per line.
    File(PathBuf),
    /// A file in the model's `assets/` directory.
    Asset(String),
}

/// Where the edited SavedModel goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A new SavedModel directory.
    Dir(PathBuf),
    /// The next version directory inside the model base path `src` (the latest version plus
    /// one), so TensorFlow Serving picks the edited model up on its next poll.
    NextVersion,
}

/// What every command that writes an edited copy of a model (add-classify, warmup) is told:
/// the model to read, where the copy goes and how it is written.
#[derive(Debug, Clone)]
pub struct EditOptions {
    /// A SavedModel directory, its graph file, or a model base path.
    pub src: PathBuf,
    /// With a model base path: the version to read; `None`: the latest.
    pub version: Option<i64>,
    pub dst: Destination,
    /// Replace an existing destination (add-classify: also an existing signature key).
    pub force: bool,
    /// Copy files instead of hard-linking them.
    pub copy: bool,
    /// Show a progress bar for large copies.
    pub progress: bool,
}

impl EditOptions {
    /// How the copy is written; `next_version`: as a new version of a model base path.
    pub(crate) fn write_options(&self, next_version: bool) -> WriteOptions {
        WriteOptions::from_flags(self.force, next_version, self.copy, self.progress)
    }
}

/// What `add-classify` does, validated from the command line.
#[derive(Debug, Clone)]
pub struct AddClassifyOptions {
    pub edit: EditOptions,
    /// The meta graph to edit (exact tag-set); `None`: the only one, else `serve`.
    pub tag_set: Option<Vec<String>>,
    /// The signature to wrap.
    pub signature: String,
    /// Its output holding class probabilities; `None`: the only output or the Softmax one.
    pub output: Option<String>,
    pub labels: LabelSource,
    /// `None`: all classes.
    pub top_k: Option<usize>,
    pub features: Vec<FeatureSpec>,
    /// `None`: `[0, 1]` for float inputs.
    pub image_scale: Option<ImageScale>,
    /// The new signature's key.
    pub name: String,
    /// Also make the new signature `serving_default`, moving the old default to
    /// `rename_default_to`.
    pub make_default: bool,
    pub rename_default_to: String,
    /// Add a Softmax after the output (it holds logits).
    pub apply_softmax: bool,
}

/// Everything a user can get wrong, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] savedmodel::Error),
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A source in object storage that could not be used.
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
    #[error("cannot build the classify graph: {0}")]
    Graph(#[from] GraphError),
    #[error("no signature '{wanted}' in '{}' (available: {}); pick one with --signature", path.display(), list(available))]
    UnknownSignature {
        path: PathBuf,
        wanted: String,
        available: Vec<String>,
    },
    #[error(
        "signature '{signature}' has no output '{wanted}' (outputs: {}); pick one with --output",
        list(available)
    )]
    UnknownOutput {
        signature: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("signature '{signature}' has several outputs ({}) and {reason}; name the one with the class probabilities with --output", list(outputs))]
    AmbiguousOutput {
        signature: String,
        outputs: Vec<String>,
        reason: &'static str,
    },
    #[error("output '{output}' of signature '{signature}' is not produced by a Softmax; if it holds logits pass --apply-softmax, otherwise choose the probabilities with --output")]
    NotSoftmax { signature: String, output: String },
    #[error("output '{output}' of signature '{signature}' already comes from a Softmax; drop --apply-softmax")]
    AlreadySoftmax { signature: String, output: String },
    #[error("output '{output}' of signature '{signature}' has shape {shape}; it must be rank 2, (-1, classes), with a known number of classes")]
    OutputShape {
        signature: String,
        output: String,
        shape: String,
    },
    #[error("output '{output}' of signature '{signature}' is {dtype}; class scores must be a floating-point tensor")]
    OutputDtype {
        signature: String,
        output: String,
        dtype: String,
    },
    #[error("output '{output}' of signature '{signature}' is not a plain tensor (sparse or composite); choose a dense output with --output")]
    OutputNotDense { signature: String, output: String },
    #[error("labels {origin}: {detail}")]
    Labels { origin: String, detail: String },
    #[error("labels {origin} has {labels} labels but output '{output}' has {classes} classes; give one label per class, in class-index order")]
    LabelCount {
        origin: String,
        labels: usize,
        output: String,
        classes: usize,
    },
    #[error("--top-k {k} is out of range: the model has {classes} classes (use 1 to {classes})")]
    TopK { k: usize, classes: usize },
    #[error("--feature names input '{input}', but signature '{signature}' has no such input (inputs: {})", list(available))]
    UnknownInput {
        signature: String,
        input: String,
        available: Vec<String>,
    },
    #[error("input '{input}' is given twice with --feature")]
    DuplicateInput { input: String },
    #[error("inputs '{first}' and '{second}' would both read tf.Example feature '{feature}'; give them different names with --feature INPUT=KIND:NAME")]
    DuplicateFeature {
        feature: String,
        first: String,
        second: String,
    },
    #[error("input '{input}' is {dtype}, which a '{kind}' feature cannot produce ({hint})")]
    KindDtype {
        input: String,
        kind: &'static str,
        dtype: String,
        hint: String,
    },
    #[error("input '{input}' has shape {shape}: {detail}")]
    InputShape {
        input: String,
        shape: String,
        detail: String,
    },
    #[error("input '{input}' is not a plain tensor (sparse or composite); add-classify can only feed dense inputs")]
    InputNotDense { input: String },
    #[error("--image-scale applies to image features of DT_FLOAT inputs only (DT_UINT8 inputs take the pixels as decoded); map a float input with --feature INPUT=image or drop --image-scale")]
    ScaleWithoutImage,
    #[error("signature '{key}' already exists in '{}'; pass --name KEY to add the classify signature under another key, or --force to replace it", path.display())]
    KeyExists { key: String, path: PathBuf },
    #[error("'{key}' is reserved for TensorFlow's own use; choose another key")]
    ReservedKey { key: String },
    #[error("--rename-default-to must differ from the new signature's key '{key}'")]
    RenameClash { key: String },
    #[error(
        "--as-next-version adds a version to a model base path, but '{}' is a SavedModel itself; \
         pass the directory that holds its numbered versions, or write elsewhere with --out DST",
        .0.display()
    )]
    NextVersionOfModel(PathBuf),
    #[error(
        "version {number} of model base path '{}' ('{}') holds no saved_model.pb or \
         saved_model.pbtxt; finish or remove that version, or pick another with --version N \
         (available: {})",
        base.display(), dir.display(), numbers(available)
    )]
    VersionNotAModel {
        base: PathBuf,
        number: i64,
        dir: PathBuf,
        available: Vec<i64>,
    },
    #[error(
        "'{}' already exists, so version {number} cannot be added to '{}'; smtool never \
         replaces anything in a base path: move it away, or write elsewhere with --out DST",
        target.display(), base.display()
    )]
    NextVersionTaken {
        base: PathBuf,
        number: i64,
        target: PathBuf,
    },
    #[error(
        "'{}' already has the largest possible version number {latest}; no next version can \
         follow it, so write elsewhere with --out DST",
        base.display()
    )]
    NoNextVersion { base: PathBuf, latest: i64 },
    #[error(
        "'{}' holds no numbered version directories and no SavedModel, so --as-next-version has \
         no version to edit; put the model in '{}' first, or name the SavedModel to read",
        .0.display(), .0.join("1").display()
    )]
    EmptyBasePath(PathBuf),
}

fn numbers(items: &[i64]) -> String {
    list(&items.iter().map(i64::to_string).collect::<Vec<_>>())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How one input of the wrapped signature is fed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeatureReport {
    pub input: String,
    pub feature: String,
    pub kind: FeatureKind,
    pub dtype: String,
    /// The feature's shape in one example.
    pub shape: Vec<i64>,
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AddClassifyReport {
    pub dst: PathBuf,
    /// The version that was edited, when the source is a model base path.
    pub source_version: Option<i64>,
    /// The version written, with `--as-next-version`.
    pub new_version: Option<i64>,
    /// The keys the new signature was added under.
    pub keys: Vec<String>,
    /// Where the old `serving_default` went, with `--make-default`.
    pub renamed_default: Option<String>,
    pub wrapped_signature: String,
    pub output: String,
    pub classes: usize,
    pub top_k: usize,
    /// True when smtool added the Softmax; false when the model had one.
    pub softmax_added: bool,
    pub features: Vec<FeatureReport>,
    pub cloned_nodes: usize,
    /// Whether `tf.saved_model.load` lists the new signature.
    pub object_graph: ObjectGraphStatus,
    pub files: WriteSummary,
}

/// How `tf.saved_model.load` sees the new signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ObjectGraphStatus {
    /// A TF1 model: every loader reads `signature_def`.
    NotTf2,
    /// Added to the TF2 object graph as a concrete function too.
    Listed,
    /// Only TensorFlow Serving and the TF1 loader see it.
    NotListed { reason: String },
}

/// The model to edit, picked from what `src` is, and where the result goes.
pub(crate) struct Source {
    pub model: SavedModelDir,
    pub version: Option<i64>,
    pub dst: PathBuf,
    pub new_version: Option<i64>,
}

/// Where a command that writes a new model starts: with the local model to read, or with the
/// object-storage URL that [`super::remote`] downloads before it runs the command again on the
/// local copy.
pub(crate) enum Start {
    Local(Source),
    #[cfg(feature = "storage")]
    Remote(crate::storage::RemoteUrl),
}

/// The start shared by the commands that write a new model: refuses an `--out` in object
/// storage, then hands on a `src` there, or opens the local [`source`].
pub(crate) fn start(edit: &EditOptions) -> Result<Start, Error> {
    if let Destination::Dir(out) = &edit.dst {
        crate::storage::local_output(out)?;
    }
    match crate::storage::remote_url(&edit.src)? {
        #[cfg(feature = "storage")]
        Some(url) => Ok(Start::Remote(url)),
        // Without object storage built in, `remote_url` has refused a URL.
        _ => Ok(Start::Local(source(&edit.src, edit.version, &edit.dst)?)),
    }
}

/// The model to read from `src` (a SavedModel, or version `version` / the latest of a model base
/// path) and where its edited copy goes.
fn source(src: &Path, version: Option<i64>, dst: &Destination) -> Result<Source, Error> {
    let located = match savedmodel::locate(src) {
        Err(savedmodel::Error::NoGraph(dir)) if *dst == Destination::NextVersion => {
            return Err(Error::EmptyBasePath(dir))
        }
        other => other?,
    };
    let (dir, versions) = match located {
        Location::Model { dir, file } => {
            if version.is_some() {
                return Err(savedmodel::Error::NotVersioned(src.to_path_buf()).into());
            }
            let Destination::Dir(dst) = dst else {
                return Err(Error::NextVersionOfModel(src.to_path_buf()));
            };
            return Ok(Source {
                model: SavedModelDir::open_at(&dir, file.as_deref())?,
                version: None,
                dst: dst.clone(),
                new_version: None,
            });
        }
        Location::BasePath { dir, versions } => (dir, versions),
    };
    let available: Vec<i64> = versions.iter().map(|v| v.number).collect();
    let chosen = savedmodel::pick_version(&dir, &versions, version)?;
    let model = match SavedModelDir::open(&chosen.dir) {
        Err(savedmodel::Error::NoGraph(_)) => {
            return Err(Error::VersionNotAModel {
                base: dir,
                number: chosen.number,
                dir: chosen.dir.clone(),
                available,
            })
        }
        other => other?,
    };
    let (dst, new_version) = match dst {
        Destination::Dir(dst) => (dst.clone(), None),
        Destination::NextVersion => {
            // `locate` never returns a base path without versions.
            let latest = available.last().copied().unwrap_or_default();
            let next = latest.checked_add(1).ok_or(Error::NoNextVersion {
                base: dir.clone(),
                latest,
            })?;
            let target = dir.join(next.to_string());
            // Only a file or a dangling link can hold the name of a version above the latest;
            // it is the user's, so it is never replaced.
            if target.symlink_metadata().is_ok() {
                return Err(Error::NextVersionTaken {
                    base: dir,
                    number: next,
                    target,
                });
            }
            (target, Some(next))
        }
    };
    Ok(Source {
        model,
        version: Some(chosen.number),
        dst,
        new_version,
    })
}

/// The edit, checked against the model before anything is written.
#[derive(Debug, Clone)]
struct Plan {
    meta_index: usize,
    output_key: String,
    classes: usize,
    /// Where the old `serving_default` goes, with `--make-default` when the model has one.
    renamed_default: Option<String>,
    head: ClassifyHead,
}

/// Runs `add-classify`: checks everything, edits a copy of the graph, writes DST atomically.
/// With `--as-next-version` DST is the next version directory of the base path; the writer builds
/// it in a temporary directory beside it whose name (`.N.smtool-...`) is not a version number, so
/// TensorFlow Serving never sees a half-written version.
pub fn run(opts: &AddClassifyOptions) -> Result<AddClassifyReport, Error> {
    // Without object storage built in, `Start` has only the local case.
    #[cfg_attr(
        not(feature = "storage"),
        allow(clippy::infallible_destructuring_match)
    )]
    let source = match start(&opts.edit)? {
        Start::Local(source) => source,
        #[cfg(feature = "storage")]
        Start::Remote(url) => return Ok(super::remote::add_classify(opts, &url)?),
    };
    let plan = plan(opts, &source.model)?;
    let next = source.new_version.is_some();
    let (built, files) = write(opts, &plan, source.model, &source.dst, next)?;
    Ok(report(
        plan,
        built,
        files,
        source.dst,
        source.version,
        source.new_version,
    ))
}

/// Builds the classify head into the parsed model and writes the result to `dst`.
fn write(
    opts: &AddClassifyOptions,
    plan: &Plan,
    model: SavedModelDir,
    dst: &Path,
    new_version: bool,
) -> Result<(classify::Built, WriteSummary), Error> {
    // Graphs can be large: edit the parsed model in place rather than a copy.
    let SavedModelDir {
        dir,
        mut saved_model,
        ..
    } = model;
    let built =
        classify::add_classify_head(&mut saved_model.meta_graphs[plan.meta_index], &plan.head)?;
    let files = write::write_saved_model(
        &dir,
        &saved_model,
        dst,
        // --force may replace a signature key, but never a version of a base path.
        &opts.edit.write_options(new_version),
    )?;
    Ok((built, files))
}

fn report(
    plan: Plan,
    built: classify::Built,
    files: WriteSummary,
    dst: PathBuf,
    source_version: Option<i64>,
    new_version: Option<i64>,
) -> AddClassifyReport {
    let head = plan.head;
    AddClassifyReport {
        dst,
        source_version,
        new_version,
        keys: head.keys(),
        renamed_default: plan.renamed_default,
        output: plan.output_key,
        classes: plan.classes,
        top_k: head.top_k,
        softmax_added: head.apply_softmax,
        features: head
            .feeds
            .iter()
            .map(|f| FeatureReport {
                input: f.input.clone(),
                feature: f.feature.clone(),
                kind: f.kind,
                dtype: dtype_name(f.dtype as i32),
                shape: f.example_shape.clone(),
            })
            .collect(),
        wrapped_signature: head.wrapped_signature,
        cloned_nodes: built.cloned_nodes,
        object_graph: match built.object_graph {
            None => ObjectGraphStatus::NotTf2,
            Some(Ok(())) => ObjectGraphStatus::Listed,
            Some(Err(reason)) => ObjectGraphStatus::NotListed { reason },
        },
        files,
    }
}

fn plan(opts: &AddClassifyOptions, model: &SavedModelDir) -> Result<Plan, Error> {
    let meta = model.meta_graph(opts.tag_set.as_deref())?;
    let meta_index = model
        .saved_model
        .meta_graphs
        .iter()
        .position(|m| std::ptr::eq(m, meta))
        .unwrap_or(0);
    check_keys(opts, meta, &model.dir)?;
    let sig = meta
        .signature_def
        .get(&opts.signature)
        .filter(|_| !signature::RESERVED_KEYS.contains(&opts.signature.as_str()))
        .ok_or_else(|| Error::UnknownSignature {
            path: model.dir.clone(),
            wanted: opts.signature.clone(),
            available: meta
                .signature_def
                .keys()
                .filter(|k| !signature::RESERVED_KEYS.contains(&k.as_str()))
                .cloned()
                .collect(),
        })?;
    let no_graph = tf::GraphDef::default();
    let graph = meta.graph_def.as_ref().unwrap_or(&no_graph);

    // The output and its classes.
    let (output_key, output_info) = choose_output(opts, sig, graph)?;
    let output_tensor = tensor_name(output_info)
        .ok_or_else(|| Error::OutputNotDense {
            signature: opts.signature.clone(),
            output: output_key.clone(),
        })?
        .to_owned();
    let output_dtype = DataType::try_from(output_info.dtype)
        .ok()
        .filter(|d| {
            matches!(
                d,
                DataType::DtFloat | DataType::DtDouble | DataType::DtHalf | DataType::DtBfloat16
            )
        })
        .ok_or_else(|| Error::OutputDtype {
            signature: opts.signature.clone(),
            output: output_key.clone(),
            dtype: dtype_name(output_info.dtype),
        })?;
    let classes = match dims(output_info.tensor_shape.as_ref()).as_deref() {
        Some([_, n]) if *n > 0 => *n as usize,
        _ => {
            return Err(Error::OutputShape {
                signature: opts.signature.clone(),
                output: output_key.clone(),
                shape: shape_text(output_info.tensor_shape.as_ref()),
            })
        }
    };
    let is_softmax = softmax::produced_by_softmax(graph, &output_tensor);
    match (is_softmax, opts.apply_softmax) {
        (false, false) => {
            return Err(Error::NotSoftmax {
                signature: opts.signature.clone(),
                output: output_key,
            })
        }
        (true, true) => {
            return Err(Error::AlreadySoftmax {
                signature: opts.signature.clone(),
                output: output_key,
            })
        }
        _ => {}
    }

    let (labels, source) = read_labels(&opts.labels, &model.dir)?;
    if labels.len() != classes {
        return Err(Error::LabelCount {
            origin: source,
            labels: labels.len(),
            output: output_key,
            classes,
        });
    }
    let top_k = match opts.top_k {
        None => classes,
        Some(k) if (1..=classes).contains(&k) => k,
        Some(k) => return Err(Error::TopK { k, classes }),
    };

    let feeds = feeds(opts, sig)?;
    let has_image = feeds
        .iter()
        .any(|f| f.kind == FeatureKind::Image && f.dtype == DataType::DtFloat);
    if opts.image_scale.is_some() && !has_image {
        return Err(Error::ScaleWithoutImage);
    }
    let renamed_default = (opts.make_default
        && meta.signature_def.contains_key(DEFAULT_SIGNATURE_KEY))
    .then(|| opts.rename_default_to.clone());
    Ok(Plan {
        meta_index,
        output_key,
        classes,
        renamed_default,
        head: ClassifyHead {
            key: opts.name.clone(),
            make_default: opts.make_default.then(|| opts.rename_default_to.clone()),
            wrapped_signature: opts.signature.clone(),
            output_tensor,
            output_dtype,
            labels,
            top_k,
            feeds,
            image_scale: opts.image_scale.unwrap_or(ImageScale::Unit),
            apply_softmax: opts.apply_softmax,
        },
    })
}

fn check_keys(opts: &AddClassifyOptions, meta: &tf::MetaGraphDef, dir: &Path) -> Result<(), Error> {
    for key in [&opts.name, &opts.rename_default_to] {
        if signature::RESERVED_KEYS.contains(&key.as_str()) {
            return Err(Error::ReservedKey { key: key.clone() });
        }
    }
    let exists = |key: &str| meta.signature_def.contains_key(key);
    // With --make-default the old default moves away, so its key is free.
    let moving_default = opts.make_default && exists(DEFAULT_SIGNATURE_KEY);
    if exists(&opts.name)
        && !opts.edit.force
        && !(moving_default && opts.name == DEFAULT_SIGNATURE_KEY)
    {
        return Err(Error::KeyExists {
            key: opts.name.clone(),
            path: dir.to_path_buf(),
        });
    }
    if moving_default {
        if opts.rename_default_to == opts.name {
            return Err(Error::RenameClash {
                key: opts.name.clone(),
            });
        }
        if exists(&opts.rename_default_to) && !opts.edit.force {
            return Err(Error::KeyExists {
                key: opts.rename_default_to.clone(),
                path: dir.to_path_buf(),
            });
        }
    }
    Ok(())
}

fn choose_output<'a>(
    opts: &AddClassifyOptions,
    sig: &'a tf::SignatureDef,
    graph: &tf::GraphDef,
) -> Result<(String, &'a tf::TensorInfo), Error> {
    let keys: Vec<String> = sig.outputs.keys().cloned().collect();
    if let Some(wanted) = &opts.output {
        return sig
            .outputs
            .get(wanted)
            .map(|info| (wanted.clone(), info))
            .ok_or_else(|| Error::UnknownOutput {
                signature: opts.signature.clone(),
                wanted: wanted.clone(),
                available: keys.clone(),
            });
    }
    if sig.outputs.len() == 1 {
        if let Some((k, v)) = sig.outputs.iter().next() {
            return Ok((k.clone(), v));
        }
    }
    let softmaxes: Vec<(&String, &tf::TensorInfo)> = sig
        .outputs
        .iter()
        .filter(|(_, info)| {
            tensor_name(info).is_some_and(|t| softmax::produced_by_softmax(graph, t))
        })
        .collect();
    match softmaxes.as_slice() {
        [(k, v)] => Ok(((*k).clone(), v)),
        _ => Err(Error::AmbiguousOutput {
            signature: opts.signature.clone(),
            outputs: keys,
            reason: if softmaxes.is_empty() {
                "none of them comes from a Softmax"
            } else {
                "more than one comes from a Softmax"
            },
        }),
    }
}

/// The labels, one per line, and a description of where they came from for messages.
fn read_labels(source: &LabelSource, model_dir: &Path) -> Result<(Vec<String>, String), Error> {
    let (path, described) = match source {
        LabelSource::File(p) => (p.clone(), format!("file '{}'", p.display())),
        LabelSource::Asset(name) => {
            let described = format!("asset '{name}'");
            let safe = Path::new(name)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            let path = model_dir.join(savedmodel::ASSETS_DIR).join(name);
            if !safe || !path.is_file() {
                let available: Vec<String> =
                    savedmodel::list_files(model_dir, savedmodel::ASSETS_DIR)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|f| f.path.strip_prefix("assets/").unwrap_or(&f.path).to_owned())
                        .collect();
                return Err(Error::Labels {
                    origin: described,
                    detail: format!(
                        "no such file in the model's assets/ (available: {}); use --labels FILE for a file elsewhere",
                        list(&available)
                    ),
                });
            }
            if let Some(target) = savedmodel::escapes_model(model_dir, &path) {
                return Err(Error::Labels {
                    origin: described,
                    detail: format!(
                        "it is a symlink to '{}', outside the model directory; copy the file \
                         into assets/ or use --labels FILE",
                        target.display()
                    ),
                });
            }
            (path, described)
        }
    };
    let limit = crate::files::LABEL_FILE_LIMIT;
    let bytes =
        crate::files::read_capped(&path, limit, "a label file").map_err(|e| Error::Labels {
            origin: described.clone(),
            detail: format!("cannot read it: {e}"),
        })?;
    let text = String::from_utf8(bytes).map_err(|e| Error::Labels {
        origin: described.clone(),
        detail: format!("not UTF-8 text ({e})"),
    })?;
    let labels = parse_labels(&text).map_err(|detail| Error::Labels {
        origin: described.clone(),
        detail,
    })?;
    Ok((labels, described))
}

/// One label per line (`\n` or `\r\n`); a final newline is optional. Empty lines and repeated
/// labels are mistakes, not something to skip silently: the line number is the class index + 1.
fn parse_labels(text: &str) -> Result<Vec<String>, String> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.trim().is_empty() {
        return Err("it is empty; write one class name per line, in class-index order".into());
    }
    let mut labels: Vec<String> = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, line) in body.split('\n').enumerate() {
        let label = line.strip_suffix('\r').unwrap_or(line);
        if label.trim().is_empty() {
            return Err(format!(
                "line {} is empty; every class needs a name (one per line)",
                i + 1
            ));
        }
        if let Some(first) = seen.insert(label, i + 1) {
            return Err(format!(
                "'{label}' appears on lines {first} and {}; labels must be unique",
                i + 1
            ));
        }
        labels.push(label.to_owned());
    }
    Ok(labels)
}

fn feeds(opts: &AddClassifyOptions, sig: &tf::SignatureDef) -> Result<Vec<Feed>, Error> {
    let mut specs: BTreeMap<&str, &FeatureSpec> = BTreeMap::new();
    for spec in &opts.features {
        if !sig.inputs.contains_key(&spec.input) {
            return Err(Error::UnknownInput {
                signature: opts.signature.clone(),
                input: spec.input.clone(),
                available: sig.inputs.keys().cloned().collect(),
            });
        }
        if specs.insert(&spec.input, spec).is_some() {
            return Err(Error::DuplicateInput {
                input: spec.input.clone(),
            });
        }
    }
    let mut feeds = Vec::new();
    let mut features: BTreeMap<String, String> = BTreeMap::new();
    for (input, info) in &sig.inputs {
        let spec = specs.get(input.as_str());
        let tensor = tensor_name(info)
            .ok_or_else(|| Error::InputNotDense {
                input: input.clone(),
            })?
            .to_owned();
        let dtype_text = dtype_name(info.dtype);
        let kind = match spec {
            Some(s) => s.kind,
            None => FeatureKind::default_for(info.dtype).ok_or_else(|| Error::KindDtype {
                input: input.clone(),
                kind: "float, int64 or bytes",
                dtype: dtype_text.clone(),
                hint: "no tf.Example feature holds this type".into(),
            })?,
        };
        let dtype = DataType::try_from(info.dtype)
            .ok()
            .filter(|d| kind.feeds().contains(d))
            .ok_or_else(|| Error::KindDtype {
                input: input.clone(),
                kind: kind.name(),
                dtype: dtype_text.clone(),
                hint: match FeatureKind::default_for(info.dtype) {
                    Some(k) => format!("use --feature {input}={}", k.name()),
                    None => "no tf.Example feature holds this type".into(),
                },
            })?;
        let shape = shape_text(info.tensor_shape.as_ref());
        let bad_shape = |detail: &str| Error::InputShape {
            input: input.clone(),
            shape: shape.clone(),
            detail: detail.to_owned(),
        };
        let all = dims(info.tensor_shape.as_ref())
            .ok_or_else(|| bad_shape("a tf.Example feature needs a known shape per example"))?;
        let Some((_, example_shape)) = all.split_first() else {
            return Err(bad_shape(
                "it has no batch dimension, so it cannot take one row per tf.Example",
            ));
        };
        if example_shape.iter().any(|d| *d < 0) {
            return Err(bad_shape(
                "every dimension but the first (the batch) must be known to parse a dense tf.Example feature",
            ));
        }
        if kind == FeatureKind::Image {
            match example_shape {
                [h, w, c] if *h > 0 && *w > 0 && matches!(c, 1 | 3 | 4) => {}
                _ => {
                    return Err(bad_shape(
                        "an image feature needs an input shaped (-1, height, width, channels) with 1, 3 or 4 channels",
                    ))
                }
            }
        }
        let feature = spec
            .and_then(|s| s.feature.clone())
            .unwrap_or_else(|| input.clone());
        if let Some(first) = features.insert(feature.clone(), input.clone()) {
            return Err(Error::DuplicateFeature {
                feature,
                first,
                second: input.clone(),
            });
        }
        feeds.push(Feed {
            input: input.clone(),
            tensor,
            feature,
            kind,
            dtype,
            example_shape: example_shape.to_vec(),
        });
    }
    Ok(feeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_specs_parse() {
        let cases: [(&str, Result<FeatureSpec, &str>); 6] = [
            (
                "x=image",
                Ok(FeatureSpec {
                    input: "x".into(),
                    kind: FeatureKind::Image,
                    feature: None,
                }),
            ),
            (
                "x=float:pixels",
                Ok(FeatureSpec {
                    input: "x".into(),
                    kind: FeatureKind::Float,
                    feature: Some("pixels".into()),
                }),
            ),
            ("x", Err("is not INPUT=KIND")),
            ("=float", Err("names no input")),
            ("x=jpeg", Err("unknown feature kind 'jpeg'")),
            ("x=float:", Err("empty feature name")),
        ];
        for (text, want) in cases {
            match (text.parse::<FeatureSpec>(), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn labels_parse_strictly() {
        assert_eq!(parse_labels("a\nb\n").unwrap(), ["a", "b"]);
        assert_eq!(parse_labels("a\r\nb").unwrap(), ["a", "b"]);
        assert_eq!(parse_labels("big cat\n").unwrap(), ["big cat"]);
        for (text, want) in [
            ("", "it is empty"),
            ("\n", "it is empty"),
            ("a\n\nb\n", "line 2 is empty"),
            ("a\nb\na\n", "'a' appears on lines 1 and 3"),
            ("a\nb\n\n", "line 3 is empty"),
        ] {
            let err = parse_labels(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
