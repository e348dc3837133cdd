//! The server's metrics, served on the REST port in the Prometheus text format when
//! `--monitoring_config_file` enables it, under the names, labels, units and buckets TensorFlow
//! Serving exports: its monitoring metrics are named with slashes
//! (`/tensorflow/serving/request_count`), and its Prometheus exporter turns every character
//! outside `[a-zA-Z0-9_]` into `:` (`:tensorflow:serving:request_count`). Latencies are
//! microseconds and counters carry no `_total` suffix, as there. Dashboards and alerts written
//! for TF Serving therefore read smtool unchanged. The few metrics TF Serving has no equivalent
//! for are named `smtool_...` and follow Prometheus' own conventions (seconds, `_total`).
//!
//! Where each TF Serving metric comes from: `request_count`, `request_latency`,
//! `runtime_latency` and the example counts from `tensorflow_serving/servables/tensorflow/
//! util.cc`; `model_warmup_latency` from `saved_model_warmup_util.cc`; the `batching_session`
//! ones from `tensorflow_serving/batching/`; the `:tensorflow:cc:saved_model:` ones from
//! TensorFlow's SavedModel loader (`tensorflow/cc/saved_model/loader.cc`).
//!
//! Label cardinality is bounded, unlike TF Serving (which labels `request_count` with whatever
//! model name a request gives): only the models in the current config get their own
//! `model_name`; requests for any other name are counted under [`UNKNOWN_MODEL`], so URLs
//! and `model_spec`s with random names cannot grow the page. When a config reload removes a
//! model, its series (by model name, and by `model_path` under its base path) are removed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::proto::tensorflow::error::Code;

/// The `model_name` (or `model`) label of requests for a model that is not served. Served
/// models never have an empty name, so it cannot be mistaken for one.
pub const UNKNOWN_MODEL: &str = "";

/// The default path of the metrics, as in TensorFlow Serving.
pub const DEFAULT_PATH: &str = "/monitoring/prometheus/metrics";

/// The content type of [`Metrics::render`]: the Prometheus text format, which TF Serving
/// exports too (OpenMetrics would require a `_total` suffix on counters, which TF Serving's
/// names do not have).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The request kinds that are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Predict,
    Classify,
    Regress,
    MultiInference,
}

/// Which transport a request came through (TF Serving's `entrypoint` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entrypoint {
    Rest,
    Grpc,
}

impl Entrypoint {
    fn as_str(self) -> &'static str {
        match self {
            Entrypoint::Rest => "REST",
            Entrypoint::Grpc => "GRPC",
        }
    }
}

impl Api {
    /// TF Serving's `API` label: the gRPC method name, or the REST method as it appears in
    /// the URL (`:predict`).
    fn label(self, entrypoint: Entrypoint) -> &'static str {
        match (self, entrypoint) {
            (Api::Predict, Entrypoint::Grpc) => "Predict",
            (Api::Classify, Entrypoint::Grpc) => "Classify",
            (Api::Regress, Entrypoint::Grpc) => "Regress",
            (Api::MultiInference, Entrypoint::Grpc) => "MultiInference",
            (Api::Predict, Entrypoint::Rest) => "predict",
            (Api::Classify, Entrypoint::Rest) => "classify",
            (Api::Regress, Entrypoint::Rest) => "regress",
            (Api::MultiInference, Entrypoint::Rest) => "multi_inference",
        }
    }

    /// The `API` label of `runtime_latency`, recorded inside the servable whichever transport
    /// the request came through.
    fn runtime_label(self) -> &'static str {
        self.label(Entrypoint::Grpc)
    }
}

/// TensorFlow's `monitoring::Buckets::Exponential(scale, growth, count)` bucket limits, each
/// rounded to the six significant digits TF Serving's exporter prints (`absl::StrCat` of a
/// double), so the `le` labels read as TF Serving's do.
fn tf_exponential_buckets(scale: f64, growth: f64, count: usize) -> Vec<f64> {
    let mut bound = scale;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let printed: f64 = format!("{bound:.5e}").parse().unwrap_or(bound);
        out.push(printed);
        bound *= growth;
    }
    out
}

/// Latencies in microseconds, 10 µs to about 20 minutes (TF Serving's request, runtime,
/// warmup and load-stage latencies).
fn latency_buckets() -> Vec<f64> {
    tf_exponential_buckets(10.0, 1.8, 33)
}

