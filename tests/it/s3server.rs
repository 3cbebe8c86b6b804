//! An S3 server on 127.0.0.1 for the object-store tests: s3s-fs (objects kept
//! as files under a temporary root) behind a wrapper that makes conditional
//! writes atomic, can pretend not to know them, loses answers on purpose and
//! fails on purpose, and counts what was uploaded.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

pub const BUCKET: &str = "lake";
pub const KEY: &str = "AKIAHCBILLTEST";
pub const SECRET: &str = "hcbill-test-secret-key-0123456789";

/// What the server does with If-Match / If-None-Match on PutObject and
/// CompleteMultipartUpload: stores differ, and the exporter must be safe on
/// each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conditions {
    /// Checked and written in one step (S3, since 2024).
    Honour,
    /// Accepted and ignored: the write happens whatever is there.
    Ignore,
    /// Answered 501 NotImplemented, as stores without them do.
    Reject,
}

/// An S3 server on 127.0.0.1 that can fail on purpose, and counts PUTs by key.
pub struct S3 {
    pub url: String,
    pub root: tempfile::TempDir,
    /// Percent of requests answered 503 or with a reset connection.
    pub fault_percent: Arc<AtomicU32>,
    /// The URI path of every PUT that reached the store.
    pub puts: Arc<Mutex<Vec<String>>>,
    pub requests: Arc<AtomicU64>,
    /// How conditional writes are treated; change it at any time.
    pub conditions: Arc<Mutex<Conditions>>,
    /// (URI path, body bytes) of every PUT that reached the store.
    put_sizes: Arc<Mutex<Vec<(String, u64)>>>,
    /// (path suffix, answers still to lose).
    to_lose: Arc<Mutex<Vec<(String, u32)>>>,
    lost: Arc<AtomicU32>,
    /// Milliseconds each multipart part upload waits before it is served.
    pub part_delay_ms: Arc<AtomicU64>,
}

impl S3 {
    pub async fn start() -> S3 {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
        let conditions = Arc::new(Mutex::new(Conditions::Honour));
        let store = Store {
            fs: s3s_fs::FileSystem::new(root.path()).unwrap(),
            writes: tokio::sync::Mutex::new(()),
            conditions: conditions.clone(),
        };
        let mut b = s3s::service::S3ServiceBuilder::new(store);
        b.set_auth(s3s::auth::SimpleAuth::from_single(KEY, SECRET));
        let service = Arc::new(b.build());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let s3 = S3 {
            url,
            root,
            fault_percent: Arc::new(AtomicU32::new(0)),
            puts: Arc::new(Mutex::new(Vec::new())),
            requests: Arc::new(AtomicU64::new(0)),
            conditions,
            put_sizes: Arc::new(Mutex::new(Vec::new())),
            to_lose: Arc::new(Mutex::new(Vec::new())),
            lost: Arc::new(AtomicU32::new(0)),
            part_delay_ms: Arc::new(AtomicU64::new(0)),
        };
        let state = Hooks {
            part_delay_ms: s3.part_delay_ms.clone(),
            fault_percent: s3.fault_percent.clone(),
            puts: s3.puts.clone(),
            requests: s3.requests.clone(),
            put_sizes: s3.put_sizes.clone(),
            to_lose: s3.to_lose.clone(),
            lost: s3.lost.clone(),
        };
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let pct = state.fault_percent.load(Ordering::SeqCst);
                if pct > 0 && fastrand::u32(0..100) < pct / 2 {
                    drop(socket); // a reset connection
                    continue;
                }
                let (service, state) = (service.clone(), state.clone());
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (service, state) = (service.clone(), state.clone());
                    async move { state.serve(&service, req).await }
                });
                let conn = http.serve_connection(TokioIo::new(socket), svc).into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        s3
    }

    /// The bucket's objects under `prefix`, as files on the server's disk.
    pub fn dir(&self, prefix: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(prefix)
    }

    pub fn parquet_puts(&self) -> usize {
        self.puts
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.ends_with(".parquet"))
            .count()
    }

    /// Switch how conditional writes are treated from now on.
    pub fn set_conditions(&self, c: Conditions) {
        *self.conditions.lock().unwrap() = c;
    }

    /// The next `times` PUTs whose URI path ends with `key_suffix` are carried
    /// out but never answered (the connection is closed instead): the client
    /// cannot tell a write that landed from one that did not.
    pub fn lose_answers(&self, key_suffix: &str, times: u32) {
        self.to_lose.lock().unwrap().push((key_suffix.to_string(), times));
    }

    /// An object_store client of the bucket (conditional puts on, few retries).
    pub fn client(&self) -> Arc<dyn object_store::ObjectStore> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.url)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(BUCKET)
            .with_access_key_id(KEY)
            .with_secret_access_key(SECRET)
            .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
            .with_retry(object_store::RetryConfig {
                max_retries: 2,
                retry_timeout: std::time::Duration::from_secs(5),
                ..Default::default()
            })
            .build()
            .unwrap();
        Arc::new(store)
    }

    /// How many answers `lose_answers` has swallowed so far.
    pub fn answers_lost(&self) -> u32 {
        self.lost.load(Ordering::SeqCst)
    }

    /// Multipart uploads created and neither completed nor aborted: each one
    /// is storage a real bucket keeps billing for. (s3s-fs keeps one
    /// `.upload-<uuid>.json` under the root per open upload.)
    pub fn open_uploads(&self) -> usize {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with(".upload-") && name.ends_with(".json")
            })
            .count()
    }

    /// Body bytes of the PUTs whose URI path matches `pred` (parts included,
    /// retries counted again): what uploading manifests (`_manifest`) or state
    /// (`/.hcbill/`) costs.
    pub fn put_bytes(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.put_sizes
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| pred(p))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The HTTP-level behaviour: counting, faults, lost answers.
#[derive(Clone)]
struct Hooks {
    fault_percent: Arc<AtomicU32>,
    puts: Arc<Mutex<Vec<String>>>,
    requests: Arc<AtomicU64>,
    put_sizes: Arc<Mutex<Vec<(String, u64)>>>,
    to_lose: Arc<Mutex<Vec<(String, u32)>>>,
    lost: Arc<AtomicU32>,
    part_delay_ms: Arc<AtomicU64>,
}

