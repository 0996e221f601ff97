//! Bodies too large for one item, kept as S3 objects beside the table (feature `s3`).
//!
//! The object is written before the item that points at it, so a visible item never names an
//! object that was not there; its key carries the entry's revision
//! (`{prefix}{item key}/{revision}`), so a pointer never reads the bytes of another revision's
//! object. The item records the body's size and SHA-256, which S3 also checks on upload
//! (`x-amz-checksum-sha256`). A lookup sends GetObject and checks the size and SHA-256 S3
//! reports for the object before the entry is a hit, so an object replaced or truncated behind
//! the cache's back is a miss ([`StoreError::Corrupt`]); the body then streams to the caller,
//! checked again as it arrives, and a body that still is not the recorded one ends with an
//! error, never complete.
//!
//! A pointer is read from an item anyone may have written: the store follows it only when it
//! names exactly the object this store would have written for that key and revision, in its own
//! bucket, of a size within its limit. Otherwise nothing is read (or deleted) and the item is
//! a miss, overwritten by the next write.
//!
//! Objects of replaced, invalidated and deleted entries are deleted after the item changed
//! (best effort, in the background: counted, and logged when it fails); a lifecycle rule on
//! the prefix removes whatever is left, since DynamoDB's TTL cannot reach S3.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::codec::{self, BodyObject, Item};
use crate::deferred::{BodySource, Deferred};
use crate::StoreError;

/// The default ceiling on a body kept as an object: 32 MiB.
const DEFAULT_MAX_OBJECT_BODY: usize = 32 << 20;
/// The default prefix of the objects' keys.
const DEFAULT_PREFIX: &str = "http-cache/";

/// Where a [`DynamoDbStore`](crate::DynamoDbStore) keeps bodies too large for one item: a bucket,
/// a key prefix, and a ceiling (feature `s3`). Give it to
/// [`DynamoDbStoreBuilder::large_bodies`](crate::DynamoDbStoreBuilder::large_bodies).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use reqwest_dynamodb_cache::{DynamoDbStore, S3Bodies};
/// let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let store = DynamoDbStore::builder()
///     .table_name("http_cache")
///     .large_bodies(S3Bodies::new(aws_sdk_s3::Client::new(&aws), "my-http-cache-bodies"))
///     .build(&aws)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct S3Bodies {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    max_body_size: usize,
}

impl S3Bodies {
    /// Bodies in `bucket`, through `client`, under the prefix `http-cache/`, up to 32 MiB.
    ///
    /// The middleware keeps a copy of a body up to this size in memory while it streams the
    /// body to the caller (one per concurrent miss). A hit streams the object; a stale entry
    /// (before revalidation), several ranges and a write of a revalidated entry read it whole
    /// within the request's store budget
    /// ([`store_timeout`](crate::CacheMiddlewareBuilder::store_timeout), 1 s by default): raise
    /// the timeout with the ceiling.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Bodies {
            client,
            bucket: bucket.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            max_body_size: DEFAULT_MAX_OBJECT_BODY,
        }
    }

    /// The prefix of every object key (`{prefix}{item key}/{revision}`, where the item key is
    /// `{namespace}:{key}` with a namespace). Default `"http-cache/"`. Give the bucket's
    /// lifecycle rule the same prefix. At most 512 bytes.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The largest body kept as an object, in bytes; larger bodies stream through to the
    /// caller unstored. Default 32 MiB; zero is refused.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// What cannot work, said before any call.
    pub(super) fn invalid(&self) -> Option<(&'static str, &'static str)> {
        let b = &self.bucket;
        let bucket_ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
            && b.starts_with(|c: char| c.is_ascii_alphanumeric())
            && b.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Some((
                "large_bodies",
                "S3Bodies needs a bucket name S3 allows: 3 to 63 characters of a-z, 0-9, `.` \
                 and `-`, beginning and ending with a letter or digit",
            ));
        }
        if self.prefix.len() > 512 {
            return Some((
                "large_bodies",
                "S3Bodies::prefix must be at most 512 bytes (an object key is at most 1,024)",
            ));
        }
        if self.max_body_size == 0 {
            return Some((
                "large_bodies",
                "S3Bodies::max_body_size must be more than zero (the default is 32 MiB)",
            ));
        }
        None
    }
}

