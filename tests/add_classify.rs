//! `smtool add-classify` on the real fixtures: the edited models are loaded and called by the
//! reference TensorFlow (python/check_add_classify.py), and every error a user can hit leaves the
//! source untouched and creates no destination.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Every file under `dir` with its contents: equal snapshots mean nothing was modified.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                files.insert(
                    path.strip_prefix(dir).expect("under dir").to_path_buf(),
                    bytes,
                );
            }
        }
    }
    files
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// Runs add-classify, expects success, returns stdout.
fn add_classify(args: &[&str]) -> String {
    let mut all = vec!["add-classify"];
    all.extend_from_slice(args);
    let out = common::run(&all);
    assert!(
        out.status.success(),
        "smtool {all:?} failed: {}",
        common::stderr(&out)
    );
    common::stdout(&out)
}

/// Runs add-classify on `src` with `labels` and `extra` into `--out dst`, expects success,
/// returns stdout.
fn edit(src: &str, labels: &str, extra: &[&str], dst: &Path) -> String {
    let mut args = vec![src, "--labels", labels];
    args.extend_from_slice(extra);
    args.extend(["--out", path_str(dst)]);
    add_classify(&args)
}

/// Runs add-classify, expects it to refuse the arguments (exit code 2, an error and no panic),
/// returns stderr.
fn refusal(args: &[&str]) -> String {
    let all = [&["add-classify"], args].concat();
    let err = common::refused(&all);
    assert!(!err.contains("panicked"), "smtool {all:?}: {err}");
    err
}

fn signature<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    doc["models"][0]["meta_graphs"][0]["signatures"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"] == key))
}

