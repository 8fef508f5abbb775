//! Error answers: JSON for the script and the API's paths, a page for
//! people. None shows a stack trace or a secret: the engine's messages name
//! files, values and statuses, never tokens. Below every page and the
//! session checks (`auth.rs`), which answer with it.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::html;

use crate::layout::{Shell, page as shell};

/// Whether the request comes from the page's script (it asks for JSON or
/// a fragment), which wants a status, not a redirect.
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

/// A JSON error `{"error": message}`.
pub(crate) fn json(code: StatusCode, message: &str) -> Response {
    (code, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// A page of its own for an error, with a way back.
pub(crate) fn page(code: StatusCode, title: &str, message: &str, back: &str) -> Response {
    let zone = jiff::tz::TimeZone::UTC;
    let markup = shell(
        Shell {
            title,
            tab: None,
            csrf: None,
            app: "",
            alerts: &[],
            notice: None,
            zone: &zone,
        },
        html! {
            div class="card" {
                p { (message) }
                p class="small muted" { "HTTP " (code.as_u16()) }
                p { a class="button" href=(back) { "Back" } }
            }
        },
    );
    (code, Html(markup.into_string())).into_response()
}

/// Unknown paths: a 404 page, or JSON for the API's paths and for clients
/// that ask for JSON. Carries the pages' security headers itself, since a
/// host may mount it outside the pages' router.
pub(crate) async fn not_found(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let json_wanted =
        path.starts_with("/v1/") || path == "/metrics" || wants_json(request.headers());
    let mut response = if json_wanted {
        json(
            StatusCode::NOT_FOUND,
            "no such page or endpoint (accepted: the pages /, /history, /journal, /restore, /settings; the API under /v1/)",
        )
    } else {
        page(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is no such page here. The pages are Backup, History, Journal, Restore and Settings.",
            "/",
        )
    };
    crate::secure_headers(response.headers_mut());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
