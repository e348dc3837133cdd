//! Integration tests for `smtool run`: for every input kind the outputs equal what TensorFlow's
//! Python API computes for the same request (python/check_run.py, which also reads the written
//! `.npy` files with `np.load(allow_pickle=False)`); JSON output is TF Serving's response body;
//! hostile `.npy` / `.npz` files, bad requests and existing output files get clear errors.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::{json, Value};

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// `smtool run ARGS` finding TensorFlow through `venv` (never downloading it), with `stdin`.
fn smtool_run(venv: Option<&Path>, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = common::smtool();
    cmd.arg("run").args(args).arg("--no-fetch");
    if let Some(venv) = venv {
        cmd.env("VIRTUAL_ENV", venv);
    }
    let mut child = cmd
        .env_remove("TF_CPP_MIN_LOG_LEVEL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start smtool run");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("smtool run output")
}

/// The reference venv, or `None` to skip (a failure in CI).
fn venv() -> Option<PathBuf> {
    let python = common::reference_python()?;
    Some(common::venv_of(&python))
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "smtool run failed: {}",
        common::stderr(out)
    );
    common::stdout(out)
}

fn error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{}", common::stdout(out));
    let err = common::stderr(out);
    assert!(err.starts_with("smtool: error: "), "{err}");
    err
}

