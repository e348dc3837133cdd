//! Command-line arguments (clap) and their conversion into validated options structs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::add_classify::{
    AddClassifyOptions, Destination, FeatureSpec, ImageScale, LabelSource,
};
use crate::commands::inspect::{InspectOptions, VersionSelect};
use crate::commands::validate::{RequiredSignature, ValidateOptions};
use crate::savedmodel::parse_tag_set;

mod help;
pub use help::command;

/// Inspect, validate, edit and serve TensorFlow SavedModels.
///
/// Exit codes: 0 success, 1 findings (validate), 2 could not run.
#[derive(Debug, Parser)]
#[command(name = "smtool", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show tag-sets, signatures, tensors, variables, assets and ops of a SavedModel.
    ///
    /// Reads saved_model.pb (or saved_model.pbtxt) itself: TensorFlow is not needed.
    Inspect(InspectArgs),
    /// Check SavedModels before deployment; exit 1 when a model fails.
    ///
    /// Without TensorFlow: signatures against TensorFlow's and TF Serving's rules, shapes, graph
    /// binding, init op, variables, assets, warmup requests, unsafe and unknown ops (rules:
    /// docs/rules.md).
    Validate(ValidateArgs),
    /// Write a copy of a SavedModel with a TensorFlow Serving classify signature.
    ///
    /// The new signature takes serialized tf.Examples and returns labels and scores sorted by
    /// score; it wraps a softmax signature of the model, whose other signatures stay as they are.
    AddClassify(AddClassifyArgs),
    /// Serve SavedModels with TensorFlow Serving's REST and gRPC APIs.
    ///
    /// Loads libtensorflow at run time (see --tensorflow-dir for where it is found).
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A SavedModel directory, its saved_model.pb or saved_model.pbtxt, or a model base path
    /// whose numbered subdirectories are versions.
    pub path: PathBuf,
    /// With a model base path: inspect this version instead of the latest.
    #[arg(long, value_name = "N", conflicts_with = "all_versions")]
    pub version: Option<i64>,
    /// With a model base path: inspect every version.
    #[arg(long)]
    pub all_versions: bool,
    /// Only the meta graph with exactly this tag-set, comma-separated (e.g. `serve,gpu`).
    #[arg(long, value_name = "TAGS")]
    pub tag_set: Option<String>,
    /// Only this signature (e.g. `serving_default`).
    #[arg(long, value_name = "KEY")]
    pub signature: Option<String>,
    /// Also show variables, assets, the init op, ops used (with the function library) and the
    /// fingerprint.
    #[arg(long)]
    pub all: bool,
    /// Print a JSON document (see docs/inspect-json.md) instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl InspectArgs {
    /// The core options; `--json` stays with the caller, which picks the renderer.
    pub fn options(&self) -> InspectOptions {
        InspectOptions {
            path: self.path.clone(),
            versions: match (self.version, self.all_versions) {
                (Some(v), _) => VersionSelect::Specific(v),
                (None, true) => VersionSelect::All,
                (None, false) => VersionSelect::Latest,
            },
            tag_set: self.tag_set.as_deref().map(parse_tag_set),
            signature: self.signature.clone(),
            all: self.all,
        }
    }
}

