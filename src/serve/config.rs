//! What to serve and how, as TF Serving's flags and config files say: the models named on the
//! command line or in `--model_config_file` ([`ModelConfig`], version policies and labels),
//! the rules a config reload (HandleReloadConfigRequest, or a re-read of the config file)
//! follows, the monitoring and batching config files, and the session's thread pools.
//! Reading a config never touches TensorFlow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

use super::error::{Code, ServeError};
use super::metrics;
use crate::proto::tensorflow as tfp;
use crate::proto::tensorflow::serving as sv;
use crate::savedmodel::{self, Location};

type Result<T, E = anyhow::Error> = std::result::Result<T, E>;

/// Which versions of a model to serve (TF Serving's `ServableVersionPolicy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionPolicy {
    /// The N highest version numbers (TF Serving's default is the latest one).
    Latest(u32),
    All,
    Specific(BTreeSet<i64>),
}

impl Default for VersionPolicy {
    fn default() -> Self {
        VersionPolicy::Latest(1)
    }
}

impl VersionPolicy {
    pub(super) fn select(&self, on_disk: &[i64]) -> BTreeSet<i64> {
        match self {
            VersionPolicy::Latest(n) => on_disk
                .iter()
                .rev()
                .take((*n).max(1) as usize)
                .copied()
                .collect(),
            VersionPolicy::All => on_disk.iter().copied().collect(),
            VersionPolicy::Specific(wanted) => on_disk
                .iter()
                .filter(|v| wanted.contains(v))
                .copied()
                .collect(),
        }
    }
}

/// One model to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    pub name: String,
    pub path: PathBuf,
    /// `path` is itself a SavedModel directory (served as version 1, never polled) rather than
    /// a base path of numbered versions.
    pub single: bool,
    pub policy: VersionPolicy,
    pub labels: BTreeMap<String, i64>,
}

/// The version number a SavedModel directory given directly (not a base path) is served as.
pub const SINGLE_VERSION: i64 = 1;

/// Reads a protobuf text file as TF Serving's `ParseProtoTextFile` does, with its wording
/// (protobuf's `Error parsing text-format TYPE: ...`, then `Invalid protobuf file: 'PATH'`),
/// which scripts grep for.
pub fn read_text_proto<M: prost::Message + Default>(
    path: &Path,
    full_name: &str,
    what: &str,
) -> Result<M> {
    let text =
        crate::files::read_text_capped(path, crate::files::CONFIG_FILE_LIMIT, "a config file")
            .with_context(|| format!("reading the {what}"))?;
    crate::proto_ext::parse_text_format(&text, full_name).map_err(|e| {
        anyhow::anyhow!(
            "Invalid protobuf file: '{}': Error parsing text-format {full_name}: {e}",
            path.display()
        )
    })
}

/// TF Serving's `--tensorflow_session_config_file`: a `ConfigProto` in protobuf text format.
pub fn session_config_from_file(path: &Path) -> Result<tfp::ConfigProto> {
    read_text_proto(
        path,
        "tensorflow.ConfigProto",
        "TensorFlow session config file",
    )
}

/// The metrics path from TF Serving's `--monitoring_config_file` (a `MonitoringConfig` in
/// protobuf text format); `None` when Prometheus export is not enabled.
pub fn monitoring_from_file(path: &Path) -> Result<Option<String>> {
    let config: sv::MonitoringConfig = read_text_proto(
        path,
        "tensorflow.serving.MonitoringConfig",
        "monitoring config file",
    )?;
    let Some(prometheus) = config.prometheus_config.filter(|p| p.enable) else {
        return Ok(None);
    };
    if prometheus.path.is_empty() {
        return Ok(Some(metrics::DEFAULT_PATH.to_owned()));
    }
    if !prometheus.path.starts_with('/') || prometheus.path.to_ascii_lowercase().starts_with("/v1/")
    {
        bail!(
            "'{}': prometheus_config path '{}' must start with '/' and not be under /v1/ (e.g. {})",
            path.display(),
            prometheus.path,
            metrics::DEFAULT_PATH
        );
    }
    Ok(Some(prometheus.path))
}
/// How the user named the models to serve.
#[derive(Debug, Clone, Default)]
pub struct ModelSources {
    /// PATH with an optional `--model-name`.
    pub path: Option<(PathBuf, Option<String>)>,
    /// `--model NAME=PATH`, repeated.
    pub named: Vec<(String, PathBuf)>,
    /// `--model_config_file`.
    pub config_file: Option<PathBuf>,
}

