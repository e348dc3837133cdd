//! `smtool serve` started with TensorFlow Serving's command-line flags, checked with TF
//! Serving's own Python client (tensorflow-serving-api over grpcio, grpcio-health-checking)
//! over TCP, a Unix socket and TLS with client certificates, and with plain HTTP for REST.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A whole HTTP/1.1 request; returns status, head (lower case) and body.
fn http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let (status, head, body) = common::http_exchange(addr, request, b"");
    (status, head.to_ascii_lowercase(), body)
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

/// TF Serving's Python client against `target`; returns its JSON summary.
fn python_client(python: &Path, target: &str, extra: &[&str]) -> serde_json::Value {
    common::serving_client_summary(python, target, "half_plus_two", extra)
}

/// The Docker image's command line (`--port --rest_api_port --model_name --model_base_path`)
/// with the transport flags TF Serving documents: gRPC over TCP and a Unix socket, the health
/// service, channel arguments, thread limits, REST timeout and CORS, responses as
/// tensor_content, batching and monitoring.
#[test]
fn tf_serving_command_line_over_tcp_unix_socket_and_rest() {
    let Some((python, venv)) = common::reference_venv() else {
        return;
    };
    let dir = common::tempdir();
    let socket = dir.path().join("grpc.sock");
    let monitoring = common::write_file(dir.path(), "monitoring.config", common::PROMETHEUS_CONFIG);
    let batching = common::write_file(
        dir.path(),
        "batching.config",
        "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 1000 }\nnum_batch_threads { value: 2 }\n",
    );
    let args = common::half_plus_two_serve_args(
        "half_plus_two",
        &[
            &format!("--grpc_socket_path={}", socket.display()),
            "--enable_grpc_healthcheck_service",
            "--grpc_channel_arguments=grpc.max_receive_message_length=1048576,grpc.keepalive_time_ms=60000,grpc.max_connection_age_ms=30000",
            "--grpc_max_threads=2",
            "--rest_api_num_threads=2",
            "--rest_api_timeout_in_ms=20000",
            "--rest_api_enable_cors_support=true",
            "--enable_serialization_as_tensor_content",
            "--enable_batching",
            &format!("--batching_parameters_file={}", batching.display()),
            &format!("--monitoring_config_file={}", monitoring.display()),
        ],
    );
    let served = common::spawn_serve(&args, &venv);
    let (rest, grpc) = (served.rest, served.grpc.expect("gRPC address printed"));

    for target in [grpc.to_string(), format!("unix:{}", socket.display())] {
        let summary = python_client(&python, &target, &["--health", "--expect-tensor-content"]);
        assert_eq!(summary["health"], "SERVING", "{target}");
        assert_eq!(summary["tensor_content"], true, "{target}");
    }

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

    let stderr = served.stop("TERM");
    // The one channel argument tonic has no setting for is named, once.
    let warned: Vec<&str> = stderr.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warned.len(), 1, "{stderr}");
    assert!(
        warned[0].contains("grpc.max_connection_age_ms has no effect"),
        "{stderr}"
    );
}

/// Runs openssl with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (needed to make the test certificates)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        common::stderr(&out)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=smtool test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        let mut req = vec!["req", "-subj"];
        let subject = format!("/CN=smtool test {name}");
        req.push(&subject);
        req.extend(ec);
        let (key, csr, pem, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        req.extend(["-keyout", &key, "-out", &csr]);
        openssl(dir, &req);
        std::fs::write(dir.join(&extfile), ext).expect("write extensions");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extfile,
                "-out",
                &pem,
            ],
        );
    }
}