/// What a store's S3 calls have done, from
/// [`DynamoDbStore::object_traffic`](crate::DynamoDbStore::object_traffic) (feature `s3`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ObjectTraffic {
    /// PutObject calls that succeeded.
    pub puts: u64,
    /// GetObject calls that succeeded.
    pub gets: u64,
    /// Objects deleted (those of replaced, invalidated, deleted, purged or cleared entries).
    pub deletes: u64,
    /// Bytes written with PutObject.
    pub bytes_written: u64,
    /// Bytes read with GetObject.
    pub bytes_read: u64,
    /// Entries whose object was missing: misses, overwritten by the next write.
    pub missing: u64,
    /// Entries whose object did not match the size or SHA-256 its item records, or whose item
    /// named an object this store would not have written: misses, overwritten.
    pub mismatched: u64,
    /// Deletes that failed (left to the bucket's lifecycle rule).
    pub delete_failures: u64,
}

/// The bucket, and what its calls have done.
#[derive(Debug)]
pub(super) struct Objects {
    config: S3Bodies,
    puts: AtomicU64,
    gets: AtomicU64,
    deletes: AtomicU64,
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
    missing: AtomicU64,
    mismatched: AtomicU64,
    delete_failures: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Relaxed, Relaxed, |c| Some(c.saturating_add(n)));
}

#[cfg(feature = "metrics")]
fn export(name: &'static str, n: u64) {
    metrics::counter!(name).increment(n);
}

