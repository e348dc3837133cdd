//! Integration tests for `smtool validate`: the real binary on the real fixtures, and on fixtures
//! edited with prost for rules no fixture triggers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use prost::Message;
use serde_json::Value;
use smtool::proto::tensorflow::serving as tfs;
use smtool::proto::tensorflow::{self as tf, tensor_info::Encoding};

const HEALTHY: [&str; 5] = [
    "fixtures/digits/model",
    "fixtures/iris_tf1",
    "fixtures/vocab_assets",
    "fixtures/half_plus_two",
    "fixtures/half_plus_two_pbtxt",
];

/// Runs `smtool validate --json ARGS`; returns the exit code and the parsed report.
fn validate(args: &[&str]) -> (i32, Value) {
    let mut full = vec!["validate", "--json"];
    full.extend_from_slice(args);
    let out = common::run(&full);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "smtool {full:?} could not run ({code}): {}",
        common::stderr(&out)
    );
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "smtool {full:?} printed invalid JSON: {e}\n{}",
            common::stdout(&out)
        )
    });
    (code, json)
}

fn findings(report: &Value) -> Vec<&Value> {
    report["models"]
        .as_array()
        .expect("models")
        .iter()
        .flat_map(|m| m["findings"].as_array().expect("findings"))
        .collect()
}

fn rules(report: &Value) -> Vec<String> {
    findings(report)
        .iter()
        .map(|f| f["rule"].as_str().expect("rule").to_owned())
        .collect()
}

/// The findings of one rule.
fn of_rule<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    findings(report)
        .into_iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

fn message(f: &Value) -> &str {
    f["message"].as_str().expect("message")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A copy of a fixture in a temporary directory (`<tmp>/model`).
fn copied(fixture: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = common::tempdir();
    let model = tmp.path().join("model");
    common::copy_dir(&common::fixture(fixture), &model);
    (tmp, model)
}

/// A copy of a fixture whose `saved_model.pb` was changed by `edit` (the now stale
/// `fingerprint.pb` is removed).
fn edited(fixture: &str, edit: impl FnOnce(&mut tf::SavedModel)) -> (tempfile::TempDir, PathBuf) {
    let (tmp, model) = copied(fixture);
    let pb = model.join("saved_model.pb");
    let mut sm = tf::SavedModel::decode(std::fs::read(&pb).expect("read pb").as_slice())
        .expect("fixture parses");
    edit(&mut sm);
    std::fs::write(&pb, sm.encode_to_vec()).expect("write pb");
    let _ = std::fs::remove_file(model.join("fingerprint.pb"));
    (tmp, model)
}

fn meta(sm: &mut tf::SavedModel) -> &mut tf::MetaGraphDef {
    &mut sm.meta_graphs[0]
}

fn sig<'a>(sm: &'a mut tf::SavedModel, key: &str) -> &'a mut tf::SignatureDef {
    meta(sm).signature_def.get_mut(key).expect("signature")
}

fn graph(sm: &mut tf::SavedModel) -> &mut tf::GraphDef {
    meta(sm).graph_def.as_mut().expect("graph")
}

