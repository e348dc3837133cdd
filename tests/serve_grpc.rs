//! `smtool serve` beyond REST: the gRPC API (with TF Serving's own Python client), warmup,
//! Prometheus metrics and batching, on the real fixtures with real libtensorflow. Without
//! TensorFlow these tests skip locally and fail in CI (SMTOOL_REQUIRE_TF=1).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use smtool::proto::tensorflow as tfp;
use smtool::proto::tensorflow::serving as sv;
use smtool::serve::config::BatchingParameters;
use smtool::serve::grpc::GrpcOptions;
use smtool::serve::runner::RunOptions;
use smtool::serve::{ServerOptions, TransportOptions};
use sv::prediction_service_client::PredictionServiceClient;

const METRICS: &str = "/monitoring/prometheus/metrics";

use common::server::{
    self, assert_close, error_of, first_status, float_tensor, model, post, post_ok, Running,
};

/// A REST exchange with a text body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    common::http(addr, method, path, body.map(str::as_bytes))
}

fn with_metrics() -> ServerOptions {
    ServerOptions {
        warmup: true,
        metrics_path: Some(METRICS.to_owned()),
        ..Default::default()
    }
}

fn start_fixtures() -> Option<Running> {
    server::start_models(server::fixture_models(), with_metrics())
}

type Scrape = openmetrics_parser::MetricsExposition<
    openmetrics_parser::PrometheusType,
    openmetrics_parser::PrometheusValue,
>;

/// The metrics page, parsed by a Prometheus text-format parser.
fn scrape(addr: SocketAddr) -> Scrape {
    let (status, text) = http(addr, "GET", METRICS, None);
    assert_eq!(status, 200, "{text}");
    openmetrics_parser::prometheus::parse_prometheus(&text)
        .unwrap_or_else(|e| panic!("not the Prometheus text format: {e:?}\n{text}"))
}

