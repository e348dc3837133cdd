//! `smtool run`: one request on one SavedModel, in process, as `smtool serve` would answer it.
//!
//! Inputs are `.npy` / `.npz` arrays (read without pickle, see [`crate::npy`]), JSON literals,
//! `tf.Example` features and image files, or a whole TF Serving REST request body. They become
//! the TF Serving request protos and go through the server's own request core
//! ([`crate::serve::core::Core`]), so the signature and method rules and their errors are the
//! server's. The outputs come back as tensors, with the response body TF Serving would send.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use prost::Message;

use super::add_classify::ImageScale;
use crate::files;
use crate::npy;
use crate::proto::tensorflow as tfp;
use crate::proto::tensorflow::serving as sv;
use crate::proto_ext::dtype_name;
use crate::serve::config::{model_from_path, VersionPolicy};
use crate::serve::core::Core;
use crate::serve::error::ServeError;
use crate::serve::json::{self as serve_json, Json};
use crate::serve::library::{self, LibraryOptions};
use crate::serve::limits::{Budget, Limits};
use crate::serve::metrics::Metrics;
use crate::serve::models::{ManagerOptions, ModelManager, VersionRequest, VersionState};
use crate::serve::runner::{Call, RunOptions as RunnerOptions, Runner};
use crate::serve::servable::LoadOptions;
use crate::serve::tensor::{self, dtype, Tensor, Values};
use crate::serve::tf::TensorFlow;
use crate::serve::{codec, image};
use crate::signature::{self, Endpoint, DEFAULT_SIGNATURE_KEY};

/// The largest request body read (the default request limit of `smtool serve`).
pub const MAX_REQUEST_BYTES: u64 = 64 << 20;

/// The largest image file read.
pub const MAX_IMAGE_BYTES: u64 = 64 << 20;

/// What the inputs, and the outputs, of one run may hold: as `smtool serve
/// --max-request-bytes` of this many bytes would allow (arrays are read from files up to
/// [`npy::MAX_FILE_BYTES`] each).
pub const MAX_TENSOR_BYTES: usize = 1 << 30;

/// Where one input's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// A `.npy` file.
    Npy(PathBuf),
    /// Array NAME (or the only one) of a `.npz` archive.
    Npz(PathBuf, Option<String>),
    /// A JSON value, read as TF Serving reads a columnar `inputs` value.
    Value(String),
    /// A JSON list of feature objects, serialized as `tf.Example`s.
    Examples(String),
    /// An image file, decoded and resized to the input's shape.
    Image(PathBuf),
}

/// `KEY=...`: one input of the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub key: String,
    pub source: InputSource,
}

/// Splits `KEY=REST`.
pub fn split_key(s: &str) -> Result<(&str, &str), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(format!(
            "'{s}' is not KEY=VALUE (KEY: an input of the signature)"
        )),
    }
}

impl Input {
    /// `KEY=FILE.npy`, `KEY=FILE.npz` or `KEY=FILE.npz[NAME]`.
    pub fn array(s: &str) -> Result<Input, String> {
        let (key, file) = split_key(s)?;
        let source = if let Some(open) = file.strip_suffix(']').and_then(|f| f.rfind('[')) {
            let (path, name) = (&file[..open], &file[open + 1..file.len() - 1]);
            if name.is_empty() {
                return Err(format!("'{s}': name the array inside the brackets"));
            }
            InputSource::Npz(PathBuf::from(path), Some(name.to_owned()))
        } else if file.ends_with(".npz") {
            InputSource::Npz(PathBuf::from(file), None)
        } else {
            InputSource::Npy(PathBuf::from(file))
        };
        Ok(Input {
            key: key.to_owned(),
            source,
        })
    }

    fn with(s: &str, source: fn(&str) -> InputSource) -> Result<Input, String> {
        let (key, rest) = split_key(s)?;
        Ok(Input {
            key: key.to_owned(),
            source: source(rest),
        })
    }

    /// `KEY=JSON`.
    pub fn value(s: &str) -> Result<Input, String> {
        Self::with(s, |v| InputSource::Value(v.to_owned()))
    }

    /// `KEY=[{FEATURE: VALUE, ...}, ...]`.
    pub fn examples(s: &str) -> Result<Input, String> {
        Self::with(s, |v| InputSource::Examples(v.to_owned()))
    }

    /// `KEY=IMAGE`.
    pub fn image(s: &str) -> Result<Input, String> {
        Self::with(s, |v| InputSource::Image(PathBuf::from(v)))
    }

