//! An S3-compatible bucket as a store, through `object_store`'s client
//! (SigV4, retries, multipart) and its low-level multipart calls, so that
//! parts go up several at a time and completion is ours to check.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, MultipartId, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, RetryConfig,
};
use tokio::task::JoinSet;

use sauve_durable::fault::{self, Step};

use crate::location::{Addressing, S3Options};
use crate::{ObjectInfo, Store, StoreError, Upload};

/// A bucket prefix on an S3-compatible store.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Arc<AmazonS3>,
    bucket: String,
    prefix: String,
    parts_in_flight: usize,
    /// Where its requests go and how they name the bucket, for its errors
    /// (`requests to http://127.0.0.1:3900/backups/apps/, path-style`).
    asked: Arc<str>,
}

impl S3Store {
    /// A client for `s3://bucket/prefix`; nothing is sent until the first call.
    pub fn open(
        bucket: String,
        prefix: String,
        options: &S3Options,
    ) -> Result<S3Store, StoreError> {
        let invalid = |reason: String| StoreError::Invalid {
            what: format!("s3://{bucket}/{prefix}"),
            reason,
            accepted: "an endpoint URL (http:// or https://), a region, an access key id and its secret",
        };
        let mut client_options = ClientOptions::new()
            .with_timeout(options.request_timeout)
            .with_connect_timeout(Duration::from_secs(10));
        let addressing = options.addressing(&bucket);
        let endpoint = options.checked_endpoint(&bucket).map_err(invalid)?;
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&bucket)
            .with_region(
                options
                    .region
                    .clone()
                    .unwrap_or_else(|| crate::location::DEFAULT_REGION.into()),
            )
            .with_virtual_hosted_style_request(addressing == Addressing::VirtualHost)
            // Our own failure policy retries whole runs (behaviour §9.1); the
            // client's retries stay short so that an unreachable store fails
            // in seconds, with its message.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: Duration::from_secs(20),
            });
        if let Some(endpoint) = endpoint {
            if endpoint
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
            {
                client_options = client_options.with_allow_http(true);
            }
            b = b.with_endpoint(endpoint);
        }
        match (&options.access_key_id, &options.secret_access_key) {
            (Some(id), Some(secret)) => {
                b = b.with_access_key_id(id).with_secret_access_key(secret);
                if let Some(t) = &options.session_token {
                    b = b.with_token(t);
                }
            }
            (None, None) => {
                return Err(invalid(
                    "no credentials: set access_key_id_env and secret_access_key_env in [destination] of sauve.toml, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
                ));
            }
            _ => {
                return Err(invalid(
                    "an access key id needs its secret, and a secret its id".into(),
                ));
            }
        }
        let client = b
            .with_client_options(client_options)
            .build()
            .map_err(|e| invalid(chain(&e)))?;
        let asked = format!(
            "requests to {}/{prefix}, {addressing}",
            options.bucket_url(&bucket)
        );
        Ok(S3Store {
            client: Arc::new(client),
            bucket,
            prefix,
            parts_in_flight: options.parts_in_flight.max(1),
            asked: asked.into(),
        })
    }

    fn path(&self, key: &str) -> Result<ObjPath, StoreError> {
        ObjPath::parse(format!("{}{key}", self.prefix)).map_err(|e| StoreError::Invalid {
            what: format!("key {key:?}"),
            reason: chain(&e),
            accepted: "names separated by /, without control characters, . or ..",
        })
    }

    /// A write's error: there, "not found" can only be the bucket's.
    fn write_error(&self, key: &str, e: &object_store::Error) -> StoreError {
        bucket_missing(
            self.error("cannot upload", key, e),
            &self.shown(),
            &self.bucket,
        )
    }

    /// The store's answer as an error naming the store, where the request
    /// went and how it named the bucket: "bucket does not exist" is then
    /// never a riddle.
    fn error(&self, action: &'static str, key: &str, e: &object_store::Error) -> StoreError {
        map_error(&self.shown(), &self.bucket, action, key, e)
    }

    /// The crash or fault point before a durable request on `key` (see
    /// sauve-durable's `fault`: nothing outside a `fault-points` build). The
    /// object is named `s3://bucket/prefix/key`; a fault is a failed request.
    fn point(&self, step: Step, action: &'static str, key: &str) -> Result<(), StoreError> {
        let url = format!("s3://{}/{}{key}", self.bucket, self.prefix);
        fault::point(step, std::path::Path::new(&url)).map_err(|e| StoreError::Failed {
            store: self.describe(),
            action,
            key: key.to_owned(),
            message: e.to_string(),
        })
    }

    /// The store as its errors name it: `s3://bucket/prefix/ (requests to …, path-style)`.
    fn shown(&self) -> String {
        format!("{} ({})", self.describe(), self.asked)
    }
}

