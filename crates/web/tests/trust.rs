//! Trust at the edges of the pages (issue 27): they answer only to the
//! names they are reached at (DNS rebinding gets 421 before anything
//! else), and login attempts are limited per source address.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::get;
use sauve_engine::{BackupHandle, Engine, EngineOptions, SchedulerView};
use tower::ServiceExt;

const TOKEN: &str = "the-server-token-0123456789abcdef";

struct Site {
    _dir: tempfile::TempDir,
    handle: BackupHandle,
    router: Router,
}

/// The pages, made by `build` from a fresh `PageState`, beside a stand-in
/// for the control API (`/v1/ping`).
fn site(build: impl FnOnce(sauve_web::PageState) -> sauve_web::PageState) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("App");
    std::fs::create_dir_all(app.join("Project")).unwrap();
    std::fs::create_dir_all(app.join("Data")).unwrap();
    std::fs::write(app.join("Project/App.4DProject"), "{}\n").unwrap();
    std::fs::write(app.join("Data/App.4DD"), b"data").unwrap();
    let layout = sauve_settings::AppLayout::discover(&app).unwrap();
    let handle = Engine::start(layout, EngineOptions::default()).unwrap();
    let (_, view) = tokio::sync::watch::channel(SchedulerView::default());
    let state = build(sauve_web::PageState::new(
        handle.clone(),
        Arc::new(TOKEN.to_owned()),
        view,
    ));
    let api = Router::new().route("/v1/ping", get(|| async { "pong" }));
    Site {
        _dir: dir,
        handle,
        router: sauve_web::with_pages(api, state),
    }
}

fn listen() -> SocketAddr {
    "127.0.0.1:7070".parse().unwrap()
}

