//! The REST transport: TensorFlow Serving's URL scheme (case-insensitive, `/v1/...` only),
//! body limit, one log line per request, and graceful shutdown. Request handling runs on the
//! blocking pool through [`super::core::Core`].
//!
//! The accept loop is hyper's own rather than `axum::serve`, which has no header timeout and
//! no connection bound: connections are limited and timed as [`super::connections`] says.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::codec;
use super::connections::{self, ConnectionOptions, Guarded, HeadClock};
use super::core::Core;
use super::error::{Code, ServeError};
use super::json;
use super::metrics::Api;
use super::runner::Call;
use crate::proto::tensorflow::serving as sv;

/// REST settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Time limit of the TensorFlow runs of one request, in milliseconds
    /// (`--rest_api_timeout_in_ms`; 0 or less: none).
    pub timeout_ms: i64,
    /// Answer with CORS headers and to preflight requests (`--rest_api_enable_cors_support`).
    pub cors: bool,
    /// Most requests handled at once (`--rest_api_num_threads`, TF Serving's REST thread
    /// pool); the others wait their turn. `None`: no limit beyond the runtime's.
    pub max_in_flight: Option<usize>,
    pub connections: ConnectionOptions,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_body_bytes: 64 << 20,
            timeout_ms: 30_000,
            cors: false,
            max_in_flight: None,
            connections: ConnectionOptions::default(),
        }
    }
}

/// The liveness path: 200 while the server answers.
pub const LIVE_PATH: &str = "/healthz";
/// The readiness path: 200 when every model has a version available, else 503.
pub const READY_PATH: &str = "/readyz";

/// Version part of a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Version {
    Latest,
    Number(String),
    Label(String),
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// Not under `/v1/`: a bare 404.
    NotFound,
    Malformed,
    Status {
        name: String,
        version: Version,
    },
    Metadata {
        name: String,
        version: Version,
    },
    Infer {
        name: String,
        version: Version,
        method: Endpoint,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Classify,
    Regress,
    Predict,
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix))
    .then(|| &s[prefix.len()..])
}

/// `[name]`, `[name, versions, N]`, `[name, labels, L]` into a name and version.
fn name_version(segs: &[&str]) -> Option<(String, Version)> {
    let valid = |s: &str| !s.is_empty() && !s.contains(':');
    match segs {
        [name] if valid(name) => Some((name.to_string(), Version::Latest)),
        [name, kind, v] if valid(name) && kind.eq_ignore_ascii_case("versions") => (!v.is_empty()
            && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| (name.to_string(), Version::Number(v.to_string()))),
        [name, kind, l] if valid(name) && kind.eq_ignore_ascii_case("labels") && valid(l) => {
            Some((name.to_string(), Version::Label(l.to_string())))
        }
        _ => None,
    }
}

/// Matches TF Serving's URL patterns.
fn route(method: &Method, path: &str) -> Route {
    if strip_prefix_ci(path, "/v1/").is_none() {
        return Route::NotFound;
    }
    let Some(rest) = strip_prefix_ci(path, "/v1/models") else {
        return Route::Malformed;
    };
    if *method == Method::POST {
        let Some((head, verb)) = rest.rsplit_once(':') else {
            return Route::Malformed;
        };
        let endpoint = match verb.to_ascii_lowercase().as_str() {
            "classify" => Endpoint::Classify,
            "regress" => Endpoint::Regress,
            "predict" => Endpoint::Predict,
            _ => return Route::Malformed,
        };
        let Some(head) = head.strip_prefix('/') else {
            return Route::Malformed;
        };
        let segs: Vec<&str> = head.split('/').collect();
        return match name_version(&segs) {
            Some((name, version)) => Route::Infer {
                name,
                version,
                method: endpoint,
            },
            None => Route::Malformed,
        };
    }
    if *method != Method::GET {
        return Route::Malformed;
    }
    if rest.is_empty() {
        return Route::Status {
            name: String::new(),
            version: Version::Latest,
        };
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Route::Malformed;
    };
    let mut segs: Vec<&str> = rest.split('/').collect();
    let metadata = segs.len() > 1
        && segs
            .last()
            .is_some_and(|s| s.eq_ignore_ascii_case("metadata"));
    if metadata {
        segs.pop();
    }
    match name_version(&segs) {
        Some((name, version)) if metadata => Route::Metadata { name, version },
        Some((name, version)) => Route::Status { name, version },
        None => Route::Malformed,
    }
}