#[test]
fn outputs_equal_tensorflows_for_every_input_kind() {
    let Some(venv) = venv() else { return };
    let python = common::reference_python().expect("python");
    let tmp = common::tempdir();
    let arrays = tmp.path().join("arrays");
    let made = common::run_python(&python, "check_run.py", &["make", path_str(&arrays)]);
    assert!(made.status.success(), "{}", common::stderr(&made));
    let a = |name: &str| path_str(&arrays.join(name)).to_owned();
    let f = |rel: &str| path_str(&common::fixture(rel)).to_owned();
    let iris = [5.1, 3.5, 1.4, 0.2];
    let examples = json!([{"x": iris}, {"x": [6.7, 3.0, 5.2, 2.3]}]);
    // (name, model, signature, method, smtool arguments, the case's inputs or body)
    type Case = (
        &'static str,
        String,
        &'static str,
        &'static str,
        Vec<String>,
        Value,
    );
    // A predict request on serving_default with one input given by `flag`.
    let one = |name, model: &str, flag: &str, key: &str, arg: String, source: Value| -> Case {
        let fixture = f(model);
        let args = vec![fixture.clone(), flag.into(), format!("{key}={arg}")];
        (
            name,
            fixture,
            "serving_default",
            "predict",
            args,
            json!({"inputs": {key: source}}),
        )
    };
    let npy = |name, model, key, file: &str| {
        one(
            name,
            model,
            "--input",
            key,
            a(file),
            json!({"npy": a(file)}),
        )
    };
    let npz = |name, model, file: &str, member: &str, arg: String| {
        one(
            name,
            model,
            "--input",
            "x",
            arg,
            json!({"npz": a(file), "name": member}),
        )
    };
    let value = |name, model, key, v: Value| {
        one(
            name,
            model,
            "--value",
            key,
            v.to_string(),
            json!({"value": v}),
        )
    };
    let image = |name, file: &str| {
        one(
            name,
            "digits/model",
            "--image",
            "x",
            f(file),
            json!({"image": f(file)}),
        )
    };
    // tf.Examples to the iris signature `signature` under `method`.
    let examples_to = |name, signature: &'static str, method: &'static str| -> Case {
        let args = vec![
            f("iris_tf1"),
            "--signature".into(),
            signature.into(),
            "--method".into(),
            method.into(),
            "--examples".into(),
            format!("inputs={examples}"),
        ];
        let given = json!({"inputs": {"inputs": {"examples": examples}}});
        (name, f("iris_tf1"), signature, method, args, given)
    };
    let body = |name, model: &str, signature, method, file: &str, body: Value| -> Case {
        let args = vec![f(model), "--request".into(), file.into()];
        (
            name,
            f(model),
            signature,
            method,
            args,
            json!({"body": body}),
        )
    };
    let mut hpt = npy(
        "npy float64 into a float input, latest version of a base path",
        "half_plus_two",
        "x",
        "x64.npy",
    );
    hpt.1 = f("half_plus_two/2");
    let mut classify = examples_to(
        "tf.Examples to :classify, the method from the signature",
        "classify",
        "classify",
    );
    classify.4.drain(3..5);
    // The digits model with add-classify's image head: --image files become tf.Examples.
    let digits_classify = path_str(&tmp.path().join("digits-classify")).to_owned();
    common::digits_image_classify(Path::new(&digits_classify));
    let (five, jpeg) = (
        f("digits/images/00_five.png"),
        f("digits/images/11_five.jpg"),
    );
    let images_to_classify: Case = (
        "images as tf.Examples to :classify, one per --image",
        digits_classify.clone(),
        "classify",
        "classify",
        vec![
            digits_classify,
            "--signature".into(),
            "classify".into(),
            "--image".into(),
            format!("x={five}"),
            "--image".into(),
            format!("x={jpeg}"),
        ],
        json!({"inputs": {"inputs": {"image_examples": [{"x": five}, {"x": jpeg}]}}}),
    );
    let cases: Vec<Case> = vec![
        hpt,
        images_to_classify,
        npy(
            "npy in Fortran order",
            "variable_length",
            "x",
            "rows_fortran.npy",
        ),
        npy(
            "npy big-endian",
            "variable_length",
            "x",
            "rows_big_endian.npy",
        ),
        npy("npy unicode strings", "vocab_assets", "words", "words.npy"),
        npz(
            "npz array by name",
            "digits/model",
            "digits.npz",
            "images",
            format!("{}[images]", a("digits.npz")),
        ),
        npz(
            "compressed npz with one array",
            "variable_length",
            "one.npz",
            "rows",
            a("one.npz"),
        ),
        value(
            "JSON value",
            "variable_length",
            "x",
            json!([[1, 2.5, -3], [4, 5, 6]]),
        ),
        value(
            "JSON strings",
            "vocab_assets",
            "words",
            json!(["fox", "the", "cat"]),
        ),
        examples_to("tf.Examples to :predict", "classify", "predict"),
        classify,
        examples_to("tf.Examples to :regress", "regress", "regress"),
        image("PNG image", "digits/images/00_five.png"),
        image("JPEG image", "digits/images/11_five.jpg"),
        body(
            "REST body, row format",
            "iris_tf1",
            "predict",
            "predict",
            "BODY",
            json!({"signature_name": "predict", "instances": [iris, [6.7, 3.0, 5.2, 2.3]]}),
        ),
        body(
            "REST body, columnar",
            "variable_length",
            "serving_default",
            "predict",
            "BODY",
            json!({"inputs": [[1.0, 2.0], [3.0, 4.0]]}),
        ),
        body(
            "REST body with examples, on stdin",
            "iris_tf1",
            "classify",
            "classify",
            "-",
            json!({"signature_name": "classify", "examples": examples}),
        ),
    ];
    let mut checks = Vec::new();
    for (i, (name, model, signature, method, args, given)) in cases.into_iter().enumerate() {
        let outdir = tmp.path().join(format!("out{i}"));
        let body = tmp.path().join(format!("body{i}.json"));
        let mut stdin = Vec::new();
        if let Some(b) = given.get("body") {
            std::fs::write(&body, b.to_string()).expect("write body");
            stdin = b.to_string().into_bytes();
        }
        let mut args: Vec<String> = args
            .into_iter()
            .map(|a| {
                if a == "BODY" {
                    path_str(&body).to_owned()
                } else {
                    a
                }
            })
            .collect();
        args.extend(["--outdir".into(), path_str(&outdir).to_owned()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = smtool_run(Some(&venv), &args, &stdin);
        assert!(out.status.success(), "{name}: {}", common::stderr(&out));
        assert_eq!(
            common::stderr(&out),
            "",
            "{name}: TensorFlow's noise is hidden"
        );
        assert!(
            common::stdout(&out).contains(&format!("signature '{signature}', :{method}")),
            "{name}: {}",
            common::stdout(&out)
        );
        let mut case = json!({
            "name": name,
            "model": model,
            "signature": signature,
            "method": method,
            "outdir": path_str(&outdir),
        });
        for (k, v) in given.as_object().expect("case") {
            case[k] = v.clone();
        }
        checks.push(case);
    }
    let cases_file = tmp.path().join("cases.json");
    std::fs::write(&cases_file, Value::Array(checks.clone()).to_string()).expect("cases");
    let out = common::run_python(&python, "check_run.py", &["compare", path_str(&cases_file)]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let results: Value = serde_json::from_slice(&out.stdout).expect("JSON from check_run.py");
    let results = results.as_array().expect("results");
    assert_eq!(results.len(), checks.len());
    for r in results {
        let outputs = r["outputs"].as_object().expect("outputs");
        assert!(!outputs.is_empty(), "{r}");
        for (output, o) in outputs {
            assert_eq!(
                o["equal"], true,
                "{}: output '{output}' differs: {o}",
                r["name"]
            );
            assert_eq!(o["shape_tf"], o["shape_smtool"], "{}: {o}", r["name"]);
        }
    }
}

#[test]
fn json_is_tf_servings_response_body() {
    let Some(venv) = venv() else { return };
    let hpt = common::fixture("half_plus_two");
    let out = smtool_run(
        Some(&venv),
        &[path_str(&hpt), "--value", "x=[1.0, 2.0, 5.0]", "--json"],
        b"",
    );
    let body: Value = serde_json::from_str(&ok(&out)).expect("JSON");
    assert_eq!(
        body,
        json!({"outputs": [3.5, 4.0, 5.5]}),
        "version 2: 0.5x+3"
    );
    let out = smtool_run(
        Some(&venv),
        &[path_str(&hpt), "--version", "1", "--request", "-", "--json"],
        br#"{"instances": [1.0, 2.0]}"#,
    );
    let body: Value = serde_json::from_str(&ok(&out)).expect("JSON");
    assert_eq!(
        body,
        json!({"predictions": [2.5, 3.0]}),
        "version 1: 0.5x+2"
    );

    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("iris_tf1/expected.json")).expect("expected"),
    )
    .expect("expected.json");
    let row = &expected["rows"][0];
    let out = smtool_run(
        Some(&venv),
        &[
            path_str(&common::fixture("iris_tf1")),
            "--signature",
            "classify",
            "--examples",
            &format!("inputs=[{{\"x\": {}}}]", row["x"]),
            "--json",
        ],
        b"",
    );
    let body: Value = serde_json::from_str(&ok(&out)).expect("JSON");
    let result = &body["results"][0];
    for (i, class) in result.as_array().expect("classes").iter().enumerate() {
        assert_eq!(class[0], row["classes"][i], "{body}");
        let score = class[1].as_f64().expect("score");
        let want = row["scores"][i].as_f64().expect("expected score");
        assert!((score - want).abs() <= 1e-6, "{score} vs {want}");
    }
}

#[test]
fn table_shows_name_dtype_shape_and_values() {
    let Some(venv) = venv() else { return };
    let out = smtool_run(
        Some(&venv),
        &[
            path_str(&common::fixture("variable_length")),
            "--value",
            "x=[[1, 2, 3], [4, 5, 6]]",
        ],
        b"",
    );
    let text = ok(&out);
    assert!(
        text.starts_with(&format!(
            "{} version 1, signature 'serving_default', :predict\n",
            path_str(&common::fixture("variable_length"))
        )),
        "{text}"
    );
    let row = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no row {name}: {text}"))
            .split('┆')
            .map(|c| {
                c.trim_matches(|ch: char| ch == '│' || ch.is_whitespace())
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("row_sum"),
        ["row_sum", "DT_FLOAT", "[2]", "[6.0, 15.0]"]
    );
    assert_eq!(row("doubled")[..3], ["doubled", "DT_FLOAT", "[2,3]"]);

    // A large output is cut at both ends of each dimension.
    let big: Vec<Vec<f32>> = (0..50)
        .map(|r| (0..4).map(|c| (r * 4 + c) as f32).collect())
        .collect();
    let out = smtool_run(
        Some(&venv),
        &[
            path_str(&common::fixture("variable_length")),
            "--value",
            &format!("x={}", json!(big)),
        ],
        b"",
    );
    let text = ok(&out);
    assert!(text.contains("[[0.0, 2.0, 4.0, 6.0],"), "{text}");
    assert!(text.contains("..."), "{text}");
    assert!(text.contains("[392.0, 394.0, 396.0, 398.0]]"), "{text}");
    assert!(!text.contains("[200.0,"), "{text}");
}

#[test]
fn outdir_never_replaces_files_without_overwrite() {
    let Some(venv) = venv() else { return };
    let tmp = common::tempdir();
    let dir = tmp.path().join("out");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("y.npy"), b"keep me").expect("write");
    let model = common::fixture("half_plus_two");
    let args = [
        path_str(&model),
        "--value",
        "x=[4.0]",
        "--outdir",
        path_str(&dir),
    ];
    let err = error(&smtool_run(Some(&venv), &args, b""));
    assert!(
        err.contains(&format!(
            "'{}' already exists; pass --overwrite to replace it, or choose another --outdir",
            path_str(&dir.join("y.npy"))
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("y.npy")).expect("read"), b"keep me");

    let mut with = args.to_vec();
    with.push("--overwrite");
    let text = ok(&smtool_run(Some(&venv), &with, b""));
    assert!(
        text.contains(&format!("wrote {}", path_str(&dir.join("y.npy")))),
        "{text}"
    );
    let written = std::fs::read(dir.join("y.npy")).expect("read");
    assert!(written.starts_with(b"\x93NUMPY\x01\x00"), "a .npy file");
    assert!(written.ends_with(&5.0f32.to_le_bytes()), "0.5 * 4 + 3");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["y.npy"], "no temporary file left behind");

    // A missing --outdir is created.
    let fresh = tmp.path().join("new/dir");
    ok(&smtool_run(
        Some(&venv),
        &[
            path_str(&model),
            "--value",
            "x=[4.0]",
            "--outdir",
            path_str(&fresh),
        ],
        b"",
    ));
    assert!(fresh.join("y.npy").is_file());
}

#[test]
fn tensorflow_output_only_with_verbose() {
    let Some(venv) = venv() else { return };
    let model = common::fixture("half_plus_two");
    let quiet = smtool_run(Some(&venv), &[path_str(&model), "--value", "x=[1.0]"], b"");
    ok(&quiet);
    assert_eq!(common::stderr(&quiet), "");
    let loud = smtool_run(
        Some(&venv),
        &[path_str(&model), "--value", "x=[1.0]", "-v"],
        b"",
    );
    ok(&loud);
    let err = common::stderr(&loud);
    assert!(err.contains("smtool run: TensorFlow 2.21"), "{err}");
    assert!(err.contains("SavedModel"), "TensorFlow's own log: {err}");
}

/// One refused run: its arguments and what its error must say.
fn case<'a>(args: &[&'a str], expected: &'a str) -> (Vec<&'a str>, &'a str) {
    (args.to_vec(), expected)
}

