//! Command-line arguments (clap) and their conversion into validated options structs.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::add_classify::{
    AddClassifyOptions, Destination, EditOptions, FeatureSpec, ImageScale, LabelSource,
};
use crate::commands::diff::DiffOptions;
use crate::commands::inspect::{InspectOptions, VersionSelect};
#[cfg(feature = "serve")]
use crate::commands::run::{Body, Input, RunOptions};
use crate::commands::validate::{RequiredSignature, ValidateOptions};
#[cfg(feature = "serve")]
use crate::commands::warmup::{RequestFile, Requests, WarmupOptions};
use crate::savedmodel::parse_tag_set;

mod help;
pub use help::command;

/// Inspect, validate, edit and serve TensorFlow SavedModels.
///
/// Exit codes: 0 success, 1 findings (validate) or breaking changes (diff), 2 could not run.
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
    #[cfg(feature = "serve")]
    Serve(Box<ServeArgs>),
    /// Compare the serving contract of two model versions; exit 1 if NEW breaks it.
    ///
    /// Without TensorFlow: signatures, endpoints, inputs, outputs, dtypes, shapes, classify
    /// labels, ops and variables, every change graded breaking or compatible.
    Diff(DiffArgs),
    /// Write a copy of a SavedModel with TF Serving warmup requests (assets.extra).
    ///
    /// From REST request bodies (predict, classify, regress; read as `smtool serve` reads them)
    /// or synthetic requests built from the signatures' dtypes and shapes; the source model is
    /// never modified.
    #[cfg(feature = "serve")]
    Warmup(WarmupArgs),
    /// Run one request on a SavedModel, as `smtool serve` would answer it.
    ///
    /// Inputs from .npy/.npz files (read without pickle), JSON values, tf.Example features,
    /// image files, or a whole TF Serving REST request body. Loads libtensorflow at run time.
    #[cfg(feature = "serve")]
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A SavedModel directory, its saved_model.pb or saved_model.pbtxt, or a model base path
    /// whose numbered subdirectories are versions; local, or in object storage
    /// (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX).
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

/// How `smtool validate` prints its findings and `smtool diff` its changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// Readable text (validate: grouped by model, then signature).
    Text,
    /// One JSON document (validate's schema is in docs/rules.md).
    Json,
    /// GitHub Actions annotations (::error file=...::message).
    Github,
    /// JUnit XML: validate writes a test suite per model and a test case per rule family, diff a
    /// test case per family of changes.
    Junit,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// SavedModel directories, graph files, model base paths or any directory trees, local or
    /// in object storage (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX): every SavedModel found under
    /// them is validated.
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
    #[command(flatten)]
    pub format: FormatArgs,
}

/// `--format` and its `--json` shorthand (validate and diff).
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

impl FormatArgs {
    /// The output format, `--json` included.
    pub fn chosen(&self) -> ValidateFormat {
        if self.json {
            ValidateFormat::Json
        } else {
            self.format
        }
    }
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
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  smtool diff models/digits/1 models/digits/2\n  smtool diff models/digits --versions 3,5 --format github"
)]
pub struct DiffArgs {
    /// The version clients use today: a SavedModel directory, its graph file, or a model base
    /// path (its latest version). Given alone, a model base path whose two latest versions are
    /// compared. Local, or in object storage (s3://, gs://).
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The version to check: a SavedModel directory, its graph file, or a model base path (its
    /// latest version).
    #[arg(value_name = "NEW")]
    pub new: Option<PathBuf>,
    /// With one model base path: compare version A (OLD) with version B (NEW) instead of the two
    /// latest.
    #[arg(long, value_name = "A,B", value_parser = parse_version_pair, conflicts_with = "new")]
    pub versions: Option<(i64, i64)>,
    /// Tag-set of the meta graph to compare, comma-separated (TF Serving loads `serve`).
    #[arg(long, value_name = "TAGS", default_value = "serve")]
    pub tag_set: String,
    #[command(flatten)]
    pub format: FormatArgs,
}

fn parse_version_pair(s: &str) -> Result<(i64, i64), String> {
    let bad = || format!("'{s}' is not two versions A,B (e.g. --versions 1,2)");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let parse = |v: &str| crate::savedmodel::parse_version(v.trim()).ok_or_else(bad);
    let (a, b) = (parse(a)?, parse(b)?);
    if a == b {
        return Err(format!(
            "--versions {s} names version {a} twice; give two different versions"
        ));
    }
    Ok((a, b))
}

impl DiffArgs {
    /// The core options; the output format stays with the caller, which picks the renderer.
    pub fn options(&self) -> DiffOptions {
        DiffOptions {
            old: self.old.clone(),
            new: self.new.clone(),
            versions: self.versions,
            tag_set: parse_tag_set(&self.tag_set),
        }
    }
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  smtool warmup models/digits --request predict.json --as-next-version\n  smtool warmup models/digits/1 --from-signature --batch 4 --out models/digits-warm/1"
)]
pub struct WarmupArgs {
    /// The SavedModel directory to read, or a model base path whose numbered subdirectories are
    /// versions (the latest is read); local, or in object storage (s3://, gs://; with
    /// --as-next-version the new version is published there). Existing files are never
    /// modified.
    pub src: PathBuf,
    /// A REST request body to record, [predict=|classify=|regress=]FILE: `instances` or
    /// `inputs` for :predict, `examples` for :classify or :regress (which one follows from the
    /// signature unless given). Repeatable; replayed in this order.
    #[arg(
        long = "request",
        value_name = "[METHOD=]FILE",
        required_unless_present = "from_signature",
        conflicts_with = "from_signature"
    )]
    pub requests: Vec<RequestFile>,
    /// Instead of request files, record one predict request per signature, of zeros (empty
    /// strings for DT_STRING) shaped like its inputs.
    #[arg(long)]
    pub from_signature: bool,
    /// With --from-signature: only this signature (repeatable) [default: every signature that
    /// does not take serialized tf.Examples].
    #[arg(long, value_name = "KEY", requires = "from_signature")]
    pub signature: Vec<String>,
    /// With --from-signature: rows per request (the size of an unknown batch dimension).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        requires = "from_signature"
    )]
    pub batch: usize,
    /// Where to write the new SavedModel (a new directory).
    #[arg(long, value_name = "DST", required_unless_present = "as_next_version")]
    pub out: Option<PathBuf>,
    /// With a model base path: write the new model as its next version (the latest number plus
    /// one), atomically; existing versions are left as they are.
    #[arg(long, conflicts_with = "out")]
    pub as_next_version: bool,
    /// With a model base path: read this version instead of the latest.
    #[arg(long, value_name = "N")]
    pub version: Option<i64>,
    /// The meta graph whose signatures are used, by its exact tag-set (comma-separated)
    /// [default: the only one, else `serve`].
    #[arg(long, value_name = "TAGS")]
    pub tag_set: Option<String>,
    /// The model name recorded in the requests [default: the directory name of SRC].
    #[arg(long, value_name = "NAME")]
    pub model_name: Option<String>,
    /// Replace an existing --out directory that holds a SavedModel (or is empty). Never
    /// replaces anything with --as-next-version.
    #[arg(long)]
    pub force: bool,
    /// Copy variables and assets instead of hard-linking them.
    #[arg(long)]
    pub copy: bool,
    /// Print what was written as a JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "serve")]
