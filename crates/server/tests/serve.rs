//! `sauve_server::serve`, the accept loop of `sauve run` (issue 27): slow
//! headers and idle connections are cut, work in progress is not, handlers
//! see the peer's address, and shutdown closes idle connections at once.
//! Real loopback sockets on paused tokio time: every deadline passes
//! without waiting for it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// How long a test waits for the server to close a connection before it
/// calls the connection held (paused time: this costs nothing).
const GUARD: Duration = Duration::from_secs(600);

fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/who",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(90)).await;
                "done"
            }),
        )
        .route(
            "/stall",
            get(|| async {
                Body::from_stream(tokio_stream::pending::<Result<Bytes, std::io::Error>>())
            }),
        )
        .route(
            "/drip",
            get(|| async {
                let (ticks, stream) = tokio::sync::mpsc::channel(4);
                tokio::spawn(async move {
                    for _ in 0..4 {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        let tick = Ok::<_, std::io::Error>(Bytes::from_static(b"tick\n"));
                        if ticks.send(tick).await.is_err() {
                            return;
                        }
                    }
                });
                Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(stream))
            }),
        )
        .route("/echo", post(|body: String| async move { body }))
}

struct Served {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn serve() -> Served {
    // Paused time jumps to the next timer whenever the runtime waits, even
    // while a socket's bytes are on their way: a timer a second away keeps
    // each jump within a second, so the times measured here are right to
    // a second.
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sauve_server::serve(listener, routes(), async {
        let _ = stopped.await;
    }));
    Served { addr, stop, task }
}

/// Reads until `needle` has arrived: all read so far.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = tokio::time::timeout(GUARD, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!("{needle:?} did not come: {}", String::from_utf8_lossy(&got))
            })
            .unwrap();
        assert!(
            n > 0,
            "closed before {needle:?}: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the server closes the connection: what came, and how long
/// it took from the call.
async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was held for {GUARD:?}: {}",
        String::from_utf8_lossy(&got)
    );
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

#[tokio::test(start_paused = true)]
async fn request_headers_must_arrive_within_ten_seconds_and_the_next_request_too() {
    let s = serve().await;
    // Slow headers: the request never ends.
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        .await
        .unwrap();
    let (_, took) = until_closed(&mut slow).await;
    assert!((10..12).contains(&secs(took)), "closed after {took:?}");
    // A kept-alive connection waits as long for its next request.
    let mut kept = TcpStream::connect(s.addr).await.unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_until(&mut kept, "\r\n\r\nok").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_, took) = until_closed(&mut kept).await;
    assert!((10..12).contains(&secs(took)), "closed after {took:?}");
    // A connection that says nothing at all.
    let mut mute = TcpStream::connect(s.addr).await.unwrap();
    let (_, took) = until_closed(&mut mute).await;
    assert!((10..12).contains(&secs(took)), "closed after {took:?}");
    let _ = s.stop.send(());
    s.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_connection_where_nothing_moves_for_a_minute_is_closed() {
    let s = serve().await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_until(&mut c, "\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_, took) = until_closed(&mut c).await;
    assert!((59..62).contains(&secs(took)), "closed after {took:?}");
    // A request body that stops coming ends its request, then the
    // connection.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n12345")
        .await
        .unwrap();
    let (answer, took) = until_closed(&mut c).await;
    assert!(!answer.contains("12345"), "{answer}");
    assert!(
        (59..125).contains(&secs(took)),
        "closed after {took:?}: {answer}"
    );
    let _ = s.stop.send(());
    s.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_handler_at_work_and_a_response_that_moves_are_never_idle() {
    let s = serve().await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, took) = until_closed(&mut c).await;
    assert!(answer.ends_with("\r\n\r\ndone"), "{answer}");
    assert!((90..92).contains(&secs(took)), "{took:?}");
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /drip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, took) = until_closed(&mut c).await;
    assert_eq!(answer.matches("tick").count(), 4, "{answer}");
    assert!((120..122).contains(&secs(took)), "{took:?}");
    let _ = s.stop.send(());
    s.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn handlers_see_the_peers_address_and_shutdown_closes_idle_connections_at_once() {
    let s = serve().await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /who HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let me = c.local_addr().unwrap().to_string();
    let answer = read_until(&mut c, &me).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    // Let the server accept it before it stops.
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut idle, "\r\n\r\nok").await;
    let start = Instant::now();
    let _ = s.stop.send(());
    s.task.await.unwrap();
    let (_, _) = until_closed(&mut c).await;
    let (_, _) = until_closed(&mut idle).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(
        TcpStream::connect(s.addr).await.is_err(),
        "no longer listening"
    );
}
