//! How many login attempts each source address gets (issue 27): a pure
//! count over tokio's clock, so paused-time tests can drive it.
//!
//! Every attempt is counted before its secret is checked, so attempts sent
//! in parallel count as much as attempts sent one after the other; a
//! successful one is forgotten. Once [`MAX_FAILURES`] attempts from one
//! source are counted within [`WINDOW`], every further attempt from there,
//! the right secret included, is refused until the oldest leaves the
//! window. A source is an IPv4 address, or an IPv6 address's /64 (one
//! machine usually holds a whole /64). Requests served without the peer's
//! address (a host that does not pass `ConnectInfo`) share one source, and
//! so do all requests through a proxy in front: the limit then holds for
//! all of them together.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

/// Attempts counted per source within [`WINDOW`] before the next is refused.
pub(crate) const MAX_FAILURES: usize = 5;
/// How long an attempt counts.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// How many sources are remembered: beyond it, the one quiet longest is
/// forgotten, so a flood from many addresses cannot grow the table.
const MAX_SOURCES: usize = 4096;

/// Where login attempts come from, as they are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// An IPv4 address, or an IPv6 address's /64.
    Ip(IpAddr),
    /// The peer's address was not given to the pages.
    Unknown,
}

impl Source {
    /// The source of a request from `peer`.
    pub(crate) fn of(peer: Option<SocketAddr>) -> Source {
        match peer.map(|p| p.ip().to_canonical()) {
            Some(IpAddr::V6(v6)) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Source::Ip(IpAddr::V6(bits.into()))
            }
            Some(v4) => Source::Ip(v4),
            None => Source::Unknown,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Ip(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
            Source::Ip(v4) => write!(f, "{v4}"),
            Source::Unknown => f.write_str("an unknown address"),
        }
    }
}

/// An attempt counted by [`Attempts::begin`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt {
    source: Source,
    at: Instant,
}

/// The attempts of the last [`WINDOW`], per source.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    by_source: HashMap<Source, VecDeque<Instant>>,
}

impl Attempts {
    /// Counts an attempt from `source` at `now`, before its secret is
    /// checked; or, when [`MAX_FAILURES`] are counted already, refuses it
    /// with how long until the next is accepted (at least a second).
    pub(crate) fn begin(&mut self, source: Source, now: Instant) -> Result<Attempt, Duration> {
        self.forget_old(source, now);
        let counted = self.by_source.entry(source).or_default();
        if counted.len() >= MAX_FAILURES {
            let oldest = counted.front().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(
                Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                    .max(Duration::from_secs(1)),
            );
        }
        counted.push_back(now);
        Ok(Attempt { source, at: now })
    }

    /// Forgets a successful attempt: only failures count.
    pub(crate) fn succeeded(&mut self, attempt: Attempt) {
        if let Some(counted) = self.by_source.get_mut(&attempt.source)
            && let Some(i) = counted.iter().position(|t| *t == attempt.at)
        {
            counted.remove(i);
        }
    }

    /// Drops what left the window for `source`, and keeps the table within
    /// [`MAX_SOURCES`].
    fn forget_old(&mut self, source: Source, now: Instant) {
        let old = |t: &Instant| now.duration_since(*t) >= WINDOW;
        if let Some(counted) = self.by_source.get_mut(&source) {
            while counted.front().is_some_and(old) {
                counted.pop_front();
            }
        }
        if self.by_source.len() >= MAX_SOURCES && !self.by_source.contains_key(&source) {
            self.by_source
                .retain(|_, c| c.back().is_some_and(|t| !old(t)));
            if self.by_source.len() >= MAX_SOURCES
                && let Some(quiet) = self
                    .by_source
                    .iter()
                    .min_by_key(|(_, c)| c.back().copied())
                    .map(|(s, _)| *s)
            {
                self.by_source.remove(&quiet);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Source {
        Source::of(Some(SocketAddr::new(s.parse().unwrap(), 1234)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_gets_five_attempts_a_minute_and_others_are_not_held_back() {
        let mut a = Attempts::default();
        let t0 = Instant::now();
        let me = ip("203.0.113.5");
        for i in 0..MAX_FAILURES {
            a.begin(me, t0 + Duration::from_secs(i as u64)).unwrap();
        }
        // The sixth, even right, waits until the first leaves the window.
        let wait = a.begin(me, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(a.begin(ip("203.0.113.6"), t0).is_ok(), "another address");
        assert!(a.begin(me, t0 + Duration::from_millis(59_999)).is_err());
        assert_eq!(
            a.begin(me, t0 + Duration::from_millis(59_500)).unwrap_err(),
            Duration::from_secs(1),
            "rounded up, never 0"
        );
        a.begin(me, t0 + WINDOW).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn successes_are_forgotten_and_an_ipv6_source_is_its_64() {
        let mut a = Attempts::default();
        let t0 = Instant::now();
        let me = ip("2001:db8:1:2::5");
        assert_eq!(me, ip("2001:db8:1:2:ffff::1"));
        assert_ne!(me, ip("2001:db8:1:3::5"));
        assert_eq!(me.to_string(), "2001:db8:1:2::/64");
        assert_eq!(ip("::ffff:192.0.2.1").to_string(), "192.0.2.1");
        for _ in 0..100 {
            let ok = a.begin(me, t0).unwrap();
            a.succeeded(ok);
        }
        for _ in 0..MAX_FAILURES {
            a.begin(me, t0).unwrap();
        }
        assert!(a.begin(me, t0).is_err());
        assert_eq!(Source::of(None).to_string(), "an unknown address");
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_forgets_the_quietest_source_beyond_its_size() {
        let mut a = Attempts::default();
        let t0 = Instant::now();
        for i in 0..=MAX_SOURCES as u32 {
            let s = Source::Ip(IpAddr::from(i.to_be_bytes()));
            a.begin(s, t0 + Duration::from_millis(u64::from(i)))
                .unwrap();
        }
        assert_eq!(a.by_source.len(), MAX_SOURCES);
        assert!(
            !a.by_source
                .contains_key(&Source::Ip(IpAddr::from([0, 0, 0, 0])))
        );
    }
}