impl WarmupArgs {
    /// The core options.
    pub fn options(&self) -> WarmupOptions {
        WarmupOptions {
            edit: edit_options(&self.src, self.version, &self.out, self.force, self.copy),
            tag_set: self.tag_set.as_deref().map(parse_tag_set),
            requests: if self.from_signature {
                Requests::FromSignatures {
                    keys: self.signature.clone(),
                    batch: self.batch,
                }
            } else {
                Requests::Files(self.requests.clone())
            },
            model_name: self.model_name.clone(),
        }
    }
}

#[cfg(feature = "serve")]
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  smtool run models/half_plus_two --value 'x=[1.0, 2.0, 5.0]'\n  smtool run models/digits/1 --input x=batch.npz[images] --outdir out/\n  smtool run models/digits/1 --image x=five.png --json\n  smtool run models/digits-classify --signature classify --image x=five.png\n  smtool run models/iris --signature classify --examples 'inputs=[{\"x\": [5.1, 3.5, 1.4, 0.2]}]'\n  smtool run models/iris --request body.json\n\nPrints each output's name, dtype, shape and values (long tensors cut), or with --json the\nbody TF Serving answers: {\"outputs\": ...} for inputs given one by one, {\"predictions\": ...}\nfor an `instances` body, {\"results\": ...} for :classify and :regress."
)]
pub struct RunArgs {
    /// The SavedModel directory, or a model base path whose numbered subdirectories are
    /// versions (the latest is run).
    pub model: PathBuf,
    /// With a model base path: run this version instead of the latest.
    #[arg(long, value_name = "N")]
    pub version: Option<i64>,
    /// The meta graph to load, by its exact tag-set (comma-separated).
    #[arg(long, value_name = "TAGS", default_value = "serve")]
    pub tag_set: String,
    /// The signature to call [default: the body's signature_name, else serving_default].
    #[arg(long, value_name = "KEY")]
    pub signature: Option<String>,
    /// The TF Serving endpoint: predict, classify or regress [default: classify or regress for
    /// tf.Examples given to a signature of that method, else predict].
    #[arg(long, value_name = "METHOD")]
    pub method: Option<crate::signature::Endpoint>,
    /// An input from a NumPy file: KEY=FILE.npy, KEY=FILE.npz[NAME] or KEY=FILE.npz (its only
    /// array). Read without pickle; numbers are converted to the input's dtype. Repeatable.
    #[arg(long = "input", value_name = "KEY=FILE", value_parser = Input::array)]
    pub inputs: Vec<Input>,
    /// An input as a JSON value: KEY=[[1.0, 2.0]], read as TF Serving reads a columnar
    /// `inputs` value (strings, {"b64": ...}, NaN, Infinity). Repeatable.
    #[arg(long = "value", value_name = "KEY=JSON", value_parser = Input::value)]
    pub values: Vec<Input>,
    /// An input of serialized tf.Examples: KEY=[{"FEATURE": VALUE, ...}, ...], features as in
    /// a REST `examples` list (like saved_model_cli's --input_examples). Repeatable.
    #[arg(long = "examples", value_name = "KEY=JSON", value_parser = Input::examples)]
    pub examples: Vec<Input>,
    /// An input from an image file (JPEG, PNG, GIF, BMP): KEY=FILE, decoded and resized to the
    /// input's (1, height, width, channels) as add-classify's image features are; a DT_STRING
    /// input gets the file's bytes. On a :classify or :regress signature KEY is a tf.Example
    /// bytes feature holding the file's bytes, one example per image. Repeatable.
    #[arg(long = "image", value_name = "KEY=FILE", value_parser = Input::image)]
    pub images: Vec<Input>,
    /// Pixel range of DT_FLOAT image inputs: 1 for 0 to 1 (pixels / 255), 255 for 0 to 255
    /// [default: 1].
    #[arg(long, value_name = "MAX", value_parser = parse_image_scale)]
    pub image_scale: Option<ImageScale>,
    /// A whole TF Serving REST request body (`instances` or `inputs` for :predict, `examples`
    /// for :classify / :regress), from FILE or `-` for stdin.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["inputs", "values", "examples", "images"])]
    pub request: Option<PathBuf>,
    /// Print TF Serving's JSON response body instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write each output to OUTDIR/NAME.npy (created if missing).
    #[arg(long, value_name = "OUTDIR")]
    pub outdir: Option<PathBuf>,
    /// Replace .npy files that already exist in --outdir.
    #[arg(long, requires = "outdir")]
    pub overwrite: bool,
    /// Directory with libtensorflow.so (or a Python tensorflow package directory).
    #[arg(long, value_name = "DIR")]
    pub tensorflow_dir: Option<PathBuf>,
    /// Never download TensorFlow; fail if it is not installed.
    #[arg(long)]
    pub no_fetch: bool,
    /// Show TensorFlow's own output on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

#[cfg(feature = "serve")]
impl RunArgs {
    /// The core options.
    pub fn options(&self) -> RunOptions {
        let mut inputs = self.inputs.clone();
        inputs.extend(self.values.iter().cloned());
        inputs.extend(self.examples.iter().cloned());
        inputs.extend(self.images.iter().cloned());
        RunOptions {
            model: self.model.clone(),
            version: self.version,
            tags: parse_tag_set(&self.tag_set),
            signature: self.signature.clone(),
            method: self.method,
            inputs,
            body: self.request.as_ref().map(|p| {
                if p.as_os_str() == "-" {
                    Body::Stdin
                } else {
                    Body::File(p.clone())
                }
            }),
            outdir: self.outdir.clone(),
            overwrite: self.overwrite,
            image_scale: self.image_scale.unwrap_or(ImageScale::Unit),
            verbose: self.verbose,
            library: crate::serve::library::LibraryOptions::from_env(
                self.tensorflow_dir.clone(),
                !self.no_fetch,
            ),
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  smtool add-classify models/digits/1 --labels labels.txt --feature x=image --out models/digits-classify\n  smtool add-classify models/digits --labels labels.txt --feature x=image --as-next-version"
)]
pub struct AddClassifyArgs {
    /// The SavedModel directory to read, or a model base path whose numbered subdirectories are
    /// versions (the latest is read); local, or in object storage (s3://, gs://; with
    /// --as-next-version the new version is published there). Existing files are never
    /// modified.
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

/// The options add-classify and warmup share; the copy goes to `--out DST`, or is the next
/// version (clap requires --out unless --as-next-version is given).
fn edit_options(
    src: &Path,
    version: Option<i64>,
    out: &Option<PathBuf>,
    force: bool,
    copy: bool,
) -> EditOptions {
    EditOptions {
        src: src.to_path_buf(),
        version,
        dst: match out {
            Some(out) => Destination::Dir(out.clone()),
            None => Destination::NextVersion,
        },
        force,
        copy,
        progress: true,
    }
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
            edit: edit_options(&self.src, self.version, &self.out, self.force, self.copy),
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
        }
    }
}

#[cfg(feature = "serve")]
/// `smtool serve`'s arguments: smtool's own (`PATH`, `--model NAME=PATH`, `--host`, ...) and
/// every flag of TensorFlow Serving 2.21's `tensorflow_model_server`, spelled, typed and
/// defaulted as there. Values are read by TF Serving's rules: `--flag=value` (or
/// `--flag value`), booleans (value BOOL, see [`tf_bool_flag`]) as `--flag`,
/// `--flag=true|false|1|0`; the last of a repeated flag wins.
#[derive(Debug, Args)]
#[command(
    args_override_self = true,
    mut_args = tf_bool_flag,
    after_help = "TensorFlow Serving's command lines run unchanged, e.g.\n  smtool serve --port=8500 --rest_api_port=8501 --model_name=digits --model_base_path=/models/digits\nSee the README for what each TensorFlow Serving flag does here."
)]
pub struct ServeArgs {
    /// A SavedModel directory (served as version 1) or a model base path whose numbered
    /// subdirectories are versions (the newest is served, and new ones are picked up); local,
    /// or in object storage (s3://BUCKET/PREFIX, gs://BUCKET/PREFIX).
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// TF Serving's model base path, local or s3:// / gs://: served as model --model_name
    /// (default "default").
    #[arg(value_parser = tf_path,
        long = "model_base_path",
        value_name = "PATH",
        alias = "model-base-path",
        conflicts_with = "path",
        help_heading = "Models"
    )]
    pub model_base_path: Option<PathBuf>,
    /// Name of the model at PATH or --model_base_path in URLs (`/v1/models/NAME`); default:
    /// PATH's directory name, or "default" with --model_base_path (as in TF Serving).
    #[arg(
        long = "model_name",
        value_name = "NAME",
        alias = "model-name",
        help_heading = "Models"
    )]
    pub model_name: Option<String>,
    /// Another model to serve, as NAME=PATH (repeatable).
    #[arg(long = "model", value_name = "NAME=PATH", help_heading = "Models")]
    pub models: Vec<String>,
    /// TensorFlow Serving's model config file: a ModelServerConfig in protobuf text format
    /// (`model_config_list { config { name base_path model_version_policy version_labels } }`).
    #[arg(value_parser = tf_path,
        long = "model_config_file",
        value_name = "FILE",
        alias = "model-config-file",
        help_heading = "Models"
    )]
    pub model_config_file: Option<PathBuf>,
    /// Seconds between re-reads of --model_config_file, applied as HandleReloadConfigRequest
    /// does; 0 reads it once.
    #[arg(long = "model_config_file_poll_wait_seconds", value_name = "SECONDS", default_value_t = 0,
          value_parser = tf_i32, allow_negative_numbers = true, help_heading = "Models")]
    pub model_config_file_poll_wait_seconds: i32,
    /// Seconds between looks for new or removed version directories (0: look once at start).
    #[arg(
        long = "file_system_poll_wait_seconds",
        default_value_t = 1,
        value_name = "SECONDS",
        alias = "file-system-poll-wait-seconds",
        value_parser = tf_i32,
        allow_negative_numbers = true,
        help_heading = "Models"
    )]
    pub file_system_poll_wait_seconds: i32,
    /// Comma-separated tag-set of the meta graph to load from each SavedModel.
    #[arg(
        long = "saved_model_tags",
        value_name = "TAGS",
        default_value = "serve",
        help_heading = "Models"
    )]
    pub saved_model_tags: String,
    /// Let version labels in the model config point at versions not loaded yet.
    #[arg(long = "allow_version_labels_for_unavailable_models", value_name = "BOOL", value_parser = tf_bool, help_heading = "Models")]
    pub allow_version_labels_for_unavailable_models: Option<bool>,
    /// Threads loading versions at once (0: one at a time in the manager's loop).
    #[arg(long = "num_load_threads", value_name = "N", value_parser = tf_i32,
          allow_negative_numbers = true, help_heading = "Models")]
    pub num_load_threads: Option<i32>,
    /// Threads unloading versions at once (0: one at a time in the manager's loop).
    #[arg(long = "num_unload_threads", value_name = "N", value_parser = tf_i32,
          allow_negative_numbers = true, help_heading = "Models")]
    pub num_unload_threads: Option<i32>,
    /// Further attempts to load a version after its first load fails.
    #[arg(long = "max_num_load_retries", value_name = "N", default_value_t = 5,
          value_parser = tf_i32, allow_negative_numbers = true, help_heading = "Models")]
    pub max_num_load_retries: i32,
    /// Microseconds between load attempts.
    #[arg(long = "load_retry_interval_micros", value_name = "MICROS", default_value_t = 60_000_000,
          value_parser = tf_i64, allow_negative_numbers = true, help_heading = "Models")]
    pub load_retry_interval_micros: i64,
    /// TF Serving flushes file-system caches after loads; smtool keeps none to flush.
    #[arg(long = "flush_filesystem_caches", value_name = "BOOL", value_parser = tf_bool, help_heading = "Models")]
    pub flush_filesystem_caches: Option<bool>,
    /// TF Serving drops unused MetaGraphDef fields to save memory [default: true].
    #[arg(long = "remove_unused_fields_from_bundle_metagraph", value_name = "BOOL", value_parser = tf_bool, help_heading = "Models")]
    pub remove_unused_fields_from_bundle_metagraph: Option<bool>,
    /// Refuse :classify / :regress / :predict on a signature whose method_name is another.
    #[arg(long = "enable_signature_method_name_check", value_name = "BOOL", value_parser = tf_bool, help_heading = "Models")]
    pub enable_signature_method_name_check: Option<bool>,

    /// Address to listen on; use 0.0.0.0 to accept connections from other machines.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the gRPC API (tensorflow.serving.PredictionService and ModelService; 0 picks a
    /// free port). Same --host as the REST API.
    #[arg(
        long,
        default_value_t = 8500,
        visible_alias = "grpc-port",
        alias = "grpc_port",
        help_heading = "gRPC"
    )]
    pub port: u16,
    /// Also serve gRPC on this Unix socket.
    #[arg(value_parser = tf_path, long = "grpc_socket_path", value_name = "PATH", help_heading = "gRPC")]
    pub grpc_socket_path: Option<PathBuf>,
    /// gRPC channel arguments, KEY=VALUE,... (e.g. grpc.max_receive_message_length=...).
    #[arg(
        long = "grpc_channel_arguments",
        value_name = "ARGS",
        help_heading = "gRPC"
    )]
    pub grpc_channel_arguments: Option<String>,
    /// Most gRPC requests handled at once [default: 4 per CPU].
    #[arg(long = "grpc_max_threads", value_name = "N", value_parser = tf_i32,
          allow_negative_numbers = true, help_heading = "gRPC")]
    pub grpc_max_threads: Option<i32>,
    /// TF Serving's SSLConfig (protobuf text): server_key, server_cert, custom_ca,
    /// client_verify; serves gRPC over TLS.
    #[arg(value_parser = tf_path, long = "ssl_config_file", value_name = "FILE", help_heading = "gRPC")]
    pub ssl_config_file: Option<PathBuf>,
    /// Google ALTS credentials (Google Cloud only): refused.
    #[arg(long = "use_alts_credentials", value_name = "BOOL", value_parser = tf_bool, help_heading = "gRPC")]
    pub use_alts_credentials: Option<bool>,
    /// Serve grpc.health.v1.Health on the gRPC port(s).
    #[arg(long = "enable_grpc_healthcheck_service", value_name = "BOOL", value_parser = tf_bool, help_heading = "gRPC")]
    pub enable_grpc_healthcheck_service: Option<bool>,
    /// Write Predict responses' tensors as tensor_content bytes instead of typed lists.
    #[arg(long = "enable_serialization_as_tensor_content", value_name = "BOOL", value_parser = tf_bool, help_heading = "gRPC")]
    pub enable_serialization_as_tensor_content: Option<bool>,
    /// TensorFlow's profiler gRPC service [default: true]; not reachable through the C API.
    #[arg(long = "enable_profiler", value_name = "BOOL", value_parser = tf_bool, help_heading = "gRPC")]
    pub enable_profiler: Option<bool>,

    /// Port of the REST API (0 picks a free port).
    #[arg(
        long = "rest_api_port",
        default_value_t = 8501,
        alias = "rest-api-port",
        help_heading = "REST"
    )]
    pub rest_api_port: u16,
    /// Threads answering REST requests [default: 4 per CPU].
    #[arg(long = "rest_api_num_threads", value_name = "N", value_parser = tf_i32,
          allow_negative_numbers = true, help_heading = "REST")]
    pub rest_api_num_threads: Option<i32>,
    /// Time limit of one REST request, in milliseconds.
    #[arg(long = "rest_api_timeout_in_ms", value_name = "MS", default_value_t = 30000,
          value_parser = tf_i32, allow_negative_numbers = true, help_heading = "REST")]
    pub rest_api_timeout_in_ms: i32,
    /// Answer with CORS headers (Access-Control-Allow-Origin: *) and to preflight requests.
    #[arg(long = "rest_api_enable_cors_support", value_name = "BOOL", value_parser = tf_bool, help_heading = "REST")]
    pub rest_api_enable_cors_support: Option<bool>,
    /// Largest request body accepted, in bytes; larger requests get HTTP 413. Also what one
    /// request's tensors, and one response's, may hold: this many elements and this many bytes
    /// of strings (HTTP 429 / RESOURCE_EXHAUSTED beyond).
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES", help_heading = "REST")]
    pub max_request_bytes: usize,
    /// TensorFlow Serving's monitoring config (a MonitoringConfig in protobuf text format):
    /// `prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }` serves
    /// Prometheus metrics at that path on the REST port.
    #[arg(value_parser = tf_path, long = "monitoring_config_file", value_name = "FILE", alias = "monitoring-config-file", help_heading = "REST")]
    pub monitoring_config_file: Option<PathBuf>,

    /// Replay each version's assets.extra/tf_serving_warmup_requests before serving it.
    #[arg(
        long = "enable_model_warmup",
        alias = "enable-model-warmup",
        value_name = "BOOL",
        default_value_t = true,
        value_parser = tf_bool,
        help_heading = "Batching and warmup"
    )]
    pub enable_model_warmup: bool,
    /// Times each warmup request is replayed (used when > 0).
    #[arg(long = "num_request_iterations_for_warmup", value_name = "N", value_parser = tf_i32,
          allow_negative_numbers = true, help_heading = "Batching and warmup")]
    pub num_request_iterations_for_warmup: Option<i32>,
    /// Merge concurrent requests to the same signature into one batched TensorFlow run.
    #[arg(
        long = "enable_batching",
        alias = "enable-batching",
        value_name = "BOOL",
        default_value_t = false,
        value_parser = tf_bool,
        help_heading = "Batching and warmup"
    )]
    pub enable_batching: bool,
    /// TensorFlow Serving's batching parameters (a BatchingParameters in protobuf text format:
    /// `max_batch_size { value: 128 } batch_timeout_micros { value: 0 } ...`); used with
    /// --enable_batching.
    #[arg(value_parser = tf_path, long = "batching_parameters_file", value_name = "FILE", alias = "batching-parameters-file",
          help_heading = "Batching and warmup")]
    pub batching_parameters_file: Option<PathBuf>,
    /// Read each model's batching parameters from batching_params.pbtxt in its SavedModel
    /// directory (with --enable_batching).
    #[arg(long = "enable_per_model_batching_parameters", value_name = "BOOL", value_parser = tf_bool, help_heading = "Batching and warmup")]
    pub enable_per_model_batching_parameters: Option<bool>,

    /// Threads TensorFlow may use inside one op; 0 lets TensorFlow choose (one per core).
    #[arg(long = "tensorflow_intra_op_parallelism", alias = "tensorflow-intra-op-parallelism",
          value_name = "N", default_value_t = 0, value_parser = tf_i32, allow_negative_numbers = true,
          help_heading = "TensorFlow")]
    pub tensorflow_intra_op_parallelism: i32,
    /// Ops TensorFlow may run at the same time; 0 lets TensorFlow choose (one per core).
    #[arg(long = "tensorflow_inter_op_parallelism", alias = "tensorflow-inter-op-parallelism",
          value_name = "N", default_value_t = 0, value_parser = tf_i32, allow_negative_numbers = true,
          help_heading = "TensorFlow")]
    pub tensorflow_inter_op_parallelism: i32,
    /// Both of the above at once when neither is given (TF Serving's older flag).
    #[arg(long = "tensorflow_session_parallelism", alias = "tensorflow-session-parallelism",
          value_name = "N", default_value_t = 0, value_parser = tf_i32, allow_negative_numbers = true,
          help_heading = "TensorFlow")]
    pub tensorflow_session_parallelism: i32,
    /// The session ConfigProto (protobuf text) for every model; the thread flags above
    /// override its thread counts when given.
    #[arg(value_parser = tf_path, long = "tensorflow_session_config_file", value_name = "FILE", help_heading = "TensorFlow")]
    pub tensorflow_session_config_file: Option<PathBuf>,
    /// TF Serving's PlatformConfigMap (protobuf text): the tensorflow platform's
    /// SessionBundleConfig replaces the session, batching and tag flags.
    #[arg(value_parser = tf_path, long = "platform_config_file", value_name = "FILE", help_heading = "TensorFlow")]
    pub platform_config_file: Option<PathBuf>,
    /// GPU memory each session may take, 0 to 1 (0: TensorFlow chooses).
    #[arg(long = "per_process_gpu_memory_fraction", value_name = "FRACTION", value_parser = tf_f32,
          allow_negative_numbers = true, help_heading = "TensorFlow")]
    pub per_process_gpu_memory_fraction: Option<f32>,
    /// Let models compile with XLA:CPU (jit_compile); off, as in TF Serving, they are refused.
    #[arg(long = "xla_cpu_compilation_enabled", value_name = "BOOL", value_parser = tf_bool, help_heading = "TensorFlow")]
    pub xla_cpu_compilation_enabled: Option<bool>,
    /// XLA:CPU and XLA:GPU compilation; this TensorFlow has no GPU.
    #[arg(long = "xla_gpu_compilation_enabled", value_name = "BOOL", value_parser = tf_bool, help_heading = "TensorFlow")]
    pub xla_gpu_compilation_enabled: Option<bool>,
    /// Mixed-precision graph rewriting (e.g. bfloat16): refused.
    #[arg(
        long = "mixed_precision",
        value_name = "MODE",
        help_heading = "TensorFlow"
    )]
    pub mixed_precision: Option<String>,
    /// TF Serving's ThreadPoolConfig for per-request thread pools: refused.
    #[arg(value_parser = tf_path, long = "thread_pool_factory_config_file", value_name = "FILE", help_heading = "TensorFlow")]
    pub thread_pool_factory_config_file: Option<PathBuf>,
    /// Serve model.tflite with TensorFlow Lite instead of saved_model.pb: refused.
    #[arg(long = "prefer_tflite_model", value_name = "BOOL", value_parser = tf_bool, help_heading = "TensorFlow")]
    pub prefer_tflite_model: Option<bool>,
    /// TensorFlow Lite interpreter pools (with --prefer_tflite_model only).
    #[arg(long = "num_tflite_pools", value_name = "N", value_parser = tf_i32,
          allow_negative_numbers = true, help_heading = "TensorFlow")]
    pub num_tflite_pools: Option<i32>,
    /// TensorFlow Lite interpreters per pool (with --prefer_tflite_model only).
    #[arg(long = "num_tflite_interpreters_per_pool", value_name = "N", value_parser = tf_i32,
          allow_negative_numbers = true, help_heading = "TensorFlow")]
    pub num_tflite_interpreters_per_pool: Option<i32>,
    /// TPU builds of TF Serving initialize the TPU system unless this is set; no TPU here.
    #[arg(long = "skip_initialize_tpu", value_name = "BOOL", value_parser = tf_bool, help_heading = "TensorFlow")]
    pub skip_initialize_tpu: Option<bool>,
    /// Seconds a client has to send a REST request's headers (also how long an idle
    /// keep-alive connection stays open), or a new gRPC connection to start HTTP/2.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Connections")]
    pub header_timeout_seconds: u64,
    /// Seconds a connection may move no bytes while the server waits on it (a REST body
    /// being read or a response being written; any time on gRPC, whose server pings idle
    /// clients more often) before it is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Connections")]
    pub idle_timeout_seconds: u64,
    /// Open connections per API (REST and gRPC each); more clients wait until one closes.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Connections")]
    pub max_connections: u64,
    /// On SIGINT/SIGTERM, seconds requests in flight have to finish; then their TensorFlow
    /// runs are cancelled and the server exits. A second signal exits at once.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 20,
        help_heading = "Connections"
    )]
    pub shutdown_timeout_seconds: u64,
    /// Directory with libtensorflow.so (or a Python tensorflow package directory).
    #[arg(value_parser = tf_path, long, value_name = "DIR", help_heading = "TensorFlow")]
    pub tensorflow_dir: Option<PathBuf>,
    /// Never download TensorFlow; fail if it is not installed.
    #[arg(long, help_heading = "TensorFlow")]
    pub no_fetch: bool,

    /// Print smtool's and TensorFlow's versions, as `tensorflow_model_server --version` does.
    #[arg(long, value_name = "BOOL", default_value_t = false, value_parser = tf_bool)]
    pub version: bool,
    /// Show TensorFlow's start-up output and log one line per request.
    #[arg(long, short)]
    pub verbose: bool,
}