#[test]
fn request_errors_are_the_servers() {
    let Some(venv) = venv() else { return };
    let hpt = path_str(&common::fixture("half_plus_two")).to_owned();
    let iris = path_str(&common::fixture("iris_tf1")).to_owned();
    let digits = path_str(&common::fixture("digits/model")).to_owned();
    // Arguments alone, then requests on stdin.
    let cases = [
        case(&[&hpt, "--signature", "nope", "--value", "x=[1.0]"], "Serving signature name: \"nope\" not found in signature def (TF Serving answers 400 INVALID_ARGUMENT)"),
        case(&[&hpt, "--value", "y=[1.0]"], "--value y: signature 'serving_default' has no input 'y' (inputs: 'x')"),
        case(&[&hpt, "--method", "classify", "--examples", "inputs=[{\"x\": 1.0}]"], "No classification inputs found in SignatureDef: serving_default (TF Serving answers 400 FAILED_PRECONDITION)"),
        case(&[&iris, "--signature", "nope", "--method", "regress", "--examples", "inputs=[{\"x\": 1.0}]"], "No signature was found with the name: nope"),
        case(&[&hpt, "--examples", "x=[{\"x\": 1.0}]"], "--examples x: serialized tf.Examples are strings, but the input is DT_FLOAT"),
        case(&[&hpt, "--value", "x=[\"a\"]"], "--value x:"),
        case(&[&hpt, "--version", "7", "--value", "x=[1.0]"], "has no version 7"),
        case(&[&hpt, "--image", "x=fixtures/digits/images/00_five.png"], "--image x: an image needs an input shaped (batch, height, width, channels)"),
        case(&[&digits, "--image", "x=fixtures/digits/images/00_five.png", "--image", "x=fixtures/digits/images/11_five.jpg"], "input 'x' is given twice (several --image files for one feature make several tf.Examples on :classify and :regress only)"),
        case(&[&iris, "--signature", "classify", "--image", "x=fixtures/digits/images/00_five.png", "--image", "x=fixtures/digits/images/11_five.jpg", "--image", "y=fixtures/digits/images/00_five.png"], "--image y: 1 image(s), but another feature has 2; give every feature one image per example"),
    ];
    let piped: Vec<(Vec<&str>, &[u8], &str)> = vec![
        (
            vec![&iris, "--signature", "predict", "--request", "-"],
            br#"{"signature_name": "predict", "instances": [{"y": [1.0]}]}"#,
            "(TF Serving answers 400 INVALID_ARGUMENT)",
        ),
        (
            vec![&hpt, "--request", "-"],
            b"{\"instances\": [1.0,",
            "the request on stdin: JSON Parse error:",
        ),
        (
            vec![&iris, "--signature", "classify", "--request", "-"],
            br#"{"signature_name": "predict", "instances": [[1.0, 2.0, 3.0, 4.0]]}"#,
            "the request body names signature 'predict' and --signature 'classify'; drop one",
        ),
    ];
    let cases = (cases.into_iter()).map(|(args, expected)| (args, &b""[..], expected));
    for (args, stdin, expected) in cases.chain(piped) {
        let err = error(&smtool_run(Some(&venv), &args, stdin));
        assert!(
            err.contains(expected),
            "{args:?}: {err}\nwanted: {expected}"
        );
    }
}

