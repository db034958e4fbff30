//! Where blob bytes live: one code path over `object_store`'s `ObjectStore + MultipartStore`,
//! on a local directory (the default, next to the database) or any S3-compatible store.
//!
//! Keys (under the store's prefix): `blobs/<hash>` for complete blobs, `uploads/<user>/<hash>`
//! for the multipart upload of a user's upload in progress (and the object it completes into
//! before it is verified and renamed to `blobs/<hash>`).

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResultPayload, MultipartId, ObjectStore, ObjectStoreExt, PutPayload,
    PutResult,
};

use crate::Config;

/// A failure of the blob store (the server's fault, never the client's).
pub type StoreError = object_store::Error;

/// The blob store of `--blob-store`.
#[derive(Clone)]
pub struct BlobStore {
    objects: Arc<dyn ObjectStore>,
    multipart: Arc<dyn MultipartStore>,
    /// Prepended to every key (`s3://bucket/prefix`'s prefix; empty for a directory).
    prefix: String,
    /// What the logs call it: a directory or `s3://bucket/prefix`, never a credential.
    pub description: String,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("description", &self.description)
            .finish()
    }
}

impl BlobStore {
    /// The store `config` names: `--blob-store` (`file:///PATH` or `s3://BUCKET/PREFIX`), or
    /// by default the directory `<database file>.blobs/` (SQLite) or `./tandem-blobs/`
    /// (PostgreSQL).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match config.blob_store.as_deref().map(str::trim) {
            None | Some("") => {
                let dir = match config.db.strip_prefix("sqlite://") {
                    Some(path) => PathBuf::from(format!("{path}.blobs")),
                    None => PathBuf::from("tandem-blobs"),
                };
                Self::local(&dir)
            }
            Some(url) if url.starts_with("file://") => {
                Self::local(FsPath::new(url.trim_start_matches("file://")))
            }
            Some(url) if url.starts_with("s3://") => Self::s3(url, &config.blob_store_options),
            Some(_) => anyhow::bail!("--blob-store must be file:///PATH or s3://BUCKET/PREFIX"),
        }
    }

    /// A directory (created when missing, mode 0700 on Unix).
    pub fn local(dir: &FsPath) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create the blob directory {}: {e}", dir.display())
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let fs = Arc::new(
            LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| anyhow::anyhow!("cannot use {} for blobs: {e}", dir.display()))?
                .with_fsync(true),
        );
        let multipart = Arc::new(LocalMultipart { fs: fs.clone() });
        Ok(Self {
            objects: fs,
            multipart,
            prefix: String::new(),
            description: dir.display().to_string(),
        })
    }

    /// `s3://BUCKET/PREFIX` with the `AWS_*` settings of the environment, overridden by
    /// `options` (`("AWS_ENDPOINT_URL", …)` and the like). Plain HTTP (`AWS_ALLOW_HTTP=true`) is
    /// refused unless the endpoint is on the loopback interface.
    pub fn s3(url: &str, options: &[(String, String)]) -> anyhow::Result<Self> {
        let rest = url.trim_start_matches("s3://");
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            anyhow::bail!("--blob-store s3://BUCKET/PREFIX needs a bucket");
        }
        let prefix = prefix.trim_matches('/');
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in options {
            let key: AmazonS3ConfigKey = key
                .to_ascii_lowercase()
                .parse()
                .map_err(|e| anyhow::anyhow!("unknown S3 setting {key}: {e}"))?;
            builder = builder.with_config(key, value);
        }
        let allow_http = builder
            .get_config_value(&AmazonS3ConfigKey::Client(
                object_store::ClientConfigKey::AllowHttp,
            ))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
        if allow_http && !endpoint.as_deref().is_some_and(is_loopback_url) {
            anyhow::bail!(
                "AWS_ALLOW_HTTP=true is only accepted with a loopback AWS_ENDPOINT_URL \
                 (http://127.0.0.1:PORT, http://localhost:PORT): attachments would cross the \
                 network unencrypted"
            );
        }
        let s3: Arc<AmazonS3> = Arc::new(
            builder
                .build()
                .map_err(|e| anyhow::anyhow!("cannot use {url} for blobs: {e}"))?,
        );
        Ok(Self {
            objects: s3.clone(),
            multipart: s3,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            description: format!("s3://{bucket}/{prefix}"),
        })
    }

    fn key(&self, relative: &str) -> Path {
        Path::from(format!("{}{relative}", self.prefix))
    }

    /// Where the complete blob `hash` lives.
    pub fn blob_key(&self, hash: &str) -> Path {
        self.key(&format!("blobs/{hash}"))
    }

    /// Where the user's upload of `hash` is staged.
    pub fn staging_key(&self, user_id: &str, hash: &str) -> Path {
        self.key(&format!("uploads/{user_id}/{hash}"))
    }

    pub async fn create_multipart(&self, key: &Path) -> Result<MultipartId, StoreError> {
        self.multipart.create_multipart(key).await
    }

    /// Stores part `index` (from 0) of a multipart upload; its id, for completing.
    pub async fn put_part(
        &self,
        key: &Path,
        id: &MultipartId,
        index: usize,
        bytes: Bytes,
    ) -> Result<String, StoreError> {
        let part = self
            .multipart
            .put_part(key, id, index, PutPayload::from_bytes(bytes))
            .await?;
        Ok(part.content_id)
    }

    /// Joins the parts (in order) into the object at `key`.
    pub async fn complete_multipart(
        &self,
        key: &Path,
        id: &MultipartId,
        parts: &[String],
    ) -> Result<PutResult, StoreError> {
        let parts = parts
            .iter()
            .map(|p| PartId {
                content_id: p.clone(),
            })
            .collect();
        self.multipart.complete_multipart(key, id, parts).await
    }

    pub async fn abort_multipart(&self, key: &Path, id: &MultipartId) -> Result<(), StoreError> {
        self.multipart.abort_multipart(key, id).await
    }

    /// The object's size, `None` when there is none.
    pub async fn size(&self, key: &Path) -> Result<Option<u64>, StoreError> {
        match self.objects.head(key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object's bytes from `from` on, as a stream (never the whole object in memory).
    pub async fn read_from(
        &self,
        key: &Path,
        from: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, StoreError>>, StoreError> {
        let options = GetOptions {
            range: (from > 0).then_some(GetRange::Offset(from)),
            ..GetOptions::default()
        };
        let result = self.objects.get_opts(key, options).await?;
        match result.payload {
            // A local file: `GetResult::into_stream` would read it 8 KiB at a time, each read a
            // blocking task of its own and each an HTTP frame (downloads ran at a quarter of
            // plain HTTP's rate); this reads it in `LOCAL_READ_BYTES` blocks.
            GetResultPayload::File(file, path) => Ok(local_file_stream(file, path, result.range)),
            GetResultPayload::Stream(stream) => Ok(stream),
        }
    }

    pub async fn put(&self, key: &Path, bytes: Bytes) -> Result<(), StoreError> {
        self.objects
            .put(key, PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
    }

    /// Moves `from` to `to`, replacing what is there.
    pub async fn rename(&self, from: &Path, to: &Path) -> Result<(), StoreError> {
        self.objects.rename(from, to).await
    }

    /// Deletes the object; one that is not there is no error.
    pub async fn delete(&self, key: &Path) -> Result<(), StoreError> {
        match self.objects.delete(key).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Bytes read at a time from a local blob file for a download (one blocking read, one frame).
const LOCAL_READ_BYTES: usize = 1024 * 1024;

/// The bytes `range` of a local file as a stream of blocks of `LOCAL_READ_BYTES`, each read on
/// the blocking pool (never the whole file in memory).
fn local_file_stream(
    file: std::fs::File,
    path: PathBuf,
    range: std::ops::Range<u64>,
) -> BoxStream<'static, Result<Bytes, StoreError>> {
    use futures_util::StreamExt;
    let start = range.start;
    let state = (
        Some(file),
        path,
        range.end.saturating_sub(range.start),
        true,
    );
    futures_util::stream::try_unfold(state, move |(file, path, left, first)| async move {
        let Some(file) = file else { return Ok(None) };
        if left == 0 {
            return Ok(None);
        }
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = file;
            if first {
                file.seek(SeekFrom::Start(start))
                    .map_err(|e| io(e, &path))?;
            }
            let want = left.min(LOCAL_READ_BYTES as u64) as usize;
            let mut buffer = Vec::with_capacity(want);
            (&mut file)
                .take(want as u64)
                .read_to_end(&mut buffer)
                .map_err(|e| io(e, &path))?;
            if buffer.is_empty() {
                return Err(generic(format!(
                    "{}: the file ended {left} bytes early",
                    path.display()
                )));
            }
            let left = left - buffer.len() as u64;
            Ok(Some((Bytes::from(buffer), (Some(file), path, left, false))))
        })
        .await
        .map_err(|e| generic(format!("blob reader failed: {e}")))?
    })
    .boxed()
}

/// Whether `url` (`http://HOST[:PORT]/…`) names a loopback host.
pub(crate) fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Multipart uploads on a local directory, which `LocalFileSystem` does not offer. The parts of
/// upload `id` of `key` live in `<key>.parts/<id>/`:
///
/// - Parts that come in order (the engine's case) are appended to one file, `data`: part `i`
///   starts where part `i - 1` ended (its end is in the file `<i-1>.end`, written only once that
///   part's bytes were synced), is written there (anything past that point, left by an attempt
///   that was never acknowledged, is cut off first), synced, and its end recorded in `<i>.end`.
///   Its id is `@<start>-<end>`. Completing parts that are all of this kind, end to end from 0,
///   renames `data` to `key`: no second copy of the bytes.
/// - Any other part (out of order, or its predecessor's end unknown) is the file `<i>` (written
///   to a temporary name, synced, renamed: there whole or not at all), id `<i>`; completing a
///   list with such a part concatenates the parts (from their files or from `data`) into `key`
///   the same way.
///
/// Completing removes the directory.
#[derive(Debug)]
struct LocalMultipart {
    fs: Arc<LocalFileSystem>,
}

impl std::fmt::Display for LocalMultipart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalMultipart")
    }
}

