//! Models in object storage, against a real S3 server: moto's (from PyPI, python/s3_server.py)
//! on a loopback port, with access keys checked, fixtures uploaded with boto3. Skips without
//! the reference Python; with SMTOOL_REQUIRE_TF=1 a server that cannot start fails the tests.
#![cfg(feature = "storage")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The S3 server of this test process and the keys it knows.
struct S3 {
    endpoint: String,
    key: (String, String),
    /// A user allowed nothing.
    denied: (String, String),
    log: PathBuf,
    python: PathBuf,
    _dir: tempfile::TempDir,
    /// Runs until this process ends: its standard input is a pipe from here.
    _child: Child,
}

impl S3 {
    /// A command with this server's endpoint and the test user's keys in its environment.
    fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for var in [
            "AWS_ENDPOINT",
            "AWS_ENDPOINT_URL_S3",
            "S3_ENDPOINT",
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.key.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.key.1)
            .env("AWS_REGION", "us-east-1")
    }

    fn helper(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(&self.python);
        cmd.arg(common::root().join("python/s3_server.py"))
            .arg(args[0])
            .arg(&self.endpoint)
            .args(&args[1..]);
        let out = self
            .env(&mut cmd)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the S3 helper: {e}"));
        assert!(
            out.status.success(),
            "s3_server.py {args:?}: {}",
            common::stderr(&out)
        );
        common::stdout(&out)
    }

    fn mkbucket(&self, bucket: &str) {
        self.helper(&["mkbucket", bucket]);
    }

    fn upload(&self, dir: &Path, url: &str) {
        self.helper(&["upload", path_str(dir), url]);
    }

    /// `key size` of every object under `url`.
    fn list(&self, url: &str) -> Vec<(String, u64)> {
        self.helper(&["list", url])
            .lines()
            .filter_map(|l| {
                let (k, s) = l.rsplit_once(' ')?;
                Some((k.to_owned(), s.parse().ok()?))
            })
            .collect()
    }

    /// The object keys read (GET without a query: object downloads, not listings) so far.
    fn downloaded(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let request = l.split('"').nth(1)?;
                let mut parts = request.split(' ');
                (parts.next()? == "GET").then_some(())?;
                let path = parts.next()?;
                (!path.contains('?')).then(|| path.to_owned())
            })
            .collect()
    }

    fn smtool(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = common::smtool();
        self.env(&mut cmd)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot start smtool: {e}"))
    }

    fn smtool_ok(&self, args: &[&str]) -> String {
        let out = self.smtool(args);
        assert!(
            out.status.success(),
            "smtool {args:?} failed: {}",
            common::stderr(&out)
        );
        common::stdout(&out)
    }

    fn smtool_json(&self, args: &[&str]) -> serde_json::Value {
        let text = self.smtool_ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn start() -> Result<S3, String> {
    let python = common::reference_python().ok_or("no reference Python")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let log = dir.path().join("requests.log");
    let mut child = Command::new(&python)
        .arg(common::root().join("python/s3_server.py"))
        .arg("serve")
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let port = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .ok_or_else(|| {
            format!("the S3 server did not start (is moto[server] installed? got {line:?})")
        })?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let setup = Command::new(&python)
        .arg(common::root().join("python/s3_server.py"))
        .arg("setup")
        .arg(&endpoint)
        .env("AWS_ACCESS_KEY_ID", "setup")
        .env("AWS_SECRET_ACCESS_KEY", "setup")
        .output()
        .map_err(|e| e.to_string())?;
    if !setup.status.success() {
        return Err(format!("S3 setup failed: {}", common::stderr(&setup)));
    }
    let text = common::stdout(&setup);
    let pair = |tag: &str| {
        text.lines()
            .find_map(|l| {
                let mut p = l.split(' ');
                (p.next()? == tag).then_some(())?;
                Some((p.next()?.to_owned(), p.next()?.to_owned()))
            })
            .ok_or_else(|| format!("no {tag} in {text:?}"))
    };
    Ok(S3 {
        endpoint,
        key: pair("KEY")?,
        denied: pair("DENIED")?,
        log,
        python,
        _dir: dir,
        _child: child,
    })
}

/// The server shared by the tests of this file; `None` means skip.
fn s3() -> Option<&'static S3> {
    static SERVER: OnceLock<Option<S3>> = OnceLock::new();
    SERVER
        .get_or_init(|| match start() {
            Ok(s) => Some(s),
            Err(e) => {
                assert!(
                    !common::tensorflow_required(),
                    "SMTOOL_REQUIRE_TF=1 but the S3 test server cannot start: {e}"
                );
                eprintln!("skipping: {e}");
                None
            }
        })
        .as_ref()
}