/// A `.npy` file with this header text and data.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    let header = format!("{header}\n");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// A zip archive (as np.savez writes) of these members, stored uncompressed.
fn npz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in members {
        zip.start_file(*name, options).expect("zip member");
        zip.write_all(bytes).expect("zip data");
    }
    zip.finish().expect("zip").into_inner()
}

/// These are refused while the inputs are read, before TensorFlow is loaded: no TensorFlow
/// is needed.
#[test]
fn hostile_npy_and_npz_files_are_refused_before_allocating() {
    let tmp = common::tempdir();
    // A pickle that would run `os.system` if unpickled.
    let pickle = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x05touch\x94\x85\x94R\x94.";
    let object = npy(
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
        pickle,
    );
    let mut huge_header = b"\x93NUMPY\x02\x00".to_vec();
    huge_header.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    huge_header.extend_from_slice(b"{'descr'");
    let good = npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
        &[0; 4],
    );
    let mut lying = npz(&[("x.npy", &good)]);
    // The central directory's uncompressed size says 2 GiB - 1.
    let central = lying
        .windows(4)
        .rposition(|w| w == b"PK\x01\x02")
        .expect("central directory");
    lying[central + 24..central + 28].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "object.npy",
            object.clone(),
            "holds Python objects (dtype '|O'), which only pickle can read, and pickle runs code from the file",
        ),
        (
            "huge_header.npy",
            huge_header,
            "its header is 4294967280 bytes, more than the 10000 NumPy reads",
        ),
        (
            "overflow.npy",
            npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", &[]),
            "its shape's dimensions multiply beyond 2^63",
        ),
        (
            "short.npy",
            npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000), }", &[0; 64]),
            "its shape (1000, 1000) of '<f4' needs 4000000 bytes of data, but the file has 64",
        ),
        (
            "code.npy",
            npy("{'descr': __import__('os').system('touch pwned'), }", &[]),
            "unexpected character",
        ),
        ("not.npy", b"PK\x03\x04 not an array".to_vec(), "does not start with NumPy's magic string"),
        (
            "structured.npy",
            npy("{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }", &[0; 8]),
            "records of named fields",
        ),
        ("object.npz", npz(&[("x.npy", &object)]), "only pickle can read"),
        ("lying.npz", lying, "the archive says it unpacks to 2147483647 bytes, more than a"),
    ];
    for (name, bytes, expected) in files {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let arg = format!("x={}", path_str(&path));
        // No TensorFlow given: the file is refused before it would be looked for.
        let out = smtool_run(
            None,
            &[
                path_str(&common::fixture("half_plus_two")),
                "--input",
                &arg,
                "--tensorflow-dir",
                "/nonexistent",
            ],
            b"",
        );
        let err = error(&out);
        assert!(err.contains(expected), "{name}: {err}\nwanted: {expected}");
        assert!(
            err.contains(path_str(&path)),
            "{name}: names the file: {err}"
        );
    }
    assert!(!Path::new("pwned").exists() && !common::root().join("pwned").exists());

    let two = npz(&[("a.npy", &good), ("b.npy", &good)]);
    let path = tmp.path().join("two.npz");
    std::fs::write(&path, two).expect("write");
    let hpt = common::fixture("half_plus_two");
    let err = error(&smtool_run(
        None,
        &[path_str(&hpt), "--input", &format!("x={}", path_str(&path))],
        b"",
    ));
    assert!(
        err.contains("holds 2 arrays ('a', 'b'); name one as FILE.npz[NAME]"),
        "{err}"
    );
    let err = error(&smtool_run(
        None,
        &[
            path_str(&hpt),
            "--input",
            &format!("x={}[c]", path_str(&path)),
        ],
        b"",
    ));
    assert!(err.contains("has no array 'c' (arrays: 'a', 'b')"), "{err}");
}

