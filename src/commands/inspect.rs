//! `smtool inspect`: the facts of a SavedModel, read from disk without TensorFlow.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ops::{self, OpCount};
use crate::proto::tensorflow as tf;
use crate::proto_ext::{dims, dtype_name, shape_text};
use crate::savedmodel::bundle::BundleIndex;
use crate::savedmodel::{self, Error, FileEntry, InitOp, Location, SavedModelDir};
use crate::signature::{self, Endpoint};

/// Which versions of a model base path to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VersionSelect {
    /// The highest version number (what TF Serving serves by default).
    #[default]
    Latest,
    Specific(i64),
    All,
}

/// Validated options of `smtool inspect`.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    pub path: PathBuf,
    pub versions: VersionSelect,
    /// Only the meta graph with exactly this tag-set.
    pub tag_set: Option<Vec<String>>,
    /// Only this signature.
    pub signature: Option<String>,
    /// Variables, assets, init op, ops and fingerprint too.
    pub all: bool,
}

/// Everything `inspect` found; the JSON document is this struct (see docs/inspect-json.md).
#[derive(Debug, Serialize)]
pub struct InspectReport {
    pub smtool_version: &'static str,
    pub models: Vec<ModelReport>,
}

#[derive(Debug, Serialize)]
pub struct ModelReport {
    /// The SavedModel directory.
    pub path: String,
    /// The version number when the path is a model base path.
    pub version: Option<i64>,
    /// All versions of the base path, ascending (empty for a single SavedModel).
    pub available_versions: Vec<i64>,
    pub graph_file: String,
    pub graph_format: savedmodel::GraphFormat,
    pub saved_model_schema_version: i64,
    pub meta_graphs: Vec<MetaGraphReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variables: Option<VariablesReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assets: Option<Vec<FileEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assets_extra: Option<Vec<FileEntry>>,
    /// `null` when the model has no fingerprint.pb (written by TensorFlow 2.12 and later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Option<FingerprintReport>>,
}

#[derive(Debug, Serialize)]
pub struct MetaGraphReport {
    pub tags: Vec<String>,
    pub tensorflow_version: String,
    pub tensorflow_git_version: String,
    /// Nodes in the top-level graph.
    pub node_count: usize,
    pub function_count: usize,
    /// Distinct ops used in the graph and its function library.
    pub op_count: usize,
    pub signatures: Vec<SignatureReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_op: Option<Option<InitOp>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_assets: Option<Vec<DeclaredAsset>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<Vec<OpCount>>,
}

#[derive(Debug, Serialize)]
pub struct DeclaredAsset {
    /// The graph tensor that receives the asset's path at load time.
    pub tensor: String,
    /// File name under `assets/`.
    pub filename: String,
}