    fn flag(&self) -> &'static str {
        match self.source {
            InputSource::Npy(_) | InputSource::Npz(..) => "--input",
            InputSource::Value(_) => "--value",
            InputSource::Examples(_) => "--examples",
            InputSource::Image(_) => "--image",
        }
    }
}

/// A whole REST request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    File(PathBuf),
    Stdin,
}

/// Validated options of `smtool run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// A SavedModel directory or a model base path.
    pub model: PathBuf,
    /// With a base path: this version instead of the latest.
    pub version: Option<i64>,
    /// The meta graph's exact tag-set.
    pub tags: Vec<String>,
    /// `None`: the body's `signature_name`, else `serving_default`.
    pub signature: Option<String>,
    /// `None`: from the signature (and the body's keys).
    pub method: Option<Endpoint>,
    pub inputs: Vec<Input>,
    pub body: Option<Body>,
    /// Write one `.npy` per output here.
    pub outdir: Option<PathBuf>,
    pub overwrite: bool,
    /// The pixel range of DT_FLOAT image inputs.
    pub image_scale: ImageScale,
    /// Show TensorFlow's own output on stderr.
    pub verbose: bool,
    pub library: LibraryOptions,
}

/// One output tensor.
#[derive(Debug, Clone)]
pub struct Output {
    pub name: String,
    pub tensor: Tensor,
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub model: String,
    pub version: i64,
    pub signature: String,
    pub method: Endpoint,
    /// Sorted by name (as TF Serving's response map).
    pub outputs: Vec<Output>,
    /// The body TF Serving answers the same request with.
    pub response: String,
    /// The `.npy` files written.
    pub written: Vec<PathBuf>,
}

/// An error of the request core as the server words it, with the status it would answer.
fn served(e: ServeError) -> anyhow::Error {
    anyhow!(
        "{} (TF Serving answers {} {})",
        e.message,
        crate::serve::http::http_status(e.code),
        e.code.as_str_name()
    )
}

