//! A local object-storage server for the `s3://` and `gs://` tests: one of the python/ scripts
//! (`s3_server.py`, `gcs_server.py`) run as `serve LOG`, which prints `PORT <n>`, logs every
//! request as an access-log line and runs until its standard input closes, and the same
//! script's client commands (`mkbucket`, `upload`, `list`). A test file wraps the [`Server`] in
//! a type that implements [`Store`] with the environment smtool reaches it through.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

use crate::common;

/// A server started by a python/ script.
pub struct Server {
    pub endpoint: String,
    /// The access log.
    pub log: PathBuf,
    /// The reference Python, which runs the script.
    pub python: PathBuf,
    /// Holds the log; tests may write files of their own here.
    pub dir: tempfile::TempDir,
    script: &'static str,
    /// Runs until this process ends: its standard input is a pipe from here.
    _child: Child,
}

impl Server {
    /// Starts `python/SCRIPT serve LOG` with the reference Python; `package` is what
    /// python/requirements.txt installs for it, named when it does not start.
    pub fn start(script: &'static str, package: &str) -> Result<Server, String> {
        let python = common::reference_python().ok_or("no reference Python")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = dir.path().join("requests.log");
        let mut child = Command::new(&python)
            .arg(common::root().join("python").join(script))
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
                format!("{script} did not start a server (is {package} installed? got {line:?})")
            })?;
        Ok(Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            python,
            dir,
            script,
            _child: child,
        })
    }
}

/// The server `start` makes, once per test process and shared by its tests; `None` means
/// skip. With SMTOOL_REQUIRE_TF=1 a server that cannot start fails the test instead.
pub fn shared<T: Send + Sync>(
    cell: &'static OnceLock<Option<T>>,
    start: impl FnOnce() -> Result<T, String>,
) -> Option<&'static T> {
    cell.get_or_init(|| match start() {
        Ok(s) => Some(s),
        Err(e) => {
            assert!(
                !common::tensorflow_required(),
                "SMTOOL_REQUIRE_TF=1 but the object-storage test server cannot start: {e}"
            );
            eprintln!("skipping: {e}");
            None
        }
    })
    .as_ref()
}

/// A running server and how smtool reaches it.
pub trait Store {
    fn server(&self) -> &Server;