#[derive(Debug, Serialize)]
pub struct SignatureReport {
    pub key: String,
    pub method_name: String,
    /// TF Serving endpoints that accept this signature.
    pub endpoints: Vec<Endpoint>,
    pub inputs: Vec<TensorReport>,
    pub outputs: Vec<TensorReport>,
    /// Keys of inputs that have a default value.
    pub defaults: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TensorReport {
    pub key: String,
    pub dtype: String,
    /// Dimensions, -1 unknown; `null` for unknown rank.
    pub shape: Option<Vec<i64>>,
    /// The shape as saved_model_cli prints it.
    pub shape_text: String,
    /// `name`, `coo_sparse`, `composite_tensor` or `none`.
    pub encoding: &'static str,
    /// Tensor name (`name` encoding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coo_sparse: Option<CooSparseReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<TensorReport>>,
}

#[derive(Debug, Serialize)]
pub struct CooSparseReport {
    pub values: String,
    pub indices: String,
    pub dense_shape: String,
}

#[derive(Debug, Serialize)]
pub struct VariablesReport {
    /// False when the model has no `variables/variables.index`.
    pub present: bool,
    pub num_shards: i32,
    pub total_bytes: u64,
    pub entries: Vec<VariableReport>,
}

#[derive(Debug, Serialize)]
pub struct VariableReport {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<i64>,
    pub shape_text: String,
    /// Bytes the tensor takes in its data shard.
    pub bytes: u64,
    pub shard: i32,
}

/// `fingerprint.pb`; 64-bit hashes as decimal strings (JSON numbers lose precision past 2^53).
#[derive(Debug, Serialize)]
pub struct FingerprintReport {
    pub saved_model_checksum: String,
    pub graph_def_program_hash: String,
    pub signature_def_hash: String,
    pub saved_object_graph_hash: String,
    pub checkpoint_hash: String,
    pub uuid: String,
    pub producer: Option<i32>,
}

/// Runs `inspect`.
pub fn run(opts: &InspectOptions) -> Result<InspectReport, Error> {
    #[cfg(feature = "storage")]
    if let Some(url) = crate::storage::remote_url(&opts.path)? {
        return Ok(super::remote::inspect(opts, &url)?);
    }
    #[cfg(not(feature = "storage"))]
    crate::storage::remote_url(&opts.path)?;
    let location = savedmodel::locate(&opts.path)?;
    let mut models = Vec::new();
    match location {
        Location::Model { dir, file } => {
            if let VersionSelect::Specific(_) = opts.versions {
                return Err(Error::NotVersioned(opts.path.clone()));
            }
            let model = SavedModelDir::open_at(&dir, file.as_deref())?;
            models.push(model_report(&model, None, Vec::new(), opts)?);
        }
        Location::BasePath { dir, versions } => {
            let available: Vec<i64> = versions.iter().map(|v| v.number).collect();
            let chosen: Vec<_> = match opts.versions {
                VersionSelect::All => versions.iter().collect(),
                VersionSelect::Latest => vec![savedmodel::pick_version(&dir, &versions, None)?],
                VersionSelect::Specific(n) => {
                    vec![savedmodel::pick_version(&dir, &versions, Some(n))?]
                }
            };
            for v in chosen {
                let model = SavedModelDir::open(&v.dir)?;
                models.push(model_report(
                    &model,
                    Some(v.number),
                    available.clone(),
                    opts,
                )?);
            }
        }
    }
    Ok(InspectReport {
        smtool_version: env!("CARGO_PKG_VERSION"),
        models,
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn model_report(
    model: &SavedModelDir,
    version: Option<i64>,
    available_versions: Vec<i64>,
    opts: &InspectOptions,
) -> Result<ModelReport, Error> {
    let graphs: Vec<&tf::MetaGraphDef> = match &opts.tag_set {
        Some(tags) => vec![model.meta_graph(Some(tags))?],
        None => model.saved_model.meta_graphs.iter().collect(),
    };
    let meta_graphs = graphs
        .into_iter()
        .map(|g| meta_graph_report(model, g, opts))
        .collect::<Result<Vec<_>, _>>()?;
    let (variables, assets, assets_extra, fingerprint) = if opts.all {
        (
            Some(variables_report(&model.dir)?),
            Some(savedmodel::list_files(&model.dir, savedmodel::ASSETS_DIR)?),
            Some(savedmodel::list_files(
                &model.dir,
                savedmodel::ASSETS_EXTRA_DIR,
            )?),
            Some(savedmodel::read_fingerprint(&model.dir)?.map(fingerprint_report)),
        )
    } else {
        (None, None, None, None)
    };
    Ok(ModelReport {
        path: display(&model.dir),
        version,
        available_versions,
        graph_file: display(&model.graph_file),
        graph_format: model.format,
        saved_model_schema_version: model.saved_model.saved_model_schema_version,
        meta_graphs,
        variables,
        assets,
        assets_extra,
        fingerprint,
    })
}

fn meta_graph_report(
    model: &SavedModelDir,
    graph: &tf::MetaGraphDef,
    opts: &InspectOptions,
) -> Result<MetaGraphReport, Error> {
    let tags = savedmodel::tag_list(graph);
    let info = graph.meta_info_def.clone().unwrap_or_default();
    let empty = tf::GraphDef::default();
    let graph_def = graph.graph_def.as_ref().unwrap_or(&empty);
    let op_counts = ops::op_counts(graph_def);

    let signatures: Vec<SignatureReport> = match &opts.signature {
        Some(key) => {
            let sig = graph
                .signature_def
                .get(key)
                .ok_or_else(|| Error::NoSignature {
                    path: model.dir.clone(),
                    tags: tags.join(","),
                    wanted: key.clone(),
                    available: graph.signature_def.keys().cloned().collect(),
                })?;
            vec![signature_report(key, sig)]
        }
        None => graph
            .signature_def
            .iter()
            .map(|(k, s)| signature_report(k, s))
            .collect(),
    };
    let declared_assets = opts.all.then(|| {
        savedmodel::declared_assets(graph)
            .into_iter()
            .map(|(tensor, filename)| DeclaredAsset { tensor, filename })
            .collect()
    });
    Ok(MetaGraphReport {
        tags,
        tensorflow_version: info.tensorflow_version,
        tensorflow_git_version: info.tensorflow_git_version,
        node_count: graph_def.node.len(),
        function_count: ops::function_count(graph_def),
        op_count: op_counts.len(),
        signatures,
        init_op: opts.all.then(|| savedmodel::init_op(graph)),
        declared_assets,
        ops: opts.all.then_some(op_counts),
    })
}

fn signature_report(key: &str, sig: &tf::SignatureDef) -> SignatureReport {
    let tensors = |map: &std::collections::BTreeMap<String, tf::TensorInfo>| {
        map.iter().map(|(k, t)| tensor_report(k, t)).collect()
    };
    SignatureReport {
        key: key.to_owned(),
        method_name: sig.method_name.clone(),
        endpoints: signature::endpoints(key, sig),
        inputs: tensors(&sig.inputs),
        outputs: tensors(&sig.outputs),
        defaults: sig.defaults.keys().cloned().collect(),
    }
}

fn tensor_report(key: &str, info: &tf::TensorInfo) -> TensorReport {
    use tf::tensor_info::Encoding;
    let mut report = TensorReport {
        key: key.to_owned(),
        dtype: dtype_name(info.dtype),
        shape: dims(info.tensor_shape.as_ref()),
        shape_text: shape_text(info.tensor_shape.as_ref()),
        encoding: "none",
        name: None,
        coo_sparse: None,
        components: None,
    };
    match &info.encoding {
        Some(Encoding::Name(name)) => {
            report.encoding = "name";
            report.name = Some(name.clone());
        }
        Some(Encoding::CooSparse(c)) => {
            report.encoding = "coo_sparse";
            report.coo_sparse = Some(CooSparseReport {
                values: c.values_tensor_name.clone(),
                indices: c.indices_tensor_name.clone(),
                dense_shape: c.dense_shape_tensor_name.clone(),
            });
        }
        Some(Encoding::CompositeTensor(c)) => {
            report.encoding = "composite_tensor";
            report.components = Some(
                c.components
                    .iter()
                    .enumerate()
                    .map(|(i, t)| tensor_report(&i.to_string(), t))
                    .collect(),
            );
        }
        None => {}
    }
    report
}

fn variables_report(dir: &Path) -> Result<VariablesReport, Error> {
    let index_path = dir.join(savedmodel::VARIABLES_INDEX);
    if !index_path.is_file() {
        return Ok(VariablesReport {
            present: false,
            num_shards: 0,
            total_bytes: 0,
            entries: Vec::new(),
        });
    }
    let index = BundleIndex::read(&index_path).map_err(|e| Error::Corrupt {
        path: index_path.clone(),
        detail: match e {
            savedmodel::bundle::BundleError::Corrupt { error, .. } => error.to_string(),
            other => other.to_string(),
        },
    })?;
    let entries: Vec<VariableReport> = index
        .entries
        .iter()
        .map(|e| VariableReport {
            name: e.key.clone(),
            dtype: dtype_name(e.entry.dtype),
            shape: dims(e.entry.shape.as_ref()).unwrap_or_default(),
            shape_text: shape_text(e.entry.shape.as_ref()),
            bytes: u64::try_from(e.entry.size).unwrap_or(0),
            shard: e.entry.shard_id,
        })
        .collect();
    Ok(VariablesReport {
        present: true,
        num_shards: index.header.num_shards,
        total_bytes: entries.iter().map(|e| e.bytes).fold(0, u64::saturating_add),
        entries,
    })
}

fn fingerprint_report(f: tf::FingerprintDef) -> FingerprintReport {
    FingerprintReport {
        saved_model_checksum: f.saved_model_checksum.to_string(),
        graph_def_program_hash: f.graph_def_program_hash.to_string(),
        signature_def_hash: f.signature_def_hash.to_string(),
        saved_object_graph_hash: f.saved_object_graph_hash.to_string(),
        checkpoint_hash: f.checkpoint_hash.to_string(),
        uuid: f.uuid,
        producer: f.version.map(|v| v.producer),
    }
}