impl LocalMultipart {
    fn parts_dir(&self, key: &Path, id: &str) -> Result<PathBuf, StoreError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(generic(format!("bad local multipart id {id:?}")));
        }
        let file = self.fs.path_to_filesystem(key)?;
        let mut dir = file.into_os_string();
        dir.push(".parts");
        Ok(PathBuf::from(dir).join(id))
    }
}

fn generic(message: String) -> StoreError {
    StoreError::Generic {
        store: "LocalMultipart",
        source: message.into(),
    }
}

fn io(e: std::io::Error, path: &FsPath) -> StoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StoreError::NotFound {
            path: path.display().to_string(),
            source: e.into(),
        }
    } else {
        generic(format!("{}: {e}", path.display()))
    }
}

/// Writes `path` whole: `write` fills a temporary file beside it, which is synced and renamed.
fn write_whole(
    path: &FsPath,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    use std::io::Write;
    let dir = path.parent().expect("a part path has a directory");
    std::fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("part"),
        uuid::Uuid::now_v7().simple()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        write(&mut file)?;
        file.flush()?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| io(e, path))
}

/// The file of a local multipart upload that in-order parts are appended to.
const DATA_FILE: &str = "data";

/// `(start, end)` of an appended part's id `@<start>-<end>`; `None` for a part of its own file.
fn appended_range(content_id: &str) -> Option<(u64, u64)> {
    let (start, end) = content_id.strip_prefix('@')?.split_once('-')?;
    let (start, end) = (start.parse().ok()?, end.parse().ok()?);
    (start <= end).then_some((start, end))
}