    /// The variables of the environment that could point smtool elsewhere, removed by
    /// [`Store::env`].
    const FOREIGN: &'static [&'static str];

    /// `cmd` with this server's endpoint and credentials set.
    fn reach<'a>(&self, cmd: &'a mut Command) -> &'a mut Command;

    /// `cmd` with this server's endpoint and credentials in its environment, and no others.
    fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for var in Self::FOREIGN {
            cmd.env_remove(var);
        }
        self.reach(cmd)
    }

    /// Runs the script's client command `args[0]` against this server with `args[1..]`, and
    /// returns what it printed.
    fn helper(&self, args: &[&str]) -> String {
        let server = self.server();
        let mut cmd = Command::new(&server.python);
        cmd.arg(common::root().join("python").join(server.script))
            .arg(args[0])
            .arg(&server.endpoint)
            .args(&args[1..]);
        let out = self
            .env(&mut cmd)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", server.script));
        assert!(
            out.status.success(),
            "{} {args:?}: {}",
            server.script,
            common::stderr(&out)
        );
        common::stdout(&out)
    }

    fn mkbucket(&self, bucket: &str) {
        self.helper(&["mkbucket", bucket]);
    }

    /// Makes the bucket of `url` (`SCHEME://BUCKET/PREFIX`) and uploads the fixture directory
    /// `fixture` to it.
    fn bucket_holding(&self, fixture: &str, url: &str) {
        let (_, path) = url.split_once("://").expect("SCHEME://BUCKET/PREFIX");
        self.mkbucket(path.split('/').next().unwrap_or(path));
        self.upload(&common::fixture(fixture), url);
    }

    /// Uploads every file under `dir` below the URL `url` (`saved_model.pb` last).
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

    /// The objects read so far (GET without a query: object downloads, not listings), as
    /// `/BUCKET/KEY`.
    fn downloaded(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.server().log).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                // `"GET /BUCKET/KEY HTTP/1.1" 200`, the quotes escaped in some logs.
                let request = l.split('"').find_map(|part| {
                    let mut words = part.trim_end_matches('\\').split(' ');
                    let (method, path) = (words.next()?, words.next()?);
                    words.next()?.starts_with("HTTP/").then_some((method, path))
                })?;
                (request.0 == "GET" && !request.1.contains('?')).then(|| percent_decode(request.1))
            })
            .collect()
    }

    /// Uploads a tree of models under `base` (`SCHEME://BUCKET`, a new bucket): both versions
    /// of half_plus_two, a model with assets and a truncated one; checks that inspect names
    /// the latest version of `BASE/half_plus_two` by URL and that validate walks the tree and
    /// names the objects in its findings.
    fn check_a_model_tree(&self, base: &str) {
        let (_, bucket) = base.split_once("://").expect("SCHEME://BUCKET");
        self.mkbucket(bucket);
        for (fixture, under) in [
            ("half_plus_two", "half_plus_two"),
            ("vocab_assets", "team/vocab/1"),
            ("broken/truncated", "team/truncated"),
        ] {
            self.upload(&common::fixture(fixture), &format!("{base}/{under}"));
        }

        let report = self.smtool_json(&[
            "inspect",
            "--json",
            "--all",
            &format!("{base}/half_plus_two"),
        ]);
        let model = &report["models"][0];
        assert_eq!(model["path"], format!("{base}/half_plus_two/2"));
        assert_eq!(model["version"], 2);
        assert_eq!(model["available_versions"], serde_json::json!([1, 2]));
        assert_eq!(
            model["graph_file"],
            format!("{base}/half_plus_two/2/saved_model.pb")
        );
        assert_eq!(model["variables"]["present"], true);
        assert!(model["fingerprint"].is_object(), "{model}");

        // validate walks the bucket as a tree: two versions, the vocab model, the truncated one.
        let out = self.smtool(&["validate", "--json", base]);
        assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let models = report["models"].as_array().unwrap();
        let found: Vec<(&str, &str)> = models
            .iter()
            .map(|m| (m["path"].as_str().unwrap(), m["status"].as_str().unwrap()))
            .collect();
        let want = [
            ("half_plus_two/1", "pass"),
            ("half_plus_two/2", "pass"),
            ("team/truncated", "fail"),
            ("team/vocab/1", "pass"),
        ]
        .map(|(path, status)| (format!("{base}/{path}"), status));
        let want: Vec<(&str, &str)> = want.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        assert_eq!(found, want, "{report}");
        // Findings name the objects, never the local view.
        let text = serde_json::to_string(&models[2]).unwrap();
        assert!(text.contains(&format!("{base}/team/truncated")), "{text}");
        assert!(!text.contains(path_str(&std::env::temp_dir())), "{text}");
    }

    /// Checks the messages for a prefix holding nothing and for one holding no SavedModel,
    /// under `base`, which holds a model's version 1 at `BASE/hpt/1`.
    fn check_prefixes_without_a_model(&self, base: &str) {
        let out = self.smtool(&["inspect", &format!("{base}/nothing-here")]);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "'{base}/nothing-here' holds no objects; check the prefix"
            )),
            "{err}"
        );
        let out = self.smtool(&["validate", &format!("{base}/hpt/1/variables")]);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "no SavedModel found under '{base}/hpt/1/variables'"
            )),
            "{err}"
        );
    }

    /// `smtool add-classify` of the digits model at `src` (a remote base path or version) with
    /// `extra` arguments, into the local directory `out`; returns what it printed.
    fn add_classify_into(&self, src: &str, extra: &[&str], out: &Path) -> String {
        let mut args = vec!["add-classify", src];
        args.extend_from_slice(&common::DIGITS_IMAGE_CLASSIFY[1..]);
        args.extend_from_slice(extra);
        args.extend(["--out", path_str(out)]);
        self.smtool_ok(&args)
    }

    /// Checks that smtool read the graph files and variable indexes under `bucket` (the small
    /// files it reads) and never a variable shard or an asset.
    fn assert_read_only_metadata(&self, bucket: &str) {
        let read: Vec<String> = self
            .downloaded()
            .into_iter()
            .filter(|k| k.starts_with(&format!("/{bucket}/")))
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

    /// `smtool serve` of the model base path `base` as model `hpt`, polling it every second,
    /// once half_plus_two's version 1 is uploaded to `BASE/1` in a new bucket; the server
    /// stops when the guard is dropped. `None` (skip) without TensorFlow.
    #[cfg(feature = "serve")]
    fn serve_half_plus_two(&self, base: &str) -> Option<(std::net::SocketAddr, KillOnDrop)> {
        let venv = common::venv_with_tensorflow()?;
        self.bucket_holding("half_plus_two/1", &format!("{base}/1"));
        let mut cmd = common::smtool();
        self.env(&mut cmd).args([
            "serve",
            "--model_name=hpt",
            &format!("--model_base_path={base}"),
            "--port=0",
            "--rest_api_port=0",
            "--file_system_poll_wait_seconds=1",
        ]);
        let served = common::spawn_serve_command(cmd, &venv);
        Some((served.rest, KillOnDrop(served.child)))
    }

    fn smtool(&self, args: &[&str]) -> Output {
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

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `%XX` escapes decoded (servers log keys as the client encoded them).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text.get(i + 1..i + 3).filter(|_| bytes[i] == b'%');
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks that `signatures` (a model of validate's JSON report) hold add-classify's
/// `classify` signature.
pub fn assert_classify_signature(signatures: &serde_json::Value) {
    assert!(
        signatures
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["key"] == "classify" && s["method_name"] == "tensorflow/serving/classify"),
        "{signatures}"
    );
}

/// The versions `GET /v1/models/NAME` lists as AVAILABLE.
pub fn available(rest: std::net::SocketAddr, name: &str) -> Vec<String> {
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

/// Waits until the server at `rest` lists exactly the versions `want` of model `name` as
/// AVAILABLE, and fails the test when that never happens.
pub fn assert_versions_become(rest: std::net::SocketAddr, name: &str, want: &[&str]) {
    assert!(
        eventually(|| available(rest, name) == want),
        "the versions {want:?} of '{name}' never became available: {:?}",
        available(rest, name)
    );
}

/// Looks every 100 ms (at most 1200 times) until `done` holds; false when it never did.
pub fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..1200 {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// A child process killed when this is dropped, so a failed assertion leaves no server behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
