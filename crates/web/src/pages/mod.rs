//! The pages, one module each, and what they share: the shell filled in
//! for a logged-in viewer, and answers to forms (JSON for the page's
//! script, a redirect or a page without it).

pub(crate) mod alerts;
pub(crate) mod backup;
pub(crate) mod errors;
pub(crate) mod history;
pub(crate) mod journal;
pub(crate) mod log;
pub(crate) mod login;
pub(crate) mod restore;
pub(crate) mod settings;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::Markup;

use crate::PageState;
use crate::auth::Viewer;
use crate::layout::{Notice, Shell, Tab, page};
use crate::pages::errors::wants_json;

/// The app's folder name, for the header.
pub(crate) fn app_name(state: &PageState) -> String {
    let app = state.inner.handle.app();
    app.file_name().map_or_else(
        || app.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A logged-in page: the shell (with the open alerts) around `body`.
pub(crate) async fn render(
    state: &PageState,
    viewer: &Viewer,
    title: &str,
    tab: Tab,
    notice: Option<Notice>,
    body: Markup,
) -> Response {
    let alerts = state.inner.handle.alerts().open().await.unwrap_or_default();
    let zone = state.inner.handle.clock().zone();
    let app = app_name(state);
    let markup = page(
        Shell {
            title,
            tab: Some(tab),
            csrf: Some(&viewer.csrf),
            app: &app,
            alerts: &alerts,
            notice,
            zone: &zone,
        },
        body,
    );
    Html(markup.into_string()).into_response()
}

/// This app's history, or a page saying why it cannot be read (titled
/// `title`, with a way back to `back`).
pub(crate) async fn history_or_page(
    state: &PageState,
    title: &str,
    back: &str,
) -> Result<Vec<sauve_history::HistoryEntry>, Response> {
    state.inner.handle.records().history().await.map_err(|e| {
        errors::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            title,
            &format!("The history cannot be read: {e}"),
            back,
        )
    })
}

/// The answer to a form: for the page's script, JSON `{"message"}` with
/// `code`; without it, a redirect to `back` when it went well, else the
/// message as a page of its own with a link back.
pub(crate) fn answer(headers: &HeaderMap, code: StatusCode, message: &str, back: &str) -> Response {
    if wants_json(headers) {
        return (code, axum::Json(serde_json::json!({ "message": message }))).into_response();
    }
    if code.is_success() {
        return Redirect::to(back).into_response();
    }
    errors::page(code, "Not done", message, back)
}