/// Runs one request.
pub fn run(opts: &RunOptions) -> Result<RunReport> {
    if opts.inputs.is_empty() && opts.body.is_none() {
        bail!("give the inputs (--input, --value, --examples, --image) or a request body (--request FILE, or - for stdin)");
    }
    // Images only may repeat a key: on :classify and :regress each makes a tf.Example.
    let images_only = (opts.inputs.iter()).all(|i| matches!(i.source, InputSource::Image(_)));
    let mut seen = std::collections::BTreeSet::new();
    for input in &opts.inputs {
        if !seen.insert(input.key.as_str()) && !images_only {
            bail!("input '{}' is given twice", input.key);
        }
    }
    let sources = read_sources(opts)?;
    if let Some(dir) = &opts.outdir {
        check_outdir(dir)?;
    }

    let model_name = model_name(&opts.model);
    let mut config = model_from_path(&model_name, &opts.model)?;
    if let Some(v) = opts.version {
        if config.single {
            bail!(
                "--version {v}: '{}' is a SavedModel directory, not a base path of numbered versions",
                opts.model.display()
            );
        }
        config.policy = VersionPolicy::Specific([v].into());
    }

    let tf = load_tensorflow(&opts.library, opts.verbose)?;
    // The server's parts without a transport: the runner the request runs on, with room for
    // the tensors of one run, and the one model, loaded at once.
    let metrics = Arc::new(Metrics::new());
    let runner = Arc::new(Runner::new(
        metrics.clone(),
        RunnerOptions {
            limits: Limits::from_request_bytes(MAX_TENSOR_BYTES),
            ..Default::default()
        },
    ));
    let load = LoadOptions {
        tags: opts.tags.clone(),
        ..Default::default()
    };
    let manager = Arc::new(ModelManager::new(
        tf,
        vec![config],
        metrics,
        ManagerOptions {
            load,
            ..Default::default()
        },
    ));
    manager.poll_now();
    let servable = match manager.servable(&model_name, &VersionRequest::Latest) {
        Ok(s) => s,
        Err(_) => return Err(load_failure(&manager, &model_name, opts)),
    };
    let core = Core::new(manager.clone(), runner, None);
    let spec = |signature: &str| sv::ModelSpec {
        name: model_name.clone(),
        signature_name: signature.to_owned(),
        version_choice: Some(sv::model_spec::VersionChoice::Version(servable.version)),
    };

    let (signature, method, outputs, response) = match sources {
        Sources::Body(mut doc) => {
            let named = codec::signature_name(&doc).map_err(served)?;
            let signature = match &opts.signature {
                Some(flag) if !named.is_empty() && *flag != named => bail!(
                    "the request body names signature '{named}' and --signature '{flag}'; drop one"
                ),
                Some(flag) => {
                    // The codec reads the signature from the body, as the server does.
                    if let Json::Object(members) = &mut doc {
                        members.retain(|(k, _)| k != "signature_name");
                        members.push(("signature_name".to_owned(), Json::String(flag.clone())));
                    }
                    flag.clone()
                }
                None => named,
            };
            let key = signature_key(&signature).to_owned();
            let method = match opts.method {
                Some(m) => m,
                None if doc.get("examples").is_none() => Endpoint::Predict,
                None => examples_method(&key, &servable.meta_graph)?,
            };
            let (outputs, response) = match method {
                Endpoint::Predict => {
                    let (request, format) = codec::predict_request(&doc, spec(&signature), |s| {
                        core.signature_inputs(s)
                    })
                    .map_err(served)?;
                    predict(&core, &request, format)?
                }
                _ => {
                    let (_, input) = codec::examples_input(&doc).map_err(served)?;
                    examples(
                        &core,
                        method,
                        spec(&signature),
                        input,
                        &key,
                        &servable.meta_graph,
                    )?
                }
            };
            (key, method, outputs, response)
        }
        Sources::Inputs(inputs) => {
            let key = opts
                .signature
                .clone()
                .unwrap_or_else(|| DEFAULT_SIGNATURE_KEY.to_owned());
            let sig = servable.meta_graph.signature_def.get(&key);
            let method = match opts.method {
                Some(m) => m,
                None => sig
                    .and_then(|s| Endpoint::from_method_name(&s.method_name))
                    .filter(|&m| {
                        m == Endpoint::Predict
                            || (examples_given(&inputs)
                                && sig.is_some_and(|s| {
                                    signature::serving_problems(&key, s, m).is_empty()
                                }))
                    })
                    .unwrap_or(Endpoint::Predict),
            };
            let (outputs, response) = match method {
                Endpoint::Predict => {
                    let infos = core.signature_inputs(&spec(&key)).map_err(served)?;
                    let mut request = sv::PredictRequest {
                        model_spec: Some(spec(&key)),
                        ..Default::default()
                    };
                    for (input, read) in inputs {
                        let info = infos.get(&input.key).ok_or_else(|| {
                            anyhow!(
                                "{} {}: signature '{key}' has no input '{}' (inputs: {})",
                                input.flag(),
                                input.key,
                                input.key,
                                quoted(infos.keys())
                            )
                        })?;
                        if request.inputs.contains_key(&input.key) {
                            bail!("input '{}' is given twice (several --image files for one feature make several tf.Examples on :classify and :regress only)", input.key);
                        }
                        let proto = input_tensor(&input, read, info, tf, opts.image_scale)?;
                        request.inputs.insert(input.key.clone(), proto);
                    }
                    predict(&core, &request, codec::Format::Columnar)?
                }
                _ => {
                    let list = match &inputs[..] {
                        [(input, Given::Examples(list))] => {
                            if input.key != signature::CLASSIFY_INPUTS {
                                bail!(
                                    ":{} feeds its examples to the input '{}'; give them as --examples {}=...",
                                    method.name(),
                                    signature::CLASSIFY_INPUTS,
                                    signature::CLASSIFY_INPUTS
                                );
                            }
                            example_list(input, list)?
                        }
                        images if examples_given(images) => image_examples(images)?,
                        _ => bail!(
                            ":{} takes tf.Examples: give them as --examples {}=[{{FEATURE: VALUE, ...}}, ...], as images with --image FEATURE=FILE, or as a --request body with 'examples'",
                            method.name(),
                            signature::CLASSIFY_INPUTS
                        ),
                    };
                    let input = sv::Input {
                        kind: Some(sv::input::Kind::ExampleList(sv::ExampleList {
                            examples: list,
                        })),
                    };
                    examples(&core, method, spec(&key), input, &key, &servable.meta_graph)?
                }
            };
            (key, method, outputs, response)
        }
    };

    let written = match &opts.outdir {
        Some(dir) => write_outputs(dir, &outputs, opts.overwrite)?,
        None => Vec::new(),
    };
    Ok(RunReport {
        model: opts.model.display().to_string(),
        version: servable.version,
        signature,
        method,
        outputs,
        response,
        written,
    })
}

fn signature_key(name: &str) -> &str {
    if name.is_empty() {
        DEFAULT_SIGNATURE_KEY
    } else {
        name
    }
}