#[test]
fn argument_errors() {
    let hpt = path_str(&common::fixture("half_plus_two")).to_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![&hpt],
            "give the inputs (--input, --value, --examples, --image) or a request body",
        ),
        (
            vec![&hpt, "--value", "x=[1,", "--tensorflow-dir", "/nonexistent"],
            "--value x: not JSON:",
        ),
        (
            vec![&hpt, "--value", "x=[1]", "--value", "x=[2]"],
            "input 'x' is given twice",
        ),
        (vec![&hpt, "--input", "x.npy"], "'x.npy' is not KEY=VALUE"),
        (
            vec![&hpt, "--input", "x=missing.npy"],
            "cannot read 'missing.npy'",
        ),
        (
            vec![&hpt, "--image", "x=missing.png"],
            "smtool: error: cannot read 'missing.png': No such file or directory (os error 2)\n",
        ),
        (
            vec![&hpt, "--request", "-", "--value", "x=[1]"],
            "cannot be used with",
        ),
        (
            vec![&hpt, "--method", "train", "--value", "x=[1]"],
            "unknown method 'train'",
        ),
    ];
    for (args, expected) in cases {
        let out = smtool_run(None, &args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = common::stderr(&out);
        assert!(
            err.contains(expected),
            "{args:?}: {err}\nwanted: {expected}"
        );
    }
}

