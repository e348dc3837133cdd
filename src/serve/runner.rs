//! Running one request on one servable: TF Serving's Predict, Classify, Regress and
//! MultiInference rules on a loaded version (signature lookup, input and output checks, the
//! request's size budget), the session run (through the batcher when batching is on) and the
//! metrics of the run. It knows neither transports nor the lookup of servables: the server's
//! `core::Core` finds the version a request names and counts the request; warmup
//! replays its requests here before a version is available, and a program that loaded a
//! version itself (see [`super::servable::load_path`]) runs requests on it here with the
//! server's rules and errors. Every call may run TensorFlow: call it off the async threads.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::batching::Batcher;
use super::config::BatchingParameters;
use super::error::{Code, Result, ServeError};
use super::json::quote_str;
use super::limits::Limits;
use super::metrics::{Api, Entrypoint, Metrics};
use super::servable::Servable;
use super::tensor::{
    dtype, serialized_examples, tensor_from_proto, tensor_to_proto, Tensor, Values,
};
use crate::proto::tensorflow as tfp;
use crate::proto::tensorflow::serving as sv;
use crate::proto_ext::shape_debug;
use crate::proto_ext::{dtype_name, tensor_name};

/// Who a call is for, and so what it is counted as: the small context every request entry
/// point (of the runner and of `core::Core`) takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The transport a client's request came by, for TF Serving's `request_count` and
    /// `request_latency`; `None` for runs no client asked for (warmup, in-process runs).
    pub entrypoint: Option<Entrypoint>,
    /// Record the run in `runtime_latency` and the example counts, as TF Serving does for a
    /// request but not for the tasks of a MultiInference.
    pub runtime_metrics: bool,
}

impl Call {
    /// A request that came to the REST API.
    pub const REST: Call = Call {
        entrypoint: Some(Entrypoint::Rest),
        runtime_metrics: true,
    };
    /// A request that came to the gRPC API.
    pub const GRPC: Call = Call {
        entrypoint: Some(Entrypoint::Grpc),
        runtime_metrics: true,
    };
    /// A warmup replay, or a request a program runs in process: no request is counted.
    pub const LOCAL: Call = Call {
        entrypoint: None,
        runtime_metrics: true,
    };

    /// One task of a MultiInference made for this call.
    fn task(self) -> Call {
        Call {
            runtime_metrics: false,
            ..self
        }
    }
}

/// How requests run, beyond the models.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Merge concurrent requests into batched session runs (`--enable_batching`).
    pub batching: Option<BatchingParameters>,
    /// What one request, and one response, may hold (from `--max-request-bytes`).
    pub limits: Limits,
    /// Refuse a signature whose method_name is not the API's
    /// (`--enable_signature_method_name_check`).
    pub method_name_check: bool,
}

/// The inputs of the signature `spec` names in `servable`, for decoding a REST request (TF
/// Serving's GetInfoMap).
pub fn signature_inputs(
    servable: &Servable,
    spec: &sv::ModelSpec,
) -> Result<BTreeMap<String, tfp::TensorInfo>> {
    let name = signature_name(spec);
    servable
        .meta_graph
        .signature_def
        .get(name)
        .map(|s| s.inputs.clone())
        .ok_or_else(|| {
            ServeError::invalid(format!(
                "Serving signature name: \"{}\" not found in signature def",
                quote_str(name)
            ))
        })
}

/// Runs requests on servables: the rules of each API, the batcher and the metrics.
pub struct Runner {
    metrics: Arc<Metrics>,
    options: RunOptions,
    batcher: Option<Batcher>,
}

/// The signature used when a request names none.
pub const DEFAULT_SIGNATURE: &str = "serving_default";

/// `Some(spec)` or TF Serving's error for a request without one.
pub(super) fn required_spec(spec: Option<&sv::ModelSpec>) -> Result<&sv::ModelSpec> {
    spec.ok_or_else(|| ServeError::invalid("Missing ModelSpec"))
}

pub(super) fn signature_name(spec: &sv::ModelSpec) -> &str {
    if spec.signature_name.is_empty() {
        DEFAULT_SIGNATURE
    } else {
        &spec.signature_name
    }
}