fn quoted<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The model's name in the request: its directory's.
fn model_name(path: &Path) -> String {
    std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "model".to_owned())
}

/// Finds and loads libtensorflow; TensorFlow's start-up output only with `verbose`.
fn load_tensorflow(options: &LibraryOptions, verbose: bool) -> Result<&'static TensorFlow> {
    if std::env::var_os("TF_CPP_MIN_LOG_LEVEL").is_none() && !verbose {
        // Before TensorFlow is loaded; no other thread runs yet.
        std::env::set_var("TF_CPP_MIN_LOG_LEVEL", "3");
    }
    let located = library::locate(options, &mut |msg| eprintln!("smtool run: {msg}"))?;
    let (tf, noise) = TensorFlow::load(&located.library).map_err(|e| {
        let mut err = anyhow!("{e}");
        if !e.stderr.trim().is_empty() {
            err = err.context(format!("TensorFlow said:\n{}", e.stderr.trim()));
        }
        err
    })?;
    if verbose {
        if !noise.trim().is_empty() {
            eprintln!("{}", noise.trim_end());
        }
        eprintln!(
            "smtool run: TensorFlow {} from {} ({})",
            tf.version(),
            tf.path().display(),
            located.source
        );
    }
    Ok(tf)
}

/// Why the model has no version to run.
fn load_failure(manager: &ModelManager, name: &str, opts: &RunOptions) -> anyhow::Error {
    let states = manager.states(name).unwrap_or_default();
    for (version, state) in &states {
        if let VersionState::End {
            error: Some(ServeError { message, .. }),
        } = state
        {
            return anyhow!(
                "cannot load '{}' version {version} with tags '{}': {message}",
                opts.model.display(),
                opts.tags.join(",")
            );
        }
    }
    match opts.version {
        Some(v) => anyhow!(
            "'{}' has no version {v} (versions are its numbered subdirectories)",
            opts.model.display()
        ),
        None => anyhow!(
            "'{}' has no version to load (no numbered subdirectory holds a SavedModel)",
            opts.model.display()
        ),
    }
}

/// The endpoint a body with `examples` calls: the one of classify and regress the signature
/// serves.
fn examples_method(key: &str, meta: &tfp::MetaGraphDef) -> Result<Endpoint> {
    let sig = meta.signature_def.get(key).ok_or_else(|| {
        served(ServeError::invalid(format!(
            "No signature was found with the name: {key}"
        )))
    })?;
    signature::examples_endpoint(key, sig).map_err(|e| match e {
        signature::ExamplesEndpoint::Both => anyhow!(
            "signature '{key}' serves both :classify and :regress; say which with --method"
        ),
        signature::ExamplesEndpoint::Neither(problems) => anyhow!(
            "the body has 'examples', but signature '{key}' serves neither :classify nor :regress ({})",
            problems.join("; ")
        ),
    })
}

/// An input as read from its file or text, before the signature is known.
enum Given {
    Tensor(Tensor),
    Json(Json),
    Examples(Json),
    Image(Vec<u8>),
}

enum Sources {
    Body(Json),
    Inputs(Vec<(Input, Given)>),
}

