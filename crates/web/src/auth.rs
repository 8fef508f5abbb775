//! Who may see a page and who may change something (behaviour §18): every page
//! but Login needs a session; every POST also needs the session's CSRF
//! token (a form field, or the header the page's script sends) and an
//! Origin that is this site's.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use tokio::time::Instant;

use crate::PageState;
use crate::pages::errors::{self, wants_json};
use crate::session::{CSRF_HEADER, cookie, same, same_origin};

/// A logged-in browser.
#[derive(Clone, Debug)]
pub(crate) struct Viewer {
    /// The session id (the cookie's value).
    pub(crate) id: String,
    /// The session's CSRF token, put in every form.
    pub(crate) csrf: String,
}

fn is_fragment(path: &str) -> bool {
    path.starts_with("/parts/") || path == "/events"
}

impl FromRequestParts<PageState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &PageState) -> Result<Viewer, Response> {
        let found = cookie(&parts.headers).and_then(|id| {
            let s = state.sessions().touch(&id, Instant::now())?;
            Some(Viewer { id, csrf: s.csrf })
        });
        if let Some(v) = found {
            return Ok(v);
        }
        let path = parts.uri.path();
        if parts.method != axum::http::Method::GET
            || wants_json(&parts.headers)
            || is_fragment(path)
        {
            return Err(errors::json(
                StatusCode::UNAUTHORIZED,
                "not logged in, or the session expired (accepted: log in at /login)",
            ));
        }
        // Only local paths come back after the login.
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| p.starts_with('/') && !p.starts_with("//"))
            .unwrap_or("/");
        let to = if next == "/" {
            "/login".to_owned()
        } else {
            format!("/login?next={}", crate::format::query_escape(next))
        };
        Err(Redirect::to(&to).into_response())
    }
}

/// Why a POST was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No session.
    NotLoggedIn,
    /// The CSRF token is missing or wrong.
    Csrf,
    /// The Origin (or Referer) is not this site.
    Origin,
}

impl Refused {
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refused::NotLoggedIn => {
                "not logged in, or the session expired (accepted: log in at /login)"
            }
            Refused::Csrf => {
                "the form's security token is missing or out of date (accepted: a form of this page; reload it and try again)"
            }
            Refused::Origin => {
                "the request does not come from this page (accepted: forms of this site only)"
            }
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let code = match self {
            Refused::NotLoggedIn => StatusCode::UNAUTHORIZED,
            Refused::Csrf | Refused::Origin => StatusCode::FORBIDDEN,
        };
        errors::json(code, self.message())
    }
}

/// The checks of every POST: a session, this site's Origin, and the
/// session's CSRF token in the form (`csrf`) or in the header.
pub(crate) fn check_post(
    state: &PageState,
    headers: &HeaderMap,
    form_csrf: Option<&str>,
) -> Result<Viewer, Refused> {
    let id = cookie(headers).ok_or(Refused::NotLoggedIn)?;
    let session = state
        .sessions()
        .touch(&id, Instant::now())
        .ok_or(Refused::NotLoggedIn)?;
    if !same_origin(headers, state.inner.secure, state.inner.origin.as_deref()) {
        return Err(Refused::Origin);
    }
    let given = form_csrf
        .filter(|c| !c.is_empty())
        .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
        .unwrap_or("");
    if given.is_empty() || !same(given, &session.csrf) {
        return Err(Refused::Csrf);
    }
    Ok(Viewer {
        id,
        csrf: session.csrf,
    })
}