/// Runs python/check_add_classify.py (which fails on any disagreement with TensorFlow) and
/// returns its JSON summary; `None` when skipping. TensorFlow calls the signature `dst` adds
/// (`classify`, wrapping `serving_default`, unless `extra` passes `--key` or `--wrapped`) on the
/// `mode` test inputs and compares it with `output` of `src`.
fn check_with_tensorflow(
    src: &Path,
    dst: &Path,
    output: &str,
    labels: &str,
    mode: &str,
    extra: &[&str],
) -> Option<Value> {
    let python = common::reference_python()?;
    let mut args = vec![
        "--src",
        path_str(src),
        "--dst",
        path_str(dst),
        "--output",
        output,
        "--labels",
        labels,
        "--mode",
        mode,
    ];
    args.extend_from_slice(extra);
    let out = common::run_python(&python, "check_add_classify.py", &args);
    assert!(
        out.status.success(),
        "check_add_classify.py {args:?} failed:\n{}\n{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    let last = common::stdout(&out)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let summary: Value =
        serde_json::from_str(&last).unwrap_or_else(|e| panic!("bad summary {last}: {e}"));
    // The C++ loader TensorFlow Serving uses (through the C API) agrees with the TF1 loader.
    assert!(summary["session_top1"].is_array(), "{summary}");
    assert_eq!(summary["c_api_top1"], summary["session_top1"], "{summary}");
    Some(summary)
}

/// The edit only adds: every node, function and signature of `src` is in `dst` unchanged (but
/// the keys in `replaced`), every node input of `dst` resolves, the new signature `key` passes
/// TensorFlow's static rule and TensorFlow Serving's classify rule, and `smtool validate` reports
/// no error or warning.
fn assert_additive_edit(src: &Path, dst: &Path, key: &str, replaced: &[&str]) {
    use smtool::signature::{serving_problems, static_problems, Endpoint};
    let open = |p: &Path| {
        smtool::savedmodel::SavedModelDir::open(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .saved_model
    };
    let (before, after) = (open(src), open(dst));
    let (old, new) = (&before.meta_graphs[0], &after.meta_graphs[0]);
    let (old_graph, new_graph) = (
        old.graph_def.as_ref().expect("graph"),
        new.graph_def.as_ref().expect("graph"),
    );
    let nodes: BTreeMap<&str, _> = new_graph
        .node
        .iter()
        .map(|n| (n.name.as_str(), n))
        .collect();
    // Compared encoded: constants may hold NaN, which is not equal to itself.
    for node in &old_graph.node {
        let kept = nodes
            .get(node.name.as_str())
            .map(|n| prost::Message::encode_to_vec(*n));
        assert_eq!(
            kept,
            Some(prost::Message::encode_to_vec(node)),
            "node {} changed",
            node.name
        );
    }
    let functions = |g: &smtool::proto::tensorflow::GraphDef| {
        g.library.clone().map(|l| l.function).unwrap_or_default()
    };
    let new_functions = functions(new_graph);
    for f in functions(old_graph) {
        assert!(
            new_functions.contains(&f),
            "function changed: {:?}",
            f.signature
        );
    }
    for (k, sig) in &old.signature_def {
        if !replaced.contains(&k.as_str()) {
            assert_eq!(new.signature_def.get(k), Some(sig), "signature {k} changed");
        }
    }
    for node in &new_graph.node {
        for input in &node.input {
            let (name, _) = smtool::proto_ext::split_tensor_name(input);
            assert!(
                nodes.contains_key(name),
                "{} reads missing {input}",
                node.name
            );
        }
    }
    let sig = &new.signature_def[key];
    assert_eq!(static_problems(sig), Vec::<String>::new());
    assert_eq!(
        serving_problems(key, sig, Endpoint::Classify),
        Vec::<String>::new()
    );

    // Like TensorFlow's exporter, the stripped op list names every op the graph uses.
    if let Some(list) = new
        .meta_info_def
        .as_ref()
        .and_then(|m| m.stripped_op_list.as_ref())
    {
        let listed: Vec<&str> = list.op.iter().map(|o| o.name.as_str()).collect();
        for r in smtool::ops::all_nodes(new_graph) {
            assert!(
                listed.contains(&r.node.op.as_str()),
                "{} not in stripped_op_list",
                r.node.op
            );
        }
        assert!(listed.windows(2).all(|w| w[0] < w[1]), "sorted: {listed:?}");
    }

    // `smtool validate` finds nothing wrong with the edited model.
    let report = common::run_json(&["validate", path_str(dst), "--json"]);
    assert_eq!(report["summary"]["errors"], 0, "{report}");
    assert_eq!(report["summary"]["warnings"], 0, "{report}");
    let checked = report["models"][0]["signatures"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["key"] == key))
        .unwrap_or_else(|| panic!("{key} in {report}"));
    assert_eq!(checked["valid"], true, "{report}");
    assert_eq!(checked["endpoints"][0], "classify", "{report}");
}

/// A model written by python/check_add_classify.py's `flag` (e.g. `--make-logits-model`) into
/// a fresh temporary directory, as `(dir, model)`; `None` (skip) without the reference Python.
fn python_model(flag: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let python = common::reference_python()?;
    let tmp = common::tempdir();
    let model = tmp.path().join("model");
    let out = common::run_python(&python, "check_add_classify.py", &[flag, path_str(&model)]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    Some((tmp, model))
}

fn iris_labels(dir: &Path) -> PathBuf {
    let labels = dir.join("iris_labels.txt");
    std::fs::write(&labels, "setosa\nversicolor\nvirginica\n").expect("write labels");
    labels
}

#[test]
fn digits_images_are_classified_from_their_encoded_bytes() {
    let tmp = common::tempdir();
    let dst = tmp.path().join("digits-classify");
    let src = common::fixture("digits/model");
    let before = snapshot(&src);
    let report = edit(
        "fixtures/digits/model",
        "fixtures/digits/labels.txt",
        &["--feature", "x=image"],
        &dst,
    );
    assert!(report.contains("signature 'classify'"), "{report}");
    assert!(
        report.contains("feature 'x' (image, [28, 28, 1])"),
        "{report}"
    );
    assert_eq!(before, snapshot(&src), "the source model changed");
    assert!(
        !dst.join("fingerprint.pb").exists(),
        "stale fingerprint kept"
    );

    let doc = common::run_json(&["inspect", path_str(&dst), "--json"]);
    let sig = signature(&doc, "classify").expect("classify signature");
    assert_eq!(sig["method_name"], "tensorflow/serving/classify");
    assert_eq!(sig["inputs"][0]["key"], "inputs");
    assert_eq!(sig["inputs"][0]["dtype"], "DT_STRING");
    assert_eq!(sig["outputs"][0]["key"], "classes");
    assert_eq!(sig["outputs"][0]["shape"], serde_json::json!([-1, 10]));
    assert_eq!(sig["outputs"][1]["key"], "scores");
    assert_eq!(sig["outputs"][1]["dtype"], "DT_FLOAT");
    // The existing signatures are untouched.
    let old = common::run_json(&["inspect", "fixtures/digits/model", "--json"]);
    for key in ["serve", "serving_default"] {
        assert_eq!(signature(&doc, key), signature(&old, key), "{key}");
    }

    let Some(summary) = check_digits_images(&src, &dst) else {
        return;
    };
    assert!(
        summary["missing_feature_error"]
            .as_str()
            .is_some_and(|m| m.contains("x")),
        "{summary}"
    );
}

#[test]
fn digits_float_features_top_k_and_labels_from_an_asset() {
    let tmp = common::tempdir();
    // A copy of the model with its labels as an asset.
    let src = tmp.path().join("src");
    common::copy_dir(&common::fixture("digits/model"), &src);
    std::fs::create_dir_all(src.join("assets")).expect("mkdir assets");
    std::fs::copy(
        common::fixture("digits/labels.txt"),
        src.join("assets/labels.txt"),
    )
    .expect("copy labels");
    let dst = tmp.path().join("dst");
    let report = add_classify(&[
        path_str(&src),
        "--labels-from-asset",
        "labels.txt",
        "--feature",
        "x=float:pixels",
        "--top-k",
        "3",
        "--name",
        "top3",
        "--copy",
        "--out",
        path_str(&dst),
    ]);
    assert!(report.contains("top 3 by score"), "{report}");
    assert!(report.contains("0 files linked"), "{report}");
    assert_eq!(
        std::fs::read(dst.join("assets/labels.txt")).expect("asset copied"),
        std::fs::read(src.join("assets/labels.txt")).expect("asset")
    );
    let doc = common::run_json(&["inspect", path_str(&dst), "--json"]);
    let sig = signature(&doc, "top3").expect("top3 signature");
    assert_eq!(sig["outputs"][0]["shape"], serde_json::json!([-1, 3]));

    let Some(summary) = check_with_tensorflow(
        &src,
        &dst,
        "output_0",
        "fixtures/digits/labels.txt",
        "float",
        &[
            "--key",
            "top3",
            "--feature",
            "pixels",
            "--top-k",
            "3",
            "--images",
            "fixtures/digits/images",
        ],
    ) else {
        return;
    };
    assert!(
        summary["correct"].as_u64().expect("correct") >= 11,
        "{summary}"
    );
}

#[test]
fn tf1_predict_signature_gets_a_classify_twin() {
    let tmp = common::tempdir();
    let labels = iris_labels(tmp.path());
    let dst = tmp.path().join("iris");
    let src = common::fixture("iris_tf1");
    let before = snapshot(&src);
    let report = add_classify(&[
        "fixtures/iris_tf1",
        "--signature",
        "predict",
        "--output",
        "probabilities",
        "--labels",
        path_str(&labels),
        "--name",
        "classify_probabilities",
        "--out",
        path_str(&dst),
    ]);
    assert!(report.contains("feature 'x' (float, [4])"), "{report}");
    assert_eq!(before, snapshot(&src), "the source model changed");
    assert_additive_edit(&src, &dst, "classify_probabilities", &[]);
    let Some(summary) = check_with_tensorflow(
        &src,
        &dst,
        "probabilities",
        path_str(&labels),
        "iris",
        &[
            "--key",
            "classify_probabilities",
            "--wrapped",
            "predict",
            "--expected",
            "fixtures/iris_tf1/expected.json",
        ],
    ) else {
        return;
    };
    // The TF1 model's signatures are all visible to tf.saved_model.load, the new one too.
    assert_eq!(summary["loaded_top1"], summary["session_top1"], "{summary}");
}

#[test]
fn logits_get_a_softmax_and_the_softmax_output_is_found_among_several() {
    let Some((tmp, src)) = python_model("--make-logits-model") else {
        return;
    };
    let labels = iris_labels(tmp.path());

    // Two outputs, one from a Softmax inside the function library: that one is chosen.
    let probs = tmp.path().join("probs");
    let report = edit(path_str(&src), path_str(&labels), &[], &probs);
    assert!(
        report.contains("output 'probabilities' (3 classes)"),
        "{report}"
    );

    // The logits are not a softmax: refused without --apply-softmax, nothing written.
    let refused = tmp.path().join("refused");
    let err = refusal(&[
        path_str(&src),
        "--labels",
        path_str(&labels),
        "--output",
        "logits",
        "--out",
        path_str(&refused),
    ]);
    assert!(
        err.contains("output 'logits' of signature 'serving_default' is not produced by a Softmax; if it holds logits pass --apply-softmax"),
        "{err}"
    );
    assert!(!refused.exists());

    let dst = tmp.path().join("logits");
    let report = edit(
        path_str(&src),
        path_str(&labels),
        &["--output", "logits", "--apply-softmax"],
        &dst,
    );
    assert!(report.contains("(3 classes, Softmax added)"), "{report}");
    let expected = ["--expected", "fixtures/iris_tf1/expected.json"];
    for (model, output, extra) in [
        (&dst, "logits", &["--softmax"][..]),
        (&probs, "probabilities", &[]),
    ] {
        let args = [&expected[..], extra].concat();
        let summary = check_with_tensorflow(&src, model, output, path_str(&labels), "iris", &args)
            .expect("python found above");
        assert_eq!(summary["loaded_top1"], summary["session_top1"], "{summary}");
    }
}

#[test]
fn uint8_image_inputs_take_the_decoded_pixels() {
    let Some((tmp, src)) = python_model("--make-uint8-image-model") else {
        return;
    };
    let labels = "fixtures/digits/labels.txt";

    let refused = tmp.path().join("refused");
    let err = refusal(&[
        path_str(&src),
        "--labels",
        labels,
        "--feature",
        "x=image",
        "--image-scale",
        "255",
        "--out",
        path_str(&refused),
    ]);
    assert!(
        err.contains("DT_UINT8 inputs take the pixels as decoded"),
        "{err}"
    );
    assert!(!refused.exists());

    let dst = tmp.path().join("classify");
    let report = edit(path_str(&src), labels, &["--feature", "x=image"], &dst);
    assert!(
        report.contains("feature 'x' (image, [28, 28, 1]) -> input 'x' DT_UINT8"),
        "{report}"
    );
    assert_additive_edit(&src, &dst, "classify", &[]);
    let summary = check_with_tensorflow(
        &src,
        &dst,
        "probabilities",
        labels,
        "image",
        &["--pixels", "uint8", "--images", "fixtures/digits/images"],
    )
    .expect("python found above");
    assert_eq!(summary["loaded_top1"], summary["session_top1"], "{summary}");
}

#[test]
fn several_inputs_become_several_features_with_casts() {
    let Some((tmp, src)) = python_model("--make-two-input-model") else {
        return;
    };
    let labels = iris_labels(tmp.path());
    let dst = tmp.path().join("classify");
    // Kinds follow the dtypes: DT_INT32 is read from an int64 feature and cast.
    let report = edit(path_str(&src), path_str(&labels), &[], &dst);
    assert!(
        report.contains("feature 'count' (int64, [1]) -> input 'count' DT_INT32"),
        "{report}"
    );
    assert!(
        report.contains("feature 'size' (float, [2]) -> input 'size' DT_FLOAT"),
        "{report}"
    );
    assert_additive_edit(&src, &dst, "classify", &[]);
    let summary =
        check_with_tensorflow(&src, &dst, "probabilities", path_str(&labels), "multi", &[])
            .expect("python found above");
    assert_eq!(summary["rows"], 8);
    assert_eq!(summary["loaded_top1"], summary["session_top1"], "{summary}");
}

#[test]
fn make_default_keeps_the_old_default_under_another_key() {
    let tmp = common::tempdir();
    let dst = tmp.path().join("m");
    let report = edit(
        "fixtures/digits/model",
        "fixtures/digits/labels.txt",
        &[
            "--feature",
            "x=image",
            "--make-default",
            "--rename-default-to",
            "probabilities",
        ],
        &dst,
    );
    assert!(
        report.contains("the previous 'serving_default' is now 'probabilities'"),
        "{report}"
    );
    let doc = common::run_json(&["inspect", path_str(&dst), "--json"]);
    let old = common::run_json(&["inspect", "fixtures/digits/model", "--json"]);
    let default = signature(&doc, "serving_default").expect("default");
    assert_eq!(default["method_name"], "tensorflow/serving/classify");
    assert_eq!(default["endpoints"][0], "classify");
    assert_eq!(
        signature(&doc, "classify").map(|s| &s["outputs"]),
        Some(&default["outputs"])
    );
    let moved = signature(&doc, "probabilities").expect("moved default");
    let original = signature(&old, "serving_default").expect("original default");
    assert_eq!(moved["inputs"], original["inputs"]);
    assert_eq!(moved["outputs"], original["outputs"]);
    assert_eq!(moved["method_name"], original["method_name"]);

    let Some(summary) = check_with_tensorflow(
        Path::new("fixtures/digits/model"),
        &dst,
        "output_0",
        "fixtures/digits/labels.txt",
        "image",
        &[
            "--key",
            "serving_default",
            "--renamed-default",
            "probabilities",
            "--images",
            "fixtures/digits/images",
        ],
    ) else {
        return;
    };
    assert_eq!(
        summary["loaded_signatures"],
        serde_json::json!(["classify", "probabilities", "serve", "serving_default"])
    );
    assert_eq!(summary["loaded_top1"], summary["session_top1"], "{summary}");
}

#[test]
fn force_replaces_an_existing_key_and_destination() {
    let tmp = common::tempdir();
    let labels = iris_labels(tmp.path());
    let dst = tmp.path().join("iris");
    // An earlier edit is in the way.
    add_classify(&[
        "fixtures/iris_tf1",
        "--signature",
        "predict",
        "--labels",
        path_str(&labels),
        "--name",
        "earlier",
        "--out",
        path_str(&dst),
    ]);
    std::fs::write(dst.join("old.txt"), "old").expect("write");
    let report = add_classify(&[
        "fixtures/iris_tf1",
        "--signature",
        "predict",
        "--labels",
        path_str(&labels),
        "--top-k",
        "2",
        "--force",
        "--json",
        "--out",
        path_str(&dst),
    ]);
    let report: Value = serde_json::from_str(&report).expect("JSON report");
    assert_eq!(report["keys"], serde_json::json!(["classify"]));
    assert_eq!(report["wrapped_signature"], "predict");
    assert_eq!(report["output"], "probabilities");
    assert_eq!(
        (report["classes"].as_u64(), report["top_k"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(report["features"][0]["kind"], "float");
    assert_eq!(report["features"][0]["shape"], serde_json::json!([4]));
    // A TF1 model: every loader reads signature_def, there is no object graph to extend.
    assert_eq!(report["object_graph"]["status"], "not_tf2");
    assert!(!dst.join("old.txt").exists(), "old destination kept");
    assert_additive_edit(
        &common::fixture("iris_tf1"),
        &dst,
        "classify",
        &["classify"],
    );
    let doc = common::run_json(&["inspect", path_str(&dst), "--json"]);
    let sig = signature(&doc, "classify").expect("classify");
    assert_eq!(sig["outputs"][0]["shape"], serde_json::json!([-1, 2]));
    assert_eq!(sig["inputs"][0]["name"], "classify/inputs:0");
    // The other signatures still point at the original graph.
    let old = common::run_json(&["inspect", "fixtures/iris_tf1", "--json"]);
    for key in ["predict", "regress", "serving_default"] {
        assert_eq!(signature(&doc, key), signature(&old, key), "{key}");
    }
}

/// One bad invocation: the message it must print.
struct Bad {
    args: Vec<String>,
    message: &'static str,
}

fn bad(args: &[&str], message: &'static str) -> Bad {
    Bad {
        args: args.iter().map(|s| s.to_string()).collect(),
        message,
    }
}

#[test]
fn every_bad_input_is_refused_without_writing_anything() {
    let tmp = common::tempdir();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.to_str().expect("utf-8").to_owned()
    };
    let empty = write("empty.txt", "\n");
    let dup = write("dup.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\na\n");
    let short = write("short.txt", "a\nb\nc\n");
    let blank = write("blank.txt", "a\nb\n\nd\ne\nf\ng\nh\ni\nj\n");
    let one = write("one.txt", "virginica\n");
    let iris = write("iris.txt", "setosa\nversicolor\nvirginica\n");
    let digits = "fixtures/digits/model";
    let labels = "fixtures/digits/labels.txt";
    let cases = [
        bad(
            &[digits, "--labels", labels, "--signature", "nope"],
            "no signature 'nope' in 'fixtures/digits/model' (available: 'serve', 'serving_default'); pick one with --signature",
        ),
        bad(
            &[digits, "--labels", labels, "--output", "probs"],
            "signature 'serving_default' has no output 'probs' (outputs: 'output_0'); pick one with --output",
        ),
        bad(
            &["fixtures/half_plus_two/1", "--labels", &one],
            "output 'y' of signature 'serving_default' has shape (-1); it must be rank 2, (-1, classes), with a known number of classes",
        ),
        bad(
            &["fixtures/iris_tf1", "--signature", "regress", "--labels", &one, "--name", "c2"],
            "output 'outputs' of signature 'regress' is not produced by a Softmax; if it holds logits pass --apply-softmax",
        ),
        bad(
            &[digits, "--labels", labels, "--apply-softmax"],
            "output 'output_0' of signature 'serving_default' already comes from a Softmax; drop --apply-softmax",
        ),
        bad(
            &["fixtures/vocab_assets", "--labels", &one],
            "output 'ids' of signature 'serving_default' is DT_INT64; class scores must be a floating-point tensor",
        ),
        bad(
            &[digits, "--labels", &empty],
            "is empty; write one class name per line",
        ),
        bad(
            &[digits, "--labels", &dup],
            "'a' appears on lines 1 and 10; labels must be unique",
        ),
        bad(&[digits, "--labels", &blank], "line 3 is empty"),
        bad(
            &[digits, "--labels", &short],
            "has 3 labels but output 'output_0' has 10 classes; give one label per class",
        ),
        bad(
            &[digits, "--labels", "no/such/labels.txt"],
            "labels file 'no/such/labels.txt': cannot read it",
        ),
        bad(
            &[digits, "--labels-from-asset", "labels.txt"],
            "labels asset 'labels.txt': no such file in the model's assets/ (available: none)",
        ),
        bad(
            &[digits, "--labels", labels, "--feature", "x=int64"],
            "input 'x' is DT_FLOAT, which a 'int64' feature cannot produce (use --feature x=float)",
        ),
        bad(
            &[digits, "--labels", labels, "--feature", "x=bytes"],
            "input 'x' is DT_FLOAT, which a 'bytes' feature cannot produce (use --feature x=float)",
        ),
        bad(
            &[digits, "--labels", labels, "--feature", "pixels=image"],
            "--feature names input 'pixels', but signature 'serving_default' has no such input (inputs: 'x')",
        ),
        bad(
            &["fixtures/iris_tf1", "--signature", "predict", "--labels", &iris, "--name", "c2", "--feature", "x=image"],
            "input 'x' has shape (-1, 4): an image feature needs an input shaped (-1, height, width, channels)",
        ),
        bad(
            &[digits, "--labels", labels, "--image-scale", "255"],
            "--image-scale applies to image features of DT_FLOAT inputs only",
        ),
        bad(
            &[digits, "--labels", labels, "--top-k", "11"],
            "--top-k 11 is out of range: the model has 10 classes (use 1 to 10)",
        ),
        bad(
            &[digits, "--labels", labels, "--top-k", "0"],
            "--top-k 0 is out of range",
        ),
        bad(
            &["fixtures/iris_tf1", "--signature", "predict", "--labels", &iris],
            "signature 'classify' already exists in 'fixtures/iris_tf1'; pass --name KEY to add the classify signature under another key, or --force to replace it",
        ),
        bad(
            &[digits, "--labels", labels, "--make-default", "--rename-default-to", "classify"],
            "--rename-default-to must differ from the new signature's key 'classify'",
        ),
        bad(
            &[digits, "--labels", labels, "--name", "__saved_model_init_op"],
            "'__saved_model_init_op' is reserved for TensorFlow's own use",
        ),
        bad(
            &[digits, "--labels", labels, "--make-default", "--rename-default-to", "serve"],
            "signature 'serve' already exists",
        ),
        bad(
            &["fixtures/no_such_model", "--labels", labels],
            "'fixtures/no_such_model' does not exist",
        ),
        bad(
            &["fixtures/broken/truncated", "--labels", labels],
            "'fixtures/broken/truncated/saved_model.pb' is truncated or corrupt",
        ),
        bad(
            &[digits, "--labels", labels, "--tag-set", "serve,gpu"],
            "no meta graph with tag-set 'serve,gpu' in 'fixtures/digits/model' (available: 'serve')",
        ),
        bad(
            &[digits, "--labels", labels, "--feature", "x=float", "--feature", "x=image"],
            "input 'x' is given twice with --feature",
        ),
    ];
    let digits_before = snapshot(&common::fixture("digits/model"));
    let iris_before = snapshot(&common::fixture("iris_tf1"));
    for (i, case) in cases.iter().enumerate() {
        let dst = tmp.path().join(format!("out{i}"));
        let mut argv: Vec<&str> = case.args.iter().map(String::as_str).collect();
        argv.extend(["--out", path_str(&dst)]);
        let err = refusal(&argv);
        assert!(err.starts_with("smtool: error: "), "{argv:?}: {err}");
        assert!(
            err.contains(case.message),
            "{argv:?}:\n  got  {err}\n  want {}",
            case.message
        );
        assert!(!dst.exists(), "{argv:?} created {}", dst.display());
    }
    assert_eq!(digits_before, snapshot(&common::fixture("digits/model")));
    assert_eq!(iris_before, snapshot(&common::fixture("iris_tf1")));
    // Nothing but the label files and no temporary directories were left behind.
    let left: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".txt"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn existing_destination_is_kept_unless_it_is_a_model_and_forced() {
    let tmp = common::tempdir();
    let dst = tmp.path().join("taken");
    std::fs::create_dir_all(&dst).expect("mkdir");
    std::fs::write(dst.join("precious.txt"), "user data").expect("write");
    let err = refusal(&[
        "fixtures/digits/model",
        "--labels",
        "fixtures/digits/labels.txt",
        "--out",
        path_str(&dst),
    ]);
    assert!(
        err.contains(&format!(
            "'{}' already exists; choose another --out or pass --force to replace it",
            dst.display()
        )),
        "{err}"
    );
    assert_eq!(snapshot(&dst).len(), 1);
    assert_eq!(
        std::fs::read_to_string(dst.join("precious.txt")).expect("kept"),
        "user data"
    );
    // --force replaces an earlier SavedModel, never a directory of something else.
    let err = refusal(&[
        "fixtures/digits/model",
        "--labels",
        "fixtures/digits/labels.txt",
        "--force",
        "--out",
        path_str(&dst),
    ]);
    assert!(
        err.contains("exists and is not a SavedModel directory; --force only replaces a SavedModel or an empty directory"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dst.join("precious.txt")).expect("kept"),
        "user data"
    );
}

#[test]
fn destination_in_or_around_the_source_is_refused_even_with_force() {
    let tmp = common::tempdir();
    let src = tmp.path().join("model");
    common::copy_dir(&common::fixture("digits/model"), &src);
    let before = snapshot(&src);
    // --out is the model, inside it, or a directory holding it.
    for (dst, message) in [
        (src.clone(), "is the source model or inside it"),
        (src.join("edited"), "is the source model or inside it"),
        (tmp.path().to_path_buf(), "contains the source model"),
    ] {
        let err = refusal(&[
            path_str(&src),
            "--labels",
            "fixtures/digits/labels.txt",
            "--force",
            "--out",
            path_str(&dst),
        ]);
        assert!(err.contains(message), "{err}");
    }
    assert_eq!(before, snapshot(&src));
}

/// A model base path in a fresh temporary directory: `versions` maps each version directory name
/// to the fixture model copied there.
fn base_path(tmp: &Path, name: &str, versions: &[(&str, &str)]) -> PathBuf {
    let base = tmp.join(name);
    std::fs::create_dir_all(&base).expect("mkdir base");
    for (version, fixture) in versions {
        common::copy_dir(&common::fixture(fixture), &base.join(version));
    }
    base
}

/// The names directly under `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// TensorFlow labels the digit test images through the `classify` signature that `dst` adds to
/// the digits model `src` (with `--feature x=image`); returns the check's summary, `None` when
/// skipping.
fn check_digits_images(src: &Path, dst: &Path) -> Option<Value> {
    let summary = check_with_tensorflow(
        src,
        dst,
        "output_0",
        "fixtures/digits/labels.txt",
        "image",
        &["--images", "fixtures/digits/images"],
    )?;
    let rows = summary["rows"].as_u64().expect("rows");
    let correct = summary["correct"].as_u64().expect("correct");
    // The 13 test images, and each again at twice the size.
    assert_eq!(rows, 26);
    assert!(
        correct >= 22,
        "only {correct} of {rows} images labelled correctly: {summary}"
    );
    Some(summary)
}

#[test]
fn base_path_edits_its_latest_version_or_the_one_named() {
    let tmp = common::tempdir();
    // Version 2 is not a softmax model, so only an edit of version 1 succeeds.
    let base = base_path(
        tmp.path(),
        "digits",
        &[("1", "digits/model"), ("2", "half_plus_two/1")],
    );
    let before = snapshot(&base);
    let labels = "fixtures/digits/labels.txt";
    let dst = tmp.path().join("out");

    // By default the latest version is edited, as TF Serving serves it.
    let err = refusal(&[path_str(&base), "--labels", labels, "--out", path_str(&dst)]);
    assert!(
        err.contains("output 'y' of signature 'serving_default' has shape (-1)"),
        "{err}"
    );
    assert!(!dst.exists());

    let report = add_classify(&[
        path_str(&base),
        "--version",
        "1",
        "--labels",
        labels,
        "--feature",
        "x=image",
        "--out",
        path_str(&dst),
    ]);
    assert!(report.contains("edited from version 1"), "{report}");
    assert_eq!(before, snapshot(&base), "the base path changed");
    assert_additive_edit(&base.join("1"), &dst, "classify", &[]);
    let doc = common::run_json(&["inspect", path_str(&dst), "--json"]);
    assert_eq!(
        signature(&doc, "classify").expect("classify")["method_name"],
        "tensorflow/serving/classify"
    );

    check_digits_images(&base.join("1"), &dst);
}

#[test]
fn as_next_version_adds_a_version_and_leaves_the_others_alone() {
    let tmp = common::tempdir();
    let base = base_path(tmp.path(), "digits", &[("1", "digits/model")]);
    let labels = "fixtures/digits/labels.txt";
    let report = add_classify(&[
        path_str(&base),
        "--labels",
        labels,
        "--feature",
        "x=image",
        "--as-next-version",
    ]);
    assert!(
        report.contains("new version 2, edited from version 1"),
        "{report}"
    );
    assert_eq!(entries(&base), ["1", "2"], "no temporary directory is left");

    // A second run reads version 2 (now the latest) and adds version 3 beside it; with --force
    // it replaces the classify key, but neither existing version.
    let v1 = snapshot(&base.join("1"));
    let v2 = snapshot(&base.join("2"));
    let report = add_classify(&[
        path_str(&base),
        "--labels",
        labels,
        "--name",
        "classify",
        "--force",
        "--as-next-version",
    ]);
    assert!(
        report.contains("new version 3, edited from version 2"),
        "{report}"
    );
    assert_eq!(entries(&base), ["1", "2", "3"]);
    assert_eq!(v1, snapshot(&base.join("1")), "version 1 changed");
    assert_eq!(v2, snapshot(&base.join("2")), "version 2 changed");
    assert_additive_edit(&base.join("2"), &base.join("3"), "classify", &["classify"]);

    // `--version` picks the source; the new version still follows the latest.
    let report: Value = serde_json::from_str(&add_classify(&[
        path_str(&base),
        "--version",
        "1",
        "--labels",
        labels,
        "--feature",
        "x=image",
        "--as-next-version",
        "--json",
    ]))
    .expect("JSON report");
    assert_eq!(report["source_version"], 1, "{report}");
    assert_eq!(report["new_version"], 4, "{report}");
    assert_eq!(report["dst"], path_str(&base.join("4")), "{report}");
    assert_eq!(entries(&base), ["1", "2", "3", "4"]);
    assert_eq!(v1, snapshot(&base.join("1")), "version 1 changed");
    assert_eq!(v2, snapshot(&base.join("2")), "version 2 changed");

    // What TF Serving would serve now is the new version, with the classify signature.
    let doc = common::run_json(&["inspect", path_str(&base), "--json"]);
    assert_eq!(doc["models"][0]["version"], 4, "{doc}");
    assert_eq!(
        signature(&doc, "classify").expect("classify")["method_name"],
        "tensorflow/serving/classify"
    );
    check_digits_images(&base.join("1"), &base.join("4"));
}

#[test]
fn base_path_problems_are_refused_naming_the_path() {
    let tmp = common::tempdir();
    let empty = base_path(tmp.path(), "empty", &[]);
    let unfinished = base_path(tmp.path(), "unfinished", &[("1", "digits/model")]);
    std::fs::create_dir(unfinished.join("2")).expect("mkdir");
    let taken = base_path(tmp.path(), "taken", &[("1", "digits/model")]);
    std::fs::write(taken.join("2"), "user data").expect("write");
    let last = base_path(
        tmp.path(),
        "last",
        &[("9223372036854775807", "digits/model")],
    );
    let model = tmp.path().join("model");
    common::copy_dir(&common::fixture("digits/model"), &model);
    let dst = tmp.path().join("out");
    let (p, d) = (
        |b: &PathBuf| b.to_str().expect("utf-8").to_owned(),
        path_str(&dst).to_owned(),
    );
    let labels = "fixtures/digits/labels.txt".to_owned();
    let next = "--as-next-version".to_owned();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![p(&empty), next.clone()],
            format!(
                "'{}' holds no numbered version directories and no SavedModel, so \
                 --as-next-version has no version to edit; put the model in '{}' first",
                empty.display(),
                empty.join("1").display()
            ),
        ),
        (
            vec![p(&empty), "--out".into(), d.clone()],
            format!(
                "'{}' holds no saved_model.pb or saved_model.pbtxt and no numbered version \
                 directories",
                empty.display()
            ),
        ),
        (
            vec![p(&unfinished), "--out".into(), d.clone()],
            format!(
                "version 2 of model base path '{}' ('{}') holds no saved_model.pb or \
                 saved_model.pbtxt; finish or remove that version, or pick another with \
                 --version N (available: '1', '2')",
                unfinished.display(),
                unfinished.join("2").display()
            ),
        ),
        (
            vec![p(&unfinished), "--version".into(), "7".into(), next.clone()],
            format!(
                "no version 7 in model base path '{}' (available: '1', '2')",
                unfinished.display()
            ),
        ),
        (
            vec![
                p(&model),
                "--version".into(),
                "1".into(),
                "--out".into(),
                d.clone(),
            ],
            format!(
                "'{}' is a single SavedModel, not a model base path with numbered versions; \
                 drop --version",
                model.display()
            ),
        ),
        (
            vec![p(&model), next.clone()],
            format!(
                "--as-next-version adds a version to a model base path, but '{}' is a \
                 SavedModel itself; pass the directory that holds its numbered versions, or \
                 write elsewhere with --out DST",
                model.display()
            ),
        ),
        (
            vec![p(&taken), next.clone(), "--force".into()],
            format!(
                "'{}' already exists, so version 2 cannot be added to '{}'; smtool never \
                 replaces anything in a base path",
                taken.join("2").display(),
                taken.display()
            ),
        ),
        (
            vec![p(&last), next.clone()],
            format!(
                "'{}' already has the largest possible version number 9223372036854775807",
                last.display()
            ),
        ),
        (
            vec![p(&taken), next.clone(), "--out".into(), d.clone()],
            "the argument '--as-next-version' cannot be used with '--out <DST>'".into(),
        ),
        (
            vec![p(&taken)],
            "the following required arguments were not provided:\n  --out <DST>".into(),
        ),
    ];
    let before = snapshot(tmp.path());
    for (args, message) in &cases {
        let mut argv = vec!["--labels", labels.as_str()];
        argv.extend(args.iter().map(String::as_str));
        let err = refusal(&argv);
        assert!(
            err.contains(message.as_str()),
            "{argv:?}:\n  got  {err}\n  want {message}"
        );
        // Nothing was written: not the destination, not a version, not a temporary directory.
        assert_eq!(before, snapshot(tmp.path()), "{argv:?} wrote something");
        assert!(!dst.exists(), "{argv:?} created {}", dst.display());
        for base in [&empty, &unfinished, &taken, &last] {
            assert!(
                entries(base).iter().all(|n| !n.starts_with('.')),
                "{argv:?} left {:?}",
                entries(base)
            );
        }
    }
    assert!(entries(&unfinished.join("2")).is_empty());
}

/// add-classify never brings a file from outside the model into the edited one: a variables or
/// asset file (or directory) that is a symlink leading out, or a labels asset that is one, stops
/// it before anything is written. Links within the model are followed as before.
#[test]
fn symlinks_leading_out_of_the_model_are_refused() {
    let tmp = common::tempdir();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("secret.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n").expect("write");
    let model = |name: &str| {
        let dir = tmp.path().join(name);
        common::copy_dir(&common::fixture("digits/model"), &dir);
        std::fs::create_dir_all(dir.join("assets")).expect("mkdir");
        dir
    };
    let file_link = model("file_link");
    std::os::unix::fs::symlink(
        outside.join("secret.txt"),
        file_link.join("assets/secret.txt"),
    )
    .expect("symlink");
    let dir_link = model("dir_link");
    std::os::unix::fs::symlink(&outside, dir_link.join("assets.extra")).expect("symlink");
    let shard = model("shard_link");
    let data = shard.join("variables/variables.data-00000-of-00001");
    std::fs::rename(&data, outside.join("shard")).expect("move");
    std::os::unix::fs::symlink("../../outside/shard", &data).expect("symlink");
    for (src, labels, needle) in [
        (
            &file_link,
            "fixtures/digits/labels.txt",
            "assets/secret.txt' is a symlink to",
        ),
        (
            &dir_link,
            "fixtures/digits/labels.txt",
            "assets.extra' is a symlink to",
        ),
        (
            &shard,
            "fixtures/digits/labels.txt",
            "variables.data-00000-of-00001' is a symlink to",
        ),
    ] {
        let dst = tmp.path().join("out");
        let err = refusal(&[
            path_str(src),
            "--labels",
            labels,
            "--feature",
            "x=float:pixels",
            "--out",
            path_str(&dst),
        ]);
        assert!(
            err.contains(needle) && err.contains("outside the model directory"),
            "{needle:?} not in {err}"
        );
        assert!(!dst.exists(), "nothing is written");
    }
    // A labels asset that leads out of the model is refused as such.
    let err = refusal(&[
        path_str(&file_link),
        "--labels-from-asset",
        "secret.txt",
        "--feature",
        "x=float:pixels",
        "--out",
        path_str(&tmp.path().join("out")),
    ]);
    assert!(
        err.contains("asset 'secret.txt'") && err.contains("outside the model directory"),
        "{err}"
    );
    // A link within the model is fine.
    let inside = model("inside_link");
    std::os::unix::fs::symlink("../variables/variables.index", inside.join("assets/index"))
        .expect("symlink");
    let dst = tmp.path().join("inside_out");
    edit(
        path_str(&inside),
        "fixtures/digits/labels.txt",
        &["--feature", "x=float:pixels"],
        &dst,
    );
    assert!(dst.join("assets/index").is_file());
}
