//! One loaded version of a model (a servable): its TensorFlow session and the meta graph
//! TensorFlow loaded, and how a version directory is loaded, with the checks the server makes
//! before and after TensorFlow's load.

use std::path::Path;

use prost::Message;

use super::config;
use super::error::{Code, ServeError};
use super::tf::{Session, TensorFlow};
use super::version_dir::{self, Scan};
use crate::proto::tensorflow as tfp;

/// The tag-set TensorFlow Serving loads.
pub const SERVE_TAG: &str = "serve";

/// A loaded version: its session and the meta graph TensorFlow loaded.
pub struct Servable {
    pub name: String,
    pub version: i64,
    pub meta_graph: tfp::MetaGraphDef,
    pub session: Session,
}

/// How SavedModels are loaded: the session config and the tag-set of the meta graph.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// The `ConfigProto` of every session (thread pools, GPU memory).
    pub session_config: tfp::ConfigProto,
    /// The tag-set of the meta graph loaded (`--saved_model_tags`; TF Serving's is `serve`).
    pub tags: Vec<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            session_config: tfp::ConfigProto::default(),
            tags: vec![SERVE_TAG.to_owned()],
        }
    }
}

impl Servable {
    /// Loads the SavedModel in `dir` into a session, as TensorFlow's loader does, with no
    /// check of the directory (see [`load_version`]).
    pub fn load(
        tf: &'static TensorFlow,
        name: &str,
        version: i64,
        dir: &Path,
        options: &LoadOptions,
    ) -> Result<Servable, ServeError> {
        let tags: Vec<&str> = options.tags.iter().map(String::as_str).collect();
        let config = options.session_config.encode_to_vec();
        let (session, meta) = Session::load(tf, dir, &tags, &config)?;
        let meta_graph = tfp::MetaGraphDef::decode(meta.as_slice()).map_err(|e| {
            ServeError::new(
                Code::Internal,
                format!("cannot decode the MetaGraphDef TensorFlow loaded: {e}"),
            )
        })?;
        Ok(Servable {
            name: name.to_owned(),
            version,
            meta_graph,
            session,
        })
    }
}

/// Loads one version directory as the server does: refuses a directory TensorFlow must not
/// open (`scan` is [`version_dir::scan`] of it), loads it, and checks that a graph that
/// restores variables found them.
pub fn load_version(
    tf: &'static TensorFlow,
    name: &str,
    version: i64,
    dir: &Path,
    scan: &Scan,
    options: &LoadOptions,
) -> Result<Servable, ServeError> {
    check_dir(scan)?;
    let servable = Servable::load(tf, name, version, dir, options)?;
    check_variables(&servable, dir, scan)?;
    Ok(servable)
}

/// Refuses a version directory with files TensorFlow must not be handed (FIFOs, devices...).
pub fn check_dir(scan: &Scan) -> Result<(), ServeError> {
    match &scan.refused {
        Some(why) => Err(ServeError::new(Code::FailedPrecondition, why.clone())),
        None => Ok(()),
    }
}

/// TensorFlow loads a graph whose variables index is missing with its variables
/// uninitialized (every request would then fail): such a version is not complete yet.
pub fn check_variables(servable: &Servable, dir: &Path, scan: &Scan) -> Result<(), ServeError> {
    let restores = servable
        .meta_graph
        .saver_def
        .as_ref()
        .is_some_and(|s| !s.restore_op_name.is_empty());
    if restores && !scan.has_variables_index {
        return Err(ServeError::new(
            Code::NotFound,
            format!(
                "'{}' is missing, but the graph restores its variables from it (is the version still being copied?)",
                dir.join(version_dir::VARIABLES_INDEX).display()
            ),
        ));
    }
    Ok(())
}

/// The version a path names, loaded as `smtool serve` would serve it: a SavedModel directory
/// as version 1; in a base path of numbered versions, version `version`, or the highest one
/// when `None`. The checks of [`load_version`] apply; errors name the model and the path.
pub fn load_path(
    tf: &'static TensorFlow,
    name: &str,
    path: &Path,
    version: Option<i64>,
    options: &LoadOptions,
) -> anyhow::Result<Servable> {
    let model = config::model_from_path(name, path)?;
    let (version, dir) = if model.single {
        if let Some(v) = version {
            anyhow::bail!(
                "version {v}: '{}' is a SavedModel directory, not a base path of numbered versions",
                path.display()
            );
        }
        (config::SINGLE_VERSION, model.path)
    } else {
        let versions = crate::savedmodel::versions(&model.path)
            .map_err(|e| anyhow::anyhow!("model '{name}': {e}"))?;
        let found = match version {
            Some(v) => versions.into_iter().find(|found| found.number == v),
            None => versions.into_iter().next_back(),
        };
        let found = found.ok_or_else(|| match version {
            Some(v) => anyhow::anyhow!(
                "model '{name}': '{}' has no version {v} (versions are its numbered subdirectories)",
                model.path.display()
            ),
            None => anyhow::anyhow!(
                "model '{name}': '{}' has no version to load (no numbered subdirectory)",
                model.path.display()
            ),
        })?;
        (found.number, found.dir)
    };
    let scan = version_dir::scan(&dir);
    load_version(tf, name, version, &dir, &scan, options).map_err(|e| {
        anyhow::anyhow!(
            "model '{name}' version {version} ('{}') failed to load: {e}",
            dir.display()
        )
    })
}