/// Reads every input file and parses every literal, before TensorFlow is loaded.
fn read_sources(opts: &RunOptions) -> Result<Sources> {
    if let Some(body) = &opts.body {
        if !opts.inputs.is_empty() {
            bail!("--request gives the whole request; drop --input, --value, --examples and --image, or put those inputs in the body");
        }
        let bytes = match body {
            Body::File(path) => files::read_capped(path, MAX_REQUEST_BYTES, "a request body")?,
            Body::Stdin => {
                let mut bytes = Vec::new();
                std::io::stdin()
                    .lock()
                    .take(MAX_REQUEST_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .context("reading the request body from stdin")?;
                if bytes.len() as u64 > MAX_REQUEST_BYTES {
                    bail!(
                        "the request body on stdin is larger than the {} limit for a request body",
                        files::human(MAX_REQUEST_BYTES)
                    );
                }
                bytes
            }
        };
        let what = match body {
            Body::File(path) => format!("request '{}'", path.display()),
            Body::Stdin => "the request on stdin".to_owned(),
        };
        let doc = codec::parse_body(&bytes).map_err(|e| anyhow!("{what}: {}", e.message))?;
        return Ok(Sources::Body(doc));
    }
    let mut read = Vec::with_capacity(opts.inputs.len());
    // What the inputs read so far hold: each file is bounded by its own limit, and all of them
    // together by what one run may hold, so that many files are refused before they are all read.
    let mut held = 0u64;
    for input in &opts.inputs {
        let what = || format!("{} {}", input.flag(), input.key);
        let parse_json = |text: &str| {
            serve_json::parse(text.as_bytes())
                .map_err(|e| anyhow!("{}: not JSON: {} at offset {}", what(), e.message, e.offset))
        };
        let value = match &input.source {
            InputSource::Npy(path) => Given::Tensor(npy::read_npy(path)?),
            InputSource::Npz(path, name) => Given::Tensor(npy::read_npz(path, name.as_deref())?),
            InputSource::Value(text) => Given::Json(parse_json(text)?),
            InputSource::Examples(text) => Given::Examples(parse_json(text)?),
            InputSource::Image(path) => {
                Given::Image(files::read_capped(path, MAX_IMAGE_BYTES, "an image")?)
            }
        };
        held = held.saturating_add(held_bytes(&value));
        if held > MAX_TENSOR_BYTES as u64 {
            bail!(
                "the inputs up to {} take more than the {} one run may hold together; give fewer \
                 or smaller ones",
                what(),
                files::human(MAX_TENSOR_BYTES as u64)
            );
        }
        read.push((input.clone(), value));
    }
    Ok(Sources::Inputs(read))
}

/// The bytes an input read from a file holds (a string counts its length plus what holding it
/// costs, as the server's limits count it).
fn held_bytes(given: &Given) -> u64 {
    match given {
        Given::Tensor(t) => match &t.values {
            Values::String(v) => (v.iter())
                .map(|s| s.len() as u64 + tensor::STRING_ELEMENT_BYTES)
                .sum(),
            _ => (t.values.len() as u64)
                .saturating_mul(crate::proto_ext::dtype_size(t.dtype()).unwrap_or(1)),
        },
        Given::Image(bytes) => bytes.len() as u64,
        Given::Json(_) | Given::Examples(_) => 0,
    }
}

/// The `tf.Example`s of an `--examples` list.
fn example_list(input: &Input, list: &Json) -> Result<Vec<tfp::Example>> {
    let Json::Array(items) = list else {
        bail!(
            "--examples {}: give a JSON list of feature objects, e.g. [{{\"x\": [1.0, 2.0]}}]",
            input.key
        );
    };
    if items.is_empty() {
        bail!("--examples {}: the list is empty", input.key);
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            codec::example_from_json(item)
                .map_err(|e| anyhow!("--examples {} item {i}: {}", input.key, e.message))
        })
        .collect()
}

/// Whether `inputs` can only be tf.Examples: one `--examples` list, or `--image` files only.
fn examples_given(inputs: &[(Input, Given)]) -> bool {
    match inputs {
        [(_, Given::Examples(_))] => true,
        [] => false,
        _ => inputs.iter().all(|(_, g)| matches!(g, Given::Image(_))),
    }
}

/// `--image FEATURE=FILE` inputs of a :classify or :regress call as tf.Examples: each file's
/// encoded bytes in the bytes feature FEATURE, as TF Serving's clients send images
/// (`{"FEATURE": {"b64": ...}}`) and add-classify's image features take them. The n-th image
/// of each feature goes into the n-th example.
fn image_examples(images: &[(Input, Given)]) -> Result<Vec<tfp::Example>> {
    let mut features: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    for (input, given) in images {
        if let Given::Image(bytes) = given {
            // The model decodes it: its header is checked as the predict path checks it, for
            // one channel at least.
            image::check_size(bytes, 1).map_err(|e| anyhow!("--image {}: {e}", input.key))?;
            features.entry(&input.key).or_default().push(bytes);
        }
    }
    let count = features.values().map(Vec::len).max().unwrap_or(0);
    if let Some((name, list)) = features.iter().find(|(_, list)| list.len() != count) {
        bail!(
            "--image {name}: {} image(s), but another feature has {count}; give every feature one image per example",
            list.len()
        );
    }
    Ok((0..count)
        .map(|i| {
            let feature = features
                .iter()
                .map(|(name, list)| {
                    let bytes = tfp::BytesList {
                        value: vec![list[i].to_vec()],
                    };
                    let kind = tfp::feature::Kind::BytesList(bytes);
                    (name.to_string(), tfp::Feature { kind: Some(kind) })
                })
                .collect();
            tfp::Example {
                features: Some(tfp::Features { feature }),
            }
        })
        .collect())
}

