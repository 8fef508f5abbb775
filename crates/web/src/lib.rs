//! The MSC in a browser (SPEC 18): the pages of 4D's Maintenance and
//! Security Center's Backup page, for `sauve run` and any host that mounts
//! [`router`]: Login, Backup (destination, last backup information, the
//! contents, the schedule, a Backup button and a live thermometer with
//! Stop), History (and a set's files with Verify), Journal, Restore,
//! Settings, and a banner for open alerts with Acknowledge.
//!
//! Pages are rendered on the server (maud, checked at compile time); a
//! small script of ours (`assets/sauve.js`) adds the live parts over the
//! engine's event stream. Every asset is embedded; every response carries a
//! strict Content-Security-Policy. Sessions are cookies (HttpOnly,
//! SameSite=Strict) with a CSRF token that every POST carries, and whose
//! Origin must be this site's.
//!
//! Invariant: no backup logic here. Every action goes through the
//! [`BackupHandle`] (backups, Stop, restores, verify, alerts) or
//! sauve-settings (reading and saving settings with the same validation as
//! `sauve settings validate`); this crate renders and checks requests.

mod assets;
mod auth;
mod format;
mod layout;
mod pages;
mod session;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use sauve_engine::{BackupHandle, SchedulerView};
use tokio::sync::watch;

pub use pages::history::render_history_for_bench;

/// The largest form the pages accept.
pub const FORM_LIMIT: usize = 64 * 1024;

/// The Content-Security-Policy of every response: our own assets only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the pages serve from.
#[derive(Clone)]
pub struct PageState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) handle: BackupHandle,
    pub(crate) token: Arc<String>,
    pub(crate) scheduler: watch::Receiver<SchedulerView>,
    pub(crate) sessions: Mutex<session::Sessions>,
    pub(crate) restores: Mutex<pages::restore::Jobs>,
    /// Served over TLS (by a proxy in front): cookies get `Secure`.
    pub(crate) secure: bool,
    /// The origin people reach the page at, when it is not the `Host` the
    /// requests name (a proxy in front).
    pub(crate) origin: Option<String>,
}

/// A public URL that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "public URL \"{0}\" is not accepted (accepted: http:// or https:// and a host, such as https://backup.example.com/)"
)]
pub struct PublicUrlError(pub String);

/// `scheme://host[:port]` of `url`, or why it cannot be the page's public
/// URL (for checking one before anything starts).
pub fn public_origin(url: &str) -> Result<String, PublicUrlError> {
    let bad = || PublicUrlError(url.to_owned());
    let (scheme, rest) = url.trim().split_once("://").ok_or_else(bad)?;
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty()
        || authority.contains('@')
        || authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

impl PageState {
    /// The pages of `handle`'s app. `token` is the server's bearer token,
    /// which also logs in; `scheduler` is the scheduler loop's view.
    pub fn new(
        handle: BackupHandle,
        token: Arc<String>,
        scheduler: watch::Receiver<SchedulerView>,
    ) -> PageState {
        PageState {
            inner: Arc::new(Inner {
                handle,
                token,
                scheduler,
                sessions: Mutex::default(),
                restores: Mutex::default(),
                secure: false,
                origin: None,
            }),
        }
    }

    /// The same pages as people reach them through a proxy in front, at
    /// `url` (`https://backup.example.com/`): forms must come from that
    /// origin, and under `https://` session cookies are marked `Secure`.
    pub fn with_public_url(self, url: &str) -> Result<PageState, PublicUrlError> {
        let origin = public_origin(url)?;
        let i = &self.inner;
        Ok(PageState {
            inner: Arc::new(Inner {
                handle: i.handle.clone(),
                token: i.token.clone(),
                scheduler: i.scheduler.clone(),
                sessions: Mutex::default(),
                restores: Mutex::default(),
                secure: origin.starts_with("https://"),
                origin: Some(origin),
            }),
        })
    }

    pub(crate) fn sessions(&self) -> std::sync::MutexGuard<'_, session::Sessions> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The security headers of every page response: the CSP, no sniffing, no
/// framing, no referrer beyond this site, and no caching unless the
/// response says otherwise (the assets do).
pub(crate) fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    secure_headers(response.headers_mut());
    response
}

/// The pages beside a host's own routes (the control API, say): `routes`
/// merged with [`router`], and unknown paths answered by [`not_found`]
/// (a page for people, JSON under `/v1/`), which replaces any fallback
/// `routes` had.
pub fn with_pages(routes: Router, state: PageState) -> Router {
    routes.merge(router(state)).fallback(not_found)
}

/// The answer to an unknown path: a 404 page, or JSON under `/v1/`, for
/// `/metrics` and for clients asking for JSON.
pub async fn not_found(request: Request) -> Response {
    pages::errors::not_found(request).await
}

/// The pages as an axum router, without a fallback (see [`with_pages`]):
/// `/`, `/login`, `/logout`, `/backup`, `/stop`, `/events`, `/parts/…`,
/// `/alerts/…`, `/history…`, `/journal`, `/restore…`, `/settings`,
/// `/login/code` and `/assets/…`.
pub fn router(state: PageState) -> Router {
    use pages::*;
    Router::new()
        .route("/", get(backup::page))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/backup", post(backup::start))
        .route("/stop", post(backup::stop))
        .route("/events", get(backup::events))
        .route("/parts/last", get(backup::last_part))
        .route("/parts/alerts", get(alerts::part))
        .route("/alerts/{id}/ack", post(alerts::acknowledge))
        .route("/history", get(history::page))
        .route("/history/{number}", get(history::set))
        .route("/history/{number}/verify", post(history::verify))
        .route("/journal", get(journal::page))
        .route("/log", get(log::page))
        .route("/restore", get(restore::page).post(restore::start))
        .route("/restore/{job}", get(restore::job))
        .route("/settings", get(settings::page).post(settings::save))
        .route("/login/code", post(login::code))
        .route("/assets/{name}", get(assets::serve))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(middleware::from_fn(headers))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_gives_its_origin_or_says_what_is_accepted() {
        assert_eq!(
            public_origin("https://Backup.Example.com/sauve/").unwrap(),
            "https://backup.example.com"
        );
        assert_eq!(
            public_origin("http://10.0.0.2:8443").unwrap(),
            "http://10.0.0.2:8443"
        );
        for bad in [
            "backup.example.com",
            "ftp://x",
            "https://",
            "https://user@x/",
            "https://a b/",
        ] {
            let e = public_origin(bad).unwrap_err();
            assert!(
                e.to_string().contains("accepted: http:// or https://"),
                "{bad}"
            );
        }
    }
}
