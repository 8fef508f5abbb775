//! The one way a URL from the settings is shown or stored (SECURITY.md,
//! "Secrets"): without its user information (`user:password@`), its query
//! and its fragment, which may carry credentials or tokens. The Backup
//! Journal, `status`, the page, the server log and `sauve-state.json` show
//! a URL only through [`shown_url`]; the URL itself is used only to connect.

/// `url` as it may be shown: `scheme://host[:port]/path`, without
/// `user:password@`, `?query` or `#fragment`. Text that is no URL is
/// returned without anything after a `?` or `#`, and without anything
/// before an `@` in what would be its authority.
pub fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
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
            ("https://host/path@x?y", "https://host/path@x"),
            ("s3://bucket/prefix/", "s3://bucket/prefix/"),
            ("http://host", "http://host"),
            ("/srv/backups?x", "/srv/backups"),
        ] {
            assert_eq!(shown_url(url), shown, "{url}");
            assert!(!shown_url(url).contains("PASS"));
        }
    }
}