#[test]
fn inspect_and_validate_read_only_metadata_objects() {
    let Some(s3) = s3() else { return };
    s3.mkbucket("inspect-models");
    s3.upload(
        &common::fixture("half_plus_two"),
        "s3://inspect-models/half_plus_two",
    );
    s3.upload(
        &common::fixture("vocab_assets"),
        "s3://inspect-models/team/vocab/1",
    );
    s3.upload(
        &common::fixture("broken/truncated"),
        "s3://inspect-models/team/truncated",
    );

    let report = s3.smtool_json(&[
        "inspect",
        "--json",
        "--all",
        "s3://inspect-models/half_plus_two",
    ]);
    let model = &report["models"][0];
    assert_eq!(model["path"], "s3://inspect-models/half_plus_two/2");
    assert_eq!(model["version"], 2);
    assert_eq!(model["available_versions"], serde_json::json!([1, 2]));
    assert_eq!(
        model["graph_file"],
        "s3://inspect-models/half_plus_two/2/saved_model.pb"
    );
    assert_eq!(model["variables"]["present"], true);
    assert!(model["fingerprint"].is_object(), "{model}");

    // The graph file named itself, and one version by number.
    let report = s3.smtool_json(&[
        "inspect",
        "--json",
        "s3://inspect-models/half_plus_two/1/saved_model.pb",
    ]);
    assert_eq!(
        report["models"][0]["path"],
        "s3://inspect-models/half_plus_two/1"
    );

    // validate walks the bucket as a tree: two versions, the vocab model, the truncated one.
    let out = s3.smtool(&["validate", "--json", "s3://inspect-models"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "s3://inspect-models/half_plus_two/1",
            "s3://inspect-models/half_plus_two/2",
            "s3://inspect-models/team/truncated",
            "s3://inspect-models/team/vocab/1",
        ]
    );
    let statuses: Vec<&str> = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pass", "pass", "fail", "pass"], "{report}");
    // Findings name the objects, never a local copy.
    let text = serde_json::to_string(&report["models"][2]).unwrap();
    assert!(
        text.contains("s3://inspect-models/team/truncated"),
        "{text}"
    );
    assert!(!text.contains("/tmp"), "{text}");

    // Local and remote paths in one run.
    let out = s3.smtool(&[
        "validate",
        "--json",
        path_str(&common::fixture("iris_tf1")),
        "s3://inspect-models/half_plus_two",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["models"], 3, "{report}");

    // Nothing read a variable shard or an asset: only the listings and the small files.
    let read: Vec<String> = s3
        .downloaded()
        .into_iter()
        .filter(|k| k.starts_with("/inspect-models/"))
        .collect();
    assert!(
        read.iter().any(|k| k.ends_with("/saved_model.pb")),
        "{read:?}"
    );
    assert!(
        read.iter()
            .any(|k| k.ends_with("variables/variables.index")),
        "{read:?}"
    );
    for key in &read {
        assert!(
            !key.contains("variables.data-") && !key.contains("/assets/"),
            "smtool downloaded {key}"
        );
    }
}

#[test]
fn errors_name_the_url_and_the_fix() {
    let Some(s3) = s3() else { return };
    s3.mkbucket("error-models");
    s3.upload(
        &common::fixture("half_plus_two/1"),
        "s3://error-models/hpt/1",
    );
    let run_with = |vars: &[(&str, &str)], args: &[&str]| {
        let mut cmd = common::smtool();
        s3.env(&mut cmd);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.args(args).output().expect("smtool");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        common::stderr(&out)
    };

    let err = run_with(
        &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
        &["inspect", "s3://error-models/hpt"],
    );
    assert!(
        err.contains("smtool: error: no credentials for 's3://error-models/hpt': check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            && err.contains("SignatureDoesNotMatch"),
        "{err}"
    );
    let err = run_with(
        &[("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")],
        &["validate", "s3://error-models/hpt"],
    );
    assert!(err.contains("InvalidAccessKeyId"), "{err}");

    let err = run_with(
        &[
            ("AWS_ACCESS_KEY_ID", &s3.denied.0),
            ("AWS_SECRET_ACCESS_KEY", &s3.denied.1),
        ],
        &["inspect", "s3://error-models/hpt"],
    );
    assert!(
        err.contains("access to 's3://error-models/hpt' was denied: the credentials need s3:ListBucket and s3:GetObject"),
        "{err}"
    );

    let err = run_with(&[], &["inspect", "s3://no-such-bucket/hpt"]);
    assert!(
        err.contains(&format!(
            "bucket 'no-such-bucket' of 's3://no-such-bucket/hpt' does not exist; check the bucket name and the endpoint ({})",
            s3.endpoint
        )),
        "{err}"
    );

    let err = run_with(&[], &["inspect", "s3://error-models/nothing-here"]);
    assert!(
        err.contains("'s3://error-models/nothing-here' holds no objects; check the prefix"),
        "{err}"
    );
    let err = run_with(&[], &["validate", "s3://error-models/hpt/1/variables"]);
    assert!(
        err.contains("no SavedModel found under 's3://error-models/hpt/1/variables'"),
        "{err}"
    );
    let err = run_with(&[], &["inspect", "s3://Bad_Bucket/x"]);
    assert!(
        err.contains("'s3://Bad_Bucket/x' is not a valid object-storage URL"),
        "{err}"
    );

    // TensorFlow's own S3 variables reach the same server.
    let mut cmd = common::smtool();
    s3.env(&mut cmd);
    let host = s3.endpoint.trim_start_matches("http://");
    let out = cmd
        .env_remove("AWS_ENDPOINT_URL")
        .env("S3_ENDPOINT", host)
        .env("S3_USE_HTTPS", "0")
        .env("S3_VERIFY_SSL", "0")
        .args(["inspect", "--json", "s3://error-models/hpt"])
        .output()
        .expect("smtool");
    assert!(out.status.success(), "{}", common::stderr(&out));

    // A remote --out is refused before anything is read.
    let err = run_with(
        &[],
        &[
            "add-classify",
            "s3://error-models/hpt",
            "--labels",
            "fixtures/digits/labels.txt",
            "--out",
            "s3://error-models/out",
        ],
    );
    assert!(
        err.contains("--out 's3://error-models/out' is in object storage"),
        "{err}"
    );
}

#[test]
fn add_classify_publishes_the_next_version_whole() {
    let Some(s3) = s3() else { return };
    s3.mkbucket("classify-models");
    s3.upload(
        &common::fixture("digits/model"),
        "s3://classify-models/digits/1",
    );
    let args = [
        "add-classify",
        "s3://classify-models/digits",
        "--labels",
        "fixtures/digits/labels.txt",
        "--feature",
        "x=image",
        "--as-next-version",
        "--json",
    ];
    let report: serde_json::Value = serde_json::from_str(&s3.smtool_ok(&args)).unwrap();
    assert_eq!(report["dst"], "s3://classify-models/digits/2");
    assert_eq!(report["new_version"], 2);
    let listed = s3.list("s3://classify-models/digits");
    let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "digits/1/fingerprint.pb",
            "digits/1/saved_model.pb",
            "digits/1/variables/variables.data-00000-of-00001",
            "digits/1/variables/variables.index",
            "digits/2/saved_model.pb",
            "digits/2/variables/variables.data-00000-of-00001",
            "digits/2/variables/variables.index",
        ],
        "no staging objects are left"
    );
    let shard = |v: &str| {
        listed
            .iter()
            .find(|(k, _)| k == &format!("digits/{v}/variables/variables.data-00000-of-00001"))
            .map(|(_, s)| *s)
    };
    assert_eq!(shard("1"), shard("2"));
    let out = s3.smtool(&["validate", "--json", "s3://classify-models/digits"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["passed"], 2, "{report}");
    let classify = &report["models"][1]["signatures"];
    assert!(
        classify
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["key"] == "classify" && s["method_name"] == "tensorflow/serving/classify"),
        "{classify}"
    );

    // diff compares the two remote versions, naming them by URL.
    let out = s3.smtool(&["diff", "--format", "json", "s3://classify-models/digits"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let diff: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(diff["old"]["path"], "s3://classify-models/digits/1");
    assert_eq!(diff["new"]["path"], "s3://classify-models/digits/2");
    assert_eq!(diff["summary"]["breaking"], 0, "{diff}");
    assert!(
        diff["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["signature"] == "classify"),
        "{diff}"
    );

    // warmup publishes a version with warmup requests the same way; the requests name the
    // model as the bucket does.
    let report: serde_json::Value = serde_json::from_str(&s3.smtool_ok(&[
        "warmup",
        "s3://classify-models/digits",
        "--from-signature",
        "--signature",
        "serving_default",
        "--as-next-version",
        "--json",
    ]))
    .unwrap();
    assert_eq!(report["dst"], "s3://classify-models/digits/3", "{report}");
    let keys: Vec<String> = s3
        .list("s3://classify-models/digits/3")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        keys.contains(&"digits/3/assets.extra/tf_serving_warmup_requests".to_owned()),
        "{keys:?}"
    );
    let out = s3.smtool(&["validate", "--json", "s3://classify-models/digits/3"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["passed"], 1, "{report}");

    // The edited model downloaded whole: TensorFlow classifies with it as with a local edit.
    let out_dir = common::tempdir();
    let local = out_dir.path().join("digits-classify");
    s3.smtool_ok(&[
        "add-classify",
        "s3://classify-models/digits",
        "--version",
        "1",
        "--labels",
        "fixtures/digits/labels.txt",
        "--feature",
        "x=image",
        "--out",
        path_str(&local),
    ]);
    let check = s3.helper_python_check(&local);
    assert!(check.contains("classify"), "{check}");
}

impl S3 {
    /// Loads `dir` with the reference TensorFlow and lists its signatures.
    fn helper_python_check(&self, dir: &Path) -> String {
        let out = Command::new(&self.python)
            .args([
                "-c",
                "import sys, tensorflow as tf; m = tf.saved_model.load(sys.argv[1]); print(sorted(m.signatures.keys()))",
                path_str(dir),
            ])
            .env("TF_CPP_MIN_LOG_LEVEL", "3")
            .output()
            .expect("python");
        assert!(out.status.success(), "{}", common::stderr(&out));
        common::stdout(&out)
    }
}

/// The versions `GET /v1/models/NAME` lists as AVAILABLE.
fn available(rest: std::net::SocketAddr, name: &str) -> Vec<String> {
    let (status, body) = common::http(rest, "GET", &format!("/v1/models/{name}"), None);
    if status != 200 {
        return Vec::new();
    }
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    doc["model_version_status"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|v| v["state"] == "AVAILABLE")
                .filter_map(|v| v["version"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Looks every 100 ms (at most 1200 times) until `done` holds; false when it never did.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..1200 {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[test]
fn serve_follows_a_remote_base_path_without_failing_a_request() {
    let Some(s3) = s3() else { return };
    let Some(python) = common::reference_python() else {
        return;
    };
    s3.mkbucket("serve-models");
    s3.upload(
        &common::fixture("half_plus_two/1"),
        "s3://serve-models/hpt/1",
    );
    let mut cmd = common::smtool();
    s3.env(&mut cmd).args([
        "serve",
        "--model_name=hpt",
        "--model_base_path=s3://serve-models/hpt",
        "--port=0",
        "--rest_api_port=0",
        "--file_system_poll_wait_seconds=1",
    ]);
    let served = common::spawn_serve_command(cmd, &common::venv_of(&python));
    let rest = served.rest;
    // Stopped however the test ends.
    let _server = KillOnDrop(served.child);
    assert_eq!(available(rest, "hpt"), ["1"]);

    // Requests flow while new versions arrive.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // Version 1 halves and adds two, version 2 adds three.
            let (mut by_v1, mut by_v2, mut failed) = (0u32, 0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && by_v1 + by_v2 < 100_000 {
                let (status, body) = common::http(
                    rest,
                    "POST",
                    "/v1/models/hpt:predict",
                    Some(br#"{"instances": [1.0, 2.0]}"#),
                );
                match (status, body.as_str()) {
                    (200, r#"{"predictions":[2.5,3.0]}"#) => by_v1 += 1,
                    (200, r#"{"predictions":[3.5,4.0]}"#) => by_v2 += 1,
                    _ if failed.len() < 10 => failed.push(format!("{status} {body}")),
                    _ => {}
                }
            }
            (by_v1, by_v2, failed)
        })
    };

    // Version 2 arrives without its graph file first (an upload in progress): it is not
    // synced, and version 1 keeps serving.
    let partial = common::tempdir();
    let v2 = partial.path().join("2");
    common::copy_dir(&common::fixture("half_plus_two/2"), &v2);
    let graph = partial.path().join("graph");
    std::fs::create_dir(&graph).unwrap();
    std::fs::rename(v2.join("saved_model.pb"), graph.join("saved_model.pb")).unwrap();
    s3.upload(&v2, "s3://serve-models/hpt/2");
    // Two polls see the version without its graph file; it stays out.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(available(rest, "hpt"), ["1"]);

    // The graph file completes it: version 2 is synced, loaded, and replaces version 1.
    s3.upload(&graph, "s3://serve-models/hpt/2");
    assert!(
        eventually(|| available(rest, "hpt") == ["2"]),
        "version 2 was not picked up: {:?}",
        available(rest, "hpt")
    );
    // And one published by smtool itself, which stages it and writes the graph file last.
    let out = s3.smtool(&[
        "add-classify",
        "s3://serve-models/hpt",
        "--labels-from-asset",
        "missing.txt",
        "--as-next-version",
    ]);
    assert_eq!(out.status.code(), Some(2), "a bad edit publishes nothing");
    assert!(s3.list("s3://serve-models/hpt/3").is_empty());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (by_v1, by_v2, failed) = client.join().unwrap();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(
        by_v1 > 0 && by_v2 > 0,
        "{by_v1} answers by version 1, {by_v2} by version 2"
    );

    // Bad credentials at start-up name the URL.
    let mut cmd = common::smtool();
    let out = s3
        .env(&mut cmd)
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .args([
            "serve",
            "--model_name=hpt",
            "--model_base_path=s3://serve-models/hpt",
            "--port=0",
            "--rest_api_port=0",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("model 'hpt': no credentials for 's3://serve-models/hpt'"),
        "{err}"
    );
}

/// The remote-model caches under `temp`.
fn caches(temp: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(temp)
        .expect("read temp dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".smtool-serve-cache-"))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn a_server_killed_outright_leaves_its_cache_to_the_next_one_to_remove() {
    let Some(s3) = s3() else { return };
    let Some(python) = common::reference_python() else {
        return;
    };
    s3.mkbucket("cache-models");
    s3.upload(
        &common::fixture("half_plus_two/1"),
        "s3://cache-models/hpt/1",
    );
    // The servers' own temporary directory, so that only their caches are in it.
    let temp = common::tempdir();
    let start = || {
        let mut cmd = common::smtool();
        s3.env(&mut cmd).env("TMPDIR", temp.path()).args([
            "serve",
            "--model_name=hpt",
            "--model_base_path=s3://cache-models/hpt",
            "--port=0",
            "--rest_api_port=0",
        ]);
        let served = common::spawn_serve_command(cmd, &common::venv_of(&python));
        assert_eq!(available(served.rest, "hpt"), ["1"]);
        served.child
    };
    let mut first = start();
    let left = caches(temp.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].join("0/1/saved_model.pb").is_file(), "{left:?}");
    // SIGKILL: the server cannot tidy up.
    first.kill().expect("kill");
    first.wait().expect("wait");
    assert_eq!(caches(temp.path()), left);

    // The next server removes it, and keeps its own.
    let mut second = KillOnDrop(start());
    let now = caches(temp.path());
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, left, "the abandoned cache is still there");
    // Stopped as usual, it removes its own.
    common::signal(&second.0, "TERM");
    second.0.wait().expect("wait");
    assert_eq!(caches(temp.path()), Vec::<PathBuf>::new());
}

/// A child process killed when this is dropped, so a failed assertion leaves no server behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