impl Hooks {
    async fn serve(
        &self,
        service: &s3s::service::S3Service,
        req: http::Request<hyper::body::Incoming>,
    ) -> Result<s3s::HttpResponse, s3s::HttpError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let pct = self.fault_percent.load(Ordering::SeqCst);
        if pct > 0 && fastrand::u32(0..100) < pct / 2 {
            return Ok(http::Response::builder()
                .status(503)
                .body(s3s::Body::from("<Error><Code>SlowDown</Code></Error>".to_string()))
                .unwrap());
        }
        let mut lose = false;
        let part = req.uri().query().is_some_and(|q| q.contains("partNumber="));
        let delay = self.part_delay_ms.load(Ordering::SeqCst);
        if part && delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        if req.method() == http::Method::PUT {
            let path = req.uri().path().to_string();
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
            };
            let bytes = header("x-amz-decoded-content-length")
                .or_else(|| header("content-length"))
                .unwrap_or(0);
            self.put_sizes.lock().unwrap().push((path.clone(), bytes));
            if let Some((_, n)) = self
                .to_lose
                .lock()
                .unwrap()
                .iter_mut()
                .find(|(suffix, n)| *n > 0 && path.ends_with(suffix.as_str()))
            {
                *n -= 1;
                lose = true;
            }
            self.puts.lock().unwrap().push(path);
        }
        let res = service.call(req.map(s3s::Body::from)).await;
        if lose {
            self.lost.fetch_add(1, Ordering::SeqCst);
            // An error from the service makes hyper drop the connection
            // without writing the response.
            return Err(s3s::HttpError::new("answer lost on purpose".into()));
        }
        res
    }
}

/// s3s-fs checks a condition, then writes: two requests can both pass the
/// check. This wrapper holds one lock across every mutating call so that
/// check and write are one step, as on a real store.
struct Store {
    fs: s3s_fs::FileSystem,
    writes: tokio::sync::Mutex<()>,
    conditions: Arc<Mutex<Conditions>>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What `#[async_trait]` would write (the crate is not a dependency here).
macro_rules! delegate {
    ($($op:ident: $input:ty => $output:ty;)*) => {$(
        fn $op<'life0, 'async_trait>(
            &'life0 self,
            req: S3Request<$input>,
        ) -> BoxFuture<'async_trait, S3Result<S3Response<$output>>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            s3s::S3::$op(&self.fs, req)
        }
    )*};
}

/// Mutating calls: under the write lock.
macro_rules! serialise {
    ($($op:ident: $input:ty => $output:ty;)*) => {$(
        fn $op<'life0, 'async_trait>(
            &'life0 self,
            req: S3Request<$input>,
        ) -> BoxFuture<'async_trait, S3Result<S3Response<$output>>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                let _one_at_a_time = self.writes.lock().await;
                s3s::S3::$op(&self.fs, req).await
            })
        }
    )*};
}

impl Store {
    /// Applies the condition mode: `Ok(true)` to drop the conditions.
    fn conditions(&self, conditional: bool) -> S3Result<bool> {
        match *self.conditions.lock().unwrap() {
            Conditions::Honour => Ok(false),
            Conditions::Ignore => Ok(true),
            Conditions::Reject if conditional => Err(s3_error!(
                NotImplemented,
                "A header you provided implies functionality that is not implemented"
            )),
            Conditions::Reject => Ok(false),
        }
    }
}

impl s3s::S3 for Store {
    delegate! {
        get_object: GetObjectInput => GetObjectOutput;
        head_object: HeadObjectInput => HeadObjectOutput;
        list_objects: ListObjectsInput => ListObjectsOutput;
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output;
        create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput;
        upload_part: UploadPartInput => UploadPartOutput;
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;
        list_parts: ListPartsInput => ListPartsOutput;
        head_bucket: HeadBucketInput => HeadBucketOutput;
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput;
        list_buckets: ListBucketsInput => ListBucketsOutput;
    }

