//! Integration tests for `smtool diff`: the real binary on pairs of models TensorFlow wrote
//! (python/make_diff_models.py), on the fixtures, on add-classify's edits, and on copies edited
//! with prost where TensorFlow 2.21 cannot write the case (an older writer, a custom op).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::edited_copy;

use serde_json::Value;

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// The model pairs TensorFlow writes, made once per test run; `None` (skip) without the
/// reference TensorFlow.
fn models() -> Option<&'static Path> {
    static MODELS: OnceLock<Option<PathBuf>> = OnceLock::new();
    MODELS
        .get_or_init(|| {
            let python = common::reference_python()?;
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("diff-models");
            let _ = std::fs::remove_dir_all(&dir);
            let out = common::run_python(&python, "make_diff_models.py", &[path_str(&dir)]);
            assert!(out.status.success(), "{}", common::stderr(&out));
            Some(dir)
        })
        .as_deref()
}

/// Runs `smtool diff --json ARGS`; the exit code and the parsed report.
fn diff(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["diff", "--json"];
    all.extend_from_slice(args);
    let out = common::run(&all);
    let code = out.status.code().expect("exit code");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "smtool {all:?} printed no JSON ({e}): {}{}",
            common::stdout(&out),
            common::stderr(&out)
        )
    });
    (code, report)
}

/// `smtool diff --json OLD NEW` on a case of make_diff_models.py.
fn diff_case(case: &str) -> Option<(i32, Value)> {
    let dir = models()?.join(case);
    Some(diff(&[
        path_str(&dir.join("old")),
        path_str(&dir.join("new")),
    ]))
}

fn changes(report: &Value) -> &Vec<Value> {
    report["changes"].as_array().expect("changes")
}

/// The changes of `kind` about `signature` (`None`: about no signature).
fn of<'a>(report: &'a Value, kind: &str, signature: Option<&str>) -> Vec<&'a Value> {
    changes(report)
        .iter()
        .filter(|c| c["kind"] == kind && c["signature"].as_str() == signature)
        .collect()
}

/// The one change of `kind` about `signature` and `item`.
fn one<'a>(
    report: &'a Value,
    kind: &str,
    signature: Option<&str>,
    item: Option<&str>,
) -> &'a Value {
    let found: Vec<_> = of(report, kind, signature)
        .into_iter()
        .filter(|c| c["item"].as_str() == item)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {kind} for {signature:?}/{item:?} in {:#}",
        report["changes"]
    );
    found[0]
}

fn message(c: &Value) -> &str {
    c["message"].as_str().expect("message")
}

fn grade(c: &Value) -> &str {
    c["grade"].as_str().expect("grade")
}

/// The summary agrees with the changes, and the exit code with the summary.
fn check_summary(code: i32, report: &Value) {
    let count = |g: &str| changes(report).iter().filter(|c| c["grade"] == g).count();
    assert_eq!(report["summary"]["breaking"], count("breaking"));
    assert_eq!(report["summary"]["compatible"], count("compatible"));
    assert_eq!(
        code,
        if count("breaking") > 0 { 1 } else { 0 },
        "{report:#}"
    );
}

