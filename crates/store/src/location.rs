//! Naming a store: a folder path or `s3://bucket/prefix/`, and how to reach a bucket.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::StoreError;

const ACCEPTED_URL: &str = "a folder path, or s3://bucket/prefix/ with a bucket of 3 to 63 lowercase letters, digits, dots and hyphens";

/// Where sets go or come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A folder on a mounted file system.
    Folder(PathBuf),
    /// A prefix of an S3-compatible bucket; `prefix` is empty or ends with `/`.
    Bucket {
        /// The bucket's name.
        bucket: String,
        /// The key prefix, `""` or `a/b/`.
        prefix: String,
    },
}

impl Location {
    /// True for a store's URL (`scheme://…`), whether or not sauve
    /// reaches its scheme ([`Location::parse`] says).
    pub fn is_url(text: &str) -> bool {
        sauve_durable::url_scheme(text).is_some()
    }

    /// Reads `s3://bucket/prefix/` or a folder path.
    pub fn parse(text: &str) -> Result<Location, StoreError> {
        if !Location::is_url(text) {
            if text.is_empty() {
                return Err(invalid(text, "empty"));
            }
            return Ok(Location::Folder(PathBuf::from(text)));
        }
        let scheme = sauve_durable::url_scheme(text).unwrap_or_default();
        if !scheme.eq_ignore_ascii_case("s3") {
            return Err(invalid(
                text,
                &format!("sauve reaches no store by {scheme}://"),
            ));
        }
        let rest = &text[scheme.len() + 3..];
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(text, bucket)?;
        let mut parts = Vec::new();
        for part in prefix.split('/') {
            match part {
                "" => {}
                "." | ".." => {
                    return Err(invalid(text, "`.` and `..` are not allowed in the prefix"));
                }
                p if p.contains(['?', '#', '\\']) || p.chars().any(char::is_control) => {
                    return Err(invalid(text, "the prefix holds a character keys cannot"));
                }
                p => parts.push(p),
            }
        }
        let prefix = if parts.is_empty() {
            String::new()
        } else {
            format!("{}/", parts.join("/"))
        };
        Ok(Location::Bucket {
            bucket: bucket.to_owned(),
            prefix,
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Folder(d) => write!(f, "{}", d.display()),
            Location::Bucket { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

fn invalid(text: &str, reason: &str) -> StoreError {
    StoreError::Invalid {
        what: format!("destination {text:?}"),
        reason: reason.to_owned(),
        accepted: ACCEPTED_URL,
    }
}

fn check_bucket(text: &str, bucket: &str) -> Result<(), StoreError> {
    let ok_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ok_ends = bucket
        .bytes()
        .next()
        .zip(bucket.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    if (3..=63).contains(&bucket.len()) && ok_chars && ok_ends {
        Ok(())
    } else {
        Err(invalid(text, &format!("{bucket:?} is not a bucket name")))
    }
}

/// How to reach a bucket: `[destination]` of sauve.toml, completed by the
/// standard AWS environment variables. The secret never prints.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// `https://s3.example.com` or `http://127.0.0.1:3900`; AWS when unset.
    pub endpoint: Option<String>,
    /// The region (`garage`, `us-east-1`…).
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) when `Some(true)`,
    /// virtual-host style (`bucket.endpoint/key`) when `Some(false)`;
    /// unset, as [`S3Options::addressing`] says.
    pub path_style: Option<bool>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<String>,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
    /// The size of each uploaded part (at least 5 MiB).
    pub part_size: usize,
    /// Parts uploaded at once.
    pub parts_in_flight: usize,
    /// How long one request may take before it counts as failed.
    pub request_timeout: Duration,
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .field("part_size", &self.part_size)
            .field("parts_in_flight", &self.parts_in_flight)
            .finish()
    }
}

/// 16 MiB parts, 4 at once: 64 MiB of parts at most.
pub const DEFAULT_PART_SIZE: usize = 16 << 20;
/// Parts in flight by default.
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 4;

impl S3Options {
    /// Sensible defaults: the addressing style of the endpoint, 16 MiB
    /// parts, 4 in flight, 60 s per request.
    pub fn new() -> S3Options {
        S3Options {
            part_size: DEFAULT_PART_SIZE,
            parts_in_flight: DEFAULT_PARTS_IN_FLIGHT,
            request_timeout: Duration::from_secs(60),
            ..S3Options::default()
        }
    }

    /// Fills what is unset from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`) and
    /// `AWS_ENDPOINT_URL`.
    pub fn with_aws_environment(mut self, var: impl Fn(&str) -> Option<String>) -> S3Options {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        self.access_key_id = self.access_key_id.or_else(|| get("AWS_ACCESS_KEY_ID"));
        self.secret_access_key = self
            .secret_access_key
            .or_else(|| get("AWS_SECRET_ACCESS_KEY"));
        self.session_token = self.session_token.or_else(|| get("AWS_SESSION_TOKEN"));
        self.region = self
            .region
            .or_else(|| get("AWS_REGION"))
            .or_else(|| get("AWS_DEFAULT_REGION"));
        self.endpoint = self.endpoint.or_else(|| get("AWS_ENDPOINT_URL"));
        self
    }

    /// How requests for `bucket` name it: as `path_style` says; else
    /// virtual-host style when the endpoint's host already starts with the
    /// bucket (it was written for that), path-style for any other custom
    /// endpoint (a self-hosted store, as boto3, the AWS CLI, minio-go and
    /// restic reach one), and virtual-host style for AWS's own, but for a
    /// bucket whose name holds a dot (AWS's certificate does not cover it
    /// as a host name).
    pub fn addressing(&self, bucket: &str) -> Addressing {
        if let Some(path_style) = self.path_style {
            return if path_style {
                Addressing::Path
            } else {
                Addressing::VirtualHost
            };
        }
        let host = self.endpoint.as_deref().and_then(host_of);
        match host {
            Some(h) if h.starts_with(&format!("{}.", bucket.to_ascii_lowercase())) => {
                Addressing::VirtualHost
            }
            Some(h) if !is_aws(&h) => Addressing::Path,
            _ if bucket.contains('.') => Addressing::Path,
            _ => Addressing::VirtualHost,
        }
    }

    /// The endpoint the S3 client is given for `bucket` (with the bucket in
    /// its host for virtual-host style, which the client expects there), or
    /// `None` for AWS's endpoint of the region. The caller checks it parses.
    pub(crate) fn client_endpoint(&self, bucket: &str) -> Option<String> {
        let endpoint = self.endpoint.as_deref()?.trim_end_matches('/');
        Some(match self.addressing(bucket) {
            Addressing::Path => endpoint.to_owned(),
            Addressing::VirtualHost => with_bucket_host(endpoint, bucket),
        })
    }

    /// Where the requests for `bucket` go: the endpoint with the bucket in
    /// its path or its host, as [`S3Options::addressing`] says; AWS's
    /// endpoint of the region when none is set. Never with what could be a
    /// credential ([`sauve_durable::shown_url`]).
    pub fn bucket_url(&self, bucket: &str) -> String {
        let region = self.region.as_deref().unwrap_or(DEFAULT_REGION);
        let url = match (self.client_endpoint(bucket), self.addressing(bucket)) {
            (Some(endpoint), Addressing::Path) => format!("{endpoint}/{bucket}"),
            (Some(endpoint), Addressing::VirtualHost) => endpoint,
            (None, Addressing::Path) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
            (None, Addressing::VirtualHost) => {
                format!("https://{bucket}.s3.{region}.amazonaws.com")
            }
        };
        sauve_durable::shown_url(&url)
    }
}

impl S3Options {
    /// The endpoint the S3 client is given for `bucket` (see
    /// [`S3Options::client_endpoint`]), once every value the client puts in
    /// a request is known to be one it can: the client panics on a URL it
    /// cannot parse or a header value that is not visible ASCII, and these
    /// come from a settings file or the environment. The reason, naming the
    /// value (never a secret's), when one is not.
    pub(crate) fn checked_endpoint(&self, bucket: &str) -> Result<Option<String>, String> {
        let visible = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic());
        if let Some(region) = &self.region
            && !(visible(region)
                && region
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(format!(
                "region {:?} is not a region name (letters, digits and -)",
                region.escape_debug().to_string()
            ));
        }
        for (what, value) in [
            ("the access key id", &self.access_key_id),
            ("the secret access key", &self.secret_access_key),
            ("the session token", &self.session_token),
        ] {
            if value.as_deref().is_some_and(|v| !visible(v)) {
                return Err(format!(
                    "{what} holds a character that is not visible ASCII (a space, a line end, a pasted typographic character)"
                ));
            }
        }
        if let Some(endpoint) = &self.endpoint {
            let shown = sauve_durable::shown_url(endpoint);
            let parsed = url::Url::parse(endpoint)
                .map_err(|e| format!("endpoint {shown:?} is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(format!(
                    "endpoint {shown:?} is not an http:// or https:// URL of a host"
                ));
            }
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(format!(
                    "endpoint {shown:?} holds credentials: give them as access_key_id_env and secret_access_key_env, never in the URL"
                ));
            }
            if parsed.query().is_some() || parsed.fragment().is_some() {
                return Err(format!(
                    "endpoint {shown:?} has a query or a fragment, which a request cannot keep"
                ));
            }
        }
        let asked = match self.client_endpoint(bucket) {
            Some(endpoint) => endpoint,
            None => self.bucket_url(bucket),
        };
        match url::Url::parse(&asked) {
            Ok(u) if u.host_str().is_some() => Ok(self.client_endpoint(bucket)),
            _ => Err(match self.addressing(bucket) {
                Addressing::VirtualHost => format!(
                    "virtual-host style puts the bucket in the host, and {} is not a host name (an IP address or a bucket name that is not a DNS label cannot be one); set path_style = true",
                    self.bucket_url(bucket)
                ),
                Addressing::Path => format!("{} is not a URL", self.bucket_url(bucket)),
            }),
        }
    }
}