/// The error and its causes, as one line: the store's own message is deep in the chain.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn map_error(
    store: &str,
    bucket: &str,
    action: &'static str,
    key: &str,
    e: &object_store::Error,
) -> StoreError {
    use object_store::Error as E;
    let message = chain(e);
    match e {
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => StoreError::Denied {
            store: store.to_owned(),
            bucket: bucket.to_owned(),
            message,
        },
        E::AlreadyExists { .. } | E::Precondition { .. } => StoreError::Exists {
            store: store.to_owned(),
            key: key.to_owned(),
        },
        E::NotFound { .. } if message.contains("NoSuchBucket") => StoreError::NoBucket {
            store: store.to_owned(),
            bucket: bucket.to_owned(),
            message,
        },
        E::NotFound { .. } => StoreError::NotFound {
            store: store.to_owned(),
            key: key.to_owned(),
        },
        _ if message.contains("InvalidAccessKeyId")
            || message.contains("SignatureDoesNotMatch")
            || message.contains("AccessDenied")
            || message.contains("Forbidden") =>
        {
            StoreError::Denied {
                store: store.to_owned(),
                bucket: bucket.to_owned(),
                message,
            }
        }
        _ if message.contains("NoSuchBucket") => StoreError::NoBucket {
            store: store.to_owned(),
            bucket: bucket.to_owned(),
            message,
        },
        _ => StoreError::Failed {
            store: store.to_owned(),
            action,
            key: key.to_owned(),
            message,
        },
    }
}

/// On a write, "not found" can only be the bucket's.
fn bucket_missing(e: StoreError, store: &str, bucket: &str) -> StoreError {
    match e {
        StoreError::NotFound { .. } => StoreError::NoBucket {
            store: store.to_owned(),
            bucket: bucket.to_owned(),
            message: "the store answered 404 Not Found to a write".into(),
        },
        other => other,
    }
}

