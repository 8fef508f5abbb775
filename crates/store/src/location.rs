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
    /// True for the object-store form, `s3://…`.
    pub fn is_url(text: &str) -> bool {
        text.get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("s3://"))
    }

    /// Reads `s3://bucket/prefix/` or a folder path.
    pub fn parse(text: &str) -> Result<Location, StoreError> {
        if !Location::is_url(text) {
            if text.is_empty() {
                return Err(invalid(text, "empty"));
            }
            return Ok(Location::Folder(PathBuf::from(text)));
        }
        let rest = &text[5..];
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

    /// How requests name the bucket: as `path_style` says, else path-style
    /// for a custom endpoint (a self-hosted store, as boto3, the AWS CLI,
    /// minio-go and restic reach one) and virtual-host style for AWS's own.
    pub fn addressing(&self) -> Addressing {
        match (self.path_style, self.endpoint.as_deref()) {
            (Some(true), _) => Addressing::Path,
            (Some(false), _) => Addressing::VirtualHost,
            (None, Some(endpoint)) if !is_aws(endpoint) => Addressing::Path,
            (None, _) => Addressing::VirtualHost,
        }
    }

    /// Where the requests for `bucket` go: the endpoint with the bucket in
    /// its path or its host, as [`S3Options::addressing`] says; AWS's
    /// endpoint of the region when none is set. Credentials in the
    /// endpoint are never part of it.
    pub fn bucket_url(&self, bucket: &str) -> String {
        let region = self.region.as_deref().unwrap_or("us-east-1");
        let endpoint = match &self.endpoint {
            Some(e) => redacted(e.trim_end_matches('/')),
            None => format!("https://s3.{region}.amazonaws.com"),
        };
        match self.addressing() {
            Addressing::Path => format!("{endpoint}/{bucket}"),
            Addressing::VirtualHost => with_bucket_host(&endpoint, bucket),
        }
    }
}

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

/// The host of `url` (`scheme://user@host:port/path`), without user or port.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.split(':').next().unwrap_or_default()
}

/// Whether `endpoint` is one of AWS's own.
fn is_aws(endpoint: &str) -> bool {
    let host = host_of(endpoint).to_ascii_lowercase();
    ["amazonaws.com", "amazonaws.com.cn"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// `url` without the credentials its authority may hold.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

/// `endpoint` with `bucket.` before its host (kept when already there).
pub(crate) fn with_bucket_host(endpoint: &str, bucket: &str) -> String {
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return endpoint.to_owned();
    };
    let user_end = rest
        .find(['/', '?', '#'])
        .map_or(rest.len(), |end| end)
        .min(rest.len());
    let (authority, path) = rest.split_at(user_end);
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    if host_of(endpoint).starts_with(&format!("{bucket}.")) {
        return endpoint.to_owned();
    }
    format!("{scheme}://{user}{bucket}.{host}{path}")
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
                "http://127.0.0.1:3900/backups",
                "path-style",
            ),
            (
                Some("https://minio.example:9000/"),
                None,
                "https://minio.example:9000/backups",
                "path-style",
            ),
            (
                None,
                None,
                "https://backups.s3.eu-west-3.amazonaws.com",
                "virtual-host style",
            ),
            (
                Some("https://s3.eu-west-3.amazonaws.com"),
                None,
                "https://backups.s3.eu-west-3.amazonaws.com",
                "virtual-host style",
            ),
            (
                Some("https://S3.AMAZONAWS.COM.CN"),
                None,
                "https://backups.S3.AMAZONAWS.COM.CN",
                "virtual-host style",
            ),
            // What the settings say wins.
            (
                Some("http://127.0.0.1:3900"),
                Some(false),
                "http://backups.127.0.0.1:3900",
                "virtual-host style",
            ),
            (
                Some("https://backups.r2.example"),
                Some(false),
                "https://backups.r2.example",
                "virtual-host style",
            ),
            (
                None,
                Some(true),
                "https://s3.eu-west-3.amazonaws.com/backups",
                "path-style",
            ),
            // A look-alike is not AWS's.
            (
                Some("https://amazonaws.com.evil.example"),
                None,
                "https://amazonaws.com.evil.example/backups",
                "path-style",
            ),
            // Credentials in the endpoint never show.
            (
                Some("https://key:secret@minio.example/"),
                None,
                "https://minio.example/backups",
                "path-style",
            ),
        ];
        for (endpoint, path_style, url, style) in cases {
            let o = options(endpoint, path_style);
            assert_eq!(o.bucket_url("backups"), url, "{endpoint:?} {path_style:?}");
            assert_eq!(
                o.addressing().to_string(),
                style,
                "{endpoint:?} {path_style:?}"
            );
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
