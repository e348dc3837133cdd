//! `smtool serve` end to end: the real server on 127.0.0.1:0 with real libtensorflow (found the
//! way users find it: through the reference Python's tensorflow package or TENSORFLOW_DIR) on the
//! real fixtures, answering TF Serving's REST API. Without TensorFlow these tests skip locally
//! and fail in CI (SMTOOL_REQUIRE_TF=1).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use smtool::serve::config::{ModelConfig, VersionPolicy};
use smtool::serve::http::HttpOptions;
use smtool::serve::limits::Limits;
use smtool::serve::models::LoadRetries;
use smtool::serve::{self as srv, ServerOptions, TransportOptions};

use common::server::{
    self, assert_all_close, assert_close, error_of, first_status, fixture_json, get, parse, post,
    post_ok, Running,
};
use common::{http, signal, tensorflow};

/// Serves `models` with the default options.
fn start_with(models: Vec<ModelConfig>) -> Option<Running> {
    server::start_models(models, ServerOptions::default())
}

/// Serves half_plus_two alone, with `http` for the REST transport.
fn start_hp_with_http(http: HttpOptions) -> Option<Running> {
    let transports = TransportOptions {
        http,
        ..Default::default()
    };
    let models = vec![server::model(
        "half_plus_two",
        &common::fixture("half_plus_two"),
    )];
    server::start(models, None, ServerOptions::default(), transports)
}

/// The usual set: half_plus_two (base path), iris, digits, vocab.
fn start() -> Option<Running> {
    start_with(server::fixture_models())
}

#[test]
fn session_feeds_binary_strings_and_rejects_inconsistent_tensors() {
    use base64::Engine as _;
    use smtool::serve::tensor::{Tensor, Values};
    let Some(tf) = tensorflow() else { return };
    let servable = srv::servable::Servable::load(
        tf,
        "iris",
        1,
        &common::fixture("iris_tf1"),
        &Default::default(),
    )
    .expect("iris loads");
    let sig = &servable.meta_graph.signature_def["classify"];
    let name = |m: &std::collections::BTreeMap<String, smtool::proto::tensorflow::TensorInfo>,
                k: &str| {
        smtool::proto_ext::tensor_name(&m[k])
            .expect("dense")
            .to_owned()
    };
    let rows = &server::iris_rows();
    // Serialized tf.Examples made by TensorFlow: arbitrary bytes, not UTF-8 text.
    let examples: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| {
            base64::engine::general_purpose::STANDARD
                .decode(r["serialized_example_b64"].as_str().expect("b64"))
                .expect("base64")
        })
        .collect();
    assert!(examples.iter().any(|e| std::str::from_utf8(e).is_err()));
    let input = Tensor::new(vec![examples.len() as i64], Values::String(examples)).expect("tensor");
    let (classes, scores) = (name(&sig.outputs, "classes"), name(&sig.outputs, "scores"));
    let out = servable
        .session
        .run(
            &[(&name(&sig.inputs, "inputs"), &input)],
            &[&classes, &scores],
            Limits::default(),
        )
        .expect("run");
    assert_eq!(out[0].dims, vec![rows.len() as i64, 3]);
    let Values::String(labels) = &out[0].values else {
        panic!("classes are strings")
    };
    let Values::Float(values) = &out[1].values else {
        panic!("scores are floats")
    };
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            labels[i * 3],
            row["classes"][0].as_str().expect("label").as_bytes()
        );
        assert_close(
            values[i * 3] as f64,
            row["scores"][0].as_f64().expect("score"),
            "score",
        );
    }
    // A tensor whose dims do not match its values never reaches TensorFlow.
    let bad = Tensor {
        dims: vec![5],
        values: Values::String(vec![b"x".to_vec()]),
    };
    let err = servable
        .session
        .run(
            &[(&name(&sig.inputs, "inputs"), &bad)],
            &[&classes],
            Limits::default(),
        )
        .unwrap_err();
    assert!(err.message.contains("cannot hold 1 values"), "{err}");
    // Outputs beyond the response budget are refused, not copied.
    let err = servable
        .session
        .run(
            &[(&name(&sig.inputs, "inputs"), &input)],
            &[&classes, &scores],
            Limits::from_request_bytes(rows.len() * 3 + 1),
        )
        .unwrap_err();
    assert_eq!(
        err.code,
        smtool::serve::error::Code::ResourceExhausted,
        "RESOURCE_EXHAUSTED: {err}"
    );
    assert!(err.message.starts_with("output '"), "{err}");
    let err = servable
        .session
        .run(&[], &["no_such_node:0"], Limits::default())
        .unwrap_err();
    assert!(err.message.contains("no_such_node:0"), "{err}");
}