#[cfg(not(feature = "metrics"))]
fn export(_: &'static str, _: u64) {}

impl Objects {
    pub(super) fn new(config: S3Bodies) -> Self {
        Objects {
            config,
            puts: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            missing: AtomicU64::new(0),
            mismatched: AtomicU64::new(0),
            delete_failures: AtomicU64::new(0),
        }
    }

    pub(super) fn max_body_size(&self) -> usize {
        self.config.max_body_size
    }

    pub(super) fn traffic(&self) -> ObjectTraffic {
        ObjectTraffic {
            puts: self.puts.load(Relaxed),
            gets: self.gets.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
            missing: self.missing.load(Relaxed),
            mismatched: self.mismatched.load(Relaxed),
            delete_failures: self.delete_failures.load(Relaxed),
        }
    }

    /// The object key of the entry of `revision` under `item_key`: the only object this store
    /// ever reads or deletes for that item.
    fn object_key(&self, item_key: &str, revision: u64) -> String {
        format!("{}{item_key}/{revision}", self.config.prefix)
    }

    fn failed<E>(&self, operation: &'static str) -> impl FnOnce(E) -> StoreError + '_
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| StoreError::ObjectService {
            operation,
            bucket: self.config.bucket.clone(),
            code: e.code().map(str::to_owned),
            source: Box::new(e),
        }
    }

    /// Writes `body` as the object of the entry of `revision` under `item_key`, with its
    /// SHA-256 for S3 to check; the pointer its item is to hold.
    pub(super) async fn put(
        &self,
        item_key: &str,
        revision: u64,
        body: &Bytes,
    ) -> Result<BodyObject, StoreError> {
        let sha256: [u8; 32] = Sha256::digest(body).into();
        let key = self.object_key(item_key, revision);
        self.config
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(&key)
            .content_type("application/octet-stream")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(aws_smithy_types::base64::encode(sha256))
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .map_err(self.failed("PutObject"))?;
        add(&self.puts, 1);
        add(&self.bytes_written, body.len() as u64);
        export("http_cache_s3_puts_total", 1);
        export("http_cache_s3_bytes_written_total", body.len() as u64);
        Ok(BodyObject::new(
            self.config.bucket.clone(),
            key,
            body.len() as u64,
            sha256,
        ))
    }

    /// Whether `pointer`, read from the item of `revision` under `item_key`, names the object
    /// this store would have written for it.
    fn is_ours(&self, item_key: &str, revision: u64, pointer: &BodyObject) -> bool {
        is_item_key(item_key)
            && pointer.bucket == self.config.bucket
            && pointer.key == self.object_key(item_key, revision)
            && pointer.size <= self.config.max_body_size as u64
            // S3 itself keeps `.` and `..` as they are, but some S3-compatible services resolve
            // them, which would put the key under another prefix.
            && !pointer.key.split('/').any(|segment| segment == "." || segment == "..")
    }

    fn mismatch(&self, why: &'static str) -> StoreError {
        add(&self.mismatched, 1);
        export("http_cache_s3_mismatched_total", 1);
        StoreError::Corrupt(why.to_owned())
    }

    /// The body `pointer` names, for the item of `revision` under `item_key`: GetObject is
    /// sent and its answer's header fields checked before this returns, and the body then
    /// streams as it is read, checked again as it arrives (see [`Checked`]). A pointer that is
    /// not this store's, an object that is missing, or whose size or SHA-256 (as S3 reports
    /// them) are not the item's: [`StoreError::Corrupt`] (a miss). S3 failing:
    /// [`StoreError::ObjectService`].
    pub(super) async fn open(
        self: &Arc<Self>,
        item_key: &str,
        revision: u64,
        pointer: &BodyObject,
    ) -> Result<Deferred, StoreError> {
        let first = self.get_checked(item_key, revision, pointer).await?;
        let source = ObjectBody {
            etag: first.etag.clone(),
            objects: self.clone(),
            item_key: item_key.to_owned(),
            revision,
            pointer: pointer.clone(),
            first: Mutex::new(Some(first)),
        };
        Ok(Deferred::new(pointer.size, Arc::new(source)))
    }

    /// GetObject of `pointer`'s object, its header fields checked: the body, still unread, and
    /// the object's ETag (to resume it).
    async fn get_checked(
        &self,
        item_key: &str,
        revision: u64,
        pointer: &BodyObject,
    ) -> Result<Opened, StoreError> {
        if !self.is_ours(item_key, revision, pointer) {
            return Err(self.mismatch(
                "the item names an object this store did not write for it (another bucket, \
                 key or revision, or over the size limit)",
            ));
        }
        let got = self
            .config
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(&pointer.key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                add(&self.missing, 1);
                export("http_cache_s3_missing_total", 1);
                return Err(StoreError::Corrupt(
                    "the entry's S3 object is missing".to_owned(),
                ));
            }
            Err(e) => return Err(self.failed("GetObject")(e)),
        };
        self.count_get();
        if out.content_length().map(u64::try_from) != Some(Ok(pointer.size)) {
            return Err(self.mismatch("the entry's S3 object is not the size its item records"));
        }
        // The object this store wrote carries the SHA-256 it was written with; one replaced
        // behind the cache's back carries another, or none. Known before any byte is served.
        let recorded = aws_smithy_types::base64::encode(pointer.sha256);
        if out.checksum_sha256() != Some(recorded.as_str()) {
            return Err(
                self.mismatch("the entry's S3 object does not carry the SHA-256 its item records")
            );
        }
        Ok(Opened {
            etag: out.e_tag().map(str::to_owned),
            body: out.body,
        })
    }

    /// Bytes `first..` (to `last`, inclusive, when given) of `pointer`'s object, on condition
    /// that the object is still the one of ETag `etag` (the one the lookup checked): the body,
    /// unread. Not every S3-compatible service honours If-Match, so the answer must also say
    /// itself that it is that object, and the bytes asked for.
    async fn get_span(
        &self,
        pointer: &BodyObject,
        first: u64,
        last: Option<u64>,
        etag: &str,
    ) -> Result<ByteStream, StoreError> {
        let last_byte = last.unwrap_or(pointer.size.saturating_sub(1));
        if last_byte >= pointer.size || first > last_byte {
            return Err(StoreError::Corrupt(
                "a range outside the entry's body".into(),
            ));
        }
        let range = match last {
            Some(last) => format!("bytes={first}-{last}"),
            None => format!("bytes={first}-"),
        };
        let out = self
            .config
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(&pointer.key)
            .range(range)
            .if_match(etag)
            .send()
            .await
            .map_err(self.failed("GetObject"))?;
        self.count_get();
        if out.e_tag() != Some(etag)
            || out.content_length().map(u64::try_from) != Some(Ok(last_byte - first + 1))
            || !starts_at(out.content_range(), first)
        {
            return Err(self.mismatch("a range of the entry's S3 object is another object's"));
        }
        Ok(out.body)
    }

    /// Bytes `first..=last` of `pointer`'s object, read by themselves ([`get_span`](Self::get_span)).
    async fn get_range(
        &self,
        pointer: &BodyObject,
        first: u64,
        last: u64,
        etag: &str,
    ) -> Result<Bytes, StoreError> {
        let body = self.get_span(pointer, first, Some(last), etag).await?;
        let bytes = body
            .collect()
            .await
            .map_err(|e| self.read_failed(e))?
            .into_bytes();
        self.count_read(bytes.len());
        if bytes.len() as u64 != last - first + 1 {
            return Err(self.mismatch("a range of the entry's S3 object is not the size asked"));
        }
        Ok(bytes)
    }

    /// A GetObject counted.
    fn count_get(&self) {
        add(&self.gets, 1);
        export("http_cache_s3_gets_total", 1);
    }

    /// `n` bytes of object bodies read, counted.
    fn count_read(&self, n: usize) {
        add(&self.bytes_read, n as u64);
        export("http_cache_s3_bytes_read_total", n as u64);
    }

    /// An object's body that failed as it was read (a reset, a cut).
    fn read_failed(&self, e: aws_sdk_s3::primitives::ByteStreamError) -> StoreError {
        StoreError::ObjectService {
            operation: "GetObject",
            bucket: self.config.bucket.clone(),
            code: None,
            source: Box::new(e),
        }
    }

    /// The body `pointer` names, read whole and checked (for maintenance).
    pub(super) async fn read(
        self: &Arc<Self>,
        item_key: &str,
        revision: u64,
        pointer: &BodyObject,
    ) -> Result<Bytes, StoreError> {
        self.open(item_key, revision, pointer).await?.read().await
    }

    /// The object the item `old` (as it was before a write under `item_key`) pointed at, if
    /// this store wrote it, unless it is `keep` (the object the write itself points at).
    pub(super) fn retired(&self, item_key: &str, old: &Item, keep: Option<&str>) -> Option<String> {
        let revision = match old.get(codec::REVISION_ATTR) {
            Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().ok()?,
            _ => return None,
        };
        let pointer = old
            .get(codec::OBJECT_ATTR)
            .cloned()
            .and_then(|v| BodyObject::from_attribute(v).ok())?;
        (self.is_ours(item_key, revision, &pointer) && keep != Some(pointer.key.as_str()))
            .then_some(pointer.key)
    }

    /// Deletes the object `key`, counting the outcome; a failure is logged and left to the
    /// lifecycle rule.
    pub(super) async fn delete(&self, key: &str) {
        let deleted = self
            .config
            .client
            .delete_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await;
        match deleted {
            Ok(_) => {
                add(&self.deletes, 1);
                export("http_cache_s3_deletes_total", 1);
            }
            Err(e) => {
                add(&self.delete_failures, 1);
                export("http_cache_s3_delete_failures_total", 1);
                let e = self.failed("DeleteObject")(e);
                tracing::warn!(error = %e, "an unused object was not deleted; the bucket's lifecycle rule will");
            }
        }
    }

    /// The object key of a listed item's pointer, when this store wrote it (for maintenance).
    pub(super) fn listed_object(&self, item: &Item) -> Option<String> {
        let key = match item.get(codec::KEY_ATTR) {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(k)) => k.clone(),
            _ => return None,
        };
        self.retired(&key, item, None)
    }
}