/// The default model name for a path: the base path's (or model directory's) last component.
fn default_name(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    abs.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

/// One model from a path: a SavedModel directory (version 1) or a base path.
pub fn model_from_path(name: &str, path: &Path) -> Result<ModelConfig> {
    // A remote base path is served from its local cache (see storage::cache).
    #[cfg(feature = "storage")]
    if let Some(url) = crate::storage::remote_url(path)? {
        let cached =
            crate::storage::cache::mirror(&url).with_context(|| format!("model '{name}'"))?;
        return model_from_path(name, &cached).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                format!("{e:#}").replace(&cached.display().to_string(), &url.to_string())
            )
        });
    }
    #[cfg(not(feature = "storage"))]
    crate::storage::remote_url(path)?;
    let location = savedmodel::locate(path).with_context(|| format!("model '{name}'"))?;
    let (dir, single) = match location {
        Location::Model { dir, file: None } => (dir, true),
        Location::Model { file: Some(f), .. } => bail!(
            "model '{name}': '{}' is a graph file; pass its directory (or a base path of numbered versions)",
            f.display()
        ),
        Location::BasePath { dir, .. } => (dir, false),
    };
    Ok(ModelConfig {
        name: name.to_owned(),
        path: dir,
        single,
        policy: VersionPolicy::default(),
        labels: BTreeMap::new(),
    })
}

/// Models from TF Serving's `--model_config_file` (a `ModelServerConfig` in text format).
pub fn models_from_config_file(path: &Path) -> Result<Vec<ModelConfig>> {
    let config: sv::ModelServerConfig = read_text_proto(
        path,
        "tensorflow.serving.ModelServerConfig",
        "model config file",
    )?;
    let list = match config.config {
        Some(sv::model_server_config::Config::ModelConfigList(list)) => list.config,
        Some(sv::model_server_config::Config::CustomModelConfig(_)) => bail!(
            "'{}': custom_model_config is not supported; use model_config_list",
            path.display()
        ),
        None => bail!("'{}' has no model_config_list", path.display()),
    };
    list.into_iter()
        .map(|c| model_from_config(c).map_err(|e| anyhow::anyhow!("'{}': {e:#}", path.display())))
        .collect()
}

/// The model one `ModelConfig` of a `model_config_list` describes: its base path (or
/// SavedModel directory), version policy and version labels.
pub fn model_from_config(c: sv::ModelConfig) -> Result<ModelConfig> {
    if c.name.is_empty() {
        bail!("a model config has no name");
    }
    if c.base_path.is_empty() {
        bail!("model '{}' has no base_path", c.name);
    }
    if !c.model_platform.is_empty() && c.model_platform != "tensorflow" {
        bail!(
            "model '{}' has model_platform '{}'; only 'tensorflow' is served",
            c.name,
            c.model_platform
        );
    }
    let mut model = model_from_path(&c.name, Path::new(&c.base_path))?;
    use sv::file_system_storage_path_source_config::servable_version_policy::PolicyChoice;
    model.policy = match c.model_version_policy.and_then(|p| p.policy_choice) {
        None => VersionPolicy::default(),
        Some(PolicyChoice::Latest(l)) => VersionPolicy::Latest(l.num_versions.max(1)),
        Some(PolicyChoice::All(_)) => VersionPolicy::All,
        Some(PolicyChoice::Specific(s)) => {
            if s.versions.is_empty() {
                bail!(
                    "model '{}' has a specific version policy with no versions",
                    c.name
                );
            }
            VersionPolicy::Specific(s.versions.into_iter().collect::<BTreeSet<_>>())
        }
    };
    model.labels = c.version_labels;
    #[cfg(feature = "storage")]
    if crate::storage::remote_url(Path::new(&c.base_path))?.is_some() {
        let policy = model.policy.clone();
        crate::storage::cache::select(
            &model.path,
            std::sync::Arc::new(move |n: &[i64]| policy.select(n)),
        )
        .with_context(|| format!("model '{}'", c.name))?;
    }
    Ok(model)
}