/// How `smtool validate` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// Readable text, grouped by model then signature.
    Text,
    /// One JSON document (schema in docs/rules.md).
    Json,
    /// GitHub Actions annotations (::error file=...::message).
    Github,
    /// JUnit XML: a test suite per model, a test case per rule family.
    Junit,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// SavedModel directories, graph files, model base paths or any directory trees: every
    /// SavedModel found under them is validated.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Warnings fail the run too (exit 1).
    #[arg(long)]
    pub strict: bool,
    /// The deployment needs this signature, optionally served under this TF Serving endpoint:
    /// KEY or KEY=classify|regress|predict (e.g. `serving_default=classify`). Repeatable.
    #[arg(long, value_name = "KEY[=METHOD]")]
    pub require_signature: Vec<RequiredSignature>,
    /// Tag-set of the meta graph to check, comma-separated (TF Serving loads `serve`).
    #[arg(long, value_name = "TAGS", default_value = "serve")]
    pub tag_set: String,
    /// Accept this op on purpose: it is not reported as unsafe or unknown. Repeatable.
    #[arg(long, value_name = "OP")]
    pub allow_op: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl ValidateArgs {
    /// The core options; the output format stays with the caller, which picks the renderer.
    pub fn options(&self) -> ValidateOptions {
        let mut opts = ValidateOptions::new(self.paths.clone());
        opts.tag_set = parse_tag_set(&self.tag_set);
        opts.strict = self.strict;
        opts.require.clone_from(&self.require_signature);
        opts.allow_ops = self.allow_op.iter().cloned().collect();
        opts
    }

    /// The output format, `--json` included.
    pub fn output_format(&self) -> ValidateFormat {
        if self.json {
            ValidateFormat::Json
        } else {
            self.format
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  smtool add-classify models/digits/1 --labels labels.txt --feature x=image --out models/digits-classify\n  smtool add-classify models/digits --labels labels.txt --feature x=image --as-next-version"
)]
pub struct AddClassifyArgs {
    /// The SavedModel directory to read, or a model base path whose numbered subdirectories are
    /// versions (the latest is read). Existing files are never modified.
    pub src: PathBuf,
    /// Where to write the edited SavedModel (a new directory).
    #[arg(long, value_name = "DST", required_unless_present = "as_next_version")]
    pub out: Option<PathBuf>,
    /// With a model base path: write the edited model as its next version (the latest number plus
    /// one) instead of to --out, atomically, so TF Serving and `smtool serve` pick it up on their
    /// next poll. Existing versions are left as they are.
    #[arg(long, conflicts_with = "out")]
    pub as_next_version: bool,
    /// With a model base path: edit this version instead of the latest.
    #[arg(long, value_name = "N")]
    pub version: Option<i64>,
    /// Class names, one per line, in class-index order.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "labels_from_asset"
    )]
    pub labels: Option<PathBuf>,
    /// Read the class names from this file in the model's assets/ directory instead.
    #[arg(long, value_name = "NAME", conflicts_with = "labels")]
    pub labels_from_asset: Option<String>,
    /// The signature to wrap.
    #[arg(long, value_name = "KEY", default_value = "serving_default")]
    pub signature: String,
    /// The output of that signature holding class probabilities [default: the only output, or
    /// the one a Softmax produces].
    #[arg(long, value_name = "KEY")]
    pub output: Option<String>,
    /// The output holds logits: add a Softmax.
    #[arg(long)]
    pub apply_softmax: bool,
    /// Return only the K best classes [default: all, sorted by score].
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// How an input is read from each tf.Example: INPUT=KIND or INPUT=KIND:FEATURE, KIND one of
    /// float, int64, bytes, image (encoded JPEG/PNG/GIF/BMP, decoded and resized to the input's
    /// height, width and channels). Repeatable. [default: feature named after the input, kind
    /// from its dtype]
    #[arg(long, value_name = "INPUT=KIND[:FEATURE]")]
    pub feature: Vec<FeatureSpec>,
    /// Pixel range of DT_FLOAT image inputs: 1 for 0 to 1 (pixels / 255), 255 for 0 to 255
    /// [default: 1]. DT_UINT8 image inputs take the pixels as decoded.
    #[arg(long, value_name = "MAX", value_parser = parse_image_scale)]
    pub image_scale: Option<ImageScale>,
    /// Key of the new signature.
    #[arg(long, value_name = "KEY", default_value = "classify")]
    pub name: String,
    /// Also make the new signature `serving_default` (clients POSTing to :classify without a
    /// signature name get it); the old default keeps working under --rename-default-to.
    #[arg(long)]
    pub make_default: bool,
    /// With --make-default: the key for the previous `serving_default`.
    #[arg(
        long,
        value_name = "KEY",
        default_value = "predict",
        requires = "make_default"
    )]
    pub rename_default_to: String,
    /// The meta graph to edit, by its exact tag-set (comma-separated) [default: the only one,
    /// else `serve`].
    #[arg(long, value_name = "TAGS")]
    pub tag_set: Option<String>,
    /// Replace an existing signature key, and an existing --out directory that holds a
    /// SavedModel (or is empty). Never replaces anything with --as-next-version.
    #[arg(long)]
    pub force: bool,
    /// Copy variables and assets instead of hard-linking them.
    #[arg(long)]
    pub copy: bool,
    /// Print what was written as a JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_image_scale(s: &str) -> Result<ImageScale, String> {
    match s {
        "1" => Ok(ImageScale::Unit),
        "255" => Ok(ImageScale::Byte),
        _ => Err(format!(
            "'{s}' is not an image scale: use 1 for pixels in [0,1] or 255 for [0,255]"
        )),
    }
}

