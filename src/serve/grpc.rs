//! The gRPC transport (tonic): TensorFlow Serving's `tensorflow.serving.PredictionService`
//! and `tensorflow.serving.ModelService`. Every call runs [`super::core::Core`] on the
//! blocking pool, exactly as the REST transport does; errors keep their canonical code, which
//! is the gRPC status code.

use std::future::Future;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::connections::{self, ConnectionOptions, Guarded};
use super::core::Core;
use super::error::{Code, ServeError};
use super::runner::Call;
use crate::proto::tensorflow::serving as sv;
use sv::model_service_server::{ModelService, ModelServiceServer};
use sv::prediction_service_server::{PredictionService, PredictionServiceServer};

/// gRPC settings.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// Largest request message accepted; larger ones get RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// Largest response message sent (`grpc.max_send_message_length`; `None`: no limit).
    pub max_send_bytes: Option<usize>,
    /// HTTP/2 keepalive pings (`grpc.keepalive_time_ms`) and how long one may go unanswered
    /// (`grpc.keepalive_timeout_ms`).
    pub keepalive_interval: Option<std::time::Duration>,
    pub keepalive_timeout: Option<std::time::Duration>,
    /// Streams (calls) one connection may have open (`grpc.max_concurrent_streams`).
    pub max_concurrent_streams: Option<u32>,
    /// Most calls handled at once (`--grpc_max_threads`); the others wait their turn.
    pub max_in_flight: Option<usize>,
    /// Predict responses' tensors in `tensor_content` (`--enable_serialization_as_tensor_content`).
    pub tensor_content: bool,
    /// Serve `grpc.health.v1.Health` (`--enable_grpc_healthcheck_service`).
    pub health: bool,
    /// TLS on every gRPC listener (`--ssl_config_file`).
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    pub connections: ConnectionOptions,
}

/// TF Serving's `SSLConfig` as tonic's TLS settings: the server's key and certificate; with
/// `client_verify`, clients must present a certificate that chains to `custom_ca` (TF
/// Serving's REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY); without it, none is asked for.
/// Checked here, so a bad key or certificate stops the server before it loads anything.
pub fn tls_config(ssl: &sv::SslConfig) -> Result<tonic::transport::ServerTlsConfig, String> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    if ssl.server_key.is_empty() || ssl.server_cert.is_empty() {
        return Err("server_key and server_cert (PEM text) are both needed".to_owned());
    }
    // The provider tonic's `tls-ring` expects; another one may be compiled in (object
    // storage's HTTP client brings aws-lc-rs), and then rustls will not choose. Installing
    // fails only when one is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut tls =
        ServerTlsConfig::new().identity(Identity::from_pem(&ssl.server_cert, &ssl.server_key));
    if ssl.client_verify {
        if ssl.custom_ca.is_empty() {
            return Err(
                "client_verify needs custom_ca: the PEM certificate(s) client certificates must chain to"
                    .to_owned(),
            );
        }
        tls = tls.client_ca_root(Certificate::from_pem(&ssl.custom_ca));
    }
    tonic::transport::Server::builder()
        .tls_config(tls.clone())
        .map_err(|e| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        })?;
    Ok(tls)
}

impl Default for GrpcOptions {
    fn default() -> Self {
        GrpcOptions {
            max_message_bytes: 64 << 20,
            max_send_bytes: None,
            keepalive_interval: None,
            keepalive_timeout: None,
            max_concurrent_streams: None,
            max_in_flight: None,
            tensor_content: false,
            health: false,
            tls: None,
            connections: ConnectionOptions::default(),
        }
    }
}