#[test]
fn identical_re_exports_report_nothing() {
    // Versions 1 and 2 of half_plus_two differ only in a variable's value.
    let (code, report) = diff(&["fixtures/half_plus_two"]);
    assert_eq!((code, changes(&report).len()), (0, 0), "{report:#}");
    assert_eq!(report["old"]["version"], 1);
    assert_eq!(report["new"]["version"], 2);
    assert_eq!(report["new"]["tensorflow_version"], "2.21.0");
    let out = common::run(&["diff", "fixtures/digits/model", "fixtures/digits/model"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        common::stdout(&out).contains("no change to the serving contract"),
        "{}",
        common::stdout(&out)
    );
    // The same tf.Module exported twice: new function and tensor names, the same contract.
    let Some((code, report)) = diff_case("identical") else {
        return;
    };
    assert_eq!((code, changes(&report).len()), (0, 0), "{report:#}");
}

#[test]
fn signatures_removed_renamed_and_added() {
    let Some((code, r)) = diff_case("signatures") else {
        return;
    };
    check_summary(code, &r);
    let renamed = one(&r, "signature_renamed", Some("score"), None);
    assert_eq!(grade(renamed), "breaking");
    assert_eq!(
        (renamed["old"].as_str(), renamed["new"].as_str()),
        (Some("score"), Some("scoring"))
    );
    assert!(
        message(renamed).contains("requests for 'score' fail"),
        "{renamed}"
    );
    let removed = one(&r, "signature_removed", Some("legacy"), None);
    assert_eq!(grade(removed), "breaking");
    let added = one(&r, "signature_added", Some("extra"), None);
    assert_eq!(grade(added), "compatible");
    // 'scoring' is the rename target, not an addition; serving_default did not change.
    assert!(of(&r, "signature_added", Some("scoring")).is_empty());
    assert_eq!(changes(&r).len(), 3, "{r:#}");
    assert_eq!(code, 1);
}

#[test]
fn serving_default_switching_to_another_signature() {
    let Some((code, r)) = diff_case("default") else {
        return;
    };
    check_summary(code, &r);
    let c = one(&r, "default_changed", Some("serving_default"), None);
    assert_eq!(grade(c), "breaking");
    assert_eq!(
        (c["old"].as_str(), c["new"].as_str()),
        (Some("classify_like"), Some("predict"))
    );
    assert!(
        message(c).contains("requests that name no signature get a different one"),
        "{c}"
    );
    // One change for the switch, not a comparison of two unrelated signatures.
    assert!(
        of(&r, "input_removed", Some("serving_default")).is_empty(),
        "{r:#}"
    );
    assert_eq!(
        grade(one(&r, "signature_added", Some("predict"), None)),
        "compatible"
    );
}

#[test]
fn method_names_and_endpoints() {
    let Some((code, r)) = diff_case("methods") else {
        return;
    };
    check_summary(code, &r);
    let sig = Some("serving_default");
    let method = one(&r, "method_changed", sig, None);
    assert_eq!(grade(method), "breaking");
    assert_eq!(method["old"], "tensorflow/serving/classify");
    assert_eq!(method["new"], "tensorflow/serving/regress");
    let lost = one(&r, "endpoint_removed", sig, Some("classify"));
    assert_eq!(grade(lost), "breaking");
    assert!(
        message(lost).contains("no longer serves it under :classify")
            && message(lost).contains("has neither a 'classes' nor a 'scores' output"),
        "{lost}"
    );
    assert_eq!(
        grade(one(&r, "endpoint_added", sig, Some("regress"))),
        "compatible"
    );
    assert_eq!(
        grade(one(&r, "output_removed", sig, Some("scores"))),
        "breaking"
    );
    // One output before and after: REST answers stay bare values.
    assert_eq!(
        grade(one(&r, "output_added", sig, Some("outputs"))),
        "compatible"
    );
    // :predict serves both, so it is not reported.
    assert!(of(&r, "endpoint_removed", sig).len() == 1);
}

#[test]
fn inputs_added_removed_renamed_and_defaults() {
    let Some((code, r)) = diff_case("tensors") else {
        return;
    };
    check_summary(code, &r);
    let added = one(&r, "input_added", Some("added"), Some("w"));
    assert_eq!(grade(added), "breaking");
    assert!(message(added).contains("no default"), "{added}");
    // A TF2 default (a tensor default argument, the SignatureDef's `defaults`) lets gRPC Predict
    // leave the input out, but TF Serving's REST reader needs every input.
    let defaulted = one(&r, "input_added", Some("defaulted"), Some("scale"));
    assert_eq!(grade(defaulted), "breaking");
    assert!(
        message(defaulted).contains("has a default")
            && message(defaulted).contains("Missing named input"),
        "{defaulted}"
    );
    assert_eq!(
        grade(one(&r, "input_removed", Some("removed"), Some("w"))),
        "breaking"
    );
    let renamed = one(&r, "input_renamed", Some("renamed"), Some("x"));
    assert_eq!(grade(renamed), "breaking");
    assert_eq!(renamed["new"], "features");
    assert!(of(&r, "input_added", Some("renamed")).is_empty(), "{r:#}");
}

#[test]
fn dtypes_and_shapes() {
    let Some((code, r)) = diff_case("tensors") else {
        return;
    };
    check_summary(code, &r);
    let dtype = one(&r, "input_dtype", Some("dtypes"), Some("x"));
    assert_eq!(
        (grade(dtype), &dtype["old"], &dtype["new"]),
        (
            "breaking",
            &Value::from("DT_FLOAT"),
            &Value::from("DT_DOUBLE")
        )
    );
    assert_eq!(
        grade(one(&r, "output_dtype", Some("dtypes"), Some("y"))),
        "breaking"
    );
    for (sig, kind, item, want, old, new) in [
        (
            "narrowed",
            "input_shape",
            "x",
            "breaking",
            "(-1, -1)",
            "(-1, 28)",
        ),
        (
            "widened",
            "input_shape",
            "x",
            "compatible",
            "(-1, 4)",
            "(-1, -1)",
        ),
        (
            "rank",
            "input_shape",
            "x",
            "breaking",
            "(-1, 4)",
            "(-1, 2, 2)",
        ),
        (
            "out_narrowed",
            "output_shape",
            "y",
            "compatible",
            "(-1, -1)",
            "(-1, 10)",
        ),
        (
            "out_widened",
            "output_shape",
            "y",
            "breaking",
            "(-1, 10)",
            "(-1, -1)",
        ),
    ] {
        let c = one(&r, kind, Some(sig), Some(item));
        assert_eq!(grade(c), want, "{c}");
        assert_eq!(
            (c["old"].as_str(), c["new"].as_str()),
            (Some(old), Some(new)),
            "{c}"
        );
    }
    let narrowed = one(&r, "input_shape", Some("narrowed"), Some("x"));
    assert!(message(narrowed).contains("narrowed"), "{narrowed}");
    let rank = one(&r, "input_shape", Some("rank"), Some("x"));
    assert!(message(rank).contains("the rank changed"), "{rank}");
    // Signatures whose only changes are compatible report nothing breaking.
    for sig in ["widened", "out_narrowed"] {
        assert!(
            of(&r, "input_shape", Some(sig))
                .iter()
                .chain(of(&r, "output_shape", Some(sig)).iter())
                .all(|c| c["grade"] == "compatible"),
            "{sig}"
        );
    }
}

#[test]
fn outputs_removed_renamed_and_added() {
    let Some((code, r)) = diff_case("tensors") else {
        return;
    };
    check_summary(code, &r);
    let sig = Some("outputs");
    let renamed = one(&r, "output_renamed", sig, Some("b"));
    assert_eq!(
        (grade(renamed), renamed["new"].as_str()),
        ("breaking", Some("b_renamed"))
    );
    assert!(
        message(renamed).contains("clients that read it get nothing"),
        "{renamed}"
    );
    assert_eq!(grade(one(&r, "output_removed", sig, Some("c"))), "breaking");
    // Several outputs before: one more does not change the REST response's form.
    assert_eq!(grade(one(&r, "output_added", sig, Some("d"))), "compatible");
}

#[test]
fn a_second_output_changes_the_rest_response_form() {
    let Some(dir) = models() else {
        return;
    };
    let (code, r) = diff(&[path_str(&dir.join("base"))]);
    check_summary(code, &r);
    assert_eq!(
        (r["old"]["version"].as_i64(), r["new"]["version"].as_i64()),
        (Some(2), Some(3))
    );
    let c = one(
        &r,
        "output_added",
        Some("serving_default"),
        Some("y_doubled"),
    );
    assert_eq!(grade(c), "breaking");
    assert!(message(c).contains("objects keyed by output name"), "{c}");
    assert_eq!(code, 1);
}

#[test]
fn versions_of_a_base_path() {
    let Some(dir) = models() else {
        return;
    };
    let base = dir.join("base");
    let (code, r) = diff(&[path_str(&base), "--versions", "1,2"]);
    assert_eq!((code, changes(&r).len()), (0, 0), "{r:#}");
    assert_eq!(
        (r["old"]["version"].as_i64(), r["new"]["version"].as_i64()),
        (Some(1), Some(2))
    );
    // Backwards (a rollback from 3 to 1) loses the output.
    let (code, r) = diff(&[path_str(&base), "--versions", "3,1"]);
    assert_eq!(code, 1);
    assert_eq!(
        grade(one(
            &r,
            "output_removed",
            Some("serving_default"),
            Some("y_doubled")
        )),
        "breaking"
    );
    // A base path given as OLD or NEW stands for its latest version.
    let (code, r) = diff(&[path_str(&base.join("1")), path_str(&base)]);
    assert_eq!((code, r["new"]["version"].as_i64()), (1, Some(3)));
}

#[test]
fn classify_labels_held_as_a_graph_constant() {
    let Some((code, r)) = diff_case("labels") else {
        return;
    };
    check_summary(code, &r);
    let c = one(&r, "labels_changed", Some("changed"), Some("classes"));
    assert_eq!(grade(c), "breaking");
    assert_eq!(
        (c["old"].as_str(), c["new"].as_str()),
        (Some("a,b,c"), Some("a,b,d"))
    );
    assert!(message(c).contains("removed 'c', added 'd'"), "{c}");
    let c = one(&r, "labels_changed", Some("reordered"), Some("classes"));
    assert_eq!(grade(c), "compatible");
    assert!(message(c).contains("same in another order"), "{c}");

    // TF2: the constant is inside the functions the signature calls.
    let (code, r) = diff_case("labels_tf2").expect("models were made");
    check_summary(code, &r);
    let c = one(
        &r,
        "labels_changed",
        Some("serving_default"),
        Some("classes"),
    );
    assert_eq!(
        (c["old"].as_str(), c["new"].as_str()),
        (Some("a,b,c"), Some("a,b,e"))
    );
    assert_eq!(changes(&r).len(), 1, "{r:#}");
}

#[test]
fn labels_that_add_classify_wrote() {
    let tmp = common::tempdir();
    let labels = |name: &str, text: &str| {
        let file = tmp.path().join(name);
        std::fs::write(&file, text).expect("write labels");
        file
    };
    let ten = |last: &str| {
        let mut l: Vec<String> = (0..9).map(|i| format!("digit{i}")).collect();
        l.push(last.to_owned());
        l.join("\n")
    };
    let a = labels("a.txt", &ten("nine"));
    let b = labels("b.txt", &ten("NINE"));
    for (labels, out) in [(&a, "a"), (&b, "b")] {
        let out = tmp.path().join(out);
        let run = common::run(&[
            "add-classify",
            "fixtures/digits/model",
            "--labels",
            path_str(labels),
            "--feature",
            "x=image",
            "--out",
            path_str(&out),
        ]);
        assert!(run.status.success(), "{}", common::stderr(&run));
    }
    let (code, r) = diff(&[
        path_str(&tmp.path().join("a")),
        path_str(&tmp.path().join("b")),
    ]);
    check_summary(code, &r);
    let c = one(&r, "labels_changed", Some("classify"), Some("classes"));
    assert_eq!(grade(c), "breaking");
    assert!(message(c).contains("removed 'nine', added 'NINE'"), "{c}");
    assert_eq!(changes(&r).len(), 1, "{r:#}");

    // Adding the classify signature to the original: an addition only.
    let (code, r) = diff(&["fixtures/digits/model", path_str(&tmp.path().join("a"))]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        grade(one(&r, "signature_added", Some("classify"), None)),
        "compatible"
    );

    // --make-default: clients naming no signature get the classify one.
    let made_default = tmp.path().join("default");
    let run = common::run(&[
        "add-classify",
        "fixtures/digits/model",
        "--labels",
        path_str(&a),
        "--feature",
        "x=image",
        "--make-default",
        "--out",
        path_str(&made_default),
    ]);
    assert!(run.status.success(), "{}", common::stderr(&run));
    let (code, r) = diff(&["fixtures/digits/model", path_str(&made_default)]);
    check_summary(code, &r);
    let c = one(&r, "default_changed", Some("serving_default"), None);
    assert_eq!(grade(c), "breaking");
    assert!(
        message(c).contains("OLD's default is 'predict' in NEW"),
        "{c}"
    );
}

#[test]
fn ops_that_need_a_newer_tensorflow() {
    let Some(dir) = models() else {
        return;
    };
    let (old, new) = (dir.join("ops/old"), dir.join("ops/new"));
    // Both written by TensorFlow 2.21, which registers Cumsum: nothing to report.
    let (code, r) = diff(&[path_str(&old), path_str(&new)]);
    assert_eq!((code, changes(&r).len()), (0, 0), "{r:#}");

    // OLD written by an older TensorFlow.
    let tmp = common::tempdir();
    let older = tmp.path().join("older");
    edited_copy(&old, &older, |m| {
        m.meta_info_def
            .as_mut()
            .expect("meta info")
            .tensorflow_version = "2.15.0".into();
    });
    let (code, r) = diff(&[path_str(&older), path_str(&new)]);
    check_summary(code, &r);
    let c = one(&r, "op_needs_newer_tensorflow", None, Some("Cumsum"));
    assert_eq!(grade(c), "breaking");
    assert_eq!(
        (c["old"].as_str(), c["new"].as_str()),
        (Some("2.15.0"), Some("2.21.0"))
    );
    assert!(
        message(c).contains("serve NEW with TensorFlow 2.21.0 or later"),
        "{c}"
    );
    assert_eq!(changes(&r).len(), 1, "{r:#}");

    // NEW uses an op TensorFlow 2.21 does not register.
    let custom = tmp.path().join("custom");
    edited_copy(&new, &custom, |m| {
        let lib = m
            .graph_def
            .as_mut()
            .and_then(|g| g.library.as_mut())
            .expect("library");
        let node = lib
            .function
            .iter_mut()
            .flat_map(|f| f.node_def.iter_mut())
            .find(|n| n.op == "Cumsum")
            .expect("a Cumsum node");
        node.op = "MyCustomCumsum".into();
    });
    let (code, r) = diff(&[path_str(&old), path_str(&custom)]);
    assert_eq!(code, 1);
    let c = one(
        &r,
        "op_needs_newer_tensorflow",
        None,
        Some("MyCustomCumsum"),
    );
    assert!(
        message(c).contains("not registered in TensorFlow 2.21"),
        "{c}"
    );
}

#[test]
fn variables_whose_shape_changed() {
    let Some((code, r)) = diff_case("variables") else {
        return;
    };
    check_summary(code, &r);
    let c = one(
        &r,
        "variable_changed",
        None,
        Some("w/.ATTRIBUTES/VARIABLE_VALUE"),
    );
    assert_eq!(grade(c), "compatible");
    assert_eq!(
        (c["old"].as_str(), c["new"].as_str()),
        (Some("DT_FLOAT (4, 3)"), Some("DT_FLOAT (4, 5)"))
    );
    // Clients see the same signature, so the run passes.
    assert_eq!((code, changes(&r).len()), (0, 1), "{r:#}");
}

#[test]
fn text_github_and_junit() {
    let args = [
        "diff",
        "fixtures/half_plus_two/1",
        "fixtures/variable_length",
    ];
    let out = common::run(&args);
    assert_eq!(out.status.code(), Some(1));
    let text = common::stdout(&out);
    let want = [
        "OLD fixtures/half_plus_two/1 (tag-set 'serve', TensorFlow 2.21.0)",
        "NEW fixtures/variable_length (tag-set 'serve', TensorFlow 2.21.0)",
        "  breaking   signature 'serving_default': input 'x' changed shape from (-1) to (-1, -1): the rank changed: requests shaped for OLD fail",
        "3 breaking changes, 0 compatible changes: clients of OLD can fail with NEW",
    ];
    for line in want {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }

    let mut github = args.to_vec();
    github.extend(["--format", "github"]);
    let out = common::run(&github);
    assert_eq!(out.status.code(), Some(1));
    let text = common::stdout(&out);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(errors.len(), 3, "{text}");
    assert!(
        errors.iter().any(|l| l.starts_with(
            "::error file=fixtures/variable_length/saved_model.pb,title=breaking input_shape (fixtures/variable_length)::signature 'serving_default': input 'x' changed shape"
        )),
        "{text}"
    );

    let mut junit = args.to_vec();
    junit.extend(["--format", "junit"]);
    let out = common::run(&junit);
    assert_eq!(out.status.code(), Some(1));
    let xml = common::stdout(&out);
    assert!(
        xml.contains("<testsuites name=\"smtool diff\" tests=\"7\" failures=\"2\""),
        "{xml}"
    );
    assert!(xml.contains("<testcase classname=\"fixtures/half_plus_two/1 -&gt; fixtures/variable_length\" name=\"inputs\">"), "{xml}");
    assert!(xml.contains("<failure type=\"input_shape\""), "{xml}");
    assert!(xml.contains("<failure type=\"output_renamed\""), "{xml}");

    // Nothing breaking: exit 0 in every format.
    for format in ["text", "json", "github", "junit"] {
        let out = common::run(&["diff", "fixtures/half_plus_two", "--format", format]);
        assert_eq!(out.status.code(), Some(0), "{format}");
    }
}

#[test]
fn paths_and_arguments_it_cannot_use() {
    let tmp = common::tempdir();
    let one_version = tmp.path().join("one");
    common::copy_dir(&common::fixture("half_plus_two/1"), &one_version.join("7"));
    let bad_index = tmp.path().join("bad_index");
    common::copy_dir(&common::fixture("half_plus_two/1"), &bad_index);
    std::fs::write(bad_index.join("variables/variables.index"), b"not an index").expect("write");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["fixtures/half_plus_two/1"],
            "'fixtures/half_plus_two/1' is a single SavedModel, so there is nothing to compare it with; give NEW too",
        ),
        (
            vec![path_str(&one_version)],
            "has only version 7; diff needs two versions",
        ),
        (
            vec!["fixtures/half_plus_two", "--versions", "1,3"],
            "no version 3 in model base path 'fixtures/half_plus_two' (available: '1', '2')",
        ),
        (
            vec!["fixtures/half_plus_two/1", "--versions", "1,2"],
            "'fixtures/half_plus_two/1' is a single SavedModel, not a model base path",
        ),
        (
            vec!["fixtures/half_plus_two", "--versions", "1"],
            "'1' is not two versions A,B (e.g. --versions 1,2)",
        ),
        (
            vec!["fixtures/half_plus_two", "--versions", "2,2"],
            "names version 2 twice",
        ),
        (
            vec!["fixtures/half_plus_two/1", "fixtures/half_plus_two/2", "--versions", "1,2"],
            "cannot be used with",
        ),
        (
            vec!["fixtures/nope", "fixtures/half_plus_two/1"],
            "'fixtures/nope' does not exist; check the path",
        ),
        (
            vec!["fixtures/half_plus_two/1", "fixtures/broken/truncated"],
            "'fixtures/broken/truncated/saved_model.pb' is truncated or corrupt",
        ),
        (
            vec!["fixtures/half_plus_two/1", "fixtures/broken/no_saved_model"],
            "holds no saved_model.pb or saved_model.pbtxt",
        ),
        (
            vec!["fixtures/half_plus_two/1", "fixtures/half_plus_two/2", "--tag-set", "gpu"],
            "no meta graph with tag-set 'gpu' in 'fixtures/half_plus_two/1' (available: 'serve')",
        ),
        (
            vec!["fixtures/half_plus_two/1", path_str(&bad_index)],
            "cannot compare the variables: ",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["diff"];
        all.extend(&args);
        let out = common::run(&all);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(common::stdout(&out).is_empty(), "{args:?}");
    }
}

#[cfg(unix)]
#[test]
fn a_variables_index_that_is_not_a_file_is_refused_not_skipped() {
    let tmp = common::tempdir();
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    common::copy_dir(&common::fixture("half_plus_two/2"), &old);
    common::copy_dir(&common::fixture("half_plus_two/2"), &new);
    let index = new.join("variables/variables.index");
    std::fs::remove_file(&index).expect("remove the index");
    common::mkfifo(&index);
    // A FIFO with no writer: read, it would block; taken for no variables, it would hide them.
    common::assert_refused(
        &["diff", path_str(&old), path_str(&new)],
        &format!(
            "cannot compare the variables: '{}' is a FIFO, not a regular file",
            path_str(&index)
        ),
    );
}
