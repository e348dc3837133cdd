//! TensorFlow Serving's request handling, independent of the transport: typed requests in
//! (the TF Serving protos: `PredictRequest`, `ClassificationRequest`, ...), typed responses or
//! a [`ServeError`] with a canonical error code out. REST and gRPC only translate.
//! Every call here may run TensorFlow: call it off the async threads.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;

use super::batching::Batcher;
use super::config::{self, BatchingParameters};
use super::error::{Code, Result, ServeError};
use super::json::quote_str;
use super::limits::shape_debug;
use super::limits::Limits;
use super::metrics::{Api, Entrypoint, Metrics};
use super::models::{ModelManager, Servable, Unavailable, VersionRequest, VersionState};
use super::tensor::{
    dtype, serialized_examples, tensor_from_proto, tensor_to_proto, Tensor, Values,
};
use crate::proto::tensorflow as tfp;
use crate::proto::tensorflow::serving as sv;
use crate::proto_ext::{dtype_name, tensor_name};

/// The signature used when a request names none.
pub const DEFAULT_SIGNATURE: &str = "serving_default";

/// The request handling of a server.
pub struct Core {
    models: Arc<ModelManager>,
    metrics: Arc<Metrics>,
    options: CoreOptions,
    batcher: Option<Batcher>,
}

/// Settings of the request core beyond the models.
#[derive(Debug, Clone, Default)]
pub struct CoreOptions {
    /// Where the REST port serves Prometheus metrics (`--monitoring_config_file`); `None`: not
    /// served (they are still counted).
    pub metrics_path: Option<String>,
    /// Merge concurrent requests into batched session runs (`--enable_batching`).
    pub batching: Option<BatchingParameters>,
    /// What one request, and one response, may hold (from `--max-request-bytes`).
    pub limits: Limits,
    /// Refuse a signature whose method_name is not the API's
    /// (`--enable_signature_method_name_check`).
    pub method_name_check: bool,
    /// Times each warmup request is replayed (`--num_request_iterations_for_warmup`; 0: once).
    pub warmup_iterations: u32,
}

/// `Some(spec)` or TF Serving's error for a request without one.
fn required_spec(spec: Option<&sv::ModelSpec>) -> Result<&sv::ModelSpec> {
    spec.ok_or_else(|| ServeError::invalid("Missing ModelSpec"))
}

/// `Latest(name)` / `Specific(name, 3)` as TF Serving prints a servable request.
fn request_text(name: &str, version: &VersionRequest) -> String {
    match version {
        VersionRequest::Specific(v) => format!("Specific({}, {v})", quote_str(name)),
        _ => format!("Latest({})", quote_str(name)),
    }
}

fn version_request(spec: &sv::ModelSpec) -> VersionRequest {
    match &spec.version_choice {
        Some(sv::model_spec::VersionChoice::Version(v)) => VersionRequest::Specific(*v),
        Some(sv::model_spec::VersionChoice::VersionLabel(l)) => VersionRequest::Label(l.clone()),
        None => VersionRequest::Latest,
    }
}

fn signature_name(spec: &sv::ModelSpec) -> &str {
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

/// The signature a Classify or Regress request names, with its single input checked (TF
/// Serving's wording for both mistakes).
/// With `method` (`--enable_signature_method_name_check`: the API's word and method name),
/// a signature of another method is refused first, as TF Serving does.
fn examples_signature<'a>(
    servable: &'a Servable,
    spec: Option<&'a sv::ModelSpec>,
    method: Option<(&str, &str)>,
) -> Result<(&'a str, &'a tfp::SignatureDef)> {
    let name = signature_name(required_spec(spec)?);
    let signature = servable.meta_graph.signature_def.get(name).ok_or_else(|| {
        ServeError::invalid(format!(
            "No signature was found with the name: {}",
            quote_str(name)
        ))
    })?;
    if let Some((api, method_name)) = method {
        if signature.method_name != method_name {
            return Err(ServeError::invalid(format!(
                "Expected {api} signature method_name to be {method_name}. Was: {}",
                signature.method_name
            )));
        }
    }
    if signature.inputs.len() != 1 {
        return Err(ServeError::invalid("Expected one input Tensor."));
    }
    Ok((name, signature))
}