/// Whether `item_key` has the shape of the keys this crate writes: 64 lowercase hex digits,
/// after `{namespace}:` when there is one. Maintenance without a namespace lists any item, and
/// an item written by someone else may have any key: no object key is made from another.
fn is_item_key(item_key: &str) -> bool {
    let Some(split) = item_key.len().checked_sub(64) else {
        return false;
    };
    let (namespace, key) = item_key.split_at_checked(split).unwrap_or(("", ""));
    key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && key.len() == 64
        && (namespace.is_empty() || namespace.ends_with(':'))
}

/// An entry's body in S3, as a [`Deferred`] reads it: the GetObject the lookup opened first,
/// a new one for each later read.
struct ObjectBody {
    objects: Arc<Objects>,
    item_key: String,
    revision: u64,
    pointer: BodyObject,
    first: Mutex<Option<Opened>>,
    /// The ETag of the object the lookup checked: later reads are of that object only.
    etag: Option<String>,
}

/// A GetObject answer whose header fields were checked.
struct Opened {
    body: ByteStream,
    etag: Option<String>,
}

/// How many times a body cut midway is resumed (each time from where it was cut).
const RESUMES: u32 = 2;

impl BodySource for ObjectBody {
    fn stream(&self, idle: Option<Duration>) -> BoxStream<'static, Result<Bytes, StoreError>> {
        let first = self
            .first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let checked = Checked {
            objects: self.objects.clone(),
            item_key: self.item_key.clone(),
            revision: self.revision,
            pointer: self.pointer.clone(),
            etag: first.as_ref().and_then(|f| f.etag.clone()),
            body: first.map(|f| f.body),
            resumes: RESUMES,
            idle,
            hasher: Sha256::new(),
            read: 0,
            held: None,
            done: false,
        };
        futures_util::stream::unfold(checked, Checked::next).boxed()
    }

    fn range(
        &self,
        first: u64,
        last: u64,
        idle: Duration,
    ) -> BoxFuture<'static, Result<Bytes, StoreError>> {
        let (objects, pointer, etag) = (
            self.objects.clone(),
            self.pointer.clone(),
            self.etag.clone(),
        );
        Box::pin(async move {
            // Without the checked object's ETag nothing ties a range to it.
            let etag = etag.ok_or_else(|| {
                StoreError::Corrupt("the entry's S3 object has no ETag to read a range of".into())
            })?;
            within(Some(idle), objects.get_range(&pointer, first, last, &etag)).await
        })
    }
}