/// One input of a predict request as the tensor the signature takes.
fn input_tensor(
    input: &Input,
    read: Given,
    info: &tfp::TensorInfo,
    tf: &'static TensorFlow,
    scale: ImageScale,
) -> Result<tfp::TensorProto> {
    let what = format!("{} {}", input.flag(), input.key);
    match read {
        Given::Json(v) => {
            codec::value_tensor(&v, info.dtype).map_err(|e| anyhow!("{what}: {}", e.message))
        }
        Given::Tensor(t) => {
            let t = cast(t, info.dtype).map_err(|e| anyhow!("{what}: {e}"))?;
            Ok(request_proto(&t))
        }
        Given::Examples(list) => {
            if info.dtype != dtype::STRING {
                bail!(
                    "{what}: serialized tf.Examples are strings, but the input is {}",
                    dtype_name(info.dtype)
                );
            }
            let examples = example_list(input, &list)?;
            let n = examples.len() as i64;
            let t = Tensor {
                dims: vec![n],
                values: Values::String(examples.iter().map(Message::encode_to_vec).collect()),
            };
            Ok(request_proto(&t))
        }
        Given::Image(bytes) => {
            let t =
                image::decode_for(tf, &bytes, info, scale).map_err(|e| anyhow!("{what}: {e}"))?;
            Ok(request_proto(&t))
        }
    }
}

/// A tensor as a request's `TensorProto`: numbers packed in `tensor_content`, strings in
/// `string_val` (where TF Serving's request reader takes them from).
fn request_proto(t: &Tensor) -> tfp::TensorProto {
    match t.values {
        Values::String(_) => tensor::tensor_to_proto(t),
        _ => tensor::tensor_to_content_proto(t),
    }
}

/// Numbers converted to `target`, as feeding a NumPy array to a session does
/// (`np.asarray(value, dtype)`: floats to integers truncate, numbers to bool test for zero).
fn cast(t: Tensor, target: i32) -> Result<Tensor, String> {
    if t.dtype() == target {
        return Ok(t);
    }
    let refuse = || {
        format!(
            "the array is {}, the input {}; save it as the input's dtype",
            dtype_name(t.dtype()),
            dtype_name(target)
        )
    };
    #[derive(Clone, Copy)]
    enum N {
        F(f64),
        I(i128),
    }
    let f = |n: N| match n {
        N::F(x) => x,
        N::I(i) => i as f64,
    };
    let i = |n: N| match n {
        N::F(x) => x as i128,
        N::I(i) => i,
    };
    // Each element goes straight into the target's vector: the only allocation is the result.
    fn each<T>(values: &Values, to: impl Fn(N) -> T) -> Option<Vec<T>> {
        Some(match values {
            Values::Float(v) => v.iter().map(|&x| to(N::F(x.into()))).collect(),
            Values::Double(v) => v.iter().map(|&x| to(N::F(x))).collect(),
            Values::Int32(v) => v.iter().map(|&x| to(N::I(x.into()))).collect(),
            Values::UInt8(v) => v.iter().map(|&x| to(N::I(x.into()))).collect(),
            Values::Int16(v) => v.iter().map(|&x| to(N::I(x.into()))).collect(),
            Values::Int8(v) => v.iter().map(|&x| to(N::I(x.into()))).collect(),
            Values::Int64(v) => v.iter().map(|&x| to(N::I(x.into()))).collect(),
            Values::Bool(v) => v.iter().map(|&x| to(N::I(x.into()))).collect(),
            Values::UInt16(v) => v.iter().map(|&x| to(N::I(x.into()))).collect(),
            Values::UInt32(v) => v.iter().map(|&x| to(N::I(x.into()))).collect(),
            Values::UInt64(v) => v.iter().map(|&x| to(N::I(x.into()))).collect(),
            Values::Half(_) | Values::String(_) => return None,
        })
    }
    let v = &t.values;
    let values = match target {
        dtype::FLOAT => each(v, |n| f(n) as f32).map(Values::Float),
        dtype::DOUBLE => each(v, f).map(Values::Double),
        dtype::INT32 => each(v, |n| i(n) as i32).map(Values::Int32),
        dtype::INT64 => each(v, |n| i(n) as i64).map(Values::Int64),
        dtype::INT16 => each(v, |n| i(n) as i16).map(Values::Int16),
        dtype::INT8 => each(v, |n| i(n) as i8).map(Values::Int8),
        dtype::UINT8 => each(v, |n| i(n) as u8).map(Values::UInt8),
        dtype::UINT16 => each(v, |n| i(n) as u16).map(Values::UInt16),
        dtype::UINT32 => each(v, |n| i(n) as u32).map(Values::UInt32),
        dtype::UINT64 => each(v, |n| i(n) as u64).map(Values::UInt64),
        dtype::BOOL => each(v, |n| f(n) != 0.0).map(Values::Bool),
        _ => None,
    }
    .ok_or_else(refuse)?;
    Ok(Tensor {
        dims: t.dims,
        values,
    })
}

