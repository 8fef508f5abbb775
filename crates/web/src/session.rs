//! Who is logged in (behaviour §18): sessions kept in memory, their CSRF tokens,
//! the one-time login codes `sauve ui` asks for, and the checks every POST
//! passes (the CSRF token, the Origin).

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "sauve_session";
/// A session unused this long is over (behaviour §18: 12 h idle).
pub(crate) const IDLE: Duration = Duration::from_secs(12 * 3600);
/// A one-time login code is good this long (behaviour §18: 60 s).
pub(crate) const CODE_LIFE: Duration = Duration::from_secs(60);
/// The header the page's script sends the CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// 32 random bytes in hex: session ids, CSRF tokens, login codes.
pub(crate) fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

pub(crate) fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// One logged-in browser.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// Sent with every POST.
    pub(crate) csrf: String,
    last_seen: Instant,
}

/// Sessions and login codes.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    sessions: HashMap<String, Session>,
    codes: HashMap<String, Instant>,
}

impl Sessions {
    /// A new session: its id (the cookie) and its CSRF token.
    pub(crate) fn create(&mut self, now: Instant) -> Option<(String, Session)> {
        self.sessions
            .retain(|_, s| now.duration_since(s.last_seen) < IDLE);
        let id = random_token()?;
        let s = Session {
            csrf: random_token()?,
            last_seen: now,
        };
        self.sessions.insert(id.clone(), s.clone());
        Some((id, s))
    }

    /// The session `id`, if it exists and was used within [`IDLE`]; its use
    /// now keeps it alive.
    pub(crate) fn touch(&mut self, id: &str, now: Instant) -> Option<Session> {
        let s = self.sessions.get_mut(id)?;
        if now.duration_since(s.last_seen) >= IDLE {
            self.sessions.remove(id);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    /// Logs out.
    pub(crate) fn remove(&mut self, id: &str) {
        self.sessions.remove(id);
    }

    /// A fresh single-use login code.
    pub(crate) fn new_code(&mut self, now: Instant) -> Option<String> {
        self.codes
            .retain(|_, made| now.duration_since(*made) < CODE_LIFE);
        let code = random_token()?;
        self.codes.insert(code.clone(), now);
        Some(code)
    }

    /// Uses up `code`: whether it was valid (made within [`CODE_LIFE`],
    /// not used before).
    pub(crate) fn take_code(&mut self, code: &str, now: Instant) -> bool {
        match self.codes.remove(code) {
            Some(made) => now.duration_since(made) < CODE_LIFE,
            None => false,
        }
    }
}

/// The session id the request's cookie carries.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` value of a session: HttpOnly, SameSite=Strict, Secure
/// when served over TLS.
pub(crate) fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session in the browser.
pub(crate) fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether a POST comes from this site: its `Origin` (or, without one, its
/// `Referer`) is `fixed` when the site has a public URL, else
/// `http[s]://<Host>`.
pub(crate) fn same_origin(headers: &HeaderMap, secure: bool, fixed: Option<&str>) -> bool {
    let origin = match fixed {
        Some(o) => o.to_owned(),
        None => {
            let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
                return false;
            };
            format!("{}://{host}", if secure { "https" } else { "http" })
        }
    };
    if let Some(o) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        return o == origin;
    }
    headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .is_some_and(|r| r == origin || r.starts_with(&format!("{origin}/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sessions_expire_after_twelve_idle_hours_and_codes_after_a_minute_once() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let (id, session) = s.create(t0).unwrap();
        assert_eq!(session.csrf.len(), 64);
        assert!(s.touch(&id, t0 + Duration::from_secs(11 * 3600)).is_some());
        // Used at 11 h: alive until 23 h.
        assert!(s.touch(&id, t0 + Duration::from_secs(22 * 3600)).is_some());
        assert!(s.touch(&id, t0 + Duration::from_secs(35 * 3600)).is_none());
        assert!(s.touch("nope", t0).is_none());
        let code = s.new_code(t0).unwrap();
        assert!(s.take_code(&code, t0 + Duration::from_secs(59)));
        assert!(
            !s.take_code(&code, t0 + Duration::from_secs(59)),
            "single use"
        );
        let late = s.new_code(t0).unwrap();
        assert!(!s.take_code(&late, t0 + Duration::from_secs(61)));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_the_origin_must_match_the_host() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; sauve_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h).as_deref(), Some("abc"));
        h.insert(header::HOST, "127.0.0.1:7070".parse().unwrap());
        h.insert(header::ORIGIN, "http://127.0.0.1:7070".parse().unwrap());
        assert!(same_origin(&h, false, None));
        assert!(!same_origin(&h, true, None));
        assert!(!same_origin(&h, false, Some("https://backup.example.com")));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h, false, None));
        h.insert(
            header::ORIGIN,
            "https://backup.example.com".parse().unwrap(),
        );
        assert!(same_origin(&h, true, Some("https://backup.example.com")));
        h.remove(header::ORIGIN);
        h.insert(
            header::REFERER,
            "http://127.0.0.1:7070/settings".parse().unwrap(),
        );
        assert!(same_origin(&h, false, None));
        h.insert(header::REFERER, "http://127.0.0.1:70701/".parse().unwrap());
        assert!(!same_origin(&h, false, None));
        assert!(set_cookie("x", false).contains("HttpOnly; SameSite=Strict"));
        assert!(set_cookie("x", true).ends_with("; Secure"));
    }
}
