//! `smtool serve` started with TensorFlow Serving's command-line flags, checked with TF
//! Serving's own Python client (tensorflow-serving-api over grpcio, grpcio-health-checking)
//! over TCP, a Unix socket and TLS with client certificates, and with plain HTTP for REST.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// A minimal HTTP/1.1 exchange; returns status, head and body.
fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    s.write_all(request.as_bytes()).expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String, String) {
    http(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://example.com\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// TF Serving's Python client against `target`; returns its JSON summary.
fn python_client(python: &Path, target: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "--target",
        target,
        "--model",
        "half_plus_two",
        "--want",
        "3.5,4,5.5",
    ];
    args.extend_from_slice(extra);
    let out = common::run_python(python, "check_serving_flags.py", &args);
    assert!(
        out.status.success(),
        "client on {target}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        common::stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("client summary")
}

/// The Docker image's command line (`--port --rest_api_port --model_name --model_base_path`)
/// with the transport flags TF Serving documents: gRPC over TCP and a Unix socket, the health
/// service, channel arguments, thread limits, REST timeout and CORS, responses as
/// tensor_content, batching and monitoring.
#[test]
fn tf_serving_command_line_over_tcp_unix_socket_and_rest() {
    let Some(python) = common::reference_python() else {
        return;
    };
    let venv = common::venv_of(&python);
    let dir = common::tempdir();
    let socket = dir.path().join("grpc.sock");
    let monitoring = dir.path().join("monitoring.config");
    std::fs::write(
        &monitoring,
        "prometheus_config { enable: true path: \"/monitoring/prometheus/metrics\" }\n",
    )
    .expect("write monitoring config");
    let batching = dir.path().join("batching.config");
    std::fs::write(
        &batching,
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 1000 }\nnum_batch_threads { value: 2 }\n",
    )
    .expect("write batching config");
    let base = common::fixture("half_plus_two");
    let args = [
        "serve".to_owned(),
        "--port=0".to_owned(),
        "--rest_api_port=0".to_owned(),
        "--model_name=half_plus_two".to_owned(),
        format!("--model_base_path={}", base.display()),
        format!("--grpc_socket_path={}", socket.display()),
        "--enable_grpc_healthcheck_service".to_owned(),
        "--grpc_channel_arguments=grpc.max_receive_message_length=1048576,grpc.keepalive_time_ms=60000,grpc.max_connection_age_ms=30000".to_owned(),
        "--grpc_max_threads=2".to_owned(),
        "--rest_api_num_threads=2".to_owned(),
        "--rest_api_timeout_in_ms=20000".to_owned(),
        "--rest_api_enable_cors_support=true".to_owned(),
        "--enable_serialization_as_tensor_content".to_owned(),
        "--enable_batching".to_owned(),
        format!("--batching_parameters_file={}", batching.display()),
        format!("--monitoring_config_file={}", monitoring.display()),
        "--file_system_poll_wait_seconds=0".to_owned(),
        "--no-fetch".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let common::Served {
        mut child,
        rest,
        grpc,
        stderr,
    } = common::spawn_serve(&args, &venv);
    let grpc = grpc.expect("gRPC address printed");

    let target = grpc.to_string();
    let summary = python_client(&python, &target, &["--health", "--expect-tensor-content"]);
    assert_eq!(summary["health"], "SERVING", "{target}");
    assert_eq!(summary["tensor_content"], true, "{target}");

    let (code, head, body) = post(
        rest,
        "/v1/models/half_plus_two:predict",
        r#"{"instances": [1.0, 2.0]}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json"),
        serde_json::json!({"predictions": [3.5, 4.0]})
    );
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    let (code, head, _) = http(
        rest,
        &format!(
            "OPTIONS /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: {rest}\r\nOrigin: http://example.com\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(code, 204, "{head}");
    assert!(
        head.contains("access-control-allow-methods: get, post, options"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: content-type"),
        "{head}"
    );

    let (code, _, body) = get(rest, "/healthz");
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = get(rest, "/readyz");
    assert_eq!((code, body.as_str()), (200, r#"{"status":"ready"}"#));
    let (code, _, metrics) = get(rest, "/monitoring/prometheus/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains(":tensorflow:serving:request_count{"),
        "{metrics}"
    );

    signal(&child, "TERM");
    assert!(child.wait().expect("wait").success());
    let stderr = stderr.join().expect("stderr");
    // The one channel argument tonic has no setting for is named, once.
    let warned: Vec<&str> = stderr.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].contains("grpc.max_connection_age_ms has no effect"),
        "{stderr}"
    );
}