/// The models to serve; names must be unique.
pub fn resolve_models(sources: &ModelSources) -> Result<Vec<ModelConfig>> {
    let mut models = Vec::new();
    if let Some((path, name)) = &sources.path {
        let name = name.clone().unwrap_or_else(|| default_name(path));
        models.push(model_from_path(&name, path)?);
    }
    for (name, path) in &sources.named {
        models.push(model_from_path(name, path)?);
    }
    if let Some(file) = &sources.config_file {
        models.extend(models_from_config_file(file)?);
    }
    if models.is_empty() {
        bail!("no model to serve: give a PATH, --model NAME=PATH or --model_config_file FILE");
    }
    let mut seen = BTreeSet::new();
    for m in &models {
        if !seen.insert(m.name.clone()) {
            bail!(
                "model name '{}' is used twice; give each model its own name",
                m.name
            );
        }
    }
    Ok(models)
}

/// Why a new model config was refused or did not fully apply; the caller words TF Serving's
/// error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// A label would move to a version that is not available (model, version); nothing was
    /// changed.
    LabelToUnavailable(String, i64),
    /// The config was applied, but these models it added have no available version: the
    /// model with each version that failed to load and its error, or with no version when its
    /// version policy selected none.
    NotAvailable(Vec<(String, Option<(i64, ServeError)>)>),
}

/// The models a `ReloadConfigRequest` (HandleReloadConfigRequest) asks to serve, with TF
/// Serving's checks and errors: a `model_config_list` only, each model listed once, absolute
/// base paths, platform `tensorflow`.
pub fn reload_models(request: &sv::ReloadConfigRequest) -> Result<Vec<ModelConfig>, ServeError> {
    let list = match request.config.as_ref().and_then(|c| c.config.as_ref()) {
            Some(sv::model_server_config::Config::ModelConfigList(list)) => &list.config,
            _ => {
                return Err(ServeError::invalid(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently supported",
                ))
            }
        };
    let mut names = std::collections::BTreeSet::new();
    for c in list {
        if !names.insert(c.name.as_str()) {
            return Err(ServeError::invalid(format!(
                "Illegal to list model {} multiple times in config list",
                c.name
            )));
        }
    }
    for c in list {
        if uri_is_relative_path(&c.base_path) {
            return Err(ServeError::invalid(format!(
                "Expected model {} to have an absolute path or URI; got base_path()={}",
                c.name, c.base_path
            )));
        }
    }
    for c in list {
        let platform = model_platform(c)?;
        if platform != "tensorflow" {
            return Err(ServeError::invalid(format!(
                "Model {} requests unsupported platform {platform}",
                c.name
            )));
        }
    }
    list.iter()
        .map(|c| {
            let mut c = c.clone();
            // model_from_config checks the platform in its own words; it is checked above.
            c.model_platform.clear();
            model_from_config(c).map_err(|e| ServeError::invalid(format!("{e:#}")))
        })
        .collect::<Result<Vec<_>, _>>()
}