#[test]
fn status_reports_the_latest_version_available() {
    let Some(s) = start() else { return };
    let (code, body) = get(s.rest, "/v1/models/half_plus_two");
    assert_eq!(code, 200);
    assert_eq!(
        body,
        json!({"model_version_status": [{"version": "2", "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]})
    );
    let v2 = first_status(s.rest, "/v1/models/half_plus_two/versions/2");
    assert_eq!(v2["version"], "2");
    // A SavedModel directory given directly is version 1.
    assert_eq!(first_status(s.rest, "/v1/models/iris")["version"], "1");
}

#[test]
fn status_errors_match_tf_serving() {
    let Some(s) = start() else { return };
    let cases = [
        (
            "/v1/models/half_plus_two/versions/1",
            404,
            "Could not find version 1 of model half_plus_two",
        ),
        (
            "/v1/models/nope",
            404,
            "Could not find any versions of model nope",
        ),
        ("/v1/models", 400, "Missing model name in request."),
        (
            "/v1/models/half_plus_two/labels/stable",
            400,
            "Unrecognized servable version label: stable",
        ),
        (
            "/v1/models/half_plus_two/versions/99999999999999999999",
            400,
            "Failed to convert version: 99999999999999999999 to numeric.",
        ),
        ("/v1/nothing", 400, "Malformed request: GET /v1/nothing"),
    ];
    for (path, want_code, want) in cases {
        let (code, body) = get(s.rest, path);
        assert_eq!((code, error_of(&body)), (want_code, want), "{path}");
    }
    // Only /v1/ (and the health paths) are served: anything else is a bare 404.
    let (code, body) = http(s.rest, "GET", "/status", None);
    assert_eq!((code, body.as_str()), (404, ""));
    let (code, body) = http(s.rest, "GET", "/healthz", None);
    assert_eq!((code, body.as_str()), (200, r#"{"status":"live"}"#));
}

#[test]
fn metadata_describes_signatures_like_tf_serving() {
    let Some(s) = start() else { return };
    let (code, body) = get(s.rest, "/v1/models/digits/metadata");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["model_spec"],
        json!({"name": "digits", "signature_name": "", "version": "1"})
    );
    let sig = &body["metadata"]["signature_def"]["signature_def"]["serving_default"];
    assert_eq!(sig["method_name"], "tensorflow/serving/predict");
    let x = &sig["inputs"]["x"];
    assert_eq!(x["dtype"], "DT_FLOAT");
    assert_eq!(x["tensor_shape"]["unknown_rank"], false);
    let sizes: Vec<&str> = x["tensor_shape"]["dim"]
        .as_array()
        .expect("dims")
        .iter()
        .map(|d| d["size"].as_str().expect("int64 sizes are strings"))
        .collect();
    assert_eq!(sizes, ["-1", "28", "28", "1"]);
    assert!(x["name"].as_str().is_some_and(|n| n.ends_with(":0")));
    assert_eq!(sig["outputs"]["output_0"]["dtype"], "DT_FLOAT");
    let iris = get(s.rest, "/v1/models/iris/versions/1/metadata").1;
    let classify = &iris["metadata"]["signature_def"]["signature_def"]["classify"];
    assert_eq!(classify["method_name"], "tensorflow/serving/classify");
    assert_eq!(classify["inputs"]["inputs"]["dtype"], "DT_STRING");
    let (code, body) = get(s.rest, "/v1/models/nope/metadata");
    assert_eq!(
        (code, error_of(&body)),
        (404, "Servable not found for request: Latest(nope)")
    );
}

#[test]
fn predict_row_and_columnar_formats() {
    let Some(s) = start() else { return };
    // Version 2 computes 0.5 * x + 3.
    let cases = [
        (
            "/v1/models/half_plus_two:predict",
            json!({"instances": [1.0, 2.0, 5.0]}),
            json!({"predictions": [3.5, 4.0, 5.5]}),
        ),
        (
            "/v1/models/half_plus_two/versions/2:predict",
            json!({"signature_name": "serving_default", "inputs": [1, 3]}),
            json!({"outputs": [3.5, 4.5]}),
        ),
        (
            "/v1/models/half_plus_two:predict",
            json!({"inputs": {"x": [0.25]}}),
            json!({"outputs": [3.125]}),
        ),
    ];
    for (path, request, answer) in cases {
        assert_eq!(post(s.rest, path, &request), (200, answer), "{request}");
    }
}

#[test]
fn predict_writes_nan_and_infinity_tokens_and_shortest_floats() {
    let Some(s) = start() else { return };
    let (code, text) = http(
        s.rest,
        "POST",
        "/v1/models/half_plus_two:predict",
        Some(br#"{"instances": [NaN, Infinity, -Infinity, 0.1]}"#),
    );
    assert_eq!(code, 200, "{text}");
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    // 0.5 * 0.1f32 + 3 = 3.05f32, printed as the shortest float32 text.
    assert_eq!(compact, r#"{"predictions":[NaN,Infinity,-Infinity,3.05]}"#);
}

fn png_instance(path: &Path) -> Value {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("png"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    assert_eq!(
        (info.width, info.height, info.color_type),
        (28, 28, png::ColorType::Grayscale)
    );
    let rows: Vec<Value> = buf[..info.buffer_size()]
        .chunks(28)
        .map(|row| Value::Array(row.iter().map(|&p| json!([p as f32 / 255.0])).collect()))
        .collect();
    Value::Array(rows)
}

#[test]
fn predict_digits_matches_tensorflow() {
    let Some(s) = start() else { return };
    let expected = fixture_json("digits/expected.json");
    let images: Vec<&Value> = expected["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter(|i| i["file"].as_str().is_some_and(|f| f.ends_with(".png")))
        .collect();
    assert!(images.len() >= 10);
    let instances: Vec<Value> = images
        .iter()
        .map(|i| {
            png_instance(&common::fixture("digits/images").join(i["file"].as_str().expect("file")))
        })
        .collect();
    let body = post_ok(
        s.rest,
        "/v1/models/digits:predict",
        &json!({"instances": instances}),
    );
    // One row of 10 per image, each TensorFlow's probabilities for it.
    let want: Vec<&Value> = images.iter().map(|i| &i["probabilities"]).collect();
    assert_all_close(&body["predictions"], &json!(want), "probabilities");
    for p in body["predictions"].as_array().expect("predictions") {
        assert_eq!(p.as_array().map(Vec::len), Some(10), "a row of 10: {p}");
    }
    // The same batch in columnar form, and as a bare columnar value, gives the same numbers.
    for request in [
        json!({"inputs": {"x": instances}}),
        json!({"inputs": instances}),
    ] {
        let columnar = post_ok(s.rest, "/v1/models/digits:predict", &request);
        assert_eq!(columnar["outputs"], body["predictions"]);
    }
    // So does a body with whitespace and a signature name (read without a JSON tree).
    let text = serde_json::to_string_pretty(
        &json!({"signature_name": "serving_default", "instances": instances}),
    )
    .expect("json");
    let (code, pretty) = http(
        s.rest,
        "POST",
        "/v1/models/digits:predict",
        Some(text.as_bytes()),
    );
    assert_eq!(code, 200, "{pretty}");
    assert_eq!(parse(&pretty)["predictions"], body["predictions"]);
}

#[test]
fn classify_regress_and_predict_iris_match_tensorflow() {
    let Some(s) = start() else { return };
    let rows = &server::iris_rows();
    let examples: Vec<Value> = rows.iter().map(|r| json!({"x": r["x"]})).collect();
    let body = post_ok(
        s.rest,
        "/v1/models/iris:classify",
        &json!({"examples": examples}),
    );
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), rows.len());
    for (result, row) in results.iter().zip(rows) {
        let pairs = result.as_array().expect("pairs");
        for (k, pair) in pairs.iter().enumerate() {
            assert_eq!(pair[0], row["classes"][k]);
            assert_close(
                pair[1].as_f64().expect("score"),
                row["scores"][k].as_f64().expect("score"),
                "score",
            );
        }
    }
    let column = |key: &str, k: Option<usize>| -> Value {
        rows.iter()
            .map(|r| k.map_or(&r[key], |k| &r[key][k]).clone())
            .collect()
    };
    let body = post_ok(
        s.rest,
        "/v1/models/iris:regress",
        &json!({"signature_name": "regress", "examples": examples}),
    );
    assert_all_close(
        &body["results"],
        &column("regress_outputs", Some(0)),
        "regress",
    );
    let body = post_ok(
        s.rest,
        "/v1/models/iris:predict",
        &json!({"signature_name": "predict", "instances": column("x", None)}),
    );
    assert_all_close(
        &body["predictions"],
        &column("probabilities", None),
        "probability",
    );
}

#[test]
fn classify_with_scores_only_gives_empty_labels() {
    let rows = json!([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]]);
    let Some((_dir, export, stdout)) = common::python_model_with(
        "make_scores_only_model.py",
        "scores_only",
        &[&rows.to_string()],
    ) else {
        return;
    };
    let want: Value = parse(stdout.lines().last().expect("scores line"));
    let Some(s) = start_with(vec![server::model("so", &export)]) else {
        return;
    };
    let examples: Vec<Value> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| json!({"x": r}))
        .collect();
    let body = post_ok(
        s.rest,
        "/v1/models/so:classify",
        &json!({"examples": examples}),
    );
    for (i, result) in body["results"]
        .as_array()
        .expect("results")
        .iter()
        .enumerate()
    {
        for (k, pair) in result.as_array().expect("pairs").iter().enumerate() {
            assert_eq!(pair[0], "");
            assert_close(
                pair[1].as_f64().expect("score"),
                want[i][k].as_f64().expect("score"),
                "score",
            );
        }
    }
}

#[test]
fn binary_strings_round_trip_through_tensorflow_as_b64() {
    use base64::Engine as _;
    let Some((_dir, export)) = common::python_model("make_bytes_echo_model.py", "echo") else {
        return;
    };
    let Some(s) = start_with(vec![server::model("echo", &export)]) else {
        return;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    // Every byte value, and a string longer than TF_TString's inline storage.
    let all: Vec<u8> = (0..=255u8).collect();
    let (a, b) = (b64.encode(&all), b64.encode([0xffu8, 0x00, 0xfe]));
    let body = post_ok(
        s.rest,
        "/v1/models/echo:predict",
        &json!({"instances": [{"data": {"b64": a}}, {"data": {"b64": b}}]}),
    );
    assert_eq!(
        body,
        json!({"predictions": [
            {"length": 256, "out_bytes": {"b64": a}},
            {"length": 3, "out_bytes": {"b64": b}},
        ]})
    );
    let body = post_ok(
        s.rest,
        "/v1/models/echo:predict",
        &json!({"inputs": {"data": [{"b64": b}, "text"]}}),
    );
    assert_eq!(
        body,
        json!({"outputs": {"length": [3, 4], "out_bytes": [{"b64": b}, {"b64": "dGV4dA=="}]}})
    );
}

#[test]
fn classify_with_context_merges_it_into_each_example() {
    let Some(s) = start() else { return };
    let rows = server::iris_rows();
    let row = &rows[0];
    let (_, plain) = post(
        s.rest,
        "/v1/models/iris:classify",
        &json!({"examples": [{"x": row["x"]}]}),
    );
    let with_context = post_ok(
        s.rest,
        "/v1/models/iris:classify",
        &json!({"context": {"x": row["x"]}, "examples": [{}, {}]}),
    );
    assert_eq!(with_context["results"][0], plain["results"][0]);
    assert_eq!(with_context["results"][1], plain["results"][0]);
}

#[test]
fn predict_feeds_strings_and_b64_binary_strings() {
    let Some(s) = start() else { return };
    let vocab =
        std::fs::read_to_string(common::fixture("vocab_assets/assets/vocab.txt")).expect("vocab");
    let words: Vec<&str> = vocab.lines().collect();
    let body = post_ok(
        s.rest,
        "/v1/models/vocab:predict",
        &json!({"instances": [words[0], {"b64": "cXVpY2s="}, "not-a-word", words[words.len() - 1]]}),
    );
    assert_eq!(body, json!({"predictions": [0, 1, -1, words.len() - 1]}));
    assert_eq!(words[1], "quick");
}

#[test]
fn request_errors_match_tf_serving() {
    let Some(s) = start() else { return };
    let hp = "/v1/models/half_plus_two:predict";
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (hp, "{\"instances\": [1,".into(), 400, "JSON Parse error: Invalid value. at offset: 17"),
        (hp, String::new(), 400, "JSON Parse error: The document is empty"),
        (hp, "{}".into(), 400, "Missing 'inputs' or 'instances' key"),
        ("/v1/models/nope:predict", "{}".into(), 404, "Servable not found for request: Latest(nope)"),
        ("/v1/models/half_plus_two/versions/7:predict", "{}".into(), 404, "Servable not found for request: Specific(half_plus_two, 7)"),
        ("/v1/models/half_plus_two/labels/canary:predict", "{}".into(), 400, "Unrecognized servable version label: canary"),
        (hp, r#"{"signature_name": "nope", "instances": [1]}"#.into(), 400, "Serving signature name: \"nope\" not found in signature def"),
        (hp, r#"{"instances": ["a"]}"#.into(), 400, "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: \"a\" Type: String is not of expected type: float"),
        ("/v1/models/vocab:predict", r#"{"inputs": [{"b64": "%%%"}]}"#.into(), 400, "Unable to base64 decode"),
        ("/v1/models/vocab:predict", r#"{"inputs": [{"b64": 1}]}"#.into(), 400, "JSON Value: {\n    \"b64\": 1\n} not formatted correctly for base64 data"),
        ("/v1/models/iris:classify", r#"{"signature_name": "nope", "examples": [{}]}"#.into(), 400, "No signature was found with the name: nope"),
        ("/v1/models/iris:regress", r#"{"signature_name": "nope", "examples": [{}]}"#.into(), 400, "No signature was found with the name: nope"),
        ("/v1/models/iris:classify", r#"{"examples": [{"x": [1, 2.5]}]}"#.into(), 400, "Unexpected element type in feature: x expecting type: int64"),
        ("/v1/models/iris:classify", r#"{"examples": [{"x": null}]}"#.into(), 400, "Feature: x has element with unexpected JSON type: Null"),
        ("/v1/models/iris:classify", r#"{"examples": [1]}"#.into(), 400, "Example must be JSON object but got JSON Number"),
        ("/v1/models/half_plus_two:classify", r#"{"examples": [{}]}"#.into(), 400, "No classification inputs found in SignatureDef: serving_default"),
        ("/v1/models/iris:predict", r#"{"signature_name": "predict", "instances": [[1, 2]]}"#.into(), 400, ""),
    ];
    for (path, body, want_code, want) in cases {
        let (code, text) = http(s.rest, "POST", path, Some(body.as_bytes()));
        let v = parse(&text);
        assert_eq!(code, want_code, "{path} {body}: {text}");
        if want.is_empty() {
            // TensorFlow's own message (shape mismatch), passed through.
            assert!(!error_of(&v).is_empty());
        } else {
            assert!(
                error_of(&v).ends_with(want),
                "{path} {body}: {}",
                error_of(&v)
            );
        }
    }
    let (code, body) = post(
        s.rest,
        "/v1/models/iris:classify",
        &json!({"instances": [1]}),
    );
    assert_eq!(code, 400);
    assert!(error_of(&body)
        .ends_with("When method is classify, key 'examples' is expected and was not found"));
    let (code, text) = http(s.rest, "GET", "/v1/models/half_plus_two:predict", None);
    assert_eq!(
        (code, error_of(&parse(&text))),
        (
            400,
            "Malformed request: GET /v1/models/half_plus_two:predict"
        )
    );
    let (code, text) = http(s.rest, "POST", "/v1/models/half_plus_two", Some(b"{}"));
    assert_eq!(
        (code, error_of(&parse(&text))),
        (400, "Malformed request: POST /v1/models/half_plus_two")
    );
    // The server is still fine after all that.
    let (code, _) = post(s.rest, hp, &json!({"instances": [1.0]}));
    assert_eq!(code, 200);
}

#[test]
fn bodies_over_the_limit_get_413() {
    let Some(s) = start_hp_with_http(HttpOptions {
        max_body_bytes: 1024,
        ..Default::default()
    }) else {
        return;
    };
    let big = json!({"instances": vec![1.0; 1000]}).to_string();
    let (code, text) = http(
        s.rest,
        "POST",
        "/v1/models/half_plus_two:predict",
        Some(big.as_bytes()),
    );
    assert_eq!(code, 413);
    assert!(error_of(&parse(&text)).contains("1024 bytes"), "{text}");
    let (code, _) = post(
        s.rest,
        "/v1/models/half_plus_two:predict",
        &json!({"instances": [1.0]}),
    );
    assert_eq!(code, 200);
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("models.config");
    std::fs::write(&path, body).expect("write config");
    path
}

#[test]
fn config_file_version_policy_and_labels() {
    let dir = common::tempdir();
    let base = common::fixture("half_plus_two");
    let config = write_config(
        dir.path(),
        &format!(
            r#"model_config_list {{
  config {{
    name: "hp"
    base_path: "{}"
    model_platform: "tensorflow"
    model_version_policy {{ all {{}} }}
    version_labels {{ key: "stable" value: 1 }}
    version_labels {{ key: "canary" value: 2 }}
  }}
  config {{
    name: "hp_one"
    base_path: "{}"
    model_version_policy {{ specific {{ versions: 1 }} }}
  }}
}}"#,
            base.display(),
            base.display()
        ),
    );
    let models = srv::config::models_from_config_file(&config).expect("config parses");
    assert_eq!(models[0].policy, VersionPolicy::All);
    let Some(s) = start_with(models) else {
        return;
    };
    let (_, status) = get(s.rest, "/v1/models/hp");
    let versions: Vec<&str> = status["model_version_status"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|v| v["version"].as_str().expect("version"))
        .collect();
    assert_eq!(versions, ["2", "1"]);
    // Version 1 computes 0.5 * x + 2, version 2 0.5 * x + 3.
    for (path, y) in [
        ("/v1/models/hp/labels/stable:predict", 2.5),
        ("/v1/models/hp/labels/canary:predict", 3.5),
        ("/v1/models/hp/versions/1:predict", 2.5),
        ("/v1/models/hp:predict", 3.5),
        ("/v1/models/hp_one:predict", 2.5),
    ] {
        assert_eq!(
            post(s.rest, path, &json!({"instances": [1.0]})),
            (200, json!({"predictions": [y]})),
            "{path}"
        );
    }
    let stable = first_status(s.rest, "/v1/models/hp/labels/stable");
    assert_eq!(stable["version"], "1");
}

#[test]
fn config_file_errors_name_the_file() {
    let dir = common::tempdir();
    let bad = write_config(dir.path(), "model_config_list { config { name: \"x\" ");
    let err = format!(
        "{:#}",
        srv::config::models_from_config_file(&bad).unwrap_err()
    );
    assert!(
        err.contains("models.config") && err.contains("ModelServerConfig"),
        "{err}"
    );
    let no_base = write_config(dir.path(), "model_config_list { config { name: \"x\" } }");
    let err = format!(
        "{:#}",
        srv::config::models_from_config_file(&no_base).unwrap_err()
    );
    assert!(err.contains("model 'x' has no base_path"), "{err}");
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_base_path_that_briefly_cannot_be_read_unloads_nothing() {
    let dir = common::tempdir();
    let Some((base, s)) = serve_hp_v1(dir.path(), ServerOptions::default()) else {
        return;
    };
    let traffic = Traffic::start(s.rest, "hp", 2, &[2.5]);
    let moved = dir.path().join("hp-moved");
    std::fs::rename(&base, &moved).expect("move base path away");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(version_states(s.rest, "hp"), states(&[("1", "AVAILABLE")]));
    std::fs::rename(&moved, &base).expect("move base path back");
    let answered = traffic.stop();
    assert!(answered.iter().all(|&n| n > 0), "{answered:?}");
}

#[test]
fn a_version_that_fails_to_load_shows_its_error_and_others_keep_serving() {
    let dir = common::tempdir();
    let base = hp_v1(dir.path());
    common::copy_dir(&common::fixture("broken/truncated"), &base.join("2"));
    let hp = all_versions_of_hp(&base);
    let Some(s) = start_with(vec![hp]) else {
        return;
    };
    let v2 = first_status(s.rest, "/v1/models/hp/versions/2");
    assert_eq!(v2["state"], "END");
    assert_ne!(v2["status"]["error_code"], "OK");
    assert!(
        !v2["status"]["error_message"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{v2}"
    );
    let (code, body) = post(
        s.rest,
        "/v1/models/hp:predict",
        &json!({"instances": [1.0]}),
    );
    assert_eq!((code, body), (200, json!({"predictions": [2.5]})));
}

#[test]
fn concurrent_requests_all_succeed() {
    let Some(s) = start() else { return };
    let addr = s.rest;
    let threads: Vec<_> = (0..16)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..10 {
                    let x = (t * 10 + i) as f64;
                    let (code, body) = post(
                        addr,
                        "/v1/models/half_plus_two:predict",
                        &json!({"instances": [x]}),
                    );
                    assert_eq!((code, body), (200, json!({"predictions": [0.5 * x + 3.0]})));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

#[test]
fn classic_requests_client_classifies() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let Some(s) = start() else { return };
    let rows = server::iris_rows();
    let row = &rows[0];
    let features: Vec<String> = row["x"]
        .as_array()
        .expect("x")
        .iter()
        .map(|v| v.to_string())
        .collect();
    let feature = format!("x={}", features.join(","));
    let results = classic_client(&python, &s, "iris", &["--float-feature", &feature]);
    let top = &results["results"][0][0];
    assert_eq!(top[0], row["classes"][0]);
    assert_close(
        top[1].as_f64().expect("score"),
        row["scores"][0].as_f64().expect("score"),
        "score",
    );
}

/// The classic requests client (python/check_classic_client.py) asking `model` on the server
/// `s`, with `extra` arguments; returns the JSON it prints.
fn classic_client(python: &Path, s: &Running, model: &str, extra: &[&str]) -> Value {
    let url = format!("http://{}", s.rest);
    let mut args = vec!["--url", &url, "--model", model];
    args.extend_from_slice(extra);
    common::run_python_json(python, "check_classic_client.py", &args)
}

#[test]
fn binary_accepts_tf_serving_flags_stays_quiet_and_shuts_down_gracefully() {
    let args = common::half_plus_two_serve_args(
        "hp",
        &[
            "--tensorflow_intra_op_parallelism=1",
            "--tensorflow_inter_op_parallelism=-1",
        ],
    );
    let Some(served) = common::spawn_serve_with_tensorflow(&args) else {
        return;
    };
    let (code, body) = predict_hp(served.rest);
    assert_eq!((code, body), (200, json!({"predictions": [3.5]})));
    let stderr = served.stop("TERM");
    assert!(stderr.contains("TensorFlow 2.21.0"), "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    // TensorFlow's start-up noise stays hidden by default, and requests are not logged.
    for noise in [
        "cuda",
        "absl::InitializeLog",
        "Reading SavedModel",
        "POST /v1",
    ] {
        assert!(!stderr.contains(noise), "'{noise}' on stderr:\n{stderr}");
    }
}

#[test]
fn binary_verbose_logs_one_line_per_request() {
    let Some(served) = common::spawn_serve_with_tensorflow(&[
        "serve",
        "fixtures/iris_tf1",
        "--model-name",
        "iris",
        "--rest-api-port",
        "0",
        "--port",
        "0",
        "-v",
    ]) else {
        return;
    };
    let (code, _) = post(
        served.rest,
        "/v1/models/iris:classify",
        &json!({"examples": [{"x": [5.1, 3.5, 1.4, 0.2]}]}),
    );
    assert_eq!(code, 200);
    let (code, _) = get(served.rest, "/v1/models/nope");
    assert_eq!(code, 404);
    let stderr = served.stop("INT");
    assert!(
        stderr.contains("POST /v1/models/iris:classify 200"),
        "{stderr}"
    );
    assert!(stderr.contains("GET /v1/models/nope 404"), "{stderr}");
}

#[test]
fn binary_fails_at_once_when_the_port_is_taken() {
    let (port, err) = common::refused_on_a_taken_port("--rest-api-port", &[]);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("--rest_api_port"), "{err}");
}

#[test]
fn binary_without_tensorflow_says_what_to_do() {
    let empty = common::tempdir();
    let mut cmd = common::smtool();
    cmd.args(["serve", "fixtures/half_plus_two", "--no-fetch"])
        .args(common::FREE_PORTS)
        .env_remove("VIRTUAL_ENV")
        .env_remove("TENSORFLOW_DIR")
        .env("PATH", empty.path())
        .env("XDG_CACHE_HOME", empty.path());
    let err = common::refused_by(cmd);
    assert!(
        err.starts_with("smtool: error: no TensorFlow found"),
        "{err}"
    );
    assert!(
        err.contains("--tensorflow-dir") && err.contains("TENSORFLOW_DIR"),
        "{err}"
    );

    // Free ports, so that the missing library is what stops it whatever holds TF Serving's.
    let mut args = vec!["serve", "fixtures/half_plus_two"];
    args.extend_from_slice(common::FREE_PORTS);
    args.extend(["--tensorflow-dir", "fixtures"]);
    let err = common::refused(&args);
    assert!(
        err.contains("--tensorflow-dir 'fixtures' has no libtensorflow.so"),
        "{err}"
    );
}

/// `tensorflow_model_server --version`'s two lines, the library being the TensorFlow serve
/// would load.
#[test]
fn binary_version_names_the_server_and_the_tensorflow_library() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let out = common::smtool()
        .args(["serve", "--version"])
        .env("VIRTUAL_ENV", common::venv_of(&python))
        .env_remove("TENSORFLOW_DIR")
        .output()
        .expect("run smtool");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("TensorFlow ModelServer: smtool "),
        "{text}"
    );
    assert_eq!(lines[1], "TensorFlow Library: 2.21.0", "{text}");
}

/// A flag accepted without effect says so in one line naming it; one that needs what this
/// build cannot have stops the server before anything is loaded.
#[test]
fn binary_warns_about_flags_without_effect_and_refuses_impossible_ones() {
    let empty = common::tempdir();
    let empty_dir = empty.path().to_string_lossy().into_owned();
    // No TensorFlow anywhere: the warning comes before the search for it fails.
    let err = common::refused(&[
        "serve",
        "fixtures/half_plus_two",
        "--flush_filesystem_caches=false",
        "--no-fetch",
        "--rest_api_port=0",
        "--port=0",
        "--tensorflow-dir",
        &empty_dir,
    ]);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("smtool serve: warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("--flush_filesystem_caches has no effect"),
        "{err}"
    );
    let err = common::refused(&["serve", "fixtures/half_plus_two", "--prefer_tflite_model"]);
    assert!(
        err.starts_with("smtool: error: --prefer_tflite_model: TensorFlow Lite is not part"),
        "{err}"
    );
}

#[test]
fn binary_rejects_bad_model_arguments() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["serve", "--model", "nopath"],
            "--model 'nopath' is not NAME=PATH",
        ),
        (
            &[
                "serve",
                "fixtures/half_plus_two",
                "--model",
                "half_plus_two=fixtures/iris_tf1",
            ],
            "model name 'half_plus_two' is used twice",
        ),
        (&["serve", "fixtures/does_not_exist"], "does_not_exist"),
        (&["serve"], "no model to serve"),
    ];
    for (args, want) in cases {
        common::assert_refused(args, want);
    }
}

/// The classic flow end to end: add-classify --make-default on the Keras digits export, then the
/// unchanged TF Serving client POSTs each real test image as `{"x": {"b64": ...}}` to `:classify`
/// with signature `serving_default` and gets `{"results": [[[label, score], ...]]}`, sorted.
#[test]
fn classic_client_classifies_encoded_images_of_an_add_classify_model() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let dir = common::tempdir();
    let dst = dir.path().join("digits").join("1");
    let dst_arg = dst.to_string_lossy().into_owned();
    let mut args = vec!["add-classify"];
    args.extend_from_slice(common::DIGITS_IMAGE_CLASSIFY);
    args.extend(["--make-default", "--out", &dst_arg]);
    let out = common::run(&args);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let config = srv::config::model_from_path("digits", &dir.path().join("digits")).expect("model");
    let Some(s) = start_with(vec![config]) else {
        return;
    };
    let truth =
        std::fs::read_to_string(common::fixture("digits/images/labels.csv")).expect("labels.csv");
    let mut correct = 0;
    let mut total = 0;
    for line in truth.lines().skip(1) {
        let Some((file, label)) = line.split_once(',') else {
            continue;
        };
        let image = common::fixture("digits/images").join(file);
        let image = image.to_string_lossy();
        let results = classic_client(
            &python,
            &s,
            "digits",
            &["--image", &image, "--feature", "x"],
        );
        let pairs = results["results"][0].as_array().expect("one result");
        assert_eq!(pairs.len(), 10, "every class, sorted");
        let scores: Vec<f64> = pairs.iter().filter_map(|p| p[1].as_f64()).collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "{file}: {scores:?}"
        );
        total += 1;
        if pairs[0][0] == label.trim() {
            correct += 1;
        }
    }
    assert!(total >= 10, "the fixture has real test images");
    assert!(
        correct * 10 >= total * 9,
        "{correct} of {total} images labelled correctly"
    );
}

/// The models of `python/make_stateful_models.py`, in a directory of their own (kept while the
/// returned one lives): `queue` and `spin`. `None` (skip) without TensorFlow.
fn stateful_models() -> Option<(tempfile::TempDir, PathBuf)> {
    common::python_model("make_stateful_models.py", "stateful")
}

#[test]
fn fed_strings_stay_valid_while_tensorflow_keeps_them() {
    use smtool::serve::tensor::{Tensor, Values};
    let Some((_dir, models)) = stateful_models() else {
        return;
    };
    let Some(tf) = tensorflow() else { return };
    let servable =
        srv::servable::Servable::load(tf, "queue", 1, &models.join("queue"), &Default::default())
            .expect("queue model loads");
    let tensor = |sig: &str, outputs: bool, key: &str| {
        let sig = &servable.meta_graph.signature_def[sig];
        let map = if outputs { &sig.outputs } else { &sig.inputs };
        smtool::proto_ext::tensor_name(&map[key])
            .expect("dense")
            .to_owned()
    };
    let (x_name, size_name) = (tensor("push", false, "x"), tensor("push", true, "size"));
    let (n_name, y_name) = (tensor("pop", false, "n"), tensor("pop", true, "y"));
    // Longer than TF_TString's inline storage, so each string has its own heap buffer.
    let pushed: Vec<Vec<Vec<u8>>> = (0..8u8)
        .map(|k| {
            (0..3u8)
                .map(|i| vec![b'a' + k + i; 100 + i as usize])
                .collect()
        })
        .collect();
    for strings in &pushed {
        let x = Tensor::new(vec![strings.len() as i64], Values::String(strings.clone()))
            .expect("tensor");
        servable
            .session
            .run(&[(&x_name, &x)], &[&size_name], Limits::default())
            .expect("push");
    }
    // The queue kept the fed tensors after their runs ended: their strings must still be
    // there, byte for byte, whatever was allocated and freed in between.
    let junk: Vec<Vec<u8>> = (0..64).map(|i| vec![0xEE; 100 + i % 3]).collect();
    drop(junk);
    let n = Tensor::new(vec![], Values::Int32(vec![0])).expect("tensor");
    for strings in &pushed {
        let out = servable
            .session
            .run(&[(&n_name, &n)], &[&y_name], Limits::default())
            .expect("pop");
        assert_eq!(out[0].values, Values::String(strings.clone()));
    }
}

// Version transitions: availability-preserving swaps, copies in progress, load retries, and
// files TensorFlow must not be handed.

/// Predicts `x = 1` on the model `hp`.
fn predict_hp(addr: SocketAddr) -> (u16, Value) {
    post(addr, "/v1/models/hp:predict", &json!({"instances": [1.0]}))
}

/// `(version, state)` of each version in the status endpoint, highest first.
fn version_states(addr: SocketAddr, name: &str) -> Vec<(String, String)> {
    let (code, body) = get(addr, &format!("/v1/models/{name}"));
    assert_eq!(code, 200, "{body}");
    body["model_version_status"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|v| {
            let field = |f: &str| v[f].as_str().expect("status field").to_owned();
            (field("version"), field("state"))
        })
        .collect()
}

/// The status of one version (null while the server does not know the version).
fn version_status(addr: SocketAddr, name: &str, version: i64) -> Value {
    let (_, body) = get(addr, &format!("/v1/models/{name}/versions/{version}"));
    body["model_version_status"][0].clone()
}

fn states(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(v, s)| (v.to_string(), s.to_string()))
        .collect()
}

/// Steady traffic on a model: client threads predicting `x = 1` until stopped. Every answer
/// must be 200 with one of `allowed`; a failed request panics its thread.
struct Traffic {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    clients: Vec<std::thread::JoinHandle<usize>>,
}

impl Traffic {
    fn start(addr: SocketAddr, name: &str, clients: usize, allowed: &'static [f64]) -> Self {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients = (0..clients)
            .map(|_| {
                let done = done.clone();
                let path = format!("/v1/models/{name}:predict");
                std::thread::spawn(move || {
                    let mut answered = 0;
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let (code, body) = post(addr, &path, &json!({"instances": [1.0]}));
                        assert_eq!(
                            code, 200,
                            "a request failed during a version change: {body}"
                        );
                        let y = body["predictions"][0].as_f64().unwrap_or(f64::NAN);
                        assert!(allowed.contains(&y), "unexpected answer {body}");
                        answered += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    answered
                })
            })
            .collect();
        Traffic { done, clients }
    }

    /// Stops the clients; returns how many requests each answered.
    fn stop(self) -> Vec<usize> {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        self.clients
            .into_iter()
            .map(|c| c.join().expect("no request failed"))
            .collect()
    }
}

/// Copies the SavedModel `from` to `to` as `cp -r` does on a slow disk or network: the
/// directory first, then file by file, each written in two halves, with `pause` after every
/// step, so the poller sees every partial state.
fn copy_version_slowly(from: &Path, to: &Path, pause: Duration) {
    std::fs::create_dir(to).expect("mkdir");
    std::thread::sleep(pause);
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_version_slowly(&path, &target, pause);
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        let (first, rest) = bytes.split_at(bytes.len() / 2);
        std::fs::write(&target, first).expect("write the first half");
        std::thread::sleep(pause);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&target)
            .expect("reopen");
        file.write_all(rest).expect("write the rest");
        drop(file);
        std::thread::sleep(pause);
    }
}

/// A base path `hp` under `dir` holding version 1 of half_plus_two.
fn hp_v1(dir: &Path) -> PathBuf {
    let base = dir.join("hp");
    common::copy_dir(&common::fixture("half_plus_two/1"), &base.join("1"));
    base
}

/// The model `hp` at `base`, every version served.
fn all_versions_of_hp(base: &Path) -> ModelConfig {
    let mut hp = srv::config::model_from_path("hp", base).expect("base path");
    hp.policy = VersionPolicy::All;
    hp
}

/// A base path `hp` under `dir` holding version 1 of half_plus_two, served with a 100 ms
/// poller.
fn serve_hp_v1(dir: &Path, options: ServerOptions) -> Option<(PathBuf, Running)> {
    let base = hp_v1(dir);
    let models = vec![srv::config::model_from_path("hp", &base).expect("base path")];
    let poll = Some(Duration::from_millis(100));
    let s = server::start(models, poll, options, TransportOptions::default())?;
    Some((base, s))
}

#[test]
fn versions_swap_under_steady_traffic_without_a_failed_request() {
    let dir = common::tempdir();
    let Some((base, s)) = serve_hp_v1(dir.path(), ServerOptions::default()) else {
        return;
    };
    let traffic = Traffic::start(s.rest, "hp", 3, &[2.5, 3.5]);
    // Not atomic: version 2 appears empty and fills up file by file, half a file at a time;
    // version 1 serves until version 2 is complete and loaded.
    copy_version_slowly(
        &common::fixture("half_plus_two/2"),
        &base.join("2"),
        Duration::from_millis(400),
    );
    wait_for("version 2 to replace version 1", || {
        version_states(s.rest, "hp") == states(&[("2", "AVAILABLE"), ("1", "END")])
    });
    // Atomic: copied elsewhere, renamed into place.
    common::copy_dir(
        &common::fixture("half_plus_two/1"),
        &dir.path().join("incoming"),
    );
    std::fs::rename(dir.path().join("incoming"), base.join("3")).expect("rename");
    wait_for("version 3 to replace version 2", || {
        version_states(s.rest, "hp") == states(&[("3", "AVAILABLE"), ("2", "END"), ("1", "END")])
    });
    assert_eq!(predict_hp(s.rest), (200, json!({"predictions": [2.5]})));
    // Old versions removed, then the served one: version 2 comes back before 3 goes.
    std::fs::remove_dir_all(base.join("1")).expect("remove version 1");
    std::fs::remove_dir_all(base.join("3")).expect("remove version 3");
    wait_for("version 2 to serve again", || {
        let now = version_states(s.rest, "hp");
        now.contains(&("2".into(), "AVAILABLE".into())) && now.contains(&("3".into(), "END".into()))
    });
    let answered = traffic.stop();
    assert!(answered.iter().all(|&n| n > 0), "{answered:?}");
    assert_eq!(predict_hp(s.rest), (200, json!({"predictions": [3.5]})));
}

#[test]
fn a_failed_version_is_tried_again_when_its_files_are_fixed() {
    let dir = common::tempdir();
    // No retries with the same files: only the change can make version 2 load.
    let options = ServerOptions {
        load_retries: LoadRetries {
            max_retries: 0,
            interval: Duration::ZERO,
        },
        ..Default::default()
    };
    let Some((base, s)) = serve_hp_v1(dir.path(), options) else {
        return;
    };
    let traffic = Traffic::start(s.rest, "hp", 2, &[2.5, 3.5]);
    common::copy_dir(
        &common::fixture("broken/truncated"),
        &dir.path().join("incoming"),
    );
    std::fs::rename(dir.path().join("incoming"), base.join("2")).expect("rename");
    wait_for("version 2 to fail", || {
        version_status(s.rest, "hp", 2)["state"] == "END"
    });
    let v2 = version_status(s.rest, "hp", 2);
    assert_ne!(v2["status"]["error_code"], "OK", "{v2}");
    assert_eq!(
        version_states(s.rest, "hp")[1],
        ("1".into(), "AVAILABLE".into())
    );
    assert_eq!(predict_hp(s.rest), (200, json!({"predictions": [2.5]})));
    // Fixed in place, file by file.
    common::copy_dir(&common::fixture("half_plus_two/2"), &base.join("2"));
    wait_for("the fixed version 2", || {
        version_states(s.rest, "hp") == states(&[("2", "AVAILABLE"), ("1", "END")])
    });
    traffic.stop();
    assert_eq!(predict_hp(s.rest), (200, json!({"predictions": [3.5]})));
}

/// The value of a Prometheus series line that starts with `prefix`, or 0.
fn metric(addr: SocketAddr, prefix: &str) -> f64 {
    let (code, text) = http(addr, "GET", "/monitoring/prometheus/metrics", None);
    assert_eq!(code, 200, "{text}");
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().expect("a number"))
}

#[test]
fn failed_loads_are_retried_as_the_retry_flags_say_even_without_the_poller() {
    let dir = common::tempdir();
    // hp: its graph but not yet its variables (a copy in progress).
    let hp = dir.path().join("hp");
    std::fs::create_dir(&hp).expect("mkdir");
    std::fs::copy(
        common::fixture("half_plus_two/2/saved_model.pb"),
        hp.join("saved_model.pb"),
    )
    .expect("copy the graph");
    // broken: never loads.
    let broken = dir.path().join("broken");
    common::copy_dir(&common::fixture("broken/truncated"), &broken.join("1"));
    let options = ServerOptions {
        load_retries: LoadRetries {
            max_retries: 2,
            interval: Duration::from_millis(200),
        },
        metrics_path: Some("/monitoring/prometheus/metrics".into()),
        ..Default::default()
    };
    let models = vec![
        srv::config::model_from_path("hp", &hp).expect("model dir"),
        srv::config::model_from_path("broken", &broken).expect("base path"),
    ];
    let Some(s) = server::start_models(models, options) else {
        return;
    };
    let v = version_status(s.rest, "hp", 1);
    assert_eq!(v["state"], "END", "{v}");
    assert_eq!(v["status"]["error_code"], "NOT_FOUND", "{v}");
    // TensorFlow itself would serve the graph with uninitialized variables.
    let message = v["status"]["error_message"].as_str().expect("message");
    assert_eq!(
        message,
        format!(
            "'{}' is missing, but the graph restores its variables from it (is the version still being copied?)",
            hp.join("variables/variables.index").display()
        )
    );
    common::copy_dir(
        &common::fixture("half_plus_two/2/variables"),
        &hp.join("variables"),
    );
    wait_for("a retry to load hp", || {
        version_states(s.rest, "hp") == states(&[("1", "AVAILABLE")])
    });
    assert_eq!(predict_hp(s.rest), (200, json!({"predictions": [3.5]})));
    // The broken version: one attempt and two retries, then no more.
    let failures = format!(
        ":tensorflow:cc:saved_model:load_attempt_count{{model_path=\"{}\",status=\"fail\"}}",
        broken.join("1").display()
    );
    wait_for("two retries", || metric(s.rest, &failures) >= 3.0);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(metric(s.rest, &failures), 3.0);
    assert_eq!(version_status(s.rest, "broken", 1)["state"], "END");
}

#[test]
fn fifos_and_devices_in_a_version_fail_its_load_instead_of_blocking_it() {
    let dir = common::tempdir();
    let base = hp_v1(dir.path());
    // Version 2's variables data is a FIFO nobody writes; version 3's graph is /dev/zero.
    common::copy_dir(&common::fixture("half_plus_two/2"), &base.join("2"));
    let data = base.join("2/variables/variables.data-00000-of-00001");
    std::fs::remove_file(&data).expect("remove");
    common::mkfifo(&data);
    common::copy_dir(&common::fixture("half_plus_two/2"), &base.join("3"));
    std::fs::remove_file(base.join("3/saved_model.pb")).expect("remove");
    std::os::unix::fs::symlink("/dev/zero", base.join("3/saved_model.pb")).expect("symlink");
    let hp = all_versions_of_hp(&base);
    let Some(s) = start_with(vec![hp]) else {
        return;
    };
    for (version, file, kind) in [
        (2, "variables/variables.data-00000-of-00001", "a FIFO"),
        (3, "saved_model.pb", "a character device"),
    ] {
        let v = version_status(s.rest, "hp", version);
        assert_eq!(v["state"], "END", "{v}");
        assert_eq!(v["status"]["error_code"], "FAILED_PRECONDITION", "{v}");
        let message = v["status"]["error_message"].as_str().expect("message");
        let path = base.join(version.to_string()).join(file);
        assert_eq!(
            message,
            format!(
                "'{}' is {kind}, not a regular file; TensorFlow would block or read without end opening it",
                path.display()
            )
        );
    }
    assert_eq!(predict_hp(s.rest), (200, json!({"predictions": [2.5]})));
}

#[test]
fn config_files_that_are_fifos_devices_or_huge_are_refused_at_once() {
    let dir = common::tempdir();
    let fifo = dir.path().join("fifo");
    common::mkfifo(&fifo);
    let huge = dir.path().join("huge.config");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(65 << 20))
        .expect("a sparse 65 MiB file");
    let model = common::fixture("half_plus_two");
    let model = model.to_str().expect("path");
    let fifo = fifo.to_str().expect("path");
    let huge = huge.to_str().expect("path");
    let cases: [(&[&str], String); 5] = [
        (
            &["serve", "--model_config_file", fifo],
            format!("reading the model config file: '{fifo}' is a FIFO, not a regular file"),
        ),
        (
            &["serve", "--model_config_file", "/dev/zero"],
            "reading the model config file: '/dev/zero' is a character device, not a regular file".into(),
        ),
        (
            &["serve", "--model_config_file", huge],
            format!("reading the model config file: '{huge}' is larger than the 64 MiB limit for a config file (68157440 bytes)"),
        ),
        (
            &["serve", model, "--monitoring_config_file", fifo],
            format!("reading the monitoring config file: '{fifo}' is a FIFO, not a regular file"),
        ),
        (
            &["serve", model, "--enable_batching", "--batching_parameters_file", fifo],
            format!("reading the batching parameters file: '{fifo}' is a FIFO, not a regular file"),
        ),
    ];
    for (args, want) in cases {
        common::assert_refused(args, &want);
    }
}

#[test]
fn a_reload_of_an_unchanged_config_loads_new_versions_as_the_poller_does() {
    let dir = common::tempdir();
    let base = hp_v1(dir.path());
    let models = vec![srv::config::model_from_path("hp", &base).expect("base path")];
    let Some(s) = start_with(models.clone()) else {
        return;
    };
    let manager = s.server.core.models();
    common::copy_dir(&common::fixture("half_plus_two/2"), &base.join("2"));
    // First sight of version 2: it may still be being copied, so it waits for the next look.
    manager.reload(models.clone()).expect("reload");
    assert_eq!(version_states(s.rest, "hp"), states(&[("1", "AVAILABLE")]));
    manager.reload(models.clone()).expect("reload");
    assert_eq!(
        version_states(s.rest, "hp"),
        states(&[("2", "AVAILABLE"), ("1", "END")])
    );
    // A model whose config changes is looked at now.
    let mut all = models[0].clone();
    all.policy = VersionPolicy::All;
    common::copy_dir(&common::fixture("half_plus_two/1"), &base.join("3"));
    manager.reload(vec![all]).expect("reload");
    assert_eq!(
        version_states(s.rest, "hp"),
        states(&[("3", "AVAILABLE"), ("2", "AVAILABLE"), ("1", "AVAILABLE")])
    );
}

/// Waits up to `limit` for a child to exit.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn slow_rest_clients_do_not_lock_out_others() {
    let Some(s) = start_hp_with_http(HttpOptions {
        connections: server::few_connections(Duration::from_secs(1)),
        ..Default::default()
    }) else {
        return;
    };
    // Slowloris: more connections than the server takes, each sending its headers a byte at
    // a time and never finishing them; one more sends its headers and then a body that
    // stops halfway (it gets a 408, or the connection closed).
    let mut slow = common::slow_clients(
        s.rest,
        10,
        b"GET /v1/models/half_plus_two HTTP/1.1\r\nHost: x\r\nX-a: ",
    );
    slow.push(std::thread::spawn({
        let addr = s.rest;
        move || {
            let mut c = TcpStream::connect(addr).expect("connect");
            c.write_all(
                b"POST /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"instances\"",
            )
            .expect("write");
            c.set_read_timeout(Some(Duration::from_secs(30))).ok();
            let mut answer = String::new();
            let _ = c.read_to_string(&mut answer);
            answer.is_empty() || answer.starts_with("HTTP/1.1 408")
        }
    }));
    std::thread::sleep(Duration::from_millis(300));
    let (code, body) = post(
        s.rest,
        "/v1/models/half_plus_two:predict",
        &json!({"instances": [1.0]}),
    );
    assert_eq!((code, body), (200, json!({"predictions": [3.5]})));
    for t in slow {
        assert!(
            t.join().expect("slow client"),
            "a slow client was never disconnected"
        );
    }
}

/// Starts the binary with SIGINT ignored, as a shell starts a background job (a handler
/// installed too late then misses the signal instead of dying of it), and returns it with a
/// channel of its stderr lines.
fn spawn_ignoring_sigint(
    args: &[&str],
    venv: &Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' INT; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_smtool"))
        .args(args)
        .current_dir(common::root());
    let mut child = common::as_user_serves(&mut cmd, venv)
        .spawn()
        .expect("start smtool serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[test]
fn binary_stops_on_the_first_sigint_whenever_it_comes() {
    use std::os::unix::process::ExitStatusExt;
    let Some(venv) = common::venv_with_tensorflow() else {
        return;
    };
    let args = common::serve_args(&["fixtures/half_plus_two"]);
    for i in 0..40 {
        let (mut child, lines) = spawn_ignoring_sigint(&args, &venv);
        // Even starts: the signal as soon as the server says where it listens. Odd starts:
        // at various moments of start-up, from the first line on.
        let wanted = if i % 2 == 0 {
            "smtool serve: REST API on"
        } else {
            "smtool serve:"
        };
        let mut seen = Vec::new();
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("start {i}: no '{wanted}' line: {seen:?}"));
            let done = line.starts_with(wanted);
            seen.push(line);
            if done {
                break;
            }
        }
        if i % 2 == 1 {
            std::thread::sleep(Duration::from_millis(15 * (i as u64 % 7)));
        }
        signal(&child, "INT");
        let Some(status) = wait_exit(&mut child, Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("start {i}: still running a minute after SIGINT: {seen:?}");
        };
        if i % 2 == 0 {
            // Serving: a graceful shutdown.
            assert!(status.success(), "start {i}: {status}: {seen:?}");
        } else {
            // Starting: graceful, or the signal's default action.
            assert!(
                status.success() || status.signal() == Some(libc::SIGINT),
                "start {i}: {status}: {seen:?}"
            );
        }
    }
}

#[test]
fn binary_stops_on_sigterm_after_its_stderr_is_gone() {
    use std::io::BufRead;
    let Some(venv) = common::venv_with_tensorflow() else {
        return;
    };
    let mut cmd = common::smtool();
    cmd.args(common::serve_args(&["fixtures/half_plus_two"]));
    let mut child = common::as_user_serves(&mut cmd, &venv)
        .spawn()
        .expect("start smtool serve");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("read stderr") == 0 {
            panic!("serve ended before it listened: {seen:?}");
        }
        let listening = line.starts_with("smtool serve: REST API on");
        seen.push(line);
        if listening {
            break;
        }
    }
    // The log's reader goes away (a closed terminal, a log shipper that exited): what the
    // server says on SIGTERM then cannot be written.
    drop(stderr);
    signal(&child, "TERM");
    let Some(status) = wait_exit(&mut child, Duration::from_secs(60)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("still running a minute after SIGTERM, with its stderr closed");
    };
    assert!(status.success(), "{status}: {seen:?}");
}

#[test]
fn shutdown_cancels_a_request_that_burns_cpu() {
    let Some((_dir, models)) = stateful_models() else {
        return;
    };
    let Some(venv) = common::venv_with_tensorflow() else {
        return;
    };
    let spin = models.join("spin");
    let args = common::serve_args(&[
        spin.to_str().expect("utf-8 path"),
        "--model_name=spin",
        "--shutdown-timeout-seconds=1",
    ]);
    let common::Served {
        mut child,
        rest,
        stderr,
        ..
    } = common::spawn_serve(&args, &venv);
    let (code, body) = post(rest, "/v1/models/spin:predict", &json!({"instances": [3]}));
    assert_eq!((code, body), (200, json!({"predictions": [1.75]})));
    // A loop of 10^15 iterations: hours of CPU.
    let forever = std::thread::spawn(move || {
        let mut s = TcpStream::connect(rest).expect("connect");
        let body = json!({"instances": [1_000_000_000_000_000i64]}).to_string();
        let head = format!(
            "POST /v1/models/spin:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(body.as_bytes()).expect("write");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).into_owned()
    });
    // Let the request reach TensorFlow.
    std::thread::sleep(Duration::from_secs(2));
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(90));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr = stderr.join().expect("stderr");
    assert!(
        status.is_some(),
        "still running 90 s after SIGTERM:\n{stderr}"
    );
    assert!(
        stderr.contains("requests still running after 1s; cancelling"),
        "{stderr}"
    );
    let answer = forever.join().expect("client");
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
}