#[cfg(feature = "serve")]
/// How every TF Serving boolean flag (value BOOL, read by [`tf_bool`]) is given, as absl
/// reads it: `--flag` alone is true, and a value only after `=` (in `--flag false`, `false` is
/// another argument).
fn tf_bool_flag(arg: clap::Arg) -> clap::Arg {
    if arg.get_value_names() != Some(&["BOOL".into()]) {
        return arg;
    }
    arg.num_args(0..=1)
        .require_equals(true)
        .default_missing_value("true")
}

#[cfg(feature = "serve")]
/// A TF Serving boolean flag's value: `true`/`false` in any case, `1`/`0`.
fn tf_bool(s: &str) -> Result<bool, String> {
    if s.eq_ignore_ascii_case("true") || s == "1" {
        Ok(true)
    } else if s.eq_ignore_ascii_case("false") || s == "0" {
        Ok(false)
    } else {
        Err(format!("'{s}' is not a boolean: use true, false, 1 or 0"))
    }
}

#[cfg(feature = "serve")]
/// A TF Serving integer flag's value, read as absl::SimpleAtoi does: ASCII whitespace around
/// it, an optional sign, decimal digits, within the type's range.
fn tf_int<T: std::str::FromStr>(s: &str, type_name: &str) -> Result<T, String> {
    let t = s.trim_ascii();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{s}' is not an integer"));
    }
    t.strip_prefix('+')
        .unwrap_or(t)
        .parse()
        .map_err(|_| format!("'{s}' is out of range for {type_name}"))
}

