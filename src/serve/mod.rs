//! `smtool serve`: TensorFlow Serving's REST and gRPC APIs over SavedModels, on the TensorFlow
//! C API loaded at run time.
//!
//! A request flows transport → [`core`] (which version it names, request metrics) →
//! [`runner`] (the API's rules, the batcher, the session run) → [`tf`]; [`models`] loads
//! and unloads the versions the core finds, warming each up on the runner first.
//!
//! - [`error`]: the one error type, TF Serving's canonical code and message.
//! - [`config`]: what to serve (models, version policies, labels, config files), the reload
//!   rules, the monitoring and batching config files, session thread pools.
//! - [`library`]: finding (or fetching) libtensorflow.
//! - [`tf`]: the C API behind a safe session wrapper (the only `unsafe` code).
//! - [`tensor`]: tensors, their `TensorProto` conversions, slicing, concatenation, padding.
//! - [`servable`]: one loaded version and the checks around its load.
//! - [`runner`]: one request on one servable (Predict, Classify, Regress, MultiInference).
//! - [`models`]: models, versions, policies, labels, the poller, load retries.
//! - [`version_dir`]: a version directory's signature and the files TensorFlow must not open.
//! - [`core`]: request handling on TF Serving's typed requests, independent of the transport.
//! - [`codec`] and [`json`]: TF Serving's REST JSON.
//! - [`http`]: the REST transport.
//! - [`connections`]: connection bound and time limits of both transports.
//! - [`grpc`]: the gRPC transport (PredictionService, ModelService), over TCP and a Unix
//!   socket ([`unix_authority`] makes gRPC's Unix-socket `:authority` acceptable).
//! - [`warmup`]: replaying `assets.extra/tf_serving_warmup_requests` before a version is
//!   available.
//! - [`limits`]: the shape checks and size budget every request and response passes.
//! - [`metrics`]: Prometheus metrics; [`batching`]: merging concurrent requests into batches.
//!
//! A server is [`Server::start`] (load the models, follow their directories) and
//! [`serve_all`] (both transports until a shutdown future completes); [`run`] is `smtool
//! serve`, signals included.
//!
//! # In process
//!
//! A program that runs requests itself, without a server, loads a model and runs typed TF
//! Serving requests on it with the server's rules, limits and errors:
//!
//! ```no_run
//! use std::sync::Arc;
//! use smtool::proto::tensorflow::serving as sv;
//! use smtool::serve::{library, load_tensorflow, metrics::Metrics, runner, servable};
//!
//! # fn main() -> anyhow::Result<()> {
//! let tf = load_tensorflow(&library::LibraryOptions::from_env(None, false), false)?;
//! // A SavedModel directory, or a version of a base path (None: the highest), checked as
//! // serve checks it.
//! let model = Arc::new(servable::load_path(
//!     tf,
//!     "model",
//!     "models/half_plus_two".as_ref(),
//!     None,
//!     &servable::LoadOptions::default(),
//! )?);
//! let runner = runner::Runner::new(Arc::new(Metrics::new()), runner::RunOptions::default());
//! // As over gRPC: the signature in the spec (empty: serving_default), inputs by alias.
//! let request = sv::PredictRequest {
//!     model_spec: Some(sv::ModelSpec::default()),
//!     ..Default::default()
//! };
//! let response = runner.predict(runner::Call::LOCAL, &model, &request);
//! // Err(ServeError { code, message }) carries TF Serving's code and words.
//! # let _ = response;
//! # Ok(())
//! # }
//! ```
//!
//! [`runner::Runner::classify`] and [`runner::Runner::regress`] take TF Serving's
//! `ClassificationRequest` and `RegressionRequest` the same way; [`codec`] turns REST JSON
//! into these requests (with [`runner::signature_inputs`] for the inputs' dtypes) and their
//! responses back into JSON.

/// One line to stderr, for what the server tells its operator. Unlike `eprintln!` it does not
/// panic when stderr is gone (the terminal closed, the log pipe's reader exited): a panic there
/// would end the task that prints, and the task that waits for SIGTERM is one of them.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod batching;
pub mod codec;
pub mod config;
pub mod connections;
pub mod core;
pub mod error;
pub mod grpc;
pub mod http;
pub mod image;
pub mod json;
pub mod library;
pub mod limits;
pub mod metrics;
pub mod models;
pub mod runner;
pub mod servable;
pub mod tensor;
#[allow(unsafe_code)]
pub mod tf;
#[cfg(unix)]
pub mod unix_authority;
pub mod version_dir;
pub mod warmup;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use self::config::{ModelConfig, SessionThreads};
use self::models::ModelManager;
use crate::proto::tensorflow as tfp;
use crate::proto::tensorflow::serving as sv;

