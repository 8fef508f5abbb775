//! Login and logout (behaviour §18): the server's token, or the password whose
//! argon2 hash is `ui.password_hash` in sauve.toml, or a one-time code from
//! `sauve ui`. A failed attempt waits a second; attempts are counted per
//! source address (see `crate::limit`: 5 a minute, then 429 with
//! Retry-After), and each refusal is logged with its source. A session is
//! a cookie (HttpOnly, SameSite=Strict, Secure under TLS) that ends after
//! 12 idle hours or at logout.

use std::net::SocketAddr;
use std::time::Duration;

use argon2::PasswordVerifier;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;
use tokio::time::Instant;

use crate::PageState;
use crate::layout::{Notice, Shell, page as shell};
use crate::limit::{Attempt, Source};
use crate::pages::app_name;
use crate::session::{clear_cookie, same, same_origin, set_cookie};

/// How long a failed login waits before answering.
pub(crate) const FAILED_DELAY: Duration = Duration::from_secs(1);

/// `?next=&code=`.
#[derive(Deserialize, Default)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    code: Option<String>,
}

/// The form.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    secret: String,
    #[serde(default)]
    next: String,
}

/// Only paths of this site come back after a login: `next` must parse as a
/// path (and query) that starts with one `/`, made of printable ASCII alone.
/// Browsers drop tabs and line feeds from a URL and read a backslash as `/`, so
/// `/%09/evil.example` would become `//evil.example`, another site: any
/// byte outside printable ASCII, and any backslash, sends the browser to
/// `/` instead.
fn local(next: Option<&str>) -> &str {
    next.filter(|n| {
        n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
            && n.parse::<axum::http::uri::PathAndQuery>()
                .is_ok_and(|p| p.path().starts_with('/') && !p.path().starts_with("//"))
    })
    .unwrap_or("/")
}

fn login_page(
    state: &PageState,
    next: &str,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let app = app_name(state);
    let zone = state.inner.handle.clock().zone();
    let body = html! {
        div class="card login" {
            p { "Log in with the server's token (in " code { "APP/Logs/sauve-server.json" } "), or the page's password if " code { "ui.password_hash" } " is set in sauve.toml." }
            p class="small muted" { "On the server, " code { "sauve ui" } " prints a link that logs you in once." }
            form method="post" action="/login" {
                input type="hidden" name="next" value=(next);
                div class="field" {
                    label for="secret" { "Token or password" }
                    input type="password" id="secret" name="secret" autocomplete="current-password" required autofocus;
                }
                div class="actions" { button type="submit" class="primary" { "Log in" } }
            }
        }
    };
    let markup: Markup = shell(
        Shell {
            title: "Log in",
            tab: None,
            csrf: None,
            app: &app,
            alerts: &[],
            notice,
            zone: &zone,
        },
        body,
    );
    (status, Html(markup.into_string())).into_response()
}

/// A new session: its cookie, and a page that goes on to `next` (a page of
/// this site, so that the SameSite=Strict cookie goes with the next
/// request even when the link came from elsewhere).
fn logged_in(state: &PageState, next: &str) -> Response {
    let Some((id, _)) = state.sessions().create(Instant::now()) else {
        return crate::pages::errors::page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Log in",
            "No random numbers are available for a session; try again.",
            "/login",
        );
    };
    let app = app_name(state);
    let zone = state.inner.handle.clock().zone();
    let markup = shell(
        Shell {
            title: "Logged in",
            tab: None,
            csrf: None,
            app: &app,
            alerts: &[],
            notice: None,
            zone: &zone,
        },
        html! {
            meta http-equiv="refresh" content={"0; url=" (next)};
            p class="card" { "Logged in. " a href=(next) { "Continue" } }
        },
    );
    (
        [(header::SET_COOKIE, set_cookie(&id, state.inner.secure))],
        Html(markup.into_string()),
    )
        .into_response()
}

/// The peer's address, when the server passes it (`ConnectInfo`).
pub(crate) type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

fn peer_address(peer: Peer) -> Option<SocketAddr> {
    peer.map(|Extension(ConnectInfo(addr))| addr)
}

/// Counts a login attempt from `peer`; or, when its source has used up
/// its attempts, logs the refusal with the source and says how long until
/// the next is heard.
fn count_attempt(state: &PageState, peer: Option<SocketAddr>) -> Result<Attempt, Duration> {
    let source = Source::of(peer);
    state.logins().begin(source, Instant::now()).inspect_err(|wait| {
        tracing::warn!(
            source = %source,
            peer = ?peer,
            "a login from {source} refused without checking it: {} failed attempts within {} s; the next is accepted in {} s",
            crate::limit::MAX_FAILURES,
            crate::limit::WINDOW.as_secs(),
            wait.as_secs()
        );
    })
}

/// The answer to a login refused by [`count_attempt`]: 429, with
/// Retry-After.
fn too_many(state: &PageState, next: &str, wait: Duration) -> Response {
    let secs = wait.as_secs();
    let mut page = login_page(
        state,
        next,
        Some(Notice::Error(format!(
            "Too many failed logins from your address. Try again in {secs} seconds."
        ))),
        StatusCode::TOO_MANY_REQUESTS,
    );
    page.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    page
}