fn response_spec(servable: &Servable, signature: &str) -> sv::ModelSpec {
    sv::ModelSpec {
        name: servable.name.clone(),
        signature_name: signature.to_owned(),
        version_choice: Some(sv::model_spec::VersionChoice::Version(servable.version)),
    }
}

/// Names joined by commas for a message, each cut, and the list cut after a few of them (the
/// names may come from the request).
fn set_names(names: impl Iterator<Item = impl AsRef<str>>) -> String {
    const SHOWN: usize = 16;
    let mut out = String::new();
    for (i, n) in names.enumerate() {
        if i == SHOWN {
            out.push_str(",...");
            break;
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote_str(n.as_ref()));
    }
    out
}

/// What Classify and Regress differ in where they read a request's examples.
struct ExamplesApi {
    /// The API, for the metrics.
    api: Api,
    /// TF Serving's word for it in messages.
    word: &'static str,
    /// The method_name of its signatures.
    method_name: &'static str,
}

const CLASSIFICATION: ExamplesApi = ExamplesApi {
    api: Api::Classify,
    word: "classification",
    method_name: crate::signature::CLASSIFY_METHOD,
};

const REGRESSION: ExamplesApi = ExamplesApi {
    api: Api::Regress,
    word: "regression",
    method_name: crate::signature::REGRESS_METHOD,
};

/// Where a Classify or Regress request's examples go: the `inputs` tensor of a signature.
struct ExamplesInput<'a> {
    api: &'static ExamplesApi,
    /// The signature's name.
    signature: &'a str,
    info: &'a tfp::TensorInfo,
}

/// The `inputs` tensor of signature `name`, which `api` feeds the examples into.
fn examples_input<'a>(
    signature: &'a tfp::SignatureDef,
    name: &'a str,
    api: &'static ExamplesApi,
) -> Result<ExamplesInput<'a>> {
    let info = signature.inputs.get("inputs").ok_or_else(|| {
        ServeError::new(
            Code::FailedPrecondition,
            format!("No {} inputs found in SignatureDef: {name}", api.word),
        )
    })?;
    Ok(ExamplesInput {
        api,
        signature: name,
        info,
    })
}

/// A predict input must have the rank its signature declares (when it declares one): some of
/// TensorFlow's kernels (oneDNN's convolutions among them) abort the process on a tensor of
/// another rank instead of failing the run, and TensorFlow's own Python API refuses such a call.
fn check_rank(alias: &str, signature: &str, info: &tfp::TensorInfo, t: &Tensor) -> Result<()> {
    let Some(declared) = crate::proto_ext::dims(info.tensor_shape.as_ref()) else {
        return Ok(());
    };
    if declared.len() == t.dims.len() {
        return Ok(());
    }
    Err(ServeError::invalid(format!(
        "input '{}' has {} dimension(s), shape {}, but signature '{}' takes it with {}, shape {}; \
         reshape it to the signature's rank",
        quote_str(alias),
        t.dims.len(),
        shape_debug(&t.dims),
        quote_str(signature),
        declared.len(),
        crate::proto_ext::shape_text(info.tensor_shape.as_ref())
    )))
}

fn info_name<'a>(alias: &str, info: &'a tfp::TensorInfo) -> Result<&'a str> {
    tensor_name(info).ok_or_else(|| {
        ServeError::new(
            Code::Unimplemented,
            format!("tensor '{alias}' is sparse or composite; only dense tensors are supported"),
        )
    })
}

impl Runner {
    /// A runner recording into `metrics`, batching as `options` say (the batch threads start
    /// here).
    pub fn new(metrics: Arc<Metrics>, options: RunOptions) -> Self {
        let batcher = options
            .batching
            .clone()
            .map(|p| Batcher::start(p, metrics.clone(), options.limits));
        Runner {
            metrics,
            options,
            batcher,
        }
    }

    /// The metrics runs are recorded in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Runs a signature's feeds and fetches: through the batcher when batching is on and the
    /// signature can be batched, else directly. The session run is timed either way, and when
    /// it succeeds and `call` asks for it, the request's wait for it is TF Serving's
    /// `runtime_latency` for `api`.
    fn run(
        &self,
        call: Call,
        api: Api,
        servable: &Arc<Servable>,
        signature: &str,
        feeds: &[(&str, &Tensor)],
        fetches: &[&str],
    ) -> Result<Vec<Tensor>> {
        let started = std::time::Instant::now();
        let outputs = self.run_session(servable, signature, feeds, fetches)?;
        if call.runtime_metrics {
            self.metrics.runtime(&servable.name, api, started.elapsed());
        }
        Ok(outputs)
    }

