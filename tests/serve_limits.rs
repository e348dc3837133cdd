//! `smtool serve` against hostile requests, one class at a time, over REST and gRPC: each worst
//! value gets a clear error, the server stays up and answers the next good request correctly,
//! and its memory (VmHWM, VmRSS of the server process) stays bounded. The real binary with real
//! libtensorflow; without TensorFlow these tests skip locally and fail in CI.

mod common;

use std::net::SocketAddr;

use serde_json::{json, Value};
use smtool::proto::tensorflow as tfp;
use smtool::proto::tensorflow::serving as sv;
use sv::prediction_service_client::PredictionServiceClient;
use tonic::transport::Channel;

use common::server::float_tensor;

fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    common::http(addr, "POST", path, Some(body))
}

/// The `--max-request-bytes` the server runs with: 1 MiB, so the budget is 2^20 elements and
/// 2^20 bytes of strings per request.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// How much a hostile request may raise the server's peak memory.
const PEAK_GROWTH_LIMIT_KB: u64 = 150 << 10;

/// A running `smtool serve` with a gRPC client.
struct Server {
    served: common::Served,
    runtime: tokio::runtime::Runtime,
    client: PredictionServiceClient<Channel>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.served.child.kill();
        let _ = self.served.child.wait();
    }
}

impl Server {
    fn rest(&self) -> SocketAddr {
        self.served.rest
    }

    /// A line of the server's /proc/PID/status, in kB.
    fn memory_kb(&self, key: &str) -> u64 {
        let pid = self.served.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("the server (pid {pid}) is gone: {e}"));
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
    }

    fn predict(&self, request: sv::PredictRequest) -> Result<sv::PredictResponse, tonic::Status> {
        let mut client = self.client.clone();
        self.runtime
            .block_on(client.predict(request))
            .map(tonic::Response::into_inner)
    }

    fn classify(
        &self,
        request: sv::ClassificationRequest,
    ) -> Result<sv::ClassificationResponse, tonic::Status> {
        let mut client = self.client.clone();
        self.runtime
            .block_on(client.classify(request))
            .map(tonic::Response::into_inner)
    }

    /// The good requests every hostile one is followed by: REST and gRPC predict answer, right.
    fn answers_good_requests(&self, after: &str) {
        let (code, body) = post(
            self.rest(),
            "/v1/models/hp:predict",
            json!({"instances": [1.0, 2.0, 5.0]}).to_string().as_bytes(),
        );
        assert_eq!(
            (code, parse(&body)),
            (200, json!({"predictions": [2.5, 3.0, 4.5]})),
            "REST after {after}"
        );
        let response = self
            .predict(predict_request(
                "hp",
                "x",
                float_tensor(&[2], vec![4.0, 6.0]),
            ))
            .unwrap_or_else(|e| panic!("gRPC after {after}: {e}"));
        assert_eq!(
            response.outputs["y"].float_val,
            vec![4.0, 5.0],
            "gRPC after {after}"
        );
    }
}

