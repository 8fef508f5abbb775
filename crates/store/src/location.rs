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
    /// Path-style requests (`endpoint/bucket/key`), as most self-hosted stores want.
    pub path_style: bool,
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
    /// Sensible defaults: path-style off (AWS), 16 MiB parts, 4 in flight, 60 s per request.
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