fn model_spec(name: &str, version: &Version) -> Result<sv::ModelSpec, ServeError> {
    let version_choice = match version {
        Version::Latest => None,
        Version::Number(text) => Some(sv::model_spec::VersionChoice::Version(
            text.parse::<i64>().map_err(|_| {
                ServeError::invalid(format!("Failed to convert version: {text} to numeric."))
            })?,
        )),
        Version::Label(l) => Some(sv::model_spec::VersionChoice::VersionLabel(l.clone())),
    };
    Ok(sv::ModelSpec {
        name: name.to_owned(),
        signature_name: String::new(),
        version_choice,
    })
}

/// Handles one routed request; returns the JSON body.
fn handle(core: &Core, route: Route, body: &[u8]) -> Result<String, ServeError> {
    match route {
        Route::NotFound | Route::Malformed => Err(ServeError::new(Code::Internal, "unrouted")),
        Route::Status { name, version } => {
            if name.is_empty() {
                return Err(ServeError::invalid("Missing model name in request."));
            }
            let request = sv::GetModelStatusRequest {
                model_spec: Some(model_spec(&name, &version)?),
            };
            Ok(codec::status_response(&core.status(&request)?))
        }
        Route::Metadata { name, version } => {
            let request = sv::GetModelMetadataRequest {
                model_spec: Some(model_spec(&name, &version)?),
                metadata_field: vec!["signature_def".to_owned()],
            };
            codec::metadata_response(&core.metadata(&request)?)
        }
        Route::Infer {
            name,
            version,
            method,
        } => {
            let spec = model_spec(&name, &version)?;
            // Requests turned away while decoding still count in the metrics.
            let api = match method {
                Endpoint::Predict => Api::Predict,
                Endpoint::Classify => Api::Classify,
                Endpoint::Regress => Api::Regress,
            };
            let rejected = |e: ServeError, doc: Option<&json::Json>| {
                let signature = doc.and_then(|d| codec::signature_name(d).ok());
                core.rejected(api, &name, signature.as_deref().unwrap_or_default(), &e);
                e
            };
            if method == Endpoint::Predict {
                if let Some((request, format)) =
                    codec::predict_request_fast(body, &spec, |s| core.signature_inputs(s))
                {
                    let response = core.predict(Call::REST, &request)?;
                    return codec::predict_response(&response.outputs, format);
                }
            }
            let doc = codec::parse_body(body).map_err(|e| rejected(e, None))?;
            match method {
                Endpoint::Predict => {
                    let (request, format) =
                        codec::predict_request(&doc, spec, |s| core.signature_inputs(s))
                            .map_err(|e| rejected(e, Some(&doc)))?;
                    let response = core.predict(Call::REST, &request)?;
                    codec::predict_response(&response.outputs, format)
                }
                Endpoint::Classify => {
                    let (signature_name, input) =
                        codec::examples_input(&doc).map_err(|e| rejected(e, Some(&doc)))?;
                    let request = sv::ClassificationRequest {
                        model_spec: Some(sv::ModelSpec {
                            signature_name,
                            ..spec
                        }),
                        input: Some(input),
                    };
                    let response = core.classify(Call::REST, &request)?;
                    codec::classification_response(&response.result.unwrap_or_default())
                }
                Endpoint::Regress => {
                    let (signature_name, input) =
                        codec::examples_input(&doc).map_err(|e| rejected(e, Some(&doc)))?;
                    let request = sv::RegressionRequest {
                        model_spec: Some(sv::ModelSpec {
                            signature_name,
                            ..spec
                        }),
                        input: Some(input),
                    };
                    let response = core.regress(Call::REST, &request)?;
                    codec::regression_response(&response.result.unwrap_or_default())
                }
            }
        }
    }
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The HTTP status TF Serving answers an error of this code with.
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::Unauthenticated => 401,
        _ => 500,
    }
}