/// Output protos back into tensors, within the run's limits.
fn tensors(outputs: &BTreeMap<String, tfp::TensorProto>) -> Result<Vec<Output>> {
    let mut budget: Budget = Limits::from_request_bytes(MAX_TENSOR_BYTES).budget();
    outputs
        .iter()
        .map(|(name, proto)| {
            let tensor = tensor::tensor_from_proto(proto, name, &mut budget).map_err(served)?;
            Ok(Output {
                name: name.clone(),
                tensor,
            })
        })
        .collect()
}

fn predict(
    core: &Core,
    request: &sv::PredictRequest,
    format: codec::Format,
) -> Result<(Vec<Output>, String)> {
    let response = core.predict(Call::LOCAL, request).map_err(served)?;
    let body = codec::predict_response(&response.outputs, format).map_err(served)?;
    Ok((tensors(&response.outputs)?, body))
}

/// Classify or regress: the result as the signature's output tensors and TF Serving's body.
fn examples(
    core: &Core,
    method: Endpoint,
    spec: sv::ModelSpec,
    input: sv::Input,
    key: &str,
    meta: &tfp::MetaGraphDef,
) -> Result<(Vec<Output>, String)> {
    if method == Endpoint::Regress {
        let response = core
            .regress(
                Call::LOCAL,
                &sv::RegressionRequest {
                    model_spec: Some(spec),
                    input: Some(input),
                },
            )
            .map_err(served)?;
        let result = response.result.unwrap_or_default();
        let body = codec::regression_response(&result).map_err(served)?;
        let values: Vec<f32> = result.regressions.iter().map(|r| r.value).collect();
        let tensor = Tensor {
            dims: vec![values.len() as i64],
            values: Values::Float(values),
        };
        return Ok((
            vec![Output {
                name: signature::REGRESS_OUTPUTS.to_owned(),
                tensor,
            }],
            body,
        ));
    }
    let response = core
        .classify(
            Call::LOCAL,
            &sv::ClassificationRequest {
                model_spec: Some(spec),
                input: Some(input),
            },
        )
        .map_err(served)?;
    let result = response.result.unwrap_or_default();
    let body = codec::classification_response(&result).map_err(served)?;
    let n = result.classifications.len();
    let k = result
        .classifications
        .first()
        .map_or(0, |c| c.classes.len());
    let dims = vec![n as i64, k as i64];
    let has = |output: &str| {
        meta.signature_def
            .get(key)
            .is_some_and(|s| s.outputs.contains_key(output))
    };
    let mut outputs = Vec::new();
    let classes = result.classifications.iter().flat_map(|c| &c.classes);
    if has(signature::CLASSIFY_CLASSES) {
        outputs.push(Output {
            name: signature::CLASSIFY_CLASSES.to_owned(),
            tensor: Tensor {
                dims: dims.clone(),
                values: Values::String(
                    classes
                        .clone()
                        .map(|c| c.label.clone().into_bytes())
                        .collect(),
                ),
            },
        });
    }
    if has(signature::CLASSIFY_SCORES) {
        outputs.push(Output {
            name: signature::CLASSIFY_SCORES.to_owned(),
            tensor: Tensor {
                dims,
                values: Values::Float(classes.map(|c| c.score).collect()),
            },
        });
    }
    Ok((outputs, body))
}

/// `--outdir` must be a directory or not exist yet.
fn check_outdir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!("--outdir '{}' exists and is not a directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::read_link(dir) {
            // A link to nowhere cannot be created as a directory.
            Ok(target) => bail!(
                "--outdir '{}' is a symbolic link to '{}', which does not exist; create it, or \
                 choose another --outdir",
                dir.display(),
                target.display()
            ),
            Err(_) => Ok(()),
        },
        Err(e) => Err(e).with_context(|| format!("--outdir '{}'", dir.display())),
    }
}

/// An output key as a file name: refused when it could name a path elsewhere.
fn file_name(name: &str) -> Result<String> {
    let safe = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.');
    if !safe {
        bail!(
            "output '{name}' cannot be a file name in --outdir; leave out --outdir and use --json"
        );
    }
    Ok(format!("{name}.npy"))
}