/// A login form posted with `host` and the Origin that goes with it, from
/// `peer` when given.
fn login(host: &str, secret: &str, peer: Option<&str>) -> Request<Body> {
    let mut r = Request::post("/login")
        .header(header::HOST, host)
        .header(header::ORIGIN, format!("http://{host}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("secret={secret}&next=%2F")))
        .unwrap();
    if let Some(p) = peer {
        let addr: SocketAddr = p.parse().unwrap();
        r.extensions_mut().insert(ConnectInfo(addr));
    }
    r
}

fn get_at(host: &str, path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::HOST, host)
        .body(Body::empty())
        .unwrap()
}

async fn text(r: Response<Body>) -> (StatusCode, String) {
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

impl Site {
    async fn send(&self, r: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(r).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_through_a_rebinding_name_gets_421_and_no_session() {
    let s = site(|p| p.with_listen_addr(listen()));
    // A DNS rebinding page: its own name, pointed at this server, with an
    // Origin that matches it.
    let r = s.send(login("evil.example:7070", TOKEN, None)).await;
    assert!(!r.headers().contains_key(header::SET_COOKIE));
    let (status, body) = text(r).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{body}");
    assert!(body.contains("Host \"evil.example:7070\""), "{body}");
    assert!(
        body.contains("accepted: 127.0.0.1:7070, [::1]:7070, localhost:7070"),
        "{body}"
    );
    // Before anything else: no redirect to the login page, no asset.
    for path in [
        "/",
        "/login",
        "/history",
        "/assets/nothing.css",
        "/parts/last",
    ] {
        let (status, _) = text(s.send(get_at("evil.example:7070", path)).await).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{path}");
    }
    // The names the server is reached at log in.
    for host in ["127.0.0.1:7070", "localhost:7070", "[::1]:7070"] {
        let r = s.send(login(host, TOKEN, None)).await;
        assert_eq!(r.status(), StatusCode::OK, "{host}");
        assert!(r.headers().contains_key(header::SET_COOKIE), "{host}");
    }
    // Another port of loopback is another server.
    let r = s.send(login("localhost:7071", TOKEN, None)).await;
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    // The bearer-token API beside the pages is not held to the names.
    let (status, body) = text(s.send(get_at("backup-host:7070", "/v1/ping")).await).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "pong"));
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_listen_address_the_pages_answer_to_loopback_names_only() {
    let s = site(|p| p);
    let r = s.send(login("evil.example:7070", TOKEN, None)).await;
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    let r = s.send(login("10.0.0.2:7070", TOKEN, None)).await;
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    let (status, body) = text(s.send(get_at("evil.example", "/")).await).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    assert!(
        body.contains("accepted: localhost, 127.0.0.1 or [::1] at any port"),
        "{body}"
    );
    let r = s.send(login("127.0.0.1:41234", TOKEN, None)).await;
    assert_eq!(r.status(), StatusCode::OK);
    s.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_urls_name_is_answered_beside_the_listen_address_in_either_order() {
    for s in [
        site(|p| {
            p.with_listen_addr(listen())
                .with_public_url("http://backup.example.com:8080/")
                .unwrap()
        }),
        site(|p| {
            p.with_public_url("http://backup.example.com:8080/")
                .unwrap()
                .with_listen_addr(listen())
        }),
    ] {
        let r = s.send(login("backup.example.com:8080", TOKEN, None)).await;
        assert_eq!(r.status(), StatusCode::OK);
        // A proxy that names the upstream it passes to.
        let (status, _) = text(s.send(get_at("127.0.0.1:7070", "/login")).await).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = text(s.send(get_at("backup.example.com", "/login")).await).await;
        assert_eq!(
            status,
            StatusCode::MISDIRECTED_REQUEST,
            "port 80 is not 8080"
        );
        let (status, _) = text(s.send(get_at("evil.example:8080", "/login")).await).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
        s.handle.shutdown().await;
    }
}

/// Sends `n` wrong logins at once from `peer`: their statuses and the
/// Retry-After of each 429.
async fn flood(s: &Arc<Site>, n: usize, peer: &str) -> Vec<(StatusCode, Option<u64>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let s = s.clone();
        let peer = peer.to_owned();
        tasks.spawn(async move {
            let r = s
                .send(login("127.0.0.1:7070", &format!("wrong-{i}"), Some(&peer)))
                .await;
            let retry = r
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let (status, body) = text(r).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert!(body.contains("Too many failed logins"), "{body}");
            }
            (status, retry)
        });
    }
    tasks.join_all().await
}

#[tokio::test(start_paused = true)]
async fn login_attempts_are_limited_per_source_address_even_in_parallel() {
    let s = Arc::new(site(|p| p.with_listen_addr(listen())));
    let me = "203.0.113.5:40000";
    let answers = flood(&s, 40, me).await;
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    let checked = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(
        checked, 5,
        "five attempts a minute are checked: {answers:?}"
    );
    assert_eq!(refused.len(), 35, "{answers:?}");
    let wait = refused
        .iter()
        .map(|(_, retry)| retry.expect("every 429 says when to retry"))
        .max()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // Even the right token waits, from that address (another port of it
    // too); another address is not held back.
    let r = s
        .send(login("127.0.0.1:7070", TOKEN, Some("203.0.113.5:40001")))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!r.headers().contains_key(header::SET_COOKIE));
    let r = s
        .send(login("127.0.0.1:7070", TOKEN, Some("203.0.113.6:40000")))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Once Retry-After has passed, the address is heard again.
    let r = s.send(login("127.0.0.1:7070", TOKEN, Some(me))).await;
    let retry: u64 = r.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::advance(Duration::from_secs(retry)).await;
    let r = s.send(login("127.0.0.1:7070", TOKEN, Some(me))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key(header::SET_COOKIE));
    // A one-time login link counts as an attempt too.
    let links = (0..6).map(|i| {
        let mut r = get_at("127.0.0.1:7070", &format!("/login?code=forged{i}"));
        r.extensions_mut()
            .insert(ConnectInfo("198.51.100.7:1".parse::<SocketAddr>().unwrap()));
        r
    });
    let mut statuses = Vec::new();
    for r in links {
        statuses.push(s.send(r).await.status());
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    s.handle.clone().shutdown().await;
}
