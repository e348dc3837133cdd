//! Reading a SavedModel directory from disk: where it is (`locate`), its graph file (`SavedModel`
//! proto, binary or text), its variables index (`bundle`), assets and fingerprint.

pub mod bundle;
pub mod crc;
mod locate;
pub mod tfrecord;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::proto::tensorflow as tf;

pub use locate::{locate, parse_version, pick_version, versions, Location, Version};

/// File names inside a SavedModel directory.
pub const PB_FILE: &str = "saved_model.pb";
pub const PBTXT_FILE: &str = "saved_model.pbtxt";
pub const FINGERPRINT_FILE: &str = "fingerprint.pb";
pub const VARIABLES_DIR: &str = "variables";
pub const VARIABLES_INDEX: &str = "variables/variables.index";
pub const ASSETS_DIR: &str = "assets";
pub const ASSETS_EXTRA_DIR: &str = "assets.extra";
/// TF Serving's warmup requests (a TFRecord file of `PredictionLog`s), replayed before a version
/// serves.
pub const WARMUP_FILE: &str = "assets.extra/tf_serving_warmup_requests";

/// Errors a user can cause by pointing smtool at the wrong thing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("'{}' does not exist; check the path", .0.display())]
    NotFound(PathBuf),
    #[error(
        "'{}' holds no saved_model.pb or saved_model.pbtxt and no numbered version directories; \
         point at a SavedModel directory or a model base path",
        .0.display()
    )]
    NoGraph(PathBuf),
    #[error("'{}' is not a SavedModel file (expected saved_model.pb or saved_model.pbtxt)", .0.display())]
    NotAGraphFile(PathBuf),
    #[error("cannot read '{}': {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("'{}' is truncated or corrupt ({detail}); re-export the model or restore the file", path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// Not a regular file, or larger than smtool reads.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// A path in object storage that could not be used.
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
    #[error("no version {wanted} in model base path '{}' (available: {})", path.display(), list(available))]
    NoVersion {
        path: PathBuf,
        wanted: i64,
        available: Vec<i64>,
    },
    #[error("'{}' is a single SavedModel, not a model base path with numbered versions; drop --version", .0.display())]
    NotVersioned(PathBuf),
    #[error("no meta graph with tag-set '{wanted}' in '{}' (available: {})", path.display(), list(available))]
    NoTagSet {
        path: PathBuf,
        wanted: String,
        available: Vec<String>,
    },
    #[error("no signature '{wanted}' in tag-set '{tags}' of '{}' (available: {})", path.display(), list(available))]
    NoSignature {
        path: PathBuf,
        tags: String,
        wanted: String,
        available: Vec<String>,
    },
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    items
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Which serialization the graph file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphFormat {
    Binary,
    Text,
}

/// One SavedModel directory and its parsed graph file.
#[derive(Debug)]
pub struct SavedModelDir {
    pub dir: PathBuf,
    pub graph_file: PathBuf,
    pub format: GraphFormat,
    pub saved_model: tf::SavedModel,
}

impl SavedModelDir {
    /// Finds the graph file of the SavedModel in `dir` (binary preferred, as TensorFlow does).
    pub fn graph_file(dir: &Path) -> Option<(PathBuf, GraphFormat)> {
        let pb = dir.join(PB_FILE);
        if pb.is_file() {
            return Some((pb, GraphFormat::Binary));
        }
        let pbtxt = dir.join(PBTXT_FILE);
        pbtxt.is_file().then_some((pbtxt, GraphFormat::Text))
    }