fn error_response(e: &ServeError) -> Response {
    json_response(http_status(e.code), codec::error_body(&e.message))
}

struct AppState {
    core: Arc<Core>,
    options: HttpOptions,
    in_flight: Option<Arc<tokio::sync::Semaphore>>,
}

/// Adds the CORS headers of a response (any origin may read it).
fn add_cors(response: &mut Response) {
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
}

/// The answer to a CORS preflight (`OPTIONS`) request: the methods TF Serving's API uses and
/// the headers the browser asked to send.
fn preflight(request: &Request) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    if let Some(asked) = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        header::HeaderValue::from_static("86400"),
    );
    add_cors(&mut response);
    response
}

/// `/healthz` and `/readyz`.
fn health(core: &Core, path: &str) -> Option<Response> {
    if path == LIVE_PATH {
        return Some(json_response(200, "{\"status\":\"live\"}".to_owned()));
    }
    if path != READY_PATH {
        return None;
    }
    let unready = core.unready_models();
    Some(if unready.is_empty() {
        json_response(200, "{\"status\":\"ready\"}".to_owned())
    } else {
        let names = serde_json::to_string(&unready).unwrap_or_else(|_| "[]".to_owned());
        json_response(
            503,
            format!("{{\"status\":\"not ready\",\"models_without_an_available_version\":{names}}}"),
        )
    })
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

enum BodyError {
    TooLarge,
    Idle,
    Read(axum::Error),
}

/// The whole body, at most `limit` bytes, each part arriving within `idle` of the last.
async fn read_body(
    body: axum::body::Body,
    limit: usize,
    idle: std::time::Duration,
) -> Result<bytes::Bytes, BodyError> {
    use http_body_util::BodyExt;
    let mut body = http_body_util::Limited::new(body, limit);
    // One part is kept as it came (most bodies); more are copied into one buffer.
    let mut first: Option<bytes::Bytes> = None;
    let mut rest = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(BodyError::Idle),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                let e = axum::Error::new(e);
                return Err(if is_length_limit(&e) {
                    BodyError::TooLarge
                } else {
                    BodyError::Read(e)
                });
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match &first {
            None if rest.is_empty() => first = Some(data),
            _ => {
                if let Some(f) = first.take() {
                    rest.extend_from_slice(&f);
                }
                rest.extend_from_slice(&data);
            }
        }
    }
    Ok(match first {
        Some(f) => f,
        None => rest.freeze(),
    })
}

async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = if state.options.cors && method == Method::OPTIONS {
        preflight(&request)
    } else {
        // Held until the answer is ready: at most --rest_api_num_threads at once.
        let _permit = match &state.in_flight {
            Some(limit) => limit.clone().acquire_owned().await.ok(),
            None => None,
        };
        respond(&state, request).await
    };
    if state.options.cors {
        add_cors(&mut response);
    }
    tracing::info!(
        target: "smtool::serve::request",
        "{} {} {} {:.3}ms",
        method,
        path,
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1e3
    );
    response
}