    serialise! {
        copy_object: CopyObjectInput => CopyObjectOutput;
        delete_object: DeleteObjectInput => DeleteObjectOutput;
        delete_objects: DeleteObjectsInput => DeleteObjectsOutput;
    }

    fn put_object<'life0, 'async_trait>(
        &'life0 self,
        mut req: S3Request<PutObjectInput>,
    ) -> BoxFuture<'async_trait, S3Result<S3Response<PutObjectOutput>>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let input = &mut req.input;
            if self.conditions(input.if_match.is_some() || input.if_none_match.is_some())? {
                input.if_match = None;
                input.if_none_match = None;
            }
            // Read the body before taking the lock: a slow client must not
            // hold up every other write.
            if let Some(blob) = input.body.take() {
                let mut body = s3s::Body::from(blob);
                let bytes = body
                    .store_all_limited(usize::MAX)
                    .await
                    .map_err(|e| s3_error!(IncompleteBody, "{e}"))?;
                input.body = Some(StreamingBlob::from(s3s::Body::from(bytes)));
            }
            let _one_at_a_time = self.writes.lock().await;
            s3s::S3::put_object(&self.fs, req).await
        })
    }

    fn complete_multipart_upload<'life0, 'async_trait>(
        &'life0 self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> BoxFuture<'async_trait, S3Result<S3Response<CompleteMultipartUploadOutput>>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let input = &mut req.input;
            if self.conditions(input.if_match.is_some() || input.if_none_match.is_some())? {
                input.if_match = None;
                input.if_none_match = None;
            }
            let _one_at_a_time = self.writes.lock().await;
            s3s::S3::complete_multipart_upload(&self.fs, req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};

    async fn create(store: &Arc<dyn ObjectStore>, path: &Path, body: &str) -> object_store::Result<()> {
        store
            .put_opts(path, PutPayload::from(body.to_string()), PutMode::Create.into())
            .await
            .map(|_| ())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn s3server_conditional_writes_are_atomic_ignorable_or_rejected() {
        let s3 = S3::start().await;
        let store = s3.client();

        // Honour: of 16 racing creates, exactly one wins.
        let path = Path::from("race/lease");
        let racers: Vec<_> = (0..16)
            .map(|i| {
                let (store, path) = (store.clone(), path.clone());
                tokio::spawn(async move { create(&store, &path, &format!("writer {i}")).await })
            })
            .collect();
        let mut won = 0;
        for r in racers {
            match r.await.unwrap() {
                Ok(()) => won += 1,
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(won, 1, "exactly one create wins");

        // Ignore: a second create overwrites.
        s3.set_conditions(Conditions::Ignore);
        create(&store, &path, "second").await.unwrap();
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"second");

        // Reject: a conditional put is refused, a plain one is not.
        s3.set_conditions(Conditions::Reject);
        let err = create(&store, &Path::from("race/new"), "x")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("NotImplemented") || err.contains("501"), "{err}");
        store
            .put(&Path::from("race/plain"), PutPayload::from_static(b"plain"))
            .await
            .unwrap();
        s3.set_conditions(Conditions::Honour);
        assert!(matches!(
            create(&store, &Path::from("race/plain"), "again").await,
            Err(object_store::Error::AlreadyExists { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn s3server_loses_answers_counts_bytes_and_open_uploads() {
        let s3 = S3::start().await;
        let store = s3.client();

        // A lost answer: the client sees a failure (then retries), the object landed.
        s3.lose_answers("/lost/_manifest.json", 1);
        let path = Path::from("lost/_manifest.json");
        let _ = store.put(&path, PutPayload::from_static(b"0123456789")).await;
        assert_eq!(s3.answers_lost(), 1);
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"0123456789");
        // The lost PUT and any retry, 10 bytes each.
        let manifest_bytes = s3.put_bytes(|p| p.contains("_manifest"));
        assert!(manifest_bytes >= 10 && manifest_bytes % 10 == 0, "{manifest_bytes}");

        store
            .put(&Path::from("j/.hcbill/state.json"), PutPayload::from_static(b"abc"))
            .await
            .unwrap();
        assert_eq!(s3.put_bytes(|p| p.contains("/.hcbill/")), 3);

        // Open multipart uploads: one while in flight, none once aborted or completed.
        assert_eq!(s3.open_uploads(), 0);
        let mut up = store.put_multipart(&Path::from("mp/aborted")).await.unwrap();
        up.put_part(PutPayload::from_static(b"part")).await.unwrap();
        assert_eq!(s3.open_uploads(), 1);
        up.abort().await.unwrap();
        assert_eq!(s3.open_uploads(), 0);
        let mut up = store.put_multipart(&Path::from("mp/done")).await.unwrap();
        up.put_part(PutPayload::from_static(b"part")).await.unwrap();
        assert_eq!(s3.open_uploads(), 1);
        up.complete().await.unwrap();
        assert_eq!(s3.open_uploads(), 0);
        assert_eq!(store.head(&Path::from("mp/done")).await.unwrap().size, 4);
    }
}
