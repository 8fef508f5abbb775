//! Which names the pages answer to (behaviour §18, issue 27): a defence against
//! DNS rebinding. A page elsewhere that points its own name at this
//! server's address reaches it with `Host: its.name:PORT`; its forms then
//! carry a matching Origin, so the Origin check alone does not stop it. The
//! pages therefore answer only requests whose `Host` (and the authority of
//! an absolute request target, if any) is one of the names people reach
//! them at, and 421 Misdirected Request to any other, before a session,
//! a login or anything else is looked at.
//!
//! Accepted names:
//! - the authority of the public URL (`--public-url`), its port or its
//!   scheme's;
//! - with a listen address ([`crate::PageState::with_listen_addr`]), at its
//!   port: the address itself; `localhost`, `127.0.0.1` and `[::1]` when it
//!   is a loopback address; `localhost` and any IP address when it is the
//!   unspecified address (`0.0.0.0`, `[::]`: the machine's own addresses
//!   are not known here, and an IP address is never a name a rebinding
//!   page controls);
//! - without a listen address (a host that mounts the pages and does not
//!   say where it listens): `localhost` and loopback addresses, at any
//!   port. Hosts that listen elsewhere must say so.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// A host name or an IP address, as a request names it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Name {
    Ip(IpAddr),
    /// Lowercase.
    Dns(String),
}

impl Name {
    fn is_localhost(&self) -> bool {
        matches!(self, Name::Dns(n) if n == "localhost")
    }
}

/// `host[:port]` split and checked: `None` for anything that is not a plain
/// authority (user info, a path, an empty or malformed port, spaces).
fn split(authority: &str) -> Option<(Name, Option<u16>)> {
    let port = |p: &str| -> Option<u16> {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    if let Some(rest) = authority.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = ip.parse().ok()?;
        let p = match after {
            "" => None,
            a => Some(port(a.strip_prefix(':')?)?),
        };
        return Some((Name::Ip(IpAddr::V6(ip).to_canonical()), p));
    }
    let (name, p) = match authority.split_once(':') {
        Some((n, p)) => (n, Some(port(p)?)),
        None => (authority, None),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return None;
    }
    Some(match name.parse::<IpAddr>() {
        Ok(ip) => (Name::Ip(ip.to_canonical()), p),
        Err(_) => (Name::Dns(name.to_ascii_lowercase()), p),
    })
}

/// The names the pages answer to.
#[derive(Clone, Debug, Default)]
pub(crate) struct Hosts {
    listen: Option<SocketAddr>,
    /// The public URL's host, its port, its scheme's port (what a `Host`
    /// without one means), and how it reads.
    public: Option<(Name, u16, u16, String)>,
}

impl Hosts {
    /// Accepts the names of `listen` (see the module's doc).
    pub(crate) fn listening_on(mut self, listen: SocketAddr) -> Hosts {
        self.listen = Some(listen);
        self
    }

    /// Accepts the authority of `origin` (`scheme://authority`, as
    /// [`crate::public_origin`] gives it).
    pub(crate) fn reached_at(mut self, origin: &str) -> Hosts {
        let (scheme, authority) = origin.split_once("://").unwrap_or(("http", origin));
        let default = if scheme == "https" { 443 } else { 80 };
        self.public = split(authority)
            .map(|(name, port)| (name, port.unwrap_or(default), default, authority.to_owned()));
        self
    }

    /// Whether a request naming `authority` is for these pages.
    pub(crate) fn allows(&self, authority: &str) -> bool {
        let Some((name, port)) = split(authority) else {
            return false;
        };
        if let Some((p_name, p_port, default, _)) = &self.public
            && *p_name == name
            && port.unwrap_or(*default) == *p_port
        {
            return true;
        }
        let Some(listen) = self.listen else {
            // No listen address: loopback names only, at any port.
            return name.is_localhost() || matches!(name, Name::Ip(ip) if ip.is_loopback());
        };
        // The pages themselves are plain HTTP on the listen address: a
        // Host without a port means port 80.
        if port.unwrap_or(80) != listen.port() {
            return false;
        }
        let own = listen.ip().to_canonical();
        match name {
            Name::Ip(ip) if ip == own => true,
            _ if own.is_unspecified() => name.is_localhost() || matches!(name, Name::Ip(_)),
            Name::Ip(ip) if own.is_loopback() => {
                ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(Ipv6Addr::LOCALHOST)
            }
            _ => own.is_loopback() && name.is_localhost(),
        }
    }