#[cfg(feature = "serve")]
/// A TF Serving path flag's value; empty means unset.
fn tf_path(s: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(s))
}

#[cfg(feature = "serve")]
fn tf_i32(s: &str) -> Result<i32, String> {
    tf_int(s, "int32")
}

#[cfg(feature = "serve")]
fn tf_i64(s: &str) -> Result<i64, String> {
    tf_int(s, "int64")
}

#[cfg(feature = "serve")]
/// A TF Serving float flag's value (absl::SimpleAtof: whitespace around it allowed).
fn tf_f32(s: &str) -> Result<f32, String> {
    s.trim_ascii()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))
}

#[cfg(feature = "serve")]
/// What one TensorFlow Serving flag that smtool cannot act on does when given.
enum Unsupported {
    /// Refused: the value needs something this build cannot have.
    Refuse(String),
    /// Accepted; one warning line says it has no effect and why.
    Warn(String),
}

#[cfg(feature = "serve")]
impl ServeArgs {
    /// The validated serve options; `warnings` collects one line per flag accepted without
    /// effect.
    pub fn options(&self) -> anyhow::Result<crate::serve::ServeOptions> {
        let mut warnings = Vec::new();
        for (flag, verdict) in self.unsupported() {
            match verdict {
                Unsupported::Refuse(why) => anyhow::bail!("--{flag}: {why}"),
                Unsupported::Warn(why) => warnings.push(format!("--{flag} has no effect: {why}")),
            }
        }
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
        // TF Serving treats an empty string flag as unset.
        let model_base_path = non_empty(&self.model_base_path);
        let config_file = non_empty(&self.model_config_file);
        let model_name = self.model_name.clone().filter(|n| !n.is_empty());
        let path = match (&self.path, model_base_path, &config_file) {
            (Some(p), _, _) => Some((p.clone(), model_name)),
            (None, Some(_), Some(_)) => {
                warnings.push(
                    "--model_base_path and --model_name are ignored because --model_config_file is set (as in TF Serving)"
                        .to_owned(),
                );
                None
            }
            (None, Some(base), None) => Some((
                base.clone(),
                Some(model_name.unwrap_or_else(|| "default".to_owned())),
            )),
            (None, None, _) => {
                if model_name.is_some() {
                    anyhow::bail!("--model_name needs a PATH (or --model_base_path) to name");
                }
                None
            }
        };
        if self.model_config_file_poll_wait_seconds != 0 && config_file.is_none() {
            warnings.push(
                "--model_config_file_poll_wait_seconds has no effect without --model_config_file"
                    .to_owned(),
            );
        }
        let sources = crate::serve::config::ModelSources {
            path,
            named,
            config_file: config_file.cloned(),
        };
        let fixed_models = if sources.path.is_some() || !sources.named.is_empty() {
            crate::serve::config::resolve_models(&crate::serve::config::ModelSources {
                config_file: None,
                ..sources.clone()
            })?
            .into_iter()
            .map(|m| m.name)
            .collect()
        } else {
            Vec::new()
        };
        if self.file_system_poll_wait_seconds < 0 {
            warnings.push(format!(
                "--file_system_poll_wait_seconds={}: a negative value (TF Serving's testing setting) looks at the model directories once at start and never again",
                self.file_system_poll_wait_seconds
            ));
        }
        Ok(crate::serve::ServeOptions {
            models: crate::serve::config::resolve_models(&sources)?,
            host: self.host.clone(),
            port: self.rest_api_port,
            library: crate::serve::library::LibraryOptions::from_env(
                self.tensorflow_dir.clone(),
                !self.no_fetch,
            ),
            http: crate::serve::http::HttpOptions {
                max_body_bytes: self.max_request_bytes,
                timeout_ms: i64::from(self.rest_api_timeout_in_ms),
                cors: self.rest_api_enable_cors_support == Some(true),
                max_in_flight: self.rest_api_num_threads.and_then(positive),
                connections: self.connection_options(),
            },
            poll_seconds: u64::try_from(self.file_system_poll_wait_seconds).unwrap_or(0),
            verbose: self.verbose,
            grpc_port: self.port,
            grpc: self.grpc_options(&mut warnings)?,
            grpc_socket_path: non_empty(&self.grpc_socket_path).cloned(),
            config_poll_seconds: u64::try_from(self.model_config_file_poll_wait_seconds)
                .unwrap_or(0),
            config_file: config_file.cloned(),
            fixed_models,
            shutdown_timeout: std::time::Duration::from_secs(self.shutdown_timeout_seconds),
            server: self.server_options()?,
            warnings,
        })
    }