/// An object's body as it is read, checked: its length against the item's size as each chunk
/// arrives, and its SHA-256 against the item's at the end. The SDK validates the first
/// GetObject against the checksum S3 reports too, but not a resumed (ranged) read: the cache
/// hashes every byte itself, whatever read it came from (about 5 % of a 10 MB hit). One
/// chunk is always held back until the next arrives (or the end is checked), so a body that is
/// not the recorded one ends with an error and never with its last byte: a caller can never
/// take it for complete. A body cut midway (a reset, a stall) is resumed from where it was
/// cut, at most [`RESUMES`] times, only while the object is the one the lookup checked (its
/// ETag, `If-Match`); past that, the body ends with the error.
struct Checked {
    objects: Arc<Objects>,
    item_key: String,
    revision: u64,
    pointer: BodyObject,
    /// The GetObject body; `None` until opened.
    body: Option<ByteStream>,
    /// The object's ETag, once opened.
    etag: Option<String>,
    resumes: u32,
    /// The longest wait for S3 (a chunk, a request), if bounded.
    idle: Option<Duration>,
    hasher: Sha256,
    read: u64,
    held: Option<Bytes>,
    done: bool,
}

impl Checked {
    async fn next(mut self) -> Option<(Result<Bytes, StoreError>, Checked)> {
        loop {
            if self.done {
                return self.held.take().map(|chunk| (Ok(chunk), self));
            }
            let idle = self.idle;
            let body = match self.body.as_mut() {
                Some(body) => body,
                None => {
                    let opened =
                        self.objects
                            .get_checked(&self.item_key, self.revision, &self.pointer);
                    match within(idle, opened).await {
                        Ok(opened) => {
                            self.etag = opened.etag;
                            self.body.insert(opened.body)
                        }
                        Err(e) => return self.fail(e),
                    }
                }
            };
            let objects = &self.objects;
            let next = within(idle, async {
                let chunk = body.next().await;
                chunk
                    .map(|c| c.map_err(|e| objects.read_failed(e)))
                    .transpose()
            })
            .await
            .transpose();
            match next {
                Some(Ok(chunk)) => {
                    self.read = self.read.saturating_add(chunk.len() as u64);
                    self.objects.count_read(chunk.len());
                    if self.read > self.pointer.size {
                        let e = self
                            .objects
                            .mismatch("the entry's S3 object is longer than its item records");
                        return self.fail(e);
                    }
                    self.hasher.update(&chunk);
                    if let Some(previous) = self.held.replace(chunk) {
                        return Some((Ok(previous), self));
                    }
                }
                Some(Err(e)) => match (self.resumes, self.etag.clone()) {
                    (1.., Some(etag)) if self.read < self.pointer.size => {
                        self.resumes -= 1;
                        tracing::debug!(error = %e, read = self.read, "an object's body was cut or stalled; resuming");
                        let rest = self.objects.get_span(&self.pointer, self.read, None, &etag);
                        match within(idle, rest).await {
                            Ok(rest) => self.body = Some(rest),
                            Err(e) => return self.fail(e),
                        }
                    }
                    _ => return self.fail(e),
                },
                None => {
                    let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
                    if self.read != self.pointer.size || digest != self.pointer.sha256 {
                        let e = self.objects.mismatch(
                            "the entry's S3 object does not match the size and SHA-256 its \
                             item records",
                        );
                        return self.fail(e);
                    }
                    self.done = true;
                }
            }
        }
    }

    /// Ends the stream with `e`, dropping what is held back.
    fn fail(mut self, e: StoreError) -> Option<(Result<Bytes, StoreError>, Checked)> {
        self.done = true;
        self.held = None;
        Some((Err(e), self))
    }
}

/// `fut`, within `idle` when given: past it, [`StoreError::Timeout`].
async fn within<T>(
    idle: Option<Duration>,
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match idle {
        Some(idle) => tokio::time::timeout(idle, fut)
            .await
            .unwrap_or(Err(StoreError::Timeout(idle))),
        None => fut.await,
    }
}

/// Whether a ranged answer's `Content-Range` (`bytes {first}-{last}/{len}`) begins at `from`.
fn starts_at(content_range: Option<&str>, from: u64) -> bool {
    content_range
        .and_then(|r| r.strip_prefix("bytes "))
        .and_then(|r| r.split_once('-'))
        .and_then(|(first, _)| first.parse::<u64>().ok())
        == Some(from)
}