/// Starts the binary on the fixtures (and `extra` models) with a 1 MiB request limit.
fn start(extra: &[(&str, &std::path::Path)]) -> Option<Server> {
    let mut args: Vec<String> = common::serve_args(&[])
        .into_iter()
        .map(str::to_owned)
        .collect();
    args.push(format!("--max-request-bytes={MAX_REQUEST_BYTES}"));
    let fixtures = [
        ("hp", common::fixture("half_plus_two/1")),
        ("iris", common::fixture("iris_tf1")),
        ("vl", common::fixture("variable_length")),
        ("vocab", common::fixture("vocab_assets")),
    ];
    for (name, path) in fixtures
        .iter()
        .map(|(n, p)| (*n, p.as_path()))
        .chain(extra.iter().copied())
    {
        args.push(format!("--model={name}={}", path.display()));
    }
    let served = common::spawn_serve_with_tensorflow(&args)?;
    let grpc = served.grpc.expect("the server prints its gRPC address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let channel = common::grpc_channel(&runtime, grpc);
    let client = PredictionServiceClient::new(channel).max_decoding_message_size(1 << 30);
    let server = Server {
        served,
        runtime,
        client,
    };
    server.answers_good_requests("start-up");
    Some(server)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn error_of(body: &str) -> String {
    parse(body)["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
        .to_owned()
}

fn shape(dims: &[i64]) -> Option<tfp::TensorShapeProto> {
    Some(smtool::proto_ext::shape_proto(dims))
}

fn predict_request(model: &str, input: &str, tensor: tfp::TensorProto) -> sv::PredictRequest {
    sv::PredictRequest {
        model_spec: Some(sv::ModelSpec {
            name: model.to_owned(),
            ..Default::default()
        }),
        inputs: [(input.to_owned(), tensor)].into(),
        ..Default::default()
    }
}

/// Asserts a gRPC error's code and that its message contains `needle`.
fn assert_status<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    needle: &str,
) {
    let status = result.expect_err("a hostile request must fail");
    assert_eq!(status.code(), code, "{}", status.message());
    assert!(status.message().contains(needle), "{}", status.message());
    assert!(status.message().len() < 2048, "{}", status.message().len());
}

#[test]
fn hostile_shapes_and_amplifying_bodies_get_errors_and_cost_little() {
    let Some(server) = start(&[]) else { return };
    let peak_before = server.memory_kb("VmHWM");
    let deep = |n: usize, inner: &str| format!("{}{inner}{}", "[".repeat(n), "]".repeat(n));

    // 1. Shapes: a rank above TensorFlow's limit (it aborts inside TensorFlow).
    let (code, body) = post(
        server.rest(),
        "/v1/models/hp:predict",
        format!(r#"{{"inputs": {}}}"#, deep(255, "1")).as_bytes(),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        error_of(&body).contains("255 dimensions; TensorFlow allows at most 254"),
        "{body}"
    );
    server.answers_good_requests("a REST rank of 255");
    let mut rank = float_tensor(&[], vec![1.0]);
    rank.tensor_shape = shape(&[1; 255]);
    assert_status(
        server.predict(predict_request("hp", "x", rank)),
        tonic::Code::InvalidArgument,
        "at most 254",
    );
    server.answers_good_requests("a gRPC rank of 255");

    // A message over --max-request-bytes is turned away by the gRPC transport, with gRPC's
    // code and words (TF Serving's server is gRPC's C core).
    let values = vec![1.0; MAX_REQUEST_BYTES / 4 + 1];
    let oversized = predict_request("hp", "x", float_tensor(&[values.len() as i64], values));
    let bytes = prost::Message::encoded_len(&oversized);
    assert_status(
        server.predict(oversized),
        tonic::Code::ResourceExhausted,
        &format!("Received message larger than max ({bytes} vs. {MAX_REQUEST_BYTES})"),
    );
    server.answers_good_requests("a gRPC message over the limit");

    // Dimensions whose product overflows.
    assert_status(
        server.predict(predict_request(
            "hp",
            "x",
            float_tensor(&[1 << 62, 1 << 62], vec![1.0]),
        )),
        tonic::Code::InvalidArgument,
        "tensor parsing error: x",
    );
    server.answers_good_requests("an overflowing shape");

    // One value broadcast to a huge shape: floats, and strings.
    for dims in [
        vec![1i64 << 40],
        vec![1 << 28],
        vec![MAX_REQUEST_BYTES as i64 + 1],
    ] {
        assert_status(
            server.predict(predict_request("hp", "x", float_tensor(&dims, vec![1.0]))),
            tonic::Code::ResourceExhausted,
            "--max-request-bytes",
        );
        server.answers_good_requests("a broadcast float");
    }
    // Within the element budget, but the repeated floats would take more than B bytes to hold
    // (a request of a few bytes, gigabytes at the default budget).
    assert_status(
        server.predict(predict_request(
            "hp",
            "x",
            float_tensor(&[MAX_REQUEST_BYTES as i64 / 2], vec![1.0]),
        )),
        tonic::Code::ResourceExhausted,
        "repeats its last value into",
    );
    server.answers_good_requests("a broadcast float within the element budget");
    let words = tfp::TensorProto {
        dtype: 7,
        tensor_shape: shape(&[100_000]),
        string_val: vec![vec![b'w'; 100_000]],
        ..Default::default()
    };
    assert_status(
        server.predict(predict_request("vocab", "words", words)),
        tonic::Code::ResourceExhausted,
        "bytes of strings",
    );
    server.answers_good_requests("a broadcast string");
    // A string tensor of a few bytes with no values: each element is an empty string to hold
    // (48 bytes each, in smtool and in TensorFlow), so it is refused long before B of them.
    let empty = tfp::TensorProto {
        dtype: 7,
        tensor_shape: shape(&[MAX_REQUEST_BYTES as i64]),
        ..Default::default()
    };
    assert_status(
        server.predict(predict_request("vocab", "words", empty)),
        tonic::Code::ResourceExhausted,
        "elements repeat the last string given, or an empty one, each costing its length plus 48 bytes to hold",
    );
    server.answers_good_requests("a broadcast of empty strings");

    // No elements at all, but a dimension the model sums into a huge output (row_sum).
    for dims in [[1i64 << 40, 0], [1 << 28, 0]] {
        assert_status(
            server.predict(predict_request("vl", "x", float_tensor(&dims, vec![]))),
            tonic::Code::ResourceExhausted,
            "dimensions of 0 count as 1",
        );
        server.answers_good_requests("a zero-element input");
    }
    // ...while a small zero-element input still runs.
    let response = server
        .predict(predict_request("vl", "x", float_tensor(&[3, 0], vec![])))
        .expect("a small zero-element input runs");
    assert_eq!(response.outputs["row_sum"].float_val, vec![0.0; 3]);

    // 2. Amplification: a context merged into many examples, over gRPC and REST.
    let context = tfp::Example {
        features: Some(tfp::Features {
            feature: [(
                "pad".to_owned(),
                tfp::Feature {
                    kind: Some(tfp::feature::Kind::BytesList(tfp::BytesList {
                        value: vec![vec![b'c'; 500_000]],
                    })),
                },
            )]
            .into(),
        }),
    };
    let request = sv::ClassificationRequest {
        model_spec: Some(sv::ModelSpec {
            name: "iris".to_owned(),
            signature_name: "classify".to_owned(),
            ..Default::default()
        }),
        input: Some(sv::Input {
            kind: Some(sv::input::Kind::ExampleListWithContext(
                sv::ExampleListWithContext {
                    examples: vec![tfp::Example::default(); 10_000],
                    context: Some(context),
                },
            )),
        }),
    };
    assert_status(
        server.classify(request),
        tonic::Code::ResourceExhausted,
        "merged into each of the 10000 examples",
    );
    server.answers_good_requests("a gRPC context for many examples");
    let body = format!(
        r#"{{"signature_name": "classify", "context": {{"pad": "{}"}}, "examples": [{}]}}"#,
        "c".repeat(500_000),
        vec!["{}"; 100_000].join(",")
    );
    let (code, text) = post(server.rest(), "/v1/models/iris:classify", body.as_bytes());
    assert_eq!(code, 429, "{text}");
    assert!(
        error_of(&text).contains("merged into each of the 100000 examples"),
        "{text}"
    );
    server.answers_good_requests("a REST context for many examples");

    // Error messages quoting a deep, wide body (4 bytes of indent per level for every value).
    let body = deep(400, &vec!["0"; 200_000].join(","));
    let (code, text) = post(server.rest(), "/v1/models/hp:predict", body.as_bytes());
    assert_eq!(code, 400, "{}", &text[..text.len().min(500)]);
    assert!(text.len() < 4096, "an error of {} bytes", text.len());
    assert!(error_of(&text).ends_with("... Is not object"), "{text}");
    server.answers_good_requests("a deep body quoted in an error");

    // A long feature list (building it was quadratic): TensorFlow's own answer comes back.
    let body = format!(
        r#"{{"signature_name": "classify", "examples": [{{"x": [{}]}}]}}"#,
        vec!["1.5"; 200_000].join(",")
    );
    let (code, text) = post(server.rest(), "/v1/models/iris:classify", body.as_bytes());
    assert_eq!(code, 400, "{text}");
    assert!(error_of(&text).contains("x"), "{text}");
    server.answers_good_requests("a long feature list");

    // The JSON reader: nesting beyond its depth.
    let (code, text) = post(
        server.rest(),
        "/v1/models/hp:predict",
        "[".repeat(900_000).as_bytes(),
    );
    assert_eq!(code, 400, "{text}");
    assert!(
        error_of(&text).starts_with("JSON Parse error: The document nests"),
        "{text}"
    );
    server.answers_good_requests("a deeply nested body");

    // The costliest body per byte for the JSON tree: tiny nested values, up to the limit.
    let body = format!(
        r#"{{"instances": [{}]}}"#,
        vec!["[0]"; MAX_REQUEST_BYTES / 4 - 8].join(",")
    );
    let (code, text) = post(server.rest(), "/v1/models/vl:predict", body.as_bytes());
    assert_eq!(code, 200, "{}", &text[..text.len().min(500)]);
    server.answers_good_requests("a body of tiny values");

    let growth = server.memory_kb("VmHWM").saturating_sub(peak_before);
    assert!(
        growth < PEAK_GROWTH_LIMIT_KB,
        "the hostile requests raised the server's peak memory by {growth} kB"
    );
}

#[test]
fn outputs_beyond_the_budget_are_refused_not_copied() {
    let Some((_dir, export)) = common::python_model("make_fill_model.py", "fill") else {
        return;
    };
    let Some(server) = start(&[("fill", &export)]) else {
        return;
    };
    let (code, text) = post(
        server.rest(),
        "/v1/models/fill:predict",
        br#"{"inputs": 3}"#,
    );
    assert_eq!(
        (code, parse(&text)),
        (200, json!({"outputs": [1.0, 1.0, 1.0]}))
    );
    let peak_before = server.memory_kb("VmHWM");
    // 2^26 floats: TensorFlow's own 256 MiB tensor, refused before a copy (which would
    // have cost it twice more, and a JSON text three times its size).
    let n = 1 << 26;
    let (code, text) = post(
        server.rest(),
        "/v1/models/fill:predict",
        format!(r#"{{"inputs": {n}}}"#).as_bytes(),
    );
    assert_eq!(code, 429, "{}", &text[..text.len().min(500)]);
    let message = error_of(&text);
    assert!(
        message.contains(&format!("holds {n} elements")),
        "{message}"
    );
    assert!(message.contains("--max-request-bytes"), "{message}");
    server.answers_good_requests("a huge REST output");
    let response = server.predict(predict_request(
        "fill",
        "n",
        tfp::TensorProto {
            dtype: 3,
            tensor_shape: shape(&[]),
            int_val: vec![n],
            ..Default::default()
        },
    ));
    assert_status(
        response,
        tonic::Code::ResourceExhausted,
        "one response may hold",
    );
    server.answers_good_requests("a huge gRPC output");
    let growth = server.memory_kb("VmHWM").saturating_sub(peak_before);
    let tensor_kb = (n as u64 * 4) >> 10;
    assert!(
        growth < tensor_kb + PEAK_GROWTH_LIMIT_KB,
        "a refused output raised the server's peak memory by {growth} kB (TensorFlow's tensor: {tensor_kb} kB)"
    );
    // Just under the budget still answers.
    let (code, text) = post(
        server.rest(),
        "/v1/models/fill:predict",
        format!(r#"{{"inputs": {MAX_REQUEST_BYTES}}}"#).as_bytes(),
    );
    assert_eq!(code, 200, "{}", &text[..text.len().min(500)]);
}

/// The gRPC Unix socket (`--grpc_socket_path`) is held to the limits of the TCP port: clients
/// that never start HTTP/2 are dropped after the header timeout and cannot lock others out
/// beyond the connection bound, and a message over `--max-request-bytes` gets gRPC's
/// RESOURCE_EXHAUSTED on both, as TF Serving's own Python client sees it.
#[cfg(unix)]
#[test]
fn the_grpc_unix_socket_has_the_limits_of_the_tcp_port() {
    let Some((python, venv)) = common::reference_venv() else {
        return;
    };
    if common::tensorflow().is_none() {
        return;
    }
    let dir = common::tempdir();
    let socket = dir.path().join("grpc.sock");
    let args = common::half_plus_two_serve_args(
        "hp",
        &[
            &format!("--grpc_socket_path={}", socket.display()),
            &format!("--max-request-bytes={MAX_REQUEST_BYTES}"),
            "--header-timeout-seconds=1",
            "--idle-timeout-seconds=2",
            "--max-connections=4",
        ],
    );
    let mut served = common::spawn_serve(&args, &venv);
    let grpc = served.grpc.expect("the server prints its gRPC address");
    // More clients than the server takes, each sending part of the HTTP/2 preface, then
    // nothing.
    let slow = common::slow_unix_clients(&socket, 10, b"PRI * HTTP/2.0");
    for target in [format!("unix:{}", socket.display()), grpc.to_string()] {
        let limit = MAX_REQUEST_BYTES.to_string();
        let summary =
            common::serving_client_summary(&python, &target, "hp", &["--oversized", &limit]);
        let oversized = &summary["oversized"];
        assert_eq!(
            oversized["code"], "RESOURCE_EXHAUSTED",
            "{target}: {summary}"
        );
        let details = oversized["details"].as_str().unwrap_or_default();
        let want = format!(
            "Received message larger than max ({} vs. {MAX_REQUEST_BYTES})",
            oversized["bytes"]
        );
        assert!(details.starts_with(&want), "{target}: {details}");
        assert!(
            details.contains("--max-request-bytes"),
            "{target}: {details}"
        );
        assert_eq!(summary["predict"], json!([3.5, 4.0, 5.5]), "{target}");
    }
    for t in slow {
        assert!(
            t.join().expect("slow client"),
            "a client that never started HTTP/2 on the Unix socket was never disconnected"
        );
    }
    let _ = served.child.kill();
    let _ = served.child.wait();
}

#[test]
fn images_claiming_huge_pictures_are_refused_before_a_model_decodes_them() {
    use base64::Engine as _;
    let Some(python) = common::reference_python() else {
        return;
    };
    let tmp = common::tempdir();
    let classify = tmp.path().join("digits-classify");
    common::digits_image_classify(&classify);
    let Some(server) = start(&[("digits", &classify)]) else {
        return;
    };
    let bomb_path = tmp.path().join("bomb.png");
    common::png_bomb(&python, &bomb_path);
    let bomb = std::fs::read(&bomb_path).expect("bomb");
    let five = std::fs::read(common::fixture("digits/images/00_five.png")).expect("image");
    // REST :classify, the image in a tf.Example's bytes feature.
    let classify_image = |image: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(image);
        let body = json!({"signature_name": "classify", "examples": [{"x": {"b64": b64}}]});
        post(
            server.rest(),
            "/v1/models/digits:classify",
            body.to_string().as_bytes(),
        )
    };
    let peak_before = server.memory_kb("VmHWM");
    let refused = "claim 400000000 pixels, 4800000000 bytes once decoded (3 channels of floats); the images of one request may claim at most 16777216 bytes together";

    let (code, body) = classify_image(&bomb);
    assert_eq!(code, 429, "{body}");
    assert!(error_of(&body).contains(refused), "{body}");
    server.answers_good_requests("an image bomb to :classify");

    // The same example serialized, to :predict of the classify signature.
    let example = tfp::Example {
        features: Some(tfp::Features {
            feature: [(
                "x".to_owned(),
                tfp::Feature {
                    kind: Some(tfp::feature::Kind::BytesList(tfp::BytesList {
                        value: vec![bomb.clone()],
                    })),
                },
            )]
            .into(),
        }),
    };
    let mut request = predict_request(
        "digits",
        "inputs",
        tfp::TensorProto {
            dtype: tfp::DataType::DtString as i32,
            tensor_shape: shape(&[1]),
            string_val: vec![prost::Message::encode_to_vec(&example)],
            ..Default::default()
        },
    );
    request.model_spec.as_mut().expect("spec").signature_name = "classify".into();
    assert_status(
        server.predict(request),
        tonic::Code::ResourceExhausted,
        refused,
    );
    server.answers_good_requests("an image bomb in a serialized tf.Example to :predict");

    // A real image passes, and is classified.
    let (code, body) = classify_image(&five);
    assert_eq!(code, 200, "{body}");
    assert_eq!(parse(&body)["results"][0][0][0], "five", "{body}");

    let growth = server.memory_kb("VmHWM").saturating_sub(peak_before);
    assert!(
        growth < PEAK_GROWTH_LIMIT_KB,
        "the image bombs raised the server's peak memory by {growth} kB"
    );
}