    /// gRPC settings from `--grpc_channel_arguments` (TF Serving's `KEY=VALUE,...`, handed to
    /// gRPC's server builder), `--grpc_max_threads` and the service flags.
    fn grpc_options(
        &self,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<crate::serve::grpc::GrpcOptions> {
        let mut options = crate::serve::grpc::GrpcOptions {
            max_message_bytes: self.max_request_bytes,
            max_in_flight: self.grpc_max_threads.and_then(positive),
            tensor_content: self.enable_serialization_as_tensor_content == Some(true),
            health: self.enable_grpc_healthcheck_service == Some(true),
            connections: self.connection_options(),
            ..Default::default()
        };
        if let Some(file) = non_empty(&self.ssl_config_file) {
            let ssl: crate::proto::tensorflow::serving::SslConfig =
                crate::serve::config::read_text_proto(
                    file,
                    "tensorflow.serving.SSLConfig",
                    "SSL config file",
                )?;
            options.tls = Some(
                crate::serve::grpc::tls_config(&ssl)
                    .map_err(|e| anyhow::anyhow!("--ssl_config_file '{}': {e}", file.display()))?,
            );
        }
        let args = self.grpc_channel_arguments.as_deref().unwrap_or("");
        for arg in args.split(',').filter(|a| !a.is_empty()) {
            let Some((key, value)) = arg.split_once('=') else {
                anyhow::bail!(
                    "--grpc_channel_arguments: '{arg}' is not KEY=VALUE (e.g. grpc.max_receive_message_length=104857600)"
                );
            };
            let number = || {
                value.parse::<i64>().map_err(|_| {
                    anyhow::anyhow!(
                        "--grpc_channel_arguments: {key} takes an integer, not '{value}'"
                    )
                })
            };
            // gRPC reads -1 (or any negative size) as "no limit".
            let size = |n: i64| usize::try_from(n).ok();
            let millis = |n: i64| {
                u64::try_from(n)
                    .ok()
                    .filter(|&ms| ms > 0)
                    .map(std::time::Duration::from_millis)
            };
            match key {
                "grpc.max_receive_message_length" => {
                    options.max_message_bytes = size(number()?).unwrap_or(usize::MAX)
                }
                "grpc.max_send_message_length" => options.max_send_bytes = size(number()?),
                "grpc.keepalive_time_ms" => options.keepalive_interval = millis(number()?),
                "grpc.keepalive_timeout_ms" => options.keepalive_timeout = millis(number()?),
                "grpc.max_concurrent_streams" => {
                    options.max_concurrent_streams = u32::try_from(number()?).ok()
                }
                _ => warnings.push(format!(
                    "--grpc_channel_arguments: {key} has no effect: smtool's gRPC server (tonic) acts on grpc.max_receive_message_length, grpc.max_send_message_length, grpc.keepalive_time_ms, grpc.keepalive_timeout_ms and grpc.max_concurrent_streams"
                )),
            }
        }
        Ok(options)
    }

    /// The connection limits of each API.
    fn connection_options(&self) -> crate::serve::connections::ConnectionOptions {
        crate::serve::connections::ConnectionOptions {
            header_timeout: std::time::Duration::from_secs(self.header_timeout_seconds),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_seconds),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }

    /// The TensorFlow Serving flags smtool accepts but cannot act on, when they are given:
    /// refused when set to a value that needs the missing feature, else a warning.
    fn unsupported(&self) -> Vec<(&'static str, Unsupported)> {
        use Unsupported::{Refuse, Warn};
        let mut out = Vec::new();
        let given_bool = |v: Option<bool>| v.is_some();
        if self.use_alts_credentials == Some(true) {
            out.push(("use_alts_credentials", Refuse(
                "Google ALTS credentials exist only on Google Cloud's own gRPC stack; smtool serves gRPC in the clear or over TLS (--ssl_config_file)".to_owned())));
        }
        if self.prefer_tflite_model == Some(true) {
            out.push(("prefer_tflite_model", Refuse(
                "TensorFlow Lite is not part of the TensorFlow C API smtool runs models on; serve the SavedModel (saved_model.pb) instead".to_owned())));
        }
        for (flag, value) in [
            ("num_tflite_pools", self.num_tflite_pools),
            (
                "num_tflite_interpreters_per_pool",
                self.num_tflite_interpreters_per_pool,
            ),
        ] {
            if value.is_some() {
                out.push((flag, Warn("it sizes TensorFlow Lite interpreters, used only with --prefer_tflite_model, which smtool does not support".to_owned())));
            }
        }
        if given_bool(self.skip_initialize_tpu) {
            out.push((
                "skip_initialize_tpu",
                Warn("the CPU TensorFlow smtool runs has no TPU system to initialize".to_owned()),
            ));
        }
        if self.xla_gpu_compilation_enabled == Some(true) {
            out.push(("xla_gpu_compilation_enabled", Refuse(
                "the TensorFlow smtool runs (tensorflow-cpu) has no GPU to compile for; use --xla_cpu_compilation_enabled for XLA:CPU".to_owned())));
        }
        if self.enable_profiler == Some(true) {
            out.push(("enable_profiler", Warn(
                "TensorFlow's profiler gRPC service is not reachable through the TensorFlow C API, so smtool does not serve it".to_owned())));
        }
        if let Some(mode) = self.mixed_precision.as_deref().filter(|m| !m.is_empty()) {
            out.push(("mixed_precision", Refuse(format!(
                "'{mode}': smtool runs graphs in the precision the model was saved in; convert the model (e.g. with a Keras mixed-precision policy) before serving it"))));
        }
        if let Some(file) = non_empty(&self.thread_pool_factory_config_file) {
            out.push(("thread_pool_factory_config_file", Refuse(format!(
                "'{}': per-request thread pool factories are TF Serving C++ plug-ins that the TensorFlow C API cannot reach; size TensorFlow's pools with --tensorflow_intra_op_parallelism and --tensorflow_inter_op_parallelism",
                file.display()))));
        }
        if given_bool(self.flush_filesystem_caches) {
            out.push(("flush_filesystem_caches", Warn(
                "smtool reads models from the local file system, which keeps no cache of TensorFlow's to flush".to_owned())));
        }
        if given_bool(self.remove_unused_fields_from_bundle_metagraph) {
            out.push((
                "remove_unused_fields_from_bundle_metagraph",
                Warn(
                    "smtool keeps no MetaGraphDef of a loaded model beyond its signatures"
                        .to_owned(),
                ),
            ));
        }
        for (flag, value) in [
            ("num_load_threads", self.num_load_threads),
            ("num_unload_threads", self.num_unload_threads),
        ] {
            if value.unwrap_or(0) > 0 {
                out.push((flag, Warn(
                    "smtool loads and unloads versions one at a time, in the order the poller finds them".to_owned())));
            }
        }
        if self.enable_per_model_batching_parameters == Some(true) {
            out.push(("enable_per_model_batching_parameters", Warn(
                "smtool does not read a model's batching_params.pbtxt; --batching_parameters_file applies to every model".to_owned())));
        }
        if let Some(file) = non_empty(&self.platform_config_file) {
            out.push(("platform_config_file", Refuse(format!(
                "'{}': smtool serves the tensorflow platform from its flags only; give the session config with --tensorflow_session_config_file, batching with --enable_batching and --batching_parameters_file, tags with --saved_model_tags",
                file.display()))));
        }
        out
    }

    /// Warmup, metrics and batching from their flags and files.
    fn server_options(&self) -> anyhow::Result<crate::serve::ServerOptions> {
        let metrics_path = match non_empty(&self.monitoring_config_file) {
            Some(file) => crate::serve::config::monitoring_from_file(file)?,
            None => None,
        };
        let batching = match (
            self.enable_batching,
            non_empty(&self.batching_parameters_file),
        ) {
            (true, Some(file)) => Some(crate::serve::config::BatchingParameters::from_file(
                file,
            )?),
            (true, None) => Some(crate::serve::config::BatchingParameters::default()),
            (false, Some(file)) => anyhow::bail!(
                "--batching_parameters_file '{}' is given but batching is off; add --enable_batching",
                file.display()
            ),
            (false, None) => None,
        };
        let threads = crate::serve::config::SessionThreads {
            intra_op: self.tensorflow_intra_op_parallelism,
            inter_op: self.tensorflow_inter_op_parallelism,
            session: self.tensorflow_session_parallelism,
        };
        threads.check()?;
        let session_base = non_empty(&self.tensorflow_session_config_file)
            .map(|file| crate::serve::config::session_config_from_file(file))
            .transpose()?;
        let tags: Vec<String> = self
            .saved_model_tags
            .split(',')
            .map(str::to_owned)
            .collect();
        Ok(crate::serve::ServerOptions {
            warmup: self.enable_model_warmup,
            threads,
            load_retries: crate::serve::models::LoadRetries::from_flags(
                self.max_num_load_retries,
                self.load_retry_interval_micros,
            ),
            session_base,
            gpu_memory_fraction: self.per_process_gpu_memory_fraction.unwrap_or(0.0),
            tags,
            metrics_path,
            warmup_iterations: self
                .num_request_iterations_for_warmup
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            run: crate::serve::runner::RunOptions {
                batching,
                limits: crate::serve::limits::Limits::from_request_bytes(self.max_request_bytes),
                method_name_check: self.enable_signature_method_name_check == Some(true),
            },
        })
    }
}

#[cfg(feature = "serve")]
/// A thread-count flag as a limit: `None` for 0 or less.
fn positive(n: i32) -> Option<usize> {
    usize::try_from(n).ok().filter(|&n| n > 0)
}

#[cfg(feature = "serve")]
/// A path flag, `None` when absent or empty (TF Serving's "unset").
fn non_empty(path: &Option<PathBuf>) -> Option<&PathBuf> {
    path.as_ref().filter(|p| !p.as_os_str().is_empty())
}

#[cfg(all(test, feature = "serve"))]
mod tests {
    use super::*;