fn info_name<'a>(alias: &str, info: &'a tfp::TensorInfo) -> Result<&'a str> {
    tensor_name(info).ok_or_else(|| {
        ServeError::new(
            Code::Unimplemented,
            format!("tensor '{alias}' is sparse or composite; only dense tensors are supported"),
        )
    })
}

impl Core {
    pub fn new(models: Arc<ModelManager>) -> Self {
        Self::with_options(models, CoreOptions::default())
    }

    /// A core with metrics exposure and batching as `options` say.
    pub fn with_options(models: Arc<ModelManager>, options: CoreOptions) -> Self {
        let metrics = models.metrics().clone();
        let batcher = options
            .batching
            .clone()
            .map(|p| Batcher::start(p, metrics.clone(), options.limits));
        Core {
            models,
            metrics,
            options,
            batcher,
        }
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Where the REST port serves the metrics, if it does.
    pub fn metrics_path(&self) -> Option<&str> {
        self.options.metrics_path.as_deref()
    }

    /// Counts a request by model and outcome, and times it when it succeeds (TF Serving's
    /// `request_count` and `request_latency`).
    fn observed<T>(
        &self,
        api: Api,
        entrypoint: Entrypoint,
        spec: Option<&sv::ModelSpec>,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let started = std::time::Instant::now();
        let result = f();
        let model = spec.map(|s| s.name.as_str()).unwrap_or_default();
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(e) => e.code,
        };
        self.metrics
            .request(model, api, entrypoint, code, started.elapsed());
        result
    }

    /// Counts a request the REST transport turned away before it reached the core (malformed
    /// JSON, an unknown model while decoding the body, ...). TF Serving counts requests by
    /// model and status only, so `_api` and `_signature` do not show in the metrics.
    pub fn rejected(&self, _api: Api, model: &str, _signature: &str, error: &ServeError) {
        self.metrics.rejected(model, error.code);
    }

    /// Runs a signature's feeds and fetches: through the batcher when batching is on and the
    /// signature can be batched, else directly. The session run is timed either way, and when
    /// it succeeds the request's wait for it is TF Serving's `runtime_latency` for `api`.
    fn run(
        &self,
        api: Api,
        servable: &Arc<Servable>,
        signature: &str,
        feeds: &[(&str, &Tensor)],
        fetches: &[&str],
    ) -> Result<Vec<Tensor>> {
        let started = std::time::Instant::now();
        let outputs = self.run_session(servable, signature, feeds, fetches)?;
        self.metrics.runtime(&servable.name, api, started.elapsed());
        Ok(outputs)
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

    /// Times each warmup request is replayed.
    pub fn warmup_iterations(&self) -> u32 {
        self.options.warmup_iterations.max(1)
    }

    /// The models served now that have no version available (readiness: none).
    pub fn unready_models(&self) -> Vec<String> {
        self.models
            .names()
            .into_iter()
            .filter(|name| {
                !self.models.states(name).is_some_and(|states| {
                    states
                        .iter()
                        .any(|(_, s)| matches!(s, super::models::VersionState::Available(_)))
                })
            })
            .collect()
    }

    pub fn models(&self) -> &Arc<ModelManager> {
        &self.models
    }

    /// The servable a request runs on, or TF Serving's error.
    pub fn servable(&self, spec: &sv::ModelSpec) -> Result<Arc<Servable>> {
        let version = version_request(spec);
        self.models
            .servable(&spec.name, &version)
            .map_err(|why| match (why, &version) {
                (Unavailable::UnknownLabel, VersionRequest::Label(l)) => ServeError::invalid(
                    format!("Unrecognized servable version label: {}", quote_str(l)),
                ),
                _ => ServeError::new(
                    Code::NotFound,
                    format!(
                        "Servable not found for request: {}",
                        request_text(&spec.name, &version)
                    ),
                ),
            })
    }

    /// The inputs of a signature, for decoding a REST request (TF Serving's GetInfoMap).
    pub fn signature_inputs(
        &self,
        spec: &sv::ModelSpec,
    ) -> Result<BTreeMap<String, tfp::TensorInfo>> {
        let servable = self.servable(spec)?;
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

    /// GetModelStatus.
    pub fn status(
        &self,
        request: &sv::GetModelStatusRequest,
    ) -> Result<sv::GetModelStatusResponse> {
        let spec = request
            .model_spec
            .as_ref()
            .ok_or_else(|| ServeError::invalid("Missing ModelSpec"))?;
        let name = &spec.name;
        let states = self
            .models
            .states(name)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ServeError::new(
                    Code::NotFound,
                    format!("Could not find any versions of model {}", quote_str(name)),
                )
            })?;
        let wanted = match version_request(spec) {
            VersionRequest::Latest => None,
            VersionRequest::Specific(v) => Some(v),
            VersionRequest::Label(l) => Some(self.models.label(name, &l).ok_or_else(|| {
                ServeError::invalid(format!(
                    "Unrecognized servable version label: {}",
                    quote_str(&l)
                ))
            })?),
        };
        let status_of = |(version, state): &(i64, VersionState)| {
            let (state, code, message) = match state {
                VersionState::Loading => {
                    (sv::model_version_status::State::Loading, 0, String::new())
                }
                VersionState::Available(_) => {
                    (sv::model_version_status::State::Available, 0, String::new())
                }
                VersionState::End { error: None } => {
                    (sv::model_version_status::State::End, 0, String::new())
                }
                VersionState::End { error: Some(e) } => (
                    sv::model_version_status::State::End,
                    e.code as i32,
                    e.message.clone(),
                ),
            };
            sv::ModelVersionStatus {
                version: *version,
                state: state as i32,
                status: Some(sv::StatusProto {
                    error_code: code,
                    error_message: message,
                }),
            }
        };
        let model_version_status: Vec<_> = match wanted {
            None => states.iter().map(status_of).collect(),
            Some(v) => {
                let found = states.iter().find(|(n, _)| *n == v).ok_or_else(|| {
                    ServeError::new(
                        Code::NotFound,
                        format!("Could not find version {v} of model {}", quote_str(name)),
                    )
                })?;
                vec![status_of(found)]
            }
        };
        Ok(sv::GetModelStatusResponse {
            model_version_status,
        })
    }