/// `smtool run ARGS` (finding TensorFlow through `venv`, if given) and its peak resident memory
/// in KiB.
fn smtool_run_peak(python: &Path, venv: Option<&Path>, args: &[&str]) -> (Output, u64) {
    let mut cmd = common::smtool();
    cmd.arg("run").args(args).arg("--no-fetch");
    match venv {
        Some(venv) => cmd.env("VIRTUAL_ENV", venv),
        None => cmd.args(["--tensorflow-dir", "/nonexistent"]),
    };
    common::output_and_peak_rss(python, &cmd)
}

/// A `.npy` header for an array of `descr` shaped `shape`.
fn header(descr: &str, shape: &str) -> String {
    format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
}

#[test]
fn many_short_strings_are_refused_before_they_are_made() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let tmp = common::tempdir();
    // 30 MB of one-byte strings: holding each as a string of its own would take 40 times that.
    let count = 30_000_000;
    let path = tmp.path().join("strings.npy");
    std::fs::write(
        &path,
        npy(&header("|S1", &format!("({count},)")), &vec![b'a'; count]),
    )
    .expect("write");
    let hpt = common::fixture("half_plus_two");
    let (out, peak_kb) = smtool_run_peak(
        &python,
        None,
        &[path_str(&hpt), "--input", &format!("x={}", path_str(&path))],
    );
    let err = error(&out);
    assert!(
        err.contains(&format!(
            "'{}' is not a NumPy .npy array: its {count} strings would take 1470000000 bytes to hold (48 per string plus their bytes), more than the 1073741824 an array may take; save fewer strings per array",
            path_str(&path)
        )),
        "{err}"
    );
    assert!(peak_kb < 300_000, "peak RSS {peak_kb} KiB for a 30 MB file");
}