    /// Every flag of TensorFlow Serving 2.21's main.cc: name, type, and its default as
    /// `tensorflow_model_server --help` prints it (CPU-count defaults as a number).
    const TF_SERVING_FLAGS: &[(&str, &str, &str)] = &[
        ("port", "int32", "8500"),
        ("grpc_socket_path", "string", ""),
        ("rest_api_port", "int32", "8501"),
        ("rest_api_num_threads", "int32", "8"),
        ("rest_api_timeout_in_ms", "int32", "30000"),
        ("rest_api_enable_cors_support", "bool", "false"),
        ("enable_batching", "bool", "false"),
        (
            "allow_version_labels_for_unavailable_models",
            "bool",
            "false",
        ),
        ("batching_parameters_file", "string", ""),
        ("enable_per_model_batching_parameters", "bool", "false"),
        ("model_config_file", "string", ""),
        ("model_config_file_poll_wait_seconds", "int32", "0"),
        ("model_name", "string", "default"),
        ("model_base_path", "string", ""),
        ("num_load_threads", "int32", "0"),
        ("num_unload_threads", "int32", "0"),
        ("max_num_load_retries", "int32", "5"),
        ("load_retry_interval_micros", "int64", "60000000"),
        ("file_system_poll_wait_seconds", "int32", "1"),
        ("flush_filesystem_caches", "bool", "true"),
        ("tensorflow_session_parallelism", "int64", "0"),
        ("tensorflow_session_config_file", "string", ""),
        ("tensorflow_intra_op_parallelism", "int64", "0"),
        ("tensorflow_inter_op_parallelism", "int64", "0"),
        ("use_alts_credentials", "bool", "false"),
        ("ssl_config_file", "string", ""),
        ("platform_config_file", "string", ""),
        ("per_process_gpu_memory_fraction", "float", "0.000000"),
        ("saved_model_tags", "string", "serve"),
        ("grpc_channel_arguments", "string", ""),
        ("grpc_max_threads", "int32", "8"),
        ("enable_model_warmup", "bool", "true"),
        ("num_request_iterations_for_warmup", "int32", "0"),
        ("version", "bool", "false"),
        ("monitoring_config_file", "string", ""),
        ("remove_unused_fields_from_bundle_metagraph", "bool", "true"),
        ("prefer_tflite_model", "bool", "false"),
        ("num_tflite_pools", "int32", "2"),
        ("num_tflite_interpreters_per_pool", "int32", "1"),
        ("enable_signature_method_name_check", "bool", "false"),
        ("xla_cpu_compilation_enabled", "bool", "false"),
        ("xla_gpu_compilation_enabled", "bool", "false"),
        ("enable_profiler", "bool", "true"),
        ("thread_pool_factory_config_file", "string", ""),
        ("mixed_precision", "string", ""),
        ("skip_initialize_tpu", "bool", "false"),
        ("enable_grpc_healthcheck_service", "bool", "false"),
        ("enable_serialization_as_tensor_content", "bool", "false"),
    ];

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let mut argv = vec!["smtool", "serve"];
        argv.extend_from_slice(args);
        let matches = command().try_get_matches_from(argv)?;
        match <Cli as clap::FromArgMatches>::from_arg_matches(&matches)?.command {
            Command::Serve(args) => Ok(*args),
            other => panic!("not serve: {other:?}"),
        }
    }