/// Writes `NAME.npy` for each output, each atomically (a temporary file renamed into place).
/// Nothing is written when any file exists and `overwrite` is not set.
fn write_outputs(dir: &Path, outputs: &[Output], overwrite: bool) -> Result<Vec<PathBuf>> {
    let paths: Vec<PathBuf> = outputs
        .iter()
        .map(|o| file_name(&o.name).map(|f| dir.join(f)))
        .collect::<Result<_>>()?;
    for output in outputs {
        // What np.load (and smtool run --input) reads back; checked before anything is written.
        let bytes = npy::encoded_data_bytes(&output.tensor);
        if bytes > npy::MAX_FILE_BYTES {
            let padded = match output.tensor.values {
                Values::String(_) => " (NumPy pads each string to the longest)",
                _ => "",
            };
            bail!(
                "output '{}' would be a {bytes}-byte .npy file{padded}, more than the {} an \
                 array file may have; leave out --outdir and use --json",
                output.name,
                files::human(npy::MAX_FILE_BYTES)
            );
        }
    }
    if !overwrite {
        let existing: Vec<String> = paths
            .iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .map(|p| format!("'{}'", p.display()))
            .collect();
        if !existing.is_empty() {
            bail!(
                "{} already exist{}; pass --overwrite to replace {}, or choose another --outdir",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" },
                if existing.len() == 1 { "it" } else { "them" }
            );
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating --outdir '{}'", dir.display()))?;
    for (output, path) in outputs.iter().zip(&paths) {
        let write = || -> std::io::Result<()> {
            let mut tmp = tempfile::Builder::new()
                .prefix(".smtool-run-")
                .suffix(".npy.tmp")
                .tempfile_in(dir)?;
            std::io::Write::write_all(&mut tmp, &npy::encode(&output.tensor))?;
            tmp.as_file().sync_all()?;
            if overwrite {
                tmp.persist(path).map_err(|e| e.error)?;
            } else {
                // Refuses, rather than replaces, a file that appeared meanwhile.
                tmp.persist_noclobber(path).map_err(|e| e.error)?;
            }
            Ok(())
        };
        write().with_context(|| format!("writing '{}'", path.display()))?;
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_arguments() {
        let cases = [
            ("x=a.npy", InputSource::Npy("a.npy".into())),
            ("x=a.npz", InputSource::Npz("a.npz".into(), None)),
            (
                "x=a.npz[y]",
                InputSource::Npz("a.npz".into(), Some("y".into())),
            ),
            (
                "x=dir[1]/a.npz[y]",
                InputSource::Npz("dir[1]/a.npz".into(), Some("y".into())),
            ),
            ("x=b=c.npy", InputSource::Npy("b=c.npy".into())),
        ];
        for (arg, source) in cases {
            assert_eq!(Input::array(arg).unwrap().source, source, "{arg}");
        }
        assert!(Input::array("a.npy").unwrap_err().contains("KEY=VALUE"));
        assert!(Input::array("=a.npy").is_err());
        assert!(Input::array("x=a.npz[]")
            .unwrap_err()
            .contains("name the array"));
        assert_eq!(
            Input::value("x=[1, 2]").unwrap().source,
            InputSource::Value("[1, 2]".into())
        );
    }

    #[test]
    fn casts_as_numpy_feeds_do() {
        let t = Tensor::new(vec![3], Values::Double(vec![1.5, -2.7, 0.0])).unwrap();
        assert_eq!(
            cast(t.clone(), dtype::FLOAT).unwrap().values,
            Values::Float(vec![1.5, -2.7, 0.0])
        );
        assert_eq!(
            cast(t.clone(), dtype::INT32).unwrap().values,
            Values::Int32(vec![1, -2, 0])
        );
        assert_eq!(
            cast(t, dtype::BOOL).unwrap().values,
            Values::Bool(vec![true, true, false])
        );
        let s = Tensor::new(vec![1], Values::String(vec![b"a".to_vec()])).unwrap();
        assert!(cast(s, dtype::FLOAT).unwrap_err().contains("DT_STRING"));
    }

    #[test]
    fn output_names_stay_inside_the_directory() {
        assert_eq!(file_name("scores").unwrap(), "scores.npy");
        for bad in ["", ".", "..", "a/b", "../x", ".hidden", "a\\b"] {
            assert!(file_name(bad).is_err(), "{bad}");
        }
    }
}