/// The objects of a listing (`(location, size)`) whose key, the location
/// less `store_prefix`, starts with `prefix`, sorted by key; `None` when
/// more than `cap` of them match.
///
/// The listing is recursive under the prefix's folder, so it also names
/// whatever else the bucket keeps there (other apps' sets, other tools'
/// objects), in any number: only the matches are counted and kept, which
/// bounds the memory a listing takes without making sauve's own listings
/// fail because of a bucket's other contents.
async fn matching<E>(
    mut listed: impl futures_util::Stream<Item = Result<(String, u64), E>> + Unpin,
    store_prefix: &str,
    prefix: &str,
    cap: usize,
) -> Result<Option<Vec<ObjectInfo>>, E> {
    let mut out = Vec::new();
    while let Some(item) = listed.next().await {
        let (location, size) = item?;
        if let Some(key) = location.strip_prefix(store_prefix)
            && key.starts_with(prefix)
        {
            if out.len() == cap {
                return Ok(None);
            }
            out.push(ObjectInfo {
                key: key.to_owned(),
                size,
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Some(out))
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        // object_store lists by folder; the rest of the prefix is a filter.
        let folder = match format!("{}{prefix}", self.prefix).rsplit_once('/') {
            Some((dir, _)) => dir.to_owned(),
            None => String::new(),
        };
        let dir = ObjPath::parse(&folder).map_err(|e| StoreError::Invalid {
            what: format!("prefix {prefix:?}"),
            reason: chain(&e),
            accepted: "names separated by /",
        })?;
        let listed = if folder.is_empty() {
            self.client.list(None)
        } else {
            self.client.list(Some(&dir))
        };
        let listed = listed.map(|item| item.map(|meta| (String::from(meta.location), meta.size)));
        match matching(listed, &self.prefix, prefix, crate::MAX_LISTED).await {
            Ok(Some(out)) => Ok(out),
            Ok(None) => Err(StoreError::Hostile {
                store: self.describe(),
                key: prefix.to_owned(),
                what: format!(
                    "the listing names more than {} objects under this prefix",
                    crate::MAX_LISTED
                ),
            }),
            Err(e) => {
                let mapped = self.error("cannot list", prefix, &e);
                // Listing a bucket that does not exist answers 404.
                Err(bucket_missing(mapped, &self.shown(), &self.bucket))
            }
        }
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StoreError> {
        let path = self.path(key)?;
        match self.client.head(&path).await {
            Ok(meta) => Ok(Some(ObjectInfo {
                key: key.to_owned(),
                size: meta.size,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("cannot read", key, &e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let got = match self.client.get(&path).await {
            Ok(g) => g,
            Err(e) => return Err(self.error("cannot download", key, &e)),
        };
        got.bytes()
            .await
            .map_err(|e| self.error("cannot download", key, &e))
    }

    async fn get_bounded(&self, key: &str, limit: u64) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let got = match self.client.get(&path).await {
            Ok(g) => g,
            Err(e) => return Err(self.error("cannot download", key, &e)),
        };
        let too_large = |size: u64| StoreError::Hostile {
            store: self.describe(),
            key: key.to_owned(),
            what: format!("{size} bytes or more, past the {limit} bytes sauve reads of it"),
        };
        if got.meta.size > limit {
            return Err(too_large(got.meta.size));
        }
        // The body is counted as it comes: a store may send more than it said.
        let mut body = Vec::new();
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| self.error("cannot download", key, &e))?;
            let size = (body.len() + chunk.len()) as u64;
            if size > limit {
                return Err(too_large(size));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        self.client
            .get_range(&path, range)
            .await
            .map_err(|e| self.error("cannot download", key, &e))
    }

    async fn put_new(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        if self.head(key).await?.is_some() {
            return Err(StoreError::Exists {
                store: self.describe(),
                key: key.to_owned(),
            });
        }
        let path = self.path(key)?;
        self.point(Step::Create, "cannot upload", key)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.client
            .put_opts(&path, PutPayload::from_bytes(data), opts)
            .await
            .map(drop)
            .map_err(|e| self.write_error(key, &e))
    }

    async fn put_replace(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        self.point(Step::Rename, "cannot upload", key)?;
        self.client
            .put(&path, PutPayload::from_bytes(data))
            .await
            .map(drop)
            .map_err(|e| self.write_error(key, &e))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        self.point(Step::Unlink, "cannot remove", key)?;
        match self.client.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("cannot remove", key, &e)),
        }
    }

    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>, StoreError> {
        if self.head(key).await?.is_some() {
            return Err(StoreError::Exists {
                store: self.describe(),
                key: key.to_owned(),
            });
        }
        let path = self.path(key)?;
        self.point(Step::Create, "cannot upload", key)?;
        let id = self
            .client
            .create_multipart(&path)
            .await
            .map_err(|e| self.write_error(key, &e))?;
        Ok(Box::new(S3Upload {
            store: self.clone(),
            key: key.to_owned(),
            path,
            id: Some(id),
            in_flight: JoinSet::new(),
            done: Vec::new(),
            next: 0,
            size: 0,
        }))
    }
}

type PartResult = Result<(usize, PartId), object_store::Error>;

/// A multipart upload: invisible until completed, aborted when dropped.
struct S3Upload {
    store: S3Store,
    key: String,
    path: ObjPath,
    /// Unset once completed or aborted.
    id: Option<MultipartId>,
    in_flight: JoinSet<PartResult>,
    done: Vec<(usize, PartId)>,
    next: usize,
    size: u64,
}

impl S3Upload {
    fn error(&self, action: &'static str, e: &object_store::Error) -> StoreError {
        self.store.error(action, &self.key, e)
    }

    async fn wait_one(&mut self) -> Result<(), StoreError> {
        match self.in_flight.join_next().await {
            Some(Ok(Ok(part))) => {
                self.done.push(part);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(self.error("cannot upload", &e)),
            Some(Err(join)) => Err(StoreError::Failed {
                store: self.store.describe(),
                action: "cannot upload",
                key: self.key.clone(),
                message: join.to_string(),
            }),
            None => Ok(()),
        }
    }

    async fn abort_now(&mut self) -> Result<(), StoreError> {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        if let Some(id) = self.id.take() {
            self.store
                .client
                .abort_multipart(&self.path, &id)
                .await
                .map_err(|e| self.error("cannot abort the upload of", &e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Upload for S3Upload {
    fn key(&self) -> &str {
        &self.key
    }

    async fn put_part(&mut self, data: Bytes) -> Result<(), StoreError> {
        let Some(id) = self.id.clone() else {
            return Err(StoreError::Failed {
                store: self.store.describe(),
                action: "cannot upload",
                key: self.key.clone(),
                message: "the upload is finished".into(),
            });
        };
        while self.in_flight.len() >= self.store.parts_in_flight {
            self.wait_one().await?;
        }
        self.store.point(Step::Write, "cannot upload", &self.key)?;
        let idx = self.next;
        self.next += 1;
        self.size += data.len() as u64;
        let client = Arc::clone(&self.store.client);
        let path = self.path.clone();
        self.in_flight.spawn(async move {
            client
                .put_part(&path, &id, idx, PutPayload::from_bytes(data))
                .await
                .map(|p| (idx, p))
        });
        Ok(())
    }

    async fn settle(&mut self) -> Result<(), StoreError> {
        while !self.in_flight.is_empty() {
            if let Err(e) = self.wait_one().await {
                let _ = self.abort_now().await;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<u64, StoreError> {
        self.settle().await?;
        // Never overwrite, whether or not the store honours conditions.
        match self.store.head(&self.key).await {
            Ok(None) => {}
            Ok(Some(_)) => {
                let _ = self.abort_now().await;
                return Err(StoreError::Exists {
                    store: self.store.describe(),
                    key: self.key.clone(),
                });
            }
            Err(e) => {
                let _ = self.abort_now().await;
                return Err(e);
            }
        }
        let Some(id) = self.id.take() else {
            return Err(StoreError::Failed {
                store: self.store.describe(),
                action: "cannot complete",
                key: self.key.clone(),
                message: "the upload is finished".into(),
            });
        };
        if let Err(e) = self
            .store
            .point(Step::Link, "cannot complete the upload of", &self.key)
        {
            self.id = Some(id);
            let _ = self.abort_now().await;
            return Err(e);
        }
        self.done.sort_by_key(|(i, _)| *i);
        let parts: Vec<PartId> = std::mem::take(&mut self.done)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        let answer = match self
            .store
            .client
            .complete_multipart(&self.path, &id, parts)
            .await
        {
            // The answer received (a fault point: a fault there is an
            // answer lost after the store applied the completion).
            Ok(_) => self
                .store
                .point(Step::Sync, "cannot complete the upload of", &self.key),
            Err(e) => Err(self.error("cannot complete the upload of", &e)),
        };
        match answer {
            Ok(()) => Ok(self.size),
            Err(err) => {
                // The answer may be lost after the store applied it: the
                // key was free just before, so an object of this size
                // there now is this upload's.
                if let Ok(Some(o)) = self.store.head(&self.key).await
                    && o.size == self.size
                {
                    return Ok(self.size);
                }
                self.id = Some(id);
                let _ = self.abort_now().await;
                Err(err)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.abort_now().await
    }
}

impl Drop for S3Upload {
    /// An upload dropped unfinished (an error, a Stop, a panic) is aborted
    /// in the background when a runtime is there. An unfinished multipart
    /// upload is invisible in any case; one left by a killed process keeps
    /// its parts until the bucket's lifecycle rule for incomplete uploads
    /// removes them (object_store cannot list them).
    fn drop(&mut self) {
        self.in_flight.abort_all();
        if let Some(id) = self.id.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let client = Arc::clone(&self.store.client);
            let path = self.path.clone();
            rt.spawn(async move {
                let _ = client.abort_multipart(&path, &id).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Listed = Result<(String, u64), std::convert::Infallible>;

    fn listing(names: &[&str]) -> futures_util::stream::Iter<std::vec::IntoIter<Listed>> {
        let items: Vec<Listed> = names.iter().map(|n| Ok(((*n).to_owned(), 1))).collect();
        futures_util::stream::iter(items)
    }

    fn keys(out: Option<Vec<ObjectInfo>>) -> Option<Vec<String>> {
        out.map(|o| o.into_iter().map(|i| i.key).collect())
    }

    #[tokio::test]
    async fn only_the_objects_that_match_count_toward_the_listings_bound() {
        // Found in review: the bound counted every object of the recursive
        // listing, so a bucket holding more unrelated objects under sauve's
        // folder than the bound made every listing fail.
        let mut names = vec!["apps/notes/App[0002].4BK", "apps/notes/App[0001].4BK"];
        let others: Vec<String> = (0..50)
            .map(|i| format!("apps/notes/Other[{i:04}].4BK"))
            .chain((0..50).map(|i| format!("elsewhere/{i}")))
            .collect();
        names.extend(others.iter().map(String::as_str));
        let found = matching(listing(&names), "apps/notes/", "App[", 2)
            .await
            .unwrap();
        assert_eq!(
            keys(found),
            Some(vec!["App[0001].4BK".to_owned(), "App[0002].4BK".to_owned()])
        );
        // One match past the bound is refused, however few the others.
        let three = [
            "apps/notes/App[0001].4BK",
            "apps/notes/App[0002].4BK",
            "apps/notes/App[0003].4BK",
        ];
        let found = matching(listing(&three), "apps/notes/", "App[", 2)
            .await
            .unwrap();
        assert_eq!(keys(found), None);
    }

    #[test]
    fn an_endpoint_that_cannot_carry_the_bucket_is_refused_never_a_panic() {
        // Found in a test: virtual-host style on an IP endpoint made a URL
        // the client could not parse, and it panicked at each request.
        let options = |endpoint: &str, path_style| S3Options {
            endpoint: Some(endpoint.to_owned()),
            path_style,
            access_key_id: Some("id".into()),
            secret_access_key: Some("secret".into()),
            ..S3Options::new()
        };
        for endpoint in ["http://127.0.0.1:3900", "http://[::1]:3900"] {
            let err = S3Store::open(
                "backups".into(),
                String::new(),
                &options(endpoint, Some(false)),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("path_style = true"), "{err}");
            assert!(err.contains("not a host name"), "{err}");
            // Path-style, the default for it, is fine.
            assert!(
                S3Store::open("backups".into(), String::new(), &options(endpoint, None)).is_ok()
            );
        }
        let err = S3Store::open(
            "backups".into(),
            String::new(),
            &options("http://a b", None),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is not a URL"), "{err}");
    }
}
