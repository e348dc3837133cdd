//! The server's metrics in the Prometheus text format (served on the REST port when
//! `--monitoring_config_file` enables it): requests by model, signature, API and outcome,
//! request and session-run latency, batch sizes, and load / warmup latency per version.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::proto::tensorflow::error::Code;

/// The default path of the metrics, as in TensorFlow Serving.
pub const DEFAULT_PATH: &str = "/monitoring/prometheus/metrics";

/// The request kinds that are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Predict,
    Classify,
    Regress,
    MultiInference,
}

impl Api {
    fn as_str(self) -> &'static str {
        match self {
            Api::Predict => "predict",
            Api::Classify => "classify",
            Api::Regress => "regress",
            Api::MultiInference => "multi_inference",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model_name: String,
    signature_name: String,
    api: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    model_name: String,
    signature_name: String,
    api: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignatureLabels {
    model_name: String,
    signature_name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    model_name: String,
    model_version: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. about 7 minutes.
    Histogram::new(exponential_buckets(50e-6, 2.0, 24))
}

fn size_histogram() -> Histogram {
    // 1, 2, 4, ... 8192 rows.
    Histogram::new(exponential_buckets(1.0, 2.0, 14))
}

/// The metrics of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_latency: HistogramFamily<ApiLabels>,
    session_run_latency: HistogramFamily<SignatureLabels>,
    batch_size: HistogramFamily<SignatureLabels>,
    batched_requests: HistogramFamily<SignatureLabels>,
    load_latency: HistogramFamily<VersionLabels>,
    warmup_latency: HistogramFamily<VersionLabels>,
    warmup_records: Family<VersionLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_latency: HistogramFamily<ApiLabels> =
            Family::new_with_constructor(latency_histogram);
        let session_run_latency: HistogramFamily<SignatureLabels> =
            Family::new_with_constructor(latency_histogram);
        let batch_size: HistogramFamily<SignatureLabels> =
            Family::new_with_constructor(size_histogram);
        let batched_requests: HistogramFamily<SignatureLabels> =
            Family::new_with_constructor(size_histogram);
        let load_latency: HistogramFamily<VersionLabels> =
            Family::new_with_constructor(latency_histogram);
        let warmup_latency: HistogramFamily<VersionLabels> =
            Family::new_with_constructor(latency_histogram);
        let warmup_records = Family::<VersionLabels, Counter>::default();
        registry.register(
            "smtool_serving_request_count",
            "Inference requests (predict, classify, regress, multi_inference) by model, signature, API and status code",
            requests.clone(),
        );
        registry.register(
            "smtool_serving_request_latency_seconds",
            "Time to answer an inference request, from the decoded request to the response",
            request_latency.clone(),
        );
        registry.register(
            "smtool_serving_session_run_latency_seconds",
            "Time of one TensorFlow session run (one batch when batching)",
            session_run_latency.clone(),
        );
        registry.register(
            "smtool_serving_batch_size",
            "Rows in each batched session run, padding included",
            batch_size.clone(),
        );
        registry.register(
            "smtool_serving_batch_requests",
            "Requests merged into each batched session run",
            batched_requests.clone(),
        );
        registry.register(
            "smtool_serving_model_load_latency_seconds",
            "Time to load a model version into TensorFlow (restore and init op)",
            load_latency.clone(),
        );
        registry.register(
            "smtool_serving_model_warmup_latency_seconds",
            "Time to replay a version's assets.extra/tf_serving_warmup_requests",
            warmup_latency.clone(),
        );
        registry.register(
            "smtool_serving_model_warmup_records",
            "Warmup requests replayed before a version became available",
            warmup_records.clone(),
        );
        Metrics {
            registry,
            requests,
            request_latency,
            session_run_latency,
            batch_size,
            batched_requests,
            load_latency,
            warmup_latency,
            warmup_records,
        }
    }

    /// One answered request.
    pub fn request(&self, model: &str, signature: &str, api: Api, code: Code, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                model_name: model.to_owned(),
                signature_name: signature.to_owned(),
                api: api.as_str().to_owned(),
                status: code.as_str_name().to_owned(),
            })
            .inc();
        self.request_latency
            .get_or_create(&ApiLabels {
                model_name: model.to_owned(),
                signature_name: signature.to_owned(),
                api: api.as_str().to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// One request turned away before it reached a model (counted, not timed).
    pub fn rejected(&self, model: &str, signature: &str, api: Api, code: Code) {
        self.requests
            .get_or_create(&RequestLabels {
                model_name: model.to_owned(),
                signature_name: signature.to_owned(),
                api: api.as_str().to_owned(),
                status: code.as_str_name().to_owned(),
            })
            .inc();
    }

    fn signature_labels(model: &str, signature: &str) -> SignatureLabels {
        SignatureLabels {
            model_name: model.to_owned(),
            signature_name: signature.to_owned(),
        }
    }

    fn version_labels(model: &str, version: i64) -> VersionLabels {
        VersionLabels {
            model_name: model.to_owned(),
            model_version: version.to_string(),
        }
    }

    /// One session run.
    pub fn session_run(&self, model: &str, signature: &str, took: Duration) {
        self.session_run_latency
            .get_or_create(&Self::signature_labels(model, signature))
            .observe(took.as_secs_f64());
    }

    /// One batched session run of `rows` rows (padding included) from `requests` requests.
    pub fn batch(&self, model: &str, signature: &str, rows: usize, requests: usize) {
        let labels = Self::signature_labels(model, signature);
        self.batch_size.get_or_create(&labels).observe(rows as f64);
        self.batched_requests
            .get_or_create(&labels)
            .observe(requests as f64);
    }

    /// A version loaded (successfully or not).
    pub fn load(&self, model: &str, version: i64, took: Duration) {
        self.load_latency
            .get_or_create(&Self::version_labels(model, version))
            .observe(took.as_secs_f64());
    }

    /// A version's warmup replayed `records` requests.
    pub fn warmup(&self, model: &str, version: i64, records: u64, took: Duration) {
        let labels = Self::version_labels(model, version);
        self.warmup_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.warmup_records.get_or_create(&labels).inc_by(records);
    }

    /// Everything, in the Prometheus / OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_with_labels() {
        let m = Metrics::new();
        m.request(
            "digits",
            "serving_default",
            Api::Predict,
            Code::Ok,
            Duration::from_millis(2),
        );
        m.request(
            "digits",
            "serving_default",
            Api::Predict,
            Code::NotFound,
            Duration::from_millis(1),
        );
        m.batch("digits", "serving_default", 8, 3);
        let text = m.render();
        assert!(
            text.contains(
                "smtool_serving_request_count_total{model_name=\"digits\",signature_name=\"serving_default\",api=\"predict\",status=\"OK\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("status=\"NOT_FOUND\"} 1"), "{text}");
        assert!(
            text.contains("smtool_serving_batch_size_sum{model_name=\"digits\",signature_name=\"serving_default\"} 8.0"),
            "{text}"
        );
    }
}