    /// With batching, refuses a request too large for one batch before its tensors are made
    /// (see [`Batcher::check_task_size`]).
    fn check_task_size(
        &self,
        servable: &Servable,
        signature: &str,
        leading: &[Option<i64>],
    ) -> Result<()> {
        match &self.batcher {
            Some(batcher) => batcher.check_task_size(servable, signature, leading),
            None => Ok(()),
        }
    }

    fn run_session(
        &self,
        servable: &Arc<Servable>,
        signature: &str,
        feeds: &[(&str, &Tensor)],
        fetches: &[&str],
    ) -> Result<Vec<Tensor>> {
        if let Some(batcher) = &self.batcher {
            if let Some(task) = batcher.task(servable, signature, feeds, fetches)? {
                return batcher.run(task);
            }
        }
        let started = std::time::Instant::now();
        let outputs = servable.session.run(feeds, fetches, self.options.limits);
        self.metrics
            .session_run(&servable.name, signature, started.elapsed());
        outputs
    }

    /// Predict: feeds the request's tensors by signature alias, returns the outputs (all, or
    /// those in `output_filter`).
    pub fn predict(
        &self,
        call: Call,
        servable: &Arc<Servable>,
        request: &sv::PredictRequest,
    ) -> Result<sv::PredictResponse> {
        let spec = required_spec(request.model_spec.as_ref())?;
        let name = signature_name(spec);
        let signature = servable.meta_graph.signature_def.get(name).ok_or_else(|| {
            ServeError::new(
                Code::FailedPrecondition,
                format!(
                    "Serving signature name: \"{}\" not found in signature def",
                    quote_str(name)
                ),
            )
        })?;
        use crate::signature::{CLASSIFY_METHOD, PREDICT_METHOD, REGRESS_METHOD};
        if self.options.method_name_check
            && ![PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD]
                .contains(&signature.method_name.as_str())
        {
            return Err(ServeError::new(
                Code::Internal,
                format!(
                    "Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, {CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: {}",
                    signature.method_name
                ),
            ));
        }
        let sent: Vec<&String> = request.inputs.keys().collect();
        let expected: Vec<&String> = signature.inputs.keys().collect();
        // Inputs the signature has defaults for may be left out.
        let covered = sent.iter().all(|k| signature.inputs.contains_key(*k))
            && expected
                .iter()
                .all(|k| request.inputs.contains_key(*k) || signature.defaults.contains_key(*k));
        if !covered {
            let extra: Vec<&&String> = sent
                .iter()
                .filter(|k| !signature.inputs.contains_key(**k))
                .collect();
            let missing: Vec<&&String> = expected
                .iter()
                .filter(|k| !request.inputs.contains_key(**k))
                .collect();
            return Err(ServeError::invalid(format!(
                "input size does not match signature: {}!={} len({{{}}}) != len({{{}}}). Sent extra: {{{}}}. Missing but required: {{{}}}.",
                sent.len(),
                expected.len(),
                set_names(sent.iter()),
                set_names(expected.iter()),
                set_names(extra.iter().map(|s| s.as_str())),
                set_names(missing.iter().map(|s| s.as_str())),
            )));
        }
        let fed = signature.inputs.keys().filter_map(|alias| {
            request
                .inputs
                .get(alias)
                .or_else(|| signature.defaults.get(alias))
        });
        let leading: Vec<Option<i64>> = fed
            .map(|proto| {
                let shape = proto.tensor_shape.as_ref();
                shape.and_then(|s| s.dim.first()).map(|d| d.size)
            })
            .collect();
        self.check_task_size(servable, name, &leading)?;
        let mut feeds = Vec::with_capacity(signature.inputs.len());
        let mut budget = self.options.limits.budget();
        for (alias, info) in &signature.inputs {
            let Some(proto) = request
                .inputs
                .get(alias)
                .or_else(|| signature.defaults.get(alias))
            else {
                continue;
            };
            let tensor = tensor_from_proto(proto, alias, &mut budget)?;
            check_rank(alias, name, info, &tensor)?;
            feeds.push((info_name(alias, info)?, tensor));
        }
        let mut aliases: Vec<&String> = Vec::new();
        if request.output_filter.is_empty() {
            aliases.extend(signature.outputs.keys());
        } else {
            for alias in &request.output_filter {
                if !signature.outputs.contains_key(alias) {
                    return Err(ServeError::invalid(format!(
                        "output tensor alias not found in signature: {} Outputs expected to be in the set {{{}}}.",
                        quote_str(alias),
                        set_names(signature.outputs.keys())
                    )));
                }
                if !aliases.contains(&alias) {
                    aliases.push(alias);
                }
            }
        }
        let fetches: Vec<&str> = aliases
            .iter()
            .map(|a| info_name(a, &signature.outputs[*a]))
            .collect::<Result<_>>()?;
        let feed_refs: Vec<(&str, &Tensor)> = feeds.iter().map(|(n, t)| (*n, t)).collect();
        let outputs = self.run(call, Api::Predict, servable, name, &feed_refs, &fetches)?;
        Ok(sv::PredictResponse {
            model_spec: Some(response_spec(servable, name)),
            outputs: aliases
                .iter()
                .zip(outputs.iter())
                .map(|(a, t)| ((*a).clone(), tensor_to_proto(t)))
                .collect(),
        })
    }