/// The region when none is set.
pub(crate) const DEFAULT_REGION: &str = "us-east-1";

/// How a request names its bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// `endpoint/bucket/key`.
    Path,
    /// `bucket.endpoint/key`.
    VirtualHost,
}

impl fmt::Display for Addressing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Addressing::Path => "path-style",
            Addressing::VirtualHost => "virtual-host style",
        })
    }
}

/// The host of `url`, lowercased, as the S3 client will read it.
fn host_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(parsed.host_str()?.to_ascii_lowercase())
}

/// Whether `host` is one of AWS's own.
fn is_aws(host: &str) -> bool {
    ["amazonaws.com", "amazonaws.com.cn"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// `endpoint` with `bucket.` before its host (kept when already there).
fn with_bucket_host(endpoint: &str, bucket: &str) -> String {
    if host_of(endpoint)
        .is_some_and(|h| h.starts_with(&format!("{}.", bucket.to_ascii_lowercase())))
    {
        return endpoint.to_owned();
    }
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return endpoint.to_owned();
    };
    // After any user information: the host starts there.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@').map_or(0, |i| i + 1);
    format!("{scheme}://{}{bucket}.{}", &rest[..at], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_endpoint_is_path_style_unless_told_and_aws_keeps_virtual_hosts() {
        let options = |endpoint: Option<&str>, path_style| S3Options {
            endpoint: endpoint.map(str::to_owned),
            path_style,
            region: Some("eu-west-3".into()),
            ..S3Options::new()
        };
        let cases = [
            (
                Some("http://127.0.0.1:3900"),
                None,
                "backups",
                "http://127.0.0.1:3900/backups",
                "path-style",
            ),
            (
                Some("https://minio.example:9000/"),
                None,
                "backups",
                "https://minio.example:9000/backups",
                "path-style",
            ),
            (
                Some("http://[::1]:3900"),
                None,
                "backups",
                "http://[::1]:3900/backups",
                "path-style",
            ),
            (
                None,
                None,
                "backups",
                "https://backups.s3.eu-west-3.amazonaws.com",
                "virtual-host style",
            ),
            (
                Some("https://s3.eu-west-3.amazonaws.com"),
                None,
                "backups",
                "https://backups.s3.eu-west-3.amazonaws.com",
                "virtual-host style",
            ),
            (
                Some("https://S3.AMAZONAWS.COM.CN"),
                None,
                "backups",
                "https://backups.S3.AMAZONAWS.COM.CN",
                "virtual-host style",
            ),
            // A bucket with a dot is no host under AWS's certificate.
            (
                None,
                None,
                "my.backups",
                "https://s3.eu-west-3.amazonaws.com/my.backups",
                "path-style",
            ),
            // An endpoint written with the bucket in its host keeps it there.
            (
                Some("https://Backups.nyc3.digitaloceanspaces.com"),
                None,
                "backups",
                "https://Backups.nyc3.digitaloceanspaces.com",
                "virtual-host style",
            ),
            // What the settings say wins.
            (
                Some("https://minio.example"),
                Some(false),
                "backups",
                "https://backups.minio.example",
                "virtual-host style",
            ),
            (
                None,
                Some(true),
                "backups",
                "https://s3.eu-west-3.amazonaws.com/backups",
                "path-style",
            ),
            // A look-alike is not AWS's.
            (
                Some("https://amazonaws.com.evil.example"),
                None,
                "backups",
                "https://amazonaws.com.evil.example/backups",
                "path-style",
            ),
        ];
        for (endpoint, path_style, bucket, url, style) in cases {
            let o = options(endpoint, path_style);
            assert_eq!(o.bucket_url(bucket), url, "{endpoint:?} {path_style:?}");
            assert_eq!(
                o.addressing(bucket).to_string(),
                style,
                "{endpoint:?} {path_style:?}"
            );
            assert!(
                o.checked_endpoint(bucket).is_ok(),
                "{endpoint:?} {path_style:?}"
            );
        }
    }

    #[test]
    fn values_the_client_would_panic_on_are_refused_naming_them_never_a_secret() {
        let base = S3Options {
            endpoint: Some("https://minio.example".into()),
            access_key_id: Some("GK1".into()),
            secret_access_key: Some("s3cr3t".into()),
            ..S3Options::new()
        };
        let refused = |o: S3Options, bucket: &str, says: &str| {
            let why = o.checked_endpoint(bucket).unwrap_err();
            assert!(why.contains(says), "{why}");
            assert!(!why.contains("s3cr3t") && !why.contains("hunter2"), "{why}");
        };
        refused(
            S3Options {
                region: Some("eu\u{2011}west".into()),
                ..base.clone()
            },
            "b",
            "is not a region name",
        );
        refused(
            S3Options {
                access_key_id: Some("GK1\r".into()),
                ..base.clone()
            },
            "b",
            "the access key id holds",
        );
        refused(
            S3Options {
                session_token: Some("tok en".into()),
                ..base.clone()
            },
            "b",
            "the session token holds",
        );
        refused(
            S3Options {
                endpoint: Some("https://key:hunter2@minio.example".into()),
                ..base.clone()
            },
            "b",
            "holds credentials",
        );
        refused(
            S3Options {
                endpoint: Some("https://minio.example/?X-Amz-Security-Token=hunter2".into()),
                ..base.clone()
            },
            "b",
            "a query or a fragment",
        );
        refused(
            S3Options {
                endpoint: Some("ftp://minio.example".into()),
                ..base.clone()
            },
            "b",
            "http:// or https://",
        );
        refused(
            S3Options {
                endpoint: Some("http://127.0.0.1:3900".into()),
                path_style: Some(false),
                ..base.clone()
            },
            "b",
            "set path_style = true",
        );
        refused(
            S3Options {
                endpoint: None,
                ..base.clone()
            },
            "xn--aaa",
            "set path_style = true",
        );
    }

    #[test]
    fn a_url_of_a_scheme_sauve_does_not_reach_is_refused_naming_it_never_a_folder() {
        for text in ["gs://backups/app/", "Azure://c/p", "file+x://a"] {
            assert!(Location::is_url(text), "{text}");
            let err = Location::parse(text).unwrap_err().to_string();
            let scheme = text.split("://").next().unwrap();
            assert!(
                err.contains(&format!("sauve reaches no store by {scheme}://")),
                "{err}"
            );
            assert!(err.contains("s3://bucket/prefix/"), "{err}");
        }
        // Not URLs: folders.
        for text in ["../Backups", "/srv/a://b", "1x://y", "://y"] {
            assert!(!Location::is_url(text), "{text}");
        }
    }

    #[test]
    fn urls_and_folders() {
        assert_eq!(
            Location::parse("s3://backups/apps/notes/").unwrap(),
            Location::Bucket {
                bucket: "backups".into(),
                prefix: "apps/notes/".into()
            }
        );
        assert_eq!(
            Location::parse("S3://backups").unwrap(),
            Location::Bucket {
                bucket: "backups".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse("s3://b-1.x//a//b").unwrap().to_string(),
            "s3://b-1.x/a/b/"
        );
        assert_eq!(
            Location::parse("../Backups/").unwrap(),
            Location::Folder(PathBuf::from("../Backups/"))
        );
        for bad in [
            "s3://",
            "s3://A",
            "s3://ab",
            "s3://-ab/",
            "s3://a_b/",
            "s3://abc/../x",
            "",
        ] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(e.contains("accepted"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_secret_never_prints() {
        let o = S3Options {
            secret_access_key: Some("very-secret".into()),
            ..S3Options::new()
        };
        assert!(!format!("{o:?}").contains("very-secret"));
    }

    #[test]
    fn aws_environment_fills_only_what_is_unset() {
        let o = S3Options {
            region: Some("garage".into()),
            ..S3Options::new()
        }
        .with_aws_environment(|n| match n {
            "AWS_REGION" => Some("us-east-1".into()),
            "AWS_ACCESS_KEY_ID" => Some("GK1".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("s".into()),
            _ => None,
        });
        assert_eq!(o.region.as_deref(), Some("garage"));
        assert_eq!(o.access_key_id.as_deref(), Some("GK1"));
        assert_eq!(o.secret_access_key.as_deref(), Some("s"));
    }
}