fn sync_dir(dir: &FsPath) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Stores part `index` of the local multipart upload in `dir` (see [`LocalMultipart`]).
fn put_local_part(dir: &FsPath, index: usize, data: &PutPayload) -> Result<PartId, StoreError> {
    use std::io::{Seek, SeekFrom, Write};
    let end_file = |i: usize| dir.join(format!("{i}.end"));
    let start = if index == 0 {
        Some(0)
    } else {
        std::fs::read_to_string(end_file(index - 1))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
    };
    // Whatever happens below, an end recorded for this part by an earlier attempt is stale.
    match std::fs::remove_file(end_file(index)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e, &end_file(index))),
    }
    if let Some(start) = start {
        std::fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
        let path = dir.join(DATA_FILE);
        let created = !path.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io(e, &path))?;
        let len = file.metadata().map_err(|e| io(e, &path))?.len();
        if len >= start {
            let written = (|| {
                file.set_len(start)?;
                file.seek(SeekFrom::Start(start))?;
                for chunk in data.iter() {
                    file.write_all(chunk)?;
                }
                file.sync_all()?;
                if created {
                    sync_dir(dir)?;
                }
                Ok(())
            })();
            written.map_err(|e: std::io::Error| io(e, &path))?;
            let end = start + data.content_length() as u64;
            std::fs::write(end_file(index), end.to_string())
                .map_err(|e| io(e, &end_file(index)))?;
            return Ok(PartId {
                content_id: format!("@{start}-{end}"),
            });
        }
        // `data` is shorter than the parts before this one say: this part gets a file.
        tracing::warn!(
            dir = %dir.display(),
            len,
            start,
            "a local upload's data file is short; storing the part on its own"
        );
    }
    let path = dir.join(index.to_string());
    write_whole(&path, |file| {
        use std::io::Write;
        for chunk in data.iter() {
            file.write_all(chunk)?;
        }
        Ok(())
    })?;
    Ok(PartId {
        content_id: index.to_string(),
    })
}

