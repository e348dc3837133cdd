//! Integration tests for `smtool warmup`: the written file is read back by TensorFlow's own
//! `tf.data.TFRecordDataset` and tensorflow-serving-api's `PredictionLog`
//! (python/check_warmup.py), passes validate, and is replayed by `smtool serve`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::Value;

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write request");
    path
}

const WARMUP: &str = "assets.extra/tf_serving_warmup_requests";

/// Runs `smtool warmup --json ARGS`, expecting success.
fn warmup(args: &[&str]) -> Value {
    let mut all = vec!["warmup", "--json"];
    all.extend_from_slice(args);
    common::run_json(&all)
}

/// What TensorFlow reads back from a model's warmup file; `None` without the reference Python.
fn read_back(model: &Path) -> Option<Value> {
    let python = common::reference_python()?;
    let out = common::run_python(&python, "check_warmup.py", &[path_str(&model.join(WARMUP))]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    Some(serde_json::from_slice(&out.stdout).expect("JSON from check_warmup.py"))
}

/// GET over HTTP/1.1; the body.
fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

#[test]
fn rest_bodies_for_predict_classify_and_regress() {
    let tmp = common::tempdir();
    let base = tmp.path().join("half_plus_two");
    common::copy_dir(&common::fixture("half_plus_two"), &base);
    let predict = write(
        tmp.path(),
        "predict.json",
        r#"{"instances": [1.0, 2.0, 5.0]}"#,
    );
    let report = warmup(&[
        path_str(&base),
        "--request",
        path_str(&predict),
        "--as-next-version",
    ]);
    assert_eq!(
        (
            report["source_version"].as_i64(),
            report["new_version"].as_i64()
        ),
        (Some(2), Some(3))
    );
    assert_eq!(report["records"][0]["endpoint"], "predict");
    assert_eq!(report["records"][0]["batch"], 3);
    let v3 = base.join("3");
    // The versions that were there are as they were.
    assert!(!base.join("2").join(WARMUP).exists());

    let iris = tmp.path().join("iris");
    let example = r#"{"x": [5.1, 3.5, 1.4, 0.2]}"#;
    let classify = write(
        tmp.path(),
        "classify.json",
        &format!(r#"{{"signature_name": "classify", "examples": [{example}, {example}]}}"#),
    );
    let regress = write(
        tmp.path(),
        "regress.json",
        &format!(r#"{{"signature_name": "regress", "examples": [{example}]}}"#),
    );
    let report = warmup(&[
        "fixtures/iris_tf1",
        "--request",
        path_str(&classify),
        "--request",
        &format!("regress={}", path_str(&regress)),
        "--out",
        path_str(&iris),
    ]);
    let endpoints: Vec<&str> = report["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["endpoint"].as_str().expect("endpoint"))
        .collect();
    assert_eq!(endpoints, ["classify", "regress"]);

    // validate's warmup checks (SM407) pass.
    let out = common::run(&["validate", "--strict", path_str(&v3), path_str(&iris)]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stdout(&out));

    let Some(hp) = read_back(&v3) else {
        return;
    };
    assert_eq!(
        hp,
        serde_json::json!([{"type": "predict_log", "model": "half_plus_two", "signature": "",
            "inputs": {"x": {"dtype": "float32", "shape": [3]}}}])
    );
    let back = read_back(&iris).expect("reference Python");
    assert_eq!(back[0]["type"], "classify_log");
    assert_eq!(back[0]["signature"], "classify");
    assert_eq!(back[0]["examples"], 2);
    assert_eq!(back[0]["features"], serde_json::json!(["x"]));
    assert_eq!(back[1]["type"], "regress_log");

    // smtool serve replays them before the versions become available.
    let Some(python) = common::reference_python() else {
        return;
    };
    let monitoring = write(
        tmp.path(),
        "monitoring.txt",
        "prometheus_config { enable: true path: \"/metrics\" }",
    );
    let digits = tmp.path().join("digits");
    warmup(&[
        "fixtures/digits/model",
        "--from-signature",
        "--batch",
        "2",
        "--out",
        path_str(&digits),
    ]);
    let mut served = common::spawn_serve(
        &[
            "serve",
            "--model",
            &format!("hp={}", path_str(&base)),
            "--model",
            &format!("iris={}", path_str(&iris)),
            "--model",
            &format!("digits={}", path_str(&digits)),
            "--rest-api-port",
            "0",
            "--port",
            "0",
            "--monitoring_config_file",
            path_str(&monitoring),
        ],
        &common::venv_of(&python),
    );
    let metrics = get(served.rest, "/metrics");
    let _ = served.child.kill();
    let _ = served.child.wait();
    for (model, version, records) in [("hp", "3", 1), ("iris", "1", 2), ("digits", "1", 2)] {
        let line = format!(
            "smtool_model_warmup_records_total{{model_name=\"{model}\",model_version=\"{version}\"}} {records}"
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
}

#[test]
fn synthetic_requests_from_the_signatures() {
    let tmp = common::tempdir();
    let out = tmp.path().join("digits");
    let report = warmup(&[
        "fixtures/digits/model",
        "--from-signature",
        "--signature",
        "serving_default",
        "--batch",
        "4",
        "--out",
        path_str(&out),
    ]);
    assert_eq!(report["records"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["records"][0]["from"], "synthetic");
    if let Some(back) = read_back(&out) {
        assert_eq!(
            back[0]["inputs"],
            serde_json::json!({"x": {"dtype": "float32", "shape": [4, 28, 28, 1]}})
        );
    }
    // Signatures fed serialized tf.Examples are left out, with the reason.
    let iris = tmp.path().join("iris");
    let report = warmup(&[
        "fixtures/iris_tf1",
        "--from-signature",
        "--out",
        path_str(&iris),
    ]);
    assert_eq!(report["records"][0]["signature"], "predict");
    let skipped: Vec<&str> = report["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| s["signature"].as_str().expect("key"))
        .collect();
    assert_eq!(skipped, ["classify", "regress", "serving_default"]);
}

#[test]
fn an_existing_warmup_file_is_replaced_in_the_copy_only() {
    let tmp = common::tempdir();
    let src = tmp.path().join("vocab");
    common::copy_dir(&common::fixture("vocab_assets"), &src);
    let before = std::fs::read(src.join(WARMUP)).expect("fixture warmup");
    let body = write(tmp.path(), "words.json", r#"{"instances": ["a", "b"]}"#);
    let out = tmp.path().join("out");
    warmup(&[
        path_str(&src),
        "--request",
        path_str(&body),
        "--out",
        path_str(&out),
    ]);
    assert_eq!(
        std::fs::read(src.join(WARMUP)).expect("source warmup"),
        before
    );
    let bytes = std::fs::read(out.join(WARMUP)).expect("read the warmup file");
    let records = smtool::savedmodel::tfrecord::parse(&bytes).expect("TFRecord");
    assert_eq!(records.len(), 1);
}

#[test]
fn requests_and_arguments_it_refuses() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let out = dir.join("out");
    let exists = dir.join("exists");
    common::copy_dir(&common::fixture("half_plus_two/1"), &exists);
    let unknown_sig = write(
        dir,
        "u.json",
        r#"{"signature_name": "nope", "instances": [1.0]}"#,
    );
    let examples = write(dir, "e.json", r#"{"examples": [{"x": 1.0}]}"#);
    let bad_json = write(dir, "b.json", r#"{"instances": [1.0"#);
    let wrong_input = write(dir, "w.json", r#"{"inputs": {"nope": [1.0]}}"#);
    let predict = write(dir, "p.json", r#"{"instances": [1.0]}"#);
    let fifo = dir.join("fifo.json");
    common::mkfifo(&fifo);
    let fifo_refused = format!(
        "cannot read request '{}': it is a FIFO, not a regular file",
        path_str(&fifo)
    );
    let o = path_str(&out);
    let as_classify = format!("classify={}", path_str(&predict));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["fixtures/half_plus_two", "--request", path_str(&unknown_sig), "--out", o],
            "signature 'nope' is not in the model (signatures: 'serving_default')",
        ),
        (
            vec!["fixtures/half_plus_two", "--request", path_str(&examples), "--out", o],
            "the body has 'examples', but signature 'serving_default' serves neither :classify nor :regress",
        ),
        (
            vec!["fixtures/half_plus_two", "--request", &as_classify, "--out", o],
            "TF Serving would refuse it: signature 'serving_default' cannot be served under :classify",
        ),
        (
            vec!["fixtures/half_plus_two", "--request", path_str(&bad_json), "--out", o],
            "JSON Parse error",
        ),
        (
            vec!["fixtures/half_plus_two", "--request", path_str(&wrong_input), "--out", o],
            "Missing named input: x in 'inputs' object.",
        ),
        (
            vec!["fixtures/half_plus_two", "--request", "nowhere.json", "--out", o],
            "cannot read request 'nowhere.json'",
        ),
        (
            vec!["fixtures/half_plus_two", "--request", path_str(&fifo), "--out", o],
            &fifo_refused,
        ),
        (
            vec!["fixtures/iris_tf1", "--from-signature", "--signature", "classify", "--out", o],
            "--from-signature cannot build a request for signature 'classify': it takes serialized tf.Examples",
        ),
        (
            vec!["fixtures/iris_tf1", "--from-signature", "--signature", "nope", "--out", o],
            "no signature 'nope' in tag-set 'serve'",
        ),
        (
            vec!["fixtures/half_plus_two/1", "--request", path_str(&predict), "--as-next-version"],
            "is a SavedModel itself",
        ),
        (
            vec!["fixtures/half_plus_two/1", "--request", path_str(&predict), "--out", path_str(&exists)],
            "already exists; choose another --out or pass --force",
        ),
        (
            vec!["fixtures/half_plus_two/1", "--out", o],
            "--request",
        ),
        (
            vec!["fixtures/half_plus_two/1", "--from-signature", "--batch", "0", "--out", o],
            "--batch must be at least 1",
        ),
        (
            vec!["fixtures/digits/model", "--from-signature", "--batch", "100000", "--out", o],
            "--from-signature found no signature to build a request for ('serve': input 'x' shaped [100000, 28, 28, 1] would take 313600000 bytes, more than the 67108864 all synthetic requests may take together",
        ),
        (
            vec!["fixtures/digits/model", "--from-signature", "--signature", "serving_default", "--batch", "18446744073709551615", "--out", o],
            "--batch 18446744073709551615 is more than a tensor's dimension may be (2^63 - 1)",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["warmup"];
        all.extend(&args);
        let run = common::run(&all);
        let err = common::stderr(&run);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
}

#[test]
fn many_small_examples_cost_about_one_body_at_a_time() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let tmp = common::tempdir();
    // 30 MB bodies of 10 million empty examples each: parsed, one takes about 20 times its size;
    // recorded, one takes 20 MB. Three of them are held one after another, not together.
    let examples = vec!["{}"; 10_000_000].join(",");
    let body = write(
        tmp.path(),
        "examples.json",
        &format!("{{\"signature_name\": \"classify\", \"examples\": [{examples}]}}"),
    );
    let out = tmp.path().join("out");
    let mut cmd = common::smtool();
    cmd.args(["warmup", path_str(&common::fixture("iris_tf1")), "--out"])
        .arg(&out);
    for _ in 0..3 {
        cmd.args(["--request", path_str(&body)]);
    }
    let (done, peak_kb) = common::output_and_peak_rss(&python, &cmd);
    assert!(done.status.success(), "{}", common::stderr(&done));
    let file = std::fs::metadata(out.join(WARMUP)).expect("warmup file");
    assert!(file.len() > 3 * 20_000_000, "{} bytes", file.len());
    assert!(peak_kb < 1_000_000, "peak RSS {peak_kb} KiB");
}

#[test]
fn a_signature_input_of_more_dimensions_than_tensorflow_allows_gets_no_synthetic_request() {
    let tmp = common::tempdir();
    let model = tmp.path().join("model");
    common::edited_copy(&common::fixture("half_plus_two/2"), &model, |meta| {
        let x = meta
            .signature_def
            .get_mut("serving_default")
            .and_then(|s| s.inputs.get_mut("x"))
            .expect("input x");
        let shape = x.tensor_shape.get_or_insert_with(Default::default);
        shape.dim = vec![
            smtool::proto::tensorflow::tensor_shape_proto::Dim {
                size: 1,
                name: String::new(),
            };
            300
        ];
    });
    let out = tmp.path().join("out");
    common::assert_refused(
        &[
            "warmup",
            path_str(&model),
            "--from-signature",
            "--signature",
            "serving_default",
            "--out",
            path_str(&out),
        ],
        "--from-signature cannot build a request for signature 'serving_default': input 'x' has 300 dimensions; TensorFlow allows at most 254",
    );
    assert!(!out.exists());
}