/// The reload a re-read of `--model_config_file` asks for: the file's models, and the models
/// named on the command line besides it (`fixed`), which stay.
pub fn config_file_reload(
    file: &Path,
    fixed: &[sv::ModelConfig],
) -> Result<sv::ReloadConfigRequest> {
    let config: sv::ModelServerConfig = read_text_proto(
        file,
        "tensorflow.serving.ModelServerConfig",
        "model config file",
    )?;
    let config = match config.config {
        Some(sv::model_server_config::Config::ModelConfigList(mut list)) => {
            list.config.extend(fixed.iter().cloned());
            sv::ModelServerConfig {
                config: Some(sv::model_server_config::Config::ModelConfigList(list)),
            }
        }
        other => sv::ModelServerConfig { config: other },
    };
    Ok(sv::ReloadConfigRequest {
        config: Some(config),
        ..Default::default()
    })
}

/// The config entries of the models among `models` named `names` (those from the command
/// line, which a re-read of the config file keeps).
pub fn fixed_entries(models: &[ModelConfig], names: &[String]) -> Vec<sv::ModelConfig> {
    models
        .iter()
        .filter(|m| names.contains(&m.name))
        .map(|m| sv::ModelConfig {
            name: m.name.clone(),
            base_path: m.path.to_string_lossy().into_owned(),
            ..Default::default()
        })
        .collect()
}

impl From<ReloadError> for ServeError {
    /// TF Serving's words for a reload that was refused or left models unavailable.
    fn from(e: ReloadError) -> Self {
        match e {
            ReloadError::LabelToUnavailable(model, version) => ServeError::new(
                Code::FailedPrecondition,
                format!(
                    "Request to assign label to version {version} of model {model}, which is not currently available for inference"
                ),
            ),
            ReloadError::NotAvailable(missing) => {
                let listed: String = missing
                    .iter()
                    .map(|(model, failure)| match failure {
                        Some((version, e)) => format!(
                            "{{{{name: {model} version: {version}}} due to error: {}: {}}}, ",
                            e.code.as_str_name(),
                            e.message
                        ),
                        None => format!(
                            "{{{{name: {model}}} has no version its version policy selects}}, "
                        ),
                    })
                    .collect();
                ServeError::new(
                    Code::Unknown,
                    format!(
                        "{} model(s) did not become available: {{{listed}}}",
                        missing.len()
                    ),
                )
            }
        }
    }
}

/// TF Serving's `UriIsRelativePath`: no `scheme://host` and not an absolute path.
fn uri_is_relative_path(path: &str) -> bool {
    !path.contains("://") && !Path::new(path).is_absolute()
}

/// TF Serving's `GetPlatform`: the model's platform from `model_platform` or the deprecated
/// `model_type`.
// Old configs still set `model_type`, which TF Serving reads too.
#[allow(deprecated)]
fn model_platform(c: &sv::ModelConfig) -> Result<String, ServeError> {
    if c.model_type != sv::ModelType::Unspecified as i32 {
        if !c.model_platform.is_empty() {
            return Err(ServeError::invalid(
                "Illegal setting both ModelServerConfig::model_type (deprecated) and ModelServerConfig::model_platform.",
            ));
        }
        if c.model_type == sv::ModelType::Tensorflow as i32 {
            return Ok("tensorflow".to_owned());
        }
        return Err(ServeError::invalid(format!(
            "ModelServerConfig::model_type choice {} not supported.",
            c.model_type
        )));
    }
    if c.model_platform.is_empty() {
        return Err(ServeError::invalid(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor ModelServerConfig::model_platform.",
        ));
    }
    Ok(c.model_platform.clone())
}

/// Validated batching parameters (TF Serving's `BatchingParameters`, with its defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchingParameters {
    pub max_batch_size: usize,
    pub batch_timeout: Duration,
    pub max_enqueued_batches: usize,
    pub num_batch_threads: usize,
    /// Batches are padded (by repeating the first row of their last request) up to the next
    /// of these sizes.
    pub allowed_batch_sizes: Vec<usize>,
    /// Pad the fed tensors of a batch to a common shape (beyond dimension 0) instead of
    /// failing the batch when they differ.
    pub pad_variable_length_inputs: bool,
}

