//! The one way a URL from the settings or the environment is shown or
//! stored (SECURITY.md, "Secrets"): without its user information
//! (`user:password@`), its query and its fragment, which may carry
//! credentials or tokens. The Backup Journal, `status`, the page, the
//! server log, `sauve-state.json` and a store's errors show a URL only
//! through [`shown_url`]; the URL itself is used only to connect. Here,
//! below the settings and the stores, so that both use it.

/// The scheme of `text` when it is a URL (`s3` of `s3://bucket/prefix/`):
/// a letter, then letters, digits, `+`, `-` or `.`, then `://`. The one
/// test of "a store's URL, not a folder path", for the settings and the
/// stores alike.
pub fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// `url` as it may be shown: `scheme://host[:port]/path`, without
/// `user:password@`, `?query` or `#fragment`.
///
/// Everything up to the last `@` before the query is left out, after the
/// `scheme://` or, in text without one (`user:pass@host/x`), from its
/// start: a password may hold an unencoded `/`, `@` or `:`, so where the
/// user information ends cannot be told from the first `/` or the first
/// `@`. Secrets first: a path that holds an `@` is shown from after it,
/// shortened, never with what could be a password.
pub fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::shown_url;

    #[test]
    fn credentials_queries_and_fragments_are_never_shown() {
        for (url, shown) in [
            (
                "http://user:PASS@host:8080/hook?token=T#f",
                "http://host:8080/hook",
            ),
            ("https://user@host/a/b", "https://host/a/b"),
            ("https://u:p@ss@host/", "https://host/"),
            // A path that holds an `@` is shortened: what is before it
            // could be a password holding a `/`.
            ("https://host/path@x?y", "https://x"),
            ("s3://bucket/prefix/", "s3://bucket/prefix/"),
            ("http://host", "http://host"),
            ("/srv/backups?x", "/srv/backups"),
            // Found in review: a `/` in the password, and text without a
            // scheme, showed the password.
            ("http://u:PASS/ss@h/x", "http://h/x"),
            ("http://u:PA/SS@h:8080/x?t=1", "http://h:8080/x"),
            ("https://u:PASS/a@b@h/x#f", "https://h/x"),
            ("user:PASS@host/x", "host/x"),
            ("user:PA/SS@host/x?q", "host/x"),
            ("user:PASS@host", "host"),
            ("@host/x", "host/x"),
            ("http://u:PASS@h/x?next=a@b", "http://h/x"),
            ("http://u:PASS@", "http://"),
        ] {
            assert_eq!(shown_url(url), shown, "{url}");
            assert!(!shown_url(url).contains("PASS"), "{url}");
            assert!(!shown_url(url).contains("SS"), "{url}");
        }
    }
}