/// Logs a failed login with its source, then waits [`FAILED_DELAY`].
async fn failed(what: &str, peer: Option<SocketAddr>) {
    let source = Source::of(peer);
    tracing::warn!(source = %source, peer = ?peer, "a failed login to the page from {source}: {what}");
    tokio::time::sleep(FAILED_DELAY).await;
}

/// `GET /login`: the form, or a one-time code from `sauve ui`.
pub(crate) async fn page(
    State(state): State<PageState>,
    peer: Peer,
    Query(q): Query<LoginQuery>,
) -> Response {
    let next = local(q.next.as_deref()).to_owned();
    if let Some(code) = q.code {
        let peer = peer_address(peer);
        let attempt = match count_attempt(&state, peer) {
            Ok(a) => a,
            Err(wait) => return too_many(&state, &next, wait),
        };
        if state.sessions().take_code(&code, Instant::now()) {
            state.logins().succeeded(attempt);
            return logged_in(&state, &next);
        }
        failed("a used or expired login link", peer).await;
        return login_page(
            &state,
            &next,
            Some(Notice::Error(
                "This login link was used already or is older than a minute. Run `sauve ui` again for a new one, or log in below.".to_owned(),
            )),
            StatusCode::UNAUTHORIZED,
        );
    }
    login_page(&state, &next, None, StatusCode::OK)
}

/// Whether `secret` is the token or the page's password.
async fn accepted(state: &PageState, secret: &str) -> bool {
    if !secret.is_empty() && same(secret, &state.inner.token) {
        return true;
    }
    let Ok((own, _)) = state.inner.handle.config().own_settings().await else {
        return false;
    };
    let Some(hash) = own.ui.password_hash.clone() else {
        return false;
    };
    let secret = secret.to_owned();
    // argon2 takes tens of milliseconds on purpose: off the async threads.
    tokio::task::spawn_blocking(move || {
        argon2::password_hash::PasswordHash::new(&hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(secret.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// `POST /login`.
pub(crate) async fn submit(
    State(state): State<PageState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = local(Some(&form.next)).to_owned();
    if !same_origin(&headers, state.inner.secure, state.inner.origin.as_deref()) {
        return login_page(
            &state,
            &next,
            Some(Notice::Error(
                "This login did not come from this page (accepted: the form of this site)."
                    .to_owned(),
            )),
            StatusCode::FORBIDDEN,
        );
    }
    let peer = peer_address(peer);
    let attempt = match count_attempt(&state, peer) {
        Ok(a) => a,
        Err(wait) => return too_many(&state, &next, wait),
    };
    if accepted(&state, form.secret.trim()).await {
        state.logins().succeeded(attempt);
        return logged_in(&state, &next);
    }
    failed("a wrong token or password", peer).await;
    login_page(
        &state,
        &next,
        Some(Notice::Error("Wrong token or password.".to_owned())),
        StatusCode::UNAUTHORIZED,
    )
}

/// `POST /logout`: the session ends here and in the browser.
pub(crate) async fn logout(
    State(state): State<PageState>,
    headers: HeaderMap,
    Form(form): Form<crate::pages::backup::CsrfForm>,
) -> Response {
    let viewer = match crate::auth::check_post(&state, &headers, Some(&form.csrf)) {
        Ok(v) => v,
        // No session: nothing to end.
        Err(crate::auth::Refused::NotLoggedIn) => return Redirect::to("/login").into_response(),
        Err(r) => return r.into_response(),
    };
    state.sessions().remove(&viewer.id);
    (
        [(header::SET_COOKIE, clear_cookie(state.inner.secure))],
        Redirect::to("/login"),
    )
        .into_response()
}

/// `POST /login/code` with the server's bearer token: a one-time login
/// code for `sauve ui` (`{"code", "path"}`; the link is `<url><path>`).
pub(crate) async fn code(State(state): State<PageState>, headers: HeaderMap) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Cookies never authorise this: only the token.
    if given.is_empty() || !same(given, &state.inner.token) {
        return crate::pages::errors::json(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (accepted: Authorization: Bearer <token from APP/Logs/sauve-server.json>)",
        );
    }
    match state.sessions().new_code(Instant::now()) {
        Some(code) => axum::Json(serde_json::json!({
            "code": code,
            "path": format!("/login?code={code}"),
            "valid_seconds": crate::session::CODE_LIFE.as_secs(),
        }))
        .into_response(),
        None => crate::pages::errors::json(
            StatusCode::SERVICE_UNAVAILABLE,
            "no random numbers are available; try again",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::local;

    #[test]
    fn only_a_path_of_this_site_comes_back_after_a_login() {
        for ok in ["/", "/history", "/log?page=2&per=50", "/a%2F/b"] {
            assert_eq!(local(Some(ok)), ok);
        }
        for off in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "evil.example",
            "/ /evil.example",
            "/\u{a0}/evil.example",
            "",
        ] {
            assert_eq!(local(Some(off)), "/", "{off:?}");
        }
        assert_eq!(local(None), "/");
    }
}