impl Default for BatchingParameters {
    fn default() -> Self {
        BatchingParameters {
            max_batch_size: 1000,
            batch_timeout: Duration::ZERO,
            max_enqueued_batches: 10,
            num_batch_threads: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            allowed_batch_sizes: Vec::new(),
            pad_variable_length_inputs: false,
        }
    }
}

impl BatchingParameters {
    /// The parameters of a `BatchingParameters` message; unset fields take TF Serving's
    /// defaults.
    pub fn from_proto(p: &sv::BatchingParameters) -> Result<Self, String> {
        let d = Self::default();
        let positive = |v: Option<i64>, name: &str, default: usize| -> Result<usize, String> {
            match v {
                None => Ok(default),
                Some(v) if v > 0 => usize::try_from(v).map_err(|_| format!("{name} is too large")),
                Some(v) => Err(format!("{name} must be positive, got {v}")),
            }
        };
        let max_batch_size = positive(p.max_batch_size, "max_batch_size", d.max_batch_size)?;
        let timeout = p.batch_timeout_micros.unwrap_or(0);
        if timeout < 0 {
            return Err(format!(
                "batch_timeout_micros must not be negative, got {timeout}"
            ));
        }
        let mut allowed = Vec::with_capacity(p.allowed_batch_sizes.len());
        for &size in &p.allowed_batch_sizes {
            if size <= 0 {
                return Err(format!(
                    "allowed_batch_sizes entries must be positive, got {size}"
                ));
            }
            if allowed.last().is_some_and(|&last| size as usize <= last) {
                return Err("allowed_batch_sizes entries must be monotonically increasing".into());
            }
            allowed.push(size as usize);
        }
        if let Some(&last) = allowed.last() {
            if last != max_batch_size {
                return Err(format!(
                    "The last entry in allowed_batch_sizes must match max_batch_size; last entry was {last}; expected {max_batch_size}"
                ));
            }
        }
        Ok(BatchingParameters {
            max_batch_size,
            batch_timeout: Duration::from_micros(timeout as u64),
            max_enqueued_batches: positive(
                p.max_enqueued_batches,
                "max_enqueued_batches",
                d.max_enqueued_batches,
            )?,
            num_batch_threads: positive(
                p.num_batch_threads,
                "num_batch_threads",
                d.num_batch_threads,
            )?,
            allowed_batch_sizes: allowed,
            pad_variable_length_inputs: p.pad_variable_length_inputs,
        })
    }

    /// Parameters from TF Serving's `--batching_parameters_file` (protobuf text format).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text =
            crate::files::read_text_capped(path, crate::files::CONFIG_FILE_LIMIT, "a config file")
                .map_err(|e| anyhow::anyhow!("reading the batching parameters file: {e}"))?;
        Self::from_text(&text).map_err(|e| anyhow::anyhow!("'{}': {e}", path.display()))
    }

    /// Parameters from `BatchingParameters` in protobuf text format.
    pub fn from_text(text: &str) -> Result<Self, String> {
        let proto: sv::BatchingParameters =
            crate::proto_ext::parse_text_format(text, "tensorflow.serving.BatchingParameters")
                .map_err(|e| format!("not a BatchingParameters in protobuf text format: {e}"))?;
        Self::from_proto(&proto)
    }
}

/// TF Serving's `--tensorflow_intra_op_parallelism`, `--tensorflow_inter_op_parallelism` and
/// `--tensorflow_session_parallelism` (0: TensorFlow chooses, one thread per core).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionThreads {
    pub intra_op: i32,
    pub inter_op: i32,
    pub session: i32,
}

impl SessionThreads {
    /// TF Serving refuses all three at once.
    pub fn check(self) -> Result<()> {
        if self.intra_op > 0 && self.inter_op > 0 && self.session > 0 {
            bail!("Either configure --tensorflow_session_parallelism or (--tensorflow_intra_op_parallelism, --tensorflow_inter_op_parallelism) separately. You cannot configure all.");
        }
        Ok(())
    }