/// Validated options of `smtool serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub models: Vec<ModelConfig>,
    pub host: String,
    pub port: u16,
    pub library: library::LibraryOptions,
    pub http: http::HttpOptions,
    /// Seconds between looks at the model directories; 0 turns the poller off.
    pub poll_seconds: u64,
    /// Show TensorFlow's start-up output and one log line per request.
    pub verbose: bool,
    /// Port of the gRPC API (TF Serving's `--port`).
    pub grpc_port: u16,
    pub grpc: grpc::GrpcOptions,
    /// Warmup, metrics and batching.
    pub server: ServerOptions,
    /// One line per flag accepted without effect, printed before serving.
    pub warnings: Vec<String>,
    /// `--grpc_socket_path`: gRPC on this Unix socket too.
    pub grpc_socket_path: Option<PathBuf>,
    /// `--model_config_file_poll_wait_seconds`: seconds between re-reads of the model config
    /// file (0: read once).
    pub config_poll_seconds: u64,
    /// `--model_config_file`, re-read every `config_poll_seconds`.
    pub config_file: Option<PathBuf>,
    /// The models named on the command line (PATH, `--model`), kept when the config file is
    /// re-read.
    pub fixed_models: Vec<String>,
    /// On SIGINT/SIGTERM, how long requests in flight have to finish.
    pub shutdown_timeout: Duration,
}

/// What a server does besides loading and answering: warmup, metrics exposure, batching.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Replay `assets.extra/tf_serving_warmup_requests` before a version becomes available.
    pub warmup: bool,
    /// Times each warmup request is replayed (`--num_request_iterations_for_warmup`; 0: once).
    pub warmup_iterations: u32,
    /// Where the REST port serves Prometheus metrics (`--monitoring_config_file`); `None`:
    /// not served (they are still counted).
    pub metrics_path: Option<String>,
    /// Batching, request limits and the method name check.
    pub run: runner::RunOptions,
    /// TensorFlow's thread pools for every session.
    pub threads: SessionThreads,
    /// How versions that failed to load are tried again.
    pub load_retries: models::LoadRetries,
    /// `--tensorflow_session_config_file`: the session config the flags start from.
    pub session_base: Option<tfp::ConfigProto>,
    /// `--per_process_gpu_memory_fraction` (0: TensorFlow chooses).
    pub gpu_memory_fraction: f32,
    /// `--saved_model_tags`: the tag-set of the meta graph loaded from every SavedModel.
    pub tags: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            warmup: true,
            warmup_iterations: 0,
            metrics_path: None,
            run: runner::RunOptions::default(),
            threads: SessionThreads::default(),
            load_retries: models::LoadRetries::default(),
            session_base: None,
            gpu_memory_fraction: 0.0,
            tags: vec![servable::SERVE_TAG.to_owned()],
        }
    }
}

impl ServerOptions {
    /// The `ConfigProto` every session is created with: the session config file's, with the
    /// thread flags and the GPU memory fraction over it when they are given.
    pub fn session_config(&self) -> tfp::ConfigProto {
        let mut config = self.session_base.clone().unwrap_or_default();
        self.threads.apply(&mut config);
        if self.gpu_memory_fraction != 0.0 {
            config
                .gpu_options
                .get_or_insert_with(Default::default)
                .per_process_gpu_memory_fraction = f64::from(self.gpu_memory_fraction);
        }
        config
    }
}

/// Finds and loads libtensorflow, telling the user on stderr what it does.
pub fn load_tensorflow(
    options: &library::LibraryOptions,
    verbose: bool,
) -> Result<&'static tf::TensorFlow> {
    let located = library::locate(options, &mut |msg| say!("smtool serve: {msg}"))?;
    let (tf, noise) = tf::TensorFlow::load(&located.library).map_err(|e| {
        let mut err = anyhow::anyhow!("{e}");
        if !e.stderr.trim().is_empty() {
            err = err.context(format!("TensorFlow said:\n{}", e.stderr.trim()));
        }
        err
    })?;
    if verbose && !noise.trim().is_empty() {
        say!("{}", noise.trim_end());
    }
    say!(
        "smtool serve: TensorFlow {} from {} ({})",
        tf.version(),
        tf.path().display(),
        located.source
    );
    Ok(tf)
}

