//! TensorFlow Serving's request handling, independent of the transport: typed requests in
//! (the TF Serving protos: `PredictRequest`, `ClassificationRequest`, ...), typed responses or
//! a [`ServeError`] with a canonical error code out. REST and gRPC only translate.
//!
//! The core finds the version a request names among the served models, counts the request
//! (TF Serving's `request_count` and `request_latency`) and hands it to the
//! [`Runner`]; model status, metadata and config reloads are answered here.
//! Every call here may run TensorFlow: call it off the async threads.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;

use super::config;
use super::error::{Code, Result, ServeError};
use super::json::quote_str;
use super::metrics::{Api, Metrics};
use super::models::{ModelManager, Unavailable, VersionRequest, VersionState};
use super::runner::{self, required_spec, Call, Runner};
use super::servable::Servable;
use crate::proto::tensorflow as tfp;
use crate::proto::tensorflow::serving as sv;

/// The request handling of a server.
pub struct Core {
    models: Arc<ModelManager>,
    runner: Arc<Runner>,
    /// Where the REST port serves Prometheus metrics (`--monitoring_config_file`); `None`:
    /// not served (they are still counted).
    metrics_path: Option<String>,
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

impl Core {
    /// The core of a server whose models are `models` and whose requests run on `runner`.
    pub fn new(
        models: Arc<ModelManager>,
        runner: Arc<Runner>,
        metrics_path: Option<String>,
    ) -> Self {
        Core {
            models,
            runner,
            metrics_path,
        }
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        self.runner.metrics()
    }

    /// Where the REST port serves the metrics, if it does.
    pub fn metrics_path(&self) -> Option<&str> {
        self.metrics_path.as_deref()
    }

    /// The runner requests run on.
    pub fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// Runs `f` counting it, when `call` comes from a client, as a request to `api` of the
    /// model `spec` names, by outcome, and timing it when it succeeds (TF Serving's
    /// `request_count` and `request_latency`).
    fn observed<T>(
        &self,
        call: Call,
        api: Api,
        spec: Option<&sv::ModelSpec>,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let started = std::time::Instant::now();
        let result = f();
        if let Some(entrypoint) = call.entrypoint {
            let model = spec.map(|s| s.name.as_str()).unwrap_or_default();
            let code = match &result {
                Ok(_) => Code::Ok,
                Err(e) => e.code,
            };
            self.metrics()
                .request(model, api, entrypoint, code, started.elapsed());
        }
        result
    }

    /// Counts a request the REST transport turned away before it reached the core (malformed
    /// JSON, an unknown model while decoding the body, ...). TF Serving counts requests by
    /// model and status only, so `_api` and `_signature` do not show in the metrics.
    pub fn rejected(&self, _api: Api, model: &str, _signature: &str, error: &ServeError) {
        self.metrics().rejected(model, error.code);
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
                        .any(|(_, s)| matches!(s, VersionState::Available(_)))
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
        runner::signature_inputs(&*self.servable(spec)?, spec)
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
            .map(|n| self.metrics().counter_total(n))
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
                    self.metrics().counter_total(name) - before,
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

    /// Predict on the version the request names.
    pub fn predict(&self, call: Call, request: &sv::PredictRequest) -> Result<sv::PredictResponse> {
        let spec = request.model_spec.as_ref();
        self.observed(call, Api::Predict, spec, || {
            let servable = self.servable(required_spec(spec)?)?;
            self.runner.predict(call, &servable, request)
        })
    }

    /// Classify on the version the request names.
    pub fn classify(
        &self,
        call: Call,
        request: &sv::ClassificationRequest,
    ) -> Result<sv::ClassificationResponse> {
        let spec = request.model_spec.as_ref();
        self.observed(call, Api::Classify, spec, || {
            let servable = self.servable(required_spec(spec)?)?;
            self.runner.classify(call, &servable, request)
        })
    }

    /// Regress on the version the request names.
    pub fn regress(
        &self,
        call: Call,
        request: &sv::RegressionRequest,
    ) -> Result<sv::RegressionResponse> {
        let spec = request.model_spec.as_ref();
        self.observed(call, Api::Regress, spec, || {
            let servable = self.servable(required_spec(spec)?)?;
            self.runner.regress(call, &servable, request)
        })
    }

    /// MultiInference on the version its first task names. Like TF Serving, MultiInference
    /// requests are not counted in the request metrics.
    pub fn multi_inference(
        &self,
        call: Call,
        request: &sv::MultiInferenceRequest,
    ) -> Result<sv::MultiInferenceResponse> {
        let spec = request.tasks.first().ok_or_else(|| {
            ServeError::invalid("MultiInferenceRequest must contain at least one task")
        })?;
        let servable = self.servable(required_spec(spec.model_spec.as_ref())?)?;
        self.runner.multi_inference(call, &servable, request)
    }
}