    /// What is accepted, for the refusal's message.
    fn accepted(&self) -> String {
        let mut names = Vec::new();
        if let Some(listen) = self.listen {
            let port = listen.port();
            let own = listen.ip().to_canonical();
            if own.is_unspecified() {
                names.push(format!("any IP address of this machine at port {port}"));
                names.push(format!("localhost:{port}"));
            } else {
                names.push(SocketAddr::new(own, port).to_string());
                if own.is_loopback() {
                    for other in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
                        if !names.contains(&other) {
                            names.push(other);
                        }
                    }
                    names.push(format!("localhost:{port}"));
                }
            }
        } else {
            names.push("localhost, 127.0.0.1 or [::1] at any port".to_owned());
        }
        if let Some((_, _, _, shown)) = &self.public {
            names.push(format!("{shown} (the public URL)"));
        }
        names.join(", ")
    }

    /// Checks every authority a request names: its `Host` header (exactly
    /// one) and the authority of an absolute request target.
    pub(crate) fn check(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), Misdirected> {
        let mut hosts = headers.get_all(header::HOST).iter();
        let host = hosts.next();
        if hosts.next().is_some() {
            return Err(Misdirected {
                host: "(several Host headers)".to_owned(),
                accepted: self.accepted(),
            });
        }
        let mut named = Vec::new();
        if let Some(h) = host {
            match h.to_str() {
                Ok(h) => named.push(h),
                Err(_) => {
                    return Err(Misdirected {
                        host: "(not text)".to_owned(),
                        accepted: self.accepted(),
                    });
                }
            }
        }
        if let Some(a) = uri.authority() {
            named.push(a.as_str());
        }
        if named.is_empty() {
            return Err(Misdirected {
                host: "(none)".to_owned(),
                accepted: self.accepted(),
            });
        }
        match named.into_iter().find(|n| !self.allows(n)) {
            None => Ok(()),
            Some(refused) => Err(Misdirected {
                host: refused.chars().take(200).collect(),
                accepted: self.accepted(),
            }),
        }
    }
}

/// A request for a name these pages do not answer to.
#[derive(Debug)]
pub(crate) struct Misdirected {
    /// The name refused, as given (visible ASCII, at most 200 characters).
    pub(crate) host: String,
    accepted: String,
}

impl fmt::Display for Misdirected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this server does not answer to Host {:?} (accepted: {}); if you reach it through a proxy or a tunnel, give its address to sauve run --public-url",
            self.host, self.accepted
        )
    }
}

impl IntoResponse for Misdirected {
    fn into_response(self) -> Response {
        (
            StatusCode::MISDIRECTED_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("421 Misdirected Request: {self}\n"),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(listen: &str) -> Hosts {
        Hosts::default().listening_on(listen.parse().unwrap())
    }

    #[test]
    fn a_loopback_listener_answers_to_its_address_and_localhost_at_its_port_only() {
        let h = at("127.0.0.1:7070");
        for ok in [
            "127.0.0.1:7070",
            "localhost:7070",
            "LocalHost:7070",
            "[::1]:7070",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for off in [
            "evil.example:7070",
            "evil.example",
            "localhost:7071",
            "localhost",
            "127.0.0.1",
            "127.0.0.2:7070",
            "localhost.:7070",
            "a.localhost:7070",
            "127.0.0.1:+7070",
            "127.0.0.1:",
            "user@127.0.0.1:7070",
            "127.0.0.1:7070/x",
            "",
            "[::1",
            "[zz]:7070",
        ] {
            assert!(!h.allows(off), "{off}");
        }
        let h = at("[::1]:80");
        assert!(h.allows("[::1]") && h.allows("localhost") && h.allows("127.0.0.1:80"));
    }

    #[test]
    fn other_listeners_answer_to_their_address_and_the_public_url_to_its_authority() {
        let h = at("10.0.0.2:7070");
        assert!(h.allows("10.0.0.2:7070"));
        assert!(!h.allows("localhost:7070") && !h.allows("10.0.0.3:7070"));
        let h = at("0.0.0.0:7070");
        assert!(h.allows("10.0.0.2:7070") && h.allows("[2001:db8::1]:7070"));
        assert!(h.allows("localhost:7070"));
        assert!(!h.allows("backup.example.com:7070") && !h.allows("10.0.0.2:7071"));
        let h = at("127.0.0.1:7070").reached_at("https://backup.example.com");
        assert!(h.allows("backup.example.com") && h.allows("Backup.Example.com:443"));
        assert!(!h.allows("backup.example.com:7070") && !h.allows("example.com"));
        assert!(h.allows("127.0.0.1:7070"));
        let h = Hosts::default().reached_at("http://backup.example.com:8080");
        assert!(h.allows("backup.example.com:8080") && !h.allows("backup.example.com"));
    }

    #[test]
    fn without_a_listen_address_only_loopback_names_are_answered() {
        let h = Hosts::default();
        for ok in ["127.0.0.1:7070", "localhost", "[::1]:1", "127.0.0.5:80"] {
            assert!(h.allows(ok), "{ok}");
        }
        for off in ["evil.example:7070", "10.0.0.2:7070", "localhost.example"] {
            assert!(!h.allows(off), "{off}");
        }
    }

    #[test]
    fn the_refusal_names_the_host_and_what_is_accepted() {
        let h = at("127.0.0.1:7070");
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "evil.example:7070".parse().unwrap());
        let e = h.check(&headers, &Uri::from_static("/login")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "this server does not answer to Host \"evil.example:7070\" (accepted: 127.0.0.1:7070, [::1]:7070, localhost:7070); if you reach it through a proxy or a tunnel, give its address to sauve run --public-url"
        );
        headers.insert(header::HOST, "127.0.0.1:7070".parse().unwrap());
        assert!(h.check(&headers, &Uri::from_static("/login")).is_ok());
        let absolute = Uri::from_static("http://evil.example:7070/login");
        assert_eq!(
            h.check(&headers, &absolute).unwrap_err().host,
            "evil.example:7070"
        );
        headers.append(header::HOST, "127.0.0.1:7070".parse().unwrap());
        assert!(h.check(&headers, &Uri::from_static("/")).is_err());
        assert!(h.check(&HeaderMap::new(), &Uri::from_static("/")).is_err());
    }
}