/// `smtool serve --version`: the lines `tensorflow_model_server --version` prints, with the
/// TensorFlow found the way `serve` finds it (never downloaded for this).
pub fn version_text(options: &library::LibraryOptions) -> String {
    let server = format!(
        "TensorFlow ModelServer: smtool {} (TensorFlow Serving 2.21 APIs)",
        env!("CARGO_PKG_VERSION")
    );
    let mut options = options.clone();
    options.fetch = false;
    let library = match library::locate(&options, &mut |_| {}) {
        Ok(located) => match tf::TensorFlow::load(&located.library) {
            Ok((tf, _)) => tf.version(),
            Err(e) => format!("not loadable ({e})"),
        },
        Err(e) => format!("not found ({e:#})"),
    };
    format!("{server}\nTensorFlow Library: {library}\n")
}

/// A running model manager with its poller.
pub struct Server {
    pub core: Arc<core::Core>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Loads every model's versions once, then (when `poll` is set) follows their directories;
    /// warmup, metrics and batching as `options` say.
    pub fn start(
        tf: &'static tf::TensorFlow,
        models: Vec<ModelConfig>,
        poll: Option<Duration>,
        options: ServerOptions,
    ) -> Self {
        let metrics = Arc::new(metrics::Metrics::new());
        let runner = Arc::new(runner::Runner::new(metrics.clone(), options.run.clone()));
        let warmup = options
            .warmup
            .then(|| warmup::Warmup::new(runner.clone(), options.warmup_iterations));
        let load = servable::LoadOptions {
            session_config: options.session_config(),
            tags: options.tags.clone(),
        };
        let manager = Arc::new(ModelManager::new(
            tf,
            models,
            metrics,
            models::ManagerOptions {
                load,
                retries: options.load_retries,
                warmup,
            },
        ));
        let core = Arc::new(core::Core::new(
            manager.clone(),
            runner,
            options.metrics_path.clone(),
        ));
        manager.poll_now();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The poller follows the directories every `poll`; without it, the thread only
        // retries failed loads when they are due.
        let poller = {
            let manager = manager.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let tick = Duration::from_millis(50);
                let mut waited = Duration::ZERO;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    waited += tick;
                    match poll {
                        Some(every) if waited >= every => {
                            waited = Duration::ZERO;
                            manager.poll();
                        }
                        Some(_) => {}
                        None => manager.retry_due(),
                    }
                }
            })
        };
        Server {
            core,
            stop,
            poller: Some(poller),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(p) = self.poller.take() {
            let _ = p.join();
        }
    }
}

/// SIGINT and SIGTERM, listened for from the first moment of [`run`], so that the first one
/// always counts, whenever it comes (a listener created later would miss a signal sent while
/// TensorFlow loads, and where the parent ignores SIGINT, as shells do for background jobs,
/// that signal would be lost).
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Must run inside the runtime.
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next signal: its number and name.
    async fn next(&mut self) -> (i32, &'static str) {
        tokio::select! {
            _ = self.interrupt.recv() => (libc::SIGINT, "SIGINT"),
            _ = self.terminate.recv() => (libc::SIGTERM, "SIGTERM"),
        }
    }
}

/// How long requests get after their TensorFlow runs are cancelled at the shutdown deadline
/// (an op that never checks for cancellation keeps running; then the process exits anyway).
const CANCEL_GRACE: Duration = Duration::from_secs(5);

fn init_logging(verbose: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SMTOOL_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if verbose { "info" } else { "warn" })
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Re-reads the model config file every `every` and applies it as HandleReloadConfigRequest
/// does (TF Serving's `--model_config_file_poll_wait_seconds`); models named on the command
/// line besides the file stay. Errors are logged with TF Serving's wording and the served
/// models stay as they are. Stops when `stop` is set.
fn poll_config_file(
    core: Arc<core::Core>,
    file: PathBuf,
    fixed: Vec<sv::ModelConfig>,
    every: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let tick = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(tick);
        waited += tick;
        if waited < every {
            continue;
        }
        waited = Duration::ZERO;
        let request = match config::config_file_reload(&file, &fixed) {
            Ok(request) => request,
            Err(e) => {
                say!("smtool serve: Failed to read ModelServerConfig file: {e:#}");
                continue;
            }
        };
        if let Err(e) = core.reload_config(&request) {
            say!(
                "smtool serve: PollFilesystemAndReloadConfig failed to ReloadConfig: {}",
                e.message
            );
        }
    }
}