    fn model() -> String {
        format!("{}/fixtures/half_plus_two", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn every_tf_serving_flag_is_accepted_at_its_default() {
        let base = model();
        for &(flag, kind, default) in TF_SERVING_FLAGS {
            let arg = format!("--{flag}={default}");
            let mut args = vec![arg.as_str()];
            if flag != "model_base_path" {
                args.push(&base);
            } else {
                args.clear();
            }
            let base_arg = format!("--model_base_path={base}");
            if flag == "model_base_path" {
                args.push(&base_arg);
            }
            let parsed = parse(&args).unwrap_or_else(|e| panic!("{arg}: {e}"));
            if flag == "version" {
                continue;
            }
            let options = parsed.options().unwrap_or_else(|e| panic!("{arg}: {e:#}"));
            // Only flags that can have no effect here say so at their default.
            let no_effect = [
                "flush_filesystem_caches",
                "remove_unused_fields_from_bundle_metagraph",
                "enable_profiler",
                "num_tflite_pools",
                "num_tflite_interpreters_per_pool",
                "skip_initialize_tpu",
            ];
            assert_eq!(
                options.warnings.len(),
                usize::from(no_effect.contains(&flag)),
                "{arg}: {:?}",
                options.warnings
            );
            // The `--flag value` form reads the same (booleans take no separate value).
            if kind != "bool" && !default.is_empty() {
                parse(&[&format!("--{flag}"), default, &base])
                    .unwrap_or_else(|e| panic!("--{flag} {default}: {e}"));
            }
        }
    }

    #[test]
    fn booleans_read_as_tf_serving_reads_them() {
        let base = model();
        let cases: &[(&[&str], Option<bool>)] = &[
            (&[], None),
            (&["--enable_signature_method_name_check"], Some(true)),
            (&["--enable_signature_method_name_check=true"], Some(true)),
            (&["--enable_signature_method_name_check=TRUE"], Some(true)),
            (&["--enable_signature_method_name_check=1"], Some(true)),
            (&["--enable_signature_method_name_check=false"], Some(false)),
            (&["--enable_signature_method_name_check=False"], Some(false)),
            (&["--enable_signature_method_name_check=0"], Some(false)),
            // The last one given wins.
            (
                &[
                    "--enable_signature_method_name_check",
                    "--enable_signature_method_name_check=false",
                ],
                Some(false),
            ),
        ];
        for (args, want) in cases {
            let mut argv = args.to_vec();
            argv.push(&base);
            let got = parse(&argv).expect("parses");
            assert_eq!(got.enable_signature_method_name_check, *want, "{args:?}");
        }
        let e = parse(&["--enable_batching=yes", &base]).expect_err("not a boolean");
        assert!(e.to_string().contains("'yes' is not a boolean"), "{e}");
        // `--enable_batching false` is the flag and then a PATH, as in TF Serving (where the
        // bare word is an unknown argument); here PATH is then given twice.
        assert!(parse(&["--enable_batching", "false", &base]).is_err());
        let on = parse(&["--enable_model_warmup=false", "--enable_batching", &base]).expect("ok");
        assert!(!on.enable_model_warmup && on.enable_batching);
    }

    #[test]
    fn integers_read_as_absl_simple_atoi() {
        let base = model();
        for (value, want) in [
            ("250", Some(250)),
            ("+250", Some(250)),
            (" 250 ", Some(250)),
            ("-1", Some(-1)),
            ("2147483647", Some(i32::MAX)),
            ("2147483648", None),
            ("12ms", None),
            ("0x10", None),
            ("", None),
            ("1.5", None),
        ] {
            let arg = format!("--rest_api_timeout_in_ms={value}");
            let got = parse(&[&arg, &base]);
            match want {
                Some(n) => assert_eq!(got.expect("parses").rest_api_timeout_in_ms, n, "{arg}"),
                None => {
                    let e = got.expect_err("refused");
                    assert!(e.to_string().contains("--rest_api_timeout_in_ms"), "{e}");
                }
            }
        }
        // Both forms, and a negative number after a space.
        let a = parse(&["--file_system_poll_wait_seconds", "-1", &base]).expect("ok");
        assert_eq!(a.file_system_poll_wait_seconds, -1);
        let a = parse(&["--load_retry_interval_micros=9000000000", &base]).expect("int64");
        assert_eq!(a.load_retry_interval_micros, 9_000_000_000);
        let a = parse(&["--per_process_gpu_memory_fraction= 0.5", &base]).expect("float");
        assert_eq!(a.per_process_gpu_memory_fraction, Some(0.5));
    }

    #[test]
    fn smtool_spellings_keep_working() {
        let a = parse(&[
            "fixtures/iris_tf1",
            "--model-name",
            "iris",
            "--rest-api-port",
            "0",
            "--grpc-port",
            "0",
            "--enable-model-warmup=false",
            "--file-system-poll-wait-seconds",
            "0",
            "--tensorflow-intra-op-parallelism",
            "2",
        ])
        .expect("parses");
        assert_eq!(a.model_name.as_deref(), Some("iris"));
        assert_eq!((a.rest_api_port, a.port), (0, 0));
        assert!(!a.enable_model_warmup);
        assert_eq!(a.tensorflow_intra_op_parallelism, 2);
        let e = parse(&["--no_such_flag=1"]).expect_err("unknown flag");
        assert!(e.to_string().contains("--no_such_flag"), "{e}");
    }

    #[test]
    fn model_base_path_is_named_default_as_in_tf_serving() {
        let base = model();
        let a = parse(&[&format!("--model_base_path={base}")]).expect("parses");
        let options = a.options().expect("options");
        assert_eq!(options.models[0].name, "default");
        let a = parse(&[&base]).expect("parses");
        assert_eq!(
            a.options().expect("options").models[0].name,
            "half_plus_two"
        );
    }

    #[test]
    fn features_that_cannot_exist_here_are_refused_with_the_reason() {
        let base = model();
        for (arg, says) in [
            ("--use_alts_credentials", "ALTS"),
            ("--prefer_tflite_model=true", "TensorFlow Lite"),
            ("--xla_gpu_compilation_enabled", "no GPU"),
            ("--mixed_precision=bfloat16", "'bfloat16'"),
            (
                "--thread_pool_factory_config_file=pools.pbtxt",
                "'pools.pbtxt'",
            ),
            (
                "--platform_config_file=platform.pbtxt",
                "--tensorflow_session_config_file",
            ),
        ] {
            let e = parse(&[arg, &base])
                .expect("parses")
                .options()
                .expect_err("refused");
            let flag = arg.trim_start_matches("--").split('=').next().unwrap_or("");
            let msg = format!("{e:#}");
            assert!(
                msg.starts_with(&format!("--{flag}: ")) && msg.contains(says),
                "{msg}"
            );
        }
        // At their defaults they are accepted without a word.
        let quiet = parse(&[
            "--use_alts_credentials=false",
            "--prefer_tflite_model=false",
            "--xla_gpu_compilation_enabled=false",
            "--mixed_precision=",
            "--thread_pool_factory_config_file=",
            "--enable_profiler=false",
            &base,
        ])
        .expect("parses")
        .options()
        .expect("accepted");
        assert!(quiet.warnings.is_empty(), "{:?}", quiet.warnings);
    }

    #[test]
    fn a_flag_without_effect_warns_once_by_name() {
        let base = model();
        let options = parse(&[
            "--flush_filesystem_caches=false",
            "--skip_initialize_tpu",
            "--num_tflite_pools=4",
            "--enable_profiler",
            "--num_load_threads=4",
            "--enable_per_model_batching_parameters",
            &base,
        ])
        .expect("parses")
        .options()
        .expect("accepted");
        for flag in [
            "flush_filesystem_caches",
            "skip_initialize_tpu",
            "num_tflite_pools",
            "enable_profiler",
            "num_load_threads",
            "enable_per_model_batching_parameters",
        ] {
            let lines: Vec<_> = options
                .warnings
                .iter()
                .filter(|w| w.starts_with(&format!("--{flag} ")))
                .collect();
            assert_eq!(lines.len(), 1, "{flag}: {:?}", options.warnings);
        }
        assert_eq!(options.warnings.len(), 6, "{:?}", options.warnings);
    }
}
