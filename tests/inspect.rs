//! `smtool inspect` on the real fixtures: JSON facts, tables, version selection, narrowing and
//! every error a user can hit.

mod common;

use serde_json::Value;

fn signature<'a>(graph: &'a Value, key: &str) -> &'a Value {
    graph["signatures"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"] == key))
        .unwrap_or_else(|| panic!("signature {key} in {graph}"))
}

fn tensor_keys(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["key"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn keras_export_signatures_and_shapes() {
    let doc = common::run_json(&["inspect", "fixtures/digits/model", "--json"]);
    let model = &doc["models"][0];
    assert_eq!(model["graph_format"], "binary");
    assert_eq!(model["version"], Value::Null);
    let graph = &model["meta_graphs"][0];
    assert_eq!(graph["tags"], serde_json::json!(["serve"]));
    assert_eq!(graph["tensorflow_version"], "2.21.0");
    let sig = signature(graph, "serving_default");
    assert_eq!(sig["method_name"], "tensorflow/serving/predict");
    assert_eq!(sig["endpoints"], serde_json::json!(["predict"]));
    let x = &sig["inputs"][0];
    assert_eq!(x["key"], "x");
    assert_eq!(x["dtype"], "DT_FLOAT");
    assert_eq!(x["shape"], serde_json::json!([-1, 28, 28, 1]));
    assert_eq!(x["shape_text"], "(-1, 28, 28, 1)");
    assert_eq!(sig["outputs"][0]["shape"], serde_json::json!([-1, 10]));
    // Without --all the heavier sections are absent.
    assert!(model.get("variables").is_none());
    assert!(graph.get("ops").is_none());
}

#[test]
fn tf1_model_serves_classify_regress_and_predict() {
    let doc = common::run_json(&["inspect", "fixtures/iris_tf1", "--json"]);
    let graph = &doc["models"][0]["meta_graphs"][0];
    let keys: Vec<&str> = graph["signatures"]
        .as_array()
        .expect("signatures")
        .iter()
        .filter_map(|s| s["key"].as_str())
        .collect();
    assert_eq!(
        keys,
        ["classify", "predict", "regress", "serving_default"],
        "sorted"
    );
    let cls = signature(graph, "serving_default");
    assert_eq!(cls["endpoints"], serde_json::json!(["classify", "predict"]));
    assert_eq!(tensor_keys(cls, "outputs"), ["classes", "scores"]);
    assert_eq!(
        signature(graph, "regress")["endpoints"],
        serde_json::json!(["regress", "predict"])
    );
}

#[test]
fn all_shows_variables_assets_init_op_ops_and_fingerprint() {
    let doc = common::run_json(&["inspect", "fixtures/vocab_assets", "--all", "--json"]);
    let model = &doc["models"][0];
    let graph = &model["meta_graphs"][0];
    assert_eq!(graph["init_op"]["source"], "signature");
    let assets: Vec<&str> = model["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .filter_map(|a| a["path"].as_str())
        .collect();
    assert!(assets.contains(&"assets/vocab.txt"), "{assets:?}");
    assert!(model["assets_extra"]
        .as_array()
        .expect("assets.extra")
        .iter()
        .any(|a| a["path"] == "assets.extra/tf_serving_warmup_requests"));
    assert!(graph["declared_assets"]
        .as_array()
        .expect("declared")
        .iter()
        .any(|a| a["filename"] == "vocab.txt"));
    let ops: Vec<&str> = graph["ops"]
        .as_array()
        .expect("ops")
        .iter()
        .filter_map(|o| o["op"].as_str())
        .collect();
    assert!(ops.contains(&"StatefulPartitionedCall"));
    assert!(ops.windows(2).all(|w| w[0] < w[1]), "ops sorted: {ops:?}");
    assert!(model["fingerprint"]["saved_model_checksum"].is_string());

    let digits = common::run_json(&["inspect", "fixtures/digits/model", "--all", "--json"]);
    let vars = &digits["models"][0]["variables"];
    assert_eq!(vars["present"], true);
    assert_eq!(vars["num_shards"], 1);
    let kernel = vars["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["dtype"] == "DT_FLOAT" && e["shape"].as_array().is_some_and(|s| s.len() == 4))
        .expect("a conv kernel");
    let elems: i64 = kernel["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .filter_map(Value::as_i64)
        .product();
    assert_eq!(kernel["bytes"].as_i64(), Some(elems * 4), "float32 bytes");
}

#[test]
fn tf1_init_op_is_the_main_op() {
    let doc = common::run_json(&["inspect", "fixtures/iris_tf1", "--all", "--json"]);
    let init = &doc["models"][0]["meta_graphs"][0]["init_op"];
    assert_eq!(init["source"], "main_op");
    assert_eq!(init["names"].as_array().map(Vec::len), Some(1));
}

#[test]
fn base_path_versions() {
    let latest = common::run_json(&["inspect", "fixtures/half_plus_two", "--json"]);
    assert_eq!(latest["models"].as_array().map(Vec::len), Some(1));
    assert_eq!(latest["models"][0]["version"], 2);
    assert_eq!(
        latest["models"][0]["available_versions"],
        serde_json::json!([1, 2])
    );

    let one = common::run_json(&[
        "inspect",
        "fixtures/half_plus_two",
        "--version",
        "1",
        "--json",
    ]);
    assert_eq!(one["models"][0]["version"], 1);

    let all = common::run_json(&[
        "inspect",
        "fixtures/half_plus_two",
        "--all-versions",
        "--json",
    ]);
    let versions: Vec<i64> = all["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|m| m["version"].as_i64())
        .collect();
    assert_eq!(versions, [1, 2]);
}

#[test]
fn graph_file_and_text_format() {
    let pb = common::run_json(&["inspect", "fixtures/iris_tf1/saved_model.pb", "--json"]);
    assert_eq!(pb["models"][0]["graph_format"], "binary");
    let txt = common::run_json(&["inspect", "fixtures/half_plus_two_pbtxt", "--json"]);
    assert_eq!(txt["models"][0]["graph_format"], "text");
    let bin = common::run_json(&["inspect", "fixtures/half_plus_two/1", "--json"]);
    // The text copy carries the same signatures as the binary original.
    assert_eq!(
        txt["models"][0]["meta_graphs"][0]["signatures"],
        bin["models"][0]["meta_graphs"][0]["signatures"]
    );
}

#[test]
fn narrowing_by_tag_set_and_signature() {
    let doc = common::run_json(&[
        "inspect",
        "fixtures/iris_tf1",
        "--tag-set",
        "serve",
        "--signature",
        "regress",
        "--json",
    ]);
    let sigs = doc["models"][0]["meta_graphs"][0]["signatures"]
        .as_array()
        .expect("signatures");
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0]["key"], "regress");
}

#[test]
fn tables_show_signatures_and_endpoints() {
    let out = common::run(&["inspect", "fixtures/iris_tf1"]);
    assert!(out.status.success());
    let text = common::stdout(&out);
    for needle in [
        "serving_default",
        "tensorflow/serving/classify",
        ":classify :predict",
        ":regress :predict",
        "DT_STRING",
        "(-1, 3)",
        "tf_example:0",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let all = common::stdout(&common::run(&["inspect", "fixtures/digits/model", "--all"]));
    for needle in ["Variables (", "Fingerprint", "Softmax", "(-1, 28, 28, 1)"] {
        assert!(all.contains(needle), "missing {needle:?} in\n{all}");
    }
}

/// Every error: exit code 2, one line naming the path and what to do.
#[test]
fn errors_name_the_input_and_the_fix() {
    let dir = common::tempdir();
    let not_versioned = dir.path().join("empty");
    std::fs::create_dir(&not_versioned).expect("mkdir");
    let not_versioned = not_versioned.to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["inspect", "fixtures/does_not_exist"],
            vec!["'fixtures/does_not_exist' does not exist"],
        ),
        (
            vec!["inspect", "fixtures/broken/no_saved_model"],
            vec!["fixtures/broken/no_saved_model", "holds no saved_model.pb"],
        ),
        (
            vec!["inspect", &not_versioned],
            vec![
                "holds no saved_model.pb or saved_model.pbtxt",
                "point at a SavedModel directory",
            ],
        ),
        (
            vec!["inspect", "fixtures/broken/truncated"],
            vec![
                "fixtures/broken/truncated/saved_model.pb",
                "truncated or corrupt",
                "re-export",
            ],
        ),
        (
            vec!["inspect", "fixtures/iris_tf1", "--tag-set", "gpu"],
            vec!["no meta graph with tag-set 'gpu'", "(available: 'serve')"],
        ),
        (
            vec!["inspect", "fixtures/iris_tf1", "--signature", "nope"],
            vec![
                "no signature 'nope'",
                "'classify', 'predict', 'regress', 'serving_default'",
            ],
        ),
        (
            vec!["inspect", "fixtures/half_plus_two", "--version", "7"],
            vec!["no version 7", "(available: '1', '2')"],
        ),
        (
            vec!["inspect", "fixtures/iris_tf1", "--version", "1"],
            vec!["not a model base path", "drop --version"],
        ),
        (
            vec!["inspect", "fixtures/digits/labels.txt"],
            vec!["not a SavedModel file", "saved_model.pb"],
        ),
    ];
    for (args, needles) in cases {
        let out = common::run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = common::stderr(&out);
        assert!(err.starts_with("smtool: error: "), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

/// The table layout people read, pinned as a snapshot.
#[test]
fn table_layout_snapshot() {
    let out = common::run(&["inspect", "fixtures/iris_tf1"]);
    assert!(out.status.success());
    insta::assert_snapshot!(common::stdout(&out));
}

/// `smtool inspect ... | head -1`: a reader that goes away is not an error.
#[test]
fn closed_pipe_is_not_an_error() {
    let mut child = common::smtool()
        .args(["inspect", "fixtures/digits/model", "--all"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("smtool starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("smtool ends");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", common::stderr(&out));
}

/// A crafted `variables/variables.index` (a header naming two billion shards, an index whose
/// entries all point at one data block) is a clear error for `inspect --all`, never an abort.
#[test]
fn hostile_variables_index_is_a_clear_error() {
    use common::sstable::{self, Table};
    let header = prost::Message::encode_to_vec(&sstable::header(1));
    let shared_block = {
        let mut t = Table::default();
        let data = t.push(&sstable::plain_block(&[(b"", &header)]), 0);
        t.finish(&vec![data; 10_000])
    };
    for (bytes, needle) in [
        (
            sstable::index(&sstable::header(i32::MAX), &[]),
            "header names 2147483647 data shards but it records only 0 tensors",
        ),
        (shared_block, "overlaps an earlier one"),
    ] {
        let tmp = common::tempdir();
        let model = tmp.path().join("model");
        common::copy_dir(&common::fixture("half_plus_two/1"), &model);
        let index = model.join("variables/variables.index");
        std::fs::write(&index, bytes).expect("write");
        let model = model.to_str().expect("utf-8");
        let out = common::run(&["inspect", "--all", model]);
        assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
        let err = common::stderr(&out);
        assert!(
            err.contains("variables/variables.index") && err.contains(needle),
            "{needle:?} not in {err}"
        );
        // Without --all the index is not read, and the graph is shown as usual.
        let out = common::run(&["inspect", model]);
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
}
