//! Connection limits shared by the REST and gRPC transports, so that slow, stuck or merely
//! numerous clients cannot lock others out: a bound on open connections per API, a time limit
//! for a client to send its request headers (REST) or to start HTTP/2 (gRPC), and an idle
//! limit on a connection that moves no bytes while it should.
//!
//! hyper and tonic have no such stream wrapper or connection bound of their own, hence
//! [`Guarded`]: a stream (TCP, or the gRPC Unix socket's) that fails a read or write left
//! pending too long, and holds one of the API's connection permits for as long as it lives.
//!
//! REST request heads are timed here too, rather than by hyper's `header_read_timeout`: with
//! that option set hyper arms a timer and runs an extra pass of its connection loop for every
//! request on a kept-alive connection, which cost about a tenth of the REST throughput at
//! concurrency 16. A [`HeadClock`] instead tells the stream when its connection started to
//! wait for a request's head (at the start, and when the last response was handed over, then
//! again at each write of it, so that a response the client reads slowly is not cut off); the
//! stream fails a read that is pending past that moment plus the header timeout, through one
//! timer per connection that is left armed between requests ([`Deadline`]). While a write is
//! stalled, the idle limit times the connection instead.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Limits on the connections of one API (REST or gRPC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// REST: time a client has to send a request's headers, from the moment the server is
    /// ready to read them (so also how long an idle keep-alive connection stays open). gRPC:
    /// time a new connection has to send the HTTP/2 preface.
    pub header_timeout: Duration,
    /// A connection that moves no bytes for this long while the server waits on it is
    /// closed: REST while it reads a request body or writes a response; gRPC at any time
    /// (the server pings idle clients more often than this, and live clients answer).
    pub idle_timeout: Duration,
    /// Open connections per API; further clients wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_connections: 1024,
        }
    }
}

impl ConnectionOptions {
    /// The connection permits of one API.
    pub fn permits(&self) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(
            self.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        ))
    }

    /// How often the gRPC server pings a client: well within the idle limit, so that a live
    /// client (which answers pings) is never idle.
    pub fn grpc_keepalive_interval(&self) -> Duration {
        (self.idle_timeout / 3).max(Duration::from_millis(100))
    }
}