    /// HandleReloadConfigRequest: the served models become those of the request's
    /// `model_config_list`, with TF Serving's checks and errors. The response reports, for
    /// each of `metric_names` (TensorFlow's slash-separated names), how much that counter grew
    /// during the reload (summed over its label sets).
    pub fn reload_config(
        &self,
        request: &sv::ReloadConfigRequest,
    ) -> Result<sv::ReloadConfigResponse> {
        let before: Vec<i64> = request
            .metric_names
            .iter()
            .map(|n| self.metrics.counter_total(n))
            .collect();
        let configs = config::reload_models(request)?;
        for c in &configs {
            tracing::info!(model = %c.name, path = %c.path.display(), "config entry");
        }
        self.models.reload(configs).map_err(ServeError::from)?;
        let metric = request
            .metric_names
            .iter()
            .zip(before)
            .map(|(name, before)| sv::Metric {
                name: name.clone(),
                value_increase: Some(sv::metric::ValueIncrease::Int64ValueIncrease(
                    self.metrics.counter_total(name) - before,
                )),
            })
            .collect();
        Ok(sv::ReloadConfigResponse {
            status: Some(sv::StatusProto {
                error_code: Code::Ok as i32,
                error_message: String::new(),
            }),
            metric,
        })
    }

    /// GetModelMetadata (the only metadata field is `signature_def`).
    pub fn metadata(
        &self,
        request: &sv::GetModelMetadataRequest,
    ) -> Result<sv::GetModelMetadataResponse> {
        let spec = request
            .model_spec
            .as_ref()
            .ok_or_else(|| ServeError::invalid("Missing ModelSpec"))?;
        if request.metadata_field.is_empty() {
            return Err(ServeError::invalid(
                "GetModelMetadataRequest must specify at least one metadata_field",
            ));
        }
        if let Some(other) = request
            .metadata_field
            .iter()
            .find(|f| f.as_str() != "signature_def")
        {
            return Err(ServeError::invalid(format!(
                "Metadata field {} is not supported",
                quote_str(other)
            )));
        }
        let servable = self.servable(spec)?;
        let map = sv::SignatureDefMap {
            signature_def: servable.meta_graph.signature_def.clone(),
        };
        Ok(sv::GetModelMetadataResponse {
            model_spec: Some(sv::ModelSpec {
                name: servable.name.clone(),
                signature_name: String::new(),
                version_choice: Some(sv::model_spec::VersionChoice::Version(servable.version)),
            }),
            metadata: BTreeMap::from([(
                "signature_def".to_owned(),
                prost_types::Any {
                    type_url: "type.googleapis.com/tensorflow.serving.SignatureDefMap".to_owned(),
                    value: map.encode_to_vec(),
                },
            )]),
        })
    }