/// A `grpc-timeout` header value (`100m`, `5S`, ...) in milliseconds, rounded up.
fn timeout_ms(value: &str) -> Option<i64> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let per_ms: (u64, u64) = match unit {
        "H" => (3_600_000, 1),
        "M" => (60_000, 1),
        "S" => (1000, 1),
        "m" => (1, 1),
        "u" => (1, 1000),
        "n" => (1, 1_000_000),
        _ => return None,
    };
    let ms = n.saturating_mul(per_ms.0).div_ceil(per_ms.1).max(1);
    Some(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The longest status message sent, in bytes. It travels in the `grpc-message` header,
/// percent-encoded (up to three times longer), and clients drop the whole response when their
/// header limit is passed (grpc-java: 8 KiB, grpc C-core: 16 KiB), so that a client given a
/// longer message sees `RESOURCE_EXHAUSTED` and not the error.
pub const MAX_STATUS_MESSAGE_BYTES: usize = 4096;

/// The gRPC status of a request error: TF Serving's code and message (cut after
/// [`MAX_STATUS_MESSAGE_BYTES`]: a reload that lists every version of a large base path, or
/// TensorFlow quoting a long value, must still reach the client).
pub fn status(e: ServeError) -> Status {
    Status::new(
        tonic::Code::from_i32(e.code as i32),
        super::json::cut(&e.message, MAX_STATUS_MESSAGE_BYTES),
    )
}

/// Both services, on one core.
#[derive(Clone)]
pub struct Services {
    core: Arc<Core>,
    tensor_content: bool,
    in_flight: Option<Arc<tokio::sync::Semaphore>>,
}

impl Services {
    pub fn new(core: Arc<Core>) -> Self {
        Self::with_options(core, &GrpcOptions::default())
    }

    /// The services with `options`' per-call settings.
    pub fn with_options(core: Arc<Core>, options: &GrpcOptions) -> Self {
        Services {
            core,
            tensor_content: options.tensor_content,
            in_flight: options
                .max_in_flight
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1)))),
        }
    }

    /// Runs `f` on the blocking pool (it may run TensorFlow) with one log line per call.
    async fn call<Q, A>(
        &self,
        method: &'static str,
        request: Request<Q>,
        f: fn(&Core, &Q) -> Result<A, ServeError>,
    ) -> Result<Response<A>, Status>
    where
        Q: Send + 'static,
        A: Send + 'static,
    {
        let started = std::time::Instant::now();
        let core = self.core.clone();
        // TF Serving limits the TensorFlow runs of a call by its deadline.
        let deadline = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(timeout_ms)
            .unwrap_or(0);
        let request = request.into_inner();
        let _permit = match &self.in_flight {
            Some(limit) => limit.clone().acquire_owned().await.ok(),
            None => None,
        };
        let result = tokio::task::spawn_blocking(move || {
            super::tf::with_run_timeout(deadline, || f(&core, &request))
        })
        .await
        .unwrap_or_else(|e| {
            Err(ServeError::new(
                Code::Internal,
                format!("request handler failed: {e}"),
            ))
        });
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(e) => e.code,
        };
        tracing::info!(
            target: "smtool::serve::request",
            "gRPC {method} {} {:.3}ms",
            code.as_str_name(),
            started.elapsed().as_secs_f64() * 1e3
        );
        result.map(Response::new).map_err(status)
    }
}

#[tonic::async_trait]
impl PredictionService for Services {
    async fn classify(
        &self,
        request: Request<sv::ClassificationRequest>,
    ) -> Result<Response<sv::ClassificationResponse>, Status> {
        self.call("Classify", request, |core, r| core.classify(Call::GRPC, r))
            .await
    }

    async fn regress(
        &self,
        request: Request<sv::RegressionRequest>,
    ) -> Result<Response<sv::RegressionResponse>, Status> {
        self.call("Regress", request, |core, r| core.regress(Call::GRPC, r))
            .await
    }

    async fn predict(
        &self,
        request: Request<sv::PredictRequest>,
    ) -> Result<Response<sv::PredictResponse>, Status> {
        let mut response = self
            .call("Predict", request, |core, r| core.predict(Call::GRPC, r))
            .await?;
        if self.tensor_content {
            // The response was made here, within the response budget already.
            let mut budget = super::limits::Limits::from_request_bytes(usize::MAX).budget();
            for (alias, tensor) in response.get_mut().outputs.iter_mut() {
                if let Ok(t) = super::tensor::tensor_from_proto(tensor, alias, &mut budget) {
                    *tensor = super::tensor::tensor_to_content_proto(&t);
                }
            }
        }
        Ok(response)
    }

    async fn multi_inference(
        &self,
        request: Request<sv::MultiInferenceRequest>,
    ) -> Result<Response<sv::MultiInferenceResponse>, Status> {
        self.call("MultiInference", request, |core, r| {
            core.multi_inference(Call::GRPC, r)
        })
        .await
    }

    async fn get_model_metadata(
        &self,
        request: Request<sv::GetModelMetadataRequest>,
    ) -> Result<Response<sv::GetModelMetadataResponse>, Status> {
        self.call("GetModelMetadata", request, Core::metadata).await
    }
}

#[tonic::async_trait]
impl ModelService for Services {
    async fn get_model_status(
        &self,
        request: Request<sv::GetModelStatusRequest>,
    ) -> Result<Response<sv::GetModelStatusResponse>, Status> {
        self.call("GetModelStatus", request, Core::status).await
    }

    async fn handle_reload_config_request(
        &self,
        request: Request<sv::ReloadConfigRequest>,
    ) -> Result<Response<sv::ReloadConfigResponse>, Status> {
        self.call("HandleReloadConfigRequest", request, Core::reload_config)
            .await
    }
}

