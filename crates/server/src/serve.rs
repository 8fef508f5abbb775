//! Serving a router over TCP with the limits `axum::serve` lacks (issue
//! 27): a client has [`HEADER_TIMEOUT`] to send a request's headers, and
//! the wait for the next request on a kept-alive connection is held to the
//! same; a connection on which nothing moves for [`IDLE_TIMEOUT`] while no
//! handler works on a request (a response the client does not read, a
//! request body that stops coming) is closed. Handlers get the peer's
//! address as `ConnectInfo<SocketAddr>`, which the pages' login limits key
//! on.
//!
//! Each connection is HTTP/1.1 through hyper-util's connection builder,
//! with tokio's timer (so paused-time tests drive every deadline). A
//! handler that takes long to answer (a verify of a large set) is not
//! idle; a response that streams (the event streams, which send a comment
//! every 15 s) is not idle while it moves.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_stream::Stream;
use tower::ServiceExt;

/// How long a client has to send a request's headers, counted from the
/// connection's start or from the end of the previous response.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may go without a byte moving, while no handler
/// works on one of its requests, before it is closed; also the longest
/// pause within a request body.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, lets each connection finish the request it is answering
/// (idle ones close at once) and returns when all have closed. Callers that
/// cannot wait for endless responses (event streams) bound that wait.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = watch::channel(());
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionRefused
                ) => continue,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        connections.spawn(connection(stream, peer, router.clone(), stopped.clone()));
    }
    drop(listener);
    let _ = stop.send(());
    while connections.join_next().await.is_some() {}
}

/// One connection, until it ends, idles past [`IDLE_TIMEOUT`], or has shut
/// down gracefully after `stop`.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    mut stop: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = TowerToHyperService::new(PerConnection {
        router,
        peer,
        activity: activity.clone(),
    });
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, "connection closed: {e}");
                }
                return;
            }
            () = activity.idle() => {
                tracing::debug!(%peer, "connection closed: nothing moved for {} s", IDLE_TIMEOUT.as_secs());
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// When a connection last moved a byte, and how many of its requests a
/// handler is working on.
struct Activity {
    last: Mutex<Instant>,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            last: Mutex::new(Instant::now()),
            busy: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Completes once the connection is idle: no handler at work and no
    /// byte moved for [`IDLE_TIMEOUT`].
    async fn idle(&self) {
        loop {
            if self.busy.load(Ordering::Acquire) > 0 {
                // A handler's end touches the connection: look again later.
                tokio::time::sleep(IDLE_TIMEOUT).await;
                continue;
            }
            let deadline = self.last() + IDLE_TIMEOUT;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A handler at work on a request, for as long as it lives.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: &Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's socket, noting each byte that moves.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as one connection serves it: each request carries the
/// peer's address, its body must keep coming, and the connection is busy
/// while the handler works.
#[derive(Clone)]
struct PerConnection {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl<B> tower::Service<Request<B>> for PerConnection
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let body = if body.is_end_stream() {
            Body::new(body)
        } else {
            Body::from_stream(Paced {
                inner: Body::new(body).into_data_stream(),
                deadline: None,
            })
        };
        let busy = Busy::new(&self.activity);
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(Request::from_parts(parts, body)).await;
            drop(busy);
            response
        })
    }
}

/// A request body whose bytes must keep coming: a pause longer than
/// [`IDLE_TIMEOUT`] ends it with an error (the handler then refuses the
/// request), so a client cannot hold a handler by never finishing a body.
struct Paced<S> {
    inner: S,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> Stream for Paced<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                this.deadline = None;
                Poll::Ready(item.map(|r| r.map_err(io::Error::other)))
            }
            Poll::Pending => {
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(IDLE_TIMEOUT)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the request body stopped coming for {} s",
                            IDLE_TIMEOUT.as_secs()
                        ),
                    )))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}