    /// Opens the SavedModel in `dir`.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        Self::open_at(dir, None)
    }

    /// Opens the SavedModel in `dir`, reading `file` when the user named the graph file itself.
    pub fn open_at(dir: &Path, file: Option<&Path>) -> Result<Self, Error> {
        if !dir.exists() {
            return Err(Error::NotFound(dir.to_path_buf()));
        }
        let (graph_file, format) = match file {
            Some(f) if f.file_name().is_some_and(|n| n == PBTXT_FILE) => {
                (f.to_path_buf(), GraphFormat::Text)
            }
            Some(f) => (f.to_path_buf(), GraphFormat::Binary),
            None => Self::graph_file(dir).ok_or_else(|| Error::NoGraph(dir.to_path_buf()))?,
        };
        let bytes =
            crate::files::read_capped(&graph_file, crate::files::GRAPH_FILE_LIMIT, "a graph file")?;
        let saved_model = match format {
            GraphFormat::Binary => decode_binary(&bytes, &graph_file)?,
            GraphFormat::Text => decode_text(&bytes, &graph_file)?,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            graph_file,
            format,
            saved_model,
        })
    }

    /// The meta graph whose tag-set equals `tags` exactly (order does not matter), or the only
    /// one / the `serve` one when `tags` is `None`.
    pub fn meta_graph(&self, tags: Option<&[String]>) -> Result<&tf::MetaGraphDef, Error> {
        let graphs = &self.saved_model.meta_graphs;
        let found = match tags {
            Some(wanted) => graphs.iter().find(|g| same_tags(&tag_list(g), wanted)),
            None if graphs.len() == 1 => graphs.first(),
            None => graphs
                .iter()
                .find(|g| same_tags(&tag_list(g), &["serve".to_owned()])),
        };
        found.ok_or_else(|| Error::NoTagSet {
            path: self.dir.clone(),
            wanted: tags.map(|t| t.join(",")).unwrap_or_else(|| "serve".into()),
            available: graphs.iter().map(|g| tag_list(g).join(",")).collect(),
        })
    }
}

/// The tags of a meta graph, as written.
pub fn tag_list(graph: &tf::MetaGraphDef) -> Vec<String> {
    graph
        .meta_info_def
        .as_ref()
        .map(|m| m.tags.clone())
        .unwrap_or_default()
}

/// TensorFlow matches tag-sets as sets: `serve,gpu` equals `gpu,serve`.
pub fn same_tags(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut b: Vec<&str> = b.iter().map(String::as_str).collect();
    a.sort_unstable();
    a.dedup();
    b.sort_unstable();
    b.dedup();
    a == b
}

/// Parses `serve,gpu` into tags.
pub fn parse_tag_set(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn decode_binary(bytes: &[u8], path: &Path) -> Result<tf::SavedModel, Error> {
    let model = tf::SavedModel::decode(bytes).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if model.meta_graphs.is_empty() {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            detail: "it holds no meta graph".into(),
        });
    }
    Ok(model)
}

pub(crate) fn decode_text(bytes: &[u8], path: &Path) -> Result<tf::SavedModel, Error> {
    let corrupt = |detail: String| Error::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| corrupt(format!("not UTF-8 text: {e}")))?;
    let model: tf::SavedModel =
        crate::proto_ext::parse_text_format(text, "tensorflow.SavedModel").map_err(corrupt)?;
    if model.meta_graphs.is_empty() {
        return Err(corrupt("it holds no meta graph".into()));
    }
    Ok(model)
}

/// Reads `fingerprint.pb`, if the model has one.
pub fn read_fingerprint(dir: &Path) -> Result<Option<tf::FingerprintDef>, Error> {
    let path = dir.join(FINGERPRINT_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = crate::files::read_capped(
        &path,
        crate::files::FINGERPRINT_FILE_LIMIT,
        "a fingerprint file",
    )?;
    tf::FingerprintDef::decode(bytes.as_slice())
        .map(Some)
        .map_err(|e| Error::Corrupt {
            path,
            detail: e.to_string(),
        })
}

/// A file under `assets/` or `assets.extra/`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileEntry {
    /// Path relative to the model directory, with `/` separators.
    pub path: String,
    pub bytes: u64,
}

/// Every regular file under `dir/sub`, sorted by path.
pub fn list_files(dir: &Path, sub: &str) -> Result<Vec<FileEntry>, Error> {
    let root = dir.join(sub);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let entry = entry.map_err(|e| Error::Io {
            path: root.clone(),
            source: e.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let meta = entry.metadata().map_err(|e| Error::Io {
            path: entry.path().to_path_buf(),
            source: e.into(),
        })?;
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        files.push(FileEntry {
            path: rel.join("/"),
            bytes: meta.len(),
        });
    }
    Ok(files)
}

/// Where `path`, a path inside the model directory `dir`, really leads when symlinks take it
/// outside `dir`; `None` when it stays inside or does not exist. A dangling link counts as leading
/// out when its target is absolute or climbs with `..`.
pub fn escapes_model(dir: &Path, path: &Path) -> Option<PathBuf> {
    let root = dir.canonicalize().ok()?;
    match path.canonicalize() {
        Ok(real) => (!real.starts_with(&root)).then_some(real),
        Err(_) => {
            let target = std::fs::read_link(path).ok()?;
            let climbs = target.is_absolute()
                || target
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir));
            climbs.then(|| path.parent().map_or(target.clone(), |p| p.join(&target)))
        }
    }
}

