//! Shared helpers for the integration tests: running the real binary on the real fixtures, and
//! finding the reference Python TensorFlow.
#![allow(dead_code)]

#[cfg(feature = "serve")]
pub mod server;
pub mod sstable;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path under `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// The smtool binary built for this test run.
pub fn smtool() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smtool"));
    cmd.current_dir(root());
    cmd
}

/// Runs smtool with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    smtool()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start smtool: {e}"))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs smtool with `args` and returns its output; a run that has not ended after a minute is
/// killed and fails the test (it would have blocked).
pub fn run_to_end(args: &[&str]) -> Output {
    let mut cmd = smtool();
    cmd.args(args);
    output_to_end(cmd)
}

/// Runs `cmd` with no stdin and returns its output, as [`run_to_end`] does.
pub fn output_to_end(mut cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(std::time::Duration::from_secs(60)).is_err() {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        let _ = waiter.join();
        panic!("{what} blocked");
    }
    waiter
        .join()
        .expect("waiter thread")
        .expect("smtool output")
}

/// Runs `cmd` (a command of the smtool binary, see [`output_to_end`]), checks that it could not
/// run (exit 2), and returns its stderr.
pub fn refused_by(cmd: Command) -> String {
    let what = format!("{cmd:?}");
    let out = output_to_end(cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    err
}

/// Runs smtool with `args`, checks that it could not run (exit 2), and returns its stderr.
pub fn refused(args: &[&str]) -> String {
    let mut cmd = smtool();
    cmd.args(args);
    refused_by(cmd)
}

/// Runs smtool with `args` and checks that it could not run (exit 2) and said `want` on stderr.
pub fn assert_refused(args: &[&str], want: &str) {
    let err = refused(args);
    assert!(err.contains(want), "{args:?}: {err}");
}

/// Runs `smtool serve` on half_plus_two with `flag PORT`, a port another socket holds, and
/// `extra` flags; checks that it could not run, and returns the port and its stderr.
/// `--tensorflow-dir` points at no TensorFlow: the port must be checked before loading it.
pub fn refused_on_a_taken_port(flag: &str, extra: &[&str]) -> (String, String) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let mut args = vec!["serve", "fixtures/half_plus_two", flag, &port];
    args.extend_from_slice(extra);
    args.extend(["--tensorflow-dir", "fixtures"]);
    let err = refused(&args);
    (port, err)
}

/// Writes `text` to the file `name` in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// Sends a signal to a child process, as a user's `kill -NAME` would.
pub fn signal(child: &std::process::Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} failed");
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap_or_else(|e| panic!("cannot run mkfifo: {e}"));
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Runs smtool with `args`, expects success, parses stdout as JSON.
pub fn run_json(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "smtool {args:?} failed: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "smtool {args:?} printed invalid JSON: {e}\n{}",
            stdout(&out)
        )
    })
}

/// True when tests that need TensorFlow must not skip (CI sets SMTOOL_REQUIRE_TF=1).
pub fn tensorflow_required() -> bool {
    std::env::var("SMTOOL_REQUIRE_TF").is_ok_and(|v| v == "1")
}

/// The Python interpreter that has the reference TensorFlow (SMTOOL_TEST_PYTHON, as set up by
/// scripts/test.sh). `None` means skip; in CI a missing interpreter fails the test instead.
pub fn reference_python() -> Option<PathBuf> {
    let found = std::env::var_os("SMTOOL_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let venv = root().join(".venv/bin/python");
            venv.is_file().then_some(venv)
        })
        .filter(|p| p.is_file());
    if found.is_none() {
        assert!(
            !tensorflow_required(),
            "SMTOOL_REQUIRE_TF=1 but no reference Python: run scripts/test.sh or set SMTOOL_TEST_PYTHON"
        );
        eprintln!("skipping: no reference Python TensorFlow (run scripts/test.sh to set it up)");
    }
    found
}

/// A copy of the SavedModel `from` at `to` whose first meta graph `edit` changed (its stale
/// fingerprint left out).
pub fn edited_copy(
    from: &Path,
    to: &Path,
    edit: impl FnOnce(&mut smtool::proto::tensorflow::MetaGraphDef),
) {
    use prost::Message;
    copy_dir(from, to);
    let pb = to.join("saved_model.pb");
    let mut sm = smtool::proto::tensorflow::SavedModel::decode(
        std::fs::read(&pb).expect("read pb").as_slice(),
    )
    .expect("model parses");
    edit(&mut sm.meta_graphs[0]);
    std::fs::write(&pb, sm.encode_to_vec()).expect("write pb");
    let _ = std::fs::remove_file(to.join("fingerprint.pb"));
}

/// Runs `cmd` (its program, arguments, environment and directory) to its end, and returns its
/// output and its peak resident memory in KiB, as the reference Python's `resource` module
/// measures its only child.
pub fn output_and_peak_rss(python: &Path, cmd: &Command) -> (Output, u64) {
    const MEASURE: &str = "import resource, subprocess, sys\n\
        code = subprocess.call(sys.argv[1:])\n\
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n\
        sys.stderr.write('\\npeak_rss_kb=%d\\n' % peak)\n\
        sys.exit(code if code >= 0 else 128 - code)\n";
    let mut measured = Command::new(python);
    measured
        .args(["-c", MEASURE])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => measured.env(key, v),
            None => measured.env_remove(key),
        };
    }
    measured.current_dir(cmd.get_current_dir().map_or_else(root, Path::to_path_buf));
    measured.env("TF_CPP_MIN_LOG_LEVEL", "3");
    let mut out = measured
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (rest, peak) = stderr
        .trim_end()
        .rsplit_once("\npeak_rss_kb=")
        .unwrap_or_else(|| panic!("no peak memory line in: {stderr}"));
    let peak = peak.parse().expect("peak memory in KiB");
    out.stderr = rest.trim_start().as_bytes().to_vec();
    (out, peak)
}

/// Runs a script under `python/` with the reference interpreter.
pub fn run_python(python: &Path, script: &str, args: &[&str]) -> Output {
    Command::new(python)
        .arg(root().join("python").join(script))
        .args(args)
        .current_dir(root())
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()))
}

/// Runs a script under `python/` (see [`run_python`]) that must succeed, and returns the JSON
/// it prints.
pub fn run_python_json(python: &Path, script: &str, args: &[&str]) -> serde_json::Value {
    let out = run_python(python, script, args);
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {}", stdout(&out)))
}

/// The `add-classify` arguments that give the Keras digits export a classify head taking
/// encoded images as feature `x`, with the digits' labels.
pub const DIGITS_IMAGE_CLASSIFY: &[&str] = &[
    "fixtures/digits/model",
    "--labels",
    "fixtures/digits/labels.txt",
    "--feature",
    "x=image",
];

/// Writes at `out` the digits model with add-classify's image head (`--feature x=image`).
pub fn digits_image_classify(out: &Path) {
    let mut args = vec!["add-classify"];
    args.extend_from_slice(DIGITS_IMAGE_CLASSIFY);
    args.extend(["--out", out.to_str().expect("UTF-8 temp path")]);
    let edited = run(&args);
    assert!(edited.status.success(), "{}", stderr(&edited));
}

/// TF Serving's Python client (python/check_serving_flags.py) against `target`, asking
/// half_plus_two model `model` for its known answer, with `extra` arguments.
pub fn serving_client(python: &Path, target: &str, model: &str, extra: &[&str]) -> Output {
    let args = serving_client_args(target, model, extra);
    run_python(python, "check_serving_flags.py", &args)
}

/// [`serving_client`], which must succeed; returns the JSON summary it prints.
pub fn serving_client_summary(
    python: &Path,
    target: &str,
    model: &str,
    extra: &[&str],
) -> serde_json::Value {
    let args = serving_client_args(target, model, extra);
    run_python_json(python, "check_serving_flags.py", &args)
}

fn serving_client_args<'a>(target: &'a str, model: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--target", target, "--model", model, "--want", "3.5,4,5.5"];
    args.extend_from_slice(extra);
    args
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"))
}

#[cfg(feature = "serve")]
/// The libtensorflow the serve tests use, found the way users find it (the reference Python's
/// tensorflow package, or TENSORFLOW_DIR) and loaded once per test process. `None` means skip;
/// with SMTOOL_REQUIRE_TF=1 a missing or unloadable library fails instead.
pub fn tensorflow() -> Option<&'static smtool::serve::tf::TensorFlow> {
    use smtool::serve::library::{self, LibraryOptions};
    use smtool::serve::tf::TensorFlow;
    static TF: std::sync::OnceLock<Option<&'static TensorFlow>> = std::sync::OnceLock::new();
    *TF.get_or_init(|| {
        let python = reference_python()?;
        let options = LibraryOptions {
            env_dir: std::env::var_os("TENSORFLOW_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            pythons: vec![python],
            fetch: false,
            ..Default::default()
        };
        let loaded = library::locate(&options, &mut |_| {})
            .map_err(|e| format!("{e:#}"))
            .and_then(|found| {
                TensorFlow::load(&found.library)
                    .map(|(tf, _)| tf)
                    .map_err(|e| format!("{e}\n{}", e.stderr))
            });
        match loaded {
            Ok(tf) => Some(tf),
            Err(e) => {
                assert!(
                    !tensorflow_required(),
                    "SMTOOL_REQUIRE_TF=1 but libtensorflow cannot be loaded: {e}"
                );
                eprintln!("skipping: no libtensorflow ({e})");
                None
            }
        }
    })
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The virtualenv a Python interpreter belongs to (`<venv>/bin/python`).
pub fn venv_of(python: &Path) -> PathBuf {
    python
        .parent()
        .and_then(Path::parent)
        .expect("python inside a venv")
        .to_path_buf()
}

/// The reference Python and its venv. `None` means skip; in CI it fails the test instead.
pub fn reference_venv() -> Option<(PathBuf, PathBuf)> {
    let python = reference_python()?;
    let venv = venv_of(&python);
    Some((python, venv))
}

/// The reference Python's venv, once the TensorFlow library loads. `None` means skip; in CI it
/// fails the test instead.
#[cfg(feature = "serve")]
pub fn venv_with_tensorflow() -> Option<PathBuf> {
    let python = reference_python()?;
    tensorflow()?;
    Some(venv_of(&python))
}

/// TF Serving's monitoring config that exports Prometheus metrics at its usual path.
pub const PROMETHEUS_CONFIG: &str =
    "prometheus_config { enable: true path: \"/monitoring/prometheus/metrics\" }\n";

/// `smtool serve` flags that let the system choose both ports.
pub const FREE_PORTS: &[&str] = &["--rest_api_port=0", "--port=0"];

/// `smtool serve` flags for a test server: both ports free, no polling of the model
/// directories, no download of TensorFlow.
pub const TEST_SERVE_FLAGS: &[&str] = &[
    "--rest_api_port=0",
    "--port=0",
    "--file_system_poll_wait_seconds=0",
    "--no-fetch",
];

/// `smtool serve ARGS` with [`TEST_SERVE_FLAGS`].
pub fn serve_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    all.extend_from_slice(TEST_SERVE_FLAGS);
    all
}

/// `smtool serve` as TF Serving's Docker image runs it (`--model_name`, `--model_base_path`),
/// on half_plus_two named `name`, with `extra` flags and [`TEST_SERVE_FLAGS`].
pub fn half_plus_two_serve_args(name: &str, extra: &[&str]) -> Vec<String> {
    let base = fixture("half_plus_two");
    let mut args = vec![
        "serve".to_owned(),
        format!("--model_name={name}"),
        format!("--model_base_path={}", base.display()),
    ];
    args.extend(extra.iter().chain(TEST_SERVE_FLAGS).map(|s| s.to_string()));
    args
}

/// A running `smtool serve` binary.
pub struct Served {
    pub child: std::process::Child,
    /// The REST address it printed.
    pub rest: std::net::SocketAddr,
    /// The gRPC address it printed, if it printed one before the REST line.
    pub grpc: Option<std::net::SocketAddr>,
    /// Its whole stderr, once it exits.
    pub stderr: std::thread::JoinHandle<String>,
}

impl Served {
    /// Sends the signal `name` (as [`signal`]), checks that the server then exits with
    /// success, and returns its whole stderr.
    pub fn stop(mut self, name: &str) -> String {
        signal(&self.child, name);
        let status = self.child.wait().expect("wait");
        let stderr = self.stderr.join().expect("stderr reader");
        assert!(
            status.success(),
            "exit status {status} after SIG{name}:\n{stderr}"
        );
        stderr
    }
}

/// `cmd` (which runs `smtool serve`) set to find TensorFlow through `venv`, with its output as
/// a user sees it (no TENSORFLOW_DIR, no TF_CPP_MIN_LOG_LEVEL) and stderr piped.
pub fn as_user_serves<'a>(cmd: &'a mut Command, venv: &Path) -> &'a mut Command {
    cmd.env("VIRTUAL_ENV", venv)
        .env_remove("TENSORFLOW_DIR")
        .env_remove("TF_CPP_MIN_LOG_LEVEL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
}

/// Clients that open connections to `addr` and send `payload` a byte at a time, 100 ms
/// apart, never finishing it. Each thread answers whether the server hung up on it
/// (within 30 s).
pub fn slow_clients(
    addr: std::net::SocketAddr,
    n: usize,
    payload: &'static [u8],
) -> Vec<std::thread::JoinHandle<bool>> {
    (0..n)
        .map(|_| {
            std::thread::spawn(move || match std::net::TcpStream::connect(addr) {
                Ok(c) => {
                    c.set_read_timeout(Some(std::time::Duration::from_millis(100)))
                        .ok();
                    dribbles_until_dropped(c, payload.iter().copied().cycle())
                }
                Err(_) => true,
            })
        })
        .collect()
}

/// [`slow_clients`] on a Unix socket, each sending `payload` once and then nothing.
#[cfg(unix)]
pub fn slow_unix_clients(
    path: &Path,
    n: usize,
    payload: &'static [u8],
) -> Vec<std::thread::JoinHandle<bool>> {
    (0..n)
        .map(|_| {
            let path = path.to_path_buf();
            std::thread::spawn(
                move || match std::os::unix::net::UnixStream::connect(&path) {
                    Ok(c) => {
                        c.set_read_timeout(Some(std::time::Duration::from_millis(100)))
                            .ok();
                        dribbles_until_dropped(c, payload.iter().copied())
                    }
                    Err(_) => true,
                },
            )
        })
        .collect()
}

/// Writes `bytes` one at a time, each followed by a short read, for 300 reads; true once the
/// server closes or resets the connection.
fn dribbles_until_dropped(
    mut c: impl std::io::Read + std::io::Write,
    mut bytes: impl Iterator<Item = u8>,
) -> bool {
    let mut buf = [0u8; 512];
    for _ in 0..300 {
        if let Some(byte) = bytes.next() {
            if c.write_all(&[byte]).is_err() {
                return true;
            }
        }
        match c.read(&mut buf) {
            Ok(0) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            _ => {}
        }
    }
    false
}

/// Starts `smtool ARGS` (a `serve` command) finding TensorFlow through `venv`, with its
/// output as a user sees it (no TENSORFLOW_DIR, no TF_CPP_MIN_LOG_LEVEL), and waits for the
/// addresses it prints.
pub fn spawn_serve<S: AsRef<std::ffi::OsStr>>(args: &[S], venv: &Path) -> Served {
    let mut cmd = smtool();
    cmd.args(args);
    spawn_serve_command(cmd, venv)
}

#[cfg(feature = "serve")]
/// [`spawn_serve`] through the reference venv, once TensorFlow loads; `None` (skip) without it,
/// as [`venv_with_tensorflow`].
pub fn spawn_serve_with_tensorflow<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Option<Served> {
    let venv = venv_with_tensorflow()?;
    Some(spawn_serve(args, &venv))
}

/// [`spawn_serve`] for a command the caller made (with its own environment, say).
pub fn spawn_serve_command(mut cmd: Command, venv: &Path) -> Served {
    use std::io::BufRead;
    let mut child = as_user_serves(&mut cmd, venv)
        .spawn()
        .expect("start smtool serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut grpc = None;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("smtool serve: gRPC API on ") {
                grpc = rest.split(' ').next().and_then(|a| a.parse().ok());
            }
            if let Some(rest) = line.strip_prefix("smtool serve: REST API on http://") {
                if let Some(addr) = rest.split('/').next().and_then(|a| a.parse().ok()) {
                    let _ = tx.send((addr, grpc));
                }
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let (rest, grpc) = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("smtool serve printed no address"));
    Served {
        child,
        rest,
        grpc,
        stderr: reader,
    }
}

#[cfg(feature = "serve")]
/// A model written by one of the `python/make_*_model.py` scripts into a fresh directory, as
/// `(dir, export)`; `None` (skip) without the reference Python or libtensorflow.
pub fn python_model(script: &str, name: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let (dir, export, _) = python_model_with(script, name, &[])?;
    Some((dir, export))
}

#[cfg(feature = "serve")]
/// [`python_model`] with `extra` arguments after the export path; also returns what the
/// script printed.
pub fn python_model_with(
    script: &str,
    name: &str,
    extra: &[&str],
) -> Option<(tempfile::TempDir, PathBuf, String)> {
    let python = reference_python()?;
    tensorflow()?;
    let dir = tempdir();
    let export = dir.path().join(name);
    let mut args = vec![export.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let out = run_python(&python, script, &args);
    assert!(out.status.success(), "{script}: {}", stderr(&out));
    Some((dir, export, stdout(&out)))
}

#[cfg(feature = "serve")]
/// A gRPC channel to a server at `addr`, connected on `runtime`.
pub fn grpc_channel(
    runtime: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
) -> tonic::transport::Channel {
    runtime
        .block_on(
            tonic::transport::Channel::from_shared(format!("http://{addr}"))
                .expect("uri")
                .connect(),
        )
        .expect("connect to the gRPC server")
}

/// A minimal HTTP/1.1 exchange; returns status and body.
pub fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> (u16, String) {
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (status, _, body) = http_exchange(addr, &head, body);
    (status, body)
}

/// Sends `head` (a request line and headers, written by the caller) and `body`, and returns the
/// response's status, head and body.
pub fn http_exchange(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(300)))
        .ok();
    s.write_all(head.as_bytes()).expect("write head");
    // The server may answer (413) before reading a large body and close the connection.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, head.to_owned(), body.to_owned())
}

/// Writes at `path` a decompression bomb: a 20000x20000 grey PNG of zeros, 390 KB on disk,
/// 400 MB of pixels (1.6 GB as floats), made with the reference Python's zlib.
pub fn png_bomb(python: &Path, path: &Path) {
    let make = "import struct, sys, zlib\n\
        n = 20000\n\
        chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))\n\
        c = zlib.compressobj(9)\n\
        row = bytes(n + 1)\n\
        data = b''.join(c.compress(row) for _ in range(n)) + c.flush()\n\
        ihdr = struct.pack('>IIBBBBB', n, n, 8, 0, 0, 0, 0)\n\
        open(sys.argv[1], 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', data) + chunk(b'IEND', b''))\n";
    let made = Command::new(python)
        .args(["-c", make])
        .arg(path)
        .output()
        .expect("python");
    assert!(made.status.success(), "{}", stderr(&made));
}