impl AddClassifyArgs {
    /// The core options.
    pub fn options(&self) -> AddClassifyOptions {
        AddClassifyOptions {
            src: self.src.clone(),
            version: self.version,
            dst: match &self.out {
                Some(out) => Destination::Dir(out.clone()),
                // clap requires --out unless --as-next-version is given.
                None => Destination::NextVersion,
            },
            tag_set: self.tag_set.as_deref().map(parse_tag_set),
            signature: self.signature.clone(),
            output: self.output.clone(),
            labels: match (&self.labels, &self.labels_from_asset) {
                (_, Some(asset)) => LabelSource::Asset(asset.clone()),
                (Some(file), None) => LabelSource::File(file.clone()),
                // clap requires one of the two.
                (None, None) => LabelSource::File(PathBuf::new()),
            },
            top_k: self.top_k,
            features: self.feature.clone(),
            image_scale: self.image_scale,
            name: self.name.clone(),
            make_default: self.make_default,
            rename_default_to: self.rename_default_to.clone(),
            apply_softmax: self.apply_softmax,
            force: self.force,
            copy: self.copy,
            progress: true,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A SavedModel directory (served as version 1) or a model base path whose numbered
    /// subdirectories are versions (the newest is served, and new ones are picked up).
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// The same as PATH.
    #[arg(
        long,
        value_name = "PATH",
        visible_alias = "model_base_path",
        conflicts_with = "path"
    )]
    pub model_base_path: Option<PathBuf>,
    /// Name of the model at PATH in URLs (`/v1/models/NAME`); default: PATH's directory name.
    #[arg(long, value_name = "NAME", visible_alias = "model_name")]
    pub model_name: Option<String>,
    /// Another model to serve, as NAME=PATH (repeatable).
    #[arg(long = "model", value_name = "NAME=PATH")]
    pub models: Vec<String>,
    /// TensorFlow Serving's model config file: a ModelServerConfig in protobuf text format
    /// (`model_config_list { config { name base_path model_version_policy version_labels } }`).
    #[arg(long, value_name = "FILE", visible_alias = "model_config_file")]
    pub model_config_file: Option<PathBuf>,
    /// Address to listen on; use 0.0.0.0 to accept connections from other machines.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the REST API (0 picks a free port).
    #[arg(long, default_value_t = 8501, visible_alias = "rest_api_port")]
    pub rest_api_port: u16,
    /// Port of the gRPC API (tensorflow.serving.PredictionService and ModelService; 0 picks a
    /// free port). Same --host as the REST API.
    #[arg(
        long,
        default_value_t = 8500,
        visible_alias = "grpc-port",
        alias = "grpc_port"
    )]
    pub port: u16,
    /// Replay each version's assets.extra/tf_serving_warmup_requests before serving it
    /// (`--enable-model-warmup=false` turns it off).
    #[arg(
        long,
        visible_alias = "enable_model_warmup",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true
    )]
    pub enable_model_warmup: bool,
    /// Threads TensorFlow may use inside one op; 0 lets TensorFlow choose (one per core).
    #[arg(
        long,
        visible_alias = "tensorflow_intra_op_parallelism",
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub tensorflow_intra_op_parallelism: i32,
    /// Ops TensorFlow may run at the same time; 0 lets TensorFlow choose (one per core).
    #[arg(
        long,
        visible_alias = "tensorflow_inter_op_parallelism",
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub tensorflow_inter_op_parallelism: i32,
    /// Both of the above at once when neither is given (TF Serving's older flag).
    #[arg(
        long,
        visible_alias = "tensorflow_session_parallelism",
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub tensorflow_session_parallelism: i32,
    /// TensorFlow Serving's monitoring config (a MonitoringConfig in protobuf text format):
    /// `prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }` serves
    /// Prometheus metrics at that path on the REST port.
    #[arg(long, value_name = "FILE", visible_alias = "monitoring_config_file")]
    pub monitoring_config_file: Option<PathBuf>,
    /// Merge concurrent requests to the same signature into one batched TensorFlow run.
    #[arg(
        long,
        visible_alias = "enable_batching",
        value_name = "BOOL",
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        require_equals = true
    )]
    pub enable_batching: bool,
    /// TensorFlow Serving's batching parameters (a BatchingParameters in protobuf text format:
    /// `max_batch_size { value: 128 } batch_timeout_micros { value: 0 } ...`); used with
    /// --enable-batching.
    #[arg(long, value_name = "FILE", visible_alias = "batching_parameters_file")]
    pub batching_parameters_file: Option<PathBuf>,
    /// Seconds between looks for new or removed version directories (0: never).
    #[arg(
        long,
        default_value_t = 1,
        value_name = "SECONDS",
        visible_alias = "file_system_poll_wait_seconds"
    )]
    pub file_system_poll_wait_seconds: u64,
    /// Largest request body accepted, in bytes; larger requests get HTTP 413.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    pub max_request_bytes: usize,
    /// Directory with libtensorflow.so (or a Python tensorflow package directory).
    #[arg(long, value_name = "DIR")]
    pub tensorflow_dir: Option<PathBuf>,
    /// Never download TensorFlow; fail if it is not installed.
    #[arg(long)]
    pub no_fetch: bool,
    /// Show TensorFlow's start-up output and log one line per request.
    #[arg(long, short)]
    pub verbose: bool,
}