/// Binds `--grpc_socket_path`, replacing a socket left by an earlier run (never another kind
/// of file).
#[cfg(unix)]
fn bind_unix(path: &Path) -> Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!(
                "--grpc_socket_path '{}' exists and is not a socket; choose another path",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the old socket '{}'", path.display()))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on the Unix socket '{}'", path.display()))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The transports' settings.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    pub http: http::HttpOptions,
    pub grpc: grpc::GrpcOptions,
    /// After the shutdown signal, how long requests in flight have to finish before their
    /// TensorFlow runs are cancelled.
    pub shutdown_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            http: http::HttpOptions::default(),
            grpc: grpc::GrpcOptions::default(),
            shutdown_timeout: Duration::from_secs(20),
        }
    }
}

/// Serves the REST API on `rest` and the gRPC API on `grpc` with `core` until `shutdown`
/// completes (mini-redis' `server::run`); `smtool serve` and the tests both run a server so.
///
/// `shutdown` stops both transports from accepting; so does a transport that fails. Requests
/// in flight then have `options.shutdown_timeout` to finish; after it every session is
/// closed, which cancels their TensorFlow runs, and after [`CANCEL_GRACE`] more the process
/// exits whatever still runs.
pub async fn serve_all(
    rest: tokio::net::TcpListener,
    grpc: grpc::Listeners,
    core: Arc<core::Core>,
    options: TransportOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let grpc = async {
        let result = grpc::serve_all(grpc, core.clone(), options.grpc.clone(), stopped()).await;
        let _ = stop_tx.send(true);
        result
    };
    let rest = async {
        let result = http::serve(rest, core.clone(), options.http.clone(), stopped()).await;
        let _ = stop_tx.send(true);
        result
    };
    let both = async { tokio::join!(grpc, rest) };
    tokio::pin!(both);
    let deadline = async {
        tokio::select! {
            _ = shutdown => {
                let _ = stop_tx.send(true);
            }
            _ = stopped() => {}
        }
        tokio::time::sleep(options.shutdown_timeout).await;
    };
    let (grpc, rest) = tokio::select! {
        done = &mut both => done,
        _ = deadline => {
            say!(
                "smtool serve: requests still running after {}s; cancelling their TensorFlow runs",
                options.shutdown_timeout.as_secs_f64()
            );
            tf::close_all_sessions();
            match tokio::time::timeout(CANCEL_GRACE, &mut both).await {
                Ok(done) => done,
                Err(_) => {
                    say!("smtool serve: requests did not stop; exiting");
                    tf::exit_now(1);
                }
            }
        }
    };
    grpc.context("serving gRPC")?;
    rest.context("serving HTTP")
}