async fn respond(state: &Arc<AppState>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if method == Method::GET && state.core.metrics_path() == Some(path.as_str()) {
        let text = state.core.metrics().render();
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)],
            text,
        )
            .into_response();
    }
    let route = route(&method, &path);
    match route {
        Route::NotFound => {
            if method == Method::GET {
                if let Some(response) = health(&state.core, &path) {
                    return response;
                }
            }
            return StatusCode::NOT_FOUND.into_response();
        }
        Route::Malformed => {
            return error_response(&ServeError::invalid(format!(
                "Malformed request: {method} {path}"
            )))
        }
        _ => {}
    }
    let limit = state.options.max_body_bytes;
    let too_large = || {
        json_response(
            413,
            codec::error_body(&format!(
                "Request body is larger than the limit of {limit} bytes (see --max-request-bytes)"
            )),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let idle = state.options.connections.idle_timeout;
    let body = match read_body(request.into_body(), limit, idle).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::Idle) => {
            return json_response(
                408,
                codec::error_body(&format!(
                    "The request body stalled: no bytes for {}s (see --idle-timeout-seconds)",
                    idle.as_secs_f64()
                )),
            )
        }
        Err(BodyError::Read(e)) => {
            return error_response(&ServeError::invalid(format!(
                "Cannot read the request body: {e}"
            )))
        }
    };
    let core = state.core.clone();
    // TensorFlow must not stall the async workers. On the multi-thread runtime `block_in_place`
    // hands this worker's other tasks to another thread and runs the request right here,
    // saving the two thread switches of `spawn_blocking` (about 0.1 ms per request).
    let multi_thread = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    let timeout = state.options.timeout_ms;
    let run = move || super::tf::with_run_timeout(timeout, || handle(&core, route, &body));
    let result = if multi_thread {
        Ok(tokio::task::block_in_place(run))
    } else {
        tokio::task::spawn_blocking(run).await
    };
    match result {
        Ok(Ok(json)) => json_response(200, json),
        Ok(Err(e)) => error_response(&e),
        Err(e) => error_response(&ServeError::new(
            Code::Internal,
            format!("request handler failed: {e}"),
        )),
    }
}

/// How REST connections speak HTTP/1.1.
fn http1() -> hyper::server::conn::http1::Builder {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    // No `header_read_timeout`: `Guarded` times request heads (see `connections`). No
    // `half_close` either: it cost about a tenth of the :predict throughput at concurrency 16.
    http1.keep_alive(true);
    http1
}

/// One REST connection: `app` served over `stream` within `limits`.
fn connection(
    http1: &hyper::server::conn::http1::Builder,
    app: &axum::Router,
    stream: tokio::net::TcpStream,
    limits: &ConnectionOptions,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl hyper_util::server::graceful::GracefulConnection<Error = hyper::Error> + Send {
    let clock = HeadClock::new();
    let io = Guarded::rest(stream, limits, permit, clock.clone());
    http1.serve_connection(hyper_util::rt::TokioIo::new(io), timed(app, clock))
}

/// The REST service of one connection: `app`, telling `clock` where each request starts and
/// where its response has been handed over.
fn timed(
    app: &axum::Router,
    clock: HeadClock,
) -> impl hyper::service::Service<
    Request<hyper::body::Incoming>,
    Response = hyper::Response<Handed<axum::body::Body>>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    use hyper::service::Service as _;
    let app = hyper_util::service::TowerToHyperService::new(app.clone());
    hyper::service::service_fn(move |request| {
        clock.request_started();
        let response = app.call(request);
        let clock = clock.clone();
        async move {
            let response = response.await?;
            Ok(response.map(|body| Handed { body, clock }))
        }
    })
}

/// A response body that tells its connection's clock when hyper has taken all of it. hyper
/// asks `is_end_stream` after each frame and before it goes back to reading (drop comes too
/// late: hyper has read once more by then).
struct Handed<B> {
    body: B,
    clock: HeadClock,
}