/// tonic's words for a request message over `max_decoding_message_size` (it answers
/// OUT_OF_RANGE; its check reads the message's length prefix, before any of it is buffered).
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large: found ";

/// gRPC's own status for a request message over the limit, as TF Serving's server (gRPC's C
/// core) answers it: RESOURCE_EXHAUSTED, `Received message larger than max (N vs. LIMIT)`.
fn oversized_status(status: &Status) -> Option<Status> {
    if status.code() != tonic::Code::OutOfRange {
        return None;
    }
    let rest = status.message().strip_prefix(TONIC_TOO_LARGE)?;
    let (found, rest) = rest.split_once(" bytes, the limit is: ")?;
    let limit = rest.strip_suffix(" bytes")?;
    Some(Status::resource_exhausted(format!(
        "Received message larger than max ({found} vs. {limit}); see --max-request-bytes"
    )))
}

/// A service whose answers to oversized request messages carry gRPC's code (see
/// [`oversized_status`]) instead of tonic's; every other answer passes untouched.
#[derive(Clone)]
struct GrpcSizeStatus<S>(S);

impl<S: tonic::server::NamedService> tonic::server::NamedService for GrpcSizeStatus<S> {
    const NAME: &'static str = S::NAME;
}

type HttpResponse = axum::http::Response<tonic::body::Body>;

impl<S> tonic::codegen::Service<axum::http::Request<tonic::body::Body>> for GrpcSizeStatus<S>
where
    S: tonic::codegen::Service<
        axum::http::Request<tonic::body::Body>,
        Response = HttpResponse,
        Error = std::convert::Infallible,
    >,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<HttpResponse, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<tonic::body::Body>) -> Self::Future {
        let answer = self.0.call(request);
        Box::pin(async move {
            let response = answer.await?;
            // A refused message is answered trailers-only: the status is in the headers.
            Ok(Status::from_header_map(response.headers())
                .as_ref()
                .and_then(oversized_status)
                .map_or(response, Status::into_http))
        })
    }
}

/// The transport with `options`' connection settings and the services (and the health
/// service when asked for, with its reporter).
fn router<H>(
    core: Arc<Core>,
    options: &GrpcOptions,
    health: Option<H>,
) -> Result<tonic::transport::server::Router, tonic::transport::Error>
where
    H: tonic::codegen::Service<
            axum::http::Request<tonic::body::Body>,
            Response = axum::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    H::Future: Send + 'static,
{
    let services = Services::with_options(core, options);
    let limit = options.max_message_bytes;
    let send = options.max_send_bytes.unwrap_or(usize::MAX);
    // Pings keep live clients clear of the idle limit, and drop those that stop answering.
    let idle_safe = options.connections.grpc_keepalive_interval();
    let keepalive = options
        .keepalive_interval
        .map_or(idle_safe, |k| k.min(idle_safe));
    let keepalive_timeout = options
        .keepalive_timeout
        .unwrap_or_else(|| keepalive.min(std::time::Duration::from_secs(20)));
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &options.tls {
        builder = builder.tls_config(tls.clone())?;
    }
    Ok(builder
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive_timeout))
        .max_concurrent_streams(options.max_concurrent_streams)
        .add_optional_service(health)
        .add_service(GrpcSizeStatus(
            PredictionServiceServer::new(services.clone())
                .max_decoding_message_size(limit)
                .max_encoding_message_size(send),
        ))
        .add_service(GrpcSizeStatus(
            ModelServiceServer::new(services)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(send),
        )))
}

/// The services' names as the health service reports them.
const SERVICE_NAMES: [&str; 3] = [
    "",
    "tensorflow.serving.PredictionService",
    "tensorflow.serving.ModelService",
];

