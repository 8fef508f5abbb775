//! The alert banner's parts (behaviour §18): the fragment the script reloads,
//! and Acknowledge, which clears an alert for every viewer.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::PageState;
use crate::auth::{Viewer, check_post};
use crate::layout::alert_banner;
use crate::pages::answer;
use crate::pages::backup::CsrfForm;

/// `GET /parts/alerts`: the banner's content.
pub(crate) async fn part(State(state): State<PageState>, viewer: Viewer) -> Response {
    let h = &state.inner.handle;
    let alerts = h.alerts().open().await.unwrap_or_default();
    Html(alert_banner(&alerts, &viewer.csrf, &h.clock().zone()).into_string()).into_response()
}

/// `POST /alerts/{id}/ack`.
pub(crate) async fn acknowledge(
    State(state): State<PageState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = check_post(&state, &headers, Some(&form.csrf)) {
        return r.into_response();
    }
    let Ok(id) = id.parse::<u64>() else {
        return answer(
            &headers,
            StatusCode::BAD_REQUEST,
            &format!("\"{id}\" is not an alert number (accepted: the number the banner shows)"),
            "/",
        );
    };
    match state.inner.handle.alerts().acknowledge(Some(id)).await {
        Ok(0) => answer(
            &headers,
            StatusCode::NOT_FOUND,
            &format!("Alert {id} is not open (it was acknowledged already, or never raised)."),
            "/",
        ),
        Ok(_) => answer(
            &headers,
            StatusCode::OK,
            &format!("Alert {id} acknowledged."),
            "/",
        ),
        Err(e) => answer(
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            &e.to_string(),
            "/",
        ),
    }
}
