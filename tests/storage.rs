//! Models in object storage, against a real S3 server: moto's (from PyPI, python/s3_server.py)
//! on a loopback port, with access keys checked, fixtures uploaded with boto3. Skips without
//! the reference Python; with SMTOOL_REQUIRE_TF=1 a server that cannot start fails the tests.
#![cfg(feature = "storage")]

mod common;

mod storage_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use storage_server::{
    assert_classify_signature, assert_versions_become, available, path_str, KillOnDrop, Server,
    Store,
};

/// The S3 server of this test process and the keys it knows.
struct S3 {
    server: Server,
    key: (String, String),
    /// A user allowed nothing.
    denied: (String, String),
}

impl std::ops::Deref for S3 {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Store for S3 {
    fn server(&self) -> &Server {
        &self.server
    }

    const FOREIGN: &'static [&'static str] = &[
        "AWS_ENDPOINT",
        "AWS_ENDPOINT_URL_S3",
        "S3_ENDPOINT",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
    ];

    /// The server's endpoint and the test user's keys.
    fn reach<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.key.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.key.1)
            .env("AWS_REGION", "us-east-1")
    }
}

fn start() -> Result<S3, String> {
    let server = Server::start("s3_server.py", "moto[server]")?;
    let setup = Command::new(&server.python)
        .arg(common::root().join("python/s3_server.py"))
        .arg("setup")
        .arg(&server.endpoint)
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
        key: pair("KEY")?,
        denied: pair("DENIED")?,
        server,
    })
}

/// The server shared by the tests of this file; `None` means skip.
fn s3() -> Option<&'static S3> {
    static SERVER: OnceLock<Option<S3>> = OnceLock::new();
    storage_server::shared(&SERVER, start)
}

#[test]
fn inspect_and_validate_read_only_metadata_objects() {
    let Some(s3) = s3() else { return };
    s3.check_a_model_tree("s3://inspect-models");

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
    s3.assert_read_only_metadata("inspect-models");
}

#[test]
fn errors_name_the_url_and_the_fix() {
    let Some(s3) = s3() else { return };
    s3.bucket_holding("half_plus_two/1", "s3://error-models/hpt/1");
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

    s3.check_prefixes_without_a_model("s3://error-models");
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
    s3.bucket_holding("digits/model", "s3://classify-models/digits/1");
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
    assert_classify_signature(&report["models"][1]["signatures"]);

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
    s3.add_classify_into("s3://classify-models/digits", &["--version", "1"], &local);
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

#[cfg(feature = "serve")]
#[test]
fn serve_follows_a_remote_base_path_without_failing_a_request() {
    let Some(s3) = s3() else { return };
    // Stopped however the test ends.
    let Some((rest, _server)) = s3.serve_half_plus_two("s3://serve-models/hpt") else {
        return;
    };
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
    assert_versions_become(rest, "hpt", &["2"]);
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