/// Runs `smtool serve` until SIGINT / SIGTERM.
///
/// Shutdown: the first signal stops accepting connections and lets requests in flight finish
/// for `shutdown_timeout`; then every session is closed, which cancels their runs, and after
/// [`CANCEL_GRACE`] the process exits whatever still runs. A second signal exits at once. A
/// signal before the server is up ends the process as the signal would by default.
pub fn run(options: ServeOptions) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut signals = {
        let _inside = runtime.enter();
        Signals::listen().context("listening for SIGINT and SIGTERM")?
    };
    let serving = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let grace = options.shutdown_timeout;
    runtime.spawn({
        let (serving, stop_tx) = (serving.clone(), stop_tx.clone());
        async move {
            let (number, name) = signals.next().await;
            if !serving.load(std::sync::atomic::Ordering::SeqCst) {
                say!("smtool serve: {name} while starting; stopping");
                tf::die_by_signal(number);
            }
            say!(
                "smtool serve: {name}: shutting down; finishing requests in flight (up to {}s)",
                grace.as_secs_f64()
            );
            let _ = stop_tx.send(true);
            let (number, name) = signals.next().await;
            say!("smtool serve: second {name}: exiting now");
            tf::exit_now(128 + number);
        }
    });
    init_logging(options.verbose);
    for warning in &options.warnings {
        say!("smtool serve: warning: {warning}");
    }
    if std::env::var_os("TF_CPP_MIN_LOG_LEVEL").is_none() && !options.verbose {
        // Before TensorFlow is loaded (the runtime's threads do not read the environment).
        std::env::set_var("TF_CPP_MIN_LOG_LEVEL", "3");
    }
    // Claim the port first: a port in use fails at once, not after loading TensorFlow.
    let addr = format!("{}:{}", options.host, options.port);
    let listener = std::net::TcpListener::bind(&addr).with_context(|| {
        format!("cannot listen on {addr} (choose another --rest_api_port or --host)")
    })?;
    listener.set_nonblocking(true)?;
    let grpc_addr = format!("{}:{}", options.host, options.grpc_port);
    let grpc_listener = std::net::TcpListener::bind(&grpc_addr).with_context(|| {
        format!("cannot listen on {grpc_addr} for gRPC (choose another --port or --host)")
    })?;
    grpc_listener.set_nonblocking(true)?;
    #[cfg(unix)]
    let unix_listener = options
        .grpc_socket_path
        .as_deref()
        .map(bind_unix)
        .transpose()?;
    #[cfg(not(unix))]
    if options.grpc_socket_path.is_some() {
        bail!("--grpc_socket_path needs a system with Unix sockets");
    }
    let tf = load_tensorflow(&options.library, options.verbose)?;
    let poll = (options.poll_seconds > 0).then(|| Duration::from_secs(options.poll_seconds));
    #[cfg(feature = "storage")]
    if let Some(every) = poll {
        // Remote base paths are synced into their cache as often as local ones are polled.
        crate::storage::cache::start_polling(every);
    }
    let server = Server::start(tf, options.models.clone(), poll, options.server.clone());
    for name in server.core.models().names() {
        let states = server.core.models().states(&name).unwrap_or_default();
        for (version, state) in states {
            match state {
                models::VersionState::Available(_) => {
                    say!("smtool serve: model '{name}' version {version} is available")
                }
                models::VersionState::End { error: Some(e) } => {
                    say!(
                        "smtool serve: model '{name}' version {version} failed to load: {}",
                        e.message
                    )
                }
                _ => {}
            }
        }
    }
    let config_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let config_poller = match (&options.config_file, options.config_poll_seconds) {
        (Some(file), seconds) if seconds > 0 => {
            let fixed = config::fixed_entries(&options.models, &options.fixed_models);
            let core = server.core.clone();
            let file = file.clone();
            let stop = config_stop.clone();
            Some(std::thread::spawn(move || {
                poll_config_file(core, file, fixed, Duration::from_secs(seconds), stop)
            }))
        }
        _ => None,
    };
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let grpc_listener = tokio::net::TcpListener::from_std(grpc_listener)?;
        #[cfg(unix)]
        let unix_listener = unix_listener
            .map(tokio::net::UnixListener::from_std)
            .transpose()?;
        #[cfg(unix)]
        if let Some(path) = &options.grpc_socket_path {
            say!("smtool serve: gRPC API on Unix socket {}", path.display());
        }
        let local: SocketAddr = listener.local_addr()?;
        let grpc_local: SocketAddr = grpc_listener.local_addr()?;
        // From here a signal shuts the server down gracefully.
        serving.store(true, std::sync::atomic::Ordering::SeqCst);
        say!("smtool serve: gRPC API on {grpc_local} (tensorflow.serving.PredictionService, ModelService)");
        if let Some(path) = server.core.metrics_path() {
            say!("smtool serve: Prometheus metrics on http://{local}{path}");
        }
        say!("smtool serve: REST API on http://{local}/v1/models/<name>");
        let transports = TransportOptions {
            http: options.http.clone(),
            grpc: options.grpc.clone(),
            shutdown_timeout: grace,
        };
        let grpc = grpc::Listeners {
            tcp: grpc_listener,
            #[cfg(unix)]
            unix: unix_listener,
        };
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        serve_all(listener, grpc, server.core.clone(), transports, shutdown).await
    })?;
    config_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(poller) = config_poller {
        let _ = poller.join();
    }
    drop(server);
    // The local copies of remote models go with the server.
    #[cfg(feature = "storage")]
    crate::storage::cache::remove();
    // Threads of the blocking pool that are still winding down are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