impl ServeArgs {
    /// The validated serve options.
    pub fn options(&self) -> anyhow::Result<crate::serve::ServeOptions> {
        let named = self
            .models
            .iter()
            .map(|spec| match spec.split_once('=') {
                Some((name, path)) if !name.is_empty() && !path.is_empty() => {
                    Ok((name.to_owned(), PathBuf::from(path)))
                }
                _ => Err(anyhow::anyhow!(
                    "--model '{spec}' is not NAME=PATH (e.g. --model digits=models/digits)"
                )),
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let path = self.path.clone().or_else(|| self.model_base_path.clone());
        if self.model_name.is_some() && path.is_none() {
            anyhow::bail!("--model-name needs a PATH (or --model_base_path) to name");
        }
        let sources = crate::serve::ModelSources {
            path: path.map(|p| (p, self.model_name.clone())),
            named,
            config_file: self.model_config_file.clone(),
        };
        Ok(crate::serve::ServeOptions {
            models: crate::serve::resolve_models(&sources)?,
            host: self.host.clone(),
            port: self.rest_api_port,
            library: crate::serve::library::LibraryOptions::from_env(
                self.tensorflow_dir.clone(),
                !self.no_fetch,
            ),
            http: crate::serve::http::HttpOptions {
                max_body_bytes: self.max_request_bytes,
            },
            poll_seconds: self.file_system_poll_wait_seconds,
            verbose: self.verbose,
            grpc_port: self.port,
            grpc: crate::serve::grpc::GrpcOptions {
                max_message_bytes: self.max_request_bytes,
            },
            server: self.server_options()?,
        })
    }

    /// Warmup, metrics and batching from their flags and files.
    fn server_options(&self) -> anyhow::Result<crate::serve::ServerOptions> {
        let metrics_path = match &self.monitoring_config_file {
            Some(file) => crate::serve::monitoring_from_file(file)?,
            None => None,
        };
        let batching = match (self.enable_batching, &self.batching_parameters_file) {
            (true, Some(file)) => Some(crate::serve::batching::BatchingParameters::from_file(
                file,
            )?),
            (true, None) => Some(crate::serve::batching::BatchingParameters::default()),
            (false, Some(file)) => anyhow::bail!(
                "--batching_parameters_file '{}' is given but batching is off; add --enable_batching",
                file.display()
            ),
            (false, None) => None,
        };
        let threads = crate::serve::SessionThreads {
            intra_op: self.tensorflow_intra_op_parallelism,
            inter_op: self.tensorflow_inter_op_parallelism,
            session: self.tensorflow_session_parallelism,
        };
        threads.check()?;
        Ok(crate::serve::ServerOptions {
            warmup: self.enable_model_warmup,
            threads,
            core: crate::serve::core::CoreOptions {
                metrics_path,
                batching,
            },
        })
    }
}