impl<B> Drop for Handed<B> {
    fn drop(&mut self) {
        self.clock.response_sent();
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Handed<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let frame = std::pin::Pin::new(&mut this.body).poll_frame(cx);
        if let std::task::Poll::Ready(None) = frame {
            this.clock.response_sent();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        let end = self.body.is_end_stream();
        if end {
            self.clock.response_sent();
        }
        end
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Serves the REST API on `listener` until `shutdown` completes; requests in flight finish
/// before it returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Arc<Core>,
    options: HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let in_flight = options
        .max_in_flight
        .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
    let limits = options.connections.clone();
    let state = Arc::new(AppState {
        core,
        options,
        in_flight,
    });
    let app = axum::Router::new().fallback(dispatch).with_state(state);
    let http1 = http1();
    let permits = limits.permits();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, permit) = tokio::select! {
            accepted = connections::accept(&listener, &permits) => accepted,
            _ = &mut shutdown => break,
        };
        let connection = graceful.watch(connection(&http1, &app, stream, &limits, permit));
        tokio::spawn(async move {
            // A client that goes away or times out is not the server's error.
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Serves `app` and a `/fast` route as `serve` serves the REST API, one task per
    /// connection, with a header timeout of `limit` and an idle timeout ten times that.
    async fn serve_app(app: axum::Router, limit: Duration) -> std::net::SocketAddr {
        let app = app.route("/fast", axum::routing::get(|| async { "fast" }));
        let limits = ConnectionOptions {
            header_timeout: limit,
            idle_timeout: limit * 10,
            max_connections: 4,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let http1 = http1();
            let permits = limits.permits();
            loop {
                let (stream, permit) = connections::accept(&listener, &permits).await;
                tokio::spawn(connection(&http1, &app, stream, &limits, permit));
            }
        });
        addr
    }

    /// Reads one response; its body, or None if the server closed the connection first.
    async fn answer(c: &mut TcpStream) -> Option<String> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|n| n.parse::<usize>().ok())
                    .expect("content-length");
                if body.len() >= length {
                    return Some(body.to_string());
                }
            }
            let read = tokio::time::timeout(Duration::from_secs(30), c.read(&mut chunk))
                .await
                .expect("the server neither answered nor closed the connection");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn request_heads_are_due_within_the_header_timeout_of_each_wait() {
        let limit = Duration::from_millis(500);
        let slow = move || async move {
            tokio::time::sleep(limit * 3).await;
            "slow"
        };
        let app = axum::Router::new().route("/slow", axum::routing::get(slow));
        let addr = serve_app(app, limit).await;

        // A request that takes longer than the header timeout is answered, and the next head
        // on the connection is due from that answer on, not from the first head.
        let mut c = TcpStream::connect(addr).await.expect("connect");
        for path in ["/slow", "/fast", "/slow"] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            c.write_all(request.as_bytes()).await.expect("write");
            assert_eq!(answer(&mut c).await.as_deref(), Some(&path[1..]));
        }
        // A kept-alive connection that sends no next head is closed.
        assert_eq!(answer(&mut c).await, None, "an idle connection stayed open");

        // Pipelined requests are all answered, the second only after the first's long wait.
        let mut c = TcpStream::connect(addr).await.expect("connect");
        let two = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n";
        c.write_all(two).await.expect("write");
        let mut both = Vec::new();
        let _ = c.read_to_end(&mut both).await;
        let both = String::from_utf8_lossy(&both);
        assert_eq!(both.matches("HTTP/1.1 200").count(), 2, "{both}");
        assert!(both.contains("\r\n\r\nslowHTTP/1.1 200"), "{both}");
        assert!(both.ends_with("\r\n\r\nfast"), "{both}");