/// The series of `name` whose labels include `labels`, with all their labels.
fn series<'a>(
    scrape: &'a Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Vec<(
    BTreeMap<String, String>,
    &'a openmetrics_parser::PrometheusValue,
)> {
    let Some(family) = scrape.families.get(name) else {
        return Vec::new();
    };
    family
        .iter_samples()
        .map(|s| {
            let set = s.get_labelset().expect("label set");
            let all: BTreeMap<String, String> =
                set.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            (all, &s.value)
        })
        .filter(|(all, _)| {
            labels
                .iter()
                .all(|(k, v)| all.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The sum over the series of `name` whose labels include `labels` of a counter's value or a
/// histogram's count; 0 when there is none.
fn sample(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    use openmetrics_parser::PrometheusValue as V;
    series(scrape, name, labels)
        .into_iter()
        .map(|(_, value)| match value {
            V::Counter(c) => c.value.as_f64(),
            V::Gauge(v) | V::Unknown(v) => v.as_f64(),
            V::Histogram(h) => h.count.unwrap_or(0) as f64,
            V::Summary(_) => 0.0,
        })
        .sum()
}

/// The sum of the observations of the histogram `name` whose labels include `labels`.
fn histogram_sum(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    series(scrape, name, labels)
        .into_iter()
        .map(|(_, value)| match value {
            openmetrics_parser::PrometheusValue::Histogram(h) => h.sum.map_or(0.0, |s| s.as_f64()),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .sum()
}

fn spec(name: &str, signature: &str) -> Option<sv::ModelSpec> {
    Some(sv::ModelSpec {
        name: name.to_owned(),
        signature_name: signature.to_owned(),
        version_choice: None,
    })
}

fn hp_request(values: &[f32]) -> sv::PredictRequest {
    sv::PredictRequest {
        model_spec: spec("half_plus_two", "serving_default"),
        inputs: [("x".to_owned(), float_tensor(&[values.len() as i64], values))].into(),
        ..Default::default()
    }
}

fn iris_examples(rows: &[Value]) -> sv::Input {
    let examples = rows
        .iter()
        .map(|row| {
            let x: Vec<f32> = row["x"]
                .as_array()
                .expect("x")
                .iter()
                .map(|v| v.as_f64().expect("float") as f32)
                .collect();
            tfp::Example {
                features: Some(tfp::Features {
                    feature: [(
                        "x".to_owned(),
                        tfp::Feature {
                            kind: Some(tfp::feature::Kind::FloatList(tfp::FloatList { value: x })),
                        },
                    )]
                    .into(),
                }),
            }
        })
        .collect();
    sv::Input {
        kind: Some(sv::input::Kind::ExampleList(sv::ExampleList { examples })),
    }
}

#[test]
fn tf_serving_python_grpc_client_matches_tensorflow() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let Some(s) = start_fixtures() else { return };
    let expected = server::iris_rows();
    let rows: Vec<String> = expected
        .iter()
        .take(3)
        .map(|r| {
            r["x"]
                .as_array()
                .expect("x")
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let target = s.grpc.to_string();
    let digits = format!("digits={}", common::fixture("digits/model").display());
    let iris = format!("iris={}", common::fixture("iris_tf1").display());
    let mut args = vec!["--target", &target, "--digits", &digits, "--iris", &iris];
    let images = ["06_three.png", "08_seven.png", "10_nine.jpg"].map(|f| {
        common::fixture(&format!("digits/images/{f}"))
            .display()
            .to_string()
    });
    for image in &images {
        args.extend(["--image", image.as_str()]);
    }
    for row in &rows {
        args.extend(["--iris-row", row.as_str()]);
    }
    args.extend(["--removed", "half_plus_two", "--removed", "vocab"]);
    let summary = common::run_python_json(&python, "check_grpc_client.py", &args);
    assert_eq!(summary["predict"]["argmax"], json!([3, 7, 9]));
    assert_eq!(summary["metadata"][1]["version"], json!(1));
    // HandleReloadConfigRequest through the Python ModelServiceStub.
    assert_eq!(summary["reload"]["status"], json!(0));
    assert_eq!(
        summary["reload"]["duplicate_error"],
        json!("Illegal to list model digits multiple times in config list")
    );
    assert_eq!(
        s.server.core.models().names(),
        ["digits".to_owned(), "iris".to_owned()]
    );
    for (i, row) in expected.iter().take(3).enumerate() {
        assert_eq!(
            summary["classify"]["results"][i][0][0], row["classes"][0],
            "row {i}"
        );
    }
}

#[test]
fn grpc_regress_multi_inference_and_status() {
    let Some(s) = start_fixtures() else { return };
    let rows = server::iris_rows();
    let mut client = s.prediction();

    let regress = s
        .block_on(client.regress(sv::RegressionRequest {
            model_spec: spec("iris", "regress"),
            input: Some(iris_examples(&rows)),
        }))
        .expect("regress")
        .into_inner();
    let values: Vec<f32> = regress
        .result
        .expect("result")
        .regressions
        .iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(values.len(), rows.len());
    for (got, row) in values.iter().zip(&rows) {
        let want = row["regress_outputs"][0].as_f64().expect("regress output");
        assert_close(*got as f64, want, "regress");
    }
    assert_eq!(
        regress.model_spec.expect("spec").version_choice,
        Some(sv::model_spec::VersionChoice::Version(1))
    );

    let task = |signature: &str, method: &str| sv::InferenceTask {
        model_spec: spec("iris", signature),
        method_name: method.to_owned(),
    };
    let multi = s
        .block_on(client.multi_inference(sv::MultiInferenceRequest {
            tasks: vec![
                task("classify", "tensorflow/serving/classify"),
                task("regress", "tensorflow/serving/regress"),
            ],
            input: Some(iris_examples(&rows[..1])),
        }))
        .expect("multi inference")
        .into_inner();
    assert_eq!(multi.results.len(), 2);
    match &multi.results[0].result {
        Some(sv::inference_result::Result::ClassificationResult(c)) => {
            assert_eq!(c.classifications[0].classes[0].label, rows[0]["classes"][0]);
        }
        other => panic!("expected a classification, got {other:?}"),
    }
    match &multi.results[1].result {
        Some(sv::inference_result::Result::RegressionResult(r)) => assert_close(
            r.regressions[0].value as f64,
            rows[0]["regress_outputs"][0].as_f64().expect("float"),
            "multi regress",
        ),
        other => panic!("expected a regression, got {other:?}"),
    }
    // As in TF Serving, Regress counts its examples and its runtime; MultiInference is not
    // counted at all.
    let m = scrape(s.rest);
    let iris = ("model_name", "iris");
    assert_eq!(
        sample(&m, ":tensorflow:serving:request_count", &[iris]),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            ":tensorflow:serving:runtime_latency",
            &[iris, ("API", "Regress")]
        ),
        1.0
    );
    assert_eq!(
        sample(&m, ":tensorflow:serving:runtime_latency", &[iris]),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            ":tensorflow:serving:request_example_count_total",
            &[("model", "iris")]
        ),
        rows.len() as f64
    );
    assert_eq!(
        histogram_sum(
            &m,
            ":tensorflow:serving:request_example_counts",
            &[("model", "iris")]
        ),
        rows.len() as f64
    );

    let mut models = s.model_service();
    let status = s
        .block_on(models.get_model_status(sv::GetModelStatusRequest {
            model_spec: spec("half_plus_two", ""),
        }))
        .expect("status")
        .into_inner();
    assert_eq!(status.model_version_status.len(), 1);
    assert_eq!(status.model_version_status[0].version, 2);
    assert_eq!(
        status.model_version_status[0].state,
        sv::model_version_status::State::Available as i32
    );
}

#[test]
fn grpc_errors_have_tf_serving_codes_and_messages() {
    let Some(s) = start_fixtures() else { return };
    let client = s.prediction();
    let code = |r: Result<tonic::Response<_>, tonic::Status>| -> (tonic::Code, String) {
        let e = r.map(|_: tonic::Response<()>| ()).expect_err("an error");
        (e.code(), e.message().to_owned())
    };
    let predict = |req: sv::PredictRequest| {
        let mut c = client.clone();
        s.block_on(async move { c.predict(req).await.map(|r| r.map(|_| ())) })
    };
    let mut unknown = hp_request(&[1.0]);
    unknown.model_spec = spec("nope", "");
    assert_eq!(
        code(predict(unknown)),
        (
            tonic::Code::NotFound,
            "Servable not found for request: Latest(nope)".to_owned()
        )
    );
    let mut bad_signature = hp_request(&[1.0]);
    bad_signature.model_spec = spec("half_plus_two", "nope");
    assert_eq!(
        code(predict(bad_signature)),
        (
            tonic::Code::FailedPrecondition,
            "Serving signature name: \"nope\" not found in signature def".to_owned()
        )
    );
    let mut filtered = hp_request(&[1.0]);
    filtered.output_filter = vec!["z".to_owned()];
    let (c, m) = code(predict(filtered));
    assert_eq!(c, tonic::Code::InvalidArgument);
    assert!(
        m.contains("output tensor alias not found in signature: z"),
        "{m}"
    );

    let task = |signature: &str, method: &str| sv::InferenceTask {
        model_spec: spec("iris", signature),
        method_name: method.to_owned(),
    };
    let multi = |tasks: Vec<sv::InferenceTask>| {
        let mut c = client.clone();
        s.block_on(async move {
            c.multi_inference(sv::MultiInferenceRequest { tasks, input: None })
                .await
                .map(|r| r.map(|_| ()))
        })
    };
    assert_eq!(
        code(multi(vec![
            task("regress", "tensorflow/serving/regress"),
            task("regress", "tensorflow/serving/regress"),
        ])),
        (
            tonic::Code::InvalidArgument,
            "Duplicate evaluation of signature: regress".to_owned()
        )
    );
    let (c, m) = code(multi(vec![task("predict", "tensorflow/serving/predict")]));
    assert_eq!(c, tonic::Code::Unimplemented);
    assert!(m.contains("Unsupported signature method_name"), "{m}");

    let mut models = s.model_service();
    let missing = s.block_on(models.get_model_status(sv::GetModelStatusRequest {
        model_spec: spec("nope", ""),
    }));
    let e = missing.expect_err("unknown model");
    assert_eq!(
        (e.code(), e.message()),
        (
            tonic::Code::NotFound,
            "Could not find any versions of model nope"
        )
    );

    // A reload whose error lists hundreds of broken versions: the message is cut, so that it
    // fits the header limit of every client (grpcio drops a response whose grpc-message passes
    // 16 KiB and reports RESOURCE_EXHAUSTED instead of the error).
    let broken = common::tempdir();
    for v in 1..=300 {
        std::fs::create_dir(broken.path().join(v.to_string())).expect("version directory");
    }
    use sv::file_system_storage_path_source_config::servable_version_policy as policy;
    let reload = reload_request(
        vec![
            model_entry(
                "half_plus_two",
                &common::fixture("half_plus_two"),
                Some(policy::PolicyChoice::Specific(policy::Specific {
                    versions: vec![1],
                })),
                &[],
            ),
            model_entry(
                "broken",
                broken.path(),
                Some(policy::PolicyChoice::All(policy::All {})),
                &[],
            ),
        ],
        &[],
    );
    let e = s
        .block_on(models.handle_reload_config_request(reload))
        .expect_err("no version of 'broken' loads");
    assert_eq!(e.code(), tonic::Code::Unknown, "{}", e.message());
    assert!(
        e.message()
            .starts_with("300 model(s) did not become available: {{{name: broken version: 1} due to error: NOT_FOUND"),
        "{}",
        e.message()
    );
    assert!(e.message().ends_with("..."), "{}", e.message());
    assert!(e.message().len() <= 4096 + 3, "{}", e.message().len());
    let response = s
        .block_on(s.prediction().predict(hp_request(&[1.0, 2.0])))
        .expect("half_plus_two still answers")
        .into_inner();
    assert_eq!(response.outputs["y"].float_val, vec![2.5, 3.0]);
}

#[test]
fn metrics_count_rest_and_grpc_requests_by_model_signature_and_status() {
    let Some(s) = start_fixtures() else { return };
    for x in [1.0, 2.0, 3.0] {
        let (code, body) = post(
            s.rest,
            "/v1/models/half_plus_two:predict",
            &json!({"instances": [x]}),
        );
        assert_eq!((code, body), (200, json!({"predictions": [x * 0.5 + 3.0]})));
    }
    let mut client = s.prediction();
    for _ in 0..2 {
        s.block_on(client.predict(hp_request(&[4.0, 5.0])))
            .expect("gRPC predict");
    }
    let mut unknown = hp_request(&[1.0]);
    unknown.model_spec = spec("half_plus_two", "nope");
    assert!(s.block_on(client.predict(unknown)).is_err());

    // Turned away while decoding the JSON: counted too.
    let (code, _) = http(
        s.rest,
        "POST",
        "/v1/models/half_plus_two:predict",
        Some("{\"instances\": [1.0"),
    );
    assert_eq!(code, 400);

    let m = scrape(s.rest);
    // TF Serving's request_count: by model and status only, no `_total` suffix.
    let count = ":tensorflow:serving:request_count";
    let hp = ("model_name", "half_plus_two");
    assert_eq!(sample(&m, count, &[hp, ("status", "OK")]), 5.0);
    assert_eq!(
        sample(&m, count, &[hp, ("status", "INVALID_ARGUMENT")]),
        1.0
    );
    assert_eq!(
        sample(&m, count, &[hp, ("status", "FAILED_PRECONDITION")]),
        1.0
    );
    for (labels, _) in series(&m, count, &[]) {
        assert_eq!(
            labels.keys().collect::<Vec<_>>(),
            ["model_name", "status"],
            "{labels:?}"
        );
    }
    // Successful requests are timed, in microseconds, by API and transport.
    let latency = ":tensorflow:serving:request_latency";
    assert_eq!(
        sample(
            &m,
            latency,
            &[hp, ("API", "predict"), ("entrypoint", "REST")]
        ),
        3.0
    );
    assert_eq!(
        sample(
            &m,
            latency,
            &[hp, ("API", "Predict"), ("entrypoint", "GRPC")]
        ),
        2.0
    );
    assert_eq!(sample(&m, latency, &[hp]), 5.0);
    // One microsecond or more per request, and not the seconds Prometheus clients default to.
    assert!(histogram_sum(&m, latency, &[hp]) >= 5.0);
    assert_eq!(
        sample(
            &m,
            ":tensorflow:serving:runtime_latency",
            &[hp, ("API", "Predict"), ("runtime", "TF1")]
        ),
        5.0
    );
    assert_eq!(
        sample(
            &m,
            "smtool_session_run_duration_seconds",
            &[hp, ("signature_name", "serving_default")]
        ),
        5.0
    );
    // TensorFlow's SavedModel loader metrics, by version directory.
    let version_dir = |rel: &str| common::fixture(rel).display().to_string();
    let hp_dir = version_dir("half_plus_two/2");
    assert_eq!(
        sample(
            &m,
            ":tensorflow:cc:saved_model:load_attempt_count",
            &[("model_path", &hp_dir), ("status", "success")]
        ),
        1.0
    );
    assert!(
        sample(
            &m,
            ":tensorflow:cc:saved_model:load_latency",
            &[("model_path", &hp_dir)]
        ) > 0.0
    );
    // The vocab fixture's three warmup requests were replayed before it became available.
    let vocab_dir = version_dir("vocab_assets");
    assert_eq!(
        sample(
            &m,
            ":tensorflow:serving:model_warmup_latency",
            &[("model_path", &vocab_dir), ("status", "OK")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "smtool_model_warmup_records_total",
            &[("model_name", "vocab"), ("model_version", "1")]
        ),
        3.0
    );
    let text = http(s.rest, "GET", METRICS, None).1;
    assert!(!text.contains("smtool_serving"), "{text}");
    assert!(!text.contains(":request_count_total"), "{text}");
    // Not under /v1/ and not the metrics path: still a bare 404.
    assert_eq!(http(s.rest, "GET", "/metrics", None).0, 404);
}

#[test]
fn metrics_stay_small_whatever_model_names_requests_give() {
    let Some(s) = server::start_models(
        vec![
            model("half_plus_two", &common::fixture("half_plus_two")),
            model("iris", &common::fixture("iris_tf1")),
        ],
        with_metrics(),
    ) else {
        return;
    };
    // One request per served model first, so their series exist.
    let ok = post(
        s.rest,
        "/v1/models/half_plus_two:predict",
        &json!({"instances": [1.0]}),
    );
    assert_eq!(ok.0, 200, "{ok:?}");
    let iris = post(
        s.rest,
        "/v1/models/iris:regress",
        &json!({"signature_name": "regress", "examples": [{"x": [5.1, 3.5, 1.4, 0.2]}]}),
    );
    assert_eq!(iris.0, 200, "{iris:?}");
    let before = http(s.rest, "GET", METRICS, None).1;
    let mut client = s.prediction();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random_name = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        format!("m{seed:016x}")
    };
    for _ in 0..150 {
        let name = random_name();
        let (code, _) = post(
            s.rest,
            &format!("/v1/models/{name}:predict"),
            &json!({"instances": [1.0]}),
        );
        assert_eq!(code, 404);
        let (code, _) = http(
            s.rest,
            "POST",
            &format!("/v1/models/{name}:classify"),
            Some("{"),
        );
        assert_eq!(code, 400);
        let mut request = hp_request(&[1.0]);
        request.model_spec = spec(&random_name(), "");
        let e = s
            .block_on(client.predict(request))
            .expect_err("unknown model");
        assert_eq!(e.code(), tonic::Code::NotFound);
    }
    let after = http(s.rest, "GET", METRICS, None).1;
    assert!(!after.contains("m0") && !after.contains("\"m"), "{after}");
    // A few series for "not a served model" (one per status), not one per name.
    let m = scrape(s.rest);
    let unknown = series(
        &m,
        ":tensorflow:serving:request_count",
        &[("model_name", "")],
    );
    assert_eq!(unknown.len(), 2, "{unknown:?}");
    assert_eq!(
        sample(
            &m,
            ":tensorflow:serving:request_count",
            &[("model_name", ""), ("status", "NOT_FOUND")]
        ),
        300.0
    );
    let grown = after.lines().count() - before.lines().count();
    assert!(grown <= 4, "the page grew by {grown} lines:\n{after}");

    // A config reload that drops iris drops its series too.
    let reload = reload_request(
        vec![model_entry(
            "half_plus_two",
            &common::fixture("half_plus_two"),
            None,
            &[],
        )],
        &[],
    );
    s.block_on(s.model_service().handle_reload_config_request(reload))
        .expect("reload");
    let page = http(s.rest, "GET", METRICS, None).1;
    assert!(!page.contains("iris"), "{page}");
    assert!(page.contains("model_name=\"half_plus_two\""), "{page}");
}

#[test]
fn slow_grpc_clients_do_not_lock_out_others() {
    let grpc = GrpcOptions {
        connections: server::few_connections(Duration::from_secs(2)),
        ..Default::default()
    };
    let transports = TransportOptions {
        grpc,
        ..Default::default()
    };
    let models = vec![model("half_plus_two", &common::fixture("half_plus_two"))];
    let Some(s) = server::start(models, None, ServerOptions::default(), transports) else {
        return;
    };
    // More connections than the server takes, each starting the HTTP/2 preface and never
    // finishing it.
    let slow = common::slow_clients(s.grpc, 10, b"PRI * HTTP/2.0\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let response = s
        .block_on(s.prediction().predict(hp_request(&[1.0])))
        .expect("a good client is served");
    assert_eq!(response.into_inner().outputs.len(), 1);
    for t in slow {
        assert!(
            t.join().expect("slow client"),
            "a slow client was never disconnected"
        );
    }
}

/// A copy of the vocab fixture whose warmup file fails its CRC check.
fn corrupt_vocab(dir: &Path) -> PathBuf {
    let model = dir.join("vocab");
    common::copy_dir(&common::fixture("vocab_assets"), &model);
    let warmup = model.join("assets.extra/tf_serving_warmup_requests");
    let mut bytes = std::fs::read(&warmup).expect("warmup file");
    let last = bytes.len() - 6;
    bytes[last] ^= 0xff;
    std::fs::write(&warmup, bytes).expect("write");
    model
}

#[test]
fn a_corrupt_warmup_file_fails_the_version_with_a_clear_status() {
    let tmp = common::tempdir();
    let vocab = corrupt_vocab(tmp.path());
    let Some(s) = server::start_models(vec![model("vocab", &vocab)], with_metrics()) else {
        return;
    };
    let status = first_status(s.rest, "/v1/models/vocab");
    assert_eq!(status["state"], "END");
    assert_eq!(status["status"]["error_code"], "DATA_LOSS");
    let message = status["status"]["error_message"].as_str().expect("message");
    assert!(
        message.contains("assets.extra/tf_serving_warmup_requests") && message.contains("CRC32C"),
        "{message}"
    );
    let (code, _) = post(
        s.rest,
        "/v1/models/vocab:predict",
        &json!({"instances": ["a"]}),
    );
    assert_eq!(code, 404);
    // TF Serving times a warmup whose file cannot be read, with the error as its status.
    let m = scrape(s.rest);
    let warmups = series(&m, ":tensorflow:serving:model_warmup_latency", &[]);
    assert_eq!(warmups.len(), 1, "{warmups:?}");
    let status = &warmups[0].0["status"];
    assert!(
        status.starts_with("DATA_LOSS: ") && status.contains("CRC32C"),
        "{status}"
    );
    drop(s);

    // With warmup off the same version loads and answers.
    let options = ServerOptions {
        warmup: false,
        ..with_metrics()
    };
    let Some(s) = server::start_models(vec![model("vocab", &vocab)], options) else {
        return;
    };
    assert_eq!(
        first_status(s.rest, "/v1/models/vocab")["state"],
        "AVAILABLE"
    );
    let m = scrape(s.rest);
    assert_eq!(sample(&m, "smtool_model_warmup_records_total", &[]), 0.0);
    assert!(s.server.core.models().names().contains(&"vocab".to_owned()));
}

/// A copy of the vocab fixture whose warmup file holds `records`.
fn vocab_with_warmup(dir: &Path, name: &str, records: &[Vec<u8>]) -> PathBuf {
    let model = dir.join(name);
    common::copy_dir(&common::fixture("vocab_assets"), &model);
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    std::fs::write(
        model.join("assets.extra/tf_serving_warmup_requests"),
        smtool::savedmodel::tfrecord::encode(refs),
    )
    .expect("write warmup file");
    model
}

#[test]
fn warmup_limits_and_failing_requests_fail_the_load() {
    use prost::Message;
    let tmp = common::tempdir();
    let file = common::fixture("vocab_assets/assets.extra/tf_serving_warmup_requests");
    let bytes = std::fs::read(file).expect("warmup fixture");
    let first = smtool::savedmodel::tfrecord::parse(&bytes).expect("valid TFRecord")[0].to_vec();
    let too_many = vocab_with_warmup(tmp.path(), "too_many", &vec![first; 1001]);
    // A predict request feeding an input the signature does not have.
    let wrong = sv::PredictionLog {
        log_type: Some(sv::prediction_log::LogType::PredictLog(sv::PredictLog {
            request: Some(sv::PredictRequest {
                model_spec: spec("vocab", "serving_default"),
                inputs: [("nope".to_owned(), float_tensor(&[1], [1.0]))].into(),
                ..Default::default()
            }),
            response: None,
        })),
        ..Default::default()
    };
    let failing = vocab_with_warmup(tmp.path(), "failing", &[wrong.encode_to_vec()]);
    let Some(s) = server::start_models(
        vec![model("too_many", &too_many), model("failing", &failing)],
        with_metrics(),
    ) else {
        return;
    };
    let status = |name: &str| first_status(s.rest, &format!("/v1/models/{name}"));
    let v = status("too_many");
    assert_eq!(v["state"], "END");
    assert_eq!(v["status"]["error_code"], "INVALID_ARGUMENT");
    let message = v["status"]["error_message"].as_str().expect("message");
    assert!(
        message.starts_with("Number of warmup records exceeds the maximum (1000) at ")
            && message.ends_with("tf_serving_warmup_requests"),
        "{message}"
    );
    let v = status("failing");
    assert_eq!(v["state"], "END");
    assert_eq!(v["status"]["error_code"], "INVALID_ARGUMENT");
    let message = v["status"]["error_message"].as_str().expect("message");
    assert!(
        message.contains("warmup request 0 in '")
            && message.contains("failed: input size does not match signature"),
        "{message}"
    );
}

fn batching(text: &str) -> ServerOptions {
    ServerOptions {
        warmup: true,
        metrics_path: Some(METRICS.to_owned()),
        run: RunOptions {
            batching: Some(BatchingParameters::from_text(text).expect("batching parameters")),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn batching_merges_concurrent_requests_and_answers_each_its_own() {
    let Some(s) = server::start_models(
        vec![model("half_plus_two", &common::fixture("half_plus_two"))],
        batching(
            "max_batch_size { value: 64 } batch_timeout_micros { value: 50000 } \
             max_enqueued_batches { value: 100 } num_batch_threads { value: 1 } \
             allowed_batch_sizes: 8 allowed_batch_sizes: 64",
        ),
    ) else {
        return;
    };
    let n = 24;
    let barrier = std::sync::Barrier::new(n);
    let rest = s.rest;
    let answers: Vec<(f64, u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let barrier = &barrier;
                scope.spawn(move || {
                    // Different row counts per request: 1 or 2 rows.
                    let x = i as f64;
                    let instances = if i % 2 == 0 {
                        json!([x])
                    } else {
                        json!([x, -x])
                    };
                    barrier.wait();
                    let (code, body) = post(
                        rest,
                        "/v1/models/half_plus_two:predict",
                        &json!({"instances": instances}),
                    );
                    (x, code, body)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    for (i, (x, code, body)) in answers.iter().enumerate() {
        let want = if i % 2 == 0 {
            json!({"predictions": [x * 0.5 + 3.0]})
        } else {
            json!({"predictions": [x * 0.5 + 3.0, -x * 0.5 + 3.0]})
        };
        assert_eq!((*code, body), (200, &want), "request {i}");
    }
    let m = scrape(s.rest);
    let labels = [
        ("model_name", "half_plus_two"),
        ("signature_name", "serving_default"),
    ];
    let batches = sample(&m, "smtool_batch_requests", &labels);
    assert!(batches >= 1.0, "no batch ran");
    assert!(
        batches < n as f64,
        "{n} concurrent requests ran in {batches} batches: none were merged"
    );
    // One session run per batch, as TF Serving's batching session counts them.
    let wrapped = ":tensorflow:serving:batching_session:wrapped_run_count";
    assert_eq!(
        sample(&m, wrapped, &[]),
        batches,
        "one session run per batch"
    );
    assert_eq!(
        sample(&m, "smtool_session_run_duration_seconds", &labels),
        batches
    );
    let input = ":tensorflow:serving:batching_session:input_batch_size";
    assert_eq!(sample(&m, input, &[]), n as f64, "one input per request");
    assert_eq!(histogram_sum(&m, input, &[]), 36.0);
    assert_eq!(
        sample(
            &m,
            ":tensorflow:serving:batching_session:queuing_latency",
            &[]
        ),
        n as f64
    );
    // Each request's runtime includes its wait for the batch, as in TF Serving.
    assert_eq!(
        sample(
            &m,
            ":tensorflow:serving:runtime_latency",
            &[("model_name", "half_plus_two"), ("API", "Predict")]
        ),
        n as f64
    );
    let processed = ":tensorflow:serving:batching_session:processed_batch_size";
    assert_eq!(sample(&m, processed, &[]), batches);
    let rows = histogram_sum(&m, processed, &[]);
    let padding = histogram_sum(&m, ":tensorflow:serving:batching_session:padding_size", &[]);
    // 36 rows were sent (12 requests of 1 row, 12 of 2); padding makes every batch 8 or 64.
    assert_eq!(rows - padding, 36.0);
    assert!(rows % 8.0 == 0.0 && rows >= 36.0, "{rows} rows");
}

/// Two requests whose rows have different lengths (2, and 3), sent together so that they
/// share one batch (`max_batch_size` 3 closes it as soon as both are in): their answers, in
/// order, and the number of batched session runs.
fn variable_length_batch(pad: bool) -> Option<(Vec<(u16, Value)>, f64)> {
    let s = server::start_models(
        vec![model(
            "variable_length",
            &common::fixture("variable_length"),
        )],
        batching(&format!(
            "max_batch_size {{ value: 3 }} batch_timeout_micros {{ value: 5000000 }} \
             num_batch_threads {{ value: 1 }} pad_variable_length_inputs: {pad}"
        )),
    )?;
    let bodies = [
        json!({"instances": [[1.0, 2.0]]}),
        json!({"instances": [[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]}),
    ];
    let barrier = std::sync::Barrier::new(bodies.len());
    let rest = s.rest;
    let answers = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|body| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    post(rest, "/v1/models/variable_length:predict", body)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    let m = scrape(s.rest);
    let runs = sample(
        &m,
        ":tensorflow:serving:batching_session:wrapped_run_count",
        &[],
    );
    Some((answers, runs))
}

/// The answer to `variable_length_batch`'s second request, whose rows are the longest.
fn long_rows_answer() -> (u16, Value) {
    (
        200,
        json!({"predictions": [
            {"doubled": [6.0, 8.0, 10.0], "row_sum": 12.0},
            {"doubled": [12.0, 14.0, 16.0], "row_sum": 21.0}
        ]}),
    )
}

#[test]
fn pad_variable_length_inputs_pads_rows_with_their_first_element() {
    let Some((answers, runs)) = variable_length_batch(true) else {
        return;
    };
    assert_eq!(runs, 1.0, "both requests ran in one batch: {answers:?}");
    // The short row [1, 2] ran as [1, 2, 1]: TF Serving pads each tensor with its own first
    // element, and splits the outputs along dimension 0 only.
    assert_eq!(
        answers[0],
        (
            200,
            json!({"predictions": [{"doubled": [2.0, 4.0, 2.0], "row_sum": 4.0}]})
        )
    );
    assert_eq!(answers[1], long_rows_answer());
}

#[test]
fn without_padding_requests_of_different_lengths_run_apart_and_all_succeed() {
    let Some((answers, runs)) = variable_length_batch(false) else {
        return;
    };
    // TF Serving fails both; here neither fails because of the other: each runs on its own.
    assert_eq!(runs, 2.0, "one session run per shape: {answers:?}");
    assert_eq!(
        answers[0],
        (
            200,
            json!({"predictions": [{"doubled": [2.0, 4.0], "row_sum": 3.0}]})
        )
    );
    assert_eq!(answers[1], long_rows_answer());
}

#[test]
fn a_request_that_cannot_merge_fails_alone_and_its_batch_succeeds() {
    let Some(s) = server::start_models(
        vec![model("half_plus_two", &common::fixture("half_plus_two"))],
        batching(
            "max_batch_size { value: 64 } batch_timeout_micros { value: 300000 } \
             num_batch_threads { value: 1 }",
        ),
    ) else {
        return;
    };
    let n = 12;
    let barrier = std::sync::Barrier::new(n + 2);
    let answers: Vec<Result<Vec<f32>, tonic::Code>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n + 2)
            .map(|i| {
                let (barrier, s) = (&barrier, &s);
                scope.spawn(move || {
                    let mut request = hp_request(&[i as f32]);
                    if i == n {
                        // DT_DOUBLE where the signature takes DT_FLOAT.
                        let x = request.inputs.get_mut("x").expect("x");
                        x.dtype = tfp::DataType::DtDouble as i32;
                        x.float_val.clear();
                        x.double_val = vec![1.0];
                    } else if i == n + 1 {
                        // Rank 2 where the others are rank 1.
                        request
                            .inputs
                            .insert("x".to_owned(), float_tensor(&[1, 1], [1.0]));
                    }
                    let mut client = s.prediction();
                    barrier.wait();
                    s.block_on(client.predict(request))
                        .map(|r| {
                            let y = &r.into_inner().outputs["y"];
                            y.float_val.clone()
                        })
                        .map_err(|e| e.code())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    for (i, answer) in answers.iter().take(n).enumerate() {
        assert_eq!(answer, &Ok(vec![i as f32 * 0.5 + 3.0]), "request {i}");
    }
    assert_eq!(
        answers[n],
        Err(tonic::Code::InvalidArgument),
        "the DT_DOUBLE request"
    );
    assert!(answers[n + 1].is_ok() || answers[n + 1] == Err(tonic::Code::InvalidArgument));
}

#[test]
fn a_full_batch_queue_answers_resource_exhausted() {
    // One batch may wait; it stays open for 3 s. A request too big to join it would need a
    // second one: the queue is full.
    let Some(s) = server::start_models(
        vec![model("half_plus_two", &common::fixture("half_plus_two"))],
        batching(
            "max_batch_size { value: 2 } batch_timeout_micros { value: 3000000 } \
             max_enqueued_batches { value: 1 } num_batch_threads { value: 1 }",
        ),
    ) else {
        return;
    };
    let rest = s.rest;
    std::thread::scope(|scope| {
        let first = scope.spawn(move || {
            post(
                rest,
                "/v1/models/half_plus_two:predict",
                &json!({"instances": [1.0]}),
            )
        });
        std::thread::sleep(Duration::from_millis(500));
        let (code, body) = post(
            rest,
            "/v1/models/half_plus_two:predict",
            &json!({"instances": [1.0, 2.0]}),
        );
        assert_eq!(code, 429, "{body}");
        assert_eq!(
            body["error"],
            "The batch scheduling queue to which this task was submitted is full"
        );
        let mut client = s.prediction();
        let e = s
            .block_on(client.predict(hp_request(&[1.0, 2.0])))
            .expect_err("queue full");
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        let (code, body) = first.join().expect("first request");
        assert_eq!((code, body), (200, json!({"predictions": [3.5]})));
    });
    // Larger than max_batch_size: TF Serving's error.
    let (code, body) = post(
        s.rest,
        "/v1/models/half_plus_two:predict",
        &json!({"instances": [1.0, 2.0, 3.0]}),
    );
    assert_eq!(code, 400);
    assert_eq!(
        body["error"],
        "Task size 3 is larger than maximum input batch size 2"
    );
    // The task size is checked on the request's shapes, before its tensors are made: three
    // rows of 2^40 elements, one value given for all of them, are refused for their rows, not
    // built (nor refused by the budget of --max-request-bytes).
    let mut huge = hp_request(&[1.0]);
    if let Some(x) = huge.inputs.get_mut("x") {
        x.tensor_shape = Some(tfp::TensorShapeProto {
            dim: [3, 1 << 40]
                .into_iter()
                .map(|size| tfp::tensor_shape_proto::Dim {
                    size,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
    }
    let e = s
        .block_on(s.prediction().predict(huge))
        .expect_err("too many rows");
    assert_eq!(
        (e.code(), e.message()),
        (
            tonic::Code::InvalidArgument,
            "Task size 3 is larger than maximum input batch size 2"
        )
    );
}

/// A `model_config_list` entry for TF Serving's ReloadConfigRequest.
fn model_entry(
    name: &str,
    path: &Path,
    policy: Option<
        sv::file_system_storage_path_source_config::servable_version_policy::PolicyChoice,
    >,
    labels: &[(&str, i64)],
) -> sv::ModelConfig {
    sv::ModelConfig {
        name: name.to_owned(),
        base_path: path.display().to_string(),
        model_platform: "tensorflow".to_owned(),
        model_version_policy: policy.map(|p| {
            sv::file_system_storage_path_source_config::ServableVersionPolicy {
                policy_choice: Some(p),
            }
        }),
        version_labels: labels.iter().map(|(l, v)| ((*l).to_owned(), *v)).collect(),
        ..Default::default()
    }
}

fn reload_request(entries: Vec<sv::ModelConfig>, metrics: &[&str]) -> sv::ReloadConfigRequest {
    sv::ReloadConfigRequest {
        config: Some(sv::ModelServerConfig {
            config: Some(sv::model_server_config::Config::ModelConfigList(
                sv::ModelConfigList { config: entries },
            )),
        }),
        metric_names: metrics.iter().map(|m| (*m).to_owned()).collect(),
    }
}

/// `(version, state name)` of every version of `model`, highest first.
fn version_states(s: &Running, model: &str) -> Vec<(i64, String)> {
    let mut models = s.model_service();
    let status = s
        .block_on(models.get_model_status(sv::GetModelStatusRequest {
            model_spec: spec(model, ""),
        }))
        .expect("status")
        .into_inner();
    status
        .model_version_status
        .iter()
        .map(|v| {
            let state = sv::model_version_status::State::try_from(v.state)
                .expect("state")
                .as_str_name()
                .to_owned();
            (v.version, state)
        })
        .collect()
}

#[test]
fn reload_config_adds_removes_and_relabels_models_as_tf_serving_does() {
    use sv::file_system_storage_path_source_config::servable_version_policy::{
        All, Latest, PolicyChoice, Specific,
    };
    let hp_path = common::fixture("half_plus_two");
    let iris_path = common::fixture("iris_tf1");
    let Some(s) = server::start_models(vec![model("hp", &hp_path)], with_metrics()) else {
        return;
    };
    let mut models = s.model_service();
    let mut reload = |request: sv::ReloadConfigRequest| {
        s.block_on(models.handle_reload_config_request(request))
            .map(tonic::Response::into_inner)
    };
    let predict_hp = |label: &str| {
        let mut request = hp_request(&[1.0]);
        request.model_spec = Some(sv::ModelSpec {
            name: "hp".to_owned(),
            signature_name: String::new(),
            version_choice: Some(sv::model_spec::VersionChoice::VersionLabel(
                label.to_owned(),
            )),
        });
        let mut client = s.prediction();
        s.block_on(client.predict(request))
            .map(|r| r.into_inner().outputs["y"].float_val.clone())
    };
    assert_eq!(version_states(&s, "hp"), [(2, "AVAILABLE".to_owned())]);

    // All versions of hp with two labels, and a new model: loaded before the answer.
    let response = reload(reload_request(
        vec![
            model_entry(
                "hp",
                &hp_path,
                Some(PolicyChoice::All(All {})),
                &[("stable", 1), ("canary", 2)],
            ),
            model_entry("iris", &iris_path, None, &[]),
        ],
        &["/tensorflow/cc/saved_model/load_attempt_count"],
    ))
    .expect("reload");
    assert_eq!(
        response.status,
        Some(sv::StatusProto {
            error_code: 0,
            error_message: String::new()
        })
    );
    assert_eq!(response.metric.len(), 1);
    assert_eq!(
        response.metric[0].value_increase,
        Some(sv::metric::ValueIncrease::Int64ValueIncrease(2)),
        "hp version 1 and iris version 1 were loaded"
    );
    assert_eq!(
        version_states(&s, "hp"),
        [(2, "AVAILABLE".to_owned()), (1, "AVAILABLE".to_owned())]
    );
    assert_eq!(version_states(&s, "iris"), [(1, "AVAILABLE".to_owned())]);
    assert_eq!(predict_hp("stable").expect("stable"), vec![2.5]);
    assert_eq!(predict_hp("canary").expect("canary"), vec![3.5]);
    post_ok(
        s.rest,
        "/v1/models/iris:classify",
        &json!({"examples": [{"x": [5.1, 3.5, 1.4, 0.2]}]}),
    );

    // A label may only move to an available version; then nothing changes.
    let e = reload(reload_request(
        vec![
            model_entry(
                "hp",
                &hp_path,
                Some(PolicyChoice::Specific(Specific { versions: vec![2] })),
                &[("stable", 3)],
            ),
            model_entry("iris", &iris_path, None, &[]),
        ],
        &[],
    ))
    .expect_err("label to an unknown version");
    assert_eq!(
        (e.code(), e.message()),
        (
            tonic::Code::FailedPrecondition,
            "Request to assign label to version 3 of model hp, which is not currently available for inference"
        )
    );
    assert_eq!(predict_hp("stable").expect("unchanged"), vec![2.5]);

    // Dropping iris from the list unloads it; hp's policy goes back to the latest version.
    reload(reload_request(
        vec![model_entry(
            "hp",
            &hp_path,
            Some(PolicyChoice::Latest(Latest { num_versions: 1 })),
            &[],
        )],
        &[],
    ))
    .expect("reload");
    assert_eq!(
        version_states(&s, "hp"),
        [(2, "AVAILABLE".to_owned()), (1, "END".to_owned())]
    );
    assert_eq!(version_states(&s, "iris"), [(1, "END".to_owned())]);
    let (code, body) = post(
        s.rest,
        "/v1/models/iris:classify",
        &json!({"examples": [{"x": [5.1, 3.5, 1.4, 0.2]}]}),
    );
    assert_eq!(
        (code, error_of(&body)),
        (404, "Servable not found for request: Latest(iris)")
    );
    let e = predict_hp("stable").expect_err("no such label");
    assert_eq!(
        (e.code(), e.message()),
        (
            tonic::Code::InvalidArgument,
            "Unrecognized servable version label: stable"
        )
    );
    assert_eq!(s.server.core.models().names(), ["hp"]);
}

#[test]
fn reload_config_retries_a_failed_model_that_comes_back() {
    let tmp = common::tempdir();
    let base = tmp.path().join("hp");
    common::copy_dir(&common::fixture("half_plus_two"), &base);
    let graph = base.join("2/saved_model.pb");
    let good = std::fs::read(&graph).expect("graph");
    std::fs::write(&graph, &good[..good.len() / 2]).expect("truncate");
    let hp_path = common::fixture("half_plus_two");
    let Some(s) = server::start_models(vec![model("hp", &hp_path)], with_metrics()) else {
        return;
    };
    let mut models = s.model_service();
    let mut reload = |entries: Vec<sv::ModelConfig>| {
        s.block_on(models.handle_reload_config_request(reload_request(entries, &[])))
            .map(tonic::Response::into_inner)
    };
    let hp = model_entry("hp", &hp_path, None, &[]);
    let broken = || model_entry("broken", &base, None, &[("stable", 2)]);
    let e = reload(vec![hp.clone(), broken()]).expect_err("version 2 is truncated");
    assert_eq!(e.code(), tonic::Code::Unknown, "{}", e.message());
    assert_eq!(version_states(&s, "broken"), [(2, "END".to_owned())]);
    // Removed, repaired, added again: loaded afresh, with its label.
    reload(vec![hp.clone()]).expect("remove");
    std::fs::write(&graph, &good).expect("repair");
    reload(vec![hp, broken()]).expect("added again");
    assert_eq!(version_states(&s, "broken"), [(2, "AVAILABLE".to_owned())]);
    let mut request = hp_request(&[1.0]);
    request.model_spec = Some(sv::ModelSpec {
        name: "broken".to_owned(),
        signature_name: String::new(),
        version_choice: Some(sv::model_spec::VersionChoice::VersionLabel(
            "stable".to_owned(),
        )),
    });
    let mut client = s.prediction();
    let outputs = s
        .block_on(client.predict(request))
        .expect("predict by label")
        .into_inner()
        .outputs;
    assert_eq!(outputs["y"].float_val, vec![3.5]);
}

#[test]
fn reload_config_errors_are_tf_servings() {
    let hp_path = common::fixture("half_plus_two");
    let Some(s) = server::start_models(vec![model("hp", &hp_path)], with_metrics()) else {
        return;
    };
    let mut models = s.model_service();
    let mut reload = |request: sv::ReloadConfigRequest| {
        let e = s
            .block_on(models.handle_reload_config_request(request))
            .expect_err("an invalid config");
        (e.code(), e.message().to_owned())
    };
    let invalid = |message: &str| (tonic::Code::InvalidArgument, message.to_owned());
    let only_lists = invalid(
        "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently supported",
    );
    assert_eq!(reload(sv::ReloadConfigRequest::default()), only_lists);
    let custom = sv::ReloadConfigRequest {
        config: Some(sv::ModelServerConfig {
            config: Some(sv::model_server_config::Config::CustomModelConfig(
                prost_types::Any::default(),
            )),
        }),
        metric_names: Vec::new(),
    };
    assert_eq!(reload(custom), only_lists);
    let hp = model_entry("hp", &hp_path, None, &[]);
    assert_eq!(
        reload(reload_request(vec![hp.clone(), hp.clone()], &[])),
        invalid("Illegal to list model hp multiple times in config list")
    );
    let relative = sv::ModelConfig {
        base_path: "fixtures/half_plus_two".to_owned(),
        ..hp.clone()
    };
    assert_eq!(
        reload(reload_request(vec![relative], &[])),
        invalid(
            "Expected model hp to have an absolute path or URI; got base_path()=fixtures/half_plus_two"
        )
    );
    let no_platform = sv::ModelConfig {
        model_platform: String::new(),
        ..hp.clone()
    };
    assert_eq!(
        reload(reload_request(vec![no_platform], &[])),
        invalid("Illegal setting neither ModelServerConfig::model_type (deprecated) nor ModelServerConfig::model_platform.")
    );
    let other_platform = sv::ModelConfig {
        model_platform: "tensorflow_lite".to_owned(),
        ..hp.clone()
    };
    assert_eq!(
        reload(reload_request(vec![other_platform], &[])),
        invalid("Model hp requests unsupported platform tensorflow_lite")
    );
    let missing = model_entry("gone", &hp_path.join("no_such_dir"), None, &[]);
    let (code, message) = reload(reload_request(vec![hp.clone(), missing], &[]));
    assert_eq!(code, tonic::Code::InvalidArgument);
    assert!(
        message.contains("model 'gone'") && message.contains("no_such_dir"),
        "{message}"
    );
    // None of the above changed anything.
    assert_eq!(version_states(&s, "hp"), [(2, "AVAILABLE".to_owned())]);

    // A new model that fails to load: the config is applied, and the answer says why.
    let truncated = model_entry("truncated", &common::fixture("broken/truncated"), None, &[]);
    let (code, message) = reload(reload_request(vec![hp, truncated], &[]));
    assert_eq!(code, tonic::Code::Unknown);
    assert!(
        message.starts_with(
            "1 model(s) did not become available: {{{name: truncated version: 1} due to error: "
        ) && message.ends_with("}, }"),
        "{message}"
    );
    assert_eq!(version_states(&s, "truncated"), [(1, "END".to_owned())]);
    assert_eq!(version_states(&s, "hp"), [(2, "AVAILABLE".to_owned())]);
}

#[test]
fn binary_serves_grpc_beside_rest_with_tf_serving_flags() {
    let tmp = common::tempdir();
    let monitoring = common::write_file(tmp.path(), "monitoring.config", common::PROMETHEUS_CONFIG);
    let params = common::write_file(
        tmp.path(),
        "batching.config",
        "max_batch_size { value: 128 }\nbatch_timeout_micros { value: 0 }\n\
         max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 2 }\n",
    );
    let vocab = corrupt_vocab(tmp.path());
    let args = common::half_plus_two_serve_args(
        "hp",
        &[
            &format!("--model=vocab={}", vocab.display()),
            "--enable_model_warmup=false",
            &format!("--monitoring_config_file={}", monitoring.display()),
            "--enable_batching",
            &format!("--batching_parameters_file={}", params.display()),
        ],
    );
    let Some(served) = common::spawn_serve_with_tensorflow(&args) else {
        return;
    };
    let (rest, grpc) = (served.rest, served.grpc.expect("gRPC address printed"));
    // The client's connection runs on a worker thread between calls.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let channel = common::grpc_channel(&runtime, grpc);
    let mut client = PredictionServiceClient::new(channel);
    let mut request = hp_request(&[1.0, 2.0]);
    request.model_spec = spec("hp", "");
    let response = runtime
        .block_on(client.predict(request))
        .expect("gRPC predict")
        .into_inner();
    assert_eq!(response.outputs["y"].float_val, vec![3.5, 4.0]);
    let (code, body) = post(rest, "/v1/models/hp:predict", &json!({"instances": [2.0]}));
    assert_eq!((code, body), (200, json!({"predictions": [4.0]})));
    // Warmup is off, so the corrupt warmup file does not stop the model.
    assert_eq!(first_status(rest, "/v1/models/vocab")["state"], "AVAILABLE");
    let m = scrape(rest);
    assert_eq!(
        sample(
            &m,
            ":tensorflow:serving:request_count",
            &[("model_name", "hp"), ("status", "OK")]
        ),
        2.0
    );
    assert_eq!(
        sample(&m, "smtool_batch_requests", &[("model_name", "hp")]),
        2.0
    );
    served.stop("TERM");
}

#[test]
fn binary_rejects_bad_monitoring_and_batching_files() {
    let tmp = common::tempdir();
    let write = |name: &str, text: &str| {
        common::write_file(tmp.path(), name, text)
            .display()
            .to_string()
    };
    let bad_monitoring = write("m.config", "prometheus_config { enable: yes }");
    let bad_path = write(
        "p.config",
        "prometheus_config { enable: true path: \"metrics\" }",
    );
    let bad_batching = write(
        "b.config",
        "max_batch_size { value: 8 } allowed_batch_sizes: 4",
    );
    let monitoring_flag = format!("--monitoring_config_file={bad_monitoring}");
    let path_flag = format!("--monitoring_config_file={bad_path}");
    let batching_flag = format!("--batching_parameters_file={bad_batching}");
    let cases: &[(&[&str], &str)] = &[
        (
            &["serve", "fixtures/half_plus_two", &monitoring_flag],
            "Error parsing text-format tensorflow.serving.MonitoringConfig: ",
        ),
        (
            &["serve", "fixtures/half_plus_two", &path_flag],
            "path 'metrics' must start with '/'",
        ),
        (
            &[
                "serve",
                "fixtures/half_plus_two",
                "--enable_batching",
                &batching_flag,
            ],
            "The last entry in allowed_batch_sizes must match max_batch_size",
        ),
        (
            &["serve", "fixtures/half_plus_two", &batching_flag],
            "add --enable_batching",
        ),
        (
            &[
                "serve",
                "fixtures/half_plus_two",
                "--enable-model-warmup=maybe",
            ],
            "invalid value 'maybe' for '--enable_model_warmup",
        ),
    ];
    for (args, want) in cases {
        common::assert_refused(args, want);
    }
}

#[test]
fn binary_fails_at_once_when_the_grpc_port_is_taken() {
    let (port, err) = common::refused_on_a_taken_port("--port", &["--rest-api-port", "0"]);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port} for gRPC"))
            && err.contains("--port"),
        "{err}"
    );
}

/// A TF2 export's classify and regress signatures each have their own input tensor;
/// MultiInference feeds the request's examples to both, as current TF Serving does.
#[test]
fn multi_inference_feeds_each_signature_of_a_tf2_export() {
    let Some((_dir, export)) = common::python_model("make_two_input_model.py", "two_inputs") else {
        return;
    };
    let Some(s) = server::start_models(vec![model("two", &export)], ServerOptions::default())
    else {
        return;
    };
    let rows = vec![json!({"x": [1.0, 2.0]}), json!({"x": [0.5, -1.0]})];
    let task = |signature: &str, method: &str| sv::InferenceTask {
        model_spec: spec("two", signature),
        method_name: method.to_owned(),
    };
    let mut client = s.prediction();
    let multi = s
        .block_on(client.multi_inference(sv::MultiInferenceRequest {
            tasks: vec![
                task("classify", "tensorflow/serving/classify"),
                task("regress", "tensorflow/serving/regress"),
            ],
            input: Some(iris_examples(&rows)),
        }))
        .expect("multi inference over two input tensors")
        .into_inner();
    assert_eq!(multi.results.len(), 2);
    match &multi.results[0].result {
        Some(sv::inference_result::Result::ClassificationResult(c)) => {
            assert_eq!(c.classifications.len(), 2);
            let first: Vec<(&str, f32)> = c.classifications[0]
                .classes
                .iter()
                .map(|k| (k.label.as_str(), k.score))
                .collect();
            // softmax([1, 2])
            let b = 1.0 / (1.0 + (-1.0f32).exp());
            assert_eq!(first.len(), 2);
            assert_eq!((first[0].0, first[1].0), ("a", "b"));
            assert_close(first[1].1 as f64, b as f64, "score of b");
        }
        other => panic!("expected a classification, got {other:?}"),
    }
    match &multi.results[1].result {
        Some(sv::inference_result::Result::RegressionResult(r)) => {
            let values: Vec<f32> = r.regressions.iter().map(|r| r.value).collect();
            assert_eq!(values, vec![21.0, -9.5]);
        }
        other => panic!("expected a regression, got {other:?}"),
    }
}