#[async_trait::async_trait]
impl MultipartStore for LocalMultipart {
    async fn create_multipart(&self, _key: &Path) -> Result<MultipartId, StoreError> {
        Ok(uuid::Uuid::now_v7().simple().to_string())
    }

    async fn put_part(
        &self,
        key: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> Result<PartId, StoreError> {
        let dir = self.parts_dir(key, id)?;
        tokio::task::spawn_blocking(move || put_local_part(&dir, part_idx, &data))
            .await
            .map_err(|e| generic(format!("part writer failed: {e}")))?
    }

    async fn complete_multipart(
        &self,
        key: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> Result<PutResult, StoreError> {
        let dir = self.parts_dir(key, id)?;
        let target = self.fs.path_to_filesystem(key)?;
        tokio::task::spawn_blocking(move || {
            if !dir.is_dir() {
                return Err(io(std::io::ErrorKind::NotFound.into(), &dir));
            }
            let appended: Option<Vec<(u64, u64)>> = parts
                .iter()
                .map(|p| appended_range(&p.content_id))
                .collect();
            let end_to_end = appended.as_ref().and_then(|ranges| {
                let mut at = 0;
                for &(start, end) in ranges {
                    if start != at {
                        return None;
                    }
                    at = end;
                }
                Some(at)
            });
            match end_to_end {
                Some(end) if !parts.is_empty() => {
                    // Every part is in `data`, in order: it becomes the object.
                    let data = dir.join(DATA_FILE);
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&data)
                        .map_err(|e| io(e, &data))?;
                    let len = file.metadata().map_err(|e| io(e, &data))?.len();
                    if len < end {
                        return Err(generic(format!(
                            "{}: {len} bytes, its parts end at {end}",
                            data.display()
                        )));
                    }
                    if len > end {
                        file.set_len(end).map_err(|e| io(e, &data))?;
                        file.sync_all().map_err(|e| io(e, &data))?;
                    }
                    drop(file);
                    std::fs::rename(&data, &target).map_err(|e| io(e, &target))?;
                    if let Some(parent) = target.parent() {
                        sync_dir(parent).map_err(|e| io(e, parent))?;
                    }
                }
                _ => write_whole(&target, |file| {
                    for part in &parts {
                        match appended_range(&part.content_id) {
                            Some((start, end)) => {
                                use std::io::{Read, Seek, SeekFrom};
                                let mut source = std::fs::File::open(dir.join(DATA_FILE))?;
                                source.seek(SeekFrom::Start(start))?;
                                let copied = std::io::copy(&mut source.take(end - start), file)?;
                                if copied != end - start {
                                    return Err(std::io::Error::new(
                                        std::io::ErrorKind::UnexpectedEof,
                                        "a part's bytes are missing",
                                    ));
                                }
                            }
                            None => {
                                let mut source = std::fs::File::open(dir.join(&part.content_id))?;
                                std::io::copy(&mut source, file)?;
                            }
                        }
                    }
                    Ok(())
                })?,
            }
            std::fs::remove_dir_all(&dir).map_err(|e| io(e, &dir))?;
            // The `<key>.parts` directory, when no other upload of the key is left in it.
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
            Ok(PutResult {
                e_tag: None,
                version: None,
                extensions: Default::default(),
            })
        })
        .await
        .map_err(|e| generic(format!("part joiner failed: {e}")))?
    }

    async fn abort_multipart(&self, key: &Path, id: &MultipartId) -> Result<(), StoreError> {
        let dir = self.parts_dir(key, id)?;
        tokio::task::spawn_blocking(move || {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e, &dir)),
            }
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
            Ok(())
        })
        .await
        .map_err(|e| generic(format!("part remover failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    #[test]
    fn loopback_endpoints() {
        for url in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
            "http://127.5.0.1",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "http://10.0.0.1:9000",
            "http://minio.internal:9000",
            "http://127.0.0.1.example.com",
            "",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let remote = [
            (
                "AWS_ENDPOINT_URL".to_string(),
                "http://10.1.2.3:9000".to_string(),
            ),
            ("AWS_ALLOW_HTTP".to_string(), "true".to_string()),
        ];
        assert!(BlobStore::s3("s3://bucket/p", &remote).is_err());
        let local = [
            (
                "AWS_ENDPOINT_URL".to_string(),
                "http://127.0.0.1:9000".to_string(),
            ),
            ("AWS_ALLOW_HTTP".to_string(), "true".to_string()),
            ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ];
        let store = BlobStore::s3("s3://bucket/some/prefix/", &local).unwrap();
        assert_eq!(store.blob_key("ab").as_ref(), "some/prefix/blobs/ab");
        assert!(BlobStore::s3("s3:///p", &local).is_err());
    }

    #[tokio::test]
    async fn local_multipart_joins_parts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(&dir.path().join("blobs")).unwrap();
        let key = store.staging_key("u1", "h1");
        let id = store.create_multipart(&key).await.unwrap();
        let p1 = store
            .put_part(&key, &id, 1, Bytes::from_static(b"world"))
            .await
            .unwrap();
        let p0 = store
            .put_part(&key, &id, 0, Bytes::from_static(b"hello "))
            .await
            .unwrap();
        store
            .complete_multipart(&key, &id, &[p0, p1])
            .await
            .unwrap();
        assert_eq!(read_all(&store, &key, 0).await, b"hello world");
        assert_eq!(read_all(&store, &key, 6).await, b"world");
        // The parts are gone; completing again finds nothing.
        assert!(store.complete_multipart(&key, &id, &[]).await.is_err());
        store.rename(&key, &store.blob_key("h1")).await.unwrap();
        assert_eq!(store.size(&store.blob_key("h1")).await.unwrap(), Some(11));
        assert_eq!(store.size(&key).await.unwrap(), None);
        // Aborting removes the parts.
        let id = store.create_multipart(&key).await.unwrap();
        store
            .put_part(&key, &id, 0, Bytes::from_static(b"x"))
            .await
            .unwrap();
        store.abort_multipart(&key, &id).await.unwrap();
        assert!(store
            .complete_multipart(&key, &id, &["0".into()])
            .await
            .is_err());
        store.delete(&store.blob_key("h1")).await.unwrap();
        store.delete(&store.blob_key("h1")).await.unwrap();
    }

    /// The object's bytes from `from` on.
    async fn read_all(store: &BlobStore, key: &Path, from: u64) -> Vec<u8> {
        let chunks: Vec<Bytes> = store
            .read_from(key, from)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        chunks.concat()
    }

    #[tokio::test]
    async fn local_multipart_appends_parts_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(&dir.path().join("blobs")).unwrap();
        let key = store.staging_key("u1", "h2");
        let id = store.create_multipart(&key).await.unwrap();
        let p0 = store
            .put_part(&key, &id, 0, Bytes::from_static(b"hello "))
            .await
            .unwrap();
        assert_eq!(p0, "@0-6");
        // A part sent again (its first answer lost) replaces the first attempt's bytes.
        let p1 = store
            .put_part(&key, &id, 1, Bytes::from_static(b"there, "))
            .await
            .unwrap();
        assert_eq!(p1, "@6-13");
        let p1 = store
            .put_part(&key, &id, 1, Bytes::from_static(b"world"))
            .await
            .unwrap();
        assert_eq!(p1, "@6-11");
        store
            .complete_multipart(&key, &id, &[p0, p1])
            .await
            .unwrap();
        assert_eq!(read_all(&store, &key, 0).await, b"hello world");
        assert_eq!(read_all(&store, &key, 6).await, b"world");
        assert!(store.complete_multipart(&key, &id, &[]).await.is_err());
    }
}