fn shape(dims: &[i64]) -> Option<tf::TensorShapeProto> {
    Some(tf::TensorShapeProto {
        dim: dims
            .iter()
            .map(|&size| tf::tensor_shape_proto::Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    })
}

fn node(name: &str, op: &str, inputs: &[&str], dtype: Option<tf::DataType>) -> tf::NodeDef {
    let mut n = tf::NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    if let Some(d) = dtype {
        n.attr.insert(
            "dtype".into(),
            tf::AttrValue {
                value: Some(tf::attr_value::Value::Type(d as i32)),
            },
        );
    }
    n
}

fn assert_clean(report: &Value, what: &str) {
    assert!(
        findings(report).is_empty(),
        "{what}: expected no findings, got {:#?}",
        findings(report)
    );
    for m in report["models"].as_array().expect("models") {
        assert_eq!(m["status"], "pass", "{what}: {}", m["path"]);
    }
}

// ---- healthy and broken fixtures ---------------------------------------------------------

#[test]
fn healthy_fixtures_pass_clean_even_when_strict() {
    for fixture in HEALTHY {
        let (code, report) = validate(&[fixture, "--strict"]);
        assert_eq!(code, 0, "{fixture}: {report:#}");
        assert_clean(&report, fixture);
    }
    // The base path holds two versions, both validated.
    let (_, report) = validate(&["fixtures/half_plus_two"]);
    assert_eq!(report["summary"]["models"], 2);
}

#[test]
fn endpoints_are_reported_for_every_signature() {
    let (_, report) = validate(&["fixtures/iris_tf1"]);
    let sigs = report["models"][0]["signatures"].as_array().expect("sigs");
    let endpoints = |key: &str| -> Vec<&str> {
        sigs.iter().find(|s| s["key"] == key).expect(key)["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .map(|e| e.as_str().expect("str"))
            .collect()
    };
    assert_eq!(endpoints("classify"), ["classify", "predict"]);
    assert_eq!(endpoints("regress"), ["regress", "predict"]);
    assert_eq!(endpoints("predict"), ["predict"]);
}

#[test]
fn classify_float_input_breaks_the_method_rule() {
    let (code, report) = validate(&["fixtures/broken/classify_float_input"]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM101"]);
    let f = of_rule(&report, "SM101")[0];
    assert_eq!(f["signature"], "serving_default");
    assert_eq!(f["severity"], "error");
    for needle in [
        "tensorflow/serving/classify",
        "DT_FLOAT",
        "DT_STRING",
        ":predict",
    ] {
        assert!(message(f).contains(needle), "{needle} in {}", message(f));
    }
    let s = &report["models"][0]["signatures"][0];
    assert_eq!(s["valid"], false);
    assert_eq!(s["endpoints"], serde_json::json!(["predict"]));
}

#[test]
fn regress_two_outputs_breaks_the_regress_method_rule() {
    let (code, report) = validate(&["fixtures/broken/regress_two_outputs"]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM101"]);
    let m = message(of_rule(&report, "SM101")[0]);
    assert!(m.contains("tensorflow/serving/regress"), "{m}");
    assert!(m.contains("exactly one output, 'outputs'"), "{m}");
}

#[test]
fn missing_tensor_breaks_graph_binding() {
    let (code, report) = validate(&["fixtures/broken/missing_tensor"]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM301"]);
    let f = of_rule(&report, "SM301")[0];
    assert_eq!(f["signature"], "serving_default");
    assert!(message(f).contains("'does_not_exist:0'"), "{}", message(f));
    assert!(message(f).contains("no node 'does_not_exist'"));
}

#[test]
fn truncated_model_is_a_finding_and_the_run_goes_on() {
    let (code, report) = validate(&["fixtures/broken"]);
    assert_eq!(code, 1);
    assert_eq!(report["summary"]["models"], 6);
    let truncated = report["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["path"] == "fixtures/broken/truncated")
        .expect("truncated reported");
    assert_eq!(truncated["status"], "fail");
    let f = &truncated["findings"][0];
    assert_eq!(f["rule"], "SM400");
    assert!(
        message(f).contains("truncated or corrupt"),
        "{}",
        message(f)
    );
    assert!(message(f).contains("re-export"));
    // The other broken models are still checked, each by the rule meant for it.
    let by_model = |p: &str| -> Vec<String> {
        report["models"]
            .as_array()
            .expect("models")
            .iter()
            .find(|m| m["path"] == format!("fixtures/broken/{p}"))
            .expect(p)["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .map(|f| f["rule"].as_str().expect("rule").to_owned())
            .collect()
    };
    assert_eq!(by_model("classify_float_input"), ["SM101"]);
    assert_eq!(by_model("missing_tensor"), ["SM301"]);
    assert_eq!(by_model("regress_two_outputs"), ["SM101"]);
    assert_eq!(by_model("no_saved_model"), ["SM400"]);
    assert_eq!(by_model("file_ops"), ["SM501", "SM501"]);
}

#[test]
fn model_without_graph_file_is_a_finding_walked_or_given() {
    for arg in ["fixtures/broken/no_saved_model", "fixtures/broken"] {
        let (code, report) = validate(&[arg]);
        assert_eq!(code, 1, "{arg}");
        let f = of_rule(&report, "SM400")
            .into_iter()
            .find(|f| f["model"] == "fixtures/broken/no_saved_model")
            .expect("finding for no_saved_model");
        assert!(
            message(f).contains("holds no saved_model.pb"),
            "{}",
            message(f)
        );
    }
}

#[test]
fn empty_version_beside_real_ones_is_a_finding() {
    let tmp = common::tempdir();
    common::copy_dir(&common::fixture("half_plus_two"), tmp.path());
    std::fs::create_dir(tmp.path().join("3")).expect("mkdir");
    // A directory that merely has assets/ is no SavedModel.
    std::fs::create_dir_all(tmp.path().join("notes/assets")).expect("mkdir");
    std::fs::write(tmp.path().join("notes/assets/logo.txt"), b"logo").expect("write");
    let (code, report) = validate(&[path_str(tmp.path())]);
    assert_eq!(code, 1);
    assert_eq!(report["summary"]["models"], 3);
    let f = of_rule(&report, "SM400")[0];
    assert!(f["model"].as_str().expect("model").ends_with("/3"));
}

#[test]
fn file_ops_are_unsafe_with_node_and_function() {
    let (code, report) = validate(&["fixtures/broken/file_ops"]);
    assert_eq!(code, 1);
    let found = of_rule(&report, "SM501");
    let nodes: Vec<&str> = found
        .iter()
        .map(|f| f["node"].as_str().expect("node"))
        .collect();
    assert_eq!(nodes, ["ReadFile", "WriteFile"]);
    for f in &found {
        let function = f["function"].as_str().expect("function");
        assert!(function.starts_with("__inference_serve_"), "{function}");
        assert!(message(f).contains(function));
        assert!(message(f).contains("'serving_default'"), "{}", message(f));
        assert!(message(f).contains("--allow-op"));
    }
    let (code, report) = validate(&[
        "fixtures/broken/file_ops",
        "--allow-op",
        "ReadFile",
        "--allow-op",
        "WriteFile",
    ]);
    assert_eq!(code, 0);
    assert_clean(&report, "file_ops with --allow-op");
}

// ---- errors that stop the run (exit 2) --------------------------------------------------

#[test]
fn unusable_paths_and_arguments_stop_the_run() {
    let tmp = common::tempdir();
    let empty = path_str(tmp.path()).to_owned();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["validate", "fixtures/does_not_exist"],
            vec!["'fixtures/does_not_exist' does not exist"],
        ),
        (
            vec!["validate", &empty],
            vec![
                "no SavedModel found under",
                "point at a SavedModel directory",
            ],
        ),
        (
            vec!["validate", "fixtures/digits/labels.txt"],
            vec!["not a SavedModel file"],
        ),
        (
            vec![
                "validate",
                "fixtures/iris_tf1",
                "--require-signature",
                "x=score",
            ],
            vec!["unknown method 'score'", "classify, regress or predict"],
        ),
        (
            vec![
                "validate",
                "fixtures/iris_tf1",
                "--require-signature",
                "=classify",
            ],
            vec!["names no signature"],
        ),
    ];
    for (args, needles) in cases {
        let out: Output = common::run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = common::stderr(&out);
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

// ---- method rules -----------------------------------------------------------------------

#[test]
fn unknown_method_name_is_a_warning() {
    let (_tmp, model) = edited("half_plus_two/1", |sm| {
        sig(sm, "serving_default").method_name = "custom/method".into();
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 0);
    assert_eq!(rules(&report), ["SM102"]);
    let f = of_rule(&report, "SM102")[0];
    assert_eq!(f["severity"], "warning");
    assert!(message(f).contains("'custom/method'"));
    let (code, _) = validate(&[path_str(&model), "--strict"]);
    assert_eq!(code, 1, "--strict fails on warnings");
}

#[test]
fn predict_method_that_is_classify_shaped_is_noted() {
    let (_tmp, model) = edited("iris_tf1", |sm| {
        sig(sm, "classify").method_name = "tensorflow/serving/predict".into();
    });
    let (code, report) = validate(&[path_str(&model), "--strict"]);
    assert_eq!(code, 0, "info never fails: {report:#}");
    assert_eq!(rules(&report), ["SM103"]);
    let f = of_rule(&report, "SM103")[0];
    assert_eq!(f["severity"], "info");
    assert_eq!(f["signature"], "classify");
    assert!(message(f).contains(":classify :predict"), "{}", message(f));
    // A predict signature that is not classify-shaped gets no such note.
    let (_, report) = validate(&["fixtures/digits/model"]);
    assert!(of_rule(&report, "SM103").is_empty());
}

#[test]
fn required_signatures() {
    let (code, report) = validate(&[
        "fixtures/iris_tf1",
        "--require-signature",
        "serving_default=classify",
        "--require-signature",
        "regress=regress",
        "--require-signature",
        "predict",
    ]);
    assert_eq!(code, 0, "{report:#}");
    assert_clean(&report, "iris requirements");

    let (code, report) = validate(&[
        "fixtures/digits/model",
        "--require-signature",
        "serving_default=classify",
        "--require-signature",
        "classify",
    ]);
    assert_eq!(code, 1);
    let found = of_rule(&report, "SM104");
    assert_eq!(found.len(), 2);
    let missing = found
        .iter()
        .find(|f| f["signature"].is_null())
        .expect("missing");
    assert!(message(missing).contains("requires signature 'classify'"));
    assert!(message(missing).contains("(available: 'serve', 'serving_default')"));
    let wrong = found
        .iter()
        .find(|f| f["signature"] == "serving_default")
        .expect("wrong endpoint");
    assert!(
        message(wrong).contains("requires :classify"),
        "{}",
        message(wrong)
    );
    assert!(message(wrong).contains("serves :predict"));
}

// ---- shapes -----------------------------------------------------------------------------

#[test]
fn classify_outputs_must_agree_on_the_class_count() {
    let (_tmp, model) = edited("iris_tf1", |sm| {
        sig(sm, "classify")
            .outputs
            .get_mut("scores")
            .expect("scores")
            .tensor_shape = shape(&[-1, 4]);
        sig(sm, "serving_default")
            .outputs
            .get_mut("classes")
            .expect("classes")
            .tensor_shape = shape(&[-1]);
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    let found = of_rule(&report, "SM201");
    assert_eq!(found.len(), 2, "{found:#?}");
    let by_sig = |k: &str| message(found.iter().find(|f| f["signature"] == k).expect(k));
    assert!(by_sig("classify").contains("'classes' has 3 classes but 'scores' has 4"));
    assert!(by_sig("serving_default").contains("rank 1"));
}

#[test]
fn regress_output_must_be_one_value_per_example() {
    let (_tmp, model) = edited("iris_tf1", |sm| {
        sig(sm, "regress")
            .outputs
            .get_mut("outputs")
            .expect("outputs")
            .tensor_shape = shape(&[-1, 3]);
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM202"]);
    assert!(message(of_rule(&report, "SM202")[0]).contains("(-1, 3)"));
}

#[test]
fn fixed_batch_dimension_is_a_warning() {
    let (_tmp, model) = edited("half_plus_two/1", |sm| {
        sig(sm, "serving_default")
            .inputs
            .get_mut("x")
            .expect("x")
            .tensor_shape = shape(&[8]);
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 0);
    assert_eq!(rules(&report), ["SM203"]);
    assert!(message(of_rule(&report, "SM203")[0]).contains("fixed at 8"));
    assert_eq!(validate(&[path_str(&model), "--strict"]).0, 1);
}

// ---- graph binding ----------------------------------------------------------------------

#[test]
fn output_index_beyond_the_node() {
    let (_tmp, model) = edited("half_plus_two/1", |sm| {
        let y = sig(sm, "serving_default").outputs.get_mut("y").expect("y");
        y.encoding = Some(Encoding::Name("StatefulPartitionedCall:3".into()));
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM302"]);
    let f = of_rule(&report, "SM302")[0];
    assert_eq!(f["node"], "StatefulPartitionedCall");
    assert!(message(f).contains("has 1 output(s)"), "{}", message(f));
}

#[test]
fn declared_dtype_must_match_the_node() {
    let (_tmp, model) = edited("half_plus_two/1", |sm| {
        sig(sm, "serving_default")
            .inputs
            .get_mut("x")
            .expect("x")
            .dtype = tf::DataType::DtInt32 as i32;
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM303"]);
    let m = message(of_rule(&report, "SM303")[0]);
    assert!(
        m.contains("declared DT_INT32") && m.contains("produces DT_FLOAT"),
        "{m}"
    );
}

#[test]
fn tensor_info_without_encoding_or_index() {
    let (_tmp, model) = edited("half_plus_two/1", |sm| {
        let s = sig(sm, "serving_default");
        s.inputs.get_mut("x").expect("x").encoding = None;
        s.outputs.get_mut("y").expect("y").encoding =
            Some(Encoding::Name("StatefulPartitionedCall:first".into()));
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    let found = of_rule(&report, "SM304");
    assert_eq!(found.len(), 2, "{report:#}");
}

#[test]
fn sparse_and_composite_tensors_are_bound_too() {
    let coo = |values: &str, indices: &str, dense_shape: &str| tf::TensorInfo {
        encoding: Some(Encoding::CooSparse(tf::tensor_info::CooSparse {
            values_tensor_name: values.into(),
            indices_tensor_name: indices.into(),
            dense_shape_tensor_name: dense_shape.into(),
        })),
        dtype: tf::DataType::DtFloat as i32,
        tensor_shape: None,
    };
    let add_nodes = |sm: &mut tf::SavedModel| {
        let g = graph(sm);
        g.node.push(node(
            "sp_indices",
            "Placeholder",
            &[],
            Some(tf::DataType::DtInt64),
        ));
        g.node.push(node(
            "sp_shape",
            "Placeholder",
            &[],
            Some(tf::DataType::DtInt64),
        ));
        g.node.push(node(
            "sp_values",
            "Placeholder",
            &[],
            Some(tf::DataType::DtFloat),
        ));
    };
    // Well bound: no finding.
    let (_ok, model) = edited("half_plus_two/1", |sm| {
        add_nodes(sm);
        sig(sm, "serving_default").inputs.insert(
            "sp".into(),
            coo("sp_values:0", "sp_indices:0", "sp_shape:0"),
        );
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 0, "{report:#}");
    assert_clean(&report, "well-bound sparse input");

    let (_bad, model) = edited("half_plus_two/1", |sm| {
        add_nodes(sm);
        let s = sig(sm, "serving_default");
        // indices missing, dense_shape has the wrong dtype.
        s.inputs
            .insert("sp".into(), coo("sp_values:0", "gone:0", "sp_values:0"));
        let component = |name: &str| tf::TensorInfo {
            encoding: Some(Encoding::Name(name.into())),
            dtype: tf::DataType::DtInt64 as i32,
            tensor_shape: None,
        };
        s.inputs.insert(
            "ragged".into(),
            tf::TensorInfo {
                encoding: Some(Encoding::CompositeTensor(
                    tf::tensor_info::CompositeTensor {
                        type_spec: None,
                        components: vec![component("sp_indices:0"), component("missing_part:0")],
                    },
                )),
                dtype: tf::DataType::DtInvalid as i32,
                tensor_shape: None,
            },
        );
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    let missing: Vec<&str> = of_rule(&report, "SM301")
        .iter()
        .map(|f| message(f))
        .collect();
    assert_eq!(missing.len(), 2, "{report:#}");
    assert!(missing
        .iter()
        .any(|m| m.contains("input 'sp' (sparse indices)")));
    assert!(missing
        .iter()
        .any(|m| m.contains("input 'ragged' (component 1)")));
    let dtype = of_rule(&report, "SM303");
    assert_eq!(dtype.len(), 1);
    assert!(message(dtype[0]).contains("(sparse dense_shape) is declared DT_INT64"));
}

// ---- SavedModel level -------------------------------------------------------------------

#[test]
fn missing_tag_set() {
    let (code, report) = validate(&["fixtures/digits/model", "--tag-set", "serve,gpu"]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM401"]);
    let m = message(of_rule(&report, "SM401")[0]);
    assert!(
        m.contains("tag-set 'serve,gpu'") && m.contains("(available: 'serve')"),
        "{m}"
    );

    let (_tmp, model) = edited("half_plus_two/1", |sm| {
        meta(sm).meta_info_def.as_mut().expect("meta info").tags = vec!["train".into()];
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM401"]);
    // Asking for the tag-set the model has passes.
    let (code, _) = validate(&[path_str(&model), "--tag-set", "train"]);
    assert_eq!(code, 0);
}

#[test]
fn missing_serving_default_is_a_warning() {
    let (_tmp, model) = edited("half_plus_two/1", |sm| {
        let m = meta(sm);
        let s = m.signature_def.remove("serving_default").expect("sig");
        m.signature_def.insert("half".into(), s);
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 0);
    assert_eq!(rules(&report), ["SM402"]);
    assert!(message(of_rule(&report, "SM402")[0]).contains("(available: 'half')"));
}

#[test]
fn reserved_key_misused() {
    let (_tmp, model) = edited("half_plus_two/1", |sm| {
        let x = sig(sm, "serving_default").inputs["x"].clone();
        sig(sm, "__saved_model_init_op")
            .inputs
            .insert("x".into(), x);
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM403"]);
    assert!(message(of_rule(&report, "SM403")[0]).contains("has 1 input(s)"));
}

#[test]
fn init_op_must_resolve_to_exactly_one_node() {
    let (_a, model) = edited("half_plus_two/1", |sm| {
        sig(sm, "__saved_model_init_op")
            .outputs
            .get_mut("__saved_model_init_op")
            .expect("init")
            .encoding = Some(Encoding::Name("no_such_init".into()));
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM404"]);
    assert!(message(of_rule(&report, "SM404")[0]).contains("no node 'no_such_init'"));

    let (_b, model) = edited("iris_tf1", |sm| {
        let c = meta(sm)
            .collection_def
            .get_mut("saved_model_main_op")
            .expect("main op");
        if let Some(tf::collection_def::Kind::NodeList(l)) = &mut c.kind {
            l.value.push("init_all_tables".into());
        }
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM404"]);
    assert!(message(of_rule(&report, "SM404")[0]).contains("names 2 ops"));
}

#[test]
fn variables_index_and_shards_must_be_there() {
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage, &str)> = vec![
        (
            "index removed",
            Box::new(|m: &Path| {
                std::fs::remove_file(m.join("variables/variables.index")).expect("rm")
            }),
            "variables/variables.index' is missing",
        ),
        (
            "index corrupt",
            Box::new(|m: &Path| {
                std::fs::write(m.join("variables/variables.index"), b"not an sstable")
                    .expect("write")
            }),
            "not a valid variables index",
        ),
        (
            "shard removed",
            Box::new(|m: &Path| {
                std::fs::remove_file(m.join("variables/variables.data-00000-of-00001")).expect("rm")
            }),
            "data shard",
        ),
        (
            "shard truncated",
            Box::new(|m: &Path| {
                std::fs::write(m.join("variables/variables.data-00000-of-00001"), b"")
                    .expect("write")
            }),
            "the checkpoint is truncated",
        ),
    ];
    for (what, damage, needle) in cases {
        let (_tmp, model) = copied("half_plus_two/1");
        damage(&model);
        let (code, report) = validate(&[path_str(&model)]);
        assert_eq!(code, 1, "{what}");
        assert_eq!(rules(&report), ["SM405"], "{what}");
        let m = message(of_rule(&report, "SM405")[0]);
        assert!(m.contains(needle), "{what}: {needle:?} not in {m}");
    }
}

#[test]
fn declared_assets_must_exist() {
    let (_tmp, model) = copied("vocab_assets");
    std::fs::remove_file(model.join("assets/vocab.txt")).expect("rm");
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM406"]);
    assert!(message(of_rule(&report, "SM406")[0]).contains("asset 'vocab.txt'"));
}

fn warmup_path(model: &Path) -> PathBuf {
    model.join("assets.extra/tf_serving_warmup_requests")
}

#[test]
fn warmup_file_must_be_well_formed() {
    // A flipped data byte fails the record's CRC32C.
    let (_a, model) = copied("vocab_assets");
    let mut bytes = std::fs::read(warmup_path(&model)).expect("read warmup");
    bytes[14] ^= 0x20;
    std::fs::write(warmup_path(&model), &bytes).expect("write");
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM407"]);
    assert!(message(of_rule(&report, "SM407")[0]).contains("fails its data CRC32C check"));

    // Well-formed records that are not PredictionLogs, or ask for a signature the model lacks.
    let not_a_log = b"\xff\xff\xff".to_vec();
    let wrong_sig = tfs::PredictionLog {
        log_metadata: None,
        log_type: Some(tfs::prediction_log::LogType::PredictLog(tfs::PredictLog {
            request: Some(tfs::PredictRequest {
                model_spec: Some(tfs::ModelSpec {
                    name: "vocab".into(),
                    signature_name: "nope".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            response: None,
        })),
    }
    .encode_to_vec();
    for (record, needle) in [
        (not_a_log, "record 0 is not a PredictionLog"),
        (wrong_sig, "signature 'nope', which the model does not have"),
    ] {
        let (_b, model) = copied("vocab_assets");
        std::fs::write(
            warmup_path(&model),
            smtool::savedmodel::tfrecord::encode([record.as_slice()]),
        )
        .expect("write");
        let (code, report) = validate(&[path_str(&model)]);
        assert_eq!(code, 1, "{needle}");
        assert_eq!(rules(&report), ["SM407"]);
        let m = message(of_rule(&report, "SM407")[0]);
        assert!(m.contains(needle), "{needle:?} not in {m}");
    }
}

// ---- security ---------------------------------------------------------------------------

#[test]
fn unsafe_op_in_the_top_level_graph_outside_the_saver() {
    let (_tmp, model) = edited("iris_tf1", |sm| {
        let g = graph(sm);
        g.node.push(node("peek", "ReadFile", &["save/Const"], None));
        g.node.push(node("dump", "PrintV2", &["tf_example"], None));
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    let found = of_rule(&report, "SM501");
    assert_eq!(found.len(), 2, "{report:#}");
    for f in &found {
        assert!(f["function"].is_null());
        assert!(message(f).contains("in the top-level graph"));
        assert!(message(f).contains("not reachable from any signature"));
    }
    // The standard TF1 saver (SaveV2, RestoreV2, MergeV2Checkpoints under save/) is not reported.
    assert!(found
        .iter()
        .all(|f| !f["node"].as_str().unwrap_or("").starts_with("save/")));
}

#[test]
fn checkpoint_op_outside_the_saver_is_reported() {
    let (_tmp, model) = edited("iris_tf1", |sm| {
        let g = graph(sm);
        g.node.push(node(
            "exfiltrate",
            "SaveV2",
            &[
                "save/Const",
                "save/SaveV2/tensor_names",
                "save/SaveV2/shape_and_slices",
                "weights",
            ],
            None,
        ));
        // Reachable from a signature: its output is made to depend on it.
        let scores = g
            .node
            .iter_mut()
            .find(|n| n.name == "scores")
            .expect("scores");
        scores.input.push("^exfiltrate".into());
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    let found = of_rule(&report, "SM501");
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["node"], "exfiltrate");
    assert!(
        message(found[0]).contains("'classify', 'serving_default'"),
        "{}",
        message(found[0])
    );
}

#[test]
fn table_initialiser_must_read_a_declared_asset() {
    // vocab_assets passes (see healthy_fixtures_pass_clean_even_when_strict); without its
    // asset_file_def the same initialiser reads an arbitrary path.
    let (_tmp, model) = edited("vocab_assets", |sm| {
        meta(sm).asset_file_def.clear();
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    let found = of_rule(&report, "SM501");
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(
        found[0]["node"],
        "text_file_init/InitializeTableFromTextFileV2"
    );
    assert!(message(found[0]).contains("its file is not a declared asset"));
}

// ---- op registry ------------------------------------------------------------------------

#[test]
fn ops_tensorflow_does_not_register() {
    let (_tmp, model) = edited("half_plus_two/1", |sm| {
        let lib = graph(sm).library.as_mut().expect("library");
        let n = lib
            .function
            .iter_mut()
            .flat_map(|f| f.node_def.iter_mut())
            .find(|n| n.op == "AddV2")
            .expect("AddV2 node");
        n.op = "MyCustomAdd".into();
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM601"]);
    let f = of_rule(&report, "SM601")[0];
    assert!(f["function"]
        .as_str()
        .expect("function")
        .starts_with("__inference_"));
    assert!(message(f).contains("'MyCustomAdd'") && message(f).contains("TensorFlow 2.21"));
    let (code, _) = validate(&[path_str(&model), "--allow-op", "MyCustomAdd"]);
    assert_eq!(code, 0);
}

// ---- output formats ---------------------------------------------------------------------

#[test]
fn json_summary_counts_agree_with_the_findings() {
    let (code, report) = validate(&["fixtures"]);
    assert_eq!(code, 1);
    assert_eq!(report["schema_version"], 1);
    let s = &report["summary"];
    assert_eq!(s["models"], 13);
    assert_eq!(s["passed"], 7);
    assert_eq!(s["failed"], 6);
    let count = |sev: &str| {
        findings(&report)
            .iter()
            .filter(|f| f["severity"] == sev)
            .count()
    };
    assert_eq!(s["errors"], count("error"));
    assert_eq!(s["warnings"], count("warning"));
    for f in findings(&report) {
        for key in ["rule", "name", "severity", "family", "model", "message"] {
            assert!(f[key].is_string(), "{key} in {f}");
        }
    }
}

#[test]
fn text_report_groups_by_model_then_signature() {
    let out = common::run(&[
        "validate",
        "fixtures/broken/classify_float_input",
        "fixtures/iris_tf1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(common::stdout(&out));
}

#[test]
fn github_annotations() {
    let out = common::run(&[
        "validate",
        "--format",
        "github",
        "fixtures/broken",
        "fixtures/iris_tf1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = common::stdout(&out);
    let mut errors = 0;
    for line in text.lines().filter(|l| l.starts_with("::")) {
        // ::error file=F,title=T::MESSAGE
        let rest = line.strip_prefix("::").expect("prefix");
        let (head, message) = rest.split_once("::").expect("two parts");
        let (command, props) = head.split_once(' ').expect("properties");
        assert!(["error", "warning", "notice"].contains(&command), "{line}");
        let props: Vec<(&str, &str)> = props
            .split(',')
            .map(|p| p.split_once('=').expect("key=value"))
            .collect();
        let file = props.iter().find(|(k, _)| *k == "file").expect("file").1;
        let title = props.iter().find(|(k, _)| *k == "title").expect("title").1;
        assert!(title.starts_with("SM"), "{line}");
        assert!(!message.contains('\n'));
        assert!(common::root().join(file).exists(), "{file} exists");
        if command == "error" {
            errors += 1;
        }
        if title.starts_with("SM101") && message.contains("classify_float_input") {
            assert!(
                file.ends_with("classify_float_input/saved_model.pb"),
                "{file}"
            );
        }
    }
    assert_eq!(errors, 7, "{text}");
    assert!(text
        .lines()
        .last()
        .expect("summary")
        .contains("7 models, 1 passed, 6 failed"));
}

#[test]
fn junit_report() {
    let out = common::run(&[
        "validate",
        "--format",
        "junit",
        "fixtures/broken",
        "fixtures/iris_tf1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = common::stdout(&out);
    let doc = roxmltree::Document::parse(&text).expect("valid XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("42"), "7 models x 6 families");
    assert_eq!(root.attribute("failures"), Some("6"));
    let suite = |path: &str| {
        root.children()
            .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some(path))
            .unwrap_or_else(|| panic!("suite {path}"))
    };
    let iris = suite("fixtures/iris_tf1");
    assert_eq!(iris.attribute("failures"), Some("0"));
    assert_eq!(
        iris.descendants()
            .filter(|n| n.has_tag_name("failure"))
            .count(),
        0
    );
    let broken = suite("fixtures/broken/classify_float_input");
    let failure = broken
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("failure");
    assert_eq!(failure.attribute("type"), Some("SM101"));
    assert_eq!(
        failure.parent().and_then(|p| p.attribute("name")),
        Some("method")
    );
    assert!(failure.text().unwrap_or("").contains("DT_FLOAT"));
    let file_ops = suite("fixtures/broken/file_ops");
    let security = file_ops
        .children()
        .find(|n| n.attribute("name") == Some("security"))
        .expect("security case");
    let body = security
        .children()
        .find(|n| n.has_tag_name("failure"))
        .and_then(|f| f.text())
        .unwrap_or("");
    assert!(
        body.contains("'ReadFile'") && body.contains("'WriteFile'"),
        "{body}"
    );
}

// ---- agreement with TensorFlow ----------------------------------------------------------

/// What validate calls a valid classify/regress/predict signature is what TensorFlow's
/// `signature_def_utils.is_valid_signature` accepts, for every signature of every fixture.
#[test]
fn validity_agrees_with_tensorflow() {
    let Some(python) = common::reference_python() else {
        return;
    };
    // Variants of iris_tf1's signatures on both sides of each rule, besides the fixtures.
    type Edit = fn(&mut tf::SavedModel);
    let variants: [Edit; 7] = [
        |sm| sig(sm, "classify").method_name = "tensorflow/serving/predict".into(),
        |sm| {
            sig(sm, "regress")
                .inputs
                .get_mut("inputs")
                .expect("inputs")
                .dtype = 1
        },
        |sm| sig(sm, "predict").outputs.clear(),
        |sm| {
            let p = sig(sm, "predict").outputs["probabilities"].clone();
            sig(sm, "classify")
                .outputs
                .insert("probabilities".into(), p);
        },
        |sm| sig(sm, "predict").method_name = "custom/predict".into(),
        |sm| {
            sig(sm, "classify").outputs.remove("classes");
        },
        |sm| {
            let x = sig(sm, "predict").inputs.get_mut("x").expect("x");
            x.encoding = Some(Encoding::CooSparse(tf::tensor_info::CooSparse {
                values_tensor_name: "x:0".into(),
                indices_tensor_name: "x:0".into(),
                dense_shape_tensor_name: "x:0".into(),
            }));
        },
    ];
    let tmp = common::tempdir();
    let mut keep = Vec::new();
    let mut reports = Vec::new();
    for (i, edit) in variants.into_iter().enumerate() {
        let (dir, model) = edited("iris_tf1", edit);
        let out = common::run(&["validate", "--json", path_str(&model)]);
        let report = tmp.path().join(format!("variant{i}.json"));
        std::fs::write(&report, &out.stdout).expect("write report");
        reports.push(path_str(&report).to_owned());
        keep.push(dir);
    }
    let out = common::run(&["validate", "--json", "fixtures"]);
    let report = tmp.path().join("fixtures.json");
    std::fs::write(&report, &out.stdout).expect("write report");
    reports.push(path_str(&report).to_owned());
    let args: Vec<&str> = reports.iter().map(String::as_str).collect();
    let out = common::run_python(&python, "check_validate.py", &args);
    assert!(
        out.status.success(),
        "check_validate.py: {}\n{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    let summary = common::stdout(&out);
    assert!(summary.contains("agree"), "{summary}");
}

/// The embedded op registry is what TensorFlow 2.21 registers: its generator, run on the
/// reference TensorFlow, writes the committed file byte for byte.
#[test]
fn op_registry_matches_tensorflow() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let tmp = common::tempdir();
    let fresh = tmp.path().join("tf_op_registry.pb");
    let out = common::run_python(&python, "dump_op_registry.py", &[path_str(&fresh)]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let committed =
        std::fs::read(common::root().join("data/tf_op_registry.pb")).expect("committed registry");
    let fresh = std::fs::read(&fresh).expect("fresh registry");
    if committed == fresh {
        return;
    }
    // Name what changed, for whoever has to look at it.
    let ops = |bytes: &[u8]| -> std::collections::BTreeMap<String, _> {
        tf::OpList::decode(bytes)
            .map(|l| l.op)
            .unwrap_or_default()
            .into_iter()
            .map(|o| (o.name.clone(), o))
            .collect()
    };
    let (committed, fresh) = (ops(&committed), ops(&fresh));
    let changed: std::collections::BTreeSet<&String> = committed
        .keys()
        .chain(fresh.keys())
        .filter(|op| committed.get(*op) != fresh.get(*op))
        .collect();
    panic!(
        "data/tf_op_registry.pb is stale (ops that differ: {changed:?}): run python/dump_op_registry.py"
    );
}

/// The committed list of unsafe ops is what its generator derives from TensorFlow 2.21's op
/// registry.
#[test]
fn unsafe_op_list_matches_its_generator() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let tmp = common::tempdir();
    let fresh = tmp.path().join("unsafe_ops.txt");
    let out = common::run_python(&python, "classify_unsafe_ops.py", &[path_str(&fresh)]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let committed = std::fs::read_to_string(common::root().join("data/unsafe_ops.txt"))
        .expect("committed list");
    let fresh = std::fs::read_to_string(&fresh).expect("fresh list");
    assert!(
        committed == fresh,
        "data/unsafe_ops.txt is stale: run python/classify_unsafe_ops.py"
    );
}

/// Ops that open network connections (RPC, tf.data service) or change the file-system
/// configuration are reported like file ops, with what they do.
#[test]
fn network_and_file_system_configuration_ops_are_unsafe() {
    let (_tmp, model) = edited("half_plus_two/1", |sm| {
        graph(sm).node.extend([
            node("rpc", "RpcClient", &[], None),
            node("fs", "FileSystemSetConfiguration", &[], None),
            node("service", "DataServiceDatasetV4", &[], None),
        ]);
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    let found = of_rule(&report, "SM501");
    for (node, does) in [
        ("rpc", "opens network connections from the serving host"),
        (
            "fs",
            "changes the file-system configuration of the serving process",
        ),
        ("service", "opens network connections"),
    ] {
        let f = found
            .iter()
            .find(|f| f["node"] == node)
            .unwrap_or_else(|| panic!("{node}: {report:#}"));
        assert!(message(f).contains(does), "{node}: {}", message(f));
        assert!(
            message(f).contains("not reachable from any signature"),
            "{}",
            message(f)
        );
    }
}

/// TensorFlow's own standard exports (TF1 vocabulary tables read by the main op from an asset,
/// the TF1 saver, `simple_save`, TF2 control flow and asset tables), written fresh by TensorFlow
/// 2.21: no finding at all, even with --strict.
#[test]
fn tensorflow_standard_exports_pass_clean() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let tmp = common::tempdir();
    let out = common::run_python(&python, "make_validate_models.py", &[path_str(tmp.path())]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let (code, report) = validate(&[path_str(tmp.path()), "--strict"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["models"], 3);
    assert_clean(&report, "standard TensorFlow exports");
    // They hold what the security rule must tell apart from unsafe uses.
    let text: String = [
        "tf1_vocab_classifier",
        "tf1_simple_save",
        "tf2_control_flow",
    ]
    .iter()
    .map(|m| {
        let dir = tmp.path().join(m);
        common::run_json(&["inspect", "--all", "--json", path_str(&dir)]).to_string()
    })
    .collect();
    for op in [
        "InitializeTableFromTextFileV2",
        "SaveV2",
        "RestoreV2",
        "StatelessWhile",
        "\"If\"",
    ] {
        assert!(text.contains(op), "{op} in the exports");
    }
}

/// docs/rules.md documents every rule with its ID, name and severity.
#[test]
fn every_rule_is_documented() {
    let doc = std::fs::read_to_string(common::root().join("docs/rules.md")).expect("docs/rules.md");
    for rule in smtool::validate::Rule::ALL {
        let row = format!(
            "| {} | {} | {} |",
            rule.id(),
            rule.name(),
            rule.severity().name()
        );
        assert!(doc.contains(&row), "docs/rules.md lacks the row {row}");
    }
}

/// The output counts and dtypes that graph binding (SM302, SM303) derives from the op registry
/// snapshot are those TensorFlow gives every top-level node of every fixture.
#[test]
fn output_types_agree_with_tensorflow() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let mut claims = serde_json::Map::new();
    for fixture in [
        "digits/model/saved_model.pb",
        "iris_tf1/saved_model.pb",
        "vocab_assets/saved_model.pb",
        "half_plus_two/1/saved_model.pb",
        "half_plus_two_pbtxt/saved_model.pbtxt",
        "broken/classify_float_input/saved_model.pb",
        "broken/regress_two_outputs/saved_model.pb",
        "broken/file_ops/saved_model.pb",
    ] {
        let path = common::fixture(fixture);
        let dir = path.parent().expect("model dir");
        let model = smtool::savedmodel::SavedModelDir::open_at(dir, Some(&path)).expect("fixture");
        let meta = model.meta_graph(None).expect("serve meta graph");
        let graph = meta.graph_def.as_ref().expect("graph");
        let index = smtool::graph::GraphIndex::new(graph);
        let nodes: serde_json::Map<String, Value> = graph
            .node
            .iter()
            .map(|n| {
                let types = smtool::validate::op_registry::output_types(n, &index);
                (n.name.clone(), serde_json::json!(types))
            })
            .collect();
        claims.insert(path_str(&path).to_owned(), Value::Object(nodes));
    }
    let tmp = common::tempdir();
    let file = tmp.path().join("claims.json");
    std::fs::write(&file, Value::Object(claims).to_string()).expect("write claims");
    let out = common::run_python(&python, "check_output_types.py", &[path_str(&file)]);
    assert!(
        out.status.success(),
        "check_output_types.py: {}\n{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    let summary = common::stdout(&out);
    assert!(summary.contains("agree"), "{summary}");
    eprintln!("{summary}");
}

/// Index files a few bytes to a few hundred KiB long whose header, shared key prefixes, index
/// entries or snappy length claims would make a naive reader allocate or work far beyond their
/// size: each is a clear SM405 finding, and the run goes on.
#[test]
fn hostile_variables_index_files_are_findings() {
    use common::sstable::{self, Raw, Table};
    let long_key = vec![b'a'; 1 << 16];
    let mut shared = vec![
        Raw {
            shared: 0,
            unshared: b"",
            value: &[],
        },
        Raw {
            shared: 0,
            unshared: &long_key,
            value: &[],
        },
    ];
    shared.extend((0..20_000).map(|_| Raw {
        shared: 1 << 16,
        unshared: b"",
        value: &[],
    }));
    let header = prost::Message::encode_to_vec(&sstable::header(1));
    let one_block = sstable::plain_block(&[(b"", &header)]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge num_shards",
            sstable::index(&sstable::header(i32::MAX), &[]),
            "header names 2147483647 data shards but it records only 0 tensors",
        ),
        (
            "shared key prefixes",
            {
                let mut t = Table::default();
                let data = t.push(&sstable::block(&shared), 0);
                t.finish(&[data])
            },
            "expand to more than 64 times the file's size",
        ),
        (
            "index entries sharing a data block",
            {
                let mut t = Table::default();
                let data = t.push(&one_block, 0);
                t.finish(&vec![data; 10_000])
            },
            "overlaps an earlier one",
        ),
        (
            "snappy length claim",
            {
                let mut t = Table::default();
                // A varint of 0xFFFF_FFF0, then a literal that does not matter.
                let data = t.push(&[0xf0, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x61], 1);
                t.finish(&[data])
            },
            "claims 4294967280 bytes",
        ),
        (
            "block past the end",
            {
                let t = Table::default();
                t.finish(&[(u64::MAX - 2, 10)])
            },
            "past the end of the file",
        ),
    ];
    for (what, bytes, needle) in cases {
        let (_tmp, model) = copied("half_plus_two/1");
        std::fs::write(model.join("variables/variables.index"), &bytes).expect("write");
        let (code, report) = validate(&[path_str(&model)]);
        assert_eq!(code, 1, "{what}");
        assert_eq!(rules(&report), ["SM405"], "{what}: {report:#}");
        let m = message(of_rule(&report, "SM405")[0]);
        assert!(
            m.contains("not a valid variables index") && m.contains(needle),
            "{what}: {needle:?} not in {m}"
        );
    }
}

/// A TF2 export with predict signatures that take no input (like TF Serving's test model
/// `saved_model_counter`): TF Serving serves them, so each is a warning, not an error, and the
/// report's `valid` still says what TensorFlow's is_valid_signature says (false).
#[test]
fn predict_signatures_without_inputs_are_a_warning() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let tmp = common::tempdir();
    let model = tmp.path().join("counter");
    let out = common::run_python(&python, "make_counter_model.py", &[path_str(&model)]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(rules(&report), ["SM105"; 4], "{report:#}");
    let keys: Vec<&str> = of_rule(&report, "SM105")
        .iter()
        .map(|f| f["signature"].as_str().expect("signature"))
        .collect();
    assert_eq!(
        keys,
        [
            "get_counter",
            "incr_counter",
            "reset_counter",
            "serving_default"
        ]
    );
    assert!(message(of_rule(&report, "SM105")[0]).contains("TF Serving serves it"));
    let sigs = report["models"][0]["signatures"].as_array().expect("sigs");
    for s in sigs.iter().filter(|s| s["key"] != "__saved_model_init_op") {
        assert_eq!(s["endpoints"], serde_json::json!(["predict"]), "{s}");
        assert_eq!(s["valid"], s["key"] == "incr_counter_by", "{s}");
    }
    let (code, _) = validate(&[path_str(&model), "--strict"]);
    assert_eq!(code, 1);
    let file = tmp.path().join("report.json");
    std::fs::write(&file, report.to_string()).expect("write report");
    let out = common::run_python(&python, "check_validate.py", &[path_str(&file)]);
    assert!(
        out.status.success(),
        "check_validate.py: {}\n{}",
        common::stdout(&out),
        common::stderr(&out)
    );
}

/// Nesting deeper than protobuf allows, in text and binary graph files, is SM400 with the reason;
/// functions that call each other (by op name and through a func attr) and graph cycles are
/// walked once, and what sits in them is still found.
#[test]
fn deep_nesting_recursive_functions_and_cycles() {
    let tmp = common::tempdir();
    let deep_text = tmp.path().join("deep_text");
    std::fs::create_dir(&deep_text).expect("mkdir");
    let n = 100_000;
    let text = format!(
        "meta_graphs {{ meta_info_def {{ tags: \"serve\" }} signature_def {{ key: \"x\" value {{ \
         inputs {{ key: \"a\" value {{ {}name: \"x:0\"{} }} }} }} }} }}",
        "composite_tensor { components { ".repeat(n),
        " } }".repeat(n)
    );
    std::fs::write(deep_text.join("saved_model.pbtxt"), text).expect("write");
    let deep_binary = tmp.path().join("deep_binary");
    std::fs::create_dir(&deep_binary).expect("mkdir");
    let mut info = tf::TensorInfo {
        encoding: Some(Encoding::Name("x:0".into())),
        ..Default::default()
    };
    for _ in 0..2_000 {
        info = tf::TensorInfo {
            encoding: Some(Encoding::CompositeTensor(
                tf::tensor_info::CompositeTensor {
                    components: vec![info],
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
    }
    let mut sm = tf::SavedModel::default();
    let mut mg = tf::MetaGraphDef::default();
    let sig = tf::SignatureDef {
        inputs: [("a".to_owned(), info)].into(),
        ..Default::default()
    };
    mg.signature_def.insert("x".into(), sig);
    sm.meta_graphs.push(mg);
    std::fs::write(deep_binary.join("saved_model.pb"), sm.encode_to_vec()).expect("write");
    for (dir, needle) in [
        (&deep_text, "nest 200005 levels deep, more than the 100"),
        (&deep_binary, "recursion limit"),
    ] {
        let (code, report) = validate(&[path_str(dir)]);
        assert_eq!(code, 1);
        assert_eq!(rules(&report), ["SM400"], "{report:#}");
        let m = message(of_rule(&report, "SM400")[0]);
        assert!(
            m.contains(needle) && m.contains("corrupt"),
            "{needle:?} not in {m}"
        );
        let out = common::run(&["inspect", path_str(dir)]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            common::stderr(&out).contains(needle),
            "{}",
            common::stderr(&out)
        );
    }

    let func = |name: &str| tf::AttrValue {
        value: Some(tf::attr_value::Value::Func(tf::NameAttrList {
            name: name.into(),
            attr: Default::default(),
        })),
    };
    let (_tmp, model) = edited("broken/file_ops", |sm| {
        let g = graph(sm);
        let mut calls_b = node("calls_b", "rec_b", &[], None);
        calls_b.attr.insert("unused".into(), func("rec_a"));
        let mut calls_a = node("calls_a", "PartitionedCall", &[], None);
        calls_a.attr.insert("f".into(), func("rec_a"));
        let library = g.library.get_or_insert_with(Default::default);
        for (name, body) in [
            (
                "rec_a",
                vec![calls_b, node("read", "ReadFile", &["calls_b"], None)],
            ),
            ("rec_b", vec![calls_a]),
        ] {
            library.function.push(tf::FunctionDef {
                signature: Some(tf::OpDef {
                    name: name.into(),
                    ..Default::default()
                }),
                node_def: body,
                ..Default::default()
            });
        }
        let mut call = node("call_rec", "StatefulPartitionedCall", &["cycle_a"], None);
        call.attr.insert("f".into(), func("rec_a"));
        g.node.extend([
            node("cycle_a", "Identity", &["cycle_b"], None),
            node("cycle_b", "Identity", &["cycle_a:0", "^call_rec"], None),
            call,
            node(
                "table_init",
                "InitializeTableFromTextFileV2",
                &["t", "cycle_a"],
                None,
            ),
        ]);
        for n in &mut g.node {
            if n.op == "NoOp" {
                n.input.push("^table_init".into());
            }
        }
        let info = tf::TensorInfo {
            encoding: Some(Encoding::Name("cycle_b:0".into())),
            ..Default::default()
        };
        meta(sm).signature_def.insert(
            "cyclic".into(),
            tf::SignatureDef {
                inputs: [("x".to_owned(), info.clone())].into(),
                outputs: [("y".to_owned(), info)].into(),
                method_name: "tensorflow/serving/predict".into(),
                ..Default::default()
            },
        );
    });
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    let found = of_rule(&report, "SM501");
    let read = found
        .iter()
        .find(|f| f["node"] == "read")
        .unwrap_or_else(|| panic!("ReadFile in rec_a: {report:#}"));
    assert_eq!(read["function"], "rec_a");
    assert!(
        message(read).contains("reachable from signature(s) 'cyclic'"),
        "{}",
        message(read)
    );
    let init = found
        .iter()
        .find(|f| f["node"] == "table_init")
        .unwrap_or_else(|| panic!("table_init: {report:#}"));
    assert!(
        message(init).contains("its file is not a declared asset"),
        "{}",
        message(init)
    );
    let out = common::run(&["inspect", "--all", "--json", path_str(&model)]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

/// Asset names that are absolute or climb with `..` (SM502) and variables or asset files that
/// are symlinks leading out of the model (SM503) are security findings; links within the model
/// are not.
#[test]
fn paths_leading_out_of_the_model_are_security_findings() {
    for (name, why) in [
        ("../../../../etc/passwd", "climbs out of assets/ with '..'"),
        ("/etc/passwd", "is an absolute path"),
        ("sub/../../x.txt", "climbs out"),
    ] {
        let (_tmp, model) = edited("vocab_assets", |sm| {
            let mg = meta(sm);
            assert!(
                !mg.asset_file_def.is_empty(),
                "vocab_assets declares assets"
            );
            mg.asset_file_def[0].filename = name.into();
        });
        let (code, report) = validate(&[path_str(&model)]);
        assert_eq!(code, 1, "{name}");
        assert_eq!(rules(&report), ["SM502"], "{name}: {report:#}");
        let m = message(of_rule(&report, "SM502")[0]);
        assert!(m.contains(name) && m.contains(why), "{name}: {m}");
    }

    let (tmp, model) = copied("vocab_assets");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let vocab = std::fs::read_dir(model.join("assets"))
        .expect("assets")
        .next()
        .expect("an asset")
        .expect("entry")
        .path();
    let vocab_name = vocab.file_name().expect("name").to_owned();
    std::fs::rename(&vocab, outside.join(&vocab_name)).expect("move");
    std::os::unix::fs::symlink(outside.join(&vocab_name), &vocab).expect("symlink");
    let shard = model.join("variables/variables.data-00000-of-00001");
    std::fs::rename(&shard, outside.join("shard")).expect("move");
    std::os::unix::fs::symlink("../../outside/shard", &shard).expect("symlink");
    std::os::unix::fs::symlink("/nonexistent/file", model.join("assets/dangling")).expect("ln");
    std::fs::rename(model.join("assets.extra"), outside.join("extra")).expect("move");
    std::os::unix::fs::symlink(outside.join("extra"), model.join("assets.extra")).expect("ln");
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 1);
    assert_eq!(rules(&report), ["SM503"; 4], "{report:#}");
    let messages: Vec<&str> = of_rule(&report, "SM503").into_iter().map(message).collect();
    for (link, target) in [
        ("'assets.extra'", "outside/extra"),
        ("'assets/dangling'", "/nonexistent/file"),
        (
            &format!("'assets/{}'", vocab_name.to_string_lossy()),
            "outside",
        ),
        ("'variables/variables.data-00000-of-00001'", "outside/shard"),
    ] {
        assert!(
            messages
                .iter()
                .any(|m| m.contains(link) && m.contains(target) && m.contains("outside the model")),
            "{link} -> {target} not in {messages:#?}"
        );
    }

    // Links that stay inside the model are fine.
    let (_tmp, model) = copied("vocab_assets");
    std::os::unix::fs::symlink("../variables/variables.index", model.join("assets/index"))
        .expect("symlink");
    let (code, report) = validate(&[path_str(&model)]);
    assert_eq!(code, 0, "{report:#}");
    assert_clean(&report, "a symlink within the model");
}
