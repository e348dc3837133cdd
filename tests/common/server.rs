//! The server under test, in process: the models loaded by [`Server::start`], both transports
//! on 127.0.0.1:0 through `serve::serve_all` (as `smtool serve` runs them) on their own
//! runtime thread, and the REST and gRPC clients the tests talk to it with.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use smtool::proto::tensorflow as tfp;
use smtool::proto::tensorflow::serving as sv;
use smtool::serve::config::ModelConfig;
use smtool::serve::connections::ConnectionOptions;
use smtool::serve::{self as srv, Server, ServerOptions, TransportOptions};
use sv::model_service_client::ModelServiceClient;
use sv::prediction_service_client::PredictionServiceClient;
use tonic::transport::Channel;

/// A running server; stops gracefully when dropped.
pub struct Running {
    /// The REST API's address.
    pub rest: SocketAddr,
    /// The gRPC API's address.
    pub grpc: SocketAddr,
    pub server: Server,
    /// The runtime the gRPC clients run on.
    client: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Running {
    pub fn prediction(&self) -> PredictionServiceClient<Channel> {
        PredictionServiceClient::new(self.channel())
    }

    pub fn model_service(&self) -> ModelServiceClient<Channel> {
        ModelServiceClient::new(self.channel())
    }

    pub fn channel(&self) -> Channel {
        super::grpc_channel(&self.client, self.grpc)
    }

    /// Runs a gRPC call (or any future) on the clients' runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.client.block_on(f)
    }
}

/// Loads `models` (following their directories every `poll`) and serves them; `None` (skip)
/// without libtensorflow.
pub fn start(
    models: Vec<ModelConfig>,
    poll: Option<Duration>,
    options: ServerOptions,
    transports: TransportOptions,
) -> Option<Running> {
    let tf = super::tensorflow()?;
    let server = Server::start(tf, models, poll, options);
    let core = server.core.clone();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(async move {
            let rest = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addrs = (
                rest.local_addr().expect("addr"),
                grpc.local_addr().expect("addr"),
            );
            addr_tx.send(addrs).expect("send addresses");
            let grpc = srv::grpc::Listeners {
                tcp: grpc,
                #[cfg(unix)]
                unix: None,
            };
            let shutdown = async move {
                let _ = stop_rx.await;
            };
            srv::serve_all(rest, grpc, core, transports, shutdown)
                .await
                .expect("serve");
        });
    });
    let (rest, grpc) = addr_rx.recv().expect("server addresses");
    Some(Running {
        rest,
        grpc,
        server,
        client: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("client runtime"),
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// [`start`] without a poller, on the default transports.
pub fn start_models(models: Vec<ModelConfig>, options: ServerOptions) -> Option<Running> {
    start(models, None, options, TransportOptions::default())
}

/// Connection limits low enough for a few slow clients to reach: 4 connections, 1 s for a
/// request's headers, `idle_timeout` between requests.
pub fn few_connections(idle_timeout: Duration) -> ConnectionOptions {
    ConnectionOptions {
        header_timeout: Duration::from_secs(1),
        idle_timeout,
        max_connections: 4,
    }
}

/// A REST model from a fixture path.
pub fn model(name: &str, path: &std::path::Path) -> ModelConfig {
    srv::config::model_from_path(name, path).expect("fixture model")
}

/// The usual set: half_plus_two (base path), iris, digits, vocab.
pub fn fixture_models() -> Vec<ModelConfig> {
    [
        ("half_plus_two", "half_plus_two"),
        ("iris", "iris_tf1"),
        ("digits", "digits/model"),
        ("vocab", "vocab_assets"),
    ]
    .into_iter()
    .map(|(name, rel)| model(name, &super::fixture(rel)))
    .collect()
}

/// A GET whose answer is JSON.
pub fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, body) = super::http(addr, "GET", path, None);
    (status, parse(&body))
}

/// The first `model_version_status` entry of the model status at `path`, which must be
/// answered with 200.
pub fn first_status(addr: SocketAddr, path: &str) -> Value {
    let (code, body) = get(addr, path);
    assert_eq!(code, 200, "{path}: {body}");
    body["model_version_status"][0].clone()
}

/// A POST of a JSON body whose answer is JSON.
pub fn post(addr: SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    let (status, text) = super::http(addr, "POST", path, Some(body.to_string().as_bytes()));
    (status, parse(&text))
}

/// [`post`] that must be answered with 200; returns the answer.
pub fn post_ok(addr: SocketAddr, path: &str, body: &Value) -> Value {
    let (status, answer) = post(addr, path, body);
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

pub fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The `error` of a REST error body.
pub fn error_of(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"))
}

pub fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-6 + 1e-5 * want.abs(),
        "{what}: got {got}, want {want}"
    );
}

/// Asserts that `got` and `want` are numbers close to each other (see [`assert_close`]), or
/// arrays of the same length (nested alike) of such numbers.
pub fn assert_all_close(got: &Value, want: &Value, what: &str) {
    match (got, want) {
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{what}: {got} against {want}");
            for (g, w) in g.iter().zip(w) {
                assert_all_close(g, w, what);
            }
        }
        _ => {
            let number = |v: &Value| {
                v.as_f64()
                    .unwrap_or_else(|| panic!("{what}: {v} is not a number"))
            };
            assert_close(number(got), number(want), what);
        }
    }
}

/// The rows of `fixtures/iris_tf1/expected.json`: each example's `x` with what TensorFlow
/// answers for it.
pub fn iris_rows() -> Vec<Value> {
    fixture_json("iris_tf1/expected.json")["rows"]
        .as_array()
        .expect("rows")
        .clone()
}

/// A JSON file under `fixtures/`.
pub fn fixture_json(rel: &str) -> Value {
    let text = std::fs::read_to_string(super::fixture(rel)).expect("fixture JSON");
    serde_json::from_str(&text).expect("fixture JSON parses")
}

/// A DT_FLOAT `TensorProto` of shape `dims` with `values` in `float_val`.
pub fn float_tensor(dims: &[i64], values: impl Into<Vec<f32>>) -> tfp::TensorProto {
    tfp::TensorProto {
        dtype: 1,
        tensor_shape: Some(smtool::proto_ext::shape_proto(dims)),
        float_val: values.into(),
        ..Default::default()
    }
}