        // A head that trickles in is cut off, however steadily its bytes come.
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let (mut read, mut write) = c.into_split();
        let trickle = tokio::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(limit / 5).await;
                if write.write_all(b"X-a: b\r\n").await.is_err() {
                    return true;
                }
            }
            false
        });
        let mut rest = Vec::new();
        let _ = read.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
        assert!(
            trickle.await.expect("writer"),
            "the slow head was never cut off"
        );
    }

    /// Reads one response of `length` body bytes, `pause` before the first read and then in
    /// small reads with a short sleep between them; the bytes of its body that came.
    async fn read_slowly(c: &mut TcpStream, length: usize, pause: Duration) -> usize {
        tokio::time::sleep(pause).await;
        let mut head = Vec::new();
        let mut body = 0;
        let mut chunk = vec![0u8; 64 << 10];
        while body < length {
            let read = tokio::time::timeout(Duration::from_secs(30), c.read(&mut chunk))
                .await
                .expect("the server neither wrote nor closed the connection");
            let n = match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if head.ends_with(b"\r\n\r\n") {
                body += n;
            } else {
                head.extend_from_slice(&chunk[..n]);
                if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    body = head.len() - end - 4;
                    head.truncate(end + 4);
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        body
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_response_is_written_for_as_long_as_its_client_reads_it() {
        let limit = Duration::from_millis(300);
        // Far more than the socket buffers hold, so that writing it outlasts the header timeout.
        const BIG: usize = 32 << 20;
        let app =
            axum::Router::new().route("/big", axum::routing::get(|| async { vec![b'x'; BIG] }));
        let addr = serve_app(app, limit).await;
        let connect = || async {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.set_recv_buffer_size(64 << 10).expect("buffer size");
            socket.connect(addr).await.expect("connect")
        };
        // Read steadily, or after a pause longer than the header timeout (but not the idle
        // one): the whole body comes, and the connection serves its next request.
        for pause in [Duration::ZERO, limit * 3] {
            let mut c = connect().await;
            c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            assert_eq!(
                read_slowly(&mut c, BIG, pause).await,
                BIG,
                "paused {pause:?}"
            );
            c.write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            assert_eq!(answer(&mut c).await.as_deref(), Some("fast"));
            assert_eq!(answer(&mut c).await, None, "an idle connection stayed open");
        }
    }

    fn r(m: Method, p: &str) -> Route {
        route(&m, p)
    }

    #[test]
    fn routes_follow_tf_serving_patterns() {
        let latest = Version::Latest;
        assert_eq!(r(Method::GET, "/v2/models/x"), Route::NotFound);
        assert_eq!(r(Method::GET, "/metrics"), Route::NotFound);
        assert_eq!(
            r(Method::GET, "/v1/models/hp"),
            Route::Status {
                name: "hp".into(),
                version: latest.clone()
            }
        );
        assert_eq!(
            r(Method::GET, "/V1/MODELS/hp/Versions/2/METADATA"),
            Route::Metadata {
                name: "hp".into(),
                version: Version::Number("2".into())
            }
        );
        assert_eq!(
            r(Method::GET, "/v1/models/hp/labels/stable"),
            Route::Status {
                name: "hp".into(),
                version: Version::Label("stable".into())
            }
        );
        assert_eq!(
            r(Method::POST, "/v1/models/hp/labels/canary:PREDICT"),
            Route::Infer {
                name: "hp".into(),
                version: Version::Label("canary".into()),
                method: Endpoint::Predict
            }
        );
        assert_eq!(
            r(Method::POST, "/v1/models/iris:classify"),
            Route::Infer {
                name: "iris".into(),
                version: latest.clone(),
                method: Endpoint::Classify
            }
        );
        assert_eq!(
            r(Method::GET, "/v1/models"),
            Route::Status {
                name: String::new(),
                version: latest
            }
        );
        for (m, p) in [
            (Method::GET, "/v1/models/hp:predict"),
            (Method::POST, "/v1/models/hp"),
            (Method::POST, "/v1/models/hp:explain"),
            (Method::POST, "/v1/models/hp/versions/x:predict"),
            (Method::POST, "/v1/models/hp/versions/1/labels/a:predict"),
            (Method::PUT, "/v1/models/hp"),
            (Method::GET, "/v1/other"),
            (Method::GET, "/v1/models/hp/versions/1/labels/a"),
        ] {
            assert_eq!(r(m.clone(), p), Route::Malformed, "{m} {p}");
        }
    }
}
