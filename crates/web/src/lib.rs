//! The MSC in a browser (behaviour §18): the pages of 4D's Maintenance and
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
//! Trust at the edges: every page answers only requests that name it by a
//! name it is reached at (its listen address, loopback names, its public
//! URL; 421 otherwise, against DNS rebinding, see [`PageState::with_listen_addr`]),
//! and login attempts are counted per source address (5 a minute, then 429
//! with Retry-After), each refusal logged with its source. The control API
//! that hosts merge beside the pages (`/v1/…`, `/metrics`) is not held to
//! the names: it takes only a bearer token, which no page of another site
//! can know, and its clients may name the server as they reach it.
//!
//! Invariant: no backup logic here. Every action goes through the
//! [`BackupHandle`] (backups, Stop, restores, verify, alerts) or
//! sauve-settings (reading and saving settings with the same validation as
//! `sauve settings validate`); this crate renders and checks requests.

mod assets;
mod auth;
mod format;
mod hosts;
mod layout;
mod limit;
mod pages;
mod session;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
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
    /// The names requests may give in `Host`.
    pub(crate) hosts: hosts::Hosts,
    /// Login attempts per source address.
    pub(crate) logins: Mutex<limit::Attempts>,
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
    ///
    /// Until [`PageState::with_listen_addr`] says where the pages listen,
    /// they answer only to loopback names (`localhost`, `127.0.0.1`,
    /// `[::1]`, any port): a host that serves them on another address must
    /// say so, or every request gets 421.
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
                hosts: hosts::Hosts::default(),
                logins: Mutex::default(),
            }),
        }
    }

    /// The same pages, with `change` made to how they are reached (before
    /// they serve: sessions and jobs start empty).
    fn remade(
        self,
        change: impl FnOnce(&mut bool, &mut Option<String>, &mut hosts::Hosts),
    ) -> PageState {
        let i = &self.inner;
        let (mut secure, mut origin, mut hosts) = (i.secure, i.origin.clone(), i.hosts.clone());
        change(&mut secure, &mut origin, &mut hosts);
        PageState {
            inner: Arc::new(Inner {
                handle: i.handle.clone(),
                token: i.token.clone(),
                scheduler: i.scheduler.clone(),
                sessions: Mutex::default(),
                restores: Mutex::default(),
                secure,
                origin,
                hosts,
                logins: Mutex::default(),
            }),
        }
    }

    /// The same pages as people reach them through a proxy in front, at
    /// `url` (`https://backup.example.com/`): forms must come from that
    /// origin, under `https://` session cookies are marked `Secure`, and
    /// requests naming its host (`Host: backup.example.com`) are answered.
    pub fn with_public_url(self, url: &str) -> Result<PageState, PublicUrlError> {
        let public = public_origin(url)?;
        Ok(self.remade(|secure, origin, hosts| {
            *secure = public.starts_with("https://");
            *hosts = std::mem::take(hosts).reached_at(&public);
            *origin = Some(public);
        }))
    }

    /// The same pages served on `listen` (the listener's `local_addr`, so
    /// that port 0 is resolved): they answer requests whose `Host` names
    /// that address at its port; when it is a loopback address, also
    /// `localhost`, `127.0.0.1` and `[::1]` at its port; when it is the
    /// unspecified address (`0.0.0.0`), `localhost` and any IP address at
    /// its port. Any other name (`Host: evil.example:PORT`, as a DNS
    /// rebinding page sends) gets 421 Misdirected Request, naming what is
    /// accepted, before anything else is looked at. The public URL's name
    /// ([`PageState::with_public_url`]) is accepted too.
    pub fn with_listen_addr(self, listen: SocketAddr) -> PageState {
        self.remade(|_, _, hosts| *hosts = std::mem::take(hosts).listening_on(listen))
    }

    pub(crate) fn sessions(&self) -> std::sync::MutexGuard<'_, session::Sessions> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn logins(&self) -> std::sync::MutexGuard<'_, limit::Attempts> {
        self.inner
            .logins
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

/// Only requests for a name the pages are reached at go further (see
/// [`PageState::with_listen_addr`]).
async fn only_own_hosts(State(state): State<PageState>, request: Request, next: Next) -> Response {
    match state.inner.hosts.check(request.headers(), request.uri()) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            tracing::info!(host = %refused.host, "a request for another host refused (421)");
            refused.into_response()
        }
    }
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
/// `/login/code` and `/assets/…`, each answered only for the names of
/// [`PageState::with_listen_addr`] (421 otherwise). For per-address login
/// limits, serve it with the peer's address (`ConnectInfo<SocketAddr>`,
/// as `into_make_service_with_connect_info` or `sauve_server::serve` give
/// it); without one, all attempts share one limit.
pub fn router(state: PageState) -> Router {
    use pages::*;
    Router::new()
        .route("/", get(backup::page))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/backup", post(backup::start))
        .route("/stop", post(backup::stop))
        .route("/rehearse", post(backup::rehearse))
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
        .layer(middleware::from_fn_with_state(
            state.clone(),
            only_own_hosts,
        ))
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