/// A listening socket whose connections [`accept`] hands out.
pub trait Listener {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_stream(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

/// Unsent bytes a TCP connection queues before its writes wait. The kernel then wakes a
/// waiting writer as soon as the client has taken about half of them, instead of once a third
/// of a send buffer grown to megabytes has drained: a client that reads a large response
/// slowly sees its writes complete within the idle limit, and is not taken for idle.
#[cfg(any(target_os = "linux", target_os = "android"))]
const UNSENT_BYTES: u32 = 128 << 10;

impl Listener for TcpListener {
    type Stream = TcpStream;
    async fn accept_stream(&self) -> io::Result<TcpStream> {
        let (stream, _) = self.accept().await?;
        let _ = stream.set_nodelay(true);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(UNSENT_BYTES);
        Ok(stream)
    }
}

#[cfg(unix)]
impl Listener for UnixListener {
    type Stream = UnixStream;
    async fn accept_stream(&self) -> io::Result<UnixStream> {
        Ok(self.accept().await?.0)
    }
}

/// Waits for a connection permit, then for a connection. Errors that concern one connection
/// (reset before accept) are skipped; running out of file descriptors is waited out.
pub async fn accept<L: Listener>(
    listener: &L,
    permits: &Arc<Semaphore>,
) -> (L::Stream, OwnedSemaphorePermit) {
    let permit = loop {
        // The semaphore is never closed; should it be, wait and try again rather than spin.
        match permits.clone().acquire_owned().await {
            Ok(p) => break p,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    loop {
        match listener.accept_stream().await {
            Ok(stream) => return (stream, permit),
            Err(e) => {
                use io::ErrorKind::*;
                if !matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Where a REST connection is between requests, shared by its stream and its HTTP service
/// (which sees each request start and each response end).
#[derive(Clone)]
pub struct HeadClock(Arc<HeadClockState>);

struct HeadClockState {
    start: Instant,
    /// Nanoseconds from `start` to when the connection began to wait for a request head, or
    /// [`HeadClock::BUSY`] while it serves a request.
    waiting_since: AtomicU64,
}

impl HeadClock {
    const BUSY: u64 = u64::MAX;

    /// A new connection, waiting for its first request head from now on.
    pub fn new() -> Self {
        HeadClock(Arc::new(HeadClockState {
            start: Instant::now(),
            waiting_since: AtomicU64::new(0),
        }))
    }

    /// A request's head has arrived: until its response is handed over, reads are timed by
    /// whoever reads the body, or not at all.
    pub fn request_started(&self) {
        self.0.waiting_since.store(Self::BUSY, Ordering::Relaxed);
    }

    /// A response has been handed over: the next request's head is due within the limit.
    pub fn response_sent(&self) {
        self.wait_from(Instant::now());
    }

    fn wait_from(&self, now: Instant) {
        let since = now
            .saturating_duration_since(self.0.start)
            .as_nanos()
            .min(u128::from(Self::BUSY - 1));
        self.0.waiting_since.store(since as u64, Ordering::Relaxed);
    }

    /// A part of the response just handed over has been written at `now`: the next head is
    /// due within the limit from then on. True if the connection waits for a head.
    fn written_at(&self, now: Instant) -> bool {
        let waiting = self.0.waiting_since.load(Ordering::Relaxed) != Self::BUSY;
        if waiting {
            self.wait_from(now);
        }
        waiting
    }

    /// When the head being waited for is overdue, if one is.
    fn head_due(&self, limit: Duration) -> Option<Instant> {
        match self.0.waiting_since.load(Ordering::Relaxed) {
            Self::BUSY => None,
            since => Some(later(
                later(self.0.start, Duration::from_nanos(since)),
                limit,
            )),
        }
    }
}

/// `at + by`, or a moment decades away where that is past what an `Instant` holds (a limit
/// of `u64::MAX` seconds means none).
fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by)
        .unwrap_or_else(|| at + Duration::from_secs(30 * 365 * 86_400))
}

impl Default for HeadClock {
    fn default() -> Self {
        Self::new()
    }
}

/// A deadline that may move on every use without a timer operation: its tokio sleep stays
/// armed and is re-armed only when it fires before the deadline (at most once per limit).
#[derive(Default)]
struct Deadline {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// True once `at` has passed (it is `now`); otherwise the task is woken no later than `at`.
    fn passed(&mut self, now: Instant, at: Instant, cx: &mut Context<'_>) -> bool {
        if now >= at {
            return true;
        }
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        // A sleep that fires earlier than `at` may stay: it only means a poll more.
        if sleep.is_elapsed() || sleep.deadline() > at {
            sleep.as_mut().reset(at);
        }
        if sleep.as_mut().poll(cx).is_pending() {
            return false;
        }
        if sleep.deadline() >= at {
            return true;
        }
        sleep.as_mut().reset(at);
        sleep.as_mut().poll(cx).is_ready()
    }
}

/// A time limit on an operation, counted from when it first went pending until it completes.
/// Its [`Deadline`] keeps one timer armed across operations, so an operation that completes
/// costs no timer change.
#[derive(Default)]
struct Stall {
    due: Deadline,
    /// When the pending operation times out; None while none is pending.
    at: Option<Instant>,
}

impl Stall {
    /// The operation is pending: true once it has been pending for `limit`.
    fn expired(&mut self, limit: Duration, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let at = *self.at.get_or_insert_with(|| later(now, limit));
        self.due.passed(now, at, cx)
    }

    fn done(&mut self) {
        self.at = None;
    }

    fn pending(&self) -> bool {
        self.at.is_some()
    }
}

/// How long reads may stay pending.
enum ReadLimit {
    /// REST: a request's head is due `limit` after the connection begins to wait for it, unless
    /// a write is stalled (the write's idle limit applies). Other reads are not timed here (the
    /// REST handler times bodies).
    Rest {
        clock: HeadClock,
        limit: Duration,
        due: Deadline,
    },
    /// gRPC: the first `bytes` bytes by `deadline`, then never idle for longer than `idle`.
    Grpc {
        deadline: Option<(Pin<Box<Sleep>>, u64)>,
        idle: Duration,
    },
}

/// A connection with time limits on pending reads and writes; holds its connection permit.
pub struct Guarded<S = TcpStream> {
    io: S,
    reads: ReadLimit,
    read_stall: Stall,
    write_idle: Duration,
    write_stall: Stall,
    _permit: OwnedSemaphorePermit,
}

/// The HTTP/2 client preface: a gRPC client has started once it has sent this many bytes.
const HTTP2_PREFACE_LEN: u64 = 24;

/// `Pending`, or once `expired` the error that closes the connection: the client's `what`
/// timed out.
fn pending_until<T>(expired: bool, what: &str) -> Poll<io::Result<T>> {
    if expired {
        let error = io::Error::new(io::ErrorKind::TimedOut, format!("client {what} timed out"));
        Poll::Ready(Err(error))
    } else {
        Poll::Pending
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Guarded<S> {
    /// A REST connection: each request head within `options.header_timeout` of the moment
    /// `clock` says the connection began to wait for it, and writes stalled for
    /// `options.idle_timeout` at most.
    pub fn rest(
        io: S,
        options: &ConnectionOptions,
        permit: OwnedSemaphorePermit,
        clock: HeadClock,
    ) -> Self {
        Guarded {
            io,
            reads: ReadLimit::Rest {
                clock,
                limit: options.header_timeout,
                due: Deadline::default(),
            },
            read_stall: Stall::default(),
            write_idle: options.idle_timeout,
            write_stall: Stall::default(),
            _permit: permit,
        }
    }

    /// A gRPC connection: the HTTP/2 preface within `options.header_timeout`, then no read or
    /// write pending for longer than `options.idle_timeout`.
    pub fn grpc(io: S, options: &ConnectionOptions, permit: OwnedSemaphorePermit) -> Self {
        let deadline = Box::pin(tokio::time::sleep(options.header_timeout));
        Guarded {
            io,
            reads: ReadLimit::Grpc {
                deadline: Some((deadline, HTTP2_PREFACE_LEN)),
                idle: options.idle_timeout,
            },
            read_stall: Stall::default(),
            write_idle: options.idle_timeout,
            write_stall: Stall::default(),
            _permit: permit,
        }
    }

    /// What a write to the stream answered (`poll`), with the write stall timed.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match poll {
            Poll::Ready(r) => {
                self.write_stall.done();
                // A response handed over is still being written: the next head is due from
                // its last write on. hyper may not read again before the client sends (a read
                // it left pending while serving counts), so the deadline's wake-up is armed
                // here.
                if let ReadLimit::Rest { clock, limit, due } = &mut self.reads {
                    let now = Instant::now();
                    if clock.written_at(now) {
                        due.passed(now, later(now, *limit), cx); // arms it: due later
                    }
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let expired = self.write_stall.expired(self.write_idle, cx);
                pending_until(expired, "reading the response")
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.read_stall.done();
                if let ReadLimit::Grpc { deadline, .. } = &mut this.reads {
                    if let Some((_, left)) = deadline {
                        let read = (buf.filled().len() - before) as u64;
                        *left = left.saturating_sub(read);
                        if *left == 0 {
                            *deadline = None;
                        }
                    }
                }
                Poll::Ready(result)
            }
            Poll::Pending => match &mut this.reads {
                ReadLimit::Rest { .. } if this.write_stall.pending() => Poll::Pending,
                ReadLimit::Rest { clock, limit, due } => match clock.head_due(*limit) {
                    Some(at) => pending_until(
                        due.passed(Instant::now(), at, cx),
                        "sending request headers",
                    ),
                    None => Poll::Pending,
                },
                ReadLimit::Grpc {
                    deadline: Some((sleep, _)),
                    ..
                } => pending_until(sleep.as_mut().poll(cx).is_ready(), "starting HTTP/2"),
                ReadLimit::Grpc { idle, .. } => {
                    pending_until(this.read_stall.expired(*idle, cx), "connection")
                }
            },
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.written(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.written(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for Guarded<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair(options: &ConnectionOptions, grpc: bool) -> (Guarded, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let permits = options.permits();
        let (stream, permit) = accept(&listener, &permits).await;
        let guarded = if grpc {
            Guarded::grpc(stream, options, permit)
        } else {
            Guarded::rest(stream, options, permit, HeadClock::new())
        };
        (guarded, client)
    }

    fn short() -> ConnectionOptions {
        ConnectionOptions {
            header_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_millis(500),
            max_connections: 1,
        }
    }

    #[tokio::test]
    async fn a_grpc_client_that_never_starts_is_dropped() {
        let (mut server, mut client) = pair(&short(), true).await;
        client
            .write_all(b"PRI * HTTP/2.0")
            .await
            .expect("partial preface");
        let mut buf = [0u8; 64];
        let e = server.read(&mut buf).await.map(|n| {
            assert_eq!(n, 14);
        });
        assert!(e.is_ok());
        let e = server
            .read(&mut buf)
            .await
            .expect_err("preface never completed");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_grpc_connection_idle_after_starting_is_dropped_and_data_keeps_it_open() {
        let (mut server, mut client) = pair(&short(), true).await;
        client.write_all(&[b'x'; 24]).await.expect("preface");
        let mut buf = [0u8; 64];
        assert_eq!(server.read(&mut buf).await.expect("read"), 24);
        // Bytes in time keep it open, however long the connection lives.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            client.write_all(b"ping").await.expect("write");
            assert_eq!(server.read(&mut buf).await.expect("read"), 4);
        }
        let e = server.read(&mut buf).await.expect_err("idle");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_its_response_is_dropped() {
        let (mut server, _client) = pair(&short(), false).await;
        let chunk = vec![0u8; 1 << 20];
        let e = loop {
            if let Err(e) = server.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn limits_too_long_for_a_clock_mean_none() {
        let options = ConnectionOptions {
            header_timeout: Duration::MAX,
            idle_timeout: Duration::MAX,
            max_connections: 1,
        };
        for grpc in [false, true] {
            let (mut server, mut client) = pair(&options, grpc).await;
            client.write_all(&[b'x'; 24]).await.expect("preface");
            let mut buf = [0u8; 64];
            assert_eq!(server.read(&mut buf).await.expect("read"), 24);
            server.write_all(b"answer").await.expect("write");
            let read = tokio::time::timeout(Duration::from_millis(100), server.read(&mut buf));
            assert!(read.await.is_err(), "a read without a time limit ended");
            // A write the client does not read stalls, and is not cut off either.
            let chunk = vec![0u8; 1 << 20];
            let stalled = loop {
                let write = tokio::time::timeout(Duration::from_millis(100), server.write(&chunk));
                match write.await {
                    Ok(written) => assert!(written.is_ok_and(|n| n > 0), "grpc: {grpc}"),
                    Err(_) => break true,
                }
            };
            assert!(stalled);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_reads_its_response_slowly_is_not_dropped() {
        let options = short();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("buffer size");
        let mut client = socket
            .connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (stream, permit) = accept(&listener, &options.permits()).await;
        let mut server = Guarded::rest(stream, &options, permit, HeadClock::new());
        // The server's send buffer grows to megabytes; the client takes far longer than the
        // idle limit to read a third of that, but reads all the while.
        const TOTAL: usize = 4 << 20;
        let reader = tokio::spawn(async move {
            let (mut got, mut buf) = (0, [0u8; 4096]);
            while got < TOTAL {
                tokio::time::sleep(Duration::from_millis(2)).await;
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            got
        });
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..TOTAL / chunk.len() {
            let written = server.write_all(&chunk).await;
            assert!(written.is_ok(), "a reading client was dropped: {written:?}");
        }
        assert_eq!(reader.await.expect("reader"), TOTAL);
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_for_a_permit() {
        let options = short();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let permits = options.permits();
        let _c1 = TcpStream::connect(addr).await.expect("connect");
        let _c2 = TcpStream::connect(addr).await.expect("connect");
        let (first, permit) = accept(&listener, &permits).await;
        assert!(
            permits.clone().try_acquire_owned().is_err(),
            "no permit left"
        );
        drop(Guarded::rest(first, &options, permit, HeadClock::new()));
        let (second, _permit) = accept(&listener, &permits).await;
        drop(second);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn unix_socket_connections_share_the_bound_and_the_time_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("grpc.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let options = short();
        let permits = options.permits();
        let mut c1 = UnixStream::connect(&path).await.expect("connect");
        let _c2 = UnixStream::connect(&path).await.expect("connect");
        let (first, permit) = accept(&listener, &permits).await;
        assert!(
            permits.clone().try_acquire_owned().is_err(),
            "no permit left"
        );
        let mut server = Guarded::grpc(first, &options, permit);
        c1.write_all(b"PRI * HTTP/2.0")
            .await
            .expect("partial preface");
        let mut buf = [0u8; 64];
        assert_eq!(server.read(&mut buf).await.expect("read"), 14);
        let e = server
            .read(&mut buf)
            .await
            .expect_err("preface never completed");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(server);
        let (_second, _permit) = accept(&listener, &permits).await;
    }
}