#[test]
fn converting_an_array_to_the_inputs_dtype_costs_no_more_than_the_result() {
    let Some(venv) = venv() else { return };
    let python = common::reference_python().expect("python");
    let tmp = common::tempdir();
    // 40 million uint8 zeros for half_plus_two's DT_FLOAT input: the floats take 160 MB. The
    // array is shaped (1, n), which the signature's rank-1 input refuses after the conversion,
    // before TensorFlow runs.
    let count = 40_000_000;
    let path = tmp.path().join("bytes.npy");
    std::fs::write(
        &path,
        npy(&header("|u1", &format!("(1, {count})")), &vec![0; count]),
    )
    .expect("write");
    let hpt = common::fixture("half_plus_two");
    let (out, peak_kb) = smtool_run_peak(
        &python,
        Some(&venv),
        &[path_str(&hpt), "--input", &format!("x={}", path_str(&path))],
    );
    let err = error(&out);
    assert!(
        err.contains(&format!("input 'x' has 2 dimension(s), shape [1,{count}], but signature 'serving_default' takes it with 1, shape (-1); reshape it to the signature's rank")),
        "{err}"
    );
    // TensorFlow itself takes about 320 MB; the array, its floats and their request copies
    // about 500 MB more.
    assert!(peak_kb < 1_100_000, "peak RSS {peak_kb} KiB");
}

#[test]
fn an_input_of_another_rank_than_the_signatures_is_refused_not_run() {
    let Some(venv) = venv() else { return };
    // digits convolves a (batch, 28, 28, 1) input; TensorFlow's oneDNN convolution aborts the
    // process on a rank-2 tensor instead of failing the run.
    let digits = common::fixture("digits/model");
    let err = error(&smtool_run(
        Some(&venv),
        &[path_str(&digits), "--value", "x=[[1.0, 2.0]]"],
        b"",
    ));
    assert!(
        err.contains("input 'x' has 2 dimension(s), shape [1,2], but signature 'serving_default' takes it with 4, shape (-1, 28, 28, 1); reshape it to the signature's rank (TF Serving answers 400 INVALID_ARGUMENT)"),
        "{err}"
    );
}