/// Batch sizes 1, 2, 4, ... 8192 (TF Serving's batching_session histograms).
fn batch_size_buckets() -> Vec<f64> {
    tf_exponential_buckets(1.0, 2.0, 14)
}

fn micros(d: Duration) -> f64 {
    d.as_micros() as f64
}

/// The metrics of one server.
pub struct Metrics {
    registry: Registry,
    request_count: IntCounterVec,
    request_latency: HistogramVec,
    runtime_latency: HistogramVec,
    example_counts: HistogramVec,
    example_count_total: IntCounterVec,
    warmup_latency: HistogramVec,
    load_attempt_count: IntCounterVec,
    load_latency: IntCounterVec,
    batch_input_size: Histogram,
    batch_processed_size: Histogram,
    batch_padding_size: HistogramVec,
    batch_queuing_latency: HistogramVec,
    batch_wrapped_runs: IntCounter,
    session_run_duration: HistogramVec,
    batch_tasks: HistogramVec,
    warmup_records: IntCounterVec,
    served: RwLock<Served>,
}

/// The models whose names and paths may label series.
#[derive(Default)]
struct Served {
    names: HashSet<String>,
    paths: Vec<PathBuf>,
}

impl Served {
    /// The label for a request naming `model`.
    fn label<'a>(&self, model: &'a str) -> &'a str {
        if self.names.contains(model) {
            model
        } else {
            UNKNOWN_MODEL
        }
    }

    fn has_path(&self, path: &str) -> bool {
        self.paths
            .iter()
            .any(|base| Path::new(path).starts_with(base))
    }
}

/// Removes the series of `vec` whose `label` fails `keep`.
fn prune<T: prometheus::core::MetricVecBuilder>(
    vec: &prometheus::core::MetricVec<T>,
    label: &str,
    keep: &dyn Fn(&str) -> bool,
) {
    use prometheus::core::Collector;
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|l| (l.name(), l.value()))
                .collect();
            if labels.get(label).is_some_and(|v| !keep(v)) {
                let _ = vec.remove(&labels);
            }
        }
    }
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