/// Why an asset file name from a meta graph is not a plain relative path under `assets/`
/// (absolute, or climbing out with `..`); `None` when it is one.
pub fn unsafe_asset_name(name: &str) -> Option<&'static str> {
    use std::path::Component;
    let path = Path::new(name);
    // Both separators count: a model may be written on one system and served on another.
    if path.has_root()
        || name.starts_with(['/', '\\'])
        || path.components().any(|c| matches!(c, Component::Prefix(_)))
    {
        return Some("is an absolute path");
    }
    if name.split(['/', '\\']).any(|part| part == "..") {
        return Some("climbs out of assets/ with '..'");
    }
    None
}

/// The asset files a meta graph names: `asset_file_def`, else the legacy `saved_model_assets`
/// collection. Keyed by the graph tensor that receives the path.
pub fn declared_assets(graph: &tf::MetaGraphDef) -> BTreeMap<String, String> {
    let mut assets = BTreeMap::new();
    for def in &graph.asset_file_def {
        let tensor = def
            .tensor_info
            .as_ref()
            .and_then(crate::proto_ext::tensor_name)
            .unwrap_or_default();
        assets.insert(tensor.to_owned(), def.filename.clone());
    }
    if assets.is_empty() {
        if let Some(tf::collection_def::Kind::AnyList(list)) = graph
            .collection_def
            .get("saved_model_assets")
            .and_then(|c| c.kind.as_ref())
        {
            for any in &list.value {
                if let Ok(def) = tf::AssetFileDef::decode(any.value.as_slice()) {
                    let tensor = def
                        .tensor_info
                        .as_ref()
                        .and_then(crate::proto_ext::tensor_name)
                        .unwrap_or_default();
                    assets.insert(tensor.to_owned(), def.filename);
                }
            }
        }
    }
    assets
}

/// Where the init op came from; TensorFlow looks in this order and runs exactly one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InitOpSource {
    /// `signature_def["__saved_model_init_op"]`
    Signature,
    /// the `saved_model_main_op` collection
    MainOp,
    /// the `legacy_init_op` collection
    LegacyInitOp,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct InitOp {
    pub source: InitOpSource,
    /// Node names found there (TensorFlow requires exactly one).
    pub names: Vec<String>,
}

pub const INIT_OP_KEY: &str = "__saved_model_init_op";
pub const TRAIN_OP_KEY: &str = "__saved_model_train_op";
pub const MAIN_OP_COLLECTION: &str = "saved_model_main_op";
pub const LEGACY_INIT_OP_COLLECTION: &str = "legacy_init_op";

/// Resolves the init op the way TensorFlow's loader does.
pub fn init_op(graph: &tf::MetaGraphDef) -> Option<InitOp> {
    if let Some(sig) = graph.signature_def.get(INIT_OP_KEY) {
        let names = sig
            .outputs
            .get(INIT_OP_KEY)
            .and_then(crate::proto_ext::tensor_name)
            .map(|n| vec![n.to_owned()])
            .unwrap_or_default();
        return Some(InitOp {
            source: InitOpSource::Signature,
            names,
        });
    }
    for (collection, source) in [
        (MAIN_OP_COLLECTION, InitOpSource::MainOp),
        (LEGACY_INIT_OP_COLLECTION, InitOpSource::LegacyInitOp),
    ] {
        if let Some(tf::collection_def::Kind::NodeList(list)) = graph
            .collection_def
            .get(collection)
            .and_then(|c| c.kind.as_ref())
        {
            return Some(InitOp {
                source,
                names: list.value.clone(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_names_must_stay_under_assets() {
        for (name, bad) in [
            ("vocab.txt", None),
            ("sub/vocab.txt", None),
            ("./vocab.txt", None),
            ("a..b.txt", None),
            ("/etc/passwd", Some("absolute")),
            ("\\\\share\\x", Some("absolute")),
            ("../x", Some("..")),
            ("sub/../../x", Some("..")),
            ("sub\\..\\..\\x", Some("..")),
        ] {
            let got = unsafe_asset_name(name);
            match bad {
                None => assert_eq!(got, None, "{name}"),
                Some(word) => assert!(got.is_some_and(|g| g.contains(word)), "{name}: {got:?}"),
            }
        }
    }
}