/// Keeps the health service's answer in step with readiness: SERVING while every model has a
/// version available, NOT_SERVING otherwise, for the server ("") and both services.
async fn report_health(core: Arc<Core>, reporter: tonic_health::server::HealthReporter) {
    let mut last = None;
    loop {
        let ready = core.unready_models().is_empty();
        if last != Some(ready) {
            let status = if ready {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            for name in SERVICE_NAMES {
                reporter.set_service_status(name, status).await;
            }
            last = Some(ready);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The connections of `listener` as tonic's incoming stream: each waits for one of `permits`
/// and is timed as `limits` say for gRPC; `wrap` adapts the byte stream first.
fn guarded<L, T>(
    listener: L,
    permits: Arc<tokio::sync::Semaphore>,
    limits: ConnectionOptions,
    wrap: fn(L::Stream) -> T,
) -> impl futures_util::Stream<Item = std::io::Result<Guarded<T>>> + Send + 'static
where
    L: connections::Listener + Send + Sync + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    futures_util::stream::unfold(listener, move |listener| {
        let (permits, limits) = (permits.clone(), limits.clone());
        async move {
            let (stream, permit) = connections::accept(&listener, &permits).await;
            let io = Guarded::grpc(wrap(stream), &limits, permit);
            Some((Ok(io), listener))
        }
    })
}

/// Where gRPC listens: TCP, and a Unix socket with `--grpc_socket_path`.
pub struct Listeners {
    pub tcp: tokio::net::TcpListener,
    #[cfg(unix)]
    pub unix: Option<tokio::net::UnixListener>,
}

/// Serves both services on `listener` until `shutdown` completes; calls in flight finish
/// before it returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Arc<Core>,
    options: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    serve_all(
        Listeners {
            tcp: listener,
            #[cfg(unix)]
            unix: None,
        },
        core,
        options,
        shutdown,
    )
    .await
}

/// [`serve`] on every listener of `listeners` at once, with one shutdown.
pub async fn serve_all(
    listeners: Listeners,
    core: Arc<Core>,
    options: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (health, reporter_task) = if options.health {
        let (reporter, service) = tonic_health::server::health_reporter();
        let task = tokio::spawn(report_health(core.clone(), reporter));
        (Some(service), Some(task))
    } else {
        (None, None)
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    // One connection bound for the API, over both listeners.
    let limits = options.connections.clone();
    let permits = limits.permits();
    let incoming = guarded(listeners.tcp, permits.clone(), limits.clone(), |s| s);
    let tcp = router(core.clone(), &options, health.clone())?
        .serve_with_incoming_shutdown(incoming, stopped());
    #[cfg(unix)]
    let unix = {
        let unix = listeners.unix;
        let router = router(core, &options, health)?;
        let stopped = stopped();
        let tls = options.tls.is_some();
        async move {
            let Some(listener) = unix else {
                return Ok(());
            };
            if tls {
                // The authority travels encrypted; TLS clients name the server themselves.
                let connections = guarded(listener, permits, limits, |s| s);
                router
                    .serve_with_incoming_shutdown(connections, stopped)
                    .await
            } else {
                let connections = guarded(
                    listener,
                    permits,
                    limits,
                    super::unix_authority::AuthorityFix::new,
                );
                router
                    .serve_with_incoming_shutdown(connections, stopped)
                    .await
            }
        }
    };
    #[cfg(not(unix))]
    let unix = async { Ok::<(), tonic::transport::Error>(()) };
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let (_, tcp, unix) = tokio::join!(signal, tcp, unix);
    if let Some(task) = reporter_task {
        task.abort();
    }
    tcp.and(unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_in_milliseconds() {
        for (v, want) in [
            ("100m", Some(100)),
            ("2S", Some(2000)),
            ("1M", Some(60_000)),
            ("1500u", Some(2)),
            ("1n", Some(1)),
            ("x", None),
            ("", None),
            ("10k", None),
        ] {
            assert_eq!(timeout_ms(v), want, "{v}");
        }
    }

    #[test]
    fn oversized_messages_get_grpcs_code_and_words() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 1048601 bytes, the limit is: 1048576 bytes",
        );
        let s = oversized_status(&tonic).expect("recognised");
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            s.message(),
            "Received message larger than max (1048601 vs. 1048576); see --max-request-bytes"
        );
        // Other OUT_OF_RANGE errors (TensorFlow's) keep their code and message.
        assert!(oversized_status(&Status::out_of_range("End of sequence")).is_none());
        assert!(oversized_status(&Status::invalid_argument(TONIC_TOO_LARGE)).is_none());
    }

    #[test]
    fn errors_keep_their_canonical_code() {
        for (code, grpc) in [
            (Code::InvalidArgument, tonic::Code::InvalidArgument),
            (Code::NotFound, tonic::Code::NotFound),
            (Code::FailedPrecondition, tonic::Code::FailedPrecondition),
            (Code::ResourceExhausted, tonic::Code::ResourceExhausted),
            (Code::Unimplemented, tonic::Code::Unimplemented),
        ] {
            let s = status(ServeError::new(code, "why"));
            assert_eq!((s.code(), s.message()), (grpc, "why"));
        }
        // A long message is cut on a character boundary, to fit clients' header limits.
        let s = status(ServeError::new(Code::Unknown, "é".repeat(5000)));
        assert_eq!(s.message().len(), MAX_STATUS_MESSAGE_BYTES + 3);
        assert!(s.message().ends_with("é..."), "{}", s.message());
    }
}
