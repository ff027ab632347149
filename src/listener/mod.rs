//! The HTTP listeners: accept TCP (and TLS) connections and serve a router on each over
//! HTTP/1.1, within the bounds of `http:` so that slow, idle or greedy clients cannot hold
//! what other producers need.
//!
//! - A client address past `max_connections_per_client` has its new connections closed as
//!   soon as they are accepted ([`clients`]).
//! - A connection must complete its TLS handshake and request head within
//!   `header_timeout_seconds`, and may idle between requests for `idle_timeout_seconds`
//!   ([`activity`]); past that it is closed.
//! - Each request carries its client ([`Peer`]) so the API can cap the body bytes one
//!   client has in flight; the body's own deadline is the API's ([`crate::api`]).
//!
//! Graceful stop: when the shutdown signal comes, the listeners stop accepting, idle
//! connections close, and requests in flight finish; [`serve`] returns once every
//! connection is closed. Dropping the [`serve`] future closes every connection at once.

pub mod activity;
pub mod clients;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use self::activity::{Activity, InProgress, Timeouts};
use self::clients::{Admitted, Client, ClientLimits, Clients};
use crate::config::HttpConfig;
use crate::telemetry::Metrics;

/// The client a request came from, as a request extension.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub client: Arc<Client>,
}

/// One listening socket and what it serves.
pub struct Listener {
    /// `api` or `admin`: the `listener` label of its metrics and log lines.
    name: &'static str,
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    clients: Arc<Clients>,
    timeouts: Timeouts,
}

impl Listener {
    /// `tls`: serve HTTPS with this configuration (`None`: plain HTTP).
    pub fn new(
        name: &'static str,
        tcp: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        router: Router,
        http: &HttpConfig,
    ) -> Self {
        let limits = ClientLimits {
            max_connections: http.max_connections_per_client,
            max_inflight_bytes: http.max_inflight_bytes_per_client,
        };
        Self {
            name,
            tcp,
            tls: tls.map(TlsAcceptor::from),
            router,
            clients: Clients::new(limits),
            timeouts: Timeouts { header: http.header_timeout(), idle: http.idle_timeout() },
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The connected clients of this listener.
    pub fn clients(&self) -> Arc<Clients> {
        self.clients.clone()
    }
}

/// Serves every listener until `shutdown` resolves, then stops accepting and returns once
/// the requests in flight are answered and every connection is closed.
pub async fn serve(
    listeners: Vec<Listener>,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let accepting = futures::future::join_all(
        listeners.into_iter().map(|l| accept_loop(l, metrics.clone(), stopped.clone())),
    );
    let signal = async {
        shutdown.await;
        let _ = stop.send(true);
    };
    let (_, ()) = tokio::join!(accepting, signal);
    Ok(())
}

/// Accepts until stopped, then waits for the connections to close. Dropping it drops (and so
/// aborts) every connection task.
async fn accept_loop(listener: Listener, metrics: Metrics, mut stopped: watch::Receiver<bool>) {
    let Listener { name, tcp, tls, router, clients, timeouts } = listener;
    let shared = Arc::new(Shared { name, tls, router, timeouts, metrics });
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: give connections time to close.
                tracing::error!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let admitted = match clients.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(over) => {
                shared.metrics.http_connection_rejected(name, "client_connections");
                tracing::debug!(listener = name, %peer, open = over.open,
                    "connection closed: the client is at http.max_connections_per_client");
                continue;
            }
        };
        connections.spawn(connection(shared.clone(), stream, peer, admitted, stopped.clone()));
    }
    drop(tcp);
    while connections.join_next().await.is_some() {}
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What every connection of one listener shares.
struct Shared {
    name: &'static str,
    tls: Option<TlsAcceptor>,
    router: Router,
    timeouts: Timeouts,
    metrics: Metrics,
}

/// One connection, from accept to close.
async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    mut stopped: watch::Receiver<bool>,
) {
    let _open = shared.metrics.http_connection_open(shared.name);
    let activity = Activity::new();
    let Some(tls) = &shared.tls else {
        return serve_connection(&shared, stream, peer, &admitted, activity, stopped).await;
    };
    let handshake_deadline = tokio::time::Instant::now() + shared.timeouts.header;
    let handshake = tokio::select! {
        _ = stopped.wait_for(|stop| *stop) => return,
        handshake = tokio::time::timeout_at(handshake_deadline, tls.accept(stream)) => handshake,
    };
    match handshake {
        Ok(Ok(stream)) => {
            serve_connection(&shared, stream, peer, &admitted, activity, stopped).await
        }
        Ok(Err(e)) => {
            tracing::debug!(listener = shared.name, %peer, error = %e, "tls handshake failed")
        }
        Err(_) => {
            shared.metrics.http_connection_timed_out(shared.name, "tls_handshake");
            tracing::debug!(listener = shared.name, %peer, "tls handshake timed out; connection closed");
        }
    }
}

async fn serve_connection<IO>(
    shared: &Shared,
    io: IO,
    peer: SocketAddr,
    admitted: &Admitted,
    activity: Arc<Activity>,
    mut stopped: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Watched { io, activity: activity.clone() });
    let service = ConnectionService {
        router: shared.router.clone(),
        activity: activity.clone(),
        peer: Peer { addr: peer, client: admitted.client().clone() },
    };
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(listener = shared.name, %peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stopped.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            why = activity.expired(shared.timeouts) => {
                shared.metrics.http_connection_timed_out(shared.name, why.label());
                tracing::debug!(listener = shared.name, %peer, phase = why.label(), "connection timed out; closed");
                return;
            }
        }
    }
}

/// The router, called for each request of one connection: marks the request in progress
/// (until its handler answered and its body is dropped) and attaches its [`Peer`].
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    activity: Arc<Activity>,
    peer: Peer,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_progress = Arc::new(self.activity.request_started());
        let mut request =
            request.map(|body| Body::new(Tracked { body, _in_progress: in_progress.clone() }));
        request.extensions_mut().insert(self.peer.clone());
        let mut router = self.router.clone();
        Box::pin(async move {
            // A Router is always ready: `call` needs no `poll_ready` first.
            let response = tower_service::Service::call(&mut router, request).await;
            drop(in_progress);
            response
        })
    }
}

/// A request body that keeps its request in progress while anyone still reads it.
struct Tracked {
    body: Incoming,
    _in_progress: Arc<InProgress>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's I/O, telling its [`Activity`] when bytes arrive.
struct Watched<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