/// Registers a metric; the names and label names below are fixed and valid, so a failure is
/// a programming error caught by the unit tests.
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names and labels are valid and unique");
    metric
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter =
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name and labels");
    register(registry, counter)
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let histogram = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("valid metric name, labels and buckets");
    register(registry, histogram)
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let histogram = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("valid metric name and buckets");
    register(registry, histogram)
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        // The help texts are TensorFlow's own metric descriptions.
        Metrics {
            request_count: counter_vec(
                &r,
                ":tensorflow:serving:request_count",
                "The total number of requests.",
                &["model_name", "status"],
            ),
            request_latency: histogram_vec(
                &r,
                ":tensorflow:serving:request_latency",
                "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
                &["model_name", "API", "entrypoint"],
                latency_buckets(),
            ),
            runtime_latency: histogram_vec(
                &r,
                ":tensorflow:serving:runtime_latency",
                "Distribution of wall time (in microseconds) for Tensorflow runtime.",
                &["model_name", "API", "runtime"],
                latency_buckets(),
            ),
            example_counts: histogram_vec(
                &r,
                ":tensorflow:serving:request_example_counts",
                "The number of tensorflow.Examples per request.",
                &["model"],
                tf_exponential_buckets(1.0, 2.0, 15),
            ),
            example_count_total: counter_vec(
                &r,
                ":tensorflow:serving:request_example_count_total",
                "The total number of tensorflow.Examples.",
                &["model"],
            ),
            warmup_latency: histogram_vec(
                &r,
                ":tensorflow:serving:model_warmup_latency",
                "Distribution of wall time (in microseconds) for warming up the model.",
                &["model_path", "status"],
                latency_buckets(),
            ),
            load_attempt_count: counter_vec(
                &r,
                ":tensorflow:cc:saved_model:load_attempt_count",
                "The number of times a SavedModel was successfully loaded.",
                &["model_path", "status"],
            ),
            load_latency: counter_vec(
                &r,
                ":tensorflow:cc:saved_model:load_latency",
                "Latency in microseconds for SavedModels that were successfully loaded.",
                &["model_path"],
            ),
            batch_input_size: histogram(
                &r,
                ":tensorflow:serving:batching_session:input_batch_size",
                "Tracks the batch size distribution on the inputs.",
                batch_size_buckets(),
            ),
            batch_processed_size: histogram(
                &r,
                ":tensorflow:serving:batching_session:processed_batch_size",
                "Tracks the batch size distribution on processing.",
                batch_size_buckets(),
            ),
            batch_padding_size: histogram_vec(
                &r,
                ":tensorflow:serving:batching_session:padding_size",
                "Tracks the padding size distribution on batches.",
                &["execution_batch_size"],
                batch_size_buckets(),
            ),
            batch_queuing_latency: histogram_vec(
                &r,
                ":tensorflow:serving:batching_session:queuing_latency",
                "Distribution of wall time spent (in microseconds) in queuing",
                &["thread_pool_name"],
                tf_exponential_buckets(100.0, 1.2, 52),
            ),
            batch_wrapped_runs: register(
                &r,
                IntCounter::new(
                    ":tensorflow:serving:batching_session:wrapped_run_count",
                    "Total count of run calls on the wrapped session",
                )
                .expect("valid metric name"),
            ),
            session_run_duration: histogram_vec(
                &r,
                "smtool_session_run_duration_seconds",
                "Time of one TensorFlow session run (one batch when batching), in seconds",
                &["model_name", "signature_name"],
                prometheus::exponential_buckets(50e-6, 2.0, 24).expect("valid buckets"),
            ),
            batch_tasks: histogram_vec(
                &r,
                "smtool_batch_requests",
                "Requests merged into each batched session run",
                &["model_name", "signature_name"],
                batch_size_buckets(),
            ),
            warmup_records: counter_vec(
                &r,
                "smtool_model_warmup_records_total",
                "Warmup requests replayed before a version became available",
                &["model_name", "model_version"],
            ),
            registry: r,
            served: RwLock::new(Served::default()),
        }
    }

    fn served(&self) -> RwLockReadGuard<'_, Served> {
        self.served.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The models of the current config (name and base path): only they get their own label
    /// values; the series of models no longer in it are removed.
    pub fn set_models<'a>(&self, models: impl IntoIterator<Item = (&'a str, &'a Path)>) {
        let mut served = self.served.write().unwrap_or_else(|p| p.into_inner());
        let (names, paths) = models
            .into_iter()
            .map(|(name, path)| (name.to_owned(), path.to_path_buf()))
            .unzip();
        *served = Served { names, paths };
        let name = |v: &str| v == UNKNOWN_MODEL || served.names.contains(v);
        let path = |v: &str| served.has_path(v);
        prune(&self.request_count, "model_name", &name);
        prune(&self.request_latency, "model_name", &name);
        prune(&self.runtime_latency, "model_name", &name);
        prune(&self.example_counts, "model", &name);
        prune(&self.example_count_total, "model", &name);
        prune(&self.session_run_duration, "model_name", &name);
        prune(&self.batch_tasks, "model_name", &name);
        prune(&self.warmup_records, "model_name", &name);
        prune(&self.warmup_latency, "model_path", &path);
        prune(&self.load_attempt_count, "model_path", &path);
        prune(&self.load_latency, "model_path", &path);
    }

    /// One request TF Serving counts (predict, classify, regress): its outcome by model, and
    /// when it succeeded its latency by model, API and transport.
    pub fn request(
        &self,
        model: &str,
        api: Api,
        entrypoint: Entrypoint,
        code: Code,
        took: Duration,
    ) {
        let served = self.served();
        let model = served.label(model);
        self.count(model, code);
        if code == Code::Ok {
            self.request_latency
                .with_label_values(&[model, api.label(entrypoint), entrypoint.as_str()])
                .observe(micros(took));
        }
    }

    /// One request turned away before it reached a model (counted, not timed).
    pub fn rejected(&self, model: &str, code: Code) {
        let served = self.served();
        self.count(served.label(model), code);
    }

    /// `request_count`; `model` is already a label value.
    fn count(&self, model: &str, code: Code) {
        self.request_count
            .with_label_values(&[model, code.as_str_name()])
            .inc();
    }

    /// One successful run of a signature for a request, from handing its tensors to the
    /// session (or the batcher) to getting its outputs back.
    pub fn runtime(&self, model: &str, api: Api, took: Duration) {
        let served = self.served();
        let model = served.label(model);
        self.runtime_latency
            .with_label_values(&[model, api.runtime_label(), "TF1"])
            .observe(micros(took));
    }

    /// A classify or regress request ran on `n` examples.
    pub fn examples(&self, model: &str, n: usize) {
        let served = self.served();
        let model = served.label(model);
        self.example_counts
            .with_label_values(&[model])
            .observe(n as f64);
        self.example_count_total
            .with_label_values(&[model])
            .inc_by(n as u64);
    }

    /// One TensorFlow session run (one batch when batching).
    pub fn session_run(&self, model: &str, signature: &str, took: Duration) {
        let served = self.served();
        let model = served.label(model);
        self.session_run_duration
            .with_label_values(&[model, signature])
            .observe(took.as_secs_f64());
    }

    /// A request entered the batcher with `rows` rows in one of its fed tensors (TF Serving
    /// records one observation per fed tensor).
    pub fn batch_input(&self, rows: usize) {
        self.batch_input_size.observe(rows as f64);
    }

    /// A batch of `requests` requests was merged into `rows` rows and padded to `padded`.
    pub fn batch(&self, model: &str, signature: &str, rows: usize, padded: usize, requests: usize) {
        self.batch_processed_size.observe(padded as f64);
        self.batch_padding_size
            .with_label_values(&[&padded.to_string()])
            .observe((padded - rows.min(padded)) as f64);
        let served = self.served();
        let model = served.label(model);
        self.batch_tasks
            .with_label_values(&[model, signature])
            .observe(requests as f64);
    }

    /// A request waited `waited` in the batching queue before its batch started.
    pub fn batch_queued(&self, waited: Duration) {
        // TF Serving's batching session is created without a thread pool name.
        self.batch_queuing_latency
            .with_label_values(&[""])
            .observe(micros(waited));
    }

    /// The batched session was run once.
    pub fn batch_run(&self) {
        self.batch_wrapped_runs.inc();
    }

    /// TensorFlow's SavedModel loader ran on `dir`, successfully or not.
    pub fn load(&self, dir: &Path, ok: bool, took: Duration) {
        let path = dir.display().to_string();
        let served = self.served();
        if !served.has_path(&path) {
            return;
        }
        let status = if ok { "success" } else { "fail" };
        self.load_attempt_count
            .with_label_values(&[&path, status])
            .inc();
        if ok {
            self.load_latency
                .with_label_values(&[&path])
                .inc_by(took.as_micros() as u64);
        }
    }

    /// The warmup file of `dir` was read to its end (`error` is `None`) or could not be read
    /// (`error` is the code and message). TF Serving records no latency when a warmup request
    /// fails or there are too many records.
    pub fn warmup_read(&self, dir: &Path, error: Option<(Code, &str)>, took: Duration) {
        let status = match error {
            None => "OK".to_owned(),
            Some((code, message)) => format!("{}: {message}", code.as_str_name()),
        };
        let served = self.served();
        if !served.has_path(&dir.display().to_string()) {
            return;
        }
        self.warmup_latency
            .with_label_values(&[&dir.display().to_string(), &status])
            .observe(micros(took));
    }

    /// A version's warmup replayed `records` requests.
    pub fn warmup_records(&self, model: &str, version: i64, records: u64) {
        let served = self.served();
        let model = served.label(model);
        self.warmup_records
            .with_label_values(&[model, &version.to_string()])
            .inc_by(records);
    }

    /// The sum over all label sets of the counter TensorFlow names `name` (with slashes, as
    /// `ReloadConfigRequest.metric_names` does, or as exported); 0 for an unknown name or a
    /// metric that is not a counter.
    pub fn counter_total(&self, name: &str) -> i64 {
        let exported = prometheus_name(name);
        self.registry
            .gather()
            .iter()
            .filter(|family| family.name() == exported)
            .filter(|family| family.get_field_type() == prometheus::proto::MetricType::COUNTER)
            .flat_map(|family| family.get_metric().iter())
            .map(|m| m.get_counter().get_value() as i64)
            .sum()
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail: every family has samples and
        // TextEncoder writes no other kind of error.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The name TF Serving's Prometheus exporter gives a TensorFlow metric: every character
/// outside `[a-zA-Z0-9_]` becomes `:`, and a leading digit gets a `_` in front.
pub fn prometheus_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                ':'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_tensorflows_as_its_exporter_prints_them() {
        let b = latency_buckets();
        assert_eq!(b.len(), 33);
        assert_eq!(&b[..5], &[10.0, 18.0, 32.4, 58.32, 104.976]);
        // 10 * 1.8^5 = 188.9568, printed with six significant digits.
        assert_eq!(b[5], 188.957);
        let sizes = batch_size_buckets();
        assert_eq!((sizes.len(), sizes[0], sizes[13]), (14, 1.0, 8192.0));
    }

    #[test]
    fn tensorflow_names_become_prometheus_names() {
        assert_eq!(
            prometheus_name("/tensorflow/serving/request_count"),
            ":tensorflow:serving:request_count"
        );
        assert_eq!(prometheus_name("9lives-x"), "_9lives:x");
    }

    #[test]
    fn render_uses_tf_serving_names_labels_and_units() {
        let m = Metrics::new();
        m.set_models([("digits", Path::new("/models/digits"))]);
        m.request(
            "digits",
            Api::Predict,
            Entrypoint::Grpc,
            Code::Ok,
            Duration::from_micros(2500),
        );
        m.request(
            "digits",
            Api::Predict,
            Entrypoint::Rest,
            Code::NotFound,
            Duration::from_millis(1),
        );
        m.batch("digits", "serving_default", 6, 8, 3);
        m.load(
            Path::new("/models/digits/1"),
            true,
            Duration::from_micros(700),
        );
        let text = m.render();
        assert!(
            text.contains("# TYPE :tensorflow:serving:request_count counter"),
            "{text}"
        );
        assert!(
            text.contains(
                ":tensorflow:serving:request_count{model_name=\"digits\",status=\"OK\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("status=\"NOT_FOUND\"} 1\n"), "{text}");
        // Failed requests are counted, not timed; latencies are microseconds.
        assert!(
            text.contains(
                ":tensorflow:serving:request_latency_sum{API=\"Predict\",entrypoint=\"GRPC\",model_name=\"digits\"} 2500\n"
            ),
            "{text}"
        );
        assert!(!text.contains("entrypoint=\"REST\""), "{text}");
        assert!(
            text.contains(":tensorflow:serving:batching_session:padding_size_sum{execution_batch_size=\"8\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                ":tensorflow:cc:saved_model:load_latency{model_path=\"/models/digits/1\"} 700\n"
            ),
            "{text}"
        );
        assert!(!text.contains("_total{model_name"), "{text}");
        assert_eq!(m.counter_total("/tensorflow/serving/request_count"), 2);
        assert_eq!(
            m.counter_total("/tensorflow/cc/saved_model/load_attempt_count"),
            1
        );
        assert_eq!(m.counter_total("/tensorflow/serving/request_latency"), 0);
        assert_eq!(m.counter_total("/no/such/metric"), 0);
    }

    #[test]
    fn only_served_models_get_their_own_series() {
        let m = Metrics::new();
        m.set_models([
            ("digits", Path::new("/models/digits")),
            ("iris", Path::new("/models/iris")),
        ]);
        for i in 0..500 {
            let name = format!("random-{i}");
            m.rejected(&name, Code::NotFound);
            m.request(
                &name,
                Api::Predict,
                Entrypoint::Rest,
                Code::Ok,
                Duration::ZERO,
            );
            m.runtime(&name, Api::Predict, Duration::ZERO);
            m.examples(&name, 1);
            m.session_run(&name, "serving_default", Duration::ZERO);
            m.warmup_records(&name, 1, 1);
            m.load(&Path::new("/elsewhere").join(&name), true, Duration::ZERO);
        }
        m.request(
            "iris",
            Api::Classify,
            Entrypoint::Grpc,
            Code::Ok,
            Duration::ZERO,
        );
        m.request(
            "digits",
            Api::Predict,
            Entrypoint::Grpc,
            Code::Ok,
            Duration::ZERO,
        );
        m.load(Path::new("/models/iris/1"), true, Duration::from_micros(5));
        m.load(
            Path::new("/models/digits/1"),
            true,
            Duration::from_micros(5),
        );
        let text = m.render();
        assert!(!text.contains("random-"), "{text}");
        assert!(!text.contains("/elsewhere"), "{text}");
        assert!(
            text.contains(
                ":tensorflow:serving:request_count{model_name=\"\",status=\"NOT_FOUND\"} 500\n"
            ),
            "{text}"
        );
        assert!(text.contains("model_name=\"iris\""), "{text}");
        // A reload that drops iris drops its series, by name and by path.
        m.set_models([("digits", Path::new("/models/digits"))]);
        let text = m.render();
        assert!(!text.contains("iris"), "{text}");
        assert!(text.contains("model_name=\"digits\""), "{text}");
        assert!(text.contains("/models/digits/1"), "{text}");
        assert!(
            text.contains("model_name=\"\",status=\"NOT_FOUND\"} 500"),
            "{text}"
        );
    }
}