    /// The signature a Classify or Regress request names, with its single input checked (TF
    /// Serving's wording for both mistakes). With `--enable_signature_method_name_check` a
    /// signature of another method than `api`'s is refused first, as TF Serving does.
    fn examples_signature<'a>(
        &self,
        api: &ExamplesApi,
        servable: &'a Servable,
        spec: Option<&'a sv::ModelSpec>,
    ) -> Result<(&'a str, &'a tfp::SignatureDef)> {
        let name = signature_name(required_spec(spec)?);
        let signature = servable.meta_graph.signature_def.get(name).ok_or_else(|| {
            ServeError::invalid(format!(
                "No signature was found with the name: {}",
                quote_str(name)
            ))
        })?;
        if self.options.method_name_check && signature.method_name != api.method_name {
            return Err(ServeError::invalid(format!(
                "Expected {} signature method_name to be {}. Was: {}",
                api.word, api.method_name, signature.method_name
            )));
        }
        if signature.inputs.len() != 1 {
            return Err(ServeError::invalid("Expected one input Tensor."));
        }
        Ok((name, signature))
    }

    /// Feeds a Classify / Regress request's serialized `tf.Example`s to `input` and fetches
    /// `fetches`, recorded as `call` says. Returns the number of examples and the outputs.
    fn run_examples(
        &self,
        call: Call,
        servable: &Arc<Servable>,
        input: &ExamplesInput,
        examples: &Option<sv::Input>,
        fetches: &[&str],
    ) -> Result<(usize, Vec<Tensor>)> {
        let ExamplesInput {
            api,
            signature,
            info,
        } = *input;
        let count = match examples.as_ref().and_then(|i| i.kind.as_ref()) {
            Some(sv::input::Kind::ExampleList(list)) => list.examples.len(),
            Some(sv::input::Kind::ExampleListWithContext(list)) => list.examples.len(),
            None => 0,
        };
        self.check_task_size(servable, signature, &[i64::try_from(count).ok()])?;
        let examples = serialized_examples(examples.as_ref(), &mut self.options.limits.budget())?;
        let n = examples.len();
        let input_tensor = Tensor {
            dims: vec![n as i64],
            values: Values::String(examples),
        };
        let feeds = [(info_name("inputs", info)?, &input_tensor)];
        let outputs = self.run(call, api.api, servable, signature, &feeds, fetches)?;
        if call.runtime_metrics {
            self.metrics.examples(&servable.name, n);
        }
        Ok((n, outputs))
    }

    /// Classify: serialized `tf.Example`s into the signature's `inputs`, `classes` / `scores`
    /// out.
    pub fn classify(
        &self,
        call: Call,
        servable: &Arc<Servable>,
        request: &sv::ClassificationRequest,
    ) -> Result<sv::ClassificationResponse> {
        let (name, signature) =
            self.examples_signature(&CLASSIFICATION, servable, request.model_spec.as_ref())?;
        let n_out = signature.outputs.len();
        if n_out != 1 && n_out != 2 {
            return Err(ServeError::invalid(format!(
                "Expected one or two output Tensors, found {n_out}"
            )));
        }
        let input = examples_input(signature, name, &CLASSIFICATION)?;
        let classes_info = signature.outputs.get("classes");
        let scores_info = signature.outputs.get("scores");
        if classes_info.is_none() && scores_info.is_none() {
            return Err(ServeError::new(
                Code::FailedPrecondition,
                format!(
                    "Expected classification signature outputs to contain at least one of \"classes\" or \"scores\". Signature was: {name}"
                ),
            ));
        }
        let mut fetches = Vec::new();
        if let Some(info) = classes_info {
            fetches.push(info_name("classes", info)?);
        }
        if let Some(info) = scores_info {
            fetches.push(info_name("scores", info)?);
        }
        let (n, outputs) = self.run_examples(call, servable, &input, &request.input, &fetches)?;
        let mut outputs = outputs.into_iter();
        let classes = classes_info.and_then(|_| outputs.next());
        let scores = scores_info.and_then(|_| outputs.next());
        let check = |t: &Tensor, what: &str, dtype: i32| -> Result<()> {
            if t.dims.len() != 2 {
                return Err(ServeError::invalid(format!(
                    "Expected Tensor shape: [batch_size num_classes] but got {}",
                    shape_debug(&t.dims)
                )));
            }
            if t.dtype() != dtype {
                return Err(ServeError::invalid(format!(
                    "Expected {what} Tensor of {}. Got: {}",
                    dtype_name(dtype),
                    dtype_name(t.dtype())
                )));
            }
            if t.dims[0] != n as i64 {
                return Err(ServeError::invalid(format!(
                    "Expected {what} output batch size of {n}. Got: {}",
                    t.dims[0]
                )));
            }
            Ok(())
        };
        if let Some(c) = &classes {
            check(c, "classes", dtype::STRING)?;
        }
        if let Some(s) = &scores {
            check(s, "scores", dtype::FLOAT)?;
        }
        let k = match (&classes, &scores) {
            (Some(c), Some(s)) => {
                if c.dims[1] != s.dims[1] {
                    return Err(ServeError::invalid(format!(
                        "Tensors class and score should match in dim_size(1). Got {} vs. {}",
                        c.dims[1], s.dims[1]
                    )));
                }
                c.dims[1]
            }
            (Some(c), None) => c.dims[1],
            (None, Some(s)) => s.dims[1],
            (None, None) => 0,
        } as usize;
        let labels = match classes.map(|t| t.values) {
            Some(Values::String(v)) => Some(v),
            _ => None,
        };
        let score_values = match scores.map(|t| t.values) {
            Some(Values::Float(v)) => Some(v),
            _ => None,
        };
        let classifications = (0..n)
            .map(|i| sv::Classifications {
                classes: (0..k)
                    .map(|c| sv::Class {
                        label: labels
                            .as_ref()
                            .map(|l| String::from_utf8_lossy(&l[i * k + c]).into_owned())
                            .unwrap_or_default(),
                        score: score_values.as_ref().map(|s| s[i * k + c]).unwrap_or(0.0),
                    })
                    .collect(),
            })
            .collect();
        Ok(sv::ClassificationResponse {
            model_spec: Some(response_spec(servable, name)),
            result: Some(sv::ClassificationResult { classifications }),
        })
    }

    /// Regress: serialized `tf.Example`s into `inputs`, one float per example out.
    pub fn regress(
        &self,
        call: Call,
        servable: &Arc<Servable>,
        request: &sv::RegressionRequest,
    ) -> Result<sv::RegressionResponse> {
        let (name, signature) =
            self.examples_signature(&REGRESSION, servable, request.model_spec.as_ref())?;
        if signature.outputs.len() != 1 {
            return Err(ServeError::invalid("Expected one output Tensor."));
        }
        let input = examples_input(signature, name, &REGRESSION)?;
        let output = signature.outputs.get("outputs").ok_or_else(|| {
            ServeError::new(
                Code::FailedPrecondition,
                format!("No regression outputs found in SignatureDef: {name}"),
            )
        })?;
        let fetches = [info_name("outputs", output)?];
        let (n, mut outputs) =
            self.run_examples(call, servable, &input, &request.input, &fetches)?;
        let out = outputs
            .pop()
            .ok_or_else(|| ServeError::new(Code::Internal, "no output"))?;
        if out.dtype() != dtype::FLOAT {
            return Err(ServeError::invalid(format!(
                "Expected output Tensor of DT_FLOAT.  Got: {}",
                dtype_name(out.dtype())
            )));
        }
        let shape_ok = out.dims.len() == 1 || (out.dims.len() == 2 && out.dims[1] == 1);
        if !shape_ok {
            return Err(ServeError::invalid(format!(
                "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {}",
                shape_debug(&out.dims)
            )));
        }
        if out.dims[0] != n as i64 {
            return Err(ServeError::invalid(format!(
                "Input batch size did not match output batch size: {n} vs. {}",
                out.dims[0]
            )));
        }
        let Values::Float(values) = out.values else {
            return Err(ServeError::new(
                Code::Internal,
                "regression output is not float",
            ));
        };
        Ok(sv::RegressionResponse {
            model_spec: Some(response_spec(servable, name)),
            result: Some(sv::RegressionResult {
                regressions: values
                    .into_iter()
                    .map(|value| sv::Regression { value })
                    .collect(),
            }),
        })
    }

    /// MultiInference: several classify / regress signatures of one model over the same
    /// examples, with TF Serving's checks on the tasks. The tasks' runs are not recorded in
    /// the runtime metrics, as in TF Serving.
    pub fn multi_inference(
        &self,
        call: Call,
        servable: &Arc<Servable>,
        request: &sv::MultiInferenceRequest,
    ) -> Result<sv::MultiInferenceResponse> {
        let mut model_name: Option<&str> = None;
        let mut seen = std::collections::BTreeSet::new();
        for task in &request.tasks {
            let spec = required_spec(task.model_spec.as_ref())?;
            if spec.name.is_empty() {
                return Err(ServeError::invalid(
                    "Found ModelSpec with an empty model name.",
                ));
            }
            match model_name {
                None => model_name = Some(&spec.name),
                Some(m) if m != spec.name => return Err(ServeError::invalid(
                    "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
                )),
                Some(_) => {}
            }
            let signature = signature_name(spec);
            if !seen.insert(signature) {
                return Err(ServeError::invalid(format!(
                    "Duplicate evaluation of signature: {}",
                    quote_str(signature)
                )));
            }
            if !servable.meta_graph.signature_def.contains_key(signature) {
                return Err(ServeError::invalid(format!(
                    "Requested signature not found in model graph: {}",
                    quote_str(signature)
                )));
            }
            // Every task reads the request's examples. Their signatures may feed different
            // tensors (each signature of a TF2 export has its own): the examples go to each,
            // as current TF Serving does.
            if task.method_name != crate::signature::CLASSIFY_METHOD
                && task.method_name != crate::signature::REGRESS_METHOD
            {
                return Err(ServeError::new(
                    Code::Unimplemented,
                    format!("Unsupported signature method_name: {}", task.method_name),
                ));
            }
        }
        let mut results = Vec::with_capacity(request.tasks.len());
        for task in &request.tasks {
            let mut spec = required_spec(task.model_spec.as_ref())?.clone();
            let result = if task.method_name == crate::signature::CLASSIFY_METHOD {
                let response = self.classify(
                    call.task(),
                    servable,
                    &sv::ClassificationRequest {
                        model_spec: Some(spec.clone()),
                        input: request.input.clone(),
                    },
                )?;
                sv::inference_result::Result::ClassificationResult(
                    response.result.unwrap_or_default(),
                )
            } else {
                let response = self.regress(
                    call.task(),
                    servable,
                    &sv::RegressionRequest {
                        model_spec: Some(spec.clone()),
                        input: request.input.clone(),
                    },
                )?;
                sv::inference_result::Result::RegressionResult(response.result.unwrap_or_default())
            };
            spec.version_choice = Some(sv::model_spec::VersionChoice::Version(servable.version));
            results.push(sv::InferenceResult {
                model_spec: Some(spec),
                result: Some(result),
            });
        }
        Ok(sv::MultiInferenceResponse { results })
    }
}