    /// Predict as the REST API calls it (counted in the metrics with entrypoint `REST`).
    pub fn predict(&self, request: &sv::PredictRequest) -> Result<sv::PredictResponse> {
        self.predict_from(Entrypoint::Rest, request)
    }

    /// Predict: feeds the request's tensors by signature alias, returns the outputs (all, or
    /// those in `output_filter`).
    pub fn predict_from(
        &self,
        entrypoint: Entrypoint,
        request: &sv::PredictRequest,
    ) -> Result<sv::PredictResponse> {
        self.observed(
            Api::Predict,
            entrypoint,
            request.model_spec.as_ref(),
            || {
                let servable = self.servable(required_spec(request.model_spec.as_ref())?)?;
                self.predict_on(&servable, request)
            },
        )
    }

    /// Predict on one loaded version (warmup uses it before the version is available).
    pub fn predict_on(
        &self,
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
        let outputs = self.run(Api::Predict, servable, name, &feed_refs, &fetches)?;
        Ok(sv::PredictResponse {
            model_spec: Some(response_spec(servable, name)),
            outputs: aliases
                .iter()
                .zip(outputs.iter())
                .map(|(a, t)| ((*a).clone(), tensor_to_proto(t)))
                .collect(),
        })
    }

    /// Feeds a Classify / Regress request's serialized `tf.Example`s to the signature's
    /// `inputs` and fetches `fetches`; `observe` as in [`Core::classify_with`]. Returns the
    /// number of examples and the outputs.
    #[allow(clippy::too_many_arguments)]
    fn run_examples(
        &self,
        api: Api,
        servable: &Arc<Servable>,
        signature: &str,
        input: &tfp::TensorInfo,
        examples: Option<&sv::Input>,
        fetches: &[&str],
        observe: bool,
    ) -> Result<(usize, Vec<Tensor>)> {
        let examples = serialized_examples(examples, &mut self.options.limits.budget())?;
        let n = examples.len();
        let input_tensor = Tensor {
            dims: vec![n as i64],
            values: Values::String(examples),
        };
        let feeds = [(info_name("inputs", input)?, &input_tensor)];
        let outputs = if observe {
            let outputs = self.run(api, servable, signature, &feeds, fetches)?;
            self.metrics.examples(&servable.name, n);
            outputs
        } else {
            self.run_session(servable, signature, &feeds, fetches)?
        };
        Ok((n, outputs))
    }

    /// Classify as the REST API calls it (counted in the metrics with entrypoint `REST`).
    pub fn classify(
        &self,
        request: &sv::ClassificationRequest,
    ) -> Result<sv::ClassificationResponse> {
        self.classify_from(Entrypoint::Rest, request)
    }

    /// Classify: serialized `tf.Example`s into the signature's `inputs`, `classes` / `scores`
    /// out.
    pub fn classify_from(
        &self,
        entrypoint: Entrypoint,
        request: &sv::ClassificationRequest,
    ) -> Result<sv::ClassificationResponse> {
        self.observed(
            Api::Classify,
            entrypoint,
            request.model_spec.as_ref(),
            || {
                let servable = self.servable(required_spec(request.model_spec.as_ref())?)?;
                self.classify_on(&servable, request)
            },
        )
    }

    /// Classify on one loaded version.
    pub fn classify_on(
        &self,
        servable: &Arc<Servable>,
        request: &sv::ClassificationRequest,
    ) -> Result<sv::ClassificationResponse> {
        self.classify_with(servable, request, true)
    }