/// A protobuf text-format string literal.
fn text_string(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

/// `--ssl_config_file` with `client_verify`: TF Serving's client with a certificate signed by
/// `custom_ca` is served over TLS; without a certificate it is turned away.
#[test]
fn tls_with_client_certificates() {
    let Some((python, venv)) = common::reference_venv() else {
        return;
    };
    let dir = common::tempdir();
    make_certificates(dir.path());
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect("read PEM");
    let ssl = common::write_file(
        dir.path(),
        "ssl.config",
        &format!(
            "server_key: {}\nserver_cert: {}\ncustom_ca: {}\nclient_verify: true\n",
            text_string(&read("server.key")),
            text_string(&read("server.pem")),
            text_string(&read("ca.pem")),
        ),
    );
    let ssl_flag = format!("--ssl_config_file={}", ssl.display());
    let args = common::half_plus_two_serve_args("half_plus_two", &[&ssl_flag]);
    let served = common::spawn_serve(&args, &venv);
    let target = served.grpc.expect("gRPC address printed").to_string();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (ca, cert, key) = (path("ca.pem"), path("client.pem"), path("client.key"));
    let summary = python_client(
        &python,
        &target,
        &["--ca", &ca, "--cert", &cert, "--key", &key],
    );
    assert_eq!(summary["status"], "AVAILABLE");
    // No client certificate: the handshake fails, the call never reaches the model.
    let out = common::serving_client(
        &python,
        &target,
        "half_plus_two",
        &["--ca", &ca, "--connect-timeout", "5"],
    );
    assert!(!out.status.success(), "served without a client certificate");
    served.stop("TERM");
}

#[test]
fn bad_ssl_config_is_refused_before_loading() {
    let dir = common::tempdir();
    let ssl = dir.path().join("ssl.config");
    for (text, says) in [
        (
            "server_key: \"x\"\nserver_cert: \"y\"\n",
            "--ssl_config_file",
        ),
        (
            "server_key: \"x\"\nserver_cert: \"y\"\nclient_verify: true\n",
            "client_verify needs custom_ca",
        ),
        (
            "server_cert: 3\n",
            "Error parsing text-format tensorflow.serving.SSLConfig: ",
        ),
    ] {
        std::fs::write(&ssl, text).expect("write");
        let err = common::refused(&[
            "serve",
            "fixtures/half_plus_two",
            &format!("--ssl_config_file={}", ssl.display()),
            "--tensorflow-dir",
            "fixtures",
        ]);
        assert!(
            err.contains(says) && !err.contains("TensorFlow 2"),
            "{text}: {err}"
        );
    }
}

/// TF Serving's documented config polling: `--model_config_file` with
/// `--model_config_file_poll_wait_seconds`; a model added to the file is loaded and served, a
/// file that no longer parses changes nothing.
#[test]
fn model_config_file_is_polled_and_applied() {
    let dir = common::tempdir();
    let config = dir.path().join("models.config");
    let entry = |name: &str, rel: &str| {
        format!(
            "  config {{ name: '{name}' base_path: '{}' model_platform: 'tensorflow' }}\n",
            common::fixture(rel).display()
        )
    };
    let write = |text: &str| {
        // Written aside and renamed, so the poller never reads half a file.
        let tmp = dir.path().join("models.config.tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, &config).expect("rename config");
    };
    write(&format!(
        "model_config_list {{\n{}}}\n",
        entry("half_plus_two", "half_plus_two")
    ));
    let config_flag = format!("--model_config_file={}", config.display());
    let mut args = vec![
        "serve",
        &config_flag,
        "--model_config_file_poll_wait_seconds=1",
    ];
    args.extend_from_slice(common::FREE_PORTS);
    args.push("--no-fetch");
    let Some(served) = common::spawn_serve_with_tensorflow(&args) else {
        return;
    };
    let rest = served.rest;
    let (code, _, _) = get(rest, "/v1/models/iris");
    assert_eq!(code, 404);
    write(&format!(
        "model_config_list {{\n{}{}}}\n",
        entry("half_plus_two", "half_plus_two"),
        entry("iris", "iris_tf1")
    ));
    // Until the status says AVAILABLE.
    let mut available = false;
    for _ in 0..600 {
        let (code, _, body) = get(rest, "/v1/models/iris");
        if code == 200 && body.contains("AVAILABLE") {
            available = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(available, "iris never became available");
    let (code, _, body) = post(
        rest,
        "/v1/models/iris:classify",
        r#"{"examples": [{"x": [5.1, 3.5, 1.4, 0.2]}]}"#,
    );
    assert_eq!(code, 200, "{body}");
    // A broken file is reported and the models stay.
    write("model_config_list { config { name: ");
    // Three polls' time for the poller to read it.
    std::thread::sleep(Duration::from_secs(3));
    let (code, _, _) = get(rest, "/v1/models/iris");
    assert_eq!(code, 200);
    // Removing a model from the file unloads it.
    write(&format!(
        "model_config_list {{\n{}}}\n",
        entry("iris", "iris_tf1")
    ));
    let mut gone = false;
    for _ in 0..600 {
        let (code, _, _) = post(
            rest,
            "/v1/models/half_plus_two:predict",
            r#"{"instances": [1.0]}"#,
        );
        if code == 404 {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "half_plus_two is still served");
    let stderr = served.stop("TERM");
    assert!(
        stderr.contains("Failed to read ModelServerConfig file: Invalid protobuf file: '")
            && stderr.contains("Error parsing text-format tensorflow.serving.ModelServerConfig: "),
        "{stderr}"
    );
}