#[test]
fn image_decompression_bombs_are_refused_before_decoding() {
    let Some(venv) = venv() else { return };
    let python = common::reference_python().expect("python");
    let tmp = common::tempdir();
    // A 20000x20000 grey PNG of zeros: 390 KB on disk, 400 MB of pixels, 1.6 GB as floats.
    let bomb = tmp.path().join("bomb.png");
    common::png_bomb(&python, &bomb);
    let digits = common::fixture("digits/model");
    let (out, peak_kb) = smtool_run_peak(
        &python,
        Some(&venv),
        &[
            path_str(&digits),
            "--image",
            &format!("x={}", path_str(&bomb)),
        ],
    );
    let refused = "--image x: its header claims 400000000 pixels, 1600000000 bytes once decoded to 1 channel(s) of floats, more than the 1073741824 an image may take; scale it down before running it";
    let err = error(&out);
    assert!(err.contains(refused), "{err}");
    assert!(peak_kb < 700_000, "peak RSS {peak_kb} KiB");

    // As a tf.Example to add-classify's image head, which decodes it inside the model.
    let classify = tmp.path().join("digits-classify");
    common::digits_image_classify(&classify);
    let (out, peak_kb) = smtool_run_peak(
        &python,
        Some(&venv),
        &[
            path_str(&classify),
            "--signature",
            "classify",
            "--image",
            &format!("x={}", path_str(&bomb)),
        ],
    );
    let err = error(&out);
    assert!(err.contains(refused), "{err}");
    assert!(peak_kb < 700_000, "peak RSS {peak_kb} KiB");
}

#[test]
fn input_files_together_are_bounded_before_all_are_read() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let tmp = common::tempdir();
    // Twenty 60 MB files (each within the 64 MiB an image may have) are more than the 1 GiB
    // one run holds: refused once that much is read, before TensorFlow is looked for.
    let image = tmp.path().join("big.png");
    std::fs::write(&image, vec![0u8; 60_000_000]).expect("write");
    let arg = format!("x={}", path_str(&image));
    let digits = common::fixture("digits/model");
    let mut args = vec![path_str(&digits)];
    for _ in 0..20 {
        args.extend(["--image", &arg]);
    }
    let (out, peak_kb) = smtool_run_peak(&python, None, &args);
    let err = error(&out);
    assert!(
        err.contains("the inputs up to --image x take more than the 1 GiB one run may hold together; give fewer or smaller ones"),
        "{err}"
    );
    assert!(peak_kb < 1_250_000, "peak RSS {peak_kb} KiB");
}

#[cfg(unix)]
#[test]
fn an_outdir_linked_to_nowhere_is_refused_before_the_run() {
    let tmp = common::tempdir();
    let link = tmp.path().join("out");
    std::os::unix::fs::symlink(tmp.path().join("gone/away"), &link).expect("symlink");
    // Refused before TensorFlow would be looked for.
    let err = error(&smtool_run(
        None,
        &[
            path_str(&common::fixture("half_plus_two")),
            "--value",
            "x=[1.0]",
            "--outdir",
            path_str(&link),
            "--tensorflow-dir",
            "/nonexistent",
        ],
        b"",
    ));
    assert!(
        err.contains(&format!(
            "--outdir '{}' is a symbolic link to '{}', which does not exist; create it, or choose another --outdir",
            path_str(&link),
            path_str(&tmp.path().join("gone/away"))
        )),
        "{err}"
    );
    assert!(!tmp.path().join("gone").exists());
}

#[test]
fn an_output_that_would_pad_into_a_huge_npy_file_is_refused_before_writing() {
    let Some(venv) = venv() else { return };
    let Some((_dir, echo)) = common::python_model("make_bytes_echo_model.py", "echo") else {
        return;
    };
    let tmp = common::tempdir();
    // One 10 MB string among a million empty ones: 58 MB to hold, but as a NumPy `S` array
    // every element is padded to 10 MB, a 10 TB file.
    let mut strings = vec![String::new(); 1_000_000];
    strings[0] = "x".repeat(10_000_000);
    let body = tmp.path().join("body.json");
    std::fs::write(&body, json!({"inputs": {"data": strings}}).to_string()).expect("write");
    let outdir = tmp.path().join("out");
    let err = error(&smtool_run(
        Some(&venv),
        &[
            path_str(&echo),
            "--request",
            path_str(&body),
            "--outdir",
            path_str(&outdir),
        ],
        b"",
    ));
    assert!(
        err.contains("output 'out_bytes' would be a 10000000000000-byte .npy file (NumPy pads each string to the longest), more than the 1 GiB an array file may have; leave out --outdir and use --json"),
        "{err}"
    );
    assert!(!outdir.exists(), "nothing written");
}
