//! The HTTP target: raw bytes read as an HTTP/1.1 request (as hyper reads
//! them off the socket), then answered by the whole router `sauve run`
//! serves (the JSON API, `/metrics` and the pages), on one engine started
//! once for the process over an app of its own.
//!
//! Invariants: no request panics a handler or gets a 5xx (an engine error
//! is a 4xx or a refusal, never "internal"); the engine still answers
//! afterwards.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

/// The bearer token of the fuzzed server: the committed corpus carries it,
/// so that the fuzzer reaches past the authorisation.
pub const HTTP_TOKEN: &str = "sauve-fuzz-token-0123456789abcdef";

struct Served {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _app: tempfile::TempDir,
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("sauve-fuzz-http-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot make the fuzzed app: {e}"));
        let app = dir.path().join("App");
        for (path, text) in [
            ("Project/App.4DProject", "{}\n"),
            ("Data/App.4DD", "data\n"),
        ] {
            let path = app.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .unwrap_or_else(|e| panic!("cannot make {}: {e}", parent.display()));
            }
            std::fs::write(&path, text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("no runtime: {e}"));
        let layout = sauve_settings::AppLayout::discover(&app)
            .unwrap_or_else(|e| panic!("the fuzzed app has no layout: {e}"));
        let handle = sauve_engine::Engine::start(layout, sauve_engine::EngineOptions::default())
            .unwrap_or_else(|e| panic!("the engine did not start: {e}"));
        let token = Arc::new(HTTP_TOKEN.to_owned());
        let (_, view) = tokio::sync::watch::channel(sauve_engine::SchedulerView::default());
        let api = sauve_server::router(sauve_server::ApiState {
            handle: handle.clone(),
            token: token.clone(),
            scheduler: view.clone(),
        });
        let pages = sauve_web::PageState::new(handle, token, view);
        Served {
            runtime,
            router: sauve_web::with_pages(api, pages),
            _app: dir,
        }
    })
}

/// The request the bytes hold, if they hold one (what hyper would pass on).
fn request(data: &[u8]) -> Option<Request<Body>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = parsed.parse(data).ok()? else {
        return None;
    };
    let method = Method::from_bytes(parsed.method?.as_bytes()).ok()?;
    let mut builder = Request::builder().method(method).uri(parsed.path?);
    for h in parsed.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    builder.body(Body::from(data[head..].to_vec())).ok()
}

/// One request through the router.
pub fn http(data: &[u8]) {
    let Some(req) = request(data) else {
        return;
    };
    let shown = format!("{} {}", req.method(), req.uri());
    let served = served();
    let status = served.runtime.block_on(async {
        let answer = served.router.clone().oneshot(req).await;
        match answer {
            Ok(a) => {
                let status = a.status();
                // Read the whole answer, as a client would (an event
                // stream, which never ends, is cut after 50 ms).
                let _ = tokio::time::timeout(
                    std::time::Duration::from_millis(50),
                    axum::body::to_bytes(a.into_body(), 1 << 24),
                )
                .await;
                status
            }
            Err(never) => match never {},
        }
    });
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{shown} got {status}"
    );
}