    /// The session `ConfigProto`, as TF Serving builds it: the two pool sizes when either is
    /// positive (a negative one then runs ops on the calling thread), else the session
    /// parallelism for both.
    pub fn config(self) -> tfp::ConfigProto {
        let mut config = tfp::ConfigProto::default();
        self.apply(&mut config);
        config
    }

    /// Sets `config`'s pool sizes as [`SessionThreads::config`] does, leaving them as they are
    /// when all three flags are 0.
    pub fn apply(self, config: &mut tfp::ConfigProto) {
        let (intra, inter) = if self.intra_op > 0 || self.inter_op > 0 {
            (self.intra_op, self.inter_op)
        } else if self.session != 0 {
            (self.session, self.session)
        } else {
            return;
        };
        config.intra_op_parallelism_threads = intra;
        config.inter_op_parallelism_threads = inter;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_select_versions() {
        let disk = [1, 2, 5];
        assert_eq!(VersionPolicy::Latest(1).select(&disk), BTreeSet::from([5]));
        assert_eq!(
            VersionPolicy::Latest(2).select(&disk),
            BTreeSet::from([2, 5])
        );
        assert_eq!(VersionPolicy::All.select(&disk), BTreeSet::from([1, 2, 5]));
        assert_eq!(
            VersionPolicy::Specific(BTreeSet::from([2, 7])).select(&disk),
            BTreeSet::from([2])
        );
        assert_eq!(VersionPolicy::Latest(1).select(&[]), BTreeSet::new());
    }

    #[test]
    fn parameters_parse_tf_serving_text_format() {
        let p = BatchingParameters::from_text(
            "max_batch_size { value: 128 }\nbatch_timeout_micros { value: 0 }\n\
             max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 2 }\n\
             allowed_batch_sizes: 8\nallowed_batch_sizes: 128\npad_variable_length_inputs: false\n",
        )
        .unwrap();
        assert_eq!(
            p,
            BatchingParameters {
                max_batch_size: 128,
                batch_timeout: Duration::ZERO,
                max_enqueued_batches: 100,
                num_batch_threads: 2,
                allowed_batch_sizes: vec![8, 128],
                pad_variable_length_inputs: false,
            }
        );
        let d = BatchingParameters::from_text("").unwrap();
        assert_eq!((d.max_batch_size, d.max_enqueued_batches), (1000, 10));
    }

    #[test]
    fn bad_parameters_are_explained() {
        for (text, want) in [
            (
                "max_batch_size { value: 0 }",
                "max_batch_size must be positive",
            ),
            (
                "max_batch_size { value: 16 } allowed_batch_sizes: 8",
                "The last entry in allowed_batch_sizes must match max_batch_size",
            ),
            (
                "max_batch_size { value: 8 } allowed_batch_sizes: 8 allowed_batch_sizes: 8",
                "monotonically increasing",
            ),
            ("max_batch_size: 8", "not a BatchingParameters"),
            ("batch_size { value: 8 }", "not a BatchingParameters"),
        ] {
            let err = BatchingParameters::from_text(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn session_threads_follow_tf_serving_flags() {
        let cases = [
            ((0, 0, 0), (0, 0)),
            ((0, 0, 3), (3, 3)),
            ((1, 0, 3), (1, 0)),
            ((0, -1, 3), (3, 3)),
            ((1, -1, 0), (1, -1)),
            ((0, -1, 0), (0, 0)),
            ((2, 4, 0), (2, 4)),
        ];
        for ((intra_op, inter_op, session), want) in cases {
            let c = SessionThreads {
                intra_op,
                inter_op,
                session,
            }
            .config();
            assert_eq!(
                (
                    c.intra_op_parallelism_threads,
                    c.inter_op_parallelism_threads
                ),
                want,
                "{intra_op} {inter_op} {session}"
            );
        }
        let all = SessionThreads {
            intra_op: 1,
            inter_op: 1,
            session: 1,
        };
        let e = all.check().expect_err("all three refused");
        assert!(e.to_string().contains("You cannot configure all"), "{e}");
    }
}
