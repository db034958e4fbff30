//! Blob stores for attachment tests: a fresh directory, or a fresh prefix of the bucket
//! `tandem-test` (or `TANDEM_TEST_S3_BUCKET`) on the S3 server at `TANDEM_TEST_S3_URL` (moto's,
//! started by `scripts/s3.sh`), and [`on_backends_and_blob_stores!`] to run one test body on
//! each database backend × each blob store.

/// Which blob store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobStoreKind {
    Filesystem,
    S3,
}

/// A fresh, empty blob store for one test: give it to
/// [`TestServerBuilder::blob_store`](crate::TestServerBuilder::blob_store).
pub struct TestBlobStore {
    pub kind: BlobStoreKind,
    /// The server's `--blob-store`.
    pub url: String,
    /// The server's `AWS_*` settings (S3 only).
    pub env: Vec<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestBlobStore {
    /// A new store, or `None` for S3 when `TANDEM_TEST_S3_URL` is not set.
    pub fn new(kind: BlobStoreKind) -> Option<TestBlobStore> {
        match kind {
            BlobStoreKind::Filesystem => {
                let dir = tempfile::tempdir().unwrap();
                Some(TestBlobStore {
                    kind,
                    url: format!("file://{}", dir.path().join("blobs").display()),
                    env: Vec::new(),
                    _dir: Some(dir),
                })
            }
            BlobStoreKind::S3 => {
                let endpoint = std::env::var("TANDEM_TEST_S3_URL").ok()?;
                let bucket = std::env::var("TANDEM_TEST_S3_BUCKET")
                    .unwrap_or_else(|_| "tandem-test".to_string());
                let prefix = uuid::Uuid::now_v7().simple();
                let env = [
                    ("AWS_ENDPOINT_URL", endpoint.as_str()),
                    ("AWS_ALLOW_HTTP", "true"),
                    ("AWS_ACCESS_KEY_ID", "tandem-test"),
                    ("AWS_SECRET_ACCESS_KEY", "tandem-test"),
                    ("AWS_REGION", "us-east-1"),
                ];
                Some(TestBlobStore {
                    kind,
                    url: format!("s3://{bucket}/{prefix}"),
                    env: env
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    _dir: None,
                })
            }
        }
    }
}

/// Runs each listed `async fn name(db: TestDb, store: TestBlobStore)` as `sqlite_fs::name`,
/// `sqlite_s3::name`, `postgres_fs::name` and `postgres_s3::name`; variants whose PostgreSQL
/// (`TANDEM_TEST_POSTGRES_URL`) or S3 server (`TANDEM_TEST_S3_URL`) is not set pass trivially,
/// with a note.
#[macro_export]
macro_rules! on_backends_and_blob_stores {
    ($($name:ident),* $(,)?) => {
        $crate::on_backends_and_blob_stores!(@one sqlite_fs, Sqlite, Filesystem, $($name),*);
        $crate::on_backends_and_blob_stores!(@one sqlite_s3, Sqlite, S3, $($name),*);
        $crate::on_backends_and_blob_stores!(@one postgres_fs, Postgres, Filesystem, $($name),*);
        $crate::on_backends_and_blob_stores!(@one postgres_s3, Postgres, S3, $($name),*);
    };
    (@one $module:ident, $backend:ident, $store:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(store) =
                        $crate::blobs::TestBlobStore::new($crate::blobs::BlobStoreKind::$store)
                    else {
                        eprintln!("skipped: TANDEM_TEST_S3_URL is not set");
                        return;
                    };
                    match $crate::db::TestDb::new($crate::db::Backend::$backend).await {
                        Some(db) => super::$name(db, store).await,
                        None => eprintln!("skipped: TANDEM_TEST_POSTGRES_URL is not set"),
                    }
                }
            )*
        }
    };
}

/// The SHA-256 of `bytes`, as blob hashes are written (64 lowercase hex digits).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// The reference server's largest chunk.
pub const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// A download: status, headers and the raw bytes.
pub struct Download {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: bytes::Bytes,
}

impl crate::protocol::Client {
    /// `POST /sync/v1/blobs/uploads`.
    pub async fn open_upload(
        &self,
        token: &str,
        hash: &str,
        size: u64,
        content_type: &str,
    ) -> crate::protocol::Reply {
        let body = serde_json::json!({"hash": hash, "size": size, "contentType": content_type});
        self.post("/sync/v1/blobs/uploads", Some(token), &body)
            .await
    }

    /// `PATCH /sync/v1/blobs/uploads/{hash}` with `Upload-Offset: offset` and `bytes`.
    pub async fn send_chunk(
        &self,
        token: &str,
        hash: &str,
        offset: u64,
        bytes: Vec<u8>,
    ) -> crate::protocol::Reply {
        let request = self
            .http
            .patch(self.url(&format!("/sync/v1/blobs/uploads/{hash}")))
            .bearer_auth(token)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(bytes);
        self.send(request).await
    }

    /// Opens an upload of `bytes` and sends every chunk from the offset the server answers;
    /// returns the last answer (the open's when it was complete or refused).
    pub async fn upload(
        &self,
        token: &str,
        bytes: &[u8],
        content_type: &str,
    ) -> crate::protocol::Reply {
        let hash = sha256_hex(bytes);
        let mut reply = self
            .open_upload(token, &hash, bytes.len() as u64, content_type)
            .await;
        loop {
            if reply.status != reqwest::StatusCode::OK || reply.body["complete"] == true {
                return reply;
            }
            let offset = reply.body["offset"].as_u64().unwrap() as usize;
            let end = (offset + CHUNK_BYTES).min(bytes.len());
            reply = self
                .send_chunk(token, &hash, offset as u64, bytes[offset..end].to_vec())
                .await;
        }
    }

    /// `GET /sync/v1/blobs/{hash}` with extra headers (e.g. `range`).
    pub async fn download(&self, token: &str, hash: &str, headers: &[(&str, &str)]) -> Download {
        let mut request = self
            .http
            .get(self.url(&format!("/sync/v1/blobs/{hash}")))
            .bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request failed");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("the download's body");
        assert_ne!(status.as_u16(), 500, "the server answered 500");
        Download {
            status,
            headers,
            bytes,
        }
    }
}