    /// Classify on one loaded version; `observe` records the runtime latency and the example
    /// count, which TF Serving does for Classify but not inside MultiInference.
    fn classify_with(
        &self,
        servable: &Arc<Servable>,
        request: &sv::ClassificationRequest,
        observe: bool,
    ) -> Result<sv::ClassificationResponse> {
        let check = self
            .options
            .method_name_check
            .then_some(("classification", crate::signature::CLASSIFY_METHOD));
        let (name, signature) = examples_signature(servable, request.model_spec.as_ref(), check)?;
        let n_out = signature.outputs.len();
        if n_out != 1 && n_out != 2 {
            return Err(ServeError::invalid(format!(
                "Expected one or two output Tensors, found {n_out}"
            )));
        }
        let input = signature.inputs.get("inputs").ok_or_else(|| {
            ServeError::new(
                Code::FailedPrecondition,
                format!("No classification inputs found in SignatureDef: {name}"),
            )
        })?;
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
        let (n, outputs) = self.run_examples(
            Api::Classify,
            servable,
            name,
            input,
            request.input.as_ref(),
            &fetches,
            observe,
        )?;
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

    /// Regress as the REST API calls it (counted in the metrics with entrypoint `REST`).
    pub fn regress(&self, request: &sv::RegressionRequest) -> Result<sv::RegressionResponse> {
        self.regress_from(Entrypoint::Rest, request)
    }

    /// Regress: serialized `tf.Example`s into `inputs`, one float per example out.
    pub fn regress_from(
        &self,
        entrypoint: Entrypoint,
        request: &sv::RegressionRequest,
    ) -> Result<sv::RegressionResponse> {
        self.observed(
            Api::Regress,
            entrypoint,
            request.model_spec.as_ref(),
            || {
                let servable = self.servable(required_spec(request.model_spec.as_ref())?)?;
                self.regress_on(&servable, request)
            },
        )
    }

    /// Regress on one loaded version.
    pub fn regress_on(
        &self,
        servable: &Arc<Servable>,
        request: &sv::RegressionRequest,
    ) -> Result<sv::RegressionResponse> {
        self.regress_with(servable, request, true)
    }

    /// Regress on one loaded version; `observe` as in [`Core::classify_with`].
    fn regress_with(
        &self,
        servable: &Arc<Servable>,
        request: &sv::RegressionRequest,
        observe: bool,
    ) -> Result<sv::RegressionResponse> {
        let check = self
            .options
            .method_name_check
            .then_some(("regression", crate::signature::REGRESS_METHOD));
        let (name, signature) = examples_signature(servable, request.model_spec.as_ref(), check)?;
        if signature.outputs.len() != 1 {
            return Err(ServeError::invalid("Expected one output Tensor."));
        }
        let input = signature.inputs.get("inputs").ok_or_else(|| {
            ServeError::new(
                Code::FailedPrecondition,
                format!("No regression inputs found in SignatureDef: {name}"),
            )
        })?;
        let output = signature.outputs.get("outputs").ok_or_else(|| {
            ServeError::new(
                Code::FailedPrecondition,
                format!("No regression outputs found in SignatureDef: {name}"),
            )
        })?;
        let fetches = [info_name("outputs", output)?];
        let (n, mut outputs) = self.run_examples(
            Api::Regress,
            servable,
            name,
            input,
            request.input.as_ref(),
            &fetches,
            observe,
        )?;
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
}

impl Core {
    /// MultiInference: several classify / regress signatures of one model over the same
    /// examples. Like TF Serving, MultiInference requests are not counted in the request
    /// metrics.
    pub fn multi_inference(
        &self,
        request: &sv::MultiInferenceRequest,
    ) -> Result<sv::MultiInferenceResponse> {
        let spec = request.tasks.first().ok_or_else(|| {
            ServeError::invalid("MultiInferenceRequest must contain at least one task")
        })?;
        let servable = self.servable(required_spec(spec.model_spec.as_ref())?)?;
        self.multi_inference_on(&servable, request)
    }

    /// MultiInference on one loaded version, with TF Serving's checks on the tasks.
    pub fn multi_inference_on(
        &self,
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
                let response = self.classify_with(
                    servable,
                    &sv::ClassificationRequest {
                        model_spec: Some(spec.clone()),
                        input: request.input.clone(),
                    },
                    false,
                )?;
                sv::inference_result::Result::ClassificationResult(
                    response.result.unwrap_or_default(),
                )
            } else {
                let response = self.regress_with(
                    servable,
                    &sv::RegressionRequest {
                        model_spec: Some(spec.clone()),
                        input: request.input.clone(),
                    },
                    false,
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
